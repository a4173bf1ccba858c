//! The license key `probe` and `bench` send, read from a file or stdin: never from the
//! command line, where every user of the machine sees it in `ps`.

use std::io::Read;
use std::path::{Path, PathBuf};

use lap_proto::{LicenseKey, LicenseKeyError};

/// More than any key's display form with generous whitespace: a bigger input is not a key.
const MAX_INPUT: u64 = 1024;

/// How to give a key, for the refusals.
pub const HOW: &str = "put it in a file and pass --key-file FILE, or pipe it in with --key-file -";

/// Why no key could be read. No variant carries the key's text.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("--key-file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no key given: {HOW}")]
    Empty,
    #[error("--key-file: longer than {MAX_INPUT} bytes, not a license key")]
    TooLong,
    #[error("--key-file: not text, not a license key")]
    NotText,
    #[error("--key-file: {0}")]
    Invalid(#[from] LicenseKeyError),
}

/// Reads the key from `path`, where `-` means stdin.
pub fn read(path: &Path) -> Result<LicenseKey, KeyFileError> {
    if path == Path::new("-") {
        return parse_named(std::io::stdin().lock(), path);
    }
    let file = std::fs::File::open(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_named(file, path)
}

/// The key in `input`, trimmed of surrounding whitespace and newlines.
pub fn parse(input: impl Read) -> Result<LicenseKey, KeyFileError> {
    parse_named(input, Path::new("-"))
}

fn parse_named(input: impl Read, path: &Path) -> Result<LicenseKey, KeyFileError> {
    let mut bytes = Vec::new();
    input
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_INPUT {
        return Err(KeyFileError::TooLong);
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| KeyFileError::NotText)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(KeyFileError::Empty);
    }
    Ok(LicenseKey::parse(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some_key() -> LicenseKey {
        LicenseKey::generate(|| [7; 16])
    }

    #[test]
    fn a_key_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        let key = some_key();
        std::fs::write(&path, format!("\n  {}\r\n", key.to_display())).expect("write");
        assert_eq!(read(&path).expect("a key").as_bytes(), key.as_bytes());
    }

    #[test]
    fn empty_input_says_no_key_was_given() {
        for input in [&b""[..], b"\n \t\n"] {
            let error = parse(input).expect_err("nothing there");
            assert!(matches!(error, KeyFileError::Empty), "{error:?}");
            assert!(error.to_string().starts_with("no key given"), "{error}");
        }
    }

    #[test]
    fn a_malformed_key_is_refused_without_its_text() {
        let error = parse(&b"ABCD-SECRET\n"[..]).expect_err("malformed");
        assert!(matches!(error, KeyFileError::Invalid(_)), "{error:?}");
        assert!(!error.to_string().contains("SECRET"), "{error}");
        assert!(matches!(
            parse(std::io::repeat(b'A')).expect_err("endless"),
            KeyFileError::TooLong
        ));
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let error = read(Path::new("/nonexistent/key")).expect_err("no file");
        assert!(error.to_string().contains("/nonexistent/key"), "{error}");
    }
}
