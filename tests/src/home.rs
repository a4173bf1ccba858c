//! A client home for `lapctl` without a session bus: secrets in the file store
//! (`--insecure-file-store`), so that many homes can run side by side cheaply. The fault
//! tests that need the real keyring use [`crate::desk::Desk`] instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::desk::manifest;
use crate::{BASE_SKU, Vendor, bin};

#[derive(Debug)]
pub struct Home {
    pub dir: tempfile::TempDir,
    /// Where the state, records and secrets live (`LAPWING_HOME`): a subdirectory by
    /// default, or a mount point chosen by the test (a small tmpfs, a read-only mount).
    pub data: PathBuf,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["home", "products", "smbios"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(
            dir.path().join("machine-id"),
            "5f3b2c9d8e7a41b6a0c1d2e3f4a5b6c7\n",
        )
        .expect("machine id");
        let data = dir.path().join("home");
        Self { dir, data }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `lapctl --insecure-file-store args` in this home.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("lapctl"));
        command
            .arg("--insecure-file-store")
            .args(args)
            .env("LAPWING_HOME", &self.data)
            .env("LAPWING_PRODUCTS_DIR", self.path("products"))
            .env("LAPWING_POLICY", self.path("policy.toml"))
            .env("LAPWING_NO_MDNS", "1")
            .env("LAPWING_SMBIOS_DIR", self.path("smbios"))
            .env("LAPWING_MACHINE_ID_FILE", self.path("machine-id"))
            .env("LAPWING_TPM_DEVICE", self.path("no-tpm"))
            .env("LAPWING_ANCHOR_FILE", self.path("no-anchor"))
            .env_remove("LAPWING_CLOCK_OFFSET")
            .env_remove("LAPWING_TCTI")
            .env_remove("TPM2TOOLS_TCTI")
            .env_remove("TCTI")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("lapctl runs")
    }

    /// `lapctl args` with `input` piped to its stdin (how a key is given).
    pub fn run_fed(&self, args: &[&str], input: &str) -> Output {
        crate::output_fed(&mut self.command(args), input)
    }

    /// `lapctl key set ID` with the key piped in, as a script gives it.
    pub fn set_key(&self, id: &str, key: &str) -> Output {
        self.run_fed(&["key", "set", id], &format!("{key}\n"))
    }

    /// Installs "acme-studio" (base SKU) pointing at `address`.
    pub fn place_studio(&self, vendor: &Vendor, address: &str) {
        let text = manifest(vendor, "acme-studio", BASE_SKU, address, "");
        std::fs::write(self.path("products/acme-studio.toml"), text).expect("manifest written");
    }

    /// The product's entry in `lapctl status --json`.
    pub fn status(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]);
        assert!(
            out.status.success(),
            "status: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        all[0].clone()
    }

    pub fn record_path(&self) -> PathBuf {
        self.data.join("activations/acme-studio.json")
    }

    pub fn state_path(&self) -> PathBuf {
        self.data.join("state.json")
    }
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

/// What must survive a fault: the grant as the state file holds it and the record's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub license_id: serde_json::Value,
    pub not_after: serde_json::Value,
    pub record: Vec<u8>,
}

impl Kept {
    /// Reads the grant straight from the files (no `lapctl`: it must hold even when
    /// `lapctl` cannot run, e.g. on a read-only or full disk).
    pub fn read(data: &Path) -> Self {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(data.join("state.json")).expect("state file"),
        )
        .expect("state parses");
        let grant = &state["products"]["acme-studio"]["grant"];
        Self {
            license_id: grant["license_id"].clone(),
            not_after: grant["not_after"].clone(),
            record: std::fs::read(data.join("activations/acme-studio.json")).expect("record"),
        }
    }
}
