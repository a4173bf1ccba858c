//! The engine as this machine and the environment configure it, shared by `lapctl` and the
//! tray app so both see the same products, state, keyring and servers.
//!
//! Variables: `LAPWING_HOME`, `LAPWING_PRODUCTS_DIR`, `LAPWING_POLICY`,
//! `LAPWING_CLOCK_OFFSET` (seconds, for tests and demos), `LAPWING_DNS_SERVER` (HOST:PORT of
//! the DNS server to ask instead of the system's) with `LAPWING_DNS_SEARCH` (comma-separated
//! domains), and `LAPWING_NO_MDNS` (skip the DNS-SD browse on the local link).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use lapwing_discovery::{DiscoveryConfig, DnsConfig};
use lapwing_secrets::{InsecureFileStore, KeyringStore, SecretStore};

use crate::clock::SystemClock;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::identity::HardwareIdentity;
use crate::manifest::product_dirs;
use crate::platform::Platform;
use crate::policy::policy_path;
use crate::state::{StateError, prepare_data_dir};
use crate::time_sources::SystemTimeSources;
use crate::transport::{OsEntropy, RetryPolicy};

/// Where secrets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretsChoice {
    /// The OS keyring (Secret Service, Windows Credential Manager, macOS Keychain).
    #[default]
    Keyring,
    /// A plain 0600 file in the data directory: anyone who can read the user's files can read
    /// the license keys. Only when the person asked for it.
    InsecureFile,
}

/// The engine for this machine, configured from the environment.
pub fn engine_from_environment(secrets: SecretsChoice) -> Result<Engine, EngineError> {
    let data = data_dir()?;
    // Before the secret store may create its file there.
    prepare_data_dir(&data).map_err(|source| StateError::Io {
        path: data.clone(),
        source,
    })?;
    let secrets: Arc<dyn SecretStore> = match secrets {
        SecretsChoice::InsecureFile => Arc::new(InsecureFileStore::new(data.join("secrets.json"))),
        SecretsChoice::Keyring => Arc::new(KeyringStore::new()?),
    };
    let offset = clock_offset();
    Ok(Engine::new(EngineConfig {
        secrets,
        data_dir: data,
        product_dirs: product_dirs(),
        policy_path: policy_path(),
        clock: Arc::new(SystemClock::with_offset(offset)),
        entropy: Arc::new(OsEntropy),
        identity: Arc::new(HardwareIdentity),
        discovery: discovery_config(),
        retry: RetryPolicy::default(),
    })
    .with_time_sources(Arc::new(SystemTimeSources {
        shifted_by: (offset != 0).then_some(offset),
    })))
}

/// The per-user data directory: `LAPWING_HOME`, else the platform's (XDG on Linux). With
/// none of their variables set there is no per-user place: it refuses rather than fall back
/// to a shared folder such as `/tmp`, where other users could read or plant the files.
pub fn data_dir() -> Result<PathBuf, EngineError> {
    data_dir_from(|name| std::env::var_os(name))
}

/// [`data_dir`] with the environment given.
pub fn data_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, EngineError> {
    data_dir_for(Platform::CURRENT, var)
}

/// [`data_dir`] on `platform`, with the environment given: `LAPWING_HOME`, else
/// `%LOCALAPPDATA%\lapwing` on Windows, `$HOME/Library/Application Support/lapwing` on macOS,
/// `$XDG_DATA_HOME/lapwing` or `$HOME/.local/share/lapwing` on Linux.
pub fn data_dir_for(
    platform: Platform,
    var: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, EngineError> {
    // An empty value names no folder (and would make a relative path).
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("LAPWING_HOME") {
        return Ok(PathBuf::from(dir));
    }
    let (base, missing) = match platform {
        Platform::Windows => (var("LOCALAPPDATA").map(PathBuf::from), "LOCALAPPDATA"),
        Platform::MacOs => (
            var("HOME").map(|h| PathBuf::from(h).join("Library/Application Support")),
            "HOME",
        ),
        Platform::Linux => (
            var("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/share"))),
            "HOME",
        ),
    };
    base.map(|b| b.join("lapwing"))
        .ok_or(EngineError::NoDataDir { missing })
}

fn clock_offset() -> i64 {
    std::env::var("LAPWING_CLOCK_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn discovery_config() -> DiscoveryConfig {
    let mut discovery = DiscoveryConfig::default();
    if let Some(address) = std::env::var("LAPWING_DNS_SERVER")
        .ok()
        .and_then(|v| v.parse::<SocketAddr>().ok())
    {
        let search = std::env::var("LAPWING_DNS_SEARCH")
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        discovery.dns = DnsConfig::Nameserver { address, search };
    }
    if std::env::var_os("LAPWING_NO_MDNS").is_some() {
        discovery.mdns = None;
    }
    discovery
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::{as_windows, fake_env as env};

    #[test]
    fn without_a_home_there_is_no_data_directory_and_no_shared_fallback() {
        let cases = [
            (Platform::Linux, "HOME"),
            (Platform::MacOs, "HOME"),
            (Platform::Windows, "LOCALAPPDATA"),
        ];
        for (platform, variable) in cases {
            for vars in [&[][..], &[(variable, "")][..], &[("LAPWING_HOME", "")][..]] {
                let err = data_dir_for(platform, env(vars)).expect_err("refused");
                assert!(
                    matches!(err, EngineError::NoDataDir { missing } if missing == variable),
                    "{platform:?} {vars:?}: {err:?}"
                );
                let text = err.to_string();
                assert!(
                    text.contains("is not set") && text.contains("LAPWING_HOME"),
                    "{text}"
                );
            }
        }
        // Windows does not look at HOME, nor macOS at XDG_DATA_HOME.
        assert!(data_dir_for(Platform::Windows, env(&[("HOME", "/home/a")])).is_err());
        assert!(data_dir_for(Platform::MacOs, env(&[("XDG_DATA_HOME", "/x")])).is_err());
    }

    #[test]
    fn lapwing_home_wins_on_every_platform() {
        for platform in [Platform::Linux, Platform::MacOs, Platform::Windows] {
            let vars = env(&[
                ("LAPWING_HOME", "/srv/lw"),
                ("HOME", "/home/a"),
                ("XDG_DATA_HOME", "/x"),
                ("LOCALAPPDATA", r"C:\Users\a\AppData\Local"),
            ]);
            assert_eq!(
                data_dir_for(platform, vars).expect("dir"),
                PathBuf::from("/srv/lw")
            );
        }
    }

    #[test]
    fn each_platform_has_its_own_per_user_folder() {
        assert_eq!(
            data_dir_for(Platform::Linux, env(&[("HOME", "/home/a")])).expect("dir"),
            PathBuf::from("/home/a/.local/share/lapwing")
        );
        assert_eq!(
            data_dir_for(
                Platform::Linux,
                env(&[("HOME", "/home/a"), ("XDG_DATA_HOME", "/data/a")])
            )
            .expect("dir"),
            PathBuf::from("/data/a/lapwing")
        );
        assert_eq!(
            data_dir_for(
                Platform::Linux,
                env(&[("HOME", "/home/a"), ("XDG_DATA_HOME", "")])
            )
            .expect("dir"),
            PathBuf::from("/home/a/.local/share/lapwing"),
            "an empty XDG_DATA_HOME is not set"
        );
        assert_eq!(
            data_dir_for(Platform::MacOs, env(&[("HOME", "/Users/a")])).expect("dir"),
            PathBuf::from("/Users/a/Library/Application Support/lapwing")
        );
        let windows = data_dir_for(
            Platform::Windows,
            env(&[("LOCALAPPDATA", r"C:\Users\a\AppData\Local")]),
        )
        .expect("dir");
        assert_eq!(as_windows(&windows), r"C:\Users\a\AppData\Local\lapwing");
    }

    /// The cfg'd build picks its own platform's rule.
    #[test]
    fn this_build_reads_its_own_platforms_variables() {
        let vars = [
            ("HOME", "/home/a"),
            ("LOCALAPPDATA", r"C:\Users\a\AppData\Local"),
        ];
        #[cfg(windows)]
        let expected = PathBuf::from(r"C:\Users\a\AppData\Local\lapwing");
        #[cfg(target_os = "macos")]
        let expected = PathBuf::from("/home/a/Library/Application Support/lapwing");
        #[cfg(not(any(windows, target_os = "macos")))]
        let expected = PathBuf::from("/home/a/.local/share/lapwing");
        assert_eq!(data_dir_from(env(&vars)).expect("dir"), expected);
    }
}
