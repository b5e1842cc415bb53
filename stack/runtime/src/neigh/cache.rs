//! The sans-IO neighbour cache: next-hop IPv4 address -> MAC, with frames held while a
//! neighbour is being resolved.
//!
//! Time is a parameter (`now`); the resolver back-end is a parameter of [`NeighCache::poll`]
//! ([`Resolver`]: the kernel over netlink in production, a fake in tests). Nothing here blocks
//! or reads a clock.
//!
//! Life of an entry (keyed by the *next hop*, i.e. the gateway or an on-link destination):
//! - **Pending**: created by the first frame to an unknown next hop. The frame is held in a
//!   per-neighbour FIFO of at most `unres_qlen` frames (Linux `unres_qlen`); overflow drops the
//!   *oldest* held frame, hands it back to the caller and counts it. Each `poll` at or after the
//!   entry's retry time asks the back-end for the MAC, and if it has none, asks it to resolve
//!   (`solicit`), then waits `retry_interval`. When the MAC is known, the held frames are released
//!   in FIFO order as [`NeighEvent::Transmit`]. After `resolve_timeout` without an answer, every
//!   held frame is handed back as [`NeighEvent::Failed`] (counted) and the entry removed, so the
//!   caller (TCP) retransmits on its own timer; a later frame starts a fresh resolution.
//! - **Resolved**: frames go out at once. After `reachable_time` the entry is due for refresh:
//!   the next `poll` re-reads the kernel's entry (picking up a changed MAC) and asks the kernel
//!   to re-validate it (the kernel sees none of the stack's traffic, so its entry goes STALE and
//!   would never be re-probed otherwise). Meanwhile the old MAC is still used (like Linux's
//!   STALE state), for at most `resolve_timeout` past the due time; an entry the kernel no longer knows by then is
//!   removed and the next frame starts a fresh resolution.
//!
//! Passive learning ([`NeighCache::learn`]): the caller may report (source IP, source MAC) of a
//! received frame whose source IP is on-link. It only *confirms* entries that already exist
//! (and releases a pending entry's frames); it never creates entries, so received traffic
//! cannot fill the table, and an off-link sender's IP (whose frames carry the gateway's MAC) is
//! never turned into a wrong entry that is later used. It never *changes* a resolved entry's
//! MAC either: that MAC came from the kernel, and a frame's source MAC is whatever the sender
//! wrote (one spoofed SYN would otherwise redirect our traffic for `reachable_time`). A
//! different MAC is counted (`learn_conflicts`) and ignored; a real MAC change reaches the
//! entry through the kernel at the next refresh.
//!
//! Table pressure (spoofed on-link sources): every SYN-ACK to an unknown on-link address makes
//! a pending entry, which only times out after `resolve_timeout`. Pending entries are therefore
//! capped at `max_pending`, and when a new neighbour needs room the *oldest pending* entry is
//! evicted first (its held frames handed back as `Failed`, counted `evicted_pending`); a
//! resolved entry is evicted (oldest learned first, `evicted`) only when no entry is pending.
//! Resolved entries win: a flood of spoofed sources churns the pending entries among themselves
//! and never pushes out the gateway.
//!
//! Memory bound: at most `max_entries` entries, each holding at most `unres_qlen` frames, plus
//! the event queue: events come only from held frames (one each), so a caller that drains
//! after each `poll`/`learn` never has more than `max_entries * unres_qlen` queued.
//! Entries are kept in a `BTreeMap` (deterministic order; next hops are few: usually one gateway
//! plus on-link peers).

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use super::netlink::Mac;
use crate::time::{Duration, Instant};

/// The back-end that knows (or finds out) link-layer addresses. Both calls must not block.
pub trait Resolver {
    /// The MAC for `ip` if it is known and usable right now.
    fn lookup(&mut self, ip: IpAddr) -> Option<Mac>;
    /// Starts (or re-starts) resolution of `ip`; the answer shows up in a later `lookup`.
    fn solicit(&mut self, ip: IpAddr);
}

/// Tunables; defaults follow Linux's ARP defaults where one exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    /// Maximum number of entries (next hops). Default 256.
    pub max_entries: usize,
    /// Maximum number of pending (unresolved) entries, at most `max_entries`. Default 64.
    pub max_pending: usize,
    /// Frames held per unresolved neighbour (Linux `unres_qlen`; its byte-based default allows
    /// ~100 skbs, we hold UMEM frames, which are scarcer). Default 32.
    pub unres_qlen: usize,
    /// Time between resolution attempts. Default 100 ms.
    pub retry_interval: Duration,
    /// Give up resolving after this long (Linux: 3 probes x 1 s retrans_time). Default 3 s.
    pub resolve_timeout: Duration,
    /// A resolved entry is re-validated after this long (Linux `base_reachable_time`). Default 30 s.
    pub reachable_time: Duration,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            max_entries: 256,
            max_pending: 64,
            unres_qlen: 32,
            retry_interval: Duration::from_millis(100),
            resolve_timeout: Duration::from_secs(3),
            reachable_time: Duration::from_secs(30),
        }
    }
}

/// Answer of [`NeighCache::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// Resolved and usable now: send to this MAC.
    Found(Mac),
    /// Resolution is under way.
    Pending,
    /// No usable entry: unknown, or resolved but past its use-by time (see
    /// [`NeighCache::send_or_queue`], which starts resolution).
    Missing,
}

/// What happened to a frame given to [`NeighCache::send_or_queue`].
#[derive(Debug, PartialEq, Eq)]
pub enum Queued<F> {
    /// The neighbour is known: send the frame to this MAC now.
    Send(Mac, F),
    /// Held until the neighbour is resolved (or resolution fails).
    Held,
    /// Held; the queue was full, so its oldest frame was dropped and is handed back.
    HeldDroppedOldest(F),
    /// The table is full of unresolved neighbours: the frame is handed back, not held.
    Rejected(F),
}

/// Output of [`NeighCache::poll`], drained with [`NeighCache::pop_event`].
#[derive(Debug, PartialEq, Eq)]
pub enum NeighEvent<F> {
    /// A held frame may go out now, to `mac`. Frames of one neighbour come in FIFO order.
    Transmit {
        /// The next hop that resolved.
        ip: IpAddr,
        /// Its MAC: write it as the frame's Ethernet destination.
        mac: Mac,
        /// The held frame, handed back.
        frame: F,
    },
    /// Resolution of `ip` failed; this held frame was not sent.
    Failed {
        /// The next hop that did not resolve within `resolve_timeout`.
        ip: IpAddr,
        /// The held frame, handed back for the caller to free.
        frame: F,
    },
}

/// Counters; all monotonic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NeighStats {
    /// Frames held for a pending neighbour.
    pub held: u64,
    /// Held frames released as [`NeighEvent::Transmit`] once their neighbour resolved.
    pub released: u64,
    /// Held frames dropped because their neighbour's queue was full (`unres_qlen`).
    pub dropped_overflow: u64,
    /// Held frames handed back as [`NeighEvent::Failed`] when resolution timed out.
    pub dropped_unresolved: u64,
    /// Frames refused ([`Queued::Rejected`]): table full of pending entries.
    pub rejected_table_full: u64,
    /// Pending entries that got their MAC (from the resolver or from `learn`).
    pub resolved: u64,
    /// Resolution requests made to the resolver (first tries, retries and refreshes).
    pub solicits: u64,
    /// Resolved entries confirmed again (by a refresh or by `learn`).
    pub refreshed: u64,
    /// Refreshes that found a different MAC than the entry had.
    pub mac_changed: u64,
    /// Resolved entries removed because no refresh confirmed them within
    /// `reachable_time + resolve_timeout`.
    pub expired: u64,
    /// Resolved entries evicted (oldest learned first) to make room for a new neighbour.
    pub evicted: u64,
    /// Calls to [`NeighCache::learn`] that matched an existing entry.
    pub learned: u64,
    /// Calls to [`NeighCache::learn`] whose MAC differed from a resolved entry's (ignored).
    pub learn_conflicts: u64,
    /// Pending entries evicted (oldest first) to make room; their frames became `Failed`.
    pub evicted_pending: u64,
}

#[derive(Debug)]
enum State<F> {
    Pending {
        started: Instant,
        next_try: Instant,
        held: VecDeque<F>,
    },
    Resolved {
        mac: Mac,
        learned_at: Instant,
        /// When `poll` next re-reads the back-end: `learned_at + reachable_time`, then every
        /// `retry_interval` while stale.
        next_check: Instant,
    },
}

/// The neighbour cache. `F` is the caller's frame handle (e.g. a UMEM frame index).
#[derive(Debug)]
pub struct NeighCache<F> {
    cfg: NeighConfig,
    entries: BTreeMap<IpAddr, State<F>>,
    /// Number of `State::Pending` entries.
    pending: usize,
    events: VecDeque<NeighEvent<F>>,
    stats: NeighStats,
}

impl<F> NeighCache<F> {
    /// An empty cache with the given bounds and timers.
    pub fn new(cfg: NeighConfig) -> Self {
        NeighCache {
            cfg,
            entries: BTreeMap::new(),
            pending: 0,
            events: VecDeque::new(),
            stats: NeighStats::default(),
        }
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> &NeighConfig {
        &self.cfg
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NeighStats {
        self.stats
    }

    /// Number of entries (resolved or pending).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Last instant a resolved entry's MAC may be used without a successful refresh.
    fn usable_until(&self, learned_at: Instant) -> Instant {
        learned_at + self.cfg.reachable_time + self.cfg.resolve_timeout
    }

    /// The MAC for next hop `ip`, if usable at `now`.
    pub fn lookup(&self, now: Instant, ip: impl Into<IpAddr>) -> Lookup {
        let ip = ip.into();
        match self.entries.get(&ip) {
            Some(State::Resolved {
                mac, learned_at, ..
            }) if now < self.usable_until(*learned_at) => Lookup::Found(*mac),
            Some(State::Pending { .. }) => Lookup::Pending,
            _ => Lookup::Missing,
        }
    }

    /// Sends `frame` to next hop `ip` if its MAC is known, else holds it and (for a new
    /// neighbour) starts resolution at the next `poll`.
    pub fn send_or_queue(&mut self, now: Instant, ip: impl Into<IpAddr>, frame: F) -> Queued<F> {
        let ip = ip.into();
        if let Lookup::Found(mac) = self.lookup(now, ip) {
            return Queued::Send(mac, frame);
        }
        if !matches!(self.entries.get(&ip), Some(State::Pending { .. })) {
            // Missing, or resolved but past use: (re)start resolution.
            if self.entries.remove(&ip).is_some() {
                self.stats.expired += 1;
            }
            let full = self.entries.len() >= self.cfg.max_entries;
            if (full || self.pending >= self.cfg.max_pending) && !self.evict_one(full) {
                self.stats.rejected_table_full += 1;
                return Queued::Rejected(frame);
            }
            let held = VecDeque::with_capacity(self.cfg.unres_qlen.min(8));
            self.pending += 1;
            self.entries.insert(
                ip,
                State::Pending {
                    started: now,
                    next_try: now,
                    held,
                },
            );
        }
        let qlen = self.cfg.unres_qlen;
        let held = match self.entries.get_mut(&ip) {
            Some(State::Pending { held, .. }) => held,
            // Not reachable: the entry is pending (checked or inserted above).
            _ => return Queued::Rejected(frame),
        };
        if qlen == 0 {
            self.stats.dropped_overflow += 1;
            return Queued::HeldDroppedOldest(frame);
        }
        self.stats.held += 1;
        if held.len() >= qlen {
            let oldest = held.pop_front();
            held.push_back(frame);
            self.stats.dropped_overflow += 1;
            // `held` was non-empty (len >= qlen >= 1), so `oldest` is Some.
            return oldest.map_or(Queued::Held, Queued::HeldDroppedOldest);
        }
        held.push_back(frame);
        Queued::Held
    }

    /// Makes room for one pending entry: evicts the oldest pending entry (its frames become
    /// `Failed` events), else, when `resolved_too` (the table is full), the resolved entry
    /// learned longest ago. False if there was nothing to evict. O(entries): runs only when a
    /// new neighbour meets a full table.
    fn evict_one(&mut self, resolved_too: bool) -> bool {
        let oldest_pending = self
            .entries
            .iter()
            .filter_map(|(ip, s)| match s {
                State::Pending { started, .. } => Some((*started, *ip)),
                State::Resolved { .. } => None,
            })
            .min();
        if let Some((_, ip)) = oldest_pending {
            self.fail(ip);
            self.stats.evicted_pending += 1;
            return true;
        }
        if !resolved_too {
            return false;
        }
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, s)| match s {
                State::Resolved { learned_at, .. } => Some((*learned_at, *ip)),
                State::Pending { .. } => None,
            })
            .min();
        match victim {
            Some((_, ip)) => {
                self.entries.remove(&ip);
                self.stats.evicted += 1;
                true
            }
            None => false,
        }
    }

    /// Passive learning from a received frame (source IP on-link, source MAC). Confirms an
    /// existing entry with the same MAC and releases a pending entry's frames; never creates
    /// an entry and never changes a resolved entry's MAC (counted in `learn_conflicts`).
    pub fn learn(&mut self, now: Instant, ip: impl Into<IpAddr>, mac: Mac) {
        let ip = ip.into();
        match self.entries.get(&ip) {
            None => return,
            Some(State::Resolved { mac: known, .. }) if *known != mac => {
                self.stats.learn_conflicts += 1;
                return;
            }
            Some(_) => {}
        }
        self.stats.learned += 1;
        self.set_resolved(now, ip, mac);
    }

    /// Marks `ip` resolved to `mac` at `now`, releasing held frames in order.
    fn set_resolved(&mut self, now: Instant, ip: IpAddr, mac: Mac) {
        let new = State::Resolved {
            mac,
            learned_at: now,
            next_check: now + self.cfg.reachable_time,
        };
        match self.entries.insert(ip, new) {
            Some(State::Pending { held, .. }) => {
                self.pending -= 1;
                self.stats.resolved += 1;
                self.stats.released += held.len() as u64;
                self.events
                    .extend(
                        held.into_iter()
                            .map(|frame| NeighEvent::Transmit { ip, mac, frame }),
                    );
            }
            Some(State::Resolved { mac: old, .. }) => {
                self.stats.refreshed += 1;
                if old != mac {
                    self.stats.mac_changed += 1;
                }
            }
            None => {}
        }
    }

    /// The earliest instant at which `poll` has work to do, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        self.entries
            .values()
            .map(|s| match s {
                State::Pending { next_try, .. } => *next_try,
                State::Resolved { next_check, .. } => *next_check,
            })
            .min()
    }

    /// Does the due work at `now`: resolution attempts and their timeouts, refreshes.
    /// Results are queued as events; drain them with [`NeighCache::pop_event`]. Walks every
    /// entry (O(entries)); the worker calls it when `now >= poll_at()`, not per packet.
    pub fn poll<R: Resolver>(&mut self, now: Instant, resolver: &mut R) {
        let cfg = self.cfg;
        // Collect due work first (bounded by max_entries); the map changes while handling it.
        let due: Vec<IpAddr> = self
            .entries
            .iter()
            .filter(|(_, s)| match s {
                State::Pending { next_try, .. } => now >= *next_try,
                State::Resolved { next_check, .. } => now >= *next_check,
            })
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            if let Some(mac) = resolver.lookup(ip) {
                if matches!(self.entries.get(&ip), Some(State::Resolved { .. })) {
                    // A refresh: the kernel's entry may be STALE (it sees none of our traffic,
                    // so never confirms it); ask it to re-validate so a changed MAC shows up at
                    // the next refresh.
                    self.stats.solicits += 1;
                    resolver.solicit(ip);
                }
                self.set_resolved(now, ip, mac);
                continue;
            }
            match self.entries.get_mut(&ip) {
                Some(State::Pending {
                    started, next_try, ..
                }) => {
                    if now.saturating_since(*started) >= cfg.resolve_timeout {
                        self.fail(ip);
                    } else {
                        *next_try = now + cfg.retry_interval;
                        self.stats.solicits += 1;
                        resolver.solicit(ip);
                    }
                }
                Some(State::Resolved {
                    learned_at,
                    next_check,
                    ..
                }) => {
                    if now >= *learned_at + cfg.reachable_time + cfg.resolve_timeout {
                        self.entries.remove(&ip);
                        self.stats.expired += 1;
                    } else {
                        // Stale: keep using the old MAC while the kernel re-validates.
                        *next_check = now + cfg.retry_interval;
                        self.stats.solicits += 1;
                        resolver.solicit(ip);
                    }
                }
                None => {}
            }
        }
    }

    /// Removes a pending entry whose resolution timed out; its frames become `Failed` events.
    fn fail(&mut self, ip: IpAddr) {
        if let Some(State::Pending { held, .. }) = self.entries.remove(&ip) {
            self.pending -= 1;
            self.stats.dropped_unresolved += held.len() as u64;
            self.events.extend(
                held.into_iter()
                    .map(|frame| NeighEvent::Failed { ip, frame }),
            );
        }
    }

    /// The next event produced by `poll` (or by `learn` releasing frames), in order.
    pub fn pop_event(&mut self) -> Option<NeighEvent<F>> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv4Addr;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3));
    const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 4));
    const MAC1: Mac = [0x02, 0, 0, 0, 0, 1];
    const MAC2: Mac = [0x02, 0, 0, 0, 0, 2];

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Call {
        Lookup(IpAddr),
        Solicit(IpAddr),
    }

    /// A fake kernel: a table the test edits, and a log of every call.
    #[derive(Default)]
    struct Fake {
        table: HashMap<IpAddr, Mac>,
        calls: Vec<Call>,
    }

    impl Resolver for Fake {
        fn lookup(&mut self, ip: IpAddr) -> Option<Mac> {
            self.calls.push(Call::Lookup(ip));
            self.table.get(&ip).copied()
        }
        fn solicit(&mut self, ip: IpAddr) {
            self.calls.push(Call::Solicit(ip));
        }
    }

    fn ms(m: u64) -> Instant {
        Instant::from_millis(m)
    }

    fn drain(c: &mut NeighCache<u32>) -> Vec<NeighEvent<u32>> {
        std::iter::from_fn(|| c.pop_event()).collect()
    }

    fn cache(qlen: usize) -> NeighCache<u32> {
        NeighCache::new(NeighConfig {
            unres_qlen: qlen,
            ..NeighConfig::default()
        })
    }

    /// IPv6 next hops share the cache with IPv4 ones (NDP is the kernel's, as ARP): an IPv6
    /// neighbour is solicited, held frames wait for it, and an IPv4 address with the same
    /// low bits is another entry.
    #[test]
    fn ipv6_neighbour_resolved_beside_ipv4() {
        let a6: IpAddr = "2001:2::2".parse().unwrap();
        let mut c = cache(32);
        let mut k = Fake::default();
        k.table.insert(A, MAC1);
        assert_eq!(c.send_or_queue(ms(0), a6, 1), Queued::Held);
        assert_eq!(c.send_or_queue(ms(0), A, 2), Queued::Held);
        c.poll(ms(1), &mut k);
        assert!(k.calls.contains(&Call::Solicit(a6)));
        assert!(!k.calls.contains(&Call::Solicit(A)));
        k.table.insert(a6, MAC2);
        c.poll(ms(101), &mut k);
        let ev = drain(&mut c);
        assert_eq!(
            ev,
            [
                NeighEvent::Transmit {
                    ip: A,
                    mac: MAC1,
                    frame: 2
                },
                NeighEvent::Transmit {
                    ip: a6,
                    mac: MAC2,
                    frame: 1
                }
            ]
        );
        assert_eq!(c.lookup(ms(102), a6), Lookup::Found(MAC2));
    }

    #[test]
    fn held_frames_released_in_order_once_resolved() {
        let mut c = cache(32);
        let mut k = Fake::default();
        assert_eq!(c.lookup(ms(0), A), Lookup::Missing);
        assert_eq!(c.send_or_queue(ms(0), A, 10), Queued::Held);
        assert_eq!(c.send_or_queue(ms(1), A, 11), Queued::Held);
        assert_eq!(c.lookup(ms(1), A), Lookup::Pending);
        assert_eq!(c.poll_at(), Some(ms(0)));
        // First poll: the kernel does not know A yet, so it is asked to resolve.
        c.poll(ms(1), &mut k);
        assert_eq!(k.calls, vec![Call::Lookup(A), Call::Solicit(A)]);
        assert_eq!(c.poll_at(), Some(ms(101)));
        assert_eq!(c.send_or_queue(ms(50), A, 12), Queued::Held);
        // Not due: the back-end is not touched.
        c.poll(ms(100), &mut k);
        assert_eq!(k.calls.len(), 2);
        assert!(drain(&mut c).is_empty());
        // The kernel learns A; the next due poll releases every held frame in FIFO order.
        k.table.insert(A, MAC1);
        c.poll(ms(101), &mut k);
        assert_eq!(k.calls[2..], [Call::Lookup(A)]);
        let ev = drain(&mut c);
        let want: Vec<_> = [10, 11, 12]
            .into_iter()
            .map(|frame| NeighEvent::Transmit {
                ip: A,
                mac: MAC1,
                frame,
            })
            .collect();
        assert_eq!(ev, want);
        assert_eq!(c.lookup(ms(101), A), Lookup::Found(MAC1));
        assert_eq!(c.send_or_queue(ms(102), A, 13), Queued::Send(MAC1, 13));
        let s = c.stats();
        assert_eq!((s.held, s.released, s.resolved, s.solicits), (3, 3, 1, 1));
        // Next work is the refresh, reachable_time after learning.
        assert_eq!(c.poll_at(), Some(ms(101) + Duration::from_secs(30)));
    }

    #[test]
    fn already_known_to_kernel_needs_no_solicit() {
        let mut c = cache(32);
        let mut k = Fake::default();
        k.table.insert(A, MAC1);
        assert_eq!(c.send_or_queue(ms(0), A, 1), Queued::Held);
        c.poll(ms(0), &mut k);
        assert_eq!(k.calls, vec![Call::Lookup(A)]);
        assert_eq!(
            drain(&mut c),
            vec![NeighEvent::Transmit {
                ip: A,
                mac: MAC1,
                frame: 1
            }]
        );
    }

    #[test]
    fn queue_bound_drops_oldest_and_counts() {
        let mut c = cache(3);
        let mut k = Fake::default();
        for f in 0..3 {
            assert_eq!(c.send_or_queue(ms(0), A, f), Queued::Held);
        }
        assert_eq!(c.send_or_queue(ms(0), A, 3), Queued::HeldDroppedOldest(0));
        assert_eq!(c.send_or_queue(ms(0), A, 4), Queued::HeldDroppedOldest(1));
        assert_eq!(c.stats().dropped_overflow, 2);
        k.table.insert(A, MAC1);
        c.poll(ms(0), &mut k);
        let frames: Vec<u32> = drain(&mut c)
            .into_iter()
            .map(|e| match e {
                NeighEvent::Transmit { frame, .. } => frame,
                NeighEvent::Failed { .. } => panic!("unexpected failure"),
            })
            .collect();
        assert_eq!(frames, vec![2, 3, 4]);
        assert_eq!(c.stats().released, 3);
    }

    #[test]
    fn zero_queue_holds_nothing() {
        let mut c = cache(0);
        assert_eq!(c.send_or_queue(ms(0), A, 7), Queued::HeldDroppedOldest(7));
        // Resolution still starts, so a retransmission later finds the MAC.
        assert_eq!(c.lookup(ms(0), A), Lookup::Pending);
        assert_eq!(c.stats().dropped_overflow, 1);
    }

    #[test]
    fn retry_schedule_then_failure_hands_frames_back() {
        let mut c = cache(32);
        let mut k = Fake::default();
        c.send_or_queue(ms(0), A, 1);
        c.send_or_queue(ms(5), A, 2);
        // Poll every 10 ms for 3.2 s; the kernel never answers.
        let mut solicit_times = Vec::new();
        let mut failed_at = None;
        for t in (0..=3200).step_by(10) {
            let before = k.calls.len();
            c.poll(ms(t), &mut k);
            if k.calls[before..].contains(&Call::Solicit(A)) {
                solicit_times.push(t);
            }
            let ev = drain(&mut c);
            if !ev.is_empty() {
                assert_eq!(failed_at, None);
                failed_at = Some(t);
                assert_eq!(
                    ev,
                    vec![
                        NeighEvent::Failed { ip: A, frame: 1 },
                        NeighEvent::Failed { ip: A, frame: 2 }
                    ]
                );
            }
        }
        // Every 100 ms from 0 to 2900 ms; at 3000 ms (resolve_timeout) it gives up.
        let want: Vec<u64> = (0..30).map(|i| i * 100).collect();
        assert_eq!(solicit_times, want);
        assert_eq!(failed_at, Some(3000));
        assert_eq!(c.lookup(ms(3000), A), Lookup::Missing);
        assert!(c.is_empty());
        assert_eq!(c.poll_at(), None);
        let s = c.stats();
        assert_eq!((s.dropped_unresolved, s.solicits, s.released), (2, 30, 0));
        // A later frame starts a fresh resolution.
        assert_eq!(c.send_or_queue(ms(4000), A, 3), Queued::Held);
        assert_eq!(c.poll_at(), Some(ms(4000)));
    }

    #[test]
    fn refresh_picks_up_changed_mac() {
        let mut c = cache(32);
        let mut k = Fake::default();
        k.table.insert(A, MAC1);
        c.send_or_queue(ms(0), A, 1);
        c.poll(ms(0), &mut k);
        drain(&mut c);
        k.calls.clear();
        k.table.insert(A, MAC2);
        // Before reachable_time the old MAC is used and the kernel is not asked.
        c.poll(ms(29_999), &mut k);
        assert!(k.calls.is_empty());
        assert_eq!(c.lookup(ms(29_999), A), Lookup::Found(MAC1));
        // At reachable_time: re-read (new MAC) and ask the kernel to re-validate.
        c.poll(ms(30_000), &mut k);
        assert_eq!(k.calls, vec![Call::Lookup(A), Call::Solicit(A)]);
        assert_eq!(c.lookup(ms(30_000), A), Lookup::Found(MAC2));
        assert_eq!(c.send_or_queue(ms(30_001), A, 2), Queued::Send(MAC2, 2));
        let s = c.stats();
        assert_eq!((s.refreshed, s.mac_changed), (1, 1));
        assert_eq!(c.poll_at(), Some(ms(60_000)));
    }

    #[test]
    fn stale_entry_used_until_refresh_times_out_then_expires() {
        let mut c = cache(32);
        let mut k = Fake::default();
        k.table.insert(A, MAC1);
        c.send_or_queue(ms(0), A, 1);
        c.poll(ms(0), &mut k);
        drain(&mut c);
        k.table.clear();
        k.calls.clear();
        // The kernel forgot A: retry every 100 ms, keep using MAC1 meanwhile.
        c.poll(ms(30_000), &mut k);
        assert_eq!(k.calls, vec![Call::Lookup(A), Call::Solicit(A)]);
        assert_eq!(c.poll_at(), Some(ms(30_100)));
        c.poll(ms(30_050), &mut k);
        assert_eq!(k.calls.len(), 2);
        c.poll(ms(30_100), &mut k);
        assert_eq!(k.calls.len(), 4);
        assert_eq!(c.lookup(ms(32_999), A), Lookup::Found(MAC1));
        // Past reachable_time + resolve_timeout the MAC is no longer used, even before a poll.
        assert_eq!(c.lookup(ms(33_000), A), Lookup::Missing);
        c.poll(ms(33_000), &mut k);
        assert!(c.is_empty());
        assert_eq!(c.stats().expired, 1);
    }

    #[test]
    fn send_after_expiry_without_poll_restarts_resolution() {
        let mut c = cache(32);
        let mut k = Fake::default();
        k.table.insert(A, MAC1);
        c.send_or_queue(ms(0), A, 1);
        c.poll(ms(0), &mut k);
        drain(&mut c);
        assert_eq!(c.send_or_queue(ms(33_000), A, 2), Queued::Held);
        assert_eq!(c.lookup(ms(33_000), A), Lookup::Pending);
        assert_eq!(c.stats().expired, 1);
        c.poll(ms(33_000), &mut k);
        assert_eq!(
            drain(&mut c),
            vec![NeighEvent::Transmit {
                ip: A,
                mac: MAC1,
                frame: 2
            }]
        );
    }

    #[test]
    fn learn_releases_pending_and_never_creates() {
        let mut c = cache(32);
        c.learn(ms(0), B, MAC2);
        assert!(c.is_empty());
        assert_eq!(c.stats().learned, 0);
        c.send_or_queue(ms(0), A, 1);
        c.send_or_queue(ms(0), A, 2);
        c.learn(ms(10), A, MAC1);
        assert_eq!(
            drain(&mut c),
            vec![
                NeighEvent::Transmit {
                    ip: A,
                    mac: MAC1,
                    frame: 1
                },
                NeighEvent::Transmit {
                    ip: A,
                    mac: MAC1,
                    frame: 2
                }
            ]
        );
        // The same MAC again confirms the entry and restarts its reachable time.
        c.learn(ms(20), A, MAC1);
        assert_eq!(c.poll_at(), Some(ms(30_020)));
        // A different MAC (a spoofed SYN) changes nothing: counted, ignored.
        c.learn(ms(30), A, MAC2);
        assert_eq!(c.lookup(ms(30), A), Lookup::Found(MAC1));
        assert_eq!(c.poll_at(), Some(ms(30_020)));
        let s = c.stats();
        assert_eq!(
            (s.learned, s.learn_conflicts, s.mac_changed, s.resolved),
            (2, 1, 0, 1)
        );
    }

    #[test]
    fn full_table_evicts_oldest_pending_before_any_resolved() {
        let mut c = NeighCache::new(NeighConfig {
            max_entries: 2,
            ..NeighConfig::default()
        });
        let mut k = Fake::default();
        c.send_or_queue(ms(0), A, 1);
        c.send_or_queue(ms(1), B, 2);
        k.table.insert(A, MAC1);
        c.poll(ms(1), &mut k);
        drain(&mut c);
        // A is resolved, B pending: B (pending) is evicted for C, its frame handed back.
        assert_eq!(c.send_or_queue(ms(2), C, 3), Queued::Held);
        assert_eq!(drain(&mut c), vec![NeighEvent::Failed { ip: B, frame: 2 }]);
        assert_eq!(c.lookup(ms(2), A), Lookup::Found(MAC1));
        assert_eq!(c.lookup(ms(2), B), Lookup::Missing);
        assert_eq!(c.lookup(ms(2), C), Lookup::Pending);
        let s = c.stats();
        assert_eq!(
            (s.evicted_pending, s.evicted, s.dropped_unresolved),
            (1, 0, 1)
        );
        // With every entry resolved, the oldest learned one goes.
        k.table.insert(C, MAC2);
        c.poll(ms(3), &mut k);
        drain(&mut c);
        assert_eq!(c.send_or_queue(ms(4), B, 4), Queued::Held);
        assert_eq!(c.lookup(ms(4), A), Lookup::Missing);
        assert_eq!(c.lookup(ms(4), C), Lookup::Found(MAC2));
        assert_eq!(c.stats().evicted, 1);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn spoofed_source_flood_never_evicts_the_gateway() {
        // A SYN-ACK to each spoofed on-link source makes a pending entry;
        // a flood of them must neither fill the table nor push out the resolved gateway.
        let mut c = NeighCache::new(NeighConfig {
            max_entries: 8,
            max_pending: 4,
            ..NeighConfig::default()
        });
        let mut k = Fake::default();
        let gw = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        k.table.insert(gw, MAC1);
        c.send_or_queue(ms(0), gw, 0);
        c.poll(ms(0), &mut k);
        drain(&mut c);
        for i in 0..1000u32 {
            let spoofed = IpAddr::V4(Ipv4Addr::from(0xc613_0000 + i)); // 198.19.x.y
            assert_eq!(
                c.send_or_queue(ms(1 + u64::from(i)), spoofed, i),
                Queued::Held
            );
            assert!(c.len() <= 5);
        }
        assert_eq!(c.lookup(ms(1001), gw), Lookup::Found(MAC1));
        assert_eq!(c.send_or_queue(ms(1001), gw, 7), Queued::Send(MAC1, 7));
        let s = c.stats();
        assert_eq!(
            (s.evicted_pending, s.evicted, s.rejected_table_full),
            (996, 0, 0)
        );
        // Every evicted pending entry handed its frame back.
        assert_eq!(drain(&mut c).len(), 996);
    }

    #[test]
    fn neighbours_resolve_independently() {
        let mut c = cache(32);
        let mut k = Fake::default();
        c.send_or_queue(ms(0), A, 1);
        c.send_or_queue(ms(0), B, 2);
        c.send_or_queue(ms(0), A, 3);
        k.table.insert(B, MAC2);
        c.poll(ms(0), &mut k);
        assert_eq!(
            drain(&mut c),
            vec![NeighEvent::Transmit {
                ip: B,
                mac: MAC2,
                frame: 2
            }]
        );
        assert_eq!(c.lookup(ms(0), A), Lookup::Pending);
        k.table.insert(A, MAC1);
        c.poll(ms(100), &mut k);
        assert_eq!(
            drain(&mut c),
            vec![
                NeighEvent::Transmit {
                    ip: A,
                    mac: MAC1,
                    frame: 1
                },
                NeighEvent::Transmit {
                    ip: A,
                    mac: MAC1,
                    frame: 3
                }
            ]
        );
    }
}
