//! Which worker owns a flow: a pure function of the 4-tuple, so any worker can tell where a
//! misdirected segment belongs. It is the NIC's RSS: the Toeplitz hash (Microsoft RSS
//! specification) of (source address, destination address, source port, destination port)
//! *as the NIC sees the packet arrive* (the remote end is the source), with the NIC's key when
//! known (else the Microsoft default key, which many drivers use), reduced mod N. Real NICs
//! map the hash through an indirection table; with the default even spread (entry i -> i mod
//! N) that is `hash mod N` on the low bits, which is what [`FlowOwner::owner`] computes.

use crate::tcp::tuple::FourTuple;

/// The Microsoft RSS default key (also the default of many drivers).
pub const DEFAULT_RSS_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The Toeplitz hash of `input` under `key` (key at least `input.len() + 4` bytes).
pub fn toeplitz(key: &[u8; 40], input: &[u8]) -> u32 {
    let mut hash = 0u32;
    // The 32-bit window of the key starting at the current input bit.
    let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
    for (i, &byte) in input.iter().enumerate() {
        let next = key.get(i + 4).copied().unwrap_or(0);
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - bit)) & 1);
        }
    }
    hash
}

/// The RSS hash of a flow as received: remote address/port are the packet's source. IPv4:
/// the 12 bytes (src, dst, sport, dport); IPv6: the 36 bytes (src, dst, sport, dport) that
/// NICs hash for TCP/IPv6 (the spec's "IPv6 with TCP"; the 40-byte key covers 36 + 4).
pub fn flow_hash(key: &[u8; 40], t: &FourTuple) -> u32 {
    let mut input = [0u8; 36];
    let (r, l) = (t.remote_ip6().octets(), t.local_ip6().octets());
    let n = if t.is_ipv6() {
        input[0..16].copy_from_slice(&r);
        input[16..32].copy_from_slice(&l);
        32
    } else {
        input[0..4].copy_from_slice(&r[12..]);
        input[4..8].copy_from_slice(&l[12..]);
        8
    };
    input[n..n + 2].copy_from_slice(&t.remote_port.to_be_bytes());
    input[n + 2..n + 4].copy_from_slice(&t.local_port.to_be_bytes());
    toeplitz(key, &input[..n + 4])
}

/// Maps flows to workers. Passive flows (and anything outside the stack's ephemeral range):
/// `flow_hash mod workers`, the queue RSS delivers them to. Active opens (the local port is in
/// the ephemeral range given by [`FlowOwner::with_ephemeral`]): the worker whose sub-range
/// ([`FlowOwner::ephemeral_range`]) holds the port, so an active open is always owned by the
/// worker that made it, even when no port of its range hashed to its own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOwner {
    key: [u8; 40],
    workers: usize,
    ephemeral: Option<(u16, u16)>,
}

impl FlowOwner {
    /// `workers` is at least 1.
    pub fn new(key: [u8; 40], workers: usize) -> Self {
        FlowOwner {
            key,
            workers: workers.max(1),
            ephemeral: None,
        }
    }

    /// Splits `lo..=hi` into one contiguous sub-range per worker (see `ephemeral_range`).
    pub fn with_ephemeral(mut self, lo: u16, hi: u16) -> Self {
        self.ephemeral = (lo <= hi).then_some((lo, hi));
        self
    }

    /// Number of workers flows are divided among (at least 1).
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Worker `w`'s share of the ephemeral range (empty when the range has fewer ports than
    /// workers or none was set): ports `lo + ⌊w·size/N⌋ ..= lo + ⌊(w+1)·size/N⌋ − 1`.
    pub fn ephemeral_range(&self, w: usize) -> std::ops::RangeInclusive<u16> {
        let Some((lo, hi)) = self.ephemeral else {
            #[allow(clippy::reversed_empty_ranges)]
            return 1..=0;
        };
        let size = u64::from(hi - lo) + 1;
        let n = self.workers as u64;
        let start = u64::from(lo) + (w as u64) * size / n;
        let end = u64::from(lo) + (w as u64 + 1) * size / n;
        if end <= start {
            #[allow(clippy::reversed_empty_ranges)]
            return 1..=0;
        }
        (start as u16)..=((end - 1) as u16)
    }

    /// The queue RSS (with this key, even indirection table) delivers flow `t` to.
    pub fn rss_queue(&self, t: &FourTuple) -> usize {
        (flow_hash(&self.key, t) as usize) % self.workers
    }

    /// The index of the worker owning flow `t` (see the type's docs).
    pub fn owner(&self, t: &FourTuple) -> usize {
        if let Some((lo, hi)) = self.ephemeral {
            if (lo..=hi).contains(&t.local_port) {
                let size = u64::from(hi - lo) + 1;
                let n = self.workers as u64;
                let mut w = (u64::from(t.local_port - lo) * n / size) as usize;
                // Integer rounding: the candidate is exact or one below.
                while w + 1 < self.workers && self.ephemeral_range(w + 1).contains(&t.local_port) {
                    w += 1;
                }
                return w;
            }
        }
        self.rss_queue(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

    /// The IPv6-with-TCP verification vectors of the same specification.
    #[test]
    fn microsoft_verification_vectors_ipv6() {
        let cases = [
            (
                "3ffe:2501:200:1fff::7",
                2794,
                "3ffe:2501:200:3::1",
                1766,
                0x4020_7d3du32,
            ),
            (
                "3ffe:501:8::260:97ff:fe40:efab",
                14230,
                "ff02::1",
                4739,
                0xdde5_1bbf,
            ),
            (
                "3ffe:1900:4545:3:200:f8ff:fe21:67cf",
                44251,
                "fe80::200:f8ff:fe21:67cf",
                38024,
                0x02d1_feef,
            ),
        ];
        for (src, sport, dst, dport, want) in cases {
            let (src, dst): (Ipv6Addr, Ipv6Addr) = (src.parse().unwrap(), dst.parse().unwrap());
            let t = FourTuple::new_v6(
                SocketAddrV6::new(dst, dport, 0, 0),
                SocketAddrV6::new(src, sport, 0, 0),
            );
            assert_eq!(flow_hash(&DEFAULT_RSS_KEY, &t), want, "{t:?}");
        }
    }

    /// Verification vectors of the Microsoft RSS specification ("Verifying the RSS Hash
    /// Calculation", IPv4 with TCP ports).
    #[test]
    fn microsoft_verification_vectors() {
        let cases = [
            (
                (66, 9, 149, 187),
                2794,
                (161, 142, 100, 80),
                1766,
                0x51cc_c178u32,
            ),
            (
                (199, 92, 111, 2),
                14230,
                (65, 69, 140, 83),
                4739,
                0xc626_b0ea,
            ),
            (
                (24, 19, 198, 95),
                12898,
                (12, 22, 207, 184),
                38024,
                0x5c2b_394a,
            ),
            (
                (38, 27, 205, 30),
                48228,
                (209, 142, 163, 6),
                2217,
                0xafc7_327f,
            ),
            (
                (153, 39, 163, 191),
                44251,
                (202, 188, 127, 2),
                1303,
                0x10e8_28a2,
            ),
        ];
        for ((a, b, c, d), sport, (e, f, g, h), dport, want) in cases {
            let t = FourTuple::new(
                SocketAddrV4::new(Ipv4Addr::new(e, f, g, h), dport),
                SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), sport),
            );
            assert_eq!(flow_hash(&DEFAULT_RSS_KEY, &t), want, "{t:?}");
        }
    }

    #[test]
    fn owner_is_hash_mod_n() {
        let t = FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(161, 142, 100, 80), 1766),
            SocketAddrV4::new(Ipv4Addr::new(66, 9, 149, 187), 2794),
        );
        assert_eq!(FlowOwner::new(DEFAULT_RSS_KEY, 1).owner(&t), 0);
        assert_eq!(
            FlowOwner::new(DEFAULT_RSS_KEY, 3).owner(&t),
            (0x51cc_c178u32 % 3) as usize
        );
        assert_eq!(FlowOwner::new(DEFAULT_RSS_KEY, 0).workers(), 1);
    }

    #[test]
    fn ephemeral_ports_are_owned_by_their_sub_range() {
        for n in 1..=7usize {
            let o = FlowOwner::new(DEFAULT_RSS_KEY, n).with_ephemeral(61000, 61999);
            let mut covered = 0;
            for w in 0..n {
                let r = o.ephemeral_range(w);
                covered += r.clone().count();
                for port in r {
                    let t = FourTuple::new(
                        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port),
                        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
                    );
                    assert_eq!(o.owner(&t), w, "n {n} port {port}");
                }
            }
            assert_eq!(covered, 1000, "n {n}: the sub-ranges partition the range");
        }
        let o = FlowOwner::new(DEFAULT_RSS_KEY, 2).with_ephemeral(61000, 61999);
        assert_eq!(o.ephemeral_range(0), 61000..=61499);
        assert_eq!(o.ephemeral_range(1), 61500..=61999);
        // Outside the range: the RSS queue.
        let t = FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(161, 142, 100, 80), 1766),
            SocketAddrV4::new(Ipv4Addr::new(66, 9, 149, 187), 2794),
        );
        assert_eq!(o.owner(&t), (0x51cc_c178u32 % 2) as usize);
    }
}
