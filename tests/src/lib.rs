//! Harness for the black-box system tests: finds the real binaries, runs `lapd` on
//! loopback, and speaks LAP to it with a client built from `lap-proto`.

pub mod desk;
pub mod desktop;
pub mod home;
pub mod hostile;
pub mod module_graph;
pub mod netfault;
pub mod wine;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lap_proto::{
    Activation, EphemeralSecret, PendingExchange, Request, SeedV1, ServerPublicKeys, Uuid,
    open_any, seal_request,
};
use zeroize::Zeroizing;

/// Where the workspace's binaries are: `LAPWING_BIN_DIR`, else next to this test executable
/// (`target/<profile>/deps/..`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LAPWING_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_owned()
}

/// The path of a workspace binary. Fails loudly if it was not built: `cargo xtask test`
/// (and `cargo test --workspace`) build every binary first.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace's binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// Runs `lapd` with `args` to completion.
pub fn lapd(args: &[&str]) -> Output {
    Command::new(bin("lapd"))
        .args(args)
        .env("LAPD_LOG", "warn")
        .output()
        .expect("lapd runs")
}

/// Runs `command` with `input` on its stdin, to completion: how the tests give license keys,
/// which never go on a command line.
pub fn output_fed(command: &mut Command, input: &str) -> Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    // A program that refuses before reading closes its end: that is its answer, not ours.
    let _ = stdin.write_all(input.as_bytes());
    drop(stdin);
    child.wait_with_output().expect("the program ends")
}

/// Runs `lapd` with `args` and `input` on its stdin (`--key-file -`).
pub fn lapd_fed(args: &[&str], input: &str) -> Output {
    output_fed(
        Command::new(bin("lapd")).args(args).env("LAPD_LOG", "warn"),
        input,
    )
}

pub use lap_proto::time::unix_now;

/// A vendor's setup in a temporary directory: keys, catalog, database.
#[derive(Debug)]
pub struct Vendor {
    pub dir: tempfile::TempDir,
    pub public: ServerPublicKeys,
}

pub const BASE_SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);
pub const ADDON_SKU: Uuid = Uuid::from_u128(0x0d3f_4b43_4c39_4a43_9a3e_5f7a_1c0e_9b12);

impl Vendor {
    /// Keys from `lapd keygen` and a catalog with a base SKU (30-day evaluation) and an add-on.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = dir.path().join("keys");
        let out = lapd(&["keygen", "--out", keys.to_str().expect("utf-8 path")]);
        assert!(
            out.status.success(),
            "keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            dir.path().join("catalog.toml"),
            format!(
                "# test catalog\n[[sku]]\nid = \"{BASE_SKU}\"\nname = \"Acme Studio\"\nevaluation_days = 30\n\n\
                 [[sku]]\nid = \"{ADDON_SKU}\"\nname = \"Acme Export\"\nbase = \"{BASE_SKU}\"\n"
            ),
        )
        .expect("catalog written");
        let public = public_keys(&String::from_utf8_lossy(&out.stdout));
        Self { dir, public }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("utf-8 path")
            .to_owned()
    }

    /// `lapd license new … --json`, returning (printed key, key bytes).
    pub fn new_license(&self, sku: Uuid, extra: &[&str]) -> (String, [u8; 16]) {
        let catalog = self.path("catalog.toml");
        let sku = sku.to_string();
        let mut args = vec![
            "license",
            "new",
            "--catalog",
            &catalog,
            "--sku",
            &sku,
            "--json",
        ];
        args.extend_from_slice(extra);
        let out = lapd(&args);
        assert!(
            out.status.success(),
            "license new: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
        let key = json["key"].as_str().expect("key").to_owned();
        let bytes: [u8; 16] = hex::decode(json["key_hex"].as_str().expect("key_hex"))
            .expect("hex")
            .try_into()
            .expect("16 bytes");
        (key, bytes)
    }

    /// Starts `lapd serve` on loopback with this vendor's files.
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve".to_owned(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--keys".to_owned(),
            self.path("keys"),
            "--catalog".to_owned(),
            self.path("catalog.toml"),
            "--db".to_owned(),
            self.path("assignments.sqlite"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Server::start(&args)
    }
}

impl Default for Vendor {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads the `[server]` snippet that `lapd keygen` prints.
pub fn public_keys(snippet: &str) -> ServerPublicKeys {
    let value = |name: &str| -> [u8; 32] {
        let line = snippet
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no {name} in {snippet}"));
        let hex_text = line.split('"').nth(1).expect("quoted");
        hex::decode(hex_text)
            .expect("hex")
            .try_into()
            .expect("32 bytes")
    };
    ServerPublicKeys::from_bytes(value("x25519"), &value("ed25519")).expect("valid keys")
}

/// A running `lapd serve`, stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(args: &[String]) -> Self {
        let mut child = Command::new(bin("lapd"))
            .args(args)
            .env("LAPD_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("lapd starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("first line");
        let addr = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("first stdout line {first:?} is not an address"));
        Self { child, addr }
    }

    /// Sends SIGTERM and waits: the graceful path a service manager takes.
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("lapd exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One client installation: what Lapwing will provision per product.
#[derive(Clone, Debug)]
pub struct Installation {
    pub base_id: Uuid,
    pub addon_id: Uuid,
    pub sku: Uuid,
    pub key: [u8; 16],
    pub machine_hash: [u8; 32],
    pub current_license_id: Uuid,
}

impl Installation {
    pub fn new(sku: Uuid, key: [u8; 16], machine: u8) -> Self {
        Self {
            base_id: Uuid::from_u128(0xbb00 + u128::from(machine)),
            addon_id: Uuid::nil(),
            sku,
            key,
            machine_hash: [machine; 32],
            current_license_id: Uuid::nil(),
        }
    }

    pub fn request(&self, time: u64) -> Request {
        let seed = SeedV1 {
            decoded_key: self.key,
            machine_hash: self.machine_hash,
            num_cpus: 1,
            num_cores: 4,
            install_nonce: [0x5e; 16],
        };
        Request {
            client_time: time,
            client_base_id: self.base_id,
            client_addon_id: self.addon_id,
            sku_id: self.sku,
            current_license_id: self.current_license_id,
            client_seed: Zeroizing::new(seed.encode(128).expect("room").to_vec()),
        }
    }
}

/// Numbers every exchange of this process, so none reuses an ephemeral key.
static NEXT_EXCHANGE: AtomicU32 = AtomicU32::new(0);

/// Activates over real UDP: up to `attempts` fresh requests, each waiting `wait`, accepting
/// an answer to any attempt in flight. `None` on silence.
pub fn activate(
    server: SocketAddr,
    public: &ServerPublicKeys,
    installation: &Installation,
    attempts: u32,
    wait: Duration,
) -> Option<Activation> {
    activate_timed(server, public, installation, attempts, wait).map(|(activation, _)| activation)
}

/// [`activate`], also returning the time from the first request leaving to the answer
/// arriving: a lost datagram's retry wait counts, the client's own sealing and opening of the
/// answer do not (a debug build's crypto would otherwise be most of what is measured).
pub fn activate_timed(
    server: SocketAddr,
    public: &ServerPublicKeys,
    installation: &Installation,
    attempts: u32,
    wait: Duration,
) -> Option<(Activation, Duration)> {
    let bind = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket = UdpSocket::bind(bind).expect("client socket");
    socket.connect(server).expect("connect");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    let mut pending: Vec<PendingExchange> = Vec::new();
    let mut first_sent: Option<Instant> = None;
    let mut buffer = [0u8; 2048];
    for attempt in 0..attempts {
        let mut secret = [0u8; 32];
        secret[..4].copy_from_slice(&attempt.to_le_bytes());
        secret[4..20].copy_from_slice(installation.base_id.as_bytes());
        secret[20..28].copy_from_slice(&unix_now().to_le_bytes());
        // lapd answers an ephemeral key once: two calls in one second need different ones.
        secret[28..32]
            .copy_from_slice(&NEXT_EXCHANGE.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        let (datagram, exchange) = seal_request(
            public,
            &installation.request(unix_now()),
            &EphemeralSecret::from_bytes(secret),
        )
        .expect("request seals");
        pending.push(exchange);
        first_sent.get_or_insert_with(Instant::now);
        socket.send(&datagram).expect("send");
        if let Ok(len) = socket.recv(&mut buffer) {
            let arrived = Instant::now();
            if let Ok((_, activation)) = open_any(&pending, &buffer[..len]) {
                return Some((activation, arrived - first_sent?));
            }
        }
    }
    None
}

/// Answers SNTP requests with the real time, on loopback (echoing the request's Transmit
/// Timestamp as its Originate Timestamp, as RFC 4330 servers do).
pub fn sntp_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 64];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            if len < 48 {
                continue;
            }
            let mut answer = [0u8; 48];
            answer[0] = 0b00_100_100;
            answer[1] = 2;
            answer[24..32].copy_from_slice(&buffer[40..48]);
            let ntp = u32::try_from((unix_now() + 2_208_988_800) % (1 << 32)).expect("fits");
            answer[40..44].copy_from_slice(&ntp.to_be_bytes());
            let _ = socket.send_to(&answer, from);
        }
    });
    addr
}
