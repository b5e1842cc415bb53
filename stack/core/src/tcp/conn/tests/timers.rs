//! Timers: RFC 6298 retransmission with backoff and tcp_retries2, keepalive (RFC 9293
//! §3.8.4, Linux tcp_keepalive_*), the user timeout (RFC 5482), zero-window probing
//! (RFC 9293 §3.8.6.1) and the timer table.

use super::*;

pub fn scenarios() {
    data_retries_exhausted_times_out();
    keepalive_probes_then_reset();
}

fn established_with(cfg: &TcpConfig) -> T {
    let mut t = syn_received_with(cfg, &peer_syn());
    third_ack(&mut t, &seg(ACK, 5001, 1001));
    t.events();
    t
}

/// RFC 6298 §5: retransmit the earliest unacknowledged segment on RTO, doubling it (§5.5);
/// after tcp_retries2 retransmissions without progress, give up: TimedOut (no RST, as Linux).
#[test]
fn data_retries_exhausted_times_out() {
    let cfg = TcpConfig {
        retries2: 3,
        ..cfg()
    };
    let mut t = established_with(&cfg);
    t.send(b"hello").unwrap();
    let seg_out = Out::new(ACK | PSH, 1001, 5001).payload(b"hello");
    assert_eq!(t.out(), vec![seg_out.clone()]);
    // RTO 200 ms from the handshake sample (tests/mod.rs HS_RTT), doubled each time (§5.5):
    // resends at 200, 600, 1400 ms, give up at 3000 ms.
    for at in [200, 600, 1400] {
        assert_eq!(t.next(), vec![seg_out.clone()]);
        assert_eq!(t.now, EST + ms(at));
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, EST + ms(3000));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );
}

/// RFC 6298 §2.2 and §5.3: an RTT sample sets RTO = SRTT + 4*RTTVAR (clamped to rto_min);
/// the timer restarts on an ACK of new data while data remains.
#[test]
fn rtt_sample_sets_rto_and_timer_restarts() {
    let mut t = established();
    t.send(&[1u8; 2000]).unwrap();
    assert_eq!(t.out().len(), 2, "1460 + 540");
    // The handshake's sample (10 ms): SRTT 10, RTTVAR 5, RTO max(200, 10 + 20) = 200 ms.
    assert_eq!(t.c.rtt(), Some((Some(ms(10)), ms(200))));
    assert_eq!(t.c.timer(Timer::Retransmit), Some(EST + ms(200)));
    t.now += ms(180);
    assert_eq!(t.feed(&seg(ACK, 5001, 2461)), vec![]);
    // §2.3 with a 180 ms sample: RTTVAR = 3/4 * 5 + 1/4 * |10 - 180| = 46.25 ms,
    // SRTT = 7/8 * 10 + 1/8 * 180 = 31.25 ms, RTO = 31.25 + 4 * 46.25 = 216.25 ms.
    let rto = Duration::from_micros(216_250);
    assert_eq!(t.c.rtt(), Some((Some(Duration::from_micros(31_250)), rto)));
    assert_eq!(t.c.timer(Timer::Retransmit), Some(t.now + rto));
    assert_eq!(t.feed(&seg(ACK, 5001, 3001)), vec![]);
    assert_eq!(
        t.c.timer(Timer::Retransmit),
        None,
        "all acked: timer stopped"
    );
}

/// Go-back-N: after an RTO the data from SND.UNA is resent, within cwnd = 1 SMSS
/// (RFC 5681 §3.1); its ACK opens cwnd to 2 SMSS (slow start) and the rest follows; a late
/// ACK of the original transmission is still acceptable (up to SND.MAX).
#[test]
fn rto_resends_from_una() {
    let mut t = established();
    let before = t.c.rtt().unwrap().0;
    assert_eq!(before, Some(HS_RTT), "the handshake's sample");
    t.send(&[2u8; 2000]).unwrap();
    assert_eq!(t.out().len(), 2);
    assert_eq!(
        t.next(),
        vec![Out::new(ACK, 1001, 5001).payload(&[2u8; 1460])]
    );
    assert_eq!(t.c.congestion_window(), Some((1460, 2 * 1460)));
    assert_eq!(
        t.feed(&seg(ACK, 5001, 2461)),
        vec![Out::new(ACK | PSH, 2461, 5001).payload(&[2u8; 540])]
    );
    assert_eq!(t.feed(&seg(ACK, 5001, 3001)), vec![]);
    // 200 ms passed since the first transmission (the RTO): a sample would move SRTT.
    assert_eq!(
        t.c.rtt().unwrap().0,
        before,
        "Karn: no sample from retransmitted data"
    );
}

/// Keepalive off by default; when on, after keepalive_time idle a probe <SEQ=SND.UNA-1>
/// goes out every keepalive_intvl; after keepalive_probes unanswered: RST, TimedOut.
#[test]
fn keepalive_probes_then_reset() {
    let mut t = established();
    assert_eq!(t.c.timer(Timer::Keepalive), None);
    t.c.set_keepalive(t.now, true);
    assert_eq!(t.c.timer(Timer::Keepalive), Some(EST + secs(7200)));
    let probe = ack_out(1000, 5001);
    assert_eq!(t.next(), vec![probe.clone()]);
    assert_eq!(t.now, EST + secs(7200));
    for i in 1..9 {
        assert_eq!(t.next(), vec![probe.clone()]);
        assert_eq!(t.now, EST + secs(7200 + 75 * i));
    }
    assert_eq!(t.next(), vec![Out::new(RST | ACK, 1001, 5001).win(0)]);
    assert_eq!(t.now, EST + secs(7200 + 75 * 9));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );
}

/// An answered probe resets the count and the idle clock.
#[test]
fn keepalive_answer_resets() {
    let mut t = established();
    t.c.set_keepalive(t.now, true);
    assert_eq!(t.next(), vec![ack_out(1000, 5001)]);
    assert_eq!(t.feed(&seg(ACK, 5001, 1001)), vec![]);
    assert_eq!(t.c.timer(Timer::Keepalive), Some(t.now + secs(7200)));
    t.c.set_keepalive(t.now, false);
    assert_eq!(t.c.timer(Timer::Keepalive), None);
}

/// Keepalive does not probe while the peer is sent to anyway (activity resets idle time).
#[test]
fn keepalive_idle_counts_from_last_segment() {
    let mut t = established();
    t.c.set_keepalive(t.now, true);
    t.now += secs(7000);
    t.feed(&data(ACK, 5001, 1001, b"x"));
    assert_eq!(t.c.timer(Timer::Keepalive), Some(t.now + secs(7200)));
}

/// RFC 5482 / Linux TCP_USER_TIMEOUT: data unacknowledged for the user timeout aborts with
/// TimedOut, before tcp_retries2 would.
#[test]
fn user_timeout_aborts() {
    let mut t = established();
    t.c.set_user_timeout(t.now, Some(secs(5)));
    assert_eq!(t.c.timer(Timer::UserTimeout), None, "nothing in flight");
    t.send(b"x").unwrap();
    t.out();
    assert_eq!(t.c.timer(Timer::UserTimeout), Some(EST + secs(5)));
    // RTO 200 ms from the handshake sample, doubled (RFC 6298 §5.5): resends at 0.2, 0.6,
    // 1.4, 3 s; the next would be at 6.2 s, after the user timeout.
    for at in [200, 600, 1400, 3000] {
        assert_eq!(t.next().len(), 1);
        assert_eq!(t.now, EST + ms(at));
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, EST + secs(5));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );
}

/// RFC 9293 §3.8.6.1: data behind a zero window is probed by the persist timer; the
/// window update lets it go.
#[test]
fn zero_window_persist_probe() {
    let mut t = established();
    let mut zero = seg(ACK, 5001, 1001);
    zero.window = 0;
    assert_eq!(t.feed(&zero), vec![]);
    t.send(b"abc").unwrap();
    assert_eq!(t.out(), vec![], "window closed");
    // Persist on the RTO (200 ms after the handshake sample), then backed off.
    assert_eq!(t.c.timer(Timer::Persist), Some(EST + ms(200)));
    assert_eq!(t.next(), vec![ack_out(1000, 5001)]);
    assert_eq!(
        t.c.timer(Timer::Persist),
        Some(EST + ms(200) + ms(400)),
        "backoff"
    );
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1001)),
        vec![Out::new(ACK | PSH, 1001, 5001).payload(b"abc")]
    );
    assert_eq!(t.c.timer(Timer::Persist), None);
}

/// The timer table: `next_deadline` is the earliest armed timer.
#[test]
fn next_deadline_is_earliest() {
    let mut t = established();
    assert_eq!(t.c.next_deadline(), None);
    t.c.set_keepalive(t.now, true);
    t.send(b"x").unwrap();
    t.out();
    assert_eq!(
        t.c.next_deadline(),
        Some(EST + ms(200)),
        "RTO after the handshake sample"
    );
    assert_eq!(t.c.timer(Timer::Keepalive), Some(EST + secs(7200)));
}

/// Karn forbids a timed sample for retransmitted data; with timestamps the echo still gives
/// one (RFC 7323 §4.1 RTTM, Linux's fallback): here 100 ms from the retransmission's TSval.
#[test]
fn timestamp_sample_after_retransmission() {
    let cfg = TcpConfig {
        timestamps: true,
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.timestamp = Some((1, 0));
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.options.timestamp = Some((2, 1_000_000));
    third_ack(&mut t, &third);
    assert_eq!(t.c.rtt().unwrap().0, Some(HS_RTT), "the handshake's sample");
    t.send(b"x").unwrap();
    t.out();
    let out = t.next();
    assert_eq!(out.len(), 1);
    // Resent one RTO (200 ms) after EST = 1_000_010 ms.
    assert_eq!(
        out[0].options.timestamp,
        Some((1_000_210, 2)),
        "TSval of the resend"
    );
    t.now += ms(100);
    let mut ack = seg(ACK, 5001, 1002);
    ack.options.timestamp = Some((3, 1_000_210));
    t.feed(&ack);
    // The 100 ms sample, RFC 6298 §2.3: SRTT = 7/8 * 10 + 1/8 * 100 = 21.25 ms.
    assert_eq!(t.c.rtt().unwrap().0, Some(Duration::from_micros(21_250)));
}

/// Enabling keepalive on a long-idle connection waits a full keepalive_time (as Linux).
#[test]
fn keepalive_enabled_late_waits_full_time() {
    let mut t = established();
    t.now += secs(10_000);
    t.c.set_keepalive(t.now, true);
    assert_eq!(t.c.timer(Timer::Keepalive), Some(t.now + secs(7200)));
    assert_eq!(t.next(), vec![ack_out(1000, 5001)]);
}

/// The user timeout also bounds a connection attempt (Linux TCP_USER_TIMEOUT in SYN-SENT),
/// and stops applying once established with nothing in flight.
#[test]
fn user_timeout_bounds_connect() {
    let mut t = syn_sent();
    t.c.set_user_timeout(t.now, Some(secs(5)));
    t.next(); // SYN at 1 s
    t.next(); // SYN at 3 s
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, T0 + secs(5));
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );

    let mut t = syn_sent();
    t.c.set_user_timeout(t.now, Some(secs(5)));
    t.feed(&seg(SYN | ACK, PEER_ISS, 1001));
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.timer(Timer::UserTimeout), None);
}
