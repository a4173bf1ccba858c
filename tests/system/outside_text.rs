//! Text from outside, shown by `lapctl`: a manifest whose name and vendor, and a server whose
//! Notice, carry an ESC sequence, a bidi override and markup. The text output shows them
//! defused; `--json` keeps them exact. The real binary, keyring and `lapd`.

use std::fmt::Write as _;
use std::process::Output;

use lapwing_secrets::test_util::Setup;
use lapwing_system_tests::desk::{Desk, manifest};
use lapwing_system_tests::{BASE_SKU, Vendor};

/// Clears the screen, then reverses what follows, then asks for bold.
const NAME: &str = "\u{1b}[2J\u{202E}<b>bold</b> Studio";
const VENDOR: &str = "Acme\u{1b}]0;owned\u{7}\u{2067}Corp";
const NOTICE: &str = "Licensed\u{1b}[31m to \u{202D}<b>you</b>";

/// A TOML basic string holding `text` exactly.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() || !c.is_ascii() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn text(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn assert_defused(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202A}'..='\u{202E}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect();
    assert!(bad.is_empty(), "{what} prints {bad:?}: {text:?}");
}

#[test]
fn names_vendors_and_notices_are_defused_in_text_and_exact_in_json() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--notice", NOTICE]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    let plain = manifest(
        &vendor,
        "acme-studio",
        BASE_SKU,
        &server.addr.to_string(),
        "",
    );
    let hostile = plain
        .replace(
            "name = \"acme-studio\"",
            &format!("name = {}", toml_string(NAME)),
        )
        .replace(
            "vendor = \"Acme\"",
            &format!("vendor = {}", toml_string(VENDOR)),
        );
    assert_ne!(hostile, plain);
    let file = desk.path("studio.toml");
    std::fs::write(&file, hostile).expect("manifest written");

    let installed = text(&desk.run_fed(
        &[
            "install",
            "--manifest",
            file.to_str().expect("UTF-8"),
            "--key-file",
            "-",
        ],
        &key,
    ));
    assert_defused("install", &installed);

    let status = text(&desk.run(&["status"]));
    assert_defused("status", &status);
    // The notice is shown, written out where it held controls, its markup as typed.
    assert!(
        status.contains("notice Licensed\\u{1b}[31m to \\u{202d}<b>you</b>"),
        "{status}"
    );

    let products = text(&desk.run(&["products"]));
    assert_defused("products", &products);
    assert!(
        products.contains(
            "\\u{1b}[2J\\u{202e}<b>bold</b> Studio by Acme\\u{1b}]0;owned\\u{7}\\u{2067}Corp"
        ),
        "{products}"
    );

    let json = desk.json(&["status", "--json"]);
    assert_eq!(json[0]["state"], "activated", "{json}");
    assert_eq!(json[0]["name"], NAME);
    assert_eq!(json[0]["vendor"], VENDOR);
    assert_eq!(json[0]["notice"], NOTICE);
    let json = desk.json(&["products", "--json"]);
    assert_eq!(json["products"][0]["name"], NAME);
    assert_eq!(json["products"][0]["vendor"], VENDOR);
}
