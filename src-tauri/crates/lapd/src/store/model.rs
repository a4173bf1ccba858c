//! What a seat store is, whatever holds it: the [`SeatStore`] trait, its values and errors.
//!
//! The trait is what the answers need, one indexed read or one short transaction per call, so
//! that a backend never loads every seat. The lifecycle (profile §9: release, moving a seat to
//! a new MachineHash under the same LicenseId, leases from a last-seen time, the generation
//! count) and pool accounting (§10: seats granted to intermediates) land as further methods
//! over the same two tables: the per-license row is where a pool's granted seats are counted
//! and locked, the per-seat row where last-seen and generation go.

use lap_proto::Uuid;

/// A database problem. The server logs it and answers from its cache where it may (a
/// returning machine), or drops the request (a new seat).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("seat database {path}: {source}")]
    OpenSqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("seat database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `what` names the database without its password.
    #[error("seat database {what}: {source}")]
    Postgres {
        what: String,
        source: postgres::Error,
    },
    /// Setting up TLS to PostgreSQL failed (a root certificate that cannot be read).
    #[error("seat database TLS: {0}")]
    Tls(String),
    #[error("seat database location {0:?}: give a SQLite file or a postgres:// URL")]
    Location(String),
    #[error("seat database holds a malformed row: {0}")]
    Corrupt(&'static str),
    #[error(
        "seat database is at schema version {found}, newer than this lapd knows ({known}): run the newer lapd, or restore a backup"
    )]
    NewerSchema { found: u32, known: u32 },
    /// Not tried: the database was unreachable moments ago.
    #[error("seat database unreachable a moment ago; trying again in a few seconds")]
    Unavailable,
    /// A thread the store needs (SQLite's checkpointer) could not be started.
    #[error("seat database: cannot start a thread: {0}")]
    Thread(std::io::Error),
    /// Not done: the commit this write shared with other requests' writes was interrupted
    /// by a fault in the server itself (nothing of it was written).
    #[error("seat database write abandoned: the shared commit it was part of failed")]
    CommitAbandoned,
    /// Another program's read kept SQLite from copying the WAL into the database file at
    /// stop; nothing is lost (committed seats stay in the `-wal` file beside it).
    #[error(
        "seat database busy: another program reading it kept lapd from copying the WAL into the database file; the seats are safe in the -wal file beside it"
    )]
    WalBusy,
}

impl StoreError {
    /// Whether the error may be one write's own (a value out of range, a row it conflicts
    /// with, a deadlock it was chosen for), so that the other writes of a shared commit would
    /// succeed without it; not when the database as a whole failed (busy, full, unreachable,
    /// a statement cancelled), which trying each write again would only repeat.
    pub fn may_be_one_writes(&self) -> bool {
        match self {
            // SQLSTATE classes 22 (data exception), 23 (integrity), 40 (transaction rollback:
            // serialisation failure, deadlock).
            Self::Postgres { source, .. } => source.as_db_error().is_some_and(|e| {
                ["22", "23", "40"]
                    .iter()
                    .any(|c| e.code().code().starts_with(c))
            }),
            Self::Sqlite(rusqlite::Error::SqliteFailure(failure, _)) => matches!(
                failure.code,
                rusqlite::ErrorCode::ConstraintViolation
                    | rusqlite::ErrorCode::TooBig
                    | rusqlite::ErrorCode::TypeMismatch
            ),
            // A value that does not convert: the row's.
            Self::Corrupt(_) | Self::Sqlite(_) => true,
            _ => false,
        }
    }

    /// Whether the database could not be reached at all (as opposed to refusing a query):
    /// the cache then answers returning machines without asking again for a while.
    pub fn is_unreachable(&self) -> bool {
        // A server's refusal carries an SQLSTATE; a lost or refused connection does not.
        matches!(self, Self::Postgres { source, .. } if source.as_db_error().is_none())
    }
}

/// The schema version this lapd writes; migrations run forward to it, never back.
pub const SCHEMA_VERSION: u32 = 4;

/// A 32-byte MachineHash.
pub type MachineHash = [u8; 32];

/// One machine holding one seat of one license (or one evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// Stable for the seat's life, also across a move to a new MachineHash: what
    /// `lapd seats release --seat` names. 0 in a row not yet stored (import assigns one).
    pub seat_id: u64,
    pub license_id: Uuid,
    /// UNIX seconds of the first activation on this machine.
    pub first_seen: u64,
    /// UNIX seconds of the last request answered for this seat (to the hour: see `touch`).
    pub last_seen: u64,
    /// The NotAfter of the last answer, if it had one: the default lease runs from it (§9).
    pub not_after: Option<u64>,
    /// The highest Generation the seat's installation sent (§9); 0 before any.
    pub generation: u32,
    /// The ClientBaseId that took the seat: only it may move the seat (§9). `None` for seats
    /// taken before schema 3 until their first request.
    pub client_base_id: Option<Uuid>,
}

impl Assignment {
    /// A seat first seen at `first_seen` and nothing else known of it yet.
    pub fn new(license_id: Uuid, first_seen: u64) -> Self {
        Self {
            seat_id: 0,
            license_id,
            first_seen,
            last_seen: first_seen,
            not_after: None,
            generation: 0,
            client_base_id: None,
        }
    }
}

/// What the store knows of one license (or one SKU's evaluations) as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Distinct machines holding a seat.
    pub seats_used: u32,
    /// When its first seat was taken (terms counted in days run from it).
    pub first_use: Option<u64>,
}

/// When a new seat may be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// While fewer than this many seats are taken.
    Seats(u32),
    /// While fewer than `cap` seats were taken at or after `since` (UNIX seconds): the cap on
    /// new evaluations per window.
    TakenSince { since: u64, cap: u32 },
    /// Always (a license that allows overuse).
    None,
}

/// A request for a seat.
#[derive(Debug, Clone, Copy)]
pub struct Take<'a> {
    pub license: &'a str,
    pub machine: &'a MachineHash,
    /// Given to the seat if it is new.
    pub license_id: Uuid,
    pub now: u64,
    pub limit: Limit,
    /// Recorded with a new seat (see [`Assignment`]).
    pub client_base_id: Option<Uuid>,
    pub generation: u32,
    pub not_after: Option<u64>,
}

/// A request answered for a machine that holds a seat: what [`SeatStore::touch`] records.
#[derive(Debug, Clone, Copy)]
pub struct Touch<'a> {
    pub license: &'a str,
    pub machine: &'a MachineHash,
    pub now: u64,
    /// The answer's NotAfter.
    pub not_after: Option<u64>,
    /// The request's Generation, if it sent one; the seat keeps the highest.
    pub generation: Option<u32>,
    /// Recorded when the seat does not know its ClientBaseId yet (taken before schema 3).
    pub client_base_id: Uuid,
}

/// One write that may share a commit with other requests' writes (see `store::group`).
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    Take(Take<'a>),
    Touch(Touch<'a>),
}

/// What a [`Write`] did: what [`SeatStore::take_seat`] or [`SeatStore::touch`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Taken(Taken),
    Touched(Option<Assignment>),
}

/// A yearly cap on a license's transfers (releases and moves), as the store checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCap {
    /// Transfers at or after this time (UNIX seconds) count.
    pub since: u64,
    pub cap: u32,
}

/// A transfer cap found reached: the transfer whose leaving the window lets the next one
/// happen; `None` when the cap is 0 (no transfer ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapReached {
    pub oldest_counted: Option<u64>,
}

/// What [`SeatStore::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// The seat is free, durably; the transfer is logged.
    Freed(Assignment),
    /// The machine held no seat of the license: nothing to do.
    NotHeld,
    /// The cap is reached; nothing changed. `oldest_counted` is the transfer whose leaving the
    /// window lets the next one happen; `None` when the cap is 0 (no transfer ever).
    CapReached { oldest_counted: Option<u64> },
}

/// A request to move a seat to a new MachineHash (§9).
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    pub license: &'a str,
    pub from: &'a MachineHash,
    pub to: &'a MachineHash,
    /// Only the installation that took the seat may move it.
    pub client_base_id: Uuid,
    pub now: u64,
    pub cap: Option<TransferCap>,
}

/// What [`SeatStore::move_seat`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The seat is the new machine's now, same seat id and LicenseId; the transfer is logged.
    Moved { seat: Assignment, usage: Usage },
    /// No seat of the license under the old hash for this ClientBaseId, or the new hash holds
    /// one already: nothing changed.
    NotEligible,
    /// The cap is reached; nothing changed (see [`Released::CapReached`]).
    CapReached { oldest_counted: Option<u64> },
}

/// When a license's seats are past their lease (§9), as cut-off times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// A seat whose last answer had a NotAfter is past its lease when that NotAfter is before
    /// this; `None`: the NotAfter does not count (a vendor's lease runs from last seen only).
    pub not_after_before: Option<u64>,
    /// Otherwise, when it was last seen before this.
    pub last_seen_before: u64,
}

/// One seat in a listing (`lapd seats list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedSeat {
    pub license: String,
    pub machine: MachineHash,
    pub seat: Assignment,
}

/// Which seats a listing shows.
#[derive(Debug, Clone, Copy)]
pub enum Listing<'a> {
    All,
    /// The seats of these licenses (references).
    Licenses(&'a [String]),
}

/// What [`SeatStore::take_seat`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// A new seat, durable before this returns; `usage` is the license's after it.
    New { seat: Assignment, usage: Usage },
    /// The machine already held one (taken meanwhile, on this server or another).
    Held { seat: Assignment, usage: Usage },
    /// No seat left under the limit; nothing changed.
    Full,
}

/// A backend holding seats: SQLite (embedded) or PostgreSQL (shared by several servers).
///
/// Every method is one indexed read or one transaction; none reads every seat except
/// [`SeatStore::export`], which only `lapd db import` calls.
pub trait SeatStore: Send + Sync + std::fmt::Debug {
    /// The machine's seat under this license, if it holds one.
    fn seat(&self, license: &str, machine: &MachineHash) -> Result<Option<Assignment>, StoreError>;

    /// The license's seat count and first use.
    fn usage(&self, license: &str) -> Result<Usage, StoreError>;

    /// How many seats of this license were taken at or after `since` (UNIX seconds).
    fn seats_taken_since(&self, license: &str, since: u64) -> Result<u32, StoreError>;

    /// Takes a seat for the machine if it holds none and the limit allows, atomically against
    /// every other server on the same database: never more seats than the limit.
    fn take_seat(&self, take: &Take<'_>) -> Result<Taken, StoreError>;

    /// Records an answer to a machine that holds a seat: last seen (written at most hourly
    /// when nothing else changed), the answer's NotAfter, the highest Generation. Returns the
    /// seat as it was before, `None` when the machine holds no seat (nothing written).
    fn touch(&self, touch: &Touch<'_>) -> Result<Option<Assignment>, StoreError>;

    /// Does `writes` in order in one transaction with one commit (one flush), as each would
    /// do alone, and returns what each did, in order; an error leaves nothing of any of them
    /// written. Several requests' writes then cost one flush (group commit).
    fn write_batch(&self, writes: &[Write<'_>]) -> Result<Vec<Written>, StoreError>;

    /// Frees the machine's seat under the license, durably, logging the transfer, unless the
    /// cap is reached.
    fn release(
        &self,
        license: &str,
        machine: &MachineHash,
        now: u64,
        cap: Option<TransferCap>,
    ) -> Result<Released, StoreError>;

    /// Moves a seat to a new MachineHash (see [`Move`]).
    fn move_seat(&self, request: &Move<'_>) -> Result<Moved, StoreError>;

    /// Frees the license's seats past their lease; returns how many.
    fn reclaim_expired(&self, license: &str, lease: Lease) -> Result<u32, StoreError>;

    /// Frees a seat by its id, whatever its license (`lapd seats release`); logs it as a
    /// release. Returns the seat's license and machine, `None` when there is no such seat.
    fn release_by_id(&self, seat_id: u64, now: u64) -> Result<Option<ListedSeat>, StoreError>;

    /// Seats in (license, seat id) order.
    fn list(&self, which: Listing<'_>) -> Result<Vec<ListedSeat>, StoreError>;

    /// Transfers (releases and moves) of the license at or after `since`.
    fn transfers_since(&self, license: &str, since: u64) -> Result<u32, StoreError>;

    /// Every seat, every license together.
    fn seat_count(&self) -> Result<u64, StoreError>;

    /// The schema version the database is at.
    fn schema_version(&self) -> Result<u32, StoreError>;

    /// Calls `each` with every seat in (license, machine) order, `batch` at a time (for
    /// `lapd db import`); stops at the first error `each` returns.
    fn export(
        &self,
        batch: usize,
        each: &mut dyn FnMut(&[SeatRow]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Adds seats as they are (for `lapd db import`), in one transaction with the license
    /// counts; a seat already there is left as it is.
    fn import(&self, rows: &[SeatRow]) -> Result<u64, StoreError>;

    /// Grants an intermediate at most `wanted` seats of a pool: never more than the license's
    /// total less what its other intermediates hold under grants not yet ended, in one
    /// transaction against every other server on the database. Records the reported usage
    /// and the contact; returns the grant as stored.
    fn grant_pool(&self, ask: &PoolAsk<'_>) -> Result<PoolGrant, StoreError>;

    /// Every pool grant, in (license, machine) order (`lapd pools list`).
    fn pool_grants(&self) -> Result<Vec<PoolGrant>, StoreError>;

    /// Called when lapd stops answering: leaves every committed seat where a copy of the
    /// database finds it without lapd (for SQLite, in the database file rather than its WAL).
    /// Committed seats are durable either way; this is about what a vendor copies.
    fn write_back(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An intermediate server's ask for seats of a pool license (profile §10), as the vendor's
/// store decides it.
#[derive(Debug, Clone, Copy)]
pub struct PoolAsk<'a> {
    pub license: &'a str,
    /// The intermediate's MachineHash: one grant per intermediate.
    pub machine: &'a MachineHash,
    /// PoolRequest: seats wanted.
    pub wanted: u32,
    /// PoolUsage: seats in use downstream, as the intermediate reports them.
    pub in_use: u32,
    /// The pool license's seats, shared by all its intermediates.
    pub total: u32,
    pub now: u64,
    /// The grant's end: after it its seats count for nobody.
    pub not_after: u64,
}

/// One intermediate's grant of a pool license, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolGrant {
    pub license: String,
    pub machine: MachineHash,
    /// Seats granted by the last answer.
    pub seats: u32,
    /// Seats in use downstream as last reported.
    pub in_use: u32,
    /// When the grant ends unless renewed.
    pub not_after: u64,
    /// The intermediate's last request (UNIX seconds).
    pub last_contact: u64,
}

/// One seat as it is stored, for export and import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRow {
    pub license: String,
    pub machine: MachineHash,
    pub seat: Assignment,
}
