//! SYN cookies in XDP against the stack's own user-space path: the loaded (not
//! attached) steering program answers crafted SYNs with BPF_PROG_TEST_RUN, and each reply
//! must be byte for byte the frame an `xdptcp_core` endpoint in `tcp_syncookies = 2` with the
//! same secrets sends for the same SYN at the same time (cookie, TSval with its option bits,
//! options, checksums, IPv4 header), and the endpoint must accept the cookie in the third
//! ACK. Needs root.

use std::net::Ipv4Addr;

use xdptcp_core::tcp::endpoint::{Endpoint, EndpointSecrets};
use xdptcp_core::tcp::DEFAULT_COOKIE_PERIOD;
use xdptcp_core::tcp::{Negotiated, TcpConfig};
use xdptcp_core::time::Instant;
use xdptcp_core::wire::{
    emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EtherType, EthernetAddress, EthernetRepr,
    SeqNum, TcpFlags, TcpOptions, TcpRepr,
};
use xdptcp_xdp::{AttachOptions, CookieConfig, Counters, Steering};

const XDP_TX: u32 = 3;
const XDP_PASS: u32 = 2;
const XDP_DROP: u32 = 1;
const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const STACK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const PEER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const PORT: u16 = 8080;
const COOKIE_KEY: [u8; 16] = *b"cookie-secret-01";
const ISN_KEY: [u8; 16] = *b"isn-ts-secret-01";

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("BPF tests need root: run `sudo -E cargo test -p xdptcp-xdp`");
    }
}

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns and of the workers.
fn monotonic() -> Instant {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Instant::from_nanos(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

fn cookie_config(cfg: &TcpConfig, mode: u8) -> CookieConfig {
    CookieConfig {
        enabled: true,
        mode,
        secret: COOKIE_KEY,
        previous: None,
        ts_secret: ISN_KEY,
        period_ns: DEFAULT_COOKIE_PERIOD.as_nanos() as u64,
        mss: cfg.mss,
        window: cfg.rmem.min(0xffff) as u16,
        rcv_shift: Negotiated::our_shift(cfg),
        ttl: 64,
        timestamps: cfg.timestamps,
        sack: cfg.sack,
        window_scaling: cfg.window_scaling,
    }
}

fn loaded(cfg: &TcpConfig, mode: u8) -> Steering {
    require_root();
    let mut s = Steering::load(AttachOptions::default()).expect("load steering program");
    s.add_listen(STACK, PORT).unwrap();
    s.set_ephemeral(STACK, 40000, 40999).unwrap();
    s.set_cookie_config(&cookie_config(cfg, mode)).unwrap();
    s
}

fn endpoint(cfg: &TcpConfig) -> Endpoint {
    let secrets = EndpointSecrets {
        isn: ISN_KEY,
        cookie: COOKIE_KEY,
        seed: 7,
    };
    let mut ep = Endpoint::new(cfg.clone(), secrets, 40000..=40999);
    ep.listen(STACK, PORT, 128).unwrap();
    ep
}

fn frame(src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>, from_peer: bool) -> Vec<u8> {
    let (s, d) = if from_peer {
        (PEER_MAC, STACK_MAC)
    } else {
        (STACK_MAC, PEER_MAC)
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(s),
        dst_addr: EthernetAddress(d),
        ethertype: EtherType::Ipv4,
    };
    let mut buf = vec![0u8; tcp_frame_len(seg)];
    let n = emit_tcp_frame(&mut buf, &eth, src, dst, 64, seg);
    buf.truncate(n);
    buf
}

fn syn(seq: u32, options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        src_port: 50123,
        dst_port: PORT,
        seq: SeqNum(seq),
        ack: SeqNum(0),
        flags: TcpFlags::SYN,
        window: 64240,
        urgent: 0,
        options,
        payload: &[],
    }
}

/// What the endpoint sends for `syn` at `now` (its only reply), as a frame.
fn endpoint_reply(cfg: &TcpConfig, now: Instant, syn: &TcpRepr<'_>) -> Vec<u8> {
    let mut ep = endpoint(cfg);
    ep.on_segment(now, PEER, STACK, syn);
    let mut out = Vec::new();
    ep.poll_transmit(now, |src, dst, seg| {
        if let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (src, dst) {
            out.push(frame(src, dst, seg, false))
        }
    });
    assert_eq!(out.len(), 1, "one cookie SYN-ACK");
    assert_eq!(ep.stats().cookies_sent, 1);
    out.pop().unwrap()
}

/// Runs `syn` through the program and returns (XDP action, frame out, the reference frames
/// the endpoint would have sent at every millisecond the run may have read the clock at).
fn run_syn(s: &Steering, cfg: &TcpConfig, syn: &TcpRepr<'_>) -> (u32, Vec<u8>, Vec<Vec<u8>>) {
    let input = frame(PEER, STACK, syn, true);
    for _ in 0..5 {
        let before = monotonic();
        let (action, out) = s.test_run_out(&input).unwrap();
        let after = monotonic();
        let period = DEFAULT_COOKIE_PERIOD.as_nanos() as u64;
        if before.as_nanos() / period != after.as_nanos() / period {
            continue; // crossed a cookie period: try again
        }
        // The endpoint reads the clock in ns too; TSval only sees milliseconds.
        let refs = (before.as_nanos() / 1_000_000..=after.as_nanos() / 1_000_000)
            .map(|ms| endpoint_reply(cfg, Instant::from_millis(ms).max(before), syn))
            .collect();
        return (action, out, refs);
    }
    panic!("five runs crossed a cookie period boundary");
}

fn opts(mss: Option<u16>, ws: Option<u8>, sack: bool, ts: Option<u32>) -> TcpOptions {
    TcpOptions {
        mss,
        window_scale: ws,
        sack_permitted: sack,
        timestamp: ts.map(|v| (v, 0)),
        ..TcpOptions::default()
    }
}

fn combos() -> Vec<(&'static str, TcpOptions)> {
    vec![
        ("no options", opts(None, None, false, None)),
        ("MSS only", opts(Some(1460), None, false, None)),
        ("MSS 1400", opts(Some(1400), None, false, None)),
        ("MSS 100", opts(Some(100), None, false, None)),
        ("MSS+WS", opts(Some(1460), Some(7), false, None)),
        ("MSS+SACK", opts(Some(1460), None, true, None)),
        ("MSS+TS", opts(Some(1460), None, false, Some(0x1234_5678))),
        ("MSS+TS+WS", opts(Some(1300), Some(9), false, Some(77))),
        ("MSS+TS+SACK", opts(Some(1440), None, true, Some(u32::MAX))),
        (
            "all (Linux SYN)",
            opts(Some(1460), Some(7), true, Some(3_000_000)),
        ),
        (
            "all, WS 15 (clamped to 14)",
            opts(Some(9000), Some(15), true, Some(1)),
        ),
    ]
}

#[test]
fn syn_ack_is_byte_for_byte_the_endpoints() {
    let cfg = TcpConfig {
        syncookies: xdptcp_core::tcp::SynCookieMode::Always,
        ..TcpConfig::default()
    };
    let s = loaded(&cfg, 2);
    for (i, (name, o)) in combos().into_iter().enumerate() {
        let isn = 0xfff0_0000u32.wrapping_add(i as u32 * 7919);
        let syn = syn(isn, o);
        let before = s.counters().unwrap();
        let (action, out, refs) = run_syn(&s, &cfg, &syn);
        assert_eq!(action, XDP_TX, "{name}");
        assert!(
            refs.contains(&out),
            "{name}: XDP\n{out:02x?}\nendpoint\n{refs:02x?}"
        );
        let moved = s.counters().unwrap().since(&before);
        assert_eq!(
            moved,
            Counters {
                cookie_syn_acks: 1,
                ..Counters::default()
            },
            "{name}"
        );
        // Checksums verified independently by the core's parser (IPv4 and TCP).
        let f = parse_tcp_frame(&out).expect("valid frame");
        assert_eq!(f.tcp.flags, TcpFlags::SYN | TcpFlags::ACK, "{name}");
        assert_eq!(f.tcp.ack, SeqNum(isn) + 1u32, "{name}");
        assert_eq!((f.ip.src_addr, f.ip.dst_addr), (STACK, PEER));
        assert_eq!(&out[0..6], &PEER_MAC);

        // The third ACK validates in an endpoint with the same secret: one connection.
        let tsecr = f.tcp.options.timestamp.map(|(val, _)| (5, val));
        let ack = TcpRepr {
            src_port: 50123,
            dst_port: PORT,
            seq: SeqNum(isn) + 1u32,
            ack: f.tcp.seq + 1u32,
            flags: TcpFlags::ACK,
            window: 502,
            urgent: 0,
            options: TcpOptions {
                timestamp: tsecr,
                ..TcpOptions::default()
            },
            payload: &[],
        };
        let mut ep = endpoint(&cfg);
        // The worker has sent no cookie itself: with XDP cookies it must still try the ACK.
        ep.set_xdp_cookies(true);
        let now = monotonic();
        ep.on_segment(now, PEER, STACK, &ack);
        assert_eq!(ep.stats().cookies_accepted, 1, "{name}");
        assert_eq!(ep.stats().cookies_rejected, 0, "{name}");
        assert_eq!(ep.connection_count(), 1, "{name}");
        // A forged cookie is counted and answered as Linux does: <SEQ=SEG.ACK><CTL=RST>.
        // (+4: a smaller offset can decode to another MSS index, as in Linux.)
        let mut ep = endpoint(&cfg);
        ep.set_xdp_cookies(true);
        let forged = TcpRepr {
            ack: ack.ack + 4u32,
            ..ack
        };
        ep.on_segment(now, PEER, STACK, &forged);
        assert_eq!(ep.stats().cookies_rejected, 1, "{name}");
        assert_eq!(ep.connection_count(), 0, "{name}");
        let mut rst = Vec::new();
        ep.poll_transmit(now, |_, _, seg| rst.push((seg.flags, seg.seq)));
        assert_eq!(rst, vec![(TcpFlags::RST, forged.ack)], "{name}");
    }
}

#[test]
fn modes_and_the_listener_flag() {
    let cfg = TcpConfig::default();
    let syn = frame(
        PEER,
        STACK,
        &syn(1, opts(Some(1460), Some(7), true, Some(9))),
        true,
    );
    let mut s = loaded(&cfg, 1);
    let run = |s: &Steering| s.test_run(&syn).unwrap();
    // Mode 1, flag off: steered as usual (no XSK on queue 0 in a test run: passed).
    assert_eq!(run(&s), XDP_PASS);
    s.set_listen_cookies(STACK, PORT, true).unwrap();
    assert_eq!(run(&s), XDP_TX);
    s.set_listen_cookies(STACK, PORT, false).unwrap();
    assert_eq!(run(&s), XDP_PASS);
    // An absent listener is not created by the flag.
    s.set_listen_cookies(STACK, 1, true).unwrap();
    // Mode 2: always; xdp_syncookies = 0: never; mode 0: never.
    s.set_cookie_config(&cookie_config(&cfg, 2)).unwrap();
    assert_eq!(run(&s), XDP_TX);
    let off = CookieConfig {
        enabled: false,
        ..cookie_config(&cfg, 2)
    };
    s.set_cookie_config(&off).unwrap();
    assert_eq!(run(&s), XDP_PASS);
    s.set_cookie_config(&cookie_config(&cfg, 0)).unwrap();
    s.set_listen_cookies(STACK, PORT, true).unwrap();
    assert_eq!(run(&s), XDP_PASS);
    // Ephemeral ports never get cookies.
    s.set_cookie_config(&cookie_config(&cfg, 2)).unwrap();
    let mut eph = syn_repr_to(40100);
    eph.options = opts(Some(1460), None, false, None);
    assert_eq!(
        s.test_run(&frame(PEER, STACK, &eph, true)).unwrap(),
        XDP_PASS
    );
}

#[test]
fn frags_variant_answers_linear_syns_the_same() {
    let cfg = TcpConfig {
        syncookies: xdptcp_core::tcp::SynCookieMode::Always,
        ..TcpConfig::default()
    };
    require_root();
    let mut s = Steering::load(AttachOptions { frags: true }).expect("load xdp.frags");
    s.add_listen(STACK, PORT).unwrap();
    s.set_cookie_config(&cookie_config(&cfg, 2)).unwrap();
    let syn = syn(42, opts(Some(1460), Some(7), true, Some(123_456)));
    let (action, out, refs) = run_syn(&s, &cfg, &syn);
    assert_eq!(action, XDP_TX);
    assert!(refs.contains(&out), "{out:02x?}");
    // A rotation writes the idle slot and flips the selector: the program follows at once.
    let other = CookieConfig {
        secret: *b"cookie-secret-02",
        previous: Some(COOKIE_KEY),
        ..cookie_config(&cfg, 2)
    };
    s.set_cookie_config(&other).unwrap();
    let (_, out, refs) = run_syn(&s, &cfg, &syn);
    assert!(!refs.contains(&out), "another secret, another cookie");
    s.set_cookie_config(&cookie_config(&cfg, 2)).unwrap();
    let (_, out, refs) = run_syn(&s, &cfg, &syn);
    assert!(refs.contains(&out), "back to the endpoints' secret");
}

fn syn_repr_to(port: u16) -> TcpRepr<'static> {
    TcpRepr {
        dst_port: port,
        ..syn(1, TcpOptions::default())
    }
}

#[test]
fn odd_syns_are_left_to_the_worker() {
    let cfg = TcpConfig::default();
    let s = loaded(&cfg, 2);
    let good = frame(
        PEER,
        STACK,
        &syn(1, opts(Some(1460), None, false, None)),
        true,
    );
    assert_eq!(s.test_run(&good).unwrap(), XDP_TX);
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    // Bad TCP checksum.
    let mut f = good.clone();
    f[14 + 20 + 16] ^= 1;
    cases.push(("bad TCP checksum", f));
    // Bad IPv4 header checksum.
    let mut f = good.clone();
    f[14 + 10] ^= 1;
    cases.push(("bad IP checksum", f));
    // Payload on the SYN.
    let data = TcpRepr {
        payload: b"hello",
        ..syn(1, TcpOptions::default())
    };
    cases.push(("SYN with data", frame(PEER, STACK, &data, true)));
    // MSS option with a wrong length (re-checksummed by hand below).
    let mut f = good.clone();
    f[14 + 20 + 21] = 3;
    fix_tcp_checksum(&mut f);
    cases.push(("MSS length 3", f));
    // A first fragment (MF, offset 0): the stack does not reassemble (RFC 791 §3.2), so XDP
    // must not answer it (found by fuzz/xdp_prog); the steering program drops first
    // fragments for stack ports and counts them (docs/receive-path.md).
    let mut frag = good.clone();
    frag[14 + 6] = 0x20;
    fix_ip_checksum(&mut frag);
    let before = s.counters().unwrap();
    assert_eq!(s.test_run(&frag).unwrap(), XDP_DROP, "first fragment (MF)");
    let moved = s.counters().unwrap().since(&before);
    assert_eq!(
        (
            moved.fragments_dropped,
            moved.cookie_slow,
            moved.cookie_syn_acks
        ),
        (1, 0, 0),
        "first fragment (MF)"
    );
    // A SACK option whose length is not 2 + 8n: the stack's parser calls the segment
    // malformed and drops it (RFC 2018 §3), so XDP must not answer it (found by
    // fuzz/xdp_prog). MSS, then the 12 bytes of NOP NOP TS become SACK(6) + 6 NOPs.
    let mut f = frame(
        PEER,
        STACK,
        &syn(1, opts(Some(1460), None, false, Some(5))),
        true,
    );
    assert_eq!(f.len(), 14 + 20 + 20 + 16);
    f[58..70].copy_from_slice(&[5, 6, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    fix_tcp_checksum(&mut f);
    cases.push(("SACK length 6", f));
    for (name, f) in cases {
        let before = s.counters().unwrap();
        assert_eq!(s.test_run(&f).unwrap(), XDP_PASS, "{name}");
        let moved = s.counters().unwrap().since(&before);
        assert_eq!((moved.cookie_slow, moved.cookie_syn_acks), (1, 0), "{name}");
    }
    // Not a plain SYN: not cookie business at all.
    for flags in [TcpFlags::SYN | TcpFlags::ACK, TcpFlags::SYN | TcpFlags::RST] {
        let seg = TcpRepr {
            flags,
            ..syn(1, TcpOptions::default())
        };
        let before = s.counters().unwrap();
        assert_eq!(
            s.test_run(&frame(PEER, STACK, &seg, true)).unwrap(),
            XDP_PASS
        );
        let moved = s.counters().unwrap().since(&before);
        assert_eq!((moved.cookie_slow, moved.cookie_syn_acks), (0, 0));
    }
}

fn fix_ip_checksum(f: &mut [u8]) {
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let mut sum: u32 = f[14..14 + 20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    f[14 + 10..14 + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
}

fn fix_tcp_checksum(f: &mut [u8]) {
    let tcp = 14 + 20;
    f[tcp + 16] = 0;
    f[tcp + 17] = 0;
    let len = f.len() - tcp;
    let mut sum: u32 = 0;
    for c in f[14 + 12..14 + 20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum += 6 + len as u32;
    for c in f[tcp..].chunks(2) {
        let hi = c[0];
        let lo = c.get(1).copied().unwrap_or(0);
        sum += u32::from(u16::from_be_bytes([hi, lo]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    f[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
}

/// Item 13 in the fast path: a SYN from a source Linux calls martian (0/8, 127/8, the stack's
/// own address) or from a non-unicast one is never answered in XDP; it goes to the worker
/// unchanged (`cookie_slow`; here, with no AF_XDP socket bound, XDP_PASS), which drops it
/// unanswered and counts `martian_src_in` (endpoint `martian_sources_are_not_answered`).
/// 240/4 is unicast for Linux and answered like any source.
#[test]
fn martian_sources_are_left_to_the_worker() {
    let cfg = TcpConfig::default();
    let s = loaded(&cfg, 2);
    let seg = syn(1, opts(Some(1460), None, false, None));
    let cases = [
        (Ipv4Addr::new(127, 0, 0, 1), false),
        (Ipv4Addr::new(127, 255, 0, 9), false),
        (Ipv4Addr::new(0, 1, 2, 3), false),
        (Ipv4Addr::UNSPECIFIED, false),
        (STACK, false),
        (Ipv4Addr::new(224, 0, 0, 1), false),
        (Ipv4Addr::BROADCAST, false),
        (Ipv4Addr::new(240, 0, 0, 1), true),
        (PEER, true),
    ];
    for (src, answered) in cases {
        let before = s.counters().unwrap();
        let action = s.test_run(&frame(src, STACK, &seg, true)).unwrap();
        let moved = s.counters().unwrap().since(&before);
        let want = if answered {
            (XDP_TX, 0, 1)
        } else {
            (XDP_PASS, 1, 0)
        };
        assert_eq!(
            (action, moved.cookie_slow, moved.cookie_syn_acks),
            want,
            "{src}"
        );
    }
}
