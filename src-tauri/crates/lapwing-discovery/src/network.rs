//! Which network the machine is on, as a key under which what discovery learnt is kept: an
//! SRV or DNS-SD answer holds for the network it was heard on, and a laptop carried from the
//! office home must not start from the office's server.
//!
//! The key is the default route (interface and gateway, with the gateway's hardware address
//! when the neighbour table knows it) and the DNS servers asked. The gateway's hardware
//! address tells apart two home networks that both route through `192.168.1.1`; the DNS
//! servers are what SRV and unicast DNS-SD answers depend on, and the only part known where
//! the routing table cannot be read (Windows, macOS: there the key is the DNS servers alone,
//! which DHCP usually sets per network). A machine with no default route (an isolated lab,
//! a test's network namespace) is one network of its own. Nothing here is secret, but it is
//! kept in the user's private data directory all the same.

use std::net::{IpAddr, Ipv4Addr};

use crate::config::DnsConfig;

/// The key of the network the machine is on now, e.g.
/// `route wlan0 via 192.168.1.1 (aa:bb:cc:dd:ee:ff); dns 192.168.1.1`.
pub fn network_key(dns: &DnsConfig) -> String {
    let route = default_route().map_or_else(
        || "no default route".to_owned(),
        |r| match r.gateway_hw {
            Some(hw) => format!("route {} via {} ({hw})", r.interface, r.gateway),
            None => format!("route {} via {}", r.interface, r.gateway),
        },
    );
    let servers: Vec<String> = dns_servers(dns).iter().map(ToString::to_string).collect();
    format!("{route}; dns {}", servers.join(","))
}

/// The IPv4 default route and its gateway's hardware address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DefaultRoute {
    interface: String,
    gateway: Ipv4Addr,
    gateway_hw: Option<String>,
}

#[cfg(target_os = "linux")]
fn default_route() -> Option<DefaultRoute> {
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let (interface, gateway) = parse_default_route(&routes)?;
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    Some(DefaultRoute {
        gateway_hw: parse_arp(&arp, gateway),
        interface,
        gateway,
    })
}

#[cfg(not(target_os = "linux"))]
fn default_route() -> Option<DefaultRoute> {
    None
}

/// The default route of `/proc/net/route` with the lowest metric: interface and gateway
/// (the kernel writes addresses as little-endian hex). Linux only; tested everywhere.
#[cfg(any(target_os = "linux", test))]
fn parse_default_route(table: &str) -> Option<(String, Ipv4Addr)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (interface, destination, gateway, metric) = (
                fields.first()?,
                fields.get(1)?,
                fields.get(2)?,
                fields.get(6)?,
            );
            if *destination != "00000000" {
                return None;
            }
            let gateway = u32::from_str_radix(gateway, 16).ok()?;
            let metric: u32 = metric.parse().ok()?;
            Some((
                metric,
                (*interface).to_owned(),
                Ipv4Addr::from(gateway.swap_bytes()),
            ))
        })
        .min_by_key(|(metric, _, _)| *metric)
        .map(|(_, interface, gateway)| (interface, gateway))
}

/// The hardware address `/proc/net/arp` lists for `ip`, if complete.
#[cfg(any(target_os = "linux", test))]
fn parse_arp(table: &str, ip: Ipv4Addr) -> Option<String> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let hw = fields.get(3)?;
        (fields.first()?.parse::<Ipv4Addr>().ok()? == ip && *hw != "00:00:00:00:00:00")
            .then(|| (*hw).to_owned())
    })
}

/// The DNS servers discovery asks, sorted.
fn dns_servers(dns: &DnsConfig) -> Vec<IpAddr> {
    let mut servers: Vec<IpAddr> = match dns {
        DnsConfig::Nameserver { address, .. } => vec![address.ip()],
        DnsConfig::System => system_dns_servers(),
    };
    servers.sort();
    servers.dedup();
    servers
}

#[cfg(any(unix, windows))]
fn system_dns_servers() -> Vec<IpAddr> {
    hickory_resolver::system_conf::read_system_conf()
        .map(|(config, _)| config.name_servers().iter().map(|s| s.ip).collect())
        .unwrap_or_default()
}

#[cfg(not(any(unix, windows)))]
fn system_dns_servers() -> Vec<IpAddr> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
";

    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.0.0.1         0x1         0x2         52:54:00:12:35:02     *        eth0
192.168.1.1      0x1         0x0         00:00:00:00:00:00     *        wlan0
";

    #[test]
    fn the_default_route_with_the_lowest_metric_wins() {
        assert_eq!(
            parse_default_route(ROUTES),
            Some(("eth0".to_owned(), Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(parse_default_route("Iface\tDestination\n"), None);
    }

    #[test]
    fn the_gateway_hardware_address_only_when_complete() {
        assert_eq!(
            parse_arp(ARP, Ipv4Addr::new(10, 0, 0, 1)).as_deref(),
            Some("52:54:00:12:35:02")
        );
        assert_eq!(parse_arp(ARP, Ipv4Addr::new(192, 168, 1, 1)), None);
        assert_eq!(parse_arp(ARP, Ipv4Addr::new(10, 9, 9, 9)), None);
    }

    #[test]
    fn the_dns_servers_asked_are_part_of_the_key() {
        let a = network_key(&DnsConfig::Nameserver {
            address: "127.0.0.1:53".parse().expect("literal"),
            search: vec![],
        });
        let b = network_key(&DnsConfig::Nameserver {
            address: "127.0.0.2:53".parse().expect("literal"),
            search: vec![],
        });
        assert!(a.ends_with("; dns 127.0.0.1"), "{a}");
        assert_ne!(a, b);
    }
}
