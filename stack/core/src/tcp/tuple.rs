//! A TCP connection's identity: the 4-tuple (RFC 9293 §3.1: "a pair of sockets"), for IPv4
//! and IPv6.
//!
//! Both families in one 36-byte value: addresses are kept as 16 bytes, an IPv4 address as its
//! IPv4-mapped IPv6 form (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), which is also what tells the
//! families apart. That is unambiguous because the stack never takes an IPv6 packet whose
//! source or destination is IPv4-mapped (Linux drops them too: `tcp_v6_conn_request`, RFC
//! 4038 §4.2): the endpoint drops those as martians before a tuple is made.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Local and remote address and port of one connection, seen from this stack (`local` = our
/// side), IPv4 or IPv6 (both ends of one family). The one type for a connection's identity:
/// the key of the demux map, SYN queues and the TIME-WAIT table, the input of the ISN,
/// SYN-cookie and RSS hashes, and what a connection reports as its ends. 36 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    /// Our address, 16 bytes (IPv4-mapped for IPv4).
    local: [u8; 16],
    /// The peer's address, 16 bytes (IPv4-mapped for IPv4).
    remote: [u8; 16],
    /// Our port.
    pub local_port: u16,
    /// The peer's port.
    pub remote_port: u16,
}

/// The bytes a hash of a tuple reads ([`FourTuple::to_bytes`]): 12 for IPv4 (the layout the
/// XDP program's SYN-cookie code shares), 36 for IPv6.
#[derive(Clone, Copy)]
pub struct TupleBytes {
    buf: [u8; 36],
    len: u8,
}

impl AsRef<[u8]> for TupleBytes {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

fn mapped(a: Ipv4Addr) -> [u8; 16] {
    a.to_ipv6_mapped().octets()
}

fn v4_of(a: &[u8; 16]) -> Option<Ipv4Addr> {
    (a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
        .then(|| Ipv4Addr::new(a[12], a[13], a[14], a[15]))
}

fn ip_of(a: &[u8; 16]) -> IpAddr {
    match v4_of(a) {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(Ipv6Addr::from(*a)),
    }
}

impl FourTuple {
    /// The IPv4 tuple of a connection from `local` to `remote`.
    pub fn new(local: SocketAddrV4, remote: SocketAddrV4) -> Self {
        FourTuple {
            local: mapped(*local.ip()),
            local_port: local.port(),
            remote: mapped(*remote.ip()),
            remote_port: remote.port(),
        }
    }

    /// The IPv6 tuple of a connection from `local` to `remote` (flow info and scope ignored).
    /// Both must be true IPv6 addresses: an IPv4-mapped one would read as IPv4 (the caller
    /// drops such packets first, see the module docs).
    pub fn new_v6(local: SocketAddrV6, remote: SocketAddrV6) -> Self {
        FourTuple {
            local: local.ip().octets(),
            local_port: local.port(),
            remote: remote.ip().octets(),
            remote_port: remote.port(),
        }
    }

    /// Either family: `None` when `local` and `remote` are of different families.
    pub fn from_addrs(local: SocketAddr, remote: SocketAddr) -> Option<Self> {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => Some(FourTuple::new(l, r)),
            (SocketAddr::V6(l), SocketAddr::V6(r)) => Some(FourTuple::new_v6(l, r)),
            _ => None,
        }
    }

    /// [`FourTuple::from_addrs`] from addresses and ports.
    pub fn from_ips(
        local: IpAddr,
        local_port: u16,
        remote: IpAddr,
        remote_port: u16,
    ) -> Option<Self> {
        Self::from_addrs(
            SocketAddr::new(local, local_port),
            SocketAddr::new(remote, remote_port),
        )
    }

    /// Both ends are IPv6.
    pub fn is_ipv6(&self) -> bool {
        v4_of(&self.local).is_none()
    }

    /// Our address and port.
    pub fn local(&self) -> SocketAddr {
        SocketAddr::new(self.local_ip(), self.local_port)
    }

    /// The peer's address and port.
    pub fn remote(&self) -> SocketAddr {
        SocketAddr::new(self.remote_ip(), self.remote_port)
    }

    /// Our address.
    pub fn local_ip(&self) -> IpAddr {
        ip_of(&self.local)
    }

    /// The peer's address.
    pub fn remote_ip(&self) -> IpAddr {
        ip_of(&self.remote)
    }

    /// Our address and port if the tuple is IPv4.
    pub fn local_v4(&self) -> Option<SocketAddrV4> {
        v4_of(&self.local).map(|a| SocketAddrV4::new(a, self.local_port))
    }

    /// The peer's address and port if the tuple is IPv4.
    pub fn remote_v4(&self) -> Option<SocketAddrV4> {
        v4_of(&self.remote).map(|a| SocketAddrV4::new(a, self.remote_port))
    }

    /// Our address as 16 bytes (IPv4-mapped for IPv4).
    pub fn local_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.local)
    }

    /// The peer's address as 16 bytes (IPv4-mapped for IPv4).
    pub fn remote_ip6(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.remote)
    }

    /// The same connection seen from the peer.
    pub fn reversed(&self) -> Self {
        FourTuple {
            local: self.remote,
            local_port: self.remote_port,
            remote: self.local,
            remote_port: self.local_port,
        }
    }

    /// The bytes hashed by the ISN and cookie functions, in a fixed order: local address,
    /// local port, remote address, remote port (addresses of 4 bytes for IPv4, 16 for IPv6).
    pub fn to_bytes(&self) -> TupleBytes {
        let mut b = [0u8; 36];
        let len = if let (Some(l), Some(r)) = (v4_of(&self.local), v4_of(&self.remote)) {
            b[0..4].copy_from_slice(&l.octets());
            b[4..6].copy_from_slice(&self.local_port.to_be_bytes());
            b[6..10].copy_from_slice(&r.octets());
            b[10..12].copy_from_slice(&self.remote_port.to_be_bytes());
            12
        } else {
            b[0..16].copy_from_slice(&self.local);
            b[16..18].copy_from_slice(&self.local_port.to_be_bytes());
            b[18..34].copy_from_slice(&self.remote);
            b[34..36].copy_from_slice(&self.remote_port.to_be_bytes());
            36
        };
        TupleBytes { buf: b, len }
    }
}

impl fmt::Debug for FourTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FourTuple")
            .field("local", &self.local())
            .field("remote", &self.remote())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families() {
        let v4 = FourTuple::new(
            "198.18.0.1:80".parse().unwrap(),
            "198.18.0.2:4000".parse().unwrap(),
        );
        assert!(!v4.is_ipv6());
        assert_eq!(v4.local(), "198.18.0.1:80".parse::<SocketAddr>().unwrap());
        assert_eq!(v4.remote_v4(), Some("198.18.0.2:4000".parse().unwrap()));
        assert_eq!(
            v4.to_bytes().as_ref(),
            &[198, 18, 0, 1, 0, 80, 198, 18, 0, 2, 0x0f, 0xa0]
        );
        let v6 = FourTuple::from_addrs(
            "[2001:2::1]:80".parse().unwrap(),
            "[2001:2::2]:4000".parse().unwrap(),
        )
        .unwrap();
        assert!(v6.is_ipv6());
        assert_eq!(
            v6.remote(),
            "[2001:2::2]:4000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(v6.local_v4(), None);
        assert_eq!(v6.to_bytes().as_ref().len(), 36);
        assert_eq!(v6.reversed().reversed(), v6);
        assert_ne!(v6, v4);
        assert!(FourTuple::from_addrs(v4.local(), v6.remote()).is_none());
        assert_eq!(core::mem::size_of::<FourTuple>(), 36);
    }
}
