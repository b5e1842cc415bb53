//! Loss detection and recovery for the sending half:
//! - duplicate ACKs (RFC 5681 §2) and fast retransmit on the third (RFC 5681 §3.2);
//! - without SACK, NewReno fast recovery (RFC 6582 §3.2): window inflation, partial ACKs
//!   retransmit the next hole, a full ACK (covering `recover`) ends recovery;
//! - with SACK, RFC 6675: the scoreboard, IsLost, pipe and NextSeg; recovery also starts
//!   when IsLost(SND.UNA) although fewer than three duplicate ACKs arrived;
//! - the retransmission timeout (RFC 6298 §5.4-5.6, RFC 5681 §3.1, RFC 6675 §5.1):
//!   cwnd = 1 SMSS, the scoreboard cleared (RFC 2018 §8), go-back-N from SND.UNA skipping
//!   what the peer SACKs afterwards, and no new recovery until SND.MAX at the timeout is
//!   acknowledged.

use super::{Acked, Sender, Tx, TxKind};
use crate::tcp::bufpool::BufPool;
use crate::tcp::cc::CongestionControl;
use crate::tcp::conn::scoreboard::{dist, DUP_THRESH};
use crate::time::{Duration, Instant};
use crate::wire::SeqNum;

/// Fast recovery state (only while recovering).
#[derive(Debug, Clone, Copy)]
pub(super) struct Recovery {
    /// RFC 6675 HighRxt (exclusive): retransmissions so far in this recovery end here.
    pub high_rxt: SeqNum,
    /// RFC 6675 RescueRxt: set once the rescue retransmission went out.
    pub rescue_rxt: Option<SeqNum>,
    /// RFC 6582 window inflation (non-SACK): 3 SMSS at entry, +1 SMSS per further
    /// duplicate ACK, deflated by partial ACKs.
    pub inflate: u32,
    /// A partial ACK was seen (RFC 6582 step 5: only the first restarts the timer).
    pub partial_seen: bool,
}

/// One acceptable ACK, as the sender needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct AckInfo<'a> {
    pub ack: SeqNum,
    /// SEG.WND, scaled.
    pub wnd: u32,
    /// No data, no SYN, no FIN (RFC 5681 §2 (b), (c)).
    pub pure: bool,
    /// RFC 2018 blocks (empty unless SACK was negotiated).
    pub sacks: &'a [(SeqNum, SeqNum)],
    /// RTT from the timestamp echo (RFC 7323 §4.1), if any.
    pub ts_rtt: Option<Duration>,
}

/// What an ACK did, for the caller's timer handling.
#[derive(Debug, Clone, Copy, Default)]
pub(in crate::tcp::conn) struct AckResult {
    pub acked: Acked,
    /// SND.UNA advanced.
    pub advanced: bool,
    /// RFC 6298 §5.3 restart of the retransmission timer (not for later NewReno partial
    /// ACKs, RFC 6582 step 5).
    pub restart_rto: bool,
    /// The peer's window is open (stop the persist timer).
    pub window_open: bool,
}

impl Sender {
    /// Process the ACK part of an acceptable segment (RFC 5961 §5.2 range already checked).
    /// Call before the window update (RFC 5681 §2's duplicate test compares windows).
    pub(super) fn on_ack_segment(
        &mut self,
        now: Instant,
        a: &AckInfo<'_>,
        pool: &mut BufPool,
    ) -> AckResult {
        let mss = self.mss as u32;
        let flight_before = self.flight_size();
        let mut res = AckResult::default();
        if self.una.lt(a.ack) {
            res.acked = self.on_ack(now, a.ack, a.ts_rtt, pool);
            res.advanced = true;
            res.restart_rto = true;
            self.sb.advance(self.una);
        }
        let new_sacked = if self.sack {
            self.sb.update(self.una, self.max, a.sacks)
        } else {
            0
        };
        if res.advanced {
            // RFC 6675 §5: "If the incoming ACK is a cumulative acknowledgment, the TCP MUST
            // reset DupAcks to zero."
            self.dupacks = 0;
            let newly = res.acked.bytes as u32 + res.acked.fin as u32;
            match &mut self.recovery {
                // RFC 6582 step 5 / RFC 6675 (A): a full ACK ends recovery.
                Some(_) if a.ack.ge(self.recover) => {
                    self.recovery = None;
                    let flight = self.flight_size();
                    self.cc.on_recovery_exit(now, flight);
                }
                Some(r) if !self.sack => {
                    // RFC 6582 step 4, partial ACK: retransmit the first unacknowledged
                    // segment; deflate by the amount acknowledged, adding back one SMSS if
                    // that was at least one SMSS; the timer restarts on the first only.
                    r.inflate = r.inflate.saturating_sub(newly);
                    if newly >= mss {
                        r.inflate += mss;
                    }
                    res.restart_rto = !r.partial_seen;
                    r.partial_seen = true;
                    self.rtx_head = true;
                }
                Some(r) => r.high_rxt = r.high_rxt.max(self.una),
                None => {
                    let limited = self.cwnd_limited
                        || (self.cc.in_slow_start() && flight_before * 2 >= self.cc.cwnd());
                    self.cc.on_ack(now, newly, self.rtt.srtt(), limited);
                }
            }
            return res;
        }
        // RFC 5681 §2: a duplicate ACK has (a) data outstanding, (b) no data, (c) neither SYN
        // nor FIN, (d) SEG.ACK = SND.UNA, (e) the same window; with SACK, an ACK bringing
        // new SACK information counts too (RFC 6675 §2).
        let dup = a.ack == self.una
            && self.in_flight()
            && ((a.pure && a.wnd == self.wnd) || new_sacked > 0);
        if !dup {
            return res;
        }
        if let Some(r) = &mut self.recovery {
            // RFC 6582 step 3: inflate by one SMSS per further duplicate ACK.
            if !self.sack {
                r.inflate = r.inflate.saturating_add(mss);
            }
            return res;
        }
        self.dupacks += 1;
        let lost = self.sack && self.sb.is_lost(self.una, mss);
        // RFC 6582 step 2 / RFC 6675 §5: only if the ACK covers `recover` (no second
        // reduction for losses of the same window, or after an RTO).
        if (self.dupacks >= DUP_THRESH || lost) && a.ack.ge(self.recover) {
            // A lost path MTU probe is no congestion signal (pmtu.rs).
            if !self.probe_lost() {
                self.enter_recovery(now);
            }
        }
        res
    }

    /// RFC 5681 §3.2 steps 2-3 / RFC 6582 step 2 / RFC 6675 §5 step 4.
    fn enter_recovery(&mut self, now: Instant) {
        let flight = self.flight_size();
        self.recover = self.max;
        self.cc.on_congestion_event(now, flight);
        self.recovery = Some(Recovery {
            high_rxt: self.una,
            rescue_rxt: None,
            inflate: if self.sack { 0 } else { 3 * self.mss as u32 },
            partial_seen: false,
        });
        // The fast retransmission itself goes out regardless of cwnd.
        self.rtx_head = true;
    }

    /// RFC 6675 §4 SetPipe(): octets in the network, counting each unSACKed octet below
    /// SND.MAX that is not lost once, and once more if it was retransmitted.
    pub(super) fn pipe(&self) -> u32 {
        let mss = self.mss as u32;
        let lost_below = self.sb.lost_boundary(mss);
        let high_rxt = self.recovery.map_or(self.una, |r| r.high_rxt);
        let mut pipe = 0;
        let mut hole = |a: SeqNum, b: SeqNum| {
            let not_lost = match lost_below {
                Some(l) => dist(a.max(l), b),
                None => dist(a, b),
            };
            pipe += not_lost + dist(a, b.min(high_rxt));
        };
        let mut start = self.una;
        let mut seq = self.una;
        while let Some(l) = self.sb.next_sacked_after(seq) {
            if !l.lt(self.max) {
                break;
            }
            hole(start, l);
            let r = self.sb.covering(l).unwrap_or(l);
            start = r;
            seq = r;
        }
        if let Some(r) = self.sb.covering(start) {
            start = r;
        }
        hole(start, self.max);
        pipe
    }

    /// RFC 6675 §5 (C): in SACK recovery, while cwnd - pipe >= 1 SMSS, the segment NextSeg()
    /// chooses (§4).
    pub(super) fn next_seg(&mut self, nodelay: bool) -> Option<Tx> {
        let mss = self.mss as u32;
        let room = self.cc.cwnd().saturating_sub(self.pipe());
        if room < mss {
            self.cwnd_limited = true;
            return None;
        }
        let r = self.recovery?;
        let lost_below = self.sb.lost_boundary(mss);
        // Rules 1 and 3: the first unSACKed octet at or above HighRxt; rule 1 when it is
        // lost, rule 3 (after new data) otherwise.
        // (1.a) above HighRxt, (1.b) below the highest SACKed octet, (1.c) IsLost.
        let mut s = r.high_rxt.max(self.una);
        while let Some(e) = self.sb.covering(s) {
            s = e;
        }
        let below_sacked = self.sb.highest().is_some_and(|h| s.lt(h));
        let hole = (below_sacked && s.lt(self.max)).then_some(s);
        if let Some(s) = hole {
            if lost_below.is_some_and(|l| s.lt(l)) {
                return self.retransmission(s, TxKind::Hole);
            }
        }
        // Rule 2: new data, within the peer's window.
        if self.nxt == self.max {
            if let Some(tx) = self.new_data(room, nodelay) {
                return Some(tx);
            }
        }
        if let Some(s) = hole {
            return self.retransmission(s, TxKind::Hole);
        }
        // Rule 4: one rescue retransmission per recovery (again only once SND.UNA passed
        // the previous one), including the highest unSACKed octet.
        if r.rescue_rxt.is_none_or(|x| self.una.gt(x)) {
            let mut top = self.max.min(self.data_end());
            if self.una.lt(top) {
                if let Some(l) = self.sb.left_of(top - 1u32) {
                    top = l;
                }
            }
            if self.una.lt(top) {
                let mut from = if dist(self.una, top) > mss {
                    top - mss
                } else {
                    self.una
                };
                if let Some(e) = self.sb.right_edge_below(top) {
                    from = from.max(e);
                }
                return self.retransmission(from, TxKind::Rescue);
            }
        }
        None
    }

    /// RFC 6298 §5.4-5.6 with RFC 5681 §3.1 and RFC 6675 §5.1: the retransmission timer
    /// expired. Back off, collapse cwnd, forget SACK information and go back to SND.UNA.
    pub fn on_rto(&mut self, now: Instant) {
        // A probe still unacknowledged at a timeout was too big (pmtu.rs).
        self.probe_failed();
        let first = self.rto_count == 0;
        if first {
            let sent = now
                .as_millis()
                .saturating_sub(self.rtt.rto().as_millis() as u64);
            self.rto_since_ms = sent as u32;
        }
        self.rto_count += 1;
        self.backoff = self.backoff.saturating_add(1);
        self.rtt.backoff();
        let flight = self.flight_size();
        self.cc.on_rto(now, flight, first);
        self.recover = self.max;
        self.recovery = None;
        self.dupacks = 0;
        self.sb.clear();
        self.nxt = self.una;
        self.timing = None;
        self.rtx_head = true;
    }

    /// The retransmission timer expired while the peer's window is zero: the same go-back,
    /// but the retransmission is a window probe and, as in Linux (tcp_retransmit_timer),
    /// does not count toward tcp_retries2.
    pub fn on_rto_window_probe(&mut self, now: Instant) {
        self.on_rto(now);
        self.rto_count -= 1;
        // Linux doubles the RTO but leaves icsk_backoff (RFC 6069's revert) alone here.
        self.backoff -= 1;
    }
}
