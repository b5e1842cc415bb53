//! One direction of the simulated network: a bounded queue of serialized packets with
//! latency, optional jitter and rate, and seeded loss, duplication, reordering and
//! corruption. Deterministic: the same seed and the same sequence of `send` calls give the
//! same arrivals.
//!
//! The impairment models of the workspace, one per purpose:
//! - this `Link`: a *wire* in virtual time between two sans-IO endpoints. It owns the
//!   packets and their arrival times, so it also models what a wire has and a device wrapper
//!   does not: a serialization rate with a router-like queue and tail drop, and reordering
//!   as an extra delay draw (any number of packets may overtake). Corruption spares the
//!   Ethernet header (`protect`) so that every corrupted packet must be caught by the IPv4
//!   or TCP checksum, which the simulator asserts.
//! - the runtime's `xdptcp::phy::FaultInjector`: a wrapper around a real `Device` (AF_XDP or
//!   in-memory) driven by the worker's clock, with buffers bounded and allocated up front;
//!   it reorders by holding one frame back until the next one passes.
//! - `xdptcp_xdp::loss`: drops and duplicates in the kernel (tc egress), for a Linux peer.
//! - the core's connection tests (`tcp/conn/tests/pair.rs`) keep their own minimal pair of
//!   connections below the endpoint, where this crate cannot reach.
//!
//! Their decisions are a few seeded coin flips each; sharing them would need a crate that
//! both the simulator and the runtime depend on for code that is not protocol, and would
//! change the order of the random draws (and so every seeded test's faults).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::trace::Summary;
use xdptcp_core::time::{Duration, Instant};

/// How one direction of the link behaves. Probabilities are per packet, in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter]`, drawn per packet (packets may overtake).
    pub jitter: Duration,
    /// Probability a packet is dropped.
    pub loss: f64,
    /// Probability a packet is delivered twice (the copy gets its own delay draw).
    pub duplicate: f64,
    /// Probability a packet is held back by an extra uniform `[0, reorder_delay]`, so later
    /// packets overtake it.
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability one byte of the IPv4 header or TCP segment is flipped (XOR with a non-zero
    /// mask). A single flipped byte always changes the 16-bit ones'-complement sum, so the
    /// receiver's IPv4 or TCP checksum must reject it; the simulator asserts so.
    pub corrupt: f64,
    /// Serialization rate in bytes per second; `None` = infinitely fast. With a rate the
    /// queue builds up like a router's, and `queue_limit` is its tail-drop bound.
    pub rate: Option<u64>,
    /// Packets the link holds at once (queued plus propagating). Beyond it: tail drop.
    pub queue_limit: usize,
}

impl Default for LinkConfig {
    /// A clean 10 ms link holding up to 1024 packets.
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(30),
            corrupt: 0.0,
            rate: None,
            queue_limit: 1024,
        }
    }
}

impl LinkConfig {
    pub fn with_loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }
    pub fn with_duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }
    pub fn with_reorder(mut self, p: f64, delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = delay;
        self
    }
    pub fn with_jitter(mut self, j: Duration) -> Self {
        self.jitter = j;
        self
    }
    pub fn with_corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }
    pub fn with_latency(mut self, l: Duration) -> Self {
        self.latency = l;
        self
    }
    pub fn with_rate(mut self, bytes_per_sec: u64) -> Self {
        self.rate = Some(bytes_per_sec);
        self
    }
    pub fn with_queue_limit(mut self, n: usize) -> Self {
        self.queue_limit = n;
        self
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets handed to the link.
    pub sent: u64,
    /// Packets (including duplicates) handed to the receiver's parser.
    pub delivered: u64,
    pub lost: u64,
    /// Tail-dropped because `queue_limit` packets were in the link.
    pub queue_full: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    /// Most packets in the link at once.
    pub max_queue: usize,
}

/// What happened to a packet on `send`, for the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFate {
    Queued {
        duplicated: bool,
        corrupted: bool,
        reordered: bool,
    },
    Lost,
    QueueFull,
}

/// A packet leaving the link.
#[derive(Debug)]
pub struct Arrival {
    pub at: Instant,
    pub bytes: Vec<u8>,
    pub summary: Summary,
    /// The link flipped a byte in it: the receiver must reject it.
    pub corrupted: bool,
}

#[derive(Debug)]
struct InFlight {
    key: (Instant, u64),
    bytes: Vec<u8>,
    summary: Summary,
    corrupted: bool,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// One direction. Memory: at most `queue_limit` packets (plus one duplicate being added).
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    rng: ChaCha8Rng,
    /// Min-heap on (arrival time, send order): ties leave in send order.
    queue: BinaryHeap<Reverse<InFlight>>,
    /// When the transmitter is free again (rate-limited links).
    busy_until: Instant,
    /// Bytes of each frame that are not covered by a checksum (the Ethernet header): the
    /// corruptor never touches them.
    protect: usize,
    stats: LinkStats,
}

impl Link {
    pub fn new(cfg: LinkConfig, rng: ChaCha8Rng, protect: usize) -> Self {
        Link {
            cfg,
            rng,
            queue: BinaryHeap::new(),
            busy_until: Instant::ZERO,
            protect,
            stats: LinkStats::default(),
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Change the behaviour from now on (packets already in the link keep their fate).
    pub fn set_config(&mut self, cfg: LinkConfig) {
        self.cfg = cfg;
    }

    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// When the next packet arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(p)| p.key.0)
    }

    /// Drop everything in flight (a cable pull).
    pub fn clear(&mut self) -> usize {
        let n = self.queue.len();
        self.queue.clear();
        n
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    fn uniform(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.gen_range(0..=max.as_nanos() as u64))
        }
    }

    /// Hand a serialized frame to the link at `now`. `order` is the caller's send counter
    /// (shared by both directions, so that packets arriving at the same instant are handled
    /// in the order they were sent); it is advanced for each copy queued.
    pub fn send(
        &mut self,
        now: Instant,
        mut bytes: Vec<u8>,
        summary: Summary,
        order: &mut u64,
    ) -> SendFate {
        self.stats.sent += 1;
        if self.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return SendFate::Lost;
        }
        if self.queue.len() >= self.cfg.queue_limit {
            self.stats.queue_full += 1;
            return SendFate::QueueFull;
        }
        let depart = match self.cfg.rate {
            Some(rate) if rate > 0 => {
                let start = self.busy_until.max(now);
                let ns = (bytes.len() as u128 * 1_000_000_000 / rate as u128) as u64;
                self.busy_until = start + Duration::from_nanos(ns);
                self.busy_until
            }
            _ => now,
        };
        let reordered = self.chance(self.cfg.reorder);
        let mut extra = self.uniform(self.cfg.jitter);
        if reordered {
            self.stats.reordered += 1;
            extra += self.uniform(self.cfg.reorder_delay);
        }
        let corrupted = self.chance(self.cfg.corrupt) && bytes.len() > self.protect;
        if corrupted {
            self.stats.corrupted += 1;
            let i = self.rng.gen_range(self.protect..bytes.len());
            bytes[i] ^= self.rng.gen_range(1..=255u8);
        }
        let duplicated =
            self.chance(self.cfg.duplicate) && self.queue.len() + 1 < self.cfg.queue_limit;
        if duplicated {
            self.stats.duplicated += 1;
            let at = depart + self.cfg.latency + self.uniform(self.cfg.jitter);
            self.push(at, bytes.clone(), summary, corrupted, order);
        }
        self.push(
            depart + self.cfg.latency + extra,
            bytes,
            summary,
            corrupted,
            order,
        );
        SendFate::Queued {
            duplicated,
            corrupted,
            reordered,
        }
    }

    fn push(
        &mut self,
        at: Instant,
        bytes: Vec<u8>,
        summary: Summary,
        corrupted: bool,
        order: &mut u64,
    ) {
        *order += 1;
        self.queue.push(Reverse(InFlight {
            key: (at, *order),
            bytes,
            summary,
            corrupted,
        }));
        self.stats.max_queue = self.stats.max_queue.max(self.queue.len());
    }

    /// The next packet if it has arrived by `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Arrival> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse(p) = self.queue.pop()?;
        self.stats.delivered += 1;
        Some(Arrival {
            at: p.key.0,
            bytes: p.bytes,
            summary: p.summary,
            corrupted: p.corrupted,
        })
    }

    /// Send order of the next packet (to break ties between the two directions).
    pub fn next_key(&self) -> Option<(Instant, u64)> {
        self.queue.peek().map(|Reverse(p)| p.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn link(cfg: LinkConfig) -> Link {
        Link::new(cfg, ChaCha8Rng::seed_from_u64(7), 14)
    }

    fn pkt(i: u8) -> Vec<u8> {
        vec![i; 60]
    }

    #[test]
    fn clean_link_is_fifo_with_latency() {
        let mut o = 0;
        let mut l = link(LinkConfig::default());
        for i in 0..5 {
            l.send(
                Instant::from_millis(i as u64),
                pkt(i),
                Summary::default(),
                &mut o,
            );
        }
        assert_eq!(l.next_arrival(), Some(Instant::from_millis(10)));
        assert!(l.pop_due(Instant::from_millis(9)).is_none());
        for i in 0..5u8 {
            let a = l.pop_due(Instant::from_secs(1)).unwrap();
            assert_eq!(a.at, Instant::from_millis(10 + i as u64));
            assert_eq!(a.bytes, pkt(i));
            assert!(!a.corrupted);
        }
        assert!(l.is_empty());
        assert_eq!(l.stats().delivered, 5);
    }

    #[test]
    fn rate_serializes_back_to_back_packets() {
        // 60 bytes at 60 000 B/s = 1 ms each.
        let mut o = 0;
        let mut l = link(LinkConfig::default().with_rate(60_000));
        for i in 0..3 {
            l.send(Instant::ZERO, pkt(i), Summary::default(), &mut o);
        }
        let at: Vec<_> = (0..3)
            .map(|_| l.pop_due(Instant::from_secs(1)).unwrap().at.as_millis())
            .collect();
        assert_eq!(at, vec![11, 12, 13]);
    }

    #[test]
    fn queue_limit_tail_drops() {
        let mut o = 0;
        let mut l = link(LinkConfig::default().with_queue_limit(2));
        let fates: Vec<_> = (0..3)
            .map(|i| l.send(Instant::ZERO, pkt(i), Summary::default(), &mut o))
            .collect();
        assert_eq!(fates[2], SendFate::QueueFull);
        assert_eq!(l.len(), 2);
        assert_eq!(l.stats().queue_full, 1);
    }

    #[test]
    fn corruption_spares_the_protected_header_and_flips_one_byte() {
        let mut o = 0;
        let mut l = link(LinkConfig::default().with_corrupt(1.0));
        for i in 0..50 {
            l.send(Instant::ZERO, pkt(i), Summary::default(), &mut o);
        }
        for i in 0..50u8 {
            let a = l.pop_due(Instant::from_secs(1)).unwrap();
            assert!(a.corrupted);
            assert_eq!(&a.bytes[..14], &pkt(i)[..14]);
            let diff = a
                .bytes
                .iter()
                .zip(pkt(i))
                .filter(|(a, b)| **a != *b)
                .count();
            assert_eq!(diff, 1);
        }
    }

    #[test]
    fn loss_and_duplication_rates_are_roughly_right_and_seeded() {
        let run = || {
            let mut o = 0;
            let mut l = link(
                LinkConfig::default()
                    .with_loss(0.2)
                    .with_duplicate(0.1)
                    .with_queue_limit(100_000),
            );
            for i in 0..10_000u32 {
                l.send(Instant::ZERO, pkt(i as u8), Summary::default(), &mut o);
            }
            (l.stats(), l.len())
        };
        let (s, len) = run();
        assert_eq!((s, len), run(), "same seed, same outcome");
        assert!((1_800..2_200).contains(&s.lost), "{s:?}");
        assert!((650..950).contains(&s.duplicated), "{s:?}");
        assert_eq!(len as u64, s.sent - s.lost + s.duplicated);
    }

    #[test]
    fn reordering_lets_later_packets_overtake() {
        let mut o = 0;
        let mut l = link(LinkConfig::default().with_reorder(0.5, Duration::from_millis(50)));
        for i in 0..100u32 {
            l.send(
                Instant::from_millis(i as u64),
                pkt(i as u8),
                Summary::default(),
                &mut o,
            );
        }
        let order: Vec<u8> = (0..100)
            .map(|_| l.pop_due(Instant::from_secs(10)).unwrap().bytes[0])
            .collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]), "no reordering");
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<u8>>());
    }
}
