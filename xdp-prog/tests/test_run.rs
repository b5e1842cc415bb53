//! Runs the loaded (not attached) steering program on hand-built frames with
//! BPF_PROG_TEST_RUN and checks the action and the counter that moved. Needs root.

use std::net::Ipv4Addr;

use xdptcp_xdp::{AttachOptions, Counters, Steering};

const XDP_PASS: u32 = 2;
const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("BPF tests need root: run `sudo -E cargo test -p xdptcp-xdp`");
    }
}

/// Ethernet + IPv4 (with `ip_opts` bytes of options, a multiple of 4) + TCP (doff 5) + payload.
struct Frame {
    ethertype: u16,
    ip_opts: usize,
    proto: u8,
    frag_off: u16,
    dst: Ipv4Addr,
    dport: u16,
    doff: u8,
    payload: usize,
    tot_len_delta: i32,
}

impl Default for Frame {
    fn default() -> Self {
        Frame {
            ethertype: 0x0800,
            ip_opts: 0,
            proto: 6,
            frag_off: 0x4000, // DF
            dst: STACK,
            dport: 8080,
            doff: 5,
            payload: 0,
            tot_len_delta: 0,
        }
    }
}

impl Frame {
    fn bytes(&self) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        f.extend_from_slice(&self.ethertype.to_be_bytes());
        let ihl = 20 + self.ip_opts;
        let tot = ihl + 20 + self.payload;
        let tot = (tot as i32 + self.tot_len_delta) as u16;
        let mut ip = vec![0u8; ihl];
        ip[0] = 0x40 | (ihl / 4) as u8;
        ip[2..4].copy_from_slice(&tot.to_be_bytes());
        ip[6..8].copy_from_slice(&self.frag_off.to_be_bytes());
        ip[8] = 64;
        ip[9] = self.proto;
        ip[12..16].copy_from_slice(&PEER.octets());
        ip[16..20].copy_from_slice(&self.dst.octets());
        for b in ip.iter_mut().skip(20) {
            *b = 1; // NOP options
        }
        f.extend_from_slice(&ip);
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&50000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&self.dport.to_be_bytes());
        tcp[12] = self.doff << 4;
        tcp[13] = 0x02; // SYN
        f.extend_from_slice(&tcp);
        f.extend(std::iter::repeat_n(0xab, self.payload));
        f
    }
}

fn loaded(frags: bool) -> Steering {
    require_root();
    let mut s = Steering::load(AttachOptions { frags }).expect("load steering program");
    s.add_listen(STACK, 8080).unwrap();
    s.add_listen(Ipv4Addr::UNSPECIFIED, 9090).unwrap();
    s.set_ephemeral(STACK, 40000, 40999).unwrap();
    s
}

/// Runs one frame; asserts XDP_PASS and returns which counters moved.
fn run(s: &Steering, frame: &[u8]) -> Counters {
    let before = s.counters().unwrap();
    assert_eq!(s.test_run(frame).unwrap(), XDP_PASS);
    s.counters().unwrap().since(&before)
}

const PASSED: Counters = Counters {
    passed: 1,
    redirected: 0,
    malformed: 0,
    no_socket: 0,
    fragments: 0,
    fragments_dropped: 0,
    cookie_syn_acks: 0,
    cookie_slow: 0,
    icmp_errors: 0,
};
const MALFORMED: Counters = Counters {
    malformed: 1,
    ..PASSED_ZERO
};
const NO_SOCKET: Counters = Counters {
    no_socket: 1,
    ..PASSED_ZERO
};
const FRAGMENT: Counters = Counters {
    fragments: 1,
    ..PASSED_ZERO
};
const PASSED_ZERO: Counters = Counters {
    passed: 0,
    redirected: 0,
    malformed: 0,
    no_socket: 0,
    fragments: 0,
    fragments_dropped: 0,
    cookie_syn_acks: 0,
    cookie_slow: 0,
    icmp_errors: 0,
};

#[test]
fn classification_table() {
    for frags in [false, true] {
        let s = loaded(frags);
        let cases: &[(&str, Frame, Counters)] = &[
            // Stack-owned destinations, but no XSK on queue 0: passed as no_socket.
            ("listener", Frame::default(), NO_SOCKET),
            (
                "wildcard listener",
                Frame {
                    dport: 9090,
                    dst: PEER,
                    ..Default::default()
                },
                NO_SOCKET,
            ),
            (
                "ephemeral lo",
                Frame {
                    dport: 40000,
                    ..Default::default()
                },
                NO_SOCKET,
            ),
            (
                "ephemeral hi",
                Frame {
                    dport: 40999,
                    ..Default::default()
                },
                NO_SOCKET,
            ),
            (
                "IP options (IHL 15)",
                Frame {
                    ip_opts: 40,
                    ..Default::default()
                },
                NO_SOCKET,
            ),
            (
                "tot_len shorter than frame (Ethernet padding)",
                Frame {
                    payload: 10,
                    tot_len_delta: -10,
                    ..Default::default()
                },
                NO_SOCKET,
            ),
            // Not the stack's.
            (
                "below ephemeral",
                Frame {
                    dport: 39999,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "above ephemeral",
                Frame {
                    dport: 41000,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "ephemeral on other address",
                Frame {
                    dport: 40000,
                    dst: PEER,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "listener port on other address",
                Frame {
                    dst: PEER,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "UDP",
                Frame {
                    proto: 17,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "ICMP",
                Frame {
                    proto: 1,
                    ..Default::default()
                },
                PASSED,
            ),
            (
                "ARP",
                Frame {
                    ethertype: 0x0806,
                    ..Default::default()
                },
                PASSED,
            ),
            // EtherType IPv6 around an IPv4 header: version 4 where IPv6 needs 6 is a
            // header error (as Linux's ipv6_rcv counts it). Real IPv6: tests/test_run6.rs.
            (
                "EtherType IPv6, IPv4 header",
                Frame {
                    ethertype: 0x86dd,
                    ..Default::default()
                },
                MALFORMED,
            ),
            // RFC 791 section 3.2: later fragments have no TCP header.
            (
                "non-first fragment",
                Frame {
                    frag_off: 0x0001,
                    ..Default::default()
                },
                FRAGMENT,
            ),
            // Broken headers.
            (
                "doff 4 (RFC 9293 3.1: minimum 5)",
                Frame {
                    doff: 4,
                    ..Default::default()
                },
                MALFORMED,
            ),
            (
                "doff beyond frame",
                Frame {
                    doff: 15,
                    ..Default::default()
                },
                MALFORMED,
            ),
            (
                "tot_len beyond frame",
                Frame {
                    tot_len_delta: 1,
                    ..Default::default()
                },
                MALFORMED,
            ),
            (
                "tot_len below headers",
                Frame {
                    tot_len_delta: -1,
                    ..Default::default()
                },
                MALFORMED,
            ),
        ];
        for (name, frame, want) in cases {
            assert_eq!(run(&s, &frame.bytes()), *want, "{name} (frags={frags})");
        }
    }
}

#[test]
fn truncated_headers_are_malformed() {
    let s = loaded(false);
    let full = Frame::default().bytes();
    // Ethernet only, then IPv4 cut short, then TCP cut short.
    for len in [14, 20, 33, 34, 40, 53] {
        assert_eq!(run(&s, &full[..len]), MALFORMED, "truncated to {len}");
    }
    // Bad IPv4 version / IHL.
    let mut f = full.clone();
    f[14] = 0x65;
    assert_eq!(run(&s, &f), MALFORMED, "version 6 in IPv4 ethertype");
    f[14] = 0x44;
    assert_eq!(run(&s, &f), MALFORMED, "IHL 4");
    // IHL claims options the frame does not have.
    f[14] = 0x4f;
    assert_eq!(run(&s, &f), MALFORMED, "IHL 15 in a 54-byte frame");
}

#[test]
fn map_updates_take_effect() {
    let mut s = loaded(false);
    let f = Frame {
        dport: 7000,
        ..Default::default()
    }
    .bytes();
    assert_eq!(run(&s, &f), PASSED);
    s.add_listen(STACK, 7000).unwrap();
    assert_eq!(run(&s, &f), NO_SOCKET);
    s.remove_listen(STACK, 7000).unwrap();
    s.remove_listen(STACK, 7000).unwrap(); // idempotent
    assert_eq!(run(&s, &f), PASSED);

    let e = Frame {
        dport: 40500,
        ..Default::default()
    }
    .bytes();
    assert_eq!(run(&s, &e), NO_SOCKET);
    s.clear_ephemeral().unwrap();
    assert_eq!(run(&s, &e), PASSED);
    assert!(s.set_ephemeral(STACK, 5, 4).is_err());
    // An IPv6-only stack's range takes no IPv4 from the kernel.
    s.set_ephemeral6(40000, 40999).unwrap();
    assert_eq!(run(&s, &e), PASSED);
    assert!(s.set_ephemeral6(5, 4).is_err());

    assert!(s.register_xsk(64, 0).is_err(), "queue beyond the XSKMAP");
    s.unregister_xsk(3).unwrap(); // absent entry is fine
                                  // A non-XSK fd is refused by the kernel.
    assert!(s.register_xsk(0, 0).is_err());
}

#[test]
fn attach_to_missing_interface_is_a_clear_error() {
    require_root();
    let e = Steering::attach("xt-no-such-if0", AttachOptions::default()).unwrap_err();
    assert!(matches!(e, xdptcp_xdp::Error::NoSuchInterface(_)), "{e}");
    assert!(e.to_string().contains("xt-no-such-if0"), "{e}");
}

/// IP fragments: the stack does not reassemble. A first fragment (MF set,
/// offset 0) for a stack port is dropped here (XDP_DROP) and counted; later fragments, which
/// have no port, go to the kernel, which cannot complete a datagram without fragment 0 and so
/// never answers for a stack port. First fragments for kernel ports are the kernel's. A
/// segment with DF and offset 0 (every TCP segment Linux sends) is not a fragment.
#[test]
fn fragments_for_stack_ports() {
    const XDP_DROP: u32 = 1;
    for frags in [false, true] {
        let s = loaded(frags);
        for (name, frame) in [
            (
                "first fragment, listener",
                Frame {
                    frag_off: 0x2000,
                    ..Default::default()
                },
            ),
            (
                "first fragment, ephemeral",
                Frame {
                    frag_off: 0x2000,
                    dport: 40000,
                    ..Default::default()
                },
            ),
            (
                "first fragment, DF and MF",
                Frame {
                    frag_off: 0x6000,
                    ..Default::default()
                },
            ),
        ] {
            let before = s.counters().unwrap();
            assert_eq!(s.test_run(&frame.bytes()).unwrap(), XDP_DROP, "{name}");
            let moved = s.counters().unwrap().since(&before);
            let want = Counters {
                fragments_dropped: 1,
                ..PASSED_ZERO
            };
            assert_eq!(moved, want, "{name}");
        }
        let kernel_port = Frame {
            frag_off: 0x2000,
            dport: 22,
            ..Default::default()
        };
        assert_eq!(
            run(&s, &kernel_port.bytes()),
            PASSED,
            "first fragment, kernel port"
        );
        let later = Frame {
            frag_off: 0x2001,
            ..Default::default()
        };
        assert_eq!(run(&s, &later.bytes()), FRAGMENT, "middle fragment");
        let last = Frame {
            frag_off: 0x0002,
            ..Default::default()
        };
        assert_eq!(run(&s, &last.bytes()), FRAGMENT, "last fragment");
        let df = Frame {
            frag_off: 0x4000,
            ..Default::default()
        };
        assert_eq!(
            run(&s, &df.bytes()),
            NO_SOCKET,
            "DF, offset 0: a whole segment"
        );
    }
}

/// Martian sources (127/8, 0/8, the stack's own address) outside cookie mode: the steering
/// program classifies by destination only, so they go where any segment to that destination
/// goes (to the stack's socket: here, with none bound, `no_socket`), and the worker drops them
/// unanswered, counted `martian_src_in` (runtime `iface::tests::
/// martian_sources_dropped_unanswered_through_the_device`). To a kernel port they are passed,
/// and the kernel drops them itself (ip_route_input_slow). In cookie mode the fast path leaves
/// them to the worker too (cookie_test_run.rs `martian_sources_are_left_to_the_worker`).
#[test]
fn martian_sources_classified_by_destination() {
    let s = loaded(false);
    for src in [
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 0, 0, 0),
        Ipv4Addr::new(0, 9, 9, 9),
        STACK,
    ] {
        for (dport, want) in [(8080, NO_SOCKET), (40500, NO_SOCKET), (22, PASSED)] {
            let mut f = Frame {
                dport,
                ..Frame::default()
            }
            .bytes();
            f[14 + 12..14 + 16].copy_from_slice(&src.octets());
            assert_eq!(run(&s, &f), want, "{src} -> port {dport}");
        }
    }
}
