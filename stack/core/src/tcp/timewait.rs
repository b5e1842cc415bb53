//! TIME-WAIT (RFC 9293 §3.10.7.4): the compact record and every rule for a segment that
//! arrives for a TIME-WAIT 4-tuple. This is the one place those rules live.
//!
//! Why here, beside the record and in neither holder: a 4-tuple in TIME-WAIT is held in one
//! of two ways. Usually the endpoint has freed the connection and keeps only this record in
//! its table (endpoint/twtable.rs, after `close`, up to `tcp_max_tw_buckets`); but while the
//! application still holds the connection (it has not called `close`), the `Connection`
//! itself is in TIME-WAIT, holding this record plus its unread data. Both call
//! [`TimeWait::on_segment`] and only apply its verdict ([`TimeWaitAction`]) to what they
//! hold: the endpoint through `TwTable::on_segment` (a stateless ACK, table write-back,
//! counters), the connection in conn/input.rs (`time_wait_arrival`: an owed ACK and its
//! timer). The record is plain data, so the rules need neither holder, and neither holder
//! has its own copy of them.
//!
//! Size: 48 bytes (asserted in a test): ports (4), SND.NXT and RCV.NXT (8), last window (2),
//! timestamp flag (1), TS.Recent and our TSval offset (8), when TS.Recent was set (8),
//! expiry (8), TIME-WAIT length in ms (4), padding. (The table stores it in its own 72-byte
//! layout with the 4-tuple of either family, twtable.rs.)
//!
//! Rules implemented by [`TimeWait::on_segment`]:
//! - RFC 1337: a RST is ignored (no TIME-WAIT assassination), unless `tcp_rfc1337` = 0
//!   (Linux's default): then a RST at RCV.NXT that PAWS does not reject ends TIME-WAIT, as
//!   Linux's `tcp_timewait_state_process` does.
//! - RFC 6191 §2 / RFC 9293 §3.10.7.4 fourth check: a SYN may start a new incarnation when its
//!   TSval is newer than TS.Recent, or equal with a sequence number beyond RCV.NXT
//!   (timestamps on), or by sequence number alone (see `syn_may_reopen`).
//! - RFC 7323 §5.3: PAWS rejects old duplicates (answered with an ACK).
//! - RFC 9293 §3.10.7.4 eighth check: a retransmitted FIN is ACKed again and the 2MSL timer
//!   restarts.
//! - RFC 9293 §3.10.7.4 first check: any other unacceptable segment gets an ACK.
//!
//! And for active opens, [`TimeWait::reuse_for_connect`]: `tcp_tw_reuse` (Linux
//! `tcp_twsk_unique`).

use crate::tcp::config::TwReuse;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr};

/// What to do with a segment that arrived for a TIME-WAIT 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Send `ack_segment(now)`.
    Ack,
    /// Drop it silently.
    Ignore,
    /// A new SYN the listener may accept (RFC 6191): drop the record and pass the SYN on.
    AcceptNewSyn,
    /// The record has expired: drop it and treat the segment as for a CLOSED port.
    Expire,
    /// `tcp_rfc1337` = 0: an acceptable RST ends TIME-WAIT; drop the record, answer nothing.
    Kill,
}

/// The compact TIME-WAIT record. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWait {
    pub local_port: u16,
    pub remote_port: u16,
    /// Our SND.NXT (after our FIN).
    pub snd_nxt: SeqNum,
    /// RCV.NXT (after the peer's FIN).
    pub rcv_nxt: SeqNum,
    /// The window field we last sent (already scaled down).
    pub window: u16,
    /// Timestamps in use on the connection (RFC 7323).
    pub timestamps: bool,
    /// TS.Recent: the peer's last TSval.
    pub ts_recent: u32,
    /// Our TSval offset (TSval = milliseconds + offset).
    pub ts_offset: u32,
    /// When TS.Recent was set.
    pub ts_recent_at: Instant,
    /// When the record expires (2*MSL after the last restart).
    pub expiry: Instant,
    /// The TIME-WAIT length in milliseconds (2*MSL), for restarts.
    len_ms: u32,
    /// When the last rate-limited ACK went out: our millisecond clock (wrapping), 0 = never
    /// (Linux tw_last_oow_ack_time).
    pub last_oow_ms: u32,
}

impl TimeWait {
    /// A record entering TIME-WAIT at `now`. `ts` = (TS.Recent, when set, our offset) when
    /// timestamps are in use.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        now: Instant,
        local_port: u16,
        remote_port: u16,
        snd_nxt: SeqNum,
        rcv_nxt: SeqNum,
        window: u16,
        ts: Option<(u32, Instant, u32)>,
        time_wait: Duration,
    ) -> TimeWait {
        let (ts_recent, ts_recent_at, ts_offset) = ts.unwrap_or((0, Instant::ZERO, 0));
        let len_ms = time_wait.as_millis().min(u32::MAX as u128) as u32;
        TimeWait {
            local_port,
            remote_port,
            snd_nxt,
            rcv_nxt,
            window,
            timestamps: ts.is_some(),
            ts_recent,
            ts_offset,
            ts_recent_at,
            expiry: now + Duration::from_millis(len_ms as u64),
            len_ms,
            last_oow_ms: 0,
        }
    }

    /// The TIME-WAIT length (2*MSL) in milliseconds, for restarts.
    pub fn length_ms(&self) -> u32 {
        self.len_ms
    }

    /// Decide what to do with `seg`; restarts the timer on a retransmitted FIN. `rfc1337`:
    /// `tcp_rfc1337` (RSTs ignored).
    pub fn on_segment(&mut self, now: Instant, seg: &TcpRepr<'_>, rfc1337: bool) -> TimeWaitAction {
        if now >= self.expiry {
            return TimeWaitAction::Expire;
        }
        let tsval = seg.options.timestamp.map(|(v, _)| v);
        if seg.flags.rst() {
            // RFC 1337 §3 (TIME-WAIT assassination hazards): "ignore RST segments in
            // TIME-WAIT". Without it, Linux's rule: a RST exactly at RCV.NXT whose TSval (if
            // any) PAWS accepts ends TIME-WAIT; any other RST is dropped.
            let paws_ok = match (self.timestamps, tsval) {
                (true, Some(v)) => (v.wrapping_sub(self.ts_recent) as i32) >= 0,
                _ => true,
            };
            return if !rfc1337 && seg.seq == self.rcv_nxt && paws_ok {
                TimeWaitAction::Kill
            } else {
                TimeWaitAction::Ignore
            };
        }
        // RFC 9293 §3.10.7.4 fourth check: "For the TIME-WAIT state, new connections can be
        // accepted if the Timestamp Option is used and meets expectations (per [RFC 6191])".
        if seg.flags.syn() && !seg.flags.ack() {
            return if self.syn_may_reopen(seg.seq, tsval) {
                TimeWaitAction::AcceptNewSyn
            } else {
                // RFC 6191 drops it; RFC 9293 §3.10.7.4 (RFC 5961 §4) and Linux answer a SYN
                // in a synchronized state with an ACK.
                TimeWaitAction::Ack
            };
        }
        // RFC 7323 §5.3 R1 (PAWS): an older TSval marks an old duplicate; ACK and drop.
        if let (true, Some(v)) = (self.timestamps, tsval) {
            if (v.wrapping_sub(self.ts_recent) as i32) < 0 {
                return TimeWaitAction::Ack;
            }
        }
        // RFC 9293 §3.10.7.4 eighth check: "TIME-WAIT STATE: Remain in the TIME-WAIT state.
        // Restart the 2 MSL time-wait timeout." (for a retransmission of the peer's FIN).
        if seg.flags.fin() && seg.seq + seg.payload.len() + 1u32 == self.rcv_nxt {
            self.expiry = now + Duration::from_millis(self.len_ms as u64);
            if let Some(v) = tsval {
                self.ts_recent = v;
                self.ts_recent_at = now;
            }
            return TimeWaitAction::Ack;
        }
        // RFC 9293 §3.10.7.4 first check: a bare ACK at RCV.NXT is acceptable and needs no
        // reply; anything else is unacceptable here and gets an ACK.
        if seg.seq_len() == 0 && seg.seq == self.rcv_nxt {
            TimeWaitAction::Ignore
        } else {
            TimeWaitAction::Ack
        }
    }

    /// For a [`TimeWaitAction::Ack`]: may the ACK go out now? Linux
    /// tcp_timewait_check_oow_rate_limit -> tcp_oow_rate_limited: segments carrying data or
    /// a FIN (a retransmitted FIN) are not part of an ACK loop and are always answered; bare
    /// ACKs and SYNs at most once per `interval` (`tcp_invalid_ratelimit`). Records the time
    /// of an ACK it allows.
    pub fn oow_ack_allowed(&mut self, now: Instant, seg: &TcpRepr<'_>, interval: Duration) -> bool {
        if seg.seq_len() > 0 && !seg.flags.syn() {
            return true;
        }
        let now_ms = (now.as_millis() as u32).max(1);
        if self.last_oow_ms != 0
            && (now_ms.wrapping_sub(self.last_oow_ms) as u128) < interval.as_millis()
        {
            return false;
        }
        self.last_oow_ms = now_ms;
        true
    }

    /// RFC 6191 §2, all five cases ("last timestamp / sequence number seen" = TS.Recent /
    /// RCV.NXT). Previous incarnation with timestamps: a SYN with a TSval greater than
    /// TS.Recent, or equal to it with a sequence number beyond RCV.NXT, or a SYN without
    /// timestamps beyond RCV.NXT. Without timestamps: any SYN with timestamps, or one beyond
    /// RCV.NXT. The equal-TSval case matters: a client that reuses the port within the
    /// millisecond of its last segment (1 ms TSval clock) would otherwise wait for its SYN
    /// retransmission (1 s).
    fn syn_may_reopen(&self, seq: SeqNum, tsval: Option<u32>) -> bool {
        let beyond = seq.gt(self.rcv_nxt);
        match (self.timestamps, tsval) {
            (true, Some(v)) => {
                let d = v.wrapping_sub(self.ts_recent) as i32;
                d > 0 || (d == 0 && beyond)
            }
            (false, Some(_)) => true,
            (_, None) => beyond,
        }
    }

    /// Linux `tcp_tw_reuse` = 1 for an active open to this 4-tuple (Linux tcp_twsk_unique):
    /// safe only with timestamps (RFC 7323 PAWS then rejects old duplicates, RFC 6191) and
    /// once TS.Recent is more than `delay` (`tcp_tw_reuse_delay`, default 1 s) old. Returns the ISS for the new connection
    /// (SND.NXT + 65537, beyond anything the old one could have had in flight) and the TSval
    /// offset to keep, so the new TSvals stay newer than the old ones. The caller drops the
    /// record when it uses them. (tcp_tw_recycle does not exist: it broke clients behind NAT
    /// and left Linux in 4.12.)
    pub fn reuse_for_connect(
        &self,
        now: Instant,
        tw_reuse: TwReuse,
        delay: Duration,
    ) -> Option<(SeqNum, u32)> {
        if tw_reuse != TwReuse::On || !self.timestamps {
            return None;
        }
        if now.saturating_since(self.ts_recent_at) <= delay {
            return None;
        }
        let iss = self.snd_nxt + 65_537u32;
        Some((if iss.0 == 0 { SeqNum(1) } else { iss }, self.ts_offset))
    }

    /// The ACK to send for `TimeWaitAction::Ack`: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
    pub fn ack_segment(&self, now: Instant) -> TcpRepr<'static> {
        let mut options = TcpOptions::default();
        if self.timestamps {
            let val = (now.as_millis() as u32).wrapping_add(self.ts_offset);
            options.timestamp = Some((val, self.ts_recent));
        }
        TcpRepr {
            src_port: self.local_port,
            dst_port: self.remote_port,
            seq: self.snd_nxt,
            ack: self.rcv_nxt,
            flags: TcpFlags::ACK,
            window: self.window,
            urgent: 0,
            options,
            payload: &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant::from_secs(100);
    const TW: Duration = Duration::from_secs(60);

    fn rec(ts: bool) -> TimeWait {
        TimeWait::new(
            T0,
            80,
            40000,
            SeqNum(5000),
            SeqNum(9000),
            512,
            ts.then_some((777, T0, 10)),
            TW,
        )
    }

    fn seg(flags: TcpFlags, seq: u32, ts: Option<u32>) -> TcpRepr<'static> {
        let options = TcpOptions {
            timestamp: ts.map(|v| (v, 0)),
            ..TcpOptions::default()
        };
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(seq),
            ack: SeqNum(5000),
            flags,
            window: 100,
            urgent: 0,
            options,
            payload: &[],
        }
    }

    #[test]
    fn record_is_compact() {
        assert!(core::mem::size_of::<TimeWait>() <= 48);
    }

    /// tcp_rfc1337 = 0 (Linux's default): a RST exactly at RCV.NXT ends TIME-WAIT (Linux
    /// tcp_timewait_state_process, TWKilled); one elsewhere, or one PAWS rejects, is dropped.
    #[test]
    fn rst_ends_time_wait_without_rfc1337() {
        let mut r = rec(false);
        assert_eq!(
            r.on_segment(T0, &seg(TcpFlags::RST, 9000, None), false),
            TimeWaitAction::Kill
        );
        for s in [8999, 9001, 12000] {
            assert_eq!(
                r.on_segment(T0, &seg(TcpFlags::RST, s, None), false),
                TimeWaitAction::Ignore,
                "seq {s}"
            );
        }
        let mut r = rec(true); // TS.Recent 777
        assert_eq!(
            r.on_segment(T0, &seg(TcpFlags::RST, 9000, Some(776)), false),
            TimeWaitAction::Ignore
        );
        assert_eq!(
            r.on_segment(T0, &seg(TcpFlags::RST, 9000, Some(777)), false),
            TimeWaitAction::Kill
        );
        assert_eq!(
            r.on_segment(T0, &seg(TcpFlags::RST, 9000, None), false),
            TimeWaitAction::Kill
        );
    }

    /// RFC 1337: RST in TIME-WAIT is ignored.
    #[test]
    fn rst_ignored_rfc1337() {
        let mut r = rec(false);
        let a = r.on_segment(T0, &seg(TcpFlags::RST, 9000, None), true);
        assert_eq!(a, TimeWaitAction::Ignore);
        assert_eq!(r.expiry, T0 + TW);
    }

    /// RFC 9293 §3.10.7.4 eighth check: FIN retransmission re-ACKed, timer restarted.
    #[test]
    fn fin_retransmission_reacked_and_timer_restarted() {
        let mut r = rec(true);
        let later = T0 + Duration::from_secs(10);
        let fin = seg(TcpFlags::FIN | TcpFlags::ACK, 8999, Some(800));
        assert_eq!(r.on_segment(later, &fin, true), TimeWaitAction::Ack);
        assert_eq!(r.expiry, later + TW);
        assert_eq!(r.ts_recent, 800);
        let ack = r.ack_segment(later);
        assert_eq!(
            (ack.seq, ack.ack, ack.flags),
            (SeqNum(5000), SeqNum(9000), TcpFlags::ACK)
        );
        assert_eq!((ack.src_port, ack.dst_port, ack.window), (80, 40000, 512));
        assert_eq!(ack.options.timestamp, Some((110_010, 800)));
    }

    /// RFC 6191 §2: SYN acceptance, every case (record: RCV.NXT 9000, TS.Recent 777 when the
    /// previous incarnation used timestamps).
    #[test]
    fn new_syn_rfc6191_table() {
        // (timestamps on, SYN seq, SYN TSval, expected)
        let cases = [
            // Previous incarnation without timestamps, new SYN without: sequence number
            // "greater than the last sequence number seen" honoured, else dropped (ACKed).
            (false, 9001, None, TimeWaitAction::AcceptNewSyn),
            (false, 9000, None, TimeWaitAction::Ack),
            (false, 8000, None, TimeWaitAction::Ack),
            // ... new SYN with timestamps: "honor the incoming connection request", whatever
            // its sequence number.
            (false, 8000, Some(1), TimeWaitAction::AcceptNewSyn),
            (false, 9001, Some(1), TimeWaitAction::AcceptNewSyn),
            // Previous incarnation with timestamps: a greater TSval is honoured whatever the
            // sequence number.
            (true, 1, Some(778), TimeWaitAction::AcceptNewSyn),
            // An equal TSval "and the Sequence Number ... is greater": honoured.
            (true, 9001, Some(777), TimeWaitAction::AcceptNewSyn),
            (true, 99999, Some(777), TimeWaitAction::AcceptNewSyn),
            // An equal TSval with a sequence number not beyond RCV.NXT: dropped (ACKed).
            (true, 9000, Some(777), TimeWaitAction::Ack),
            (true, 8000, Some(777), TimeWaitAction::Ack),
            // An older TSval: dropped (ACKed) even with a greater sequence number.
            (true, 99999, Some(700), TimeWaitAction::Ack),
            // A new SYN without timestamps: by sequence number.
            (true, 9001, None, TimeWaitAction::AcceptNewSyn),
            (true, 9000, None, TimeWaitAction::Ack),
        ];
        for (ts, seq, tsval, want) in cases {
            let mut r = rec(ts);
            let got = r.on_segment(T0, &seg(TcpFlags::SYN, seq, tsval), true);
            assert_eq!(got, want, "ts={ts} seq={seq} tsval={tsval:?}");
        }
    }

    /// tcp_tw_reuse: only when enabled, with timestamps, and TS.Recent older than
    /// tcp_tw_reuse_delay (1 s by default).
    #[test]
    fn reuse_for_connect_table() {
        let later = T0 + Duration::from_millis(1001);
        let sec = Duration::from_secs(1);
        assert_eq!(
            rec(true).reuse_for_connect(later, TwReuse::On, sec),
            Some((SeqNum(5000 + 65_537), 10))
        );
        assert_eq!(
            rec(true).reuse_for_connect(T0 + Duration::from_secs(1), TwReuse::On, sec),
            None
        );
        assert_eq!(rec(true).reuse_for_connect(later, TwReuse::Off, sec), None);
        assert_eq!(
            rec(true).reuse_for_connect(later, TwReuse::LoopbackOnly, sec),
            None
        );
        assert_eq!(rec(false).reuse_for_connect(later, TwReuse::On, sec), None);
        // tcp_tw_reuse_delay 10 ms: reusable after 10 ms, not at 10 ms.
        let ms10 = Duration::from_millis(10);
        assert_eq!(
            rec(true).reuse_for_connect(T0 + ms10, TwReuse::On, ms10),
            None
        );
        assert_eq!(
            rec(true).reuse_for_connect(T0 + Duration::from_millis(11), TwReuse::On, ms10),
            Some((SeqNum(5000 + 65_537), 10))
        );
    }

    #[test]
    fn other_segments_and_expiry() {
        let mut r = rec(true);
        let bare = seg(TcpFlags::ACK, 9000, Some(778));
        assert_eq!(r.on_segment(T0, &bare, true), TimeWaitAction::Ignore);
        // RFC 7323 §5.3 PAWS: older TSval -> ACK.
        assert_eq!(
            r.on_segment(T0, &seg(TcpFlags::ACK, 9000, Some(1)), true),
            TimeWaitAction::Ack
        );
        let mut data = seg(TcpFlags::ACK, 9000, Some(778));
        data.payload = b"late";
        assert_eq!(r.on_segment(T0, &data, true), TimeWaitAction::Ack);
        assert_eq!(r.on_segment(T0 + TW, &bare, true), TimeWaitAction::Expire);
    }
}
