//! RFC 5961 §7: challenge ACKs are rate-limited, per stack (per shard), like Linux's
//! `tcp_challenge_ack_limit`, so that an attacker cannot turn us into an ACK amplifier.
//! Time is a parameter; the window is one second.

use crate::time::{Duration, Instant};

/// At most `limit` challenge ACKs per one-second window. `limit == 0` means none.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeAckLimiter {
    limit: u32,
    window_start: Instant,
    sent: u32,
    /// Challenge ACKs suppressed by the limit (a counter for statistics).
    pub suppressed: u64,
}

impl ChallengeAckLimiter {
    pub fn new(limit_per_sec: u32) -> Self {
        ChallengeAckLimiter {
            limit: limit_per_sec,
            window_start: Instant::ZERO,
            sent: 0,
            suppressed: 0,
        }
    }

    /// May a challenge ACK be sent at `now`? Counts it if so.
    pub fn allow(&mut self, now: Instant) -> bool {
        if now.saturating_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.sent = 0;
        }
        if self.sent < self.limit {
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
        assert_eq!(l.suppressed, 1);
        assert!(l.allow(t0 + Duration::from_secs(1)));
        let mut none = ChallengeAckLimiter::new(0);
        assert!(!none.allow(t0));
    }
}
