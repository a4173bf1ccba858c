//! A private PostgreSQL server for tests (the `test-util` feature): `initdb` into a temporary
//! folder, a Unix socket only (no TCP port), no system service; gone when the test process
//! ends. lapd's store tests and the system tests share it.
//!
//! It needs PostgreSQL's server programs (Debian's `postgresql` package). Without them the
//! harness fails with the way to install them: no test is skipped.

use std::io::Read as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// PostgreSQL's settings for millions of seats, as the vendor guide (§5) gives them: the
/// hot part of the seat index in PostgreSQL's own cache, and checkpoints far enough apart
/// that one is not forced by the WAL of a burst of new seats (each first change of an index
/// page after a checkpoint writes the whole page to the WAL).
pub const SETTINGS_AT_SCALE: &[(&str, &str)] = &[
    ("shared_buffers", "1GB"),
    ("max_wal_size", "8GB"),
    ("checkpoint_timeout", "30min"),
];

/// Said when the server programs are missing.
pub const INSTALL_HINT: &str = "PostgreSQL's server programs (initdb, postgres) are needed for these tests: `apt-get install postgresql` (./dev.sh setup installs it), or set LAPD_TEST_PG_BIN to the folder holding them";

/// Runs postgres until its standard input closes (this process ending, however it ends, or
/// the handle dropped), then stops it at once and removes its folder.
const SHELL: &str = r#"
bin=$1 data=$2 sock=$3 dir=$4 fsync=$5
shift 5
"$bin" -D "$data" -k "$sock" -c fsync="$fsync" -c synchronous_commit="$fsync" \
    -c full_page_writes="$fsync" -c max_connections=300 "$@" 2>>"$dir/log" &
pid=$!
read -r _ignored
kill -QUIT "$pid" 2>/dev/null
wait "$pid"
rm -rf "$4"
"#;

/// A running PostgreSQL server of this test process.
#[derive(Debug)]
pub struct TempPostgres {
    shell: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    next_database: AtomicU32,
    tls_port: Option<u16>,
}

/// Where `initdb` and `postgres` are: $LAPD_TEST_PG_BIN, or Debian's newest version.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAPD_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) if bin.join("initdb").exists() => bin,
        _ => panic!("{INSTALL_HINT}"),
    }
}

/// The user and group the server runs as: postgres refuses root, so root hands it to the
/// `postgres` system user (or `nobody`); anyone else runs it as themselves.
fn server_user() -> Option<(u32, u32)> {
    let id = |flag: &str, user: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    ["postgres", "nobody"]
        .iter()
        .find_map(|user| Some((id("-u", user)?, id("-g", user)?)))
}

fn as_server_user(command: &mut Command, user: Option<(u32, u32)>) -> &mut Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

impl TempPostgres {
    /// One server for this whole test process (stopped when it ends), fast rather than
    /// durable: fsync off.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<TempPostgres> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(false))
    }

    /// Starts a server of its own; `durable` keeps fsync and synchronous commits on (what
    /// benchmarks measure).
    pub fn start(durable: bool) -> Self {
        Self::start_listening(durable, None, &[])
    }

    /// A durable server set up the way the vendor guide (§5) advises for millions of seats:
    /// the settings in [`SETTINGS_AT_SCALE`], fsync and synchronous commits on.
    pub fn start_at_scale() -> Self {
        Self::start_listening(true, None, SETTINGS_AT_SCALE)
    }

    /// A server that also listens on 127.0.0.1:`port` with TLS on, its certificate signed by a
    /// CA of its own ([`Self::ca_file`]); fsync off.
    pub fn start_tls(port: u16) -> Self {
        Self::start_listening(false, Some(port), &[])
    }

    fn start_listening(durable: bool, tls_port: Option<u16>, settings: &[(&str, &str)]) -> Self {
        let bin = bin_dir();
        let user = server_user();
        let dir = tempfile::Builder::new()
            .prefix("lapd-pg-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("handing the folder to the server's user");
        }
        let data = dir.join("data");
        let out = as_server_user(&mut Command::new(bin.join("initdb")), user)
            .current_dir(&dir)
            .env("LC_ALL", "C")
            .args([
                "-A",
                "trust",
                "-U",
                "lapd",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap_or_else(|e| panic!("initdb: {e}; {INSTALL_HINT}"));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fsync = if durable { "on" } else { "off" };
        // Only the Unix socket, unless TLS is asked for: TLS is for TCP connections.
        let listen: Vec<String> = match tls_port {
            None => vec!["-h".into(), String::new()],
            Some(port) => {
                make_certificates(&dir, user);
                vec![
                    "-h".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                    "-c".into(),
                    "ssl=on".into(),
                    "-c".into(),
                    format!("ssl_cert_file={}", dir.join("server.crt").display()),
                    "-c".into(),
                    format!("ssl_key_file={}", dir.join("server.key").display()),
                ]
            }
        };
        let settings = settings
            .iter()
            .flat_map(|(name, value)| ["-c".to_owned(), format!("{name}={value}")]);
        let mut shell = as_server_user(&mut Command::new("sh"), user)
            .current_dir(&dir)
            .args(["-c", SHELL, "lapd-test-postgres"])
            .arg(bin.join("postgres"))
            .arg(&data)
            .arg(&dir)
            .arg(&dir)
            .arg(fsync)
            .args(&listen)
            .args(settings)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        let stdin = shell.stdin.take();
        let server = Self {
            shell,
            stdin,
            dir,
            next_database: AtomicU32::new(0),
            tls_port,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match postgres::Client::connect(&self.url("postgres"), postgres::NoTls) {
                Ok(_) => return,
                Err(error) if Instant::now() > deadline => {
                    let mut log = String::new();
                    let _ = std::fs::File::open(self.dir.join("log"))
                        .and_then(|mut f| f.read_to_string(&mut log));
                    panic!("postgres did not start: {error}\n{log}");
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The folder holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        match self.tls_port {
            // The socket's name carries the TCP port the server listens on.
            Some(port) => format!(
                "postgresql://lapd@/{name}?host={}&port={port}",
                self.dir.display()
            ),
            None => format!("postgresql://lapd@/{name}?host={}", self.dir.display()),
        }
    }

    /// The CA that signed a TLS server's certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The URL of database `name` over TCP with TLS required (a server from
    /// [`Self::start_tls`]).
    pub fn tls_url(&self, name: &str) -> String {
        let port = self.tls_port.expect("a server started with start_tls");
        format!("postgresql://lapd@127.0.0.1:{port}/{name}?sslmode=require")
    }

    /// Creates a new, empty database and returns its URL.
    pub fn database(&self) -> String {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("lapd_{}_{n}", std::process::id());
        let mut client = postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .expect("connecting to the test server");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a database");
        self.url(&name)
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir` (openssl's command
/// line), the key readable by the server's user only, as postgres requires.
fn make_certificates(dir: &Path, user: Option<(u32, u32)>) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e} (Debian: apt-get install openssl)"));
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let quiet = ["-days", "2"];
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=lapd test CA",
        quiet[0],
        quiet[1],
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("extension file");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-extfile",
        "san.ext",
        quiet[0],
        quiet[1],
    ]);
    let key = dir.join("server.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("key mode");
    if let Some((uid, gid)) = user {
        for file in ["server.key", "server.crt", "ca.crt"] {
            std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).expect("chown");
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.shell.wait();
    }
}
