//! Windows and macOS, proven from this Linux machine: the Windows binaries cross-built with
//! mingw (`x86_64-pc-windows-gnu`) and linted for that target, their tests run under Debian's
//! Wine (a real implementation of the Windows API: registry, Credential Manager, file
//! system), and the libraries and command-line tools checked and linted for
//! `aarch64-apple-darwin` (they cannot be linked or run here: no Apple linker or SDK).
//!
//! Wine runs in a private prefix under `target/wine/prefix`, never the user's `~/.wine`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::{root, target_dir};
use crate::steps::{Result, cmd, fail, run_in, step};

pub const WINDOWS: &str = "x86_64-pc-windows-gnu";
pub const MACOS: &str = "aarch64-apple-darwin";
const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";

/// Crates whose Windows code has tests that run under Wine (`cargo test --target`): the
/// platform crates. The engine and the tools are covered by the system tests instead.
const WINE_UNIT_TESTED: [&str; 4] = [
    "lapwing-fs",
    "lapwing-machine",
    "lapwing-secrets",
    "lapwing-discovery",
];
/// What is linted for Windows: the binaries (the tray app among them) and every library they
/// use.
const WINDOWS_LINTED: [&str; 9] = [
    "lap-proto",
    "lapwing-fs",
    "lapwing-machine",
    "lapwing-secrets",
    "lapwing-discovery",
    "lapwing-core",
    "lapctl",
    "lapd",
    "lapwing",
];

/// What is linted for macOS: the libraries, lapctl and lapd (see [`lint_macos`]).
const MACOS_LINTED: [&str; 8] = [
    "lap-proto",
    "lapwing-fs",
    "lapwing-machine",
    "lapwing-secrets",
    "lapwing-discovery",
    "lapwing-core",
    "lapctl",
    "lapd",
];

/// The private Wine prefix.
pub fn prefix() -> PathBuf {
    target_dir().join("wine/prefix")
}

/// Where the Windows binaries are built.
pub fn bin_dir() -> PathBuf {
    target_dir().join(WINDOWS).join("debug")
}

/// The environment every Wine run gets: the private prefix, no debug chatter, no prompt to
/// download Mono or Gecko (console programs need neither), no display.
pub fn wine_env() -> Vec<(&'static str, String)> {
    vec![
        ("WINEPREFIX", prefix().display().to_string()),
        ("WINEDEBUG", "-all".to_owned()),
        ("WINEDLLOVERRIDES", "mscoree,mshtml=".to_owned()),
    ]
}

/// `rustup target add` for the two targets, when missing.
pub fn setup_targets() -> Result {
    step("setup: Rust targets for Windows and macOS", || {
        let installed = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map_err(|e| fail(format!("cannot run rustup: {e}")))?;
        let installed = String::from_utf8_lossy(&installed.stdout);
        let missing: Vec<&str> = [WINDOWS, MACOS]
            .into_iter()
            .filter(|t| !installed.lines().any(|l| l.trim() == *t))
            .collect();
        if missing.is_empty() {
            println!("{WINDOWS} and {MACOS} are installed");
            return Ok(());
        }
        let mut args = vec!["target", "add"];
        args.extend(missing);
        cmd("rustup", &args)
    })
}

/// Builds the ProcessPrng shim (installers/windows/wine/processprng.c: why it exists is
/// there) and returns its path; rebuilt only when the source is newer.
fn shim() -> Result<PathBuf> {
    let source = root().join("installers/windows/wine/processprng.c");
    let dll = target_dir().join("wine/bcryptprimitives.dll");
    if !is_newer(&dll, &source) {
        std::fs::create_dir_all(target_dir().join("wine"))
            .map_err(|e| fail(format!("target/wine: {e}")))?;
        cmd(
            MINGW_GCC,
            &[
                "-shared",
                "-O2",
                "-o",
                &dll.display().to_string(),
                &source.display().to_string(),
                "-ladvapi32",
            ],
        )?;
    }
    Ok(dll)
}

fn is_newer(file: &Path, than: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((modified(file), modified(than)), (Some(a), Some(b)) if a >= b)
}

/// Creates the private prefix (once: `wineboot --init` takes about half a minute) and puts
/// the shim in its `system32`.
pub fn prepare_prefix() -> Result {
    step("Wine: private prefix with the ProcessPrng shim", || {
        let dll = shim()?;
        let prefix = prefix();
        if !prefix.join("system.reg").exists() {
            std::fs::create_dir_all(&prefix).map_err(|e| fail(format!("wine prefix: {e}")))?;
            wine_run(&["wineboot", "--init"])?;
            wine_wait()?;
        }
        let system32 = prefix.join("drive_c/windows/system32");
        std::fs::copy(&dll, system32.join("bcryptprimitives.dll"))
            .map_err(|e| fail(format!("placing the shim in {}: {e}", system32.display())))?;
        Ok(())
    })
}

fn wine_run(args: &[&str]) -> Result {
    let env = wine_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_in(&root(), "wine", args, &env)
}

/// Waits for the prefix's wineserver to end, so the registry is on disk and nothing lingers.
pub fn wine_wait() -> Result {
    let env = wine_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_in(&root(), "wineserver", &["-w"], &env)
}

fn with_packages<'a>(mut args: Vec<&'a str>, crates: &[&'a str]) -> Vec<&'a str> {
    for name in crates {
        args.extend(["-p", name]);
    }
    args
}

/// `lapwing.exe`, `lapctl.exe` and `lapd.exe`, and clippy for Windows with warnings as
/// errors.
pub fn build_and_lint() -> Result {
    step(
        "Windows: build lapwing.exe, lapctl.exe and lapd.exe",
        || {
            cmd(
                "cargo",
                &[
                    "build", "--target", WINDOWS, "--locked", "-p", "lapctl", "-p", "lapd", "-p",
                    "lapwing",
                ],
            )
        },
    )?;
    step("Windows: lints (clippy, warnings are errors)", || {
        let args = with_packages(
            vec!["clippy", "--target", WINDOWS, "--locked"],
            &WINDOWS_LINTED,
        );
        let mut args = args;
        args.extend(["--", "-D", "warnings"]);
        cmd("cargo", &args)
    })
}

/// The libraries, lapctl and lapd checked and linted for macOS. Not the tray app: objc2's
/// exception helper is C that needs Apple's compiler. (lapd links the system's SQLite on
/// macOS, so its bundled C is not compiled for it; see lapd's Cargo.toml.)
pub fn lint_macos() -> Result {
    step("macOS: clippy of lapctl, lapd and the libraries", || {
        let mut args = with_packages(vec!["clippy", "--target", MACOS, "--locked"], &MACOS_LINTED);
        args.extend(["--", "-D", "warnings"]);
        cmd("cargo", &args)
    })
}

/// The platform crates' tests, built for Windows and run by Wine.
pub fn unit_tests() -> Result {
    step("Windows: the platform crates' tests under Wine", || {
        let mut env = wine_env();
        env.push((
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER",
            "wine".to_owned(),
        ));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args = with_packages(
            vec!["test", "--target", WINDOWS, "--locked"],
            &WINE_UNIT_TESTED,
        );
        run_in(&root(), "cargo", &args, &env)
    })?;
    wine_wait()
}

/// The installer `installers/windows/lapwing.nsi` builds with Debian's makensis (warnings
/// as errors), from stripped `lapwing.exe` and `lapctl.exe` and the `WebView2Loader.dll`
/// the tray app loads; returns its path.
pub fn installer() -> Result<PathBuf> {
    let dir = target_dir().join("wine/installer");
    let out = dir.join(format!("lapwing-{}-x64.exe", env!("CARGO_PKG_VERSION")));
    step("Windows: the installer (makensis)", || {
        let bins = dir.join("bin");
        std::fs::create_dir_all(&bins).map_err(|e| fail(format!("{}: {e}", bins.display())))?;
        for exe in ["lapwing.exe", "lapctl.exe"] {
            cmd(
                "x86_64-w64-mingw32-strip",
                &[
                    "-o",
                    &bins.join(exe).display().to_string(),
                    &bin_dir().join(exe).display().to_string(),
                ],
            )?;
        }
        let loader = webview2_loader()?;
        std::fs::copy(&loader, bins.join("WebView2Loader.dll"))
            .map_err(|e| fail(format!("copying {}: {e}", loader.display())))?;
        cmd(
            "makensis",
            &[
                "-V2",
                "-WX",
                &format!("-DVERSION={}", env!("CARGO_PKG_VERSION")),
                // A test build of debug programs: fast compression (see the script).
                "-DCOMPRESSOR=zlib",
                &format!("-DBIN_DIR={}", bins.display()),
                &format!("-DOUT_FILE={}", out.display()),
                "installers/windows/lapwing.nsi",
            ],
        )
    })?;
    Ok(out)
}

/// The x64 `WebView2Loader.dll` that the locked webview2-com-sys ships (Microsoft's
/// redistributable loader; a windows-gnu build loads it at start instead of linking it in),
/// found through `cargo metadata` so it is the version the build used.
fn webview2_loader() -> Result<PathBuf> {
    let output = Command::new("cargo")
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--filter-platform",
            WINDOWS,
        ])
        .current_dir(root())
        .output()
        .map_err(|e| fail(format!("cannot run cargo metadata: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| fail(format!("cargo metadata: {e}")))?;
    let manifest = metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == "webview2-com-sys"))
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| fail("webview2-com-sys is not in the Windows build's dependencies"))?;
    let loader = Path::new(manifest)
        .parent()
        .map(|dir| dir.join("x64/WebView2Loader.dll"))
        .filter(|p| p.is_file())
        .ok_or_else(|| fail(format!("no x64/WebView2Loader.dll beside {manifest}")))?;
    Ok(loader)
}

/// `lapctl.exe` under Wine against a Linux `lapd` on loopback, and the installer run
/// silently, checked and uninstalled (tests/system/windows.rs).
pub fn system_tests(installer: &Path) -> Result {
    step(
        "Windows: lapctl.exe under Wine against lapd on loopback; the installer",
        || {
            // The Linux lapd the tests start (a test target builds only its own package's).
            // Built with the workspace's features, as the suite's build step did: `-p lapd`
            // alone unifies other features and would build its dependencies again.
            cmd("cargo", &["build", "--locked", "--workspace", "--bins"])?;
            let prefix = prefix().display().to_string();
            let bins = bin_dir().display().to_string();
            let installer = installer.display().to_string();
            run_in(
                &root(),
                "cargo",
                &[
                    "test",
                    "--locked",
                    "-p",
                    "lapwing-system-tests",
                    "--features",
                    "wine",
                    "--test",
                    "windows",
                ],
                &[
                    ("LAPWING_WINE_PREFIX", &prefix),
                    ("LAPWING_WINDOWS_BIN_DIR", &bins),
                    ("LAPWING_WINDOWS_INSTALLER", &installer),
                ],
            )
        },
    )?;
    wine_wait()
}

/// Everything above, in the order CI runs it (`cargo xtask windows`, and within
/// `cargo xtask test`, whose setup has added the targets already).
pub fn run() -> Result {
    setup_targets()?;
    build_and_lint()?;
    lint_macos()?;
    prepare_prefix()?;
    unit_tests()?;
    let installer = installer()?;
    system_tests(&installer)
}
