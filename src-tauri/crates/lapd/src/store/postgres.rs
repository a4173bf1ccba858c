//! The shared backend: PostgreSQL, for any number of servers behind the same SRV records.
//!
//! Taking a seat locks the license's counter row (`INSERT … ON CONFLICT DO UPDATE`, which
//! creates it on the license's first seat and locks it either way) for the length of one short
//! transaction, so two servers never give the last seat twice. A machine that holds a seat
//! reads it without any lock.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use lap_proto::Uuid;
use postgres::config::Host;
use postgres::{Client, Config, NoTls, Statement, Transaction};

use super::model::{
    Assignment, Limit, MachineHash, SCHEMA_VERSION, SeatRow, SeatStore, StoreError, Take, Taken,
    Usage,
};

/// The whole schema at version 2 (PostgreSQL starts there: version 1 was SQLite's only).
const V2: &str = "
CREATE TABLE seat (
    license_ref  TEXT   NOT NULL,
    machine_hash BYTEA  NOT NULL,
    license_id   BYTEA  NOT NULL,
    first_seen   BIGINT NOT NULL,
    PRIMARY KEY (license_ref, machine_hash)
);
CREATE INDEX seat_taken ON seat (license_ref, first_seen);
CREATE TABLE license (
    license_ref TEXT    NOT NULL PRIMARY KEY,
    seats_used  INTEGER NOT NULL,
    first_use   BIGINT
);
";

/// Migrations by the version they bring the schema to.
const MIGRATIONS: [(u32, &str); 1] = [(2, V2)];

/// Any number, the same in every lapd: migrating servers take turns on it.
const MIGRATION_LOCK: i64 = 0x6c61_7064_5345_4154;

/// Waiting longer than this for a connection is waiting on an unreachable database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

const SEAT: &str =
    "SELECT license_id, first_seen FROM seat WHERE license_ref = $1 AND machine_hash = $2";
const USAGE: &str = "SELECT seats_used, first_use FROM license WHERE license_ref = $1";
const COUNT_SINCE: &str = "SELECT COUNT(*) FROM seat WHERE license_ref = $1 AND first_seen >= $2";
/// Creates the counter row on the license's first seat, and locks it either way.
const LOCK_LICENSE: &str =
    "INSERT INTO license (license_ref, seats_used, first_use) VALUES ($1, 0, NULL)
     ON CONFLICT (license_ref) DO UPDATE SET seats_used = license.seats_used
     RETURNING seats_used, first_use";
const INSERT_SEAT: &str = "INSERT INTO seat (license_ref, machine_hash, license_id, first_seen)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
const COUNT_SEAT: &str = "UPDATE license SET seats_used = seats_used + 1,
     first_use = LEAST(first_use, $2) WHERE license_ref = $1 RETURNING seats_used, first_use";

/// One connection and its prepared statements.
struct Connection {
    client: Client,
    seat: Statement,
    usage: Statement,
    count_since: Statement,
    lock_license: Statement,
    insert_seat: Statement,
    count_seat: Statement,
}

impl Connection {
    fn open(config: &Config) -> Result<Self, postgres::Error> {
        let mut client = config.connect(NoTls)?;
        Ok(Self {
            seat: client.prepare(SEAT)?,
            usage: client.prepare(USAGE)?,
            count_since: client.prepare(COUNT_SINCE)?,
            lock_license: client.prepare(LOCK_LICENSE)?,
            insert_seat: client.prepare(INSERT_SEAT)?,
            count_seat: client.prepare(COUNT_SEAT)?,
            client,
        })
    }
}

/// A PostgreSQL seat database, with its connections.
pub struct PostgresStore {
    config: Config,
    /// Names the database in errors and logs: hosts, user, database, never the password.
    what: String,
    /// Connections not in use. Each worker thread takes one for a call: as many connections
    /// as threads at most, opened when first needed, dropped when broken.
    idle: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.what)
            .finish_non_exhaustive()
    }
}

/// Describes a connection configuration without its password.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            // tokio-postgres has Unix sockets only on Unix.
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "postgres {}@{}/{}",
        config.get_user().unwrap_or("-"),
        hosts.join(","),
        config.get_dbname().unwrap_or("-")
    )
}

fn time(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt("time out of range"))
}

fn assignment(license_id: &[u8], first_seen: i64) -> Result<Assignment, StoreError> {
    Ok(Assignment {
        license_id: Uuid::from_slice(license_id).map_err(|_| StoreError::Corrupt("license id"))?,
        first_seen: u64::try_from(first_seen).map_err(|_| StoreError::Corrupt("negative time"))?,
    })
}

fn usage(seats_used: i32, first_use: Option<i64>) -> Result<Usage, StoreError> {
    Ok(Usage {
        seats_used: u32::try_from(seats_used).map_err(|_| StoreError::Corrupt("seat count"))?,
        first_use: first_use
            .map(|t| u64::try_from(t).map_err(|_| StoreError::Corrupt("negative time")))
            .transpose()?,
    })
}

/// A call's failure: the database's own, or the row it read.
enum Failed {
    Db(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failed {
    fn from(error: postgres::Error) -> Self {
        Self::Db(error)
    }
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl PostgresStore {
    /// Connects (failing at once if the database cannot be reached) and migrates the schema to
    /// the current version.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|source| StoreError::Postgres {
            what: "URL".into(),
            source,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("lapd");
        let store = Self {
            what: describe(&config),
            config,
            idle: Mutex::new(Vec::new()),
        };
        let mut client = store.config.connect(NoTls).map_err(|e| store.error(e))?;
        migrate(&mut client).map_err(|e| store.failed(e))?;
        Ok(store)
    }

    fn error(&self, source: postgres::Error) -> StoreError {
        StoreError::Postgres {
            what: self.what.clone(),
            source,
        }
    }

    fn failed(&self, failed: Failed) -> StoreError {
        match failed {
            Failed::Db(source) => self.error(source),
            Failed::Store(error) => error,
        }
    }

    /// Runs `call` on an idle connection (or a new one); a broken one is not given back.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> Result<T, Failed>,
    ) -> Result<T, StoreError> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => Connection::open(&self.config).map_err(|e| self.error(e))?,
        };
        let result = call(&mut connection);
        if !connection.client.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(connection);
        }
        result.map_err(|e| self.failed(e))
    }
}

fn stored_version(client: &mut Transaction<'_>) -> Result<u32, Failed> {
    let version: Option<i32> = client
        .query_one("SELECT MAX(version) FROM schema_version", &[])?
        .get(0);
    u32::try_from(version.unwrap_or(0))
        .map_err(|_| Failed::Store(StoreError::Corrupt("schema version")))
}

/// Brings the schema forward in one transaction; servers starting together take turns.
fn migrate(client: &mut Client) -> Result<u32, Failed> {
    let mut transaction = client.transaction()?;
    transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let found = stored_version(&mut transaction)?;
    if found > SCHEMA_VERSION {
        return Err(Failed::Store(StoreError::NewerSchema {
            found,
            known: SCHEMA_VERSION,
        }));
    }
    for (version, script) in MIGRATIONS {
        if version > found {
            transaction.batch_execute(script)?;
            transaction.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&i32::try_from(version).unwrap_or(i32::MAX)],
            )?;
        }
    }
    transaction.commit()?;
    Ok(found.max(SCHEMA_VERSION))
}

fn read_seat(
    connection: &mut Connection,
    license: &str,
    machine: &MachineHash,
) -> Result<Option<Assignment>, Failed> {
    let row = connection
        .client
        .query_opt(&connection.seat, &[&license, &machine.as_slice()])?;
    Ok(row
        .map(|row| assignment(row.get(0), row.get(1)))
        .transpose()?)
}

fn take(connection: &mut Connection, take: &Take<'_>) -> Result<Taken, Failed> {
    let now = time(take.now)?;
    let machine = take.machine.as_slice();
    let mut transaction = connection.client.transaction()?;
    let row = transaction.query_one(&connection.lock_license, &[&take.license])?;
    let before = usage(row.get(0), row.get(1))?;
    let room = match take.limit {
        Limit::Seats(seats) => before.seats_used < seats,
        Limit::TakenSince { since, cap } => {
            let count: i64 = transaction
                .query_one(&connection.count_since, &[&take.license, &time(since)?])?
                .get(0);
            count < i64::from(cap)
        }
        Limit::None => true,
    };
    let added = room
        && transaction.execute(
            &connection.insert_seat,
            &[
                &take.license,
                &machine,
                &take.license_id.as_bytes().as_slice(),
                &now,
            ],
        )? == 1;
    if !added {
        let held = transaction.query_opt(&connection.seat, &[&take.license, &machine])?;
        transaction.commit()?;
        return Ok(match held {
            Some(row) => Taken::Held {
                seat: assignment(row.get(0), row.get(1))?,
                usage: before,
            },
            None => Taken::Full,
        });
    }
    let row = transaction.query_one(&connection.count_seat, &[&take.license, &now])?;
    let after = usage(row.get(0), row.get(1))?;
    // synchronous_commit: durable before anyone is told.
    transaction.commit()?;
    Ok(Taken::New {
        seat: Assignment {
            license_id: take.license_id,
            first_seen: take.now,
        },
        usage: after,
    })
}

fn import(client: &mut Client, rows: &[SeatRow]) -> Result<u64, Failed> {
    let mut licenses = Vec::with_capacity(rows.len());
    let mut machines = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    for row in rows {
        licenses.push(row.license.as_str());
        machines.push(row.machine.as_slice());
        ids.push(row.seat.license_id.as_bytes().as_slice());
        times.push(time(row.seat.first_seen)?);
    }
    let mut transaction = client.transaction()?;
    let added = transaction.query(
        "INSERT INTO seat (license_ref, machine_hash, license_id, first_seen)
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bigint[])
         ON CONFLICT DO NOTHING RETURNING license_ref, first_seen",
        &[&licenses, &machines, &ids, &times],
    )?;
    // Per license: seats added, earliest first use. In order, so that two imports lock rows
    // in the same order.
    let mut counts: BTreeMap<String, (i32, i64)> = BTreeMap::new();
    for row in &added {
        let first_seen: i64 = row.get(1);
        let entry = counts.entry(row.get(0)).or_insert((0, first_seen));
        entry.0 += 1;
        entry.1 = entry.1.min(first_seen);
    }
    let names: Vec<&str> = counts.keys().map(String::as_str).collect();
    let seats: Vec<i32> = counts.values().map(|c| c.0).collect();
    let firsts: Vec<i64> = counts.values().map(|c| c.1).collect();
    transaction.execute(
        "INSERT INTO license (license_ref, seats_used, first_use)
         SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
         ON CONFLICT (license_ref) DO UPDATE SET seats_used = license.seats_used + excluded.seats_used,
             first_use = LEAST(license.first_use, excluded.first_use)",
        &[&names, &seats, &firsts],
    )?;
    transaction.commit()?;
    Ok(added.len() as u64)
}

impl SeatStore for PostgresStore {
    fn seat(&self, license: &str, machine: &MachineHash) -> Result<Option<Assignment>, StoreError> {
        self.with(|c| read_seat(c, license, machine))
    }

    fn usage(&self, license: &str) -> Result<Usage, StoreError> {
        self.with(|c| {
            let row = c.client.query_opt(&c.usage, &[&license])?;
            Ok(match row {
                Some(row) => usage(row.get(0), row.get(1))?,
                None => Usage::default(),
            })
        })
    }

    fn seats_taken_since(&self, license: &str, since: u64) -> Result<u32, StoreError> {
        self.with(|c| {
            let count: i64 = c
                .client
                .query_one(&c.count_since, &[&license, &time(since)?])?
                .get(0);
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    fn take_seat(&self, request: &Take<'_>) -> Result<Taken, StoreError> {
        self.with(|c| take(c, request))
    }

    fn seat_count(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            let count: i64 = c
                .client
                .query_one(
                    "SELECT COALESCE(SUM(seats_used), 0)::bigint FROM license",
                    &[],
                )?
                .get(0);
            Ok(u64::try_from(count).unwrap_or_default())
        })
    }

    fn schema_version(&self) -> Result<u32, StoreError> {
        self.with(|c| {
            let mut transaction = c.client.transaction()?;
            let version = stored_version(&mut transaction)?;
            transaction.commit()?;
            Ok(version)
        })
    }

    fn export(
        &self,
        batch: usize,
        each: &mut dyn FnMut(&[SeatRow]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let limit = i64::try_from(batch.max(1)).unwrap_or(i64::MAX);
        let mut after: Option<(String, Vec<u8>)> = None;
        loop {
            let rows = self.with(|c| {
                let (license, machine) = after.clone().unwrap_or_default();
                Ok(c.client.query(
                    "SELECT license_ref, machine_hash, license_id, first_seen FROM seat
                     WHERE $1 OR (license_ref, machine_hash) > ($2, $3)
                     ORDER BY license_ref, machine_hash LIMIT $4",
                    &[&after.is_none(), &license, &machine, &limit],
                )?)
            })?;
            let chunk = rows
                .iter()
                .map(|row| {
                    let machine: &[u8] = row.get(1);
                    Ok(SeatRow {
                        license: row.get(0),
                        machine: machine
                            .try_into()
                            .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))?,
                        seat: assignment(row.get(2), row.get(3))?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let Some(last) = chunk.last() else {
                return Ok(());
            };
            after = Some((last.license.clone(), last.machine.to_vec()));
            each(&chunk)?;
        }
    }

    fn import(&self, rows: &[SeatRow]) -> Result<u64, StoreError> {
        self.with(|c| import(&mut c.client, rows))
    }
}
