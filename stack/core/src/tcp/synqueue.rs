//! A bounded FIFO map of half-open connections: O(1) lookup by key, O(1) removal anywhere,
//! oldest first. No expiry here: a half-open connection ages out by its own SYN-ACK retries
//! (`tcp_synack_retries`), as in Linux. A slab of nodes in a doubly-linked list (insertion
//! order) plus a `HashMap` from key to slot.

use std::collections::HashMap;
use std::hash::Hash;

const NIL: u32 = u32::MAX;

struct Node<K, V> {
    key: K,
    value: V,
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
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }
    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    #[cfg(test)]
    pub fn get(&self, key: &K) -> Option<&V> {
        let i = *self.index.get(key)?;
        self.node(i).map(|n| &n.value)
    }

    #[cfg(test)]
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.slots[i as usize].as_mut().map(|n| &mut n.value)
    }

    /// Appends `key` as the newest entry. Gives the value back on error.
    pub fn insert(&mut self, key: K, value: V) -> Result<(), (InsertError, V)> {
        if self.index.contains_key(&key) {
            return Err((InsertError::Duplicate, value));
        }
        if self.is_full() {
            return Err((InsertError::Full, value));
        }
        let node = Node {
            key: key.clone(),
            value,
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

    pub fn pop_oldest(&mut self) -> Option<(K, V)> {
        let i = self.head;
        let key = self.node(i)?.key.clone();
        self.index.remove(&key);
        self.unlink(i)
    }

    /// Entries oldest first.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> + '_ {
        let mut i = self.head;
        core::iter::from_fn(move || {
            let n = self.node(i)?;
            i = n.next;
            Some((&n.key, &n.value))
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
        q.iter().map(|(k, _)| *k).collect()
    }

    #[test]
    fn fifo_lookup_remove_and_bound() {
        let mut q = SynQueue::with_capacity(3);
        q.insert(1, "a").unwrap();
        q.insert(2, "b").unwrap();
        assert_eq!(q.insert(2, "x"), Err((InsertError::Duplicate, "x")));
        q.insert(3, "c").unwrap();
        assert_eq!(q.insert(4, "d"), Err((InsertError::Full, "d")));
        assert_eq!(q.get(&2), Some(&"b"));
        assert_eq!(q.remove(&2), Some("b")); // middle
        assert_eq!(keys(&q), [1, 3]);
        q.insert(4, "d").unwrap(); // reuses the freed slot, goes last
        assert_eq!(keys(&q), [1, 3, 4]);
        assert_eq!(q.slots.len(), 3);
        assert_eq!(q.remove(&1), Some("a")); // head
        assert_eq!(q.remove(&4), Some("d")); // tail
        assert_eq!(keys(&q), [3]);
        *q.get_mut(&3).unwrap() = "C";
        assert_eq!(q.pop_oldest(), Some((3, "C")));
        assert!(q.is_empty() && q.pop_oldest().is_none());
        q.insert(9, "z").unwrap();
        assert_eq!(keys(&q), [9]);
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
                        proptest::prop_assert_eq!(q.insert(k, v), want);
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
                let got: Vec<(u32, u32)> = q.iter().map(|(k, v)| (*k, *v)).collect();
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
        assert_eq!(q.insert(1, ()), Err((InsertError::Full, ())));
    }
}
