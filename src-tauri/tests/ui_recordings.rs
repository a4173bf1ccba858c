//! The answers the UI's browser tests replay (`ui/tests/browser/recorded/commands.json`),
//! made by the real code: `check_key`, `check_server`, `server_info` and `set_server` through
//! the command layer on Tauri's mock runtime, the status lines through `StatusView` (the tray's
//! wording), the masked key through `LicenseKey::masked`, as `key_masked` does. The browser
//! tests' fake backend looks answers up there and computes none of its own, so it cannot drift
//! from Rust.
//!
//! The Server window's answers come from real discovery: real manifests, a real machine policy
//! file, and a real DNS server (`dnsmasq`) that knows only the records below, all at
//! documentation addresses, so the answers are the same on every machine.
//!
//! Without `LAPWING_RECORD=1` this test fails when the committed file differs from what the
//! code answers now; with it, it rewrites the file.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lap_proto::test_util::key;
use lap_proto::{LicenseKey, LicenseKind, ServerSecretKeys, Uuid};
use lapwing::publish::StatusView;
use lapwing_core::cause::Cause;
use lapwing_core::clock::FakeClock;
use lapwing_core::engine::{Deactivation, Engine, EngineConfig, ProductStatus};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::state::{Attempt, AttemptOutcome, PendingKey, ServerSource, ServerUsed};
use lapwing_core::status::Phase;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_discovery::test_util::Dnsmasq;
use lapwing_discovery::{DiscoveryConfig, DnsConfig};
use lapwing_secrets::{MemoryStore, SecretStore};
use serde::Serialize;
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

const REGENERATE: &str = "LAPWING_RECORD=1 cargo test -p lapwing --test ui_recordings";

/// "Now" in the browser tests (fixtures.mjs): 25 Nov 2026, 12:00 UTC.
const NOW: u64 = 1_795_608_000;
const DAY: u64 = 86_400;
/// 12 Mar 2027, 12:00 UTC: when Acme Studio's license ends in the fixtures.
const MARCH_12_2027: u64 = 1_804_852_800;
/// How long an activation in the fake backend grants.
const GRANTED_DAYS: u64 = 120;

fn recording_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/tests/browser/recorded/commands.json")
}

/// License key number `n`: valid and fixed, as `lapd license new` would print one.
fn without_dashes(display: &str) -> String {
    display.replace('-', "")
}

/// The keys the browser tests type, paste and store, by the job each has there.
#[derive(Debug, Serialize)]
struct Keys {
    /// The key the first test ends up activating, after picking it from the suggestions.
    entered: String,
    /// `entered` with its 10th character (group 3, character 2) typed as "U".
    mistyped: String,
    /// A key whose two neighbouring characters in group 2 are swapped in `swapped`.
    swap_fixed: String,
    swapped: String,
    /// A key pasted into the window.
    pasted: String,
    /// The key stored for Acme Studio when a test starts.
    stored: String,
    /// Typed one character at a time: too short.
    typed: String,
    /// Well formed, but the evaluation's stand-in for "no key": refused.
    all_zero: String,
}

impl Keys {
    fn new() -> Self {
        let entered = key(7).to_display();
        let mut mistyped: Vec<char> = without_dashes(&entered).chars().collect();
        mistyped[9] = 'U';
        let swap_fixed = key(11).to_display();
        let mut swapped: Vec<char> = without_dashes(&swap_fixed).chars().collect();
        let at = (4..7)
            .find(|&i| swapped[i] != swapped[i + 1])
            .expect("group 2 of key 11 has two different neighbours");
        swapped.swap(at, at + 1);
        Self {
            entered,
            mistyped: mistyped.into_iter().collect(),
            swap_fixed,
            swapped: swapped.into_iter().collect(),
            pasted: key(3).to_display(),
            stored: key(2).to_display(),
            typed: "ABCDEFG".into(),
            all_zero: "0000-0000-0000-0000-0000-0000-0001".into(),
        }
    }

    fn valid(&self) -> [&str; 4] {
        [&self.entered, &self.swap_fixed, &self.pasted, &self.stored]
    }

    /// Every text the key window sends to `check_key` (dashes and spaces already dropped,
    /// except in `set_key`'s display form, looked up too), and the empty text.
    fn checked_texts(&self) -> Vec<String> {
        let mut texts = vec![
            String::new(),
            self.mistyped.clone(),
            self.swapped.clone(),
            without_dashes(&self.all_zero),
        ];
        // Typed fast or slowly, any prefix may be checked.
        texts.extend((1..=self.typed.len()).map(|n| self.typed[..n].to_owned()));
        for valid in self.valid() {
            texts.push(valid.to_owned());
            texts.push(without_dashes(valid));
        }
        texts
    }
}

/// What the server windows send to `check_server` and `set_server`.
const SERVER_TEXTS: [&str; 5] = [
    "lap.example.com",
    "lap.corp.example:70000",
    "lap.corp.example:4711",
    "[2001:db8::1]:4711",
    "lap.example.com:4711",
];

/// What the machine's DNS knows in the Server window's scenarios: Acme Studio's SRV domain
/// with two targets (the first with an IPv4 and an IPv6 address), and the hosts the manifests,
/// the override and the policy name. Nothing else: any other name is NXDOMAIN.
const DNS_RECORDS: [&str; 7] = [
    "--srv-host=_lap._udp.example.com,lap.example.com,4711,10,60",
    "--srv-host=_lap._udp.example.com,lap2.example.com,4711,20,0",
    "--host-record=lap.example.com,192.0.2.1,2001:db8::11",
    "--host-record=lap2.example.com,192.0.2.2",
    "--host-record=lap.acme.example,192.0.2.3",
    "--host-record=lap.corp.example,192.0.2.10",
    "--host-record=lap.cartograph.example,192.0.2.20",
];

/// The machine's search domain, where unicast DNS-SD browses `_lap._udp.corp.example`: it
/// has no records, so the Server window shows a source skipped with its reason.
const SEARCH_DOMAIN: &str = "corp.example";

/// The installed products the Server window is opened for (ids and names as in fixtures.mjs):
/// id, name, vendor, SKU number, `[server]` lines.
const MANIFESTS: [(&str, &str, &str, u128, &str); 2] = [
    (
        "acme-studio",
        "Acme Studio",
        "Acme Software Ltd.",
        0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11,
        "srv_domain = \"example.com\"\naddress = \"lap.acme.example:4711\"\n",
    ),
    (
        "cartograph-pro",
        "Cartograph Pro",
        "Cartograph GmbH",
        0x2c7e_11d0_5b8a_4e4f_8f1e_3c5a_7d9b_0e21,
        "address = \"lap.cartograph.example:4711\"\n",
    ),
];

fn install_manifests(products: &Path) {
    let keys = ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]);
    std::fs::create_dir_all(products).expect("mkdir products.d");
    for (id, name, vendor, sku, server) in MANIFESTS {
        std::fs::write(
            products.join(format!("{id}.toml")),
            format!(
                "schema = 1\nid = \"{id}\"\nname = \"{name}\"\nvendor = \"{vendor}\"\n\
                 sku = \"{}\"\nevaluation_days = 30\n\
                 [server]\nx25519 = \"{}\"\ned25519 = \"{}\"\n{server}",
                Uuid::from_u128(sku),
                hex::encode(keys.public().x25519_bytes()),
                hex::encode(keys.public().ed25519_bytes()),
            ),
        )
        .expect("write a manifest");
    }
}

/// The app on the mock runtime with a real engine: the products above installed, DNS from
/// `dnsmasq` only, no mDNS (it would hear the test machine's link), the SRV order seeded.
struct MockApp {
    dir: tempfile::TempDir,
    app: App<MockRuntime>,
    _dns: Dnsmasq,
}

impl MockApp {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let dns = Dnsmasq::start(&DNS_RECORDS);
        let products = dir.path().join("products.d");
        install_manifests(&products);
        let engine = Engine::new(EngineConfig {
            data_dir: dir.path().join("data"),
            product_dirs: vec![products],
            policy_path: dir.path().join("policy.toml"),
            clock: Arc::new(FakeClock::at(NOW)),
            entropy: Arc::new(OsEntropy),
            secrets: Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
            identity: Arc::new(FixedIdentity::new([7; 32])),
            discovery: DiscoveryConfig {
                dns: DnsConfig::Nameserver {
                    address: dns.address(),
                    search: vec![SEARCH_DOMAIN.into()],
                },
                mdns: None,
                srv_seed: Some(1),
                ..DiscoveryConfig::default()
            },
            retry: RetryPolicy::default(),
        });
        let app = lapwing::run_app(
            mock_builder(),
            mock_context(noop_assets()),
            Arc::new(engine),
        )
        .expect("the app builds");
        Self {
            dir,
            app,
            _dns: dns,
        }
    }

    /// A window with this label (the capabilities are per label: `key-*`, `server`, …).
    fn window(&self, label: &str) -> WebviewWindow<MockRuntime> {
        WebviewWindowBuilder::new(&self.app, label, WebviewUrl::default())
            .build()
            .expect("a window")
    }

    /// Writes the machine policy, or removes it.
    fn set_policy(&self, text: Option<&str>) {
        let path = self.dir.path().join("policy.toml");
        match text {
            Some(text) => std::fs::write(path, text).expect("write the policy"),
            None => match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    panic!("remove the policy: {e}")
                }
                _ => {}
            },
        }
    }
}

/// A command's answer as the window gets it: `{"ok": value}` or `{"error": {kind, message}}`.
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Value {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().expect("url"),
        body: InvokeBody::Json(args),
        headers: tauri::http::HeaderMap::default(),
        invoke_key: INVOKE_KEY.into(),
    };
    match get_ipc_response(window, request) {
        Ok(body) => json!({ "ok": body.deserialize::<Value>().expect("JSON") }),
        Err(error) => json!({ "error": error }),
    }
}

fn status(id: &str, state: Phase) -> ProductStatus {
    ProductStatus {
        id: id.into(),
        name: id.into(),
        state,
        ..ProductStatus::default()
    }
}

fn ending(end: u64) -> (Option<u64>, Option<u64>, Option<u64>) {
    let days_left = end.checked_sub(NOW).map(|left| left.div_ceil(DAY));
    (Some(end), Some(end), days_left)
}

fn attempt(at: u64, outcome: AttemptOutcome, diagnosis: Vec<Cause>) -> Attempt {
    Attempt {
        at,
        outcome,
        diagnosis,
        server: Some(ServerUsed {
            address: "lap.example.com:4711".into(),
            source: ServerSource::Srv,
        }),
    }
}

/// The products the fake backend serves (fixtures.mjs, by id), and the two states it moves a
/// product to: after an activation and after the key's removal.
fn statuses() -> Vec<(&'static str, ProductStatus)> {
    let with_end = |id: &str, state: Phase, end: u64| {
        let (not_after, ends_at, days_left) = ending(end);
        ProductStatus {
            not_after,
            ends_at,
            days_left,
            ..status(id, state)
        }
    };
    vec![
        (
            "acme-studio",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                in_compliance: Some(true),
                has_key: true,
                last_attempt: Some(attempt(NOW - 3600, AttemptOutcome::Activated, Vec::new())),
                next_attempt_at: Some(NOW + 7 * DAY),
                ..with_end("acme-studio", Phase::Activated, MARCH_12_2027)
            },
        ),
        (
            "acme-export",
            ProductStatus {
                kind: Some(LicenseKind::Evaluation),
                in_compliance: Some(true),
                last_attempt: Some(attempt(
                    NOW - 7 * DAY,
                    AttemptOutcome::Activated,
                    Vec::new(),
                )),
                ..with_end("acme-export", Phase::Evaluation, NOW + 23 * DAY)
            },
        ),
        (
            "borealis-draw",
            ProductStatus {
                kind: Some(LicenseKind::Evaluation),
                ..with_end("borealis-draw", Phase::EvaluationExpired, NOW - 23 * DAY)
            },
        ),
        (
            "cartograph-pro",
            ProductStatus {
                kind: Some(LicenseKind::Subscription),
                in_compliance: Some(false),
                has_key: true,
                last_attempt: Some(attempt(NOW - 900, AttemptOutcome::NoAnswer, Vec::new())),
                ..with_end("cartograph-pro", Phase::RenewalDue, NOW + 6 * DAY)
            },
        ),
        (
            "delta-mixer",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                in_compliance: Some(true),
                has_key: true,
                last_attempt: Some(attempt(
                    NOW - 3600,
                    AttemptOutcome::RejectedAnswer,
                    Vec::new(),
                )),
                clock_moved_back_by: Some(180),
                ..with_end("delta-mixer", Phase::Expired, NOW - 3 * DAY)
            },
        ),
        (
            "echo-notes",
            ProductStatus {
                last_attempt: Some(attempt(
                    NOW - 60,
                    AttemptOutcome::NotSent,
                    vec![Cause::NoServerFound {
                        skipped: Vec::new(),
                    }],
                )),
                ..status("echo-notes", Phase::Unlicensed)
            },
        ),
        (
            "after-activation",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                in_compliance: Some(true),
                has_key: true,
                last_attempt: Some(attempt(NOW, AttemptOutcome::Activated, Vec::new())),
                ..with_end(
                    "after-activation",
                    Phase::Activated,
                    NOW + GRANTED_DAYS * DAY,
                )
            },
        ),
        ("after-removal", status("after-removal", Phase::Unlicensed)),
        (
            // Another product's key entered over a working one: the old grant renewed, the
            // new key ignored by the server and kept pending.
            "after-pending-key",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                in_compliance: Some(true),
                has_key: true,
                last_attempt: Some(attempt(NOW, AttemptOutcome::Activated, Vec::new())),
                pending_key: Some(PendingKey {
                    since: NOW,
                    last_try: Some(attempt(
                        NOW,
                        AttemptOutcome::NoAnswer,
                        vec![Cause::KeyMayBeRefused],
                    )),
                }),
                ..with_end(
                    "after-pending-key",
                    Phase::Activated,
                    NOW + GRANTED_DAYS * DAY,
                )
            },
        ),
        (
            // Deactivated on this computer (released, or given up here): the key kept.
            "after-deactivation",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                has_key: true,
                deactivated_at: Some(NOW),
                ..status("after-deactivation", Phase::Deactivated)
            },
        ),
        (
            "after-sunset",
            ProductStatus {
                kind: Some(LicenseKind::Perpetual),
                has_key: true,
                sunset_issued: Some(NOW),
                ..status("after-sunset", Phase::Sunset)
            },
        ),
        (
            // After an answer with Duplicate, which also moved the seat from older hardware.
            "after-duplicate",
            ProductStatus {
                kind: Some(LicenseKind::Term),
                in_compliance: Some(true),
                has_key: true,
                duplicate: true,
                moved_from_previous_hardware: true,
                ..with_end("after-duplicate", Phase::Activated, MARCH_12_2027)
            },
        ),
    ]
}

/// The product name the deactivate answers are worded for (fixtures.mjs's acme-studio).
const DEACTIVATED_NAME: &str = "Acme Studio";
/// The Notice of a server whose transfer limit kept the seat.
const TRANSFER_LIMIT: &str = "the next transfer of this license is possible on 3 Mar 2027";

/// What `deactivate` says for each outcome the browser tests play, keyed by case: the
/// engine's outcome, worded by the tray (`lapwing::deactivate::message`).
fn record_deactivations() -> BTreeMap<String, Value> {
    let silent = Deactivation::Unanswered {
        cause: Some(Cause::Unreachable {
            tried: vec![ServerUsed {
                address: "lap.example.com:4711".into(),
                source: ServerSource::Srv,
            }],
        }),
    };
    let limit = Deactivation::Kept {
        notice: Some(TRANSFER_LIMIT.into()),
    };
    let cases: [(&str, &Deactivation, bool); 6] = [
        ("released", &Deactivation::Released, false),
        ("released-key-removed", &Deactivation::Released, true),
        ("kept", &Deactivation::Kept { notice: None }, false),
        ("kept-notice", &limit, false),
        ("unanswered", &silent, false),
        ("deactivated-here", &Deactivation::DeactivatedHere, false),
    ];
    cases
        .into_iter()
        .map(|(case, outcome, key_removed)| {
            let answer = json!({
                "outcome": lapwing::deactivate::outcome_word(outcome),
                "message": lapwing::deactivate::message(outcome, DEACTIVATED_NAME, key_removed),
                "notice": match outcome {
                    Deactivation::Kept { notice } => notice.clone(),
                    _ => None,
                },
                "key_removed": key_removed,
            });
            (case.to_owned(), answer)
        })
        .collect()
}

/// A machine policy that locks the server (as in /etc/lapwing/policy.toml).
const LOCKED_POLICY: &str = "[server]\naddress = \"lap.corp.example:4711\"\nlocked = true\n";

/// A Server window as a browser test plays it: for which product (none: the global window),
/// under which machine policy, and the servers it saves in turn (`None`: Clear).
struct ServerWindow {
    product: Option<&'static str>,
    policy: Option<&'static str>,
    saves: &'static [Option<&'static str>],
}

const SERVER_WINDOWS: [ServerWindow; 3] = [
    ServerWindow {
        product: Some("acme-studio"),
        policy: None,
        saves: &[Some("lap.corp.example:4711"), None],
    },
    ServerWindow {
        product: None,
        policy: None,
        saves: &[Some("[2001:db8::1]:4711"), None],
    },
    // The inputs are disabled under a lock; the refusal is recorded all the same, should a
    // test reach it.
    ServerWindow {
        product: Some("cartograph-pro"),
        policy: Some(LOCKED_POLICY),
        saves: &[Some("lap.corp.example:4711")],
    },
];

/// What the fake backend knows when a Server window asks: the window's product, the overrides
/// the test has set and the policy its fixture names; with `server`, what `set_server` is
/// asked to save. Serialized, it is the key an answer is recorded under (fake-backend.js
/// builds the same string, fields in this order).
#[derive(Debug, Serialize)]
struct Situation<'a> {
    product: &'a Value,
    product_override: &'a Value,
    global_override: &'a Value,
    policy_server: &'a Value,
    policy_locked: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a Value>,
}

impl Situation<'_> {
    fn key(&self) -> String {
        serde_json::to_string(self).expect("serializes")
    }
}

/// The situation a `server_info` answer describes (the answer names all of it).
fn situation(info: &Value) -> Situation<'_> {
    Situation {
        product: &info["product"],
        product_override: &info["product_override"],
        global_override: &info["global_override"],
        policy_server: &info["policy_server"],
        policy_locked: &info["policy_locked"],
        server: None,
    }
}

/// Records `answer` under `key`; the same situation reached twice must answer the same.
fn insert(table: &mut BTreeMap<String, Value>, key: String, answer: Value) {
    match table.entry(key) {
        Entry::Vacant(slot) => {
            slot.insert(answer);
        }
        Entry::Occupied(slot) => assert_eq!(
            slot.get(),
            &answer,
            "{} answered twice, differently",
            slot.key()
        ),
    }
}

#[derive(Debug, Default, Serialize)]
struct ServerAnswers {
    server_info: BTreeMap<String, Value>,
    set_server: BTreeMap<String, Value>,
}

/// The fixtures' names (fixtures.mjs): a batch's sentence names the products not sent.
fn fixture_name(id: &str) -> &str {
    match id {
        "acme-studio" => "Acme Studio",
        "acme-export" => "Acme Export",
        "borealis-draw" => "Borealis Draw",
        "cartograph-pro" => "Cartograph Pro",
        "delta-mixer" => "Delta Mixer",
        "echo-notes" => "Echo Notes",
        other => other,
    }
}

/// The batch results the browser tests' "Activate all" and global "Try now" play: the fake
/// backend activates each fixture with a key or an evaluation (as after-activation), and
/// leaves the others as they were. Counted by Rust's `BatchResult`.
fn record_batches() -> BTreeMap<String, Value> {
    let fixtures: Vec<ProductStatus> = statuses()
        .into_iter()
        .filter(|(case, _)| !case.starts_with("after-"))
        .map(|(_, s)| ProductStatus {
            name: fixture_name(&s.id).to_owned(),
            ..s
        })
        .collect();
    let after: Vec<ProductStatus> = fixtures
        .iter()
        .map(|s| {
            if s.has_key || s.state == Phase::Evaluation {
                ProductStatus {
                    last_attempt: Some(attempt(NOW, AttemptOutcome::Activated, Vec::new())),
                    ..s.clone()
                }
            } else {
                s.clone()
            }
        })
        .collect();
    let key = after
        .iter()
        .map(|s| {
            let outcome = s.last_attempt.as_ref().map_or("none".to_owned(), |a| {
                serde_json::to_value(a.outcome)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            });
            format!("{}:{outcome}", s.id)
        })
        .collect::<Vec<_>>()
        .join(",");
    let result = lapwing_core::verdict::BatchResult::of(&after);
    let mut view = serde_json::to_value(&result).expect("serializes");
    view["message"] = Value::String(result.sentence());
    BTreeMap::from([(key, view)])
}

/// Plays every Server window through the real commands and records each answer under the
/// situation it was given in.
fn record_servers(app: &MockApp) -> ServerAnswers {
    let mut out = ServerAnswers::default();
    for (n, played) in SERVER_WINDOWS.iter().enumerate() {
        app.set_policy(played.policy);
        let window = app.window(&format!("server-{n}"));
        let info = |out: &mut ServerAnswers| {
            let answer = invoke(&window, "server_info", json!({ "product": played.product }));
            let info = answer["ok"].clone();
            assert!(info.is_object(), "server_info answered {answer}");
            insert(&mut out.server_info, situation(&info).key(), answer);
            info
        };
        let mut before = info(&mut out);
        for &server in played.saves {
            let server = json!(server);
            let answer = invoke(
                &window,
                "set_server",
                json!({ "product": played.product, "server": server }),
            );
            let key = Situation {
                server: Some(&server),
                ..situation(&before)
            }
            .key();
            insert(&mut out.set_server, key, answer);
            before = info(&mut out);
        }
        window.close().expect("close the window");
    }
    app.set_policy(None);
    out
}

#[derive(Debug, Serialize)]
struct Recording {
    about: &'static str,
    now: u64,
    keys: Keys,
    check_key: BTreeMap<String, Value>,
    check_server: BTreeMap<String, Value>,
    key_masked: BTreeMap<String, String>,
    status: BTreeMap<String, Value>,
    server_info: BTreeMap<String, Value>,
    set_server: BTreeMap<String, Value>,
    /// `activate_all`'s result (`BatchResult.result`) for the products the fake backend ends
    /// with, keyed by "id:outcome" of each, in order ("none" for no attempt).
    activate_all: BTreeMap<String, Value>,
    /// `deactivate`'s answer (without its status) for each case the browser tests play.
    deactivate: BTreeMap<String, Value>,
}

fn record() -> Recording {
    let app = MockApp::start();
    let window = app.window("key-acme-studio");
    let keys = Keys::new();
    let check_key = keys
        .checked_texts()
        .into_iter()
        .map(|text| {
            let answer = invoke(&window, "check_key", json!({ "text": text }));
            (text, answer)
        })
        .collect();
    let server_window = app.window("server");
    let check_server = SERVER_TEXTS
        .iter()
        .map(|&text| {
            let answer = invoke(&server_window, "check_server", json!({ "text": text }));
            (text.to_owned(), answer)
        })
        .collect();
    let key_masked = keys
        .valid()
        .iter()
        .map(|&display| {
            let key = LicenseKey::parse(display).expect("a valid key");
            (display.to_owned(), key.masked())
        })
        .collect();
    let status = statuses()
        .into_iter()
        .map(|(case, s)| {
            let view = serde_json::to_value(StatusView::at(s, NOW)).expect("a status serializes");
            (case.to_owned(), view)
        })
        .collect();
    let servers = record_servers(&app);
    Recording {
        about: "Answers recorded from the Rust code for the browser tests' fake backend. \
                Do not edit: regenerate with `LAPWING_RECORD=1 cargo test -p lapwing --test ui_recordings`.",
        now: NOW,
        keys,
        check_key,
        check_server,
        key_masked,
        status,
        server_info: servers.server_info,
        set_server: servers.set_server,
        activate_all: record_batches(),
        deactivate: record_deactivations(),
    }
}

#[test]
fn the_recorded_answers_are_what_the_code_answers_now() {
    let now = serde_json::to_value(record()).expect("serializes");
    let path = recording_path();
    if std::env::var_os("LAPWING_RECORD").is_some_and(|v| v == "1") {
        let text = serde_json::to_string_pretty(&now).expect("serializes") + "\n";
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write the recording");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}): record it with `{REGENERATE}`",
            path.display()
        )
    });
    let committed: Value = serde_json::from_str(&committed).expect("the recording is JSON");
    assert!(
        committed == now,
        "{} differs from what the code answers now; if the change is meant, re-record with \
         `{REGENERATE}` and run `cd ui && npm run test:browser`",
        path.display()
    );
}

/// The scenarios the browser tests play must hold for the recorded keys, or they would test
/// nothing: a typo is named where it is, the right key is among the suggestions.
#[test]
fn the_recorded_keys_make_the_scenarios_the_browser_tests_play() {
    let recording = serde_json::to_value(record()).expect("serializes");
    let keys = &recording["keys"];
    let answer = |text: &Value| &recording["check_key"][text.as_str().expect("a key")]["ok"];
    let suggested = |answer: &Value, key: &Value| {
        answer["suggestions"]
            .as_array()
            .is_some_and(|s| s.contains(key))
    };

    let mistyped = answer(&keys["mistyped"]);
    assert_eq!(mistyped["error"]["code"], "character", "{mistyped}");
    assert_eq!(mistyped["error"]["position"], 10, "{mistyped}");
    assert!(suggested(mistyped, &keys["entered"]), "{mistyped}");

    let swapped = answer(&keys["swapped"]);
    assert_eq!(swapped["error"]["code"], "check", "{swapped}");
    assert!(suggested(swapped, &keys["swap_fixed"]), "{swapped}");

    assert_eq!(answer(&keys["typed"])["error"]["code"], "length");
    assert_eq!(recording["check_key"][""]["ok"]["error"]["code"], "empty");
    for valid in ["entered", "swap_fixed", "pasted", "stored"] {
        let with_dashes = answer(&keys[valid]);
        let without =
            &recording["check_key"][without_dashes(keys[valid].as_str().expect("a key"))]["ok"];
        assert_eq!(with_dashes["valid"], true, "{valid}");
        assert_eq!(without, with_dashes, "{valid}");
    }
    assert_eq!(
        recording["check_server"]["lap.corp.example:4711"],
        json!({ "ok": null })
    );
    assert_eq!(
        recording["check_server"]["lap.example.com"]["error"]["kind"],
        "bad-server"
    );
    assert_eq!(
        recording["status"]["after-removal"]["line"],
        "Not activated"
    );
}

/// The Server window's scenarios hold in what Rust answered, or the browser tests would test
/// nothing: discovery finds servers by several sources and reports a skipped one, a saved
/// override comes first, a locked policy is the only server and refuses a save.
#[test]
fn the_recorded_server_windows_make_the_scenarios_the_browser_tests_play() {
    let recording = serde_json::to_value(record()).expect("serializes");
    let info = |product: Option<&str>, product_override: Option<&str>, policy: Option<&str>| {
        let (product, product_override) = (json!(product), json!(product_override));
        let (policy_server, policy_locked) = (json!(policy), json!(policy.is_some()));
        let key = Situation {
            product: &product,
            product_override: &product_override,
            global_override: &Value::Null,
            policy_server: &policy_server,
            policy_locked: &policy_locked,
            server: None,
        }
        .key();
        recording["server_info"][&key]["ok"].clone()
    };
    let sources = |info: &Value| -> Vec<String> {
        info["candidates"]
            .as_array()
            .unwrap_or_else(|| panic!("no candidates in {info}"))
            .iter()
            .map(|c| format!("{} {}", c["source"], c["address"]))
            .collect()
    };

    let found = info(Some("acme-studio"), None, None);
    assert_eq!(
        sources(&found),
        [
            r#""srv" "[2001:db8::11]:4711""#,
            r#""srv" "192.0.2.1:4711""#,
            r#""srv" "192.0.2.2:4711""#,
            r#""manifest" "192.0.2.3:4711""#,
        ],
        "{found}"
    );
    assert_eq!(found["skipped"][0]["source"], "dns-sd", "{found}");

    let saved = info(Some("acme-studio"), Some("lap.corp.example:4711"), None);
    assert_eq!(sources(&saved)[0], r#""override" "192.0.2.10:4711""#);
    assert_eq!(sources(&saved)[1..], sources(&found)[..]);

    let locked = info(Some("cartograph-pro"), None, Some("lap.corp.example:4711"));
    assert_eq!(locked["policy_locked"], true, "{locked}");
    assert_eq!(sources(&locked), [r#""policy" "192.0.2.10:4711""#]);
    let refused = recording["set_server"]
        .as_object()
        .expect("a table")
        .iter()
        .find(|(key, _)| key.contains("cartograph-pro"))
        .map(|(_, answer)| answer)
        .expect("a save under the lock is recorded");
    assert_eq!(refused["error"]["kind"], "policy-locked", "{refused}");
}
