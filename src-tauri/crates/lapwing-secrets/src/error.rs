//! The crate's one error type. Every variant says what went wrong *and* what the person can do
//! about it, because these messages reach `lapctl doctor`, the tray and the terminal as they
//! are. No variant carries a secret value: at most an item's name, a length, a path.

use std::path::PathBuf;

use crate::keyring_os::KeyringOs;

/// What the person can do when the OS keyring cannot be used at all; every "keyring is
/// unusable" message ends with it.
const OR_FILE_STORE: &str =
    "or, knowing the risk, keep secrets in a plain file with --insecure-file-store";

/// How to unlock the keyring on this system. (Kept right above [`locked_fix`], Linux's arm
/// first: lapwing-core's docs_match test reads a constant's text as the first string after
/// its definition, to check the troubleshooting guide quotes this message.)
const LOCKED_FIX: &str = locked_fix(KeyringOs::CURRENT);

/// How to unlock the keyring on `os`.
const fn locked_fix(os: KeyringOs) -> &'static str {
    match os {
        KeyringOs::Linux => {
            "unlock it: log in to the desktop session (the login keyring opens with it) \
             or answer the unlock prompt; on a machine without a desktop, feed the keyring's \
             password to `gnome-keyring-daemon --unlock` on standard input"
        }
        KeyringOs::MacOs => "unlock the login keychain in Keychain Access, or log in again",
        KeyringOs::Windows | KeyringOs::Other => "log in to the desktop session again",
    }
}

/// What to check on this system when its keyring cannot be reached (see [`LOCKED_FIX`]).
const UNAVAILABLE_FIX: &str = unavailable_fix(KeyringOs::CURRENT);

/// What to check on `os` when its keyring cannot be reached for a reason other than a lock.
const fn unavailable_fix(os: KeyringOs) -> &'static str {
    match os {
        KeyringOs::Linux => {
            "check that a Secret Service provider (gnome-keyring or KeePassXC) runs in this session"
        }
        KeyringOs::MacOs => {
            "check the login keychain in Keychain Access (File → Keychain First Aid)"
        }
        KeyringOs::Windows | KeyringOs::Other => {
            "run Lapwing from an interactive login session (Credential Manager is per logon \
             session)"
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// A product id that is not a manifest slug (`[a-z0-9][a-z0-9-]{0,63}`). Checked before
    /// any store is touched, so an id can never smuggle in a keyring attribute or a JSON key.
    #[error(
        "product id {id:?} is not valid: it must be 1 to 64 characters of a-z, 0-9 and '-', \
         starting with a letter or digit (the manifest's `id`)"
    )]
    InvalidProductId { id: String },
    /// A value of the wrong length for its item (the caller's bug, caught before storing).
    #[error("{item} must be {expected} bytes, not {actual}: nothing was stored")]
    InvalidValue {
        item: &'static str,
        expected: usize,
        actual: usize,
    },
    /// Linux: no D-Bus session bus to reach a Secret Service through.
    #[error(
        "no D-Bus session bus ({}): run Lapwing inside a desktop session, or start one \
         (`dbus-run-session -- lapctl …`) with a keyring in it; {OR_FILE_STORE}",
        match address {
            Some(address) => format!("nothing answers at DBUS_SESSION_BUS_ADDRESS={address}"),
            None => "DBUS_SESSION_BUS_ADDRESS is not set and nothing answers at \
                     $XDG_RUNTIME_DIR/bus"
                .to_owned(),
        }
    )]
    NoSessionBus { address: Option<String> },
    /// Linux: a session bus, but nobody on it provides `org.freedesktop.secrets`.
    #[error(
        "no Secret Service on the session bus{}: install and start gnome-keyring \
         (`apt install gnome-keyring`, then log in again or run `gnome-keyring-daemon --start \
         --components=secrets`) or enable KeePassXC's Secret Service integration; {OR_FILE_STORE}",
        address.as_ref().map(|a| format!(" at {a}")).unwrap_or_default()
    )]
    NoService { address: Option<String> },
    /// The keyring (collection, keychain) is locked and was not unlocked: the unlock prompt
    /// was dismissed, or could not be shown (no desktop).
    #[error("the keyring is locked ({detail}): {LOCKED_FIX}; {OR_FILE_STORE}")]
    Locked { detail: String },
    /// Linux: the Secret Service has no default collection to keep items in.
    #[error(
        "the Secret Service has no default keyring: create one and make it the default \
         (Seahorse \"Passwords and Keys\": + → Password keyring, then \"Set as default\"; \
         gnome-keyring creates the \"login\" keyring at the first desktop login); {OR_FILE_STORE}"
    )]
    NoDefaultCollection,
    /// The store refused access (bus policy, sandbox, KeePassXC refusing this client, or a
    /// file this user may not read).
    #[error(
        "access to the secret store was denied ({detail}): allow Lapwing in the keyring's \
         settings (KeePassXC: Secret Service integration → allow this application; \
         Flatpak: --talk-name=org.freedesktop.secrets); {OR_FILE_STORE}"
    )]
    PermissionDenied { detail: String },
    /// The platform's store exists but cannot be reached for a reason other than a lock.
    #[error("the OS keyring cannot be used ({detail}): {UNAVAILABLE_FIX}; {OR_FILE_STORE}")]
    Unavailable { detail: String },
    /// This build has no keyring backend for the operating system it runs on.
    #[error(
        "this build of Lapwing has no OS keyring backend for {os}: {OR_FILE_STORE}",
        os = std::env::consts::OS
    )]
    Unsupported,
    /// Stored data that cannot be what Lapwing wrote: `what` names the file or the item, the
    /// defect and the way out. It is never repaired silently, since that would lose a key.
    #[error("{what}")]
    Corrupt { what: String },
    /// The insecure file store's file may be read by other users.
    #[error(
        "{} is readable by other users (mode {mode:03o}) and holds secrets in plain text: \
         run `chmod 600 {}` (and consider whether someone has copied it)",
        path.display(),
        path.display()
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No randomness for the probe value.
    #[error("no randomness available from the operating system: {0}")]
    Randomness(String),
    /// Anything else the platform's store reported; `detail` is its own message.
    #[error(
        "the OS keyring failed ({detail}): run `lapctl doctor`; if it keeps failing, restart \
         the keyring (log out and in) or {OR_FILE_STORE}"
    )]
    Backend { detail: String },
}

impl SecretError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The session bus address in force, so that a message names the bus that was tried.
#[cfg(target_os = "linux")]
pub(crate) fn session_bus_address() -> Option<String> {
    std::env::var("DBUS_SESSION_BUS_ADDRESS")
        .ok()
        .filter(|address| !address.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unusable_keyring_message_offers_the_file_store() {
        for error in [
            SecretError::NoSessionBus { address: None },
            SecretError::NoService {
                address: Some("unix:path=/run/user/1000/bus".into()),
            },
            SecretError::Locked {
                detail: "prompt dismissed".into(),
            },
            SecretError::NoDefaultCollection,
            SecretError::PermissionDenied {
                detail: "denied".into(),
            },
            SecretError::Unavailable { detail: "x".into() },
            SecretError::Unsupported,
            SecretError::Backend { detail: "x".into() },
        ] {
            let text = error.to_string();
            assert!(
                text.contains("--insecure-file-store"),
                "{error:?} gives no way out: {text}"
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn locked_names_the_cause_and_the_fix() {
        let text = SecretError::Locked {
            detail: "the unlock prompt was dismissed".into(),
        }
        .to_string();
        assert!(text.starts_with("the keyring is locked"), "{text}");
        assert!(text.contains("gnome-keyring-daemon --unlock"), "{text}");
    }

    /// Advice names the tools of its own system only: a Mac user told to run
    /// gnome-keyring-daemon, or a Linux user sent to Keychain Access, is left stuck.
    #[test]
    fn each_systems_advice_names_its_own_tools() {
        let linux_tools = ["gnome-keyring", "Secret Service", "KeePassXC"];
        let advice = |os| [locked_fix(os), unavailable_fix(os)];
        for text in advice(KeyringOs::MacOs) {
            assert!(text.contains("Keychain"), "{text}");
            assert!(!linux_tools.iter().any(|t| text.contains(t)), "{text}");
        }
        for text in advice(KeyringOs::Windows) {
            assert!(!text.contains("Keychain"), "{text}");
            assert!(!linux_tools.iter().any(|t| text.contains(t)), "{text}");
        }
        assert!(unavailable_fix(KeyringOs::Windows).contains("Credential Manager"));
        for text in advice(KeyringOs::Linux) {
            assert!(!text.contains("Keychain"), "{text}");
            assert!(!text.contains("Credential Manager"), "{text}");
        }
        assert!(locked_fix(KeyringOs::Linux).contains("gnome-keyring-daemon --unlock"));
    }

    /// This build's messages carry this build's advice.
    #[test]
    fn the_messages_carry_this_systems_advice() {
        let locked = SecretError::Locked { detail: "x".into() }.to_string();
        assert!(locked.contains(locked_fix(KeyringOs::CURRENT)), "{locked}");
        let unavailable = SecretError::Unavailable { detail: "x".into() }.to_string();
        assert!(
            unavailable.contains(unavailable_fix(KeyringOs::CURRENT)),
            "{unavailable}"
        );
    }

    #[test]
    fn an_overlong_product_id_is_not_echoed_whole() {
        let error = crate::check_product_id(&"a".repeat(10_000)).expect_err("too long");
        assert!(error.to_string().len() < 400, "{error}");
    }
}
