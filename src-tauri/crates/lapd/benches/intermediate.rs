//! `cargo bench -p lapd --bench intermediate`: an intermediate's turn (open, decide, seal:
//! `Server::handle_at`) next to lapd's plain turn, for a returning machine, on one thread.
//! The intermediate draws from a pool and copies the vendor's Delegation into every answer;
//! the bound is a ratio of at most 1.1. Prints the medians and the ratio, and exits
//! non-zero when the ratio is over the bound.
//!
//! Turns per run: `LAPD_BENCH_TURNS` (default 3,000); runs alternate between the two servers
//! so that a frequency change or a noisy neighbour weighs on both alike.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use lap_proto::time::DAY;
use lap_proto::{Delegation, EphemeralSecret, Request, SeedV1, ServerSecretKeys, Uuid};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::rules::PoolTerms;
use lapd::server::Server;
use lapd::store::Store;
use zeroize::Zeroizing;

const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);
const ROOM: usize = 256;
const RUNS: usize = 9;
const BOUND: f64 = 1.1;

fn server(keys: ServerSecretKeys) -> Server {
    let catalog = LicenseCatalog::parse(
        &format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Bench\"\n[[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\n\
             kind = \"perpetual\"\nseats = 1000\nfeatures = [\"pro\"]\n",
            lap_proto::test_util::key(1).to_display()
        ),
        Path::new("bench.toml"),
    )
    .expect("catalog");
    Server::new(
        keys,
        catalog,
        Store::in_memory().expect("store"),
        RateLimiter::new(0, 0),
        0,
    )
}

/// `n` sealed requests of one returning machine, each with its own ephemeral key (a server
/// answers a key once).
fn requests(keys: &ServerSecretKeys, now: u64, n: usize, salt: u8) -> Vec<Vec<u8>> {
    let seed = SeedV1 {
        decoded_key: *lap_proto::test_util::key(1).as_bytes(),
        machine_hash: [7; 32],
        num_cpus: 1,
        num_cores: 4,
        install_nonce: [7; 16],
    };
    let request = Request {
        client_time: now,
        client_base_id: Uuid::from_u128(7),
        client_addon_id: Uuid::nil(),
        sku_id: SKU,
        current_license_id: Uuid::nil(),
        client_seed: Zeroizing::new(seed.encode(ROOM).expect("room").to_vec()),
    };
    (0..n)
        .map(|i| {
            let mut ephemeral = [salt; 32];
            // Bytes 8..16: X25519 clamps bits of the first and last bytes.
            ephemeral[8..16].copy_from_slice(&(i as u64).to_le_bytes());
            lap_proto::seal_request(
                keys.public(),
                &request,
                &EphemeralSecret::from_bytes(ephemeral),
            )
            .expect("sealed")
            .0
        })
        .collect()
}

/// Nanoseconds per turn over `datagrams`.
fn turns(server: &Server, datagrams: &[Vec<u8>], now: u64) -> f64 {
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    let started = Instant::now();
    for datagram in datagrams {
        let answer = server.handle_at(datagram, source, Instant::now(), now);
        assert!(
            answer.is_some(),
            "every turn is answered: {}",
            server.stats.summary()
        );
    }
    let turns = u32::try_from(datagrams.len()).unwrap_or(u32::MAX);
    started.elapsed().as_secs_f64() * 1e9 / f64::from(turns)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let n: usize = std::env::var("LAPD_BENCH_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let now = 1_795_000_000;
    let vendor = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
    let plain_keys = ServerSecretKeys::from_bytes([0x51; 32], &[0x52; 32]);
    let site_keys = ServerSecretKeys::from_bytes([0x61; 32], &[0x62; 32]);

    let plain = server(ServerSecretKeys::from_bytes([0x51; 32], &[0x52; 32]));
    let site = server(ServerSecretKeys::from_bytes([0x61; 32], &[0x62; 32]));
    let not_after = now + 30 * DAY;
    let delegation = Delegation::sign(
        &vendor,
        *site_keys.public().ed25519_bytes(),
        *site_keys.public().x25519_bytes(),
        SKU,
        500,
        not_after,
    )
    .expect("delegation");
    site.set_pools(HashMap::from([(
        SKU,
        Some(PoolTerms {
            seats: 500,
            not_after,
            features: vec!["pro".into()],
            delegation,
        }),
    )]));

    let mut plain_ns = Vec::new();
    let mut site_ns = Vec::new();
    // Run 0 warms up (the seat is taken, caches filled) and is not counted.
    for run in 0..=RUNS {
        let salt = u8::try_from(run).unwrap_or(u8::MAX);
        let plain_requests = requests(&plain_keys, now, n, salt);
        let site_requests = requests(&site_keys, now, n, salt);
        let (p, s) = if run % 2 == 0 {
            let p = turns(&plain, &plain_requests, now);
            (p, turns(&site, &site_requests, now))
        } else {
            let s = turns(&site, &site_requests, now);
            (turns(&plain, &plain_requests, now), s)
        };
        if run > 0 {
            plain_ns.push(p);
            site_ns.push(s);
        }
    }
    let plain_median = median(plain_ns);
    let site_median = median(site_ns);
    let ratio = site_median / plain_median;
    println!(
        "lapd turn (open, decide, seal), returning machine, {n} turns x {RUNS} runs, medians:"
    );
    println!("  plain lapd:    {:>8.1} µs", plain_median / 1000.0);
    println!("  intermediate:  {:>8.1} µs", site_median / 1000.0);
    println!("  ratio:         {ratio:>8.3} (bound {BOUND})");
    if ratio > BOUND {
        eprintln!("the intermediate's turn costs more than {BOUND} times the plain turn");
        std::process::exit(1);
    }
}
