//! ICMPv4 errors the XDP program steered here (xdp-prog `icmp.h`: an error quoting a
//! segment of one of the stack's flows): parsed, owned by the worker of the quoted 4-tuple
//! (RSS hashed the ICMP packet, not the flow, so it may have to be handed off) and given to
//! the endpoint ([`Endpoint::on_icmp_error`]), which acts as Linux's `tcp_v4_err`.

use std::net::SocketAddrV4;

use super::{ExtraAddrs, IfaceStats};
use crate::tcp::endpoint::Endpoint;
use crate::tcp::icmp::IcmpError;
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;
use crate::wire::{self, Icmpv4Frame};

/// What a frame the TCP parser called `Unsupported` is.
pub(super) enum NotTcp {
    /// An ICMPv4 error about a TCP segment we sent: the flow (our side local) and the error.
    Icmp(FourTuple, Icmpv4Frame),
    /// Not ICMP, or an ICMP message we do not act on: counted as `rx_unsupported`.
    Unsupported,
    /// ICMP, but truncated, malformed or with a bad checksum: counted by reason.
    Invalid(wire::Error),
}

/// Classifies a frame the TCP parser refused as `Unsupported`.
pub(super) fn classify(frame: &[u8]) -> NotTcp {
    match wire::parse_icmpv4_frame(frame) {
        Ok(f) => match f.icmp.quoted.tcp() {
            Some(q) => NotTcp::Icmp(
                FourTuple::new(
                    SocketAddrV4::new(f.icmp.quoted.src_addr, q.src_port),
                    SocketAddrV4::new(f.icmp.quoted.dst_addr, q.dst_port),
                ),
                f,
            ),
            None => NotTcp::Unsupported,
        },
        Err(wire::Error::Unsupported) => NotTcp::Unsupported,
        Err(e) => NotTcp::Invalid(e),
    }
}

/// Whether the error is for us: sent to one of our addresses about a segment from one.
pub(super) fn is_ours(addr: std::net::Ipv4Addr, extra: &ExtraAddrs, f: &Icmpv4Frame) -> bool {
    let ours = |a| a == addr || extra.contains(a);
    ours(f.ip.dst_addr) && ours(f.icmp.quoted.src_addr)
}

/// Hands one parsed error to the endpoint.
pub(super) fn ingest(
    now: Instant,
    tuple: FourTuple,
    f: &Icmpv4Frame,
    ep: &mut Endpoint,
    stats: &mut IfaceStats,
) {
    stats.rx_icmp += 1;
    let Some(q) = f.icmp.quoted.tcp() else {
        return;
    };
    ep.on_icmp_error(now, tuple, IcmpError::from_icmpv4(&f.icmp.message), q.seq);
}

/// Counts a frame that was neither TCP nor an ICMP error we act on.
pub(super) fn count_invalid(stats: &mut IfaceStats, e: wire::Error) {
    *match e {
        wire::Error::Truncated => &mut stats.rx_truncated,
        wire::Error::Malformed => &mut stats.rx_malformed,
        wire::Error::Checksum => &mut stats.rx_checksum,
        wire::Error::Unsupported => &mut stats.rx_unsupported,
    } += 1;
}
