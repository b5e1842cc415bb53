use super::*;
use crate::wire::{SeqNum, TcpFlags, TcpRepr};

const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// Fixed header of a Linux SYN 2001:2::1 -> 2001:2::2: traffic class 0, flow label
/// 0x5b3a1, payload length 40, next header TCP, hop limit 64.
const HDR: [u8; 40] = [
    0x60, 0x05, 0xb3, 0xa1, 0x00, 0x28, 0x06, 0x40, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 1, 0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
];

/// Its TCP segment 45678 -> 80, seq 0x12345678, win 64800, "mss 1440,sackOK,TS val
/// 16909060 ecr 0,nop,wscale 7". Checksum 0xeb79 over the IPv6 pseudo-header computed
/// independently (Python, 16-bit sum).
const SYN: [u8; 40] = [
    0xb2, 0x6e, 0x00, 0x50, 0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 0xa0, 0x02, 0xfd, 0x20, 0xeb, 0x79,
    0, 0, 2, 4, 5, 0xa0, 4, 2, 8, 10, 1, 2, 3, 4, 0, 0, 0, 0, 1, 3, 3, 7,
];

fn packet() -> Vec<u8> {
    let mut v = HDR.to_vec();
    v.extend_from_slice(&SYN);
    v
}

fn parse(b: &[u8]) -> Result<Ipv6Repr> {
    Ipv6Repr::parse(&Ipv6Packet::new_unchecked(b))
}

/// The SYN with extension headers `exts` (each `(type, bytes)`, the bytes' first octet
/// rewritten to chain) inserted between the fixed header and TCP.
fn with_exts(exts: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut v = HDR.to_vec();
    if let Some(&(t, _)) = exts.first() {
        v[6] = t;
    }
    for (i, (_, bytes)) in exts.iter().enumerate() {
        let mut b = bytes.clone();
        b[0] = exts.get(i + 1).map_or(NEXT_TCP, |e| e.0);
        v.extend_from_slice(&b);
    }
    v.extend_from_slice(&SYN);
    let pl = (v.len() - HEADER_LEN) as u16;
    v[4..6].copy_from_slice(&pl.to_be_bytes());
    v
}

/// An 8-byte options header holding `opts` (6 bytes).
fn opts_hdr(opts: [u8; 6]) -> Vec<u8> {
    let mut b = vec![0, 0];
    b.extend_from_slice(&opts);
    b
}

const PADN4: [u8; 6] = [1, 4, 0, 0, 0, 0];

fn frag_hdr(offset: u16, more: bool) -> Vec<u8> {
    let w = offset << 3 | more as u16;
    let mut b = vec![0, 0];
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    b
}

fn syn_ip_repr(payload_len: usize) -> Ipv6Repr {
    Ipv6Repr {
        src_addr: SRC,
        dst_addr: DST,
        next_header: NEXT_TCP,
        payload_len,
        hop_limit: 64,
        traffic_class: 0,
        flow_label: 0x5b3a1,
    }
}

#[test]
fn parse_syn_header() {
    let b = packet();
    assert_eq!(parse(&b), Ok(syn_ip_repr(40)));
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!((p.version(), p.payload().len()), (6, 40));
    // Ethernet padding after the payload length is not payload.
    let mut padded = b.clone();
    padded.extend_from_slice(&[0; 6]);
    assert_eq!(parse(&padded), Ok(syn_ip_repr(40)));
}

#[test]
fn emit_matches_capture() {
    let mut out = [0u8; 40];
    syn_ip_repr(40).emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
    assert_eq!(out, HDR);
    // Traffic class and flow label share the first word: DSCP AF41 + ECT(0), max label.
    let r = Ipv6Repr {
        traffic_class: 0x8a,
        flow_label: 0xfffff,
        ..syn_ip_repr(0)
    };
    r.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]));
    assert_eq!(&out[..4], &[0x68, 0xaf, 0xff, 0xff]);
    assert_eq!(parse(&out), Ok(r));
}

#[test]
fn tcp_checksum_over_ipv6_pseudo_header() {
    let r = TcpRepr::parse_v6(&SYN, SRC, DST, true).unwrap();
    assert_eq!(
        (r.src_port, r.dst_port, r.seq),
        (45678, 80, SeqNum(0x12345678))
    );
    assert_eq!(r.flags, TcpFlags::SYN);
    assert_eq!(
        (r.options.mss, r.options.window_scale),
        (Some(1440), Some(7))
    );
    let mut out = [0u8; 40];
    r.emit_v6(&mut out, SRC, DST);
    assert_eq!(out, SYN);
    // The IPv4 pseudo-header does not verify it, nor another destination. (Swapped
    // addresses would: the sum is commutative.)
    let v4 = std::net::Ipv4Addr::new(198, 18, 0, 1);
    assert_eq!(TcpRepr::parse(&SYN, v4, v4, true), Err(Error::Checksum));
    let other = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 3);
    assert_eq!(
        TcpRepr::parse_v6(&SYN, SRC, other, true).unwrap_err(),
        Error::Checksum
    );
    let mut seg = SYN;
    seg[17] ^= 0xff;
    crate::wire::TcpPacket::new_unchecked(&mut seg[..]).fill_checksum_v6(SRC, DST);
    assert_eq!(seg, SYN);
}

#[test]
fn extension_headers_skipped() {
    // Hop-by-hop (PadN, Router Alert), destination options, routing with segments left 0,
    // atomic fragment: the TCP segment and its checksum are found behind them.
    let ra: [u8; 6] = [5, 2, 0, 0, 1, 0]; // Router Alert, then Pad1 Pad1 (RFC 2711)
    let routing = vec![0, 0, 0, 0, 0, 0, 0, 0]; // type 0, segments left 0
    let b = with_exts(&[
        (NEXT_HOP_BY_HOP, opts_hdr(ra)),
        (NEXT_DEST_OPTS, opts_hdr(PADN4)),
        (NEXT_ROUTING, routing),
        (NEXT_FRAGMENT, frag_hdr(0, false)),
    ]);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        p.upper_layer(),
        Ok(UpperLayer {
            protocol: NEXT_TCP,
            offset: 32,
            fragment: None
        })
    );
    let r = parse(&b).unwrap();
    assert_eq!(r, syn_ip_repr(40));
    let seg = &p.payload()[32..];
    assert_eq!(
        TcpRepr::parse_v6(seg, r.src_addr, r.dst_addr, true)
            .unwrap()
            .dst_port,
        80
    );
    // An unknown option with action 00 is skipped too (RFC 8200 §4.2).
    let b = with_exts(&[(NEXT_DEST_OPTS, opts_hdr([0x1e, 4, 9, 9, 9, 9]))]);
    assert_eq!(parse(&b), Ok(syn_ip_repr(40)));
}

#[test]
fn options_with_discard_action_rejected() {
    // Action bits 01, 10, 11 (RFC 8200 §4.2), in both option headers.
    for t in [0x5e, 0x9e, 0xde] {
        for h in [NEXT_HOP_BY_HOP, NEXT_DEST_OPTS] {
            let b = with_exts(&[(h, opts_hdr([t, 4, 0, 0, 0, 0]))]);
            assert_eq!(parse(&b), Err(Error::Unsupported), "type {t:#x} in {h}");
        }
    }
    // Jumbo payload (RFC 2675): type 0xC2, action 11.
    let b = with_exts(&[(NEXT_HOP_BY_HOP, opts_hdr([0xc2, 4, 0, 1, 0, 0]))]);
    assert_eq!(parse(&b), Err(Error::Unsupported));
    // Router Alert is known only hop-by-hop; as a destination option its action 00 skips it.
    let b = with_exts(&[(NEXT_DEST_OPTS, opts_hdr([5, 2, 0, 0, 1, 0]))]);
    assert!(parse(&b).is_ok());
}

#[test]
fn malformed_options() {
    let cases: [[u8; 6]; 4] = [
        [1, 5, 0, 0, 0, 0],    // PadN overruns the header
        [1, 4, 0, 7, 0, 0],    // PadN with non-zero data
        [0x1e, 9, 0, 0, 0, 0], // unknown option overruns
        [0, 0, 0, 0, 0, 1],    // Pad1 x5, then a type without its length byte
    ];
    for opts in cases {
        let b = with_exts(&[(NEXT_DEST_OPTS, opts_hdr(opts))]);
        assert_eq!(parse(&b), Err(Error::Malformed), "{opts:?}");
    }
    // 8 padding bytes in a row (RFC 4942 §2.1.9.5; Linux "padlen > 7"): a 16-byte header.
    let mut h = vec![0, 1];
    h.extend_from_slice(&[1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let b = with_exts(&[(NEXT_DEST_OPTS, h)]);
    assert_eq!(parse(&b), Err(Error::Malformed));
    // Hop-by-hop after another header (RFC 8200 §4.1).
    let b = with_exts(&[
        (NEXT_DEST_OPTS, opts_hdr(PADN4)),
        (NEXT_HOP_BY_HOP, opts_hdr(PADN4)),
    ]);
    assert_eq!(parse(&b), Err(Error::Malformed));
}

#[test]
fn routing_headers() {
    for t in [0u8, 2, 3, 4, 200] {
        let b = with_exts(&[(NEXT_ROUTING, vec![0, 0, t, 1, 0, 0, 0, 0])]);
        assert_eq!(
            parse(&b),
            Err(Error::Unsupported),
            "type {t}, segments left 1"
        );
    }
    // Segments left 0: Mobile IPv6, RPL and segment routing headers are dropped as Linux
    // does by default; other types are skipped.
    for (t, want) in [
        (0u8, Ok(syn_ip_repr(40))),
        (2, Err(Error::Unsupported)),
        (3, Err(Error::Unsupported)),
        (4, Err(Error::Unsupported)),
        (5, Ok(syn_ip_repr(40))),
        (253, Ok(syn_ip_repr(40))),
    ] {
        let b = with_exts(&[(NEXT_ROUTING, vec![0, 0, t, 0, 0, 0, 0, 0])]);
        assert_eq!(parse(&b), want, "type {t}, segments left 0");
    }
}

#[test]
fn option_count_and_router_alert_length() {
    // 8 skippable options (type 0x1e, empty) fit Linux's max_dst_opts_cnt; 9 do not.
    let hdr = |n: usize| {
        let mut h = vec![0, 0];
        for _ in 0..n {
            h.extend_from_slice(&[0x1e, 0]);
        }
        while h.len() % 8 != 0 {
            h.push(0); // Pad1
        }
        h[1] = (h.len() / 8 - 1) as u8;
        (NEXT_DEST_OPTS, h)
    };
    assert_eq!(parse(&with_exts(&[hdr(8)])), Ok(syn_ip_repr(40)));
    assert_eq!(parse(&with_exts(&[hdr(9)])), Err(Error::Unsupported));
    // Router Alert with a length other than 2 (Linux's ipv6_hop_ra drops it).
    let b = with_exts(&[(NEXT_HOP_BY_HOP, opts_hdr([5, 4, 0, 0, 0, 0]))]);
    assert_eq!(parse(&b), Err(Error::Malformed));
}

#[test]
fn fragments_rejected_and_described() {
    // First fragment (offset 0, M set): the TCP header is there, but no reassembly here.
    let b = with_exts(&[(NEXT_FRAGMENT, frag_hdr(0, true))]);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    let frag = Fragment {
        offset: 0,
        more: true,
        ident: 0xdead_beef,
    };
    assert_eq!(
        p.upper_layer(),
        Ok(UpperLayer {
            protocol: NEXT_TCP,
            offset: 8,
            fragment: Some(frag)
        })
    );
    assert_eq!(parse(&b), Err(Error::Unsupported));
    // Last fragment (offset 185, M clear).
    let b = with_exts(&[(NEXT_FRAGMENT, frag_hdr(185, false))]);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(
        p.upper_layer().unwrap().fragment.map(|f| f.offset),
        Some(185)
    );
    assert_eq!(parse(&b), Err(Error::Unsupported));
    // A fragment header cut short.
    let mut b = HDR.to_vec();
    b[6] = NEXT_FRAGMENT;
    b[5] = 4;
    b.extend_from_slice(&[6, 0, 0, 0]);
    assert_eq!(parse(&b), Err(Error::Truncated));
}

#[test]
fn extension_header_bounds() {
    // 8 headers of 8 bytes each: walked; a ninth: Unsupported.
    let eight: Vec<_> = (0..8).map(|_| (NEXT_DEST_OPTS, opts_hdr(PADN4))).collect();
    assert_eq!(parse(&with_exts(&eight)), Ok(syn_ip_repr(40)));
    let nine: Vec<_> = (0..9).map(|_| (NEXT_DEST_OPTS, opts_hdr(PADN4))).collect();
    assert_eq!(parse(&with_exts(&nine)), Err(Error::Unsupported));
    // 256 bytes in two headers: walked; 264: Unsupported. Each 128-byte header carries an
    // unknown skippable option (type 0x1e) holding 120 bytes, after a PadN of 4.
    let big = |len: usize| {
        let mut h = vec![0, (len / 8 - 1) as u8, 1, 2, 0, 0];
        h.extend_from_slice(&[0x1e, (len - 8) as u8]);
        h.resize(len, 0x55);
        (NEXT_DEST_OPTS, h)
    };
    assert_eq!(
        parse(&with_exts(&[big(128), big(128)])),
        Ok(syn_ip_repr(40))
    );
    assert_eq!(
        parse(&with_exts(&[big(128), big(136)])),
        Err(Error::Unsupported)
    );
}

#[test]
fn rejections() {
    let b = packet();
    assert_eq!(parse(&b[..39]), Err(Error::Truncated));
    assert_eq!(parse(&b[..79]), Err(Error::Truncated)); // payload length 40 > 39
    let mut v = b.clone();
    v[0] = 0x45;
    assert_eq!(parse(&v), Err(Error::Malformed));
    // Multicast or loopback source, loopback destination (Linux ip6_rcv_core).
    for (at, a) in [(8, "ff02::1"), (8, "::1"), (24, "::1")] {
        let mut v = b.clone();
        v[at..at + 16].copy_from_slice(&a.parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(parse(&v), Err(Error::Malformed), "{a} at {at}");
    }
    // ESP and AH: Unsupported; No Next Header and UDP: the upper layer, for the caller.
    for (nh, want) in [
        (NEXT_ESP, Err(Error::Unsupported)),
        (NEXT_AH, Err(Error::Unsupported)),
    ] {
        let mut v = b.clone();
        v[6] = nh;
        assert_eq!(parse(&v), want);
    }
    let mut v = b.clone();
    v[6] = NEXT_NONE;
    assert_eq!(parse(&v).unwrap().next_header, NEXT_NONE);
    // An options header longer than the payload.
    let mut v = with_exts(&[(NEXT_DEST_OPTS, opts_hdr(PADN4))]);
    v[HEADER_LEN + 1] = 9; // 80 bytes
    assert_eq!(parse(&v), Err(Error::Truncated));
    // Payload length 0 (a jumbogram's) with no hop-by-hop: an empty upper layer.
    let mut v = b.clone();
    v[4..6].copy_from_slice(&[0, 0]);
    assert_eq!(parse(&v).unwrap().payload_len, 0);
}

#[test]
fn flow_labels_stable_and_keyed() {
    let f = FlowLabels::new(*b"0123456789abcdef");
    let l = f.tcp(SRC, 80, DST, 45678);
    assert_eq!(l, f.tcp(SRC, 80, DST, 45678));
    assert_eq!(l, f.clone().tcp(SRC, 80, DST, 45678));
    assert!(l != 0 && l <= FLOW_LABEL_MASK);
    assert_ne!(l, f.tcp(SRC, 80, DST, 45679));
    assert_ne!(l, f.tcp(DST, 80, SRC, 45678));
    assert_ne!(l, FlowLabels::new([0; 16]).tcp(SRC, 80, DST, 45678));
    // Spread: 4096 ports give (nearly) 4096 distinct labels, never 0, all within 20 bits.
    let mut seen = std::collections::HashSet::new();
    for p in 0..4096u16 {
        let l = f.tcp(SRC, 80, DST, 40000 + p);
        assert!(l != 0 && l <= FLOW_LABEL_MASK);
        seen.insert(l);
    }
    assert!(seen.len() > 4070, "{} distinct", seen.len());
    assert!(!format!("{f:?}").contains("key"));
}
