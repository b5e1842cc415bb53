//! Conformance details against Linux found in review: the endpoint's part.
//! Each test feeds one crafted segment and asserts the exact reply and what is kept.

use super::*;

/// The client side of an active close holds TIME-WAIT on an ephemeral port
/// with no listener. A SYN from the old peer that RFC 6191 would let reopen the tuple
/// (sequence number beyond RCV.NXT) keeps TIME-WAIT and is answered with the TIME-WAIT ACK
/// <SEQ=SND.NXT><ACK=RCV.NXT> (Linux tcp_v4_rcv: TCP_TW_SYN, no listener -> TCP_TW_ACK),
/// not with a RST from CLOSED.
#[test]
fn syn_to_client_time_wait_keeps_it_and_gets_ack() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let fin = active_close(&mut p, ca, cb); // a (the client) is in TIME-WAIT
    assert_eq!(p.a.time_wait_count(), 1);
    let f = fin.repr(); // b's FIN: 80 -> client port
    let (snd_nxt, rcv_nxt) = (f.ack, f.seq + 1u32);
    let syn = tcp(80, f.dst_port, (rcv_nxt + 1000u32).0, 0, TcpFlags::SYN);
    p.a.on_segment(p.now, B, A, &syn);
    let out = flush(&mut p.a, p.now);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!((r.flags, r.seq, r.ack), (TcpFlags::ACK, snd_nxt, rcv_nxt));
    assert_eq!((r.src_port, r.dst_port), (f.dst_port, 80));
    assert_eq!(p.a.time_wait_count(), 1, "TIME-WAIT kept");
    let s = p.a.stats();
    assert_eq!((s.tw_acks, s.tw_reopened, s.rst_closed), (1, 0, 0));
}

/// The same for a TIME-WAIT connection the application still holds.
#[test]
fn syn_to_unclosed_client_time_wait_gets_ack() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    p.a.shutdown_write(p.now, ca).unwrap();
    p.run();
    p.b.close(p.now, cb).unwrap();
    p.run();
    assert_eq!(p.a.state(ca), Some(State::TimeWait));
    let port = p.log[0].1.repr().src_port;
    let syn = tcp(80, port, 0x7000_0000, 0, TcpFlags::SYN);
    p.a.on_segment(p.now, B, A, &syn);
    let out = flush(&mut p.a, p.now);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags(), TcpFlags::ACK);
    assert_eq!(p.a.state(ca), Some(State::TimeWait), "TIME-WAIT kept");
    assert_eq!((p.a.stats().tw_reopened, p.a.stats().rst_closed), (0, 0));
}

/// RFC 1122 §4.2.2.13: a SYN reopening a TIME-WAIT 4-tuple on sequence
/// number alone (no timestamps) gets ISS = old SND.NXT + 65537, above anything the old
/// connection sent (Linux tcp_timewait_state_process: tw_snd_nxt + 65535 + 2).
#[test]
fn reopen_from_time_wait_iss_above_old_snd_nxt() {
    let no_ts = TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(no_ts.clone(), no_ts);
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let mut q = Pair {
        a: p.b,
        b: p.a,
        now: p.now,
        log: Vec::new(),
    };
    let fin = active_close(&mut q, cb, ca); // b (server side) in TIME-WAIT
    let mut b = q.a;
    let f = fin.repr(); // the client's FIN: client port -> 80
    let (snd_nxt, rcv_nxt) = (f.ack, f.seq + 1u32);
    let mut syn = tcp(f.src_port, 80, (rcv_nxt + 1u32).0, 0, TcpFlags::SYN);
    syn.options.mss = Some(1460);
    b.on_segment(q.now, A, B, &syn);
    let out = flush(&mut b, q.now);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!(r.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((r.seq, r.ack), (snd_nxt + 65_537u32, rcv_nxt + 2u32));
    assert_eq!((b.stats().tw_reopened, b.time_wait_count()), (1, 0));
}

/// Sources Linux drops as martians on a non-loopback device
/// (ip_route_input_slow: zeronet, loopback without route_localnet; fib_validate_source: a
/// local source without accept_local) get no reply, not even a RST from CLOSED, and are
/// counted; multicast and limited broadcast stay `malformed_in`; class E (240/4) is unicast
/// for Linux and answered like any source.
#[test]
fn martian_sources_are_not_answered() {
    let now = T0;
    let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
    b.listen(B, 80, 16).unwrap();
    let syn = tcp(1234, 80, 1, 0, TcpFlags::SYN);
    let ack = tcp(1234, 81, 1, 1, TcpFlags::ACK);
    // (source, answered?, martian_src_in after, malformed_in after)
    let cases = [
        (Ipv4Addr::new(127, 0, 0, 1), false, 1, 0),
        (Ipv4Addr::new(127, 255, 0, 9), false, 2, 0),
        (Ipv4Addr::new(0, 1, 2, 3), false, 3, 0),
        (B, false, 4, 0),
        (Ipv4Addr::new(224, 0, 0, 1), false, 4, 1),
        (Ipv4Addr::new(239, 1, 1, 1), false, 4, 2),
        (Ipv4Addr::BROADCAST, false, 4, 3),
        (Ipv4Addr::new(240, 0, 0, 1), true, 4, 3),
        (A, true, 4, 3),
    ];
    for (src, answered, martian, malformed) in cases {
        for seg in [&syn, &ack] {
            b.on_segment(now, src, B, seg);
            let out = flush(&mut b, now);
            assert_eq!(!out.is_empty(), answered, "{src} {:?}", seg.flags);
        }
        let s = b.stats();
        assert_eq!(
            (s.martian_src_in, s.malformed_in),
            (2 * martian, 2 * malformed),
            "{src}"
        );
    }
}

/// Linux tcp_timewait_state_process -> tcp_timewait_check_oow_rate_limit:
/// a TIME-WAIT record answers out-of-window bare ACKs (and SYNs that may not reopen) at most
/// once per `tcp_invalid_ratelimit` (500 ms), counting the others (TCPACKSkippedTimeWait); a
/// retransmitted FIN is always answered.
#[test]
fn time_wait_oow_acks_rate_limited() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let fin = active_close(&mut p, ca, cb); // a in TIME-WAIT
    let f = fin.repr();
    let oow = tcp(80, f.dst_port, (f.seq + 5000u32).0, f.ack.0, TcpFlags::ACK);
    let t0 = p.now;
    // (ms after t0, segment, answered?)
    let fin_again = fin.repr();
    let cases: [(u64, &TcpRepr<'_>, bool); 6] = [
        (0, &oow, true),
        (100, &oow, false),
        (200, &fin_again, true),
        (499, &oow, false),
        (500, &oow, true),
        (600, &oow, false),
    ];
    for (at, seg, answered) in cases {
        let now = t0 + Duration::from_millis(at);
        p.a.on_segment(now, B, A, seg);
        let out = flush(&mut p.a, now);
        assert_eq!(out.len(), answered as usize, "at {at} ms");
        if answered {
            assert_eq!(out[0].flags(), TcpFlags::ACK);
        }
    }
    let s = p.a.stats();
    assert_eq!((s.tw_acks, s.tw_acks_skipped), (3, 3));
    assert_eq!(p.a.time_wait_count(), 1);
}

/// Flag combinations at LISTEN and CLOSED (RFC 9293 §3.10.7.1/2 against
/// Linux tcp_v4_rcv / tcp_rcv_state_process): LISTEN discards SYN+FIN and SYN+RST (Linux
/// `if (th->fin) goto discard`; RST first), RSTs any ACK-bearing non-RST, answers a plain SYN;
/// CLOSED RSTs everything but a RST. Replies: (flags, seq, ack).
#[test]
fn flag_combinations_at_listen_and_closed() {
    use TcpFlags as F;
    let none = TcpFlags(0);
    let rst_ack = F::RST | F::ACK;
    // (port: 80 listens, 81 does not; flags; reply; bad_flags_in after)
    #[allow(clippy::type_complexity)]
    let rows: [(u16, TcpFlags, Option<(TcpFlags, u32, u32)>, u64); 20] = [
        (80, F::SYN, Some((F::SYN | F::ACK, 0, 101)), 0),
        (80, F::SYN | F::FIN, None, 1),
        (80, F::SYN | F::RST, None, 0),
        (80, F::SYN | F::FIN | F::PSH | F::URG, None, 1),
        (80, F::SYN | F::ACK, Some((F::RST, 7, 0)), 0),
        (80, F::SYN | F::FIN | F::ACK, Some((F::RST, 7, 0)), 0),
        (80, F::ACK, Some((F::RST, 7, 0)), 0),
        (80, F::FIN | F::ACK, Some((F::RST, 7, 0)), 0),
        (80, F::RST, None, 0),
        (80, F::RST | F::ACK, None, 0),
        (80, F::FIN, None, 0),
        (80, none, None, 0),
        (80, F::PSH | F::URG | F::FIN, None, 0),
        (81, F::SYN, Some((rst_ack, 0, 101)), 0),
        (81, F::SYN | F::FIN, Some((rst_ack, 0, 102)), 0),
        (81, F::ACK, Some((F::RST, 7, 0)), 0),
        (81, F::FIN, Some((rst_ack, 0, 101)), 0),
        (81, none, Some((rst_ack, 0, 100)), 0),
        (81, F::RST, None, 0),
        (81, F::RST | F::ACK, None, 0),
    ];
    for (port, flags, want, bad) in rows {
        let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
        b.listen(B, 80, 16).unwrap();
        b.on_segment(T0, A, B, &tcp(1234, port, 100, 7, flags));
        let out = flush(&mut b, T0);
        let got = out.first().map(|f| {
            let r = f.repr();
            let seq = if r.flags.syn() { 0 } else { r.seq.0 };
            (r.flags, seq, r.ack.0)
        });
        assert_eq!(got, want, "port {port} {flags:?}");
        assert!(out.len() <= 1);
        assert_eq!(b.stats().bad_flags_in, bad, "port {port} {flags:?}");
        let opened = want.is_some_and(|(f, _, _)| f.syn());
        assert_eq!(b.state_counts().syn_received, opened as usize, "{flags:?}");
    }
}

/// Linux `__tcp_close` -> `tcp_check_oom(sk, 0)` -> `tcp_too_many_orphans`: a close that would
/// make more than `tcp_max_orphans` orphans resets the connection instead of sending its FIN:
/// RST|ACK <SEQ=SND.NXT><ACK=RCV.NXT>, CLOSED, counted `aborted_on_memory`
/// (`TCPAbortOnMemory`). The orphans already held keep their FIN-WAIT-1; once one finishes a
/// close is an orphan again.
#[test]
fn too_many_orphans_reset_at_close() {
    let cfg = TcpConfig {
        max_orphans: 2,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(cfg, TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let conns: Vec<(ConnId, ConnId)> = (0..4).map(|_| p.open(l, 80)).collect();
    // Two orphans: each close sends its FIN (not delivered yet: the peer stays silent).
    let mut fins = Vec::new();
    for &(ca, _) in &conns[..2] {
        let before = p.a.info(ca).unwrap();
        p.a.close(p.now, ca).unwrap();
        let out = flush(&mut p.a, p.now);
        assert_eq!(out.len(), 1);
        let r = out[0].repr();
        assert_eq!(
            (r.flags, r.seq, r.ack),
            (
                TcpFlags::FIN | TcpFlags::ACK,
                before.snd_nxt,
                before.rcv_nxt.unwrap()
            )
        );
        assert_eq!(p.a.state(ca), Some(State::FinWait1));
        fins.push(out[0].clone());
    }
    assert_eq!(p.a.orphan_count(), 2);
    // The third: reset, no FIN.
    let (ca, _) = conns[2];
    let before = p.a.info(ca).unwrap();
    p.a.close(p.now, ca).unwrap();
    let out = flush(&mut p.a, p.now);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (
            TcpFlags::RST | TcpFlags::ACK,
            before.snd_nxt,
            before.rcv_nxt.unwrap()
        )
    );
    assert_eq!(p.a.state(ca), None, "freed once the RST is out");
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (2, 1));
    assert_eq!(p.a.state_counts().orphans, 2);
    // Shutdown (half-close) makes no orphan: the application still holds the connection.
    let (ca, _) = conns[3];
    p.a.shutdown_write(p.now, ca).unwrap();
    assert_eq!(
        flush(&mut p.a, p.now)[0].flags(),
        TcpFlags::FIN | TcpFlags::ACK
    );
    assert_eq!(p.a.orphan_count(), 2);
    // The first orphan finishes (its FIN acknowledged, the peer's FIN: TIME-WAIT record).
    deliver(&mut p.b, p.now, &fins[..1]);
    p.b.close(p.now, conns[0].1).unwrap();
    p.run();
    assert_eq!(p.a.orphan_count(), 1);
    // Now the fourth connection's close is an orphan again, not a reset.
    p.a.close(p.now, ca).unwrap();
    assert_eq!(p.a.state(ca), Some(State::FinWait1));
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (2, 1));
}

/// `tcp_max_orphans` = 0 (allowed, as in Linux): every close that leaves the connection
/// unfinished is a reset; a close in CLOSE-WAIT (-> LAST-ACK) too.
#[test]
fn max_orphans_zero_resets_every_close() {
    let cfg = TcpConfig {
        max_orphans: 0,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cfg);
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    p.a.shutdown_write(p.now, ca).unwrap();
    p.run();
    assert_eq!(p.b.state(cb), Some(State::CloseWait));
    let before = p.b.info(cb).unwrap();
    p.b.close(p.now, cb).unwrap();
    let out = flush(&mut p.b, p.now);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (
            TcpFlags::RST | TcpFlags::ACK,
            before.snd_nxt,
            before.rcv_nxt.unwrap()
        )
    );
    assert_eq!((p.b.orphan_count(), p.b.stats().aborted_on_memory), (0, 1));
}

/// a's `tcp_mem`: LOW 4 KiB, PRESSURE 4 KiB, HIGH 8 KiB, so one 8 KiB send queue takes it to
/// HIGH and a forced grant (the first bytes of an empty send queue) takes it above.
fn tight_mem() -> TcpConfig {
    TcpConfig {
        mem: [1, 1, 2],
        ..TcpConfig::default()
    }
}

/// Linux `tcp_write_timeout` -> `tcp_out_of_resources` -> `tcp_check_oom` ->
/// `tcp_out_of_memory`: at its retransmission timer, an orphan whose send queue holds more
/// than `SOCK_MIN_SNDBUF` while `tcp_mem` is above HIGH is reset ("out of memory -- consider
/// tuning tcp_mem", `tcp_send_active_reset`, `TCPAbortOnMemory`): RST|ACK
/// <SEQ=SND.MAX><ACK=RCV.NXT>, CLOSED, counted `aborted_on_memory`. The same timer
/// retransmits as usual for an orphan with only its FIN outstanding and for a connection the
/// application still holds.
#[test]
fn orphan_with_queued_data_reset_at_rto_above_tcp_mem_high() {
    let mut p = Pair::new(tight_mem(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (big, _) = p.open(l, 80);
    let (held, _) = p.open(l, 80);
    let (fin_only, _) = p.open(l, 80);
    assert_eq!(p.a.send(p.now, big, &[7u8; 8192]), Ok(8192));
    p.a.close(p.now, big).unwrap();
    p.a.close(p.now, fin_only).unwrap();
    let sent = flush(&mut p.a, p.now); // lost: b never answers
    assert!(sent.iter().any(|f| f.flags().fin()));
    let before = p.a.info(big).unwrap();
    assert_eq!(before.state, State::FinWait1);
    assert_eq!(
        before.snd_nxt,
        before.iss + 1u32 + 8192u32 + 1u32,
        "data and FIN out"
    );
    assert_eq!(
        p.a.buffer_pool_stats().out_bytes,
        8192,
        "at HIGH, not above"
    );
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (2, 0));
    // A forced grant takes the endpoint above HIGH.
    assert_eq!(p.a.send(p.now, held, &[1u8; 100]), Ok(100));
    assert!(p.a.buffer_pool_stats().out_bytes > 8192);
    flush(&mut p.a, p.now); // lost too
    let port = |id| p.a.info(id).unwrap().tuple.local().port();
    let (big_port, held_port, fin_port) = (port(big), port(held), port(fin_only));
    // The retransmission timers (the RTO is at most 1 s here).
    p.now += Duration::from_secs(1);
    p.a.on_timeout(p.now);
    let out = flush(&mut p.a, p.now);
    let from =
        |port: u16| -> Vec<&Frame> { out.iter().filter(|f| f.repr().src_port == port).collect() };
    let rst = from(big_port);
    assert_eq!(rst.len(), 1, "the RST only, no retransmission");
    let r = rst[0].repr();
    assert_eq!(
        (r.flags, r.seq, r.ack, r.payload.len()),
        (
            TcpFlags::RST | TcpFlags::ACK,
            before.snd_nxt,
            before.rcv_nxt.unwrap(),
            0
        )
    );
    assert_eq!(p.a.state(big), None, "freed once the RST is out");
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (1, 1));
    // The FIN-only orphan (no send queue) and the held connection retransmit.
    let fin = from(fin_port);
    assert_eq!(fin.len(), 1);
    assert_eq!(fin[0].flags(), TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(p.a.state(fin_only), Some(State::FinWait1));
    let data = from(held_port);
    assert_eq!((data.len(), data[0].repr().payload.len()), (1, 100));
    assert_eq!(p.a.state(held), Some(State::Established));
}

/// Linux `__tcp_close` -> `tcp_check_oom(sk, 0)`: the memory half at close. A close that
/// orphans a connection with more than `SOCK_MIN_SNDBUF` queued while `tcp_mem` is above HIGH
/// resets it at once: RST|ACK <SEQ=SND.MAX><ACK=RCV.NXT>, counted `aborted_on_memory`; at or
/// below HIGH the same close is an orphan with its FIN.
#[test]
fn close_with_queued_data_above_tcp_mem_high_resets() {
    let mut p = Pair::new(tight_mem(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (big, _) = p.open(l, 80);
    let (held, _) = p.open(l, 80);
    assert_eq!(p.a.send(p.now, big, &[7u8; 8192]), Ok(8192));
    flush(&mut p.a, p.now); // lost: b never answers
    assert_eq!(p.a.send(p.now, held, &[1u8; 100]), Ok(100));
    assert!(p.a.buffer_pool_stats().out_bytes > 8192, "above HIGH");
    let before = p.a.info(big).unwrap();
    p.a.close(p.now, big).unwrap();
    let out = flush(&mut p.a, p.now);
    let port = before.tuple.local().port();
    let rst: Vec<&Frame> = out.iter().filter(|f| f.repr().src_port == port).collect();
    assert_eq!(rst.len(), 1);
    let r = rst[0].repr();
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (
            TcpFlags::RST | TcpFlags::ACK,
            before.snd_nxt,
            before.rcv_nxt.unwrap()
        )
    );
    assert_eq!(p.a.state(big), None);
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (0, 1));
    // The held connection's close: 100 bytes queued, not more than SOCK_MIN_SNDBUF: an orphan.
    p.a.close(p.now, held).unwrap();
    assert_eq!(p.a.state(held), Some(State::FinWait1));
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (1, 1));
}

/// Linux `tcp_probe_timer` -> `tcp_out_of_resources`: the same at the zero-window probe timer.
/// The peer closed its window before any of the orphan's data went out; above `tcp_mem` HIGH
/// the probe timer resets it instead of probing: RST|ACK <SEQ=SND.MAX><ACK=RCV.NXT> (nothing
/// sent: SND.MAX = ISS + 1).
#[test]
fn orphan_facing_zero_window_reset_at_probe_above_tcp_mem_high() {
    let no_ts = |c: TcpConfig| TcpConfig {
        timestamps: false,
        ..c
    };
    let mut p = Pair::new(no_ts(tight_mem()), no_ts(TcpConfig::default()));
    let l = p.b.listen(B, 80, 16).unwrap();
    let (big, _) = p.open(l, 80);
    let (held, _) = p.open(l, 80);
    let i = p.a.info(big).unwrap();
    let port = i.tuple.local().port();
    // The peer's window update: zero.
    let mut zero = tcp(80, port, i.rcv_nxt.unwrap().0, i.snd_nxt.0, TcpFlags::ACK);
    zero.window = 0;
    p.a.on_segment(p.now, B, A, &zero);
    assert_eq!(p.a.info(big).unwrap().snd_wnd, Some(0));
    assert_eq!(p.a.send(p.now, big, &[7u8; 8192]), Ok(8192));
    p.a.close(p.now, big).unwrap();
    let out = flush(&mut p.a, p.now);
    assert!(
        out.iter().all(|f| f.repr().src_port != port),
        "nothing fits the window"
    );
    assert_eq!(p.a.state(big), Some(State::FinWait1));
    assert_eq!(p.a.send(p.now, held, &[1u8; 100]), Ok(100)); // forced: above HIGH
    assert!(p.a.buffer_pool_stats().out_bytes > 8192);
    flush(&mut p.a, p.now);
    p.now += Duration::from_secs(1);
    p.a.on_timeout(p.now);
    let out = flush(&mut p.a, p.now);
    let rst: Vec<&Frame> = out.iter().filter(|f| f.repr().src_port == port).collect();
    assert_eq!(rst.len(), 1, "the RST, no probe");
    let r = rst[0].repr();
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (
            TcpFlags::RST | TcpFlags::ACK,
            i.iss + 1u32,
            i.rcv_nxt.unwrap()
        )
    );
    assert_eq!(p.a.state(big), None);
    assert_eq!((p.a.orphan_count(), p.a.stats().aborted_on_memory), (0, 1));
}
