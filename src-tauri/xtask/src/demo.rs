//! The demo (`./dev.sh demo`, the README's first command): a `lapd` on loopback with a demo
//! catalog (a base product with an evaluation and an add-on, one license each with a fixed
//! key), both products installed and NOT activated, and the tray app opened on its Products
//! window, so a newcomer enters the two keys and watches them activate.
//!
//! - With a display: the tray app runs until it is quit (tray menu → Quit) or Ctrl-C.
//! - Without one (`DISPLAY` and `WAYLAND_DISPLAY` unset): the same steps through `lapctl`.
//! - `--exit`: the tray app under a private Xvfb and session bus, the keys stored with
//!   `lapctl key set`, a wait until both products are activated and the tray has shown it,
//!   then everything is stopped (what `cargo xtask test` runs, so CI proves the demo works).
//!
//! Everything lives in `target/demo/`. The server's keys, catalog and seat database are kept
//! between runs (a rerun keeps its seats); the client's home, products and the tray's config
//! are reset at every start, so each run begins at "not activated". Secrets are kept in a
//! file (`--insecure-file-store`): they are demo keys, and a headless machine has no keyring.

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::paths::target_dir;
use crate::process::{Owned, VirtualDesktop, output, spawn_first_line};
use crate::steps::{Result, cmd, fail, step};
use crate::ui::{build_ui, ui_packages};

pub const DEMO_BASE_SKU: &str = "5d1f2c4a-7b8e-4c3d-9a6f-1e2d3c4b5a69";
pub const DEMO_ADDON_SKU: &str = "8a7b6c5d-4e3f-4a1b-8c9d-0e1f2a3b4c5d";
/// The demo's license keys. Fixed (drawn once with `lapd license new`, so they pass the
/// profile §4 check) so that the README can print them; the README shows the base key with
/// one character mistyped (`NYCB` → `NYC8`) so the newcomer meets the correction.
pub const DEMO_BASE_KEY: &str = "6XYD-6JCE-HGKZ-NYCB-6HAZ-AB95-KGVH";
pub const DEMO_ADDON_KEY: &str = "W658-37J2-7GP3-7TG7-9MQY-BJ65-2WNT";
/// The Studio key as the README prints it, with its typo: what the newcomer is shown to type.
pub const DEMO_BASE_KEY_AS_PRINTED: &str = "6XYD-6JCE-HGKZ-NYC8-6HAZ-AB95-KGVH";
const BASE_ID: &str = "demo-studio";
const ADDON_ID: &str = "demo-export";
/// How long `--exit` waits for both products to be activated and shown.
const ACTIVATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The tray app's identifier (tauri.conf.json): its config directory's name.
const APP_IDENTIFIER: &str = "com.lapwing.tray";

/// Written at every run: fixed keys make it the same file every time.
fn demo_catalog() -> String {
    format!(
        "# The Lapwing demo catalog (written by `cargo xtask demo` at every run).\n\
         renew_after_days = 7\n\n\
         [[sku]]\nid = \"{DEMO_BASE_SKU}\"\nname = \"Lapwing Demo Studio\"\nevaluation_days = 30\nevaluation_features = [\"basic\"]\n\n\
         [[sku]]\nid = \"{DEMO_ADDON_SKU}\"\nname = \"Lapwing Demo Export (add-on)\"\nbase = \"{DEMO_BASE_SKU}\"\n\n\
         [[license]]\nkey = \"{DEMO_BASE_KEY}\"\nsku = \"{DEMO_BASE_SKU}\"\nkind = \"term\"\nseats = 3\ndays = 365\n\
         features = [\"pro\", \"export\"]\nnotice = \"Licensed to the Lapwing demo\"\n\n\
         [[license]]\nkey = \"{DEMO_ADDON_KEY}\"\nsku = \"{DEMO_ADDON_SKU}\"\nkind = \"perpetual\"\nseats = 3\n"
    )
}

fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}

/// The demo's files and the environment every client process (lapctl, the tray) gets.
struct Demo {
    dir: PathBuf,
    bin: PathBuf,
}

impl Demo {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// The client's environment: its own home, products directory and (absent) policy, no
    /// mDNS on the real network, and a config directory of its own for the tray.
    fn client_env(&self) -> Vec<(&'static str, PathBuf)> {
        vec![
            ("LAPWING_HOME", self.dir.join("home")),
            ("LAPWING_PRODUCTS_DIR", self.dir.join("products")),
            ("LAPWING_POLICY", self.dir.join("no-policy.toml")),
            ("LAPWING_NO_MDNS", "1".into()),
            ("XDG_CONFIG_HOME", self.dir.join("config")),
        ]
    }

    fn lapctl(&self, args: &[&str]) -> Command {
        let mut command = Command::new(self.bin.join("lapctl"));
        command
            .arg("--insecure-file-store")
            .args(args)
            .envs(self.client_env());
        command
    }

    /// Runs lapctl with its output shown, as a person would type it.
    fn lapctl_shown(&self, args: &[&str]) -> Result {
        println!("$ lapctl {}", args.join(" "));
        let status = self
            .lapctl(args)
            .status()
            .map_err(|e| fail(format!("cannot start lapctl: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("lapctl {} failed ({status})", args.join(" "))))
        }
    }

    /// Runs lapctl with `key` piped to its stdin, as a person or an installer gives a key:
    /// never as an argument, where `ps` and the shell's history would keep it.
    fn lapctl_fed(&self, args: &[&str], key: &str) -> Result {
        println!("$ echo {key} | lapctl {}", args.join(" "));
        let mut child = self
            .lapctl(args)
            .stdin(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start lapctl: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            writeln!(stdin, "{key}").map_err(|e| fail(format!("lapctl's stdin: {e}")))?;
        }
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("lapctl {} failed ({status})", args.join(" "))))
        }
    }

    /// Server keys (made once), the catalog (rewritten), and a fresh client side.
    fn prepare(&self) -> Result {
        let io = |what: &Path, e: std::io::Error| fail(format!("{}: {e}", what.display()));
        for reset in ["home", "products", "config", "user", "tray.log"] {
            let path = self.dir.join(reset);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&path, e)),
                _ => {}
            }
        }
        for sub in ["manifests", "products", "home", "user"] {
            let path = self.dir.join(sub);
            std::fs::create_dir_all(&path).map_err(|e| io(&path, e))?;
        }
        // The person's choice about starting at login is made for the demo (off): a demo's
        // tray must not add itself to the real session's autostart.
        let config = self.dir.join("config").join(APP_IDENTIFIER);
        std::fs::create_dir_all(&config).map_err(|e| io(&config, e))?;
        std::fs::write(config.join("autostart-chosen"), b"")
            .map_err(|e| io(&config.join("autostart-chosen"), e))?;
        if !self.dir.join("keys/x25519.key").exists() {
            output(
                Command::new(self.bin.join("lapd")).args(["keygen", "--out", &self.path("keys")]),
                "lapd keygen",
            )?;
        }
        let catalog = self.dir.join("catalog.toml");
        std::fs::write(&catalog, demo_catalog()).map_err(|e| io(&catalog, e))?;
        output(
            Command::new(self.bin.join("lapd")).args(["check-catalog", &self.path("catalog.toml")]),
            "lapd check-catalog",
        )?;
        self.write_env_script()
    }

    /// `target/demo/env.sh`: the demo's environment for a terminal, so `lapctl` commands
    /// typed by hand act on the demo's products.
    fn write_env_script(&self) -> Result {
        let mut lines = vec![
            "# Source this file to use lapctl on the demo's products: . target/demo/env.sh"
                .to_owned(),
        ];
        lines.extend(
            self.client_env()
                .into_iter()
                .filter(|(name, _)| *name != "XDG_CONFIG_HOME")
                .map(|(name, value)| format!("export {name}='{}'", value.display())),
        );
        lines.push(format!(
            "alias lapctl='{} --insecure-file-store'\n",
            self.bin.join("lapctl").display()
        ));
        let path = self.dir.join("env.sh");
        std::fs::write(&path, lines.join("\n"))
            .map_err(|e| fail(format!("{}: {e}", path.display())))
    }

    fn start_lapd(&self) -> Result<(Owned, String)> {
        spawn_first_line(
            Command::new(self.bin.join("lapd")).args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--keys",
                &self.path("keys"),
                "--catalog",
                &self.path("catalog.toml"),
                "--db",
                &self.path("assignments.sqlite"),
            ]),
            "lapd serve",
        )
    }

    /// The two products' manifests, as their installers would ship them.
    fn write_manifests(&self, address: &str) -> Result<(String, String)> {
        let public_path = self.dir.join("keys/server.toml");
        let public = std::fs::read_to_string(&public_path)
            .map_err(|e| fail(format!("{}: {e}", public_path.display())))?;
        let server_keys: String = public
            .lines()
            .filter(|l| l.starts_with("x25519") || l.starts_with("ed25519"))
            .collect::<Vec<_>>()
            .join("\n");
        let write = |id: &str, name: &str, sku: &str, extra: &str| -> Result<String> {
            let path = self.dir.join("manifests").join(format!("{id}.toml"));
            let text = format!(
                "# A demo product's manifest (profile §6), written by `cargo xtask demo`.\n\
                 schema = 1\nid = \"{id}\"\nname = \"{name}\"\nvendor = \"Lapwing demo\"\nsku = \"{sku}\"\n{extra}\n\n\
                 [server]\n{server_keys}\naddress = \"{address}\"\n"
            );
            std::fs::write(&path, text).map_err(|e| fail(format!("{}: {e}", path.display())))?;
            Ok(path.to_string_lossy().into_owned())
        };
        Ok((
            write(
                BASE_ID,
                "Lapwing Demo Studio",
                DEMO_BASE_SKU,
                "evaluation_days = 30",
            )?,
            write(
                ADDON_ID,
                "Lapwing Demo Export",
                DEMO_ADDON_SKU,
                &format!("addon_of = \"{BASE_ID}\""),
            )?,
        ))
    }

    /// The states `lapctl status --json` reports for the two demo products.
    fn states(&self) -> Result<(String, String)> {
        let text = output(
            &mut self.lapctl(&["status", "--json"]),
            "lapctl status --json",
        )?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail(format!("lapctl status --json: {e}")))?;
        let state = |id: &str| {
            value
                .as_array()
                .and_then(|list| list.iter().find(|p| p["id"] == id))
                .and_then(|p| p["state"].as_str())
                .unwrap_or("not installed")
                .to_owned()
        };
        Ok((state(BASE_ID), state(ADDON_ID)))
    }

    /// Starts the tray app on the Products window; its log goes to `target/demo/tray.log`
    /// and, line by line, to the receiver.
    fn start_tray(&self, extra_env: &[(&str, String)]) -> Result<(Owned, Receiver<String>)> {
        let log_path = self.dir.join("tray.log");
        let mut log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
        let mut child = Command::new(self.bin.join("lapwing"))
            .args(["--insecure-file-store", "--open", "products"])
            .envs(self.client_env())
            .env("LAPWING_LOG", "lapwing=debug,lapwing_core=info")
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start the tray app: {e}")))?;
        let stderr = child.stderr.take().ok_or_else(|| fail("stderr"))?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let _ = writeln!(log, "{line}");
                // The receiver may be gone (the demo ended): the log file still gets it all.
                let _ = tx.send(line);
            }
        });
        Ok((Owned::from(child), lines))
    }
}

/// Waits for a log line holding `wanted` until `deadline`.
fn wait_for_line(lines: &Receiver<String>, wanted: &str, deadline: Instant) -> Result {
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => return Ok(()),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Err(fail(format!(
        "the tray app did not log {wanted:?} in time (its log: target/demo/tray.log)"
    )))
}

/// `--exit` and the interactive tray share everything up to here.
fn build(tray: bool) -> Result<Demo> {
    let mut packages = vec!["--package", "lapd", "--package", "lapctl"];
    if tray {
        step("setup: UI packages (npm ci)", ui_packages)?;
        build_ui()?;
        packages.extend(["--package", "lapwing"]);
    }
    let title = if tray {
        "build lapwing (the tray app), lapd and lapctl"
    } else {
        "build lapd and lapctl"
    };
    step(title, || {
        let mut args = vec!["build"];
        args.extend(&packages);
        args.push("--locked");
        cmd("cargo", &args)
    })?;
    let demo = Demo {
        dir: target_dir().join("demo"),
        bin: target_dir().join("debug"),
    };
    std::fs::create_dir_all(&demo.dir).map_err(|e| fail(format!("{}: {e}", demo.dir.display())))?;
    Ok(demo)
}

pub fn run(exit_after: bool) -> Result {
    let started = Instant::now();
    let tray = exit_after || has_display();
    if !tray {
        println!(
            "No display (DISPLAY and WAYLAND_DISPLAY are unset): the demo runs through lapctl \
             instead of the tray app. `./dev.sh demo --exit` runs the tray app on a virtual display."
        );
    }
    let demo = build(tray)?;
    let mut server = None;
    step(
        "demo server: lapd on loopback with the demo catalog (fixed keys)",
        || {
            demo.prepare()?;
            let (lapd, address) = demo.start_lapd()?;
            println!(
                "lapd is serving on {address} (files in {})",
                demo.dir.display()
            );
            server = Some((lapd, address));
            Ok(())
        },
    )?;
    let (mut lapd, address) = server.ok_or_else(|| fail("lapd did not start"))?;
    let (studio, export) = demo.write_manifests(&address)?;

    let result = if exit_after {
        step(
            "the demo, unattended: the tray app on Xvfb, keys through lapctl, both activated",
            || unattended(&demo, &studio, &export),
        )
    } else if tray {
        step("install the demo products (not activated yet)", || {
            install_without_keys(&demo, &studio, &export)
        })
        .and_then(|()| interactive_tray(&demo))
    } else {
        step(
            "the client: lapctl installs both products with their keys",
            || {
                demo.lapctl_fed(
                    &["install", "--manifest", &studio, "--key-file", "-"],
                    DEMO_BASE_KEY,
                )?;
                demo.lapctl_fed(
                    &["install", "--manifest", &export, "--key-file", "-"],
                    DEMO_ADDON_KEY,
                )?;
                demo.lapctl_shown(&["status"])
            },
        )
        .and_then(|()| {
            println!(
                "\nThe demo server keeps running (Ctrl-C stops it). In another terminal:\n  \
                 . {}/env.sh      # the demo's environment and a `lapctl` alias\n  \
                 lapctl status\n  lapctl key show {BASE_ID}\n  lapctl doctor",
                demo.dir.display()
            );
            lapd.wait().map(drop).map_err(|e| fail(e.to_string()))
        })
    };
    lapd.stop();
    println!("\ndemo: {:.1} s in all", started.elapsed().as_secs_f64());
    result
}

fn install_without_keys(demo: &Demo, studio: &str, export: &str) -> Result {
    // The base starts its evaluation (the demo server grants one); the add-on has none.
    demo.lapctl_shown(&["install", "--manifest", studio])?;
    demo.lapctl_shown(&["install", "--manifest", export])
}

/// The keys as the person is to type them (`printed`: the README's, one with its typo) or as
/// the unattended run pipes them in (both right).
fn print_keys(printed: bool) {
    let studio = if printed {
        DEMO_BASE_KEY_AS_PRINTED
    } else {
        DEMO_BASE_KEY
    };
    println!(
        "\nThe demo's license keys (in a file, target/demo/home, not the keyring: they are demo keys):\n  \
         Lapwing Demo Studio   {studio}\n  \
         Lapwing Demo Export   {DEMO_ADDON_KEY}"
    );
}

/// The newcomer's demo: the tray app on the real display, the keys to type.
fn interactive_tray(demo: &Demo) -> Result {
    print_keys(true);
    println!(
        "\nThe tray app opens its Products window: click a product, enter its key (try the README's \
         the Studio key has a typo, as printed), and watch it activate. The tray menu's Quit ends the demo (or Ctrl-C).\n\
         lapctl on the same products, in another terminal: . {}/env.sh && lapctl status",
        demo.dir.display()
    );
    let launched = Instant::now();
    let (mut app, _lines) = demo.start_tray(&[])?;
    let status = app.wait().map_err(|e| fail(format!("the tray app: {e}")))?;
    // A second Lapwing hands its arguments to the one already running and leaves at once.
    if status.success() && launched.elapsed() < Duration::from_secs(5) {
        println!(
            "The tray app left at once: another Lapwing is probably running (one per session). \
             Quit it and run the demo again. Its log: target/demo/tray.log"
        );
    }
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!(
            "the tray app ended with {status} (its log: target/demo/tray.log)"
        )))
    }
}

/// `--exit`: what a newcomer does, with `lapctl key set` for the typing, checked end to end.
fn unattended(demo: &Demo, studio: &str, export: &str) -> Result {
    let virtual_desktop = VirtualDesktop::start()?;
    let desktop = [
        ("DISPLAY", virtual_desktop.display.clone()),
        ("DBUS_SESSION_BUS_ADDRESS", virtual_desktop.bus.clone()),
        ("GDK_BACKEND", "x11".to_owned()),
        ("WAYLAND_DISPLAY", String::new()),
        // No accessibility bus on this private session: do not wait for one.
        ("NO_AT_BRIDGE", "1".to_owned()),
        // The web view's caches, away from the real home.
        ("HOME", demo.path("user")),
    ];
    install_without_keys(demo, studio, export)?;
    let (before_base, before_addon) = demo.states()?;
    println!("before the keys: {BASE_ID} {before_base}, {ADDON_ID} {before_addon}");
    if before_base == "activated" || before_addon == "activated" {
        return Err(fail("the demo products must start not activated"));
    }

    let launched = Instant::now();
    let (app, lines) = demo.start_tray(&desktop)?;
    let deadline = launched + ACTIVATION_TIMEOUT;
    wait_for_line(&lines, "app ready", deadline)?;
    wait_for_line(&lines, "page loaded", deadline)?;
    println!(
        "the tray app is up, Products window shown, in {:.1} s (pid {})",
        launched.elapsed().as_secs_f64(),
        app.id()
    );
    // Everything logged from here on is the tray's reaction to the keys.
    while lines.try_recv().is_ok() {}

    print_keys(false);
    let keys_at = Instant::now();
    demo.lapctl_fed(&["key", "set", BASE_ID], DEMO_BASE_KEY)?;
    demo.lapctl_fed(&["key", "set", ADDON_ID], DEMO_ADDON_KEY)?;
    loop {
        let (base, addon) = demo.states()?;
        if base == "activated" && addon == "activated" {
            break;
        }
        if Instant::now() >= deadline {
            return Err(fail(format!(
                "the demo products were not both activated within {} s: {BASE_ID} is {base}, \
                 {ADDON_ID} is {addon} (`. target/demo/env.sh && lapctl status` says why)",
                ACTIVATION_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let activated = keys_at.elapsed();
    wait_for_line(&lines, "status changed", deadline)?;
    println!(
        "both activated {:.2} s after the keys were stored; the tray showed it {:.2} s after",
        activated.as_secs_f64(),
        keys_at.elapsed().as_secs_f64()
    );
    demo.lapctl_shown(&["status"])?;
    let mut app = app;
    if let Some(status) = app.exited() {
        return Err(fail(format!(
            "the tray app ended on its own ({status}); its log: target/demo/tray.log"
        )));
    }
    app.stop();
    drop(virtual_desktop);
    Ok(())
}
