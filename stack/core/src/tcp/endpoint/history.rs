//! [`ConnHistory`]: the last [`HISTORY_LEN`] notable events of a connection (state changes,
//! retransmission timeouts, retransmissions, zero-window probes, the reset reason), in a
//! fixed ring kept beside the connection's counters: 64 bytes per connection, no
//! allocation. Shown by `xdptcp ss -i --history`.
//!
//! The endpoint calls [`ConnHistory::observe`] after each arrival, timer and transmit round
//! of the connection; it compares what it sees with what it saw last, so every path that
//! changes a state is covered without a hook of its own (a change made by `close()` is dated
//! at the transmit round that follows, in the same worker iteration).

use crate::tcp::conn::{ConnError, Connection, State};
use crate::time::{Duration, Instant};

use super::ConnCounters;

/// Events kept per connection.
pub const HISTORY_LEN: usize = 6;

/// One event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistEvent {
    /// The connection entered this state.
    State(State),
    /// A retransmission timeout fired: the consecutive count (RFC 6298 §5.5 backoff).
    Rto(u8),
    /// Segments below SND.MAX were sent again in one transmit round (fast retransmit, RTO).
    Retransmit(u8),
    /// The persist timer sent a zero-window probe (RFC 9293 §3.8.6.1).
    WindowProbe,
    /// The connection ended with this error (reset received, refused, timed out, aborted).
    Ended(ConnError),
}

/// The ring. `Copy`, 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnHistory {
    /// The first observation: event times are milliseconds from it.
    born: Option<Instant>,
    at_ms: [u32; HISTORY_LEN],
    ev: [Option<HistEvent>; HISTORY_LEN],
    /// Next slot to write; `len` events are valid.
    next: u8,
    len: u8,
    last_state: Option<State>,
    last_rto: u8,
    last_retrans: u32,
    ended: bool,
}

impl ConnHistory {
    fn push(&mut self, now: Instant, e: HistEvent) {
        let born = *self.born.get_or_insert(now);
        let i = self.next as usize;
        self.at_ms[i] = now.saturating_since(born).as_millis().min(u32::MAX as u128) as u32;
        self.ev[i] = Some(e);
        self.next = ((i + 1) % HISTORY_LEN) as u8;
        self.len = (self.len + 1).min(HISTORY_LEN as u8);
    }

    /// Notes what changed since the last call.
    pub(super) fn observe(&mut self, now: Instant, c: &Connection, counters: &ConnCounters) {
        let state = c.state();
        if self.last_state != Some(state) {
            self.last_state = Some(state);
            self.push(now, HistEvent::State(state));
        }
        let re = counters.retrans_segs;
        if re != self.last_retrans {
            let n = re.wrapping_sub(self.last_retrans).min(u8::MAX as u32) as u8;
            self.last_retrans = re;
            self.push(now, HistEvent::Retransmit(n));
        }
        if let (false, Some(e)) = (self.ended, c.error()) {
            self.ended = true;
            self.push(now, HistEvent::Ended(e));
        }
    }

    /// A zero-window probe is due now.
    pub(super) fn window_probe(&mut self, now: Instant) {
        self.push(now, HistEvent::WindowProbe);
    }

    /// The retransmission timer fired; `rto_count`: the connection's consecutive timeouts
    /// after it (0 in the handshake, which keeps no sender: then counted here).
    pub(super) fn rto(&mut self, now: Instant, rto_count: u32) {
        let n = if rto_count > 0 {
            rto_count.min(u8::MAX as u32) as u8
        } else {
            self.last_rto.saturating_add(1)
        };
        self.last_rto = n;
        self.push(now, HistEvent::Rto(n));
    }

    /// The events kept, oldest first, each with its time since the first observation.
    pub fn events(&self) -> impl Iterator<Item = (Duration, HistEvent)> + '_ {
        let start = (self.next as usize + HISTORY_LEN - self.len as usize) % HISTORY_LEN;
        (0..self.len as usize).filter_map(move |k| {
            let i = (start + k) % HISTORY_LEN;
            let e = self.ev[i]?;
            Some((Duration::from_millis(u64::from(self.at_ms[i])), e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_last_events_oldest_first() {
        let mut h = ConnHistory::default();
        let t0 = Instant::from_millis(1000);
        for i in 0..8u64 {
            h.push(t0 + Duration::from_millis(i * 10), HistEvent::Rto(i as u8));
        }
        let v: Vec<_> = h.events().collect();
        assert_eq!(v.len(), HISTORY_LEN);
        assert_eq!(v[0], (Duration::from_millis(20), HistEvent::Rto(2)));
        assert_eq!(v[5], (Duration::from_millis(70), HistEvent::Rto(7)));
        assert!(
            std::mem::size_of::<ConnHistory>() <= 64,
            "{}",
            std::mem::size_of::<ConnHistory>()
        );
    }
}
