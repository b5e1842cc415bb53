//! Property tests for the wire layer: no parser panics on any byte string, and
//! `parse(emit(repr)) == repr` for valid representations.

use proptest::prelude::*;
use std::net::Ipv4Addr;
use xdptcp_core::wire::{
    checksum, emit_tcp_frame, parse_tcp_frame, parse_tcp_frame_with, tcp_frame_len, ArpOperation,
    ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr, Ipv4Packet,
    Ipv4Repr, SeqNum, TcpFlags, TcpOptions, TcpPacket, TcpRepr, MAX_SACK_BLOCKS,
};

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

/// Arbitrary bytes, plus bytes that start like a TCP/IPv4 frame so the deeper parsers run.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..128),
        (
            proptest::collection::vec(any::<u8>(), 0..120),
            any::<u8>(),
            any::<u8>()
        )
            .prop_map(|(v, ihl, off)| {
                let mut f = vec![0u8; 14];
                f[12] = 0x08;
                let mut ip = vec![0u8; 20];
                ip[0] = 0x40 | (ihl & 0x0f);
                ip[2..4].copy_from_slice(&((20 + v.len()) as u16).to_be_bytes());
                ip[9] = 6;
                ip.extend_from_slice(&v);
                // A valid header checksum (when the IHL fits) so the TCP parser runs too.
                let hl = (ihl & 0x0f) as usize * 4;
                if let Some(b) = ip.get_mut(hl.max(20) + 12) {
                    *b = off;
                }
                if hl <= ip.len() {
                    Ipv4Packet::new_unchecked(&mut ip[..]).fill_checksum();
                }
                f.extend_from_slice(&ip);
                f
            }),
    ]
}

/// Valid TCP options for the given flags: SYN-only options only on SYNs; SACK blocks only
/// as many as fit beside the other options (so the round trip is exact).
fn tcp_repr(payload: &[u8]) -> impl Strategy<Value = TcpRepr<'_>> {
    (
        (
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
        ),
        (any::<u16>(), any::<u16>()),
        (
            proptest::option::of(any::<u16>()),
            proptest::option::of(0u8..=14),
            any::<bool>(),
            proptest::option::of(any::<(u32, u32)>()),
            proptest::collection::vec(any::<(u32, u32)>(), 0..=MAX_SACK_BLOCKS),
        ),
    )
        .prop_map(
            move |((sp, dp, seq, ack, flags), (win, urg), (mss, ws, sp_ok, ts, sacks))| {
                let flags = TcpFlags(flags);
                let syn = flags.syn();
                let mut options = TcpOptions {
                    mss: mss.filter(|_| syn),
                    window_scale: ws.filter(|_| syn),
                    sack_permitted: sp_ok && syn,
                    timestamp: ts,
                    ..TcpOptions::default()
                };
                let mut fixed = 0;
                fixed += if options.mss.is_some() { 4 } else { 0 };
                fixed += if ts.is_some() {
                    12
                } else if options.sack_permitted {
                    4
                } else {
                    0
                };
                fixed += if options.window_scale.is_some() { 4 } else { 0 };
                let fit = if 40 - fixed >= 12 {
                    (40 - fixed - 4) / 8
                } else {
                    0
                };
                for (i, &(l, r)) in sacks.iter().take(fit).enumerate() {
                    options.sack_blocks[i] = (SeqNum(l), SeqNum(r));
                    options.sack_count += 1;
                }
                TcpRepr {
                    src_port: sp,
                    dst_port: dp,
                    seq: SeqNum(seq),
                    ack: SeqNum(ack),
                    flags,
                    window: win,
                    urgent: urg,
                    options,
                    payload,
                }
            },
        )
}

const PAYLOAD: [u8; 64] = [0x5a; 64];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(bytes in frame_bytes(), a in ip(), b in ip(), v in any::<bool>()) {
        let _ = parse_tcp_frame(&bytes);
        let _ = parse_tcp_frame_with(&bytes, false);
        let _ = EthernetRepr::parse(&EthernetFrame::new_unchecked(&bytes[..]));
        let _ = ArpRepr::parse(&ArpPacket::new_unchecked(&bytes[..]));
        let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[..]));
        let _ = TcpRepr::parse(&bytes, a, b, v);
        if bytes.len() > 14 {
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&bytes[14..]));
        }
        if bytes.len() > 34 {
            let _ = TcpRepr::parse(&bytes[34..], a, b, false);
        }
        // Checked views never panic in their accessors.
        if let Ok(p) = Ipv4Packet::new_checked(&bytes[..]) {
            let _ = (p.payload().len(), p.verify_checksum());
        }
        if let Ok(p) = TcpPacket::new_checked(&bytes[..]) {
            let _ = (p.options().len(), p.payload().len(), p.verify_checksum(a, b));
        }
    }

    #[test]
    fn tcp_options_never_panic(opts in proptest::collection::vec(any::<u8>(), 0..=40), syn in any::<bool>()) {
        let mut seg = vec![0u8; 20 + opts.len().div_ceil(4) * 4];
        seg[12] = ((seg.len() / 4) as u8) << 4;
        seg[13] = if syn { 0x02 } else { 0x10 };
        seg[20..20 + opts.len()].copy_from_slice(&opts);
        let a = Ipv4Addr::new(198, 18, 0, 1);
        if let Ok(r) = TcpRepr::parse(&seg, a, a, false) {
            prop_assert!(r.options.sack_count as usize <= MAX_SACK_BLOCKS);
            prop_assert!(r.options.window_scale.unwrap_or(0) <= 14);
            prop_assert!(r.header_len() <= 60);
        }
    }

    #[test]
    fn ethernet_round_trip(src in mac(), dst in mac(), et in any::<u16>()) {
        prop_assume!(et != 0x8100 && et != 0x88a8);
        let r = EthernetRepr { src_addr: src, dst_addr: dst, ethertype: EtherType::from(et) };
        let mut buf = [0u8; 14];
        r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn arp_round_trip(op in any::<u16>(), sha in mac(), spa in ip(), tha in mac(), tpa in ip()) {
        let r = ArpRepr {
            operation: ArpOperation::from(op),
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        };
        let mut buf = [0u8; 28];
        r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn ipv4_round_trip(
        src in ip(), dst in ip(), protocol in any::<u8>(), payload_len in 0usize..1500,
        ttl in any::<u8>(), dscp_ecn in any::<u8>(), ident in any::<u16>(), dont_frag in any::<bool>(),
    ) {
        let r = Ipv4Repr { src_addr: src, dst_addr: dst, protocol, payload_len, ttl, dscp_ecn, ident, dont_frag };
        let mut buf = vec![0u8; 20 + payload_len];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
        prop_assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn tcp_round_trip(
        repr in (0usize..=PAYLOAD.len()).prop_flat_map(|n| tcp_repr(&PAYLOAD[..n])),
        src in ip(), dst in ip(),
    ) {
        let mut buf = [0u8; 60 + PAYLOAD.len()];
        let n = repr.buffer_len();
        prop_assert!(repr.header_len() <= 60 && repr.header_len() % 4 == 0);
        repr.emit(&mut buf, src, dst);
        prop_assert_eq!(TcpRepr::parse(&buf[..n], src, dst, true), Ok(repr));
    }

    #[test]
    fn frame_round_trip(
        repr in (0usize..=PAYLOAD.len()).prop_flat_map(|n| tcp_repr(&PAYLOAD[..n])),
        s in mac(), d in mac(), src in ip(), dst in ip(), ttl in any::<u8>(),
    ) {
        let eth = EthernetRepr { src_addr: s, dst_addr: d, ethertype: EtherType::Ipv4 };
        let mut buf = [0u8; 14 + 20 + 60 + PAYLOAD.len()];
        let n = emit_tcp_frame(&mut buf, &eth, src, dst, ttl, &repr);
        prop_assert_eq!(n, tcp_frame_len(&repr));
        let f = parse_tcp_frame(&buf[..n]).unwrap();
        prop_assert_eq!(f.eth, eth);
        prop_assert_eq!((f.ip.src_addr, f.ip.dst_addr, f.ip.ttl), (src, dst, ttl));
        prop_assert_eq!(f.tcp, repr);
    }

    #[test]
    fn incremental_checksum_equals_recompute(
        mut data in proptest::collection::vec(any::<u8>(), 8..200),
        at in any::<usize>(), new16 in any::<u16>(), new32 in any::<u32>(),
    ) {
        data[0] |= 1; // a non-zero word: the sum is never zero, so 0x0000/0xffff cannot tie
        let words = data.len() / 2;
        let i = 1 + at % (words - 1).max(1);
        prop_assume!(2 * i + 2 <= data.len());
        let csum = checksum::complement(checksum::data(&data));
        let old = u16::from_be_bytes([data[2 * i], data[2 * i + 1]]);
        data[2 * i..2 * i + 2].copy_from_slice(&new16.to_be_bytes());
        let c1 = checksum::update(csum, old, new16);
        prop_assert_eq!(c1, checksum::complement(checksum::data(&data)));
        // A 32-bit field at an even offset after the first word.
        let j = 2 + 2 * (at % ((data.len() - 6) / 2 + 1));
        prop_assume!(j + 4 <= data.len());
        let old32 = u32::from_be_bytes([data[j], data[j + 1], data[j + 2], data[j + 3]]);
        data[j..j + 4].copy_from_slice(&new32.to_be_bytes());
        let c2 = checksum::update_u32(c1, old32, new32);
        prop_assert_eq!(c2, checksum::complement(checksum::data(&data)));
    }
}
