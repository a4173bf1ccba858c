//! What a TPM read is asked for and what it finds: where the TPM is reached, which way to find
//! the EK, the EK's public key, and the states a read ends in.

use std::path::PathBuf;

use serde::Serialize;
use zeroize::Zeroizing;

/// The resource-managed TPM device on Linux.
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";

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
