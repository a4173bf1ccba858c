//! The desktop around the tray app in tests: a virtual display (Xvfb), a notification server
//! on the private session bus that records what it is sent, a W3C WebDriver client for
//! `tauri-driver` + `WebKitWebDriver`, and a check of a process tree's listening sockets.

// The notification interface's methods are fixed by the specification: some arguments are
// unused, and zbus's generated code still reads them.
#![allow(clippy::used_underscore_binding)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::desk::Desk;

/// A virtual X display for one test.
#[derive(Debug)]
pub struct Display {
    child: Child,
    /// `:N`, what `DISPLAY` is set to.
    pub name: String,
}

impl Display {
    /// Starts Xvfb on a display number it chooses itself (`-displayfd`), so tests in parallel
    /// never race for one.
    pub fn start() -> Self {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts (package xvfb; ./dev.sh installs it)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("Xvfb prints its display number");
        let number = line.trim();
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "Xvfb did not print a display number: {line:?}"
        );
        Self {
            name: format!(":{number}"),
            child,
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment the tray app runs in: the desk's (home, products, machine, session bus),
/// the display, and its own home and config directory (the autostart entry lands there, not
/// in the tester's home). GL probing is off: Xvfb has no GPU and the webview renders without it.
pub fn desktop_env<'c>(
    desk: &Desk,
    display: &Display,
    command: &'c mut Command,
) -> &'c mut Command {
    desk.apply(command)
        .env("DISPLAY", &display.name)
        .env("HOME", desk.path("user"))
        .env("XDG_CONFIG_HOME", desk.path("config"))
        .env("XDG_RUNTIME_DIR", desk.session.dir())
        .env("GDK_BACKEND", "x11")
        .env("NO_AT_BRIDGE", "1")
        .env("LAPWING_LOG", "info")
}

/// One notification as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Default)]
struct Recorder {
    sent: Arc<Mutex<Vec<Sent>>>,
}

// The interface's methods are fixed by the specification, so some take arguments (and
// `self`) they do not use.
#[allow(clippy::unused_self)]
#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Recorder {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut sent = self.sent.lock().expect("recorder lock");
        sent.push(Sent {
            app_name,
            summary,
            body,
            actions,
        });
        u32::try_from(sent.len()).unwrap_or(u32::MAX)
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into(), "actions".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "lapwing-test-recorder".into(),
            "lapwing".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    fn close_notification(&self, _id: u32) {}
}

/// A notification server (`org.freedesktop.Notifications`) on a session bus that records
/// every notification it is sent.
#[derive(Debug)]
pub struct NotificationServer {
    sent: Arc<Mutex<Vec<Sent>>>,
    _connection: zbus::blocking::Connection,
}

impl NotificationServer {
    pub fn start(bus_address: &str) -> Self {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            sent: Arc::clone(&sent),
        };
        let connection = zbus::blocking::connection::Builder::address(bus_address)
            .expect("bus address")
            .name("org.freedesktop.Notifications")
            .expect("well-known name")
            .serve_at("/org/freedesktop/Notifications", recorder)
            .expect("object path")
            .build()
            .expect("the notification server joins the session bus");
        Self {
            sent,
            _connection: connection,
        }
    }

    /// Waits until a notification matches `wanted`, for at most `timeout`.
    pub fn wait_for(&self, timeout: Duration, wanted: impl Fn(&Sent) -> bool) -> Option<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.all().into_iter().find(|s| wanted(s)) {
                return Some(found);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn all(&self) -> Vec<Sent> {
        self.sent.lock().expect("recorder lock").clone()
    }
}

/// The process and its descendants (the webview's web and network processes among them).
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces: fields follow the last ')'.
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.entry(parent).or_default().push(pid);
        }
    }
    let mut tree = vec![root];
    let mut index = 0;
    while index < tree.len() {
        if let Some(children) = parents.get(&tree[index]) {
            tree.extend(children);
        }
        index += 1;
    }
    tree
}

/// Every socket of these processes that accepts traffic from others: a TCP socket in LISTEN
/// and a UDP socket bound but not connected (anyone may send to it). Each entry names the
/// table, the local address and the process.
pub fn listening_sockets(pids: &[u32]) -> Vec<String> {
    let mut owners: HashMap<String, u32> = HashMap::new();
    for &pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && let Some(inode) = link
                    .to_str()
                    .and_then(|l| l.strip_prefix("socket:["))
                    .and_then(|l| l.strip_suffix(']'))
            {
                owners.insert(inode.to_owned(), pid);
            }
        }
    }
    let mut found = Vec::new();
    for table in ["tcp", "tcp6", "udp", "udp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(state), Some(inode)) =
                (fields.get(1), fields.get(2), fields.get(3), fields.get(9))
            else {
                continue;
            };
            let Some(&pid) = owners.get(*inode) else {
                continue;
            };
            let unconnected = remote
                .split(':')
                .next()
                .is_some_and(|a| a.bytes().all(|b| b == b'0'));
            let listening = if table.starts_with("tcp") {
                *state == "0A"
            } else {
                unconnected
            };
            if listening {
                found.push(format!("{table} {local} (pid {pid})"));
            }
        }
    }
    found
}

/// `tauri-driver` in front of `WebKitWebDriver`, started for one test.
#[derive(Debug)]
pub struct TauriDriver {
    child: Child,
    pub url: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `tauri-driver` from the PATH or cargo's bin directory (`cargo xtask setup` installs it).
fn tauri_driver_path() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo"),
        PathBuf::from,
    );
    let installed = cargo_home.join("bin/tauri-driver");
    if installed.exists() {
        return installed;
    }
    PathBuf::from("tauri-driver")
}

impl TauriDriver {
    pub fn start(desk: &Desk, display: &Display) -> Self {
        Self::start_with(desk, display, |_| {})
    }

    /// [`TauriDriver::start`] with the environment (the app's too) changed by `adjust` last.
    pub fn start_with(desk: &Desk, display: &Display, adjust: impl FnOnce(&mut Command)) -> Self {
        let port = free_port();
        let native = free_port();
        let mut command = Command::new(tauri_driver_path());
        command
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(desk.path("tauri-driver.log")).expect("log file"),
            ));
        desktop_env(desk, display, &mut command);
        // The app turns GDK's GL probing off for itself (`GDK_GL=disable`, see `lean.rs`); the
        // window renders the same, but WebKitWebDriver's screenshot then never returns. An
        // empty `GDK_GL` keeps GDK's default and tells the app to leave it alone.
        command.env("GDK_GL", "");
        adjust(&mut command);
        let child = command
            .spawn()
            .expect("tauri-driver starts (cargo xtask setup installs it)");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while driver.request("GET", "/status", None).is_err() {
            assert!(
                Instant::now() < deadline,
                "tauri-driver did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        driver
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let url = format!("{}{path}", self.url);
        let response = match (method, body) {
            ("POST", Some(body)) => agent.post(&url).send_json(body),
            ("POST", None) => agent.post(&url).send_json(json!({})),
            ("DELETE", _) => agent.delete(&url).call(),
            _ => agent.get(&url).call(),
        };
        let mut response = response.map_err(|e| e.to_string())?;
        let status = response.status();
        let value: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| format!("{method} {path}: {status}: {e}"))?;
        if status.is_success() {
            Ok(value["value"].clone())
        } else {
            Err(format!("{method} {path}: {status}: {}", value["value"]))
        }
    }

    /// Starts the app with `args` and opens a session on its first window.
    pub fn session(&self, application: &Path, args: &[&str]) -> Session<'_> {
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "tauri:options": { "application": application, "args": args }
            }}
        });
        let value = self
            .request("POST", "/session", Some(&capabilities))
            .expect("a WebDriver session on the app's window");
        let id = value["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        Session { driver: self, id }
    }
}

impl Drop for TauriDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebDriver session on the app (W3C WebDriver over HTTP).
#[derive(Debug)]
pub struct Session<'d> {
    driver: &'d TauriDriver,
    id: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Session<'_> {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        self.driver
            .request(method, &format!("/session/{}{path}", self.id), body)
    }

    /// Waits for an element matching the CSS `selector` (windows build their DOM after the
    /// first IPC answers).
    pub fn find(&self, selector: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self.call(
                "POST",
                "/element",
                Some(&json!({"using": "css selector", "value": selector})),
            );
            if let Ok(value) = &found
                && let Some(id) = value[ELEMENT].as_str()
            {
                return id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {selector:?} after 20 s ({found:?}); the page says: {}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn click(&self, selector: &str) {
        let element = self.find(selector);
        self.call("POST", &format!("/element/{element}/click"), None)
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    /// Clicks what closes the window it is in: WebDriver may then answer that the window is
    /// gone, which is the point ([`Session::wait_closed`] checks it).
    pub fn click_closing(&self, selector: &str) {
        let element = self.find(selector);
        if let Err(e) = self.call("POST", &format!("/element/{element}/click"), None) {
            assert!(e.contains("no such window"), "click {selector}: {e}");
        }
    }

    pub fn type_into(&self, selector: &str, text: &str) {
        let element = self.find(selector);
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(&json!({ "text": text })),
        )
        .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    }

    /// Runs `script` in the page and returns its result.
    pub fn execute(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": [] })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}"))
    }

    /// The page's visible text.
    pub fn text(&self) -> String {
        self.call(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": "return document.body ? document.body.innerText : ''", "args": [] })),
        )
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
    }

    /// Waits until the page's text holds `wanted`.
    pub fn wait_for_text(&self, wanted: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if text.contains(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the window never said {wanted:?}; it says:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `script` (a function body) returns `true` in the page.
    pub fn wait_until(&self, script: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let done = self
                .call(
                    "POST",
                    "/execute/sync",
                    Some(&json!({ "script": script, "args": [] })),
                )
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if done {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "never true: {script}
the page says:
{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Presses and releases Escape wherever the focus is (a real key event, as a person's).
    pub fn press_escape(&self) {
        let escape = "\u{E00C}";
        self.call(
            "POST",
            "/actions",
            Some(&json!({ "actions": [{
                "type": "key", "id": "keyboard",
                "actions": [{ "type": "keyDown", "value": escape }, { "type": "keyUp", "value": escape }]
            }]})),
        )
        .or_else(|e| {
            // Escape may close the window before WebDriver answers.
            if e.contains("no such window") { Ok(Value::Null) } else { Err(e) }
        })
        .unwrap_or_else(|e| panic!("press Escape: {e}"));
    }

    /// Waits until the window `handle` is gone.
    pub fn wait_closed(&self, handle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.handles().iter().any(|h| h == handle) {
            assert!(Instant::now() < deadline, "the window {handle} stayed open");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn handles(&self) -> Vec<String> {
        self.call("GET", "/window/handles", None)
            .expect("window handles")
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn handle(&self) -> String {
        self.call("GET", "/window", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("current window handle")
    }

    pub fn switch_to(&self, handle: &str) {
        self.call("POST", "/window", Some(&json!({ "handle": handle })))
            .unwrap_or_else(|e| panic!("switch to window {handle}: {e}"));
    }

    /// Waits for a window that is not among `known` and switches to it.
    pub fn switch_to_new_window(&self, known: &[String]) -> String {
        let known: HashSet<&String> = known.iter().collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(new) = self.handles().into_iter().find(|h| !known.contains(h)) {
                self.switch_to(&new);
                return new;
            }
            assert!(Instant::now() < deadline, "no new window after 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes a PNG of the current window to `path`.
    pub fn screenshot(&self, path: &Path) {
        let data = self.call("GET", "/screenshot", None).expect("screenshot");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().expect("base64 text"))
            .expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("screenshot written");
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        let _ = self
            .driver
            .request("DELETE", &format!("/session/{}", self.id), None);
    }
}

/// Where test artifacts (screenshots) go: `target/<name>`.
pub fn artifact_dir(name: &str) -> PathBuf {
    crate::bin_dir()
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_owned)
        .join(name)
}
