//! Choosing the anchor from what was read: the selection with the pin and root's anchor file,
//! the warnings the report carries, and the record `lapctl machine anchor --write` stores.

use std::path::PathBuf;

use crate::anchor::{self, AnchorSource, PinOutcome};
use crate::anchor_file::{AnchorFileState, AnchorRecord};
use crate::cpu::CpuCounts;
use crate::error::MachineError;
use crate::os_id::OsIdState;
use crate::smbios::LiveSmbios;
use crate::tpm::TpmReading;

use super::model::{Anchor, AnchorPath, Identity};
use super::readings::{board_reading, os_id_reading, tpm_reading, uuid_reading};

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
