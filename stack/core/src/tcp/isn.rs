//! Initial sequence numbers per RFC 6528 §3 and per-host-pair timestamp offsets.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)` where M is a 4 µs clock
//! (RFC 9293 §3.4.1) and F is SipHash-2-4 keyed by a 128-bit secret (the runtime draws it from the OS RNG). A new
//! incarnation of a 4-tuple therefore starts above the old one's sequence space (M keeps
//! growing), while an off-path attacker cannot predict F (RFC 6528 §4).

use siphasher::sip::SipHasher24;
use std::net::IpAddr;

use super::tuple::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNum;

/// Nanoseconds per tick of RFC 6528's M clock: 4 µs, i.e. 250 000 ticks per second.
pub const ISN_TICK_NS: u64 = 4_000;

/// Domain tags so the ISN and the timestamp offset never share a hash input.
const TAG_ISN: u8 = b'I';
const TAG_TS: u8 = b'T';
const TAG_PORT: u8 = b'P';

/// The keyed ISN / timestamp-offset generator. 16 bytes of state, no allocation.
#[derive(Clone)]
pub struct IsnGenerator {
    hasher: SipHasher24,
}

impl core::fmt::Debug for IsnGenerator {
    // Never print the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { .. }")
    }
}

impl IsnGenerator {
    /// A generator with a fixed secret (tests, simulations: deterministic).
    pub fn new(secret: [u8; 16]) -> Self {
        IsnGenerator {
            hasher: SipHasher24::new_with_key(&secret),
        }
    }

    /// RFC 6528 §3: M (4 µs ticks of `now`, wrapping mod 2^32) plus the keyed hash of the
    /// 4-tuple. `now` is the caller's monotonic clock; only differences in it matter.
    pub fn isn(&self, tuple: &FourTuple, now: Instant) -> SeqNum {
        let m = (now.as_nanos() / ISN_TICK_NS) as u32;
        let t = tuple.to_bytes();
        let t = t.as_ref();
        let mut input = [0u8; 37];
        input[0] = TAG_ISN;
        input[1..1 + t.len()].copy_from_slice(t);
        let f = self.hasher.hash(&input[..1 + t.len()]) as u32;
        SeqNum(m.wrapping_add(f))
    }

    /// RFC 6056 §3.3.3 (Algorithm 3) `F(local_IP, remote_IP, remote_port, secret_key)`: where
    /// the ephemeral port search for this destination starts (plus the endpoint's counter).
    pub fn port_offset(
        &self,
        local_addr: impl Into<IpAddr>,
        remote_addr: impl Into<IpAddr>,
        port: u16,
    ) -> u32 {
        let mut input = [0u8; 35];
        input[0] = TAG_PORT;
        let n = 1 + addr_pair(&mut input[1..33], local_addr.into(), remote_addr.into());
        input[n..n + 2].copy_from_slice(&port.to_be_bytes());
        self.hasher.hash(&input[..n + 2]) as u32
    }

    /// The offset added to our RFC 7323 TSval clock for connections between these two hosts,
    /// so TSval does not reveal our uptime. Like Linux's `secure_tcp_ts_off()` it depends on
    /// the addresses only, not the ports: timestamps then stay monotonic across successive
    /// connections between the same hosts, which RFC 6191 TIME-WAIT reuse and `tcp_tw_reuse`
    /// rely on.
    pub fn ts_offset(&self, local_addr: impl Into<IpAddr>, remote_addr: impl Into<IpAddr>) -> u32 {
        let mut input = [0u8; 33];
        input[0] = TAG_TS;
        let n = 1 + addr_pair(&mut input[1..], local_addr.into(), remote_addr.into());
        self.hasher.hash(&input[..n]) as u32
    }
}

/// Writes the two addresses (4 bytes each for IPv4, as the XDP program's `ts_offset` reads
/// them; 16 for IPv6) into `out` and returns the bytes written.
fn addr_pair(out: &mut [u8], a: IpAddr, b: IpAddr) -> usize {
    let octets = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => (v4.to_ipv6_mapped().octets(), 4),
        IpAddr::V6(v6) => (v6.octets(), 16),
    };
    let ((a, an), (b, bn)) = (octets(a), octets(b));
    out[..an].copy_from_slice(&a[16 - an..]);
    out[an..an + bn].copy_from_slice(&b[16 - bn..]);
    an + bn
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn tuple(remote_port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), remote_port),
        )
    }

    #[test]
    fn different_tuples_get_different_isns() {
        // RFC 6528 §3: F separates the sequence spaces of different connections.
        let g = IsnGenerator::new(KEY);
        let now = Instant::from_secs(10);
        let a = g.isn(&tuple(40000), now);
        assert_ne!(a, g.isn(&tuple(40001), now));
        let t = FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 3), 40000),
        );
        assert_ne!(a, g.isn(&t, now));
        let mut t = tuple(40000);
        t.local_port = 81;
        assert_ne!(a, g.isn(&t, now));
    }

    #[test]
    fn same_tuple_advances_250k_per_second() {
        // RFC 6528 §3 / RFC 9293 §3.4.1: M ticks every 4 microseconds.
        let g = IsnGenerator::new(KEY);
        let t = tuple(40000);
        let base = Instant::from_secs(3);
        let a = g.isn(&t, base);
        assert_eq!(g.isn(&t, Instant::from_secs(4)).diff(a), 250_000);
        assert_eq!(g.isn(&t, Instant::from_millis(3001)).diff(a), 250);
        assert_eq!(g.isn(&t, base + core::time::Duration::from_nanos(3_999)), a);
        assert_eq!(
            g.isn(&t, base + core::time::Duration::from_micros(4)),
            a + 1u32
        );
    }

    #[test]
    fn clock_wraps_modulo_2_pow_32() {
        let g = IsnGenerator::new(KEY);
        let t = tuple(1);
        let wrap = Instant::from_nanos((1u64 << 32) * ISN_TICK_NS);
        assert_eq!(g.isn(&t, wrap), g.isn(&t, Instant::ZERO));
    }

    #[test]
    fn deterministic_with_fixed_key_and_keyed() {
        let t = tuple(40000);
        let now = Instant::from_millis(1234);
        let a = IsnGenerator::new(KEY);
        let b = IsnGenerator::new(KEY);
        assert_eq!(a.isn(&t, now), b.isn(&t, now));
        // F is SipHash-2-4 of the tagged tuple; at M = 0 the ISN is F itself.
        let mut input = vec![TAG_ISN];
        input.extend_from_slice(t.to_bytes().as_ref());
        let f = SipHasher24::new_with_key(&KEY).hash(&input) as u32;
        assert_eq!(a.isn(&t, Instant::ZERO), SeqNum(f));
        // Another secret gives another ISN (an attacker without the key cannot predict it).
        let mut other = KEY;
        other[0] ^= 1;
        assert_ne!(IsnGenerator::new(other).isn(&t, now), a.isn(&t, now));
    }

    #[test]
    fn ts_offset_per_host_pair() {
        let g = IsnGenerator::new(KEY);
        let l = Ipv4Addr::new(198, 18, 0, 1);
        let r = Ipv4Addr::new(198, 18, 0, 2);
        let off = g.ts_offset(l, r);
        assert_eq!(off, IsnGenerator::new(KEY).ts_offset(l, r));
        assert_ne!(off, g.ts_offset(l, Ipv4Addr::new(198, 18, 0, 3)));
        assert_ne!(off, g.ts_offset(r, l));
        let mut other = KEY;
        other[15] ^= 0x80;
        assert_ne!(off, IsnGenerator::new(other).ts_offset(l, r));
    }

    fn tuple6(remote_port: u16) -> FourTuple {
        FourTuple::new_v6(
            SocketAddrV6::new("2001:2::1".parse().unwrap(), 80, 0, 0),
            SocketAddrV6::new("2001:2::2".parse().unwrap(), remote_port, 0, 0),
        )
    }

    #[test]
    fn ipv6_isn_over_the_36_tuple_bytes() {
        // RFC 6528 §3 F(localip, localport, remoteip, remoteport, secretkey) over the full
        // 128-bit addresses.
        let g = IsnGenerator::new(KEY);
        let t = tuple6(40000);
        let mut input = vec![TAG_ISN];
        input.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80]);
        input.extend_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        input.extend_from_slice(&40000u16.to_be_bytes());
        let f = SipHasher24::new_with_key(&KEY).hash(&input) as u32;
        assert_eq!(g.isn(&t, Instant::ZERO), SeqNum(f));
        assert_ne!(
            g.isn(&t, Instant::ZERO),
            g.isn(&tuple6(40001), Instant::ZERO)
        );
        // The IPv4-mapped form of an IPv4 tuple is never hashed as 36 bytes: IPv4 keeps the
        // 12-byte input the XDP program shares.
        assert_eq!(tuple(1).to_bytes().as_ref().len(), 12);
        let (l, r): (Ipv6Addr, Ipv6Addr) =
            ("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap());
        let mut ts = vec![TAG_TS];
        ts.extend_from_slice(&l.octets());
        ts.extend_from_slice(&r.octets());
        assert_eq!(
            g.ts_offset(l, r),
            SipHasher24::new_with_key(&KEY).hash(&ts) as u32
        );
        assert_ne!(g.port_offset(l, r, 80), g.port_offset(r, l, 80));
    }
}
