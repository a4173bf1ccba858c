//! `Policy::parse` (the machine policy, `/etc/lapwing/policy.toml`) on arbitrary text.
//!
//! Properties: parsing is deterministic and never panics (the error's line number slices the
//! text at the parser's span); an accepted policy never locks the override without naming an
//! address; a refusal carries a reason.
#![no_main]

use std::path::Path;

use lapwing_core::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("policy.toml");
    match Policy::parse(text, path) {
        Ok(policy) => {
            assert!(!policy.server.locked || policy.server.address.is_some());
            assert_eq!(Policy::parse(text, path).ok(), Some(policy));
        }
        Err(e) => {
            assert!(!e.reason.is_empty());
            assert_eq!(e.path, path);
            assert!(Policy::parse(text, path).is_err());
        }
    }
});
