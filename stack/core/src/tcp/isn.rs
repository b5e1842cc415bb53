//! Initial sequence numbers per RFC 6528 §3 and per-host-pair timestamp offsets.
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)` where M is a 4 µs clock
//! (RFC 9293 §3.4.1) and F is SipHash-2-4 keyed by a 128-bit secret (the runtime draws it from the OS RNG). A new
//! incarnation of a 4-tuple therefore starts above the old one's sequence space (M keeps
//! growing), while an off-path attacker cannot predict F (RFC 6528 §4).

use siphasher::sip::SipHasher24;
use std::net::Ipv4Addr;

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
        let mut input = [0u8; 13];
        input[0] = TAG_ISN;
        input[1..].copy_from_slice(&tuple.to_bytes());
        let f = self.hasher.hash(&input) as u32;
        SeqNum(m.wrapping_add(f))
    }

    /// RFC 6056 §3.3.3 (Algorithm 3) `F(local_IP, remote_IP, remote_port, secret_key)`: where
    /// the ephemeral port search for this destination starts (plus the endpoint's counter).
    pub fn port_offset(&self, local_addr: Ipv4Addr, remote_addr: Ipv4Addr, port: u16) -> u32 {
        let mut input = [0u8; 11];
        input[0] = TAG_PORT;
        input[1..5].copy_from_slice(&local_addr.octets());
        input[5..9].copy_from_slice(&remote_addr.octets());
        input[9..11].copy_from_slice(&port.to_be_bytes());
        self.hasher.hash(&input) as u32
    }

    /// The offset added to our RFC 7323 TSval clock for connections between these two hosts,
    /// so TSval does not reveal our uptime. Like Linux's `secure_tcp_ts_off()` it depends on
    /// the addresses only, not the ports: timestamps then stay monotonic across successive
    /// connections between the same hosts, which RFC 6191 TIME-WAIT reuse and `tcp_tw_reuse`
    /// rely on.
    pub fn ts_offset(&self, local_addr: Ipv4Addr, remote_addr: Ipv4Addr) -> u32 {
        let mut input = [0u8; 9];
        input[0] = TAG_TS;
        input[1..5].copy_from_slice(&local_addr.octets());
        input[5..9].copy_from_slice(&remote_addr.octets());
        self.hasher.hash(&input) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 16] = *b"0123456789abcdef";

    fn tuple(remote_port: u16) -> FourTuple {
        FourTuple {
            local_addr: Ipv4Addr::new(198, 18, 0, 1),
            local_port: 80,
            remote_addr: Ipv4Addr::new(198, 18, 0, 2),
            remote_port,
        }
    }

    #[test]
    fn different_tuples_get_different_isns() {
        // RFC 6528 §3: F separates the sequence spaces of different connections.
        let g = IsnGenerator::new(KEY);
        let now = Instant::from_secs(10);
        let a = g.isn(&tuple(40000), now);
        assert_ne!(a, g.isn(&tuple(40001), now));
        let mut t = tuple(40000);
        t.remote_addr = Ipv4Addr::new(198, 18, 0, 3);
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
        input.extend_from_slice(&t.to_bytes());
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
}
