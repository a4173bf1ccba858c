//! `SeedV1::decode_with_extensions` / `SeedExtensions::parse` (profile 1.1, §2.1) on arbitrary
//! bytes as a seed's Room.
//!
//! Properties: `parse` is Ok exactly when the independent model accepts the area; on Ok every
//! known record's value equals the model's (absent when the model has none, Intent 0 the same
//! as absent), unknown types are skipped, and writing the parsed extensions into a Room of the
//! same length gives an area that parses to the same value and holds only the known records
//! (the end byte and zeros after them). The whole seed decodes the same way.
#![no_main]

use lap_proto::{Intent, SeedExtensions, SeedV1};
use lap_proto_fuzz::{ext, hex, seed_v1};
use libfuzzer_sys::fuzz_target;

fn u32_of(value: &[u8]) -> u32 {
    value
        .iter()
        .rev()
        .fold(0, |acc, &b| acc * 256 + u32::from(b))
}

fuzz_target!(|room: &[u8]| {
    let parsed = SeedExtensions::parse(room);
    let model = ext::records(room);
    assert_eq!(
        parsed.is_ok(),
        model.is_some(),
        "model {model:?} vs parse {parsed:?} for {}",
        hex(room)
    );

    // The same area behind a real seed's 66 bytes reads the same.
    let mut seed = seed_v1(0, 0x01);
    seed.extend_from_slice(room);
    let whole = SeedV1::decode_with_extensions(&seed);
    assert_eq!(whole.is_ok(), parsed.is_ok());

    let (Ok(parsed), Some(records)) = (parsed, model) else {
        return;
    };
    let find = |t: u8| {
        records
            .iter()
            .find(|(rt, _)| *rt == t)
            .map(|(_, v)| v.as_slice())
    };
    let intent = match find(1) {
        Some([1]) => Intent::Release,
        _ => Intent::Activate,
    };
    assert_eq!(parsed.intent, intent);
    assert_eq!(
        parsed.previous_machine_hash.map(|h| h.to_vec()),
        find(2).map(<[u8]>::to_vec)
    );
    assert_eq!(parsed.generation, find(3).map(u32_of));
    assert_eq!(parsed.pool_request, find(4).map(u32_of));
    assert_eq!(parsed.pool_usage, find(5).map(u32_of));
    assert_eq!(whole.expect("decodes").1, parsed);

    // Written again into the same Room, it reads back the same, and holds nothing else.
    let mut again = vec![0xee; room.len()];
    parsed
        .write_into(&mut again)
        .expect("what was read fits where it was read from");
    assert_eq!(SeedExtensions::parse(&again).expect("parses"), parsed);
    let written = ext::records(&again).expect("the model accepts what was written");
    assert!(written.iter().all(|(t, _)| (1..=5).contains(t)));
    let used: usize = written.iter().map(|(_, v)| 3 + v.len()).sum();
    assert!(
        again[used..].iter().all(|&b| b == 0),
        "bytes after the records are not all zero: {}",
        hex(&again)
    );
});
