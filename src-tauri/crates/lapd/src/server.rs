//! The UDP service: one socket and one thread per core (SO_REUSEPORT), cheap checks first.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lap_proto::{ProtoError, ServerSecretKeys, Uuid, check_request_datagram_len, open_request};
use socket2::{Domain, Protocol, Socket, Type};

use crate::catalog::Catalog;
use crate::policy::{DropReason, decide};
use crate::ratelimit::RateLimiter;
use crate::store::Store;

/// How often workers look up from a quiet socket to notice a stop request.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Counters of what the server did, by outcome.
#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub answered: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

impl Stats {
    pub fn drop(&self, reason: DropReason) {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].load(Ordering::Relaxed)
    }

    /// One line: `received=… answered=… dropped[reason]=…` (only reasons seen).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "received={} answered={}",
            self.received.load(Ordering::Relaxed),
            self.answered.load(Ordering::Relaxed)
        );
        for reason in DropReason::ALL {
            let n = self.dropped(reason);
            if n > 0 {
                let _ = write!(line, " dropped[{}]={n}", reason.as_str());
            }
        }
        line
    }
}

/// Everything the workers share.
#[derive(Debug)]
pub struct Server {
    keys: ServerSecretKeys,
    catalog: RwLock<Arc<Catalog>>,
    store: Mutex<Store>,
    limiter: RateLimiter,
    pub stats: Stats,
    stop: Arc<AtomicBool>,
    /// Added to the system clock: lets tests and demos run a server in another time.
    time_offset: i64,
}

impl Server {
    pub fn new(
        keys: ServerSecretKeys,
        catalog: Catalog,
        store: Store,
        limiter: RateLimiter,
        time_offset: i64,
    ) -> Self {
        Self {
            keys,
            catalog: RwLock::new(Arc::new(catalog)),
            store: Mutex::new(store),
            limiter,
            stats: Stats::default(),
            stop: Arc::new(AtomicBool::new(false)),
            time_offset,
        }
    }

    /// The flag that stops every worker (set by SIGINT/SIGTERM).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    pub fn replace_catalog(&self, catalog: Catalog) {
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(catalog);
    }

    fn now(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        system.saturating_add_signed(self.time_offset)
    }

    /// Handles one datagram; `Some(answer)` or silence.
    pub fn handle(&self, datagram: &[u8], source: SocketAddr, arrived: Instant) -> Option<Vec<u8>> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        match self.answer(datagram, source, arrived) {
            Ok(answer) => {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                Some(answer)
            }
            Err(reason) => {
                self.stats.drop(reason);
                tracing::debug!(%source, reason = reason.as_str(), "dropped");
                None
            }
        }
    }

    fn answer(
        &self,
        datagram: &[u8],
        source: SocketAddr,
        arrived: Instant,
    ) -> Result<Vec<u8>, DropReason> {
        check_request_datagram_len(datagram.len()).map_err(|_| DropReason::Length)?;
        if !self.limiter.allow(source.ip(), arrived) {
            return Err(DropReason::RateLimited);
        }
        let (request, sealer) = open_request(&self.keys, datagram).map_err(|e| match e {
            ProtoError::Authentication(_) => DropReason::Authentication,
            _ => DropReason::Malformed,
        })?;
        let now = self.now();
        let catalog = Arc::clone(
            &self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let grant = {
            let mut store = self.store.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            decide(&catalog, &mut store, &request, now, sealer.max_server_data_len(), Uuid::new_v4)
        }
        .inspect_err(|reason| {
            tracing::info!(%source, sku = %request.sku_id, reason = reason.as_str(), "request refused (silently)");
        })?;
        let answer = sealer
            .seal(&self.keys, now, grant.license_id, &grant.server_data_bytes)
            .map_err(|_| DropReason::ResponseTooLarge)?;
        tracing::debug!(%source, sku = %request.sku_id, license = %grant.license_ref, license_id = %grant.license_id, "answered");
        Ok(answer)
    }
}

/// Binds `threads` sockets to one address. On Unix they share the port with SO_REUSEPORT so
/// the kernel spreads clients across cores; elsewhere the threads share one socket.
pub fn bind(listen: SocketAddr, threads: usize) -> std::io::Result<Vec<UdpSocket>> {
    let first = new_socket(listen)?;
    let bound = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..threads.max(1) {
        #[cfg(unix)]
        sockets.push(new_socket(bound)?);
        #[cfg(not(unix))]
        sockets.push(sockets[0].try_clone()?);
    }
    Ok(sockets)
}

fn new_socket(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    // Large buffers ride out bursts (many clients renewing after a network outage).
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    Ok(socket)
}

/// Serves on the sockets until the stop flag is set; returns when every worker has ended.
pub fn run(server: &Arc<Server>, sockets: Vec<UdpSocket>) {
    std::thread::scope(|scope| {
        for (index, socket) in sockets.into_iter().enumerate() {
            let server = Arc::clone(server);
            std::thread::Builder::new()
                .name(format!("lapd-worker-{index}"))
                .spawn_scoped(scope, move || worker(&server, &socket))
                .expect("spawning a worker thread");
        }
    });
}

fn worker(server: &Server, socket: &UdpSocket) {
    let mut buffer = [0u8; 2048];
    while !server.stop.load(Ordering::Relaxed) {
        let (len, source) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                tracing::debug!(error = %e, "recv_from");
                continue;
            }
        };
        if let Some(answer) = server.handle(&buffer[..len], source, Instant::now())
            && let Err(e) = socket.send_to(&answer, source)
        {
            tracing::debug!(error = %e, %source, "send_to");
        }
    }
}

/// A server answering on its own threads until dropped: lapd inside another program, such as
/// a test or a benchmark that wants a real server on loopback without a process to manage.
#[derive(Debug)]
pub struct Background {
    server: Arc<Server>,
    address: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Binds `listen` (port 0 for any) with `threads` workers and starts serving.
    pub fn start(server: Server, listen: SocketAddr, threads: usize) -> std::io::Result<Self> {
        let sockets = bind(listen, threads)?;
        let address = sockets[0].local_addr()?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("lapd".into())
            .spawn(move || run(&serving, sockets))?;
        Ok(Self {
            server,
            address,
            thread: Some(thread),
        })
    }

    /// The address it answers on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn server(&self) -> &Server {
        &self.server
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.server.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reloads the catalog when its file changes; a broken edit is logged and the old one kept.
pub fn watch_catalog(server: &Arc<Server>, path: PathBuf, interval: Duration) {
    let server = Arc::clone(server);
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    std::thread::Builder::new()
        .name("lapd-catalog".into())
        .spawn(move || {
            while !server.stop.load(Ordering::Relaxed) {
                std::thread::sleep(interval);
                let now = modified(&path);
                if now == last {
                    continue;
                }
                last = now;
                match Catalog::load(&path) {
                    Ok(catalog) => {
                        tracing::info!(
                            skus = catalog.skus().count(),
                            licenses = catalog.licenses().count(),
                            "catalog reloaded"
                        );
                        server.replace_catalog(catalog);
                    }
                    Err(error) => tracing::error!(%error, "catalog not reloaded; the previous one stays in force"),
                }
            }
        })
        .expect("spawning the catalog watcher");
}
