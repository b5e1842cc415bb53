//! ARP for Ethernet/IPv4 (RFC 826). Other hardware or protocol types are
//! [`Error::Unsupported`].

use super::ethernet::EthernetAddress;
use super::{Error, Result};
use std::net::Ipv4Addr;

mod field {
    use core::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Hardware type Ethernet (RFC 826; IANA "Hardware Types").
pub const HTYPE_ETHERNET: u16 = 1;
/// Protocol type IPv4 (the EtherType).
pub const PTYPE_IPV4: u16 = 0x0800;

/// The ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// Request (opcode 1): who has the target protocol address?
    Request,
    /// Reply (opcode 2): the source hardware address owns the source protocol address.
    Reply,
    /// Any other opcode, kept as received.
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(v: u16) -> Self {
        match v {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(op: ArpOperation) -> u16 {
        match op {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(v) => v,
        }
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn ipv4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// A read/write view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking its length; accessors may panic on a short
    /// buffer. Use [`new_checked`](Self::new_checked) for untrusted input.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }
    /// Checks the buffer holds [`PACKET_LEN`] bytes; then no accessor panics.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }
    /// `Truncated` if the buffer is shorter than [`PACKET_LEN`]; longer buffers (Ethernet
    /// padding) are fine.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < PACKET_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }
    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Return the hardware type field (HTYPE; [`HTYPE_ETHERNET`] for Ethernet).
    pub fn hardware_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::HTYPE])
    }
    /// Return the protocol type field (PTYPE; an EtherType, [`PTYPE_IPV4`] for IPv4).
    pub fn protocol_type(&self) -> u16 {
        be16(&self.buffer.as_ref()[field::PTYPE])
    }
    /// Return the hardware address length field (HLEN, bytes; 6 for Ethernet).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    /// Return the protocol address length field (PLEN, bytes; 4 for IPv4).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    /// Return the operation field (OPER).
    pub fn operation(&self) -> ArpOperation {
        be16(&self.buffer.as_ref()[field::OPER]).into()
    }
    /// Return the sender hardware address field (SHA).
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::SHA])
    }
    /// Return the sender protocol address field (SPA).
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::SPA])
    }
    /// Return the target hardware address field (THA; ignored in requests).
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        EthernetAddress::from_bytes(&self.buffer.as_ref()[field::THA])
    }
    /// Return the target protocol address field (TPA).
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        ipv4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    fn set(&mut self, r: core::ops::Range<usize>, v: &[u8]) {
        self.buffer.as_mut()[r].copy_from_slice(v)
    }
    /// Set the hardware type field (HTYPE).
    pub fn set_hardware_type(&mut self, v: u16) {
        self.set(field::HTYPE, &v.to_be_bytes())
    }
    /// Set the protocol type field (PTYPE).
    pub fn set_protocol_type(&mut self, v: u16) {
        self.set(field::PTYPE, &v.to_be_bytes())
    }
    /// Set the hardware address length field (HLEN).
    pub fn set_hardware_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::HLEN] = v
    }
    /// Set the protocol address length field (PLEN).
    pub fn set_protocol_len(&mut self, v: u8) {
        self.buffer.as_mut()[field::PLEN] = v
    }
    /// Set the operation field (OPER).
    pub fn set_operation(&mut self, op: ArpOperation) {
        self.set(field::OPER, &u16::from(op).to_be_bytes())
    }
    /// Set the sender hardware address field (SHA).
    pub fn set_source_hardware_addr(&mut self, a: EthernetAddress) {
        self.set(field::SHA, &a.0)
    }
    /// Set the sender protocol address field (SPA).
    pub fn set_source_protocol_addr(&mut self, a: Ipv4Addr) {
        self.set(field::SPA, &a.octets())
    }
    /// Set the target hardware address field (THA).
    pub fn set_target_hardware_addr(&mut self, a: EthernetAddress) {
        self.set(field::THA, &a.0)
    }
    /// Set the target protocol address field (TPA).
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.set(field::TPA, &a.octets())
    }
}

/// The meaning of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender's MAC address.
    pub source_hardware_addr: EthernetAddress,
    /// Sender's IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target's MAC address; in a request it is not yet known (RFC 826 leaves it
    /// unspecified; senders usually put zeros).
    pub target_hardware_addr: EthernetAddress,
    /// The IPv4 address being asked for (request) or answered to (reply).
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses an ARP packet (trailing Ethernet padding is ignored).
    /// Non-Ethernet or non-IPv4 → `Unsupported`; Ethernet/IPv4 with address lengths other
    /// than 6/4 → `Malformed` (RFC 826, "Packet format").
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<ArpRepr> {
        packet.check_len()?;
        if packet.hardware_type() != HTYPE_ETHERNET || packet.protocol_type() != PTYPE_IPV4 {
            return Err(Error::Unsupported);
        }
        if packet.hardware_len() != 6 || packet.protocol_len() != 4 {
            return Err(Error::Malformed);
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Emitted length: always [`PACKET_LEN`].
    pub const fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    /// Writes the packet. Panics if the buffer is shorter than [`PACKET_LEN`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut ArpPacket<T>) {
        packet.set_hardware_type(HTYPE_ETHERNET);
        packet.set_protocol_type(PTYPE_IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // "who-has 198.18.0.2 tell 198.18.0.1" from 52:54:00:12:34:56 (a Linux request).
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 198,
        18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 2,
    ];

    fn request_repr() -> ArpRepr {
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]),
            source_protocol_addr: Ipv4Addr::new(198, 18, 0, 1),
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: Ipv4Addr::new(198, 18, 0, 2),
        }
    }

    #[test]
    fn parse_request() {
        let p = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), Ok(request_repr()));
    }

    #[test]
    fn emit_matches_capture() {
        let mut buf = [0xeeu8; 28];
        request_repr().emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn reply_and_unknown_ops() {
        let mut b = REQUEST;
        b[7] = 2;
        let r = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.operation, ArpOperation::Reply);
        b[7] = 9;
        let r = ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r.operation, ArpOperation::Unknown(9));
    }

    #[test]
    fn rejects() {
        assert_eq!(
            ArpPacket::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let parse = |b: [u8; 28]| ArpRepr::parse(&ArpPacket::new_checked(&b[..]).unwrap());
        let mut b = REQUEST;
        b[1] = 6; // IEEE 802 hardware type
        assert_eq!(parse(b), Err(Error::Unsupported));
        let mut b = REQUEST;
        b[2] = 0x86; // IPv6 protocol type
        b[3] = 0xdd;
        assert_eq!(parse(b), Err(Error::Unsupported));
        let mut b = REQUEST;
        b[4] = 8;
        assert_eq!(parse(b), Err(Error::Malformed));
        let mut b = REQUEST;
        b[5] = 16;
        assert_eq!(parse(b), Err(Error::Malformed));
    }
}
