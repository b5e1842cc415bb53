//! An ICMP error about one of this connection's segments, as Linux's `tcp_v4_err` handles
//! it (the rules are listed in tcp/icmp.rs).

use super::state::{Inner, Transition};
use super::{ConnError, Connection, Timer};
use crate::tcp::icmp::{IcmpError, IcmpOutcome, Unreachable};
use crate::time::Instant;
use crate::wire::SeqNum;

impl Connection {
    /// An ICMP error quoting our segment with sequence number `seq`. The caller found this
    /// connection by the quoted 4-tuple; output it asks for comes from `poll_transmit`.
    pub(crate) fn on_icmp_error(
        &mut self,
        now: Instant,
        err: IcmpError,
        seq: SeqNum,
    ) -> IcmpOutcome {
        if !self.icmp_seq_in_flight(seq) {
            return IcmpOutcome::OutOfWindow;
        }
        let hard = match err {
            IcmpError::PacketTooBig { mtu } => {
                // RFC 1191 §6.2 / Linux tcp_v4_mtu_reduced: only a state with a sender has
                // segments to resize (our SYN and SYN-ACK are far below any MTU >= 552).
                let nego = self.nego;
                let Some(snd) = self.inner.sender_mut() else {
                    return IcmpOutcome::PmtuUnchanged;
                };
                return match snd.on_packet_too_big(mtu, nego) {
                    Some(pmtu) => IcmpOutcome::PmtuLowered(pmtu),
                    None => IcmpOutcome::PmtuUnchanged,
                };
            }
            IcmpError::Unreachable(Unreachable::Port) => ConnError::Refused,
            IcmpError::Unreachable(u) => ConnError::Unreachable(u),
            IcmpError::TimeExceeded => ConnError::Unreachable(Unreachable::Host),
        };
        match &self.inner {
            // Linux tcp_v4_err, TCP_SYN_SENT (and a full socket in TCP_SYN_RECV, i.e. a
            // simultaneous open): sk_err = err, tcp_done. RFC 1122 §4.2.3.9 allows aborting
            // on port / protocol unreachable; Linux aborts a connect on any of them.
            Inner::SynSent(_) | Inner::SynRcvd(super::state::SynRcvd { active: true, .. }) => {
                self.apply(now, Transition::Closed(Some(hard)));
                IcmpOutcome::Fatal
            }
            // Linux tcp_req_err: a request quoting our ISS is dropped silently on net/host
            // unreachable and time exceeded; other codes leave it to its SYN-ACK timer.
            Inner::SynRcvd(_) => {
                if err.drops_half_open(self.tuple.is_ipv6()) {
                    self.apply(now, Transition::Closed(None));
                    IcmpOutcome::Fatal
                } else {
                    IcmpOutcome::Soft
                }
            }
            // RFC 1122 §4.2.3.9: soft errors in the synchronized states; Linux keeps it in
            // sk_err_soft and reports it if the connection times out.
            _ => {
                self.soft_error = Some(hard);
                IcmpOutcome::Soft
            }
        }
    }

    /// RFC 5927 §4.1 (Linux `between(seq, snd_una, snd_nxt)`): SND.UNA =< seq =< SND.NXT,
    /// SND.NXT being the highest sequence number sent (it may be behind after an RTO). A
    /// passive SYN-RECEIVED must quote exactly our ISS (Linux `tcp_req_err`).
    fn icmp_seq_in_flight(&self, seq: SeqNum) -> bool {
        match &self.inner {
            Inner::Closed(_) | Inner::TimeWait(_) => false,
            Inner::SynRcvd(s) if !s.active => seq == s.iss,
            inner => {
                let una = inner.snd_una();
                let nxt = inner.sender().map_or(inner.snd_nxt(), |s| s.max());
                una.le(seq) && seq.le(nxt)
            }
        }
    }

    /// Linux `tcp_write_err`: a connection that times out reports the soft error an ICMP
    /// left (`sk_err_soft`) instead of ETIMEDOUT, unless an ACK came since (input.rs clears
    /// it, as Linux's `tcp_ack`).
    pub(super) fn timeout_error(&self, t: Transition) -> Transition {
        match (t, self.soft_error) {
            (Transition::Closed(Some(ConnError::TimedOut)), Some(e)) => Transition::Closed(Some(e)),
            (t, _) => t,
        }
    }

    /// Whether the connection ended by a timeout, also when a soft ICMP error is what it
    /// reports (soft errors are only kept in the synchronized states, where nothing but the
    /// timeout turns one into the connection's error).
    pub(crate) fn timed_out(&self) -> bool {
        let err = self.error();
        err == Some(ConnError::TimedOut) || (err.is_some() && self.soft_error == err)
    }

    /// The data bytes per segment now, in the states that send data.
    pub(crate) fn send_mss(&self) -> Option<u16> {
        self.inner.sender().map(|s| s.mss())
    }

    /// Past the handshake (and not CLOSED).
    pub(crate) fn is_synchronized(&self) -> bool {
        self.inner.is_synchronized()
    }

    /// Use a path MTU learned earlier for this peer (the endpoint's cache) if it is lower
    /// than this connection's.
    pub(crate) fn use_path_mtu(&mut self, pmtu: u16) {
        let nego = self.nego;
        if let Some(snd) = self.inner.sender_mut() {
            let _ = snd.on_packet_too_big(pmtu, nego);
        }
    }

    /// The path MTU this connection uses, in the states that send data.
    pub(crate) fn pmtu(&self) -> Option<u16> {
        self.inner.sender().map(|s| s.pmtu())
    }
}

impl Connection {
    /// RFC 6069 (TCP-LD) as Linux's `tcp_ld_RTO_revert`: an ICMP error that signals a
    /// connectivity disruption (net / host unreachable, [`crate::tcp::icmp::is_disruption_v4`])
    /// quoting SND.UNA while the retransmission timer is backed off means the timeouts were
    /// the path's outage, not congestion: undo one backoff (§4 step 4) and re-arm the timer
    /// for the head's last transmission plus the reverted RTO, or retransmit at once if that
    /// is already past (§4 step 5, "clocked out"). Returns whether it reverted. Call it
    /// after [`Connection::on_icmp_error`], which still records the soft error.
    pub(crate) fn on_icmp_disruption(&mut self, now: Instant, seq: SeqNum) -> bool {
        let initial = self.limits.rto_initial;
        // Armed when the head was resent at the last timeout (output.rs), with the RTO of
        // then: nothing re-arms it or changes the RTO while no ACK makes progress.
        let Some(deadline) = self.timers.get(Timer::Retransmit) else {
            return false;
        };
        let Some(snd) = self.inner.sender_mut() else {
            return false;
        };
        let backed_off = snd.rtt().rto();
        if seq != snd.una() {
            return false;
        }
        let Some(rto) = snd.revert_backoff(initial) else {
            return false;
        };
        let elapsed = backed_off.saturating_sub(deadline.saturating_since(now));
        match rto.checked_sub(elapsed).filter(|r| !r.is_zero()) {
            Some(remaining) => self.timers.set(Timer::Retransmit, now + remaining),
            None => {
                self.timers.clear(Timer::Retransmit);
                self.on_rto(now);
            }
        }
        true
    }
}
