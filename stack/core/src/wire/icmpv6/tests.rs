use super::*;

const STACK: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);

/// The quoted packet: the stack's data segment 2001:2::1:80 -> 2001:2::2:45678, flow label
/// 0x12345, payload length 1448, seq 0xa1b2c3d4, ack 0x01020304, ACK|PSH; the quote ends
/// 8 bytes into its data.
const QUOTE: [u8; 68] = [
    0x60, 0x01, 0x23, 0x45, 0x05, 0xa8, 0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 1, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x00, 0x50, 0xb2, 0x6e,
    0xa1, 0xb2, 0xc3, 0xd4, 0x01, 0x02, 0x03, 0x04, 0x50, 0x18, 0x01, 0xf6, 0x11, 0x11, 0x00, 0x00,
    0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61,
];

/// An ICMPv6 message `type`/`code`/`rest` with checksum `csum` (computed independently in
/// Python over the pseudo-header, next header 58) quoting [`QUOTE`].
fn message(t: u8, code: u8, rest: u32, csum: u16) -> Vec<u8> {
    let mut m = vec![t, code];
    m.extend_from_slice(&csum.to_be_bytes());
    m.extend_from_slice(&rest.to_be_bytes());
    m.extend_from_slice(&QUOTE);
    m
}

/// Packet Too Big, MTU 1400, from a router 2001:2::fe to the stack.
fn ptb() -> Vec<u8> {
    message(TYPE_PACKET_TOO_BIG, 0, 1400, 0xe2d3)
}

fn parse(m: &[u8], src: Ipv6Addr) -> Result<Icmpv6ErrorRepr> {
    Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(m), src, STACK, true)
}

const QUOTED: QuotedTcp = QuotedTcp {
    src_addr: STACK,
    dst_addr: PEER,
    src_port: 80,
    dst_port: 45678,
    seq: SeqNum(0xa1b2c3d4),
};

#[test]
fn packet_too_big() {
    let m = ptb();
    let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
    assert_eq!(
        (p.msg_type(), p.code(), p.rest(), p.checksum()),
        (2, 0, 1400, 0xe2d3)
    );
    assert!(p.verify_checksum(ROUTER, STACK));
    assert_eq!(
        parse(&m, ROUTER),
        Ok(Icmpv6ErrorRepr {
            error: Icmpv6Error::PacketTooBig { mtu: 1400 },
            quoted: QUOTED,
        })
    );
}

#[test]
fn destination_unreachable_and_time_exceeded() {
    let m = message(TYPE_DST_UNREACHABLE, 4, 0, 0xea43);
    assert_eq!(
        parse(&m, PEER).map(|r| r.error),
        Ok(Icmpv6Error::DstUnreachable(DstUnreachable::PortUnreachable))
    );
    let m = message(TYPE_TIME_EXCEEDED, 0, 0, 0xe74b);
    assert_eq!(
        parse(&m, ROUTER),
        Ok(Icmpv6ErrorRepr {
            error: Icmpv6Error::TimeExceeded(TimeExceeded::HopLimit),
            quoted: QUOTED,
        })
    );
    // Codes, including unknown ones, are kept.
    let codes: Vec<_> = (0..=8).map(DstUnreachable::from).collect();
    assert_eq!(codes[1], DstUnreachable::AdminProhibited);
    assert_eq!(codes[3], DstUnreachable::AddrUnreachable);
    assert_eq!(codes[8], DstUnreachable::Other(8));
    assert_eq!(TimeExceeded::from(1), TimeExceeded::Reassembly);
    assert_eq!(TimeExceeded::from(9), TimeExceeded::Other(9));
}

#[test]
fn checksum_covers_the_outer_addresses() {
    let m = ptb();
    assert_eq!(parse(&m, PEER), Err(Error::Checksum));
    let mut bad = m.clone();
    bad[49] ^= 1; // the quoted source port's low byte
    assert_eq!(parse(&bad, ROUTER), Err(Error::Checksum));
    let r = Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(&bad[..]), PEER, STACK, false);
    assert_eq!(r.unwrap().quoted.src_port, 81);
}

/// RFC 4443 §3.4: Parameter Problem, code 1 (unrecognized Next Header type encountered),
/// pointer 6 (the quoted IPv6 header's Next Header octet), from the peer host; its codes.
#[test]
fn parameter_problem() {
    let m = message(TYPE_PARAM_PROBLEM, 1, 6, 0xe740);
    let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
    assert_eq!((p.msg_type(), p.code(), p.rest()), (4, 1, 6));
    assert!(p.verify_checksum(PEER, STACK));
    assert_eq!(
        parse(&m, PEER),
        Ok(Icmpv6ErrorRepr {
            error: Icmpv6Error::ParamProblem {
                code: ParamProblem::NextHeader,
                pointer: 6,
            },
            quoted: QUOTED,
        })
    );
    assert_eq!(parse(&m, ROUTER), Err(Error::Checksum));
    let codes = [0u8, 1, 2, 3].map(ParamProblem::from);
    assert_eq!(
        codes,
        [
            ParamProblem::HeaderField,
            ParamProblem::NextHeader,
            ParamProblem::Option,
            ParamProblem::Other(3)
        ]
    );
}

#[test]
fn rejections_without_checksum() {
    let p = |m: &[u8]| Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(m), PEER, STACK, false);
    let m = ptb();
    // Header, quoted IPv6 header, 8 quoted TCP bytes: each cut short is Truncated.
    assert_eq!(p(&m[..7]), Err(Error::Truncated));
    assert_eq!(p(&m[..8 + 39]), Err(Error::Truncated));
    assert_eq!(p(&m[..8 + 47]), Err(Error::Truncated));
    assert_eq!(p(&m[..8 + 48]).unwrap().quoted, QUOTED);
    // Echo request, NDP neighbour solicitation: not parsed here.
    for t in [128u8, 135] {
        let mut v = m.clone();
        v[0] = t;
        assert_eq!(p(&v), Err(Error::Unsupported), "type {t}");
    }
    // The quote is IPv4, or UDP.
    let mut v = m.clone();
    v[8] = 0x45;
    assert_eq!(p(&v), Err(Error::Malformed));
    let mut v = m.clone();
    v[8 + 6] = 17;
    assert_eq!(p(&v), Err(Error::Unsupported));
}

#[test]
fn quoted_extension_headers_walked() {
    // A destination options header (PadN 6) before the quoted TCP header.
    let mut m = ptb();
    m[8 + 6] = ipv6::NEXT_DEST_OPTS;
    let ext = [NEXT_TCP, 0, 1, 4, 0, 0, 0, 0];
    m.splice(8 + 40..8 + 40, ext);
    assert_eq!(
        Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(&m[..]), ROUTER, STACK, false)
            .map(|r| r.quoted),
        Ok(QUOTED)
    );
    // A quoted non-first fragment has no TCP header.
    let mut m = ptb();
    m[8 + 6] = ipv6::NEXT_FRAGMENT;
    let frag = [NEXT_TCP, 0, 0x00, 0x08, 0, 0, 0, 1];
    m.splice(8 + 40..8 + 40, frag);
    assert_eq!(
        Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(&m[..]), ROUTER, STACK, false),
        Err(Error::Unsupported)
    );
}
