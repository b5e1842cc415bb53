//! The simulator's own tests, with toy nodes (the endpoint scenarios live in
//! stack/sim/tests/sim_lifecycle.rs).

use super::*;
use xdptcp_core::wire::{SeqNum, TcpFlags, TcpOptions};

/// Client: sends `count` numbered segments, one per millisecond, and records what comes
/// back. Server: echoes every segment with ack = its seq.
#[derive(Default)]
struct Echo {
    is_client: bool,
    count: u32,
    sent: u32,
    next_at: Option<Instant>,
    out: Vec<u32>,
    got: Vec<(Instant, u32)>,
    /// Toy bug switch: a deadline that never moves.
    stuck: bool,
}

fn seg(seq: u32, payload: &[u8]) -> TcpRepr<'_> {
    TcpRepr {
        src_port: 1000,
        dst_port: 2000,
        seq: SeqNum(seq),
        ack: SeqNum(seq),
        flags: TcpFlags::ACK,
        window: 100,
        urgent: 0,
        options: TcpOptions::default(),
        payload,
    }
}

impl Node for Echo {
    fn handle(&mut self, now: Instant, _src: Ipv4Addr, _dst: Ipv4Addr, s: &TcpRepr<'_>) {
        if self.is_client {
            self.got.push((now, s.ack.0));
        } else {
            self.out.push(s.seq.0);
        }
    }
    fn handle_timeout(&mut self, now: Instant) {
        if self.stuck {
            return;
        }
        self.out.push(self.sent);
        self.sent += 1;
        self.next_at = (self.sent < self.count).then(|| now + Duration::from_millis(1));
    }
    fn next_deadline(&self) -> Option<Instant> {
        self.next_at
    }
    fn transmit(&mut self, _now: Instant, out: &mut dyn FnMut(Ipv4Addr, Ipv4Addr, &TcpRepr<'_>)) {
        let (src, dst) = if self.is_client {
            (CLIENT_IP, SERVER_IP)
        } else {
            (SERVER_IP, CLIENT_IP)
        };
        for n in self.out.drain(..) {
            out(src, dst, &seg(n, b"hello"));
        }
    }
}

fn pair(cfg: SimConfig, count: u32) -> Sim<Echo> {
    let start = Instant::from_secs(100);
    let client = Echo {
        is_client: true,
        count,
        next_at: Some(start),
        ..Echo::default()
    };
    let server = Echo::default();
    Sim::new(cfg, start, client, server)
}

#[test]
fn clean_link_round_trips_in_twice_the_latency() {
    let mut sim = pair(SimConfig::symmetric(1, LinkConfig::default()), 5);
    sim.drive(|_| false);
    let got: Vec<_> = sim
        .client
        .got
        .iter()
        .map(|&(t, n)| (t.as_millis(), n))
        .collect();
    assert_eq!(
        got,
        vec![
            (100_020, 0),
            (100_021, 1),
            (100_022, 2),
            (100_023, 3),
            (100_024, 4)
        ]
    );
    // 5 timeouts + 5 arrivals each way.
    assert_eq!(sim.stats().events, 15);
    assert_eq!(sim.stats().timeouts, [5, 0]);
    assert!(sim.links_empty());
}

fn lossy(seed: u64) -> (Vec<(Instant, u32)>, String, SimStats) {
    let link = LinkConfig::default()
        .with_loss(0.1)
        .with_duplicate(0.1)
        .with_reorder(0.2, Duration::from_millis(5))
        .with_jitter(Duration::from_millis(2))
        .with_corrupt(0.2);
    let mut sim = pair(SimConfig::symmetric(seed, link), 200);
    sim.drive(|_| false);
    (
        std::mem::take(&mut sim.client.got),
        sim.trace().to_string(),
        sim.stats(),
    )
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let a = lossy(42);
    assert_eq!(a, lossy(42));
    assert_ne!(a.0, lossy(43).0);
}

#[test]
fn every_corrupted_packet_is_rejected_by_a_checksum() {
    let link = LinkConfig::default().with_corrupt(0.3);
    let mut sim = pair(SimConfig::symmetric(5, link), 300);
    sim.drive(|_| false);
    let (c2s, s2c) = (
        sim.link(Side::Client).stats(),
        sim.link(Side::Server).stats(),
    );
    let st = sim.stats();
    assert!(c2s.corrupted > 50 && s2c.corrupted > 20, "{c2s:?} {s2c:?}");
    // Indexed by receiver.
    assert_eq!(st.rejected, [s2c.corrupted, c2s.corrupted]);
    assert!(st.checksum_rejected[1] > 0);
    // Everything the server got intact was echoed; the client got exactly the intact echoes.
    assert_eq!(
        sim.client.got.len() as u64,
        s2c.delivered - s2c.corrupted,
        "{s2c:?}"
    );
}

#[test]
fn duplication_and_reordering_are_visible_to_the_receiver() {
    let (got, _, _) = lossy(9);
    let seqs: Vec<u32> = got.iter().map(|g| g.1).collect();
    assert!(seqs.windows(2).any(|w| w[0] > w[1]), "no reordering seen");
    let mut sorted = seqs.clone();
    sorted.sort();
    assert!(sorted.windows(2).any(|w| w[0] == w[1]), "no duplicate seen");
}

#[test]
#[should_panic(expected = "without time advancing")]
fn a_deadline_that_never_moves_fails_loudly() {
    let mut sim = pair(SimConfig::symmetric(1, LinkConfig::default()), 5);
    sim.client.stuck = true;
    sim.drive(|_| false);
}

#[test]
#[should_panic(expected = "virtual-time limit")]
fn the_virtual_time_limit_fails_loudly() {
    let mut cfg = SimConfig::symmetric(1, LinkConfig::default());
    cfg.limits.max_time = Duration::from_millis(10);
    let mut sim = pair(cfg, 100);
    sim.drive(|_| false);
}

#[test]
#[should_panic(expected = "event limit 50 hit")]
fn the_event_limit_fails_loudly() {
    let mut cfg = SimConfig::symmetric(1, LinkConfig::default());
    cfg.limits.max_events = 50;
    let mut sim = pair(cfg, 100);
    sim.drive(|_| false);
}

#[test]
fn rate_limited_link_tail_drops_a_burst() {
    // 10 packets of 14+20+20+5 = 59 bytes at once into a 4-packet queue.
    let link = LinkConfig::default().with_queue_limit(4).with_rate(59_000);
    let mut sim = pair(SimConfig::symmetric(1, link), 1);
    sim.server.out.extend(0..10);
    sim.drive(|_| false);
    let got: Vec<_> = sim
        .client
        .got
        .iter()
        .map(|&(t, n)| (t.as_millis(), n))
        .collect();
    // The server's burst: 4 fit, serialized 1 ms apart. The client's packet arrives at
    // 100.011 (1 ms serialization + 10 ms), after the burst's first packet left the queue,
    // so its echo fits; it serializes 100.011..100.012 and arrives at 100.022.
    assert_eq!(
        got,
        vec![
            (100_011, 0),
            (100_012, 1),
            (100_013, 2),
            (100_014, 3),
            (100_022, 0)
        ]
    );
    assert_eq!(sim.link(Side::Server).stats().queue_full, 6);
}
