//! RST acceptance and the RFC 5961 hardening: exact-sequence RSTs reset, in-window ones get
//! a challenge ACK (§3.2), SYNs in synchronized states get a challenge ACK (§4), ACKs outside
//! [SND.UNA - MAX.SND.WND, SND.NXT] are dropped with a challenge ACK (§5), challenge ACKs are
//! rate-limited (§7); RFC 1337: RST in TIME-WAIT is ignored. Plus the first check's
//! "unacceptable segment -> ACK" (RFC 9293 §3.10.7.4).

use super::*;

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
        t.c.send(t.now, b"unsent?").unwrap();
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
/// sequence number, and does not disturb the connection. In-window SYNs are rate-limited
/// challenge ACKs; out-of-window ones already fail the first check (plain ACK).
#[test]
fn syn_in_synchronized_state_gets_challenge_ack() {
    let mut t = established();
    assert_eq!(t.feed(&seg(SYN, 5001, 0)), vec![ack_out(1001, 5001)]);
    assert_eq!(t.feed(&seg(SYN, 9999, 0)), vec![ack_out(1001, 5001)]);
    assert_eq!(
        t.feed(&seg(SYN | ACK, 5001, 1001)),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![]);

    t.lim = ChallengeAckLimiter::new(0);
    assert_eq!(
        t.feed(&seg(SYN, 5001, 0)),
        vec![],
        "rate-limited challenge ACK"
    );
    assert_eq!(
        t.feed(&seg(SYN, 9999, 0)),
        vec![ack_out(1001, 5001)],
        "first check"
    );
    assert_eq!(t.lim.suppressed, 1);

    let mut t = close_wait();
    assert_eq!(t.feed(&seg(SYN, 5002, 0)), vec![ack_out(1001, 5002)]);
    assert_eq!(t.state(), State::CloseWait);
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
/// second), counted by the limiter.
#[test]
fn challenge_acks_are_rate_limited() {
    let mut t = established();
    t.lim = ChallengeAckLimiter::new(2);
    assert_eq!(t.feed(&seg(RST, 5002, 0)), vec![ack_out(1001, 5001)]);
    assert_eq!(t.feed(&seg(RST, 5003, 0)), vec![ack_out(1001, 5001)]);
    assert_eq!(t.feed(&seg(RST, 5004, 0)), vec![]);
    assert_eq!(t.lim.suppressed, 1);
    t.now += secs(1);
    assert_eq!(t.feed(&seg(RST, 5005, 0)), vec![ack_out(1001, 5001)]);
    assert_eq!(t.state(), State::Established);
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
