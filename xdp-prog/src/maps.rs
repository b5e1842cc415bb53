//! Byte layouts of the BPF maps' keys and values, mirroring `src/bpf/steer.bpf.c`.

use std::net::Ipv4Addr;

/// Capacity of the XSKMAP: queues `0..XSKS_MAX` can have a socket.
pub const XSKS_MAX: u32 = 64;
/// Capacity of the listeners hash map (bounded kernel memory).
pub const LISTENERS_MAX: usize = 4096;

/// Counter indices in the per-CPU `counters` array.
pub(crate) const CNT_REDIRECTED: u32 = 0;
pub(crate) const CNT_PASSED: u32 = 1;
pub(crate) const CNT_MALFORMED: u32 = 2;
pub(crate) const CNT_NO_SOCKET: u32 = 3;
pub(crate) const CNT_FRAGMENT: u32 = 4;

/// `struct listen_key { __be32 addr; __be16 port; __u16 pad; }`.
pub(crate) fn listen_key(addr: Ipv4Addr, port: u16) -> [u8; 8] {
    let a = addr.octets();
    let p = port.to_be_bytes();
    [a[0], a[1], a[2], a[3], p[0], p[1], 0, 0]
}

/// `struct steer_config { __be32 addr; __u16 eph_lo; __u16 eph_hi; __u32 valid; }`.
pub(crate) fn steer_config(addr: Ipv4Addr, lo: u16, hi: u16, valid: bool) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&addr.octets());
    v[4..6].copy_from_slice(&lo.to_ne_bytes());
    v[6..8].copy_from_slice(&hi.to_ne_bytes());
    v[8..12].copy_from_slice(&u32::from(valid).to_ne_bytes());
    v
}

/// Per-interface packet counters of the steering program, summed over all CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// TCP segments redirected to an AF_XDP socket.
    pub redirected: u64,
    /// Frames handed to the kernel because they are not the stack's (ARP, ICMP, other ports...).
    pub passed: u64,
    /// Frames too short or with inconsistent IPv4/TCP headers (passed to the kernel).
    pub malformed: u64,
    /// Stack-owned TCP segments that arrived on a queue with no registered socket (passed).
    pub no_socket: u64,
    /// Non-first IPv4 fragments of TCP datagrams: no port to classify (passed).
    pub fragments: u64,
}

impl Counters {
    /// Sums a counter's per-CPU `u64` values (native endian).
    pub(crate) fn sum(per_cpu: &[Vec<u8>]) -> u64 {
        per_cpu
            .iter()
            .filter_map(|v| v.get(..8))
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .fold(0u64, u64::wrapping_add)
    }

    /// Counter-wise difference `self - earlier` (wrapping), handy in tests.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            redirected: self.redirected.wrapping_sub(earlier.redirected),
            passed: self.passed.wrapping_sub(earlier.passed),
            malformed: self.malformed.wrapping_sub(earlier.malformed),
            no_socket: self.no_socket.wrapping_sub(earlier.no_socket),
            fragments: self.fragments.wrapping_sub(earlier.fragments),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_key_is_network_order_with_zero_pad() {
        assert_eq!(
            listen_key(Ipv4Addr::new(198, 18, 0, 1), 0x1f90),
            [198, 18, 0, 1, 0x1f, 0x90, 0, 0]
        );
    }

    #[test]
    fn config_layout() {
        let v = steer_config(Ipv4Addr::new(198, 18, 0, 1), 40000, 40999, true);
        assert_eq!(&v[0..4], &[198, 18, 0, 1]);
        assert_eq!(u16::from_ne_bytes([v[4], v[5]]), 40000);
        assert_eq!(u16::from_ne_bytes([v[6], v[7]]), 40999);
        assert_eq!(u32::from_ne_bytes([v[8], v[9], v[10], v[11]]), 1);
    }

    #[test]
    fn sum_adds_cpus_and_ignores_short_values() {
        let per_cpu = vec![
            5u64.to_ne_bytes().to_vec(),
            7u64.to_ne_bytes().to_vec(),
            vec![1, 2],
        ];
        assert_eq!(Counters::sum(&per_cpu), 12);
    }
}
