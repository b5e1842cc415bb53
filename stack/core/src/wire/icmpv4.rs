//! ICMPv4 error messages (RFC 792) that concern a TCP flow: Destination Unreachable (type 3,
//! codes 0-15 of RFC 792 / RFC 1122 §3.2.2.1 / RFC 1812 §5.2.7.1, code 4 with the next-hop
//! MTU of RFC 1191 §4), Time Exceeded (type 11) and Parameter Problem (type 12, codes 0-2:
//! RFC 792's pointer, RFC 1108's missing required option, RFC 1812 §5.2.7.3's bad length).
//! Other ICMP types and codes are the kernel's (the XDP program passes them) and parse as
//! [`Error::Unsupported`].
//!
//! An error quotes the datagram that caused it: its IPv4 header and at least the first 8
//! bytes of its payload (RFC 792; RFC 1812 §4.3.2.3 allows more). For TCP those 8 bytes are
//! the ports and the sequence number, which is all the receiver needs to find the flow and
//! to check that the error is for data in flight (RFC 5927 §4.1). `Icmpv4ErrorRepr::parse`
//! checks the message once (lengths, checksum, type and code, the quoted header's version
//! and length); after it nothing can panic.

use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ipv4::{Ipv4Packet, Ipv4Repr, HEADER_LEN as IPV4_HEADER_LEN, PROTO_ICMP, PROTO_TCP};
use super::{checksum, Error, Result, SeqNum};
use std::net::Ipv4Addr;

/// Length of the ICMP header: type, code, checksum and the 4 type-specific bytes.
pub const HEADER_LEN: usize = 8;
/// Transport bytes an error quotes at least (RFC 792).
pub const QUOTED_TRANSPORT_LEN: usize = 8;
/// ICMP type Destination Unreachable (RFC 792).
pub const TYPE_DST_UNREACHABLE: u8 = 3;
/// ICMP type Time Exceeded (RFC 792).
pub const TYPE_TIME_EXCEEDED: u8 = 11;
/// ICMP type Parameter Problem (RFC 792).
pub const TYPE_PARAM_PROBLEM: u8 = 12;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// RFC 792 Parameter Problem: the octet of the quoted datagram where the error is.
    pub const POINTER: usize = 4;
    /// RFC 1191 §4: the low 16 bits of the "unused" word carry the next-hop MTU.
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
}

/// A read/write view of an ICMPv4 message (the IPv4 payload).
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer of at least [`HEADER_LEN`] bytes; then no header accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// The message type.
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    /// The message code.
    pub fn code(&self) -> u8 {
        self.b()[field::CODE]
    }
    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.b()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The next-hop MTU of a "fragmentation needed" (RFC 1191 §4; 0 from a pre-1191 router).
    pub fn next_hop_mtu(&self) -> u16 {
        let b = &self.b()[field::NEXT_HOP_MTU];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The pointer of a Parameter Problem (RFC 792: the octet of the quoted datagram where
    /// the error was detected).
    pub fn pointer(&self) -> u8 {
        self.b()[field::POINTER]
    }
    /// True if the whole message sums to 0xffff (RFC 792 "Checksum").
    pub fn verify_checksum(&self) -> bool {
        checksum::data(self.b()) == 0xffff
    }
    /// What follows the header: for an error, the quoted datagram.
    pub fn data(&self) -> &[u8] {
        &self.b()[HEADER_LEN..]
    }
}

/// Destination Unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1), in the
/// order of the `code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DstUnreachable {
    /// 0: net unreachable.
    NetUnreachable = 0,
    /// 1: host unreachable.
    HostUnreachable = 1,
    /// 2: protocol unreachable.
    ProtoUnreachable = 2,
    /// 3: port unreachable.
    PortUnreachable = 3,
    /// 4: fragmentation needed and DF set (RFC 1191: with the next-hop MTU).
    FragNeeded = 4,
    /// 5: source route failed.
    SrcRouteFailed = 5,
    /// 6: destination network unknown.
    NetUnknown = 6,
    /// 7: destination host unknown.
    HostUnknown = 7,
    /// 8: source host isolated.
    HostIsolated = 8,
    /// 9: communication with the destination network administratively prohibited.
    NetProhibited = 9,
    /// 10: communication with the destination host administratively prohibited.
    HostProhibited = 10,
    /// 11: network unreachable for type of service.
    NetUnreachableTos = 11,
    /// 12: host unreachable for type of service.
    HostUnreachableTos = 12,
    /// 13: communication administratively prohibited (RFC 1812).
    CommProhibited = 13,
    /// 14: host precedence violation (RFC 1812).
    PrecedenceViolation = 14,
    /// 15: precedence cutoff in effect (RFC 1812).
    PrecedenceCutoff = 15,
}

impl DstUnreachable {
    /// The code's meaning; `None` above 15 (Linux ignores those: NR_ICMP_UNREACH).
    pub fn from_code(code: u8) -> Option<DstUnreachable> {
        use DstUnreachable::*;
        const ALL: [DstUnreachable; 16] = [
            NetUnreachable,
            HostUnreachable,
            ProtoUnreachable,
            PortUnreachable,
            FragNeeded,
            SrcRouteFailed,
            NetUnknown,
            HostUnknown,
            HostIsolated,
            NetProhibited,
            HostProhibited,
            NetUnreachableTos,
            HostUnreachableTos,
            CommProhibited,
            PrecedenceViolation,
            PrecedenceCutoff,
        ];
        ALL.get(code as usize).copied()
    }
}

/// Time Exceeded codes (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TimeExceeded {
    /// 0: time to live exceeded in transit.
    TtlExceeded = 0,
    /// 1: fragment reassembly time exceeded.
    ReassemblyExceeded = 1,
}

/// Parameter Problem codes (RFC 792 code 0; RFC 1108 §2 code 1; RFC 1812 §5.2.7.3 code 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ParamProblem {
    /// 0: the pointer indicates the error.
    Pointer = 0,
    /// 1: missing a required option (RFC 1108's security option).
    MissingOption = 1,
    /// 2: bad length.
    BadLength = 2,
}

impl ParamProblem {
    /// The code's meaning; `None` above 2 (not a code any RFC assigns; left to the kernel).
    pub fn from_code(code: u8) -> Option<ParamProblem> {
        use ParamProblem::*;
        [Pointer, MissingOption, BadLength]
            .get(code as usize)
            .copied()
    }
}

/// The error an ICMPv4 message reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Message {
    /// Type 3. `next_hop_mtu` is the RFC 1191 field, meaningful for `FragNeeded` only
    /// (0 there from a router older than RFC 1191; 0 in every other code as parsed).
    DstUnreachable {
        /// Why.
        code: DstUnreachable,
        /// RFC 1191 §4 next-hop MTU.
        next_hop_mtu: u16,
    },
    /// Type 11.
    TimeExceeded(TimeExceeded),
    /// Type 12, with its pointer (meaningful for code 0; as received in every code).
    ParamProblem {
        /// Which problem.
        code: ParamProblem,
        /// The octet of the quoted datagram where the error was detected.
        pointer: u8,
    },
}

impl Icmpv4Message {
    /// Type, code and the 4 type-specific bytes.
    fn type_code_rest(&self) -> (u8, u8, [u8; 4]) {
        match *self {
            Icmpv4Message::DstUnreachable { code, next_hop_mtu } => {
                let mtu = if code == DstUnreachable::FragNeeded {
                    next_hop_mtu
                } else {
                    0
                };
                let m = mtu.to_be_bytes();
                (TYPE_DST_UNREACHABLE, code as u8, [0, 0, m[0], m[1]])
            }
            Icmpv4Message::TimeExceeded(c) => (TYPE_TIME_EXCEEDED, c as u8, [0; 4]),
            Icmpv4Message::ParamProblem { code, pointer } => {
                (TYPE_PARAM_PROBLEM, code as u8, [pointer, 0, 0, 0])
            }
        }
    }
}

/// The datagram an error quotes: its addresses, protocol and first 8 transport bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quoted {
    /// Its source: for an error about a segment we sent, our address.
    pub src_addr: Ipv4Addr,
    /// Its destination: the peer.
    pub dst_addr: Ipv4Addr,
    /// Its protocol.
    pub protocol: u8,
    /// The first 8 bytes of its payload.
    pub transport: [u8; QUOTED_TRANSPORT_LEN],
}

/// The first 8 bytes of a quoted TCP header (RFC 9293 §3.1): all RFC 792 promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedTcp {
    /// Source port (ours, for a segment we sent).
    pub src_port: u16,
    /// Destination port (the peer's).
    pub dst_port: u16,
    /// Sequence number of the quoted segment (RFC 5927 §4.1 checks it is in flight).
    pub seq: SeqNum,
}

impl Quoted {
    /// The quoted TCP header, if the quoted datagram is TCP.
    pub fn tcp(&self) -> Option<QuotedTcp> {
        if self.protocol != PROTO_TCP {
            return None;
        }
        let t = &self.transport;
        Some(QuotedTcp {
            src_port: u16::from_be_bytes([t[0], t[1]]),
            dst_port: u16::from_be_bytes([t[2], t[3]]),
            seq: SeqNum(u32::from_be_bytes([t[4], t[5], t[6], t[7]])),
        })
    }
}

/// A parsed ICMPv4 error: what happened and to which datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv4ErrorRepr {
    /// Type and code (and next-hop MTU).
    pub message: Icmpv4Message,
    /// The datagram it is about.
    pub quoted: Quoted,
}

impl Icmpv4ErrorRepr {
    /// Parses an ICMPv4 message (the IPv4 payload): at least the header (`Truncated`), the
    /// checksum over the whole message (`Checksum`), type 3 with code 0..=15, type 11 with
    /// code 0..=1 or type 12 with code 0..=2 (else `Unsupported`: not an error this stack
    /// acts on), then the quoted
    /// datagram: an IPv4 header of version 4 and IHL >= 5 (`Malformed`) followed by at
    /// least 8 bytes (`Truncated`), not a non-first fragment (`Unsupported`: its 8 bytes
    /// are not a transport header). The quoted header's checksum and total length are not
    /// checked: the quote may be cut short (RFC 1812 §4.3.2.3), and Linux does not check
    /// them either (icmp_unreach only requires IHL*4 + 8 bytes).
    pub fn parse(msg: &[u8]) -> Result<Icmpv4ErrorRepr> {
        let p = Icmpv4Packet::new_checked(msg)?;
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        let message = match p.msg_type() {
            TYPE_DST_UNREACHABLE => {
                let code = DstUnreachable::from_code(p.code()).ok_or(Error::Unsupported)?;
                let next_hop_mtu = if code == DstUnreachable::FragNeeded {
                    p.next_hop_mtu()
                } else {
                    0
                };
                Icmpv4Message::DstUnreachable { code, next_hop_mtu }
            }
            TYPE_TIME_EXCEEDED => Icmpv4Message::TimeExceeded(match p.code() {
                0 => TimeExceeded::TtlExceeded,
                1 => TimeExceeded::ReassemblyExceeded,
                _ => return Err(Error::Unsupported),
            }),
            TYPE_PARAM_PROBLEM => Icmpv4Message::ParamProblem {
                code: ParamProblem::from_code(p.code()).ok_or(Error::Unsupported)?,
                pointer: p.pointer(),
            },
            _ => return Err(Error::Unsupported),
        };
        Ok(Icmpv4ErrorRepr {
            message,
            quoted: parse_quoted(p.data())?,
        })
    }

    /// Bytes [`emit`](Self::emit) writes: the header and the quote.
    pub fn buffer_len(quote: &[u8]) -> usize {
        HEADER_LEN + quote.len()
    }

    /// Writes the message `message` quoting `quote` (the start of the offending datagram, as
    /// a router would: its IPv4 header and at least 8 bytes) into `buf`, with its checksum;
    /// returns the length. `self.quoted` is not used: the quote is the bytes. Panics if `buf`
    /// is shorter than [`buffer_len`](Self::buffer_len) (a caller bug).
    pub fn emit(message: &Icmpv4Message, quote: &[u8], buf: &mut [u8]) -> usize {
        let len = Self::buffer_len(quote);
        let buf = &mut buf[..len];
        let (ty, code, rest) = message.type_code_rest();
        buf[field::TYPE] = ty;
        buf[field::CODE] = code;
        buf[field::CHECKSUM].copy_from_slice(&[0, 0]);
        buf[4..HEADER_LEN].copy_from_slice(&rest);
        buf[HEADER_LEN..].copy_from_slice(quote);
        let c = checksum::complement(checksum::data(buf));
        buf[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
        len
    }
}

/// The quoted datagram: IPv4 header (IHL >= 5, version 4) + 8 transport bytes.
fn parse_quoted(data: &[u8]) -> Result<Quoted> {
    if data.len() < IPV4_HEADER_LEN {
        return Err(Error::Truncated);
    }
    let ip = Ipv4Packet::new_unchecked(data);
    if ip.version() != 4 || ip.header_len() < IPV4_HEADER_LEN {
        return Err(Error::Malformed);
    }
    let hl = ip.header_len();
    let Some(t) = data.get(hl..hl + QUOTED_TRANSPORT_LEN) else {
        return Err(Error::Truncated);
    };
    if ip.frag_offset() != 0 {
        return Err(Error::Unsupported);
    }
    let mut transport = [0u8; QUOTED_TRANSPORT_LEN];
    transport.copy_from_slice(t);
    Ok(Quoted {
        src_addr: ip.src_addr(),
        dst_addr: ip.dst_addr(),
        protocol: ip.protocol(),
        transport,
    })
}

/// A received ICMPv4 error in an Ethernet frame, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv4Frame {
    /// The Ethernet header (EtherType IPv4).
    pub eth: EthernetRepr,
    /// The outer IPv4 header (protocol ICMP, unfragmented): who reports the error to whom.
    pub ip: Ipv4Repr,
    /// The error.
    pub icmp: Icmpv4ErrorRepr,
}

/// Parses an ICMPv4 error in an Ethernet frame: the outer IPv4 header as for TCP
/// ([`Ipv4Repr::parse`]: checksum verified, fragments `Unsupported`), protocol ICMP (else
/// `Unsupported`), then [`Icmpv4ErrorRepr::parse`].
pub fn parse_icmpv4_frame(frame: &[u8]) -> Result<Icmpv4Frame> {
    let eth = EthernetRepr::parse(&EthernetFrame::new_checked(frame)?)?;
    if eth.ethertype != EtherType::Ipv4 {
        return Err(Error::Unsupported);
    }
    let ip_bytes = &frame[ethernet::HEADER_LEN..];
    let ip_view = Ipv4Packet::new_checked(ip_bytes)?;
    let ip = Ipv4Repr::parse(&ip_view)?;
    if ip.protocol != PROTO_ICMP {
        return Err(Error::Unsupported);
    }
    let icmp = Icmpv4ErrorRepr::parse(ip_view.payload())?;
    Ok(Icmpv4Frame { eth, ip, icmp })
}

/// Writes a whole frame carrying an ICMPv4 error from `ip_src` to `ip_dst` that quotes
/// `quote` (tests and tools: a router's "fragmentation needed", a host's "port
/// unreachable", a middlebox's "parameter problem"). Returns its length. Panics if `buf` is too short.
pub fn emit_icmpv4_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    message: &Icmpv4Message,
    quote: &[u8],
) -> usize {
    let icmp_len = Icmpv4ErrorRepr::buffer_len(quote);
    let len = ethernet::HEADER_LEN + IPV4_HEADER_LEN + icmp_len;
    let buf = &mut buf[..len];
    let eth = EthernetRepr {
        ethertype: EtherType::Ipv4,
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *buf));
    let ip = Ipv4Repr {
        src_addr: ip_src,
        dst_addr: ip_dst,
        protocol: PROTO_ICMP,
        payload_len: icmp_len,
        ttl: 64,
        dscp_ecn: 0xc0, // RFC 1812 §4.3.2.5: ICMP errors go out with precedence 6
        ident: 0,
        dont_frag: false,
    };
    let ip_buf = &mut buf[ethernet::HEADER_LEN..];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *ip_buf));
    Icmpv4ErrorRepr::emit(message, quote, &mut ip_buf[IPV4_HEADER_LEN..]);
    len
}

#[cfg(test)]
mod tests;
