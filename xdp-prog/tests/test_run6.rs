//! Runs the loaded (not attached) steering program on hand-built IPv6 frames with
//! BPF_PROG_TEST_RUN and checks the action and the counters that moved (shared and
//! IPv6-only). No XSK is registered, so "steered to the stack" shows as `no_socket`.
//! Addresses from 2001:2::/48 only. Needs root.

use std::net::{Ipv4Addr, Ipv6Addr};

use xdptcp_xdp::{AttachOptions, Counters, Counters6, Steering, ADDRS6_MAX};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const STACK: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const STACK2: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const PEER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
const ROUTER: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);

const NH_HOP: u8 = 0;
const NH_TCP: u8 = 6;
const NH_UDP: u8 = 17;
const NH_ROUTING: u8 = 43;
const NH_FRAGMENT: u8 = 44;
const NH_ESP: u8 = 50;
const NH_ICMPV6: u8 = 58;
const NH_DEST: u8 = 60;

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("BPF tests need root: run `sudo -E cargo test -p xdptcp-xdp`");
    }
}

/// Ethernet + IPv6 + extension headers + an upper layer (a TCP SYN with `doff`, or `upper`
/// as given) + payload bytes.
struct Frame6 {
    version: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    /// (type, whole header bytes; the first byte is rewritten to chain).
    exts: Vec<(u8, Vec<u8>)>,
    proto: u8,
    dport: u16,
    doff: u8,
    upper: Option<Vec<u8>>,
    payload: usize,
    plen_delta: i32,
}

impl Default for Frame6 {
    fn default() -> Self {
        Frame6 {
            version: 6,
            src: PEER,
            dst: STACK,
            exts: Vec::new(),
            proto: NH_TCP,
            dport: 8080,
            doff: 5,
            upper: None,
            payload: 0,
            plen_delta: 0,
        }
    }
}

fn tcp_header(sport: u16, dport: u16, doff: u8) -> Vec<u8> {
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&sport.to_be_bytes());
    tcp[2..4].copy_from_slice(&dport.to_be_bytes());
    tcp[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    tcp[12] = doff << 4;
    tcp[13] = 0x02; // SYN
    tcp
}

fn ipv6_header(version: u8, plen: u16, nh: u8, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut h = vec![version << 4, 0, 0, 0];
    h.extend_from_slice(&plen.to_be_bytes());
    h.extend_from_slice(&[nh, 64]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

impl Frame6 {
    fn bytes(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for (i, (_, h)) in self.exts.iter().enumerate() {
            let mut h = h.clone();
            h[0] = self.exts.get(i + 1).map_or(self.proto, |e| e.0);
            body.extend_from_slice(&h);
        }
        match &self.upper {
            Some(u) => body.extend_from_slice(u),
            None => body.extend_from_slice(&tcp_header(50000, self.dport, self.doff)),
        }
        body.extend(std::iter::repeat_n(0xab, self.payload));
        let plen = (body.len() as i32 + self.plen_delta) as u16;
        let first = self.exts.first().map_or(self.proto, |e| e.0);
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x86, 0xdd];
        f.extend_from_slice(&ipv6_header(self.version, plen, first, self.src, self.dst));
        f.extend_from_slice(&body);
        f
    }
}

/// An 8-byte options header (PadN 4 after the two header bytes).
fn opts() -> Vec<u8> {
    vec![0, 0, 1, 4, 0, 0, 0, 0]
}

/// An options header of `len` bytes (a multiple of 8, >= 16) with one skippable option.
fn big_opts(len: usize) -> Vec<u8> {
    let mut h = vec![0, (len / 8 - 1) as u8, 1, 2, 0, 0, 0x1e, (len - 8) as u8];
    h.resize(len, 0x55);
    h
}

fn frag(offset: u16, more: bool) -> Vec<u8> {
    let w = offset << 3 | more as u16;
    let mut h = vec![0, 0];
    h.extend_from_slice(&w.to_be_bytes());
    h.extend_from_slice(&7u32.to_be_bytes());
    h
}

/// An ICMPv6 message (checksum not filled: the program does not verify it) quoting the
/// stack's segment from `(qsrc, sport)` to the peer, `quote_tcp` bytes of its TCP header.
fn icmp6(t: u8, code: u8, qsrc: Ipv6Addr, sport: u16, qproto: u8, quote_tcp: usize) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0, 0, 0, 0x05, 0x78];
    m.extend_from_slice(&ipv6_header(6, 1440, qproto, qsrc, PEER));
    m.extend_from_slice(&tcp_header(sport, 45678, 5)[..quote_tcp]);
    m
}

fn icmp_frame(src: Ipv6Addr, msg: Vec<u8>) -> Frame6 {
    Frame6 {
        src,
        proto: NH_ICMPV6,
        upper: Some(msg),
        ..Default::default()
    }
}

fn loaded(frags: bool) -> Steering {
    require_root();
    let mut s = Steering::load(AttachOptions { frags }).expect("load steering program");
    s.add_listen6(STACK, 8080).unwrap();
    s.add_listen6(Ipv6Addr::UNSPECIFIED, 9090).unwrap();
    s.add_addr6(STACK).unwrap();
    s.set_ephemeral(Ipv4Addr::new(198, 18, 0, 1), 40000, 40999)
        .unwrap();
    // An IPv4 listener: its port is not steered for IPv6.
    s.add_listen(Ipv4Addr::UNSPECIFIED, 7070).unwrap();
    s
}

const ZERO: Counters = Counters {
    icmp_errors: 0,
    passed: 0,
    redirected: 0,
    malformed: 0,
    no_socket: 0,
    fragments: 0,
    fragments_dropped: 0,
    cookie_syn_acks: 0,
    cookie_slow: 0,
};
const PASSED: Counters = Counters { passed: 1, ..ZERO };
const MALFORMED: Counters = Counters {
    malformed: 1,
    ..ZERO
};
const NO_SOCKET: Counters = Counters {
    no_socket: 1,
    ..ZERO
};
const FRAGMENT: Counters = Counters {
    fragments: 1,
    ..ZERO
};
const EXT_LIMIT: Counters6 = Counters6 {
    redirected: 0,
    icmp_errors_redirected: 0,
    ext_limit: 1,
};

/// Runs one frame; asserts `action` and returns which counters moved.
fn run(s: &Steering, frame: &[u8], action: u32) -> (Counters, Counters6) {
    let (before, before6) = (s.counters().unwrap(), s.counters6().unwrap());
    assert_eq!(s.test_run(frame).unwrap(), action);
    (
        s.counters().unwrap().since(&before),
        s.counters6().unwrap().since(&before6),
    )
}

fn table(s: &Steering, cases: Vec<(&str, Frame6, Counters, Counters6)>, frags: bool) {
    for (name, frame, want, want6) in cases {
        let (got, got6) = run(s, &frame.bytes(), XDP_PASS);
        assert_eq!((got, got6), (want, want6), "{name} (frags={frags})");
    }
}

#[test]
fn classification_table() {
    let none = Counters6::default();
    for frags in [false, true] {
        let s = loaded(frags);
        let cases = vec![
            // The stack's (no XSK on queue 0: no_socket).
            ("listener", Frame6::default(), NO_SOCKET, none),
            (
                "wildcard listener",
                Frame6 {
                    dport: 9090,
                    dst: STACK2,
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "ephemeral lo",
                Frame6 {
                    dport: 40000,
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "ephemeral hi",
                Frame6 {
                    dport: 40999,
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "payload length shorter than frame (Ethernet padding)",
                Frame6 {
                    payload: 6,
                    plen_delta: -6,
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "hop-by-hop, dest options, routing (segments left 0), atomic fragment",
                Frame6 {
                    exts: vec![
                        (NH_HOP, opts()),
                        (NH_DEST, opts()),
                        (NH_ROUTING, vec![0, 0, 0, 0, 0, 0, 0, 0]),
                        (NH_FRAGMENT, frag(0, false)),
                    ],
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "8 extension headers",
                Frame6 {
                    exts: (0..8).map(|_| (NH_DEST, opts())).collect(),
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            (
                "256 bytes of extension headers",
                Frame6 {
                    exts: vec![(NH_DEST, big_opts(128)), (NH_DEST, big_opts(128))],
                    ..Default::default()
                },
                NO_SOCKET,
                none,
            ),
            // Beyond the walk's bound: the kernel's.
            (
                "9 extension headers",
                Frame6 {
                    exts: (0..9).map(|_| (NH_DEST, opts())).collect(),
                    ..Default::default()
                },
                PASSED,
                EXT_LIMIT,
            ),
            (
                "264 bytes of extension headers",
                Frame6 {
                    exts: vec![(NH_DEST, big_opts(128)), (NH_DEST, big_opts(136))],
                    ..Default::default()
                },
                PASSED,
                EXT_LIMIT,
            ),
            // Not the stack's.
            (
                "other port",
                Frame6 {
                    dport: 22,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "above ephemeral",
                Frame6 {
                    dport: 41000,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "ephemeral on an address not the stack's",
                Frame6 {
                    dport: 40000,
                    dst: STACK2,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "listener port on another address",
                Frame6 {
                    dst: STACK2,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "IPv4 listener's port",
                Frame6 {
                    dport: 7070,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "UDP",
                Frame6 {
                    proto: NH_UDP,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "ESP",
                Frame6 {
                    proto: NH_ESP,
                    ..Default::default()
                },
                PASSED,
                none,
            ),
            (
                "NDP neighbour solicitation",
                icmp_frame(PEER, vec![135, 0, 0, 0, 0, 0, 0, 0]),
                PASSED,
                none,
            ),
            (
                "echo request",
                icmp_frame(PEER, vec![128, 0, 0, 0, 0, 1, 0, 1]),
                PASSED,
                none,
            ),
            // Broken headers: the kernel's, counted.
            (
                "version 4",
                Frame6 {
                    version: 4,
                    ..Default::default()
                },
                MALFORMED,
                none,
            ),
            (
                "TCP data offset 3",
                Frame6 {
                    doff: 3,
                    ..Default::default()
                },
                MALFORMED,
                none,
            ),
            (
                "TCP data offset past the frame",
                Frame6 {
                    doff: 15,
                    ..Default::default()
                },
                MALFORMED,
                none,
            ),
            (
                "payload length longer than frame",
                Frame6 {
                    plen_delta: 1,
                    ..Default::default()
                },
                MALFORMED,
                none,
            ),
            (
                "extension header past the frame",
                Frame6 {
                    exts: vec![(NH_DEST, opts())],
                    upper: Some(vec![]),
                    proto: NH_DEST,
                    ..Default::default()
                },
                MALFORMED,
                none,
            ),
        ];
        table(&s, cases, frags);
    }
}

#[test]
fn truncated_headers_are_malformed() {
    let s = loaded(false);
    let f = Frame6::default().bytes();
    for len in [14 + 39, 14 + 40 + 19] {
        let (got, _) = run(&s, &f[..len], XDP_PASS);
        assert_eq!(got, MALFORMED, "{len} bytes");
    }
}

/// As for IPv4: a first fragment for a stack port is dropped and counted; a later fragment
/// (no TCP header) goes to the kernel, counted as a fragment if it is TCP's.
#[test]
fn fragments_for_stack_ports() {
    for frags in [false, true] {
        let s = loaded(frags);
        for (name, dport) in [("listener", 8080), ("ephemeral", 40000)] {
            let f = Frame6 {
                exts: vec![(NH_FRAGMENT, frag(0, true))],
                dport,
                ..Default::default()
            };
            let (got, _) = run(&s, &f.bytes(), XDP_DROP);
            let want = Counters {
                fragments_dropped: 1,
                ..ZERO
            };
            assert_eq!(got, want, "{name}");
        }
        let kernel_port = Frame6 {
            exts: vec![(NH_DEST, opts()), (NH_FRAGMENT, frag(0, true))],
            dport: 22,
            ..Default::default()
        };
        assert_eq!(run(&s, &kernel_port.bytes(), XDP_PASS).0, PASSED);
        let later = |proto| Frame6 {
            exts: vec![(NH_FRAGMENT, frag(185, false))],
            proto,
            upper: Some(vec![0xab; 24]),
            ..Default::default()
        };
        assert_eq!(run(&s, &later(NH_TCP).bytes(), XDP_PASS).0, FRAGMENT);
        assert_eq!(run(&s, &later(NH_UDP).bytes(), XDP_PASS).0, PASSED);
    }
}

/// ICMPv6 errors quoting a stack flow are steered like the flow (no XSK here: no_socket);
/// other ICMPv6 goes to the kernel.
#[test]
fn icmpv6_errors_about_stack_flows() {
    let none = Counters6::default();
    for frags in [false, true] {
        let s = loaded(frags);
        let mut with_ext = icmp6(2, 0, STACK, 8080, NH_DEST, 8);
        // Insert a destination options header between the quoted IPv6 and TCP headers.
        with_ext.splice(8 + 40..8 + 40, [NH_TCP, 0, 1, 4, 0, 0, 0, 0]);
        let cases = vec![
            (
                "packet too big, listener flow",
                icmp_frame(ROUTER, icmp6(2, 0, STACK, 8080, NH_TCP, 20)),
                NO_SOCKET,
                none,
            ),
            (
                "port unreachable, ephemeral flow",
                icmp_frame(PEER, icmp6(1, 4, STACK, 40123, NH_TCP, 8)),
                NO_SOCKET,
                none,
            ),
            (
                "time exceeded, wildcard listener",
                icmp_frame(ROUTER, icmp6(3, 0, STACK2, 9090, NH_TCP, 8)),
                NO_SOCKET,
                none,
            ),
            (
                "quoted extension header",
                icmp_frame(ROUTER, with_ext),
                NO_SOCKET,
                none,
            ),
            (
                "packet too big, the kernel's flow",
                icmp_frame(ROUTER, icmp6(2, 0, STACK, 22, NH_TCP, 8)),
                PASSED,
                none,
            ),
            (
                "packet too big, quoting UDP",
                icmp_frame(ROUTER, icmp6(2, 0, STACK, 8080, NH_UDP, 8)),
                PASSED,
                none,
            ),
            // RFC 4443 §3.4: steered like the other errors (Linux's tcp_v6_err acts on it).
            (
                "parameter problem, listener flow",
                icmp_frame(PEER, icmp6(4, 1, STACK, 8080, NH_TCP, 8)),
                NO_SOCKET,
                none,
            ),
            (
                "parameter problem, ephemeral flow",
                icmp_frame(ROUTER, icmp6(4, 0, STACK, 40123, NH_TCP, 8)),
                NO_SOCKET,
                none,
            ),
            (
                "parameter problem, the kernel's flow",
                icmp_frame(PEER, icmp6(4, 2, STACK, 22, NH_TCP, 8)),
                PASSED,
                none,
            ),
            (
                "type 5 (unassigned error type)",
                icmp_frame(ROUTER, icmp6(5, 0, STACK, 8080, NH_TCP, 8)),
                PASSED,
                none,
            ),
            (
                "quote cut inside the TCP ports and sequence number",
                icmp_frame(ROUTER, icmp6(2, 0, STACK, 8080, NH_TCP, 7)),
                MALFORMED,
                none,
            ),
            (
                "quote cut inside the IPv6 header",
                icmp_frame(ROUTER, icmp6(2, 0, STACK, 8080, NH_TCP, 0)[..47].to_vec()),
                MALFORMED,
                none,
            ),
        ];
        table(&s, cases, frags);
    }
}

#[test]
fn map_updates_take_effect() {
    let mut s = loaded(false);
    let f = Frame6 {
        dport: 8081,
        ..Default::default()
    };
    assert_eq!(run(&s, &f.bytes(), XDP_PASS).0, PASSED);
    s.add_listen6(STACK, 8081).unwrap();
    assert_eq!(run(&s, &f.bytes(), XDP_PASS).0, NO_SOCKET);
    s.remove_listen6(STACK, 8081).unwrap();
    s.remove_listen6(STACK, 8081).unwrap(); // absent is fine
    assert_eq!(run(&s, &f.bytes(), XDP_PASS).0, PASSED);
    // Addresses: the ephemeral range on STACK2 once it is the stack's, or for any address.
    let eph = Frame6 {
        dport: 40500,
        dst: STACK2,
        ..Default::default()
    };
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, PASSED);
    s.add_addr6(STACK2).unwrap();
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, NO_SOCKET);
    s.remove_addr6(STACK2).unwrap();
    s.remove_addr6(STACK2).unwrap();
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, PASSED);
    s.add_addr6(Ipv6Addr::UNSPECIFIED).unwrap();
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, NO_SOCKET);
    // No ephemeral range: only listeners.
    s.clear_ephemeral().unwrap();
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, PASSED);
    // An IPv6-only stack's range (test_run.rs: no IPv4 with it).
    s.set_ephemeral6(40000, 40999).unwrap();
    assert_eq!(run(&s, &eph.bytes(), XDP_PASS).0, NO_SOCKET);
    s.clear_ephemeral().unwrap();
    // The address map is bounded.
    for i in 0..ADDRS6_MAX as u16 {
        let _ = s.add_addr6(Ipv6Addr::new(0x2001, 2, 0, 2, 0, 0, 0, i));
    }
    assert!(s
        .add_addr6(Ipv6Addr::new(0x2001, 2, 0, 3, 0, 0, 0, 1))
        .is_err());
}
