//! mDNS against real responders: an mdns-sd daemon of its own (its own sockets and thread)
//! registers `_lap._udp.local.` instances and discovery's browser finds them through the
//! kernel's multicast. Most tests run on `lo` (IPv4 multicast works there); the IPv6 and
//! link-local test runs in a private network namespace over a veth pair. Each test uses its
//! own UDP port instead of 5353, so tests run in parallel and nothing else on the machine
//! sees them; both sides are restricted to the test's interface, so no packet leaves it.

use std::time::{Duration, Instant};

use mdns_sd::{DaemonEvent, IfKind, ServiceDaemon, ServiceInfo};

use super::dns_zone;
use crate::test_util::{Dnsmasq, free_udp_and_tcp_port};
use crate::{
    Discovered, Discovery, DiscoveryConfig, DiscoveryError, DnsConfig, LocalAddresses, MdnsConfig,
    ServerSettings, ServerSource,
};

const WINDOW: Duration = Duration::from_millis(700);

struct Responder {
    daemon: ServiceDaemon,
    port: u16,
}

impl Responder {
    fn start() -> Self {
        let port = free_udp_and_tcp_port();
        let daemon = ServiceDaemon::new_with_port(port).expect("mDNS responder daemon");
        daemon
            .disable_interface(IfKind::All)
            .and_then(|()| daemon.enable_interface("lo"))
            .expect("responder on lo only");
        Self { daemon, port }
    }

    /// Registers an instance; `addresses` as mdns-sd takes them ("a,b").
    fn register(&self, instance: &str, host: &str, addresses: &str, port: u16) -> String {
        let info = ServiceInfo::new(
            crate::MDNS_SERVICE_TYPE,
            instance,
            host,
            addresses,
            port,
            // Draft §3.2: the TXT record is empty.
            None::<std::collections::HashMap<String, String>>,
        )
        .expect("service info");
        let fullname = info.get_fullname().to_owned();
        let events = self.daemon.monitor().expect("monitor");
        self.daemon.register(info).expect("register");
        wait_until_announced(&events, &fullname);
        fullname
    }

    fn discovery(&self, dns: Option<&Dnsmasq>, search: &[&str]) -> Discovery {
        Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                // Without dnsmasq: a closed port, answered at once with "unreachable".
                address: dns.map_or_else(
                    || "127.0.0.1:9".parse().expect("valid literal"),
                    Dnsmasq::address,
                ),
                search: search.iter().map(|s| (*s).to_owned()).collect(),
            },
            lookup_timeout: Duration::from_secs(2),
            mdns: Some(MdnsConfig {
                port: self.port,
                browse_window: WINDOW,
                interfaces: vec!["lo".into()],
            }),
            srv_seed: Some(1),
            ..DiscoveryConfig::default()
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.daemon.shutdown();
    }
}

/// Returns once `fullname` has been announced and answering a query will not be held back.
///
/// A new name is probed for about 750 ms (RFC 6762 §8.1) and answered for only once
/// announced; it is announced twice, about 1.1 s apart (§8.3), and a responder multicasts a
/// record at most once a second (§6), so a query within a second of either announcement goes
/// unanswered until the browser asks again a second later. A real server was announced long
/// before a client browses, so the test waits for both announcements and a quiet second
/// rather than widening the browse window.
fn wait_until_announced(events: &mdns_sd::Receiver<DaemonEvent>, fullname: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(DaemonEvent::Announce(name, _)) if name == fullname => break,
            Ok(_) => {}
            Err(e) => panic!("{fullname} was not announced within 5 s: {e}"),
        }
    }
    // Quiet for 1.5 s: past the second announcement, then past the rate-limit second.
    loop {
        match events.recv_timeout(Duration::from_millis(1500)) {
            Ok(_) => {}
            Err(mdns_sd::RecvTimeoutError::Timeout) => return,
            Err(e) => panic!("monitor of {fullname}: {e}"),
        }
    }
}

fn summary(found: &Discovered) -> Vec<(String, ServerSource, String)> {
    found
        .candidates
        .iter()
        .map(|c| (c.address.to_string(), c.source, c.host.clone()))
        .collect()
}

fn row(address: &str, source: ServerSource, host: &str) -> (String, ServerSource, String) {
    (address.to_owned(), source, host.to_owned())
}

#[tokio::test]
async fn browse_finds_a_responder_with_all_its_addresses() {
    let responder = Responder::start();
    responder.register("Lab Server", "labhost.local.", "127.0.0.1,127.0.0.11", 4711);
    let d = responder.discovery(None, &[]);
    let started = Instant::now();
    let found = d.dns_sd(LocalAddresses::Allow).await;
    let elapsed = started.elapsed();
    assert_eq!(
        summary(&found),
        vec![
            row("127.0.0.1:4711", ServerSource::DnsSd, "labhost.local"),
            row("127.0.0.11:4711", ServerSource::DnsSd, "labhost.local"),
        ]
    );
    assert_eq!(
        found.candidates[0].detail,
        "mDNS Lab Server._lap._udp.local → labhost.local:4711"
    );
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    // A browse cannot know when everyone has answered: the first takes its window.
    assert!(elapsed >= WINDOW, "{elapsed:?}");
    assert!(elapsed < WINDOW + Duration::from_millis(500), "{elapsed:?}");
}

/// Browses again until `want` holds, for at most 5 s.
async fn eventually(d: &Discovery, want: impl Fn(&Discovered) -> bool) -> Discovered {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = d.dns_sd(LocalAddresses::Allow).await;
        if want(&found) || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn hosts(found: &Discovered) -> Vec<&str> {
    found.candidates.iter().map(|c| c.host.as_str()).collect()
}

/// Each discovery browses anew (nothing runs in between): a server that starts later is
/// found by the next discovery, one that stopped is no longer listed.
#[tokio::test]
async fn each_discovery_browses_anew() {
    let responder = Responder::start();
    let zulu = responder.register("zulu", "zulu.local.", "127.0.0.21", 4721);
    responder.register("alpha", "alpha.local.", "127.0.0.22", 4722);
    let d = responder.discovery(None, &[]);
    let both = vec![
        // By instance name: alpha before zulu.
        row("127.0.0.22:4722", ServerSource::DnsSd, "alpha.local"),
        row("127.0.0.21:4721", ServerSource::DnsSd, "zulu.local"),
    ];
    assert_eq!(summary(&d.dns_sd(LocalAddresses::Allow).await), both);

    responder.register("mike", "mike.local.", "127.0.0.23", 4723);
    let found = eventually(&d, |f| f.candidates.len() == 3).await;
    assert_eq!(
        hosts(&found),
        vec!["alpha.local", "mike.local", "zulu.local"]
    );

    let status = responder.daemon.unregister(&zulu).expect("unregister");
    status
        .recv_timeout(Duration::from_secs(5))
        .expect("unregister finished");
    let found = eventually(&d, |f| f.candidates.len() == 2).await;
    assert_eq!(hosts(&found), vec!["alpha.local", "mike.local"]);
}

/// The sockets of this process bound to UDP `port` (IPv4 and IPv6).
fn udp_sockets_on(port: u16) -> usize {
    let mut ours = std::collections::HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
    {
        if let Ok(link) = std::fs::read_link(fd.path())
            && let Some(inode) = link
                .to_str()
                .and_then(|l| l.strip_prefix("socket:["))
                .and_then(|l| l.strip_suffix(']'))
        {
            ours.insert(inode.to_owned());
        }
    }
    let suffix = format!(":{port:04X}");
    ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .flat_map(|table| {
            std::fs::read_to_string(table)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1).is_some_and(|local| local.ends_with(&suffix))
                && fields.get(9).is_some_and(|inode| ours.contains(*inode))
        })
        .count()
}

/// mDNS is open only during a discovery: the browse holds its sockets in its window and
/// closes them after, so an idle app listens nowhere.
#[tokio::test]
async fn the_browse_closes_its_sockets_after_its_window() {
    let port = free_udp_and_tcp_port();
    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: "127.0.0.1:9".parse().expect("valid literal"),
            search: vec![],
        },
        mdns: Some(MdnsConfig {
            port,
            browse_window: WINDOW,
            interfaces: vec!["lo".into()],
        }),
        ..DiscoveryConfig::default()
    });
    assert_eq!(udp_sockets_on(port), 0, "nothing open before a discovery");
    let watch = async {
        let deadline = Instant::now() + WINDOW;
        let mut most = 0;
        while Instant::now() < deadline {
            most = most.max(udp_sockets_on(port));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        most
    };
    let (found, during) = tokio::join!(d.dns_sd(LocalAddresses::Allow), watch);
    assert!(found.candidates.is_empty());
    assert!(during > 0, "the check sees the browse's own sockets");
    // The daemon thread closes them once told to stop, just after the browse returns.
    let deadline = Instant::now() + Duration::from_secs(2);
    while udp_sockets_on(port) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(udp_sockets_on(port), 0, "a socket outlived the discovery");
}

/// Calls made while a browse is in its window wait for that same window (one browse, not
/// one each) and all see the instance.
#[tokio::test]
async fn concurrent_calls_share_one_browse() {
    let responder = Responder::start();
    responder.register("shared", "shared.local.", "127.0.0.31", 4731);
    let d = responder.discovery(None, &[]);
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        d.dns_sd(LocalAddresses::Allow),
        d.dns_sd(LocalAddresses::Allow),
        d.dns_sd(LocalAddresses::Allow)
    );
    let elapsed = started.elapsed();
    let expected = vec![row("127.0.0.31:4731", ServerSource::DnsSd, "shared.local")];
    assert_eq!(summary(&a), expected);
    assert_eq!(summary(&b), expected);
    assert_eq!(summary(&c), expected);
    assert!(elapsed >= WINDOW && elapsed < WINDOW * 2, "{elapsed:?}");
}

#[tokio::test]
async fn silence_is_noted_for_doctor() {
    let responder = Responder::start();
    let d = responder.discovery(None, &[]);
    let found = d.dns_sd(LocalAddresses::Allow).await;
    assert!(found.candidates.is_empty());
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].source, ServerSource::DnsSd);
    assert_eq!(
        found.skipped[0].reason,
        DiscoveryError::Mdns("no instance answered within 700 ms".into())
    );
}

#[tokio::test]
async fn mdns_off_means_no_browse() {
    let responder = Responder::start();
    responder.register("present", "present.local.", "127.0.0.41", 4741);
    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: "127.0.0.1:9".parse().expect("valid literal"),
            search: vec![],
        },
        lookup_timeout: Duration::from_secs(1),
        mdns: None,
        srv_seed: Some(1),
        ..DiscoveryConfig::default()
    });
    let started = Instant::now();
    let found = d.dns_sd(LocalAddresses::Allow).await;
    assert_eq!(found, Discovered::default());
    assert!(started.elapsed() < Duration::from_millis(100));
}

/// Every source at once, against real servers: SRV (dnsmasq), unicast DNS-SD in a search
/// domain (dnsmasq), mDNS (responder on lo), the manifest (dnsmasq), in that order.
#[tokio::test]
async fn the_whole_chain_in_profile_order() {
    let dns = Dnsmasq::start(&dns_zone());
    let responder = Responder::start();
    responder.register("Lab mDNS", "labm.local.", "127.0.0.51", 4751);
    let d = responder.discovery(Some(&dns), &["corp.test"]);
    let settings = ServerSettings {
        srv_domain: Some("partial.test".into()),
        manifest_address: Some("lap.acme.test:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![
            row("127.0.0.8:4721", ServerSource::Srv, "ok.partial.test"),
            row("127.0.0.6:4801", ServerSource::DnsSd, "annex.corp.test"),
            row("127.0.0.5:4800", ServerSource::DnsSd, "lapsd.corp.test"),
            row("127.0.0.51:4751", ServerSource::DnsSd, "labm.local"),
            row("127.0.0.7:4711", ServerSource::Manifest, "lap.acme.test"),
        ]
    );
    // partial.test's first target does not resolve: reported, not silently dropped.
    let skipped: Vec<String> = found.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        vec!["srv missing.partial.test:4720: no A/AAAA records for missing.partial.test"]
    );
}

/// IPv6 cannot be tested on `lo` (it has no MULTICAST flag: Linux delivers IPv4 multicast on
/// it anyway, IPv6 not), and link-local addresses need a real link. So this test runs itself
/// again inside a private network namespace (`unshare --net`, through a user namespace when
/// not root), where it makes a veth pair `va`–`vb` with IPv4 and IPv6 link-local addresses:
/// the responder on `vb` announces both, discovery browses on `va`. The host's network is
/// not touched.
#[tokio::test]
async fn mdns_over_a_veth_pair_with_ipv6_link_local() {
    if !crate::test_util::in_network_namespace(
        "tests::mdns::mdns_over_a_veth_pair_with_ipv6_link_local",
        "LAPWING_DISCOVERY_IN_NETNS",
    ) {
        return;
    }

    let ip = |args: &str| {
        let status = std::process::Command::new("ip")
            .args(args.split_whitespace())
            .status()
            .expect("ip (iproute2) runs");
        assert!(status.success(), "ip {args}");
    };
    ip("link set lo up");
    ip("link add va type veth peer name vb");
    // Both ends live in this one namespace, so IPv4 datagrams between them come from a
    // local address, which Linux drops as martian unless told to accept them.
    for dev in ["all", "default"] {
        for (key, value) in [("accept_local", "1"), ("rp_filter", "0")] {
            std::fs::write(format!("/proc/sys/net/ipv4/conf/{dev}/{key}"), value)
                .unwrap_or_else(|e| panic!("sysctl {dev}/{key}: {e}"));
        }
    }
    for (dev, v4, v6) in [
        ("va", "10.77.0.1/24", "fe80::a/64"),
        ("vb", "10.77.0.2/24", "fe80::b/64"),
    ] {
        // Only the addresses given here: no automatic link-local, no duplicate detection
        // delay.
        ip(&format!("link set {dev} addrgenmode none"));
        ip(&format!("addr add {v4} dev {dev}"));
        ip(&format!("-6 addr add {v6} dev {dev} nodad"));
        ip(&format!("link set {dev} up"));
    }
    // From `ip` ("3: va@vb: <…"): /sys still shows the namespace we came from.
    let listing = std::process::Command::new("ip")
        .args(["-o", "link", "show", "va"])
        .output()
        .expect("ip link show va");
    let va_index: u32 = String::from_utf8_lossy(&listing.stdout)
        .split(':')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .expect("interface index of va");

    let port = free_udp_and_tcp_port();
    let responder = ServiceDaemon::new_with_port(port).expect("responder");
    responder
        .disable_interface(IfKind::All)
        .and_then(|()| responder.enable_interface("vb"))
        .expect("responder on vb");
    let events = responder.monitor().expect("monitor");
    let info = ServiceInfo::new(
        crate::MDNS_SERVICE_TYPE,
        "ns server",
        "nsb.local.",
        "10.77.0.2,fe80::b",
        4711,
        None::<std::collections::HashMap<String, String>>,
    )
    .expect("service info");
    let fullname = info.get_fullname().to_owned();
    responder.register(info).expect("register");
    wait_until_announced(&events, &fullname);

    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: "127.0.0.1:9".parse().expect("valid literal"),
            search: vec![],
        },
        lookup_timeout: Duration::from_secs(1),
        mdns: Some(MdnsConfig {
            port,
            browse_window: WINDOW,
            interfaces: vec!["va".into()],
        }),
        srv_seed: Some(1),
        ..DiscoveryConfig::default()
    });
    let found = d.dns_sd(LocalAddresses::Allow).await;
    let _ = responder.shutdown();
    assert_eq!(
        summary(&found),
        vec![
            // IPv6 first; the link-local address carries the interface it was heard on.
            row(
                &format!("[fe80::b%{va_index}]:4711"),
                ServerSource::DnsSd,
                "nsb.local"
            ),
            row("10.77.0.2:4711", ServerSource::DnsSd, "nsb.local"),
        ]
    );
}

/// The race's view of the same browse: an instance is reported as soon as it resolves, while
/// the browse is still open, not at the end of its window; and dropping the stream (the race
/// won) closes the browse's sockets.
#[tokio::test]
async fn sources_report_an_instance_while_the_browse_still_runs() {
    use futures_util::StreamExt;

    use crate::{SourceEvent, Stage};

    let responder = Responder::start();
    responder.register("Early", "early.local.", "127.0.0.61", 4761);
    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: "127.0.0.1:9".parse().expect("valid literal"),
            search: vec![],
        },
        mdns: Some(MdnsConfig {
            port: responder.port,
            // Far longer than the test: the end of the window cannot be what reports it.
            browse_window: Duration::from_secs(60),
            interfaces: vec!["lo".into()],
        }),
        srv_seed: Some(1),
        ..DiscoveryConfig::default()
    });
    let settings = ServerSettings {
        manifest_address: Some("192.0.2.7:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    // The responder's own sockets are on the same port.
    let responder_only = udp_sockets_on(responder.port);
    let mut events = d.sources(&settings);
    let mut dns_sd = None;
    let mut done = Vec::new();
    while let Some(event) = events.next().await {
        match event {
            SourceEvent::Found(Stage::DnsSd, found) if !found.candidates.is_empty() => {
                dns_sd = Some(found);
                break;
            }
            SourceEvent::Done(stage) => done.push(stage),
            SourceEvent::Found(..) => {}
        }
    }
    let found = dns_sd.expect("the instance is reported");
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.61:4761", ServerSource::DnsSd, "early.local")]
    );
    assert!(
        !done.contains(&Stage::DnsSd),
        "reported before DNS-SD ended"
    );
    assert!(
        done.contains(&Stage::Manual) && done.contains(&Stage::Srv),
        "{done:?}"
    );
    assert!(
        udp_sockets_on(responder.port) > responder_only,
        "the browse still runs"
    );
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(2);
    while udp_sockets_on(responder.port) > responder_only && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        udp_sockets_on(responder.port),
        responder_only,
        "a socket outlived the race"
    );
}
