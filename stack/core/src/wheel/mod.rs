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
//! Timers live in a `Vec`-backed arena with a free list; slot lists are singly linked
//! through arena indices and pushed at the head, so `arm` writes only its own entry and
//! the list head. Cancellation is lazy: `cancel` marks the entry dead (one entry touched,
//! which at 1M timers is one cache miss instead of three for a doubly linked unlink),
//! and the entry is reclaimed when the wheel reaches its slot, or by one sequential sweep
//! of the arena when it is full (amortised O(1): a sweep reclaims at least
//! `max_timers / 2` entries).
//!
//! # Time
//! Time is a parameter ([`Instant`]). Deadlines round UP to the tick and the current
//! time rounds DOWN, so a timer never fires before its deadline; if the wheel is polled
//! at every tick it fires less than one tick after it.
//!
//! # Memory bound
//! At most `max_timers` timers are armed at once ([`TimerWheel::arm`] fails with
//! [`WheelFull`] beyond; fixed at construction, below `2^32 / 1.5`). The arena holds
//! live and cancelled-not-yet-reclaimed entries and never exceeds `1.5 * max_timers + 1`
//! entries of `size_of::<Entry<K>>()` = 24 bytes for keys of up to 4 bytes, 32 bytes
//! for 8-byte keys: at most 36 MB for 1M `u32`-keyed timers, plus ~1.6 KB of list
//! heads. The arena does not shrink.
//!
//! # Intended use: one entry per connection
//! A connection keeps its own fixed timer table (RTO, delayed ACK, persist, keepalive,
//! FIN-WAIT-2, 2MSL) and at most ONE wheel entry for its earliest deadline, remembering
//! `(TimerId, armed_deadline)`. When its earliest deadline changes to `d`:
//! - `d >= armed_deadline`: do nothing. The entry fires early for the connection, which
//!   then finds nothing due and arms again for its real earliest deadline. Pushing the
//!   RTO back on every ACK therefore costs no wheel operation at all.
//! - `d < armed_deadline`: cancel the entry and arm a new one at `d`.
//!
//! When the entry fires the `TimerId` is spent; the connection runs its due timers and
//! arms a new entry for its next deadline, if any. On close it cancels its entry.
//! [`TimerWheel::pop_expired`] hands out one key at a time so the worker can re-arm
//! between pops. Within one tick the firing order is unspecified (but deterministic).

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
const LIVE: u8 = 0;
/// Cancelled, still on a wheel list until reclaimed.
const DEAD: u8 = 1;
/// On the free list.
const FREE: u8 = 2;
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

struct Entry<K> {
    /// Deadline in ticks, rounded up.
    tick: u64,
    next: u32,
    gen: u32,
    state: u8,
    key: K,
}

/// A hierarchical timer wheel holding up to `max_timers` timers keyed by `K`.
pub struct TimerWheel<K: Copy> {
    tick_ns: u64,
    /// The wheel's current tick: every timer with a deadline tick `<= elapsed` is on the
    /// ready list; every other one is on the level given by `list_for`.
    elapsed: u64,
    occupied: [u64; LEVELS],
    /// Head of each singly linked list (`NIL` if empty).
    lists: [u32; LIST_COUNT],
    entries: Vec<Entry<K>>,
    free_head: u32,
    /// A lower bound on the overflow list's deadline ticks (exact after each re-sort;
    /// a cancel may leave it low, which only causes an early re-sort).
    overflow_min: u64,
    /// Live timers.
    len: usize,
    /// Cancelled entries not yet reclaimed.
    dead: usize,
    max_timers: usize,
}

impl<K: Copy> TimerWheel<K> {
    /// A wheel whose current time is `now`, with the given tick, holding at most
    /// `max_timers` timers. Panics if `tick` is zero or not below 2^64 ns, or if
    /// `max_timers >= 2^32 / 1.5` (configuration errors, never network input).
    pub fn new(now: Instant, tick: Duration, max_timers: usize) -> Self {
        let tick_ns = u64::try_from(tick.as_nanos()).expect("tick below 2^64 ns");
        assert!(tick_ns > 0, "timer wheel tick must be positive");
        assert!(
            max_timers < (NIL / 3 * 2) as usize,
            "max_timers must be below 2^32 / 1.5"
        );
        TimerWheel {
            tick_ns,
            elapsed: now.as_nanos() / tick_ns,
            occupied: [0; LEVELS],
            lists: [NIL; LIST_COUNT],
            entries: Vec::new(),
            free_head: NIL,
            overflow_min: u64::MAX,
            len: 0,
            dead: 0,
            max_timers,
        }
    }

    /// Pre-allocates arena entries for `n` more timers (capped at the arena bound) so
    /// that arming does not allocate.
    pub fn reserve(&mut self, n: usize) {
        let want = self.len.saturating_add(n).min(self.arena_limit());
        self.entries
            .reserve_exact(want.saturating_sub(self.entries.len()));
    }

    /// Number of armed timers (including those due but not yet popped).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick (slot width of level 0) fixed at construction: deadlines round up to it.
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
        if self.len >= self.max_timers {
            return Err(WheelFull);
        }
        let tick = self.tick_ceil(deadline);
        if self.free_head == NIL && self.entries.len() >= self.arena_limit() {
            // Full of live and dead entries, and at least half of max_timers are dead.
            self.sweep();
        }
        let index = if self.free_head != NIL {
            let index = self.free_head;
            let e = &mut self.entries[index as usize];
            self.free_head = e.next;
            e.tick = tick;
            e.key = key;
            index
        } else {
            if self.entries.len() == self.entries.capacity() {
                // Grow by doubling but never past the bound.
                let add = self.entries.len().max(64);
                self.reserve(add);
            }
            self.entries.push(Entry {
                tick,
                next: NIL,
                gen: 0,
                state: FREE,
                key,
            });
            (self.entries.len() - 1) as u32
        };
        self.entries[index as usize].state = LIVE;
        self.link(index);
        self.len += 1;
        Ok(TimerId {
            index,
            gen: self.entries[index as usize].gen,
        })
    }

    /// Cancels an armed timer. Returns false (and does nothing) if `id` already fired or
    /// was cancelled. O(1): marks the entry dead; it is reclaimed later.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        let Some(e) = self.entries.get_mut(id.index as usize) else {
            return false;
        };
        if e.gen != id.gen || e.state != LIVE {
            return false;
        }
        e.state = DEAD;
        e.gen = e.gen.wrapping_add(1);
        self.len -= 1;
        self.dead += 1;
        true
    }

    /// The deadline of an armed timer, rounded up to the tick; `None` if not armed.
    pub fn deadline(&self, id: TimerId) -> Option<Instant> {
        self.is_live(id)
            .then(|| self.instant_of(self.entries[id.index as usize].tick))
    }

    /// The earliest time at which [`Self::pop_expired`] has work to do: no timer fires
    /// before it, and it is never later than the earliest deadline rounded up to the
    /// tick (it may be earlier, when the wheel only has to cascade or reclaim cancelled
    /// entries). `None` if nothing, not even a cancelled entry, is left on the wheel.
    /// O(levels). The worker's cheap "anything due?" check is
    /// `next_expiry().is_some_and(|t| t <= now)`.
    pub fn next_expiry(&self) -> Option<Instant> {
        if self.lists[READY as usize] != NIL {
            return Some(self.now());
        }
        self.next_expiration()
            .map(|(tick, _)| self.instant_of(tick))
    }

    /// Advances the wheel to `now` and returns one timer whose deadline is `<= now`, or
    /// `None` once none is left. Timers come out in order of their deadline tick (in an
    /// unspecified order within a tick; a timer armed already-due comes out on the next
    /// call). The
    /// returned `TimerId` is spent. Time going backwards is ignored.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, K)> {
        let target = now.as_nanos() / self.tick_ns;
        loop {
            let head = self.lists[READY as usize];
            if head != NIL {
                let e = &self.entries[head as usize];
                self.lists[READY as usize] = e.next;
                let fired = (e.state == LIVE).then_some((
                    TimerId {
                        index: head,
                        gen: e.gen,
                    },
                    e.key,
                ));
                self.release(head);
                if fired.is_some() {
                    return fired;
                }
                continue;
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
            .is_some_and(|e| e.gen == id.gen && e.state == LIVE)
    }

    fn arena_limit(&self) -> usize {
        self.max_timers + self.max_timers / 2 + 1
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
        if self.lists[OVERFLOW as usize] != NIL {
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
    /// Cancelled entries are reclaimed on the way.
    fn cascade(&mut self, list: u16) {
        let mut index = self.lists[list as usize];
        self.lists[list as usize] = NIL;
        if list < READY {
            self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
        }
        while index != NIL {
            let next = self.entries[index as usize].next;
            if self.entries[index as usize].state == LIVE {
                self.link(index);
            } else {
                self.release(index);
            }
            index = next;
        }
    }

    /// Reclaims every cancelled entry by rebuilding all lists in one sequential pass
    /// over the arena (relinking live entries relative to the current tick, which keeps
    /// the level invariant). O(arena); only called when the arena is at its bound, so at
    /// least `max_timers / 2` entries are dead and the cost is amortised O(1) per cancel.
    fn sweep(&mut self) {
        self.lists = [NIL; LIST_COUNT];
        self.occupied = [0; LEVELS];
        self.free_head = NIL;
        for index in 0..self.entries.len() as u32 {
            match self.entries[index as usize].state {
                LIVE => self.link(index),
                DEAD => self.release(index),
                _ => {
                    self.entries[index as usize].next = self.free_head;
                    self.free_head = index;
                }
            }
        }
        debug_assert_eq!(self.dead, 0);
    }

    /// Pushes an entry onto the head of the list for its deadline.
    fn link(&mut self, index: u32) {
        let tick = self.entries[index as usize].tick;
        let list = self.list_for(tick);
        let head = self.lists[list as usize];
        self.entries[index as usize].next = head;
        self.lists[list as usize] = index;
        if list < READY {
            self.occupied[list as usize / SLOTS] |= 1 << (list as usize % SLOTS);
        } else if list == OVERFLOW {
            // A fresh list forgets the bound left by cancelled entries.
            self.overflow_min = if head == NIL {
                tick
            } else {
                self.overflow_min.min(tick)
            };
        }
    }

    /// Returns an entry taken off its list to the free list. A live entry (it fired)
    /// gets a new generation, spending its `TimerId`; a dead one already has one.
    fn release(&mut self, index: u32) {
        let e = &mut self.entries[index as usize];
        if e.state == LIVE {
            e.gen = e.gen.wrapping_add(1);
            self.len -= 1;
        } else {
            self.dead -= 1;
        }
        e.state = FREE;
        e.next = self.free_head;
        self.free_head = index;
    }
}
