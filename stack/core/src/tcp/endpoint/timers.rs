//! The endpoint's connection timers on the hierarchical [`TimerWheel`]: one wheel
//! entry per connection for its earliest deadline, kept lazily (see the wheel's module docs):
//! a deadline that moves later (the RTO pushed back by an ACK) costs no wheel operation, the
//! entry fires early and the endpoint finds nothing due and arms again; a deadline that
//! moves earlier cancels the entry and arms a new one.
//!
//! Tick: 1 ms (TCP timers are millisecond-scale; Linux jiffies are 1-4 ms). Deadlines round
//! up to the tick, so a timer never fires before its deadline and at most one tick after it
//! if the endpoint is polled at its `next_deadline`.
//!
//! Memory bound: at most one live entry per connection (a slot cancels its entry before
//! arming another and when freed), so a wheel sized to `max_connections` never fills; its
//! arena is at most 1.5x that many 32-byte entries (allocated on demand, never shrunk).

use crate::time::{Duration, Instant};
use crate::wheel::{TimerId, TimerWheel, WheelFull};

/// The wheel's tick.
pub(super) const TICK: Duration = Duration::from_millis(1);

/// The wheel's own bound on `max_timers` (below 2^32 / 1.5); larger configured limits are
/// clamped to it (a shard cannot hold that many connections in memory anyway).
pub(super) const WHEEL_MAX_TIMERS: usize = (u32::MAX / 3 * 2) as usize - 1;

/// A 1 ms-tick wheel for `max_timers` (clamped to the wheel's own bound) starting at `now`.
pub(super) fn new_wheel<K: Copy>(now: Instant, max_timers: usize) -> TimerWheel<K> {
    TimerWheel::new(now, TICK, max_timers.min(WHEEL_MAX_TIMERS))
}

/// A timer key: slab slot and its generation (so a freed-and-reused slot is not fired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct TimerKey {
    pub slot: u32,
    pub gen: u32,
}

/// A slot's wheel entry and the deadline it was armed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Armed {
    pub id: TimerId,
    pub at: Instant,
}

/// The connection timer wheel. The endpoint is built without a clock: the wheel starts at
/// the first time the endpoint sees ([`Self::start`]), so that its first timers do not sit
/// on high levels relative to `Instant::ZERO` (extra cascade wake-ups).
pub(super) struct ConnTimers {
    wheel: TimerWheel<TimerKey>,
    max_timers: usize,
    started: bool,
}

impl ConnTimers {
    pub fn new(max_timers: usize) -> Self {
        ConnTimers {
            wheel: new_wheel(Instant::ZERO, max_timers),
            max_timers,
            started: false,
        }
    }

    /// Sets the wheel's start time on the first call (before anything is armed); no-op after.
    pub fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            if self.wheel.is_empty() && self.wheel.next_expiry().is_none() {
                self.wheel = new_wheel(now, self.max_timers);
            }
        }
    }

    /// Makes sure an entry at or before `deadline` exists for `key`. `armed` is the slot's
    /// record of its entry (updated here). On `WheelFull` the slot is left without an entry
    /// (`armed` is `None`) and the caller must keep the connection's timer some other way.
    pub fn arm(
        &mut self,
        key: TimerKey,
        deadline: Instant,
        armed: &mut Option<Armed>,
    ) -> Result<(), WheelFull> {
        if let Some(a) = *armed {
            if deadline >= a.at {
                return Ok(()); // fires early; the endpoint re-arms then
            }
            self.wheel.cancel(a.id);
            *armed = None;
        }
        let id = self.wheel.arm(deadline, key)?;
        *armed = Some(Armed { id, at: deadline });
        Ok(())
    }

    /// Cancels the slot's entry, if any (the slot is being freed).
    pub fn cancel(&mut self, armed: &mut Option<Armed>) {
        if let Some(a) = armed.take() {
            self.wheel.cancel(a.id);
        }
    }

    /// Pops one entry due at `now`, if any; its `TimerId` is spent. The caller validates it
    /// (generation, real deadline) and re-arms when the deadline moved later.
    pub fn pop_due(&mut self, now: Instant) -> Option<(TimerId, TimerKey)> {
        self.wheel.pop_expired(now)
    }

    /// When `pop_due` next has work (may be early, never later than the earliest entry
    /// rounded up to the tick).
    pub fn next(&self) -> Option<Instant> {
        self.wheel.next_expiry()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.wheel.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_keeps_entry_when_later_and_replaces_it_when_earlier() {
        let mut q = ConnTimers::new(4);
        let k = TimerKey { slot: 1, gen: 0 };
        let mut armed = None;
        q.arm(k, Instant::from_secs(5), &mut armed).unwrap();
        let first = armed.unwrap().id;
        q.arm(k, Instant::from_secs(7), &mut armed).unwrap(); // later: entry kept
        assert_eq!((q.len(), armed.unwrap().id), (1, first));
        q.arm(k, Instant::from_secs(3), &mut armed).unwrap(); // earlier: cancel + arm
        assert_eq!(q.len(), 1);
        assert_eq!(armed.unwrap().at, Instant::from_secs(3));
        assert_ne!(armed.unwrap().id, first);
        assert_eq!(q.pop_due(Instant::from_secs(2)), None);
        assert_eq!(
            q.pop_due(Instant::from_secs(6)),
            Some((armed.unwrap().id, k))
        );
        // The cancelled 5 s entry never fires.
        assert_eq!(q.pop_due(Instant::from_secs(6)), None);
        q.cancel(&mut armed);
        assert_eq!(armed, None);
    }

    /// Deadlines never fire early: a sub-tick deadline rounds up to the next tick.
    #[test]
    fn sub_tick_deadline_rounds_up() {
        let mut q = ConnTimers::new(1);
        let k = TimerKey { slot: 0, gen: 3 };
        let mut armed = None;
        let d = Instant::from_micros(1_500);
        q.arm(k, d, &mut armed).unwrap();
        assert_eq!(q.next(), Some(Instant::from_millis(2)));
        assert_eq!(q.pop_due(d), None);
        assert_eq!(q.pop_due(Instant::from_millis(2)).map(|e| e.1), Some(k));
    }

    #[test]
    fn full_wheel_reports_wheel_full() {
        let mut q = ConnTimers::new(1);
        let (mut a, mut b) = (None, None);
        q.arm(TimerKey { slot: 0, gen: 0 }, Instant::from_secs(1), &mut a)
            .unwrap();
        let r = q.arm(TimerKey { slot: 1, gen: 0 }, Instant::from_secs(1), &mut b);
        assert_eq!((r, b), (Err(WheelFull), None));
    }
}
