//! `State::parse` (the per-user `state.json`) on arbitrary bytes.
//!
//! Properties: an accepted state writes back (as `StateStore::save` does) to text that parses
//! to the same state, so a load–save cycle never changes or drops anything; a refusal names a
//! line and column and never quotes the file (it could hold anything).
#![no_main]

use lapwing_core::state::State;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match State::parse(data) {
        Ok(state) => {
            let written = serde_json::to_string_pretty(&state).expect("a parsed state serializes");
            let again = State::parse(written.as_bytes()).expect("a written state parses");
            assert_eq!(again, state, "load-save-load changed the state");
        }
        Err(reason) => {
            assert!(
                reason == "not UTF-8" || reason.starts_with("not a valid state file (line "),
                "unexpected reason {reason:?}"
            );
        }
    }
});
