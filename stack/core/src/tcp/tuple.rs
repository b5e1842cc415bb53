//! A TCP connection's identity: the 4-tuple (RFC 9293 §3.1: "a pair of sockets").

use std::net::{Ipv4Addr, SocketAddrV4};

/// Local and remote IPv4 address and port of one connection, seen from this stack
/// (`local` = our side). The one type for a connection's identity: the key of the demux map,
/// SYN queues and the TIME-WAIT table, the input of the ISN, SYN-cookie and RSS hashes, and
/// what a connection reports as its ends. 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address.
    pub local_addr: Ipv4Addr,
    /// Our port.
    pub local_port: u16,
    /// The peer's address.
    pub remote_addr: Ipv4Addr,
    /// The peer's port.
    pub remote_port: u16,
}

impl FourTuple {
    /// The tuple of a connection from `local` to `remote`.
    pub fn new(local: SocketAddrV4, remote: SocketAddrV4) -> Self {
        FourTuple {
            local_addr: *local.ip(),
            local_port: local.port(),
            remote_addr: *remote.ip(),
            remote_port: remote.port(),
        }
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.local_addr, self.local_port)
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.remote_addr, self.remote_port)
    }

    /// The same connection seen from the peer.
    pub fn reversed(&self) -> Self {
        FourTuple::new(self.remote(), self.local())
    }

    /// The 12 bytes hashed by the ISN and cookie functions, in a fixed order.
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.local_addr.octets());
        b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
        b[6..10].copy_from_slice(&self.remote_addr.octets());
        b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
        b
    }
}
