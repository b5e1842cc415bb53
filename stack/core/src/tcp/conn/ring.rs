//! The byte ring behind a connection's send and receive buffers: a `VecDeque<u8>` whose
//! storage comes from, and goes back to, the endpoint's buffer pool (tcp/bufpool.rs), passed
//! in (`&mut BufPool`) to every operation that grows or may empty the ring.
//!
//! - Lazily allocated: an empty ring has no storage (`VecDeque::new()` does not allocate).
//! - Freed when empty: the drain that empties it gives the storage back to the pool, so an
//!   idle connection holds no buffer memory. It remembers the capacity it had (`hint`) and
//!   asks for as much next time, so a bulk flow does not regrow from small on every burst.
//! - Bounded: storage never exceeds `limit` (the connection's `tcp_rmem` / `tcp_wmem`); it
//!   grows by doubling from [`MIN_ALLOC`] (or the hint), copying once per growth.
//! - Charged: every growth asks the pool's accountant (`tcp_mem`, bufpool.rs) first; a
//!   refused doubling falls back to the exact need, a refused need fails unless the caller
//!   grants it (`forced`: the bytes Linux's `sk_forced_mem_schedule` would allow).
//!
//! Reads go through `Deref` to the `VecDeque` (`len`, `as_slices`, ...); every mutation is
//! an inherent method here, so nothing reaches the allocator behind the pool's back. A ring
//! dropped with storage frees it to the allocator (no `Drop` back to a pool it cannot see);
//! owners that can, call [`Ring::release`] first.

use std::collections::VecDeque;
use std::ops::{Deref, RangeTo};

use crate::tcp::bufpool::BufPool;

/// Smallest storage a ring takes (one full-sized segment fits), unless `limit` is smaller.
pub(super) const MIN_ALLOC: usize = 2048;

#[derive(Debug)]
pub(super) struct Ring {
    q: VecDeque<u8>,
    /// At most this much storage.
    limit: u32,
    /// Capacity of the storage last given back (0: none yet).
    hint: u32,
}

impl Deref for Ring {
    type Target = VecDeque<u8>;
    fn deref(&self) -> &VecDeque<u8> {
        &self.q
    }
}

impl Ring {
    /// An empty ring of at most `limit` bytes (clamped to u32).
    pub fn new(limit: usize) -> Ring {
        Ring {
            q: VecDeque::new(),
            limit: limit.min(u32::MAX as usize) as u32,
            hint: 0,
        }
    }

    /// Storage held now (0 when empty).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.q.capacity()
    }

    /// Makes room for `need` bytes in all (`need <= limit`; more is clamped to it) if the
    /// pool admits the growth (`tcp_mem`), or regardless when the growth is at most
    /// `forced` bytes. Returns whether there is room for `need` bytes now.
    pub fn reserve(&mut self, need: usize, forced: usize, pool: &mut BufPool) -> bool {
        let cap = self.q.capacity();
        let limit = self.limit as usize;
        let need = need.min(limit);
        if need <= cap {
            return true;
        }
        let want = need
            .max(2 * cap)
            .max(self.hint as usize)
            .max(MIN_ALLOC)
            .min(limit);
        let want = if pool.admit(want - cap, want) {
            want
        } else if pool.admit(need - cap, need) || need - cap <= forced {
            need
        } else {
            return false;
        };
        self.grow(want, pool);
        true
    }

    /// Storage capacity now (what the pool charges for this ring).
    pub fn capacity(&self) -> usize {
        self.q.capacity()
    }

    fn grow(&mut self, want: usize, pool: &mut BufPool) {
        let limit = self.limit as usize;
        let mut q = VecDeque::from(pool.take(want, want, limit));
        let (a, b) = self.q.as_slices();
        q.extend(a);
        q.extend(b);
        let old = std::mem::replace(&mut self.q, q);
        pool.give(Vec::from(old));
        pool.update_pressure();
    }

    /// Appends `data` into room made by `reserve` (the caller keeps the total within
    /// `limit`; growth here, if any, is forced).
    pub fn extend(&mut self, data: &[u8], pool: &mut BufPool) {
        self.reserve(self.q.len() + data.len(), usize::MAX, pool);
        self.q.extend(data);
    }

    #[cfg(test)]
    pub fn truncate(&mut self, len: usize, pool: &mut BufPool) {
        self.q.truncate(len);
        self.release_if_empty(pool);
    }

    /// Drops the first `r.end` bytes; gives the storage back if that empties the ring.
    pub fn drain(&mut self, r: RangeTo<usize>, pool: &mut BufPool) {
        self.q.drain(r);
        self.release_if_empty(pool);
    }

    pub fn make_contiguous(&mut self) {
        self.q.make_contiguous();
    }

    #[inline]
    fn release_if_empty(&mut self, pool: &mut BufPool) {
        if self.q.is_empty() {
            self.release(pool);
        }
    }

    /// Gives the storage (and anything still in it) back to the pool.
    pub fn release(&mut self, pool: &mut BufPool) {
        let cap = self.q.capacity();
        if cap > 0 {
            self.hint = cap.min(u32::MAX as usize) as u32;
            pool.give(Vec::from(std::mem::take(&mut self.q)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lazily allocated, grown by doubling within the limit, freed when drained empty and
    /// re-taken at the remembered size.
    #[test]
    fn lazy_grow_free_and_hint() {
        let mut p = BufPool::new();
        let mut r = Ring::new(10_000);
        assert_eq!(r.allocated(), 0);
        r.extend(b"hello", &mut p);
        assert_eq!(r.allocated(), MIN_ALLOC);
        r.extend(&[7u8; 3000], &mut p);
        assert_eq!(r.allocated(), 4096, "doubled");
        r.extend(&[8u8; 5000], &mut p);
        assert_eq!(r.allocated(), 8192, "doubled");
        r.extend(&[9u8; 1995], &mut p);
        assert_eq!(r.allocated(), 10_000, "clamped to the limit");
        assert_eq!(r.len(), 10_000);
        assert_eq!(&r.as_slices().0[..5], b"hello");
        r.drain(..9995, &mut p);
        assert_eq!((r.len(), r.allocated()), (5, 10_000));
        r.drain(..5, &mut p);
        assert_eq!(r.allocated(), 0, "empty: storage given back");
        let before = p.stats();
        r.extend(b"x", &mut p);
        assert_eq!(r.allocated(), 10_000, "the hint: same size again");
        assert_eq!(p.stats().hits, before.hits + 1, "from the pool");
        r.release(&mut p);
        assert_eq!(p.stats().out_buffers, 0);
        p.trim();
    }

    #[test]
    fn truncate_and_small_limit() {
        let mut p = BufPool::new();
        let mut r = Ring::new(100);
        r.extend(&[9u8; 40], &mut p);
        assert_eq!((r.len(), r.allocated()), (40, 100));
        r.truncate(1, &mut p);
        assert_eq!(r[0], 9);
        r.truncate(0, &mut p);
        assert_eq!(r.allocated(), 0);
        p.trim();
    }

    /// `tcp_mem`: a refused doubling falls back to the exact need; a refused need fails
    /// unless forced.
    #[test]
    fn growth_is_admitted_by_the_pool() {
        use crate::tcp::bufpool::MemLimits;
        // high = 3 pages = 12288 bytes.
        let mut p = BufPool::with_limits(MemLimits::from_pages([3, 3, 3]));
        let mut r = Ring::new(1 << 20);
        assert!(r.reserve(8192, 0, &mut p));
        assert_eq!(r.allocated(), 8192);
        assert!(r.reserve(12000, 0, &mut p), "16384 refused, 12000 admitted");
        assert_eq!(r.allocated(), 12000);
        let mut r2 = Ring::new(1 << 20);
        assert!(!r2.reserve(1000, 0, &mut p), "above high");
        assert!(r2.reserve(1000, 1000, &mut p), "forced");
        assert_eq!(r2.allocated(), 1000);
        r.release(&mut p);
        r2.release(&mut p);
        p.trim();
    }
}
