//! The anchor as a whole: order, pinning, the anchor file, the report.

use std::time::Duration;

use lap_proto::Uuid;
use zeroize::Zeroizing;

use super::*;
use crate::anchor::PinOutcome;
use crate::anchor_file::{AnchorFileState, AnchorRecord};
use crate::os_id::OsIdState;
use crate::smbios::parse_dump;
use crate::test_util::{SmbiosWriter, desktop};
use crate::tpm::{TpmReading, TpmState};

const UUID: Uuid = Uuid::from_u128(0x4c4c_4544_0035_1052_8036_b4c0_4f31_3432);
const V3_2: crate::SmbiosVersion = crate::SmbiosVersion::new(3, 2);
/// `anchor_digest(smbios-uuid, UUID)`, from Python's hashlib.
const UUID_DIGEST: &str = "35316580d1ef42afb9044583af8b73c950dd716485ed8855fb5080ee48dd01e0";

fn smbios_of(w: &SmbiosWriter) -> LiveSmbios {
    LiveSmbios::Available(parse_dump(&w.windows_header(V3_2)).expect("parses"))
}

fn with_tpm(ek: &[u8]) -> TpmReading {
    TpmReading {
        state: TpmState::Present(tpm::EkPublic {
            algorithm: "rsa2048".to_owned(),
            origin: tpm::EkOrigin::Certificate,
            canonical: Zeroizing::new(ek.to_vec()),
        }),
        target: TpmTarget::Tcti("test".to_owned()),
        elapsed: Duration::from_millis(1),
    }
}

fn no_tpm() -> TpmReading {
    TpmReading {
        state: TpmState::Absent,
        target: TpmTarget::Device("/dev/tpmrm0".into()),
        elapsed: Duration::ZERO,
    }
}

fn os_id() -> OsIdState {
    OsIdState::Present("3d1219c7c4c5404aaa1f6d2a48adfda4".to_owned())
}

fn machine(
    smbios: LiveSmbios,
    tpm: TpmReading,
    file: Option<AnchorFileState>,
    pinned: Option<AnchorSource>,
) -> Identity {
    resolve(
        None,
        smbios,
        Some(tpm),
        os_id(),
        file.map(|state| (PathBuf::from("/test/anchor"), state)),
        pinned,
    )
}

fn source(identity: &Identity) -> Option<AnchorSource> {
    identity.anchor.map(|a| a.source)
}

#[test]
fn digest_and_machine_hash_known_answers() {
    let id = machine(smbios_of(&desktop(V3_2, UUID)), no_tpm(), None, None);
    let anchor = id.anchor.expect("anchor");
    assert_eq!(anchor.source, AnchorSource::SmbiosUuid);
    assert_eq!(anchor.path, AnchorPath::Hardware);
    assert_eq!(hex::encode(anchor.digest), UUID_DIGEST);
    // HMAC-SHA256(key = 32 × 0x01, msg = digest), from Python's hmac module.
    assert_eq!(
        hex::encode(id.machine_hash(&[1; 32]).expect("hash")),
        "9fb21a97ec7373a1232e99bb3bbeb2115c15fbb90d09e4b061736438adcb8fa1"
    );
    assert_ne!(id.machine_hash(&[1; 32]), id.machine_hash(&[2; 32]));
    assert_eq!(id.seed_counts().0, 1, "one populated socket");
}

#[test]
fn a_tpm_wins_when_nothing_is_pinned() {
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        with_tpm(&[7; 256]),
        None,
        None,
    );
    assert_eq!(source(&id), Some(AnchorSource::TpmEk));
}

#[test]
fn a_machine_anchored_on_its_smbios_uuid_keeps_it_after_a_tpm_appears() {
    let before = machine(smbios_of(&desktop(V3_2, UUID)), no_tpm(), None, None);
    assert_eq!(source(&before), Some(AnchorSource::SmbiosUuid));
    // The TPM is switched on in the firmware; the pinned source stays.
    let after = machine(
        smbios_of(&desktop(V3_2, UUID)),
        with_tpm(&[7; 256]),
        None,
        Some(AnchorSource::SmbiosUuid),
    );
    assert_eq!(after.anchor, before.anchor);
    assert_eq!(
        after.selection.pin,
        PinOutcome::Kept(AnchorSource::SmbiosUuid)
    );
    let report = after.report(false);
    assert_eq!(report.anchor.as_ref().map(|a| a.pin), Some("kept"));
}

#[test]
fn a_pinned_source_that_disappears_falls_back_and_says_so() {
    // A firmware update wipes the UUID to the placeholder: the board takes over.
    let mut w = SmbiosWriter::new();
    w.system("Acme", "Box", crate::smbios::PLACEHOLDER_UUID, V3_2)
        .baseboard("Acme", "Board", "BRD-0042")
        .end();
    let id = machine(
        smbios_of(&w),
        no_tpm(),
        None,
        Some(AnchorSource::SmbiosUuid),
    );
    assert_eq!(source(&id), Some(AnchorSource::SmbiosBoard));
    let note = id.selection.pin_note().expect("a note");
    assert!(note.contains("pinned source smbios-uuid is gone"), "{note}");
    assert!(note.contains("placeholder"), "{note}");
    assert!(note.contains("fell back to smbios-board"), "{note}");
    assert_eq!(id.report(false).anchor.map(|a| a.pin), Some("fell-back"));

    // The SMBIOS table vanishes altogether (moved into a VM): the OS id is the last resort.
    let id = machine(
        LiveSmbios::NotAvailable,
        no_tpm(),
        None,
        Some(AnchorSource::SmbiosUuid),
    );
    assert_eq!(source(&id), Some(AnchorSource::OsId));
    assert!(
        id.selection
            .pin_note()
            .expect("note")
            .contains("fell back to os-id")
    );
}

#[test]
fn no_smbios_reads_not_available_with_the_os_id_as_last_resort() {
    let id = machine(
        LiveSmbios::NotAvailable,
        no_tpm(),
        Some(AnchorFileState::Missing),
        None,
    );
    assert_eq!(source(&id), Some(AnchorSource::OsId));
    assert!(
        id.warnings
            .iter()
            .any(|w| w.contains("SMBIOS is not available"))
    );
    assert!(id.warnings.iter().any(|w| w.contains("weakest")));
    let report = id.report(false);
    assert_eq!(report.smbios.state, "not-available");
    assert!(report.smbios.warnings[0].starts_with("not available"));
    assert!(report.anchor.as_ref().is_some_and(|a| a.weakest));
    let os = report
        .sources
        .iter()
        .find(|s| s.source == AnchorSource::OsId)
        .expect("os-id");
    assert!(os.weakest && os.chosen);
    assert!(os.raw.is_none());
}

#[test]
fn a_user_who_cannot_read_the_hardware_uses_the_anchor_file() {
    let root = machine(smbios_of(&desktop(V3_2, UUID)), no_tpm(), None, None);
    let record = anchor_record_to_write(&root, 1_795_000_000).expect("root writes");
    let user = machine(
        LiveSmbios::PermissionDenied,
        TpmReading {
            state: TpmState::PermissionDenied,
            target: TpmTarget::Device("/dev/tpmrm0".into()),
            elapsed: Duration::ZERO,
        },
        Some(AnchorFileState::Valid(record)),
        None,
    );
    let anchor = user.anchor.expect("anchor");
    assert_eq!(anchor.path, AnchorPath::AnchorFile);
    assert_eq!(anchor.source, AnchorSource::SmbiosUuid);
    assert_eq!(anchor.digest, root.anchor.expect("root").digest);
    let report = user.report(false);
    let note = report.anchor.and_then(|a| a.note).expect("note");
    assert!(
        note.contains("anchor file") && note.contains("permission denied"),
        "{note}"
    );

    // Without a file the user gets the weaker source and a warning saying why.
    let user = machine(
        LiveSmbios::PermissionDenied,
        no_tpm(),
        Some(AnchorFileState::Missing),
        None,
    );
    assert_eq!(source(&user), Some(AnchorSource::OsId));
    assert!(
        user.warnings
            .iter()
            .any(|w| w.contains("could not be read and there is no anchor file")),
        "{:?}",
        user.warnings
    );
}

#[test]
fn hardware_that_is_readable_wins_over_a_stale_file_and_says_so() {
    let record = AnchorRecord {
        source: AnchorSource::SmbiosUuid,
        digest: [0x11; 32],
        written: 1,
    };
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        no_tpm(),
        Some(AnchorFileState::Valid(record)),
        None,
    );
    let anchor = id.anchor.expect("anchor");
    assert_eq!(anchor.path, AnchorPath::Hardware);
    assert_eq!(hex::encode(anchor.digest), UUID_DIGEST);
    assert!(id.warnings.iter().any(|w| w.contains("stale")));
}

#[test]
fn the_anchor_file_pins_the_machine() {
    // Root wrote smbios-uuid before the TPM was switched on; a user who can read everything
    // keeps that source rather than jumping to the TPM.
    let record = AnchorRecord {
        source: AnchorSource::SmbiosUuid,
        digest: hex::decode(UUID_DIGEST)
            .expect("hex")
            .try_into()
            .expect("32"),
        written: 1,
    };
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        with_tpm(&[7; 256]),
        Some(AnchorFileState::Valid(record)),
        None,
    );
    assert_eq!(source(&id), Some(AnchorSource::SmbiosUuid));
    assert!(id.warnings.iter().all(|w| !w.contains("stale")));
}

#[test]
fn a_corrupt_anchor_file_is_a_warning() {
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        no_tpm(),
        Some(AnchorFileState::Corrupt(
            "not an anchor file: EOF".to_owned(),
        )),
        None,
    );
    assert_eq!(source(&id), Some(AnchorSource::SmbiosUuid));
    assert!(id.warnings.iter().any(|w| w.contains("is corrupt")));
    assert_eq!(
        id.report(false).anchor_file.map(|f| f.state),
        Some("corrupt")
    );
}

#[test]
fn writing_refuses_to_replace_a_pinned_source_it_could_not_read() {
    let record = AnchorRecord {
        source: AnchorSource::TpmEk,
        digest: [3; 32],
        written: 1,
    };
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        TpmReading {
            state: TpmState::TimedOut,
            target: TpmTarget::Device("/dev/tpmrm0".into()),
            elapsed: Duration::from_secs(2),
        },
        Some(AnchorFileState::Valid(record)),
        None,
    );
    let err = anchor_record_to_write(&id, 2).expect_err("refused");
    assert!(
        matches!(err, MachineError::PinnedUnreadable { .. }),
        "{err}"
    );
    // The user path meanwhile keeps using the file.
    assert_eq!(id.anchor.map(|a| a.path), Some(AnchorPath::AnchorFile));
}

#[test]
fn raw_identifiers_only_on_request_except_for_a_given_dump() {
    let id = machine(smbios_of(&desktop(V3_2, UUID)), no_tpm(), None, None);
    let hidden = serde_json::to_string(&id.report(false)).expect("json");
    assert!(!hidden.contains(&UUID.to_string()), "{hidden}");
    assert!(!hidden.contains("07C5611_M71E123456"));
    assert!(!hidden.contains("3d1219c7c4c5404aaa1f6d2a48adfda4"));
    let report = id.report(false);
    assert_eq!(report.smbios.redacted, vec!["system_uuid", "board.serial"]);
    assert!(report.smbios.system_uuid_plausible);
    let shown = serde_json::to_string(&id.report(true)).expect("json");
    assert!(shown.contains(&UUID.to_string()));
    assert!(shown.contains("07C5611_M71E123456"));
    assert!(shown.contains("3d1219c7c4c5404aaa1f6d2a48adfda4"));
    // A dump file named on the command line: its fields are what the caller asked to read.
    let mut from_file = machine(smbios_of(&desktop(V3_2, UUID)), no_tpm(), None, None);
    from_file.smbios_file = Some(PathBuf::from("dump.bin"));
    let report = from_file.report(false);
    assert_eq!(report.smbios.system_uuid, Some(UUID.to_string()));
    assert!(report.smbios.redacted.is_empty());
    assert!(report.sources.iter().all(|s| s.raw.is_none()));
    // Debug output never carries raw identifiers.
    let debug = format!("{from_file:?}");
    assert!(
        !debug.contains("07C5611_M71E123456") && !debug.contains("3d1219c7"),
        "{debug}"
    );
}

#[test]
fn identify_reads_files_end_to_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sysfs = dir.path().join("dmi");
    desktop(V3_2, UUID).write_sysfs(&sysfs, V3_2);
    let machine_id = dir.path().join("machine-id");
    std::fs::write(&machine_id, "3d1219c7c4c5404aaa1f6d2a48adfda4\n").expect("write");
    let anchor_path = dir.path().join("anchor");
    let options = Options {
        // A sysfs-style directory is read the same on every platform (the Windows build of
        // this test runs under Wine).
        smbios: SmbiosInput::SysfsDir(sysfs),
        tpm: Some(TpmTarget::Device(dir.path().join("no-tpm"))),
        ek_method: EkMethod::Auto,
        tpm_timeout: tpm::DEFAULT_TIMEOUT,
        machine_id,
        anchor_file: Some(anchor_path.clone()),
        pinned: None,
    };
    let id = identify(&options).expect("identifies");
    // A device path that does not exist is an absent TPM where this build reads TPMs (Linux);
    // elsewhere the TPM is not read at all.
    let no_tpm = if cfg!(all(feature = "tpm", target_os = "linux")) {
        TpmState::Absent
    } else {
        TpmState::Unsupported
    };
    assert_eq!(id.tpm.as_ref().map(|t| t.state.clone()), Some(no_tpm));
    assert_eq!(hex::encode(id.anchor.expect("anchor").digest), UUID_DIGEST);
    let record = anchor_record_to_write(&id, 5).expect("record");
    crate::anchor_file::write(&anchor_path, &record).expect("written");
    let again = identify(&options).expect("identifies");
    assert_eq!(
        again.selection.pin,
        PinOutcome::Kept(AnchorSource::SmbiosUuid)
    );
    assert_eq!(again.anchor, id.anchor);

    let options = Options {
        smbios: SmbiosInput::File(dir.path().join("missing.bin")),
        ..options
    };
    assert!(
        identify(&options).is_err(),
        "an explicit dump that cannot be read is an error"
    );
}

#[test]
fn a_pinned_source_that_cannot_be_read_is_named_in_the_warning() {
    let id = machine(
        smbios_of(&desktop(V3_2, UUID)),
        TpmReading {
            state: TpmState::PermissionDenied,
            target: TpmTarget::Device("/dev/tpmrm0".into()),
            elapsed: Duration::ZERO,
        },
        Some(AnchorFileState::Missing),
        Some(AnchorSource::TpmEk),
    );
    assert_eq!(source(&id), Some(AnchorSource::SmbiosUuid));
    assert!(matches!(
        id.selection.pin,
        PinOutcome::PinnedUnreadable { .. }
    ));
    assert!(
        id.warnings
            .iter()
            .any(|w| w.starts_with("tpm-ek (permission denied")),
        "{:?}",
        id.warnings
    );
    assert!(
        anchor_record_to_write(&id, 1).is_err(),
        "root keeps a pinned TPM it cannot read"
    );
}
