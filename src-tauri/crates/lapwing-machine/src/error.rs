//! The crate's one error type. Most of what goes wrong while reading a machine is a *state*
//! (no TPM, no permission, no SMBIOS) reported in the identity, not an error: errors are for
//! what the caller asked for explicitly (a dump file, writing the anchor file) and for a
//! machine where no anchor source at all could be found.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not an SMBIOS dump: {reason}", path.display())]
    NotSmbios { path: PathBuf, reason: String },
    #[error("anchor file {}: {reason}", path.display())]
    AnchorFile { path: PathBuf, reason: String },
    /// Not even the OS installation id could be read.
    #[error("no anchor source is present and plausible on this machine ({0})")]
    NoAnchor(String),
    /// `anchor --write` would replace a pinned source it merely failed to read this time.
    #[error(
        "the anchor file's source {source_name} could not be read now ({reason}); \
         the anchor file was left as it is"
    )]
    PinnedUnreadable { source_name: String, reason: String },
}
