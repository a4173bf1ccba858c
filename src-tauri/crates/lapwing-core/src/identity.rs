//! The machine as the seed sees it: an anchor digest and CPU counts, behind a trait so the
//! engine is tested with a fixed machine and runs with the real one (`lapwing-machine`).

use serde::Serialize;

/// What the seed needs from the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineFacts {
    #[serde(skip)]
    pub anchor_digest: [u8; 32],
    /// `tpm-ek`, `smbios-uuid`, `smbios-board` or `os-id`.
    pub anchor_source: String,
    /// `hardware` or `anchor-file`.
    pub anchor_path: String,
    /// True for the OS id: a reinstall changes it.
    pub weak: bool,
    pub num_cpus: u8,
    pub num_cores: u8,
    pub virtual_machine: bool,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error(
        "no machine anchor could be read (no TPM, no usable SMBIOS, no OS id): run `lapctl machine` for details"
    )]
    NoAnchor,
    #[error("reading the machine identity: {0}")]
    Machine(#[from] lapwing_machine::MachineError),
}

/// Reads the machine; `pinned` is the anchor source chosen at first activation.
pub trait MachineIdentity: Send + Sync + std::fmt::Debug {
    fn read(&self, pinned: Option<&str>) -> Result<MachineFacts, IdentityError>;
}

/// The real machine, through `lapwing-machine` (its environment overrides apply).
#[derive(Debug, Default, Clone, Copy)]
pub struct HardwareIdentity;

impl MachineIdentity for HardwareIdentity {
    fn read(&self, pinned: Option<&str>) -> Result<MachineFacts, IdentityError> {
        let mut options = lapwing_machine::Options::from_env();
        options.pinned = pinned.and_then(|tag| tag.parse().ok());
        let identity = lapwing_machine::identify(&options)?;
        let anchor = identity.anchor.ok_or(IdentityError::NoAnchor)?;
        let (num_cpus, num_cores) = identity.seed_counts();
        Ok(MachineFacts {
            anchor_digest: anchor.digest,
            anchor_source: anchor.source.tag().to_owned(),
            anchor_path: anchor.path.as_str().to_owned(),
            weak: anchor.source.is_weakest(),
            num_cpus,
            num_cores,
            virtual_machine: identity.virtual_machine(),
            warnings: identity.warnings.clone(),
        })
    }
}

/// A machine fixed in advance: tests, and the demo's stand-in.
#[derive(Debug, Clone)]
pub struct FixedIdentity(pub MachineFacts);

impl FixedIdentity {
    pub fn new(anchor_digest: [u8; 32]) -> Self {
        Self(MachineFacts {
            anchor_digest,
            anchor_source: "smbios-uuid".into(),
            anchor_path: "hardware".into(),
            weak: false,
            num_cpus: 1,
            num_cores: 4,
            virtual_machine: false,
            warnings: Vec::new(),
        })
    }
}

impl MachineIdentity for FixedIdentity {
    fn read(&self, _pinned: Option<&str>) -> Result<MachineFacts, IdentityError> {
        Ok(self.0.clone())
    }
}
