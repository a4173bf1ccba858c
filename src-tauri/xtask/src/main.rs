//! `cargo xtask <command>`: the project's own entry points, so the README and CI run the same
//! steps. Plain `std::process::Command` calls: every step is visible in the output.
//!
//! - `setup`: the tools the tests need beyond cargo (the UI's npm packages, which bring
//!   Tauri's bundler; tauri-driver; cargo-fuzz; cargo-deb for the lapd package; a Python venv
//!   for the independent vector generator);
//! - `test`: the UI build, format, lints, every Rust test (the real app window under Xvfb
//!   among them), the UI's unit and browser tests, the vector cross-check, a short fuzz run;
//! - `demo`: a lapd on loopback with a demo catalog, two demo products not activated, and
//!   the tray app to enter their keys in (`--exit`: unattended under Xvfb, then stop);
//! - `bench`: criterion costs of the protocol and lapd's throughput and latency;
//! - `package`: the tray app's .deb/.rpm (AppImage) and the lapd .deb; `package-check`:
//!   those installed, inspected and purged on this machine (root, as in CI).

mod bench;
mod bench_tray;
mod demo;
mod package;
mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// A failed step: what was run and how it ended.
#[derive(Debug)]
pub struct StepError(String);

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Result<T = ()> = std::result::Result<T, StepError>;

pub fn fail(message: impl Into<String>) -> StepError {
    StepError(message.into())
}

/// The repository root (xtask lives in `src-tauri/xtask`).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// Runs a command in the repository root, echoing it, failing on a non-zero exit.
pub fn cmd(program: &str, args: &[&str]) -> Result {
    run_in(&root(), program, args, &[])
}

pub fn run_in(dir: &Path, program: &str, args: &[&str], env: &[(&str, &str)]) -> Result {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .status()
        .map_err(|e| fail(format!("cannot start {program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "`{program} {}` failed ({status})",
            args.join(" ")
        )))
    }
}

/// Runs a titled step and reports its duration.
pub fn step(title: &str, body: impl FnOnce() -> Result) -> Result {
    println!("\n=== {title}");
    let started = Instant::now();
    let result = body();
    println!(
        "=== {title}: {} in {:.1} s",
        if result.is_ok() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}

fn has_cargo_subcommand(name: &str) -> bool {
    Command::new("cargo")
        .args([name, "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

const CRYPTOGRAPHY_VERSION: &str = "48.0.0";

fn python_venv() -> PathBuf {
    target_dir().join("pyvenv")
}

fn setup() -> Result {
    step("setup: UI packages (npm ci)", ui_packages)?;
    step(
        "setup: tauri-driver (WebDriver for the real app window)",
        || {
            if Command::new("tauri-driver").arg("--help").output().is_ok() {
                println!("tauri-driver is installed");
                Ok(())
            } else {
                cmd("cargo", &["install", "tauri-driver", "--locked"])
            }
        },
    )?;
    step("setup: cargo-fuzz", || {
        if has_cargo_subcommand("fuzz") {
            println!("cargo-fuzz is installed");
            Ok(())
        } else {
            cmd("cargo", &["install", "cargo-fuzz", "--locked"])
        }
    })?;
    package::setup_tools()?;
    step(
        "setup: Python venv for the independent vector generator",
        || {
            let venv = python_venv();
            let python = venv.join("bin/python");
            let pinned = Command::new(&python)
            .args(["-c", &format!("import cryptography,sys; sys.exit(cryptography.__version__ != '{CRYPTOGRAPHY_VERSION}')")])
            .status()
            .is_ok_and(|s| s.success());
            if pinned {
                println!(
                    "cryptography {CRYPTOGRAPHY_VERSION} is installed in {}",
                    venv.display()
                );
                return Ok(());
            }
            cmd(
                "python3",
                &["-m", "venv", venv.to_str().expect("utf-8 path")],
            )?;
            cmd(
                python.to_str().expect("utf-8 path"),
                &[
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    &format!("cryptography=={CRYPTOGRAPHY_VERSION}"),
                ],
            )
        },
    )
}

/// The UI's packages, installed from the lock file when they are missing or older than it.
pub fn ui_packages() -> Result {
    let ui = root().join("ui");
    let installed = ui.join("node_modules/.package-lock.json");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let fresh = match (
        modified(&installed),
        modified(&ui.join("package-lock.json")),
    ) {
        (Some(installed), Some(lock)) => installed >= lock,
        _ => false,
    };
    if fresh {
        println!("ui/node_modules matches ui/package-lock.json");
        return Ok(());
    }
    run_in(&ui, "npm", &["ci", "--no-audit", "--no-fund"], &[])
}

/// The windows' bundle (`ui/dist`), which the tray app embeds when it is compiled.
pub fn build_ui() -> Result {
    step("build the UI (ui/dist, embedded by the tray app)", || {
        run_in(&root().join("ui"), "npm", &["run", "build"], &[])
    })
}

fn test(fuzz_seconds: u32) -> Result {
    let started = Instant::now();
    setup()?;
    build_ui()?;
    step("format", || cmd("cargo", &["fmt", "--all", "--check"]))?;
    step("lints (clippy, warnings are errors)", || {
        cmd(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        )
    })?;
    step("build every binary", || {
        cmd("cargo", &["build", "--workspace", "--bins", "--locked"])
    })?;
    step("tests", || {
        cmd("cargo", &["test", "--workspace", "--locked"])
    })?;
    step(
        "packages: build, install, inspect and purge the .debs",
        package::check,
    )?;
    // The README's first command must keep working: the tray app, lapd and lapctl together.
    step("the demo, unattended (cargo xtask demo --exit)", || {
        demo::run(true)
    })?;
    step("UI unit tests (Vitest)", || {
        run_in(&root().join("ui"), "npm", &["test"], &[])
    })?;
    step(
        "UI browser tests (Playwright on Debian's Chromium, mocked IPC)",
        || run_in(&root().join("ui"), "npm", &["run", "test:browser"], &[]),
    )?;
    step(
        "vectors: the independent Python implementation still produces the committed files",
        || {
            let python = python_venv().join("bin/python");
            cmd(
                python.to_str().expect("utf-8 path"),
                &["tests/vectors/gen_vectors.py", "--check"],
            )
        },
    )?;
    // Two fuzz crates: the protocol's, and the files Lapwing reads (manifest, policy, state,
    // SMBIOS), which needs the whole engine. That one's smoke is built unoptimised (with
    // overflow checks) and without ASan, in 2.5 min instead of 6.5; its safe-Rust parsers
    // get ASan in the long campaigns (tests/RELIABILITY.md).
    let smokes: [(&str, &[(&str, &str)]); 2] = [
        ("lap-proto", &[]),
        (
            "lapwing-core",
            &[("FUZZ_PROFILE", "dev"), ("FUZZ_SANITIZER", "none")],
        ),
    ];
    for (crate_dir, env) in smokes {
        step(
            &format!("fuzz smoke, {crate_dir} ({fuzz_seconds} s per target)"),
            || {
                let dir = root().join("src-tauri/crates").join(crate_dir).join("fuzz");
                run_in(&dir, "bash", &["smoke.sh", &fuzz_seconds.to_string()], env)
            },
        )?;
    }
    println!(
        "\nall checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn usage() -> Result {
    Err(fail(
        "usage: cargo xtask <setup | test [--fuzz-seconds N] | demo [--exit] | bench | vectors\n\
         \x20                   | package [--appimage | --no-appimage] | package-check>\n\
         \n  setup    install the tools the tests need (npm packages, tauri-driver, cargo-fuzz, cargo-deb, Python venv)\
         \n  test     UI build, format, lints, all tests, UI tests, vector cross-check, fuzz smoke\
         \n  demo     lapd with a demo catalog, two demo products and the tray app to activate them in\
         \n           (--exit: unattended under Xvfb, keys through lapctl, stop once both are activated)\
         \n  bench    protocol costs (criterion) and lapd throughput/latency, pinned to cores\
         \n  bench tray  the tray app's launch time, idle memory and CPU, window paint (release, Xvfb)\
         \n  vectors  regenerate tests/vectors/*.json with the independent Python generator\
         \n  package  target/dist/bundle: lapwing .deb, .rpm (AppImage when linuxdeploy is cached) and lapd .deb\
         \n  package-check  build the .debs, install, inspect, purge and check nothing is left (root; CI)",
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["setup"] => setup(),
        ["test"] => test(15),
        ["test", "--fuzz-seconds", n] => n
            .parse()
            .map_err(|_| fail("--fuzz-seconds takes a number"))
            .and_then(test),
        ["demo"] => demo::run(false),
        ["demo", "--exit"] => demo::run(true),
        ["bench"] => bench::run(),
        ["package"] => package::build(None, package::Profile::Dist),
        ["package", "--appimage"] => package::build(Some(true), package::Profile::Dist),
        ["package", "--no-appimage"] => package::build(Some(false), package::Profile::Dist),
        ["package-check"] => package::check(),
        ["bench", "tray"] => bench_tray::run(),
        ["vectors"] => setup().and_then(|()| {
            let python = python_venv().join("bin/python");
            cmd(
                python.to_str().expect("utf-8 path"),
                &["tests/vectors/gen_vectors.py"],
            )
        }),
        _ => usage(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
