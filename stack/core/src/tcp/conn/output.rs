//! Output and timers: `poll_transmit` builds every segment that is due (RST, SYN / SYN-ACK,
//! data and FIN within the peer's window, probes, ACKs) straight into the caller's closure;
//! `on_timeout` runs expired timers. No allocation: payloads borrow the send buffer.

use super::sender::Persist;
use super::state::{Inner, SynRcvd, SynSent, Transition};
use super::{ConnError, Connection, Timer};
use crate::tcp::icmp::TCP_RETRIES1;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr};

/// Segments one `poll_transmit` may emit at most (a guard; cwnd bounds it first).
const MAX_BURST: usize = 1 << 16;

/// Bytes of the stack buffer a segment crossing the send ring's wrap is copied into: a
/// 1500-byte-MTU segment's payload. Longer (jumbo) segments straighten the ring instead.
const WRAP_SCRATCH: usize = 2048;

impl Connection {
    /// Emit everything due at `now`, in order: a pending RST; the SYN or SYN-ACK; data and FIN
    /// the window allows (MSS-sized, PSH on the last); a keepalive / zero-window probe; a bare
    /// ACK if one is still owed. Arms the retransmission timer for what it sends.
    pub fn poll_transmit(&mut self, now: Instant, mut emit: impl FnMut(&TcpRepr<'_>)) {
        if let Some((seq, ack)) = self.pending.rst.take() {
            emit(&self.rst_segment(seq, ack));
        }
        match &self.inner {
            Inner::Closed(_) => return,
            Inner::TimeWait(s) => {
                if std::mem::take(&mut self.pending.ack) {
                    emit(&s.rec.ack_segment(now));
                }
                return;
            }
            Inner::SynSent(_) | Inner::SynRcvd(_) => return self.transmit_handshake(now, emit),
            _ => {}
        }
        self.transmit_data(now, &mut emit);
        if std::mem::take(&mut self.pending.probe) {
            // RFC 9293 §3.8.4 / §3.8.6.1: a probe carries SEG.SEQ = SND.UNA - 1 (keepalive,
            // as Linux does also for zero-window probes): the peer must answer with an ACK.
            let seq = self.inner.snd_una() - 1u32;
            let seg = self.segment(now, seq, TcpFlags::ACK, &[]);
            emit(&seg);
            self.ack_sent();
        }
        if self.pending.ack {
            // SEQ = SND.MAX, not SND.NXT: after an RTO SND.NXT is pulled back to SND.UNA
            // (go-back-N) while the peer may already hold data up to SND.MAX; a bare ACK at
            // the pulled-back SND.NXT would lie below its RCV.NXT and be dropped as
            // unacceptable (RFC 9293 §3.10.7.4) with its ACK field unread. If both ends
            // are in that state neither ACK is ever processed (found by sim_transfer,
            // seed 302). Linux never moves snd_nxt back, so its ACKs carry the same value.
            let seq = self
                .inner
                .sender()
                .map_or(self.inner.snd_nxt(), |s| s.max());
            let seg = self.segment(now, seq, TcpFlags::ACK, &[]);
            emit(&seg);
            self.ack_sent();
        }
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), or a bare ACK in SYN-RECEIVED.
    fn transmit_handshake(&mut self, now: Instant, mut emit: impl FnMut(&TcpRepr<'_>)) {
        let (iss, ack, tx) = match &self.inner {
            Inner::SynSent(s) => (s.iss, None, s.tx),
            Inner::SynRcvd(s) => (s.iss, Some(s.irs + 1u32), s.tx),
            _ => return,
        };
        if std::mem::take(&mut self.pending.syn) {
            emit(&self.syn_segment(now, iss, ack));
            // Exponential backoff from rto_initial: 1, 2, 4, ... s (Linux's SYN timing).
            let rto = self.limits.rto_initial.saturating_mul(1 << tx.min(20));
            self.timers
                .set(Timer::Retransmit, now + rto.min(self.limits.rto_max));
            // The first transmission's time, for the handshake RTT sample (state.rs).
            if let Inner::SynSent(SynSent { tx, sent_at, .. })
            | Inner::SynRcvd(SynRcvd { tx, sent_at, .. }) = &mut self.inner
            {
                if *tx == 0 {
                    *sent_at = now;
                }
                *tx += 1;
            }
            self.pending.ack = false;
            if let Some(a) = ack {
                self.ts.last_ack_sent = a;
            }
        } else if std::mem::take(&mut self.pending.syn_again) {
            // The SYN-ACK again for a duplicate SYN: no retry counted, timer untouched.
            emit(&self.syn_segment(now, iss, ack));
            self.pending.ack = false;
            if let Some(a) = ack {
                self.ts.last_ack_sent = a;
            }
        } else if let (true, Some(_)) = (std::mem::take(&mut self.pending.ack), ack) {
            emit(&self.segment(now, iss + 1u32, TcpFlags::ACK, &[]));
        }
    }

    /// Data and FIN from the send buffer: what `Sender::next_tx` allows (cwnd, the peer's
    /// window, Nagle / SWS, loss recovery), then the timer invariants: the retransmission
    /// timer runs while anything is unacknowledged (RFC 6298 §5.1), the persist timer while
    /// data waits with nothing outstanding (RFC 9293 §3.8.6.1, and §3.8.6.2.1's override).
    fn transmit_data(&mut self, now: Instant, emit: &mut impl FnMut(&TcpRepr<'_>)) {
        let nodelay = self.app.nodelay;
        if let Some(snd) = self.inner.sender_mut() {
            snd.maybe_idle_restart(now);
        }
        // A segment crossing the send ring's wrap is copied here (see `stage_payload`);
        // set up only when the buffered data wraps (rare: once per lap of the ring).
        let mut store;
        let scratch: &mut [u8] = match self.inner.sender() {
            Some(s) if s.wraps() => {
                store = [0u8; WRAP_SCRATCH];
                &mut store
            }
            _ => &mut [],
        };
        // Bounded: every segment advances SND.NXT, HighRxt or clears a one-shot flag; the
        // count is a second guard.
        for _ in 0..MAX_BURST {
            let Some(snd) = self.inner.sender_mut() else {
                break;
            };
            let Some(tx) = snd.next_tx(nodelay) else {
                break;
            };
            let last = tx.off + tx.len == snd.buffered();
            let mut flags = TcpFlags::ACK;
            if tx.fin {
                flags = flags | TcpFlags::FIN;
            }
            if last && tx.len > 0 {
                flags = flags | TcpFlags::PSH;
            }
            let staged = snd.stage_payload(&tx, scratch);
            let Some(snd) = self.inner.sender() else {
                break;
            };
            let payload = if staged {
                &scratch[..tx.len]
            } else {
                snd.payload(tx.off..tx.off + tx.len)
            };
            emit(&self.segment(now, tx.seq, flags, payload));
            self.ack_sent();
            if let Some(snd) = self.inner.sender_mut() {
                snd.on_sent(now, &tx);
            }
        }
        let Some(snd) = self.inner.sender() else {
            return;
        };
        // RFC 6298 §5.1: "Every time a packet containing data is sent (including a
        // retransmission), if the timer is not running, start it running".
        if snd.in_flight() && !self.timers.is_set(Timer::Retransmit) {
            self.timers.set(Timer::Retransmit, now + snd.rtt().rto());
        }
        if snd.stalled() && !self.timers.is_set(Timer::Persist) {
            let d = snd.persist_interval();
            self.timers
                .set(Timer::Persist, now + d.min(self.limits.rto_max));
        }
        self.rearm_user_timeout(now);
    }

    /// A non-SYN segment with ACK, our window and timestamps (RFC 7323 §3.2: on every
    /// non-RST segment once negotiated).
    fn segment<'a>(
        &self,
        now: Instant,
        seq: SeqNum,
        flags: TcpFlags,
        payload: &'a [u8],
    ) -> TcpRepr<'a> {
        let mut options = TcpOptions::default();
        if self.nego.timestamps {
            options.timestamp = Some((self.ts_val(now), self.ts.recent));
        }
        self.sack_option(&mut options);
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq,
            ack: self.inner.rcv_nxt().unwrap_or(SeqNum(0)),
            flags,
            window: self.window_field(),
            urgent: 0,
            options,
            payload,
        }
    }

    /// SYN <SEQ=ISS> or SYN-ACK <SEQ=ISS><ACK=RCV.NXT>, with the options offered (SYN) or
    /// agreed (SYN-ACK: only what the peer offered, RFC 7323 §1.3).
    fn syn_segment(&self, now: Instant, iss: SeqNum, ack: Option<SeqNum>) -> TcpRepr<'static> {
        let n = &self.nego;
        let options = TcpOptions {
            mss: Some(self.limits.offer_for(&self.tuple).mss),
            window_scale: n.window_scaling.then_some(n.rcv_shift),
            sack_permitted: n.sack,
            timestamp: n.timestamps.then(|| {
                (
                    self.ts_val(now),
                    if ack.is_some() { self.ts.recent } else { 0 },
                )
            }),
            ..TcpOptions::default()
        };
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq: iss,
            ack: ack.unwrap_or(SeqNum(0)),
            flags: if ack.is_some() {
                TcpFlags::SYN | TcpFlags::ACK
            } else {
                TcpFlags::SYN
            },
            // RFC 7323 §2.2: the window of a SYN is never scaled.
            window: self.limits.rmem.min(u16::MAX as usize) as u16,
            urgent: 0,
            options,
            payload: &[],
        }
    }

    /// RST <SEQ=seq> or RST,ACK <SEQ=seq><ACK=ack>; no options, zero window.
    fn rst_segment(&self, seq: SeqNum, ack: Option<SeqNum>) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq,
            ack: ack.unwrap_or(SeqNum(0)),
            flags: if ack.is_some() {
                TcpFlags::RST | TcpFlags::ACK
            } else {
                TcpFlags::RST
            },
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        }
    }

    /// The 16-bit window field for `bytes` of window (RFC 7323 §2.3: scaled down by our
    /// shift; rounding down never advertises space we do not have).
    pub(super) fn advertised_window(&self, bytes: u32) -> u16 {
        (bytes >> self.nego.rcv_shift).min(u16::MAX as u32) as u16
    }

    /// Bookkeeping after any segment carrying our ACK went out.
    fn ack_sent(&mut self) {
        self.pending.ack = false;
        if let Some(nxt) = self.inner.rcv_nxt() {
            self.ts.last_ack_sent = nxt;
        }
        self.rx_ack_sent();
    }

    /// Run every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) {
        // Bounded: each round disarms one timer, and handlers only arm timers in the future.
        while let Some(t) = self.timers.take_due(now) {
            match t {
                Timer::Retransmit => self.on_rto(now),
                Timer::DelayedAck => self.pending.ack = true,
                Timer::Persist => self.on_persist(now),
                Timer::Keepalive => self.on_keepalive(now),
                // Linux tcp_fin_timeout: an orphaned FIN-WAIT-2 connection is dropped.
                Timer::FinWait2 => {
                    if let Inner::FinWait2(_) = self.inner {
                        self.apply(now, Transition::Closed(None));
                    }
                }
                // RFC 9293 §3.10.7.4: "If the time-wait timeout expires ..., delete the TCB,
                // enter the CLOSED state, and return."
                Timer::TimeWait => {
                    if let Inner::TimeWait(_) = self.inner {
                        self.apply(now, Transition::Closed(None));
                    }
                }
                // RFC 9293 §3.8.4 / RFC 5482: "connection aborted due to user timeout".
                Timer::UserTimeout => {
                    let connecting = matches!(self.inner, Inner::SynSent(_));
                    if connecting || self.inner.sender().is_some_and(|s| s.in_flight()) {
                        self.apply(now, Transition::Closed(Some(ConnError::TimedOut)));
                    }
                }
            }
        }
    }

    /// Retransmission timeout: SYN / SYN-ACK retries (tcp_syn_retries / tcp_synack_retries,
    /// backoff doubling from rto_initial), or data / FIN (RFC 6298 §5.4-5.7, tcp_retries2).
    pub(super) fn on_rto(&mut self, now: Instant) {
        let limits = *self.limits;
        let nego = self.nego;
        match &mut self.inner {
            Inner::SynSent(s) => {
                if s.tx > limits.syn_retries {
                    self.apply(now, Transition::Closed(Some(ConnError::TimedOut)));
                } else {
                    self.pending.syn = true;
                }
            }
            Inner::SynRcvd(s) => {
                if s.tx > limits.synack_retries {
                    // Passive: the listener forgets the half-open connection silently.
                    let err = s.active.then_some(ConnError::TimedOut);
                    self.apply(now, Transition::Closed(err));
                } else {
                    self.pending.syn = true;
                }
            }
            _ => {
                let (orphaned, last_rx) = (self.app.orphaned, self.last_rx);
                let Some(snd) = self.inner.sender_mut() else {
                    return;
                };
                if !snd.in_flight() {
                    return;
                }
                // The peer shrank its window to zero under our data: the retransmissions are
                // window probes, and as in Linux (tcp_retransmit_timer) they do not count
                // toward tcp_retries2 while the peer answers; only 2 * rto_max without any
                // segment from it times out (an orphaned connection gets no such grace).
                if snd.window() == 0 && !orphaned {
                    if now.saturating_since(last_rx) > limits.rto_max * 2 {
                        self.apply(now, Transition::Closed(Some(ConnError::TimedOut)));
                    } else {
                        snd.on_rto_window_probe(now);
                    }
                    return;
                }
                // Linux tcp_write_timeout: an orphan gives up after tcp_orphan_retries
                // (here never later than tcp_retries2).
                let retries = if orphaned {
                    limits.retries2.min(limits.orphan_retries)
                } else {
                    limits.retries2
                };
                // Linux tcp_write_timeout -> retransmits_timed_out: the limit is the time that
                // `retries` exponential backoffs from tcp_rto_min take (RFC 1122 §4.2.3.5: R2
                // is a time), so timeouts the RFC 6069 revert made short (an outage a router
                // reports) do not use it up early. Without reverts the count is reached no
                // sooner than that time, so the count alone decides as before.
                if snd.rto_count() >= retries
                    && snd.rto_elapsed(now)
                        >= model_timeout(retries, limits.rto_min, limits.rto_max)
                {
                    self.apply(now, Transition::Closed(Some(ConnError::TimedOut)));
                } else {
                    // Black-hole detection (Linux tcp_write_timeout -> tcp_mtu_probing):
                    // from tcp_retries1 timeouts in a row on (and their time, as above),
                    // each lowers the MSS.
                    if limits.mtu_probing != 0
                        && snd.rto_count() >= TCP_RETRIES1
                        && snd.rto_elapsed(now)
                            >= model_timeout(TCP_RETRIES1, limits.rto_min, limits.rto_max)
                    {
                        snd.on_black_hole(limits.base_mss, nego);
                    }
                    // Go back to SND.UNA; `poll_transmit` resends and re-arms with the
                    // backed-off RTO.
                    snd.on_rto(now);
                }
            }
        }
    }

    /// RFC 9293 §3.8.6.1: the persist timer (`Sender::on_persist` decides): a zero-window
    /// probe, the next backed off up to rto_max; after tcp_retries2 unanswered ones the
    /// connection times out (as Linux).
    fn on_persist(&mut self, now: Instant) {
        let retries2 = if self.app.orphaned {
            // Linux tcp_probe_timer: an orphan probes at most tcp_orphan_retries times.
            self.limits.retries2.min(self.limits.orphan_retries)
        } else {
            self.limits.retries2
        };
        let Some(snd) = self.inner.sender_mut() else {
            return;
        };
        match snd.on_persist(retries2) {
            Persist::Idle | Persist::SendWhatFits => {}
            Persist::GiveUp => self.apply(now, Transition::Closed(Some(ConnError::TimedOut))),
            Persist::Probe(d) => {
                self.pending.probe = true;
                self.timers
                    .set(Timer::Persist, now + d.min(self.limits.rto_max));
            }
        }
    }

    /// RFC 9293 §3.8.4 keepalive (Linux's timing): after `keepalive_time` idle send a probe,
    /// then every `keepalive_intvl`; after `keepalive_probes` unanswered, reset and report
    /// `TimedOut` (Linux sends the RST too).
    fn on_keepalive(&mut self, now: Instant) {
        if !self.app.keepalive || !self.inner.keepalive_applies() {
            return;
        }
        let l = *self.limits;
        // Data in flight: the retransmission timer watches the peer.
        if self.inner.sender().is_some_and(|s| s.in_flight()) {
            self.timers.set(Timer::Keepalive, now + l.keepalive_time);
            return;
        }
        if self.probes_out == 0 && now.saturating_since(self.last_rx) < l.keepalive_time {
            self.timers
                .set(Timer::Keepalive, self.last_rx + l.keepalive_time);
            return;
        }
        if self.probes_out >= l.keepalive_probes {
            self.pending.rst = Some((self.inner.snd_nxt(), self.inner.rcv_nxt()));
            self.apply(now, Transition::Closed(Some(ConnError::TimedOut)));
            return;
        }
        self.probes_out += 1;
        self.pending.probe = true;
        self.timers.set(Timer::Keepalive, now + l.keepalive_intvl);
    }

    /// Keepalive deadline after activity: idle time counts from the last segment received.
    pub(super) fn rearm_keepalive(&mut self) {
        if self.app.keepalive && self.inner.keepalive_applies() {
            self.timers
                .set(Timer::Keepalive, self.last_rx + self.limits.keepalive_time);
        } else {
            self.timers.clear(Timer::Keepalive);
        }
    }

    /// User timeout: armed while sent data is unacknowledged, counted from the last progress.
    pub(super) fn rearm_user_timeout(&mut self, now: Instant) {
        let Some(ut) = self.app.user_timeout else {
            return;
        };
        let in_flight = self.inner.sender().is_some_and(|s| s.in_flight());
        if !in_flight {
            self.timers.clear(Timer::UserTimeout);
        } else if !self.timers.is_set(Timer::UserTimeout) {
            self.timers.set(Timer::UserTimeout, now + ut);
        }
    }
}

/// Linux `tcp_model_timeout`: how long `boundary` retransmission timeouts take when the RTO
/// starts at `base` and doubles up to `max` (then stays there).
pub(crate) fn model_timeout(boundary: u32, base: Duration, max: Duration) -> Duration {
    let base_ms = base.as_millis().max(1) as u64;
    let max_ms = max.as_millis() as u64;
    let thresh = (max_ms / base_ms).max(1).ilog2();
    let ms = if boundary <= thresh {
        ((2u64 << boundary) - 1) * base_ms
    } else {
        ((2u64 << thresh) - 1) * base_ms + u64::from(boundary - thresh) * max_ms
    };
    Duration::from_millis(ms)
}
