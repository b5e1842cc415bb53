use super::*;
use crate::wire::EthernetAddress;
use proptest::prelude::*;

const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

/// The start of a segment the stack sent: IPv4 198.18.0.1 -> 198.19.0.2, total length
/// 1500, DF, TTL 63 (as the router saw it), protocol TCP; TCP 40001 -> 5201, seq 0x01020304,
/// ack 0x0a0b0c0d (beyond the 8 quoted bytes routers usually add: Linux quotes 28+).
fn quote() -> Vec<u8> {
    let mut q = vec![
        0x45, 0x00, 0x05, 0xdc, 0x00, 0x00, 0x40, 0x00, 63, 6, 0, 0, 198, 18, 0, 1, 198, 19, 0, 2,
    ];
    q.extend_from_slice(&[0x9c, 0x41, 0x14, 0x51, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]);
    q
}

/// An independent 16-bit-at-a-time ones' complement sum with the checksum word skipped.
fn reference_checksum(m: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for (i, c) in m.chunks(2).enumerate() {
        if i != 1 {
            s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
        }
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// ICMP header bytes + quote, checksum filled by the reference sum.
fn message(ty: u8, code: u8, rest: [u8; 4], quote: &[u8]) -> Vec<u8> {
    let mut m = vec![ty, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(quote);
    let c = reference_checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn frag_needed(mtu: u16) -> Vec<u8> {
    let b = mtu.to_be_bytes();
    message(3, 4, [0, 0, b[0], b[1]], &quote())
}

/// RFC 1191 §4: "fragmentation needed and DF set" with the next-hop MTU in the low 16 bits
/// of the second word; the quote gives the flow and the in-flight sequence number.
#[test]
fn parse_frag_needed() {
    let r = Icmpv4ErrorRepr::parse(&frag_needed(1280)).unwrap();
    assert_eq!(
        r.message,
        Icmpv4Message::DstUnreachable {
            code: DstUnreachable::FragNeeded,
            next_hop_mtu: 1280
        }
    );
    assert_eq!(
        (r.quoted.src_addr, r.quoted.dst_addr, r.quoted.protocol),
        (STACK, PEER, PROTO_TCP)
    );
    assert_eq!(
        r.quoted.tcp(),
        Some(QuotedTcp {
            src_port: 40001,
            dst_port: 5201,
            seq: SeqNum(0x01020304)
        })
    );
}

/// Every Destination Unreachable code 0..=15 (RFC 792, RFC 1122 §3.2.2.1, RFC 1812
/// §5.2.7.1) parses to its own variant; the MTU field is read for code 4 only. Codes above
/// 15 are not ours (Linux: code > NR_ICMP_UNREACH is ignored).
#[test]
fn every_unreachable_code() {
    for code in 0u8..=15 {
        let m = message(3, code, [0, 0, 0x05, 0x00], &quote());
        let r = Icmpv4ErrorRepr::parse(&m).unwrap();
        let Icmpv4Message::DstUnreachable {
            code: c,
            next_hop_mtu,
        } = r.message
        else {
            panic!("{code}: {r:?}");
        };
        assert_eq!(c as u8, code);
        assert_eq!(next_hop_mtu, if code == 4 { 0x500 } else { 0 }, "{code}");
    }
    let m = message(3, 16, [0; 4], &quote());
    assert_eq!(Icmpv4ErrorRepr::parse(&m), Err(Error::Unsupported));
}

#[test]
fn time_exceeded_codes_and_other_types() {
    for (code, want) in [
        (0, TimeExceeded::TtlExceeded),
        (1, TimeExceeded::ReassemblyExceeded),
    ] {
        let r = Icmpv4ErrorRepr::parse(&message(11, code, [0; 4], &quote())).unwrap();
        assert_eq!(r.message, Icmpv4Message::TimeExceeded(want));
    }
    // Time Exceeded code 2, echo reply/request, redirect, source quench, parameter problem
    // with an unassigned code: the kernel's.
    for (ty, code) in [(11u8, 2u8), (0, 0), (8, 0), (5, 1), (12, 3), (4, 0)] {
        let m = message(ty, code, [0; 4], &quote());
        assert_eq!(
            Icmpv4ErrorRepr::parse(&m),
            Err(Error::Unsupported),
            "{ty}/{code}"
        );
    }
}

/// RFC 792 Parameter Problem: the pointer (first octet of the type-specific word, here 20:
/// the quoted datagram's first TCP octet) and the codes 0 (pointer indicates the error),
/// 1 (RFC 1108: missing a required option) and 2 (RFC 1812 §5.2.7.3: bad length).
#[test]
fn parameter_problem_codes_and_pointer() {
    for (code, want) in [
        (0, ParamProblem::Pointer),
        (1, ParamProblem::MissingOption),
        (2, ParamProblem::BadLength),
    ] {
        let m = message(12, code, [20, 0, 0, 0], &quote());
        assert_eq!(Icmpv4Packet::new_checked(&m[..]).unwrap().pointer(), 20);
        let r = Icmpv4ErrorRepr::parse(&m).unwrap();
        assert_eq!(
            r.message,
            Icmpv4Message::ParamProblem {
                code: want,
                pointer: 20
            }
        );
        assert_eq!(r.quoted.tcp().unwrap().seq, SeqNum(0x01020304));
        assert_eq!(ParamProblem::from_code(code), Some(want));
    }
    assert_eq!(ParamProblem::from_code(3), None);
}

#[test]
fn rejections() {
    let good = frag_needed(1280);
    // Shorter than the ICMP header.
    assert_eq!(Icmpv4ErrorRepr::parse(&good[..7]), Err(Error::Truncated));
    // Bad checksum.
    let mut b = good.clone();
    b[7] ^= 1;
    assert_eq!(Icmpv4ErrorRepr::parse(&b), Err(Error::Checksum));
    // Quote shorter than an IPv4 header, or without its 8 transport bytes.
    for cut in [8 + 19, 8 + 27] {
        let m = message(3, 4, [0; 4], &quote()[..cut - 8]);
        assert_eq!(Icmpv4ErrorRepr::parse(&m), Err(Error::Truncated), "{cut}");
    }
    // Exactly the IPv4 header and 8 bytes is enough (RFC 792).
    let m = message(3, 3, [0; 4], &quote()[..28]);
    assert!(Icmpv4ErrorRepr::parse(&m).is_ok());
    // Quoted version 6, IHL 4.
    for b0 in [0x65u8, 0x44] {
        let mut q = quote();
        q[0] = b0;
        let m = message(3, 3, [0; 4], &q);
        assert_eq!(Icmpv4ErrorRepr::parse(&m), Err(Error::Malformed), "{b0:#x}");
    }
    // Quoted IHL 15 (60 bytes) with only 32 bytes quoted.
    let mut q = quote();
    q[0] = 0x4f;
    let m = message(3, 3, [0; 4], &q);
    assert_eq!(Icmpv4ErrorRepr::parse(&m), Err(Error::Truncated));
    // A quoted non-first fragment carries no transport header.
    let mut q = quote();
    q[6..8].copy_from_slice(&[0x00, 0xb9]);
    let m = message(3, 3, [0; 4], &q);
    assert_eq!(Icmpv4ErrorRepr::parse(&m), Err(Error::Unsupported));
}

/// Quoted IP options are skipped by IHL; a quoted UDP datagram has no TCP view.
#[test]
fn quoted_options_and_other_protocols() {
    let q = quote();
    let mut with_opts = q[..20].to_vec();
    with_opts[0] = 0x46;
    with_opts.extend_from_slice(&[1, 1, 1, 0]);
    with_opts.extend_from_slice(&q[20..28]);
    let r = Icmpv4ErrorRepr::parse(&message(3, 3, [0; 4], &with_opts)).unwrap();
    assert_eq!(r.quoted.tcp().unwrap().seq, SeqNum(0x01020304));
    let mut udp = q.clone();
    udp[9] = 17;
    let r = Icmpv4ErrorRepr::parse(&message(3, 3, [0; 4], &udp)).unwrap();
    assert_eq!(r.quoted.protocol, 17);
    assert_eq!(r.quoted.tcp(), None);
}

/// `emit` writes what a router writes: the reference bytes, checksum included.
#[test]
fn emit_matches_reference() {
    let msg = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::FragNeeded,
        next_hop_mtu: 1280,
    };
    let mut buf = [0x55u8; 128];
    let n = Icmpv4ErrorRepr::emit(&msg, &quote(), &mut buf);
    assert_eq!(&buf[..n], &frag_needed(1280)[..]);
    // Time exceeded: the type-specific word stays zero.
    let msg = Icmpv4Message::TimeExceeded(TimeExceeded::TtlExceeded);
    let n = Icmpv4ErrorRepr::emit(&msg, &quote(), &mut buf);
    assert_eq!(&buf[..n], &message(11, 0, [0; 4], &quote())[..]);
    // Parameter problem: the pointer in the first octet, the other three zero.
    let msg = Icmpv4Message::ParamProblem {
        code: ParamProblem::MissingOption,
        pointer: 9,
    };
    let n = Icmpv4ErrorRepr::emit(&msg, &quote(), &mut buf);
    assert_eq!(&buf[..n], &message(12, 1, [9, 0, 0, 0], &quote())[..]);
}

#[test]
fn frame_round_trip_and_rejections() {
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 0xfe]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        ethertype: EtherType::Ipv4,
    };
    let msg = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::FragNeeded,
        next_hop_mtu: 1280,
    };
    let mut buf = [0u8; 256];
    let n = emit_icmpv4_frame(&mut buf, &eth, ROUTER, STACK, &msg, &quote());
    assert_eq!(n, 14 + 20 + 8 + quote().len());
    let f = parse_icmpv4_frame(&buf[..n]).unwrap();
    assert_eq!(f.eth, eth);
    assert_eq!((f.ip.src_addr, f.ip.dst_addr), (ROUTER, STACK));
    assert_eq!(f.icmp.message, msg);
    assert_eq!(f.icmp.quoted.tcp().unwrap().src_port, 40001);
    // Ethernet padding after the IPv4 total length is not part of the message.
    let mut padded = buf[..n].to_vec();
    padded.extend_from_slice(&[0xee; 6]);
    assert_eq!(parse_icmpv4_frame(&padded).unwrap(), f);
    // A TCP frame is not ICMP; a bad outer header checksum is.
    let mut tcp = buf[..n].to_vec();
    tcp[14 + 9] = 6;
    Ipv4Packet::new_unchecked(&mut tcp[14..]).fill_checksum();
    assert_eq!(parse_icmpv4_frame(&tcp), Err(Error::Unsupported));
    let mut bad = buf[..n].to_vec();
    bad[14 + 8] ^= 1;
    assert_eq!(parse_icmpv4_frame(&bad), Err(Error::Checksum));
    assert_eq!(parse_icmpv4_frame(&buf[..20]), Err(Error::Truncated));
}

proptest! {
    /// Parsing never panics, whatever the bytes: raw messages, whole frames, and valid
    /// messages with bytes overwritten and cut (checksum fixed up so parsing goes deep).
    #[test]
    fn parse_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..120),
        edits in proptest::collection::vec((0usize..60, any::<u8>()), 0..6),
        cut in 0usize..60,
        fix in any::<bool>(),
    ) {
        let _ = Icmpv4ErrorRepr::parse(&bytes);
        let _ = parse_icmpv4_frame(&bytes);
        let mut m = frag_needed(1280);
        for (i, v) in edits {
            if let Some(b) = m.get_mut(i) {
                *b = v;
            }
        }
        m.truncate(m.len().saturating_sub(cut).max(4));
        if fix {
            let c = reference_checksum(&m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
        }
        if let Ok(r) = Icmpv4ErrorRepr::parse(&m) {
            let _ = r.quoted.tcp();
            prop_assert!(m.len() >= HEADER_LEN + 28);
        }
    }
}
