//! `lapd` against duplicates, replays and floods of valid requests, in process: the server's
//! turn (`Server::handle_at`) with the time injected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use lap_proto::{EphemeralSecret, Request, SeedV1, ServerPublicKeys, ServerSecretKeys, Uuid};
use lapd::catalog::{LicenseCatalog, evaluation_reference};
use lapd::ratelimit::RateLimiter;
use lapd::replay::ReplayGuard;
use lapd::rules::DropReason;
use lapd::server::Server;
use lapd::store::Store;
use zeroize::Zeroizing;

const NOW: u64 = 1_795_000_000;
const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

fn keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32])
}

fn server(catalog: &str, limiter: RateLimiter) -> (Server, ServerPublicKeys) {
    let keys = keys();
    let public = keys.public().clone();
    let catalog = LicenseCatalog::parse(catalog, Path::new("catalog.toml")).expect("catalog");
    let server = Server::new(
        keys,
        catalog,
        Store::in_memory().expect("store"),
        limiter,
        0,
    );
    (server, public)
}

/// A valid evaluation request from machine `n`, sealed with an ephemeral key of its own.
fn evaluation_request(public: &ServerPublicKeys, n: u32) -> Vec<u8> {
    let mut machine_hash = [0u8; 32];
    machine_hash[..4].copy_from_slice(&n.to_be_bytes());
    let seed = SeedV1 {
        decoded_key: [0; 16],
        machine_hash,
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [7; 16],
    };
    let request = Request {
        client_time: NOW,
        client_base_id: Uuid::from_u128(u128::from(n) + 1),
        client_addon_id: Uuid::nil(),
        sku_id: SKU,
        current_license_id: Uuid::nil(),
        client_seed: Zeroizing::new(
            seed.encode(lap_proto::seed::DEFAULT_RESPONSE_ROOM)
                .expect("room")
                .to_vec(),
        ),
    };
    let mut ephemeral = [0x55u8; 32];
    ephemeral[..4].copy_from_slice(&n.to_be_bytes());
    let (datagram, _pending) =
        lap_proto::seal_request(public, &request, &EphemeralSecret::from_bytes(ephemeral))
            .expect("sealed");
    datagram
}

fn source(n: u32) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | n)), 40_000)
}

#[test]
fn the_same_datagram_twice_is_answered_once() {
    let (server, public) = server(
        &format!("[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\nevaluation_days = 30\n"),
        RateLimiter::new(0, 0),
    );
    let datagram = evaluation_request(&public, 1);
    let arrived = Instant::now();
    assert!(
        server
            .handle_at(&datagram, source(1), arrived, NOW)
            .is_some(),
        "the first arrival is answered"
    );
    for (from, now) in [(1, NOW), (2, NOW + 1), (3, NOW + 30)] {
        assert_eq!(
            server.handle_at(&datagram, source(from), arrived, now),
            None,
            "a duplicate or a replay inside the window gets no second, different answer"
        );
    }
    assert_eq!(server.stats.dropped(DropReason::Replayed), 3);
    assert_eq!(server.remembered_requests().0, 1);
    assert!(
        server
            .handle_at(&evaluation_request(&public, 2), source(1), arrived, NOW)
            .is_some(),
        "another request is answered"
    );
}

#[test]
fn a_flood_of_valid_evaluation_requests_takes_the_cap_and_no_more_memory() {
    const FLOOD: u32 = 10_000;
    const CAP: u32 = 100;
    const SOURCES: usize = 1_024;
    const REMEMBERED: usize = 8_192;
    let (server, public) = server(
        &format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\nevaluation_days = 30\nevaluation_cap = {CAP}\nevaluation_cap_hours = 24\n"
        ),
        RateLimiter::with_capacity(20, 40, SOURCES),
    );
    let server = server.with_replay_guard(ReplayGuard::new(REMEMBERED));
    let arrived = Instant::now();
    let mut answered = 0u32;
    for n in 0..FLOOD {
        // Each from its own address and a machine hash of its own: nothing is rate limited,
        // every request is one more machine asking for an evaluation.
        if server
            .handle_at(&evaluation_request(&public, n), source(n), arrived, NOW)
            .is_some()
        {
            answered += 1;
        }
        assert!(server.rate_limiter().tracked_sources() <= SOURCES);
    }
    assert_eq!(answered, CAP, "exactly the cap is answered");
    let seats = server.with_store(|store| {
        let used = store
            .backend()
            .usage(&evaluation_reference(SKU))
            .map(|u| u.seats_used);
        (used.expect("read"), store.seat_count().expect("count"))
    });
    assert_eq!(
        seats,
        (CAP, u64::from(CAP)),
        "exactly the cap of seats is taken"
    );
    let remembered = usize::try_from(FLOOD).expect("fits") - REMEMBERED;
    assert_eq!(
        server.stats.dropped(DropReason::EvaluationCap),
        u64::from(FLOOD) - u64::from(CAP) - remembered as u64,
        "the rest is dropped by the cap…"
    );
    assert_eq!(
        server.stats.dropped(DropReason::ReplayGuardFull),
        remembered as u64,
        "…or, once the replay guard's slot is full, before the rules"
    );
    assert_eq!(
        server.rate_limiter().tracked_sources(),
        SOURCES,
        "the rate limiter holds its bound, no more"
    );
    let (held, bound) = server.remembered_requests();
    assert_eq!(
        held, REMEMBERED,
        "the replay guard's slot holds its bound, no more"
    );
    assert!(held <= bound);
}
