//! Where a license key comes from: a prompt on the terminal, stdin when piped, or a file.
//! Never the command line, where every user sees it in `ps` and it stays in shell history.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use crate::CliError;

/// More than any license key's display form with generous whitespace; a bigger input is not
/// a key, and reading no further keeps a mistaken `--key-file /dev/zero` from filling memory.
const MAX_INPUT: u64 = 1024;

/// How to give a key instead, for the refusal and the help texts.
pub const HOW: &str = "type it at the prompt, pipe it in (`echo KEY | lapctl key set ID`), \
                       or name a file with --key-file FILE (`-` for stdin)";

/// The refusal of a key given as an argument. The key itself is not repeated: the error
/// line can end up in logs.
pub fn refused_argument() -> CliError {
    CliError::Usage(format!(
        "a license key is never given on the command line (every user can read it in `ps`, \
         and it stays in the shell's history): {HOW}"
    ))
}

/// Where `key set` and `install --key-file` read the key from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A prompt on the terminal when stdin is one, else all of stdin.
    Stdin,
    File(PathBuf),
}

impl KeySource {
    /// `--key-file FILE`, where `-` means stdin; without one, stdin.
    pub fn from_flag(key_file: Option<&Path>) -> Self {
        match key_file {
            Some(path) if path != Path::new("-") => Self::File(path.to_owned()),
            _ => Self::Stdin,
        }
    }

    /// Reads the key; `product` names what the prompt asks for.
    pub fn read(&self, product: &str) -> Result<String, CliError> {
        match self {
            Self::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| {
                    CliError::Runtime(format!("--key-file {}: {e}", path.display()))
                })?;
                key_from(file)
            }
            Self::Stdin => {
                let stdin = io::stdin();
                if stdin.is_terminal() {
                    let mut terminal = io::stderr();
                    write!(terminal, "License key for {product}: ")?;
                    terminal.flush()?;
                    let mut line = String::new();
                    stdin.lock().take(MAX_INPUT + 1).read_line(&mut line)?;
                    key_from(line.as_bytes())
                } else {
                    key_from(stdin.lock())
                }
            }
        }
    }
}

/// The key in `input`: trimmed of surrounding whitespace and newlines, refused when empty.
pub fn key_from(input: impl Read) -> Result<String, CliError> {
    let mut bytes = Vec::new();
    input.take(MAX_INPUT + 1).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_INPUT {
        return Err(CliError::BadKey(format!(
            "the key was not accepted: the input is longer than {MAX_INPUT} bytes"
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| CliError::BadKey("the key was not accepted: the input is not text".into()))?;
    let key = text.trim();
    // Dashes and spaces alone are no key either (not "found 0 characters").
    if lap_proto::license_key::normalize(key).is_empty() {
        return Err(CliError::Usage(format!("no key given: {HOW}")));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::exit;

    #[test]
    fn surrounding_whitespace_and_newlines_are_trimmed() {
        let key = key_from(&b"  \r\nAAAA-BBBB\n\n"[..]).expect("a key");
        assert_eq!(key, "AAAA-BBBB");
    }

    #[test]
    fn empty_input_says_no_key_was_given() {
        for input in [&b""[..], b"\n", b"  \t\r\n", b"- -\n", b"----"] {
            let error = key_from(input).expect_err("nothing there");
            assert_eq!(error.exit_code(), exit::USAGE);
            let message = error.to_string();
            assert!(message.starts_with("no key given"), "{message}");
            assert!(message.contains("--key-file"), "{message}");
        }
    }

    #[test]
    fn an_endless_input_is_not_read_to_its_end() {
        let error = key_from(io::repeat(b'A')).expect_err("too long");
        assert_eq!(error.exit_code(), exit::BAD_KEY);
    }

    #[test]
    fn a_key_file_is_read_and_a_dash_means_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "ABCD-EFGH\n").expect("write");
        let source = KeySource::from_flag(Some(&path));
        assert_eq!(source, KeySource::File(path.clone()));
        assert_eq!(source.read("x").expect("read"), "ABCD-EFGH");
        assert_eq!(KeySource::from_flag(Some(Path::new("-"))), KeySource::Stdin);
        assert_eq!(KeySource::from_flag(None), KeySource::Stdin);

        let missing = KeySource::File(dir.path().join("missing"));
        let error = missing.read("x").expect_err("no file");
        assert_eq!(error.exit_code(), exit::ERROR);
    }

    #[test]
    fn the_refusal_says_how_and_names_no_key() {
        let error = refused_argument();
        assert_eq!(error.exit_code(), exit::USAGE);
        let message = error.to_string();
        assert!(message.contains("--key-file"), "{message}");
        assert!(message.contains("echo KEY |"), "{message}");
    }
}
