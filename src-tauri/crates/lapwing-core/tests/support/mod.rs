//! What the clock, network and wire tests share: a `lapd` on loopback behind a relay that
//! can be closed (silence) and that opens and keeps every request on its way, an engine on a
//! fake clock, and fake time sources.
#![allow(dead_code, reason = "each test file uses its own part of the harness")]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use lap_proto::test_util::key;
use lap_proto::time::unix_now;
use lap_proto::{Request, ServerSecretKeys, Uuid};
use lapd::catalog::LicenseCatalog;
use lapd::ratelimit::RateLimiter;
use lapd::rules::Profile;
use lapd::server::{Background, Server};
use lapd::store::Store;
use lapwing_core::clock::FakeClock;
use lapwing_core::engine::{Engine, EngineConfig};
use lapwing_core::identity::FixedIdentity;
use lapwing_core::time_sources::TimeSources;
use lapwing_core::transport::{OsEntropy, RetryPolicy};
use lapwing_discovery::DiscoveryConfig;
use lapwing_secrets::{MemoryStore, SecretStore};

pub const BASE_SKU: Uuid = Uuid::from_u128(0x6b0c_4c1e_8f5d_4f51_9d3a_2f7c_1a0e_9b11);
pub const ADDON_SKU: Uuid = Uuid::from_u128(0x0d3f_4b43_4c39_4a43_9a3e_5f7a_1c0e_9b12);

fn server_keys() -> ServerSecretKeys {
    ServerSecretKeys::from_bytes([0x41; 32], &[0x42; 32])
}

/// One request as it went on the wire: its bytes, and what the server's keys opened.
#[derive(Debug, Clone)]
pub struct Seen {
    pub datagram: Vec<u8>,
    pub request: Option<Request>,
}

/// A `lapd` (key 1: base, term 365 days, 2 seats; key 2: add-on, perpetual; 30-day
/// evaluations of the base) behind a relay. Closed, the relay keeps what it receives and answers nothing.
pub struct Relayed {
    pub address: SocketAddr,
    pub open: Arc<AtomicBool>,
    /// While false, requests reach the server but its answers are lost on the way back.
    pub answering: Arc<AtomicBool>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _serving: Background,
}

impl Relayed {
    /// Today's `lapd` (profile 1.1: seed extensions and the lifecycle of §9).
    pub fn start() -> Self {
        Self::start_with(Profile::V1_1)
    }

    /// A `lapd` that speaks profile 1.0: it ignores Room, so a release is answered with a
    /// plain grant and nothing says Duplicate.
    pub fn start_1_0() -> Self {
        Self::start_with(Profile::V1_0)
    }

    pub fn start_with(profile: Profile) -> Self {
        let catalog = format!(
            "[[sku]]\nid = \"{BASE_SKU}\"\nname = \"Acme Studio\"\nevaluation_days = 30\n\
             [[sku]]\nid = \"{ADDON_SKU}\"\nname = \"Acme Export\"\nbase = \"{BASE_SKU}\"\n\
             [[license]]\nkey = \"{}\"\nsku = \"{BASE_SKU}\"\nkind = \"term\"\nseats = 2\ndays = 365\n\
             [[license]]\nkey = \"{}\"\nsku = \"{ADDON_SKU}\"\nkind = \"perpetual\"\nseats = 2\n",
            key(1).to_display(),
            key(2).to_display()
        );
        let catalog = LicenseCatalog::parse(&catalog, Path::new("catalog.toml")).expect("catalog");
        let server = Server::new(
            server_keys(),
            catalog,
            Store::in_memory().expect("store"),
            RateLimiter::new(0, 0),
            0,
        )
        .with_profile(profile);
        let serving = Background::start(server, "127.0.0.1:0".parse().expect("addr"), 1)
            .expect("lapd serves on loopback");
        let upstream_address = serving.address();
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let address = socket.local_addr().expect("addr");
        let upstream = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        upstream.connect(upstream_address).expect("connect");
        let open = Arc::new(AtomicBool::new(true));
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Two one-way pumps, so that a request the server drops holds up nothing: requests
        // in (noted, then passed on while open), answers back to the latest client.
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let answering = Arc::new(AtomicBool::new(true));
        let (back, back_up, back_client, back_gate) = (
            socket.try_clone().expect("clone"),
            upstream.try_clone().expect("clone"),
            Arc::clone(&client),
            Arc::clone(&answering),
        );
        std::thread::spawn(move || {
            let mut answer = [0u8; 2048];
            while let Ok(n) = back_up.recv(&mut answer) {
                if !back_gate.load(Ordering::SeqCst) {
                    continue;
                }
                if let Some(to) = *back_client.lock().expect("lock") {
                    let _ = back.send_to(&answer[..n], to);
                }
            }
        });
        let (gate, noted) = (Arc::clone(&open), Arc::clone(&seen));
        std::thread::spawn(move || {
            let keys = server_keys();
            let mut buffer = [0u8; 2048];
            while let Ok((len, from)) = socket.recv_from(&mut buffer) {
                let datagram = buffer[..len].to_vec();
                let request = lap_proto::open_request(&keys, &datagram)
                    .ok()
                    .map(|(r, _)| r);
                noted.lock().expect("lock").push(Seen { datagram, request });
                if gate.load(Ordering::SeqCst) {
                    *client.lock().expect("lock") = Some(from);
                    let _ = upstream.send(&buffer[..len]);
                }
            }
        });
        Self {
            address,
            open,
            answering,
            seen,
            _serving: serving,
        }
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }

    /// Lets the server's answers through, or loses them (the server still answers).
    pub fn set_answering(&self, answering: bool) {
        self.answering.store(answering, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Time sources that say what a test sets, and note every SNTP query.
#[derive(Debug)]
pub struct FakeTimeSources {
    pub synchronized: Mutex<Result<bool, String>>,
    pub system: Mutex<Vec<String>>,
    /// What the time server answers: its time, or silence.
    pub server_time: Mutex<Option<u64>>,
    pub queries: Mutex<Vec<String>>,
}

impl Default for FakeTimeSources {
    fn default() -> Self {
        Self {
            synchronized: Mutex::new(Err("no system bus in this test".into())),
            system: Mutex::new(Vec::new()),
            server_time: Mutex::new(None),
            queries: Mutex::new(Vec::new()),
        }
    }
}

impl FakeTimeSources {
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().expect("lock").clone()
    }
}

impl TimeSources for FakeTimeSources {
    fn synchronized(&self) -> BoxFuture<'_, Result<bool, String>> {
        let said = self.synchronized.lock().expect("lock").clone();
        Box::pin(async move { said })
    }

    fn system_servers(&self) -> BoxFuture<'_, Vec<String>> {
        let servers = self.system.lock().expect("lock").clone();
        Box::pin(async move { servers })
    }

    fn query<'a>(
        &'a self,
        server: &'a str,
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<u64, String>> {
        self.queries.lock().expect("lock").push(server.to_owned());
        let time = *self.server_time.lock().expect("lock");
        Box::pin(async move { time.ok_or_else(|| format!("no answer from {server}")) })
    }
}

pub struct Setup {
    _dir: tempfile::TempDir,
    pub products: PathBuf,
    pub policy: PathBuf,
    pub clock: FakeClock,
    pub sources: Arc<FakeTimeSources>,
    pub engine: Engine,
}

fn manifest(id: &str, sku: Uuid, address: SocketAddr, extra: &str) -> String {
    let keys = server_keys();
    format!(
        "schema = 1\nid = \"{id}\"\nname = \"{id}\"\nvendor = \"Acme\"\nsku = \"{sku}\"\n{extra}\n[server]\nx25519 = \"{}\"\ned25519 = \"{}\"\naddress = \"{address}\"\n",
        hex::encode(keys.public().x25519_bytes()),
        hex::encode(keys.public().ed25519_bytes())
    )
}

/// An engine on a fake clock (now) with `acme-studio` and its add-on `acme-export`, both
/// pointing at `server`, tried with `waits` (one attempt per entry).
pub fn setup(server: SocketAddr, waits: Vec<Duration>) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let products = dir.path().join("products.d");
    std::fs::create_dir_all(&products).expect("mkdir");
    for (file, text) in [
        (
            "acme-studio.toml",
            manifest("acme-studio", BASE_SKU, server, "evaluation_days = 30"),
        ),
        (
            "acme-export.toml",
            manifest(
                "acme-export",
                ADDON_SKU,
                server,
                "addon_of = \"acme-studio\"",
            ),
        ),
    ] {
        std::fs::write(products.join(file), text).expect("write");
    }
    let clock = FakeClock::at(unix_now());
    let sources = Arc::new(FakeTimeSources::default());
    let policy = dir.path().join("policy.toml");
    let engine = Engine::new(EngineConfig {
        data_dir: dir.path().join("data"),
        product_dirs: vec![products.clone()],
        policy_path: policy.clone(),
        clock: Arc::new(clock.clone()),
        entropy: Arc::new(OsEntropy),
        secrets: Arc::new(MemoryStore::new()) as Arc<dyn SecretStore>,
        identity: Arc::new(FixedIdentity::new([7; 32])),
        discovery: DiscoveryConfig {
            mdns: None,
            ..DiscoveryConfig::default()
        },
        retry: RetryPolicy { waits },
    })
    .with_time_sources(Arc::clone(&sources) as Arc<dyn TimeSources>);
    Setup {
        _dir: dir,
        products,
        policy,
        clock,
        sources,
        engine,
    }
}

/// Short waits: a silent server costs well under a second.
pub fn quick() -> Vec<Duration> {
    vec![Duration::from_millis(150); 2]
}
