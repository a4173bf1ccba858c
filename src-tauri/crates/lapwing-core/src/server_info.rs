//! Where a product's servers come from, as one answer: the person's overrides, the machine
//! policy, the manifest, and what discovery makes of them. The tray's Server window and
//! `lapctl server show` both print this, so they cannot disagree.

use lapwing_discovery::{Candidate, Discovery, ServerSettings, Skipped};
use serde::Serialize;

use crate::engine::{Engine, EngineError, settings_for};
use crate::policy::Policy;

/// One product's (or, without one, every product's) server settings and discovery's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerInfo {
    pub product: Option<String>,
    /// `lapctl server set --product ID HOST:PORT`.
    pub product_override: Option<String>,
    /// `lapctl server set HOST:PORT`.
    pub global_override: Option<String>,
    /// The machine policy's server.
    pub policy_server: Option<String>,
    /// The machine policy forbids user overrides.
    pub policy_locked: bool,
    /// The customer's own server the machine policy provisioned the product for, by name:
    /// `manifest_address` and `srv_domain` are then the policy's, not the vendor's.
    pub through: Option<String>,
    /// The manifest's `[server] address` (or the provisioning policy's).
    pub manifest_address: Option<String>,
    /// The manifest's `[server] srv_domain`.
    pub srv_domain: Option<String>,
    /// The servers, in the order they would be tried, and how each was found.
    pub candidates: Vec<Candidate>,
    /// What a source offered that gave no candidate, and why.
    pub skipped: Vec<Skipped>,
}

impl Engine {
    /// Where `product`'s servers come from and which discovery finds; without a product, what
    /// every product would try first (the overrides and the policy's server). Reads the state
    /// and the policy once, so the settings shown are the ones discovery ran on.
    pub async fn server_info(&self, product: Option<&str>) -> Result<ServerInfo, EngineError> {
        let manifest = product
            .map(|id| {
                self.catalog()
                    .products
                    .remove(id)
                    .ok_or_else(|| EngineError::UnknownProduct(id.to_owned()))
            })
            .transpose()?;
        let state = {
            let lock = self.state_store().lock()?;
            self.state_store().load(&lock)?.0
        };
        let policy = Policy::load(&self.config().policy_path)?;
        let found = if let Some(manifest) = &manifest {
            let settings = settings_for(&policy, manifest, &state);
            self.discovery.candidates(&settings).await
        } else {
            let settings = ServerSettings {
                global_override: state.global_override.clone(),
                policy_server: policy.server.address.clone(),
                policy_locked: policy.server.locked,
                ..ServerSettings::default()
            };
            let mut config = self.config().discovery.clone();
            // No manifest: browsing the local link would name servers of unknown products.
            config.mdns = None;
            Discovery::new(config).candidates(&settings).await
        };
        Ok(ServerInfo {
            product_override: product
                .and_then(|id| state.products.get(id))
                .and_then(|p| p.server_override.clone()),
            product: product.map(str::to_owned),
            global_override: state.global_override,
            policy_server: policy.server.address,
            policy_locked: policy.server.locked,
            through: manifest.as_ref().and_then(|m| m.through.clone()),
            manifest_address: manifest.as_ref().and_then(|m| m.address.clone()),
            srv_domain: manifest.and_then(|m| m.srv_domain),
            candidates: found.candidates,
            skipped: found.skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use lap_proto::{ServerSecretKeys, Uuid};
    use lapwing_discovery::{DiscoveryConfig, DnsConfig, ServerSource};
    use lapwing_secrets::MemoryStore;

    use super::*;
    use crate::clock::FakeClock;
    use crate::engine::EngineConfig;
    use crate::identity::FixedIdentity;
    use crate::transport::{OsEntropy, RetryPolicy};

    const MANIFEST_ADDRESS: &str = "127.0.0.1:4711";

    fn engine(dir: &Path) -> Engine {
        let products = dir.join("products.d");
        std::fs::create_dir_all(&products).expect("mkdir");
        let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
        std::fs::write(
            products.join("acme-studio.toml"),
            format!(
                "schema = 1\nid = \"acme-studio\"\nname = \"Acme Studio\"\nvendor = \"Acme\"\n\
                 sku = \"{}\"\nevaluation_days = 30\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\n\
                 address = \"{MANIFEST_ADDRESS}\"\n",
                Uuid::from_u128(7),
                hex::encode(keys.public().x25519_bytes()),
                hex::encode(keys.public().ed25519_bytes())
            ),
        )
        .expect("manifest");
        Engine::new(EngineConfig {
            data_dir: dir.join("data"),
            product_dirs: vec![products],
            policy_path: dir.join("policy.toml"),
            clock: Arc::new(FakeClock::at(1_700_000_000)),
            entropy: Arc::new(OsEntropy),
            secrets: Arc::new(MemoryStore::new()),
            identity: Arc::new(FixedIdentity::new([7; 32])),
            // No search domains and no mDNS: only literal addresses, so nothing leaves the host.
            discovery: DiscoveryConfig {
                dns: DnsConfig::Nameserver {
                    address: "127.0.0.1:9".parse().expect("address"),
                    search: Vec::new(),
                },
                mdns: None,
                ..DiscoveryConfig::default()
            },
            retry: RetryPolicy::default(),
        })
    }

    #[tokio::test]
    async fn a_product_shows_its_overrides_the_manifest_and_the_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        engine
            .set_server_override(None, Some("127.0.0.1:2"))
            .expect("global");
        engine
            .set_server_override(Some("acme-studio"), Some("127.0.0.1:1"))
            .expect("product");
        let info = engine.server_info(Some("acme-studio")).await.expect("info");
        assert_eq!(info.product.as_deref(), Some("acme-studio"));
        assert_eq!(info.product_override.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(info.global_override.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(info.manifest_address.as_deref(), Some(MANIFEST_ADDRESS));
        assert_eq!(info.srv_domain, None);
        assert!(!info.policy_locked);
        let order: Vec<_> = info
            .candidates
            .iter()
            .map(|c| (c.address.to_string(), c.source))
            .collect();
        assert_eq!(
            order,
            [
                ("127.0.0.1:1".to_owned(), ServerSource::Override),
                (MANIFEST_ADDRESS.to_owned(), ServerSource::Manifest),
            ]
        );
        assert_eq!(info.skipped.len(), 1, "{:?}", info.skipped);
        assert_eq!(
            info.skipped[0].subject, "127.0.0.1:2",
            "the global one loses"
        );
    }

    #[tokio::test]
    async fn a_locked_policy_is_shown_and_wins_with_and_without_a_product() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        engine
            .set_server_override(None, Some("127.0.0.1:2"))
            .expect("global");
        std::fs::write(
            dir.path().join("policy.toml"),
            "[server]\naddress = \"127.0.0.1:3\"\nlocked = true\n",
        )
        .expect("policy");
        for product in [Some("acme-studio"), None] {
            let info = engine.server_info(product).await.expect("info");
            assert!(info.policy_locked, "{product:?}");
            assert_eq!(info.policy_server.as_deref(), Some("127.0.0.1:3"));
            assert_eq!(info.global_override.as_deref(), Some("127.0.0.1:2"));
            assert_eq!(info.candidates.len(), 1, "{product:?}: {info:?}");
            assert_eq!(info.candidates[0].source, ServerSource::Policy);
            assert_eq!(info.skipped[0].source, ServerSource::Override);
        }
        let global = engine.server_info(None).await.expect("info");
        assert_eq!(global.product, None);
        assert_eq!(global.manifest_address, None);
    }

    #[tokio::test]
    async fn an_unknown_product_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine(dir.path());
        assert!(matches!(
            engine.server_info(Some("nope")).await,
            Err(EngineError::UnknownProduct(id)) if id == "nope"
        ));
    }
}
