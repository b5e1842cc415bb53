//! A deterministic discrete-event network simulator for two sans-IO TCP nodes (model:
//! quinn-proto's tests/util.rs `Pair`).
//!
//! - A virtual clock that jumps to the next event: the earliest packet arrival or node
//!   deadline. Nothing sleeps; one [`Sim::step`] handles exactly one event (one packet or one
//!   node's timeout), so a scenario can observe the nodes between any two events.
//! - Packets travel as bytes: each segment a node emits is serialized with
//!   [`xdptcp_core::wire::emit_tcp_frame`] (Ethernet + IPv4 + TCP, real checksums), carried by a
//!   per-direction [`Link`] (latency, jitter, rate, seeded loss / duplication / reordering /
//!   corruption, bounded queue) and parsed with [`xdptcp_core::wire::parse_tcp_frame`] on arrival.
//!   A corrupted packet must be rejected by a checksum: the simulator counts rejections and
//!   fails loudly if a corrupted packet parses or a clean one does not.
//! - Every run is bounded by a virtual-time limit and an event-count limit ([`Limits`]); hitting
//!   one panics with the scenario label and the packet trace.
//! - A bounded [`Trace`] of the last packets and timeouts is printed to stderr whenever a
//!   thread panics while a `Sim` is alive (any failed assertion in a test).
//!
//! [`scenario`] drives [`xdptcp_core::tcp::endpoint::Endpoint`]s through the connection lifecycle
//! (handshake and every close path) and checks both ends agree on the outcome.

mod check;
pub mod link;
pub mod node;
pub mod scenario;
pub mod stream;
pub mod trace;

pub use check::Disagreement;
pub use link::{Link, LinkConfig, LinkStats, SendFate};
pub use node::Node;
pub use trace::{Entry, Side, Summary, Trace, What};

use std::net::Ipv4Addr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use xdptcp_core::time::{Duration, Instant};
use xdptcp_core::wire::{self, emit_tcp_frame, parse_tcp_frame, tcp_frame_len, EthernetAddress};
use xdptcp_core::wire::{EthernetRepr, TcpRepr};

/// The client's address (RFC 2544 benchmarking range).
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The server's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const CLIENT_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x01]);
const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x02]);
const ETH_HEADER_LEN: usize = 14;

/// Bounds on one run. Hitting either fails the test (panic with the trace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Virtual time from the start of the run.
    pub max_time: Duration,
    /// Events (packet arrivals plus timeouts) handled.
    pub max_events: u64,
}

impl Default for Limits {
    /// One virtual hour and one million events.
    fn default() -> Self {
        Limits {
            max_time: Duration::from_secs(3600),
            max_events: 1_000_000,
        }
    }
}

/// Everything that makes a run what it is.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Seeds both links' random streams (and, in [`scenario`], the endpoints' secrets).
    pub seed: u64,
    /// Client -> server direction.
    pub c2s: LinkConfig,
    /// Server -> client direction.
    pub s2c: LinkConfig,
    pub limits: Limits,
    /// Entries the trace keeps.
    pub trace_cap: usize,
}

impl SimConfig {
    /// Both directions the same.
    pub fn symmetric(seed: u64, link: LinkConfig) -> Self {
        SimConfig {
            seed,
            c2s: link.clone(),
            s2c: link,
            limits: Limits::default(),
            trace_cap: 256,
        }
    }
}

/// Counters beyond the links' own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Packets rejected by the receiver's parser, indexed by receiver (0 client, 1 server).
    pub rejected: [u64; 2],
    /// Of those, rejected for a bad checksum.
    pub checksum_rejected: [u64; 2],
    /// Segments a node addressed to neither node (always a node bug).
    pub misrouted: u64,
    /// Timeouts handled per node.
    pub timeouts: [u64; 2],
    /// RST segments each node emitted (indexed by sender), whatever the link did to them,
    /// and when the first one was.
    pub rsts: [u64; 2],
    pub first_rst: [Option<Instant>; 2],
    /// Events handled (packet arrivals plus timeouts).
    pub events: u64,
}

/// Two TCP endpoints on the simulated network (build one with [`scenario::pair`]).
pub type Pair = Sim<xdptcp_core::tcp::endpoint::Endpoint>;

/// The network between a client and a server node. See the module docs.
pub struct Sim<N: Node> {
    pub client: N,
    pub server: N,
    now: Instant,
    start: Instant,
    /// Indexed by sender: 0 = client -> server, 1 = server -> client.
    links: [Link; 2],
    trace: Trace,
    limits: Limits,
    stats: SimStats,
    /// Send order shared by both links (ties at one arrival instant go in send order).
    order: u64,
    /// An application wake-up asked for with [`Sim::wake_at`].
    wake: Option<Instant>,
    /// Timeouts handled in a row without the clock moving (a node whose deadline does not
    /// advance after `on_timeout` would otherwise spin until the event limit).
    stuck: u32,
    label: String,
}

fn idx(s: Side) -> usize {
    match s {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Timeouts at one instant in a row before the run is declared stuck.
const MAX_STUCK: u32 = 10_000;

impl<N: Node> Sim<N> {
    /// A run starting at `start` (virtual; use a non-zero start to catch code that treats
    /// `Instant::ZERO` specially).
    pub fn new(cfg: SimConfig, start: Instant, client: N, server: N) -> Self {
        let mk = |stream: u64, lc: LinkConfig| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(stream);
            Link::new(lc, rng, ETH_HEADER_LEN)
        };
        Sim {
            client,
            server,
            now: start,
            start,
            links: [mk(1, cfg.c2s.clone()), mk(2, cfg.s2c.clone())],
            trace: Trace::new(FULL_TRACE.with(|f| f.get()).unwrap_or(cfg.trace_cap)),
            limits: cfg.limits,
            stats: SimStats::default(),
            order: 0,
            wake: None,
            stuck: 0,
            label: format!("seed {}", cfg.seed),
        }
    }

    /// Printed with the trace on failure (scenario name, seed, link settings).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start of the run.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub fn stats(&self) -> SimStats {
        self.stats
    }

    pub fn link(&self, from: Side) -> &Link {
        &self.links[idx(from)]
    }

    pub fn link_mut(&mut self, from: Side) -> &mut Link {
        &mut self.links[idx(from)]
    }

    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    pub fn node(&mut self, s: Side) -> &mut N {
        match s {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Note an application action in the trace.
    pub fn note(&mut self, side: Side, what: &'static str) {
        self.trace.push(Entry {
            at: self.now,
            side,
            what: What::App(what),
            seg: None,
        });
    }

    /// Panic with the label (the trace is printed by `Drop`).
    pub fn fail(&self, msg: &str) -> ! {
        panic!("[{}] {msg}", self.label)
    }

    /// Collect both nodes' output at the current time onto the links.
    pub fn flush(&mut self) {
        for side in [Side::Client, Side::Server] {
            let now = self.now;
            let Sim {
                client,
                server,
                links,
                trace,
                stats,
                order,
                ..
            } = self;
            let (node, own, peer) = match side {
                Side::Client => (client, CLIENT_IP, SERVER_IP),
                Side::Server => (server, SERVER_IP, CLIENT_IP),
            };
            let (mac_src, mac_dst) = match side {
                Side::Client => (CLIENT_MAC, SERVER_MAC),
                Side::Server => (SERVER_MAC, CLIENT_MAC),
            };
            node.transmit(now, &mut |src, dst, seg: &TcpRepr<'_>| {
                let summary = Summary::of(seg);
                if seg.flags.rst() {
                    stats.rsts[idx(side)] += 1;
                    stats.first_rst[idx(side)].get_or_insert(now);
                }
                if src != own || dst != peer {
                    stats.misrouted += 1;
                    trace.push(Entry {
                        at: now,
                        side,
                        what: What::App("MISROUTED segment (wrong address) dropped"),
                        seg: Some(summary),
                    });
                    return;
                }
                let eth = EthernetRepr {
                    src_addr: mac_src,
                    dst_addr: mac_dst,
                    ethertype: wire::EtherType::Ipv4,
                };
                let mut buf = vec![0u8; tcp_frame_len(seg)];
                emit_tcp_frame(&mut buf, &eth, src, dst, 64, seg);
                let what = match links[idx(side)].send(now, buf, summary, order) {
                    SendFate::Lost => What::Lost,
                    SendFate::QueueFull => What::QueueFull,
                    SendFate::Queued {
                        duplicated,
                        corrupted,
                        reordered,
                    } => What::Sent {
                        duplicated,
                        corrupted,
                        reordered,
                    },
                };
                trace.push(Entry {
                    at: now,
                    side,
                    what,
                    seg: Some(summary),
                });
            });
        }
    }

    /// Make sure a step happens at `t` even if the network is idle then (an application
    /// timer: `drive`'s `app` runs again at `t`). Only the earliest pending wake-up is kept.
    pub fn wake_at(&mut self, t: Instant) {
        self.wake = Some(self.wake.map_or(t, |w| w.min(t)));
    }

    /// The next event: `(time, Ok(sending side))` for a packet, `(time, Err(side))` for a
    /// node's timeout, `(time, Err(None))` for an application wake-up.
    fn next_event(&self) -> Option<(Instant, Result<Side, Option<Side>>)> {
        // Packets before timeouts at the same instant; between the links, send order.
        let pkt = [Side::Client, Side::Server]
            .into_iter()
            .filter_map(|s| self.links[idx(s)].next_key().map(|k| (k, s)))
            .min_by_key(|(k, _)| *k)
            .map(|((t, _), s)| (t, Ok(s)));
        let tmo = [
            (self.client.next_deadline(), Side::Client),
            (self.server.next_deadline(), Side::Server),
        ]
        .into_iter()
        .filter_map(|(d, s)| d.map(|d| (d, Err(Some(s)))))
        .chain(self.wake.map(|w| (w, Err(None))))
        .min_by_key(|(d, _)| *d);
        match (pkt, tmo) {
            (Some(p), Some(t)) if t.0 < p.0 => Some(t),
            (Some(p), _) => Some(p),
            (None, t) => t,
        }
    }

    /// Handle the next event (after flushing pending output). Returns false when there is
    /// nothing left: no packet in flight and no deadline at either node.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some((t, what)) = self.next_event() else {
            return false;
        };
        if t > self.start + self.limits.max_time {
            self.fail(&format!(
                "virtual-time limit {:?} hit (next event at {:?} after start)",
                self.limits.max_time,
                t - self.start
            ));
        }
        self.stats.events += 1;
        if self.stats.events > self.limits.max_events {
            self.fail(&format!(
                "event limit {} hit at {:?} virtual",
                self.limits.max_events,
                self.elapsed()
            ));
        }
        if t > self.now {
            self.now = t;
            self.stuck = 0;
        }
        match what {
            Ok(from) => self.deliver(from),
            Err(None) => self.wake = None,
            Err(Some(side)) => {
                self.stuck += 1;
                if self.stuck > MAX_STUCK {
                    self.fail(&format!(
                        "{side:?}: {MAX_STUCK} timeouts at {:?} without time advancing \
                         (next_deadline not moved by on_timeout)",
                        self.elapsed()
                    ));
                }
                self.stats.timeouts[idx(side)] += 1;
                self.trace.push(Entry {
                    at: self.now,
                    side,
                    what: What::Timeout,
                    seg: None,
                });
                let now = self.now;
                self.node(side).handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    fn deliver(&mut self, from: Side) {
        let to = from.peer();
        let Some(a) = self.links[idx(from)].pop_due(self.now) else {
            return;
        };
        match parse_tcp_frame(&a.bytes) {
            Ok(frame) => {
                if a.corrupted {
                    self.fail(&format!(
                        "a corrupted packet passed the checksums: {}",
                        a.summary
                    ));
                }
                self.trace.push(Entry {
                    at: self.now,
                    side: from,
                    what: What::Delivered,
                    seg: Some(a.summary),
                });
                let now = self.now;
                let (src, dst) = (frame.ip.src_addr, frame.ip.dst_addr);
                self.node(to).handle(now, src, dst, &frame.tcp);
            }
            Err(e) => {
                if !a.corrupted {
                    self.fail(&format!(
                        "a clean packet failed to parse ({e}): {}",
                        a.summary
                    ));
                }
                self.stats.rejected[idx(to)] += 1;
                if e == wire::Error::Checksum {
                    self.stats.checksum_rejected[idx(to)] += 1;
                }
                self.trace.push(Entry {
                    at: self.now,
                    side: from,
                    what: What::Rejected(e),
                    seg: Some(a.summary),
                });
            }
        }
    }

    /// Step until `cond` holds (checked before each step). Returns false if the network went
    /// idle first.
    pub fn run_until(&mut self, mut cond: impl FnMut(&mut Self) -> bool) -> bool {
        loop {
            if cond(self) {
                return true;
            }
            if !self.step() {
                return cond(self);
            }
        }
    }

    /// Run `app` before every step; `app` returns whether it did anything (called the
    /// nodes' API). Returns when the network is idle and `app` did nothing.
    pub fn drive(&mut self, mut app: impl FnMut(&mut Self) -> bool) {
        loop {
            let acted = app(self);
            if !self.step() && !acted {
                return;
            }
        }
    }

    /// Handle every event due up to `t`, then set the clock to `t` (if later).
    pub fn run_to(&mut self, t: Instant) {
        loop {
            self.flush();
            match self.next_event() {
                Some((at, _)) if at <= t => {
                    self.step();
                }
                _ => break,
            }
        }
        if t > self.now {
            self.now = t;
        }
    }

    /// True when nothing is in flight on either link.
    pub fn links_empty(&self) -> bool {
        self.links.iter().all(Link::is_empty)
    }
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static FULL_TRACE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// For replaying one run: `Sim`s created on this thread from now on keep `cap` trace
/// entries (instead of `SimConfig::trace_cap`) and print the trace whenever dropped, not
/// only on a panic. `None` restores the default.
pub fn set_full_trace(cap: Option<usize>) {
    FULL_TRACE.with(|f| f.set(cap));
}

/// Stop (or restart) printing the trace when a `Sim` on this thread is dropped by a panic;
/// for sweeps that catch many failures and want the trace of the first only.
pub fn set_quiet_traces(quiet: bool) {
    QUIET.with(|q| q.set(quiet));
}

impl<N: Node> Drop for Sim<N> {
    fn drop(&mut self) {
        let always = FULL_TRACE.with(|f| f.get()).is_some();
        if always || std::thread::panicking() && !QUIET.with(|q| q.get()) {
            eprintln!(
                "--- sim trace [{}] at {:?} virtual, {:?}; links c2s {:?} s2c {:?}\n{}",
                self.label,
                self.elapsed(),
                self.stats,
                self.links[0].stats(),
                self.links[1].stats(),
                self.trace
            );
        }
    }
}

#[cfg(test)]
mod tests;
