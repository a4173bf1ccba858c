//! `cargo xtask package`: the Linux packages. `cargo xtask package-check`: install them on
//! this machine, check what they put where, remove them and check nothing is left.
//!
//! - the tray app `lapwing` as `.deb` and `.rpm` (and an AppImage where linuxdeploy is at
//!   hand) by Tauri's bundler (`cargo tauri build`), with `lapctl`, its man pages and shell
//!   completions, the machine-anchor unit, the autostart entry and the install scripts;
//! - `lapd` as a `.deb` of its own by `cargo deb`, with its hardened service.
//!
//! Everything is built with the `dist` profile (release without debug info, stripped) into
//! `target/dist/`, so packaging never disturbs release builds someone is measuring
//! (`package-check` uses the quicker `package-check` profile, in `target/package-check/`). Files
//! that exist only at package time (the binaries, man pages, completions, the policy example)
//! are handed to the bundler as a configuration overlay (`--config`); the fixed ones are in
//! `src-tauri/tauri.conf.json`.
//!
//! This file builds the packages; `check` installs, inspects and purges them.

pub mod check;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::paths::{root, target_dir};
use crate::steps::{Result, cmd, fail, has_cargo_subcommand, run_in, step};
use crate::ui::build_ui;

/// The cargo profile packages are built with (root Cargo.toml), and so where they land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dist`: the packages people install.
    Dist,
    /// `package-check`: unoptimised and stripped, minutes instead of a quarter of an hour,
    /// for the packages `package-check` installs and removes again, whose contents and
    /// scripts are what it checks, not the code's speed.
    Check,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Self::Dist => "dist",
            Self::Check => "package-check",
        }
    }

    fn dir(self) -> PathBuf {
        target_dir().join(self.name())
    }

    fn bundle_dir(self) -> PathBuf {
        self.dir().join("bundle")
    }

    /// The packages people install get xz's best; the ones package-check installs and
    /// removes again the same format at its quickest (a minute less on CI).
    fn xz_level(self) -> &'static str {
        match self {
            Self::Dist => "-z9",
            Self::Check => "-z1",
        }
    }
}
/// The packaging tools, for `cargo xtask setup`. Tauri's bundler is the `tauri` command of
/// the UI's npm packages (`@tauri-apps/cli`, the Tauri project's prebuilt tauri-cli, installed
/// by `npm ci`): the same tool as `cargo install tauri-cli`, without the ten minutes of
/// compiling it on every clean CI machine.
pub fn setup_tools() -> Result {
    step("setup: cargo-deb (the lapd package)", || {
        if has_cargo_subcommand("deb") {
            println!("cargo-deb is installed");
            Ok(())
        } else {
            cmd("cargo", &["install", "cargo-deb", "--locked"])
        }
    })
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Tauri downloads linuxdeploy and AppRun from GitHub for an AppImage; where they are not
/// cached already (CI reaches package registries only) the AppImage is left out unless asked.
fn appimage_tools_cached() -> bool {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".cache")));
    cache.is_some_and(|c| {
        let tools = c.join("tauri");
        tools.join("AppRun-x86_64").exists() && tools.join("linuxdeploy-x86_64.AppImage").exists()
    })
}

/// Builds every package and prints where each one is and its size.
pub fn build(appimage: Option<bool>, profile: Profile) -> Result {
    let started = Instant::now();
    setup_tools()?;
    build_ui()?;
    step(
        &format!("build lapctl and lapd (profile {})", profile.name()),
        || {
            cmd(
                "cargo",
                &[
                    "build",
                    "--profile",
                    profile.name(),
                    "--locked",
                    "-p",
                    "lapctl",
                    "-p",
                    "lapd",
                ],
            )
        },
    )?;
    let overlay = profile.dir().join("tauri.package.json");
    step("man pages and shell completions for lapctl", || {
        stage_generated(profile, &overlay)
    })?;
    let appimage = appimage.unwrap_or_else(appimage_tools_cached);
    let bundles = if appimage {
        "deb,rpm,appimage"
    } else {
        println!(
            "\nxtask: no AppImage: Tauri would download linuxdeploy from GitHub; \
             `cargo xtask package --appimage` to try"
        );
        "deb,rpm"
    };
    step(&format!("the tray app's packages ({bundles})"), || {
        let tauri = root().join("ui/node_modules/.bin/tauri");
        run_in(
            &root().join("src-tauri"),
            utf8(&tauri),
            &[
                "build",
                "--ci",
                "--bundles",
                bundles,
                "--config",
                utf8(&overlay),
                "--",
                "--profile",
                profile.name(),
                "--locked",
            ],
            &[],
        )
    })?;
    step("the tray app's .deb recompressed (xz)", || {
        repack_deb(profile)
    })?;
    step("the lapd package (cargo deb)", || {
        let out = profile.bundle_dir().join("deb");
        cmd(
            "cargo",
            &[
                "deb",
                "-p",
                "lapd",
                "--profile",
                profile.name(),
                "--no-build",
                "--output",
                utf8(&out),
            ],
        )
    })?;
    println!(
        "\npackages (built in {:.0} s):",
        started.elapsed().as_secs_f64()
    );
    for package in packages(profile) {
        let size = std::fs::metadata(&package).map_or(0, |m| m.len());
        #[allow(clippy::cast_precision_loss, reason = "a size to print")]
        let mib = size as f64 / (1024.0 * 1024.0);
        println!("  {:>8.2} MiB  {}", mib, package.display());
    }
    Ok(())
}

/// Tauri's bundler writes the .deb with gzip and names it after the product (`Lapwing_…`).
/// Rebuilt with xz, what dpkg-deb itself uses, it is half the size (about 6 MB instead of 12,
/// under the 10 MB target), and named as Debian names packages (`lapwing_…`, the package's
/// own name).
fn repack_deb(profile: Profile) -> Result {
    let dir = profile.bundle_dir().join("deb");
    let entries = std::fs::read_dir(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Next to the package is the bundler's staging directory of the same stem.
        let Some(rest) = name
            .strip_prefix("Lapwing_")
            .filter(|_| entry.path().extension().is_some_and(|e| e == "deb"))
        else {
            continue;
        };
        let tree = profile.dir().join("deb-tree");
        let _ = std::fs::remove_dir_all(&tree);
        let original = entry.path();
        let repacked = dir.join(format!("lapwing_{rest}"));
        cmd("dpkg-deb", &["-R", utf8(&original), utf8(&tree)])?;
        cmd(
            "dpkg-deb",
            &[
                "-Zxz",
                profile.xz_level(),
                "--root-owner-group",
                "-b",
                utf8(&tree),
                utf8(&repacked),
            ],
        )?;
        std::fs::remove_file(&original).map_err(|e| fail(e.to_string()))?;
        let _ = std::fs::remove_dir_all(&tree);
    }
    Ok(())
}

/// Every package in the profile's bundle directory, sorted.
fn packages(profile: Profile) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for kind in ["deb", "rpm", "appimage"] {
        let Ok(entries) = std::fs::read_dir(profile.bundle_dir().join(kind)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if [".deb", ".rpm", ".AppImage"]
                .iter()
                .any(|suffix| name.ends_with(suffix))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Writes what `lapctl` generates about itself (man pages, completions) into
/// the profile's `stage/` and writes the bundler overlay that places them, with the binary and
/// the policy example, to `overlay`.
fn stage_generated(profile: Profile, overlay_path: &Path) -> Result {
    let lapctl = profile.dir().join("lapctl");
    let stage = profile.dir().join("stage");
    // Stale pages of a subcommand that no longer exists must not be packaged.
    let _ = std::fs::remove_dir_all(&stage);
    let man = stage.join("man1");
    run_in(&root(), utf8(&lapctl), &["man", "--out", utf8(&man)], &[])?;
    let mut pages = Vec::new();
    for entry in std::fs::read_dir(&man).map_err(|e| fail(format!("{}: {e}", man.display())))? {
        let path = entry.map_err(|e| fail(e.to_string()))?.path();
        if path.extension().is_some_and(|e| e == "1") {
            pages.push(path);
        }
    }
    pages.sort();
    // Compressed, as Debian ships man pages; -n keeps the archive free of names and times.
    let mut gzip_args = vec!["-9n", "--force"];
    gzip_args.extend(pages.iter().map(|p| utf8(p)));
    cmd("gzip", &gzip_args)?;

    let completions = stage.join("completions");
    std::fs::create_dir_all(&completions).map_err(|e| fail(e.to_string()))?;
    for (shell, file) in [
        ("bash", "lapctl"),
        ("zsh", "_lapctl"),
        ("fish", "lapctl.fish"),
    ] {
        let output = Command::new(&lapctl)
            .args(["completions", shell])
            .output()
            .map_err(|e| fail(format!("cannot run {}: {e}", lapctl.display())))?;
        if !output.status.success() {
            return Err(fail(format!("lapctl completions {shell} failed")));
        }
        std::fs::write(completions.join(file), &output.stdout).map_err(|e| fail(e.to_string()))?;
    }

    // Shared by both formats; only zsh's directory differs (Debian's vendor directory; the
    // one zsh searches by default on Fedora and others).
    let mut common: BTreeMap<String, PathBuf> = BTreeMap::new();
    common.insert("/usr/bin/lapctl".into(), lapctl.clone());
    for page in &pages {
        let name = format!(
            "{}.gz",
            page.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
        common.insert(format!("/usr/share/man/man1/{name}"), man.join(&name));
    }
    common.insert(
        "/usr/share/bash-completion/completions/lapctl".into(),
        completions.join("lapctl"),
    );
    common.insert(
        "/usr/share/fish/vendor_completions.d/lapctl.fish".into(),
        completions.join("lapctl.fish"),
    );
    // Written by another part of the project; shipped once it exists.
    let policy = root().join("installers/policy.example.toml");
    if policy.exists() {
        common.insert("/usr/share/doc/lapwing/policy.example.toml".into(), policy);
    } else {
        println!("xtask: installers/policy.example.toml does not exist yet: not packaged");
    }
    let mut deb = common.clone();
    deb.insert(
        "/usr/share/zsh/vendor-completions/_lapctl".into(),
        completions.join("_lapctl"),
    );
    let mut rpm = common;
    rpm.insert(
        "/usr/share/zsh/site-functions/_lapctl".into(),
        completions.join("_lapctl"),
    );
    let overlay = serde_json::json!({
        "bundle": { "linux": { "deb": { "files": deb }, "rpm": { "files": rpm } } }
    });
    std::fs::write(overlay_path, overlay.to_string()).map_err(|e| fail(e.to_string()))?;
    println!(
        "{} man pages, 3 completions; bundler overlay {}",
        pages.len(),
        overlay_path.display()
    );
    Ok(())
}
