//! Time is a parameter: nothing in this crate reads a clock. `Instant` is a monotonic count
//! of nanoseconds from an arbitrary epoch chosen by the caller (the runtime's worker reads
//! `CLOCK_MONOTONIC` once per loop iteration, `xdptcp::clock::now`; tests start at zero).

use core::ops::{Add, AddAssign, Sub};
pub use core::time::Duration;

/// A point in monotonic time, in nanoseconds since the caller's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The caller's epoch (0 ns).
    pub const ZERO: Instant = Instant(0);

    /// The instant `ns` nanoseconds after the epoch.
    pub const fn from_nanos(ns: u64) -> Self {
        Instant(ns)
    }
    /// The instant `us` microseconds after the epoch (must fit in `u64` nanoseconds,
    /// about 584 years).
    pub const fn from_micros(us: u64) -> Self {
        Instant(us * 1_000)
    }
    /// The instant `ms` milliseconds after the epoch (must fit in `u64` nanoseconds).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(ms * 1_000_000)
    }
    /// The instant `s` seconds after the epoch (must fit in `u64` nanoseconds).
    pub const fn from_secs(s: u64) -> Self {
        Instant(s * 1_000_000_000)
    }
    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Whole microseconds since the epoch (rounded down).
    pub const fn as_micros(self) -> u64 {
        self.0 / 1_000
    }
    /// Whole milliseconds since the epoch (rounded down).
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }
    /// Milliseconds since the epoch modulo 2^32: a 4-byte stamp for per-connection
    /// bookkeeping (as Linux's `tcp_jiffies32` at HZ=1000). [`Instant::ms_since_stamp`] is
    /// right for spans under 2^32 ms (49.7 days), as Linux's.
    pub const fn ms_stamp(self) -> u32 {
        self.as_millis() as u32
    }
    /// Whole milliseconds from a [`Instant::ms_stamp`] to this instant (wrapping).
    pub const fn ms_since_stamp(self, stamp: u32) -> u32 {
        self.ms_stamp().wrapping_sub(stamp)
    }
    /// Time elapsed since `earlier`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.as_nanos() as u64))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp is the time in ms mod 2^32; the span from it stays right across the wrap.
    #[test]
    fn ms_stamps_wrap() {
        let a = Instant::from_millis((1 << 32) - 5);
        assert_eq!(a.ms_stamp(), u32::MAX - 4);
        let b = a + Duration::from_millis(12);
        assert_eq!(b.ms_stamp(), 7);
        assert_eq!(b.ms_since_stamp(a.ms_stamp()), 12);
        assert_eq!(Instant::from_nanos(2_999_999).ms_since_stamp(1), 1);
    }

    #[test]
    fn arithmetic_saturates() {
        let a = Instant::from_millis(5);
        assert_eq!(a + Duration::from_millis(3), Instant::from_millis(8));
        assert_eq!(Instant::from_millis(8) - a, Duration::from_millis(3));
        assert_eq!(a - Instant::from_millis(8), Duration::ZERO);
    }
}
