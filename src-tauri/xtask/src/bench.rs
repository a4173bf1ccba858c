//! `cargo xtask bench`: the protocol's cost next to its primitives (criterion), then lapd
//! pinned to one core with the load generator on the other.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::{Result, cmd, fail, step, target_dir};

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

    let load = |rate: u32| -> Result<serde_json::Value> {
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
                "--key",
                &key,
                "--rate",
                &rate.to_string(),
                "--seconds",
                "8",
                "--concurrency",
                "16",
                "--json",
            ],
        )?;
        println!("{text}");
        serde_json::from_str(&text).map_err(|e| fail(format!("bench output: {e}")))
    };
    let mut max = serde_json::Value::Null;
    step(
        "lapd on core 0, load on core 1: as fast as it answers",
        || {
            max = load(0)?;
            Ok(())
        },
    )?;
    let half = (primitive_rate / 2.0).round();
    let mut at_half = serde_json::Value::Null;
    step(
        &format!("lapd at half the primitive-limited rate ({half:.0}/s)"),
        || {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let rate = half as u32;
            at_half = load(rate)?;
            Ok(())
        },
    )?;
    drop(server);
    step(
        "the engine: activation latency, 100 products at once, lapctl status",
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

    let sustained = number(&max, "responses_per_second")?;
    let p99_half_ms = number(&at_half, "p99_us")? / 1000.0;
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
        "primitive-limited rate {primitive_rate:.0}/s per core; lapd sustained {sustained:.0}/s on one core = {:.0}%   [target ≥ 80%]",
        100.0 * sustained / primitive_rate
    );
    println!(
        "p99 at {half:.0}/s: {p99_half_ms:.2} ms (p50 {:.2} ms)   [target < 2 ms]",
        number(&at_half, "p50_us")? / 1000.0
    );
    for (name, value) in [("timeouts at max", &max), ("timeouts at half", &at_half)] {
        println!("{name}: {}", value["timeouts"]);
    }
    Ok(())
}
