//! The shard's TIME-WAIT table: compact [`TimeWait`] records keyed by 4-tuple, bounded by
//! `tcp_max_tw_buckets`, expired lazily on lookup and by a timer wheel (1 ms tick, like the
//! connection timers) holding one entry per record.
//!
//! Memory bound: at most `max` records (48 bytes each plus the map entry) and one live wheel
//! entry per record (a removed record cancels its entry), so the wheel, sized to `max`,
//! never fills; its arena is at most 1.5x `max` entries of 32 bytes.

use rustc_hash::FxHashMap;

use super::timers::new_wheel;
use crate::tcp::timewait::TimeWait;
use crate::tcp::tuple::FourTuple;
use crate::time::Instant;
use crate::wheel::{TimerId, TimerWheel};

#[derive(Debug, Clone, Copy)]
pub(super) struct TwEntry {
    pub rec: TimeWait,
    /// This record's wheel entry.
    timer: TimerId,
}

pub(super) struct TwTable {
    map: FxHashMap<FourTuple, TwEntry>,
    wheel: TimerWheel<FourTuple>,
    max: usize,
    started: bool,
    /// Records dropped because they expired (lazily or by `expire`).
    pub expired: u64,
}

impl TwTable {
    /// A table for at most `max` records (the caller checks the bound before `insert`).
    pub fn new(max: usize) -> Self {
        TwTable {
            map: FxHashMap::default(),
            wheel: new_wheel(Instant::ZERO, max),
            max,
            started: false,
            expired: 0,
        }
    }

    /// Sets the wheel's start time on the first call (before anything is inserted); no-op
    /// after (see `ConnTimers::start`).
    pub fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            if self.map.is_empty() && self.wheel.next_expiry().is_none() {
                self.wheel = new_wheel(now, self.max);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Adds a record (replacing any for the same tuple); the caller checked the bound.
    /// Returns false, storing nothing, if the wheel is full (impossible while the caller
    /// keeps `len() < max`: then the caller treats it as a TIME-WAIT overflow).
    pub fn insert(&mut self, tuple: FourTuple, rec: TimeWait) -> bool {
        self.remove(&tuple);
        let Ok(timer) = self.wheel.arm(rec.expiry, tuple) else {
            debug_assert!(false, "TIME-WAIT wheel full below max_tw_buckets");
            return false;
        };
        self.map.insert(tuple, TwEntry { rec, timer });
        true
    }

    /// The live record for `tuple`, dropping it first if it has expired at `now`.
    pub fn get_mut(&mut self, tuple: &FourTuple, now: Instant) -> Option<&mut TimeWait> {
        if self.map.get(tuple).is_some_and(|e| now >= e.rec.expiry) {
            self.remove(tuple);
            self.expired += 1;
            return None;
        }
        self.map.get_mut(tuple).map(|e| &mut e.rec)
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<TimeWait> {
        let e = self.map.remove(tuple)?;
        self.wheel.cancel(e.timer);
        Some(e.rec)
    }

    /// Drops every record expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        while let Some((id, tuple)) = self.wheel.pop_expired(now) {
            let Some(e) = self.map.get_mut(&tuple) else {
                continue; // unreachable: removing a record cancels its entry
            };
            if e.timer != id {
                continue; // likewise: a replaced record's entry was cancelled
            }
            if e.rec.expiry <= now {
                self.map.remove(&tuple);
                self.expired += 1;
                continue;
            }
            // The 2MSL timer was restarted (retransmitted FIN): look again then. An entry
            // was just popped, so the wheel has room; if not, expire the record now.
            match self.wheel.arm(e.rec.expiry, tuple) {
                Ok(timer) => e.timer = timer,
                Err(_) => {
                    debug_assert!(false, "TIME-WAIT wheel full after a pop");
                    self.map.remove(&tuple);
                    self.expired += 1;
                }
            }
        }
    }

    /// When `expire` next has work (may be early, harmlessly).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_expiry()
    }
}
