//! The interface: one [`Device`] (queue), the wire layer, the neighbour cache and one shard's
//! TCP [`Endpoint`], glued into [`Interface::poll`], the body of one worker-loop iteration:
//!
//! 1. receive a burst (at most `rx_budget` frames) and parse each with
//!    [`wire::parse_tcp_frame`]; rejected frames are dropped and counted by reason, frames not
//!    addressed to our IPv4 address are counted, the rest go to [`Endpoint::on_segment`];
//!    ICMPv4 errors the XDP program steered here (about our segments) go, via the quoted
//!    flow's owner, to [`Endpoint::on_icmp_error`] (icmp.rs);
//! 2. application callbacks for every endpoint event ([`App::on_event`]);
//! 3. due TCP timers ([`Endpoint::on_timeout`]);
//! 4. every due segment ([`Endpoint::poll_transmit`]) is emitted in place into a device frame;
//! 5. due neighbour-cache work (resolution retries, held frames released);
//! 6. one [`Device::flush`] (the AF_XDP kick).
//!
//! Next hops: the route toward each remote address is asked once ([`Link::next_hop`]: a
//! longest-prefix match in a user-space copy of the kernel's routes in production, no
//! syscall) and cached (at most `max_routes` remotes; the cache is cleared when full, which
//! costs only the LPM lookups to refill it, and when the link's routes change). The cache is
//! keyed with a per-interface secret (remote addresses are chosen by peers). The next hop's MAC comes from the [`NeighCache`]. A segment to a next hop whose
//! MAC is not known yet is emitted into a heap frame that the cache holds (at most
//! `unres_qlen` per neighbour, `max_entries` neighbours) until the kernel has resolved it, and
//! sent then; if resolution fails the frame is dropped and counted and TCP retransmits.
//!
//! Passive opens: the SYN's source MAC *confirms* an existing entry of an on-link peer
//! (`NeighCache::learn`), but never creates one and never changes a resolved entry's MAC
//! (a conflict is counted): received traffic cannot fill or poison the table. The first SYN-ACK to a new peer is resolved through the kernel, which already
//! holds the peer's MAC (a STALE entry made by the peer's ARP request for our address), so it
//! leaves in the same loop iteration.
//!
//! Multiple workers: with [`Interface::set_shard`], every received segment's owner is
//! computed ([`FlowOwner`]: a Toeplitz hash of the 4-tuple mod N, or the ephemeral sub-range
//! of an active open). A segment owned by another worker is counted (`rx_misdirected`) and,
//! with [`Interface::set_handoff`], copied to its owner over the hand-off mesh
//! ([`Handoff`]); the owner takes handed-off frames at the start of its step 1 (before its
//! device burst, at most `rx_budget`) and processes them exactly like received ones. Without
//! a hand-off mesh the segment is handled here.

mod icmp;
mod link;
pub mod note;
pub mod tap;

pub use crate::app::Addrs6;
pub use link::{Link, StaticLink};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use crate::app::{App, AppEvent, AppIo};
use crate::handoff::Handoff;
use crate::hash::{keyed_map, KeyedMap};
use crate::neigh::{Lookup, Mac, NeighCache, NeighConfig, NeighEvent, Queued};
use crate::phy::{Device, DeviceStats, TxError};
use crate::rss::FlowOwner;
use crate::tcp::endpoint::{Endpoint, EndpointEvent};
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;
use crate::wire::{self, EtherType, EthernetAddress, EthernetRepr, TcpRepr};
use note::InNote;
use tap::{Dir, Tap};

/// Bound on `InterfaceConfig::extra_addrs` (checked linearly per received frame).
pub const MAX_EXTRA_ADDRS: usize = 32;

/// Up to [`MAX_EXTRA_ADDRS`] further local addresses (a fixed array: the config stays `Copy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtraAddrs {
    addrs: [Option<Ipv4Addr>; MAX_EXTRA_ADDRS],
}

impl ExtraAddrs {
    /// The first [`MAX_EXTRA_ADDRS`] of `v` (more are an error).
    pub fn new(v: &[Ipv4Addr]) -> Result<Self, usize> {
        if v.len() > MAX_EXTRA_ADDRS {
            return Err(v.len());
        }
        let mut e = ExtraAddrs::default();
        for (slot, a) in e.addrs.iter_mut().zip(v) {
            *slot = Some(*a);
        }
        Ok(e)
    }

    /// Whether `a` is one of the extra addresses.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.addrs.iter().map_while(|x| *x).any(|x| x == a)
    }

    /// The extra addresses, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addrs.iter().map_while(|x| *x)
    }
}

/// Settings of one interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceConfig {
    /// Our IPv4 address (shared with the kernel, which answers ARP for it); `None` for an
    /// IPv6-only interface (then `addrs6` holds at least one address).
    pub addr: Option<Ipv4Addr>,
    /// Our MAC address (the interface's).
    pub mac: Mac,
    /// Frames received per `poll` at most.
    pub rx_budget: usize,
    /// TTL of emitted IPv4 packets (Linux `ip_default_ttl`).
    pub ttl: u8,
    /// Verify TCP checksums in software (off only when a NIC verified them).
    pub verify_checksums: bool,
    /// Remote addresses whose next hop is cached.
    pub max_routes: usize,
    /// Further local addresses (besides `addr`) the interface accepts segments for and
    /// `AppIo::connect_from` may use, e.g. to get more than one ephemeral range's worth of
    /// 4-tuples toward one server. At most [`MAX_EXTRA_ADDRS`]; the kernel must own them too
    /// (it answers ARP).
    pub extra_addrs: ExtraAddrs,
    /// The stack's IPv6 addresses (none: IPv4 only). Segments to them are taken; the first
    /// is the source of IPv6 active opens.
    pub addrs6: Addrs6,
    /// Hop limit of emitted IPv6 packets (Linux `net.ipv6.conf.all.hop_limit`).
    pub hop_limit: u8,
    /// Secret of the RFC 6437 flow labels: each IPv6 connection's label is a keyed hash of
    /// its 4-tuple, stable for its life (random in production; 0 in tests).
    pub flow_label_secret: [u8; 16],
    /// Neighbour resolution: cache size, timeouts, held-segment bounds.
    pub neigh: NeighConfig,
    /// Secret key of the per-remote route cache's hash (random in production; 0 in tests).
    pub hash_seed: u64,
}

impl InterfaceConfig {
    /// Defaults for `addr` on the interface with MAC `mac`: 64 frames per poll, TTL 64, software
    /// checksum checks, 65,536 cached routes, no extra addresses.
    pub fn new(addr: Ipv4Addr, mac: Mac) -> Self {
        Self::with_addr(Some(addr), mac)
    }

    /// [`InterfaceConfig::new`] with or without an IPv4 address (`None`: IPv6 only, the
    /// addresses go in `addrs6`).
    pub fn with_addr(addr: Option<Ipv4Addr>, mac: Mac) -> Self {
        InterfaceConfig {
            addr,
            mac,
            rx_budget: 64,
            ttl: 64,
            verify_checksums: true,
            max_routes: 65_536,
            extra_addrs: ExtraAddrs::default(),
            addrs6: Addrs6::default(),
            hop_limit: 64,
            flow_label_secret: [0; 16],
            neigh: NeighConfig::default(),
            hash_seed: 0,
        }
    }
}

/// Counters of the interface (the device, endpoint and neighbour cache keep their own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceStats {
    /// Frames the device delivered.
    pub rx_frames: u64,
    /// Parsed TCP segments handed to the endpoint.
    pub rx_segments: u64,
    /// Dropped by the wire layer, by reason (`wire::Error`).
    pub rx_truncated: u64,
    /// Dropped: malformed (`wire::Error::Malformed`).
    pub rx_malformed: u64,
    /// Dropped: bad checksum (`wire::Error::Checksum`).
    pub rx_checksum: u64,
    /// Dropped: not handled here (`wire::Error::Unsupported`: fragments, other protocols).
    pub rx_unsupported: u64,
    /// Valid TCP/IPv4 or TCP/IPv6 but not addressed to one of our addresses.
    pub rx_not_ours: u64,
    /// TCP/IPv6 segments handed to the endpoint (also counted in `rx_segments`).
    pub rx_segments6: u64,
    /// TCP/IPv6 segments emitted into device frames (also counted in `tx_segments`).
    pub tx_segments6: u64,
    /// Segments whose flow another worker owns (see the module docs).
    pub rx_misdirected: u64,
    /// Misdirected segments copied to their owner / dropped (no free hand-off buffer, too
    /// long, owner stopped: TCP retransmits them).
    pub handoff_sent: u64,
    /// Misdirected segments dropped instead of handed off.
    pub handoff_dropped: u64,
    /// Segments other workers handed to this one (processed as if received).
    pub handoff_received: u64,
    /// Segments emitted into device frames.
    pub tx_segments: u64,
    /// Segments dropped: device out of frames/ring slots (TCP retransmits them).
    pub tx_full: u64,
    /// Segments dropped: longer than the device's frames.
    pub tx_too_long: u64,
    /// Segments dropped: no route to the destination.
    pub tx_no_route: u64,
    /// Segments held for an unresolved neighbour.
    pub tx_held: u64,
    /// Held segments sent after resolution.
    pub tx_released: u64,
    /// Held segments dropped (queue overflow, table full, resolution failed).
    pub tx_neigh_dropped: u64,
    /// Application events delivered.
    pub app_events: u64,
    /// `on_timeout` calls.
    pub timer_runs: u64,
    /// Netlink requests to the kernel's neighbour table that failed (`Link::netlink_errors`,
    /// filled in by the worker's snapshot).
    pub neigh_netlink_errors: u64,
    /// ICMPv4 errors about our TCP segments handed to the endpoint (icmp.rs; its
    /// `EndpointStats::icmp` says what each did).
    pub rx_icmp: u64,
    /// Of `rx_icmp`: ICMPv6 Parameter Problems (RFC 4443 §3.4) about our segments: a node
    /// on the path rejected a header field of ours (EPROTO for the connection).
    pub rx_icmp6_param_problem: u64,
    /// Of `rx_icmp`: ICMPv4 Parameter Problems (RFC 792 type 12, codes 0-2) about our
    /// segments: a node on the path rejected a header field of ours (EPROTO for the
    /// connection).
    pub rx_icmp_param_problem: u64,
}

/// What one `poll` did (for the worker's busy/idle accounting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Frames received.
    pub rx: usize,
    /// Frames transmitted.
    pub tx: usize,
    /// Application events delivered.
    pub events: usize,
    /// Whether connection timers ran.
    pub timers: bool,
}

impl PollOutcome {
    /// Whether the iteration did any work.
    pub fn busy(&self) -> bool {
        self.rx > 0 || self.tx > 0 || self.events > 0 || self.timers
    }
}

/// Bound on application events delivered per `poll` (the rest wait for the next iteration,
/// so one busy listener cannot starve receive).
pub const MAX_EVENTS_PER_POLL: usize = 4096;

/// One device queue + one shard endpoint. See the module docs.
pub struct Interface<D: Device, L: Link> {
    dev: D,
    link: L,
    ep: Endpoint,
    cfg: InterfaceConfig,
    neigh: NeighCache<Box<[u8]>>,
    /// Next-hop cache: remote -> next hop (`None`: no route).
    routes: KeyedMap<IpAddr, Option<IpAddr>>,
    /// RFC 6437 flow labels of IPv6 connections (keyed with `cfg.flow_label_secret`).
    labels: wire::FlowLabels,
    /// The link's routes generation the cache was filled under.
    routes_gen: u64,
    /// When the neighbour cache next has work (recomputed after it changes).
    neigh_due: Option<Instant>,
    shard: Option<Shard>,
    stats: IfaceStats,
    /// `xdptcp capture` / `trace`: frames in and out are copied to these (tap.rs).
    taps: Vec<Tap>,
}

/// This interface's place among N workers.
struct Shard {
    index: usize,
    owner: FlowOwner,
    handoff: Option<Handoff>,
}

impl<D: Device, L: Link> std::fmt::Debug for Interface<D, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface")
            .field("cfg", &self.cfg)
            .field("endpoint", &self.ep)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<D: Device, L: Link> Interface<D, L> {
    /// An interface over `dev` with next hops from `link`, running `ep`.
    pub fn new(dev: D, link: L, ep: Endpoint, cfg: InterfaceConfig) -> Self {
        Interface {
            dev,
            link,
            ep,
            neigh: NeighCache::new(cfg.neigh),
            cfg,
            routes: keyed_map(cfg.hash_seed),
            labels: wire::FlowLabels::new(cfg.flow_label_secret),
            routes_gen: 0,
            neigh_due: None,
            shard: None,
            stats: IfaceStats::default(),
            taps: Vec::new(),
        }
    }

    /// Adds a capture tap (bounded by the caller: `control::capture::MAX_CAPTURES`).
    pub fn add_tap(&mut self, tap: Tap) {
        self.taps.push(tap);
    }

    /// Removes the taps their readers closed.
    pub fn remove_closed_taps(&mut self) {
        self.taps.retain(|t| !t.closed());
    }

    /// The capture/trace taps installed now (at most two).
    pub fn taps(&self) -> &[Tap] {
        &self.taps
    }

    /// Makes this interface worker `index` of `owner.workers()` (see the module docs).
    pub fn set_shard(&mut self, index: usize, owner: FlowOwner) {
        let handoff = self.shard.take().and_then(|s| s.handoff);
        self.shard = Some(Shard {
            index,
            owner,
            handoff,
        });
    }

    /// Hands misdirected segments to their owners over `h` (after [`Interface::set_shard`];
    /// `h.index()` must be this shard's index).
    pub fn set_handoff(&mut self, h: Handoff) {
        if let Some(s) = &mut self.shard {
            s.handoff = Some(h);
        }
    }

    /// Its settings.
    pub fn config(&self) -> &InterfaceConfig {
        &self.cfg
    }
    /// The TCP endpoint (read-only: counters, connection info).
    pub fn endpoint(&self) -> &Endpoint {
        &self.ep
    }
    /// The TCP endpoint, e.g. to open listeners or install secrets before the loop runs.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.ep
    }
    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }
    /// The device, mutably (tests inject and collect frames through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }
    /// The device's counters.
    pub fn device_stats(&self) -> DeviceStats {
        self.dev.stats()
    }
    /// The neighbour cache (resolved MACs and held segments).
    pub fn neigh(&self) -> &NeighCache<Box<[u8]>> {
        &self.neigh
    }
    /// The next-hop resolver.
    pub fn link(&self) -> &L {
        &self.link
    }
    /// The interface's counters.
    pub fn stats(&self) -> &IfaceStats {
        &self.stats
    }

    /// An application handle outside `poll` (e.g. to open listeners before the loop starts).
    pub fn app_io(&mut self, now: Instant) -> AppIo<'_> {
        AppIo::with_local(&mut self.ep, now, self.cfg.addr).with_addrs6(self.cfg.addrs6)
    }

    /// Calls `app.on_start` (once, before the first `poll`).
    pub fn start<A: App + ?Sized>(&mut self, now: Instant, app: &mut A) {
        app.on_start(
            &mut AppIo::with_local(&mut self.ep, now, self.cfg.addr).with_addrs6(self.cfg.addrs6),
        );
    }

    /// Calls `app.on_stop` (once, before the last `poll`).
    pub fn stop<A: App + ?Sized>(&mut self, now: Instant, app: &mut A) {
        app.on_stop(
            &mut AppIo::with_local(&mut self.ep, now, self.cfg.addr).with_addrs6(self.cfg.addrs6),
        );
    }

    /// One loop iteration's work at `now`. See the module docs for the order.
    pub fn poll<A: App + ?Sized>(&mut self, now: Instant, app: &mut A) -> PollOutcome {
        let rx = self.receive(now);
        let events = self.dispatch(now, app);
        let timers = self.ep.next_deadline().is_some_and(|d| d <= now);
        if timers {
            self.ep.on_timeout(now);
            self.stats.timer_runs += 1;
        }
        let tx = self.transmit(now);
        self.dev.flush(now);
        PollOutcome {
            rx,
            tx,
            events,
            timers,
        }
    }

    /// Step 1: frames handed over by other workers, then one receive burst.
    fn receive(&mut self, now: Instant) -> usize {
        let Interface {
            dev,
            ep,
            cfg,
            neigh,
            routes,
            shard,
            stats,
            taps,
            ..
        } = self;
        let mut learned = false;
        let mut n = 0;
        // A trace (noting tap) gets each segment after the endpoint took it, with the state
        // before and after; a frame handed to another worker is noted there.
        let noting = !taps.is_empty() && tap::noting(taps);
        if let Some(h) = shard.as_mut().and_then(|s| s.handoff.as_mut()) {
            // The sender verified the checksum already.
            let got = h.recv(cfg.rx_budget, |frame| {
                let f = match wire::parse_any_tcp_frame_with(frame, false) {
                    Ok(f) => f,
                    // An ICMP error the receiving worker found ours (see icmp.rs).
                    Err(wire::Error::Unsupported) => {
                        match icmp::classify(frame) {
                            icmp::NotTcp::Icmp(t, f) => icmp::ingest(now, t, &f, ep, stats),
                            _ => stats.rx_malformed += 1,
                        }
                        return;
                    }
                    Err(_) => {
                        stats.rx_malformed += 1;
                        return;
                    }
                };
                let before =
                    (noting && tap::note_wanted(taps, frame)).then(|| InNote::before(ep, &f));
                ingest(now, &f, ep, neigh, routes, stats, &mut learned);
                if let Some(b) = before {
                    tap::each_noted(taps, now, frame, Some(b.after(ep)));
                }
            });
            stats.handoff_received += got as u64;
            n += got;
        }
        n += dev.recv(now, cfg.rx_budget, |frame| {
            stats.rx_frames += 1;
            if !taps.is_empty() {
                tap::each(taps, now, Dir::In, frame);
            }
            // (handed off, the note) for a noting tap.
            let mut noted = (false, None);
            'rx: {
                let f = match wire::parse_any_tcp_frame_with(frame, cfg.verify_checksums) {
                    Ok(f) => f,
                    Err(wire::Error::Unsupported) => {
                        let (t, f) = match icmp::classify(frame) {
                            icmp::NotTcp::Icmp(t, f) => (t, f),
                            icmp::NotTcp::Unsupported => {
                                stats.rx_unsupported += 1;
                                break 'rx;
                            }
                            icmp::NotTcp::Invalid(e) => {
                                icmp::count_invalid(stats, e);
                                break 'rx;
                            }
                        };
                        if !icmp::is_ours(cfg.addr, &cfg.extra_addrs, &cfg.addrs6, &f) {
                            stats.rx_not_ours += 1;
                            break 'rx;
                        }
                        // The quoted flow's owner, as for its segments.
                        if let Some(sh) = shard.as_mut() {
                            let owner = sh.owner.owner(&t);
                            if owner != sh.index {
                                stats.rx_misdirected += 1;
                                if let Some(h) = &mut sh.handoff {
                                    match h.send(owner, frame) {
                                        Ok(()) => {
                                            stats.handoff_sent += 1;
                                            noted.0 = true;
                                        }
                                        Err(_) => stats.handoff_dropped += 1,
                                    }
                                    break 'rx;
                                }
                            }
                        }
                        icmp::ingest(now, t, &f, ep, stats);
                        break 'rx;
                    }
                    Err(e) => {
                        *match e {
                            wire::Error::Truncated => &mut stats.rx_truncated,
                            wire::Error::Malformed => &mut stats.rx_malformed,
                            wire::Error::Checksum => &mut stats.rx_checksum,
                            wire::Error::Unsupported => &mut stats.rx_unsupported,
                        } += 1;
                        break 'rx;
                    }
                };
                let ours = match &f {
                    wire::AnyTcpFrame::V4(f) => {
                        cfg.addr == Some(f.ip.dst_addr) || cfg.extra_addrs.contains(f.ip.dst_addr)
                    }
                    wire::AnyTcpFrame::V6(f) => cfg.addrs6.contains(f.ip.dst_addr),
                };
                if !ours {
                    stats.rx_not_ours += 1;
                    break 'rx;
                }
                if let Some(sh) = shard.as_mut() {
                    let t = tuple_of(&f);
                    let owner = sh.owner.owner(&t);
                    if owner != sh.index {
                        stats.rx_misdirected += 1;
                        if let Some(h) = &mut sh.handoff {
                            match h.send(owner, frame) {
                                Ok(()) => {
                                    stats.handoff_sent += 1;
                                    noted.0 = true;
                                }
                                Err(_) => stats.handoff_dropped += 1,
                            }
                            break 'rx;
                        }
                    }
                }
                let before =
                    (noting && tap::note_wanted(taps, frame)).then(|| InNote::before(ep, &f));
                ingest(now, &f, ep, neigh, routes, stats, &mut learned);
                noted.1 = before.map(|b| b.after(ep));
            }
            if noting && !noted.0 {
                tap::each_noted(taps, now, frame, noted.1);
            }
        });
        if learned {
            self.neigh_due = Some(now);
        }
        n
    }

    /// Step 2: application callbacks (bounded per poll).
    fn dispatch<A: App + ?Sized>(&mut self, now: Instant, app: &mut A) -> usize {
        let mut n = 0;
        while n < MAX_EVENTS_PER_POLL {
            let Some(ev) = self.ep.poll_event() else {
                break;
            };
            let mut io =
                AppIo::with_local(&mut self.ep, now, self.cfg.addr).with_addrs6(self.cfg.addrs6);
            match ev {
                EndpointEvent::Incoming(l) => {
                    while let Some(c) = io.accept(l) {
                        app.on_event(&mut io, c, AppEvent::Accepted(l));
                        n += 1;
                    }
                }
                EndpointEvent::Conn(c, e) => {
                    let ev = AppEvent::from_conn(e);
                    app.on_event(&mut io, c, ev);
                    n += 1;
                    if ev == AppEvent::Closed {
                        // Release the handle: the endpoint frees the connection (or keeps a
                        // TIME-WAIT record). Closing an already-closed connection is a no-op.
                        let _ = self.ep.close(now, c);
                    }
                }
            }
        }
        self.stats.app_events += n as u64;
        n
    }

    /// Steps 4 and 5: segments into device frames, then due neighbour work.
    fn transmit(&mut self, now: Instant) -> usize {
        let Interface {
            dev,
            link,
            ep,
            cfg,
            neigh,
            routes,
            routes_gen,
            stats,
            neigh_due,
            taps,
            labels,
            ..
        } = self;
        let mut sent = 0;
        let g = link.routes_generation();
        if g != *routes_gen {
            routes.clear();
            *routes_gen = g;
        }
        let labels = &*labels;
        let taps = &mut taps[..];
        ep.poll_transmit(now, |src, dst, seg| {
            let Some(ip) = IpOut::new(cfg, labels, src, dst, seg) else {
                stats.tx_no_route += 1; // mixed families: never made by the endpoint
                return;
            };
            let Some(hop) = next_hop(routes, link, cfg.max_routes, dst) else {
                stats.tx_no_route += 1;
                return;
            };
            let len = ip.frame_len(seg);
            if len > dev.max_frame_len() {
                stats.tx_too_long += 1;
                return;
            }
            if let Lookup::Found(mac) = neigh.lookup(now, hop) {
                sent += emit(dev, stats, cfg, (mac, now, &mut *taps), ip, seg);
                return;
            }
            // Unresolved: emit into a held heap frame (slow path, bounded by the cache).
            let mut frame = vec![0u8; len].into_boxed_slice();
            let eth = eth_repr(cfg, [0; 6]);
            ip.emit(&mut frame, &eth, seg);
            *neigh_due = Some(now);
            match neigh.send_or_queue(now, hop, frame) {
                Queued::Send(mac, frame) => {
                    sent += send_held(dev, stats, (mac, now, &mut *taps), &frame)
                }
                Queued::Held => stats.tx_held += 1,
                Queued::HeldDroppedOldest(_) => {
                    stats.tx_held += 1;
                    stats.tx_neigh_dropped += 1;
                }
                Queued::Rejected(_) => stats.tx_neigh_dropped += 1,
            }
        });
        if neigh_due.is_some_and(|t| t <= now) {
            neigh.poll(now, link);
            while let Some(ev) = neigh.pop_event() {
                match ev {
                    NeighEvent::Transmit { mac, frame, .. } => {
                        stats.tx_released += 1;
                        sent += send_held(dev, stats, (mac, now, &mut *taps), &frame);
                    }
                    NeighEvent::Failed { .. } => stats.tx_neigh_dropped += 1,
                }
            }
            *neigh_due = neigh.poll_at();
        }
        if !taps.is_empty() {
            tap::flush_out(taps, |frame| note::out_note(ep, frame));
        }
        sent
    }
}

/// A parsed segment for this worker into its endpoint (from its queue or handed off).
fn ingest(
    now: Instant,
    f: &wire::AnyTcpFrame<'_>,
    ep: &mut Endpoint,
    neigh: &mut NeighCache<Box<[u8]>>,
    routes: &KeyedMap<IpAddr, Option<IpAddr>>,
    stats: &mut IfaceStats,
    learned: &mut bool,
) {
    let (src, dst, tcp, mac): (IpAddr, IpAddr, _, _) = match f {
        wire::AnyTcpFrame::V4(f) => (
            f.ip.src_addr.into(),
            f.ip.dst_addr.into(),
            &f.tcp,
            f.eth.src_addr,
        ),
        wire::AnyTcpFrame::V6(f) => {
            stats.rx_segments6 += 1;
            (
                f.ip.src_addr.into(),
                f.ip.dst_addr.into(),
                &f.tcp,
                f.eth.src_addr,
            )
        }
    };
    // A SYN from an on-link peer confirms its MAC (never creates an entry).
    if tcp.flags.syn() && !tcp.flags.ack() && routes.get(&src) == Some(&Some(src)) {
        neigh.learn(now, src, mac.0);
        *learned = true;
    }
    stats.rx_segments += 1;
    ep.on_segment(now, src, dst, tcp);
}

/// The 4-tuple of a received segment (local = its destination).
fn tuple_of(f: &wire::AnyTcpFrame<'_>) -> FourTuple {
    match f {
        wire::AnyTcpFrame::V4(f) => FourTuple::new(
            SocketAddrV4::new(f.ip.dst_addr, f.tcp.dst_port),
            SocketAddrV4::new(f.ip.src_addr, f.tcp.src_port),
        ),
        wire::AnyTcpFrame::V6(f) => FourTuple::new_v6(
            SocketAddrV6::new(f.ip.dst_addr, f.tcp.dst_port, 0, 0),
            SocketAddrV6::new(f.ip.src_addr, f.tcp.src_port, 0, 0),
        ),
    }
}

/// The IP header of an outgoing segment: IPv4 (TTL), or IPv6 with its hop limit and the
/// connection's flow label (RFC 6437: the same for every packet of the flow).
#[derive(Clone, Copy)]
enum IpOut {
    V4(Ipv4Addr, Ipv4Addr, u8),
    V6(Ipv6Addr, Ipv6Addr, u8, u32),
}

impl IpOut {
    fn new(
        cfg: &InterfaceConfig,
        labels: &wire::FlowLabels,
        src: IpAddr,
        dst: IpAddr,
        seg: &TcpRepr<'_>,
    ) -> Option<IpOut> {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Some(IpOut::V4(s, d, cfg.ttl)),
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let label = labels.tcp(s, seg.src_port, d, seg.dst_port);
                Some(IpOut::V6(s, d, cfg.hop_limit, label))
            }
            _ => None,
        }
    }

    fn frame_len(&self, seg: &TcpRepr<'_>) -> usize {
        match self {
            IpOut::V4(..) => wire::tcp_frame_len(seg),
            IpOut::V6(..) => wire::frame6::tcp6_frame_len(seg),
        }
    }

    fn emit(&self, buf: &mut [u8], eth: &EthernetRepr, seg: &TcpRepr<'_>) -> usize {
        match *self {
            IpOut::V4(s, d, ttl) => wire::emit_tcp_frame(buf, eth, s, d, ttl, seg),
            IpOut::V6(s, d, hops, label) => {
                wire::frame6::emit_tcp6_frame(buf, eth, s, d, hops, label, seg)
            }
        }
    }
}

fn eth_repr(cfg: &InterfaceConfig, dst: Mac) -> EthernetRepr {
    EthernetRepr {
        src_addr: EthernetAddress(cfg.mac),
        dst_addr: EthernetAddress(dst),
        ethertype: EtherType::Ipv4,
    }
}

/// The cached next hop toward `dst` (asks `link` once per remote; bounded cache).
fn next_hop<L: Link>(
    routes: &mut KeyedMap<IpAddr, Option<IpAddr>>,
    link: &mut L,
    max: usize,
    dst: IpAddr,
) -> Option<IpAddr> {
    if let Some(&h) = routes.get(&dst) {
        return h;
    }
    if routes.len() >= max {
        routes.clear();
    }
    let h = link.next_hop(dst);
    routes.insert(dst, h);
    h
}

/// Emits `seg` in place into a device frame. Returns 1 if queued.
fn emit<D: Device>(
    dev: &mut D,
    stats: &mut IfaceStats,
    cfg: &InterfaceConfig,
    (mac, now, taps): (Mac, Instant, &mut [Tap]),
    ip: IpOut,
    seg: &TcpRepr<'_>,
) -> usize {
    let eth = eth_repr(cfg, mac);
    let len = ip.frame_len(seg);
    let r = dev.transmit(len, |buf| {
        ip.emit(buf, &eth, seg);
        if !taps.is_empty() {
            tap::each_out(taps, now, &buf[..len]);
        }
    });
    if r.is_ok() && matches!(ip, IpOut::V6(..)) {
        stats.tx_segments6 += 1;
    }
    count_tx(stats, r)
}

/// Sends a held frame (emitted earlier with a placeholder destination MAC).
fn send_held<D: Device>(
    dev: &mut D,
    stats: &mut IfaceStats,
    (mac, now, taps): (Mac, Instant, &mut [Tap]),
    frame: &[u8],
) -> usize {
    let r = dev.transmit(frame.len(), |buf| {
        buf[..frame.len()].copy_from_slice(frame);
        buf[..6].copy_from_slice(&mac);
        if !taps.is_empty() {
            tap::each_out(taps, now, &buf[..frame.len()]);
        }
    });
    if r.is_ok() && frame.get(12..14) == Some(&[0x86, 0xdd][..]) {
        stats.tx_segments6 += 1;
    }
    count_tx(stats, r)
}

fn count_tx(stats: &mut IfaceStats, r: Result<(), TxError>) -> usize {
    match r {
        Ok(()) => {
            stats.tx_segments += 1;
            1
        }
        Err(TxError::Full) => {
            stats.tx_full += 1;
            0
        }
        Err(TxError::TooLong) => {
            stats.tx_too_long += 1;
            0
        }
    }
}

#[cfg(test)]
mod tests;
