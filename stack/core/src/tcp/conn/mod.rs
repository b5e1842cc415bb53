//! One TCP connection as a sans-IO state machine (RFC 9293).
//!
//! No I/O and no clock reads: every call takes `now`. Segments come in through
//! `Connection::on_segment`, timers fire through `Connection::on_timeout` (the caller asks
//! `Connection::next_deadline` when), and everything due goes out through
//! `Connection::poll_transmit` into a caller closure (the endpoint emits it into a frame).
//! The application side is `send` / `recv` / `shutdown_write` / `close` / `abort` plus
//! `Connection::poll_event`. `Connection` is crate-private: applications reach a connection
//! only through the endpoint ([`crate::tcp::Endpoint`], by [`crate::tcp::ConnId`]); this
//! module's public part is the vocabulary they share (states, events, errors, timers).
//!
//! What connections share is the endpoint's and passed in, never found in a thread-local:
//! the settings (one `Arc<Limits>` per endpoint, given to `connect` / `accept_syn` /
//! `from_cookie`), and per call the challenge-ACK limiter and the buffer pool
//! (`&mut BufPool`, for the calls that take or give back buffer storage: `on_segment`,
//! `send`, `recv`, and `release_buffers` when the endpoint frees the connection).
//!
//! Layout (model: netstack3's one struct per state, quinn-proto's sans-IO API):
//! - `state.rs`: one struct per RFC 9293 state holding only what that state can have, and the
//!   transition table ([`TRANSITIONS`]); transitions are values applied in one place.
//! - `input.rs`: segment arrival, RFC 9293 §3.10.7.3 (SYN-SENT) and §3.10.7.4 (other states)
//!   in the RFC's order, with RFC 5961 and RFC 7323 checks.
//! - `output.rs`: building segments (`poll_transmit`).
//! - `sender.rs` / `receiver.rs`: the send and receive halves. The sender decides what may
//!   go out (peer window, cwnd from tcp/cc, Nagle, sender SWS avoidance) and owns the
//!   send-side invariants (fields private); `sender/recovery.rs` detects and repairs loss
//!   (duplicate ACKs, NewReno, RFC 6675 SACK recovery with `scoreboard.rs`, the RTO
//!   response). The receive side: `receiver.rs` (buffer, reassembly into it, advertised
//!   window with SWS avoidance, the ACK decision; fields private), `reassembly.rs` (held
//!   out-of-order ranges), `delack.rs` (when to ACK), `sack_gen.rs` (SACK / D-SACK blocks),
//!   `text.rs` (the "process the segment text" step and what our segments say about the
//!   receive side).
//! - `rtt.rs`: RFC 6298 estimator; `timers.rs`: the fixed timer table; `limiter.rs`: the
//!   RFC 5961 §7 challenge-ACK limiter.
//!
//! CLOSED and LISTEN are not connection states here: a LISTEN socket is the listener
//! (tcp/listener.rs), and CLOSED is "no connection" (the endpoint answers segments for
//! unknown 4-tuples with a RST, RFC 9293 §3.10.7.1). A connection that reaches
//! [`State::Closed`] only drains its last output (a RST, if any) and unread data.
//!
//! Memory per connection: the struct itself (632 bytes on x86-64, with the 36-byte 4-tuple of
//! either family; a test bounds it) plus,
//! only while they hold bytes, at most `cfg.wmem` bytes of send buffer and `cfg.rmem` bytes
//! of receive buffer (`ring.rs`: storage from the endpoint's pool tcp/bufpool.rs, grown on
//! demand up to those bounds and given back when the buffer empties, so an idle connection
//! holds none), and, only while the peer SACKs or out-of-order data is held, the SACK
//! scoreboard (at most 32 ranges of 8 bytes) and the reassembly range list (at most
//! `reassembly::MAX_RANGES` = 32 ranges of 12 bytes) with one chunk of its own size per
//! range for the held bytes. Rings and chunks are charged to the endpoint's `tcp_mem`
//! accountant (tcp/bufpool.rs), which bounds them all together. The settings it needs are
//! shared (`Arc<Limits>`), not copied.

mod delack;
mod icmp;
mod input;
mod limiter;
mod output;
mod reassembly;
mod receiver;
mod ring;
mod rtt;
mod sack_gen;
mod scoreboard;
mod sender;
mod state;
mod text;
mod timers;

#[cfg(test)]
mod tests;

pub use input::OOW_ACK_INTERVAL;
pub(crate) use limiter::ChallengeAckLimiter;
pub use sender::TxLimit;
pub use state::{state_diagram_mermaid, TRANSITIONS};
pub use timers::Timer;

use std::fmt;
use std::sync::Arc;

use crate::tcp::bufpool::BufPool;
use crate::tcp::cc::{CongestionAlgo, CongestionControl};
use crate::tcp::timewait::TimeWait;
use crate::tcp::tuple::FourTuple;
use crate::tcp::TcpConfig;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};

use state::{Inner, SynRcvd, SynSent};
use timers::Timers;

/// The RFC 9293 state of a connection, for reporting. (LISTEN belongs to the listener.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Our SYN is out; waiting for the SYN-ACK (active open).
    SynSent,
    /// Our SYN-ACK is out; waiting for the handshake's ACK (passive open).
    SynReceived,
    /// Handshake done; data flows both ways.
    Established,
    /// We sent FIN; it is not acknowledged yet.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// Both sides sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// The peer's FIN came first, then ours; waiting for the ACK of ours.
    LastAck,
    /// Both FINs acknowledged; holding the 4-tuple for 2*MSL (RFC 9293 §3.10.7.4).
    TimeWait,
    /// Gone (reset, timed out, aborted, or LAST-ACK done); only its last output and unread data
    /// remain.
    Closed,
}

impl State {
    /// The RFC's spelling: "SYN-SENT", "FIN-WAIT-1", ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::SynSent => "SYN-SENT",
            State::SynReceived => "SYN-RECEIVED",
            State::Established => "ESTABLISHED",
            State::FinWait1 => "FIN-WAIT-1",
            State::FinWait2 => "FIN-WAIT-2",
            State::CloseWait => "CLOSE-WAIT",
            State::Closing => "CLOSING",
            State::LastAck => "LAST-ACK",
            State::TimeWait => "TIME-WAIT",
            State::Closed => "CLOSED",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a connection ended abnormally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ConnError {
    /// Our SYN was answered by a RST (RFC 9293 §3.10.7.3): ECONNREFUSED.
    #[error("connection refused")]
    Refused,
    /// The peer reset the connection (RFC 9293 §3.10.7.4, RFC 5961 §3): ECONNRESET.
    #[error("connection reset")]
    Reset,
    /// SYN retries, data retries (tcp_retries2), keepalive probes or the user timeout ran
    /// out: ETIMEDOUT.
    #[error("connection timed out")]
    TimedOut,
    /// We aborted it: `abort()`, or `close()` with unread data (RFC 2525 §2.17).
    #[error("connection aborted")]
    Aborted,
    /// An ICMP error other than port unreachable answered our SYN (Linux `tcp_v4_err` in
    /// SYN-SENT: `sk_err` from `icmp_err_convert`), or a soft ICMP error was the last word
    /// before a timeout (Linux reports `sk_err_soft` instead of ETIMEDOUT).
    #[error("{0}")]
    Unreachable(crate::tcp::icmp::Unreachable),
}

/// What the application is told. Edge-triggered: each is reported once per occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The handshake completed (ESTABLISHED entered).
    Connected,
    /// New in-order data can be read with `recv`.
    Readable,
    /// Send-buffer space was freed after a `send` was refused or short.
    Writable,
    /// The peer sent FIN: after the buffered data, `recv` returns 0 (end of stream).
    PeerFin,
    /// The connection ended abnormally; a `Closed` follows.
    Error(ConnError),
    /// Both directions are finished (TIME-WAIT or CLOSED entered); nothing more will happen
    /// for the application.
    Closed,
}

/// Why `send` refused data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SendError {
    /// The handshake has not completed yet (SYN-SENT, SYN-RECEIVED).
    #[error("not connected")]
    NotConnected,
    /// The send buffer (`cfg.wmem`) is full; wait for `Event::Writable`.
    #[error("send buffer full")]
    Full,
    /// `shutdown_write` or `close` was called, or our FIN is out.
    #[error("write side closed")]
    WriteClosed,
    /// The connection is gone: how it ended, if abnormally.
    #[error("closed{}", match .0 { Some(e) => format!(": {e}"), None => String::new() })]
    Closed(Option<ConnError>),
}

/// What the handshake agreed on (RFC 9293 §3.7.1, RFC 7323, RFC 2018). Fixed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Negotiated {
    /// MSS we send with: min(peer's MSS option, or 536 when absent (RFC 9293 §3.7.1), cfg.mss).
    pub mss: u16,
    /// Window scale shifts (RFC 7323 §2.2): the peer's (applied to windows it sends) and ours
    /// (applied to windows we send). Both 0 unless both SYNs carried the option.
    pub snd_shift: u8,
    /// Our shift (applied to windows we send); 0 to 14.
    pub rcv_shift: u8,
    /// Window scaling in use (both SYNs carried the option).
    pub window_scaling: bool,
    /// SACK-permitted on both SYNs (RFC 2018 §2): then we send SACK blocks and use the peer's
    /// for recovery (RFC 6675).
    pub sack: bool,
    /// Timestamps on both SYNs (RFC 7323 §3.2): then every non-RST segment carries them.
    pub timestamps: bool,
}

/// RFC 9293 §3.7.1: the MSS assumed when the peer's SYN has no MSS option.
pub const DEFAULT_MSS: u16 = 536;

impl Negotiated {
    /// Our receive window shift: the smallest that lets `cfg.rmem` fit a 16-bit window
    /// (RFC 7323 §2.3: at most 14).
    pub fn our_shift(cfg: &TcpConfig) -> u8 {
        let mut shift = 0u8;
        while shift < 14 && (cfg.rmem >> shift) > 0xffff {
            shift += 1;
        }
        shift
    }

    /// What a passive open agrees to given the peer's SYN: `cfg`'s offer answered by `syn`
    /// ([`Negotiated::agree`]). The listener and SYN cookies use this too.
    pub fn from_syn(cfg: &TcpConfig, syn: &TcpRepr<'_>) -> Negotiated {
        Negotiated::offer(cfg).agree(syn)
    }

    /// The one negotiation, for both opens: our offer (`self`) against the peer's SYN or
    /// SYN-ACK. Each option is in use only if both sides offered it (RFC 7323 §1.3, §3.2;
    /// RFC 2018 §2); the MSS is the smaller of both, the peer's defaulting to 536 (RFC 9293
    /// §3.7.1).
    pub fn agree(self, peer: &TcpRepr<'_>) -> Negotiated {
        let o = &peer.options;
        let ws = self.window_scaling && o.window_scale.is_some();
        Negotiated {
            mss: o.mss.unwrap_or(DEFAULT_MSS).min(self.mss).max(64),
            snd_shift: if ws {
                o.window_scale.unwrap_or(0).min(14)
            } else {
                0
            },
            rcv_shift: if ws { self.rcv_shift } else { 0 },
            window_scaling: ws,
            sack: self.sack && o.sack_permitted,
            timestamps: self.timestamps && o.timestamp.is_some(),
        }
    }

    /// What we offer on a SYN (an active open) or could agree to (a passive one).
    pub fn offer(cfg: &TcpConfig) -> Negotiated {
        Negotiated {
            mss: cfg.mss,
            snd_shift: 0,
            rcv_shift: if cfg.window_scaling {
                Self::our_shift(cfg)
            } else {
                0
            },
            window_scaling: cfg.window_scaling,
            sack: cfg.sack,
            timestamps: cfg.timestamps,
        }
    }
}

/// The settings a connection needs (not the whole `TcpConfig`). Shared, not copied: the
/// endpoint builds one `Arc<Limits>` from its config and hands it to every connection it
/// makes (8 bytes per connection instead of 152).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    rto_initial: Duration,
    rto_min: Duration,
    rto_max: Duration,
    syn_retries: u32,
    synack_retries: u32,
    retries2: u32,
    /// `tcp_orphan_retries`, 0 already turned into 8 (`Limits::new`).
    orphan_retries: u32,
    fin_timeout: Duration,
    time_wait: Duration,
    /// `tcp_invalid_ratelimit` (conn/input.rs `oow_limited`, TIME-WAIT records).
    invalid_ratelimit: Duration,
    /// `tcp_rfc1337` (TIME-WAIT records).
    rfc1337: bool,
    keepalive_time: Duration,
    keepalive_intvl: Duration,
    keepalive_probes: u32,
    rmem: usize,
    wmem: usize,
    /// What our SYN offers (our MSS, window shift, SACK, timestamps).
    offer: Negotiated,
    cc: CongestionAlgo,
    /// `tcp_mtu_probing` (0, 1, 2) and `tcp_base_mss` (tcp/icmp.rs, sender/pmtu.rs).
    mtu_probing: u8,
    base_mss: u16,
}

impl Limits {
    /// What our SYN offers on a connection of `tuple`'s family (IPv6: MSS 20 bytes less).
    pub(crate) fn offer_for(&self, tuple: &FourTuple) -> Negotiated {
        Negotiated {
            mss: crate::tcp::endpoint::family_mss(self.offer.mss, tuple),
            ..self.offer
        }
    }

    pub(crate) fn new(cfg: &TcpConfig) -> Limits {
        Limits {
            rto_initial: cfg.rto_initial,
            rto_min: cfg.rto_min,
            rto_max: cfg.rto_max,
            syn_retries: cfg.syn_retries,
            synack_retries: cfg.synack_retries,
            retries2: cfg.retries2,
            orphan_retries: match cfg.orphan_retries {
                0 => 8,
                n => n,
            },
            fin_timeout: cfg.fin_timeout,
            time_wait: cfg.time_wait(),
            invalid_ratelimit: cfg.invalid_ratelimit,
            rfc1337: cfg.rfc1337,
            keepalive_time: cfg.keepalive_time,
            keepalive_intvl: cfg.keepalive_intvl,
            keepalive_probes: cfg.keepalive_probes,
            rmem: cfg.rmem,
            wmem: cfg.wmem,
            offer: Negotiated::offer(cfg),
            cc: cfg.congestion_control,
            mtu_probing: cfg.mtu_probing,
            base_mss: cfg.base_mss,
        }
    }
}

/// RFC 7323 timestamp state.
#[derive(Debug, Clone, Copy, Default)]
struct Timestamps {
    /// Added to our millisecond clock so TSvals do not reveal uptime (RFC 7323 §7.1).
    offset: u32,
    /// TS.Recent: the TSval to echo (RFC 7323 §4.3).
    recent: u32,
    /// When TS.Recent was last updated (for PAWS's 24-day rule, RFC 7323 §5.5).
    recent_at: Instant,
    /// Last.ACK.sent (RFC 7323 §4.3).
    last_ack_sent: SeqNum,
}

/// Replies owed to the peer, sent by the next `poll_transmit`.
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// An ACK (carrying our current RCV.NXT and window) is owed.
    ack: bool,
    /// A SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED) is due.
    syn: bool,
    /// The SYN-ACK again for a duplicate SYN: not a retransmission (no retry, no backoff).
    syn_again: bool,
    /// A zero-length probe <SEQ=SND.UNA-1> is due (keepalive or zero-window probe).
    probe: bool,
    /// A RST to send: (seq, Some(ack) for RST|ACK).
    rst: Option<(SeqNum, Option<SeqNum>)>,
    /// A duplicate to report in the next ACK's first SACK block (RFC 2883 D-SACK).
    dsack: Option<(SeqNum, SeqNum)>,
}

/// Edge-triggered application events; a fixed bit set, so bounded and allocation-free.
#[derive(Debug, Clone, Copy, Default)]
struct Events {
    bits: u8,
    error: Option<ConnError>,
}

const EV_CONNECTED: u8 = 1;
const EV_READABLE: u8 = 2;
const EV_PEER_FIN: u8 = 4;
const EV_WRITABLE: u8 = 8;
const EV_ERROR: u8 = 16;
const EV_CLOSED: u8 = 32;

/// What the application asked for, independent of state.
#[derive(Debug, Clone, Copy, Default)]
struct App {
    /// `shutdown_write` or `close` was called: FIN queued (or will be, once established).
    write_closed: bool,
    /// `close` was called: nobody reads any more (orphaned, Linux's term).
    orphaned: bool,
    /// A `send` was refused or short: report `Writable` when space frees.
    want_writable: bool,
    keepalive: bool,
    user_timeout: Option<Duration>,
    /// Nagle's algorithm off (TCP_NODELAY).
    nodelay: bool,
}

/// One TCP connection. See the module docs.
#[derive(Debug)]
pub(crate) struct Connection {
    tuple: FourTuple,
    inner: Inner,
    /// Our initial send sequence number (RFC 9293 §3.4), kept for the connection's life.
    iss: SeqNum,
    nego: Negotiated,
    ts: Timestamps,
    limits: Arc<Limits>,
    timers: Timers,
    pending: Pending,
    events: Events,
    app: App,
    /// When the last acceptable segment arrived (keepalive idle time).
    last_rx: Instant,
    /// Keepalive probes sent without an answer.
    probes_out: u32,
    /// When we last answered an out-of-window segment or sent a challenge ACK (Linux
    /// `last_oow_ack_time`), for the per-connection ACK-loop limit.
    last_oow_ack: Option<Instant>,
    /// [`Instant::ms_stamp`] of the last ACK the ACK check took (acceptable and not older
    /// than SND.UNA: Linux `rcv_tstamp`, ss's `lastack`); the creation time before one.
    /// 4 bytes, in what was padding.
    ack_rx: u32,
    /// The last soft ICMP error, cleared by an ACK that is not old (icmp.rs, Linux
    /// `sk_err_soft`).
    soft_error: Option<ConnError>,
}

/// What `on_segment` asks of the caller beyond the connection's own output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Arrival {
    /// Handled (replies, if any, come from `poll_transmit`).
    Done,
    /// A SYN for this 4-tuple arrived in TIME-WAIT and may start a new connection
    /// (RFC 6191): the caller drops this connection and hands the SYN to the listener.
    Reopen,
}

impl Connection {
    /// `inner` is SYN-SENT or SYN-RECEIVED with the same `iss`.
    fn new(
        now: Instant,
        limits: &Arc<Limits>,
        tuple: FourTuple,
        (iss, inner): (SeqNum, Inner),
        nego: Negotiated,
    ) -> Self {
        Connection {
            tuple,
            inner,
            iss,
            nego,
            ts: Timestamps::default(),
            limits: limits.clone(),
            timers: Timers::default(),
            pending: Pending::default(),
            events: Events::default(),
            app: App::default(),
            last_rx: now,
            probes_out: 0,
            last_oow_ack: None,
            ack_rx: now.ms_stamp(),
            soft_error: None,
        }
    }

    /// Active open (RFC 9293 §3.10.1): CLOSED -> SYN-SENT; the SYN goes out with the next
    /// `poll_transmit`. `limits` is the endpoint's (shared by its connections), `iss` comes
    /// from tcp/isn.rs (RFC 6528), `ts_offset` is a per-connection random TSval offset.
    pub fn connect(
        now: Instant,
        limits: &Arc<Limits>,
        tuple: FourTuple,
        iss: SeqNum,
        ts_offset: u32,
    ) -> Self {
        let inner = Inner::SynSent(SynSent {
            iss,
            tx: 0,
            sent_at: now,
        });
        let mut c = Connection::new(now, limits, tuple, (iss, inner), limits.offer_for(&tuple));
        c.ts.offset = ts_offset;
        c.pending.syn = true;
        c
    }

    /// Passive open (RFC 9293 §3.10.7.2): a listener got `syn`; LISTEN -> SYN-RECEIVED. The
    /// SYN-ACK <SEQ=ISS><ACK=SEG.SEQ+1> goes out with the next `poll_transmit`. The caller
    /// has already checked `syn` is a SYN without RST/ACK.
    pub fn accept_syn(
        now: Instant,
        limits: &Arc<Limits>,
        tuple: FourTuple,
        syn: &TcpRepr<'_>,
        iss: SeqNum,
        ts_offset: u32,
    ) -> Self {
        let nego = limits.offer_for(&tuple).agree(syn);
        let inner = Inner::SynRcvd(SynRcvd {
            iss,
            irs: syn.seq,
            tx: 0,
            sent_at: now,
            active: false,
        });
        let mut c = Connection::new(now, limits, tuple, (iss, inner), nego);
        c.ts.offset = ts_offset;
        c.take_timestamp(now, syn);
        c.pending.syn = true;
        c
    }

    /// A SYN cookie came back (RFC 4987): the listener validated `ack` (its ack is our
    /// ISS+1, its seq the peer's ISS+1) and decoded `nego` from the cookie. Enters ESTABLISHED
    /// directly and processes `ack` (which may carry data or FIN) as the third segment.
    pub fn from_cookie(
        now: Instant,
        limits: &Arc<Limits>,
        tuple: FourTuple,
        ack: &TcpRepr<'_>,
        nego: Negotiated,
        ts_offset: u32,
        pool: &mut BufPool,
    ) -> Self {
        let iss = ack.ack - 1;
        let inner = Inner::SynRcvd(SynRcvd {
            iss,
            irs: ack.seq - 1,
            tx: 0,
            sent_at: now,
            active: false,
        });
        let mut c = Connection::new(now, limits, tuple, (iss, inner), nego);
        c.ts.offset = ts_offset;
        c.take_timestamp(now, ack);
        c.ts.last_ack_sent = ack.seq;
        let mut limiter = ChallengeAckLimiter::new(0);
        // The SYN-RECEIVED step of §3.10.7.4 "fifth check the ACK field" turns it ESTABLISHED.
        let _ = c.on_segment(now, ack, &mut limiter, pool);
        if let Inner::SynRcvd(_) = c.inner {
            // Not a valid third segment after all (wrong ports, RST, no ACK): there is no
            // SYN-ACK to retransmit for a cookie, so drop it rather than leave it half-open.
            c.apply(now, state::Transition::Closed(None));
        }
        c
    }

    /// The reporting state.
    pub fn state(&self) -> State {
        self.inner.kind()
    }

    /// The connection's 4-tuple (`local` = our side).
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Our initial send sequence number (RFC 9293 §3.4).
    pub fn iss(&self) -> SeqNum {
        self.iss
    }

    /// What the handshake agreed on (for SYN-SENT: what we offered).
    pub fn negotiated(&self) -> Negotiated {
        self.nego
    }

    /// RFC 6298 estimate: (SRTT once sampled, current RTO), for the sending states.
    pub fn rtt(&self) -> Option<(Option<Duration>, Duration)> {
        self.inner.sender().map(|s| (s.rtt().srtt(), s.rtt().rto()))
    }

    /// Congestion state (cwnd, ssthresh) in bytes, for the sending states.
    pub fn congestion_window(&self) -> Option<(u32, u32)> {
        self.inner
            .sender()
            .map(|s| (s.cc().cwnd(), s.cc().ssthresh()))
    }

    /// What stopped the last transmit round (see [`TxLimit`]); `None` when nothing is queued
    /// or in flight, or the state sends no data.
    pub fn tx_limit(&self) -> Option<TxLimit> {
        self.inner.sender().and_then(|s| s.limit())
    }

    /// SND.MAX (highest sequence number sent + 1) in the data-sending states.
    pub fn snd_max(&self) -> Option<SeqNum> {
        self.inner.sender().map(|s| s.max())
    }

    /// Turn Nagle's algorithm off (`true`, Linux TCP_NODELAY) or on (RFC 9293 §3.7.4: on by
    /// default). Small segments then go out at once even while data is unacknowledged;
    /// data already queued goes with the next `poll_transmit`.
    pub fn set_nodelay(&mut self, on: bool) {
        self.app.nodelay = on;
    }

    /// The error the connection ended with, if any.
    pub fn error(&self) -> Option<ConnError> {
        self.events.error
    }

    /// Earliest armed timer; the caller calls `on_timeout` at or after it.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// The deadline of one timer (tests and diagnostics).
    pub fn timer(&self, t: Timer) -> Option<Instant> {
        self.timers.get(t)
    }

    /// True when the connection is CLOSED and has nothing left to send: the endpoint may
    /// free it once the application has read what it wants.
    pub fn is_finished(&self) -> bool {
        matches!(self.inner, Inner::Closed(_)) && self.pending.rst.is_none()
    }

    /// Next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        const ORDER: [u8; 6] = [
            EV_CONNECTED,
            EV_READABLE,
            EV_PEER_FIN,
            EV_WRITABLE,
            EV_ERROR,
            EV_CLOSED,
        ];
        let bit = *ORDER.iter().find(|&&b| self.events.bits & b != 0)?;
        self.events.bits &= !bit;
        Some(match bit {
            EV_CONNECTED => Event::Connected,
            EV_READABLE => Event::Readable,
            EV_PEER_FIN => Event::PeerFin,
            EV_WRITABLE => Event::Writable,
            EV_ERROR => Event::Error(self.events.error.unwrap_or(ConnError::Aborted)),
            _ => Event::Closed,
        })
    }

    fn signal(&mut self, bit: u8) {
        self.events.bits |= bit;
    }

    /// Queue application data. Returns how many bytes were taken (bounded by `cfg.wmem`);
    /// `Err(Full)` when none fit. Data goes out with the next `poll_transmit`. Buffer
    /// storage comes from `pool`.
    pub fn send(
        &mut self,
        _now: Instant,
        data: &[u8],
        pool: &mut BufPool,
    ) -> Result<usize, SendError> {
        if self.app.write_closed {
            return Err(SendError::WriteClosed);
        }
        let error = self.events.error;
        let Some(snd) = self.inner.writable_sender_mut() else {
            return Err(match self.inner.kind() {
                State::SynSent | State::SynReceived => SendError::NotConnected,
                State::Closed => SendError::Closed(error),
                _ => SendError::WriteClosed, // our FIN is queued or sent
            });
        };
        let n = snd.write(data, pool);
        if n < data.len() {
            self.app.want_writable = true;
        }
        if n == 0 && !data.is_empty() {
            return Err(SendError::Full);
        }
        Ok(n)
    }

    /// Bytes that `send` would accept now.
    pub fn send_capacity(&self) -> usize {
        match self.inner.writable_sender() {
            Some(s) if !self.app.write_closed => s.space(),
            _ => 0,
        }
    }

    /// Read in-order received data. Returns 0 when nothing is buffered (check `state()` /
    /// `PeerFin` for end of stream). Reading may open the window enough to owe the peer a
    /// window update (RFC 9293 §3.8.6.2.2). Storage read empty goes back to `pool`.
    pub fn recv(&mut self, buf: &mut [u8], pool: &mut BufPool) -> usize {
        let (n, update) = self.inner.read(buf, pool);
        if update {
            self.pending.ack = true;
        }
        n
    }

    /// Bytes `recv` can return now.
    pub fn recv_available(&self) -> usize {
        self.inner.unread()
    }

    /// Half-close (RFC 9293 §3.10.4 CLOSE, send side): queue a FIN after the buffered data;
    /// keep receiving. ESTABLISHED -> FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK. In SYN-RECEIVED the
    /// FIN is queued until ESTABLISHED; in SYN-SENT the connection is dropped (nothing sent).
    pub fn shutdown_write(&mut self, now: Instant) {
        if self.app.write_closed {
            return;
        }
        self.app.write_closed = true;
        match self.inner.kind() {
            State::SynSent => self.apply(now, state::Transition::Closed(None)),
            State::Established => self.apply(now, state::Transition::FinWait1),
            State::CloseWait => self.apply(now, state::Transition::LastAck),
            _ => {}
        }
    }

    /// Full close (RFC 9293 §3.10.4): like `shutdown_write`, and the application will read no
    /// more. With unread received data, the connection is reset instead (RFC 2525 §2.17, as
    /// Linux does): RST, CLOSED, `Error(Aborted)`. An orphaned connection left in FIN-WAIT-2
    /// is dropped after `cfg.fin_timeout`; data arriving for it is answered with a RST.
    pub fn close(&mut self, now: Instant) {
        if self.app.orphaned {
            return;
        }
        self.app.orphaned = true;
        if self.recv_available() > 0 && self.inner.is_synchronized() {
            self.abort(now);
            return;
        }
        self.shutdown_write(now);
        if let Inner::FinWait2(_) = self.inner {
            self.timers
                .set(Timer::FinWait2, now + self.limits.fin_timeout);
        }
    }

    /// Abort (RFC 9293 §3.10.5): in a synchronized state send RST <SEQ=SND.NXT> (with ACK,
    /// as Linux does); enter CLOSED; report `Error(Aborted)`. SND.NXT here is the highest
    /// sequence number sent (SND.MAX): after an RTO pulled SND.NXT back to SND.UNA, a RST at
    /// SND.NXT would be below the peer's RCV.NXT when the peer got the flight, and be
    /// challenged instead of accepted (Linux never pulls snd_nxt back; tcp_send_active_reset
    /// uses tcp_acceptable_seq).
    pub fn abort(&mut self, now: Instant) {
        match &self.inner {
            Inner::Closed(_) => return,
            Inner::SynSent(_) | Inner::TimeWait(_) => {}
            _ => {
                let nxt = self
                    .inner
                    .sender()
                    .map_or(self.inner.snd_nxt(), |s| s.max());
                self.pending.rst = Some((nxt, self.inner.rcv_nxt()));
            }
        }
        self.app.orphaned = true;
        self.app.write_closed = true;
        self.apply(now, state::Transition::Closed(Some(ConnError::Aborted)));
    }

    /// Turn keepalive (RFC 9293 §3.8.4; Linux SO_KEEPALIVE with tcp_keepalive_*) on or off.
    pub fn set_keepalive(&mut self, now: Instant, on: bool) {
        self.app.keepalive = on;
        self.rearm_keepalive();
        // As Linux's SO_KEEPALIVE: the first check is a full keepalive_time after enabling.
        if self.timers.is_set(Timer::Keepalive) {
            self.timers
                .set(Timer::Keepalive, now + self.limits.keepalive_time);
        }
    }

    /// User timeout (RFC 9293 §3.8.4, RFC 5482; Linux TCP_USER_TIMEOUT): abort with
    /// `TimedOut` when sent data stays unacknowledged this long. In SYN-SENT (set right after
    /// `connect`) it also bounds the connection attempt, as in Linux. `None` turns it off.
    pub fn set_user_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        self.app.user_timeout = timeout;
        self.timers.clear(Timer::UserTimeout);
        match (timeout, &self.inner) {
            (Some(ut), Inner::SynSent(_)) => self.timers.set(Timer::UserTimeout, now + ut),
            _ => self.rearm_user_timeout(now),
        }
    }

    /// Drops the connection, giving every buffer it still holds back to `pool` (unread data
    /// is discarded): the endpoint calls it as it frees the connection. (Dropping it
    /// otherwise frees the storage to the allocator.)
    pub fn release_buffers(self, pool: &mut BufPool) {
        let mut inner = self.inner;
        if let Some(r) = inner.receiver_mut() {
            r.discard_held(pool);
        }
        if let Inner::Closed(c) = &inner {
            pool.recharge_ooo(c.ooo_debt, 0);
        }
        for mut r in inner.into_rings().into_iter().flatten() {
            r.release(pool);
        }
    }

    /// In TIME-WAIT: the compact record the endpoint may keep instead of this connection.
    pub fn time_wait_record(&self) -> Option<TimeWait> {
        match &self.inner {
            Inner::TimeWait(s) => Some(s.rec),
            _ => None,
        }
    }

    /// Our TSval clock: milliseconds plus the per-connection offset (RFC 7323 §5.4).
    fn ts_val(&self, now: Instant) -> u32 {
        (now.as_millis() as u32).wrapping_add(self.ts.offset)
    }

    /// Record the peer's TSval from a SYN/first segment as TS.Recent.
    fn take_timestamp(&mut self, now: Instant, seg: &TcpRepr<'_>) {
        if let (true, Some((val, _))) = (self.nego.timestamps, seg.options.timestamp) {
            self.ts.recent = val;
            self.ts.recent_at = now;
        }
    }
}

/// Read-only views for diagnostics (the endpoint's `ConnInfo`, `ss -i` / TCP_INFO style).
impl Connection {
    /// SND.UNA, SND.NXT (RFC 9293 §3.3.1; ISS and ISS + 1 during the handshake).
    pub(crate) fn snd_seq(&self) -> (SeqNum, SeqNum) {
        (self.inner.snd_una(), self.inner.snd_nxt())
    }

    /// [`Instant::ms_stamp`] of the last ACK taken (see the field; ss's `lastack`).
    pub(crate) fn ack_stamp(&self) -> u32 {
        self.ack_rx
    }

    /// RCV.NXT once there is one.
    pub(crate) fn rcv_nxt(&self) -> Option<SeqNum> {
        self.inner.rcv_nxt()
    }

    /// The peer's window SND.WND (scaled), in the sending states.
    pub(crate) fn snd_wnd(&self) -> Option<u32> {
        self.inner.sender().map(|s| s.window())
    }

    /// RTTVAR (RFC 6298), once sampled, in the sending states.
    pub(crate) fn rttvar(&self) -> Option<Duration> {
        self.inner.sender().and_then(|s| s.rtt().rttvar())
    }

    /// Consecutive retransmission timeouts without progress (Linux `tcpi_retransmits`).
    pub(crate) fn rto_count(&self) -> u32 {
        self.inner.sender().map_or(0, |s| s.rto_count())
    }

    /// Bytes sent and not yet acknowledged (RFC 5681 FlightSize; the FIN counts one).
    pub(crate) fn flight_size(&self) -> u32 {
        self.inner.sender().map_or(0, |s| s.flight_size())
    }

    /// Memory charged for the send buffer, unacknowledged and unsent data (Linux
    /// `sk_wmem_queued`; bufpool.rs).
    pub(crate) fn send_charged(&self) -> usize {
        self.inner.sender().map_or(0, |s| s.charged())
    }

    /// Queued bytes not yet sent (Linux `tcpi_notsent_bytes`).
    pub(crate) fn unsent(&self) -> usize {
        self.inner.sender().map_or(0, |s| s.unsent())
    }
}

/// Readable bytes helper shared by the receive halves.
fn read_from(buf: &mut ring::Ring, out: &mut [u8], pool: &mut BufPool) -> usize {
    let n = out.len().min(buf.len());
    let (a, b) = buf.as_slices();
    let na = n.min(a.len());
    out[..na].copy_from_slice(&a[..na]);
    out[na..n].copy_from_slice(&b[..n - na]);
    buf.drain(..n, pool);
    n
}
