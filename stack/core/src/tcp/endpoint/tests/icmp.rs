//! ICMP errors through the endpoint: the quoted 4-tuple finds the connection; every error is
//! counted by outcome. The errors are built as a router / host would send them and parsed by
//! the wire layer on the way in. A Parameter Problem (RFC 792 type 12) acts as Linux's
//! `tcp_v4_err` does (EPROTO, fatal); the checks are shared with the ICMPv6 one (icmp6.rs).

use super::*;
use crate::tcp::icmp::{IcmpError, IcmpOutcome, Unreachable};
use crate::wire::{
    DstUnreachable, Icmpv4ErrorRepr, Icmpv4Message, Ipv4Packet, Ipv4Repr, ParamProblem,
};

/// The ICMP error `msg` about our segment `f`, quoting its IPv4 header and first 8 bytes,
/// parsed back; returns (4-tuple with our side local, error, quoted seq).
fn icmp_about(f: &Frame, msg: Icmpv4Message) -> (FourTuple, IcmpError, SeqNum) {
    let (tuple, m, seq) = icmp_msg_about(f, msg);
    (tuple, IcmpError::from_icmpv4(&m), seq)
}

/// As [`icmp_about`], with the parsed message itself (for `Endpoint::on_icmpv4_error`).
fn icmp_msg_about(f: &Frame, msg: Icmpv4Message) -> (FourTuple, Icmpv4Message, SeqNum) {
    let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (f.src, f.dst) else {
        panic!("an IPv4 segment");
    };
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: crate::wire::PROTO_TCP,
        payload_len: f.bytes.len(),
        ttl: 1,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
    };
    let mut quote = vec![0u8; 20 + 8];
    ip.emit(&mut Ipv4Packet::new_unchecked(&mut quote[..]));
    quote[20..].copy_from_slice(&f.bytes[..8]);
    let mut buf = [0u8; 64];
    let n = Icmpv4ErrorRepr::emit(&msg, &quote, &mut buf);
    let r = Icmpv4ErrorRepr::parse(&buf[..n]).unwrap();
    let q = r.quoted.tcp().unwrap();
    let tuple = FourTuple::new(
        std::net::SocketAddrV4::new(r.quoted.src_addr, q.src_port),
        std::net::SocketAddrV4::new(r.quoted.dst_addr, q.dst_port),
    );
    (tuple, r.message, q.seq)
}

const PORT_UNREACH: Icmpv4Message = Icmpv4Message::DstUnreachable {
    code: DstUnreachable::PortUnreachable,
    next_hop_mtu: 0,
};

/// Linux tcp_v4_err: a port unreachable answering our SYN fails the connect at once with
/// ECONNREFUSED, as a RST would (RFC 1122 §4.2.3.9); nothing is sent back.
#[test]
fn port_unreachable_fails_connect() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_999);
    let ca = a.connect(T0, A, SocketAddrV4::new(B, 81)).unwrap();
    let syn = flush(&mut a, T0).pop().unwrap();
    let (tuple, err, seq) = icmp_about(&syn, PORT_UNREACH);
    assert_eq!(a.on_icmp_error(T0, tuple, err, seq), IcmpOutcome::Fatal);
    assert!(flush(&mut a, T0).is_empty());
    assert_eq!(
        conn_events(&mut a, ca),
        [Event::Error(ConnError::Refused), Event::Closed]
    );
    assert_eq!(a.stats().icmp.fatal, 1);
    // The same error again finds no connection's flight (CLOSED); another tuple none at all.
    assert_eq!(
        a.on_icmp_error(T0, tuple, err, seq),
        IcmpOutcome::OutOfWindow
    );
    let mut other = tuple;
    other.remote_port = 82;
    assert_eq!(
        a.on_icmp_error(T0, other, err, seq),
        IcmpOutcome::NoConnection
    );
    let s = a.stats().icmp;
    assert_eq!(
        (s.errors_in, s.fatal, s.out_of_window, s.no_connection),
        (3, 1, 1, 1)
    );
}

/// RFC 1191: a router's "fragmentation needed" (next-hop MTU 1280) for our first data
/// segment: the flight is resent at once at 1280 - 40 - 12 (timestamps) = 1228 bytes per
/// segment, and the transfer completes byte-exact.
#[test]
fn frag_needed_resizes_and_transfer_completes() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(p.a.send(p.now, ca, &data).unwrap(), 6000);
    let lost = flush(&mut p.a, p.now);
    assert!(lost.iter().all(|f| f.repr().payload.len() <= 1448));
    let frag = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::FragNeeded,
        next_hop_mtu: 1280,
    };
    let (tuple, err, seq) = icmp_about(&lost[0], frag);
    assert_eq!(
        p.a.on_icmp_error(p.now, tuple, err, seq),
        IcmpOutcome::PmtuLowered(1280)
    );
    assert_eq!(p.a.pmtu(ca), Some(1280));
    let again = flush(&mut p.a, p.now);
    let lens: Vec<usize> = again.iter().map(|f| f.repr().payload.len()).collect();
    assert_eq!(lens, vec![1228, 1228, 1228, 1228, 1088]);
    assert_eq!(again[0].seq(), lost[0].seq());
    deliver(&mut p.b, p.now, &again);
    p.run();
    let mut got = vec![0u8; 8000];
    let n = p.b.recv(cb, &mut got).unwrap();
    assert_eq!(&got[..n], &data[..]);
    assert_eq!(p.a.stats().icmp.pmtu_lowered, 1);
}

/// Linux keeps a learned path MTU per destination (a route exception, `ip_rt_mtu_expires`
/// = 600 s): the next connection to the same peer starts at the lowered size (1228 data
/// bytes with timestamps) without losing a flight first; after the expiry it starts at the
/// link's again.
#[test]
fn learned_pmtu_applies_to_the_next_connection_until_it_expires() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, _cb) = p.open(l, 80);
    assert_eq!(p.a.send(p.now, ca, &[5u8; 3000]).unwrap(), 3000);
    let lost = flush(&mut p.a, p.now);
    let frag = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::FragNeeded,
        next_hop_mtu: 1280,
    };
    let (tuple, err, seq) = icmp_about(&lost[0], frag);
    p.a.on_icmp_error(p.now, tuple, err, seq);
    p.run();
    // A second connection to B: its first data segment is already at the learned size.
    let (ca2, _) = p.open(l, 80);
    assert_eq!(p.a.pmtu(ca2), Some(1280));
    p.a.send(p.now, ca2, &[6u8; 3000]).unwrap();
    let first = flush(&mut p.a, p.now);
    assert_eq!(first[0].repr().payload.len(), 1228);
    p.run();
    // 600 s later the learned value is gone: a new connection starts at the link's MTU.
    p.advance(p.now + super::super::icmp::PMTU_EXPIRES);
    let (ca3, _) = p.open(l, 80);
    assert_eq!(p.a.pmtu(ca3), Some(1500));
}

/// A Parameter Problem `err` (either family) quoting the SYN with sequence number `seq` of
/// connection `ca` in SYN-SENT (Linux `tcp_v4_err` / `tcp_v6_err`): one quoting another
/// sequence number is ignored (RFC 5927 §4.1) and the connect goes on; ours fails it with
/// EPROTO, and nothing is sent back.
pub(super) fn param_problem_fails_connect(
    a: &mut Endpoint,
    ca: ConnId,
    tuple: FourTuple,
    err: IcmpError,
    seq: SeqNum,
) {
    assert_eq!(err, IcmpError::PARAM_PROBLEM);
    assert_eq!(
        a.on_icmp_error(T0, tuple, err, seq - 1u32),
        IcmpOutcome::OutOfWindow
    );
    assert_eq!(a.state(ca), Some(State::SynSent));
    assert_eq!(a.on_icmp_error(T0, tuple, err, seq), IcmpOutcome::Fatal);
    assert!(flush(a, T0).is_empty());
    assert_eq!(
        conn_events(a, ca),
        [
            Event::Error(ConnError::Unreachable(Unreachable::ProtocolError)),
            Event::Closed
        ]
    );
    let s = a.stats().icmp;
    assert_eq!((s.errors_in, s.out_of_window, s.fatal), (2, 1, 1));
}

/// A Parameter Problem `err` (either family) quoting the SYN-ACK (our ISS `iss`) of `b`'s
/// one passive SYN-RECEIVED (Linux `tcp_req_err(.., fatal = 1)`): dropped silently; nothing
/// is sent and no application hears of it.
pub(super) fn param_problem_drops_half_open(
    b: &mut Endpoint,
    tuple: FourTuple,
    err: IcmpError,
    iss: SeqNum,
) {
    assert_eq!(b.on_icmp_error(T0, tuple, err, iss), IcmpOutcome::Fatal);
    assert_eq!(b.state_counts().syn_received, 0);
    assert!(flush(b, T0).is_empty());
    assert_eq!(b.poll_event(), None);
}

fn param_problem(f: &Frame, code: ParamProblem) -> (FourTuple, IcmpError, SeqNum) {
    icmp_about(f, Icmpv4Message::ParamProblem { code, pointer: 20 })
}

/// Linux `tcp_v4_err` in SYN-SENT: an ICMPv4 Parameter Problem (RFC 1108 code 1, "missing a
/// required option") quoting our SYN fails the connect with EPROTO (`icmp_err_convert`).
#[test]
fn parameter_problem_fails_connect_with_eproto() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_999);
    let ca = a.connect(T0, A, SocketAddrV4::new(B, 81)).unwrap();
    let syn = flush(&mut a, T0).pop().unwrap();
    let (tuple, err, seq) = param_problem(&syn, ParamProblem::MissingOption);
    param_problem_fails_connect(&mut a, ca, tuple, err, seq);
}

/// Linux `tcp_v4_err` → `tcp_req_err(sk, seq, type == ICMP_PARAMETERPROB || ..)`: an ICMPv4
/// Parameter Problem quoting our SYN-ACK drops the passive SYN-RECEIVED, whatever its code.
#[test]
fn parameter_problem_drops_half_open() {
    for code in [
        ParamProblem::Pointer,
        ParamProblem::MissingOption,
        ParamProblem::BadLength,
    ] {
        let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
        b.listen(B, 80, 16).unwrap();
        b.on_segment(T0, A, B, &tcp(40000, 80, 7000, 0, TcpFlags::SYN));
        let synack = flush(&mut b, T0).pop().unwrap();
        let (tuple, err, iss) = param_problem(&synack, code);
        param_problem_drops_half_open(&mut b, tuple, err, iss);
    }
}

fn unreach(code: DstUnreachable) -> Icmpv4Message {
    Icmpv4Message::DstUnreachable {
        code,
        next_hop_mtu: 0,
    }
}

/// RFC 6069 §3-§4 as Linux `tcp_v4_err` applies it: a flight lost twice (RTO 200 ms after
/// the handshake, resent at +200 and +600 ms, the timer then backed off to 800 ms). Port
/// unreachable, "fragmentation needed" that lowers nothing and net unknown (code 6, also
/// ENETUNREACH) quoting SND.UNA revert nothing; net unreachable (code 0) 100 ms after the
/// resend reverts one doubling, so SND.UNA goes again at 400 ms, not 800 ms. Host
/// unreachable (code 1) does the same after that third timeout.
#[test]
fn rfc6069_net_and_host_unreachable_revert_the_backoff() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, _cb) = p.open(l, 80);
    let t0 = p.now;
    assert_eq!(p.a.send(t0, ca, &[7u8; 3000]).unwrap(), 3000);
    let lost = flush(&mut p.a, t0);
    let (t1, r1) = fire_next(&mut p.a);
    assert_eq!((t1, r1[0].seq()), (t0 + ms(200), lost[0].seq()));
    let (t2, r2) = fire_next(&mut p.a);
    assert_eq!((t2, r2[0].seq()), (t1 + ms(400), lost[0].seq()));
    let now = t2 + ms(100);
    let frag = Icmpv4Message::DstUnreachable {
        code: DstUnreachable::FragNeeded,
        next_hop_mtu: 1500,
    };
    for (msg, want) in [
        (PORT_UNREACH, IcmpOutcome::Soft),
        (frag, IcmpOutcome::PmtuUnchanged),
        (unreach(DstUnreachable::NetUnknown), IcmpOutcome::Soft),
        (unreach(DstUnreachable::NetUnreachable), IcmpOutcome::Soft),
    ] {
        let (tuple, m, seq) = icmp_msg_about(&r2[0], msg);
        assert_eq!(p.a.on_icmpv4_error(now, tuple, &m, seq), want, "{m:?}");
        assert!(flush(&mut p.a, now).is_empty());
    }
    let (t3, r3) = fire_next(&mut p.a);
    assert_eq!((t3, r3[0].seq()), (t2 + ms(400), lost[0].seq()));
    let now = t3 + ms(100);
    let (tuple, m, seq) = icmp_msg_about(&r3[0], unreach(DstUnreachable::HostUnreachable));
    assert_eq!(p.a.on_icmpv4_error(now, tuple, &m, seq), IcmpOutcome::Soft);
    let (t4, r4) = fire_next(&mut p.a);
    assert_eq!((t4, r4[0].seq()), (t3 + ms(400), lost[0].seq()));
    assert_eq!(p.a.state(ca), Some(State::Established));
    assert_eq!(p.a.stats().icmp.soft, 4);
}
