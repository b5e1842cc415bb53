//! Connection tests (model: smoltcp's tcp.rs tests, netstack3's tables): a fixture builds a
//! connection in a given state, a test feeds segments and asserts the exact reply segments
//! and the resulting state and events.
//!
//! Conventions: we are 198.18.0.1:80 with ISS 1000; the peer is 198.18.0.2:40000 with ISS
//! 5000. The default test config has no options (timestamps, window scaling, SACK off), a
//! 4096-byte window both ways and MSS 1460, so segments are easy to read; option tests turn
//! them on.

mod close;
mod conform;
mod data;
mod errors;
mod fuzz;
mod handshake;
mod icmp;
mod mem;
mod pair;
mod recv;
mod recv_prop;
mod rst;
mod send;
mod timers;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Mutex;

use super::*;
use crate::wire::{TcpFlags, TcpOptions};

pub const OUR_ISS: u32 = 1000;
pub const PEER_ISS: u32 = 5000;
pub const LOCAL_PORT: u16 = 80;
pub const REMOTE_PORT: u16 = 40000;
pub const WND: u16 = 4096;

pub const SYN: TcpFlags = TcpFlags::SYN;
pub const ACK: TcpFlags = TcpFlags::ACK;
pub const FIN: TcpFlags = TcpFlags::FIN;
pub const RST: TcpFlags = TcpFlags::RST;
pub const PSH: TcpFlags = TcpFlags::PSH;

pub fn ends() -> FourTuple {
    FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), LOCAL_PORT),
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), REMOTE_PORT),
    )
}

pub fn cfg() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        window_scaling: false,
        sack: false,
        rmem: WND as usize,
        wmem: 4096,
        ..TcpConfig::default()
    }
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A segment from the peer.
pub fn seg(flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr<'static> {
    TcpRepr {
        src_port: REMOTE_PORT,
        dst_port: LOCAL_PORT,
        seq: SeqNum(seq),
        ack: SeqNum(ack),
        flags,
        window: WND,
        urgent: 0,
        options: TcpOptions::default(),
        payload: &[],
    }
}

/// A segment from the peer carrying `data`.
pub fn data(flags: TcpFlags, seq: u32, ack: u32, payload: &'static [u8]) -> TcpRepr<'static> {
    TcpRepr {
        payload,
        ..seg(flags, seq, ack)
    }
}

/// An emitted segment, owned, with the fields tests compare.
#[derive(Clone, PartialEq, Eq)]
pub struct Out {
    pub flags: TcpFlags,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub options: TcpOptions,
    pub payload: Vec<u8>,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "<{:#04x} SEQ={} ACK={} WND={} len={}",
            self.flags.0,
            self.seq,
            self.ack,
            self.window,
            self.payload.len()
        )?;
        if self.payload.iter().any(|&b| b != self.payload[0]) {
            write!(f, " {:?}", String::from_utf8_lossy(&self.payload))?;
        } else if let Some(b) = self.payload.first() {
            write!(f, " [{b}; ..]")?;
        }
        let o = &self.options;
        if o.mss.is_some() || o.window_scale.is_some() || o.sack_permitted {
            write!(
                f,
                " mss={:?} ws={:?} sackok={}",
                o.mss, o.window_scale, o.sack_permitted
            )?;
        }
        if let Some(ts) = o.timestamp {
            write!(f, " ts={ts:?}")?;
        }
        write!(f, ">")
    }
}

impl Out {
    /// The segment we expect: ports checked separately; options none.
    pub fn new(flags: TcpFlags, seq: u32, ack: u32) -> Out {
        Out {
            flags,
            seq,
            ack,
            window: WND,
            options: TcpOptions::default(),
            payload: Vec::new(),
        }
    }
    pub fn win(mut self, w: u16) -> Out {
        self.window = w;
        self
    }
    pub fn payload(mut self, p: &[u8]) -> Out {
        self.payload = p.to_vec();
        self
    }
    pub fn opts(mut self, o: TcpOptions) -> Out {
        self.options = o;
        self
    }
}

/// Our ACK <SEQ=seq><ACK=ack> with the full window.
pub fn ack_out(seq: u32, ack: u32) -> Out {
    Out::new(ACK, seq, ack)
}

/// Our RST <SEQ=seq>.
pub fn rst_out(seq: u32) -> Out {
    Out::new(RST, seq, 0).win(0)
}

/// The limits an endpoint with `cfg` hands its connections.
pub fn limits(cfg: &TcpConfig) -> Arc<Limits> {
    Arc::new(Limits::new(cfg))
}

/// A connection under test with a virtual clock, and what its endpoint would own: the
/// challenge-ACK limiter and the buffer pool.
pub struct T {
    pub c: Connection,
    pub now: Instant,
    pub lim: ChallengeAckLimiter,
    pub pool: BufPool,
}

impl T {
    pub fn new(c: Connection, now: Instant) -> T {
        T {
            c,
            now,
            lim: ChallengeAckLimiter::new(1000),
            pool: BufPool::new(),
        }
    }

    /// `Connection::send` with the pool.
    pub fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        self.c.send(self.now, data, &mut self.pool)
    }

    /// `Connection::recv` with the pool.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        self.c.recv(buf, &mut self.pool)
    }

    /// Everything `poll_transmit` emits now.
    pub fn out(&mut self) -> Vec<Out> {
        let mut v = Vec::new();
        self.c.poll_transmit(self.now, |r| {
            assert_eq!((r.src_port, r.dst_port), (LOCAL_PORT, REMOTE_PORT));
            v.push(Out {
                flags: r.flags,
                seq: r.seq.0,
                ack: r.ack.0,
                window: r.window,
                options: r.options,
                payload: r.payload.to_vec(),
            });
        });
        v
    }

    /// Feed one segment at the current time; return the replies.
    pub fn feed(&mut self, s: &TcpRepr<'_>) -> Vec<Out> {
        let a = self
            .c
            .on_segment(self.now, s, &mut self.lim, &mut self.pool);
        assert_eq!(a, Arrival::Done);
        self.out()
    }

    /// Jump to the next deadline (which must exist), run timers, return what goes out.
    pub fn next(&mut self) -> Vec<Out> {
        let at = self.c.next_deadline().expect("a timer is armed");
        assert!(at >= self.now);
        self.now = at;
        self.c.on_timeout(self.now);
        self.out()
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.c.poll_event()).collect()
    }

    pub fn state(&self) -> State {
        self.c.state()
    }

    pub fn read_all(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let n = self.recv(&mut buf);
            if n == 0 {
                return v;
            }
            v.extend_from_slice(&buf[..n]);
        }
    }
}

/// A fixture building a connection in some state.
pub type Fixture = fn() -> T;

pub const T0: Instant = Instant::from_secs(1000);

/// SYN-SENT: `connect`, SYN sent.
pub fn syn_sent_with(cfg: &TcpConfig) -> T {
    let c = Connection::connect(T0, &limits(cfg), ends(), SeqNum(OUR_ISS), 0);
    let mut t = T::new(c, T0);
    let out = t.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN);
    t
}

pub fn syn_sent() -> T {
    syn_sent_with(&cfg())
}

/// SYN-RECEIVED (passive): the peer's SYN arrived, our SYN-ACK is out.
pub fn syn_received_with(cfg: &TcpConfig, syn: &TcpRepr<'_>) -> T {
    let c = Connection::accept_syn(T0, &limits(cfg), ends(), syn, SeqNum(OUR_ISS), 0);
    let mut t = T::new(c, T0);
    let out = t.out();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN | ACK);
    t
}

/// The peer's SYN: MSS 1460, no other options.
pub fn peer_syn() -> TcpRepr<'static> {
    let mut s = seg(SYN, PEER_ISS, 0);
    s.options.mss = Some(1460);
    s
}

pub fn syn_received() -> T {
    syn_received_with(&cfg(), &peer_syn())
}

/// The fixtures' handshake round trip: the third ACK arrives this long after our SYN-ACK.
/// It is the first RTT sample (RFC 6298 §2.2): SRTT 10 ms, RTTVAR 5 ms, so RTO =
/// max(rto_min, SRTT + max(G, 4 * RTTVAR)) = max(200 ms, 30 ms) = 200 ms.
pub const HS_RTT: Duration = Duration::from_millis(10);

/// When the fixtures' handshakes complete: `T0 + HS_RTT`.
pub const EST: Instant = Instant::from_millis(1_000_010);

/// Complete a passive open `HS_RTT` after the SYN-ACK (at `EST`) with `ack`.
pub fn third_ack(t: &mut T, ack: &TcpRepr<'_>) -> Vec<Out> {
    t.now += HS_RTT;
    assert_eq!(t.now, EST);
    t.feed(ack)
}

/// ESTABLISHED (passive open completed `HS_RTT` after the SYN-ACK, at `T0 + HS_RTT`),
/// events drained. SND.NXT 1001, RCV.NXT 5001.
pub fn established() -> T {
    let mut t = syn_received();
    assert_eq!(
        third_ack(&mut t, &seg(ACK, PEER_ISS + 1, OUR_ISS + 1)),
        vec![]
    );
    assert_eq!(t.state(), State::Established);
    assert_eq!(t.events(), vec![Event::Connected]);
    t
}

/// FIN-WAIT-1: `close()` in ESTABLISHED, FIN (seq 1001) out.
pub fn fin_wait_1() -> T {
    let mut t = established();
    t.c.close(t.now);
    assert_eq!(t.out(), vec![Out::new(FIN | ACK, 1001, 5001)]);
    assert_eq!(t.state(), State::FinWait1);
    t
}

/// FIN-WAIT-2: our FIN acknowledged. SND.NXT 1002.
pub fn fin_wait_2() -> T {
    let mut t = fin_wait_1();
    assert_eq!(t.feed(&seg(ACK, 5001, 1002)), vec![]);
    assert_eq!(t.state(), State::FinWait2);
    t
}

/// CLOSE-WAIT: the peer's FIN (seq 5001) arrived and was ACKed. RCV.NXT 5002.
pub fn close_wait() -> T {
    let mut t = established();
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5001, 1001)),
        vec![ack_out(1001, 5002)]
    );
    assert_eq!(t.state(), State::CloseWait);
    assert_eq!(t.events(), vec![Event::PeerFin]);
    t
}

/// LAST-ACK: `close()` in CLOSE-WAIT, FIN (seq 1001) out.
pub fn last_ack() -> T {
    let mut t = close_wait();
    t.c.close(t.now);
    assert_eq!(t.out(), vec![Out::new(FIN | ACK, 1001, 5002)]);
    assert_eq!(t.state(), State::LastAck);
    t
}

/// CLOSING: both FINs crossed; ours (1001) unacknowledged.
pub fn closing() -> T {
    let mut t = fin_wait_1();
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5001, 1001)),
        vec![ack_out(1002, 5002)]
    );
    assert_eq!(t.state(), State::Closing);
    t
}

/// TIME-WAIT via FIN-WAIT-2. SND.NXT 1002, RCV.NXT 5002.
pub fn time_wait() -> T {
    let mut t = fin_wait_2();
    assert_eq!(
        t.feed(&seg(FIN | ACK, 5001, 1002)),
        vec![ack_out(1002, 5002)]
    );
    assert_eq!(t.state(), State::TimeWait);
    t
}

static SEEN: Mutex<Vec<(State, State)>> = Mutex::new(Vec::new());

/// Called by `apply` in tests: which diagram edges the tests exercise.
pub fn record_transition(from: State, to: State) {
    if let Ok(mut v) = SEEN.lock() {
        if !v.contains(&(from, to)) {
            v.push((from, to));
        }
    }
}

/// Every edge of the RFC 9293 diagram (as [`TRANSITIONS`]) is taken by some scenario below.
/// The scenarios are run here so the check does not depend on test order.
#[test]
fn every_transition_of_the_diagram_is_exercised() {
    handshake::scenarios();
    rst::scenarios();
    close::scenarios();
    timers::scenarios();
    let seen = SEEN.lock().unwrap().clone();
    for &(from, ev, to) in TRANSITIONS {
        assert!(
            seen.contains(&(from, to)),
            "untested: {from} --{ev}--> {to}"
        );
    }
}

/// The generated diagram has one edge per table row, with the RFC's state names.
#[test]
fn mermaid_diagram_from_table() {
    let d = state_diagram_mermaid();
    assert!(d.starts_with("stateDiagram-v2\n"));
    assert_eq!(d.lines().count(), TRANSITIONS.len() + 4);
    assert!(d.contains("    FIN_WAIT_2 --> TIME_WAIT: rcv FIN / snd ACK\n"));
    assert!(d.contains("    SYN_SENT --> SYN_RECEIVED: rcv SYN / snd SYN,ACK\n"));
}

/// The per-connection footprint documented in conn/mod.rs (buffers excluded).
#[test]
fn connection_size_bound() {
    let size = core::mem::size_of::<Connection>();
    assert!(size <= 632, "Connection is {size} bytes");
}

/// ss's `lastack` (Linux `rcv_tstamp`): stamped by an ACK the ACK check takes, acceptable
/// (RFC 5961 §5.2) and not older than SND.UNA (Linux tcp_ack's `old_ack` path does not
/// stamp), duplicates included; an ACK of unsent data (challenge ACK) or a segment that fails
/// the sequence check (RFC 9293 §3.10.7.4 first check) leaves it.
#[test]
fn ack_stamp_follows_acceptable_acks() {
    let mut t = established();
    assert_eq!(t.c.ack_stamp(), EST.ms_stamp());
    t.now = EST + ms(5);
    assert_eq!(t.send(b"0123456789"), Ok(10));
    assert_eq!(t.out().len(), 1);
    let at = |t: &T| t.now.ms_stamp();
    t.now = EST + ms(20);
    t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 6));
    let acked = at(&t);
    assert_eq!(t.c.ack_stamp(), acked);
    t.now = EST + ms(30);
    t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 3)); // older than SND.UNA
    assert_eq!(t.c.ack_stamp(), acked);
    t.now = EST + ms(40);
    t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 6)); // a duplicate
    let dup = at(&t);
    assert_eq!(t.c.ack_stamp(), dup);
    t.now = EST + ms(50);
    t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 100)); // acknowledges unsent data
    t.now = EST + ms(60);
    t.feed(&seg(ACK, PEER_ISS + 9000, OUR_ISS + 11)); // out of window
    assert_eq!(t.c.ack_stamp(), dup);
    t.now = EST + ms(70);
    t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 11));
    assert_eq!(t.c.ack_stamp(), at(&t));
    assert_eq!(t.now.ms_since_stamp(dup), 30);
}

/// Buffers are freed when empty (ring.rs): after an exchange whose data was read and
/// acknowledged, the connection holds no buffer storage.
#[test]
fn idle_connection_holds_no_buffers() {
    let mut t = established();
    t.feed(&data(ACK | PSH, PEER_ISS + 1, OUR_ISS + 1, b"ping"));
    assert_eq!(t.read_all(), b"ping");
    assert_eq!(t.send(b"pong"), Ok(4));
    let out = t.out();
    assert_eq!(
        out.last().map(|o| o.payload.clone()),
        Some(b"pong".to_vec())
    );
    let Inner::Established(s) = &t.c.inner else {
        panic!("not established")
    };
    assert_eq!((s.rcv.allocated(), s.snd.allocated()), (0, 2048));
    t.feed(&seg(ACK, PEER_ISS + 5, OUR_ISS + 5));
    let Inner::Established(s) = &t.c.inner else {
        panic!("not established")
    };
    assert_eq!((s.rcv.allocated(), s.snd.allocated()), (0, 0));
}

/// An abort with data still buffered both ways: CLOSED keeps the storage (no pool at hand
/// then), and `release_buffers` gives all of it back, so the pool's gauges stay exact.
#[test]
fn aborted_connection_gives_its_buffers_back() {
    let mut t = established();
    t.feed(&data(ACK | PSH, PEER_ISS + 1, OUR_ISS + 1, b"unread"));
    assert_eq!(t.send(b"unsent"), Ok(6));
    assert_eq!(t.pool.stats().out_buffers, 2);
    t.c.abort(t.now);
    assert_eq!(t.state(), State::Closed);
    assert_eq!(
        t.pool.stats().out_buffers,
        2,
        "held until the endpoint frees it"
    );
    let T { c, mut pool, .. } = t;
    c.release_buffers(&mut pool);
    let s = pool.stats();
    assert_eq!((s.out_buffers, s.out_bytes, s.cached_buffers), (0, 0, 2));
}
