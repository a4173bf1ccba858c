//! Server choice for Lapwing (LAP draft §3.2, profile §6): for one product, which LAP servers
//! to try, in which order, and how each was found. The engine tries them in this order and
//! uses the first that answers; the status shows the winner's [`ServerSource`].
//!
//! Order: the manual choice (the user's override, per product else global, or the machine
//! policy's server; see [`model`] for the precedence table), then DNS SRV
//! `_lap._udp.<srv_domain>` in RFC 2782 order ([`srv`]), then DNS-SD `_lap._udp` (unicast in
//! the system's search domains, then mDNS `.local`), then the manifest's `address`. The same
//! address is listed once, at its first place.
//!
//! Nothing here fails as a whole: a source that gives nothing says why in
//! [`Discovered::skipped`] (what `lapctl doctor` prints), and every lookup is bounded
//! ([`DEFAULT_LOOKUP_TIMEOUT`]), so a dead DNS server costs at most that long and never hides
//! the manifest's address.
//!
//! What the network says cannot stall a renewal: one discovery lists at most
//! [`MAX_CANDIDATES`] servers and takes at most [`DiscoveryConfig::total_timeout`]; local
//! addresses (loopback, unspecified, multicast, broadcast, link-local) found by DNS, DNS-SD
//! or mDNS are dropped unless the machine policy allows them ([`local`]); and mDNS listens
//! only while a discovery runs.
//!
//! [`parse_host_port`] is the one validator of `HOST:PORT` text, for the CLI and the tray.
#![forbid(unsafe_code)]

pub mod address;
pub mod config;
pub mod discovery;
pub mod error;
pub mod local;
pub mod model;
pub mod network;
pub mod srv;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

// Against dnsmasq and mDNS responders in Linux network namespaces (unshare, veth pairs):
// Linux only. The Windows build's tests under Wine are the modules' own.
#[cfg(all(test, target_os = "linux"))]
mod tests;

pub use address::{Host, HostPort, parse_host_port};
pub use config::{
    DEFAULT_DISCOVERY_TIMEOUT, DEFAULT_EXCHANGE_TIMEOUT, DEFAULT_LOOKUP_TIMEOUT, DiscoveryConfig,
    DnsConfig, MAX_CANDIDATES, MdnsConfig,
};
pub use discovery::{Discovery, MDNS_HOST_TTL, MDNS_SERVICE_TYPE};
pub use error::{AddressProblem, DiscoveryError};
pub use local::{LocalAddresses, LocalKind, local_kind};
pub use model::{Candidate, Discovered, ServerSettings, ServerSource, Skipped, SourceEvent, Stage};
pub use network::network_key;
pub use srv::{SrvRecord, SrvRng, order_srv};
