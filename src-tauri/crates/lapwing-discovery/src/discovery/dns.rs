//! Unicast DNS: a host name's addresses, SRV `_lap._udp.<domain>` in RFC 2782 order, and
//! DNS-SD browsing in the search domains (PTR, then each instance's SRV), each query bounded
//! by the lookup timeout; and how DNS names and failures are shown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::future::join_all;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{Name, RData, RecordType};

use super::names::{display_name, trim_dot};
use crate::address::validate_name;
use crate::config::MAX_CANDIDATES;
use crate::error::DiscoveryError;
use crate::model::{Candidate, Discovered, ServerSource};
use crate::srv::{SrvRecord, SrvRng, order_srv};

/// The DNS-SD service type of LAP (draft §3.2 and §5: service name "lap", UDP).
pub const SERVICE_LABELS: &str = "_lap._udp";

/// The unicast DNS side of discovery: the resolver hickory was set up with, the lookup
/// timeout, and the random order among SRV records of equal priority.
#[derive(Debug)]
pub(super) struct Dns {
    // A machine without DNS configuration can still use literal addresses and mDNS, so the
    // reason is kept and reported per lookup instead of failing construction.
    pub(super) resolver: Result<TokioResolver, String>,
    pub(super) timeout: Duration,
    pub(super) rng: Mutex<SrvRng>,
}

impl Dns {
    /// SRV `_lap._udp.<domain>`: targets in RFC 2782 order, each with all its addresses.
    pub(super) async fn srv(&self, domain: &str) -> Discovered {
        let name = match service_name(domain) {
            Ok(name) => name,
            Err(e) => return Discovered::only_skipped(ServerSource::Srv, domain, e),
        };
        let label = format!("SRV {}", display_name(&name));
        self.srv_at(&name, ServerSource::Srv, &label).await
    }

    pub(super) async fn unicast_dns_sd(&self, domain: &Name) -> Discovered {
        let source = ServerSource::DnsSd;
        let browse = match Name::from_ascii(SERVICE_LABELS).and_then(|n| n.append_domain(domain)) {
            Ok(mut name) => {
                name.set_fqdn(true);
                name
            }
            Err(e) => {
                return Discovered::only_skipped(
                    source,
                    display_name(domain),
                    DiscoveryError::Domain {
                        name: display_name(domain),
                        message: e.to_string(),
                    },
                );
            }
        };
        let shown = display_name(&browse);
        let mut return_note = None;
        let (instances, ptr_ttl) = match self.lookup(&browse, RecordType::PTR).await {
            Ok((records, ttl)) => {
                let mut names: Vec<Name> = records
                    .into_iter()
                    .filter_map(|r| match r {
                        RData::PTR(ptr) => Some(ptr.0),
                        _ => None,
                    })
                    .collect();
                // PTR answers come in no defined order; sorting makes the list stable
                // between runs (the order among DNS-SD instances carries no preference).
                names.sort();
                names.dedup();
                if names.len() > MAX_CANDIDATES {
                    let left_out: Vec<String> = names
                        .split_off(MAX_CANDIDATES)
                        .iter()
                        .map(display_name)
                        .collect();
                    return_note = Some((left_out.join(", "), MAX_CANDIDATES));
                }
                (names, Some(ttl))
            }
            Err(e) => return Discovered::only_skipped(source, shown, e),
        };
        let parts = join_all(instances.iter().map(|instance| {
            let label = format!(
                "DNS-SD {} (search domain {})",
                display_name(instance),
                display_name(domain)
            );
            async move { self.srv_at(instance, source, &label).await }
        }))
        .await;
        let mut out = Discovered::default();
        for mut part in parts {
            // An instance holds no longer than the PTR record that named it.
            for candidate in &mut part.candidates {
                candidate.ttl = min_ttl(candidate.ttl, ptr_ttl);
            }
            out.append(part);
        }
        if let Some((left_out, limit)) = return_note {
            out.skip(source, left_out, DiscoveryError::TooMany { limit });
        }
        out
    }

    /// SRV at `name`, ordered, every target resolved. Shared by SRV and unicast DNS-SD.
    async fn srv_at(&self, name: &Name, source: ServerSource, label: &str) -> Discovered {
        let shown = display_name(name);
        let (records, srv_ttl): (Vec<SrvRecord>, _) = match self.lookup(name, RecordType::SRV).await
        {
            Ok((answers, ttl)) => {
                let records = answers
                    .into_iter()
                    .filter_map(|r| match r {
                        RData::SRV(srv) => Some(SrvRecord {
                            priority: srv.priority,
                            weight: srv.weight,
                            port: srv.port,
                            target: if srv.target.is_root() {
                                ".".to_owned()
                            } else {
                                display_name(&srv.target)
                            },
                        }),
                        _ => None,
                    })
                    .collect();
                (records, Some(ttl))
            }
            Err(e) => return Discovered::only_skipped(source, shown, e),
        };
        let mut out = Discovered::default();
        // RFC 2782's "." target: the service is decidedly not available here. As with RFC
        // 7505's null MX, that is a statement only when it is the whole answer; a "." among
        // real targets is a zone mistake, noted and passed over.
        if !records.is_empty() && records.iter().all(SrvRecord::is_not_available_marker) {
            out.skip(
                source,
                shown.clone(),
                DiscoveryError::ServiceNotAvailable { name: shown },
            );
            return out;
        }
        if records.iter().any(SrvRecord::is_not_available_marker) {
            out.skip(
                source,
                format!("{shown} target \".\""),
                DiscoveryError::DotAmongTargets {
                    name: shown.clone(),
                },
            );
        }
        let usable: Vec<SrvRecord> = records
            .into_iter()
            .filter(|r| !r.is_not_available_marker())
            .collect();
        if usable.is_empty() {
            out.skip(
                source,
                shown.clone(),
                DiscoveryError::NoRecords {
                    name: shown,
                    rtype: "SRV",
                },
            );
            return out;
        }
        let ordered = {
            // Poisoning cannot leave the generator in a broken state (it is one u64), so a
            // panic elsewhere while it was held does not matter here.
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            order_srv(&usable, &mut rng)
        };
        // Each target gives at least one candidate, so those past the cap could never be
        // tried: they are not even resolved.
        let mut ordered = ordered;
        if ordered.len() > MAX_CANDIDATES {
            let left_out: Vec<String> = ordered
                .split_off(MAX_CANDIDATES)
                .iter()
                .map(|r| format!("{}:{}", r.target, r.port))
                .collect();
            out.skip(
                source,
                left_out.join(", "),
                DiscoveryError::TooMany {
                    limit: MAX_CANDIDATES,
                },
            );
        }
        // Targets are resolved concurrently (join_all keeps the SRV order), as absolute names:
        // a target is never looked for under the machine's search domains.
        let resolved = join_all(
            ordered
                .iter()
                .map(|r| async move { self.lookup_ip(&format!("{}.", r.target)).await }),
        )
        .await;
        for (record, addresses) in ordered.iter().zip(resolved) {
            let detail = format!(
                "{label} priority {} weight {} → {}:{}",
                record.priority, record.weight, record.target, record.port
            );
            match addresses {
                Ok((ips, address_ttl)) => {
                    for ip in ips {
                        out.push(Candidate {
                            address: SocketAddr::new(ip, record.port),
                            host: record.target.clone(),
                            source,
                            detail: detail.clone(),
                            ttl: min_ttl(srv_ttl, Some(address_ttl)),
                        });
                    }
                }
                Err(e) => out.skip(source, format!("{}:{}", record.target, record.port), e),
            }
        }
        out
    }

    fn resolver(&self) -> Result<&TokioResolver, DiscoveryError> {
        self.resolver
            .as_ref()
            .map_err(|reason| DiscoveryError::NoResolver(reason.clone()))
    }

    /// One query for `rtype` at an absolute name, bounded by the lookup timeout; the answers
    /// with how long they stay valid (their TTL, as the resolver's cache counts it down).
    async fn lookup(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> Result<(Vec<RData>, Duration), DiscoveryError> {
        let resolver = self.resolver()?;
        let shown = display_name(name);
        match tokio::time::timeout(self.timeout, resolver.lookup(name.clone(), rtype)).await {
            Err(_elapsed) => Err(DiscoveryError::Timeout {
                name: shown,
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(dns_error(&shown, rtype_word(rtype), &e, self.timeout)),
            Ok(Ok(lookup)) => {
                let ttl = ttl_left(lookup.valid_until());
                let answers: Vec<RData> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| r.data.clone())
                    .collect();
                if answers.is_empty() {
                    Err(DiscoveryError::NoRecords {
                        name: shown,
                        rtype: rtype_word(rtype),
                    })
                } else {
                    Ok((answers, ttl))
                }
            }
        }
    }

    /// A host name's addresses, IPv6 first, then IPv4 (RFC 6724's default preference), both
    /// asked at once. A name without a trailing dot goes through the search list as the
    /// system resolver would take it (a user's `licserver:4711`).
    pub(super) async fn lookup_ip(
        &self,
        name: &str,
    ) -> Result<(Vec<IpAddr>, Duration), DiscoveryError> {
        let resolver = self.resolver()?;
        match tokio::time::timeout(self.timeout, resolver.lookup_ip(name)).await {
            Err(_elapsed) => Err(DiscoveryError::Timeout {
                name: trim_dot(name).to_owned(),
                timeout: self.timeout,
            }),
            Ok(Err(e)) => Err(dns_error(trim_dot(name), "A/AAAA", &e, self.timeout)),
            Ok(Ok(ips)) => {
                let mut out: Vec<IpAddr> = Vec::new();
                for ip in ips.iter() {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
                if out.is_empty() {
                    Err(DiscoveryError::NoRecords {
                        name: trim_dot(name).to_owned(),
                        rtype: "A/AAAA",
                    })
                } else {
                    Ok((out, ttl_left(ips.valid_until())))
                }
            }
        }
    }
}

/// What is left of a lookup's validity.
fn ttl_left(valid_until: std::time::Instant) -> Duration {
    valid_until.saturating_duration_since(std::time::Instant::now())
}

/// The shorter of two TTLs, either possibly unknown.
fn min_ttl(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn service_name(domain: &str) -> Result<Name, DiscoveryError> {
    let bare = domain.trim();
    validate_name(bare).map_err(|p| DiscoveryError::Domain {
        name: bare.to_owned(),
        message: p.to_string(),
    })?;
    // Absolute: the manifest names the vendor's domain, which must not be tried under the
    // machine's search domains as well.
    Name::from_ascii(format!("{SERVICE_LABELS}.{}.", trim_dot(bare))).map_err(|e| {
        DiscoveryError::Domain {
            name: bare.to_owned(),
            message: e.to_string(),
        }
    })
}

fn dns_error(name: &str, rtype: &'static str, e: &NetError, timeout: Duration) -> DiscoveryError {
    if e.is_no_records_found() {
        DiscoveryError::NoRecords {
            name: name.to_owned(),
            rtype,
        }
    } else if matches!(e, NetError::Timeout) {
        DiscoveryError::Timeout {
            name: name.to_owned(),
            timeout,
        }
    } else {
        DiscoveryError::Lookup {
            name: name.to_owned(),
            message: e.to_string(),
        }
    }
}

fn rtype_word(rtype: RecordType) -> &'static str {
    match rtype {
        RecordType::SRV => "SRV",
        RecordType::PTR => "PTR",
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        _ => "DNS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_absolute() {
        let name = service_name("acme.example.").expect("valid domain");
        assert!(name.is_fqdn());
        assert_eq!(name.to_string(), "_lap._udp.acme.example.");
        assert_eq!(
            service_name(" acme.example ")
                .expect("valid domain")
                .to_string(),
            "_lap._udp.acme.example."
        );
        assert!(matches!(
            service_name("acme example"),
            Err(DiscoveryError::Domain { .. })
        ));
    }
}
