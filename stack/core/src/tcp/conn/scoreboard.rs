//! The SACK scoreboard (RFC 6675 §3, "Update()"): which sequence ranges above SND.UNA the peer
//! has selectively acknowledged (RFC 2018 blocks). Sorted, disjoint, non-adjacent ranges
//! `[left, right)`.
//!
//! Bound: at most [`MAX_RANGES`] ranges (8 bytes each, 256 bytes of heap), allocated on the
//! first SACK block and freed once SND.UNA passes every range. A new disjoint
//! range beyond the bound replaces the highest one: forgetting SACK information only costs
//! a needless retransmission, never correctness (the data stays buffered until cumulatively
//! acknowledged, as RFC 2018 §8 requires since the receiver may renege).

use crate::wire::SeqNum;

pub(super) const MAX_RANGES: usize = 32;

/// RFC 6675 §2: DupThresh = 3.
pub(super) const DUP_THRESH: u32 = 3;

/// Bytes from `a` to `b` (0 if `b` is not after `a`).
pub(super) fn dist(a: SeqNum, b: SeqNum) -> u32 {
    b.diff(a).max(0) as u32
}

#[derive(Debug, Default, Clone)]
pub(super) struct Scoreboard {
    ranges: Vec<(SeqNum, SeqNum)>,
}

impl Scoreboard {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Forgets everything and frees the list (SACK information is the exception: an idle
    /// connection keeps no capacity for it).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
    }

    #[cfg(test)]
    pub fn ranges(&self) -> &[(SeqNum, SeqNum)] {
        &self.ranges
    }

    /// Record the SACK blocks of one ACK. Blocks at or below SND.UNA (D-SACK, RFC 2883 §4:
    /// a duplicate was received) or reaching past SND.MAX (never sent: bogus) or empty are
    /// ignored for loss; a block starting below SND.UNA is clipped to it. Returns how many
    /// bytes were SACKed for the first time (RFC 6675's "new SACK information").
    pub fn update(&mut self, una: SeqNum, max: SeqNum, blocks: &[(SeqNum, SeqNum)]) -> u32 {
        let mut new = 0;
        for &(l, r) in blocks {
            let l = l.max(una);
            if r.le(l) || r.gt(max) || dist(l, r) > dist(una, max) {
                continue;
            }
            new += dist(l, r) - self.sacked_in(l, r);
            self.insert(l, r);
        }
        new
    }

    fn insert(&mut self, l: SeqNum, r: SeqNum) {
        // Ranges that overlap or touch [l, r] merge into it.
        let first = self.ranges.iter().position(|&(_, b)| b.ge(l));
        let Some(i) = first else {
            self.push_bounded(self.ranges.len(), (l, r));
            return;
        };
        let mut j = i;
        let (mut nl, mut nr) = (l, r);
        while j < self.ranges.len() && self.ranges[j].0.le(r) {
            nl = nl.min(self.ranges[j].0);
            nr = nr.max(self.ranges[j].1);
            j += 1;
        }
        self.ranges.drain(i..j);
        self.push_bounded(i, (nl, nr));
    }

    fn push_bounded(&mut self, at: usize, range: (SeqNum, SeqNum)) {
        if self.ranges.len() >= MAX_RANGES {
            if at >= self.ranges.len() {
                return; // the new range would be the highest: drop it
            }
            self.ranges.pop();
        }
        self.ranges.insert(at, range);
    }

    /// SND.UNA moved to `una`: forget everything below it.
    pub fn advance(&mut self, una: SeqNum) {
        let gone = self.ranges.iter().take_while(|&&(_, r)| r.le(una)).count();
        self.ranges.drain(..gone);
        match self.ranges.first_mut() {
            Some(first) => first.0 = first.0.max(una),
            None => self.clear(),
        }
    }

    /// Bytes SACKed within `[a, b)`.
    pub fn sacked_in(&self, a: SeqNum, b: SeqNum) -> u32 {
        self.ranges
            .iter()
            .map(|&(l, r)| dist(l.max(a), r.min(b)))
            .sum()
    }

    /// If `seq` is SACKed, the right edge of its range.
    pub fn covering(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .find(|&&(l, r)| seq.in_range(l, r))
            .map(|&(_, r)| r)
    }

    /// The left edge of the first SACKed range starting after `seq`.
    pub fn next_sacked_after(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .find(|&&(l, _)| l.gt(seq))
            .map(|&(l, _)| l)
    }

    /// If `seq` is SACKed, the left edge of its range.
    pub fn left_of(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .find(|&&(l, r)| seq.in_range(l, r))
            .map(|&(l, _)| l)
    }

    /// The highest right edge at or below `seq`.
    pub fn right_edge_below(&self, seq: SeqNum) -> Option<SeqNum> {
        self.ranges
            .iter()
            .rev()
            .find(|&&(_, r)| r.le(seq))
            .map(|&(_, r)| r)
    }

    /// The highest SACKed sequence number + 1.
    pub fn highest(&self) -> Option<SeqNum> {
        self.ranges.last().map(|&(_, r)| r)
    }

    /// RFC 6675 §4 IsLost(): a sequence number is lost when DupThresh discontiguous SACKed
    /// ranges lie above it, or more than (DupThresh - 1) * SMSS bytes above it are SACKed.
    /// Both only grow as the sequence number falls, so the lost ones are exactly the
    /// unSACKed numbers below a boundary, returned here (`None`: nothing is lost).
    pub fn lost_boundary(&self, mss: u32) -> Option<SeqNum> {
        let mut bytes = 0u32;
        for (n, &(l, r)) in self.ranges.iter().rev().enumerate() {
            bytes += dist(l, r);
            if n as u32 + 1 >= DUP_THRESH || bytes > (DUP_THRESH - 1) * mss {
                return Some(l);
            }
        }
        None
    }

    /// RFC 6675 §4 IsLost(seq).
    pub fn is_lost(&self, seq: SeqNum, mss: u32) -> bool {
        self.covering(seq).is_none() && self.lost_boundary(mss).is_some_and(|b| seq.lt(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    #[test]
    fn update_merges_and_counts_new() {
        let mut b = Scoreboard::default();
        assert_eq!(b.update(s(100), s(1000), &[(s(300), s(400))]), 100);
        assert_eq!(b.update(s(100), s(1000), &[(s(500), s(600))]), 100);
        assert_eq!(b.update(s(100), s(1000), &[(s(300), s(400))]), 0, "known");
        assert_eq!(b.update(s(100), s(1000), &[(s(350), s(550))]), 100);
        assert_eq!(b.ranges(), &[(s(300), s(600))]);
        assert_eq!(b.update(s(100), s(1000), &[(s(600), s(700))]), 100);
        assert_eq!(b.ranges(), &[(s(300), s(700))], "adjacent ranges merge");
        assert_eq!(b.sacked_in(s(100), s(400)), 100);
    }

    /// RFC 2883: a D-SACK block at or below SND.UNA is ignored; blocks past SND.MAX too.
    #[test]
    fn dsack_and_bogus_blocks_ignored() {
        let mut b = Scoreboard::default();
        assert_eq!(b.update(s(100), s(1000), &[(s(50), s(100))]), 0);
        assert_eq!(b.update(s(100), s(1000), &[(s(900), s(1100))]), 0);
        assert_eq!(b.update(s(100), s(1000), &[(s(400), s(300))]), 0);
        assert!(b.is_empty());
        assert_eq!(b.update(s(100), s(1000), &[(s(50), s(150))]), 50, "clipped");
        assert_eq!(b.ranges(), &[(s(100), s(150))]);
        b.advance(s(150));
        assert!(b.is_empty());
    }

    #[test]
    fn bounded() {
        let mut b = Scoreboard::default();
        for i in 0..(MAX_RANGES as u32 + 5) {
            b.update(s(0), s(100_000), &[(s(10 + 20 * i), s(20 + 20 * i))]);
        }
        assert_eq!(b.ranges().len(), MAX_RANGES);
        // A lower range still gets in, pushing the highest out.
        let hi = b.highest().unwrap();
        b.update(s(0), s(100_000), &[(s(1), s(2))]);
        assert_eq!(b.ranges().len(), MAX_RANGES);
        assert!(b.highest().unwrap().lt(hi));
    }

    /// RFC 6675 §4 IsLost with SMSS 100: three SACKed ranges above, or more than 200 bytes.
    #[test]
    fn is_lost() {
        let mut b = Scoreboard::default();
        b.update(s(0), s(1000), &[(s(100), s(200)), (s(300), s(400))]);
        assert_eq!(b.lost_boundary(100), None, "200 bytes, 2 ranges");
        b.update(s(0), s(1000), &[(s(500), s(510))]);
        assert_eq!(b.lost_boundary(100), Some(s(100)), "3 ranges");
        assert!(b.is_lost(s(0), 100));
        assert!(!b.is_lost(s(150), 100), "SACKed");
        assert!(!b.is_lost(s(250), 100));
        let mut b = Scoreboard::default();
        b.update(s(0), s(1000), &[(s(600), s(900))]);
        assert_eq!(b.lost_boundary(100), Some(s(600)), "300 > 2 * SMSS bytes");
    }
}
