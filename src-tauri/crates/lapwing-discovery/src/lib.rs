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
//! [`parse_host_port`] is the one validator of `HOST:PORT` text, for the CLI and the tray.
#![forbid(unsafe_code)]

pub mod address;
pub mod discovery;
pub mod error;
pub mod model;
pub mod srv;

#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

#[cfg(test)]
mod tests;

pub use address::{Host, HostPort, parse_host_port};
pub use discovery::{
    DEFAULT_LOOKUP_TIMEOUT, Discovery, DiscoveryConfig, DnsConfig, MDNS_SERVICE_TYPE, MdnsConfig,
};
pub use error::{AddressProblem, DiscoveryError};
pub use model::{Candidate, Discovered, ServerSettings, ServerSource, Skipped};
pub use srv::{SrvRecord, SrvRng, order_srv};
