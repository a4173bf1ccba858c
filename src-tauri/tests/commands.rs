//! The command layer as the windows call it, through Tauri's mock runtime: a real
//! `lapwing-core` engine (fake clock, in-memory keyring, fixed machine, temporary
//! directories) against a real `lapd` on loopback UDP, in-process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lap_proto::test_util::key;
use lap_proto::time::unix_now;
use lap_proto::{ServerSecretKeys, Uuid};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::rules::Profile;
use lapd::server::{Background, Server};
use lapd::store::Store;
use lapwing_core::clock::FakeClock;
use lapwing_core::engine::{Engine, EngineConfig};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_discovery::DiscoveryConfig;
use lapwing_secrets::{MemoryStore, SecretStore};
use serde_json::{Value, json};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;
use tauri::{App, Listener as _, Manager as _, WebviewUrl, WebviewWindow, WebviewWindowBuilder};

const SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);

/// License key number `n` (a valid key, as `lapd license new` would print).
/// A lapd on 127.0.0.1 whose catalog has one SKU and a term license for key 1. Stops when
/// dropped.
struct TestServer {
    addr: SocketAddr,
    keys: ServerSecretKeys,
    _serving: Background,
}

impl TestServer {
    fn start(profile: Profile) -> Self {
        let catalog = format!(
            "[[sku]]\nid = \"{SKU}\"\nname = \"Acme Studio\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{SKU}\"\nkind = \"term\"\nseats = 2\ndays = 365\n",
            key(1).to_display()
        );
        let catalog = LicenseCatalog::parse(&catalog, Path::new("catalog.toml")).expect("catalog");
        let server = Server::new(
            ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]),
            catalog,
            Store::in_memory().expect("store"),
            RateLimiter::new(0, 0),
            0,
        )
        .with_profile(profile);
        let serving = Background::start(server, "127.0.0.1:0".parse().expect("addr"), 1)
            .expect("lapd serves on loopback");
        let addr = serving.address();
        Self {
            addr,
            keys: ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32]),
            _serving: serving,
        }
    }
}

/// The app on the mock runtime, its engine's files, and one window to call from.
struct Setup {
    /// Taken (dropped) to stop the server.
    server: Option<TestServer>,
    dir: tempfile::TempDir,
    app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
}

fn policy_path(dir: &Path) -> PathBuf {
    dir.join("policy.toml")
}

fn setup() -> Setup {
    setup_with(Profile::default())
}

/// [`setup`] with a lapd speaking `profile` (1.0: before the lifecycle, it cannot release).
fn setup_with(profile: Profile) -> Setup {
    let server = TestServer::start(profile);
    let dir = tempfile::tempdir().expect("tempdir");
    let products = dir.path().join("products.d");
    std::fs::create_dir_all(&products).expect("mkdir");
    std::fs::write(
        products.join("acme-studio.toml"),
        format!(
            "schema = 1\nid = \"acme-studio\"\nname = \"Acme Studio\"\nvendor = \"Acme\"\nsku = \"{SKU}\"\n\
             [server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"{}\"\n",
            hex::encode(server.keys.public().x25519_bytes()),
            hex::encode(server.keys.public().ed25519_bytes()),
            server.addr
        ),
    )
    .expect("write manifest");
    let engine = Engine::new(EngineConfig {
        data_dir: dir.path().join("data"),
        product_dirs: vec![products],
        policy_path: policy_path(dir.path()),
        clock: Arc::new(FakeClock::at(unix_now())),
        entropy: Arc::new(OsEntropy),
        secrets: Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy {
            waits: vec![Duration::from_millis(300); 2],
        },
    });
    let app = lapwing::run_app(
        mock_builder(),
        mock_context(noop_assets()),
        Arc::new(engine),
    )
    .expect("the app builds");
    let window = WebviewWindowBuilder::new(&app, "products", WebviewUrl::default())
        .build()
        .expect("a window");
    Setup {
        server: Some(server),
        dir,
        app,
        window,
    }
}

/// The origin of the app's own pages (Tauri's custom protocol differs by platform).
const APP_URL: &str = if cfg!(windows) {
    "http://tauri.localhost"
} else {
    "tauri://localhost"
};

fn request(cmd: &str, args: Value) -> InvokeRequest {
    InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: APP_URL.parse().expect("url"),
        body: InvokeBody::Json(args),
        headers: tauri::http::HeaderMap::default(),
        invoke_key: INVOKE_KEY.into(),
    }
}

/// Calls a command as a window would: the value it resolves with, or the one it rejects with.
fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    get_ipc_response(window, request(cmd, args))
        .map(|body| body.deserialize::<Value>().expect("JSON"))
}

fn kind(result: Result<Value, Value>) -> String {
    let error = result.expect_err("rejected");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{error}"
    );
    error["kind"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn check_key_reads_a_pasted_key_and_suggests_the_right_one_for_a_typo() {
    let s = setup();
    let right = key(1).to_display();
    let pasted = format!(" {}\n", right.to_lowercase().replacen('-', " \n", 3));
    let check = invoke(&s.window, "check_key", json!({"text": pasted})).expect("checked");
    assert_eq!(check["valid"], true, "{check}");
    assert_eq!(check["display"], right.as_str());
    assert_eq!(check["error"], Value::Null);

    let mut chars: Vec<char> = right.chars().collect();
    chars[2] = if chars[2] == '7' { '8' } else { '7' };
    let typo: String = chars.into_iter().collect();
    let check =
        invoke(&s.window, "check_key", json!({"text": typo})).expect("checked, not rejected");
    assert_eq!(check["valid"], false);
    assert_eq!(check["error"]["code"], "check");
    let suggestions: Vec<&str> = check["suggestions"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(suggestions.contains(&right.as_str()), "{check}");
}

#[test]
fn set_key_activates_and_the_status_and_windows_follow() {
    let s = setup();
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    s.app.listen_any("status-changed", move |event| {
        sink.lock().expect("lock").push(event.payload().to_owned());
    });

    let before = invoke(&s.window, "status", json!({})).expect("status");
    assert_eq!(before[0]["id"], "acme-studio");
    assert_eq!(before[0]["state"], "unlicensed");
    assert_eq!(before[0]["line"], "Not activated");

    let status = invoke(
        &s.window,
        "set_key",
        json!({"id": "acme-studio", "key": key(1).to_display().replace('-', " ")}),
    )
    .expect("stored and activated");
    assert_eq!(status["state"], "activated", "{status}");
    assert_eq!(status["kind"], "term");
    assert_eq!(status["has_key"], true);
    assert!(
        status["line"]
            .as_str()
            .is_some_and(|l| l.starts_with("Activated until ")),
        "{status}"
    );

    let after = invoke(&s.window, "status", json!({})).expect("status");
    assert_eq!(after[0]["state"], "activated");
    let masked = invoke(&s.window, "key_masked", json!({"id": "acme-studio"})).expect("masked");
    let full = key(1).to_display();
    assert!(
        masked
            .as_str()
            .is_some_and(|m| m.ends_with(&full[full.len() - 4..]) && !m.contains(&full[..10])),
        "{masked}"
    );
    assert_eq!(
        invoke(&s.window, "reveal_key", json!({"id": "acme-studio"})).expect("revealed"),
        full.as_str()
    );

    let payloads = heard.lock().expect("lock").clone();
    assert!(
        payloads
            .iter()
            .any(|p| p.contains("\"state\":\"activated\"")),
        "status-changed carried the activation: {payloads:?}"
    );

    let removed = invoke(&s.window, "remove_key", json!({"id": "acme-studio"})).expect("removed");
    assert_eq!(removed["has_key"], false);
}

#[test]
fn a_bad_key_is_refused_before_anything_is_stored() {
    let s = setup();
    assert_eq!(
        kind(invoke(
            &s.window,
            "set_key",
            json!({"id": "acme-studio", "key": "ABCD"})
        )),
        "bad-key"
    );
    let error = invoke(
        &s.window,
        "set_key",
        json!({"id": "acme-studio", "key": "ABCD-EFGH"}),
    )
    .expect_err("refused");
    assert!(
        !error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("EFGH"),
        "{error}"
    );
    assert_eq!(
        invoke(&s.window, "key_masked", json!({"id": "acme-studio"})).expect("read"),
        Value::Null
    );
}

#[test]
fn servers_are_checked_and_a_locked_policy_is_obeyed() {
    let s = setup();
    assert_eq!(
        kind(invoke(
            &s.window,
            "set_server",
            json!({"product": "acme-studio", "server": "not a server"})
        )),
        "bad-server"
    );
    assert_eq!(
        kind(invoke(
            &s.window,
            "check_server",
            json!({"text": "host:99999"})
        )),
        "bad-server"
    );
    assert_eq!(
        invoke(
            &s.window,
            "check_server",
            json!({"text": "lap.example:4711"})
        )
        .expect("fine"),
        Value::Null
    );

    let info = invoke(
        &s.window,
        "set_server",
        json!({"product": "acme-studio", "server": "127.0.0.1:4999"}),
    )
    .expect("set");
    assert_eq!(info["product_override"], "127.0.0.1:4999");
    assert_eq!(info["candidates"][0]["address"], "127.0.0.1:4999");
    assert_eq!(info["candidates"][0]["source"], "override");
    let cleared = invoke(
        &s.window,
        "set_server",
        json!({"product": "acme-studio", "server": null}),
    )
    .expect("cleared");
    assert_eq!(cleared["product_override"], Value::Null);
    assert_eq!(cleared["candidates"][0]["source"], "manifest");

    std::fs::write(
        policy_path(s.dir.path()),
        "[server]\naddress = \"lap.corp.example:4711\"\nlocked = true\n",
    )
    .expect("policy");
    assert_eq!(
        kind(invoke(
            &s.window,
            "set_server",
            json!({"product": null, "server": "127.0.0.1:4711"})
        )),
        "policy-locked"
    );
    let info = invoke(&s.window, "server_info", json!({"product": null})).expect("info");
    assert_eq!(info["policy_locked"], true);
    assert_eq!(info["policy_server"], "lap.corp.example:4711");
}

#[test]
fn unknown_and_malformed_products_and_views_are_refused() {
    let s = setup();
    assert_eq!(
        kind(invoke(
            &s.window,
            "activate",
            json!({"id": "no-such-product"})
        )),
        "unknown-product"
    );
    assert_eq!(
        kind(invoke(
            &s.window,
            "set_key",
            json!({"id": "nope", "key": key(1).to_display()})
        )),
        "unknown-product"
    );
    for bad in ["../etc", "Acme", "", "a b"] {
        assert_eq!(
            kind(invoke(&s.window, "activate", json!({"id": bad}))),
            "invalid-input",
            "{bad}"
        );
    }
    assert_eq!(
        kind(invoke(
            &s.window,
            "open_window",
            json!({"view": "main", "product": null})
        )),
        "invalid-input"
    );
    assert_eq!(
        kind(invoke(
            &s.window,
            "open_window",
            json!({"view": "key", "product": null})
        )),
        "invalid-input"
    );
    assert_eq!(
        kind(invoke(
            &s.window,
            "open_window",
            json!({"view": "key", "product": "ghost"})
        )),
        "unknown-product"
    );
    // Wrong argument types never reach the command.
    assert!(invoke(&s.window, "activate", json!({"id": 7})).is_err());
}

#[test]
fn windows_open_once_with_their_labels() {
    let s = setup();
    invoke(
        &s.window,
        "open_window",
        json!({"view": "key", "product": "acme-studio"}),
    )
    .expect("opened");
    invoke(
        &s.window,
        "open_window",
        json!({"view": "key", "product": "acme-studio"}),
    )
    .expect("focused");
    invoke(
        &s.window,
        "open_window",
        json!({"view": "diagnostics", "product": null}),
    )
    .expect("opened");
    let mut labels: Vec<String> = s.app.webview_windows().into_keys().collect();
    labels.sort();
    assert_eq!(labels, ["diagnostics", "key-acme-studio", "products"]);
}

#[test]
fn an_activation_without_an_answer_says_so_in_the_line() {
    let s = setup();
    // A port nothing listens on: the machine refuses each request (ICMP port unreachable),
    // and the line says so rather than blame the key just entered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let address = silent.local_addr().expect("addr").to_string();
    drop(silent);
    invoke(
        &s.window,
        "set_server",
        json!({"product": "acme-studio", "server": address}),
    )
    .expect("set");
    let status = invoke(
        &s.window,
        "set_key",
        json!({"id": "acme-studio", "key": key(9).to_display()}),
    )
    .expect("stored, attempt made");
    assert_eq!(status["state"], "unlicensed");
    assert_eq!(status["last_attempt"]["outcome"], "no-answer");
    assert_eq!(status["line"], "Not activated: the server is not running");
    assert_eq!(
        status["last_attempt"]["diagnosis"][0]["code"], "server-refused",
        "{status}"
    );
}

#[test]
fn doctor_about_and_report_hold_no_secret() {
    let s = setup();
    invoke(
        &s.window,
        "set_key",
        json!({"id": "acme-studio", "key": key(1).to_display()}),
    )
    .expect("activated");
    let checks = invoke(&s.window, "doctor", json!({"product": null})).expect("checks");
    assert!(checks.as_array().is_some_and(|c| !c.is_empty()), "{checks}");
    let report = invoke(
        &s.window,
        "doctor_report",
        json!({"product": "acme-studio"}),
    )
    .expect("report");
    let report = report.as_str().expect("text");
    assert!(
        report.contains("acme-studio (activated, all good): Activated until"),
        "{report}"
    );
    let full = key(1).to_display();
    assert!(
        !report.contains(&full) && !report.contains(&full.replace('-', "")),
        "{report}"
    );
    let about = invoke(&s.window, "about", json!({})).expect("about");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"));
    // The windows run in the system's web engine: About's third-party list names it.
    if cfg!(target_os = "linux") {
        assert!(
            about["licenses"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l["name"] == "WebKitGTK")),
            "{about}"
        );
    }
    assert!(
        about["state_file"]
            .as_str()
            .is_some_and(|p| p.ends_with("state.json")),
        "{about}"
    );
    // No autostart plugin on the mock runtime: said, not panicked.
    assert_eq!(kind(invoke(&s.window, "settings", json!({}))), "engine");
}

/// Activates acme-studio with key 1 and returns the listener's record of status-changed.
fn activated(s: &Setup) -> Arc<std::sync::Mutex<Vec<String>>> {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    s.app.listen_any("status-changed", move |event| {
        sink.lock().expect("lock").push(event.payload().to_owned());
    });
    let status = invoke(
        &s.window,
        "set_key",
        json!({"id": "acme-studio", "key": key(1).to_display()}),
    )
    .expect("stored and activated");
    assert_eq!(status["state"], "activated", "{status}");
    heard
}

#[test]
fn deactivate_releases_the_seat_the_key_goes_when_asked_and_the_windows_follow() {
    let s = setup();
    let heard = activated(&s);
    let released = invoke(
        &s.window,
        "deactivate",
        json!({"id": "acme-studio", "remove_key": true, "anyway": false}),
    )
    .expect("answered");
    assert_eq!(released["outcome"], "released", "{released}");
    assert_eq!(
        released["message"],
        "Acme Studio was deactivated on this computer: its seat is free for another computer. \
         The license key was removed from this computer."
    );
    assert_eq!(released["key_removed"], true);
    let status = &released["status"];
    assert_eq!(status["state"], "deactivated");
    assert_eq!(status["has_key"], false);
    assert_eq!(status["license_id"], Value::Null);
    assert_eq!(status["next_attempt_at"], Value::Null, "nothing is renewed");
    assert!(
        heard
            .lock()
            .expect("lock")
            .iter()
            .any(|p| p.contains("\"state\":\"deactivated\"")),
        "status-changed carried the deactivation"
    );
}

#[test]
fn deactivate_on_a_server_that_cannot_release_keeps_the_activation_then_anyway_deactivates_here() {
    let s = setup_with(Profile::V1_0);
    let heard = activated(&s);
    // A 1.0 lapd answers a release with an ordinary grant: kept, and said so.
    let kept = invoke(
        &s.window,
        "deactivate",
        json!({"id": "acme-studio", "remove_key": true, "anyway": false}),
    )
    .expect("answered");
    assert_eq!(kept["outcome"], "kept", "{kept}");
    assert_eq!(
        kept["message"],
        "Acme Studio stays activated: this vendor's server cannot release seats."
    );
    assert_eq!(
        kept["key_removed"], false,
        "a kept activation keeps its key"
    );
    assert_eq!(kept["status"]["state"], "activated");
    assert_eq!(kept["status"]["has_key"], true);

    let here = invoke(
        &s.window,
        "deactivate",
        json!({"id": "acme-studio", "remove_key": false, "anyway": true}),
    )
    .expect("answered");
    assert_eq!(here["outcome"], "deactivated-here", "{here}");
    assert!(
        here["message"].as_str().is_some_and(
            |m| m.contains("the seat stays taken on the server until its lease runs out")
        ),
        "{here}"
    );
    let status = &here["status"];
    assert_eq!(status["state"], "deactivated");
    assert_eq!(status["line"], "Deactivated on this computer");
    assert_eq!(status["verdict"]["reason"], "deactivated");
    assert_eq!(status["has_key"], true, "the key stays unless asked");
    assert_eq!(status["next_attempt_at"], Value::Null, "nothing is renewed");
    assert_eq!(here["key_removed"], false);
    // Published: every window (and the tray, on the same path) heard the deactivation.
    assert!(
        heard
            .lock()
            .expect("lock")
            .iter()
            .any(|p| p.contains("\"state\":\"deactivated\"")),
        "status-changed carried the deactivation"
    );
    // Nothing left to release: the engine says so, plainly.
    assert_eq!(
        kind(invoke(
            &s.window,
            "deactivate",
            json!({"id": "acme-studio", "remove_key": false, "anyway": false}),
        )),
        "engine"
    );
    // Activate now brings it back (the key was kept).
    let again = invoke(&s.window, "activate", json!({"id": "acme-studio"})).expect("activated");
    assert_eq!(again["state"], "activated", "{again}");
}

#[test]
fn deactivate_without_an_answer_changes_nothing() {
    let mut s = setup();
    activated(&s);
    // The server that granted it stops: its port refuses the release.
    drop(s.server.take());
    let before = invoke(&s.window, "status", json!({})).expect("status");
    let answer = invoke(
        &s.window,
        "deactivate",
        json!({"id": "acme-studio", "remove_key": true, "anyway": false}),
    )
    .expect("answered");
    assert_eq!(answer["outcome"], "unanswered", "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Nothing was changed: ")),
        "{answer}"
    );
    assert_eq!(answer["key_removed"], false);
    assert_eq!(answer["status"]["state"], "activated");
    assert_eq!(answer["status"]["has_key"], true);
    let after = invoke(&s.window, "status", json!({})).expect("status");
    assert_eq!(
        after[0]["license_id"], before[0]["license_id"],
        "the grant is as it was"
    );
}

#[test]
fn deactivate_takes_its_arguments_by_their_documented_names() {
    let s = setup();
    // COMMANDS.md names them `remove_key` and `anyway`; Tauri's camelCase is not read.
    assert!(
        invoke(
            &s.window,
            "deactivate",
            json!({"id": "acme-studio", "removeKey": false, "anyway": false}),
        )
        .is_err()
    );
    assert_eq!(
        kind(invoke(
            &s.window,
            "deactivate",
            json!({"id": "Not An Id", "remove_key": false, "anyway": false}),
        )),
        "invalid-input"
    );
}

/// The UI's sources (`ui/src`).
fn ui_source(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ui/src")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `ipc.<method>` a source names (`ipc` as a whole word, spaces and line breaks
/// allowed around the dot).
fn ipc_methods(source: &str) -> std::collections::BTreeSet<String> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let mut found = std::collections::BTreeSet::new();
    for (at, _) in source.match_indices("ipc") {
        if source[..at].chars().next_back().is_some_and(ident) {
            continue;
        }
        let rest = source[at + 3..].trim_start();
        let Some(rest) = rest.strip_prefix('.') else {
            continue;
        };
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| ident(*c))
            .collect();
        if !name.is_empty() {
            found.insert(name);
        }
    }
    found
}

/// `ipc.ts`'s methods and the command (or, for a listener, `listen`) each one calls. A
/// method may span lines: its text runs to the next `name:` line.
fn ipc_commands() -> std::collections::BTreeMap<String, String> {
    let source = ui_source("ipc.ts");
    let body = &source[source.find("export const ipc = {").expect("the ipc object")..];
    let mut methods: Vec<(String, String)> = Vec::new();
    for line in body.lines().skip(1).map(str::trim) {
        let name: String = line
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if !name.is_empty() && line[name.len()..].starts_with(':') {
            methods.push((name, line.to_owned()));
        } else if let Some((_, text)) = methods.last_mut() {
            text.push_str(line);
        }
    }
    let mut map = std::collections::BTreeMap::new();
    for (method, text) in methods {
        if let Some(command) = text
            .split_once("call<")
            .and_then(|(_, rest)| rest.split('\'').nth(1))
        {
            map.insert(method, command.to_owned());
        } else if text.contains("backend.listen") {
            map.insert(method, "listen".to_owned());
        }
    }
    map
}

/// The commands the app registers (`build.rs`'s `COMMANDS`).
fn registered_commands() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("build.rs");
    let source = std::fs::read_to_string(&path).expect("build.rs");
    let list = source
        .split_once("const COMMANDS")
        .and_then(|(_, rest)| rest.split_once("];"))
        .expect("the COMMANDS list")
        .0;
    let mut commands: Vec<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    commands.sort();
    commands
}

/// What a view invokes: the commands named by `views/<view>.ts` and `views/<view>/*.ts`.
fn commands_of_view(
    view: &str,
    commands: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let mut sources = vec![ui_source(&format!("views/{view}.ts"))];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../ui/src/views/{view}"));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.filter_map(Result::ok) {
            sources.push(std::fs::read_to_string(entry.path()).expect("a view part"));
        }
    }
    let mut used: Vec<String> = sources
        .iter()
        .flat_map(|s| ipc_methods(s))
        .filter_map(|method| commands.get(&method).cloned())
        .collect();
    used.sort();
    used.dedup();
    used
}

/// Arguments each command takes, valid enough that only the ACL can refuse it outright.
fn arguments(command: &str) -> Value {
    match command {
        "activate" | "key_masked" | "reveal_key" | "remove_key" | "drop_pending_key" => {
            json!({"id": "nobody"})
        }
        "set_key" => json!({"id": "nobody", "key": "not a key"}),
        "check_key" | "check_server" => json!({"text": ""}),
        "server_info" | "doctor" | "doctor_report" => json!({"product": "nobody"}),
        "set_server" => json!({"product": "nobody", "server": null}),
        "set_autostart" => json!({"enabled": false}),
        "deactivate" => json!({"id": "nobody", "remove_key": false, "anyway": false}),
        "open_window" => json!({"view": "nowhere", "product": null}),
        _ => json!({}),
    }
}

/// Whether the ACL let the call through: a command's own errors are `{kind, message}`
/// objects; the ACL's refusal is a bare sentence.
fn granted(result: &Result<Value, Value>) -> bool {
    match result {
        Ok(_) => true,
        Err(Value::String(refusal)) => {
            assert!(
                refusal.contains("not allowed"),
                "not the ACL's refusal: {refusal}"
            );
            false
        }
        Err(error) => {
            assert!(error["kind"].is_string(), "{error}");
            true
        }
    }
}

#[test]
fn each_window_is_granted_exactly_the_commands_its_view_invokes() {
    // The real ACL this time (capabilities/ and permissions/ as built), not the mock's empty one.
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::new(EngineConfig {
        data_dir: dir.path().join("data"),
        product_dirs: vec![dir.path().join("products.d")],
        policy_path: policy_path(dir.path()),
        clock: Arc::new(FakeClock::at(unix_now())),
        entropy: Arc::new(OsEntropy),
        secrets: Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy::default(),
    });
    let app = lapwing::run_app(
        mock_builder(),
        tauri::generate_context!(test = true),
        Arc::new(engine),
    )
    .expect("builds");
    let window = |label: &str| {
        WebviewWindowBuilder::new(&app, label, WebviewUrl::default())
            .build()
            .expect("window")
    };
    let methods = ipc_commands();
    let all = registered_commands();
    let mut called: Vec<String> = methods
        .values()
        .filter(|c| *c != "listen")
        .cloned()
        .collect();
    called.sort();
    called.dedup();
    assert_eq!(
        called, all,
        "ipc.ts read whole: one method per registered command"
    );
    let windows = [
        ("products", "products"),
        ("key-acme", "key"),
        ("server", "server"),
        ("server-acme", "server"),
        ("diagnostics", "diagnostics"),
        ("about", "about"),
        ("settings", "settings"),
    ];
    let mut used_anywhere = std::collections::BTreeSet::new();
    for (label, view) in windows {
        let expected = commands_of_view(view, &methods);
        assert!(!expected.is_empty(), "{view} invokes nothing?");
        let window = window(label);
        let allowed: Vec<String> = all
            .iter()
            .filter(|command| granted(&invoke(&window, command, arguments(command))))
            .cloned()
            .collect();
        let expected_commands: Vec<String> = expected
            .iter()
            .filter(|c| *c != "listen")
            .cloned()
            .collect();
        assert_eq!(allowed, expected_commands, "window {label}");
        let listens = granted(&invoke(
            &window,
            "plugin:event|listen",
            json!({"event": "status-changed", "target": {"kind": "Any"}, "handler": 9}),
        ));
        assert_eq!(
            listens,
            expected.contains(&"listen".to_owned()),
            "window {label} listening"
        );
        assert!(
            !granted(&invoke(&window, "plugin:autostart|enable", json!({}))),
            "no plugin command is granted"
        );
        used_anywhere.extend(expected_commands);
    }
    assert_eq!(
        used_anywhere.into_iter().collect::<Vec<_>>(),
        all,
        "every command some window uses, and none that no window uses"
    );
    assert!(
        !granted(&invoke(&window("stranger"), "status", json!({}))),
        "a window outside every capability is refused"
    );
}
