//! Docs match the app: every message docs/troubleshooting.md quotes as "what Lapwing says"
//! is one the code can produce. The candidates are every cause's sentence (one of each
//! variant, with sample data) and every string literal of the crates whose words a person
//! reads (doctor's checks, the keyring's and the key check's errors, lapctl). A quoted
//! message matches when its fixed text, split at the doc's placeholders (N, HOST:PORT, ID,
//! FILE, …), appears in order in one candidate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lapwing_core::cause::{Cause, ServerUsed, SkippedServer};
use lapwing_core::policy::Policy;
use lapwing_core::state::ServerSource;
use lapwing_discovery::DiscoveryError;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// One of each cause, with sample data.
fn every_cause() -> Vec<Cause> {
    let server = ServerUsed {
        address: "lap.acme.example:4711".into(),
        source: ServerSource::Srv,
    };
    vec![
        Cause::ClockMayBeOff,
        Cause::ClockOff {
            offset_secs: 45,
            server: "ntp.test:123".into(),
        },
        Cause::ClockOff {
            offset_secs: -45,
            server: "ntp.test:123".into(),
        },
        Cause::ClockRight {
            offset_secs: 2,
            server: "ntp.test:123".into(),
        },
        Cause::ClockSynchronized,
        Cause::ClockNotChecked {
            reason: "no system bus".into(),
        },
        Cause::ClockMovedBack { by_secs: 3 * 3600 },
        Cause::KeyMayBeRefused,
        Cause::EvaluationMayNotBeOffered,
        Cause::Unreachable {
            tried: vec![server.clone(), server],
        },
        Cause::InvalidServerData {
            address: "lap.acme.example:4711".into(),
            error: "a TLV too long".into(),
        },
        Cause::DatagramsRejected {
            count: 2,
            address: "lap.acme.example:4711".into(),
            last_error: "authentication failed".into(),
        },
        Cause::EvaluationDisabled,
        Cause::NoLicenseKey,
        Cause::EvaluationEnded,
        Cause::ServerKeyChanged,
        Cause::NoServerFound {
            skipped: vec![SkippedServer {
                source: ServerSource::Srv,
                subject: "_lap._udp.acme.example".into(),
                reason: "no SRV records".into(),
            }],
        },
        Cause::LicenseExpired,
        Cause::ServerRefused {
            address: "127.0.0.1:4711".into(),
        },
        Cause::NoRoute {
            address: "192.0.2.7:4711".into(),
        },
        Cause::OverrideSilent {
            address: "192.0.2.7:4711".into(),
        },
        Cause::OverrideNotFound {
            address: "lap.acme.example:4711".into(),
            reason: "no A/AAAA records".into(),
        },
    ]
}

/// Keeps the match exhaustive: a new cause fails to compile here until it is given a sample.
#[allow(dead_code)]
fn sampled(cause: &Cause) {
    match cause {
        Cause::ClockMayBeOff
        | Cause::ClockOff { .. }
        | Cause::ClockRight { .. }
        | Cause::ClockSynchronized
        | Cause::ClockNotChecked { .. }
        | Cause::ClockMovedBack { .. }
        | Cause::KeyMayBeRefused
        | Cause::EvaluationMayNotBeOffered
        | Cause::Unreachable { .. }
        | Cause::InvalidServerData { .. }
        | Cause::DatagramsRejected { .. }
        | Cause::EvaluationDisabled
        | Cause::NoLicenseKey
        | Cause::EvaluationEnded
        | Cause::ServerKeyChanged
        | Cause::NoServerFound { .. }
        | Cause::LicenseExpired
        | Cause::ServerRefused { .. }
        | Cause::NoRoute { .. }
        | Cause::OverrideSilent { .. }
        | Cause::OverrideNotFound { .. }
        | Cause::Recorded { .. } => {}
    }
}

/// The string literals of a Rust source, unescaped (format strings as written).
fn literals(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = source.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        // Skip char literals such as '"' and lifetimes.
        if c == '\'' {
            if let Some(&next) = chars.peek() {
                if next == '\\' {
                    chars.next();
                    chars.next();
                    chars.next();
                } else {
                    let mut look = chars.clone();
                    look.next();
                    if look.peek() == Some(&'\'') {
                        chars.next();
                        chars.next();
                    }
                }
            }
            previous = c;
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            previous = '\n';
            continue;
        }
        if c != '"' || previous.is_alphanumeric() && previous != 'r' {
            previous = c;
            continue;
        }
        let mut text = String::new();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => text.push('\n'),
                    Some('\n') => {
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                    }
                    Some(other) => text.push(other),
                    None => {}
                },
                other => text.push(other),
            }
        }
        out.push(text);
        previous = '"';
    }
    out
}

/// `{name}` and `{}` become a gap, except a `{NAME}` naming a string constant, which is its
/// text; `{{` and `}}` are braces.
fn gaps(format: &str, consts: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                    name.push(c);
                }
                match consts.get(&name) {
                    Some(text) => out.push_str(text),
                    None => out.push('\0'),
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every sentence the code can produce, as far as a literal or a cause shows it.
fn candidates() -> Vec<String> {
    let mut out: Vec<String> = every_cause().iter().map(ToString::to_string).collect();
    let crates = repo().join("src-tauri/crates");
    let mut files = Vec::new();
    for name in [
        "lapwing-core/src",
        "lapwing-secrets/src",
        "lapwing-machine/src",
        "lapwing-discovery/src",
        "lap-proto/src",
        "lapctl/src",
    ] {
        rust_files(&crates.join(name), &mut files);
    }
    let sources: Vec<String> = files
        .iter()
        .map(|file| std::fs::read_to_string(file).expect("a source file"))
        .collect();
    // `const NAME: &str = "…";`: a message built from it quotes it as `{NAME}`.
    let mut consts = HashMap::new();
    for source in &sources {
        for (at, _) in source.match_indices(": &str =") {
            let head = &source[..at];
            let Some(name) = head.rsplit("const ").next() else {
                continue;
            };
            if !head.ends_with(name) || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                continue;
            }
            // The first definition: Linux's, where a constant differs by platform.
            if let Some(text) = literals(&source[at..]).into_iter().next() {
                consts.entry(name.to_owned()).or_insert(text);
            }
        }
    }
    for source in &sources {
        for literal in literals(source) {
            let gapped = gaps(&literal, &consts);
            // A placeholder may format to nothing (an optional " at ADDRESS").
            out.push(gapped.replace('\0', ""));
            out.push(gapped);
        }
    }
    // Errors whose sentence joins several literals and a library's words: made for real.
    let policy_dir = tempfile::tempdir().expect("tempdir");
    let policy = policy_dir.path().join("policy.toml");
    std::fs::write(&policy, "[server]\nadress = \"lap.corp.example:4711\"\n").expect("write");
    let error = Policy::load(&policy).expect_err("an unknown field is refused");
    out.push(error.to_string());
    out.push(
        DiscoveryError::NoRecords {
            name: "_lap._udp.acme.example".into(),
            rtype: "SRV",
        }
        .to_string(),
    );
    out
}

/// The doc's placeholders for data: each becomes a gap.
const PLACEHOLDERS: [&str; 6] = [
    "…",
    "HOST:PORT",
    "HOST:123",
    "ahead of/behind",
    "'X'",
    "(source)",
];

/// Placeholder words: a gap where they stand as a word of their own.
const PLACEHOLDER_WORDS: [&str; 5] = ["N", "ID", "FILE", "HOST", "NAME"];

/// The fixed parts of a quoted message, in order.
fn fixed_parts(quote: &str) -> Vec<String> {
    let mut text = quote.to_owned();
    for placeholder in PLACEHOLDERS {
        text = text.replace(placeholder, "\0");
    }
    let mut worded = String::new();
    let mut word = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if PLACEHOLDER_WORDS.contains(&word.as_str()) {
            worded.push('\0');
        } else {
            worded.push_str(&word);
        }
        word.clear();
        worded.push(c);
    }
    let text = worded;
    text.split('\0')
        .map(str::trim)
        .filter(|part| part.chars().filter(|c| c.is_alphanumeric()).count() >= 2)
        .map(str::to_owned)
        .collect()
}

fn produces(candidate: &str, parts: &[String]) -> bool {
    let mut rest = candidate;
    for part in parts {
        match rest.find(part.as_str()) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The quoted messages of the table's first column ("symptom (what Lapwing says)").
fn quoted_symptoms(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in doc.lines().filter(|l| l.starts_with("| ")) {
        let Some(cell) = line[2..].split(" | ").next() else {
            continue;
        };
        let mut quote: Option<String> = None;
        let mut escaped = false;
        for c in cell.chars() {
            match (c, &mut quote) {
                ('\\', _) if !escaped => {
                    escaped = true;
                    continue;
                }
                ('"', Some(q)) if !escaped => {
                    out.push(std::mem::take(q));
                    quote = None;
                }
                ('"', None) if !escaped => quote = Some(String::new()),
                (c, Some(q)) => q.push(c),
                _ => {}
            }
            escaped = false;
        }
    }
    out
}

#[test]
fn every_message_the_troubleshooting_guide_quotes_is_one_the_code_can_produce() {
    let doc = std::fs::read_to_string(repo().join("docs/troubleshooting.md")).expect("the doc");
    let candidates = candidates();
    let quotes = quoted_symptoms(&doc);
    assert!(quotes.len() >= 25, "the table's quotes: {quotes:?}");
    let unknown: Vec<&String> = quotes
        .iter()
        .filter(|quote| {
            let parts = fixed_parts(quote);
            !candidates.iter().any(|c| produces(c, &parts))
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "quoted in docs/troubleshooting.md, produced nowhere in the code:\n{}",
        unknown
            .iter()
            .map(|q| format!("  \"{q}\"  parts {:?}", fixed_parts(q)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_matcher_refuses_a_message_the_code_does_not_produce() {
    let candidates = candidates();
    for invented in [
        "the server refused the key: it is revoked",
        "no license key: run `lapctl key add ID`",
        "this machine's clock is N late compared with HOST:123",
    ] {
        let parts = fixed_parts(invented);
        assert!(
            !candidates.iter().any(|c| produces(c, &parts)),
            "{invented}"
        );
    }
    // And accepts one it does, with its data given as placeholders.
    let parts = fixed_parts(
        "N datagram(s) from HOST:PORT failed their checks (…): not from this product's server, or damaged",
    );
    assert!(candidates.iter().any(|c| produces(c, &parts)));
}
