//! `cargo xtask bench`: the protocol's cost next to its primitives (criterion), then lapd
//! pinned to one core with the load generator on the other.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::paths::target_dir;
use crate::steps::{Result, cmd, fail, step};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn output(program: &str, args: &[&str]) -> Result<String> {
    println!("$ {program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| fail(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

const RUNS: usize = 3;

/// The median and range of one figure over several runs, divided by `unit`.
struct Spread {
    median: f64,
    low: f64,
    high: f64,
}

fn spread(runs: &[serde_json::Value], field: &str, unit: f64) -> Result<Spread> {
    let mut values = runs
        .iter()
        .map(|run| number(run, field).map(|v| v / unit))
        .collect::<Result<Vec<f64>>>()?;
    values.sort_by(f64::total_cmp);
    match (values.first(), values.get(values.len() / 2), values.last()) {
        (Some(&low), Some(&median), Some(&high)) => Ok(Spread { median, low, high }),
        _ => Err(fail(format!("no runs measured {field}"))),
    }
}

fn number(value: &serde_json::Value, field: &str) -> Result<f64> {
    value[field]
        .as_f64()
        .ok_or_else(|| fail(format!("no {field} in {value}")))
}

#[allow(
    clippy::too_many_lines,
    reason = "a linear script: the steps read in the order they run"
)]
pub fn run() -> Result {
    let summary_path = target_dir().join("criterion/lap-summary.json");
    // A stale summary from an earlier run must not pass for this one.
    let _ = std::fs::remove_file(&summary_path);
    step(
        "criterion: client exchange and server turn vs. their primitives",
        || {
            cmd(
                "cargo",
                &[
                    "bench",
                    "--package",
                    "lap-proto",
                    "--bench",
                    "exchange",
                    "--locked",
                ],
            )
        },
    )?;
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&summary_path)
            .map_err(|e| fail(format!("{}: {e}", summary_path.display())))?,
    )
    .map_err(|e| fail(format!("{}: {e}", summary_path.display())))?;
    let primitive_rate = number(&summary, "primitive_limited_rate_per_core")?;

    step("build lapd (release)", || {
        cmd(
            "cargo",
            &["build", "--release", "--package", "lapd", "--locked"],
        )
    })?;
    let lapd = target_dir().join("release/lapd");
    let lapd = lapd.to_str().ok_or_else(|| fail("non-UTF-8 target dir"))?;
    let dir = target_dir().join("bench-lapd");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let sku = crate::demo::DEMO_BASE_SKU;
    output(lapd, &["keygen", "--out", &path("keys")])?;
    std::fs::write(
        dir.join("catalog.toml"),
        format!("[[sku]]\nid = \"{sku}\"\nname = \"Bench\"\n"),
    )
    .map_err(|e| fail(e.to_string()))?;
    let key = output(
        lapd,
        &[
            "license",
            "new",
            "--catalog",
            &path("catalog.toml"),
            "--sku",
            sku,
            "--days",
            "365",
            // Each load run is one more machine (a fresh machine hash): leave seats for all.
            "--seats",
            "10",
            "--feature",
            "pro",
            "--feature",
            "export",
            "--notice",
            "Licensed to the benchmark",
        ],
    )?;

    // Keys never go on a command line, where `ps` shows them: lapd reads this file.
    let key_file = path("license.key");
    std::fs::write(&key_file, format!("{key}\n")).map_err(|e| fail(format!("{key_file}: {e}")))?;

    let mut child = Command::new("taskset")
        .args([
            "-c",
            "0",
            lapd,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--rate-limit",
            "0",
            "--keys",
            &path("keys"),
            "--catalog",
            &path("catalog.toml"),
            "--db",
            &path("a.sqlite"),
        ])
        .env("LAPD_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("taskset lapd: {e}")))?;
    let stdout = child.stdout.take().ok_or_else(|| fail("lapd stdout"))?;
    let server = Killed(child);
    let mut address = String::new();
    BufReader::new(stdout)
        .read_line(&mut address)
        .map_err(|e| fail(e.to_string()))?;
    let address = address.trim().to_owned();

    // Open-loop at a rate needs sockets to spare: a request is sent on a free one, and one
    // that waits for a socket counts in `late_sends`.
    let load = |rate: u32, concurrency: &str| -> Result<serde_json::Value> {
        let text = output(
            "taskset",
            &[
                "-c",
                "1",
                lapd,
                "bench",
                "--server",
                &address,
                "--public",
                &path("keys/server.toml"),
                "--sku",
                sku,
                "--key-file",
                &key_file,
                "--rate",
                &rate.to_string(),
                "--seconds",
                "8",
                "--concurrency",
                concurrency,
                "--json",
            ],
        )?;
        println!("{text}");
        serde_json::from_str(&text).map_err(|e| fail(format!("bench output: {e}")))
    };
    // Several runs of each: this machine's figures move from run to run, and one run alone
    // would say more about its neighbours than about lapd. The median is reported, with
    // the range.
    let mut max = Vec::new();
    step(
        &format!("lapd on core 0, load on core 1: as fast as it answers ({RUNS} runs)"),
        || {
            for _ in 0..RUNS {
                max.push(load(0, "16")?);
            }
            Ok(())
        },
    )?;
    let half = (primitive_rate / 2.0).round();
    let mut at_half = Vec::new();
    step(
        &format!("lapd at half the primitive-limited rate ({half:.0}/s, {RUNS} runs)"),
        || {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rate = half as u32;
            for _ in 0..RUNS {
                at_half.push(load(rate, "64")?);
            }
            Ok(())
        },
    )?;
    drop(server);
    step(
        "an intermediate's turn next to lapd's plain turn (profile §10; ratio ≤ 1.1)",
        || {
            cmd(
                "cargo",
                &[
                    "bench",
                    "--package",
                    "lapd",
                    "--bench",
                    "intermediate",
                    "--locked",
                ],
            )
        },
    )?;
    seats()?;
    step(
        "the engine: activation latency, 100 products at once, lapctl status, lapctl activate (mDNS on and off)",
        || {
            cmd(
                "cargo",
                &["build", "--release", "--package", "lapctl", "--locked"],
            )?;
            cmd(
                "cargo",
                &[
                    "bench",
                    "--package",
                    "lapwing-core",
                    "--bench",
                    "engine",
                    "--locked",
                ],
            )
        },
    )?;
    step("machine identity, cold and warm (no TPM)", || {
        cmd(
            "cargo",
            &[
                "run",
                "--quiet",
                "--release",
                "--package",
                "lapctl",
                "--locked",
                "--",
                "machine",
                "--bench",
                "--no-tpm",
            ],
        )
    })?;

    let sustained = spread(&max, "responses_per_second", 1.0)?;
    let p99_half_ms = spread(&at_half, "p99_us", 1000.0)?;
    let p50_half_ms = spread(&at_half, "p50_us", 1000.0)?;
    let ratio_client = number(&summary, "client_ratio")?;
    let ratio_server = number(&summary, "server_ratio")?;
    println!("\n=== summary");
    println!(
        "client exchange {:.1} µs = {ratio_client:.2}× its primitives   [target ≤ 1.25]",
        number(&summary, "client_exchange_us")?
    );
    println!(
        "server turn     {:.1} µs = {ratio_server:.2}× its primitives   [target ≤ 1.25]",
        number(&summary, "server_turn_us")?
    );
    println!(
        "primitive-limited rate {primitive_rate:.0}/s per core; lapd sustained {:.0}/s on one core = {:.0}% (runs {:.0}–{:.0}%)   [target ≥ 80%]",
        sustained.median,
        100.0 * sustained.median / primitive_rate,
        100.0 * sustained.low / primitive_rate,
        100.0 * sustained.high / primitive_rate,
    );
    println!(
        "p99 at {half:.0}/s: {:.2} ms (runs {:.2}–{:.2} ms; p50 {:.2} ms)   [target < 2 ms]",
        p99_half_ms.median, p99_half_ms.low, p99_half_ms.high, p50_half_ms.median
    );
    for (name, runs) in [("at max", &max), ("at half", &at_half)] {
        let figures: Vec<String> = runs
            .iter()
            .map(|r| format!("{}/{}", r["timeouts"], r["late_sends"]))
            .collect();
        println!("timeouts/late sends {name}: {}", figures.join(", "));
    }
    Ok(())
}

/// lapd with many seats in each backend (`lapd`'s `seats` benchmark): start-up time, memory,
/// returning and new machines' rates and latency, next to an empty database.
pub fn seats() -> Result {
    step(
        "lapd with 0 and 1,000,000 seats, SQLite and PostgreSQL (LAPD_BENCH_SEATS for others)",
        || {
            cmd(
                "cargo",
                &["bench", "--package", "lapd", "--bench", "seats", "--locked"],
            )
        },
    )
}
