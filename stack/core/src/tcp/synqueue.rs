//! A bounded FIFO map of half-open connections: O(1) lookup by key, O(1) removal anywhere,
//! oldest-first iteration and expiry. A slab of nodes in a doubly-linked list (insertion
//! order) plus a `HashMap` from key to slot.

use std::collections::HashMap;
use std::hash::Hash;

use crate::time::{Duration, Instant};

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: V,
    since: Instant,
    prev: u32,
    next: u32,
}

/// Why [`SynQueue::insert`] gave the entry back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// `len() == capacity()`.
    Full,
    /// The key is already queued (e.g. a retransmitted SYN: answer from the existing entry).
    Duplicate,
}

/// Half-open connections keyed by 4-tuple (or any `K`), oldest first.
/// Memory bound: at most `capacity` entries (slab and map grow lazily up to it).
pub struct SynQueue<K, V> {
    slots: Vec<Option<Node<K, V>>>,
    free: Vec<u32>,
    index: HashMap<K, u32>,
    head: u32,
    tail: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> SynQueue<K, V> {
    /// An empty queue holding at most `capacity` entries (capped at `u32::MAX - 1`).
    pub fn with_capacity(capacity: usize) -> Self {
        SynQueue {
            slots: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.min(NIL as usize - 1),
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }
    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        let i = *self.index.get(key)?;
        self.node(i).map(|n| &n.value)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.slots[i as usize].as_mut().map(|n| &mut n.value)
    }

    /// Appends `key` as the newest entry, queued `since` now. Gives the value back on error.
    pub fn insert(&mut self, key: K, value: V, now: Instant) -> Result<(), (InsertError, V)> {
        if self.index.contains_key(&key) {
            return Err((InsertError::Duplicate, value));
        }
        if self.is_full() {
            return Err((InsertError::Full, value));
        }
        let node = Node {
            key: key.clone(),
            value,
            since: now,
            prev: self.tail,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(node);
                i
            }
            None => {
                self.slots.push(Some(node));
                (self.slots.len() - 1) as u32
            }
        };
        match self
            .slots
            .get_mut(self.tail as usize)
            .and_then(Option::as_mut)
        {
            Some(t) => t.next = i,
            None => self.head = i,
        }
        self.tail = i;
        self.index.insert(key, i);
        Ok(())
    }

    /// Removes `key` wherever it is in the order.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.index.remove(key)?;
        self.unlink(i).map(|(_, v)| v)
    }

    /// The oldest entry and when it was queued.
    pub fn oldest(&self) -> Option<(&K, &V, Instant)> {
        self.node(self.head).map(|n| (&n.key, &n.value, n.since))
    }

    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let i = self.head;
        let key = self.node(i)?.key.clone();
        self.index.remove(&key);
        self.unlink(i)
    }

    /// Pops the oldest entry if it was queued at least `max_age` before `now` (call in a loop
    /// to expire all; Linux ages requests out after tcp_synack_retries).
    pub fn pop_expired(&mut self, now: Instant, max_age: Duration) -> Option<(K, V)> {
        let (_, _, since) = self.oldest()?;
        if now.saturating_since(since) >= max_age {
            self.pop_oldest()
        } else {
            None
        }
    }

    /// Entries oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V, Instant)> + '_ {
        let mut i = self.head;
        core::iter::from_fn(move || {
            let n = self.node(i)?;
            i = n.next;
            Some((&n.key, &n.value, n.since))
        })
    }

    fn node(&self, i: u32) -> Option<&Node<K, V>> {
        self.slots.get(i as usize).and_then(Option::as_ref)
    }

    fn unlink(&mut self, i: u32) -> Option<(K, V)> {
        let n = self.slots.get_mut(i as usize)?.take()?;
        match self.slots.get_mut(n.prev as usize).and_then(Option::as_mut) {
            Some(p) => p.next = n.next,
            None => self.head = n.next,
        }
        match self.slots.get_mut(n.next as usize).and_then(Option::as_mut) {
            Some(x) => x.prev = n.prev,
            None => self.tail = n.prev,
        }
        self.free.push(i);
        Some((n.key, n.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(q: &SynQueue<u32, &'static str>) -> Vec<u32> {
        q.iter().map(|(k, _, _)| *k).collect()
    }

    #[test]
    fn fifo_lookup_remove_and_bound() {
        let mut q = SynQueue::with_capacity(3);
        let t = Instant::ZERO;
        q.insert(1, "a", t).unwrap();
        q.insert(2, "b", t).unwrap();
        assert_eq!(q.insert(2, "x", t), Err((InsertError::Duplicate, "x")));
        q.insert(3, "c", t).unwrap();
        assert_eq!(q.insert(4, "d", t), Err((InsertError::Full, "d")));
        assert_eq!(q.get(&2), Some(&"b"));
        assert_eq!(q.remove(&2), Some("b")); // middle
        assert_eq!(keys(&q), [1, 3]);
        q.insert(4, "d", t).unwrap(); // reuses the freed slot, goes last
        assert_eq!(keys(&q), [1, 3, 4]);
        assert_eq!(q.slots.len(), 3);
        assert_eq!(q.remove(&1), Some("a")); // head
        assert_eq!(q.remove(&4), Some("d")); // tail
        assert_eq!(keys(&q), [3]);
        *q.get_mut(&3).unwrap() = "C";
        assert_eq!(q.pop_oldest(), Some((3, "C")));
        assert!(q.is_empty() && q.oldest().is_none() && q.pop_oldest().is_none());
        q.insert(9, "z", t).unwrap();
        assert_eq!(keys(&q), [9]);
    }

    #[test]
    fn ages_out_oldest_first() {
        let mut q = SynQueue::with_capacity(10);
        for k in 0..4u32 {
            q.insert(k, "v", Instant::from_secs(k as u64)).unwrap();
        }
        let age = Duration::from_secs(2);
        let now = Instant::from_secs(3);
        assert_eq!(q.pop_expired(now, age), Some((0, "v")));
        assert_eq!(q.pop_expired(now, age), Some((1, "v")));
        assert_eq!(q.pop_expired(now, age), None); // queued at 2 s: 1 s old
        assert_eq!(q.oldest(), Some((&2, &"v", Instant::from_secs(2))));
        assert_eq!(q.len(), 2);
    }

    proptest::proptest! {
        /// Model check against a Vec in insertion order: same contents, order and errors.
        #[test]
        fn behaves_like_ordered_vec(ops in proptest::collection::vec((0u8..3, 0u32..8), 0..200)) {
            let mut q = SynQueue::with_capacity(5);
            let mut model: Vec<(u32, u32)> = Vec::new();
            for (i, (op, k)) in ops.into_iter().enumerate() {
                let v = i as u32;
                match op {
                    0 => {
                        let want = if model.iter().any(|e| e.0 == k) {
                            Err((InsertError::Duplicate, v))
                        } else if model.len() == 5 {
                            Err((InsertError::Full, v))
                        } else {
                            model.push((k, v));
                            Ok(())
                        };
                        proptest::prop_assert_eq!(q.insert(k, v, Instant::from_nanos(v as u64)), want);
                    }
                    1 => {
                        let pos = model.iter().position(|e| e.0 == k);
                        let want = pos.map(|p| model.remove(p).1);
                        proptest::prop_assert_eq!(q.remove(&k), want);
                    }
                    _ => {
                        let want = (!model.is_empty()).then(|| model.remove(0));
                        proptest::prop_assert_eq!(q.pop_oldest(), want);
                    }
                }
                let got: Vec<(u32, u32)> = q.iter().map(|(k, v, _)| (*k, *v)).collect();
                proptest::prop_assert_eq!(&got, &model);
                proptest::prop_assert_eq!(q.len(), model.len());
                proptest::prop_assert!(q.slots.len() <= 5);
            }
        }
    }

    #[test]
    fn zero_capacity_is_always_full() {
        let mut q: SynQueue<u32, ()> = SynQueue::with_capacity(0);
        assert!(q.is_full());
        assert_eq!(q.insert(1, (), Instant::ZERO), Err((InsertError::Full, ())));
    }
}
