//! lapctl's manners: exit codes, one error line, JSON that parses. (This test also makes
//! `cargo test` build the binary that the black-box system tests in `tests/` run.)

use std::process::{Command, Output};

fn lapctl(args: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lapctl"));
    for name in ["LAPWING_TCTI", "TPM2TOOLS_TCTI", "TCTI"] {
        cmd.env_remove(name);
    }
    cmd.args(args)
        .env("LAPWING_SMBIOS_DIR", dir.path().join("no-dmi"))
        .env("LAPWING_TPM_DEVICE", dir.path().join("no-tpm"))
        .env("LAPWING_ANCHOR_FILE", dir.path().join("anchor"))
        .output()
        .expect("lapctl runs")
}

#[test]
fn exit_codes_follow_the_convention() {
    assert_eq!(lapctl(&["--help"]).status.code(), Some(0));
    assert_eq!(lapctl(&["machine", "--help"]).status.code(), Some(0));
    assert_eq!(
        lapctl(&[]).status.code(),
        Some(2),
        "no subcommand is a usage error"
    );
    assert_eq!(lapctl(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(lapctl(&["machine", "--pin", "bios"]).status.code(), Some(2));
    assert_eq!(
        lapctl(&["machine", "--runs", "3"]).status.code(),
        Some(2),
        "--runs needs --bench"
    );

    let out = lapctl(&["machine", "--smbios", "/nonexistent/dump.bin"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("lapctl: error: /nonexistent/dump.bin: "),
        "{stderr}"
    );
}

#[test]
fn machine_json_and_anchor_status_parse() {
    let out = lapctl(&["machine", "--json", "--pin", "smbios-uuid"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for key in [
        "anchor",
        "sources",
        "tpm",
        "smbios",
        "cpu",
        "virtual_machine",
        "warnings",
    ] {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    assert_eq!(report["smbios"]["state"], "not-available");
    assert_eq!(
        report["anchor"]["pin"], "fell-back",
        "the pinned UUID is not there"
    );

    let out = lapctl(&["machine", "anchor", "--json"]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(status["state"], "missing");
}

#[test]
fn bench_reports_cold_and_warm_figures() {
    let out = lapctl(&["machine", "--bench", "--runs", "3", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["cold_identity"]["runs"], 3);
    assert_eq!(report["warm_identity"]["runs"], 30);
    assert!(
        report["cold_identity"]["median_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.0)
    );
    assert_eq!(report["budget_ms"], 50.0);
    // The budget, with room for a debug build on a busy machine: the median, not
    // the worst run, is held to it.
    assert!(
        report["cold_identity"]["median_ms"]
            .as_f64()
            .is_some_and(|ms| ms <= 50.0),
        "{report}"
    );
}
