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

/// The RSS hash of a flow as received: remote address/port are the packet's source.
pub fn flow_hash(key: &[u8; 40], t: &FourTuple) -> u32 {
    let mut input = [0u8; 12];
    input[0..4].copy_from_slice(&t.remote_addr.octets());
    input[4..8].copy_from_slice(&t.local_addr.octets());
    input[8..10].copy_from_slice(&t.remote_port.to_be_bytes());
    input[10..12].copy_from_slice(&t.local_port.to_be_bytes());
    toeplitz(key, &input)
}

/// Maps flows to workers: `flow_hash mod workers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowOwner {
    key: [u8; 40],
    workers: usize,
}

impl FlowOwner {
    /// `workers` is at least 1.
    pub fn new(key: [u8; 40], workers: usize) -> Self {
        FlowOwner {
            key,
            workers: workers.max(1),
        }
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The index of the worker owning flow `t`.
    pub fn owner(&self, t: &FourTuple) -> usize {
        (flow_hash(&self.key, t) as usize) % self.workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

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
            let t = FourTuple {
                remote_addr: Ipv4Addr::new(a, b, c, d),
                remote_port: sport,
                local_addr: Ipv4Addr::new(e, f, g, h),
                local_port: dport,
            };
            assert_eq!(flow_hash(&DEFAULT_RSS_KEY, &t), want, "{t:?}");
        }
    }

    #[test]
    fn owner_is_hash_mod_n() {
        let t = FourTuple {
            remote_addr: Ipv4Addr::new(66, 9, 149, 187),
            remote_port: 2794,
            local_addr: Ipv4Addr::new(161, 142, 100, 80),
            local_port: 1766,
        };
        assert_eq!(FlowOwner::new(DEFAULT_RSS_KEY, 1).owner(&t), 0);
        assert_eq!(
            FlowOwner::new(DEFAULT_RSS_KEY, 3).owner(&t),
            (0x51cc_c178u32 % 3) as usize
        );
        assert_eq!(FlowOwner::new(DEFAULT_RSS_KEY, 0).workers(), 1);
    }
}
