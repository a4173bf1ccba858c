//! The embedded backend: one SQLite file (WAL, `synchronous = FULL`), for one server.
//!
//! Seats are read with indexed queries as requests come; nothing is loaded at start-up. Taking
//! a seat is a `BEGIN IMMEDIATE` transaction, so that even two processes on one file (a server
//! and `lapd db import`, say) never give more seats than the limit.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lap_proto::Uuid;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::model::{
    Assignment, CapReached, Lease, Limit, ListedSeat, Listing, MachineHash, Move, Moved, PoolAsk,
    PoolGrant, Released, SCHEMA_VERSION, SeatRow, SeatStore, StoreError, Take, Taken, Touch,
    TransferCap, Usage, Write, Written,
};

/// Version 1 is the schema of the lapd that kept every seat in memory; its files open and
/// migrate in place.
const V1: &str = "
CREATE TABLE IF NOT EXISTS assignment (
    license_ref  TEXT    NOT NULL,
    machine_hash BLOB    NOT NULL,
    license_id   BLOB    NOT NULL,
    first_seen   INTEGER NOT NULL,
    PRIMARY KEY (license_ref, machine_hash)
) WITHOUT ROWID;
";

/// Version 2: per-license counters (what a request reads, and what taking a seat updates), an
/// index for the evaluation cap's window, and the version in a table of its own.
const V2: &str = "
ALTER TABLE assignment RENAME TO seat;
CREATE INDEX seat_taken ON seat (license_ref, first_seen);
CREATE TABLE license (
    license_ref TEXT    NOT NULL PRIMARY KEY,
    seats_used  INTEGER NOT NULL,
    first_use   INTEGER
) WITHOUT ROWID;
INSERT INTO license (license_ref, seats_used, first_use)
    SELECT license_ref, COUNT(*), MIN(first_seen) FROM seat GROUP BY license_ref;
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (2);
";

/// Version 3 (profile 1.1 lifecycle, §9): per seat a stable id, last seen, the last answer's
/// NotAfter, the highest Generation and the ClientBaseId that took it; a log of transfers
/// (releases and moves) for the yearly cap. Existing seats get ids in (license, machine)
/// order and count as last seen when first seen.
const V3: &str = "
ALTER TABLE seat ADD COLUMN seat_id INTEGER;
ALTER TABLE seat ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE seat ADD COLUMN not_after INTEGER;
ALTER TABLE seat ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE seat ADD COLUMN client_base_id BLOB;
UPDATE seat SET seat_id = numbered.n, last_seen = seat.first_seen
    FROM (SELECT license_ref, machine_hash,
                 ROW_NUMBER() OVER (ORDER BY license_ref, machine_hash) AS n FROM seat) AS numbered
    WHERE numbered.license_ref = seat.license_ref AND numbered.machine_hash = seat.machine_hash;
CREATE UNIQUE INDEX seat_by_id ON seat (seat_id);
CREATE TABLE seat_sequence (next_id INTEGER NOT NULL);
INSERT INTO seat_sequence (next_id) SELECT COALESCE(MAX(seat_id), 0) + 1 FROM seat;
CREATE TABLE transfer (
    license_ref TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    seat_id     INTEGER NOT NULL
);
CREATE INDEX transfer_at ON transfer (license_ref, at);
INSERT INTO schema_version (version) VALUES (3);
";

/// Version 4 (profile 1.1 indirect setup, §10): per pool license and intermediate
/// (MachineHash) the seats granted, the end of the grant, the usage it reported and its last
/// contact. Nothing existing changes.
const V4: &str = "
CREATE TABLE pool_grant (
    license_ref  TEXT    NOT NULL,
    machine_hash BLOB    NOT NULL,
    seats        INTEGER NOT NULL,
    in_use       INTEGER NOT NULL,
    not_after    INTEGER NOT NULL,
    last_contact INTEGER NOT NULL,
    PRIMARY KEY (license_ref, machine_hash)
) WITHOUT ROWID;
INSERT INTO schema_version (version) VALUES (4);
";

const MIGRATIONS: [&str; 4] = [V1, V2, V3, V4];

/// The columns [`pool_grant`] reads, in its order.
const POOL_COLUMNS: &str = "license_ref, machine_hash, seats, in_use, not_after, last_contact";

/// The columns [`assignment`] reads, in its order.
const SEAT_COLUMNS: &str =
    "seat_id, license_id, first_seen, last_seen, not_after, generation, client_base_id";

/// A SQLite seat database.
#[derive(Debug)]
pub struct SqliteStore {
    /// Copies the WAL back into the database file off the commit path; `None` for an
    /// in-memory database. Stopped first when the store is dropped.
    #[allow(dead_code, reason = "held for its Drop, which stops the thread")]
    checkpointer: Option<Checkpointer>,
    /// The requests' reads (a machine's seat, a license's count), on a connection of their
    /// own: in WAL mode they go on while a commit waits for its flush. `None` for an
    /// in-memory database, whose reads use the one connection. Declared (so dropped) before
    /// the writer: the last connection to close copies the WAL into the database file and
    /// removes it, which a read-only one cannot, and a stopped lapd's file alone must hold
    /// every seat (a vendor copies it).
    reader: Option<Mutex<Connection>>,
    // One writing connection: SQLite has one writer at a time anyway.
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open = |flags| {
            Connection::open_with_flags(path, flags).map_err(|source| StoreError::OpenSqlite {
                path: path.display().to_string(),
                source,
            })
        };
        let mut store = Self::with_connection(open(OpenFlags::default())?)?;
        // After the writer has set WAL mode and migrated: the reader sees the schema.
        let reader = open(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.pragma_update(None, "cache_size", CACHE_KIB)?;
        store.reader = Some(Mutex::new(reader));
        let checkpointer = open(OpenFlags::default())?;
        checkpointer.busy_timeout(BUSY_TIMEOUT)?;
        store.checkpointer = Some(Checkpointer::start(checkpointer)?);
        // SQLite's own checkpoint runs in the committing connection, a pause for every request
        // waiting on that commit: here it runs rarely and finds the checkpointer's work done,
        // its part being to let the WAL start again from its beginning (which only a writer
        // does, and only once every page in it is copied back).
        store
            .lock()
            .pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut connection: Connection) -> Result<Self, StoreError> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Another process holding the write lock (an import) is waited for, not failed on.
        connection.busy_timeout(BUSY_TIMEOUT)?;
        connection.pragma_update(None, "cache_size", CACHE_KIB)?;
        migrate(&mut connection)?;
        Ok(Self {
            checkpointer: None,
            connection: Mutex::new(connection),
            reader: None,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection for a request's read.
    fn read(&self) -> MutexGuard<'_, Connection> {
        match &self.reader {
            Some(reader) => reader.lock().unwrap_or_else(PoisonError::into_inner),
            None => self.lock(),
        }
    }
}

/// Each connection's page cache, in KiB as SQLite counts a negative `cache_size`: the upper
/// levels of the seat index and the pages recently read stay in memory (the default 2 MiB
/// reads most of a large database's pages from the system's cache again, a system call each).
const CACHE_KIB: i64 = -16_384;

/// How often the checkpointer copies committed pages from the WAL into the database file.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// WAL pages after which the writing connection checkpoints itself (SQLite's default is
/// 1,000); 16 MiB with 4 KiB pages.
const WRITER_CHECKPOINT_PAGES: i64 = 4_096;

/// The WAL file is cut back to this size once checkpointed (it grows with bursts of writes).
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// A thread copying committed pages from the WAL into the database file every
/// [`CHECKPOINT_INTERVAL`] (a passive checkpoint: commits and reads go on meanwhile), on a
/// connection of its own, so that no request's commit waits for it.
#[derive(Debug)]
struct Checkpointer {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(connection: Connection) -> Result<Self, StoreError> {
        connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lapd-checkpoint".into())
            .spawn(move || {
                let (flag, wake) = &*stopping;
                loop {
                    let stopped = wake
                        .wait_timeout_while(
                            flag.lock().unwrap_or_else(PoisonError::into_inner),
                            CHECKPOINT_INTERVAL,
                            |stopped| !*stopped,
                        )
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                    if *stopped {
                        return;
                    }
                    drop(stopped);
                    let checkpoint = connection.query_row(
                        "PRAGMA wal_checkpoint(PASSIVE)",
                        [],
                        |row| row.get::<_, i64>(0),
                    );
                    if let Err(error) = checkpoint {
                        tracing::warn!(%error, "seat database checkpoint failed; trying again shortly");
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How long a statement waits for another process's lock (an import) before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn stored_version(connection: &Connection) -> Result<u32, StoreError> {
    let has_table: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version')",
        [],
        |row| row.get(0),
    )?;
    let version: i64 = if has_table {
        connection.query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get::<_, Option<i64>>(0).map(Option::unwrap_or_default)
        })?
    } else {
        // Version 1 said so in the header only.
        connection.query_row("PRAGMA user_version", [], |row| row.get(0))?
    };
    u32::try_from(version).map_err(|_| StoreError::Corrupt("schema version"))
}

/// Brings the database forward to [`SCHEMA_VERSION`], one transaction per version.
fn migrate(connection: &mut Connection) -> Result<(), StoreError> {
    let found = stored_version(connection)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (index, script) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while this one waited for the lock.
        if stored_version(&transaction)? as usize > index {
            continue;
        }
        transaction.execute_batch(script)?;
        transaction.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        transaction.commit()?;
    }
    Ok(())
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("time out of range"))
}

fn unsigned(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(what))
}

/// Reads [`SEAT_COLUMNS`] starting at column `at`.
fn assignment(row: &rusqlite::Row<'_>, at: usize) -> Result<Assignment, StoreError> {
    let id: Vec<u8> = row.get(at + 1)?;
    let client: Option<Vec<u8>> = row.get(at + 6)?;
    Ok(Assignment {
        seat_id: unsigned(row.get(at)?, "seat id")?,
        license_id: Uuid::from_slice(&id).map_err(|_| StoreError::Corrupt("license id"))?,
        first_seen: unsigned(row.get(at + 2)?, "negative time")?,
        last_seen: unsigned(row.get(at + 3)?, "negative time")?,
        not_after: row
            .get::<_, Option<i64>>(at + 4)?
            .map(|t| unsigned(t, "negative time"))
            .transpose()?,
        generation: u32::try_from(row.get::<_, i64>(at + 5)?)
            .map_err(|_| StoreError::Corrupt("generation"))?,
        client_base_id: client
            .map(|c| Uuid::from_slice(&c).map_err(|_| StoreError::Corrupt("client base id")))
            .transpose()?,
    })
}

fn machine_hash(bytes: Vec<u8>) -> Result<MachineHash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))
}

fn read_seat(
    connection: &Connection,
    license: &str,
    machine: &MachineHash,
) -> Result<Option<Assignment>, StoreError> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {SEAT_COLUMNS} FROM seat WHERE license_ref = ?1 AND machine_hash = ?2"
    ))?;
    let mut rows = statement.query(params![license, machine.as_slice()])?;
    rows.next()?.map(|row| assignment(row, 0)).transpose()
}

fn read_usage(connection: &Connection, license: &str) -> Result<Usage, StoreError> {
    let row: Option<(i64, Option<i64>)> = connection
        .prepare_cached("SELECT seats_used, first_use FROM license WHERE license_ref = ?1")?
        .query_row([license], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let Some((seats_used, first_use)) = row else {
        return Ok(Usage::default());
    };
    Ok(Usage {
        seats_used: u32::try_from(seats_used).map_err(|_| StoreError::Corrupt("seat count"))?,
        first_use: first_use
            .map(|t| u64::try_from(t).map_err(|_| StoreError::Corrupt("negative time")))
            .transpose()?,
    })
}

fn count_since(connection: &Connection, license: &str, since: u64) -> Result<u32, StoreError> {
    let count: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM seat WHERE license_ref = ?1 AND first_seen >= ?2")?
        .query_row(params![license, to_i64(since)?], |row| row.get(0))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Adds one seat (with a new seat id) and counts it in its license's row; `None` when the
/// machine holds one already.
fn insert_seat(
    connection: &Connection,
    license: &str,
    machine: &MachineHash,
    seat: Assignment,
) -> Result<Option<Assignment>, StoreError> {
    if read_seat(connection, license, machine)?.is_some() {
        return Ok(None);
    }
    let seat_id: i64 = connection
        .prepare_cached("UPDATE seat_sequence SET next_id = next_id + 1 RETURNING next_id - 1")?
        .query_row([], |row| row.get(0))?;
    let first_seen = to_i64(seat.first_seen)?;
    connection
        .prepare_cached(&format!(
            "INSERT INTO seat (license_ref, machine_hash, {SEAT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ))?
        .execute(params![
            license,
            machine.as_slice(),
            seat_id,
            seat.license_id.as_bytes().as_slice(),
            first_seen,
            to_i64(seat.last_seen.max(seat.first_seen))?,
            seat.not_after.map(to_i64).transpose()?,
            i64::from(seat.generation),
            seat.client_base_id.map(|c| c.as_bytes().to_vec()),
        ])?;
    connection
        .prepare_cached(
            "INSERT INTO license (license_ref, seats_used, first_use) VALUES (?1, 1, ?2)
             ON CONFLICT (license_ref) DO UPDATE SET seats_used = seats_used + 1,
                 first_use = MIN(COALESCE(first_use, excluded.first_use), excluded.first_use)",
        )?
        .execute(params![license, first_seen])?;
    Ok(Some(Assignment {
        seat_id: unsigned(seat_id, "seat id")?,
        last_seen: seat.last_seen.max(seat.first_seen),
        ..seat
    }))
}

/// Removes one seat by id, uncounts it and logs the release as a transfer.
fn remove_seat(
    connection: &Connection,
    license: &str,
    seat_id: u64,
    now: u64,
) -> Result<(), StoreError> {
    let id = to_i64(seat_id)?;
    connection
        .prepare_cached("DELETE FROM seat WHERE seat_id = ?1")?
        .execute([id])?;
    connection
        .prepare_cached("UPDATE license SET seats_used = seats_used - 1 WHERE license_ref = ?1")?
        .execute([license])?;
    log_transfer(connection, license, now, "release", seat_id)
}

fn log_transfer(
    connection: &Connection,
    license: &str,
    now: u64,
    kind: &str,
    seat_id: u64,
) -> Result<(), StoreError> {
    connection
        .prepare_cached(
            "INSERT INTO transfer (license_ref, at, kind, seat_id) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![license, to_i64(now)?, kind, to_i64(seat_id)?])?;
    Ok(())
}

fn transfers_since(connection: &Connection, license: &str, since: u64) -> Result<u32, StoreError> {
    let count: i64 = connection
        .prepare_cached("SELECT COUNT(*) FROM transfer WHERE license_ref = ?1 AND at >= ?2")?
        .query_row(params![license, to_i64(since)?], |row| row.get(0))?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// `Some(oldest counted transfer, if any)` when the cap is reached.
fn cap_reached(
    connection: &Connection,
    license: &str,
    cap: Option<TransferCap>,
) -> Result<Option<CapReached>, StoreError> {
    let Some(cap) = cap else { return Ok(None) };
    let count = transfers_since(connection, license, cap.since)?;
    if count < cap.cap {
        return Ok(None);
    }
    // The transfer whose leaving the window brings the count under the cap.
    let at: Option<i64> = connection
        .prepare_cached(
            "SELECT at FROM transfer WHERE license_ref = ?1 AND at >= ?2 ORDER BY at LIMIT 1 OFFSET ?3",
        )?
        .query_row(
            params![license, to_i64(cap.since)?, i64::from(count - cap.cap)],
            |row| row.get(0),
        )
        .optional()?;
    Ok(Some(CapReached {
        oldest_counted: at.map(|at| unsigned(at, "negative time")).transpose()?,
    }))
}

fn listed(row: &rusqlite::Row<'_>) -> Result<ListedSeat, StoreError> {
    Ok(ListedSeat {
        license: row.get(0)?,
        machine: machine_hash(row.get(1)?)?,
        seat: assignment(row, 2)?,
    })
}

fn pool_grant(row: &rusqlite::Row<'_>) -> Result<PoolGrant, StoreError> {
    let count = |at: usize| -> Result<u32, StoreError> {
        u32::try_from(row.get::<_, i64>(at)?).map_err(|_| StoreError::Corrupt("pool seat count"))
    };
    Ok(PoolGrant {
        license: row.get(0)?,
        machine: machine_hash(row.get(1)?)?,
        seats: count(2)?,
        in_use: count(3)?,
        not_after: unsigned(row.get(4)?, "negative time")?,
        last_contact: unsigned(row.get(5)?, "negative time")?,
    })
}

/// Takes a seat inside `transaction` (see [`SeatStore::take_seat`]); the caller commits.
fn take_in(transaction: &Connection, take: &Take<'_>) -> Result<Taken, StoreError> {
    if let Some(seat) = read_seat(transaction, take.license, take.machine)? {
        let usage = read_usage(transaction, take.license)?;
        return Ok(Taken::Held { seat, usage });
    }
    let room = match take.limit {
        Limit::Seats(seats) => read_usage(transaction, take.license)?.seats_used < seats,
        Limit::TakenSince { since, cap } => count_since(transaction, take.license, since)? < cap,
        Limit::None => true,
    };
    if !room {
        return Ok(Taken::Full);
    }
    let seat = Assignment {
        generation: take.generation,
        not_after: take.not_after,
        client_base_id: take.client_base_id,
        ..Assignment::new(take.license_id, take.now)
    };
    let seat = insert_seat(transaction, take.license, take.machine, seat)?.ok_or(
        StoreError::Corrupt("a seat appeared inside a write transaction"),
    )?;
    let usage = read_usage(transaction, take.license)?;
    Ok(Taken::New { seat, usage })
}

/// Records an answer inside `transaction` (see [`SeatStore::touch`]); the caller commits.
fn touch_in(transaction: &Connection, touch: &Touch<'_>) -> Result<Option<Assignment>, StoreError> {
    let Some(before) = read_seat(transaction, touch.license, touch.machine)? else {
        return Ok(None);
    };
    transaction
        .prepare_cached(
            "UPDATE seat SET last_seen = MAX(last_seen, ?3), not_after = ?4,
                 generation = MAX(generation, ?5),
                 client_base_id = COALESCE(client_base_id, ?6)
             WHERE license_ref = ?1 AND machine_hash = ?2",
        )?
        .execute(params![
            touch.license,
            touch.machine.as_slice(),
            to_i64(touch.now)?,
            touch.not_after.map(to_i64).transpose()?,
            i64::from(touch.generation.unwrap_or(0)),
            touch.client_base_id.as_bytes().as_slice(),
        ])?;
    Ok(Some(before))
}

impl SeatStore for SqliteStore {
    fn seat(&self, license: &str, machine: &MachineHash) -> Result<Option<Assignment>, StoreError> {
        read_seat(&self.read(), license, machine)
    }

    fn usage(&self, license: &str) -> Result<Usage, StoreError> {
        read_usage(&self.read(), license)
    }

    fn seats_taken_since(&self, license: &str, since: u64) -> Result<u32, StoreError> {
        count_since(&self.read(), license, since)
    }

    fn take_seat(&self, take: &Take<'_>) -> Result<Taken, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken = take_in(&transaction, take)?;
        if let Taken::New { .. } = taken {
            // Durable (synchronous = FULL) before anyone is told.
            transaction.commit()?;
        }
        Ok(taken)
    }

    fn touch(&self, touch: &Touch<'_>) -> Result<Option<Assignment>, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let before = touch_in(&transaction, touch)?;
        transaction.commit()?;
        Ok(before)
    }

    fn write_batch(&self, writes: &[Write<'_>]) -> Result<Vec<Written>, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let written = writes
            .iter()
            .map(|write| match write {
                Write::Take(take) => take_in(&transaction, take).map(Written::Taken),
                Write::Touch(touch) => touch_in(&transaction, touch).map(Written::Touched),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // One flush (synchronous = FULL) for all of them, before anyone is told.
        transaction.commit()?;
        Ok(written)
    }

    fn release(
        &self,
        license: &str,
        machine: &MachineHash,
        now: u64,
        cap: Option<TransferCap>,
    ) -> Result<Released, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(seat) = read_seat(&transaction, license, machine)? else {
            return Ok(Released::NotHeld);
        };
        if let Some(CapReached { oldest_counted }) = cap_reached(&transaction, license, cap)? {
            return Ok(Released::CapReached { oldest_counted });
        }
        remove_seat(&transaction, license, seat.seat_id, now)?;
        // Durable (synchronous = FULL) before the answer says so.
        transaction.commit()?;
        Ok(Released::Freed(seat))
    }

    fn move_seat(&self, request: &Move<'_>) -> Result<Moved, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(seat) = read_seat(&transaction, request.license, request.from)? else {
            return Ok(Moved::NotEligible);
        };
        if seat.client_base_id != Some(request.client_base_id)
            || read_seat(&transaction, request.license, request.to)?.is_some()
        {
            return Ok(Moved::NotEligible);
        }
        if let Some(CapReached { oldest_counted }) =
            cap_reached(&transaction, request.license, request.cap)?
        {
            return Ok(Moved::CapReached { oldest_counted });
        }
        transaction
            .prepare_cached(
                "UPDATE seat SET machine_hash = ?3, last_seen = MAX(last_seen, ?4) WHERE seat_id = ?1 AND license_ref = ?2",
            )?
            .execute(params![
                to_i64(seat.seat_id)?,
                request.license,
                request.to.as_slice(),
                to_i64(request.now)?
            ])?;
        log_transfer(
            &transaction,
            request.license,
            request.now,
            "move",
            seat.seat_id,
        )?;
        let usage = read_usage(&transaction, request.license)?;
        transaction.commit()?;
        Ok(Moved::Moved {
            seat: Assignment {
                last_seen: seat.last_seen.max(request.now),
                ..seat
            },
            usage,
        })
    }

    fn reclaim_expired(&self, license: &str, lease: Lease) -> Result<u32, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let freed = transaction
            .prepare_cached(
                "DELETE FROM seat WHERE license_ref = ?1 AND CASE
                     WHEN ?2 IS NOT NULL AND not_after IS NOT NULL THEN not_after < ?2
                     ELSE last_seen < ?3 END",
            )?
            .execute(params![
                license,
                lease.not_after_before.map(to_i64).transpose()?,
                to_i64(lease.last_seen_before)?
            ])?;
        if freed > 0 {
            transaction
                .prepare_cached(
                    "UPDATE license SET seats_used = seats_used - ?2 WHERE license_ref = ?1",
                )?
                .execute(params![license, i64::try_from(freed).unwrap_or(i64::MAX)])?;
        }
        transaction.commit()?;
        Ok(u32::try_from(freed).unwrap_or(u32::MAX))
    }

    fn release_by_id(&self, seat_id: u64, now: u64) -> Result<Option<ListedSeat>, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found = {
            let mut statement = transaction.prepare_cached(&format!(
                "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat WHERE seat_id = ?1"
            ))?;
            let mut rows = statement.query([to_i64(seat_id)?])?;
            rows.next()?.map(listed).transpose()?
        };
        let Some(found) = found else {
            return Ok(None);
        };
        remove_seat(&transaction, &found.license, seat_id, now)?;
        transaction.commit()?;
        Ok(Some(found))
    }

    fn list(&self, which: Listing<'_>) -> Result<Vec<ListedSeat>, StoreError> {
        let connection = self.lock();
        let mut out = Vec::new();
        match which {
            Listing::All => {
                let mut statement = connection.prepare(&format!(
                    "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat ORDER BY license_ref, seat_id"
                ))?;
                let mut rows = statement.query([])?;
                while let Some(row) = rows.next()? {
                    out.push(listed(row)?);
                }
            }
            Listing::Licenses(licenses) => {
                let mut statement = connection.prepare(&format!(
                    "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat WHERE license_ref = ?1 ORDER BY seat_id"
                ))?;
                let mut sorted = licenses.to_vec();
                sorted.sort();
                for license in &sorted {
                    let mut rows = statement.query([license])?;
                    while let Some(row) = rows.next()? {
                        out.push(listed(row)?);
                    }
                }
            }
        }
        Ok(out)
    }

    fn transfers_since(&self, license: &str, since: u64) -> Result<u32, StoreError> {
        transfers_since(&self.lock(), license, since)
    }

    fn seat_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self.lock().query_row(
            "SELECT COALESCE(SUM(seats_used), 0) FROM license",
            [],
            |row| row.get(0),
        )?;
        u64::try_from(count).map_err(|_| StoreError::Corrupt("seat count"))
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        stored_version(&self.lock())
    }

    fn export(
        &self,
        batch: usize,
        each: &mut dyn FnMut(&[SeatRow]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!(
            "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat ORDER BY license_ref, machine_hash"
        ))?;
        let mut rows = statement.query([])?;
        let mut chunk = Vec::with_capacity(batch.max(1));
        while let Some(row) = rows.next()? {
            let seat = listed(row)?;
            chunk.push(SeatRow {
                license: seat.license,
                machine: seat.machine,
                seat: seat.seat,
            });
            if chunk.len() >= batch.max(1) {
                each(&chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            each(&chunk)?;
        }
        Ok(())
    }

    fn import(&self, rows: &[SeatRow]) -> Result<u64, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut added = 0;
        for row in rows {
            added += u64::from(
                insert_seat(&transaction, &row.license, &row.machine, row.seat)?.is_some(),
            );
        }
        transaction.commit()?;
        Ok(added)
    }

    fn grant_pool(&self, ask: &PoolAsk<'_>) -> Result<PoolGrant, StoreError> {
        let mut connection = self.lock();
        // IMMEDIATE: the other intermediates' grants cannot change between the sum and the
        // write, in this process or another on the same file.
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let held_by_others: i64 = transaction.query_row(
            "SELECT COALESCE(SUM(seats), 0) FROM pool_grant
             WHERE license_ref = ?1 AND machine_hash <> ?2 AND not_after > ?3",
            params![ask.license, ask.machine.as_slice(), to_i64(ask.now)?],
            |row| row.get(0),
        )?;
        let left = i64::from(ask.total).saturating_sub(held_by_others).max(0);
        let seats = i64::from(ask.wanted).min(left);
        transaction.execute(
            "INSERT INTO pool_grant (license_ref, machine_hash, seats, in_use, not_after, last_contact)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (license_ref, machine_hash) DO UPDATE SET seats = ?3, in_use = ?4,
                 not_after = ?5, last_contact = ?6",
            params![
                ask.license,
                ask.machine.as_slice(),
                seats,
                i64::from(ask.in_use),
                to_i64(ask.not_after)?,
                to_i64(ask.now)?,
            ],
        )?;
        let grant = transaction.query_row(
            &format!(
                "SELECT {POOL_COLUMNS} FROM pool_grant WHERE license_ref = ?1 AND machine_hash = ?2"
            ),
            params![ask.license, ask.machine.as_slice()],
            |row| Ok(pool_grant(row)),
        )??;
        // Durable before the intermediate is told.
        transaction.commit()?;
        Ok(grant)
    }

    fn pool_grants(&self) -> Result<Vec<PoolGrant>, StoreError> {
        let connection = self.lock();
        let mut statement = connection.prepare(&format!(
            "SELECT {POOL_COLUMNS} FROM pool_grant ORDER BY license_ref, machine_hash"
        ))?;
        let rows = statement.query_map([], |row| Ok(pool_grant(row)))?;
        rows.map(|row| -> Result<PoolGrant, StoreError> { row? })
            .collect()
    }

    fn write_back(&self) -> Result<(), StoreError> {
        // TRUNCATE: every frame copied into the database file and the WAL emptied; it waits
        // (BUSY_TIMEOUT) for a reader of another process, and says if one kept it from ending.
        let busy: i64 = self
            .lock()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy != 0 {
            return Err(StoreError::WalBusy);
        }
        Ok(())
    }
}
