//! What reading the machine gives: the anchor, which way it was found, and everything read.

use std::path::PathBuf;

use serde::Serialize;

use crate::anchor::{AnchorSource, Reading, Selection};
use crate::anchor_file::AnchorFileState;
use crate::cpu::CpuCounts;
use crate::os_id::OsIdState;
use crate::smbios::LiveSmbios;
use crate::tpm::TpmReading;

/// Which way the anchor was found: the report says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnchorPath {
    /// This process read the source itself.
    Hardware,
    /// This process could not read the hardware; root's anchor file supplied the digest.
    AnchorFile,
}

impl AnchorPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hardware => "hardware",
            Self::AnchorFile => "anchor-file",
        }
    }
}

/// The machine's anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub source: AnchorSource,
    pub digest: [u8; 32],
    pub path: AnchorPath,
}

impl Anchor {
    /// `MachineHash = HMAC-SHA256(server Ed25519 public key, anchor digest)` (profile §3).
    pub fn machine_hash(&self, server_ed25519_public: &[u8; 32]) -> [u8; 32] {
        lap_proto::machine_hash(server_ed25519_public, &self.digest)
    }
}

/// Everything read about the machine.
#[derive(Debug)]
pub struct Identity {
    /// Whether the table came from a file, and what was found.
    pub smbios_file: Option<PathBuf>,
    pub smbios: LiveSmbios,
    /// `None` when the TPM was not consulted.
    pub tpm: Option<TpmReading>,
    pub os_id: OsIdState,
    pub readings: Vec<Reading>,
    pub selection: Selection,
    pub anchor: Option<Anchor>,
    pub anchor_file: Option<(PathBuf, AnchorFileState)>,
    pub cpu: CpuCounts,
    pub vm_hints: Vec<String>,
    pub warnings: Vec<String>,
}

impl Identity {
    pub fn virtual_machine(&self) -> bool {
        !self.vm_hints.is_empty()
    }

    /// The per-vendor MachineHash, when there is an anchor.
    pub fn machine_hash(&self, server_ed25519_public: &[u8; 32]) -> Option<[u8; 32]> {
        self.anchor.map(|a| a.machine_hash(server_ed25519_public))
    }

    /// The seed's NumCPUs and NumCores.
    pub fn seed_counts(&self) -> (u8, u8) {
        (self.cpu.seed_num_cpus, self.cpu.seed_num_cores)
    }
}
