//! The engine: provisioning, activation, keys, server overrides and the status, over the
//! manifests, the keyring, the machine identity, discovery and the UDP transport.
//!
//! Every change to durable state goes through `StateStore::update` (one lock, one atomic
//! write), so the tray and `lapctl` can act at once without losing each other's updates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lap_proto::{ActivationRecord, LicenseKey, LicenseKeyError, Request, SeedV1, Uuid};
use lapwing_discovery::{Discovery, DiscoveryConfig, ServerSettings};
use lapwing_secrets::{SecretError, SecretStore};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::identity::{IdentityError, MachineIdentity};
use crate::manifest::{Catalog, Manifest, scan};
use crate::policy::{Policy, PolicyError};
use crate::records::{grant_from, remove_record};
use crate::schedule::{DAY, next_retry};
use crate::state::{
    Attempt, AttemptOutcome, Backoff, Grant, ProductState, ServerUsed, State, StateError,
    StateStore,
};
use crate::status::{Phase, Standing, standing};
use crate::transport::{Entropy, RetryPolicy, ServerOutcome, TransportError, exchange};

/// A clock this far behind the latest time seen has been moved back.
pub const CLOCK_BACK_TOLERANCE: u64 = 300;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no product {0:?} is installed (see `lapctl products`)")]
    UnknownProduct(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Secrets(#[from] SecretError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("license key not accepted locally: {0}")]
    Key(#[from] LicenseKeyError),
    #[error("{0}")]
    Server(String),
    #[error("the machine policy locks the server to {0}: a user override is not allowed")]
    PolicyLocked(String),
}

/// Everything the engine is built from. Time, randomness, the keyring and the machine are
/// injected so every rule is tested with fakes and runs with the real parts.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    pub product_dirs: Vec<PathBuf>,
    pub policy_path: PathBuf,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub secrets: Arc<dyn SecretStore>,
    pub identity: Arc<dyn MachineIdentity>,
    pub discovery: DiscoveryConfig,
    pub retry: RetryPolicy,
}

/// One product's status, as the tray and `lapctl status --json` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductStatus {
    pub id: String,
    pub name: String,
    pub vendor: String,
    pub sku: Uuid,
    pub addon_of: Option<String>,
    pub state: Phase,
    pub not_after: Option<u64>,
    pub ends_at: Option<u64>,
    pub days_left: Option<u64>,
    pub license_id: Option<Uuid>,
    pub kind: Option<crate::state::GrantKind>,
    pub in_compliance: Option<bool>,
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub has_key: bool,
    pub server: Option<ServerUsed>,
    pub last_attempt: Option<Attempt>,
    pub next_attempt_at: Option<u64>,
    /// Set when this machine's clock is behind a time it has already seen.
    pub clock_moved_back_by: Option<u64>,
}

impl ProductStatus {
    /// Where the product stands in a few words, worded alike in the tray and in `lapctl`:
    /// "Activated until <date>", "Activated until <date> (renewal due)", "Expired on <date>",
    /// "Evaluation: 3 days left", "Evaluation over: enter a license key", "Not activated";
    /// then " (out of compliance)" when the server says so. `date` writes UNIX seconds in the
    /// caller's style (ISO for scripts, "12 Mar 2027" in the tray). Why an attempt failed is
    /// the caller's to add: the room for it differs.
    pub fn headline(&self, date: impl Fn(u64) -> String) -> String {
        let until = |prefix: &str| match self.not_after {
            Some(end) => format!("{prefix} until {}", date(end)),
            None => prefix.to_owned(),
        };
        let mut text = match self.state {
            Phase::Activated => until("Activated"),
            Phase::RenewalDue => format!("{} (renewal due)", until("Activated")),
            Phase::Expired => match self.not_after {
                Some(end) => format!("Expired on {}", date(end)),
                None => "Expired".to_owned(),
            },
            Phase::Evaluation => match self.days_left {
                Some(1) => "Evaluation: 1 day left".to_owned(),
                Some(n) => format!("Evaluation: {n} days left"),
                None => "Evaluation".to_owned(),
            },
            Phase::EvaluationExpired => "Evaluation over: enter a license key".to_owned(),
            Phase::Unlicensed => "Not activated".to_owned(),
        };
        if self.in_compliance == Some(false) {
            text.push_str(" (out of compliance)");
        }
        text
    }
}

#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: StateStore,
    discovery: Discovery,
    manifests: crate::manifest::ScanCache,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let store = StateStore::with_rebuild(config.data_dir.clone(), rebuilder(&config));
        let discovery = Discovery::new(config.discovery.clone());
        Self {
            config,
            store,
            discovery,
            manifests: crate::manifest::ScanCache::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn state_store(&self) -> &StateStore {
        &self.store
    }

    /// The installed products and the manifests refused.
    pub fn catalog(&self) -> Catalog {
        self.manifests.scan(&self.config.product_dirs)
    }

    fn manifest(&self, id: &str) -> Result<Manifest, EngineError> {
        self.catalog()
            .products
            .remove(id)
            .ok_or_else(|| EngineError::UnknownProduct(id.to_owned()))
    }

    fn policy(&self) -> Result<Policy, EngineError> {
        Ok(Policy::load(&self.config.policy_path)?)
    }

    /// The status of every installed product. Reads the state file under its lock; never
    /// asks the keyring.
    pub fn status(&self) -> Result<Vec<ProductStatus>, EngineError> {
        let catalog = self.catalog();
        let evaluation_allowed = self.evaluation_allowed();
        let now = self.config.clock.now();
        let lock = self.store.lock()?;
        let (state, _) = self.store.load(&lock)?;
        drop(lock);
        Ok(catalog
            .products
            .values()
            .map(|m| product_status(m, &state, now, evaluation_allowed))
            .collect())
    }

    /// The status of one product.
    pub fn product_status(&self, id: &str) -> Result<ProductStatus, EngineError> {
        let manifest = self.manifest(id)?;
        let lock = self.store.lock()?;
        let (state, _) = self.store.load(&lock)?;
        Ok(product_status(
            &manifest,
            &state,
            self.config.clock.now(),
            self.evaluation_allowed(),
        ))
    }

    /// Whether the machine policy lets products evaluate. The status shows what the policy
    /// allows even when the file is broken (read as allowed): activation itself refuses to
    /// run on a broken policy, so nothing is granted on that guess.
    fn evaluation_allowed(&self) -> bool {
        self.policy().map_or(true, |p| p.evaluation.allowed)
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], EngineError> {
        let mut out = [0u8; N];
        self.config.entropy.fill(&mut out)?;
        Ok(out)
    }

    fn new_uuid(&self) -> Result<Uuid, EngineError> {
        Ok(uuid::Builder::from_random_bytes(self.random()?).into_uuid())
    }

    /// Gives the product its ids (state) and install nonce (keyring) if it has none yet.
    pub fn provision(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let base_id = self.new_uuid()?;
        let addon_id = if manifest.is_addon() {
            self.new_uuid()?
        } else {
            Uuid::nil()
        };
        self.store.update(|state| {
            state
                .products
                .entry(manifest.id.clone())
                .or_insert_with(|| ProductState::new(base_id, addon_id));
        })?;
        if self
            .config
            .secrets
            .get_install_nonce(&manifest.id)?
            .is_none()
        {
            let nonce: Zeroizing<[u8; 16]> = Zeroizing::new(self.random()?);
            self.config
                .secrets
                .set_install_nonce(&manifest.id, &nonce)?;
        }
        Ok(())
    }

    /// Checks a key locally (profile §4) and stores it; the caller activates next.
    pub fn set_key(&self, id: &str, text: &str) -> Result<LicenseKey, EngineError> {
        let manifest = self.manifest(id)?;
        let key = LicenseKey::parse(text)?;
        self.provision(&manifest)?;
        self.config.secrets.set_license_key(id, key.as_bytes())?;
        self.store.update(|state| {
            if let Some(product) = state.products.get_mut(id) {
                product.has_key = true;
                // A new key deserves an attempt now, not at the end of a backoff.
                product.backoff = None;
            }
        })?;
        Ok(key)
    }

    /// The stored key, if any.
    pub fn key(&self, id: &str) -> Result<Option<LicenseKey>, EngineError> {
        self.manifest(id)?;
        Ok(self
            .config
            .secrets
            .get_license_key(id)?
            .map(|k| LicenseKey::from_bytes(*k)))
    }

    pub fn remove_key(&self, id: &str) -> Result<(), EngineError> {
        self.manifest(id)?;
        self.config
            .secrets
            .delete(id, lapwing_secrets::SecretItem::LicenseKey)?;
        self.store.update(|state| {
            if let Some(product) = state.products.get_mut(id) {
                product.has_key = false;
            }
        })?;
        Ok(())
    }

    /// Sets or clears the user's server override, per product or global; refused when the
    /// machine policy locks the server.
    pub fn set_server_override(
        &self,
        product: Option<&str>,
        server: Option<&str>,
    ) -> Result<(), EngineError> {
        if let Some(text) = server {
            lapwing_discovery::parse_host_port(text)
                .map_err(|e| EngineError::Server(e.to_string()))?;
            let policy = self.policy()?;
            if policy.server.locked {
                return Err(EngineError::PolicyLocked(
                    policy.server.address.unwrap_or_default(),
                ));
            }
        }
        if let Some(id) = product {
            let manifest = self.manifest(id)?;
            self.provision(&manifest)?;
        }
        self.store.update(|state| {
            match product {
                Some(id) => {
                    if let Some(p) = state.products.get_mut(id) {
                        p.server_override = server.map(str::to_owned);
                    }
                }
                None => state.global_override = server.map(str::to_owned),
            }
            // A server chosen by hand deserves an attempt now, not at the end of a backoff.
            for (id, p) in &mut state.products {
                if product.is_none_or(|wanted| wanted == id) {
                    p.backoff = p.backoff.map(|b| crate::state::Backoff { next_at: 0, ..b });
                }
            }
        })?;
        Ok(())
    }

    /// What discovery is given for a product.
    pub fn server_settings(
        &self,
        manifest: &Manifest,
        state: &State,
    ) -> Result<ServerSettings, EngineError> {
        Ok(settings_for(&self.policy()?, manifest, state))
    }

    /// Where this product's servers are, in the order they would be tried.
    pub async fn discover(&self, id: &str) -> Result<lapwing_discovery::Discovered, EngineError> {
        let manifest = self.manifest(id)?;
        let lock = self.store.lock()?;
        let (state, _) = self.store.load(&lock)?;
        drop(lock);
        let settings = self.server_settings(&manifest, &state)?;
        Ok(self.discovery.candidates(&settings).await)
    }

    /// Activates (or renews) one product now, trying its servers in order; `server` forces
    /// one address instead of discovery. A batch of one: the same path as
    /// [`Engine::activate_many`].
    pub async fn activate(
        &self,
        id: &str,
        server: Option<SocketAddr>,
    ) -> Result<ProductStatus, EngineError> {
        self.activate_many(&[id], server)
            .await?
            .pop()
            .unwrap_or_else(|| Err(EngineError::UnknownProduct(id.to_owned())))
    }

    /// Activates (or renews) several products at once: every product's exchange runs
    /// concurrently, the activation records are written side by side, and all outcomes are
    /// committed in ONE state update (one lock, one atomic write): N products cost one
    /// durable state commit, not N serialized ones. `server` forces one address for all.
    ///
    /// The order of durable writes, and why a power cut at any point is safe:
    /// 1. A product never seen before gets its client ids in one state write *before*
    ///    anything is sent: the server binds a seat to those ids, so they must outlive a crash
    ///    or the next run would take a second seat. Products already provisioned cost nothing.
    /// 2. Each accepted answer's record is written atomically and flushed (file, then
    ///    directory) before the state commit, so the state never says "activated" for a grant
    ///    whose record the product cannot read. A crash between 2 and 3 leaves the new record
    ///    with the old state: the product reads its new record, the engine renews on the old
    ///    state's schedule, and a state file that is lost or unreadable is rebuilt from the
    ///    records (see `rebuilder`).
    /// 3. One update applies every outcome to the state as read under the lock: a product
    ///    whose answer failed its checks keeps its previous grant, and its backoff counts
    ///    from the latest state, whoever wrote it meanwhile.
    ///
    /// Returns one result per distinct id, in the order first given. The outer error is the
    /// batch's as a whole: the state, the machine policy or the machine identity unreadable,
    /// or the commit failed.
    pub async fn activate_many<S: AsRef<str>>(
        &self,
        ids: &[S],
        server: Option<SocketAddr>,
    ) -> Result<Vec<Result<ProductStatus, EngineError>>, EngineError> {
        let mut seen = std::collections::BTreeSet::new();
        let wanted: Vec<&str> = ids
            .iter()
            .map(AsRef::as_ref)
            .filter(|id| seen.insert(*id))
            .collect();
        // One scan, one policy read and one identity read for the whole batch.
        let catalog = self.manifests.scan_shared(&self.config.product_dirs);
        let manifests: Vec<Result<&Manifest, EngineError>> = wanted
            .iter()
            .map(|id| {
                catalog
                    .products
                    .get(*id)
                    .ok_or_else(|| EngineError::UnknownProduct((*id).to_owned()))
            })
            .collect();
        let known: Vec<&Manifest> = manifests
            .iter()
            .filter_map(|m| m.as_ref().ok().copied())
            .collect();
        if known.is_empty() {
            // Every id is unknown: nothing to read or write.
            return Ok(manifests
                .into_iter()
                .filter_map(Result::err)
                .map(Err)
                .collect());
        }
        let state = self.provision_all(&known)?;
        let policy = self.policy()?;
        let facts = self.config.identity.read(state.pinned_anchor.as_deref())?;
        let now = self.config.clock.now();

        let (state_ref, policy_ref, facts_ref) = (&state, &policy, &facts);
        let attempted: Vec<Result<(&Manifest, Attempted), EngineError>> =
            futures::future::join_all(manifests.into_iter().map(|manifest| async move {
                let manifest = manifest?;
                let attempted = self
                    .attempt(manifest, state_ref, policy_ref, facts_ref, server, now)
                    .await?;
                Ok((manifest, attempted))
            }))
            .await;
        // After the exchanges, not among them: writing while answers are still being opened
        // slowed both (measured: the CPU-bound exchanges and the writer threads share two
        // cores). All records are on disk before the commit below.
        let attempted = self.write_records(attempted).await;

        let commit_now = self.config.clock.now();
        let anchor_source = facts.anchor_source.as_str();
        let (mut statuses, _) = self.store.update(|state| {
            attempted
                .iter()
                .map(|result| {
                    let (manifest, attempted) = result.as_ref().ok()?;
                    apply(state, &manifest.id, attempted, anchor_source);
                    Some(product_status(
                        manifest,
                        state,
                        commit_now,
                        policy.evaluation.allowed,
                    ))
                })
                .collect::<Vec<_>>()
        })?;
        Ok(attempted
            .into_iter()
            .zip(statuses.iter_mut())
            .map(|(result, status)| {
                result.and_then(|(manifest, _)| {
                    status
                        .take()
                        .ok_or_else(|| EngineError::UnknownProduct(manifest.id.clone()))
                })
            })
            .collect())
    }

    /// Gives every product that has none its client ids, in at most one state write, and
    /// returns the state as it then stands.
    fn provision_all(&self, manifests: &[&Manifest]) -> Result<State, EngineError> {
        let lock = self.store.lock()?;
        let (mut state, _) = self.store.load(&lock)?;
        let mut added = false;
        for manifest in manifests {
            if !state.products.contains_key(&manifest.id) {
                let base_id = self.new_uuid()?;
                let addon_id = if manifest.is_addon() {
                    self.new_uuid()?
                } else {
                    Uuid::nil()
                };
                state
                    .products
                    .insert(manifest.id.clone(), ProductState::new(base_id, addon_id));
                added = true;
            }
        }
        if added {
            self.store.save(&lock, &state)?;
        }
        Ok(state)
    }

    /// One product's attempt, up to the answer: nothing durable is written here except the
    /// keyring's install nonce and evaluation start (both needed before a request is sent).
    async fn attempt(
        &self,
        manifest: &Manifest,
        state: &State,
        policy: &Policy,
        facts: &crate::identity::MachineFacts,
        server: Option<SocketAddr>,
        now: u64,
    ) -> Result<Attempted, EngineError> {
        let id = manifest.id.as_str();
        let key = self.config.secrets.get_license_key(id)?;
        let nonce = self.install_nonce(id)?;
        let product = state
            .products
            .get(id)
            .cloned()
            .unwrap_or_else(|| ProductState::new(Uuid::nil(), Uuid::nil()));
        let mut evaluation_started = None;
        let not_sent = |why: String, evaluation_started| Attempted {
            at: now,
            evaluation_started,
            outcome: Outcome::NotSent(why),
        };

        if key.is_none() {
            // Checked before the evaluation's start is taken: a forbidden evaluation never
            // starts, not even in the keyring.
            if manifest.evaluation_days > 0 && !policy.evaluation.allowed {
                return Ok(not_sent(
                    crate::policy::EVALUATION_DISABLED.to_owned(),
                    None,
                ));
            }
            if manifest.evaluation_days == 0 {
                return Ok(not_sent(
                    "no license key: enter one with `lapctl key set` or from the tray".to_owned(),
                    None,
                ));
            }
            let started = self.evaluation_start(manifest, &product, now)?;
            evaluation_started = Some(started);
            if now >= started + u64::from(manifest.evaluation_days) * DAY {
                return Ok(not_sent(
                    "the evaluation has ended: enter a license key".to_owned(),
                    evaluation_started,
                ));
            }
        }

        let seed = SeedV1 {
            decoded_key: key.as_ref().map_or([0; 16], |k| **k),
            machine_hash: lap_proto::machine_hash(
                manifest.server_keys.ed25519_bytes(),
                &facts.anchor_digest,
            ),
            num_cpus: facts.num_cpus,
            num_cores: facts.num_cores,
            install_nonce: nonce,
        };
        let seed_bytes = seed
            .encode(manifest.response_room)
            .map_err(|e| EngineError::Server(e.to_string()))?;
        let current_license_id = product.grant.as_ref().map_or(Uuid::nil(), |g| g.license_id);
        let (base_id, addon_id, sku) = (
            product.client_base_id,
            product.client_addon_id,
            manifest.sku,
        );
        let build = move |client_time: u64| Request {
            client_time,
            client_base_id: base_id,
            client_addon_id: addon_id,
            sku_id: sku,
            current_license_id,
            client_seed: Zeroizing::new(seed_bytes.to_vec()),
        };

        let (candidates, skipped) = self.servers_to_try(manifest, state, policy, server).await?;
        if candidates.is_empty() {
            return Ok(not_sent(
                format!(
                    "no server found: set one with `lapctl server set HOST:PORT`{}",
                    if skipped.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", skipped.join("; "))
                    }
                ),
                evaluation_started,
            ));
        }

        let mut rejections = Vec::new();
        for (address, used) in &candidates {
            let outcome = exchange(
                *address,
                &manifest.server_keys,
                &build,
                self.config.clock.as_ref(),
                self.config.entropy.as_ref(),
                &self.config.retry,
            )
            .await?;
            match outcome {
                ServerOutcome::Answered { activation, .. } => {
                    let received = self.config.clock.now();
                    match grant_from(&activation, received, Some(used.clone()), key.is_none()) {
                        Ok(grant) => {
                            return Ok(Attempted {
                                at: now,
                                evaluation_started,
                                outcome: Outcome::Accepted {
                                    grant: Box::new(grant),
                                    record: Box::new(ActivationRecord::new(id, &activation)),
                                },
                            });
                        }
                        // The previous activation stands; the next server may do better.
                        Err(e) => rejections.push(format!(
                            "{} sent a signed answer with invalid ServerData ({e}); the previous activation stands",
                            used.address
                        )),
                    }
                }
                ServerOutcome::Silent {
                    rejected,
                    last_rejection,
                    ..
                } => {
                    if rejected > 0 {
                        rejections.push(format!(
                            "{} datagram(s) from {} failed their checks ({}): not from this product's server, or damaged",
                            rejected,
                            used.address,
                            last_rejection.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        let tried: Vec<String> = candidates
            .iter()
            .map(|(_, u)| format!("{} ({})", u.address, u.source))
            .collect();
        // Answers that came but failed their checks are named first: they are not silence.
        let outcome = if rejections.is_empty() {
            AttemptOutcome::NoAnswer
        } else {
            AttemptOutcome::RejectedAnswer
        };
        let mut diagnosis = rejections;
        diagnosis.extend(silence_diagnosis(key.is_some(), &tried));
        Ok(Attempted {
            at: now,
            evaluation_started,
            outcome: Outcome::Failed {
                outcome,
                diagnosis,
                server: candidates.first().map(|(_, u)| u.clone()),
            },
        })
    }

    /// The product's install nonce, made and stored in the keyring if it has none yet.
    fn install_nonce(&self, id: &str) -> Result<[u8; 16], EngineError> {
        if let Some(nonce) = self.config.secrets.get_install_nonce(id)? {
            return Ok(*nonce);
        }
        let nonce: Zeroizing<[u8; 16]> = Zeroizing::new(self.random()?);
        self.config.secrets.set_install_nonce(id, &nonce)?;
        Ok(*nonce)
    }

    /// Writes the accepted answers' records in one batch (`records::write_records`: each
    /// atomic, the disk flushes shared), on the blocking pool so the runtime keeps running. A
    /// product whose record cannot be written becomes an error and its state is left as it
    /// was.
    async fn write_records<'m>(
        &self,
        attempted: Vec<Result<(&'m Manifest, Attempted), EngineError>>,
    ) -> Vec<Result<(&'m Manifest, Attempted), EngineError>> {
        let records: Vec<(usize, ActivationRecord)> = attempted
            .iter()
            .enumerate()
            .filter_map(|(n, result)| match result {
                Ok((
                    _,
                    Attempted {
                        outcome: Outcome::Accepted { record, .. },
                        ..
                    },
                )) => Some((n, (**record).clone())),
                _ => None,
            })
            .collect();
        if records.is_empty() {
            return attempted;
        }
        let accepted: Vec<usize> = records.iter().map(|(n, _)| *n).collect();
        let dir = self.config.data_dir.clone();
        let failed: Vec<(usize, std::io::Error)> = tokio::task::spawn_blocking(move || {
            let refs: Vec<&ActivationRecord> = records.iter().map(|(_, record)| record).collect();
            crate::records::write_records(&dir, &refs)
                .into_iter()
                .zip(&records)
                .filter_map(|(result, (n, _))| result.err().map(|e| (*n, e)))
                .collect()
        })
        .await
        .unwrap_or_else(|e| {
            // The writers did not finish: no accepted answer's record counts as written.
            accepted
                .into_iter()
                .map(|n| (n, std::io::Error::other(e.to_string())))
                .collect()
        });
        let mut attempted = attempted;
        for (n, source) in failed {
            attempted[n] = Err(EngineError::State(StateError::Io {
                path: crate::records::records_dir(&self.config.data_dir),
                source,
            }));
        }
        attempted
    }

    /// The servers to try, in order: the one forced by the caller (no discovery at all),
    /// else discovery's.
    async fn servers_to_try(
        &self,
        manifest: &Manifest,
        state: &State,
        policy: &Policy,
        server: Option<SocketAddr>,
    ) -> Result<(Vec<(SocketAddr, ServerUsed)>, Vec<String>), EngineError> {
        if let Some(address) = server {
            // A server forced for one run is still a user's choice: a locked policy refuses it.
            if policy.server.locked {
                return Err(EngineError::PolicyLocked(
                    policy.server.address.clone().unwrap_or_default(),
                ));
            }
            let used = ServerUsed {
                address: address.to_string(),
                source: lapwing_discovery::ServerSource::Override,
            };
            return Ok((vec![(address, used)], Vec::new()));
        }
        let settings = settings_for(policy, manifest, state);
        let found = self.discovery.candidates(&settings).await;
        let skipped = found.skipped.iter().map(ToString::to_string).collect();
        let candidates = found
            .candidates
            .into_iter()
            .map(|c| {
                (
                    c.address,
                    ServerUsed {
                        address: c.address.to_string(),
                        source: c.source,
                    },
                )
            })
            .collect();
        Ok((candidates, skipped))
    }

    /// The evaluation's start: the keyring's, else the state's, else now. The keyring is
    /// written here, before anything is sent; the state catches up in the batch's commit.
    fn evaluation_start(
        &self,
        manifest: &Manifest,
        product: &ProductState,
        now: u64,
    ) -> Result<u64, EngineError> {
        let stored = self.config.secrets.get_evaluation_start(&manifest.id)?;
        let start = match (stored, product.evaluation_started) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => now,
        };
        if stored != Some(start) {
            self.config
                .secrets
                .set_evaluation_start(&manifest.id, start)?;
        }
        Ok(start)
    }

    /// Forgets a product: its state, its record and its secrets.
    pub fn forget(&self, id: &str) -> Result<(), EngineError> {
        self.config.secrets.forget_product(id)?;
        self.store.update(|state| state.products.remove(id))?;
        remove_record(&self.config.data_dir, id).map_err(|source| StateError::Io {
            path: crate::records::records_dir(&self.config.data_dir),
            source,
        })?;
        Ok(())
    }

    /// Waits for a time server's answer; `Some(offset)` is this clock minus the server's.
    pub async fn clock_offset(
        &self,
        sntp: SocketAddr,
        timeout: Duration,
    ) -> Result<i64, crate::sntp::SntpError> {
        let server_time = crate::sntp::query(sntp, timeout).await?;
        let ours = self.config.clock.now();
        Ok(
            i64::try_from(ours).unwrap_or(i64::MAX)
                - i64::try_from(server_time).unwrap_or(i64::MAX),
        )
    }
}

/// What one product's attempt came to, before anything of it is committed.
#[derive(Debug)]
struct Attempted {
    /// When the attempt began.
    at: u64,
    /// The evaluation's start, when the attempt used (and so fixed) it.
    evaluation_started: Option<u64>,
    outcome: Outcome,
}

#[derive(Debug)]
enum Outcome {
    /// An answer that passed every check; its record is written before the commit. Boxed:
    /// the other outcomes are a fraction of its size.
    Accepted {
        grant: Box<Grant>,
        record: Box<ActivationRecord>,
    },
    /// Silence, or answers that failed their checks: the previous grant stands.
    Failed {
        outcome: AttemptOutcome,
        diagnosis: Vec<String>,
        server: Option<ServerUsed>,
    },
    /// Nothing was sent, and why.
    NotSent(String),
}

/// Applies one product's attempt to the state read under the lock. A product removed
/// meanwhile (`forget`) stays removed.
fn apply(state: &mut State, id: &str, attempted: &Attempted, anchor_source: &str) {
    if let Outcome::Accepted { grant, .. } = &attempted.outcome {
        state
            .pinned_anchor
            .get_or_insert_with(|| anchor_source.to_owned());
        state.highest_time_seen = state.highest_time_seen.max(grant.received_at);
    }
    let Some(p) = state.products.get_mut(id) else {
        return;
    };
    if let Some(start) = attempted.evaluation_started {
        // The earliest start wins, as in the keyring: an evaluation never restarts.
        p.evaluation_started = Some(p.evaluation_started.map_or(start, |s| s.min(start)));
    }
    match &attempted.outcome {
        Outcome::Accepted { grant, .. } => {
            p.grant = Some((**grant).clone());
            p.backoff = None;
            p.last_attempt = Some(Attempt {
                at: grant.received_at,
                outcome: AttemptOutcome::Activated,
                diagnosis: Vec::new(),
                server: grant.server.clone(),
            });
        }
        Outcome::Failed {
            outcome,
            diagnosis,
            server,
        } => {
            let now = attempted.at;
            let not_after = p.grant.as_ref().and_then(|g| g.not_after);
            let first = p.backoff.map_or(now, |b| b.first_failure_at);
            let failures = p.backoff.map_or(1, |b| b.failures + 1);
            p.backoff = Some(Backoff {
                first_failure_at: first,
                failures,
                next_at: next_retry(first, now, not_after),
            });
            p.last_attempt = Some(Attempt {
                at: now,
                outcome: *outcome,
                diagnosis: diagnosis.clone(),
                server: server.clone(),
            });
        }
        Outcome::NotSent(why) => {
            p.last_attempt = Some(Attempt {
                at: attempted.at,
                outcome: AttemptOutcome::NotSent,
                diagnosis: vec![why.clone()],
                server: None,
            });
        }
    }
}

/// What discovery is given for a product under this policy.
fn settings_for(policy: &Policy, manifest: &Manifest, state: &State) -> ServerSettings {
    ServerSettings {
        product_override: state
            .products
            .get(&manifest.id)
            .and_then(|p| p.server_override.clone()),
        global_override: state.global_override.clone(),
        policy_server: policy.server.address.clone(),
        policy_locked: policy.server.locked,
        srv_domain: manifest.srv_domain.clone(),
        manifest_address: manifest.address.clone(),
    }
}

/// The likely causes of silence, most likely first (profile §1: never a bare "network error").
fn silence_diagnosis(has_key: bool, tried: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    out.push("this machine's clock may be off: the server ignores requests more than 30 s away from its time (`lapctl doctor` compares it with a time server)".to_owned());
    if has_key {
        out.push("the license key may not be accepted for this product, or has no free seat: check it with your vendor".to_owned());
    } else {
        out.push(
            "the server may not offer an evaluation for this product: enter a license key"
                .to_owned(),
        );
    }
    out.push(format!(
        "the server may be unreachable: no answer from {}",
        tried.join(", ")
    ));
    out
}

fn product_status(
    manifest: &Manifest,
    state: &State,
    now: u64,
    evaluation_allowed: bool,
) -> ProductStatus {
    let fresh = ProductState::new(Uuid::nil(), Uuid::nil());
    let product = state.products.get(&manifest.id).unwrap_or(&fresh);
    // Evaluations forbidden by the machine policy: the product stands as if it offered none
    // (unlicensed without a key); the last attempt names the administrator's reason.
    let without_evaluation;
    let offered = if evaluation_allowed {
        manifest
    } else {
        without_evaluation = Manifest {
            evaluation_days: 0,
            ..manifest.clone()
        };
        &without_evaluation
    };
    let Standing {
        phase,
        ends_at,
        days_left,
    } = standing(offered, product, product.has_key, now);
    let grant: Option<&Grant> = product.grant.as_ref();
    ProductStatus {
        id: manifest.id.clone(),
        name: manifest.name.clone(),
        vendor: manifest.vendor.clone(),
        sku: manifest.sku,
        addon_of: manifest.addon_of.clone(),
        state: phase,
        not_after: grant.and_then(|g| g.not_after),
        ends_at,
        days_left,
        license_id: grant.map(|g| g.license_id),
        kind: grant.and_then(|g| g.kind),
        in_compliance: grant.and_then(|g| g.in_compliance),
        features: grant.map(|g| g.features.clone()).unwrap_or_default(),
        notice: grant.and_then(|g| g.notice.clone()),
        has_key: product.has_key,
        server: grant
            .and_then(|g| g.server.clone())
            .or_else(|| product.last_attempt.as_ref().and_then(|a| a.server.clone())),
        last_attempt: product.last_attempt.clone(),
        next_attempt_at: product
            .backoff
            .map(|b| b.next_at)
            .or_else(|| grant.map(crate::schedule::renew_at)),
        clock_moved_back_by: (state.highest_time_seen > now + CLOCK_BACK_TOLERANCE)
            .then(|| state.highest_time_seen - now),
    }
}

/// What survives a lost or corrupt state file: the keyring (key, evaluation start) and the
/// signed activation records, re-verified with each manifest's server key.
fn rebuilder(config: &EngineConfig) -> crate::state::Rebuild {
    let (dirs, data, secrets, entropy) = (
        config.product_dirs.clone(),
        config.data_dir.clone(),
        Arc::clone(&config.secrets),
        Arc::clone(&config.entropy),
    );
    Arc::new(move |state: &mut State| {
        let random_id = || {
            let mut bytes = [0u8; 16];
            entropy
                .fill(&mut bytes)
                .ok()
                .map(|()| uuid::Builder::from_random_bytes(bytes).into_uuid())
        };
        for manifest in scan(&dirs).products.into_values() {
            let verified = crate::records::read_record(&data, &manifest.id).and_then(|record| {
                record
                    .verify(manifest.sku, manifest.server_keys.ed25519_bytes())
                    .ok()
            });
            let Some(fresh_id) = random_id() else {
                continue;
            };
            let addon_id = if manifest.is_addon() {
                random_id().unwrap_or(fresh_id)
            } else {
                Uuid::nil()
            };
            let mut product = ProductState::new(fresh_id, addon_id);
            if let Some(verified) = verified {
                let response = &verified.response;
                if manifest.is_addon() {
                    product.client_addon_id = response.client_id;
                } else {
                    product.client_base_id = response.client_id;
                }
                let evaluation =
                    verified.server_data.kind == Some(lap_proto::LicenseKind::Evaluation);
                let received_at = response.server_time;
                product.grant = Some(Grant::from_server_data(
                    response,
                    verified.server_data,
                    received_at,
                    None,
                    evaluation,
                ));
            }
            product.has_key = matches!(secrets.get_license_key(&manifest.id), Ok(Some(_)));
            product.evaluation_started = secrets.get_evaluation_start(&manifest.id).ok().flatten();
            state.products.insert(manifest.id.clone(), product);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(state: Phase) -> ProductStatus {
        ProductStatus {
            id: "p".into(),
            name: "P".into(),
            vendor: "V".into(),
            sku: Uuid::nil(),
            addon_of: None,
            state,
            not_after: Some(20 * DAY),
            ends_at: Some(20 * DAY),
            days_left: Some(3),
            license_id: None,
            kind: None,
            in_compliance: None,
            features: Vec::new(),
            notice: None,
            has_key: true,
            server: None,
            last_attempt: None,
            next_attempt_at: None,
            clock_moved_back_by: None,
        }
    }

    #[test]
    fn the_headline_names_each_phase_with_the_callers_dates() {
        let day = |unix: u64| format!("day {}", unix / DAY);
        let cases = [
            (status(Phase::Activated), "Activated until day 20"),
            (
                status(Phase::RenewalDue),
                "Activated until day 20 (renewal due)",
            ),
            (status(Phase::Expired), "Expired on day 20"),
            (status(Phase::Evaluation), "Evaluation: 3 days left"),
            (
                ProductStatus {
                    days_left: Some(1),
                    ..status(Phase::Evaluation)
                },
                "Evaluation: 1 day left",
            ),
            (
                status(Phase::EvaluationExpired),
                "Evaluation over: enter a license key",
            ),
            (status(Phase::Unlicensed), "Not activated"),
            (
                ProductStatus {
                    not_after: None,
                    ..status(Phase::Activated)
                },
                "Activated",
            ),
            (
                ProductStatus {
                    in_compliance: Some(false),
                    ..status(Phase::Activated)
                },
                "Activated until day 20 (out of compliance)",
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(status.headline(day), expected, "{:?}", status.state);
        }
    }
}
