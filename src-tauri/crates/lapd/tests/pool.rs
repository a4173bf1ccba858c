//! The indirect setup (profile §10) through whole server turns (`Server::handle_at`): a vendor
//! granting a pool to intermediates, and an intermediate granting its clients seats of it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use lap_proto::record::ActivationRecord;
use lap_proto::seed::SEED_V1_LEN;
use lap_proto::time::DAY;
use lap_proto::{
    EphemeralSecret, Request, SeedExtensions, SeedV1, ServerData, ServerSecretKeys, Uuid,
};
use lapd::catalog::LicenseCatalog;
use lapd::intermediate_keys::{self, IntermediateKeys};
use lapd::pool::UPDATE_NOTICE;
use lapd::ratelimit::RateLimiter;
use lapd::rules::PoolTerms;
use lapd::server::Server;
use lapd::store::Store;
use zeroize::Zeroizing;

const NOW: u64 = 1_795_000_000;
const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);
const ROOM: usize = 256;

fn vendor_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32])
}

fn intermediate_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x51; 32], &[0x52; 32])
}

fn catalog(licenses: &str) -> LicenseCatalog {
    LicenseCatalog::parse(
        &format!("[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\n{licenses}"),
        Path::new("catalog.toml"),
    )
    .expect("catalog")
}

fn pool_catalog() -> LicenseCatalog {
    catalog(&format!(
        "[[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"subscription\"\nseats = 3\n\
         not_after = {}\nfeatures = [\"pro\", \"render\"]\npool = true\n",
        lap_proto::test_util::key(7).to_display(),
        NOW + 365 * DAY
    ))
}

fn server(keys: ServerSecretKeys, catalog: LicenseCatalog) -> Server {
    Server::new(
        keys,
        catalog,
        Store::in_memory().expect("store"),
        RateLimiter::new(0, 0),
        0,
    )
}

struct Ask<'a> {
    key: u8,
    machine: u8,
    extensions: SeedExtensions,
    intermediate: Option<IntermediateKeys>,
    to: &'a ServerSecretKeys,
    now: u64,
}

/// Sends one request and opens the answer as a client does: the activation record's parts
/// (LicenseId, ServerData, the response and its key), or `None` for silence.
fn ask(server: &Server, ask: &Ask<'_>, n: u8) -> Option<(Uuid, ServerData, ActivationRecord)> {
    ask_holding(server, ask, Uuid::nil(), n)
}

/// As [`ask`], from an installation holding `license_id` (CurrentLicenseId).
fn ask_holding(
    server: &Server,
    ask: &Ask<'_>,
    license_id: Uuid,
    n: u8,
) -> Option<(Uuid, ServerData, ActivationRecord)> {
    let seed = SeedV1 {
        decoded_key: *lap_proto::test_util::key(ask.key).as_bytes(),
        machine_hash: [ask.machine; 32],
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [ask.machine; 16],
    };
    let mut bytes = seed.encode(ROOM).expect("room").to_vec();
    match &ask.intermediate {
        Some(keys) => {
            intermediate_keys::write_into(&ask.extensions, keys, &mut bytes[SEED_V1_LEN..])
                .expect("fits");
        }
        None => ask
            .extensions
            .write_into(&mut bytes[SEED_V1_LEN..])
            .expect("fits"),
    }
    let request = Request {
        client_time: ask.now,
        client_base_id: Uuid::from_u128(u128::from(ask.machine)),
        client_addon_id: Uuid::nil(),
        sku_id: SKU,
        current_license_id: license_id,
        client_seed: Zeroizing::new(bytes),
    };
    let (datagram, pending) = lap_proto::seal_request(
        ask.to.public(),
        &request,
        &EphemeralSecret::from_bytes([n; 32]),
    )
    .expect("sealed");
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    let answer = server.handle_at(&datagram, source, Instant::now(), ask.now)?;
    let activation = pending.open(&answer).expect("a valid answer");
    let data = ServerData::parse(&activation.response.server_data).expect("valid ServerData");
    Some((
        activation.response.license_id,
        data,
        ActivationRecord::new("acme-studio", &activation),
    ))
}

fn pool_request(machine: u8, wanted: u32, in_use: u32) -> Ask<'static> {
    static VENDOR: std::sync::OnceLock<ServerSecretKeys> = std::sync::OnceLock::new();
    Ask {
        key: 7,
        machine,
        extensions: SeedExtensions {
            pool_request: Some(wanted),
            pool_usage: Some(in_use),
            ..SeedExtensions::default()
        },
        intermediate: Some(IntermediateKeys {
            ed25519: *intermediate_keys().public().ed25519_bytes(),
            x25519: *intermediate_keys().public().x25519_bytes(),
        }),
        to: VENDOR.get_or_init(vendor_keys),
        now: NOW,
    }
}

#[test]
fn the_vendor_grants_a_pool_with_a_delegation_it_signed() {
    let vendor = server(vendor_keys(), pool_catalog());
    let (license_id, data, _) = ask(&vendor, &pool_request(1, 2, 0), 1).expect("answered");
    assert_eq!(data.seats, Some(2));
    assert_eq!(data.features, ["pro", "render"]);
    let not_after = data.not_after.expect("a grant ends");
    assert_eq!(not_after, NOW + 30 * DAY, "the default grant: 30 days");
    assert!(data.renew_after.is_some_and(|r| r > NOW && r < not_after));
    let delegation = data.delegation.expect("a Delegation");
    delegation
        .verify(vendor_keys().public().ed25519_bytes())
        .expect("signed by the vendor's key");
    assert_eq!(
        (delegation.sku, delegation.seats, delegation.not_after),
        (SKU, 2, not_after)
    );
    assert_eq!(
        &delegation.intermediate_ed25519,
        intermediate_keys().public().ed25519_bytes()
    );
    // The same intermediate renews under the same LicenseId.
    let (again, _, _) = ask(&vendor, &pool_request(1, 2, 2), 2).expect("renewed");
    assert_eq!(again, license_id);
}

#[test]
fn two_intermediates_share_the_pool_and_never_hold_more() {
    let vendor = server(vendor_keys(), pool_catalog());
    let first = ask(&vendor, &pool_request(1, 2, 0), 1).expect("answered").1;
    let second = ask(&vendor, &pool_request(2, 2, 0), 2).expect("answered").1;
    assert_eq!((first.seats, second.seats), (Some(2), Some(1)));
    assert_eq!(
        second.notice.as_deref(),
        Some("1 of the 2 seats asked for are left in this pool.")
    );
    assert_eq!(second.delegation.expect("delegated").seats, 1);
    let grants = vendor
        .with_store(|s| s.backend().pool_grants())
        .expect("list");
    assert_eq!(grants.iter().map(|g| g.seats).sum::<u32>(), 3);
}

#[test]
fn a_desktop_with_a_pool_key_is_not_answered() {
    let vendor = server(vendor_keys(), pool_catalog());
    let desktop = Ask {
        extensions: SeedExtensions::default(),
        intermediate: None,
        ..pool_request(9, 0, 0)
    };
    assert!(ask(&vendor, &desktop, 1).is_none());
    assert_eq!(vendor.stats.dropped(lapd::rules::DropReason::PoolOnly), 1);
}

#[test]
fn an_intermediate_without_its_keys_is_told_to_update() {
    let vendor = server(vendor_keys(), pool_catalog());
    let old = Ask {
        intermediate: None,
        ..pool_request(1, 2, 0)
    };
    let data = ask(&vendor, &old, 1).expect("answered").1;
    assert_eq!(data.seats, Some(0));
    assert!(data.delegation.is_none());
    assert_eq!(data.notice.as_deref(), Some(UPDATE_NOTICE));
}

/// The intermediate: its own keys, a site license of 5 seats, drawing from a pool of `seats`.
fn intermediate(vendor_data: &ServerData) -> Server {
    let site = catalog(&format!(
        "[[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 5\n\
         features = [\"pro\", \"site-extra\"]\n",
        lap_proto::test_util::key(1).to_display()
    ));
    let server = server(intermediate_keys(), site);
    let terms = PoolTerms {
        seats: vendor_data.seats.expect("seats"),
        not_after: vendor_data.not_after.expect("end"),
        features: vendor_data.features.clone(),
        delegation: (**vendor_data.delegation.as_ref().expect("delegated")).clone(),
    };
    server.set_pools(HashMap::from([(SKU, Some(terms))]));
    server
}

fn client(machine: u8, now: u64) -> Ask<'static> {
    static INTERMEDIATE: std::sync::OnceLock<ServerSecretKeys> = std::sync::OnceLock::new();
    Ask {
        key: 1,
        machine,
        extensions: SeedExtensions::default(),
        intermediate: None,
        to: INTERMEDIATE.get_or_init(intermediate_keys),
        now,
    }
}

#[test]
fn an_intermediate_grants_no_more_than_its_pool_and_its_records_verify_with_the_vendor_key() {
    let vendor = server(vendor_keys(), pool_catalog());
    let pool = ask(&vendor, &pool_request(1, 2, 0), 1).expect("pool").1;
    let site = intermediate(&pool);
    let (_, data, record) = ask(&site, &client(11, NOW), 1).expect("first");
    assert!(ask(&site, &client(12, NOW), 2).is_some(), "second");
    assert!(
        ask(&site, &client(13, NOW), 3).is_none(),
        "the pool has two seats"
    );
    assert_eq!(data.not_after, pool.not_after, "never past the pool's end");
    assert_eq!(data.features, ["pro"], "only the pool's features");
    record
        .verify(SKU, vendor_keys().public().ed25519_bytes())
        .expect("a delegated record verifies with the vendor's key alone");
    // Past the pool's end nothing more is granted, not even to a machine holding a seat.
    let late = pool.not_after.expect("end") + 1;
    assert!(ask(&site, &client(11, late), 4).is_none());
}

#[test]
fn an_intermediate_without_a_pool_grants_nothing() {
    let site = server(
        intermediate_keys(),
        catalog(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 5\n",
            lap_proto::test_util::key(1).to_display()
        )),
    );
    site.set_pools(HashMap::from([(SKU, None)]));
    assert!(ask(&site, &client(11, NOW), 1).is_none());
    assert_eq!(site.stats.dropped(lapd::rules::DropReason::NoPool), 1);
}

/// An intermediate set up as `serve` sets it up, with its `[upstream]` pointing at `vendor`.
struct Site {
    server: Server,
    upstream: lapd::upstream::Upstream,
    dir: tempfile::TempDir,
}

fn site(vendor: SocketAddr, dir: tempfile::TempDir) -> Site {
    let vendor_public = dir.path().join("vendor-server.toml");
    std::fs::write(&vendor_public, lapd::keys::public_snippet(&vendor_keys())).expect("write");
    std::fs::write(
        dir.path().join("pool.key"),
        lap_proto::test_util::key(7).to_display(),
    )
    .expect("write");
    let config = lapd::upstream::UpstreamConfig {
        address: Some(vendor.to_string()),
        srv_domain: None,
        vendor_public: "vendor-server.toml".into(),
        anchor_file: Some("anchor".into()),
        state: None,
        pools: vec![lapd::upstream::PoolConfig {
            sku: SKU,
            license_key_file: "pool.key".into(),
            seats: 2,
        }],
    }
    .resolved(Some(dir.path()))
    .expect("config");
    let upstream =
        lapd::upstream::Upstream::open(config, &intermediate_keys(), || [9; 32]).expect("upstream");
    let server = server(
        intermediate_keys(),
        catalog(&format!(
            "[[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 10\n",
            lap_proto::test_util::key(1).to_display()
        )),
    );
    server.set_pools(upstream.pools_at(lap_proto::time::unix_now()));
    Site {
        server,
        upstream,
        dir,
    }
}

impl Site {
    /// One syncer round at server time `now`.
    fn tick(&mut self, now: u64) -> Vec<lapd::upstream::Synced> {
        let mut n = 0u8;
        let synced = self.upstream.tick(&|_| 0, &|| now, &mut || {
            n += 1;
            [n; 32]
        });
        self.server.set_pools(self.upstream.pools_at(now));
        synced
    }
}

fn vendor_on_loopback(db: &Path, offset: i64) -> lapd::server::Background {
    let vendor = Server::new(
        vendor_keys(),
        pool_catalog(),
        Store::open(&lapd::store::DbLocation::Sqlite(db.to_owned())).expect("store"),
        RateLimiter::new(0, 0),
        offset,
    );
    lapd::server::Background::start(vendor, "127.0.0.1:0".parse().expect("addr"), 1)
        .expect("vendor")
}

#[test]
fn an_intermediate_serves_until_its_pool_ends_while_the_vendor_is_away_then_syncs_again() {
    let vendor_dir = tempfile::tempdir().expect("tempdir");
    let db = vendor_dir.path().join("vendor.sqlite");
    let vendor = vendor_on_loopback(&db, 0);
    let mut site = site(vendor.address(), tempfile::tempdir().expect("tempdir"));
    let start = lap_proto::time::unix_now();
    let synced = site.tick(start);
    let Some(lapd::upstream::Synced::Granted(pool)) = synced.first() else {
        panic!("expected a grant, got {synced:?}");
    };
    assert_eq!(pool.seats, 2);
    assert!(
        site.tick(start + 60).is_empty(),
        "not due again before RenewAfter"
    );
    let end = pool.not_after;
    drop(vendor);

    // Past RenewAfter, the vendor gone: the sync fails, the pool still serves.
    let later = pool.renew_after + DAY;
    assert!(matches!(
        site.tick(later).as_slice(),
        [lapd::upstream::Synced::Failed(_)]
    ));
    let warning = lapd::upstream::ending_warning_if_due(pool, later).expect("a warning");
    assert!(
        warning.contains("unless lapd reaches the vendor"),
        "{warning}"
    );
    let (_, data, _) = ask(&site.server, &client(21, later), 1).expect("still granted");
    assert_eq!(data.not_after, Some(end));
    // The failure is not retried before the §8 backoff says so.
    assert!(site.tick(later + 60).is_empty());

    // Past the pool's end nothing is granted.
    let ended = end + 60;
    assert!(matches!(
        site.tick(ended).as_slice(),
        [lapd::upstream::Synced::Failed(_)]
    ));
    assert!(ask(&site.server, &client(21, ended), 2).is_none());

    // The vendor is back, on another port, its clock where the intermediate's is; the
    // intermediate restarts pointed at it: the saved pool is read back (ended), and the sync
    // at start renews it.
    let back = ended + 60;
    let offset = i64::try_from(back - lap_proto::time::unix_now()).expect("offset");
    let vendor = vendor_on_loopback(&db, offset);
    let dir = site.dir;
    let saved = std::fs::read_to_string(dir.path().join("pools.json")).expect("state");
    assert!(
        !saved.contains(&lap_proto::test_util::key(7).to_display()),
        "the state file holds no key"
    );
    let mut site = self::site(vendor.address(), dir);
    assert_eq!(
        site.upstream.pools_at(back).get(&SKU),
        Some(&None),
        "the saved pool, ended"
    );
    let synced = site.tick(back);
    assert!(
        matches!(synced.as_slice(), [lapd::upstream::Synced::Granted(p)] if p.not_after > back),
        "{synced:?}"
    );
    assert!(ask(&site.server, &client(21, back), 3).is_some());
}

#[test]
fn an_intermediate_whose_pool_ended_still_frees_seats() {
    let vendor = server(vendor_keys(), pool_catalog());
    let pool = ask(&vendor, &pool_request(1, 2, 0), 1).expect("pool").1;
    let site = intermediate(&pool);
    let (license_id, _, _) = ask(&site, &client(11, NOW), 1).expect("granted");
    let ended = pool.not_after.expect("end") + 60;
    let release = Ask {
        extensions: SeedExtensions {
            intent: lap_proto::Intent::Release,
            ..SeedExtensions::default()
        },
        ..client(11, ended)
    };
    let (_, data, _) = ask_holding(&site, &release, license_id, 2).expect("answered");
    assert!(data.released);
    assert!(
        ask(&site, &client(11, ended), 3).is_none(),
        "but grants nothing"
    );
}
