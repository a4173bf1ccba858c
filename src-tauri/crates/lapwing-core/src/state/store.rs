//! Durable state, the file: one JSON file per user, written atomically (temp file, fsync,
//! rename) under an exclusive lock, so the tray and `lapctl` can run at once without losing
//! each other's updates. A file that cannot be read is set aside (kept, named in a warning)
//! and the state is rebuilt from the keyring and the activation records: never silently reset.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{STATE_SCHEMA, State};

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
        prepare_data_dir(&self.dir).map_err(Self::io(&self.dir))?;
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
        // A writer killed between writing and renaming leaves its temporary; under the lock
        // no other write of the state is under way, so every one of them is such a leftover.
        lapwing_fs::remove_temporaries_under_lock(&self.path());
        write_atomically(&self.path(), text.as_bytes(), 0o600).map_err(Self::io(&self.path()))?;
        self.saves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
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

fn unique_path(path: PathBuf) -> PathBuf {
    if !path.exists() {
        return path;
    }
    (1..10_000)
        .map(|n| PathBuf::from(format!("{}.{n}", path.display())))
        .find(|p| !p.exists())
        .unwrap_or(path)
}

/// Creates the data directory owner-only (0700), or narrows it to that when it exists
/// looser: it holds the state, the records (with their session keys) and perhaps the
/// insecure secret file. Every writer calls it before writing there.
pub fn prepare_data_dir(data_dir: &Path) -> std::io::Result<()> {
    if let Some(was) = lapwing_fs::create_private_dir(data_dir)? {
        tracing::info!(
            dir = %data_dir.display(),
            was = format_args!("{was:o}"),
            now = "700",
            "the data directory was readable by other users: narrowed to its owner"
        );
    }
    Ok(())
}

pub use lapwing_fs::write_atomically;
