//! `lapctl.exe` on Wine (a real implementation of the Windows API: registry, Credential
//! Manager, file system) against a Linux `lapd` on loopback.
//!
//! They need the Windows build and the private Wine prefix, so this test target is built only
//! with the `wine` feature: `cargo xtask windows` (part of `cargo xtask test`) builds both and
//! runs it (`cargo test -p lapwing-system-tests --features wine --test windows`). One prefix
//! serves every test: each uses its own product id, and only
//! [`a_product_in_program_data_is_activated_with_its_key_in_credential_manager`] uses the
//! default folders.

#![cfg(target_os = "linux")]

use std::process::Output;

use lap_proto::Uuid;
use lapwing_machine::SmbiosVersion;
use lapwing_machine::test_util::desktop;
use lapwing_system_tests::desk::manifest;
use lapwing_system_tests::wine::{Wine, files_containing, run_fed, windows_path};
use lapwing_system_tests::{BASE_SKU, Vendor};
use serde_json::Value;

const UUID: Uuid = Uuid::from_u128(0x4c4c_4544_0035_1052_8036_b4c0_4f31_3432);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

/// The `status --json` entry of product `id`, from a run of `command`.
fn status_of(command: &mut std::process::Command, id: &str) -> Value {
    let status = json(&command.output().expect("wine runs"));
    status
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("{id} in the status: {status}"))
}

/// A product id no earlier run left in the shared prefix's Credential Manager.
fn fresh_id(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("{prefix}-{nanos:x}")
}

/// The key with two neighbouring characters swapped (dashes do not count).
fn with_a_typo(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let positions: Vec<usize> = (0..chars.len()).filter(|&i| chars[i] != '-').collect();
    let pair = positions
        .windows(2)
        .find(|w| chars[w[0]] != chars[w[1]])
        .expect("a key has two different characters");
    chars.swap(pair[0], pair[1]);
    chars.into_iter().collect()
}

#[test]
fn a_product_in_program_data_is_activated_with_its_key_in_credential_manager() {
    let wine = Wine::from_env();
    let vendor = Vendor::new();
    let server = vendor.serve(&[]);
    let (key, key_bytes) = vendor.new_license(BASE_SKU, &[]);
    let id = fresh_id("wine-studio");

    // The manifest where an installer puts it: %ProgramData%\LAP\products.d.
    let products = wine.drive_c().join("ProgramData/LAP/products.d");
    std::fs::create_dir_all(&products).expect("products.d");
    let manifest_path = products.join(format!("{id}.toml"));
    std::fs::write(
        &manifest_path,
        manifest(&vendor, &id, BASE_SKU, &server.addr.to_string(), ""),
    )
    .expect("manifest written");
    let lapctl = |args: &[&str]| {
        let mut command = wine.command("lapctl.exe", args);
        command.env("LAPWING_NO_MDNS", "1");
        command
    };

    let entry = status_of(&mut lapctl(&["status", "--json"]), &id);
    assert_eq!(entry["state"], "unlicensed", "{entry}");
    assert_eq!(entry["has_key"], false, "{entry}");

    // A typo is refused with the right key offered, and nothing is stored.
    let typo = with_a_typo(&key);
    let out = run_fed(&mut lapctl(&["key", "set", &id]), &format!("{typo}\n"));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let refusal = text(&out.stderr);
    assert!(
        refusal.contains("check characters") && refusal.contains(&key),
        "{refusal}"
    );
    let shown = json(
        &lapctl(&["key", "show", &id, "--json"])
            .output()
            .expect("wine runs"),
    );
    assert!(shown["key"].is_null(), "nothing stored: {shown}");

    // The right key, then activation against lapd on loopback.
    let out = run_fed(&mut lapctl(&["key", "set", &id]), &format!("{key}\n"));
    assert!(out.status.success(), "key set: {}", text(&out.stderr));
    let out = lapctl(&["activate", &id, "--json"])
        .output()
        .expect("wine runs");
    assert!(out.status.success(), "activate: {}", text(&out.stderr));
    let entry = status_of(&mut lapctl(&["status", "--json"]), &id);
    assert_eq!(entry["state"], "activated", "{entry}");
    assert_eq!(entry["has_key"], true, "{entry}");
    assert!(entry["license_id"].is_string(), "{entry}");
    assert_eq!(
        entry["server"]["address"],
        server.addr.to_string(),
        "{entry}"
    );

    // Renewed: a second exchange for the activated product (what the scheduler sends at
    // RenewAfter) keeps its seat, the LicenseId unchanged.
    let license_id = entry["license_id"].clone();
    let out = lapctl(&["activate", &id, "--json"])
        .output()
        .expect("wine runs");
    assert!(out.status.success(), "renew: {}", text(&out.stderr));
    let renewed = status_of(&mut lapctl(&["status", "--json"]), &id);
    assert_eq!(renewed["state"], "activated", "{renewed}");
    assert_eq!(renewed["license_id"], license_id, "{renewed}");

    // The key comes back from Credential Manager.
    let shown = json(
        &lapctl(&["key", "show", &id, "--reveal", "--json"])
            .output()
            .expect("wine runs"),
    );
    assert_eq!(shown["key"], key.as_str(), "{shown}");

    // doctor runs and names the Windows store.
    let out = lapctl(&["doctor"]).output().expect("wine runs");
    let report = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "doctor: exit {:?}: {report}",
        out.status.code()
    );
    assert!(report.contains("Credential Manager"), "{report}");

    // The engine's files are in %LOCALAPPDATA%\lapwing.
    let data = wine.local_app_data().join("lapwing");
    assert!(data.join("state.json").exists(), "{}", data.display());
    assert!(
        data.join(format!("activations/{id}.json")).exists(),
        "the activation record in {}",
        data.display()
    );

    // Credential Manager holds the key (in the registry, encrypted), and no file holds it:
    // neither the prefix (registry flushed by waiting for the wineserver) nor the data folder.
    wine.wait();
    let user_reg = std::fs::read_to_string(wine.prefix.join("user.reg")).expect("user.reg");
    assert!(
        user_reg.contains(&format!("{id}:license-key.lapwing")),
        "a Credential Manager item for the key"
    );
    for form in [key.clone(), key.replace('-', "")] {
        let found = files_containing(&wine.prefix, form.as_bytes());
        assert!(found.is_empty(), "the key in files: {found:?}");
    }
    // Nor the decoded bytes as the registry file writes a binary value (hex:5a,3c,…; its
    // lines joined): Credential Manager encrypts what it keeps.
    let registry_hex = user_reg.replace("\\\n", "").replace(' ', "");
    let bytes_hex: Vec<String> = key_bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !registry_hex.contains(&bytes_hex.join(",")),
        "the key's bytes in the registry in clear"
    );

    // A products folder every user may write is refused, with who may write it. Wine shows
    // a Unix folder of mode 0777 as one whose access list lets Everyone write (it derives
    // the list from the mode); the reading and the rule are Windows' own code.
    {
        use std::os::unix::fs::PermissionsExt as _;
        let listed = |mode: u32| {
            std::fs::set_permissions(&products, std::fs::Permissions::from_mode(mode))
                .expect("chmod");
            json(&lapctl(&["products", "--json"]).output().expect("wine runs"))
        };
        let open = listed(0o777);
        let refusals = open["errors"].to_string();
        assert!(
            !open["products"].to_string().contains(&id)
                && refusals.contains("must be writable only by Administrators")
                && refusals.contains("it is writable by Everyone (S-1-1-0)"),
            "{open}"
        );
        let closed = listed(0o755);
        assert!(
            closed["products"].to_string().contains(&id)
                && closed["errors"].as_array().is_some_and(Vec::is_empty),
            "{closed}"
        );
    }

    // Cleaned up so the shared products folder holds only what a test is using.
    let out = lapctl(&["uninstall", &id]).output().expect("wine runs");
    let _ = std::fs::remove_file(&manifest_path);
    assert!(out.status.success(), "uninstall: {}", text(&out.stderr));
}

#[test]
fn machine_shows_machine_guid_and_smbios_from_a_dump_or_the_firmware() {
    let wine = Wine::from_env();
    let dir = tempfile::tempdir().expect("tempdir");
    let table = desktop(SmbiosVersion::new(3, 2), UUID);
    table.write_sysfs(&dir.path().join("dmi"), SmbiosVersion::new(3, 2));
    let raw_smbios_data = dir.path().join("rawsmbios.bin");
    let mut windows_form = table.windows_header(SmbiosVersion::new(3, 2));
    windows_form.extend(table.table());
    std::fs::write(&raw_smbios_data, windows_form).expect("dump written");
    let anchor = windows_path(&dir.path().join("no-anchor"));
    let machine = |args: &[&str], smbios_dir: Option<&str>| {
        let mut command = wine.command("lapctl.exe", args);
        command.env("LAPWING_ANCHOR_FILE", &anchor);
        if let Some(smbios_dir) = smbios_dir {
            command.env("LAPWING_SMBIOS_DIR", smbios_dir);
        }
        json(&command.output().expect("wine runs"))
    };
    let guid = wine.machine_guid();
    let os_id_raw = |report: &Value| {
        report["sources"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["source"] == "os-id"))
            .map(|s| s["raw"].clone())
    };

    // A table in LAPWING_SMBIOS_DIR, read as the live one.
    let dmi = windows_path(&dir.path().join("dmi"));
    let report = machine(&["machine", "--json", "--show-raw"], Some(&dmi));
    assert_eq!(report["smbios"]["state"], "available", "{report}");
    assert_eq!(
        report["smbios"]["system_uuid"],
        UUID.to_string(),
        "{report}"
    );
    assert_eq!(report["anchor"]["source"], "smbios-uuid", "{report}");
    // The OS id is the registry's MachineGuid.
    assert_eq!(
        os_id_raw(&report),
        Some(Value::from(guid.clone())),
        "{report}"
    );

    // A RawSMBIOSData dump (what GetSystemFirmwareTable returns) named on the command line.
    let dump = windows_path(&raw_smbios_data);
    let report = machine(&["machine", "--json", "--smbios", &dump], None);
    assert_eq!(report["smbios"]["origin"], "file", "{report}");
    assert_eq!(
        report["smbios"]["system_uuid"],
        UUID.to_string(),
        "{report}"
    );

    // The firmware's table through GetSystemFirmwareTable. Wine 8 builds it from the host's
    // /sys/class/dmi/id, taking /etc/machine-id for the System UUID where product_uuid
    // cannot be read (as in a container): either way the host's id comes through.
    let report = machine(&["machine", "--json", "--show-raw"], None);
    let host_uuid = ["/sys/class/dmi/id/product_uuid", "/etc/machine-id"]
        .into_iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|u| u.trim().replace('-', "").to_lowercase())
        .expect("the host has a machine id");
    assert_eq!(report["smbios"]["state"], "available", "{report}");
    assert_eq!(report["smbios"]["origin"], "live", "{report}");
    let firmware_uuid = report["smbios"]["system_uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("a System UUID: {report}"))
        .replace('-', "");
    assert_eq!(firmware_uuid, host_uuid, "{report}");
    assert_eq!(os_id_raw(&report), Some(Value::from(guid)), "{report}");
}

#[test]
fn the_installer_runs_silently_places_the_tray_app_and_lapctl_and_uninstalls_cleanly() {
    const UNINSTALL_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall\Lapwing";
    const ENVIRONMENT_KEY: &str =
        r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment";
    const RUN_KEY: &str = r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run";
    let wine = Wine::from_env();
    let installer = std::env::var_os("LAPWING_WINDOWS_INSTALLER")
        .map(std::path::PathBuf::from)
        .expect("LAPWING_WINDOWS_INSTALLER: run through cargo xtask windows");
    let install_dir = wine.drive_c().join("Program Files/Lapwing");
    let start_menu = wine
        .drive_c()
        .join("ProgramData/Microsoft/Windows/Start Menu/Programs/Lapwing");
    let products = wine.drive_c().join("ProgramData/LAP/products.d");

    // Silent, as an administrator deploys it.
    let out = wine
        .program(installer.as_os_str(), &["/S"])
        .output()
        .expect("wine runs the installer");
    assert!(out.status.success(), "installer: {}", text(&out.stderr));
    wine.wait();
    for file in [
        "lapwing.exe",
        "WebView2Loader.dll",
        "lapctl.exe",
        "uninstall.exe",
    ] {
        assert!(install_dir.join(file).is_file(), "{file} installed");
    }
    for link in ["Lapwing.lnk", "Uninstall Lapwing.lnk"] {
        assert!(start_menu.join(link).is_file(), "{link} in the Start menu");
    }
    let login = wine
        .reg_query(RUN_KEY, Some("Lapwing"))
        .expect("the machine-wide login entry");
    assert!(
        login.contains(r#""C:\Program Files\Lapwing\lapwing.exe" --login-default"#),
        "{login}"
    );
    assert!(products.is_dir(), "the products folder");
    let entry = wine
        .reg_query(UNINSTALL_KEY, None)
        .expect("an Add/Remove Programs entry");
    assert!(
        entry.contains(r#""C:\Program Files\Lapwing\uninstall.exe" /S"#)
            && entry.contains(env!("CARGO_PKG_VERSION")),
        "{entry}"
    );
    let path = wine
        .reg_query(ENVIRONMENT_KEY, Some("Path"))
        .expect("the system Path");
    assert!(path.contains(r"C:\Program Files\Lapwing"), "{path}");

    // The installed lapctl runs, from where the installer put it.
    let out = wine
        .program(
            std::ffi::OsStr::new(r"C:\Program Files\Lapwing\lapctl.exe"),
            &["--version"],
        )
        .output()
        .expect("wine runs lapctl");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("lapctl "),
        "{}",
        text(&out.stdout)
    );

    // The installed tray app starts (every DLL it imports is found, WebView2Loader.dll
    // among them) and, for a user who has chosen whether it starts at login, the
    // machine-wide entry steps aside at once. (Its windows need WebView2, which Wine lacks.)
    let marker = wine.app_data().join("com.lapwing.tray/autostart-chosen");
    std::fs::create_dir_all(marker.parent().expect("parent")).expect("config folder");
    std::fs::write(&marker, b"").expect("marker");
    let out = wine
        .program(
            std::ffi::OsStr::new(r"C:\Program Files\Lapwing\lapwing.exe"),
            &["--login-default"],
        )
        .output()
        .expect("wine runs lapwing");
    let _ = std::fs::remove_file(&marker);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "lapwing.exe --login-default: exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );

    // Uninstalled silently: nothing left but the products folder (other vendors' manifests).
    let out = wine
        .program(
            std::ffi::OsStr::new(r"C:\Program Files\Lapwing\uninstall.exe"),
            &["/S"],
        )
        .output()
        .expect("wine runs the uninstaller");
    assert!(out.status.success(), "uninstaller: {}", text(&out.stderr));
    wine.wait();
    assert!(!install_dir.exists(), "the program folder removed");
    assert!(!start_menu.exists(), "the Start menu folder removed");
    assert_eq!(wine.reg_query(UNINSTALL_KEY, None), None, "entry removed");
    assert_eq!(
        wine.reg_query(RUN_KEY, Some("Lapwing")),
        None,
        "login entry removed"
    );
    let path = wine
        .reg_query(ENVIRONMENT_KEY, Some("Path"))
        .expect("the system Path");
    assert!(!path.contains("Lapwing"), "{path}");
    assert!(products.is_dir(), "the products folder stays");
}
