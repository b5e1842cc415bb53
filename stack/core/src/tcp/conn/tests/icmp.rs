//! ICMP errors for a connection, as Linux's `tcp_v4_err` acts on them: RFC 5927 §4.1
//! validation, RFC 1191 path MTU (`tcp_v4_mtu_reduced` + `tcp_simple_retransmit`), hard
//! errors in SYN-SENT and soft ones after (RFC 1122 §4.2.3.9), `tcp_req_err` for a passive
//! SYN-RECEIVED, and black-hole detection (`tcp_mtu_probing`, RFC 4821).

use super::*;
use crate::tcp::icmp::{IcmpError, IcmpOutcome, Unreachable};

const FRAG_1280: IcmpError = IcmpError::PacketTooBig { mtu: 1280 };
const PORT: IcmpError = IcmpError::Unreachable(Unreachable::Port);
const HOST: IcmpError = IcmpError::Unreachable(Unreachable::Host);

fn icmp(t: &mut T, err: IcmpError, seq: u32) -> IcmpOutcome {
    t.c.on_icmp_error(t.now, err, SeqNum(seq))
}

/// (flags, seq, payload length) of what goes out.
fn segs(out: &[Out]) -> Vec<(TcpFlags, u32, usize)> {
    out.iter()
        .map(|o| (o.flags, o.seq, o.payload.len()))
        .collect()
}

/// ESTABLISHED with 2920 bytes in flight: two full 1460-byte segments 1001 and 2461.
fn two_in_flight(cfg: &TcpConfig) -> T {
    let mut t = syn_received_with(cfg, &peer_syn());
    third_ack(&mut t, &seg(ACK, PEER_ISS + 1, OUR_ISS + 1));
    t.events();
    assert_eq!(t.send(&[9u8; 2920]), Ok(2920));
    assert_eq!(
        segs(&t.out()),
        vec![(ACK, 1001, 1460), (ACK | PSH, 2461, 1460)]
    );
    t
}

/// RFC 1191 §6.2 / Linux tcp_v4_mtu_reduced: "fragmentation needed" with next-hop MTU 1280
/// quoting the first segment lowers the PMTU, the MSS becomes 1280 - 40 = 1240 and the flight
/// is sent again at once, resized (tcp_simple_retransmit). A second copy of the same error
/// changes nothing (the PMTU only decreases).
#[test]
fn frag_needed_resends_flight_at_new_size() {
    let mut t = two_in_flight(&cfg());
    assert_eq!(
        icmp(&mut t, FRAG_1280, 1001),
        IcmpOutcome::PmtuLowered(1280)
    );
    assert_eq!(t.c.pmtu(), Some(1280));
    assert_eq!(
        segs(&t.out()),
        vec![(ACK, 1001, 1240), (ACK, 2241, 1240), (ACK | PSH, 3481, 440)]
    );
    assert_eq!(icmp(&mut t, FRAG_1280, 1001), IcmpOutcome::PmtuUnchanged);
    assert_eq!(t.out(), vec![]);
    // The peer acknowledges everything: the connection goes on at the new size.
    assert_eq!(t.feed(&seg(ACK, 5001, 3921)), vec![]);
    assert_eq!(t.send(&[1u8; 1300]), Ok(1300));
    assert_eq!(
        segs(&t.out()),
        vec![(ACK, 3921, 1240), (ACK | PSH, 5161, 60)]
    );
    assert_eq!(t.state(), State::Established);
}

/// RFC 5927 §4.1 (Linux `between(seq, snd_una, snd_nxt)`, inclusive): an error quoting a
/// sequence number outside SND.UNA..=SND.NXT is ignored (Linux OutOfWindowIcmps).
#[test]
fn out_of_window_icmp_is_ignored() {
    for seq in [1000u32, 3922, 5001, 1001u32.wrapping_sub(1 << 31)] {
        let mut t = two_in_flight(&cfg());
        assert_eq!(
            icmp(&mut t, FRAG_1280, seq),
            IcmpOutcome::OutOfWindow,
            "{seq}"
        );
        assert_eq!(icmp(&mut t, PORT, seq), IcmpOutcome::OutOfWindow, "{seq}");
        assert_eq!(t.out(), vec![]);
        assert_eq!(t.c.pmtu(), Some(1500));
        assert_eq!(t.state(), State::Established);
    }
    // SND.NXT itself is inside (Linux's between() is inclusive).
    let mut t = two_in_flight(&cfg());
    assert_eq!(
        icmp(&mut t, FRAG_1280, 3921),
        IcmpOutcome::PmtuLowered(1280)
    );
}

/// Linux tcp_v4_err in SYN-SENT: port unreachable quoting our SYN (seq = ISS; ISS + 1 is
/// also in SND.UNA..=SND.NXT) fails the connect with ECONNREFUSED at once, nothing sent;
/// other unreachables and time exceeded with their errno (icmp_err_convert).
#[test]
fn syn_sent_hard_errors() {
    let cases = [
        (PORT, OUR_ISS, ConnError::Refused),
        (PORT, OUR_ISS + 1, ConnError::Refused),
        (HOST, OUR_ISS, ConnError::Unreachable(Unreachable::Host)),
        (
            IcmpError::Unreachable(Unreachable::Net),
            OUR_ISS,
            ConnError::Unreachable(Unreachable::Net),
        ),
        (
            IcmpError::Unreachable(Unreachable::Protocol),
            OUR_ISS,
            ConnError::Unreachable(Unreachable::Protocol),
        ),
        (
            IcmpError::TimeExceeded,
            OUR_ISS,
            ConnError::Unreachable(Unreachable::Host),
        ),
    ];
    for (err, seq, want) in cases {
        let mut t = syn_sent();
        assert_eq!(icmp(&mut t, err, seq), IcmpOutcome::Fatal, "{err:?}");
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.out(), vec![], "no RST for an ICMP error");
        assert_eq!(t.events(), vec![Event::Error(want), Event::Closed]);
        assert_eq!(t.c.next_deadline(), None);
    }
    // Not our SYN: ignored, the SYN retransmission goes on.
    let mut t = syn_sent();
    assert_eq!(icmp(&mut t, PORT, OUR_ISS - 1), IcmpOutcome::OutOfWindow);
    assert_eq!(t.state(), State::SynSent);
    assert_eq!(segs(&t.next()), vec![(SYN, OUR_ISS, 0)]);
}

/// RFC 1122 §4.2.3.9 / Linux: in ESTABLISHED an unreachable is only a soft error; the
/// connection goes on. If it then times out with nothing acknowledged since, the soft
/// error is what the application is told (Linux tcp_write_err: sk_err_soft ?: ETIMEDOUT).
#[test]
fn established_soft_error_then_timeout_reports_it() {
    let c = TcpConfig {
        retries2: 2,
        ..cfg()
    };
    let mut t = two_in_flight(&c);
    assert_eq!(icmp(&mut t, PORT, 1001), IcmpOutcome::Soft);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.events(), vec![]);
    // RTO, RTO, then tcp_retries2 = 2 is exhausted.
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    let _ = t.next();
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::Refused), Event::Closed]
    );
    // With progress after the soft error, a later timeout is ETIMEDOUT.
    let mut t = two_in_flight(&c);
    assert_eq!(icmp(&mut t, HOST, 1001), IcmpOutcome::Soft);
    assert_eq!(t.feed(&seg(ACK, 5001, 2461)), vec![]);
    for _ in 0..3 {
        let _ = t.next();
    }
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );
}

/// A Parameter Problem of either family (RFC 792 type 12, RFC 4443 §3.4) in ESTABLISHED
/// (Linux `tcp_v4_err` / `tcp_v6_err`: EPROTO, and outside SYN-SENT / SYN-RECV only
/// `sk_err_soft`): the connection goes on, nothing is sent; if it then times out with
/// nothing acknowledged, the application is told EPROTO.
#[test]
fn established_parameter_problem_is_soft_then_reported_as_eproto() {
    let v6 = IcmpError::from_icmpv6(&crate::wire::icmpv6::Icmpv6Error::ParamProblem {
        code: crate::wire::icmpv6::ParamProblem::HeaderField,
        pointer: 40,
    });
    let v4 = IcmpError::from_icmpv4(&crate::wire::Icmpv4Message::ParamProblem {
        code: crate::wire::ParamProblem::MissingOption,
        pointer: 0,
    });
    for pp in [v6, v4] {
        established_parameter_problem(pp);
    }
}

fn established_parameter_problem(pp: IcmpError) {
    let c = TcpConfig {
        retries2: 2,
        ..cfg()
    };
    let mut t = two_in_flight(&c);
    assert_eq!(icmp(&mut t, pp, 2461), IcmpOutcome::Soft);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.events(), vec![]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    let _ = t.next();
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![
            Event::Error(ConnError::Unreachable(Unreachable::ProtocolError)),
            Event::Closed
        ]
    );
}

/// Linux tcp_req_err: for a passive SYN-RECEIVED the error must quote our ISS exactly;
/// net/host unreachable and time exceeded drop the half-open connection silently (no
/// error for an application that never saw it), other codes leave it to its SYN-ACK timer.
#[test]
fn passive_syn_received() {
    let mut t = syn_received();
    assert_eq!(icmp(&mut t, HOST, OUR_ISS + 1), IcmpOutcome::OutOfWindow);
    assert_eq!(icmp(&mut t, PORT, OUR_ISS), IcmpOutcome::Soft);
    assert_eq!(t.state(), State::SynReceived);
    assert_eq!(icmp(&mut t, HOST, OUR_ISS), IcmpOutcome::Fatal);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.events(), vec![Event::Closed]);
}

/// Linux tcp_v4_err → `tcp_req_err(sk, seq, type == ICMP_PARAMETERPROB || ..)`: an ICMPv4
/// Parameter Problem quoting our ISS drops a passive SYN-RECEIVED silently, whatever its
/// code; one quoting another sequence number is ignored (RFC 5927 §4.1).
#[test]
fn passive_syn_received_parameter_problem() {
    use crate::wire::{Icmpv4Message, ParamProblem as P};
    for code in [P::Pointer, P::MissingOption, P::BadLength] {
        let pp = IcmpError::from_icmpv4(&Icmpv4Message::ParamProblem { code, pointer: 20 });
        let mut t = syn_received();
        assert_eq!(icmp(&mut t, pp, OUR_ISS + 1), IcmpOutcome::OutOfWindow);
        assert_eq!(t.state(), State::SynReceived);
        assert_eq!(icmp(&mut t, pp, OUR_ISS), IcmpOutcome::Fatal, "{code:?}");
        assert_eq!(t.state(), State::Closed);
        assert_eq!(t.out(), vec![]);
        assert_eq!(t.events(), vec![Event::Closed]);
    }
}

/// Errors for a connection with nothing in flight past TIME-WAIT or CLOSED are ignored; a
/// packet-too-big in SYN-SENT (no data to resize) changes nothing.
#[test]
fn states_without_a_flight() {
    let mut t = time_wait();
    assert_eq!(icmp(&mut t, FRAG_1280, 1002), IcmpOutcome::OutOfWindow);
    let mut t = syn_sent();
    assert_eq!(icmp(&mut t, FRAG_1280, OUR_ISS), IcmpOutcome::PmtuUnchanged);
    assert_eq!(t.state(), State::SynSent);
}

/// Linux tcp_mtu_probing = 1 (RFC 4821 black-hole fallback): the retransmissions after
/// tcp_retries1 (3) timeouts in a row without an ICMP error lower the MSS to tcp_base_mss,
/// then halve it. With the default 0 they stay at the full size.
#[test]
fn black_hole_detection_lowers_mss_after_retries1() {
    let on = TcpConfig {
        mtu_probing: 1,
        ..cfg()
    };
    let mut t = two_in_flight(&on);
    let lens: Vec<usize> = (0..6).map(|_| t.next()[0].payload.len()).collect();
    assert_eq!(lens, vec![1460, 1460, 1460, 1024, 512, 256]);
    let mut t = two_in_flight(&cfg());
    let lens: Vec<usize> = (0..6).map(|_| t.next()[0].payload.len()).collect();
    assert_eq!(lens, vec![1460; 6]);
}

/// An RFC 6069 disruption signal (host unreachable) quoting `seq`, as the endpoint applies
/// it: the soft error is recorded, then the revert is tried; returns whether it reverted.
fn disruption(t: &mut T, seq: u32) -> bool {
    assert_eq!(icmp(t, HOST, seq), IcmpOutcome::Soft);
    t.c.on_icmp_disruption(t.now, SeqNum(seq))
}

/// A disruption signal quoting `seq` that reverts nothing: nothing sent, the timer still
/// due at `due`.
fn no_revert(t: &mut T, seq: u32, due: Instant) {
    assert!(!disruption(t, seq), "{seq}");
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.c.next_deadline(), Some(due));
}

/// `two_in_flight` (RTO 200 ms after the handshake's sample, sent at EST) after two
/// timeouts: 1001 resent at EST + 200 ms and at EST + 600 ms, the timer backed off to
/// 800 ms, due at EST + 1400 ms.
fn backed_off_twice() -> T {
    let mut t = two_in_flight(&cfg());
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(t.now, EST + ms(200));
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(t.now, EST + ms(600));
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1400)));
    t
}

/// RFC 6069 §4 steps 4-5 (Linux tcp_ld_RTO_revert): host unreachable quoting SND.UNA
/// 100 ms after the second retransmission undoes one backoff: RTO = 200 ms << 1 = 400 ms,
/// 300 ms of it left, so the timer moves from EST + 1400 to EST + 1000 ms; nothing is sent
/// now. Each further signal reverts one more doubling (RFC 6069 §2: every ICMP that
/// arrives during the disruption), until the RTO is the estimator's 200 ms again; then
/// there is no backoff left to undo.
#[test]
fn rfc6069_revert_moves_the_timer_earlier() {
    let mut t = backed_off_twice();
    t.now = EST + ms(700);
    assert!(disruption(&mut t, 1001));
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1000)));
    // The timer fires there: 1001 again, backed off to 800 ms (the third doubling).
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(t.now, EST + ms(1000));
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1800)));
    t.now = EST + ms(1100);
    assert!(disruption(&mut t, 1001));
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1400)));
    t.now = EST + ms(1150);
    assert!(disruption(&mut t, 1001));
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1200)));
    t.now = EST + ms(1160);
    no_revert(&mut t, 1001, EST + ms(1200));
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.state(), State::Established);
}

/// RFC 6069 §4 step 5b ("clocked out", Linux: remaining =< 0 -> tcp_retransmit_timer):
/// when the reverted RTO (400 ms) has already passed since the head was resent (at
/// EST + 600 ms), SND.UNA is retransmitted at once, as the timer's expiry would: backed
/// off again to 800 ms. Exactly 400 ms later counts as passed (Linux `remaining > 0`).
#[test]
fn rfc6069_revert_clocked_out_retransmits_now() {
    for late in [400, 500] {
        let mut t = backed_off_twice();
        t.now = EST + ms(600 + late);
        assert!(disruption(&mut t, 1001), "{late}");
        assert_eq!(segs(&t.out()), vec![(ACK, 1001, 1460)], "{late}");
        assert_eq!(t.c.next_deadline(), Some(t.now + ms(800)), "{late}");
        assert_eq!(t.c.rto_count(), 3);
    }
}

/// RFC 6069 §4 step 2 / Linux (`seq != tp->snd_una`): an unreachable quoting a later
/// segment in flight (2461) is only a soft error; the backed-off timer stays.
#[test]
fn rfc6069_no_revert_unless_snd_una_is_quoted() {
    let mut t = backed_off_twice();
    t.now = EST + ms(700);
    no_revert(&mut t, 2461, EST + ms(1400));
}

/// RFC 6069 §4 step 3 / Linux (`!icsk_retransmits || !icsk_backoff`): without a timeout
/// there is no backoff to undo; after one, an ACK that makes progress ends it (Karn: no
/// sample from the retransmitted segment, so the RTO stays doubled at 400 ms, but the
/// count of timeouts without progress is 0).
#[test]
fn rfc6069_no_revert_when_not_backed_off() {
    let mut t = two_in_flight(&cfg());
    t.now = EST + ms(100);
    no_revert(&mut t, 1001, EST + ms(200));
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    t.now = EST + ms(250);
    // Go-back-N resends the rest; the timer restarts with the doubled RTO.
    assert_eq!(
        segs(&t.feed(&seg(ACK, 5001, 2461))),
        vec![(ACK | PSH, 2461, 1460)]
    );
    assert_eq!(t.c.next_deadline(), Some(EST + ms(650)));
    t.now = EST + ms(300);
    no_revert(&mut t, 2461, EST + ms(650));
}

/// Linux tcp_retransmit_timer with a zero peer window: the head is resent as a window probe
/// and the RTO doubled, but neither `icsk_retransmits` nor `icsk_backoff` counts it. After
/// one ordinary timeout (EST + 200 ms: RTO 400 ms, one doubling) and one such probe
/// (EST + 600 ms: RTO 800 ms, still one doubling), a disruption signal at EST + 700 ms
/// reverts to the estimator's 200 ms: 100 ms left, due at EST + 800 ms. Before that
/// ordinary timeout (the window closed from the start) there is nothing to revert.
#[test]
fn rfc6069_window_probe_timeouts_are_not_backoff() {
    let mut zero = seg(ACK, 5001, 1001);
    zero.window = 0;
    let mut t = two_in_flight(&cfg());
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    t.now = EST + ms(250);
    assert_eq!(t.feed(&zero), vec![]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(t.now, EST + ms(600));
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1400)));
    t.now = EST + ms(700);
    assert!(disruption(&mut t, 1001));
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.c.next_deadline(), Some(EST + ms(800)));

    let mut t = two_in_flight(&cfg());
    assert_eq!(t.feed(&zero), vec![]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(segs(&t.next()), vec![(ACK, 1001, 1460)]);
    assert_eq!(t.c.next_deadline(), Some(EST + ms(1400)));
    t.now = EST + ms(700);
    no_revert(&mut t, 1001, EST + ms(1400));
}

/// RFC 1122 §4.2.3.5 (R2 is a time) with RFC 6069 §2 (the revert must not end the connection
/// sooner), as Linux's `retransmits_timed_out`: `tcp_retries2` = 3 allows the time three
/// doublings from `tcp_rto_min` take, (2^4 - 1) * 200 ms = 3 s from the head's transmission
/// (EST). A router reports every retransmission unreachable 50 ms after it, so each revert
/// keeps the timer at 200 ms: many more than 3 timeouts pass, and the connection stays up
/// until the first timeout at or after EST + 3 s; then it times out with the reported error.
/// Without reverts the same limit falls on the 4th timeout (200, 600, 1400, 3000 ms).
#[test]
fn rfc6069_reverted_timeouts_do_not_use_up_tcp_retries2_early() {
    let mut c = cfg();
    c.set("tcp_retries2", "3").unwrap();
    let mut t = two_in_flight(&c);
    let mut resent = 0;
    for _ in 0..100 {
        let out = t.next();
        if t.state() == State::Closed {
            break;
        }
        assert_eq!(segs(&out), vec![(ACK, 1001, 1460)], "at {:?}", t.now);
        resent += 1;
        t.now += ms(50);
        assert!(disruption(&mut t, 1001));
    }
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.now,
        EST + ms(3000),
        "the first timeout at or after EST + 3 s"
    );
    assert_eq!(resent, 14, "one per 200 ms, not 3");
    assert_eq!(t.c.error(), Some(ConnError::Unreachable(Unreachable::Host)));

    let mut t = two_in_flight(&c);
    let mut at = Vec::new();
    while t.state() != State::Closed && at.len() < 10 {
        t.next();
        at.push(t.now);
    }
    assert_eq!(
        at,
        [200, 600, 1400, 3000].map(|m| EST + ms(m)),
        "no reverts: the count and the time agree"
    );
}

/// Linux `tcp_model_timeout`: the time `boundary` backoffs from `base` take, doubling up to
/// `max` (2^(thresh+1) - 1 base units, then `max` each; thresh = log2(max / base)).
#[test]
fn model_timeout_is_linuxs() {
    use crate::tcp::conn::output::model_timeout;
    let (b, m) = (ms(200), Duration::from_secs(120));
    assert_eq!(model_timeout(3, b, m), ms(3_000));
    assert_eq!(model_timeout(8, b, m), ms(102_200));
    assert_eq!(model_timeout(9, b, m), ms(204_600));
    // tcp_retries2 = 15: the 924.6 s of ip-sysctl.rst.
    assert_eq!(model_timeout(15, b, m), ms(924_600));
    assert_eq!(model_timeout(0, b, m), ms(200));
}
