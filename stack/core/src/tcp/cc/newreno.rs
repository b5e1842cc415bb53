//! NewReno's window arithmetic (RFC 5681 §3.1, RFC 6582 §3.2 steps 2 and 5). The window
//! inflation of fast recovery (RFC 6582 steps 2-4) is in tcp/conn/sender/recovery.rs.

use super::{initial_window, slow_start, CongestionControl};
use crate::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    mss: u32,
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged in congestion avoidance since cwnd last grew (RFC 5681 §3.1's
    /// byte-counting variant: +1 SMSS per cwnd of acknowledged data).
    acked: u32,
}

impl NewReno {
    pub fn new(mss: u16) -> NewReno {
        let mss = (mss as u32).max(1);
        NewReno {
            mss,
            cwnd: initial_window(mss),
            // RFC 5681 §3.1: "SHOULD be set arbitrarily high".
            ssthresh: u32::MAX,
            acked: 0,
        }
    }

    /// Same segment counts in segments of `mss` bytes (`Cc::set_mss`), or the same bytes.
    pub fn set_mss(&mut self, mss: u16, keep_bytes: bool) {
        let new = (mss as u32).max(1);
        if keep_bytes {
            self.mss = new;
            self.cwnd = self.cwnd.max(new);
            return;
        }
        self.cwnd = super::rescale(self.cwnd, self.mss, new).max(new);
        self.ssthresh = super::rescale(self.ssthresh, self.mss, new);
        self.acked = super::rescale(self.acked, self.mss, new);
        self.mss = new;
    }

    /// RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
    fn half(&self, flight: u32) -> u32 {
        (flight / 2).max(2 * self.mss)
    }
}

impl CongestionControl for NewReno {
    fn on_ack(&mut self, _now: Instant, acked: u32, _rtt: Option<Duration>, cwnd_limited: bool) {
        if !cwnd_limited {
            return;
        }
        if self.in_slow_start() {
            self.cwnd = slow_start(self.cwnd, acked, self.mss);
            return;
        }
        // RFC 5681 §3.1 congestion avoidance: one SMSS per cwnd acknowledged.
        self.acked = self.acked.saturating_add(acked);
        if self.acked >= self.cwnd {
            self.acked -= self.cwnd;
            self.cwnd = self.cwnd.saturating_add(self.mss);
        }
    }

    /// RFC 6582 §3.2 step 2 / RFC 5681 §3.2 step 2: ssthresh = max(FlightSize/2, 2*SMSS),
    /// cwnd = ssthresh (the +3*SMSS inflation is the recovery's).
    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        self.ssthresh = self.half(flight);
        self.cwnd = self.ssthresh;
        self.acked = 0;
    }

    /// RFC 6582 §3.2 step 5, first option: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS)
    /// (no burst when little is outstanding).
    fn on_recovery_exit(&mut self, _now: Instant, flight: u32) {
        self.cwnd = self.ssthresh.min(flight.max(self.mss) + self.mss);
    }

    /// RFC 5681 §3.1: ssthresh by eq. 4 (only on the first timeout of this data), cwnd = LW
    /// = 1 SMSS.
    fn on_rto(&mut self, _now: Instant, flight: u32, first: bool) {
        if first {
            self.ssthresh = self.half(flight);
        }
        self.cwnd = self.mss;
        self.acked = 0;
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        self.cwnd = self.cwnd.min(initial_window(self.mss));
    }

    fn cwnd(&self) -> u32 {
        self.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Instant = Instant::ZERO;

    /// RFC 5681 §3.1: slow start adds min(N, 2*SMSS) per ACK (RFC 3465 L = 2), congestion
    /// avoidance one SMSS per cwnd of acknowledged bytes.
    #[test]
    fn slow_start_then_avoidance() {
        let mut r = NewReno::new(1000);
        assert_eq!((r.cwnd(), r.ssthresh()), (10_000, u32::MAX));
        r.on_ack(T, 1000, None, true);
        assert_eq!(r.cwnd(), 11_000);
        r.on_ack(T, 5000, None, true);
        assert_eq!(r.cwnd(), 13_000, "L = 2*SMSS");
        r.on_ack(T, 1000, None, false);
        assert_eq!(r.cwnd(), 13_000, "application-limited: no growth");
        r.on_congestion_event(T, 13_000);
        assert_eq!((r.cwnd(), r.ssthresh()), (6500, 6500));
        assert!(!r.in_slow_start());
        for _ in 0..6 {
            r.on_ack(T, 1000, None, true);
        }
        assert_eq!(r.cwnd(), 6500, "6000 < cwnd acknowledged");
        r.on_ack(T, 1000, None, true);
        assert_eq!(r.cwnd(), 7500);
    }

    /// RFC 5681 §3.1 eq. 4 on timeout; a second timeout keeps ssthresh; cwnd = 1 SMSS.
    #[test]
    fn rto_response() {
        let mut r = NewReno::new(1000);
        r.on_rto(T, 20_000, true);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.on_rto(T, 1000, false);
        assert_eq!((r.cwnd(), r.ssthresh()), (1000, 10_000));
        r.on_rto(T, 1000, true);
        assert_eq!(r.ssthresh(), 2000, "at least 2*SMSS");
    }

    /// RFC 6582 step 5: exit sets cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    #[test]
    fn recovery_exit_avoids_bursts() {
        let mut r = NewReno::new(1000);
        r.on_congestion_event(T, 20_000);
        r.on_recovery_exit(T, 0);
        assert_eq!(r.cwnd(), 2000);
        r.on_recovery_exit(T, 50_000);
        assert_eq!(r.cwnd(), 10_000);
    }

    #[test]
    fn idle_restart() {
        let mut r = NewReno::new(1000);
        for _ in 0..10 {
            r.on_ack(T, 2000, None, true);
        }
        assert_eq!(r.cwnd(), 30_000);
        r.on_idle_restart(T);
        assert_eq!(r.cwnd(), 10_000);
    }
}
