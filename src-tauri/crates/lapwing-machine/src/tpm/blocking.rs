//! The TSS calls (tss-esapi), run on the TPM thread: the EK from its certificate, the
//! persistent handle or the default template, as the canonical bytes of `canonical`.

use std::str::FromStr;

use tss_esapi::Context;
use tss_esapi::abstraction::AsymmetricAlgorithmSelection;
use tss_esapi::abstraction::ek::{create_ek_public_from_default_template, retrieve_ek_pubcert};
use tss_esapi::constants::CapabilityType;
use tss_esapi::handles::{PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::AsymmetricAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{CapabilityData, Public};
use tss_esapi::tcti_ldr::TctiNameConf;
use zeroize::Zeroizing;

use super::canonical::{certificate_public_key, ecc_canonical, strip_leading_zeros};
use super::state::{
    ECC_EK_CERT_INDEX, ECC_EK_PERSISTENT, EkMethod, EkOrigin, EkPublic, RSA_EK_CERT_INDEX,
    RSA_EK_PERSISTENT, TpmState, TpmTarget,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rsa,
    Ecc,
}

impl Alg {
    fn cert_index(self) -> u32 {
        match self {
            Self::Rsa => RSA_EK_CERT_INDEX,
            Self::Ecc => ECC_EK_CERT_INDEX,
        }
    }
    fn persistent(self) -> u32 {
        match self {
            Self::Rsa => RSA_EK_PERSISTENT,
            Self::Ecc => ECC_EK_PERSISTENT,
        }
    }
    fn selection(self) -> AsymmetricAlgorithmSelection {
        match self {
            Self::Rsa => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            Self::Ecc => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP256),
        }
    }
    fn asymmetric(self) -> AsymmetricAlgorithm {
        match self {
            Self::Rsa => AsymmetricAlgorithm::Rsa,
            Self::Ecc => AsymmetricAlgorithm::Ecc,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa2048",
            Self::Ecc => "ecc-p256",
        }
    }
}

pub(super) fn read(target: &TpmTarget, method: EkMethod) -> TpmState {
    let conf = match target {
        TpmTarget::Device(path) => format!("device:{}", path.display()),
        TpmTarget::Tcti(conf) => conf.clone(),
    };
    let conf = match TctiNameConf::from_str(&conf) {
        Ok(c) => c,
        Err(e) => return TpmState::Failed(format!("TCTI {conf:?} not understood: {e}")),
    };
    let mut context = match Context::new(conf) {
        Ok(c) => c,
        Err(e) => {
            return TpmState::Failed(format!("cannot open the TPM through {target}: {e}"));
        }
    };
    match read_ek(&mut context, method) {
        Ok(ek) => TpmState::Present(ek),
        Err(reason) => TpmState::Failed(reason),
    }
}

/// Handles the TPM holds in the range starting at `first` (NV indices, persistent objects).
fn handles(context: &mut Context, first: u32) -> Result<Vec<u32>, String> {
    let (data, _) = context
        .get_capability(CapabilityType::Handles, first, 64)
        .map_err(|e| format!("listing TPM handles: {e}"))?;
    match data {
        CapabilityData::Handles(list) => Ok(list.into_inner().into_iter().map(u32::from).collect()),
        _ => Err("the TPM answered a handle query with something else".to_owned()),
    }
}

fn read_ek(context: &mut Context, method: EkMethod) -> Result<EkPublic, String> {
    let nv = handles(context, 0x0100_0000)?;
    let has_cert = |alg: Alg| nv.contains(&alg.cert_index());
    // The algorithm follows what the TPM holds, so the answer does not depend on which way
    // worked: RSA when it has an RSA certificate or none at all.
    let alg = if has_cert(Alg::Rsa) || !has_cert(Alg::Ecc) {
        Alg::Rsa
    } else {
        Alg::Ecc
    };
    let mut notes = Vec::new();
    if matches!(method, EkMethod::Auto | EkMethod::Certificate) {
        if has_cert(alg) {
            match from_certificate(context, alg) {
                Ok(ek) => return Ok(ek),
                Err(e) => notes.push(e),
            }
        } else {
            notes.push(format!(
                "no EK certificate at NV {:#010x}",
                alg.cert_index()
            ));
        }
        if method == EkMethod::Certificate {
            return Err(notes.join("; "));
        }
    }
    if matches!(method, EkMethod::Auto | EkMethod::Persistent) {
        match from_persistent(context, alg) {
            Ok(ek) => return Ok(ek),
            Err(e) => notes.push(e),
        }
        if method == EkMethod::Persistent {
            return Err(notes.join("; "));
        }
    }
    from_template(context, alg).map_err(|e| {
        notes.push(e);
        notes.join("; ")
    })
}

fn from_certificate(context: &mut Context, alg: Alg) -> Result<EkPublic, String> {
    let der = retrieve_ek_pubcert(context, alg.selection())
        .map_err(|e| format!("reading the EK certificate: {e}"))?;
    let (algorithm, canonical) = certificate_public_key(&der)
        .map_err(|e| format!("the EK certificate at NV {:#010x}: {e}", alg.cert_index()))?;
    Ok(EkPublic {
        algorithm,
        origin: EkOrigin::Certificate,
        canonical: Zeroizing::new(canonical),
    })
}

fn from_persistent(context: &mut Context, alg: Alg) -> Result<EkPublic, String> {
    let persistent = handles(context, 0x8100_0000)?;
    if !persistent.contains(&alg.persistent()) {
        return Err(format!("no persistent EK at {:#010x}", alg.persistent()));
    }
    let handle = PersistentTpmHandle::new(alg.persistent())
        .map_err(|e| format!("persistent handle: {e}"))?;
    let object = context
        .execute_without_session(|ctx| ctx.tr_from_tpm_public(TpmHandle::Persistent(handle)))
        .map_err(|e| format!("opening the persistent EK: {e}"))?;
    let read = context.execute_without_session(|ctx| ctx.read_public(object.into()));
    let mut object = object;
    // Only the ESYS handle is closed here: the persistent object stays in the TPM.
    let _ = context.tr_close(&mut object);
    let (public, _, _) = read.map_err(|e| format!("reading the persistent EK: {e}"))?;
    let template = create_ek_public_from_default_template(alg.asymmetric(), None)
        .map_err(|e| format!("the EK template: {e}"))?;
    if !same_template(&public, &template) {
        return Err(format!(
            "the key at {:#010x} is not the default-template EK",
            alg.persistent()
        ));
    }
    canonical(&public, alg, EkOrigin::Persistent)
}

fn from_template(context: &mut Context, alg: Alg) -> Result<EkPublic, String> {
    let template = create_ek_public_from_default_template(alg.asymmetric(), None)
        .map_err(|e| format!("the EK template: {e}"))?;
    let created = context
        .execute_with_nullauth_session(|ctx| {
            ctx.create_primary(Hierarchy::Endorsement, template, None, None, None, None)
        })
        .map_err(|e| format!("creating the EK from the default template: {e}"))?;
    // A transient object would otherwise hold one of the TPM's few object slots.
    let _ = context.flush_context(created.key_handle.into());
    canonical(&created.out_public, alg, EkOrigin::Template)
}

/// Everything but the key itself equals the template's.
fn same_template(public: &Public, template: &Public) -> bool {
    match (public, template) {
        (
            Public::Rsa {
                object_attributes: a1,
                name_hashing_algorithm: h1,
                auth_policy: p1,
                parameters: r1,
                ..
            },
            Public::Rsa {
                object_attributes: a2,
                name_hashing_algorithm: h2,
                auth_policy: p2,
                parameters: r2,
                ..
            },
        ) => a1 == a2 && h1 == h2 && p1 == p2 && r1 == r2,
        (
            Public::Ecc {
                object_attributes: a1,
                name_hashing_algorithm: h1,
                auth_policy: p1,
                parameters: e1,
                ..
            },
            Public::Ecc {
                object_attributes: a2,
                name_hashing_algorithm: h2,
                auth_policy: p2,
                parameters: e2,
                ..
            },
        ) => a1 == a2 && h1 == h2 && p1 == p2 && e1 == e2,
        _ => false,
    }
}

fn canonical(public: &Public, alg: Alg, origin: EkOrigin) -> Result<EkPublic, String> {
    let canonical = match (public, alg) {
        (Public::Rsa { unique, .. }, Alg::Rsa) => strip_leading_zeros(unique.value()).to_vec(),
        (Public::Ecc { unique, .. }, Alg::Ecc) => {
            ecc_canonical(unique.x().value(), unique.y().value(), 32)
                .ok_or("the ECC EK's point does not fit P-256")?
        }
        _ => return Err("the EK's public area has an unexpected type".to_owned()),
    };
    if canonical.is_empty() {
        return Err("the EK's public key is empty".to_owned());
    }
    Ok(EkPublic {
        algorithm: alg.name().to_owned(),
        origin,
        canonical: Zeroizing::new(canonical),
    })
}
