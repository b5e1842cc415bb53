//! RST acceptance and the RFC 5961 hardening: exact-sequence RSTs reset, in-window ones get
//! a challenge ACK (§3.2), SYNs in synchronized states get a challenge ACK (§4), ACKs outside
//! [SND.UNA - MAX.SND.WND, SND.NXT] are dropped with a challenge ACK (§5), challenge ACKs are
//! rate-limited (§7); RFC 1337: RST in TIME-WAIT is ignored. Plus the first check's
//! "unacceptable segment -> ACK" (RFC 9293 §3.10.7.4).

use super::*;
use crate::tcp::conn::input::OOW_ACK_INTERVAL;

pub fn scenarios() {
    rst_exact_sequence_resets();
    rst_in_each_synchronized_state();
}

/// RFC 5961 §3.2: "If the RST bit is set and the sequence number exactly matches the next
/// expected sequence number (RCV.NXT), then TCP MUST reset the connection."
#[test]
fn rst_exact_sequence_resets() {
    for flags in [RST, RST | ACK] {
        let mut t = established();
        t.send(b"unsent?").unwrap();
        assert_eq!(t.feed(&seg(flags, 5001, 1001)), vec![], "{flags:?}");
        assert_eq!(t.state(), State::Closed);
        assert_eq!(
            t.events(),
            vec![Event::Error(ConnError::Reset), Event::Closed]
        );
        assert_eq!(t.c.error(), Some(ConnError::Reset));
        assert_eq!(t.c.next_deadline(), None);
        assert_eq!(t.out(), vec![]);
    }
}

/// RFC 5961 §3.2 table: where the RST's sequence number falls decides.
#[test]
fn rst_sequence_table() {
    // (seq, reply, state after)
    let cases = [
        (5001, vec![], State::Closed),
        (5002, vec![ack_out(1001, 5001)], State::Established), // challenge ACK
        (5001 + 4095, vec![ack_out(1001, 5001)], State::Established),
        (5001 + 4096, vec![], State::Established), // outside the window: dropped
        (5000, vec![], State::Established),
        (1, vec![], State::Established),
    ];
    for (seq, want, state) in cases {
        let mut t = established();
        assert_eq!(t.feed(&seg(RST, seq, 0)), want, "seq={seq}");
        assert_eq!(t.state(), state, "seq={seq}");
    }
}

/// RFC 9293 §3.10.7.4 second check per state: ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2,
/// CLOSE-WAIT report "connection reset"; CLOSING and LAST-ACK just close; TIME-WAIT ignores
/// it (RFC 1337).
#[test]
fn rst_in_each_synchronized_state() {
    let cases: [(Fixture, u32, State, Vec<Event>); 6] = [
        (
            fin_wait_1,
            5001,
            State::Closed,
            vec![Event::Error(ConnError::Reset), Event::Closed],
        ),
        (
            fin_wait_2,
            5001,
            State::Closed,
            vec![Event::Error(ConnError::Reset), Event::Closed],
        ),
        (
            close_wait,
            5002,
            State::Closed,
            vec![Event::Error(ConnError::Reset), Event::Closed],
        ),
        (closing, 5002, State::Closed, vec![Event::Closed]),
        (last_ack, 5002, State::Closed, vec![Event::Closed]),
        (time_wait, 5002, State::TimeWait, vec![]),
    ];
    for (fixture, seq, state, events) in cases {
        let mut t = fixture();
        let before = t.state();
        t.events();
        assert_eq!(t.feed(&seg(RST, seq, 0)), vec![], "{before}");
        assert_eq!(t.state(), state, "{before}");
        assert_eq!(t.events(), events, "{before}");
    }
}

/// RFC 5961 §4.2: a SYN in a synchronized state gets a challenge ACK, whatever its
/// sequence number, and does not disturb the connection. In-window SYNs take the challenge
/// path (per-stack limiter); out-of-window ones already fail the first check. Both are
/// limited per connection to one per 500 ms (Linux tcp_invalid_ratelimit).
#[test]
fn syn_in_synchronized_state_gets_challenge_ack() {
    let gap = OOW_ACK_INTERVAL;
    let mut t = established();
    assert_eq!(t.feed(&seg(SYN, 5001, 0)), vec![ack_out(1001, 5001)]);
    t.now += gap;
    assert_eq!(t.feed(&seg(SYN, 9999, 0)), vec![ack_out(1001, 5001)]);
    t.now += gap;
    assert_eq!(
        t.feed(&seg(SYN | ACK, 5001, 1001)),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![]);

    t.lim = ChallengeAckLimiter::new(0);
    t.now += gap;
    assert_eq!(
        t.feed(&seg(SYN, 5001, 0)),
        vec![],
        "per-stack limit: no challenge ACK"
    );
    assert_eq!(t.lim.suppressed, 1);
    t.now += gap;
    assert_eq!(
        t.feed(&seg(SYN, 9999, 0)),
        vec![ack_out(1001, 5001)],
        "first check: not the challenge limiter"
    );

    let mut t = close_wait();
    assert_eq!(t.feed(&seg(SYN, 5002, 0)), vec![ack_out(1001, 5002)]);
    assert_eq!(t.state(), State::CloseWait);
}

/// Per connection, ACKs answering unacceptable bare segments and challenge ACKs are limited
/// to one per 500 ms (Linux tcp_oow_rate_limited), so two confused ends cannot loop; an
/// unacceptable segment carrying data is always answered.
#[test]
fn out_of_window_acks_are_rate_limited_per_connection() {
    let mut t = established();
    let stray = seg(ACK, 9999, 1001);
    assert_eq!(t.feed(&stray), vec![ack_out(1001, 5001)]);
    assert_eq!(t.feed(&stray), vec![], "within 500 ms");
    assert_eq!(
        t.feed(&seg(RST, 5002, 0)),
        vec![],
        "challenge ACK shares the limit"
    );
    assert_eq!(
        t.feed(&data(ACK, 9999, 1001, b"d")),
        vec![ack_out(1001, 5001)],
        "data is never part of an ACK loop"
    );
    t.now += OOW_ACK_INTERVAL;
    assert_eq!(t.feed(&stray), vec![ack_out(1001, 5001)]);
}

/// RFC 5961 §5.2: "(SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT" else challenge ACK and
/// drop (the text is not taken).
#[test]
fn ack_validation_table() {
    // SND.UNA = SND.NXT = 1001, MAX.SND.WND = 4096.
    let cases = [
        (1002, vec![ack_out(1001, 5001)], 0),
        (1001 + 100_000, vec![ack_out(1001, 5001)], 0),
        (1001u32.wrapping_sub(4097), vec![ack_out(1001, 5001)], 0),
        (
            1001u32.wrapping_sub(4096),
            vec![ack_out(1001, 5003).win(WND - 2)],
            2,
        ),
        (1001, vec![ack_out(1001, 5003).win(WND - 2)], 2),
    ];
    for (ack, want, taken) in cases {
        let mut t = established();
        assert_eq!(t.feed(&data(ACK, 5001, ack, b"ab")), want, "ack={ack}");
        assert_eq!(t.c.recv_available(), taken, "ack={ack}");
        assert_eq!(t.state(), State::Established);
    }
}

/// RFC 5961 §7: challenge ACKs share the per-stack limit (cfg.challenge_ack_limit per
/// second) across connections, counted by the limiter.
#[test]
fn challenge_acks_are_rate_limited_per_stack() {
    let mut lim = ChallengeAckLimiter::new(2);
    let mut conns = [established(), established(), established()];
    let mut replies = Vec::new();
    for t in conns.iter_mut() {
        let _ =
            t.c.on_segment(t.now, &seg(RST, 5002, 0), &mut lim, &mut t.pool);
        replies.push(t.out());
    }
    assert_eq!(
        replies,
        vec![vec![ack_out(1001, 5001)], vec![ack_out(1001, 5001)], vec![]]
    );
    assert_eq!(lim.suppressed, 1);
    let t = &mut conns[2];
    t.now += secs(1);
    let _ =
        t.c.on_segment(t.now, &seg(RST, 5002, 0), &mut lim, &mut t.pool);
    assert_eq!(t.out(), vec![ack_out(1001, 5001)], "next second");
    assert!(conns.iter().all(|t| t.state() == State::Established));
}

/// RFC 9293 §3.10.7.4 first check: unacceptable segments are answered with
/// <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and dropped; an unacceptable RST is just dropped.
#[test]
fn unacceptable_segments_get_an_ack() {
    let cases: [TcpRepr<'static>; 4] = [
        data(ACK, 4000, 1001, b"old"),
        data(ACK, 5001 + 4096, 1001, b"beyond"),
        seg(ACK, 5000, 1001),
        seg(FIN | ACK, 5001 + 5000, 1001),
    ];
    for s in cases {
        let mut t = established();
        assert_eq!(t.feed(&s), vec![ack_out(1001, 5001)], "{s:?}");
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.c.recv_available(), 0);
    }
}

/// RFC 9293 §3.10.7.4 SYN-RECEIVED: a bad ACK gets <SEQ=SEG.ACK><CTL=RST> (also checked in
/// handshake.rs); RST generation for a stray ACK in SYN-SENT likewise. Here: the RST we send
/// carries no options even when timestamps are on.
#[test]
fn generated_rst_has_no_options() {
    let cfg = TcpConfig::default();
    let syn = TcpRepr {
        options: TcpOptions {
            timestamp: Some((9, 0)),
            ..TcpOptions::default()
        },
        ..seg(SYN, PEER_ISS, 0)
    };
    let mut t = syn_received_with(&cfg, &syn);
    assert_eq!(t.feed(&seg(ACK, 5001, 4242)), vec![rst_out(4242)]);
}

/// RFC 5961 §5.2 in FIN-WAIT-2 (nothing outstanding): an ACK of data never sent is dropped
/// with a challenge ACK; the text is not taken.
#[test]
fn fin_wait_2_ack_validation() {
    let mut t = fin_wait_2();
    assert_eq!(
        t.feed(&data(ACK, 5001, 1003, b"x")),
        vec![ack_out(1002, 5001)]
    );
    assert_eq!(t.state(), State::FinWait2);
}

/// RFC 5961 §4.2 in every synchronized state: a SYN at RCV.NXT gets a challenge ACK
/// <SEQ=SND.NXT><ACK=RCV.NXT> and changes nothing (TIME-WAIT: an old SYN, RFC 6191, ACKed).
#[test]
fn syn_challenge_ack_in_every_synchronized_state() {
    let cases: [(Fixture, u32, u32); 7] = [
        (established, 1001, 5001),
        (fin_wait_1, 1002, 5001),
        (fin_wait_2, 1002, 5001),
        (close_wait, 1001, 5002),
        (closing, 1002, 5002),
        (last_ack, 1002, 5002),
        (time_wait, 1002, 5002),
    ];
    for (fixture, snd_nxt, rcv_nxt) in cases {
        let mut t = fixture();
        let before = t.state();
        t.events();
        assert_eq!(
            t.feed(&seg(SYN, rcv_nxt, 0)),
            vec![ack_out(snd_nxt, rcv_nxt)],
            "{before}"
        );
        assert_eq!(t.state(), before);
        assert_eq!(t.events(), vec![], "{before}");
    }
}

/// RFC 9293 §3.10.7.4 seventh check: after the peer's FIN, text is ignored (CLOSE-WAIT,
/// CLOSING, LAST-ACK).
#[test]
fn text_after_fin_is_ignored() {
    let cases: [Fixture; 3] = [close_wait, closing, last_ack];
    for fixture in cases {
        let mut t = fixture();
        let before = t.state();
        assert_eq!(t.feed(&data(ACK, 5002, 1001, b"zz")), vec![], "{before}");
        assert_eq!(t.state(), before);
        assert_eq!(t.c.recv_available(), 0);
    }
}
