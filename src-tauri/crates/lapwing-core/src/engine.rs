//! The engine: provisioning, activation, keys, server overrides and the status, over the
//! manifests, the keyring, the machine identity, discovery and the UDP transport.
//!
//! Every change to durable state goes through `StateStore::update` (one lock, one atomic
//! write), so the tray and `lapctl` can act at once without losing each other's updates.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use lap_proto::time::DAY;
use lap_proto::{
    ActivationRecord, Intent, LicenseKey, LicenseKeyError, Request, SeedExtensions, SeedV1,
    ServerData, ServerDataError, Uuid,
};
use lapwing_discovery::{Discovery, DiscoveryConfig, ServerSettings};
use lapwing_secrets::{SecretError, SecretItem, SecretStore};
use zeroize::Zeroizing;

use crate::apply::{Attempted, Lifecycle, Outcome, PendingTry, apply};
use crate::cause::Cause;
use crate::client_ids::Provisioner;
use crate::clock::Clock;
pub use crate::deactivate::{DeactivateOptions, Deactivation};
use crate::identity::{IdentityError, MachineIdentity};
use crate::manifest::{Catalog, Manifest};
use crate::policy::{Policy, PolicyError};
use crate::product_status::product_status;
pub use crate::product_status::{CLOCK_BACK_TOLERANCE, ProductStatus};
use crate::ranking::{self, Asked, Evidence};
use crate::rebuild::{Survivors, rebuilder};
use crate::records::{grant_from, remove_record};
use crate::server_race::{self, Servers};
use crate::state::{AttemptOutcome, PendingKey, ProductState, State, StateError, StateStore};
use crate::transport::{Entropy, RetryPolicy, TransportError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no product {0:?} is installed (see `lapctl products`)")]
    UnknownProduct(String),
    /// An add-on whose base product is not installed: it is neither provisioned nor
    /// activated, since its ClientBaseId is its base's (draft §3.1).
    #[error(
        "{addon:?} is an add-on of {base:?}, which is not installed: install {base:?} first, then activate {addon:?}"
    )]
    BaseNotInstalled { addon: String, base: String },
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
    /// Refused rather than fall back to a folder other users share (`/tmp`).
    #[error(
        "no per-user data directory: {missing} is not set (set it, or LAPWING_HOME, to a folder only this user can read)"
    )]
    NoDataDir { missing: &'static str },
    #[error(
        "the manifest of {0:?} leaves no room in its requests (response_room) to ask the server for a release: deactivate it here anyway (`lapctl deactivate {0} --anyway`)"
    )]
    NoRoomForRelease(String),
    #[error(
        "{0:?} is not activated on this computer: there is no seat to release (`lapctl deactivate {0} --anyway` deactivates it here)"
    )]
    NotActivated(String),
    #[error("sunset grant for {id:?} refused: {reason}; nothing was changed")]
    Sunset { id: String, reason: String },
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

#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: StateStore,
    pub(crate) discovery: Discovery,
    manifests: crate::manifest::ScanCache,
    /// What clock checks ask (`clock_check`); none until given.
    pub(crate) time_sources: Arc<dyn crate::time_sources::TimeSources>,
}

/// What [`Engine::set_key`] did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStored {
    /// Stored as the product's license key.
    Key,
    /// Kept as pending: the stored key holds a working grant and stays in effect until a
    /// server accepts the new one.
    Pending,
}

/// How a stored license key stands to the server key its manifest names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyBinding {
    /// Entered for this server (or no key is stored).
    ThisServer,
    /// Stored before keys were bound to their server.
    Unbound,
    /// Entered for another server key: the manifest was replaced since.
    AnotherServer,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Self {
        let survivors = Survivors {
            product_dirs: config.product_dirs.clone(),
            data_dir: config.data_dir.clone(),
            secrets: Arc::clone(&config.secrets),
            entropy: Arc::clone(&config.entropy),
        };
        let store = StateStore::with_rebuild(config.data_dir.clone(), rebuilder(survivors));
        let discovery = Discovery::new(config.discovery.clone());
        Self {
            config,
            store,
            discovery,
            manifests: crate::manifest::ScanCache::default(),
            time_sources: Arc::new(crate::time_sources::NoTimeSources),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn state_store(&self) -> &StateStore {
        &self.store
    }

    /// The installed products and the manifests refused, each product as the machine policy
    /// provisions it (`crate::provision`). A broken policy provisions nothing: activation
    /// refuses to run on one, so nothing reaches the vendor's servers meanwhile.
    pub fn catalog(&self) -> Catalog {
        let mut catalog = self.manifests.scan(&self.config.product_dirs);
        if let Ok(policy) = self.policy()
            && !policy.provision.is_empty()
        {
            for manifest in catalog.products.values_mut() {
                if let Ok(provisioned) =
                    crate::provision::apply(&policy.provision, manifest.clone())
                {
                    *manifest = provisioned;
                }
            }
        }
        catalog
    }

    pub(crate) fn manifest(&self, id: &str) -> Result<Manifest, EngineError> {
        let mut catalog = self.catalog();
        catalog
            .products
            .remove(id)
            .ok_or_else(|| not_installed(&catalog, id))
    }

    pub(crate) fn policy(&self) -> Result<Policy, EngineError> {
        Ok(Policy::load(&self.config.policy_path)?)
    }

    /// The status of every installed product. Reads the state file under its lock; asks the
    /// keyring only to provision a product whose sunset grant is taken up now (see
    /// [`Engine::pick_up_sunsets`]: a file stat per product otherwise).
    pub fn status(&self) -> Result<Vec<ProductStatus>, EngineError> {
        self.pick_up_sunsets_logged();
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
        self.pick_up_sunsets_logged();
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

    /// Gives the product its client ids (state and keyring; an add-on's base first, see
    /// `client_ids`) and install nonce (keyring) if it has none yet.
    pub fn provision(&self, manifest: &Manifest) -> Result<(), EngineError> {
        let catalog = self.manifests.scan_shared(&self.config.product_dirs);
        let (_, mut failed) = self.provision_all(&catalog, &[manifest])?;
        if let Some(error) = failed.remove(&manifest.id) {
            return Err(error);
        }
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

    /// Checks a key locally (profile §4) and stores it, bound to the server key the manifest
    /// names now; the caller activates next. Entering the key again is also how a person
    /// confirms a product whose server key changed.
    ///
    /// A different key entered while the stored one holds a working grant is kept as
    /// pending instead ([`KeyStored::Pending`]): servers drop keys they do not accept without
    /// a word, so only a grant for it may replace a key that works. Entering the stored key
    /// again drops a pending one.
    pub fn set_key(&self, id: &str, text: &str) -> Result<KeyStored, EngineError> {
        let manifest = self.manifest(id)?;
        let key = LicenseKey::parse(text)?;
        self.provision(&manifest)?;
        let now = self.config.clock.now();
        if self.replaces_working_key(&manifest, &key, now)? {
            self.config
                .secrets
                .set_pending_license_key(id, key.as_bytes())?;
            self.store.update(|state| {
                if let Some(product) = state.products.get_mut(id) {
                    product.pending_key = Some(PendingKey {
                        since: now,
                        last_try: None,
                    });
                    product.backoff = None;
                }
            })?;
            return Ok(KeyStored::Pending);
        }
        // The binding first: should the key's write then fail, the key stored before stays,
        // bound to the server the person has just entered a key for.
        self.config
            .secrets
            .set_license_key_server(id, manifest.server_keys.ed25519_bytes())?;
        self.config.secrets.set_license_key(id, key.as_bytes())?;
        self.config
            .secrets
            .delete(id, SecretItem::PendingLicenseKey)?;
        self.store.update(|state| {
            if let Some(product) = state.products.get_mut(id) {
                product.has_key = true;
                product.key_set_at = Some(now);
                product.pending_key = None;
                // A new key deserves an attempt now, not at the end of a backoff.
                product.backoff = None;
            }
        })?;
        Ok(KeyStored::Key)
    }

    /// Whether `key` would replace a stored key that holds a working grant: another key,
    /// for the server the stored one is bound to (or unbound), with a grant won by a key and
    /// still in force.
    fn replaces_working_key(
        &self,
        manifest: &Manifest,
        key: &LicenseKey,
        now: u64,
    ) -> Result<bool, EngineError> {
        let Some(stored) = self.stored_key(&manifest.id)? else {
            return Ok(false);
        };
        if stored.as_bytes() == key.as_bytes()
            || self.key_binding(manifest)? == KeyBinding::AnotherServer
        {
            return Ok(false);
        }
        let lock = self.store.lock()?;
        let (state, _) = self.store.load(&lock)?;
        drop(lock);
        Ok(state
            .products
            .get(&manifest.id)
            .and_then(|p| p.grant.as_ref())
            .is_some_and(|g| !g.without_key && g.not_after.is_none_or(|end| now < end)))
    }

    /// Drops a pending key (see [`Engine::set_key`]): the stored key stays, as it was.
    /// Dropping none is not an error.
    pub fn drop_pending_key(&self, id: &str) -> Result<(), EngineError> {
        self.manifest(id)?;
        self.config
            .secrets
            .delete(id, SecretItem::PendingLicenseKey)?;
        self.store.update(|state| {
            if let Some(product) = state.products.get_mut(id) {
                product.pending_key = None;
            }
        })?;
        Ok(())
    }

    /// The stored key, if any.
    pub fn key(&self, id: &str) -> Result<Option<LicenseKey>, EngineError> {
        self.manifest(id)?;
        self.stored_key(id)
    }

    /// The keyring's key for `id`. The all-zero key is what an evaluation sends in its place
    /// (profile §2): one found in the keyring (written by anything but `set_key`, which refuses
    /// it) counts as no key, so it can never bypass a policy that forbids evaluations.
    pub(crate) fn stored_key(&self, id: &str) -> Result<Option<LicenseKey>, EngineError> {
        let key = self
            .config
            .secrets
            .get_license_key(id)?
            .map(|k| LicenseKey::from_bytes(*k));
        Ok(key.filter(|k| {
            if k.is_evaluation() {
                tracing::warn!(
                    product = id,
                    "ignored the all-zero key found in the keyring"
                );
            }
            !k.is_evaluation()
        }))
    }

    pub fn remove_key(&self, id: &str) -> Result<(), EngineError> {
        self.manifest(id)?;
        self.config
            .secrets
            .delete(id, lapwing_secrets::SecretItem::LicenseKey)?;
        self.config
            .secrets
            .delete(id, lapwing_secrets::SecretItem::LicenseKeyServer)?;
        self.config
            .secrets
            .delete(id, SecretItem::PendingLicenseKey)?;
        self.store.update(|state| {
            if let Some(product) = state.products.get_mut(id) {
                product.has_key = false;
                product.pending_key = None;
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
        let set_at = server.map(|_| self.config.clock.now());
        self.store.update(|state| {
            if let Some(id) = product {
                if let Some(p) = state.products.get_mut(id) {
                    p.server_override = server.map(str::to_owned);
                    p.override_set_at = set_at;
                }
            } else {
                state.global_override = server.map(str::to_owned);
                state.global_override_set_at = set_at;
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
        // A vendor's final release wins over any exchange: taken up before.
        self.pick_up_sunsets_logged();
        // One scan, one policy read and one identity read for the whole batch.
        let catalog = self.manifests.scan_shared(&self.config.product_dirs);
        let manifests: Vec<Result<&Manifest, EngineError>> = wanted
            .iter()
            .map(|id| {
                catalog
                    .products
                    .get(*id)
                    .ok_or_else(|| not_installed(&catalog, id))
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
        let (state, mut unprovisioned) = self.provision_all(&catalog, &known)?;
        let policy = self.policy()?;
        let facts = self.config.identity.read(state.pinned_anchor.as_deref())?;
        let now = self.config.clock.now();
        // A clock behind a time already seen sends nothing (said, with by how much).
        let clock_guard = self.guard_clock(&state, &policy, now).await;

        let (state_ref, policy_ref, facts_ref) = (&state, &policy, &facts);
        let guard_ref = &clock_guard;
        let attempted: Vec<Result<(&Manifest, Attempted), EngineError>> =
            futures::future::join_all(manifests.into_iter().map(|manifest| {
                // A product whose ids could not be settled sends nothing: its error instead.
                let unprovisioned = manifest
                    .as_ref()
                    .ok()
                    .and_then(|m| unprovisioned.remove(&m.id));
                async move {
                    let manifest = manifest?;
                    if let Some(error) = unprovisioned {
                        return Err(error);
                    }
                    if let Some(refused) = guard_ref.refusal(now) {
                        return Ok((manifest, refused));
                    }
                    let attempted = self
                        .attempt(manifest, state_ref, policy_ref, facts_ref, server, now)
                        .await?;
                    Ok((manifest, attempted))
                }
            }))
            .await;
        // After the exchanges, not among them: writing while answers are still being opened
        // slowed both (measured: the CPU-bound exchanges and the writer threads share two
        // cores). All records are on disk before the commit below.
        let (attempted, clock_guard) = self.diagnose_silence(&policy, attempted, clock_guard).await;
        let attempted = self.write_records(attempted).await;

        let commit_now = self.config.clock.now();
        let anchor_source = facts.anchor_source.as_str();
        let (mut statuses, _) = self.store.update(|state| {
            clock_guard.mark(state, commit_now);
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

    /// Gives every product that has none its client ids (and an add-on's base its own, see
    /// `client_ids`), in at most one state write, and returns the state as it then stands
    /// with the products whose ids could not be settled (a keyring that cannot be read or
    /// written) and why. The keyring is asked only for products new to the state or whose
    /// ids it is not yet known to hold, so a provisioned product costs no round trip.
    fn provision_all(
        &self,
        catalog: &Catalog,
        manifests: &[&Manifest],
    ) -> Result<(State, BTreeMap<String, EngineError>), EngineError> {
        let provisioner = Provisioner {
            catalog: &catalog.products,
            data_dir: &self.config.data_dir,
            secrets: self.config.secrets.as_ref(),
        };
        let lock = self.store.lock()?;
        let (mut state, _) = self.store.load(&lock)?;
        let mut changed = false;
        let mut failed = BTreeMap::new();
        for manifest in manifests {
            match provisioner.provision(&mut state, &manifest.id, &mut || self.new_uuid()) {
                Ok(this_changed) => changed |= this_changed,
                Err(error) => {
                    failed.insert(manifest.id.clone(), error);
                }
            }
        }
        if changed {
            self.store.save(&lock, &state)?;
        }
        Ok((state, failed))
    }

    /// Which server key the stored key was entered for, next to the one the manifest names now.
    fn key_binding(&self, manifest: &Manifest) -> Result<KeyBinding, EngineError> {
        let bound_to = self
            .config
            .secrets
            .get_license_key_server(manifest.id.as_str())?;
        let server_ed25519 = manifest.server_keys.ed25519_bytes();
        Ok(match bound_to {
            // Stored before keys were bound: bound at the next answer.
            None => KeyBinding::Unbound,
            Some(bound) if *bound == *server_ed25519 => KeyBinding::ThisServer,
            Some(_) => KeyBinding::AnotherServer,
        })
    }

    /// One product's attempt, up to the answer: nothing durable is written here except the
    /// keyring's install nonce and evaluation start (both needed before a request is sent),
    /// and the binding of a key stored before keys were bound (after the server answered).
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
        let key = self.stored_key(id)?;
        let binding = match key {
            Some(_) => self.key_binding(manifest)?,
            None => KeyBinding::ThisServer,
        };
        if binding == KeyBinding::AnotherServer {
            // The manifest was replaced since the key was entered: the key goes nowhere
            // until the person confirms this server by entering it again.
            return Ok(Attempted {
                at: now,
                evaluation_started: None,
                outcome: Outcome::NotSent(Cause::ServerKeyChanged),
                pending: None,
            });
        }
        let nonce = self.install_nonce(id)?;
        let product = state
            .products
            .get(id)
            .cloned()
            .unwrap_or_else(|| ProductState::new(Uuid::nil(), Uuid::nil()));
        if let Some(sunset) = sunset_stands(&product, now) {
            return Ok(sunset);
        }
        let mut evaluation_started = None;
        let not_sent = |why: Cause, evaluation_started| Attempted {
            at: now,
            evaluation_started,
            outcome: Outcome::NotSent(why),
            pending: None,
        };

        if key.is_none() {
            // Checked before the evaluation's start is taken: a forbidden evaluation never
            // starts, not even in the keyring.
            if manifest.evaluation_days > 0 && !policy.evaluation.allowed {
                return Ok(not_sent(Cause::EvaluationDisabled, None));
            }
            if manifest.evaluation_days == 0 {
                return Ok(not_sent(Cause::NoLicenseKey, None));
            }
            let started = self.evaluation_start(manifest, &product, now)?;
            evaluation_started = Some(started);
            if now >= started + u64::from(manifest.evaluation_days) * DAY {
                return Ok(not_sent(Cause::EvaluationEnded, evaluation_started));
            }
        }

        // A key entered while this one held a working grant is tried first; until a server
        // accepts it, the stored key renews the grant as before.
        let mut pending = None;
        let pending_key = match key {
            Some(_) => self.pending_key(id)?,
            None => None,
        };
        let pending_gone = pending_key.is_none() && product.pending_key.is_some();
        if let Some(new_key) = pending_key {
            let tried = self
                .exchange(
                    manifest,
                    Some(&new_key),
                    facts,
                    nonce,
                    &product,
                    policy,
                    state,
                    server,
                    // A key not accepted yet: the first suspect when the server is silent.
                    Asked::NewKey,
                    Intent::Activate,
                )
                .await?;
            match tried {
                Outcome::Accepted {
                    grant,
                    record,
                    notes,
                    lifecycle,
                } => {
                    self.promote_pending_key(id, &new_key, manifest.server_keys.ed25519_bytes())?;
                    return Ok(Attempted {
                        at: now,
                        evaluation_started,
                        outcome: Outcome::Accepted {
                            grant,
                            record,
                            notes,
                            lifecycle,
                        },
                        pending: Some(PendingTry::Accepted),
                    });
                }
                // Only a release is answered so, and a sunset is never sent for.
                Outcome::Released { .. } | Outcome::Sunset => {}
                Outcome::Failed {
                    outcome,
                    diagnosis,
                    server,
                } => {
                    pending = Some(crate::state::Attempt {
                        at: now,
                        outcome,
                        diagnosis,
                        server,
                    });
                }
                Outcome::NotSent(why) => {
                    pending = Some(crate::state::Attempt {
                        at: now,
                        outcome: AttemptOutcome::NotSent,
                        diagnosis: vec![why],
                        server: None,
                    });
                }
            }
        }

        let outcome = self
            .exchange(
                manifest,
                key.as_ref(),
                facts,
                nonce,
                &product,
                policy,
                state,
                server,
                match key {
                    None => Asked::Evaluation,
                    Some(_) if key_accepted_before(&product) => Asked::AcceptedKey,
                    Some(_) => Asked::NewKey,
                },
                Intent::Activate,
            )
            .await?;
        if let Some(pending) = &mut pending
            && let Outcome::Accepted { grant, .. } = &outcome
            && pending.outcome == AttemptOutcome::NoAnswer
        {
            // The server answered the stored key and ignored the new one: the new key is
            // what it did not accept, not the network or the clock.
            pending.diagnosis = vec![Cause::KeyMayBeRefused];
            pending.server.clone_from(&grant.server);
        }
        if binding == KeyBinding::Unbound && matches!(outcome, Outcome::Accepted { .. }) {
            self.bind_key_stored_unbound(id, manifest.server_keys.ed25519_bytes());
        }
        Ok(Attempted {
            at: now,
            evaluation_started,
            outcome,
            pending: match pending {
                Some(not_accepted) => Some(PendingTry::NotAccepted(not_accepted)),
                None if pending_gone => Some(PendingTry::Gone),
                None => None,
            },
        })
    }

    /// One exchange with `key` (none: an evaluation), racing the product's servers: the
    /// grant won, or why none was.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn exchange(
        &self,
        manifest: &Manifest,
        key: Option<&LicenseKey>,
        facts: &crate::identity::MachineFacts,
        nonce: [u8; 16],
        product: &ProductState,
        policy: &Policy,
        state: &State,
        server: Option<SocketAddr>,
        asked: Asked,
        intent: Intent,
    ) -> Result<Outcome, EngineError> {
        let id = manifest.id.as_str();
        let generation = self.generation_to_send(id, product)?;
        let (build, sent) =
            request_builder(manifest, key, facts, nonce, product, intent, generation)?;
        if intent == Intent::Release && !sent.extensions {
            return Err(EngineError::NoRoomForRelease(id.to_owned()));
        }
        let release = intent == Intent::Release;

        let settings = settings_for(policy, manifest, state);
        let servers = match server {
            Some(address) => {
                // A server forced for one run is still a user's choice: a locked policy refuses it.
                if policy.server.locked {
                    return Err(EngineError::PolicyLocked(
                        policy.server.address.clone().unwrap_or_default(),
                    ));
                }
                Servers::Forced(address)
            }
            None if silent_override_ends_the_attempt(policy, &settings) => {
                Servers::ManualOnly(&settings)
            }
            None => Servers::Discover(&settings),
        };
        // The servers race in the profile's order (see `race`); the first valid answer wins.
        let parts = server_race::Parts {
            discovery: &self.discovery,
            data_dir: &self.config.data_dir,
            clock: self.config.clock.as_ref(),
            entropy: self.config.entropy.as_ref(),
            retry: &self.config.retry,
            budget: self.config.discovery.exchange_timeout,
        };
        let raced = server_race::race(
            parts,
            id,
            &manifest.server_keys,
            servers,
            &build,
            |used, activation| {
                let invalid = |e: ServerDataError| Cause::InvalidServerData {
                    address: used.address.clone(),
                    error: e.to_string(),
                };
                let data = ServerData::parse(&activation.response.server_data).map_err(invalid)?;
                if release && data.confirms_release(activation.response.server_time) {
                    return Ok(Answer::Released);
                }
                let received = self.config.clock.now();
                let grant = grant_from(activation, received, Some(used.clone()), key.is_none())
                    .map_err(invalid)?;
                Ok(Answer::Granted {
                    grant: Box::new(grant),
                    record: Box::new(ActivationRecord::new(id, activation)),
                    duplicate: data.duplicate,
                })
            },
        )
        .await?;
        let tried = raced.tried_with_network();
        if let Some((winner, answer)) = raced.won {
            let lifecycle = |moved: bool, duplicate: bool| {
                // The answer counts: the keyring first (it outlives the state file); should it
                // fail, the state's count still moves on at the commit.
                let generation = generation.saturating_add(1);
                if let Err(e) = self.config.secrets.set_generation(id, generation) {
                    tracing::warn!(product = id, error = %e, "cannot keep the answer count in the keyring; the state file keeps it");
                }
                Lifecycle {
                    generation,
                    machine_hash: hex::encode(sent.machine_hash),
                    moved,
                    duplicate,
                }
            };
            let (grant, record, duplicate) = match answer {
                Answer::Released => {
                    return Ok(Outcome::Released {
                        at: self.config.clock.now(),
                        lifecycle: lifecycle(false, false),
                    });
                }
                Answer::Granted {
                    grant,
                    record,
                    duplicate,
                } => (grant, record, duplicate),
            };
            let moved = sent.previous_machine_hash
                && product
                    .grant
                    .as_ref()
                    .is_some_and(|g| g.license_id == grant.license_id);
            let notes = if server.is_some() {
                Vec::new()
            } else {
                let mut notes = raced.overrides_not_found;
                notes.extend(ranking::silent_overrides(&tried, Some(&winner.address)));
                notes
            };
            return Ok(Outcome::Accepted {
                grant,
                record,
                notes,
                lifecycle: lifecycle(moved, duplicate),
            });
        }
        if raced.tried.is_empty() {
            return Ok(Outcome::NotSent(Cause::NoServerFound {
                skipped: raced.skipped,
            }));
        }
        let rejections = raced.rejections;
        let first_tried = raced.tried.first().cloned();
        let outcome = if rejections.is_empty() {
            AttemptOutcome::NoAnswer
        } else {
            AttemptOutcome::RejectedAnswer
        };
        let diagnosis = ranking::rank(Evidence {
            asked,
            override_new: override_new(product, state),
            tried,
            rejections,
            forced: server.is_some(),
            overrides_not_found: raced.overrides_not_found,
        });
        Ok(Outcome::Failed {
            outcome,
            diagnosis,
            server: first_tried,
        })
    }

    /// The answer count to send (profile 1.1, §9 Generation): the higher of the state's and
    /// the keyring's, so neither a lost state file nor a keyring written by a newer run
    /// sends a count the server would take for a restored snapshot.
    fn generation_to_send(&self, id: &str, product: &ProductState) -> Result<u32, EngineError> {
        let kept = self.config.secrets.get_generation(id)?.unwrap_or(0);
        Ok(product.generation.max(kept))
    }

    /// The pending key, if any (see [`SecretItem::PendingLicenseKey`]); the all-zero key
    /// counts as none, as for the stored key.
    fn pending_key(&self, id: &str) -> Result<Option<LicenseKey>, EngineError> {
        Ok(self
            .config
            .secrets
            .get_pending_license_key(id)?
            .map(|k| LicenseKey::from_bytes(*k))
            .filter(|k| !k.is_evaluation()))
    }

    /// A server accepted the pending key: it becomes the license key, bound to that server.
    /// The binding first, as in `set_key`; the pending item last, so a failure between
    /// leaves it to be tried (and promoted) again.
    fn promote_pending_key(
        &self,
        id: &str,
        key: &LicenseKey,
        server_ed25519: &[u8; 32],
    ) -> Result<(), EngineError> {
        let secrets = &self.config.secrets;
        secrets.set_license_key_server(id, server_ed25519)?;
        secrets.set_license_key(id, key.as_bytes())?;
        secrets.delete(id, SecretItem::PendingLicenseKey)?;
        Ok(())
    }

    /// Binds a key stored before keys were bound to the server that just answered it. Not
    /// binding only delays the migration to the next activation: the grant stands.
    fn bind_key_stored_unbound(&self, id: &str, server_ed25519: &[u8; 32]) {
        if let Err(e) = self
            .config
            .secrets
            .set_license_key_server(id, server_ed25519)
        {
            tracing::warn!(product = id, error = %e, "cannot bind the license key to its server key; retried at the next activation");
        }
    }

    /// The product's install nonce, made and stored in the keyring if it has none yet.
    pub(crate) fn install_nonce(&self, id: &str) -> Result<[u8; 16], EngineError> {
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

    /// Forgets a product: its state, its record and its secrets (its client ids included).
    /// Its add-ons keep the ClientBaseId they were given: ids are static for an add-on's
    /// installation, and the base, provisioned again, takes that id back from them (see
    /// `client_ids`).
    pub fn forget(&self, id: &str) -> Result<(), EngineError> {
        self.config.secrets.forget_product(id)?;
        self.store.update(|state| state.products.remove(id))?;
        remove_record(&self.config.data_dir, id).map_err(|source| StateError::Io {
            path: crate::records::records_dir(&self.config.data_dir),
            source,
        })?;
        Ok(())
    }
}

/// The attempt of a product the vendor released for good: nothing is sent, since an answer
/// must not replace the sunset record.
fn sunset_stands(product: &ProductState, now: u64) -> Option<Attempted> {
    product.sunset.as_ref().map(|_| Attempted {
        at: now,
        evaluation_started: None,
        outcome: Outcome::Sunset,
        pending: None,
    })
}

/// What one exchange's first valid answer was. Boxed: a release carries nothing.
enum Answer {
    Granted {
        grant: Box<crate::state::Grant>,
        record: Box<ActivationRecord>,
        duplicate: bool,
    },
    /// The release asked for was confirmed (profile 1.1, §9).
    Released,
}

/// Why `id` is not in the catalog: an add-on waiting for its base, or no such product.
fn not_installed(catalog: &Catalog, id: &str) -> EngineError {
    match catalog.waiting_for_base.get(id) {
        Some(base) => EngineError::BaseNotInstalled {
            addon: id.to_owned(),
            base: base.clone(),
        },
        None => EngineError::UnknownProduct(id.to_owned()),
    }
}

/// Whether a silent user override ends the attempt: the policy forbids falling back, and a
/// user's override is what discovery would ask first (a locked policy ignores overrides).
fn silent_override_ends_the_attempt(policy: &Policy, settings: &ServerSettings) -> bool {
    !policy.server.fallback_when_override_silent
        && !settings.policy_locked
        && (settings.product_override.is_some() || settings.global_override.is_some())
}

/// Whether the stored key has been accepted since it was stored: a grant won with a key,
/// received after the key was stored (a state from before keys were dated counts its keyed
/// grant as the key's).
fn key_accepted_before(product: &ProductState) -> bool {
    product
        .grant
        .as_ref()
        .filter(|g| !g.without_key)
        .is_some_and(|g| product.key_set_at.is_none_or(|at| at <= g.received_at))
}

/// Whether the override in effect was set after the last accepted grant (or nothing was
/// granted since): a change made just before the failure, the first suspect.
fn override_new(product: &ProductState, state: &State) -> bool {
    let set_at = if product.server_override.is_some() {
        product.override_set_at
    } else if state.global_override.is_some() {
        state.global_override_set_at
    } else {
        None
    };
    set_at.is_some_and(|at| product.grant.as_ref().is_none_or(|g| g.received_at < at))
}

/// What discovery is given for a product under this policy.
pub(crate) fn settings_for(policy: &Policy, manifest: &Manifest, state: &State) -> ServerSettings {
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
        allow_local_addresses: policy.discovery.allow_local_addresses,
    }
}

/// What a request says of the installation beyond the 1.0 seed (profile 1.1, §2.1).
#[derive(Debug, Clone, Copy)]
struct SentExtensions {
    /// This machine's MachineHash for this server.
    machine_hash: [u8; 32],
    /// Whether the seed's Room carries the extensions (they fit the manifest's room).
    extensions: bool,
    /// Whether PreviousMachineHash was among them.
    previous_machine_hash: bool,
}

/// The extensions of one request: the intent, the answer count, and the MachineHash of the
/// last accepted answer when it differs from this machine's.
fn seed_extensions(
    product: &ProductState,
    intent: Intent,
    generation: u32,
    machine_hash: &[u8; 32],
) -> SeedExtensions {
    let previous = product
        .machine_hash
        .as_deref()
        .and_then(|text| hex::decode(text).ok())
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .filter(|previous| previous != machine_hash);
    SeedExtensions {
        intent,
        previous_machine_hash: previous,
        generation: Some(generation),
        ..SeedExtensions::default()
    }
}

/// The request of one attempt, made afresh for each send (only ClientTime changes): the seed
/// with the key (or zeros for an evaluation), the machine hash for this server, the ids, and
/// the seed extensions when they fit the manifest's room. A retry of an unanswered request
/// sends the same extensions: the count only moves on an accepted answer.
fn request_builder(
    manifest: &Manifest,
    key: Option<&LicenseKey>,
    facts: &crate::identity::MachineFacts,
    nonce: [u8; 16],
    product: &ProductState,
    intent: Intent,
    generation: u32,
) -> Result<(impl Fn(u64) -> Request + use<>, SentExtensions), EngineError> {
    let machine_hash =
        lap_proto::machine_hash(manifest.server_keys.ed25519_bytes(), &facts.anchor_digest);
    let seed = SeedV1 {
        decoded_key: key.map_or([0; 16], |k| *k.as_bytes()),
        machine_hash,
        num_cpus: facts.num_cpus,
        num_cores: facts.num_cores,
        install_nonce: nonce,
    };
    let mut extensions = seed_extensions(product, intent, generation, &machine_hash);
    // The end byte is needed only when records do not fill the room exactly; counting it
    // always errs on the safe side.
    if extensions.encoded_len() + 1 > manifest.response_room {
        tracing::warn!(
            product = %manifest.id,
            room = manifest.response_room,
            needed = extensions.encoded_len() + 1,
            "the seed extensions do not fit the manifest's response_room: sent without them"
        );
        extensions = SeedExtensions::default();
    }
    let sent = SentExtensions {
        machine_hash,
        extensions: !extensions.is_empty(),
        previous_machine_hash: extensions.previous_machine_hash.is_some(),
    };
    let seed_bytes = seed
        .encode_with_extensions(manifest.response_room, &extensions)
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
    Ok((build, sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::FixedIdentity;
    use std::path::Path;

    fn manifest(response_room: usize) -> Manifest {
        let text = format!(
            "schema = 1\nid = \"acme\"\nname = \"Acme\"\nvendor = \"Acme\"\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nresponse_room = {response_room}\n[server]\nx25519 = \"4954728102f02d2917df9aabf24634d4a3a3b83312273e818e40da0cf2755623\"\ned25519 = \"a72f4e02db405c0582a48e79f4830538bccc150e4ccda0404e03f4a190e12356\"\n"
        );
        Manifest::parse(&text, Path::new("acme.toml")).expect("valid")
    }

    /// The extensions a request built for `product` on anchor `[7; 32]` carries.
    fn sent(room: usize, product: &ProductState, intent: Intent) -> (SeedExtensions, bool) {
        let facts = FixedIdentity::new([7; 32]).0;
        let (build, sent) =
            request_builder(&manifest(room), None, &facts, [1; 16], product, intent, 4)
                .expect("builds");
        let request = build(0);
        let (_, extensions) =
            SeedV1::decode_with_extensions(&request.client_seed).expect("a valid seed");
        (extensions, sent.previous_machine_hash)
    }

    #[test]
    fn the_previous_machine_hash_is_sent_only_when_this_machine_s_differs() {
        let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        let (extensions, previous) = sent(128, &product, Intent::Activate);
        assert_eq!(
            (
                extensions.generation,
                extensions.previous_machine_hash,
                previous
            ),
            (Some(4), None, false),
            "never answered: nothing to move from"
        );
        let ed25519 = *manifest(128).server_keys.ed25519_bytes();
        product.machine_hash = Some(hex::encode(lap_proto::machine_hash(&ed25519, &[7; 32])));
        assert_eq!(
            sent(128, &product, Intent::Activate)
                .0
                .previous_machine_hash,
            None
        );
        let old = lap_proto::machine_hash(&ed25519, &[6; 32]);
        product.machine_hash = Some(hex::encode(old));
        let (extensions, previous) = sent(128, &product, Intent::Release);
        assert_eq!(
            (
                extensions.previous_machine_hash,
                previous,
                extensions.intent
            ),
            (Some(old), true, Intent::Release)
        );
    }

    #[test]
    fn extensions_that_do_not_fit_the_room_are_not_sent_at_all() {
        let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        product.machine_hash = Some("00".repeat(32));
        // Generation (7 bytes) and PreviousMachineHash (35) and the end byte: 43.
        let (extensions, previous) = sent(42, &product, Intent::Activate);
        assert_eq!((extensions, previous), (SeedExtensions::default(), false));
        let (extensions, _) = sent(43, &product, Intent::Activate);
        assert_eq!(extensions.generation, Some(4));
    }
}
