//! `lapd seats list` and `lapd seats release` on the database a running `lapd serve` uses,
//! and `lapd sunset` writing a grant that verifies with the server's key.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use lap_proto::Uuid;
use lap_proto::sunset::SunsetGrant;

const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

fn lapd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lapd"))
}

/// Exit code and stdout+stderr.
fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = lapd().args(args).output().expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// A running `lapd serve`, stopped when dropped.
struct Serving {
    child: Child,
    address: String,
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(keys: &Path, catalog: &Path, db: &Path, extra: &[&str]) -> Serving {
    let mut child = lapd()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--rate-limit",
            "0",
        ])
        .args([
            "--keys",
            path(keys),
            "--catalog",
            path(catalog),
            "--db",
            path(db),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the bound address");
    Serving {
        child,
        address: line.trim().to_owned(),
    }
}

#[test]
fn seats_are_listed_and_released_while_serve_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let (code, _, err) = run(&["keygen", "--out", path(&keys)]);
    assert_eq!(code, Some(0), "{err}");
    let key = lap_proto::test_util::key(1);
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, key.to_display()).expect("key");
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 1\n",
            key.to_display()
        ),
    )
    .expect("catalog");
    let db = dir.path().join("seats.sqlite");
    let serving = serve(&keys, &catalog, &db, &[]);
    let probe = |machine: u8, attempts: &str| {
        run(&[
            "probe",
            "--server",
            &serving.address,
            "--public",
            path(&keys.join("server.toml")),
            "--sku",
            &SKU.to_string(),
            "--key-file",
            path(&key_file),
            "--machine",
            &hex::encode([machine; 32]),
            "--attempts",
            attempts,
            "--wait-ms",
            "500",
            "--json",
        ])
    };
    let (code, _, err) = probe(0xaa, "3");
    assert_eq!(code, Some(0), "the first machine takes the seat: {err}");
    let (code, _, _) = probe(0xbb, "1");
    assert_ne!(code, Some(0), "the second is refused: one seat");

    let list = |extra: &[&str]| {
        let mut args = vec!["seats", "list", "--db", path(&db), "--json"];
        args.extend_from_slice(extra);
        let (code, out, err) = run(&args);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str::<Vec<serde_json::Value>>(&out).expect("JSON")
    };
    let seats = list(&[]);
    assert_eq!(seats.len(), 1, "{seats:?}");
    let seat = &seats[0];
    assert_eq!(seat["machine_hash_prefix"], "aaaaaaaaaaaa");
    assert_eq!(seat["state"], "held");
    assert_eq!(seat["license"], lapd::catalog::license_reference(&key));
    assert_eq!(list(&["--key-file", path(&key_file)]).len(), 1);
    assert_eq!(
        list(&["--sku", &SKU.to_string(), "--catalog", path(&catalog)]).len(),
        1
    );
    assert_eq!(list(&["--license", "0000"]).len(), 0);
    let (code, out, _) = run(&["seats", "list", "--db", path(&db)]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("aaaaaaaaaaaa") && out.contains("1 seats"),
        "{out}"
    );
    assert!(
        !out.contains(&key.to_display()),
        "the listing never shows a key"
    );

    let id = seat["seat_id"].as_u64().expect("an id").to_string();
    let (code, out, err) = run(&["seats", "release", "--db", path(&db), "--seat", &id]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("seat {id} of license")), "{out}");
    assert!(list(&[]).is_empty());
    let (code, _, err) = run(&["seats", "release", "--db", path(&db), "--seat", &id]);
    assert_eq!(code, Some(1), "released already");
    assert!(err.contains("no such seat"), "{err}");

    let (code, _, err) = probe(0xbb, "3");
    assert_eq!(
        code,
        Some(0),
        "the running server gives the freed seat: {err}"
    );
    let missing = dir.path().join("typo.sqlite");
    let (code, _, err) = run(&["seats", "list", "--db", path(&missing)]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no such file"), "{err}");
    assert!(!missing.exists(), "no empty database made");
    let seats = list(&[]);
    assert_eq!(seats.len(), 1);
    assert_eq!(seats[0]["machine_hash_prefix"], "bbbbbbbbbbbb");

    // Stopped, its database file alone holds every seat (nothing left in the WAL beside
    // it): what a vendor copies after stopping lapd.
    #[cfg(unix)]
    {
        let mut serving = serving;
        let pid = serving.child.id().to_string();
        let signalled = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(signalled.expect("kill runs").success());
        let stopped = serving.child.wait().expect("serve stops");
        assert!(stopped.success(), "lapd serve ended with {stopped}");
        let alone = dir.path().join("copy");
        std::fs::create_dir(&alone).expect("folder");
        std::fs::copy(&db, alone.join("seats.sqlite")).expect("copy");
        let (code, out, err) = run(&[
            "seats",
            "list",
            "--db",
            path(&alone.join("seats.sqlite")),
            "--json",
        ]);
        assert_eq!(code, Some(0), "{err}");
        let seats: Vec<serde_json::Value> = serde_json::from_str(&out).expect("JSON");
        assert_eq!(seats.len(), 1, "{seats:?}");
        assert_eq!(seats[0]["machine_hash_prefix"], "bbbbbbbbbbbb");
    }
}

#[test]
fn a_sunset_grant_verifies_with_the_servers_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let (code, _, err) = run(&["keygen", "--out", path(&keys)]);
    assert_eq!(code, Some(0), "{err}");
    let out = dir.path().join("acme.sunset.json");
    let asset_key = "00112233445566778899aabbccddeeff";
    let (code, stdout, stderr) = run(&[
        "sunset",
        "--keys",
        path(&keys),
        "--sku",
        &SKU.to_string(),
        "--feature",
        "pro",
        "--feature",
        "export",
        "--asset-key",
        asset_key,
        "--out",
        path(&out),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        !stdout.contains(asset_key) && !stderr.contains(asset_key),
        "the asset key is never printed"
    );
    let grant = SunsetGrant::from_json(&std::fs::read_to_string(&out).expect("written"))
        .expect("a sunset grant");
    let (_, public) = lapd::keys::load_public(&keys.join("server.toml")).expect("public keys");
    let data = grant
        .verify(SKU, &public)
        .expect("signed by the server's key");
    assert_eq!(data.kind, Some(lap_proto::LicenseKind::Perpetual));
    assert_eq!(data.features, ["pro", "export"]);
    assert_eq!(
        data.asset_key.as_deref().map(hex::encode).as_deref(),
        Some(asset_key)
    );
    assert!(data.not_after.is_none(), "valid for good");
    assert!(
        grant.verify(Uuid::from_u128(1), &public).is_err(),
        "for its SKU only"
    );

    let (code, _, err) = run(&[
        "sunset",
        "--keys",
        path(&keys),
        "--sku",
        &SKU.to_string(),
        "--asset-key",
        "xyz",
        "--out",
        path(&dir.path().join("bad.json")),
    ]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--asset-key takes hex digits"), "{err}");
    assert!(!dir.path().join("bad.json").exists(), "nothing written");
}

/// `lapd serve` sweeps seats past their lease on its own clock, `--time-offset` included:
/// a seat taken now is freed by a server running 181 days ahead, with nobody asking. (Where
/// the lease ends to the second is the rules' tests', with a fixed `now`.)
#[test]
fn serve_sweeps_seats_past_their_lease_on_its_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    let (code, _, err) = run(&["keygen", "--out", path(&keys)]);
    assert_eq!(code, Some(0), "{err}");
    let key = lap_proto::test_util::key(2);
    let key_file = dir.path().join("key.txt");
    std::fs::write(&key_file, key.to_display()).expect("key");
    let catalog = dir.path().join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Acme\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"perpetual\"\nseats = 1\n",
            key.to_display()
        ),
    )
    .expect("catalog");
    let db = dir.path().join("seats.sqlite");
    {
        let serving = serve(&keys, &catalog, &db, &[]);
        let (code, _, err) = run(&[
            "probe",
            "--server",
            &serving.address,
            "--public",
            path(&keys.join("server.toml")),
            "--sku",
            &SKU.to_string(),
            "--key-file",
            path(&key_file),
            "--machine",
            &hex::encode([0xcc; 32]),
        ]);
        assert_eq!(code, Some(0), "{err}");
    }
    let count = || {
        let (code, out, err) = run(&["seats", "list", "--db", path(&db), "--json"]);
        assert_eq!(code, Some(0), "{err}");
        serde_json::from_str::<Vec<serde_json::Value>>(&out)
            .expect("JSON")
            .len()
    };
    assert_eq!(count(), 1);
    let day = 86_400;
    let _ahead = serve(
        &keys,
        &catalog,
        &db,
        &[
            "--time-offset",
            &(181 * day).to_string(),
            "--lease-sweep-secs",
            "1",
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep freed the seat"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
