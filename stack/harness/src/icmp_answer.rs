//! A peer that answers the stack's SYN with a hand-made ICMP or ICMPv6 error, for the root
//! veth tests of errors no Linux host sends on its own (a Parameter Problem): in the peer's
//! namespace an AF_PACKET socket reads the stack's SYN off the interface (it sees it before
//! nftables, which a test uses to keep Linux from answering), and a raw ICMP socket sends the
//! error back, quoting the SYN. Every wait is bounded in time; the sockets are closed on drop.

use std::io;
use std::net::IpAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::NetnsGuard;

/// The error to send: type, code and the 4 type-specific bytes (RFC 792 / RFC 4443 §2.1).
#[derive(Debug, Clone, Copy)]
pub struct IcmpAnswer {
    /// Type (ICMPv4 or ICMPv6, by the SYN's family).
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// The type-specific word (a Parameter Problem's pointer, an MTU).
    pub rest: [u8; 4],
}

/// An owned file descriptor, closed on drop.
struct Fd(i32);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: close(2) on a descriptor this module opened and owns.
        unsafe { libc::close(self.0) };
    }
}

fn check(r: i32, what: &str) -> io::Result<Fd> {
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(Fd(r))
}

/// An AF_PACKET socket for network-layer packets of one family, 100 ms receive timeout.
fn capture(v6: bool) -> io::Result<Fd> {
    let proto = if v6 { libc::ETH_P_IPV6 } else { libc::ETH_P_IP } as u16;
    // SAFETY: plain socket/setsockopt calls with valid arguments.
    unsafe {
        let fd = check(
            libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, proto.to_be() as i32),
            "AF_PACKET socket",
        )?;
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        let r = libc::setsockopt(
            fd.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        check(r, "SO_RCVTIMEO")?;
        Ok(fd)
    }
}

/// Whether IP packet `p` is a TCP SYN (not SYN-ACK) from `from` to port `port`.
fn is_syn(p: &[u8], from: IpAddr, port: u16) -> bool {
    let (src_ok, tcp) = match from {
        IpAddr::V4(a) if p.len() >= 20 && p[0] >> 4 == 4 && p[9] == 6 => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            (p[12..16] == a.octets(), p.get(ihl..))
        }
        IpAddr::V6(a) if p.len() >= 40 && p[0] >> 4 == 6 && p[6] == 6 => {
            (p[8..24] == a.octets(), p.get(40..))
        }
        _ => return false,
    };
    match tcp {
        Some(t) if src_ok && t.len() >= 20 => {
            u16::from_be_bytes([t[2], t[3]]) == port && t[13] & 0x12 == 0x02
        }
        _ => false,
    }
}

/// The first packet on `fd` that is a SYN from `from` to `port`, within `limit`.
fn wait_syn(fd: &Fd, from: IpAddr, port: u16, limit: Duration) -> io::Result<Vec<u8>> {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        // SAFETY: recv(2) into a buffer of the length given.
        let n = unsafe { libc::recv(fd.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
        // A negative n is the receive timeout: look again.
        if let Ok(n) = usize::try_from(n) {
            if is_syn(&buf[..n], from, port) {
                return Ok(buf[..n].to_vec());
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no SYN from {from} to port {port} within {limit:?}"),
    ))
}

/// The Internet checksum of `m` (RFC 1071), for ICMPv4 (over IPv6 the kernel fills it in:
/// RFC 4443 §2.3 covers a pseudo-header, and raw ICMPv6 sockets always compute it).
fn checksum(m: &[u8]) -> u16 {
    let mut s: u32 = m
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Sends `a` quoting `quote` to `to` from a raw ICMP (or ICMPv6) socket.
fn send(to: IpAddr, a: IcmpAnswer, quote: &[u8]) -> io::Result<()> {
    let mut msg = vec![a.ty, a.code, 0, 0];
    msg.extend_from_slice(&a.rest);
    msg.extend_from_slice(quote);
    // SAFETY: all-zero sockaddr_in / sockaddr_in6 are valid values.
    let (mut sa4, mut sa6): (libc::sockaddr_in, libc::sockaddr_in6) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let (family, proto, sa, sa_len) = match to {
        IpAddr::V4(a4) => {
            let c = checksum(&msg);
            msg[2..4].copy_from_slice(&c.to_be_bytes());
            sa4.sin_family = libc::AF_INET as u16;
            sa4.sin_addr.s_addr = u32::from_ne_bytes(a4.octets());
            let sa = &sa4 as *const _ as *const libc::sockaddr;
            (libc::AF_INET, libc::IPPROTO_ICMP, sa, size_of_val(&sa4))
        }
        IpAddr::V6(a6) => {
            sa6.sin6_family = libc::AF_INET6 as u16;
            sa6.sin6_addr.s6_addr = a6.octets();
            let sa = &sa6 as *const _ as *const libc::sockaddr;
            (libc::AF_INET6, libc::IPPROTO_ICMPV6, sa, size_of_val(&sa6))
        }
    };
    // SAFETY: a raw socket, sendto(2) with the sockaddr above (alive here) of its length
    // and a buffer of the length given.
    let sent = unsafe {
        let fd = check(
            libc::socket(family, libc::SOCK_RAW, proto),
            "raw ICMP socket",
        )?;
        libc::sendto(fd.0, msg.as_ptr().cast(), msg.len(), 0, sa, sa_len as u32)
    };
    if sent != msg.len() as isize {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("sendto {to}: {e}")));
    }
    Ok(())
}

/// Starts a thread in namespace `ns` that waits (at most `limit`) for a TCP SYN from `from`
/// to `port` on the namespace's interfaces, answers it with `answer` quoting the whole SYN
/// (its IP header and TCP header), and returns the SYN. Returns once the capture is open, so
/// no SYN sent after it can be missed.
pub fn answer_syn_with_icmp(
    ns: &str,
    from: IpAddr,
    port: u16,
    answer: IcmpAnswer,
    limit: Duration,
) -> io::Result<JoinHandle<io::Result<Vec<u8>>>> {
    let (ready_tx, ready) = mpsc::channel();
    let ns = ns.to_string();
    let peer = std::thread::spawn(move || {
        let opened = NetnsGuard::enter(&ns).and_then(|g| Ok((g, capture(from.is_ipv6())?)));
        let (_ns, cap) = match opened {
            Ok(o) => o,
            Err(e) => {
                let kind = e.kind();
                let _ = ready_tx.send(Err(e));
                return Err(io::Error::new(kind, "capture did not open"));
            }
        };
        let _ = ready_tx.send(Ok(()));
        let syn = wait_syn(&cap, from, port, limit)?;
        send(from, answer, &syn)?;
        Ok(syn)
    });
    match ready.recv_timeout(limit) {
        Ok(Ok(())) => Ok(peer),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the capture thread did not start",
        )),
    }
}
