//! Several `lapd serve` on one PostgreSQL (issue 19): the last seats of a license go once,
//! however many clients race for them on however many servers, and a machine that won one
//! gets the same LicenseId from every server.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use lap_proto::Uuid;
use lapd::store::DbLocation;
use lapd::test_util::TempPostgres;
use lapwing_system_tests::{BASE_SKU, Installation, Server, Vendor, activate};

const SEATS: u32 = 15;
/// Seats taken before the race: 10 are left.
const TAKEN_BEFORE: u8 = 5;
const CLIENTS: u8 = 200;
const WAIT: Duration = Duration::from_secs(2);

fn serve(vendor: &Vendor, db: &str) -> Server {
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--keys",
        &vendor.path("keys"),
        "--catalog",
        &vendor.path("catalog.toml"),
        "--db",
        db,
        "--rate-limit",
        "0",
        "--threads",
        "2",
    ];
    Server::start(&args.map(str::to_owned))
}

#[test]
fn three_servers_on_one_postgres_give_the_last_ten_seats_to_ten_of_two_hundred() {
    let db = TempPostgres::shared().database();
    let vendor = Vendor::new();
    let (_, key) = vendor.new_license(BASE_SKU, &["--seats", &SEATS.to_string()]);
    let servers = [
        serve(&vendor, &db),
        serve(&vendor, &db),
        serve(&vendor, &db),
    ];
    for machine in 0..TAKEN_BEFORE {
        let server = &servers[usize::from(machine) % servers.len()];
        activate(
            server.addr,
            &vendor.public,
            &Installation::new(BASE_SKU, key, machine),
            3,
            WAIT,
        )
        .expect("a seat while there are seats");
    }

    let barrier = Arc::new(Barrier::new(usize::from(CLIENTS)));
    let racers: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let machine = TAKEN_BEFORE + n;
            let server = servers[usize::from(n) % servers.len()].addr;
            let public = vendor.public.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let installation = Installation::new(BASE_SKU, key, machine);
                barrier.wait();
                activate(server, &public, &installation, 2, WAIT)
                    .map(|answer| (installation, answer.response.license_id))
            })
        })
        .collect();
    let winners: Vec<(Installation, Uuid)> = racers
        .into_iter()
        .filter_map(|racer| racer.join().expect("client thread"))
        .collect();
    assert_eq!(
        winners.len(),
        10,
        "exactly the ten seats left were given; the others were not answered"
    );

    for (installation, license_id) in &winners {
        for server in &servers {
            let again = activate(server.addr, &vendor.public, installation, 3, WAIT)
                .expect("a winner is answered by every server");
            assert_eq!(
                again.response.license_id, *license_id,
                "the same LicenseId from every server"
            );
        }
    }
    let distinct: std::collections::HashSet<Uuid> = winners.iter().map(|w| w.1).collect();
    assert_eq!(distinct.len(), winners.len(), "one LicenseId per machine");

    let store = DbLocation::Postgres(db).open().expect("open");
    assert_eq!(
        store.seat_count().expect("count"),
        u64::from(SEATS),
        "never more seats than sold"
    );
    let loser = (TAKEN_BEFORE..TAKEN_BEFORE + CLIENTS)
        .find(|m| winners.iter().all(|w| w.0.machine_hash != [*m; 32]))
        .expect("190 lost");
    for server in &servers {
        assert!(
            activate(
                server.addr,
                &vendor.public,
                &Installation::new(BASE_SKU, key, loser),
                1,
                Duration::from_millis(500)
            )
            .is_none(),
            "a machine that lost stays unanswered on every server"
        );
    }
}
