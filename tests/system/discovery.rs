//! The race of servers with the real binaries: `lapctl` in its default configuration (mDNS
//! on, port 5353, every interface) against two `lapd`s, one at the manifest's address and one
//! announced by a real mDNS responder (mdns-sd) as a DNS-SD `_lap._udp` instance. All of it
//! runs in a private network namespace (`unshare --net`, through a user namespace when not
//! root) with a veth pair `va`–`vb`, so the browse neither sees nor disturbs the host's link.
//! The assertions name the server that answered, never how long it took: the timing is the
//! engine bench's (`cargo bench -p lapwing-core --bench engine`).

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use lapwing_system_tests::desk::manifest;
use lapwing_system_tests::home::Home;
use lapwing_system_tests::{BASE_SKU, Server, Vendor};
use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};

/// Runs the named test of this binary again inside a private network namespace; returns
/// true when the caller is already inside and should go on.
fn inside_a_namespace(name: &str) -> bool {
    lapwing_discovery::test_util::in_network_namespace(name, "LAPWING_SYSTEM_IN_NETNS")
}

/// Loopback, and a veth pair: `va` (10.77.0.1, where lapctl hears mDNS) and `vb`
/// (10.77.0.2, the lab server and its responder).
fn set_up_the_link() {
    let ip = |args: &str| {
        let status = Command::new("ip")
            .args(args.split_whitespace())
            .status()
            .expect("ip (iproute2) runs");
        assert!(status.success(), "ip {args}");
    };
    ip("link set lo up");
    ip("link add va type veth peer name vb");
    // Both ends live in this one namespace, so IPv4 datagrams between them come from a local
    // address, which Linux drops as martian unless told to accept them.
    for dev in ["all", "default"] {
        for (key, value) in [("accept_local", "1"), ("rp_filter", "0")] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{dev}/{key}"), value)
                .unwrap_or_else(|e| panic!("sysctl {dev}/{key}: {e}"));
        }
    }
    for (dev, v4) in [("va", "10.77.0.1/24"), ("vb", "10.77.0.2/24")] {
        ip(&format!("link set {dev} addrgenmode none"));
        ip(&format!("addr add {v4} dev {dev}"));
        ip(&format!("link set {dev} up"));
    }
}

/// `lapd serve` with the vendor's keys and catalog, on `listen`, with a database of its own.
fn serve(vendor: &Vendor, listen: &str, db: &str) -> Server {
    Server::start(&[
        "serve".into(),
        "--listen".into(),
        listen.into(),
        "--keys".into(),
        vendor.path("keys"),
        "--catalog".into(),
        vendor.path("catalog.toml"),
        "--db".into(),
        vendor.path(db),
    ])
}

/// An mDNS responder on `vb` (port 5353, as every responder) announcing `server`.
fn announce(server: &Server) -> ServiceDaemon {
    let responder = ServiceDaemon::new().expect("mDNS responder");
    responder
        .disable_interface(IfKind::All)
        .and_then(|()| responder.enable_interface("vb"))
        .expect("responder on vb only");
    let events = responder.monitor().expect("monitor");
    let info = ServiceInfo::new(
        "_lap._udp.local.",
        "lab server",
        "lab.local.",
        server.addr.ip().to_string().as_str(),
        server.addr.port(),
        None::<std::collections::HashMap<String, String>>,
    )
    .expect("service info");
    let fullname = info.get_fullname().to_owned();
    responder.register(info).expect("register");
    // Announced, then quiet for 1.5 s: past the second announcement and the one-second
    // hold-off on answering again (RFC 6762 §6, §8.3), as a server that has been up a while.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(DaemonEvent::Announce(name, _)) if name == fullname => break,
            Ok(_) => {}
            Err(e) => panic!("{fullname} was not announced within 5 s: {e}"),
        }
    }
    while events.recv_timeout(Duration::from_millis(1500)).is_ok() {}
    responder
}

/// `lapctl activate acme-studio` (an evaluation) in the default configuration (mDNS on); the server the
/// status then names, as (address, source).
fn activate(home: &Home) -> (String, String) {
    let out = home
        .command(&["activate", "acme-studio"])
        .env_remove("LAPWING_NO_MDNS")
        .output()
        .expect("lapctl runs");
    assert!(
        out.status.success(),
        "activate: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = home.status();
    (
        status["server"]["address"]
            .as_str()
            .expect("an address")
            .to_owned(),
        status["server"]["source"]
            .as_str()
            .expect("a source")
            .to_owned(),
    )
}

fn place(home: &Home, vendor: &Vendor, address: &str) {
    std::fs::write(
        home.path("products/acme-studio.toml"),
        manifest(
            vendor,
            "acme-studio",
            BASE_SKU,
            address,
            "evaluation_days = 30",
        ),
    )
    .expect("manifest written");
}

fn cached_addresses(home: &Home) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(home.data.join("servers.json")) else {
        return Vec::new();
    };
    let file: serde_json::Value = serde_json::from_str(&text).expect("cache parses");
    file["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["address"].as_str().expect("address").to_owned())
        .collect()
}

/// With no DNS-SD server on the link, the manifest's address answers: the browse, which
/// finds nothing, does not hold it back.
#[test]
fn without_a_dns_sd_server_the_manifests_address_answers() {
    if !inside_a_namespace("without_a_dns_sd_server_the_manifests_address_answers") {
        return;
    }
    set_up_the_link();
    let vendor = Vendor::new();
    let office = serve(&vendor, "127.0.0.1:0", "office.sqlite");
    let home = Home::new();
    place(&home, &vendor, &office.addr.to_string());
    assert_eq!(
        activate(&home),
        (office.addr.to_string(), "manifest".to_owned())
    );
    assert!(cached_addresses(&home).is_empty(), "nothing learnt");
}

/// A DNS-SD server found on the link is learnt once it has answered; then, answering
/// within its head start, it is preferred over the manifest's address, which answers too.
/// Once it is gone, the manifest's address answers and the server is forgotten.
#[test]
fn a_dns_sd_server_within_its_head_start_is_preferred_over_the_manifests_address() {
    if !inside_a_namespace(
        "a_dns_sd_server_within_its_head_start_is_preferred_over_the_manifests_address",
    ) {
        return;
    }
    set_up_the_link();
    let vendor = Vendor::new();
    let office = serve(&vendor, "127.0.0.1:0", "office.sqlite");
    let lab = serve(&vendor, "10.77.0.2:0", "lab.sqlite");
    let responder = announce(&lab);
    let home = Home::new();

    // First, the manifest's address is a socket that never answers: the lab server, found
    // by the browse, answers and is learnt for this network.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("a silent socket");
    place(
        &home,
        &vendor,
        &silent.local_addr().expect("address").to_string(),
    );
    assert_eq!(activate(&home), (lab.addr.to_string(), "dns-sd".to_owned()));
    assert_eq!(cached_addresses(&home), vec![lab.addr.to_string()]);

    // The manifest's address answers at once now; the lab server, known from the start,
    // answers within its head start and is still the one used.
    place(&home, &vendor, &office.addr.to_string());
    assert_eq!(activate(&home), (lab.addr.to_string(), "dns-sd".to_owned()));

    // The lab server stops: the manifest's address answers, and the lab server is dropped.
    drop(lab);
    assert_eq!(
        activate(&home),
        (office.addr.to_string(), "manifest".to_owned())
    );
    assert!(
        cached_addresses(&home).is_empty(),
        "the gone server is forgotten"
    );
    let _ = responder.shutdown();
}
