//! `cargo xtask setup`: the tools the tests need beyond cargo (the UI's npm packages, which
//! bring Tauri's bundler; tauri-driver; cargo-fuzz; cargo-deb for the lapd package; the Rust
//! targets for Windows and macOS; a Python venv for the independent vector generator).

use std::path::PathBuf;
use std::process::Command;

use crate::package;
use crate::paths::target_dir;
use crate::steps::{Result, cmd, has_cargo_subcommand, step};
use crate::ui::ui_packages;
use crate::windows;

const CRYPTOGRAPHY_VERSION: &str = "48.0.0";

pub fn python_venv() -> PathBuf {
    target_dir().join("pyvenv")
}

pub fn run() -> Result {
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
    windows::setup_targets()?;
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
