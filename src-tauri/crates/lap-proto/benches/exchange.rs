//! What one LAP exchange costs, next to the sum of the primitives it is made of.
//!
//! Group `lap` measures the two composites through `lap-proto`'s public API:
//! - `client_exchange`: [`seal_request`] then [`PendingExchange::open`] of the answer;
//! - `server_turn`: [`open_request`] then [`ResponseSealer::seal`].
//!
//! Group `primitives` measures, with the underlying crates directly, each primitive exactly as
//! LAP calls it and at the sizes a real exchange has (seed v1 with the default 128-byte Room,
//! a typical `ServerData`). After criterion is done, `main` reads criterion's estimates of this
//! run and prints (and writes as `lap-summary.json`) each composite's mean next to the sum of
//! its primitives' means: the target is a ratio of at most 1.25.
//!
//! Besides the primitives, the composites do only bookkeeping, which is what the ratio
//! measures:
//! - client: encoding the request plaintext (a 282-byte `Zeroizing<Vec>`), assembling the
//!   128-byte IKM and splitting the OKM into two `Zeroizing` keys, building the datagram `Vec`,
//!   cloning `ServerPublicKeys` into the `PendingExchange` (the Ed25519 key is already a parsed
//!   `VerifyingKey`, so no point decompression per exchange), the length checks, copying the
//!   response body into a `Zeroizing<Vec>` to decrypt it, `Response::decode` (another copy of
//!   `ServerData`), the ClientId/SKU checks, copying the datagram and key into the `Activation`,
//!   and wiping every `Zeroizing` buffer on drop;
//! - server: the length check, copying the ephemeral key, the same IKM/OKM handling, copying the
//!   request body into a `Zeroizing<Vec>` to decrypt it, `Request::decode` (a copy of the seed),
//!   copying `ServerData` into a `Response`, `Response::encode`, building the datagram `Vec` and
//!   copying the signature in, and the wipes on drop.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use criterion::{BatchSize, Criterion, criterion_group};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use lap_proto::seed::DEFAULT_RESPONSE_ROOM;
use lap_proto::wire::{RESPONSE_HEADER_LEN, SIGNATURE_LEN, TAG_LEN};
use lap_proto::{
    EphemeralSecret, HKDF_INFO, LicenseKind, PendingExchange, Request, ResponseSealer, SeedV1,
    ServerData, ServerSecretKeys, Uuid, open_request, seal_request,
};
use sha2::Sha512;
use x25519_dalek::{PublicKey, StaticSecret};

const SERVER_X25519_SECRET: [u8; 32] = [0x11; 32];
const SERVER_ED25519_SEED: [u8; 32] = [0x22; 32];
const CLIENT_EPHEMERAL: [u8; 32] = [0x33; 32];
const CLIENT_TIME: u64 = 1_795_000_000;
const SERVER_TIME: u64 = 1_795_000_002;
/// The request plaintext with a seed v1 and the default Room: 88 + 66 + 128.
const REQUEST_PLAINTEXT_LEN: usize = 282;
/// 40 bytes, a typical Notice.
const NOTICE: &str = "Licensed to Acme Corp. Renews 2026-12-01";

/// Everything the benches share, built once.
struct Fixture {
    server: ServerSecretKeys,
    request: Request,
    /// The request datagram sealed with [`CLIENT_EPHEMERAL`].
    request_datagram: Vec<u8>,
    /// The server's valid answer to `request_datagram`.
    response_datagram: Vec<u8>,
    license_id: Uuid,
    server_data: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let server = ServerSecretKeys::from_bytes(SERVER_X25519_SECRET, &SERVER_ED25519_SEED);
        let seed = SeedV1 {
            decoded_key: [0x5a; 16],
            machine_hash: [0xa5; 32],
            num_cpus: 1,
            num_cores: 8,
            install_nonce: [0x3c; 16],
        }
        .encode(DEFAULT_RESPONSE_ROOM)
        .expect("the default Room fits a datagram");
        let request = Request {
            client_time: CLIENT_TIME,
            client_base_id: Uuid::from_bytes([0x01; 16]),
            client_addon_id: Uuid::nil(),
            sku_id: Uuid::from_bytes([0x02; 16]),
            current_license_id: Uuid::from_bytes([0x03; 16]),
            client_seed: seed,
        };
        assert_eq!(request.encoded_len(), REQUEST_PLAINTEXT_LEN);

        let server_data = ServerData {
            not_after: Some(CLIENT_TIME + 365 * 86_400),
            renew_after: Some(CLIENT_TIME + 30 * 86_400),
            kind: Some(LicenseKind::Subscription),
            in_compliance: Some(true),
            features: vec!["pro".into(), "export".into()],
            notice: Some(NOTICE.into()),
            ..ServerData::default()
        }
        .encode()
        .expect("a typical ServerData encodes");
        assert_eq!(NOTICE.len(), 40);

        let (request_datagram, _) = seal_request(
            server.public(),
            &request,
            &EphemeralSecret::from_bytes(CLIENT_EPHEMERAL),
        )
        .expect("the fixture request seals");
        assert_eq!(request_datagram.len(), 330);
        let license_id = Uuid::from_bytes([0x04; 16]);
        let (_, sealer) = open_request(&server, &request_datagram).expect("the server opens it");
        let response_datagram = sealer
            .seal(&server, SERVER_TIME, license_id, &server_data)
            .expect("the typical ServerData fits the room");
        Self {
            server,
            request,
            request_datagram,
            response_datagram,
            license_id,
            server_data,
        }
    }

    fn response_plaintext_len(&self) -> usize {
        RESPONSE_HEADER_LEN + self.server_data.len()
    }
}

fn bench_lap(c: &mut Criterion) {
    let f = Fixture::new();
    let ephemeral = EphemeralSecret::from_bytes(CLIENT_EPHEMERAL);
    let mut group = c.benchmark_group("lap");

    group.bench_function("client_exchange", |b| {
        b.iter(|| {
            let (datagram, pending): (Vec<u8>, PendingExchange) =
                seal_request(f.server.public(), black_box(&f.request), &ephemeral)
                    .expect("the fixture request seals");
            let activation = pending
                .open(black_box(&f.response_datagram))
                .expect("the pre-made response answers this exact request");
            (datagram, activation)
        });
    });

    group.bench_function("server_turn", |b| {
        b.iter(|| {
            let (request, sealer): (Request, ResponseSealer) =
                open_request(&f.server, black_box(&f.request_datagram))
                    .expect("the fixture request opens");
            let response = sealer
                .seal(
                    &f.server,
                    SERVER_TIME,
                    f.license_id,
                    black_box(&f.server_data),
                )
                .expect("the typical ServerData fits the room");
            (request, response)
        });
    });
    group.finish();
}

/// AEAD seal exactly as `lap_proto::crypto::seal_in_place`: key setup, zero nonce, no AAD,
/// in place, detached tag.
fn chacha_seal(key: &[u8; 32], buffer: &mut [u8]) -> Tag {
    ChaCha20Poly1305::new(&(*key).into())
        .encrypt_inout_detached(&Nonce::default(), &[], buffer.into())
        .expect("small plaintexts seal")
}

/// AEAD open exactly as `lap_proto::crypto::open_in_place`.
fn chacha_open(key: &[u8; 32], buffer: &mut [u8], tag: &Tag) {
    ChaCha20Poly1305::new(&(*key).into())
        .decrypt_inout_detached(&Nonce::default(), &[], buffer.into(), tag)
        .expect("the tag matches the fresh ciphertext");
}

fn bench_primitives(c: &mut Criterion) {
    let f = Fixture::new();
    let resp_len = f.response_plaintext_len();
    let server_x = StaticSecret::from(SERVER_X25519_SECRET);
    let server_x_public = PublicKey::from(&server_x);
    let client_x = StaticSecret::from(CLIENT_EPHEMERAL);
    let signing = SigningKey::from_bytes(&SERVER_ED25519_SEED);
    let verifying: VerifyingKey = signing.verifying_key();
    let key = [0x42u8; 32];
    let mut group = c.benchmark_group("primitives");

    // Client: `EphemeralSecret::public_key`, a fixed-base multiplication.
    group.bench_function("x25519_public_from_secret", |b| {
        b.iter(|| PublicKey::from(black_box(&client_x)).to_bytes());
    });
    // Either side: the variable-base multiplication (plus LAP's all-zero check).
    group.bench_function("x25519_diffie_hellman", |b| {
        b.iter(|| {
            let shared = black_box(&client_x).diffie_hellman(black_box(&server_x_public));
            (shared.was_contributory(), shared.to_bytes())
        });
    });
    // `lap_proto::crypto::kdf`'s HKDF call: extract (salt absent) over 128 bytes, expand to 64.
    let ikm = [0x77u8; 128];
    group.bench_function("hkdf_sha512_64", |b| {
        b.iter(|| {
            let mut okm = [0u8; 64];
            Hkdf::<Sha512>::new(None, black_box(&ikm))
                .expand(HKDF_INFO, &mut okm)
                .expect("64 bytes is a valid HKDF-SHA512 output length");
            okm
        });
    });

    for (name, len) in [("282", REQUEST_PLAINTEXT_LEN), ("resp", resp_len)] {
        let plaintext = vec![0x5au8; len];
        group.bench_function(format!("chacha20poly1305_seal_{name}"), |b| {
            b.iter_batched_ref(
                || plaintext.clone(),
                |buffer| chacha_seal(black_box(&key), buffer),
                BatchSize::SmallInput,
            );
        });
        // Opening in place leaves plaintext behind, so every iteration gets a fresh ciphertext
        // (outside the timing), else later iterations would fail the tag and skip decryption.
        let mut ciphertext = plaintext.clone();
        let tag = chacha_seal(&key, &mut ciphertext);
        group.bench_function(format!("chacha20poly1305_open_{name}"), |b| {
            b.iter_batched_ref(
                || ciphertext.clone(),
                |buffer| chacha_open(black_box(&key), buffer, &tag),
                BatchSize::SmallInput,
            );
        });
    }

    // The response signature covers ciphertext ‖ tag.
    let signed = vec![0xa5u8; resp_len + TAG_LEN];
    group.bench_function("ed25519_sign_resp", |b| {
        b.iter(|| signing.sign(black_box(&signed)).to_bytes());
    });
    let signature_bytes = signing.sign(&signed).to_bytes();
    assert_eq!(signature_bytes.len(), SIGNATURE_LEN);
    group.bench_function("ed25519_parse_signature", |b| {
        b.iter(|| Signature::from_slice(black_box(&signature_bytes[..])).expect("64 bytes"));
    });
    let signature = Signature::from_bytes(&signature_bytes);
    group.bench_function("ed25519_verify_strict_resp", |b| {
        b.iter(|| {
            verifying
                .verify_strict(black_box(&signed), black_box(&signature))
                .expect("the signature is valid");
        });
    });
    group.finish();
}

/// Plots take longer than the measurements on a small machine, so they are off by default;
/// `-- --plotting-backend plotters` brings the HTML report back.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = lap_benches;
    config = config();
    targets = bench_lap
}
criterion_group! {
    name = primitive_benches;
    config = config();
    targets = bench_primitives
}

/// Which primitives each composite uses, each as many times as it uses it.
const CLIENT_PRIMITIVES: &[(&str, &str)] = &[
    ("x25519_public_from_secret", "x25519 base"),
    ("x25519_diffie_hellman", "x25519 DH"),
    ("hkdf_sha512_64", "HKDF"),
    ("chacha20poly1305_seal_282", "seal 282"),
    ("ed25519_parse_signature", "sig parse"),
    ("ed25519_verify_strict_resp", "verify"),
    ("chacha20poly1305_open_resp", "open resp"),
];
const SERVER_PRIMITIVES: &[(&str, &str)] = &[
    ("x25519_diffie_hellman", "x25519 DH"),
    ("hkdf_sha512_64", "HKDF"),
    ("chacha20poly1305_open_282", "open 282"),
    ("chacha20poly1305_seal_resp", "seal resp"),
    ("ed25519_sign_resp", "sign"),
];
const TARGET_RATIO: f64 = 1.25;

/// Where criterion writes, in its own order of preference (`$CRITERION_HOME`,
/// `$CARGO_TARGET_DIR/criterion`, `cargo metadata`'s target dir), then the target dir this
/// binary was built in (`<target>/<profile>/deps/exchange-…`) and `./target/criterion`.
fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        dirs.push(PathBuf::from(home));
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("criterion"));
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).map(|dir| dir.join("criterion")));
    }
    dirs.push(PathBuf::from("target/criterion"));
    let mut seen = Vec::new();
    dirs.retain(|dir| {
        let new = !seen.contains(dir);
        seen.push(dir.clone());
        new
    });
    dirs
}

/// Criterion's estimate of a mean, in µs: the point and its confidence interval.
#[derive(Clone, Copy, Default)]
struct Mean {
    point: f64,
    low: f64,
    high: f64,
}

impl std::ops::Add for Mean {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            point: self.point + other.point,
            low: self.low + other.low,
            high: self.high + other.high,
        }
    }
}

impl Mean {
    /// The ratio of two means, with the widest range their intervals allow.
    fn ratio(self, sum: Self) -> Self {
        Self {
            point: self.point / sum.point,
            low: self.low / sum.high,
            high: self.high / sum.low,
        }
    }
}

/// The mean of `group/bench`, if criterion wrote it during this run.
fn fresh_mean(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<Mean> {
    let path = dir
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mean = &json["mean"];
    let interval = &mean["confidence_interval"];
    Some(Mean {
        point: mean["point_estimate"].as_f64()? / 1e3,
        low: interval["lower_bound"].as_f64()? / 1e3,
        high: interval["upper_bound"].as_f64()? / 1e3,
    })
}

/// This run's means of both composites and of their primitives.
struct Means {
    client: Mean,
    client_primitives: Mean,
    server: Mean,
    server_primitives: Mean,
}

/// The directory holding this run's estimates and every mean the summary needs, or why not.
fn collect_means(since: SystemTime) -> Result<(PathBuf, Means), String> {
    let dirs = candidate_dirs();
    let Some(dir) = dirs
        .iter()
        .find(|dir| fresh_mean(dir, "lap", "client_exchange", since).is_some())
    else {
        let looked: Vec<String> = dirs
            .iter()
            .filter(|dir| dir.is_dir())
            .map(|dir| dir.display().to_string())
            .collect();
        return Err(format!(
            "criterion wrote no estimates in this run (quick `--test`/`--list` mode, a filter \
             that skipped lap/client_exchange, a discarded baseline or cargo-criterion); \
             looked in [{}]",
            looked.join(", ")
        ));
    };
    let mut missing = Vec::new();
    let mut get = |group: &str, bench: &str| {
        fresh_mean(dir, group, bench, since).unwrap_or_else(|| {
            missing.push(format!("{group}/{bench}"));
            Mean::default()
        })
    };
    let client = get("lap", "client_exchange");
    let server = get("lap", "server_turn");
    let mut sum = |parts: &[(&str, &str)]| {
        parts.iter().fold(Mean::default(), |sum, (bench, _)| {
            sum + get("primitives", bench)
        })
    };
    let client_primitives = sum(CLIENT_PRIMITIVES);
    let server_primitives = sum(SERVER_PRIMITIVES);
    if !missing.is_empty() {
        return Err(format!(
            "no estimate from this run for {} in {}",
            missing.join(", "),
            dir.display()
        ));
    }
    Ok((
        dir.clone(),
        Means {
            client,
            client_primitives,
            server,
            server_primitives,
        },
    ))
}

fn names(parts: &[(&str, &str)]) -> String {
    let names: Vec<&str> = parts.iter().map(|(_, short)| *short).collect();
    format!("({})", names.join(" + "))
}

/// A note when other processes competed for the CPU, which makes means and ratios noisy.
fn load_note() -> Option<String> {
    let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
    let one_minute: f64 = loadavg.split_whitespace().next()?.parse().ok()?;
    let cpus = std::thread::available_parallelism().ok()?.get();
    let busy = one_minute > f64::from(u32::try_from(cpus).unwrap_or(u32::MAX)) - 0.5;
    busy.then(|| {
        format!(
            "note: load average {one_minute:.1} on {cpus} CPUs: other processes competed for \
             the CPU, so these means (and ratios) are noisy"
        )
    })
}

fn print_summary(since: SystemTime) {
    let (dir, m) = match collect_means(since) {
        Ok(found) => found,
        Err(why) => {
            println!("LAP cost summary skipped: {why}.");
            return;
        }
    };
    let client_ratio = m.client.ratio(m.client_primitives);
    let server_ratio = m.server.ratio(m.server_primitives);
    let rate = 1e6 / m.server_primitives.point;
    let mut out = String::from("\nLAP cost vs. the sum of its primitives (mean, µs)\n");
    let client_names = names(CLIENT_PRIMITIVES);
    let server_names = names(SERVER_PRIMITIVES);
    let width = client_names.len().max(server_names.len());
    for (label, us, prim, what, ratio) in [
        (
            "client exchange",
            m.client,
            m.client_primitives,
            client_names,
            client_ratio,
        ),
        (
            "server turn",
            m.server,
            m.server_primitives,
            server_names,
            server_ratio,
        ),
    ] {
        let verdict = if ratio.point <= TARGET_RATIO {
            "ok"
        } else {
            "ABOVE TARGET"
        };
        let _ = writeln!(
            out,
            "{label:<16} {:>7.2}   primitives {:>7.2} {what:<width$}   ratio {:.2}x \
             ({:.2}–{:.2} from the 95% intervals)  [target ≤ {TARGET_RATIO}: {verdict}]",
            us.point, prim.point, ratio.point, ratio.low, ratio.high,
        );
    }
    let _ = writeln!(
        out,
        "primitive-limited server rate: {rate:.0} responses/s per core (1 / server-turn primitive sum)"
    );
    if let Some(note) = load_note() {
        let _ = writeln!(out, "{note}");
    }
    print!("{out}");

    let json = serde_json::json!({
        "client_exchange_us": m.client.point,
        "client_primitives_us": m.client_primitives.point,
        "client_ratio": client_ratio.point,
        "server_turn_us": m.server.point,
        "server_primitives_us": m.server_primitives.point,
        "server_ratio": server_ratio.point,
        "primitive_limited_rate_per_core": rate,
    });
    let path = dir.join("lap-summary.json");
    let text = serde_json::to_string_pretty(&json).expect("plain numbers serialize");
    match std::fs::write(&path, text + "\n") {
        Ok(()) => println!("(written to {})", path.display()),
        Err(e) => println!("could not write {}: {e}", path.display()),
    }
}

fn main() {
    // Estimates older than this are from an earlier run and must not be mixed in. One second
    // of slack covers file systems that store modification times in whole seconds.
    let started = SystemTime::now()
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    lap_benches();
    primitive_benches();
    Criterion::default().configure_from_args().final_summary();
    print_summary(started);
}
