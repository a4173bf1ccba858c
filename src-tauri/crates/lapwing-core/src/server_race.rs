//! The socket side of the race of [`crate::race`]: discovery's sources as they report
//! ([`lapwing_discovery::Discovery::sources`]), the servers learnt earlier on this network
//! ([`crate::server_cache`]), one exchange per server the race starts, and the head-start
//! timers. Which server to ask when, and who won, is the race's to decide.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use lap_proto::{Activation, ServerPublicKeys};
use lapwing_discovery::{Candidate, Discovery, MAX_CANDIDATES, ServerSettings, SourceEvent, Stage};

use crate::cause::{Cause, SkippedServer};
use crate::clock::Clock;
use crate::race::{HeadStarts, Race, RaceOutcome};
use crate::ranking::ServerTried;
use crate::retry::BuildRequest;
use crate::server_cache::ServerCache;
use crate::state::ServerUsed;
use crate::transport::{
    Entropy, NetworkSaid, RetryPolicy, ServerOutcome, TransportError, exchange,
};

/// What the race runs with: the engine's parts, lent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub discovery: &'a Discovery,
    /// Where the servers learnt are kept.
    pub data_dir: &'a Path,
    pub clock: &'a dyn Clock,
    pub entropy: &'a dyn Entropy,
    pub retry: &'a RetryPolicy,
    /// The bound on the exchanges of one activation, all servers together.
    pub budget: Duration,
}

/// Where the servers come from: one forced for this run, or discovery with these settings.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Servers<'a> {
    Forced(SocketAddr),
    Discover(&'a ServerSettings),
    /// The manual choice alone (the override, or the policy's server), and no one else when
    /// it does not answer: the machine policy forbids falling back past a silent override.
    ManualOnly(&'a ServerSettings),
}

/// What one activation's race came to.
#[derive(Debug)]
pub(crate) struct Raced<T> {
    /// The server that gave the first valid answer, and what `accept` made of it.
    pub won: Option<(ServerUsed, T)>,
    /// Every server asked, in the order asked.
    pub tried: Vec<ServerUsed>,
    /// Answers that came but failed their checks, by server.
    pub rejections: Vec<Cause>,
    /// What discovery left out, and why.
    pub skipped: Vec<SkippedServer>,
    /// What the network said of servers asked (ICMP errors), by address.
    pub network_said: Vec<(String, NetworkSaid)>,
    /// Overrides whose host could not be found (DNS said so, or did not answer).
    pub overrides_not_found: Vec<Cause>,
}

impl<T> Raced<T> {
    /// Every server asked, in the order asked, with what the network said of it (its
    /// latest word).
    pub fn tried_with_network(&self) -> Vec<ServerTried> {
        self.tried
            .iter()
            .map(|server| ServerTried {
                server: server.clone(),
                network: self
                    .network_said
                    .iter()
                    .rev()
                    .find(|(address, _)| *address == server.address)
                    .map(|(_, said)| *said),
            })
            .collect()
    }
}

/// An override discovery left out because its host could not be found: what the network
/// said of it. Overrides left out for other reasons (a locked policy, a product's own
/// override superseding the global one) are not failures and are not said here.
fn override_not_found(skipped: &lapwing_discovery::Skipped) -> Option<Cause> {
    use lapwing_discovery::DiscoveryError;
    let lookup_failed = matches!(
        skipped.reason,
        DiscoveryError::Lookup { .. }
            | DiscoveryError::NoRecords { .. }
            | DiscoveryError::Timeout { .. }
            | DiscoveryError::NoResolver(_)
    );
    (skipped.source == lapwing_discovery::ServerSource::Override && lookup_failed).then(|| {
        Cause::OverrideNotFound {
            address: skipped.subject.clone(),
            reason: skipped.reason.to_string(),
        }
    })
}

fn used(candidate: &Candidate) -> ServerUsed {
    ServerUsed {
        address: candidate.address.to_string(),
        source: candidate.source,
    }
}

/// The sources' events for a server forced for this run: that server, and every stage done.
fn forced_source(address: SocketAddr) -> futures::stream::BoxStream<'static, SourceEvent> {
    let forced = Candidate {
        address,
        host: address.ip().to_string(),
        source: lapwing_discovery::ServerSource::Override,
        detail: "forced for this run".to_owned(),
        ttl: None,
    };
    let events = [SourceEvent::Found(
        Stage::Manual,
        lapwing_discovery::Discovered {
            candidates: vec![forced],
            skipped: Vec::new(),
        },
    )]
    .into_iter()
    .chain(Stage::ALL.into_iter().map(SourceEvent::Done));
    futures::stream::iter(events).boxed()
}

fn monotonic_now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Races `product`'s servers: an exchange with each server the race starts, `accept`
/// judging each answer that opens (a valid answer wins; an error names why it does not).
/// The exchanges together end at the discovery configuration's exchange bound. Servers found
/// by SRV or DNS-SD that win are kept for this network; kept ones asked that do not win
/// are dropped.
pub(crate) async fn race<T>(
    parts: Parts<'_>,
    product: &str,
    keys: &ServerPublicKeys,
    servers: Servers<'_>,
    build: &BuildRequest<'_>,
    accept: impl Fn(&ServerUsed, &Activation) -> Result<T, Cause>,
) -> Result<Raced<T>, TransportError> {
    let Parts {
        discovery,
        data_dir,
        clock,
        entropy,
        retry,
        budget,
    } = parts;
    let cache = ServerCache::new(data_dir);
    let mut race = Race::new(HeadStarts::default(), MAX_CANDIDATES);
    let mut sources = match servers {
        Servers::Forced(address) => forced_source(address),
        Servers::Discover(settings) | Servers::ManualOnly(settings) => discovery.sources(settings),
    };
    let manual_only = matches!(servers, Servers::ManualOnly(_));
    // Only automatic discovery learns; a locked policy or a forced server asks no one else.
    let network = match servers {
        Servers::Discover(settings) if !settings.policy_locked => Some(discovery.network_key()),
        _ => None,
    };
    let learnt = network.as_deref().map_or_else(Vec::new, |network| {
        cache.lookup(network, product, clock.now())
    });
    let start = monotonic_now();
    for candidate in &learnt {
        race.handle_found(
            start,
            candidate.source.stage(),
            lapwing_discovery::Discovered {
                candidates: vec![candidate.clone()],
                skipped: Vec::new(),
            },
        );
    }

    let deadline = tokio::time::Instant::from_std(start) + budget;
    let mut exchanges = FuturesUnordered::new();
    let mut sources_over = false;
    let mut rejections = Vec::new();
    let mut network_said = Vec::new();
    let mut won = None;
    loop {
        let now = monotonic_now();
        while let Some(candidate) = race.poll_start(now) {
            tracing::debug!(address = %candidate.address, source = %candidate.source, "asking");
            exchanges.push(async move {
                let outcome = exchange(candidate.address, keys, build, clock, entropy, retry).await;
                (candidate, outcome)
            });
        }
        if race.outcome() != RaceOutcome::Running {
            break;
        }
        let timer = race.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            event = sources.next(), if !sources_over => match event {
                Some(SourceEvent::Found(stage, found)) => {
                    if manual_only && stage != Stage::Manual {
                        tracing::debug!(?stage, "not asked: the policy forbids falling back past the override");
                    } else {
                        race.handle_found(monotonic_now(), stage, found);
                    }
                }
                Some(SourceEvent::Done(stage)) => race.handle_done(monotonic_now(), stage),
                None => sources_over = true,
            },
            Some((candidate, outcome)) = exchanges.next(), if !exchanges.is_empty() => {
                let outcome: Result<ServerOutcome, TransportError> = outcome;
                let now = monotonic_now();
                let server = used(&candidate);
                match outcome? {
                    ServerOutcome::Answered { activation, .. } => match accept(&server, &activation) {
                        Ok(accepted) => {
                            race.handle_answered(now, candidate.address);
                            won = Some((candidate, accepted));
                        }
                        // The previous activation stands; another server may do better.
                        Err(cause) => {
                            rejections.push(cause);
                            race.handle_failed(now, candidate.address);
                        }
                    },
                    ServerOutcome::Silent { rejected, last_rejection, network, .. } => {
                        if let Some(said) = network {
                            network_said.push((server.address.clone(), said));
                        }
                        if rejected > 0 {
                            rejections.push(Cause::DatagramsRejected {
                                count: u64::try_from(rejected).unwrap_or(u64::MAX),
                                address: server.address.clone(),
                                last_error: last_rejection.unwrap_or_default(),
                            });
                        }
                        race.handle_failed(now, candidate.address);
                    }
                }
            },
            () = sleep_until_some(timer) => race.handle_timeout(monotonic_now()),
            () = tokio::time::sleep_until(deadline) => {
                // However many servers there are, and however each stays silent, one
                // activation's exchanges end at this bound: servers not asked yet are not.
                tracing::warn!(
                    product,
                    budget_ms = budget.as_millis(),
                    "the exchanges ran out of time; later servers are not tried"
                );
                break;
            }
        }
    }
    // Dropping the exchanges and the sources ends them: no socket outlives the race.
    drop(exchanges);
    drop(sources);

    if let Some(network) = &network {
        // A learnt server that was asked and did not win is dropped, whether it failed or
        // was still silent when another answered: it had its head start, and the next
        // activation discovers again instead.
        let answered = won.as_ref().map(|(candidate, _)| candidate);
        let asked = race.started();
        let dropped: Vec<SocketAddr> = learnt
            .iter()
            .map(|c| c.address)
            .filter(|a| asked.iter().any(|c| c.address == *a))
            .filter(|a| answered.is_none_or(|w| w.address != *a))
            .collect();
        if answered.is_some() || !dropped.is_empty() {
            cache.update(network, product, clock.now(), answered, &dropped);
        }
    }
    Ok(Raced {
        won: won.map(|(candidate, accepted)| (used(&candidate), accepted)),
        tried: race.started().iter().map(used).collect(),
        rejections,
        skipped: race.skipped().iter().map(SkippedServer::from).collect(),
        network_said,
        overrides_not_found: race
            .skipped()
            .iter()
            .filter_map(override_not_found)
            .collect(),
    })
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapwing_discovery::{DiscoveryError, ServerSource, Skipped};

    #[test]
    fn only_an_override_whose_host_was_not_found_is_said() {
        let skipped = |source, reason| Skipped {
            source,
            subject: "lap.corp.invalid:4711".into(),
            reason,
        };
        let lookup = DiscoveryError::Lookup {
            name: "lap.corp.invalid".into(),
            message: "no such host".into(),
        };
        assert_eq!(
            override_not_found(&skipped(ServerSource::Override, lookup.clone())),
            Some(Cause::OverrideNotFound {
                address: "lap.corp.invalid:4711".into(),
                reason: "DNS lookup of lap.corp.invalid failed: no such host".into(),
            })
        );
        assert_eq!(
            override_not_found(&skipped(ServerSource::Srv, lookup)),
            None,
            "an SRV lookup is not the person's override"
        );
        for chosen_otherwise in [
            DiscoveryError::RefusedByPolicy { locked_to: None },
            DiscoveryError::Superseded {
                by: "the product's override",
            },
        ] {
            assert_eq!(
                override_not_found(&skipped(ServerSource::Override, chosen_otherwise)),
                None
            );
        }
    }
}
