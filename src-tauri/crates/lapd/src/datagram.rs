//! Receiving a request and sending its answer on one UDP socket, the answer leaving from the
//! address the request was sent to.
//!
//! A socket bound to a wildcard address (0.0.0.0, [::]) on a host with several addresses
//! would otherwise answer from whichever address the routing table picks for the client; a
//! client whose socket is connected to the address it asked (most are) never sees such an
//! answer. On Linux the socket asks for IP_PKTINFO / IPV6_PKTINFO with every datagram, and the
//! answer names that address as its source. Elsewhere lapd answers as the system routes it:
//! bind one lapd per address there on multi-homed hosts.
//!
//! Nothing here allocates per datagram: the control-message buffers are made once per worker.

use std::io;
use std::net::{SocketAddr, UdpSocket};

/// Turns on the per-datagram destination address (a no-op where it is not supported).
pub fn enable_destination_info(socket: &UdpSocket, ipv6: bool) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        if ipv6 {
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        } else {
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, ipv6);
    Ok(())
}

/// Where a request arrived: what its answer is sent from.
#[derive(Clone, Copy)]
pub enum Arrival {
    /// Not known: the answer leaves as the system routes it.
    Unknown,
    #[cfg(target_os = "linux")]
    V4(nix::libc::in_pktinfo),
    #[cfg(target_os = "linux")]
    V6(nix::libc::in6_pktinfo),
}

impl std::fmt::Debug for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unknown => "Unknown",
            #[cfg(target_os = "linux")]
            Self::V4(_) => "V4",
            #[cfg(target_os = "linux")]
            Self::V6(_) => "V6",
        })
    }
}

/// One worker's receive and send path on its socket.
pub struct DatagramIo<'s> {
    socket: &'s UdpSocket,
    #[cfg(target_os = "linux")]
    linux: linux::Buffers,
}

impl std::fmt::Debug for DatagramIo<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatagramIo")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl<'s> DatagramIo<'s> {
    pub fn new(socket: &'s UdpSocket) -> Self {
        Self {
            socket,
            #[cfg(target_os = "linux")]
            linux: linux::Buffers::new(),
        }
    }

    /// Receives one datagram: its length, its source, and the address it was sent to.
    pub fn recv(&mut self, buffer: &mut [u8]) -> io::Result<(usize, SocketAddr, Arrival)> {
        #[cfg(target_os = "linux")]
        {
            self.linux.recv(self.socket, buffer)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let (len, source) = self.socket.recv_from(buffer)?;
            Ok((len, source, Arrival::Unknown))
        }
    }

    /// Sends `answer` to `to`, from the address the request arrived at when that is known.
    pub fn send(&mut self, answer: &[u8], to: SocketAddr, arrival: Arrival) -> io::Result<()> {
        match arrival {
            Arrival::Unknown => self.socket.send_to(answer, to).map(|_| ()),
            #[cfg(target_os = "linux")]
            Arrival::V4(_) | Arrival::V6(_) => self.linux.send(self.socket, answer, to, arrival),
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
    use std::os::fd::AsRawFd;

    use nix::libc;
    use nix::sys::socket::{
        ControlMessage, ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmsg,
        sendmmsg,
    };

    use super::Arrival;

    /// The control-message space of one receive and one send, made once.
    pub struct Buffers {
        received: Vec<u8>,
        /// sendmmsg with one message: unlike nix's sendmsg it reuses its buffers.
        send_v4: MultiHeaders<SockaddrStorage>,
        send_v6: MultiHeaders<SockaddrStorage>,
    }

    impl Buffers {
        pub fn new() -> Self {
            Self {
                received: nix::cmsg_space!(libc::in6_pktinfo),
                send_v4: MultiHeaders::preallocate(1, Some(nix::cmsg_space!(libc::in_pktinfo))),
                send_v6: MultiHeaders::preallocate(1, Some(nix::cmsg_space!(libc::in6_pktinfo))),
            }
        }

        pub fn recv(
            &mut self,
            socket: &UdpSocket,
            buffer: &mut [u8],
        ) -> io::Result<(usize, SocketAddr, Arrival)> {
            let mut iov = [IoSliceMut::new(buffer)];
            let message = recvmsg::<SockaddrStorage>(
                socket.as_raw_fd(),
                &mut iov,
                Some(&mut self.received),
                MsgFlags::empty(),
            )?;
            let source = message
                .address
                .as_ref()
                .and_then(to_socket_addr)
                .ok_or_else(|| io::Error::other("a datagram without a source address"))?;
            let mut arrival = Arrival::Unknown;
            if let Ok(messages) = message.cmsgs() {
                for control in messages {
                    match control {
                        ControlMessageOwned::Ipv4PacketInfo(mut info) => {
                            // Only the local address (ipi_spec_dst) is to be kept: an interface
                            // index would make the kernel route by that interface's primary
                            // address instead.
                            info.ipi_ifindex = 0;
                            arrival = Arrival::V4(info);
                        }
                        ControlMessageOwned::Ipv6PacketInfo(info)
                            if info.ipi6_addr.s6_addr[0] != 0xff =>
                        {
                            // A multicast destination is no source to answer from.
                            arrival = Arrival::V6(info);
                        }
                        _ => {}
                    }
                }
            }
            Ok((message.bytes, source, arrival))
        }

        pub fn send(
            &mut self,
            socket: &UdpSocket,
            answer: &[u8],
            to: SocketAddr,
            arrival: Arrival,
        ) -> io::Result<()> {
            let iov = [IoSlice::new(answer)];
            let address = [Some(SockaddrStorage::from(to))];
            match arrival {
                Arrival::V4(info) => {
                    sendmmsg(
                        socket.as_raw_fd(),
                        &mut self.send_v4,
                        &[iov],
                        address,
                        [ControlMessage::Ipv4PacketInfo(&info)],
                        MsgFlags::empty(),
                    )?;
                }
                Arrival::V6(info) => {
                    sendmmsg(
                        socket.as_raw_fd(),
                        &mut self.send_v6,
                        &[iov],
                        address,
                        [ControlMessage::Ipv6PacketInfo(&info)],
                        MsgFlags::empty(),
                    )?;
                }
                Arrival::Unknown => {
                    socket.send_to(answer, to)?;
                }
            }
            Ok(())
        }
    }

    fn to_socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = address.as_sockaddr_in() {
            return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
        }
        address
            .as_sockaddr_in6()
            .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
    }
}
