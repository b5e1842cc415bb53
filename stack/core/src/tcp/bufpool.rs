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
//! (`released`); a request the cache cannot serve is allocated (`allocated`). So the cache
//! is never a limit on connections (their own bound is `tcp_rmem` / `tcp_wmem` each, and all
//! of them together are bounded by the accounting below), only a cache: steady traffic
//! whose working set of buffers fits in it runs allocation-free.
//!
//! Memory accounting (Linux's `tcp_mem`, `__sk_mem_raise_allocated`): the pool is also the
//! endpoint's memory accountant. Charged = the capacity of every ring buffer lent out
//! (receive data in order, send data) + the out-of-order chunks (reassembly.rs: their
//! capacity plus [`OOO_CHUNK_OVERHEAD`] each). Against [`MemLimits`] (`tcp_mem`, in pages,
//! per endpoint = per worker):
//! - out-of-order data may only be held while the endpoint is not under pressure and the
//!   charge stays within `pressure` ([`BufPool::admit_ooo`]): so a flood of out-of-order
//!   segments, which the peer can send for free, cannot take the band between `pressure` and
//!   `high` that in-order data and send buffers need (Linux lets out-of-order data grow like
//!   any receive data and prunes it under pressure; we never let it in);
//! - above `pressure` the endpoint enters memory pressure, and leaves it below `low`
//!   (counted: `mem_pressure_entered`). Under pressure a buffer may grow only while it stays
//!   within [`PRESSURE_FLOOR`] (Linux: `sysctl_rmem[0]` / `sysctl_wmem[0]`), receivers clamp
//!   the window they open (receiver.rs) and prune their out-of-order queue when memory for
//!   arriving data is refused (reassembly.rs);
//! - above `high` nothing may grow, except the forced grants that keep a connection from
//!   deadlocking: one segment of in-order data into an empty receive buffer and one
//!   minimum-sized (2 KiB) buffer for an empty send buffer (Linux:
//!   `sk_forced_mem_schedule` for an empty receive queue / the first skb of a write).
//!
//! So the charged memory stays below `high` plus at most one forced grant per connection.
//!
//! A ring dropped without the pool (a connection dropped by its owner) frees its storage to
//! the allocator; the endpoint hands a connection's buffers back
//! (`Connection::release_buffers`) when it frees it, so the gauges stay exact.

/// Cached buffer capacity per pool at most (16 MiB).
pub const POOL_MAX_BYTES: usize = 16 << 20;
/// Largest buffer the pool caches (4 MiB); larger ones go back to the allocator.
pub const POOL_MAX_BUF: usize = 4 << 20;
/// Bytes per `tcp_mem` page (Linux on x86-64).
pub const PAGE: u64 = 4096;
/// Under memory pressure a buffer may still grow up to this many bytes (Linux lets a
/// socket below `tcp_rmem[0]` / `tcp_wmem[0]` allocate; ours is larger so that the
/// receive window clamped under pressure, 4 segments at most 8 KiB, fits its ring).
pub const PRESSURE_FLOOR: usize = 16 << 10;
/// Charged per out-of-order chunk beside its bytes (its range, the deque header and the
/// allocator's own overhead), so many tiny chunks cost what they really cost.
pub const OOO_CHUNK_OVERHEAD: usize = 64;
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
    /// Gauge: bytes charged for out-of-order data (chunk capacity + overhead).
    pub ooo_bytes: u64,
    /// Gauge: 1 while the endpoint is under memory pressure (`tcp_mem`).
    pub mem_pressure: u64,
    /// Times the endpoint entered memory pressure (Linux `TCPMemoryPressures`).
    pub mem_pressure_entered: u64,
    /// Out-of-order queues pruned (Linux `OfoPruned`).
    pub ofo_pruned: u64,
    /// Bytes those prunings dropped.
    pub ofo_pruned_bytes: u64,
    /// In-order data segments dropped for lack of memory (Linux `TCPRcvQDrop`).
    pub rcvq_mem_drops: u64,
    /// Out-of-order data segments not held for lack of memory (Linux `TCPOFODrop`).
    pub ofo_mem_drops: u64,
    /// `send` calls that took less than the send buffer had room for because of `tcp_mem`.
    pub snd_mem_limited: u64,
}

/// `tcp_mem` in bytes: low / pressure / high (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemLimits {
    /// Below this, memory pressure ends.
    pub low: u64,
    /// Above this, memory pressure begins (windows clamped, buffers stop growing, out-of-order
    /// data no longer held).
    pub pressure: u64,
    /// Nothing grows above this except the forced grants that prevent deadlock.
    pub high: u64,
}

impl MemLimits {
    /// From `tcp_mem` page counts.
    pub fn from_pages(p: [u64; 3]) -> MemLimits {
        MemLimits {
            low: p[0] * PAGE,
            pressure: p[1] * PAGE,
            high: p[2] * PAGE,
        }
    }

    /// No limit (tests of other things; `BufPool::new`).
    pub const UNLIMITED: MemLimits = MemLimits {
        low: u64::MAX,
        pressure: u64::MAX,
        high: u64::MAX,
    };
}

/// One endpoint's buffer cache (see the module docs).
pub(crate) struct BufPool {
    free: [Vec<Vec<u8>>; CLASSES],
    stats: PoolStats,
    limits: MemLimits,
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
    /// An empty pool (allocates nothing) without a memory limit.
    pub const fn new() -> BufPool {
        BufPool::with_limits(MemLimits::UNLIMITED)
    }

    /// An empty pool charging against `limits` (`tcp_mem`).
    pub const fn with_limits(limits: MemLimits) -> BufPool {
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
                ooo_bytes: 0,
                mem_pressure: 0,
                mem_pressure_entered: 0,
                ofo_pruned: 0,
                ofo_pruned_bytes: 0,
                rcvq_mem_drops: 0,
                ofo_mem_drops: 0,
                snd_mem_limited: 0,
            },
            limits,
        }
    }

    /// Bytes charged now: ring buffers lent out plus out-of-order chunks.
    pub fn charged(&self) -> u64 {
        self.stats.out_bytes + self.stats.ooo_bytes
    }

    /// The charge is above `high` (Linux `sk_memory_allocated > sysctl_mem[2]`, as
    /// `tcp_out_of_memory` tests it): only forced grants get it there.
    pub(crate) fn above_high(&self) -> bool {
        self.charged() > self.limits.high
    }

    /// Under memory pressure (entered above `pressure`, left below `low`).
    pub fn under_pressure(&self) -> bool {
        self.stats.mem_pressure != 0
    }

    /// May a buffer grow by `extra` bytes to `own_after` bytes? (Linux
    /// `__sk_mem_raise_allocated`: never above `high`; under pressure only a buffer still
    /// within the floor.)
    pub(crate) fn admit(&self, extra: usize, own_after: usize) -> bool {
        let after = self.charged().saturating_add(extra as u64);
        after <= self.limits.high && (!self.under_pressure() || own_after <= PRESSURE_FLOOR)
    }

    /// May out-of-order data take `extra` bytes more? (Module docs: only below `pressure`.)
    pub(crate) fn admit_ooo(&self, extra: usize) -> bool {
        !self.under_pressure()
            && self.charged().saturating_add(extra as u64) <= self.limits.pressure
    }

    /// Enter or leave memory pressure after the charge changed (`take` leaves it to the
    /// caller, which gives the old buffer back first: a growth is not a pressure event).
    pub(crate) fn update_pressure(&mut self) {
        let c = self.charged();
        let st = &mut self.stats;
        if st.mem_pressure == 0 && c > self.limits.pressure {
            st.mem_pressure = 1;
            st.mem_pressure_entered += 1;
        } else if st.mem_pressure != 0 && c < self.limits.low {
            st.mem_pressure = 0;
        }
    }

    /// Out-of-order chunks now hold `new` bytes where they held `old` (reassembly.rs).
    pub(crate) fn recharge_ooo(&mut self, old: usize, new: usize) {
        let st = &mut self.stats;
        st.ooo_bytes = (st.ooo_bytes + new as u64).saturating_sub(old as u64);
        self.update_pressure();
    }

    /// Counters the connections bump (memory drops and prunes).
    pub(crate) fn counters(&mut self) -> &mut PoolStats {
        &mut self.stats
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
        self.update_pressure();
        let st = &mut self.stats;
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

    /// `tcp_mem`: pressure is entered above `pressure` and left only below `low`; under
    /// pressure a buffer grows only within the floor; nothing grows above `high`.
    #[test]
    fn tcp_mem_pressure_hysteresis_and_admission() {
        let mut p = BufPool::with_limits(MemLimits::from_pages([4, 8, 16]));
        let a = p.take(8 * 4096, 8 * 4096, usize::MAX);
        assert!(!p.under_pressure(), "at pressure, not above");
        assert!(p.admit(32 << 10, 32 << 10), "up to high exactly");
        p.recharge_ooo(0, 100);
        assert!(p.under_pressure());
        assert_eq!(p.stats().mem_pressure_entered, 1);
        assert!(p.admit(PRESSURE_FLOOR, PRESSURE_FLOOR), "within the floor");
        assert!(
            !p.admit(PRESSURE_FLOOR + 1, PRESSURE_FLOOR + 1),
            "beyond it"
        );
        assert!(!p.admit(8 * 4096, 100), "above high");
        p.recharge_ooo(100, 0);
        assert!(p.under_pressure(), "below pressure but not below low");
        p.give(a);
        assert!(!p.under_pressure(), "below low: left");
        assert_eq!(p.charged(), 0);
        p.trim();
    }
}
