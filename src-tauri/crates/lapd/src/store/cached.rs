//! The store the server uses: a backend behind bounded caches.
//!
//! Memory stays flat in the seat count: at most [`SEAT_CACHE`] seats and [`USAGE_CACHE`]
//! licenses are kept, the least recently asked for going first. A cached seat is trusted for
//! [`SEAT_TRUST_SECS`], a license's count for [`USAGE_TRUST_SECS`]; after that they are read
//! again. When the database cannot be reached, a machine whose seat is cached is answered from
//! the cache (however old), and no new seat is given: the database is not tried again for
//! [`RETRY_SECS`], so that requests do not each wait for a connection that will not come.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use hashlink::LruCache;

use super::location::DbLocation;
use super::model::{Assignment, MachineHash, SeatStore, StoreError, Take, Taken, Usage};
use super::sqlite::SqliteStore;

/// Seats kept in memory (about 150 bytes each).
pub const SEAT_CACHE: usize = 100_000;
/// Licenses whose counts are kept in memory.
pub const USAGE_CACHE: usize = 20_000;
/// How long a cached seat is answered without asking the database. Seats never change once
/// taken today; when releases and moves land, this is how late another server hears of one.
pub const SEAT_TRUST_SECS: u64 = 300;
/// How long a license's seat count is used without asking: it only sets InCompliance (for
/// licenses allowing overuse) and the start of day-counted terms for returning machines.
pub const USAGE_TRUST_SECS: u64 = 5;
/// How long an unreachable database is left alone before it is tried again.
pub const RETRY_SECS: u64 = 3;

#[derive(Debug, Clone, Copy)]
struct Cached<T> {
    value: T,
    /// UNIX seconds of the read.
    read_at: u64,
}

impl<T: Copy> Cached<T> {
    fn fresh(&self, now: u64, trust: u64) -> Option<T> {
        (now.saturating_sub(self.read_at) < trust && self.read_at <= now).then_some(self.value)
    }
}

/// Seat assignments, read and written through one backend.
#[derive(Debug)]
pub struct Store {
    backend: Box<dyn SeatStore>,
    seats: Mutex<LruCache<(String, MachineHash), Cached<Assignment>>>,
    usages: Mutex<LruCache<String, Cached<Usage>>>,
    /// UNIX seconds before which the database is taken as unreachable.
    down_until: AtomicU64,
}

impl Store {
    pub fn new(backend: Box<dyn SeatStore>) -> Self {
        Self::with_capacity(backend, SEAT_CACHE, USAGE_CACHE)
    }

    pub fn with_capacity(backend: Box<dyn SeatStore>, seats: usize, licenses: usize) -> Self {
        Self {
            backend,
            seats: Mutex::new(LruCache::new(seats.max(1))),
            usages: Mutex::new(LruCache::new(licenses.max(1))),
            down_until: AtomicU64::new(0),
        }
    }

    /// Opens the database at `location` (migrating it forward) behind the caches.
    pub fn open(location: &DbLocation) -> Result<Self, StoreError> {
        Ok(Self::new(location.open()?))
    }

    /// An in-memory SQLite store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::new(Box::new(SqliteStore::in_memory()?)))
    }

    /// The backend itself, uncached.
    pub fn backend(&self) -> &dyn SeatStore {
        self.backend.as_ref()
    }

    fn down(&self, now: u64) -> bool {
        now < self.down_until.load(Ordering::Relaxed)
    }

    /// Notes an unreachable database, so that it is left alone for a while.
    fn note(&self, error: StoreError, now: u64) -> StoreError {
        if error.is_unreachable() {
            tracing::warn!(%error, "seat database unreachable; answering from the cache");
            self.down_until
                .store(now.saturating_add(RETRY_SECS), Ordering::Relaxed);
        }
        error
    }

    fn cache_seat(&self, license: &str, machine: &MachineHash, seat: Assignment, now: u64) {
        self.seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                (license.to_owned(), *machine),
                Cached {
                    value: seat,
                    read_at: now,
                },
            );
    }

    fn cache_usage(&self, license: &str, usage: Usage, now: u64) {
        self.usages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                license.to_owned(),
                Cached {
                    value: usage,
                    read_at: now,
                },
            );
    }

    /// The machine's seat under this license, if it has one, at server time `now`.
    pub fn seat(
        &self,
        license: &str,
        machine: &MachineHash,
        now: u64,
    ) -> Result<Option<Assignment>, StoreError> {
        let key = (license.to_owned(), *machine);
        let cached = self
            .seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(seat) = cached.and_then(|c| c.fresh(now, SEAT_TRUST_SECS)) {
            return Ok(Some(seat));
        }
        let read = if self.down(now) {
            Err(StoreError::Unavailable)
        } else {
            self.backend
                .seat(license, machine)
                .map_err(|e| self.note(e, now))
        };
        match read {
            Ok(Some(seat)) => {
                self.cache_seat(license, machine, seat, now);
                Ok(Some(seat))
            }
            Ok(None) => {
                self.seats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&key);
                Ok(None)
            }
            Err(error) => match cached {
                Some(stale)
                    if matches!(error, StoreError::Unavailable) || error.is_unreachable() =>
                {
                    Ok(Some(stale.value))
                }
                _ => Err(error),
            },
        }
    }

    /// The license's seat count and first use, at server time `now`.
    pub fn usage(&self, license: &str, now: u64) -> Result<Usage, StoreError> {
        let cached = self
            .usages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(license)
            .copied();
        if let Some(usage) = cached.and_then(|c| c.fresh(now, USAGE_TRUST_SECS)) {
            return Ok(usage);
        }
        let read = if self.down(now) {
            Err(StoreError::Unavailable)
        } else {
            self.backend.usage(license).map_err(|e| self.note(e, now))
        };
        match read {
            Ok(usage) => {
                self.cache_usage(license, usage, now);
                Ok(usage)
            }
            Err(error) => match cached {
                Some(stale)
                    if matches!(error, StoreError::Unavailable) || error.is_unreachable() =>
                {
                    Ok(stale.value)
                }
                _ => Err(error),
            },
        }
    }

    /// Takes a seat if the limit allows (see [`SeatStore::take_seat`]); never from the cache.
    pub fn take_seat(&self, take: &Take<'_>) -> Result<Taken, StoreError> {
        if self.down(take.now) {
            return Err(StoreError::Unavailable);
        }
        let taken = self
            .backend
            .take_seat(take)
            .map_err(|e| self.note(e, take.now))?;
        if let Taken::New { seat, usage } | Taken::Held { seat, usage } = taken {
            self.cache_seat(take.license, take.machine, seat, take.now);
            self.cache_usage(take.license, usage, take.now);
        }
        Ok(taken)
    }

    /// How many seats of this license were taken at or after `since` (read each time; not
    /// tried while the database is unreachable, at server time `now`).
    pub fn seats_taken_since(
        &self,
        license: &str,
        since: u64,
        now: u64,
    ) -> Result<u32, StoreError> {
        if self.down(now) {
            return Err(StoreError::Unavailable);
        }
        self.backend
            .seats_taken_since(license, since)
            .map_err(|e| self.note(e, now))
    }

    /// Every seat, every license together (read each time).
    pub fn seat_count(&self) -> Result<u64, StoreError> {
        self.backend.seat_count()
    }

    /// How many seats the cache holds now (at most [`SEAT_CACHE`]).
    pub fn cached_seats(&self) -> usize {
        self.seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
