//! SRV, unicast DNS-SD and host names answered by a real `dnsmasq` on 127.0.0.1.

use std::time::{Duration, Instant};

use super::dns_zone as zone;
use crate::test_util::{Dnsmasq, SilentNameserver};
use crate::{
    Candidate, Discovered, Discovery, DiscoveryConfig, DiscoveryError, DnsConfig, LocalAddresses,
    ServerSettings, ServerSource,
};

fn discovery(dns: &Dnsmasq, search: &[&str], seed: u64) -> Discovery {
    Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: dns.address(),
            search: search.iter().map(|s| (*s).to_owned()).collect(),
        },
        lookup_timeout: Duration::from_secs(2),
        mdns: None,
        srv_seed: Some(seed),
        ..DiscoveryConfig::default()
    })
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

/// lap1's two addresses, IPv6 first, as one block.
fn lap1() -> Vec<(String, ServerSource, String)> {
    vec![
        row("[::1]:4711", ServerSource::Srv, "lap1.acme.test"),
        row("127.0.0.2:4711", ServerSource::Srv, "lap1.acme.test"),
    ]
}

fn lap2() -> Vec<(String, ServerSource, String)> {
    vec![row("127.0.0.3:4712", ServerSource::Srv, "lap2.acme.test")]
}

fn backup() -> Vec<(String, ServerSource, String)> {
    vec![row("127.0.0.4:4713", ServerSource::Srv, "backup.acme.test")]
}

#[tokio::test]
async fn srv_targets_in_priority_and_weight_order_with_all_their_addresses() {
    let dns = Dnsmasq::start(&zone());
    let mut lap1_first = 0u32;
    let rounds = 200u32;
    let mut timings = Vec::new();
    for seed in 0..u64::from(rounds) {
        let d = discovery(&dns, &[], seed);
        let started = Instant::now();
        let found = d.srv("acme.test", LocalAddresses::Allow).await;
        timings.push(started.elapsed());
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        let got = summary(&found);
        let (a, b) = if got[0].2 == "lap1.acme.test" {
            lap1_first += 1;
            (lap1(), lap2())
        } else {
            (lap2(), lap1())
        };
        let expected: Vec<_> = a.into_iter().chain(b).chain(backup()).collect();
        assert_eq!(
            got, expected,
            "seed {seed}: priority 10 pair first, backup last"
        );
    }
    // The figure for the notes (`--nocapture`): the SRV query and its three targets' A and
    // AAAA queries, each round on a new resolver (no cache).
    timings.sort();
    eprintln!(
        "SRV lookup against dnsmasq, cold resolver, {rounds} rounds: min {:?}, median {:?}, max {:?}",
        timings[0],
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );
    // Weights 60:20 → lap1 first with probability 61/81 ≈ 0.75; 200 rounds put the count
    // within 120..=180 with overwhelming probability (σ ≈ 6).
    assert!(
        (120..=180).contains(&lap1_first),
        "lap1 first in {lap1_first} of {rounds}"
    );
    // The lookups really went to dnsmasq.
    assert!(dns.log().contains("_lap._udp.acme.test"), "{}", dns.log());

    let d = discovery(&dns, &[], 5);
    let found = d.srv("acme.test", LocalAddresses::Allow).await;
    let detail = &found
        .candidates
        .iter()
        .find(|c| c.host == "backup.acme.test")
        .expect("backup listed")
        .detail;
    assert_eq!(
        detail,
        "SRV _lap._udp.acme.test priority 20 weight 0 → backup.acme.test:4713"
    );
}

#[tokio::test]
async fn full_order_override_then_srv_then_manifest_without_duplicates() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 11);
    let settings = ServerSettings {
        product_override: Some("127.0.0.9:4700".into()),
        srv_domain: Some("acme.test".into()),
        // Resolved through the same DNS; a second manifest-like name equal to an SRV
        // address shows the dedup: backup's address is already listed.
        manifest_address: Some("lap.acme.test:4799".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert!(found.skipped.is_empty(), "{:?}", found.skipped);
    let got = summary(&found);
    assert_eq!(
        got[0],
        row("127.0.0.9:4700", ServerSource::Override, "127.0.0.9")
    );
    assert_eq!(
        got[1..5]
            .iter()
            .filter(|r| r.1 == ServerSource::Srv)
            .count(),
        4
    );
    assert_eq!(got[4], backup()[0]);
    assert_eq!(
        got[5],
        row("127.0.0.7:4799", ServerSource::Manifest, "lap.acme.test")
    );
    assert_eq!(got.len(), 6);

    // The manifest names the same server as SRV's backup: listed once, at SRV's place.
    let settings = ServerSettings {
        srv_domain: Some("acme.test".into()),
        manifest_address: Some("backup.acme.test:4713".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    let got = summary(&found);
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[3], backup()[0]);
    assert!(got.iter().all(|r| r.1 == ServerSource::Srv));
}

#[tokio::test]
async fn unknown_domain_gives_no_srv_but_still_the_manifest_address() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let settings = ServerSettings {
        srv_domain: Some("nowhere.test".into()),
        manifest_address: Some("lap.acme.test:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![row(
            "127.0.0.7:4711",
            ServerSource::Manifest,
            "lap.acme.test"
        )]
    );
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert_eq!(found.skipped[0].source, ServerSource::Srv);
    assert_eq!(
        found.skipped[0].reason,
        DiscoveryError::NoRecords {
            name: "_lap._udp.nowhere.test".into(),
            rtype: "SRV"
        }
    );
}

#[tokio::test]
async fn dot_target_means_not_available() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let settings = ServerSettings {
        srv_domain: Some("gone.test".into()),
        manifest_address: Some("127.0.0.1:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.1:4711", ServerSource::Manifest, "127.0.0.1")]
    );
    assert_eq!(
        found.skipped[0].reason,
        DiscoveryError::ServiceNotAvailable {
            name: "_lap._udp.gone.test".into()
        }
    );
}

#[tokio::test]
async fn dot_among_real_targets_is_noted_and_passed_over() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let found = d.srv("mixed.test", LocalAddresses::Allow).await;
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.8:4730", ServerSource::Srv, "ok.partial.test")]
    );
    assert_eq!(
        found.skipped[0].reason,
        DiscoveryError::DotAmongTargets {
            name: "_lap._udp.mixed.test".into()
        }
    );
}

#[tokio::test]
async fn a_target_that_does_not_resolve_is_reported_and_the_next_kept() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let found = d.srv("partial.test", LocalAddresses::Allow).await;
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.8:4721", ServerSource::Srv, "ok.partial.test")]
    );
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].subject, "missing.partial.test:4720");
    assert!(
        matches!(&found.skipped[0].reason, DiscoveryError::NoRecords { name, .. } if name == "missing.partial.test"),
        "{:?}",
        found.skipped
    );
}

#[tokio::test]
async fn unicast_dns_sd_in_the_search_domains() {
    let dns = Dnsmasq::start(&zone());
    // Two search domains: one with instances, one without (reported, not an error).
    let d = discovery(&dns, &["corp.test", "empty.test"], 1);
    assert_eq!(d.search_domains(), vec!["corp.test", "empty.test"]);
    let settings = ServerSettings {
        manifest_address: Some("lap.acme.test:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![
            // Instances by name: annex before lab.
            row("127.0.0.6:4801", ServerSource::DnsSd, "annex.corp.test"),
            row("127.0.0.5:4800", ServerSource::DnsSd, "lapsd.corp.test"),
            row("127.0.0.7:4711", ServerSource::Manifest, "lap.acme.test"),
        ]
    );
    assert_eq!(
        found.candidates[1].detail,
        "DNS-SD lab._lap._udp.corp.test (search domain corp.test) priority 0 weight 0 → lapsd.corp.test:4800"
    );
    assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
    assert_eq!(found.skipped[0].source, ServerSource::DnsSd);
    assert_eq!(found.skipped[0].subject, "_lap._udp.empty.test");
}

#[tokio::test]
async fn locked_policy_is_the_only_server_asked_for() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &["corp.test"], 1);
    let settings = ServerSettings {
        product_override: Some("127.0.0.9:4700".into()),
        policy_server: Some("lap.acme.test:4750".into()),
        policy_locked: true,
        srv_domain: Some("acme.test".into()),
        manifest_address: Some("backup.acme.test:4713".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.7:4750", ServerSource::Policy, "lap.acme.test")]
    );
    assert_eq!(
        found.candidates[0].detail,
        "machine policy (locked): lap.acme.test:4750"
    );
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].source, ServerSource::Override);
    assert_eq!(
        found.skipped[0].to_string(),
        "override 127.0.0.9:4700: refused: the machine policy locks the server to lap.acme.test:4750"
    );
    // Nothing else was even asked: no SRV, no DNS-SD, no manifest name in dnsmasq's log.
    let log = dns.log();
    assert!(log.contains("lap.acme.test"), "{log}");
    for never in [
        "_lap._udp.acme.test",
        "_lap._udp.corp.test",
        "backup.acme.test",
    ] {
        assert!(!log.contains(never), "{never} was queried:\n{log}");
    }
}

#[tokio::test]
async fn unlocked_policy_is_a_default_the_user_override_replaces() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let mut settings = ServerSettings {
        policy_server: Some("lap.acme.test:4750".into()),
        srv_domain: Some("partial.test".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![
            row("127.0.0.7:4750", ServerSource::Policy, "lap.acme.test"),
            row("127.0.0.8:4721", ServerSource::Srv, "ok.partial.test"),
        ]
    );
    settings.global_override = Some("[::1]:4700".into());
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![
            row("[::1]:4700", ServerSource::Override, "[::1]"),
            row("127.0.0.8:4721", ServerSource::Srv, "ok.partial.test"),
        ]
    );
    assert!(
        found
            .skipped
            .iter()
            .any(|s| s.source == ServerSource::Policy
                && matches!(s.reason, DiscoveryError::Superseded { .. }))
    );
}

/// A name server that never answers: each lookup gives up at the timeout, all sources wait
/// at the same time, and the manifest's literal address is still returned.
#[tokio::test]
async fn dead_dns_server_costs_one_timeout_and_hides_nothing() {
    let silent = SilentNameserver::start();
    let timeout = Duration::from_millis(400);
    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: silent.address(),
            search: vec!["corp.test".into()],
        },
        lookup_timeout: timeout,
        mdns: None,
        srv_seed: Some(1),
        ..DiscoveryConfig::default()
    });
    let settings = ServerSettings {
        global_override: Some("lap.acme.test:4700".into()),
        srv_domain: Some("acme.test".into()),
        manifest_address: Some("127.0.0.1:4711".into()),
        allow_local_addresses: true,
        ..ServerSettings::default()
    };
    let started = Instant::now();
    let found = d.candidates(&settings).await;
    let elapsed = started.elapsed();
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.1:4711", ServerSource::Manifest, "127.0.0.1")]
    );
    let sources: Vec<ServerSource> = found.skipped.iter().map(|s| s.source).collect();
    assert_eq!(
        sources,
        vec![
            ServerSource::Override,
            ServerSource::Srv,
            ServerSource::DnsSd
        ],
        "{:?}",
        found.skipped
    );
    for skipped in &found.skipped {
        assert!(
            matches!(skipped.reason, DiscoveryError::Timeout { .. }),
            "{skipped}"
        );
    }
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout * 2,
        "sources waited one after another: {elapsed:?}"
    );
}

#[test]
fn candidate_serialises_for_status_json() {
    let c = Candidate {
        address: "127.0.0.2:4711".parse().expect("valid literal"),
        host: "lap1.acme.test".into(),
        source: ServerSource::DnsSd,
        detail: "x".into(),
        ttl: None,
    };
    assert_eq!(
        serde_json::to_value(&c).expect("serde"),
        serde_json::json!({"address": "127.0.0.2:4711", "host": "lap1.acme.test", "source": "dns-sd", "detail": "x"})
    );
}

/// By default a loopback SRV target is dropped and named in `skipped` (a hostile DNS
/// server must not point the app at a service on this machine); the manifest's own
/// loopback address, written by the vendor, is kept. The policy's allowance keeps both.
#[tokio::test]
async fn a_loopback_srv_target_is_dropped_by_default_and_named() {
    let dns = Dnsmasq::start(&zone());
    let d = discovery(&dns, &[], 1);
    let mut settings = ServerSettings {
        srv_domain: Some("partial.test".into()),
        manifest_address: Some("127.0.0.1:4711".into()),
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![row("127.0.0.1:4711", ServerSource::Manifest, "127.0.0.1")]
    );
    let dropped: Vec<String> = found
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, DiscoveryError::LocalAddress { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        dropped,
        vec![
            "srv ok.partial.test (SRV _lap._udp.partial.test priority 2 weight 0 → \
             ok.partial.test:4721): 127.0.0.8:4721 is a loopback address, which is not used \
             when it comes from the network; the machine policy can allow it ([discovery] \
             allow_local_addresses = true)"
        ]
    );

    settings.allow_local_addresses = true;
    let found = d.candidates(&settings).await;
    assert_eq!(
        summary(&found),
        vec![
            row("127.0.0.8:4721", ServerSource::Srv, "ok.partial.test"),
            row("127.0.0.1:4711", ServerSource::Manifest, "127.0.0.1"),
        ]
    );
}

/// A hostile SRV answer of many targets: only the first 8 are resolved and listed, the rest
/// are named in one note. The addresses are documentation ones: nothing is sent.
#[tokio::test]
async fn at_most_eight_servers_are_listed() {
    let mut records = Vec::new();
    for n in 1..=12 {
        records.push(format!(
            "--srv-host=_lap._udp.many.test,t{n:02}.many.test,{},1,0",
            4700 + n
        ));
        records.push(format!("--host-record=t{n:02}.many.test,192.0.2.{n}"));
    }
    let dns = Dnsmasq::start(&records);
    let d = discovery(&dns, &[], 1);
    let settings = ServerSettings {
        product_override: Some("198.51.100.1:4711".into()),
        srv_domain: Some("many.test".into()),
        manifest_address: Some("198.51.100.2:4711".into()),
        ..ServerSettings::default()
    };
    let found = d.candidates(&settings).await;
    assert_eq!(found.candidates.len(), crate::MAX_CANDIDATES);
    assert_eq!(found.candidates[0].source, ServerSource::Override);
    assert!(
        found.candidates[1..]
            .iter()
            .all(|c| c.source == ServerSource::Srv),
        "{:?}",
        summary(&found)
    );
    let too_many: Vec<(ServerSource, usize)> = found
        .skipped
        .iter()
        .filter(|s| s.reason == DiscoveryError::TooMany { limit: 8 })
        .map(|s| (s.source, s.subject.split(", ").count()))
        .collect();
    // Four SRV targets never resolved, the eighth resolved one cut by the final cap, and
    // the manifest's address after them.
    assert_eq!(
        too_many,
        vec![
            (ServerSource::Srv, 4),
            (ServerSource::Srv, 1),
            (ServerSource::Manifest, 1)
        ],
        "{:?}",
        found.skipped
    );
    let asked = dns.log();
    assert_eq!(
        asked.matches("query[A] t").count(),
        8,
        "resolved past the cap:\n{asked}"
    );
}

/// A DNS server that never answers cannot make one discovery outlast its total bound,
/// however long each lookup may take: the source still waiting is reported, the manifest's
/// address is used. Time is tokio's paused clock.
#[tokio::test(start_paused = true)]
async fn one_discovery_ends_at_its_total_bound() {
    let silent = SilentNameserver::start();
    let d = Discovery::new(DiscoveryConfig {
        dns: DnsConfig::Nameserver {
            address: silent.address(),
            search: vec![],
        },
        lookup_timeout: Duration::from_secs(60),
        total_timeout: Duration::from_secs(3),
        mdns: None,
        srv_seed: Some(1),
        ..DiscoveryConfig::default()
    });
    let settings = ServerSettings {
        srv_domain: Some("acme.test".into()),
        manifest_address: Some("192.0.2.7:4711".into()),
        ..ServerSettings::default()
    };
    let started = tokio::time::Instant::now();
    let found = d.candidates(&settings).await;
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(
        summary(&found),
        vec![row("192.0.2.7:4711", ServerSource::Manifest, "192.0.2.7")]
    );
    let skipped: Vec<String> = found.skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        skipped,
        vec!["srv _lap._udp.acme.test: did not finish within the 3000 ms one discovery may take"]
    );
}
