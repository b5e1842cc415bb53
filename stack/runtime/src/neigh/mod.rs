//! Neighbours: next-hop MAC resolution.
//!
//! The stack shares the interface's IPv4 address with the kernel, and the kernel answers ARP
//! (the XDP program passes ARP to it). Rather than run a second ARP implementation that would
//! compete with the kernel's on the same address, the stack uses the kernel's neighbour table:
//! it reads entries over rtnetlink and, for a missing one, asks the kernel to resolve it
//! (RTM_NEWNEIGH with NTF_USE, as `ip neigh replace IP dev IF use`). The user never supplies a
//! static table.
//!
//! - [`netlink`]: a small synchronous rtnetlink client (route, neighbour, link, address queries).
//! - [`cache`]: the sans-IO cache the worker consults per frame; it holds frames to unresolved
//!   neighbours (bounded), retries resolution on a bounded schedule and hands failed frames back.
//! - [`KernelResolver`]: the production [`Resolver`] back-end over [`Netlink`].
//!
//! - [`route`]: the kernel's routes in user space (longest-prefix match), refreshed by the
//!   control side on route notifications, so the workers never ask the kernel per remote.
//!
//! Next hops come from the [`route::RouteView`] given to the [`KernelResolver`] (gateway or
//! on-link destination; without one, from [`Netlink::route_get`]); the cache is keyed by
//! next-hop address.

pub mod cache;
pub mod netlink;
pub mod route;

use std::net::IpAddr;

pub use cache::{Lookup, NeighCache, NeighConfig, NeighEvent, NeighStats, Queued, Resolver};
pub use netlink::{LinkInfo, Mac, Netlink, NextHop, NudState};

/// The kernel's neighbour table for one interface as a [`Resolver`]. Netlink errors are counted
/// and read as "not known yet", so the cache's retry schedule and timeout still apply.
pub struct KernelResolver {
    nl: Netlink,
    ifindex: u32,
    errors: u64,
    routes: Option<route::RouteView>,
}

impl KernelResolver {
    /// A resolver for the interface with index `ifindex`, asking over `nl`.
    pub fn new(nl: Netlink, ifindex: u32) -> Self {
        KernelResolver {
            nl,
            ifindex,
            errors: 0,
            routes: None,
        }
    }

    /// Next hops from `routes` (user-space longest-prefix match, no syscall) instead of one
    /// RTM_GETROUTE per remote.
    pub fn with_routes(mut self, routes: route::RouteView) -> Self {
        self.routes = Some(routes);
        self
    }

    /// The route view, if any.
    pub fn routes(&mut self) -> Option<&mut route::RouteView> {
        self.routes.as_mut()
    }

    /// Netlink requests that failed (each was treated as "unknown").
    pub fn errors(&self) -> u64 {
        self.errors
    }

    /// The underlying socket, for route/link queries on the control path.
    pub fn netlink(&mut self) -> &mut Netlink {
        &mut self.nl
    }
}

impl Resolver for KernelResolver {
    fn lookup(&mut self, ip: IpAddr) -> Option<Mac> {
        match self.nl.neigh_get(self.ifindex, ip) {
            Ok(Some((mac, state))) if state.usable() => Some(mac),
            Ok(_) => None,
            Err(_) => {
                self.errors += 1;
                None
            }
        }
    }

    fn solicit(&mut self, ip: IpAddr) {
        if self.nl.neigh_resolve(self.ifindex, ip).is_err() {
            self.errors += 1;
        }
    }
}
