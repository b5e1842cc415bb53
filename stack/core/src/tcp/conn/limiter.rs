//! RFC 5961 §7: challenge ACKs are rate-limited, per stack (per shard), like Linux's
//! `tcp_challenge_ack_limit`, so that an attacker cannot turn us into an ACK amplifier.
//! Time is a parameter; the window is one second.

use crate::time::{Duration, Instant};

/// At most `limit` challenge ACKs per one-second window. `limit == 0` means none.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeAckLimiter {
    limit: u32,
    window_start: Instant,
    /// Challenge ACKs allowed in the current window.
    in_window: u32,
    /// Challenge ACKs allowed (a counter for statistics).
    pub sent: u64,
    /// Challenge ACKs suppressed by the limit (a counter for statistics).
    pub suppressed: u64,
}

impl ChallengeAckLimiter {
    pub(crate) fn new(limit_per_sec: u32) -> Self {
        ChallengeAckLimiter {
            limit: limit_per_sec,
            window_start: Instant::ZERO,
            in_window: 0,
            sent: 0,
            suppressed: 0,
        }
    }

    /// May a challenge ACK be sent at `now`? Counts it if so.
    pub fn allow(&mut self, now: Instant) -> bool {
        if now.saturating_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.in_window = 0;
        }
        if self.in_window < self.limit {
            self.in_window += 1;
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
}
