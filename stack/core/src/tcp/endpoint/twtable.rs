//! The shard's TIME-WAIT table: [`TimeWait`] records keyed by 4-tuple, bounded by
//! `tcp_max_tw_buckets`, expired lazily on lookup and in expiry order from a FIFO.
//!
//! Layout (the bound: at most 128 bytes per TIME-WAIT record, all structures included):
//! - `recs`: a dense array of 72-byte compact records (the 36-byte tuple of either family,
//!   sequence numbers, timestamps, times as u32 milliseconds from the table's epoch) with a
//!   free list;
//! - `map`: a hash table of record indices, hashed by the record's tuple (which is stored
//!   once, in the record): 4-byte buckets plus a control byte; hashbrown keeps it between
//!   7/16 and 7/8 full: 6-12 bytes per record;
//! - `fifo`: (index, expiry ms) in expiry order, 8 bytes per entry. Every record has one
//!   current entry (`TwRec::queued`). Records enter with the same 2*MSL, so expiries arrive
//!   in order; an entry that would go out of order (a record entering with an earlier
//!   expiry, a full connection closed late) is queued at the back's time instead: its
//!   memory is then held a little longer, while lookups still expire it on time. A restart
//!   (retransmitted FIN, RFC 9293 §3.10.7.4) queues a new entry; the old one, like the entry
//!   of a removed record, is skipped when it comes up. Stale entries are dropped by a
//!   compaction once the FIFO holds more than twice the records (plus 1024).
//!
//! So a record costs 72 + 6..12 + 8..16 (FIFO capacity) = 86-100 bytes: [`TwTable::bytes`]
//! reports the exact figure from the capacities.
//!
//! Times are u32 milliseconds from the table's epoch, compared with wrapping arithmetic:
//! valid for lifetimes below 24 days (TIME-WAIT is 2*MSL, `msl` <= 3600 s). Expiries and
//! the TS.Recent stamp round up to the millisecond: a record never expires early, and looks
//! younger (never older) to the `tcp_tw_reuse` one-second rule.

use std::collections::VecDeque;
use std::mem::size_of;

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::hash::{keyed_state, KeyedState};

use crate::tcp::timewait::{TimeWait, TimeWaitAction};
use crate::tcp::tuple::FourTuple;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};

const NS_PER_MS: u64 = 1_000_000;
const NIL: u32 = u32::MAX;

/// One record in 72 bytes.
#[derive(Debug, Clone, Copy)]
struct TwRec {
    tuple: FourTuple,
    snd_nxt: u32,
    rcv_nxt: u32,
    ts_recent: u32,
    ts_offset: u32,
    /// Milliseconds from the epoch (rounded up).
    ts_recent_at: u32,
    expiry: u32,
    /// `TimeWait::last_oow_ms` (the TIME-WAIT length, the same for every record of an
    /// endpoint, is the table's `len_ms`).
    last_oow_ms: u32,
    /// The FIFO time of this record's current entry; for a free slot, the next free index.
    queued: u32,
    window: u16,
    timestamps: bool,
    live: bool,
}

pub(super) struct TwTable {
    /// Record indices, hashed by their record's tuple with `hasher`.
    map: HashTable<u32>,
    /// Keyed (see `crate::hash`): remote peers choose these keys.
    hasher: KeyedState,
    recs: Vec<TwRec>,
    free: u32,
    fifo: VecDeque<(u32, u32)>,
    epoch: Instant,
    /// The FIFO back's time, unwrapped (milliseconds from the epoch).
    back_ms: u64,
    started: bool,
    /// The TIME-WAIT length (2*MSL) in ms: one per endpoint (its config is fixed), taken
    /// from the records inserted.
    len_ms: u32,
    live: usize,
    /// Records dropped because they expired (lazily or by `expire`).
    pub expired: u64,
}

/// What a segment for a 4-tuple comes to in the table (the verdict of
/// [`TimeWait::on_segment`], applied to the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TwArrival {
    /// No live record: the 4-tuple is not in TIME-WAIT (or just expired).
    NotFound,
    /// Send this ACK (a restarted 2*MSL and TS.Recent are written back).
    Ack(TcpRepr<'static>),
    /// Drop the segment; `rst`: it was a RST (RFC 1337).
    Drop { rst: bool },
    /// The ACK owed was not sent: `tcp_invalid_ratelimit` (Linux TCPACKSkippedTimeWait).
    AckSkipped,
    /// RFC 6191: the record is gone; the SYN may open a new connection, whose ISS must be
    /// above the old SND.NXT (`snd_nxt`, RFC 1122 §4.2.2.13).
    Reopen { snd_nxt: SeqNum },
    /// `tcp_rfc1337` = 0: a RST ended TIME-WAIT; the record is gone.
    Killed,
}

/// `a` is before `b` (wrapping u32 milliseconds).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TwTable {
    /// An empty table; the caller keeps `len()` below `tcp_max_tw_buckets` before `insert`.
    #[cfg(test)]
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// An empty table whose index is keyed with the secret `seed`.
    pub fn with_seed(seed: u64) -> Self {
        TwTable {
            map: HashTable::new(),
            hasher: keyed_state(seed),
            recs: Vec::new(),
            free: NIL,
            fifo: VecDeque::new(),
            epoch: Instant::ZERO,
            back_ms: 0,
            started: false,
            len_ms: 0,
            live: 0,
            expired: 0,
        }
    }

    /// Sets the epoch on the first call (before anything is inserted); no-op after.
    pub fn start(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            if self.live == 0 {
                self.epoch = now;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    /// Bytes the table holds (capacities of the three structures): the figure behind
    /// "memory per TIME-WAIT entry".
    pub fn bytes(&self) -> usize {
        let cap = self.map.capacity();
        // hashbrown: buckets = next power of two of cap * 8 / 7 (cap >= 8), each with a
        // control byte, plus a group of 16 trailing control bytes.
        let buckets = match cap {
            0 => 0,
            1..=3 => 4,
            4..=7 => 8,
            _ => (cap * 8 / 7).next_power_of_two(),
        };
        let map = if buckets == 0 {
            0
        } else {
            buckets * (size_of::<u32>() + 1) + 16
        };
        map + self.recs.capacity() * size_of::<TwRec>()
            + self.fifo.capacity() * size_of::<(u32, u32)>()
    }

    /// Milliseconds from the epoch, rounded up (wrapping).
    fn ms(&self, t: Instant) -> u32 {
        t.as_nanos()
            .saturating_sub(self.epoch.as_nanos())
            .div_ceil(NS_PER_MS) as u32
    }

    /// The instant of `ms`, read relative to `now` (within +-24 days of it).
    fn instant(&self, ms: u32, now: Instant) -> Instant {
        let now_ms = now.as_nanos().saturating_sub(self.epoch.as_nanos()) / NS_PER_MS;
        let d = ms.wrapping_sub(now_ms as u32) as i32 as i64;
        let at = (now_ms as i64 + d).max(0) as u64;
        Instant::from_nanos(self.epoch.as_nanos().saturating_add(at * NS_PER_MS))
    }

    /// Live records from record index `cursor` on, at most `max` of them (and at most
    /// `4 * max + 64` indices looked at): each as (4-tuple, time left), for a listing. Returns
    /// the index to continue from, `None` at the end. Read-only: an expired record not yet
    /// dropped is skipped, not removed.
    pub fn each_from(
        &self,
        now: Instant,
        cursor: usize,
        max: usize,
        mut f: impl FnMut(FourTuple, Duration),
    ) -> Option<usize> {
        let (mut i, mut taken) = (cursor, 0);
        let end = cursor.saturating_add(4 * max + 64);
        while i < self.recs.len() && taken < max && i < end {
            let r = &self.recs[i];
            i += 1;
            if !r.live {
                continue;
            }
            let expiry = self.instant(r.expiry, now);
            if now < expiry {
                f(r.tuple, expiry.saturating_since(now));
                taken += 1;
            }
        }
        (i < self.recs.len()).then_some(i)
    }

    /// Adds a record (replacing any for the same tuple); the caller checked the bound.
    pub fn insert(&mut self, tuple: FourTuple, rec: TimeWait) -> bool {
        self.remove(&tuple);
        self.len_ms = rec.length_ms();
        let r = TwRec {
            tuple,
            snd_nxt: rec.snd_nxt.0,
            rcv_nxt: rec.rcv_nxt.0,
            ts_recent: rec.ts_recent,
            ts_offset: rec.ts_offset,
            ts_recent_at: self.ms(rec.ts_recent_at),
            expiry: self.ms(rec.expiry),
            last_oow_ms: rec.last_oow_ms,
            queued: 0,
            window: rec.window,
            timestamps: rec.timestamps,
            live: true,
        };
        let idx = if self.free != NIL {
            let i = self.free;
            self.free = self.recs[i as usize].queued;
            self.recs[i as usize] = r;
            i
        } else {
            self.recs.push(r);
            (self.recs.len() - 1) as u32
        };
        self.live += 1;
        let (recs, hasher) = (&self.recs, &self.hasher);
        self.map.insert_unique(hasher.hash_one(tuple), idx, |&i| {
            hasher.hash_one(recs[i as usize].tuple)
        });
        self.enqueue(idx);
        true
    }

    /// Queues `idx`'s current entry at its expiry (or the back's time, to keep the order).
    fn enqueue(&mut self, idx: u32) {
        let mut at = self.recs[idx as usize].expiry;
        if let Some(&(_, back)) = self.fifo.back() {
            if before(at, back) {
                at = back;
            }
        }
        self.recs[idx as usize].queued = at;
        self.back_ms = self.unwrap(at);
        self.fifo.push_back((idx, at));
        if self.fifo.len() > 2 * self.live + 1024 {
            let recs = &self.recs;
            self.fifo
                .retain(|&(i, t)| recs[i as usize].live && recs[i as usize].queued == t);
        }
    }

    /// A record for `tuple` is held (expired or not: expiry is lazy).
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.find(tuple).is_some()
    }

    /// The live record for `tuple` (a copy), dropping it first if it has expired at `now`.
    /// A caller that changes it (`TimeWait::on_segment` restarting 2*MSL) writes it back with
    /// `update`.
    pub fn get(&mut self, tuple: &FourTuple, now: Instant) -> Option<TimeWait> {
        let idx = self.find(tuple)?;
        let r = self.recs[idx as usize];
        let expiry = self.instant(r.expiry, now);
        if now >= expiry {
            self.remove(tuple);
            self.expired += 1;
            return None;
        }
        let ts = r
            .timestamps
            .then(|| (r.ts_recent, self.instant(r.ts_recent_at, now), r.ts_offset));
        let mut tw = TimeWait::new(
            now,
            tuple.local_port,
            tuple.remote_port,
            SeqNum(r.snd_nxt),
            SeqNum(r.rcv_nxt),
            r.window,
            ts,
            Duration::from_millis(self.len_ms as u64),
        );
        tw.expiry = expiry;
        tw.last_oow_ms = r.last_oow_ms;
        Some(tw)
    }

    /// A segment for `tuple`: looks the record up, applies the TIME-WAIT rules
    /// (`TimeWait::on_segment`) and keeps the table in step (write back, remove).
    /// `may_reopen`: a listener would take a new SYN for the tuple. Without one (the client
    /// side of an active close, or the listener gone) a SYN that could reopen keeps the record
    /// and is answered with its ACK (Linux tcp_v4_rcv: TCP_TW_SYN without a listener falls
    /// through to TCP_TW_ACK), never with a RST from CLOSED.
    pub fn on_segment(
        &mut self,
        tuple: &FourTuple,
        now: Instant,
        seg: &TcpRepr<'_>,
        may_reopen: bool,
        invalid_ratelimit: Duration,
        rfc1337: bool,
    ) -> TwArrival {
        let Some(mut rec) = self.get(tuple, now) else {
            return TwArrival::NotFound;
        };
        match rec.on_segment(now, seg, rfc1337) {
            TimeWaitAction::Ack => {
                // A retransmitted FIN restarted 2*MSL and took TS.Recent.
                let allowed = rec.oow_ack_allowed(now, seg, invalid_ratelimit);
                self.update(tuple, &rec);
                if allowed {
                    TwArrival::Ack(rec.ack_segment(now))
                } else {
                    TwArrival::AckSkipped
                }
            }
            TimeWaitAction::Ignore => TwArrival::Drop {
                rst: seg.flags.rst(),
            },
            TimeWaitAction::AcceptNewSyn if !may_reopen => TwArrival::Ack(rec.ack_segment(now)),
            TimeWaitAction::AcceptNewSyn => {
                self.remove(tuple);
                TwArrival::Reopen {
                    snd_nxt: rec.snd_nxt,
                }
            }
            TimeWaitAction::Expire => {
                self.remove(tuple);
                self.expired += 1;
                TwArrival::NotFound
            }
            TimeWaitAction::Kill => {
                self.remove(tuple);
                TwArrival::Killed
            }
        }
    }

    /// Writes back a record read with `get` (TS.Recent and the expiry may have moved).
    pub fn update(&mut self, tuple: &FourTuple, rec: &TimeWait) {
        let Some(idx) = self.find(tuple) else {
            return;
        };
        let (expiry, at) = (self.ms(rec.expiry), self.ms(rec.ts_recent_at));
        let r = &mut self.recs[idx as usize];
        r.ts_recent = rec.ts_recent;
        r.ts_recent_at = at;
        r.last_oow_ms = rec.last_oow_ms;
        if r.expiry != expiry {
            r.expiry = expiry;
            self.enqueue(idx);
        }
    }

    /// The index of `tuple`'s record.
    fn find(&self, tuple: &FourTuple) -> Option<u32> {
        let recs = &self.recs;
        self.map
            .find(self.hasher.hash_one(tuple), |&i| {
                recs[i as usize].tuple == *tuple
            })
            .copied()
    }

    pub fn remove(&mut self, tuple: &FourTuple) -> Option<()> {
        let recs = &self.recs;
        let (idx, _) = self
            .map
            .find_entry(self.hasher.hash_one(tuple), |&i| {
                recs[i as usize].tuple == *tuple
            })
            .ok()?
            .remove();
        let r = &mut self.recs[idx as usize];
        r.live = false;
        r.queued = self.free;
        self.free = idx;
        self.live -= 1;
        if self.live == 0 {
            // Nothing left: give the memory back (a burst of TIME-WAIT is not kept for
            // ever), and the stale FIFO entries with it.
            self.map = HashTable::new();
            self.recs = Vec::new();
            self.fifo = VecDeque::new();
            self.free = NIL;
        }
        Some(())
    }

    /// Drops every record expired at `now`.
    pub fn expire(&mut self, now: Instant) {
        let now_ms = now.as_nanos().saturating_sub(self.epoch.as_nanos()) / NS_PER_MS;
        let now_ms = now_ms as u32;
        while let Some(&(idx, at)) = self.fifo.front() {
            if before(now_ms, at) {
                break;
            }
            self.fifo.pop_front();
            let r = self.recs[idx as usize];
            if !r.live || r.queued != at {
                continue; // stale: removed, restarted or replaced
            }
            if before(now_ms, r.expiry) {
                self.enqueue(idx); // queued before its expiry (should not happen): again
                continue;
            }
            self.remove(&r.tuple);
            self.expired += 1;
        }
    }

    /// When `expire` next has work (may be early, harmlessly).
    pub fn next_deadline(&self) -> Option<Instant> {
        let &(_, at) = self.fifo.front()?;
        let ms = self.unwrap(at);
        Some(Instant::from_nanos(
            self.epoch.as_nanos().saturating_add(ms * NS_PER_MS),
        ))
    }

    /// `at` as milliseconds from the epoch, unwrapped relative to the FIFO's back (every
    /// queued time is within 24 days of it).
    fn unwrap(&self, at: u32) -> u64 {
        let d = at.wrapping_sub(self.back_ms as u32) as i32 as i64;
        (self.back_ms as i64 + d).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4, SocketAddrV6};

    const TW: Duration = Duration::from_secs(60);

    fn tuple(port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), port),
        )
    }

    fn tuple6(port: u16) -> FourTuple {
        FourTuple::new_v6(
            SocketAddrV6::new("2001:2::1".parse().unwrap(), 80, 0, 0),
            SocketAddrV6::new("2001:2::2".parse().unwrap(), port, 0, 0),
        )
    }

    fn rec(now: Instant, port: u16) -> TimeWait {
        TimeWait::new(
            now,
            80,
            port,
            SeqNum(5000),
            SeqNum(9000),
            512,
            Some((777, now, 10)),
            TW,
        )
    }

    #[test]
    fn record_is_72_bytes() {
        assert_eq!(size_of::<TwRec>(), 72);
    }

    /// A record reads back as it went in (times to the millisecond) and expires at 2*MSL,
    /// by lookup or by `expire`.
    #[test]
    fn roundtrip_and_expiry() {
        let t0 = Instant::from_secs(100);
        let mut t = TwTable::new();
        t.start(t0);
        let r = rec(t0 + Duration::from_millis(5), 1);
        assert!(t.insert(tuple(1), r));
        let got = t.get(&tuple(1), t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(got.ack_segment(t0), r.ack_segment(t0));
        assert_eq!((got.expiry, got.ts_recent_at), (r.expiry, r.ts_recent_at));
        assert_eq!(t.next_deadline(), Some(r.expiry));
        t.expire(Instant::from_nanos(r.expiry.as_nanos() - 1_000_000));
        assert_eq!(t.len(), 1);
        t.expire(r.expiry);
        assert_eq!((t.len(), t.expired), (0, 1));
        assert!(t.get(&tuple(1), r.expiry).is_none());
    }

    /// A restart (retransmitted FIN) moves the expiry; the old FIFO entry is skipped.
    #[test]
    fn restart_requeues() {
        let t0 = Instant::from_secs(100);
        let mut t = TwTable::new();
        t.start(t0);
        t.insert(tuple(1), rec(t0, 1));
        t.insert(tuple(2), rec(t0 + Duration::from_secs(1), 2));
        let later = t0 + Duration::from_secs(30);
        let mut r = t.get(&tuple(1), later).unwrap();
        r.expiry = later + TW;
        t.update(&tuple(1), &r);
        t.expire(t0 + TW);
        assert_eq!(t.len(), 2, "tuple 1 was restarted");
        t.expire(t0 + TW + Duration::from_secs(1));
        assert_eq!(t.len(), 1, "tuple 2 expired");
        assert!(t
            .get(&tuple(1), later + Duration::from_millis(59_999))
            .is_some());
        t.expire(later + TW);
        assert_eq!(t.len(), 0);
    }

    /// Restarts (a peer retransmitting its FIN over and over) leave stale FIFO entries; the
    /// compaction keeps the FIFO at most 2 x records + 1024 long, and expiry stays right.
    #[test]
    fn fifo_is_bounded_under_restarts() {
        let t0 = Instant::from_secs(1);
        let mut t = TwTable::new();
        t.start(t0);
        t.insert(tuple(1), rec(t0, 1));
        let mut now = t0;
        for _ in 0..5000 {
            now += Duration::from_millis(3);
            let mut r = t.get(&tuple(1), now).unwrap();
            r.expiry = now + TW;
            t.update(&tuple(1), &r);
            assert!(t.fifo.len() <= 2 * t.len() + 1025, "{}", t.fifo.len());
        }
        t.expire(now + Duration::from_millis(59_999));
        assert_eq!(t.len(), 1, "not expired before its last restart's 2*MSL");
        t.expire(now + TW);
        assert_eq!(t.len(), 0);
    }

    /// Slots are reused; stale entries of removed records do not expire new ones early;
    /// the memory goes when the table empties.
    #[test]
    fn reuse_and_bytes() {
        let t0 = Instant::from_secs(1);
        let mut t = TwTable::new();
        t.start(t0);
        for p in 0..1000 {
            t.insert(tuple(p), rec(t0, p));
        }
        let per = t.bytes() / t.len();
        assert!((72..=128).contains(&per), "{per} bytes per record");
        t.remove(&tuple(5));
        let t1 = t0 + Duration::from_secs(10);
        t.insert(tuple(5000), rec(t1, 5000));
        assert_eq!(t.find(&tuple(5000)), Some(5), "free slot reused");
        t.expire(t0 + TW);
        assert_eq!(
            t.len(),
            1,
            "the stale entry of slot 5 did not expire the new record"
        );
        t.expire(t1 + TW);
        assert_eq!((t.len(), t.bytes()), (0, 0));
    }

    /// IPv6 records cost what IPv4 ones do (the tuple is 36 bytes for both families), and
    /// the families never meet: an IPv6 tuple is not found under its IPv4 look-alike.
    #[test]
    fn ipv6_records_within_128_bytes() {
        let t0 = Instant::from_secs(1);
        let mut t = TwTable::new();
        t.start(t0);
        for p in 0..1000 {
            t.insert(tuple6(p), rec(t0, p));
        }
        let per = t.bytes() / t.len();
        assert!((72..=128).contains(&per), "{per} bytes per record");
        assert!(t.get(&tuple(7), t0).is_none());
        assert_eq!(t.get(&tuple6(7), t0).unwrap().snd_nxt, SeqNum(5000));
        t.remove(&tuple6(7));
        assert!(t.get(&tuple6(7), t0).is_none());
        assert_eq!(t.len(), 999);
    }
}
