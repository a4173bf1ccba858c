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
//!   those installed, inspected and purged on this machine (root, as in CI);
//! - `windows`: the Windows binaries cross-built and linted, their tests run under Wine, and
//!   the macOS build of the libraries and tools linted (part of `test`).
//!
//! `main` only dispatches: the shared helpers live in leaf modules (`paths`, `steps`, `ui`)
//! that the commands import and that import no command back.

mod bench;
mod bench_tray;
mod demo;
mod package;
mod paths;
mod process;
mod setup;
mod steps;
mod suite;
mod tray_watcher;
mod ui;
mod windows;

use std::process::ExitCode;

use steps::{Result, cmd, fail};

fn usage() -> Result {
    Err(fail(
        "usage: cargo xtask <setup | test [--fuzz-seconds N] | demo [--exit] | bench | vectors\n\
         \x20                   | package [--appimage | --no-appimage] | package-check | windows>\n\
         \n  setup    install the tools the tests need (npm packages, tauri-driver, cargo-fuzz, cargo-deb, Python venv)\
         \n  test     UI build, format, lints, all tests, UI tests, vector cross-check, fuzz smoke\
         \n  demo     lapd with a demo catalog, two demo products and the tray app to activate them in\
         \n           (--exit: unattended under Xvfb, keys through lapctl, stop once both are activated)\
         \n  bench    protocol costs (criterion) and lapd throughput/latency, pinned to cores, an intermediate's turn\
         \n  bench seats lapd with 0 and 1,000,000 seats in SQLite and PostgreSQL: start-up, memory, rates\
         \n           (LAPD_BENCH_SEATS=0,1000000,10000000 for other sizes)\
         \n  bench tray  the tray app's launch time, idle memory and CPU, window paint (release, Xvfb)\
         \n  vectors  regenerate tests/vectors/*.json with the independent Python generator\
         \n  package  target/dist/bundle: lapwing .deb, .rpm (AppImage when linuxdeploy is cached) and lapd .deb\
         \n  package-check  build the .debs, install, inspect, purge and check nothing is left (root; CI)\
         \n  windows  Windows binaries (mingw) linted, their tests under Wine; macOS libraries linted",
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["setup"] => setup::run(),
        ["test"] => suite::run(15),
        ["test", "--fuzz-seconds", n] => n
            .parse()
            .map_err(|_| fail("--fuzz-seconds takes a number"))
            .and_then(suite::run),
        ["demo"] => demo::run(false),
        ["demo", "--exit"] => demo::run(true),
        ["bench"] => bench::run(),
        ["package"] => package::build(None, package::Profile::Dist),
        ["package", "--appimage"] => package::build(Some(true), package::Profile::Dist),
        ["package", "--no-appimage"] => package::build(Some(false), package::Profile::Dist),
        ["package-check"] => package::check::check(),
        ["bench", "tray"] => bench_tray::run(),
        ["bench", "seats"] => bench::seats(),
        ["windows"] => windows::run(),
        ["vectors"] => setup::run().and_then(|()| {
            let python = setup::python_venv().join("bin/python");
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
