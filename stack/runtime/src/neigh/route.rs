//! The kernel's IPv4 routes in user space: a longest-prefix-match table the workers read
//! without a syscall, kept fresh by the control side.
//!
//! Why: asking the kernel (RTM_GETROUTE) per unknown remote put a netlink round trip on the
//! packet path, and a spoofed-source flood made one per packet. Now the control side dumps
//! the main routing table ([`Netlink::route_dump`](super::netlink::Netlink::route_dump)) at
//! start, and again whenever the kernel announces a route change (RTNLGRP_IPV4_ROUTE) or
//! every [`ROUTE_REFRESH`] (a notification lost to a full socket buffer is caught up by then),
//! and publishes it in a [`SharedRoutes`];
//! each worker's [`RouteView`] picks the new table up with one atomic load per lookup.
//!
//! What is modelled: the main table (RT_TABLE_MAIN) only, no policy routing (`ip rule`); per
//! prefix the route with the lowest metric; unicast routes (gateway, else on-link; of a
//! multipath route the first next hop); blackhole, unreachable and prohibit routes as "no
//! route" (they shadow shorter prefixes like in the kernel). The output interface is not
//! checked (as before with RTM_GETROUTE): the stack sends on its own interface.
//!
//! Bounds: a dump reads at most `netlink::MAX_REPLY_MESSAGES` messages; the table holds what
//! the kernel has (at most that many routes). Lookup costs one keyed hash probe per distinct
//! prefix length present (typically 2-3: /0, the on-link /24, a few more).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::hash::{keyed_map, KeyedMap};

/// How often the control side re-dumps the routes without a notification.
pub const ROUTE_REFRESH: Duration = Duration::from_secs(10);

/// Where a route sends matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The destination is on-link: the next hop is the destination itself.
    OnLink,
    /// Via this gateway.
    Gateway(Ipv4Addr),
    /// Blackhole, unreachable or prohibit: no route.
    Drop,
}

/// One route of the kernel's main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination prefix (host bits zero).
    pub dst: Ipv4Addr,
    /// Its length in bits (0 = the default route).
    pub prefix_len: u8,
    /// RTA_PRIORITY (lower wins among routes of the same prefix).
    pub metric: u32,
    /// Where matching packets go.
    pub target: Target,
}

fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        l => u32::MAX << (32 - u32::from(l.min(32))),
    }
}

/// The routes of one prefix length: masked prefix -> (metric, target).
type PrefixMap = KeyedMap<u32, (u32, Target)>;

/// Where an IPv6 route sends matching packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target6 {
    /// On-link: the next hop is the destination itself.
    OnLink,
    /// Via this gateway (usually a link-local router address).
    Gateway(Ipv6Addr),
    /// Blackhole, unreachable or prohibit: no route.
    Drop,
}

/// One IPv6 route of the kernel's main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route6 {
    /// The destination prefix (host bits zero).
    pub dst: Ipv6Addr,
    /// Its length in bits (0 = the default route).
    pub prefix_len: u8,
    /// RTA_PRIORITY (lower wins among routes of the same prefix).
    pub metric: u32,
    /// Where matching packets go.
    pub target: Target6,
}

/// The IPv6 routes of one prefix length: masked prefix -> (metric, target).
type PrefixMap6 = KeyedMap<u128, (u32, Target6)>;

fn mask6(len: u8) -> u128 {
    match len {
        0 => 0,
        l => u128::MAX << (128 - u32::from(l.min(128))),
    }
}

/// A longest-prefix-match table.
#[derive(Debug, Clone)]
pub struct RouteTable {
    /// Per prefix length present, longest first: masked prefix -> (metric, target).
    by_len: Vec<(u8, PrefixMap)>,
    /// The same for IPv6 (128-bit prefixes).
    by_len6: Vec<(u8, PrefixMap6)>,
    seed: u64,
}

impl RouteTable {
    /// An empty table (every lookup: no route). `seed` keys its hash maps.
    pub fn empty(seed: u64) -> Self {
        RouteTable {
            by_len: Vec::new(),
            by_len6: Vec::new(),
            seed,
        }
    }

    /// The table of `routes` (of the same prefix, the lowest metric wins).
    pub fn new(seed: u64, routes: &[Route]) -> Self {
        let mut t = RouteTable::empty(seed);
        for r in routes {
            t.insert(*r);
        }
        t
    }

    fn insert(&mut self, r: Route) {
        let len = r.prefix_len.min(32);
        let i = match self.by_len.iter().position(|(l, _)| *l <= len) {
            Some(i) if self.by_len[i].0 == len => i,
            Some(i) => {
                self.by_len.insert(i, (len, keyed_map(self.seed)));
                i
            }
            None => {
                self.by_len.push((len, keyed_map(self.seed)));
                self.by_len.len() - 1
            }
        };
        let key = u32::from(r.dst) & mask(len);
        let e = self.by_len[i].1.entry(key).or_insert((r.metric, r.target));
        if r.metric < e.0 {
            *e = (r.metric, r.target);
        }
    }

    /// Adds the IPv6 routes `routes` (of the same prefix, the lowest metric wins).
    pub fn with_v6(mut self, routes: &[Route6]) -> Self {
        for r in routes {
            let len = r.prefix_len.min(128);
            let i = match self.by_len6.iter().position(|(l, _)| *l <= len) {
                Some(i) if self.by_len6[i].0 == len => i,
                Some(i) => {
                    self.by_len6.insert(i, (len, keyed_map(self.seed)));
                    i
                }
                None => {
                    self.by_len6.push((len, keyed_map(self.seed)));
                    self.by_len6.len() - 1
                }
            };
            let key = u128::from(r.dst) & mask6(len);
            let e = self.by_len6[i].1.entry(key).or_insert((r.metric, r.target));
            if r.metric < e.0 {
                *e = (r.metric, r.target);
            }
        }
        self
    }

    /// Routes in the table (both families).
    pub fn len(&self) -> usize {
        self.by_len.iter().map(|(_, m)| m.len()).sum::<usize>()
            + self.by_len6.iter().map(|(_, m)| m.len()).sum::<usize>()
    }

    /// True when the table holds no route.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The next hop toward `dst`: the gateway, or `dst` itself when on-link; `None` when no
    /// route matches or the best match is a blackhole/unreachable/prohibit route.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        let a = u32::from(dst);
        for (len, m) in &self.by_len {
            if let Some((_, t)) = m.get(&(a & mask(*len))) {
                return match t {
                    Target::OnLink => Some(dst),
                    Target::Gateway(g) => Some(*g),
                    Target::Drop => None,
                };
            }
        }
        None
    }

    /// The IPv6 next hop toward `dst` (as [`RouteTable::next_hop`]).
    pub fn next_hop6(&self, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        let a = u128::from(dst);
        for (len, m) in &self.by_len6 {
            if let Some((_, t)) = m.get(&(a & mask6(*len))) {
                return match t {
                    Target6::OnLink => Some(dst),
                    Target6::Gateway(g) => Some(*g),
                    Target6::Drop => None,
                };
            }
        }
        None
    }

    /// Either family.
    pub fn next_hop_any(&self, dst: IpAddr) -> Option<IpAddr> {
        match dst {
            IpAddr::V4(d) => self.next_hop(d).map(IpAddr::V4),
            IpAddr::V6(d) => self.next_hop6(d).map(IpAddr::V6),
        }
    }
}

/// The published table: written by the control side, read by every worker.
#[derive(Debug)]
pub struct SharedRoutes {
    generation: AtomicU64,
    table: Mutex<Arc<RouteTable>>,
}

impl SharedRoutes {
    /// The shared holder of `table` (generation 1).
    pub fn new(table: RouteTable) -> Arc<Self> {
        Arc::new(SharedRoutes {
            generation: AtomicU64::new(1),
            table: Mutex::new(Arc::new(table)),
        })
    }

    /// Replaces the table; readers see it at their next lookup.
    pub fn publish(&self, table: RouteTable) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        *t = Arc::new(table);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Number of tables published so far (1 = the initial one).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn get(&self) -> Arc<RouteTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One worker's reader: a private `Arc` of the current table, swapped when the generation
/// moves (the mutex is taken only then, for an `Arc` clone).
#[derive(Debug, Clone)]
pub struct RouteView {
    shared: Arc<SharedRoutes>,
    generation: u64,
    table: Arc<RouteTable>,
}

impl RouteView {
    /// A worker's view of `shared`, at its current generation.
    pub fn new(shared: Arc<SharedRoutes>) -> Self {
        let generation = shared.generation();
        let table = shared.get();
        RouteView {
            shared,
            generation,
            table,
        }
    }

    /// The generation of the table this view uses after refreshing.
    pub fn generation(&mut self) -> u64 {
        let g = self.shared.generation();
        if g != self.generation {
            self.table = self.shared.get();
            self.generation = g;
        }
        self.generation
    }

    /// The next hop toward `dst` in the newest table.
    pub fn next_hop(&mut self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        self.generation();
        self.table.next_hop(dst)
    }

    /// The next hop toward `dst` (either family) in the newest table.
    pub fn next_hop_any(&mut self, dst: IpAddr) -> Option<IpAddr> {
        self.generation();
        self.table.next_hop_any(dst)
    }
}

/// The route refresher's counters (one set per stack, shared with `xdptcp stat` and the
/// metrics thread).
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Route tables published (the first at start included).
    pub tables: AtomicU64,
    /// Routes in the table in use (a gauge).
    pub routes: AtomicU64,
    /// Route-change notifications read (RTNLGRP_IPV4_ROUTE).
    pub events: AtomicU64,
    /// Times notifications were lost (ENOBUFS: the socket's buffer overflowed); a dump
    /// catches up.
    pub events_lost: AtomicU64,
    /// Notification reads that failed otherwise (not EAGAIN / ENOBUFS).
    pub recv_errors: AtomicU64,
    /// Dumps that failed (the old table stays in use until the next one).
    pub dump_errors: AtomicU64,
}

impl RouteStats {
    /// (name, value) in report order (the `xdptcp stat` names).
    pub fn counters(&self) -> [(&'static str, u64); 6] {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        [
            ("route_tables", r(&self.tables)),
            ("routes", r(&self.routes)),
            ("route_events", r(&self.events)),
            ("route_events_lost", r(&self.events_lost)),
            ("route_recv_errors", r(&self.recv_errors)),
            ("route_dump_errors", r(&self.dump_errors)),
        ]
    }

    fn published(&self, routes: usize) {
        self.tables.fetch_add(1, Ordering::Relaxed);
        self.routes.store(routes as u64, Ordering::Relaxed);
    }
}

/// The control side's refresher: a socket subscribed to route notifications and one for dumps.
pub struct RouteMonitor {
    events: netlink_sys::Socket,
    nl: super::Netlink,
    shared: Arc<SharedRoutes>,
    seed: u64,
    buf: Vec<u8>,
    stats: Arc<RouteStats>,
}

/// RTNLGRP_IPV4_ROUTE (linux/rtnetlink.h).
const RTNLGRP_IPV4_ROUTE: u32 = 7;
/// RTNLGRP_IPV6_ROUTE (linux/rtnetlink.h).
const RTNLGRP_IPV6_ROUTE: u32 = 11;

impl RouteMonitor {
    /// Dumps the routes once (the table a stack starts with) and subscribes to changes, in the
    /// calling thread's network namespace.
    pub fn open(seed: u64) -> io::Result<RouteMonitor> {
        let mut nl = super::Netlink::open()?;
        let table = RouteTable::new(seed, &nl.route_dump()?).with_v6(&nl.route_dump6()?);
        let stats = Arc::new(RouteStats::default());
        stats.published(table.len());
        let mut events = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        events.bind_auto()?;
        events.add_membership(RTNLGRP_IPV4_ROUTE)?;
        events.add_membership(RTNLGRP_IPV6_ROUTE)?;
        events.set_non_blocking(true)?;
        Ok(RouteMonitor {
            events,
            nl,
            shared: SharedRoutes::new(table),
            seed,
            buf: Vec::with_capacity(64 * 1024),
            stats,
        })
    }

    /// The counters (shared: they move while the route thread runs).
    pub fn stats(&self) -> Arc<RouteStats> {
        self.stats.clone()
    }

    /// The published table (give each worker a [`RouteView`] of it).
    pub fn shared(&self) -> Arc<SharedRoutes> {
        self.shared.clone()
    }

    /// Drains pending notifications (at most 1024 reads); re-dumps and publishes when there
    /// was one, or when `force`. Returns whether a new table was published.
    pub fn poll(&mut self, force: bool) -> bool {
        let mut changed = force;
        let st = &self.stats;
        for _ in 0..1024 {
            self.buf.clear();
            match self.events.recv(&mut self.buf, 0) {
                Ok(_) => {
                    st.events.fetch_add(1, Ordering::Relaxed);
                    changed = true;
                }
                // ENOBUFS: notifications were lost; a dump catches up.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    st.events_lost.fetch_add(1, Ordering::Relaxed);
                    changed = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break, // drained
                Err(_) => {
                    // Counted; the periodic forced dump still keeps the table fresh.
                    st.recv_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        if !changed {
            return false;
        }
        match (self.nl.route_dump(), self.nl.route_dump6()) {
            (Ok(routes), Ok(routes6)) => {
                let table = RouteTable::new(self.seed, &routes).with_v6(&routes6);
                self.stats.published(table.len());
                self.shared.publish(table);
                true
            }
            _ => {
                self.stats.dump_errors.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(dst: [u8; 4], len: u8, metric: u32, target: Target) -> Route {
        Route {
            dst: Ipv4Addr::from(dst),
            prefix_len: len,
            metric,
            target,
        }
    }

    const GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const GW2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 9);

    #[test]
    fn longest_prefix_wins_then_lowest_metric() {
        let t = RouteTable::new(
            7,
            &[
                r([0, 0, 0, 0], 0, 100, Target::Gateway(GW)),
                r([198, 18, 0, 0], 24, 0, Target::OnLink),
                r([198, 19, 0, 0], 16, 10, Target::Gateway(GW2)),
                r([198, 19, 0, 0], 16, 5, Target::Gateway(GW)),
                r([198, 19, 7, 0], 24, 0, Target::Drop),
            ],
        );
        assert_eq!(t.len(), 4);
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(t.next_hop(a("198.18.0.77")), Some(a("198.18.0.77")));
        assert_eq!(t.next_hop(a("198.19.3.4")), Some(GW)); // metric 5 beats 10
        assert_eq!(t.next_hop(a("198.19.7.4")), None); // blackhole shadows the /16
        assert_eq!(t.next_hop(a("203.0.113.1")), Some(GW)); // default
        assert_eq!(RouteTable::empty(1).next_hop(a("198.18.0.1")), None);
    }

    #[test]
    fn views_pick_up_published_tables() {
        let shared = SharedRoutes::new(RouteTable::empty(1));
        let mut v = RouteView::new(shared.clone());
        let dst = Ipv4Addr::new(198, 18, 0, 2);
        assert_eq!(v.next_hop(dst), None);
        let g = v.generation();
        shared.publish(RouteTable::new(
            1,
            &[r([198, 18, 0, 0], 15, 0, Target::OnLink)],
        ));
        assert_eq!(v.next_hop(dst), Some(dst));
        assert_eq!(v.generation(), g + 1);
    }

    /// IPv6: the same longest-prefix match over 128-bit prefixes, in the same table as the
    /// IPv4 routes but never mixed with them (a default IPv4 route is no IPv6 route).
    #[test]
    fn ipv6_longest_prefix_and_families_apart() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        let r6 = |dst: &str, len, metric, target| Route6 {
            dst: a(dst),
            prefix_len: len,
            metric,
            target,
        };
        let gw6 = a("fe80::1");
        let t = RouteTable::new(7, &[r([0, 0, 0, 0], 0, 100, Target::Gateway(GW))]).with_v6(&[
            r6("::", 0, 1024, Target6::Gateway(gw6)),
            r6("2001:2::", 64, 256, Target6::OnLink),
            r6("2001:2:0:1::", 64, 256, Target6::Drop),
            r6("2001:2::", 48, 10, Target6::Gateway(a("2001:2::fe"))),
        ]);
        assert_eq!(t.len(), 5);
        assert_eq!(t.next_hop6(a("2001:2::2")), Some(a("2001:2::2")));
        assert_eq!(t.next_hop6(a("2001:2:0:1::5")), None);
        assert_eq!(t.next_hop6(a("2001:2:0:9::5")), Some(a("2001:2::fe")));
        assert_eq!(t.next_hop6(a("2001:db8::1")), Some(gw6));
        assert_eq!(
            t.next_hop_any(a("2001:2::2").into()),
            Some(a("2001:2::2").into())
        );
        let v4_only = RouteTable::new(7, &[r([0, 0, 0, 0], 0, 100, Target::Gateway(GW))]);
        assert_eq!(v4_only.next_hop_any(a("2001:2::2").into()), None);
        assert_eq!(
            v4_only.next_hop_any(Ipv4Addr::new(203, 0, 113, 1).into()),
            Some(GW.into())
        );
    }
}
