//! The crate's one error type, and what exactly is wrong with a `HOST:PORT` someone typed.

use std::time::Duration;

/// What is wrong with a `HOST:PORT` text. The CLI and the tray show it next to the input, so
/// each message names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressProblem {
    /// Nothing but white space.
    Empty,
    /// No `:PORT` at the end (LAP has no well-known port, draft §3.2).
    MissingPort,
    /// `:` with nothing before it.
    MissingHost,
    /// The port is not a decimal number.
    PortNotANumber,
    /// Port 0 cannot be sent to.
    PortZero,
    /// Above 65535.
    PortTooLarge,
    /// An IPv6 address written without brackets (`::1:4711` is ambiguous).
    Ipv6WithoutBrackets,
    /// `[…]` that does not hold an IPv6 address.
    BadIpv6,
    /// An IPv6 zone (`%eth0`): link-local servers are reached through DNS-SD instead.
    Ipv6Zone,
    /// Something after `]` other than `:PORT`.
    JunkAfterBracket,
    /// Looks like an IPv4 address (the last label is a number) but is not one.
    BadIpv4,
    /// A character that cannot occur in a host name.
    BadCharacter(char),
    /// Non-ASCII: internationalised names must be written in their `xn--` form.
    NonAscii,
    /// An empty label (`a..b`, a leading dot).
    EmptyLabel,
    /// A label longer than 63 bytes.
    LabelTooLong,
    /// A label that starts or ends with `-`.
    LabelHyphen,
    /// A name longer than 253 bytes.
    NameTooLong,
}

impl std::fmt::Display for AddressProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => f.write_str("empty; write HOST:PORT, e.g. lap.example.com:4711"),
            Self::MissingPort => {
                f.write_str("missing port; LAP has no default port, write HOST:PORT")
            }
            Self::MissingHost => f.write_str("missing host before the ':'"),
            Self::PortNotANumber => f.write_str("the port is not a number"),
            Self::PortZero => f.write_str("port 0 is not a valid destination; use 1-65535"),
            Self::PortTooLarge => f.write_str("the port is above 65535"),
            Self::Ipv6WithoutBrackets => {
                f.write_str("an IPv6 address needs brackets: [2001:db8::1]:4711")
            }
            Self::BadIpv6 => f.write_str("the text in [brackets] is not an IPv6 address"),
            Self::Ipv6Zone => f.write_str(
                "IPv6 zone ids (%…) are not supported; link-local servers are found by DNS-SD",
            ),
            Self::JunkAfterBracket => f.write_str("after ']' only ':PORT' may follow"),
            Self::BadIpv4 => f.write_str("not a valid IPv4 address"),
            Self::BadCharacter(c) => write!(f, "{c:?} cannot occur in a host name"),
            Self::NonAscii => {
                f.write_str("non-ASCII host name; write its ASCII (xn--) form, as `idn2` prints it")
            }
            Self::EmptyLabel => f.write_str("empty label in the host name (two dots in a row?)"),
            Self::LabelTooLong => f.write_str("a part of the host name is longer than 63 bytes"),
            Self::LabelHyphen => f.write_str("a part of the host name starts or ends with '-'"),
            Self::NameTooLong => f.write_str("the host name is longer than 253 bytes"),
        }
    }
}

/// Why a source gave no server, or why one of its entries was left out. Every failure is per
/// source: it is reported next to the candidates (see [`crate::Skipped`]) and never stops the
/// other sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    #[error("{input:?} is not a valid HOST:PORT: {problem}")]
    Address {
        input: String,
        problem: AddressProblem,
    },
    #[error("{name:?} is not a valid domain name: {message}")]
    Domain { name: String, message: String },
    #[error("refused: the machine policy locks the server{}", locked_to.as_ref().map(|s| format!(" to {s}")).unwrap_or_default())]
    RefusedByPolicy { locked_to: Option<String> },
    #[error("not used: {by} takes precedence")]
    Superseded { by: &'static str },
    #[error("no DNS resolver: {0}")]
    NoResolver(String),
    #[error("no answer for {name} within {} ms", timeout.as_millis())]
    Timeout { name: String, timeout: Duration },
    #[error("no {rtype} records for {name}")]
    NoRecords { name: String, rtype: &'static str },
    #[error("the SRV record for {name} says the service is not available there (target \".\")")]
    ServiceNotAvailable { name: String },
    #[error(
        "{name} mixes the \"not available\" target \".\" with real targets (a zone mistake); the real targets are used"
    )]
    DotAmongTargets { name: String },
    #[error("DNS lookup of {name} failed: {message}")]
    Lookup { name: String, message: String },
    #[error("mDNS: {0}")]
    Mdns(String),
    #[error(
        "{address} is a {kind} address, which is not used when it comes from the network; the machine policy can allow it ([discovery] allow_local_addresses = true)"
    )]
    LocalAddress {
        address: std::net::SocketAddr,
        kind: crate::local::LocalKind,
    },
    #[error("left out: at most {limit} servers are tried")]
    TooMany { limit: usize },
    #[error("did not finish within the {} ms one discovery may take", limit.as_millis())]
    OutOfTime { limit: Duration },
}
