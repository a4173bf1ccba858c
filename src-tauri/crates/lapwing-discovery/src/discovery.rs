//! The entry point: [`Discovery`] asks every source for one product at the same time and lists
//! what they found in the order to try it. The sources themselves live in the submodules:
//! `resolver` (setting up hickory from the configuration), `dns` (host names, SRV and unicast
//! DNS-SD) and `mdns` (the mDNS browse); each lookup is bounded by a timeout and fails on its
//! own.

mod dns;
mod mdns;
mod names;
mod resolver;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::stream::{self, BoxStream, StreamExt};
use hickory_resolver::proto::rr::Name;

use crate::address::{Host, parse_host_port};
use crate::config::{DiscoveryConfig, MAX_CANDIDATES};
use crate::error::DiscoveryError;
use crate::local::LocalAddresses;
use crate::model::{Candidate, Discovered, ServerSettings, ServerSource, SourceEvent, Stage, plan};
use crate::srv::SrvRng;
use dns::Dns;
use mdns::Mdns;
use names::{display_name, trim_dot};
use resolver::build_resolver;

pub use dns::SERVICE_LABELS;
pub use mdns::{MDNS_HOST_TTL, MDNS_SERVICE_TYPE};

/// Answers "which servers, in which order, and how was each found" for a product.
#[derive(Debug)]
pub struct Discovery {
    dns_config: crate::config::DnsConfig,
    dns: Dns,
    search: Vec<Name>,
    total_timeout: Duration,
    mdns: Option<Mdns>,
}

impl Discovery {
    pub fn new(config: DiscoveryConfig) -> Self {
        let timeout = config.lookup_timeout;
        let (resolver, search) = match build_resolver(&config.dns, timeout) {
            Ok((resolver, search)) => (Ok(resolver), search),
            Err(reason) => (Err(reason), Vec::new()),
        };
        let rng = config.srv_seed.map_or_else(SrvRng::from_os, SrvRng::seeded);
        Self {
            dns_config: config.dns,
            dns: Dns {
                resolver,
                timeout,
                rng: Mutex::new(rng),
            },
            search,
            total_timeout: config.total_timeout,
            mdns: config.mdns.map(Mdns::new),
        }
    }

    /// SRV `_lap._udp.<domain>`: targets in RFC 2782 order, each with all its addresses;
    /// local addresses dropped unless `local` allows them.
    pub async fn srv(&self, domain: &str, local: LocalAddresses) -> Discovered {
        self.dns.srv(domain).await.without_local(local)
    }

    /// The key of the network the machine is on now (see [`crate::network`]), for what is
    /// learnt from this discovery's answers.
    pub fn network_key(&self) -> String {
        crate::network::network_key(&self.dns_config)
    }

    /// The search domains unicast DNS-SD browses, as configured.
    pub fn search_domains(&self) -> Vec<String> {
        self.search.iter().map(display_name).collect()
    }

    /// All servers for one product, in the order to try them: the manual choice (see
    /// [`crate::model`]'s precedence table), then SRV, then DNS-SD (unicast in each search
    /// domain, then mDNS), then the manifest's address; at most [`MAX_CANDIDATES`]. The
    /// sources are looked up at the same time, so this takes as long as the slowest one,
    /// not their sum, and never longer than the configured total: a source still running
    /// then is reported as skipped. With mDNS on, it takes at least the browse window.
    pub async fn candidates(&self, settings: &ServerSettings) -> Discovered {
        let deadline = tokio::time::Instant::now() + self.total_timeout;
        let local = LocalAddresses::from_allowed(settings.allow_local_addresses);
        let plan = plan(settings);
        let mut out = plan.notes;
        let manual = async {
            match &plan.manual {
                Some(m) => {
                    let found = self.resolve(m.text, m.source, m.detail);
                    self.bounded(deadline, m.source, m.text, found).await
                }
                None => Discovered::default(),
            }
        };
        if !plan.automatic {
            out.append(manual.await);
            return out.capped(MAX_CANDIDATES);
        }
        let srv = async {
            match settings.srv_domain.as_deref().map(str::trim) {
                Some(domain) if !domain.is_empty() => {
                    let subject = format!("{SERVICE_LABELS}.{domain}");
                    let found = self.srv(domain, local);
                    self.bounded(deadline, ServerSource::Srv, &subject, found)
                        .await
                }
                _ => Discovered::default(),
            }
        };
        let dns_sd = self.bounded(
            deadline,
            ServerSource::DnsSd,
            SERVICE_LABELS,
            self.dns_sd(local),
        );
        let manifest = async {
            match settings.manifest_address.as_deref().map(str::trim) {
                Some(text) if !text.is_empty() => {
                    let found = self.resolve(text, ServerSource::Manifest, "manifest address");
                    self.bounded(deadline, ServerSource::Manifest, text, found)
                        .await
                }
                _ => Discovered::default(),
            }
        };
        let (manual, srv, dns_sd, manifest) = tokio::join!(manual, srv, dns_sd, manifest);
        out.append(manual);
        out.append(srv);
        out.append(dns_sd);
        out.append(manifest);
        out.capped(MAX_CANDIDATES)
    }

    /// The same discovery as [`Discovery::candidates`], reported source by source as each
    /// finds something, for a caller that uses the first server that answers instead of
    /// waiting for the slowest source (the engine's race). Every stage of [`Stage::ALL`]
    /// ends with one [`SourceEvent::Done`]; a source not asked (no override, no SRV domain,
    /// a locked policy's other stages) is done at once. mDNS instances are reported as they
    /// resolve. The same bounds hold: each source ends by the total timeout, local addresses
    /// from the network are dropped unless allowed; the cap on the number of servers is the
    /// caller's, who sees them in arrival order. Dropping the stream stops every lookup and
    /// closes the mDNS browse unless another discovery still waits for it.
    pub fn sources<'a>(&'a self, settings: &'a ServerSettings) -> BoxStream<'a, SourceEvent> {
        let deadline = tokio::time::Instant::now() + self.total_timeout;
        let local = LocalAddresses::from_allowed(settings.allow_local_addresses);
        let plan = plan(settings);
        // Overrides the settings refuse or supersede are noted at once, with the manual stage.
        let notes: BoxStream<'a, Discovered> = if plan.notes == Discovered::default() {
            stream::empty().boxed()
        } else {
            stream::iter([plan.notes]).boxed()
        };
        let manual = match plan.manual {
            Some(m) => {
                let found = once(self.resolve(m.text, m.source, m.detail));
                notes
                    .chain(self.bounded_stream(deadline, m.source, m.text.to_owned(), found))
                    .boxed()
            }
            None => notes,
        };
        let mut stages = vec![done_after(Stage::Manual, manual)];
        if !plan.automatic {
            for stage in [Stage::Srv, Stage::DnsSd, Stage::Manifest] {
                stages.push(done_after(stage, stream::empty().boxed()));
            }
            return stream::select_all(stages).boxed();
        }
        let srv = match settings.srv_domain.as_deref().map(str::trim) {
            Some(domain) if !domain.is_empty() => {
                let subject = format!("{SERVICE_LABELS}.{domain}");
                self.bounded_stream(
                    deadline,
                    ServerSource::Srv,
                    subject,
                    once(self.srv(domain, local)),
                )
            }
            _ => stream::empty().boxed(),
        };
        let unicast = self
            .search
            .iter()
            .map(|domain| once(self.dns.unicast_dns_sd(domain)));
        let mut dns_sd: Vec<BoxStream<'a, Discovered>> = unicast.collect();
        if let Some(mdns) = &self.mdns {
            dns_sd.push(mdns.progress().boxed());
        }
        let dns_sd = stream::select_all(dns_sd)
            .map(move |found| found.without_local(local))
            .boxed();
        let dns_sd = self.bounded_stream(
            deadline,
            ServerSource::DnsSd,
            SERVICE_LABELS.to_owned(),
            dns_sd,
        );
        let manifest = match settings.manifest_address.as_deref().map(str::trim) {
            Some(text) if !text.is_empty() => {
                let found = self.resolve(text, ServerSource::Manifest, "manifest address");
                self.bounded_stream(
                    deadline,
                    ServerSource::Manifest,
                    text.to_owned(),
                    once(found),
                )
            }
            _ => stream::empty().boxed(),
        };
        stages.push(done_after(Stage::Srv, srv));
        stages.push(done_after(Stage::DnsSd, dns_sd));
        stages.push(done_after(Stage::Manifest, manifest));
        stream::select_all(stages).boxed()
    }

    /// `found` until the discovery's total time is up, then a note that it was cut short.
    fn bounded_stream<'a>(
        &self,
        deadline: tokio::time::Instant,
        source: ServerSource,
        subject: String,
        found: BoxStream<'a, Discovered>,
    ) -> BoxStream<'a, Discovered> {
        let limit = self.total_timeout;
        stream::unfold(Some(found), move |found| {
            let subject = subject.clone();
            async move {
                let mut found = found?;
                match tokio::time::timeout_at(deadline, found.next()).await {
                    Ok(Some(part)) => Some((part, Some(found))),
                    Ok(None) => None,
                    Err(_elapsed) => {
                        tracing::warn!(%source, subject, "a discovery source ran out of time");
                        let note = Discovered::only_skipped(
                            source,
                            subject,
                            DiscoveryError::OutOfTime { limit },
                        );
                        Some((note, None))
                    }
                }
            }
        })
        .boxed()
    }

    /// `found`, or a note that it did not finish within the discovery's total time.
    async fn bounded(
        &self,
        deadline: tokio::time::Instant,
        source: ServerSource,
        subject: &str,
        found: impl Future<Output = Discovered>,
    ) -> Discovered {
        if let Ok(found) = tokio::time::timeout_at(deadline, found).await {
            found
        } else {
            tracing::warn!(%source, subject, "a discovery source ran out of time");
            Discovered::only_skipped(
                source,
                subject,
                DiscoveryError::OutOfTime {
                    limit: self.total_timeout,
                },
            )
        }
    }

    /// One `HOST:PORT` text: validated, its name resolved (IPv6 addresses first, then IPv4),
    /// one candidate per address. `detail` says where the text came from.
    pub async fn resolve(&self, text: &str, source: ServerSource, detail: &str) -> Discovered {
        let host_port = match parse_host_port(text) {
            Ok(hp) => hp,
            Err(e) => return Discovered::only_skipped(source, text.trim(), e),
        };
        let shown = host_port.host.to_string();
        let detail = format!("{detail}: {host_port}");
        match &host_port.host {
            Host::Ip(ip) => Discovered {
                candidates: vec![Candidate {
                    address: SocketAddr::new(*ip, host_port.port),
                    host: shown,
                    source,
                    detail,
                    ttl: None,
                }],
                skipped: Vec::new(),
            },
            // A name a person wrote is looked up each time (the resolver caches it): its
            // TTL is not this crate's to keep.
            Host::Name(name) => match self.dns.lookup_ip(name).await {
                Ok((ips, _ttl)) => Discovered {
                    candidates: ips
                        .into_iter()
                        .map(|ip| Candidate {
                            address: SocketAddr::new(ip, host_port.port),
                            host: trim_dot(name).to_owned(),
                            source,
                            detail: detail.clone(),
                            ttl: None,
                        })
                        .collect(),
                    skipped: Vec::new(),
                },
                Err(e) => Discovered::only_skipped(source, text.trim(), e),
            },
        }
    }

    /// DNS-SD browse for `_lap._udp`: unicast in each search domain (PTR, then each
    /// instance's SRV), then mDNS on the local link when enabled. Local addresses in the
    /// answers are dropped unless `local` allows them.
    pub async fn dns_sd(&self, local: LocalAddresses) -> Discovered {
        let unicast = join_all(self.search.iter().map(|d| self.dns.unicast_dns_sd(d)));
        let (unicast, mdns) = tokio::join!(unicast, self.mdns_browse());
        let mut out = Discovered::default();
        for part in unicast {
            out.append(part);
        }
        out.append(mdns);
        out.without_local(local)
    }

    async fn mdns_browse(&self) -> Discovered {
        match &self.mdns {
            Some(mdns) => mdns.browse().await,
            None => Discovered::default(),
        }
    }
}

/// A one-item stream of what `found` finds.
fn once<'a>(found: impl Future<Output = Discovered> + Send + 'a) -> BoxStream<'a, Discovered> {
    stream::once(found).boxed()
}

/// A stage's reports, then its end.
fn done_after(stage: Stage, found: BoxStream<'_, Discovered>) -> BoxStream<'_, SourceEvent> {
    found
        .map(move |found| SourceEvent::Found(stage, found))
        .chain(stream::iter([SourceEvent::Done(stage)]))
        .boxed()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DnsConfig;

    /// The engine runs discovery inside spawned tasks.
    #[test]
    fn futures_are_send() {
        fn send<T: Send>(_: &T) {}
        let d = Discovery::new(DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings::default();
        send(&d.candidates(&settings));
        send(&d.dns_sd(LocalAddresses::Drop));
        send(&d.srv("acme.example", LocalAddresses::Drop));
    }

    #[tokio::test]
    async fn literal_addresses_need_no_dns() {
        // The name server is a closed port: nothing may depend on it.
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec![],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings {
            product_override: Some("[::1]:4711".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        let got: Vec<(String, ServerSource)> = found
            .candidates
            .iter()
            .map(|c| (c.address.to_string(), c.source))
            .collect();
        assert_eq!(
            got,
            vec![
                ("[::1]:4711".into(), ServerSource::Override),
                ("127.0.0.1:4712".into(), ServerSource::Manifest)
            ]
        );
        assert!(found.skipped.is_empty(), "{:?}", found.skipped);
        assert_eq!(found.candidates[0].host, "[::1]");
        assert_eq!(
            found.candidates[0].detail,
            "manual override for this product: [::1]:4711"
        );
    }

    /// No usable DNS configuration: every DNS-based source says so, literals still work.
    #[tokio::test]
    async fn without_a_resolver_literals_still_work() {
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec!["not a domain".into()],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings {
            srv_domain: Some("acme.example".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].source, ServerSource::Manifest);
        assert_eq!(found.skipped.len(), 1);
        assert_eq!(
            found.skipped[0].to_string(),
            "srv _lap._udp.acme.example: no DNS resolver: search domain \"not a domain\": ' ' \
             cannot occur in a host name"
        );
    }

    /// A locked policy's server is the only one: every other stage ends at once, unasked.
    #[tokio::test]
    async fn sources_of_a_locked_policy_name_its_server_only() {
        use futures_util::StreamExt;

        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec!["corp.test".into()],
            },
            mdns: Some(crate::MdnsConfig::default()),
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings {
            product_override: Some("127.0.0.1:1".into()),
            policy_server: Some("127.0.0.1:3".into()),
            policy_locked: true,
            srv_domain: Some("acme.example".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let events: Vec<SourceEvent> = discovery.sources(&settings).collect().await;
        let mut found = Discovered::default();
        let mut done = Vec::new();
        for event in events {
            match event {
                SourceEvent::Found(stage, part) => {
                    assert_eq!(stage, Stage::Manual);
                    found.append(part);
                }
                SourceEvent::Done(stage) => done.push(stage),
            }
        }
        done.sort();
        assert_eq!(done, Stage::ALL.to_vec());
        let got: Vec<(String, ServerSource)> = found
            .candidates
            .iter()
            .map(|c| (c.address.to_string(), c.source))
            .collect();
        assert_eq!(got, vec![("127.0.0.1:3".into(), ServerSource::Policy)]);
        assert_eq!(found.skipped.len(), 1, "the refused override is noted");
    }

    #[tokio::test]
    async fn bad_settings_are_reported_not_dropped() {
        let discovery = Discovery::new(DiscoveryConfig {
            dns: DnsConfig::Nameserver {
                address: "127.0.0.1:9".parse().expect("valid literal"),
                search: vec![],
            },
            lookup_timeout: Duration::from_millis(300),
            mdns: None,
            srv_seed: Some(1),
            ..DiscoveryConfig::default()
        });
        let settings = ServerSettings {
            global_override: Some("lap.example".into()),
            srv_domain: Some("bad domain".into()),
            manifest_address: Some("127.0.0.1:4712".into()),
            ..ServerSettings::default()
        };
        let found = discovery.candidates(&settings).await;
        assert_eq!(found.candidates.len(), 1);
        assert_eq!(found.candidates[0].source, ServerSource::Manifest);
        let reasons: Vec<String> = found.skipped.iter().map(ToString::to_string).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(
            reasons[0].starts_with("override lap.example: ") && reasons[0].contains("missing port"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("srv bad domain: ") && reasons[1].contains("' ' cannot occur"),
            "{reasons:?}"
        );
    }
}
