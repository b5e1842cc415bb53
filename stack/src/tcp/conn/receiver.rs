//! The receiving half: RCV.NXT / RCV.WND (RFC 9293 §3.3.1) and the bounded receive buffer
//! (`cfg.rmem` bytes). In-order delivery only: a segment starting beyond RCV.NXT is dropped
//! and answered with an immediate ACK (issue 4 adds reassembly and delayed ACKs).

use std::collections::VecDeque;

use super::read_from;
use crate::wire::SeqNum;

#[derive(Debug)]
pub(super) struct Receiver {
    /// RCV.NXT.
    pub nxt: SeqNum,
    /// Received, not yet read bytes. At most `cap`.
    buf: VecDeque<u8>,
    cap: usize,
    /// The window we last advertised, in bytes (for window-update decisions).
    pub adv: u32,
}

impl Receiver {
    pub fn new(nxt: SeqNum, cap: usize) -> Receiver {
        Receiver {
            nxt,
            buf: VecDeque::new(),
            cap,
            adv: 0,
        }
    }

    /// RCV.WND: free buffer space.
    pub fn window(&self) -> u32 {
        (self.cap - self.buf.len()).min(u32::MAX as usize) as u32
    }

    pub fn unread(&self) -> usize {
        self.buf.len()
    }

    /// Take the in-order part of a segment's text that fits the window. Returns the bytes
    /// accepted, or `None` when the segment starts beyond RCV.NXT (out of order).
    pub fn accept(&mut self, seq: SeqNum, payload: &[u8]) -> Option<usize> {
        if seq.gt(self.nxt) {
            return None;
        }
        let skip = (self.nxt - seq).min(payload.len());
        let take = (payload.len() - skip).min(self.window() as usize);
        self.buf.extend(&payload[skip..skip + take]);
        self.nxt = self.nxt + take;
        Some(take)
    }

    /// Read into `out`; also says whether the window opened enough to owe a window update:
    /// by at least min(buffer / 2, MSS-ish 1460) beyond what we last advertised (RFC 9293
    /// §3.8.6.2.2 receiver SWS avoidance).
    pub fn read(&mut self, out: &mut [u8]) -> (usize, bool) {
        let n = read_from(&mut self.buf, out);
        let step = (self.cap / 2).min(1460) as u32;
        (n, n > 0 && self.window() >= self.adv.saturating_add(step))
    }

    /// The peer's FIN arrived: RCV.NXT moves past it, no more data is accepted.
    pub fn finish(self) -> RecvDone {
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
    pub nxt: SeqNum,
    buf: VecDeque<u8>,
    cap: usize,
}

impl RecvDone {
    pub fn window(&self) -> u32 {
        (self.cap - self.buf.len()).min(u32::MAX as usize) as u32
    }
    pub fn unread(&self) -> usize {
        self.buf.len()
    }
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        read_from(&mut self.buf, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_trim_and_window() {
        let mut r = Receiver::new(SeqNum(1000), 8);
        assert_eq!(r.accept(SeqNum(1001), b"x"), None, "out of order dropped");
        assert_eq!(r.accept(SeqNum(1000), b"abcd"), Some(4));
        assert_eq!(r.accept(SeqNum(998), b"zzabcdef"), Some(2), "front trimmed");
        assert_eq!(r.nxt, SeqNum(1006));
        assert_eq!(r.accept(SeqNum(1006), b"ghijk"), Some(2), "window 2 left");
        assert_eq!(r.window(), 0);
        let mut out = [0u8; 3];
        r.adv = 0;
        assert_eq!(r.read(&mut out), (3, false), "3 < min(4, 1460)");
        assert_eq!(&out, b"abc");
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out), (5, true));
        assert_eq!(&out[..5], b"defgh");
        let done = r.finish();
        assert_eq!(done.nxt, SeqNum(1009));
    }
}
