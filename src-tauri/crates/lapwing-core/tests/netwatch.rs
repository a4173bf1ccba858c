//! The Linux network source: what it makes of the kernel's messages (bytes built here as
//! rtnetlink(7) lays them out), and the real socket in a private network namespace, firing
//! when an address is added to an interface.
#![cfg(target_os = "linux")]

use std::time::Duration;

use futures::StreamExt as _;
use lapwing_core::netwatch::netlink::{
    RTM_DELADDR, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWROUTE, Tracker,
};

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const SCOPE_UNIVERSE: u8 = 0;
const SCOPE_LINK: u8 = 253;
const SCOPE_HOST: u8 = 254;
const TENTATIVE: u8 = 0x40;

/// A netlink message: header (length, type, flags, seq, pid) and body, padded to 4 bytes.
fn message(kind: u16, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + body.len()).expect("small");
    let mut out = Vec::new();
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(body);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// An address message: ifaddrmsg, then IFA_ADDRESS and IFA_LOCAL.
fn address(kind: u16, family: u8, flags: u8, scope: u8, index: u32, ip: &[u8]) -> Vec<u8> {
    let mut body = vec![family, 24, flags, scope];
    body.extend_from_slice(&index.to_ne_bytes());
    for attr in [1u16, 2] {
        let len = u16::try_from(4 + ip.len()).expect("small");
        body.extend_from_slice(&len.to_ne_bytes());
        body.extend_from_slice(&attr.to_ne_bytes());
        body.extend_from_slice(ip);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    message(kind, &body)
}

/// A route message: rtmsg in the main table, unicast, to `dst_len` bits.
fn route(kind: u16, family: u8, dst_len: u8) -> Vec<u8> {
    let body = [family, dst_len, 0, 0, 254, 3, 0, 1, 0, 0, 0, 0];
    message(kind, &body)
}

#[test]
fn a_new_usable_address_counts_once_and_refreshes_do_not() {
    let mut tracker = Tracker::default();
    let v4 = address(RTM_NEWADDR, AF_INET, 0, SCOPE_UNIVERSE, 3, &[10, 0, 0, 7]);
    assert!(tracker.feed(&v4), "a new global address");
    assert!(
        !tracker.feed(&v4),
        "the same address again (a lifetime refresh)"
    );
    // Gone, then back: the network came back.
    assert!(!tracker.feed(&address(
        RTM_DELADDR,
        AF_INET,
        0,
        SCOPE_UNIVERSE,
        3,
        &[10, 0, 0, 7]
    )));
    assert!(tracker.feed(&v4));
    // Addresses that reach no server elsewhere: loopback's, link-local.
    assert!(!tracker.feed(&address(
        RTM_NEWADDR,
        AF_INET,
        0,
        SCOPE_HOST,
        1,
        &[127, 0, 0, 1]
    )));
    let mut fe80 = [0u8; 16];
    fe80[..2].copy_from_slice(&[0xfe, 0x80]);
    assert!(!tracker.feed(&address(RTM_NEWADDR, AF_INET6, 0, SCOPE_LINK, 3, &fe80)));
    // An IPv6 address in duplicate detection counts when it becomes usable.
    let mut global = [0u8; 16];
    global[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    global[15] = 7;
    assert!(!tracker.feed(&address(
        RTM_NEWADDR,
        AF_INET6,
        TENTATIVE,
        SCOPE_UNIVERSE,
        3,
        &global
    )));
    assert!(tracker.feed(&address(
        RTM_NEWADDR,
        AF_INET6,
        0,
        SCOPE_UNIVERSE,
        3,
        &global
    )));
}

#[test]
fn a_default_route_appearing_counts_and_other_routes_do_not() {
    let mut tracker = Tracker::default();
    assert!(
        !tracker.feed(&route(RTM_NEWROUTE, AF_INET, 24)),
        "a subnet route"
    );
    assert!(
        tracker.feed(&route(RTM_NEWROUTE, AF_INET, 0)),
        "a default route"
    );
    assert!(
        !tracker.feed(&route(RTM_NEWROUTE, AF_INET, 0)),
        "renewed, not new"
    );
    assert!(
        tracker.feed(&route(RTM_NEWROUTE, AF_INET6, 0)),
        "another family's"
    );
    assert!(!tracker.feed(&route(RTM_DELROUTE, AF_INET, 0)));
    assert!(tracker.feed(&route(RTM_NEWROUTE, AF_INET, 0)), "back again");
}

#[test]
fn several_messages_in_one_datagram_and_damaged_ones() {
    let mut tracker = Tracker::default();
    let mut datagram = route(RTM_NEWROUTE, AF_INET, 24);
    datagram.extend(address(
        RTM_NEWADDR,
        AF_INET,
        0,
        SCOPE_UNIVERSE,
        3,
        &[10, 0, 0, 8],
    ));
    assert!(tracker.feed(&datagram), "the second message counts");
    // A length past the end, a header cut short, a body too short: read no further.
    let mut lying = address(RTM_NEWADDR, AF_INET, 0, SCOPE_UNIVERSE, 3, &[10, 0, 0, 9]);
    lying[0] = 200;
    assert!(!tracker.feed(&lying));
    assert!(!tracker.feed(&lying[..10]));
    assert!(!tracker.feed(&message(RTM_NEWADDR, &[AF_INET, 24])));
    assert!(!tracker.feed(&message(RTM_NEWROUTE, &[AF_INET, 0])));
}

/// The real source, in a private network namespace (`unshare --net`, through a user
/// namespace when not root, as the discovery tests do): it fires when an address is added to
/// an interface there. The host's network is not touched.
#[tokio::test]
async fn the_linux_source_fires_when_an_address_is_added() {
    if !lapwing_discovery::test_util::in_network_namespace(
        "the_linux_source_fires_when_an_address_is_added",
        "LAPWING_NETWATCH_IN_NETNS",
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
    let mut events = lapwing_core::netwatch::netlink::watch().expect("the netlink socket opens");
    ip("link set lo up");
    ip("link add va type veth peer name vb");
    ip("link set va up");
    ip("link set vb up");
    ip("addr add 10.79.0.1/24 dev va");
    // The bound fails the test instead of hanging it; the event comes in milliseconds.
    let event = tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within the bound");
    assert!(event.is_some(), "the source fired");
    println!("netlink: an event after `ip addr add`");
}
