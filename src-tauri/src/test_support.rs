//! An engine for the crate's own tests: no products until a test places one, a fake clock,
//! an in-memory keyring, a fixed machine. Nothing here talks to a network: the tests that
//! activate against a real `lapd` are in `tests/commands.rs`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lap_proto::ServerSecretKeys;
use lapwing_core::clock::FakeClock;
use lapwing_core::engine::{Engine, EngineConfig};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_discovery::DiscoveryConfig;
use lapwing_secrets::{MemoryStore, SecretStore};

/// 2026-01-01, any fixed time will do: nothing here expires.
const NOW: u64 = 1_767_225_600;

/// An engine whose files all live under `dir`.
pub fn engine(dir: &Path) -> Engine {
    Engine::new(EngineConfig {
        data_dir: dir.join("data"),
        product_dirs: vec![dir.join("products.d")],
        policy_path: dir.join("policy.toml"),
        clock: Arc::new(FakeClock::at(NOW)),
        entropy: Arc::new(OsEntropy),
        secrets: Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy {
            waits: vec![Duration::from_millis(1)],
        },
    })
}

/// Installs product `id` for the engine of [`engine`]`(dir)`, as a package would.
pub fn install(dir: &Path, id: &str) {
    let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
    let products = dir.join("products.d");
    std::fs::create_dir_all(&products).expect("mkdir products.d");
    std::fs::write(
        products.join(format!("{id}.toml")),
        format!(
            "schema = 1\nid = \"{id}\"\nname = \"Acme Studio\"\nvendor = \"Acme\"\n\
             sku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\n\
             [server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"127.0.0.1:9\"\n",
            hex::encode(keys.public().x25519_bytes()),
            hex::encode(keys.public().ed25519_bytes()),
        ),
    )
    .expect("write manifest");
}
