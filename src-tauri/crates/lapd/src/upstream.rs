//! The intermediate's side of the indirect setup (profile §10): `lapd serve` with an
//! `[upstream]` section is a LAP client of the vendor's server, one request per pool, and
//! grants its own clients seats drawn from what the vendor granted it.
//!
//! ```toml
//! [upstream]
//! address = "lap.vendor.example:4711"   # or srv_domain = "vendor.example" (SRV _lap._udp)
//! vendor_public = "vendor-server.toml"  # the vendor's public keys ([server] x25519, ed25519)
//! # anchor_file = "anchor"              # optional: this intermediate's machine anchor in a
//!                                       # file (made if missing), for several intermediates
//!                                       # on one machine; by default the machine's own anchor
//!                                       # (SMBIOS, TPM, OS id: lapwing-machine, as desktops)
//! state = "pools.json"                  # the pools as last granted (kept across restarts)
//!
//! [[upstream.pool]]
//! sku = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11"  # the SKU served from this pool
//! license_key_file = "pool.key"                # the pool license's key, never in logs
//! seats = 50                                   # seats wanted (PoolRequest)
//! ```
//!
//! It syncs at start, at the pool's RenewAfter and when the pool runs low, retrying with the
//! §8 backoff; it keeps granting until the pool's NotAfter when the vendor cannot be reached,
//! and warns 60, 30, 7 and 1 days before that end.

use std::collections::BTreeSet;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lap_proto::time::DAY;
use lap_proto::{
    Delegation, EphemeralSecret, LicenseKey, PendingExchange, Request, SeedExtensions, SeedV1,
    ServerData, ServerPublicKeys, ServerSecretKeys, Uuid, open_any, seal_request,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::catalog::LicenseCatalog;
use crate::intermediate_keys::{self, IntermediateKeys};
use crate::rules::{PoolTerms, Pools};
use crate::server::Server;
use crate::store::Store;

/// The Room of an upstream request: the Delegation (156 bytes) and the rest must fit (§10).
pub const UPSTREAM_ROOM: usize = 256;
/// Attempts per sync, each a fresh request (profile §1), and how long each waits.
const ATTEMPTS: u32 = 3;
const ATTEMPT_WAIT: Duration = Duration::from_secs(1);
/// §8 backoff: every 15 minutes for the first 2 hours of failures, then every 4 hours; once
/// the pool has ended, hourly.
const RETRY_EARLY_SECS: u64 = 15 * 60;
const RETRY_EARLY_FOR_SECS: u64 = 2 * 3_600;
const RETRY_LATE_SECS: u64 = 4 * 3_600;
const RETRY_ENDED_SECS: u64 = 3_600;
/// A pool is low when no more than this share of it (at least one seat) is free; it then
/// syncs for more, at most this often.
const LOW_SHARE_PERCENT: u32 = 10;
const LOW_SYNC_EVERY_SECS: u64 = 15 * 60;
/// Days before a pool's end at which the admin is warned when no sync has moved it.
pub const WARN_DAYS: [u64; 4] = [60, 30, 7, 1];

/// Why the upstream could not be set up or a sync failed. Never contains the pool's key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("[upstream]: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("the vendor's server {0} cannot be found")]
    NoAddress(String),
    #[error("no answer from the vendor's server ({0}) after {ATTEMPTS} attempts")]
    NoAnswer(String),
    #[error("the vendor's answer for SKU {sku} is not a pool grant: {reason}")]
    NotAGrant { sku: Uuid, reason: String },
    #[error("pool state file {path}: {message}")]
    State { path: PathBuf, message: String },
}

/// The `[upstream]` section of a `serve` config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub address: Option<String>,
    pub srv_domain: Option<String>,
    pub vendor_public: PathBuf,
    pub anchor_file: Option<PathBuf>,
    pub state: Option<PathBuf>,
    #[serde(rename = "pool", default)]
    pub pools: Vec<PoolConfig>,
}

/// One `[[upstream.pool]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    pub sku: Uuid,
    pub license_key_file: PathBuf,
    pub seats: u32,
}

impl UpstreamConfig {
    /// Makes relative paths relative to `base` (the config file's folder) and fills defaults.
    pub fn resolved(mut self, base: Option<&Path>) -> Result<Self, UpstreamError> {
        let resolve = |p: PathBuf| match base {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };
        if self.address.is_none() == self.srv_domain.is_none() {
            return Err(UpstreamError::Config(
                "give the vendor's server as either address or srv_domain".into(),
            ));
        }
        if self.pools.is_empty() {
            return Err(UpstreamError::Config(
                "no [[upstream.pool]]: name at least one pool (sku, license_key_file, seats)"
                    .into(),
            ));
        }
        let mut skus = BTreeSet::new();
        for pool in &mut self.pools {
            if !skus.insert(pool.sku) {
                return Err(UpstreamError::Config(format!(
                    "SKU {} has two pools (a Delegation names one SKU and one pool)",
                    pool.sku
                )));
            }
            if pool.seats == 0 {
                return Err(UpstreamError::Config(format!(
                    "pool of SKU {}: seats must be at least 1",
                    pool.sku
                )));
            }
            pool.license_key_file = resolve(std::mem::take(&mut pool.license_key_file));
        }
        self.vendor_public = resolve(std::mem::take(&mut self.vendor_public));
        self.anchor_file = self.anchor_file.take().map(resolve);
        self.state = Some(resolve(
            self.state.take().unwrap_or_else(|| "pools.json".into()),
        ));
        Ok(self)
    }

    /// The state file (after [`Self::resolved`]).
    pub fn state_path(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(|| "pools.json".into())
    }
}

/// A pool as the vendor last granted it: what the intermediate serves from, kept in the
/// state file (nothing secret: the Delegation is public).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolState {
    pub sku: Uuid,
    pub license_id: Uuid,
    pub seats: u32,
    pub not_after: u64,
    pub renew_after: u64,
    pub features: Vec<String>,
    /// The Delegation's 153 bytes, hex.
    pub delegation: String,
    /// The vendor's time of the answer.
    pub synced_at: u64,
    /// The vendor's Notice, if any (fewer seats than asked, an update needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl PoolState {
    fn delegation(&self) -> Option<Delegation> {
        let mut bytes = [0u8; lap_proto::delegation::DELEGATION_LEN];
        hex::decode_to_slice(&self.delegation, &mut bytes).ok()?;
        Some(Delegation::from_bytes(&bytes))
    }

    /// What the rules grant from, while the pool lasts.
    pub fn terms(&self, now: u64) -> Option<PoolTerms> {
        (now < self.not_after).then_some(())?;
        Some(PoolTerms {
            seats: self.seats,
            not_after: self.not_after,
            features: self.features.clone(),
            delegation: self.delegation()?,
        })
    }
}

/// The state file: every pool as last granted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub schema: u32,
    pub pools: Vec<PoolState>,
}

impl StateFile {
    /// Reads the state file; a missing file is an empty state (never synced).
    pub fn load(path: &Path) -> Result<Self, UpstreamError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(UpstreamError::Io {
                    context: format!("reading {}", path.display()),
                    source,
                });
            }
        };
        let state: Self = serde_json::from_str(&text).map_err(|e| UpstreamError::State {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if state.schema != 1 {
            return Err(UpstreamError::State {
                path: path.to_owned(),
                message: format!(
                    "schema {} is not one this lapd reads (1): a newer lapd wrote it",
                    state.schema
                ),
            });
        }
        Ok(state)
    }

    /// Writes it atomically: a crash leaves the old state or the new one.
    pub fn save(&self, path: &Path) -> Result<(), UpstreamError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| UpstreamError::State {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        crate::fsutil::write_atomically(path, text.as_bytes(), Some(0o600)).map_err(|source| {
            UpstreamError::Io {
                context: format!("writing {}", path.display()),
                source,
            }
        })
    }

    pub fn pool(&self, sku: Uuid) -> Option<&PoolState> {
        self.pools.iter().find(|p| p.sku == sku)
    }
}

/// The intermediate's machine anchor: 32 random bytes in a file (0600), made on first start.
/// Its digest follows profile §3's form with the source tag `lapd-anchor-file`.
pub fn anchor_digest(
    path: &Path,
    draw: impl FnOnce() -> [u8; 32],
) -> Result<[u8; 32], UpstreamError> {
    let io = |context: String| move |source| UpstreamError::Io { context, source };
    let bytes = match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
                UpstreamError::Config(format!(
                    "anchor file {} must hold 64 hex digits",
                    path.display()
                ))
            })?;
            bytes
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes = draw();
            crate::fsutil::write_atomically(
                path,
                format!("{}\n", hex::encode(bytes)).as_bytes(),
                Some(0o600),
            )
            .map_err(io(format!("writing {}", path.display())))?;
            bytes
        }
        Err(source) => return Err(io(format!("reading {}", path.display()))(source)),
    };
    Ok(Sha256::new()
        .chain_update(b"lapwing-anchor-v1")
        .chain_update(b"lapd-anchor-file")
        .chain_update(bytes)
        .finalize()
        .into())
}

/// The machine's own anchor digest, read as a desktop's is (profile §3, `lapwing-machine`):
/// the intermediate keeps its MachineHash, and so its pool's seat, for as long as the
/// machine does.
pub fn machine_anchor(options: &lapwing_machine::Options) -> Result<[u8; 32], UpstreamError> {
    let identity = lapwing_machine::identify(options)
        .map_err(|e| UpstreamError::Config(format!("this machine's identity: {e}")))?;
    identity.anchor.map(|a| a.digest).ok_or_else(|| {
        UpstreamError::Config(
            "this machine gives no anchor (no SMBIOS UUID, TPM or OS id readable): set [upstream] anchor_file"
                .into(),
        )
    })
}

/// A stable id derived from the anchor (the intermediate's ClientBaseId and InstallNonce).
fn derived(anchor: &[u8; 32], label: &[u8]) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(label)
        .chain_update(anchor)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// One pool as the syncer tracks it.
#[derive(Debug)]
struct Tracked {
    config: PoolConfig,
    key: LicenseKey,
    /// Failures since the last success began at this server time.
    failing_since: Option<u64>,
    next_attempt: u64,
    last_low_sync: u64,
    /// Warnings given for the current NotAfter.
    warned: BTreeSet<u64>,
}

/// The intermediate's upstream: who it is to the vendor, and its pools.
#[derive(Debug)]
pub struct Upstream {
    config: UpstreamConfig,
    vendor: ServerPublicKeys,
    own: IntermediateKeys,
    machine_hash: [u8; 32],
    client_base_id: Uuid,
    install_nonce: [u8; 16],
    pools: Vec<Tracked>,
    state: StateFile,
}

/// What one sync did, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Synced {
    Granted(PoolState),
    Failed(String),
}

impl Upstream {
    /// The MachineHash this intermediate sends the vendor (its identity there).
    pub fn machine_hash(&self) -> [u8; 32] {
        self.machine_hash
    }

    /// Sets up from a resolved config: reads the vendor's keys, the pools' keys, the anchor
    /// (made if missing, with `draw`) and the state file.
    pub fn open(
        config: UpstreamConfig,
        own_keys: &ServerSecretKeys,
        draw: impl FnOnce() -> [u8; 32],
    ) -> Result<Self, UpstreamError> {
        let (x25519, ed25519) = crate::keys::load_public(&config.vendor_public)?;
        let vendor = ServerPublicKeys::from_bytes(x25519, &ed25519).map_err(|_| {
            UpstreamError::Config(format!(
                "{}: not valid public keys",
                config.vendor_public.display()
            ))
        })?;
        let anchor = match &config.anchor_file {
            Some(path) => anchor_digest(path, draw)?,
            None => machine_anchor(&lapwing_machine::Options::from_env())?,
        };
        let mut pools = Vec::new();
        for pool in &config.pools {
            let key = crate::keyfile::read(&pool.license_key_file).map_err(|e| {
                // The key file's own messages name the `--key-file` flag; here it is the
                // config's setting. Never the key itself.
                let reason = e.to_string();
                UpstreamError::Config(format!(
                    "pool of SKU {}: license_key_file {}: {}",
                    pool.sku,
                    pool.license_key_file.display(),
                    reason.trim_start_matches("--key-file: ")
                ))
            })?;
            pools.push(Tracked {
                key,
                config: pool.clone(),
                failing_since: None,
                next_attempt: 0,
                last_low_sync: 0,
                warned: BTreeSet::new(),
            });
        }
        let state = StateFile::load(&config.state_path())?;
        Ok(Self {
            own: IntermediateKeys {
                ed25519: *own_keys.public().ed25519_bytes(),
                x25519: *own_keys.public().x25519_bytes(),
            },
            machine_hash: lap_proto::machine_hash(&ed25519, &anchor),
            client_base_id: uuid_v8(derived(&anchor, b"lapd-intermediate-client-base-id")),
            install_nonce: derived(&anchor, b"lapd-intermediate-install-nonce"),
            vendor,
            config,
            pools,
            state,
        })
    }

    /// The pools as the rules use them at `now`: a served SKU without a live pool grants
    /// nothing.
    pub fn pools_at(&self, now: u64) -> Pools {
        self.pools
            .iter()
            .map(|p| {
                let sku = p.config.sku;
                (sku, self.state.pool(sku).and_then(|s| s.terms(now)))
            })
            .collect()
    }

    pub fn state(&self) -> &StateFile {
        &self.state
    }

    fn addresses(&self) -> Result<Vec<SocketAddr>, UpstreamError> {
        if let Some(address) = &self.config.address {
            let found: Vec<SocketAddr> = address
                .to_socket_addrs()
                .map_err(|_| UpstreamError::NoAddress(address.clone()))?
                .collect();
            return if found.is_empty() {
                Err(UpstreamError::NoAddress(address.clone()))
            } else {
                Ok(found)
            };
        }
        let domain = self.config.srv_domain.clone().unwrap_or_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| UpstreamError::Io {
                context: "starting the DNS lookup".into(),
                source,
            })?;
        let discovery =
            lapwing_discovery::Discovery::new(lapwing_discovery::DiscoveryConfig::default());
        let found =
            runtime.block_on(discovery.srv(&domain, lapwing_discovery::LocalAddresses::Allow));
        let addresses: Vec<SocketAddr> = found.candidates.iter().map(|c| c.address).collect();
        if addresses.is_empty() {
            return Err(UpstreamError::NoAddress(format!("SRV _lap._udp.{domain}")));
        }
        Ok(addresses)
    }

    fn request(&self, pool: &Tracked, in_use: u32, now: u64) -> Result<Request, UpstreamError> {
        let seed = SeedV1 {
            decoded_key: *pool.key.as_bytes(),
            machine_hash: self.machine_hash,
            num_cpus: 1,
            num_cores: 1,
            install_nonce: self.install_nonce,
        };
        let extensions = SeedExtensions {
            pool_request: Some(pool.config.seats),
            pool_usage: Some(in_use),
            ..SeedExtensions::default()
        };
        let mut bytes = seed
            .encode(UPSTREAM_ROOM)
            .map_err(|e| UpstreamError::Config(e.to_string()))?;
        intermediate_keys::write_into(
            &extensions,
            &self.own,
            &mut bytes[lap_proto::seed::SEED_V1_LEN..],
        )
        .map_err(|e| UpstreamError::Config(e.to_string()))?;
        Ok(Request {
            client_time: now,
            client_base_id: self.client_base_id,
            client_addon_id: Uuid::nil(),
            sku_id: pool.config.sku,
            current_license_id: self
                .state
                .pool(pool.config.sku)
                .map_or(Uuid::nil(), |s| s.license_id),
            client_seed: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// One exchange with the vendor for the pool at `index`: up to three attempts, each a
    /// fresh request, any answer accepted. `now` is this server's time at each attempt.
    fn exchange(
        &self,
        index: usize,
        in_use: u32,
        now: &dyn Fn() -> u64,
        draw: &mut dyn FnMut() -> [u8; 32],
    ) -> Result<(PoolState, u64), UpstreamError> {
        let pool = &self.pools[index];
        let addresses = self.addresses()?;
        let io = |source| UpstreamError::Io {
            context: "the upstream socket".into(),
            source,
        };
        let bind: SocketAddr = if addresses[0].is_ipv6() {
            "[::]:0"
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0; 16], 0)))
        } else {
            SocketAddr::from(([0, 0, 0, 0], 0))
        };
        let socket = UdpSocket::bind(bind).map_err(io)?;
        let mut pending: Vec<PendingExchange> = Vec::new();
        let mut buffer = [0u8; 2048];
        for attempt in 0..ATTEMPTS {
            let sent_at = now();
            let request = self.request(pool, in_use, sent_at)?;
            let (datagram, exchange) =
                seal_request(&self.vendor, &request, &EphemeralSecret::from_bytes(draw()))
                    .map_err(|e| UpstreamError::Config(e.to_string()))?;
            pending.push(exchange);
            let target = addresses[attempt as usize % addresses.len()];
            if let Err(error) = socket.send_to(&datagram, target) {
                tracing::debug!(%error, %target, "upstream send");
            }
            let deadline = Instant::now() + ATTEMPT_WAIT;
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                socket
                    .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .map_err(io)?;
                let Ok((len, _)) = socket.recv_from(&mut buffer) else {
                    break;
                };
                if let Ok((_, activation)) = open_any(&pending, &buffer[..len]) {
                    let state = self.accept(pool.config.sku, &activation)?;
                    return Ok((state, activation.response.server_time));
                }
            }
        }
        Err(UpstreamError::NoAnswer(
            addresses
                .iter()
                .map(SocketAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ))
    }

    /// Checks the vendor's answer is a pool grant for us: Seats, NotAfter and a Delegation
    /// signed by the vendor naming our keys and the SKU.
    fn accept(
        &self,
        sku: Uuid,
        activation: &lap_proto::Activation,
    ) -> Result<PoolState, UpstreamError> {
        let refuse = |reason: &str| UpstreamError::NotAGrant {
            sku,
            reason: reason.to_owned(),
        };
        let data = ServerData::parse(&activation.response.server_data)
            .map_err(|_| refuse("its ServerData does not parse"))?;
        let seats = data.seats.ok_or_else(|| refuse("no Seats"))?;
        let not_after = data.not_after.ok_or_else(|| refuse("no NotAfter"))?;
        let Some(delegation) = data.delegation.as_deref() else {
            return Err(refuse(data.notice.as_deref().unwrap_or("no Delegation")));
        };
        delegation
            .verify(self.vendor.ed25519_bytes())
            .map_err(|_| refuse("the Delegation is not signed by the vendor's key"))?;
        if delegation.intermediate_ed25519 != self.own.ed25519
            || delegation.intermediate_x25519 != self.own.x25519
            || delegation.sku != sku
        {
            return Err(refuse("the Delegation names other keys or another SKU"));
        }
        let server_time = activation.response.server_time;
        Ok(PoolState {
            sku,
            license_id: activation.response.license_id,
            seats: seats.min(delegation.seats),
            not_after: not_after.min(delegation.not_after),
            renew_after: data.renew_at(server_time),
            features: data.features.clone(),
            delegation: hex::encode(
                delegation
                    .to_bytes()
                    .map_err(|_| refuse("the Delegation does not encode"))?,
            ),
            synced_at: server_time,
            notice: data.notice.clone(),
        })
    }

    /// Seats of the pool's SKU in use by this intermediate's clients now.
    pub fn in_use(catalog: &LicenseCatalog, store: &Store, sku: Uuid, now: u64) -> u32 {
        catalog
            .licenses()
            .filter(|l| l.sku == sku)
            .map(|l| store.usage(&l.reference, now).map_or(0, |u| u.seats_used))
            .fold(0u32, u32::saturating_add)
    }

    /// Whether the pool at `index` should sync at `now`, with `in_use` seats taken.
    fn due(&self, index: usize, in_use: u32, now: u64) -> bool {
        let pool = &self.pools[index];
        if now < pool.next_attempt {
            return false;
        }
        let Some(state) = self.state.pool(pool.config.sku) else {
            return true;
        };
        if now >= state.renew_after || now >= state.not_after {
            return true;
        }
        let margin = (state.seats * LOW_SHARE_PERCENT / 100).max(1);
        let low = in_use.saturating_add(margin) >= state.seats && state.seats < pool.config.seats;
        low && now >= pool.last_low_sync + LOW_SYNC_EVERY_SECS
    }

    /// One round: syncs every pool that is due, then warns about pools ending without a sync.
    /// `in_use` gives the seats in use of a SKU; `now` the server's time. Returns what each
    /// sync did.
    pub fn tick(
        &mut self,
        in_use: &dyn Fn(Uuid) -> u32,
        now: &dyn Fn() -> u64,
        draw: &mut dyn FnMut() -> [u8; 32],
    ) -> Vec<Synced> {
        let mut out = Vec::new();
        for index in 0..self.pools.len() {
            let sku = self.pools[index].config.sku;
            let used = in_use(sku);
            let at = now();
            if !self.due(index, used, at) {
                continue;
            }
            let result = self.exchange(index, used, now, draw);
            let pool = &mut self.pools[index];
            match result {
                Ok((state, _)) => {
                    tracing::info!(
                        %sku, seats = state.seats, not_after = state.not_after,
                        renew_after = state.renew_after, in_use = used, "pool synced with the vendor"
                    );
                    if let Some(notice) = &state.notice {
                        tracing::warn!(%sku, notice, "the vendor's notice about this pool");
                    }
                    pool.failing_since = None;
                    pool.next_attempt = 0;
                    pool.last_low_sync = at;
                    pool.warned.clear();
                    self.state.pools.retain(|p| p.sku != sku);
                    self.state.pools.push(state.clone());
                    self.state.pools.sort_by_key(|p| p.sku);
                    self.state.schema = 1;
                    if let Err(error) = self.state.save(&self.config.state_path()) {
                        tracing::error!(%error, "pool state not saved; a restart syncs again");
                    }
                    out.push(Synced::Granted(state));
                }
                Err(error) => {
                    let since = *pool.failing_since.get_or_insert(at);
                    let ended = self.state.pool(sku).is_none_or(|s| at >= s.not_after);
                    let wait = retry_after(at - since, ended);
                    pool.next_attempt = at + wait;
                    tracing::warn!(%sku, %error, retry_in_secs = wait, "pool sync failed");
                    out.push(Synced::Failed(error.to_string()));
                }
            }
        }
        let at = now();
        for pool in &mut self.pools {
            // Only a renewal that is overdue warns: a pool synced on time is never near its end.
            if let Some(state) = self.state.pool(pool.config.sku)
                && at >= state.renew_after
                && let Some(days) = warning_due(state.not_after, at, &pool.warned)
            {
                pool.warned.insert(days);
                tracing::warn!(
                    sku = %state.sku, not_after = state.not_after,
                    "{}", ending_warning(state, at)
                );
            }
        }
        out
    }
}

/// The §8 retry interval after failing for `failing_for` seconds.
pub fn retry_after(failing_for: u64, ended: bool) -> u64 {
    if failing_for < RETRY_EARLY_FOR_SECS {
        RETRY_EARLY_SECS
    } else if ended {
        RETRY_ENDED_SECS
    } else {
        RETRY_LATE_SECS
    }
}

/// The warning threshold (days) reached at `now` and not yet given, the smallest first.
pub fn warning_due(not_after: u64, now: u64, warned: &BTreeSet<u64>) -> Option<u64> {
    if now >= not_after {
        return None;
    }
    let left = not_after - now;
    WARN_DAYS
        .iter()
        .rev()
        .copied()
        .find(|&days| left <= days * DAY && !warned.contains(&days))
        .filter(|&days| !warned.iter().any(|&w| w < days))
}

/// The warning shown in the log and by `lapd pools status` for a pool whose renewal is overdue
/// and that is within 60 days of its end; `None` otherwise.
pub fn ending_warning_if_due(state: &PoolState, now: u64) -> Option<String> {
    (now >= state.renew_after
        && (state.not_after <= now || state.not_after - now <= WARN_DAYS[0] * DAY))
        .then(|| ending_warning(state, now))
}

fn ending_warning(state: &PoolState, now: u64) -> String {
    if now >= state.not_after {
        return format!(
            "the pool of SKU {} has ended: no new seats are granted until the vendor's server is reached",
            state.sku
        );
    }
    let left = state.not_after - now;
    let when = if left >= DAY {
        format!("{} days", left / DAY)
    } else {
        format!("{} hours", left.div_ceil(3_600))
    };
    format!(
        "the pool of SKU {} ends in {when} unless lapd reaches the vendor's server to renew it",
        state.sku
    )
}

/// 32 bytes from the operating system's random source (ephemeral keys, a new anchor).
pub fn os_random() -> [u8; 32] {
    let mut out = [0u8; 32];
    // Without randomness no request can be sealed safely: stopping is the only safe answer.
    getrandom::fill(&mut out).expect("the operating system's random source failed");
    out
}

/// One round for a serving intermediate: due syncs, then the server's pools updated.
pub fn tick_server(upstream: &mut Upstream, server: &Server) -> Vec<Synced> {
    let catalog = server.catalog();
    let synced = server.with_store(|store| {
        upstream.tick(
            &|sku| Upstream::in_use(&catalog, store, sku, server.server_time()),
            &|| server.server_time(),
            &mut os_random,
        )
    });
    server.set_pools(upstream.pools_at(server.server_time()));
    synced
}

/// Keeps the pools synced until the server stops: a round every second (a sync is only
/// sent when due, see [`Upstream::tick`]).
pub fn sync_periodically(server: &Arc<Server>, mut upstream: Upstream) {
    let server = Arc::clone(server);
    std::thread::Builder::new()
        .name("lapd-upstream".into())
        .spawn(move || {
            while !server.stopping() {
                tick_server(&mut upstream, &server);
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .expect("spawning the upstream syncer");
}

fn uuid_v8(mut bytes: [u8; 16]) -> Uuid {
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_profile() {
        assert_eq!(retry_after(0, false), 15 * 60);
        assert_eq!(retry_after(2 * 3_600 - 1, true), 15 * 60);
        assert_eq!(retry_after(2 * 3_600, false), 4 * 3_600);
        assert_eq!(retry_after(5 * 3_600, true), 3_600);
    }

    #[test]
    fn each_warning_is_given_once_and_only_the_nearest() {
        let end = 1_000 * DAY;
        let mut warned = BTreeSet::new();
        assert_eq!(warning_due(end, end - 61 * DAY, &warned), None);
        assert_eq!(warning_due(end, end - 59 * DAY, &warned), Some(60));
        warned.insert(60);
        assert_eq!(warning_due(end, end - 40 * DAY, &warned), None);
        // Started late (lapd down for weeks): only the nearest threshold, not all of them.
        assert_eq!(warning_due(end, end - 6 * DAY, &warned), Some(7));
        warned.insert(7);
        assert_eq!(warning_due(end, end - 2 * DAY, &warned), None);
        assert_eq!(warning_due(end, end - 3_600, &warned), Some(1));
        assert_eq!(warning_due(end, end, &warned), None);
    }

    /// An upstream wanting 10 seats, holding `state` (if any).
    fn upstream(state: Option<PoolState>) -> (Upstream, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let vendor = ServerSecretKeys::from_bytes([1; 32], &[2; 32]);
        std::fs::write(
            dir.path().join("vendor.toml"),
            crate::keys::public_snippet(&vendor),
        )
        .expect("write");
        std::fs::write(
            dir.path().join("pool.key"),
            lap_proto::test_util::key(3).to_display(),
        )
        .expect("write");
        let sku = Uuid::from_u128(5);
        let config = UpstreamConfig {
            address: Some("127.0.0.1:9".into()),
            srv_domain: None,
            vendor_public: "vendor.toml".into(),
            anchor_file: Some("anchor".into()),
            state: None,
            pools: vec![PoolConfig {
                sku,
                license_key_file: "pool.key".into(),
                seats: 10,
            }],
        }
        .resolved(Some(dir.path()))
        .expect("config");
        let own = ServerSecretKeys::from_bytes([3; 32], &[4; 32]);
        let mut upstream = Upstream::open(config, &own, || [6; 32]).expect("open");
        upstream
            .state
            .pools
            .extend(state.map(|s| PoolState { sku, ..s }));
        (upstream, dir)
    }

    fn held(seats: u32) -> PoolState {
        PoolState {
            sku: Uuid::nil(),
            license_id: Uuid::from_u128(1),
            seats,
            not_after: 1_000 * DAY,
            renew_after: 500 * DAY,
            features: Vec::new(),
            delegation: String::new(),
            synced_at: 0,
            notice: None,
        }
    }

    #[test]
    fn a_sync_is_due_at_start_at_renew_after_and_when_the_pool_runs_low() {
        let now = 100 * DAY;
        assert!(upstream(None).0.due(0, 0, now), "never synced: at once");
        let (mut full, _dir) = upstream(Some(held(10)));
        assert!(
            !full.due(0, 10, now),
            "all it asked for: no sync before RenewAfter"
        );
        assert!(full.due(0, 0, 500 * DAY), "at RenewAfter");
        full.pools[0].next_attempt = 500 * DAY + 60;
        assert!(!full.due(0, 0, 500 * DAY), "a failure's backoff holds");

        let (mut short, _dir) = upstream(Some(held(5)));
        assert!(!short.due(0, 3, now), "two of five left: not low");
        assert!(
            short.due(0, 4, now),
            "one left of five, five short of the ten wanted"
        );
        short.pools[0].last_low_sync = now - 60;
        assert!(!short.due(0, 4, now), "at most every 15 minutes");
        assert!(short.due(0, 4, now - 60 + 15 * 60));
    }

    #[test]
    fn the_anchor_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("anchor");
        let first = anchor_digest(&path, || [7; 32]).expect("made");
        let again = anchor_digest(&path, || [8; 32]).expect("read");
        assert_eq!(first, again, "the file, not a new draw");
        std::fs::write(&path, "not hex").expect("write");
        assert!(matches!(
            anchor_digest(&path, || [7; 32]),
            Err(UpstreamError::Config(_))
        ));
    }
}
