//! Putting it together: read every source, choose the anchor (with pinning and the anchor
//! file), count CPUs, flag VMs, and report all of it.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::anchor::{self, AnchorSource, PinOutcome, Reading, Selection, Verdict};
use crate::anchor_file::{self, AnchorFileState, AnchorRecord};
use crate::cpu::CpuCounts;
use crate::error::MachineError;
use crate::os_id::{self, OsIdState};
use crate::smbios::{self, LiveSmbios, SmbiosForm, SmbiosInfo};
use crate::tpm::{self, EkMethod, TpmReading, TpmState, TpmTarget};

/// Where the SMBIOS table comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmbiosInput {
    /// The live table; on Linux the directory holding `smbios_entry_point` and `DMI`.
    Live(PathBuf),
    /// A dump file instead of the live table.
    File(PathBuf),
}

/// What to read and how.
#[derive(Clone, Debug)]
pub struct Options {
    pub smbios: SmbiosInput,
    /// `None`: do not consult the TPM (it then counts as absent).
    pub tpm: Option<TpmTarget>,
    pub ek_method: EkMethod,
    pub tpm_timeout: Duration,
    /// The OS id file (Linux; other platforms ask the system).
    pub machine_id: PathBuf,
    /// `None`: do not consult an anchor file.
    pub anchor_file: Option<PathBuf>,
    /// The source chosen at first activation; without one, the anchor file's source is the
    /// machine's pin.
    pub pinned: Option<AnchorSource>,
}

impl Options {
    /// The real machine, with the environment's overrides: `LAPWING_SMBIOS_DIR`,
    /// `LAPWING_TCTI` (or `TPM2TOOLS_TCTI`, `TCTI`), `LAPWING_TPM_DEVICE`,
    /// `LAPWING_MACHINE_ID_FILE`, `LAPWING_ANCHOR_FILE`.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
        };
        Self {
            smbios: SmbiosInput::Live(var("LAPWING_SMBIOS_DIR", smbios::LINUX_SMBIOS_DIR)),
            tpm: Some(TpmTarget::from_env()),
            ek_method: EkMethod::Auto,
            tpm_timeout: tpm::DEFAULT_TIMEOUT,
            machine_id: var("LAPWING_MACHINE_ID_FILE", os_id::LINUX_MACHINE_ID),
            anchor_file: Some(anchor_file::default_path()),
            pinned: None,
        }
    }
}

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

/// Reads the machine. Fails only when a dump file was asked for and cannot be read; anything
/// missing or forbidden on the machine itself is a state in the result.
pub fn identify(options: &Options) -> Result<Identity, MachineError> {
    let (smbios_file, smbios) = match &options.smbios {
        SmbiosInput::Live(dir) => (None, smbios::read_live(dir)),
        SmbiosInput::File(path) => (
            Some(path.clone()),
            LiveSmbios::Available(smbios::read_dump(path)?),
        ),
    };
    let tpm = options
        .tpm
        .as_ref()
        .map(|target| tpm::read_ek(target, options.ek_method, options.tpm_timeout));
    let os_id = os_id::read(&options.machine_id);
    let anchor_file = options
        .anchor_file
        .as_ref()
        .map(|path| (path.clone(), anchor_file::read(path)));
    Ok(resolve(
        smbios_file,
        smbios,
        tpm,
        os_id,
        anchor_file,
        options.pinned,
    ))
}

/// Chooses the anchor from what was read. Separate from the reading so that tests can put any
/// machine together.
pub fn resolve(
    smbios_file: Option<PathBuf>,
    smbios: LiveSmbios,
    tpm: Option<TpmReading>,
    os_id: OsIdState,
    anchor_file: Option<(PathBuf, AnchorFileState)>,
    pinned: Option<AnchorSource>,
) -> Identity {
    let mut warnings = Vec::new();
    let info = match &smbios {
        LiveSmbios::Available(info) => Some(info),
        _ => None,
    };
    let readings = vec![
        tpm_reading(tpm.as_ref()),
        uuid_reading(&smbios),
        board_reading(&smbios),
        os_id_reading(&os_id),
    ];
    let record = anchor_file
        .as_ref()
        .and_then(|(_, state)| state.record().copied());
    if let Some((path, state)) = &anchor_file {
        match state {
            AnchorFileState::Corrupt(reason) | AnchorFileState::Unreadable(reason) => {
                warnings.push(format!(
                    "the anchor file {} is {} ({reason}): ignored",
                    path.display(),
                    state.name()
                ));
            }
            AnchorFileState::Missing | AnchorFileState::Valid(_) => {}
        }
    }
    let pin = pinned.or(record.map(|r| r.source));
    let selection = anchor::select(&readings, pin);
    let hardware = selection.chosen.map(|(source, digest)| Anchor {
        source,
        digest,
        path: AnchorPath::Hardware,
    });
    let anchor = if selection.authoritative() {
        if let (Some(hw), Some(rec)) = (hardware, record)
            && hw.source == rec.source
            && hw.digest != rec.digest
        {
            warnings.push(format!(
                "the anchor file disagrees with the hardware for {} (it is stale; \
                 `lapctl machine anchor --write` as root rewrites it)",
                hw.source
            ));
        }
        hardware
    } else if let Some(rec) = record {
        Some(Anchor {
            source: rec.source,
            digest: rec.digest,
            path: AnchorPath::AnchorFile,
        })
    } else {
        if let Some(hw) = hardware {
            let blocked: Vec<String> = selection
                .unreadable()
                .iter()
                .map(|(s, why)| format!("{s} ({why})"))
                .collect();
            warnings.push(format!(
                "{} could not be read and there is no anchor file: {} was chosen, which may \
                 not be the anchor root sees (run `lapctl machine anchor --write` as root)",
                blocked.join(", "),
                hw.source
            ));
        }
        hardware
    };
    general_warnings(&smbios, anchor, &mut warnings);
    let mut vm_hints = info.map(|i| i.vm_hints.clone()).unwrap_or_default();
    vm_hints.extend(crate::vm::cpuid_hint());
    let cpu = CpuCounts::detect(info.and_then(|i| i.sockets));
    Identity {
        smbios_file,
        smbios,
        tpm,
        os_id,
        readings,
        selection,
        anchor,
        anchor_file,
        cpu,
        vm_hints,
        warnings,
    }
}

/// What the report should always say about SMBIOS and the chosen source.
fn general_warnings(smbios: &LiveSmbios, anchor: Option<Anchor>, warnings: &mut Vec<String>) {
    match smbios {
        LiveSmbios::NotAvailable => warnings.push(
            "SMBIOS is not available on this machine (no firmware table): its UUID and \
             baseboard cannot anchor it"
                .to_owned(),
        ),
        LiveSmbios::Failed(reason) => warnings.push(format!("SMBIOS could not be read: {reason}")),
        LiveSmbios::Available(_) | LiveSmbios::PermissionDenied => {}
    }
    match anchor {
        Some(a) if a.source.is_weakest() => warnings.push(
            "the anchor is the OS installation id, the weakest source: it changes when the \
             OS is reinstalled and is shared by cloned images"
                .to_owned(),
        ),
        None => warnings.push("no anchor source is present and plausible".to_owned()),
        Some(_) => {}
    }
}

fn tpm_reading(tpm: Option<&TpmReading>) -> Reading {
    let source = AnchorSource::TpmEk;
    let Some(reading) = tpm else {
        return Reading::missing(
            source,
            Verdict::Absent("the TPM was not consulted".to_owned()),
        );
    };
    let verdict = match &reading.state {
        TpmState::Present(ek) => {
            let implausible = ek
                .canonical
                .iter()
                .all(|&b| b == 0)
                .then(|| "the endorsement key is all zero".to_owned());
            let raw = format!(
                "{} from {:?}: {}",
                ek.algorithm,
                ek.origin,
                hex::encode(ek.canonical.as_slice())
            );
            return Reading::present(source, ek.canonical.to_vec(), raw, implausible);
        }
        TpmState::Absent => Verdict::Absent(format!("no TPM ({})", reading.target)),
        TpmState::Unsupported => Verdict::Absent("this build has no TPM support".to_owned()),
        TpmState::PermissionDenied => {
            Verdict::Unreadable(format!("permission denied on the TPM ({})", reading.target))
        }
        TpmState::Failed(reason) => Verdict::Unreadable(reason.clone()),
        TpmState::TimedOut => Verdict::Unreadable(format!(
            "no answer from the TPM within {} ms",
            reading.elapsed.as_millis()
        )),
    };
    Reading::missing(source, verdict)
}

fn smbios_missing(smbios: &LiveSmbios) -> Verdict {
    match smbios {
        LiveSmbios::PermissionDenied => Verdict::Unreadable(
            "permission denied on the SMBIOS table (only root may read it)".to_owned(),
        ),
        LiveSmbios::Failed(reason) => Verdict::Unreadable(format!("SMBIOS: {reason}")),
        LiveSmbios::NotAvailable | LiveSmbios::Available(_) => {
            Verdict::Absent("SMBIOS is not available".to_owned())
        }
    }
}

fn uuid_reading(smbios: &LiveSmbios) -> Reading {
    let source = AnchorSource::SmbiosUuid;
    let LiveSmbios::Available(info) = smbios else {
        return Reading::missing(source, smbios_missing(smbios));
    };
    match info.system_uuid {
        Some(uuid) => Reading::present(
            source,
            uuid.as_bytes().to_vec(),
            uuid.to_string(),
            smbios::uuid_implausibility(&uuid).map(str::to_owned),
        ),
        None => Reading::missing(
            source,
            Verdict::Absent("the table has no System UUID (type 1)".to_owned()),
        ),
    }
}

fn board_reading(smbios: &LiveSmbios) -> Reading {
    let source = AnchorSource::SmbiosBoard;
    let LiveSmbios::Available(info) = smbios else {
        return Reading::missing(source, smbios_missing(smbios));
    };
    let Some(board) = &info.board else {
        return Reading::missing(
            source,
            Verdict::Absent("the table has no baseboard (type 2)".to_owned()),
        );
    };
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    let (m, p, s) = (
        field(&board.manufacturer),
        field(&board.product),
        field(&board.serial),
    );
    Reading::present(
        source,
        anchor::board_canonical(&m, &p, &s),
        format!("{m} / {p} / {s}"),
        board
            .placeholder_field()
            .map(|f| format!("the baseboard {f} is a placeholder")),
    )
}

fn os_id_reading(os_id: &OsIdState) -> Reading {
    let source = AnchorSource::OsId;
    match os_id {
        OsIdState::Present(id) => Reading::present(
            source,
            id.as_bytes().to_vec(),
            id.clone(),
            os_id::implausibility(id).map(str::to_owned),
        ),
        OsIdState::Absent => {
            Reading::missing(source, Verdict::Absent("no OS installation id".to_owned()))
        }
        OsIdState::PermissionDenied => Reading::missing(
            source,
            Verdict::Unreadable("permission denied on the OS installation id".to_owned()),
        ),
        OsIdState::Failed(reason) => Reading::missing(source, Verdict::Unreadable(reason.clone())),
    }
}

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

/// What `lapctl machine anchor --write` does: the record to store, given what root read now.
/// Refuses (leaving the file alone) when the pinned source merely could not be read this time,
/// so that a TPM that was slow at boot does not rebind every activation on the machine.
pub fn anchor_record_to_write(identity: &Identity, now: u64) -> Result<AnchorRecord, MachineError> {
    if let PinOutcome::PinnedUnreadable { pinned, reason } = &identity.selection.pin {
        return Err(MachineError::PinnedUnreadable {
            source_name: pinned.tag().to_owned(),
            reason: reason.clone(),
        });
    }
    match identity.anchor {
        Some(anchor) if anchor.path == AnchorPath::Hardware => Ok(AnchorRecord {
            source: anchor.source,
            digest: anchor.digest,
            written: now,
        }),
        Some(_) => Err(MachineError::NoAnchor(
            "the hardware could not be read; writing the anchor file needs root".to_owned(),
        )),
        None => Err(MachineError::NoAnchor(
            identity
                .readings
                .iter()
                .map(|r| format!("{}: {}", r.source, r.verdict.detail().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join("; "),
        )),
    }
}

#[cfg(test)]
mod tests;
