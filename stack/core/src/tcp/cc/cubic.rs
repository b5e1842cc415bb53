//! CUBIC (RFC 9438). Windows are kept in bytes as f64 (per-ACK increments are fractions of
//! a byte); the cubic function works in segments and seconds, as the RFC writes it.
//! Not done: HyStart++ (RFC 9406, a SHOULD of §4.10) and spurious-loss undo (§4.9).

use super::{initial_window, slow_start, CongestionControl};
use crate::time::{Duration, Instant};

/// RFC 9438 §5: C = 0.4.
pub(crate) const C_CUBIC: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7.
pub(crate) const BETA_CUBIC: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3 * (1 - β_cubic) / (1 + β_cubic).
const ALPHA_CUBIC: f64 = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC);

#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    mss: u32,
    /// cwnd in bytes.
    cwnd: f64,
    ssthresh: u32,
    /// W_max (segments): the window just before the last reduction (§4.2, §4.7).
    w_max: f64,
    /// cwnd_prior (segments): cwnd when ssthresh was last set (§4.3's α switch).
    cwnd_prior: f64,
    /// K (seconds) of the current congestion-avoidance stage (§4.2).
    k: f64,
    /// When the current congestion-avoidance stage began (t = now - epoch).
    epoch: Option<Instant>,
    /// W_est (segments), the Reno-friendly estimate (§4.3).
    w_est: f64,
    /// The next congestion-avoidance stage is the first after a timeout (§4.8).
    after_rto: bool,
}

impl Cubic {
    /// Same segment counts in segments of `mss` bytes (`Cc::set_mss`), or the same bytes;
    /// W_max, W_est and cwnd_prior are in segments already.
    pub fn set_mss(&mut self, mss: u16, keep_bytes: bool) {
        let new = (mss as u32).max(1);
        if keep_bytes {
            self.mss = new;
            self.cwnd = self.cwnd.max(new as f64);
            return;
        }
        self.cwnd = (self.cwnd * new as f64 / self.mss as f64).max(new as f64);
        self.ssthresh = super::rescale(self.ssthresh, self.mss, new);
        self.mss = new;
    }

    pub fn new(mss: u16) -> Cubic {
        let mss = (mss as u32).max(1);
        Cubic {
            mss,
            cwnd: initial_window(mss) as f64,
            ssthresh: u32::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            k: 0.0,
            epoch: None,
            w_est: 0.0,
            after_rto: false,
        }
    }

    /// RFC 9438 §4.2 eq. 1: W_cubic(t) = C*(t-K)^3 + W_max (segments, t in seconds from
    /// the start of the congestion-avoidance stage).
    pub fn w_cubic(&self, t: f64) -> f64 {
        C_CUBIC * (t - self.k).powi(3) + self.w_max
    }

    /// K of the current stage (seconds).
    #[cfg(test)]
    pub fn k(&self) -> f64 {
        self.k
    }

    /// W_max (segments).
    #[cfg(test)]
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    fn segs(&self) -> f64 {
        self.cwnd / self.mss as f64
    }

    /// Start of a congestion-avoidance stage: cwnd_epoch = cwnd, K by §4.2 eq. 2
    /// (K = cubic_root((W_max - cwnd_epoch) / C)), W_est = cwnd_epoch (§4.3). After a
    /// timeout K = 0 and W_max = cwnd_epoch (§4.8); likewise when cwnd is already above
    /// W_max (no negative K).
    fn start_epoch(&mut self, now: Instant) {
        let w = self.segs();
        self.epoch = Some(now);
        self.w_est = w;
        if self.after_rto || self.w_max <= w {
            self.after_rto = false;
            self.w_max = w;
            self.k = 0.0;
        } else {
            self.k = ((self.w_max - w) / C_CUBIC).cbrt();
        }
    }

    /// §4.6 multiplicative decrease with §4.7 fast convergence; returns the new ssthresh.
    fn reduce(&mut self, flight: u32) -> u32 {
        let w = self.segs();
        self.w_max = if w < self.w_max {
            w * (1.0 + BETA_CUBIC) / 2.0
        } else {
            w
        };
        self.cwnd_prior = w;
        self.epoch = None;
        // §4.6: ssthresh = flight_size * β_cubic, at least 2 segments.
        let ss = (flight as f64 * BETA_CUBIC) as u32;
        ss.max(2 * self.mss)
    }
}

impl CongestionControl for Cubic {
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, cwnd_limited: bool) {
        // §5.8: no growth while application-limited.
        if !cwnd_limited {
            return;
        }
        // §4.10: slow start while cwnd < ssthresh.
        if self.in_slow_start() {
            self.cwnd = slow_start(self.cwnd as u32, acked, self.mss) as f64;
            return;
        }
        if self.epoch.is_none() {
            self.start_epoch(now);
        }
        let t = now
            .saturating_since(self.epoch.unwrap_or(now))
            .as_secs_f64();
        let rtt = rtt.unwrap_or(Duration::ZERO).as_secs_f64();
        let w = self.segs();
        let acked_segs = acked as f64 / self.mss as f64;
        // §4.3: W_est += α * segments_acked / cwnd; α = 1 once W_est >= cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA_CUBIC
        };
        self.w_est += alpha * acked_segs / w;
        let next = if self.w_cubic(t) < self.w_est {
            // §4.3 Reno-friendly region: cwnd = W_est.
            self.w_est.max(w)
        } else {
            // §4.4 / §4.5 concave and convex regions: target = W_cubic(t + RTT) clamped
            // to [cwnd, 1.5 * cwnd]; cwnd += (target - cwnd) / cwnd per acknowledged segment.
            let target = self.w_cubic(t + rtt).clamp(w, 1.5 * w);
            w + (target - w) / w * acked_segs
        };
        self.cwnd = next * self.mss as f64;
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32) {
        self.ssthresh = self.reduce(flight);
        // §4.6: cwnd = max(ssthresh, 2) segments on loss.
        self.cwnd = self.ssthresh as f64;
    }

    /// cwnd was set to ssthresh at the congestion event and not grown since.
    fn on_recovery_exit(&mut self, _now: Instant, _flight: u32) {}

    /// §4.8: like Reno (cwnd = 1 SMSS) but ssthresh with β_cubic; the next stage starts
    /// with K = 0 and W_max = cwnd at its start.
    fn on_rto(&mut self, _now: Instant, flight: u32, first: bool) {
        if first {
            self.ssthresh = self.reduce(flight);
        }
        self.after_rto = true;
        self.epoch = None;
        self.cwnd = self.mss as f64;
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        self.cwnd = self.cwnd.min(initial_window(self.mss) as f64);
        self.epoch = None;
    }

    fn cwnd(&self) -> u32 {
        self.cwnd as u32
    }
    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    /// A CUBIC at cwnd = 100 segments that sees a loss: W_max = 100, cwnd = 70.
    fn after_loss_at_100() -> Cubic {
        let mut c = Cubic::new(MSS as u16);
        c.cwnd = 100.0 * MSS as f64;
        c.on_congestion_event(Instant::ZERO, 100 * MSS);
        c
    }

    /// RFC 9438 §4.6: ssthresh = β * flight, cwnd = ssthresh; W_max = cwnd before.
    #[test]
    fn multiplicative_decrease() {
        let c = after_loss_at_100();
        assert_eq!((c.cwnd(), c.ssthresh()), (70_000, 70_000));
        assert!(close(c.w_max(), 100.0));
        assert!(!c.in_slow_start());
    }

    /// RFC 9438 §4.2: K = cbrt((W_max - cwnd_epoch) / C) = cbrt(30 / 0.4) = cbrt(75) and
    /// W_cubic(t) = C (t - K)^3 + W_max: 70 at t = 0 (the epoch's cwnd), W_max at t = K,
    /// W_max + C at K + 1, W_max + 30 at 2K (symmetry of the cubic).
    #[test]
    fn w_cubic_matches_rfc_formula() {
        let mut c = after_loss_at_100();
        let t0 = Instant::from_secs(10);
        c.on_ack(t0, MSS, Some(Duration::from_millis(100)), true);
        let k = 75f64.cbrt();
        assert!(close(c.k(), k), "K = {}", c.k());
        assert!(close(c.w_cubic(0.0), 70.0));
        assert!(close(c.w_cubic(k), 100.0));
        assert!(close(c.w_cubic(k + 1.0), 100.4));
        assert!(close(c.w_cubic(2.0 * k), 130.0));
        assert!(close(c.w_cubic(1.0), 0.4 * (1.0 - k).powi(3) + 100.0));
    }

    /// Concave growth per ACK: cwnd += (target - cwnd) / cwnd with target = W_cubic(t+RTT)
    /// clamped to at most 1.5 cwnd; and the Reno-friendly region takes over when W_est is
    /// above W_cubic (§4.3).
    #[test]
    fn growth_follows_target() {
        let mut c = after_loss_at_100();
        let t0 = Instant::from_secs(10);
        let rtt = Duration::from_millis(100);
        c.on_ack(t0, MSS, Some(rtt), true); // epoch starts at t0
        let w0 = 70.0;
        // The first ACK: t = 0. W_est = 70 + α/70; W_cubic(0) = 70 < W_est: Reno-friendly.
        let w_est = w0 + ALPHA_CUBIC / w0;
        assert!(close(c.segs(), w_est), "{}", c.segs());
        // At t = K the cubic is at W_max = 100, far above W_est: concave region.
        let k = c.k();
        let at = t0 + Duration::from_secs_f64(k);
        let before = c.segs();
        c.on_ack(at, MSS, Some(rtt), true);
        let target = c.w_cubic(k + 0.1).clamp(before, 1.5 * before);
        assert!(target > 100.0);
        assert!(close(c.segs(), before + (target - before) / before));
        // Application-limited ACKs do not grow the window.
        let w = c.cwnd();
        c.on_ack(at, MSS, Some(rtt), false);
        assert_eq!(c.cwnd(), w);
    }

    /// §4.7 fast convergence: a loss below the previous W_max remembers less:
    /// W_max = cwnd * (1 + β) / 2.
    #[test]
    fn fast_convergence() {
        let mut c = after_loss_at_100();
        c.on_congestion_event(Instant::ZERO, 70 * MSS);
        assert!(close(c.w_max(), 70.0 * 1.7 / 2.0));
        assert_eq!(c.cwnd(), 49_000);
    }

    /// §4.8: on timeout cwnd = 1 SMSS and ssthresh = β * flight; the first congestion
    /// avoidance stage after it starts with K = 0 and W_max = cwnd at its start.
    #[test]
    fn timeout_response() {
        let mut c = Cubic::new(MSS as u16);
        c.cwnd = 40_000.0;
        c.on_rto(Instant::ZERO, 40_000, true);
        assert_eq!((c.cwnd(), c.ssthresh()), (1000, 28_000));
        c.on_rto(Instant::ZERO, 1000, false);
        assert_eq!(c.ssthresh(), 28_000, "a repeated timeout keeps ssthresh");
        while c.in_slow_start() {
            c.on_ack(Instant::ZERO, 2 * MSS, None, true);
        }
        assert_eq!(
            c.cwnd(),
            29_000,
            "1000 + 14 * 2000: the first above ssthresh"
        );
        c.on_ack(Instant::from_secs(1), MSS, None, true);
        assert_eq!(c.k(), 0.0);
        assert!(close(c.w_max(), 29.0));
    }
}
