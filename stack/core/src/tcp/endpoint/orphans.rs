//! `tcp_max_orphans` and `tcp_mem`: the bounds on orphans, connections the application has
//! closed that are not finished (FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK), as Linux's
//! `tcp_check_oom` / `tcp_out_of_resources` (net/ipv4/tcp.c, tcp_timer.c).
//!
//! Linux resets an orphan (RST, CLOSED, `TCPAbortOnMemory`) when `tcp_check_oom` finds
//! either of two conditions:
//! - too many orphans: more than `tcp_max_orphans` ("too many orphaned sockets");
//! - out of memory (`tcp_out_of_memory`): the orphan's send queue holds more than
//!   `SOCK_MIN_SNDBUF` while the host's TCP memory is above `tcp_mem` HIGH ("out of memory --
//!   consider tuning tcp_mem"): nobody will read or write this connection again, so its
//!   queued data is the first memory to give back.
//!
//! It checks at two moments, both conditions each time; here:
//! - `__tcp_close` -> `tcp_check_oom(sk, 0)`: right after the close made the connection an
//!   orphan (the count includes it): [`Endpoint::orphan`];
//! - `tcp_write_timeout` (retransmission timer with data or FIN in flight) and
//!   `tcp_probe_timer` (zero-window probe) of an orphan -> `tcp_out_of_resources`: the
//!   memory check ([`out_of_memory`], from the endpoint's timer dispatch), against the
//!   endpoint's `tcp_mem` (tcp/bufpool.rs).
//!
//! The RST is the abort's: RST|ACK <SEQ=SND.MAX><ACK=RCV.NXT>, SND.MAX being the highest
//! sequence sent.
//!
//! The count is exact and only `close` raises it, so the check at close keeps it at most
//! `tcp_max_orphans` at all times and a count check at timer time could never fire: it is
//! not made. Linux needs it because its count is a per-CPU sum cached every 100 ms (a burst
//! of closes overshoots) and because the sysctl can be lowered at run time.
//!
//! Differences:
//! - Per endpoint (one worker), not per host; exact, not a 100 ms cache. `tcp_mem` is per
//!   endpoint as well (bufpool.rs), and above HIGH only by forced grants (one segment into
//!   an empty receive buffer, one small buffer for an empty send buffer), so the memory
//!   check fires while the endpoint's memory is exhausted and such grants keep arriving.
//! - The orphan's queue is measured by its send ring's charged capacity (bufpool.rs), not
//!   by skb truesize; [`SOCK_MIN_SNDBUF`] is Linux's value on x86-64.
//! - Linux doubles the count (`shift`) for an orphan that sent no new data for 2 * TCP_RTO_MAX
//!   or got a soft ICMP error, at timer time; not modelled (see above; such an orphan ends
//!   after `tcp_orphan_retries` anyway).
//! - Linux's out-of-resources abort sends no RST when the last segment went out more than
//!   TCP_TIMEWAIT_LEN (60 s) ago and the orphan is about to time out anyway (`do_reset`
//!   false: its `tcp_orphan_retries` are spent, the RTO at TCP_RTO_MAX); here it always
//!   sends the RST (the connection would be closed silently one timer later instead).
//! - Linux's close sends the FIN before it resets; here the reset replaces the FIN (the RST
//!   carries SND.MAX, what the peer can have seen).
//! - FIN-WAIT-2 orphans count: Linux moves them to its TIME-WAIT table (when `tcp_fin_timeout`
//!   <= 60 s) where they count as TIME-WAIT buckets instead; here they stay connections until
//!   `tcp_fin_timeout` and count as orphans. They hold no send queue, so the memory check
//!   never applies to them (nor in Linux: no timer of theirs calls it).
//!
//! Not compared with Linux on the wire: `net.ipv4.tcp_max_orphans` and `tcp_mem` are
//! host-wide (a network namespace has no copy of them), so such a test would have to change
//! the host's settings.

use super::{ConnId, Endpoint, SlotFlags};
use crate::tcp::bufpool::BufPool;
use crate::tcp::conn::{Connection, State};
use crate::tcp::TcpConfig;
use crate::time::Instant;

/// Linux `SOCK_MIN_SNDBUF` (include/net/sock.h): `2 * TCP_SKB_MIN_TRUESIZE`, that is
/// 2 * (2048 + `SKB_DATA_ALIGN(sizeof(struct sk_buff))` = 256) bytes on x86-64.
pub(super) const SOCK_MIN_SNDBUF: usize = 2 * (2048 + 256);

/// Linux `tcp_out_of_memory`: the orphan `conn` holds more than [`SOCK_MIN_SNDBUF`] of send
/// queue while the endpoint's charge is above `tcp_mem` HIGH. Checked at close and when an
/// orphan's retransmission or zero-window probe timer fires (the module docs); true resets it.
pub(super) fn out_of_memory(conn: &Connection, pool: &BufPool) -> bool {
    conn.send_charged() > SOCK_MIN_SNDBUF && pool.above_high()
}

/// Linux `tcp_too_many_orphans(0)`: `orphans > tcp_max_orphans`.
fn too_many_orphans(orphans: usize, cfg: &TcpConfig) -> bool {
    orphans > cfg.max_orphans
}

impl Endpoint {
    /// After the application's `close` of `id`: an unfinished connection becomes an orphan
    /// and is counted; beyond `tcp_max_orphans`, or out of memory ([`out_of_memory`]), it is
    /// reset (Linux `__tcp_close`: `tcp_check_oom(sk, 0)` -> RST, CLOSE, `TCPAbortOnMemory`).
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
        if too_many_orphans(self.orphans + 1, &self.cfg) || out_of_memory(&s.conn, &self.pool) {
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
