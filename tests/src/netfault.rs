//! A userspace UDP proxy that loses, delays, reorders and duplicates datagrams: this kernel
//! has no `netem` qdisc, so the faults are made here, between a client and a server on
//! loopback. Every decision comes from a seeded generator, so a run can be replayed.

use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A small deterministic generator (SplitMix64): no dependency, same draws for a seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p` (0.0..=1.0).
    pub fn chance(&mut self, p: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        #[allow(clippy::cast_precision_loss, reason = "53 bits fit an f64 exactly")]
        let draw = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        draw < p
    }

    /// A duration uniformly in `0..=max`.
    pub fn upto(&mut self, max: Duration) -> Duration {
        let micros = u64::try_from(max.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.next_u64() % micros.saturating_add(1))
    }

    pub fn fill(&mut self, buffer: &mut [u8]) {
        for chunk in buffer.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// What the proxy does to every datagram, in both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Probability that a datagram is dropped.
    pub loss: f64,
    /// Fixed delay added to every datagram.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per datagram.
    pub jitter: Duration,
    /// Probability that a datagram is held back `reorder_by` longer than it would be, so the
    /// ones sent after it overtake it.
    pub reorder: f64,
    pub reorder_by: Duration,
    /// Probability that a datagram is sent twice (the copy with its own delay).
    pub duplicate: f64,
}

/// What the proxy did, both directions together.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub sent: AtomicU64,
}

struct Scheduled {
    at: Instant,
    seq: u64,
    to_server: bool,
    bytes: Vec<u8>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and the earliest deadline must come out first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct Shared {
    faults: Faults,
    rng: Mutex<Rng>,
    queue: Mutex<(BinaryHeap<Scheduled>, u64)>,
    wake: Condvar,
    stop: AtomicBool,
    client: Mutex<Option<SocketAddr>>,
    stats: ProxyStats,
}

impl Shared {
    fn enqueue(&self, to_server: bool, bytes: &[u8]) {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let f = self.faults;
        let mut plans = Vec::with_capacity(2);
        {
            let mut rng = self
                .rng
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if rng.chance(f.loss) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let copies = if rng.chance(f.duplicate) {
                self.stats.duplicated.fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
            for _ in 0..copies {
                let mut delay = f.delay + rng.upto(f.jitter);
                if rng.chance(f.reorder) {
                    self.stats.reordered.fetch_add(1, Ordering::Relaxed);
                    delay += f.reorder_by;
                }
                plans.push(Instant::now() + delay);
            }
        }
        let mut queue = self
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for at in plans {
            queue.1 += 1;
            let seq = queue.1;
            queue.0.push(Scheduled {
                at,
                seq,
                to_server,
                bytes: bytes.to_vec(),
            });
        }
        self.wake.notify_one();
    }
}

/// A running proxy: clients send to `addr`, it forwards to the server; stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("faults", &self.shared.faults)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Starts a proxy on 127.0.0.1 in front of `server`. Answers go back to the client that
    /// sent last (one client at a time, which is how the fault tests use it).
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("proxy front socket");
        let back = UdpSocket::bind("127.0.0.1:0").expect("proxy back socket");
        back.connect(server).expect("proxy connects to the server");
        for s in [&front, &back] {
            // Short timeouts so the threads notice `stop` soon after the proxy is dropped.
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
        }
        let addr = front.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            faults,
            rng: Mutex::new(Rng::new(seed)),
            queue: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            client: Mutex::new(None),
            stats: ProxyStats::default(),
        });
        let front = Arc::new(front);
        let back = Arc::new(back);
        let mut threads = Vec::new();
        {
            let (shared, front) = (Arc::clone(&shared), Arc::clone(&front));
            threads.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !shared.stop.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = front.recv_from(&mut buffer) {
                        *shared
                            .client
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(from);
                        shared.enqueue(true, &buffer[..len]);
                    }
                }
            }));
        }
        {
            let (shared, back) = (Arc::clone(&shared), Arc::clone(&back));
            threads.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !shared.stop.load(Ordering::Relaxed) {
                    if let Ok(len) = back.recv(&mut buffer) {
                        shared.enqueue(false, &buffer[..len]);
                    }
                }
            }));
        }
        {
            let shared = Arc::clone(&shared);
            threads.push(std::thread::spawn(move || sender(&shared, &front, &back)));
        }
        Self {
            addr,
            shared,
            threads,
        }
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.shared.stats
    }
}

/// Sends every scheduled datagram at its time.
fn sender(shared: &Shared, front: &UdpSocket, back: &UdpSocket) {
    let mut queue = shared
        .queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = match queue.0.peek() {
            Some(next) if next.at <= now => {
                let item = queue.0.pop().expect("peeked");
                drop(queue);
                let sent = if item.to_server {
                    back.send(&item.bytes).is_ok()
                } else {
                    let client = *shared
                        .client
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    client.is_some_and(|c| front.send_to(&item.bytes, c).is_ok())
                };
                if sent {
                    shared.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                queue = shared
                    .queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                continue;
            }
            Some(next) => next.at - now,
            None => Duration::from_millis(50),
        };
        queue = shared
            .wake
            .wait_timeout(queue, wait)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// How many runs a long campaign makes: `LAPWING_RELIABILITY_RUNS` when set, else the short
/// count CI affords (callers pass a non-zero one: the short version is a real test).
pub fn runs(ci_default: usize) -> usize {
    std::env::var("LAPWING_RELIABILITY_RUNS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ci_default)
}

/// True when `LAPWING_RELIABILITY_RUNS` asks for the long campaigns: the counts fixed by the
/// issue (1,000,000 junk datagrams, 1,000 kills) instead of CI's scaled-down ones.
pub fn long_campaign() -> bool {
    runs(0) > 0
}

/// Percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len()) - 1;
    sorted[index]
}
