//! Opening: active, passive and simultaneous open (RFC 9293 §3.5), the SYN-SENT rules of
//! §3.10.7.3, the SYN-RECEIVED rules of §3.10.7.4, option negotiation (RFC 9293 §3.7.1,
//! RFC 7323, RFC 2018) and SYN / SYN-ACK retransmission.

use super::*;

fn mss(m: u16) -> TcpOptions {
    TcpOptions {
        mss: Some(m),
        ..TcpOptions::default()
    }
}

pub fn scenarios() {
    active_open_syn_ack_establishes();
    simultaneous_open_figure_8();
    syn_sent_rst_with_acceptable_ack_is_refused();
    syn_retries_exhausted_times_out();
    syn_received_rst_returns_to_listen();
}

/// RFC 9293 §3.10.1 / §3.10.7.3: SYN <SEQ=ISS>, then SYN,ACK acking ISS+1 -> ESTABLISHED
/// with <SEQ=ISS+1><ACK=IRS+1><CTL=ACK>.
#[test]
fn active_open_syn_ack_establishes() {
    let c = Connection::connect(T0, &limits(&cfg()), ends(), SeqNum(OUR_ISS), 0);
    let mut t = T::new(c, T0);
    assert_eq!(t.state(), State::SynSent);
    assert_eq!(t.out(), vec![Out::new(SYN, 1000, 0).opts(mss(1460))]);
    assert_eq!(t.c.timer(Timer::Retransmit), Some(T0 + secs(1)));
    let mut synack = seg(SYN | ACK, PEER_ISS, 1001);
    synack.options.mss = Some(1200);
    assert_eq!(t.feed(&synack), vec![ack_out(1001, 5001)]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![Event::Connected]);
    assert_eq!(t.c.negotiated().mss, 1200);
    assert_eq!(t.c.timer(Timer::Retransmit), None);
}

/// RFC 9293 §3.10.7.3 first check: "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset
/// (unless the RST bit is set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>".
#[test]
fn syn_sent_unacceptable_ack_table() {
    let cases: [(TcpFlags, u32, Vec<Out>); 5] = [
        (ACK, 1000, vec![rst_out(1000)]),
        (ACK, 1002, vec![rst_out(1002)]),
        (SYN | ACK, 999, vec![rst_out(999)]),
        (RST | ACK, 1002, vec![]),
        (RST | ACK, 1000, vec![]),
    ];
    for (flags, ack, want) in cases {
        let mut t = syn_sent();
        assert_eq!(
            t.feed(&seg(flags, PEER_ISS, ack)),
            want,
            "{flags:?} ack={ack}"
        );
        assert_eq!(t.state(), State::SynSent);
        assert_eq!(t.events(), vec![]);
    }
}

/// RFC 9293 §3.10.7.3 second check: RST with an acceptable ACK -> "connection reset"
/// (refused), CLOSED; RFC 5961 §3.2: without ACK it is dropped.
#[test]
fn syn_sent_rst_with_acceptable_ack_is_refused() {
    let mut t = syn_sent();
    assert_eq!(t.feed(&seg(RST, PEER_ISS, 0)), vec![]);
    assert_eq!(t.state(), State::SynSent);
    assert_eq!(t.feed(&seg(RST | ACK, 0, 1001)), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::Refused), Event::Closed]
    );
    assert_eq!(t.c.next_deadline(), None);
    assert!(t.c.is_finished());
    assert_eq!(
        t.send(b"x"),
        Err(SendError::Closed(Some(ConnError::Refused)))
    );
}

/// RFC 9293 §3.10.7.3 fifth: "If neither of the SYN or RST bits is set, then drop the
/// segment and return." (An acceptable ACK alone does not establish.)
#[test]
fn syn_sent_drops_segment_without_syn_or_rst() {
    let mut t = syn_sent();
    assert_eq!(t.feed(&seg(ACK, PEER_ISS, 1001)), vec![]);
    assert_eq!(t.feed(&data(ACK | PSH, PEER_ISS, 1001, b"hi")), vec![]);
    assert_eq!(t.state(), State::SynSent);
    assert_eq!(t.send(b"x"), Err(SendError::NotConnected));
}

/// RFC 9293 §3.5 Figure 8: both sides send SYN; each answers the other's SYN with
/// SYN,ACK <SEQ=ISS><ACK=IRS+1> (SYN-RECEIVED); the peer's SYN,ACK completes it.
#[test]
fn simultaneous_open_figure_8() {
    let mut t = syn_sent();
    assert_eq!(
        t.feed(&seg(SYN, PEER_ISS, 0)),
        vec![Out::new(SYN | ACK, 1000, 5001).opts(mss(1460))]
    );
    assert_eq!(t.state(), State::SynReceived);
    assert_eq!(t.c.timer(Timer::Retransmit), Some(T0 + secs(1)));
    assert_eq!(t.feed(&seg(SYN | ACK, PEER_ISS, 1001)), vec![]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![Event::Connected]);
    // Data flows: SND.NXT = ISS+1, RCV.NXT = IRS+1.
    assert_eq!(t.send(b"ab"), Ok(2));
    assert_eq!(
        t.out(),
        vec![Out::new(ACK | PSH, 1001, 5001).payload(b"ab")]
    );
}

/// Simultaneous open where the peer's SYN,ACK was lost but its ACK arrives; and a RST in
/// SYN-RECEIVED reached from SYN-SENT means "connection refused" (RFC 9293 §3.10.7.4).
#[test]
fn simultaneous_open_ack_and_rst() {
    let mut t = syn_sent();
    t.feed(&seg(SYN, PEER_ISS, 0));
    assert_eq!(t.feed(&seg(ACK, PEER_ISS + 1, 1001)), vec![]);
    assert_eq!(t.state(), State::Established);

    let mut t = syn_sent();
    t.feed(&seg(SYN, PEER_ISS, 0));
    assert_eq!(t.feed(&seg(RST, PEER_ISS + 1, 0)), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::Refused), Event::Closed]
    );
}

/// Passive open: SYN-ACK <SEQ=ISS><ACK=SEG.SEQ+1> with our MSS; the third segment ACKs
/// ISS+1 and establishes (fixture `established` checks that), and it may carry data.
#[test]
fn third_segment_may_carry_data() {
    let mut t = syn_received();
    assert_eq!(t.state(), State::SynReceived);
    assert_eq!(
        t.feed(&data(ACK | PSH, 5001, 1001, b"hello")),
        vec![ack_out(1001, 5006).win(WND - 5)]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![Event::Connected, Event::Readable]);
    assert_eq!(t.read_all(), b"hello");
}

/// The SYN-ACK of a passive open: exact segment.
#[test]
fn passive_open_syn_ack_segment() {
    let c = Connection::accept_syn(
        T0,
        &limits(&cfg()),
        ends(),
        &seg(SYN, PEER_ISS, 0),
        SeqNum(1000),
        0,
    );
    let mut t = T::new(c, T0);
    assert_eq!(
        t.out(),
        vec![Out::new(SYN | ACK, 1000, 5001).opts(mss(1460))]
    );
    assert_eq!(t.out(), vec![], "sent once");
}

/// RFC 9293 §3.10.7.4 fifth check, SYN-RECEIVED: "If the segment acknowledgment is not
/// acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
#[test]
fn third_segment_bad_ack_gets_rst() {
    for ack in [1000, 1002, 999, 70000] {
        let mut t = syn_received();
        assert_eq!(
            t.feed(&seg(ACK, 5001, ack)),
            vec![rst_out(ack)],
            "ack={ack}"
        );
        assert_eq!(t.state(), State::SynReceived);
    }
    // "if the ACK bit is off, drop the segment and return"
    let mut t = syn_received();
    assert_eq!(t.feed(&data(PSH, 5001, 0, b"x")), vec![]);
    assert_eq!(t.state(), State::SynReceived);
}

/// A retransmitted SYN in SYN-RECEIVED (our SYN-ACK was lost) is answered with the SYN-ACK.
#[test]
fn syn_received_retransmitted_syn_resends_syn_ack() {
    let mut t = syn_received();
    assert_eq!(
        t.feed(&seg(SYN, PEER_ISS, 0)),
        vec![Out::new(SYN | ACK, 1000, 5001).opts(mss(1460))]
    );
    assert_eq!(t.state(), State::SynReceived);
}

/// RFC 9293 §3.10.7.4: in SYN-RECEIVED from a passive OPEN, a RST (exact seq) or a new SYN
/// returns the connection to LISTEN: here CLOSED without an error (the app never saw it).
#[test]
fn syn_received_rst_returns_to_listen() {
    let mut t = syn_received();
    assert_eq!(
        t.feed(&seg(RST, 5001 + 4096, 0)),
        vec![],
        "outside the window: dropped"
    );
    assert_eq!(t.state(), State::SynReceived);
    assert_eq!(t.feed(&seg(RST, 5001, 0)), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), vec![Event::Closed]);

    let mut t = syn_received();
    assert_eq!(t.feed(&seg(SYN, 5002, 0)), vec![]);
    assert_eq!(t.state(), State::Closed);
}

/// SYN retransmission (Linux tcp_syn_retries = 6): backoff 1, 2, 4, ... s from rto_initial;
/// after the 6th retry's timeout, TimedOut (127 s in all, like Linux).
#[test]
fn syn_retries_exhausted_times_out() {
    let mut t = syn_sent();
    for at in [1, 3, 7, 15, 31, 63] {
        assert_eq!(t.next(), vec![Out::new(SYN, 1000, 0).opts(mss(1460))]);
        assert_eq!(t.now, T0 + secs(at));
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, T0 + secs(127));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![Event::Error(ConnError::TimedOut), Event::Closed]
    );
}

/// SYN-ACK retransmission (tcp_synack_retries = 5); then the half-open connection is dropped
/// silently (the listener forgets it).
#[test]
fn synack_retries_exhausted_drops() {
    let mut t = syn_received();
    for at in [1, 3, 7, 15, 31] {
        assert_eq!(
            t.next(),
            vec![Out::new(SYN | ACK, 1000, 5001).opts(mss(1460))]
        );
        assert_eq!(t.now, T0 + secs(at));
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, T0 + secs(63));
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), vec![Event::Closed]);
}

/// CLOSE in SYN-RECEIVED: the FIN is queued until ESTABLISHED (RFC 9293 §3.10.4), then sent.
#[test]
fn close_in_syn_received_sends_fin_after_handshake() {
    let mut t = syn_received();
    t.c.shutdown_write(t.now);
    assert_eq!(t.state(), State::SynReceived);
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1001)),
        vec![Out::new(FIN | ACK, 1001, 5001)]
    );
    assert_eq!(t.state(), State::FinWait1);
}

/// CLOSE in SYN-SENT: "delete the TCB", nothing sent.
#[test]
fn close_in_syn_sent_just_closes() {
    let mut t = syn_sent();
    t.c.close(t.now);
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(t.events(), vec![Event::Closed]);
}

fn all_options(ts: u32) -> TcpOptions {
    TcpOptions {
        mss: Some(1400),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some((ts, 0)),
        ..TcpOptions::default()
    }
}

/// The defaults with a 128 KiB receive buffer (Linux's initial tcp_rmem): window scale 2.
fn rmem_128k() -> TcpConfig {
    TcpConfig {
        rmem: 131_072,
        ..TcpConfig::default()
    }
}

/// RFC 7323 §2.2/§3.2, RFC 2018 §2: a passive open answers each option the peer offered
/// (and cfg allows), none it did not. Our shift for rmem 131072 is 2; TSval = ms + offset.
#[test]
fn passive_option_negotiation_table() {
    let on = rmem_128k();
    let none = TcpConfig {
        timestamps: false,
        window_scaling: false,
        sack: false,
        ..rmem_128k()
    };
    let tsval = 1_000_000 + 7; // T0 in ms + offset 7
    let cases = [
        // (cfg, peer options, our SYN-ACK options)
        (
            &on,
            all_options(123),
            TcpOptions {
                mss: Some(1460),
                window_scale: Some(2),
                sack_permitted: true,
                timestamp: Some((tsval, 123)),
                ..TcpOptions::default()
            },
        ),
        (&on, TcpOptions::default(), mss(1460)),
        (&none, all_options(123), mss(1460)),
        (
            &on,
            TcpOptions {
                timestamp: Some((5, 0)),
                ..TcpOptions::default()
            },
            TcpOptions {
                mss: Some(1460),
                timestamp: Some((tsval, 5)),
                ..TcpOptions::default()
            },
        ),
    ];
    for (cfg, peer, want) in cases {
        let syn = TcpRepr {
            options: peer,
            ..seg(SYN, PEER_ISS, 0)
        };
        let c = Connection::accept_syn(T0, &limits(cfg), ends(), &syn, SeqNum(1000), 7);
        let mut t = T::new(c, T0);
        let want = Out::new(SYN | ACK, 1000, 5001).win(65535).opts(want);
        assert_eq!(t.out(), vec![want], "peer {peer:?}");
    }
}

/// After the handshake: windows are scaled (not in the SYN), the MSS is min(peer's, ours),
/// and every segment carries TSval / TSecr (RFC 7323 §3.2).
#[test]
fn negotiated_options_apply_after_handshake() {
    let cfg = rmem_128k();
    let syn = TcpRepr {
        options: all_options(123),
        ..seg(SYN, PEER_ISS, 0)
    };
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.window = 10; // << 7 = 1280 bytes
    third.options.timestamp = Some((124, 1_000_000));
    assert_eq!(t.feed(&third), vec![]);
    let n = t.c.negotiated();
    assert_eq!(
        (n.mss, n.snd_shift, n.rcv_shift, n.sack, n.timestamps),
        (1400, 7, 2, true, true)
    );
    assert_eq!(t.send(&[7u8; 3000]), Ok(3000));
    let out = t.out();
    let ts = TcpOptions {
        timestamp: Some((1_000_000, 124)),
        ..TcpOptions::default()
    };
    assert_eq!(
        out,
        vec![Out::new(ACK, 1001, 5001)
            // The whole buffer less the scaling reserve (receiver.rs: 16 granules of 4).
            .win(((131_072 - 48) >> 2) as u16)
            .payload(&[7u8; 1280])
            .opts(ts)],
        "one segment: the 1280-byte scaled window, under the 1400 MSS"
    );
}

/// Active open with all options offered; the peer accepts window scaling but not
/// timestamps or SACK: only window scaling is used.
#[test]
fn active_option_negotiation() {
    let cfg = rmem_128k();
    let c = Connection::connect(T0, &limits(&cfg), ends(), SeqNum(1000), 0);
    let mut t = T::new(c, T0);
    let offer = TcpOptions {
        mss: Some(1460),
        window_scale: Some(2),
        sack_permitted: true,
        timestamp: Some((1_000_000, 0)),
        ..TcpOptions::default()
    };
    assert_eq!(t.out(), vec![Out::new(SYN, 1000, 0).win(65535).opts(offer)]);
    let mut synack = seg(SYN | ACK, PEER_ISS, 1001);
    synack.options.window_scale = Some(3);
    // 131072 bytes less the scaling reserve (receiver.rs: 16 granules of 4), scaled by 2.
    assert_eq!(t.feed(&synack), vec![ack_out(1001, 5001).win(32756)]);
    let n = t.c.negotiated();
    assert_eq!(
        (n.mss, n.snd_shift, n.rcv_shift, n.sack, n.timestamps),
        (536, 3, 2, false, false),
        "no MSS option: 536 (RFC 9293 §3.7.1)"
    );
}

/// SYN cookie path (RFC 4987): the listener validated the returning ACK and decoded the
/// options; `from_cookie` enters ESTABLISHED at once and takes the ACK's data as the third
/// segment's.
#[test]
fn from_cookie_establishes_and_takes_data() {
    let nego = Negotiated {
        mss: 1000,
        ..Negotiated::default()
    };
    let ack = data(ACK | PSH, 5001, 1001, b"GET /");
    let c = Connection::from_cookie(
        T0,
        &limits(&cfg()),
        ends(),
        &ack,
        nego,
        0,
        &mut BufPool::new(),
    );
    let mut t = T::new(c, T0);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.out(), vec![ack_out(1001, 5006).win(WND - 5)]);
    assert_eq!(t.events(), vec![Event::Connected, Event::Readable]);
    assert_eq!(t.read_all(), b"GET /");
    assert_eq!(t.send(&[1u8; 1500]), Ok(1500));
    let out = t.out();
    assert_eq!(out[0].payload.len(), 1000, "MSS from the cookie");
}

/// The third segment may also carry the peer's FIN: SYN-RECEIVED -> ESTABLISHED ->
/// CLOSE-WAIT within one segment (RFC 9293 §3.10.7.4 eighth check).
#[test]
fn third_segment_with_fin() {
    let mut t = syn_received();
    assert_eq!(
        t.feed(&data(FIN | ACK, 5001, 1001, b"bye")),
        vec![ack_out(1001, 5005).win(WND - 3)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(
        t.events(),
        vec![Event::Connected, Event::Readable, Event::PeerFin]
    );
}

/// RFC 7323 §4.1: with timestamps, the RTT sample comes from TSecr (here 250 ms), also for
/// the ACK that completes an active open's data exchange. The SYN -> SYN-ACK time (10 ms)
/// was the first sample (RFC 6298 §2.2).
#[test]
fn rtt_from_timestamp_echo() {
    let cfg = TcpConfig {
        timestamps: true,
        ..cfg()
    };
    let mut t = syn_sent_with(&cfg);
    let mut synack = seg(SYN | ACK, PEER_ISS, 1001);
    synack.options.timestamp = Some((77, 1_000_000));
    synack.options.mss = Some(1460);
    let ts = TcpOptions {
        timestamp: Some((1_000_000, 77)),
        ..TcpOptions::default()
    };
    t.now += HS_RTT;
    let ts = TcpOptions {
        timestamp: Some((1_000_010, 77)),
        ..ts
    };
    assert_eq!(t.feed(&synack), vec![ack_out(1001, 5001).opts(ts)]);
    assert_eq!(t.c.rtt().unwrap().0, Some(HS_RTT));
    t.send(b"ping").unwrap();
    t.out();
    t.now += ms(250);
    let mut ack = seg(ACK, 5001, 1005);
    ack.options.timestamp = Some((78, 1_000_010));
    assert_eq!(t.feed(&ack), vec![]);
    // §2.3: SRTT = 7/8 * 10 + 1/8 * 250 = 40 ms (only a 250 ms sample gives that).
    assert_eq!(t.c.rtt().unwrap().0, Some(ms(40)));
}

/// A cookie "ACK" that is not a valid third segment (here: no ACK bit) leaves nothing
/// half-open behind.
#[test]
fn from_cookie_invalid_third_segment_closes() {
    let c = Connection::from_cookie(
        T0,
        &limits(&cfg()),
        ends(),
        &seg(PSH, 5001, 1001),
        Negotiated::default(),
        0,
        &mut BufPool::new(),
    );
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.next_deadline(), None);
}

/// RFC 6298 §2.2: an active open whose only SYN was answered takes the SYN -> SYN-ACK time
/// as the first sample (as Linux): 80 ms gives SRTT 80, RTTVAR 40, RTO 80 + 160 = 240 ms.
#[test]
fn active_open_samples_syn_to_syn_ack() {
    let mut t = syn_sent();
    t.now += ms(80);
    let mut synack = seg(SYN | ACK, PEER_ISS, 1001);
    synack.options.mss = Some(1460);
    assert_eq!(t.feed(&synack), vec![ack_out(1001, 5001)]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.rtt(), Some((Some(ms(80)), ms(240))));
    t.send(b"x").unwrap();
    assert_eq!(t.out().len(), 1);
    assert_eq!(t.c.timer(Timer::Retransmit), Some(t.now + ms(240)));
}

/// RFC 6298 §2.2 on the passive side: SYN-ACK -> third ACK is the first sample.
#[test]
fn passive_open_samples_syn_ack_to_ack() {
    let mut t = syn_received();
    t.now += ms(80);
    assert_eq!(t.feed(&seg(ACK, 5001, 1001)), vec![]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.rtt(), Some((Some(ms(80)), ms(240))));
}

/// Karn (RFC 6298 §3): after a retransmitted SYN-ACK the ACK may answer either copy, so no
/// sample; RFC 6298 §5.7: RTO 3 s until one is taken.
#[test]
fn retransmitted_syn_ack_gives_no_sample() {
    let mut t = syn_received();
    assert_eq!(
        t.next(),
        vec![Out::new(SYN | ACK, 1000, 5001).opts(mss(1460))]
    );
    t.now += ms(80);
    assert_eq!(t.feed(&seg(ACK, 5001, 1001)), vec![]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.rtt(), Some((None, secs(3))));
}

/// Karn on the active side: a retransmitted SYN gives no sample, even answered 80 ms after
/// the first copy's timer (RFC 6298 §3, §5.7 fallback to 3 s).
#[test]
fn retransmitted_syn_gives_no_sample() {
    let mut t = syn_sent();
    assert_eq!(t.next(), vec![Out::new(SYN, 1000, 0).opts(mss(1460))]);
    t.now += ms(80);
    assert_eq!(
        t.feed(&seg(SYN | ACK, PEER_ISS, 1001)),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(t.c.rtt(), Some((None, secs(3))));
}

/// A cookie connection sent no SYN-ACK it remembers: no sample, RTO stays rto_initial
/// (RFC 6298 §2.1).
#[test]
fn from_cookie_gives_no_sample() {
    let ack = seg(ACK, 5001, 1001);
    let c = Connection::from_cookie(
        T0,
        &limits(&cfg()),
        ends(),
        &ack,
        Negotiated::default(),
        0,
        &mut BufPool::new(),
    );
    assert_eq!(c.state(), State::Established);
    assert_eq!(c.rtt(), Some((None, secs(1))));
}

/// Simultaneous open: the ACK of ISS+1 may answer our SYN rather than our SYN-ACK, so the
/// time is ambiguous and no sample is taken (Karn, RFC 6298 §3; Linux uses only timestamps
/// here).
#[test]
fn simultaneous_open_gives_no_sample() {
    let mut t = syn_sent();
    t.now += ms(30);
    t.feed(&seg(SYN, PEER_ISS, 0));
    t.now += ms(80);
    assert_eq!(t.feed(&seg(SYN | ACK, PEER_ISS, 1001)), vec![]);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.rtt(), Some((None, secs(1))));
}
