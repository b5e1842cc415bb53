//! Byte layouts of the BPF maps' keys and values, mirroring `src/bpf/steer.bpf.c`.

use std::net::{Ipv4Addr, Ipv6Addr};

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
pub(crate) const CNT_COOKIE_SYNACK: u32 = 5;
pub(crate) const CNT_COOKIE_SLOW: u32 = 6;
pub(crate) const CNT_FRAG_DROPPED: u32 = 7;
pub(crate) const CNT_ICMP: u32 = 8;

/// Capacity of the `addrs6` map: the stack's IPv6 addresses (`ADDRS6_MAX` in steer6.h).
pub const ADDRS6_MAX: usize = 64;

/// Counter indices in the per-CPU `counters6` array (steer6.h).
pub(crate) const CNT6_REDIRECTED: u32 = 0;
pub(crate) const CNT6_ICMP_REDIRECTED: u32 = 1;
pub(crate) const CNT6_EXT_LIMIT: u32 = 2;

/// Value bits of the `listeners` map (`LISTEN_*` in steer.bpf.c).
pub(crate) const LISTEN_STEER: u8 = 1;
pub(crate) const LISTEN_COOKIES: u8 = 2;

/// What the XDP program needs to answer SYNs with cookies exactly as the stack's endpoints
/// do (`struct cookie_config` in steer.bpf.c). Every field mirrors a setting or secret of the
/// endpoints: they must agree, or the endpoints reject the cookies the program makes.
#[derive(Clone, PartialEq, Eq)]
pub struct CookieConfig {
    /// `xdp_syncookies`: answer SYNs in XDP at all.
    pub enabled: bool,
    /// `tcp_syncookies`: 0 never, 1 for listeners flagged with
    /// [`crate::Steering::set_listen_cookies`], 2 always.
    pub mode: u8,
    /// The endpoints' current SYN-cookie secret (SipHash-2-4 key).
    pub secret: [u8; 16],
    /// The previous secret (the endpoints still accept its cookies; the program never makes
    /// them). Kept in the map so it holds the whole shared state.
    pub previous: Option<[u8; 16]>,
    /// The endpoints' ISN / timestamp-offset secret (TSval = ms clock + ts_offset).
    pub ts_secret: [u8; 16],
    /// Length of a cookie period on CLOCK_MONOTONIC, in nanoseconds (64 s by default).
    pub period_ns: u64,
    /// Our MSS (advertised in the SYN-ACK and the cap of the MSS a cookie encodes).
    pub mss: u16,
    /// The SYN-ACK's window: `min(rmem, 65535)`.
    pub window: u16,
    /// Our window-scale shift.
    pub rcv_shift: u8,
    pub ttl: u8,
    pub timestamps: bool,
    pub sack: bool,
    pub window_scaling: bool,
}

impl std::fmt::Debug for CookieConfig {
    // Never print the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieConfig")
            .field("enabled", &self.enabled)
            .field("mode", &self.mode)
            .field("period_ns", &self.period_ns)
            .field("mss", &self.mss)
            .field("window", &self.window)
            .field("rcv_shift", &self.rcv_shift)
            .field("ttl", &self.ttl)
            .field("timestamps", &self.timestamps)
            .field("sack", &self.sack)
            .field("window_scaling", &self.window_scaling)
            .finish_non_exhaustive()
    }
}

/// Size of `struct cookie_config`.
pub(crate) const COOKIE_CONFIG_LEN: usize = 72;

/// SipHash key halves as siphasher's `new_with_key` reads them (little-endian), stored as
/// native u64s.
fn sip_key(out: &mut [u8], key: &[u8; 16]) {
    for (i, half) in key.chunks_exact(8).enumerate() {
        let k = u64::from_le_bytes(half.try_into().expect("8 bytes"));
        out[i * 8..i * 8 + 8].copy_from_slice(&k.to_ne_bytes());
    }
}

/// `struct cookie_config { u64 key[2], prev_key[2], ts_key[2]; u64 period_ns; u32 flags;
/// u16 mss, window; u8 rcv_shift, mode, ttl, has_prev; u32 pad; }`.
pub(crate) fn cookie_config(c: &CookieConfig) -> [u8; COOKIE_CONFIG_LEN] {
    let mut v = [0u8; COOKIE_CONFIG_LEN];
    sip_key(&mut v[0..16], &c.secret);
    if let Some(p) = &c.previous {
        sip_key(&mut v[16..32], p);
    }
    sip_key(&mut v[32..48], &c.ts_secret);
    v[48..56].copy_from_slice(&c.period_ns.max(1).to_ne_bytes());
    let flags = u32::from(c.enabled)
        | u32::from(c.timestamps) << 1
        | u32::from(c.sack) << 2
        | u32::from(c.window_scaling) << 3;
    v[56..60].copy_from_slice(&flags.to_ne_bytes());
    v[60..62].copy_from_slice(&c.mss.to_ne_bytes());
    v[62..64].copy_from_slice(&c.window.to_ne_bytes());
    v[64] = c.rcv_shift;
    v[65] = c.mode;
    v[66] = c.ttl;
    v[67] = u8::from(c.previous.is_some());
    v
}

/// `struct listen_key { __be32 addr; __be16 port; __u16 pad; }`.
pub(crate) fn listen_key(addr: Ipv4Addr, port: u16) -> [u8; 8] {
    let a = addr.octets();
    let p = port.to_be_bytes();
    [a[0], a[1], a[2], a[3], p[0], p[1], 0, 0]
}

/// `struct listen6_key { __u8 addr[16]; __be16 port; __u16 pad; }`.
pub(crate) fn listen6_key(addr: Ipv6Addr, port: u16) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..16].copy_from_slice(&addr.octets());
    k[16..18].copy_from_slice(&port.to_be_bytes());
    k
}

/// `steer_config.valid`: the ephemeral range is steered for IPv4.
pub(crate) const EPH_V4: u32 = 1;
/// `steer_config.valid`: the ephemeral range is steered for IPv6.
pub(crate) const EPH_V6: u32 = 2;

/// `struct steer_config { __be32 addr; __u16 eph_lo; __u16 eph_hi; __u32 valid; }`, `valid`
/// being [`EPH_V4`] | [`EPH_V6`] (0: no range).
pub(crate) fn steer_config(addr: Ipv4Addr, lo: u16, hi: u16, valid: u32) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&addr.octets());
    v[4..6].copy_from_slice(&lo.to_ne_bytes());
    v[6..8].copy_from_slice(&hi.to_ne_bytes());
    v[8..12].copy_from_slice(&valid.to_ne_bytes());
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
    /// First fragments (MF, offset 0) of TCP datagrams for the stack, which does not
    /// reassemble: dropped (XDP_DROP), so the kernel never completes one for a stack port.
    pub fragments_dropped: u64,
    /// SYNs answered in XDP with a cookie SYN-ACK (XDP_TX).
    pub cookie_syn_acks: u64,
    /// SYNs in cookie mode left to the worker: IP options, payload, bad checksum, odd TCP
    /// options, multi-buffer frame (steered as usual; the worker decides).
    pub cookie_slow: u64,
    /// ICMP errors (destination unreachable, time exceeded) quoting a TCP segment the stack
    /// sent: steered to the stack like its segments (also counted as `redirected` or
    /// `no_socket`).
    pub icmp_errors: u64,
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
            fragments_dropped: self
                .fragments_dropped
                .wrapping_sub(earlier.fragments_dropped),
            cookie_syn_acks: self.cookie_syn_acks.wrapping_sub(earlier.cookie_syn_acks),
            cookie_slow: self.cookie_slow.wrapping_sub(earlier.cookie_slow),
            icmp_errors: self.icmp_errors.wrapping_sub(earlier.icmp_errors),
        }
    }
}

/// IPv6-only counters of the steering program (`counters6`), summed over all CPUs. IPv6
/// packets also move the shared [`Counters`] exactly as IPv4 ones do (redirected, passed,
/// malformed, no_socket, fragments, fragments_dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters6 {
    /// IPv6 TCP segments redirected to an AF_XDP socket (part of `Counters::redirected`).
    pub redirected: u64,
    /// ICMPv6 errors (destination unreachable, packet too big, time exceeded) quoting a
    /// stack flow, redirected to the receive queue's socket (part of `Counters::redirected`).
    pub icmp_errors_redirected: u64,
    /// IPv6 packets whose extension headers exceed the walk's bound (8 headers, 256 bytes):
    /// passed to the kernel (also in `Counters::passed`).
    pub ext_limit: u64,
}

impl Counters6 {
    /// Counter-wise difference `self - earlier` (wrapping), handy in tests.
    pub fn since(&self, earlier: &Counters6) -> Counters6 {
        Counters6 {
            redirected: self.redirected.wrapping_sub(earlier.redirected),
            icmp_errors_redirected: self
                .icmp_errors_redirected
                .wrapping_sub(earlier.icmp_errors_redirected),
            ext_limit: self.ext_limit.wrapping_sub(earlier.ext_limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen6_key_is_network_order_with_zero_pad() {
        let k = listen6_key("2001:2::1".parse().unwrap(), 0x1f90);
        assert_eq!(&k[..4], &[0x20, 0x01, 0x00, 0x02]);
        assert_eq!(&k[4..15], &[0u8; 11]);
        assert_eq!(&k[15..], &[1, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn listen_key_is_network_order_with_zero_pad() {
        assert_eq!(
            listen_key(Ipv4Addr::new(198, 18, 0, 1), 0x1f90),
            [198, 18, 0, 1, 0x1f, 0x90, 0, 0]
        );
    }

    #[test]
    fn config_layout() {
        let v = steer_config(Ipv4Addr::new(198, 18, 0, 1), 40000, 40999, EPH_V4 | EPH_V6);
        assert_eq!(&v[0..4], &[198, 18, 0, 1]);
        assert_eq!(u16::from_ne_bytes([v[4], v[5]]), 40000);
        assert_eq!(u16::from_ne_bytes([v[6], v[7]]), 40999);
        assert_eq!(u32::from_ne_bytes([v[8], v[9], v[10], v[11]]), 3);
        let v = steer_config(Ipv4Addr::UNSPECIFIED, 40000, 40999, EPH_V6);
        assert_eq!(u32::from_ne_bytes([v[8], v[9], v[10], v[11]]), 2);
    }

    #[test]
    fn cookie_config_layout() {
        let c = CookieConfig {
            enabled: true,
            mode: 2,
            secret: *b"0123456789abcdef",
            previous: None,
            ts_secret: [0xff; 16],
            period_ns: 64_000_000_000,
            mss: 1460,
            window: 65535,
            rcv_shift: 5,
            ttl: 64,
            timestamps: true,
            sack: false,
            window_scaling: true,
        };
        let v = cookie_config(&c);
        // siphasher's key halves are little-endian: on any host the u64 reads back as that.
        let k0 = u64::from_ne_bytes(v[0..8].try_into().unwrap());
        assert_eq!(k0, u64::from_le_bytes(*b"01234567"));
        assert_eq!(&v[16..32], &[0u8; 16]);
        assert_eq!(v[67], 0, "no previous secret");
        assert_eq!(
            u64::from_ne_bytes(v[48..56].try_into().unwrap()),
            64_000_000_000
        );
        assert_eq!(u32::from_ne_bytes(v[56..60].try_into().unwrap()), 0b1011);
        assert_eq!(u16::from_ne_bytes([v[60], v[61]]), 1460);
        assert_eq!((v[64], v[65], v[66]), (5, 2, 64));
        assert!(
            !format!("{c:?}").contains("secret"),
            "Debug hides the secrets"
        );
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
