//! Segment arrival at the endpoint: demux and the stateless rules (RFC 9293 §3.10.7.1 CLOSED,
//! §3.10.7.2 LISTEN, TIME-WAIT records, SYN cookies per RFC 4987).

use std::net::IpAddr;

use rand::Rng;

use super::twtable::TwArrival;
use super::{family_mss, is_unicast, is_v4_mapped, unspecified};
use super::{ConnCounters, ConnId, Endpoint, ListenerId, Owner};
use crate::tcp::conn::{Arrival, Connection, Negotiated, State};
use crate::tcp::cookie::{SynCookies, SynOptions};
use crate::tcp::listener::{AckDecision, SynDecision};
use crate::tcp::tuple::FourTuple;
use crate::tcp::SynCookieMode;
use crate::time::Instant;
use crate::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr};

impl Endpoint {
    /// One arriving segment (`src`/`dst` from its IPv4 or IPv6 header), already parsed and
    /// checksummed. Order: connection by 4-tuple, TIME-WAIT record, listener, CLOSED.
    pub fn on_segment(
        &mut self,
        now: Instant,
        src: impl Into<IpAddr>,
        dst: impl Into<IpAddr>,
        seg: &TcpRepr<'_>,
    ) {
        let (src, dst) = (src.into(), dst.into());
        self.stats.segments_in += 1;
        // Never answer (or RST) broadcast/multicast or port 0 (RFC 1122 §4.2.3.10).
        if seg.src_port == 0 || seg.dst_port == 0 || !is_unicast(src) || !is_unicast(dst) {
            self.stats.malformed_in += 1;
            return;
        }
        // Sources Linux's routing refuses as martians (ip_route_input_slow, fib_validate_source
        // with accept_local = 0): never answered, counted.
        if martian_source(src, dst) {
            self.stats.martian_src_in += 1;
            return;
        }
        let Some(tuple) = FourTuple::from_ips(dst, seg.dst_port, src, seg.src_port) else {
            self.stats.malformed_in += 1; // one address of each family: a caller bug
            return;
        };
        if let Some(index) = self.demux_find(&tuple) {
            let gen = self.conns.get(index as usize).map_or(0, |s| s.gen);
            let id = ConnId { index, gen };
            self.stats.flow.on_input(seg);
            let Some(snd_nxt) = self.conn_segment(now, id, seg) else {
                return;
            };
            // RFC 6191: the connection in TIME-WAIT gave way to a new SYN.
            return self.no_connection(now, tuple, seg, Some(snd_nxt));
        }
        // A TIME-WAIT record (tcp/timewait.rs has the rules, twtable.rs the table).
        let may_reopen = self.listener_for(&tuple).is_some();
        let interval = self.cfg.invalid_ratelimit;
        let rfc1337 = self.cfg.rfc1337;
        match self
            .tw
            .on_segment(&tuple, now, seg, may_reopen, interval, rfc1337)
        {
            TwArrival::Ack(ack) => {
                self.stats.tw_acks += 1;
                return self.control(dst, src, ack);
            }
            TwArrival::AckSkipped => {
                self.stats.tw_acks_skipped += 1;
                return;
            }
            TwArrival::Drop { rst } => {
                // RFC 1337: a RST does not end TIME-WAIT (tcp_rfc1337 = 1).
                self.stats.tw_rst_ignored += rst as u64;
                return;
            }
            TwArrival::Killed => {
                // tcp_rfc1337 = 0: the RST ended TIME-WAIT (Linux TWKilled); nothing answers.
                self.stats.tw_killed += 1;
                return;
            }
            TwArrival::Reopen { snd_nxt } => {
                self.stats.tw_reopened += 1;
                return self.no_connection(now, tuple, seg, Some(snd_nxt));
            }
            TwArrival::NotFound => {}
        }
        self.stats.tw_expired = self.tw.expired;
        self.no_connection(now, tuple, seg, None)
    }

    /// The listener a segment for `tuple` would reach (exact address first, then wildcard).
    pub(super) fn listener_for(&self, tuple: &FourTuple) -> Option<ListenerId> {
        let index = self
            .listen_map
            .get(&(tuple.local_ip(), tuple.local_port))
            .or_else(|| {
                self.listen_map
                    .get(&(unspecified(tuple.local_ip()), tuple.local_port))
            })
            .copied()?;
        let gen = self.listeners[index as usize].as_ref().map_or(0, |l| l.gen);
        Some(ListenerId { index, gen })
    }

    /// A segment for an existing connection. Returns the old SND.NXT when the connection (in
    /// TIME-WAIT) was dropped so the SYN can reopen the 4-tuple (RFC 6191).
    fn conn_segment(&mut self, now: Instant, id: ConnId, seg: &TcpRepr<'_>) -> Option<SeqNum> {
        let s = self.slot_mut(id)?;
        s.counters.on_input();
        let listener = match s.owner {
            Owner::Listener(l) if s.conn.state() == State::SynReceived => Some(l),
            _ => None,
        };
        let tuple = s.conn.tuple();
        // RFC 9293 §3.10.7.4 SYN-RECEIVED, fifth check: the ACK of our SYN completes the
        // handshake. With the accept queue full Linux drops it (the request stays queued and
        // the SYN-ACK is retransmitted) or, with tcp_abort_on_overflow, resets.
        let completing = !seg.flags.rst() && !seg.flags.syn() && seg.flags.ack();
        if let (Some(l), true) = (listener, completing && seg.ack == s.conn.iss() + 1u32) {
            let cfg = &self.cfg;
            let decision = self.listeners[l.index as usize]
                .as_mut()
                .filter(|ls| ls.gen == l.gen && ls.l.accept_queue.is_full())
                .and_then(|ls| ls.l.complete(&id, cfg, |id| id));
            match decision {
                Some(AckDecision::Drop) => {
                    self.stats.listen_overflows += 1;
                    return None;
                }
                Some(AckDecision::Reset) => {
                    self.stats.listen_overflows += 1;
                    self.stats.rst_accept_overflow += 1;
                    if let Some(s) = self.slot_mut(id) {
                        s.conn.abort(now);
                    }
                    self.touch(id);
                    return None;
                }
                _ => {}
            }
        }
        let s = self.conns.get_mut(id.index as usize)?;
        let before = ConnCounters::progress(&s.conn);
        let handshaking = !s.conn.is_synchronized();
        let arrival = s
            .conn
            .on_segment(now, seg, &mut self.limiter, &mut self.pool);
        // The handshake completed: start from the path MTU learned for this peer (icmp.rs).
        if handshaking && s.conn.is_synchronized() {
            self.pmtu_cache.apply(now, &mut s.conn);
        }
        let advanced = s
            .counters
            .on_progress(before, ConnCounters::progress(&s.conn));
        // Linux tcp_event_data_recv: data that advanced RCV.NXT (not a bare FIN).
        if advanced && !seg.payload.is_empty() {
            s.data_recv = now.ms_stamp();
        }
        if let Some(h) = self
            .histories
            .as_mut()
            .and_then(|h| h.get_mut(id.index as usize))
        {
            h.observe(now, &s.conn, &s.counters);
        }
        let state = s.conn.state();
        self.stats.challenge_acks_sent = self.limiter.sent;
        self.stats.challenge_acks_suppressed = self.limiter.suppressed;
        self.stats.acks_skipped = self.limiter.oow_skipped;
        if arrival == Arrival::Reopen {
            // As for a record (`TwTable::on_segment`): without a listener to take the SYN,
            // TIME-WAIT stays and the SYN gets its ACK (Linux TCP_TW_SYN -> TCP_TW_ACK).
            if self.listener_for(&tuple).is_none() {
                if let Some(s) = self.conns.get_mut(id.index as usize) {
                    s.conn.refuse_reopen(now);
                }
                self.stats.tw_acks += 1;
                self.touch(id);
                return None;
            }
            let snd_nxt = self
                .conns
                .get(id.index as usize)
                .and_then(|s| s.conn.time_wait_record())
                .map(|r| r.snd_nxt);
            self.free(id);
            return snd_nxt;
        }
        if let Some(l) = listener {
            if state != State::SynReceived && state != State::Closed {
                self.established(now, l, id);
            }
        }
        self.touch(id);
        None
    }

    /// A passive connection reached ESTABLISHED (or beyond): SYN queue -> accept queue.
    fn established(&mut self, now: Instant, l: ListenerId, id: ConnId) {
        let cfg = &self.cfg;
        let Some(ls) = self.listeners[l.index as usize]
            .as_mut()
            .filter(|ls| ls.gen == l.gen)
        else {
            return;
        };
        let decision = match ls.l.complete(&id, cfg, |id| id) {
            Some(d) => d,
            // Not queued (aged out): join the accept queue directly if there is room.
            None => match ls.l.accept_queue.push(id) {
                Ok(()) => AckDecision::Accept,
                Err(_) => AckDecision::Reset,
            },
        };
        if decision == AckDecision::Accept {
            self.notify(l);
        } else if let Some(s) = self.slot_mut(id) {
            s.conn.abort(now);
        }
    }

    fn notify(&mut self, l: ListenerId) {
        if let Some(ls) = self.listener_mut(l) {
            if !ls.notified {
                ls.notified = true;
                self.incoming.push_back(l);
            }
        }
    }

    /// No connection: a listener (RFC 9293 §3.10.7.2) or CLOSED (§3.10.7.1).
    /// `from_tw`: the SYN reopens a TIME-WAIT 4-tuple whose SND.NXT this was.
    fn no_connection(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
        from_tw: Option<SeqNum>,
    ) {
        let Some(l) = self.listener_for(&tuple) else {
            self.stats.no_listener += 1;
            return self.closed(tuple, seg);
        };
        self.listen_segment(now, l, tuple, seg, from_tw);
    }

    /// RFC 9293 §3.10.7.1: "If the state is CLOSED ... all data in the incoming segment is
    /// discarded. An incoming segment containing a RST is discarded. An incoming segment not
    /// containing a RST causes a RST to be sent in response."
    fn closed(&mut self, tuple: FourTuple, seg: &TcpRepr<'_>) {
        if seg.flags.rst() {
            return;
        }
        self.stats.rst_closed += 1;
        self.reset(tuple, seg);
    }

    /// The RST for an unacceptable segment, RFC 9293 §3.10.7.1: with ACK <SEQ=SEG.ACK>
    /// <CTL=RST>, else <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    fn reset(&mut self, tuple: FourTuple, seg: &TcpRepr<'_>) {
        let (seq, ack, flags) = if seg.flags.ack() {
            (seg.ack, SeqNum(0), TcpFlags::RST)
        } else {
            (
                SeqNum(0),
                seg.seq + seg.seq_len() as u32,
                TcpFlags::RST | TcpFlags::ACK,
            )
        };
        let rst = TcpRepr {
            src_port: tuple.local_port,
            dst_port: tuple.remote_port,
            seq,
            ack,
            flags,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        };
        self.control(tuple.local_ip(), tuple.remote_ip(), rst);
    }

    /// RFC 9293 §3.10.7.2 LISTEN, in the RFC's order: RST, ACK, SYN, anything else.
    fn listen_segment(
        &mut self,
        now: Instant,
        l: ListenerId,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
        from_tw: Option<SeqNum>,
    ) {
        // "First, check for a RST: An incoming RST should be ignored."
        if seg.flags.rst() {
            return;
        }
        // "Second, check for an ACK: Any acknowledgment is bad if it arrives on a connection
        // still in the LISTEN state. An acceptable reset segment should be formed for any
        // arriving ACK-bearing segment." Except a returning SYN cookie (RFC 4987 §3.6).
        if seg.flags.ack() {
            if !seg.flags.syn() && self.cookie_ack(now, l, tuple, seg) {
                return;
            }
            self.stats.rst_listen_bad_ack += 1;
            return self.reset(tuple, seg);
        }
        // "Third, check for a SYN." A SYN with FIN is discarded as Linux does
        // (tcp_rcv_state_process, TCP_LISTEN: `if (th->fin) goto discard`): RFC 9293 would
        // open the connection and queue the FIN, a combination no real stack sends (a scan).
        // SYN+RST never gets here (first check).
        if seg.flags.syn() && seg.flags.fin() {
            self.stats.bad_flags_in += 1;
            return;
        }
        if seg.flags.syn() {
            self.listen_syn(now, l, tuple, seg, from_tw);
        }
        // "Fourth, other data or control: ... drop the segment and return."
    }

    /// Tries `seg` as the ACK of a cookie SYN-ACK. True when handled (connection created or
    /// the ACK dropped for a full accept queue); false: answer with RST.
    fn cookie_ack(
        &mut self,
        now: Instant,
        l: ListenerId,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
    ) -> bool {
        let validity = self.cookies.validity();
        let cfg = &self.cfg;
        let Some(ls) = self.listeners[l.index as usize].as_mut() else {
            return false;
        };
        // With XDP cookies this endpoint does not see the cookies sent, so any ACK to a
        // listener with cookies on is tried (costs two SipHashes per secret per stray ACK).
        let external = self.xdp_cookies && cfg.syncookies != SynCookieMode::Never;
        if !external && !ls.l.may_be_cookie_ack(cfg, now, validity) {
            return false;
        }
        let tsecr = seg.options.timestamp.map(|(_, ecr)| ecr);
        let params = self
            .cookies
            .check(now, &tuple, seg.seq, seg.ack, tsecr, cfg);
        self.stats.cookies_accepted = self.cookies.stats.accepted;
        self.stats.cookies_rejected = self.cookies.stats.rejected;
        let Some(p) = params else {
            return false;
        };
        match ls.l.on_handshake_ack(cfg, true) {
            AckDecision::Accept => {}
            _ => {
                self.stats.listen_overflows += 1;
                return true;
            }
        }
        if self.conns.len() >= self.cfg.max_connections {
            self.stats.conn_limit_drops += 1;
            return true;
        }
        let ws = p.wscale.is_some();
        let nego = Negotiated {
            mss: p.mss.min(family_mss(self.cfg.mss, &tuple)),
            snd_shift: p.wscale.unwrap_or(0),
            rcv_shift: if ws {
                Negotiated::our_shift(&self.cfg)
            } else {
                0
            },
            window_scaling: ws,
            sack: p.sack_permitted,
            timestamps: p.timestamps,
        };
        let ts_off = self.isn.ts_offset(tuple.local_ip(), tuple.remote_ip());
        let conn =
            Connection::from_cookie(now, &self.limits, tuple, seg, nego, ts_off, &mut self.pool);
        let id = self.insert(conn, Owner::Listener(l));
        let pushed = self.listeners[l.index as usize]
            .as_mut()
            .is_some_and(|ls| ls.l.accept_queue.push(id).is_ok());
        if pushed {
            self.notify(l);
        } else {
            self.free(id);
        }
        true
    }

    /// A SYN in LISTEN: `Listener::on_syn` decides queue / cookie / drop (Linux
    /// `tcp_conn_request`).
    fn listen_syn(
        &mut self,
        now: Instant,
        l: ListenerId,
        tuple: FourTuple,
        seg: &TcpRepr<'_>,
        from_tw: Option<SeqNum>,
    ) {
        let cfg = &self.cfg;
        let Some(ls) = self.listeners[l.index as usize].as_mut() else {
            return;
        };
        match ls.l.on_syn(cfg, now, from_tw.is_some()) {
            SynDecision::Drop => self.stats.syn_dropped += 1,
            SynDecision::Cookie => self.cookie_syn_ack(now, tuple, seg),
            SynDecision::Queue => {
                if self.conns.len() >= self.cfg.max_connections {
                    self.stats.conn_limit_drops += 1;
                    self.stats.syn_dropped += 1;
                    return;
                }
                // RFC 1122 §4.2.2.13: a connection reopened from TIME-WAIT starts above the
                // old SND.NXT; Linux takes tw_snd_nxt + 65535 + 2 (tcp_timewait_state_process,
                // never 0), whatever the RFC 6191 case that let the SYN in.
                let iss = match from_tw {
                    Some(old) => match old + 65_537u32 {
                        SeqNum(0) => SeqNum(1),
                        iss => iss,
                    },
                    None => self.isn.isn(&tuple, now),
                };
                let ts_off = self.isn.ts_offset(tuple.local_ip(), tuple.remote_ip());
                let conn = Connection::accept_syn(now, &self.limits, tuple, seg, iss, ts_off);
                let id = self.insert(conn, Owner::Listener(l));
                let queued = self.listeners[l.index as usize]
                    .as_mut()
                    .is_some_and(|ls| ls.l.syn_queue.insert(id, id).is_ok());
                if !queued {
                    self.free(id);
                    self.stats.syn_dropped += 1;
                }
            }
        }
    }

    /// Replaces the SYN-cookie secret once per cookie lifetime (`SynCookies::validity`, two
    /// 64 s periods), lazily when a cookie is about to be made: a leaked secret is worth at
    /// most that long, and since `rotate` keeps the previous secret, a cookie still young
    /// enough to be valid always verifies (RFC 4987 §3.6 leaves the lifetime open; Linux
    /// never rotates).
    fn rotate_cookie_secret(&mut self, now: Instant) {
        if self.xdp_cookies {
            return; // the runtime rotates every endpoint and the XDP program together
        }
        match self.cookie_rotate_at {
            Some(at) if now < at => {}
            Some(_) => {
                let secret = self.rng.gen();
                self.cookies.rotate(secret);
                self.stats.cookie_rotations += 1;
                self.cookie_rotate_at = Some(now + self.cookies.validity());
            }
            None => self.cookie_rotate_at = Some(now + self.cookies.validity()),
        }
    }

    /// SYN cookies answered by the XDP program too (`xdp_syncookies = 1`): from now on the secrets come
    /// only from [`Endpoint::set_cookie_secrets`] (every worker and the program must share
    /// them; the endpoint no longer rotates by itself), and ACKs to a listener are tried as
    /// cookies whenever `tcp_syncookies` is on, since the cookies this endpoint did not send
    /// leave no trace in its listeners.
    pub fn set_xdp_cookies(&mut self, on: bool) {
        self.xdp_cookies = on;
    }

    /// Replaces the SYN-cookie secrets: `current` makes and checks cookies, `previous` (the
    /// one before the last rotation) still checks them. The caller rotates at most once per
    /// cookie lifetime ([`MAX_COOKIE_AGE`](crate::tcp::MAX_COOKIE_AGE) cookie periods) so no
    /// valid cookie is lost.
    pub fn set_cookie_secrets(&mut self, current: [u8; 16], previous: Option<[u8; 16]>) {
        self.cookies.set_secrets(current, previous);
    }

    /// The stateless SYN-ACK of RFC 4987 §3.6: ISS = the cookie; options that do not fit in
    /// the cookie travel in our TSval's low bits, and without timestamps window scaling and
    /// SACK are not offered (Linux `tcp_conn_request` clears them: nowhere to keep them).
    fn cookie_syn_ack(&mut self, now: Instant, tuple: FourTuple, syn: &TcpRepr<'_>) {
        self.rotate_cookie_secret(now);
        let mss = family_mss(self.cfg.mss, &tuple);
        let nego = Negotiated {
            mss,
            ..Negotiated::offer(&self.cfg)
        }
        .agree(syn);
        let (iss, _) = self.cookies.generate(now, &tuple, syn.seq, nego.mss);
        self.stats.cookies_sent = self.cookies.stats.sent;
        let mut options = TcpOptions {
            mss: Some(mss),
            ..TcpOptions::default()
        };
        if let (true, Some((tsval, _))) = (nego.timestamps, syn.options.timestamp) {
            let ts_off = self.isn.ts_offset(tuple.local_ip(), tuple.remote_ip());
            let ts_now = (now.as_millis() as u32).wrapping_add(ts_off);
            let opts = SynOptions {
                wscale: nego.window_scaling.then_some(nego.snd_shift),
                sack_permitted: nego.sack,
                ecn: false,
            };
            options.timestamp = Some((SynCookies::syn_ack_timestamp(ts_now, opts), tsval));
            options.window_scale = nego.window_scaling.then_some(nego.rcv_shift);
            options.sack_permitted = nego.sack;
        }
        let syn_ack = TcpRepr {
            src_port: tuple.local_port,
            dst_port: tuple.remote_port,
            seq: iss,
            ack: syn.seq + 1u32,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            // RFC 7323 §2.2: the window in a SYN segment is never scaled.
            window: self.cfg.rmem.min(0xffff) as u16,
            urgent: 0,
            options,
            payload: &[],
        };
        self.control(tuple.local_ip(), tuple.remote_ip(), syn_ack);
    }
}

/// A source address Linux drops as a martian on a non-loopback interface: 0/8
/// (`ipv4_is_zeronet`), 127/8 (`ipv4_is_loopback`, route_localnet off) and our own address
/// (`fib_validate_source`: a local source, accept_local off). Multicast and 255.255.255.255
/// are refused before (`is_unicast`). 240/4 (class E) is NOT martian for Linux (unicast since
/// 2.6.25) and is answered here too. IPv6: the loopback `::1` from the wire (RFC 4291 §2.5.3;
/// Linux `ipv6_rcv` drops it), IPv4-mapped addresses either way (RFC 4038 §4.2; Linux
/// `tcp_v6_conn_request` drops them) and our own address; multicast and `::` were refused
/// before.
pub(super) fn martian_source(src: IpAddr, dst: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => {
            let o = a.octets();
            o[0] == 0 || o[0] == 127 || src == dst
        }
        IpAddr::V6(a) => a.is_loopback() || is_v4_mapped(src) || is_v4_mapped(dst) || src == dst,
    }
}
