//! IPv6 (RFC 8200): the fixed header, the walk over extension headers to the upper layer,
//! and stable flow labels (RFC 6437).
//!
//! Extension headers are walked, not kept, as Linux's `ip6_input` does for a host:
//! - at most [`MAX_EXT_HEADERS`] of them, together at most [`MAX_EXT_LEN`] bytes; a packet
//!   with more is [`Error::Unsupported`] (dropped and counted; the XDP program passes such
//!   packets to the kernel without looking for a port, see steer6.h);
//! - hop-by-hop options only first (RFC 8200 §4.1; elsewhere `Malformed`, as Linux's
//!   "unknown next header 0" parameter problem);
//! - hop-by-hop and destination options: each option's type says what to do with an unknown
//!   one (RFC 8200 §4.2): skip (00) or discard (01, 10, 11: `Unsupported`); the only option
//!   known here is Router Alert (RFC 2711; its length must be 2), which a host ignores. Jumbo
//!   payloads (RFC 2675, type 0xC2, action 11; impossible on Ethernet) are therefore
//!   discarded. As Linux's `ip6_parse_tlv` with its defaults: PadN carries zeros, at most 7
//!   padding bytes in a row (RFC 4942 §2.1.9.5), at most 8 other options per header
//!   (`max_hbh_opts_cnt`, `max_dst_opts_cnt`; more: `Unsupported`);
//! - a routing header with segments left is `Unsupported` (a host does not forward;
//!   RFC 8200 §4.4, RFC 5095 for type 0); so are types 2 (Mobile IPv6), 3 (RPL) and
//!   4 (segment routing) even with segments left 0, which Linux drops with its defaults
//!   (`seg6_enabled`, `rpl_seg_enabled` off; `ipv6_rthdr_rcv`); other types with segments
//!   left 0 are skipped;
//! - a fragment header (RFC 8200 §4.5): an atomic fragment (offset 0, M clear) is processed
//!   as a whole packet (RFC 6946, as Linux does); a real fragment is not reassembled and
//!   [`Ipv6Repr::parse`] rejects it as `Unsupported`, like an IPv4 fragment. The XDP program
//!   drops first fragments for a stack port and counts them (`fragments_dropped`), and passes
//!   later ones to the kernel (`fragments`), exactly as for IPv4. A TCP peer never needs
//!   fragmentation: its MSS follows the path MTU (RFC 8201);
//! - ESP and AH (IPsec) are `Unsupported`; No Next Header (59) and any other protocol end
//!   the walk as the upper layer (the caller rejects what it does not speak).

use super::checksum;
use super::{Error, Result};
use siphasher::sip::SipHasher24;
use std::hash::Hasher;
use std::net::Ipv6Addr;

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// At most this many extension headers are walked (a longer chain is `Unsupported`).
pub const MAX_EXT_HEADERS: usize = 8;
/// At most this many bytes of extension headers (the upper-layer header starts within
/// the first `HEADER_LEN + MAX_EXT_LEN` = 296 bytes of the packet).
pub const MAX_EXT_LEN: usize = 256;

/// Next header: hop-by-hop options (RFC 8200 §4.3).
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Next header: TCP.
pub const NEXT_TCP: u8 = 6;
/// Next header: routing header (RFC 8200 §4.4).
pub const NEXT_ROUTING: u8 = 43;
/// Next header: fragment header (RFC 8200 §4.5).
pub const NEXT_FRAGMENT: u8 = 44;
/// Next header: Encapsulating Security Payload (RFC 4303).
pub const NEXT_ESP: u8 = 50;
/// Next header: Authentication Header (RFC 4302).
pub const NEXT_AH: u8 = 51;
/// Next header: ICMPv6 (RFC 4443).
pub const NEXT_ICMPV6: u8 = 58;
/// Next header: no next header (RFC 8200 §4.7).
pub const NEXT_NONE: u8 = 59;
/// Next header: destination options (RFC 8200 §4.6).
pub const NEXT_DEST_OPTS: u8 = 60;

/// The largest flow label (20 bits).
pub const FLOW_LABEL_MASK: u32 = 0x000f_ffff;

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A read/write view of an IPv6 packet (fixed header, then the payload with any extension
/// headers).
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short buffer.
    /// Use [`new_checked`](Self::new_checked) for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len); then no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The fixed header and the payload length's bytes within the buffer (`Truncated`,
    /// RFC 8200 §3 "Payload Length"). Bytes after it (Ethernet padding) are ignored.
    pub fn check_len(&self) -> Result<()> {
        let len = self.b().len();
        if len < HEADER_LEN || HEADER_LEN + self.payload_len() as usize > len {
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
    fn word0(&self) -> u32 {
        let b = &self.b()[field::VER_TC_FLOW];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Return the version field (6 for IPv6).
    pub fn version(&self) -> u8 {
        self.b()[0] >> 4
    }
    /// Return the traffic class: DSCP in the upper 6 bits, ECN in the lower 2 (RFC 8200 §7).
    pub fn traffic_class(&self) -> u8 {
        (self.word0() >> 20) as u8
    }
    /// Return the 20-bit flow label (RFC 6437).
    pub fn flow_label(&self) -> u32 {
        self.word0() & FLOW_LABEL_MASK
    }
    /// Return the payload length: extension headers plus upper layer, in bytes.
    pub fn payload_len(&self) -> u16 {
        let b = &self.b()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// Return the next header field (the first extension header or the upper layer).
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }
    /// Return the hop limit field.
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }
    /// Return the source address field.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.b()[field::SRC_ADDR])
    }
    /// Return the destination address field.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.b()[field::DST_ADDR])
    }
    /// The payload (extension headers and upper layer): header end to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.b()[HEADER_LEN..HEADER_LEN + self.payload_len() as usize]
    }
    /// Walks the extension headers of the payload (see the module docs and
    /// [`walk_extensions`]). The packet must have passed [`check_len`](Self::check_len).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_extensions(self.next_header(), self.payload())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    /// Sets version 6, the traffic class and the flow label (masked to 20 bits).
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let w = 6u32 << 28 | (traffic_class as u32) << 20 | (flow_label & FLOW_LABEL_MASK);
        self.bm()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes())
    }
    /// Set the payload length field.
    pub fn set_payload_len(&mut self, v: u16) {
        self.bm()[field::PAYLOAD_LEN].copy_from_slice(&v.to_be_bytes())
    }
    /// Set the next header field.
    pub fn set_next_header(&mut self, v: u8) {
        self.bm()[field::NEXT_HEADER] = v
    }
    /// Set the hop limit field.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.bm()[field::HOP_LIMIT] = v
    }
    /// Set the source address field.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.bm()[field::SRC_ADDR].copy_from_slice(&a.octets())
    }
    /// Set the destination address field.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.bm()[field::DST_ADDR].copy_from_slice(&a.octets())
    }
    /// The payload area, from the header end to the end of the buffer.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.bm()[HEADER_LEN..]
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// A fragment header's fields (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Fragment offset in 8-octet units.
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the upper layer starts, as found by [`walk_extensions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The upper-layer protocol (the last next header), e.g. [`NEXT_TCP`].
    pub protocol: u8,
    /// Bytes of extension headers before it (its offset in the payload).
    pub offset: usize,
    /// The fragment header, if the packet is a real fragment (offset or M set; atomic
    /// fragments are skipped). For a non-first fragment the upper-layer header is not
    /// in this packet at all.
    pub fragment: Option<Fragment>,
}

/// Walks the extension headers starting with `first` (the fixed header's next header) over
/// `payload` (the bytes after the fixed header; for a quoted packet in an ICMPv6 error,
/// whatever was quoted). The rules and bounds are in the module docs. `Truncated` when a
/// header does not fit in `payload`. The walk stops at a real fragment: a non-first one has
/// no further headers, and a first one is not used further.
pub fn walk_extensions(first: u8, payload: &[u8]) -> Result<UpperLayer> {
    let mut next = first;
    let mut off = 0usize;
    for n in 0..=MAX_EXT_HEADERS {
        let hdr = &payload[off.min(payload.len())..];
        let len = match next {
            NEXT_HOP_BY_HOP | NEXT_DEST_OPTS => {
                if next == NEXT_HOP_BY_HOP && n != 0 {
                    return Err(Error::Malformed);
                }
                let len = ext_len(hdr)?;
                check_options(&hdr[2..len], next == NEXT_HOP_BY_HOP)?;
                len
            }
            NEXT_ROUTING => {
                let len = ext_len(hdr)?; // >= 8
                if hdr[3] != 0 || matches!(hdr[2], 2..=4) {
                    return Err(Error::Unsupported); // segments left, or MIPv6/RPL/SRH
                }
                len
            }
            NEXT_FRAGMENT => {
                if hdr.len() < 8 {
                    return Err(Error::Truncated);
                }
                let w = u16::from_be_bytes([hdr[2], hdr[3]]);
                let frag = Fragment {
                    offset: w >> 3,
                    more: w & 1 != 0,
                    ident: u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]),
                };
                if frag.offset != 0 || frag.more {
                    return Ok(UpperLayer {
                        protocol: hdr[0],
                        offset: off + 8,
                        fragment: Some(frag),
                    });
                }
                8 // atomic fragment (RFC 6946): processed as a whole packet
            }
            NEXT_ESP | NEXT_AH => return Err(Error::Unsupported),
            protocol => {
                return Ok(UpperLayer {
                    protocol,
                    offset: off,
                    fragment: None,
                })
            }
        };
        if n == MAX_EXT_HEADERS || off + len > MAX_EXT_LEN {
            return Err(Error::Unsupported);
        }
        next = hdr[0];
        off += len;
    }
    Err(Error::Unsupported) // not reached: the loop returns by its last round
}

/// Length of an options or routing header, `(Hdr Ext Len + 1) * 8`, within `hdr`.
fn ext_len(hdr: &[u8]) -> Result<usize> {
    let len = match hdr.get(1) {
        Some(&l) => (l as usize + 1) * 8,
        None => return Err(Error::Truncated),
    };
    if len > hdr.len() {
        return Err(Error::Truncated);
    }
    Ok(len)
}

/// Option type of Pad1 (RFC 8200 §4.2).
const OPT_PAD1: u8 = 0;
/// Option type of PadN (RFC 8200 §4.2).
const OPT_PADN: u8 = 1;
/// Option type of Router Alert (RFC 2711), hop-by-hop only.
const OPT_ROUTER_ALERT: u8 = 5;
/// Most non-padding options in one options header (Linux's `max_hbh_opts_cnt` and
/// `max_dst_opts_cnt` defaults).
const MAX_OPTIONS: usize = 8;

/// Checks the TLV-encoded options of a hop-by-hop or destination options header as Linux's
/// `ip6_parse_tlv` does for a host: an option overrunning the header is `Malformed`, PadN
/// with non-zero data, more than 7 padding bytes in a row or a Router Alert whose length is
/// not 2 are `Malformed`; an unknown option whose action bits are not 00 (RFC 8200 §4.2:
/// discard) and more than [`MAX_OPTIONS`] options are `Unsupported`.
fn check_options(opts: &[u8], hop_by_hop: bool) -> Result<()> {
    let mut i = 0;
    let mut pad = 0;
    let mut count = 0;
    while i < opts.len() {
        let t = opts[i];
        if t == OPT_PAD1 {
            i += 1;
            pad += 1;
        } else {
            let Some(&l) = opts.get(i + 1) else {
                return Err(Error::Malformed);
            };
            let end = i + 2 + l as usize;
            if end > opts.len() {
                return Err(Error::Malformed);
            }
            if t == OPT_PADN {
                if opts[i + 2..end].iter().any(|&b| b != 0) {
                    return Err(Error::Malformed);
                }
                pad += end - i;
            } else {
                pad = 0;
                count += 1;
                if count > MAX_OPTIONS {
                    return Err(Error::Unsupported);
                }
                let router_alert = hop_by_hop && t == OPT_ROUTER_ALERT;
                if router_alert && l != 2 {
                    return Err(Error::Malformed);
                }
                if !router_alert && t >> 6 != 0 {
                    return Err(Error::Unsupported);
                }
            }
            i = end;
        }
        if pad > 7 {
            return Err(Error::Malformed);
        }
    }
    Ok(())
}

/// The meaning of an IPv6 header, with the extension headers walked: `next_header` and
/// `payload_len` describe the upper layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// The upper-layer protocol (after any extension headers), e.g. [`NEXT_TCP`].
    pub next_header: u8,
    /// Length of the upper-layer header and data (the payload length minus extension
    /// headers): the length in the TCP pseudo-header (RFC 8200 §8.1).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class: DSCP (upper 6 bits) and ECN (lower 2 bits).
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses and checks a packet: lengths ([`Ipv6Packet::check_len`]), version 6
    /// (`Malformed`), the addresses as Linux's `ip6_rcv_core` checks them on a non-loopback
    /// device (a multicast source, RFC 4291 §2.7, or a loopback source or destination:
    /// `Malformed`), then the extension headers ([`walk_extensions`]); a real fragment is
    /// `Unsupported`.
    pub fn parse<T: AsRef<[u8]>>(packet: &Ipv6Packet<T>) -> Result<Ipv6Repr> {
        packet.check_len()?;
        if packet.version() != 6 {
            return Err(Error::Malformed);
        }
        let (src, dst) = (packet.src_addr(), packet.dst_addr());
        if src.is_multicast() || src.is_loopback() || dst.is_loopback() {
            return Err(Error::Malformed);
        }
        let upper = packet.upper_layer()?;
        if upper.fragment.is_some() {
            return Err(Error::Unsupported);
        }
        Ok(Ipv6Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: upper.protocol,
            payload_len: packet.payload_len() as usize - upper.offset,
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Emitted header length (no extension headers).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 40-byte fixed header without extension headers (`next_header` directly).
    /// Panics if the buffer is shorter than [`HEADER_LEN`]; `payload_len` must be <= 65535
    /// (no jumbograms).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Ipv6Packet<T>) {
        debug_assert!(self.payload_len <= u16::MAX as usize);
        packet.set_version_tc_flow(self.traffic_class, self.flow_label);
        packet.set_payload_len(self.payload_len as u16);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }

    /// Folded sum of the pseudo-header for this packet's upper layer (RFC 8200 §8.1).
    pub fn pseudo_header_sum(&self) -> u16 {
        checksum::pseudo_header_v6(
            self.src_addr,
            self.dst_addr,
            self.next_header,
            self.payload_len as u32,
        )
    }
}

/// Stable flow labels (RFC 6437 §3): a keyed hash of the connection's addresses, ports and
/// protocol, so one connection keeps one label and labels of different connections look
/// independent to anyone without the secret. Like Linux's `ip6_make_flowlabel`
/// (`auto_flowlabels`), but SipHash-2-4 under the stack's secret instead of the packet hash.
/// Never 0: 0 means "unlabelled" (RFC 6437 §2), so a hash of 0 is sent as 1.
#[derive(Clone)]
pub struct FlowLabels {
    key: SipHasher24,
}

impl core::fmt::Debug for FlowLabels {
    // Never print the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FlowLabels").finish_non_exhaustive()
    }
}

impl FlowLabels {
    /// Labels under a 16-byte secret (random per stack, as the ISN secret).
    pub fn new(secret: [u8; 16]) -> FlowLabels {
        FlowLabels {
            key: SipHasher24::new_with_key(&secret),
        }
    }

    /// The label of TCP packets from `(local, local_port)` to `(remote, remote_port)`:
    /// 20 bits, non-zero, the same for every packet of the connection.
    pub fn tcp(&self, local: Ipv6Addr, local_port: u16, remote: Ipv6Addr, remote_port: u16) -> u32 {
        let mut h = self.key;
        h.write(&local.octets());
        h.write(&remote.octets());
        h.write(&local_port.to_be_bytes());
        h.write(&remote_port.to_be_bytes());
        h.write_u8(NEXT_TCP);
        let v = h.finish();
        // Fold the 64 bits so every input bit reaches the 20 kept.
        let label = ((v ^ (v >> 20) ^ (v >> 40)) as u32) & FLOW_LABEL_MASK;
        label.max(1)
    }
}

#[cfg(test)]
mod tests;
