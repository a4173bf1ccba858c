//! Servers found by SRV or DNS-SD that answered, kept per network for as long as the network
//! said its answer holds (its TTL), so that the next activation, in this process or the next
//! (`lapctl`, the tray after a restart), starts from them instead of waiting for discovery:
//! `servers.json` in the per-user data directory.
//!
//! What is kept is never trusted: a cached server is one more server in its stage of the race
//! and has to answer with a valid signed response like any other. One that fails is dropped,
//! and the next activation discovers again. The file is written atomically, readable only by
//! its owner; one that cannot be read or parsed is ignored (with a warning) and replaced at
//! the next write. Two processes writing at once lose one of their updates, which costs only
//! a discovery.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lapwing_discovery::{Candidate, ServerSource};
use serde::{Deserialize, Serialize};

/// The file in the data directory.
pub const SERVER_CACHE_FILE: &str = "servers.json";

/// The longest an entry is kept, whatever its TTL says: a day, like common resolvers'
/// ceiling. An entry further from expiry than that comes from a clock that was moved back,
/// and is ignored.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

const SCHEMA: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    schema: u32,
    servers: Vec<CachedServer>,
}

/// One server that answered a product on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CachedServer {
    /// See `lapwing_discovery::network`.
    network: String,
    product: String,
    address: SocketAddr,
    host: String,
    source: ServerSource,
    detail: String,
    /// UNIX seconds.
    expires_at: u64,
}

/// The cache file of one data directory.
#[derive(Debug, Clone)]
pub struct ServerCache {
    path: PathBuf,
}

impl ServerCache {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(SERVER_CACHE_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The servers that answered `product` on `network` and have not expired at `now`,
    /// most recent first; each candidate's `ttl` is what is left of it.
    pub fn lookup(&self, network: &str, product: &str, now: u64) -> Vec<Candidate> {
        let mut found: Vec<Candidate> = self
            .read()
            .servers
            .into_iter()
            .filter(|s| s.network == network && s.product == product && fresh(s, now))
            .map(|s| Candidate {
                address: s.address,
                host: s.host,
                source: s.source,
                detail: format!("{} (learnt earlier on this network)", s.detail),
                ttl: Some(Duration::from_secs(s.expires_at - now)),
            })
            .collect();
        found.reverse();
        found
    }

    /// Keeps `answered` (when it came from SRV or DNS-SD and its TTL is known) and drops the
    /// servers at `failed`, for `product` on `network`; expired entries go too. Writes only
    /// when something changed.
    pub fn update(
        &self,
        network: &str,
        product: &str,
        now: u64,
        answered: Option<&Candidate>,
        failed: &[SocketAddr],
    ) {
        let before = self.read();
        let mut servers: Vec<CachedServer> = before
            .servers
            .iter()
            .filter(|s| fresh(s, now))
            .filter(|s| {
                !(s.network == network && s.product == product && failed.contains(&s.address))
            })
            .cloned()
            .collect();
        if let Some(candidate) = answered
            && matches!(candidate.source, ServerSource::Srv | ServerSource::DnsSd)
            && let Some(ttl) = candidate.ttl
            && !ttl.is_zero()
        {
            let ttl = ttl.min(MAX_TTL).as_secs();
            let same = |s: &CachedServer| {
                s.network == network && s.product == product && s.address == candidate.address
            };
            let kept = servers.iter().find(|s| same(s)).map(|s| s.expires_at);
            // A server that answered again from the cache keeps its expiry: only the network
            // can extend it, by naming it again.
            if kept.is_none_or(|expires_at| expires_at < now + ttl) {
                servers.retain(|s| !same(s));
                let detail = candidate
                    .detail
                    .trim_end_matches(" (learnt earlier on this network)")
                    .to_owned();
                servers.push(CachedServer {
                    network: network.to_owned(),
                    product: product.to_owned(),
                    address: candidate.address,
                    host: candidate.host.clone(),
                    source: candidate.source,
                    detail,
                    expires_at: now + ttl,
                });
            }
        }
        if servers != before.servers {
            self.write(&CacheFile {
                schema: SCHEMA,
                servers,
            });
        }
    }

    fn read(&self) -> CacheFile {
        let empty = CacheFile {
            schema: SCHEMA,
            servers: Vec::new(),
        };
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return empty,
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the servers learnt earlier; discovering afresh");
                return empty;
            }
        };
        match serde_json::from_str::<CacheFile>(&text) {
            Ok(file) if file.schema == SCHEMA => file,
            Ok(file) => {
                tracing::warn!(path = %self.path.display(), schema = file.schema, "servers learnt earlier are in an unknown format; ignored");
                empty
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "servers learnt earlier cannot be parsed; ignored");
                empty
            }
        }
    }

    fn write(&self, file: &CacheFile) {
        let result = serde_json::to_vec_pretty(file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| lapwing_fs::write_atomically(&self.path, &bytes, 0o600));
        if let Err(e) = result {
            // Only a discovery is lost: the next activation discovers again.
            tracing::warn!(path = %self.path.display(), error = %e, "cannot keep the servers learnt");
        }
    }
}

fn fresh(server: &CachedServer, now: u64) -> bool {
    server.expires_at > now && server.expires_at - now <= MAX_TTL.as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "route eth0 via 10.0.0.1 (52:54:00:12:35:02); dns 10.0.0.1";
    const NOW: u64 = 1_800_000_000;

    fn learnt(address: &str, source: ServerSource, ttl: u64) -> Candidate {
        Candidate {
            address: address.parse().expect("valid address"),
            host: "lab.local".into(),
            source,
            detail: "mDNS lab._lap._udp.local → lab.local:4711".into(),
            ttl: Some(Duration::from_secs(ttl)),
        }
    }

    fn addresses(found: &[Candidate]) -> Vec<String> {
        found.iter().map(|c| c.address.to_string()).collect()
    }

    #[test]
    fn a_server_that_answered_is_kept_for_its_ttl_per_network_and_product() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ServerCache::new(dir.path());
        let server = learnt("10.0.0.5:4711", ServerSource::DnsSd, 120);
        cache.update(NET, "acme", NOW, Some(&server), &[]);
        let found = cache.lookup(NET, "acme", NOW + 10);
        assert_eq!(addresses(&found), vec!["10.0.0.5:4711"]);
        assert_eq!(found[0].source, ServerSource::DnsSd);
        assert_eq!(found[0].ttl, Some(Duration::from_secs(110)));
        assert!(
            found[0]
                .detail
                .ends_with("(learnt earlier on this network)")
        );
        assert!(cache.lookup(NET, "acme", NOW + 120).is_empty(), "expired");
        assert!(
            cache
                .lookup("no default route; dns ", "acme", NOW)
                .is_empty()
        );
        assert!(cache.lookup(NET, "other", NOW).is_empty());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path()).expect("file").permissions();
            assert_eq!(mode.mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn only_srv_and_dns_sd_answers_with_a_ttl_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ServerCache::new(dir.path());
        let mut manifest = learnt("10.0.0.6:4711", ServerSource::Manifest, 120);
        cache.update(NET, "acme", NOW, Some(&manifest), &[]);
        manifest.source = ServerSource::Srv;
        manifest.ttl = None;
        cache.update(NET, "acme", NOW, Some(&manifest), &[]);
        assert!(!cache.path().exists(), "nothing to keep, nothing written");
    }

    #[test]
    fn a_server_that_failed_is_dropped_and_answering_again_does_not_extend_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ServerCache::new(dir.path());
        cache.update(
            NET,
            "acme",
            NOW,
            Some(&learnt("10.0.0.5:4711", ServerSource::Srv, 300)),
            &[],
        );
        cache.update(
            NET,
            "acme",
            NOW,
            Some(&learnt("10.0.0.7:4711", ServerSource::Srv, 300)),
            &[],
        );
        // Answering from the cache (its ttl is what was left) keeps the expiry.
        let again = cache.lookup(NET, "acme", NOW + 100);
        assert_eq!(addresses(&again), vec!["10.0.0.7:4711", "10.0.0.5:4711"]);
        cache.update(NET, "acme", NOW + 100, Some(&again[0]), &[]);
        assert!(cache.lookup(NET, "acme", NOW + 300).is_empty());
        cache.update(
            NET,
            "acme",
            NOW + 100,
            None,
            &["10.0.0.5:4711".parse().expect("address")],
        );
        assert_eq!(
            addresses(&cache.lookup(NET, "acme", NOW + 100)),
            vec!["10.0.0.7:4711"]
        );
    }

    #[test]
    fn a_bad_file_is_ignored_and_replaced_and_a_far_expiry_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = ServerCache::new(dir.path());
        std::fs::write(cache.path(), "{ not json").expect("write");
        assert!(cache.lookup(NET, "acme", NOW).is_empty());
        cache.update(
            NET,
            "acme",
            NOW,
            Some(&learnt("10.0.0.5:4711", ServerSource::DnsSd, 120)),
            &[],
        );
        assert_eq!(cache.lookup(NET, "acme", NOW).len(), 1);
        // A clock moved back by a week makes every entry look good for a week: not trusted.
        assert!(cache.lookup(NET, "acme", NOW - 7 * 86_400).is_empty());
    }
}
