//! Bulk transfers between two endpoints over the
//! deterministic simulated network (stack/sim/src), client -> server, server -> client and
//! both at once, under seeded loss of 0 / 1 / 5 / 10 %, reordering, duplication and
//! corruption, over many seeds.
//!
//! Byte-exact with bounded memory: each direction's data is a ChaCha8 stream seeded per run
//! and direction, generated in fixed 64 KiB chunks; the receiver regenerates the same stream
//! and compares every byte as it reads (the first differing offset is reported), and both
//! ends also keep a streaming SipHash-1-3 128 of what was sent and what was read, compared at
//! the end. After the data each end closes: the run must end with both connections gone, no
//! error, and both end-of-streams seen.
//!
//! Every run is bounded in virtual time and events (`Limits`); hitting a bound, an error, a
//! mismatch or a premature end panics with the seed, the link settings and (printed by the
//! simulator) the packet trace.
//!
//! Run: `cargo test --release -p xdptcp --test sim_transfer -- --nocapture` (the summary
//! lines per loss rate are printed).

use std::net::SocketAddrV4;
use std::panic::{catch_unwind, AssertUnwindSafe};

use siphasher::sip128::Hasher128;

use xdptcp_core::tcp::conn::{Event, SendError};
use xdptcp_core::tcp::endpoint::{ConnId, Endpoint, EndpointEvent, EndpointSecrets};
use xdptcp_core::tcp::TcpConfig;
use xdptcp_core::time::{Duration, Instant};
use xdptcp_sim::scenario::{EPHEMERAL, SERVER_PORT};
use xdptcp_sim::{
    set_quiet_traces, Limits, LinkConfig, LinkStats, Side, Sim, SimConfig, CLIENT_IP, SERVER_IP,
};

use stream::{Sink, Source, CHUNK};
use xdptcp_sim::stream;

const MIB: u64 = 1 << 20;

/// One application end: writes its source, reads into its sink, FIN when its data is out
/// (a pure receiver after end-of-stream), `close` once both FINs are done.
struct App {
    side: Side,
    id: Option<ConnId>,
    src: Source,
    sink: Sink,
    fin_sent: bool,
    peer_fin: bool,
    closed: bool,
    error: Option<String>,
}

impl App {
    fn new(side: Side, seed: u64, out: u64, inc: u64) -> Self {
        let (tx, rx) = match side {
            Side::Client => (1, 2),
            Side::Server => (2, 1),
        };
        App {
            side,
            id: None,
            src: Source::new(seed, tx, out),
            sink: Sink::new(seed, rx, inc),
            fin_sent: false,
            peer_fin: false,
            closed: false,
            error: None,
        }
    }

    /// One turn: read all, write what fits, FIN / close when due. Returns whether it did
    /// anything.
    fn turn(&mut self, ep: &mut Endpoint, now: Instant, buf: &mut [u8]) -> bool {
        let Some(id) = self.id else { return false };
        if self.closed {
            return false;
        }
        let mut acted = false;
        loop {
            match ep.recv(id, buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    acted = true;
                    if let Err(e) = self.sink.take(&buf[..n]) {
                        self.error.get_or_insert(e.to_string());
                        return true;
                    }
                }
            }
        }
        while !self.src.done() {
            match ep.send(now, id, self.src.pending()) {
                Ok(0) | Err(SendError::Full) | Err(SendError::NotConnected) => break,
                Ok(n) => {
                    self.src.consume(n);
                    acted = true;
                }
                Err(e) => {
                    self.error.get_or_insert(format!("send: {e}"));
                    return true;
                }
            }
        }
        let sender = self.src.total > 0;
        if !self.fin_sent && self.src.done() && (sender || self.peer_fin) {
            let _ = ep.shutdown_write(now, id);
            self.fin_sent = true;
            acted = true;
        }
        if self.fin_sent && self.peer_fin && self.sink.received == self.sink.total {
            let _ = ep.close(now, id);
            self.closed = true;
            acted = true;
        }
        acted
    }
}

/// What a finished run measured.
#[derive(Debug, Clone, Copy, Default)]
struct Report {
    /// Virtual time of the whole run (including TIME-WAIT, 2 MSL = 60 s).
    virt: Duration,
    /// Virtual time until both ends had read all data.
    data: Duration,
    events: u64,
    links: [LinkStats; 2],
    rejected: u64,
}

/// A transfer: `c2s` bytes client -> server and `s2c` bytes server -> client at once.
#[derive(Debug, Clone)]
struct Run {
    seed: u64,
    link: LinkConfig,
    tcp: TcpConfig,
    c2s: u64,
    s2c: u64,
}

impl Run {
    fn new(seed: u64, link: LinkConfig, c2s: u64, s2c: u64) -> Self {
        Run {
            seed,
            link,
            tcp: TcpConfig::default(),
            c2s,
            s2c,
        }
    }

    fn with_tcp(mut self, tcp: TcpConfig) -> Self {
        self.tcp = tcp;
        self
    }

    /// Bounds scaled to the data: ~2 events per segment each way on a clean link; 20 per
    /// segment plus a fixed allowance covers heavy loss with room. Virtual time: the worst
    /// case here (10 % loss, default buffers) moves well over 100 KB/s; below 20 KB/s the
    /// run is stuck.
    fn limits(&self) -> Limits {
        let segs = (self.c2s + self.s2c) / 1000;
        Limits {
            max_events: 200_000 + 20 * segs,
            max_time: Duration::from_secs(600 + (self.c2s + self.s2c) / 20_000),
        }
    }

    fn label(&self) -> String {
        let l = &self.link;
        format!(
            "transfer seed {} c2s {} B s2c {} B loss {} dup {} reorder {} corrupt {} jitter {:?} \
             rate {:?} queue {} rmem {} wmem {}",
            self.seed,
            self.c2s,
            self.s2c,
            l.loss,
            l.duplicate,
            l.reorder,
            l.corrupt,
            l.jitter,
            l.rate,
            l.queue_limit,
            self.tcp.rmem,
            self.tcp.wmem
        )
    }

    /// Runs the transfer to the end; panics (with the trace) on any failure.
    fn go(&self) -> Report {
        let client = Endpoint::new(
            self.tcp.clone(),
            EndpointSecrets::from_seed(self.seed.wrapping_mul(2)),
            EPHEMERAL,
        );
        let server = Endpoint::new(
            self.tcp.clone(),
            EndpointSecrets::from_seed(self.seed.wrapping_mul(2) + 1),
            50000..=50999,
        );
        let mut cfg = SimConfig::symmetric(self.seed, self.link.clone());
        cfg.limits = self.limits();
        cfg.trace_cap = 200;
        let start = Instant::from_secs(1_000) + Duration::from_nanos(self.seed % 1_000_000);
        let mut sim = Sim::new(cfg, start, client, server);
        sim.set_label(self.label());

        let mut c = App::new(Side::Client, self.seed, self.c2s, self.s2c);
        let mut s = App::new(Side::Server, self.seed, self.s2c, self.c2s);
        let l = sim
            .server
            .listen(SERVER_IP, SERVER_PORT, 16)
            .unwrap_or_else(|e| panic!("listen: {e}"));
        let remote = SocketAddrV4::new(SERVER_IP, SERVER_PORT);
        c.id = Some(
            sim.client
                .connect(start, CLIENT_IP, remote)
                .unwrap_or_else(|e| panic!("connect: {e}")),
        );
        let mut buf = vec![0u8; CHUNK];
        let mut data_done = None;
        sim.drive(|sim| {
            let now = sim.now();
            let mut acted = false;
            let all_read = |a: &App| a.sink.received == a.sink.total;
            if data_done.is_none() && all_read(&c) && all_read(&s) {
                data_done = Some(sim.elapsed());
            }
            for app in [&mut c, &mut s] {
                let side = app.side;
                while let Some(ev) = sim.node(side).poll_event() {
                    acted = true;
                    match ev {
                        EndpointEvent::Incoming(lid) if lid == l => {
                            while let Some(id) = sim.server.accept(l) {
                                if app.id.replace(id).is_some() {
                                    sim.fail("a second connection was accepted");
                                }
                            }
                        }
                        EndpointEvent::Incoming(_) => sim.fail("unknown listener"),
                        EndpointEvent::Conn(id, e) => {
                            if app.id != Some(id) {
                                sim.fail(&format!("{side:?}: {e:?} for unknown {id:?}"));
                            }
                            match e {
                                Event::PeerFin => app.peer_fin = true,
                                Event::Error(err) => {
                                    app.error.get_or_insert(format!("{err:?}"));
                                }
                                _ => {}
                            }
                        }
                    }
                }
                acted |= app.turn(sim.node(side), now, &mut buf);
                if let Some(e) = &app.error {
                    sim.fail(&format!("{side:?}: {e}"));
                }
            }
            acted
        });
        for app in [&c, &s] {
            let side = app.side;
            let (src_sent, got) = (app.src.sent, app.sink.received);
            if !app.closed || !app.peer_fin {
                sim.fail(&format!(
                    "{side:?} stopped early: sent {src_sent}/{}, read {got}/{}, FIN sent {}, \
                     peer FIN {}, closed {}",
                    app.src.total, app.sink.total, app.fin_sent, app.peer_fin, app.closed
                ));
            }
        }
        for (a, b) in [(&c, &s), (&s, &c)] {
            if a.src.hash.finish128() != b.sink.hash.finish128() {
                sim.fail(&format!("{:?} -> {:?}: hash differs", a.side, b.side));
            }
        }
        for side in [Side::Client, Side::Server] {
            if sim.node(side).connection_count() != 0 {
                sim.fail(&format!("{side:?}: a connection is left"));
            }
        }
        let st = sim.stats();
        Report {
            virt: sim.elapsed(),
            data: data_done.unwrap_or_default(),
            events: st.events,
            links: [
                sim.link(Side::Client).stats(),
                sim.link(Side::Server).stats(),
            ],
            rejected: st.rejected[0] + st.rejected[1],
        }
    }
}

fn panic_msg(e: &(dyn std::any::Any + Send)) -> String {
    let m = e
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    m.chars().take(600).collect()
}

/// Runs every run (the trace of the first failure is printed, later ones only listed),
/// prints one summary line, and fails if any run failed.
fn sweep(name: &str, runs: impl IntoIterator<Item = Run>) {
    let mut failures = Vec::new();
    let mut n = 0u32;
    let mut bytes = 0u64;
    let mut tot = Report::default();
    let mut max_virt = Duration::ZERO;
    for run in runs {
        n += 1;
        set_quiet_traces(!failures.is_empty());
        let r = catch_unwind(AssertUnwindSafe(|| run.go()));
        set_quiet_traces(false);
        match r {
            Ok(rep) => {
                if run.c2s + run.s2c >= 8 * MIB {
                    println!(
                        "  seed {} c2s {} MiB s2c {} MiB: data in {:?} virtual ({:.0} KB/s), \
                         {} events, packets c2s {} sent / {} lost, s2c {} sent / {} lost",
                        run.seed,
                        run.c2s / MIB,
                        run.s2c / MIB,
                        rep.data,
                        (run.c2s + run.s2c) as f64 / rep.data.as_secs_f64() / 1e3,
                        rep.events,
                        rep.links[0].sent,
                        rep.links[0].lost,
                        rep.links[1].sent,
                        rep.links[1].lost
                    );
                }
                bytes += run.c2s + run.s2c;
                tot.events += rep.events;
                tot.rejected += rep.rejected;
                tot.virt += rep.virt;
                max_virt = max_virt.max(rep.virt);
                for (t, l) in tot.links.iter_mut().zip(rep.links) {
                    t.sent += l.sent;
                    t.lost += l.lost;
                    t.duplicated += l.duplicated;
                    t.reordered += l.reordered;
                    t.corrupted += l.corrupted;
                    t.queue_full += l.queue_full;
                }
            }
            Err(e) => failures.push(format!("{}: {}", run.label(), panic_msg(&*e))),
        }
    }
    let [a, b] = tot.links;
    println!(
        "{name}: {n} runs, {} ok, {:.1} MiB byte-exact, {} events, virtual {:?} total / {:?} max, \
         packets {} sent / {} lost / {} tail-dropped / {} dup / {} reordered / {} corrupted \
         ({} rejected)",
        n as usize - failures.len(),
        bytes as f64 / MIB as f64,
        tot.events,
        tot.virt,
        max_virt,
        a.sent + b.sent,
        a.lost + b.lost,
        a.queue_full + b.queue_full,
        a.duplicated + b.duplicated,
        a.reordered + b.reordered,
        a.corrupted + b.corrupted,
        tot.rejected
    );
    assert!(
        failures.is_empty(),
        "{name}: {} of {n} runs failed (trace of the first above):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Larger buffers so that a 64 MiB run fills a window of a few hundred segments (window
/// scaling, SACK recovery over many holes).
fn big_buffers() -> TcpConfig {
    TcpConfig {
        rmem: 1 << 20,
        wmem: 1 << 20,
        ..TcpConfig::default()
    }
}

fn lossy(p: f64) -> LinkConfig {
    LinkConfig::default().with_loss(p)
}

/// Everything at once: loss, reordering, duplication, corruption and jitter.
fn impaired(p: f64) -> LinkConfig {
    LinkConfig::default()
        .with_loss(p)
        .with_reorder(0.02, Duration::from_millis(15))
        .with_duplicate(0.01)
        .with_corrupt(0.01)
        .with_jitter(Duration::from_millis(2))
}

/// 64 MiB transfers per loss rate, `seeds` each: client -> server and server -> client
/// over a link with only random loss, and both at once with all impairments.
fn big(p: f64, seed0: u64, seeds: u64) -> Vec<Run> {
    (0..seeds)
        .flat_map(|i| {
            let seed = seed0 + 10 * i;
            [
                Run::new(seed, lossy(p), 64 * MIB, 0),
                Run::new(seed + 1, lossy(p), 0, 64 * MIB),
                Run::new(seed + 2, impaired(p), 64 * MIB, 64 * MIB),
            ]
        })
        .map(|r| r.with_tcp(big_buffers()))
        .collect()
}

#[test]
fn big_0_percent() {
    sweep("64 MiB, 0 % loss", big(0.0, 100, 3));
}

#[test]
fn big_1_percent() {
    sweep("64 MiB, 1 % loss", big(0.01, 200, 3));
}

#[test]
fn big_5_percent() {
    sweep("64 MiB, 5 % loss", big(0.05, 300, 3));
}

#[test]
fn big_10_percent() {
    sweep("64 MiB, 10 % loss", big(0.10, 400, 3));
}

/// Seeds per loss rate of the small transfers.
const SMALL_SEEDS: u64 = 100;

/// Many seeds, small transfers (1-4 MiB split between the directions by the seed), every
/// loss rate with reordering, duplication, corruption and jitter, default and big buffers.
#[test]
fn many_seeds_impaired() {
    for p in [0.0, 0.01, 0.05, 0.10] {
        let runs = (0..SMALL_SEEDS).map(move |i| {
            let seed = 1000 + (p * 1000.0) as u64 * 100 + i;
            let total = (1 + seed % 4) * MIB;
            let (c2s, s2c) = match i % 3 {
                0 => (total, 0),
                1 => (0, total),
                _ => (total / 2, total / 2 + 12_345),
            };
            let r = Run::new(seed, impaired(p), c2s, s2c);
            if i % 2 == 0 {
                r.with_tcp(big_buffers())
            } else {
                r
            }
        });
        sweep(
            &format!("1-4 MiB x{SMALL_SEEDS}, {} % loss + impairments", p * 100.0),
            runs,
        );
    }
}

/// A bottleneck: 10 MB/s with a 64-packet queue, so the sender's own congestion makes the
/// losses (tail drop), on top of random loss.
#[test]
fn bottleneck_queue() {
    let runs = (0..6u64).map(|i| {
        let link = LinkConfig::default()
            .with_rate(10_000_000)
            .with_queue_limit(64)
            .with_loss([0.0, 0.01][i as usize % 2]);
        let total = 8 * MIB;
        let (c2s, s2c) = if i < 4 { (total, 0) } else { (total, total) };
        Run::new(5000 + i, link, c2s, s2c).with_tcp(big_buffers())
    });
    sweep("8 MiB through a 10 MB/s, 64-packet bottleneck", runs);
}
