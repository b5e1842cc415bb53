//! TCP sequence numbers: 32-bit, compared modulo 2^32 (RFC 9293 §3.4).

use core::cmp::Ordering;
use core::ops::{Add, Sub};

/// A TCP sequence number. Ordering is defined by the signed distance between two numbers, so
/// it is only meaningful for numbers less than 2^31 apart (which TCP's windows guarantee).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// Signed distance `self - other`.
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    /// `self < other` modulo 2^32.
    pub fn lt(self, other: SeqNum) -> bool {
        self.diff(other) < 0
    }
    /// `self <= other` modulo 2^32.
    pub fn le(self, other: SeqNum) -> bool {
        self.diff(other) <= 0
    }
    /// `self > other` modulo 2^32.
    pub fn gt(self, other: SeqNum) -> bool {
        self.diff(other) > 0
    }
    /// `self >= other` modulo 2^32.
    pub fn ge(self, other: SeqNum) -> bool {
        self.diff(other) >= 0
    }
    /// `lo <= self < hi` modulo 2^32.
    pub fn in_range(self, lo: SeqNum, hi: SeqNum) -> bool {
        self.ge(lo) && self.lt(hi)
    }
    /// The later of the two modulo 2^32 (`self` if equal).
    pub fn max(self, other: SeqNum) -> SeqNum {
        if self.ge(other) {
            self
        } else {
            other
        }
    }
    /// The earlier of the two modulo 2^32 (`self` if equal).
    pub fn min(self, other: SeqNum) -> SeqNum {
        if self.le(other) {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNum {
    fn partial_cmp(&self, other: &SeqNum) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }
}

impl Add<usize> for SeqNum {
    type Output = SeqNum;
    fn add(self, n: usize) -> SeqNum {
        SeqNum(self.0.wrapping_add(n as u32))
    }
}

impl Sub<u32> for SeqNum {
    type Output = SeqNum;
    fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }
}

/// Distance in bytes from `other` to `self`; panics in debug if `self` is before `other`.
impl Sub<SeqNum> for SeqNum {
    type Output = usize;
    fn sub(self, other: SeqNum) -> usize {
        let d = self.diff(other);
        debug_assert!(d >= 0, "sequence {self:?} is before {other:?}");
        d.max(0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around() {
        let a = SeqNum(u32::MAX - 1);
        let b = a + 4u32;
        assert_eq!(b, SeqNum(2));
        assert!(a.lt(b) && b.gt(a));
        assert_eq!(b - a, 4);
        assert!(SeqNum(u32::MAX).in_range(a, b));
        assert!(!b.in_range(a, b));
    }
}
