//! The engine against a real `lapd` (in-process, on loopback UDP), with an in-memory
//! keyring, a fixed machine and a fake clock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lap_proto::server_data::MIN_RENEW_SECS;
use lap_proto::test_util::key;
use lap_proto::time::unix_now;
use lap_proto::time::{DAY, HOUR, MINUTE};
use lap_proto::{ServerSecretKeys, Uuid};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::server::{Background, Server};
use lapd::store::Store;
use lapwing_core::cause::Cause;
use lapwing_core::clock::{Clock, FakeClock};
use lapwing_core::engine::{Engine, EngineConfig, EngineError, KeyStored};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::state::AttemptOutcome;
use lapwing_core::status::Phase;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_discovery::{DiscoveryConfig, ServerSource};
use lapwing_secrets::{MemoryStore, SecretStore};

const BASE_SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);
const ADDON_SKU: Uuid = Uuid::from_u128(0x0d3f_4b43_4c39_4a43_9a3e_5f7a_1c0e_9b12);

/// A lapd on 127.0.0.1 with a base SKU (30-day evaluation), an add-on, and licenses for keys 1 (base,
/// term 365 days) and 2 (add-on, perpetual). Stops when dropped.
struct TestServer {
    addr: SocketAddr,
    keys: ServerSecretKeys,
    serving: Background,
}

impl TestServer {
    fn start() -> Self {
        Self::start_with("")
    }

    /// [`TestServer::start`] with `head` (top-level catalog settings) in front of the SKUs.
    fn start_with(head: &str) -> Self {
        Self::start_keyed(head, 0x41)
    }

    /// [`TestServer::start_with`] under its own keys: X25519 secret bytes all `seed`, Ed25519
    /// seed bytes all `seed + 1`.
    fn start_keyed(head: &str, seed: u8) -> Self {
        let catalog = format!(
            "{head}[[sku]]\nid = \"{BASE_SKU}\"\nname = \"Acme Studio\"\nevaluation_days = 30\n\
             [[sku]]\nid = \"{ADDON_SKU}\"\nname = \"Acme Export\"\nbase = \"{BASE_SKU}\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{BASE_SKU}\"\nkind = \"term\"\nseats = 2\ndays = 365\nfeatures = [\"pro\"]\n\
             [[license]]\nkey = \"{}\"\nsku = \"{ADDON_SKU}\"\nkind = \"perpetual\"\nseats = 2\n",
            key(1).to_display(),
            key(2).to_display()
        );
        let catalog = LicenseCatalog::parse(&catalog, Path::new("catalog.toml")).expect("catalog");
        let keys = ServerSecretKeys::from_bytes([seed; 32], &[seed + 1; 32]);
        let server = Server::new(
            ServerSecretKeys::from_bytes([seed; 32], &[seed + 1; 32]),
            catalog,
            Store::in_memory().expect("store"),
            RateLimiter::new(0, 0),
            0,
        );
        let serving = Background::start(server, "127.0.0.1:0".parse().expect("addr"), 1)
            .expect("lapd serves on loopback");
        let addr = serving.address();
        Self {
            addr,
            keys,
            serving,
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    products: PathBuf,
    policy: PathBuf,
    clock: FakeClock,
    secrets: Arc<MemoryStore>,
    engine: Engine,
}

fn manifest(id: &str, sku: Uuid, keys: &ServerSecretKeys, address: &str, extra: &str) -> String {
    format!(
        "schema = 1\nid = \"{id}\"\nname = \"{id}\"\nvendor = \"Acme\"\nsku = \"{sku}\"\n{extra}\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"{address}\"\n",
        hex::encode(keys.public().x25519_bytes()),
        hex::encode(keys.public().ed25519_bytes())
    )
}

fn setup(server: &TestServer) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let products = dir.path().join("products.d");
    std::fs::create_dir_all(&products).expect("mkdir");
    let address = server.addr.to_string();
    std::fs::write(
        products.join("acme-studio.toml"),
        manifest(
            "acme-studio",
            BASE_SKU,
            &server.keys,
            &address,
            "evaluation_days = 30",
        ),
    )
    .expect("write");
    std::fs::write(
        products.join("acme-export.toml"),
        manifest(
            "acme-export",
            ADDON_SKU,
            &server.keys,
            &address,
            "addon_of = \"acme-studio\"",
        ),
    )
    .expect("write");
    let clock = FakeClock::at(unix_now());
    let secrets = Arc::new(MemoryStore::new());
    let policy = dir.path().join("policy.toml");
    let engine = Engine::new(EngineConfig {
        data_dir: dir.path().join("data"),
        product_dirs: vec![products.clone()],
        policy_path: policy.clone(),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(OsEntropy),
        secrets: Arc::clone(&secrets) as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy {
            waits: vec![Duration::from_millis(300); 2],
        },
    });
    Setup {
        _dir: dir,
        products,
        policy,
        clock,
        secrets,
        engine,
    }
}

/// Stores license `n`'s key for `id` and activates it.
async fn licensed(s: &Setup, id: &str, n: u8) -> lapwing_core::engine::ProductStatus {
    s.engine
        .set_key(id, &key(n).to_display())
        .expect("key accepted");
    s.engine.activate(id, None).await.expect("activation runs")
}

/// Rewrites the manifests' `address` from the real server to `to`.
fn point_manifests_at(s: &Setup, server: &TestServer, to: SocketAddr) {
    for file in ["acme-studio.toml", "acme-export.toml"] {
        let path = s.products.join(file);
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace(&server.addr.to_string(), &to.to_string());
        std::fs::write(&path, text).expect("write");
    }
}

#[tokio::test]
async fn base_and_add_on_activate_and_write_verifiable_records() {
    let server = TestServer::start();
    let s = setup(&server);
    s.engine
        .set_key(
            "acme-studio",
            &key(1).to_display().to_lowercase().replace('-', " "),
        )
        .expect("typed key accepted");
    let base = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("activates");
    assert_eq!(base.state, Phase::Activated, "{base:?}");
    assert_eq!(base.features, ["pro"]);
    // The fake clock stands still while lapd's real clock moves on: compare with NotAfter.
    let end = base.not_after.expect("a term has an end");
    assert!(end.abs_diff(s.clock.now() + 365 * DAY) <= 5, "{end}");
    assert_eq!(base.days_left, Some((end - s.clock.now()).div_ceil(DAY)));
    assert_eq!(
        base.server.as_ref().map(|s| s.source),
        Some(ServerSource::Manifest)
    );
    let addon = licensed(&s, "acme-export", 2).await;
    assert_eq!(addon.state, Phase::Activated);
    assert_eq!(addon.not_after, None, "perpetual");

    let record_path = s
        .engine
        .config()
        .data_dir
        .join("activations/acme-studio.json");
    let record = lap_proto::ActivationRecord::from_json(
        &std::fs::read_to_string(record_path).expect("record written"),
    )
    .expect("record parses");
    let verified = record
        .verify(BASE_SKU, server.keys.public().ed25519_bytes())
        .expect("a product can verify it");
    assert_eq!(Some(verified.response.license_id), base.license_id);

    // Renewing keeps the LicenseId (same machine, same license).
    let again = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("renews");
    assert_eq!(again.license_id, base.license_id);
    let all = s.engine.status().expect("status");
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn an_evaluation_needs_no_key_and_survives_a_lost_state_file() {
    let server = TestServer::start();
    let s = setup(&server);
    let status = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("evaluation");
    assert_eq!(status.state, Phase::Evaluation);
    assert_eq!(status.days_left, Some(30));
    let started = s
        .secrets
        .get_evaluation_start("acme-studio")
        .expect("keyring")
        .expect("kept in the keyring");
    // Deleting the state file does not restart the evaluation: the keyring remembers.
    std::fs::remove_file(s.engine.state_store().path()).expect("remove state");
    s.clock.advance(10 * DAY);
    let status = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("evaluation continues");
    assert_eq!(status.state, Phase::Evaluation, "{status:?}");
    assert_eq!(
        s.secrets
            .get_evaluation_start("acme-studio")
            .expect("keyring"),
        Some(started)
    );
}

#[tokio::test]
async fn a_mistyped_key_is_refused_before_anything_is_sent() {
    let server = TestServer::start();
    let s = setup(&server);
    let mut typo = key(1).to_display();
    typo.replace_range(0..1, if typo.starts_with('A') { "B" } else { "A" });
    let err = s
        .engine
        .set_key("acme-studio", &typo)
        .expect_err("typo refused");
    assert!(matches!(err, EngineError::Key(_)), "{err}");
    assert!(
        lap_proto::license_key::suggestions(&typo).contains(&key(1)),
        "the right key is suggested"
    );
    assert!(
        s.secrets
            .get_license_key("acme-studio")
            .expect("keyring")
            .is_none(),
        "nothing stored"
    );
}

#[tokio::test]
async fn silence_is_diagnosed_in_order_and_backs_off() {
    let server = TestServer::start();
    let s = setup(&server);
    s.engine
        .set_key("acme-studio", &key(9).to_display())
        .expect("well-formed key");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Unlicensed);
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NoAnswer);
    let codes: Vec<&str> = attempt.diagnosis.iter().map(Cause::code).collect();
    // The clock is not blamed unmeasured (this engine has no time sources): what its check
    // found comes last (tests/clock.rs has the measured cases).
    assert_eq!(
        codes,
        ["key-may-be-refused", "unreachable", "clock-not-checked"],
        "{:?}",
        attempt.diagnosis
    );
    assert!(attempt.diagnosis[0].to_string().contains("key"));
    assert!(
        attempt.diagnosis[1]
            .to_string()
            .starts_with("the server may be unreachable: no answer from 127.0.0.1:"),
        "{}",
        attempt.diagnosis[1]
    );
    assert_eq!(status.next_attempt_at, Some(s.clock.now() + 15 * MINUTE));
}

#[tokio::test]
async fn a_server_down_at_renewal_leaves_the_activation_until_its_end() {
    let server = TestServer::start();
    let s = setup(&server);
    let first = licensed(&s, "acme-studio", 1).await;
    let end = first.not_after.expect("term");
    drop(server); // the server goes away
    s.clock.advance(200 * DAY);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        status.state,
        Phase::RenewalDue,
        "still licensed until NotAfter"
    );
    assert_eq!(status.license_id, first.license_id);
    assert_eq!(status.next_attempt_at, Some(s.clock.now() + 15 * MINUTE));
    s.clock.set(end);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Expired);
    assert_eq!(
        status.next_attempt_at,
        Some(end + HOUR),
        "hourly once NotAfter has passed"
    );
}

#[tokio::test]
async fn an_override_beats_the_manifest_and_a_locked_policy_refuses_it() {
    let server = TestServer::start();
    let s = setup(&server);
    // The manifest points nowhere useful; the override points at the real server.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    point_manifests_at(&s, &server, dead);
    s.engine
        .set_server_override(Some("acme-studio"), Some(&server.addr.to_string()))
        .expect("override set");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Evaluation);
    assert_eq!(
        status.server.as_ref().map(|s| s.source),
        Some(ServerSource::Override)
    );

    std::fs::write(
        &s.policy,
        format!("[server]\naddress = \"{}\"\nlocked = true\n", server.addr),
    )
    .expect("policy");
    let err = s
        .engine
        .set_server_override(None, Some("127.0.0.1:9"))
        .expect_err("locked");
    assert!(matches!(err, EngineError::PolicyLocked(_)), "{err}");
    assert!(s.engine.set_server_override(None, Some("no-port")).is_err());
    let forced = s.engine.activate("acme-studio", Some(dead)).await;
    assert!(
        matches!(forced, Err(EngineError::PolicyLocked(_))),
        "a forced server obeys the lock too"
    );
    // The locked policy's server is the one used, whatever the user set before.
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        status.server.as_ref().map(|s| s.source),
        Some(ServerSource::Policy),
        "{status:?}"
    );
}

/// A list of silent servers cannot hold an activation past the exchange bound
/// (`DiscoveryConfig::exchange_timeout`): the first server is asked, the bound ends the
/// attempt while it is still silent, and the next one is never sent to.
#[tokio::test]
async fn silent_servers_cannot_hold_an_activation_past_the_exchange_bound() {
    let server = TestServer::start();
    let s = setup(&server);
    let first = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let second = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let (first_addr, second_addr) = (
        first.local_addr().expect("addr"),
        second.local_addr().expect("addr"),
    );
    point_manifests_at(&s, &server, second_addr);
    s.engine
        .set_server_override(Some("acme-studio"), Some(&first_addr.to_string()))
        .expect("override set");
    let mut config = s.engine.config().clone();
    // Shorter than one server's retries (2 × 300 ms).
    config.discovery.exchange_timeout = Duration::from_millis(200);
    let engine = Engine::new(config);
    let status = engine.activate("acme-studio", None).await.expect("runs");
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NoAnswer);
    let said: Vec<String> = attempt.diagnosis.iter().map(ToString::to_string).collect();
    assert!(
        said.iter().any(|t| t.contains(&first_addr.to_string())),
        "{said:?}"
    );
    assert!(
        !said.iter().any(|t| t.contains(&second_addr.to_string())),
        "{said:?}"
    );
    let mut buffer = [0u8; 2048];
    first.set_nonblocking(true).expect("nonblocking");
    second.set_nonblocking(true).expect("nonblocking");
    assert!(
        first.recv(&mut buffer).is_ok(),
        "the first server was asked"
    );
    assert!(
        second.recv(&mut buffer).is_err(),
        "a server after the bound was sent to"
    );
}

#[tokio::test]
async fn unknown_products_and_missing_keys_are_clear() {
    let server = TestServer::start();
    let s = setup(&server);
    assert!(matches!(
        s.engine.activate("nope", None).await,
        Err(EngineError::UnknownProduct(_))
    ));
    let status = s.engine.activate("acme-export", None).await.expect("runs");
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
    assert_eq!(attempt.diagnosis, [Cause::NoLicenseKey]);
    assert_eq!(
        attempt.diagnosis[0].to_string(),
        "no license key: enter one with `lapctl key set` or from the tray"
    );
}

#[tokio::test]
async fn the_scheduler_activates_what_is_due_and_warns_once_per_point() {
    let server = TestServer::start();
    let s = setup(&server);
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    s.engine
        .set_key("acme-export", &key(2).to_display())
        .expect("key");
    let now = s.clock.now();
    assert_eq!(
        s.engine.next_deadline().expect("deadline"),
        Some(now),
        "both are due at once"
    );
    let events = s.engine.tick().await.expect("tick");
    assert!(events.is_empty(), "{events:?}");
    let statuses = s.engine.status().expect("status");
    assert!(
        statuses.iter().all(|p| p.state == Phase::Activated),
        "{statuses:?}"
    );
    let end = statuses
        .iter()
        .find(|p| p.id == "acme-studio")
        .and_then(|p| p.not_after)
        .expect("term");

    // Next wake-up: the perpetual add-on's renewal, 30 days on (the profile's default when
    // the server names no RenewAfter and no NotAfter); the term's is later, halfway to its end.
    let deadline = s
        .engine
        .next_deadline()
        .expect("deadline")
        .expect("something is due");
    assert!(
        deadline.abs_diff(now + 30 * DAY) <= 5,
        "{deadline} vs {now}"
    );

    // 60 days before the end: one warning, and only once.
    s.clock.set(end - 60 * DAY);
    let warnings = s.engine.take_warnings().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        s.engine.take_warnings().expect("warnings").is_empty(),
        "at most once"
    );
    // Asleep until 2 days before: the latest point only.
    s.clock.set(end - 2 * DAY);
    let warnings = s.engine.take_warnings().expect("warnings");
    assert!(
        matches!(&warnings[..], [lapwing_core::scheduler::Event::Warning { label, .. }] if label.ends_with("/2d")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn a_renew_after_of_zero_days_never_renews_in_a_loop() {
    // RenewAfter = ServerTime in every answer.
    let server = TestServer::start_with("renew_after_days = 0\n");
    let s = setup(&server);
    let status = licensed(&s, "acme-studio", 1).await;
    assert_eq!(status.state, Phase::Activated, "not due again at once");
    let attempted_at = status.last_attempt.as_ref().map(|a| a.at);
    let renewal = s
        .engine
        .next_deadline()
        .expect("deadline")
        .expect("the renewal is due some time");
    assert!(
        renewal.abs_diff(s.clock.now() + MIN_RENEW_SECS) <= 5,
        "{renewal} vs {}",
        s.clock.now()
    );
    let saves = s.engine.state_store().saves();
    for _ in 0..3 {
        assert!(s.engine.tick().await.expect("tick").is_empty());
    }
    s.clock.set(renewal - 1);
    assert!(s.engine.tick().await.expect("tick").is_empty());
    assert_eq!(
        s.engine.state_store().saves(),
        saves,
        "nothing ran before the renewal"
    );
    let status = s.engine.status().expect("status");
    let studio = status
        .iter()
        .find(|p| p.id == "acme-studio")
        .expect("installed");
    assert_eq!(studio.last_attempt.as_ref().map(|a| a.at), attempted_at);
    assert_eq!(studio.state, Phase::Activated);
    s.clock.set(renewal);
    assert_eq!(s.engine.next_deadline().expect("deadline"), Some(renewal));
}

#[tokio::test]
async fn a_recovery_after_failures_is_announced() {
    let server = TestServer::start();
    let s = setup(&server);
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    point_manifests_at(&s, &server, dead);
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    let events = s.engine.tick().await.expect("tick");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(
        status.last_attempt.map(|a| a.outcome),
        Some(AttemptOutcome::NoAnswer)
    );
    assert!(
        events.is_empty(),
        "silence is retried, not announced yet: {events:?}"
    );
    // Pointing it at the right server makes it due at once (no wait for the backoff).
    s.engine
        .set_server_override(Some("acme-studio"), Some(&server.addr.to_string()))
        .expect("override");
    let events = s.engine.tick().await.expect("tick");
    assert!(
        events.iter().any(|e| matches!(e, lapwing_core::scheduler::Event::Recovered { product, .. } if product == "acme-studio")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_corrupt_state_file_is_set_aside_and_rebuilt_from_keyring_and_records() {
    let server = TestServer::start();
    let s = setup(&server);
    let base = licensed(&s, "acme-studio", 1).await;
    let addon = licensed(&s, "acme-export", 2).await;
    let path = s.engine.state_store().path();
    std::fs::write(&path, b"{\"schema\": 1, \"products\": {\"acme-stu").expect("corrupt it");

    let statuses = s.engine.status().expect("status still reads");
    let studio = statuses
        .iter()
        .find(|p| p.id == "acme-studio")
        .expect("studio");
    let export = statuses
        .iter()
        .find(|p| p.id == "acme-export")
        .expect("export");
    assert_eq!(
        (studio.state, studio.license_id),
        (Phase::Activated, base.license_id)
    );
    assert_eq!(
        (export.state, export.license_id),
        (Phase::Activated, addon.license_id)
    );
    assert!(studio.has_key && export.has_key, "from the keyring");
    assert_eq!(studio.not_after, base.not_after, "from the signed record");

    let kept: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the unreadable file is kept aside");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("rebuilt")).expect("JSON");
    assert!(
        state["recovered_from"]
            .as_str()
            .is_some_and(|p| p.contains("corrupt")),
        "{state}"
    );
    // And the rebuilt installation renews with its original ids: same LicenseId.
    let again = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("renews");
    assert_eq!(again.license_id, base.license_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_engine_picks_up_a_product_installed_meanwhile() {
    let server = TestServer::start();
    let s = setup(&server);
    std::fs::remove_file(s.products.join("acme-export.toml")).expect("remove");
    let (events, _received) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let engine = Arc::new(s.engine);
    let running = Arc::clone(&engine);
    let task =
        tokio::spawn(async move { running.run(events, async { drop(stopped.await) }).await });
    // The evaluation of the installed product starts at once.
    wait_for(&engine, "acme-studio", Phase::Evaluation).await;
    // A product installed while the engine runs is activated without a restart.
    std::fs::write(
        s.products.join("acme-solo.toml"),
        manifest(
            "acme-solo",
            BASE_SKU,
            &server.keys,
            &server.addr.to_string(),
            "evaluation_days = 30",
        ),
    )
    .expect("install");
    wait_for(&engine, "acme-solo", Phase::Evaluation).await;
    let _ = stop.send(());
    task.await.expect("joins").expect("runs cleanly");
}

async fn wait_for(engine: &Engine, id: &str, phase: Phase) {
    for _ in 0..100 {
        if let Ok(status) = engine.product_status(id)
            && status.state == phase
            && status
                .last_attempt
                .is_some_and(|a| a.outcome == AttemptOutcome::Activated)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} did not reach {phase:?} within 10 s");
}

#[tokio::test]
async fn a_clock_moved_back_is_reported() {
    let server = TestServer::start();
    let s = setup(&server);
    let status = licensed(&s, "acme-studio", 1).await;
    assert_eq!(status.clock_moved_back_by, None);
    // The latest time seen is recorded at each activation: a clock set an hour before it
    // has been moved back.
    s.clock.set(s.clock.now() - HOUR);
    let status = s.engine.product_status("acme-studio").expect("status");
    assert!(
        status.clock_moved_back_by.is_some_and(|back| back >= HOUR),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_batch_commits_mixed_outcomes_in_one_state_write() {
    let server = TestServer::start();
    let s = setup(&server);
    let address = server.addr.to_string();
    std::fs::write(
        s.products.join("acme-solo.toml"),
        manifest(
            "acme-solo",
            BASE_SKU,
            &server.keys,
            &address,
            "evaluation_days = 30",
        ),
    )
    .expect("install");
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    s.engine
        .set_key("acme-export", &key(2).to_display())
        .expect("key");
    let ids = ["acme-studio", "acme-export", "acme-solo", "nope"];
    let first = s
        .engine
        .activate_many(&ids, None)
        .await
        .expect("batch runs");
    assert!(
        matches!(&first[3], Err(EngineError::UnknownProduct(id)) if id == "nope"),
        "an unknown id fails alone: {first:?}"
    );
    let first: Vec<_> = first[..3]
        .iter()
        .map(|r| r.as_ref().expect("activated").clone())
        .collect();
    assert_eq!(
        first.iter().map(|p| p.state).collect::<Vec<_>>(),
        [Phase::Activated, Phase::Activated, Phase::Evaluation]
    );

    // Now one product answers, one gets answers that fail their checks (a damaged or forged
    // reply from what its manifest names), and one gets silence.
    let damaged = damaging_responder();
    let solo = s.products.join("acme-solo.toml");
    let text = std::fs::read_to_string(&solo)
        .expect("read")
        .replace(&address, &damaged.to_string());
    std::fs::write(&solo, text).expect("write");
    let dead = std::net::UdpSocket::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let export = s.products.join("acme-export.toml");
    let text = std::fs::read_to_string(&export)
        .expect("read")
        .replace(&address, &dead.to_string());
    std::fs::write(&export, text).expect("write");

    let inode_before = inode(&s.engine.state_store().path());
    let saves_before = s.engine.state_store().saves();
    let second = s
        .engine
        .activate_many(&ids[..3], None)
        .await
        .expect("batch runs");
    assert_eq!(
        s.engine.state_store().saves() - saves_before,
        1,
        "one state write for the whole batch"
    );
    assert_ne!(inode(&s.engine.state_store().path()), inode_before);
    let second: Vec<_> = second
        .into_iter()
        .map(|r| r.expect("each product has a status"))
        .collect();

    let outcome =
        |p: &lapwing_core::engine::ProductStatus| p.last_attempt.as_ref().map(|a| a.outcome);
    assert_eq!(outcome(&second[0]), Some(AttemptOutcome::Activated));
    assert_eq!(second[0].license_id, first[0].license_id);
    assert_eq!(outcome(&second[1]), Some(AttemptOutcome::NoAnswer));
    assert_eq!(outcome(&second[2]), Some(AttemptOutcome::RejectedAnswer));
    let rejected = second[2].last_attempt.as_ref().expect("recorded");
    assert!(
        matches!(&rejected.diagnosis[0], Cause::DatagramsRejected { count, .. } if *count > 0),
        "{:?}",
        rejected.diagnosis
    );
    assert!(
        rejected.diagnosis[0]
            .to_string()
            .contains("failed their checks")
    );
    // The failing ones keep their previous grants and back off.
    for (before, after) in first[1..].iter().zip(&second[1..]) {
        assert_eq!(after.state, before.state, "{after:?}");
        assert_eq!(after.license_id, before.license_id);
        assert_eq!(after.not_after, before.not_after);
        assert_eq!(after.next_attempt_at, Some(s.clock.now() + 15 * MINUTE));
    }
    // What the batch returned is what was committed.
    let stored = s.engine.status().expect("status");
    for returned in &second {
        assert_eq!(
            stored.iter().find(|p| p.id == returned.id),
            Some(returned),
            "{returned:?}"
        );
    }
    // The failing products' records still hold their previous activations.
    let data = &s.engine.config().data_dir;
    for (id, before) in [("acme-export", &first[1]), ("acme-solo", &first[2])] {
        let record = lap_proto::ActivationRecord::from_json(
            &std::fs::read_to_string(data.join(format!("activations/{id}.json")))
                .expect("record kept"),
        )
        .expect("parses");
        assert_eq!(Some(record.license_id), before.license_id, "{id}");
    }

    // A single renewal is the same path: one state write too (the clock moves within the
    // server's 30 s tolerance, so the state has something new to say).
    s.clock.advance(10);
    let saves_before = s.engine.state_store().saves();
    let again = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("renews");
    assert_eq!(outcome(&again), Some(AttemptOutcome::Activated));
    assert_eq!(s.engine.state_store().saves() - saves_before, 1);
}

/// A UDP responder that answers every datagram with bytes that open under no key, for a few
/// seconds: answers that fail their checks.
fn damaging_responder() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            let _ = socket.send_to(&vec![0x5a; len.min(200)], from);
        }
    });
    addr
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).expect("state file").ino()
}

#[cfg(not(unix))]
fn inode(path: &Path) -> u64 {
    // No inode here: the length stands in (it changes with the attempts recorded).
    std::fs::metadata(path).expect("state file").len()
}

/// `[evaluation] allowed = false`: nothing is sent without a key, no evaluation starts (not
/// even in the keyring), the status is unlicensed with the administrator's reason, said once.
#[tokio::test]
async fn a_policy_without_evaluations_starts_none_and_says_why() {
    use lapwing_core::scheduler::Event;
    let server = TestServer::start();
    let s = setup(&server);
    std::fs::write(&s.policy, "[evaluation]\nallowed = false\n").expect("policy");
    let received = || {
        server
            .serving
            .server()
            .stats
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(status.state, Phase::Unlicensed, "no evaluation on offer");
    let events = s.engine.tick().await.expect("tick");
    assert!(
        matches!(&events[..], [Event::NeedsAttention { product, cause, .. }]
            if product == "acme-studio" && *cause == Cause::EvaluationDisabled),
        "{events:?}"
    );
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(status.state, Phase::Unlicensed);
    let attempt = status.last_attempt.expect("the reason is recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
    assert_eq!(attempt.diagnosis, [Cause::EvaluationDisabled]);
    assert_eq!(
        attempt.diagnosis[0].to_string(),
        "evaluation disabled by the administrator (machine policy): enter a license key"
    );
    assert_eq!(received(), 0, "nothing sent");
    assert_eq!(
        s.secrets
            .get_evaluation_start("acme-studio")
            .expect("keyring"),
        None,
        "the evaluation never started"
    );
    // Said once: nothing is due until a key is entered.
    assert_eq!(s.engine.next_deadline().expect("deadline"), None);
    assert!(s.engine.tick().await.expect("tick").is_empty());
    assert_eq!(received(), 0);

    // A key still activates.
    let status = licensed(&s, "acme-studio", 1).await;
    assert_eq!(status.state, Phase::Activated, "{status:?}");
}

/// An evaluation already running when the policy forbids them no longer counts, and its end
/// is not warned about.
#[tokio::test]
async fn a_running_evaluation_stops_counting_under_the_policy() {
    let server = TestServer::start();
    let s = setup(&server);
    let status = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("evaluation");
    assert_eq!(status.state, Phase::Evaluation);
    std::fs::write(&s.policy, "[evaluation]\nallowed = false\n").expect("policy");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(status.state, Phase::Unlicensed, "{status:?}");
    s.clock.advance(29 * DAY);
    assert!(s.engine.take_warnings().expect("warnings").is_empty());
    // Allowed again: the same evaluation (never restarted), one day left, warned about.
    std::fs::remove_file(&s.policy).expect("policy");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(
        (status.state, status.days_left),
        (Phase::Evaluation, Some(1))
    );
    assert_eq!(s.engine.take_warnings().expect("warnings").len(), 1);
}

/// `[notifications]`: `warnings = false` silences the §8 warnings (not marked shown, so the
/// latest comes when they are back on); `enabled = false` silences every event.
#[tokio::test]
async fn the_notification_policy_silences_warnings_and_events() {
    let server = TestServer::start();
    let s = setup(&server);
    let status = licensed(&s, "acme-studio", 1).await;
    let end = status.not_after.expect("a term");

    std::fs::write(&s.policy, "[notifications]\nwarnings = false\n").expect("policy");
    s.clock.set(end - 60 * DAY);
    assert!(s.engine.take_warnings().expect("warnings").is_empty());
    std::fs::remove_file(&s.policy).expect("policy");
    let warnings = s.engine.take_warnings().expect("warnings");
    assert_eq!(warnings.len(), 1, "back on: shown once: {warnings:?}");

    std::fs::write(&s.policy, "[notifications]\nenabled = false\n").expect("policy");
    s.clock.set(end - 2 * DAY);
    assert!(s.engine.take_warnings().expect("warnings").is_empty());
    // A product that needs the person (no key, no evaluation) gives no event either; its
    // status still says why.
    std::fs::write(
        &s.policy,
        "[notifications]\nenabled = false\n[evaluation]\nallowed = false\n",
    )
    .expect("policy");
    s.engine.remove_key("acme-studio").expect("remove key");
    let events = s.engine.tick().await.expect("tick");
    assert!(events.is_empty(), "{events:?}");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(
        status.last_attempt.map(|a| a.diagnosis),
        Some(vec![Cause::EvaluationDisabled])
    );
}

/// The all-zero key is what an evaluation sends in place of a key: neither `set_key` nor a
/// zero key written into the keyring behind the engine's back may get past `[evaluation]
/// allowed = false`.
#[tokio::test]
async fn the_all_zero_key_never_bypasses_a_policy_without_evaluations() {
    let server = TestServer::start();
    let s = setup(&server);
    std::fs::write(&s.policy, "[evaluation]\nallowed = false\n").expect("policy");
    let received = || {
        server
            .serving
            .server()
            .stats
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    };

    let refused = s
        .engine
        .set_key("acme-studio", "0000-0000-0000-0000-0000-0000-0001")
        .expect_err("the all-zero key is refused");
    assert!(
        matches!(
            refused,
            lapwing_core::engine::EngineError::Key(lap_proto::LicenseKeyError::AllZero)
        ),
        "{refused:?}"
    );
    assert!(
        s.secrets
            .get_license_key("acme-studio")
            .expect("keyring")
            .is_none(),
        "nothing stored"
    );

    // Whatever writes the keyring, the zero key counts as no key.
    s.secrets
        .set_license_key("acme-studio", &[0; 16])
        .expect("keyring");
    assert!(s.engine.key("acme-studio").expect("key").is_none());
    s.engine.tick().await.expect("tick");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(status.state, Phase::Unlicensed);
    assert!(!status.has_key);
    let attempt = status.last_attempt.expect("the reason is recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
    assert_eq!(received(), 0, "nothing sent");
}

/// The client ids the state holds for `id`: (ClientBaseId, ClientAddOnId).
fn client_ids(s: &Setup, id: &str) -> Option<(Uuid, Uuid)> {
    let store = s.engine.state_store();
    let lock = store.lock().expect("lock");
    let (state, _) = store.load(&lock).expect("state");
    state
        .products
        .get(id)
        .map(|p| (p.client_base_id, p.client_addon_id))
}

/// The client ids the keyring holds for `id`.
fn kept_ids(s: &Setup, id: &str) -> Option<(Uuid, Uuid)> {
    s.secrets
        .get_client_ids(id)
        .expect("keyring")
        .map(|ids| (Uuid::from_bytes(ids.base), Uuid::from_bytes(ids.addon)))
}

/// The `client_id` of `id`'s activation record, verified with the server's key.
fn record_client_id(s: &Setup, server: &TestServer, id: &str, sku: Uuid) -> Uuid {
    let path = s
        .engine
        .config()
        .data_dir
        .join(format!("activations/{id}.json"));
    let record = lap_proto::ActivationRecord::from_json(
        &std::fs::read_to_string(path).expect("record written"),
    )
    .expect("record parses");
    record
        .verify(sku, server.keys.public().ed25519_bytes())
        .expect("verifies")
        .response
        .client_id
}

/// (ClientBaseId, ClientAddOnId, SKU) of one request as the server opened it.
type SeenIds = (Uuid, Uuid, Uuid);

/// A UDP relay in front of `lapd` that opens every request with the server's secret keys,
/// notes the ids it carries, and passes it on (and the answer back): what went on the wire.
fn recording_relay(server: &TestServer) -> (SocketAddr, Arc<std::sync::Mutex<Vec<SeenIds>>>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let upstream = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    upstream.connect(server.addr).expect("connect");
    upstream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let addr = socket.local_addr().expect("addr");
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let noted = Arc::clone(&seen);
    let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        let mut answer = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            if let Ok((request, _)) = lap_proto::open_request(&keys, &buffer[..len]) {
                noted.lock().expect("lock").push((
                    request.client_base_id,
                    request.client_addon_id,
                    request.sku_id,
                ));
            }
            if upstream.send(&buffer[..len]).is_ok()
                && let Ok(n) = upstream.recv(&mut answer)
            {
                let _ = socket.send_to(&answer[..n], from);
            }
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn an_add_on_sends_its_base_s_client_base_id_and_its_own_add_on_id() {
    let server = TestServer::start();
    let s = setup(&server);
    let (relay, seen) = recording_relay(&server);
    point_manifests_at(&s, &server, relay);
    let base = licensed(&s, "acme-studio", 1).await;
    let addon = licensed(&s, "acme-export", 2).await;
    assert_eq!(
        (base.state, addon.state),
        (Phase::Activated, Phase::Activated)
    );

    let (base_id, base_addon_id) = client_ids(&s, "acme-studio").expect("provisioned");
    let (addon_base_id, addon_id) = client_ids(&s, "acme-export").expect("provisioned");
    assert!(!base_id.is_nil());
    assert!(base_addon_id.is_nil(), "a base product's add-on id is nil");
    assert_eq!(
        addon_base_id, base_id,
        "the add-on names its base installation"
    );
    assert!(!addon_id.is_nil() && addon_id != base_id);
    let seen = seen.lock().expect("lock").clone();
    assert!(seen.contains(&(base_id, Uuid::nil(), BASE_SKU)), "{seen:?}");
    assert!(seen.contains(&(base_id, addon_id, ADDON_SKU)), "{seen:?}");
    assert!(
        seen.iter().all(|(b, _, _)| *b == base_id),
        "no other base id ever sent: {seen:?}"
    );
    // The server answered for exactly those ids, and the keyring keeps them.
    assert_eq!(
        record_client_id(&s, &server, "acme-export", ADDON_SKU),
        addon_id
    );
    assert_eq!(
        record_client_id(&s, &server, "acme-studio", BASE_SKU),
        base_id
    );
    assert_eq!(kept_ids(&s, "acme-studio"), Some((base_id, Uuid::nil())));
    assert_eq!(kept_ids(&s, "acme-export"), Some((base_id, addon_id)));
}

#[tokio::test]
async fn an_add_on_activated_before_its_base_provisions_the_base_too() {
    let server = TestServer::start();
    let s = setup(&server);
    let addon = licensed(&s, "acme-export", 2).await;
    assert_eq!(addon.state, Phase::Activated);
    let (addon_base_id, addon_id) = client_ids(&s, "acme-export").expect("provisioned");
    let (base_id, _) = client_ids(&s, "acme-studio").expect("the base was provisioned with it");
    assert_eq!(addon_base_id, base_id);
    assert!(!addon_id.is_nil());
    // The base, activated later, sends the id its add-on already carries.
    let base = licensed(&s, "acme-studio", 1).await;
    assert_eq!(base.state, Phase::Activated);
    assert_eq!(client_ids(&s, "acme-studio"), Some((base_id, Uuid::nil())));
    assert_eq!(
        record_client_id(&s, &server, "acme-studio", BASE_SKU),
        base_id
    );
}

#[tokio::test]
async fn an_add_on_whose_base_is_not_installed_waits_for_it_with_a_clear_cause() {
    let server = TestServer::start();
    let s = setup(&server);
    let base_manifest = s.products.join("acme-studio.toml");
    let text = std::fs::read_to_string(&base_manifest).expect("read");
    std::fs::remove_file(&base_manifest).expect("uninstall the base");

    let refused = s.engine.set_key("acme-export", &key(2).to_display());
    assert!(
        matches!(&refused, Err(EngineError::BaseNotInstalled { addon, base })
            if addon == "acme-export" && base == "acme-studio"),
        "{refused:?}"
    );
    let refused = s.engine.activate("acme-export", None).await;
    assert!(
        matches!(refused, Err(EngineError::BaseNotInstalled { .. })),
        "{refused:?}"
    );
    assert_eq!(client_ids(&s, "acme-export"), None, "nothing provisioned");
    assert_eq!(kept_ids(&s, "acme-export"), None);

    std::fs::write(&base_manifest, text).expect("install the base");
    let addon = licensed(&s, "acme-export", 2).await;
    assert_eq!(addon.state, Phase::Activated);
    let (base_id, _) = client_ids(&s, "acme-studio").expect("base provisioned");
    assert_eq!(
        client_ids(&s, "acme-export").map(|ids| ids.0),
        Some(base_id)
    );
}

#[tokio::test]
async fn forgetting_the_base_leaves_the_add_on_its_ids_and_the_base_takes_them_back() {
    let server = TestServer::start();
    let s = setup(&server);
    licensed(&s, "acme-studio", 1).await;
    let addon = licensed(&s, "acme-export", 2).await;
    let before = client_ids(&s, "acme-export").expect("provisioned");

    s.engine.forget("acme-studio").expect("forget the base");
    assert_eq!(client_ids(&s, "acme-studio"), None);
    assert_eq!(kept_ids(&s, "acme-studio"), None, "its keyring items went");
    assert_eq!(client_ids(&s, "acme-export"), Some(before));
    let again = s
        .engine
        .activate("acme-export", None)
        .await
        .expect("renews");
    assert_eq!(again.license_id, addon.license_id);
    assert_eq!(client_ids(&s, "acme-export"), Some(before), "ids static");

    // The base provisioned again rejoins its add-on rather than drawing a new id.
    let base = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("evaluation");
    assert_eq!(base.state, Phase::Evaluation);
    assert_eq!(client_ids(&s, "acme-studio"), Some((before.0, Uuid::nil())));
}

/// Makes the installation look like one provisioned before the keyring kept client ids: the
/// keyring has none, the state does not claim it has.
fn as_an_older_installation(s: &Setup) {
    for id in ["acme-studio", "acme-export"] {
        s.secrets
            .delete(id, lapwing_secrets::SecretItem::ClientIds)
            .expect("delete");
    }
    let path = s.engine.state_store().path();
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    for product in state["products"]
        .as_object_mut()
        .expect("products")
        .values_mut()
    {
        product
            .as_object_mut()
            .expect("product")
            .remove("client_ids_in_keyring");
    }
    std::fs::write(&path, state.to_string()).expect("write");
}

#[tokio::test]
async fn a_deleted_state_file_mints_no_new_client_ids() {
    let server = TestServer::start();
    let s = setup(&server);
    let base = licensed(&s, "acme-studio", 1).await;
    let addon = licensed(&s, "acme-export", 2).await;
    let base_ids = client_ids(&s, "acme-studio").expect("provisioned");
    let addon_ids = client_ids(&s, "acme-export").expect("provisioned");

    // An installation from before the keyring kept the ids gets them there on its next
    // provisioning, and from then on a lost state file costs nothing.
    as_an_older_installation(&s);
    s.engine
        .activate_many(&["acme-studio", "acme-export"], None)
        .await
        .expect("renews");
    assert_eq!(kept_ids(&s, "acme-studio"), Some(base_ids));
    assert_eq!(kept_ids(&s, "acme-export"), Some(addon_ids));

    std::fs::remove_file(s.engine.state_store().path()).expect("lose the state");
    let again = s
        .engine
        .activate_many(&["acme-export", "acme-studio"], None)
        .await
        .expect("activates");
    assert_eq!(client_ids(&s, "acme-studio"), Some(base_ids));
    assert_eq!(client_ids(&s, "acme-export"), Some(addon_ids));
    let license_ids: Vec<_> = again
        .into_iter()
        .map(|r| r.expect("activated").license_id)
        .collect();
    assert_eq!(license_ids, [addon.license_id, base.license_id]);
}

#[tokio::test]
async fn a_rebuilt_state_recovers_the_client_ids_from_the_records_when_the_keyring_has_none() {
    let server = TestServer::start();
    let s = setup(&server);
    let base = licensed(&s, "acme-studio", 1).await;
    licensed(&s, "acme-export", 2).await;
    let base_ids = client_ids(&s, "acme-studio").expect("provisioned");
    let addon_ids = client_ids(&s, "acme-export").expect("provisioned");

    as_an_older_installation(&s);
    let path = s.engine.state_store().path();
    std::fs::write(&path, b"{\"schema\": 1, \"produ").expect("corrupt it");
    s.engine.status().expect("rebuilt");
    assert_eq!(
        client_ids(&s, "acme-studio"),
        Some(base_ids),
        "base's record"
    );
    assert_eq!(
        client_ids(&s, "acme-export"),
        Some(addon_ids),
        "the add-on's record for its own id, its base for the base id"
    );
    assert_eq!(
        kept_ids(&s, "acme-export"),
        Some(addon_ids),
        "kept from now on"
    );
    let again = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("renews");
    assert_eq!(again.license_id, base.license_id);
    assert_eq!(client_ids(&s, "acme-studio"), Some(base_ids));
}

/// How many datagrams `server` has received.
fn received_by(server: &TestServer) -> u64 {
    server
        .serving
        .server()
        .stats
        .received
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// The stored key is bound to the server key it was entered for: a manifest replaced with
/// another server key gets nothing sent, says why, is not retried on its own, and activates
/// once the key is entered again.
#[tokio::test]
async fn a_changed_server_key_sends_nothing_until_the_key_is_entered_again() {
    let server = TestServer::start();
    let s = setup(&server);
    let status = licensed(&s, "acme-studio", 1).await;
    assert_eq!(status.state, Phase::Activated, "{status:?}");
    assert_eq!(
        s.secrets
            .get_license_key_server("acme-studio")
            .expect("keyring")
            .map(|bound| *bound),
        Some(*server.keys.public().ed25519_bytes()),
        "bound at set_key"
    );

    // The manifest is replaced: same product, another server (its own keys).
    let other = TestServer::start_keyed("", 0x51);
    std::fs::write(
        s.products.join("acme-studio.toml"),
        manifest(
            "acme-studio",
            BASE_SKU,
            &other.keys,
            &other.addr.to_string(),
            "evaluation_days = 30",
        ),
    )
    .expect("write");
    let (before, before_other) = (received_by(&server), received_by(&other));
    let status = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("the attempt runs");
    let attempt = status.last_attempt.expect("the reason is recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NotSent);
    assert_eq!(attempt.diagnosis, [Cause::ServerKeyChanged]);
    assert_eq!(attempt.diagnosis[0].code(), "server-key-changed");
    assert_eq!(
        (received_by(&server), received_by(&other)),
        (before, before_other),
        "no datagram reaches any server"
    );
    // Not retried on its own, even when a renewal is due: only the person can confirm.
    let today = s.clock.now();
    s.clock.advance(400 * DAY);
    s.engine.tick().await.expect("tick");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(
        status.last_attempt.map(|a| a.at),
        Some(attempt.at),
        "not attempted again"
    );
    assert_eq!(
        (received_by(&server), received_by(&other)),
        (before, before_other)
    );

    // Entering the key again confirms the new server (back at lapd's time: it ignores
    // requests too far from it).
    s.clock.set(today);
    let status = licensed(&s, "acme-studio", 1).await;
    assert_eq!(status.state, Phase::Activated, "{status:?}");
    assert!(received_by(&other) > before_other, "sent once confirmed");
    assert_eq!(
        s.secrets
            .get_license_key_server("acme-studio")
            .expect("keyring")
            .map(|bound| *bound),
        Some(*other.keys.public().ed25519_bytes()),
        "bound to the new server key"
    );
}

/// A key stored before keys were bound still activates, and is bound afterwards.
#[tokio::test]
async fn a_key_stored_unbound_activates_and_is_bound_then() {
    let server = TestServer::start();
    let s = setup(&server);
    s.secrets
        .set_license_key("acme-studio", key(1).as_bytes())
        .expect("an older Lapwing stored the key");
    assert_eq!(
        s.secrets
            .get_license_key_server("acme-studio")
            .expect("keyring"),
        None
    );
    let status = s
        .engine
        .activate("acme-studio", None)
        .await
        .expect("activates");
    assert_eq!(status.state, Phase::Activated, "{status:?}");
    assert_eq!(
        s.secrets
            .get_license_key_server("acme-studio")
            .expect("keyring")
            .map(|bound| *bound),
        Some(*server.keys.public().ed25519_bytes())
    );
}

/// A UDP socket that receives and never answers: a server that is silent, not refused.
fn silent_server() -> (std::net::UdpSocket, SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = socket.local_addr().expect("addr");
    (socket, address)
}

fn codes(status: &lapwing_core::engine::ProductStatus) -> Vec<&'static str> {
    status
        .last_attempt
        .as_ref()
        .map(|a| a.diagnosis.iter().map(Cause::code).collect())
        .unwrap_or_default()
}

/// Nothing listens at the manifest's address: the machine says so (ICMP port unreachable),
/// and that is named first, before any guess about the key.
#[tokio::test]
async fn a_port_that_refuses_is_named_first() {
    let server = TestServer::start();
    let s = setup(&server);
    let closed = silent_server().1; // the socket is closed again at once
    point_manifests_at(&s, &server, closed);
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        codes(&status).first(),
        Some(&"server-refused"),
        "{:?}",
        status.last_attempt
    );
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(
        attempt.diagnosis[0].to_string(),
        format!(
            "nothing listens at {closed}: the server is not running there (its machine refused the request)"
        )
    );
    assert!(
        !codes_of(&attempt.diagnosis).contains(&"key-may-be-refused"),
        "a request no server received cannot have had its key refused: {:?}",
        attempt.diagnosis
    );
}

fn codes_of(diagnosis: &[Cause]) -> Vec<&'static str> {
    diagnosis.iter().map(Cause::code).collect()
}

/// A key the server accepted is not the first suspect when the server falls silent later;
/// a key entered since is.
#[tokio::test]
async fn a_key_changed_before_silence_is_named_first_an_accepted_one_is_not() {
    let server = TestServer::start();
    let s = setup(&server);
    let activated = licensed(&s, "acme-studio", 1).await;
    assert_eq!(activated.state, Phase::Activated);
    let (_silent, silent_addr) = silent_server();
    point_manifests_at(&s, &server, silent_addr);
    s.clock.advance(DAY);
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        codes(&status),
        ["unreachable", "key-may-be-refused", "clock-not-checked"],
        "the key was accepted: the silence is more likely the network's"
    );
    s.clock.advance(MINUTE);
    s.engine
        .set_key("acme-studio", &key(9).to_display())
        .expect("well-formed key");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    // The grant still works, so the new key is kept pending and tried first: its try names
    // the key first; the key in effect's renewal still blames the network.
    let pending_try = status
        .pending_key
        .as_ref()
        .and_then(|p| p.last_try.as_ref())
        .expect("the new key was tried");
    assert_eq!(
        codes_of(&pending_try.diagnosis),
        ["key-may-be-refused", "unreachable"],
        "a key entered just before the silence is the first suspect (the clock is checked \
         once, for the attempt of the key in effect)"
    );
    assert_eq!(
        codes(&status),
        ["unreachable", "key-may-be-refused", "clock-not-checked"]
    );
    // With no working grant left, the new key is simply the key, and still the first suspect.
    s.clock.advance(400 * DAY);
    s.engine
        .set_key("acme-studio", &key(9).to_display())
        .expect("well-formed key");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert!(status.pending_key.is_none(), "{:?}", status.pending_key);
    assert_eq!(
        codes(&status),
        ["key-may-be-refused", "unreachable", "clock-not-checked"],
        "a key entered just before the silence is the first suspect"
    );
}

/// An override that does not answer is said, also when the product's own server then
/// activates it (the default policy falls back).
#[tokio::test]
async fn a_silent_override_is_reported_when_another_server_activates() {
    let server = TestServer::start();
    let s = setup(&server);
    let (_silent, silent_addr) = silent_server();
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    s.engine
        .set_server_override(Some("acme-studio"), Some(&silent_addr.to_string()))
        .expect("override set");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Activated);
    assert_eq!(
        status.server,
        Some(lapwing_core::state::ServerUsed {
            address: server.addr.to_string(),
            source: ServerSource::Manifest,
        }),
        "the status names the server that answered and how it was found"
    );
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::Activated);
    assert_eq!(
        attempt.diagnosis,
        [Cause::OverrideSilent {
            address: silent_addr.to_string()
        }]
    );
}

/// With the machine policy's fallback off, a silent override ends the attempt: no other
/// server is asked, and the override is named first.
#[tokio::test]
async fn without_fallback_a_silent_override_fails_the_attempt_and_is_named_first() {
    let server = TestServer::start();
    let s = setup(&server);
    std::fs::write(
        &s.policy,
        "[server]\nfallback_when_override_silent = false\n",
    )
    .expect("policy");
    let (_silent, silent_addr) = silent_server();
    s.engine
        .set_key("acme-studio", &key(1).to_display())
        .expect("key");
    s.engine
        .set_server_override(Some("acme-studio"), Some(&silent_addr.to_string()))
        .expect("override set");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(
        status.state,
        Phase::Unlicensed,
        "the manifest's server was not asked"
    );
    let attempt = status.last_attempt.expect("recorded");
    assert_eq!(attempt.outcome, AttemptOutcome::NoAnswer);
    assert_eq!(
        codes_of(&attempt.diagnosis),
        [
            "override-silent",
            "key-may-be-refused",
            "unreachable",
            "clock-not-checked"
        ]
    );
    assert_eq!(
        attempt.diagnosis[2],
        Cause::Unreachable {
            tried: vec![lapwing_core::state::ServerUsed {
                address: silent_addr.to_string(),
                source: ServerSource::Override,
            }]
        },
        "the override alone was asked"
    );
}

/// The keyring's license key and pending key for `id`, as displayed keys.
fn stored_keys(s: &Setup, id: &str) -> (Option<String>, Option<String>) {
    let show = |k: Option<lapwing_secrets::Secret<[u8; 16]>>| {
        k.map(|k| lap_proto::LicenseKey::from_bytes(*k).to_display())
    };
    (
        show(s.secrets.get_license_key(id).expect("keyring")),
        show(s.secrets.get_pending_license_key(id).expect("keyring")),
    )
}

#[tokio::test]
async fn a_key_the_server_ignores_stays_pending_and_the_working_key_keeps_renewing() {
    let server = TestServer::start();
    let s = setup(&server);
    let first = licensed(&s, "acme-studio", 1).await;
    assert_eq!(first.state, Phase::Activated);
    // Key 2 is the add-on's: another product's key, which the server drops without a word.
    let stored = s
        .engine
        .set_key("acme-studio", &key(2).to_display())
        .expect("well-formed key");
    assert_eq!(stored, KeyStored::Pending);
    assert_eq!(
        stored_keys(&s, "acme-studio"),
        (Some(key(1).to_display()), Some(key(2).to_display())),
        "the working key stays the key"
    );
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Activated);
    assert_eq!(
        status.license_id, first.license_id,
        "the grant is the old key's"
    );
    assert_eq!(
        status.last_attempt.as_ref().map(|a| a.outcome),
        Some(AttemptOutcome::Activated),
        "the stored key renewed"
    );
    let pending = status.pending_key.as_ref().expect("reported as pending");
    let last_try = pending.last_try.as_ref().expect("tried");
    assert_eq!(last_try.outcome, AttemptOutcome::NoAnswer);
    assert_eq!(last_try.diagnosis, [Cause::KeyMayBeRefused]);
    let note = status.pending_key_note().expect("a note");
    assert!(
        note.contains("not accepted yet") && note.contains("another product"),
        "{note}"
    );
    assert_eq!(stored_keys(&s, "acme-studio").0, Some(key(1).to_display()));
    let state = std::fs::read_to_string(
        s.engine
            .config()
            .data_dir
            .join(lapwing_core::state::STATE_FILE),
    )
    .expect("state");
    assert!(state.contains("pending_key"), "{state}");
    assert!(
        !state.contains(&key(2).to_display()) && !state.contains(&hex::encode(key(2).as_bytes())),
        "the pending key never reaches the state file"
    );

    // The next renewal tries the new key again, and the old key still renews.
    s.clock.advance(20);
    let renewed = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(renewed.state, Phase::Activated);
    let attempt = renewed.last_attempt.as_ref().expect("recorded");
    assert_eq!(
        (attempt.outcome, attempt.at),
        (AttemptOutcome::Activated, s.clock.now())
    );
    assert_eq!(renewed.license_id, first.license_id);
    let retried = renewed
        .pending_key
        .as_ref()
        .and_then(|p| p.last_try.as_ref());
    assert_eq!(retried.map(|t| t.at), Some(s.clock.now()), "tried again");
    assert_eq!(
        stored_keys(&s, "acme-studio"),
        (Some(key(1).to_display()), Some(key(2).to_display()))
    );
}

#[tokio::test]
async fn a_pending_key_the_server_accepts_becomes_the_key() {
    let second = key(3).to_display();
    let server = TestServer::start_with(&format!(
        "[[license]]\nkey = \"{second}\"\nsku = \"{BASE_SKU}\"\nkind = \"perpetual\"\nseats = 2\n"
    ));
    let s = setup(&server);
    let first = licensed(&s, "acme-studio", 1).await;
    assert_eq!(first.state, Phase::Activated);
    let stored = s.engine.set_key("acme-studio", &second).expect("stored");
    assert_eq!(
        stored,
        KeyStored::Pending,
        "tried before it replaces the key"
    );
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.state, Phase::Activated);
    assert_eq!(status.pending_key, None);
    assert_ne!(status.license_id, first.license_id, "the new key's license");
    assert_eq!(status.not_after, None, "perpetual");
    assert_eq!(stored_keys(&s, "acme-studio"), (Some(second), None));
}

#[tokio::test]
async fn a_pending_key_can_be_dropped_and_without_a_working_grant_a_key_simply_replaces() {
    let server = TestServer::start();
    let s = setup(&server);
    // No grant yet: the key entered is the key, whatever the server will say.
    assert_eq!(
        s.engine
            .set_key("acme-studio", &key(2).to_display())
            .expect("stored"),
        KeyStored::Key
    );
    assert_eq!(
        s.engine
            .set_key("acme-studio", &key(1).to_display())
            .expect("stored"),
        KeyStored::Key
    );
    let first = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(first.state, Phase::Activated);
    s.engine
        .set_key("acme-studio", &key(2).to_display())
        .expect("stored");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert!(status.pending_key.is_some());
    assert!(
        status
            .pending_key_note()
            .is_some_and(|n| n.contains("not tried yet")),
        "{:?}",
        status.pending_key_note()
    );
    s.engine.drop_pending_key("acme-studio").expect("dropped");
    let status = s.engine.product_status("acme-studio").expect("status");
    assert_eq!(status.pending_key, None);
    assert_eq!(status.license_id, first.license_id);
    assert_eq!(
        stored_keys(&s, "acme-studio"),
        (Some(key(1).to_display()), None)
    );
    // A pending key the keyring no longer holds (promoted by an attempt whose commit failed,
    // or dropped by another Lapwing) is not reported after the next attempt.
    s.engine
        .set_key("acme-studio", &key(2).to_display())
        .expect("stored");
    s.secrets
        .delete(
            "acme-studio",
            lapwing_secrets::SecretItem::PendingLicenseKey,
        )
        .expect("deleted");
    let status = s.engine.activate("acme-studio", None).await.expect("runs");
    assert_eq!(status.pending_key, None);
    assert_eq!(status.license_id, first.license_id);
    // Entering the working key again also drops a pending one.
    s.engine
        .set_key("acme-studio", &key(2).to_display())
        .expect("stored");
    assert_eq!(
        s.engine
            .set_key("acme-studio", &key(1).to_display())
            .expect("stored"),
        KeyStored::Key
    );
    assert_eq!(
        stored_keys(&s, "acme-studio"),
        (Some(key(1).to_display()), None)
    );
}
