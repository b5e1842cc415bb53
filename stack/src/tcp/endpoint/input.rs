//! Segment arrival at the endpoint: demux and the stateless rules (RFC 9293 §3.10.7.1 CLOSED,
//! §3.10.7.2 LISTEN, TIME-WAIT records, SYN cookies).

use std::net::Ipv4Addr;

use super::Endpoint;
use crate::time::Instant;
use crate::wire::TcpRepr;

impl Endpoint {
    /// One arriving segment (`src`/`dst` from its IPv4 header), already parsed and checksummed.
    pub fn on_segment(&mut self, now: Instant, src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr<'_>) {
        let _ = (now, src, dst, seg);
        self.stats.segments_in += 1;
    }
}
