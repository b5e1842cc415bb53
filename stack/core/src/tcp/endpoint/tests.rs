//! Two endpoints wired back to back; every segment goes through the wire layer's emit and
//! parse (with checksums) on its way.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use super::*;
use crate::tcp::conn::{ConnError, Event, Negotiated, State, Timer};
use crate::tcp::{SynCookieMode, TwReuse};
use crate::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr};

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const T0: Instant = Instant::from_secs(1_000);

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// An emitted segment, kept as bytes (re-parsed on delivery).
#[derive(Debug, Clone)]
struct Frame {
    src: IpAddr,
    dst: IpAddr,
    bytes: Vec<u8>,
}

impl Frame {
    fn repr(&self) -> TcpRepr<'_> {
        match (self.src, self.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => TcpRepr::parse(&self.bytes, s, d, true),
            (IpAddr::V6(s), IpAddr::V6(d)) => TcpRepr::parse_v6(&self.bytes, s, d, true),
            _ => panic!("mixed families"),
        }
        .expect("our own segment parses")
    }
    fn flags(&self) -> TcpFlags {
        self.repr().flags
    }
    fn seq(&self) -> SeqNum {
        self.repr().seq
    }
    fn ack(&self) -> SeqNum {
        self.repr().ack
    }
}

fn frame(src: IpAddr, dst: IpAddr, seg: &TcpRepr<'_>) -> Frame {
    let mut bytes = vec![0u8; seg.buffer_len()];
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => seg.emit(&mut bytes, s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => seg.emit_v6(&mut bytes, s, d),
        _ => panic!("mixed families"),
    }
    Frame { src, dst, bytes }
}

fn flush(ep: &mut Endpoint, now: Instant) -> Vec<Frame> {
    let mut out = Vec::new();
    ep.poll_transmit(now, |s, d, seg| out.push(frame(s, d, seg)));
    out
}

fn deliver(ep: &mut Endpoint, now: Instant, frames: &[Frame]) {
    for f in frames {
        ep.on_segment(now, f.src, f.dst, &f.repr());
    }
}

fn events(ep: &mut Endpoint) -> Vec<EndpointEvent> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

fn ep(cfg: TcpConfig, seed: u64, ports: RangeInclusive<u16>) -> Endpoint {
    Endpoint::new(cfg, EndpointSecrets::from_seed(seed), ports)
}

struct Pair {
    a: Endpoint,
    b: Endpoint,
    now: Instant,
    /// Every frame exchanged: (from a?, frame).
    log: Vec<(bool, Frame)>,
}

impl Pair {
    fn new(ca: TcpConfig, cb: TcpConfig) -> Pair {
        Pair {
            a: ep(ca, 1, 40_000..=40_999),
            b: ep(cb, 2, 50_000..=50_999),
            now: T0,
            log: Vec::new(),
        }
    }

    /// Exchanges segments until both sides are quiet (bounded).
    fn run(&mut self) {
        for _ in 0..100 {
            let fa = flush(&mut self.a, self.now);
            let fb = flush(&mut self.b, self.now);
            if fa.is_empty() && fb.is_empty() {
                return;
            }
            deliver(&mut self.b, self.now, &fa);
            deliver(&mut self.a, self.now, &fb);
            self.log.extend(fa.into_iter().map(|f| (true, f)));
            self.log.extend(fb.into_iter().map(|f| (false, f)));
        }
        panic!("no quiescence in 100 rounds");
    }

    /// Advances time to `to`, firing timers on both sides, then runs.
    fn advance(&mut self, to: Instant) {
        self.now = to;
        self.a.on_timeout(to);
        self.b.on_timeout(to);
        self.run();
    }

    /// a connects to b's `port`; b accepts. Returns (a's id, b's id).
    fn open(&mut self, l: ListenerId, port: u16) -> (ConnId, ConnId) {
        let ca = self
            .a
            .connect(self.now, A, SocketAddrV4::new(B, port))
            .unwrap();
        self.run();
        assert!(events(&mut self.b).contains(&EndpointEvent::Incoming(l)));
        let cb = self.b.accept(l).expect("accepted");
        assert_eq!(self.a.state(ca), Some(State::Established));
        assert_eq!(self.b.state(cb), Some(State::Established));
        (ca, cb)
    }
}

fn conn_events(ep: &mut Endpoint, id: ConnId) -> Vec<Event> {
    events(ep)
        .into_iter()
        .filter_map(|e| match e {
            EndpointEvent::Conn(i, ev) if i == id => Some(ev),
            _ => None,
        })
        .collect()
}

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: TcpFlags) -> TcpRepr<'static> {
    TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: 1000,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

/// RFC 9293 §3.10.7.2 / §3.10.7.3: a three-way handshake each way, data both ways.
#[test]
fn handshake_both_ways_and_data() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    // SYN, SYN-ACK, ACK with the RFC's numbers.
    let (syn, syn_ack, ack) = (&p.log[0].1, &p.log[1].1, &p.log[2].1);
    assert_eq!(syn.flags(), TcpFlags::SYN);
    assert_eq!(syn_ack.flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(syn_ack.ack(), syn.seq() + 1u32);
    assert_eq!(
        (ack.flags(), ack.seq(), ack.ack()),
        (TcpFlags::ACK, syn.seq() + 1u32, syn_ack.seq() + 1u32)
    );
    assert_eq!(conn_events(&mut p.a, ca), [Event::Connected]);
    assert_eq!(p.a.send(p.now, ca, b"hello").unwrap(), 5);
    p.run();
    let mut buf = [0u8; 16];
    assert_eq!(p.b.recv(cb, &mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    // And the other way round: a listens on its own address, b connects.
    let la = p.a.listen(A, 8080, 16).unwrap();
    let cb2 = p.b.connect(p.now, B, SocketAddrV4::new(A, 8080)).unwrap();
    p.run();
    assert_eq!(events(&mut p.a), [EndpointEvent::Incoming(la)]);
    let ca2 = p.a.accept(la).unwrap();
    assert_eq!(p.a.state(ca2), Some(State::Established));
    assert_eq!(p.b.state(cb2), Some(State::Established));
    assert_eq!(p.a.accept(la), None);
    let c = p.b.state_counts();
    assert_eq!((c.listen, c.established), (1, 2));
}

/// The flow counters (flow.rs) count what went over the wire: 3000 bytes from a with
/// MSS 1460 and timestamps (1448 data bytes per segment, RFC 7323 §3.2 / RFC 6691) are 3
/// data segments; b's quick-ACK mode (delack.rs) acknowledges each at once; a's rounds end
/// "application-limited" (everything written is sent, the buffer has room) until ACKed.
#[test]
fn flow_counters_count_segments_acks_and_limits() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let (fa0, fb0) = (p.a.stats().flow, p.b.stats().flow);
    // The handshake's third segment is b's only pure ACK in; a SYN-ACK is not one.
    assert_eq!((fa0.pure_acks_out, fb0.pure_acks_in), (1, 1));
    assert_eq!(fa0.data_segs_out + fb0.data_segs_out, 0);
    assert_eq!(p.a.send(p.now, ca, &[7u8; 3000]).unwrap(), 3000);
    p.run();
    let mut buf = [0u8; 4096];
    assert_eq!(p.b.recv(cb, &mut buf).unwrap(), 3000);
    let (fa, fb) = (p.a.stats().flow, p.b.stats().flow);
    assert_eq!(
        (fa.data_segs_out, fa.data_bytes_out, fa.retrans_segs),
        (3, 3000, 0)
    );
    assert_eq!((fb.data_segs_in, fb.data_bytes_in), (3, 3000));
    // One burst of 3 segments in one delivery: b owes one ACK, sent once per poll.
    assert_eq!(fb.pure_acks_out - fb0.pure_acks_out, 1);
    assert_eq!(fa.pure_acks_in - fa0.pure_acks_in, 1);
    // a's round that sent the data ended with nothing more to send and room in the buffer.
    assert_eq!(fa.tx_app_limited - fa0.tx_app_limited, 1);
    assert_eq!(
        fa.tx_sndbuf_limited + fa.tx_rwnd_limited + fa.tx_cwnd_limited + fa.tx_small_held,
        0
    );
}

/// `Endpoint::info`: the snapshot of a's side after 3000 bytes (3 segments) went out and
/// were ACKed, and of b's side holding them unread.
#[test]
fn conn_info_snapshot() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let before = p.a.info(ca).unwrap();
    assert_eq!(p.a.send(p.now, ca, &[7u8; 3000]).unwrap(), 3000);
    p.run();
    let a = p.a.info(ca).unwrap();
    let b = p.b.info(cb).unwrap();
    assert_eq!((a.state, b.state), (State::Established, State::Established));
    assert_eq!(a.tuple, b.tuple.reversed());
    assert_eq!(a.tuple.remote_v4(), Some(SocketAddrV4::new(B, 80)));
    assert_eq!(a.snd_una, before.snd_una + 3000u32);
    assert_eq!((a.snd_nxt, a.in_flight, a.unsent), (a.snd_una, 0, 0));
    assert_eq!(b.rcv_nxt, Some(a.snd_nxt));
    assert_eq!(a.iss + 1u32, before.snd_una);
    assert_eq!((a.negotiated.mss, a.negotiated.timestamps), (1460, true));
    assert_eq!(a.negotiated.snd_shift, b.negotiated.rcv_shift);
    // Handshake RTT sampled (0 on this virtual clock), RTO from RFC 6298 clamped at rto_min.
    assert_eq!(a.srtt, Some(Duration::ZERO));
    assert_eq!(a.rto, Some(p.a.config().rto_min));
    assert!(a.rttvar.is_some() && a.cwnd.is_some() && a.ssthresh.is_some());
    assert_eq!((a.retransmits, a.error), (0, None));
    assert_eq!((b.unread, a.unread), (3000, 0));
    assert_eq!(a.send_capacity, p.a.config().wmem);
    // Nothing in flight: no retransmission timer; keepalive is off.
    assert_eq!(a.timer, None);
    // SYN, ACK, 3 data segments out; SYN-ACK and one ACK in.
    let c = a.counters;
    assert_eq!((c.segs_out, c.bytes_out, c.retrans_segs), (5, 3000, 0));
    assert_eq!((c.segs_in, c.bytes_acked, c.bytes_received), (2, 3000, 0));
    let cb = b.counters;
    assert_eq!(
        (cb.segs_in, cb.bytes_received, cb.bytes_acked),
        (4, 3000, 0)
    );
    // A byte sent and lost: in flight, the retransmission timer armed at now + RTO.
    p.a.send(p.now, ca, b"x").unwrap();
    flush(&mut p.a, p.now);
    let a = p.a.info(ca).unwrap();
    assert_eq!((a.in_flight, a.unsent), (1, 0));
    assert_eq!(
        a.timer,
        Some((Timer::Retransmit, p.now + p.a.config().rto_min))
    );
    assert!(p.a.info(ConnId { index: 99, gen: 0 }).is_none());
}

/// `ConnInfo::activity` (ss's `lastsnd`, `lastrcv`, `lastack`) on a virtual clock: each
/// side's stamps move with the data it sends, the data it receives in order and the ACKs it
/// takes, and start at the connection's creation.
#[test]
fn activity_stamps_on_virtual_time() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let idle = |ep: &Endpoint, id, at_ms| ep.info(id).unwrap().activity.idle(T0 + ms(at_ms));
    let created = Idle {
        lastsnd: 0,
        lastrcv: 0,
        lastack: 0,
    };
    assert_eq!(idle(&p.a, ca, 0), created);
    assert_eq!(idle(&p.b, cb, 0), created);
    // +100 ms: a sends 3000 bytes, b ACKs them at once (one burst, one ACK).
    p.now = T0 + ms(100);
    p.a.send(p.now, ca, &[7u8; 3000]).unwrap();
    p.run();
    // +250 ms: b answers with 10 bytes, a ACKs them at once (quick ACKs early on).
    p.now = T0 + ms(250);
    p.b.send(p.now, cb, &[1u8; 10]).unwrap();
    p.run();
    p.advance(T0 + ms(500)); // nothing due: no stamp moves
    let (a, b) = (idle(&p.a, ca, 1000), idle(&p.b, cb, 1000));
    assert_eq!(
        (a.lastsnd, a.lastrcv, a.lastack),
        (900, 750, 750),
        "a: sent at 100, got data at 250 and with it an ACK (a duplicate counts, as in Linux)"
    );
    assert_eq!(
        (b.lastsnd, b.lastrcv, b.lastack),
        (750, 900, 750),
        "b: sent at 250, got data at 100, a's ACK of it at 250"
    );
    // A pure ACK or FIN is not data: a's FIN at +1 s moves only b's lastack (and a's, by
    // b's ACK of it).
    p.now = T0 + ms(1000);
    p.a.shutdown_write(p.now, ca).unwrap();
    p.run();
    let (a, b) = (idle(&p.a, ca, 1200), idle(&p.b, cb, 1200));
    assert_eq!((a.lastsnd, a.lastrcv, a.lastack), (1100, 950, 200));
    assert_eq!((b.lastsnd, b.lastrcv, b.lastack), (950, 1100, 200));
}

/// RFC 9293 §3.10.7.1 + §3.10.7.3: a SYN to a closed port gets <SEQ=0><ACK=ISS+1><RST,ACK>
/// and the connect reports ConnectionRefused; the handle goes stale after close.
#[test]
fn refused_connect() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let ca = p.a.connect(p.now, A, SocketAddrV4::new(B, 81)).unwrap();
    p.run();
    let (syn, rst) = (&p.log[0].1, &p.log[1].1);
    assert_eq!(rst.flags(), TcpFlags::RST | TcpFlags::ACK);
    assert_eq!((rst.seq(), rst.ack()), (SeqNum(0), syn.seq() + 1u32));
    assert_eq!(p.log.len(), 2, "no reply to a RST");
    assert_eq!(
        conn_events(&mut p.a, ca),
        [Event::Error(ConnError::Refused), Event::Closed]
    );
    assert_eq!((p.b.stats().rst_closed, p.b.stats().no_listener), (1, 1));
    // Finished but not closed: kept until close().
    assert_eq!(p.a.state(ca), Some(State::Closed));
    p.a.close(p.now, ca).unwrap();
    p.run();
    assert_eq!((p.a.state(ca), p.a.connection_count()), (None, 0));
    assert_eq!(p.a.close(p.now, ca), Err(NoSuchConn));
}

/// RFC 9293 §3.10.7.1: exact RSTs for a stray ACK and for a non-ACK segment; none for a RST.
#[test]
fn rst_for_stray_segments_exact_fields() {
    let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
    let now = T0;
    b.on_segment(now, A, B, &tcp(1234, 80, 100, 5000, TcpFlags::ACK));
    let mut data = tcp(1234, 80, 700, 0, TcpFlags::PSH);
    data.payload = b"abc";
    b.on_segment(now, A, B, &data);
    b.on_segment(
        now,
        A,
        B,
        &tcp(1234, 80, 100, 5000, TcpFlags::RST | TcpFlags::ACK),
    );
    let out = flush(&mut b, now);
    assert_eq!(out.len(), 2);
    let r = out[0].repr();
    assert_eq!((out[0].src, out[0].dst), (B.into(), A.into()));
    assert_eq!(
        (r.src_port, r.dst_port, r.seq, r.ack, r.flags),
        (80, 1234, SeqNum(5000), SeqNum(0), TcpFlags::RST)
    );
    let r = out[1].repr();
    assert_eq!(
        (r.seq, r.ack, r.flags),
        (SeqNum(0), SeqNum(703), TcpFlags::RST | TcpFlags::ACK)
    );
    // A listener answers an ACK with RST too (§3.10.7.2 second check), ignores a RST.
    b.listen(B, 80, 4).unwrap();
    b.on_segment(now, A, B, &tcp(1234, 80, 100, 777, TcpFlags::ACK));
    b.on_segment(now, A, B, &tcp(1234, 80, 100, 777, TcpFlags::RST));
    let out = flush(&mut b, now);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].seq(), out[0].flags()), (SeqNum(777), TcpFlags::RST));
    let s = b.stats();
    assert_eq!(
        (
            s.rst_closed,
            s.rst_listen_bad_ack,
            s.no_listener,
            s.segments_in,
            s.segments_out
        ),
        (2, 1, 3, 5, 3)
    );
    // Broadcast sources and port 0 are dropped without a reply.
    b.on_segment(
        now,
        Ipv4Addr::BROADCAST,
        B,
        &tcp(1234, 80, 1, 1, TcpFlags::ACK),
    );
    b.on_segment(now, A, B, &tcp(0, 80, 1, 1, TcpFlags::ACK));
    assert!(flush(&mut b, now).is_empty());
    assert_eq!(b.stats().malformed_in, 2);
}

/// RFC 4987 §3.6, tcp_syncookies = 2: the handshake completes statelessly; options survive
/// in the timestamp.
#[test]
fn syn_cookies_always() {
    let cb = TcpConfig {
        syncookies: SynCookieMode::Always,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(B, 80, 16).unwrap();
    let ca = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    // The SYN-ACK leaves no state behind.
    let syn = flush(&mut p.a, p.now);
    deliver(&mut p.b, p.now, &syn);
    assert_eq!(
        (p.b.connection_count(), p.b.listener_info(l).unwrap().0),
        (0, 0)
    );
    let syn_ack = flush(&mut p.b, p.now);
    assert_eq!(syn_ack.len(), 1);
    let sa = syn_ack[0].repr();
    assert_eq!(
        (sa.flags, sa.ack),
        (TcpFlags::SYN | TcpFlags::ACK, syn[0].seq() + 1u32)
    );
    assert!(sa.options.timestamp.is_some() && sa.options.sack_permitted);
    assert_eq!(
        sa.options.window_scale,
        Some(Negotiated::our_shift(p.b.config()))
    );
    deliver(&mut p.a, p.now, &syn_ack);
    p.run();
    let cbid = p.b.accept(l).expect("cookie connection accepted");
    assert_eq!(p.b.state(cbid), Some(State::Established));
    assert_eq!(p.a.state(ca), Some(State::Established));
    let n = p.b.info(cbid).unwrap().negotiated;
    let na = p.a.info(ca).unwrap().negotiated;
    assert!(n.timestamps && n.sack && n.window_scaling);
    assert_eq!((n.snd_shift, n.rcv_shift), (na.rcv_shift, na.snd_shift));
    let s = *p.b.stats();
    assert_eq!(
        (s.cookies_sent, s.cookies_accepted, s.cookies_rejected),
        (1, 1, 0)
    );
    // Data flows over the cookie connection.
    p.a.send(p.now, ca, b"via cookie").unwrap();
    p.run();
    let mut buf = [0u8; 32];
    assert_eq!(p.b.recv(cbid, &mut buf).unwrap(), 10);
    // A forged ACK (wrong cookie) is rejected and answered with RST <SEQ=SEG.ACK>.
    p.b.on_segment(p.now, A, B, &tcp(40_123, 80, 1, 0xdead_beef, TcpFlags::ACK));
    let out = flush(&mut p.b, p.now);
    assert_eq!(
        (out[0].flags(), out[0].seq()),
        (TcpFlags::RST, SeqNum(0xdead_beef))
    );
    assert_eq!(p.b.stats().cookies_rejected, 1);
}

/// The cookie secret rotates once per cookie lifetime (2 x 64 s), lazily when a cookie is
/// made; a cookie made just before a rotation still completes just after it (the previous
/// secret is kept), and a handshake under the new secret works (RFC 4987 §3.6).
#[test]
fn syn_cookie_secret_rotates_without_losing_valid_cookies() {
    let cb = TcpConfig {
        syncookies: SynCookieMode::Always,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(B, 80, 16).unwrap();
    let lifetime = Duration::from_secs(128);
    // First cookie at T0 arms the rotation for T0 + 128 s; no rotation yet.
    p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    p.run();
    assert!(p.b.accept(l).is_some());
    assert_eq!(p.b.stats().cookie_rotations, 0);
    // A SYN just before the rotation gets a cookie under the old secret...
    p.now = T0 + (lifetime - Duration::from_millis(1));
    let ca = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    let syn = flush(&mut p.a, p.now);
    deliver(&mut p.b, p.now, &syn);
    let old_cookie = flush(&mut p.b, p.now);
    // ...then another SYN at the rotation time rotates the secret.
    p.now = T0 + lifetime;
    let cc = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    let syn2 = flush(&mut p.a, p.now);
    deliver(&mut p.b, p.now, &syn2);
    assert_eq!(p.b.stats().cookie_rotations, 1);
    let new_cookie = flush(&mut p.b, p.now);
    for sa in [&old_cookie, &new_cookie] {
        assert_eq!(
            (sa.len(), sa[0].flags()),
            (1, TcpFlags::SYN | TcpFlags::ACK)
        );
    }
    // No state was kept for either SYN: both completions below come from the cookies.
    assert_eq!(p.b.listener_info(l).unwrap().0, 0);
    deliver(&mut p.a, p.now, &old_cookie);
    deliver(&mut p.a, p.now, &new_cookie);
    p.run();
    assert_eq!(p.a.state(ca), Some(State::Established));
    assert_eq!(p.a.state(cc), Some(State::Established));
    assert!(p.b.accept(l).is_some() && p.b.accept(l).is_some());
    let s = *p.b.stats();
    assert_eq!(
        (s.cookies_sent, s.cookies_accepted, s.cookies_rejected),
        (3, 3, 0)
    );
}

/// Linux tcp_conn_request with tcp_syncookies = 0: SYNs beyond the SYN queue are dropped
/// (TCPReqQFullDrop), silently.
#[test]
fn syn_queue_full_without_cookies_drops() {
    let cb = TcpConfig {
        syncookies: SynCookieMode::Never,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(B, 80, 1).unwrap(); // SYN queue counts full at 1 entry
    for _ in 0..3 {
        p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    }
    let syns = flush(&mut p.a, p.now);
    assert_eq!(syns.len(), 3);
    deliver(&mut p.b, p.now, &syns);
    let out = flush(&mut p.b, p.now);
    assert_eq!(out.len(), 1, "one SYN-ACK, two silent drops");
    assert_eq!(out[0].ack(), syns[0].seq() + 1u32);
    let (sq, aq, ls) = p.b.listener_info(l).unwrap();
    assert_eq!(
        (sq, aq, ls.syn_queue_full_drops, ls.listen_drops),
        (1, 0, 2, 2)
    );
    assert_eq!(
        (p.b.stats().syn_dropped, p.b.state_counts().syn_received),
        (2, 1)
    );
}

/// Linux tcp_check_req: a third ACK that finds the accept queue full is dropped; the
/// connection stays SYN-RECEIVED and completes once the application accepts. With
/// tcp_abort_on_overflow it is reset instead.
#[test]
fn accept_queue_full_drops_then_completes_or_resets() {
    for abort in [false, true] {
        let cb = TcpConfig {
            abort_on_overflow: abort,
            ..TcpConfig::default()
        };
        let mut p = Pair::new(TcpConfig::default(), cb);
        let l = p.b.listen(B, 80, 1).unwrap(); // accept queue holds 2 (Linux: backlog + 1)
                                               // c1: SYN queued; its ACK is held back.
        let c1 = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
        deliver(&mut p.b, p.now, &flush(&mut p.a, p.now));
        deliver(&mut p.a, p.now, &flush(&mut p.b, p.now));
        let held = flush(&mut p.a, p.now);
        assert_eq!(held.len(), 1);
        // c2, c3 find the SYN queue full and complete through cookies: accept queue full.
        p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
        p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
        p.run();
        assert_eq!(p.b.listener_info(l).unwrap().1, 2);
        assert_eq!(p.b.stats().cookies_accepted, 2);
        deliver(&mut p.b, p.now, &held);
        let out = flush(&mut p.b, p.now);
        assert_eq!(p.b.stats().listen_overflows, 1);
        if !abort {
            assert!(out.is_empty(), "ACK dropped silently");
            assert_eq!(p.b.state_counts().syn_received, 1);
            // The application makes room; the retransmitted SYN-ACK gets the ACK again.
            p.b.accept(l).unwrap();
            p.advance(p.now + Duration::from_secs(1));
            assert_eq!(p.b.state_counts().syn_received, 0);
            assert_eq!(p.b.listener_info(l).unwrap().1, 2);
            assert_eq!(p.a.state(c1), Some(State::Established));
        } else {
            assert_eq!(out.len(), 1);
            assert!(out[0].flags().rst());
            assert_eq!(out[0].seq(), held[0].ack());
            deliver(&mut p.a, p.now, &out);
            assert_eq!(p.a.state(c1), Some(State::Closed));
            assert_eq!(p.a.error(c1), Some(ConnError::Reset));
            assert_eq!(p.b.stats().rst_accept_overflow, 1);
        }
    }
}

/// `accept()` counts in the listener's `accepted`; `listener_backlogs` reports the accept
/// queue's bound, min(backlog, somaxconn).
#[test]
fn accepted_counter_and_backlog_bound() {
    let cb = TcpConfig {
        somaxconn: 8,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(B, 80, 100).unwrap();
    assert_eq!(p.b.listener_backlogs().collect::<Vec<_>>(), [8]);
    for _ in 0..3 {
        p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    }
    p.run();
    assert_eq!(p.b.listener_info(l).unwrap().2.accepted, 0);
    assert!(p.b.accept(l).is_some() && p.b.accept(l).is_some());
    let (_, aq, stats) = p.b.listener_info(l).unwrap();
    assert_eq!((aq, stats.accepted), (1, 2));
    assert_eq!(p.b.stats().conns_opened, 3);
}

/// Closes a to b with a doing the active close; returns b's FIN frame.
fn active_close(p: &mut Pair, ca: ConnId, cb: ConnId) -> Frame {
    p.a.close(p.now, ca).unwrap();
    p.run();
    assert!(conn_events(&mut p.b, cb).contains(&Event::PeerFin));
    p.b.close(p.now, cb).unwrap();
    let start = p.log.len();
    p.run();
    p.log[start..]
        .iter()
        .find(|(from_a, f)| !from_a && f.flags().fin())
        .map(|(_, f)| f.clone())
        .expect("b's FIN")
}

/// `tcp_rfc1337` = 0 (Linux's default): a RST exactly at RCV.NXT ends the TIME-WAIT record
/// without an answer (Linux TWKilled), and the 4-tuple is CLOSED again (a segment for it now
/// draws the CLOSED state's RST); a RST elsewhere is still ignored.
#[test]
fn time_wait_record_ended_by_rst_without_rfc1337() {
    let mut cfg = TcpConfig::default();
    cfg.set("tcp_rfc1337", "0").unwrap();
    let mut p = Pair::new(cfg, TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let fin = active_close(&mut p, ca, cb);
    assert_eq!(p.a.time_wait_count(), 1);
    let f = fin.repr();
    let at = p.now + Duration::from_secs(1);
    let off = tcp(f.src_port, f.dst_port, (f.seq + 2u32).0, 0, TcpFlags::RST);
    p.a.on_segment(at, B, A, &off);
    assert!(flush(&mut p.a, at).is_empty());
    assert_eq!((p.a.time_wait_count(), p.a.stats().tw_rst_ignored), (1, 1));
    let rst = tcp(f.src_port, f.dst_port, (f.seq + 1u32).0, 0, TcpFlags::RST);
    p.a.on_segment(at, B, A, &rst);
    assert!(flush(&mut p.a, at).is_empty());
    assert_eq!((p.a.time_wait_count(), p.a.stats().tw_killed), (0, 1));
    // RFC 9293 §3.10.7.1 (CLOSED): the retransmitted FIN now draws <SEQ=SEG.ACK><CTL=RST>.
    p.a.on_segment(at, B, A, &fin.repr());
    let out = flush(&mut p.a, at);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!((r.flags, r.seq), (TcpFlags::RST, f.ack));
}

/// RFC 9293 §3.10.7.4: TIME-WAIT is kept as a compact record; a retransmitted FIN is
/// ACKed again with <SEQ=SND.NXT><ACK=RCV.NXT>; a RST is ignored (RFC 1337).
#[test]
fn time_wait_record_reacks_fin_and_ignores_rst() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let fin = active_close(&mut p, ca, cb);
    assert_eq!((p.a.connection_count(), p.a.time_wait_count()), (0, 1));
    assert_eq!(p.a.stats().tw_entered, 1);
    assert_eq!(p.a.state(ca), None);
    assert_eq!(p.b.connection_count(), 0, "LAST-ACK done and closed: freed");
    assert_eq!(p.a.state_counts().time_wait, 1);
    // The last ACK was lost: b retransmits its FIN.
    let later = p.now + Duration::from_secs(5);
    deliver(&mut p.a, later, std::slice::from_ref(&fin));
    let out = flush(&mut p.a, later);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    let f = fin.repr();
    assert_eq!(
        (r.flags, r.seq, r.ack),
        (TcpFlags::ACK, f.ack, f.seq + 1u32)
    );
    assert_eq!((r.src_port, r.dst_port), (f.dst_port, f.src_port));
    // RFC 1337: RST ignored, record kept.
    let rst = tcp(f.src_port, f.dst_port, (f.seq + 1u32).0, 0, TcpFlags::RST);
    p.a.on_segment(later, B, A, &rst);
    assert!(flush(&mut p.a, later).is_empty());
    assert_eq!((p.a.time_wait_count(), p.a.stats().tw_rst_ignored), (1, 1));
    // 2*MSL after the restart the record expires and the tuple is CLOSED.
    let end = later + p.a.config().time_wait();
    assert!(p.a.next_deadline().is_some_and(|d| d <= end));
    p.a.on_timeout(end);
    assert_eq!((p.a.time_wait_count(), p.a.stats().tw_expired), (0, 1));
    p.a.on_segment(end, B, A, &fin.repr());
    let out = flush(&mut p.a, end);
    assert!(out[0].flags().rst());
}

/// `tuple_state` / `has_listener` (what `xdptcp trace` reads around each segment): the
/// connection's state, TIME-WAIT for a record, nothing after; a listener by address or
/// wildcard.
#[test]
fn tuple_state_follows_connection_and_record() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let ta = p.a.tuple(ca).unwrap();
    let tb = ta.reversed();
    assert_eq!(p.a.tuple_state(&ta), Some(State::Established));
    assert_eq!(p.b.tuple_state(&tb), Some(State::Established));
    assert!(p.b.has_listener(&tb) && !p.a.has_listener(&ta));
    active_close(&mut p, ca, cb);
    assert_eq!(p.a.time_wait_count(), 1);
    assert_eq!(p.a.tuple_state(&ta), Some(State::TimeWait), "a record");
    assert_eq!(p.b.tuple_state(&tb), None, "LAST-ACK done: freed");
    let mut other = tb;
    other.local_port = 81;
    assert!(!p.b.has_listener(&other));
}

/// RFC 6191 §2: a new SYN reopens a 4-tuple in TIME-WAIT (the server closed first, so the
/// TIME-WAIT is on the listening side): 10 ms later by its newer TSval; in the same
/// millisecond, 100 µs later (equal TSval, 1 ms clock), by its sequence number beyond RCV.NXT
/// (RFC 6528 ISNs grow every 4 µs). Before the
/// equal-TSval rule the second case was ACKed, the client answered with a RST (RFC 9293
/// §3.10.7.3, ignored in TIME-WAIT by RFC 1337) and the SYN waited for its 1 s retransmission.
#[test]
fn new_syn_in_time_wait_accepted() {
    for delay in [Duration::from_millis(10), Duration::from_micros(100)] {
        let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
        p.a = ep(TcpConfig::default(), 1, 40_000..=40_000); // one port: same 4-tuple again
        let l = p.b.listen(B, 80, 16).unwrap();
        let (ca, cb) = p.open(l, 80);
        // b (the server) closes first.
        let mut p2 = Pair {
            a: p.b,
            b: p.a,
            now: p.now,
            log: Vec::new(),
        };
        active_close(&mut p2, cb, ca);
        let (mut b, a) = (p2.a, p2.b);
        p = Pair {
            a,
            b: std::mem::replace(&mut b, ep(TcpConfig::default(), 9, 1..=1)),
            now: p2.now,
            log: Vec::new(),
        };
        assert_eq!(p.b.time_wait_count(), 1);
        assert_eq!(p.a.connection_count(), 0);
        p.now += delay;
        let ca2 = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
        p.run();
        assert_eq!(p.b.stats().tw_reopened, 1, "delay {delay:?}");
        assert_eq!(p.b.stats().tw_acks, 0, "delay {delay:?}");
        assert_eq!(p.b.time_wait_count(), 0);
        // SYN, SYN-ACK, ACK: nothing else (no ACK from TIME-WAIT, no RST).
        assert_eq!(p.log.len(), 3, "delay {delay:?}: {:?}", p.log);
        let cb2 = p.b.accept(l).unwrap();
        assert_eq!(p.b.state(cb2), Some(State::Established));
        assert_eq!(p.a.state(ca2), Some(State::Established));
    }
}

/// Linux tcp_twsk_unique with tcp_tw_reuse = 1: an active open may take over its own
/// TIME-WAIT 4-tuple once TS.Recent is 1 s old; its ISS starts beyond the old SND.NXT.
#[test]
fn tw_reuse_active_open() {
    for reuse in [TwReuse::On, TwReuse::LoopbackOnly] {
        let ca_cfg = TcpConfig {
            tw_reuse: reuse,
            ..TcpConfig::default()
        };
        let mut p = Pair::new(ca_cfg.clone(), TcpConfig::default());
        p.a = ep(ca_cfg, 1, 40_000..=40_000);
        let l = p.b.listen(B, 80, 16).unwrap();
        let (ca, cb) = p.open(l, 80);
        active_close(&mut p, ca, cb);
        assert_eq!(p.a.time_wait_count(), 1);
        let last_a = p
            .log
            .iter()
            .rev()
            .find(|(from_a, _)| *from_a)
            .unwrap()
            .1
            .repr()
            .seq;
        let remote = SocketAddrV4::new(B, 80);
        // TS.Recent is fresh: not yet.
        assert_eq!(p.a.connect(p.now, A, remote), Err(ConnectError::NoPorts));
        p.now += Duration::from_secs(1);
        assert_eq!(p.a.connect(p.now, A, remote), Err(ConnectError::NoPorts));
        p.now += Duration::from_millis(1);
        let r = p.a.connect(p.now, A, remote);
        if reuse == TwReuse::LoopbackOnly {
            assert_eq!(
                r,
                Err(ConnectError::NoPorts),
                "tcp_tw_reuse=2 is loopback only"
            );
            continue;
        }
        let ca2 = r.unwrap();
        assert_eq!((p.a.stats().tw_reused, p.a.time_wait_count()), (1, 0));
        let syn = flush(&mut p.a, p.now);
        assert_eq!(syn[0].seq(), last_a + 65537u32);
        deliver(&mut p.b, p.now, &syn);
        p.run();
        assert_eq!(p.a.state(ca2), Some(State::Established));
    }
}

/// The shard's port range bounds active opens to one remote (EADDRNOTAVAIL); other remotes
/// may reuse the same ports.
#[test]
fn ephemeral_exhaustion() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_002);
    let r1 = SocketAddrV4::new(B, 80);
    let mut ports: Vec<u16> = (0..3)
        .map(|_| {
            let id = a.connect(T0, A, r1).unwrap();
            a.tuple(id).unwrap().local_port
        })
        .collect();
    ports.sort();
    assert_eq!(ports, [40_000, 40_001, 40_002]);
    assert_eq!(a.connect(T0, A, r1), Err(ConnectError::NoPorts));
    assert!(a.connect(T0, A, SocketAddrV4::new(B, 81)).is_ok());
    let cfg = TcpConfig {
        max_connections: 1,
        ..TcpConfig::default()
    };
    let mut small = ep(cfg, 1, 40_000..=40_100);
    small.connect(T0, A, r1).unwrap();
    assert_eq!(
        small.connect(T0, A, r1),
        Err(ConnectError::TooManyConnections)
    );
    assert_eq!(small.stats().connect_limit_refused, 1);
}

/// RFC 6056 §3.3.3 (Algorithm 3): successive active opens to one destination take successive
/// ports of the range (wrapping), so a port comes back only after the whole range was used.
#[test]
fn ephemeral_ports_walk_the_range_in_order() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_009);
    let r = SocketAddrV4::new(B, 80);
    let mut ports = Vec::new();
    for _ in 0..12 {
        let id = a.connect(T0, A, r).unwrap();
        ports.push(a.tuple(id).unwrap().local_port);
        a.abort(T0, id).unwrap(); // SYN-SENT: no RST, freed by the next poll
        flush(&mut a, T0);
        assert_eq!(a.connection_count(), 0);
    }
    for w in ports.windows(2) {
        assert_eq!(w[1] - 40_000, (w[0] - 40_000 + 1) % 10, "{ports:?}");
    }
    // Another destination has its own starting point but the same walk.
    let id = a.connect(T0, A, SocketAddrV4::new(B, 81)).unwrap();
    assert!((40_000..=40_009).contains(&a.tuple(id).unwrap().local_port));
}

/// A stale handle never reaches a new connection in the reused slot.
#[test]
fn stale_handles_rejected() {
    let mut a = ep(TcpConfig::default(), 1, 40_000..=40_100);
    let id = a.connect(T0, A, SocketAddrV4::new(B, 80)).unwrap();
    a.abort(T0, id).unwrap();
    flush(&mut a, T0);
    assert_eq!(a.state(id), None);
    let id2 = a.connect(T0, A, SocketAddrV4::new(B, 80)).unwrap();
    assert_eq!(id2.index(), id.index());
    assert_ne!(id2.generation(), id.generation());
    assert_eq!(a.send(T0, id, b"x"), Err(SendError::Closed(None)));
    assert_eq!(a.state(id2), Some(State::SynSent));
}

/// RFC 4987 with a peer that does not do timestamps: the cookie SYN-ACK offers neither window
/// scaling nor SACK (nowhere to keep them, Linux clears them); only the MSS survives.
#[test]
fn syn_cookies_without_timestamps() {
    let ca = TcpConfig {
        timestamps: false,
        ..TcpConfig::default()
    };
    let cb = TcpConfig {
        syncookies: SynCookieMode::Always,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(ca, cb);
    let l = p.b.listen(B, 80, 16).unwrap();
    let c = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    p.run();
    let sa = p.log[1].1.repr();
    assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(
        (
            sa.options.window_scale,
            sa.options.sack_permitted,
            sa.options.timestamp
        ),
        (None, false, None)
    );
    assert_eq!(sa.options.mss, Some(1460));
    let cbid = p.b.accept(l).unwrap();
    let n = p.b.info(cbid).unwrap().negotiated;
    assert!(!n.timestamps && !n.sack && !n.window_scaling);
    assert_eq!(n.mss, 1460);
    assert_eq!(p.a.state(c), Some(State::Established));
}

/// tcp_max_tw_buckets: with the table full a closing connection is destroyed without
/// TIME-WAIT (Linux TCPTimeWaitOverflow); the tuple is then CLOSED (RST to a late FIN).
#[test]
fn time_wait_overflow() {
    let ca = TcpConfig {
        max_tw_buckets: 0,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(ca, TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (c1, c2) = p.open(l, 80);
    let fin = active_close(&mut p, c1, c2);
    let s = p.a.stats();
    assert_eq!(
        (s.tw_overflow, s.tw_entered, p.a.time_wait_count()),
        (1, 0, 0)
    );
    assert_eq!(p.a.connection_count(), 0);
    p.a.on_segment(p.now, B, A, &fin.repr());
    let out = flush(&mut p.a, p.now);
    assert_eq!((out[0].flags(), out[0].seq()), (TcpFlags::RST, fin.ack()));
}

/// RFC 9293 §3.10.7.4 in TIME-WAIT: an old SYN (not newer) is answered with an ACK, not
/// accepted; a SYN after the 2MSL expiry reaches the listener normally.
#[test]
fn old_syn_in_time_wait_gets_ack() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    let mut q = Pair {
        a: p.b,
        b: p.a,
        now: p.now,
        log: Vec::new(),
    };
    let fin = active_close(&mut q, cb, ca); // b (server side) in TIME-WAIT
    let mut b = q.a;
    assert_eq!(b.time_wait_count(), 1);
    let f = fin.repr(); // the client's FIN: client port -> 80
    let mut syn = tcp(f.src_port, 80, 5, 0, TcpFlags::SYN); // old seq, no timestamp
    syn.options.mss = Some(1460);
    b.on_segment(q.now, A, B, &syn);
    let out = flush(&mut b, q.now);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].flags(), out[0].seq(), out[0].ack()),
        (TcpFlags::ACK, f.ack, f.seq + 1u32)
    );
    assert_eq!((b.stats().tw_acks, b.stats().tw_reopened), (1, 0));
    let late = q.now + b.config().time_wait();
    b.on_segment(late, A, B, &syn);
    let out = flush(&mut b, late);
    assert_eq!(out[0].flags(), TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(out[0].ack(), SeqNum(6));
    assert_eq!(b.stats().tw_expired, 1);
}

/// Listener lookup: an exact (addr, port) listener wins over 0.0.0.0; duplicates refused;
/// `unlisten` resets half-open children and frees the port.
#[test]
fn listener_lookup_and_unlisten() {
    let mut b = ep(TcpConfig::default(), 2, 50_000..=50_999);
    let wild = b.listen(Ipv4Addr::UNSPECIFIED, 80, 8).unwrap();
    let exact = b.listen(B, 80, 8).unwrap();
    assert_eq!(b.listen(B, 80, 8), Err(ListenError::AddrInUse));
    assert_eq!(b.listen(B, 0, 8), Err(ListenError::InvalidPort));
    let other = Ipv4Addr::new(198, 18, 0, 3);
    b.on_segment(T0, A, B, &tcp(1000, 80, 10, 0, TcpFlags::SYN));
    b.on_segment(T0, A, other, &tcp(1001, 80, 20, 0, TcpFlags::SYN));
    let out = flush(&mut b, T0);
    assert_eq!(out.len(), 2);
    assert_eq!((out[1].src, out[1].ack()), (other.into(), SeqNum(21)));
    assert_eq!(b.listener_info(exact).unwrap().0, 1);
    assert_eq!(b.listener_info(wild).unwrap().0, 1);
    assert!(b.unlisten(T0, exact));
    assert!(!b.unlisten(T0, exact), "stale listener id");
    let out = flush(&mut b, T0);
    assert_eq!(out.len(), 1);
    let r = out[0].repr();
    assert_eq!(
        (r.flags.rst(), r.dst_port, r.seq),
        (true, 1000, out[0].seq())
    );
    assert_eq!(
        b.connection_count(),
        1,
        "the wildcard listener's child remains"
    );
    // Port 80 on B now falls back to the wildcard listener.
    b.on_segment(T0, A, B, &tcp(1002, 80, 30, 0, TcpFlags::SYN));
    assert_eq!(b.listener_info(wild).unwrap().0, 2);
}

/// Runs `on_timeout` at each `next_deadline` (which may be early: a wheel cascade point)
/// until something is transmitted; returns when and what. Bounded: a deadline costs at most
/// one wake-up per wheel level.
fn fire_next(ep: &mut Endpoint) -> (Instant, Vec<Frame>) {
    for _ in 0..64 {
        let now = ep.next_deadline().expect("a timer is armed");
        ep.on_timeout(now);
        let out = flush(ep, now);
        if !out.is_empty() {
            return (now, out);
        }
    }
    panic!("no output after 64 wake-ups");
}

/// Timers: the SYN is retransmitted when `on_timeout` runs at `next_deadline` (RFC 6298
/// initial RTO 1 s); a connection that exhausts tcp_syn_retries reports TimedOut.
#[test]
fn timers_drive_retransmission_and_timeout() {
    let cfg = TcpConfig {
        syn_retries: 1,
        ..TcpConfig::default()
    };
    let mut a = ep(cfg, 1, 40_000..=40_999);
    let id = a.connect(T0, A, SocketAddrV4::new(B, 80)).unwrap();
    let first = flush(&mut a, T0);
    a.on_timeout(T0 + Duration::from_millis(999));
    assert!(flush(&mut a, T0 + Duration::from_millis(999)).is_empty());
    let (d, again) = fire_next(&mut a);
    assert_eq!(d, T0 + Duration::from_secs(1));
    assert_eq!(
        (again.len(), again[0].flags(), again[0].seq()),
        (1, TcpFlags::SYN, first[0].seq())
    );
    for _ in 0..64 {
        let Some(now) = a.next_deadline() else { break };
        a.on_timeout(now);
        flush(&mut a, now);
    }
    assert_eq!(a.state(id), Some(State::Closed));
    assert_eq!(a.error(id), Some(ConnError::TimedOut));
    assert_eq!(a.next_deadline(), None);
}

/// max_connections bounds passive opens too: SYNs beyond it are dropped and counted.
#[test]
fn connection_limit_drops_syns() {
    let cfg = TcpConfig {
        max_connections: 1,
        ..TcpConfig::default()
    };
    let mut b = ep(cfg, 2, 50_000..=50_999);
    b.listen(B, 80, 8).unwrap();
    b.on_segment(T0, A, B, &tcp(1000, 80, 10, 0, TcpFlags::SYN));
    b.on_segment(T0, A, B, &tcp(1001, 80, 10, 0, TcpFlags::SYN));
    assert_eq!(flush(&mut b, T0).len(), 1);
    let s = b.stats();
    assert_eq!(
        (s.conn_limit_drops, s.syn_dropped, b.connection_count()),
        (1, 1, 1)
    );
}

/// RFC 5961 §3.2 / §7: an in-window but inexact RST gets a challenge ACK, rate-limited by
/// the one limiter the endpoint shares among its connections (tcp_challenge_ack_limit).
#[test]
fn challenge_ack_limiter_is_shared() {
    let cb = TcpConfig {
        challenge_ack_limit: 1,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(B, 80, 16).unwrap();
    let (c1, _) = p.open(l, 80);
    let (c2, _) = p.open(l, 80);
    let mut rsts = Vec::new();
    for c in [c1, c2] {
        let e = p.a.tuple(c).unwrap();
        // The last segment a sent on this connection: its seq is b's RCV.NXT.
        let last = p
            .log
            .iter()
            .rev()
            .find(|(from_a, f)| *from_a && f.repr().src_port == e.local_port)
            .unwrap();
        let rcv_nxt = last.1.seq();
        rsts.push(tcp(e.local_port, 80, (rcv_nxt + 1u32).0, 0, TcpFlags::RST));
    }
    for r in &rsts {
        p.b.on_segment(p.now, A, B, r);
    }
    let out = flush(&mut p.b, p.now);
    assert_eq!(out.len(), 1, "one challenge ACK for two connections");
    assert_eq!(out[0].flags(), TcpFlags::ACK);
    let st = p.b.stats();
    assert_eq!(
        (st.challenge_acks_sent, st.challenge_acks_suppressed),
        (1, 1)
    );
    assert_eq!(
        p.b.state_counts().established,
        2,
        "neither connection was reset"
    );
}

/// RFC 6191 on a full connection: the application has not closed the TIME-WAIT connection
/// yet; a new SYN with a newer timestamp still reopens the 4-tuple (the old handle goes
/// stale).
#[test]
fn new_syn_reopens_unclosed_time_wait_connection() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    p.a = ep(TcpConfig::default(), 1, 40_000..=40_000);
    let l = p.b.listen(B, 80, 16).unwrap();
    let (ca, cb) = p.open(l, 80);
    // b (server) shuts down its write side first but never calls close: TIME-WAIT stays a
    // full connection.
    p.b.shutdown_write(p.now, cb).unwrap();
    p.run();
    p.a.close(p.now, ca).unwrap();
    p.run();
    assert_eq!(p.b.state(cb), Some(State::TimeWait));
    assert_eq!(p.b.time_wait_count(), 0);
    p.now += Duration::from_millis(10);
    let ca2 = p.a.connect(p.now, A, SocketAddrV4::new(B, 80)).unwrap();
    p.run();
    assert_eq!(p.b.state(cb), None);
    let cb2 = p.b.accept(l).unwrap();
    assert_eq!(p.b.state(cb2), Some(State::Established));
    assert_eq!(p.a.state(ca2), Some(State::Established));
}

/// The timer wheel at scale: 100k SYN-SENT connections to a silent peer hold one wheel entry
/// each and all retransmit their SYN (same ISS) at exactly T0 + 1 s, the RFC 6298 §2.1
/// initial RTO, and none a tick earlier; the next round is at T0 + 3 s (backoff, §5.5).
#[test]
fn wheel_fires_100k_syn_retransmissions() {
    const N: usize = 100_000;
    let cfg = TcpConfig {
        max_connections: N,
        ..TcpConfig::default()
    };
    let mut a = ep(cfg, 1, 1024..=65_535);
    let remotes = [
        B,
        Ipv4Addr::new(198, 18, 0, 3),
        Ipv4Addr::new(198, 18, 0, 4),
        Ipv4Addr::new(198, 18, 0, 5),
    ];
    for i in 0..N {
        a.connect(T0, A, SocketAddrV4::new(remotes[i % 4], 80))
            .unwrap();
    }
    assert!(matches!(
        a.connect(T0, A, SocketAddrV4::new(B, 81)),
        Err(ConnectError::TooManyConnections)
    ));
    let syns = |a: &mut Endpoint, now: Instant| {
        let mut v = Vec::new();
        a.poll_transmit(now, |_, d, seg| {
            assert_eq!(seg.flags, TcpFlags::SYN);
            v.push((d, seg.src_port, seg.seq.0));
        });
        v.sort_unstable();
        v
    };
    let first = syns(&mut a, T0);
    assert_eq!(first.len(), N);
    assert_eq!(a.timers.len(), N, "one wheel entry per connection");
    // Wake at every `next_deadline` (cascade points included) until output appears.
    let mut now = T0;
    let mut again = Vec::new();
    let mut wakes = 0;
    for _ in 0..64 {
        wakes += 1;
        now = a.next_deadline().unwrap();
        assert!(now <= T0 + Duration::from_secs(1), "never late");
        a.on_timeout(now);
        again = syns(&mut a, now);
        if !again.is_empty() {
            break;
        }
    }
    assert_eq!(now, T0 + Duration::from_secs(1), "nothing fires early");
    assert_eq!(again, first, "every SYN retransmitted once, all at once");
    // One shared deadline: at most one wake-up per wheel level (6) on the way to it.
    assert!(wakes <= 6, "{wakes} wake-ups");
    assert_eq!(a.timers.len(), N);
    let next = a.next_deadline().unwrap();
    assert!(next > now && next <= T0 + Duration::from_secs(3));
    assert_eq!(a.stats().timer_wheel_full, 0);
    assert_eq!(a.state_counts().syn_sent, N);
}

/// Active opens with an RSS preference (F-Stack `ff_rss_check`): every port picked hashes
/// to the worker's own queue while such ports are free; then any free port of the range,
/// counted as a miss; then EADDRNOTAVAIL.
#[test]
fn connect_prefers_ports_hashing_to_own_queue() {
    use crate::rss::{FlowOwner, DEFAULT_RSS_KEY};
    let owner = FlowOwner::new(DEFAULT_RSS_KEY, 2);
    let mut e = ep(TcpConfig::default(), 7, 61000..=61063);
    e.set_rss_preference(owner, 1);
    let remote = SocketAddrV4::new(B, 80);
    let tuple = |port| FourTuple::new(SocketAddrV4::new(A, port), remote);
    let matching = (61000..=61063u16)
        .filter(|&p| owner.rss_queue(&tuple(p)) == 1)
        .count();
    assert!(matching > 0 && matching < 64, "{matching}");
    for i in 0..64 {
        let id = e.connect(T0, A, remote).expect("a free port");
        let port = e.slot(id).unwrap().conn.tuple().local_port;
        let on_own_queue = owner.rss_queue(&tuple(port)) == 1;
        assert_eq!(on_own_queue, i < matching, "connect {i} port {port}");
    }
    assert_eq!(e.stats().connect_rss_miss, (64 - matching) as u64);
    assert_eq!(e.connect(T0, A, remote), Err(ConnectError::NoPorts));
}

/// Memory per connection around the `Connection` (docs/architecture.md): owner, flags, wheel
/// handle and `ConnCounters`; the 4-tuple lives in the connection, once.
#[test]
fn slot_size_bound() {
    let around = core::mem::size_of::<Slot>() - core::mem::size_of::<Connection>();
    assert!(around <= 88, "{around}");
    // The `lastsnd` stamp lives in what was the counters' padding (info.rs).
    assert_eq!(core::mem::size_of::<ConnCounters>(), 40);
}

/// Memory under attack: many connections each pin out-of-order data near the right edge of their
/// window. The charged memory stays within `tcp_mem` (out-of-order data only up to
/// PRESSURE, everything up to HIGH), the refusals are counted, and a legitimate connection
/// on the same endpoint still transfers its data exactly.
#[test]
fn many_connections_pinning_out_of_order_data_stay_under_tcp_mem() {
    // b: 16 / 32 / 64 KiB (pages of 4 KiB).
    let cb = TcpConfig {
        mem: [4, 8, 16],
        ..TcpConfig::default()
    };
    let (pressure, high) = (8 * 4096u64, 16 * 4096u64);
    let mut p = Pair::new(TcpConfig::default(), cb);
    let l = p.b.listen(Ipv4Addr::UNSPECIFIED, 80, 64).unwrap();
    let mut attackers = Vec::new();
    for _ in 0..40 {
        attackers.push(p.open(l, 80));
    }
    let (legit_a, legit_b) = p.open(l, 80);
    // Each attacker: 4 segments of 1000 bytes with holes, the last at the window's edge.
    let chunk = [0x55u8; 1000];
    for &(ca, cbid) in &attackers {
        let ia = p.a.info(ca).unwrap();
        let ib = p.b.info(cbid).unwrap();
        let wnd = 65_535u32.min(ia.snd_wnd.unwrap());
        for k in 0..4u32 {
            let off = wnd - 1000 - k * 2000;
            let mut s = tcp(
                ia.tuple.local().port(),
                80,
                (ia.snd_nxt + off).0,
                ib.snd_nxt.0,
                TcpFlags::ACK,
            );
            s.payload = &chunk;
            p.b.on_segment(p.now, A, B, &s);
            let c = p.b.buffer_pool_stats();
            assert!(c.ooo_bytes <= pressure, "out of order within PRESSURE");
            assert!(c.out_bytes + c.ooo_bytes <= high);
        }
        flush(&mut p.b, p.now); // b's SACKs for data a never sent: not delivered
    }
    let s = p.b.buffer_pool_stats();
    assert!(s.ofo_mem_drops > 0, "the flood was refused: {s:?}");
    assert!(
        s.ooo_bytes > pressure / 2,
        "and held up to the limit: {s:?}"
    );
    // The legitimate connection: 200 KB each way, read as it arrives.
    let msg: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut sent, mut got, mut echo_got) = (0, Vec::new(), 0usize);
    let mut buf = vec![0u8; 65_536];
    for _ in 0..2_000 {
        if sent < msg.len() {
            sent += p.a.send(p.now, legit_a, &msg[sent..]).unwrap_or(0);
        }
        p.run();
        loop {
            let n = p.b.recv(legit_b, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let mut k = 0;
            for _ in 0..1_000 {
                let before = k;
                k += p.b.send(p.now, legit_b, &buf[k..n]).unwrap_or(0);
                if k == n {
                    break;
                }
                p.run();
                echo_got += p.a.recv(legit_a, &mut [0u8; 65_536]).unwrap();
                if k == before {
                    // Nothing moved: let the peers' timers (delayed ACK, persist) fire.
                    p.advance(p.now + Duration::from_millis(50));
                }
            }
            assert_eq!(k, n, "the echo was queued");
        }
        echo_got += p.a.recv(legit_a, &mut buf).unwrap();
        let c = p.b.buffer_pool_stats();
        // HIGH, plus at most one forced grant (one segment into an empty receive ring).
        assert!(c.out_bytes + c.ooo_bytes <= high + 2048, "{c:?}");
        if got.len() == msg.len() && echo_got == msg.len() {
            break;
        }
        p.advance(p.now + Duration::from_millis(200));
    }
    assert_eq!(got.len(), msg.len(), "the legitimate request arrived");
    assert!(got == msg, "exactly");
    assert_eq!(echo_got, msg.len(), "and its echo");
    let s = p.b.buffer_pool_stats();
    assert!(s.mem_pressure_entered >= 1 && s.rcvq_mem_drops > 0, "{s:?}");
}

mod conform;
mod ipv6;
/// `infos_from` / `time_wait_from` (the `xdptcp ss` walk): every connection and every live
/// TIME-WAIT record exactly once, in bounded slices, with the time left of each record's
/// 2*MSL; an expired record is not listed.
#[test]
fn listing_walks_connections_and_time_wait_records_in_slices() {
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 64).unwrap();
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(p.open(l, 80));
    }
    // Three of them closed by a: TIME-WAIT records on a.
    for (ca, cb) in open.drain(..3) {
        active_close(&mut p, ca, cb);
    }
    let walk = |ep: &Endpoint, max: usize| {
        let (mut seen, mut cursor, mut calls) = (Vec::new(), Some(0), 0);
        while let Some(c) = cursor {
            let before = seen.len();
            cursor = ep.infos_from(c, max, |i| seen.push(i));
            assert!(seen.len() - before <= max);
            calls += 1;
        }
        (seen, calls)
    };
    let (a, calls) = walk(&p.a, 3);
    assert_eq!(a.len(), 7);
    assert!(calls >= 3, "{calls}");
    assert!(a
        .iter()
        .all(|i| i.state == State::Established && i.tuple.remote_port == 80));
    let mut ports: Vec<u16> = a.iter().map(|i| i.tuple.local_port).collect();
    ports.dedup();
    assert_eq!(ports.len(), 7);
    assert_eq!(walk(&p.b, 100).0.len(), 7);
    // TIME-WAIT: full 2*MSL left now, less later, nothing after expiry.
    let tw = |ep: &Endpoint, now: Instant| {
        let (mut seen, mut cursor) = (Vec::new(), Some(0));
        while let Some(c) = cursor {
            cursor = ep.time_wait_from(now, c, 2, |t, left| seen.push((t, left)));
        }
        seen
    };
    let now = tw(&p.a, p.now);
    assert_eq!(now.len(), 3);
    assert!(now
        .iter()
        .all(|&(t, left)| t.remote_port == 80 && left == p.a.config().time_wait()));
    let later = tw(&p.a, p.now + Duration::from_secs(10));
    assert!(later
        .iter()
        .all(|&(_, left)| left == p.a.config().time_wait() - Duration::from_secs(10)));
    assert!(tw(&p.a, p.now + p.a.config().time_wait()).is_empty());
    assert_eq!(p.a.time_wait_count(), 3, "read-only: nothing removed");
}

/// The history ring (history.rs), when recorded: the states each side went through, a
/// retransmission timeout with its count, and the reset reason. Off: nothing kept.
#[test]
fn history_keeps_states_timeouts_and_the_reset_reason() {
    use crate::tcp::endpoint::HistEvent;
    let mut p = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = p.b.listen(B, 80, 16).unwrap();
    p.a.record_history(true);
    p.b.record_history(true);
    let (ca, cb) = p.open(l, 80);
    let evs = |ep: &Endpoint, id| -> Vec<HistEvent> {
        ep.info(id)
            .unwrap()
            .history
            .events()
            .map(|(_, e)| e)
            .collect()
    };
    assert_eq!(
        evs(&p.a, ca),
        [
            HistEvent::State(State::SynSent),
            HistEvent::State(State::Established)
        ]
    );
    assert_eq!(
        evs(&p.b, cb),
        [
            HistEvent::State(State::SynReceived),
            HistEvent::State(State::Established)
        ]
    );
    // A SYN nobody answers: RTO #1 after the initial 1 s (RFC 6298 §2.1).
    let lone = p.a.connect(p.now, A, SocketAddrV4::new(B, 81)).unwrap();
    flush(&mut p.a, p.now);
    let (at, _) = fire_next(&mut p.a);
    let h: Vec<_> = p.a.info(lone).unwrap().history.events().collect();
    assert_eq!(h[0].1, HistEvent::State(State::SynSent));
    assert!(
        h.contains(&(at.saturating_since(p.now), HistEvent::Rto(1))),
        "{h:?}"
    );
    // The peer resets: ESTABLISHED -> CLOSED, ended by Reset.
    p.b.abort(p.now, cb).unwrap();
    p.run();
    let h = evs(&p.a, ca);
    assert_eq!(
        h[h.len() - 2..],
        [
            HistEvent::State(State::Closed),
            HistEvent::Ended(ConnError::Reset)
        ]
    );
    let mut off = Pair::new(TcpConfig::default(), TcpConfig::default());
    let l = off.b.listen(B, 80, 16).unwrap();
    let (ca, _) = off.open(l, 80);
    assert_eq!(off.a.info(ca).unwrap().history.events().count(), 0);
}
mod icmp;
mod icmp6;
