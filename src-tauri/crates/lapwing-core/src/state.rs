//! Durable state: what Lapwing knows about each product between runs.
//!
//! One JSON file per user, written atomically (temp file, fsync, rename) under an exclusive
//! lock, so the tray and `lapctl` can run at once without losing each other's updates. A file
//! that cannot be read is set aside (kept, named in a warning) and the state is rebuilt from
//! the keyring and the activation records: never silently reset.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use lap_proto::{LicenseKind, Uuid};
use serde::{Deserialize, Serialize};

/// The schema this version writes. Older schemas are migrated; newer ones are refused.
pub const STATE_SCHEMA: u32 = 1;
pub const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "state.lock";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} was written by a newer Lapwing (schema {found}, this one reads {STATE_SCHEMA}); \
         it was left untouched: update Lapwing"
    )]
    NewerSchema { path: PathBuf, found: u32 },
}

pub use lapwing_discovery::ServerSource;

/// A server used for an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerUsed {
    pub address: String,
    pub source: ServerSource,
}

/// What the last successful activation granted (decoded from the signed ServerData).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub license_id: Uuid,
    pub server_time: u64,
    /// Local time when it was received.
    pub received_at: u64,
    pub not_after: Option<u64>,
    pub renew_after: Option<u64>,
    pub kind: Option<GrantKind>,
    pub in_compliance: Option<bool>,
    #[serde(default)]
    pub features: Vec<String>,
    pub notice: Option<String>,
    pub server: Option<ServerUsed>,
    /// True when the license key in use when this was granted was none (an evaluation).
    #[serde(default)]
    pub without_key: bool,
}

impl Grant {
    /// The grant a verified answer's ServerData describes.
    pub fn from_server_data(
        response: &lap_proto::Response,
        data: lap_proto::ServerData,
        received_at: u64,
        server: Option<ServerUsed>,
        without_key: bool,
    ) -> Self {
        Self {
            license_id: response.license_id,
            server_time: response.server_time,
            received_at,
            not_after: data.not_after,
            renew_after: data.renew_after,
            kind: data.kind.map(Into::into),
            in_compliance: data.in_compliance,
            features: data.features,
            notice: data.notice,
            server,
            without_key,
        }
    }
}

/// The license kinds, as words in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    Perpetual,
    Term,
    Subscription,
    Evaluation,
}

impl From<LicenseKind> for GrantKind {
    fn from(kind: LicenseKind) -> Self {
        match kind {
            LicenseKind::Term => Self::Term,
            LicenseKind::Subscription => Self::Subscription,
            LicenseKind::Evaluation => Self::Evaluation,
            // Perpetual, and any kind a later profile adds, read as "no end by kind".
            _ => Self::Perpetual,
        }
    }
}

/// How the last attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: u64,
    pub outcome: AttemptOutcome,
    /// Likely causes, most likely first, each a sentence for a person.
    #[serde(default)]
    pub diagnosis: Vec<String>,
    pub server: Option<ServerUsed>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    Activated,
    /// Silence from every server tried.
    NoAnswer,
    /// An answer that failed a check (signature, echo, TLV): named in the diagnosis.
    RejectedAnswer,
    /// Nothing was sent: a local check failed (no server found, bad key, keyring locked).
    NotSent,
}

/// The retry backoff after failures (profile §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    pub first_failure_at: u64,
    pub failures: u32,
    pub next_at: u64,
}

/// Everything kept per product installation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductState {
    pub client_base_id: Uuid,
    /// Nil for a base product.
    pub client_addon_id: Uuid,
    pub grant: Option<Grant>,
    pub last_attempt: Option<Attempt>,
    pub backoff: Option<Backoff>,
    /// Also in the keyring, so deleting this file does not restart an evaluation.
    pub evaluation_started: Option<u64>,
    /// Warning points already shown, e.g. "not-after/30d" (each at most once).
    #[serde(default)]
    pub warnings_sent: Vec<String>,
    pub server_override: Option<String>,
    /// Whether a license key is stored (the key itself lives only in the keyring): lets the
    /// status be read without a keyring round trip per product.
    #[serde(default)]
    pub has_key: bool,
}

impl ProductState {
    pub fn new(client_base_id: Uuid, client_addon_id: Uuid) -> Self {
        Self {
            client_base_id,
            client_addon_id,
            grant: None,
            last_attempt: None,
            backoff: None,
            evaluation_started: None,
            warnings_sent: Vec::new(),
            server_override: None,
            has_key: false,
        }
    }
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    /// The latest wall-clock time ever seen: a clock set before it moved back.
    #[serde(default)]
    pub highest_time_seen: u64,
    pub global_override: Option<String>,
    /// The machine anchor source chosen at first activation (profile §3: kept while present).
    pub pinned_anchor: Option<String>,
    /// Where an unreadable state file was set aside when this one was rebuilt.
    #[serde(default)]
    pub recovered_from: Option<String>,
    #[serde(default)]
    pub products: BTreeMap<String, ProductState>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            schema: STATE_SCHEMA,
            highest_time_seen: 0,
            global_override: None,
            pinned_anchor: None,
            recovered_from: None,
            products: BTreeMap::new(),
        }
    }
}

/// What loading found beyond the state itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Where an unreadable file was moved, and why it was unreadable.
    pub set_aside: Option<(PathBuf, String)>,
}

/// The state directory and its lock.
#[derive(Clone)]
pub struct StateStore {
    dir: PathBuf,
    rebuild: Option<Rebuild>,
    /// State files written by this store and its clones: each is a durable commit (two
    /// flushes), so tests hold batches of activations to one.
    saves: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Fills an empty state from what survives elsewhere (keyring, activation records) after an
/// unreadable state file was set aside.
pub type Rebuild = std::sync::Arc<dyn Fn(&mut State) + Send + Sync>;

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("dir", &self.dir)
            .field("rebuild", &self.rebuild.is_some())
            .field("saves", &self.saves())
            .finish()
    }
}

/// An exclusive hold on the state; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            rebuild: None,
            saves: std::sync::Arc::default(),
        }
    }

    /// A store that rebuilds (and saves at once) a state whose file had to be set aside.
    pub fn with_rebuild(dir: impl Into<PathBuf>, rebuild: Rebuild) -> Self {
        Self {
            dir: dir.into(),
            rebuild: Some(rebuild),
            saves: std::sync::Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// How many times this store (or a clone of it) has written the state file.
    pub fn saves(&self) -> u64 {
        self.saves.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
        let path = path.to_owned();
        move |source| StateError::Io { path, source }
    }

    /// Takes the exclusive lock, creating the directory if needed. Blocks while another
    /// process holds it (writes take milliseconds).
    pub fn lock(&self) -> Result<StateLock, StateError> {
        std::fs::create_dir_all(&self.dir).map_err(Self::io(&self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Self::io(&path))?;
        file.lock().map_err(Self::io(&path))?;
        Ok(StateLock { _file: file })
    }

    /// Reads the state. Call with the lock held. A missing file is an empty state; an
    /// unreadable one is moved aside and reported, and an empty state is returned for the
    /// caller to rebuild.
    pub fn load(&self, lock: &StateLock) -> Result<(State, LoadReport), StateError> {
        let path = self.path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((State::default(), LoadReport::default()));
            }
            Err(e) => return Err(Self::io(&path)(e)),
        };
        match State::parse(&bytes) {
            Ok(state) if state.schema > STATE_SCHEMA => Err(StateError::NewerSchema {
                path,
                found: state.schema,
            }),
            Ok(state) => Ok((state, LoadReport::default())),
            Err(reason) => {
                let aside = self
                    .dir
                    .join(format!("{STATE_FILE}.corrupt-{}", std::process::id()));
                let aside = unique_path(aside);
                std::fs::rename(&path, &aside).map_err(Self::io(&path))?;
                tracing::warn!(file = %aside.display(), %reason, "the state file could not be read: set aside and rebuilt");
                let mut state = State {
                    recovered_from: Some(aside.display().to_string()),
                    ..State::default()
                };
                if let Some(rebuild) = &self.rebuild {
                    rebuild(&mut state);
                    // Saved at once, so that no reader rebuilds it a second time.
                    self.save(lock, &state)?;
                }
                Ok((
                    state,
                    LoadReport {
                        set_aside: Some((aside, reason)),
                    },
                ))
            }
        }
    }

    /// Writes the state atomically. Call with the lock held.
    pub fn save(&self, _lock: &StateLock, state: &State) -> Result<(), StateError> {
        let mut text = serde_json::to_string_pretty(state).unwrap_or_default();
        text.push('\n');
        self.remove_stale_temporaries();
        write_atomically(&self.path(), text.as_bytes(), 0o600).map_err(Self::io(&self.path()))?;
        self.saves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A writer killed between writing and renaming leaves its temporary file. Under the
    /// lock no other writer of this file is at work, so every such file is stale.
    fn remove_stale_temporaries(&self) {
        let prefix = format!(".{STATE_FILE}.tmp-");
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Load, change, save, under one lock: the way every writer changes the state.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut State) -> T,
    ) -> Result<(T, LoadReport), StateError> {
        let lock = self.lock()?;
        let (mut state, report) = self.load(&lock)?;
        let before = state.clone();
        let out = change(&mut state);
        // An unchanged state is not written: no needless disk writes, and watchers of the
        // file are not woken for nothing.
        if state != before {
            self.save(&lock, &state)?;
        }
        Ok((out, report))
    }
}

impl State {
    /// Decodes a state file's bytes. The reason names a place and a category, never the
    /// text itself (a state file holds no secret, but a corrupt one may hold anything).
    pub fn parse(bytes: &[u8]) -> Result<State, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        serde_json::from_str(text).map_err(|e| {
            format!(
                "not a valid state file (line {}, column {}: {})",
                e.line(),
                e.column(),
                classify(&e)
            )
        })
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Eof => "truncated",
    }
}

fn unique_path(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    (1..10_000)
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

pub use lapwing_fs::write_atomically;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        let mut state = State {
            highest_time_seen: 1_795_000_000,
            ..State::default()
        };
        let mut product = ProductState::new(Uuid::from_u128(1), Uuid::nil());
        product.grant = Some(Grant {
            license_id: Uuid::from_u128(2),
            server_time: 1_795_000_000,
            received_at: 1_795_000_001,
            not_after: Some(1_800_000_000),
            renew_after: None,
            kind: Some(GrantKind::Term),
            in_compliance: Some(true),
            features: vec!["pro".into()],
            notice: None,
            server: Some(ServerUsed {
                address: "127.0.0.1:4711".into(),
                source: ServerSource::Srv,
            }),
            without_key: false,
        });
        state.products.insert("acme".into(), product);
        state
    }

    #[test]
    fn saves_and_loads_the_same_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path());
        let lock = store.lock().expect("lock");
        store.save(&lock, &sample()).expect("save");
        let (loaded, report) = store.load(&lock).expect("load");
        assert_eq!(loaded, sample());
        assert_eq!(report, LoadReport::default());
        let text = std::fs::read_to_string(store.path()).expect("read");
        assert!(text.contains("\"source\": \"srv\""), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .expect("meta")
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_not_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path());
        std::fs::write(store.path(), b"{\"schema\": 1, \"products\": {\"acme\": ").expect("write");
        let lock = store.lock().expect("lock");
        let (state, report) = store.load(&lock).expect("load");
        let (aside, reason) = report.set_aside.expect("reported");
        assert_eq!(
            state,
            State {
                recovered_from: Some(aside.display().to_string()),
                ..State::default()
            }
        );
        assert!(reason.contains("truncated"), "{reason}");
        assert_eq!(
            std::fs::read(&aside).expect("kept"),
            b"{\"schema\": 1, \"products\": {\"acme\": "
        );
        assert!(!store.path().exists());
    }

    #[test]
    fn a_newer_schema_is_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path());
        std::fs::write(store.path(), b"{\"schema\": 99}").expect("write");
        let lock = store.lock().expect("lock");
        assert!(matches!(
            store.load(&lock),
            Err(StateError::NewerSchema { found: 99, .. })
        ));
        assert_eq!(
            std::fs::read(store.path()).expect("kept"),
            b"{\"schema\": 99}"
        );
    }

    #[test]
    fn concurrent_updates_are_never_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::new(dir.path());
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..25 {
                        store.update(|s| s.highest_time_seen += 1).expect("update");
                    }
                });
            }
        });
        let lock = store.lock().expect("lock");
        assert_eq!(store.load(&lock).expect("load").0.highest_time_seen, 200);
    }
}
