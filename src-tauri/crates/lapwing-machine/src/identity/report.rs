//! The report `lapctl machine` prints (`--json` as is): every source's verdict, the TPM, the
//! SMBIOS table and the anchor file, with raw identifiers withheld unless asked for.

use serde::Serialize;

use crate::anchor::{AnchorSource, PinOutcome};
use crate::anchor_file::AnchorFileState;
use crate::cpu::CpuCounts;
use crate::os_id::OsIdState;
use crate::smbios::{LiveSmbios, SmbiosForm, SmbiosInfo};
use crate::tpm::{self, TpmState};

use super::model::{Anchor, AnchorPath, Identity};

/// The report `lapctl machine --json` prints. Raw identifiers (UUID, serials, EK, OS id) appear
/// only with `show_raw`, except in the `smbios` object of a dump file given on the command
/// line: its caller holds those bytes already, and reading them out is the point.
#[derive(Debug, Serialize)]
pub struct Report {
    pub schema: u32,
    pub anchor: Option<AnchorReport>,
    pub sources: Vec<SourceReport>,
    pub tpm: TpmReport,
    pub smbios: SmbiosReport,
    pub os_id: OsIdReport,
    pub virtual_machine: bool,
    pub vm_hints: Vec<String>,
    pub cpu: CpuCounts,
    pub anchor_file: Option<AnchorFileReport>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct AnchorReport {
    pub source: AnchorSource,
    pub digest: String,
    /// `hardware` or `anchor-file`.
    pub path: AnchorPath,
    pub weakest: bool,
    pub pinned: Option<AnchorSource>,
    /// `not-pinned`, `kept`, `fell-back` or `pinned-unreadable`.
    pub pin: &'static str,
    pub note: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SourceReport {
    pub source: AnchorSource,
    pub verdict: &'static str,
    pub detail: Option<String>,
    pub weakest: bool,
    pub chosen: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct TpmReport {
    pub state: &'static str,
    pub via: Option<String>,
    pub detail: Option<String>,
    pub algorithm: Option<String>,
    pub origin: Option<tpm::EkOrigin>,
    pub elapsed_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct BoardReport {
    pub manufacturer: Option<String>,
    pub product: Option<String>,
    pub serial: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SmbiosReport {
    /// `available`, `not-available`, `permission-denied` or `failed`.
    pub state: &'static str,
    /// `live` or `file`.
    pub origin: &'static str,
    pub file: Option<String>,
    pub form: Option<SmbiosForm>,
    pub version: Option<String>,
    pub structures: usize,
    pub system_uuid: Option<String>,
    pub system_uuid_plausible: bool,
    pub board: BoardReport,
    pub sockets: Option<usize>,
    pub virtual_machine: bool,
    pub vm_hints: Vec<String>,
    /// Fields withheld because raw identifiers were not asked for.
    pub redacted: Vec<&'static str>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct OsIdReport {
    pub state: &'static str,
    pub weakest: bool,
}

#[derive(Debug, Serialize)]
pub struct AnchorFileReport {
    pub path: String,
    pub state: &'static str,
    pub source: Option<AnchorSource>,
    pub written: Option<u64>,
    pub detail: Option<String>,
}

impl Identity {
    pub fn report(&self, show_raw: bool) -> Report {
        let chosen = self.anchor.map(|a| a.source);
        Report {
            schema: 1,
            anchor: self.anchor.map(|a| self.anchor_report(a)),
            sources: self
                .readings
                .iter()
                .map(|r| SourceReport {
                    source: r.source,
                    verdict: r.verdict.name(),
                    detail: r.verdict.detail().map(str::to_owned),
                    weakest: r.source.is_weakest(),
                    chosen: chosen == Some(r.source),
                    raw: if show_raw {
                        r.raw().map(str::to_owned)
                    } else {
                        None
                    },
                })
                .collect(),
            tpm: self.tpm_report(),
            smbios: self.smbios_report(show_raw),
            os_id: OsIdReport {
                state: match self.os_id {
                    OsIdState::Present(_) => "present",
                    OsIdState::Absent => "absent",
                    OsIdState::PermissionDenied => "permission-denied",
                    OsIdState::Failed(_) => "failed",
                },
                weakest: true,
            },
            virtual_machine: self.virtual_machine(),
            vm_hints: self.vm_hints.clone(),
            cpu: self.cpu,
            anchor_file: self.anchor_file.as_ref().map(|(path, state)| {
                let record = state.record();
                AnchorFileReport {
                    path: path.display().to_string(),
                    state: state.name(),
                    source: record.map(|r| r.source),
                    written: record.map(|r| r.written),
                    detail: match state {
                        AnchorFileState::Corrupt(d) | AnchorFileState::Unreadable(d) => {
                            Some(d.clone())
                        }
                        AnchorFileState::Missing | AnchorFileState::Valid(_) => None,
                    },
                }
            }),
            warnings: self.warnings.clone(),
        }
    }

    fn anchor_report(&self, anchor: Anchor) -> AnchorReport {
        let (pinned, pin) = match &self.selection.pin {
            PinOutcome::NotPinned => (None, "not-pinned"),
            PinOutcome::Kept(s) => (Some(*s), "kept"),
            PinOutcome::FellBack { pinned, .. } => (Some(*pinned), "fell-back"),
            PinOutcome::PinnedUnreadable { pinned, .. } => (Some(*pinned), "pinned-unreadable"),
        };
        let mut note = self.selection.pin_note();
        if anchor.path == AnchorPath::AnchorFile {
            let blocked: Vec<String> = self
                .selection
                .unreadable()
                .iter()
                .map(|(s, why)| format!("{s}: {why}"))
                .collect();
            note = Some(format!(
                "read from root's anchor file: this user cannot read the hardware ({})",
                blocked.join("; ")
            ));
        }
        AnchorReport {
            source: anchor.source,
            digest: hex::encode(anchor.digest),
            path: anchor.path,
            weakest: anchor.source.is_weakest(),
            pinned,
            pin,
            note,
        }
    }

    fn tpm_report(&self) -> TpmReport {
        let Some(reading) = &self.tpm else {
            return TpmReport {
                state: "not-consulted",
                via: None,
                detail: None,
                algorithm: None,
                origin: None,
                elapsed_ms: None,
            };
        };
        let (algorithm, origin, detail) = match &reading.state {
            TpmState::Present(ek) => (Some(ek.algorithm.clone()), Some(ek.origin), None),
            TpmState::Failed(reason) => (None, None, Some(reason.clone())),
            _ => (None, None, None),
        };
        TpmReport {
            state: reading.state.name(),
            via: Some(reading.target.to_string()),
            detail,
            algorithm,
            origin,
            elapsed_ms: Some(reading.elapsed.as_secs_f64() * 1000.0),
        }
    }

    fn smbios_report(&self, show_raw: bool) -> SmbiosReport {
        let from_file = self.smbios_file.is_some();
        let reveal = show_raw || from_file;
        let mut redacted = Vec::new();
        let empty = SmbiosReport {
            state: self.smbios.state_name(),
            origin: if from_file { "file" } else { "live" },
            file: self.smbios_file.as_ref().map(|p| p.display().to_string()),
            form: None,
            version: None,
            structures: 0,
            system_uuid: None,
            system_uuid_plausible: false,
            board: BoardReport {
                manufacturer: None,
                product: None,
                serial: None,
            },
            sockets: None,
            virtual_machine: false,
            vm_hints: Vec::new(),
            redacted: Vec::new(),
            warnings: Vec::new(),
        };
        let info: &SmbiosInfo = match &self.smbios {
            LiveSmbios::Available(info) => info,
            LiveSmbios::NotAvailable => {
                return SmbiosReport {
                    warnings: vec![
                        "not available: this machine exposes no SMBIOS table".to_owned(),
                    ],
                    ..empty
                };
            }
            LiveSmbios::PermissionDenied => {
                return SmbiosReport {
                    warnings: vec![
                        "permission denied: only root may read the SMBIOS table".to_owned(),
                    ],
                    ..empty
                };
            }
            LiveSmbios::Failed(reason) => {
                return SmbiosReport {
                    warnings: vec![reason.clone()],
                    ..empty
                };
            }
        };
        let system_uuid = info.system_uuid.map(|u| u.to_string());
        if system_uuid.is_some() && !reveal {
            redacted.push("system_uuid");
        }
        let board = info.board.clone().unwrap_or_default();
        if board.serial.is_some() && !reveal {
            redacted.push("board.serial");
        }
        SmbiosReport {
            form: Some(info.form),
            version: info.version.map(|v| v.to_string()),
            structures: info.structures,
            system_uuid: system_uuid.filter(|_| reveal),
            system_uuid_plausible: info.system_uuid_plausible(),
            board: BoardReport {
                manufacturer: board.manufacturer,
                product: board.product,
                serial: board.serial.filter(|_| reveal),
            },
            sockets: info.sockets,
            virtual_machine: info.virtual_machine(),
            vm_hints: info.vm_hints.clone(),
            redacted,
            warnings: info.warnings.clone(),
            ..empty
        }
    }
}
