//! `cargo xtask package-check`: builds the packages with the quicker `package-check` profile,
//! installs each on this machine, checks what it put where (the files, the units, the
//! anchor written by root and read by an ordinary user, the autostart entry, lapd's hardened
//! service), purges it and checks that nothing is left.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Profile, build, packages, utf8};
use crate::paths::root;
use crate::steps::{Result, cmd, fail, run_in, step};

/// The ordinary user `package-check` runs `lapctl` as.
const CI_USER: &str = "lapwing-ci-user";

/// A command's stdout, failing on a non-zero exit.
fn output(program: &str, args: &[&str]) -> Result<String> {
    println!("$ {program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        // The checks are about what the packages install, not about test overrides.
        .env_remove("LAPWING_ANCHOR_FILE")
        .env_remove("LAPWING_HOME")
        .output()
        .map_err(|e| fail(format!("cannot start {program}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(fail(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn expect(condition: bool, what: &str) -> Result {
    if condition {
        println!("  ok: {what}");
        Ok(())
    } else {
        Err(fail(format!("package check: {what}")))
    }
}

/// Purges `package` and checks that none of its `files` is left.
fn purge_leaving_nothing(package: &str, files: &[PathBuf]) -> Result {
    apt(&["purge", "-y", package])?;
    let left: Vec<&PathBuf> = files.iter().filter(|f| f.exists()).collect();
    expect(
        left.is_empty(),
        &format!(
            "every file of the package is gone after purge ({} checked){}",
            files.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!("; left: {left:?}")
            }
        ),
    )
}

fn apt(args: &[&str]) -> Result {
    // Packages are named by absolute path: the directory it runs in does not matter.
    run_in(
        &root(),
        "apt-get",
        args,
        &[("DEBIAN_FRONTEND", "noninteractive")],
    )
}

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

/// The package's file list (`dpkg -L`): directories, which other packages share, left out.
fn package_files(package: &str) -> Result<Vec<PathBuf>> {
    Ok(output("dpkg", &["-L", package])?
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && !p.is_dir())
        .collect())
}

fn deb_named(profile: Profile, prefix: &str) -> Result<PathBuf> {
    packages(profile)
        .into_iter()
        .find(|p| {
            p.extension().is_some_and(|e| e == "deb")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .ok_or_else(|| {
            fail(format!(
                "no {prefix}*.deb in {}",
                profile.bundle_dir().display()
            ))
        })
}

fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// `systemd-analyze verify`, where it exists: the unit parses and its programs are there.
fn verify_unit(path: &str) -> Result {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("  (no systemd-analyze: {path} not verified)");
        return Ok(());
    }
    output("systemd-analyze", &["verify", path]).map(|_| println!("  ok: {path} verifies"))
}

/// Builds the packages, then installs, inspects, purges and re-inspects each. Needs root on
/// a Debian-like machine, which it changes: meant for CI and throwaway machines.
pub fn check() -> Result {
    if output("id", &["-u"])?.trim() != "0" {
        return Err(fail(
            "package-check installs and removes packages: run it as root (CI does)",
        ));
    }
    let started = Instant::now();
    build(Some(false), Profile::Check)?;
    step(
        "package check: lapwing (install, inspect, purge)",
        check_lapwing,
    )?;
    step("package check: lapd (install, inspect, purge)", check_lapd)?;
    println!(
        "\npackage check passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn check_lapwing() -> Result {
    let deb = deb_named(Profile::Check, "lapwing_")?;
    if installed("lapwing") {
        apt(&["purge", "-y", "lapwing"])?;
    }
    let _ = std::fs::remove_dir_all("/var/lib/lapwing");
    apt(&["install", "-y", "--no-install-recommends", utf8(&deb)])?;
    let files = package_files("lapwing")?;
    check_glibc_dependency(&deb, &["/usr/bin/lapwing", "/usr/bin/lapctl"])?;

    let version = output("lapctl", &["--version"])?;
    expect(
        version.trim() == format!("lapctl {}", env!("CARGO_PKG_VERSION")),
        &format!("lapctl --version on the PATH says {}", version.trim()),
    )?;
    for path in [
        "/usr/bin/lapwing",
        "/usr/bin/lapctl",
        "/usr/lib/systemd/system/lapwing-anchor.service",
        "/etc/xdg/autostart/lapwing.desktop",
        "/usr/libexec/lapwing/lapwing-autostart",
        "/usr/share/applications/Lapwing.desktop",
        "/usr/share/man/man1/lapctl.1.gz",
        "/usr/share/man/man1/lapctl-machine-anchor.1.gz",
        "/usr/share/bash-completion/completions/lapctl",
        "/usr/share/zsh/vendor-completions/_lapctl",
        "/usr/share/fish/vendor_completions.d/lapctl.fish",
    ] {
        expect(
            files.iter().any(|f| f == Path::new(path)) && Path::new(path).is_file(),
            &format!("{path} is installed"),
        )?;
    }
    for size in [
        "16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512",
    ] {
        let icon = format!("/usr/share/icons/hicolor/{size}/apps/lapwing.png");
        expect(Path::new(&icon).is_file(), &format!("{icon} is installed"))?;
    }
    let unit = std::fs::read_to_string("/usr/lib/systemd/system/lapwing-anchor.service")
        .map_err(|e| fail(e.to_string()))?;
    expect(
        unit.contains("ExecStart=/usr/bin/lapctl machine anchor --write"),
        "the anchor unit runs the installed lapctl",
    )?;
    verify_unit("/usr/lib/systemd/system/lapwing-anchor.service")?;
    expect(
        Path::new("/etc/systemd/system/multi-user.target.wants/lapwing-anchor.service").exists(),
        "the anchor unit is enabled for the next boot",
    )?;
    let autostart = std::fs::read_to_string("/etc/xdg/autostart/lapwing.desktop")
        .map_err(|e| fail(e.to_string()))?;
    expect(
        autostart.contains("X-GNOME-Autostart-enabled=true")
            && autostart.contains("Exec=/usr/libexec/lapwing/lapwing-autostart"),
        "the autostart entry is on and goes through lapwing-autostart",
    )?;

    // The anchor: written by the postinst (directly without a running systemd, else by the
    // unit), then seen by an ordinary user.
    let anchor = output("lapctl", &["machine", "anchor", "--json"])?;
    let anchor: serde_json::Value =
        serde_json::from_str(&anchor).map_err(|e| fail(format!("anchor JSON: {e}")))?;
    expect(
        anchor["state"] == "valid",
        &format!(
            "the install script wrote {} (source {}, {})",
            anchor["path"],
            anchor["source"],
            if systemd_running() {
                "by the unit"
            } else {
                "directly: no running systemd"
            }
        ),
    )?;
    ensure_ci_user()?;
    let seen = output(
        "runuser",
        &["-u", CI_USER, "--", "lapctl", "machine", "--json"],
    )?;
    let seen: serde_json::Value =
        serde_json::from_str(&seen).map_err(|e| fail(format!("machine JSON: {e}")))?;
    let path = seen["anchor"]["path"].as_str().unwrap_or("");
    // Where the hardware is readable by users too (no SMBIOS, say, so the OS id) the user's
    // own reading wins, and must then agree with root's file.
    expect(
        seen["anchor"]["digest"] == anchor["digest"]
            && seen["anchor"]["source"] == anchor["source"]
            && (path == "anchor-file" || path == "hardware"),
        &format!(
            "{CI_USER} sees the anchor root wrote (source {}, path {path})",
            seen["anchor"]["source"]
        ),
    )?;
    check_autostart_override()?;

    purge_leaving_nothing("lapwing", &files)?;
    for path in [
        "/etc/xdg/autostart/lapwing.desktop",
        "/etc/systemd/system/multi-user.target.wants/lapwing-anchor.service",
        "/var/lib/lapwing",
        "/usr/libexec/lapwing",
        "/usr/share/doc/lapwing",
    ] {
        expect(!Path::new(path).exists(), &format!("{path} is gone"))?;
    }
    Ok(())
}

/// The package must ask for a glibc at least as new as the newest symbol version its binaries
/// use (the bundler adds only the GUI libraries): an older one fails at start with "version
/// `GLIBC_2.xx' not found".
fn check_glibc_dependency(deb: &Path, binaries: &[&str]) -> Result {
    let depends = output("dpkg-deb", &["--field", utf8(deb), "Depends"])?;
    let declared = depends
        .split(',')
        .map(str::trim)
        .find_map(|d| d.strip_prefix("libc6 (>= ")?.strip_suffix(')'))
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("the package does not depend on libc6: {depends}")))?;
    for binary in binaries {
        let symbols = output("objdump", &["--dynamic-syms", binary])?;
        let needed = symbols
            .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
            .filter_map(|word| word.strip_prefix("GLIBC_"))
            .max_by(|a, b| version_order(a, b))
            .unwrap_or("0");
        expect(
            version_order(needed, &declared).is_le(),
            &format!("{binary} needs glibc {needed}; the package asks for libc6 >= {declared}"),
        )?;
    }
    Ok(())
}

/// Dotted versions compared number by number ("2.9" < "2.34").
fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    let numbers = |v: &str| -> Vec<u64> { v.split('.').map(|n| n.parse().unwrap_or(0)).collect() };
    numbers(a).cmp(&numbers(b))
}

/// The login start agreement: once the app has recorded a choice, the system-wide entry's
/// launcher steps aside (and exits without starting anything).
fn check_autostart_override() -> Result {
    let home = output("runuser", &["-u", CI_USER, "--", "sh", "-c", "echo $HOME"])?;
    let marker_dir = format!("{}/.config/com.lapwing.tray", home.trim());
    output(
        "runuser",
        &[
            "-u",
            CI_USER,
            "--",
            "sh",
            "-c",
            &format!("mkdir -p {marker_dir} && touch {marker_dir}/autostart-chosen"),
        ],
    )?;
    let started = Instant::now();
    output(
        "runuser",
        &[
            "-u",
            CI_USER,
            "--",
            "env",
            &format!("HOME={}", home.trim()),
            "/usr/libexec/lapwing/lapwing-autostart",
        ],
    )?;
    let _ = std::fs::remove_dir_all(&marker_dir);
    expect(
        started.elapsed() < Duration::from_secs(5),
        "the system autostart entry steps aside once the user has chosen",
    )
}

fn ensure_ci_user() -> Result {
    if output("id", &["-u", CI_USER]).is_err() {
        cmd("useradd", &["-m", CI_USER])?;
    }
    Ok(())
}

fn check_lapd() -> Result {
    let deb = deb_named(Profile::Check, "lapd_")?;
    if installed("lapd") {
        apt(&["purge", "-y", "lapd"])?;
    }
    apt(&["install", "-y", "--no-install-recommends", utf8(&deb)])?;
    let files = package_files("lapd")?;
    let unit_path = files
        .iter()
        .find(|f| f.ends_with("systemd/system/lapd.service"))
        .ok_or_else(|| fail("package check: lapd.service is not in the package"))?
        .clone();
    for path in [
        "/usr/bin/lapd",
        "/etc/lapd/lapd.toml",
        "/etc/lapd/catalog.toml",
    ] {
        expect(
            files.iter().any(|f| f == Path::new(path)),
            &format!("{path} is installed"),
        )?;
    }
    let conffiles = output("dpkg-query", &["-W", "-f=${Conffiles}", "lapd"])?;
    expect(
        conffiles.contains("/etc/lapd/lapd.toml") && conffiles.contains("/etc/lapd/catalog.toml"),
        "/etc/lapd/lapd.toml and catalog.toml are conffiles",
    )?;
    verify_unit(utf8(&unit_path))?;
    expect(
        output("getent", &["passwd", "lapd"]).is_ok(),
        "the system user lapd exists",
    )?;
    let unit = std::fs::read_to_string(&unit_path).map_err(|e| fail(e.to_string()))?;
    for setting in [
        "User=lapd",
        "StateDirectory=lapd",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
    ] {
        expect(
            unit.contains(setting),
            &format!("lapd.service has {}", setting.trim()),
        )?;
    }
    if systemd_running() {
        std::thread::sleep(Duration::from_secs(2));
        expect(
            output("systemctl", &["is-active", "lapd"]).is_ok(),
            "lapd.service is running",
        )?;
    } else {
        start_lapd_like_systemd(&unit)?;
    }
    expect(
        Path::new("/var/lib/lapd/keys/server.toml").is_file(),
        "the first start made the keys in /var/lib/lapd",
    )?;

    purge_leaving_nothing("lapd", &files)?;
    for path in ["/var/lib/lapd", "/etc/lapd"] {
        expect(!Path::new(path).exists(), &format!("{path} is gone"))?;
    }
    Ok(())
}

/// Without a running systemd (CI), does what the unit would: the state directory, then
/// ExecStartPre and ExecStart exactly as written in the unit, as the user `lapd`, the server
/// on a free loopback port (a command-line flag wins over the config file).
fn start_lapd_like_systemd(unit: &str) -> Result {
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::to_owned)
            .ok_or_else(|| fail(format!("lapd.service has no {key}")))
    };
    let pre = value("ExecStartPre=")?;
    let start = value("ExecStart=")?;
    cmd(
        "install",
        &[
            "-d",
            "-o",
            "lapd",
            "-g",
            "lapd",
            "-m",
            "0700",
            "/var/lib/lapd",
        ],
    )?;
    // setpriv changes user and executes (runuser would stay in between and report the
    // signal rather than lapd's exit).
    let as_lapd = ["--reuid=lapd", "--regid=lapd", "--init-groups", "--"];
    // Twice: the second start must find the keys and leave them alone.
    for _ in 0..2 {
        let mut args = as_lapd.to_vec();
        args.extend(["sh", "-c", &pre]);
        cmd("setpriv", &args)?;
    }
    let mut args = as_lapd.to_vec();
    args.extend(start.split_whitespace());
    args.extend(["--listen", "127.0.0.1:0"]);
    println!("$ setpriv {}", args.join(" "));
    let mut child = Command::new("setpriv")
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("cannot start lapd: {e}")))?;
    let mut first = String::new();
    let read = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut first));
    let pid = child.id().to_string();
    // lapd prints its counters on SIGTERM and exits.
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let status = child.wait().map_err(|e| fail(e.to_string()))?;
    expect(
        matches!(read, Some(Ok(n)) if n > 0) && first.trim().starts_with("127.0.0.1:"),
        &format!(
            "lapd serve --config /etc/lapd/lapd.toml started as lapd, on {}",
            first.trim()
        ),
    )?;
    expect(
        status.success(),
        &format!("lapd stopped on SIGTERM ({status})"),
    )
}
