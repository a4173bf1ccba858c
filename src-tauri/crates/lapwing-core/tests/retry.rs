//! The retry rules on virtual time: a simulated link and server drive `Attempts`, jumping
//! straight to the next event (an arrival or the machine's timeout), as quinn-proto's
//! `Pair::drive` does. No sockets, no sleeping.
#![allow(
    clippy::match_wildcard_for_single_variants,
    reason = "a failing test prints whatever outcome came"
)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use lap_proto::{EphemeralSecret, Request, SeedV1, ServerSecretKeys, Uuid, open_request};
use lapwing_core::retry::{Attempts, NetworkSaid, Received, RetryPolicy, ServerOutcome};
use zeroize::Zeroizing;

/// The wall clock (UNIX seconds) at the virtual epoch.
const WALL_EPOCH: u64 = 1_795_000_000;

fn server_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x31; 32], &[0x32; 32])
}

fn request(client_time: u64) -> Request {
    let seed = SeedV1 {
        decoded_key: [1; 16],
        machine_hash: [2; 32],
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [3; 16],
    };
    Request {
        client_time,
        client_base_id: Uuid::from_u128(10),
        client_addon_id: Uuid::nil(),
        sku_id: Uuid::from_u128(20),
        current_license_id: Uuid::nil(),
        client_seed: Zeroizing::new(seed.encode(128).expect("room").to_vec()),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// The license id the server puts in its answer to attempt `n` (from 0), so a test can tell
/// which attempt an accepted answer belonged to.
fn license_for(n: usize) -> Uuid {
    Uuid::from_u128(0x7700 + u128::try_from(n).expect("small"))
}

/// What the link and server do with the n-th request (from 0).
#[derive(Debug, Clone)]
enum Fate {
    Lost,
    /// The send call fails: nothing leaves the machine.
    SendFails,
    /// The server answers, arriving this long after the request left.
    AnsweredAfter(Duration),
    /// Bytes arrive that are no answer, this long after the request left.
    GarbageAfter(Duration, Vec<u8>),
    /// Someone without the server's signing key answers.
    ForgedAfter(Duration),
}

/// One request as it left the client.
#[derive(Debug)]
struct Sent {
    at: Instant,
    datagram: Vec<u8>,
}

/// The simulated network and server around one `Attempts`.
struct Link {
    epoch: Instant,
    time: Instant,
    server: ServerSecretKeys,
    script: Box<dyn Fn(usize) -> Vec<Fate>>,
    /// Datagrams on their way to the client, with their arrival time.
    in_flight: Vec<(Instant, Vec<u8>)>,
    sent: Vec<Sent>,
    timeouts: Vec<Duration>,
    verdicts: Vec<(Duration, Received)>,
}

impl Link {
    fn new(script: impl Fn(usize) -> Vec<Fate> + 'static) -> Self {
        let epoch = Instant::now();
        Self {
            epoch,
            time: epoch,
            server: server_keys(),
            script: Box::new(script),
            in_flight: Vec::new(),
            sent: Vec::new(),
            timeouts: Vec::new(),
            verdicts: Vec::new(),
        }
    }

    /// The wall clock at virtual time `at`.
    fn client_time(&self, at: Instant) -> u64 {
        WALL_EPOCH + (at - self.epoch).as_secs()
    }

    fn elapsed(&self) -> Duration {
        self.time - self.epoch
    }

    /// Runs the exchange to its end, jumping from event to event.
    fn drive(&mut self, attempts: &mut Attempts<'_>) {
        loop {
            self.transmit(attempts);
            let Some(timeout) = attempts.poll_timeout() else {
                return;
            };
            match self.next_arrival() {
                Some((index, at)) if at <= timeout => {
                    self.time = at;
                    let (_, datagram) = self.in_flight.remove(index);
                    let verdict = attempts.handle_datagram(self.time, &datagram);
                    self.verdicts.push((self.elapsed(), verdict));
                }
                _ => {
                    self.time = timeout;
                    self.timeouts.push(self.elapsed());
                    attempts.handle_timeout(self.time);
                }
            }
        }
    }

    fn transmit(&mut self, attempts: &mut Attempts<'_>) {
        if !attempts.is_send_due() {
            assert!(
                attempts
                    .poll_transmit(self.time, &EphemeralSecret::from_bytes([0xEE; 32]), 0)
                    .expect("seals")
                    .is_none(),
                "nothing is sent while no attempt is due"
            );
            return;
        }
        let n = self.sent.len();
        // A fixed, distinct ephemeral key per attempt.
        let ephemeral = EphemeralSecret::from_bytes([u8::try_from(n + 1).expect("small"); 32]);
        let datagram = attempts
            .poll_transmit(self.time, &ephemeral, self.client_time(self.time))
            .expect("seals")
            .expect("an attempt is due");
        for fate in (self.script)(n) {
            match fate {
                Fate::Lost => {}
                Fate::SendFails => attempts.handle_send_error(self.time),
                Fate::AnsweredAfter(delay) => {
                    let answer = self.answer(&datagram, n, &self.server);
                    self.in_flight.push((self.time + delay, answer));
                }
                Fate::GarbageAfter(delay, bytes) => self.in_flight.push((self.time + delay, bytes)),
                Fate::ForgedAfter(delay) => {
                    let impostor = ServerSecretKeys::from_bytes([0x31; 32], &[0x99; 32]);
                    let forged = self.answer(&datagram, n, &impostor);
                    self.in_flight.push((self.time + delay, forged));
                }
            }
        }
        self.sent.push(Sent {
            at: self.time,
            datagram,
        });
    }

    /// The server's answer to `datagram`, signed by `signer` (the real server opens it: an
    /// impostor that read the request).
    fn answer(&self, datagram: &[u8], n: usize, signer: &ServerSecretKeys) -> Vec<u8> {
        let (request, sealer) = open_request(&self.server, datagram).expect("a valid request");
        sealer
            .seal(signer, request.client_time, license_for(n), &[])
            .expect("seals")
    }

    fn next_arrival(&self) -> Option<(usize, Instant)> {
        self.in_flight
            .iter()
            .enumerate()
            .map(|(index, (at, _))| (index, *at))
            .min_by_key(|(_, at)| *at)
    }

    fn sent_at(&self) -> Vec<Duration> {
        self.sent.iter().map(|s| s.at - self.epoch).collect()
    }
}

/// Drives a fresh exchange under `policy` against `script`.
fn run(
    policy: &RetryPolicy,
    script: impl Fn(usize) -> Vec<Fate> + 'static,
) -> (Link, ServerOutcome) {
    let keys = server_keys();
    let mut link = Link::new(script);
    let mut attempts = Attempts::new(keys.public(), &request, policy);
    link.drive(&mut attempts);
    assert!(attempts.is_finished());
    (link, attempts.into_outcome())
}

fn attempts_of(n: usize) -> RetryPolicy {
    RetryPolicy {
        waits: vec![secs(1); n],
    }
}

#[test]
fn a_prompt_answer_ends_the_exchange_at_the_first_attempt() {
    let (link, outcome) = run(&RetryPolicy::default(), |_| {
        vec![Fate::AnsweredAfter(ms(20))]
    });
    match outcome {
        ServerOutcome::Answered {
            activation,
            attempts,
        } => {
            assert_eq!(attempts, 1);
            assert_eq!(activation.response.license_id, license_for(0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(link.sent.len(), 1, "no retry after an answer");
    assert_eq!(link.elapsed(), ms(20));
    assert!(link.timeouts.is_empty());
}

#[test]
fn the_waits_follow_the_default_policy_exactly() {
    let (link, outcome) = run(&RetryPolicy::default(), |_| vec![Fate::Lost]);
    assert_eq!(link.sent_at(), [secs(0), secs(1), secs(3)]);
    assert_eq!(link.timeouts, [secs(1), secs(3), secs(7)]);
    match outcome {
        ServerOutcome::Silent {
            attempts,
            rejected,
            last_rejection,
            ..
        } => {
            assert_eq!((attempts, rejected), (3, 0));
            assert_eq!(last_rejection, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_early_wake_up_changes_nothing() {
    let keys = server_keys();
    let policy = RetryPolicy::default();
    let mut attempts = Attempts::new(keys.public(), &request, &policy);
    let t0 = Instant::now();
    let first = attempts
        .poll_transmit(t0, &EphemeralSecret::from_bytes([1; 32]), WALL_EPOCH)
        .expect("seals");
    assert!(first.is_some());
    attempts.handle_timeout(t0 + ms(999));
    assert!(!attempts.is_send_due());
    assert_eq!(attempts.poll_timeout(), Some(t0 + secs(1)));
    attempts.handle_timeout(t0 + secs(1));
    assert!(attempts.is_send_due());
    assert_eq!(attempts.poll_timeout(), None, "a due send is not a timer");
}

#[test]
fn the_machine_gives_up_after_the_last_wait_with_every_attempt_counted() {
    let policy = RetryPolicy {
        waits: vec![ms(300), ms(700), secs(2), secs(5)],
    };
    let (link, outcome) = run(&policy, |_| vec![Fate::Lost]);
    assert_eq!(link.sent_at(), [ms(0), ms(300), secs(1), secs(3)]);
    assert_eq!(link.timeouts.last(), Some(&secs(8)));
    assert!(matches!(outcome, ServerOutcome::Silent { attempts: 4, .. }));
}

#[test]
fn a_policy_without_waits_sends_nothing() {
    let (link, outcome) = run(&RetryPolicy { waits: Vec::new() }, |_| {
        vec![Fate::AnsweredAfter(ms(1))]
    });
    assert!(link.sent.is_empty());
    assert!(matches!(
        outcome,
        ServerOutcome::Silent {
            attempts: 0,
            rejected: 0,
            ..
        }
    ));
}

#[test]
fn lost_requests_are_retried_until_one_is_answered() {
    let (link, outcome) = run(&RetryPolicy::default(), |n| {
        if n < 2 {
            vec![Fate::Lost]
        } else {
            vec![Fate::AnsweredAfter(ms(50))]
        }
    });
    match outcome {
        ServerOutcome::Answered {
            activation,
            attempts,
        } => {
            assert_eq!(attempts, 3);
            assert_eq!(activation.response.license_id, license_for(2));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(link.elapsed(), secs(3) + ms(50));
}

#[test]
fn an_answer_to_attempt_1_arriving_after_attempt_2_left_is_accepted() {
    // Attempt 1's answer takes 1.5 s: attempt 2 left at 1 s and is lost.
    let (link, outcome) = run(&RetryPolicy::default(), |n| {
        if n == 0 {
            vec![Fate::AnsweredAfter(ms(1500))]
        } else {
            vec![Fate::Lost]
        }
    });
    match outcome {
        ServerOutcome::Answered {
            activation,
            attempts,
        } => {
            assert_eq!(attempts, 2, "accepted while waiting on attempt 2");
            assert_eq!(activation.response.license_id, license_for(0));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(link.sent_at(), [secs(0), secs(1)]);
    assert_eq!(link.elapsed(), ms(1500));
}

#[test]
fn an_answer_to_the_first_attempt_is_still_accepted_during_the_last_wait() {
    let (_, outcome) = run(&RetryPolicy::default(), |n| {
        if n == 0 {
            vec![Fate::AnsweredAfter(ms(6900))]
        } else {
            vec![Fate::Lost]
        }
    });
    assert!(matches!(
        outcome,
        ServerOutcome::Answered { attempts: 3, activation } if activation.response.license_id == license_for(0)
    ));
}

#[test]
fn garbage_is_counted_as_rejected_and_the_machine_keeps_waiting() {
    let (link, outcome) = run(&RetryPolicy::default(), |n| {
        if n == 0 {
            vec![
                Fate::GarbageAfter(ms(100), vec![0xAB; 120]),
                Fate::GarbageAfter(ms(200), vec![0; 3]),
                Fate::AnsweredAfter(ms(400)),
            ]
        } else {
            vec![Fate::Lost]
        }
    });
    assert!(matches!(
        outcome,
        ServerOutcome::Answered { attempts: 1, .. }
    ));
    let verdicts: Vec<_> = link
        .verdicts
        .iter()
        .map(|(at, verdict)| (*at, matches!(verdict, Received::Rejected(_))))
        .collect();
    assert_eq!(
        verdicts,
        [(ms(100), true), (ms(200), true), (ms(400), false)],
        "both pieces of garbage rejected, then the answer accepted"
    );
    assert_eq!(link.sent.len(), 1, "garbage does not trigger a retry");
}

#[test]
fn only_garbage_ends_silent_with_every_datagram_counted_and_the_last_reason() {
    let (link, outcome) = run(&RetryPolicy::default(), |_| {
        vec![
            Fate::GarbageAfter(ms(10), vec![0xAB; 200]),
            Fate::GarbageAfter(ms(20), vec![0; 3]),
        ]
    });
    match outcome {
        ServerOutcome::Silent {
            attempts,
            rejected,
            last_rejection,
            ..
        } => {
            assert_eq!((attempts, rejected), (3, 6));
            let reason = last_rejection.expect("a reason");
            assert!(reason.contains("too short"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        link.timeouts,
        [secs(1), secs(3), secs(7)],
        "waits unchanged"
    );
}

#[test]
fn a_forged_answer_is_rejected_for_its_signature_not_accepted() {
    let (_, outcome) = run(&attempts_of(2), |_| vec![Fate::ForgedAfter(ms(30))]);
    match outcome {
        ServerOutcome::Silent {
            attempts,
            rejected,
            last_rejection,
            ..
        } => {
            assert_eq!((attempts, rejected), (2, 2));
            let reason = last_rejection.expect("a reason");
            assert!(reason.contains("signature"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_send_error_is_one_more_unanswered_attempt() {
    let (link, outcome) = run(&RetryPolicy::default(), |n| {
        if n < 2 {
            vec![Fate::SendFails]
        } else {
            vec![Fate::AnsweredAfter(ms(10))]
        }
    });
    assert!(matches!(
        outcome,
        ServerOutcome::Answered { attempts: 3, .. }
    ));
    assert_eq!(
        link.sent_at(),
        [secs(0), secs(1), secs(3)],
        "the waits still run"
    );

    let (link, outcome) = run(&RetryPolicy::default(), |_| vec![Fate::SendFails]);
    assert!(matches!(outcome, ServerOutcome::Silent { attempts: 3, .. }));
    assert_eq!(link.timeouts, [secs(1), secs(3), secs(7)]);
}

#[test]
fn a_recv_error_keeps_every_attempt_in_flight() {
    let keys = server_keys();
    let server = server_keys();
    let policy = RetryPolicy::default();
    let mut attempts = Attempts::new(keys.public(), &request, &policy);
    let t0 = Instant::now();
    let first = attempts
        .poll_transmit(t0, &EphemeralSecret::from_bytes([1; 32]), WALL_EPOCH)
        .expect("seals")
        .expect("due");
    attempts.handle_recv_error(t0 + ms(5));
    assert!(!attempts.is_finished());
    assert_eq!(attempts.poll_timeout(), Some(t0 + secs(1)));
    attempts.handle_timeout(t0 + secs(1));
    attempts
        .poll_transmit(
            t0 + secs(1),
            &EphemeralSecret::from_bytes([2; 32]),
            WALL_EPOCH + 1,
        )
        .expect("seals")
        .expect("due");
    let (req, sealer) = open_request(&server, &first).expect("valid");
    let answer = sealer
        .seal(&server, req.client_time, license_for(0), &[])
        .expect("seals");
    assert!(matches!(
        attempts.handle_datagram(t0 + secs(2), &answer),
        Received::Accepted
    ));
    assert_eq!(attempts.transport_errors(), 1);
    assert!(matches!(
        attempts.into_outcome(),
        ServerOutcome::Answered { attempts: 2, .. }
    ));
}

#[test]
fn every_attempt_is_a_fresh_request_stamped_with_its_own_time() {
    let (link, _) = run(&RetryPolicy::default(), |_| vec![Fate::Lost]);
    let server = server_keys();
    let datagrams: HashSet<&[u8]> = link.sent.iter().map(|s| s.datagram.as_slice()).collect();
    assert_eq!(datagrams.len(), 3, "no two attempts send the same datagram");
    let ephemerals: HashSet<&[u8]> = link.sent.iter().map(|s| &s.datagram[..32]).collect();
    assert_eq!(
        ephemerals.len(),
        3,
        "each attempt has its own ephemeral key"
    );
    let client_times: Vec<u64> = link
        .sent
        .iter()
        .map(|s| {
            open_request(&server, &s.datagram)
                .expect("a valid request")
                .0
                .client_time
        })
        .collect();
    assert_eq!(
        client_times,
        [WALL_EPOCH, WALL_EPOCH + 1, WALL_EPOCH + 3],
        "ClientTime is the wall clock at each sending"
    );
}

#[test]
fn an_answer_after_giving_up_is_ignored() {
    let (link, outcome) = run(&attempts_of(1), |_| vec![Fate::AnsweredAfter(secs(2))]);
    assert!(matches!(outcome, ServerOutcome::Silent { attempts: 1, .. }));
    assert_eq!(link.in_flight.len(), 1, "the late answer was never needed");

    // Fed anyway, it changes nothing.
    let keys = server_keys();
    let policy = attempts_of(1);
    let mut attempts = Attempts::new(keys.public(), &request, &policy);
    let t0 = Instant::now();
    let datagram = attempts
        .poll_transmit(t0, &EphemeralSecret::from_bytes([1; 32]), WALL_EPOCH)
        .expect("seals")
        .expect("due");
    attempts.handle_timeout(t0 + secs(1));
    assert!(attempts.is_finished());
    let (req, sealer) = open_request(&keys, &datagram).expect("valid");
    let answer = sealer
        .seal(&keys, req.client_time, license_for(0), &[])
        .expect("seals");
    assert!(matches!(
        attempts.handle_datagram(t0 + secs(2), &answer),
        Received::Ignored
    ));
    assert!(matches!(
        attempts.into_outcome(),
        ServerOutcome::Silent {
            attempts: 1,
            rejected: 0,
            ..
        }
    ));
}

#[test]
fn a_refusal_ends_the_exchange_at_once_and_no_route_waits_the_schedule_out() {
    let keys = server_keys();
    let policy = RetryPolicy::default();
    let t0 = Instant::now();

    let mut refused = Attempts::new(keys.public(), &request, &policy);
    refused
        .poll_transmit(t0, &EphemeralSecret::from_bytes([1; 32]), WALL_EPOCH)
        .expect("seals")
        .expect("due");
    refused.handle_network_said(NetworkSaid::Refused);
    refused.handle_recv_error(t0 + ms(1));
    assert!(refused.is_finished(), "nothing listens: no retry");
    assert_eq!(refused.poll_timeout(), None);
    assert!(matches!(
        refused.into_outcome(),
        ServerOutcome::Silent {
            attempts: 1,
            network: Some(NetworkSaid::Refused),
            ..
        }
    ));

    let mut no_route = Attempts::new(keys.public(), &request, &policy);
    no_route
        .poll_transmit(t0, &EphemeralSecret::from_bytes([2; 32]), WALL_EPOCH)
        .expect("seals")
        .expect("due");
    no_route.handle_network_said(NetworkSaid::NoRoute);
    no_route.handle_send_error(t0 + ms(1));
    assert!(!no_route.is_finished(), "a route may come back");
    assert_eq!(no_route.poll_timeout(), Some(t0 + secs(1)));
    no_route.handle_timeout(t0 + secs(1));
    assert!(no_route.is_send_due(), "the next attempt still goes out");
}
