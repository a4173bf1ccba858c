//! A hostile or broken LAP server: it opens real requests with the vendor's secret keys
//! (so it knows each exchange's answer key) and answers with crafted datagrams.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use lap_proto::{Response, ResponseSealer, ServerSecretKeys, Uuid, open_request};
use zeroize::Zeroizing;

use crate::netfault::Rng;
use crate::{BASE_SKU, Vendor, unix_now};

/// One way to answer badly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attack {
    /// A well-formed answer whose signature has one bit flipped.
    BadSignature,
    /// Random ciphertext and tag under a valid signature by the vendor's key.
    SignedGarbage,
    /// Signed and sealed under the right keys, but the plaintext is random bytes.
    SealedGarbage,
    /// Correct in every way but the echoed ClientId.
    WrongClientId,
    /// Correct in every way but the echoed SKUId.
    WrongSku,
    /// ServerData whose one record runs past the end.
    MalformedTlv,
    /// A valid answer whose NotAfter is a day before the server's time.
    NotAfterInThePast,
    /// A valid answer sealed with ServerData that makes it longer than the request.
    LargerThanRequest,
    /// A valid answer, sent from another port of the same address.
    FromAnotherPort,
    /// A valid answer, sent from another loopback address (127.0.0.2).
    FromAnotherAddress,
    /// 500 junk datagrams to the client's port per request, and nothing else.
    JunkFlood,
    /// 50 junk datagrams, then a valid answer: the junk must not hide it.
    JunkFloodThenAnswer,
}

impl Attack {
    pub const ALL: [Self; 12] = [
        Self::BadSignature,
        Self::SignedGarbage,
        Self::SealedGarbage,
        Self::WrongClientId,
        Self::WrongSku,
        Self::MalformedTlv,
        Self::NotAfterInThePast,
        Self::LargerThanRequest,
        Self::FromAnotherPort,
        Self::FromAnotherAddress,
        Self::JunkFlood,
        Self::JunkFloodThenAnswer,
    ];
}

/// The vendor's secret keys, read as `lapd` reads them (hex, one file each).
pub fn secret_keys(vendor: &Vendor) -> (ServerSecretKeys, SigningKey) {
    let read = |name: &str| -> [u8; 32] {
        let text = std::fs::read_to_string(vendor.dir.path().join("keys").join(name))
            .expect("secret key file");
        hex::decode(text.trim())
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    let (x, ed) = (read("x25519.key"), read("ed25519.key"));
    (
        ServerSecretKeys::from_bytes(x, &ed),
        SigningKey::from_bytes(&ed),
    )
}

/// A good ServerData: a term license for a year.
pub fn term_server_data(not_after: u64) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&[0x01, 5, 0]);
    data.extend_from_slice(&not_after.to_le_bytes()[..5]);
    data.extend_from_slice(&[0x03, 1, 0, 1]);
    data
}

/// A running hostile server on 127.0.0.1; stopped on drop.
pub struct HostileServer {
    pub addr: SocketAddr,
    /// Requests it opened.
    pub requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HostileServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostileServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HostileServer {
    pub fn start(vendor: &Vendor, attack: Attack, seed: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let (keys, signing) = secret_keys(vendor);
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, requests) = (Arc::clone(&stop), Arc::clone(&requests));
            std::thread::spawn(move || {
                let other_port = UdpSocket::bind("127.0.0.1:0").expect("second socket");
                let other_address = UdpSocket::bind("127.0.0.2:0").expect("127.0.0.2 socket");
                let mut rng = Rng::new(seed);
                let mut buffer = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((len, client)) = socket.recv_from(&mut buffer) else {
                        continue;
                    };
                    let Ok((request, sealer)) = open_request(&keys, &buffer[..len]) else {
                        continue;
                    };
                    requests.fetch_add(1, Ordering::Relaxed);
                    let crafted = Crafted {
                        keys: &keys,
                        signing: &signing,
                        sealer: &sealer,
                        client_id: request.client_id(),
                        sku: request.sku_id,
                        request_len: len,
                    };
                    let answer = crafted.answer(attack, &mut rng);
                    let from = match attack {
                        Attack::FromAnotherPort => &other_port,
                        Attack::FromAnotherAddress => &other_address,
                        _ => &socket,
                    };
                    // 500 junk datagrams overflow the client's socket buffer (Linux default
                    // 208 KiB), so an answer behind them is lost to the kernel; 50 fit.
                    let junk = match attack {
                        Attack::JunkFlood => 500,
                        Attack::JunkFloodThenAnswer => 50,
                        _ => 0,
                    };
                    {
                        for _ in 0..junk {
                            let mut junk =
                                vec![0u8; 1 + usize::try_from(rng.next_u64() % 1199).unwrap_or(0)];
                            rng.fill(&mut junk);
                            let _ = socket.send_to(&junk, client);
                        }
                    }
                    if let Some(answer) = answer {
                        let _ = from.send_to(&answer, client);
                    }
                }
            })
        };
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Crafted<'a> {
    keys: &'a ServerSecretKeys,
    signing: &'a SigningKey,
    sealer: &'a ResponseSealer,
    client_id: Uuid,
    sku: Uuid,
    request_len: usize,
}

impl Crafted<'_> {
    fn plaintext(client_id: Uuid, sku: Uuid, server_data: &[u8]) -> Zeroizing<Vec<u8>> {
        Response {
            server_time: unix_now(),
            client_id,
            sku_id: sku,
            license_id: Uuid::from_u128(0x4057_11e0),
            server_data: Zeroizing::new(server_data.to_vec()),
        }
        .encode()
        .expect("response encodes")
    }

    fn answer(&self, attack: Attack, rng: &mut Rng) -> Option<Vec<u8>> {
        let now = unix_now();
        let good = term_server_data(now + 365 * 86_400);
        let valid = || {
            self.sealer
                .seal_raw(self.keys, &Self::plaintext(self.client_id, self.sku, &good))
        };
        Some(match attack {
            Attack::BadSignature => {
                let mut d = valid();
                d[0] ^= 0x01;
                d
            }
            Attack::SignedGarbage => {
                let mut body = vec![0u8; valid().len() - 64];
                rng.fill(&mut body);
                let signature = self.signing.sign(&body);
                let mut d = signature.to_bytes().to_vec();
                d.extend_from_slice(&body);
                d
            }
            Attack::SealedGarbage => {
                let mut plain = vec![0u8; 80];
                rng.fill(&mut plain);
                self.sealer.seal_raw(self.keys, &plain)
            }
            Attack::WrongClientId => self.sealer.seal_raw(
                self.keys,
                &Self::plaintext(Uuid::from_u128(0xbad), self.sku, &good),
            ),
            Attack::WrongSku => {
                let other = if self.sku == BASE_SKU {
                    crate::ADDON_SKU
                } else {
                    BASE_SKU
                };
                self.sealer
                    .seal_raw(self.keys, &Self::plaintext(self.client_id, other, &good))
            }
            Attack::MalformedTlv => self.sealer.seal_raw(
                self.keys,
                &Self::plaintext(self.client_id, self.sku, &[0x05, 40, 0, b'p', b'r', b'o']),
            ),
            Attack::NotAfterInThePast => self.sealer.seal_raw(
                self.keys,
                &Self::plaintext(self.client_id, self.sku, &term_server_data(now - 86_400)),
            ),
            Attack::LargerThanRequest => {
                // A vendor record (kept, never rejected for its content) big enough to make
                // the datagram outgrow the request by a few bytes.
                let mut data = good.clone();
                let pad = self.request_len.saturating_sub(valid().len()) + 8;
                data.push(0x80);
                data.extend_from_slice(&u16::try_from(pad).unwrap_or(u16::MAX).to_le_bytes());
                data.resize(data.len() + pad, 0x42);
                let d = self
                    .sealer
                    .seal_raw(self.keys, &Self::plaintext(self.client_id, self.sku, &data));
                assert!(
                    d.len() > self.request_len,
                    "the answer outgrows the request"
                );
                d
            }
            Attack::FromAnotherPort | Attack::FromAnotherAddress | Attack::JunkFloodThenAnswer => {
                valid()
            }
            Attack::JunkFlood => return None,
        })
    }
}
