//! RFC 6298 retransmission timeout: SRTT / RTTVAR, clamped to [rto_min, rto_max], doubled on
//! each timeout (§5.5). Samples come from timestamps (RFC 7323 §4) or from one timed segment
//! at a time, never from a retransmitted one (Karn, RFC 6298 §3).

use crate::time::Duration;

/// All values in nanoseconds (40 bytes; five `Duration`s took 80). `srtt` is [`NO_SAMPLE`]
/// until the first sample.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rtt {
    srtt: u64,
    rttvar: u64,
    rto: u64,
    min: u64,
    max: u64,
}

const NO_SAMPLE: u64 = u64::MAX;

/// RFC 6298 §2: clock granularity G (we measure in nanoseconds; Linux's jiffy-less
/// equivalent is 1 ms).
const G: u64 = 1_000_000;

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX - 1)
}

impl Rtt {
    /// RFC 6298 §2.1: before any sample RTO is the initial value (1 s).
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Rtt {
        let (min, max) = (ns(min), ns(max).max(ns(min)));
        Rtt {
            srtt: NO_SAMPLE,
            rttvar: 0,
            rto: ns(initial).clamp(min, max),
            min,
            max,
        }
    }

    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto)
    }

    pub fn srtt(&self) -> Option<Duration> {
        (self.srtt != NO_SAMPLE).then(|| Duration::from_nanos(self.srtt))
    }

    /// RTTVAR, once sampled.
    pub fn rttvar(&self) -> Option<Duration> {
        (self.srtt != NO_SAMPLE).then(|| Duration::from_nanos(self.rttvar))
    }

    /// RFC 6298 §2.2 (first sample) and §2.3 (later ones), alpha = 1/8, beta = 1/4.
    pub fn sample(&mut self, r: Duration) {
        // Below NO_SAMPLE and small enough that the sums below cannot overflow.
        let r = ns(r).min(u64::MAX / 16);
        let srtt = if self.srtt == NO_SAMPLE {
            self.rttvar = r / 2;
            r
        } else {
            let err = self.srtt.abs_diff(r);
            self.rttvar = self.rttvar * 3 / 4 + err / 4;
            self.srtt * 7 / 8 + r / 8
        };
        self.srtt = srtt;
        self.rto = self.estimate();
    }

    /// §2.4 RTO = SRTT + max(G, 4 * RTTVAR), §2.4/§2.5 clamped (only after a sample).
    fn estimate(&self) -> u64 {
        (self.srtt + (self.rttvar * 4).max(G)).clamp(self.min, self.max)
    }

    /// RFC 6298 §5.7: before any sample, an RTO of at least `rto` (3 s after a SYN timeout).
    pub fn fallback(&mut self, rto: Duration) {
        if self.srtt == NO_SAMPLE {
            self.rto = self.rto.max(ns(rto)).clamp(self.min, self.max);
        }
    }

    /// RFC 6298 §5.5: back off the timer.
    pub fn backoff(&mut self) {
        self.rto = self.rto.saturating_mul(2).min(self.max);
    }

    /// RFC 6069 §4 as Linux `tcp_ld_RTO_revert` computes it: the RTO is the estimate (the
    /// `initial` RTO before any sample, as Linux's TCP_TIMEOUT_INIT, even after a §5.7
    /// fallback) backed off `shift` times, at most rto_max.
    pub fn revert_to(&mut self, initial: Duration, shift: u8) {
        let base = if self.srtt == NO_SAMPLE {
            ns(initial).clamp(self.min, self.max)
        } else {
            self.estimate()
        };
        let shift = u32::from(shift);
        self.rto = match base.checked_shl(shift) {
            Some(v) if v >> shift == base => v.min(self.max),
            _ => self.max,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rfc6298_estimator() {
        let mut r = Rtt::new(ms(1000), ms(200), ms(120_000));
        assert_eq!(r.rto(), ms(1000));
        r.sample(ms(100)); // §2.2: SRTT=100, RTTVAR=50, RTO=300
        assert_eq!(r.rto(), ms(300));
        r.sample(ms(200)); // §2.3: RTTVAR=3/4*50+1/4*100=62.5, SRTT=112.5, RTO=362.5
        assert_eq!(r.rto(), Duration::from_micros(362_500));
        r.backoff();
        assert_eq!(r.rto(), ms(725));
    }

    #[test]
    fn clamped_to_min_and_max() {
        let mut r = Rtt::new(ms(1000), ms(200), ms(1500));
        r.sample(ms(1)); // 1 + 4*0.5 = 3 ms -> rto_min
        assert_eq!(r.rto(), ms(200));
        for _ in 0..10 {
            r.backoff();
        }
        assert_eq!(r.rto(), ms(1500));
    }

    /// RFC 6069 §4: the reverted RTO is recomputed from SRTT / RTTVAR (or the initial RTO
    /// without a sample) and the remaining backoff, not halved from the current value.
    #[test]
    fn revert_recomputes_from_the_estimate() {
        let mut r = Rtt::new(ms(1000), ms(200), ms(1500));
        r.fallback(ms(3000)); // no sample: 3 s, clamped to rto_max 1.5 s
        r.revert_to(ms(1000), 0);
        assert_eq!(r.rto(), ms(1000));
        r.sample(ms(100)); // RTO 300 ms
        r.backoff();
        r.backoff();
        r.backoff(); // 2.4 s, clamped to 1.5 s
        assert_eq!(r.rto(), ms(1500));
        r.revert_to(ms(1000), 2);
        assert_eq!(r.rto(), ms(1200));
        r.revert_to(ms(1000), 200); // no overflow: rto_max
        assert_eq!(r.rto(), ms(1500));
    }
}
