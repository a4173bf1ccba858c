//! The tray app end to end: the real `lapwing` binary under Xvfb on a private session bus
//! with a real gnome-keyring, against a real `lapd` on loopback. `tauri-driver` and
//! `WebKitWebDriver` drive its real windows; a notification server on the bus records what
//! the app sends; `/proc` tells which sockets it holds.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lapwing_secrets::test_util::Setup;
use lapwing_system_tests::desk::Desk;
use lapwing_system_tests::desktop::{
    Display, NotificationServer, TauriDriver, artifact_dir, desktop_env, listening_sockets,
    process_tree,
};
use lapwing_system_tests::{ADDON_SKU, BASE_SKU, Server, Vendor, bin};

const STUDIO: &str = "acme-studio";

/// A key one character away from `key` (its first character changed), which the local check
/// refuses and whose suggestions hold `key`.
fn mistyped(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn a_product_goes_from_not_activated_to_activated_in_the_real_window() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365", "--feature", "pro"]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let display = Display::start();
    let driver = TauriDriver::start(&desk, &display);
    let shots = artifact_dir("e2e-screenshots");

    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find(&format!("[data-product=\"{STUDIO}\"]"));
    app.wait_for_text("Not activated", Duration::from_secs(20));
    app.screenshot(&shots.join("products-not-activated.png"));
    let products = app.handle();

    app.click(&format!("[data-focus=\"{STUDIO}:key\"]"));
    app.switch_to_new_window(std::slice::from_ref(&products));
    // A key typed with a typo: refused locally, with the right key offered as a fix.
    app.type_into("#key-input", &mistyped(&key));
    app.find(&format!("button[aria-label=\"Use {key}\"]"));
    app.screenshot(&shots.join("key-typo-suggestion.png"));
    app.click(&format!("button[aria-label=\"Use {key}\"]"));
    app.find("#activate-key:not([disabled])");
    app.click("#activate-key");
    app.wait_for_text("Activated until", Duration::from_secs(30));
    app.screenshot(&shots.join("key-activated.png"));
    let text = app.text();
    assert!(
        !text.contains(&key),
        "the key window shows the key in full without being asked:\n{text}"
    );

    // The products window follows without a reload (status-changed).
    app.switch_to(&products);
    app.wait_for_text("Activated until", Duration::from_secs(20));
    app.screenshot(&shots.join("products-activated.png"));

    // The engine's own record agrees: activated, by this server, with the license's feature.
    let status = desk.json(&["status", "--json"]);
    let studio = &status[0];
    assert_eq!(studio["state"], "activated", "{status}");
    assert_eq!(studio["features"][0], "pro", "{status}");

    // Every other window opens and renders; each gets a screenshot for the user guide.
    let address = server.addr.to_string();
    for (view, product, wanted) in [
        ("server", "'acme-studio'", address.as_str()),
        ("diagnostics", "null", "Copy report"),
        ("about", "null", "Third-party software"),
        ("settings", "null", "Start Lapwing when I log in"),
    ] {
        app.switch_to(&products);
        let known = app.handles();
        app.execute(&format!(
            "window.__TAURI_INTERNALS__.invoke('open_window', {{ view: '{view}', product: {product} }}); return true"
        ));
        app.switch_to_new_window(&known);
        app.wait_for_text(wanted, Duration::from_secs(30));
        if view == "diagnostics" {
            app.find("li.check");
        }
        app.screenshot(&shots.join(format!("{view}.png")));
    }
}

/// The tray app started as a person's login would start it (no WebDriver).
struct Tray {
    child: Child,
}

impl Tray {
    fn start(desk: &Desk, display: &Display, args: &[&str]) -> Self {
        Self::start_with(desk, display, args, |_| {})
    }

    /// [`Tray::start`] with the environment changed by `adjust` last.
    fn start_with(
        desk: &Desk,
        display: &Display,
        args: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Self {
        let mut command = Command::new(bin("lapwing"));
        command.args(args).stdout(Stdio::null()).stderr(Stdio::from(
            std::fs::File::create(desk.path("lapwing.log")).expect("log file"),
        ));
        desktop_env(desk, display, &mut command);
        adjust(&mut command);
        Self {
            child: command.spawn().expect("the tray app starts"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Tray {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A desk with the studio installed and its key (a license of `days`) stored through
/// `lapctl`, which activates it against a running `lapd`.
fn studio_with_key(days: u32) -> (Vendor, Server, Desk) {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", &days.to_string()]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let out = desk.set_key(STUDIO, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (vendor, server, desk)
}

fn log(desk: &Desk) -> String {
    std::fs::read_to_string(desk.path("lapwing.log")).unwrap_or_default()
}

#[test]
fn a_license_about_to_end_is_announced_once_on_the_session_bus() {
    let (_vendor, _server, desk) = studio_with_key(3);
    let notifications = NotificationServer::start(desk.session.address());
    let display = Display::start();

    let mut tray = Tray::start(&desk, &display, &[]);
    let warning = notifications.wait_for(Duration::from_secs(30), |n| {
        n.summary.contains(STUDIO) && n.summary.contains("license ends")
    });
    assert!(
        warning.is_some(),
        "no warning reached the notification server; it got {:?}\n{}",
        notifications.all(),
        log(&desk)
    );
    assert!(tray.is_running(), "the tray app stopped:\n{}", log(&desk));

    // A second run of the app remembers that the warning was given.
    drop(tray);
    let before = notifications.all().len();
    tray = Tray::start(&desk, &display, &[]);
    std::thread::sleep(Duration::from_secs(5));
    assert!(tray.is_running(), "the tray app stopped:\n{}", log(&desk));
    let again: Vec<_> = notifications.all().into_iter().skip(before).collect();
    assert!(
        again.iter().all(|n| !n.summary.contains("license ends")),
        "the same warning was given twice: {again:?}"
    );
}

#[test]
fn the_running_app_holds_no_listening_socket() {
    let (_vendor, server, desk) = studio_with_key(365);
    let display = Display::start();

    // With a window open, so the webview's processes are in the tree too.
    // In the default configuration: mDNS on (the desk turns it off for the other tests).
    let mut tray = Tray::start_with(&desk, &display, &["--open", "products"], |command| {
        command.env_remove("LAPWING_NO_MDNS");
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut tree = Vec::new();
    while Instant::now() < deadline {
        tree = process_tree(tray.pid());
        if tree.len() > 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        tree.len() > 1,
        "the webview's processes never started:\n{}",
        log(&desk)
    );
    // Let the engine activate and the window load, then look at every socket held.
    std::thread::sleep(Duration::from_secs(3));
    assert!(tray.is_running(), "the tray app stopped:\n{}", log(&desk));
    let tree = process_tree(tray.pid());
    let listening = listening_sockets(&tree);
    assert!(
        listening.is_empty(),
        "the app listens: {listening:?} (processes {tree:?})"
    );
    // The check itself sees listeners: lapd's socket is found in lapd's process.
    assert!(
        !listening_sockets(&[server.pid()]).is_empty(),
        "the socket check found nothing even in lapd"
    );
}

/// Whether every element matching these selectors is wholly inside the window, unscrolled.
fn in_view_script(selectors: &[&str]) -> String {
    let list = selectors
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "return window.scrollY === 0 && [{list}].every((s) => {{ const e = document.querySelector(s); \
         if (!e) return false; const r = e.getBoundingClientRect(); \
         return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }})"
    )
}

#[test]
fn the_key_window_shows_its_result_in_view_and_closes_with_done_and_escape() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let display = Display::start();
    let driver = TauriDriver::start(&desk, &display);
    let shots = artifact_dir("e2e-screenshots");

    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find(&format!("[data-product=\"{STUDIO}\"]"));
    let products = app.handle();
    // About and Diagnostics are reachable from the Products window.
    app.find("#open-about");
    app.find("#open-diagnostics");

    app.click(&format!("[data-focus=\"{STUDIO}:key\"]"));
    let key_window = app.switch_to_new_window(std::slice::from_ref(&products));
    app.type_into("#key-input", &mistyped(&key));
    app.find(&format!("button[aria-label=\"Use {key}\"]"));
    // The tallest state of the form, in the window the app opened: Activate is in view.
    app.wait_until(&in_view_script(&["#activate-key"]), Duration::from_secs(5));
    app.click(&format!("button[aria-label=\"Use {key}\"]"));
    app.find("#activate-key:not([disabled])");
    app.click("#activate-key");
    app.wait_for_text("Activated until", Duration::from_secs(30));
    app.screenshot(&shots.join("key-result-in-view.png"));
    app.wait_until(
        &in_view_script(&["#result .message-ok", "#done"]),
        Duration::from_secs(5),
    );
    let focused = app.execute("return document.activeElement && document.activeElement.id");
    assert_eq!(focused, "done", "Done takes the focus after a result");
    assert!(
        !app.execute("return document.querySelector('#key-input').offsetParent !== null")
            .as_bool()
            .unwrap_or(true),
        "the form folds away after a result"
    );
    app.click_closing("#done");
    app.wait_closed(&key_window, Duration::from_secs(10));

    // Escape closes a dialog: the About window, opened from the Products window.
    app.switch_to(&products);
    let known = app.handles();
    app.click("#open-about");
    let about = app.switch_to_new_window(&known);
    app.wait_for_text("Third-party software", Duration::from_secs(30));
    let text = app.text();
    assert!(
        text.contains("WebKitGTK"),
        "About names the web engine:\n{text}"
    );
    app.press_escape();
    app.wait_closed(&about, Duration::from_secs(10));
    assert!(app.handles().contains(&products), "only the dialog closed");
}

/// Another product's key typed into a working product's key window: the server ignores it,
/// so the window says it was not accepted yet (no success), the working key stays, and
/// "Drop the new key" forgets it.
#[test]
fn another_products_key_in_the_key_window_is_not_shown_as_success_and_can_be_dropped() {
    let vendor = Vendor::new();
    let (base_key, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let (addon_key, _) = vendor.new_license(ADDON_SKU, &[]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let out = desk.set_key(STUDIO, &base_key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let display = Display::start();
    let driver = TauriDriver::start(&desk, &display);

    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find(&format!("[data-product=\"{STUDIO}\"]"));
    let products = app.handle();
    app.click(&format!("[data-focus=\"{STUDIO}:key\"]"));
    app.switch_to_new_window(std::slice::from_ref(&products));
    app.type_into("#key-input", &addon_key);
    app.find("#activate-key:not([disabled])");
    app.click("#activate-key");
    app.wait_for_text("not accepted yet", Duration::from_secs(30));
    assert_eq!(
        app.execute("return document.querySelectorAll('#result .message-ok').length")
            .as_u64(),
        Some(0),
        "no success is shown for a key no server accepted:\n{}",
        app.text()
    );
    app.wait_until(
        &in_view_script(&["#drop-pending-key"]),
        Duration::from_secs(5),
    );
    let shown = desk.json(&["key", "show", STUDIO, "--reveal", "--json"]);
    assert_eq!(shown["key"], base_key.as_str(), "the working key stays");

    app.click("#drop-pending-key");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = desk.json(&["status", "--json"]);
        if status[0]["pending_key"].is_null() {
            assert_eq!(status[0]["state"], "activated");
            break;
        }
        assert!(Instant::now() < deadline, "still pending: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deactivating on this computer in the real Products window frees the one seat: the dialog
/// says so, the engine agrees, and another computer then gets the seat.
#[test]
fn deactivating_in_the_real_window_frees_the_seat_for_another_computer() {
    let vendor = Vendor::new();
    let (key, _) = vendor.new_license(BASE_SKU, &["--days", "365", "--seats", "1"]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let out = desk.set_key(STUDIO, &key);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another computer (another machine id): refused while the seat is taken.
    let other = lapwing_system_tests::home::Home::new();
    std::fs::write(
        other.path("machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .expect("machine id");
    other.place_studio(&vendor, &server.addr.to_string());
    assert!(
        !other.set_key(STUDIO, &key).status.success(),
        "the seat is taken"
    );

    let display = Display::start();
    let driver = TauriDriver::start(&desk, &display);
    let shots = artifact_dir("e2e-screenshots");
    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find(&format!("[data-product=\"{STUDIO}\"]"));
    app.click(&format!("#deactivate-open-{STUDIO}"));
    app.find(&format!("#deactivate-confirm-{STUDIO}"));
    app.screenshot(&shots.join("deactivate-confirm.png"));
    app.click(&format!("#deactivate-confirm-{STUDIO}"));
    app.wait_until(
        &format!(
            "return document.querySelector('#deactivate-result-{STUDIO}[data-outcome=\"released\"]') !== null"
        ),
        Duration::from_secs(30),
    );
    app.wait_for_text("Deactivated on this computer", Duration::from_secs(5));
    app.screenshot(&shots.join("deactivate-released.png"));

    let status = desk.json(&["status", "--json"]);
    assert_eq!(status[0]["state"], "deactivated", "{status}");
    assert!(
        !desk.path("home/activations/acme-studio.json").exists(),
        "the activation record is gone"
    );
    let out = other.run(&["activate", STUDIO]);
    assert!(
        out.status.success(),
        "the other computer gets the freed seat: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn open_key_and_server_windows_follow_a_change_made_with_lapctl() {
    let vendor = Vendor::new();
    let (first, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let (second, _) = vendor.new_license(BASE_SKU, &["--days", "365"]);
    let server = vendor.serve(&[]);
    let desk = Desk::new(Setup::Unlocked);
    desk.place_studio(&vendor, &server.addr.to_string(), "");
    let out = desk.set_key(STUDIO, &first);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let display = Display::start();
    let driver = TauriDriver::start(&desk, &display);
    let last_group = |key: &str| key.rsplit('-').next().unwrap_or_default().to_owned();

    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find(&format!("[data-product=\"{STUDIO}\"]"));
    let products = app.handle();
    app.click(&format!("[data-focus=\"{STUDIO}:key\"]"));
    app.switch_to_new_window(std::slice::from_ref(&products));
    app.wait_for_text(&format!("-{}", last_group(&first)), Duration::from_secs(20));

    // Another key, stored in a terminal while the window is open.
    let out = desk.set_key(STUDIO, &second);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.wait_for_text(
        &format!("-{}", last_group(&second)),
        Duration::from_secs(20),
    );

    // The server window, then `lapctl server set` and `server clear` in a terminal.
    app.switch_to(&products);
    let known = app.handles();
    app.click(&format!("[data-focus=\"{STUDIO}:server\"]"));
    app.switch_to_new_window(&known);
    app.find(".facts");
    let out = desk.run(&["server", "set", "--product", STUDIO, "192.0.2.7:4711"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.wait_until(
        "return /This product\\s+192\\.0\\.2\\.7:4711/.test(document.querySelector('.facts').innerText)",
        Duration::from_secs(20),
    );
    let out = desk.run(&["server", "clear", "--product", STUDIO]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.wait_until(
        "return /This product\\s+not set/.test(document.querySelector('.facts').innerText)",
        Duration::from_secs(20),
    );
}

/// The environment of a desktop without a session bus: no keyring either, so the secrets go
/// to the file store; the runtime directory is the desk's own.
fn without_session_bus(desk: &Desk, command: &mut Command) {
    command
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            format!("unix:path={}", desk.path("no-bus").display()),
        )
        .env("XDG_RUNTIME_DIR", desk.path("runtime"))
        .env("LAPWING_INSECURE_FILE_STORE", "1");
}

fn private_runtime_dir(desk: &Desk) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = desk.path("runtime");
    std::fs::create_dir_all(&dir).expect("runtime dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
}

/// Waits for a log line holding every one of `parts` (fields may be coloured between them).
fn wait_for_log(desk: &Desk, parts: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = log(desk);
        if text.lines().any(|l| parts.iter().all(|p| l.contains(p))) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "the log never said {parts:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_a_session_bus_the_app_says_so_opens_its_window_and_stays_single() {
    use std::os::unix::fs::PermissionsExt as _;
    let desk = Desk::new(Setup::Unlocked);
    private_runtime_dir(&desk);
    let display = Display::start();

    let mut tray = Tray::start_with(&desk, &display, &[], |c| without_session_bus(&desk, c));
    let text = wait_for_log(
        &desk,
        &["opening window", "products"],
        Duration::from_secs(30),
    );
    assert!(
        text.contains("no tray icon can be seen") && text.contains("no session bus"),
        "the log does not say that no tray can be seen:\n{text}"
    );
    assert!(!text.contains("tray ready"), "the log pretends:\n{text}");
    let socket = desk.path("runtime/lapwing/handover.sock");
    let mode = std::fs::metadata(&socket)
        .expect("the handover socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the socket is the user's alone");

    // A second launch hands over and leaves; the first opens what it asked for.
    let mut second = Command::new(bin("lapwing"));
    second
        .args(["--open", "about"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    desktop_env(&desk, &display, &mut second);
    without_session_bus(&desk, &mut second);
    let mut second = second.spawn().expect("a second launch");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the second launch did not leave");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
    wait_for_log(&desk, &["opening window", "about"], Duration::from_secs(30));
    assert!(tray.is_running(), "the first app stopped:\n{}", log(&desk));
}

#[test]
fn without_a_tray_host_the_products_window_says_it_is_the_main_window() {
    let desk = Desk::new(Setup::Unlocked);
    private_runtime_dir(&desk);
    let display = Display::start();
    let driver = TauriDriver::start_with(&desk, &display, |c| without_session_bus(&desk, c));

    let app = driver.session(&bin("lapwing"), &["--open", "products"]);
    app.find("#no-tray:not([hidden])");
    let text = app.text();
    assert!(
        text.contains("No tray icon can be shown") && text.contains("closing it quits Lapwing"),
        "the Products window does not say it is the main window:\n{text}"
    );
    // Closing it quits (`windows::quits_when_closed`, unit-tested): WebDriver's Close Window
    // only destroys the web view, not the window, so it cannot stand in for the close button.
}
