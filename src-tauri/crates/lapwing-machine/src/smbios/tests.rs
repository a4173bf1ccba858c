//! SMBIOS fixtures from the writer in `test_util`: byte order, plausibility, placeholders,
//! sockets, malformed tables and every file form.

use lap_proto::Uuid;

use super::*;
use crate::test_util::{SmbiosWriter, desktop};

const UUID: Uuid = Uuid::from_u128(0x4c4c_4544_0035_1052_8036_b4c0_4f31_3432);
const V2_4: SmbiosVersion = SmbiosVersion::new(2, 4);
const V2_6: SmbiosVersion = SmbiosVersion::new(2, 6);
const V3_2: SmbiosVersion = SmbiosVersion::new(3, 2);

fn parse(bytes: &[u8]) -> SmbiosInfo {
    parse_dump(bytes).unwrap_or_else(|e| panic!("parses: {e}"))
}

#[test]
fn uuid_byte_order_follows_the_version() {
    for version in [
        V2_4,
        SmbiosVersion::new(2, 5),
        V2_6,
        SmbiosVersion::new(2, 8),
        V3_2,
    ] {
        let info = parse(&desktop(version, UUID).windows_header(version));
        assert_eq!(info.system_uuid, Some(UUID), "SMBIOS {version}");
        assert!(info.system_uuid_plausible());
        assert_eq!(info.version, Some(version));
    }
    // The same stored bytes mean different UUIDs before and after 2.6.
    let mut w = SmbiosWriter::new();
    w.system_stored("Acme", "Box", "1", *UUID.as_bytes()).end();
    let old = parse(&w.windows_header(V2_4)).system_uuid.expect("uuid");
    let new = parse(&w.windows_header(V2_6)).system_uuid.expect("uuid");
    assert_eq!(old, UUID);
    assert_eq!(new.to_string(), "44454c4c-3500-5210-8036-b4c04f313432");
}

#[test]
fn implausible_uuids_are_recognised() {
    let cases: [(Uuid, &str); 5] = [
        (Uuid::nil(), "nil"),
        (Uuid::from_bytes([0xff; 16]), "all FF"),
        (PLACEHOLDER_UUID, "placeholder"),
        (
            Uuid::from_u128(0x0000_0000_0000_0000_0000_0000_0000_1234),
            "first ten bytes",
        ),
        (
            Uuid::from_u128(0x0000_0000_0000_0000_0000_a1b2_c3d4_e5f6),
            "first ten bytes",
        ),
    ];
    for (uuid, reason) in cases {
        for version in [V2_4, V3_2] {
            let mut w = SmbiosWriter::new();
            w.system("Acme", "Box", uuid, version).end();
            let info = parse(&w.dmidecode_sm3(version));
            assert_eq!(info.system_uuid, Some(uuid));
            assert!(!info.system_uuid_plausible(), "{uuid} under {version}");
        }
        let why = uuid_implausibility(&uuid).expect("implausible");
        assert!(why.contains(reason), "{uuid}: {why} vs {reason}");
    }
    // The AMI placeholder is caught whatever version the entry point claims: stored in 2.6+
    // order under a 2.4 entry point it reads as 00020003-0004-0005-0006-000700080009.
    let mut w = SmbiosWriter::new();
    w.system("Acme", "Box", PLACEHOLDER_UUID, V3_2).end();
    let info = parse(&w.windows_header(V2_4));
    assert_eq!(
        info.system_uuid.map(|u| u.to_string()).as_deref(),
        Some("00020003-0004-0005-0006-000700080009")
    );
    assert!(!info.system_uuid_plausible());
}

#[test]
fn placeholder_board_strings() {
    for placeholder in [
        "To Be Filled By O.E.M.",
        "  to be filled by o.e.m.  ",
        "Default string",
        "DEFAULT STRING",
        "Not Specified",
        "None",
        "none",
        "",
        "   ",
        "0000000000",
        "..........",
        "X",
    ] {
        assert!(is_placeholder(placeholder), "{placeholder:?}");
        let mut w = SmbiosWriter::new();
        w.baseboard("ASUSTeK COMPUTER INC.", "PRIME B450M-A", placeholder)
            .end();
        let board = parse(&w.table()).board.expect("board");
        assert_eq!(board.placeholder_field(), Some("serial"), "{placeholder:?}");
        let mut w = SmbiosWriter::new();
        w.baseboard(placeholder, "PRIME B450M-A", "190436731200123")
            .end();
        let board = parse(&w.table()).board.expect("board");
        assert_eq!(board.placeholder_field(), Some("manufacturer"));
    }
    for real in [
        "ASUSTeK COMPUTER INC.",
        "190436731200123",
        "Nonetheless",
        "00001",
    ] {
        assert!(!is_placeholder(real), "{real:?}");
    }
    let info = parse(&desktop(V3_2, UUID).table());
    let board = info.board.expect("board");
    assert_eq!(board.placeholder_field(), None);
    assert_eq!(board.serial.as_deref(), Some("07C5611_M71E123456"));
}

#[test]
fn only_populated_sockets_count() {
    let info = parse(&desktop(V3_2, UUID).table());
    assert_eq!(info.sockets, Some(1), "one populated, one empty");
    let mut w = SmbiosWriter::new();
    w.processor("P0", true)
        .processor("P1", true)
        .processor("P2", false)
        .processor("P3", false)
        .end();
    assert_eq!(parse(&w.table()).sockets, Some(2));
    let mut w = SmbiosWriter::new();
    w.processor("P0", false).end();
    assert_eq!(parse(&w.table()).sockets, Some(0));
    let mut w = SmbiosWriter::new();
    w.system("Acme", "Box", UUID, V3_2).end();
    assert_eq!(parse(&w.table()).sockets, None, "no type 4 at all");
}

#[test]
fn a_truncated_table_keeps_what_it_can() {
    let table = desktop(V3_2, UUID).table();
    // Cut inside the baseboard's strings: after its manufacturer string.
    let at = table
        .windows(b"B550-A PRO".len())
        .position(|w| w == b"B550-A PRO")
        .expect("product string")
        + 4;
    let mut w = SmbiosWriter::new();
    w.bytes(&table[..at]);
    let info = parse(&w.windows_header(V3_2));
    assert_eq!(info.system_uuid, Some(UUID), "type 1 came before the cut");
    let board = info.board.expect("the board's fields survive");
    assert_eq!(
        board.manufacturer.as_deref(),
        Some("Micro-Star International Co., Ltd.")
    );
    assert_eq!(board.product, None, "the cut-off string is lost");
    assert!(
        info.warnings.iter().any(|w| w.contains("truncated")),
        "{:?}",
        info.warnings
    );
    assert!(info.warnings.iter().any(|w| w.contains("type 127")));
    assert_eq!(info.sockets, None);
}

#[test]
fn a_zero_length_structure_stops_the_walk_with_a_warning() {
    let mut w = SmbiosWriter::new();
    w.system("Acme", "Box", UUID, V3_2)
        .bytes(&[2, 0, 0x10, 0, 0, 0])
        .baseboard("Acme", "Board", "123456")
        .end();
    let info = parse(&w.dmidecode_sm(V3_2));
    assert_eq!(info.system_uuid, Some(UUID));
    assert_eq!(info.board, None, "nothing after the bad header is read");
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("shorter than its own 4-byte header")),
        "{:?}",
        info.warnings
    );
}

#[test]
fn a_length_overrun_is_dropped_with_a_warning() {
    let mut w = SmbiosWriter::new();
    w.system("Acme", "Box", UUID, V3_2)
        .bytes(&[2, 0x40, 0x11, 0, 1, 2, 3]);
    let info = parse(&w.windows_header(V3_2));
    assert_eq!(info.system_uuid, Some(UUID));
    assert!(info.warnings.iter().any(|w| w.contains("length overrun")));
}

#[test]
fn every_file_form_reads_the_same_machine() {
    let w = desktop(V3_2, UUID);
    let forms: [(Vec<u8>, SmbiosForm, Option<SmbiosVersion>); 4] = [
        (w.table(), SmbiosForm::RawTable, None),
        (
            w.windows_header(V3_2),
            SmbiosForm::WindowsHeader,
            Some(V3_2),
        ),
        (
            w.dmidecode_sm(SmbiosVersion::new(2, 8)),
            SmbiosForm::EntryPoint2,
            Some(SmbiosVersion::new(2, 8)),
        ),
        (w.dmidecode_sm3(V3_2), SmbiosForm::EntryPoint3, Some(V3_2)),
    ];
    for (bytes, form, version) in forms {
        let info = parse(&bytes);
        assert_eq!(info.form, form);
        assert_eq!(info.version, version);
        assert_eq!(info.system_uuid, Some(UUID), "{form:?}");
        assert_eq!(info.sockets, Some(1));
        assert_eq!(info.structures, 6, "{form:?}");
        assert!(!info.virtual_machine());
        let unexpected: Vec<_> = info
            .warnings
            .iter()
            .filter(|w| !w.contains("bare table carries no SMBIOS version"))
            .collect();
        assert!(unexpected.is_empty(), "{form:?}: {unexpected:?}");
        if form == SmbiosForm::RawTable {
            assert_eq!(
                info.warnings.len(),
                1,
                "the raw form says its byte order is assumed"
            );
        }
    }
}

#[test]
fn sm3_stops_at_type_127_within_its_maximum() {
    let w = desktop(V3_2, UUID);
    let mut bytes = w.dmidecode_sm3(V3_2);
    // Junk after the end marker but within the stated maximum is never read as structures.
    let info = parse(&bytes);
    assert_eq!(info.structures, 6);
    // A wrong checksum is a warning, not a failure.
    bytes[5] ^= 0xff;
    let info = parse(&bytes);
    assert!(info.warnings.iter().any(|w| w.contains("checksum")));
    assert_eq!(info.system_uuid, Some(UUID));
}

#[test]
fn sm_with_a_short_file_warns() {
    let w = desktop(SmbiosVersion::new(2, 7), UUID);
    let bytes = w.dmidecode_sm(SmbiosVersion::new(2, 7));
    let info = parse(&bytes[..bytes.len() - 10]);
    assert!(
        info.warnings.iter().any(|w| w.contains("the file holds")),
        "{:?}",
        info.warnings
    );
    assert_eq!(info.system_uuid, Some(UUID));
}

#[test]
fn vm_vendor_strings_flag_a_virtual_machine() {
    let mut w = SmbiosWriter::new();
    w.bios("SeaBIOS", "1.16.2-debian-1.16.2-1")
        .system("QEMU", "Standard PC (Q35 + ICH9, 2009)", UUID, V3_2)
        .end();
    let info = parse(&w.dmidecode_sm3(V3_2));
    assert!(info.virtual_machine());
    assert_eq!(
        info.vm_hints,
        vec!["system manufacturer \"QEMU\"".to_owned()]
    );
    let mut w = SmbiosWriter::new();
    w.system("innotek GmbH", "VirtualBox", UUID, V3_2).end();
    assert_eq!(parse(&w.table()).vm_hints.len(), 2);
}

#[test]
fn what_is_not_smbios_is_an_error() {
    for bytes in [
        b"".to_vec(),
        b"hello, this is a text file and not a firmware table\n".to_vec(),
        vec![0xff; 100],
        b"_SM3_".to_vec(),
        {
            let mut ep = desktop(V3_2, UUID).entry_point_3(V3_2, 0x20, 100);
            ep.resize(0x20, 0);
            ep
        },
    ] {
        assert!(
            parse_dump(&bytes).is_err(),
            "{:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("empty.bin");
    std::fs::write(&path, b"").expect("write");
    let err = read_dump(&path).expect_err("empty");
    assert!(
        err.to_string()
            .contains("not an SMBIOS dump: the file is empty"),
        "{err}"
    );
    let err = read_dump(&dir.path().join("missing.bin")).expect_err("missing");
    assert!(matches!(err, MachineError::Io { .. }));
}

#[test]
fn the_live_table_is_read_from_sysfs() {
    let dir = tempfile::tempdir().expect("tempdir");
    desktop(SmbiosVersion::new(3, 3), UUID).write_sysfs(dir.path(), SmbiosVersion::new(3, 3));
    // Linux reads its live table from such a directory; every platform reads one named by
    // LAPWING_SMBIOS_DIR.
    let readers: &[fn(&Path) -> LiveSmbios] = if cfg!(target_os = "linux") {
        &[read_live, read_sysfs]
    } else {
        &[read_sysfs]
    };
    for read in readers {
        match read(dir.path()) {
            LiveSmbios::Available(info) => {
                assert_eq!(info.form, SmbiosForm::Live);
                assert_eq!(info.version, Some(SmbiosVersion::new(3, 3)));
                assert_eq!(info.system_uuid, Some(UUID));
                assert!(info.warnings.is_empty(), "{:?}", info.warnings);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(&dir.path().join("nothing")),
            LiveSmbios::NotAvailable
        ));
    }
}

/// A small deterministic generator for the mutation test (no extra dependency).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n as u64)).expect("fits")
    }
}

#[test]
fn mutated_and_cut_dumps_never_panic() {
    let base = desktop(V3_2, UUID).dmidecode_sm3(V3_2);
    for end in 0..=base.len() {
        let _ = parse_dump(&base[..end]);
    }
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..5000 {
        let mut bytes = base.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len());
            bytes[at] = u8::try_from(rng.next() & 0xff).expect("byte");
        }
        let cut = bytes.len() - rng.below(8);
        if let Ok(info) = parse_dump(&bytes[..cut]) {
            // Whatever was read is internally consistent.
            assert!(info.structures <= 7);
        }
    }
}
