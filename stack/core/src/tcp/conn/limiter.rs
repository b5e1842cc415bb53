//! RFC 5961 §7: challenge ACKs are rate-limited, per stack (per shard), like Linux's
//! `tcp_challenge_ack_limit`, so that an attacker cannot turn us into an ACK amplifier.
//! Time is a parameter; the window is one second.
//!
//! CVE-2016-5696: a fixed, shared per-second budget is a side channel (an off-path attacker
//! exhausts it and counts the challenge ACKs it still gets to learn whether a guessed
//! 4-tuple / sequence number hit). We follow Linux >= 6.0 (tcp_send_challenge_ack): the
//! per-connection limit (`tcp_invalid_ratelimit`, conn/input.rs) comes first; the default
//! `tcp_challenge_ack_limit` is unlimited (u32::MAX, Linux INT_MAX: "per-socket only"); a
//! lower limit gives each second a budget drawn uniformly from [limit/2, limit + limit/2)
//! (Linux 4.7+: `get_random_u32_inclusive(half, ack_limit + half - 1)`), so the count is not
//! observable. [`ChallengeAckLimiter::new`] keeps a fixed budget (deterministic tests).

use crate::time::{Duration, Instant};

/// At most `limit` challenge ACKs per one-second window. `limit == 0` means none,
/// `u32::MAX` no stack-wide limit.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeAckLimiter {
    limit: u32,
    window_start: Instant,
    /// Challenge ACKs still allowed in the current window.
    budget: u32,
    /// xorshift64 state; 0 = fixed budget (no randomization).
    rng: u64,
    /// Challenge ACKs allowed (a counter for statistics).
    pub sent: u64,
    /// Challenge ACKs suppressed by the limit (a counter for statistics).
    pub suppressed: u64,
    /// ACKs the connections did not send because of their per-connection
    /// `tcp_invalid_ratelimit` (Linux TCPACKSkipped*; counted here since every connection
    /// of the shard is handed this limiter).
    pub oow_skipped: u64,
}

impl ChallengeAckLimiter {
    /// A fixed budget of `limit_per_sec` per second.
    pub(crate) fn new(limit_per_sec: u32) -> Self {
        ChallengeAckLimiter {
            limit: limit_per_sec,
            window_start: Instant::ZERO,
            budget: 0,
            rng: 0,
            sent: 0,
            suppressed: 0,
            oow_skipped: 0,
        }
    }

    /// A randomized budget per second (Linux's), from `seed` (the endpoint's secret RNG).
    pub fn randomized(limit_per_sec: u32, seed: u64) -> Self {
        ChallengeAckLimiter {
            rng: seed | 1,
            ..Self::new(limit_per_sec)
        }
    }

    fn next_budget(&mut self) -> u32 {
        if self.rng == 0 || self.limit <= 1 {
            return self.limit;
        }
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        let half = self.limit.div_ceil(2);
        // Uniform in [half, limit + half - 1]: `limit` values.
        half + (((x >> 32) * self.limit as u64) >> 32) as u32
    }

    /// May a challenge ACK be sent at `now`? Counts it if so.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.limit == u32::MAX {
            self.sent += 1;
            return true;
        }
        if self.window_start == Instant::ZERO
            || now.saturating_since(self.window_start) >= Duration::from_secs(1)
        {
            self.window_start = now;
            self.budget = self.next_budget();
        }
        if self.budget > 0 {
            self.budget -= 1;
            self.sent += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5961 §7: the limit applies per second and refills after it.
    #[test]
    fn limits_per_second() {
        let mut l = ChallengeAckLimiter::new(2);
        let t0 = Instant::from_secs(10);
        assert!(l.allow(t0));
        assert!(l.allow(t0 + Duration::from_millis(10)));
        assert!(!l.allow(t0 + Duration::from_millis(999)));
        assert_eq!((l.sent, l.suppressed), (2, 1));
        assert!(l.allow(t0 + Duration::from_secs(1)));
        assert_eq!((l.sent, l.suppressed), (3, 1));
        let mut none = ChallengeAckLimiter::new(0);
        assert!(!none.allow(t0));
        assert_eq!((none.sent, none.suppressed), (0, 1));
    }

    /// CVE-2016-5696: a randomized budget per second in [half,
    /// limit + half - 1] (Linux tcp_send_challenge_ack), taking every value of the range over
    /// many seconds, never the same fixed count; u32::MAX (the default) is no limit.
    #[test]
    fn randomized_budget_is_not_a_fixed_count() {
        let mut l = ChallengeAckLimiter::randomized(10, 0x1234_5678_9abc_def0);
        let mut seen = [0u32; 16];
        for s in 0..2000u64 {
            let t = Instant::from_secs(10 + s);
            let n = (0..100).take_while(|_| l.allow(t)).count();
            seen[n] += 1;
        }
        assert!(seen[..5].iter().all(|&c| c == 0), "{seen:?}");
        assert!(seen[5..15].iter().all(|&c| c > 100), "{seen:?}");
        assert_eq!(seen[15], 0, "{seen:?}");
        let mut off = ChallengeAckLimiter::randomized(u32::MAX, 7);
        let t = Instant::from_secs(5);
        assert!((0..100_000).all(|_| off.allow(t)));
        assert_eq!((off.sent, off.suppressed), (100_000, 0));
    }
}
