//! ICMP errors in the steering program (src/bpf/icmp.h), run with BPF_PROG_TEST_RUN on
//! hand-built frames: an error quoting a TCP segment the stack sent (quoted source = a
//! listener or the ephemeral range, the TCP rule reversed) is steered to the stack; every
//! other ICMP message stays with the kernel. Needs root.

use std::net::Ipv4Addr;

use xdptcp_xdp::{AttachOptions, Counters, Steering};

const XDP_PASS: u32 = 2;
const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
const ROUTER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("BPF tests need root: run `sudo -E cargo test -p xdptcp-xdp`");
    }
}

/// Ethernet + IPv4 (ICMP) + ICMP header + quoted IPv4 header (with `inner_opts` option
/// bytes) + `quoted_tcp` bytes of the quoted TCP header.
#[derive(Clone)]
struct Icmp {
    outer_dst: Ipv4Addr,
    outer_frag: u16,
    ty: u8,
    code: u8,
    inner_src: Ipv4Addr,
    inner_ver_ihl: u8,
    inner_opts: usize,
    inner_proto: u8,
    inner_frag: u16,
    sport: u16,
    quoted_tcp: usize,
}

impl Default for Icmp {
    fn default() -> Self {
        Icmp {
            outer_dst: STACK,
            outer_frag: 0,
            ty: 3,
            code: 4,
            inner_src: STACK,
            inner_ver_ihl: 0x45,
            inner_opts: 0,
            inner_proto: 6,
            inner_frag: 0x4000,
            sport: 8080,
            quoted_tcp: 8,
        }
    }
}

impl Icmp {
    fn bytes(&self) -> Vec<u8> {
        let mut inner = vec![0u8; 20 + self.inner_opts];
        inner[0] = self.inner_ver_ihl;
        inner[2..4].copy_from_slice(&1500u16.to_be_bytes());
        inner[6..8].copy_from_slice(&self.inner_frag.to_be_bytes());
        inner[8] = 1;
        inner[9] = self.inner_proto;
        inner[12..16].copy_from_slice(&self.inner_src.octets());
        inner[16..20].copy_from_slice(&PEER.octets());
        for b in inner.iter_mut().skip(20) {
            *b = 1;
        }
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&self.sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0x01020304u32.to_be_bytes());
        inner.extend_from_slice(&tcp[..self.quoted_tcp]);
        let mut icmp = vec![self.ty, self.code, 0, 0, 0, 0, 0x05, 0x00];
        icmp.extend_from_slice(&inner);
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        let mut ip = vec![0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
        ip[6..8].copy_from_slice(&self.outer_frag.to_be_bytes());
        ip[8] = 64;
        ip[9] = 1;
        ip[12..16].copy_from_slice(&ROUTER.octets());
        ip[16..20].copy_from_slice(&self.outer_dst.octets());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
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

fn run(s: &Steering, frame: &[u8]) -> Counters {
    let before = s.counters().unwrap();
    assert_eq!(s.test_run(frame).unwrap(), XDP_PASS);
    s.counters().unwrap().since(&before)
}

#[test]
fn icmp_errors_for_stack_flows_are_steered() {
    // Steered, but no XSK on queue 0 in a test run: counted as no_socket (then passed).
    let steered = Counters {
        icmp_errors: 1,
        no_socket: 1,
        ..Counters::default()
    };
    let passed = Counters {
        passed: 1,
        ..Counters::default()
    };
    let d = Icmp::default;
    let cases: Vec<(&str, Icmp, Counters)> = vec![
        ("frag needed, listener source", d(), steered),
        (
            "port unreachable, ephemeral source",
            Icmp {
                code: 3,
                sport: 40000,
                ..d()
            },
            steered,
        ),
        (
            "host unreachable, last ephemeral port",
            Icmp {
                code: 1,
                sport: 40999,
                ..d()
            },
            steered,
        ),
        ("code 15", Icmp { code: 15, ..d() }, steered),
        (
            "time exceeded in transit",
            Icmp {
                ty: 11,
                code: 0,
                ..d()
            },
            steered,
        ),
        (
            "time exceeded, reassembly",
            Icmp {
                ty: 11,
                code: 1,
                ..d()
            },
            steered,
        ),
        // RFC 792 type 12, codes 0-2 (RFC 1108's 1, RFC 1812's 2): Linux's tcp_v4_err acts
        // on it (EPROTO), so the stack does for its flows.
        (
            "parameter problem, listener source",
            Icmp {
                ty: 12,
                code: 0,
                ..d()
            },
            steered,
        ),
        (
            "parameter problem code 1 (missing option), ephemeral source",
            Icmp {
                ty: 12,
                code: 1,
                sport: 40500,
                ..d()
            },
            steered,
        ),
        (
            "parameter problem code 2 (bad length)",
            Icmp {
                ty: 12,
                code: 2,
                ..d()
            },
            steered,
        ),
        ("wildcard listener", Icmp { sport: 9090, ..d() }, steered),
        (
            "quoted header with options",
            Icmp {
                inner_ver_ihl: 0x46,
                inner_opts: 4,
                ..d()
            },
            steered,
        ),
        // The kernel's.
        (
            "kernel's port below the ephemeral range",
            Icmp {
                sport: 39999,
                ..d()
            },
            passed,
        ),
        (
            "ephemeral port of another address",
            Icmp {
                sport: 40000,
                inner_src: ROUTER,
                outer_dst: ROUTER,
                ..d()
            },
            passed,
        ),
        (
            "quoted source is not the error's destination",
            Icmp {
                inner_src: ROUTER,
                ..d()
            },
            passed,
        ),
        (
            "echo request",
            Icmp {
                ty: 8,
                code: 0,
                ..d()
            },
            passed,
        ),
        (
            "echo reply",
            Icmp {
                ty: 0,
                code: 0,
                ..d()
            },
            passed,
        ),
        (
            "redirect",
            Icmp {
                ty: 5,
                code: 1,
                ..d()
            },
            passed,
        ),
        (
            "parameter problem code 3 (unassigned)",
            Icmp {
                ty: 12,
                code: 3,
                ..d()
            },
            passed,
        ),
        (
            "parameter problem, the kernel's flow",
            Icmp {
                ty: 12,
                code: 0,
                sport: 22,
                ..d()
            },
            passed,
        ),
        (
            "source quench",
            Icmp {
                ty: 4,
                code: 0,
                ..d()
            },
            passed,
        ),
        ("unreachable code 16", Icmp { code: 16, ..d() }, passed),
        (
            "time exceeded code 2",
            Icmp {
                ty: 11,
                code: 2,
                ..d()
            },
            passed,
        ),
        (
            "quoted UDP",
            Icmp {
                inner_proto: 17,
                ..d()
            },
            passed,
        ),
        (
            "quoted non-first fragment",
            Icmp {
                inner_frag: 0x0010,
                ..d()
            },
            passed,
        ),
        (
            "quoted version 6",
            Icmp {
                inner_ver_ihl: 0x65,
                ..d()
            },
            passed,
        ),
        (
            "quoted IHL 4",
            Icmp {
                inner_ver_ihl: 0x44,
                ..d()
            },
            passed,
        ),
        (
            "quote cut before the ports",
            Icmp {
                quoted_tcp: 7,
                ..d()
            },
            passed,
        ),
        (
            "quoted IHL beyond the frame",
            Icmp {
                inner_ver_ihl: 0x4f,
                ..d()
            },
            passed,
        ),
        (
            "fragmented ICMP",
            Icmp {
                outer_frag: 0x2000,
                ..d()
            },
            passed,
        ),
    ];
    for frags in [false, true] {
        let s = loaded(frags);
        for (name, icmp, want) in &cases {
            assert_eq!(run(&s, &icmp.bytes()), *want, "{name} (frags={frags})");
        }
        // Cut anywhere: never steered, never malformed-counted beyond the outer header.
        let full = d().bytes();
        for len in 34..full.len() {
            let moved = run(&s, &full[..len]);
            assert_eq!(moved.icmp_errors, 0, "cut to {len}");
        }
    }
}
