//! The sending side: congestion window and its response to loss, fast retransmit
//! and NewReno partial ACKs (RFC 5681 §3.2, RFC 6582), SACK recovery (RFC 6675), the RTO
//! backoff sequence (RFC 6298 §5.5), Nagle and TCP_NODELAY (RFC 9293 §3.7.4), persist
//! probing (RFC 9293 §3.8.6.1). Fixtures use a peer MSS of 100 so that the initial window
//! (RFC 6928: 10 segments) is 1000 bytes and segments are easy to count.

use super::*;
use crate::tcp::cc::CongestionAlgo;

/// Our payload: byte i of the stream is i % 251, so every segment is recognisable.
fn stream(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The segment carrying stream bytes [from, to) (sequence numbers start at 1001).
fn piece(flags: TcpFlags, from: usize, to: usize) -> Out {
    Out::new(flags, 1001 + from as u32, 5001).payload(&stream(to)[from..])
}

/// ESTABLISHED with a peer MSS of 100 (and SACK-permitted when `sack`).
fn est_mss100(sack: bool, cc: CongestionAlgo) -> T {
    let cfg = TcpConfig {
        sack,
        congestion_control: cc,
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.mss = Some(100);
    syn.options.sack_permitted = sack;
    let mut t = syn_received_with(&cfg, &syn);
    third_ack(&mut t, &seg(ACK, 5001, 1001));
    t.events();
    t
}

/// A pure ACK from the peer with SACK blocks.
fn sack_ack(ack: u32, blocks: &[(u32, u32)]) -> TcpRepr<'static> {
    let mut s = seg(ACK, 5001, ack);
    for (i, &(l, r)) in blocks.iter().enumerate() {
        s.options.sack_blocks[i] = (SeqNum(l), SeqNum(r));
    }
    s.options.sack_count = blocks.len() as u8;
    s
}

/// Send 1000 bytes: the initial window, 10 segments of 100.
fn send_window(t: &mut T) {
    assert_eq!(t.send(&stream(1000)), Ok(1000));
    let want: Vec<Out> = (0..10)
        .map(|i| {
            let f = if i == 9 { ACK | PSH } else { ACK };
            piece(f, i * 100, i * 100 + 100)
        })
        .collect();
    assert_eq!(t.out(), want, "RFC 6928 initial window: 10 segments");
}

/// RFC 5681 §3.2: the third duplicate ACK (and only it) retransmits exactly the segment at
/// SND.UNA; cwnd becomes ssthresh = β * FlightSize (CUBIC, RFC 9438 §4.6). RFC 6582 step 4:
/// a partial ACK retransmits the next hole at once; a full ACK ends recovery.
#[test]
fn three_dupacks_one_retransmission_then_partial_ack() {
    let mut t = est_mss100(false, CongestionAlgo::Cubic);
    send_window(&mut t);
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![]);
    assert_eq!(
        t.c.congestion_window(),
        Some((1100, u32::MAX)),
        "slow start"
    );
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![], "dup 1");
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![], "dup 2");
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1101)),
        vec![piece(ACK, 100, 200)],
        "dup 3: fast retransmit of SND.UNA"
    );
    // FlightSize 900: ssthresh = cwnd = 630.
    assert_eq!(t.c.congestion_window(), Some((630, 630)));
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1101)),
        vec![],
        "dup 4: nothing new to send"
    );
    let rto_at = t.c.timer(Timer::Retransmit);
    // Partial ACK: 1101..1301 arrived, 1301 is the next hole.
    t.now += ms(5);
    assert_eq!(t.feed(&seg(ACK, 5001, 1301)), vec![piece(ACK, 300, 400)]);
    assert_ne!(
        t.c.timer(Timer::Retransmit),
        rto_at,
        "first partial ACK restarts"
    );
    let rto_at = t.c.timer(Timer::Retransmit);
    t.now += ms(5);
    assert_eq!(t.feed(&seg(ACK, 5001, 1501)), vec![piece(ACK, 500, 600)]);
    assert_eq!(
        t.c.timer(Timer::Retransmit),
        rto_at,
        "later partial ACKs do not (RFC 6582 step 5)"
    );
    // The full ACK (covers `recover` = 2001) ends recovery.
    assert_eq!(t.feed(&seg(ACK, 5001, 2001)), vec![]);
    assert_eq!(t.c.congestion_window(), Some((630, 630)));
    assert_eq!(t.c.timer(Timer::Retransmit), None);
}

/// NewReno (RFC 6582) numbers: ssthresh = max(FlightSize / 2, 2 SMSS); the window is
/// inflated by 3 SMSS and then one SMSS per duplicate ACK, so new data flows during
/// recovery; the full ACK sets cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
#[test]
fn newreno_inflation_sends_new_data() {
    let mut t = est_mss100(false, CongestionAlgo::Reno);
    send_window(&mut t);
    t.feed(&seg(ACK, 5001, 1101));
    // 1100 bytes more queued: cwnd 1100 - 900 in flight lets 200 go.
    t.send(&stream(2100)[1000..]).unwrap();
    assert_eq!(
        t.out(),
        vec![piece(ACK, 1000, 1100), piece(ACK, 1100, 1200)]
    );
    // Dupacks 1 and 2: limited transmit (RFC 3042), one new segment each.
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![piece(ACK, 1200, 1300)]);
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![piece(ACK, 1300, 1400)]);
    // Dupack 3: FlightSize 1300 -> ssthresh 650, cwnd 650 + 3*100 inflated: 950 < 1300
    // outstanding, so only the retransmission.
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![piece(ACK, 100, 200)]);
    assert_eq!(t.c.congestion_window(), Some((650, 650)));
    // Each further dupack inflates by 100; new data once inflation passes FlightSize.
    for _ in 0..3 {
        assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![]);
    }
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![], "1350 = 1300 + ...");
    assert_eq!(t.feed(&seg(ACK, 5001, 1101)), vec![piece(ACK, 1400, 1500)]);
    // Full ACK of everything sent before recovery (recover = 2401): cwnd =
    // min(650, max(100 outstanding, 100) + 100) = 200.
    assert_eq!(t.feed(&seg(ACK, 5001, 2401)), vec![piece(ACK, 1500, 1600)]);
    assert_eq!(t.c.congestion_window(), Some((200, 650)));
}

/// RFC 6675: SACK blocks from the peer fill the scoreboard; recovery starts on the third
/// duplicate ACK; holes are retransmitted in order (IsLost first), SACKed data never; the
/// rescue retransmission (NextSeg rule 4) covers the tail once; a full ACK ends it.
#[test]
fn sack_holes_filled_in_order() {
    let mut t = est_mss100(true, CongestionAlgo::Cubic);
    send_window(&mut t);
    t.feed(&seg(ACK, 5001, 1101));
    // Segments 1101 and 1301 were lost.
    assert_eq!(t.feed(&sack_ack(1101, &[(1201, 1301)])), vec![]);
    assert_eq!(
        t.feed(&sack_ack(1101, &[(1401, 1501), (1201, 1301)])),
        vec![]
    );
    // Third duplicate: retransmit 1101 only. Pipe = 100 (1101, resent) + 100 (1301, not yet
    // lost: 200 bytes SACKed above it) + 400 (1601..2001) = 600; cwnd 630 leaves < 1 SMSS.
    assert_eq!(
        t.feed(&sack_ack(1101, &[(1401, 1601), (1201, 1301)])),
        vec![piece(ACK, 100, 200)]
    );
    assert_eq!(t.c.congestion_window(), Some((630, 630)));
    // 300 bytes SACKed above 1301 make it lost (RFC 6675 IsLost): it goes next; 1201..1301
    // and 1401..1701 (SACKed) are not resent; nothing above the highest SACK is by rules 1
    // and 3. Pipe is then 500 < cwnd - SMSS: rule 4 sends the one rescue retransmission, of
    // the highest unSACKed segment (1901..2001).
    assert_eq!(
        t.feed(&sack_ack(1101, &[(1401, 1701), (1201, 1301)])),
        vec![piece(ACK, 300, 400), piece(ACK | PSH, 900, 1000)]
    );
    assert_eq!(
        t.feed(&sack_ack(1101, &[(1401, 1801), (1201, 1301)])),
        vec![]
    );
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1801)),
        vec![],
        "partial ACK, rescue only once"
    );
    assert_eq!(t.feed(&seg(ACK, 5001, 2001)), vec![]);
    assert_eq!(t.c.timer(Timer::Retransmit), None);
}

/// RFC 2883: a D-SACK block (below SND.UNA) is no new SACK information; with a changed
/// window and the block, an ACK is not a duplicate (RFC 5681 §2 (e)).
#[test]
fn dsack_does_not_count_as_duplicate() {
    let mut t = est_mss100(true, CongestionAlgo::Cubic);
    send_window(&mut t);
    t.feed(&seg(ACK, 5001, 1101));
    for w in [4000, 3999, 3998, 3997] {
        let mut a = sack_ack(1101, &[(1001, 1101)]);
        a.window = w;
        assert_eq!(t.feed(&a), vec![]);
    }
    assert_eq!(t.c.congestion_window(), Some((1100, u32::MAX)));
}

/// RFC 6298 §5.5 backoff from rto_min: 200, 400, 800, 1600 ms ... between retransmissions;
/// RFC 5681 §3.1: cwnd = 1 SMSS after a timeout, ssthresh = max(FlightSize/2, 2 SMSS)
/// (Reno) set once. An ACK of new data resets the backoff count.
#[test]
fn rto_backoff_sequence_and_cwnd() {
    let mut t = est_mss100(false, CongestionAlgo::Reno);
    t.send(b"a").unwrap();
    t.out();
    t.now += ms(10);
    t.feed(&seg(ACK, 5001, 1002)); // SRTT 10 ms: RTO = max(10 + 4 * 5, 200) = 200 ms
    assert_eq!(t.c.rtt(), Some((Some(ms(10)), ms(200))));
    t.send(&stream(300)).unwrap();
    assert_eq!(t.out().len(), 3);
    let sent = t.now;
    let first = Out::new(ACK, 1002, 5001).payload(&stream(100));
    let mut at = Duration::ZERO;
    for step in [200, 400, 800, 1600, 3200] {
        assert_eq!(t.next(), vec![first.clone()]);
        at += ms(step);
        assert_eq!(t.now, sent + at);
        assert_eq!(t.c.congestion_window(), Some((100, 200)));
    }
    assert_eq!(t.c.timer(Timer::Retransmit), Some(t.now + ms(6400)));
    // The retransmission is acknowledged: cwnd 200 (slow start), the rest follows.
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1102)),
        vec![
            Out::new(ACK, 1102, 5001).payload(&stream(300)[100..200]),
            Out::new(ACK | PSH, 1202, 5001).payload(&stream(300)[200..]),
        ]
    );
    assert_eq!(t.c.congestion_window(), Some((200, 200)));
}

/// CUBIC's timeout response (RFC 9438 §4.8): cwnd = 1 SMSS, ssthresh = β * FlightSize.
#[test]
fn cubic_cwnd_after_rto() {
    let mut t = est_mss100(false, CongestionAlgo::Cubic);
    send_window(&mut t);
    assert_eq!(t.next(), vec![piece(ACK, 0, 100)]);
    assert_eq!(t.c.congestion_window(), Some((100, 700)));
}

/// Nagle (RFC 9293 §3.7.4; Linux's Minshall variant): a small segment waits while a small
/// one is unacknowledged; the ACK releases it; with TCP_NODELAY it goes at once.
#[test]
fn nagle_holds_small_segment_nodelay_sends() {
    let mut t = established();
    t.send(b"a").unwrap();
    assert_eq!(t.out(), vec![Out::new(ACK | PSH, 1001, 5001).payload(b"a")]);
    t.send(b"b").unwrap();
    assert_eq!(t.out(), vec![], "held: 'a' unacknowledged");
    t.send(b"c").unwrap();
    assert_eq!(t.out(), vec![]);
    assert_eq!(
        t.feed(&seg(ACK, 5001, 1002)),
        vec![Out::new(ACK | PSH, 1002, 5001).payload(b"bc")]
    );
    t.c.set_nodelay(true);
    t.send(b"d").unwrap();
    assert_eq!(
        t.out(),
        vec![Out::new(ACK | PSH, 1004, 5001).payload(b"d")],
        "nodelay: sent although 'bc' is unacknowledged"
    );
}

/// RFC 9293 §3.8.6.1 persist timer: probes back off 0.2, 0.4, 0.8 s ... (from the RTO, 200 ms
/// after the handshake's 10 ms sample, RFC 6298 §2.2 clamped to rto_min); they
/// continue while the peer answers (with a zero window); tcp_retries2 unanswered probes
/// time the connection out (as Linux).
#[test]
fn persist_probe_timing_and_give_up() {
    let cfg = TcpConfig {
        retries2: 3,
        ..cfg()
    };
    let mut t = syn_received_with(&cfg, &peer_syn());
    let mut zero = seg(ACK, 5001, 1001);
    zero.window = 0;
    third_ack(&mut t, &zero);
    t.send(b"abc").unwrap();
    assert_eq!(t.out(), vec![]);
    let probe = ack_out(1000, 5001);
    let mut at = EST;
    for i in 0..9 {
        assert_eq!(t.next(), vec![probe.clone()], "probe {i}");
        at += ms(200 << i); // 0.2 ... 51.2 s
        assert_eq!(t.now, at);
        assert_eq!(t.feed(&zero), vec![], "answered: zero window");
    }
    // Unanswered from now on: 3 more probes (102.4 s, then 204.8 s capped to 120), then
    // TimedOut.
    for gap in [102_400, 120_000, 120_000] {
        assert_eq!(t.next(), vec![probe.clone()]);
        at += ms(gap);
        assert_eq!(t.now, at);
    }
    assert_eq!(t.next(), vec![]);
    assert_eq!(t.now, at + secs(120), "backoff bounded by rto_max");
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.events(),
        vec![
            Event::Connected,
            Event::Error(ConnError::TimedOut),
            Event::Closed
        ]
    );
}

/// Only what fits min(cwnd, peer window) is in flight; ACKs grow cwnd in slow start.
#[test]
fn cwnd_limits_then_slow_start_grows() {
    let mut t = est_mss100(false, CongestionAlgo::Cubic);
    t.send(&stream(1400)).unwrap();
    assert_eq!(t.out().len(), 10, "IW 1000 of 1400");
    // ACK of two segments: cwnd 1000 + 200 = 1200; 800 outstanding -> 4 more.
    let out = t.feed(&seg(ACK, 5001, 1201));
    assert_eq!(
        out,
        vec![
            piece(ACK, 1000, 1100),
            piece(ACK, 1100, 1200),
            piece(ACK, 1200, 1300),
            piece(ACK | PSH, 1300, 1400),
        ]
    );
    assert_eq!(t.c.congestion_window(), Some((1200, u32::MAX)));
}

/// An owned segment for the bulk simulation below.
#[derive(Clone)]
struct Seg {
    repr_head: TcpRepr<'static>,
    payload: Vec<u8>,
}

/// Bulk transfer client -> server through a lossy, reordering link (seeded), with both
/// congestion controllers and SACK on or off: every byte arrives once, in order, and the
/// transfer finishes (no stall: the RTO and persist invariants hold). With a receiver that
/// drops out-of-order data this exercises duplicate ACKs, NewReno, RTO and go-back-N; with
/// one that reassembles and sends SACK blocks, RFC 6675 recovery as well (and
/// `bulk_to_reassembling_receiver` below uses a model receiver that does).
fn bulk(seed: u64, loss: f64, cc: CongestionAlgo, sack: bool, jitter: u64) -> Instant {
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    const N: usize = 300_000;
    let cfg = TcpConfig {
        sack,
        congestion_control: cc,
        rmem: 65_536,
        wmem: 32_768,
        ..TcpConfig::default()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let msg: Vec<u8> = (0..N).map(|_| rng.gen()).collect();
    let e = ends();
    let client_ends = e.reversed();
    let mut now = Instant::ZERO;
    let mut c = [
        Some(Connection::connect(
            now,
            &limits(&cfg),
            client_ends,
            SeqNum(rng.gen()),
            7,
        )),
        None,
    ];
    let mut lim = [
        ChallengeAckLimiter::new(1000),
        ChallengeAckLimiter::new(1000),
    ];
    let mut pool = [BufPool::new(), BufPool::new()];
    let mut wire: BTreeMap<(Instant, u64), (usize, Seg)> = BTreeMap::new();
    let (mut id, mut sent, mut got) = (0u64, 0usize, Vec::new());
    let mut buf = vec![0u8; 65_536];
    for _ in 0..2_000_000 {
        // Applications.
        if let Some(cl) = c[0].as_mut() {
            if sent < N && cl.state() == State::Established {
                if let Ok(n) = cl.send(now, &msg[sent..], &mut pool[0]) {
                    sent += n;
                }
            }
        }
        if let Some(sv) = c[1].as_mut() {
            loop {
                let n = sv.recv(&mut buf, &mut pool[1]);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        if got.len() == N {
            break;
        }
        // Output onto the link: data lost at `loss`, other segments at half that;
        // 10-13 ms delay (with `jitter`) so segments reorder.
        for (side, conn) in c.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut() else {
                continue;
            };
            let mut out = Vec::new();
            conn.poll_transmit(now, |r| {
                out.push(Seg {
                    repr_head: TcpRepr { payload: &[], ..*r },
                    payload: r.payload.to_vec(),
                })
            });
            for s in out {
                let p = if s.payload.is_empty() {
                    loss / 2.0
                } else {
                    loss
                };
                if rng.gen_bool(p) {
                    continue;
                }
                id += 1;
                let d = Duration::from_micros(10_000 + jitter * rng.gen_range(0..3_000));
                wire.insert((now + d, id), (1 - side, s));
            }
        }
        let deadline = c.iter().flatten().filter_map(|x| x.next_deadline()).min();
        let arrival = wire.keys().next().map(|k| k.0);
        now = match (deadline, arrival) {
            (Some(d), Some(a)) => now.max(d.min(a)),
            (d, a) => now.max(d.or(a).expect("stuck: no timer, nothing in flight")),
        };
        assert!(
            now < Instant::from_secs(600),
            "too slow: {} of {N}",
            got.len()
        );
        while let Some(en) = wire.first_entry() {
            if en.key().0 > now {
                break;
            }
            let (to, s) = en.remove();
            let r = TcpRepr {
                payload: &s.payload,
                ..s.repr_head
            };
            match c[to].as_mut() {
                Some(conn) => {
                    let _ = conn.on_segment(now, &r, &mut lim[to], &mut pool[to]);
                }
                None if r.flags == SYN => {
                    c[1] = Some(Connection::accept_syn(
                        now,
                        &limits(&cfg),
                        e,
                        &r,
                        SeqNum(rng.gen()),
                        9,
                    ));
                }
                None => {}
            }
        }
        for conn in c.iter_mut().flatten() {
            conn.on_timeout(now);
        }
    }
    assert_eq!(got.len(), N, "seed {seed} loss {loss} {cc:?} sack {sack}");
    assert!(got == msg, "bytes differ: seed {seed} loss {loss} {cc:?}");
    now
}

#[test]
fn bulk_transfer_under_loss_is_exact() {
    for (i, loss) in [0.0, 0.01, 0.05, 0.10].into_iter().enumerate() {
        for seed in 0..3 {
            for cc in [CongestionAlgo::Cubic, CongestionAlgo::Reno] {
                bulk(seed * 10 + i as u64, loss, cc, seed % 2 == 0, 1);
                bulk(seed * 10 + i as u64, loss, cc, seed % 2 == 0, 0);
            }
        }
    }
}

/// A model receiver for `bulk_to_model`: reassembles out-of-order data, ACKs every segment
/// at once with up to 3 SACK blocks (RFC 2018 §4: the first holds the newest segment).
struct ModelRx {
    nxt: SeqNum,
    /// Out-of-order bytes by sequence number (bounded by the 65535-byte window).
    ooo: std::collections::BTreeMap<u32, u8>,
    got: Vec<u8>,
    sack: bool,
}

impl ModelRx {
    fn blocks(&self, newest: SeqNum) -> Vec<(SeqNum, SeqNum)> {
        let mut ranges: Vec<(SeqNum, SeqNum)> = Vec::new();
        for &k in self.ooo.keys() {
            match ranges.last_mut() {
                Some((_, r)) if r.0 == k => *r = SeqNum(k + 1),
                _ => ranges.push((SeqNum(k), SeqNum(k + 1))),
            }
        }
        if let Some(i) = ranges.iter().position(|&(l, r)| newest.in_range(l, r)) {
            let first = ranges.remove(i);
            ranges.insert(0, first);
        }
        ranges.truncate(3);
        ranges
    }

    fn on_data(&mut self, seq: SeqNum, data: &[u8]) -> TcpRepr<'static> {
        for (i, &b) in data.iter().enumerate() {
            let s = seq + i;
            if s.ge(self.nxt) && (s - self.nxt) < 65_535 {
                self.ooo.insert(s.0, b);
            }
        }
        while let Some(b) = self.ooo.remove(&self.nxt.0) {
            self.got.push(b);
            self.nxt = self.nxt + 1u32;
        }
        let mut a = seg(ACK, 5001, self.nxt.0);
        a.window = 65_535 - self.ooo.len().min(65_535) as u16;
        if self.sack {
            let b = self.blocks(seq);
            for (i, &blk) in b.iter().enumerate() {
                a.options.sack_blocks[i] = blk;
            }
            a.options.sack_count = b.len() as u8;
        }
        a
    }
}

/// Our sender against a reassembling, SACKing receiver: byte-exact under seeded loss and
/// reordering, and recovery is quick (bounded virtual time), for CUBIC and NewReno, with
/// and without SACK. Returns the virtual time taken.
fn bulk_to_model(seed: u64, loss: f64, cc: CongestionAlgo, sack: bool) -> Duration {
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;
    const N: usize = 300_000;
    let cfg = TcpConfig {
        sack,
        congestion_control: cc,
        wmem: 65_536,
        ..cfg()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let msg: Vec<u8> = (0..N).map(|_| rng.gen()).collect();
    let mut syn = peer_syn();
    syn.options.sack_permitted = sack;
    syn.window = 65_535;
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.window = 65_535;
    t.feed(&third);
    let mut rx = ModelRx {
        nxt: SeqNum(1001),
        ooo: BTreeMap::new(),
        got: Vec::new(),
        sack,
    };
    let start = t.now;
    let mut wire: BTreeMap<(Instant, u64), (bool, Seg)> = BTreeMap::new();
    let (mut id, mut sent) = (0u64, 0usize);
    for _ in 0..1_000_000 {
        if sent < N {
            if let Ok(n) = t.send(&msg[sent..]) {
                sent += n;
            }
        }
        if rx.got.len() == N {
            break;
        }
        let mut out = Vec::new();
        t.c.poll_transmit(t.now, |r| {
            out.push(Seg {
                repr_head: TcpRepr { payload: &[], ..*r },
                payload: r.payload.to_vec(),
            })
        });
        for s in out {
            if rng.gen_bool(loss) {
                continue;
            }
            id += 1;
            let d = Duration::from_micros(10_000 + rng.gen_range(0..2_000));
            wire.insert((t.now + d, id), (true, s));
        }
        let deadline = t.c.next_deadline();
        let arrival = wire.keys().next().map(|k| k.0);
        t.now = match (deadline, arrival) {
            (Some(d), Some(a)) => t.now.max(d.min(a)),
            (d, a) => t
                .now
                .max(d.or(a).expect("stuck: no timer, nothing in flight")),
        };
        assert!(
            t.now < start + secs(120),
            "too slow: {} of {N}",
            rx.got.len()
        );
        while let Some(en) = wire.first_entry() {
            if en.key().0 > t.now {
                break;
            }
            let (to_rx, s) = en.remove();
            if to_rx {
                let ack = rx.on_data(s.repr_head.seq, &s.payload);
                if !rng.gen_bool(loss / 2.0) {
                    id += 1;
                    let d = Duration::from_micros(10_000 + rng.gen_range(0..2_000));
                    let head = TcpRepr {
                        payload: &[],
                        ..ack
                    };
                    wire.insert(
                        (t.now + d, id),
                        (
                            false,
                            Seg {
                                repr_head: head,
                                payload: vec![],
                            },
                        ),
                    );
                }
            } else {
                let _ = t.c.on_segment(t.now, &s.repr_head, &mut t.lim, &mut t.pool);
            }
        }
        t.c.on_timeout(t.now);
    }
    assert_eq!(
        rx.got.len(),
        N,
        "seed {seed} loss {loss} {cc:?} sack {sack}"
    );
    assert!(
        rx.got == msg,
        "bytes differ: seed {seed} loss {loss} {cc:?}"
    );
    assert_eq!(t.state(), State::Established);
    t.now.saturating_since(start)
}

#[test]
fn bulk_to_reassembling_receiver() {
    for loss in [0.0, 0.01, 0.05, 0.10] {
        for seed in 0..3 {
            for cc in [CongestionAlgo::Cubic, CongestionAlgo::Reno] {
                for sack in [true, false] {
                    let d = bulk_to_model(seed, loss, cc, sack);
                    if loss == 0.0 && !sack {
                        // No loss and no reordering seen as loss: slow start from 10
                        // segments through 300 kB at a 10-12 ms RTT takes a few RTTs.
                        assert!(d < ms(300), "{d:?}");
                    }
                }
            }
        }
    }
}

/// The peer shrinks its window to zero under our data: RTO retransmissions of the head
/// go on (backed off) as window probes without counting toward tcp_retries2 while the peer
/// answers; 2 * rto_max of silence times out (Linux tcp_retransmit_timer).
#[test]
fn zero_window_under_flight_does_not_exhaust_retries() {
    let cfg = TcpConfig {
        retries2: 2,
        ..cfg()
    };
    let mut t = syn_received_with(&cfg, &peer_syn());
    t.feed(&seg(ACK, 5001, 1001));
    t.send(b"hello").unwrap();
    let out = Out::new(ACK | PSH, 1001, 5001).payload(b"hello");
    assert_eq!(t.out(), vec![out.clone()]);
    let mut zero = seg(ACK, 5001, 1001);
    zero.window = 0;
    assert_eq!(t.feed(&zero), vec![]);
    for _ in 0..5 {
        assert_eq!(
            t.next(),
            vec![out.clone()],
            "head resent into the zero window"
        );
        t.feed(&zero);
        assert_eq!(t.state(), State::Established);
    }
    // Silence: backoff reaches rto_max (120 s) and 240 s after the last answer, TimedOut.
    let last = t.now;
    while t.state() == State::Established {
        t.next();
    }
    assert!(
        t.now.saturating_since(last) > secs(240),
        "{:?}",
        t.now - last
    );
    assert!(t.now.saturating_since(last) <= secs(240 + 120));
    assert_eq!(t.c.error(), Some(ConnError::TimedOut));
}

/// RFC 5681 §4.1: after more than an RTO without sending, cwnd restarts from
/// min(IW, cwnd); without the idle gap the grown window is used.
#[test]
fn restart_after_idle() {
    for idle in [false, true] {
        let mut t = est_mss100(false, CongestionAlgo::Reno);
        send_window(&mut t);
        t.now += ms(20);
        t.feed(&seg(ACK, 5001, 2001));
        assert_eq!(t.c.congestion_window(), Some((1200, u32::MAX)));
        if idle {
            t.now += secs(2);
        }
        t.send(&stream(1500)).unwrap();
        let n = t.out().len();
        assert_eq!(n, if idle { 10 } else { 12 }, "idle {idle}");
    }
}

/// RFC 6298 §5.7 and RFC 5681 §3.1: after a SYN timeout, data starts with RTO = 3 s and a
/// one-segment initial window.
#[test]
fn syn_timeout_gives_3s_rto_and_one_segment_window() {
    let mut t = syn_sent();
    assert_eq!(t.next().len(), 1, "SYN retransmitted");
    let mut sa = seg(SYN | ACK, PEER_ISS, 1001);
    sa.options.mss = Some(1000);
    t.feed(&sa);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.rtt(), Some((None, secs(3))));
    t.send(&[7u8; 3000]).unwrap();
    assert_eq!(
        t.out(),
        vec![Out::new(ACK, 1001, 5001).payload(&[7u8; 1000])]
    );
    assert_eq!(t.c.timer(Timer::Retransmit), Some(t.now + secs(3)));
}

/// After an RTO pulls SND.NXT back to SND.UNA (go-back-N), a bare ACK carries SEQ = SND.MAX:
/// the peer may hold everything up to SND.MAX, and an ACK whose SEQ is below its RCV.NXT is
/// unacceptable there (RFC 9293 §3.10.7.4), dropped with its ACK field unread. Two ends in
/// that state never process each other's ACKs (a deadlock sim_transfer found, seed 302).
#[test]
fn bare_ack_after_rto_carries_snd_max() {
    let mut t = est_mss100(false, CongestionAlgo::Reno);
    send_window(&mut t);
    // The RTO resends the first segment only (cwnd 1 MSS); SND.NXT is now 1101, SND.MAX 2001.
    assert_eq!(t.next(), vec![piece(ACK, 0, 100)]);
    // The peer's data (it acknowledges nothing new) is ACKed at once (quick-ACK start).
    assert_eq!(
        t.feed(&data(ACK | PSH, 5001, 1001, b"xy")),
        vec![ack_out(2001, 5003).win(4094)]
    );
}
