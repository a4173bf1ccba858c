//! The seat store's contract, run against both backends: SQLite in a temporary file and
//! PostgreSQL on the test harness's private server.

use std::sync::{Arc, Barrier};

use lap_proto::Uuid;
use lapd::store::cached::SEAT_TRUST_SECS;
use lapd::store::{
    Assignment, DbLocation, Lease, Limit, Listing, Move, Moved, PoolAsk, Released, SCHEMA_VERSION,
    SeatRow, SeatStore, Store, StoreError, Take, Taken, Touch, TransferCap, Usage, Write, Written,
};
use lapd::test_util::TempPostgres;

/// A fresh, empty database of one backend (and the folder that holds it, for SQLite).
struct Db {
    location: DbLocation,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            location: DbLocation::Sqlite(dir.path().join("lapd.sqlite")),
            _dir: Some(dir),
        }
    }

    fn postgres() -> Self {
        Self {
            location: DbLocation::Postgres(TempPostgres::shared().database()),
            _dir: None,
        }
    }

    fn open(&self) -> Box<dyn SeatStore> {
        self.location.open().expect("open")
    }
}

fn take<'a>(license: &'a str, machine: &'a [u8; 32], id: u128, now: u64, limit: Limit) -> Take<'a> {
    Take {
        license,
        machine,
        license_id: Uuid::from_u128(id),
        now,
        limit,
        client_base_id: Some(Uuid::from_u128(0xc1 << 64 | id)),
        generation: 0,
        not_after: None,
    }
}

/// What identifies a seat to its machine: its LicenseId and first use.
fn identity(seat: Option<Assignment>) -> Option<(Uuid, u64)> {
    seat.map(|s| (s.license_id, s.first_seen))
}

fn new_seat(taken: Taken) -> Assignment {
    match taken {
        Taken::New { seat, .. } => seat,
        other => panic!("expected a new seat, got {other:?}"),
    }
}

/// Declares each test once per backend.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Db::sqlite()) })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Db::postgres()) })*
        }
    };
}

both_backends!(
    seats_survive_reopening_with_their_license_id,
    the_last_seat_goes_once_and_a_holder_keeps_its_own,
    the_evaluation_window_caps_new_seats,
    overuse_takes_seats_beyond_any_count,
    servers_racing_for_the_last_seats_never_overshoot,
    export_and_import_carry_every_seat_once,
    a_newer_schema_is_refused,
    the_cache_stays_bounded,
    a_version_2_database_migrates_in_place,
    touch_keeps_the_highest_generation_and_the_last_answer,
    a_release_is_durable_idempotent_and_capped,
    a_seat_moves_only_for_the_installation_that_took_it,
    leases_free_only_the_seats_past_them,
    seats_are_listed_and_released_by_id,
    a_seat_freed_elsewhere_leaves_the_cache_within_its_trust,
    pool_grants_never_exceed_the_license_across_intermediates,
    intermediates_racing_for_a_pool_never_overshoot,
    a_batch_does_each_write_as_alone_with_one_commit,
    a_batch_that_fails_writes_nothing,
    concurrent_writes_share_commits_and_never_overshoot,
);

fn seats_survive_reopening_with_their_license_id(db: &Db) {
    {
        let store = db.open();
        assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
        new_seat(
            store
                .take_seat(&take("lic", &[1; 32], 0x1234, 100, Limit::Seats(5)))
                .expect("take"),
        );
        let taken = store
            .take_seat(&take("lic", &[2; 32], 5, 50, Limit::Seats(5)))
            .expect("take");
        let Taken::New { seat, usage } = taken else {
            panic!("expected a new seat, got {taken:?}")
        };
        assert_eq!(identity(Some(seat)), Some((Uuid::from_u128(5), 50)));
        assert_eq!(
            usage,
            Usage {
                seats_used: 2,
                first_use: Some(50)
            },
            "a seat dated earlier (the clock stepped back) moves the first use back"
        );
    }
    let store = db.open();
    assert_eq!(
        identity(store.seat("lic", &[1; 32]).expect("read")),
        Some((Uuid::from_u128(0x1234), 100))
    );
    assert_eq!(store.seat("lic", &[3; 32]).expect("read"), None);
    assert_eq!(store.seat("other", &[1; 32]).expect("read"), None);
    assert_eq!(
        store.usage("lic").expect("read"),
        Usage {
            seats_used: 2,
            first_use: Some(50)
        }
    );
    assert_eq!(store.usage("other").expect("read"), Usage::default());
    assert_eq!(
        store.seats_taken_since("lic", 51).expect("read"),
        1,
        "the seat taken at 100"
    );
    assert_eq!(store.seats_taken_since("lic", 50).expect("read"), 2);
    assert_eq!(store.seats_taken_since("lic", 101).expect("read"), 0);
    assert_eq!(store.seat_count().expect("count"), 2);
    assert_eq!(
        store.schema_version().expect("version"),
        SCHEMA_VERSION,
        "reopening migrates nothing"
    );
}

fn the_last_seat_goes_once_and_a_holder_keeps_its_own(db: &Db) {
    let store = db.open();
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 10, Limit::Seats(2)))
            .expect("take"),
    );
    new_seat(
        store
            .take_seat(&take("lic", &[2; 32], 2, 11, Limit::Seats(2)))
            .expect("take"),
    );
    assert_eq!(
        store
            .take_seat(&take("lic", &[3; 32], 3, 12, Limit::Seats(2)))
            .expect("take"),
        Taken::Full
    );
    let held = store
        .take_seat(&take("lic", &[1; 32], 4, 13, Limit::Seats(2)))
        .expect("take");
    let Taken::Held { seat, usage } = held else {
        panic!("expected the held seat, got {held:?}")
    };
    assert_eq!(
        (identity(Some(seat)), usage),
        (
            Some((Uuid::from_u128(1), 10)),
            Usage {
                seats_used: 2,
                first_use: Some(10)
            }
        ),
        "a machine that holds a seat gets its own, with its LicenseId, even on a full license"
    );
    assert_eq!(
        store.seat("lic", &[3; 32]).expect("read"),
        None,
        "Full took nothing"
    );
    assert_eq!(store.usage("lic").expect("read").seats_used, 2);
    new_seat(
        store
            .take_seat(&take("other", &[3; 32], 5, 14, Limit::Seats(1)))
            .expect("licenses count apart"),
    );
    assert_eq!(store.seat_count().expect("count"), 3);
}

fn the_evaluation_window_caps_new_seats(db: &Db) {
    let store = db.open();
    let cap = |now: u64| Limit::TakenSince {
        since: now.saturating_sub(99),
        cap: 2,
    };
    new_seat(
        store
            .take_seat(&take("eval", &[1; 32], 1, 1000, cap(1000)))
            .expect("take"),
    );
    new_seat(
        store
            .take_seat(&take("eval", &[2; 32], 2, 1050, cap(1050)))
            .expect("take"),
    );
    assert_eq!(
        store
            .take_seat(&take("eval", &[3; 32], 3, 1099, cap(1099)))
            .expect("take"),
        Taken::Full
    );
    let seat = new_seat(
        store
            .take_seat(&take("eval", &[3; 32], 3, 1100, cap(1100)))
            .expect("the window moved on"),
    );
    assert_eq!(seat.first_seen, 1100);
    assert_eq!(store.usage("eval").expect("read").seats_used, 3);
}

fn overuse_takes_seats_beyond_any_count(db: &Db) {
    let store = db.open();
    for machine in 1..=3u8 {
        let taken = store
            .take_seat(&take(
                "lic",
                &[machine; 32],
                u128::from(machine),
                5,
                Limit::None,
            ))
            .expect("take");
        let Taken::New { usage, .. } = taken else {
            panic!("{taken:?}")
        };
        assert_eq!(
            usage.seats_used,
            u32::from(machine),
            "the count after this seat"
        );
    }
}

/// Two servers (two opens of one database) and eight threads ask for 20 seats where 5 are
/// left: 5 are given, each to one machine, and every machine that asks twice keeps its own.
fn servers_racing_for_the_last_seats_never_overshoot(db: &Db) {
    let stores: Vec<Arc<dyn SeatStore>> = vec![Arc::from(db.open()), Arc::from(db.open())];
    for machine in 0..5u8 {
        new_seat(
            stores[0]
                .take_seat(&take("lic", &[machine; 32], 1, 1, Limit::Seats(10)))
                .expect("take"),
        );
    }
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8u8)
        .map(|thread| {
            let store = Arc::clone(&stores[usize::from(thread % 2)]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut won = Vec::new();
                for n in 0..5u8 {
                    // Threads 0 and 1 ask for the same machines: one takes, the other holds.
                    let machine = [100 + (thread / 2) * 10 + n; 32];
                    let id = u128::from(thread) * 100 + u128::from(n);
                    match store
                        .take_seat(&take("lic", &machine, id, 2, Limit::Seats(10)))
                        .expect("take")
                    {
                        Taken::New { seat, .. } => won.push((machine, seat)),
                        Taken::Held { .. } | Taken::Full => {}
                    }
                }
                won
            })
        })
        .collect();
    let won: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("thread"))
        .collect();
    assert_eq!(won.len(), 5, "exactly the five seats left were given");
    assert_eq!(stores[1].usage("lic").expect("read").seats_used, 10);
    assert_eq!(stores[1].seat_count().expect("count"), 10);
    for (machine, seat) in won {
        assert_eq!(
            stores[1].seat("lic", &machine).expect("read"),
            Some(seat),
            "one LicenseId per machine"
        );
    }
}

fn export_and_import_carry_every_seat_once(db: &Db) {
    let source = Db::sqlite();
    let from = source.open();
    for machine in 0..25u8 {
        let license = if machine % 2 == 0 { "even" } else { "odd" };
        new_seat(
            from.take_seat(&take(
                license,
                &[machine; 32],
                u128::from(machine),
                100 - u64::from(machine),
                Limit::None,
            ))
            .expect("take"),
        );
    }
    let to = db.open();
    let mut batches = 0;
    for _ in 0..2 {
        from.export(7, &mut |rows: &[SeatRow]| {
            batches += 1;
            assert!(rows.len() <= 7);
            to.import(rows).map(|_| ())
        })
        .expect("copy");
    }
    assert_eq!(batches, 8, "25 seats in batches of 7, twice");
    assert_eq!(
        to.seat_count().expect("count"),
        25,
        "the second import added nothing"
    );
    assert_eq!(
        to.usage("even").expect("read"),
        Usage {
            seats_used: 13,
            first_use: Some(76)
        }
    );
    assert_eq!(
        to.usage("odd").expect("read"),
        Usage {
            seats_used: 12,
            first_use: Some(77)
        }
    );
    assert_eq!(
        identity(to.seat("odd", &[3; 32]).expect("read")),
        Some((Uuid::from_u128(3), 97))
    );
    let mut exported = Vec::new();
    to.export(10, &mut |rows: &[SeatRow]| {
        exported.extend_from_slice(rows);
        Ok(())
    })
    .expect("export");
    assert_eq!(exported.len(), 25, "the target exports what it holds");
}

fn a_newer_schema_is_refused(db: &Db) {
    drop(db.open());
    match &db.location {
        DbLocation::Sqlite(path) => {
            rusqlite::Connection::open(path)
                .and_then(|c| c.execute("INSERT INTO schema_version (version) VALUES (99)", []))
                .expect("write");
        }
        DbLocation::Postgres(url) => {
            ::postgres::Client::connect(url, ::postgres::NoTls)
                .and_then(|mut c| {
                    c.execute("INSERT INTO schema_version (version) VALUES (99)", &[])
                })
                .expect("write");
        }
    }
    match db.location.open() {
        Err(StoreError::NewerSchema { found: 99, known }) => assert_eq!(known, SCHEMA_VERSION),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn the_cache_stays_bounded(db: &Db) {
    let store = Store::with_capacity(db.open(), 3, 2);
    for machine in 0..10u8 {
        new_seat(
            store
                .take_seat(&take("lic", &[machine; 32], 1, 5, Limit::None))
                .expect("take"),
        );
        assert!(
            store
                .seat("lic", &[machine; 32], 5)
                .expect("read")
                .is_some()
        );
    }
    assert_eq!(store.cached_seats(), 3);
    assert!(
        store
            .seat("lic", &[0; 32], 5)
            .expect("read from the database")
            .is_some()
    );
}

/// Today's SQLite files (schema 1, every seat in one table) open and migrate in place.
#[test]
fn a_version_1_sqlite_file_migrates_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("old.sqlite");
    {
        let old = rusqlite::Connection::open(&path).expect("create");
        old.execute_batch(
            "CREATE TABLE assignment (license_ref TEXT NOT NULL, machine_hash BLOB NOT NULL,
                 license_id BLOB NOT NULL, first_seen INTEGER NOT NULL,
                 PRIMARY KEY (license_ref, machine_hash)) WITHOUT ROWID;
             PRAGMA user_version = 1;",
        )
        .expect("schema 1");
        for (license, machine, first_seen) in [("a", 1u8, 30i64), ("a", 2, 20), ("b", 1, 40)] {
            old.execute(
                "INSERT INTO assignment VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    license,
                    vec![machine; 32],
                    Uuid::from_u128(u128::from(machine)).as_bytes().to_vec(),
                    first_seen
                ],
            )
            .expect("row");
        }
    }
    let store = DbLocation::Sqlite(path.clone()).open().expect("migrates");
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(
        store.usage("a").expect("read"),
        Usage {
            seats_used: 2,
            first_use: Some(20)
        }
    );
    assert_eq!(
        store.usage("b").expect("read"),
        Usage {
            seats_used: 1,
            first_use: Some(40)
        }
    );
    assert_eq!(
        identity(store.seat("a", &[2; 32]).expect("read")),
        Some((Uuid::from_u128(2), 20))
    );
    assert_eq!(
        store
            .take_seat(&take("a", &[3; 32], 9, 50, Limit::Seats(2)))
            .expect("take"),
        Taken::Full
    );
    let user_version: i64 = rusqlite::Connection::open(&path)
        .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
        .expect("pragma");
    assert_eq!(user_version, i64::from(SCHEMA_VERSION));
}

/// What a dropped SQLite store committed is in its database file alone (the last connection
/// to close must be the writer, which empties the WAL), as after `write_back` on one still
/// open: a vendor copies the file of a stopped lapd.
#[test]
fn a_sqlite_file_alone_holds_every_seat_after_write_back_or_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lapd.sqlite");
    let copy_alone = |name: &str| {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).expect("folder");
        std::fs::copy(&path, folder.join("lapd.sqlite")).expect("copy");
        DbLocation::Sqlite(folder.join("lapd.sqlite"))
            .open()
            .expect("the copy opens")
    };
    let store = DbLocation::Sqlite(path.clone()).open().expect("open");
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 100, Limit::Seats(5)))
            .expect("take"),
    );
    store.write_back().expect("written back");
    let copy = copy_alone("written-back");
    assert!(copy.seat("lic", &[1; 32]).expect("read").is_some());

    new_seat(
        store
            .take_seat(&take("lic", &[2; 32], 2, 100, Limit::Seats(5)))
            .expect("take"),
    );
    drop(store);
    let copy = copy_alone("closed");
    assert_eq!(copy.seat_count().expect("count"), 2);
}

/// The database going away: a machine whose seat is cached is still answered, however long
/// ago it was read; a new seat is not given, and the database is left alone for a while.
#[test]
fn an_unreachable_database_answers_cached_seats_only() {
    let server = TempPostgres::start(false);
    let store = Store::open(&DbLocation::Postgres(server.database())).expect("open");
    let now = 1_000_000;
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 7, now, Limit::Seats(5)))
            .expect("take"),
    );
    assert_eq!(store.usage("lic", now).expect("read").seats_used, 1);
    drop(server);
    let later = now + 86_400;
    assert_eq!(
        identity(
            store
                .seat("lic", &[1; 32], later)
                .expect("answered from the cache")
        ),
        Some((Uuid::from_u128(7), now))
    );
    assert_eq!(store.usage("lic", later).expect("cached").seats_used, 1);
    assert!(
        store.seat("lic", &[2; 32], later).is_err(),
        "an unknown machine is not answered"
    );
    assert!(
        matches!(
            store.take_seat(&take("lic", &[2; 32], 8, later, Limit::Seats(5))),
            Err(StoreError::Unavailable)
        ),
        "no new seat, and no new wait for the database"
    );
    assert!(
        matches!(
            store.seats_taken_since("lic", 0, later),
            Err(StoreError::Unavailable)
        ),
        "the evaluation cap's count is not waited for either"
    );
}

/// A database at schema 2 (today's lapd) with seats of two licenses, then opened by this lapd.
fn a_version_2_database_migrates_in_place(db: &Db) {
    let rows = [("a", 1u8, 30i64), ("a", 2, 20), ("b", 1, 40)];
    match &db.location {
        DbLocation::Sqlite(path) => {
            let old = rusqlite::Connection::open(path).expect("create");
            old.execute_batch(
                "CREATE TABLE seat (license_ref TEXT NOT NULL, machine_hash BLOB NOT NULL,
                     license_id BLOB NOT NULL, first_seen INTEGER NOT NULL,
                     PRIMARY KEY (license_ref, machine_hash)) WITHOUT ROWID;
                 CREATE INDEX seat_taken ON seat (license_ref, first_seen);
                 CREATE TABLE license (license_ref TEXT NOT NULL PRIMARY KEY,
                     seats_used INTEGER NOT NULL, first_use INTEGER) WITHOUT ROWID;
                 CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version (version) VALUES (2);
                 INSERT INTO license VALUES ('a', 2, 20), ('b', 1, 40);
                 PRAGMA user_version = 2;",
            )
            .expect("schema 2");
            for (license, machine, first_seen) in rows {
                old.execute(
                    "INSERT INTO seat VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        license,
                        vec![machine; 32],
                        Uuid::from_u128(u128::from(machine)).as_bytes().to_vec(),
                        first_seen
                    ],
                )
                .expect("row");
            }
        }
        DbLocation::Postgres(url) => {
            let mut old = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connect");
            old.batch_execute(
                "CREATE TABLE seat (license_ref TEXT NOT NULL, machine_hash BYTEA NOT NULL,
                     license_id BYTEA NOT NULL, first_seen BIGINT NOT NULL,
                     PRIMARY KEY (license_ref, machine_hash));
                 CREATE INDEX seat_taken ON seat (license_ref, first_seen);
                 CREATE TABLE license (license_ref TEXT NOT NULL PRIMARY KEY,
                     seats_used INTEGER NOT NULL, first_use BIGINT);
                 CREATE TABLE schema_version (version INTEGER NOT NULL);
                 INSERT INTO schema_version (version) VALUES (2);
                 INSERT INTO license VALUES ('a', 2, 20), ('b', 1, 40);",
            )
            .expect("schema 2");
            for (license, machine, first_seen) in rows {
                old.execute(
                    "INSERT INTO seat VALUES ($1, $2, $3, $4)",
                    &[
                        &license,
                        &vec![machine; 32],
                        &Uuid::from_u128(u128::from(machine)).as_bytes().to_vec(),
                        &first_seen,
                    ],
                )
                .expect("row");
            }
        }
    }
    let store = db.open();
    assert_eq!(store.schema_version().expect("version"), SCHEMA_VERSION);
    assert_eq!(store.usage("a").expect("read").seats_used, 2);
    let seat = store.seat("a", &[2; 32]).expect("read").expect("kept");
    assert_eq!(identity(Some(seat)), Some((Uuid::from_u128(2), 20)));
    assert_eq!(seat.last_seen, 20, "last seen starts at first seen");
    assert_eq!(
        (seat.not_after, seat.generation, seat.client_base_id),
        (None, 0, None)
    );
    let listed = store.list(Listing::All).expect("list");
    let mut ids: Vec<u64> = listed.iter().map(|s| s.seat.seat_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "every seat has an id of its own");
    assert!(ids.iter().all(|&id| id > 0));
    let new = new_seat(
        store
            .take_seat(&take("b", &[9; 32], 9, 50, Limit::Seats(2)))
            .expect("take"),
    );
    assert!(!ids.contains(&new.seat_id), "a new seat gets a new id");
    assert_eq!(
        store.pool_grants().expect("pools"),
        vec![],
        "schema 4's pool table exists, empty"
    );
}

fn pool_ask(machine: &[u8; 32], wanted: u32, in_use: u32, now: u64) -> PoolAsk<'_> {
    PoolAsk {
        license: "pool",
        machine,
        wanted,
        in_use,
        total: 3,
        now,
        not_after: now + 100,
    }
}

fn pool_grants_never_exceed_the_license_across_intermediates(db: &Db) {
    let store = db.open();
    let (a, b) = ([0xa; 32], [0xb; 32]);
    assert_eq!(
        store.grant_pool(&pool_ask(&a, 2, 0, 10)).expect("a").seats,
        2
    );
    assert_eq!(
        store.grant_pool(&pool_ask(&b, 2, 0, 11)).expect("b").seats,
        1,
        "only one seat is left for the second intermediate"
    );
    // A renewal keeps what it holds; asking for more gets only what the others left.
    let renewed = store.grant_pool(&pool_ask(&a, 3, 2, 20)).expect("a again");
    assert_eq!(
        (renewed.seats, renewed.in_use, renewed.last_contact),
        (2, 2, 20)
    );
    // Giving seats back frees them for the other one.
    assert_eq!(
        store.grant_pool(&pool_ask(&a, 1, 1, 30)).expect("a").seats,
        1
    );
    assert_eq!(
        store.grant_pool(&pool_ask(&b, 5, 0, 31)).expect("b").seats,
        2
    );
    // A grant past its NotAfter (a silent intermediate) holds nothing any more.
    let late = 31 + 101;
    assert_eq!(
        store
            .grant_pool(&pool_ask(&a, 3, 0, late))
            .expect("a")
            .seats,
        3
    );
    let listed = db.open().pool_grants().expect("list");
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].machine, listed[0].seats, listed[0].last_contact),
        (a, 3, late)
    );
    assert_eq!((listed[1].machine, listed[1].seats), (b, 2));
}

fn intermediates_racing_for_a_pool_never_overshoot(db: &Db) {
    let stores: Vec<Arc<dyn SeatStore>> = vec![Arc::from(db.open()), Arc::from(db.open())];
    let barrier = Arc::new(Barrier::new(6));
    let threads: Vec<_> = (0..6u8)
        .map(|n| {
            let store = Arc::clone(&stores[usize::from(n % 2)]);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                store
                    .grant_pool(&pool_ask(&[n; 32], 2, 0, 5))
                    .expect("grant")
                    .seats
            })
        })
        .collect();
    let granted: u32 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    assert_eq!(
        granted, 3,
        "the pool's three seats, each to one intermediate"
    );
    let held: u32 = stores[1]
        .pool_grants()
        .expect("list")
        .iter()
        .map(|g| g.seats)
        .sum();
    assert_eq!(held, 3);
}

fn touch_keeps_the_highest_generation_and_the_last_answer(db: &Db) {
    let store = db.open();
    let mut request = take("lic", &[1; 32], 1, 100, Limit::Seats(2));
    request.generation = 3;
    new_seat(store.take_seat(&request).expect("take"));
    let touch = |now, generation, not_after| Touch {
        license: "lic",
        machine: &[1; 32],
        now,
        not_after,
        generation,
        client_base_id: Uuid::from_u128(0xbad),
    };
    let before = store
        .touch(&touch(200, Some(5), Some(1000)))
        .expect("touch")
        .expect("held");
    assert_eq!(before.generation, 3);
    let seat = store.seat("lic", &[1; 32]).expect("read").expect("held");
    assert_eq!(
        (seat.generation, seat.last_seen, seat.not_after),
        (5, 200, Some(1000))
    );
    assert_eq!(
        seat.client_base_id,
        Some(Uuid::from_u128(0xc1 << 64 | 1)),
        "the installation that took the seat stays recorded"
    );
    let before = store
        .touch(&touch(150, Some(2), None))
        .expect("touch")
        .expect("held");
    assert_eq!(
        before.generation, 5,
        "what a lower generation is compared with"
    );
    let seat = store.seat("lic", &[1; 32]).expect("read").expect("held");
    assert_eq!(
        (seat.generation, seat.last_seen, seat.not_after),
        (5, 200, None),
        "the highest generation and the latest time stay; NotAfter is the last answer's"
    );
    assert_eq!(
        store
            .touch(&Touch {
                machine: &[2; 32],
                ..touch(300, Some(1), None)
            })
            .expect("touch"),
        None,
        "no seat, nothing written"
    );
    assert_eq!(store.seat("lic", &[2; 32]).expect("read"), None);

    // A seat from before schema 3 learns its installation at its first request.
    store
        .import(&[SeatRow {
            license: "old".into(),
            machine: [3; 32],
            seat: Assignment::new(Uuid::from_u128(3), 10),
        }])
        .expect("import");
    store
        .touch(&Touch {
            license: "old",
            machine: &[3; 32],
            ..touch(300, None, None)
        })
        .expect("touch");
    assert_eq!(
        store
            .seat("old", &[3; 32])
            .expect("read")
            .expect("held")
            .client_base_id,
        Some(Uuid::from_u128(0xbad))
    );
}

fn a_release_is_durable_idempotent_and_capped(db: &Db) {
    let store = db.open();
    let first = new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 100, Limit::Seats(1)))
            .expect("take"),
    );
    assert_eq!(
        store
            .take_seat(&take("lic", &[2; 32], 2, 110, Limit::Seats(1)))
            .expect("take"),
        Taken::Full
    );
    assert_eq!(
        store.release("lic", &[1; 32], 120, None).expect("release"),
        Released::Freed(first)
    );
    drop(store);
    let store = db.open();
    assert_eq!(store.seat("lic", &[1; 32]).expect("read"), None, "durable");
    assert_eq!(store.usage("lic").expect("read").seats_used, 0);
    assert_eq!(
        store.release("lic", &[1; 32], 130, None).expect("release"),
        Released::NotHeld,
        "releasing again changes nothing"
    );
    assert_eq!(store.transfers_since("lic", 0).expect("count"), 1);
    new_seat(
        store
            .take_seat(&take("lic", &[2; 32], 2, 140, Limit::Seats(1)))
            .expect("the freed seat is free"),
    );
    let cap = TransferCap { since: 0, cap: 1 };
    assert_eq!(
        store
            .release("lic", &[2; 32], 150, Some(cap))
            .expect("release"),
        Released::CapReached {
            oldest_counted: Some(120)
        }
    );
    assert!(
        store.seat("lic", &[2; 32]).expect("read").is_some(),
        "a capped release keeps the seat"
    );
    assert!(matches!(
        store
            .release(
                "lic",
                &[2; 32],
                150,
                Some(TransferCap { since: 121, cap: 1 })
            )
            .expect("release"),
        Released::Freed(_)
    ));
    assert_eq!(store.transfers_since("lic", 0).expect("count"), 2);
}

fn a_seat_moves_only_for_the_installation_that_took_it(db: &Db) {
    let store = db.open();
    let seat = new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 7, 100, Limit::Seats(2)))
            .expect("take"),
    );
    let owner = Uuid::from_u128(0xc1 << 64 | 7);
    let request = |from, to, client_base_id, cap| Move {
        license: "lic",
        from,
        to,
        client_base_id,
        now: 200,
        cap,
    };
    assert_eq!(
        store
            .move_seat(&request(&[1; 32], &[2; 32], Uuid::from_u128(99), None))
            .expect("move"),
        Moved::NotEligible,
        "another installation with the old hash"
    );
    assert_eq!(
        store
            .move_seat(&request(&[5; 32], &[2; 32], owner, None))
            .expect("move"),
        Moved::NotEligible,
        "no seat under the old hash"
    );
    let Moved::Moved { seat: moved, usage } = store
        .move_seat(&request(&[1; 32], &[2; 32], owner, None))
        .expect("move")
    else {
        panic!("the owner moves its seat")
    };
    assert_eq!(
        (
            moved.seat_id,
            moved.license_id,
            moved.first_seen,
            moved.last_seen
        ),
        (seat.seat_id, seat.license_id, 100, 200),
        "same seat, same LicenseId"
    );
    assert_eq!(usage.seats_used, 1, "a move takes no seat");
    assert_eq!(store.seat("lic", &[1; 32]).expect("read"), None);
    assert_eq!(
        store
            .seat("lic", &[2; 32])
            .expect("read")
            .map(|s| s.seat_id),
        Some(seat.seat_id)
    );
    assert_eq!(store.transfers_since("lic", 0).expect("count"), 1);
    new_seat(
        store
            .take_seat(&take("lic", &[3; 32], 8, 300, Limit::Seats(2)))
            .expect("take"),
    );
    assert_eq!(
        store
            .move_seat(&request(&[2; 32], &[3; 32], owner, None))
            .expect("move"),
        Moved::NotEligible,
        "the new hash holds a seat of its own"
    );
    assert_eq!(
        store
            .move_seat(&request(
                &[2; 32],
                &[4; 32],
                owner,
                Some(TransferCap { since: 0, cap: 1 })
            ))
            .expect("move"),
        Moved::CapReached {
            oldest_counted: Some(200)
        }
    );
    assert!(store.seat("lic", &[2; 32]).expect("read").is_some());
}

fn leases_free_only_the_seats_past_them(db: &Db) {
    let store = db.open();
    let mut with_end = take("lic", &[1; 32], 1, 100, Limit::None);
    with_end.not_after = Some(1000);
    new_seat(store.take_seat(&with_end).expect("take"));
    new_seat(
        store
            .take_seat(&take("lic", &[2; 32], 2, 100, Limit::None))
            .expect("take"),
    );
    new_seat(
        store
            .take_seat(&take("lic", &[3; 32], 3, 500, Limit::None))
            .expect("take"),
    );
    new_seat(
        store
            .take_seat(&take("other", &[2; 32], 4, 100, Limit::None))
            .expect("take"),
    );
    let default = |not_after_before, last_seen_before| Lease {
        not_after_before: Some(not_after_before),
        last_seen_before,
    };
    assert_eq!(
        store
            .reclaim_expired("lic", default(1000, 200))
            .expect("reclaim"),
        1,
        "the seat without NotAfter last seen at 100; NotAfter 1000 is not before 1000"
    );
    assert_eq!(store.seat("lic", &[2; 32]).expect("read"), None);
    assert!(
        store.seat("other", &[2; 32]).expect("read").is_some(),
        "one license at a time"
    );
    assert_eq!(
        store
            .reclaim_expired("lic", default(1001, 200))
            .expect("reclaim"),
        1
    );
    assert_eq!(store.seat("lic", &[1; 32]).expect("read"), None);
    assert_eq!(store.usage("lic").expect("read").seats_used, 1);
    let vendors = Lease {
        not_after_before: None,
        last_seen_before: 501,
    };
    assert_eq!(store.reclaim_expired("lic", vendors).expect("reclaim"), 1);
    assert_eq!(store.usage("lic").expect("read").seats_used, 0);
    assert_eq!(
        store.transfers_since("lic", 0).expect("count"),
        0,
        "a lease running out is not a transfer"
    );
}

fn seats_are_listed_and_released_by_id(db: &Db) {
    let store = db.open();
    for (license, machine) in [("b", 1u8), ("a", 2), ("a", 3)] {
        new_seat(
            store
                .take_seat(&take(license, &[machine; 32], 1, 100, Limit::None))
                .expect("take"),
        );
    }
    let all = store.list(Listing::All).expect("list");
    let order: Vec<(&str, u8)> = all
        .iter()
        .map(|s| (s.license.as_str(), s.machine[0]))
        .collect();
    assert_eq!(order, [("a", 2), ("a", 3), ("b", 1)]);
    let only_a = store
        .list(Listing::Licenses(&["a".to_owned()]))
        .expect("list");
    assert_eq!(only_a.len(), 2);
    let id = only_a[1].seat.seat_id;
    let freed = store
        .release_by_id(id, 200)
        .expect("release")
        .expect("found");
    assert_eq!((freed.license.as_str(), freed.machine), ("a", [3; 32]));
    assert_eq!(store.release_by_id(id, 201).expect("release"), None);
    assert_eq!(store.usage("a").expect("read").seats_used, 1);
    assert_eq!(store.seat("a", &[3; 32]).expect("read"), None);
    assert_eq!(store.transfers_since("a", 0).expect("count"), 1);
}

/// A seat freed through another open of the database (another server, `lapd seats release`)
/// is answered from this store's cache for less than [`SEAT_TRUST_SECS`]; one freed or moved
/// through this store is gone from its cache at once.
fn a_seat_freed_elsewhere_leaves_the_cache_within_its_trust(db: &Db) {
    let store = Store::new(db.open());
    let now = 1_000;
    for machine in [1u8, 2] {
        new_seat(
            store
                .take_seat(&take("lic", &[machine; 32], 1, now, Limit::None))
                .expect("take"),
        );
    }
    let elsewhere = db.open();
    assert!(matches!(
        elsewhere
            .release("lic", &[1; 32], now, None)
            .expect("release"),
        Released::Freed(_)
    ));
    assert!(
        store
            .seat("lic", &[1; 32], now + SEAT_TRUST_SECS - 1)
            .expect("read")
            .is_some(),
        "still trusted from the cache"
    );
    assert_eq!(
        store
            .seat("lic", &[1; 32], now + SEAT_TRUST_SECS)
            .expect("read"),
        None,
        "read again once the trust ran out"
    );
    assert!(matches!(
        store.release("lic", &[2; 32], now, None).expect("release"),
        Released::Freed(_)
    ));
    assert_eq!(store.seat("lic", &[2; 32], now).expect("read"), None);
}

/// A database that holds a lock forever does not hold a worker: the statement is cancelled
/// after the store's statement timeout, and the seat is not given.
#[test]
fn a_hung_postgres_statement_is_cancelled() {
    let db = Db::postgres();
    let store = db.open();
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 10, Limit::Seats(5)))
            .expect("take"),
    );
    let DbLocation::Postgres(url) = &db.location else {
        unreachable!("a PostgreSQL database")
    };
    let mut holder = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connect");
    let mut held = holder.transaction().expect("begin");
    held.execute(
        "SELECT * FROM license WHERE license_ref = 'lic' FOR UPDATE",
        &[],
    )
    .expect("lock");
    let started = std::time::Instant::now();
    let taken = store.take_seat(&take("lic", &[2; 32], 2, 11, Limit::Seats(5)));
    let waited = started.elapsed();
    assert!(taken.is_err(), "{taken:?}");
    assert!(
        waited < std::time::Duration::from_secs(15),
        "cancelled, not hung: {waited:?}"
    );
    held.rollback().expect("rollback");
    assert_eq!(store.seat("lic", &[2; 32]).expect("read"), None);
}

fn touch_of<'a>(license: &'a str, machine: &'a [u8; 32], now: u64) -> Touch<'a> {
    Touch {
        license,
        machine,
        now,
        not_after: Some(now.saturating_add(1000)),
        generation: Some(7),
        client_base_id: Uuid::from_u128(0xc1),
    }
}

fn a_batch_does_each_write_as_alone_with_one_commit(db: &Db) {
    let store = db.open();
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 10, Limit::Seats(3)))
            .expect("take"),
    );
    let writes = [
        Write::Take(take("lic", &[2; 32], 2, 20, Limit::Seats(3))),
        Write::Take(take("lic", &[1; 32], 99, 20, Limit::Seats(3))),
        Write::Touch(touch_of("lic", &[1; 32], 30)),
        Write::Take(take("lic", &[3; 32], 3, 20, Limit::Seats(3))),
        Write::Take(take("lic", &[4; 32], 4, 20, Limit::Seats(3))),
        Write::Touch(touch_of("lic", &[9; 32], 30)),
        Write::Take(take("other", &[4; 32], 5, 20, Limit::None)),
    ];
    let written = store.write_batch(&writes).expect("batch");
    assert_eq!(
        written.len(),
        writes.len(),
        "one result per write, in order"
    );
    let seat_of = |machine: &[u8; 32]| store.seat("lic", machine).expect("read");
    match written[0] {
        Written::Taken(Taken::New { seat, usage }) => {
            assert_eq!(seat.license_id, Uuid::from_u128(2));
            assert_eq!(usage.seats_used, 2, "the count after this write");
        }
        other => panic!("a new seat, got {other:?}"),
    }
    assert!(
        matches!(written[1], Written::Taken(Taken::Held { seat, .. }) if seat.license_id == Uuid::from_u128(1)),
        "a holder keeps its own LicenseId: {:?}",
        written[1]
    );
    assert!(
        matches!(written[2], Written::Touched(Some(before)) if before.generation == 0 && before.last_seen == 10),
        "the touch returns the seat as it was before it: {:?}",
        written[2]
    );
    assert!(
        matches!(written[3], Written::Taken(Taken::New { usage, .. }) if usage.seats_used == 3),
        "{:?}",
        written[3]
    );
    assert_eq!(
        written[4],
        Written::Taken(Taken::Full),
        "the writes before it in the batch count"
    );
    assert_eq!(
        written[5],
        Written::Touched(None),
        "no seat, nothing written"
    );
    assert!(matches!(written[6], Written::Taken(Taken::New { .. })));
    let touched = seat_of(&[1; 32]).expect("held");
    assert_eq!(
        (touched.generation, touched.last_seen, touched.not_after),
        (7, 30, Some(1030))
    );
    assert_eq!(seat_of(&[4; 32]), None);
    // The same seat twice in one batch: the second sees the first.
    let mut later = touch_of("lic", &[1; 32], 40);
    later.generation = Some(9);
    let written = store
        .write_batch(&[
            Write::Touch(touch_of("lic", &[2; 32], 40)),
            Write::Touch(later),
            Write::Touch(touch_of("lic", &[1; 32], 50)),
        ])
        .expect("batch");
    assert!(
        matches!(written[2], Written::Touched(Some(before)) if before.generation == 9 && before.last_seen == 40),
        "{:?}",
        written[2]
    );
    drop(store);
    let reopened = db.open();
    assert_eq!(reopened.usage("lic").expect("read").seats_used, 3);
    assert_eq!(
        reopened.seat_count().expect("count"),
        4,
        "every write of the batch is durable"
    );
}

fn a_batch_that_fails_writes_nothing(db: &Db) {
    let store = db.open();
    new_seat(
        store
            .take_seat(&take("lic", &[1; 32], 1, 10, Limit::Seats(5)))
            .expect("take"),
    );
    // A time no database column holds: the third write fails after two were done.
    let unwritable = take("lic", &[3; 32], 3, u64::MAX, Limit::Seats(5));
    let error = store
        .write_batch(&[
            Write::Take(take("lic", &[2; 32], 2, 20, Limit::Seats(5))),
            Write::Touch(touch_of("lic", &[1; 32], 30)),
            Write::Take(unwritable),
        ])
        .expect_err("a time out of range");
    assert!(
        matches!(error, StoreError::Corrupt(_)),
        "the write's own error: {error}"
    );
    assert_eq!(store.seat("lic", &[2; 32]).expect("read"), None);
    let untouched = store.seat("lic", &[1; 32]).expect("read").expect("held");
    assert_eq!((untouched.generation, untouched.last_seen), (0, 10));
    assert_eq!(store.usage("lic").expect("read").seats_used, 1);
}

fn concurrent_writes_share_commits_and_never_overshoot(db: &Db) {
    const THREADS: u8 = 24;
    const SEATS: u32 = 30;
    let store = Arc::new(Store::new(db.open()));
    // Machines 0..8 hold seats already; each thread renews one of them, takes new seats for
    // two machines of its own; one thread's renewal is a write the database refuses.
    for machine in 0..8u8 {
        new_seat(
            store
                .take_seat(&take("lic", &[machine; 32], 1, 10, Limit::Seats(SEATS)))
                .expect("take"),
        );
    }
    let before = store.commit_stats();
    let barrier = Arc::new(Barrier::new(usize::from(THREADS)));
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let held = [thread % 8; 32];
                let seat = store.seat("lic", &held, 20).expect("read").expect("held");
                // A time no database column holds: the one write the database refuses.
                let now = if thread == 5 {
                    u64::MAX
                } else {
                    3_700 + u64::from(thread)
                };
                let touched = store.touch(&touch_of("lic", &held, now), seat);
                let mut taken = Vec::new();
                for n in 0..2u8 {
                    let machine = [100 + thread * 2 + n; 32];
                    let id = u128::from(thread) * 10 + u128::from(n);
                    taken.push((
                        machine,
                        store.take_seat(&take("lic", &machine, id, 30, Limit::Seats(SEATS))),
                    ));
                }
                (touched, taken)
            })
        })
        .collect();
    let mut new = Vec::new();
    let mut full = 0;
    for (thread, handle) in threads.into_iter().enumerate() {
        let (touched, taken) = handle.join().expect("thread");
        if thread == 5 {
            assert!(
                matches!(touched, Err(StoreError::Corrupt(_))),
                "only the bad write fails, with its own error: {touched:?}"
            );
        } else {
            assert!(
                matches!(touched, Ok(Some(_))),
                "thread {thread}'s renewal: {touched:?}"
            );
        }
        for (machine, result) in taken {
            match result {
                Ok(Taken::New { seat, .. }) => new.push((machine, seat)),
                Ok(Taken::Full) => full += 1,
                Ok(Taken::Held { .. }) => panic!("no machine asked twice"),
                Err(error) => panic!("a take failed: {error}"),
            }
        }
    }
    assert_eq!(
        new.len(),
        usize::try_from(SEATS).expect("small") - 8,
        "exactly the seats left were given"
    );
    assert_eq!(full, usize::from(THREADS) * 2 - new.len());
    let backend = store.backend();
    assert_eq!(backend.usage("lic").expect("read").seats_used, SEATS);
    for (machine, seat) in &new {
        assert_eq!(backend.seat("lic", machine).expect("read"), Some(*seat));
    }
    let stats = store.commit_stats();
    let writes = stats.writes - before.writes;
    let commits = stats.commits - before.commits;
    assert_eq!(
        writes,
        u64::from(THREADS) * 3,
        "every renewal and take wrote"
    );
    assert!(
        commits < writes,
        "writes arriving together shared commits: {commits} commits for {writes} writes"
    );
}
