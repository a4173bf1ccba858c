//! Seat assignments, kept in SQLite so that restarts keep seats and LicenseIds.
//!
//! The request path reads an in-memory copy; the database is written only when a machine
//! takes a seat for the first time, before the answer goes out.

use std::collections::HashMap;
use std::path::Path;

use lap_proto::Uuid;
use rusqlite::{Connection, OptionalExtension, params};

/// A database problem. The server logs it and drops the request it was serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("assignment database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("assignment database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("assignment database holds a malformed row: {0}")]
    Corrupt(&'static str),
}

/// One machine holding one seat of one license (or one evaluation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    pub license_id: Uuid,
    /// UNIX seconds of the first activation on this machine.
    pub first_seen: u64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS assignment (
    license_ref  TEXT    NOT NULL,
    machine_hash BLOB    NOT NULL,
    license_id   BLOB    NOT NULL,
    first_seen   INTEGER NOT NULL,
    PRIMARY KEY (license_ref, machine_hash)
) WITHOUT ROWID;
PRAGMA user_version = 1;
";

/// The assignment store: SQLite plus its in-memory index.
#[derive(Debug)]
pub struct Store {
    connection: Connection,
    assignments: HashMap<(String, [u8; 32]), Assignment>,
    seats_used: HashMap<String, u32>,
    first_use: HashMap<String, u64>,
}

impl Store {
    /// Opens (creating if needed) the database and loads every assignment.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Self::with_connection(connection)
    }

    /// An in-memory store, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::with_connection(Connection::open_in_memory()?)
    }

    fn with_connection(connection: Connection) -> Result<Self, StoreError> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.execute_batch(SCHEMA)?;
        let mut store = Self {
            connection,
            assignments: HashMap::new(),
            seats_used: HashMap::new(),
            first_use: HashMap::new(),
        };
        let rows: Vec<(String, Vec<u8>, Vec<u8>, i64)> = {
            let mut statement = store.connection.prepare(
                "SELECT license_ref, machine_hash, license_id, first_seen FROM assignment",
            )?;
            statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect::<Result<_, _>>()?
        };
        for (reference, machine_hash, license_id, first_seen) in rows {
            let machine_hash: [u8; 32] = machine_hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))?;
            let license_id =
                Uuid::from_slice(&license_id).map_err(|_| StoreError::Corrupt("license id"))?;
            let first_seen =
                u64::try_from(first_seen).map_err(|_| StoreError::Corrupt("negative time"))?;
            store.remember(
                reference,
                machine_hash,
                Assignment {
                    license_id,
                    first_seen,
                },
            );
        }
        Ok(store)
    }

    fn remember(&mut self, reference: String, machine_hash: [u8; 32], assignment: Assignment) {
        *self.seats_used.entry(reference.clone()).or_default() += 1;
        let first = self
            .first_use
            .entry(reference.clone())
            .or_insert(assignment.first_seen);
        *first = (*first).min(assignment.first_seen);
        self.assignments
            .insert((reference, machine_hash), assignment);
    }

    /// The machine's assignment under this license, if it has one.
    pub fn get(&self, reference: &str, machine_hash: &[u8; 32]) -> Option<Assignment> {
        self.assignments
            .get(&(reference.to_owned(), *machine_hash))
            .copied()
    }

    /// How many distinct machines hold this license.
    pub fn seats_used(&self, reference: &str) -> u32 {
        self.seats_used.get(reference).copied().unwrap_or(0)
    }

    /// When this license was first activated anywhere (for terms counted in days).
    pub fn first_use(&self, reference: &str) -> Option<u64> {
        self.first_use.get(reference).copied()
    }

    /// Gives the machine a seat, durably, before anyone is told.
    pub fn assign(
        &mut self,
        reference: &str,
        machine_hash: &[u8; 32],
        license_id: Uuid,
        now: u64,
    ) -> Result<Assignment, StoreError> {
        let assignment = Assignment {
            license_id,
            first_seen: now,
        };
        let first_seen =
            i64::try_from(now).map_err(|_| StoreError::Corrupt("time out of range"))?;
        self.connection.execute(
            "INSERT INTO assignment (license_ref, machine_hash, license_id, first_seen) VALUES (?1, ?2, ?3, ?4)",
            params![reference, machine_hash.as_slice(), license_id.as_bytes().as_slice(), first_seen],
        )?;
        self.remember(reference.to_owned(), *machine_hash, assignment);
        Ok(assignment)
    }

    /// Reads the stored schema version (for diagnostics and tests).
    pub fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .connection
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lapd.sqlite");
        let id = Uuid::from_u128(0x1234);
        {
            let mut store = Store::open(&path).expect("open");
            store.assign("lic", &[1; 32], id, 100).expect("assign");
            store
                .assign("lic", &[2; 32], Uuid::from_u128(5), 50)
                .expect("assign");
            assert_eq!(store.seats_used("lic"), 2);
        }
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            store.get("lic", &[1; 32]),
            Some(Assignment {
                license_id: id,
                first_seen: 100
            })
        );
        assert_eq!(store.seats_used("lic"), 2);
        assert_eq!(store.first_use("lic"), Some(50));
        assert_eq!(store.get("other", &[1; 32]), None);
        assert_eq!(store.schema_version().expect("pragma"), Some(1));
    }

    #[test]
    fn a_machine_cannot_take_two_seats_of_one_license() {
        let mut store = Store::in_memory().expect("open");
        store
            .assign("lic", &[1; 32], Uuid::from_u128(1), 1)
            .expect("first");
        assert!(
            store
                .assign("lic", &[1; 32], Uuid::from_u128(2), 2)
                .is_err()
        );
        assert_eq!(store.seats_used("lic"), 1);
        assert_eq!(
            store.get("lic", &[1; 32]).map(|a| a.license_id),
            Some(Uuid::from_u128(1))
        );
    }
}
