//! License keys (profile §4): `LicenseKey::parse`, `to_display`, `from_bytes`, `normalize`,
//! `suggestions`, `iso7064_mod_1271_36_is_valid`, against an independent model.
//!
//! - From the first 16 input bytes: `from_bytes(b).to_display()` is the model's 28 characters
//!   in 7 dashed groups, and it parses back to `b` exactly when its check characters contain
//!   none of I, L, O, U and `b` is not all zero.
//! - On the input as UTF-8 (when it is):
//!   - `normalize` equals the model's normalisation;
//!   - `parse` is Ok exactly when the model accepts, with the model's bytes; on Ok the
//!     normalised input has 28 characters, passes `iso7064_mod_1271_36_is_valid`,
//!     `to_display()` is the normalised input in groups and parses back to the same key;
//!   - `iso7064_mod_1271_36_is_valid` agrees with the model on the normalised input;
//!   - `suggestions` returns only keys that parse, each exactly one substitution or one
//!     adjacent swap from the normalised input, and is exactly the model's list (complete,
//!     same order, no duplicates); empty when the input is itself a key.
#![no_main]

use lap_proto::LicenseKey;
use lap_proto::license_key::{iso7064_mod_1271_36_is_valid, normalize, suggestions};
use lap_proto_fuzz::key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(bytes) = data.first_chunk::<16>() {
        from_bytes(*bytes);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        from_text(text);
    }
});

fn from_bytes(bytes: [u8; 16]) {
    let key = LicenseKey::from_bytes(bytes);
    let display = key.to_display();
    let chars = key::chars_of(bytes);
    assert_eq!(display, key::display(&chars), "display of {bytes:02x?}");
    let printable = !chars[26..]
        .iter()
        .any(|c| matches!(c, 'I' | 'L' | 'O' | 'U'));
    // The all-zero key prints, but is refused: it stands for "no key" on the wire.
    let printable = printable && bytes != [0; 16];
    match LicenseKey::parse(&display) {
        Ok(parsed) => {
            assert!(printable, "{display} parsed but its check has I, L, O or U");
            assert_eq!(parsed.as_bytes(), &bytes);
        }
        Err(e) => assert!(!printable, "{display} does not parse: {e:?}"),
    }
}

fn from_text(text: &str) {
    let normalized = normalize(text);
    let model_chars = key::normalize(text);
    assert_eq!(
        normalized.chars().collect::<Vec<_>>(),
        model_chars,
        "normalize({text:?})"
    );

    let parsed = LicenseKey::parse(text);
    let model = key::parse(text);
    assert_eq!(
        parsed.as_ref().ok().map(|k| *k.as_bytes()),
        model,
        "parse({text:?}): {parsed:?}"
    );
    assert_eq!(
        iso7064_mod_1271_36_is_valid(&normalized),
        key::iso_valid(&model_chars),
        "iso7064 on {normalized:?}"
    );

    if let Ok(parsed) = &parsed {
        assert_eq!(normalized.len(), 28);
        assert_eq!(normalized.chars().count(), 28);
        assert!(iso7064_mod_1271_36_is_valid(&normalized));
        let display = parsed.to_display();
        assert_eq!(display, key::display(&model_chars));
        assert_eq!(LicenseKey::parse(&display).as_ref(), Ok(parsed));
    }

    let found = suggestions(text);
    for k in &found {
        let display = k.to_display();
        assert_eq!(
            LicenseKey::parse(&display).as_ref(),
            Ok(k),
            "suggested {display}"
        );
        let candidate: Vec<char> = normalize(&display).chars().collect();
        assert!(
            key::one_typo_apart(&model_chars, &candidate),
            "suggested {display} is not one typo from {normalized:?}"
        );
    }
    if parsed.is_ok() {
        assert!(found.is_empty(), "a valid key got suggestions");
    }
    let found: Vec<[u8; 16]> = found.iter().map(|k| *k.as_bytes()).collect();
    assert_eq!(
        found,
        key::suggestions(text),
        "suggestions({normalized:?}) differ from the model"
    );
}
