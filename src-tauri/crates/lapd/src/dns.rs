//! `lapd dns`: the records that let desktops find an intermediate (or any lapd) with no
//! address typed anywhere: SRV `_lap._udp.<domain>` (profile §6) and DNS-SD (a PTR to one
//! instance, its SRV and TXT), as BIND zone lines and as dnsmasq options.

use std::fmt::Write as _;
use std::net::SocketAddr;

/// The DNS-SD instance name published.
const INSTANCE: &str = "lapd";
/// SRV priority and weight of the one server (lower priority first; weight among equals).
const PRIORITY: u16 = 10;
const WEIGHT: u16 = 10;
const TTL: u32 = 3_600;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The records for a server answering on `listen`, published as `host` (default
/// `lap.<domain>`) in `domain`; an error names what is wrong with the input.
pub fn records(domain: &str, listen: SocketAddr, host: Option<&str>) -> Result<String, String> {
    let domain = domain.trim_end_matches('.');
    if !valid_name(domain) {
        return Err(format!("--domain {domain:?} is not a DNS name"));
    }
    if listen.ip().is_unspecified() || listen.port() == 0 {
        return Err(format!(
            "--listen {listen}: give the address and port desktops reach, not a wildcard"
        ));
    }
    let host = host.map_or_else(
        || format!("lap.{domain}"),
        |h| h.trim_end_matches('.').to_owned(),
    );
    if !valid_name(&host) {
        return Err(format!("--host {host:?} is not a DNS name"));
    }
    let (ip, port) = (listen.ip(), listen.port());
    let address_type = if ip.is_ipv4() { "A" } else { "AAAA" };
    let service = format!("_lap._udp.{domain}");
    let instance = format!("{INSTANCE}.{service}");
    let mut out = String::new();
    let _ = writeln!(out, "; BIND zone lines for {domain} (SRV, then DNS-SD)");
    let _ = writeln!(
        out,
        "{service}. {TTL} IN SRV {PRIORITY} {WEIGHT} {port} {host}."
    );
    let _ = writeln!(out, "{host}. {TTL} IN {address_type} {ip}");
    let _ = writeln!(out, "b._dns-sd._udp.{domain}. {TTL} IN PTR {domain}.");
    let _ = writeln!(
        out,
        "_services._dns-sd._udp.{domain}. {TTL} IN PTR {service}."
    );
    let _ = writeln!(out, "{service}. {TTL} IN PTR {instance}.");
    let _ = writeln!(out, "{instance}. {TTL} IN SRV 0 0 {port} {host}.");
    let _ = writeln!(out, "{instance}. {TTL} IN TXT \"txtvers=1\"");
    let _ = writeln!(out);
    let _ = writeln!(out, "# dnsmasq options (dnsmasq.conf, or --option=value)");
    let _ = writeln!(out, "srv-host={service},{host},{port},{PRIORITY},{WEIGHT}");
    let _ = writeln!(out, "host-record={host},{ip}");
    let _ = writeln!(out, "ptr-record=b._dns-sd._udp.{domain},{domain}");
    let _ = writeln!(out, "ptr-record=_services._dns-sd._udp.{domain},{service}");
    let _ = writeln!(out, "ptr-record={service},{instance}");
    let _ = writeln!(out, "srv-host={instance},{host},{port},0,0");
    let _ = writeln!(out, "txt-record={instance},\"txtvers=1\"");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_and_dns_sd_in_both_forms() {
        let text = records(
            "corp.example.",
            "10.1.2.3:4711".parse().expect("addr"),
            None,
        )
        .expect("records");
        for line in [
            "_lap._udp.corp.example. 3600 IN SRV 10 10 4711 lap.corp.example.",
            "lap.corp.example. 3600 IN A 10.1.2.3",
            "_lap._udp.corp.example. 3600 IN PTR lapd._lap._udp.corp.example.",
            "srv-host=_lap._udp.corp.example,lap.corp.example,4711,10,10",
            "host-record=lap.corp.example,10.1.2.3",
            "ptr-record=_lap._udp.corp.example,lapd._lap._udp.corp.example",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn wildcards_and_bad_names_are_refused() {
        assert!(records("corp.example", "0.0.0.0:4711".parse().expect("addr"), None).is_err());
        assert!(
            records(
                "corp..example",
                "10.0.0.1:4711".parse().expect("addr"),
                None
            )
            .is_err()
        );
        assert!(
            records(
                "corp.example",
                "[::1]:4711".parse().expect("addr"),
                Some("bad host")
            )
            .is_err()
        );
    }
}
