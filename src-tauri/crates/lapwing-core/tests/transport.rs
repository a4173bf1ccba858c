//! The UDP exchange against servers that answer late, twice, with junk, or not at all.
#![allow(
    clippy::match_wildcard_for_single_variants,
    reason = "a failing test prints whatever outcome came"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lap_proto::{Request, SeedV1, ServerSecretKeys, Uuid, open_request};
use lapwing_core::clock::FakeClock;
use lapwing_core::transport::{
    Entropy, NetworkSaid, RetryPolicy, ServerOutcome, TransportError, exchange,
};
use tokio::net::UdpSocket;
use zeroize::Zeroizing;

#[derive(Debug, Default)]
struct CountingEntropy(AtomicUsize);

impl Entropy for CountingEntropy {
    fn fill(&self, buffer: &mut [u8]) -> Result<(), TransportError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        buffer.fill(u8::try_from(n % 250).unwrap_or(0) + 1);
        Ok(())
    }
}

fn keys() -> Arc<ServerSecretKeys> {
    Arc::new(ServerSecretKeys::from_bytes([0x31; 32], &[0x32; 32]))
}

fn request(now: u64) -> Request {
    let seed = SeedV1 {
        decoded_key: [1; 16],
        machine_hash: [2; 32],
        num_cpus: 1,
        num_cores: 2,
        install_nonce: [3; 16],
    };
    Request {
        client_time: now,
        client_base_id: Uuid::from_u128(10),
        client_addon_id: Uuid::nil(),
        sku_id: Uuid::from_u128(20),
        current_license_id: Uuid::nil(),
        client_seed: Zeroizing::new(seed.encode(128).expect("room").to_vec()),
    }
}

fn policy(attempts: usize, wait_ms: u64) -> RetryPolicy {
    RetryPolicy {
        waits: vec![Duration::from_millis(wait_ms); attempts],
    }
}

/// A scripted server: for the n-th request received (from 0), `script(n)` says what to do.
#[derive(Clone, Copy, Debug)]
enum Act {
    Ignore,
    Answer,
    AnswerAfter(u64),
    JunkThenAnswer(usize),
    AnswerTwice,
}

async fn scripted_server(script: fn(usize) -> Act) -> SocketAddr {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let addr = socket.local_addr().expect("addr");
    let keys = keys();
    tokio::spawn(async move {
        let mut buffer = [0u8; 2048];
        let mut n = 0;
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            let (req, sealer) = open_request(&keys, &buffer[..len]).expect("valid request");
            let answer = sealer
                .seal(&keys, req.client_time, Uuid::from_u128(0x77), &[])
                .expect("seal");
            let act = script(n);
            n += 1;
            let socket = Arc::clone(&socket);
            tokio::spawn(async move {
                match act {
                    Act::Ignore => {}
                    Act::Answer => drop(socket.send_to(&answer, from).await),
                    Act::AnswerAfter(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        drop(socket.send_to(&answer, from).await);
                    }
                    Act::JunkThenAnswer(k) => {
                        for i in 0..k {
                            let junk = vec![u8::try_from(i % 256).unwrap_or(0); 64 + i % 300];
                            drop(socket.send_to(&junk, from).await);
                        }
                        drop(socket.send_to(&answer, from).await);
                    }
                    Act::AnswerTwice => {
                        drop(socket.send_to(&answer, from).await);
                        drop(socket.send_to(&answer, from).await);
                    }
                }
            });
        }
    });
    addr
}

async fn run(server: SocketAddr, policy: &RetryPolicy) -> ServerOutcome {
    let clock = FakeClock::at(1_795_000_000);
    let entropy = CountingEntropy::default();
    exchange(server, keys().public(), &request, &clock, &entropy, policy)
        .await
        .expect("exchange runs")
}

#[tokio::test]
async fn a_prompt_answer_activates_on_the_first_attempt() {
    let server = scripted_server(|_| Act::Answer).await;
    match run(server, &policy(3, 500)).await {
        ServerOutcome::Answered {
            activation,
            attempts,
        } => {
            assert_eq!(attempts, 1);
            assert_eq!(activation.response.license_id, Uuid::from_u128(0x77));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn lost_requests_are_retried_with_fresh_requests() {
    let server = scripted_server(|n| if n < 2 { Act::Ignore } else { Act::Answer }).await;
    match run(server, &policy(3, 150)).await {
        ServerOutcome::Answered { attempts, .. } => assert_eq!(attempts, 3),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_late_answer_to_an_earlier_attempt_is_accepted() {
    // Attempt 1 is answered 250 ms late (after attempt 2 went out); attempt 2 is ignored.
    let server = scripted_server(|n| {
        if n == 0 {
            Act::AnswerAfter(250)
        } else {
            Act::Ignore
        }
    })
    .await;
    match run(server, &policy(3, 150)).await {
        ServerOutcome::Answered { attempts, .. } => {
            assert_eq!(attempts, 2, "accepted while waiting on attempt 2");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn junk_and_duplicates_do_not_derail_an_exchange() {
    let server = scripted_server(|_| Act::JunkThenAnswer(200)).await;
    assert!(matches!(
        run(server, &policy(2, 1000)).await,
        ServerOutcome::Answered { attempts: 1, .. }
    ));
    let server = scripted_server(|_| Act::AnswerTwice).await;
    assert!(matches!(
        run(server, &policy(2, 1000)).await,
        ServerOutcome::Answered { attempts: 1, .. }
    ));
}

#[tokio::test]
async fn silence_is_reported_after_every_attempt() {
    let server = scripted_server(|_| Act::Ignore).await;
    match run(server, &policy(3, 60)).await {
        ServerOutcome::Silent {
            attempts, rejected, ..
        } => assert_eq!((attempts, rejected), (3, 0)),
        other => panic!("{other:?}"),
    }
    // Nobody listening at all: ICMP port unreachable ends the exchange after the first
    // attempt (the retries would meet the same refusal), without an error.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("addr");
    match run(closed, &policy(2, 60)).await {
        ServerOutcome::Silent {
            attempts, network, ..
        } => {
            assert_eq!(attempts, 1);
            // …and what the network said is kept: nothing listens there.
            assert_eq!(network, Some(NetworkSaid::Refused));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_forged_answer_is_counted_as_rejected_not_accepted() {
    let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let server = socket.local_addr().expect("addr");
    let impostor = ServerSecretKeys::from_bytes([0x31; 32], &[0x99; 32]);
    let real = keys();
    tokio::spawn(async move {
        let mut buffer = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            // The impostor read the request (say, it stole the X25519 key) but signs with a
            // key of its own.
            let (req, sealer) = open_request(&real, &buffer[..len]).expect("opens");
            let forged = sealer
                .seal(&impostor, req.client_time, Uuid::from_u128(1), &[])
                .expect("seal");
            drop(socket.send_to(&forged, from).await);
        }
    });
    match run(server, &policy(2, 100)).await {
        ServerOutcome::Silent {
            rejected,
            last_rejection,
            ..
        } => {
            assert_eq!(rejected, 2);
            assert!(last_rejection.unwrap_or_default().contains("signature"));
        }
        other => panic!("{other:?}"),
    }
}
