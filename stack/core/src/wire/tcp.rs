//! TCP header view and representation (RFC 9293 §3.1), with the options this stack speaks:
//! MSS (RFC 9293 §3.7.1), window scale and timestamps (RFC 7323), SACK-permitted and SACK
//! blocks (RFC 2018). Unknown options are skipped by their length; malformed ones reject
//! the segment.
//!
//! `TcpPacket<T>` is the zero-copy view; `TcpRepr::parse` checks a segment once (lengths,
//! checksum against the IPv4 pseudo-header, options) and `TcpRepr::emit` writes one with
//! options in Linux's usual layout. The type definitions below are the contract the TCP
//! core codes against: keep their public fields.

use super::checksum;
use super::ipv4::PROTO_TCP;
use super::{Error, Result, SeqNum};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;
/// Longest header: data offset 15 (RFC 9293 §3.1).
pub const MAX_HEADER_LEN: usize = 60;
/// Most option bytes in one header.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Largest window shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;

/// At most this many SACK blocks in one segment (4 fit in 40 option bytes; 3 with timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// TCP control flags. Bit values are the header's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN (0x01): the sender has no more data (RFC 9293 §3.1).
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN (0x02): synchronize sequence numbers; opens a connection.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST (0x04): reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH (0x08): push; deliver buffered data to the application.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK (0x10): the acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG (0x20): the urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECE (0x40): ECN-Echo (RFC 3168 §6.1).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// CWR (0x80): Congestion Window Reduced (RFC 3168 §6.1).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flags set.
    pub const fn empty() -> Self {
        TcpFlags(0)
    }
    /// True if every flag in `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The flags set in either `self` or `other` (also available as `|`).
    pub const fn union(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
    /// True if FIN is set.
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// True if SYN is set.
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// True if RST is set.
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// True if PSH is set.
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    /// True if ACK is set.
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// True if URG is set.
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.union(rhs)
    }
}

/// The options this stack understands. `None`/`false` means absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only on SYNs.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), only on SYNs; values above 14 are clamped to 14
    /// (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4), only on SYNs.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5): `[left, right)` edges; the first `sack_count` are valid.
    pub sack_blocks: [(SeqNum, SeqNum); MAX_SACK_BLOCKS],
    /// Number of valid entries in `sack_blocks`, 0..=[`MAX_SACK_BLOCKS`] (a larger value
    /// makes [`sacks`](Self::sacks) panic). On emit, blocks that do not fit are dropped from the end.
    pub sack_count: u8,
    /// Timestamps (kind 8): (TSval, TSecr).
    pub timestamp: Option<(u32, u32)>,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sacks(&self) -> &[(SeqNum, SeqNum)] {
        &self.sack_blocks[..self.sack_count as usize]
    }
}

/// A parsed TCP segment. `payload` borrows the packet buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port (host byte order).
    pub src_port: u16,
    /// Destination port (host byte order).
    pub dst_port: u16,
    /// Sequence number of the first octet in sequence space: the SYN if set, else the
    /// first payload byte.
    pub seq: SeqNum,
    /// The acknowledgment number; meaningful only when `flags.ack()`.
    pub ack: SeqNum,
    /// Control bits CWR..FIN.
    pub flags: TcpFlags,
    /// The window field as sent (not scaled).
    pub window: u16,
    /// The urgent pointer as sent (offset from `seq`); this stack emits 0 and ignores it
    /// on receive, delivering urgent bytes in line (RFC 6093 §6).
    pub urgent: u16,
    /// Options understood by this stack; others are dropped on parse.
    pub options: TcpOptions,
    /// The segment data (after the header); borrows the packet buffer on parse.
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    /// Length in sequence space: payload plus one for SYN and one for FIN (RFC 9293 §3.4).
    pub fn seq_len(&self) -> usize {
        self.payload.len() + self.flags.syn() as usize + self.flags.fin() as usize
    }
}

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
    pub const OPTIONS: usize = 20;
}

/// Option kinds (IANA "TCP Option Kind Numbers").
mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WS: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TS: u8 = 8;
}

/// A read/write view of a TCP segment (header, options, payload).
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short or
    /// malformed buffer. Use [`new_checked`](Self::new_checked) for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len); then no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// At least 20 bytes (`Truncated`), data offset >= 5 (`Malformed`, RFC 9293 §3.1
    /// "Data Offset") and the header within the buffer (`Truncated`).
    pub fn check_len(&self) -> Result<()> {
        let len = self.b().len();
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
    fn be32(&self, r: core::ops::Range<usize>) -> u32 {
        let b = &self.b()[r];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// Return the source port field.
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }
    /// Return the destination port field.
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }
    /// Return the sequence number field.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(self.be32(field::SEQ_NUM))
    }
    /// Return the acknowledgment number field (meaningful only with ACK set).
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(self.be32(field::ACK_NUM))
    }
    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        ((self.b()[field::DATA_OFF] >> 4) as usize) * 4
    }
    /// The eight flag bits CWR..FIN (the reserved bits are ignored).
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.b()[field::FLAGS])
    }
    /// Return the window field, unscaled (shift it by the negotiated window scale).
    pub fn window_len(&self) -> u16 {
        self.be16(field::WIN_SIZE)
    }
    /// Return the checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }
    /// Return the urgent pointer field.
    pub fn urgent_at(&self) -> u16 {
        self.be16(field::URGENT)
    }
    /// The option bytes (between the fixed header and the data offset).
    pub fn options(&self) -> &[u8] {
        &self.b()[field::OPTIONS..self.header_len()]
    }
    /// Everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
    /// True if the whole buffer, as the segment, sums with the pseudo-header to 0xffff
    /// (RFC 9293 §3.1 "Checksum").
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        segment_sum(self.b(), src, dst) == 0xffff
    }
    /// [`verify_checksum`](Self::verify_checksum) against the IPv6 pseudo-header
    /// (RFC 8200 §8.1; mandatory for IPv6).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        segment_sum_v6(self.b(), src, dst) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set(&mut self, r: core::ops::Range<usize>, v: &[u8]) {
        self.buffer.as_mut()[r].copy_from_slice(v)
    }
    /// Set the source port field.
    pub fn set_src_port(&mut self, v: u16) {
        self.set(field::SRC_PORT, &v.to_be_bytes())
    }
    /// Set the destination port field.
    pub fn set_dst_port(&mut self, v: u16) {
        self.set(field::DST_PORT, &v.to_be_bytes())
    }
    /// Set the sequence number field.
    pub fn set_seq_number(&mut self, v: SeqNum) {
        self.set(field::SEQ_NUM, &v.0.to_be_bytes())
    }
    /// Set the acknowledgment number field.
    pub fn set_ack_number(&mut self, v: SeqNum) {
        self.set(field::ACK_NUM, &v.0.to_be_bytes())
    }
    /// Sets the data offset from a header length in bytes (multiple of 4, 20..=60); the
    /// reserved bits are cleared.
    pub fn set_header_len(&mut self, len: usize) {
        self.buffer.as_mut()[field::DATA_OFF] = ((len / 4) as u8) << 4;
    }
    /// Set the flag byte (CWR..FIN).
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }
    /// Set the window field (already scaled down by the sender's window scale).
    pub fn set_window_len(&mut self, v: u16) {
        self.set(field::WIN_SIZE, &v.to_be_bytes())
    }
    /// Set the checksum field; see [`fill_checksum`](Self::fill_checksum) to compute it.
    pub fn set_checksum(&mut self, v: u16) {
        self.set(field::CHECKSUM, &v.to_be_bytes())
    }
    /// Set the urgent pointer field.
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set(field::URGENT, &v.to_be_bytes())
    }
    /// The option bytes, writable; their length follows the data offset (set it first).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }
    /// Everything after the header, writable; the header length must be set first.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Computes and writes the checksum over the whole buffer as the segment.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::complement(segment_sum(self.buffer.as_ref(), src, dst));
        self.set_checksum(c);
    }
    /// [`fill_checksum`](Self::fill_checksum) with the IPv6 pseudo-header.
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::complement(segment_sum_v6(self.buffer.as_ref(), src, dst));
        self.set_checksum(c);
    }
}

/// Folded sum of the pseudo-header and the segment. The segment's sum is folded before the
/// addition: an unfolded `sum_raw` can be as large as 2^64 - 1, and adding to it overflowed
/// (a wrong checksum in release, a panic with overflow checks; found by fuzz/wire_parse).
fn segment_sum(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
    let ph = checksum::pseudo_header_v4(src, dst, PROTO_TCP, seg.len() as u32);
    checksum::fold(ph as u64 + checksum::data(seg) as u64)
}

/// [`segment_sum`] over the IPv6 pseudo-header (RFC 8200 §8.1).
fn segment_sum_v6(seg: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
    let ph = checksum::pseudo_header_v6(src, dst, PROTO_TCP, seg.len() as u32);
    checksum::fold(ph as u64 + checksum::data(seg) as u64)
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parses the option bytes (RFC 9293 §3.2) the way Linux's `tcp_parse_options` does, so a
/// peer sees the same behaviour from us as from a Linux host, and a bad option never costs
/// the segment:
/// - EOL ends the list; NOP is skipped.
/// - A "silly" option (no length byte, length < 2) or one running past the option space
///   stops parsing: what was parsed before it is kept, the rest ignored
///   (`if (opsize < 2) return; if (opsize > length) return;`).
/// - A known kind with the wrong length is ignored and skipped by its length, like an unknown
///   kind (Linux checks `opsize == TCPOLEN_*` per kind); so is a SACK option whose length is
///   not 2 + 8n (n >= 1), and an MSS of 0 (`if (in_mss)`).
/// - MSS, window scale and SACK-permitted are ignored on non-SYN segments (RFC 9293 §3.7.1,
///   RFC 7323 §2.2, RFC 2018 §2).
///
/// Never fails; the `Result` is kept for the callers.
fn parse_options(opts: &[u8], syn: bool) -> Result<TcpOptions> {
    let mut o = TcpOptions::default();
    let mut i = 0;
    while i < opts.len() {
        let k = opts[i];
        if k == kind::EOL {
            break;
        }
        if k == kind::NOP {
            i += 1;
            continue;
        }
        let Some(&len) = opts.get(i + 1) else {
            break; // no length byte: stop
        };
        let len = len as usize;
        if len < 2 || i + len > opts.len() {
            break; // silly or partial option: stop, keep what was parsed
        }
        let body = &opts[i + 2..i + len];
        match (k, len) {
            (kind::MSS, 4) if syn => {
                let mss = be16(body);
                if mss != 0 {
                    o.mss = Some(mss);
                }
            }
            // RFC 7323 §2.3: a shift above 14 is used as 14.
            (kind::WS, 3) if syn => o.window_scale = Some(body[0].min(MAX_WINDOW_SCALE)),
            (kind::SACK_PERM, 2) => o.sack_permitted |= syn,
            // RFC 2018 §3: 2 + 8n bytes, n >= 1; at most 4 fit in 40 option bytes.
            (kind::SACK, _) if len >= 10 && (len - 2).is_multiple_of(8) => {
                let n = ((len - 2) / 8).min(MAX_SACK_BLOCKS);
                o.sack_blocks = [(SeqNum(0), SeqNum(0)); MAX_SACK_BLOCKS];
                for (j, blk) in body.chunks_exact(8).take(n).enumerate() {
                    o.sack_blocks[j] = (SeqNum(be32(&blk[..4])), SeqNum(be32(&blk[4..])));
                }
                o.sack_count = n as u8;
            }
            (kind::TS, 10) => o.timestamp = Some((be32(&body[..4]), be32(&body[4..]))),
            _ => {} // unknown kind, wrong length, or SYN-only on a non-SYN: skipped
        }
        i += len;
    }
    Ok(o)
}

/// Option bytes before SACK blocks, and how many SACK blocks fit after them.
fn options_layout(o: &TcpOptions, syn: bool) -> (usize, usize) {
    let mut len = 0;
    if syn && o.mss.is_some() {
        len += 4;
    }
    let sack_perm = syn && o.sack_permitted;
    if o.timestamp.is_some() {
        len += 12; // SACK_PERM+TS or NOP NOP TS
    } else if sack_perm {
        len += 4; // NOP NOP SACK_PERM
    }
    if syn && o.window_scale.is_some() {
        len += 4; // NOP WS
    }
    let want = (o.sack_count as usize).min(MAX_SACK_BLOCKS);
    let room = MAX_OPTIONS_LEN - len; // len <= 20
    let n = if room >= 12 {
        want.min((room - 4) / 8)
    } else {
        0
    };
    (len, n)
}

impl<'a> TcpRepr<'a> {
    /// Parses and checks a segment (the IPv4 payload, `src`/`dst` from its IPv4 header):
    /// lengths ([`TcpPacket::check_len`]), the checksum if `verify_checksum` (`Checksum`),
    /// then the options (see `parse_options`: bad lengths are `Malformed`).
    pub fn parse(
        bytes: &'a [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>> {
        let p = TcpPacket::new_checked(bytes)?;
        if verify_checksum && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        Self::parse_checked(bytes, &p)
    }

    /// [`parse`](Self::parse) for a segment carried in IPv6 (the upper-layer payload after
    /// any extension headers; `src`/`dst` from the IPv6 header): the checksum is verified
    /// against the IPv6 pseudo-header (RFC 8200 §8.1).
    pub fn parse_v6(
        bytes: &'a [u8],
        src: Ipv6Addr,
        dst: Ipv6Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>> {
        let p = TcpPacket::new_checked(bytes)?;
        if verify_checksum && !p.verify_checksum_v6(src, dst) {
            return Err(Error::Checksum);
        }
        Self::parse_checked(bytes, &p)
    }

    /// The fields and options of a length-checked segment (`p` views `bytes`).
    fn parse_checked(bytes: &'a [u8], p: &TcpPacket<&'a [u8]>) -> Result<TcpRepr<'a>> {
        let flags = p.flags();
        let options = parse_options(p.options(), flags.syn())?;
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags,
            window: p.window_len(),
            urgent: p.urgent_at(),
            options,
            payload: &bytes[p.header_len()..],
        })
    }
}

impl TcpRepr<'_> {
    /// Emitted header length: 20 plus the options (always a multiple of 4, at most 60).
    pub fn header_len(&self) -> usize {
        let (len, n) = options_layout(&self.options, self.flags.syn());
        HEADER_LEN + len + if n > 0 { 4 + 8 * n } else { 0 }
    }

    /// Header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the options in Linux's layout: MSS; SACK_PERM+TS (or NOP NOP TS, or NOP NOP
    /// SACK_PERM); NOP WS; NOP NOP SACK. MSS, WS and SACK_PERM only on SYNs; SACK blocks
    /// beyond what fits in 40 bytes are left out (the first ones are kept).
    fn emit_options(&self, out: &mut [u8]) -> usize {
        let o = &self.options;
        let syn = self.flags.syn();
        let (_, n) = options_layout(o, syn);
        let mut i = 0;
        let mut put = |bytes: &[u8]| {
            out[i..i + bytes.len()].copy_from_slice(bytes);
            i += bytes.len();
        };
        if let (true, Some(mss)) = (syn, o.mss) {
            let m = mss.to_be_bytes();
            put(&[kind::MSS, 4, m[0], m[1]]);
        }
        let sack_perm = syn && o.sack_permitted;
        if let Some((val, ecr)) = o.timestamp {
            if sack_perm {
                put(&[kind::SACK_PERM, 2]);
            } else {
                put(&[kind::NOP, kind::NOP]);
            }
            put(&[kind::TS, 10]);
            put(&val.to_be_bytes());
            put(&ecr.to_be_bytes());
        } else if sack_perm {
            put(&[kind::NOP, kind::NOP, kind::SACK_PERM, 2]);
        }
        if let (true, Some(ws)) = (syn, o.window_scale) {
            put(&[kind::NOP, kind::WS, 3, ws.min(MAX_WINDOW_SCALE)]);
        }
        if n > 0 {
            put(&[kind::NOP, kind::NOP, kind::SACK, (2 + 8 * n) as u8]);
            for &(l, r) in &o.sack_blocks[..n] {
                put(&l.0.to_be_bytes());
                put(&r.0.to_be_bytes());
            }
        }
        i
    }

    /// Writes header, options and payload into `buf[..self.buffer_len()]` with the full
    /// checksum for the IPv4 pseudo-header `src`/`dst`. Panics if `buf` is shorter than
    /// [`buffer_len`](Self::buffer_len) (a caller bug, never network input).
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        self.emit_with(buf, |len| {
            checksum::pseudo_header_v4(src, dst, PROTO_TCP, len)
        })
    }

    /// [`emit`](Self::emit) with the checksum over the IPv6 pseudo-header (RFC 8200 §8.1).
    pub fn emit_v6(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) {
        self.emit_with(buf, |len| {
            checksum::pseudo_header_v6(src, dst, PROTO_TCP, len)
        })
    }

    /// Writes the segment; `pseudo(len)` is the folded pseudo-header sum for a segment of
    /// `len` bytes.
    fn emit_with(&self, buf: &mut [u8], pseudo: impl FnOnce(u32) -> u16) {
        let hl = self.header_len();
        let total = hl + self.payload.len();
        let buf = &mut buf[..total];
        let mut p = TcpPacket::new_unchecked(&mut *buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_checksum(0);
        p.set_urgent_at(self.urgent);
        let written = self.emit_options(p.options_mut());
        debug_assert_eq!(written, hl - HEADER_LEN);
        p.payload_mut().copy_from_slice(self.payload);
        // The fixed header from the fields and the payload from its source: only the few
        // option bytes are read back (re-reading what was just stored waits for the stores
        // and, in a frame buffer not in cache, for the line). The payload starts at an even
        // offset (hl is a multiple of 4), so its sum adds in as is (RFC 1071 §2 (B)).
        // Each part folded to 16 bits first: two unfolded `sum_raw` values can overflow u64.
        let sum = pseudo(total as u32) as u64
            + self.fixed_header_sum(hl) as u64
            + checksum::data(&buf[HEADER_LEN..hl]) as u64
            + checksum::data(self.payload) as u64;
        let c = checksum::complement(checksum::fold(sum));
        TcpPacket::new_unchecked(&mut *buf).set_checksum(c);
    }

    /// Folded sum of the 20-byte fixed header `emit` writes (checksum field zero).
    fn fixed_header_sum(&self, hl: usize) -> u16 {
        let words = [
            self.src_port,
            self.dst_port,
            (((hl / 4) as u16) << 12) | self.flags.0 as u16,
            self.window,
            self.urgent,
        ];
        let seqs = self.seq.0 as u64 + self.ack.0 as u64;
        checksum::fold(words.iter().map(|&w| w as u64).sum::<u64>() + seqs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A Linux SYN 198.18.0.1:45678 -> 198.18.0.2:80, seq 0x12345678, win 64240,
    /// "mss 1460,sackOK,TS val 16909060 ecr 0,nop,wscale 7". Checksum 0xa176 computed
    /// independently (Python, 16-bit sum over pseudo-header + segment).
    const SYN: [u8; 40] = [
        0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0xa1,
        0x76, 0, 0, 2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
    ];

    /// A data segment: ACK|PSH, "nop,nop,TS val 5 ecr 0x11223344", payload "hello".
    /// Checksum 0xcb3b computed independently.
    const DATA: [u8; 37] = [
        0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x79, 0x9a, 0xbc, 0xde, 0xf0, 0x80, 0x18, 0x01,
        0xf6, 0xcb, 0x3b, 0, 0, 1, 1, 8, 10, 0, 0, 0, 5, 0x11, 0x22, 0x33, 0x44, b'h', b'e', b'l',
        b'l', b'o',
    ];

    fn syn_repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 45678,
            dst_port: 80,
            seq: SeqNum(0x12345678),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamp: Some((16909060, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        }
    }

    fn parse(b: &[u8]) -> Result<TcpRepr<'_>> {
        TcpRepr::parse(b, SRC, DST, true)
    }

    /// A header with the given option bytes (padded by the caller), checksum filled.
    fn with_options(flags: TcpFlags, opts: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + opts.len()];
        b[..20].copy_from_slice(&SYN[..20]);
        b[12] = (((20 + opts.len()) / 4) as u8) << 4;
        b[13] = flags.0;
        b[20..].copy_from_slice(opts);
        TcpPacket::new_unchecked(&mut b[..]).fill_checksum(SRC, DST);
        b
    }

    #[test]
    fn parse_linux_syn() {
        assert_eq!(parse(&SYN), Ok(syn_repr()));
        assert_eq!(syn_repr().seq_len(), 1);
    }

    #[test]
    fn emit_linux_syn_byte_exact() {
        let r = syn_repr();
        assert_eq!(r.header_len(), 40);
        assert_eq!(r.buffer_len(), 40);
        let mut out = [0xeeu8; 64];
        r.emit(&mut out, SRC, DST);
        assert_eq!(out[..40], SYN);
        assert_eq!(out[40], 0xee, "emit wrote past buffer_len");
    }

    #[test]
    fn parse_and_emit_data_segment() {
        let r = parse(&DATA).unwrap();
        assert_eq!(r.flags, TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!(r.ack, SeqNum(0x9abcdef0));
        assert_eq!(r.window, 502);
        assert_eq!(r.options.timestamp, Some((5, 0x11223344)));
        assert_eq!(r.payload, b"hello");
        assert_eq!(r.seq_len(), 5);
        let mut out = [0u8; 37];
        r.emit(&mut out, SRC, DST);
        assert_eq!(out, DATA);
    }

    /// `emit` sums the fixed header from the fields: its checksum equals RFC 1071 over the
    /// pseudo-header and the bytes written, for every header field, with and without
    /// options, odd and even payloads.
    #[test]
    fn emit_checksum_matches_reference() {
        fn reference(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
            let mut v = Vec::new();
            v.extend_from_slice(&src.octets());
            v.extend_from_slice(&dst.octets());
            v.extend_from_slice(&[0, 6]);
            v.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            v.extend_from_slice(seg);
            v[12 + 16..12 + 18].copy_from_slice(&[0, 0]); // the checksum field
            v.push(0);
            let mut s: u32 = v
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                .sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            !(s as u16)
        }
        let payload: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for (i, len) in [0usize, 1, 2, 7, 1001].into_iter().enumerate() {
            let mut r = syn_repr();
            r.src_port = 0xffff - i as u16;
            r.seq = SeqNum(0xffff_fff0 + i as u32);
            r.ack = SeqNum(0x8000_0001 * i as u32);
            r.flags = TcpFlags(0x3f ^ i as u8);
            r.window = 0xfffe;
            r.urgent = 0x1234 * i as u16;
            r.payload = &payload[..len];
            if i % 2 == 1 {
                r.options = TcpOptions::default();
            }
            if i == 2 {
                // All-ones option and payload words: unfolded partial sums near 2^64 (an
                // emit that added them unfolded lost the carry).
                r.options.timestamp = Some((u32::MAX, u32::MAX));
                r.payload = &[0xff, 0xff];
            }
            let mut out = vec![0xa5u8; r.buffer_len()];
            r.emit(&mut out, SRC, DST);
            let got = u16::from_be_bytes([out[16], out[17]]);
            assert_eq!(got, reference(&out, SRC, DST), "case {i}");
            assert!(TcpRepr::parse(&out, SRC, DST, true).is_ok(), "case {i}");
        }
        // Random headers, timestamps and payloads (seeded: the same cases every run).
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let mut data = [0u8; 64];
        for i in 0..4000 {
            rng.fill(&mut data[..]);
            let mut r = syn_repr();
            r.flags = TcpFlags(rng.gen::<u8>() & 0x3f);
            (r.src_port, r.dst_port, r.window, r.urgent) = rng.gen();
            (r.seq.0, r.ack.0) = rng.gen();
            r.options.timestamp = rng.gen::<bool>().then(|| rng.gen());
            r.payload = &data[..rng.gen_range(0..=64)];
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut out, SRC, DST);
            let got = u16::from_be_bytes([out[16], out[17]]);
            assert_eq!(got, reference(&out, SRC, DST), "random case {i}: {r:?}");
        }
    }

    #[test]
    fn checksum_checked_or_skipped() {
        let mut b = DATA;
        b[34] ^= 0x20; // 'l' -> 'L'
        assert_eq!(parse(&b), Err(Error::Checksum));
        assert_eq!(
            TcpRepr::parse(&b, SRC, DST, false).unwrap().payload,
            b"heLlo"
        );
        // The pseudo-header counts: a different source address fails.
        assert_eq!(TcpRepr::parse(&DATA, DST, DST, true), Err(Error::Checksum));
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(parse(&SYN[..19]), Err(Error::Truncated));
        // Data offset 4 (< 5): RFC 9293 §3.1.
        let mut b = with_options(TcpFlags::ACK, &[]);
        b[12] = 0x40;
        assert_eq!(TcpRepr::parse(&b, SRC, DST, false), Err(Error::Malformed));
        // Data offset 11 (44 bytes) in a 40-byte buffer.
        let mut b = SYN;
        b[12] = 0xb0;
        assert_eq!(parse(&b), Err(Error::Truncated));
    }

    /// Malformed options as Linux's tcp_parse_options treats them. The
    /// segment is never dropped: a silly or partial option stops the parse (what came before
    /// is kept), a known kind with a wrong length is skipped like an unknown one.
    #[test]
    fn malformed_options_like_linux() {
        let mss = |m| TcpOptions {
            mss: Some(m),
            ..TcpOptions::default()
        };
        let none = TcpOptions::default();
        let ts = TcpOptions {
            timestamp: Some((1, 2)),
            ..TcpOptions::default()
        };
        // (option bytes, on a SYN, what is parsed)
        let cases: Vec<(&[u8], TcpOptions)> = vec![
            // "if (opsize < 2) return": stop, keep the MSS parsed before.
            (&[2, 4, 5, 0xb4, 2, 0, 0, 0], mss(1460)),
            (&[2, 4, 5, 0xb4, 3, 1, 0, 0], mss(1460)),
            (&[2, 0, 0, 0], none),
            // No length byte: "if (length < 2) return".
            (&[2, 4, 5, 0xb4, 1, 1, 1, 8], mss(1460)),
            // "if (opsize > length) return": unknown kind overrunning, then an MSS not parsed.
            (&[1, 1, 200, 5, 2, 4, 5, 0xb4], none),
            (&[2, 4, 5, 0xb4, 200, 5, 0, 0], mss(1460)),
            // Known kinds with a wrong length: skipped by length, parsing goes on.
            (&[2, 3, 5, 2, 4, 5, 0xb4, 0], mss(1460)),
            (&[3, 4, 7, 0, 2, 4, 5, 0xb4], mss(1460)),
            (&[4, 3, 0, 2, 4, 5, 0xb4, 0], mss(1460)),
            (&[8, 6, 0, 0, 0, 0, 2, 4, 5, 0xb4, 0, 0], mss(1460)),
            (&[5, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], ts),
            (
                &[5, 6, 0, 0, 0, 0, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0],
                ts,
            ),
            // MSS 0 is ignored ("if (in_mss)").
            (&[2, 4, 0, 0], none),
        ];
        for (opts, want) in cases {
            let b = with_options(TcpFlags::SYN, opts);
            let r = parse(&b).unwrap_or_else(|e| panic!("{opts:?}: {e:?}"));
            assert_eq!(r.options, want, "{opts:?}");
        }
        // Five SACK blocks (42 bytes) cannot fit in 40 option bytes: stop, segment kept.
        let mut o = vec![5u8, 42];
        o.resize(40, 0);
        let b = with_options(TcpFlags::ACK, &o);
        assert_eq!(parse(&b).unwrap().options, none);
    }

    #[test]
    fn options_edge_cases() {
        // Unknown kind 30 (MPTCP) length 4 skipped; EOL stops parsing (garbage after it).
        let b = with_options(TcpFlags::SYN, &[30, 4, 9, 9, 2, 4, 0x05, 0xdc, 0, 2, 0, 0]);
        let r = parse(&b).unwrap();
        assert_eq!(r.options.mss, Some(1500));
        // WS 15 is clamped to 14 (RFC 7323 §2.3).
        let b = with_options(TcpFlags::SYN, &[1, 3, 3, 15]);
        assert_eq!(parse(&b).unwrap().options.window_scale, Some(14));
        // SYN-only options on a non-SYN are ignored (RFC 7323 §2.2, RFC 9293 §3.7.1).
        let b = with_options(TcpFlags::ACK, &[2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0]);
        assert_eq!(parse(&b).unwrap().options, TcpOptions::default());
    }

    #[test]
    fn sack_blocks_parse_and_emit() {
        let mut r = TcpRepr {
            flags: TcpFlags::ACK,
            options: TcpOptions {
                timestamp: Some((7, 8)),
                ..TcpOptions::default()
            },
            ..syn_repr()
        };
        for (i, b) in r.options.sack_blocks.iter_mut().enumerate() {
            *b = (SeqNum(1000 * i as u32), SeqNum(1000 * i as u32 + 500));
        }
        r.options.sack_count = 4;
        // With timestamps only 3 blocks fit: 12 + 4 + 24 = 40.
        assert_eq!(r.header_len(), 60);
        let mut out = [0u8; 60];
        r.emit(&mut out, SRC, DST);
        assert_eq!(
            &out[20..36],
            &[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 8, 1, 1, 5, 26]
        );
        let p = parse(&out).unwrap();
        assert_eq!(p.options.sacks(), &r.options.sack_blocks[..3]);
        // Without timestamps all 4 fit: 4 + 32 = 36.
        r.options.timestamp = None;
        assert_eq!(r.header_len(), 56);
        let mut out = [0u8; 56];
        r.emit(&mut out, SRC, DST);
        assert_eq!(parse(&out).unwrap().options, r.options);
        // On a SYN with MSS, SACK_PERM+TS and WS (20 bytes) only 2 fit.
        let mut s = syn_repr();
        s.options.sack_blocks = r.options.sack_blocks;
        s.options.sack_count = 4;
        assert_eq!(s.header_len(), 60);
    }

    #[test]
    fn emit_sack_perm_without_timestamps() {
        let mut r = syn_repr();
        r.options.timestamp = None;
        let mut out = [0u8; 32];
        assert_eq!(r.header_len(), 32);
        r.emit(&mut out, SRC, DST);
        assert_eq!(&out[20..], &[2, 4, 5, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7]);
        assert_eq!(parse(&out), Ok(r));
    }

    /// A segment whose unfolded word sum (`checksum::sum_raw`) is exactly 2^64 - 1:
    /// `fill_checksum` and `verify_checksum` added the pseudo-header to it unfolded and
    /// overflowed (found by fuzz/wire_parse). The checksum must still be RFC 1071's
    /// (RFC 9293 §3.1 "Checksum"), and the segment must verify.
    #[test]
    fn checksum_of_a_segment_with_a_maximal_raw_sum() {
        let mut seg = [0u8; 40]; // 20-byte header, 20 bytes of payload
        seg[..4].copy_from_slice(&[0xc3, 0x50, 0x00, 0x50]);
        seg[12] = 0x50; // data offset 5
        seg[13] = TcpFlags::ACK.0;
        // The first 32 bytes are summed in lanes; the last 8 as one word chosen so that
        // the total is u64::MAX.
        let rest = u64::MAX - checksum::sum_raw(&seg);
        seg[32..].copy_from_slice(&rest.to_be_bytes());
        assert_eq!(checksum::sum_raw(&seg), u64::MAX);
        let mut p = TcpPacket::new_unchecked(&mut seg[..]);
        p.fill_checksum(SRC, DST);
        // RFC 1071 by 16-bit words, independently.
        let mut words = Vec::new();
        words.extend_from_slice(&SRC.octets());
        words.extend_from_slice(&DST.octets());
        words.extend_from_slice(&[0, 6, 0, 40]);
        words.extend_from_slice(&seg);
        let mut s: u32 = words
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        assert_eq!(
            s, 0xffff,
            "the filled checksum makes the RFC 1071 sum all ones"
        );
        assert!(TcpPacket::new_checked(&seg[..])
            .unwrap()
            .verify_checksum(SRC, DST));
        assert!(TcpRepr::parse(&seg, SRC, DST, true).is_ok());
    }
}
