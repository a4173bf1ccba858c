//! How discovery is set up: which DNS servers to ask, whether and how to browse mDNS, the
//! bound on each lookup and the seed of the SRV order. Plain data; [`crate::Discovery`] reads it
//! once, when it is built.

use std::net::SocketAddr;
use std::time::Duration;

/// The default bound on one lookup.
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The default bound on one whole discovery: room for the longest chain of lookups
/// (unicast DNS-SD: PTR, then SRV, then the target's addresses) to fail once each and be
/// reported, and for the mDNS browse window, while a hostile or dead DNS server still costs
/// a renewal seconds, not minutes.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on the exchanges with all of one activation's servers (the engine
/// enforces it): the default retries give up on a silent server after 7 s, so about four
/// silent servers are tried before the attempt ends as unanswered.
pub const DEFAULT_EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The most servers one discovery lists: enough for a vendor's SRV set plus the manual and
/// manifest entries, few enough that a hostile answer of hundreds of targets costs nothing.
pub const MAX_CANDIDATES: usize = 8;

/// Which DNS servers to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsConfig {
    /// The system's configuration (`/etc/resolv.conf` on Unix, the registry on Windows):
    /// its name servers, and its search domains for unicast DNS-SD.
    System,
    /// One name server at an explicit address and port (tests, or a diagnostic that asks a
    /// given server), with the search domains to browse for unicast DNS-SD.
    Nameserver {
        address: SocketAddr,
        search: Vec<String>,
    },
}

/// mDNS browsing on the local link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdnsConfig {
    /// 5353 in real use (RFC 6762); tests use their own port so that they neither see nor
    /// disturb anything else on the machine.
    pub port: u16,
    /// How long each discovery's browse collects answers before they are used (a browse
    /// cannot know when everyone has answered); the browse, and its socket, end then. The
    /// default, 1.5 s, covers the second query: responders answer within 20–120 ms, but
    /// multicast a record at most once a second (RFC 6762 §6), so a first query that
    /// follows another host's by less than a second is answered only after our second
    /// query, which mdns-sd sends 1 s after the first. Measured here: answered 60 ms after
    /// the first query normally, about 1.07 s after it inside the one-second hold-off.
    pub browse_window: Duration,
    /// Interface names to use; empty means all (loopback included).
    pub interfaces: Vec<String>,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            port: 5353,
            browse_window: Duration::from_millis(1500),
            interfaces: Vec::new(),
        }
    }
}

/// How discovery is set up. `Default` is what the engine uses: the system's DNS, mDNS on
/// all interfaces, 2 s per lookup and 5 s per discovery, 30 s for the exchanges, SRV order
/// seeded from the OS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    pub dns: DnsConfig,
    /// The bound on each lookup (one SRV, PTR or address query, with its retries).
    pub lookup_timeout: Duration,
    /// The bound on one whole discovery ([`crate::Discovery::candidates`]): a source that
    /// has not finished by then is reported as skipped, the others are used.
    pub total_timeout: Duration,
    /// The bound on one activation's exchanges with all its servers, which the engine
    /// enforces: servers after it are not tried.
    pub exchange_timeout: Duration,
    /// `None` turns mDNS off.
    pub mdns: Option<MdnsConfig>,
    /// A fixed seed for the SRV weighted order (tests); `None` seeds from the OS.
    pub srv_seed: Option<u64>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            dns: DnsConfig::System,
            lookup_timeout: DEFAULT_LOOKUP_TIMEOUT,
            total_timeout: DEFAULT_DISCOVERY_TIMEOUT,
            exchange_timeout: DEFAULT_EXCHANGE_TIMEOUT,
            mdns: Some(MdnsConfig::default()),
            srv_seed: None,
        }
    }
}
