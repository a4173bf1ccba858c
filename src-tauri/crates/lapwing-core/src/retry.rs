//! The retry rules of one exchange with one server (profile §1), without I/O, in the manner of
//! quinn-proto: the driver asks [`Attempts::poll_transmit`] what to send and
//! [`Attempts::poll_timeout`] when to come back, and feeds what happens to the `handle_*`
//! methods. Time comes in as `now`, the ClientTime and the ephemeral key of each attempt come in
//! as arguments, so every rule is tested on virtual time (`tests/retry.rs`).
//!
//! - Each attempt is a fresh request: a new ephemeral key and the ClientTime of its sending.
//! - The keys of every attempt stay valid: a late answer to an earlier attempt is accepted.
//! - Whatever does not open is ignored, counted as rejected with the last reason.
//! - A send or receive error is one more unanswered attempt, not a reason to stop.
//! - After the last attempt's wait, the server is silent.

use std::time::{Duration, Instant};

use lap_proto::{
    Activation, EphemeralSecret, PendingExchange, ProtoError, Request, ServerPublicKeys, open_any,
    seal_request,
};

/// How hard to try one server.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// How long to wait after each attempt; one attempt per entry.
    pub waits: Vec<Duration>,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting 1, 2 and 4 s: a lost datagram costs a second, a dead server 7.
    fn default() -> Self {
        Self {
            waits: vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(4),
            ],
        }
    }
}

/// What happened with one server.
#[derive(Debug)]
pub enum ServerOutcome {
    Answered {
        activation: Box<Activation>,
        attempts: usize,
    },
    /// Nothing that opened came back. `rejected` counts datagrams that arrived but failed a
    /// check, with the last reason: a forged or broken answer, not silence.
    Silent {
        attempts: usize,
        rejected: usize,
        last_rejection: Option<String>,
        /// What the network said of the datagrams sent, if it said anything (the latest word).
        network: Option<NetworkSaid>,
    },
}

/// What the network said about a datagram sent to a server: an ICMP error, which Linux
/// reports on a connected UDP socket's next send or receive. Evidence, unlike silence: a
/// refusal means nothing listens at that address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkSaid {
    /// ICMP port unreachable (ECONNREFUSED): the host is there, no server listens.
    Refused,
    /// ICMP host or network unreachable (EHOSTUNREACH, ENETUNREACH), or no route at all.
    NoRoute,
}

impl NetworkSaid {
    /// What a socket error says about the server, if anything.
    pub fn of(error: &std::io::Error) -> Option<Self> {
        use std::io::ErrorKind;
        match error.kind() {
            ErrorKind::ConnectionRefused => Some(Self::Refused),
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => Some(Self::NoRoute),
            _ => None,
        }
    }
}

/// Builds the request of one attempt from its ClientTime (UNIX seconds).
pub type BuildRequest<'a> = dyn Fn(u64) -> Request + Send + Sync + 'a;

/// What became of a received datagram.
#[derive(Debug)]
pub enum Received {
    /// It answers one of the attempts: the exchange is over.
    Accepted,
    /// It did not open under any attempt's keys; the exchange goes on.
    Rejected(ProtoError),
    /// The exchange had already ended.
    Ignored,
}

enum Phase {
    /// The next attempt goes out at the next `poll_transmit`.
    SendDue,
    /// The latest attempt is out and its wait ends at `until`.
    Waiting {
        until: Instant,
    },
    Answered(Box<Activation>),
    /// Every attempt's wait ended without an answer.
    GaveUp,
}

/// The attempts at one server: what to send when, which answer to accept, when to give up.
pub struct Attempts<'a> {
    keys: &'a ServerPublicKeys,
    build_request: &'a BuildRequest<'a>,
    waits: &'a [Duration],
    /// One per attempt sent, in order; every one can still open an answer.
    sent: Vec<PendingExchange>,
    rejected: usize,
    last_rejection: Option<String>,
    transport_errors: usize,
    network: Option<NetworkSaid>,
    phase: Phase,
}

impl std::fmt::Debug for Attempts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match &self.phase {
            Phase::SendDue => "send due",
            Phase::Waiting { .. } => "waiting",
            Phase::Answered(_) => "answered",
            Phase::GaveUp => "gave up",
        };
        f.debug_struct("Attempts")
            .field("sent", &self.sent.len())
            .field("planned", &self.waits.len())
            .field("rejected", &self.rejected)
            .field("transport_errors", &self.transport_errors)
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}

impl<'a> Attempts<'a> {
    /// The first attempt is due at once (unless the policy allows none).
    pub fn new(
        keys: &'a ServerPublicKeys,
        build_request: &'a BuildRequest<'a>,
        policy: &'a RetryPolicy,
    ) -> Self {
        Self {
            keys,
            build_request,
            waits: &policy.waits,
            sent: Vec::with_capacity(policy.waits.len()),
            rejected: 0,
            last_rejection: None,
            transport_errors: 0,
            network: None,
            phase: if policy.waits.is_empty() {
                Phase::GaveUp
            } else {
                Phase::SendDue
            },
        }
    }

    /// Whether `poll_transmit` would send: the driver draws an ephemeral key only then.
    pub fn is_send_due(&self) -> bool {
        matches!(self.phase, Phase::SendDue)
    }

    /// The datagram of the attempt that is due, sealed with `ephemeral` and stamped with
    /// `client_time` (the wall clock at `now`), or `None` when no attempt is due. Its wait
    /// starts at `now`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        ephemeral: &EphemeralSecret,
        client_time: u64,
    ) -> Result<Option<Vec<u8>>, ProtoError> {
        if !self.is_send_due() {
            return Ok(None);
        }
        let wait = self.waits[self.sent.len()];
        let request = (self.build_request)(client_time);
        let (datagram, pending) = seal_request(self.keys, &request, ephemeral)?;
        self.sent.push(pending);
        self.phase = Phase::Waiting { until: now + wait };
        Ok(Some(datagram))
    }

    /// When the driver must call `handle_timeout`; `None` once nothing is left to wait for.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            Phase::SendDue | Phase::Answered(_) | Phase::GaveUp => None,
        }
    }

    /// The latest attempt's wait ended (if `now` is past it): the next attempt is due, or,
    /// after the last one, the server is silent. An early wake-up changes nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Phase::Waiting { until } = self.phase
            && now >= until
        {
            self.phase = if self.sent.len() < self.waits.len() {
                Phase::SendDue
            } else {
                Phase::GaveUp
            };
        }
    }

    /// A datagram from the server's address: an answer to any attempt so far ends the
    /// exchange; anything else is counted and ignored.
    pub fn handle_datagram(&mut self, _now: Instant, datagram: &[u8]) -> Received {
        if self.is_finished() {
            return Received::Ignored;
        }
        match open_any(&self.sent, datagram) {
            Ok((_, activation)) => {
                self.phase = Phase::Answered(Box::new(activation));
                Received::Accepted
            }
            Err(e) => {
                self.rejected += 1;
                self.last_rejection = Some(e.to_string());
                Received::Rejected(e)
            }
        }
    }

    /// Sending the latest attempt failed (no route, or an ICMP error of an earlier attempt
    /// reported on this send). Its wait still runs: an earlier attempt may yet be answered,
    /// and a network without a route must not turn the retries into a busy loop.
    pub fn handle_send_error(&mut self, _now: Instant) {
        self.transport_errors += 1;
    }

    /// Receiving failed (Linux reports an earlier ICMP port-unreachable here). The attempts
    /// stay in flight and the waits unchanged.
    pub fn handle_recv_error(&mut self, _now: Instant) {
        self.transport_errors += 1;
    }

    /// The network said something of this server (an ICMP error read from the socket), kept
    /// for the diagnosis. A refusal ends the exchange: nothing listens at that port, so the
    /// retries would only meet the same refusal and keep a server that a person chose
    /// holding the floor for the whole schedule before the next one is asked (see `race`).
    /// No route goes on as any send or receive error does: a route may come back (a VPN
    /// connecting, a link coming up) within the schedule.
    pub fn handle_network_said(&mut self, said: NetworkSaid) {
        self.network = Some(said);
        if said == NetworkSaid::Refused && !self.is_finished() {
            self.phase = Phase::GaveUp;
        }
    }

    /// Answered, or given up after the last wait.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Answered(_) | Phase::GaveUp)
    }

    /// How many send and receive errors the exchange has absorbed.
    pub fn transport_errors(&self) -> usize {
        self.transport_errors
    }

    /// The outcome so far: the answer if one came, else silence over the attempts sent.
    pub fn into_outcome(self) -> ServerOutcome {
        match self.phase {
            Phase::Answered(activation) => ServerOutcome::Answered {
                activation,
                attempts: self.sent.len(),
            },
            Phase::SendDue | Phase::Waiting { .. } | Phase::GaveUp => ServerOutcome::Silent {
                attempts: self.sent.len(),
                rejected: self.rejected,
                last_rejection: self.last_rejection,
                network: self.network,
            },
        }
    }
}
