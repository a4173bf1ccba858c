//! The operating systems the keyring backends differ by. What differs without touching the
//! keyring (the store's name, the advice in an error) is chosen by a pure function of the
//! system, so that every system's choice is tested on every platform; the running build
//! passes [`KeyringOs::CURRENT`].

/// An operating system, as far as the OS keyring is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyringOs {
    /// The Secret Service over D-Bus.
    Linux,
    /// The login keychain.
    MacOs,
    /// Credential Manager.
    Windows,
    /// No backend in this build (the keyring crate would only offer an in-memory mock).
    Other,
}

impl KeyringOs {
    /// The system this build runs on.
    pub(crate) const CURRENT: Self = if cfg!(target_os = "linux") {
        Self::Linux
    } else if cfg!(target_os = "macos") {
        Self::MacOs
    } else if cfg!(target_os = "windows") {
        Self::Windows
    } else {
        Self::Other
    };

    /// Whether this build has a real backend for the system.
    pub(crate) const fn has_backend(self) -> bool {
        !matches!(self, Self::Other)
    }

    /// The store's name in `lapctl doctor` and the tray's diagnostics: what the person looks
    /// for on their system (the guides name the same).
    pub(crate) const fn backend_name(self) -> &'static str {
        match self {
            Self::Linux => "Secret Service",
            Self::MacOs => "macOS Keychain",
            Self::Windows => "Windows Credential Manager",
            Self::Other => "none",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [KeyringOs; 4] = [
        KeyringOs::Linux,
        KeyringOs::MacOs,
        KeyringOs::Windows,
        KeyringOs::Other,
    ];

    #[test]
    fn each_system_names_its_own_store() {
        assert!(KeyringOs::MacOs.backend_name().contains("Keychain"));
        assert!(
            KeyringOs::Windows
                .backend_name()
                .contains("Credential Manager")
        );
        assert!(KeyringOs::Linux.backend_name().contains("Secret Service"));
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                assert_ne!(a.backend_name(), b.backend_name(), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn only_the_three_desktop_systems_have_a_backend() {
        assert_eq!(ALL.map(KeyringOs::has_backend), [true, true, true, false]);
        #[cfg(target_os = "linux")]
        assert_eq!(KeyringOs::CURRENT, KeyringOs::Linux);
        #[cfg(target_os = "macos")]
        assert_eq!(KeyringOs::CURRENT, KeyringOs::MacOs);
        #[cfg(target_os = "windows")]
        assert_eq!(KeyringOs::CURRENT, KeyringOs::Windows);
    }
}
