//! The `mem` scenario's client side: memory attacks on the server while a
//! legitimate client runs request/response.
//!
//! - Attackers: real connections (Linux sockets) whose sequence numbers are read with
//!   `TCP_REPAIR` (CAP_NET_ADMIN, which the bench has), then [`OOO_SEGMENTS`] segments of
//!   [`OOO_BYTES`] each are injected with a raw IP socket beyond a hole, near the right edge
//!   of the server's first window: the server holds them out of order forever (the hole is
//!   never filled). The attacker's kernel ignores the server's SACKs for data it never sent.
//! - Sinks: connections that write to the echo server and never read, so the server's send
//!   buffers fill (a peer that never reads).
//! - Legitimate: one connection doing 100-byte request/response for the run.
//!
//! Bounded: a fixed number of connections and segments, writes bounded in bytes and time,
//! every wait with a timeout.

use crate::error::{bail, Result};
use crate::sys;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Out-of-order segments per attacker, and their size.
pub const OOO_SEGMENTS: u32 = 4;
pub const OOO_BYTES: usize = 1000;
/// The highest offset from SND.NXT: inside a 64 KiB first window (Linux and the stack).
const EDGE: u32 = 60_000;
/// Bytes each sink writes at most without reading.
const SINK_BYTES: usize = 4 << 20;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MemReport {
    pub attackers: usize,
    pub ooo_segments_sent: u64,
    pub sinks: usize,
    pub sink_bytes_written: u64,
    pub rr_ok: u64,
    pub rr_failed: u64,
    /// Mean request/response time of the legitimate client, microseconds.
    pub rr_mean_us: f64,
}

/// Runs in the client namespace (the caller's thread enters it): opens the attack, then
/// the legitimate client for `duration`, calls `sample` once with the attack in place
/// (before the connections close), and closes everything.
pub fn run(
    ns: &str,
    addr: SocketAddrV4,
    attackers: usize,
    sinks: usize,
    duration: Duration,
    sample: &mut dyn FnMut(),
) -> Result<MemReport> {
    sys::enter_netns(ns)?;
    let mut r = MemReport::default();
    let raw = RawSocket::new()?;
    let mut held = Vec::new();
    for _ in 0..attackers {
        let s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
        let (snd, rcv) = repair_seqs(&s)?;
        let local = match s.local_addr()? {
            std::net::SocketAddr::V4(a) => a,
            _ => bail!("IPv4 only"),
        };
        for k in 0..OOO_SEGMENTS {
            let off = EDGE - k * 12_000;
            raw.send_data(local, addr, snd.wrapping_add(off), rcv, &[0x5a; OOO_BYTES])?;
            r.ooo_segments_sent += 1;
        }
        held.push(s);
    }
    r.attackers = held.len();
    let end = Instant::now() + Duration::from_secs(10);
    let chunk = vec![0x33u8; 64 << 10];
    for _ in 0..sinks {
        let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
        s.set_nonblocking(true)?;
        let mut n = 0;
        while n < SINK_BYTES && Instant::now() < end {
            match s.write(&chunk) {
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Give the server a moment to fill its side, then stop: full.
                    std::thread::sleep(Duration::from_millis(20));
                    if s.write(&chunk).is_err() {
                        break;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        r.sink_bytes_written += n as u64;
        held.push(s);
    }
    r.sinks = sinks;
    // The legitimate client.
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    let (req, mut resp) = ([0x41u8; 100], [0u8; 100]);
    let t0 = Instant::now();
    let mut spent = Duration::ZERO;
    while t0.elapsed() < duration && !sys::stopped() {
        let a = Instant::now();
        let ok = s.write_all(&req).is_ok() && s.read_exact(&mut resp).is_ok();
        if ok && resp == req {
            r.rr_ok += 1;
            spent += a.elapsed();
        } else {
            r.rr_failed += 1;
            s = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(1)))?;
        }
    }
    r.rr_mean_us = spent.as_secs_f64() * 1e6 / r.rr_ok.max(1) as f64;
    sample();
    drop(held);
    Ok(r)
}

/// (SND.NXT, RCV.NXT) of a connected socket, read in repair mode (Linux `TCP_REPAIR`,
/// `TCP_REPAIR_QUEUE`, `TCP_QUEUE_SEQ`); repair mode is left again.
fn repair_seqs(s: &TcpStream) -> Result<(u32, u32)> {
    const TCP_REPAIR: i32 = 19;
    const TCP_REPAIR_QUEUE: i32 = 20;
    const TCP_QUEUE_SEQ: i32 = 21;
    const TCP_RECV_QUEUE: i32 = 1;
    const TCP_SEND_QUEUE: i32 = 2;
    let fd = s.as_raw_fd();
    let set = |opt: i32, v: i32| -> Result<()> {
        // SAFETY: a valid socket and a 4-byte option value.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                opt,
                (&v as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        };
        if rc != 0 {
            bail!("setsockopt({opt}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    };
    let get_seq = || -> Result<u32> {
        let mut v: u32 = 0;
        let mut len = std::mem::size_of::<u32>() as u32;
        // SAFETY: a valid socket and a 4-byte buffer with its length.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                TCP_QUEUE_SEQ,
                (&mut v as *mut u32).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            bail!(
                "getsockopt(TCP_QUEUE_SEQ): {}",
                std::io::Error::last_os_error()
            );
        }
        Ok(v)
    };
    set(TCP_REPAIR, 1)?;
    let r = (|| {
        set(TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)?;
        let snd = get_seq()?;
        set(TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)?;
        let rcv = get_seq()?;
        Ok((snd, rcv))
    })();
    set(TCP_REPAIR, 0)?;
    r
}

/// A raw IPv4 socket (`IPPROTO_RAW`: we write the IP header) for crafted TCP segments.
struct RawSocket(i32);

impl RawSocket {
    fn new() -> Result<RawSocket> {
        // SAFETY: plain socket(2).
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
        if fd < 0 {
            bail!("raw socket: {}", std::io::Error::last_os_error());
        }
        Ok(RawSocket(fd))
    }

    /// An ACK segment `src` -> `dst` with `seq`, `ack` and `payload`.
    fn send_data(
        &self,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) -> Result<()> {
        let pkt = segment(src, dst, seq, ack, payload);
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(*dst.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        // SAFETY: a valid socket, buffer and sockaddr_in with its length.
        let n = unsafe {
            libc::sendto(
                self.0,
                pkt.as_ptr().cast(),
                pkt.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        if n < 0 {
            bail!("raw sendto: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for RawSocket {
    fn drop(&mut self) {
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.0) };
    }
}

/// IPv4 + TCP (ACK, window 502 << scale unknown: any) + payload, TCP checksum filled (the
/// kernel fills the IP checksum and id of an IPPROTO_RAW packet).
fn segment(src: SocketAddrV4, dst: SocketAddrV4, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let total = 40 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.ip().octets());
    p[16..20].copy_from_slice(&dst.ip().octets());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x10; // ACK
    t[14..16].copy_from_slice(&502u16.to_be_bytes());
    t[20..].copy_from_slice(payload);
    let c = tcp_checksum(*src.ip(), *dst.ip(), t);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    p
}

fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, tcp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&[0, 6]);
    add(&(tcp.len() as u16).to_be_bytes());
    add(tcp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checksum of a segment with its checksum filled in verifies to 0.
    #[test]
    fn segment_checksum_verifies() {
        let a = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000);
        let b = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80);
        let p = segment(a, b, 7, 9, b"odd");
        assert_eq!(p.len(), 43);
        assert_eq!(tcp_checksum(*a.ip(), *b.ip(), &p[20..]), 0);
    }
}
