//! The folder products are installed into for everyone, and the rule that makes its manifests
//! trustworthy: only the administrator can write them. A manifest names the server a license
//! key is sent to, so one that any user can write would let that user redirect every
//! account's key.
//!
//! The rule is a pure function of who owns a file and who may write it, so it is tested with
//! any folder and any expected owner.

use std::path::{Path, PathBuf};

/// The system folder and the owner its manifests must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFolder {
    pub path: PathBuf,
    /// The only account that may own and write the folder and its manifests: uid 0 on Unix.
    pub owner: u32,
}

/// Who owns a file or folder and its permission bits, as far as the rule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub owner: u32,
    pub mode: u32,
}

impl Access {
    /// What the platform says of `path` (following links: the target is what is read).
    /// `None` where the rule is not implemented yet (Windows: its ACL rule is its own issue).
    pub fn of(path: &Path) -> std::io::Result<Option<Self>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let meta = std::fs::metadata(path)?;
            Ok(Some(Self {
                owner: meta.uid(),
                mode: meta.mode() & 0o7777,
            }))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }
}

/// Why something with `access` cannot be trusted when only `owner` may write it, or `None`.
pub fn untrusted_because(access: Access, owner: u32) -> Option<String> {
    if access.owner != owner {
        return Some(format!(
            "it is owned by uid {}, not {}",
            access.owner,
            account(owner)
        ));
    }
    let writers: Vec<&str> = [(0o020, "its group"), (0o002, "every user")]
        .into_iter()
        .filter(|(bit, _)| access.mode & bit != 0)
        .map(|(_, who)| who)
        .collect();
    (!writers.is_empty()).then(|| {
        format!(
            "it is writable by {} (mode {:04o})",
            writers.join(" and "),
            access.mode
        )
    })
}

fn account(uid: u32) -> String {
    if uid == 0 {
        "root".to_owned()
    } else {
        format!("uid {uid}")
    }
}

impl SystemFolder {
    /// Why the folder itself cannot be trusted (then none of its manifests is), or `None`.
    pub fn folder_refusal(&self) -> Option<String> {
        let why = match Access::of(&self.path) {
            Ok(access) => untrusted_because(access?, self.owner)?,
            Err(e) => format!("it cannot be checked ({e})"),
        };
        Some(format!(
            "refused: the system folder {} must be writable only by {}, and {why}",
            self.path.display(),
            account(self.owner)
        ))
    }

    /// Why one manifest in the folder cannot be trusted, or `None`.
    pub fn file_refusal(&self, file: &Path) -> Option<String> {
        let why = match Access::of(file) {
            Ok(access) => untrusted_because(access?, self.owner)?,
            Err(e) => format!("it cannot be checked ({e})"),
        };
        Some(format!(
            "refused: a manifest in the system folder must be writable only by {}, and {why}",
            account(self.owner)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_write() {
        let access = |owner, mode| Access { owner, mode };
        assert_eq!(untrusted_because(access(0, 0o644), 0), None);
        assert_eq!(untrusted_because(access(0, 0o755), 0), None);
        assert_eq!(untrusted_because(access(0, 0o600), 0), None);
        assert_eq!(
            untrusted_because(access(1000, 0o644), 0).as_deref(),
            Some("it is owned by uid 1000, not root")
        );
        assert_eq!(
            untrusted_because(access(0, 0o664), 0).as_deref(),
            Some("it is writable by its group (mode 0664)")
        );
        assert_eq!(
            untrusted_because(access(0, 0o1777), 0).as_deref(),
            Some("it is writable by its group and every user (mode 1777)")
        );
        assert_eq!(
            untrusted_because(access(0, 0o644), 5).as_deref(),
            Some("it is owned by uid 0, not uid 5")
        );
    }
}
