//! Input checks for everything that reaches Rust from a window or a menu: the front end is
//! not trusted to have checked anything.

/// The window views a front end may ask for (COMMANDS.md, "Windows").
pub const VIEWS: [&str; 6] = [
    "products",
    "key",
    "server",
    "diagnostics",
    "about",
    "settings",
];

/// A product id as manifests have them: `[a-z0-9-]{1,64}`, starting with a letter or digit
/// (the same rule as the engine's and the keyring's, so a window label built from it is valid).
pub fn is_product_id(id: &str) -> bool {
    lapwing_core::manifest::is_valid_id(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_ids_follow_the_manifest_alphabet() {
        for good in ["a", "acme-studio", "x1", &"a".repeat(64)] {
            assert!(is_product_id(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            "Acme",
            "acme studio",
            "acme/../x",
            "acme:x",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(!is_product_id(bad), "{bad}");
        }
    }
}
