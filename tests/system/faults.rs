//! Issue 7: under faults and hostile input, nothing is lost. The real `lapctl` and `lapd`,
//! a userspace fault proxy (no netem on this kernel), a hostile server built from
//! `lap-proto`, floods against `lapd`, kill -9, a full disk, a read-only disk, a locked
//! keyring and a clock jump.
//!
//! Each campaign runs a short count by default (CI, inside `cargo test --workspace`) and the
//! long count given by `LAPWING_RELIABILITY_RUNS` (see tests/RELIABILITY.md). Figures are
//! printed (`cargo test -p lapwing-system-tests --test faults -- --nocapture`).
#![allow(
    clippy::cast_precision_loss,
    reason = "rates and percentages over counts far below 2^52"
)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lap_proto::{ActivationRecord, EphemeralSecret, seal_request};
use lapwing_secrets::test_util::Setup;
use lapwing_system_tests::desk::Desk;
use lapwing_system_tests::home::{Home, Kept};
use lapwing_system_tests::hostile::{Attack, HostileServer};
use lapwing_system_tests::netfault::{Faults, Proxy, Rng, long_campaign, percentile, runs};
use lapwing_system_tests::{
    BASE_SKU, Installation, Vendor, activate, activate_timed, bin, sntp_server, unix_now,
};

/// The campaigns take turns: each measures times on a 2-core machine, and running them side
/// by side would measure the others' load.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn activate_json(out: &Output) -> serde_json::Value {
    let all: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("activate --json: {e}; stderr: {}", stderr(out)));
    all[0].clone()
}

/// A vendor with a 365-day, 50-seat license, its server, and a home activated against it.
fn activated_home(vendor: &Vendor, key: &str, server: SocketAddr) -> Home {
    let home = Home::new();
    home.place_studio(vendor, &server.to_string());
    let out = home.set_key("acme-studio", key);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    home
}

fn assert_record_verifies(vendor: &Vendor, path: &Path, context: &str) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{context}: record unreadable: {e}"));
    let record = ActivationRecord::from_json(&text)
        .unwrap_or_else(|e| panic!("{context}: record does not parse: {e}"));
    record
        .verify(BASE_SKU, vendor.public.ed25519_bytes())
        .unwrap_or_else(|e| panic!("{context}: record does not verify: {e}"));
}

// ---------------------------------------------------------------------------------------
// 1. Lossy and slow networks
// ---------------------------------------------------------------------------------------

fn conditions() -> Vec<(&'static str, Faults)> {
    let ms = Duration::from_millis;
    vec![
        ("clean", Faults::default()),
        (
            "loss 30%",
            Faults {
                loss: 0.3,
                ..Faults::default()
            },
        ),
        (
            "delay 300 ms + 0-200 ms jitter",
            Faults {
                delay: ms(300),
                jitter: ms(200),
                ..Faults::default()
            },
        ),
        (
            "reorder 50% by 400 ms",
            Faults {
                jitter: ms(20),
                reorder: 0.5,
                reorder_by: ms(400),
                ..Faults::default()
            },
        ),
        (
            "duplicate 50%",
            Faults {
                duplicate: 0.5,
                ..Faults::default()
            },
        ),
        (
            "combined",
            Faults {
                loss: 0.3,
                delay: ms(300),
                jitter: ms(200),
                reorder: 0.2,
                reorder_by: ms(400),
                duplicate: 0.2,
            },
        ),
    ]
}

/// Rounds of the scheduler's renewal retry within its first 2 hours (profile §8: every
/// 15 minutes), counting the first.
const SCHEDULER_ROUNDS: usize = 9;

/// Every condition at once (one home and one proxy each), runs in sequence within each.
/// The real retry schedule (1, 2, 4 s): nothing is shortened, so the times are the users'.
/// A run that gets no answer is retried as the scheduler would, 15 minutes later (without
/// waiting them out): every run must activate within the schedule.
#[test]
fn lossy_and_slow_networks_still_activate_within_the_retry_schedule() {
    let _serial = serial();
    let n = runs(10);
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365", "--seats", "50"]);
    let server = vendor.serve(&["--rate-limit", "0"]);
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = conditions()
            .into_iter()
            .enumerate()
            .map(|(index, (name, faults))| {
                let (vendor, key, server) = (&vendor, &key, &server);
                scope.spawn(move || {
                    let proxy = Proxy::start(server.addr, faults, 0x5eed + index as u64);
                    let home = Home::new();
                    home.place_studio(vendor, &proxy.addr.to_string());
                    // Stores the key (its own activation may or may not get through).
                    let out = home.set_key("acme-studio", key);
                    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
                    let mut times = Vec::new();
                    // Per run: how many scheduler rounds it took (1 = at once).
                    let mut rounds_needed = Vec::new();
                    for run in 0..n {
                        let mut round = 1;
                        loop {
                            let started = unix_now();
                            let t0 = Instant::now();
                            let out = home.run(&["activate", "acme-studio", "--json"]);
                            let took = t0.elapsed();
                            let status = activate_json(&out);
                            let attempt = &status["last_attempt"];
                            // Nothing previously valid is lost on a failed round either.
                            assert_eq!(status["state"], "activated", "{name} run {run}");
                            // Under the 7 s schedule plus process start.
                            assert!(took < Duration::from_secs(9), "{name} run {run}: {took:?}");
                            if attempt["outcome"] == "activated"
                                && attempt["at"].as_u64().is_some_and(|at| at >= started)
                            {
                                if round == 1 {
                                    times.push(took);
                                }
                                break;
                            }
                            assert_eq!(
                                attempt["outcome"], "no-answer",
                                "{name} run {run}: only silence may fail: {status}"
                            );
                            // The scheduler's next try, 15 minutes later (profile §8: every
                            // 15 minutes for 2 hours): the same command it runs.
                            round += 1;
                            assert!(
                                round <= SCHEDULER_ROUNDS,
                                "{name} run {run}: still no activation after {SCHEDULER_ROUNDS} rounds (2 h of retries)"
                            );
                        }
                        rounds_needed.push(round);
                    }
                    let stats = proxy.stats();
                    (
                        name,
                        times,
                        rounds_needed,
                        format!(
                            "proxy: {} in, {} dropped, {} duplicated, {} reordered",
                            stats.received.load(Ordering::Relaxed),
                            stats.dropped.load(Ordering::Relaxed),
                            stats.duplicated.load(Ordering::Relaxed),
                            stats.reordered.load(Ordering::Relaxed)
                        ),
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("condition thread"))
            .collect()
    });
    for (name, mut times, rounds_needed, proxy) in results {
        times.sort();
        let ok = times.len();
        let failures = n - ok;
        let most_rounds = rounds_needed.iter().max().copied().unwrap_or(0);
        println!(
            "network {name:<32} runs {n:>4}  at once {ok:>4} ({:>5.1}%)  within the schedule {n:>4} (most rounds {most_rounds})  time ms p50 {:>5} p90 {:>5} p99 {:>5} max {:>5}  {proxy}",
            100.0 * ok as f64 / n as f64,
            percentile(&times, 50).as_millis(),
            percentile(&times, 90).as_millis(),
            percentile(&times, 99).as_millis(),
            times.last().copied().unwrap_or_default().as_millis(),
        );
        if name.contains("loss") || name == "combined" {
            // 30% loss each way: an attempt gets through with p = 0.49, so three attempts
            // (late answers count) fail together with p ~ 0.13, and the scheduler's next
            // round covers it (asserted above); more than half must succeed at once.
            assert!(ok * 2 > n, "{name}: {ok} of {n}");
        } else {
            assert_eq!(failures, 0, "{name}: no loss, so every run activates");
        }
    }
}

/// The answer to attempt 1 arrives 1.4 s late, during attempt 2 (the first wait is 1 s), and
/// every later request is swallowed: only the kept keys of attempt 1 can open it.
#[test]
fn an_answer_to_attempt_one_arriving_during_attempt_two_is_accepted() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&[]);
    let relay = UdpSocket::bind("127.0.0.1:0").expect("relay");
    let upstream = UdpSocket::bind("127.0.0.1:0").expect("upstream");
    upstream.connect(server.addr).expect("connect");
    let relay_addr = relay.local_addr().expect("addr");
    let home = Home::new();
    home.place_studio(&vendor, &relay_addr.to_string());
    let out = home.set_key("acme-studio", &key);
    assert!(
        matches!(out.status.code(), Some(3)),
        "nobody relays yet: {}",
        stderr(&out)
    );
    // The key's own activation left three requests queued at the relay: not this run's.
    relay.set_nonblocking(true).expect("nonblocking");
    let mut stale = [0u8; 2048];
    while relay.recv_from(&mut stale).is_ok() {}
    relay.set_nonblocking(false).expect("blocking");
    let requests = Arc::new(AtomicU64::new(0));
    let relay_thread = {
        let requests = Arc::clone(&requests);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            relay
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let (len, client) = relay.recv_from(&mut buffer).expect("attempt 1");
            let first = Instant::now();
            requests.fetch_add(1, Ordering::Relaxed);
            upstream.send(&buffer[..len]).expect("forward");
            let mut answer = [0u8; 2048];
            let answer_len = upstream.recv(&mut answer).expect("lapd answers attempt 1");
            // Swallow attempt 2 (sent at 1 s), then deliver attempt 1's answer at 1.4 s.
            relay
                .set_read_timeout(Some(Duration::from_millis(1400)))
                .expect("timeout");
            while first.elapsed() < Duration::from_millis(1400) {
                if relay.recv_from(&mut buffer).is_ok() {
                    requests.fetch_add(1, Ordering::Relaxed);
                }
                let left = Duration::from_millis(1400).saturating_sub(first.elapsed());
                let _ = relay.set_read_timeout(Some(left.max(Duration::from_millis(1))));
            }
            relay
                .send_to(&answer[..answer_len], client)
                .expect("late answer");
        })
    };
    let t0 = Instant::now();
    let out = home.run(&["activate", "acme-studio", "--json"]);
    let took = t0.elapsed();
    relay_thread.join().expect("relay");
    let status = activate_json(&out);
    assert_eq!(status["last_attempt"]["outcome"], "activated", "{status}");
    assert_eq!(status["state"], "activated");
    assert!(
        requests.load(Ordering::Relaxed) >= 2,
        "attempt 2 was sent before the answer arrived"
    );
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    println!(
        "late answer: accepted after {took:?}, {} requests sent",
        requests.load(Ordering::Relaxed)
    );
}

// ---------------------------------------------------------------------------------------
// 2. A hostile or broken server
// ---------------------------------------------------------------------------------------

/// What the status must say about each attack: the outcome, the code of the first cause and
/// a phrase of its sentence.
fn expected(attack: Attack) -> (&'static str, &'static str, &'static str) {
    match attack {
        Attack::BadSignature => (
            "rejected-answer",
            "datagrams-rejected",
            "authentication failed (Ed25519 signature",
        ),
        Attack::SignedGarbage => (
            "rejected-answer",
            "datagrams-rejected",
            "authentication failed (Poly1305 tag",
        ),
        Attack::WrongClientId => (
            "rejected-answer",
            "datagrams-rejected",
            "ClientId does not match",
        ),
        Attack::WrongSku => (
            "rejected-answer",
            "datagrams-rejected",
            "SKUId does not match",
        ),
        Attack::MalformedTlv => (
            "rejected-answer",
            "invalid-server-data",
            "invalid ServerData",
        ),
        Attack::NotAfterInThePast => (
            "rejected-answer",
            "invalid-server-data",
            "NotAfter is already past",
        ),
        Attack::LargerThanRequest => (
            "rejected-answer",
            "datagrams-rejected",
            "response datagram too long",
        ),
        // A connected socket: the kernel drops datagrams from any other address or port,
        // so to the client this is silence: reachability first (the key was accepted
        // before, so its refusal is the lesser suspect), then the key; the clock is named
        // only as checked or not, never first without a measurement.
        Attack::FromAnotherPort | Attack::FromAnotherAddress => {
            ("no-answer", "unreachable", "may not be accepted")
        }
        // Random plaintext (first byte: the Version) or random datagrams: their own reasons vary.
        Attack::SealedGarbage | Attack::JunkFlood => (
            "rejected-answer",
            "datagrams-rejected",
            "failed their checks",
        ),
        Attack::JunkFloodThenAnswer => ("activated", "", ""),
    }
}

#[test]
fn a_hostile_server_changes_nothing_and_each_attack_is_named() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365", "--seats", "50"]);
    let server = vendor.serve(&["--rate-limit", "0"]);
    std::thread::scope(|scope| {
        let handles: Vec<_> = Attack::ALL
            .into_iter()
            .enumerate()
            .map(|(index, attack)| {
                let (vendor, key, server) = (&vendor, &key, &server);
                scope.spawn(move || {
                    let home = activated_home(vendor, key, server.addr);
                    let before = Kept::read(&home.data);
                    assert!(before.license_id.is_string(), "{attack:?}: activated first");
                    let hostile = HostileServer::start(vendor, attack, 0xbad + index as u64);
                    let out = home.run(&[
                        "activate",
                        "acme-studio",
                        "--server",
                        &hostile.addr.to_string(),
                        "--json",
                    ]);
                    let status = activate_json(&out);
                    let attempt = &status["last_attempt"];
                    let (outcome, code, phrase) = expected(attack);
                    assert_eq!(attempt["outcome"], outcome, "{attack:?}: {status}");
                    assert!(
                        hostile.requests.load(Ordering::Relaxed) >= 1,
                        "{attack:?}: the hostile server was asked"
                    );
                    let after = Kept::read(&home.data);
                    if attack == Attack::JunkFloodThenAnswer {
                        // 50 junk datagrams before it did not hide the valid answer.
                        assert_ne!(after.license_id, before.license_id, "{status}");
                        return (attack, "accepted the valid answer behind the flood".into());
                    }
                    let diagnosis = attempt["diagnosis"].to_string();
                    assert_eq!(
                        attempt["diagnosis"][0]["code"], code,
                        "{attack:?}: the first cause: {diagnosis}"
                    );
                    assert!(
                        diagnosis.contains(phrase),
                        "{attack:?}: the diagnosis names the cause ({phrase:?}): {diagnosis}"
                    );
                    assert_eq!(after, before, "{attack:?}: the previous activation stands");
                    assert_eq!(status["state"], "activated", "{attack:?}");
                    assert_record_verifies(vendor, &home.record_path(), &format!("{attack:?}"));
                    let first = attempt["diagnosis"][0]["message"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    (attack, first)
                })
            })
            .collect();
        for handle in handles {
            let (attack, first) = handle.join().expect("attack thread");
            println!("hostile {attack:?}: {first}");
        }
    });
}

// ---------------------------------------------------------------------------------------
// 3. lapd under attack
// ---------------------------------------------------------------------------------------

/// `lapd serve` with its log (info) in a file, so its counters can be read when it stops.
struct LoggedServer {
    child: std::process::Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl LoggedServer {
    fn start(vendor: &Vendor, log: PathBuf) -> Self {
        let mut child = Command::new(bin("lapd"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--keys",
                &vendor.path("keys"),
                "--catalog",
                &vendor.path("catalog.toml"),
                "--db",
                &vendor.path("assignments.sqlite"),
            ])
            .env("LAPD_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("lapd starts");
        let mut first = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
            &mut first,
        )
        .expect("first line");
        let addr = first.trim().parse().expect("address");
        Self { child, addr, log }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// SIGTERM, wait, and the counters from the "lapd stopped" line.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("lapd exits");
        let log = std::fs::read_to_string(&self.log).expect("log");
        let line = log
            .lines()
            .find(|l| l.contains("lapd stopped"))
            .unwrap_or_else(|| panic!("no final stats in the log: {log}"))
            .to_owned();
        (status, line)
    }
}

fn counter(line: &str, name: &str) -> u64 {
    // The log is coloured: drop the ANSI sequences (ESC [ ... m) first.
    let mut plain = String::with_capacity(line.len());
    let mut in_escape = false;
    for c in line.chars() {
        match (in_escape, c) {
            (false, '\u{1b}') => in_escape = true,
            (false, c) => plain.push(c),
            (true, 'm') => in_escape = false,
            (true, _) => {}
        }
    }
    plain
        .split(|c: char| c.is_whitespace() || c == '"')
        .find_map(|word| {
            word.trim_start_matches('=')
                .strip_prefix(&format!("{name}="))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Timed activations from 127.0.0.1, one every 80 ms (12.5/s, under the 20/s per-address
/// limit), up to 3 attempts of 1 s each: the latencies of those answered, and how many were not.
fn real_clients(
    addr: SocketAddr,
    vendor: &Vendor,
    key: [u8; 16],
    until: &dyn Fn(usize) -> bool,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    while !until(latencies.len()) {
        let installation = Installation::new(BASE_SKU, key, 7);
        // The engine's first two waits (1 s, 2 s... here 1 s each): a lost datagram retried.
        // The time is the server's: request out to answer in (the test client is a debug
        // build, whose own crypto takes longer than lapd's answer).
        let answer = activate_timed(
            addr,
            &vendor.public,
            &installation,
            3,
            Duration::from_secs(1),
        );
        match answer {
            Some((_, round_trip)) => latencies.push(round_trip),
            None => failures += 1,
        }
        std::thread::sleep(Duration::from_millis(80));
    }
    latencies.sort();
    (latencies, failures)
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one campaign: set-up, flood, figures, checks"
)]
fn lapd_under_a_flood_stays_up_silent_and_flat_and_real_clients_stay_fast() {
    let _serial = serial();
    let (junk, bad_tags, rate) = if long_campaign() {
        (1_000_000_u64, 100_000_u64, 20_000.0)
    } else {
        (50_000, 5_000, 4_000.0)
    };
    let vendor = Vendor::new();
    let (_, key) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LoggedServer::start(&vendor, dir.path().join("lapd.log"));
    let addr = server.addr;
    // Warm up: one real activation, so the seat exists and the RSS is that of a live server.
    let installation = Installation::new(BASE_SKU, key, 7);
    assert!(
        activate(
            addr,
            &vendor.public,
            &installation,
            3,
            Duration::from_secs(1)
        )
        .is_some()
    );
    // The same clients without a flood: the baseline the flood is measured against.
    let (quiet, _) = real_clients(addr, &vendor, key, &|ok| ok >= 40);
    let quiet_p99 = percentile(&quiet, 99);
    let rss_before = server.rss_kib();

    // A well-formed request to disguise: the bad-tag ones are copies with a random tag.
    let (template, _) = seal_request(
        &vendor.public,
        &installation.request(unix_now()),
        &EphemeralSecret::from_bytes([9; 32]),
    )
    .expect("seal");
    let done = AtomicBool::new(false);
    let answered_attackers = AtomicU64::new(0);
    let started = Instant::now();
    let (latencies, real_failures) = std::thread::scope(|scope| {
        // Junk and bad tags from 127.0.0.2-127.0.0.41, 16 ports each: many sources, none of
        // them the real clients' 127.0.0.1 (the limiter is per source address).
        let attackers: Vec<_> = [(junk, false), (bad_tags, true)]
            .into_iter()
            .map(|(count, tagged)| {
                let (template, answered) = (&template, &answered_attackers);
                scope.spawn(move || {
                    let first_octet = if tagged { 22 } else { 2 };
                    let sockets: Vec<UdpSocket> = (0..20u8)
                        .flat_map(|host| {
                            (0..16).map(move |_| {
                                let s = UdpSocket::bind((
                                    std::net::Ipv4Addr::new(127, 0, 0, first_octet + host),
                                    0,
                                ))
                                .expect("attacker socket");
                                s.set_nonblocking(true).expect("nonblocking");
                                s
                            })
                        })
                        .collect();
                    let mut rng = Rng::new(if tagged { 1 } else { 2 });
                    let mut tagged_buffer = template.clone();
                    let mut junk_buffer = [0u8; 1400];
                    let t0 = Instant::now();
                    for i in 0..count {
                        if i % 500 == 0 {
                            // Paced per attacker (4,000/s in CI, what the debug build keeps up
                            // with; 20,000/s in the long run): a full-speed sender on this
                            // 2-core machine would measure our own CPU starvation.
                            let due = Duration::from_secs_f64(i as f64 / rate);
                            std::thread::sleep(due.saturating_sub(t0.elapsed()));
                        }
                        let socket = &sockets[usize::try_from(i).unwrap_or(0) % sockets.len()];
                        let bytes: &[u8] = if tagged {
                            let n = tagged_buffer.len();
                            rng.fill(&mut tagged_buffer[n - 16..]);
                            &tagged_buffer
                        } else {
                            // 1 to 1400 bytes: most of an impossible length, some within the
                            // request range (they reach the limiter, then the X25519 work).
                            let len = 1 + usize::try_from(rng.next_u64() % 1400).unwrap_or(0);
                            rng.fill(&mut junk_buffer[..len]);
                            &junk_buffer[..len]
                        };
                        // A full socket buffer is the kernel dropping for us: keep going.
                        let _ = socket.send_to(bytes, addr);
                    }
                    // Silent drop: not one byte came back to any attacking socket.
                    std::thread::sleep(Duration::from_millis(300));
                    let mut buffer = [0u8; 2048];
                    for s in &sockets {
                        while s.recv_from(&mut buffer).is_ok() {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        let real = scope.spawn(|| {
            real_clients(addr, &vendor, key, &|ok| {
                done.load(Ordering::Relaxed) && ok >= 50
            })
        });
        for attacker in attackers {
            attacker.join().expect("attacker");
        }
        done.store(true, Ordering::Relaxed);
        real.join().expect("real clients")
    });
    let attack_secs = started.elapsed().as_secs_f64();
    let rss_after = server.rss_kib();
    let (exit, stats) = server.stop();
    let stats = stats
        .split_once("stats")
        .map_or(stats.as_str(), |(_, rest)| rest)
        .to_owned();
    let sorted = latencies;
    let p50 = percentile(&sorted, 50);
    let p99 = percentile(&sorted, 99);
    println!(
        "lapd flood: {junk} junk + {bad_tags} bad-tag datagrams ({rate}/s each) in {attack_secs:.1} s; real clients: {} ok, {real_failures} lost, p50 {p50:?} p99 {p99:?} max {:?} (without flood: p50 {:?} p99 {quiet_p99:?}); RSS {rss_before} -> {rss_after} KiB; replies to attackers: {}; {stats}",
        sorted.len(),
        sorted.last().copied().unwrap_or_default(),
        percentile(&quiet, 50),
        answered_attackers.load(Ordering::Relaxed)
    );
    assert!(exit.success(), "lapd stopped cleanly, no crash: {exit:?}");
    assert_eq!(
        answered_attackers.load(Ordering::Relaxed),
        0,
        "silent drop: no response bytes to junk or bad tags"
    );
    assert!(
        rss_after < rss_before + 8 * 1024,
        "flat memory: {rss_before} -> {rss_after} KiB"
    );
    let received = counter(&stats, "received");
    let answered = counter(&stats, "answered");
    // The warm-up, the quiet run and the flooded run. A real client whose answer is slow
    // tries again (up to 3 attempts, each a fresh request the server answers), so the real
    // clients may be answered up to 3 times each; the attackers never (checked above).
    let real_sent = (1 + quiet.len() + sorted.len()) as u64;
    let real_attempts_at_most = 3 * (real_sent + real_failures as u64);
    assert!(
        (real_sent..=real_attempts_at_most).contains(&answered),
        "only the real clients were answered ({real_sent} ok): {stats}"
    );
    assert!(
        counter(&stats, "dropped[length]") > 0,
        "junk of impossible length dropped first: {stats}"
    );
    assert!(
        counter(&stats, "dropped[rate-limited]") > 0,
        "bad tags beyond each source's burst are rate-limited before any X25519 work: {stats}"
    );
    assert!(
        counter(&stats, "dropped[authentication]") > 0,
        "bad tags within the burst fail authentication: {stats}"
    );
    assert!(received > answered, "{stats}");
    // The figures (p99 under 10 ms, at most 1% lost) hold for the release build the
    // long campaign runs (LAPWING_BIN_DIR=target/release). The debug build CI runs does
    // X25519 in about a millisecond, so the ~800 bad-tag key agreements a second that the
    // limiter lets through (20/s from each of 40 sources) saturate a core: there, real
    // clients must still be served within their retry schedule, at most 10% lost (2 of 52
    // in the run RELIABILITY.md reports).
    let (bound, lost_percent) = if long_campaign() {
        (Duration::from_millis(10), 1)
    } else {
        (Duration::from_secs(3), 10)
    };
    assert!(
        real_failures * 100 <= sorted.len() * lost_percent,
        "at most {lost_percent}% of real activations lost: {real_failures}"
    );
    assert!(p99 < bound, "real clients' p99 {p99:?} under {bound:?}");
}

// ---------------------------------------------------------------------------------------
// 4. The client's own failures
// ---------------------------------------------------------------------------------------

/// kill -9 at random moments of `lapctl activate` (a renewal: exchange, record write, state
/// commit), like a power cut: the previous grant and a verifiable record always survive.
#[test]
fn kill_9_during_activation_never_loses_the_grant_or_the_record() {
    let _serial = serial();
    let n = if long_campaign() { 1000 } else { 150 };
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&["--rate-limit", "0"]);
    let home = activated_home(&vendor, &key, server.addr);
    let before = Kept::read(&home.data);
    // How long an undisturbed renewal takes: the kills are spread over 0..1.2x of it.
    let t0 = Instant::now();
    let out = home.run(&["activate", "acme-studio"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let span = t0.elapsed().mul_f64(1.2);
    let mut rng = Rng::new(0x6b11);
    let (mut killed_mid_run, mut temporaries_seen) = (0, 0);
    for run in 0..n {
        let mut child = home
            .command(&["activate", "acme-studio"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(rng.upto(span));
        if child.try_wait().expect("poll").is_none() {
            killed_mid_run += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        // A temporary file left means the kill landed between write and rename.
        for dir in [home.data.clone(), home.data.join("activations")] {
            temporaries_seen += std::fs::read_dir(&dir)
                .expect("dir")
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
                .count();
        }
        let after = Kept::read(&home.data);
        assert_eq!(
            (&after.license_id, &after.not_after),
            (&before.license_id, &before.not_after),
            "run {run}: the grant survives"
        );
        assert_record_verifies(&vendor, &home.record_path(), &format!("run {run}"));
    }
    println!(
        "kill -9 during activate: {n} runs, {killed_mid_run} killed mid-run, {temporaries_seen} temporary files seen after a kill (killed between write and rename), span {span:?}"
    );
    assert!(
        killed_mid_run * 3 > n,
        "the kills must land during runs ({killed_mid_run} of {n})"
    );
    let status = home.status();
    assert_eq!(status["state"], "activated");
    let out = home.run(&["activate", "acme-studio", "--json"]);
    assert_eq!(activate_json(&out)["last_attempt"]["outcome"], "activated");
}

/// A tmpfs mounted for one test, unmounted when dropped (the tests run as root, as CI does).
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(path: &Path, size: &str) -> Self {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "mount tmpfs (needs root): {}",
            stderr(&out)
        );
        Self(path.to_owned())
    }

    fn remount(&self, option: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(&self.0)
            .output()
            .expect("mount runs");
        assert!(out.status.success(), "remount {option}: {}", stderr(&out));
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A home whose data directory is a small tmpfs, activated.
fn home_on_tmpfs(vendor: &Vendor, key: &str, server: SocketAddr) -> (Home, Mount) {
    let mut home = Home::new();
    let mount = Mount::tmpfs(&home.path("small"), "512k");
    home.data.clone_from(&mount.0);
    home.place_studio(vendor, &server.to_string());
    let out = home.set_key("acme-studio", key);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (home, mount)
}

fn both(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out))
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in [dir.to_owned(), dir.join("activations")] {
        found.extend(
            std::fs::read_dir(&dir)
                .expect("dir")
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(".tmp-")),
        );
    }
    found
}

#[test]
fn a_full_disk_during_state_writes_loses_nothing_and_says_no_space() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&["--rate-limit", "0"]);
    let (home, _mount) = home_on_tmpfs(&vendor, &key, server.addr);
    let before = Kept::read(&home.data);
    // Fill the disk to the last page.
    let filler = home.data.join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).expect("filler");
        while file.write_all(&[0u8; 4096]).is_ok() {}
        while file.write_all(&[0u8; 1]).is_ok() {}
    }
    // A renewal: its record write, then its state commit, meet the full disk.
    let out = home.run(&["activate", "acme-studio", "--json"]);
    let text = both(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("No space left"), "names the cause: {text}");
    // A pure state write (an override) too.
    let out = home.run(&["server", "set", "--product", "acme-studio", "127.0.0.1:5"]);
    let text_set = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text_set}");
    assert!(text_set.contains("No space left"), "{text_set}");
    assert_eq!(
        Kept::read(&home.data),
        before,
        "the grant and record survive"
    );
    assert!(
        temporaries(&home.data).is_empty(),
        "no half-written file left"
    );
    let status = home.status();
    assert_eq!(status["state"], "activated", "{status}");
    // Space again: everything works.
    std::fs::remove_file(&filler).expect("free space");
    let out = home.run(&["activate", "acme-studio", "--json"]);
    assert_eq!(activate_json(&out)["last_attempt"]["outcome"], "activated");
    println!(
        "full disk: activate -> {:?}; server set -> {:?}",
        text.lines().last().unwrap_or(""),
        text_set.lines().last().unwrap_or("")
    );
}

#[test]
fn a_read_only_data_directory_loses_nothing_and_says_read_only() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&["--rate-limit", "0"]);
    let (home, mount) = home_on_tmpfs(&vendor, &key, server.addr);
    let before = Kept::read(&home.data);
    mount.remount("ro");
    let out = home.run(&["activate", "acme-studio", "--json"]);
    let text = both(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("Read-only file system"),
        "names the cause: {text}"
    );
    let out = home.run(&["server", "set", "--product", "acme-studio", "127.0.0.1:5"]);
    let text_set = both(&out);
    assert_eq!(out.status.code(), Some(1), "{text_set}");
    assert!(text_set.contains("Read-only file system"), "{text_set}");
    assert_eq!(Kept::read(&home.data), before);
    mount.remount("rw");
    let out = home.run(&["activate", "acme-studio", "--json"]);
    assert_eq!(activate_json(&out)["last_attempt"]["outcome"], "activated");
    println!(
        "read-only: activate -> {:?}; server set -> {:?}",
        text.lines().last().unwrap_or(""),
        text_set.lines().last().unwrap_or("")
    );
}

#[test]
fn a_keyring_locked_mid_run_loses_nothing_and_says_locked() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let out = desk.set_key("acme-studio", &key);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let before = Kept::read(&desk.path("home"));
    desk.session.lock_keyring();
    let out = desk.run(&["activate", "acme-studio", "--json"]);
    let text = both(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("locked"), "names the cause: {text}");
    assert!(!text.contains(&key), "no secret in the message");
    assert_eq!(Kept::read(&desk.path("home")), before);
    let status = desk.json(&["status", "--json"]);
    assert_eq!(status[0]["state"], "activated", "{status}");
    println!("locked keyring: {:?}", text.lines().last().unwrap_or(""));
}

/// Suspend for three days, resume: the grant still stands (three days fewer), and the
/// server, which allows 30 s of skew, ignores a clock that jumped without it. The time server
/// the machine policy names measures the jump (one SNTP query), and the clock is named first
/// with the offset it measured.
#[test]
fn a_clock_jump_of_three_days_keeps_the_grant_and_blames_the_clock() {
    let _serial = serial();
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&[]);
    let home = activated_home(&vendor, &key, server.addr);
    std::fs::write(
        home.path("policy.toml"),
        format!("[clock]\ntime_server = \"{}\"\n", sntp_server()),
    )
    .expect("policy");
    let before = Kept::read(&home.data);
    let jumped = |args: &[&str]| {
        home.command(args)
            .env("LAPWING_CLOCK_OFFSET", (3 * 86_400).to_string())
            .output()
            .expect("runs")
    };
    let out = jumped(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status[0]["state"], "activated", "{status}");
    let days = status[0]["days_left"].as_u64().expect("days");
    assert!((361..=362).contains(&days), "three days fewer: {days}");
    let out = jumped(&["activate", "acme-studio", "--json"]);
    let status = activate_json(&out);
    assert_eq!(status["last_attempt"]["outcome"], "no-answer", "{status}");
    let first = status["last_attempt"]["diagnosis"][0]["message"]
        .as_str()
        .unwrap_or("");
    let clock = &status["last_attempt"]["diagnosis"][0];
    assert_eq!(
        clock["code"], "clock-off",
        "the clock is named first: {status}"
    );
    let offset = clock["offset_secs"].as_i64().expect("measured");
    assert!(
        (3 * 86_400 - 5..=3 * 86_400 + 5).contains(&offset),
        "measured three days ahead: {offset}"
    );
    assert!(first.contains("3 days ahead of"), "{first}");
    assert_eq!(status["state"], "activated");
    assert_eq!(Kept::read(&home.data), before);
    let out = home.run(&["activate", "acme-studio", "--json"]);
    assert_eq!(activate_json(&out)["last_attempt"]["outcome"], "activated");
    println!("clock +3 days: {days} days left, attempt: {first:?}");
}
