//! The per-connection timer table (model: quinn-proto): a fixed array of deadlines indexed
//! by [`Timer`]. The shard's wheel holds one entry per connection, its earliest deadline
//! ([`Timers::earliest`]); stale wheel entries are checked lazily when they fire.

use crate::time::Instant;

/// The connection's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// SYN, SYN-ACK, data and FIN retransmission (RFC 6298).
    Retransmit = 0,
    /// Delayed ACK (delack.rs: at most `DELAYED_ACK` after the first unacknowledged data).
    DelayedAck = 1,
    /// Zero-window probe (RFC 9293 §3.8.6.1).
    Persist = 2,
    /// Keepalive idle / probe interval (RFC 9293 §3.8.4).
    Keepalive = 3,
    /// Orphaned FIN-WAIT-2 limit (Linux tcp_fin_timeout).
    FinWait2 = 4,
    /// 2*MSL in TIME-WAIT (RFC 9293 §3.10.7.4).
    TimeWait = 5,
    /// User timeout (RFC 9293 §3.8.4, RFC 5482).
    UserTimeout = 6,
}

impl Timer {
    pub(crate) const ALL: [Timer; 7] = [
        Timer::Retransmit,
        Timer::DelayedAck,
        Timer::Persist,
        Timer::Keepalive,
        Timer::FinWait2,
        Timer::TimeWait,
        Timer::UserTimeout,
    ];
}

/// Deadlines in nanoseconds, [`UNSET`] = not armed: 7 * 8 bytes (`Option<Instant>` would
/// take 16 each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timers([u64; 7]);

/// Marks an unarmed timer (no deadline is that late: `Instant + Duration` saturates one
/// below it, see `Timers::set`).
const UNSET: u64 = u64::MAX;

impl Default for Timers {
    fn default() -> Self {
        Timers([UNSET; 7])
    }
}

impl Timers {
    pub fn set(&mut self, t: Timer, at: Instant) {
        // A saturated deadline (u64::MAX ns, ~584 years) stays armed, one ns earlier.
        self.0[t as usize] = at.as_nanos().min(UNSET - 1);
    }
    pub fn clear(&mut self, t: Timer) {
        self.0[t as usize] = UNSET;
    }
    pub fn get(&self, t: Timer) -> Option<Instant> {
        let v = self.0[t as usize];
        (v != UNSET).then_some(Instant::from_nanos(v))
    }
    pub fn is_set(&self, t: Timer) -> bool {
        self.0[t as usize] != UNSET
    }
    pub fn earliest(&self) -> Option<Instant> {
        let v = *self.0.iter().min()?;
        (v != UNSET).then_some(Instant::from_nanos(v))
    }
    /// Disarm and return the first timer due at `now`, if any (in `Timer::ALL` order).
    pub fn take_due(&mut self, now: Instant) -> Option<Timer> {
        let now = now.as_nanos();
        let t = Timer::ALL
            .into_iter()
            .find(|&t| self.0[t as usize] != UNSET && self.0[t as usize] <= now)?;
        self.clear(t);
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_and_take_due() {
        let mut t = Timers::default();
        assert_eq!(t.earliest(), None);
        t.set(Timer::Keepalive, Instant::from_secs(5));
        t.set(Timer::Retransmit, Instant::from_secs(3));
        assert_eq!(t.earliest(), Some(Instant::from_secs(3)));
        assert_eq!(t.take_due(Instant::from_secs(2)), None);
        assert_eq!(t.take_due(Instant::from_secs(5)), Some(Timer::Retransmit));
        assert_eq!(t.take_due(Instant::from_secs(5)), Some(Timer::Keepalive));
        assert_eq!(t.take_due(Instant::from_secs(5)), None);
        assert_eq!(t.earliest(), None);
    }
}
