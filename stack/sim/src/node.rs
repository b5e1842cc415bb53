//! What the simulator needs from a node: the sans-IO surface (segments in, timeouts,
//! segments out). Implemented for the per-shard TCP endpoint; tests use toy nodes.

use std::net::{IpAddr, Ipv4Addr};

use xdptcp_core::tcp::endpoint::Endpoint;
use xdptcp_core::time::Instant;
use xdptcp_core::wire::TcpRepr;

pub trait Node {
    /// A parsed segment arrived (`src`/`dst` from its IPv4 header).
    fn handle(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>);
    /// `now` has reached (or passed) `next_deadline`.
    fn handle_timeout(&mut self, now: Instant);
    fn next_deadline(&self) -> Option<Instant>;
    /// Emit everything due: `out(src, dst, segment)` per segment.
    fn transmit(&mut self, now: Instant, out: &mut dyn FnMut(Ipv4Addr, Ipv4Addr, &TcpRepr<'_>));
}

impl Node for Endpoint {
    fn handle(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>) {
        self.on_segment(now, src, dst, seg);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.on_timeout(now);
    }
    fn next_deadline(&self) -> Option<Instant> {
        Endpoint::next_deadline(self)
    }
    fn transmit(&mut self, now: Instant, out: &mut dyn FnMut(Ipv4Addr, Ipv4Addr, &TcpRepr<'_>)) {
        // The simulated network is IPv4 only: its endpoints never make an IPv6 segment.
        self.poll_transmit(now, |src, dst, seg| {
            if let (IpAddr::V4(src), IpAddr::V4(dst)) = (src, dst) {
                out(src, dst, seg)
            }
        });
    }
}
