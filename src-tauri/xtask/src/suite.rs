//! `cargo xtask test`: the UI build, format, lints, every Rust test (the real app window under
//! Xvfb among them), the Windows build and its tests under Wine, the macOS lints, the UI's
//! unit and browser tests, the vector cross-check, a short fuzz run.

use std::time::Instant;

use crate::paths::root;
use crate::setup::python_venv;
use crate::steps::{Result, cmd, run_in, step};
use crate::ui::build_ui;
use crate::{demo, package, setup, windows};

pub fn run(fuzz_seconds: u32) -> Result {
    let started = Instant::now();
    setup::run()?;
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
    // Windows binaries cross-built and linted, their tests under Wine; macOS lints.
    windows::run()?;
    step(
        "packages: build, install, inspect and purge the .debs",
        package::check::check,
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
