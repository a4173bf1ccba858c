//! The TPM 2.0 endorsement key (EK), the strongest anchor: it survives OS reinstalls and disk
//! swaps.
//!
//! The EK's public key is found in one of three ways, which all give the same canonical bytes
//! (the RSA modulus, big-endian without leading zeros; for ECC, x ‖ y each padded to the
//! curve's size), so whichever one works on a given day, the anchor does not change:
//!
//! 1. the EK certificate in NV (RSA 2048 at 0x01c00002, ECC P-256 at 0x01c0000a): a plain read;
//! 2. the persistent EK at 0x81010001 (ECC: 0x81010002), used only if its public area is
//!    exactly the TCG default template's (so it is the same key the template would give);
//! 3. creating the EK from the TCG default template (RSA 2048 unless the TPM only holds an ECC
//!    certificate): a primary key derived from the endorsement seed, always the same key.
//!
//! Reaching the TPM can hang (a wedged resource manager, a simulator that accepts and never
//! answers), so the work runs on its own thread and the caller waits at most a deadline.
//! "No TPM" and "no permission" are states, not errors.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;
use zeroize::Zeroizing;

/// The resource-managed TPM device on Linux.
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";
/// How long the TPM work may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// NV index of the RSA 2048 EK certificate (TCG EK Credential Profile).
pub const RSA_EK_CERT_INDEX: u32 = 0x01c0_0002;
/// NV index of the ECC NIST P-256 EK certificate.
pub const ECC_EK_CERT_INDEX: u32 = 0x01c0_000a;
/// Persistent handles where provisioning tools keep the EKs (TCG provisioning guidance).
pub const RSA_EK_PERSISTENT: u32 = 0x8101_0001;
pub const ECC_EK_PERSISTENT: u32 = 0x8101_0002;

/// How the TPM is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TpmTarget {
    /// A device node (normally [`DEFAULT_DEVICE`]).
    Device(PathBuf),
    /// A TCTI configuration string, e.g. `swtpm:host=127.0.0.1,port=2321`.
    Tcti(String),
}

impl TpmTarget {
    /// `LAPWING_TCTI`, then `TPM2TOOLS_TCTI`, then `TCTI` (the names tpm2-tools and the TSS
    /// use), else the device: `LAPWING_TPM_DEVICE` or [`DEFAULT_DEVICE`].
    pub fn from_env() -> Self {
        for name in ["LAPWING_TCTI", "TPM2TOOLS_TCTI", "TCTI"] {
            if let Ok(value) = std::env::var(name)
                && !value.trim().is_empty()
            {
                return Self::Tcti(value.trim().to_owned());
            }
        }
        Self::Device(
            std::env::var_os("LAPWING_TPM_DEVICE")
                .map_or_else(|| PathBuf::from(DEFAULT_DEVICE), PathBuf::from),
        )
    }
}

impl std::fmt::Display for TpmTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device(path) => write!(f, "device {}", path.display()),
            Self::Tcti(conf) => write!(f, "TCTI {conf}"),
        }
    }
}

/// Which way to find the EK. `Auto` is what production uses; the others exist so that tests
/// can check that all ways agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EkMethod {
    #[default]
    Auto,
    Certificate,
    Persistent,
    Template,
}

/// Where the EK's public key was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EkOrigin {
    Certificate,
    Persistent,
    Template,
}

/// The EK's public key in canonical form.
#[derive(Clone, PartialEq, Eq)]
pub struct EkPublic {
    /// `"rsa2048"`, `"ecc-p256"`, …
    pub algorithm: String,
    pub origin: EkOrigin,
    /// The modulus (RSA) or x ‖ y (ECC): the anchor's canonical bytes.
    pub canonical: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for EkPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key identifies the machine: never in logs.
        f.debug_struct("EkPublic")
            .field("algorithm", &self.algorithm)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// What reading the TPM found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TpmState {
    Present(EkPublic),
    /// No TPM device on this machine.
    Absent,
    /// A TPM, but this user may not open it (on Linux `/dev/tpmrm0` is usually `tss` only).
    PermissionDenied,
    Failed(String),
    /// No answer within the deadline.
    TimedOut,
    /// This build or platform has no TPM support.
    Unsupported,
}

impl TpmState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Present(_) => "present",
            Self::Absent => "absent",
            Self::PermissionDenied => "permission-denied",
            Self::Failed(_) => "failed",
            Self::TimedOut => "timed-out",
            Self::Unsupported => "unsupported",
        }
    }
}

/// The outcome of one TPM read, with how long it took.
#[derive(Clone, Debug)]
pub struct TpmReading {
    pub state: TpmState,
    pub target: TpmTarget,
    pub elapsed: Duration,
}

/// Reads the EK through `target`, giving up after `timeout`.
pub fn read_ek(target: &TpmTarget, method: EkMethod, timeout: Duration) -> TpmReading {
    let start = Instant::now();
    let state = read_with_deadline(target, method, timeout);
    TpmReading {
        state,
        target: target.clone(),
        elapsed: start.elapsed(),
    }
}

fn read_with_deadline(target: &TpmTarget, method: EkMethod, timeout: Duration) -> TpmState {
    if !cfg!(all(feature = "tpm", target_os = "linux")) {
        return TpmState::Unsupported;
    }
    if let TpmTarget::Device(path) = target {
        // Check the node first: a missing or forbidden device is a state, and the TSS would
        // only report it as a generic I/O error (and log it to stderr).
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return TpmState::Absent,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return TpmState::PermissionDenied;
            }
            Err(e) => return TpmState::Failed(format!("{}: {e}", path.display())),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let target = target.clone();
    let spawned = std::thread::Builder::new()
        .name("lapwing-tpm".to_owned())
        .spawn(move || {
            // The receiver may be gone after a timeout; nothing is left to tell then.
            let _ = tx.send(blocking::read(&target, method));
        });
    if let Err(e) = spawned {
        return TpmState::Failed(format!("cannot start the TPM thread: {e}"));
    }
    // On timeout the thread is left to finish (or hang) on its own: a TSS call cannot be
    // cancelled, and it holds nothing the caller needs.
    match rx.recv_timeout(timeout) {
        Ok(state) => state,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => TpmState::TimedOut,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            TpmState::Failed("the TPM thread ended without an answer".to_owned())
        }
    }
}

/// Strips the leading zero bytes of a big-endian unsigned integer.
pub fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// `x ‖ y`, each left-padded with zeros to `size` bytes (leading zeros are not significant in
/// TPM or DER encodings of a coordinate).
pub fn ecc_canonical(x: &[u8], y: &[u8], size: usize) -> Option<Vec<u8>> {
    let x = strip_leading_zeros(x);
    let y = strip_leading_zeros(y);
    if x.len() > size || y.len() > size {
        return None;
    }
    let mut out = vec![0u8; 2 * size];
    out[size - x.len()..size].copy_from_slice(x);
    out[2 * size - y.len()..].copy_from_slice(y);
    Some(out)
}

/// The public key inside a DER X.509 certificate, in canonical form, with its algorithm name.
/// NV areas are often larger than the certificate: bytes after the outer SEQUENCE are ignored.
#[cfg(all(feature = "tpm", target_os = "linux"))]
pub fn certificate_public_key(der: &[u8]) -> Result<(String, Vec<u8>), String> {
    use picky_asn1_x509::{Certificate, PublicKey};
    let der = der_prefix(der).ok_or("not a DER SEQUENCE")?;
    let cert: Certificate =
        picky_asn1_der::from_bytes(der).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    match &cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
    {
        PublicKey::Rsa(rsa) => {
            let modulus = strip_leading_zeros(rsa.0.modulus.as_unsigned_bytes_be()).to_vec();
            Ok((format!("rsa{}", modulus.len() * 8), modulus))
        }
        PublicKey::Ec(point) => {
            let bytes = point.0.payload_view();
            // An uncompressed point: 0x04 ‖ x ‖ y.
            match bytes.split_first() {
                Some((4, xy)) if xy.len() % 2 == 0 && !xy.is_empty() => {
                    let size = xy.len() / 2;
                    let canonical = ecc_canonical(&xy[..size], &xy[size..], size)
                        .ok_or("malformed EC point")?;
                    Ok((ecc_name(size), canonical))
                }
                _ => Err("the EC public key is not an uncompressed point".to_owned()),
            }
        }
        _ => Err("the certificate's key is neither RSA nor EC".to_owned()),
    }
}

#[cfg(all(feature = "tpm", target_os = "linux"))]
fn ecc_name(coordinate_size: usize) -> String {
    match coordinate_size {
        32 => "ecc-p256".to_owned(),
        48 => "ecc-p384".to_owned(),
        66 => "ecc-p521".to_owned(),
        n => format!("ecc-{}", n * 8),
    }
}

/// The bytes of the DER TLV at the start of `bytes` (a SEQUENCE), without what follows.
#[cfg(all(feature = "tpm", target_os = "linux"))]
fn der_prefix(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first() != Some(&0x30) {
        return None;
    }
    let first = *bytes.get(1)?;
    let (header, length) = if first < 0x80 {
        (2usize, usize::from(first))
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let mut length = 0usize;
        for i in 0..count {
            length = (length << 8) | usize::from(*bytes.get(2 + i)?);
        }
        (2 + count, length)
    };
    bytes.get(..header.checked_add(length)?)
}

#[cfg(all(feature = "tpm", target_os = "linux"))]
mod blocking {
    //! The TSS calls, run on the TPM thread.

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

    use super::{
        ECC_EK_CERT_INDEX, ECC_EK_PERSISTENT, EkMethod, EkOrigin, EkPublic, RSA_EK_CERT_INDEX,
        RSA_EK_PERSISTENT, TpmState, TpmTarget, certificate_public_key, ecc_canonical,
        strip_leading_zeros,
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
            CapabilityData::Handles(list) => {
                Ok(list.into_inner().into_iter().map(u32::from).collect())
            }
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
}

#[cfg(not(all(feature = "tpm", target_os = "linux")))]
mod blocking {
    use super::{EkMethod, TpmState, TpmTarget};

    pub(super) fn read(_: &TpmTarget, _: EkMethod) -> TpmState {
        TpmState::Unsupported
    }
}

#[cfg(all(test, feature = "tpm", target_os = "linux"))]
mod tests;
