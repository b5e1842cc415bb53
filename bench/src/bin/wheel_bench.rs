//! Timer wheel microbenchmark: arm, cancel, re-arm and expire at 1k / 100k / 1M timers.
//! The target: arm and cancel under 50 ns each at 1M timers.
//!
//! Run: `cargo run --release -p xdptcp-bench --bin wheel_bench`

use std::hint::black_box;
use xdptcp::time::{Duration, Instant};
use xdptcp::wheel::{TimerId, TimerWheel};

/// xorshift64*: a deterministic, allocation-free generator for deadlines and indices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
    v
}

/// This thread's CPU time in ns: unlike wall time it excludes preemption, which matters
/// on a shared, oversubscribed machine (cache and TLB pollution still count).
fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn ns_per(start: u64, ops: usize) -> f64 {
    (cpu_ns() - start) as f64 / ops as f64
}

/// Deadline patterns: uniformly spread (the worst case for cache locality) and the
/// common "now + RTO" case, where timers armed together share slots.
#[derive(Clone, Copy)]
enum Pattern {
    Spread10s,
    Rto200ms,
}

fn deadline(p: Pattern, rng: &mut Rng, now: Instant, i: usize) -> Instant {
    match p {
        Pattern::Spread10s => now + Duration::from_micros(1_000 + rng.below(10_000_000)),
        // 200 ms RTO, connections arming in bursts spread over 1 ms.
        Pattern::Rto200ms => now + Duration::from_micros(200_000 + (i as u64 % 1_000)),
    }
}

fn run(n: usize, p: Pattern, name: &str) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
    let start = Instant::from_secs(1_000);
    let mut w = TimerWheel::new(start, Duration::from_millis(1), n);
    w.reserve(n);
    let mut ids: Vec<TimerId> = Vec::with_capacity(n);
    let deadlines: Vec<Instant> = (0..n).map(|i| deadline(p, &mut rng, start, i)).collect();

    // Arm n into an empty wheel (arena pre-reserved).
    let t = cpu_ns();
    for (i, &d) in deadlines.iter().enumerate() {
        ids.push(w.arm(d, i as u32).unwrap());
    }
    let arm_fresh = ns_per(t, n);

    // Steady state at occupancy n: cancel a random live timer and arm a new one.
    let ops = n.clamp(100_000, 1_000_000);
    // Random order, each live timer once per pass (n is a multiple of the chunk size,
    // so a chunk never cancels the same timer twice).
    let perm = shuffled(n, &mut rng);
    let picks: Vec<usize> = (0..ops).map(|k| perm[k % n]).collect();
    let new_deadlines: Vec<Instant> = (0..ops).map(|i| deadline(p, &mut rng, start, i)).collect();
    let (mut cancel_ns, mut arm_ns) = (0u64, 0u64);
    let mut fresh = vec![ids[0]; 1000];
    for chunk in 0..ops / 1000 {
        let range = chunk * 1000..(chunk + 1) * 1000;
        // Gather the victims' ids untimed: a connection holds its id in hot state, so
        // only the wheel's own memory accesses are measured.
        let victims: Vec<TimerId> = picks[range.clone()].iter().map(|&i| ids[i]).collect();
        let t = cpu_ns();
        for &id in &victims {
            assert!(w.cancel(id));
        }
        cancel_ns += cpu_ns() - t;
        let t = cpu_ns();
        for (slot, &d) in fresh.iter_mut().zip(&new_deadlines[range.clone()]) {
            *slot = w.arm(d, 0).unwrap();
        }
        arm_ns += cpu_ns() - t;
        for (&i, &id) in picks[range].iter().zip(&fresh) {
            ids[i] = id;
        }
    }
    let cancel_steady = cancel_ns as f64 / ops as f64;
    let arm_steady = arm_ns as f64 / ops as f64;
    assert_eq!(w.len(), n);

    // Re-arm (cancel + arm, the connection pattern for an earlier deadline) at occupancy n.
    let victims: Vec<TimerId> = perm.iter().map(|&i| ids[i]).collect();
    let t = cpu_ns();
    for (k, &id) in victims.iter().enumerate() {
        assert!(w.cancel(id));
        black_box(w.arm(new_deadlines[ops - 1 - k], 0).unwrap());
    }
    let rearm = ns_per(t, n);

    // Expire all: advance in 1 ms steps (one worker-loop poll per tick) until empty.
    let t = cpu_ns();
    let mut now = start;
    let mut fired = 0usize;
    while !w.is_empty() {
        now += Duration::from_millis(1);
        fired += w.poll_expired(now, |k| {
            black_box(k);
        });
    }
    let expire = ns_per(t, n);
    assert_eq!(fired, n);

    // Cancel n in random order from a full wheel.
    let mut w = TimerWheel::new(start, Duration::from_millis(1), n);
    w.reserve(n);
    ids.clear();
    for (i, &d) in deadlines.iter().enumerate() {
        ids.push(w.arm(d, i as u32).unwrap());
    }
    let victims: Vec<TimerId> = shuffled(n, &mut rng).iter().map(|&i| ids[i]).collect();
    let t = cpu_ns();
    for &id in &victims {
        black_box(w.cancel(id));
    }
    let cancel_all = ns_per(t, n);
    assert!(w.is_empty());

    println!(
        "{n:>9} {name:<10} {arm_fresh:>10.1} {arm_steady:>11.1} {cancel_steady:>14.1} \
         {cancel_all:>12.1} {rearm:>8.1} {expire:>10.1}"
    );
}

/// The hardware floor for any design that keeps per-timer state: one random
/// read-modify-write per operation into an array the size of the wheel's arena
/// (32 bytes per timer), in the same shuffled order the cancel benchmark uses.
fn random_touch_floor(n: usize) -> f64 {
    let mut rng = Rng(0x51_7cc1_b727_220a ^ n as u64);
    let mut arena = vec![[0u64; 4]; n];
    let order = shuffled(n, &mut rng);
    let t = cpu_ns();
    for &i in &order {
        arena[i][0] += 1;
    }
    let ns = ns_per(t, n);
    black_box(&arena);
    ns
}

fn main() {
    println!("timer wheel, 1 ms tick; thread CPU ns per operation (expire: per timer)");
    println!(
        "{:>9} {:<10} {:>10} {:>11} {:>14} {:>12} {:>8} {:>10}",
        "timers",
        "deadlines",
        "arm(fresh)",
        "arm(steady)",
        "cancel(steady)",
        "cancel(all)",
        "rearm",
        "expire"
    );
    for p in [
        (Pattern::Spread10s, "spread10s"),
        (Pattern::Rto200ms, "rto200ms"),
    ] {
        for n in [1_000, 100_000, 1_000_000] {
            run(n, p.0, p.1);
        }
    }
    for n in [1_000, 100_000, 1_000_000] {
        println!(
            "floor: one random 32-byte entry touch at {n:>9} timers: {:.1} ns",
            random_touch_floor(n)
        );
    }
}
