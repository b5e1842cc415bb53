//! The receiving half: RCV.NXT / RCV.WND (RFC 9293 §3.3.1), the bounded receive buffer with
//! out-of-order reassembly, the advertised window (receiver SWS avoidance, RFC 9293
//! §3.8.6.2.2; RFC 7323 §2.4 scaling) and the ACK policy state (delack.rs).
//!
//! Buffer layout: one `VecDeque<u8>` of at most `cap` (= `cfg.rmem`) bytes. Its first
//! `ready` bytes are in-order data not yet read; byte `ready + k` holds sequence number
//! RCV.NXT + k when that byte arrived out of order (reassembly.rs says which ranges are held;
//! holes are zero-filled placeholders). So a segment is copied once, held bytes are never
//! overwritten by a retransmission, and reading never moves out-of-order data.
//!
//! Window: `edge` is the right edge RCV.NXT + RCV.WND we advertised (the highest). Text is
//! accepted only below it, and it is never beyond what the buffer can hold, so
//! `ready` + out-of-order bytes <= `cap` always. The edge advances only by at least
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
use crate::tcp::bufpool::BufPool;
use crate::wire::SeqNum;

#[derive(Debug)]
pub(super) struct Receiver {
    /// RCV.NXT.
    nxt: SeqNum,
    /// `ready` in-order unread bytes, then the out-of-order area (see the module docs).
    buf: Ring,
    ready: usize,
    cap: usize,
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
            ready: 0,
            cap,
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
        self.ready
    }

    /// Bytes allocated for the buffer (tests check the memory bound).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.allocated()
    }

    /// Free space from RCV.NXT on (room for in-order and held data).
    fn free(&self) -> u32 {
        (self.cap - self.ready).min(1 << 30) as u32
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
        self.free().saturating_sub(reserve)
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
            self.store(s, e, data, pool);
            let held_fin = self.ooo.fin();
            let (nxt, filled) = self.ooo.advance(e);
            out.fin = (fin && nxt == end) || held_fin == Some(nxt);
            out.delivered = nxt - self.nxt;
            out.filled = filled;
            self.ready += out.delivered;
            self.nxt = nxt;
            return out;
        }
        out.out_of_order = true;
        if fin {
            self.ooo.set_fin(end);
        }
        match self.ooo.fit(s, e) {
            Fit::Duplicate => {
                out.dup = Some((s, e));
                out.nothing_new = true;
            }
            Fit::Full => out.nothing_new = true,
            Fit::Ok { dup } => {
                out.dup = out.dup.or(dup);
                self.store(s, e, data, pool);
                self.ooo.insert(s, e);
            }
        }
        out
    }

    /// Copy the parts of [s, e) not held yet (`data` is its text) into the buffer.
    fn store(&mut self, s: SeqNum, e: SeqNum, data: &[u8], pool: &mut BufPool) {
        let need = self.ready + (e - self.nxt);
        if s == self.nxt && self.buf.len() == self.ready {
            // The common case, in order with nothing held: append, no placeholder fill.
            self.buf.reserve(need, pool);
            self.buf.extend(data, pool);
            return;
        }
        if need > self.buf.len() {
            self.buf.resize(need, pool);
        }
        let Receiver {
            buf,
            ooo,
            ready,
            nxt,
            ..
        } = self;
        for (gs, ge) in ooo.gaps(s, e) {
            write_at(buf, *ready + (gs - *nxt), &data[(gs - s)..(ge - s)]);
        }
    }

    /// Read into `out`; also says whether the window opened enough to owe the peer a window
    /// update now: the edge may move by the SWS step (RFC 9293 §3.8.6.2.2) and the window at
    /// least doubles (Linux tcp_cleanup_rbuf), so a reader does not cause an ACK per read.
    pub fn read(&mut self, out: &mut [u8], pool: &mut BufPool) -> (usize, bool) {
        let n = out.len().min(self.ready);
        let n = read_from(&mut self.buf, &mut out[..n], pool);
        self.ready -= n;
        let (avail, cur) = (self.openable(), self.window());
        let update = n > 0 && avail >= cur.saturating_add(self.sws_step()) && avail / 2 >= cur;
        (n, update)
    }

    /// The buffer's storage, for the pool (the data in it is discarded).
    pub fn into_ring(self) -> Ring {
        self.buf
    }

    /// Discards held out-of-order data (beyond the peer's FIN: a broken peer); called as the
    /// FIN is processed, before `finish`.
    pub fn discard_held(&mut self, pool: &mut BufPool) {
        self.buf.truncate(self.ready, pool);
    }

    /// The peer's FIN arrived (`discard_held` done): RCV.NXT moves past it, no more data is
    /// accepted.
    pub fn finish(self) -> RecvDone {
        debug_assert_eq!(self.buf.len(), self.ready, "discard_held first");
        RecvDone {
            nxt: self.nxt + 1u32,
            buf: self.buf,
            cap: self.cap,
        }
    }
}

/// Write `src` at index `at` of `buf` (which is long enough).
fn write_at(buf: &mut Ring, at: usize, src: &[u8]) {
    let (a, b) = buf.as_mut_slices();
    if at < a.len() {
        let n = src.len().min(a.len() - at);
        a[at..at + n].copy_from_slice(&src[..n]);
        b[..src.len() - n].copy_from_slice(&src[n..]);
    } else {
        let at = at - a.len();
        b[at..at + src.len()].copy_from_slice(src);
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
}
