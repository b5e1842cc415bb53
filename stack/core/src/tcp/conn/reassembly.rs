//! Out-of-order data for the receive buffer: which sequence ranges above RCV.NXT are held
//! (RFC 9293 §3.10.7.4 "seventh, process the segment text": segments beyond RCV.NXT are
//! "held for later processing"), their bytes, in sequence order, each with a recency stamp
//! for SACK generation (RFC 2018 §4), and the sequence number of a FIN seen beyond a hole.
//!
//! Storage: each held range owns its bytes in a chunk (`VecDeque<u8>`) of its own length,
//! charged to the endpoint's accountant (bufpool.rs, `tcp_mem`) by its capacity plus
//! [`OOO_CHUNK_OVERHEAD`]. So a 1-byte segment at the right edge of the window costs about
//! a byte and the overhead, not the span from RCV.NXT (the in-order ring never grows for
//! out-of-order data). Merging ranges keeps the largest chunk and copies the others into it
//! (each byte is copied O(log window) times at most); held bytes are never overwritten.
//!
//! Bounds: at most [`MAX_RANGES`] disjoint ranges (so at most that many holes), allocated on
//! the first out-of-order segment. The bytes they cover are bounded by the receive window:
//! the receiver only holds data inside the window it advertised. A segment that would need
//! one range more is dropped (it is retransmitted; segments filling or extending held data
//! never need one). Under memory pressure the queue is pruned from the highest sequence
//! number down ([`Reassembly::prune_highest`], Linux `tcp_prune_ofo_queue`): that reneges on
//! data we may have SACKed, which RFC 2018 §8 allows; the SACK blocks we send are made from
//! the ranges still held, so they never claim pruned data.

use std::collections::VecDeque;

use crate::tcp::bufpool::{BufPool, OOO_CHUNK_OVERHEAD};
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
    /// `data[i]` holds the bytes of `ranges[i]`.
    data: Vec<VecDeque<u8>>,
    /// What this queue has charged to the pool now.
    charged: usize,
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

    /// Bytes charged to the pool for the held data (chunk capacity + overhead).
    pub fn charged(&self) -> usize {
        self.0.as_ref().map_or(0, |h| h.charged)
    }

    /// The bytes held for `ranges()[i]` (tests).
    #[cfg(test)]
    pub fn bytes(&self, i: usize) -> Vec<u8> {
        self.0
            .as_ref()
            .map_or(Vec::new(), |h| h.data[i].iter().copied().collect())
    }

    /// Gives every chunk back and returns the bytes it had charged (the caller settles it
    /// with the pool, now or when the receive ring is released).
    pub fn clear(&mut self) -> usize {
        self.0.take().map_or(0, |h| h.charged)
    }

    /// Where a FIN beyond a hole sits, if one arrived.
    #[cfg(test)]
    pub fn fin(&self) -> Option<SeqNum> {
        self.0.as_ref().and_then(|h| h.fin)
    }

    /// RCV.NXT reached `nxt`: a held FIN at or before it is taken (forgotten here).
    pub fn take_fin(&mut self, nxt: SeqNum, pool: &mut BufPool) -> bool {
        let Some(h) = self.0.as_mut() else {
            return false;
        };
        let hit = h.fin == Some(nxt);
        if h.fin.is_some_and(|f| f.le(nxt)) {
            h.fin = None;
        }
        self.release_if_idle(pool);
        hit
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

    /// Record `[s, e)` as held with its text `data` (after `fit` said `Ok`), merging with
    /// touching ranges (held bytes win over `data` where they overlap); the result is the
    /// most recent range. The pool is charged for the chunk growth.
    pub fn insert(&mut self, s: SeqNum, e: SeqNum, data: &[u8], pool: &mut BufPool) {
        debug_assert_eq!(e - s, data.len());
        let h = self.0.get_or_insert_with(Default::default);
        h.clock = h.clock.wrapping_add(1);
        let i = h
            .ranges
            .iter()
            .position(|r| r.end.ge(s))
            .unwrap_or(h.ranges.len());
        let mut j = i;
        while j < h.ranges.len() && h.ranges[j].start.le(e) {
            j += 1;
        }
        let start = h
            .ranges
            .get(i)
            .filter(|_| j > i)
            .map_or(s, |r| r.start.min(s));
        let end = if j > i { h.ranges[j - 1].end.max(e) } else { e };
        // The merged bytes in order: new text in the gaps, held chunks where held.
        let mut olds: Vec<VecDeque<u8>> = h.data.drain(i..j).collect();
        let olds_ranges: Vec<Range> = h.ranges.drain(i..j).collect();
        // Keep the largest chunk as the base; copy the pieces before it to its front and the
        // pieces after it to its back.
        let big = (0..olds.len()).max_by_key(|&k| olds[k].len());
        let mut base = big.map_or_else(
            || VecDeque::with_capacity(data.len()),
            |k| std::mem::take(&mut olds[k]),
        );
        let text = |a: SeqNum, b: SeqNum| {
            if a.lt(b) {
                &data[(a - s)..(b - s)]
            } else {
                &[]
            }
        };
        match big {
            None => base.extend(data),
            Some(k) => {
                // Before the base, walking down from it.
                let mut at = olds_ranges[k].start;
                for m in (0..k).rev() {
                    let r = olds_ranges[m];
                    for &b in text(r.end, at).iter().rev() {
                        base.push_front(b);
                    }
                    for &b in olds[m].iter().rev() {
                        base.push_front(b);
                    }
                    at = r.start;
                }
                for &b in text(start, at).iter().rev() {
                    base.push_front(b);
                }
                // After the base.
                let mut at = olds_ranges[k].end;
                for m in k + 1..olds.len() {
                    let r = olds_ranges[m];
                    base.extend(text(at, r.start));
                    base.extend(olds[m].iter());
                    at = r.end;
                }
                base.extend(text(at, end));
            }
        }
        debug_assert_eq!(base.len(), end - start);
        let new = Range {
            start,
            end,
            stamp: h.clock,
        };
        h.ranges.insert(i, new);
        h.data.insert(i, base);
        Self::settle(h, pool);
    }

    /// Recomputes what `h` costs and charges the difference.
    fn settle(h: &mut Held, pool: &mut BufPool) {
        let now = h.data.iter().map(VecDeque::capacity).sum::<usize>()
            + h.ranges.len() * OOO_CHUNK_OVERHEAD;
        pool.recharge_ooo(h.charged, now);
        h.charged = now;
    }

    /// Where in-order text ending at `e` ends once the held ranges it reaches are taken.
    pub fn reach(&self, e: SeqNum) -> SeqNum {
        let mut end = e;
        for r in self.ranges() {
            if r.start.gt(end) {
                break;
            }
            end = end.max(r.end);
        }
        end
    }

    /// Takes the first held range if it starts at or before `upto`, with its bytes; the
    /// pool is uncharged for it.
    pub fn pop_reached(
        &mut self,
        upto: SeqNum,
        pool: &mut BufPool,
    ) -> Option<(Range, VecDeque<u8>)> {
        let h = self.0.as_mut()?;
        if !h.ranges.first().is_some_and(|r| r.start.le(upto)) {
            return None;
        }
        let r = h.ranges.remove(0);
        let d = h.data.remove(0);
        Self::settle(h, pool);
        Some((r, d))
    }

    /// Drops the held range with the highest sequence numbers if it starts above `above`
    /// (Linux tcp_prune_ofo_queue prunes from the tail and stops at the segment it makes
    /// room for: lower data is closer to being useful), and a FIN beyond it; returns the
    /// bytes it held, 0 if none.
    pub fn prune_highest(&mut self, above: SeqNum, pool: &mut BufPool) -> usize {
        let Some(h) = self.0.as_mut() else {
            return 0;
        };
        if !h.ranges.last().is_some_and(|r| r.start.gt(above)) {
            return 0;
        }
        let Some(r) = h.ranges.pop() else {
            return 0;
        };
        h.data.pop();
        if h.fin.is_some_and(|f| f.ge(r.start)) {
            h.fin = None;
        }
        Self::settle(h, pool);
        self.release_if_idle(pool);
        r.end - r.start
    }

    /// Gives the bookkeeping back when nothing is held any more.
    pub fn release_if_idle(&mut self, pool: &mut BufPool) {
        if self
            .0
            .as_ref()
            .is_some_and(|h| h.ranges.is_empty() && h.fin.is_none())
        {
            let c = self.clear();
            pool.recharge_ooo(c, 0);
        }
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

    /// Sequence number `n` carries byte `n as u8` (`tag` added), so a chunk's content shows
    /// where each byte came from.
    fn text(a: u32, b: u32, tag: u8) -> Vec<u8> {
        (a..b).map(|n| (n as u8).wrapping_add(tag)).collect()
    }

    fn ins(r: &mut Reassembly, p: &mut BufPool, a: u32, b: u32) {
        r.insert(s(a), s(b), &text(a, b, 0), p);
    }

    /// Each range's bytes are the bytes of its sequence numbers.
    fn check_bytes(r: &Reassembly) {
        for (i, x) in r.ranges().iter().enumerate() {
            assert_eq!(r.bytes(i), text(x.start.0, x.end.0, 0), "range {i}");
        }
    }

    #[test]
    fn insert_merges_touching_and_overlapping() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 10, 20);
        ins(&mut r, &mut p, 30, 40);
        ins(&mut r, &mut p, 50, 60);
        assert_eq!(spans(&r), [(10, 20), (30, 40), (50, 60)]);
        ins(&mut r, &mut p, 20, 25); // adjacent: merged
        assert_eq!(spans(&r), [(10, 25), (30, 40), (50, 60)]);
        ins(&mut r, &mut p, 35, 55); // bridges two
        assert_eq!(spans(&r), [(10, 25), (30, 60)]);
        check_bytes(&r);
        ins(&mut r, &mut p, 5, 70); // covers all
        assert_eq!(spans(&r), [(5, 70)]);
        assert_eq!(r.held(), 65);
        check_bytes(&r);
        assert_eq!(p.stats().ooo_bytes as usize, r.charged());
        r.release_if_idle(&mut p);
    }

    /// Held bytes are never overwritten: a retransmission with other content overlapping
    /// held data keeps the held bytes and fills only the gaps; the largest chunk is the
    /// base whichever side it is on.
    #[test]
    fn held_bytes_win_and_merges_keep_order() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 100, 103);
        ins(&mut r, &mut p, 110, 140); // the large one, in the middle
        ins(&mut r, &mut p, 150, 152);
        r.insert(s(90), s(160), &text(90, 160, 100), &mut p);
        assert_eq!(spans(&r), [(90, 160)]);
        let got = r.bytes(0);
        for (k, b) in got.iter().enumerate() {
            let n = 90 + k as u32;
            let held =
                (100..103).contains(&n) || (110..140).contains(&n) || (150..152).contains(&n);
            let tag = if held { 0 } else { 100 };
            assert_eq!(*b, (n as u8).wrapping_add(tag), "seq {n}");
        }
    }

    /// A 1-byte chunk far from RCV.NXT is charged its capacity plus the overhead, not
    /// the span; pops and prunes give the charge back.
    #[test]
    fn charged_by_bytes_not_span() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 1_000_000, 1_000_001);
        assert_eq!(r.charged(), 1 + OOO_CHUNK_OVERHEAD);
        assert_eq!(p.stats().ooo_bytes, 1 + OOO_CHUNK_OVERHEAD as u64);
        ins(&mut r, &mut p, 2_000_000, 2_000_100);
        assert_eq!(r.charged(), 101 + 2 * OOO_CHUNK_OVERHEAD);
        assert_eq!(
            r.prune_highest(s(2_000_000), &mut p),
            0,
            "not at or below `above`"
        );
        assert_eq!(
            r.prune_highest(s(0), &mut p),
            100,
            "the highest range goes first"
        );
        assert_eq!(spans(&r), [(1_000_000, 1_000_001)]);
        let (x, d) = r.pop_reached(s(1_000_000), &mut p).unwrap();
        assert_eq!((x.start.0, d.len()), (1_000_000, 1));
        r.release_if_idle(&mut p);
        assert!(r.0.is_none());
        assert_eq!(p.stats().ooo_bytes, 0);
    }

    #[test]
    fn fit_reports_duplicates_and_the_bound() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 10, 20);
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
            ins(&mut r, &mut p, 100 + 10 * i, 105 + 10 * i);
        }
        assert_eq!(r.ranges().len(), MAX_RANGES);
        assert_eq!(r.fit(s(1000), s(1001)), Fit::Full, "a 33rd range");
        assert_eq!(r.fit(s(105), s(107)), Fit::Ok { dup: None }, "extends one");
        assert_eq!(r.fit(s(90), s(100)), Fit::Ok { dup: None }, "touches one");
    }

    #[test]
    fn gaps_are_the_unheld_parts() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 10, 20);
        ins(&mut r, &mut p, 30, 40);
        let g: Vec<_> = r.gaps(s(5), s(45)).map(|(a, b)| (a.0, b.0)).collect();
        assert_eq!(g, [(5, 10), (20, 30), (40, 45)]);
        let g: Vec<_> = r.gaps(s(12), s(35)).map(|(a, b)| (a.0, b.0)).collect();
        assert_eq!(g, [(20, 30)]);
        assert_eq!(r.gaps(s(31), s(39)).count(), 0);
    }

    #[test]
    fn reach_pop_and_fin() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 10, 20);
        ins(&mut r, &mut p, 30, 40);
        assert_eq!(r.reach(s(5)), s(5));
        assert_eq!(r.reach(s(10)), s(20), "adjacent range reached");
        assert_eq!(r.reach(s(35)), s(40), "both");
        assert!(r.pop_reached(s(5), &mut p).is_none());
        assert_eq!(r.pop_reached(s(10), &mut p).map(|x| x.0.end), Some(s(20)));
        assert_eq!(spans(&r), [(30, 40)]);
        r.set_fin(s(50));
        assert_eq!(r.pop_reached(s(45), &mut p).map(|x| x.0.end), Some(s(40)));
        r.release_if_idle(&mut p);
        assert_eq!(r.fin(), Some(s(50)), "a FIN ahead is kept");
        assert!(!r.take_fin(s(45), &mut p));
        assert!(r.take_fin(s(50), &mut p));
        assert!(r.0.is_none(), "memory given back");
    }

    #[test]
    fn recent_orders_by_last_extension() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        ins(&mut r, &mut p, 10, 20);
        ins(&mut r, &mut p, 30, 40);
        ins(&mut r, &mut p, 50, 60);
        ins(&mut r, &mut p, 20, 22); // extends the first
        let order: Vec<_> = r.recent(4).map(|x| (x.start.0, x.end.0)).collect();
        assert_eq!(order, [(10, 22), (50, 60), (30, 40)]);
        assert_eq!(r.recent(2).count(), 2);
    }

    #[test]
    fn wraps_around_sequence_space() {
        let mut p = BufPool::new();
        let mut r = Reassembly::default();
        r.insert(s(u32::MAX - 5), s(3), &[1; 9], &mut p);
        r.insert(s(3), s(8), &[2; 5], &mut p);
        assert_eq!(spans(&r), [(u32::MAX - 5, 8)]);
        assert_eq!(r.reach(s(u32::MAX - 9)), s(u32::MAX - 9));
        assert_eq!(r.reach(s(u32::MAX - 5)), s(8));
        let (_, d) = r.pop_reached(s(u32::MAX - 5), &mut p).unwrap();
        assert_eq!(d.len(), 14);
    }
}
