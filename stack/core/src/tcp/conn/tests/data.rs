//! Data transfer basics: bounded buffers with backpressure, in-order delivery, the receive
//! window and window updates, the peer's window, MSS segmentation, timestamps on data.
//! (The receive side's reassembly, SACK and ACK policy: recv.rs.)

use super::*;

/// Sending: segments of at most MSS, PSH on the last, ACK carries RCV.NXT and our window.
#[test]
fn send_segments_by_mss() {
    let mut t = established();
    assert_eq!(t.send(&[9u8; 3000]), Ok(3000));
    assert_eq!(
        t.out(),
        vec![
            Out::new(ACK, 1001, 5001).payload(&[9u8; 1460]),
            Out::new(ACK, 2461, 5001).payload(&[9u8; 1460]),
            Out::new(ACK | PSH, 3921, 5001).payload(&[9u8; 80]),
        ]
    );
    assert_eq!(t.out(), vec![], "nothing more due");
}

/// Backpressure: the send buffer holds cfg.wmem bytes (sent but unacknowledged included);
/// `Full` when none fit; `Writable` once an ACK frees space.
#[test]
fn send_buffer_is_bounded() {
    let mut t = established();
    assert_eq!(t.send(&[1u8; 5000]), Ok(4096));
    assert_eq!(t.send(b"x"), Err(SendError::Full));
    assert_eq!(t.c.send_capacity(), 0);
    let out = t.out();
    assert_eq!(out.iter().map(|o| o.payload.len()).sum::<usize>(), 4096);
    assert_eq!(t.events(), vec![]);
    assert_eq!(t.feed(&seg(ACK, 5001, 1001 + 1460)), vec![]);
    assert_eq!(t.events(), vec![Event::Writable]);
    assert_eq!(t.c.send_capacity(), 1460);
    assert_eq!(t.send(&[]), Ok(0));
}

/// The peer's window limits what is in flight; a window update releases more. A usable
/// window below both one MSS and half the largest window the peer offered is not used at
/// once (sender SWS avoidance, RFC 9293 §3.8.6.2.1) but when the persist timer's override
/// fires.
#[test]
fn peer_window_limits_sending() {
    let mut t = established();
    let mut small = seg(ACK, 5001, 1001);
    small.window = 100;
    t.feed(&small);
    t.send(&[3u8; 300]).unwrap();
    assert_eq!(t.out(), vec![], "100 < min(MSS, 4096 / 2)");
    // The persist timer runs on the RTO: 200 ms after the handshake's sample.
    assert_eq!(t.c.timer(Timer::Persist), Some(EST + ms(200)));
    assert_eq!(
        t.next(),
        vec![Out::new(ACK, 1001, 5001).payload(&[3u8; 100])]
    );
    let mut more = seg(ACK, 5001, 1101);
    more.window = 2100;
    assert_eq!(
        t.feed(&more),
        vec![Out::new(ACK | PSH, 1101, 5001).payload(&[3u8; 200])]
    );
    // An old segment (SND.WL1 > SEG.SEQ rule) must not change the window. Same seq, older
    // ack: WL2 > SEG.ACK, no update.
    let mut stale = seg(ACK, 5001, 1101);
    stale.window = 4000;
    t.send(&[4u8; 2000]).unwrap();
    assert_eq!(
        t.feed(&stale),
        vec![Out::new(ACK, 1301, 5001).payload(&[4u8; 1460])],
        "window still 2100 - 200"
    );
}

/// In-order delivery: the first segments are ACKed at once (quick-ACK mode, delack.rs), the
/// window shrinks by what is buffered, duplicates are not delivered twice, a partial overlap
/// is trimmed.
#[test]
fn receive_in_order_and_trim() {
    let mut t = established();
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"hello")),
        vec![ack_out(1001, 5006).win(WND - 5)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"hello")),
        vec![ack_out(1001, 5006).win(WND - 5)],
        "duplicate: ACK only"
    );
    assert_eq!(
        t.feed(&data(ACK, 5004, 1001, b"lo world")),
        vec![ack_out(1001, 5012).win(WND - 11)]
    );
    assert_eq!(t.events(), vec![Event::Readable]);
    assert_eq!(t.read_all(), b"hello world");
}

/// Out-of-order text is held (not readable yet) and answered with an immediate ACK for
/// RCV.NXT (what a duplicate ACK needs). More in recv.rs.
#[test]
fn out_of_order_held_with_ack() {
    let mut t = established();
    assert_eq!(
        t.feed(&data(ACK, 5010, 1001, b"later")),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(t.c.recv_available(), 0);
    assert_eq!(t.events(), vec![]);
}

/// The receive buffer (cfg.rmem) bounds the window; reading reopens it and owes the peer a
/// window update once it grew by min(rmem/2, MSS) (RFC 9293 §3.8.6.2.2).
#[test]
fn receive_window_and_update() {
    let mut t = established();
    static BIG: [u8; 4096] = [5u8; 4096];
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &BIG)),
        vec![ack_out(1001, 5001 + 4096).win(0)]
    );
    // A zero window: only a segment at exactly RCV.NXT is acceptable; its text is dropped.
    assert_eq!(
        t.feed(&data(ACK, 5001 + 4096, 1001, b"x")),
        vec![ack_out(1001, 9097).win(0)]
    );
    let mut buf = [0u8; 1000];
    assert_eq!(t.recv(&mut buf), 1000);
    assert_eq!(t.out(), vec![], "1000 < 1460: no update yet");
    assert_eq!(t.recv(&mut buf), 1000);
    assert_eq!(t.out(), vec![ack_out(1001, 9097).win(2000)]);
}

/// A FIN after data: the FIN is processed only once the text before it is in.
#[test]
fn fin_after_out_of_order_gap_is_not_taken() {
    let mut t = established();
    assert_eq!(
        t.feed(&data(FIN | ACK, 5003, 1001, b"yz")),
        vec![ack_out(1001, 5001)]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(
        t.feed(&data(FIN | ACK, 5001, 1001, b"wxyz")),
        vec![ack_out(1001, 5006).win(WND - 4)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.events(), vec![Event::Readable, Event::PeerFin]);
}

/// RFC 7323 §4.3 and §5.3: TS.Recent is updated from in-order segments and echoed; a
/// segment with an older TSval (PAWS) is dropped with an ACK.
#[test]
fn timestamps_echo_and_paws() {
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
    t.now += ms(10);
    let mut d = data(ACK, 5001, 1001, b"ab");
    d.options.timestamp = Some((150, 1_000_000));
    let ts = |val, ecr| TcpOptions {
        timestamp: Some((val, ecr)),
        ..TcpOptions::default()
    };
    assert_eq!(
        t.feed(&d),
        vec![ack_out(1001, 5003).win(WND - 2).opts(ts(1_000_010, 150))]
    );
    let mut old = data(ACK, 5003, 1001, b"cd");
    old.options.timestamp = Some((149, 1_000_000));
    assert_eq!(
        t.feed(&old),
        vec![ack_out(1001, 5003).win(WND - 2).opts(ts(1_000_010, 150))],
        "PAWS: dropped, ACKed"
    );
    assert_eq!(t.c.recv_available(), 2);
    // A RST is exempt from PAWS (RFC 7323 §5.3 R1: "If the RST bit is not set").
    let mut rst = seg(RST, 5003, 0);
    rst.options.timestamp = Some((1, 0));
    assert_eq!(t.feed(&rst), vec![]);
    assert_eq!(t.state(), State::Closed);
}

/// Send fails cleanly in states without a send side.
#[test]
fn send_errors_by_state() {
    assert_eq!(syn_sent().send(b"x"), Err(SendError::NotConnected));
    assert_eq!(syn_received().send(b"x"), Err(SendError::NotConnected));
    assert_eq!(fin_wait_2().send(b"x"), Err(SendError::WriteClosed));
    assert_eq!(time_wait().send(b"x"), Err(SendError::WriteClosed));
    let mut t = established();
    t.c.abort(T0);
    assert_eq!(
        t.send(b"x"),
        Err(SendError::WriteClosed),
        "abort closed the write side first"
    );
}
