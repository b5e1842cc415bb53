//! The per-worker hierarchical timer wheel (after tokio's `runtime/time/wheel`).
//!
//! Six levels of 64 slots; a slot of level `L` spans `64^L` ticks, so the wheel covers
//! `64^6 = 2^36` ticks ahead of its current tick (about 2.2 years at 1 ms). A timer sits
//! on the level of the highest 6-bit digit in which its deadline tick differs from the
//! wheel's current tick; each level keeps an `occupied: u64` bitmap so the next non-empty
//! slot is one `trailing_zeros` away. When the wheel reaches a slot above level 0 it
//! re-inserts (cascades) that slot's timers one or more levels down; level-0 slots hold
//! timers of exactly one tick, which then fire. Deadlines beyond the range wait on an
//! overflow list, re-sorted when the wheel reaches the `2^36`-tick epoch of the earliest
//! of them. Each step of a poll processes one non-empty slot, and a timer cascades at
//! most once per level, so even a far jump in time costs O(timers × levels).
//!
//! Single-threaded by design (one wheel per worker/shard): no atomics, no `unsafe`.
//! Timers live in a `Vec`-backed arena with a free list; slot lists are doubly linked
//! through arena indices, so `arm`, `cancel` and `reset` are O(1) and a cancelled timer
//! frees its entry at once (no tombstones waiting for their slot).
//!
//! # Time
//! Time is a parameter ([`Instant`]). Deadlines round UP to the tick and the current
//! time rounds DOWN, so a timer never fires before its deadline; if the wheel is polled
//! at every tick it fires less than one tick after it.
//!
//! # Memory bound
//! Each timer costs one arena entry: `size_of::<Entry<K>>()` = 32 bytes for keys of up
//! to 6 bytes and for 8-byte keys on 64-bit targets (e.g. 32 MB for 1M timers), plus a
//! fixed ~3.2 KB of list heads. The arena never holds more than `max_timers` entries
//! (fixed at construction, at most `u32::MAX - 1`); [`TimerWheel::arm`] fails with
//! [`WheelFull`] beyond it. The arena does not shrink.
//!
//! # Intended use: one entry per connection
//! A connection keeps its own fixed timer table (RTO, delayed ACK, persist, keepalive,
//! FIN-WAIT-2, 2MSL) and at most ONE wheel entry for its earliest deadline, remembering
//! `(TimerId, armed_deadline)`. When its earliest deadline changes to `d`:
//! - `d >= armed_deadline`: do nothing. The entry fires early for the connection, which
//!   then finds nothing due and arms again for its real earliest deadline. Pushing the
//!   RTO back on every ACK therefore costs no wheel operation at all.
//! - `d < armed_deadline`: [`TimerWheel::reset`] the entry to `d` (or arm if none).
//!
//! When the entry fires the `TimerId` is spent; the connection runs its due timers and
//! arms a new entry for its next deadline, if any. On close it cancels its entry.
//! [`TimerWheel::pop_expired`] hands out one key at a time so the worker can re-arm
//! between pops.

#[cfg(test)]
mod tests;

use crate::time::{Duration, Instant};

const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const LEVELS: usize = 6;
/// Ticks covered by the wheel: `64^6`.
const RANGE_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// List ids: `level * 64 + slot` for the wheel, then the ready and overflow lists.
const READY: u16 = (LEVELS * SLOTS) as u16;
const OVERFLOW: u16 = READY + 1;
const LIST_COUNT: usize = OVERFLOW as usize + 1;
/// `Entry::list` of an entry on the free list.
const FREE: u16 = u16::MAX;
const NIL: u32 = u32::MAX;

/// Handle of an armed timer. Stale handles (after the timer fired or was cancelled) are
/// recognised by a per-entry generation; a handle is only confused with a new timer
/// after its arena entry has been reused 2^32 times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    gen: u32,
}

/// [`TimerWheel::arm`] failed: the wheel already holds `max_timers` timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timer wheel full")]
pub struct WheelFull;

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

struct Entry<K> {
    /// Deadline in ticks, rounded up.
    tick: u64,
    next: u32,
    prev: u32,
    gen: u32,
    /// Which list the entry is on, or `FREE`.
    list: u16,
    key: K,
}

/// A hierarchical timer wheel holding up to `max_timers` timers keyed by `K`.
pub struct TimerWheel<K: Copy> {
    tick_ns: u64,
    /// The wheel's current tick: every timer with a deadline tick `<= elapsed` is on the
    /// ready list; every other one is on the level given by `list_for`.
    elapsed: u64,
    occupied: [u64; LEVELS],
    lists: [List; LIST_COUNT],
    entries: Vec<Entry<K>>,
    free_head: u32,
    /// A lower bound on the overflow list's deadline ticks (exact after each re-sort;
    /// a cancel may leave it low, which only causes an early re-sort).
    overflow_min: u64,
    len: usize,
    max_timers: usize,
}

impl<K: Copy> TimerWheel<K> {
    /// A wheel whose current time is `now`, with the given tick, holding at most
    /// `max_timers` timers. Panics if `tick` is zero or not below 2^64 ns, or if
    /// `max_timers >= u32::MAX` (configuration errors, never network input).
    pub fn new(now: Instant, tick: Duration, max_timers: usize) -> Self {
        let tick_ns = u64::try_from(tick.as_nanos()).expect("tick below 2^64 ns");
        assert!(tick_ns > 0, "timer wheel tick must be positive");
        assert!(
            max_timers < NIL as usize,
            "max_timers must be below u32::MAX"
        );
        TimerWheel {
            tick_ns,
            elapsed: now.as_nanos() / tick_ns,
            occupied: [0; LEVELS],
            lists: [EMPTY; LIST_COUNT],
            entries: Vec::new(),
            free_head: NIL,
            overflow_min: u64::MAX,
            len: 0,
            max_timers,
        }
    }

    /// Pre-allocates arena entries for `n` more timers (capped at `max_timers`) so that
    /// arming does not allocate.
    pub fn reserve(&mut self, n: usize) {
        let want = self.len.saturating_add(n).min(self.max_timers);
        self.entries
            .reserve_exact(want.saturating_sub(self.entries.len()));
    }

    /// Number of armed timers (including those due but not yet popped).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn tick(&self) -> Duration {
        Duration::from_nanos(self.tick_ns)
    }

    /// The wheel's current time, rounded down to its tick.
    pub fn now(&self) -> Instant {
        self.instant_of(self.elapsed)
    }

    /// Arms a timer that fires at or after `deadline` (rounded up to the tick). A
    /// deadline that is not after the wheel's current tick fires on the next poll. O(1).
    pub fn arm(&mut self, deadline: Instant, key: K) -> Result<TimerId, WheelFull> {
        let tick = self.tick_ceil(deadline);
        let index = if self.free_head != NIL {
            let index = self.free_head;
            let e = &mut self.entries[index as usize];
            self.free_head = e.next;
            e.tick = tick;
            e.key = key;
            index
        } else {
            if self.entries.len() >= self.max_timers {
                return Err(WheelFull);
            }
            if self.entries.len() == self.entries.capacity() {
                // Grow by doubling but never past the bound.
                let add = self.entries.len().max(64);
                self.reserve(add);
            }
            self.entries.push(Entry {
                tick,
                next: NIL,
                prev: NIL,
                gen: 0,
                list: FREE,
                key,
            });
            (self.entries.len() - 1) as u32
        };
        self.link(index);
        self.len += 1;
        Ok(TimerId {
            index,
            gen: self.entries[index as usize].gen,
        })
    }

    /// Cancels an armed timer. Returns false (and does nothing) if `id` already fired or
    /// was cancelled. O(1).
    pub fn cancel(&mut self, id: TimerId) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.unlink(id.index);
        self.release(id.index);
        true
    }

    /// Moves an armed timer to a new deadline, keeping its `TimerId`. Returns false if
    /// `id` already fired or was cancelled. O(1).
    pub fn reset(&mut self, id: TimerId, deadline: Instant) -> bool {
        if !self.is_live(id) {
            return false;
        }
        self.unlink(id.index);
        self.entries[id.index as usize].tick = self.tick_ceil(deadline);
        self.link(id.index);
        true
    }

    /// The deadline of an armed timer, rounded up to the tick; `None` if not armed.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.is_live(id)
            .then(|| self.instant_of(self.entries[id.index as usize].tick))
    }

    /// The earliest time at which [`Self::pop_expired`] has work to do: no timer fires
    /// before it, and it is never later than the earliest deadline rounded up to the
    /// tick (it may be earlier, when the wheel only has to cascade). `None` if empty.
    /// O(levels). The worker's cheap "anything due?" check is
    /// `next_expiry().is_some_and(|t| t <= now)`.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.lists[READY as usize].head != NIL {
            return Some(self.now());
        }
        self.next_expiration()
            .map(|(tick, _)| self.instant_of(tick))
    }

    /// Advances the wheel to `now` and returns one timer whose deadline is `<= now`, or
    /// `None` once none is left. Timers come out in order of their deadline tick (FIFO
    /// within a tick; a timer armed already-due comes out on the next call). The
    /// returned `TimerId` is spent. Time going backwards is ignored.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, K)> {
        let target = now.as_nanos() / self.tick_ns;
        loop {
            let head = self.lists[READY as usize].head;
            if head != NIL {
                self.unlink(head);
                let e = &self.entries[head as usize];
                let fired = (
                    TimerId {
                        index: head,
                        gen: e.gen,
                    },
                    e.key,
                );
                self.release(head);
                return Some(fired);
            }
            match self.next_expiration() {
                Some((tick, list)) if tick <= target => {
                    self.elapsed = tick;
                    self.cascade(list);
                }
                _ => {
                    self.elapsed = self.elapsed.max(target);
                    return None;
                }
            }
        }
    }

    /// Fires every timer due at `now`, calling `f` with each key; returns how many.
    pub fn poll_expired(&mut self, now: Instant, mut f: impl FnMut(K)) -> usize {
        let mut n = 0;
        while let Some((_, key)) = self.pop_expired(now) {
            f(key);
            n += 1;
        }
        n
    }

    fn tick_ceil(&self, t: Instant) -> u64 {
        let ns = t.as_nanos();
        ns / self.tick_ns + u64::from(!ns.is_multiple_of(self.tick_ns))
    }

    fn instant_of(&self, tick: u64) -> Instant {
        Instant::from_nanos(tick.saturating_mul(self.tick_ns))
    }

    fn is_live(&self, id: TimerId) -> bool {
        self.entries
            .get(id.index as usize)
            .is_some_and(|e| e.gen == id.gen && e.list != FREE)
    }

    /// The list for a deadline tick, relative to the current tick.
    fn list_for(&self, tick: u64) -> u16 {
        if tick <= self.elapsed {
            return READY;
        }
        let diff = self.elapsed ^ tick;
        if diff >> RANGE_BITS != 0 {
            return OVERFLOW;
        }
        // Highest differing 6-bit digit; `| 63` makes digit 0 the floor.
        let level = (63 - (diff | (SLOTS as u64 - 1)).leading_zeros()) / SLOT_BITS;
        let slot = (tick >> (level * SLOT_BITS)) & (SLOTS as u64 - 1);
        (level as usize * SLOTS + slot as usize) as u16
    }

    /// The next wheel slot (or overflow re-sort) to process: `(tick, list)`.
    ///
    /// Invariant: a timer on level `L` has a deadline whose digits above `L` equal those
    /// of `elapsed` and whose digit `L` is greater, so only slots above the current
    /// digit can be occupied, and the lowest occupied level holds the earliest slot.
    fn next_expiration(&self) -> Option<(u64, u16)> {
        for (level, &occupied) in self.occupied.iter().enumerate() {
            if occupied == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let digit = (self.elapsed >> shift) & (SLOTS as u64 - 1);
            let above = u64::MAX.checked_shl(digit as u32 + 1).unwrap_or(0);
            debug_assert_eq!(occupied & !above, 0, "timer wheel slot behind its time");
            let slot = u64::from((occupied & above).trailing_zeros());
            let level_start = self.elapsed & !((1u64 << (shift + SLOT_BITS)) - 1);
            let tick = level_start + (slot << shift);
            return Some((tick, (level * SLOTS) as u16 + slot as u16));
        }
        if self.lists[OVERFLOW as usize].head != NIL {
            // The start of the earliest overflow deadline's epoch: it lies after
            // `elapsed`, since an overflow deadline differs from it above bit 36.
            let tick = self.overflow_min & !((1u64 << RANGE_BITS) - 1);
            debug_assert!(tick > self.elapsed);
            return Some((tick, OVERFLOW));
        }
        None
    }

    /// Re-inserts every timer of `list` relative to the (just advanced) current tick:
    /// down a level, onto the ready list, or (overflow) back onto the overflow list.
    fn cascade(&mut self, list: u16) {
        let mut index = self.lists[list as usize].head;
        self.lists[list as usize] = EMPTY;
        if list < READY {
            self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
        }
        while index != NIL {
            let next = self.entries[index as usize].next;
            self.link(index);
            index = next;
        }
    }

    /// Appends an unlinked entry to the list for its deadline.
    fn link(&mut self, index: u32) {
        let list = self.list_for(self.entries[index as usize].tick);
        let tail = self.lists[list as usize].tail;
        let e = &mut self.entries[index as usize];
        e.list = list;
        e.next = NIL;
        e.prev = tail;
        if tail == NIL {
            self.lists[list as usize].head = index;
        } else {
            self.entries[tail as usize].next = index;
        }
        self.lists[list as usize].tail = index;
        if list < READY {
            self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
        } else if list == OVERFLOW {
            let tick = self.entries[index as usize].tick;
            // A fresh list forgets the bound left by cancelled entries.
            self.overflow_min = if tail == NIL {
                tick
            } else {
                self.overflow_min.min(tick)
            };
        }
    }

    fn unlink(&mut self, index: u32) {
        let e = &self.entries[index as usize];
        let (list, prev, next) = (e.list as usize, e.prev, e.next);
        if prev == NIL {
            self.lists[list].head = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next == NIL {
            self.lists[list].tail = prev;
        } else {
            self.entries[next as usize].prev = prev;
        }
        if self.lists[list].head == NIL && list < READY as usize {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
    }

    /// Returns an unlinked entry to the free list, invalidating its `TimerId`s.
    fn release(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        e.gen = e.gen.wrapping_add(1);
        e.list = FREE;
        e.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
    }
}
