//! `lapctl machine` as a user meets it: generated SMBIOS dumps, a machine without SMBIOS, a
//! real software TPM, and the root-written anchor file read by an unprivileged user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use lap_proto::Uuid;
use lapwing_machine::SmbiosVersion;
use lapwing_machine::test_util::{SmbiosWriter, SwtpmState, desktop, free_port_pair};
use lapwing_system_tests::bin;
use serde_json::Value;

const UUID: Uuid = Uuid::from_u128(0x4c4c_4544_0035_1052_8036_b4c0_4f31_3432);
/// `SHA-256("lapwing-anchor-v1" ‖ "smbios-uuid" ‖ UUID bytes)`, from Python's hashlib.
const UUID_DIGEST: &str = "35316580d1ef42afb9044583af8b73c950dd716485ed8855fb5080ee48dd01e0";
const V3_2: SmbiosVersion = SmbiosVersion::new(3, 2);
const MACHINE_ID: &str = "3d1219c7c4c5404aaa1f6d2a48adfda4";

/// Variables that would point lapctl at this machine's real hardware or files.
const ENV: [&str; 7] = [
    "LAPWING_TCTI",
    "TPM2TOOLS_TCTI",
    "TCTI",
    "LAPWING_SMBIOS_DIR",
    "LAPWING_TPM_DEVICE",
    "LAPWING_MACHINE_ID_FILE",
    "LAPWING_ANCHOR_FILE",
];

/// A made-up machine in a directory every user can traverse: an SMBIOS sysfs pair readable by
/// root only (as on Linux), a machine id, no TPM unless one is started, an anchor file path.
struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    fn new(smbios: Option<&SmbiosWriter>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        chmod(dir.path(), 0o755);
        let dmi = dir.path().join("dmi");
        std::fs::create_dir(&dmi).expect("dmi dir");
        chmod(&dmi, 0o755);
        if let Some(writer) = smbios {
            writer.write_sysfs(&dmi, V3_2);
            for name in ["smbios_entry_point", "DMI"] {
                chmod(&dmi.join(name), 0o400);
            }
        }
        std::fs::write(dir.path().join("machine-id"), format!("{MACHINE_ID}\n")).expect("id");
        chmod(&dir.path().join("machine-id"), 0o644);
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `lapctl` (or the given program) with this machine's environment.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for name in ENV {
            cmd.env_remove(name);
        }
        cmd.env("LAPWING_SMBIOS_DIR", self.path("dmi"))
            .env("LAPWING_TPM_DEVICE", self.path("tpmrm0"))
            .env("LAPWING_MACHINE_ID_FILE", self.path("machine-id"))
            .env("LAPWING_ANCHOR_FILE", self.path("anchor"));
        cmd
    }

    fn lapctl(&self) -> Command {
        self.command(&bin("lapctl"))
    }

    /// The same, run as `nobody` with no groups (util-linux `setpriv`), with a copy of lapctl
    /// that `nobody` can reach (the build directory may sit under root's home).
    fn lapctl_as_nobody(&self) -> Command {
        let copy = self.path("lapctl");
        if !copy.exists() {
            std::fs::copy(bin("lapctl"), &copy).expect("lapctl copied");
            chmod(&copy, 0o755);
        }
        let mut cmd = self.command(Path::new("setpriv"));
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(copy);
        cmd
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the program runs")
}

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn source_verdict<'a>(report: &'a Value, source: &str) -> &'a str {
    report["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["source"] == source)
        .and_then(|s| s["verdict"].as_str())
        .expect("source listed")
}

#[test]
fn machine_json_reads_every_dump_form() {
    let machine = Machine::new(None);
    let w = desktop(V3_2, UUID);
    let forms = [
        ("raw.bin", w.table(), Value::Null),
        ("windows.bin", w.windows_header(V3_2), Value::from("3.2")),
        (
            "sm.bin",
            w.dmidecode_sm(SmbiosVersion::new(2, 8)),
            Value::from("2.8"),
        ),
        ("sm3.bin", w.dmidecode_sm3(V3_2), Value::from("3.2")),
    ];
    for (name, bytes, version) in forms {
        let file = machine.path(name);
        std::fs::write(&file, bytes).expect("dump written");
        let report = json_of(&run(machine
            .lapctl()
            .args(["machine", "--json", "--smbios"])
            .arg(&file)));
        let smbios = &report["smbios"];
        assert_eq!(smbios["state"], "available", "{name}");
        assert_eq!(smbios["origin"], "file");
        assert_eq!(smbios["version"], version, "{name}");
        assert_eq!(smbios["system_uuid"], UUID.to_string(), "{name}");
        assert_eq!(smbios["system_uuid_plausible"], true);
        assert_eq!(
            smbios["board"]["manufacturer"],
            "Micro-Star International Co., Ltd."
        );
        assert_eq!(smbios["board"]["product"], "B550-A PRO (MS-7C56)");
        assert_eq!(smbios["board"]["serial"], "07C5611_M71E123456");
        assert_eq!(smbios["sockets"], 1);
        assert_eq!(smbios["virtual_machine"], false);
        assert!(smbios["warnings"].is_array());
        assert_eq!(report["anchor"]["source"], "smbios-uuid");
        assert_eq!(report["anchor"]["digest"], UUID_DIGEST);
        assert_eq!(report["anchor"]["path"], "hardware");
        assert_eq!(report["cpu"]["sockets"], 1);
        assert!(report["cpu"]["cores"].as_u64().is_some_and(|n| n >= 1));
        // Raw identifiers of this machine stay out without --show-raw.
        let text = String::from_utf8_lossy(
            &run(machine
                .lapctl()
                .args(["machine", "--json", "--smbios"])
                .arg(&file))
            .stdout,
        )
        .into_owned();
        assert!(!text.contains(MACHINE_ID), "the OS id leaked: {text}");
    }
    let shown = json_of(&run(machine
        .lapctl()
        .args(["machine", "--json", "--show-raw", "--smbios"])
        .arg(machine.path("sm3.bin"))));
    let raw: Vec<&str> = shown["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["raw"].as_str())
        .collect();
    assert!(raw.contains(&MACHINE_ID), "{raw:?}");
    assert!(raw.contains(&UUID.to_string().as_str()), "{raw:?}");
}

#[test]
fn machine_json_flags_vms_and_reports_malformed_tables() {
    let machine = Machine::new(None);
    let mut vm = SmbiosWriter::new();
    vm.bios("SeaBIOS", "1.16.2-debian-1.16.2-1")
        .system("QEMU", "Standard PC (Q35 + ICH9, 2009)", Uuid::nil(), V3_2)
        .processor("CPU 0", true)
        .end();
    let file = machine.path("vm.bin");
    std::fs::write(&file, vm.dmidecode_sm3(V3_2)).expect("written");
    let report = json_of(&run(machine
        .lapctl()
        .args(["machine", "--json", "--smbios"])
        .arg(&file)));
    assert_eq!(report["smbios"]["virtual_machine"], true);
    assert_eq!(report["virtual_machine"], true);
    assert_eq!(report["smbios"]["system_uuid"], Uuid::nil().to_string());
    assert_eq!(report["smbios"]["system_uuid_plausible"], false);
    assert_eq!(source_verdict(&report, "smbios-uuid"), "implausible");
    assert_eq!(report["smbios"]["board"]["manufacturer"], Value::Null);
    assert_eq!(report["anchor"]["source"], "os-id");

    // Cut off the end of the table: read what can be read, say what is wrong.
    let table = desktop(V3_2, UUID).table();
    let mut cut = SmbiosWriter::new();
    cut.bytes(&table[..table.len() - 70]);
    std::fs::write(&file, cut.windows_header(V3_2)).expect("written");
    let report = json_of(&run(machine
        .lapctl()
        .args(["machine", "--json", "--smbios"])
        .arg(&file)));
    assert_eq!(report["smbios"]["system_uuid"], UUID.to_string());
    let warnings = report["smbios"]["warnings"].as_array().expect("warnings");
    assert!(!warnings.is_empty());
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .is_some_and(|w| w.contains("truncated") || w.contains("type 127"))),
        "{warnings:?}"
    );
}

#[test]
fn a_file_that_is_not_smbios_fails_with_one_clear_line() {
    let machine = Machine::new(None);
    let file = machine.path("notes.txt");
    std::fs::write(&file, "shopping list: eggs, milk, a new motherboard\n").expect("written");
    let out = run(machine
        .lapctl()
        .args(["machine", "--json", "--smbios"])
        .arg(&file));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("lapctl: error: "), "{stderr}");
    assert!(stderr.contains("notes.txt: not an SMBIOS dump"), "{stderr}");

    let out = run(machine
        .lapctl()
        .args(["machine", "--smbios"])
        .arg(machine.path("missing.bin")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such file"));

    let out = run(machine.lapctl().args(["machine", "--smbios"]));
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let out = run(machine.lapctl().args(["machine", "--frobnicate"]));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn no_smbios_reads_not_available_with_the_os_id_as_last_resort() {
    let machine = Machine::new(None);
    let report = json_of(&run(machine.lapctl().args(["machine", "--json"])));
    assert_eq!(report["smbios"]["state"], "not-available");
    assert_eq!(report["anchor"]["source"], "os-id");
    assert_eq!(report["anchor"]["weakest"], true);
    assert_eq!(report["tpm"]["state"], "absent");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("SMBIOS is not available"), "{warnings}");
    assert!(warnings.contains("weakest"), "{warnings}");
    // The human table says it in words.
    let out = run(machine.lapctl().arg("machine"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SMBIOS         not available"), "{text}");
    assert!(text.contains("os-id (weakest source)"), "{text}");
}

/// `nobody` really cannot read what root can: otherwise the tests below prove nothing.
fn assert_unreadable_by_nobody(machine: &Machine, path: &Path) {
    let out = run(machine
        .command(Path::new("setpriv"))
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--",
            "cat",
        ])
        .arg(path));
    assert!(
        !out.status.success(),
        "nobody can read {}: the test needs it not to",
        path.display()
    );
}

#[test]
fn an_unprivileged_user_reads_the_root_written_anchor_file() {
    let machine = Machine::new(Some(&desktop(V3_2, UUID)));
    assert_unreadable_by_nobody(&machine, &machine.path("dmi/DMI"));

    // As root: the hardware is readable, the anchor file gets the digest (never the UUID).
    let out = run(machine
        .lapctl()
        .args(["machine", "anchor", "--write", "--json"]));
    let written = json_of(&out);
    assert_eq!(written["source"], "smbios-uuid");
    assert_eq!(written["digest"], UUID_DIGEST);
    let file = std::fs::read_to_string(machine.path("anchor")).expect("anchor file");
    assert!(
        !file.contains(&UUID.to_string()) && !file.contains("07C5611"),
        "{file}"
    );
    let mode = std::fs::metadata(machine.path("anchor"))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);

    // As nobody: the table is unreadable, the anchor file supplies the same digest.
    let report = json_of(&run(machine.lapctl_as_nobody().args(["machine", "--json"])));
    assert_eq!(report["smbios"]["state"], "permission-denied");
    assert_eq!(source_verdict(&report, "smbios-uuid"), "unreadable");
    assert_eq!(report["anchor"]["path"], "anchor-file");
    assert_eq!(report["anchor"]["source"], "smbios-uuid");
    assert_eq!(report["anchor"]["digest"], UUID_DIGEST);
    let human = run(machine.lapctl_as_nobody().arg("machine"));
    assert!(String::from_utf8_lossy(&human.stdout).contains("from the anchor file"));

    // Without the file, nobody gets the weaker OS id and is told why.
    std::fs::remove_file(machine.path("anchor")).expect("removed");
    let report = json_of(&run(machine.lapctl_as_nobody().args(["machine", "--json"])));
    assert_eq!(report["anchor"]["path"], "hardware");
    assert_eq!(report["anchor"]["source"], "os-id");
    assert!(report["warnings"].to_string().contains("no anchor file"));

    // A corrupt file is a warning, not a crash.
    std::fs::write(machine.path("anchor"), "{\"schema\":1,").expect("written");
    chmod(&machine.path("anchor"), 0o644);
    let report = json_of(&run(machine.lapctl_as_nobody().args(["machine", "--json"])));
    assert_eq!(report["anchor_file"]["state"], "corrupt");
    assert!(report["warnings"].to_string().contains("corrupt"));
}

#[test]
fn a_tpm_reached_through_the_environment_anchors_and_pins() {
    let state = SwtpmState::manufacture();
    let swtpm = state.start();
    let machine = Machine::new(Some(&desktop(V3_2, UUID)));

    // The machine was first anchored on its UUID (no TPM yet).
    json_of(&run(machine
        .lapctl()
        .args(["machine", "anchor", "--write", "--json"])));
    // The TPM is switched on: the anchor file keeps the machine on its UUID.
    let report = json_of(&run(machine
        .lapctl()
        .env("LAPWING_TCTI", swtpm.tcti())
        .args(["machine", "--json"])));
    assert_eq!(report["tpm"]["state"], "present");
    assert_eq!(report["tpm"]["origin"], "certificate");
    assert_eq!(source_verdict(&report, "tpm-ek"), "plausible");
    assert_eq!(report["anchor"]["source"], "smbios-uuid");
    assert_eq!(report["anchor"]["pin"], "kept");
    assert_eq!(report["anchor"]["digest"], UUID_DIGEST);

    // A fresh machine with the TPM anchors on it; TPM2TOOLS_TCTI is honoured as well.
    std::fs::remove_file(machine.path("anchor")).expect("removed");
    let report = json_of(&run(machine
        .lapctl()
        .env("TPM2TOOLS_TCTI", swtpm.tcti())
        .args(["machine", "--json"])));
    assert_eq!(report["anchor"]["source"], "tpm-ek");
    let tpm_digest = report["anchor"]["digest"].clone();
    let written = json_of(&run(machine
        .lapctl()
        .env("LAPWING_TCTI", swtpm.tcti())
        .args(["machine", "anchor", "--write", "--json"])));
    assert_eq!(written["digest"], tpm_digest);

    // nobody cannot open the TPM device (here a root-only stand-in): the file answers.
    std::fs::write(machine.path("tpmrm0"), b"").expect("device stand-in");
    chmod(&machine.path("tpmrm0"), 0o600);
    let report = json_of(&run(machine.lapctl_as_nobody().args(["machine", "--json"])));
    assert_eq!(report["tpm"]["state"], "permission-denied");
    assert_eq!(report["anchor"]["path"], "anchor-file");
    assert_eq!(report["anchor"]["digest"], tpm_digest);
}

#[test]
fn a_dead_tcti_is_a_state_within_the_time_limit() {
    let machine = Machine::new(Some(&desktop(V3_2, UUID)));
    let port = free_port_pair();
    let start = Instant::now();
    let report = json_of(&run(machine
        .lapctl()
        .env("LAPWING_TCTI", format!("swtpm:host=127.0.0.1,port={port}"))
        .env("TSS2_LOG", "all+none")
        .args(["machine", "--json", "--tpm-timeout-ms", "1500"])));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(
        report["tpm"]["state"] == "failed" || report["tpm"]["state"] == "absent",
        "{}",
        report["tpm"]
    );
    // The TPM might exist, so the UUID is used with a warning rather than silently.
    assert_eq!(report["anchor"]["source"], "smbios-uuid");
    assert!(report["warnings"].to_string().contains("could not be read"));
}

#[test]
fn the_boot_unit_passes_systemd_analyze_verify() {
    let unit =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../installers/systemd/lapwing-anchor.service");
    let text = std::fs::read_to_string(&unit).expect("the unit file");
    assert!(text.contains("ExecStart=/usr/bin/lapctl machine anchor --write"));
    for hardening in [
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/lapwing",
        "NoNewPrivileges=yes",
        "PrivateNetwork=yes",
        "Type=oneshot",
    ] {
        assert!(text.contains(hardening), "{hardening} missing");
    }
    // Verify a copy whose ExecStart names the binary just built (verify checks it exists).
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("lapwing-anchor.service");
    let lapctl = bin("lapctl");
    std::fs::write(
        &copy,
        text.replace("/usr/bin/lapctl", lapctl.to_str().expect("utf-8 path")),
    )
    .expect("copy");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze is installed (Debian package systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
