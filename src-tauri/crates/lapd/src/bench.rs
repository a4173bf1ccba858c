//! A load generator: replays pre-built valid requests against a running lapd and reports
//! responses per second and latency percentiles.
//!
//! Requests are built before the clock starts (client crypto is not what is measured) and
//! all carry one machine hash, so a run takes one seat. The server's 30-second clock window
//! bounds a run's length.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rates and percentiles over counts far below 2^52"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lap_proto::{
    EphemeralSecret, LicenseKey, PendingExchange, Request, SeedV1, ServerPublicKeys, Uuid,
    seal_request,
};
use serde::Serialize;
use tokio::net::UdpSocket;
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
    pub distinct_requests: usize,
    pub machine_hash: [u8; 32],
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub target_rate: u32,
    pub concurrency: usize,
    pub seconds: f64,
    pub sent: u64,
    pub answered: u64,
    pub timeouts: u64,
    /// Sampled answers opened and fully checked, and how many failed.
    pub verified: u64,
    pub invalid: u64,
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
            "target {target}, {} clients, {:.1} s: sent {}, answered {}, timeouts {}, verified {} ({} invalid)\n\
             responses/s {:.0}   latency p50 {} µs   p99 {} µs   max {} µs",
            self.concurrency,
            self.seconds,
            self.sent,
            self.answered,
            self.timeouts,
            self.verified,
            self.invalid,
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct Prebuilt {
    datagram: Vec<u8>,
    pending: PendingExchange,
}

fn prebuild(config: &BenchConfig) -> Result<Vec<Prebuilt>, BenchError> {
    let now = unix_now();
    let decoded_key = config.key.as_ref().map_or([0; 16], |k| *k.as_bytes());
    (0..config.distinct_requests)
        .map(|_| {
            let seed = SeedV1 {
                decoded_key,
                machine_hash: config.machine_hash,
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

#[derive(Default)]
struct ClientTally {
    sent: u64,
    answered: u64,
    timeouts: u64,
    verified: u64,
    invalid: u64,
    latencies_us: Vec<u64>,
}

/// Every this many answers one is opened and checked in full.
const VERIFY_EVERY: u64 = 50;

async fn client(
    index: usize,
    config: Arc<BenchConfig>,
    requests: Arc<Vec<Prebuilt>>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Result<ClientTally, BenchError> {
    let bind: SocketAddr = if config.server.is_ipv4() {
        "0.0.0.0:0".parse()
    } else {
        "[::]:0".parse()
    }
    .map_err(|_| BenchError::Usage("bind".into()))?;
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(config.server).await?;
    let mut tally = ClientTally::default();
    let mut buffer = [0u8; 2048];
    let pace = (config.rate > 0)
        .then(|| Duration::from_secs_f64(config.concurrency as f64 / f64::from(config.rate)));
    let mut next_send = start
        + pace.map_or(Duration::ZERO, |p| {
            p.mul_f64(index as f64 / config.concurrency as f64)
        });
    let mut n = index;
    while Instant::now() < end {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next_send.into()).await;
            next_send += pace;
        }
        let item = &requests[n % requests.len()];
        n += config.concurrency;
        let sent_at = Instant::now();
        socket.send(&item.datagram).await?;
        let measuring = sent_at >= measure_from;
        if measuring {
            tally.sent += 1;
        }
        match tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buffer)).await {
            Ok(Ok(len)) => {
                let latency = sent_at.elapsed();
                if measuring {
                    tally.answered += 1;
                    tally
                        .latencies_us
                        .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
                    if tally.answered % VERIFY_EVERY == 1 {
                        match item.pending.open(&buffer[..len]) {
                            Ok(_) => tally.verified += 1,
                            Err(_) => tally.invalid += 1,
                        }
                    }
                }
            }
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => {
                if measuring {
                    tally.timeouts += 1;
                }
            }
        }
    }
    Ok(tally)
}

/// Runs the load and returns the figures. Uses the calling thread only.
pub fn run(config: BenchConfig) -> Result<BenchReport, BenchError> {
    if config.seconds <= 0.0 || config.seconds > MAX_SECONDS {
        return Err(BenchError::Usage(format!(
            "--seconds must be in (0, {MAX_SECONDS}]: requests are built up front and the server accepts them for 30 s"
        )));
    }
    if config.concurrency == 0 || config.distinct_requests == 0 {
        return Err(BenchError::Usage(
            "--concurrency and --requests must be at least 1".into(),
        ));
    }
    let requests = Arc::new(prebuild(&config)?);
    let config = Arc::new(config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let warmup = Duration::from_millis(500);
    let tallies = runtime.block_on(async {
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + Duration::from_secs_f64(config.seconds);
        let tasks: Vec<_> = (0..config.concurrency)
            .map(|i| {
                tokio::spawn(client(
                    i,
                    Arc::clone(&config),
                    Arc::clone(&requests),
                    start,
                    measure_from,
                    end,
                ))
            })
            .collect();
        let mut out = Vec::new();
        for task in tasks {
            out.push(task.await.map_err(|e| BenchError::Usage(e.to_string()))??);
        }
        Ok::<_, BenchError>(out)
    })?;
    let mut total = ClientTally::default();
    for t in tallies {
        total.sent += t.sent;
        total.answered += t.answered;
        total.timeouts += t.timeouts;
        total.verified += t.verified;
        total.invalid += t.invalid;
        total.latencies_us.extend(t.latencies_us);
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
        timeouts: total.timeouts,
        verified: total.verified,
        invalid: total.invalid,
        responses_per_second: total.answered as f64 / config.seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        max_us: total.latencies_us.last().copied().unwrap_or(0),
    })
}
