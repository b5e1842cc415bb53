//! IPv4 (RFC 791). Options are accepted and skipped; fragments are not reassembled and are
//! rejected as [`Error::Unsupported`] (the caller counts them as fragments).

use super::checksum;
use super::{Error, Result};
use std::net::Ipv4Addr;

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// IP protocol number of ICMP (IANA "Assigned Internet Protocol Numbers").
pub const PROTO_ICMP: u8 = 1;
/// IP protocol number of TCP (IANA "Assigned Internet Protocol Numbers").
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP (IANA "Assigned Internet Protocol Numbers").
pub const PROTO_UDP: u8 = 17;

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short or
    /// malformed buffer. Use [`new_checked`](Self::new_checked) for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len); then no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the length fields against the buffer (RFC 791 §3.1, "IHL", "Total Length"):
    /// IHL >= 5 and total length >= header length (`Malformed`), both within the buffer
    /// (`Truncated`). Bytes after the total length (Ethernet padding) are ignored.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hl > len {
            return Err(Error::Truncated);
        }
        let total = self.total_len() as usize;
        if total < hl {
            return Err(Error::Malformed);
        }
        if total > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    fn be16(&self, r: core::ops::Range<usize>) -> u16 {
        let b = &self.b()[r];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Return the version field (4 for IPv4).
    pub fn version(&self) -> u8 {
        self.b()[field::VER_IHL] >> 4
    }
    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        ((self.b()[field::VER_IHL] & 0x0f) as usize) * 4
    }
    /// Return the second header byte: DSCP in the upper 6 bits, ECN in the lower 2
    /// (RFC 2474, RFC 3168).
    pub fn dscp_ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }
    /// Return the total length field: header plus payload in bytes.
    pub fn total_len(&self) -> u16 {
        self.be16(field::LENGTH)
    }
    /// Return the identification field (used only for fragment reassembly).
    pub fn ident(&self) -> u16 {
        self.be16(field::IDENT)
    }
    /// Return the Don't Fragment (DF) flag.
    pub fn dont_frag(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_DF != 0
    }
    /// Return the More Fragments (MF) flag.
    pub fn more_frags(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_MF != 0
    }
    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        self.be16(field::FLG_OFF) & OFFSET_MASK
    }
    /// Return the time-to-live field (hops).
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }
    /// Return the protocol field (e.g. [`PROTO_TCP`]).
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }
    /// Return the header checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
    /// Return the source address field.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.b()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// Return the destination address field.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.b()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    /// True if the header (with options) sums to 0xffff (RFC 791 §3.1, "Header Checksum").
    pub fn verify_checksum(&self) -> bool {
        checksum::data(&self.b()[..self.header_len()]) == 0xffff
    }
    /// The payload: header end to total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..self.total_len() as usize]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.bm()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }
    /// Set the DSCP/ECN byte (DSCP upper 6 bits, ECN lower 2).
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.bm()[field::DSCP_ECN] = v
    }
    /// Set the total length field (header plus payload, bytes).
    pub fn set_total_len(&mut self, v: u16) {
        self.bm()[field::LENGTH].copy_from_slice(&v.to_be_bytes())
    }
    /// Set the identification field.
    pub fn set_ident(&mut self, v: u16) {
        self.bm()[field::IDENT].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets flags and offset: DF as given, MF clear, offset 0.
    pub fn set_unfragmented(&mut self, dont_frag: bool) {
        let v: u16 = if dont_frag { FLAG_DF } else { 0 };
        self.bm()[field::FLG_OFF].copy_from_slice(&v.to_be_bytes())
    }
    /// Set the time-to-live field.
    pub fn set_ttl(&mut self, v: u8) {
        self.bm()[field::TTL] = v
    }
    /// Set the protocol field.
    pub fn set_protocol(&mut self, v: u8) {
        self.bm()[field::PROTOCOL] = v
    }
    /// Set the header checksum field; see [`fill_checksum`](Self::fill_checksum) to compute it.
    pub fn set_checksum(&mut self, v: u16) {
        self.bm()[field::CHECKSUM].copy_from_slice(&v.to_be_bytes())
    }
    /// Set the source address field.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::SRC_ADDR].copy_from_slice(&a.octets())
    }
    /// Set the destination address field.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.bm()[field::DST_ADDR].copy_from_slice(&a.octets())
    }
    /// Recomputes the header checksum over the header (with options).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hl = self.header_len();
        let c = checksum::complement(checksum::data(&self.b()[..hl]));
        self.set_checksum(c);
    }
    /// The payload area, from the header end to the end of the buffer.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.bm()[hl..]
    }
}

/// The meaning of an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload (e.g. [`PROTO_TCP`]).
    pub protocol: u8,
    /// Payload length (total length minus header length).
    pub payload_len: usize,
    /// Time to live (hops).
    pub ttl: u8,
    /// DSCP (upper 6 bits) and ECN (lower 2 bits) as one byte.
    pub dscp_ecn: u8,
    /// Identification field; sent as given, meaningless for unfragmented packets (RFC 6864).
    pub ident: u16,
    /// Don't Fragment flag.
    pub dont_frag: bool,
}

/// A loose or strict source route option (RFC 791 §3.1, LSRR 131 / SSRR 137) among the
/// header options. Linux drops such packets unless `accept_source_route` (0 by default,
/// ip_rcv_options); so do we (`Unsupported`). Other options are skipped; the scan stops at
/// EOL or at an option whose length does not fit (it is not ours to judge them).
fn has_source_route(opts: &[u8]) -> bool {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return false,
            1 => i += 1,
            131 | 137 => return true,
            _ => match opts.get(i + 1) {
                Some(&len) if len >= 2 => i += len as usize,
                _ => return false,
            },
        }
    }
    false
}

impl Ipv4Repr {
    /// Parses and checks a packet: lengths ([`Ipv4Packet::check_len`]), version 4
    /// (`Malformed`), the header checksum (`Checksum`), and no fragmentation: MF set or a
    /// non-zero offset is `Unsupported` (RFC 791 §3.2, no reassembly here); so is a source
    /// route option (as Linux with accept_source_route = 0). Other IP options are accepted
    /// and skipped, as Linux does for TCP.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Ipv4Repr> {
        packet.check_len()?;
        if packet.version() != 4 {
            return Err(Error::Malformed);
        }
        if !packet.verify_checksum() {
            return Err(Error::Checksum);
        }
        if packet.more_frags() || packet.frag_offset() != 0 {
            return Err(Error::Unsupported);
        }
        if has_source_route(&packet.buffer.as_ref()[HEADER_LEN..packet.header_len()]) {
            return Err(Error::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: packet.total_len() as usize - packet.header_len(),
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        })
    }

    /// Emitted header length (no options).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header (no options) with its checksum. Panics if the buffer is
    /// shorter than [`HEADER_LEN`]; `payload_len` must be <= 65515.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv4Packet<T>) {
        debug_assert!(self.payload_len <= u16::MAX as usize - HEADER_LEN);
        packet.set_version_and_header_len(HEADER_LEN);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len((HEADER_LEN + self.payload_len) as u16);
        packet.set_ident(self.ident);
        packet.set_unfragmented(self.dont_frag);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.set_checksum(checksum::complement(self.header_sum()));
    }

    /// The folded sum of the (option-less) header `emit` writes, checksum field zero, from
    /// the fields themselves: reading back the bytes just stored would wait for them (and,
    /// for a frame buffer not in cache, for its line).
    fn header_sum(&self) -> u16 {
        let flags: u16 = if self.dont_frag { FLAG_DF } else { 0 };
        let words = [
            (0x40 | (HEADER_LEN / 4) as u16) << 8 | self.dscp_ecn as u16,
            (HEADER_LEN + self.payload_len) as u16,
            self.ident,
            flags,
            (self.ttl as u16) << 8 | self.protocol as u16,
        ];
        let addrs = u32::from(self.src_addr) as u64 + u32::from(self.dst_addr) as u64;
        checksum::fold(words.iter().map(|&w| w as u64).sum::<u64>() + addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header of a Linux SYN 198.18.0.1 -> 198.18.0.2 (total length 60, DF, TTL 64,
    /// id 0x1c46); the checksum 0x924e was computed by hand (see `reference_checksum`).
    const HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x92, 0x4e, 198, 18, 0, 1, 198,
        18, 0, 2,
    ];

    /// An independent 16-bit-at-a-time sum, for the expected checksum.
    fn reference_checksum(h: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for (i, c) in h.chunks(2).enumerate() {
            if i != 5 {
                s += u16::from_be_bytes([c[0], c[1]]) as u32;
            }
        }
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    fn packet(total: usize) -> Vec<u8> {
        let mut v = HDR.to_vec();
        v.resize(total, 0xab);
        v
    }

    fn parse(b: &[u8]) -> Result<Ipv4Repr> {
        Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b))
    }

    fn refill(b: &mut [u8]) {
        Ipv4Packet::new_unchecked(b).fill_checksum();
    }

    #[test]
    fn checksum_is_independent() {
        assert_eq!(reference_checksum(&HDR), 0x924e);
    }

    #[test]
    fn parse_syn_header() {
        let b = packet(60);
        let r = parse(&b).unwrap();
        assert_eq!(
            r,
            Ipv4Repr {
                src_addr: Ipv4Addr::new(198, 18, 0, 1),
                dst_addr: Ipv4Addr::new(198, 18, 0, 2),
                protocol: PROTO_TCP,
                payload_len: 40,
                ttl: 64,
                dscp_ecn: 0,
                ident: 0x1c46,
                dont_frag: true,
            }
        );
        assert_eq!(Ipv4Packet::new_checked(&b[..]).unwrap().payload().len(), 40);
    }

    #[test]
    fn emit_matches_capture() {
        let r = parse(&packet(60)).unwrap();
        let mut out = [0u8; 20];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
        assert_eq!(out, HDR);
    }

    /// The checksum `emit` computes from the fields equals RFC 1071 over the bytes it wrote,
    /// for every field that enters it (TOS, length, ident, DF, TTL, protocol, addresses).
    #[test]
    fn emit_checksum_from_fields_matches_bytes() {
        let cases = [
            (
                0u8,
                0usize,
                0u16,
                false,
                1u8,
                6u8,
                [0u8, 0, 0, 1],
                [255u8, 255, 255, 254],
            ),
            (
                0xb8,
                1480,
                0xffff,
                true,
                255,
                17,
                [198, 18, 0, 1],
                [198, 19, 255, 255],
            ),
            (
                0x03,
                40,
                0x1c46,
                true,
                64,
                6,
                [255, 255, 255, 255],
                [255, 255, 255, 255],
            ),
        ];
        for (dscp_ecn, payload_len, ident, dont_frag, ttl, protocol, s, d) in cases {
            let r = Ipv4Repr {
                src_addr: Ipv4Addr::from(s),
                dst_addr: Ipv4Addr::from(d),
                protocol,
                payload_len,
                ttl,
                dscp_ecn,
                ident,
                dont_frag,
            };
            let mut out = [0x5au8; 20];
            r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]));
            let expect = reference_checksum(&out);
            assert_eq!(u16::from_be_bytes([out[10], out[11]]), expect, "{r:?}");
            assert!(Ipv4Packet::new_unchecked(&out[..]).verify_checksum());
        }
    }

    #[test]
    fn ethernet_padding_ignored() {
        // Total length 60 in a 64-byte buffer: the 4 trailing bytes are not payload.
        let b = packet(64);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 40);
        assert_eq!(parse(&b).unwrap().payload_len, 40);
    }

    #[test]
    fn options_skipped() {
        // IHL 6 with one 4-byte option (NOP NOP NOP EOL), total 64.
        let mut b = HDR.to_vec();
        b[0] = 0x46;
        b[3] = 64;
        b.extend_from_slice(&[1, 1, 1, 0]);
        b.resize(64, 0xcd);
        refill(&mut b);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.payload(), &[0xcd; 40][..]);
        assert_eq!(parse(&b).unwrap().payload_len, 40);
    }

    /// IP options are accepted (record route, timestamp, NOPs), a source
    /// route (LSRR 131, SSRR 137) anywhere among them is refused (Linux ip_rcv_options with
    /// accept_source_route = 0).
    #[test]
    fn source_route_refused_other_options_accepted() {
        // (8 option bytes, accepted?)
        let cases: [([u8; 8], bool); 6] = [
            ([7, 7, 4, 0, 0, 0, 0, 0], true),    // record route, empty
            ([68, 8, 5, 0, 0, 0, 0, 0], true),   // timestamp
            ([131, 7, 4, 1, 2, 3, 4, 0], false), // LSRR
            ([1, 137, 7, 4, 1, 2, 3, 4], false), // NOP, SSRR
            ([7, 3, 4, 131, 3, 4, 0, 0], false), // RR, then LSRR
            ([0, 131, 7, 4, 1, 2, 3, 4], true),  // after EOL: not an option
        ];
        for (opts, ok) in cases {
            let mut b = HDR.to_vec();
            b[0] = 0x47;
            b[3] = 68;
            b.extend_from_slice(&opts);
            b.resize(68, 0xcd);
            refill(&mut b);
            let r = parse(&b);
            if ok {
                assert_eq!(r.map(|r| r.payload_len), Ok(40), "{opts:?}");
            } else {
                assert_eq!(r, Err(Error::Unsupported), "{opts:?}");
            }
        }
    }

    #[test]
    fn malformed_cases() {
        // Short buffer.
        assert_eq!(parse(&HDR[..19]), Err(Error::Truncated));
        // Total length beyond the buffer.
        assert_eq!(parse(&packet(59)), Err(Error::Truncated));
        // IHL < 5 (RFC 791 §3.1: minimum 5).
        let mut b = packet(60);
        b[0] = 0x44;
        assert_eq!(parse(&b), Err(Error::Malformed));
        // IHL past the buffer.
        let mut b = packet(40);
        b[0] = 0x4f;
        b[3] = 40;
        assert_eq!(parse(&b), Err(Error::Truncated));
        // Total length below the header length.
        let mut b = packet(60);
        b[3] = 19;
        refill(&mut b);
        assert_eq!(parse(&b), Err(Error::Malformed));
        // Version 6 in an IPv4 EtherType.
        let mut b = packet(60);
        b[0] = 0x65;
        refill(&mut b);
        assert_eq!(parse(&b), Err(Error::Malformed));
        // Bad checksum.
        let mut b = packet(60);
        b[11] ^= 1;
        assert_eq!(parse(&b), Err(Error::Checksum));
    }

    #[test]
    fn fragments_unsupported() {
        // First fragment (MF), middle and last fragments (offset != 0).
        for (hi, lo) in [(0x20u8, 0x00u8), (0x20, 0x10), (0x00, 0x10), (0x40, 0x01)] {
            let mut b = packet(60);
            b[6] = hi;
            b[7] = lo;
            refill(&mut b);
            assert_eq!(parse(&b), Err(Error::Unsupported), "{hi:#x} {lo:#x}");
        }
    }
}
