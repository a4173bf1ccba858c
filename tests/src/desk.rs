//! One desktop user for the black-box tests of `lapctl` and the tray app: a private session
//! bus with a real gnome-keyring, a home for Lapwing, a products directory, a policy path, and
//! a machine with a fixed OS id and no SMBIOS or TPM.

use std::path::PathBuf;
use std::process::{Command, Output};

use lapwing_secrets::test_util::{PrivateSession, Setup};

use crate::{BASE_SKU, Vendor, bin};

/// One desktop user (see the module's documentation).
#[derive(Debug)]
pub struct Desk {
    pub session: PrivateSession,
    pub dir: tempfile::TempDir,
}

impl Desk {
    pub fn new(setup: Setup) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for sub in ["home", "products", "smbios"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(
            dir.path().join("machine-id"),
            "5f3b2c9d8e7a41b6a0c1d2e3f4a5b6c7\n",
        )
        .expect("machine id");
        Self {
            session: PrivateSession::start(setup),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `lapctl args` in this desk's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin("lapctl"));
        command.args(args);
        self.apply(&mut command);
        command
    }

    /// Points any program (lapctl, the tray app, tauri-driver) at this desk: its home,
    /// products, policy, machine and private session bus.
    pub fn apply<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command
            .env("LAPWING_HOME", self.path("home"))
            .env("LAPWING_PRODUCTS_DIR", self.path("products"))
            .env("LAPWING_POLICY", self.path("policy.toml"))
            .env("LAPWING_NO_MDNS", "1")
            .env("LAPWING_SMBIOS_DIR", self.path("smbios"))
            .env("LAPWING_MACHINE_ID_FILE", self.path("machine-id"))
            .env("LAPWING_TPM_DEVICE", self.path("no-tpm"))
            .env("LAPWING_ANCHOR_FILE", self.path("no-anchor"))
            .env_remove("LAPWING_TCTI")
            .env_remove("TPM2TOOLS_TCTI")
            .env_remove("TCTI");
        self.session.apply(command)
    }

    /// Installs the "acme-studio" manifest (base SKU) pointing at `address`.
    pub fn place_studio(&self, vendor: &Vendor, address: &str, extra: &str) {
        let text = manifest(vendor, "acme-studio", BASE_SKU, address, extra);
        std::fs::write(self.path("products/acme-studio.toml"), text).expect("manifest written");
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

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

pub fn manifest(
    vendor: &Vendor,
    id: &str,
    sku: lap_proto::Uuid,
    address: &str,
    extra: &str,
) -> String {
    let keys = std::fs::read_to_string(vendor.path("keys/server.toml")).expect("public snippet");
    let server = keys
        .lines()
        .filter(|l| l.starts_with("x25519") || l.starts_with("ed25519"))
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "schema = 1\nid = \"{id}\"\nname = \"{id}\"\nvendor = \"Acme\"\nsku = \"{sku}\"\n{extra}\n[server]\n{server}\naddress = \"{address}\"\n"
    )
}
