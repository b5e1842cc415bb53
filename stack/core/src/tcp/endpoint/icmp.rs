//! ICMP errors at the endpoint: find the connection by the quoted 4-tuple (Linux
//! `__inet_lookup_established` in `tcp_v4_err`) and let it act (conn/icmp.rs).

use super::{ConnId, Endpoint};
use crate::tcp::icmp::{IcmpError, IcmpOutcome};
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;
use crate::wire::SeqNum;

impl Endpoint {
    /// An ICMP error about a segment we sent on `tuple` (local = the quoted source) whose
    /// sequence number was `seq`. A TIME-WAIT record or no connection ignores it (Linux
    /// ignores errors for a LISTEN socket and for TIME-WAIT too). Counted by outcome
    /// ([`EndpointStats::icmp`](super::EndpointStats)); call `poll_transmit` after it
    /// (a lowered path MTU resends at once).
    pub fn on_icmp_error(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        err: IcmpError,
        seq: SeqNum,
    ) -> IcmpOutcome {
        let outcome = match self.demux.get(&tuple).copied() {
            None => IcmpOutcome::NoConnection,
            Some(index) => {
                let gen = self.conns.get(index as usize).map_or(0, |s| s.gen);
                let id = ConnId { index, gen };
                match self.slot_mut(id) {
                    None => IcmpOutcome::NoConnection,
                    Some(s) => {
                        let o = s.conn.on_icmp_error(now, err, seq);
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
