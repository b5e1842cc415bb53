//! Whole-frame helpers for IPv6, beside [`super::frame`]'s IPv4 ones (which keep rejecting
//! IPv6 as `Unsupported`): Ethernet + IPv6 (extension headers walked) + TCP parsed in one
//! call, either family through [`parse_any_tcp_frame_with`], ICMPv6 errors about TCP, and
//! emitting a TCP/IPv6 frame into a UMEM frame. VLAN-tagged frames are `Unsupported`, as
//! for IPv4. No allocation.

use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::frame::{parse_tcp_frame_with, TcpFrame};
use super::icmpv6::{Icmpv6ErrorRepr, Icmpv6Packet};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr, NEXT_ICMPV6, NEXT_TCP};
use super::{Error, Result, TcpRepr};
use std::net::Ipv6Addr;

/// A received TCP/IPv6/Ethernet frame, checked. `tcp.payload` borrows the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tcp6Frame<'a> {
    /// The Ethernet header (EtherType 0x86dd).
    pub eth: EthernetRepr,
    /// The IPv6 header; `next_header` is TCP, `payload_len` the segment's length.
    pub ip: Ipv6Repr,
    /// The TCP segment; its payload borrows the frame.
    pub tcp: TcpRepr<'a>,
}

/// A received TCP frame of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyTcpFrame<'a> {
    /// TCP over IPv4 (as [`super::parse_tcp_frame_with`] returns it).
    V4(TcpFrame<'a>),
    /// TCP over IPv6.
    V6(Tcp6Frame<'a>),
}

/// A received ICMPv6 error about a TCP segment, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Icmpv6ErrorFrame {
    /// The Ethernet header.
    pub eth: EthernetRepr,
    /// The outer IPv6 header (`next_header` 58).
    pub ip: Ipv6Repr,
    /// The error and the segment it quotes.
    pub icmp: Icmpv6ErrorRepr,
}

/// The Ethernet header and the IPv6 packet after it, for EtherType 0x86dd only.
fn ipv6_part(frame: &[u8]) -> Result<(EthernetRepr, Ipv6Repr, &[u8])> {
    let eth = EthernetRepr::parse(&EthernetFrame::new_checked(frame)?)?;
    if eth.ethertype != EtherType::Unknown(EtherType::IPV6) {
        return Err(Error::Unsupported);
    }
    let ip_bytes = &frame[ethernet::HEADER_LEN..];
    let view = Ipv6Packet::new_checked(ip_bytes)?;
    let ip = Ipv6Repr::parse(&view)?;
    // The upper layer is the payload's last `ip.payload_len` bytes (extension headers
    // before it; Ethernet padding after the payload length excluded).
    let end = ipv6::HEADER_LEN + view.payload_len() as usize;
    Ok((eth, ip, &ip_bytes[end - ip.payload_len..end]))
}

/// Parses a TCP segment in an Ethernet frame carrying IPv6, verifying the TCP checksum
/// (mandatory in IPv6, RFC 8200 §8.1) unless `verify_tcp_checksum` is off (a NIC verified
/// it). Other EtherTypes, VLAN tags, fragments and other upper layers are `Unsupported`;
/// see [`Ipv6Repr::parse`] and [`TcpRepr::parse_v6`] for the rest.
pub fn parse_tcp6_frame_with(frame: &[u8], verify_tcp_checksum: bool) -> Result<Tcp6Frame<'_>> {
    let (eth, ip, seg) = ipv6_part(frame)?;
    if ip.next_header != NEXT_TCP {
        return Err(Error::Unsupported);
    }
    let tcp = TcpRepr::parse_v6(seg, ip.src_addr, ip.dst_addr, verify_tcp_checksum)?;
    Ok(Tcp6Frame { eth, ip, tcp })
}

/// A TCP frame of either family: IPv4 as [`super::parse_tcp_frame_with`], IPv6 as
/// [`parse_tcp6_frame_with`]; any other EtherType is `Unsupported`.
pub fn parse_any_tcp_frame_with(
    frame: &[u8],
    verify_tcp_checksum: bool,
) -> Result<AnyTcpFrame<'_>> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype_raw() == EtherType::IPV6 {
        parse_tcp6_frame_with(frame, verify_tcp_checksum).map(AnyTcpFrame::V6)
    } else {
        parse_tcp_frame_with(frame, verify_tcp_checksum).map(AnyTcpFrame::V4)
    }
}

/// Parses an ICMPv6 error (Destination Unreachable, Packet Too Big, Time Exceeded) quoting
/// a TCP segment, verifying the ICMPv6 checksum if `verify_checksum`; see
/// [`Icmpv6ErrorRepr::parse`]. Everything else is `Unsupported`.
pub fn parse_icmpv6_error_frame(frame: &[u8], verify_checksum: bool) -> Result<Icmpv6ErrorFrame> {
    let (eth, ip, msg) = ipv6_part(frame)?;
    if ip.next_header != NEXT_ICMPV6 {
        return Err(Error::Unsupported);
    }
    let icmp = Icmpv6ErrorRepr::parse(
        &Icmpv6Packet::new_unchecked(msg),
        ip.src_addr,
        ip.dst_addr,
        verify_checksum,
    )?;
    Ok(Icmpv6ErrorFrame { eth, ip, icmp })
}

/// Bytes [`emit_tcp6_frame`] writes for `tcp`: Ethernet + 40-byte IPv6 header + segment.
pub fn tcp6_frame_len(tcp: &TcpRepr) -> usize {
    ethernet::HEADER_LEN + ipv6::HEADER_LEN + tcp.buffer_len()
}

/// Writes a full TCP/IPv6 frame into `buf` and returns its length ([`tcp6_frame_len`]).
/// The EtherType is always IPv6 (`eth.ethertype` is ignored); no extension headers, traffic
/// class 0, the given hop limit and flow label (see [`ipv6::FlowLabels`]). Panics if `buf`
/// is shorter than [`tcp6_frame_len`] (a caller bug).
pub fn emit_tcp6_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip_src: Ipv6Addr,
    ip_dst: Ipv6Addr,
    hop_limit: u8,
    flow_label: u32,
    tcp: &TcpRepr,
) -> usize {
    let len = tcp6_frame_len(tcp);
    assert!(
        buf.len() >= len,
        "frame buffer {} < {} bytes",
        buf.len(),
        len
    );
    let buf = &mut buf[..len];
    let eth = EthernetRepr {
        ethertype: EtherType::Unknown(EtherType::IPV6),
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *buf));
    let ip = Ipv6Repr {
        src_addr: ip_src,
        dst_addr: ip_dst,
        next_header: NEXT_TCP,
        payload_len: tcp.buffer_len(),
        hop_limit,
        traffic_class: 0,
        flow_label,
    };
    let (_, ip_buf) = buf.split_at_mut(ethernet::HEADER_LEN);
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *ip_buf));
    tcp.emit_v6(&mut ip_buf[ipv6::HEADER_LEN..], ip_src, ip_dst);
    len
}

#[cfg(test)]
mod tests;
