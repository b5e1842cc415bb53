use super::*;
use crate::wire::icmpv6::{Icmpv6Error, QuotedTcp};
use crate::wire::{parse_tcp_frame, EthernetAddress, SeqNum, TcpFlags, TcpOptions};

const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);
const IP_A: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const IP_B: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);

fn eth_header(ethertype: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 0x0b, 2, 0, 0, 0, 0, 0x0a];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A Linux SYN frame over IPv6: Ethernet (A -> B), 2001:2::1 -> 2001:2::2 (flow label
/// 0x5b3a1, hop limit 64), TCP 45678 -> 80 "mss 1440,sackOK,TS val 16909060 ecr 0,nop,
/// wscale 7", checksum 0xeb79 computed independently (see ipv6's tests).
fn linux_syn6() -> Vec<u8> {
    let mut f = eth_header(0x86dd);
    f.extend_from_slice(&[0x60, 0x05, 0xb3, 0xa1, 0x00, 0x28, 0x06, 0x40]);
    f.extend_from_slice(&IP_A.octets());
    f.extend_from_slice(&IP_B.octets());
    f.extend_from_slice(&[
        0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfd, 0x20, 0xeb,
        0x79, 0, 0, 2, 4, 5, 0xa0, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    f
}

#[test]
fn parse_linux_syn6_frame() {
    let f = linux_syn6();
    let t = parse_tcp6_frame_with(&f, true).unwrap();
    assert_eq!((t.eth.src_addr, t.eth.dst_addr), (MAC_A, MAC_B));
    assert_eq!(t.eth.ethertype, EtherType::Unknown(0x86dd));
    assert_eq!((t.ip.src_addr, t.ip.dst_addr), (IP_A, IP_B));
    assert_eq!(
        (t.ip.hop_limit, t.ip.flow_label, t.ip.payload_len),
        (64, 0x5b3a1, 40)
    );
    assert_eq!((t.tcp.src_port, t.tcp.dst_port), (45678, 80));
    assert_eq!(t.tcp.flags, TcpFlags::SYN);
    assert_eq!(t.tcp.options.mss, Some(1440));
    assert_eq!(t.tcp.options.timestamp, Some((0x01020304, 0)));
    // Either family through one call; the IPv4-only parser keeps rejecting IPv6.
    assert_eq!(parse_any_tcp_frame_with(&f, true), Ok(AnyTcpFrame::V6(t)));
    assert_eq!(parse_tcp_frame(&f), Err(Error::Unsupported));
}

#[test]
fn any_frame_keeps_ipv4() {
    let mut f = eth_header(0x0800);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x92, 0x4e, 198, 18, 0, 1, 198,
        18, 0, 2,
    ]);
    f.extend_from_slice(&[
        0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfa, 0xf0, 0xa1,
        0x76, 0, 0, 2, 4, 5, 0xb4, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
    ]);
    let v4 = parse_tcp_frame(&f).unwrap();
    assert_eq!(parse_any_tcp_frame_with(&f, true), Ok(AnyTcpFrame::V4(v4)));
    assert_eq!(parse_tcp6_frame_with(&f, true), Err(Error::Unsupported));
    let mut arp = f.clone();
    arp[13] = 0x06;
    assert_eq!(
        parse_any_tcp_frame_with(&arp, true),
        Err(Error::Unsupported)
    );
    assert_eq!(
        parse_any_tcp_frame_with(&f[..13], true),
        Err(Error::Truncated)
    );
}

#[test]
fn emit_round_trip_with_payload_and_padding() {
    let f = linux_syn6();
    let syn = parse_tcp6_frame_with(&f, true).unwrap();
    let data = TcpRepr {
        flags: TcpFlags::ACK | TcpFlags::PSH,
        payload: b"GET /",
        ..syn.tcp
    };
    let mut buf = [0x55u8; 160];
    let n = emit_tcp6_frame(&mut buf, &syn.eth, IP_A, IP_B, 63, 0x5b3a1, &data);
    assert_eq!(n, tcp6_frame_len(&data));
    // Trailing bytes (Ethernet padding) after the payload length are not data.
    let t = parse_tcp6_frame_with(&buf[..n + 7], true).unwrap();
    assert_eq!(t.tcp.payload, b"GET /");
    assert_eq!((t.ip.hop_limit, t.ip.flow_label), (63, 0x5b3a1));
    assert_eq!(t.tcp.options.mss, None); // SYN-only options not on a non-SYN
                                         // The SYN itself re-emits byte for byte (Linux's layout, same flow label).
    let mut out = vec![0u8; f.len()];
    let n = emit_tcp6_frame(&mut out, &syn.eth, IP_A, IP_B, 64, 0x5b3a1, &syn.tcp);
    assert_eq!(&out[..n], &f[..]);
    // A bare ACK: 74 bytes, no padding needed (minimum 60).
    let ack = TcpRepr {
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
    assert_eq!(
        emit_tcp6_frame(&mut buf, &syn.eth, IP_B, IP_A, 64, 1, &ack),
        74
    );
    assert_eq!(parse_tcp6_frame_with(&buf[..74], true).unwrap().tcp, ack);
}

#[test]
fn extension_headers_before_tcp() {
    // Hop-by-hop (PadN 4) then the segment: found, checksum verified over the TCP length.
    let f = linux_syn6();
    let mut v = f[..14 + 40].to_vec();
    v[14 + 6] = ipv6::NEXT_HOP_BY_HOP;
    v[14 + 5] = 48;
    v.extend_from_slice(&[NEXT_TCP, 0, 1, 4, 0, 0, 0, 0]);
    v.extend_from_slice(&f[14 + 40..]);
    let t = parse_tcp6_frame_with(&v, true).unwrap();
    assert_eq!((t.ip.payload_len, t.tcp.dst_port), (40, 80));
}

#[test]
fn rejections() {
    let f = linux_syn6();
    assert_eq!(parse_tcp6_frame_with(&f[..10], true), Err(Error::Truncated));
    assert_eq!(
        parse_tcp6_frame_with(&f[..14 + 39], true),
        Err(Error::Truncated)
    );
    assert_eq!(
        parse_tcp6_frame_with(&f[..f.len() - 1], true),
        Err(Error::Truncated)
    );
    // VLAN tag, as for IPv4.
    let mut b = f.clone();
    b[12..14].copy_from_slice(&[0x81, 0x00]);
    assert_eq!(parse_any_tcp_frame_with(&b, true), Err(Error::Unsupported));
    // UDP upper layer.
    let mut b = f.clone();
    b[14 + 6] = 17;
    assert_eq!(parse_tcp6_frame_with(&b, true), Err(Error::Unsupported));
    // A first fragment for TCP: not reassembled (the XDP program drops it and counts).
    let mut b = f[..14 + 40].to_vec();
    b[14 + 6] = ipv6::NEXT_FRAGMENT;
    b[14 + 5] = 48;
    b.extend_from_slice(&[NEXT_TCP, 0, 0, 1, 0, 0, 0, 7]);
    b.extend_from_slice(&f[14 + 40..]);
    assert_eq!(parse_tcp6_frame_with(&b, true), Err(Error::Unsupported));
    // Corrupted TCP byte: checksum error unless verification is off.
    let mut b = f.clone();
    b[14 + 40 + 15] ^= 1;
    assert_eq!(parse_tcp6_frame_with(&b, true), Err(Error::Checksum));
    assert_eq!(parse_tcp6_frame_with(&b, false).unwrap().tcp.window, 0xfd21);
    // Bad TCP data offset (3).
    let mut b = f.clone();
    b[14 + 40 + 12] = 0x30;
    assert_eq!(parse_tcp6_frame_with(&b, false), Err(Error::Malformed));
}

#[test]
fn packet_too_big_frame() {
    // Router 2001:2::fe -> the stack 2001:2::1: Packet Too Big, MTU 1400, quoting the stack's
    // segment 2001:2::1:80 -> 2001:2::2:45678 seq 0xa1b2c3d4 (checksum 0xe2d3 from Python;
    // the same message as icmpv6's tests).
    let mut msg = vec![2, 0, 0xe2, 0xd3, 0, 0, 0x05, 0x78];
    msg.extend_from_slice(&[0x60, 0x01, 0x23, 0x45, 0x05, 0xa8, 0x06, 0x40]);
    msg.extend_from_slice(&IP_A.octets());
    msg.extend_from_slice(&IP_B.octets());
    msg.extend_from_slice(&[
        0x00, 0x50, 0xb2, 0x6e, 0xa1, 0xb2, 0xc3, 0xd4, 0x01, 0x02, 0x03, 0x04, 0x50, 0x18, 0x01,
        0xf6, 0x11, 0x11, 0x00, 0x00,
    ]);
    msg.extend_from_slice(&[0x61; 8]);
    let mut f = eth_header(0x86dd);
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, msg.len() as u8, NEXT_ICMPV6, 255]);
    f.extend_from_slice(&ROUTER.octets());
    f.extend_from_slice(&IP_A.octets());
    f.extend_from_slice(&msg);
    let e = parse_icmpv6_error_frame(&f, true).unwrap();
    assert_eq!((e.ip.src_addr, e.ip.dst_addr), (ROUTER, IP_A));
    assert_eq!(e.icmp.error, Icmpv6Error::PacketTooBig { mtu: 1400 });
    assert_eq!(
        e.icmp.quoted,
        QuotedTcp {
            src_addr: IP_A,
            dst_addr: IP_B,
            src_port: 80,
            dst_port: 45678,
            seq: SeqNum(0xa1b2c3d4),
        }
    );
    // Not TCP for the TCP parser; a TCP frame is not an ICMPv6 error.
    assert_eq!(parse_tcp6_frame_with(&f, true), Err(Error::Unsupported));
    assert_eq!(
        parse_icmpv6_error_frame(&linux_syn6(), true),
        Err(Error::Unsupported)
    );
    let mut b = f.clone();
    b[14 + 40 + 20] ^= 1;
    assert_eq!(parse_icmpv6_error_frame(&b, true), Err(Error::Checksum));
}
