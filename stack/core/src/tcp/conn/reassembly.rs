//! Out-of-order bookkeeping for the receive buffer: which sequence ranges above RCV.NXT are
//! held (RFC 9293 §3.10.7.4 "seventh, process the segment text": segments beyond RCV.NXT are
//! "held for later processing"), in sequence order, each with a recency stamp for SACK
//! generation (RFC 2018 §4), and the sequence number of a FIN seen beyond a hole.
//!
//! Only sequence numbers live here; the bytes sit in the receive buffer at their offset from
//! RCV.NXT (receiver.rs), so a segment is copied once and held data is never duplicated.
//!
//! Bounds: at most [`MAX_RANGES`] disjoint ranges (so at most that many holes), 12 bytes each,
//! allocated on the first out-of-order segment. The bytes they cover are bounded by the
//! receive window: the receiver only holds data inside the window it advertised. A segment
//! that would need one range more is dropped (it is retransmitted; segments filling or
//! extending held data never need one), where Linux would prune its ofo queue: we never
//! renege on data already SACKed.

use crate::wire::SeqNum;

/// The most disjoint out-of-order ranges held. Each hole costs the sender at least one
/// retransmission; 32 holes in one window is far beyond what loss recovery handles well.
pub const MAX_RANGES: usize = 32;

/// A held range `[start, end)` and when it was last extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Range {
    pub start: SeqNum,
    pub end: SeqNum,
    /// Recency: larger is more recent (RFC 2018 §4 orders SACK blocks by it).
    pub stamp: u32,
}

/// Held out-of-order ranges, sorted by `start`, disjoint and not adjacent (merged). Boxed
/// and allocated only while something is held (8 bytes in the connection otherwise).
#[derive(Debug, Default)]
pub(super) struct Reassembly(Option<Box<Held>>);

#[derive(Debug, Default)]
struct Held {
    ranges: Vec<Range>,
    clock: u32,
    /// A FIN arrived on a segment beyond a hole: it is taken when RCV.NXT reaches it.
    fin: Option<SeqNum>,
}

/// Where `[s, e)` stands against what is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fit {
    /// Storable; `dup` is the first part already held (reported as a D-SACK, RFC 2883 §4).
    Ok { dup: Option<(SeqNum, SeqNum)> },
    /// Entirely held already.
    Duplicate,
    /// Would need more than `MAX_RANGES` ranges.
    Full,
}

impl Reassembly {
    pub fn is_empty(&self) -> bool {
        self.ranges().is_empty()
    }

    pub fn ranges(&self) -> &[Range] {
        self.0.as_ref().map_or(&[], |h| &h.ranges)
    }

    /// Bytes held out of order.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.ranges().iter().map(|r| r.end - r.start).sum()
    }

    /// Where a FIN beyond a hole sits, if one arrived.
    pub fn fin(&self) -> Option<SeqNum> {
        self.0.as_ref().and_then(|h| h.fin)
    }

    pub fn set_fin(&mut self, at: SeqNum) {
        self.0.get_or_insert_with(Default::default).fin = Some(at);
    }

    /// How `[s, e)` (non-empty, above RCV.NXT) would fit.
    pub fn fit(&self, s: SeqNum, e: SeqNum) -> Fit {
        let mut dup = None;
        let mut touching = 0;
        for r in self.ranges() {
            if r.start.gt(e) || r.end.lt(s) {
                continue;
            }
            touching += 1;
            let (ds, de) = (s.max(r.start), e.min(r.end));
            if ds.lt(de) {
                if ds == s && de == e {
                    return Fit::Duplicate;
                }
                dup.get_or_insert((ds, de));
            }
        }
        if touching == 0 && self.ranges().len() >= MAX_RANGES {
            return Fit::Full;
        }
        Fit::Ok { dup }
    }

    /// The parts of `[s, e)` not held yet, in order: where new bytes may be written (held
    /// bytes are never overwritten). At most `MAX_RANGES + 1` of them.
    pub fn gaps(&self, s: SeqNum, e: SeqNum) -> impl Iterator<Item = (SeqNum, SeqNum)> + '_ {
        let mut at = s;
        let mut it = self.ranges().iter();
        std::iter::from_fn(move || loop {
            if at.ge(e) {
                return None;
            }
            match it.next() {
                Some(r) if r.end.le(at) => continue,
                Some(r) if r.start.le(at) => at = r.end,
                Some(r) => {
                    let gap = (at, r.start.min(e));
                    at = r.end;
                    return Some(gap);
                }
                None => {
                    let gap = (at, e);
                    at = e;
                    return Some(gap);
                }
            }
        })
    }

    /// Record `[s, e)` as held (after `fit` said `Ok`), merging with touching ranges; the
    /// result is the most recent range.
    pub fn insert(&mut self, s: SeqNum, e: SeqNum) {
        let h = self.0.get_or_insert_with(Default::default);
        h.clock = h.clock.wrapping_add(1);
        let first = h.ranges.iter().position(|r| r.end.ge(s));
        let mut new = Range {
            start: s,
            end: e,
            stamp: h.clock,
        };
        let Some(i) = first else {
            h.ranges.push(new);
            return;
        };
        let mut j = i;
        while j < h.ranges.len() && h.ranges[j].start.le(e) {
            new.start = new.start.min(h.ranges[j].start);
            new.end = new.end.max(h.ranges[j].end);
            j += 1;
        }
        h.ranges.splice(i..j, [new]);
    }

    /// RCV.NXT moved to `nxt`: drop the ranges it reached and return the new RCV.NXT (past
    /// any held data now in order) and whether a held range was taken (a hole was filled).
    pub fn advance(&mut self, nxt: SeqNum) -> (SeqNum, bool) {
        let Some(h) = self.0.as_mut() else {
            return (nxt, false);
        };
        let n = h.ranges.iter().take_while(|r| r.start.le(nxt)).count();
        let end = h.ranges[..n].iter().fold(nxt, |a, r| a.max(r.end));
        h.ranges.drain(..n);
        if h.ranges.is_empty() && h.fin.is_none_or(|f| f.le(end)) {
            self.0 = None; // give the memory back: out of order is the exception
        }
        (end, n > 0)
    }

    /// Held ranges, most recent first (RFC 2018 §4), at most `n`. O(MAX_RANGES) per range
    /// listed; stamps are unique among held ranges.
    pub fn recent(&self, n: usize) -> impl Iterator<Item = &Range> + '_ {
        let clock = self.0.as_ref().map_or(0, |h| h.clock);
        let age = move |r: &Range| clock.wrapping_sub(r.stamp);
        let mut prev: Option<u32> = None;
        (0..n).map_while(move |_| {
            let r = self
                .ranges()
                .iter()
                .filter(|r| prev.is_none_or(|p| age(r) > p))
                .min_by_key(|r| age(r))?;
            prev = Some(age(r));
            Some(r)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u32) -> SeqNum {
        SeqNum(n)
    }

    fn spans(r: &Reassembly) -> Vec<(u32, u32)> {
        r.ranges().iter().map(|r| (r.start.0, r.end.0)).collect()
    }

    #[test]
    fn insert_merges_touching_and_overlapping() {
        let mut r = Reassembly::default();
        r.insert(s(10), s(20));
        r.insert(s(30), s(40));
        r.insert(s(50), s(60));
        assert_eq!(spans(&r), [(10, 20), (30, 40), (50, 60)]);
        r.insert(s(20), s(25)); // adjacent: merged
        assert_eq!(spans(&r), [(10, 25), (30, 40), (50, 60)]);
        r.insert(s(35), s(55)); // bridges two
        assert_eq!(spans(&r), [(10, 25), (30, 60)]);
        r.insert(s(5), s(70)); // covers all
        assert_eq!(spans(&r), [(5, 70)]);
        assert_eq!(r.held(), 65);
    }

    #[test]
    fn fit_reports_duplicates_and_the_bound() {
        let mut r = Reassembly::default();
        r.insert(s(10), s(20));
        assert_eq!(r.fit(s(12), s(18)), Fit::Duplicate);
        assert_eq!(
            r.fit(s(15), s(25)),
            Fit::Ok {
                dup: Some((s(15), s(20)))
            }
        );
        assert_eq!(r.fit(s(20), s(25)), Fit::Ok { dup: None });
        let mut r = Reassembly::default();
        for i in 0..MAX_RANGES as u32 {
            r.insert(s(100 + 10 * i), s(105 + 10 * i));
        }
        assert_eq!(r.ranges().len(), MAX_RANGES);
        assert_eq!(r.fit(s(1000), s(1001)), Fit::Full, "a 33rd range");
        assert_eq!(r.fit(s(105), s(107)), Fit::Ok { dup: None }, "extends one");
        assert_eq!(r.fit(s(90), s(100)), Fit::Ok { dup: None }, "touches one");
    }

    #[test]
    fn gaps_are_the_unheld_parts() {
        let mut r = Reassembly::default();
        r.insert(s(10), s(20));
        r.insert(s(30), s(40));
        let g: Vec<_> = r.gaps(s(5), s(45)).map(|(a, b)| (a.0, b.0)).collect();
        assert_eq!(g, [(5, 10), (20, 30), (40, 45)]);
        let g: Vec<_> = r.gaps(s(12), s(35)).map(|(a, b)| (a.0, b.0)).collect();
        assert_eq!(g, [(20, 30)]);
        assert_eq!(r.gaps(s(31), s(39)).count(), 0);
    }

    #[test]
    fn advance_takes_reached_ranges_and_frees_memory() {
        let mut r = Reassembly::default();
        r.insert(s(10), s(20));
        r.insert(s(30), s(40));
        assert_eq!(r.advance(s(5)), (s(5), false));
        assert_eq!(r.advance(s(10)), (s(20), true), "adjacent range taken");
        assert_eq!(spans(&r), [(30, 40)]);
        assert_eq!(r.advance(s(35)), (s(40), true), "overlapped range taken");
        assert!(r.is_empty() && r.0.is_none(), "memory given back");
        r.set_fin(s(50));
        assert_eq!(r.advance(s(45)), (s(45), false));
        assert_eq!(r.fin(), Some(s(50)), "a FIN ahead is kept");
    }

    #[test]
    fn recent_orders_by_last_extension() {
        let mut r = Reassembly::default();
        r.insert(s(10), s(20));
        r.insert(s(30), s(40));
        r.insert(s(50), s(60));
        r.insert(s(20), s(22)); // extends the first
        let order: Vec<_> = r.recent(4).map(|x| (x.start.0, x.end.0)).collect();
        assert_eq!(order, [(10, 22), (50, 60), (30, 40)]);
        assert_eq!(r.recent(2).count(), 2);
    }

    #[test]
    fn wraps_around_sequence_space() {
        let mut r = Reassembly::default();
        r.insert(s(u32::MAX - 5), s(3));
        r.insert(s(3), s(8));
        assert_eq!(spans(&r), [(u32::MAX - 5, 8)]);
        assert_eq!(r.advance(s(u32::MAX - 9)), (s(u32::MAX - 9), false));
        assert_eq!(r.advance(s(u32::MAX - 5)), (s(8), true));
    }
}
