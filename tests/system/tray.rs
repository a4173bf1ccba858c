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
use lapwing_system_tests::{BASE_SKU, Server, Vendor, bin};

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
        let mut command = Command::new(bin("lapwing"));
        command.args(args).stdout(Stdio::null()).stderr(Stdio::from(
            std::fs::File::create(desk.path("lapwing.log")).expect("log file"),
        ));
        desktop_env(desk, display, &mut command);
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
    let out = desk.run(&["key", "set", STUDIO, &key]);
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
    let mut tray = Tray::start(&desk, &display, &["--open", "products"]);
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
