//! Test harness (feature `test-util`, Linux): a private D-Bus session bus with its own
//! gnome-keyring, so tests use the real Secret Service without touching the developer's
//! keyring, and can put it in the states that matter (unlocked, locked, no keyring, no
//! service, no bus).
//!
//! The keyring crate finds the bus through `DBUS_SESSION_BUS_ADDRESS`, and the environment is
//! process-wide: changing it inside a test would need `std::env::set_var` (`unsafe` in edition
//! 2024, forbidden here, and racy with the other test threads). So the code under test runs in
//! a process whose environment points at the private bus from its start:
//!
//! - [`in_private_session`] re-runs the calling test, alone, as a child process of the same
//!   test binary, and fails the test if the child fails or runs no test;
//! - [`PrivateSession::apply`] points a [`Command`] (`lapctl`, the tray) at the private bus.
//!
//! ```no_run
//! use lapwing_secrets::test_util::{Setup, in_private_session};
//! use lapwing_secrets::{KeyringStore, SecretStore};
//!
//! #[test]
//! fn provisioning_keeps_the_nonce_in_the_keyring() {
//!     in_private_session(Setup::Unlocked, "provisioning_keeps_the_nonce_in_the_keyring", || {
//!         let store = KeyringStore::new().expect("keyring");
//!         store.set_install_nonce("acme", &[7; 16]).expect("set");
//!     });
//! }
//! ```
//!
//! Another crate's tests reach it with
//! `lapwing-secrets = { workspace = true, features = ["test-util"] }` in `[dev-dependencies]`.
//! A test inside a module passes its full libtest name (`module::test_name`); a wrong name is
//! caught (the child must report exactly one test passed).
//!
//! A missing `dbus-daemon` or `gnome-keyring-daemon` fails the test with the package to
//! install: the keyring tests never skip themselves. Processes are killed when the
//! [`PrivateSession`] is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// Set in the child's environment to the name of the test it runs.
pub const CHILD_MARKER: &str = "LAPWING_TEST_PRIVATE_SESSION";

/// The password of the private login keyring.
pub const KEYRING_PASSWORD: &str = "lapwing-test-password";

const SECRETS: &str = "org.freedesktop.secrets";
const SECRETS_PATH: &str = "/org/freedesktop/secrets";
const SERVICE_INTERFACE: &str = "org.freedesktop.Secret.Service";
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);

/// The state the private session starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Setup {
    /// gnome-keyring with a "login" keyring, unlocked, as the default collection: a desktop
    /// session after login.
    Unlocked,
    /// As `Unlocked`, then the login keyring locked (Secret Service `Lock`). No prompter is on
    /// the bus, so unlock prompts are dismissed at once, as when no desktop can show them.
    Locked,
    /// gnome-keyring running but never unlocked, in a fresh home: no keyring, no default
    /// collection.
    NoKeyring,
    /// A session bus on which nothing provides, or can be started to provide, the Secret
    /// Service.
    NoSecretService,
    /// No bus: the address names a socket that does not exist.
    NoBus,
}

/// A private session bus (and keyring, by [`Setup`]) in a temporary directory.
#[derive(Debug)]
pub struct PrivateSession {
    dir: tempfile::TempDir,
    address: String,
    bus: Option<Child>,
    keyring: Option<Child>,
}

/// Fails the test with the Debian package to install when `program` is not on PATH.
fn require(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    assert!(
        found,
        "{program} is not installed: the keyring tests need a real session bus and \
         gnome-keyring (Debian: apt-get install {package}; ./dev.sh installs it)"
    );
}

/// The end of a log file, for failure messages.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!("--- {} ---\n{}", path.display(), &text[start..])
}

impl PrivateSession {
    /// Starts the bus and the keyring and waits until they answer. Panics with the reason
    /// (and the daemons' logs) when they cannot be started.
    pub fn start(setup: Setup) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lapwing-session-")
            .tempdir()
            .expect("temporary directory for the private session");
        let mut session = PrivateSession {
            address: format!("unix:path={}", dir.path().join("no-bus-here").display()),
            dir,
            bus: None,
            keyring: None,
        };
        if setup == Setup::NoBus {
            return session;
        }
        session.start_bus();
        match setup {
            Setup::Unlocked => {
                session.start_keyring(true);
                session.wait_for_default_collection();
            }
            Setup::Locked => {
                session.start_keyring(true);
                session.wait_for_default_collection();
                session.lock_keyring();
            }
            Setup::NoKeyring => {
                session.start_keyring(false);
            }
            Setup::NoSecretService | Setup::NoBus => {}
        }
        session
    }

    /// The bus address (`unix:path=…`), what `DBUS_SESSION_BUS_ADDRESS` is set to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The private session's temporary directory (logs, the keyring's home).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Points `command` at the private bus.
    pub fn apply<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        command.env("DBUS_SESSION_BUS_ADDRESS", &self.address)
    }

    fn start_bus(&mut self) {
        require("dbus-daemon", "dbus");
        let root = self.dir.path();
        let services = root.join("services");
        std::fs::create_dir_all(&services).expect("bus service directory");
        // Our own configuration: an empty service directory, so the bus cannot start the
        // system's gnome-keyring (or a prompter) behind the test's back.
        let config = root.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                root.join("bus").display(),
                services.display()
            ),
        )
        .expect("bus configuration");
        let log = root.join("dbus-daemon.log");
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("bus log"))
            .spawn()
            .expect("dbus-daemon starts");
        let stdout = child.stdout.take().expect("piped stdout");
        self.bus = Some(child);
        // The address is printed once the bus listens.
        let mut address = String::new();
        BufReader::new(stdout)
            .read_line(&mut address)
            .expect("read the bus address");
        let address = address.trim();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed no address\n{}",
            tail(&log)
        );
        address.clone_into(&mut self.address);
    }

    fn start_keyring(&mut self, unlock: bool) {
        require("gnome-keyring-daemon", "gnome-keyring");
        let root = self.dir.path();
        let home = root.join("home");
        let control = root.join("keyring-control");
        let runtime = root.join("runtime");
        for dir in [&home, &control, &runtime] {
            create_private_dir(dir);
        }
        let log = root.join("gnome-keyring.log");
        let mut command = Command::new("gnome-keyring-daemon");
        command
            .args(["--foreground", "--components=secrets"])
            .arg(format!("--control-directory={}", control.display()))
            // Its own home: keyrings live in $XDG_DATA_HOME/keyrings, never the developer's.
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("GNOME_KEYRING_CONTROL")
            .stdout(File::create(root.join("gnome-keyring.out")).expect("keyring stdout"))
            .stderr(File::create(&log).expect("keyring log"));
        if unlock {
            // `--unlock` reads the password from standard input up to its end; on a fresh
            // home it creates the "login" keyring with it and makes it the default.
            command.arg("--unlock").stdin(Stdio::piped());
        } else {
            command.stdin(Stdio::null());
        }
        let mut child = command.spawn().expect("gnome-keyring-daemon starts");
        if unlock {
            let mut stdin = child.stdin.take().expect("piped stdin");
            stdin
                .write_all(KEYRING_PASSWORD.as_bytes())
                .expect("password written to gnome-keyring-daemon");
        }
        self.keyring = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        let connection = self.connect();
        let bus = zbus::blocking::fdo::DBusProxy::new(&connection).expect("bus proxy");
        loop {
            let name = zbus::names::BusName::try_from(SECRETS).expect("valid name");
            if bus.name_has_owner(name).expect("NameHasOwner") {
                return;
            }
            self.assert_keyring_alive(&log);
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not claim {SECRETS} within {READY_TIMEOUT:?}\n{}",
                tail(&log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn assert_keyring_alive(&mut self, log: &Path) {
        let exited = self
            .keyring
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten());
        if let Some(status) = exited {
            panic!("gnome-keyring-daemon exited ({status})\n{}", tail(log));
        }
    }

    fn connect(&self) -> Connection {
        zbus::blocking::connection::Builder::address(self.address.as_str())
            .and_then(zbus::blocking::connection::Builder::build)
            .unwrap_or_else(|e| panic!("cannot connect to the private bus {}: {e}", self.address))
    }

    /// Waits until the default collection exists: gnome-keyring may claim its bus name a
    /// moment before it has made the login keyring.
    fn wait_for_default_collection(&mut self) {
        let log = self.dir.path().join("gnome-keyring.log");
        let connection = self.connect();
        let deadline = Instant::now() + READY_TIMEOUT;
        while default_collection(&connection).is_none() {
            self.assert_keyring_alive(&log);
            assert!(
                Instant::now() < deadline,
                "gnome-keyring made no default keyring within {READY_TIMEOUT:?}\n{}",
                tail(&log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Locks the default collection of this session's keyring.
    pub fn lock_keyring(&self) {
        lock_default_collection(&self.connect());
    }

    /// Runs one test of the current test binary (`test_name`, as libtest names it: the path
    /// without the crate name) in a child process on this session's bus. Panics with the
    /// child's output if it fails, does not finish within two minutes, or ran no test.
    pub fn run_test(&self, test_name: &str) {
        let exe = std::env::current_exe().expect("the test binary's path");
        let out_path = self.dir.path().join("child.out");
        let err_path = self.dir.path().join("child.err");
        let mut command = Command::new(exe);
        command
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_MARKER, test_name)
            .stdin(Stdio::null())
            .stdout(File::create(&out_path).expect("child stdout"))
            .stderr(File::create(&err_path).expect("child stderr"));
        self.apply(&mut command);
        let mut child = command.spawn().expect("the test binary runs again");
        let deadline = Instant::now() + CHILD_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the child test") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{test_name} did not finish within {CHILD_TIMEOUT:?} on the private bus \
                     (a keyring call waiting forever?)\n{}\n{}\n{}",
                    tail(&out_path),
                    tail(&err_path),
                    tail(&self.dir.path().join("gnome-keyring.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let logs = || {
            format!(
                "{}\n{}\n{}",
                tail(&out_path),
                tail(&err_path),
                tail(&self.dir.path().join("gnome-keyring.log"))
            )
        };
        assert!(
            status.success(),
            "{test_name} failed on the private bus ({status})\n{}",
            logs()
        );
        // A misspelt name filters every test out and "passes": make sure it ran.
        assert!(
            stdout.contains("test result: ok. 1 passed"),
            "{test_name} did not run in the child (is the name exact?)\n{}",
            logs()
        );
        // What the child printed (figures, notes), shown with `--nocapture`.
        print!("{stdout}");
    }
}

impl Drop for PrivateSession {
    fn drop(&mut self) {
        for child in [self.keyring.take(), self.bus.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn create_private_dir(dir: &Path) {
    use std::os::unix::fs::DirBuilderExt;
    // gnome-keyring refuses a control directory others can enter.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
}

fn default_collection(connection: &Connection) -> Option<OwnedObjectPath> {
    let reply = connection
        .call_method(
            Some(SECRETS),
            SECRETS_PATH,
            Some(SERVICE_INTERFACE),
            "ReadAlias",
            &("default",),
        )
        .ok()?;
    let path: OwnedObjectPath = reply.body().deserialize().ok()?;
    (path.as_str() != "/").then_some(path)
}

fn lock_default_collection(connection: &Connection) {
    let collection = default_collection(connection).expect("the keyring has a default collection");
    connection
        .call_method(
            Some(SECRETS),
            SECRETS_PATH,
            Some(SERVICE_INTERFACE),
            "Lock",
            &(vec![collection.clone()],),
        )
        .expect("Secret Service Lock");
    let locked: OwnedValue = connection
        .call_method(
            Some(SECRETS),
            collection.as_str(),
            Some("org.freedesktop.DBus.Properties"),
            "Get",
            &("org.freedesktop.Secret.Collection", "Locked"),
        )
        .expect("read the collection's Locked property")
        .body()
        .deserialize()
        .expect("a variant");
    assert_eq!(
        bool::try_from(locked).ok(),
        Some(true),
        "the default collection did not lock"
    );
}

/// Locks the default collection of the Secret Service on the session bus this process uses
/// (inside [`in_private_session`]: the private one), to lock the keyring mid-test.
pub fn lock_session_keyring() {
    let connection = Connection::session().expect("the session bus");
    lock_default_collection(&connection);
}

/// Runs `body` in a child process on a private session in the state `setup`, then fails the
/// test if the child failed. `test_name` must be the calling test's name as libtest prints it
/// (the function name for a test at the top of an integration test file).
///
/// In the parent this starts the session and re-runs the test; in the child (marked by
/// [`CHILD_MARKER`]) it runs `body`.
pub fn in_private_session(setup: Setup, test_name: &str, body: impl FnOnce()) {
    if std::env::var(CHILD_MARKER).as_deref() == Ok(test_name) {
        body();
        return;
    }
    let session = PrivateSession::start(setup);
    session.run_test(test_name);
}
