//! `smbios::parse_dump` (raw table, Windows `RawSMBIOSData`, `dmidecode --dump-bin`) on
//! arbitrary bytes.
//!
//! Properties: parsing is deterministic; what it reports comes from the input: the system UUID
//! is sixteen bytes of it (in SMBIOS or in wire byte order), every board string that decoded
//! cleanly is a run of its bytes, and no more structures are counted than the input could hold
//! (each takes at least a 4-byte header and a 2-byte terminator, except a last one salvaged
//! from a cut-off string set, which may have only its header: found by this target, seed
//! `salvaged-last-structure.bin`).
#![no_main]

use lapwing_machine::smbios::{parse_dump, swap_uuid_fields};
use libfuzzer_sys::fuzz_target;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let parsed = parse_dump(data);
    assert_eq!(
        format!("{parsed:?}"),
        format!("{:?}", parse_dump(data)),
        "parse is not deterministic"
    );
    let Ok(info) = parsed else {
        return;
    };
    assert!(
        info.structures <= (data.len() + 2) / 6,
        "{} structures in {} bytes",
        info.structures,
        data.len()
    );
    if let Some(uuid) = info.system_uuid {
        let bytes = *uuid.as_bytes();
        assert!(
            contains(data, &bytes) || contains(data, &swap_uuid_fields(bytes)),
            "UUID {uuid} is not in the input"
        );
    }
    if let Some(board) = &info.board {
        for text in [&board.manufacturer, &board.product, &board.serial]
            .into_iter()
            .flatten()
        {
            if !text.contains('\u{FFFD}') {
                assert!(
                    contains(data, text.as_bytes()),
                    "board string {text:?} is not in the input"
                );
            }
        }
    }
});
