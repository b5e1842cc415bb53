//! The sending half: SND.UNA / SND.NXT / SND.WND (RFC 9293 §3.3.1), the bounded send buffer,
//! what may be sent now (peer window, congestion window, Nagle and sender SWS avoidance) and
//! the retransmission state. Loss detection and recovery (duplicate ACKs, NewReno, SACK,
//! RTO response) are in recovery.rs; the congestion window in tcp/cc.
//!
//! Sequence layout: the buffer holds bytes [SND.UNA, SND.UNA + len); when `fin` is set, the
//! FIN occupies the sequence number right after them. Data between SND.NXT and SND.MAX was
//! sent before an RTO moved SND.NXT back (go-back-N).
//!
//! Memory: the buffer is at most `cap` (= cfg.wmem) bytes; the scoreboard at most
//! 32 ranges (scoreboard.rs); the rest is fixed-size.
//!
//! Encapsulation: the fields are private to this file and recovery.rs (the same type's
//! loss-recovery half), so the invariants SND.UNA =< SND.NXT =< SND.MAX, the FIN's
//! queued / sent / acknowledged life, the window edges (SND.WL1 / SND.WL2) and the probe and
//! RTO counters are kept here; the connection reads them through accessors and changes them
//! through the events that change them (`process_ack`, `on_sent`, `on_rto`, `on_persist`,
//! `queue_fin`, ...).

mod pmtu;
mod recovery;

pub(super) use recovery::AckResult;

use super::ring::{Ring, MIN_ALLOC};
use super::rtt::Rtt;
use super::scoreboard::{dist, Scoreboard};
use super::{Limits, Negotiated};
use crate::tcp::bufpool::BufPool;
use crate::tcp::cc::{Cc, CongestionControl};
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};
use recovery::{AckInfo, Recovery};

#[derive(Debug)]
pub(super) struct Sender {
    /// SND.UNA: oldest unacknowledged sequence number.
    una: SeqNum,
    /// SND.NXT: next sequence number to send (moved back to SND.UNA on RTO).
    nxt: SeqNum,
    /// Highest sequence number sent + 1 (SND.MAX, RFC 6675's HighData + 1): ACKs up to here
    /// are valid even after SND.NXT was moved back.
    max: SeqNum,
    /// SND.WND in bytes (already scaled).
    wnd: u32,
    /// MAX.SND.WND (RFC 5961 §5): the largest window the peer has advertised.
    max_wnd: u32,
    /// SND.WL1 / SND.WL2: segment seq / ack of the last window update.
    wl1: SeqNum,
    wl2: SeqNum,
    /// The peer's window scale shift.
    shift: u8,
    mss: u16,
    /// Unacknowledged and unsent bytes, starting at SND.UNA. At most `cap` bytes.
    buf: Ring,
    cap: usize,
    /// A FIN follows the buffered bytes (CLOSE was called).
    fin: bool,
    /// Our FIN has been acknowledged (then SND.UNA is past it and the buffer empty).
    fin_acked: bool,
    rtt: Rtt,
    /// Consecutive retransmission timeouts without progress (for tcp_retries2).
    rto_count: u32,
    /// RTO doublings since the last RTT sample (Linux `icsk_backoff`), for RFC 6069's
    /// revert; saturates (the RTO is at rto_max long before).
    backoff: u8,
    /// When this timeout episode's head segment went out, on our millisecond clock (wrapping;
    /// set at the first timeout: that timeout's instant minus the RTO that expired; valid
    /// while `rto_count` > 0): where tcp_retries2's time budget starts (Linux
    /// `retrans_stamp`).
    rto_since_ms: u32,
    /// Persist backoff exponent: zero-window probes sent since the window closed.
    probes: u16,
    /// Zero-window probes the peer has not answered (any acceptable ACK answers); the
    /// connection gives up after tcp_retries2 of them, as Linux does.
    zwp_unanswered: u16,
    /// The segment being timed for an RTT sample (Karn): (its end, when sent).
    timing: Option<(SeqNum, Instant)>,
    /// The congestion controller (cwnd, ssthresh).
    cc: Cc,
    /// SACK was negotiated (RFC 2018): RFC 6675 recovery and the scoreboard are used.
    sack: bool,
    /// SACKed ranges above SND.UNA (empty without SACK).
    sb: Scoreboard,
    /// RFC 5681 §2 / RFC 6675 duplicate ACKs since the last cumulative ACK.
    dupacks: u32,
    /// RFC 6582 "recover" / RFC 6675 RecoveryPoint (exclusive: SND.MAX when set). A new
    /// recovery starts only once SND.UNA reaches it.
    recover: SeqNum,
    /// In fast recovery (RFC 6582 / RFC 6675) while `Some`.
    recovery: Option<Recovery>,
    /// The segment at SND.UNA must be (re)sent next, outside cwnd: fast retransmit, a
    /// NewReno partial ACK, or the first retransmission after an RTO (which as in Linux also
    /// ignores a zero peer window: it doubles as the window probe).
    rtx_head: bool,
    /// The persist timer fired with a small open window: send what fits even if sender SWS
    /// avoidance would wait (RFC 9293 §3.8.6.2.1 "override timeout").
    force: bool,
    /// The last `next_tx` found data it could not send because of cwnd (for RFC 7661's
    /// "do not grow an unused window").
    cwnd_limited: bool,
    /// When data was last sent (RFC 5681 §4.1 restart after idle).
    last_send: Option<Instant>,
    /// End of the last sub-MSS segment sent (Nagle, Minshall's variant as in Linux).
    sml_end: SeqNum,
    /// The path MTU (Linux `icsk_pmtu_cookie`): the link's at first, lowered by ICMP
    /// (pmtu.rs).
    pmtu: u16,
    /// Black-hole detection's cap on the data MSS (Linux `icsk_mtup.search_low`), 0 while
    /// off (pmtu.rs).
    probe_mss: u16,
    /// PLPMTUD's upper bound on the data MSS (Linux `icsk_mtup.search_high`): the path's
    /// while probing, lowered by failed probes; 0 while off (pmtu.rs).
    probe_high: u16,
    /// The path MTU probe in flight: its first sequence number and length (0: none;
    /// pmtu.rs). Two fields rather than an `Option` of a pair: 6 bytes, not 12.
    probe_seq: SeqNum,
    probe_len: u16,
    /// IP + TCP headers without options: 40 over IPv4, 60 over IPv6 (pmtu.rs,
    /// [`Sender::over_ipv6`]).
    headers: u8,
}

/// What an acceptable ACK did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Acked {
    pub bytes: usize,
    pub fin: bool,
}

/// Why a segment is sent (decides the bookkeeping in `on_sent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TxKind {
    /// New data, or go-back-N after an RTO, at SND.NXT.
    Next,
    /// The segment at SND.UNA (`rtx_head`).
    Head,
    /// A retransmission chosen by RFC 6675 NextSeg rules 1 and 3.
    Hole,
    /// RFC 6675 NextSeg rule 4 (rescue retransmission).
    Rescue,
}

/// What stopped the last transmit round of a connection with data outstanding or queued
/// (diagnostics, computed from the send state: nothing is stored). Linux reports the same
/// split as `tcpi_busy_time` / `tcpi_rwnd_limited` / `tcpi_sndbuf_limited` (`ss -i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxLimit {
    /// Everything queued is sent and the send buffer has room: the application did not
    /// write more (application-limited).
    App,
    /// Everything queued is sent and the send buffer is full: all of `tcp_wmem` is in
    /// flight, waiting for ACKs (send-buffer-limited).
    SendBuffer,
    /// The peer's receive window has no room for the next segment.
    PeerWindow,
    /// The congestion window has no room for the next segment.
    Cwnd,
    /// A short segment is held back by Nagle or sender SWS avoidance (RFC 9293 §3.7.4,
    /// §3.8.6.2.1).
    Small,
}

/// What the persist timer does (RFC 9293 §3.8.6.1, §3.8.6.2.1), see [`Sender::on_persist`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Persist {
    /// Nothing waits (an ACK came first).
    Idle,
    /// Sender SWS avoidance's override timeout: send what fits the small open window.
    SendWhatFits,
    /// Send a zero-window probe; the next check is this far away.
    Probe(Duration),
    /// Too many probes went unanswered: time the connection out.
    GiveUp,
}

/// One segment to send: bytes [seq, seq + len) at `off` in the buffer, then maybe the FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tx {
    pub seq: SeqNum,
    pub off: usize,
    pub len: usize,
    pub fin: bool,
    pub kind: TxKind,
}

impl Sender {
    /// RFC 6691 §2 / RFC 9293 §3.7.1: the MSS bounds data plus TCP options, so every
    /// segment's data shrinks by the 12-byte timestamp option when it is in use (Linux's
    /// mss_cache: 1448 data bytes for MSS 1460). Segments and cwnd both use it.
    fn effective_mss(nego: Negotiated) -> u16 {
        if nego.timestamps {
            nego.mss.saturating_sub(12).max(64)
        } else {
            nego.mss
        }
    }

    pub fn new(iss: SeqNum, nego: Negotiated, cap: usize, limits: &Limits) -> Sender {
        let una = iss + 1u32;
        let mut s = Sender {
            una,
            nxt: una,
            max: una,
            wnd: 0,
            max_wnd: 0,
            wl1: SeqNum(0),
            wl2: SeqNum(0),
            shift: nego.snd_shift,
            // RFC 6691 §2 / RFC 9293 §3.7.1: the MSS bounds data plus TCP options, so every
            // segment's data shrinks by the 12-byte timestamp option when it is in use
            // (Linux: 1448 data bytes for MSS 1460).
            mss: Self::effective_mss(nego),
            buf: Ring::new(cap),
            cap,
            fin: false,
            fin_acked: false,
            rtt: Rtt::new(limits.rto_initial, limits.rto_min, limits.rto_max),
            rto_count: 0,
            backoff: 0,
            rto_since_ms: 0,
            probes: 0,
            zwp_unanswered: 0,
            timing: None,
            // cwnd counts in the same unit as the segments (Linux: snd_cwnd in packets of
            // mss_cache): with the MSS of the handshake, an RTO's 1-SMSS window would be one
            // full segment plus a runt of the option bytes.
            cc: Cc::new(limits.cc, Self::effective_mss(nego)),
            sack: nego.sack,
            sb: Scoreboard::default(),
            dupacks: 0,
            recover: una,
            recovery: None,
            rtx_head: false,
            force: false,
            cwnd_limited: false,
            last_send: None,
            sml_end: una,
            // Our MSS plus the IPv4 and TCP headers: the link's MTU.
            pmtu: limits.offer.mss.saturating_add(40),
            probe_mss: 0,
            probe_high: 0,
            probe_seq: una,
            probe_len: 0,
            headers: pmtu::HEADERS_V4,
        };
        if limits.mtu_probing == 2 {
            s.start_probing(limits.base_mss, nego);
        }
        s
    }

    /// The SYN or SYN-ACK had to be retransmitted: RFC 6298 §5.7, the RTO starts at 3 s
    /// (when smaller) until the first RTT sample; RFC 5681 §3.1 (and RFC 6928 §2), the
    /// initial window is one segment. Linux does both (TCP_TIMEOUT_FALLBACK).
    pub fn after_handshake(mut self, syn_retransmitted: bool, rtt: Option<Duration>) -> Sender {
        // RFC 6298 §2.2: the handshake's sample (state.rs decides it is unambiguous).
        if let Some(r) = rtt {
            self.rtt.sample(r);
        }
        if syn_retransmitted {
            self.rtt.fallback(Duration::from_secs(3));
            // A timeout's response without touching ssthresh: cwnd = 1 SMSS.
            self.cc.on_rto(Instant::ZERO, 0, false);
        }
        self
    }

    /// SND.UNA.
    pub fn una(&self) -> SeqNum {
        self.una
    }

    /// SND.NXT.
    pub fn nxt(&self) -> SeqNum {
        self.nxt
    }

    /// SND.MAX: highest sequence number sent + 1.
    pub fn max(&self) -> SeqNum {
        self.max
    }

    /// SND.WND in bytes.
    pub fn window(&self) -> u32 {
        self.wnd
    }

    /// The RFC 6298 estimator.
    pub fn rtt(&self) -> &Rtt {
        &self.rtt
    }

    /// The congestion controller.
    pub fn cc(&self) -> &Cc {
        &self.cc
    }

    /// Consecutive retransmission timeouts without progress (for tcp_retries2).
    pub fn rto_count(&self) -> u32 {
        self.rto_count
    }

    /// Time since this timeout episode's head segment went out (see `rto_since_ms`); zero
    /// outside an episode.
    pub fn rto_elapsed(&self, now: Instant) -> Duration {
        if self.rto_count == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis((now.as_millis() as u32).wrapping_sub(self.rto_since_ms) as u64)
    }

    /// Bytes in the send buffer (unacknowledged and unsent).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Storage the send buffer is charged for now (its ring's capacity; 0 when empty).
    pub fn charged(&self) -> usize {
        self.buf.capacity()
    }

    /// The buffered bytes wrap around the ring's end (a segment may cross it).
    pub fn wraps(&self) -> bool {
        !self.buf.as_slices().1.is_empty()
    }

    /// Bytes allocated for the buffer (tests check the memory bound).
    #[cfg(test)]
    pub fn allocated(&self) -> usize {
        self.buf.allocated()
    }

    /// CLOSE (RFC 9293 §3.10.4): a FIN follows the buffered data; no more data is taken.
    pub fn queue_fin(&mut self) {
        self.fin = true;
    }

    pub fn space(&self) -> usize {
        if self.fin {
            0
        } else {
            self.cap - self.buf.len()
        }
    }

    /// Append application data; returns how much fit: within the send buffer, and within
    /// what the endpoint's accountant admits (`tcp_mem`, bufpool.rs): a refused growth
    /// takes only what the storage already has room for, except that an empty buffer is
    /// always given one minimum-sized ring (Linux forces memory for the first skb of a
    /// write when the write queue is empty, tcp_sendmsg_locked), so a writer never waits
    /// for memory with nothing in flight to free it.
    pub fn write(&mut self, data: &[u8], pool: &mut BufPool) -> usize {
        let want = data.len().min(self.space());
        let len = self.buf.len();
        let mut n = want;
        if !self.buf.reserve(len + want, 0, pool) {
            if len == 0 {
                let m = want.min(MIN_ALLOC);
                self.buf.reserve(m, m, pool);
            }
            n = want.min(self.buf.capacity() - len);
            if n < want {
                pool.counters().snd_mem_limited += 1;
            }
        }
        self.buf.extend(&data[..n], pool);
        n
    }

    /// Sequence number right after the buffered data (where a FIN goes).
    fn data_end(&self) -> SeqNum {
        self.una + self.buf.len()
    }

    /// Sequence number after everything queued, FIN included.
    fn end(&self) -> SeqNum {
        self.data_end() + (self.fin && !self.fin_acked) as u32
    }

    /// Bytes or FIN sent and not yet acknowledged.
    pub fn in_flight(&self) -> bool {
        self.max != self.una
    }

    /// RFC 5681 FlightSize: sent and not cumulatively acknowledged.
    pub(super) fn flight_size(&self) -> u32 {
        dist(self.una, self.max)
    }

    /// Queued data bytes not sent yet (Linux `tcpi_notsent_bytes`).
    pub(super) fn unsent(&self) -> usize {
        let end = self.data_end();
        if self.nxt.le(end) {
            end - self.nxt
        } else {
            0
        }
    }

    pub fn fin_acked(&self) -> bool {
        self.fin_acked
    }

    /// Data or FIN is queued, nothing is outstanding, and nothing can go now: the persist
    /// timer must run (zero window, or sender SWS avoidance waiting on a small window).
    pub fn stalled(&self) -> bool {
        self.nxt.lt(self.end()) && !self.in_flight()
    }

    /// The peer's window has no room at SND.NXT.
    fn window_closed(&self) -> bool {
        dist(self.nxt, self.una + self.wnd) == 0
    }

    /// RFC 9293 §3.10.7.4 fifth check: "If SND.WL1 < SEG.SEQ or (SND.WL1 = SEG.SEQ and
    /// SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set
    /// SND.WL2 <- SEG.ACK."
    fn update_window(&mut self, seq: SeqNum, ack: SeqNum, raw_wnd: u16) {
        if self.wl1.lt(seq) || (self.wl1 == seq && self.wl2.le(ack)) {
            self.set_window((raw_wnd as u32) << self.shift, seq, ack);
        }
    }

    pub fn set_window(&mut self, wnd: u32, wl1: SeqNum, wl2: SeqNum) {
        self.wnd = wnd;
        self.max_wnd = self.max_wnd.max(wnd);
        self.wl1 = wl1;
        self.wl2 = wl2;
    }

    /// RFC 9293 §3.10.7.4 "fifth check the ACK field" for an acceptable ACK
    /// (`ack_acceptable`): cumulative and duplicate-ACK processing (recovery.rs), then "If
    /// SND.UNA =< SEG.ACK =< SND.NXT, the send window should be updated". Any acceptable ACK
    /// answers our zero-window probes (Linux resets probes_out); an open window also ends
    /// the persist backoff. `sacks` are the segment's SACK blocks when SACK is in use.
    pub fn process_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr<'_>,
        sacks: &[(SeqNum, SeqNum)],
        ts_rtt: Option<Duration>,
        pool: &mut BufPool,
    ) -> AckResult {
        let info = AckInfo {
            ack: seg.ack,
            wnd: (seg.window as u32) << self.shift,
            pure: seg.payload.is_empty() && !seg.flags.syn() && !seg.flags.fin(),
            sacks,
            ts_rtt,
        };
        let mut r = self.on_ack_segment(now, &info, pool);
        self.zwp_unanswered = 0;
        if self.una.le(seg.ack) {
            self.update_window(seg.seq, seg.ack, seg.window);
            if self.wnd > 0 {
                self.probes = 0;
                r.window_open = true;
            }
        }
        r
    }

    /// The persist timer's backoff: RTO * 2^probes.
    pub fn persist_interval(&self) -> Duration {
        self.rtt.rto().saturating_mul(1 << self.probes.min(16))
    }

    /// The persist timer fired (RFC 9293 §3.8.6.1). With the peer's window closed, a
    /// zero-window probe, backing off exponentially; probes continue as long as the peer
    /// answers, and after `max_unanswered` unanswered ones the connection gives up (as
    /// Linux). With a small open window it is sender SWS avoidance's override timeout
    /// (§3.8.6.2.1): send what fits.
    pub fn on_persist(&mut self, max_unanswered: u32) -> Persist {
        if !self.stalled() {
            return Persist::Idle;
        }
        if !self.window_closed() {
            self.force = true;
            return Persist::SendWhatFits;
        }
        if u32::from(self.zwp_unanswered) >= max_unanswered {
            return Persist::GiveUp;
        }
        self.probes = self.probes.saturating_add(1);
        self.zwp_unanswered = self.zwp_unanswered.saturating_add(1);
        Persist::Probe(self.persist_interval())
    }

    /// RFC 5961 §5.2: an ACK is acceptable when
    /// (SND.UNA - MAX.SND.WND) =< SEG.ACK =< SND.NXT (SND.MAX here, see `max`).
    pub fn ack_acceptable(&self, ack: SeqNum) -> bool {
        ack.ge(self.una - self.max_wnd) && ack.le(self.max)
    }

    /// Cumulative part of an ACK with SND.UNA < SEG.ACK =< SND.MAX: drop acknowledged
    /// bytes, take an RTT sample (Karn's timed segment when it is covered, else `ts_rtt`
    /// from timestamps, RFC 7323 §4.1).
    fn on_ack(
        &mut self,
        now: Instant,
        ack: SeqNum,
        ts_rtt: Option<Duration>,
        pool: &mut BufPool,
    ) -> Acked {
        let n = ack - self.una;
        let bytes = n.min(self.buf.len());
        self.buf.drain(..bytes, pool);
        self.una = ack;
        if self.nxt.lt(ack) {
            self.nxt = ack;
        }
        // Markers that trail SND.UNA follow it, so modular comparisons stay meaningful
        // however far the connection runs.
        self.sml_end = self.sml_end.max(ack);
        self.recover = self.recover.max(ack);
        self.rto_count = 0;
        // As Linux: prefer the timed segment (Karn-clean); fall back to the timestamp echo
        // (RFC 7323 §4.1 RTTM) when the acknowledged data was retransmitted.
        match (self.timing, ts_rtt) {
            (Some((end, sent)), _) if end.le(ack) => self.sample(now - sent),
            (_, Some(r)) => self.sample(r),
            _ => {}
        }
        if self.timing.is_some_and(|(end, _)| end.le(ack)) {
            self.timing = None;
        }
        self.on_ack_probe(ack);
        // Anything acknowledged beyond the data is the FIN (`ack_acceptable` bounds SEG.ACK
        // by SND.MAX, so it was sent).
        let fin = self.fin && n > bytes;
        self.fin_acked |= fin;
        Acked { bytes, fin }
    }

    /// An RTT sample; as Linux (`tcp_ack_update_rtt`, "RFC6298: only reset backoff on valid
    /// RTT measurement") it ends the backoff.
    fn sample(&mut self, r: Duration) {
        self.rtt.sample(r);
        self.backoff = 0;
    }

    /// RFC 6069 §4 (Linux `tcp_ld_RTO_revert`): an ICMP unreachable for SND.UNA while in RTO
    /// backoff undoes one doubling. Only with data in flight after at least one timeout
    /// without progress and one doubling since the last sample (Linux `icsk_retransmits`
    /// and `icsk_backoff` nonzero); returns the RTO then, `initial` standing in for the
    /// estimate before any sample.
    pub fn revert_backoff(&mut self, initial: Duration) -> Option<Duration> {
        if self.rto_count == 0 || self.backoff == 0 || !self.in_flight() {
            return None;
        }
        self.backoff -= 1;
        self.rtt.revert_to(initial, self.backoff);
        Some(self.rtt.rto())
    }

    /// RFC 5681 §4.1: after more than an RTO without sending, restart from
    /// min(IW, cwnd) rather than bursting a stale window.
    pub fn maybe_idle_restart(&mut self, now: Instant) {
        if let Some(t) = self.last_send {
            if !self.in_flight() && now.saturating_since(t) > self.rtt.rto() {
                self.cc.on_idle_restart(now);
                self.last_send = None;
            }
        }
    }

    /// Why nothing more can be sent now (call after `next_tx` returned `None`); `None` when
    /// nothing is queued or in flight. In loss recovery the answer is about new data.
    pub fn limit(&self) -> Option<TxLimit> {
        if !self.in_flight() && self.nxt == self.end() {
            return None;
        }
        let off = dist(self.una, self.nxt) as usize;
        let unsent = self.buf.len().saturating_sub(off);
        if unsent == 0 {
            return Some(if self.space() == 0 && !self.fin {
                TxLimit::SendBuffer
            } else {
                TxLimit::App
            });
        }
        let want = unsent.min(self.mss as usize);
        let usable = dist(self.nxt, self.una + self.wnd) as usize;
        if usable < want {
            return Some(TxLimit::PeerWindow);
        }
        let outstanding = dist(self.una, self.nxt) - self.sb.sacked_in(self.una, self.nxt);
        if (self.send_window().saturating_sub(outstanding) as usize) < want {
            return Some(TxLimit::Cwnd);
        }
        Some(TxLimit::Small)
    }

    /// The next segment to send now, if any. `nodelay` turns Nagle off.
    pub fn next_tx(&mut self, nodelay: bool) -> Option<Tx> {
        if self.rtx_head {
            if let Some(tx) = self.retransmission(self.una, TxKind::Head) {
                return Some(tx);
            }
            self.rtx_head = false;
        }
        if self.sack && self.recovery.is_some() {
            return self.next_seg(nodelay);
        }
        // Go-back-N after an RTO skips what the peer SACKed since (RFC 6675 §5.1).
        while self.nxt.lt(self.max) {
            match self.sb.covering(self.nxt) {
                Some(r) => self.nxt = r.min(self.max),
                None => break,
            }
        }
        let outstanding = dist(self.una, self.nxt) - self.sb.sacked_in(self.una, self.nxt);
        let budget = self.send_window().saturating_sub(outstanding);
        self.new_data(budget, nodelay)
    }

    /// The congestion window outside RFC 6675 recovery: cwnd, plus NewReno's inflation in
    /// fast recovery (RFC 6582 steps 2-4), plus RFC 3042 limited transmit (one SMSS for each
    /// of the first two duplicate ACKs).
    fn send_window(&self) -> u32 {
        let cwnd = self.cc.cwnd();
        match &self.recovery {
            Some(r) => cwnd.saturating_add(r.inflate),
            None => cwnd.saturating_add(self.dupacks.min(2) * self.mss as u32),
        }
    }

    /// Data at SND.NXT within `budget` (what cwnd allows) and the peer's window, MSS-sized,
    /// with Nagle and sender SWS avoidance (RFC 9293 §3.7.4, §3.8.6.2.1).
    fn new_data(&mut self, budget: u32, nodelay: bool) -> Option<Tx> {
        let off = dist(self.una, self.nxt) as usize;
        if off > self.buf.len() {
            return None; // FIN sent, nothing after it
        }
        let unsent = self.buf.len() - off;
        let mss = self.mss as usize;
        let usable = dist(self.nxt, self.una + self.wnd) as usize;
        let mut len = unsent.min(mss).min(usable).min(budget as usize);
        // A retransmission after an RTO stops at the next SACKed range.
        let resend = self.nxt.lt(self.max);
        if let Some(size) = self.mtu_probe_len(budget, usable, unsent, resend) {
            self.cwnd_limited = false;
            return Some(Tx {
                seq: self.nxt,
                off,
                len: size,
                fin: false,
                kind: TxKind::Next,
            });
        }
        if resend {
            if let Some(l) = self.sb.next_sacked_after(self.nxt) {
                len = len.min(dist(self.nxt, l) as usize);
            }
        }
        let fin = self.fin && !self.fin_acked && off + len == self.buf.len();
        if len == 0 && !(fin && unsent == 0) {
            self.cwnd_limited = unsent > 0 && (budget as usize) < unsent.min(mss).min(usable);
            return None;
        }
        if len < mss && len > 0 && !resend && !self.force {
            // RFC 9293 §3.8.6.2.1: send (1) a full segment; or (2) all queued data, if
            // nothing is unacknowledged (the Nagle part, RFC 9293 §3.7.4) or Nagle is off;
            // or (3) at least Fs = 1/2 of the largest window the peer offered, under the
            // same Nagle condition; (4) the override timeout is the persist timer. Nagle's
            // "unacknowledged data" is, as in Linux (Minshall's variant), an unacknowledged
            // *small* segment: a short tail after full segments is not held back. A queued
            // FIN turns Nagle off for the last segment (as Linux on close).
            let nagle_ok = nodelay || self.fin || self.sml_end.le(self.una);
            let all = len == unsent;
            let big = len as u32 >= self.max_wnd / 2;
            if !(nagle_ok && (all || big)) {
                self.cwnd_limited = (budget as usize) < unsent.min(mss).min(usable);
                return None;
            }
        }
        self.cwnd_limited = false;
        Some(Tx {
            seq: self.nxt,
            off,
            len,
            fin,
            kind: TxKind::Next,
        })
    }

    /// A retransmission starting at `seq` (< SND.MAX): up to one MSS, stopping at the next
    /// SACKed range and at SND.MAX; with the FIN when it reaches a FIN already sent.
    fn retransmission(&mut self, seq: SeqNum, kind: TxKind) -> Option<Tx> {
        if !seq.lt(self.max) || seq.lt(self.una) {
            return None;
        }
        let off = dist(self.una, seq) as usize;
        let mut end = self.max.min(self.data_end());
        if let Some(l) = self.sb.next_sacked_after(seq) {
            end = end.min(l);
        }
        let len = (dist(seq, end) as usize).min(self.mss as usize);
        let fin_sent = self.fin && !self.fin_acked && self.max.gt(self.data_end());
        let fin = fin_sent && off + len == self.buf.len();
        if len == 0 && !fin {
            return None;
        }
        Some(Tx {
            seq,
            off,
            len,
            fin,
            kind,
        })
    }

    /// Makes `tx`'s payload readable in one piece: returns true when it was copied into
    /// `scratch[..tx.len]` (it crosses the ring's wrap and fits: one segment, at most once
    /// per lap of the ring), false when `payload(tx.off..tx.off + tx.len)` has it. Only a
    /// crossing range longer than `scratch` straightens the ring (`make_contiguous`: an
    /// O(buffer) rotation which, with a large full buffer, cost more than the rest of the
    /// send path together).
    pub fn stage_payload(&mut self, tx: &Tx, scratch: &mut [u8]) -> bool {
        let r = tx.off..tx.off + tx.len;
        let (a, b) = self.buf.as_slices();
        if r.start >= a.len() || r.end <= a.len() {
            return false;
        }
        if tx.len > scratch.len() {
            self.buf.make_contiguous();
            return false;
        }
        let head = a.len() - r.start;
        scratch[..head].copy_from_slice(&a[r.start..]);
        scratch[head..tx.len].copy_from_slice(&b[..tx.len - head]);
        true
    }

    /// Payload bytes for a range that does not cross the ring's wrap.
    pub fn payload(&self, r: core::ops::Range<usize>) -> &[u8] {
        let (a, b) = self.buf.as_slices();
        if r.end <= a.len() {
            &a[r]
        } else {
            &b[r.start - a.len()..r.end - a.len()]
        }
    }

    /// `tx` went out at `now`.
    pub fn on_sent(&mut self, now: Instant, tx: &Tx) {
        let end = tx.seq + tx.len + tx.fin as u32;
        if tx.seq.lt(self.max) {
            // Karn (RFC 6298 §3): a retransmission of the timed segment voids the sample.
            if self.timing.is_some_and(|(t_end, _)| tx.seq.lt(t_end)) {
                self.timing = None;
            }
        } else if self.timing.is_none() {
            self.timing = Some((end, now));
        }
        match tx.kind {
            TxKind::Head => self.rtx_head = false,
            TxKind::Rescue => {
                if let Some(r) = &mut self.recovery {
                    r.rescue_rxt = Some(self.recover);
                }
            }
            _ => {}
        }
        // RFC 6675 (C.3): HighRxt follows retransmissions (not the rescue one).
        if let (Some(r), true) = (&mut self.recovery, tx.kind != TxKind::Rescue) {
            if tx.seq.lt(self.max) {
                r.high_rxt = r.high_rxt.max(end);
            }
        }
        if tx.seq.le(self.nxt) && end.gt(self.nxt) {
            self.nxt = end;
        }
        self.on_sent_probe(tx);
        if tx.len < self.mss as usize {
            self.sml_end = self.sml_end.max(end);
        } else if tx.len > self.mss as usize && !tx.seq.lt(self.max) {
            // Only a path MTU probe is longer than the MSS (pmtu.rs).
            self.probe_seq = tx.seq;
            self.probe_len = tx.len as u16;
        }
        self.max = self.max.max(end);
        self.force = false;
        self.last_send = Some(now);
    }

    /// The buffer's storage, for the pool (unsent and unacknowledged data is discarded).
    pub fn into_ring(self) -> Ring {
        self.buf
    }

    /// The remains once our FIN is acknowledged (FIN-WAIT-2, TIME-WAIT): the buffer is
    /// empty then (drained into the pool by the ACK), so nothing is lost with it.
    pub fn done(self) -> SendDone {
        SendDone {
            nxt: self.max,
            max_wnd: self.max_wnd,
        }
    }
}

/// The send side after our FIN was acknowledged: nothing left to send.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendDone {
    /// SND.NXT = SND.UNA.
    nxt: SeqNum,
    max_wnd: u32,
}

impl SendDone {
    /// SND.NXT (= SND.UNA = SND.MAX).
    pub fn nxt(&self) -> SeqNum {
        self.nxt
    }

    /// RFC 5961 §5.2 with nothing outstanding: (SND.NXT - MAX.SND.WND) =< SEG.ACK =< SND.NXT.
    pub fn ack_acceptable(&self, ack: SeqNum) -> bool {
        ack.le(self.nxt) && ack.ge(self.nxt - self.max_wnd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::TcpConfig;

    fn sender() -> Sender {
        let cfg = TcpConfig::default();
        let nego = Negotiated {
            mss: 4,
            ..Default::default()
        };
        let mut s = Sender::new(SeqNum(100), nego, 10, &Limits::new(&cfg));
        s.set_window(6, SeqNum(0), SeqNum(101));
        s
    }

    fn send_all(s: &mut Sender, now: Instant) -> Vec<(u32, usize, bool)> {
        let mut v = Vec::new();
        while let Some(tx) = s.next_tx(true) {
            s.on_sent(now, &tx);
            v.push((tx.seq.0, tx.len, tx.fin));
        }
        v
    }

    /// MSS-sized segments within the peer's window; a 2-byte remainder of a 6-byte window
    /// waits (sender SWS avoidance, RFC 9293 §3.8.6.2.1: less than half the largest window).
    #[test]
    fn segments_respect_mss_window_and_fin() {
        let mut s = sender();
        let mut p = BufPool::new();
        assert_eq!(s.write(b"abcdefghijkl", &mut p), 10, "bounded by cap");
        assert_eq!(send_all(&mut s, Instant::ZERO), vec![(101, 4, false)]);
        s.set_window(8, SeqNum(0), SeqNum(101));
        assert_eq!(send_all(&mut s, Instant::ZERO), vec![(105, 4, false)]);
        let a = s.on_ack(Instant::from_millis(50), SeqNum(109), None, &mut p);
        assert_eq!(
            a,
            Acked {
                bytes: 8,
                fin: false
            }
        );
        assert_eq!(s.rtt.srtt(), Some(Duration::from_millis(50)));
        s.set_window(100, SeqNum(1), SeqNum(109));
        s.queue_fin();
        assert_eq!(send_all(&mut s, Instant::ZERO), vec![(109, 2, true)]);
        assert_eq!(
            s.on_ack(Instant::ZERO, SeqNum(112), None, &mut p),
            Acked {
                bytes: 2,
                fin: true
            }
        );
        assert!(s.fin_acked());
    }

    #[test]
    fn rto_goes_back_to_una_and_karn_skips_sample() {
        let mut s = sender();
        let mut p = BufPool::new();
        s.write(b"abcd", &mut p);
        send_all(&mut s, Instant::ZERO);
        s.on_rto(Instant::from_secs(1));
        assert_eq!(s.nxt, SeqNum(101));
        assert_eq!(
            send_all(&mut s, Instant::from_secs(1)),
            vec![(101, 4, false)]
        );
        s.on_ack(Instant::from_secs(2), SeqNum(105), None, &mut p);
        assert_eq!(s.rtt.srtt(), None, "Karn: no sample from a retransmission");
        assert_eq!(s.rto_count, 0);
    }

    /// RFC 5961 §5.2 acceptable ACK range.
    #[test]
    fn ack_acceptable_range() {
        let mut s = sender();
        let mut p = BufPool::new();
        s.write(b"abcd", &mut p);
        send_all(&mut s, Instant::ZERO);
        s.on_ack(Instant::ZERO, SeqNum(103), None, &mut p);
        assert!(s.ack_acceptable(SeqNum(105)));
        assert!(!s.ack_acceptable(SeqNum(106)));
        assert!(s.ack_acceptable(SeqNum(103 - 6)));
        assert!(!s.ack_acceptable(SeqNum(103 - 7)));
    }

    /// What ends a transmit round, in the order `next_tx` checks it: the peer's window
    /// (RFC 9293 §3.8.6.2.1 sender SWS avoidance holds the 2-byte rest of a 6-byte window),
    /// the send buffer all in flight, the application, the congestion window (RFC 5681 §3.1
    /// loss window after a timeout: 1 SMSS) and Nagle (RFC 9293 §3.7.4).
    #[test]
    fn limit_says_what_stopped_sending() {
        let mut s = sender(); // cap 10, MSS 4, window 6
        let mut p = BufPool::new();
        assert_eq!(s.limit(), None, "nothing queued or in flight");
        assert_eq!(s.write(b"0123456789", &mut p), 10);
        assert_eq!(send_all(&mut s, Instant::ZERO), vec![(101, 4, false)]);
        assert_eq!(s.limit(), Some(TxLimit::PeerWindow));
        s.set_window(100, SeqNum(1), SeqNum(101));
        assert_eq!(
            send_all(&mut s, Instant::ZERO),
            vec![(105, 4, false), (109, 2, false)]
        );
        assert_eq!(
            s.limit(),
            Some(TxLimit::SendBuffer),
            "all 10 bytes in flight"
        );
        s.on_ack(Instant::ZERO, SeqNum(105), None, &mut p);
        assert_eq!(
            s.limit(),
            Some(TxLimit::App),
            "room for 4 more, none written"
        );
        s.cc.on_rto(Instant::ZERO, 0, false); // cwnd = 1 SMSS = 4 < 6 outstanding
        assert_eq!(s.write(b"abcd", &mut p), 4);
        assert_eq!(send_all(&mut s, Instant::ZERO), vec![]);
        assert_eq!(s.limit(), Some(TxLimit::Cwnd));

        let mut s = sender();
        let mut p = BufPool::new();
        s.set_window(100, SeqNum(1), SeqNum(101));
        s.write(b"ab", &mut p);
        let tx = s
            .next_tx(false)
            .expect("all queued data, nothing unacknowledged");
        s.on_sent(Instant::ZERO, &tx);
        s.write(b"c", &mut p);
        assert_eq!(
            s.next_tx(false),
            None,
            "Nagle: a small segment is unacknowledged"
        );
        assert_eq!(s.limit(), Some(TxLimit::Small));
    }

    /// A segment crossing the ring's wrap goes out whole, copied out of the ring; only a
    /// scratch too small for it straightens the ring.
    #[test]
    fn payload_across_wrap_is_contiguous() {
        let mut s = sender();
        let mut p = BufPool::new();
        s.set_window(100, SeqNum(0), SeqNum(101));
        // Write 3 bytes, send them, acknowledge all but the last (an empty ring restarts
        // at its front), until a segment crosses the wrap (where depends on the ring's
        // capacity); bounded.
        let mut next = 0u8;
        for _ in 0..64 {
            let data = [next, next + 1, next + 2];
            next = next.wrapping_add(3);
            assert_eq!(s.write(&data, &mut p), 3);
            let tx = s.next_tx(true).unwrap();
            assert_eq!(tx.len, 3);
            let (a, _) = s.buf.as_slices();
            if !(tx.off < a.len() && tx.off + tx.len > a.len()) {
                s.on_sent(Instant::ZERO, &tx);
                s.on_ack(Instant::ZERO, tx.seq + 2u32, None, &mut p);
                continue;
            }
            let mut scratch = [0u8; 4];
            assert!(s.stage_payload(&tx, &mut scratch));
            assert_eq!(scratch[..3], data);
            let (a, _) = s.buf.as_slices();
            assert!(
                tx.off + tx.len > a.len(),
                "copied out: the ring was not straightened"
            );
            // Without room in the scratch, the ring is straightened instead.
            assert!(!s.stage_payload(&tx, &mut [0u8; 2]));
            assert_eq!(s.buf.as_slices().1.len(), 0);
            assert_eq!(s.payload(tx.off..tx.off + tx.len), data);
            return;
        }
        panic!("no segment crossed the ring's wrap");
    }
}
