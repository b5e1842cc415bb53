//! ICMP errors the XDP program steered here (xdp-prog `icmp.h`, `steer6.h`: an ICMPv4 or
//! ICMPv6 error quoting a segment of one of the stack's flows): parsed, owned by the worker
//! of the quoted 4-tuple (RSS hashed the ICMP packet, not the flow, so it may have to be
//! handed off) and given to the endpoint ([`Endpoint::on_icmpv4_error`], [`Endpoint::on_icmpv6_error`]), which acts as
//! Linux's `tcp_v4_err` / `tcp_v6_err`.

use std::net::{SocketAddrV4, SocketAddrV6};

use super::{ExtraAddrs, IfaceStats};
use crate::app::Addrs6;
use crate::tcp::endpoint::Endpoint;
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;
use crate::wire::icmpv6::Icmpv6Error;
use crate::wire::{self, Icmpv4Frame, Icmpv4Message, Icmpv6ErrorFrame};

/// A parsed ICMP error about a TCP segment, of either family.
pub(super) enum IcmpFrame {
    /// ICMPv4 (its quote is TCP: [`classify`] checked).
    V4(Icmpv4Frame),
    /// ICMPv6 (Destination Unreachable, Packet Too Big, Time Exceeded, Parameter Problem).
    V6(Icmpv6ErrorFrame),
}

/// What a frame the TCP parser called `Unsupported` is.
pub(super) enum NotTcp {
    /// An ICMP error about a TCP segment we sent: the flow (our side local) and the error.
    Icmp(FourTuple, IcmpFrame),
    /// Not ICMP, or an ICMP message we do not act on: counted as `rx_unsupported`.
    Unsupported,
    /// ICMP, but truncated, malformed or with a bad checksum: counted by reason.
    Invalid(wire::Error),
}

/// Classifies a frame the TCP parser refused as `Unsupported`. The ICMPv6 checksum is
/// always verified (RFC 4443 §2.3; no NIC offloads it), as the ICMPv4 one is.
pub(super) fn classify(frame: &[u8]) -> NotTcp {
    let is_v6 = wire::EthernetFrame::new_checked(frame)
        .is_ok_and(|e| e.ethertype_raw() == wire::EtherType::IPV6);
    if is_v6 {
        return match wire::parse_icmpv6_error_frame(frame, true) {
            Ok(f) => {
                let q = f.icmp.quoted;
                NotTcp::Icmp(
                    FourTuple::new_v6(
                        SocketAddrV6::new(q.src_addr, q.src_port, 0, 0),
                        SocketAddrV6::new(q.dst_addr, q.dst_port, 0, 0),
                    ),
                    IcmpFrame::V6(f),
                )
            }
            Err(wire::Error::Unsupported) => NotTcp::Unsupported,
            Err(e) => NotTcp::Invalid(e),
        };
    }
    match wire::parse_icmpv4_frame(frame) {
        Ok(f) => match f.icmp.quoted.tcp() {
            Some(q) => NotTcp::Icmp(
                FourTuple::new(
                    SocketAddrV4::new(f.icmp.quoted.src_addr, q.src_port),
                    SocketAddrV4::new(f.icmp.quoted.dst_addr, q.dst_port),
                ),
                IcmpFrame::V4(f),
            ),
            None => NotTcp::Unsupported,
        },
        Err(wire::Error::Unsupported) => NotTcp::Unsupported,
        Err(e) => NotTcp::Invalid(e),
    }
}

/// Whether the error is for us: sent to one of our addresses about a segment from one.
pub(super) fn is_ours(
    addr: Option<std::net::Ipv4Addr>,
    extra: &ExtraAddrs,
    addrs6: &Addrs6,
    f: &IcmpFrame,
) -> bool {
    match f {
        IcmpFrame::V4(f) => {
            let ours = |a| addr == Some(a) || extra.contains(a);
            ours(f.ip.dst_addr) && ours(f.icmp.quoted.src_addr)
        }
        IcmpFrame::V6(f) => {
            addrs6.contains(f.ip.dst_addr) && addrs6.contains(f.icmp.quoted.src_addr)
        }
    }
}

/// Hands one parsed error to the endpoint.
pub(super) fn ingest(
    now: Instant,
    tuple: FourTuple,
    f: &IcmpFrame,
    ep: &mut Endpoint,
    stats: &mut IfaceStats,
) {
    stats.rx_icmp += 1;
    // The message itself goes to the endpoint: RFC 6069's RTO revert depends on the exact
    // code (net / host unreachable, ICMPv6 no route), which `IcmpError` does not keep.
    match f {
        IcmpFrame::V4(f) => {
            let Some(q) = f.icmp.quoted.tcp() else {
                return;
            };
            if matches!(f.icmp.message, Icmpv4Message::ParamProblem { .. }) {
                stats.rx_icmp_param_problem += 1;
            }
            ep.on_icmpv4_error(now, tuple, &f.icmp.message, q.seq);
        }
        IcmpFrame::V6(f) => {
            if matches!(f.icmp.error, Icmpv6Error::ParamProblem { .. }) {
                stats.rx_icmp6_param_problem += 1;
            }
            ep.on_icmpv6_error(now, tuple, &f.icmp.error, f.icmp.quoted.seq);
        }
    }
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
