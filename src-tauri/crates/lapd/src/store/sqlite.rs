//! The embedded backend: one SQLite file (WAL, `synchronous = FULL`), for one server.
//!
//! Seats are read with indexed queries as requests come; nothing is loaded at start-up. Taking
//! a seat is a `BEGIN IMMEDIATE` transaction, so that even two processes on one file (a server
//! and `lapd db import`, say) never give more seats than the limit.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lap_proto::Uuid;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::model::{
    Assignment, Limit, MachineHash, SCHEMA_VERSION, SeatRow, SeatStore, StoreError, Take, Taken,
    Usage,
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

const MIGRATIONS: [&str; 2] = [V1, V2];

/// A SQLite seat database.
#[derive(Debug)]
pub struct SqliteStore {
    // One connection: SQLite has one writer at a time anyway, and reads are microseconds.
    connection: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database and migrates it to the current schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(|source| StoreError::OpenSqlite {
            path: path.display().to_string(),
            source,
        })?;
        Self::with_connection(connection)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(mut connection: Connection) -> Result<Self, StoreError> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // Another process holding the write lock (an import) is waited for, not failed on.
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

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

fn assignment(license_id: &[u8], first_seen: i64) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        license_id: Uuid::from_slice(license_id).map_err(|_| StoreError::Corrupt("license id"))?,
        first_seen: u64::try_from(first_seen).map_err(|_| StoreError::Corrupt("negative time"))?,
    })
}

fn read_seat(
    connection: &Connection,
    license: &str,
    machine: &MachineHash,
) -> Result<Option<Assignment>, StoreError> {
    let row: Option<(Vec<u8>, i64)> = connection
        .prepare_cached(
            "SELECT license_id, first_seen FROM seat WHERE license_ref = ?1 AND machine_hash = ?2",
        )?
        .query_row(params![license, machine.as_slice()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    row.map(|(id, first_seen)| assignment(&id, first_seen))
        .transpose()
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

/// Adds one seat and counts it in its license's row.
fn insert_seat(
    connection: &Connection,
    license: &str,
    machine: &MachineHash,
    seat: Assignment,
) -> Result<bool, StoreError> {
    let first_seen = to_i64(seat.first_seen)?;
    let added = connection
        .prepare_cached(
            "INSERT INTO seat (license_ref, machine_hash, license_id, first_seen) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            license,
            machine.as_slice(),
            seat.license_id.as_bytes().as_slice(),
            first_seen
        ])?;
    if added == 1 {
        connection
            .prepare_cached(
                "INSERT INTO license (license_ref, seats_used, first_use) VALUES (?1, 1, ?2)
                 ON CONFLICT (license_ref) DO UPDATE SET seats_used = seats_used + 1,
                     first_use = MIN(COALESCE(first_use, excluded.first_use), excluded.first_use)",
            )?
            .execute(params![license, first_seen])?;
    }
    Ok(added == 1)
}

impl SeatStore for SqliteStore {
    fn seat(&self, license: &str, machine: &MachineHash) -> Result<Option<Assignment>, StoreError> {
        read_seat(&self.lock(), license, machine)
    }

    fn usage(&self, license: &str) -> Result<Usage, StoreError> {
        read_usage(&self.lock(), license)
    }

    fn seats_taken_since(&self, license: &str, since: u64) -> Result<u32, StoreError> {
        count_since(&self.lock(), license, since)
    }

    fn take_seat(&self, take: &Take<'_>) -> Result<Taken, StoreError> {
        let mut connection = self.lock();
        let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(seat) = read_seat(&transaction, take.license, take.machine)? {
            let usage = read_usage(&transaction, take.license)?;
            return Ok(Taken::Held { seat, usage });
        }
        let room = match take.limit {
            Limit::Seats(seats) => read_usage(&transaction, take.license)?.seats_used < seats,
            Limit::TakenSince { since, cap } => {
                count_since(&transaction, take.license, since)? < cap
            }
            Limit::None => true,
        };
        if !room {
            return Ok(Taken::Full);
        }
        let seat = Assignment {
            license_id: take.license_id,
            first_seen: take.now,
        };
        insert_seat(&transaction, take.license, take.machine, seat)?;
        let usage = read_usage(&transaction, take.license)?;
        // Durable (synchronous = FULL) before anyone is told.
        transaction.commit()?;
        Ok(Taken::New { seat, usage })
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
        let mut statement = connection.prepare(
            "SELECT license_ref, machine_hash, license_id, first_seen FROM seat ORDER BY license_ref, machine_hash",
        )?;
        let mut rows = statement.query([])?;
        let mut chunk = Vec::with_capacity(batch.max(1));
        while let Some(row) = rows.next()? {
            let machine: Vec<u8> = row.get(1)?;
            let id: Vec<u8> = row.get(2)?;
            chunk.push(SeatRow {
                license: row.get(0)?,
                machine: machine
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))?,
                seat: assignment(&id, row.get(3)?)?,
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
            added += u64::from(insert_seat(
                &transaction,
                &row.license,
                &row.machine,
                row.seat,
            )?);
        }
        transaction.commit()?;
        Ok(added)
    }
}
