//! The root-written anchor file.
//!
//! An ordinary user on Linux cannot read the SMBIOS table, the System UUID or, usually, the
//! TPM. So root (the package's install script and a boot-time one-shot unit) runs
//! `lapctl machine anchor --write`, which stores the anchor *digest* and its source name here,
//! world-readable; user-mode code reads it when it cannot read the hardware itself. The file
//! never holds a raw serial, UUID or key: the digest is a one-way hash of them, and every
//! vendor still sees a different MachineHash of it.
//!
//! ```json
//! {"schema":1,"source":"smbios-uuid","digest":"<64 hex digits>","written":1795000000}
//! ```

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::anchor::AnchorSource;
use crate::error::MachineError;

/// The file's schema version.
pub const ANCHOR_FILE_SCHEMA: u32 = 1;
/// Where root writes the file on Linux (`LAPWING_ANCHOR_FILE` replaces it).
pub const LINUX_ANCHOR_FILE: &str = "/var/lib/lapwing/anchor";
/// Larger than any valid anchor file: a bigger one is not ours and is not read whole.
const MAX_LEN: u64 = 4096;

/// Where root writes the file on macOS.
pub const MACOS_ANCHOR_FILE: &str = "/Library/Application Support/Lapwing/anchor";

/// The platform's anchor file, or `LAPWING_ANCHOR_FILE` when set.
pub fn default_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LAPWING_ANCHOR_FILE") {
        return PathBuf::from(path);
    }
    #[cfg(windows)]
    {
        windows_anchor_file(|name| std::env::var_os(name))
    }
    #[cfg(target_os = "macos")]
    {
        PathBuf::from(MACOS_ANCHOR_FILE)
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        PathBuf::from(LINUX_ANCHOR_FILE)
    }
}

/// Where root writes the file on Windows: `%ProgramData%\Lapwing\anchor`, with Windows'
/// default `C:\ProgramData` when the variable is missing. `var` looks the environment up;
/// it is a parameter so that the Windows answer is tested on every platform.
pub fn windows_anchor_file(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let base = var("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
    PathBuf::from(base).join("Lapwing").join("anchor")
}

/// The file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnchorRecord {
    pub source: AnchorSource,
    pub digest: [u8; 32],
    /// UNIX seconds.
    pub written: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    schema: u32,
    source: String,
    digest: String,
    written: u64,
}

impl AnchorRecord {
    /// The file's bytes: one line of JSON.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let form = FileForm {
            schema: ANCHOR_FILE_SCHEMA,
            source: self.source.tag().to_owned(),
            digest: hex::encode(self.digest),
            written: self.written,
        };
        let mut bytes = serde_json::to_vec(&form).expect("a flat struct serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parses the file's bytes; the error says what is wrong, for the warning.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let form: FileForm =
            serde_json::from_slice(bytes).map_err(|e| format!("not an anchor file: {e}"))?;
        if form.schema != ANCHOR_FILE_SCHEMA {
            return Err(format!(
                "schema {} (this version reads schema {ANCHOR_FILE_SCHEMA})",
                form.schema
            ));
        }
        let source = form.source.parse::<AnchorSource>()?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(&form.digest, &mut digest)
            .map_err(|_| "the digest is not 64 hex digits".to_owned())?;
        Ok(Self {
            source,
            digest,
            written: form.written,
        })
    }
}

/// What reading the file found. A bad file is a state with a reason, never an error: the
/// hardware may still be readable, and the report says what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnchorFileState {
    Missing,
    Valid(AnchorRecord),
    Corrupt(String),
    Unreadable(String),
}

impl AnchorFileState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Valid(_) => "valid",
            Self::Corrupt(_) => "corrupt",
            Self::Unreadable(_) => "unreadable",
        }
    }

    pub fn record(&self) -> Option<&AnchorRecord> {
        match self {
            Self::Valid(record) => Some(record),
            _ => None,
        }
    }
}

/// Reads the anchor file at `path`.
pub fn read(path: &Path) -> AnchorFileState {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return AnchorFileState::Missing,
        Err(e) => return AnchorFileState::Unreadable(e.to_string()),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_LEN + 1).read_to_end(&mut bytes) {
        return AnchorFileState::Unreadable(e.to_string());
    }
    if bytes.len() as u64 > MAX_LEN {
        return AnchorFileState::Corrupt(format!("longer than {MAX_LEN} bytes"));
    }
    match AnchorRecord::parse(&bytes) {
        Ok(record) => AnchorFileState::Valid(record),
        Err(reason) => AnchorFileState::Corrupt(reason),
    }
}

/// Writes the file atomically (a temporary file in the same directory, flushed, renamed over
/// the target, the directory flushed), mode 0644, creating the directory (0755) if needed.
pub fn write(path: &Path, record: &AnchorRecord) -> Result<(), MachineError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| MachineError::Io { path, source }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
        builder.create(dir).map_err(io(dir))?;
    }
    lapwing_fs::write_atomically(path, &record.to_file_bytes(), 0o644).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AnchorRecord {
        AnchorRecord {
            source: AnchorSource::SmbiosUuid,
            digest: [0xab; 32],
            written: 1_795_000_000,
        }
    }

    /// `Path::join` separates with `/` on Linux where Windows writes `\`.
    fn as_windows(path: &Path) -> String {
        path.to_string_lossy().replace('/', "\\")
    }

    #[test]
    fn the_windows_anchor_file_is_under_program_data() {
        let set = |name: &str| (name == "ProgramData").then(|| OsString::from(r"D:\Data"));
        assert_eq!(
            as_windows(&windows_anchor_file(set)),
            r"D:\Data\Lapwing\anchor"
        );
        assert_eq!(
            as_windows(&windows_anchor_file(|_| None)),
            r"C:\ProgramData\Lapwing\anchor",
            "Windows' default when the variable is missing"
        );
    }

    #[test]
    fn round_trip_mode_and_no_leftovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("anchor");
        assert_eq!(read(&path), AnchorFileState::Missing);
        write(&path, &record()).expect("written");
        assert_eq!(read(&path), AnchorFileState::Valid(record()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o644);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("anchor")]);
        let text = std::fs::read_to_string(&path).expect("text");
        assert!(text.contains("\"source\":\"smbios-uuid\""), "{text}");
        assert!(text.contains(&"ab".repeat(32)));
    }

    #[test]
    fn corrupt_files_are_states_with_reasons() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("anchor");
        let cases: [(&[u8], &str); 6] = [
            (b"", "not an anchor file"),
            (b"garbage", "not an anchor file"),
            (
                br#"{"schema":2,"source":"os-id","digest":"00","written":1}"#,
                "schema 2",
            ),
            (
                br#"{"schema":1,"source":"bios","digest":"00","written":1}"#,
                "unknown anchor source",
            ),
            (
                br#"{"schema":1,"source":"os-id","digest":"00","written":1}"#,
                "64 hex digits",
            ),
            (&[b' '; 5000], "longer than"),
        ];
        for (bytes, expected) in cases {
            std::fs::write(&path, bytes).expect("write");
            match read(&path) {
                AnchorFileState::Corrupt(reason) => {
                    assert!(reason.contains(expected), "{reason:?} lacks {expected:?}");
                }
                other => panic!("{other:?} for {:?}", String::from_utf8_lossy(bytes)),
            }
        }
    }
}
