//! The shared backend: PostgreSQL, for any number of servers behind the same SRV records.
//!
//! Taking a seat locks the license's counter row (`INSERT … ON CONFLICT DO UPDATE`, which
//! creates it on the license's first seat and locks it either way) for the length of one short
//! transaction, so two servers never give the last seat twice. A machine that holds a seat
//! reads it without any lock.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use lap_proto::Uuid;
use postgres::config::{Host, SslMode};
use postgres::{Client, Config, NoTls, Statement, Transaction};
use postgres_native_tls::MakeTlsConnector;

use super::model::{
    Assignment, CapReached, Lease, Limit, ListedSeat, Listing, MachineHash, Move, Moved, PoolAsk,
    PoolGrant, Released, SCHEMA_VERSION, SeatRow, SeatStore, StoreError, Take, Taken, Touch,
    TransferCap, Usage, Write, Written,
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

/// Version 3 (profile 1.1 lifecycle, §9): per seat a stable id (existing seats numbered by
/// the sequence), last seen (first seen for existing seats), the last answer's NotAfter, the
/// highest Generation and the ClientBaseId that took it; a log of transfers.
const V3: &str = "
ALTER TABLE seat ADD COLUMN seat_id BIGSERIAL;
ALTER TABLE seat ADD COLUMN last_seen BIGINT;
UPDATE seat SET last_seen = first_seen;
ALTER TABLE seat ALTER COLUMN last_seen SET NOT NULL;
ALTER TABLE seat ADD COLUMN not_after BIGINT;
ALTER TABLE seat ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE seat ADD COLUMN client_base_id BYTEA;
CREATE UNIQUE INDEX seat_by_id ON seat (seat_id);
CREATE TABLE transfer (
    license_ref TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    seat_id     BIGINT NOT NULL
);
CREATE INDEX transfer_at ON transfer (license_ref, at);
";

/// Version 4 (profile 1.1 indirect setup, §10): per pool license and intermediate
/// (MachineHash) the seats granted, the end of the grant, the usage it reported and its last
/// contact. Nothing existing changes.
const V4: &str = "
CREATE TABLE pool_grant (
    license_ref  TEXT   NOT NULL,
    machine_hash BYTEA  NOT NULL,
    seats        BIGINT NOT NULL,
    in_use       BIGINT NOT NULL,
    not_after    BIGINT NOT NULL,
    last_contact BIGINT NOT NULL,
    PRIMARY KEY (license_ref, machine_hash)
);
";

/// Migrations by the version they bring the schema to.
const MIGRATIONS: [(u32, &str); 3] = [(2, V2), (3, V3), (4, V4)];

/// The columns [`pool_grant`] reads, in its order.
const POOL_COLUMNS: &str = "license_ref, machine_hash, seats, in_use, not_after, last_contact";

/// Any number, the same in every lapd: migrating servers take turns on it.
const MIGRATION_LOCK: i64 = 0x6c61_7064_5345_4154;

/// Connections one lapd opens at most, whatever its number of threads: each call holds one
/// for a few indexed statements, and writes share one per commit (group commit), so a few
/// serve many threads, and many servers fit under PostgreSQL's `max_connections` (100 by
/// default).
pub const MAX_CONNECTIONS: usize = 8;

/// Waiting longer than this for a connection is waiting on an unreachable database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A statement running longer than this (a lock never released, a database in trouble) is
/// cancelled by the server, so that a worker thread is not held: every request's statement
/// is an indexed read or a short write. Schema migrations and listings run without it.
const STATEMENT_TIMEOUT_MS: u32 = 5_000;
/// Unacknowledged data on a TCP connection for this long (a database host gone silent)
/// breaks the connection instead of hanging its worker (Linux; ignored for Unix sockets).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// The columns [`assignment`] reads, in its order.
const SEAT_COLUMNS: &str =
    "seat_id, license_id, first_seen, last_seen, not_after, generation, client_base_id";
const SEAT: &str =
    "SELECT seat_id, license_id, first_seen, last_seen, not_after, generation, client_base_id
     FROM seat WHERE license_ref = $1 AND machine_hash = $2";
const USAGE: &str = "SELECT seats_used, first_use FROM license WHERE license_ref = $1";
const COUNT_SINCE: &str = "SELECT COUNT(*) FROM seat WHERE license_ref = $1 AND first_seen >= $2";
/// Creates the counter row on the license's first seat, and locks it either way.
const LOCK_LICENSE: &str =
    "INSERT INTO license (license_ref, seats_used, first_use) VALUES ($1, 0, NULL)
     ON CONFLICT (license_ref) DO UPDATE SET seats_used = license.seats_used
     RETURNING seats_used, first_use";
const INSERT_SEAT: &str = "INSERT INTO seat (license_ref, machine_hash, license_id, first_seen,
         last_seen, not_after, generation, client_base_id)
     VALUES ($1, $2, $3, $4, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING seat_id";
const COUNT_SEAT: &str = "UPDATE license SET seats_used = seats_used + 1,
     first_use = LEAST(first_use, $2) WHERE license_ref = $1 RETURNING seats_used, first_use";

/// A connection's prepared statements.
struct Statements {
    seat: Statement,
    usage: Statement,
    count_since: Statement,
    lock_license: Statement,
    insert_seat: Statement,
    count_seat: Statement,
    touch: Statement,
    touch_many: Statement,
}

/// Records an answer to a machine holding a seat, in one round trip: the row lock keeps "the
/// seat as it was before" exact against a concurrent touch, and the update (which needs the
/// locked row first) writes only a seat that exists.
const TOUCH: &str = "WITH before AS (
         SELECT seat_id, license_id, first_seen, last_seen, not_after, generation, client_base_id
         FROM seat WHERE license_ref = $1 AND machine_hash = $2 FOR UPDATE),
     touched AS (
         UPDATE seat SET last_seen = GREATEST(last_seen, $3), not_after = $4,
             generation = GREATEST(generation, $5), client_base_id = COALESCE(client_base_id, $6)
         WHERE license_ref = $1 AND machine_hash = $2 AND EXISTS (SELECT 1 FROM before))
     SELECT * FROM before";

/// [`TOUCH`] for several seats at once (each at most once), in one round trip: input row `n`
/// comes back as `n` with its seat as it was, when it holds one. Every lock is taken, in
/// the order of `n`, before the first row is updated (the count reads all of `before`).
const TOUCH_MANY: &str = "WITH input AS (
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[],
             $6::bytea[], $7::int[])
             AS i(license_ref, machine_hash, now, not_after, generation, client_base_id, n)),
     before AS (
         SELECT i.n, s.seat_id, s.license_id, s.first_seen, s.last_seen, s.not_after,
             s.generation, s.client_base_id
         FROM input i JOIN seat s
             ON s.license_ref = i.license_ref AND s.machine_hash = i.machine_hash
         ORDER BY i.n FOR UPDATE OF s),
     touched AS (
         UPDATE seat s SET last_seen = GREATEST(s.last_seen, i.now), not_after = i.not_after,
             generation = GREATEST(s.generation, i.generation),
             client_base_id = COALESCE(s.client_base_id, i.client_base_id)
         FROM input i
         WHERE s.license_ref = i.license_ref AND s.machine_hash = i.machine_hash
             AND (SELECT COUNT(*) FROM before) > 0)
     SELECT * FROM before";

/// One connection and its prepared statements.
struct Connection {
    client: Client,
    statements: Statements,
}

impl Connection {
    fn open(config: &Config, tls: Option<&MakeTlsConnector>) -> Result<Self, postgres::Error> {
        let mut client = connect(config, tls)?;
        Ok(Self {
            statements: Statements {
                seat: client.prepare(SEAT)?,
                usage: client.prepare(USAGE)?,
                count_since: client.prepare(COUNT_SINCE)?,
                lock_license: client.prepare(LOCK_LICENSE)?,
                insert_seat: client.prepare(INSERT_SEAT)?,
                count_seat: client.prepare(COUNT_SEAT)?,
                touch: client.prepare(TOUCH)?,
                touch_many: client.prepare(TOUCH_MANY)?,
            },
            client,
        })
    }
}

/// A connection slot of the pool in use, given back however the call ends. After a panic
/// the connection's state is unknown, so it is closed and its slot freed: a slot kept
/// counted would be lost for good, and [`MAX_CONNECTIONS`] of them would leave every request
/// waiting for a connection.
struct Slot<'a> {
    store: &'a PostgresStore,
    /// `None` until opened, or when opening failed.
    connection: Option<Connection>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let reusable = self
            .connection
            .take()
            .filter(|c| !std::thread::panicking() && !c.client.is_closed());
        self.store.give_back(reusable);
    }
}

/// A PostgreSQL seat database, with its connections.
pub struct PostgresStore {
    config: Config,
    /// TLS for TCP connections when the URL asks for it (`sslmode=require`); Unix sockets
    /// never use it. `None` when not asked for: making a connector reads the system's whole
    /// certificate store, which took most of lapd's start-up on PostgreSQL.
    tls: Option<MakeTlsConnector>,
    /// Names the database in errors and logs: hosts, user, database, never the password.
    what: String,
    /// The connections: at most [`MAX_CONNECTIONS`], opened when first needed, dropped when
    /// broken. A call takes an idle one, or waits for one.
    pool: Mutex<Pool>,
    returned: Condvar,
}

/// Connections not in use, and how many are open in all.
#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("database", &self.what)
            .finish_non_exhaustive()
    }
}

/// Connects with TLS only when there is a connector (the URL asked for TLS).
fn connect(config: &Config, tls: Option<&MakeTlsConnector>) -> Result<Client, postgres::Error> {
    match tls {
        Some(tls) => config.connect(tls.clone()),
        None => config.connect(NoTls),
    }
}

/// The TLS side of connections: the system's certificate store, and a private CA if given.
fn tls_connector(root_certificate: Option<&Path>) -> Result<MakeTlsConnector, StoreError> {
    let tls_error = |reason: String| StoreError::Tls(reason);
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = root_certificate {
        let pem = std::fs::read(path)
            .map_err(|e| tls_error(format!("root certificate {}: {e}", path.display())))?;
        let certificate = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            tls_error(format!(
                "root certificate {}: not a PEM certificate ({e})",
                path.display()
            ))
        })?;
        builder.add_root_certificate(certificate);
    }
    let connector = builder
        .build()
        .map_err(|e| tls_error(format!("the system's TLS library: {e}")))?;
    Ok(MakeTlsConnector::new(connector))
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

fn unsigned(value: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(what))
}

/// Reads [`SEAT_COLUMNS`] starting at column `at`.
fn assignment(row: &postgres::Row, at: usize) -> Result<Assignment, StoreError> {
    let id: &[u8] = row.get(at + 1);
    let client: Option<&[u8]> = row.get(at + 6);
    Ok(Assignment {
        seat_id: unsigned(row.get(at), "seat id")?,
        license_id: Uuid::from_slice(id).map_err(|_| StoreError::Corrupt("license id"))?,
        first_seen: unsigned(row.get(at + 2), "negative time")?,
        last_seen: unsigned(row.get(at + 3), "negative time")?,
        not_after: row
            .get::<_, Option<i64>>(at + 4)
            .map(|t| unsigned(t, "negative time"))
            .transpose()?,
        generation: u32::try_from(row.get::<_, i64>(at + 5))
            .map_err(|_| StoreError::Corrupt("generation"))?,
        client_base_id: client
            .map(|c| Uuid::from_slice(c).map_err(|_| StoreError::Corrupt("client base id")))
            .transpose()?,
    })
}

fn listed(row: &postgres::Row) -> Result<ListedSeat, StoreError> {
    let machine: &[u8] = row.get(1);
    Ok(ListedSeat {
        license: row.get(0),
        machine: machine
            .try_into()
            .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))?,
        seat: assignment(row, 2)?,
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
        Self::open_with(
            url,
            std::env::var_os("PGSSLROOTCERT")
                .map(std::path::PathBuf::from)
                .as_deref(),
        )
    }

    /// As [`Self::open`], trusting `root_certificate` (PEM, a private CA; libpq's
    /// `PGSSLROOTCERT`) besides the system's certificate store.
    pub fn open_with(url: &str, root_certificate: Option<&Path>) -> Result<Self, StoreError> {
        let mut config: Config = url.parse().map_err(|source| StoreError::Postgres {
            what: "URL".into(),
            source,
        })?;
        // TLS only when asked for (`sslmode=require`), and then with the certificate checked.
        // `prefer`, the default, stays a plain connection as before: a server offering TLS
        // with a certificate nobody here trusts (Debian's own snake-oil one, say) must not
        // turn a working plain setup into a refused one on upgrade.
        if config.get_ssl_mode() == SslMode::Prefer {
            config.ssl_mode(SslMode::Disable);
        }
        // As libpq, a root certificate is read only for TLS.
        let tls = (config.get_ssl_mode() != SslMode::Disable)
            .then(|| tls_connector(root_certificate))
            .transpose()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("lapd");
        // The vendor's own `options` in the URL stay; a statement_timeout there wins.
        let options = match config.get_options() {
            Some(own) if own.contains("statement_timeout") => own.to_owned(),
            Some(own) => format!("{own} -c statement_timeout={STATEMENT_TIMEOUT_MS}"),
            None => format!("-c statement_timeout={STATEMENT_TIMEOUT_MS}"),
        };
        config.options(&options);
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let store = Self {
            what: describe(&config),
            config,
            tls,
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        };
        let mut client = connect(&store.config, store.tls.as_ref()).map_err(|e| store.error(e))?;
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

    /// Runs `call` on an idle connection, a new one while fewer than [`MAX_CONNECTIONS`] are
    /// open, or the first one given back; a broken one is not given back.
    fn with<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> Result<T, Failed>,
    ) -> Result<T, StoreError> {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = loop {
            if let Some(connection) = pool.idle.pop() {
                break Some(connection);
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                break None;
            }
            pool = self
                .returned
                .wait(pool)
                .unwrap_or_else(PoisonError::into_inner);
        };
        drop(pool);
        let mut slot = Slot {
            store: self,
            connection: None,
        };
        let connection = match idle {
            Some(connection) => slot.connection.insert(connection),
            None => slot.connection.insert(
                Connection::open(&self.config, self.tls.as_ref()).map_err(|e| self.error(e))?,
            ),
        };
        call(connection).map_err(|e| self.failed(e))
    }

    /// Returns a connection to the pool (`None`: it is closed, or never opened).
    fn give_back(&self, connection: Option<Connection>) {
        let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        match connection {
            Some(connection) => pool.idle.push(connection),
            None => pool.open -= 1,
        }
        drop(pool);
        self.returned.notify_one();
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
    // Adding columns to millions of seats takes longer than a request's statement may.
    transaction.batch_execute("SET LOCAL statement_timeout = 0")?;
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
    let row = connection.client.query_opt(
        &connection.statements.seat,
        &[&license, &machine.as_slice()],
    )?;
    Ok(row.map(|row| assignment(&row, 0)).transpose()?)
}

fn take(connection: &mut Connection, take: &Take<'_>) -> Result<Taken, Failed> {
    let mut transaction = connection.client.transaction()?;
    let taken = take_in(&mut transaction, &connection.statements, take)?;
    // synchronous_commit: durable before anyone is told.
    transaction.commit()?;
    Ok(taken)
}

/// Takes a seat inside `transaction` (see [`SeatStore::take_seat`]); the caller commits.
fn take_in(
    transaction: &mut Transaction<'_>,
    statements: &Statements,
    take: &Take<'_>,
) -> Result<Taken, Failed> {
    let now = time(take.now)?;
    let machine = take.machine.as_slice();
    let row = transaction.query_one(&statements.lock_license, &[&take.license])?;
    let before = usage(row.get(0), row.get(1))?;
    let room = match take.limit {
        Limit::Seats(seats) => before.seats_used < seats,
        Limit::TakenSince { since, cap } => {
            let count: i64 = transaction
                .query_one(&statements.count_since, &[&take.license, &time(since)?])?
                .get(0);
            count < i64::from(cap)
        }
        Limit::None => true,
    };
    let added = if room {
        let not_after = take.not_after.map(time).transpose()?;
        let client = take.client_base_id.map(|c| c.as_bytes().to_vec());
        transaction.query_opt(
            &statements.insert_seat,
            &[
                &take.license,
                &machine,
                &take.license_id.as_bytes().as_slice(),
                &now,
                &not_after,
                &i64::from(take.generation),
                &client,
            ],
        )?
    } else {
        None
    };
    let Some(added) = added else {
        let held = transaction.query_opt(&statements.seat, &[&take.license, &machine])?;
        return Ok(match held {
            Some(row) => Taken::Held {
                seat: assignment(&row, 0)?,
                usage: before,
            },
            None => Taken::Full,
        });
    };
    let row = transaction.query_one(&statements.count_seat, &[&take.license, &now])?;
    let after = usage(row.get(0), row.get(1))?;
    Ok(Taken::New {
        seat: Assignment {
            seat_id: unsigned(added.get(0), "seat id")?,
            generation: take.generation,
            not_after: take.not_after,
            client_base_id: take.client_base_id,
            ..Assignment::new(take.license_id, take.now)
        },
        usage: after,
    })
}

/// Does `writes` in one transaction: one commit, one flush (see [`SeatStore::write_batch`]).
/// The takes go one by one in their order; the touches after them, all in one statement when
/// no seat is touched twice (else one by one): a touch's result depends only on its own seat,
/// which a take in the batch may have created before it.
fn write_batch(connection: &mut Connection, writes: &[Write<'_>]) -> Result<Vec<Written>, Failed> {
    let mut transaction = connection.client.transaction()?;
    let statements = &connection.statements;
    let mut written: Vec<Option<Written>> = vec![None; writes.len()];
    let mut touches = Vec::new();
    for (n, write) in writes.iter().enumerate() {
        match write {
            Write::Take(take) => {
                written[n] = Some(Written::Taken(take_in(&mut transaction, statements, take)?));
            }
            Write::Touch(touch) => touches.push((n, touch)),
        }
    }
    let mut seats: Vec<(&str, &MachineHash)> = touches
        .iter()
        .map(|(_, t)| (t.license, t.machine))
        .collect();
    seats.sort_unstable();
    seats.dedup();
    if seats.len() == touches.len() && touches.len() > 1 {
        for (n, before) in touch_many(&mut transaction, statements, &touches)? {
            written[n] = Some(Written::Touched(before));
        }
    } else {
        for (n, touch) in touches {
            written[n] = Some(Written::Touched(touch_in(
                &mut transaction,
                statements,
                touch,
            )?));
        }
    }
    // synchronous_commit: durable before anyone is told.
    transaction.commit()?;
    written
        .into_iter()
        .map(|w| {
            w.ok_or(Failed::Store(StoreError::Corrupt(
                "a write of the batch was not done",
            )))
        })
        .collect()
}

/// Touches distinct seats in one statement ([`TOUCH_MANY`]); each write's index and the seat
/// as it was before (`None`: no such seat, nothing written).
fn touch_many(
    transaction: &mut Transaction<'_>,
    statements: &Statements,
    touches: &[(usize, &Touch<'_>)],
) -> Result<Vec<(usize, Option<Assignment>)>, Failed> {
    let mut licenses = Vec::with_capacity(touches.len());
    let mut machines = Vec::with_capacity(touches.len());
    let mut nows = Vec::with_capacity(touches.len());
    let mut not_afters = Vec::with_capacity(touches.len());
    let mut generations = Vec::with_capacity(touches.len());
    let mut clients = Vec::with_capacity(touches.len());
    let mut numbers = Vec::with_capacity(touches.len());
    for (n, touch) in touches {
        licenses.push(touch.license);
        machines.push(touch.machine.as_slice());
        nows.push(time(touch.now)?);
        not_afters.push(touch.not_after.map(time).transpose()?);
        generations.push(i64::from(touch.generation.unwrap_or(0)));
        clients.push(touch.client_base_id.as_bytes().as_slice());
        numbers.push(i32::try_from(*n).map_err(|_| StoreError::Corrupt("batch too large"))?);
    }
    let rows = transaction.query(
        &statements.touch_many,
        &[
            &licenses,
            &machines,
            &nows,
            &not_afters,
            &generations,
            &clients,
            &numbers,
        ],
    )?;
    let mut found: Vec<(usize, Option<Assignment>)> =
        touches.iter().map(|(n, _)| (*n, None)).collect();
    for row in &rows {
        let n: i32 = row.get(0);
        let slot = found
            .iter_mut()
            .find(|(m, _)| i32::try_from(*m).ok() == Some(n))
            .ok_or(StoreError::Corrupt("a touched seat the batch did not name"))?;
        slot.1 = Some(assignment(row, 1)?);
    }
    Ok(found)
}

fn import(client: &mut Client, rows: &[SeatRow]) -> Result<u64, Failed> {
    let mut licenses = Vec::with_capacity(rows.len());
    let mut machines = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    let mut seen = Vec::with_capacity(rows.len());
    let mut not_afters = Vec::with_capacity(rows.len());
    let mut generations = Vec::with_capacity(rows.len());
    let mut clients = Vec::with_capacity(rows.len());
    for row in rows {
        licenses.push(row.license.as_str());
        machines.push(row.machine.as_slice());
        ids.push(row.seat.license_id.as_bytes().as_slice());
        times.push(time(row.seat.first_seen)?);
        seen.push(time(row.seat.last_seen.max(row.seat.first_seen))?);
        not_afters.push(row.seat.not_after.map(time).transpose()?);
        generations.push(i64::from(row.seat.generation));
        clients.push(row.seat.client_base_id.map(|c| c.as_bytes().to_vec()));
    }
    let mut transaction = client.transaction()?;
    // `lapd db import` and `db fill`, not a worker: a batch may take its time.
    transaction.batch_execute("SET LOCAL statement_timeout = 0")?;
    // Seat ids are the target's own (from its sequence): the source's may be taken.
    let added = transaction.query(
        "INSERT INTO seat (license_ref, machine_hash, license_id, first_seen, last_seen,
             not_after, generation, client_base_id)
         SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bigint[], $5::bigint[],
             $6::bigint[], $7::bigint[], $8::bytea[])
         ON CONFLICT DO NOTHING RETURNING license_ref, first_seen",
        &[
            &licenses,
            &machines,
            &ids,
            &times,
            &seen,
            &not_afters,
            &generations,
            &clients,
        ],
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

/// Locks the license's counter row for the transaction (no row: no seat to change).
fn lock_license(transaction: &mut Transaction<'_>, license: &str) -> Result<bool, Failed> {
    Ok(transaction
        .query_opt(
            "SELECT seats_used FROM license WHERE license_ref = $1 FOR UPDATE",
            &[&license],
        )?
        .is_some())
}

fn seat_in(
    transaction: &mut Transaction<'_>,
    license: &str,
    machine: &MachineHash,
) -> Result<Option<Assignment>, Failed> {
    let row = transaction.query_opt(
        &format!("SELECT {SEAT_COLUMNS} FROM seat WHERE license_ref = $1 AND machine_hash = $2"),
        &[&license, &machine.as_slice()],
    )?;
    Ok(row.map(|row| assignment(&row, 0)).transpose()?)
}

fn count_transfers(
    transaction: &mut Transaction<'_>,
    license: &str,
    since: u64,
) -> Result<i64, Failed> {
    Ok(transaction
        .query_one(
            "SELECT COUNT(*) FROM transfer WHERE license_ref = $1 AND at >= $2",
            &[&license, &time(since)?],
        )?
        .get(0))
}

/// `Some(oldest counted transfer, if any)` when the cap is reached (under the license's lock).
fn cap_reached(
    transaction: &mut Transaction<'_>,
    license: &str,
    cap: Option<TransferCap>,
) -> Result<Option<CapReached>, Failed> {
    let Some(cap) = cap else { return Ok(None) };
    let count = count_transfers(transaction, license, cap.since)?;
    if count < i64::from(cap.cap) {
        return Ok(None);
    }
    let at: Option<i64> = transaction
        .query_opt(
            "SELECT at FROM transfer WHERE license_ref = $1 AND at >= $2 ORDER BY at LIMIT 1 OFFSET $3",
            &[&license, &time(cap.since)?, &(count - i64::from(cap.cap))],
        )?
        .map(|row| row.get(0));
    Ok(Some(CapReached {
        oldest_counted: at.map(|at| unsigned(at, "negative time")).transpose()?,
    }))
}

fn remove_seat(
    transaction: &mut Transaction<'_>,
    license: &str,
    seat_id: u64,
    now: u64,
) -> Result<(), Failed> {
    let id = time(seat_id)?;
    transaction.execute("DELETE FROM seat WHERE seat_id = $1", &[&id])?;
    transaction.execute(
        "UPDATE license SET seats_used = seats_used - 1 WHERE license_ref = $1",
        &[&license],
    )?;
    transaction.execute(
        "INSERT INTO transfer (license_ref, at, kind, seat_id) VALUES ($1, $2, 'release', $3)",
        &[&license, &time(now)?, &id],
    )?;
    Ok(())
}

fn touch(connection: &mut Connection, touch: &Touch<'_>) -> Result<Option<Assignment>, Failed> {
    let mut transaction = connection.client.transaction()?;
    let before = touch_in(&mut transaction, &connection.statements, touch)?;
    transaction.commit()?;
    Ok(before)
}

/// Records an answer inside `transaction` (see [`SeatStore::touch`]); the caller commits.
fn touch_in(
    transaction: &mut Transaction<'_>,
    statements: &Statements,
    touch: &Touch<'_>,
) -> Result<Option<Assignment>, Failed> {
    let row = transaction.query_opt(
        &statements.touch,
        &[
            &touch.license,
            &touch.machine.as_slice(),
            &time(touch.now)?,
            &touch.not_after.map(time).transpose()?,
            &i64::from(touch.generation.unwrap_or(0)),
            &touch.client_base_id.as_bytes().as_slice(),
        ],
    )?;
    Ok(row.map(|row| assignment(&row, 0)).transpose()?)
}

fn release(
    client: &mut Client,
    license: &str,
    machine: &MachineHash,
    now: u64,
    cap: Option<TransferCap>,
) -> Result<Released, Failed> {
    let mut transaction = client.transaction()?;
    if !lock_license(&mut transaction, license)? {
        return Ok(Released::NotHeld);
    }
    let Some(seat) = seat_in(&mut transaction, license, machine)? else {
        return Ok(Released::NotHeld);
    };
    if let Some(CapReached { oldest_counted }) = cap_reached(&mut transaction, license, cap)? {
        return Ok(Released::CapReached { oldest_counted });
    }
    remove_seat(&mut transaction, license, seat.seat_id, now)?;
    // synchronous_commit: durable before the answer says so.
    transaction.commit()?;
    Ok(Released::Freed(seat))
}

fn move_seat(client: &mut Client, request: &Move<'_>) -> Result<Moved, Failed> {
    let mut transaction = client.transaction()?;
    if !lock_license(&mut transaction, request.license)? {
        return Ok(Moved::NotEligible);
    }
    let Some(seat) = seat_in(&mut transaction, request.license, request.from)? else {
        return Ok(Moved::NotEligible);
    };
    if seat.client_base_id != Some(request.client_base_id)
        || seat_in(&mut transaction, request.license, request.to)?.is_some()
    {
        return Ok(Moved::NotEligible);
    }
    if let Some(CapReached { oldest_counted }) =
        cap_reached(&mut transaction, request.license, request.cap)?
    {
        return Ok(Moved::CapReached { oldest_counted });
    }
    let now = time(request.now)?;
    let id = time(seat.seat_id)?;
    transaction.execute(
        "UPDATE seat SET machine_hash = $2, last_seen = GREATEST(last_seen, $3) WHERE seat_id = $1",
        &[&id, &request.to.as_slice(), &now],
    )?;
    transaction.execute(
        "INSERT INTO transfer (license_ref, at, kind, seat_id) VALUES ($1, $2, 'move', $3)",
        &[&request.license, &now, &id],
    )?;
    let row = transaction.query_one(USAGE, &[&request.license])?;
    let usage = usage(row.get(0), row.get(1))?;
    transaction.commit()?;
    Ok(Moved::Moved {
        seat: Assignment {
            last_seen: seat.last_seen.max(request.now),
            ..seat
        },
        usage,
    })
}

fn reclaim(client: &mut Client, license: &str, lease: Lease) -> Result<u32, Failed> {
    let mut transaction = client.transaction()?;
    if !lock_license(&mut transaction, license)? {
        return Ok(0);
    }
    let freed = transaction.execute(
        "DELETE FROM seat WHERE license_ref = $1 AND CASE
             WHEN $2::bigint IS NOT NULL AND not_after IS NOT NULL THEN not_after < $2::bigint
             ELSE last_seen < $3 END",
        &[
            &license,
            &lease.not_after_before.map(time).transpose()?,
            &time(lease.last_seen_before)?,
        ],
    )?;
    let freed = i32::try_from(freed).unwrap_or(i32::MAX);
    if freed > 0 {
        transaction.execute(
            "UPDATE license SET seats_used = seats_used - $2 WHERE license_ref = $1",
            &[&license, &freed],
        )?;
    }
    transaction.commit()?;
    Ok(u32::try_from(freed).unwrap_or_default())
}

fn release_by_id(
    client: &mut Client,
    seat_id: u64,
    now: u64,
) -> Result<Option<ListedSeat>, Failed> {
    let mut transaction = client.transaction()?;
    let id = time(seat_id)?;
    // The license first (its lock orders this against takes), then the seat again under it.
    let Some(row) =
        transaction.query_opt("SELECT license_ref FROM seat WHERE seat_id = $1", &[&id])?
    else {
        return Ok(None);
    };
    let license: String = row.get(0);
    lock_license(&mut transaction, &license)?;
    let row = transaction.query_opt(
        &format!("SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat WHERE seat_id = $1"),
        &[&id],
    )?;
    let Some(row) = row else {
        return Ok(None);
    };
    let found = listed(&row)?;
    remove_seat(&mut transaction, &found.license, seat_id, now)?;
    transaction.commit()?;
    Ok(Some(found))
}

fn list(client: &mut Client, which: Listing<'_>) -> Result<Vec<ListedSeat>, Failed> {
    let mut transaction = client.transaction()?;
    // A listing of every seat is a support desk's, not a worker's: it may take its time.
    transaction.batch_execute("SET LOCAL statement_timeout = 0")?;
    let rows = match which {
        Listing::All => transaction.query(
            &format!(
                "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat ORDER BY license_ref, seat_id"
            ),
            &[],
        )?,
        Listing::Licenses(licenses) => transaction.query(
            &format!(
                "SELECT license_ref, machine_hash, {SEAT_COLUMNS} FROM seat WHERE license_ref = ANY($1)
                 ORDER BY license_ref, seat_id"
            ),
            &[&licenses],
        )?,
    };
    transaction.commit()?;
    Ok(rows.iter().map(listed).collect::<Result<_, _>>()?)
}

fn pool_grant(row: &postgres::Row) -> Result<PoolGrant, StoreError> {
    let count = |at: usize| {
        u32::try_from(row.get::<_, i64>(at)).map_err(|_| StoreError::Corrupt("pool seat count"))
    };
    let machine: Vec<u8> = row.get(1);
    Ok(PoolGrant {
        license: row.get(0),
        machine: machine
            .try_into()
            .map_err(|_| StoreError::Corrupt("machine hash is not 32 bytes"))?,
        seats: count(2)?,
        in_use: count(3)?,
        not_after: unsigned(row.get(4), "negative time")?,
        last_contact: unsigned(row.get(5), "negative time")?,
    })
}

/// Any number, the same in every lapd: the lock that serialises grants of one pool license
/// across servers is this and the license's reference hashed into it by PostgreSQL.
const POOL_LOCK: i32 = 0x504f_4f4c;

fn grant_pool(client: &mut Client, ask: &PoolAsk<'_>) -> Result<PoolGrant, Failed> {
    let mut transaction = client.transaction()?;
    // Two servers granting seats of one pool at once take turns: the sum below and the write
    // after it are one step for every intermediate of the license.
    transaction.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&POOL_LOCK, &ask.license],
    )?;
    let held_by_others: i64 = transaction
        .query_one(
            "SELECT COALESCE(SUM(seats), 0)::bigint FROM pool_grant
             WHERE license_ref = $1 AND machine_hash <> $2 AND not_after > $3",
            &[&ask.license, &ask.machine.as_slice(), &time(ask.now)?],
        )?
        .get(0);
    let left = i64::from(ask.total).saturating_sub(held_by_others).max(0);
    let seats = i64::from(ask.wanted).min(left);
    let row = transaction.query_one(
        &format!(
            "INSERT INTO pool_grant (license_ref, machine_hash, seats, in_use, not_after, last_contact)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (license_ref, machine_hash) DO UPDATE SET seats = $3, in_use = $4,
                 not_after = $5, last_contact = $6
             RETURNING {POOL_COLUMNS}"
        ),
        &[
            &ask.license,
            &ask.machine.as_slice(),
            &seats,
            &i64::from(ask.in_use),
            &time(ask.not_after)?,
            &time(ask.now)?,
        ],
    )?;
    let grant = pool_grant(&row)?;
    transaction.commit()?;
    Ok(grant)
}

impl SeatStore for PostgresStore {
    fn seat(&self, license: &str, machine: &MachineHash) -> Result<Option<Assignment>, StoreError> {
        self.with(|c| read_seat(c, license, machine))
    }

    fn usage(&self, license: &str) -> Result<Usage, StoreError> {
        self.with(|c| {
            let row = c.client.query_opt(&c.statements.usage, &[&license])?;
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
                .query_one(&c.statements.count_since, &[&license, &time(since)?])?
                .get(0);
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
    }

    fn take_seat(&self, request: &Take<'_>) -> Result<Taken, StoreError> {
        self.with(|c| take(c, request))
    }

    fn touch(&self, request: &Touch<'_>) -> Result<Option<Assignment>, StoreError> {
        self.with(|c| touch(c, request))
    }

    fn write_batch(&self, writes: &[Write<'_>]) -> Result<Vec<Written>, StoreError> {
        self.with(|c| write_batch(c, writes))
    }

    fn release(
        &self,
        license: &str,
        machine: &MachineHash,
        now: u64,
        cap: Option<TransferCap>,
    ) -> Result<Released, StoreError> {
        self.with(|c| release(&mut c.client, license, machine, now, cap))
    }

    fn move_seat(&self, request: &Move<'_>) -> Result<Moved, StoreError> {
        self.with(|c| move_seat(&mut c.client, request))
    }

    fn reclaim_expired(&self, license: &str, lease: Lease) -> Result<u32, StoreError> {
        self.with(|c| reclaim(&mut c.client, license, lease))
    }

    fn release_by_id(&self, seat_id: u64, now: u64) -> Result<Option<ListedSeat>, StoreError> {
        self.with(|c| release_by_id(&mut c.client, seat_id, now))
    }

    fn list(&self, which: Listing<'_>) -> Result<Vec<ListedSeat>, StoreError> {
        self.with(|c| list(&mut c.client, which))
    }

    fn transfers_since(&self, license: &str, since: u64) -> Result<u32, StoreError> {
        self.with(|c| {
            let mut transaction = c.client.transaction()?;
            let count = count_transfers(&mut transaction, license, since)?;
            transaction.commit()?;
            Ok(u32::try_from(count).unwrap_or(u32::MAX))
        })
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
                    "SELECT license_ref, machine_hash, seat_id, license_id, first_seen, last_seen,
                         not_after, generation, client_base_id FROM seat
                     WHERE $1 OR (license_ref, machine_hash) > ($2, $3)
                     ORDER BY license_ref, machine_hash LIMIT $4",
                    &[&after.is_none(), &license, &machine, &limit],
                )?)
            })?;
            let chunk = rows
                .iter()
                .map(|row| {
                    let seat = listed(row)?;
                    Ok(SeatRow {
                        license: seat.license,
                        machine: seat.machine,
                        seat: seat.seat,
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

    fn grant_pool(&self, ask: &PoolAsk<'_>) -> Result<PoolGrant, StoreError> {
        self.with(|c| grant_pool(&mut c.client, ask))
    }

    fn pool_grants(&self) -> Result<Vec<PoolGrant>, StoreError> {
        self.with(|c| {
            let rows = c.client.query(
                &format!(
                    "SELECT {POOL_COLUMNS} FROM pool_grant ORDER BY license_ref, machine_hash"
                ),
                &[],
            )?;
            Ok(rows.iter().map(pool_grant).collect::<Result<_, _>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_panics_frees_its_connection_slot() {
        let server = crate::test_util::TempPostgres::shared();
        let store = PostgresStore::open(&server.database()).expect("open");
        for _ in 0..=MAX_CONNECTIONS {
            let call = std::panic::AssertUnwindSafe(|| {
                store.with(|_| -> Result<(), Failed> { panic!("a bug inside a call") })
            });
            assert!(std::panic::catch_unwind(call).is_err());
        }
        let open = store
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open;
        assert_eq!(open, 0, "a panicked call's slot is still counted");
        assert_eq!(store.seat_count().expect("a connection is free"), 0);
    }
}
