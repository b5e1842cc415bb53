//! Closing: active (FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT), passive (CLOSE-WAIT -> LAST-ACK
//! -> CLOSED), simultaneous (CLOSING), half-close, close with unread data (RST), abort, FIN
//! retransmission, the orphaned FIN-WAIT-2 timeout and TIME-WAIT (RFC 9293 §3.6, §3.10.4,
//! §3.10.7.4).

use super::*;
use crate::tcp::timewait::TimeWait;

pub fn scenarios() {
    active_close_to_time_wait_and_closed();
    passive_close_last_ack();
    simultaneous_close_closing();
    orphaned_fin_wait_2_times_out();
}

/// RFC 9293 §3.6 case 1: CLOSE -> FIN-WAIT-1; ACK of FIN -> FIN-WAIT-2; FIN -> ACK,
/// TIME-WAIT; 2*MSL later CLOSED.
#[test]
fn active_close_to_time_wait_and_closed() {
    let mut t = time_wait();
    assert_eq!(t.events(), vec![Event::PeerFin, Event::Closed]);
    assert_eq!(t.c.next_deadline(), Some(t.now + secs(60)));
    assert_eq!(t.c.timer(Timer::TimeWait), Some(t.now + secs(60)));
    let entered = t.now;
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, entered + secs(60));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![],
        "Closed was reported on entering TIME-WAIT"
    );
    assert!(t.c.is_finished());
}

/// RFC 9293 §3.6 case 2: FIN -> CLOSE-WAIT (ACK it, PeerFin); CLOSE -> FIN, LAST-ACK; the
/// ACK of our FIN -> CLOSED.
#[test]
fn passive_close_last_ack() {
    let mut t = last_ack();
    // RTO 200 ms: the handshake's sample (tests/mod.rs HS_RTT).
    assert_eq!(t.c.timer(Timer::Retransmit), Some(t.now + ms(200)));
    assert_eq!(t.feed(&seg(ACK, 5002, 1001)), vec![], "not the FIN's ACK");
    assert_eq!(t.state(), State::LastAck);
    assert_eq!(t.feed(&seg(ACK, 5002, 1002)), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), vec![Event::Closed]);
    assert_eq!(t.c.next_deadline(), None);
}

/// RFC 9293 §3.6 case 3 (Figure 13): FINs cross -> CLOSING; the ACK of our FIN ->
/// TIME-WAIT.
#[test]
fn simultaneous_close_closing() {
    let mut t = closing();
    assert_eq!(t.events(), vec![Event::PeerFin]);
    assert_eq!(
        t.feed(&seg(ACK, 5002, 1001)),
        vec![],
        "CLOSING ignores other ACKs"
    );
    assert_eq!(t.state(), State::Closing);
    assert_eq!(t.feed(&seg(ACK, 5002, 1002)), vec![]);
    assert_eq!(t.state(), State::TimeWait);
    assert_eq!(t.events(), vec![Event::Closed]);
    assert_eq!(t.c.timer(Timer::TimeWait), Some(t.now + secs(60)));
}

/// RFC 9293 §3.10.7.4 FIN-WAIT-1: a FIN that also ACKs our FIN goes to TIME-WAIT (through
/// FIN-WAIT-2 within the one segment).
#[test]
fn fin_wait_1_fin_acking_our_fin_enters_time_wait() {
    let mut t = fin_wait_1();
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5001, 1002)),
        vec![ack_out(1002, 5002)]
    );
    assert_eq!(t.state(), State::TimeWait);
    assert_eq!(t.events(), vec![Event::PeerFin, Event::Closed]);
}

/// FIN-WAIT-1 with data ahead of the FIN: an ACK of the data only keeps FIN-WAIT-1.
#[test]
fn fin_wait_1_waits_for_the_ack_of_the_fin() {
    let mut t = established();
    assert_eq!(t.send(b"abc"), Ok(3));
    t.c.close(t.now);
    assert_eq!(
        t.out(),
        vec![Out::new(FIN | ACK | PSH, 1001, 5001).payload(b"abc")]
    );
    assert_eq!(t.feed(&seg(ACK, 5001, 1004)), vec![]);
    assert_eq!(t.state(), State::FinWait1);
    assert_eq!(t.feed(&seg(ACK, 5001, 1005)), vec![]);
    assert_eq!(t.state(), State::FinWait2);
}

/// Half-close: `shutdown_write` sends FIN and keeps receiving in FIN-WAIT-1/2; no FIN-WAIT-2
/// timer (the application still reads); the peer's FIN later -> TIME-WAIT.
#[test]
fn half_close_keeps_receiving() {
    let mut t = established();
    t.c.shutdown_write(t.now);
    assert_eq!(t.out(), vec![Out::new(FIN | ACK, 1001, 5001)]);
    assert_eq!(t.send(b"x"), Err(SendError::WriteClosed));
    assert_eq!(t.feed(&seg(ACK, 5001, 1002)), vec![]);
    assert_eq!(t.state(), State::FinWait2);
    assert_eq!(t.c.timer(Timer::FinWait2), None);
    assert_eq!(
        t.feed(&data(ACK | PSH, 5001, 1002, b"still")),
        vec![ack_out(1002, 5006).win(WND - 5)]
    );
    assert_eq!(t.events(), vec![Event::Readable]);
    assert_eq!(t.read_all(), b"still");
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5006, 1002)),
        vec![ack_out(1002, 5007)]
    );
    assert_eq!(t.state(), State::TimeWait);
}

/// Half-close from the other side: in CLOSE-WAIT we keep sending.
#[test]
fn close_wait_keeps_sending() {
    let mut t = close_wait();
    assert_eq!(t.send(b"xyz"), Ok(3));
    assert_eq!(
        t.out(),
        vec![Out::new(ACK | PSH, 1001, 5002).payload(b"xyz")]
    );
    assert_eq!(t.feed(&seg(ACK, 5002, 1004)), vec![]);
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.recv(&mut [0u8; 8]), 0, "end of stream");
}

/// Data that arrived before the peer's FIN stays readable in CLOSE-WAIT and after LAST-ACK.
#[test]
fn unread_data_survives_passive_close() {
    let mut t = established();
    t.feed(&data(ACK, 5001, 1001, b"tail"));
    t.feed(&seg(FIN | ACK, 5005, 1001));
    assert_eq!(t.state(), State::CloseWait);
    t.c.shutdown_write(t.now);
    assert_eq!(t.out(), vec![Out::new(FIN | ACK, 1001, 5006).win(WND - 4)]);
    t.feed(&seg(ACK, 5006, 1002));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.read_all(), b"tail");
}

/// RFC 9293 §3.10.4 / RFC 2525 §2.17 (as Linux): close() with unread received data sends
/// RST (RST,ACK <SEQ=SND.NXT><ACK=RCV.NXT>) instead of FIN; CLOSED; the data is discarded.
#[test]
fn close_with_unread_data_sends_rst() {
    let mut t = established();
    assert_eq!(
        t.feed(&data(ACK | PSH, 5001, 1001, b"abc")),
        vec![ack_out(1001, 5004).win(WND - 3)]
    );
    t.c.close(t.now);
    assert_eq!(t.out(), vec![Out::new(RST | ACK, 1001, 5004).win(0)]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![
            Event::Readable,
            Event::Error(ConnError::Aborted),
            Event::Closed
        ]
    );
    assert_eq!(t.recv(&mut [0u8; 8]), 0);
    assert!(t.c.is_finished());
}

/// RFC 9293 §3.10.5 ABORT: RST in synchronized states, nothing in SYN-SENT / TIME-WAIT.
#[test]
fn abort_table() {
    let cases: [(Fixture, Vec<Out>); 6] = [
        (established, vec![Out::new(RST | ACK, 1001, 5001).win(0)]),
        (fin_wait_2, vec![Out::new(RST | ACK, 1002, 5001).win(0)]),
        (close_wait, vec![Out::new(RST | ACK, 1001, 5002).win(0)]),
        (syn_received, vec![Out::new(RST | ACK, 1001, 5001).win(0)]),
        (syn_sent, vec![]),
        (time_wait, vec![]),
    ];
    for (fixture, want) in cases {
        let mut t = fixture();
        let before = t.state();
        t.c.abort(t.now);
        assert_eq!(t.out(), want, "{before}");
        assert_eq!(t.state(), State::Closed, "{before}");
        assert_eq!(t.c.error(), Some(ConnError::Aborted), "{before}");
        assert_eq!(t.c.next_deadline(), None);
    }
}

/// FIN retransmission (RFC 9293 §3.10.4: the FIN is retransmitted until ACKed) with RFC 6298
/// backoff, in FIN-WAIT-1, CLOSING and LAST-ACK.
#[test]
fn fin_is_retransmitted() {
    let mut t = fin_wait_1();
    let start = t.now;
    assert_eq!(t.next(), vec![Out::new(FIN | ACK, 1001, 5001)]);
    // RTO 200 ms from the handshake sample (tests/mod.rs HS_RTT), then doubled (§5.5).
    assert_eq!(t.now, start + ms(200));
    assert_eq!(t.next(), vec![Out::new(FIN | ACK, 1001, 5001)]);
    assert_eq!(t.now, start + ms(600));

    let mut t = closing();
    assert_eq!(t.next(), vec![Out::new(FIN | ACK, 1001, 5002)]);
    assert_eq!(t.state(), State::Closing);

    let mut t = last_ack();
    assert_eq!(t.next(), vec![Out::new(FIN | ACK, 1001, 5002)]);
    assert_eq!(t.state(), State::LastAck);
}

/// Linux tcp_fin_timeout: an orphaned (closed) connection in FIN-WAIT-2 is dropped after
/// cfg.fin_timeout (60 s) without sending anything.
#[test]
fn orphaned_fin_wait_2_times_out() {
    let mut t = fin_wait_2();
    assert_eq!(t.c.timer(Timer::FinWait2), Some(t.now + secs(60)));
    let entered = t.now;
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, entered + secs(60));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), vec![Event::Closed]);
}

/// close() after shutdown_write, once in FIN-WAIT-2, arms the orphan timer then.
#[test]
fn close_in_fin_wait_2_arms_fin_timeout() {
    let mut t = established();
    t.c.shutdown_write(t.now);
    t.out();
    t.feed(&seg(ACK, 5001, 1002));
    assert_eq!(t.c.timer(Timer::FinWait2), None);
    t.now += secs(5);
    t.c.close(t.now);
    assert_eq!(t.c.timer(Timer::FinWait2), Some(t.now + secs(60)));
}

/// RFC 2525 §2.17 / Linux: data arriving for an orphaned connection is answered with
/// <SEQ=SEG.ACK><CTL=RST> and the connection closes.
#[test]
fn data_for_orphaned_connection_gets_rst() {
    let mut t = fin_wait_2();
    assert_eq!(t.feed(&data(ACK, 5001, 1002, b"late")), vec![rst_out(1002)]);
    assert_eq!(t.state(), State::Closed);
}

/// RFC 9293 §3.10.7.4: in TIME-WAIT a retransmitted FIN is ACKed again and the 2MSL timer
/// restarts; other acceptable segments need nothing.
#[test]
fn time_wait_reacks_fin_and_restarts_timer() {
    let mut t = time_wait();
    t.now += secs(30);
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5001, 1002)),
        vec![ack_out(1002, 5002)]
    );
    assert_eq!(t.c.timer(Timer::TimeWait), Some(t.now + secs(60)));
    assert_eq!(t.feed(&seg(ACK, 5002, 1002)), vec![]);
    assert_eq!(t.state(), State::TimeWait);
}

/// RFC 1337 (`tcp_rfc1337` = 1, the default): a RST in TIME-WAIT is ignored. With
/// `tcp_rfc1337` = 0 (Linux's default) one exactly at RCV.NXT ends it: CLOSED, no error (the
/// connection was done), nothing sent; one elsewhere is still ignored.
#[test]
fn time_wait_rst_ignored_unless_rfc1337_off() {
    let mut t = time_wait();
    assert_eq!(t.feed(&seg(RST, 5002, 0)), vec![]);
    assert_eq!(t.state(), State::TimeWait);
    let mut off = cfg();
    off.set("tcp_rfc1337", "0").unwrap();
    t.c.limits = limits(&off);
    assert_eq!(t.feed(&seg(RST, 5003, 0)), vec![]);
    assert_eq!(t.state(), State::TimeWait);
    assert_eq!(t.feed(&seg(RST, 5002, 0)), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.c.error(), None);
}

/// The compact record: exactly what TIME-WAIT needs, and a new SYN with a higher sequence
/// number (RFC 6191) asks the caller to reopen.
#[test]
fn time_wait_record_and_reopen() {
    let mut t = time_wait();
    let rec = t.c.time_wait_record().expect("in TIME-WAIT");
    assert_eq!(
        (rec.snd_nxt, rec.rcv_nxt, rec.window, rec.timestamps),
        (SeqNum(1002), SeqNum(5002), WND, false)
    );
    assert_eq!((rec.local_port, rec.remote_port), (LOCAL_PORT, REMOTE_PORT));
    assert_eq!(rec.expiry, t.now + secs(60));
    assert!(core::mem::size_of::<TimeWait>() <= 64);
    let a =
        t.c.on_segment(t.now, &seg(SYN, 6000, 0), &mut t.lim, &mut t.pool);
    assert_eq!(a, Arrival::Reopen);
    let a =
        t.c.on_segment(t.now, &seg(SYN, 4000, 0), &mut t.lim, &mut t.pool);
    assert_eq!(a, Arrival::Done);
    assert_eq!(t.out(), vec![ack_out(1002, 5002)], "old SYN: ACK");
    assert!(established().c.time_wait_record().is_none());
}

/// A retransmitted duplicate of data already received is not "new data" for an orphaned
/// connection: the first check answers it with an ACK (and drops it, ACK field included),
/// no RST.
#[test]
fn duplicate_data_for_orphaned_connection_is_acked() {
    let mut t = established();
    t.feed(&data(ACK, 5001, 1001, b"abc"));
    t.read_all();
    t.c.close(t.now);
    // Reading 3 bytes does not move the right edge (receiver SWS avoidance, RFC 9293
    // §3.8.6.2.2): the window stays 4096 - 3.
    assert_eq!(t.out(), vec![Out::new(FIN | ACK, 1001, 5004).win(WND - 3)]);
    assert_eq!(
        t.feed(&data(ACK, 5001, 1002, b"abc")),
        vec![ack_out(1002, 5004).win(WND - 3)]
    );
    assert_eq!(t.state(), State::FinWait1);
}
