//! Helpers for the tests of the crates that build on this one (`test-util` feature).

use crate::LicenseKey;

/// The `n`th test license key: the same for the same `n` on every run, and different keys for
/// different `n`. The draw moves on by one each time, as `generate` re-draws keys that
/// would be hard to type.
pub fn key(n: u8) -> LicenseKey {
    let mut draw = [n; 16];
    LicenseKey::generate(move || {
        draw[15] = draw[15].wrapping_add(1);
        draw
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        assert_eq!(key(1).to_display(), key(1).to_display());
        assert_ne!(key(1).to_display(), key(2).to_display());
        assert!(!key(0).is_evaluation(), "never the reserved all-zero key");
    }
}
