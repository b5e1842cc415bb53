//! Socket addresses of both families as programs see them (`sockaddr_in`, `sockaddr_in6`)
//! and which of the stack's addresses a bound socket covers.
//!
//! An AF_INET6 socket speaks IPv4 through IPv4-mapped addresses (`::ffff:a.b.c.d`, RFC 4291
//! §2.5.5.2) unless IPV6_V6ONLY is set, as on Linux (`man 7 ipv6`): bound to `::` it listens
//! on the stack's IPv4 address too, and an IPv4 peer's address reads back mapped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use libc::{c_int, sockaddr, sockaddr_in, sockaddr_in6, socklen_t};

/// A socket's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    V4,
    V6,
}

impl Family {
    /// The family of `socket(domain, ...)`, if the stack serves it.
    pub fn of_domain(domain: c_int) -> Option<Family> {
        match domain {
            libc::AF_INET => Some(Family::V4),
            libc::AF_INET6 => Some(Family::V6),
            _ => None,
        }
    }

    /// SO_DOMAIN.
    pub fn domain(self) -> c_int {
        match self {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        }
    }

    /// The wildcard address of the family, port 0 (an unbound socket's name).
    pub fn unspecified(self) -> SocketAddr {
        match self {
            Family::V4 => SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0),
            Family::V6 => SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0),
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for; others unchanged.
pub fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v) => match v.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, v.port())),
            None => a,
        },
        v4 => v4,
    }
}

/// Reads the address a program passed for a socket of `family` (an AF_INET6 socket's
/// IPv4-mapped addresses come back as IPv4). `None`: another family, or too short (the
/// kernel's call then gives the program its errno).
///
/// # Safety
/// `addr` points to `len` readable bytes (or is null).
pub unsafe fn read(addr: *const sockaddr, len: socklen_t, family: Family) -> Option<SocketAddr> {
    if addr.is_null() || (len as usize) < std::mem::size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family field is readable.
    let fam = unsafe { std::ptr::read_unaligned(addr as *const libc::sa_family_t) } as c_int;
    match (family, fam) {
        (Family::V4, libc::AF_INET) if len as usize >= std::mem::size_of::<sockaddr_in>() => {
            // SAFETY: length checked; read_unaligned for any alignment.
            let sin: sockaddr_in = unsafe { std::ptr::read_unaligned(addr as *const sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        (Family::V6, libc::AF_INET6) if len as usize >= std::mem::size_of::<sockaddr_in6>() => {
            // SAFETY: as above.
            let s6: sockaddr_in6 = unsafe { std::ptr::read_unaligned(addr as *const sockaddr_in6) };
            Some(unmap(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(s6.sin6_addr.s6_addr),
                u16::from_be(s6.sin6_port),
                u32::from_be(s6.sin6_flowinfo),
                s6.sin6_scope_id,
            ))))
        }
        _ => None,
    }
}

/// Writes `a` for a socket of `family` the way the kernel does (IPv4 addresses of an
/// AF_INET6 socket mapped), truncated to `*len`, with `*len` set to the full size.
///
/// # Safety
/// `addr`/`len` are null or valid for the kernel's contract.
pub unsafe fn write(family: Family, a: SocketAddr, addr: *mut sockaddr, len: *mut socklen_t) {
    if addr.is_null() || len.is_null() {
        return;
    }
    match family {
        Family::V4 => {
            let v4 = match a {
                SocketAddr::V4(v) => v,
                SocketAddr::V6(v) => SocketAddrV4::new(
                    v.ip().to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
                    v.port(),
                ),
            };
            // SAFETY: sockaddr_in is plain data.
            let mut sin: sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = v4.port().to_be();
            sin.sin_addr.s_addr = u32::from(*v4.ip()).to_be();
            // SAFETY: the caller's buffer.
            unsafe { copy_out(&sin, addr, len) };
        }
        Family::V6 => {
            let ip = match a.ip() {
                IpAddr::V4(v) => v.to_ipv6_mapped(),
                IpAddr::V6(v) => v,
            };
            // SAFETY: sockaddr_in6 is plain data.
            let mut s6: sockaddr_in6 = unsafe { std::mem::zeroed() };
            s6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s6.sin6_port = a.port().to_be();
            s6.sin6_addr.s6_addr = ip.octets();
            // SAFETY: the caller's buffer.
            unsafe { copy_out(&s6, addr, len) };
        }
    }
}

/// # Safety
/// As for [`write`].
unsafe fn copy_out<T>(v: &T, addr: *mut sockaddr, len: *mut socklen_t) {
    let full = std::mem::size_of::<T>();
    // SAFETY: the caller's buffer holds *len bytes.
    unsafe {
        let n = (*len as usize).min(full);
        std::ptr::copy_nonoverlapping(v as *const T as *const u8, addr as *mut u8, n);
        *len = full as socklen_t;
    }
}

/// Whether a bind to `ip` goes to the stack: one of its addresses or the wildcard of the
/// socket's family when the stack has an address of that family (an AF_INET6 wildcard also
/// when the stack has IPv4 only: it covers the IPv4 address unless IPV6_V6ONLY).
pub fn is_stack_bind(ip: IpAddr, v4: Option<Ipv4Addr>, v6: &[Ipv6Addr]) -> bool {
    match ip {
        IpAddr::V4(a) => v4.is_some_and(|v4| a == v4 || a.is_unspecified()),
        IpAddr::V6(a) => {
            (a.is_unspecified() && (v4.is_some() || !v6.is_empty())) || v6.contains(&a)
        }
    }
}

/// Whether a connect to `ip` stays on the kernel: loopback, the wildcard, or a family the
/// stack has no address of.
pub fn is_kernel_dest(ip: IpAddr, have4: bool, have6: bool) -> bool {
    let have = if ip.is_ipv6() { have6 } else { have4 };
    ip.is_loopback() || ip.is_unspecified() || !have
}

/// The stack addresses a socket bound to `local` listens on: the IPv4 address for an IPv4
/// bind, every IPv6 address (and the IPv4 one unless `v6only`) for the IPv6 wildcard, else
/// the one address.
pub fn listen_ips(
    local: IpAddr,
    v6only: bool,
    v4: Option<Ipv4Addr>,
    v6: &[Ipv6Addr],
) -> Vec<IpAddr> {
    match local {
        IpAddr::V4(_) => v4.into_iter().map(IpAddr::V4).collect(),
        IpAddr::V6(a) if a.is_unspecified() => v4
            .filter(|_| !v6only)
            .map(IpAddr::V4)
            .into_iter()
            .chain(v6.iter().map(|&a| IpAddr::V6(a)))
            .collect(),
        ip => vec![ip],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
    const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 7);

    fn roundtrip(family: Family, a: SocketAddr) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 64];
        let mut len = buf.len() as socklen_t;
        // SAFETY: a 64-byte buffer.
        unsafe { write(family, a, buf.as_mut_ptr() as *mut sockaddr, &mut len) };
        let bytes = buf[..len as usize].to_vec();
        // SAFETY: what write wrote.
        let back = unsafe { read(buf.as_ptr() as *const sockaddr, len, family) }.unwrap();
        (bytes, back)
    }

    #[test]
    fn ipv4_peers_of_an_inet6_socket_read_back_mapped() {
        // RFC 4291 §2.5.5.2: ::ffff:198.18.0.2 on the wire of the API, IPv4 inside.
        let peer = SocketAddr::new(Ipv4Addr::new(198, 18, 0, 2).into(), 40000);
        let (bytes, back) = roundtrip(Family::V6, peer);
        assert_eq!(bytes.len(), std::mem::size_of::<sockaddr_in6>());
        assert_eq!(&bytes[..2], &(libc::AF_INET6 as u16).to_ne_bytes());
        assert_eq!(&bytes[2..4], &40000u16.to_be_bytes());
        assert_eq!(
            &bytes[8..24],
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 2]
        );
        assert_eq!(back, peer);
        let (bytes, back) = roundtrip(Family::V4, peer);
        assert_eq!(bytes.len(), std::mem::size_of::<sockaddr_in>());
        assert_eq!(back, peer);
        let v6 = SocketAddr::new(A6.into(), 443);
        assert_eq!(roundtrip(Family::V6, v6).1, v6);
    }

    #[test]
    fn the_other_family_or_a_short_address_is_not_read() {
        let mut buf = [0u8; 64];
        let mut len = buf.len() as socklen_t;
        let v4 = SocketAddr::new(V4.into(), 80);
        // SAFETY: a 64-byte buffer.
        unsafe { write(Family::V4, v4, buf.as_mut_ptr() as *mut sockaddr, &mut len) };
        // SAFETY: as above.
        unsafe {
            assert_eq!(read(buf.as_ptr() as *const sockaddr, len, Family::V6), None);
            assert_eq!(read(buf.as_ptr() as *const sockaddr, 8, Family::V4), None);
            assert_eq!(read(std::ptr::null(), 16, Family::V4), None);
        }
    }

    #[test]
    fn truncated_like_the_kernel() {
        let mut buf = [0xaau8; 8];
        let mut len = 8 as socklen_t;
        let a = SocketAddr::new(A6.into(), 1);
        // SAFETY: an 8-byte buffer, *len = 8.
        unsafe { write(Family::V6, a, buf.as_mut_ptr() as *mut sockaddr, &mut len) };
        assert_eq!(len as usize, std::mem::size_of::<sockaddr_in6>());
        assert_eq!(&buf[2..4], &1u16.to_be_bytes());
    }

    #[test]
    fn which_binds_and_connects_are_the_stacks() {
        let v4 = Some(V4);
        assert!(is_stack_bind(V4.into(), v4, &[]));
        assert!(is_stack_bind(Ipv4Addr::UNSPECIFIED.into(), v4, &[]));
        assert!(!is_stack_bind(Ipv4Addr::LOCALHOST.into(), v4, &[A6]));
        assert!(is_stack_bind(Ipv6Addr::UNSPECIFIED.into(), v4, &[]));
        assert!(is_stack_bind(A6.into(), v4, &[A6]));
        assert!(!is_stack_bind(B6.into(), v4, &[A6]));
        assert!(!is_stack_bind(Ipv6Addr::LOCALHOST.into(), v4, &[A6]));
        // An IPv6-only stack leaves IPv4 (also 0.0.0.0) to the kernel.
        assert!(!is_stack_bind(Ipv4Addr::UNSPECIFIED.into(), None, &[A6]));
        assert!(is_stack_bind(Ipv6Addr::UNSPECIFIED.into(), None, &[A6]));
        assert!(is_kernel_dest(Ipv6Addr::LOCALHOST.into(), true, true));
        assert!(is_kernel_dest(B6.into(), true, false));
        assert!(!is_kernel_dest(B6.into(), false, true));
        assert!(!is_kernel_dest(
            Ipv4Addr::new(198, 18, 0, 2).into(),
            true,
            false
        ));
        assert!(is_kernel_dest(
            Ipv4Addr::new(198, 18, 0, 2).into(),
            false,
            true
        ));
    }

    #[test]
    fn the_ipv6_wildcard_listens_on_both_families_unless_v6only() {
        let any6 = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        assert_eq!(
            listen_ips(any6, false, Some(V4), &[A6, B6]),
            [IpAddr::V4(V4), A6.into(), B6.into()]
        );
        assert_eq!(
            listen_ips(any6, true, Some(V4), &[A6, B6]),
            [IpAddr::from(A6), B6.into()]
        );
        assert_eq!(listen_ips(any6, true, Some(V4), &[]), [] as [IpAddr; 0]);
        assert_eq!(listen_ips(any6, false, None, &[A6]), [IpAddr::from(A6)]);
        assert_eq!(
            listen_ips(Ipv4Addr::UNSPECIFIED.into(), false, None, &[A6]),
            [] as [IpAddr; 0]
        );
        assert_eq!(
            listen_ips(B6.into(), false, Some(V4), &[A6, B6]),
            [IpAddr::from(B6)]
        );
        assert_eq!(
            listen_ips(Ipv4Addr::UNSPECIFIED.into(), false, Some(V4), &[A6]),
            [IpAddr::V4(V4)]
        );
    }
}
