use super::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

const MS: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

fn drain<K: Copy>(w: &mut TimerWheel<K>, now: Instant) -> Vec<K> {
    let mut out = Vec::new();
    while let Some((_, k)) = w.pop_expired(now) {
        out.push(k);
    }
    out
}

#[test]
fn fires_at_deadline_never_early() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 16);
    w.arm(ms(10), 1u32).unwrap();
    // 10.5 ms rounds up to tick 11.
    w.arm(Instant::from_micros(10_500), 2).unwrap();
    assert_eq!(w.next_expiry(), Some(ms(10)));
    assert_eq!(
        drain(&mut w, Instant::from_nanos(9_999_999)),
        Vec::<u32>::new()
    );
    assert_eq!(drain(&mut w, ms(10)), vec![1]);
    assert_eq!(
        drain(&mut w, Instant::from_nanos(10_999_999)),
        Vec::<u32>::new()
    );
    assert_eq!(w.next_expiry(), Some(ms(11)));
    assert_eq!(drain(&mut w, ms(11)), vec![2]);
    assert!(w.is_empty());
    assert_eq!(w.next_expiry(), None);
}

/// The per-timer memory figures documented in the module header.
#[test]
fn entry_sizes() {
    assert_eq!(core::mem::size_of::<Entry<u32>>(), 24);
    assert_eq!(core::mem::size_of::<Entry<u64>>(), 32);
}

#[test]
fn past_and_present_deadlines_fire_on_next_poll() {
    let mut w = TimerWheel::new(ms(100), MS, 16);
    w.arm(ms(5), 'a').unwrap();
    w.arm(Instant::from_micros(100_400), 'b').unwrap(); // rounds to 101: not due
    w.arm(ms(100), 'c').unwrap();
    assert_eq!(w.next_expiry(), Some(ms(100)));
    let mut due = drain(&mut w, ms(100));
    due.sort_unstable();
    assert_eq!(due, vec!['a', 'c']);
    assert_eq!(drain(&mut w, ms(101)), vec!['b']);
}

#[test]
fn fires_in_deadline_order() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 64);
    let deadlines = [500u64, 3, 70, 3, 4096, 64, 262_144, 1, 65, 500];
    for (i, &d) in deadlines.iter().enumerate() {
        w.arm(ms(d), i).unwrap();
    }
    let fired: Vec<u64> = drain(&mut w, ms(1_000_000))
        .iter()
        .map(|&i| deadlines[i])
        .collect();
    assert_eq!(fired, vec![1, 3, 3, 64, 65, 70, 500, 500, 4096, 262_144]);
}

#[test]
fn cancel_and_stale_ids() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 2);
    let a = w.arm(ms(10), 1u8).unwrap();
    let b = w.arm(ms(10), 2u8).unwrap();
    assert_eq!(w.arm(ms(10), 3), Err(WheelFull));
    assert!(w.cancel(a));
    assert!(!w.cancel(a), "double cancel");
    assert_eq!(w.len(), 1);
    assert_eq!(w.deadline(a), None);
    let c = w.arm(ms(20), 3).unwrap();
    assert!(!w.cancel(a));
    assert_eq!(w.deadline(c), Some(ms(20)));
    assert_eq!(drain(&mut w, ms(15)), vec![2]);
    assert!(!w.cancel(b), "fired id is spent");
    // Entries of a (reclaimed at tick 10) and b are reused; old ids must not reach
    // the new timers.
    let d = w.arm(ms(30), 4).unwrap();
    assert!(d.index == a.index || d.index == b.index);
    assert!(!w.cancel(a));
    assert!(!w.cancel(b));
    assert!(w.cancel(c));
    assert_eq!(drain(&mut w, ms(100)), vec![4]);
    assert!(w.is_empty());
    assert_eq!(w.next_expiry(), None);
    assert!(!w.cancel(d));
    // Out-of-range index.
    assert!(!w.cancel(TimerId { index: 7, gen: 0 }));
}

#[test]
fn cancel_from_middle_head_and_tail_of_a_slot() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 8);
    let ids: Vec<_> = (0..5u32).map(|k| w.arm(ms(7), k).unwrap()).collect();
    assert!(w.cancel(ids[2]));
    assert!(w.cancel(ids[0]));
    assert!(w.cancel(ids[4]));
    let mut due = drain(&mut w, ms(7));
    due.sort_unstable();
    assert_eq!(due, vec![1, 3]);
    // A cancelled timer stays on its slot until the wheel reaches it (a spurious
    // wake-up at worst), then its entry is reclaimed.
    let x = w.arm(ms(9), 9).unwrap();
    assert!(w.cancel(x));
    assert_eq!(w.next_expiry(), Some(ms(9)));
    assert_eq!((w.len(), w.dead), (0, 1));
    assert_eq!(drain(&mut w, ms(9)), Vec::<u32>::new());
    assert_eq!(w.occupied, [0; LEVELS]);
    assert_eq!(w.next_expiry(), None);
    assert_eq!(w.dead, 0);
}

/// When the arena is at its bound (1.5 x max_timers + 1), arming sweeps the cancelled
/// entries instead of growing; live timers are unaffected.
#[test]
fn full_arena_sweeps_cancelled_entries() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 4);
    let ids: Vec<_> = (0..4u32)
        .map(|k| w.arm(ms(100 + k as u64), k).unwrap())
        .collect();
    assert_eq!(w.arm(ms(1), 9), Err(WheelFull));
    for &id in &ids[..3] {
        assert!(w.cancel(id));
    }
    for k in 10..13u32 {
        w.arm(ms(k as u64), k).unwrap();
    }
    assert_eq!(w.entries.len(), 7, "bound 4 + 4/2 + 1");
    assert_eq!((w.len(), w.dead), (4, 3));
    assert!(w.cancel(ids[3]));
    w.arm(ms(50), 50).unwrap(); // arena full: sweep reclaims 4 dead entries
    assert_eq!(w.entries.len(), 7);
    assert_eq!((w.len(), w.dead), (4, 0));
    assert_eq!(drain(&mut w, ms(1000)), vec![10, 11, 12, 50]);
    assert_eq!(w.next_expiry(), None);
}

/// The documented one-entry-per-connection pattern: a later deadline keeps the armed
/// entry (which then fires early for the connection), an earlier one re-arms.
#[test]
fn rearm_pattern() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 8);
    let mut armed = (w.arm(ms(200), 'c').unwrap(), ms(200));
    // An ACK pushes the RTO to 250 ms: keep the entry.
    let rto = ms(250);
    assert!(rto >= armed.1);
    // A delayed ACK due at 40 ms: earlier, so re-arm.
    assert!(w.cancel(armed.0));
    armed = (w.arm(ms(40), 'c').unwrap(), ms(40));
    assert_eq!(w.len(), 1);
    assert_eq!(drain(&mut w, ms(39)), Vec::<char>::new());
    let (id, key) = w.pop_expired(ms(40)).unwrap();
    assert_eq!((id, key), (armed.0, 'c'));
    assert!(!w.cancel(id), "a fired id is spent");
    // The connection re-arms for its RTO.
    w.arm(rto, 'c').unwrap();
    assert_eq!(drain(&mut w, ms(249)), Vec::<char>::new());
    assert_eq!(drain(&mut w, ms(250)), vec!['c']);
}

/// Deadlines on both sides of every level boundary (64^L ticks), seen from several
/// starting ticks, including starts just below a boundary. Each must fire exactly at
/// its tick: not on a poll one nanosecond earlier (which forces all cascades up to it),
/// and on the poll at its tick.
#[test]
fn cascades_across_every_level_boundary() {
    let tick = Duration::from_micros(1);
    for start in [0u64, 1, 63, 12_345, (1 << 30) - 1, (1 << 36) - 2] {
        let mut deadlines = Vec::new();
        for level in 0..=LEVELS as u32 {
            let b = 1u64 << (level * SLOT_BITS);
            for d in [b - 1, b, b + 1, 2 * b - 1, 63 * b, 64 * b - 1] {
                deadlines.push(start + d.max(1));
            }
        }
        deadlines.sort_unstable();
        deadlines.dedup();
        let mut w = TimerWheel::new(Instant::from_micros(start), tick, 1024);
        for &d in &deadlines {
            w.arm(Instant::from_micros(d), d).unwrap();
        }
        for &d in &deadlines {
            let before = Instant::from_nanos(d * 1000 - 1);
            assert_eq!(
                drain(&mut w, before),
                Vec::<u64>::new(),
                "start {start} d {d}"
            );
            assert!(w.next_expiry().unwrap() <= Instant::from_micros(d));
            assert_eq!(
                drain(&mut w, Instant::from_micros(d)),
                vec![d],
                "start {start}"
            );
        }
        assert!(w.is_empty());
    }
}

#[test]
fn overflow_beyond_range_is_reinserted() {
    let range = 1u64 << RANGE_BITS;
    let mut w = TimerWheel::new(Instant::from_nanos(5), Duration::from_nanos(1), 8);
    let far = [range + 4, range + 6, 3 * range + 1, 7 * range];
    for &d in far.iter().rev() {
        w.arm(Instant::from_nanos(d), d).unwrap();
    }
    w.arm(Instant::from_nanos(10), 10).unwrap();
    assert_eq!(drain(&mut w, Instant::from_nanos(10)), vec![10]);
    // Only the overflow list is left: the wheel wakes at the earliest one's 2^36 epoch.
    assert_eq!(w.next_expiry(), Some(Instant::from_nanos(range)));
    assert_eq!(w.overflow_min, range + 4);
    for &d in &far {
        assert_eq!(drain(&mut w, Instant::from_nanos(d - 1)), Vec::<u64>::new());
        assert_eq!(drain(&mut w, Instant::from_nanos(d)), vec![d]);
    }
    assert!(w.is_empty());
}

#[test]
fn time_going_backwards_is_ignored() {
    let mut w = TimerWheel::new(Instant::ZERO, MS, 4);
    w.arm(ms(105), 105u32).unwrap();
    assert_eq!(drain(&mut w, ms(100)), Vec::<u32>::new());
    assert_eq!(drain(&mut w, ms(50)), Vec::<u32>::new());
    assert_eq!(w.now(), ms(100));
    w.arm(ms(101), 101).unwrap();
    w.arm(ms(99), 99).unwrap();
    assert_eq!(drain(&mut w, ms(60)), vec![99]);
    assert_eq!(drain(&mut w, ms(104)), vec![101]);
    assert_eq!(drain(&mut w, ms(105)), vec![105]);
}

/// A far overflow deadline is reached in one poll without walking every epoch, and a
/// cancelled overflow timer leaves no stale bound behind for the next one.
#[test]
fn far_jump_and_cancelled_overflow() {
    let range = 1u64 << RANGE_BITS;
    let mut w = TimerWheel::new(Instant::ZERO, Duration::from_nanos(1), 4);
    let a = w.arm(Instant::from_nanos(2 * range), 1u8).unwrap();
    assert!(w.cancel(a));
    assert_eq!(
        w.next_expiry(),
        Some(Instant::from_nanos(2 * range)),
        "dead entry"
    );
    assert_eq!(
        drain(&mut w, Instant::from_nanos(5 * range)),
        Vec::<u8>::new()
    );
    assert_eq!(w.next_expiry(), None);
    let far = 1u64 << 62;
    w.arm(Instant::from_nanos(far + 3), 2).unwrap();
    w.arm(Instant::from_nanos(7 * range), 3).unwrap();
    assert_eq!(w.next_expiry(), Some(Instant::from_nanos(7 * range)));
    assert_eq!(drain(&mut w, Instant::from_nanos(7 * range)), vec![3]);
    assert_eq!(w.next_expiry(), Some(Instant::from_nanos(far)));
    assert_eq!(
        drain(&mut w, Instant::from_nanos(far + 2)),
        Vec::<u8>::new()
    );
    assert_eq!(w.next_expiry(), Some(Instant::from_nanos(far + 3)));
    assert_eq!(drain(&mut w, Instant::from_nanos(far + 3)), vec![2]);
}

#[test]
fn end_of_time_does_not_overflow() {
    let max = Instant::from_nanos(u64::MAX);
    let mut w = TimerWheel::new(
        Instant::from_nanos(u64::MAX - 100),
        Duration::from_nanos(1),
        4,
    );
    w.arm(max, 1u8).unwrap();
    w.arm(Instant::from_nanos(u64::MAX - 50), 2).unwrap();
    assert_eq!(drain(&mut w, Instant::from_nanos(u64::MAX - 1)), vec![2]);
    assert_eq!(drain(&mut w, max), vec![1]);
    // A coarse tick: a deadline whose rounded-up tick lies past the end of time never fires.
    let mut w = TimerWheel::new(Instant::ZERO, Duration::from_secs(3), 4);
    w.arm(max, 3u8).unwrap();
    assert_eq!(
        drain(&mut w, Instant::from_nanos(u64::MAX - 1)),
        Vec::<u8>::new()
    );
    assert_eq!(w.len(), 1);
}

/// 1M timers with deadlines spread over 10 s, polled at irregular steps: each fires
/// exactly once, never before its deadline, and on the first poll at or after its
/// deadline rounded up to the tick. The arena is bounded by `max_timers`.
#[test]
fn one_million_timers_fire_exactly_once() {
    const N: usize = 1_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let start = Instant::from_millis(1_000);
    let mut w = TimerWheel::new(start, MS, N);
    w.reserve(N);
    let deadlines: Vec<Instant> = (0..N)
        .map(|_| start + Duration::from_micros(rng.gen_range(0..10_000_000)))
        .collect();
    for (k, &d) in deadlines.iter().enumerate() {
        w.arm(d, k as u32).unwrap();
    }
    assert_eq!(w.arm(start, 0), Err(WheelFull));
    assert_eq!(w.len(), N);
    assert!(w.entries.capacity() <= N);
    let mut fired = vec![false; N];
    let (mut prev, mut now, mut count) = (Instant::from_nanos(start.as_nanos() - 1), start, 0);
    while count < N {
        while let Some((_, k)) = w.pop_expired(now) {
            let d = deadlines[k as usize];
            assert!(!fired[k as usize], "fired twice");
            fired[k as usize] = true;
            assert!(d <= now, "early");
            // Rounded up to the tick, the deadline was after the previous poll.
            let rounded = Instant::from_millis(d.as_nanos().div_ceil(1_000_000));
            assert!(
                rounded > prev,
                "late: {d:?} due at {rounded:?}, prev poll {prev:?}"
            );
            count += 1;
        }
        prev = now;
        now += Duration::from_micros(rng.gen_range(1..5_000));
        assert!(
            now < start + Duration::from_secs(12),
            "timers left: {}",
            w.len()
        );
    }
    assert!(w.is_empty());
    assert_eq!(w.next_expiry(), None);
}

#[derive(Debug, Clone)]
enum Op {
    Arm(u64),
    Cancel(usize),
    Reset(usize, u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    // Delays in ticks, skewed so that every level and the overflow list get hit.
    let delay = (0u32..40, any::<u64>()).prop_map(|(bits, r)| r & ((1u64 << bits) - 1));
    prop_oneof![
        3 => delay.clone().prop_map(Op::Arm),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), delay.clone()).prop_map(|(i, d)| Op::Reset(i, d)),
        3 => delay.prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Against a BTreeMap reference: after each step the same timers are armed, every
    /// poll fires exactly the timers with deadline tick <= now in deadline order, and
    /// `next_expiry` never lies after the earliest deadline.
    #[test]
    fn matches_btreemap_model(
        tick_ns in prop_oneof![Just(1u64), Just(1_000), Just(1_000_000)],
        start in any::<u64>().prop_map(|s| s >> 8),
        sub_tick in any::<u64>(),
        ops in prop::collection::vec(op(), 1..200),
        max in prop_oneof![Just(8usize), Just(64), Just(1 << 16)],
    ) {
        let tick = Duration::from_nanos(tick_ns);
        let mut now = start;
        let mut w = TimerWheel::new(Instant::from_nanos(now), tick, max);
        // (deadline tick, arm sequence) -> key; live: key -> (id, model key)
        let mut model: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut live: Vec<(TimerId, (u64, u64))> = Vec::new();
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Arm(d) | Op::Reset(_, d) if matches!(op, Op::Arm(_)) || live.is_empty() => {
                    let deadline = now.saturating_add(d.saturating_mul(tick_ns)).saturating_add(sub_tick % tick_ns);
                    let Ok(id) = w.arm(Instant::from_nanos(deadline), seq) else {
                        prop_assert_eq!(live.len(), max);
                        continue;
                    };
                    let mk = (deadline.div_ceil(tick_ns), seq);
                    model.insert(mk, seq);
                    live.push((id, mk));
                    seq += 1;
                }
                Op::Cancel(i) if !live.is_empty() => {
                    let (id, mk) = live.swap_remove(i % live.len());
                    prop_assert!(w.cancel(id));
                    prop_assert!(!w.cancel(id));
                    prop_assert!(model.remove(&mk).is_some());
                }
                Op::Cancel(_) => {}
                Op::Reset(i, d) => {
                    // Re-arm: cancel and arm at the new deadline under the same key.
                    let i = i % live.len();
                    let deadline = now.saturating_add(d.saturating_mul(tick_ns));
                    prop_assert!(w.cancel(live[i].0));
                    let key = model.remove(&live[i].1).unwrap();
                    live[i].0 = w.arm(Instant::from_nanos(deadline), key).unwrap();
                    live[i].1 = (deadline.div_ceil(tick_ns), live[i].1 .1);
                    model.insert(live[i].1, key);
                }
                Op::Arm(_) => unreachable!(),
                Op::Advance(d) => {
                    now = now.saturating_add(d.saturating_mul(tick_ns) / 3);
                    let now_tick = now / tick_ns;
                    let mut fired = Vec::new();
                    while let Some((id, k)) = w.pop_expired(Instant::from_nanos(now)) {
                        prop_assert!(!w.cancel(id));
                        fired.push(k);
                    }
                    let due: Vec<(u64, u64)> = model.range(..(now_tick + 1, 0)).map(|(&mk, _)| mk).collect();
                    // Same set; order by deadline tick (ties in any order).
                    let mut got: Vec<(u64, u64)> = fired.iter().map(|&k| {
                        live.iter().find(|(_, mk)| mk.1 == k).unwrap().1
                    }).collect();
                    let ticks: Vec<u64> = got.iter().map(|mk| mk.0).collect();
                    prop_assert!(ticks.windows(2).all(|p| p[0] <= p[1]), "order {:?}", ticks);
                    got.sort_unstable();
                    prop_assert_eq!(&got, &due);
                    for mk in &due {
                        model.remove(mk);
                    }
                    live.retain(|(_, mk)| mk.0 > now_tick);
                }
            }
            prop_assert_eq!(w.len(), model.len());
            prop_assert!(w.entries.len() <= max + max / 2 + 1);
            match model.keys().next() {
                None if w.dead == 0 => prop_assert_eq!(w.next_expiry(), None),
                None => {}
                Some(&(t, _)) => {
                    let ne = w.next_expiry().unwrap();
                    prop_assert!(ne <= Instant::from_nanos(t.saturating_mul(tick_ns)));
                }
            }
        }
    }
}
