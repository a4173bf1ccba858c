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

use super::group::{CommitStats, GroupCommit, Queued};
use super::location::DbLocation;
use super::model::{
    Assignment, Lease, MachineHash, Move, Moved, PoolAsk, PoolGrant, Released, SeatStore,
    StoreError, Take, Taken, Touch, TransferCap, Usage, Written,
};
use super::sqlite::SqliteStore;

/// Seats kept in memory (about 150 bytes each).
pub const SEAT_CACHE: usize = 100_000;
/// Licenses whose counts are kept in memory.
pub const USAGE_CACHE: usize = 20_000;
/// How long a cached seat is answered without asking the database: how late this server hears
/// of a seat released or moved by another process (another server on the same database, or
/// `lapd seats release`). Releases and moves through this store update the cache at once.
/// Short, because a freed seat answered from the cache is a grant the vendor took back; a
/// returning machine costs one indexed read per this many seconds at most.
pub const SEAT_TRUST_SECS: u64 = 30;
/// A renewal that changes nothing else writes the seat's last-seen time only when the stored
/// one is older than this: leases count in days, and most renewals stay reads.
pub const LAST_SEEN_GRANULARITY_SECS: u64 = 3_600;
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
    /// New seats and renewals that write share commits.
    group: GroupCommit,
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
            group: GroupCommit::default(),
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

    /// The license's seat count read from the database now (and cached): before a machine is
    /// refused for a full license, so that a seat freed by another process counts at once.
    pub fn usage_uncached(&self, license: &str, now: u64) -> Result<Usage, StoreError> {
        self.forget_usage(license);
        self.usage(license, now)
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
            .group
            .write(self.backend.as_ref(), Queued::take(take))
            .and_then(Written::taken)
            .map_err(|e| self.note(e, take.now))?;
        if let Taken::New { seat, usage } | Taken::Held { seat, usage } = taken {
            self.cache_seat(take.license, take.machine, seat, take.now);
            self.cache_usage(take.license, usage, take.now);
        }
        Ok(taken)
    }

    fn forget_seat(&self, license: &str, machine: &MachineHash) {
        self.seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(license.to_owned(), *machine));
    }

    fn forget_usage(&self, license: &str) {
        self.usages
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(license);
    }

    /// Records an answer to a machine holding `known` (its seat as just read): writes only
    /// when something the lifecycle needs changed (see [`LAST_SEEN_GRANULARITY_SECS`]).
    /// Returns the seat as it was before, from the database when written, else `known`;
    /// `None` when the seat is gone meanwhile (released by another process).
    pub fn touch(
        &self,
        touch: &Touch<'_>,
        known: Assignment,
    ) -> Result<Option<Assignment>, StoreError> {
        let needed = touch.generation.is_some_and(|g| g > known.generation)
            || touch.not_after != known.not_after
            || known.client_base_id.is_none()
            || touch.now.saturating_sub(known.last_seen) >= LAST_SEEN_GRANULARITY_SECS;
        if !needed {
            return Ok(Some(known));
        }
        if self.down(touch.now) {
            return Err(StoreError::Unavailable);
        }
        let before = self
            .group
            .write(self.backend.as_ref(), Queued::touch(touch))
            .and_then(Written::touched)
            .map_err(|e| self.note(e, touch.now))?;
        match before {
            Some(before) => {
                let after = Assignment {
                    last_seen: before.last_seen.max(touch.now),
                    not_after: touch.not_after,
                    generation: before.generation.max(touch.generation.unwrap_or(0)),
                    client_base_id: before.client_base_id.or(Some(touch.client_base_id)),
                    ..before
                };
                self.cache_seat(touch.license, touch.machine, after, touch.now);
            }
            None => self.forget_seat(touch.license, touch.machine),
        }
        Ok(before)
    }

    /// Frees the machine's seat (see [`SeatStore::release`]); never from the cache.
    pub fn release(
        &self,
        license: &str,
        machine: &MachineHash,
        now: u64,
        cap: Option<TransferCap>,
    ) -> Result<Released, StoreError> {
        if self.down(now) {
            return Err(StoreError::Unavailable);
        }
        let released = self
            .backend
            .release(license, machine, now, cap)
            .map_err(|e| self.note(e, now))?;
        if !matches!(released, Released::CapReached { .. }) {
            self.forget_seat(license, machine);
            self.forget_usage(license);
        }
        Ok(released)
    }

    /// Moves a seat to a new MachineHash (see [`SeatStore::move_seat`]); never from the cache.
    pub fn move_seat(&self, request: &Move<'_>) -> Result<Moved, StoreError> {
        if self.down(request.now) {
            return Err(StoreError::Unavailable);
        }
        let moved = self
            .backend
            .move_seat(request)
            .map_err(|e| self.note(e, request.now))?;
        if let Moved::Moved { seat, usage } = moved {
            self.forget_seat(request.license, request.from);
            self.cache_seat(request.license, request.to, seat, request.now);
            self.cache_usage(request.license, usage, request.now);
        }
        Ok(moved)
    }

    /// Frees the license's seats past their lease (see [`SeatStore::reclaim_expired`]).
    pub fn reclaim_expired(
        &self,
        license: &str,
        lease: Lease,
        now: u64,
    ) -> Result<u32, StoreError> {
        if self.down(now) {
            return Err(StoreError::Unavailable);
        }
        let freed = self
            .backend
            .reclaim_expired(license, lease)
            .map_err(|e| self.note(e, now))?;
        if freed > 0 {
            // The freed seats' machines were not seen for the whole lease: none is cached
            // as fresh. The count is.
            self.forget_usage(license);
        }
        Ok(freed)
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

    /// See [`SeatStore::write_back`]: lapd has stopped answering.
    pub fn write_back(&self) -> Result<(), StoreError> {
        self.backend.write_back()
    }

    /// The seat writes of requests (new seats, renewals) and the commits they took.
    pub fn commit_stats(&self) -> CommitStats {
        self.group.stats()
    }

    /// How many seats the cache holds now (at most [`SEAT_CACHE`]).
    pub fn cached_seats(&self) -> usize {
        self.seats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Grants an intermediate seats of a pool (see [`SeatStore::grant_pool`]); never cached.
    pub fn grant_pool(&self, ask: &PoolAsk<'_>) -> Result<PoolGrant, StoreError> {
        if self.down(ask.now) {
            return Err(StoreError::Unavailable);
        }
        self.backend
            .grant_pool(ask)
            .map_err(|e| self.note(e, ask.now))
    }
}
