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
    route: Route,
    bytes: Vec<u8>,
}

/// Where a scheduled datagram goes.
#[derive(Clone)]
enum Route {
    /// To the server, from the back socket of the client that sent it.
    ToServer(Arc<UdpSocket>),
    /// Back to the client whose request it answers.
    ToClient(SocketAddr),
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
    /// One back socket per client, as a NAT keeps one mapping per flow: an answer goes to
    /// the client whose request it answers, even when it comes after that client is gone
    /// and another has started (a late answer to a finished run is lost, as on a network).
    backs: Mutex<std::collections::HashMap<SocketAddr, Arc<UdpSocket>>>,
    stats: ProxyStats,
}

impl Shared {
    fn enqueue(&self, route: &Route, bytes: &[u8]) {
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
                route: route.clone(),
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
    /// Starts a proxy on 127.0.0.1 in front of `server`. Each client gets a back socket of
    /// its own, and the server's answers on it go back to that client.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("proxy front socket");
        // Short timeouts so the threads notice `stop` soon after the proxy is dropped.
        front
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = front.local_addr().expect("proxy address");
        let shared = Arc::new(Shared {
            faults,
            rng: Mutex::new(Rng::new(seed)),
            queue: Mutex::new((BinaryHeap::new(), 0)),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            backs: Mutex::new(std::collections::HashMap::new()),
            stats: ProxyStats::default(),
        });
        let front = Arc::new(front);
        let mut threads = Vec::new();
        {
            let (shared, front) = (Arc::clone(&shared), Arc::clone(&front));
            threads.push(std::thread::spawn(move || {
                let mut buffer = [0u8; 2048];
                while !shared.stop.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = front.recv_from(&mut buffer) {
                        let back = back_socket(&shared, server, from);
                        shared.enqueue(&Route::ToServer(back), &buffer[..len]);
                    }
                }
            }));
        }
        {
            let shared = Arc::clone(&shared);
            threads.push(std::thread::spawn(move || sender(&shared, &front)));
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

/// The client's back socket, made (with a thread that queues the server's answers on it for
/// that client) on its first datagram. The thread ends with the proxy, or after 20 s without
/// an answer: a client run lasts under 10 s.
fn back_socket(shared: &Arc<Shared>, server: SocketAddr, client: SocketAddr) -> Arc<UdpSocket> {
    let mut backs = shared
        .backs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(back) = backs.get(&client) {
        return Arc::clone(back);
    }
    let back = UdpSocket::bind("127.0.0.1:0").expect("proxy back socket");
    back.connect(server).expect("proxy connects to the server");
    back.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let back = Arc::new(back);
    backs.insert(client, Arc::clone(&back));
    let (shared, reader) = (Arc::clone(shared), Arc::clone(&back));
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        let mut last = Instant::now();
        while !shared.stop.load(Ordering::Relaxed) && last.elapsed() < Duration::from_secs(20) {
            if let Ok(len) = reader.recv(&mut buffer) {
                last = Instant::now();
                shared.enqueue(&Route::ToClient(client), &buffer[..len]);
            }
        }
        shared
            .backs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&client);
    });
    back
}

/// Sends every scheduled datagram at its time.
fn sender(shared: &Shared, front: &UdpSocket) {
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
                let sent = match &item.route {
                    Route::ToServer(back) => back.send(&item.bytes).is_ok(),
                    Route::ToClient(client) => front.send_to(&item.bytes, client).is_ok(),
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
