//! ICMPv6 error messages (RFC 4443 §3) about TCP segments: Destination Unreachable,
//! Packet Too Big (RFC 8201), Time Exceeded and Parameter Problem, with the quoted
//! ("invoking") packet's
//! addresses, ports and sequence number, which is what TCP needs to find the connection and
//! to validate the error (RFC 5927 §4.1: the sequence number must be in flight).
//!
//! Informational messages (echo, NDP) are not parsed here: the XDP program leaves them to
//! the kernel. This module only reads; the stack never sends ICMPv6.

use super::checksum;
use super::ipv6::{self, walk_extensions, NEXT_ICMPV6, NEXT_TCP};
use super::{Error, Result, SeqNum};
use std::net::Ipv6Addr;

/// Length of the ICMPv6 header of an error message (type, code, checksum, 4 bytes).
pub const HEADER_LEN: usize = 8;
/// The IPv6 minimum link MTU (RFC 8200 §5): a Packet Too Big below it never lowers a path
/// MTU estimate below it (RFC 8201 §4).
pub const IPV6_MIN_MTU: u32 = 1280;
/// Bytes of the quoted TCP header an error must carry: ports and sequence number.
pub const QUOTED_TCP_LEN: usize = 8;

/// Type: Destination Unreachable.
pub const TYPE_DST_UNREACHABLE: u8 = 1;
/// Type: Packet Too Big.
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
/// Type: Time Exceeded.
pub const TYPE_TIME_EXCEEDED: u8 = 3;
/// Type: Parameter Problem (RFC 4443 §3.4).
pub const TYPE_PARAM_PROBLEM: u8 = 4;

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const DATA: usize = 8;
}

/// A read view of an ICMPv6 message (the IPv6 upper-layer payload).
#[derive(Debug, Clone)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Wraps a buffer without checking its length; accessors may panic if it is short.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv6Packet { buffer }
    }

    /// Wraps a buffer holding at least the 8-byte header (`Truncated`); then no accessor
    /// panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        if p.b().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(p)
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    /// Return the type field.
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }
    /// Return the code field.
    pub fn code(&self) -> u8 {
        self.b()[field::CODE]
    }
    /// Return the checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.b()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }
    /// The 4 bytes after the checksum as one number: the MTU of a Packet Too Big, the
    /// pointer of a Parameter Problem, unused (0) otherwise.
    pub fn rest(&self) -> u32 {
        let b = &self.b()[field::REST];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
    /// The message body: for an error, the quoted invoking packet.
    pub fn data(&self) -> &[u8] {
        &self.b()[field::DATA..]
    }
    /// True if the message sums with the IPv6 pseudo-header (next header 58) to 0xffff
    /// (RFC 4443 §2.3: the checksum is mandatory).
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let ph = checksum::pseudo_header_v6(src, dst, NEXT_ICMPV6, self.b().len() as u32);
        checksum::fold(ph as u64 + checksum::data(self.b()) as u64) == 0xffff
    }
}

/// Destination Unreachable codes (RFC 4443 §3.1; the later codes 7 and 8 are `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: no route to destination.
    NoRoute,
    /// 1: communication administratively prohibited.
    AdminProhibited,
    /// 2: beyond scope of source address.
    BeyondScope,
    /// 3: address unreachable.
    AddrUnreachable,
    /// 4: port unreachable.
    PortUnreachable,
    /// 5: source address failed ingress/egress policy.
    FailedPolicy,
    /// 6: reject route to destination.
    RejectRoute,
    /// Any other code, as received.
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        match c {
            0 => Self::NoRoute,
            1 => Self::AdminProhibited,
            2 => Self::BeyondScope,
            3 => Self::AddrUnreachable,
            4 => Self::PortUnreachable,
            5 => Self::FailedPolicy,
            6 => Self::RejectRoute,
            c => Self::Other(c),
        }
    }
}

/// Time Exceeded codes (RFC 4443 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: hop limit exceeded in transit.
    HopLimit,
    /// 1: fragment reassembly time exceeded.
    Reassembly,
    /// Any other code, as received.
    Other(u8),
}

impl From<u8> for TimeExceeded {
    fn from(c: u8) -> Self {
        match c {
            0 => Self::HopLimit,
            1 => Self::Reassembly,
            c => Self::Other(c),
        }
    }
}

/// Parameter Problem codes (RFC 4443 §3.4; later codes, e.g. RFC 7112's 3, are `Other`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamProblem {
    /// 0: erroneous header field encountered.
    HeaderField,
    /// 1: unrecognized Next Header type encountered.
    NextHeader,
    /// 2: unrecognized IPv6 option encountered.
    Option,
    /// Any other code, as received.
    Other(u8),
}

impl From<u8> for ParamProblem {
    fn from(c: u8) -> Self {
        match c {
            0 => Self::HeaderField,
            1 => Self::NextHeader,
            2 => Self::Option,
            c => Self::Other(c),
        }
    }
}

/// What an ICMPv6 error says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6Error {
    /// Destination Unreachable with its code.
    DstUnreachable(DstUnreachable),
    /// Packet Too Big with the next hop's MTU as sent (possibly below [`IPV6_MIN_MTU`],
    /// which the consumer clamps to, RFC 8201 §4).
    PacketTooBig {
        /// The MTU field.
        mtu: u32,
    },
    /// Time Exceeded with its code.
    TimeExceeded(TimeExceeded),
    /// Parameter Problem with its code and pointer (RFC 4443 §3.4: the offset in the
    /// quoted packet where the error was detected).
    ParamProblem {
        /// The code.
        code: ParamProblem,
        /// The pointer field.
        pointer: u32,
    },
}

/// The quoted TCP segment's identity: its IPv6 addresses and ports as the stack sent them
/// (source = the stack) and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotedTcp {
    /// Source address of the quoted packet (the stack's).
    pub src_addr: Ipv6Addr,
    /// Destination address of the quoted packet (the peer's).
    pub dst_addr: Ipv6Addr,
    /// Source port of the quoted segment.
    pub src_port: u16,
    /// Destination port of the quoted segment.
    pub dst_port: u16,
    /// Sequence number of the quoted segment (RFC 5927 validation).
    pub seq: SeqNum,
}

/// A parsed ICMPv6 error about a TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Icmpv6ErrorRepr {
    /// The error and its code or MTU.
    pub error: Icmpv6Error,
    /// The segment it is about.
    pub quoted: QuotedTcp,
}

impl Icmpv6ErrorRepr {
    /// Parses an ICMPv6 message carried from `src` to `dst` (the outer IPv6 addresses):
    /// the checksum if `verify_checksum` (`Checksum`); types other than Destination
    /// Unreachable, Packet Too Big, Time Exceeded and Parameter Problem are `Unsupported`. The quoted packet
    /// must be IPv6 (`Malformed`), its extension headers are walked as for a received
    /// packet ([`walk_extensions`], over what was quoted), and it must quote TCP
    /// (`Unsupported` otherwise; also a quoted non-first fragment, which has no TCP header)
    /// with at least [`QUOTED_TCP_LEN`] bytes of its header (`Truncated`). The quoted
    /// payload length is not checked: the quote is cut short by design (RFC 4443 §2.4 (c)).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Icmpv6Packet<T>,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        verify_checksum: bool,
    ) -> Result<Icmpv6ErrorRepr> {
        let p = Icmpv6Packet::new_checked(packet.b())?;
        if verify_checksum && !p.verify_checksum(src, dst) {
            return Err(Error::Checksum);
        }
        let error = match p.msg_type() {
            TYPE_DST_UNREACHABLE => Icmpv6Error::DstUnreachable(p.code().into()),
            TYPE_PACKET_TOO_BIG => Icmpv6Error::PacketTooBig { mtu: p.rest() },
            TYPE_TIME_EXCEEDED => Icmpv6Error::TimeExceeded(p.code().into()),
            TYPE_PARAM_PROBLEM => Icmpv6Error::ParamProblem {
                code: p.code().into(),
                pointer: p.rest(),
            },
            _ => return Err(Error::Unsupported),
        };
        let q = p.data();
        if q.len() < ipv6::HEADER_LEN {
            return Err(Error::Truncated);
        }
        let ip = ipv6::Ipv6Packet::new_unchecked(q);
        if ip.version() != 6 {
            return Err(Error::Malformed);
        }
        let rest = &q[ipv6::HEADER_LEN..];
        let upper = walk_extensions(ip.next_header(), rest)?;
        if upper.protocol != NEXT_TCP || upper.fragment.is_some_and(|f| f.offset != 0) {
            return Err(Error::Unsupported);
        }
        let tcp = &rest[upper.offset..];
        if tcp.len() < QUOTED_TCP_LEN {
            return Err(Error::Truncated);
        }
        Ok(Icmpv6ErrorRepr {
            error,
            quoted: QuotedTcp {
                src_addr: ip.src_addr(),
                dst_addr: ip.dst_addr(),
                src_port: u16::from_be_bytes([tcp[0], tcp[1]]),
                dst_port: u16::from_be_bytes([tcp[2], tcp[3]]),
                seq: SeqNum(u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]])),
            },
        })
    }
}

#[cfg(test)]
mod tests;
