//! The UDP service: one socket per core (SO_REUSEPORT), each served by a few dozen threads so
//! that requests waiting for a flush do not hold others up; cheap checks first.

use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use lap_proto::wire::EPHEMERAL_LEN;
use lap_proto::{ProtoError, ServerSecretKeys, Uuid, check_request_datagram_len, open_request};
use socket2::{Domain, Protocol, Socket, Type};

use crate::catalog::LicenseCatalog;
use crate::datagram::DatagramIo;
use crate::ratelimit::RateLimiter;
use crate::replay::{ReplayGuard, Verdict};
use crate::rules::{Context, DropReason, Pools, Profile, decide_in, sweep_leases};
use crate::store::{Store, StoreError};

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
    catalog: RwLock<Arc<LicenseCatalog>>,
    store: Store,
    limiter: RateLimiter,
    /// Request keys already answered: no key is answered twice (see `replay`).
    replay: Mutex<ReplayGuard>,
    pub stats: Stats,
    stop: Arc<AtomicBool>,
    /// Added to the system clock: lets tests and demos run a server in another time.
    time_offset: i64,
    profile: Profile,
    /// An intermediate's pools (profile §10), as its last sync with the vendor left them;
    /// `None` for a server that is no intermediate.
    pools: RwLock<Option<Arc<Pools>>>,
}

impl Server {
    pub fn new(
        keys: ServerSecretKeys,
        catalog: LicenseCatalog,
        store: Store,
        limiter: RateLimiter,
        time_offset: i64,
    ) -> Self {
        Self {
            keys,
            catalog: RwLock::new(Arc::new(catalog)),
            store,
            limiter,
            replay: Mutex::new(ReplayGuard::default()),
            stats: Stats::default(),
            stop: Arc::new(AtomicBool::new(false)),
            time_offset,
            profile: Profile::default(),
            pools: RwLock::new(None),
        }
    }

    /// Makes this server an intermediate (or updates its pools after a sync): the SKUs in
    /// `pools` are granted only from them.
    pub fn set_pools(&self, pools: Pools) {
        *self
            .pools
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(pools));
    }

    /// The server's time: the system clock plus its offset.
    pub fn server_time(&self) -> u64 {
        self.now()
    }

    /// Speaks `profile` (default 1.1): `Profile::V1_0` is a server of before the lifecycle,
    /// for clients' tests (a release gets a plain grant; no Duplicate).
    #[must_use]
    pub fn with_profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// Frees every license's seats past their lease, at the server's time (with its offset).
    pub fn sweep_leases(&self) -> Result<u32, StoreError> {
        self.sweep_leases_at(self.now())
    }

    /// As [`Self::sweep_leases`], at server time `now`.
    pub fn sweep_leases_at(&self, now: u64) -> Result<u32, StoreError> {
        let catalog = Arc::clone(
            &self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        sweep_leases(&catalog, &self.store, now)
    }

    /// Replaces the replay guard (to give it another capacity).
    #[must_use]
    pub fn with_replay_guard(mut self, guard: ReplayGuard) -> Self {
        self.replay = Mutex::new(guard);
        self
    }

    /// How many request keys the replay guard remembers now, and at most.
    pub fn remembered_requests(&self) -> (usize, usize) {
        let guard = self
            .replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (guard.len(), guard.capacity())
    }

    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.limiter
    }

    /// Runs `read` on the seat store (for tests and diagnostics).
    pub fn with_store<T>(&self, read: impl FnOnce(&Store) -> T) -> T {
        read(&self.store)
    }

    /// The flag that stops every worker (set by SIGINT/SIGTERM).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// The catalog in force now.
    pub fn catalog(&self) -> Arc<LicenseCatalog> {
        Arc::clone(
            &self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Whether the server has been asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn replace_catalog(&self, catalog: LicenseCatalog) {
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(catalog);
    }

    fn now(&self) -> u64 {
        lap_proto::time::unix_now().saturating_add_signed(self.time_offset)
    }

    /// Handles one datagram; `Some(answer)` or silence.
    pub fn handle(&self, datagram: &[u8], source: SocketAddr, arrived: Instant) -> Option<Vec<u8>> {
        self.handle_at(datagram, source, arrived, self.now())
    }

    /// As [`Self::handle`], at server time `now` (UNIX seconds) instead of the clock's.
    pub fn handle_at(
        &self,
        datagram: &[u8],
        source: SocketAddr,
        arrived: Instant,
        now: u64,
    ) -> Option<Vec<u8>> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        match self.answer(datagram, source, arrived, now) {
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
        now: u64,
    ) -> Result<Vec<u8>, DropReason> {
        check_request_datagram_len(datagram.len()).map_err(|_| DropReason::Length)?;
        if !self.limiter.allow(source.ip(), arrived) {
            return Err(DropReason::RateLimited);
        }
        let (request, sealer) = open_request(&self.keys, datagram).map_err(|e| match e {
            ProtoError::Authentication(_) => DropReason::Authentication,
            _ => DropReason::Malformed,
        })?;
        // After authentication, so that only requests someone could have sealed take room;
        // before the rules, so that a replay takes no seat and gets no second answer.
        let verdict = self
            .replay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&datagram[..EPHEMERAL_LEN], request.client_time, now);
        match verdict {
            Verdict::Fresh | Verdict::OutsideWindow => {}
            Verdict::Replayed => return Err(DropReason::Replayed),
            Verdict::Full => return Err(DropReason::ReplayGuardFull),
        }
        let catalog = Arc::clone(
            &self
                .catalog
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let pools = self
            .pools
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let context = Context {
            profile: self.profile,
            keys: Some(&self.keys),
            pools: pools.as_deref(),
        };
        // The store locks what it needs itself: a machine that holds a seat reads it while
        // other threads take new ones.
        let accepted = decide_in(&context, &catalog, &self.store, &request, now, sealer.max_server_data_len(), Uuid::new_v4)
        .inspect_err(|reason| {
            tracing::info!(%source, sku = %request.sku_id, reason = reason.as_str(), "request refused (silently)");
        })?;
        let answer = sealer
            .seal(
                &self.keys,
                now,
                accepted.license_id,
                &accepted.server_data_bytes,
            )
            .map_err(|_| DropReason::ResponseTooLarge)?;
        tracing::debug!(%source, sku = %request.sku_id, license = %accepted.license_ref, license_id = %accepted.license_id, "answered");
        Ok(answer)
    }
}

/// Binds `threads` sockets to one address. On Unix they share the port with SO_REUSEPORT so
/// the kernel spreads clients across cores; elsewhere the threads share one socket.
pub fn bind(listen: SocketAddr, threads: usize) -> std::io::Result<Vec<UdpSocket>> {
    let first = new_socket(listen)?;
    #[cfg(unix)]
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
    crate::datagram::enable_destination_info(&socket, addr.is_ipv6())?;
    socket.set_read_timeout(Some(POLL_INTERVAL))?;
    Ok(socket)
}

/// Threads receiving on each socket. One thread per core would do for the cryptography, but a
/// request whose seat is written waits for a flush; while it does, the socket's other threads
/// go on answering, and their writes join the next commit (see `store::group`). This many
/// lets a commit carry as many writes as arrive during a slow disk's flush at the rate the
/// cryptography allows one core.
pub const THREADS_PER_SOCKET: usize = 16;

/// Serves on the sockets until the stop flag is set; returns when every worker has ended.
pub fn run(server: &Arc<Server>, sockets: &[UdpSocket]) {
    std::thread::scope(|scope| {
        for (index, socket) in sockets.iter().enumerate() {
            let per_socket = std::env::var("LAPD_EXP_TPS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(THREADS_PER_SOCKET);
            for thread in 0..per_socket {
                let server = Arc::clone(server);
                std::thread::Builder::new()
                    .name(format!("lapd-worker-{index}.{thread}"))
                    .spawn_scoped(scope, move || worker(&server, socket))
                    .expect("spawning a worker thread");
            }
        }
    });
}

fn worker(server: &Server, socket: &UdpSocket) {
    let mut buffer = [0u8; 2048];
    let mut io = DatagramIo::new(socket);
    while !server.stop.load(Ordering::Relaxed) {
        let (len, source, arrival) = match io.recv(&mut buffer) {
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
            && let Err(e) = io.send(&answer, source, arrival)
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
            .spawn(move || run(&serving, &sockets))?;
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
                match LicenseCatalog::load(&path) {
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

/// Sweeps seats past their lease every `interval` until the server stops (§9: a seat comes
/// back even to a license nobody asks for). The first sweep runs at once.
pub fn sweep_leases_periodically(server: &Arc<Server>, interval: Duration) {
    let server = Arc::clone(server);
    std::thread::Builder::new()
        .name("lapd-leases".into())
        .spawn(move || {
            let mut next = Instant::now();
            while !server.stop.load(Ordering::Relaxed) {
                if Instant::now() >= next {
                    match server.sweep_leases() {
                        Ok(0) => {}
                        Ok(freed) => tracing::info!(freed, "seats past their lease freed"),
                        Err(error) => tracing::warn!(%error, "lease sweep failed; trying again at the next one"),
                    }
                    next = Instant::now() + interval;
                }
                // Short naps: a stop is noticed within one.
                std::thread::sleep(POLL_INTERVAL);
            }
        })
        .expect("spawning the lease sweeper");
}
