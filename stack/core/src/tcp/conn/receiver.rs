//! The receiving half: RCV.NXT / RCV.WND (RFC 9293 §3.3.1), the bounded receive buffer with
//! out-of-order reassembly, the advertised window (receiver SWS avoidance, RFC 9293
//! §3.8.6.2.2; RFC 7323 §2.4 scaling) and the ACK policy state (delack.rs).
//!
//! Buffers: a ring (ring.rs) of at most `cap` (= `cfg.rmem`) bytes holds the in-order data
//! not yet read; out-of-order data is held in chunks of its own size (reassembly.rs), moved
//! into the ring when RCV.NXT reaches it. So an in-order segment is copied once, a far
//! out-of-order byte costs a byte (not the span from RCV.NXT), and held bytes are never
//! overwritten by a retransmission.
//!
//! Memory (`tcp_mem`, bufpool.rs): every growth is admitted by the endpoint's accountant.
//! In-order text that does not fit is dropped (`rcvq_mem_drops`) after pruning the
//! out-of-order queue, except one segment into an empty ring (Linux tcp_data_queue's
//! `sk_forced_mem_schedule`), so a connection always progresses; out-of-order text that does
//! not fit (out-of-order data is held only below `tcp_mem` PRESSURE) prunes the queue from
//! its highest range above it down and is dropped if still refused (`ofo_mem_drops`; Linux
//! tcp_data_queue_ofo / tcp_prune_ofo_queue). Under memory pressure
//! the window we open is clamped to 4 segments (at most 8 KiB; Linux __tcp_select_window
//! clamps rcv_ssthresh to 4 * advmss), never retracting an edge already advertised.
//!
//! Window: `edge` is the right edge RCV.NXT + RCV.WND we advertised (the highest). Text is
//! accepted only below it, and it is never beyond what the buffer can hold, so
//! unread + out-of-order bytes <= `cap` always. The edge advances only by at least
//! min(cap / 2, MSS) (RFC 9293 §3.8.6.2.2) and never moves left (RFC 9293 §3.8.6.2.2 /
//! RFC 7323 §2.4): with window scaling (granule 2^shift bytes) a kept edge is rounded up to
//! the granule when RCV.NXT moved by a non-multiple of it (as Linux's tcp_select_window).
//! Rounding up creeps the edge forward, so the window opens only to the free space less a
//! reserve of 16 granules (at most cap / 8) which absorbs the creep; only if the application
//! stops reading and the reserve is used up is the edge rounded down instead: a retraction of
//! less than 2^shift bytes, the case RFC 7323 §2.4 / Appendix F describe. Without scaling the
//! edge never moves left and there is no reserve.

use super::delack::AckPolicy;
use super::reassembly::{Fit, Reassembly};
use super::ring::Ring;
use super::{read_from, Negotiated};
use crate::tcp::bufpool::{BufPool, OOO_CHUNK_OVERHEAD};
use crate::wire::SeqNum;

/// Under memory pressure the window opens to at most this (and 4 segments).
const PRESSURE_WINDOW: u32 = 8 << 10;

#[derive(Debug)]
pub(super) struct Receiver {
    /// RCV.NXT.
    nxt: SeqNum,
    /// In-order unread bytes (see the module docs).
    buf: Ring,
    cap: usize,
    /// The endpoint was under memory pressure when we last looked (at a segment or a read):
    /// the window we open is clamped.
    clamped: bool,
    /// The highest right edge advertised (RCV.NXT + RCV.WND).
    edge: SeqNum,
    /// Window scale shift (ours, RFC 7323 §2.2).
    shift: u8,
    /// Held out-of-order ranges.
    ooo: Reassembly,
    ack: AckPolicy,
}

/// What `accept` did with a segment's text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Accepted {
    /// Bytes that became readable (RCV.NXT advance, held data included).
    pub delivered: usize,
    /// The text was new but beyond a hole (held, or dropped for lack of ranges).
    pub out_of_order: bool,
    /// Held out-of-order data became in order (a hole was filled).
    pub filled: bool,
    /// The text (or part of it) was already received: the D-SACK block to report
    /// (RFC 2883 §4: the first duplicate part).
    pub dup: Option<(SeqNum, SeqNum)>,
    /// Nothing of the text was new (all duplicate, or outside the window).
    pub nothing_new: bool,
    /// RCV.NXT reached the peer's FIN (this segment's or one held earlier).
    pub fin: bool,
    /// Acknowledge now rather than delay (`on_text`'s ACK decision).
    pub ack_now: bool,
}

impl Receiver {
    /// `nxt` = IRS + 1; the window our SYN or SYN-ACK advertised is min(cap, 65535) (RFC 7323
    /// §2.2: unscaled).
    pub fn new(nxt: SeqNum, cap: usize, nego: &Negotiated) -> Receiver {
        let rcv_mss = nego.mss as u32 - if nego.timestamps { 12 } else { 0 };
        Receiver {
            nxt,
            buf: Ring::new(cap),
            cap,
            clamped: false,
            edge: nxt + cap.min(u16::MAX as usize),
            shift: nego.rcv_shift.min(14),
            ooo: Reassembly::default(),
            ack: AckPolicy::new(rcv_mss),
        }
    }

    /// RCV.NXT.
    pub fn nxt(&self) -> SeqNum {
        self.nxt
    }

    /// RCV.WND: what the peer may still send, from RCV.NXT to the advertised edge.
    pub fn window(&self) -> u32 {
        (self.edge - self.nxt) as u32
    }

    /// The held out-of-order ranges (SACK blocks are made from them).
    pub fn ooo(&self) -> &Reassembly {
        &self.ooo
    }

    pub fn unread(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated for the buffer (tests check the memory bound).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.allocated()
    }

    /// Free space from RCV.NXT on (room for in-order and held data).
    fn free(&self) -> u32 {
        (self.cap - self.buf.len()).min(1 << 30) as u32
    }

    /// RFC 9293 §3.8.6.2.2: the edge moves right only by at least min(Fr * RCV.BUFF,
    /// Eff.snd.MSS), Fr = 1/2.
    fn sws_step(&self) -> u32 {
        ((self.cap / 2) as u32).min(self.ack.rcv_mss)
    }

    /// Space the window may open to: the free space less a reserve of 16 granules (at most
    /// cap / 8) that absorbs the rounding up of kept edges (module docs). No reserve without
    /// scaling.
    fn openable(&self) -> u32 {
        let reserve = (((1u32 << self.shift) - 1) * 16).min(self.cap as u32 / 8);
        let free = self.free().saturating_sub(reserve);
        if self.clamped {
            free.min(PRESSURE_WINDOW.min(4 * self.ack.rcv_mss))
        } else {
            free
        }
    }

    /// The 16-bit window field to send now (see the module docs).
    pub fn window_field(&self) -> u16 {
        let g = 1u32 << self.shift;
        let (free, cur) = (self.free(), self.window());
        // Keep the edge: round up while the buffer has room, else (rare) down.
        let up = cur.div_ceil(g) * g;
        let keep = if up <= free { up } else { cur / g * g };
        let avail = self.openable();
        let w = if avail >= cur.saturating_add(self.sws_step()) {
            (avail / g * g).max(keep)
        } else {
            keep
        };
        (w >> self.shift).min(u16::MAX as u32) as u16
    }

    /// A segment carrying our ACK and `field` went out.
    pub fn ack_sent(&mut self, field: u16) {
        let edge = self.nxt + ((field as u32) << self.shift);
        self.edge = self.edge.max(edge);
        self.ack.ack_sent();
    }

    /// The text of an acceptable segment (`accept`), and the ACK decision (delack.rs): RFC
    /// 5681 §4.2 / RFC 9293 §3.8.6.3, an immediate ACK for out-of-order text, for text
    /// filling (part of) a hole, for duplicates and for text the window refused; else every
    /// second full segment, or quick-ACK mode.
    pub fn on_text(
        &mut self,
        seq: SeqNum,
        payload: &[u8],
        fin: bool,
        pool: &mut BufPool,
    ) -> Accepted {
        let had_holes = !self.ooo.is_empty();
        self.clamped = pool.under_pressure();
        let mut a = self.accept(seq, payload, fin, pool);
        let urgent = a.out_of_order || a.filled || had_holes || a.dup.is_some() || a.nothing_new;
        a.ack_now = urgent || (a.delivered > 0 && self.ack.on_in_order(a.delivered, self.cap));
        if a.dup.is_some() && a.nothing_new {
            self.quickack(); // Linux: a duplicate means our ACKs are being lost
        }
        a
    }

    /// Quick-ACK mode (delack.rs): the peer retransmits what we have, so our ACKs are lost.
    pub fn quickack(&mut self) {
        self.ack.quickack(self.cap);
    }

    /// RFC 9293 §3.10.7.4 "seventh, process the segment text" for a segment already found
    /// acceptable: trim it to [RCV.NXT, edge), keep new bytes (in order or held beyond a
    /// hole), never overwrite bytes already held.
    fn accept(&mut self, seq: SeqNum, payload: &[u8], fin: bool, pool: &mut BufPool) -> Accepted {
        let mut out = Accepted::default();
        let end = seq + payload.len();
        // Text before RCV.NXT is a duplicate (RFC 2883 §4 reports it).
        if seq.lt(self.nxt) && !payload.is_empty() {
            out.dup = Some((seq, end.min(self.nxt)));
        }
        let s = seq.max(self.nxt);
        let e = end.min(self.edge);
        // The FIN counts only if the text before it is all inside the window.
        let fin = fin && e == end && end.ge(self.nxt);
        if s.ge(e) {
            // No new text: a duplicate, a bare FIN, or text the window refused.
            out.nothing_new = !payload.is_empty();
            if fin && end == self.nxt {
                out.fin = true;
            } else if fin {
                self.ooo.set_fin(end); // a bare FIN beyond a hole
                out.out_of_order = true;
            }
            return out;
        }
        let data = &payload[(s - seq)..(e - seq)];
        if s == self.nxt {
            if let Fit::Ok { dup } = self.ooo.fit(s, e) {
                out.dup = out.dup.or(dup);
            }
            if !self.make_room(e, pool) {
                pool.counters().rcvq_mem_drops += 1;
                out.nothing_new = true;
                return out;
            }
            let (nxt, filled) = self.take_in_order(s, data, pool);
            let held_fin = self.ooo.take_fin(nxt, pool);
            out.fin = (fin && nxt == end) || held_fin;
            out.delivered = nxt - self.nxt;
            out.filled = filled;
            self.nxt = nxt;
            return out;
        }
        out.out_of_order = true;
        if fin {
            self.ooo.set_fin(end);
        }
        loop {
            match self.ooo.fit(s, e) {
                Fit::Duplicate => {
                    out.dup = Some((s, e));
                    out.nothing_new = true;
                }
                Fit::Full => out.nothing_new = true,
                Fit::Ok { dup } => {
                    // New bytes (the gaps) plus a chunk's overhead at most.
                    let new: usize = self.ooo.gaps(s, e).map(|(a, b)| b - a).sum();
                    let extra = new + OOO_CHUNK_OVERHEAD;
                    if pool.admit_ooo(extra) {
                        out.dup = out.dup.or(dup);
                        self.ooo.insert(s, e, data, pool);
                    } else if self.prune_ofo(s, pool) {
                        continue; // Linux: prune, then try to schedule again
                    } else {
                        pool.counters().ofo_mem_drops += 1;
                        out.nothing_new = true;
                    }
                }
            }
            return out;
        }
    }

    /// Room in the ring for in-order text ending at `e` and the held data it reaches, if
    /// the pool admits it (module docs): the held part is forced (its memory is already
    /// charged, it only moves), and so is the whole when the ring is empty. If refused,
    /// the out-of-order queue is pruned and it is asked again.
    fn make_room(&mut self, e: SeqNum, pool: &mut BufPool) -> bool {
        loop {
            let all = self.ooo.reach(e);
            let need = self.buf.len() + (all - self.nxt);
            let mut forced = all - e;
            if self.buf.is_empty() {
                forced = need;
            }
            if self.buf.reserve(need, forced, pool) {
                return true;
            }
            if !self.prune_ofo(self.nxt, pool) {
                return false;
            }
        }
    }

    /// Appends in-order text `[s, e)` (`data`; `s` = RCV.NXT) and the held ranges it
    /// reaches to the ring (room made by `make_room`); held bytes win where they overlap.
    /// Returns the new RCV.NXT and whether a held range was taken (a hole was filled).
    fn take_in_order(&mut self, s: SeqNum, data: &[u8], pool: &mut BufPool) -> (SeqNum, bool) {
        let e = s + data.len();
        let (mut at, mut filled) = (s, false);
        while let Some((r, bytes)) = self.ooo.pop_reached(at.max(e), pool) {
            filled = true;
            if r.start.gt(at) {
                self.buf.extend(&data[(at - s)..(r.start - s)], pool);
                at = r.start;
            }
            if r.end.gt(at) {
                let skip = at - r.start;
                let (a, b) = bytes.as_slices();
                if skip < a.len() {
                    self.buf.extend(&a[skip..], pool);
                    self.buf.extend(b, pool);
                } else {
                    self.buf.extend(&b[skip - a.len()..], pool);
                }
                at = r.end;
            }
        }
        if e.gt(at) {
            self.buf.extend(&data[(at - s)..], pool);
            at = e;
        }
        (at, filled)
    }

    /// Memory refused for text at `at`: drops the highest held range if it lies above `at`
    /// (Linux tcp_prune_ofo_queue), counted. Returns whether anything was pruned.
    fn prune_ofo(&mut self, at: SeqNum, pool: &mut BufPool) -> bool {
        let n = self.ooo.prune_highest(at, pool);
        if n == 0 {
            return false;
        }
        let c = pool.counters();
        c.ofo_pruned += 1;
        c.ofo_pruned_bytes += n as u64;
        true
    }

    /// Read into `out`; also says whether the window opened enough to owe the peer a window
    /// update now: the edge may move by the SWS step (RFC 9293 §3.8.6.2.2) and the window at
    /// least doubles (Linux tcp_cleanup_rbuf), so a reader does not cause an ACK per read.
    pub fn read(&mut self, out: &mut [u8], pool: &mut BufPool) -> (usize, bool) {
        let n = read_from(&mut self.buf, out, pool);
        self.clamped = pool.under_pressure();
        let (avail, cur) = (self.openable(), self.window());
        let update = n > 0 && avail >= cur.saturating_add(self.sws_step()) && avail / 2 >= cur;
        (n, update)
    }

    /// The buffer's storage, for the pool (the data in it is discarded). Held
    /// out-of-order data is discarded first (`discard_held` or `take_ooo_charge`).
    pub fn into_ring(self) -> Ring {
        debug_assert!(self.ooo.charged() == 0, "held data not settled");
        self.buf
    }

    /// Frees the held out-of-order chunks without the pool at hand (a close from a state
    /// call) and returns what they had charged, for the caller to settle later.
    pub fn take_ooo_charge(&mut self) -> usize {
        self.ooo.clear()
    }

    /// Discards held out-of-order data (beyond the peer's FIN: a broken peer); called as the
    /// FIN is processed, before `finish`.
    pub fn discard_held(&mut self, pool: &mut BufPool) {
        let c = self.ooo.clear();
        pool.recharge_ooo(c, 0);
    }

    /// The peer's FIN arrived (`discard_held` done): RCV.NXT moves past it, no more data is
    /// accepted.
    pub fn finish(self) -> RecvDone {
        debug_assert!(self.ooo.is_empty(), "discard_held first");
        RecvDone {
            nxt: self.nxt + 1u32,
            buf: self.buf,
            cap: self.cap,
        }
    }
}

/// The receive side after the peer's FIN: unread bytes only.
#[derive(Debug)]
pub(super) struct RecvDone {
    /// RCV.NXT (past the FIN).
    nxt: SeqNum,
    buf: Ring,
    cap: usize,
}

impl RecvDone {
    /// RCV.NXT (past the FIN).
    pub fn nxt(&self) -> SeqNum {
        self.nxt
    }
    pub fn window(&self) -> u32 {
        (self.cap - self.buf.len()).min(u32::MAX as usize) as u32
    }
    pub fn unread(&self) -> usize {
        self.buf.len()
    }
    pub fn read(&mut self, out: &mut [u8], pool: &mut BufPool) -> usize {
        read_from(&mut self.buf, out, pool)
    }
    /// The buffer's storage, for the pool (unread data in it is discarded).
    pub fn into_ring(self) -> Ring {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nego(shift: u8) -> Negotiated {
        Negotiated {
            mss: 1460,
            rcv_shift: shift,
            window_scaling: shift > 0,
            ..Negotiated::default()
        }
    }

    #[test]
    fn in_order_trim_and_window() {
        let mut p = BufPool::new();
        let mut r = Receiver::new(SeqNum(1000), 8, &nego(0));
        assert_eq!(r.window(), 8);
        let a = r.accept(SeqNum(1000), b"abcd", false, &mut p);
        assert_eq!((a.delivered, a.dup), (4, None));
        let a = r.accept(SeqNum(998), b"zzabcdef", false, &mut p);
        assert_eq!(a.delivered, 2, "front trimmed");
        assert_eq!(
            a.dup,
            Some((SeqNum(998), SeqNum(1004))),
            "the duplicate part"
        );
        assert_eq!(r.nxt, SeqNum(1006));
        let a = r.accept(SeqNum(1006), b"ghijk", false, &mut p);
        assert_eq!(a.delivered, 2, "window 2 left");
        assert_eq!((r.window(), r.window_field()), (0, 0));
        let mut out = [0u8; 3];
        assert_eq!(r.read(&mut out, &mut p), (3, false), "3 < min(4, 1460)");
        assert_eq!(&out, b"abc");
        assert_eq!(r.window_field(), 0, "SWS: not reopened by 3");
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out, &mut p), (5, true));
        assert_eq!(&out[..5], b"defgh");
        assert_eq!(r.window_field(), 8);
        r.ack_sent(8);
        assert_eq!(r.window(), 8);
        r.discard_held(&mut p);
        let done = r.finish();
        assert_eq!(done.nxt, SeqNum(1009));
    }

    #[test]
    fn held_data_is_stored_in_place_and_bounded() {
        let mut p = BufPool::new();
        let mut r = Receiver::new(SeqNum(0), 16, &nego(0));
        let a = r.accept(SeqNum(10), b"klmnopqr", false, &mut p);
        assert!(a.out_of_order && a.delivered == 0);
        assert_eq!(r.ooo.held(), 6, "trimmed at the edge 16");
        assert!(r.buf.len() <= 16);
        let a = r.accept(SeqNum(0), b"abcdefghij", false, &mut p);
        assert!(a.filled);
        assert_eq!(a.delivered, 16);
        let mut out = [0u8; 16];
        assert_eq!(r.read(&mut out, &mut p).0, 16);
        assert_eq!(&out, b"abcdefghijklmnop");
    }

    /// RFC 7323 §2.4: scaled windows keep the edge by rounding up, within the buffer.
    #[test]
    fn scaled_window_rounds_the_kept_edge_up() {
        let mut p = BufPool::new();
        let mut r = Receiver::new(SeqNum(0), 1 << 17, &nego(2));
        // Reserve 16 * 3 = 48 bytes: opens to 131024 bytes = field 32756.
        assert_eq!(r.window_field(), 32756);
        r.ack_sent(32756);
        let edge = 131_024;
        r.accept(SeqNum(0), &[0u8; 5], false, &mut p);
        // 131019 left; rounded up to 131020 (field 32755): the edge moves right by 1.
        assert_eq!(r.window_field(), 32755);
        r.ack_sent(32755);
        assert_eq!(r.window() + 5, edge + 1);
    }

    /// Under memory pressure the window opens to 4 segments at most (Linux
    /// __tcp_select_window clamps rcv_ssthresh to 4 * advmss), never retracting the edge
    /// already advertised; without pressure the same reads reopen it fully.
    #[test]
    fn window_clamped_under_pressure() {
        use crate::tcp::bufpool::MemLimits;
        let run = |mut p: BufPool| {
            let mut r = Receiver::new(SeqNum(0), 65_535, &nego(0));
            r.ack_sent(r.window_field());
            r.on_text(SeqNum(0), &[1u8; 60_000], false, &mut p);
            assert_eq!(r.window_field(), 5535, "the edge is kept");
            r.ack_sent(5535);
            let mut out = vec![0u8; 60_000];
            assert_eq!(r.read(&mut out, &mut p).0, 60_000);
            (r.window_field(), p.under_pressure())
        };
        let pressure = MemLimits {
            low: 0,
            pressure: 0,
            high: u64::MAX,
        };
        assert_eq!(
            run(BufPool::with_limits(pressure)),
            (5535, true),
            "4 * 1460 < 5535 + 1460"
        );
        assert_eq!(run(BufPool::new()), (65_535, false));
    }

    /// A 1-byte segment at the right edge of a 1 MiB window is charged its byte and the
    /// chunk overhead; the ring holds nothing.
    #[test]
    fn far_byte_does_not_grow_the_ring() {
        use crate::tcp::bufpool::OOO_CHUNK_OVERHEAD;
        let mut p = BufPool::new();
        let mut r = Receiver::new(SeqNum(0), 1 << 20, &nego(5));
        r.ack_sent(r.window_field());
        let edge = r.window();
        let a = r.on_text(SeqNum(edge - 1), b"z", false, &mut p);
        assert!(a.out_of_order && a.ack_now);
        assert_eq!(r.allocated(), 0);
        assert_eq!(p.charged(), 1 + OOO_CHUNK_OVERHEAD as u64);
    }
}
