//! The indirect setup (issue 17, profile 1.1 §10) with real processes: the vendor's `lapd`,
//! a customer's intermediate `lapd` upstream of it (`serve --config` with `[upstream]`), and
//! client homes on machines of their own whose `lapctl` activates through the intermediate,
//! provisioned by the machine policy's `[[provision]]`. The intermediates share this machine,
//! so each has an anchor file of its own.

use std::path::PathBuf;
use std::process::Output;

use lap_proto::record::ActivationRecord;
use lap_proto::time::DAY;
use lapwing_system_tests::desk::manifest;
use lapwing_system_tests::home::Home;
use lapwing_system_tests::{BASE_SKU, Server, Vendor, lapd, public_keys};

const ID: &str = "acme-studio";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The vendor with a pool license of `seats` seats; returns the pool's key.
fn vendor_with_pool(vendor: &Vendor, seats: u32) -> String {
    let (key, _) = vendor.new_license(BASE_SKU, &["--seats", &seats.to_string(), "--pool"]);
    key
}

fn start_vendor(vendor: &Vendor, listen: &str, offset: i64) -> Server {
    Server::start(
        &[
            "serve",
            "--listen",
            listen,
            "--keys",
            &vendor.path("keys"),
            "--catalog",
            &vendor.path("catalog.toml"),
            "--db",
            &vendor.path("assignments.sqlite"),
            "--rate-limit",
            "0",
            "--time-offset",
            &offset.to_string(),
        ]
        .map(str::to_owned),
    )
}

/// A customer's intermediate: its own keys, a site license of 10 seats for the SKU, and an
/// `[upstream]` asking the vendor for `wanted` seats of the pool.
struct Intermediate {
    dir: tempfile::TempDir,
    site_key: String,
}

impl Intermediate {
    fn new(vendor: &Vendor, vendor_addr: &str, pool_key: &str, wanted: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = |name: &str| dir.path().join(name).to_str().expect("utf-8").to_owned();
        let out = lapd(&["keygen", "--out", &path("keys")]);
        assert!(out.status.success(), "keygen: {}", stderr(&out));
        std::fs::write(
            path("catalog.toml"),
            format!("[[sku]]\nid = \"{BASE_SKU}\"\nname = \"Acme Studio\"\n"),
        )
        .expect("catalog");
        let out = lapd(&[
            "license",
            "new",
            "--catalog",
            &path("catalog.toml"),
            "--sku",
            &BASE_SKU.to_string(),
            "--seats",
            "10",
            "--json",
        ]);
        assert!(out.status.success(), "license new: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let site_key = json["key"].as_str().expect("key").to_owned();
        std::fs::copy(vendor.path("keys/server.toml"), path("vendor-server.toml"))
            .expect("vendor keys");
        std::fs::write(path("pool.key"), format!("{pool_key}\n")).expect("pool key");
        let site = Self { dir, site_key };
        site.point_at(vendor_addr, wanted);
        site
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// (Re)writes the config: the vendor at `vendor_addr`.
    fn point_at(&self, vendor_addr: &str, wanted: u32) {
        std::fs::write(
            self.path("lapd.toml"),
            format!(
                "listen = \"127.0.0.1:0\"\nkeys = \"keys\"\ncatalog = \"catalog.toml\"\n\
                 db = \"seats.sqlite\"\nrate_limit = 0\n\n[upstream]\naddress = \"{vendor_addr}\"\n\
                 vendor_public = \"vendor-server.toml\"\n\
                 anchor_file = \"anchor\"\n\n[[upstream.pool]]\nsku = \"{BASE_SKU}\"\n\
                 license_key_file = \"pool.key\"\nseats = {wanted}\n"
            ),
        )
        .expect("config");
    }

    fn serve(&self, offset: i64) -> Server {
        Server::start(
            &[
                "serve",
                "--config",
                self.path("lapd.toml").to_str().expect("utf-8"),
                "--time-offset",
                &offset.to_string(),
            ]
            .map(str::to_owned),
        )
    }

    /// `lapd pools status --json` for this intermediate at `offset`.
    fn status(&self, offset: i64) -> serde_json::Value {
        let out = lapd(&[
            "pools",
            "status",
            "--config",
            self.path("lapd.toml").to_str().expect("utf-8"),
            "--time-offset",
            &offset.to_string(),
            "--json",
        ]);
        assert!(out.status.success(), "pools status: {}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON")[0].clone()
    }

    /// A policy's `[[provision]]` entry for "acme-studio" with this intermediate's keys, to
    /// which the caller adds where the intermediate is.
    fn provision_entry(&self) -> String {
        let snippet = std::fs::read_to_string(self.path("keys/server.toml")).expect("keys");
        let keys: Vec<&str> = snippet
            .lines()
            .filter(|l| l.starts_with("x25519") || l.starts_with("ed25519"))
            .collect();
        format!(
            "[[provision]]\nproduct = \"{ID}\"\nname = \"Example Corp license server\"\n{}\n",
            keys.join("\n")
        )
    }

    /// Provisions "acme-studio" in `home` for this intermediate at `address`, as an
    /// administrator does: a machine policy `[[provision]]` entry with its keys and address.
    fn provision(&self, home: &Home, address: &str) {
        std::fs::write(
            home.path("policy.toml"),
            format!("{}address = \"{address}\"\n", self.provision_entry()),
        )
        .expect("policy");
    }
}

/// A client home on a machine of its own with the vendor's own manifest of "acme-studio"
/// (the vendor's keys, an address where nothing answers), provisioned by its machine policy
/// for the intermediate at `address`: the product reaches the intermediate only through the
/// policy.
fn client(vendor: &Vendor, site: &Intermediate, address: &str, machine: u8) -> Home {
    let home = Home::new();
    std::fs::write(
        home.path("machine-id"),
        format!("{}\n", hex::encode([machine; 16])),
    )
    .expect("machine id");
    std::fs::write(
        home.path("products/acme-studio.toml"),
        manifest(vendor, ID, BASE_SKU, "127.0.0.1:9", ""),
    )
    .expect("manifest");
    site.provision(&home, address);
    home
}

fn set_key(home: &Home, key: &str, offset: i64) -> Output {
    let mut command = home.command(&["key", "set", ID, "--json"]);
    command.env("LAPWING_CLOCK_OFFSET", offset.to_string());
    lapwing_system_tests::output_fed(&mut command, &format!("{key}\n"))
}

fn activate(home: &Home, offset: i64) -> Output {
    let mut command = home.command(&["activate", ID, "--json"]);
    command.env("LAPWING_CLOCK_OFFSET", offset.to_string());
    command.output().expect("lapctl runs")
}

/// The record verifies with the vendor's key alone, through the Delegation it carries.
fn assert_verifies_with_vendor_key(home: &Home, vendor: &Vendor) {
    let text = std::fs::read_to_string(home.record_path()).expect("activation record");
    let record = ActivationRecord::from_json(&text).expect("record");
    let vendor_key = public_keys(
        &std::fs::read_to_string(vendor.path("keys/server.toml")).expect("vendor keys"),
    );
    record
        .verify(BASE_SKU, vendor_key.ed25519_bytes())
        .expect("a delegated record verifies with the vendor's key");
}

#[test]
fn a_pool_of_two_serves_two_clients_then_the_third_after_one_deactivates() {
    let vendor = Vendor::new();
    let pool_key = vendor_with_pool(&vendor, 2);
    let vendor_server = start_vendor(&vendor, "127.0.0.1:0", 0);
    let site = Intermediate::new(&vendor, &vendor_server.addr.to_string(), &pool_key, 2);
    let intermediate = site.serve(0);
    let address = intermediate.addr.to_string();
    let homes: Vec<Home> = (1..=3)
        .map(|m| client(&vendor, &site, &address, 0xa0 + m))
        .collect();

    // A desktop given the pool's key directly is never answered by the vendor.
    let desktop = Home::new();
    desktop.place_studio(&vendor, &vendor_server.addr.to_string());
    let out = set_key(&desktop, &pool_key, 0);
    assert!(!out.status.success(), "a pool is for intermediates only");

    for home in &homes[..2] {
        let out = set_key(home, &site.site_key, 0);
        assert!(
            out.status.success(),
            "activates: {} {}",
            stderr(&out),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_verifies_with_vendor_key(home, &vendor);
        let status = home.status();
        assert_eq!(status["state"], "activated", "{status}");
    }
    let out = set_key(&homes[2], &site.site_key, 0);
    assert!(!out.status.success(), "the pool's two seats are taken");
    assert_ne!(homes[2].status()["state"], "activated");
    assert!(!homes[2].record_path().exists());

    let out = homes[0].run(&["deactivate", ID]);
    assert!(out.status.success(), "deactivate: {}", stderr(&out));
    let out = activate(&homes[2], 0);
    assert!(out.status.success(), "the freed seat: {}", stderr(&out));
    assert_verifies_with_vendor_key(&homes[2], &vendor);
    let status = homes[2].status();
    assert_eq!(status["through"], "Example Corp license server", "{status}");
    assert_eq!(status["server"]["address"], address.as_str(), "{status}");

    let status = site.status(0);
    assert_eq!(status["state"], "serving", "{status}");
    assert_eq!(status["seats_granted"], 2, "{status}");
    assert_eq!(status["seats_in_use"], 2, "{status}");
    let listed = lapd(&[
        "pools",
        "list",
        "--db",
        &vendor.path("assignments.sqlite"),
        "--json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed[0]["seats_granted"], 2, "{listed}");
}

#[test]
fn two_intermediates_on_a_pool_of_three_never_hold_more_than_three() {
    let vendor = Vendor::new();
    let pool_key = vendor_with_pool(&vendor, 3);
    let vendor_server = start_vendor(&vendor, "127.0.0.1:0", 0);
    let vendor_addr = vendor_server.addr.to_string();
    let first = Intermediate::new(&vendor, &vendor_addr, &pool_key, 2);
    let second = Intermediate::new(&vendor, &vendor_addr, &pool_key, 2);
    let first_server = first.serve(0);
    let second_server = second.serve(0);
    assert_eq!(first.status(0)["seats_granted"], 2);
    assert_eq!(second.status(0)["seats_granted"], 1);

    // The second one grants its one seat and no more, whatever its own catalog says.
    let address = second_server.addr.to_string();
    let a = client(&vendor, &second, &address, 0xb1);
    let b = client(&vendor, &second, &address, 0xb2);
    assert!(set_key(&a, &second.site_key, 0).status.success());
    assert!(!set_key(&b, &second.site_key, 0).status.success());

    let listed = lapd(&[
        "pools",
        "list",
        "--db",
        &vendor.path("assignments.sqlite"),
        "--json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let held: u64 = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|g| g["seats_granted"].as_u64().expect("seats"))
        .sum();
    assert_eq!(held, 3, "{listed}");
    drop(first_server);
}

#[test]
fn without_the_vendor_the_intermediate_serves_until_the_pool_ends_then_syncs_when_it_is_back() {
    let vendor = Vendor::new();
    let pool_key = vendor_with_pool(&vendor, 2);
    let vendor_server = start_vendor(&vendor, "127.0.0.1:0", 0);
    let vendor_addr = vendor_server.addr.to_string();
    let site = Intermediate::new(&vendor, &vendor_addr, &pool_key, 2);
    let intermediate = site.serve(0);
    let address = intermediate.addr.to_string();
    let home = client(&vendor, &site, &address, 0xc1);
    assert!(set_key(&home, &site.site_key, 0).status.success());
    let pool = site.status(0);
    assert!(pool["warning"].is_null(), "synced on time: {pool}");
    drop(intermediate);
    drop(vendor_server);

    // 20 days on (past the pool's RenewAfter), the vendor gone: the intermediate restarts,
    // cannot sync, serves from its saved pool, and warns.
    let later = i64::try_from(20 * DAY).expect("offset");
    let intermediate = site.serve(later);
    let address_later = intermediate.addr.to_string();
    site.provision(&home, &address_later);
    let out = activate(&home, later);
    assert!(
        out.status.success(),
        "served from the pool: {}",
        stderr(&out)
    );
    let pool = site.status(later);
    assert_eq!(pool["state"], "serving", "{pool}");
    let warning = pool["warning"].as_str().expect("a warning");
    assert!(
        warning.contains("ends in 9 days") && warning.contains("unless lapd reaches"),
        "{warning}"
    );
    drop(intermediate);

    // Past the pool's end: nothing is granted.
    let ended = i64::try_from(31 * DAY).expect("offset");
    let intermediate = site.serve(ended);
    site.provision(&home, &intermediate.addr.to_string());
    assert!(
        !activate(&home, ended).status.success(),
        "the pool has ended"
    );
    assert_eq!(site.status(ended)["state"], "ended");
    drop(intermediate);

    // The vendor is back (same address, its clock where everyone's is): the intermediate
    // syncs at start, and the client renews.
    let vendor_server = start_vendor(&vendor, &vendor_addr, ended);
    let intermediate = site.serve(ended);
    site.provision(&home, &intermediate.addr.to_string());
    let out = activate(&home, ended);
    assert!(out.status.success(), "renewed: {}", stderr(&out));
    assert_eq!(site.status(ended)["state"], "serving");
    assert_verifies_with_vendor_key(&home, &vendor);
    drop(vendor_server);
}

/// No address typed anywhere: the policy names only the organisation's domain, the DNS
/// server publishes what `lapd dns` printed for it (its dnsmasq options, given to a real
/// dnsmasq), and the client finds the intermediate by SRV.
#[test]
fn a_provisioned_client_finds_the_intermediate_through_srv() {
    let vendor = Vendor::new();
    let pool_key = vendor_with_pool(&vendor, 2);
    let vendor_server = start_vendor(&vendor, "127.0.0.1:0", 0);
    let site = Intermediate::new(&vendor, &vendor_server.addr.to_string(), &pool_key, 2);
    let intermediate = site.serve(0);

    let out = lapd(&[
        "dns",
        "--domain",
        "corp.example",
        "--listen",
        &intermediate.addr.to_string(),
    ]);
    assert!(out.status.success(), "lapd dns: {}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let options: Vec<String> = printed
        .lines()
        .skip_while(|l| !l.starts_with("# dnsmasq"))
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| format!("--{l}"))
        .collect();
    assert!(
        options
            .iter()
            .any(|o| o.starts_with("--srv-host=_lap._udp.corp.example")),
        "{printed}"
    );
    let dns = lapwing_discovery::test_util::Dnsmasq::start(&options);

    let home = client(&vendor, &site, "unused.invalid:1", 0xd1);
    // The intermediate answers on loopback here: the policy lets DNS name a local address.
    std::fs::write(
        home.path("policy.toml"),
        format!(
            "[discovery]\nallow_local_addresses = true\n\n{}srv_domain = \"corp.example\"\n",
            site.provision_entry()
        ),
    )
    .expect("policy");
    let mut command = home.command(&["key", "set", ID, "--json"]);
    command.env("LAPWING_DNS_SERVER", dns.address().to_string());
    let out = lapwing_system_tests::output_fed(&mut command, &format!("{}\n", site.site_key));
    assert!(out.status.success(), "activated by SRV: {}", stderr(&out));
    let status = home.status();
    assert_eq!(status["server"]["source"], "srv", "{status}");
    let mut show = home.command(&["server", "show", ID]);
    show.env("LAPWING_DNS_SERVER", dns.address().to_string());
    let shown = show.output().expect("lapctl runs");
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("through Example Corp license server (set up by your administrator)"),
        "{text}"
    );
    assert_eq!(
        status["server"]["address"],
        intermediate.addr.to_string().as_str(),
        "{status}"
    );
    assert_verifies_with_vendor_key(&home, &vendor);
}
