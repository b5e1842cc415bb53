//! Every parser of `xdptcp_core::wire` on arbitrary bytes: no panic, and where a `Repr`
//! re-emits, parse -> emit -> parse gives the same `Repr` (with valid checksums).
//!
//! Input: byte 0 is a mode (bit 0: fix the IPv4 and TCP checksums first, so the fuzzer gets
//! past them; bit 1: verify the TCP checksum in the frame parser), the rest is an Ethernet
//! frame. The same bytes also go to the IPv4, TCP, ICMPv4-error and ARP parsers directly, and to the IPv6
//! ones (IPv6 header and extension-header walk, TCP over IPv6, ICMPv6 errors; bit 0 also
//! fixes the TCP or ICMPv6 checksum of an IPv6 frame).
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use xdptcp_core::wire::icmpv4::emit_icmpv4_frame;
use xdptcp_core::wire::icmpv6::Icmpv6ErrorRepr;
use xdptcp_core::wire::{parse_icmpv4_frame, Icmpv4ErrorRepr};
use xdptcp_core::wire::ipv6::{self, walk_extensions};
use xdptcp_core::wire::{
    checksum, emit_tcp_frame, parse_tcp_frame, parse_tcp_frame_with, tcp_frame_len, ArpPacket,
    ArpRepr, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr,
};
use xdptcp_core::wire::{
    emit_tcp6_frame, parse_any_tcp_frame_with, parse_icmpv6_error_frame, parse_tcp6_frame_with,
    tcp6_frame_len, AnyTcpFrame, Icmpv6Packet, Ipv6Packet, Ipv6Repr,
};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Some((&mode, frame)) = data.split_first() else {
        return;
    };
    let mut frame = frame.to_vec();
    if mode & 1 != 0 {
        fix_checksums(&mut frame);
        fix_checksums6(&mut frame);
    }
    frame_round_trip(&frame, mode & 2 != 0);
    ethernet_round_trip(&frame);
    let l3 = frame.get(14..).unwrap_or(&[]);
    ipv4_round_trip(l3);
    ipv4_round_trip(&frame);
    tcp_round_trip(&frame);
    if let Ok(p) = Ipv4Packet::new_checked(l3) {
        tcp_round_trip(p.payload());
    }
    arp_round_trip(l3);
    frame6_round_trip(&frame, mode & 2 != 0);
    any_frame_agrees(&frame, mode & 2 != 0);
    ipv6_round_trip(l3);
    icmpv6_error(&frame, l3, mode & 2 != 0);
    tcp6_round_trip(l3.get(40..).unwrap_or(&[]));
    tcp6_round_trip(&frame);
    icmp_round_trip(&frame);
    let _ = Icmpv4ErrorRepr::parse(l3);
});

/// An ICMPv4 error frame: parsed, re-emitted quoting the same bytes, parsed to the same
/// meaning; the quoted TCP view never panics.
fn icmp_round_trip(frame: &[u8]) {
    let Ok(f) = parse_icmpv4_frame(frame) else {
        return;
    };
    let _ = f.icmp.quoted.tcp();
    let ip = Ipv4Packet::new_checked(&frame[14..]).expect("parsed before");
    let quote = &ip.payload()[8..];
    let mut buf = vec![0u8; 14 + 20 + 8 + quote.len()];
    let n = emit_icmpv4_frame(
        &mut buf,
        &f.eth,
        f.ip.src_addr,
        f.ip.dst_addr,
        &f.icmp.message,
        quote,
    );
    let g = parse_icmpv4_frame(&buf[..n]).expect("an emitted ICMP error parses");
    assert_eq!(g.icmp, f.icmp);
    assert_eq!(
        (g.ip.src_addr, g.ip.dst_addr),
        (f.ip.src_addr, f.ip.dst_addr)
    );
}

/// Ethernet + IPv6 + TCP in one call; the re-emitted frame (no extension headers, traffic
/// class 0) parses to the same meaning.
fn frame6_round_trip(frame: &[u8], verify: bool) {
    let Ok(f) = parse_tcp6_frame_with(frame, verify) else {
        return;
    };
    let mut buf = vec![0u8; tcp6_frame_len(&f.tcp)];
    let n = emit_tcp6_frame(
        &mut buf,
        &f.eth,
        f.ip.src_addr,
        f.ip.dst_addr,
        f.ip.hop_limit,
        f.ip.flow_label,
        &f.tcp,
    );
    assert_eq!(n, buf.len());
    let g = parse_tcp6_frame_with(&buf, true).expect("an emitted IPv6 frame parses");
    assert_eq!(g.eth, f.eth);
    same_segment(&g.tcp, &f.tcp);
    assert_eq!(
        (
            g.ip.src_addr,
            g.ip.dst_addr,
            g.ip.hop_limit,
            g.ip.flow_label
        ),
        (
            f.ip.src_addr,
            f.ip.dst_addr,
            f.ip.hop_limit,
            f.ip.flow_label
        )
    );
    assert_eq!(g.ip.payload_len, f.tcp.buffer_len());
}

/// The either-family parser says what the per-family parsers say.
fn any_frame_agrees(frame: &[u8], verify: bool) {
    match parse_any_tcp_frame_with(frame, verify) {
        Ok(AnyTcpFrame::V4(f)) => assert_eq!(parse_tcp_frame_with(frame, verify), Ok(f)),
        Ok(AnyTcpFrame::V6(f)) => assert_eq!(parse_tcp6_frame_with(frame, verify), Ok(f)),
        Err(e) => {
            let v4 = parse_tcp_frame_with(frame, verify).err();
            let v6 = parse_tcp6_frame_with(frame, verify).err();
            assert!(v4 == Some(e) || v6 == Some(e), "{e:?} vs {v4:?} / {v6:?}");
        }
    }
}

fn ipv6_round_trip(b: &[u8]) {
    let Ok(v) = Ipv6Packet::new_checked(b) else {
        return;
    };
    let _ = (
        v.version(),
        v.traffic_class(),
        v.flow_label(),
        v.next_header(),
        v.hop_limit(),
        v.src_addr(),
        v.dst_addr(),
    );
    let payload = v.payload();
    if let Ok(u) = v.upper_layer() {
        // The upper layer starts within the payload and within the bound (a fragment's
        // 8 bytes past it at most).
        assert!(u.offset <= payload.len(), "{u:?} in {}", payload.len());
        assert!(u.offset <= ipv6::MAX_EXT_LEN + 8, "{u:?}");
    }
    let _ = walk_extensions(v.next_header(), b.get(40..).unwrap_or(&[]));
    let Ok(r) = Ipv6Repr::parse(&v) else {
        return;
    };
    assert!(r.payload_len <= payload.len());
    let mut buf = vec![0u8; r.buffer_len() + r.payload_len];
    r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..]));
    let again = Ipv6Repr::parse(&Ipv6Packet::new_checked(&buf[..]).expect("emitted length"));
    assert_eq!(again, Ok(r));
}

fn icmpv6_error(frame: &[u8], l3: &[u8], verify: bool) {
    if let Ok(e) = parse_icmpv6_error_frame(frame, verify) {
        let _ = (e.icmp.error, e.icmp.quoted);
    }
    if let Ok(p) = Icmpv6Packet::new_checked(l3) {
        let _ = (
            p.msg_type(),
            p.code(),
            p.checksum(),
            p.rest(),
            p.data().len(),
        );
        let _ = p.verify_checksum(SRC6, DST6);
    }
    let _ = Icmpv6ErrorRepr::parse(&Icmpv6Packet::new_unchecked(l3), SRC6, DST6, verify);
}

fn tcp6_round_trip(b: &[u8]) {
    for verify in [false, true] {
        let Ok(r) = TcpRepr::parse_v6(b, SRC6, DST6, verify) else {
            continue;
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit_v6(&mut buf, SRC6, DST6);
        let again = TcpRepr::parse_v6(&buf, SRC6, DST6, true).expect("an emitted segment parses");
        same_segment(&again, &r);
    }
}

/// Writes a correct TCP or ICMPv6 checksum into an IPv6 frame where the lengths allow,
/// after any extension headers (found by the walk under test; its result is bounds checked
/// here).
fn fix_checksums6(f: &mut [u8]) {
    if f.len() < 14 + 40 || f[12..14] != [0x86, 0xdd] {
        return;
    }
    let ip = &mut f[14..];
    let plen = (u16::from_be_bytes([ip[4], ip[5]]) as usize).min(ip.len() - 40);
    let (src, dst) = {
        let v = Ipv6Packet::new_unchecked(&ip[..]);
        (v.src_addr(), v.dst_addr())
    };
    let Ok(u) = walk_extensions(ip[6], &ip[40..40 + plen]) else {
        return;
    };
    if u.offset > plen {
        return;
    }
    let upper = &mut ip[40 + u.offset..40 + plen];
    match u.protocol {
        ipv6::NEXT_TCP if upper.len() >= 20 => {
            TcpPacket::new_unchecked(upper).fill_checksum_v6(src, dst)
        }
        ipv6::NEXT_ICMPV6 if upper.len() >= 4 => {
            upper[2..4].copy_from_slice(&[0, 0]);
            let ph = checksum::pseudo_header_v6(src, dst, 58, upper.len() as u32);
            let c = checksum::complement(checksum::combine(&[ph, checksum::data(upper)]));
            upper[2..4].copy_from_slice(&c.to_be_bytes());
        }
        _ => {}
    }
}

/// Ethernet + IPv4 + TCP in one call; the re-emitted frame (no IP options, DF, ident 0)
/// parses to the same Ethernet and TCP meaning and the same addresses and TTL.
fn frame_round_trip(frame: &[u8], verify: bool) {
    let Ok(f) = parse_tcp_frame_with(frame, verify) else {
        return;
    };
    let mut buf = vec![0u8; tcp_frame_len(&f.tcp)];
    let n = emit_tcp_frame(
        &mut buf,
        &f.eth,
        f.ip.src_addr,
        f.ip.dst_addr,
        f.ip.ttl,
        &f.tcp,
    );
    assert_eq!(n, buf.len());
    let g = parse_tcp_frame(&buf).expect("an emitted frame parses, checksums included");
    assert_eq!(g.eth, f.eth);
    same_segment(&g.tcp, &f.tcp);
    assert_eq!(
        (g.ip.src_addr, g.ip.dst_addr, g.ip.ttl, g.ip.protocol),
        (f.ip.src_addr, f.ip.dst_addr, f.ip.ttl, f.ip.protocol)
    );
    assert_eq!(g.ip.payload_len, f.tcp.buffer_len());
}

/// `again` (parsed from what `orig` emitted) equals `orig`, except that `emit` may leave out
/// trailing SACK blocks that its option layout (Linux's, with NOP padding) has no room for;
/// then there really is no room for one more block.
fn same_segment(again: &TcpRepr, orig: &TcpRepr) {
    let n = again.options.sack_count as usize;
    assert!(
        n <= orig.options.sack_count as usize,
        "emit added SACK blocks"
    );
    assert_eq!(again.options.sacks(), &orig.options.sacks()[..n]);
    if n < orig.options.sack_count as usize {
        let room = 60 - again.header_len() - if n > 0 { 0 } else { 4 };
        assert!(
            room < 8,
            "a SACK block left out with {room} option bytes free"
        );
    }
    let mut o = orig.options;
    o.sack_blocks = again.options.sack_blocks;
    o.sack_count = again.options.sack_count;
    assert_eq!(
        *again,
        TcpRepr {
            options: o,
            ..*orig
        }
    );
}

fn ethernet_round_trip(b: &[u8]) {
    let Ok(v) = EthernetFrame::new_checked(b) else {
        return;
    };
    let _ = (v.dst_addr(), v.src_addr(), v.ethertype(), v.payload().len());
    let Ok(r) = EthernetRepr::parse(&v) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let again = EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap());
    assert_eq!(again, Ok(r));
}

fn ipv4_round_trip(b: &[u8]) {
    let Ok(v) = Ipv4Packet::new_checked(b) else {
        return;
    };
    let _ = (
        v.version(),
        v.header_len(),
        v.total_len(),
        v.ident(),
        v.dont_frag(),
        v.more_frags(),
        v.frag_offset(),
        v.ttl(),
        v.protocol(),
        v.src_addr(),
        v.dst_addr(),
        v.verify_checksum(),
        v.payload().len(),
    );
    let Ok(r) = Ipv4Repr::parse(&v) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len() + r.payload_len];
    r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]));
    let again = Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).expect("emitted length"));
    assert_eq!(again, Ok(r));
}

fn tcp_round_trip(b: &[u8]) {
    if let Ok(v) = TcpPacket::new_checked(b) {
        let _ = (
            v.src_port(),
            v.dst_port(),
            v.seq_number(),
            v.ack_number(),
            v.header_len(),
            v.flags(),
            v.window_len(),
            v.urgent_at(),
            v.options().len(),
            v.payload().len(),
            v.verify_checksum(SRC, DST),
        );
    }
    for verify in [false, true] {
        let Ok(r) = TcpRepr::parse(b, SRC, DST, verify) else {
            continue;
        };
        let _ = (r.seq_len(), r.options.sacks());
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut buf, SRC, DST);
        let again = TcpRepr::parse(&buf, SRC, DST, true).expect("an emitted segment parses");
        same_segment(&again, &r);
    }
}

fn arp_round_trip(b: &[u8]) {
    let Ok(v) = ArpPacket::new_checked(b) else {
        return;
    };
    let Ok(r) = ArpRepr::parse(&v) else {
        return;
    };
    let mut buf = vec![0u8; r.buffer_len()];
    r.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    let again = ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap());
    assert_eq!(again, Ok(r));
}

/// Writes correct IPv4 header and TCP checksums where the lengths allow (bounds checked
/// here, not by the code under test).
fn fix_checksums(f: &mut [u8]) {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] {
        return;
    }
    let ip = &mut f[14..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    if ihl < 20 || ihl > ip.len() {
        return;
    }
    let total = (u16::from_be_bytes([ip[2], ip[3]]) as usize).clamp(ihl, ip.len());
    let (src, dst) = (
        Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
    );
    Ipv4Packet::new_unchecked(&mut ip[..ihl]).fill_checksum();
    let proto = ip[9];
    let seg = &mut ip[ihl..total];
    if proto == 1 && seg.len() >= 8 {
        // ICMP: the checksum over the whole message.
        seg[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::complement(checksum::data(seg));
        seg[2..4].copy_from_slice(&c.to_be_bytes());
    } else if seg.len() >= 20 {
        TcpPacket::new_unchecked(seg).fill_checksum(src, dst);
    }
}
