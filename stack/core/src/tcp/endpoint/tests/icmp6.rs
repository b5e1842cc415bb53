//! ICMPv6 errors through the endpoint (Linux `tcp_v6_err`): Packet Too Big lowers the path
//! MTU to no less than 1280 with MSS = PMTU - 60 (RFC 8201), RFC 5927 §4.1 validation as
//! over IPv4, port unreachable fails a connect, and a passive SYN-RECEIVED is dropped only
//! by the codes `icmpv6_err_convert` calls fatal. Parameter Problem (RFC 4443 §3.4) is
//! EPROTO and fatal there: it fails a connect, drops a half-open connection, and is a soft
//! error once synchronized.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::*;
use crate::tcp::icmp::{IcmpError, IcmpOutcome};
use crate::wire::icmpv6::{DstUnreachable, Icmpv6Error, ParamProblem};

const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);

/// The 4-tuple (our side local) and quoted sequence number of our segment `f`, as the
/// runtime takes them from the error's quote.
fn quoted(f: &Frame) -> (FourTuple, SeqNum) {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (f.src, f.dst) else {
        panic!("an IPv6 segment");
    };
    let r = f.repr();
    let tuple = FourTuple::new_v6(
        SocketAddrV6::new(src, r.src_port, 0, 0),
        SocketAddrV6::new(dst, r.dst_port, 0, 0),
    );
    (tuple, r.seq)
}

/// a connects to b's [B6]:80 and b accepts: (a's id, b's id).
fn open6(p: &mut Pair) -> (ConnId, ConnId) {
    let l = p.b.listen(B6, 80, 16).unwrap();
    let ca =
        p.a.connect(p.now, A6, SocketAddrV6::new(B6, 80, 0, 0))
            .unwrap();
    p.run();
    (ca, p.b.accept(l).expect("accepted"))
}

fn ptb(mtu: u32) -> IcmpError {
    IcmpError::from_icmpv6(&Icmpv6Error::PacketTooBig { mtu })
}

fn unreach(code: DstUnreachable) -> IcmpError {
    IcmpError::from_icmpv6(&Icmpv6Error::DstUnreachable(code))
}

/// RFC 8201 §4-5 / Linux `tcp_v6_err` + `tcp_v6_mtu_reduced`: a Packet Too Big below 1280
/// is discarded (the path MTU stays 1500); one quoting a sequence number past SND.NXT is
/// out of window (RFC 5927 §4.1); Packet Too Big 1280 about the first segment lowers the
/// path MTU to 1280, the MSS to 1280 - 60 = 1220 and the flight is resent at once at
/// 1220 - 12 (timestamps) = 1208 bytes per segment; the transfer completes byte-exact.
#[test]
fn ipv6_packet_too_big_1280_gives_mss_1220() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let (ca, cb) = open6(&mut p);
    assert_eq!(p.a.pmtu(ca), Some(1500));
    let data: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(p.a.send(p.now, ca, &data).unwrap(), 6000);
    let lost = flush(&mut p.a, p.now);
    let lens: Vec<usize> = lost.iter().map(|f| f.repr().payload.len()).collect();
    assert_eq!(lens, vec![1428, 1428, 1428, 1428, 288]);
    let (tuple, seq) = quoted(&lost[0]);
    // Below the IPv6 minimum MTU: discarded.
    assert_eq!(
        p.a.on_icmp_error(p.now, tuple, ptb(1000), seq),
        IcmpOutcome::PmtuUnchanged
    );
    // Not in flight (SND.NXT + 1): ignored.
    assert_eq!(
        p.a.on_icmp_error(p.now, tuple, ptb(1280), seq + 6001u32),
        IcmpOutcome::OutOfWindow
    );
    assert_eq!(p.a.pmtu(ca), Some(1500));
    assert!(flush(&mut p.a, p.now).is_empty());
    assert_eq!(
        p.a.on_icmp_error(p.now, tuple, ptb(1280), seq),
        IcmpOutcome::PmtuLowered(1280)
    );
    assert_eq!(p.a.pmtu(ca), Some(1280));
    let again = flush(&mut p.a, p.now);
    let lens: Vec<usize> = again.iter().map(|f| f.repr().payload.len()).collect();
    assert_eq!(lens, vec![1208, 1208, 1208, 1208, 1168]);
    assert_eq!(again[0].repr().seq, seq);
    deliver(&mut p.b, p.now, &again);
    p.run();
    let mut got = vec![0u8; 8000];
    let n = p.b.recv(cb, &mut got).unwrap();
    assert_eq!(&got[..n], &data[..]);
    let s = p.a.stats().icmp;
    assert_eq!(
        (
            s.errors_in,
            s.pmtu_lowered,
            s.pmtu_unchanged,
            s.out_of_window
        ),
        (3, 1, 1, 1)
    );
}

/// Linux `tcp_v6_err` in SYN-SENT: port unreachable (code 4) quoting our SYN fails the
/// connect with ECONNREFUSED; nothing is sent back.
#[test]
fn ipv6_port_unreachable_fails_connect() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_999);
    let ca = a.connect(T0, A6, SocketAddrV6::new(B6, 81, 0, 0)).unwrap();
    let syn = flush(&mut a, T0).pop().unwrap();
    let (tuple, seq) = quoted(&syn);
    let err = unreach(DstUnreachable::PortUnreachable);
    assert_eq!(a.on_icmp_error(T0, tuple, err, seq), IcmpOutcome::Fatal);
    assert!(flush(&mut a, T0).is_empty());
    assert_eq!(
        conn_events(&mut a, ca),
        [Event::Error(ConnError::Refused), Event::Closed]
    );
    assert_eq!(a.stats().icmp.fatal, 1);
}

/// Linux `tcp_v6_err` → `tcp_req_err(sk, seq, fatal)`: a passive SYN-RECEIVED quoting our
/// ISS survives address unreachable, no route and time exceeded (not fatal in
/// `icmpv6_err_convert`, unlike IPv4's net/host unreachable), and is dropped by
/// administratively prohibited (fatal).
#[test]
fn ipv6_half_open_dropped_only_by_fatal_codes() {
    let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
    b.listen(B6, 80, 16).unwrap();
    let syn = TcpRepr {
        options: TcpOptions {
            mss: Some(1440),
            ..TcpOptions::default()
        },
        window: 64800,
        ..tcp(40000, 80, 7000, 0, TcpFlags::SYN)
    };
    b.on_segment(T0, A6, B6, &syn);
    let synack = flush(&mut b, T0).pop().unwrap();
    let (tuple, iss) = quoted(&synack);
    for err in [
        unreach(DstUnreachable::AddrUnreachable),
        unreach(DstUnreachable::NoRoute),
        IcmpError::from_icmpv6(&Icmpv6Error::TimeExceeded(
            crate::wire::icmpv6::TimeExceeded::HopLimit,
        )),
    ] {
        assert_eq!(b.on_icmp_error(T0, tuple, err, iss), IcmpOutcome::Soft);
    }
    let err = unreach(DstUnreachable::AdminProhibited);
    assert_eq!(b.on_icmp_error(T0, tuple, err, iss), IcmpOutcome::Fatal);
    // Dropped: CLOSED, nothing in flight any more.
    assert_eq!(
        b.on_icmp_error(T0, tuple, err, iss),
        IcmpOutcome::OutOfWindow
    );
    assert!(flush(&mut b, T0).is_empty());
}

/// A Parameter Problem (RFC 4443 §3.4) with `code`, the pointer at the quoted IPv6 header's
/// Next Header octet.
fn param_problem(code: ParamProblem) -> IcmpError {
    IcmpError::from_icmpv6(&Icmpv6Error::ParamProblem { code, pointer: 6 })
}

/// Linux `tcp_v6_err` in SYN-SENT: a Parameter Problem (RFC 4443 §3.4, `icmpv6_err_convert`:
/// EPROTO) quoting our SYN fails the connect with EPROTO; nothing is sent back. One quoting
/// another sequence number is ignored (RFC 5927 §4.1) and the SYN retransmission goes on.
#[test]
fn ipv6_parameter_problem_fails_connect_with_eproto() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_999);
    let ca = a.connect(T0, A6, SocketAddrV6::new(B6, 81, 0, 0)).unwrap();
    let syn = flush(&mut a, T0).pop().unwrap();
    let (tuple, seq) = quoted(&syn);
    let err = param_problem(ParamProblem::NextHeader);
    super::icmp::param_problem_fails_connect(&mut a, ca, tuple, err, seq);
}

/// Linux `tcp_v6_err` → `tcp_req_err(sk, seq, fatal = 1)`: a Parameter Problem quoting our
/// SYN-ACK (our ISS) drops the passive SYN-RECEIVED silently, whatever its code; nothing is
/// sent and no application hears of it.
#[test]
fn ipv6_parameter_problem_drops_half_open() {
    for code in [
        ParamProblem::HeaderField,
        ParamProblem::NextHeader,
        ParamProblem::Option,
        ParamProblem::Other(3),
    ] {
        let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
        b.listen(B6, 80, 16).unwrap();
        let syn = TcpRepr {
            options: TcpOptions {
                mss: Some(1440),
                ..TcpOptions::default()
            },
            window: 64800,
            ..tcp(40000, 80, 7000, 0, TcpFlags::SYN)
        };
        b.on_segment(T0, A6, B6, &syn);
        let synack = flush(&mut b, T0).pop().unwrap();
        let (tuple, iss) = quoted(&synack);
        super::icmp::param_problem_drops_half_open(&mut b, tuple, param_problem(code), iss);
    }
}

/// Linux `tcp_v6_err` once synchronized: a Parameter Problem quoting data in flight is a
/// soft error (`sk_err_soft` = EPROTO): ESTABLISHED stays, nothing is sent, and the data
/// then delivered completes the transfer byte-exact.
#[test]
fn ipv6_parameter_problem_is_soft_when_established() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B6, 80, 16).unwrap();
    let ca =
        p.a.connect(p.now, A6, SocketAddrV6::new(B6, 80, 0, 0))
            .unwrap();
    p.run();
    let cb = p.b.accept(l).expect("accepted");
    let data: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(p.a.send(p.now, ca, &data).unwrap(), 3000);
    let flight = flush(&mut p.a, p.now);
    let (tuple, seq) = quoted(&flight[0]);
    let err = param_problem(ParamProblem::Option);
    assert_eq!(p.a.on_icmp_error(p.now, tuple, err, seq), IcmpOutcome::Soft);
    assert_eq!(p.a.state(ca), Some(State::Established));
    assert!(flush(&mut p.a, p.now).is_empty());
    assert_eq!(p.a.stats().icmp.soft, 1);
    deliver(&mut p.b, p.now, &flight);
    p.run();
    let mut got = vec![0u8; 4000];
    let n = p.b.recv(cb, &mut got).unwrap();
    assert_eq!(&got[..n], &data[..]);
    assert_eq!(p.a.state(ca), Some(State::Established));
}

/// RFC 6069 for IPv6 as Linux `tcp_v6_err` applies it: only no route to destination (code
/// 0) reverts an RTO backoff. A flight lost twice (resent at +200 and +600 ms, the timer
/// backed off to 800 ms): address unreachable (also EHOSTUNREACH), port unreachable and a
/// Packet Too Big that lowers nothing quoting SND.UNA revert nothing; no route 100 ms
/// after the resend reverts one doubling, so SND.UNA goes again at 400 ms, not 800 ms.
#[test]
fn rfc6069_ipv6_no_route_reverts_the_backoff() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let (ca, _cb) = open6(&mut p);
    let t0 = p.now;
    assert_eq!(p.a.send(t0, ca, &[7u8; 3000]).unwrap(), 3000);
    let lost = flush(&mut p.a, t0);
    let (t1, _) = fire_next(&mut p.a);
    assert_eq!(t1, t0 + ms(200));
    let (t2, r2) = fire_next(&mut p.a);
    assert_eq!((t2, r2[0].seq()), (t1 + ms(400), lost[0].seq()));
    let (tuple, seq) = quoted(&r2[0]);
    let now = t2 + ms(100);
    for (e, want) in [
        (
            Icmpv6Error::DstUnreachable(DstUnreachable::AddrUnreachable),
            IcmpOutcome::Soft,
        ),
        (
            Icmpv6Error::DstUnreachable(DstUnreachable::PortUnreachable),
            IcmpOutcome::Soft,
        ),
        (
            Icmpv6Error::PacketTooBig { mtu: 1500 },
            IcmpOutcome::PmtuUnchanged,
        ),
        (
            Icmpv6Error::DstUnreachable(DstUnreachable::NoRoute),
            IcmpOutcome::Soft,
        ),
    ] {
        assert_eq!(p.a.on_icmpv6_error(now, tuple, &e, seq), want, "{e:?}");
        assert!(flush(&mut p.a, now).is_empty());
    }
    let (t3, r3) = fire_next(&mut p.a);
    assert_eq!((t3, r3[0].seq()), (t2 + ms(400), lost[0].seq()));
    assert_eq!(p.a.state(ca), Some(State::Established));
}
