//! When to acknowledge received data (RFC 9293 §3.8.6.3, RFC 5681 §4.2, RFC 1122 §4.2.3.2),
//! with Linux's choices where the RFCs leave room:
//!
//! - In-order data is acknowledged at once when more than one full-sized segment
//!   (`rcv_mss` bytes) arrived since our last ACK, i.e. at least every second full-sized
//!   segment (Linux `__tcp_ack_snd_check`); otherwise the ACK waits at most
//!   [`DELAYED_ACK`], counted from the first unacknowledged segment (the `DelayedAck` timer).
//!   Any segment we send carries the ACK and cancels the wait.
//! - Immediately: out-of-order data, data that fills (part of) a hole, duplicates, and text
//!   the window cannot take (RFC 5681 §4.2: "A TCP receiver SHOULD send an immediate ACK when
//!   an out-of-order segment arrives ... [and] when an incoming segment fills in all or part
//!   of a gap").
//! - Quick-ACK mode (Linux `tcp_incr_quickack`): the first data segments of a connection, and
//!   those after a duplicate, are acknowledged at once so that the sender's slow start is not
//!   held back by our delay. Budget: rcv_buf / (2 * rcv_mss) segments, clamped to
//!   [2, 16] (Linux: TCP_MAX_QUICKACKS = 16).

use crate::time::Duration;

/// The delayed-ACK bound: Linux's TCP_ATO_MIN (40 ms), which is what Linux uses between
/// hosts with small RTTs; RFC 9293 §3.8.6.3 requires less than 0.5 s. Fixed (Linux adapts it
/// between 40 and 200 ms to the inter-arrival time; we keep the short end).
pub const DELAYED_ACK: Duration = Duration::from_millis(40);

/// Linux TCP_MAX_QUICKACKS.
const MAX_QUICKACKS: u32 = 16;

/// Per-receiver ACK state. 12 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct AckPolicy {
    /// Expected full-sized segment payload: the negotiated MSS less the timestamp option.
    pub rcv_mss: u32,
    /// In-order bytes received since our last ACK went out.
    unacked: u32,
    /// Segments still to be acknowledged at once (quick-ACK mode).
    quick: u16,
    /// Quick-ACK mode was entered for the first data (once per connection).
    started: bool,
}

impl AckPolicy {
    pub fn new(rcv_mss: u32) -> AckPolicy {
        AckPolicy {
            rcv_mss: rcv_mss.max(1),
            unacked: 0,
            quick: 0,
            started: false,
        }
    }

    /// Enter quick-ACK mode for a receive buffer of `cap` bytes.
    pub fn quickack(&mut self, cap: usize) {
        let n = (cap / (2 * self.rcv_mss as usize)).clamp(2, MAX_QUICKACKS as usize);
        self.quick = self.quick.max(n as u16);
    }

    /// `bytes` of new in-order data arrived (not filling a hole): true when the ACK is due
    /// now, false when it may wait for the delayed-ACK timer.
    pub fn on_in_order(&mut self, bytes: usize, cap: usize) -> bool {
        if !self.started {
            self.started = true;
            self.quickack(cap);
        }
        self.unacked = self
            .unacked
            .saturating_add(bytes.min(u32::MAX as usize) as u32);
        if self.quick > 0 {
            self.quick -= 1;
            return true;
        }
        // RFC 5681 §4.2 / RFC 9293 §3.8.6.3: "at least every second full-sized segment".
        self.unacked > self.rcv_mss
    }

    /// Our ACK went out (alone or on data).
    pub fn ack_sent(&mut self) {
        self.unacked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_acks_then_every_second_full_segment() {
        let mut p = AckPolicy::new(1000);
        // 8000 / 2000 = 4 quick ACKs at the start.
        for i in 0..4 {
            assert!(p.on_in_order(1000, 8000), "quick ack {i}");
            p.ack_sent();
        }
        assert!(!p.on_in_order(1000, 8000), "one full segment: delayed");
        assert!(p.on_in_order(1000, 8000), "second full segment: now");
        p.ack_sent();
        assert!(!p.on_in_order(600, 8000));
        assert!(!p.on_in_order(400, 8000), "exactly one MSS: still delayed");
        assert!(p.on_in_order(1, 8000), "more than one MSS unacknowledged");
    }

    #[test]
    fn quick_ack_budget_is_clamped() {
        let mut p = AckPolicy::new(1460);
        p.quickack(1000);
        assert_eq!(p.quick, 2, "at least 2");
        p.quickack(100 << 20);
        assert_eq!(p.quick, 16, "at most 16");
        p.quickack(1000);
        assert_eq!(p.quick, 16, "never lowered");
    }
}
