//! Congestion control behind one small trait: CUBIC (RFC 9438, the default, as in Linux) and
//! NewReno (RFC 5681 / RFC 6582), chosen by `tcp_congestion_control`.
//!
//! The controller only owns cwnd and ssthresh and how they move. Loss detection (duplicate
//! ACKs, SACK, the retransmission timer), NewReno's window inflation during fast recovery and
//! RFC 6675's pipe live in the connection's sender (tcp/conn/sender/recovery.rs), which tells
//! the controller about the events below. All windows are in bytes.
//!
//! Dispatch is an enum (`Cc`), not a `Box<dyn>`: no allocation, fixed size per connection.

mod cubic;
mod newreno;

pub(crate) use cubic::Cubic;
pub(crate) use newreno::NewReno;

use crate::time::{Duration, Instant};

/// Which algorithm (`tcp_congestion_control`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongestionAlgo {
    /// RFC 9438 (Linux's default).
    #[default]
    Cubic,
    /// RFC 5681 slow start / congestion avoidance with RFC 6582 fast recovery.
    Reno,
}

impl CongestionAlgo {
    /// Linux's names, in `tcp_congestion_control`'s order.
    pub const NAMES: [&'static str; 2] = ["cubic", "reno"];

    /// Linux's name of the algorithm: "cubic" or "reno".
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The algorithm stored as `i` in `tcp_congestion_control` (an index into [`Self::NAMES`]): 1 is
    /// Reno, anything else CUBIC (the setter's range check admits only 0 and 1).
    pub fn from_index(i: u64) -> CongestionAlgo {
        if i == 1 {
            CongestionAlgo::Reno
        } else {
            CongestionAlgo::Cubic
        }
    }
}

/// RFC 6928 §2: IW = min(10*MSS, max(2*MSS, 14600)) bytes.
pub(crate) fn initial_window(mss: u32) -> u32 {
    (10 * mss).min((2 * mss).max(14_600))
}

/// What a congestion controller does. `mss` is fixed per connection (given at creation).
pub(crate) trait CongestionControl {
    /// `acked` bytes were newly cumulatively acknowledged outside loss recovery. `rtt` is the
    /// smoothed RTT if known; `cwnd_limited` says whether the window was actually used (RFC
    /// 7661 / RFC 9438 §5.8: an application-limited sender must not grow cwnd).
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, cwnd_limited: bool);
    /// Loss detected by duplicate ACKs or SACK (once per window of data): multiplicative
    /// decrease. `flight` is FlightSize (RFC 5681: sent, not cumulatively acknowledged).
    fn on_congestion_event(&mut self, now: Instant, flight: u32);
    /// Fast recovery ended with a full ACK; `flight` is what is still outstanding.
    fn on_recovery_exit(&mut self, now: Instant, flight: u32);
    /// The retransmission timer expired. `first` is false for further timeouts of the same
    /// data, which keep ssthresh (RFC 5681 §3.1, after eq. 4).
    fn on_rto(&mut self, now: Instant, flight: u32, first: bool);
    /// RFC 5681 §4.1: the connection was idle longer than an RTO: restart from
    /// min(IW, cwnd).
    fn on_idle_restart(&mut self, now: Instant);
    fn cwnd(&self) -> u32;
    fn ssthresh(&self) -> u32;
    fn in_slow_start(&self) -> bool {
        self.cwnd() < self.ssthresh()
    }
}

/// The connection's controller.
#[derive(Debug, Clone)]
pub(crate) enum Cc {
    Cubic(Cubic),
    Reno(NewReno),
}

impl Cc {
    pub fn new(algo: CongestionAlgo, mss: u16) -> Cc {
        match algo {
            CongestionAlgo::Cubic => Cc::Cubic(Cubic::new(mss)),
            CongestionAlgo::Reno => Cc::Reno(NewReno::new(mss)),
        }
    }

    /// The MSS changed (path MTU, tcp/icmp.rs): cwnd and ssthresh keep their number of
    /// segments, as in Linux, which counts them in segments of `mss_cache`.
    pub fn set_mss(&mut self, new: u16) {
        match self {
            Cc::Cubic(c) => c.set_mss(new, false),
            Cc::Reno(c) => c.set_mss(new, false),
        }
    }

    /// The MSS grew after a successful path MTU probe: cwnd and ssthresh keep their bytes
    /// (Linux `tcp_mtup_probe_success` rescales the segment count so that they do).
    pub fn set_mss_keep_bytes(&mut self, new: u16) {
        match self {
            Cc::Cubic(c) => c.set_mss(new, true),
            Cc::Reno(c) => c.set_mss(new, true),
        }
    }

    fn inner(&mut self) -> &mut dyn CongestionControl {
        match self {
            Cc::Cubic(c) => c,
            Cc::Reno(c) => c,
        }
    }

    fn inner_ref(&self) -> &dyn CongestionControl {
        match self {
            Cc::Cubic(c) => c,
            Cc::Reno(c) => c,
        }
    }
}

impl CongestionControl for Cc {
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, cwnd_limited: bool) {
        self.inner().on_ack(now, acked, rtt, cwnd_limited)
    }
    fn on_congestion_event(&mut self, now: Instant, flight: u32) {
        self.inner().on_congestion_event(now, flight)
    }
    fn on_recovery_exit(&mut self, now: Instant, flight: u32) {
        self.inner().on_recovery_exit(now, flight)
    }
    fn on_rto(&mut self, now: Instant, flight: u32, first: bool) {
        self.inner().on_rto(now, flight, first)
    }
    fn on_idle_restart(&mut self, now: Instant) {
        self.inner().on_idle_restart(now)
    }
    fn cwnd(&self) -> u32 {
        self.inner_ref().cwnd()
    }
    fn ssthresh(&self) -> u32 {
        self.inner_ref().ssthresh()
    }
}

/// `v` bytes of `old`-byte segments as bytes of `new`-byte segments (u32::MAX, "arbitrarily
/// high", stays).
fn rescale(v: u32, old: u32, new: u32) -> u32 {
    if v == u32::MAX {
        return v;
    }
    (v as u64 * new as u64 / old.max(1) as u64).min(u32::MAX as u64 - 1) as u32
}

/// RFC 5681 §3.1 slow start, with RFC 3465 §2.2 byte counting limited to L = 2*SMSS per ACK
/// (Linux counts every acknowledged segment): returns the new cwnd, never past `ssthresh`
/// by more than the increment.
fn slow_start(cwnd: u32, acked: u32, mss: u32) -> u32 {
    cwnd.saturating_add(acked.min(2 * mss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6928_initial_window() {
        assert_eq!(initial_window(1460), 14_600);
        assert_eq!(initial_window(536), 5360);
        assert_eq!(initial_window(100), 1000);
        assert_eq!(
            initial_window(8960),
            17_920,
            "max(2*MSS, 14600) for jumbo MSS"
        );
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(CongestionAlgo::from_index(0).name(), "cubic");
        assert_eq!(CongestionAlgo::from_index(1).name(), "reno");
        assert_eq!(CongestionAlgo::default(), CongestionAlgo::Cubic);
    }
}
