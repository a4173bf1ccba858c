//! The command line's contract: usage errors exit 2, runtime errors exit 1 with a message,
//! and `check-catalog` validates what vendors write.

use std::process::Command;

fn lapd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lapd"))
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_exit_1() {
    let out = lapd()
        .arg("serve")
        .arg("--listen")
        .arg("not-an-address")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = lapd()
        .args(["check-catalog", "/nonexistent/catalog.toml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("lapd: error: cannot read catalog /nonexistent/catalog.toml"),
        "{stderr}"
    );
}

#[test]
fn serve_names_what_is_missing() {
    let out = lapd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("serve needs --keys"));
}

#[test]
fn check_catalog_counts_what_it_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[[sku]]\nid = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nname = \"A\"\n",
    )
    .expect("write");
    let out = lapd()
        .arg("check-catalog")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 SKUs, 0 licenses: OK"));
}

/// A group the test may give its files other than `not`: any as root, else one of its
/// supplementary groups, if it has one (the mode is checked either way).
#[cfg(unix)]
fn another_group(not: u32) -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Vec<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    if field("Uid:").get(1) == Some(&0) {
        return Some(if not == 4242 { 4243 } else { 4242 });
    }
    field("Groups:").into_iter().find(|g| *g != not)
}

/// The installed catalog is `root:lapd 0640`: `license new` run by root must leave it so, or
/// the service can no longer read it (or everyone can read its keys).
#[cfg(unix)]
#[test]
fn license_new_keeps_the_catalogs_mode_and_group() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("catalog.toml");
    std::fs::write(
        &path,
        "[[sku]]\nid = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nname = \"A\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    if let Some(gid) = another_group(std::fs::metadata(&path).expect("meta").gid()) {
        std::os::unix::fs::chown(&path, None, Some(gid)).expect("chgrp");
    }
    let group = std::fs::metadata(&path).expect("meta").gid();
    let out = lapd()
        .args([
            "license",
            "new",
            "--sku",
            "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11",
        ])
        .arg("--catalog")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&path).expect("meta");
    assert_eq!(meta.mode() & 0o7777, 0o640);
    assert_eq!(meta.gid(), group);
    assert!(
        std::fs::read_to_string(&path)
            .expect("read")
            .contains("[[license]]")
    );
}

#[test]
fn a_key_on_the_command_line_is_refused_and_not_repeated() {
    for command in ["probe", "bench"] {
        let out = lapd()
            .args([
                command,
                "--server",
                "127.0.0.1:9",
                "--public",
                "/nonexistent/server.toml",
                "--sku",
                "6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11",
                "--key",
                "SECRET-KEY-TEXT",
            ])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--key-file"), "{stderr}");
        assert!(!stderr.contains("SECRET-KEY-TEXT"), "{stderr}");
    }
}

/// `lapd db import` copies a SQLite file's seats into PostgreSQL once (a second run adds
/// nothing), `lapd db migrate` reports the version and the seats, and neither prints the
/// database's password.
#[test]
fn db_import_copies_a_sqlite_file_into_postgres_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = dir.path().join("seats.sqlite");
    let sqlite = sqlite.to_str().expect("utf-8");
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, lap_proto::test_util::key(1).to_display()).expect("key");
    let run = |args: &[&str]| {
        let out = lapd().args(args).output().expect("runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let (code, text) = run(&[
        "db",
        "fill",
        "--db",
        sqlite,
        "--seats",
        "25",
        "--key-file",
        key_file.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, Some(0), "{text}");

    // Trust authentication ignores the password: here only to be kept out of the output.
    let url = lapd::test_util::TempPostgres::shared().database().replacen(
        "postgresql://lapd@",
        "postgresql://lapd:sekrit@",
        1,
    );
    let (code, text) = run(&["db", "import", "--from", sqlite, "--to", &url]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("imported 25 seats") && text.contains("25 added, 0 already there"),
        "{text}"
    );
    let (code, text) = run(&["db", "import", "--from", sqlite, "--to", &url]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("0 added, 25 already there"), "{text}");
    let (code, text) = run(&["db", "migrate", "--db", &url]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("schema version {}", lapd::store::SCHEMA_VERSION))
            && text.contains("25 seats"),
        "{text}"
    );
    assert!(!text.contains("sekrit"));

    let (code, text) = run(&[
        "db",
        "import",
        "--from",
        "/nonexistent.sqlite",
        "--to",
        &url,
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no such file"), "{text}");
    let (code, text) = run(&["db", "import", "--from", sqlite, "--to", sqlite]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the same database"), "{text}");
    let broken = url.replace("/lapd_", "/missing_");
    let (code, text) = run(&["db", "migrate", "--db", &broken]);
    assert_eq!(code, Some(1), "{text}");
    assert!(!text.contains("sekrit"), "{text}");
}

#[test]
fn dns_prints_srv_and_dns_sd_records_for_a_real_address_only() {
    let out = lapd()
        .args([
            "dns",
            "--domain",
            "corp.example",
            "--listen",
            "10.0.0.5:4711",
        ])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("_lap._udp.corp.example. 3600 IN SRV 10 10 4711 lap.corp.example.")
            && text.contains("srv-host=_lap._udp.corp.example,lap.corp.example,4711,10,10"),
        "{text}"
    );
    let out = lapd()
        .args([
            "dns",
            "--domain",
            "corp.example",
            "--listen",
            "0.0.0.0:4711",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a wildcard"));
}

#[test]
fn pools_commands_name_what_is_wrong_and_never_the_pool_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, "listen = \"127.0.0.1:0\"\n").expect("write");
    let out = lapd()
        .args(["pools", "status", "--config"])
        .arg(&plain)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no [upstream] section"));

    // An intermediate whose pool key file holds a mistyped key: named, not printed.
    let keys = dir.path().join("keys");
    assert!(
        lapd()
            .args(["keygen", "--out"])
            .arg(&keys)
            .output()
            .expect("runs")
            .status
            .success()
    );
    std::fs::copy(keys.join("server.toml"), dir.path().join("vendor.toml")).expect("copy");
    std::fs::write(
        dir.path().join("pool.key"),
        "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("catalog.toml"),
        "[[sku]]\nid = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\nname = \"A\"\n",
    )
    .expect("write");
    let config = dir.path().join("lapd.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nkeys = \"keys\"\ncatalog = \"catalog.toml\"\ndb = \"s.sqlite\"\n\
         [upstream]\naddress = \"127.0.0.1:9\"\nvendor_public = \"vendor.toml\"\n\
         [[upstream.pool]]\nsku = \"6b0c4c1e-8f5d-4f51-9d3a-2f7c1a0e9b11\"\n\
         license_key_file = \"pool.key\"\nseats = 5\n",
    )
    .expect("write");
    let out = lapd()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("license_key_file") && stderr.contains("pool.key"),
        "{stderr}"
    );
    assert!(!stderr.contains("ABCD-EFGH"), "{stderr}");

    // The vendor's listing of an empty database.
    let db = dir.path().join("vendor.sqlite");
    assert!(
        lapd()
            .args(["db", "migrate", "--db"])
            .arg(&db)
            .output()
            .expect("runs")
            .status
            .success()
    );
    let out = lapd()
        .args(["pools", "list", "--db"])
        .arg(&db)
        .output()
        .expect("runs");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("0 intermediates\n"));
}
