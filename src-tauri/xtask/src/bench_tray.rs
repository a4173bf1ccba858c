//! `cargo xtask bench tray`: what the tray app costs a desktop, measured on the build that
//! ships (the `dist` profile: release, stripped) under Xvfb with a private session bus, a tray
//! on it as a desktop panel has (`tray_watcher`), and one activated product:
//!
//! - launch to tray ready (the app's "app ready" log line, logged once the tray is made, with
//!   or without a tray host to show it, timed from the spawn);
//! - memory with no window open, 10 s after launch (PSS of the app and its children);
//! - CPU time over 60 s idle (every thread's run time from `/proc/PID/task/*/schedstat`);
//! - a Products window from the request to its first paint ("opening window" to "page
//!   loaded", both logged by the app, timed as they arrive);
//! - the first activation after start: a fresh home with an evaluation product (due at once),
//!   from the app's "app ready" line to its activation record on disk, in the default
//!   configuration (DNS-SD browse on) and with discovery off (`LAPWING_NO_MDNS=1`).
//!
//! Secrets are kept in a file (`--insecure-file-store`) so no keyring daemon is measured.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::paths::target_dir;
use crate::process::{Owned, VirtualDesktop, output, spawn_first_line};
use crate::steps::{Result, cmd, fail, step};
use crate::tray_watcher::TrayWatcher;
use crate::ui::build_ui;

const RUNS: usize = 5;
const SKU: &str = "3c5e7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d";
/// The evaluation product of the first-activation step: its own SKU, so its seats are apart.
const EVAL_SKU: &str = "5d7f9b1c-3e4a-4c6d-8e0f-4a6c8e0a2b3d";

/// The desktop and the product the app runs with.
struct Desk {
    dir: PathBuf,
    desktop: VirtualDesktop,
    _tray: TrayWatcher,
    _lapd: Owned,
}

impl Desk {
    fn start(release: &Path) -> Result<Self> {
        let dir = target_dir().join("bench-tray");
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["home", "products", "config", "user"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| fail(e.to_string()))?;
        }
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let desktop = VirtualDesktop::start()?;
        // A panel with a tray, as on a desktop: the app opens no window at start.
        let tray = TrayWatcher::start(&desktop.bus)?;

        let lapd = release.join("lapd");
        output(
            Command::new(&lapd).args(["keygen", "--out", &path("keys")]),
            "lapd keygen",
        )?;
        std::fs::write(
            dir.join("catalog.toml"),
            format!(
                "[[sku]]\nid = \"{SKU}\"\nname = \"Bench Studio\"\n\
                 [[sku]]\nid = \"{EVAL_SKU}\"\nname = \"Bench Trial\"\nevaluation_days = 30\n"
            ),
        )
        .map_err(|e| fail(e.to_string()))?;
        let key = output(
            Command::new(&lapd).args([
                "license",
                "new",
                "--catalog",
                &path("catalog.toml"),
                "--sku",
                SKU,
                "--days",
                "365",
            ]),
            "lapd license new",
        )?;
        let (server, address) = spawn_first_line(
            Command::new(&lapd)
                .args(["serve", "--listen", "127.0.0.1:0", "--keys", &path("keys")])
                .args([
                    "--catalog",
                    &path("catalog.toml"),
                    "--db",
                    &path("db.sqlite"),
                ]),
            "lapd serve",
        )?;
        let public = std::fs::read_to_string(dir.join("keys/server.toml"))
            .map_err(|e| fail(e.to_string()))?;
        let keys: Vec<&str> = public
            .lines()
            .filter(|l| l.starts_with("x25519") || l.starts_with("ed25519"))
            .collect();
        std::fs::write(
            dir.join("studio.toml"),
            format!(
                "schema = 1\nid = \"bench-studio\"\nname = \"Bench Studio\"\nvendor = \"Lapwing\"\nsku = \"{SKU}\"\n[server]\n{}\naddress = \"{address}\"\n",
                keys.join("\n")
            ),
        )
        .map_err(|e| fail(e.to_string()))?;
        // The first-activation step's product, in a folder of its own: the other figures are
        // of the app with one activated product.
        std::fs::create_dir_all(dir.join("eval-products")).map_err(|e| fail(e.to_string()))?;
        std::fs::write(
            dir.join("eval-products/bench-trial.toml"),
            format!(
                "schema = 1\nid = \"bench-trial\"\nname = \"Bench Trial\"\nvendor = \"Lapwing\"\nsku = \"{EVAL_SKU}\"\nevaluation_days = 30\n[server]\n{}\naddress = \"{address}\"\n",
                keys.join("\n")
            ),
        )
        .map_err(|e| fail(e.to_string()))?;
        let studio = path("studio.toml");
        let desk = Self {
            dir,
            desktop,
            _tray: tray,
            _lapd: server,
        };
        // Keys never go on a command line, where `ps` shows them: lapctl reads this file.
        let key_file = desk.dir.join("license.key").to_string_lossy().into_owned();
        std::fs::write(&key_file, format!("{key}\n")).map_err(|e| fail(e.to_string()))?;
        let mut install = Command::new(release.join("lapctl"));
        install.args([
            "--insecure-file-store",
            "install",
            "--manifest",
            &studio,
            "--key-file",
            &key_file,
        ]);
        desk.apply(&mut install);
        output(&mut install, "lapctl install")?;
        Ok(desk)
    }

    fn apply<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("LAPWING_HOME", self.dir.join("home"))
            .env("LAPWING_PRODUCTS_DIR", self.dir.join("products"))
            .env("LAPWING_POLICY", self.dir.join("no-policy.toml"))
            .env("LAPWING_NO_MDNS", "1")
            .env("HOME", self.dir.join("user"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("DISPLAY", &self.desktop.display)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.desktop.bus)
            .env("GDK_BACKEND", "x11")
            .env("NO_AT_BRIDGE", "1")
    }
}

/// The running app and its log lines, each with the moment it arrived.
struct App {
    child: Owned,
    started: Instant,
    lines: Receiver<(Instant, String)>,
}

impl App {
    fn launch(release: &Path, desk: &Desk, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut command = Command::new(release.join("lapwing"));
        desk.apply(&mut command);
        command
            .arg("--insecure-file-store")
            .args(args)
            .env("LAPWING_LOG", "lapwing=info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // An empty value removes the desk's variable (the default configuration).
        for (name, value) in env {
            if value.is_empty() && *name != "GDK_GL" {
                command.env_remove(name);
            }
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|e| fail(format!("lapwing: {e}")))?;
        let stderr = child.stderr.take().ok_or_else(|| fail("stderr"))?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child: Owned::from(child),
            started,
            lines,
        })
    }

    /// Waits for a log line holding `wanted`; returns when it arrived.
    fn wait_for(&self, wanted: &str) -> Result<Instant> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if line.contains(wanted) => return Ok(at),
                Ok((_, line)) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(fail(format!(
            "the app never logged {wanted:?}; it logged:\n{}",
            seen.join("\n")
        )))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// The process and its descendants (a window's web processes among them).
fn process_tree(root: u32) -> Vec<u32> {
    let mut children: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        if let Some(parent) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        {
            children.push((parent, pid));
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        let parent = tree[index];
        tree.extend(
            children
                .iter()
                .filter(|(p, _)| *p == parent)
                .map(|(_, c)| c),
        );
        index += 1;
    }
    tree
}

/// A `kB` field of `/proc/PID/smaps_rollup`, summed over `pids`, in MB.
fn memory_mb(pids: &[u32], field: &str) -> f64 {
    let kb: u64 = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum();
    #[allow(clippy::cast_precision_loss, reason = "kilobytes of one process tree")]
    let mb = kb as f64 / 1024.0;
    mb
}

/// CPU time every thread of `pids` has run, in nanoseconds (schedstat's first field).
fn cpu_ns(pids: &[u32]) -> u64 {
    let mut total = 0;
    for pid in pids {
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let mut text = String::new();
            if std::fs::File::open(task.path().join("schedstat"))
                .and_then(|mut f| f.read_to_string(&mut text))
                .is_ok()
            {
                total += text
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn verdict(value: f64, target: f64) -> &'static str {
    if value <= target { "met" } else { "MISSED" }
}

/// Idle memory of one launch, 10 s after it, with `env` added.
fn idle_memory(release: &Path, desk: &Desk, env: &[(&str, &str)]) -> Result<(f64, f64, App)> {
    let app = App::launch(release, desk, &[], env)?;
    app.wait_for("app ready")?;
    std::thread::sleep(Duration::from_secs(10));
    let tree = process_tree(app.pid());
    Ok((memory_mb(&tree, "Pss:"), memory_mb(&tree, "Rss:"), app))
}

#[allow(
    clippy::too_many_lines,
    reason = "a linear script: the steps read in the order they run"
)]
pub fn run() -> Result {
    build_ui()?;
    step("build the binaries as they ship (profile dist)", || {
        let args = "build --profile dist --locked -p lapwing -p lapd -p lapctl";
        cmd("cargo", &args.split(' ').collect::<Vec<_>>())
    })?;
    let release = target_dir().join("dist");
    let desk = Desk::start(&release)?;

    let mut ready = Vec::new();
    step(&format!("launch to tray ready ({RUNS} launches)"), || {
        for _ in 0..RUNS {
            let app = App::launch(&release, &desk, &[], &[])?;
            // The app found the tray (the watcher): no window is open at start.
            app.wait_for("tray ready")?;
            let at = app.wait_for("app ready")?;
            ready.push(ms(at - app.started));
            drop(app);
            // The single-instance name must be free before the next launch.
            std::thread::sleep(Duration::from_millis(500));
        }
        println!("launch to tray ready: {ready:.0?} ms");
        Ok(())
    })?;

    let mut paint = Vec::new();
    step(
        &format!("Products window: request to first paint ({RUNS} launches)"),
        || {
            for _ in 0..RUNS {
                let app = App::launch(&release, &desk, &["--open", "products"], &[])?;
                let asked = app.wait_for("opening window")?;
                let painted = app.wait_for("page loaded")?;
                paint.push(ms(painted - asked));
                drop(app);
                std::thread::sleep(Duration::from_millis(500));
            }
            println!("Products window, request to page loaded: {paint:.0?} ms");
            Ok(())
        },
    )?;

    let mut first = [0.0, 0.0];
    for (slot, mdns) in [(0, false), (1, true)] {
        let label = if mdns {
            "DNS-SD browse on, the default"
        } else {
            "discovery off"
        };
        step(
            &format!("first activation after start, {label} ({RUNS} launches, fresh homes)"),
            || {
                let mut times = Vec::new();
                for n in 0..RUNS {
                    let home = desk.dir.join(format!("first-{mdns}-{n}"));
                    let _ = std::fs::remove_dir_all(&home);
                    let record = home.join("activations/bench-trial.json");
                    let home_text = home.to_string_lossy().into_owned();
                    let products = desk
                        .dir
                        .join("eval-products")
                        .to_string_lossy()
                        .into_owned();
                    let mut env = vec![
                        ("LAPWING_HOME", home_text.as_str()),
                        ("LAPWING_PRODUCTS_DIR", products.as_str()),
                    ];
                    if mdns {
                        env.push(("LAPWING_NO_MDNS", ""));
                    }
                    let app = App::launch(&release, &desk, &[], &env)?;
                    let ready = app.wait_for("app ready")?;
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while !record.exists() {
                        if Instant::now() > deadline {
                            return Err(fail(format!(
                                "no activation record at {} 10 s after start",
                                record.display()
                            )));
                        }
                        std::thread::sleep(Duration::from_micros(500));
                    }
                    times.push(ms(ready.elapsed()));
                    drop(app);
                    std::thread::sleep(Duration::from_millis(500));
                }
                println!("app ready to activation record: {times:.1?} ms");
                first[slot] = median(times);
                Ok(())
            },
        )?;
    }

    let mut gl = (0.0, 0.0);
    step(
        "memory with no window open, GDK's GL probing left on (GDK_GL empty)",
        || {
            let (pss, rss, app) = idle_memory(&release, &desk, &[("GDK_GL", "")])?;
            drop(app);
            std::thread::sleep(Duration::from_millis(500));
            gl = (pss, rss);
            println!("PSS {pss:.1} MB, RSS {rss:.1} MB");
            Ok(())
        },
    )?;

    let (mut pss, mut rss, mut cpu_ms) = (0.0, 0.0, 0.0);
    step(
        "memory with no window open after 10 s, then CPU over 60 s idle",
        || {
            let (p, r, app) = idle_memory(&release, &desk, &[])?;
            (pss, rss) = (p, r);
            println!("PSS {pss:.1} MB, RSS {rss:.1} MB");
            let tree = process_tree(app.pid());
            let before = cpu_ns(&tree);
            std::thread::sleep(Duration::from_secs(60));
            let after = cpu_ns(&process_tree(app.pid()));
            #[allow(clippy::cast_precision_loss, reason = "nanoseconds of one minute")]
            let used = after.saturating_sub(before) as f64 / 1e6;
            cpu_ms = used;
            println!("CPU time in 60 s idle: {cpu_ms:.2} ms");
            Ok(())
        },
    )?;

    let ready_ms = median(ready);
    let paint_ms = median(paint);
    println!(
        "\ntray app (dist build, Xvfb, one activated product; medians of {RUNS}):\n\
         | measure | figure | target | |\n|---|---|---|---|\n\
         | launch to tray ready | {ready_ms:.0} ms | ≤ 300 ms | {} |\n\
         | memory, no window, after 10 s | {pss:.1} MB PSS ({rss:.1} MB RSS) | ≤ 60 MB PSS | {} |\n\
         | same, GL probing left on (GDK_GL empty) | {:.1} MB PSS ({:.1} MB RSS) | ≤ 60 MB PSS | {} |\n\
         | CPU time in 60 s idle | {cpu_ms:.2} ms | ≤ 20 ms | {} |\n\
         | Products window, request to first paint | {paint_ms:.0} ms | ≤ 500 ms | {} |\n\
         | first activation after start (app ready to record), discovery off | {:.1} ms | | |\n\
         | same, DNS-SD browse on (the default) | {:.1} ms | ≤ 50 ms, ≤ 3× off ({:.1}×) | {} |",
        verdict(ready_ms, 300.0),
        verdict(pss, 60.0),
        gl.0,
        gl.1,
        verdict(gl.0, 60.0),
        verdict(cpu_ms, 20.0),
        verdict(paint_ms, 500.0),
        first[0],
        first[1],
        first[1] / first[0],
        verdict(first[1], 50.0_f64.min(3.0 * first[0])),
    );
    Ok(())
}
