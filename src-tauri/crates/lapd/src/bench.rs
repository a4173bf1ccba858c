//! A load generator: sends pre-built valid requests against a running lapd and reports
//! responses per second and latency percentiles.
//!
//! Requests are built before the clock starts (client crypto is not what is measured) and
//! all carry one machine hash, so a run takes one seat. Each is sent once: lapd answers a
//! request key only once (a repeated datagram is dropped as a replay), so a run needs as
//! many distinct requests as it sends. The server's 30-second clock window bounds a run's
//! length.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates and percentiles over counts far below 2^52"
)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use lap_proto::{
    EphemeralSecret, LicenseKey, PendingExchange, Request, SeedV1, ServerPublicKeys, Uuid,
    seal_request,
};
use serde::Serialize;
use zeroize::Zeroizing;

/// The longest run that stays inside the server's clock window with margin.
pub const MAX_SECONDS: f64 = 20.0;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    #[error("bench: {0}")]
    Io(#[from] std::io::Error),
    #[error("bench: {0}")]
    Proto(#[from] lap_proto::ProtoError),
    #[error("bench: no randomness: {0}")]
    Random(String),
    #[error("bench: {0}")]
    Usage(String),
}

/// What to send.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub server: SocketAddr,
    pub public_keys: ServerPublicKeys,
    pub sku: Uuid,
    /// `None`: evaluation requests (all-zero key).
    pub key: Option<LicenseKey>,
    /// `Some`: requests for an add-on SKU with this add-on id.
    pub addon: bool,
    /// Requests per second; 0 sends as fast as answers come back.
    pub rate: u32,
    pub seconds: f64,
    pub concurrency: usize,
    /// Requests built before the run; 0: enough for the rate (or [`AUTO_MAX_RATE`]) over the
    /// run. A run that sends more builds the rest as it goes (counted in `built_during_run`).
    pub distinct_requests: usize,
    pub machines: Machines,
}

/// Which machines the requests come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machines {
    /// One machine: a run takes at most one seat, every other request is a returning machine.
    One([u8; 32]),
    /// A new machine each request: each takes a new seat.
    New,
    /// Machines of [`filled_machine`] `0, 10, 20, …` below this: the bench license's seats in
    /// a database filled by `lapd db fill`, returning at random.
    Filled(u64),
}

/// The MachineHash of seat `n` of a database that `lapd db fill` made.
pub fn filled_machine(n: u64) -> [u8; 32] {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(b"lapd-fill");
    hash.update(n.to_le_bytes());
    hash.finalize().into()
}

/// Every this many filled seats one is the bench license's (the rest are other licenses').
pub const FILL_STRIDE: u64 = 10;

fn machine(machines: Machines) -> Result<[u8; 32], BenchError> {
    Ok(match machines {
        Machines::One(hash) => hash,
        Machines::New => random()?,
        Machines::Filled(count) => {
            let draws = (count / FILL_STRIDE).max(1);
            filled_machine(u64::from_le_bytes(random()?) % draws * FILL_STRIDE)
        }
    })
}

/// Without a rate, `distinct_requests = 0` builds enough for this many answers per second.
pub const AUTO_MAX_RATE: u32 = 15_000;

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub target_rate: u32,
    pub concurrency: usize,
    pub seconds: f64,
    pub sent: u64,
    pub answered: u64,
    /// Every answer, those of the half-second warm-up before the clock too: what the server
    /// did over the whole run (to divide its CPU time by).
    pub answered_with_warmup: u64,
    pub timeouts: u64,
    /// Requests sent more than 0.5 ms after they were due (see `LATE_SEND`): when this is not
    /// small, raise `--concurrency`, or the generator's own core is the limit.
    pub late_sends: u64,
    /// Sampled answers opened and fully checked, and how many failed.
    pub verified: u64,
    pub invalid: u64,
    /// Requests built during the run because the pre-built ones ran out: the generator's
    /// core did client crypto, so when this is not small the figures say less about lapd.
    pub built_during_run: u64,
    pub responses_per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = if self.target_rate == 0 {
            "max".to_owned()
        } else {
            format!("{}/s", self.target_rate)
        };
        write!(
            f,
            "target {target}, {} clients, {:.1} s: sent {}, answered {}, timeouts {}, sent late {}, verified {} ({} invalid), built during the run {}\n\
             responses/s {:.0}   latency p50 {} µs   p99 {} µs   max {} µs",
            self.concurrency,
            self.seconds,
            self.sent,
            self.answered,
            self.timeouts,
            self.late_sends,
            self.verified,
            self.invalid,
            self.built_during_run,
            self.responses_per_second,
            self.p50_us,
            self.p99_us,
            self.max_us
        )
    }
}

fn random<const N: usize>() -> Result<[u8; N], BenchError> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).map_err(|e| BenchError::Random(e.to_string()))?;
    Ok(out)
}

struct Prebuilt {
    datagram: Vec<u8>,
    pending: PendingExchange,
}

/// How many requests to build before the run.
fn pool_size(config: &BenchConfig, warmup: Duration) -> usize {
    if config.distinct_requests > 0 {
        return config.distinct_requests;
    }
    let rate = if config.rate > 0 {
        config.rate
    } else {
        AUTO_MAX_RATE
    };
    let seconds = config.seconds + warmup.as_secs_f64();
    (f64::from(rate) * seconds).ceil() as usize + config.concurrency
}

/// Builds `count` requests on every core (lapd is idle until the run starts).
fn prebuild(config: &BenchConfig, count: usize) -> Result<Vec<Prebuilt>, BenchError> {
    let now = lap_proto::time::unix_now();
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let chunk = count.div_ceil(threads).max(1);
    let parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|first| {
                let n = chunk.min(count - first);
                scope.spawn(move || build(config, now, n))
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(BenchError::Usage("a builder thread failed".into())))
            })
            .collect::<Result<Vec<_>, BenchError>>()
    })?;
    Ok(parts.into_iter().flatten().collect())
}

fn build(config: &BenchConfig, now: u64, count: usize) -> Result<Vec<Prebuilt>, BenchError> {
    let decoded_key = config.key.as_ref().map_or([0; 16], |k| *k.as_bytes());
    (0..count)
        .map(|_| {
            let seed = SeedV1 {
                decoded_key,
                machine_hash: machine(config.machines)?,
                num_cpus: 1,
                num_cores: 2,
                install_nonce: random()?,
            };
            let request = Request {
                client_time: now,
                client_base_id: Uuid::from_bytes(random()?),
                client_addon_id: if config.addon {
                    Uuid::from_bytes(random()?)
                } else {
                    Uuid::nil()
                },
                sku_id: config.sku,
                current_license_id: Uuid::nil(),
                client_seed: Zeroizing::new(
                    seed.encode(lap_proto::seed::DEFAULT_RESPONSE_ROOM)?
                        .to_vec(),
                ),
            };
            let (datagram, pending) = seal_request(
                &config.public_keys,
                &request,
                &EphemeralSecret::from_bytes(random()?),
            )?;
            Ok(Prebuilt { datagram, pending })
        })
        .collect()
}

/// Every this many answers one is opened and checked in full.
const VERIFY_EVERY: u64 = 50;

/// A request sent this long after it was due is counted in `late_sends`: the generator, not
/// the server, held it back (every socket was waiting for an answer, or this core stalled).
const LATE_SEND: Duration = Duration::from_micros(500);

/// An answer later than this is a timeout; its socket is replaced so that the late answer
/// cannot pass for the next request's.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// A request on the wire, waiting for its answer on its own socket.
struct InFlight {
    request: usize,
    /// When the request was due: latency counts from here, so a request the generator could
    /// only send late (every socket busy) is not flattered by its late start.
    due: Instant,
    sent: Instant,
    measured: bool,
}

struct Client {
    socket: UdpSocket,
    in_flight: Option<InFlight>,
}

impl Client {
    /// A fresh non-blocking socket connected to `server`, nothing in flight.
    fn new(server: SocketAddr) -> Result<Self, BenchError> {
        let bind: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(server)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            in_flight: None,
        })
    }
}

#[derive(Default)]
struct Tally {
    sent: u64,
    answered: u64,
    answered_with_warmup: u64,
    timeouts: u64,
    late_sends: u64,
    verified: u64,
    invalid: u64,
    built_during_run: u64,
    latencies_us: Vec<u64>,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the load and returns the figures. Uses the calling thread only, and keeps it busy:
/// the generator polls its sockets instead of sleeping, so that neither the time it takes to
/// wake up nor lapd's cost of waking it (a sleeping vCPU on the same machine; a real
/// server's answers leave through a network card) is counted against the server.
///
/// With a rate the load is open-loop: request k is due at start + k / rate whatever the
/// answers do, and its latency counts from that instant. Without one, each of the
/// `concurrency` sockets sends its next request as soon as its answer is in.
pub fn run(config: &BenchConfig) -> Result<BenchReport, BenchError> {
    if config.seconds <= 0.0 || config.seconds > MAX_SECONDS {
        return Err(BenchError::Usage(format!(
            "--seconds must be in (0, {MAX_SECONDS}]: requests are built up front and the server accepts them for 30 s"
        )));
    }
    if config.concurrency == 0 {
        return Err(BenchError::Usage("--concurrency must be at least 1".into()));
    }
    let warmup = Duration::from_millis(500);
    let mut requests = prebuild(config, pool_size(config, warmup))?;
    let mut clients = (0..config.concurrency)
        .map(|_| Client::new(config.server))
        .collect::<Result<Vec<_>, BenchError>>()?;
    let interval = (config.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(config.rate)));
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs_f64(config.seconds);
    let mut total = Tally::default();
    let mut buffer = [0u8; 2048];
    let mut next_due = start;
    let mut next_request = 0usize;
    let mut next_client = 0usize;
    loop {
        let now = Instant::now();
        // The next request is due at its slot at a rate, at once without one. Every request
        // due before the end is sent, however late: at a rate the count is exactly
        // rate × time, and lateness shows in the latencies and in `late_sends`.
        let due_at = |next_due: Instant| if interval.is_some() { next_due } else { now };
        if due_at(next_due) >= end && clients.iter().all(|c| c.in_flight.is_none()) {
            break;
        }
        // Send what is due, each request on a free socket (round robin).
        while due_at(next_due) <= now && due_at(next_due) < end {
            let Some(index) = (0..clients.len())
                .map(|k| (next_client + k) % clients.len())
                .find(|&k| clients[k].in_flight.is_none())
            else {
                break;
            };
            next_client = (index + 1) % clients.len();
            let due = due_at(next_due);
            if next_request == requests.len() {
                requests.extend(build(config, lap_proto::time::unix_now(), 1)?);
                total.built_during_run += 1;
            }
            let request = next_request;
            next_request += 1;
            clients[index].socket.send(&requests[request].datagram)?;
            let measured = due >= measure_from;
            if measured && now.saturating_duration_since(due) > LATE_SEND {
                total.late_sends += 1;
            }
            total.sent += u64::from(measured);
            clients[index].in_flight = Some(InFlight {
                request,
                due,
                sent: Instant::now(),
                measured,
            });
            if let Some(interval) = interval {
                next_due += interval;
            }
        }
        // Collect what has come back.
        for client in &mut clients {
            let Some(flight) = &client.in_flight else {
                continue;
            };
            match client.socket.recv(&mut buffer) {
                Ok(len) => {
                    total.answered_with_warmup += 1;
                    if flight.measured {
                        total.answered += 1;
                        total.latencies_us.push(micros(flight.due.elapsed()));
                        if total.answered % VERIFY_EVERY == 1 {
                            match requests[flight.request].pending.open(&buffer[..len]) {
                                Ok(_) => total.verified += 1,
                                Err(_) => total.invalid += 1,
                            }
                        }
                    }
                    client.in_flight = None;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if flight.sent.elapsed() > ANSWER_TIMEOUT {
                        total.timeouts += u64::from(flight.measured);
                        *client = Client::new(config.server)?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    total.latencies_us.sort_unstable();
    let percentile = |p: f64| -> u64 {
        if total.latencies_us.is_empty() {
            return 0;
        }
        let rank = ((p * total.latencies_us.len() as f64).ceil() as usize)
            .clamp(1, total.latencies_us.len());
        total.latencies_us[rank - 1]
    };
    Ok(BenchReport {
        target_rate: config.rate,
        concurrency: config.concurrency,
        seconds: config.seconds,
        sent: total.sent,
        answered: total.answered,
        answered_with_warmup: total.answered_with_warmup,
        timeouts: total.timeouts,
        late_sends: total.late_sends,
        verified: total.verified,
        invalid: total.invalid,
        built_during_run: total.built_during_run,
        responses_per_second: total.answered as f64 / config.seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        max_us: total.latencies_us.last().copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use lap_proto::ServerSecretKeys;

    use super::*;
    use crate::catalog::LicenseCatalog;
    use crate::ratelimit::RateLimiter;
    use crate::server::{Background, Server};
    use crate::store::Store;

    const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

    /// A real lapd on loopback, serving evaluations of `SKU`, stopped when dropped.
    struct Running {
        serving: Background,
        public: ServerPublicKeys,
    }

    impl Running {
        fn start() -> Self {
            let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
            let public = keys.public().clone();
            let catalog = LicenseCatalog::parse(
                &format!("[[sku]]\nid = \"{SKU}\"\nname = \"Bench\"\nevaluation_days = 30\n"),
                Path::new("bench.toml"),
            )
            .expect("catalog");
            let server = Server::new(
                keys,
                catalog,
                Store::in_memory().expect("store"),
                RateLimiter::new(0, 0),
                0,
            );
            let serving = Background::start(server, SocketAddr::from(([127, 0, 0, 1], 0)), 1)
                .expect("lapd serves on loopback");
            Self { serving, public }
        }

        fn config(&self, rate: u32, seconds: f64) -> BenchConfig {
            BenchConfig {
                server: self.serving.address(),
                public_keys: self.public.clone(),
                sku: SKU,
                key: None,
                addon: false,
                rate,
                seconds,
                concurrency: 4,
                // Fewer than a run sends: the rest is built as it goes.
                distinct_requests: 64,
                machines: Machines::One([7; 32]),
            }
        }
    }

    #[test]
    fn as_fast_as_answers_come_every_request_is_answered_and_sampled_answers_verify() {
        let lapd = Running::start();
        let report = run(&lapd.config(0, 0.5)).expect("the load runs");
        assert!(report.answered > 0);
        assert_eq!(report.answered, report.sent);
        assert_eq!((report.timeouts, report.invalid), (0, 0));
        assert!(report.verified >= 1);
        assert!(report.p50_us <= report.p99_us && report.p99_us <= report.max_us);
        assert_eq!(report.late_sends, 0, "nothing is due late without a rate");
    }

    #[test]
    fn a_rate_sends_exactly_that_many_requests_per_second_measured() {
        let lapd = Running::start();
        let report = run(&lapd.config(200, 1.0)).expect("the load runs");
        // Open loop: one request due every 5 ms over the measured second, whatever the answers.
        assert!(
            (199..=201).contains(&report.sent),
            "sent {} at 200/s for 1 s",
            report.sent
        );
        assert_eq!(report.answered, report.sent);
        assert_eq!(report.invalid, 0);
    }

    #[test]
    fn answers_that_do_not_open_are_counted_invalid() {
        let lapd = Running::start();
        // Not lapd: a peer that answers every datagram with 152 zero bytes.
        let echo = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
        echo.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut config = lapd.config(0, 0.3);
        config.server = echo.local_addr().expect("address");
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while let Ok((_, from)) = echo.recv_from(&mut buffer) {
                let _ = echo.send_to(&[0u8; 152], from);
            }
        });
        let report = run(&config).expect("the load runs");
        assert!(report.answered > 0);
        assert_eq!(report.verified, 0);
        assert!(report.invalid >= 1);
    }

    #[test]
    fn requests_the_server_cannot_open_time_out() {
        let lapd = Running::start();
        let mut config = lapd.config(0, 0.2);
        // Sealed to another server's keys: lapd drops every one, silently.
        config.public_keys = ServerSecretKeys::from_bytes([0x43; 32], &[0x44; 32])
            .public()
            .clone();
        let report = run(&config).expect("the load runs");
        assert_eq!(report.answered, 0);
        assert!(report.sent > 0);
        assert_eq!(report.timeouts, report.sent);
    }

    #[test]
    fn a_run_longer_than_the_clock_window_or_with_no_clients_is_refused() {
        let lapd = Running::start();
        for config in [
            lapd.config(0, 0.0),
            lapd.config(0, MAX_SECONDS + 1.0),
            BenchConfig {
                concurrency: 0,
                ..lapd.config(0, 1.0)
            },
        ] {
            assert!(matches!(run(&config), Err(BenchError::Usage(_))));
        }
    }
}
