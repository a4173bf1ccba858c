//! The folder products are installed into for everyone, and the rule that makes its manifests
//! trustworthy: only the administrator can write them. A manifest names the server a license
//! key is sent to, so one that any user can write would let that user redirect every
//! account's key.
//!
//! The rule is a pure function of who owns a file and who may write it, so it is tested with
//! any folder and any expected owner.

use std::path::{Path, PathBuf};

use lapwing_fs::WindowsWriteAccess;

/// The system folder and who alone may own and write it and its manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFolder {
    pub path: PathBuf,
    pub trusted: Trusted,
}

/// Who may own and write the system folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trusted {
    /// Unix: one account, uid 0.
    Uid(u32),
    /// Windows: these accounts and groups (SID strings), see [`Trusted::windows`].
    Sids(Vec<String>),
}

/// BUILTIN\Administrators.
pub const ADMINISTRATORS: &str = "S-1-5-32-544";
/// NT AUTHORITY\SYSTEM.
pub const SYSTEM: &str = "S-1-5-18";
/// NT SERVICE\TrustedInstaller, which owns what Windows itself installs.
pub const TRUSTED_INSTALLER: &str =
    "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

impl Trusted {
    /// Administrators, SYSTEM and TrustedInstaller; and the user running this when that user
    /// runs as an administrator: what such a user owns is no less trustworthy, since they
    /// could rewrite anything (an elevated installer's files may be owned by them, and
    /// under Wine every file is).
    pub fn windows(administrator_running_this: Option<String>) -> Self {
        let mut sids: Vec<String> = [ADMINISTRATORS, SYSTEM, TRUSTED_INSTALLER]
            .into_iter()
            .map(str::to_owned)
            .collect();
        sids.extend(administrator_running_this);
        Self::Sids(sids)
    }

    /// The platform's administrators: root on Unix; on Windows [`Trusted::windows`] with the
    /// administrator running this, if this process runs as one. `None` elsewhere.
    pub fn platform() -> Option<Self> {
        #[cfg(unix)]
        return Some(Self::Uid(0));
        #[cfg(windows)]
        return Some(Self::windows(
            lapwing_fs::windows_security::administrator_running_this(),
        ));
        #[cfg(not(any(unix, windows)))]
        return None;
    }

    fn describe(&self) -> String {
        match self {
            Self::Uid(uid) => account(*uid),
            Self::Sids(sids) => {
                let names: Vec<String> = sids.iter().map(|sid| sid_name(sid)).collect();
                names.join(", ")
            }
        }
    }
}

/// Who owns a file or folder and who may write it, as far as the rule cares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Unix: the owner's uid and the permission bits.
    Unix { owner: u32, mode: u32 },
    /// Windows: the owner and the writers the access list names.
    Windows(WindowsWriteAccess),
}

impl Access {
    /// What the platform says of `path` (following links: the target is what is read).
    /// `None` where no rule exists (neither Unix nor Windows).
    pub fn of(path: &Path) -> std::io::Result<Option<Self>> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            let meta = std::fs::metadata(path)?;
            Ok(Some(Self::Unix {
                owner: meta.uid(),
                mode: meta.mode() & 0o7777,
            }))
        }
        #[cfg(windows)]
        {
            lapwing_fs::windows_security::write_access(path).map(|a| Some(Self::Windows(a)))
        }
        #[cfg(not(any(unix, windows)))]
        {
            let _ = path;
            Ok(None)
        }
    }
}

/// Why something with `access` cannot be trusted when only `trusted` may write it, or `None`.
pub fn untrusted_because(access: &Access, trusted: &Trusted) -> Option<String> {
    match (access, trusted) {
        (Access::Unix { owner, mode }, Trusted::Uid(uid)) => unix_untrusted(*owner, *mode, *uid),
        (Access::Windows(access), Trusted::Sids(sids)) => windows_untrusted(access, sids),
        _ => Some("its access rules are of another platform's kind".to_owned()),
    }
}

fn unix_untrusted(owner: u32, mode: u32, trusted: u32) -> Option<String> {
    if owner != trusted {
        return Some(format!(
            "it is owned by uid {owner}, not {}",
            account(trusted)
        ));
    }
    let writers: Vec<&str> = [(0o020, "its group"), (0o002, "every user")]
        .into_iter()
        .filter(|(bit, _)| mode & bit != 0)
        .map(|(_, who)| who)
        .collect();
    (!writers.is_empty()).then(|| {
        format!(
            "it is writable by {} (mode {mode:04o})",
            writers.join(" and "),
        )
    })
}

fn windows_untrusted(access: &WindowsWriteAccess, trusted: &[String]) -> Option<String> {
    let is_trusted = |sid: &String| trusted.iter().any(|t| t.eq_ignore_ascii_case(sid));
    if !is_trusted(&access.owner) {
        return Some(format!("it is owned by {}", sid_name(&access.owner)));
    }
    let Some(writers) = &access.writers else {
        return Some("it has no access list, so everyone may write it".to_owned());
    };
    let others: Vec<String> = writers
        .iter()
        .filter(|sid| !is_trusted(sid))
        .map(|sid| sid_name(sid))
        .collect();
    if !others.is_empty() {
        return Some(format!("it is writable by {}", others.join(" and ")));
    }
    (!access.unread_entry_types.is_empty()).then(|| {
        format!(
            "its access list has entries of a kind Lapwing does not read (type {})",
            access
                .unread_entry_types
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// A well-known SID's name, the way Windows shows it; any other SID as itself.
fn sid_name(sid: &str) -> String {
    let name = match sid {
        ADMINISTRATORS => "Administrators",
        SYSTEM => "SYSTEM",
        TRUSTED_INSTALLER => "TrustedInstaller",
        "S-1-1-0" => "Everyone",
        "S-1-5-32-545" => "Users",
        "S-1-5-11" => "Authenticated Users",
        "S-1-5-4" => "INTERACTIVE",
        "S-1-3-0" => "CREATOR OWNER",
        "S-1-5-32-547" => "Power Users",
        _ => return sid.to_owned(),
    };
    format!("{name} ({sid})")
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
            Ok(access) => untrusted_because(&access?, &self.trusted)?,
            Err(e) => format!("it cannot be checked ({e})"),
        };
        Some(format!(
            "refused: the system folder {} must be writable only by {}, and {why}",
            self.path.display(),
            self.trusted.describe()
        ))
    }

    /// Why one manifest in the folder cannot be trusted, or `None`.
    pub fn file_refusal(&self, file: &Path) -> Option<String> {
        self.refusal_of(file, "a manifest in the system folder")
    }

    /// Why `file`, named `what` in the sentence, cannot be trusted, or `None`.
    pub fn refusal_of(&self, file: &Path, what: &str) -> Option<String> {
        let why = match Access::of(file) {
            Ok(access) => untrusted_because(&access?, &self.trusted)?,
            Err(e) => format!("it cannot be checked ({e})"),
        };
        Some(format!(
            "refused: {what} must be writable only by {}, and {why}",
            self.trusted.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_may_write() {
        let access = |owner, mode| Access::Unix { owner, mode };
        let untrusted_because = |a: Access, uid| untrusted_because(&a, &Trusted::Uid(uid));
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

    fn windows(owner: &str, writers: &[&str]) -> Access {
        Access::Windows(WindowsWriteAccess {
            owner: owner.to_owned(),
            writers: Some(writers.iter().map(|s| (*s).to_owned()).collect()),
            unread_entry_types: Vec::new(),
        })
    }

    const ALICE: &str = "S-1-5-21-1-2-3-1001";
    const BOB: &str = "S-1-5-21-1-2-3-1002";

    #[test]
    fn on_windows_only_administrators_may_own_and_write() {
        let standard_user = Trusted::windows(None);
        // What the installer's icacls leaves: Administrators and SYSTEM write, Users read
        // (readers are not in the list at all).
        let installed = windows(ADMINISTRATORS, &[ADMINISTRATORS, SYSTEM]);
        assert_eq!(untrusted_because(&installed, &standard_user), None);
        let by_windows = windows(TRUSTED_INSTALLER, &[TRUSTED_INSTALLER, SYSTEM]);
        assert_eq!(untrusted_because(&by_windows, &standard_user), None);

        // ProgramData's default lets Users add folders; one a user made first is theirs.
        let made_by_alice = windows(ALICE, &[ADMINISTRATORS, SYSTEM, ALICE]);
        assert_eq!(
            untrusted_because(&made_by_alice, &standard_user).as_deref(),
            Some("it is owned by S-1-5-21-1-2-3-1001")
        );
        let users_write = windows(ADMINISTRATORS, &[ADMINISTRATORS, "S-1-5-32-545", "S-1-1-0"]);
        assert_eq!(
            untrusted_because(&users_write, &standard_user).as_deref(),
            Some("it is writable by Users (S-1-5-32-545) and Everyone (S-1-1-0)")
        );
        let no_list = Access::Windows(WindowsWriteAccess {
            owner: SYSTEM.to_owned(),
            writers: None,
            unread_entry_types: Vec::new(),
        });
        assert_eq!(
            untrusted_because(&no_list, &standard_user).as_deref(),
            Some("it has no access list, so everyone may write it")
        );
        let odd = Access::Windows(WindowsWriteAccess {
            owner: SYSTEM.to_owned(),
            writers: Some(vec![SYSTEM.to_owned()]),
            unread_entry_types: vec![9],
        });
        assert!(
            untrusted_because(&odd, &standard_user)
                .is_some_and(|why| why.ends_with("of a kind Lapwing does not read (type 9)"))
        );
    }

    #[test]
    fn an_administrator_running_this_trusts_what_they_own_and_no_one_else() {
        let alice_as_admin = Trusted::windows(Some(ALICE.to_owned()));
        let made_by_alice = windows(ALICE, &[ADMINISTRATORS, SYSTEM, ALICE]);
        assert_eq!(untrusted_because(&made_by_alice, &alice_as_admin), None);
        let bob_writes = windows(ALICE, &[ALICE, BOB]);
        assert_eq!(
            untrusted_because(&bob_writes, &alice_as_admin).as_deref(),
            Some("it is writable by S-1-5-21-1-2-3-1002")
        );
        // SIDs are compared as Windows does, without regard to case.
        let lower = windows(&ADMINISTRATORS.to_lowercase(), &[]);
        assert_eq!(untrusted_because(&lower, &alice_as_admin), None);
    }

    #[test]
    fn a_refusal_names_who_may_write() {
        let folder = SystemFolder {
            path: PathBuf::from("C:/ProgramData/LAP/products.d"),
            trusted: Trusted::windows(None),
        };
        assert_eq!(
            folder.trusted.describe(),
            "Administrators (S-1-5-32-544), SYSTEM (S-1-5-18), TrustedInstaller \
             (S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464)"
        );
        assert_eq!(
            untrusted_because(
                &Access::Unix {
                    owner: 0,
                    mode: 0o644
                },
                &folder.trusted
            )
            .as_deref(),
            Some("its access rules are of another platform's kind")
        );
    }
}
