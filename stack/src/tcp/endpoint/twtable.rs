//! The shard's TIME-WAIT table: compact [`TimeWait`] records keyed by 4-tuple, bounded by
//! `tcp_max_tw_buckets`, expired lazily on lookup and by an expiry heap.
//!
//! Memory bound: at most `max` records (48 bytes each plus the map entry) and one heap entry
//! (32 bytes) per record created within the last 2*MSL (entries of records removed early
//! stay until their time comes, then are discarded).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::tcp::timewait::TimeWait;
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;

#[derive(Debug, Clone, Copy)]
pub(super) struct TwEntry {
    pub rec: TimeWait,
    /// Which heap entry is this record's (older ones for the same tuple are stale).
    stamp: u32,
}

#[derive(Debug, Default)]
pub(super) struct TwTable {
    map: FxHashMap<FourTuple, TwEntry>,
    heap: BinaryHeap<Reverse<(Instant, u32, TupleKey)>>,
    next_stamp: u32,
    /// Records dropped because they expired (lazily or by `expire`).
    pub expired: u64,
}

/// `FourTuple` ordered for the heap (ties only; order is irrelevant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TupleKey(FourTuple);
impl PartialOrd for TupleKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TupleKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.to_bytes().cmp(&other.0.to_bytes())
    }
}

impl TwTable {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a record; the caller checked the bound.
    pub fn insert(&mut self, tuple: FourTuple, rec: TimeWait) {
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.heap
            .push(Reverse((rec.expiry, stamp, TupleKey(tuple))));
        self.map.insert(tuple, TwEntry { rec, stamp });
    }

    /// The live record for `tuple`, dropping it first if it has expired at `now`.
    pub fn get_mut(&mut self, tuple: &FourTuple, now: Instant) -> Option<&mut TimeWait> {
        if self.map.get(tuple).is_some_and(|e| now >= e.rec.expiry) {
            self.map.remove(tuple);
            self.expired += 1;
            return None;
        }
        self.map.get_mut(tuple).map(|e| &mut e.rec)
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<TimeWait> {
        self.map.remove(tuple).map(|e| e.rec)
    }

    /// Drops every record expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, stamp, key))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            let Some(e) = self.map.get(&key.0) else {
                continue;
            };
            if e.stamp != stamp {
                continue; // a later record for the same tuple owns another entry
            }
            if e.rec.expiry <= now {
                self.map.remove(&key.0);
                self.expired += 1;
            } else {
                // The 2MSL timer was restarted (retransmitted FIN): look again then.
                self.heap.push(Reverse((e.rec.expiry, stamp, key)));
            }
        }
    }

    /// The earliest heap entry (may be stale: the caller wakes early, harmlessly).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }
}
