//! Segment arrival, in RFC 9293 §3.10.7's order, quoting the RFC beside each check.
//! RFC 5961 (RST / SYN / ACK hardening) and RFC 7323 (PAWS, TS.Recent) checks sit where those
//! RFCs put them. Replies are not sent here: they are recorded in `pending` and go out with
//! the next `poll_transmit`.

use super::state::{Inner, Transition};
use super::{Arrival, ChallengeAckLimiter, ConnError, Connection};
use super::{Timer, EV_WRITABLE};
use crate::tcp::bufpool::BufPool;
use crate::tcp::timewait::TimeWaitAction;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};

/// Linux `tcp_invalid_ratelimit`'s default (the setting: `TcpConfig::invalid_ratelimit`):
/// per connection, at most one ACK per this interval in answer to out-of-window or
/// PAWS-rejected segments without data, duplicate SYNs in SYN-RECEIVED, and challenge ACKs,
/// so two confused endpoints cannot ping-pong ACKs forever (RFC 5961 §10's ACK-loop concern).
pub const OOW_ACK_INTERVAL: Duration = Duration::from_millis(500);

/// RFC 7323 §5.5: TS.Recent older than 24 days is invalid for PAWS.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// RFC 9293 §3.10.7.4 first check, the four cases of the acceptability test. A zero window
/// accepts a segment at exactly RCV.NXT so that its ACK, RST and FIN are still processed
/// ("special allowance should be made to accept valid ACKs, URGs, and RSTs"); its text is
/// trimmed away by the window.
fn acceptable(seq: SeqNum, len: usize, nxt: SeqNum, wnd: u32) -> bool {
    match (len, wnd) {
        (0, 0) => seq == nxt,
        (0, _) => seq.in_range(nxt, nxt + wnd),
        (_, 0) => seq == nxt,
        (_, _) => seq.in_range(nxt, nxt + wnd) || (seq + (len - 1)).in_range(nxt, nxt + wnd),
    }
}

impl Connection {
    /// Process one segment for this connection's 4-tuple. Replies (ACKs, RSTs, challenge
    /// ACKs) come out of the next `poll_transmit`. Never panics on any input. `limiter` and
    /// `pool` (receive storage taken, acknowledged send storage given back) are the
    /// endpoint's.
    pub fn on_segment(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        limiter: &mut ChallengeAckLimiter,
        pool: &mut BufPool,
    ) -> Arrival {
        if seg.src_port != self.tuple.remote_port || seg.dst_port != self.tuple.local_port {
            return Arrival::Done; // not ours: the endpoint demultiplexes by 4-tuple
        }
        match self.inner {
            Inner::SynSent(_) => self.syn_sent_arrival(now, seg),
            Inner::TimeWait(_) => return self.time_wait_arrival(now, seg, limiter),
            // RFC 9293 §3.10.7.1: CLOSED is the endpoint's business (RST to unknown tuples).
            Inner::Closed(_) => {}
            _ => self.synchronized_arrival(now, seg, limiter, pool),
        }
        Arrival::Done
    }

    /// RFC 9293 §3.10.7.3 "If the state is SYN-SENT, then".
    fn syn_sent_arrival(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let Inner::SynSent(s) = &self.inner else {
            return;
        };
        let (iss, f) = (s.iss, seg.flags);
        // "first check the ACK bit"
        let mut ack_ok = false;
        if f.ack() {
            // "If SEG.ACK =< ISS or SEG.ACK > SND.NXT, send a reset (unless the RST bit is
            // set, if so drop the segment and return) <SEQ=SEG.ACK><CTL=RST>"
            if seg.ack.le(iss) || seg.ack.gt(iss + 1u32) {
                if !f.rst() {
                    self.pending.rst = Some((seg.ack, None));
                }
                return;
            }
            // "If SND.UNA < SEG.ACK =< SND.NXT, then the ACK is acceptable."
            ack_ok = true;
        }
        // "second check the RST bit": "If the ACK was acceptable, then signal to the user
        // 'error: connection reset', drop the segment, enter CLOSED state ... Otherwise (no
        // ACK), drop the segment and return." (RFC 5961 §3.2 keeps this rule.)
        if f.rst() {
            if ack_ok {
                self.apply(now, Transition::Closed(Some(ConnError::Refused)));
            }
            return;
        }
        // "third check the security": no IP security compartments here.
        // "fourth check the SYN bit" ... "fifth, if neither of the SYN or RST bits is set,
        // then drop the segment and return."
        if !f.syn() {
            return;
        }
        // Options on a SYN-ACK (or a simultaneous-open SYN) answer our offer.
        self.nego = self.nego.agree(seg);
        self.take_timestamp(now, seg);
        self.last_rx = now;
        // "RCV.NXT is set to SEG.SEQ+1, IRS is set to SEG.SEQ. SND.UNA should be advanced to
        // equal SEG.ACK (if there is an ACK) ..." Text on the SYN is not taken (the peer
        // retransmits it); RFC 7323 §2.2: the window of a SYN is never scaled.
        if ack_ok {
            self.ack_rx = now.ms_stamp();
            // "If SND.UNA > ISS (our SYN has been ACKed), change the connection state to
            // ESTABLISHED, form an ACK segment <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and send it"
            self.pending.ack = true;
            self.apply(now, Transition::established(seg.seq, seg, 0));
        } else {
            // "Otherwise, enter SYN-RECEIVED, form a SYN,ACK segment
            // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> and send it." (simultaneous open, Figure 8)
            self.apply(now, Transition::SynReceived { irs: seg.seq });
        }
    }

    /// RFC 9293 §3.10.7.4 "Otherwise" (SYN-RECEIVED and the synchronized states but
    /// TIME-WAIT, which `time_wait_arrival` handles).
    fn synchronized_arrival(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        limiter: &mut ChallengeAckLimiter,
        pool: &mut BufPool,
    ) {
        let f = seg.flags;
        // SYN-RECEIVED and the peer's SYN again: our SYN-ACK was lost; answer with it again
        // (as Linux does) rather than with the bare ACK of the first check.
        if let Inner::SynRcvd(s) = &self.inner {
            if f.syn() && !f.ack() && !f.rst() && seg.seq == s.irs {
                // At most one per `tcp_invalid_ratelimit` (Linux tcp_check_req:
                // tcp_oow_rate_limited, TCPACKSkippedSynRecv), and, unlike Linux's
                // inet_rtx_syn_ack, without counting toward tcp_synack_retries or touching
                // the backoff: a peer repeating its SYN must not shorten our handshake.
                if self.oow_limited(now) {
                    limiter.oow_skipped += 1;
                } else {
                    self.pending.syn_again = true;
                }
                return;
            }
            // Simultaneous open (RFC 9293 §3.5 Figure 8, line 6): the peer's SYN,ACK that
            // acknowledges our SYN completes the handshake (its SYN is the one we have).
            let iss = s.iss;
            if s.active && f.syn() && f.ack() && !f.rst() && seg.seq == s.irs {
                if seg.ack == iss + 1u32 {
                    self.last_rx = now;
                    self.apply(now, Transition::established(seg.seq, seg, 0));
                } else {
                    self.pending.rst = Some((seg.ack, None));
                }
                return;
            }
        }
        let Some(rcv_nxt) = self.inner.rcv_nxt() else {
            return;
        };
        let rcv_wnd = match self.inner {
            Inner::SynRcvd(_) => self.limits.rmem.min(u16::MAX as usize) as u32,
            _ => self.inner.rcv_wnd(),
        };
        let tsval = seg.options.timestamp.map(|(v, _)| v);
        // RFC 7323 §5.3 R1 (PAWS), before the sequence check: a TSval older than TS.Recent
        // marks an old duplicate: "send an acknowledgment in reply ... and drop".
        if let (true, false, Some(v)) = (self.nego.timestamps, f.rst(), tsval) {
            let older = (v.wrapping_sub(self.ts.recent) as i32) < 0;
            if older && now.saturating_since(self.ts.recent_at) < PAWS_IDLE {
                self.dup_ack(now, seg, limiter);
                return;
            }
        }
        // "first check sequence number": "If an incoming segment is not acceptable, an
        // acknowledgment should be sent in reply (unless the RST bit is set, if so drop the
        // segment and return)".
        if !acceptable(seg.seq, seg.seq_len(), rcv_nxt, rcv_wnd) {
            if !f.rst() {
                self.dup_ack(now, seg, limiter);
            }
            return;
        }
        // TS.Recent is not taken here but once the segment passed the RST, SYN and ACK checks
        // (`take_ts_recent` from `process_ack`): else a blind in-window RST, SYN or ACK-less
        // segment with a far-future TSval would poison TS.Recent and PAWS would then reject
        // the real peer (RFC 7323 §5.3: "a segment that passes the PAWS test ... before
        // updating TS.Recent", Linux tcp_ack -> tcp_replace_ts_recent).
        self.last_rx = now;
        self.probes_out = 0;
        self.rearm_keepalive();

        // "second check the RST bit" (RFC 5961 §3.2: "If the RST bit is set and the sequence
        // number exactly matches the next expected sequence number (RCV.NXT), then TCP MUST
        // reset the connection ... [otherwise, in window] TCP MUST send an ACK (challenge ACK)").
        if f.rst() {
            if seg.seq != rcv_nxt {
                self.challenge_ack(now, limiter);
                return;
            }
            let err = match &self.inner {
                // "If this connection was initiated with a passive OPEN (i.e., came from the
                // LISTEN state), then return this connection to LISTEN state": the listener
                // simply forgets the half-open connection.
                Inner::SynRcvd(s) if !s.active => None,
                // "If this connection was initiated with an active OPEN ... the connection
                // was refused; signal the user 'connection refused'".
                Inner::SynRcvd(_) => Some(ConnError::Refused),
                // "CLOSING, LAST-ACK, TIME-WAIT: ... enter the CLOSED state, delete the TCB".
                Inner::Closing(_) | Inner::LastAck(_) => None,
                // "ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2, CLOSE-WAIT: ... Users should also
                // receive an unsolicited general 'connection reset' signal."
                _ => Some(ConnError::Reset),
            };
            self.apply(now, Transition::Closed(err));
            return;
        }
        // "third check security": no IP security compartments here.
        // "fourth check the SYN bit":
        if f.syn() {
            if let Inner::SynRcvd(s) = &self.inner {
                if !s.active {
                    // "SYN-RECEIVED: If the connection was initiated with a passive OPEN,
                    // then return this connection to the LISTEN state and return."
                    self.apply(now, Transition::Closed(None));
                    return;
                }
            }
            // RFC 5961 §4.2: "...TCP MUST send an ACK (challenge ACK) to the remote peer" and
            // drop the SYN, whatever its sequence number.
            self.challenge_ack(now, limiter);
            return;
        }
        // "fifth check the ACK field": "if the ACK bit is off, drop the segment and return".
        if !f.ack() {
            return;
        }
        if let Inner::SynRcvd(s) = &self.inner {
            // "SYN-RECEIVED STATE: If SND.UNA < SEG.ACK =< SND.NXT, then enter ESTABLISHED
            // state and continue processing ... If the segment acknowledgment is not
            // acceptable, form a reset segment <SEQ=SEG.ACK><CTL=RST> and send it."
            if seg.ack != s.iss + 1u32 {
                self.pending.rst = Some((seg.ack, None));
                return;
            }
            let est = Transition::established(s.irs, seg, self.nego.snd_shift);
            self.apply(now, est);
        }
        if !self.process_ack(now, seg, limiter, pool) {
            return;
        }
        // "sixth, check the URG bit": urgent data is not supported; the pointer is ignored
        // and the bytes are delivered in line (RFC 6093 §6 recommends against using it).
        // "seventh, process the segment text"
        let Some(fin) = self.process_text(now, seg, pool) else {
            return;
        };
        // "eighth, check the FIN bit"
        if fin {
            self.process_fin(now, pool);
        }
    }

    /// RFC 9293 §3.10.7.4 "fifth check the ACK field" for the states with a send side.
    /// Returns false when the segment is dropped.
    fn process_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        limiter: &mut ChallengeAckLimiter,
        pool: &mut BufPool,
    ) -> bool {
        if let Inner::FinWait2(s) = &self.inner {
            // Nothing outstanding: SND.UNA = SND.NXT. RFC 5961 §5.2 still applies.
            let ok = s.snd.ack_acceptable(seg.ack);
            if !ok {
                self.challenge_ack(now, limiter);
            } else {
                self.take_ts_recent(now, seg);
                self.note_ack(now, seg);
            }
            return ok;
        }
        if self
            .inner
            .sender()
            .is_some_and(|s| s.ack_acceptable(seg.ack))
        {
            self.take_ts_recent(now, seg);
            self.note_ack(now, seg);
        }
        let ts_rtt = match (self.nego.timestamps, seg.options.timestamp) {
            (true, Some((_, ecr))) if ecr != 0 => {
                let ms = self.ts_val(now).wrapping_sub(ecr);
                (ms < 1 << 30).then(|| Duration::from_millis(ms as u64))
            }
            _ => None,
        };
        let Some(snd) = self.inner.sender_mut() else {
            return false;
        };
        // RFC 5961 §5.2: "(SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT" else "send an ACK"
        // (a challenge ACK, rate-limited) "and drop". This subsumes RFC 9293's "If the ACK
        // acks something not yet sent (SEG.ACK > SND.NXT), then send an ACK, drop".
        if !snd.ack_acceptable(seg.ack) {
            self.challenge_ack(now, limiter);
            return false;
        }
        // "If SND.UNA < SEG.ACK =< SND.NXT, then set SND.UNA <- SEG.ACK. Any segments on the
        // retransmission queue that are thereby entirely acknowledged are removed."
        // ("If the ACK is a duplicate (SEG.ACK =< SND.UNA), it can be ignored": but duplicate
        // ACKs and SACK blocks drive loss recovery, recovery.rs.)
        let sacks = if self.nego.sack {
            seg.options.sacks()
        } else {
            &[]
        };
        // Then "If SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated" (in
        // `process_ack` too).
        // Linux tcp_ack: an ACK that is not old clears the soft ICMP error ("Something
        // worked...", icmp.rs).
        if snd.una().le(seg.ack) {
            self.soft_error = None;
        }
        let r = snd.process_ack(now, seg, sacks, ts_rtt, pool);
        let freed = r.acked.bytes > 0;
        if r.advanced {
            // RFC 6298 §5.2/5.3: stop the timer when all is acked, else restart it.
            if !snd.in_flight() {
                self.timers.clear(Timer::Retransmit);
            } else if r.restart_rto {
                let rto = snd.rtt().rto();
                self.timers.set(Timer::Retransmit, now + rto);
            }
            self.timers.clear(Timer::UserTimeout);
            self.rearm_user_timeout(now);
        }
        if r.window_open {
            self.timers.clear(Timer::Persist);
        }
        if freed && self.app.want_writable && self.send_capacity() > 0 {
            self.app.want_writable = false;
            self.signal(EV_WRITABLE);
        }
        let fin_acked = self.inner.sender().is_some_and(|s| s.fin_acked());
        match self.inner {
            // "FIN-WAIT-1 STATE: In addition to the processing for the ESTABLISHED state, if
            // the FIN segment is now acknowledged, then enter FIN-WAIT-2 and continue."
            Inner::FinWait1(_) if fin_acked => self.apply(now, Transition::FinWait2),
            // "CLOSING STATE: ... if the ACK acknowledges our FIN, then enter the TIME-WAIT
            // state; otherwise, ignore the segment."
            Inner::Closing(_) => {
                if fin_acked {
                    self.apply(now, Transition::TimeWait);
                }
                return false;
            }
            // "LAST-ACK STATE: The only thing that can arrive in this state is an
            // acknowledgment of our FIN. If our FIN is now acknowledged, delete the TCB, enter
            // the CLOSED state, and return."
            Inner::LastAck(_) => {
                if fin_acked {
                    self.apply(now, Transition::Closed(None));
                }
                return false;
            }
            _ => {}
        }
        true
    }

    /// ss's `lastack` (Linux `rcv_tstamp`): an acceptable ACK not older than SND.UNA
    /// (Linux tcp_ack stamps after its `old_ack` and "ACK of unsent data" checks).
    fn note_ack(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if !seg.ack.lt(self.inner.snd_una()) {
            self.ack_rx = now.ms_stamp();
        }
    }

    /// RFC 7323 §4.3 (2): "If SEG.TSval >= TS.Recent and SEG.SEQ =< Last.ACK.sent, then
    /// SEG.TSval is copied to TS.Recent", for a segment that passed every check up to the
    /// ACK field and whose ACK does not go back before SND.UNA (Linux tcp_ack: an old ACK
    /// leaves TS.Recent alone, `old_ack`).
    fn take_ts_recent(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        let Some((v, _)) = seg.options.timestamp else {
            return;
        };
        if !self.nego.timestamps || seg.ack.lt(self.inner.snd_una()) {
            return;
        }
        if (v.wrapping_sub(self.ts.recent) as i32) >= 0 && seg.seq.le(self.ts.last_ack_sent) {
            self.ts.recent = v;
            self.ts.recent_at = now;
        }
    }

    // "seventh, process the segment text": `process_text` in text.rs.

    /// RFC 9293 §3.10.7.4 "eighth, check the FIN bit" (only reached for an in-order FIN).
    fn process_fin(&mut self, now: Instant, pool: &mut BufPool) {
        // "...advance RCV.NXT over the FIN, and send an acknowledgment for the FIN."
        self.pending.ack = true;
        // Data held beyond the FIN (a broken peer) is never delivered.
        if let Some(rcv) = self.inner.receiver_mut() {
            rcv.discard_held(pool);
        }
        match self.inner {
            // "SYN-RECEIVED STATE, ESTABLISHED STATE: Enter the CLOSE-WAIT state."
            Inner::Established(_) => self.apply(now, Transition::CloseWait),
            // "FIN-WAIT-1 STATE: If our FIN has been ACKed (perhaps in this segment), then
            // enter TIME-WAIT ... otherwise, enter the CLOSING state." (ACKed: we are in
            // FIN-WAIT-2 already, see `process_ack`.)
            Inner::FinWait1(_) => self.apply(now, Transition::Closing),
            // "FIN-WAIT-2 STATE: Enter the TIME-WAIT state. Start the time-wait timer, turn
            // off the other timers."
            Inner::FinWait2(_) => self.apply(now, Transition::TimeWait),
            _ => {}
        }
    }

    /// RFC 9293 §3.10.7.4 for TIME-WAIT, delegated to the compact record's rules.
    fn time_wait_arrival(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        limiter: &mut ChallengeAckLimiter,
    ) -> Arrival {
        let interval = self.limits.invalid_ratelimit;
        let rfc1337 = self.limits.rfc1337;
        let Inner::TimeWait(s) = &mut self.inner else {
            return Arrival::Done;
        };
        match s.rec.on_segment(now, seg, rfc1337) {
            TimeWaitAction::Ack => {
                let expiry = s.rec.expiry;
                let allowed = s.rec.oow_ack_allowed(now, seg, interval);
                self.timers.set(Timer::TimeWait, expiry);
                if allowed {
                    self.pending.ack = true;
                } else {
                    limiter.oow_skipped += 1;
                }
            }
            TimeWaitAction::Ignore => {}
            TimeWaitAction::AcceptNewSyn => return Arrival::Reopen,
            TimeWaitAction::Expire => self.apply(now, Transition::Closed(None)),
            // tcp_rfc1337 = 0: the RST ends TIME-WAIT (no error: the connection was done).
            TimeWaitAction::Kill => self.apply(now, Transition::Closed(None)),
        }
        Arrival::Done
    }

    /// The endpoint found no listener for a SYN that `on_segment` offered to reopen this
    /// TIME-WAIT 4-tuple with (`Arrival::Reopen`): TIME-WAIT stays and the SYN is answered
    /// with the TIME-WAIT ACK (Linux tcp_v4_rcv: TCP_TW_SYN without a listener -> TCP_TW_ACK).
    pub(crate) fn refuse_reopen(&mut self, _now: Instant) {
        if let Inner::TimeWait(_) = self.inner {
            self.pending.ack = true;
        }
    }

    /// RFC 5961 §7: challenge ACKs are rate-limited, per connection first (as Linux), then
    /// per stack.
    fn challenge_ack(&mut self, now: Instant, limiter: &mut ChallengeAckLimiter) {
        if self.oow_limited(now) {
            limiter.oow_skipped += 1;
        } else if limiter.allow(now) {
            self.pending.ack = true;
        }
    }

    /// The ACK owed to an unacceptable segment. Segments carrying data (or FIN) are not part
    /// of an ACK loop and are always answered; bare ACKs and SYNs at most once per
    /// `OOW_ACK_INTERVAL` (Linux tcp_oow_rate_limited).
    fn dup_ack(&mut self, now: Instant, seg: &TcpRepr<'_>, limiter: &mut ChallengeAckLimiter) {
        if (seg.seq_len() == 0 || seg.flags.syn()) && self.oow_limited(now) {
            limiter.oow_skipped += 1;
            return;
        }
        self.note_duplicate(seg);
        self.pending.ack = true;
    }

    fn oow_limited(&mut self, now: Instant) -> bool {
        if let Some(t) = self.last_oow_ack {
            if now.saturating_since(t) < self.limits.invalid_ratelimit {
                return true;
            }
        }
        self.last_oow_ack = Some(now);
        false
    }
}
