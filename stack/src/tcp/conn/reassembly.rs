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
