//! Which servers to ask, and when, while discovery is still finding them (profile §6, "first
//! that answers"): a race in the profile's order, the way "happy eyeballs" (RFC 8305) races
//! addresses. Without I/O, in the manner of [`crate::retry`]: the driver
//! (`crate::server_race`) feeds what happens to the `handle_*` methods, asks
//! [`Race::poll_start`] which exchanges to start and [`Race::poll_timeout`] when to come
//! back; time comes in as `now`, so the rules are tested on virtual time (`tests/race.rs`).
//!
//! The rules:
//! - The servers stand in the profile's order: the manual choice, SRV, DNS-SD, the
//!   manifest's address ([`Stage`]); within a stage, in the order found.
//! - One thing at a time holds the floor, and nothing after it starts meanwhile: the server
//!   started last, for its stage's head start, or a stage that is still looking, for its head
//!   start from when the floor reached it. The floor passes on when that time is up, or at
//!   once when the server fails or the stage ends with nothing more to try.
//! - The manual choice (an override, or the policy's server) holds the floor until it
//!   fails: a server a person chose wins whenever it answers, and no other server is asked
//!   while it still may.
//! - A server found for a stage the floor has already passed starts at once: it is still
//!   preferred to what follows, only later.
//! - The first valid answer wins, whoever gave it; so a server answering within its head
//!   start wins over every less preferred one, which has not even been asked.
//! - The race is lost when every stage has ended and every server started has failed.
//! - At most `cap` servers take part; one more preferred than a waiting one takes its place.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use lapwing_discovery::{Candidate, Discovered, DiscoveryError, Skipped, Stage};

/// How long each stage holds the floor before the next may start (see the module's rules).
/// The manual choice has none: it holds the floor until it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadStarts {
    pub srv: Duration,
    pub dns_sd: Duration,
    /// Between the manifest's own addresses (a name with an IPv6 and an IPv4 address).
    pub manifest: Duration,
}

impl Default for HeadStarts {
    /// Chosen from what was measured here (the 2-core test machine, debug build, under
    /// load; see `docs/admin-guide.md`, "How long finding the server takes"): an SRV answer
    /// from a resolver on the same host came 7–60 ms after the start (median 12 ms), a
    /// unicast DNS-SD answer (PTR, then SRV, then the address) 10–80 ms, an mDNS instance
    /// 65–140 ms (the querier and the responder each wait a random 10–50 ms, RFC 6762 §5.2
    /// and §6; Avahi and Bonjour answer after 20–120 ms); a LAP exchange with `lapd` on
    /// loopback takes 0.3–1 ms, a few ms across a LAN. So SRV gets 20 ms (a resolver that
    /// has the answer, and the exchange), DNS-SD 10 ms (the exchange of a server learnt
    /// earlier, across a LAN), and a name's second address 10 ms (an exchange on a LAN). No
    /// head start within an activation's 50 ms budget can wait for an mDNS browse: a DNS-SD
    /// server is found by the browse, raced when found, and once it has answered it is learnt
    /// (`server_cache`) and asked from the start. With neither an override nor an SRV
    /// domain, the manifest's address is asked 10 ms after the start. DNS-SD had 15 ms until
    /// the engine bench showed those 5 ms were a sixth of a fresh `lapctl activate` with mDNS
    /// on (25 ms against 8 ms off) and bought nothing: a learnt server on a LAN answers in a
    /// few ms.
    fn default() -> Self {
        Self {
            srv: Duration::from_millis(20),
            dns_sd: Duration::from_millis(10),
            manifest: Duration::from_millis(10),
        }
    }
}

impl HeadStarts {
    /// `None`: until the server fails, or the stage ends.
    fn of(self, stage: Stage) -> Option<Duration> {
        match stage {
            Stage::Manual => None,
            Stage::Srv => Some(self.srv),
            Stage::DnsSd => Some(self.dns_sd),
            Stage::Manifest => Some(self.manifest),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Failed,
    Answered,
}

#[derive(Debug, Clone)]
struct Entry {
    candidate: Candidate,
    stage: Stage,
    state: State,
}

/// What holds the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Floor {
    /// The stage is still looking; `until`: when its head start is up.
    Stage {
        stage: Stage,
        until: Option<Instant>,
    },
    /// The server started last holds it until `until`, or until it fails.
    Server {
        address: SocketAddr,
        stage: Stage,
        until: Option<Instant>,
    },
    /// Every stage has had its turn.
    End,
}

/// How the race stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaceOutcome {
    Running,
    /// This server gave the first valid answer.
    Won(Candidate),
    /// Every stage has ended and every server started failed (or none was found).
    Lost,
}

/// The race of one activation (see the module's rules). Servers are known by address,
/// which is unique in the race.
#[derive(Debug, Clone)]
pub struct Race {
    head_starts: HeadStarts,
    cap: usize,
    /// In the profile's order: by stage, then in the order found.
    entries: Vec<Entry>,
    /// In the order started.
    started: Vec<SocketAddr>,
    to_start: VecDeque<SocketAddr>,
    done: [bool; 4],
    floor: Floor,
    skipped: Vec<Skipped>,
}

fn stage_index(stage: Stage) -> usize {
    match stage {
        Stage::Manual => 0,
        Stage::Srv => 1,
        Stage::DnsSd => 2,
        Stage::Manifest => 3,
    }
}

fn next_stage(stage: Stage) -> Option<Stage> {
    match stage {
        Stage::Manual => Some(Stage::Srv),
        Stage::Srv => Some(Stage::DnsSd),
        Stage::DnsSd => Some(Stage::Manifest),
        Stage::Manifest => None,
    }
}

impl Race {
    /// The floor starts with the manual stage; at most `cap` servers take part.
    pub fn new(head_starts: HeadStarts, cap: usize) -> Self {
        Self {
            head_starts,
            cap,
            entries: Vec::new(),
            started: Vec::new(),
            to_start: VecDeque::new(),
            done: [false; 4],
            floor: Floor::Stage {
                stage: Stage::Manual,
                until: None,
            },
            skipped: Vec::new(),
        }
    }

    /// A source found servers (and perhaps left some out). A server already in the race is
    /// not added again; one waiting in a later stage moves up to this one.
    pub fn handle_found(&mut self, now: Instant, stage: Stage, found: Discovered) {
        self.skipped.extend(found.skipped);
        for candidate in found.candidates {
            self.add(stage, candidate);
        }
        self.advance(now);
    }

    fn add(&mut self, stage: Stage, candidate: Candidate) {
        if let Some(n) = self
            .entries
            .iter()
            .position(|e| e.candidate.address == candidate.address)
        {
            let existing = &self.entries[n];
            if existing.state == State::Waiting && stage < existing.stage {
                self.entries.remove(n);
            } else {
                return;
            }
        }
        if self.entries.len() >= self.cap {
            // The least preferred server still waiting gives way, if it is less preferred.
            let last_waiting = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.state == State::Waiting)
                .max_by_key(|(n, e)| (e.stage, *n))
                .map(|(n, e)| (n, e.stage));
            match last_waiting {
                Some((n, waiting_stage)) if waiting_stage > stage => {
                    let left_out = self.entries.remove(n);
                    self.cap_note(&left_out.candidate);
                }
                _ => {
                    self.cap_note(&candidate);
                    return;
                }
            }
        }
        self.entries.push(Entry {
            candidate,
            stage,
            state: State::Waiting,
        });
        // Stable: within a stage, the order found.
        self.entries.sort_by_key(|e| e.stage);
    }

    fn cap_note(&mut self, candidate: &Candidate) {
        tracing::info!(address = %candidate.address, source = %candidate.source, limit = self.cap, "too many servers");
        self.skipped.push(Skipped {
            source: candidate.source,
            subject: candidate.address.to_string(),
            reason: DiscoveryError::TooMany { limit: self.cap },
        });
    }

    /// A source will report nothing more.
    pub fn handle_done(&mut self, now: Instant, stage: Stage) {
        self.done[stage_index(stage)] = true;
        self.advance(now);
    }

    /// The exchange with `address` ended without a valid answer (silence, answers that did
    /// not open, or an answer whose contents failed their checks).
    pub fn handle_failed(&mut self, now: Instant, address: SocketAddr) {
        if let Some(entry) = self.entry_mut(address)
            && entry.state == State::Running
        {
            entry.state = State::Failed;
        }
        self.advance(now);
    }

    /// `address` answered, and the answer is valid: the race is won.
    pub fn handle_answered(&mut self, _now: Instant, address: SocketAddr) {
        if let Some(entry) = self.entry_mut(address)
            && entry.state == State::Running
        {
            entry.state = State::Answered;
        }
    }

    /// A head start may be up.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
    }

    fn entry(&self, address: SocketAddr) -> Option<&Entry> {
        self.entries.iter().find(|e| e.candidate.address == address)
    }

    fn entry_mut(&mut self, address: SocketAddr) -> Option<&mut Entry> {
        self.entries
            .iter_mut()
            .find(|e| e.candidate.address == address)
    }

    /// The next server to start an exchange with now, if any.
    pub fn poll_start(&mut self, now: Instant) -> Option<Candidate> {
        self.advance(now);
        if self.is_over() {
            return None;
        }
        let address = self.to_start.pop_front()?;
        self.entry(address).map(|e| e.candidate.clone())
    }

    /// When the floor may pass on by itself: call `handle_timeout` then.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_over() {
            return None;
        }
        match self.floor {
            Floor::Stage { until, .. } | Floor::Server { until, .. } => until,
            Floor::End => None,
        }
    }

    fn is_over(&self) -> bool {
        !matches!(self.outcome(), RaceOutcome::Running)
    }

    pub fn outcome(&self) -> RaceOutcome {
        if let Some(winner) = self.entries.iter().find(|e| e.state == State::Answered) {
            return RaceOutcome::Won(winner.candidate.clone());
        }
        let all_done = self.done.iter().all(|d| *d);
        let none_left = self
            .entries
            .iter()
            .all(|e| matches!(e.state, State::Failed));
        if all_done && none_left && self.floor == Floor::End {
            RaceOutcome::Lost
        } else {
            RaceOutcome::Running
        }
    }

    /// The servers started, in the order started.
    pub fn started(&self) -> Vec<Candidate> {
        self.started
            .iter()
            .filter_map(|&a| self.entry(a).map(|e| e.candidate.clone()))
            .collect()
    }

    /// What the sources left out, and the servers past the cap.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    fn start(&mut self, address: SocketAddr) {
        if let Some(entry) = self.entry_mut(address) {
            entry.state = State::Running;
        }
        self.started.push(address);
        self.to_start.push_back(address);
    }

    fn first_waiting(&self, stage: Stage) -> Option<SocketAddr> {
        self.entries
            .iter()
            .find(|e| e.stage == stage && e.state == State::Waiting)
            .map(|e| e.candidate.address)
    }

    /// Moves the floor as far as `now` lets it, starting what it reaches, and starts the
    /// servers found for stages it has passed.
    fn advance(&mut self, now: Instant) {
        loop {
            match self.floor {
                Floor::End => break,
                Floor::Server {
                    address,
                    stage,
                    until,
                } => {
                    let failed = self.entry(address).is_none_or(|e| e.state == State::Failed);
                    if !failed && until.is_none_or(|until| now < until) {
                        break;
                    }
                    // The stage goes on with its next server, if it has one waiting.
                    self.floor = Floor::Stage {
                        stage,
                        until: Some(now),
                    };
                }
                Floor::Stage { stage, until } => {
                    if let Some(address) = self.first_waiting(stage) {
                        self.start(address);
                        self.floor = Floor::Server {
                            address,
                            stage,
                            until: self.head_starts.of(stage).map(|h| now + h),
                        };
                        continue;
                    }
                    let ended = self.done[stage_index(stage)];
                    if !ended && until.is_none_or(|until| now < until) {
                        break;
                    }
                    self.floor = match next_stage(stage) {
                        Some(next) => Floor::Stage {
                            stage: next,
                            until: self.head_starts.of(next).map(|h| now + h),
                        },
                        None => Floor::End,
                    };
                }
            }
        }
        // Servers of stages the floor has passed start as soon as they are found.
        let passed = |stage: Stage| match self.floor {
            Floor::End => true,
            Floor::Stage { stage: at, .. } | Floor::Server { stage: at, .. } => stage < at,
        };
        let late: Vec<SocketAddr> = self
            .entries
            .iter()
            .filter(|e| e.state == State::Waiting && passed(e.stage))
            .map(|e| e.candidate.address)
            .collect();
        for address in late {
            self.start(address);
        }
    }
}
