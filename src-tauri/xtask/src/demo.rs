//! The demo: a `lapd` on loopback with a demo catalog (a base product with an evaluation and
//! an add-on), one license for each, and an activation round trip for both.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Result, cmd, fail, step, target_dir};

pub const DEMO_BASE_SKU: &str = "5d1f2c4a-7b8e-4c3d-9a6f-1e2d3c4b5a69";
pub const DEMO_ADDON_SKU: &str = "8a7b6c5d-4e3f-4a1b-8c9d-0e1f2a3b4c5d";
/// One stand-in machine for every demo run, so reruns keep their seat instead of taking more.
const DEMO_MACHINE: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

fn demo_catalog() -> String {
    format!(
        "# The Lapwing demo catalog (written by `cargo xtask demo`).\n\
         renew_after_days = 7\n\n\
         [[sku]]\nid = \"{DEMO_BASE_SKU}\"\nname = \"Lapwing Demo Studio\"\nevaluation_days = 30\nevaluation_features = [\"basic\"]\n\n\
         [[sku]]\nid = \"{DEMO_ADDON_SKU}\"\nname = \"Lapwing Demo Export (add-on)\"\nbase = \"{DEMO_BASE_SKU}\"\n"
    )
}

fn lapd_output(lapd: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(lapd)
        .args(args)
        .output()
        .map_err(|e| fail(format!("lapd: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!(
            "lapd {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[allow(
    clippy::too_many_lines,
    reason = "a linear script: the steps read in the order they run"
)]
pub fn run(exit_after: bool) -> Result {
    step("build lapd and lapctl", || {
        cmd(
            "cargo",
            &[
                "build",
                "--package",
                "lapd",
                "--package",
                "lapctl",
                "--locked",
            ],
        )
    })?;
    let lapd = target_dir().join("debug/lapd");
    let dir = target_dir().join("demo");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    if !dir.join("keys/x25519.key").exists() {
        lapd_output(&lapd, &["keygen", "--out", &path("keys")])?;
    }
    if !dir.join("catalog.toml").exists() {
        std::fs::write(dir.join("catalog.toml"), demo_catalog())
            .map_err(|e| fail(e.to_string()))?;
        let base = lapd_output(
            &lapd,
            &[
                "license",
                "new",
                "--catalog",
                &path("catalog.toml"),
                "--sku",
                DEMO_BASE_SKU,
                "--days",
                "365",
                "--seats",
                "3",
                "--feature",
                "pro",
                "--feature",
                "export",
                "--notice",
                "Licensed to the Lapwing demo",
            ],
        )?;
        let addon = lapd_output(
            &lapd,
            &[
                "license",
                "new",
                "--catalog",
                &path("catalog.toml"),
                "--sku",
                DEMO_ADDON_SKU,
                "--seats",
                "3",
            ],
        )?;
        std::fs::write(dir.join("demo-keys.txt"), format!("{base}\n{addon}\n"))
            .map_err(|e| fail(e.to_string()))?;
    }
    let keys =
        std::fs::read_to_string(dir.join("demo-keys.txt")).map_err(|e| fail(e.to_string()))?;
    let mut keys = keys.lines();
    let (base_key, addon_key) = (
        keys.next().unwrap_or_default().to_owned(),
        keys.next().unwrap_or_default().to_owned(),
    );

    let mut server = Command::new(&lapd)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--keys",
            &path("keys"),
            "--catalog",
            &path("catalog.toml"),
            "--db",
            &path("assignments.sqlite"),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("starting lapd: {e}")))?;
    let mut first = String::new();
    let stdout = server.stdout.take().ok_or_else(|| fail("lapd stdout"))?;
    BufReader::new(stdout)
        .read_line(&mut first)
        .map_err(|e| fail(e.to_string()))?;
    let address = first.trim().to_owned();
    if address.is_empty() {
        let _ = server.kill();
        return Err(fail("lapd did not print its address"));
    }

    let public = path("keys/server.toml");
    let probe = |what: &str, extra: &[&str]| -> Result {
        println!("\n{what}:");
        let mut args = vec![
            "probe",
            "--server",
            &address,
            "--public",
            &public,
            "--machine",
            DEMO_MACHINE,
        ];
        args.extend_from_slice(extra);
        println!("{}", lapd_output(&lapd, &args)?);
        Ok(())
    };
    let result = step("the vendor's check: one request with lapd probe", || {
        println!("lapd is serving on {address}");
        probe(
            &format!("base product \"Lapwing Demo Studio\" with key {base_key}"),
            &["--sku", DEMO_BASE_SKU, "--key", &base_key],
        )
    })
    .and_then(|()| {
        step(
            "the client: lapctl installs and activates both demo products",
            || client_round_trip(&dir, &address, &base_key, &addon_key),
        )
    });
    if exit_after || result.is_err() {
        let _ = server.kill();
        let _ = server.wait();
        return result;
    }
    println!(
        "\nThe demo server keeps running (Ctrl-C stops it). Try, in another terminal:\n  \
         {} probe --server {address} --public {public} --sku {DEMO_BASE_SKU} --key {base_key}\n\
         Demo files (keys, catalog, seat database): {}",
        lapd.display(),
        dir.display()
    );
    server.wait().map_err(|e| fail(e.to_string()))?;
    Ok(())
}

/// Installs the demo products with `lapctl` as a product installer would, and prints the
/// status. The demo keeps its secrets in a file under target/demo (`--insecure-file-store`):
/// they are demo keys, and a headless machine has no keyring.
fn client_round_trip(dir: &Path, address: &str, base_key: &str, addon_key: &str) -> Result {
    let lapctl = target_dir().join("debug/lapctl");
    let public =
        std::fs::read_to_string(dir.join("keys/server.toml")).map_err(|e| fail(e.to_string()))?;
    let server_keys: String = public
        .lines()
        .filter(|l| l.starts_with("x25519") || l.starts_with("ed25519"))
        .collect::<Vec<_>>()
        .join("\n");
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).map_err(|e| fail(e.to_string()))?;
    let write = |file: &str, id: &str, name: &str, sku: &str, extra: &str| -> Result<String> {
        let path = manifests.join(file);
        let text = format!(
            "schema = 1\nid = \"{id}\"\nname = \"{name}\"\nvendor = \"Lapwing demo\"\nsku = \"{sku}\"\n{extra}\n[server]\n{server_keys}\naddress = \"{address}\"\n"
        );
        std::fs::write(&path, text).map_err(|e| fail(e.to_string()))?;
        Ok(path.to_string_lossy().into_owned())
    };
    let studio = write(
        "studio.toml",
        "demo-studio",
        "Lapwing Demo Studio",
        DEMO_BASE_SKU,
        "evaluation_days = 30",
    )?;
    let export = write(
        "export.toml",
        "demo-export",
        "Lapwing Demo Export",
        DEMO_ADDON_SKU,
        "addon_of = \"demo-studio\"",
    )?;
    let env = [
        ("LAPWING_HOME", dir.join("home")),
        ("LAPWING_PRODUCTS_DIR", dir.join("products")),
        ("LAPWING_POLICY", dir.join("no-policy.toml")),
        ("LAPWING_NO_MDNS", "1".into()),
    ];
    let lapctl_run = |args: &[&str]| -> Result {
        println!("$ lapctl {}", args.join(" "));
        let status = Command::new(&lapctl)
            .arg("--insecure-file-store")
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .status()
            .map_err(|e| fail(format!("lapctl: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(fail(format!("lapctl {} failed ({status})", args.join(" "))))
        }
    };
    lapctl_run(&["install", "--manifest", &studio, "--key", base_key])?;
    lapctl_run(&["install", "--manifest", &export, "--key", addon_key])?;
    lapctl_run(&["status"])
}
