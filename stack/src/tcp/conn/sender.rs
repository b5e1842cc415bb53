//! The sending half: SND.UNA / SND.NXT / SND.WND (RFC 9293 §3.3.1), the bounded send buffer
//! and the retransmission state. Retransmission is go-back-N from SND.UNA on RTO; issue 4
//! adds SACK, fast retransmit and congestion control here.
//!
//! Sequence layout: the buffer holds bytes [SND.UNA, SND.UNA + len); when `fin` is set, the
//! FIN occupies the sequence number right after them.

use std::collections::VecDeque;

use super::rtt::Rtt;
use super::{Limits, Negotiated};
use crate::time::{Duration, Instant};
use crate::wire::SeqNum;

#[derive(Debug)]
pub(super) struct Sender {
    /// SND.UNA: oldest unacknowledged sequence number.
    pub una: SeqNum,
    /// SND.NXT: next sequence number to send (moved back to SND.UNA on RTO).
    pub nxt: SeqNum,
    /// Highest sequence number sent + 1 (SND.MAX): ACKs up to here are valid even after
    /// SND.NXT was moved back.
    pub max: SeqNum,
    /// SND.WND in bytes (already scaled).
    pub wnd: u32,
    /// MAX.SND.WND (RFC 5961 §5): the largest window the peer has advertised.
    pub max_wnd: u32,
    /// SND.WL1 / SND.WL2: segment seq / ack of the last window update.
    pub wl1: SeqNum,
    pub wl2: SeqNum,
    /// The peer's window scale shift.
    pub shift: u8,
    pub mss: u16,
    /// Unacknowledged and unsent bytes, starting at SND.UNA. At most `cap` bytes.
    pub buf: VecDeque<u8>,
    cap: usize,
    /// A FIN follows the buffered bytes (CLOSE was called).
    pub fin: bool,
    /// Our FIN has been acknowledged (then SND.UNA is past it and the buffer empty).
    fin_acked: bool,
    pub rtt: Rtt,
    /// Consecutive retransmission timeouts without progress (for tcp_retries2).
    pub rto_count: u32,
    /// Zero-window probes sent since the window closed (persist backoff).
    pub probes: u32,
    /// The segment being timed for an RTT sample (Karn): (its end, when sent).
    timing: Option<(SeqNum, Instant)>,
}

/// What an acceptable ACK did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Acked {
    pub bytes: usize,
    pub fin: bool,
}

impl Sender {
    pub fn new(iss: SeqNum, nego: Negotiated, cap: usize, limits: &Limits) -> Sender {
        let una = iss + 1u32;
        Sender {
            una,
            nxt: una,
            max: una,
            wnd: 0,
            max_wnd: 0,
            wl1: SeqNum(0),
            wl2: SeqNum(0),
            shift: nego.snd_shift,
            // RFC 6691 §2 / RFC 9293 §3.7.1: the MSS bounds data plus TCP options, so every
            // segment's data shrinks by the 12-byte timestamp option when it is in use
            // (Linux: 1448 data bytes for MSS 1460).
            mss: if nego.timestamps {
                nego.mss.saturating_sub(12).max(64)
            } else {
                nego.mss
            },
            buf: VecDeque::new(),
            cap,
            fin: false,
            fin_acked: false,
            rtt: Rtt::new(limits.rto_initial, limits.rto_min, limits.rto_max),
            rto_count: 0,
            probes: 0,
            timing: None,
        }
    }

    pub fn space(&self) -> usize {
        if self.fin {
            0
        } else {
            self.cap - self.buf.len()
        }
    }

    /// Append application data; returns how much fit.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.space());
        self.buf.extend(&data[..n]);
        n
    }

    /// Sequence number right after the buffered data (where a FIN goes).
    pub fn data_end(&self) -> SeqNum {
        self.una + self.buf.len()
    }

    /// Sequence number after everything queued, FIN included.
    pub fn end(&self) -> SeqNum {
        self.data_end() + (self.fin && !self.fin_acked) as u32
    }

    /// Bytes or FIN sent and not yet acknowledged.
    pub fn in_flight(&self) -> bool {
        self.max != self.una
    }

    pub fn fin_acked(&self) -> bool {
        self.fin_acked
    }

    /// RFC 9293 §3.10.7.4 fifth check: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
    /// SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set
    /// SND.WL2 <- SEG.ACK."
    pub fn update_window(&mut self, seq: SeqNum, ack: SeqNum, raw_wnd: u16) {
        if self.wl1.lt(seq) || (self.wl1 == seq && self.wl2.le(ack)) {
            self.set_window((raw_wnd as u32) << self.shift, seq, ack);
        }
    }

    pub fn set_window(&mut self, wnd: u32, wl1: SeqNum, wl2: SeqNum) {
        self.wnd = wnd;
        self.max_wnd = self.max_wnd.max(wnd);
        self.wl1 = wl1;
        self.wl2 = wl2;
    }

    /// RFC 5961 §5.2: an ACK is acceptable when
    /// (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT (SND.MAX here, see `max`).
    pub fn ack_acceptable(&self, ack: SeqNum) -> bool {
        ack.ge(self.una - self.max_wnd) && ack.le(self.max)
    }

    /// Process an ACK with SND.UNA < SEG.ACK =< SND.MAX: drop acknowledged bytes, take an
    /// RTT sample (Karn's timed segment when it is covered, else `ts_rtt` from timestamps).
    pub fn on_ack(&mut self, now: Instant, ack: SeqNum, ts_rtt: Option<Duration>) -> Acked {
        let n = ack - self.una;
        let bytes = n.min(self.buf.len());
        self.buf.drain(..bytes);
        self.una = ack;
        if self.nxt.lt(ack) {
            self.nxt = ack;
        }
        self.rto_count = 0;
        // As Linux: prefer the timed segment (Karn-clean); fall back to the timestamp echo
        // (RFC 7323 §4.1 RTTM) when the acknowledged data was retransmitted.
        match (self.timing, ts_rtt) {
            (Some((end, sent)), _) if end.le(ack) => self.rtt.sample(now - sent),
            (_, Some(r)) => self.rtt.sample(r),
            _ => {}
        }
        if self.timing.is_some_and(|(end, _)| end.le(ack)) {
            self.timing = None;
        }
        // Anything acknowledged beyond the data is the FIN (`ack_acceptable` bounds SEG.ACK
        // by SND.MAX, so it was sent).
        let fin = self.fin && n > bytes;
        self.fin_acked |= fin;
        Acked { bytes, fin }
    }

    /// The next segment to send, if any: (seq, payload range in `buf`, FIN?). Respects the
    /// peer's window and the MSS; a FIN needs no window space.
    pub fn next_segment(&self) -> Option<(SeqNum, core::ops::Range<usize>, bool)> {
        let off = self.nxt - self.una;
        let wnd_end = self.una + self.wnd;
        let can = if wnd_end.gt(self.nxt) {
            wnd_end - self.nxt
        } else {
            0
        };
        let unsent = self.buf.len().saturating_sub(off);
        let len = unsent.min(self.mss as usize).min(can);
        // The contiguous part only: a segment never spans the ring's wrap.
        let (a, _) = self.buf.as_slices();
        let len = if off < a.len() {
            len.min(a.len() - off)
        } else {
            len
        };
        let fin = self.fin
            && !self.fin_acked
            && off + len == self.buf.len()
            && self.nxt.le(self.data_end());
        if len == 0 && !fin {
            return None;
        }
        Some((self.nxt, off..off + len, fin))
    }

    /// Payload bytes for a range returned by `next_segment`.
    pub fn payload(&self, r: core::ops::Range<usize>) -> &[u8] {
        let (a, b) = self.buf.as_slices();
        if r.end <= a.len() {
            &a[r]
        } else {
            &b[r.start - a.len()..r.end - a.len()]
        }
    }

    /// A segment of `len` bytes (+FIN) at SND.NXT went out.
    pub fn sent(&mut self, now: Instant, len: usize, fin: bool) {
        let end = self.nxt + len + fin as u32;
        // Karn: time only new data, never a retransmission.
        if self.timing.is_none() && end.gt(self.max) && self.nxt.ge(self.max) {
            self.timing = Some((end, now));
        }
        self.nxt = end;
        self.max = self.max.max(end);
    }

    /// RFC 6298 §5.4-5.6: retransmission timeout: back off and resend from SND.UNA.
    pub fn on_rto(&mut self) {
        self.rto_count += 1;
        self.rtt.backoff();
        self.nxt = self.una;
        self.timing = None;
    }

    /// The remains once our FIN is acknowledged (FIN-WAIT-2, TIME-WAIT).
    pub fn done(self) -> SendDone {
        SendDone {
            nxt: self.max,
            max_wnd: self.max_wnd,
        }
    }
}

/// The send side after our FIN was acknowledged: nothing left to send.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendDone {
    /// SND.NXT = SND.UNA.
    pub nxt: SeqNum,
    pub max_wnd: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpConfig;

    fn sender() -> Sender {
        let cfg = TcpConfig::default();
        let nego = Negotiated {
            mss: 4,
            ..Default::default()
        };
        let mut s = Sender::new(SeqNum(100), nego, 10, &Limits::new(&cfg));
        s.set_window(6, SeqNum(0), SeqNum(101));
        s
    }

    #[test]
    fn segments_respect_mss_window_and_fin() {
        let mut s = sender();
        assert_eq!(s.write(b"abcdefghijkl"), 10, "bounded by cap");
        assert_eq!(s.next_segment(), Some((SeqNum(101), 0..4, false)));
        s.sent(Instant::ZERO, 4, false);
        assert_eq!(
            s.next_segment(),
            Some((SeqNum(105), 4..6, false)),
            "window 6"
        );
        s.sent(Instant::ZERO, 2, false);
        assert_eq!(s.next_segment(), None);
        let a = s.on_ack(Instant::from_millis(50), SeqNum(107), None);
        assert_eq!(
            a,
            Acked {
                bytes: 6,
                fin: false
            }
        );
        assert_eq!(s.rtt.srtt(), Some(Duration::from_millis(50)));
        s.set_window(100, SeqNum(1), SeqNum(107));
        s.fin = true;
        assert_eq!(s.next_segment(), Some((SeqNum(107), 0..4, true)));
        s.sent(Instant::ZERO, 4, true);
        assert_eq!(
            s.on_ack(Instant::ZERO, SeqNum(112), None),
            Acked {
                bytes: 4,
                fin: true
            }
        );
        assert!(s.fin_acked());
    }

    #[test]
    fn rto_goes_back_to_una_and_karn_skips_sample() {
        let mut s = sender();
        s.write(b"abcd");
        s.sent(Instant::ZERO, 4, false);
        s.on_rto();
        assert_eq!(s.nxt, SeqNum(101));
        assert_eq!(s.next_segment(), Some((SeqNum(101), 0..4, false)));
        s.sent(Instant::from_secs(1), 4, false);
        s.on_ack(Instant::from_secs(2), SeqNum(105), None);
        assert_eq!(s.rtt.srtt(), None, "Karn: no sample from a retransmission");
        assert_eq!(s.rto_count, 0);
    }

    /// RFC 5961 §5.2 acceptable ACK range.
    #[test]
    fn ack_acceptable_range() {
        let mut s = sender();
        s.write(b"abcd");
        s.sent(Instant::ZERO, 4, false);
        s.on_ack(Instant::ZERO, SeqNum(103), None);
        assert!(s.ack_acceptable(SeqNum(105)));
        assert!(!s.ack_acceptable(SeqNum(106)));
        assert!(s.ack_acceptable(SeqNum(103 - 6)));
        assert!(!s.ack_acceptable(SeqNum(103 - 7)));
    }
}
