//! lapd listening on a wildcard address answers from the address it was asked on: a client
//! whose socket is connected to that address (as most are) accepts nothing else.
//! 127.0.0.1 and 127.0.0.2 both reach the loopback interface on Linux.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lap_proto::{EphemeralSecret, Request, SeedV1, ServerPublicKeys, ServerSecretKeys, Uuid};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::server::{Background, Server};
use lapd::store::Store;
use zeroize::Zeroizing;

const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

fn serve(listen: &str) -> (Background, ServerPublicKeys) {
    let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
    let public = keys.public().clone();
    let catalog = LicenseCatalog::parse(
        &format!("[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\nevaluation_days = 30\n"),
        Path::new("catalog.toml"),
    )
    .expect("catalog");
    let server = Server::new(
        keys,
        catalog,
        Store::in_memory().expect("store"),
        RateLimiter::new(0, 0),
        0,
    );
    let serving = Background::start(server, listen.parse().expect("address"), 2).expect("serves");
    (serving, public)
}

fn evaluation_request(public: &ServerPublicKeys, n: u8) -> (Vec<u8>, lap_proto::PendingExchange) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let seed = SeedV1 {
        decoded_key: [0; 16],
        machine_hash: [n; 32],
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [n; 16],
    };
    let request = Request {
        client_time: now,
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
    lap_proto::seal_request(public, &request, &EphemeralSecret::from_bytes([n; 32]))
        .expect("sealed")
}

/// Asks from `client_ip` the server at `server_ip` and the port of `serving`, on a socket
/// connected to that address; true when a valid answer came back.
fn answered(
    serving: &Background,
    public: &ServerPublicKeys,
    client_ip: &str,
    server_ip: &str,
    n: u8,
) -> bool {
    let ip = |text: &str| -> IpAddr { text.parse().expect("an IP address") };
    let client = UdpSocket::bind(SocketAddr::new(ip(client_ip), 0)).expect("client socket");
    let server = SocketAddr::new(ip(server_ip), serving.address().port());
    client.connect(server).expect("connect");
    // Only what fails waits this long: an answer from another address never arrives.
    client
        .set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let (datagram, pending) = evaluation_request(public, n);
    client.send(&datagram).expect("send");
    let mut buffer = [0u8; 2048];
    match client.recv(&mut buffer) {
        Ok(len) => {
            pending.open(&buffer[..len]).expect("a valid answer");
            true
        }
        Err(_) => false,
    }
}

#[test]
fn a_wildcard_listener_answers_from_the_address_it_was_asked_on() {
    let (serving, public) = serve("0.0.0.0:0");
    assert!(answered(&serving, &public, "127.0.0.1", "127.0.0.1", 1));
    assert!(
        answered(&serving, &public, "127.0.0.2", "127.0.0.2", 2),
        "asked on 127.0.0.2, it answers from 127.0.0.2 (the route to it would pick 127.0.0.1)"
    );
}

#[test]
fn a_dual_stack_wildcard_listener_answers_ipv4_clients_from_the_address_asked() {
    let (serving, public) = serve("[::]:0");
    assert!(
        answered(&serving, &public, "127.0.0.2", "127.0.0.2", 3),
        "an IPv4 client of an IPv6 socket is answered from the IPv4 address it asked"
    );
    assert!(answered(&serving, &public, "::1", "::1", 4));
}
