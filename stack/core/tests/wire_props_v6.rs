//! Property tests for the IPv6 wire layer: no parser panics on any byte string (also with
//! chains of extension headers and ICMPv6 errors built to reach the deeper parsers), and
//! `parse(emit(repr)) == repr`.

use proptest::prelude::*;
use std::net::Ipv6Addr;
use xdptcp_core::wire::icmpv6::Icmpv6ErrorRepr;
use xdptcp_core::wire::ipv6::{self, walk_extensions};
use xdptcp_core::wire::{
    emit_tcp6_frame, parse_any_tcp_frame_with, parse_icmpv6_error_frame, parse_tcp6_frame_with,
    tcp6_frame_len, EtherType, EthernetAddress, EthernetRepr, Icmpv6Packet, Ipv6Packet, Ipv6Repr,
    SeqNum, TcpFlags, TcpOptions, TcpRepr,
};

fn ip6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// Next-header values that lead somewhere: the extension headers, TCP, ICMPv6, and others.
fn next_header() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(0u8),
        Just(43u8),
        Just(44u8),
        Just(60u8),
        Just(6u8),
        Just(58u8),
        any::<u8>()
    ]
}

/// An Ethernet + IPv6 frame whose payload is a chain of extension headers (random content,
/// next headers drawn from [`next_header`]) and random bytes; the payload length is right
/// or random.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        next_header(),
        proptest::collection::vec(
            (
                next_header(),
                0u8..4,
                proptest::collection::vec(any::<u8>(), 0..40),
            ),
            0..10,
        ),
        proptest::collection::vec(any::<u8>(), 0..80),
        proptest::option::of(any::<u16>()),
        (ip6(), ip6()),
    )
        .prop_map(|(first, exts, tail, plen, (src, dst))| {
            let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, first, 64]);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&dst.octets());
            for (nh, len, mut body) in exts {
                let size = (len as usize + 1) * 8;
                body.resize(size - 2, 0);
                f.push(nh);
                f.push(len);
                f.extend_from_slice(&body);
            }
            f.extend_from_slice(&tail);
            let pl = plen.unwrap_or((f.len() - 54) as u16);
            f[18..20].copy_from_slice(&pl.to_be_bytes());
            f
        })
}

fn tcp_repr(payload: &[u8]) -> impl Strategy<Value = TcpRepr<'_>> {
    (
        (any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()),
        (
            any::<u8>(),
            any::<u16>(),
            proptest::option::of(any::<(u32, u32)>()),
        ),
    )
        .prop_map(move |((sp, dp, seq, ack), (flags, win, ts))| TcpRepr {
            src_port: sp,
            dst_port: dp,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags: TcpFlags(flags),
            window: win,
            urgent: 0,
            options: TcpOptions {
                timestamp: ts,
                ..TcpOptions::default()
            },
            payload,
        })
}

const PAYLOAD: [u8; 64] = [0x5a; 64];

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(bytes in frame_bytes(), a in ip6(), b in ip6(), v in any::<bool>()) {
        let _ = parse_tcp6_frame_with(&bytes, v);
        let _ = parse_any_tcp_frame_with(&bytes, v);
        let _ = parse_icmpv6_error_frame(&bytes, v);
        let ip = &bytes[14..];
        let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(ip));
        if let Ok(p) = Ipv6Packet::new_checked(ip) {
            let _ = (p.payload().len(), p.upper_layer(), p.flow_label(), p.traffic_class());
        }
        let _ = walk_extensions(bytes[20], &bytes[54.min(bytes.len())..]);
        // The same bytes as an ICMPv6 message and as a quoted packet.
        let _ = Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(ip), a, b, v);
        let mut err = vec![2u8, 0, 0, 0, 0, 0, 5, 0];
        err.extend_from_slice(ip);
        let _ = Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(&err[..]), a, b, false);
        let _ = TcpRepr::parse_v6(ip, a, b, v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..160), v in any::<bool>()) {
        let _ = parse_any_tcp_frame_with(&bytes, v);
        let _ = parse_icmpv6_error_frame(&bytes, v);
        let _ = Ipv6Repr::parse(&Ipv6Packet::new_unchecked(&bytes[..]));
        for first in [0u8, 43, 44, 60] {
            let _ = walk_extensions(first, &bytes);
        }
    }

    #[test]
    fn ipv6_round_trip(
        src in ip6(), dst in ip6(), nh in any::<u8>(), payload_len in 0usize..1500,
        hop_limit in any::<u8>(), traffic_class in any::<u8>(), flow_label in 0u32..=0xfffff,
    ) {
        // Only upper layers (no extension header) and addresses the parser accepts.
        prop_assume!(![0u8, 43, 44, 50, 51, 60].contains(&nh));
        prop_assume!(!src.is_multicast() && !src.is_loopback() && !dst.is_loopback());
        let r = Ipv6Repr { src_addr: src, dst_addr: dst, next_header: nh, payload_len, hop_limit, traffic_class, flow_label };
        let mut buf = vec![0u8; 40 + payload_len];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn frame6_round_trip(
        repr in (0usize..=PAYLOAD.len()).prop_flat_map(|n| tcp_repr(&PAYLOAD[..n])),
        src in ip6(), dst in ip6(), hop in any::<u8>(), label in 0u32..=0xfffff,
    ) {
        prop_assume!(!src.is_multicast() && !src.is_loopback() && !dst.is_loopback());
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EtherType::Unknown(EtherType::IPV6),
        };
        let mut buf = [0u8; 14 + 40 + 60 + PAYLOAD.len()];
        let n = emit_tcp6_frame(&mut buf, &eth, src, dst, hop, label, &repr);
        prop_assert_eq!(n, tcp6_frame_len(&repr));
        let f = parse_tcp6_frame_with(&buf[..n], true).unwrap();
        prop_assert_eq!(f.eth, eth);
        prop_assert_eq!((f.ip.src_addr, f.ip.dst_addr, f.ip.hop_limit, f.ip.flow_label), (src, dst, hop, label));
        prop_assert_eq!(f.tcp, repr);
        prop_assert!(f.ip.payload_len == repr.buffer_len() && ipv6::HEADER_LEN == 40);
    }
}
