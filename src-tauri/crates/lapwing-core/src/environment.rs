//! The engine as this machine and the environment configure it, shared by `lapctl` and the
//! tray app so both see the same products, state, keyring and servers.
//!
//! Variables: `LAPWING_HOME`, `LAPWING_PRODUCTS_DIR`, `LAPWING_POLICY`,
//! `LAPWING_CLOCK_OFFSET` (seconds, for tests and demos), `LAPWING_DNS_SERVER` (HOST:PORT of
//! the DNS server to ask instead of the system's) with `LAPWING_DNS_SEARCH` (comma-separated
//! domains), and `LAPWING_NO_MDNS` (skip the DNS-SD browse on the local link).

use std::net::SocketAddr;
use std::sync::Arc;

use lapwing_discovery::{DiscoveryConfig, DnsConfig};
use lapwing_secrets::{InsecureFileStore, KeyringStore, SecretStore};

use crate::clock::SystemClock;
use crate::engine::{Engine, EngineConfig, EngineError};
use crate::identity::HardwareIdentity;
use crate::manifest::product_dirs;
use crate::policy::policy_path;
use crate::records::data_dir;
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
    let data = data_dir();
    let secrets: Arc<dyn SecretStore> = match secrets {
        SecretsChoice::InsecureFile => Arc::new(InsecureFileStore::new(data.join("secrets.json"))),
        SecretsChoice::Keyring => Arc::new(KeyringStore::new()?),
    };
    Ok(Engine::new(EngineConfig {
        secrets,
        data_dir: data,
        product_dirs: product_dirs(),
        policy_path: policy_path(),
        clock: Arc::new(SystemClock::with_offset(clock_offset())),
        entropy: Arc::new(OsEntropy),
        identity: Arc::new(HardwareIdentity),
        discovery: discovery_config(),
        retry: RetryPolicy::default(),
    }))
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
