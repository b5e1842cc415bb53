//! A listening socket's two queues with Linux's semantics, sans-IO.
//!
//! - SYN queue: half-open connections (SYN-RECEIVED), a [`SynQueue`] of the connection
//!   helper's per-request state `V`.
//! - Accept queue: established connections `T` waiting for `accept()`.
//!
//! The decisions mirror Linux's `tcp_conn_request()` (net/ipv4/tcp_input.c) for SYNs and
//! `tcp_check_req()` / `tcp_v4_syn_recv_sock()` (tcp_minisocks.c, tcp_ipv4.c) for the ACK that
//! completes a handshake, counters named after Linux's SNMP MIB (`nstat`). See [`Listener::on_syn`].

use std::collections::VecDeque;
use std::hash::Hash;

use super::config::{SynCookieMode, TcpConfig};
use super::synqueue::SynQueue;
use crate::time::{Duration, Instant};

/// What to do with a SYN for which no connection or SYN-queue entry exists yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynDecision {
    /// Create a half-open entry (`syn_queue.insert`, cannot fail for this decision) and send
    /// a SYN-ACK with an RFC 6528 ISN.
    Queue,
    /// Send a SYN-ACK whose ISN is a SYN cookie; keep no state.
    Cookie,
    /// Drop the SYN silently (no RST: the client retries, RFC 4987 §3.1 / Linux).
    Drop,
}

/// What to do with the ACK that completes a handshake (RFC 9293 §3.10.7.4, SYN-RECEIVED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckDecision {
    /// Move the connection to the accept queue.
    Accept,
    /// Accept queue full: drop the ACK. A queued request stays in the SYN queue (Linux marks it
    /// `acked`), so the retransmitted SYN-ACK or the peer's next segment retries the handshake.
    Drop,
    /// Accept queue full and `tcp_abort_on_overflow` = 1: send RST and forget the request.
    Reset,
}

/// Listener counters, named after Linux's `TcpExt` MIB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListenerStats {
    /// `ListenOverflows`: SYNs or handshake ACKs that found the accept queue full.
    pub listen_overflows: u64,
    /// `ListenDrops`: every SYN or handshake ACK the listener dropped (any reason).
    pub listen_drops: u64,
    /// `TCPReqQFullDrop`: SYNs dropped because the SYN queue was full and cookies are off.
    pub syn_queue_full_drops: u64,
    /// `TCPReqQFullDoCookies`: SYNs that went to cookie mode (Linux also counts these when
    /// `tcp_syncookies` = 2 and the queue is not full).
    pub syn_queue_full_cookies: u64,
    /// `SyncookiesSent`: SYN-ACKs sent with a cookie.
    pub cookies_sent: u64,
    /// `EmbryonicRsts`: handshakes reset because of `tcp_abort_on_overflow`.
    pub overflow_resets: u64,
    /// Connections the application took off the accept queue (`accept()` calls that
    /// returned a connection).
    pub accepted: u64,
}

/// Established connections waiting for `accept()`. Linux's `sk_acceptq_is_full` is
/// `len > max`, so a backlog of N holds N + 1 connections; we keep that.
/// Memory bound: `max + 1` items.
#[derive(Debug)]
pub struct AcceptQueue<T> {
    items: VecDeque<T>,
    max: usize,
}

impl<T> AcceptQueue<T> {
    /// `max` = min(listen backlog, somaxconn), as `listen()` computes it.
    pub fn new(max: usize) -> Self {
        AcceptQueue {
            items: VecDeque::new(),
            max,
        }
    }
    pub fn max(&self) -> usize {
        self.max
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_full(&self) -> bool {
        self.items.len() > self.max
    }
    /// Appends an established connection; gives it back when full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.is_full() {
            return Err(item);
        }
        self.items.push_back(item);
        Ok(())
    }
    /// The oldest established connection (what `accept()` returns).
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }
}

/// One listening socket's queues and counters.
pub struct Listener<K, V, T> {
    pub syn_queue: SynQueue<K, V>,
    pub accept_queue: AcceptQueue<T>,
    pub stats: ListenerStats,
    /// When we last sent a cookie (Linux `tcp_synq_overflow`): ACKs are tried as cookies only
    /// shortly after.
    last_cookie: Option<Instant>,
}

impl<K: Hash + Eq + Clone, V, T> Listener<K, V, T> {
    /// Like `listen(backlog)`: the accept queue's max is min(backlog, somaxconn). The SYN queue
    /// is bounded in memory by `tcp_max_syn_backlog` at listen time and counts as full at the
    /// accept queue's max (Linux >= 4.4 `inet_csk_reqsk_queue_is_full`: qlen >= max backlog).
    pub fn new(backlog: usize, cfg: &TcpConfig) -> Self {
        Listener {
            syn_queue: SynQueue::with_capacity(cfg.max_syn_backlog),
            accept_queue: AcceptQueue::new(backlog.min(cfg.somaxconn)),
            stats: ListenerStats::default(),
            last_cookie: None,
        }
    }

    /// Linux `inet_csk_reqsk_queue_is_full`, plus our hard memory bound.
    pub fn syn_queue_full(&self) -> bool {
        self.syn_queue.len() >= self.accept_queue.max() || self.syn_queue.is_full()
    }

    /// Decides a new SYN, in `tcp_conn_request()`'s order:
    /// 1. `tcp_syncookies` = 2, or the SYN queue is full: cookie if cookies are on (1 or 2),
    ///    else drop (`TCPReqQFullDrop`). A SYN accepted from TIME-WAIT (`from_time_wait`,
    ///    RFC 6191) skips this step ("TW buckets are converted to open requests without
    ///    limitations"), within our memory bound.
    /// 2. Accept queue full: drop (`ListenOverflows`), even in cookie mode.
    /// 3. Cookies off and fewer than a quarter of `tcp_max_syn_backlog` slots free: drop.
    ///    Linux keeps that quarter for peers proven alive by its TCP metrics cache; we have
    ///    no such cache, so no peer is proven.
    ///
    /// Every drop counts in `ListenDrops`.
    pub fn on_syn(&mut self, cfg: &TcpConfig, now: Instant, from_time_wait: bool) -> SynDecision {
        let from_time_wait = from_time_wait && !self.syn_queue.is_full();
        let mut cookie = false;
        if !from_time_wait && (cfg.syncookies == SynCookieMode::Always || self.syn_queue_full()) {
            if cfg.syncookies == SynCookieMode::Never {
                self.stats.syn_queue_full_drops += 1;
                return self.drop_one();
            }
            self.stats.syn_queue_full_cookies += 1;
            cookie = true;
        }
        if self.accept_queue.is_full() {
            self.stats.listen_overflows += 1;
            return self.drop_one();
        }
        if cookie {
            self.stats.cookies_sent += 1;
            self.last_cookie = Some(now);
            return SynDecision::Cookie;
        }
        let free = cfg.max_syn_backlog.saturating_sub(self.syn_queue.len());
        if !from_time_wait
            && cfg.syncookies == SynCookieMode::Never
            && free < cfg.max_syn_backlog >> 2
        {
            return self.drop_one();
        }
        SynDecision::Queue
    }

    /// Whether an ACK that matches no connection should be tried as a cookie: cookies are on
    /// and one was sent within `validity` ([`super::cookie::SynCookies::validity`]).
    pub fn may_be_cookie_ack(&self, cfg: &TcpConfig, now: Instant, validity: Duration) -> bool {
        cfg.syncookies != SynCookieMode::Never
            && self
                .last_cookie
                .is_some_and(|t| now.saturating_since(t) < validity)
    }

    /// Decides a valid handshake-completing ACK (the caller checked `SEG.ACK == ISS + 1`,
    /// RFC 9293 §3.10.7.4, or validated the cookie). `via_cookie`: no SYN-queue entry exists;
    /// Linux then never resets (the ACK is just discarded).
    pub fn on_handshake_ack(&mut self, cfg: &TcpConfig, via_cookie: bool) -> AckDecision {
        if !self.accept_queue.is_full() {
            return AckDecision::Accept;
        }
        self.stats.listen_overflows += 1;
        self.stats.listen_drops += 1;
        if cfg.abort_on_overflow && !via_cookie {
            self.stats.overflow_resets += 1;
            AckDecision::Reset
        } else {
            AckDecision::Drop
        }
    }

    /// [`Self::on_handshake_ack`] for a queued request, applied: on `Accept` the entry leaves
    /// the SYN queue, `establish` turns it into `T` and it joins the accept queue; on `Reset`
    /// the entry is removed; on `Drop` it stays. `None` if `key` is not queued.
    pub fn complete(
        &mut self,
        key: &K,
        cfg: &TcpConfig,
        establish: impl FnOnce(V) -> T,
    ) -> Option<AckDecision> {
        if !self.syn_queue.contains(key) {
            return None;
        }
        let decision = self.on_handshake_ack(cfg, false);
        match decision {
            AckDecision::Accept => {
                let v = self.syn_queue.remove(key)?;
                // Cannot fail: the queue was not full.
                let _ = self.accept_queue.push(establish(v));
            }
            AckDecision::Reset => {
                self.syn_queue.remove(key);
            }
            AckDecision::Drop => {}
        }
        Some(decision)
    }

    /// `accept()`: the oldest established connection.
    pub fn accept(&mut self) -> Option<T> {
        self.accept_queue.pop()
    }

    fn drop_one(&mut self) -> SynDecision {
        self.stats.listen_drops += 1;
        SynDecision::Drop
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
