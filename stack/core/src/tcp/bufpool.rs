//! The pool of connection buffers: the storage of send and receive rings (tcp/conn/ring.rs).
//! A `BufPool` (crate-private; its counters are public as [`PoolStats`]) is a value owned by
//! one endpoint (one per shard / worker) and passed (`&mut BufPool`) to the connection calls
//! that grow or drain ring storage: no thread-local, no lock. A connection holds a buffer only while it has bytes in it;
//! an emptied ring gives its buffer back here, so an idle connection holds no buffer memory
//! (as Linux, whose idle sockets hold no skbs) and the data path still does not call the
//! allocator in steady state (model: DPDK's per-lcore mempool cache).
//!
//! Size classes: a buffer of capacity `c` is cached in class `floor(log2(c))`; a request for
//! at least `n` bytes is served from class `ceil(log2(n))` (every buffer there holds at least
//! 2^class >= n bytes) or, if the last buffer of class `floor(log2(n))` is large enough
//! (buffers of a non-power-of-two `tcp_rmem` sit there), from that one; else allocated with
//! exactly the capacity the ring asked for.
//!
//! Bound: at most [`POOL_MAX_BYTES`] of buffer capacity cached per pool, and only buffers
//! of at most [`POOL_MAX_BUF`] bytes. A buffer that does not fit is freed to the allocator
//! (`released`); a request the cache cannot serve is allocated (`allocated`). So the pool is
//! never a limit on connections (their own bound is `tcp_rmem` / `tcp_wmem` each), only a
//! cache: steady traffic whose working set of buffers fits in it runs allocation-free.
//! (A global cap on buffer memory with window reduction under pressure, Linux's `tcp_mem`,
//! is not implemented; the pool, as the endpoint's explicit memory owner, is where it goes.)
//!
//! A ring dropped without the pool (a connection dropped by its owner) frees its storage to
//! the allocator; the endpoint hands a connection's buffers back
//! (`Connection::release_buffers`) when it frees it, so the gauges stay exact.

/// Cached buffer capacity per pool at most (16 MiB).
pub const POOL_MAX_BYTES: usize = 16 << 20;
/// Largest buffer the pool caches (4 MiB); larger ones go back to the allocator.
pub const POOL_MAX_BUF: usize = 4 << 20;
/// Classes 0..=22 (capacities up to 2^23 - 1 bytes).
const CLASSES: usize = 23;

/// Pool counters (monotonic, except the two gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Requests served from the cache.
    pub hits: u64,
    /// Requests the cache could not serve: allocated.
    pub allocated: u64,
    /// Buffers given back that were cached.
    pub cached: u64,
    /// Buffers given back that did not fit the bound: freed.
    pub released: u64,
    /// Gauge: buffers and bytes (capacity) in the cache now.
    pub cached_buffers: u64,
    /// Gauge: capacity in bytes of the buffers in the cache now.
    pub cached_bytes: u64,
    /// Gauge: buffers handed out and not given back yet, and their bytes.
    pub out_buffers: u64,
    /// Gauge: capacity in bytes of the buffers handed out now.
    pub out_bytes: u64,
}

/// One endpoint's buffer cache (see the module docs).
pub(crate) struct BufPool {
    free: [Vec<Vec<u8>>; CLASSES],
    stats: PoolStats,
}

impl Default for BufPool {
    fn default() -> Self {
        BufPool::new()
    }
}

impl std::fmt::Debug for BufPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufPool")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The class a buffer of capacity `cap` (> 0) is cached in.
fn class_of_cap(cap: usize) -> usize {
    (usize::BITS - 1 - cap.leading_zeros()) as usize
}

/// The class whose buffers all hold at least `n` (> 0) bytes.
fn class_for_need(n: usize) -> usize {
    n.next_power_of_two().trailing_zeros() as usize
}

impl BufPool {
    /// An empty pool (allocates nothing).
    pub const fn new() -> BufPool {
        BufPool {
            free: [const { Vec::new() }; CLASSES],
            stats: PoolStats {
                hits: 0,
                allocated: 0,
                cached: 0,
                released: 0,
                cached_buffers: 0,
                cached_bytes: 0,
                out_buffers: 0,
                out_bytes: 0,
            },
        }
    }

    /// An empty buffer with capacity at least `n` and at most `max` (a cached buffer of the
    /// class may be larger than `max` when another connection had a larger limit: then one
    /// is allocated); allocated with capacity exactly `exact` (>= `n`) when the cache has
    /// none.
    pub(crate) fn take(&mut self, n: usize, exact: usize, max: usize) -> Vec<u8> {
        let n = n.max(1);
        let exact = exact.max(n);
        // The class whose buffers all fit, else the one below if its last buffer does
        // (buffers of a non-power-of-two limit sit there). Only the last one is looked at:
        // O(1).
        let mut v = None;
        for c in [class_for_need(n), class_of_cap(n)] {
            let Some(l) = self.free.get_mut(c) else {
                continue;
            };
            if let Some(b) = l.last() {
                if b.capacity() >= n && b.capacity() <= max.max(n) {
                    v = l.pop();
                    break;
                }
            }
        }
        let st = &mut self.stats;
        match &v {
            Some(b) => {
                st.hits += 1;
                st.cached_buffers -= 1;
                st.cached_bytes -= b.capacity() as u64;
            }
            None => st.allocated += 1,
        }
        st.out_buffers += 1;
        st.out_bytes += v.as_ref().map_or(exact, Vec::capacity) as u64;
        v.unwrap_or_else(|| Vec::with_capacity(exact))
    }

    /// Gives a buffer back (its contents are dropped).
    pub(crate) fn give(&mut self, mut v: Vec<u8>) {
        let cap = v.capacity();
        if cap == 0 {
            return;
        }
        v.clear();
        let st = &mut self.stats;
        st.out_buffers = st.out_buffers.saturating_sub(1);
        st.out_bytes = st.out_bytes.saturating_sub(cap as u64);
        let fits = cap <= POOL_MAX_BUF && st.cached_bytes as usize + cap <= POOL_MAX_BYTES;
        if !fits {
            st.released += 1;
            return; // `v` is freed here
        }
        st.cached += 1;
        st.cached_buffers += 1;
        st.cached_bytes += cap as u64;
        // The per-class lists only grow to what the byte bound allows (at most
        // POOL_MAX_BYTES / 2^c entries), so this push never allocates past warm-up.
        self.free[class_of_cap(cap)].push(v);
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        self.stats
    }

    /// Frees every cached buffer (tests; nothing in the endpoint shrinks the pool yet).
    #[cfg(test)]
    pub fn trim(&mut self) {
        for l in self.free.iter_mut() {
            *l = Vec::new();
        }
        self.stats.cached_buffers = 0;
        self.stats.cached_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(class_of_cap(1), 0);
        assert_eq!(class_of_cap(2048), 11);
        assert_eq!(class_of_cap(3000), 11);
        assert_eq!(class_for_need(2048), 11);
        assert_eq!(class_for_need(2049), 12);
        assert_eq!(class_for_need(1), 0);
    }

    /// A given-back buffer serves the next request of its class; a request above what a
    /// class guarantees is allocated; counters follow.
    #[test]
    fn reuse_and_counters() {
        let mut p = BufPool::new();
        let a = p.take(1000, 2048, usize::MAX);
        assert!(a.capacity() >= 2048);
        let s = p.stats();
        assert_eq!((s.hits, s.allocated, s.out_buffers), (0, 1, 1));
        let ptr = a.as_ptr();
        p.give(a);
        let s = p.stats();
        assert_eq!((s.cached, s.cached_buffers, s.out_buffers), (1, 1, 0));
        // 2048 is in class 11; a need of 2048 takes it.
        let b = p.take(2048, 2048, usize::MAX);
        assert_eq!(b.as_ptr(), ptr);
        assert_eq!(p.stats().hits, 1);
        // A need of 2049 cannot be served by class 11.
        p.give(b);
        let c = p.take(2049, 4096, usize::MAX);
        assert_ne!(c.as_ptr(), ptr);
        assert_eq!(p.stats().allocated, 2);
        p.give(c);
        p.trim();
        assert_eq!(p.stats().cached_bytes, 0);
    }

    /// The byte bound: buffers beyond POOL_MAX_BYTES (or larger than POOL_MAX_BUF) are
    /// freed, not cached.
    #[test]
    fn bounded() {
        let mut p = BufPool::new();
        p.give(Vec::with_capacity(POOL_MAX_BUF + 1));
        assert_eq!(p.stats().released, 1);
        let n = POOL_MAX_BYTES / POOL_MAX_BUF;
        for _ in 0..n + 1 {
            p.give(Vec::with_capacity(POOL_MAX_BUF));
        }
        let s = p.stats();
        assert_eq!((s.cached_buffers, s.released), (n as u64, 2));
        assert_eq!(s.cached_bytes as usize, POOL_MAX_BYTES);
        p.trim();
    }
}
