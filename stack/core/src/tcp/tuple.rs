//! A TCP connection's identity: the 4-tuple (RFC 9293 §3.1: "a pair of sockets").

use std::net::Ipv4Addr;

/// Local and remote IPv4 address and port of one connection, seen from this stack
/// (`local` = our side). Used as the key of SYN queues and connection tables and as the input
/// of the ISN and SYN-cookie hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local_addr: Ipv4Addr,
    pub local_port: u16,
    pub remote_addr: Ipv4Addr,
    pub remote_port: u16,
}

impl FourTuple {
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
