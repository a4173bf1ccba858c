//! Addresses that a hostile DNS server or mDNS responder could use to point the app at the
//! machine itself or at its link (a local service, a multicast group) instead of at a LAP
//! server. Answers from the network naming them are dropped unless the machine policy allows
//! them (`[discovery] allow_local_addresses = true`); addresses a person wrote (override,
//! policy, manifest) are never dropped.

use std::net::IpAddr;

/// What is local about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalKind {
    Loopback,
    Unspecified,
    Multicast,
    Broadcast,
    LinkLocal,
}

impl LocalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::LinkLocal => "link-local",
        }
    }
}

impl std::fmt::Display for LocalKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether addresses found on the network may be local ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalAddresses {
    /// Dropped and reported (the default).
    #[default]
    Drop,
    /// Used like any other (the policy allows it: a LAP server on this host or link, tests).
    Allow,
}

impl LocalAddresses {
    pub fn from_allowed(allowed: bool) -> Self {
        if allowed { Self::Allow } else { Self::Drop }
    }
}

/// Why `ip` is not a remote unicast address, if it is not. An IPv4-mapped IPv6 address is
/// judged as the IPv4 address it carries, so `::ffff:127.0.0.1` is loopback too.
pub fn local_kind(ip: IpAddr) -> Option<LocalKind> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            if v4.is_loopback() {
                Some(LocalKind::Loopback)
            } else if v4.is_unspecified() {
                Some(LocalKind::Unspecified)
            } else if v4.is_multicast() {
                Some(LocalKind::Multicast)
            } else if v4.is_broadcast() {
                Some(LocalKind::Broadcast)
            } else if v4.is_link_local() {
                Some(LocalKind::LinkLocal)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                Some(LocalKind::Loopback)
            } else if v6.is_unspecified() {
                Some(LocalKind::Unspecified)
            } else if v6.is_multicast() {
                Some(LocalKind::Multicast)
            } else if v6.is_unicast_link_local() {
                Some(LocalKind::LinkLocal)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<LocalKind> {
        local_kind(text.parse().expect("valid literal"))
    }

    #[test]
    fn every_local_kind_is_named_and_remote_addresses_pass() {
        use LocalKind as K;
        for (text, expected) in [
            ("127.0.0.1", Some(K::Loopback)),
            ("127.8.9.10", Some(K::Loopback)),
            ("::1", Some(K::Loopback)),
            ("::ffff:127.0.0.1", Some(K::Loopback)),
            ("0.0.0.0", Some(K::Unspecified)),
            ("::", Some(K::Unspecified)),
            ("224.0.0.251", Some(K::Multicast)),
            ("ff02::fb", Some(K::Multicast)),
            ("255.255.255.255", Some(K::Broadcast)),
            ("169.254.1.2", Some(K::LinkLocal)),
            ("fe80::1", Some(K::LinkLocal)),
            ("192.0.2.7", None),
            ("10.77.0.2", None),
            ("2001:db8::1", None),
            ("::ffff:192.0.2.7", None),
        ] {
            assert_eq!(kind(text), expected, "{text}");
        }
    }
}
