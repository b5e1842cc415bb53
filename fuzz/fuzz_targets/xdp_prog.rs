//! The steering XDP program (xdp-prog/src/bpf/steer.bpf.c), loaded once (not attached; needs
//! root) and run with BPF_PROG_TEST_RUN on frames from the fuzzer. Listener 198.18.0.1:8080
//! with SYN cookies always on (`tcp_syncookies = 2`, XDP cookies), ephemeral range
//! 40000..=40999.
//!
//! Input: byte 0 bit 0 chooses the mode. Raw (0): the rest is the frame as is. Structured (1):
//! the rest describes a frame (VLAN tags, EtherType, IPv4 version/IHL/options, fragment bits,
//! protocol, Total Length skew, destination, TCP data offset, flags, options, payload,
//! checksums right or wrong) so most runs reach the program's deep paths. Structured IPv6
//! (byte 0 bits 0 and 1): an IPv6 frame with a chain of extension headers (hop-by-hop,
//! routing, destination options, fragment; sometimes too many or too long) before TCP, an
//! ICMPv6 error quoting a TCP segment, or other upper layers; IPv6 listener
//! [2001:2::1]:8080, address 2001:2::1 for the ephemeral range.
//!
//! Asserts: the run succeeds for every Ethernet-sized frame; the action is DROP, PASS, TX or
//! REDIRECT (never ABORTED or an unknown value); and a TX (a cookie SYN-ACK written over the
//! SYN) is a valid Ethernet/IPv4/TCP frame with correct IPv4 and TCP checksums that answers
//! the SYN: MACs, addresses and ports swapped, SYN|ACK, ack = the SYN's seq + 1, and never to a
//! martian source (0/8, 127/8, the stack's own address: structured frames choose such
//! sources, byte 1 bits 5-7; the worker drops them, so the program leaves them to it). For IPv6:
//! never TX, and the program and xdptcp-core's parsers agree: a TCP/IPv6 frame (or an ICMPv6
//! error about a TCP segment) that the wire layer accepts and that is for a stack port is
//! steered to the stack (`no_socket` here: no XSK is registered). Over IPv4 likewise for an
//! ICMP error (destination unreachable, time exceeded, parameter problem) that xdptcp-core
//! accepts and that quotes a segment from a stack (address, port) to the error's destination.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use xdptcp_core::tcp::{Negotiated, TcpConfig, DEFAULT_COOKIE_PERIOD};
use xdptcp_core::wire::{
    checksum, parse_icmpv4_frame, parse_icmpv6_error_frame, parse_tcp6_frame_with, parse_tcp_frame,
    TcpFlags,
};
use xdptcp_xdp::{AttachOptions, CookieConfig, Counters, Counters6, Steering};

const XDP_ABORTED: u32 = 0;
const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;
const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PORT: u16 = 8080;
const STACK6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

thread_local! {
    static PROG: Steering = load();
    /// The program's counters after the previous run (only this process runs it).
    static LAST: std::cell::Cell<Counters> = std::cell::Cell::new(Counters::default());
    static LAST6: std::cell::Cell<Counters6> = std::cell::Cell::new(Counters6::default());
}

fn load() -> Steering {
    let cfg = TcpConfig::default();
    let mut s = Steering::load(AttachOptions::default())
        .expect("load the steering program (the xdp_prog target needs root)");
    s.add_listen(STACK, PORT).unwrap();
    s.set_ephemeral(STACK, 40000, 40999).unwrap();
    s.add_listen6(STACK6, PORT).unwrap();
    s.add_addr6(STACK6).unwrap();
    s.set_cookie_config(&CookieConfig {
        enabled: true,
        mode: 2,
        secret: *b"fuzz-cookie-key!",
        previous: None,
        ts_secret: *b"fuzz-isn-ts-key!",
        period_ns: DEFAULT_COOKIE_PERIOD.as_nanos() as u64,
        mss: cfg.mss,
        window: cfg.rmem.min(0xffff) as u16,
        rcv_shift: Negotiated::our_shift(&cfg),
        ttl: 64,
        timestamps: true,
        sack: true,
        window_scaling: true,
    })
    .unwrap();
    s
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

/// A frame described by the script: mostly plausible, every field sometimes wrong.
fn structured(b: &mut Bytes) -> Vec<u8> {
    let shape = b.u8();
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    // 0-2 VLAN tags (802.1Q / 802.1ad): the program must pass them to the kernel.
    for i in 0..(shape & 3).min(2) {
        let tpid: u16 = if i == 0 && shape & 4 != 0 {
            0x88a8
        } else {
            0x8100
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(b.u16() & 0x0fff).to_be_bytes());
    }
    let ethertype: u16 = if shape & 8 != 0 { b.u16() } else { 0x0800 };
    f.extend_from_slice(&ethertype.to_be_bytes());

    // IPv4 header with 0..40 bytes of options (NOP, EOL, record route, or fuzz bytes).
    let ipb = b.u8();
    let ihl_words = 5 + (ipb & 0x0f).min(10) as usize;
    let version = if ipb & 0x10 != 0 { b.u8() >> 4 } else { 4 };
    let frag = b.u8();
    let frag_off: u16 = match frag >> 5 {
        0 | 1 => 0x4000,                    // DF
        2 => 0,                             // none
        3 => 0x2000,                        // MF, offset 0: first fragment
        4 => 0x2000 | (frag as u16 & 0x1f), // MF, later fragment
        5 => frag as u16 & 0x1f,            // last fragment
        6 => 0x8000,                        // the reserved bit
        _ => b.u16(),
    };
    let proto = if frag & 0x10 != 0 { b.u8() } else { 6 };
    let sel = b.u8();
    let dst = match sel & 3 {
        0 | 1 => STACK,
        2 => Ipv4Addr::new(198, 18, 0, 9),
        _ => Ipv4Addr::from(u32::from_be_bytes([b.u8(), b.u8(), b.u8(), b.u8()])),
    };
    let dport = match (sel >> 2) & 3 {
        0 | 1 => PORT,
        2 => 40000 + b.u16() % 1100,
        _ => b.u16(),
    };
    let mut ip_opts = Vec::new();
    while ip_opts.len() < (ihl_words - 5) * 4 {
        match b.u8() & 3 {
            0 => ip_opts.push(1),                                   // NOP
            1 => ip_opts.push(0),                                   // EOL
            2 => ip_opts.extend_from_slice(&[7, 7, 4, 0, 0, 0, 0]), // record route
            _ => ip_opts.push(b.u8()),
        }
    }
    ip_opts.truncate((ihl_words - 5) * 4);

    // TCP header: data offset, flags, options (plausible kinds or raw bytes), payload.
    let tb = b.u8();
    let flags = match tb & 3 {
        0 | 1 => TcpFlags::SYN.0,
        2 => b.u8(),
        _ => TcpFlags::SYN.0 | b.u8() & !TcpFlags::ACK.0,
    };
    let mut tcp_opts = Vec::new();
    let nopts = (tb >> 2) & 7;
    for _ in 0..nopts {
        match b.u8() & 7 {
            0 => tcp_opts.extend_from_slice(&[2, 4, 5, 0xb4]),
            1 => tcp_opts.extend_from_slice(&[3, 3, b.u8()]),
            2 => tcp_opts.extend_from_slice(&[4, 2]),
            3 => {
                tcp_opts.extend_from_slice(&[8, 10]);
                tcp_opts.extend(b.take(8));
            }
            4 => tcp_opts.push(1),
            5 => tcp_opts.push(0),
            6 => {
                let len = b.u8() & 15;
                tcp_opts.extend_from_slice(&[b.u8(), len]);
            }
            _ => tcp_opts.extend(b.take(3)),
        }
    }
    tcp_opts.truncate(40);
    while tcp_opts.len() % 4 != 0 {
        tcp_opts.push(0);
    }
    let doff_words = if tb & 0x20 != 0 {
        (b.u8() & 0x0f) as usize
    } else {
        5 + tcp_opts.len() / 4
    };
    let payload_len = match b.u8() {
        0..=199 => 0,
        n => (n as usize - 199) * 16,
    };
    let seq = u32::from_be_bytes([b.u8(), b.u8(), b.u8(), b.u8()]);

    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&50123u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[12] = (doff_words as u8) << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
    tcp.extend_from_slice(&tcp_opts);
    tcp.extend((0..payload_len).map(|i| i as u8));

    let ihl = ihl_words * 4;
    let skew = b.u8();
    let tot_len = match skew >> 6 {
        0..=1 => (ihl + tcp.len()) as u16,
        2 => ((ihl + tcp.len()) as u16)
            .wrapping_add(skew as u16 & 0x3f)
            .wrapping_sub(32),
        _ => b.u16(),
    };
    let mut ip = vec![0u8; 20];
    ip[0] = version << 4 | ihl_words as u8;
    ip[2..4].copy_from_slice(&tot_len.to_be_bytes());
    ip[4..6].copy_from_slice(&0x1c46u16.to_be_bytes());
    ip[6..8].copy_from_slice(&frag_off.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    // The source: the peer, or a martian (0/8, 127/8, the destination itself) that the
    // program must leave to the worker (never answer with a cookie SYN-ACK).
    let src = match shape >> 5 {
        0..=4 => PEER,
        5 if shape & 0x10 != 0 => Ipv4Addr::new(127, 0, 0, 1),
        5 => Ipv4Addr::new(127, 18, 0, 2),
        6 if shape & 0x10 != 0 => Ipv4Addr::UNSPECIFIED,
        6 => Ipv4Addr::new(0, 18, 0, 2),
        _ => dst,
    };
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    ip.extend_from_slice(&ip_opts);
    let bad = b.u8();
    if bad & 1 == 0 {
        let c = checksum::complement(checksum::data(&ip));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    if bad & 2 == 0 {
        let ph = checksum::pseudo_header_v4(src, dst, 6, tcp.len() as u32);
        let c = checksum::complement(checksum::combine(&[ph, checksum::data(&tcp)]));
        tcp[16..18].copy_from_slice(&c.to_be_bytes());
    }
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    // Ethernet padding / trailing bytes after the IP packet.
    f.extend(b.take((bad >> 4) as usize));
    f
}

/// An IPv6 frame described by the script: extension headers, then TCP, an ICMPv6 error
/// quoting TCP, or something else; lengths and checksums mostly right.
fn structured6(b: &mut Bytes) -> Vec<u8> {
    let shape = b.u8();
    let sel = b.u8();
    let dst = match sel & 3 {
        0 | 1 => STACK6,
        2 => Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 9),
        _ => Ipv6Addr::from(u128::from_be_bytes(b.take(16).try_into().unwrap())),
    };
    let port = |b: &mut Bytes, bits: u8| match bits & 3 {
        0 | 1 => PORT,
        2 => 40000 + b.u16() % 1100,
        _ => b.u16(),
    };
    let dport = port(b, sel >> 2);
    // Extension headers: 0..=10 (the program walks 8), each of a plausible kind.
    let mut exts: Vec<(u8, Vec<u8>)> = Vec::new();
    for _ in 0..(shape & 15).min(10) {
        let k = b.u8();
        let ext = match k & 7 {
            0 => (0, vec![0, 0, 1, 4, 0, 0, 0, 0]), // hop-by-hop, PadN
            1 | 2 => {
                // destination options with a skippable option of 0..=255 bytes
                let n = if k & 8 != 0 { b.u8() as usize } else { 4 };
                let len = (n + 4).div_ceil(8) * 8;
                let mut h = vec![0, (len / 8 - 1) as u8, 0x1e, (len - 4) as u8];
                h.resize(len, 0);
                (60, h)
            }
            3 => (43, vec![0, 0, b.u8() & 7, b.u8() & 1, 0, 0, 0, 0]), // routing
            4 => {
                let w = match (k >> 3) & 3 {
                    0 => 0,       // atomic
                    1 => 1,       // first fragment
                    _ => b.u16(), // any
                };
                let mut h = vec![0, 0];
                h.extend_from_slice(&w.to_be_bytes());
                h.extend_from_slice(&[0, 0, 0, 7]);
                (44, h)
            }
            5 => (51, vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // AH
            6 => {
                let mut h = b.take(8); // random
                h[1] &= 3;
                h.resize((h[1] as usize + 1) * 8, 0);
                (b.u8() & 63, h)
            }
            _ => (60, vec![0, 0, 1, 4, 0, 0, 0, 0]),
        };
        exts.push(ext);
    }
    let kind = b.u8();
    let (proto, mut upper) = match kind & 3 {
        0 | 1 => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&50123u16.to_be_bytes());
            t[2..4].copy_from_slice(&dport.to_be_bytes());
            t[4..8].copy_from_slice(&b.take(4));
            t[12] = if kind & 4 != 0 { b.u8() & 0xf0 } else { 0x50 };
            t[13] = b.u8();
            t.extend(b.take((kind >> 4) as usize * 4));
            (6u8, t)
        }
        2 => {
            // ICMPv6 error (or any type) quoting TCP from the stack, possibly cut short.
            let t = if kind & 4 != 0 {
                b.u8()
            } else {
                1 + (kind >> 3) % 3
            };
            let mut m = vec![t, b.u8(), 0, 0, 0, 0, 0x05, 0x00];
            m.extend_from_slice(&[0x60, 0, 0, 0, 0x05, 0x00, 6, 64]);
            m.extend_from_slice(&STACK6.octets());
            m.extend_from_slice(&PEER6.octets());
            m.extend_from_slice(&port(b, kind >> 5).to_be_bytes());
            m.extend_from_slice(&[0xb2, 0x6e, 1, 2, 3, 4]);
            m.extend(b.take(12));
            let cut = b.u8() as usize;
            if cut < m.len() && kind & 0x80 != 0 {
                m.truncate(cut);
            }
            (58u8, m)
        }
        _ => (b.u8(), b.take(16)),
    };
    let mut body = Vec::new();
    for (i, (_, h)) in exts.iter().enumerate() {
        let mut h = h.clone();
        h[0] = exts.get(i + 1).map_or(proto, |e| e.0);
        body.extend_from_slice(&h);
    }
    let upper_at = body.len();
    let first = exts.first().map_or(proto, |e| e.0);
    let skew = b.u8();
    let version = if skew & 1 != 0 { b.u8() >> 4 } else { 6 };
    let fix = skew & 2 == 0;
    if fix && proto == 6 && upper.len() >= 20 {
        let ph = checksum::pseudo_header_v6(PEER6, dst, 6, upper.len() as u32);
        let c = checksum::complement(checksum::combine(&[ph, checksum::data(&upper)]));
        upper[16..18].copy_from_slice(&c.to_be_bytes());
    } else if fix && proto == 58 && upper.len() >= 4 {
        let ph = checksum::pseudo_header_v6(PEER6, dst, 58, upper.len() as u32);
        let c = checksum::complement(checksum::combine(&[ph, checksum::data(&upper)]));
        upper[2..4].copy_from_slice(&c.to_be_bytes());
    }
    body.extend_from_slice(&upper);
    debug_assert!(upper_at <= body.len());
    let plen = match skew >> 6 {
        0..=2 => body.len() as u16,
        _ => (body.len() as u16)
            .wrapping_add(b.u8() as u16)
            .wrapping_sub(128),
    };
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
    f.extend_from_slice(&[version << 4, 0, 0, 0]);
    f.extend_from_slice(&plen.to_be_bytes());
    f.extend_from_slice(&[first, 64]);
    f.extend_from_slice(&PEER6.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&body);
    f.extend(b.take(((skew >> 2) & 15) as usize)); // trailing bytes
    f
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mode = b.u8();
    let frame = if mode & 1 == 0 {
        b.0.to_vec()
    } else if mode & 2 == 0 {
        structured(&mut b)
    } else {
        structured6(&mut b)
    };
    PROG.with(|p| check(p, &frame));
});

/// Which of the program's counters one run moved. Each frame is classified exactly once
/// (plus `cookie_slow` for a SYN the cookie path left to the worker), TX iff a cookie
/// SYN-ACK was counted. The branches also give libFuzzer a view of the BPF side, whose
/// own edges it cannot see.
fn check_counters(p: &Steering, action: u32) -> Counters {
    let now = p.counters().expect("read the program's counters");
    let d = now.since(&LAST.with(|c| c.replace(now)));
    let now6 = p.counters6().expect("read the program's IPv6 counters");
    let d6 = now6.since(&LAST6.with(|c| c.replace(now6)));
    // The IPv6-only counters refine the shared ones.
    if d6.ext_limit != 0 {
        assert_eq!((d6.ext_limit, d.passed), (1, 1), "{d:?} {d6:?}");
    }
    assert!(
        d6.redirected + d6.icmp_errors_redirected <= d.redirected,
        "{d:?} {d6:?}"
    );
    let classes = [
        d.redirected,
        d.passed,
        d.malformed,
        d.no_socket,
        d.fragments,
        d.fragments_dropped,
        d.cookie_syn_acks,
    ];
    // One branch (one coverage edge) per counter, not a loop (one edge for all).
    let mut seen = 0u32;
    if d.redirected != 0 {
        seen |= 1;
    }
    if d.passed != 0 {
        seen |= 2;
    }
    if d.malformed != 0 {
        seen |= 4;
    }
    if d.no_socket != 0 {
        seen |= 8;
    }
    if d.fragments != 0 {
        seen |= 16;
    }
    if d.cookie_syn_acks != 0 {
        seen |= 32;
    }
    if d.cookie_slow != 0 {
        seen |= 64;
    }
    if d.fragments_dropped != 0 {
        seen |= 128;
        // A first fragment for a stack port is dropped (docs/receive-path.md), never answered.
        assert_eq!(action, XDP_DROP, "{d:?}");
    }
    assert_eq!(
        classes.iter().sum::<u64>(),
        1,
        "one classification per frame: {d:?}"
    );
    assert!(d.cookie_slow <= 1, "{d:?}");
    assert_eq!(action == XDP_TX, d.cookie_syn_acks == 1, "{d:?}");
    std::hint::black_box(seen);
    d
}

/// A source Linux drops as a martian and the worker drops unanswered (`martian_src_in`):
/// 0/8, 127/8, or the destination (our own address).
fn martian(src: Ipv4Addr, dst: Ipv4Addr) -> bool {
    let top = src.octets()[0];
    top == 0 || top == 127 || src == dst
}

/// A port the program steers for STACK and STACK6: the listener or the ephemeral range.
fn stack_port(port: u16) -> bool {
    port == PORT || (40000..=40999).contains(&port)
}

/// What xdptcp-core accepts as TCP/IPv6 (or as an ICMPv6 error about TCP) for a stack
/// (address, port), the program steers: the two extension-header walks agree.
fn agrees_with_wire6(frame: &[u8], d: &Counters) {
    if let Ok(f) = parse_tcp6_frame_with(frame, false) {
        if f.ip.dst_addr == STACK6 && stack_port(f.tcp.dst_port) {
            assert_eq!(
                d.no_socket, 1,
                "wire accepts, XDP did not steer: {d:?}\n{frame:02x?}"
            );
        }
    }
    if let Ok(e) = parse_icmpv6_error_frame(frame, false) {
        let q = e.icmp.quoted;
        if q.src_addr == STACK6 && stack_port(q.src_port) {
            assert_eq!(
                d.no_socket, 1,
                "wire accepts, XDP did not steer: {d:?}\n{frame:02x?}"
            );
        }
    }
}

/// What xdptcp-core accepts as an ICMPv4 error about a TCP segment from a stack (address,
/// port), sent to that address, the program steers (icmp.h's types and codes are the
/// parser's).
fn agrees_with_icmpv4(frame: &[u8], d: &Counters) {
    let Ok(e) = parse_icmpv4_frame(frame) else {
        return;
    };
    let q = e.icmp.quoted;
    if let Some(t) = q.tcp() {
        if q.src_addr == STACK && e.ip.dst_addr == STACK && stack_port(t.src_port) {
            assert_eq!(
                d.no_socket, 1,
                "wire accepts, XDP did not steer: {d:?}\n{frame:02x?}"
            );
        }
    }
}

fn check(p: &Steering, frame: &[u8]) {
    let res = p.test_run_out(frame);
    let (action, out) = match res {
        Ok(r) => r,
        // The kernel refuses frames shorter than an Ethernet header or beyond a page.
        Err(_) if frame.len() < 14 || frame.len() > 3000 => return,
        Err(e) => panic!(
            "BPF_PROG_TEST_RUN failed on a {} byte frame: {e}",
            frame.len()
        ),
    };
    assert!(
        matches!(action, XDP_DROP | XDP_PASS | XDP_TX | XDP_REDIRECT),
        "action {action} (XDP_ABORTED = {XDP_ABORTED})"
    );
    let d = check_counters(p, action);
    agrees_with_wire6(frame, &d);
    agrees_with_icmpv4(frame, &d);
    if action != XDP_TX {
        return;
    }
    let reply = parse_tcp_frame(&out).unwrap_or_else(|e| {
        panic!("XDP_TX frame does not parse ({e}):\nin  {frame:02x?}\nout {out:02x?}")
    });
    let syn = parse_tcp_frame(frame).unwrap_or_else(|e| {
        panic!("answered a SYN the stack would drop ({e}):\nin  {frame:02x?}\nout {out:02x?}")
    });
    let f = syn.tcp.flags;
    assert!(
        f.syn() && !f.ack() && !f.rst() && !f.fin(),
        "answered a non-plain SYN"
    );
    assert!(
        !martian(syn.ip.src_addr, syn.ip.dst_addr),
        "answered a SYN from a martian source {} (the worker drops it unanswered)",
        syn.ip.src_addr
    );
    assert!(
        syn.tcp.payload.is_empty(),
        "answered a SYN with data (left to the stack)"
    );
    assert_eq!(
        (syn.ip.dst_addr, syn.tcp.dst_port),
        (STACK, PORT),
        "not the listener"
    );
    assert_eq!(reply.tcp.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(reply.tcp.ack, syn.tcp.seq + 1u32);
    assert_eq!(
        (reply.eth.src_addr, reply.eth.dst_addr),
        (syn.eth.dst_addr, syn.eth.src_addr)
    );
    assert_eq!(
        (reply.ip.src_addr, reply.ip.dst_addr),
        (syn.ip.dst_addr, syn.ip.src_addr)
    );
    assert_eq!(
        (reply.tcp.src_port, reply.tcp.dst_port),
        (syn.tcp.dst_port, syn.tcp.src_port)
    );
    assert!(reply.tcp.payload.is_empty(), "payload in a SYN-ACK");
}
