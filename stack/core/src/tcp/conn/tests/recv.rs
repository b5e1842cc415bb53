//! The receive side: reassembly, SACK and D-SACK generation, the ACK policy
//! (delayed ACK, quick ACK, immediate ACKs), the advertised window (SWS avoidance, never
//! shrinking), timestamps with delayed ACKs, URG. Exact reply segments throughout.

use super::*;

/// Test config with SACK on (no timestamps, so blocks are easy to read: up to 4 fit).
fn cfg_sack() -> TcpConfig {
    TcpConfig {
        sack: true,
        ..cfg()
    }
}

/// ESTABLISHED with SACK negotiated. RCV.NXT 5001, window 4096.
fn established_sack() -> T {
    let mut syn = peer_syn();
    syn.options.sack_permitted = true;
    let mut t = syn_received_with(&cfg_sack(), &syn);
    assert_eq!(t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 1)), vec![]);
    assert!(t.c.negotiated().sack);
    t.events();
    t
}

/// Options carrying these SACK blocks.
fn sacks(blocks: &[(u32, u32)]) -> TcpOptions {
    let mut o = TcpOptions::default();
    for (i, &(l, r)) in blocks.iter().enumerate() {
        o.sack_blocks[i] = (SeqNum(l), SeqNum(r));
    }
    o.sack_count = blocks.len() as u8;
    o
}

/// Use up the quick-ACK budget of the first data (2 segments at this buffer size) so the
/// delayed-ACK rules show. RCV.NXT 5003 after, window 4094, nothing owed.
fn past_quick_acks(t: &mut T) {
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"a")),
        vec![ack_out(1001, 5002).win(WND - 1)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5002, 1001, b"b")),
        vec![ack_out(1001, 5003).win(WND - 2)]
    );
    t.events();
}

/// RFC 5681 §4.2 / RFC 2018 §4: an out-of-order segment is held and ACKed at once with a
/// SACK block [left, right) for it, the most recent block first; the segment filling the
/// hole is ACKed at once with the cumulative ACK, and the data reads in order.
#[test]
fn out_of_order_held_and_sacked_then_hole_filled() {
    let mut t = established_sack();
    assert_eq!(
        t.feed(&data(ACK, 5011, 1001, b"later")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5011, 5016)]))]
    );
    assert_eq!(t.c.recv_available(), 0);
    assert_eq!(t.events(), vec![], "nothing readable yet");
    assert_eq!(
        t.feed(&data(ACK, 5021, 1001, b"zz")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5021, 5023), (5011, 5016)]))]
    );
    // Extending a held range makes it the most recent block.
    assert_eq!(
        t.feed(&data(ACK, 5016, 1001, b"+")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5011, 5017), (5021, 5023)]))]
    );
    // The first hole filled: cumulative ACK past the held range, one block left. The right
    // edge (5001 + 4096) has not moved: window 4096 - 16.
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"0123456789")),
        vec![ack_out(1001, 5017)
            .win(WND - 16)
            .opts(sacks(&[(5021, 5023)]))]
    );
    assert_eq!(t.events(), vec![Event::Readable]);
    assert_eq!(t.read_all(), b"0123456789later+");
    // The last hole: ACK at once (RFC 5681 §4.2), no blocks left.
    assert_eq!(
        t.feed(&data(ACK, 5017, 1001, b"abcd")),
        vec![ack_out(1001, 5023).win(WND - 22)]
    );
    assert_eq!(t.read_all(), b"abcdzz");
}

/// Without SACK the same reassembly happens; ACKs carry no blocks.
#[test]
fn reassembly_without_sack() {
    let mut t = established();
    assert_eq!(
        t.feed(&data(ACK, 5004, 1001, b"def")),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"abc")),
        vec![ack_out(1001, 5007).win(WND - 6)]
    );
    assert_eq!(t.read_all(), b"abcdef");
}

/// Overlapping retransmissions: bytes already held are never overwritten or delivered
/// twice (RFC 9293 §3.10.7.4 seventh step; the first copy wins).
#[test]
fn overlaps_are_trimmed_never_duplicated() {
    let mut t = established();
    t.feed(&data(ACK, 5003, 1001, b"CD"));
    t.feed(&data(ACK, 5007, 1001, b"GH"));
    // Covers both held ranges and the holes around them, with different bytes where held.
    t.feed(&data(ACK, 5002, 1001, b"bxxefxxi"));
    t.feed(&data(ACK, 5001, 1001, b"a"));
    assert_eq!(t.read_all(), b"abCDefGHi");
    assert_eq!(t.c.recv_available(), 0);
}

/// Delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2): after the quick ACKs, one segment is
/// ACKed when the 40 ms timer fires; the second full-sized segment is ACKed at once.
#[test]
fn delayed_ack_timing() {
    let mut t = established();
    past_quick_acks(&mut t);
    assert_eq!(t.feed(&data(ACK, 5003, 1001, b"c")), vec![], "delayed");
    assert_eq!(t.c.timer(Timer::DelayedAck), Some(EST + ms(40)));
    t.now += ms(39);
    t.c.on_timeout(t.now);
    assert_eq!(t.out(), vec![]);
    assert_eq!(t.next(), vec![ack_out(1001, 5004).win(WND - 3)]);
    assert_eq!(t.now, EST + ms(40));
    assert_eq!(t.c.timer(Timer::DelayedAck), None);
    assert_eq!(t.read_all(), b"abc");
    assert_eq!(t.out(), vec![], "3 bytes read: no window update (SWS)");

    static FULL: [u8; 1460] = [7u8; 1460];
    assert_eq!(t.feed(&data(ACK, 5004, 1001, &FULL)), vec![]);
    assert_eq!(t.c.timer(Timer::DelayedAck), Some(EST + ms(80)));
    // Two full-sized segments unacknowledged: ACK now. The window keeps its right edge
    // (9097): 9097 - 7924.
    assert_eq!(
        t.feed(&data(ACK, 6464, 1001, &FULL)),
        vec![ack_out(1001, 7924).win(1173)]
    );
    assert_eq!(t.c.timer(Timer::DelayedAck), None);
}

/// The delay counts from the first unacknowledged segment: later segments do not push the
/// deadline out. Data we send carries the ACK and cancels the timer.
#[test]
fn delayed_ack_is_bounded_and_piggybacked() {
    let mut t = established();
    past_quick_acks(&mut t);
    t.feed(&data(ACK, 5003, 1001, b"c"));
    t.now += ms(30);
    assert_eq!(t.feed(&data(ACK, 5004, 1001, b"d")), vec![]);
    assert_eq!(t.c.timer(Timer::DelayedAck), Some(EST + ms(40)));
    t.send(b"reply").unwrap();
    assert_eq!(
        t.out(),
        vec![Out::new(ACK | PSH, 1001, 5005)
            .win(WND - 4)
            .payload(b"reply")]
    );
    assert_eq!(t.c.timer(Timer::DelayedAck), None);
}

/// Quick-ACK mode again after a duplicate (Linux: our ACKs are being lost).
#[test]
fn duplicate_reenters_quick_ack_mode() {
    let mut t = established();
    past_quick_acks(&mut t);
    assert_eq!(
        t.feed(&data(ACK, 5002, 1001, b"b")),
        vec![ack_out(1001, 5003).win(WND - 2)],
        "a duplicate is ACKed at once"
    );
    assert_eq!(
        t.feed(&data(ACK, 5003, 1001, b"c")),
        vec![ack_out(1001, 5004).win(WND - 3)],
        "quick ACK"
    );
}

/// RFC 2883 §4: a duplicate segment is reported in the first SACK block of the next ACK,
/// once; a partial duplicate reports the duplicate part.
#[test]
fn dsack_for_duplicates() {
    let mut t = established_sack();
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"hello")),
        vec![ack_out(1001, 5006).win(WND - 5)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"hello")),
        vec![ack_out(1001, 5006)
            .win(WND - 5)
            .opts(sacks(&[(5001, 5006)]))]
    );
    assert_eq!(
        t.feed(&data(ACK, 5004, 1001, b"lo wo")),
        vec![ack_out(1001, 5009)
            .win(WND - 8)
            .opts(sacks(&[(5004, 5006)]))],
        "partial duplicate: the duplicate part"
    );
    assert_eq!(
        t.feed(&data(ACK, 5009, 1001, b"r")),
        vec![ack_out(1001, 5010).win(WND - 9)],
        "reported once"
    );
}

/// RFC 2883 §4: a duplicate of held out-of-order data: the D-SACK block, then the held
/// block containing it, then the other blocks.
#[test]
fn dsack_for_duplicate_of_held_data() {
    let mut t = established_sack();
    t.feed(&data(ACK, 5011, 1001, b"abcdef"));
    t.feed(&data(ACK, 5031, 1001, b"xy"));
    assert_eq!(
        t.feed(&data(ACK, 5012, 1001, b"bc")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5012, 5014), (5011, 5017), (5031, 5033)]))]
    );
}

/// With timestamps, three SACK blocks fit (RFC 2018 §3); the most recent come first.
#[test]
fn sack_blocks_with_timestamps_keep_the_most_recent() {
    let cfg = TcpConfig {
        timestamps: true,
        ..cfg_sack()
    };
    let mut syn = peer_syn();
    syn.options.sack_permitted = true;
    syn.options.timestamp = Some((100, 0));
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.options.timestamp = Some((101, 1_000_000));
    t.feed(&third);
    let mut last = vec![];
    for (i, at) in [5101u32, 5201, 5301, 5401].into_iter().enumerate() {
        let mut d = data(ACK, at, 1001, b"x");
        d.options.timestamp = Some((102 + i as u32, 1_000_000));
        last = t.feed(&d);
    }
    let mut o = sacks(&[(5401, 5402), (5301, 5302), (5201, 5202), (5101, 5102)]);
    // TS.Recent stays 101: out-of-order segments do not update it (RFC 7323 §4.3).
    o.timestamp = Some((1_000_000, 101));
    assert_eq!(last, vec![ack_out(1001, 5001).opts(o)]);
    // The wire layer emits the first three of the four (40 option bytes).
    let mut r = TcpRepr {
        options: o,
        ..seg(ACK, 1001, 5001)
    };
    r.src_port = LOCAL_PORT;
    assert_eq!(r.header_len(), 20 + 12 + 4 + 3 * 8);
}

/// RFC 7323 §4.3: with a delayed ACK, TSecr echoes the earliest unacknowledged segment's
/// TSval (Last.ACK.sent rule); a segment filling a hole updates TS.Recent.
#[test]
fn timestamp_echo_with_delayed_ack_and_holes() {
    let cfg = TcpConfig {
        timestamps: true,
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.timestamp = Some((100, 0));
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.options.timestamp = Some((101, 1_000_000));
    t.feed(&third);
    let ts = |val, ecr| TcpOptions {
        timestamp: Some((val, ecr)),
        ..TcpOptions::default()
    };
    let feed = |t: &mut T, seq: u32, p: &'static [u8], val: u32| {
        let mut d = data(ACK, seq, 1001, p);
        d.options.timestamp = Some((val, 1_000_000));
        t.feed(&d)
    };
    // Quick ACKs (2 at this buffer size) echo each segment.
    assert_eq!(
        feed(&mut t, 5001, b"a", 110),
        vec![ack_out(1001, 5002).win(WND - 1).opts(ts(1_000_000, 110))]
    );
    feed(&mut t, 5002, b"b", 111);
    // Two segments wait for the delayed ACK: the echo is the first one's.
    assert_eq!(feed(&mut t, 5003, b"c", 120), vec![]);
    assert_eq!(feed(&mut t, 5004, b"d", 121), vec![]);
    assert_eq!(
        t.next(),
        vec![ack_out(1001, 5005).win(WND - 4).opts(ts(1_000_040, 120))]
    );
    // Out of order: no update (SEG.SEQ > Last.ACK.sent); the hole filler updates.
    assert_eq!(
        feed(&mut t, 5006, b"f", 130),
        vec![ack_out(1001, 5005).win(WND - 4).opts(ts(1_000_040, 120))]
    );
    assert_eq!(
        feed(&mut t, 5005, b"e", 131),
        vec![ack_out(1001, 5007).win(WND - 6).opts(ts(1_000_040, 131))]
    );
}

/// Receiver SWS avoidance (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3): a closed window is not
/// reopened by less than min(RCV.BUFF / 2, MSS), not even on ACKs sent for other reasons;
/// reading enough sends the window update.
#[test]
fn no_tiny_window_advertisements() {
    let mut t = established();
    static BIG: [u8; 4096] = [5u8; 4096];
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &BIG)),
        vec![ack_out(1001, 9097).win(0)]
    );
    let mut buf = [0u8; 1000];
    assert_eq!(t.recv(&mut buf), 1000);
    assert_eq!(t.out(), vec![]);
    // A duplicate is answered, still with window 0 although 1000 bytes are free.
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"x")),
        vec![ack_out(1001, 9097).win(0)]
    );
    // A zero-window probe likewise.
    assert_eq!(
        t.feed(&data(ACK, 9097, 1001, b"p")),
        vec![ack_out(1001, 9097).win(0)]
    );
    assert_eq!(t.recv(&mut buf[..460]), 460);
    assert_eq!(t.out(), vec![ack_out(1001, 9097).win(1460)], "one MSS free");
}

/// A window that is open is not updated for every read: the update waits until the window
/// would at least double (Linux tcp_cleanup_rbuf); ACKs carry the grown window anyway.
#[test]
fn window_update_only_when_worth_it() {
    let mut t = established();
    static HALF: [u8; 2048] = [1u8; 2048];
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &HALF)),
        vec![ack_out(1001, 7049).win(2048)]
    );
    let mut buf = [0u8; 2048];
    assert_eq!(t.recv(&mut buf[..1500]), 1500);
    assert_eq!(t.out(), vec![], "3548 < 2 * 2048");
    assert_eq!(t.recv(&mut buf[..548]), 548);
    assert_eq!(t.out(), vec![ack_out(1001, 7049)], "4096 >= 2 * 2048");
}

/// The reassembly bound: data beyond the advertised window is trimmed or dropped (and
/// ACKed); held data never exceeds the window; 32 holes at most.
#[test]
fn reassembly_is_bounded_by_the_window() {
    let mut t = established();
    static TAIL: [u8; 200] = [9u8; 200];
    // Straddles the right edge 9097: 96 bytes held, the rest trimmed; ACKed at once.
    assert_eq!(
        t.feed(&data(ACK, 9001, 1001, &TAIL)),
        vec![ack_out(1001, 5001)]
    );
    // Entirely beyond the window: not acceptable (RFC 9293 §3.10.7.4 first check), ACKed.
    assert_eq!(
        t.feed(&data(ACK, 9097, 1001, b"no")),
        vec![ack_out(1001, 5001)]
    );
    static HEAD: [u8; 4000] = [8u8; 4000];
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &HEAD)),
        vec![ack_out(1001, 9097).win(0)]
    );
    let got = t.read_all();
    assert_eq!(got.len(), 4096);
    assert!(got[..4000].iter().all(|&b| b == 8) && got[4000..].iter().all(|&b| b == 9));
}

/// At most 32 held ranges (reassembly::MAX_RANGES): a 33rd disjoint segment is dropped
/// (still ACKed); segments touching held data are still taken.
#[test]
fn at_most_32_holes() {
    let mut t = established();
    static ONE: [u8; 1] = [1];
    for i in 0..33u32 {
        assert_eq!(
            t.feed(&data(ACK, 5002 + 2 * i, 1001, &ONE)),
            vec![ack_out(1001, 5001)]
        );
    }
    // Extends the last held range (5064): taken.
    t.feed(&data(ACK, 5065, 1001, &ONE));
    static FILL: [u8; 63] = [0; 63];
    // Fills [5001, 5064): everything held becomes in order up to 5066; 5066 was dropped.
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &FILL)),
        vec![ack_out(1001, 5066).win(WND - 65)]
    );
}

/// A FIN beyond a hole is remembered and taken when the hole is filled (RFC 9293
/// §3.10.7.4 eighth step: only once RCV.NXT reaches it).
#[test]
fn fin_beyond_a_hole() {
    let mut t = established_sack();
    assert_eq!(
        t.feed(&data(FIN | ACK, 5004, 1001, b"end")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5004, 5007)]))]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"the")),
        vec![ack_out(1001, 5008).win(WND - 6)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.events(), vec![Event::Readable, Event::PeerFin]);
    assert_eq!(t.read_all(), b"theend");
}

/// A bare FIN beyond a hole is ACKed at once (a duplicate ACK for the sender).
#[test]
fn bare_fin_beyond_a_hole() {
    let mut t = established();
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5005, 1001)),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"data")),
        vec![ack_out(1001, 5006).win(WND - 4)]
    );
    assert_eq!(t.state(), State::CloseWait);
}

/// URG is ignored safely: urgent bytes are delivered in line whatever the pointer says
/// (RFC 6093 §6), including pointers beyond the segment.
#[test]
fn urgent_pointer_ignored() {
    let mut t = established();
    for (i, urgent) in [0u16, 1, 3, 0xffff].into_iter().enumerate() {
        let mut d = data(ACK | TcpFlags::URG, 5001 + i as u32 * 2, 1001, b"u!");
        d.urgent = urgent;
        t.feed(&d);
    }
    assert_eq!(t.read_all(), b"u!u!u!u!");
    assert_eq!(t.state(), State::Established);
}

/// RFC 7323 §2.4: with window scaling the advertised right edge never moves left while the
/// buffer has room, even when RCV.NXT moves by amounts that are not multiples of the scale.
#[test]
fn scaled_window_keeps_its_right_edge() {
    let cfg = TcpConfig {
        window_scaling: true,
        rmem: 1 << 18, // shift 3: granularity 8
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.window_scale = Some(0);
    let mut t = syn_received_with(&cfg, &syn);
    t.feed(&seg(ACK, 5001, 1001));
    assert_eq!(t.c.negotiated().rcv_shift, 3);
    static D: [u8; 1000] = [3u8; 1000];
    let mut seq = 5001u32;
    let mut edge = 0u32;
    for len in [3usize, 5, 7, 1000, 1, 999, 13] {
        for o in t.feed(&data(ACK, seq, 1001, &D[..len])) {
            let e = o.ack.wrapping_add((o.window as u32) << 3);
            assert!(
                e.wrapping_sub(edge) as i32 >= 0 || edge == 0,
                "edge moved left: {o:?} {e} < {edge}"
            );
            edge = e;
        }
        seq += len as u32;
        if let Some(at) = t.c.next_deadline() {
            t.now = at;
            t.c.on_timeout(at);
            for o in t.out() {
                let e = o.ack.wrapping_add((o.window as u32) << 3);
                assert!(e.wrapping_sub(edge) as i32 >= 0, "edge moved left");
                edge = e;
            }
        }
    }
    assert!(edge != 0);
}

/// After the peer's FIN (CLOSE-WAIT) a retransmission of its last segment still gets a
/// D-SACK for the duplicate text (RFC 2883 §4; our ACK was lost).
#[test]
fn dsack_after_fin() {
    let mut t = established_sack();
    assert_eq!(
        t.feed(&data(FIN | ACK, 5001, 1001, b"bye")),
        vec![ack_out(1001, 5005).win(WND - 3)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(
        t.feed(&data(FIN | ACK, 5001, 1001, b"bye")),
        vec![ack_out(1001, 5005)
            .win(WND - 3)
            .opts(sacks(&[(5001, 5004)]))]
    );
}
