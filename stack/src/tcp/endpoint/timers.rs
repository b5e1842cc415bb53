//! The endpoint's connection timer queue: one entry per connection for its earliest deadline,
//! validated lazily when it pops (a stale entry is skipped). A min-heap for now; the
//! hierarchical wheel (issue 5) replaces it behind the same two calls, `arm` and `pop_due`.
//!
//! Memory bound: one live entry per connection plus stale entries, and a stale entry is only
//! created when a deadline moves earlier (each `arm` pushes at most one entry).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::time::Instant;

/// A timer key: slab slot and its generation (so a freed-and-reused slot is not fired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct TimerKey {
    pub slot: u32,
    pub gen: u32,
}

#[derive(Debug, Default)]
pub(super) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TimerKey)>>,
}

impl TimerQueue {
    /// Make sure an entry at or before `deadline` exists for `key`. `queued` is the caller's
    /// record of the earliest entry it has in the queue (updated here).
    pub fn arm(&mut self, key: TimerKey, deadline: Instant, queued: &mut Option<Instant>) {
        if queued.is_none_or(|q| deadline < q) {
            self.heap.push(Reverse((deadline, key)));
            *queued = Some(deadline);
        }
    }

    /// Pops one entry due at `now`, if any. The caller validates it (generation, real
    /// deadline) and re-arms when the deadline moved later.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, TimerKey)> {
        let Reverse((at, _)) = self.heap.peek()?;
        if *at > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| e)
    }

    /// The earliest entry (may be stale: then the caller wakes early, harmlessly).
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_pushes_only_when_earlier_and_pops_in_order() {
        let mut q = TimerQueue::default();
        let k = TimerKey { slot: 1, gen: 0 };
        let mut queued = None;
        q.arm(k, Instant::from_secs(5), &mut queued);
        q.arm(k, Instant::from_secs(7), &mut queued); // later: no push
        assert_eq!(q.len(), 1);
        q.arm(k, Instant::from_secs(3), &mut queued); // earlier: push
        assert_eq!((q.len(), queued), (2, Some(Instant::from_secs(3))));
        assert_eq!(q.next(), Some(Instant::from_secs(3)));
        assert_eq!(q.pop_due(Instant::from_secs(2)), None);
        assert_eq!(
            q.pop_due(Instant::from_secs(6)),
            Some((Instant::from_secs(3), k))
        );
        assert_eq!(
            q.pop_due(Instant::from_secs(6)),
            Some((Instant::from_secs(5), k))
        );
        assert_eq!(q.pop_due(Instant::from_secs(6)), None);
    }
}
