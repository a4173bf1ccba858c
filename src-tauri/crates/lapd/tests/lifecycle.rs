//! The lifecycle through the server's whole turn (`Server::handle_at`): sealed requests with
//! seed extensions in, signed answers out, opened as a client opens them; and the 1.0 knob
//! (`Server::with_profile`) that lapwing-core's tests use for an old server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Instant;

use lap_proto::{
    EphemeralSecret, Intent, Request, SeedExtensions, SeedV1, ServerData, ServerSecretKeys, Uuid,
};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::rules::Profile;
use lapd::server::Server;
use lapd::store::Store;
use zeroize::Zeroizing;

const NOW: u64 = 1_795_000_000;
const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

fn server(profile: Profile) -> Server {
    let catalog = LicenseCatalog::parse(
        &format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 1\n",
            lap_proto::test_util::key(1).to_display()
        ),
        Path::new("catalog.toml"),
    )
    .expect("catalog");
    Server::new(
        ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]),
        catalog,
        Store::in_memory().expect("store"),
        RateLimiter::new(0, 0),
        0,
    )
    .with_profile(profile)
}

/// Sends one request from machine `machine` (installation `machine` too) and opens the
/// answer as a client does: `(LicenseId, ServerData)`, or `None` for silence.
fn ask(
    server: &Server,
    machine: u8,
    license_id: Uuid,
    extensions: &SeedExtensions,
    n: u8,
) -> Option<(Uuid, ServerData)> {
    let seed = SeedV1 {
        decoded_key: *lap_proto::test_util::key(1).as_bytes(),
        machine_hash: [machine; 32],
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [machine; 16],
    };
    let request = Request {
        client_time: NOW,
        client_base_id: Uuid::from_u128(u128::from(machine)),
        client_addon_id: Uuid::nil(),
        sku_id: SKU,
        current_license_id: license_id,
        client_seed: Zeroizing::new(
            seed.encode_with_extensions(lap_proto::seed::DEFAULT_RESPONSE_ROOM, extensions)
                .expect("room")
                .to_vec(),
        ),
    };
    let public = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32])
        .public()
        .clone();
    let (datagram, pending) =
        lap_proto::seal_request(&public, &request, &EphemeralSecret::from_bytes([n; 32]))
            .expect("sealed");
    let source = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40_000);
    let answer = server.handle_at(&datagram, source, Instant::now(), NOW)?;
    let activation = pending.open(&answer).expect("a valid answer");
    let data = ServerData::parse(&activation.response.server_data).expect("valid ServerData");
    Some((activation.response.license_id, data))
}

fn release() -> SeedExtensions {
    SeedExtensions {
        intent: Intent::Release,
        ..SeedExtensions::default()
    }
}

#[test]
fn a_released_seat_goes_to_the_next_computer() {
    let server = server(Profile::V1_1);
    let none = SeedExtensions::default();
    let (id, _) = ask(&server, 1, Uuid::nil(), &none, 1).expect("granted");
    assert!(ask(&server, 2, Uuid::nil(), &none, 2).is_none(), "one seat");
    let (released_id, data) = ask(&server, 1, id, &release(), 3).expect("answered");
    assert!(data.confirms_release(NOW), "{data:?}");
    assert_eq!(released_id, id);
    ask(&server, 2, Uuid::nil(), &none, 4).expect("the freed seat");
}

#[test]
fn a_1_0_server_answers_a_release_with_a_plain_grant() {
    let server = server(Profile::V1_0);
    let none = SeedExtensions::default();
    let (id, _) = ask(&server, 1, Uuid::nil(), &none, 1).expect("granted");
    let (same, data) = ask(&server, 1, id, &release(), 2).expect("answered");
    assert_eq!(same, id);
    assert!(!data.released && data.not_after.is_none(), "{data:?}");
    assert!(
        ask(&server, 2, Uuid::nil(), &none, 3).is_none(),
        "the seat stays taken"
    );
}
