//! The seat store's contract, run against both backends: SQLite in a temporary file and
//! PostgreSQL on the test harness's private server.

use std::sync::{Arc, Barrier};

use lap_proto::Uuid;
use lapd::store::{
    Assignment, DbLocation, Limit, SCHEMA_VERSION, SeatRow, SeatStore, Store, StoreError, Take,
    Taken, Usage,
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
    }
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
        assert_eq!(
            taken,
            Taken::New {
                seat: Assignment {
                    license_id: Uuid::from_u128(5),
                    first_seen: 50
                },
                usage: Usage {
                    seats_used: 2,
                    first_use: Some(50)
                },
            },
            "a seat dated earlier (the clock stepped back) moves the first use back"
        );
    }
    let store = db.open();
    assert_eq!(
        store.seat("lic", &[1; 32]).expect("read"),
        Some(Assignment {
            license_id: Uuid::from_u128(0x1234),
            first_seen: 100
        })
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
    assert_eq!(
        store
            .take_seat(&take("lic", &[1; 32], 4, 13, Limit::Seats(2)))
            .expect("take"),
        Taken::Held {
            seat: Assignment {
                license_id: Uuid::from_u128(1),
                first_seen: 10
            },
            usage: Usage {
                seats_used: 2,
                first_use: Some(10)
            },
        },
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
        to.seat("odd", &[3; 32]).expect("read"),
        Some(Assignment {
            license_id: Uuid::from_u128(3),
            first_seen: 97
        })
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
        store.seat("a", &[2; 32]).expect("read"),
        Some(Assignment {
            license_id: Uuid::from_u128(2),
            first_seen: 20
        })
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
        store
            .seat("lic", &[1; 32], later)
            .expect("answered from the cache"),
        Some(Assignment {
            license_id: Uuid::from_u128(7),
            first_seen: now
        })
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
