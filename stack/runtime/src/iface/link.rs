//! Where frames go: the next hop toward a destination and that next hop's MAC.
//!
//! [`Link`] extends the neighbour cache's [`Resolver`] with the route lookup. Production uses
//! the kernel ([`KernelResolver`]: RTM_GETROUTE and the kernel's neighbour table, over
//! netlink); tests and simulations use [`StaticLink`] (everything on-link, a fixed table).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use crate::neigh::{KernelResolver, Mac, Resolver};

/// Route lookup plus neighbour resolution. Resolver calls may block briefly (netlink); the
/// interface makes them on the neighbour cache's bounded retry schedule, never per packet.
/// `next_hop` should not block (the production link reads a user-space copy of the kernel's
/// routes); the interface caches its answers per remote anyway.
pub trait Link: Resolver {
    /// The next hop toward `dst` (a gateway, or `dst` itself when on-link); `None` when
    /// there is no route.
    fn next_hop(&mut self, dst: IpAddr) -> Option<IpAddr>;

    /// Changes when the routes change: the interface drops its per-remote cache then.
    fn routes_generation(&mut self) -> u64 {
        0
    }

    /// Requests to the kernel that failed (each read as "not known yet").
    fn netlink_errors(&self) -> u64 {
        0
    }
}

impl Link for KernelResolver {
    fn next_hop(&mut self, dst: IpAddr) -> Option<IpAddr> {
        match (self.routes(), dst) {
            (Some(v), _) => v.next_hop_any(dst),
            // Without a route view (tools, tests): ask the kernel.
            (None, IpAddr::V4(d)) => self.netlink().route_get(d).ok().map(|h| h.ip.into()),
            // Tools without a route view do not speak IPv6: on-link.
            (None, IpAddr::V6(_)) => Some(dst),
        }
    }

    fn routes_generation(&mut self) -> u64 {
        self.routes().map_or(0, |v| v.generation())
    }

    fn netlink_errors(&self) -> u64 {
        self.errors()
    }
}

/// Every destination on-link, MACs from a fixed table (tests, in-memory links).
#[derive(Debug, Clone, Default)]
pub struct StaticLink {
    macs: HashMap<IpAddr, Mac>,
    /// `lookup` calls made (a test can check that routes and MACs are cached).
    pub lookups: u64,
}

impl StaticLink {
    /// Every address in `entries` resolves to its MAC; others stay unresolved.
    pub fn new(entries: &[(Ipv4Addr, Mac)]) -> Self {
        StaticLink {
            macs: entries.iter().map(|&(a, m)| (a.into(), m)).collect(),
            lookups: 0,
        }
    }

    /// Adds an address of either family to the table.
    pub fn insert(&mut self, ip: IpAddr, mac: Mac) {
        self.macs.insert(ip, mac);
    }
}

impl Resolver for StaticLink {
    fn lookup(&mut self, ip: IpAddr) -> Option<Mac> {
        self.lookups += 1;
        self.macs.get(&ip).copied()
    }
    fn solicit(&mut self, _ip: IpAddr) {}
}

impl Link for StaticLink {
    fn next_hop(&mut self, dst: IpAddr) -> Option<IpAddr> {
        Some(dst)
    }
}
