//! Whole-frame helpers for the worker's fast path: Ethernet + IPv4 + TCP parsed in one call
//! on receive, and emitted in one call into a UMEM frame on transmit. No allocation.

use super::ethernet::{self, EtherType, EthernetFrame, EthernetRepr};
use super::ipv4::{self, Ipv4Packet, Ipv4Repr, PROTO_TCP};
use super::{Error, Result, TcpRepr};
use std::net::Ipv4Addr;

/// A received TCP/IPv4/Ethernet frame, checked. `tcp.payload` borrows the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpFrame<'a> {
    /// The Ethernet header (EtherType is IPv4).
    pub eth: EthernetRepr,
    /// The IPv4 header (protocol is TCP, unfragmented).
    pub ip: Ipv4Repr,
    /// The TCP segment; its payload borrows the frame.
    pub tcp: TcpRepr<'a>,
}

/// Parses a TCP segment in an Ethernet frame, verifying the IPv4 and TCP checksums.
/// Non-IPv4 EtherTypes, VLAN tags, IP fragments and non-TCP protocols are `Unsupported`;
/// see [`EthernetRepr::parse`], [`Ipv4Repr::parse`] and [`TcpRepr::parse`] for the rest.
pub fn parse_tcp_frame(frame: &[u8]) -> Result<TcpFrame<'_>> {
    parse_tcp_frame_with(frame, true)
}

/// [`parse_tcp_frame`] with the TCP checksum check optional (for a NIC that verified it).
/// The IPv4 header checksum is always verified.
pub fn parse_tcp_frame_with(frame: &[u8], verify_tcp_checksum: bool) -> Result<TcpFrame<'_>> {
    let eth_view = EthernetFrame::new_checked(frame)?;
    let eth = EthernetRepr::parse(&eth_view)?;
    if eth.ethertype != EtherType::Ipv4 {
        return Err(Error::Unsupported);
    }
    let ip_bytes = &frame[ethernet::HEADER_LEN..];
    let ip_view = Ipv4Packet::new_checked(ip_bytes)?;
    let ip = Ipv4Repr::parse(&ip_view)?;
    if ip.protocol != PROTO_TCP {
        return Err(Error::Unsupported);
    }
    // Slice from the original frame so the payload borrows it for 'a.
    let hl = ip_view.header_len();
    let seg = &ip_bytes[hl..hl + ip.payload_len];
    let tcp = TcpRepr::parse(seg, ip.src_addr, ip.dst_addr, verify_tcp_checksum)?;
    Ok(TcpFrame { eth, ip, tcp })
}

/// Bytes [`emit_tcp_frame`] writes for `tcp`: Ethernet + 20-byte IPv4 header + segment.
pub fn tcp_frame_len(tcp: &TcpRepr) -> usize {
    ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp.buffer_len()
}

/// Writes a full frame into `buf` and returns its length ([`tcp_frame_len`]).
/// The EtherType is always IPv4 (`eth.ethertype` is ignored); the IPv4 header has no
/// options, DF set, ident 0 (RFC 6864 §4.1: atomic datagrams need no unique ident) and
/// DSCP/ECN 0. Panics if `buf` is shorter than [`tcp_frame_len`] (a caller bug).
pub fn emit_tcp_frame(
    buf: &mut [u8],
    eth: &EthernetRepr,
    ip_src: Ipv4Addr,
    ip_dst: Ipv4Addr,
    ttl: u8,
    tcp: &TcpRepr,
) -> usize {
    let len = tcp_frame_len(tcp);
    assert!(
        buf.len() >= len,
        "frame buffer {} < {} bytes",
        buf.len(),
        len
    );
    let buf = &mut buf[..len];
    let eth = EthernetRepr {
        ethertype: EtherType::Ipv4,
        ..*eth
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *buf));
    let ip = Ipv4Repr {
        src_addr: ip_src,
        dst_addr: ip_dst,
        protocol: PROTO_TCP,
        payload_len: tcp.buffer_len(),
        ttl,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    };
    let (_, ip_buf) = buf.split_at_mut(ethernet::HEADER_LEN);
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut *ip_buf));
    tcp.emit(&mut ip_buf[ipv4::HEADER_LEN..], ip_src, ip_dst);
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EthernetAddress, SeqNum, TcpFlags, TcpOptions};

    const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
    const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);
    const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A Linux SYN frame: Ethernet (B -> A), IPv4 198.18.0.1 -> .2 (id 0x1c46, DF, TTL 64,
    /// header checksum 0x924e) and TCP 45678 -> 80 with "mss 1460,sackOK,TS,nop,wscale 7"
    /// (checksum 0xa176); both checksums computed independently.
    fn linux_syn() -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a, 0x08, 0x00];
        f.extend_from_slice(&[
            0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x92, 0x4e, 198, 18, 0, 1,
            198, 18, 0, 2,
        ]);
        f.extend_from_slice(&[
            0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0,
            0xa1, 0x76, 0, 0, 2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
        ]);
        f
    }

    #[test]
    fn parse_linux_syn_frame() {
        let f = linux_syn();
        let t = parse_tcp_frame(&f).unwrap();
        assert_eq!(t.eth.src_addr, MAC_A);
        assert_eq!(t.eth.dst_addr, MAC_B);
        assert_eq!((t.ip.src_addr, t.ip.dst_addr, t.ip.ttl), (IP_A, IP_B, 64));
        assert_eq!((t.tcp.src_port, t.tcp.dst_port), (45678, 80));
        assert_eq!(t.tcp.flags, TcpFlags::SYN);
        assert_eq!(t.tcp.options.mss, Some(1460));
        assert_eq!(t.tcp.options.window_scale, Some(7));
        assert!(t.tcp.options.sack_permitted);
        assert_eq!(t.tcp.options.timestamp, Some((0x01020304, 0)));
    }

    #[test]
    fn ethernet_padding_not_payload() {
        // A bare ACK is 54 bytes; Ethernet pads it to 60. The padding must not become data.
        let tcp = TcpRepr {
            src_port: 80,
            dst_port: 45678,
            seq: SeqNum(1),
            ack: SeqNum(2),
            flags: TcpFlags::ACK,
            window: 100,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        let eth = EthernetRepr {
            src_addr: MAC_A,
            dst_addr: MAC_B,
            ethertype: EtherType::Ipv4,
        };
        let mut buf = [0x55u8; 60];
        assert_eq!(emit_tcp_frame(&mut buf, &eth, IP_A, IP_B, 64, &tcp), 54);
        let t = parse_tcp_frame(&buf).unwrap();
        assert_eq!(t.tcp, tcp);
        assert_eq!(t.ip.payload_len, 20);
    }

    #[test]
    fn emit_round_trip_with_payload() {
        let f = linux_syn();
        let syn = parse_tcp_frame(&f).unwrap();
        let data = TcpRepr {
            flags: TcpFlags::ACK | TcpFlags::PSH,
            payload: b"GET /",
            ..syn.tcp
        };
        let mut buf = [0u8; 128];
        let n = emit_tcp_frame(&mut buf, &syn.eth, IP_A, IP_B, 63, &data);
        assert_eq!(n, tcp_frame_len(&data));
        let t = parse_tcp_frame(&buf[..n]).unwrap();
        assert_eq!(t.tcp.payload, b"GET /");
        assert_eq!(t.ip.ttl, 63);
        assert!(t.ip.dont_frag);
        // SYN-only options are not emitted on a non-SYN.
        assert_eq!(t.tcp.options.mss, None);
        assert_eq!(t.tcp.options.timestamp, syn.tcp.options.timestamp);
    }

    #[test]
    fn rejections() {
        let f = linux_syn();
        assert_eq!(parse_tcp_frame(&f[..10]), Err(Error::Truncated));
        assert_eq!(parse_tcp_frame(&f[..30]), Err(Error::Truncated));
        // Segment cut short: IPv4 total length exceeds the frame.
        assert_eq!(parse_tcp_frame(&f[..70]), Err(Error::Truncated));
        // ARP EtherType.
        let mut b = f.clone();
        b[13] = 0x06;
        assert_eq!(parse_tcp_frame(&b), Err(Error::Unsupported));
        // VLAN tag.
        let mut b = f.clone();
        b[12] = 0x81;
        b[13] = 0x00;
        assert_eq!(parse_tcp_frame(&b), Err(Error::Unsupported));
        // UDP (protocol 17), header checksum fixed up incrementally (RFC 1624).
        let mut b = f.clone();
        b[14 + 9] = 17;
        let old = u16::from_be_bytes([b[24], b[25]]);
        let new = crate::wire::checksum::update(old, 0x4006, 0x4011);
        b[24..26].copy_from_slice(&new.to_be_bytes());
        assert_eq!(parse_tcp_frame(&b), Err(Error::Unsupported));
        // Corrupted TCP byte: checksum error unless verification is off.
        let mut b = f.clone();
        b[14 + 20 + 15] ^= 1; // window low byte
        assert_eq!(parse_tcp_frame(&b), Err(Error::Checksum));
        assert_eq!(parse_tcp_frame_with(&b, false).unwrap().tcp.window, 0xfaf1);
        // Corrupted IPv4 header byte.
        let mut b = f.clone();
        b[14 + 8] = 1; // TTL
        assert_eq!(parse_tcp_frame(&b), Err(Error::Checksum));
        // Fragment (MF set) with a correct header checksum.
        let mut b = f.clone();
        b[14 + 6] = 0x20;
        Ipv4Packet::new_unchecked(&mut b[14..]).fill_checksum();
        assert_eq!(parse_tcp_frame(&b), Err(Error::Unsupported));
        // Bad TCP data offset (3) with a correct checksum.
        let mut b = f.clone();
        b[14 + 20 + 12] = 0x30;
        assert_eq!(parse_tcp_frame(&b), Err(Error::Malformed));
    }
}
