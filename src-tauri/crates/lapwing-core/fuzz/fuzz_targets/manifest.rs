//! `Manifest::parse` (profile §6) on arbitrary text.
//!
//! Properties: parsing is deterministic; an accepted manifest keeps every invariant the engine
//! relies on (a slug id, a slug base id for an add-on, a non-empty name and vendor, a Room a
//! request can carry); a refusal names a field and a reason.
#![no_main]

use std::path::Path;

use lap_proto::seed::MAX_RESPONSE_ROOM;
use lapwing_core::manifest::{Manifest, is_valid_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    let parsed = Manifest::parse(text, file);
    assert_eq!(
        parsed,
        Manifest::parse(text, file),
        "parse is not deterministic"
    );
    match parsed {
        Ok(m) => {
            assert!(is_valid_id(&m.id), "accepted id {:?}", m.id);
            if let Some(base) = &m.addon_of {
                assert!(is_valid_id(base), "accepted base id {base:?}");
            }
            assert!(!m.name.trim().is_empty() && !m.vendor.trim().is_empty());
            assert!(m.response_room <= MAX_RESPONSE_ROOM);
            assert_eq!(m.file, file);
        }
        Err(e) => {
            assert!(
                !e.field.is_empty() && !e.reason.is_empty(),
                "bare error {e:?}"
            );
            assert_eq!(e.file, file);
        }
    }
});
