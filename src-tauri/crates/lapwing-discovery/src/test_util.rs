//! Test helpers (feature `test-util`): a real DNS server (`dnsmasq`) on loopback, started
//! with the records a test needs and killed when dropped, and a name server that never
//! answers. The system tests use them too, so that "SRV answered by a real DNS server" means
//! the same thing everywhere.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts it; `/usr/sbin` is not on every user's PATH.
fn find_dnsmasq() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join("dnsmasq"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "dnsmasq is needed for this test and was not found on PATH or in /usr/sbin \
                 (Debian: apt-get install dnsmasq-base; ./dev.sh installs it)"
            )
        })
}

/// A `dnsmasq` answering only from its command line, on 127.0.0.1 at a free port (UDP and
/// TCP), killed on drop. It reads no configuration file, no /etc/hosts and no upstream
/// servers: a name it was not given is NXDOMAIN.
#[derive(Debug)]
pub struct Dnsmasq {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Starts dnsmasq with these extra options (`--srv-host=…`, `--host-record=…`,
    /// `--ptr-record=…`, `--txt-record=…`). Panics with dnsmasq's own words if it refuses
    /// them.
    pub fn start<S: AsRef<str>>(records: &[S]) -> Self {
        let binary = find_dnsmasq();
        let dir = tempfile::tempdir().expect("temporary directory for the dnsmasq log");
        let log = dir.path().join("dnsmasq.log");
        // The free port is found by binding and releasing it, so another process may take it
        // in between; then dnsmasq exits at once with "Address in use" and we try another.
        let mut last_failure = String::new();
        for _ in 0..10 {
            let port = free_udp_and_tcp_port();
            let address = SocketAddr::from(([127, 0, 0, 1], port));
            let stderr = std::fs::File::create(&log).expect("dnsmasq log file");
            let mut child = Command::new(&binary)
                .args([
                    "--no-daemon",
                    "--conf-file=/dev/null",
                    "--log-facility=-",
                    "--log-queries",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-poll",
                    "--bind-interfaces",
                    "--listen-address=127.0.0.1",
                    // No DHCP, no cache between tests' lookups to worry about.
                    "--cache-size=0",
                    // Every name is local: one it was not given is NXDOMAIN, not REFUSED.
                    "--local=/#/",
                ])
                .arg(format!("--port={port}"))
                .args(records.iter().map(AsRef::as_ref))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(status) = child.try_wait().expect("dnsmasq status") {
                    last_failure = format!(
                        "dnsmasq exited with {status}: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                    break;
                }
                // Listening on TCP means it has parsed its options and bound both sockets.
                if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok() {
                    return Self {
                        child,
                        address,
                        log,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "dnsmasq did not listen on {address} within 5 s: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if !last_failure.contains("in use") {
                break;
            }
        }
        panic!("{last_failure}");
    }

    /// Where it answers (UDP and TCP).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What it logged so far (`--log-queries`: one line per query and answer).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both UDP and TCP at the time of asking.
pub fn free_udp_and_tcp_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port on loopback");
        let port = udp.local_addr().expect("local address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1");
}

/// A name server that receives and never answers: what a dead or firewalled DNS server looks
/// like to a client (a closed port would answer "port unreachable" at once instead).
#[derive(Debug)]
pub struct SilentNameserver {
    socket: UdpSocket,
}

impl SilentNameserver {
    pub fn start() -> Self {
        Self {
            socket: UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port on loopback"),
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.socket.local_addr().expect("local address")
    }
}

/// Runs the test `test_name` of the current test binary again inside a private network
/// namespace (`unshare --net`, through a user namespace when not root), where it may make
/// links and addresses without touching the host's network. Returns true in the copy
/// inside, which goes on with the test; the caller outside returns once the copy passed
/// (a failure inside fails the caller, with the copy's output). `marker` is the
/// environment variable that tells the copy it is inside: one per test binary.
pub fn in_network_namespace(test_name: &str, marker: &str) -> bool {
    if std::env::var_os(marker).is_some() {
        return true;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new("unshare");
    // Root needs no user namespace; anyone else maps themselves to root in a new one.
    if !running_as_root() {
        command.args(["--user", "--map-root-user"]);
    }
    let output = command
        .args(["--net", "--"])
        .arg(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(marker, "1")
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "the test inside a private network namespace failed ({}); it needs unshare \
         (util-linux), ip (iproute2) and user namespaces or root:\n{stdout}\n{stderr}",
        output.status
    );
    false
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .map(|line| line.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}
