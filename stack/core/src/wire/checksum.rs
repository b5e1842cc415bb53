//! The Internet checksum (RFC 1071): the ones'-complement sum of 16-bit big-endian words.
//!
//! Sums are accumulated in a `u64` with end-around carry, eight bytes at a time; since
//! 2^64 - 1 is a multiple of 2^16 - 1 this equals the 16-bit ones'-complement sum once
//! folded (RFC 1071 §2 (B), "byte order independence" and "parallel summation").

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a wide ones'-complement sum to 16 bits (end-around carry), not complemented.
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Adds `w` to the accumulator with end-around carry.
#[inline(always)]
fn add_carry(acc: u64, w: u64) -> u64 {
    let (s, carry) = acc.overflowing_add(w);
    s + carry as u64
}

/// Unfolded ones'-complement sum of `data` as 16-bit big-endian words; an odd final byte is
/// padded with a zero byte on the right (RFC 1071 §4.1). Combine several with [`fold`].
///
/// The bulk is summed as 32-bit big-endian words into eight independent `u64` lanes without
/// any carry handling (the compiler vectorizes it): since 2^32 ≡ 1 (mod 2^16 - 1), the
/// folded sum of 32-bit words equals the 16-bit ones'-complement sum (RFC 1071 §2 (B),
/// (C)). A lane takes at most 2^25 words per 1 GiB block, so it cannot overflow; lanes and
/// blocks are combined with end-around carry.
#[inline]
pub fn sum_raw(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    for block in data.chunks(1 << 30) {
        let mut lanes = [0u64; 8];
        let mut chunks = block.chunks_exact(32);
        for c in &mut chunks {
            for (lane, w) in lanes.iter_mut().zip(c.chunks_exact(4)) {
                *lane += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
            }
        }
        for l in lanes {
            acc = add_carry(acc, l);
        }
        let mut rest = chunks.remainder();
        while rest.len() >= 8 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[..8]);
            acc = add_carry(acc, u64::from_be_bytes(b));
            rest = &rest[8..];
        }
        // The tail (< 8 bytes) as one zero-padded big-endian word: word alignment is
        // preserved because the tail starts at an offset that is a multiple of 8 (blocks
        // are 2^30 bytes: even).
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            acc = add_carry(acc, u64::from_be_bytes(b));
        }
    }
    acc
}

/// Folded (not complemented) ones'-complement sum of `data`.
#[inline]
pub fn data(data: &[u8]) -> u16 {
    fold(sum_raw(data))
}

/// Ones'-complement sum of several folded sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| s as u64).sum())
}

/// Folded sum of the IPv4 pseudo-header (RFC 9293 §3.1, "Checksum"): source, destination,
/// zero + protocol, and the upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let s = u32::from(src) as u64;
    let d = u32::from(dst) as u64;
    fold(s + d + protocol as u64 + length as u64)
}

/// Folded sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination, the 32-bit
/// upper-layer packet length and three zero bytes + next header. `length` is the length of
/// the upper-layer header and data (the payload length minus any extension headers);
/// `next_header` the upper-layer protocol (6 for TCP, 58 for ICMPv6), not the first
/// extension header's. With a routing header the destination would be the final one; this
/// stack never sends one and drops received ones with segments left.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u16 {
    // Each address as two 64-bit words: 2^64 ≡ 1 (mod 2^16 - 1), so folding each keeps
    // the ones'-complement sum (RFC 1071 §2 (B)).
    let words = |a: Ipv6Addr| {
        let v = u128::from(a);
        fold((v >> 64) as u64) as u64 + fold(v as u64) as u64
    };
    fold(words(src) + words(dst) + length as u64 + next_header as u64)
}

/// The checksum field value for a folded sum computed with the field set to zero.
#[inline]
pub fn complement(sum: u16) -> u16 {
    !sum
}

/// Incremental update of a checksum field when one 16-bit word changes from `old` to `new`
/// (RFC 1624 §3, Eqn. 3: `HC' = ~(~HC + ~m + m')`).
#[inline]
pub fn update(old_csum: u16, old: u16, new: u16) -> u16 {
    !fold(!old_csum as u64 + !old as u64 + new as u64)
}

/// [`update`] for an aligned 32-bit field (e.g. a sequence number or an IPv4 address).
#[inline]
pub fn update_u32(old_csum: u16, old: u32, new: u32) -> u16 {
    let sum = !old_csum as u64
        + !(old >> 16) as u16 as u64
        + !(old as u16) as u64
        + (new >> 16) as u64
        + (new & 0xffff) as u64;
    !fold(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward RFC 1071 reference: 16 bits at a time.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                (c[0] as u16) << 8
            };
            sum += w as u32;
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn matches_reference_all_lengths() {
        let bytes: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(151) ^ 0xa5) as u8)
            .collect();
        for len in 0..bytes.len() {
            assert_eq!(data(&bytes[..len]), reference(&bytes[..len]), "len {len}");
        }
        let ff = [0xffu8; 77];
        assert_eq!(data(&ff), reference(&ff));
        // Full-MTU and jumbo segments, all ones (every lane carries) and mixed.
        for len in [1447, 1448, 1460, 1500, 8960, 9001] {
            let ff = vec![0xffu8; len];
            assert_eq!(data(&ff), reference(&ff), "0xff x {len}");
            let mixed: Vec<u8> = (0..len as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect();
            assert_eq!(data(&mixed), reference(&mixed), "mixed x {len}");
        }
    }

    #[test]
    fn known_ipv4_header() {
        // Wikipedia's IPv4 header checksum example: the checksum is b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(complement(data(&hdr)), 0xb861);
    }

    #[test]
    fn pseudo_header_sum() {
        let s = pseudo_header_v4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            6,
            40,
        );
        let bytes = [10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 40];
        assert_eq!(s, reference(&bytes));
    }

    /// RFC 8200 §8.1's pseudo-header laid out byte by byte and summed by the reference.
    #[test]
    fn pseudo_header_v6_sum() {
        let src: Ipv6Addr = "2001:2::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:2:0:ffff:ffff:ffff:ffff:fffe".parse().unwrap();
        for (nh, len) in [(6u8, 40u32), (58, 1240), (6, 0x0001_0004)] {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&src.octets());
            bytes.extend_from_slice(&dst.octets());
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&[0, 0, 0, nh]);
            assert_eq!(
                pseudo_header_v6(src, dst, nh, len),
                reference(&bytes),
                "{nh} {len}"
            );
        }
        let ff = Ipv6Addr::from(u128::MAX);
        let mut bytes = vec![0xffu8; 32];
        bytes.extend_from_slice(&[0, 0, 0xff, 0xff, 0, 0, 0, 6]);
        assert_eq!(pseudo_header_v6(ff, ff, 6, 0xffff), reference(&bytes));
    }

    #[test]
    fn incremental_equals_recompute() {
        // A TCP-like buffer with a non-zero constant word, so the sum is never zero.
        let mut buf: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        buf[0] = 0x45;
        let csum = complement(data(&buf));
        // Change the 16-bit word at offset 14 and the 32-bit word at offset 4.
        let old16 = u16::from_be_bytes([buf[14], buf[15]]);
        buf[14..16].copy_from_slice(&0xbeefu16.to_be_bytes());
        let c1 = update(csum, old16, 0xbeef);
        assert_eq!(c1, complement(data(&buf)));
        let old32 = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        buf[4..8].copy_from_slice(&0xdead_0001u32.to_be_bytes());
        let c2 = update_u32(c1, old32, 0xdead_0001);
        assert_eq!(c2, complement(data(&buf)));
    }

    #[test]
    fn fold_end_around() {
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0xffff_ffff_ffff_ffff), 0xffff);
        assert_eq!(fold(0), 0);
    }
}
