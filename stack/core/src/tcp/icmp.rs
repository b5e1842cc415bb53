//! ICMP errors as TCP sees them (Linux `tcp_v4_err`): the version-neutral error a worker
//! hands to [`Endpoint::on_icmp_error`](crate::tcp::Endpoint::on_icmp_error), the errno-like
//! error a connection may end with, and what handling one did (for counters and tests).
//!
//! The rules (in conn/icmp.rs, applied per connection):
//! - RFC 5927 §4.1 validation: the quoted sequence number must be in flight,
//!   SND.UNA =< SEG.SEQ =< SND.NXT (Linux `between(seq, snd_una, snd_nxt)`; SND.NXT here is
//!   the highest sent, SND.MAX); anything else is ignored and counted.
//! - "Fragmentation needed" / "packet too big" (RFC 1191, RFC 8201): the path MTU only
//!   decreases; a reported MTU below [`MIN_PMTU`] (or 0, a pre-RFC 1191 router) gives
//!   `min(PMTU, MIN_PMTU)` (Linux `ip_rt_min_pmtu`); the effective MSS follows, never below
//!   [`MIN_SND_MSS`], and what was in flight is sent again at once at the new size (Linux
//!   `tcp_v4_mtu_reduced` + `tcp_simple_retransmit`: no congestion response, cwnd keeps its
//!   count of segments).
//! - Any other destination unreachable, and time exceeded: fatal in SYN-SENT (and in an
//!   active SYN-RECEIVED) with the errno Linux gives (`icmp_err_convert`; port unreachable is
//!   ECONNREFUSED); for a passive SYN-RECEIVED quoting our ISS, net/host unreachable and time
//!   exceeded drop the half-open connection silently (`tcp_req_err`); in the synchronized
//!   states only a soft error, remembered and reported instead of `TimedOut` if the
//!   connection later times out with no ACK since (Linux `sk_err_soft`, RFC 1122 §4.2.3.9:
//!   "MUST NOT abort the connection" for these).
//! - Parameter Problem of either family (RFC 792 type 12, RFC 4443 §3.4): EPROTO and fatal
//!   in `icmp_err_convert` and `icmpv6_err_convert` alike ([`IcmpError::PARAM_PROBLEM`]):
//!   it fails SYN-SENT, drops a passive SYN-RECEIVED quoting our ISS (`tcp_v4_err` passes
//!   `type == ICMP_PARAMETERPROB` to `tcp_req_err` as its abort), and is a soft error in
//!   the synchronized states, as [`Unreachable::ProtocolError`].
//! - ICMPv6 (Linux `tcp_v6_err`, `icmpv6_err_convert`): Packet Too Big as above, but a
//!   reported MTU below [`IPV6_MIN_PMTU`] is discarded (RFC 8201 §4) and the MSS is the path
//!   MTU less 60; Destination Unreachable and Time Exceeded as for IPv4 with the errnos of
//!   [`IcmpError::from_icmpv6`]; a passive SYN-RECEIVED is dropped by the codes Linux calls
//!   fatal (admin prohibited, port unreachable, policy, reject route, unknown codes), not by
//!   no route, beyond scope, address unreachable or time exceeded (`tcp_req_err(.., fatal)`).
//! - RFC 6069 (TCP-LD, Linux `tcp_ld_RTO_revert`): ICMPv4 net / host unreachable (codes 0
//!   and 1, [`is_disruption_v4`]) or ICMPv6 no route ([`is_disruption_v6`]) quoting SND.UNA
//!   while the retransmission timer is backed off (a timeout without progress since, and a
//!   doubling since the last RTT sample) undoes one doubling: the timer is re-armed for the
//!   head's last transmission plus the recomputed RTO, or the head is retransmitted at once
//!   if that is past. The soft error is recorded as above.

use crate::wire::icmpv6::{self, Icmpv6Error};
use crate::wire::{DstUnreachable, Icmpv4Message};

/// Linux `ip_rt_min_pmtu` (512 + 20 + 20): the smallest path MTU learned from ICMP.
pub const MIN_PMTU: u16 = 552;
/// The IPv6 minimum link MTU (RFC 8200 §5, Linux `IPV6_MIN_MTU`): a Packet Too Big below it
/// is discarded (RFC 8201 §4, Linux `tcp_v6_err`), so no IPv6 path MTU goes below it.
pub const IPV6_MIN_PMTU: u16 = icmpv6::IPV6_MIN_MTU as u16;
/// Linux `tcp_min_snd_mss` default: the smallest MSS (header-level, before options) used.
pub const MIN_SND_MSS: u16 = 48;
/// Linux `tcp_retries1` default: after this many retransmission timeouts in a row without
/// progress, black-hole detection (`tcp_mtu_probing` >= 1) lowers the MSS.
pub const TCP_RETRIES1: u32 = 3;

/// What an ICMP error says, independent of the IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// ICMPv4 destination unreachable code 4, "fragmentation needed and DF set" (RFC 1191;
    /// ICMPv6 packet too big, RFC 8201): the next-hop MTU, 0 when the router did not say.
    PacketTooBig {
        /// Next-hop MTU in bytes.
        mtu: u16,
    },
    /// Any other destination unreachable, as the error Linux maps its code to.
    Unreachable(Unreachable),
    /// Time exceeded (TTL or reassembly): EHOSTUNREACH in Linux.
    TimeExceeded,
}

/// The errno Linux gives a destination-unreachable code (`icmp_err_convert`, RFC 1122
/// §3.2.2.1 for the codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Unreachable {
    /// Codes 0, 6, 9, 11: ENETUNREACH.
    #[error("network is unreachable")]
    Net,
    /// Codes 1, 10, 12, 13, 14, 15 (and time exceeded): EHOSTUNREACH.
    #[error("no route to host")]
    Host,
    /// Code 2: ENOPROTOOPT.
    #[error("protocol not available")]
    Protocol,
    /// Code 3: ECONNREFUSED (reported as [`ConnError::Refused`](crate::tcp::ConnError)).
    #[error("connection refused")]
    Port,
    /// Code 5: EOPNOTSUPP.
    #[error("source route failed")]
    SourceRoute,
    /// Code 7: EHOSTDOWN.
    #[error("host is down")]
    HostDown,
    /// Code 8: ENONET.
    #[error("machine is not on the network")]
    NoNetwork,
    /// ICMPv6 codes 1, 5, 6 (administratively prohibited, source address failed policy,
    /// reject route): EACCES.
    #[error("permission denied")]
    Prohibited,
    /// ICMPv6 Destination Unreachable codes RFC 4443 does not define, and Parameter Problem
    /// of either family (RFC 792 type 12, RFC 4443 §3.4): EPROTO.
    #[error("protocol error")]
    ProtocolError,
}

impl IcmpError {
    /// A Parameter Problem of either family (RFC 792 type 12, RFC 4443 §3.4), whatever its
    /// code and pointer: EPROTO, fatal (Linux `icmp_err_convert` for ICMP_PARAMETERPROB,
    /// `icmpv6_err_convert` for ICMPV6_PARAMPROB). The stack sends no IP options or
    /// extension headers, so it points at a broken middlebox.
    pub const PARAM_PROBLEM: IcmpError = IcmpError::Unreachable(Unreachable::ProtocolError);

    /// The TCP meaning of an ICMPv4 error message (Linux `icmp_err_convert`).
    pub fn from_icmpv4(m: &Icmpv4Message) -> IcmpError {
        use DstUnreachable as D;
        match *m {
            Icmpv4Message::TimeExceeded(_) => IcmpError::TimeExceeded,
            Icmpv4Message::ParamProblem { .. } => IcmpError::PARAM_PROBLEM,
            Icmpv4Message::DstUnreachable { code, next_hop_mtu } => {
                IcmpError::Unreachable(match code {
                    D::FragNeeded => return IcmpError::PacketTooBig { mtu: next_hop_mtu },
                    D::NetUnreachable | D::NetUnknown | D::NetProhibited | D::NetUnreachableTos => {
                        Unreachable::Net
                    }
                    D::HostUnreachable
                    | D::HostProhibited
                    | D::HostUnreachableTos
                    | D::CommProhibited
                    | D::PrecedenceViolation
                    | D::PrecedenceCutoff => Unreachable::Host,
                    D::ProtoUnreachable => Unreachable::Protocol,
                    D::PortUnreachable => Unreachable::Port,
                    D::SrcRouteFailed => Unreachable::SourceRoute,
                    D::HostUnknown => Unreachable::HostDown,
                    D::HostIsolated => Unreachable::NoNetwork,
                })
            }
        }
    }

    /// The TCP meaning of an ICMPv6 error message (Linux `icmpv6_err_convert`, RFC 4443
    /// §3.1 for the codes). A Packet Too Big MTU above 65535 (a jumbogram path) is 65535.
    pub fn from_icmpv6(e: &Icmpv6Error) -> IcmpError {
        use icmpv6::DstUnreachable as D;
        match *e {
            Icmpv6Error::PacketTooBig { mtu } => IcmpError::PacketTooBig {
                mtu: u16::try_from(mtu).unwrap_or(u16::MAX),
            },
            Icmpv6Error::TimeExceeded(_) => IcmpError::TimeExceeded,
            Icmpv6Error::ParamProblem { .. } => IcmpError::PARAM_PROBLEM,
            Icmpv6Error::DstUnreachable(code) => IcmpError::Unreachable(match code {
                D::NoRoute => Unreachable::Net,
                D::BeyondScope | D::AddrUnreachable => Unreachable::Host,
                D::PortUnreachable => Unreachable::Port,
                D::AdminProhibited | D::FailedPolicy | D::RejectRoute => Unreachable::Prohibited,
                D::Other(_) => Unreachable::ProtocolError,
            }),
        }
    }

    /// Whether a passive SYN-RECEIVED connection is dropped by it: over IPv4 Linux
    /// `tcp_req_err`'s `abort` (parameter problem, net or host unreachable, time exceeded);
    /// over IPv6 the codes `icmpv6_err_convert` calls fatal, which are the others and
    /// parameter problem (see the module docs).
    pub(crate) fn drops_half_open(&self, ipv6: bool) -> bool {
        match self {
            IcmpError::PacketTooBig { .. } => false,
            // Only a Parameter Problem gives EPROTO over IPv4: fatal in both families.
            IcmpError::Unreachable(Unreachable::ProtocolError) => true,
            IcmpError::TimeExceeded
            | IcmpError::Unreachable(Unreachable::Net | Unreachable::Host) => !ipv6,
            IcmpError::Unreachable(_) => ipv6,
        }
    }
}

/// What [`Endpoint::on_icmp_error`](crate::tcp::Endpoint::on_icmp_error) did with one error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IcmpOutcome {
    /// No connection (or only a TIME-WAIT record) has the quoted 4-tuple.
    NoConnection,
    /// RFC 5927 §4.1: the quoted sequence number is not in flight (Linux
    /// `OutOfWindowIcmps`); ignored.
    OutOfWindow,
    /// The path MTU went down to this value; the MSS and what is in flight followed.
    PmtuLowered(u16),
    /// A packet-too-big that lowers nothing (not below the current path MTU, or a state
    /// that sends no data).
    PmtuUnchanged,
    /// The connection failed with this error (SYN-SENT) or a half-open one was dropped.
    Fatal,
    /// Recorded as a soft error; the connection goes on.
    Soft,
}

/// ICMP error counters of one endpoint (Linux's names where it has one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcmpStats {
    /// ICMP errors handed to the endpoint (`InErrors`-ish, after the wire checks).
    pub errors_in: u64,
    /// For no connection (or a TIME-WAIT record): ignored.
    pub no_connection: u64,
    /// RFC 5927 §4.1: quoted sequence number not in flight (`OutOfWindowIcmps`): ignored.
    pub out_of_window: u64,
    /// Fragmentation needed / packet too big that lowered a path MTU.
    pub pmtu_lowered: u64,
    /// Fragmentation needed / packet too big that lowered nothing.
    pub pmtu_unchanged: u64,
    /// Connections failed (SYN-SENT) or half-open ones dropped by an ICMP error.
    pub fatal: u64,
    /// Soft errors recorded on connections that go on.
    pub soft: u64,
    /// MSS reductions by black-hole detection (`tcp_mtu_probing`), after repeated timeouts.
    pub black_hole_mss_lowered: u64,
}

impl IcmpStats {
    /// Counts one outcome.
    pub fn count(&mut self, o: IcmpOutcome) {
        self.errors_in += 1;
        *match o {
            IcmpOutcome::NoConnection => &mut self.no_connection,
            IcmpOutcome::OutOfWindow => &mut self.out_of_window,
            IcmpOutcome::PmtuLowered(_) => &mut self.pmtu_lowered,
            IcmpOutcome::PmtuUnchanged => &mut self.pmtu_unchanged,
            IcmpOutcome::Fatal => &mut self.fatal,
            IcmpOutcome::Soft => &mut self.soft,
        } += 1;
    }
}

/// RFC 6069 §3 as Linux applies it (`tcp_v4_err`): ICMPv4 destination unreachable code 0
/// (net) or 1 (host) may mean a connectivity disruption, and may revert an RTO backoff
/// (conn/icmp.rs); no other code does.
pub fn is_disruption_v4(m: &Icmpv4Message) -> bool {
    use DstUnreachable as D;
    matches!(
        m,
        Icmpv4Message::DstUnreachable {
            code: D::NetUnreachable | D::HostUnreachable,
            ..
        }
    )
}

/// RFC 6069 §3 for ICMPv6 as Linux applies it (`tcp_v6_err`): only destination unreachable
/// code 0, no route to destination.
pub fn is_disruption_v6(e: &Icmpv6Error) -> bool {
    matches!(
        e,
        Icmpv6Error::DstUnreachable(icmpv6::DstUnreachable::NoRoute)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv6::{DstUnreachable as D6, TimeExceeded};

    /// Linux `icmpv6_err_convert` (`tab_unreach`): the errno of every Destination
    /// Unreachable code of RFC 4443 §3.1, Time Exceeded EHOSTUNREACH, and a Packet Too Big
    /// MTU above 16 bits saturated; which ones drop a passive SYN-RECEIVED (fatal) differs
    /// from IPv4's `tcp_req_err` rule.
    #[test]
    fn icmpv6_errors_as_linux_converts_them() {
        use Unreachable as U;
        let cases = [
            (D6::NoRoute, U::Net, false),
            (D6::AdminProhibited, U::Prohibited, true),
            (D6::BeyondScope, U::Host, false),
            (D6::AddrUnreachable, U::Host, false),
            (D6::PortUnreachable, U::Port, true),
            (D6::FailedPolicy, U::Prohibited, true),
            (D6::RejectRoute, U::Prohibited, true),
            (D6::Other(7), U::ProtocolError, true),
        ];
        for (code, want, fatal) in cases {
            let e = IcmpError::from_icmpv6(&Icmpv6Error::DstUnreachable(code));
            assert_eq!(e, IcmpError::Unreachable(want), "{code:?}");
            assert_eq!(e.drops_half_open(true), fatal, "{code:?}");
        }
        // RFC 4443 §3.4 Parameter Problem, every code: EPROTO, fatal.
        for code in [0u8, 1, 2, 3, 255] {
            let e = IcmpError::from_icmpv6(&Icmpv6Error::ParamProblem {
                code: code.into(),
                pointer: 40,
            });
            assert_eq!(e, IcmpError::Unreachable(U::ProtocolError), "code {code}");
            assert!(e.drops_half_open(true), "code {code}");
        }
        let te = IcmpError::from_icmpv6(&Icmpv6Error::TimeExceeded(TimeExceeded::HopLimit));
        assert_eq!(te, IcmpError::TimeExceeded);
        assert!(!te.drops_half_open(true) && te.drops_half_open(false));
        for (mtu, want) in [(1280, 1280), (1500, 1500), (70_000, u16::MAX)] {
            let e = IcmpError::from_icmpv6(&Icmpv6Error::PacketTooBig { mtu });
            assert_eq!(e, IcmpError::PacketTooBig { mtu: want });
            assert!(!e.drops_half_open(true));
        }
    }

    /// Linux `icmp_err_convert` / `tcp_v4_err`: an ICMPv4 Parameter Problem (RFC 792 type
    /// 12), every code and pointer, is EPROTO and drops a passive SYN-RECEIVED
    /// (`tcp_req_err(.., type == ICMP_PARAMETERPROB || ..)`), the same error ICMPv6's gives.
    #[test]
    fn icmpv4_parameter_problem_as_linux_converts_it() {
        use crate::wire::ParamProblem as P;
        for code in [P::Pointer, P::MissingOption, P::BadLength] {
            for pointer in [0u8, 20, 255] {
                let e = IcmpError::from_icmpv4(&Icmpv4Message::ParamProblem { code, pointer });
                assert_eq!(e, IcmpError::Unreachable(Unreachable::ProtocolError));
                assert_eq!(e, IcmpError::PARAM_PROBLEM);
                assert!(e.drops_half_open(false), "{code:?}");
            }
        }
        // The other IPv4 unreachables keep tcp_req_err's rule: only net/host drop it.
        let port = IcmpError::from_icmpv4(&Icmpv4Message::DstUnreachable {
            code: DstUnreachable::PortUnreachable,
            next_hop_mtu: 0,
        });
        assert!(!port.drops_half_open(false));
    }

    /// RFC 6069 §3 as Linux `tcp_v4_err` / `tcp_v6_err` test it: of every ICMPv4
    /// destination unreachable code only 0 and 1, and of ICMPv6 only no route (code 0),
    /// signal a disruption; time exceeded and packet too big never do.
    #[test]
    fn rfc6069_disruption_codes() {
        for code in 0..=15u8 {
            let code = DstUnreachable::from_code(code).unwrap();
            let m = Icmpv4Message::DstUnreachable {
                code,
                next_hop_mtu: 0,
            };
            let want = matches!(
                code,
                DstUnreachable::NetUnreachable | DstUnreachable::HostUnreachable
            );
            assert_eq!(is_disruption_v4(&m), want, "{code:?}");
        }
        for code in 0..=8u8 {
            let e = Icmpv6Error::DstUnreachable(D6::from(code));
            assert_eq!(is_disruption_v6(&e), code == 0, "{code}");
        }
        assert!(!is_disruption_v6(&Icmpv6Error::PacketTooBig { mtu: 1280 }));
        assert!(!is_disruption_v6(&Icmpv6Error::TimeExceeded(
            TimeExceeded::HopLimit
        )));
    }
}
