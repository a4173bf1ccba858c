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
