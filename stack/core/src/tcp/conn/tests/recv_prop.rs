//! Property: a byte stream cut into random segments (overlapping, some beyond the window),
//! with random loss, duplication and reordering, fed to a receiving connection that reads at
//! random moments, is delivered exactly: every byte once, in order, uncorrupted, then the
//! FIN. A model sender retransmits from our ACKs (go-back-N within the advertised window).
//! Along the way every ACK is checked: cumulative ACK never decreasing, right edge never
//! moving left (scaled windows: the documented retraction below one granule at most), SACK
//! blocks above the ACK and inside the window (a first block below the ACK or inside
//! another is a D-SACK), buffer and reassembly within their bounds.

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::tcp::conn::reassembly::MAX_RANGES;
use crate::tcp::conn::state::Inner;

#[derive(Debug, Clone, Copy)]
struct Net {
    loss: f64,
    dup: f64,
    /// Largest segment the model sends.
    max_seg: usize,
    sack: bool,
    timestamps: bool,
    /// rmem 2^17 with window scaling (shift 2) instead of 4096 unscaled.
    scaled: bool,
}

struct Check {
    ack: u32,
    edge: u32,
    gran: u32,
    sack: bool,
}

impl Check {
    fn ack(&mut self, o: &Out) {
        assert!(o.flags.ack(), "{o:?}");
        assert!(
            o.ack.wrapping_sub(self.ack) as i32 >= 0,
            "ACK went back: {o:?}"
        );
        let edge = o.ack.wrapping_add((o.window as u32) * self.gran);
        let back = self.edge.wrapping_sub(edge) as i32;
        assert!(
            back < self.gran as i32,
            "right edge moved left by {back}: {o:?}"
        );
        let blocks = o.options.sacks();
        assert!(self.sack || blocks.is_empty());
        for (i, &(l, r)) in blocks.iter().enumerate() {
            assert!(l.lt(r), "empty block {o:?}");
            let dsack = i == 0
                && (r.le(SeqNum(o.ack))
                    || blocks[1..].iter().any(|&(l2, r2)| l2.le(l) && r.le(r2)));
            if !dsack {
                assert!(l.gt(SeqNum(o.ack)), "block at or below ACK: {o:?}");
                assert!(
                    r.le(SeqNum(edge.max(self.edge))),
                    "block beyond window {o:?}"
                );
            }
        }
        self.ack = o.ack;
        if (edge.wrapping_sub(self.edge) as i32) > 0 {
            self.edge = edge;
        }
    }
}

fn run(seed: u64, net: Net) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (rmem, shift) = if net.scaled { (1 << 17, 2) } else { (4096, 0) };
    let cfg = TcpConfig {
        sack: net.sack,
        timestamps: net.timestamps,
        window_scaling: net.scaled,
        rmem,
        ..cfg()
    };
    let mut syn = peer_syn();
    syn.options.sack_permitted = net.sack;
    syn.options.window_scale = net.scaled.then_some(0);
    syn.options.timestamp = net.timestamps.then_some((1, 0));
    let mut t = syn_received_with(&cfg, &syn);
    let mut third = seg(ACK, 5001, 1001);
    third.options.timestamp = net.timestamps.then_some((1, 1_000_000));
    t.feed(&third);
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.c.negotiated().rcv_shift, shift);

    let len = rng.gen_range(1..=(net.max_seg * 200).min(40_000));
    let stream: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    let base = 5001u32;
    let mut chk = Check {
        ack: base,
        edge: base + rmem.min(65535) as u32,
        gran: 1 << shift,
        sack: net.sack,
    };
    let mut got = Vec::with_capacity(len);
    let mut tsval = 2u32;
    let mut done = false;
    for _round in 0..20_000 {
        // The model sender: pieces of [ACK, right edge (+ a little beyond)).
        let from = chk.ack.wrapping_sub(base) as usize;
        let to = (chk.edge.wrapping_sub(base) as usize + rng.gen_range(0..64))
            .min(from + 64 * net.max_seg) // at most ~64 segments per round
            .min(len);
        let mut segs = Vec::new();
        let mut at = from.saturating_sub(rng.gen_range(0..3)); // some overlap with acked data
        while at < to || (at == len && segs.is_empty()) {
            let n = rng.gen_range(1..=net.max_seg).min(len - at);
            segs.push((at, n));
            if at + n >= len {
                break;
            }
            // Next piece overlaps this one sometimes.
            at = (at + n).saturating_sub(if rng.gen_bool(0.2) {
                rng.gen_range(0..n)
            } else {
                0
            });
        }
        let mut wire = Vec::new();
        for s in segs {
            if !rng.gen_bool(net.loss) {
                wire.push(s);
            }
            if rng.gen_bool(net.dup) {
                wire.push(s);
            }
        }
        wire.shuffle(&mut rng);
        tsval += 1;
        for (at, n) in wire {
            let fin = at + n == len;
            let mut r = TcpRepr {
                payload: &stream[at..at + n],
                ..seg(if fin { FIN | ACK } else { ACK }, base + at as u32, 1001)
            };
            r.options.timestamp = net.timestamps.then_some((tsval, 1_000_000));
            for o in t.feed(&r) {
                chk.ack(&o);
            }
            check_bounds(&t, rmem);
        }
        // Time passes (delayed ACKs fire); the application reads a random amount.
        t.now += ms(rng.gen_range(0..60));
        t.c.on_timeout(t.now);
        for o in t.out() {
            chk.ack(&o);
        }
        let mut buf = vec![0u8; rng.gen_range(0..3 * rmem / 2)];
        let n = t.recv(&mut buf);
        got.extend_from_slice(&buf[..n]);
        assert_eq!(got[..], stream[..got.len()], "delivered bytes differ");
        for o in t.out() {
            chk.ack(&o);
        }
        if got.len() == len && t.state() == State::CloseWait {
            done = true;
            break;
        }
    }
    assert!(done, "stream not delivered: {} of {len} bytes", got.len());
    assert_eq!(t.c.recv_available(), 0);
    assert_eq!(chk.ack, base + len as u32 + 1, "FIN acknowledged");
}

/// Buffered plus held bytes, and the allocation, never exceed rmem; held ranges never exceed
/// MAX_RANGES.
fn check_bounds(t: &T, rmem: usize) {
    if let Inner::Established(s) = &t.c.inner {
        assert!(s.rcv.unread() + s.rcv.ooo().held() <= rmem);
        assert!(s.rcv.allocated() <= rmem, "buffer allocation beyond rmem");
        assert!(s.rcv.ooo().ranges().len() <= MAX_RANGES);
    }
}

fn net() -> impl Strategy<Value = Net> {
    (
        prop_oneof![Just(0.0), Just(0.05), Just(0.2), Just(0.5)],
        prop_oneof![Just(0.0), Just(0.1), Just(0.3)],
        prop_oneof![Just(1usize), Just(7), Just(536), Just(1460)],
        any::<(bool, bool, bool)>(),
    )
        .prop_map(|(loss, dup, max_seg, (sack, timestamps, scaled))| Net {
            loss,
            dup,
            max_seg,
            sack,
            timestamps,
            scaled,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn any_segmentation_order_loss_and_duplication_delivers_the_stream(
        seed in any::<u64>(),
        net in net(),
    ) {
        run(seed, net);
    }
}

/// A few fixed hard cases, always run: tiny segments with heavy loss and duplication.
#[test]
fn tiny_segments_heavy_loss() {
    for seed in 0..4 {
        let n = Net {
            loss: 0.5,
            dup: 0.3,
            max_seg: 7,
            sack: seed % 2 == 0,
            timestamps: seed < 2,
            scaled: seed % 3 == 0,
        };
        run(seed, n);
    }
}

/// Arbitrary text segments around the window (any offsets, lengths, FIN / URG, urgent
/// pointers, timestamps) with random reads and timer runs, on a connection with SACK,
/// timestamps and window scaling: never a panic, and the bounds hold after every step.
fn arbitrary_steps() -> impl Strategy<Value = Vec<(i32, usize, u8, u16, u32, usize)>> {
    prop::collection::vec(
        (
            -70_000i32..200_000,
            0usize..3000,
            any::<u8>(),
            any::<u16>(),
            any::<u32>(),
            0usize..5000,
        ),
        1..60,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn arbitrary_text_keeps_bounds(steps in arbitrary_steps()) {
        static BYTES: [u8; 3000] = [0x42; 3000];
        let cfg = TcpConfig {
            sack: true,
            timestamps: true,
            window_scaling: true,
            rmem: 1 << 17,
            ..cfg()
        };
        let mut syn = peer_syn();
        syn.options.sack_permitted = true;
        syn.options.window_scale = Some(5);
        syn.options.timestamp = Some((1, 0));
        let mut t = syn_received_with(&cfg, &syn);
        let mut third = seg(ACK, 5001, 1001);
        third.options.timestamp = Some((1, 1_000_000));
        t.feed(&third);
        for (off, len, bits, urgent, tsval, read) in steps {
            let mut flags = ACK;
            if bits & 1 != 0 {
                flags = flags | FIN;
            }
            if bits & 2 != 0 {
                flags = flags | TcpFlags::URG;
            }
            let mut r = data(flags, 5001u32.wrapping_add(off as u32), 1001, &BYTES[..len]);
            r.urgent = urgent;
            r.options.timestamp = (bits & 4 != 0).then_some((tsval, 1_000_000));
            let _ = t.c.on_segment(t.now, &r, &mut t.lim, &mut t.pool);
            let out = t.out();
            prop_assert!(out.len() <= 2);
            check_bounds(&t, 1 << 17);
            let mut buf = vec![0u8; read];
            t.recv(&mut buf);
            t.now += ms(bits as u64 % 50);
            t.c.on_timeout(t.now);
            t.out();
        }
    }
}
