//! ICMP errors at the endpoint: find the connection by the quoted 4-tuple (Linux
//! `__inet_lookup_established` in `tcp_v4_err`) and let it act (conn/icmp.rs). A lowered
//! path MTU is also remembered per remote address for `ip_rt_mtu_expires` (600 s), and a
//! connection to that address starts from it once its handshake completes (Linux keeps it
//! as a route exception that `tcp_sync_mss` reads at connect / accept time).
//!
//! Bound: [`PMTU_CACHE_MAX`] remote addresses per endpoint (about 40 bytes each with the
//! map's overhead); a full cache drops its expired entries, and is cleared if none are.

use std::net::IpAddr;

use super::{ConnId, Endpoint};
use crate::hash::{keyed_map, KeyedMap};
use crate::tcp::conn::Connection;
use crate::tcp::icmp::{is_disruption_v4, is_disruption_v6, IcmpError, IcmpOutcome};
use crate::tcp::tuple::FourTuple;
use crate::time::{Duration, Instant};
use crate::wire::icmpv6::Icmpv6Error;
use crate::wire::{Icmpv4Message, SeqNum};

/// Remote addresses whose path MTU an endpoint remembers.
pub const PMTU_CACHE_MAX: usize = 4096;
/// Linux `ip_rt_mtu_expires`: how long a learned path MTU is used for new connections.
pub const PMTU_EXPIRES: Duration = Duration::from_secs(600);

/// Learned path MTUs by remote address, with their expiry (see the module docs).
pub(super) struct PmtuCache {
    /// Keyed with a secret: the addresses are chosen by peers.
    map: KeyedMap<IpAddr, (u16, Instant)>,
}

impl PmtuCache {
    pub fn new(seed: u64) -> PmtuCache {
        PmtuCache {
            map: keyed_map(seed),
        }
    }

    fn learn(&mut self, now: Instant, remote: IpAddr, pmtu: u16) {
        if self.map.len() >= PMTU_CACHE_MAX && !self.map.contains_key(&remote) {
            self.map.retain(|_, (_, until)| *until > now);
            if self.map.len() >= PMTU_CACHE_MAX {
                self.map.clear();
            }
        }
        self.map.insert(remote, (pmtu, now + PMTU_EXPIRES));
    }

    /// The learned path MTU toward `remote`, if one is still valid.
    fn get(&self, now: Instant, remote: IpAddr) -> Option<u16> {
        self.map
            .get(&remote)
            .filter(|(_, until)| *until > now)
            .map(|(p, _)| *p)
    }

    /// A connection that just completed its handshake starts from its peer's learned path
    /// MTU (nothing is in flight yet, so nothing is resent).
    pub fn apply(&self, now: Instant, conn: &mut Connection) {
        if let Some(p) = self.get(now, conn.tuple().remote_ip()) {
            conn.use_path_mtu(p);
        }
    }
}

impl Endpoint {
    /// An ICMP error about a segment we sent on `tuple` (local = the quoted source) whose
    /// sequence number was `seq`. A TIME-WAIT record or no connection ignores it (Linux
    /// ignores errors for a LISTEN socket and for TIME-WAIT too). Counted by outcome
    /// ([`EndpointStats::icmp`](super::EndpointStats)); call `poll_transmit` after it
    /// (a lowered path MTU resends at once). Without the message's code this cannot tell
    /// RFC 6069's disruption signals; [`Endpoint::on_icmpv4_error`] and
    /// [`Endpoint::on_icmpv6_error`] can.
    pub fn on_icmp_error(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        err: IcmpError,
        seq: SeqNum,
    ) -> IcmpOutcome {
        self.icmp_error(now, tuple, err, seq, false)
    }

    /// [`Endpoint::on_icmp_error`] for an ICMPv4 error message, which also applies RFC
    /// 6069's RTO revert for net / host unreachable (tcp/icmp.rs).
    pub fn on_icmpv4_error(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        m: &Icmpv4Message,
        seq: SeqNum,
    ) -> IcmpOutcome {
        let disruption = is_disruption_v4(m);
        self.icmp_error(now, tuple, IcmpError::from_icmpv4(m), seq, disruption)
    }

    /// [`Endpoint::on_icmp_error`] for an ICMPv6 error message, which also applies RFC
    /// 6069's RTO revert for no route to destination (tcp/icmp.rs).
    pub fn on_icmpv6_error(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        e: &Icmpv6Error,
        seq: SeqNum,
    ) -> IcmpOutcome {
        let disruption = is_disruption_v6(e);
        self.icmp_error(now, tuple, IcmpError::from_icmpv6(e), seq, disruption)
    }

    fn icmp_error(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        err: IcmpError,
        seq: SeqNum,
        disruption: bool,
    ) -> IcmpOutcome {
        let outcome = match self.demux_find(&tuple) {
            None => IcmpOutcome::NoConnection,
            Some(index) => {
                let gen = self.conns.get(index as usize).map_or(0, |s| s.gen);
                let id = ConnId { index, gen };
                match self.slot_mut(id) {
                    None => IcmpOutcome::NoConnection,
                    Some(s) => {
                        let o = s.conn.on_icmp_error(now, err, seq);
                        if disruption {
                            s.conn.on_icmp_disruption(now, seq);
                        }
                        if let IcmpOutcome::PmtuLowered(p) = o {
                            self.pmtu_cache.learn(now, tuple.remote_ip(), p);
                        }
                        self.touch(id);
                        o
                    }
                }
            }
        };
        self.stats.icmp.count(outcome);
        outcome
    }
}

impl Endpoint {
    /// The path MTU a connection uses (in the states that send data).
    pub fn pmtu(&self, id: ConnId) -> Option<u16> {
        self.slot(id).and_then(|s| s.conn.pmtu())
    }
}
