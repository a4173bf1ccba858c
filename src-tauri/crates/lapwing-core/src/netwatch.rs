//! "The network came back" (profile §8: retry at once when the network comes back), as a
//! stream of events the scheduler's run loop wakes on (`Engine::run_watching`).
//!
//! On Linux the source is a NETLINK_ROUTE socket subscribed to address and route changes: a
//! kernel-local socket, nothing is sent or received on the network, and no privilege is
//! needed. It reports a change when an address of global or site scope appears that was not
//! there, or a default route appears where there was none; lifetime refreshes of known
//! addresses and routes (IPv6 router advertisements renew them every few minutes) do not
//! count, so a failing product is not retried at every advertisement. Elsewhere the source
//! never fires: products are retried at their backoff points.

use std::pin::Pin;

use futures::Stream;

/// The network changed in a way that may let a failed attempt through now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkChange;

/// A source of network changes: the platform's, or a test's.
pub type NetworkEvents = Pin<Box<dyn Stream<Item = NetworkChange> + Send>>;

/// A source that never fires.
pub fn never() -> NetworkEvents {
    Box::pin(futures::stream::pending())
}

/// This platform's source. One that cannot start is logged and replaced by [`never`]: the
/// backoff still retries, only later.
pub fn watch() -> NetworkEvents {
    #[cfg(target_os = "linux")]
    {
        match netlink::watch() {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the network; failed activations are retried at their backoff points");
                never()
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        never()
    }
}

/// The netlink parts: the socket, and reading what the kernel says (pure, tested on bytes).
#[cfg(target_os = "linux")]
pub mod netlink {
    use std::collections::HashSet;
    use std::os::fd::{AsRawFd as _, OwnedFd};

    use nix::sys::socket::{
        AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, socket,
    };

    use super::{NetworkChange, NetworkEvents};

    // rtnetlink(7) and <linux/rtnetlink.h>: message types, multicast groups, attributes.
    pub const RTM_NEWADDR: u16 = 20;
    pub const RTM_DELADDR: u16 = 21;
    pub const RTM_NEWROUTE: u16 = 24;
    pub const RTM_DELROUTE: u16 = 25;
    const RTMGRP_IPV4_IFADDR: u32 = 0x10;
    const RTMGRP_IPV4_ROUTE: u32 = 0x40;
    const RTMGRP_IPV6_IFADDR: u32 = 0x100;
    const RTMGRP_IPV6_ROUTE: u32 = 0x400;
    const IFA_ADDRESS: u16 = 1;
    const IFA_LOCAL: u16 = 2;
    /// Scopes above this (link, host) do not reach a server elsewhere.
    const RT_SCOPE_SITE: u8 = 200;
    /// An IPv6 address still in duplicate detection: not usable yet, it comes again when it is.
    const IFA_F_TENTATIVE: u8 = 0x40;
    const RTN_UNICAST: u8 = 1;
    const RT_TABLE_MAIN: u8 = 254;
    /// `struct nlmsghdr`: length (u32), type (u16), flags, seq, pid.
    const NLMSG_HDR: usize = 16;
    /// `struct ifaddrmsg`: family, prefixlen, flags, scope (u8 each), index (u32).
    const IFADDRMSG: usize = 8;
    /// `struct rtmsg`: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
    const RTMSG: usize = 12;

    fn align4(n: usize) -> usize {
        (n + 3) & !3
    }

    /// What the kernel has said so far: the usable addresses (interface, bytes) and the
    /// families with a default route. Starts empty: the first report of an address already
    /// there counts once as new.
    #[derive(Debug, Default)]
    pub struct Tracker {
        addresses: HashSet<(u32, Vec<u8>)>,
        default_route: HashSet<u8>,
    }

    impl Tracker {
        /// Reads one datagram of netlink messages; true when the network gained an address
        /// or a default route. Malformed parts are skipped, never trusted past their end.
        pub fn feed(&mut self, datagram: &[u8]) -> bool {
            let mut gained = false;
            let mut at = 0;
            while at + NLMSG_HDR <= datagram.len() {
                let word = |o: usize| {
                    u32::from_ne_bytes([
                        datagram[at + o],
                        datagram[at + o + 1],
                        datagram[at + o + 2],
                        datagram[at + o + 3],
                    ])
                };
                let Ok(len) = usize::try_from(word(0)) else {
                    break;
                };
                if len < NLMSG_HDR || at + len > datagram.len() {
                    break;
                }
                let kind = u16::from_ne_bytes([datagram[at + 4], datagram[at + 5]]);
                let body = &datagram[at + NLMSG_HDR..at + len];
                gained |= match kind {
                    RTM_NEWADDR | RTM_DELADDR => self.address(kind == RTM_NEWADDR, body),
                    RTM_NEWROUTE | RTM_DELROUTE => self.route(kind == RTM_NEWROUTE, body),
                    _ => false,
                };
                at += align4(len);
            }
            gained
        }

        fn address(&mut self, added: bool, body: &[u8]) -> bool {
            if body.len() < IFADDRMSG {
                return false;
            }
            let (flags, scope) = (body[2], body[3]);
            let index = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
            // IFA_LOCAL is the address itself on point-to-point links, IFA_ADDRESS the peer.
            let attrs = attributes(&body[IFADDRMSG..]);
            let Some(bytes) = attrs
                .iter()
                .find(|(t, _)| *t == IFA_LOCAL)
                .or_else(|| attrs.iter().find(|(t, _)| *t == IFA_ADDRESS))
                .map(|(_, v)| v.to_vec())
            else {
                return false;
            };
            let key = (index, bytes);
            if !added || flags & IFA_F_TENTATIVE != 0 {
                self.addresses.remove(&key);
                return false;
            }
            scope <= RT_SCOPE_SITE && self.addresses.insert(key)
        }

        fn route(&mut self, added: bool, body: &[u8]) -> bool {
            if body.len() < RTMSG {
                return false;
            }
            let (family, dst_len, table, kind) = (body[0], body[1], body[4], body[7]);
            if dst_len != 0 || table != RT_TABLE_MAIN || kind != RTN_UNICAST {
                return false;
            }
            if added {
                self.default_route.insert(family)
            } else {
                self.default_route.remove(&family);
                false
            }
        }
    }

    /// The `rtattr`s of a message body: (type, value).
    fn attributes(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        while bytes.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
            let kind = u16::from_ne_bytes([bytes[2], bytes[3]]);
            if len < 4 || len > bytes.len() {
                break;
            }
            out.push((kind, &bytes[4..len]));
            bytes = &bytes[align4(len).min(bytes.len())..];
        }
        out
    }

    /// Opens the socket, subscribed to IPv4 and IPv6 address and route changes.
    pub fn watch() -> std::io::Result<NetworkEvents> {
        let fd: OwnedFd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkRoute,
        )?;
        let groups =
            RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
        // Tokio has no netlink socket, and registering a raw descriptor takes `unsafe` (which
        // this crate forbids). A datagram socket is read with recv(2) whatever its family,
        // and only `recv` is ever called on this one: the Unix datagram type carries it
        // safely (its addresses, which would be wrong, are never asked).
        let socket =
            tokio::net::UnixDatagram::from_std(std::os::unix::net::UnixDatagram::from(fd))?;
        let start = (socket, Tracker::default(), vec![0u8; 16 * 1024]);
        Ok(Box::pin(futures::stream::unfold(
            start,
            |(socket, mut tracker, mut buffer)| async move {
                loop {
                    let gained = match socket.recv(&mut buffer).await {
                        Ok(len) => tracker.feed(&buffer[..len]),
                        // The kernel dropped messages (a burst): what they said is unknown,
                        // so count it as a change.
                        Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => true,
                        Err(e) => {
                            tracing::warn!(error = %e, "the network watch stopped");
                            return None;
                        }
                    };
                    if gained {
                        return Some((NetworkChange, (socket, tracker, buffer)));
                    }
                }
            },
        )))
    }
}
