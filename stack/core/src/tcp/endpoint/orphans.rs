//! `tcp_max_orphans`: the bound on orphans, connections the application has closed that are
//! not finished (FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK), as Linux's
//! `tcp_too_many_orphans` / `tcp_out_of_resources` (net/ipv4/tcp.c, tcp_timer.c).
//!
//! Linux resets an orphan (RST, CLOSED, `TCPAbortOnMemory`, "too many orphaned sockets") when
//! more than `tcp_max_orphans` exist, checked at two moments:
//! - `__tcp_close` -> `tcp_check_oom(sk, 0)`: right after the close made the connection an
//!   orphan (the count includes it);
//! - `tcp_write_timeout` (retransmission timer) and `tcp_probe_timer` (zero-window probe) of an
//!   orphan -> `tcp_out_of_resources`.
//!
//! Here the count is exact and only `close` raises it, so the check at close keeps it at most
//! `tcp_max_orphans` at all times and the timer-time check could never fire: it is not made.
//! Linux needs it because its count is a per-CPU sum cached every 100 ms (a burst of closes
//! overshoots), because the sysctl can be lowered at run time, and for its other half, below.
//!
//! Differences:
//! - Per endpoint (one worker), not per host; exact, not a 100 ms cache.
//! - Linux doubles the count (`shift`) for an orphan that sent no new data for 2 * TCP_RTO_MAX
//!   or got a soft ICMP error, at timer time; not modelled (see above; such an orphan ends
//!   after `tcp_orphan_retries` anyway).
//! - `tcp_check_oom`'s other half, an orphan with more than SOCK_MIN_SNDBUF queued while
//!   `tcp_mem` is above HIGH, is not done: its buffers are already bounded by `tcp_mem`
//!   (tcp/bufpool.rs) and it ends after `tcp_orphan_retries`.
//! - Linux's close sends the FIN before it resets; here the reset replaces the FIN (the RST
//!   carries SND.MAX, what the peer can have seen).
//! - FIN-WAIT-2 orphans count: Linux moves them to its TIME-WAIT table (when `tcp_fin_timeout`
//!   <= 60 s) where they count as TIME-WAIT buckets instead; here they stay connections until
//!   `tcp_fin_timeout` and count as orphans.
//!
//! Not compared with Linux on the wire: `net.ipv4.tcp_max_orphans` is host-wide (a network
//! namespace has no copy of it), so such a test would have to change the host's setting.

use super::{ConnId, Endpoint, SlotFlags};
use crate::tcp::conn::State;
use crate::tcp::TcpConfig;
use crate::time::Instant;

/// Linux `tcp_too_many_orphans(0)`: `orphans > tcp_max_orphans`.
fn too_many_orphans(orphans: usize, cfg: &TcpConfig) -> bool {
    orphans > cfg.max_orphans
}

impl Endpoint {
    /// After the application's `close` of `id`: an unfinished connection becomes an orphan
    /// and is counted; beyond `tcp_max_orphans` it is reset (Linux `__tcp_close`:
    /// `tcp_check_oom(sk, 0)` -> RST, CLOSE, `TCPAbortOnMemory`).
    pub(super) fn orphan(&mut self, now: Instant, id: ConnId) {
        let Some(s) = self
            .conns
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
        else {
            return;
        };
        let unfinished = matches!(
            s.conn.state(),
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::Closing
                | State::LastAck
        );
        if s.flags.has(SlotFlags::ORPHAN) || !unfinished {
            return;
        }
        if too_many_orphans(self.orphans + 1, &self.cfg) {
            // Counted and at once uncounted: it is CLOSED now, no longer an orphan.
            s.conn.abort(now);
            self.stats.aborted_on_memory += 1;
            return;
        }
        s.flags.set(SlotFlags::ORPHAN, true);
        self.orphans += 1;
    }

    /// Orphans held now (see the module docs).
    pub fn orphan_count(&self) -> usize {
        self.orphans
    }
}
