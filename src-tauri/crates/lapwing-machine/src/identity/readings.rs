//! Each source's state as a [`Reading`] for the anchor selection: present with its canonical
//! bytes and whether it is plausible, or absent or unreadable and why.

use crate::anchor::{self, AnchorSource, Reading, Verdict};
use crate::os_id::{self, OsIdState};
use crate::smbios::{self, LiveSmbios};
use crate::tpm::{TpmReading, TpmState};

pub(super) fn tpm_reading(tpm: Option<&TpmReading>) -> Reading {
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

pub(super) fn uuid_reading(smbios: &LiveSmbios) -> Reading {
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

pub(super) fn board_reading(smbios: &LiveSmbios) -> Reading {
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

pub(super) fn os_id_reading(os_id: &OsIdState) -> Reading {
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
