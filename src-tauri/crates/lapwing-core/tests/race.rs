//! The race of servers on virtual time: sources report, servers answer or fail, and the clock
//! jumps to whatever comes next. No sockets, no sleeping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lapwing_core::race::{HeadStarts, Race, RaceOutcome};
use lapwing_discovery::{Candidate, Discovered, ServerSource, Stage};

const HEAD_STARTS: HeadStarts = HeadStarts {
    srv: Duration::from_millis(20),
    dns_sd: Duration::from_millis(15),
    manifest: Duration::from_millis(10),
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn server(address: &str, source: ServerSource) -> Candidate {
    Candidate {
        address: address.parse().expect("valid address"),
        host: address.into(),
        source,
        detail: String::new(),
        ttl: None,
    }
}

fn found(candidates: Vec<Candidate>) -> Discovered {
    Discovered {
        candidates,
        skipped: Vec::new(),
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("valid address")
}

/// A race and its virtual clock; `started` records what the race started, and when.
struct Run {
    race: Race,
    t0: Instant,
    started: Vec<(String, Duration)>,
}

impl Run {
    fn new() -> Self {
        Self {
            race: Race::new(HEAD_STARTS, 8),
            t0: Instant::now(),
            started: Vec::new(),
        }
    }

    fn at(&self, offset: Duration) -> Instant {
        self.t0 + offset
    }

    /// Collects what the race starts at `offset`.
    fn poll(&mut self, offset: Duration) {
        let now = self.at(offset);
        while let Some(c) = self.race.poll_start(now) {
            self.started.push((c.address.to_string(), offset));
        }
    }

    /// Fires every head-start timer due up to `offset`, in order, polling at each.
    fn run_until(&mut self, offset: Duration) {
        while let Some(when) = self.race.poll_timeout() {
            if when > self.at(offset) {
                break;
            }
            let due = when - self.t0;
            self.race.handle_timeout(when);
            self.poll(due);
        }
        self.poll(offset);
    }

    fn found(&mut self, offset: Duration, stage: Stage, servers: Vec<Candidate>) {
        self.run_until(offset);
        self.race
            .handle_found(self.at(offset), stage, found(servers));
        self.poll(offset);
    }

    fn done(&mut self, offset: Duration, stage: Stage) {
        self.run_until(offset);
        self.race.handle_done(self.at(offset), stage);
        self.poll(offset);
    }

    fn failed(&mut self, offset: Duration, address: &str) {
        self.run_until(offset);
        self.race.handle_failed(self.at(offset), addr(address));
        self.poll(offset);
    }

    fn answered(&mut self, offset: Duration, address: &str) {
        self.run_until(offset);
        self.race.handle_answered(self.at(offset), addr(address));
        self.poll(offset);
    }

    fn started(&self) -> Vec<(&str, u64)> {
        self.started
            .iter()
            .map(|(a, t)| (a.as_str(), u64::try_from(t.as_millis()).expect("small")))
            .collect()
    }

    fn winner(&self) -> Option<String> {
        match self.race.outcome() {
            RaceOutcome::Won(c) => Some(c.address.to_string()),
            _ => None,
        }
    }
}

const SRV: &str = "192.0.2.10:4711";
const DNS_SD: &str = "192.0.2.20:4711";
const MANIFEST: &str = "192.0.2.30:4711";
const OVERRIDE: &str = "192.0.2.40:4711";

/// The usual start: no manual choice; the manifest's address is known at once.
fn started_without_override() -> Run {
    let mut run = Run::new();
    run.done(ms(0), Stage::Manual);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.done(ms(0), Stage::Manifest);
    run
}

#[test]
fn a_preferred_source_answering_within_its_head_start_wins() {
    let mut run = started_without_override();
    // SRV answers its lookup at 3 ms; the server answers at 5 ms, well inside 20 ms.
    run.found(ms(3), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.done(ms(3), Stage::Srv);
    assert_eq!(run.started(), vec![(SRV, 3)]);
    run.answered(ms(5), SRV);
    assert_eq!(run.winner().as_deref(), Some(SRV));
    // The less preferred sources were never asked, and never will be.
    run.run_until(ms(1000));
    assert_eq!(run.started(), vec![(SRV, 3)]);
    assert_eq!(run.race.poll_timeout(), None);
}

#[test]
fn a_preferred_source_answering_after_its_head_start_loses_to_a_faster_one() {
    let mut run = started_without_override();
    run.done(ms(0), Stage::Srv);
    // DNS-SD (an mDNS browse) finds nothing within its 15 ms: the manifest's address is
    // asked then. The DNS-SD server found at 60 ms is asked at once, but too late.
    run.run_until(ms(15));
    assert_eq!(run.started(), vec![(MANIFEST, 15)]);
    run.found(
        ms(60),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    assert_eq!(run.started(), vec![(MANIFEST, 15), (DNS_SD, 60)]);
    run.answered(ms(61), MANIFEST);
    assert_eq!(run.winner().as_deref(), Some(MANIFEST));
}

#[test]
fn a_preferred_server_found_late_still_wins_if_it_answers_first() {
    let mut run = started_without_override();
    run.done(ms(0), Stage::Srv);
    run.run_until(ms(15));
    assert_eq!(run.started(), vec![(MANIFEST, 15)]);
    // The manifest's server is slow; the DNS-SD server found later answers first.
    run.found(
        ms(40),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    run.answered(ms(42), DNS_SD);
    assert_eq!(run.winner().as_deref(), Some(DNS_SD));
}

#[test]
fn head_starts_are_staggered_in_the_profiles_order() {
    let mut run = Run::new();
    run.done(ms(0), Stage::Manual);
    run.found(ms(0), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.found(
        ms(1),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    run.run_until(ms(100));
    // SRV at once, DNS-SD after SRV's 20 ms, the manifest after DNS-SD's 15 more.
    assert_eq!(run.started(), vec![(SRV, 0), (DNS_SD, 20), (MANIFEST, 35)]);
    // A failure passes the floor on at once: no head start is waited out for nothing.
    let mut run = Run::new();
    run.done(ms(0), Stage::Manual);
    run.found(ms(0), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.done(ms(0), Stage::Srv);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.done(ms(0), Stage::DnsSd);
    run.failed(ms(2), SRV);
    assert_eq!(run.started(), vec![(SRV, 0), (MANIFEST, 2)]);
}

#[test]
fn every_source_silent_loses_after_asking_everyone() {
    let mut run = started_without_override();
    run.found(ms(2), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.done(ms(2), Stage::Srv);
    // Found within DNS-SD's head start (from 22 ms): it has its own 15 ms from 30 ms.
    run.found(
        ms(30),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    run.run_until(ms(1000));
    assert_eq!(
        run.race.outcome(),
        RaceOutcome::Running,
        "DNS-SD still looks"
    );
    run.done(ms(1500), Stage::DnsSd);
    for address in [SRV, MANIFEST] {
        run.failed(ms(7000), address);
    }
    assert_eq!(run.race.outcome(), RaceOutcome::Running, "one still runs");
    run.failed(ms(7030), DNS_SD);
    assert_eq!(run.race.outcome(), RaceOutcome::Lost);
    assert_eq!(run.started(), vec![(SRV, 2), (DNS_SD, 30), (MANIFEST, 45)]);
    let tried: Vec<String> = run
        .race
        .started()
        .iter()
        .map(|c| c.address.to_string())
        .collect();
    assert_eq!(tried, vec![SRV, DNS_SD, MANIFEST]);
}

#[test]
fn nothing_found_is_lost_once_every_source_has_ended() {
    let mut run = Run::new();
    for stage in Stage::ALL {
        assert_eq!(run.race.outcome(), RaceOutcome::Running);
        run.done(ms(1), stage);
    }
    assert_eq!(run.race.outcome(), RaceOutcome::Lost);
    assert!(run.race.started().is_empty());
}

/// A server learnt earlier stands in its stage from the start; gone, it costs only its head
/// start before the manifest's address is asked.
#[test]
fn a_cached_server_gone_costs_its_head_start_only() {
    let mut run = Run::new();
    run.found(
        ms(0),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    run.done(ms(0), Stage::Manual);
    run.done(ms(0), Stage::Srv);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.done(ms(0), Stage::Manifest);
    assert_eq!(run.started(), vec![(DNS_SD, 0)]);
    run.run_until(ms(15));
    assert_eq!(run.started(), vec![(DNS_SD, 0), (MANIFEST, 15)]);
    run.answered(ms(16), MANIFEST);
    assert_eq!(run.winner().as_deref(), Some(MANIFEST));
    // And a cached server that answers wins before the manifest is asked at all.
    let mut run = Run::new();
    run.found(
        ms(0),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    run.done(ms(0), Stage::Manual);
    run.done(ms(0), Stage::Srv);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.answered(ms(1), DNS_SD);
    assert_eq!(run.winner().as_deref(), Some(DNS_SD));
    assert_eq!(run.started(), vec![(DNS_SD, 0)]);
}

/// A server a person chose wins whenever it answers: nothing else is asked until it fails.
#[test]
fn the_manual_choice_holds_the_floor_until_it_fails() {
    let mut run = Run::new();
    run.found(
        ms(0),
        Stage::Manual,
        vec![server(OVERRIDE, ServerSource::Override)],
    );
    run.done(ms(0), Stage::Manual);
    run.found(ms(0), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    run.run_until(ms(6000));
    assert_eq!(run.started(), vec![(OVERRIDE, 0)]);
    run.answered(ms(3000), OVERRIDE);
    assert_eq!(run.winner().as_deref(), Some(OVERRIDE));

    let mut run = Run::new();
    run.found(
        ms(0),
        Stage::Manual,
        vec![server(OVERRIDE, ServerSource::Override)],
    );
    run.done(ms(0), Stage::Manual);
    run.found(ms(0), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.failed(ms(7000), OVERRIDE);
    assert_eq!(run.started(), vec![(OVERRIDE, 0), (SRV, 7000)]);
}

#[test]
fn the_same_address_takes_part_once_at_its_best_place() {
    let mut run = Run::new();
    run.done(ms(0), Stage::Manual);
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    // SRV names the manifest's own server: it is asked as SRV's, at once.
    run.found(ms(1), Stage::Srv, vec![server(MANIFEST, ServerSource::Srv)]);
    assert_eq!(run.started(), vec![(MANIFEST, 1)]);
    assert_eq!(run.race.started()[0].source, ServerSource::Srv);
}

#[test]
fn at_most_cap_servers_take_part_the_preferred_ones() {
    let mut run = Run {
        race: Race::new(HEAD_STARTS, 2),
        ..Run::new()
    };
    run.found(
        ms(0),
        Stage::Manual,
        vec![server(OVERRIDE, ServerSource::Override)],
    );
    run.found(
        ms(0),
        Stage::Manifest,
        vec![server(MANIFEST, ServerSource::Manifest)],
    );
    // A third, more preferred than the manifest's waiting address, takes its place.
    run.found(ms(0), Stage::Srv, vec![server(SRV, ServerSource::Srv)]);
    run.found(
        ms(0),
        Stage::DnsSd,
        vec![server(DNS_SD, ServerSource::DnsSd)],
    );
    for stage in Stage::ALL {
        run.done(ms(0), stage);
    }
    run.failed(ms(10), OVERRIDE);
    run.failed(ms(20), SRV);
    assert_eq!(run.race.outcome(), RaceOutcome::Lost);
    assert_eq!(run.started(), vec![(OVERRIDE, 0), (SRV, 10)]);
    let left_out: Vec<&str> = run
        .race
        .skipped()
        .iter()
        .map(|s| s.subject.as_str())
        .collect();
    assert_eq!(left_out, vec![MANIFEST, DNS_SD]);
}
