//! A minimal SNTP client (RFC 4330): when an activation goes unanswered, the first suspect is
//! this machine's clock, since the server allows only 30 s.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// Seconds from 1900 (NTP's era 0) to 1970.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SntpError {
    #[error("cannot reach the time server {server}: {source}")]
    Io {
        server: String,
        source: std::io::Error,
    },
    #[error("no answer from the time server {server} within {timeout_ms} ms")]
    Timeout { server: String, timeout_ms: u128 },
    #[error("the time server {server} sent an invalid answer ({reason})")]
    Invalid {
        server: String,
        reason: &'static str,
    },
}

/// The server's time in UNIX seconds (whole seconds: the 30-second window makes finer useless).
/// Exactly one 48-byte request is sent (RFC 4330 client mode). `transmit` goes in its
/// Transmit Timestamp, which the server echoes as the Originate Timestamp: an answer that does
/// not echo it is not an answer to this request (RFC 4330 §5), so random bytes there keep an
/// off-path sender from passing a forged time.
pub async fn query(
    server: SocketAddr,
    timeout: Duration,
    transmit: [u8; 8],
) -> Result<u64, SntpError> {
    let name = server.to_string();
    let io = |source| SntpError::Io {
        server: name.clone(),
        source,
    };
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    let mut request = [0u8; 48];
    request[0] = 0b00_100_011; // LI 0, version 4, mode 3 (client)
    request[TRANSMIT].copy_from_slice(&transmit);
    socket.send(&request).await.map_err(io)?;
    let mut answer = [0u8; 68];
    let len = tokio::time::timeout(timeout, socket.recv(&mut answer))
        .await
        .map_err(|_| SntpError::Timeout {
            server: name.clone(),
            timeout_ms: timeout.as_millis(),
        })?
        .map_err(io)?;
    parse(&answer[..len], transmit).map_err(|reason| SntpError::Invalid {
        server: name,
        reason,
    })
}

/// Where the answer echoes the request's Transmit Timestamp.
const ORIGINATE: std::ops::Range<usize> = 24..32;
/// The Transmit Timestamp: the request's nonce going out, the server's time coming back.
const TRANSMIT: std::ops::Range<usize> = 40..48;

/// Reads the transmit timestamp of an SNTP answer to the request sent with `transmit`.
pub fn parse(answer: &[u8], transmit: [u8; 8]) -> Result<u64, &'static str> {
    if answer.len() < 48 {
        return Err("shorter than 48 bytes");
    }
    if answer[ORIGINATE] != transmit {
        return Err("not an answer to this request (originate timestamp)");
    }
    let mode = answer[0] & 0b111;
    if mode != 4 && mode != 5 {
        return Err("not a server answer");
    }
    if answer[0] >> 6 == 3 || answer[1] == 0 {
        return Err("server not synchronised (kiss-o'-death or alarm)");
    }
    let seconds = u64::from(u32::from_be_bytes([
        answer[TRANSMIT.start],
        answer[TRANSMIT.start + 1],
        answer[TRANSMIT.start + 2],
        answer[TRANSMIT.start + 3],
    ]));
    if seconds == 0 {
        return Err("no transmit time");
    }
    // Era 1 starts in 2036: a small value means the counter wrapped.
    let seconds = if seconds < NTP_UNIX_OFFSET {
        seconds + (1 << 32)
    } else {
        seconds
    };
    Ok(seconds - NTP_UNIX_OFFSET)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 8] = [9, 8, 7, 6, 5, 4, 3, 2];

    fn answer(unix: u64) -> [u8; 48] {
        let mut a = [0u8; 48];
        a[ORIGINATE].copy_from_slice(&NONCE);
        a[0] = 0b00_100_100;
        a[1] = 2;
        let ntp = u32::try_from((unix + NTP_UNIX_OFFSET) % (1 << 32)).expect("fits");
        a[40..44].copy_from_slice(&ntp.to_be_bytes());
        a
    }

    #[test]
    fn parses_transmit_time_across_the_2036_wrap() {
        assert_eq!(parse(&answer(1_795_000_000), NONCE), Ok(1_795_000_000));
        assert_eq!(
            parse(&answer(2_100_000_000), NONCE),
            Ok(2_100_000_000),
            "after 2036"
        );
    }

    #[test]
    fn refuses_what_is_not_a_usable_answer() {
        assert!(parse(&[0; 47], NONCE).is_err());
        let mut a = answer(1_795_000_000);
        a[0] = 0b00_100_011;
        assert!(parse(&a, NONCE).is_err(), "client mode");
        let mut a = answer(1_795_000_000);
        a[1] = 0;
        assert!(parse(&a, NONCE).is_err(), "stratum 0");
        assert_eq!(
            parse(&answer(1_795_000_000), [0; 8]),
            Err("not an answer to this request (originate timestamp)"),
            "an answer that does not echo the request's nonce"
        );
    }

    #[tokio::test]
    async fn queries_a_server_on_loopback() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let (seen_tx, seen) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut buffer = [0u8; 64];
            if let Ok((len, from)) = server.recv_from(&mut buffer).await {
                let _ = seen_tx.send(buffer[..len].to_vec());
                drop(server.send_to(&answer(1_800_000_000), from).await);
            }
        });
        assert_eq!(
            query(addr, Duration::from_secs(2), NONCE)
                .await
                .expect("answer"),
            1_800_000_000
        );
        let request = seen.await.expect("the server saw the request");
        assert_eq!(request.len(), 48, "RFC 4330: one 48-byte request");
        assert_eq!(request[0], 0b00_100_011, "version 4, client mode");
        assert_eq!(request[TRANSMIT], NONCE, "the nonce in Transmit Timestamp");
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let err = query(
            silent.local_addr().expect("addr"),
            Duration::from_millis(100),
            NONCE,
        )
        .await
        .expect_err("silence");
        assert!(matches!(err, SntpError::Timeout { .. }), "{err}");
    }
}
