//! The UDP exchange with one server: a socket driver for the retry rules of [`crate::retry`].
//! It owns the socket, the timers, the wall clock (ClientTime) and the randomness (ephemeral
//! keys); what to send when and which answer to accept is decided by [`Attempts`].

use std::net::SocketAddr;
use std::time::Instant;

use lap_proto::{EphemeralSecret, ProtoError, ServerPublicKeys};
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::retry::{Attempts, BuildRequest, Received};
pub use crate::retry::{NetworkSaid, RetryPolicy, ServerOutcome};

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

/// Sends up to `policy.waits.len()` fresh requests to `server`, returning the first answer
/// that opens under any attempt's keys.
pub async fn exchange(
    server: SocketAddr,
    keys: &ServerPublicKeys,
    build_request: &BuildRequest<'_>,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
    policy: &RetryPolicy,
) -> Result<ServerOutcome, TransportError> {
    let socket = match connected_socket(server).await {
        Ok(socket) => socket,
        // No route to the address at all: the network's word, not a local fault.
        Err(TransportError::Socket(e)) if NetworkSaid::of(&e).is_some() => {
            tracing::debug!(%server, error = %e, "cannot connect");
            return Ok(ServerOutcome::Silent {
                attempts: 0,
                rejected: 0,
                last_rejection: None,
                network: NetworkSaid::of(&e),
            });
        }
        Err(e) => return Err(e),
    };
    let mut attempts = Attempts::new(keys, build_request, policy);
    let mut buffer = [0u8; 2048];
    loop {
        if attempts.is_send_due() {
            send_attempt(&socket, server, &mut attempts, clock, entropy).await?;
        }
        let Some(deadline) = attempts.poll_timeout() else {
            break;
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
            Err(_elapsed) => attempts.handle_timeout(monotonic_now()),
            Ok(Ok(len)) => {
                if let Received::Rejected(e) =
                    attempts.handle_datagram(monotonic_now(), &buffer[..len])
                {
                    tracing::warn!(%server, reason = %e, "ignored a datagram that did not open");
                }
            }
            Ok(Err(e)) => {
                tracing::debug!(%server, error = %e, "recv failed");
                if let Some(said) = NetworkSaid::of(&e) {
                    attempts.handle_network_said(said);
                }
                attempts.handle_recv_error(monotonic_now());
                if attempts.is_finished() {
                    break;
                }
                // A socket that keeps failing must not spin: wait out the attempt instead.
                tokio::time::sleep_until(deadline).await;
                attempts.handle_timeout(monotonic_now());
            }
        }
    }
    Ok(attempts.into_outcome())
}

/// Connected: the kernel drops datagrams from any other address or port.
async fn connected_socket(server: SocketAddr) -> Result<UdpSocket, TransportError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(TransportError::Socket)?;
    socket
        .connect(server)
        .await
        .map_err(TransportError::Socket)?;
    Ok(socket)
}

/// Sends the attempt that is due, with a fresh ephemeral key and the ClientTime of now.
async fn send_attempt(
    socket: &UdpSocket,
    server: SocketAddr,
    attempts: &mut Attempts<'_>,
    clock: &dyn Clock,
    entropy: &dyn Entropy,
) -> Result<(), TransportError> {
    let mut secret = Zeroizing::new([0u8; 32]);
    entropy.fill(secret.as_mut_slice())?;
    let ephemeral = EphemeralSecret::from_bytes(*secret);
    let Some(datagram) = attempts
        .poll_transmit(monotonic_now(), &ephemeral, clock.now())
        .map_err(TransportError::Request)?
    else {
        return Ok(());
    };
    if let Err(e) = socket.send(&datagram).await {
        tracing::debug!(%server, error = %e, "send failed");
        if let Some(said) = NetworkSaid::of(&e) {
            attempts.handle_network_said(said);
        }
        attempts.handle_send_error(monotonic_now());
    }
    Ok(())
}

/// Tokio's clock, so that the deadlines and the timers agree (also when a test pauses time).
fn monotonic_now() -> Instant {
    tokio::time::Instant::now().into_std()
}
