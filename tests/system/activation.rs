//! A client built from `lap-proto` activates against the real `lapd` over UDP on loopback.

use std::time::Duration;

use lap_proto::{ActivationRecord, LicenseKind, ServerData, Uuid};
use lapwing_system_tests::{ADDON_SKU, BASE_SKU, Installation, Vendor, activate, lapd, lapd_fed};

const WAIT: Duration = Duration::from_millis(400);
const SILENCE: Duration = Duration::from_millis(300);

#[test]
fn base_and_add_on_activate_and_restarts_keep_the_license_id() {
    let vendor = Vendor::new();
    let (_, base_key) = vendor.new_license(
        BASE_SKU,
        &["--seats", "2", "--days", "365", "--feature", "pro"],
    );
    let (_, addon_key) = vendor.new_license(ADDON_SKU, &["--kind", "perpetual"]);
    let server = vendor.serve(&[]);

    let base = Installation::new(BASE_SKU, base_key, 1);
    let activation =
        activate(server.addr, &vendor.public, &base, 3, WAIT).expect("base product activates");
    assert_eq!(activation.response.client_id, base.base_id);
    assert_eq!(activation.response.sku_id, BASE_SKU);
    let data = ServerData::parse(&activation.response.server_data).expect("TLV v1");
    assert_eq!(data.kind, Some(LicenseKind::Term));
    assert_eq!(data.features, vec!["pro".to_owned()]);
    assert_eq!(data.in_compliance, Some(true));
    let not_after = data.not_after.expect("a term has an end");
    let expected_end = activation.response.server_time + 365 * 86_400;
    assert!(
        not_after.abs_diff(expected_end) <= 2,
        "NotAfter {not_after} vs {expected_end}"
    );
    let license_id = activation.response.license_id;

    // The product's own check of the activation record.
    let record = ActivationRecord::new("acme-studio", &activation);
    record
        .verify(BASE_SKU, vendor.public.ed25519_bytes())
        .expect("record verifies");

    let mut addon = Installation::new(ADDON_SKU, addon_key, 1);
    addon.addon_id = Uuid::from_u128(0xadd);
    let addon_activation =
        activate(server.addr, &vendor.public, &addon, 3, WAIT).expect("add-on activates");
    assert_eq!(
        addon_activation.response.client_id, addon.addon_id,
        "ClientId is the add-on id"
    );
    let addon_data = ServerData::parse(&addon_activation.response.server_data).expect("TLV v1");
    assert_eq!(addon_data.kind, Some(LicenseKind::Perpetual));
    assert_eq!(addon_data.not_after, None);

    // Restart: the same machine keeps its seat and LicenseId, even from a new installation.
    assert!(server.stop().success(), "lapd exits cleanly on SIGTERM");
    let server = vendor.serve(&[]);
    let mut reinstalled = base.clone();
    reinstalled.base_id = Uuid::from_u128(0xfeed);
    reinstalled.current_license_id = license_id;
    let again = activate(server.addr, &vendor.public, &reinstalled, 3, WAIT)
        .expect("activates after restart");
    assert_eq!(
        again.response.license_id, license_id,
        "restart keeps the LicenseId"
    );
    let again_data = ServerData::parse(&again.response.server_data).expect("TLV v1");
    assert_eq!(
        again_data.not_after,
        Some(not_after),
        "restart keeps the term's start"
    );

    // A second machine takes the second seat; a third gets silence.
    let second = activate(
        server.addr,
        &vendor.public,
        &Installation::new(BASE_SKU, base_key, 2),
        3,
        WAIT,
    )
    .expect("second seat");
    assert_ne!(second.response.license_id, license_id);
    assert!(
        activate(
            server.addr,
            &vendor.public,
            &Installation::new(BASE_SKU, base_key, 3),
            2,
            SILENCE
        )
        .is_none(),
        "no third seat"
    );
}

#[test]
fn evaluation_unknown_keys_and_mismatches_meet_silence() {
    let vendor = Vendor::new();
    let server = vendor.serve(&[]);
    let evaluation = activate(
        server.addr,
        &vendor.public,
        &Installation::new(BASE_SKU, [0; 16], 7),
        3,
        WAIT,
    )
    .expect("evaluation granted");
    let data = ServerData::parse(&evaluation.response.server_data).expect("TLV v1");
    assert_eq!(data.kind, Some(LicenseKind::Evaluation));
    assert!(data.not_after.is_some());

    let silent = |installation: Installation| {
        activate(server.addr, &vendor.public, &installation, 2, SILENCE).is_none()
    };
    assert!(
        silent(Installation::new(BASE_SKU, [0x42; 16], 7)),
        "unknown key"
    );
    assert!(
        silent(Installation::new(ADDON_SKU, [0; 16], 7)),
        "add-on without add-on id and no evaluation"
    );
    assert!(
        silent(Installation::new(Uuid::from_u128(5), [0; 16], 7)),
        "unknown SKU"
    );
}

#[test]
fn a_license_added_while_serving_is_picked_up() {
    let vendor = Vendor::new();
    let server = vendor.serve(&[]);
    let (_, key) = vendor.new_license(BASE_SKU, &[]);
    let installation = Installation::new(BASE_SKU, key, 9);
    // The catalog is re-read within about a second of the change.
    let mut activated = None;
    for _ in 0..10 {
        activated = activate(server.addr, &vendor.public, &installation, 1, WAIT);
        if activated.is_some() {
            break;
        }
    }
    let activation = activated.expect("new license works without a restart");
    let data = ServerData::parse(&activation.response.server_data).expect("TLV v1");
    assert_eq!(data.kind, Some(LicenseKind::Perpetual));
}

#[test]
fn serves_ipv6_loopback() {
    let vendor = Vendor::new();
    let (_, key) = vendor.new_license(BASE_SKU, &[]);
    let mut args = vec![
        "serve".to_owned(),
        "--listen".to_owned(),
        "[::1]:0".to_owned(),
    ];
    for (flag, file) in [
        ("--keys", "keys"),
        ("--catalog", "catalog.toml"),
        ("--db", "a.sqlite"),
    ] {
        args.push(flag.to_owned());
        args.push(vendor.path(file));
    }
    let server = lapwing_system_tests::Server::start(&args);
    assert!(server.addr.is_ipv6());
    assert!(
        activate(
            server.addr,
            &vendor.public,
            &Installation::new(BASE_SKU, key, 1),
            3,
            WAIT
        )
        .is_some()
    );
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let vendor = Vendor::new();
    std::fs::write(vendor.path("broken.toml"), "[[sku]]\nid = \"x\"\n").expect("write");
    let out = lapd(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--keys",
        &vendor.path("keys"),
        "--catalog",
        &vendor.path("broken.toml"),
        "--db",
        &vendor.path("a.sqlite"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");

    let out = lapd(&["keygen", "--out", &vendor.path("keys")]);
    assert!(!out.status.success(), "keygen refuses to overwrite keys");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    let out = lapd(&[
        "license",
        "new",
        "--catalog",
        &vendor.path("catalog.toml"),
        "--sku",
        &Uuid::from_u128(3).to_string(),
    ]);
    assert!(!out.status.success(), "unknown SKU refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown SKU"));
}

#[test]
fn lapd_probe_reports_grants_and_explains_silence() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "30", "--notice", "Demo licence"]);
    let server = vendor.serve(&[]);
    let addr = server.addr.to_string();
    let public = vendor.path("keys/server.toml");
    let sku = BASE_SKU.to_string();
    // The key from stdin (`--key-file -`), with the newline `echo` adds.
    let out = lapd_fed(
        &[
            "probe",
            "--server",
            &addr,
            "--public",
            &public,
            "--sku",
            &sku,
            "--key-file",
            "-",
            "--json",
        ],
        &format!("{key}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["kind"], "term");
    assert_eq!(answer["notice"], "Demo licence");
    assert_eq!(answer["sku"], sku);

    let mut draw = [0x5a_u8; 16];
    let wrong = lap_proto::LicenseKey::generate(|| {
        draw[0] = draw[0].wrapping_add(1);
        draw
    })
    .to_display();
    let wrong = wrong.as_str();
    let wrong_file = vendor.path("wrong.key");
    std::fs::write(&wrong_file, wrong).expect("write");
    let out = lapd(&[
        "probe",
        "--server",
        &addr,
        "--public",
        &public,
        "--sku",
        &sku,
        "--key-file",
        &wrong_file,
        "--attempts",
        "1",
        "--wait-ms",
        "200",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no answer") && stderr.contains("clock"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong), "the key is never echoed");

    let out = lapd_fed(
        &[
            "probe",
            "--server",
            &addr,
            "--public",
            &public,
            "--sku",
            &sku,
            "--key-file",
            "-",
        ],
        "ABCD",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--key-file"),
        "a malformed key is refused before sending"
    );

    let out = lapd_fed(
        &[
            "probe",
            "--server",
            &addr,
            "--public",
            &public,
            "--sku",
            &sku,
            "--key-file",
            "-",
        ],
        " \n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key given"));

    for command in ["probe", "bench"] {
        let out = lapd(&[
            command, "--server", &addr, "--public", &public, "--sku", &sku, "--key", &key,
        ]);
        assert_eq!(out.status.code(), Some(2), "{command}: a usage error");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--key-file"), "says how instead: {stderr}");
        assert!(!stderr.contains(&key), "the key is not echoed: {stderr}");
    }
}

#[test]
fn a_flooding_source_is_rate_limited_before_any_crypto() {
    let vendor = Vendor::new();
    let (_, key) = vendor.new_license(BASE_SKU, &[]);
    let server = vendor.serve(&["--rate-limit", "1", "--burst", "3", "--threads", "1"]);
    let installation = Installation::new(BASE_SKU, key, 4);
    // Ten single attempts in quick succession from one address: the burst is answered, the
    // rest meet silence.
    let answered = (0..10)
        .filter(|_| {
            activate(
                server.addr,
                &vendor.public,
                &installation,
                1,
                Duration::from_millis(150),
            )
            .is_some()
        })
        .count();
    assert!(
        (3..=5).contains(&answered),
        "{answered} of 10 answered with a burst of 3 at 1/s"
    );
    let status = server.stop();
    assert!(status.success());
}
