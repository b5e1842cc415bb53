//! The connection side of receiving: RFC 9293 §3.10.7.4 "seventh, process the segment text"
//! (reassembly in receiver.rs), the ACK decision (delack.rs), D-SACK bookkeeping and what
//! our segments say about the receive side (window field, SACK blocks).

use super::delack::DELAYED_ACK;
use super::receiver::Receiver;
use super::state::Transition;
use super::{sack_gen, Connection, Timer, EV_READABLE};
use crate::tcp::bufpool::BufPool;
use crate::time::Instant;
use crate::wire::{TcpOptions, TcpRepr};

impl Connection {
    /// RFC 9293 §3.10.7.4 "seventh, process the segment text". Returns whether RCV.NXT
    /// reached the peer's FIN (for the "eighth" step), or `None` if the segment was dropped.
    pub(super) fn process_text(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        pool: &mut BufPool,
    ) -> Option<bool> {
        let (orphaned, sack) = (self.app.orphaned, self.nego.sack);
        let fin = seg.flags.fin();
        let Some(rcv) = self.inner.receiver_mut() else {
            // "CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: This should not occur since a FIN has
            // been received from the remote side. Ignore the segment text."
            return Some(false);
        };
        if seg.payload.is_empty() && !fin {
            return Some(false); // a bare ACK is not acknowledged
        }
        if orphaned && !seg.payload.is_empty() && (seg.seq + seg.payload.len()).gt(rcv.nxt()) {
            // New data for a connection the application has closed: nobody will read it.
            // Reset (RFC 2525 §2.17; Linux: LINUX_MIB_TCPABORTONDATA) with
            // <SEQ=SEG.ACK><CTL=RST>. (Duplicates of data already taken are just ACKed.)
            self.pending.rst = Some((seg.ack, None));
            self.apply(now, Transition::Closed(None));
            return None;
        }
        // "ESTABLISHED, FIN-WAIT-1, FIN-WAIT-2: ... deliver segment text to user RECEIVE
        // buffers ... Send an acknowledgment of the form <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>."
        // Text beyond RCV.NXT is held (reassembly.rs); the urgent pointer is ignored and
        // urgent bytes are delivered in line (RFC 6093 §6), so URG needs no handling here.
        // The ACK decision is the receiver's (RFC 5681 §4.2, RFC 9293 §3.8.6.3).
        let a = rcv.on_text(seg.seq, seg.payload, fin, pool);
        if a.delivered > 0 {
            self.signal(EV_READABLE);
        }
        if let (true, Some(d)) = (sack, a.dup) {
            self.pending.dsack = Some(d); // RFC 2883 §4
        }
        if a.ack_now {
            self.pending.ack = true;
        } else if a.delivered > 0 && !self.timers.is_set(Timer::DelayedAck) {
            self.timers.set(Timer::DelayedAck, now + DELAYED_ACK);
        }
        Some(a.fin)
    }

    /// An unacceptable segment (or a PAWS-rejected one) is answered with an ACK: if it
    /// carried text already received, report it as a D-SACK (RFC 2883 §4, as Linux's
    /// tcp_send_dupack) and go to quick-ACK mode.
    pub(super) fn note_duplicate(&mut self, seg: &TcpRepr<'_>) {
        let Some(nxt) = self.inner.rcv_nxt() else {
            return;
        };
        if seg.payload.is_empty() || !seg.seq.lt(nxt) {
            return;
        }
        if self.nego.sack {
            let end = (seg.seq + seg.payload.len()).min(nxt);
            self.pending.dsack = Some((seg.seq, end));
        }
        if let Some(r) = self.inner.receiver_mut() {
            r.quickack();
        }
    }

    /// The window field of our next non-SYN segment.
    pub(super) fn window_field(&self) -> u16 {
        match self.inner.receiver() {
            Some(r) => r.window_field(),
            None => self.advertised_window(self.inner.rcv_wnd()),
        }
    }

    /// SACK blocks for our next non-SYN segment (RFC 2018 §4, RFC 2883).
    pub(super) fn sack_option(&self, o: &mut TcpOptions) {
        if !self.nego.sack {
            return;
        }
        let ooo = self.inner.receiver().map(Receiver::ooo);
        sack_gen::fill(self.pending.dsack, ooo, o);
    }

    /// A segment carrying our ACK went out: the D-SACK is reported, no ACK is delayed any
    /// more, and the window it advertised is now the edge.
    pub(super) fn rx_ack_sent(&mut self) {
        self.pending.dsack = None;
        self.timers.clear(Timer::DelayedAck);
        let field = self.window_field();
        if let Some(r) = self.inner.receiver_mut() {
            r.ack_sent(field);
        }
    }
}
