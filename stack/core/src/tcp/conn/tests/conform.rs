//! Conformance details against Linux found in review: the connection's part.

use super::*;

/// ESTABLISHED with timestamps on; TS.Recent 2 (from the third ACK), Last.ACK.sent 5001.
fn established_ts() -> T {
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
    t.events();
    t
}

fn with_ts(mut s: TcpRepr<'static>, tsval: u32) -> TcpRepr<'static> {
    s.options.timestamp = Some((tsval, 0));
    s
}

/// RFC 7323 §4.3 / §5.3 (Linux tcp_ack -> tcp_replace_ts_recent): a
/// segment that fails the RST, SYN or ACK-bit check does not update TS.Recent. Each blind
/// in-window segment below carries a far-future TSval; afterwards the real peer's next
/// segment (TSval 3) still passes PAWS and is ACKed with TSecr 3.
#[test]
fn ts_recent_only_from_segments_that_pass_every_check() {
    let far = 0x4000_0000;
    let blind = [
        with_ts(seg(RST, 5002, 0), far), // in-window RST: challenge ACK
        with_ts(seg(SYN, 5003, 0), far), // in-window SYN: challenge ACK
        with_ts(data(PSH, 5001, 0, b"x"), far), // no ACK bit: dropped
        with_ts(seg(ACK, 5001, 9999), far), // ACK of unsent data: challenge ACK
    ];
    for s in blind {
        let mut t = established_ts();
        t.feed(&s);
        assert_eq!(t.state(), State::Established, "{s:?}");
        t.now += ms(1000); // past any ACK rate limit
        let out = t.feed(&with_ts(data(ACK | PSH, 5001, 1001, b"real"), 3));
        assert_eq!(out.len(), 1, "{s:?}");
        assert_eq!(out[0].ack, 5005, "PAWS let the real segment in: {s:?}");
        assert_eq!(out[0].options.timestamp.map(|(_, e)| e), Some(3), "{s:?}");
        assert_eq!(t.read_all(), b"real");
    }
    // A segment that passes every check does update it.
    let mut t = established_ts();
    t.feed(&with_ts(data(ACK | PSH, 5001, 1001, b"a"), 7));
    let out = t.feed(&with_ts(data(ACK | PSH, 5002, 1001, b"b"), 6));
    assert_eq!(
        out,
        vec![ack_out(1001, 5002).win(4095).opts(TcpOptions {
            timestamp: Some((1_000_010, 7)),
            ..TcpOptions::default()
        })],
        "PAWS drops TSval 6 < TS.Recent 7 with an ACK"
    );
}

/// RFC 9293 §3.10.5 ABORT "<SEQ=SND.NXT><CTL=RST>" with SND.NXT the
/// highest sequence number sent: after an RTO pulled SND.NXT back to SND.UNA (go-back-N),
/// the RST carries SND.MAX, as the bare ACK does (Linux never pulls snd_nxt back).
#[test]
fn abort_after_rto_uses_snd_max() {
    let mut t = established();
    t.send(&[2u8; 2000]).unwrap();
    assert_eq!(t.out().len(), 2, "1001..3001 sent");
    assert_eq!(t.next().len(), 1, "RTO: 1001..2461 resent");
    t.c.abort(t.now);
    assert_eq!(t.out(), vec![Out::new(RST | ACK, 3001, 5001).win(0)]);
    // close() with unread data takes the same path.
    let mut t = established();
    t.send(&[2u8; 2000]).unwrap();
    t.out();
    t.next();
    t.feed(&data(ACK | PSH, 5001, 1001, b"unread"));
    t.out();
    t.c.close(t.now);
    assert_eq!(t.out(), vec![Out::new(RST | ACK, 3001, 5007).win(0)]);
}

/// Duplicate SYNs in SYN-RECEIVED (Linux tcp_check_req): the SYN-ACK again
/// at most once per `tcp_invalid_ratelimit` (500 ms; the others counted as skipped), and
/// never at the cost of a retry: the SYN-ACK retransmissions still come at 1, 3, 7, 15, 31 s
/// and the half-open connection ends at 63 s, as without the duplicates.
#[test]
fn duplicate_syns_in_syn_received_rate_limited_and_free() {
    let mut t = syn_received();
    let syn_ack = Out::new(SYN | ACK, 1000, 5001).opts(TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    });
    // (time from T0, answered?)
    let dups = [
        (10, true),
        (20, false),
        (400, false),
        (510, true),
        (900, false),
    ];
    for (at, answered) in dups {
        t.now = T0 + ms(at);
        let want = if answered {
            vec![syn_ack.clone()]
        } else {
            vec![]
        };
        assert_eq!(t.feed(&peer_syn()), want, "at {at} ms");
    }
    assert_eq!(t.lim.oow_skipped, 3);
    assert_eq!(
        t.c.timer(Timer::Retransmit),
        Some(T0 + secs(1)),
        "no backoff"
    );
    for at in [1, 3, 7, 15, 31] {
        assert_eq!(t.next(), vec![syn_ack.clone()]);
        assert_eq!(t.now, T0 + secs(at));
        // A duplicate after each retransmission (rate limit passed): no retry consumed.
        t.now += ms(600);
        assert_eq!(t.feed(&peer_syn()), vec![syn_ack.clone()]);
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, T0 + secs(63));
    assert_eq!(t.state(), State::Closed);
}

/// `tcp_invalid_ratelimit` is a setting: at 0 every out-of-window bare
/// ACK is answered; at 2000 ms one per 2 s.
#[test]
fn invalid_ratelimit_setting() {
    for (limit, answered) in [(0, [true, true, true]), (2000, [true, false, true])] {
        let cfg = TcpConfig {
            invalid_ratelimit: ms(limit),
            ..cfg()
        };
        let mut t = syn_received_with(&cfg, &peer_syn());
        third_ack(&mut t, &seg(ACK, 5001, 1001));
        for (i, (at, want)) in [0, 1000, 2000].into_iter().zip(answered).enumerate() {
            t.now = EST + ms(at);
            let out = t.feed(&seg(ACK, 5001 + 10_000, 1001)); // beyond the window
            assert_eq!(!out.is_empty(), want, "limit {limit} ms, ACK {i}");
        }
    }
}

const URG: TcpFlags = TcpFlags::URG;

/// Every flag combination that matters at the connection's states, with
/// an in-window sequence number and an acceptable ACK, against RFC 9293 §3.10.7.3/4 and
/// Linux (tcp_rcv_synsent_state_process, tcp_check_req, tcp_validate_incoming,
/// tcp_rcv_state_process). Where the two differ the row says which one we follow.
#[test]
fn flag_combinations_by_state() {
    let none = TcpFlags(0);
    // (fixture, name, flags, seq, ack, replies, state after)
    #[allow(clippy::type_complexity)]
    let rows: Vec<(Fixture, &str, TcpFlags, u32, u32, Vec<Out>, State)> = vec![
        // ESTABLISHED: RCV.NXT 5001, SND.NXT 1001.
        (
            established,
            "est",
            none,
            5001,
            1001,
            vec![],
            State::Established,
        ), // no ACK: drop
        (
            established,
            "est",
            PSH,
            5001,
            1001,
            vec![],
            State::Established,
        ),
        (
            established,
            "est",
            FIN,
            5001,
            1001,
            vec![],
            State::Established,
        ), // FIN w/o ACK: drop
        (
            established,
            "est",
            URG | ACK,
            5001,
            1001,
            vec![],
            State::Established,
        ),
        (
            established,
            "est",
            ACK,
            5001,
            1001,
            vec![],
            State::Established,
        ),
        (
            established,
            "est",
            FIN | ACK,
            5001,
            1001,
            vec![ack_out(1001, 5002)],
            State::CloseWait,
        ),
        (established, "est", RST, 5001, 0, vec![], State::Closed),
        (
            established,
            "est",
            RST | ACK,
            5001,
            1001,
            vec![],
            State::Closed,
        ),
        // RST is checked before SYN (RFC 9293 and Linux alike): SYN+RST at RCV.NXT resets.
        (
            established,
            "est",
            SYN | RST,
            5001,
            0,
            vec![],
            State::Closed,
        ),
        (
            established,
            "est",
            SYN | FIN | RST | ACK,
            5001,
            1001,
            vec![],
            State::Closed,
        ),
        // RFC 5961 §4.2 (Linux tcp_validate_incoming step 4): any SYN, challenge ACK.
        (
            established,
            "est",
            SYN,
            5001,
            0,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        (
            established,
            "est",
            SYN | ACK,
            5001,
            1001,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        (
            established,
            "est",
            SYN | FIN,
            5001,
            0,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        (
            established,
            "est",
            SYN | FIN | ACK,
            5001,
            1001,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        // SYN-SENT: ISS 1000, the peer's ISS 5000.
        (
            syn_sent,
            "syn-sent",
            SYN | ACK,
            5000,
            1001,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        // A FIN on the SYN-ACK is not taken (Linux: "Do step6 onward by hand" skips the FIN;
        // the peer retransmits it).
        (
            syn_sent,
            "syn-sent",
            SYN | ACK | FIN,
            5000,
            1001,
            vec![ack_out(1001, 5001)],
            State::Established,
        ),
        (
            syn_sent,
            "syn-sent",
            RST | ACK,
            5000,
            1001,
            vec![],
            State::Closed,
        ),
        (
            syn_sent,
            "syn-sent",
            SYN | RST | ACK,
            5000,
            1001,
            vec![],
            State::Closed,
        ),
        (syn_sent, "syn-sent", RST, 5000, 0, vec![], State::SynSent),
        (
            syn_sent,
            "syn-sent",
            SYN | RST,
            5000,
            0,
            vec![],
            State::SynSent,
        ),
        (
            syn_sent,
            "syn-sent",
            ACK,
            5000,
            1001,
            vec![],
            State::SynSent,
        ),
        (
            syn_sent,
            "syn-sent",
            FIN | ACK,
            5000,
            1001,
            vec![],
            State::SynSent,
        ),
        (syn_sent, "syn-sent", none, 5000, 0, vec![], State::SynSent),
        (syn_sent, "syn-sent", FIN, 5000, 0, vec![], State::SynSent),
        // SYN-RECEIVED: IRS 5000, ISS 1000.
        (
            syn_received,
            "syn-rcvd",
            ACK,
            5001,
            1001,
            vec![],
            State::Established,
        ),
        (
            syn_received,
            "syn-rcvd",
            FIN | ACK,
            5001,
            1001,
            vec![ack_out(1001, 5002)],
            State::CloseWait,
        ),
        (
            syn_received,
            "syn-rcvd",
            RST,
            5001,
            0,
            vec![],
            State::Closed,
        ),
        (
            syn_received,
            "syn-rcvd",
            RST | ACK,
            5001,
            1001,
            vec![],
            State::Closed,
        ),
        (
            syn_received,
            "syn-rcvd",
            none,
            5001,
            0,
            vec![],
            State::SynReceived,
        ),
        (
            syn_received,
            "syn-rcvd",
            FIN,
            5001,
            0,
            vec![],
            State::SynReceived,
        ),
        (
            syn_received,
            "syn-rcvd",
            PSH,
            5001,
            0,
            vec![],
            State::SynReceived,
        ),
        // FIN-WAIT-2 (SND.NXT 1002) and CLOSE-WAIT (RCV.NXT 5002): the same checks.
        (
            fin_wait_2,
            "fw2",
            SYN,
            5001,
            0,
            vec![ack_out(1002, 5001)],
            State::FinWait2,
        ),
        (fin_wait_2, "fw2", FIN, 5001, 0, vec![], State::FinWait2),
        (
            fin_wait_2,
            "fw2",
            FIN | ACK,
            5001,
            1002,
            vec![ack_out(1002, 5002)],
            State::TimeWait,
        ),
        (
            close_wait,
            "cw",
            SYN | FIN,
            5002,
            0,
            vec![ack_out(1001, 5002)],
            State::CloseWait,
        ),
        (close_wait, "cw", RST, 5002, 0, vec![], State::Closed),
    ];
    for (fixture, name, flags, seq, ack, want, state) in rows {
        let mut t = fixture();
        t.events();
        let out = t.feed(&seg(flags, seq, ack));
        assert_eq!(out, want, "{name} {flags:?}");
        assert_eq!(t.state(), state, "{name} {flags:?}");
    }
    // SYN-RECEIVED, the peer's SYN again (with or without FIN: Linux tcp_check_req masks
    // flags with RST|SYN|ACK): the SYN-ACK again.
    for flags in [SYN, SYN | FIN] {
        let mut t = syn_received();
        let out = t.feed(&seg(flags, 5000, 0));
        assert_eq!(out.len(), 1, "{flags:?}");
        assert_eq!(
            (out[0].flags, out[0].seq, out[0].ack),
            (SYN | ACK, 1000, 5001)
        );
        assert_eq!(t.state(), State::SynReceived);
    }
    // SYN-RECEIVED (passive), a SYN at another in-window sequence number: RFC 9293 §3.10.7.4
    // "return this connection to the LISTEN state" silently. (Linux tcp_check_req answers it
    // with a RST (embryonic_reset); we follow the RFC: the RST would refuse the peer's new
    // attempt, which its retransmitted SYN makes anyway.)
    let mut t = syn_received();
    assert_eq!(t.feed(&seg(SYN, 5002, 0)), vec![]);
    assert_eq!(t.state(), State::Closed);
}

/// RFC 6691 §2 / RFC 5681 §3.1 with timestamps on: cwnd is counted in the
/// segment size (MSS 1460 - 12 option bytes = 1448, Linux mss_cache), so after an RTO
/// (cwnd = 1 SMSS) and in the slow start after it every segment is whole: no 12-byte runts.
#[test]
fn rto_with_timestamps_sends_whole_segments() {
    let cfg = TcpConfig {
        timestamps: true,
        wmem: 1 << 16,
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.timestamp = Some((1, 0));
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.window = u16::MAX;
    third.options.timestamp = Some((2, 1_000_000));
    third_ack(&mut t, &third);
    t.send(&[7u8; 5 * 1448]).unwrap();
    let lens = |v: &[Out]| v.iter().map(|o| o.payload.len()).collect::<Vec<_>>();
    assert_eq!(lens(&t.out()), vec![1448; 5], "initial window: 10 segments");
    let rto = t.next();
    assert_eq!(lens(&rto), vec![1448], "RTO: one whole segment, no runt");
    assert_eq!(rto[0].seq, 1001);
    assert_eq!(t.c.congestion_window().map(|(c, _)| c), Some(1448));
    let mut ack = seg(ACK, 5001, 1001 + 1448);
    ack.window = u16::MAX;
    ack.options.timestamp = Some((3, rto[0].options.timestamp.unwrap().0));
    let out = t.feed(&ack);
    assert_eq!(lens(&out), vec![1448, 1448], "slow start: 2 whole segments");
    assert_eq!(out[0].seq, 1001 + 1448);
}

/// `tcp_orphan_retries` (Linux tcp_write_timeout / tcp_orphan_retries): a
/// connection the application closed (orphaned, FIN-WAIT-1 with data and FIN outstanding)
/// gives up after 8 retransmissions by default (`tcp_orphan_retries` = 0 means 8), one still
/// held by the application (write side shut down only) after `tcp_retries2` (15). Both end
/// TimedOut without a RST, as Linux.
#[test]
fn orphan_retries_bound_orphaned_connections() {
    // (orphan_retries setting, close (orphan) or shutdown_write, retransmissions before giving up)
    for (setting, orphan, want) in [(0, true, 8), (3, true, 3), (0, false, 15), (20, true, 15)] {
        let cfg = TcpConfig {
            orphan_retries: setting,
            ..cfg()
        };
        let mut t = syn_received_with(&cfg, &peer_syn());
        third_ack(&mut t, &seg(ACK, 5001, 1001));
        t.events();
        t.send(b"data").unwrap();
        if orphan {
            t.c.close(t.now);
        } else {
            t.c.shutdown_write(t.now);
        }
        assert!(!t.out().is_empty());
        let mut resent = 0;
        while t.state() != State::Closed && resent < 100 {
            let out = t.next();
            assert!(out.iter().all(|o| !o.flags.rst()), "no RST on timeout");
            resent += (!out.is_empty()) as u32;
        }
        assert_eq!(resent, want, "orphan_retries {setting}, orphaned {orphan}");
        assert_eq!(t.c.error(), Some(ConnError::TimedOut));
    }
}
