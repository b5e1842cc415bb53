//! The run-to-completion worker loop (model: DPDK l3fwd): on one pinned core, each iteration
//! reads the clock once and runs [`Interface::poll`] (receive burst, TCP, application
//! callbacks, due timers, transmit, one flush). Nothing is shared on the packet path: the
//! stop flag is read once per iteration and the statistics snapshot is published at most
//! every `snapshot_interval` (default 100 ms) for a control thread.
//!
//! Idle policy: busy-poll by default (lowest latency, one core at 100 %); with
//! [`IdleMode::Adaptive`], after `spins` consecutive empty iterations the loop yields or
//! sleeps `sleep` per further empty iteration (until the next TCP timer at the latest), and
//! returns to spinning as soon as an iteration does work. Receive then waits for at most one
//! `sleep` (the kernel keeps queuing into the RX ring meanwhile).
//!
//! Sharding (N workers): each worker owns one device queue and one `Endpoint`; the owner of a
//! flow is [`crate::rss::FlowOwner::owner`] of its 4-tuple. A segment arriving at another worker is
//! handed to its owner over the [`crate::handoff`] mesh (see `Interface::set_handoff`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::app::App;
use crate::cookies::SharedCookieSecrets;
use crate::iface::tap::Tap;
use crate::iface::{IfaceStats, Interface, Link};
use crate::neigh::NeighStats;
use crate::phy::{Device, DeviceStats};
use crate::tcp::bufpool::PoolStats;
use crate::tcp::endpoint::{EndpointStats, StateCounts};
use crate::tcp::ListenerStats;
use crate::time::{Duration, Instant};

pub mod ss;
use ss::{SsJob, SsMailbox};

/// What the loop does when an iteration found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleMode {
    /// Spin (default).
    BusyPoll,
    /// Spin for `spins` empty iterations, then `sleep` (a zero `sleep` yields) per empty one.
    Adaptive {
        /// Empty iterations in a row before the loop starts sleeping.
        spins: u32,
        /// Sleep per further empty iteration; zero yields instead.
        sleep: Duration,
    },
}

/// Busy-poll: every this many empty iterations in a row the loop calls `sched_yield`
/// (see `Worker::idle`): often enough that a kernel thread waiting for the core runs within
/// tens of µs, rarely enough that the syscall stays a small part of an idle loop.
pub const BUSY_POLL_YIELD_EVERY: u32 = 64;

/// Settings of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Core to pin to (`core_affinity` id); `None` leaves the thread unpinned.
    pub core: Option<usize>,
    /// What to do when an iteration found no work.
    pub idle: IdleMode,
    /// Minimum time between statistics snapshots.
    pub snapshot_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            core: None,
            idle: IdleMode::BusyPoll,
            snapshot_interval: Duration::from_millis(100),
        }
    }
}

/// Per-loop accounting. An iteration's time (clock read to clock read) counts as busy when
/// it did work, idle otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Loop iterations.
    pub iterations: u64,
    /// Iterations that did work.
    pub busy_iterations: u64,
    /// Iterations that found none.
    pub idle_iterations: u64,
    /// Nanoseconds spent in busy iterations.
    pub busy_ns: u64,
    /// Nanoseconds spent in idle iterations (sleeps and yields included).
    pub idle_ns: u64,
    /// Frames received / segments transmitted / application events.
    pub rx_packets: u64,
    /// Frames transmitted.
    pub tx_packets: u64,
    /// Application events delivered.
    pub app_events: u64,
    /// Sleeps or yields of the adaptive idle mode.
    pub sleeps: u64,
}

/// Everything a control thread sees of one worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSnapshot {
    /// When it was taken (worker clock).
    pub at: Instant,
    /// The worker's index (= its queue).
    pub worker: usize,
    /// Whether its thread is pinned to a core.
    pub pinned: bool,
    /// Loop accounting.
    pub looping: LoopStats,
    /// Interface counters.
    pub iface: IfaceStats,
    /// Device (AF_XDP socket) counters.
    pub device: DeviceStats,
    /// TCP endpoint counters.
    pub endpoint: EndpointStats,
    /// Neighbour cache counters.
    pub neigh: NeighStats,
    /// Per-state connection counts (O(connections) to compute: snapshot time only).
    pub states: StateCounts,
    /// The first `listener_count` entries: listeners and their queue depths (at most
    /// [`MAX_SNAPSHOT_LISTENERS`] are shown).
    pub listeners: [ListenerSnapshot; MAX_SNAPSHOT_LISTENERS],
    /// How many of `listeners` are filled.
    pub listener_count: usize,
    /// Bytes of the TIME-WAIT table (`Endpoint::time_wait_bytes`).
    pub time_wait_bytes: usize,
    /// The endpoint's buffer pool (tcp/bufpool.rs): cached and lent-out buffer bytes.
    pub buffers: PoolStats,
}

/// Listeners shown per snapshot (the snapshot stays `Copy` and fixed-size).
pub const MAX_SNAPSHOT_LISTENERS: usize = 16;

/// One listener in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSnapshot {
    /// The listening address.
    pub addr: std::net::IpAddr,
    /// The listening port.
    pub port: u16,
    /// Entries in its SYN queue (handshakes in progress).
    pub syn_queue: usize,
    /// Connections in its accept queue (established, not accepted yet).
    pub accept_queue: usize,
    /// Its counters (drops, overflows, cookies).
    pub stats: ListenerStats,
    /// The accept queue's bound: min(backlog, somaxconn).
    pub backlog: usize,
}

impl Default for ListenerSnapshot {
    fn default() -> Self {
        ListenerSnapshot {
            addr: std::net::Ipv4Addr::UNSPECIFIED.into(),
            port: 0,
            syn_queue: 0,
            accept_queue: 0,
            stats: ListenerStats::default(),
            backlog: 0,
        }
    }
}

impl WorkerSnapshot {
    /// The listeners shown.
    pub fn listeners(&self) -> &[ListenerSnapshot] {
        &self.listeners[..self.listener_count.min(MAX_SNAPSHOT_LISTENERS)]
    }
}

/// The control thread's read side of a worker's snapshots, and its mailboxes for requests
/// the worker serves a little per iteration (`xdptcp ss`).
#[derive(Debug, Clone, Default)]
pub struct StatsHandle(Arc<Mutex<WorkerSnapshot>>, Arc<Mailboxes>);

/// Requests from the control thread to one worker.
#[derive(Debug, Default)]
pub struct Mailboxes {
    /// A pending `xdptcp ss` listing: the worker sends its rows in slices when asked.
    pub ss: SsMailbox,
    /// Capture taps to install (looked at with each snapshot, so within
    /// `snapshot_interval`; closed taps are removed at the same time).
    pub taps: Mutex<Vec<Tap>>,
}

impl StatsHandle {
    /// The latest published snapshot.
    pub fn get(&self) -> WorkerSnapshot {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker's request mailboxes.
    pub fn mailboxes(&self) -> &Mailboxes {
        &self.1
    }
}

/// One worker: an interface (device queue + endpoint) driven by the loop.
pub struct Worker<D: Device, L: Link> {
    /// The interface the loop drives (public so a caller can reach the endpoint and device
    /// before and between runs).
    pub iface: Interface<D, L>,
    index: usize,
    cfg: WorkerConfig,
    stop: Arc<AtomicBool>,
    published: StatsHandle,
    stats: LoopStats,
    pinned: bool,
    next_snapshot: Instant,
    /// With XDP cookies: the stack's shared secrets and when they change next.
    cookies: Option<(SharedCookieSecrets, Instant)>,
    /// An `xdptcp ss` listing in progress.
    ss: Option<SsJob>,
}

impl<D: Device, L: Link> Worker<D, L> {
    /// Worker `index` (its queue) around `iface`; not running until `run` is called.
    pub fn new(index: usize, iface: Interface<D, L>, cfg: WorkerConfig) -> Self {
        Worker {
            iface,
            index,
            cfg,
            stop: Arc::new(AtomicBool::new(false)),
            published: StatsHandle::default(),
            stats: LoopStats::default(),
            pinned: false,
            next_snapshot: Instant::ZERO,
            cookies: None,
            ss: None,
        }
    }

    /// Uses the stack's shared SYN-cookie secrets (XDP cookies): the endpoint gets the
    /// secrets of each rotation epoch at its first iteration in it.
    pub fn set_shared_cookies(&mut self, secrets: SharedCookieSecrets) {
        self.cookies = Some((secrets, Instant::ZERO));
    }

    /// Setting it to true ends `run` after the current iteration.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Uses `flag` as the stop flag (e.g. one a signal handler sets).
    pub fn set_stop_flag(&mut self, flag: Arc<AtomicBool>) {
        self.stop = flag;
    }

    /// Where snapshots are published.
    pub fn stats_handle(&self) -> StatsHandle {
        self.published.clone()
    }

    /// The loop's accounting so far.
    pub fn loop_stats(&self) -> &LoopStats {
        &self.stats
    }

    /// Pins the calling thread to `cfg.core` (once). Returns whether it is pinned.
    pub fn pin(&mut self) -> bool {
        if let (Some(id), false) = (self.cfg.core, self.pinned) {
            self.pinned = core_affinity::set_for_current(core_affinity::CoreId { id });
        }
        self.pinned
    }

    /// Runs `app` until the stop flag is set or `app.is_done()`, then calls `app.on_stop` and
    /// runs one last iteration; returns the final snapshot (also published).
    pub fn run<A: App + ?Sized>(&mut self, app: &mut A) -> WorkerSnapshot {
        self.pin();
        let mut last = crate::clock::now();
        self.iface.start(last, app);
        let mut empty_streak = 0u32;
        loop {
            let now = crate::clock::now();
            let busy = self.iteration(now, &mut last, app);
            if self.stop.load(Ordering::Relaxed) || app.is_done() {
                break;
            }
            if busy {
                empty_streak = 0;
            } else {
                empty_streak = empty_streak.saturating_add(1);
                self.idle(now, empty_streak);
            }
        }
        // The app ends what it holds; a last iteration sends what it did.
        let now = crate::clock::now();
        self.iface.stop(now, app);
        self.iteration(now, &mut last, app);
        self.publish(now)
    }

    /// One iteration at `now` (the clock read of this iteration); `last` is the previous
    /// one. Returns whether it did work.
    pub fn iteration<A: App + ?Sized>(
        &mut self,
        now: Instant,
        last: &mut Instant,
        app: &mut A,
    ) -> bool {
        if let Some((secrets, next)) = &mut self.cookies {
            if now >= *next {
                let (current, previous) = secrets.at(now);
                self.iface
                    .endpoint_mut()
                    .set_cookie_secrets(current, previous);
                *next = secrets.next_change(now);
            }
        }
        let out = self.iface.poll(now, app);
        let s = &mut self.stats;
        let elapsed = now.saturating_since(*last).as_nanos() as u64;
        *last = now;
        s.iterations += 1;
        s.rx_packets += out.rx as u64;
        s.tx_packets += out.tx as u64;
        s.app_events += out.events as u64;
        // The time since the previous clock read belongs to the previous iteration, whose
        // kind is not kept; attributing it to this one is exact on average for long runs.
        if out.busy() {
            s.busy_iterations += 1;
            s.busy_ns += elapsed;
        } else {
            s.idle_iterations += 1;
            s.idle_ns += elapsed;
        }
        if self.ss.is_some() || self.published.1.ss.pending() {
            self.ss_step(now);
        }
        if now >= self.next_snapshot {
            self.update_tap();
            self.publish(now);
            self.next_snapshot = now + self.cfg.snapshot_interval;
        }
        out.busy()
    }

    /// Installs the taps left in the mailbox; removes the taps their readers closed.
    fn update_tap(&mut self) {
        if let Ok(mut new) = self.published.1.taps.try_lock() {
            for t in new.drain(..) {
                self.iface.add_tap(t);
            }
        }
        if self.iface.taps().iter().any(Tap::closed) {
            self.iface.remove_closed_taps();
        }
    }

    /// One slice of an `xdptcp ss` listing (bounded: [`ss::SS_SLICE`] rows).
    #[cold]
    fn ss_step(&mut self, now: Instant) {
        if self.ss.is_none() {
            self.ss = SsJob::take(&self.published.1.ss);
        }
        if let Some(job) = &mut self.ss {
            if !job.step(self.index, self.iface.endpoint(), now) {
                self.ss = None;
            }
        }
    }

    fn idle(&mut self, now: Instant, streak: u32) {
        let IdleMode::Adaptive { spins, sleep } = self.cfg.idle else {
            if streak.is_multiple_of(BUSY_POLL_YIELD_EVERY) {
                // Busy-polling on a core it shares: let a runnable kernel thread (ksoftirqd
                // delivering our veth/NIC frames, a kworker) run now instead of at the end of
                // our scheduler slice (milliseconds). A no-op when nothing else is runnable.
                std::thread::yield_now();
            }
            return;
        };
        if streak <= spins {
            return;
        }
        self.stats.sleeps += 1;
        let until_timer = self
            .iface
            .endpoint()
            .next_deadline()
            .map_or(sleep, |d| d.saturating_since(now));
        let d = sleep.min(until_timer);
        if d.is_zero() {
            std::thread::yield_now();
        } else {
            std::thread::sleep(d);
        }
    }

    /// Builds a snapshot and publishes it.
    pub fn publish(&mut self, now: Instant) -> WorkerSnapshot {
        let ep = self.iface.endpoint();
        let mut listeners = [ListenerSnapshot::default(); MAX_SNAPSHOT_LISTENERS];
        let mut listener_count = 0;
        for (slot, ((addr, port, syn_queue, accept_queue, stats), backlog)) in listeners
            .iter_mut()
            .zip(ep.listeners_info().zip(ep.listener_backlogs()))
        {
            *slot = ListenerSnapshot {
                addr,
                port,
                syn_queue,
                accept_queue,
                stats,
                backlog,
            };
            listener_count += 1;
        }
        let snap = WorkerSnapshot {
            listeners,
            listener_count,
            at: now,
            worker: self.index,
            pinned: self.pinned,
            looping: self.stats,
            iface: IfaceStats {
                neigh_netlink_errors: self.iface.link().netlink_errors(),
                ..*self.iface.stats()
            },
            device: self.iface.device_stats(),
            endpoint: *ep.stats(),
            neigh: self.iface.neigh().stats(),
            states: ep.state_counts(),
            time_wait_bytes: ep.time_wait_bytes(),
            buffers: ep.buffer_pool_stats(),
        };
        *self.published.0.lock().unwrap_or_else(|e| e.into_inner()) = snap;
        snap
    }
}

#[cfg(test)]
mod tests;
