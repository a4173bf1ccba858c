//! The UDP exchange with retries (profile §1): each attempt is a fresh request (new
//! ephemeral key, current ClientTime); the keys of every attempt stay valid, so a late answer
//! to an earlier attempt is accepted; anything that does not open is ignored.

use std::net::SocketAddr;
use std::time::Duration;

use lap_proto::{
    Activation, EphemeralSecret, PendingExchange, ProtoError, Request, ServerPublicKeys, open_any,
    seal_request,
};
use tokio::net::UdpSocket;

use crate::clock::Clock;

/// Randomness, injected so that tests can fix ephemeral keys.
pub trait Entropy: Send + Sync + std::fmt::Debug {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), TransportError>;
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), TransportError> {
        getrandom::fill(buffer).map_err(|e| TransportError::Random(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    #[error("cannot build the request: {0}")]
    Request(ProtoError),
}

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
    },
}

/// Sends up to `policy.waits.len()` fresh requests to `server`, returning the first answer
/// that opens under any attempt's keys.
pub async fn exchange(
    server: SocketAddr,
    keys: &ServerPublicKeys,
    build_request: &(dyn Fn(u64) -> Request + Send + Sync),
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    policy: &RetryPolicy,
) -> Result<ServerOutcome, TransportError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(TransportError::Socket)?;
    // Connected: the kernel drops datagrams from any other address or port.
    socket
        .connect(server)
        .await
        .map_err(TransportError::Socket)?;
    let mut pending: Vec<PendingExchange> = Vec::with_capacity(policy.waits.len());
    let mut buffer = [0u8; 2048];
    let (mut rejected, mut last_rejection) = (0, None);
    for (attempt, wait) in policy.waits.iter().enumerate() {
        let mut secret = [0u8; 32];
        entropy.fill(&mut secret)?;
        let request = build_request(clock.now());
        let (datagram, exchange) =
            seal_request(keys, &request, &EphemeralSecret::from_bytes(secret))
                .map_err(TransportError::Request)?;
        pending.push(exchange);
        // A send error (no route, ICMP unreachable from an earlier attempt) is one more
        // unanswered attempt, not a reason to stop.
        if let Err(e) = socket.send(&datagram).await {
            tracing::debug!(%server, error = %e, "send failed");
        }
        let deadline = tokio::time::Instant::now() + *wait;
        loop {
            let received = tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await;
            let len = match received {
                Err(_) => break,
                Ok(Err(e)) => {
                    tracing::debug!(%server, error = %e, "recv failed");
                    // Linux reports an earlier ICMP port-unreachable here: wait out the rest.
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Ok(Ok(len)) => len,
            };
            match open_any(&pending, &buffer[..len]) {
                Ok((_, activation)) => {
                    return Ok(ServerOutcome::Answered {
                        activation: Box::new(activation),
                        attempts: attempt + 1,
                    });
                }
                Err(e) => {
                    rejected += 1;
                    tracing::warn!(%server, reason = %e, "ignored a datagram that did not open");
                    last_rejection = Some(e.to_string());
                }
            }
        }
    }
    Ok(ServerOutcome::Silent {
        attempts: policy.waits.len(),
        rejected,
        last_rejection,
    })
}
