//! `cargo bench -p lapd --bench seats` (run by `./dev.sh bench` and `./dev.sh bench seats`):
//! lapd with many seats in each backend, next to an empty database. Per backend and size:
//! start-up time (spawn to the printed address), resident memory after start-up and after
//! the load, and the rate and latency of returning machines and of new ones, with lapd on
//! core 0 (one socket) and the load generator on core 1. Next to each rate, what one core
//! busy with lapd alone answers (the server's CPU time per answer): PostgreSQL's own work,
//! which a vendor runs on its database host, shares these two cores with lapd and the load.
//!
//! Sizes: `LAPD_BENCH_SEATS` (comma-separated, default `0,1000000`); backends:
//! `LAPD_BENCH_BACKENDS` (`sqlite`, `postgres`, or both, the default). The databases are filled
//! with a bulk insert (`lapd db fill`), not through the protocol. PostgreSQL runs privately
//! on a Unix socket with fsync and synchronous commits on and the settings the vendor guide
//! gives for millions of seats (`SETTINGS_AT_SCALE`); lapd reaches it over that socket. After
//! a fill, PostgreSQL's table statistics are brought up to date and a checkpoint writes the
//! fill back, as after any bulk import, so the figures are those of a database in service,
//! not of one still writing back its import.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use lapd::test_util::TempPostgres;

const LAPD: &str = env!("CARGO_BIN_EXE_lapd");
const SKU: &str = "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11";
const SECONDS: &str = "5";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Resident and peak resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time a process's threads have used so far, in nanoseconds (the kernel's scheduler
/// statistics, summed over its threads).
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

struct Vendor {
    dir: tempfile::TempDir,
}

impl Vendor {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let vendor = Self { dir };
        run(LAPD, &["keygen", "--out", &vendor.path("keys")]);
        std::fs::write(
            vendor.dir.path().join("catalog.toml"),
            format!("[[sku]]\nid = \"{SKU}\"\nname = \"Bench\"\n"),
        )
        .expect("catalog");
        let key = run(
            LAPD,
            &[
                "license",
                "new",
                "--catalog",
                &vendor.path("catalog.toml"),
                "--sku",
                SKU,
                "--seats",
                "100000000",
                "--days",
                "3650",
            ],
        );
        std::fs::write(vendor.dir.path().join("license.key"), format!("{key}\n")).expect("key");
        vendor
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

struct Figures {
    backend: &'static str,
    seats: u64,
    fill_s: f64,
    startup_ms: f64,
    rss_start: f64,
    rss_end: f64,
    peak: f64,
    returning: serde_json::Value,
    returning_at: serde_json::Value,
    new: serde_json::Value,
    new_at: serde_json::Value,
}

/// One `lapd bench` run against the server `pid` at `address`; its report, with the server's
/// CPU time per answer added (`lapd_cpu_us_per_answer`): what one of its cores can answer,
/// whatever else (the database, the load generator) used the machine's cores meanwhile.
fn load(vendor: &Vendor, pid: u32, address: &str, machines: &str, rate: u32) -> serde_json::Value {
    let cpu_before = cpu_ns(pid);
    let text = run(
        "taskset",
        &[
            "-c",
            "1",
            LAPD,
            "bench",
            "--server",
            address,
            "--public",
            &vendor.path("keys/server.toml"),
            "--sku",
            SKU,
            "--key-file",
            &vendor.path("license.key"),
            "--machines",
            machines,
            "--rate",
            &rate.to_string(),
            "--seconds",
            SECONDS,
            "--concurrency",
            "64",
            "--json",
        ],
    );
    let cpu = cpu_ns(pid).saturating_sub(cpu_before);
    let mut report: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bench output {text}: {e}"));
    let answers = report["answered_with_warmup"].as_f64().unwrap_or(f64::NAN);
    let cpu_us = std::time::Duration::from_nanos(cpu).as_secs_f64() * 1e6;
    report["lapd_cpu_us_per_answer"] = serde_json::json!(cpu_us / answers);
    report
}

fn measure(backend: &'static str, db: &str, seats: u64) -> Figures {
    let vendor = Vendor::new();
    let started = Instant::now();
    if seats > 0 {
        run(
            LAPD,
            &[
                "db",
                "fill",
                "--db",
                db,
                "--seats",
                &seats.to_string(),
                "--key-file",
                &vendor.path("license.key"),
            ],
        );
    } else {
        run(LAPD, &["db", "migrate", "--db", db]);
    }
    let fill_s = started.elapsed().as_secs_f64();
    if backend == "postgres" && seats > 0 {
        let mut client =
            postgres::Client::connect(db, postgres::NoTls).expect("connecting to PostgreSQL");
        // One statement each: several in one batch run as one transaction, which VACUUM
        // refuses.
        for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
            client
                .batch_execute(statement)
                .unwrap_or_else(|e| panic!("{statement} after the fill: {e}"));
        }
    }
    // Whatever the fill left in the page cache is dropped by no one: the figures are warm.
    let spawned = Instant::now();
    let mut child = Command::new("taskset")
        .args([
            "-c",
            "0",
            LAPD,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--rate-limit",
            "0",
        ])
        .args([
            "--keys",
            &vendor.path("keys"),
            "--catalog",
            &vendor.path("catalog.toml"),
            "--db",
            db,
        ])
        .env("LAPD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("lapd serve");
    let stdout = child.stdout.take().expect("stdout");
    let server = Killed(child);
    let mut address = String::new();
    BufReader::new(stdout)
        .read_line(&mut address)
        .expect("address");
    let startup_ms = spawned.elapsed().as_secs_f64() * 1000.0;
    let address = address.trim().to_owned();
    let pid = server.0.id();
    let (rss_start, _) = rss_mib(pid);
    let filled = format!("filled:{seats}");
    let returning_machines = if seats > 0 { filled.as_str() } else { "one" };
    let returning = load(&vendor, pid, &address, returning_machines, 0);
    let returning_at = load(&vendor, pid, &address, returning_machines, 1000);
    let new = load(&vendor, pid, &address, "new", 0);
    let new_at = load(&vendor, pid, &address, "new", 200);
    let (rss_end, peak) = rss_mib(pid);
    drop(server);
    Figures {
        backend,
        seats,
        fill_s,
        startup_ms,
        rss_start,
        rss_end,
        peak,
        returning,
        returning_at,
        new,
        new_at,
    }
}

fn sizes() -> Vec<u64> {
    std::env::var("LAPD_BENCH_SEATS")
        .unwrap_or_else(|_| "0,1000000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("LAPD_BENCH_SEATS: comma-separated counts")
        })
        .collect()
}

/// `LAPD_BENCH_BACKENDS`: `sqlite`, `postgres` or both (the default), comma-separated.
fn backends() -> Vec<&'static str> {
    let wanted = std::env::var("LAPD_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let chosen: Vec<&'static str> = ["sqlite", "postgres"]
        .into_iter()
        .filter(|b| wanted.split(',').any(|w| w.trim() == *b))
        .collect();
    assert!(
        !chosen.is_empty(),
        "LAPD_BENCH_BACKENDS: sqlite, postgres or both, comma-separated (got {wanted:?})"
    );
    chosen
}

fn main() {
    // `cargo bench` passes --bench; any other argument (a filter) is not ours to read.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let backends = backends();
    let postgres = backends
        .contains(&"postgres")
        .then(TempPostgres::start_at_scale);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut figures = Vec::new();
    for seats in sizes() {
        if backends.contains(&"sqlite") {
            let sqlite: PathBuf = dir.path().join(format!("seats-{seats}.sqlite"));
            let sqlite = sqlite.to_string_lossy().into_owned();
            println!("== sqlite, {seats} seats");
            figures.push(measure("sqlite", &sqlite, seats));
            let _ = std::fs::remove_file(Path::new(&sqlite));
        }
        if let Some(postgres) = &postgres {
            println!("== postgres, {seats} seats");
            figures.push(measure("postgres", &postgres.database(), seats));
        }
    }
    println!(
        "\n=== lapd seats (release; {cores} cores shared with other work; lapd on core 0 with one socket, load on core 1)"
    );
    println!(
        "backend   seats      fill s  start-up ms  RSS MiB start/end/peak  returning/s (per lapd core)  p99 ms @1000/s  new/s (per lapd core)  p99 ms @200/s"
    );
    for f in &figures {
        let ms = |v: &serde_json::Value| v["p99_us"].as_f64().unwrap_or(f64::NAN) / 1000.0;
        let rate = |v: &serde_json::Value| v["responses_per_second"].as_f64().unwrap_or(f64::NAN);
        // A core fully busy with lapd alone would answer this many a second.
        let per_core =
            |v: &serde_json::Value| 1e6 / v["lapd_cpu_us_per_answer"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<9} {:<10} {:>6.1}  {:>11.0}  {:>6.1}/{:>5.1}/{:>5.1}        {:>11.0} ({:>6.0})  {:>14.2}  {:>5.0} ({:>6.0})  {:>13.2}",
            f.backend,
            f.seats,
            f.fill_s,
            f.startup_ms,
            f.rss_start,
            f.rss_end,
            f.peak,
            rate(&f.returning),
            per_core(&f.returning),
            ms(&f.returning_at),
            rate(&f.new),
            per_core(&f.new),
            ms(&f.new_at)
        );
        for (name, run) in [
            ("returning max", &f.returning),
            ("returning @1000/s", &f.returning_at),
            ("new max", &f.new),
            ("new @200/s", &f.new_at),
        ] {
            if run["timeouts"].as_u64().unwrap_or(0) > 0 || run["invalid"].as_u64().unwrap_or(0) > 0
            {
                println!(
                    "  {} {}: {} timeouts, {} invalid",
                    f.backend, name, run["timeouts"], run["invalid"]
                );
            }
        }
    }
    println!(
        "targets: start-up ≤ 1000 ms and RSS ≤ 150 MiB whatever the seat count; new-seat p99 ≤ 5 ms on PostgreSQL"
    );
}
