//! Connection-lifecycle scenarios between two [`Endpoint`]s over a [`Sim`]: the handshake and
//! every close path (RFC 9293 §3.6 and §3.10.4-5), run by small application state machines
//! that react to endpoint events, with each end's outcome recorded and the two outcomes
//! checked against each other.
//!
//! Every scenario starts the same way: the server listens on [`SERVER_PORT`]; the client
//! connects and, once connected, sends its request (`c_data`, a seeded length and content);
//! the server accepts and (except in half-close) sends its response (`s_data`). The client
//! always sends first so that a handshake that only the client believes complete (the
//! server's half-open connection expired) is discovered: the server answers the data with a
//! RST (RFC 9293 §3.10.7.2).
//!
//! What "the two ends agree" means is documented per scenario on [`Scenario`] and checked by
//! [`Outcome::check`]. Under loss some runs legitimately end early ([`Verdict`]); they must
//! still agree.

use std::fmt;
use std::net::SocketAddrV4;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{LinkConfig, LinkStats, Side, Sim, SimConfig, CLIENT_IP, SERVER_IP};
use xdptcp_core::tcp::conn::{ConnError, Event, State};
use xdptcp_core::tcp::endpoint::{ConnId, Endpoint, EndpointEvent, EndpointSecrets, ListenerId};
use xdptcp_core::tcp::TcpConfig;
use xdptcp_core::time::{Duration, Instant};

/// The listening port (the refused scenario connects to `SERVER_PORT + 1`).
pub const SERVER_PORT: u16 = 80;
/// The client's ephemeral range.
pub const EPHEMERAL: std::ops::RangeInclusive<u16> = 40000..=40999;
/// How long the server of [`Scenario::FinWait2Timeout`] stays in CLOSE-WAIT: well beyond
/// `tcp_fin_timeout` (60 s) even when the client's FIN needs many retransmissions.
pub const LINGER: Duration = Duration::from_secs(200);
/// How long after the client's RST the server writes again, to find out about a lost RST
/// (a RST is never retransmitted; the next segment to the closed port draws another).
pub const PROBE_AFTER: Duration = Duration::from_secs(1);

/// The connection-lifecycle scenarios. "Agree" below assumes the handshake completed; see
/// [`Verdict`] for the runs where it legitimately did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Connect, exchange data, stay open. Agree: both ESTABLISHED at the end, each received
    /// exactly what the other sent, no errors, nothing closed.
    Handshake,
    /// Active close by the client: after reading the response it calls `close`; the server
    /// reads to end-of-stream, then closes. Agree: each received exactly what the other sent
    /// and end-of-stream (the server a `PeerFin`; the client by reaching TIME-WAIT, which only
    /// a FIN leads to); the client ends TIME-WAIT -> CLOSED no earlier than 2MSL after
    /// entering it; the server ends CLOSED via LAST-ACK; no errors; nothing left on either.
    ClientClose,
    /// Active close by the client whose peer never closes in time: the server stays in
    /// CLOSE-WAIT for [`LINGER`]; the client, orphaned in FIN-WAIT-2, is dropped after
    /// `tcp_fin_timeout` (no TIME-WAIT, Linux `tcp_fin_timeout`); when the server finally
    /// closes, its FIN meets the client's CLOSED port and draws a RST, which ends LAST-ACK.
    /// Agree: all data both ways; the client FIN-WAIT-1 -> FIN-WAIT-2 -> CLOSED no earlier
    /// than `fin_timeout` after entering FIN-WAIT-2, never TIME-WAIT; the server saw
    /// end-of-stream, CLOSE-WAIT -> LAST-ACK -> CLOSED; nothing left on either.
    FinWait2Timeout,
    /// Active close by the server: it sends the response and closes once it has read the
    /// request; the client reads to end-of-stream and closes. The mirror of `ClientClose`.
    ServerClose,
    /// Both call `close` at the same instant once all data is read, so the FINs cross.
    /// Agree: both received all data, both pass FIN-WAIT-1 and end TIME-WAIT -> CLOSED (each
    /// sent its FIN before receiving the other's, RFC 9293 §3.6 figure 13), no errors.
    SimultaneousClose,
    /// The client sends its request and shuts down writing at once; the server reads to
    /// end-of-stream, then sends a long response (several send buffers) and closes; the
    /// client, half-closed in FIN-WAIT-2, reads it all and end-of-stream, then closes.
    /// Agree: all data both ways, both saw `PeerFin`, client FIN-WAIT-1 -> FIN-WAIT-2 ->
    /// TIME-WAIT -> CLOSED, server CLOSE-WAIT -> LAST-ACK -> CLOSED, no errors.
    HalfClose,
    /// After all data is exchanged the client aborts (RST). Agree: the client is CLOSED with
    /// `Aborted` at once; the server reports `Error(Reset)` then `Closed` and ends CLOSED; no
    /// TIME-WAIT on either side. (If the RST is lost the server's probe, sent
    /// [`PROBE_AFTER`] later, draws a RST from the client's CLOSED port.)
    Abort,
    /// The mirror of `Abort`: the server aborts after all data is exchanged; the client
    /// reports `Error(Reset)` (its probe draws a RST if the first one was lost).
    ServerAbort,
    /// The client closes with the response unread: RFC 2525 §2.17 / Linux send RST instead
    /// of FIN. Agree: as `Abort`, and the server received all of the request.
    CloseUnread,
    /// The client connects to a port without a listener. Agree: the client reports
    /// `Error(Refused)` (or `TimedOut` if every SYN or its RST was lost: then the server
    /// must have answered every SYN it received with a RST), the server never creates a
    /// connection, no `Incoming`.
    Refused,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::Handshake,
        Scenario::ClientClose,
        Scenario::FinWait2Timeout,
        Scenario::ServerClose,
        Scenario::SimultaneousClose,
        Scenario::HalfClose,
        Scenario::Abort,
        Scenario::ServerAbort,
        Scenario::CloseUnread,
        Scenario::Refused,
    ];
}

/// How a run ended, beyond the scenario's own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The scenario ran its whole course.
    Completed,
    /// The client's SYN retries ran out (`TimedOut` in SYN-SENT): every SYN or SYN-ACK was
    /// lost. Agree: the server never accepted a connection.
    ConnectTimedOut,
    /// Refused scenario only: the client got `Error(Refused)`.
    Refused,
    /// The client completed the handshake but the server's half-open connection expired
    /// (every SYN-ACK / ACK round lost); the client's data then drew a RST. Agree: the client
    /// reports `Error(Reset)`, the server never accepted a connection.
    HalfOpenReset,
    /// An end's data or FIN retransmissions ran out (tcp_retries2, ~15 min of backoff):
    /// only under extreme loss. Agree: that end reports `TimedOut` and ends CLOSED; each end
    /// received a prefix of what the other sent. (The other end may legitimately stay
    /// open: TCP without keepalive cannot know.)
    RetriesExhausted,
}

/// What one end saw.
#[derive(Clone, Default)]
pub struct End {
    pub id: Option<ConnId>,
    /// States observed between events (consecutive repeats collapsed). A connection freed
    /// into a TIME-WAIT record shows as `TimeWait`, one freed without as `Closed`.
    pub states: Vec<State>,
    /// When each of `states` was first observed.
    pub entered: Vec<Instant>,
    /// Connection events in order.
    pub events: Vec<Event>,
    /// The first error: from `Event::Error`, or our own abort / reset-on-close.
    pub error: Option<ConnError>,
    /// When `error` was first seen.
    pub error_at: Option<Instant>,
    /// Bytes the application handed to `send` / read with `recv`.
    pub sent: Vec<u8>,
    pub received: Vec<u8>,
    /// When a TIME-WAIT record for the connection appeared and disappeared.
    pub time_wait: Option<(Instant, Option<Instant>)>,
    /// `Incoming` notices (server).
    pub incoming: u32,
    /// Connections and TIME-WAIT records the endpoint holds at the end.
    pub conns_left: usize,
    pub tw_left: usize,
}

impl fmt::Debug for End {
    /// Compact: data as length and FNV-1a hash, repeated events collapsed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut events = String::new();
        let mut i = 0;
        while i < self.events.len() {
            let n = self.events[i..]
                .iter()
                .take_while(|&&e| e == self.events[i])
                .count();
            if !events.is_empty() {
                events.push_str(", ");
            }
            events.push_str(&format!("{:?}", self.events[i]));
            if n > 1 {
                events.push_str(&format!(" x{n}"));
            }
            i += n;
        }
        let states: Vec<&str> = self.states.iter().map(|s| s.as_str()).collect();
        write!(
            f,
            "{{ id {:?}, states [{}], events [{events}], error {:?} at {:?}, sent {} B #{:016x}, \
             received {} B #{:016x}, time_wait {:?}, incoming {}, left {} conns {} tw }}",
            self.id,
            states.join(" "),
            self.error,
            self.error_at,
            self.sent.len(),
            fnv(&self.sent),
            self.received.len(),
            fnv(&self.received),
            self.time_wait,
            self.incoming,
            self.conns_left,
            self.tw_left
        )
    }
}

/// FNV-1a, to print data compactly.
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x100_0000_01b3)
    })
}

impl End {
    fn saw(&self, e: Event) -> bool {
        self.events.contains(&e)
    }
    fn last(&self) -> Option<State> {
        self.states.last().copied()
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    pub seed: u64,
    pub verdict: Verdict,
    pub client: End,
    pub server: End,
    /// Virtual time the run took.
    pub elapsed: Duration,
    pub msl: Duration,
    /// The server endpoint's stateless RSTs for segments to no connection / listener.
    pub server_rst_closed: u64,
    /// SYNs that reached the server (refused scenario).
    pub server_segments_in: u64,
    /// Corrupted packets rejected by the receivers' checksums (client, server).
    pub rejected: [u64; 2],
    /// RSTs each end emitted (client, server) and when the first was.
    pub rsts: [u64; 2],
    pub first_rst: [Option<Instant>; 2],
    /// What the links did (client -> server, server -> client).
    pub links: [LinkStats; 2],
    /// `tcp_fin_timeout` of the run.
    pub fin_timeout: Duration,
}

/// Application state of one end.
#[derive(Debug, Default)]
struct AppEnd {
    end: End,
    /// Bytes of `end.sent` still to hand to `send`.
    out: Vec<u8>,
    /// Call `shutdown_write` / `close` once `out` is empty.
    fin_after_out: Option<FinKind>,
    closed: bool,
    probe_at: Option<Instant>,
    /// Close at this time (FinWait2Timeout's lingering server).
    close_at: Option<Instant>,
    /// The handle went stale (freed by the endpoint).
    gone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FinKind {
    Shutdown,
    Close,
}

struct Driver {
    scn: Scenario,
    c: AppEnd,
    s: AppEnd,
    listener: Option<ListenerId>,
    c_data: Vec<u8>,
    s_data: Vec<u8>,
}

/// The simulator settings of a scenario run: `link` both ways, seeded by `seed`, with
/// the limits below.
pub fn sim_config(seed: u64, link: LinkConfig) -> SimConfig {
    let mut cfg = SimConfig::symmetric(seed, link);
    // Worst legitimate case: SYN retries (~2 min) + data/FIN retries (tcp_retries2 with
    // rto_max: ~20 min from a 1 s RTO) + LINGER + 2MSL; an hour means something is stuck.
    // A scenario moves a few hundred segments; 200 000 events means a loop.
    // At 45 % loss each way with congestion control (cwnd 1 MSS and a doubling RTO after
    // each timeout) a 60 kB half-close legitimately takes up to ~2 h of virtual time.
    cfg.limits.max_time = Duration::from_secs(6 * 3600);
    cfg.limits.max_events = 200_000;
    cfg
}

/// The two endpoints' TCP settings (a single `TcpConfig` converts into both the same).
#[derive(Debug, Clone, Default)]
pub struct Configs {
    pub client: TcpConfig,
    pub server: TcpConfig,
}

impl From<TcpConfig> for Configs {
    fn from(c: TcpConfig) -> Self {
        Configs {
            client: c.clone(),
            server: c,
        }
    }
}

/// Builds the two endpoints (deterministic secrets from `seed`) and the network.
pub fn pair(seed: u64, link: LinkConfig, tcp: impl Into<Configs>) -> Sim<Endpoint> {
    let tcp = tcp.into();
    let client = Endpoint::new(
        tcp.client,
        EndpointSecrets::from_seed(seed.wrapping_mul(2)),
        EPHEMERAL,
    );
    let server = Endpoint::new(
        tcp.server,
        EndpointSecrets::from_seed(seed.wrapping_mul(2) + 1),
        50000..=50999,
    );
    // A start far from zero so nothing depends on Instant::ZERO.
    let start = Instant::from_secs(1_000) + Duration::from_nanos(seed % 1_000_000);
    Sim::new(sim_config(seed, link), start, client, server)
}

/// Runs `scn` with `seed` over `link` (both directions) and checks that the ends agree;
/// panics with the packet trace if they do not.
pub fn run(scn: Scenario, seed: u64, link: LinkConfig) -> Outcome {
    run_with(scn, seed, link, TcpConfig::default())
}

/// [`run`] with given TCP configurations.
pub fn run_with(scn: Scenario, seed: u64, link: LinkConfig, tcp: impl Into<Configs>) -> Outcome {
    run_hooked(scn, seed, link, tcp, |_| {})
}

/// [`run_with`] plus a fault schedule: `hook` runs after every application turn (before
/// the simulator flushes what the turn produced) and may
/// change the links (`sim.link_mut(side).set_config(..)`, `clear()`), e.g. black-hole one
/// direction for a while. It must not call the endpoints.
pub fn run_hooked(
    scn: Scenario,
    seed: u64,
    link: LinkConfig,
    tcp: impl Into<Configs>,
    mut hook: impl FnMut(&mut Sim<Endpoint>),
) -> Outcome {
    let tcp = tcp.into();
    // The checks use the client's MSL and FIN timeout (the active closer's, mostly); runs
    // that vary them give both ends the same.
    let (msl, fin_timeout) = (tcp.client.msl, tcp.client.fin_timeout);
    let mut sim = pair(seed, link.clone(), tcp);
    sim.set_label(format!("{scn:?} seed {seed} link {link:?}"));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5ca1_ab1e);
    let c_len = rng.gen_range(1..=3000);
    let s_len = match scn {
        // Several send buffers' worth, sent while the client is half-closed.
        Scenario::HalfClose => rng.gen_range(40_000..=60_000),
        _ => rng.gen_range(1..=3000),
    };
    let mut d = Driver {
        scn,
        c: AppEnd::default(),
        s: AppEnd::default(),
        listener: None,
        c_data: (0..c_len).map(|_| rng.gen()).collect(),
        s_data: (0..s_len).map(|_| rng.gen()).collect(),
    };
    d.start(&mut sim);
    sim.drive(|sim| {
        let acted = d.app(sim);
        hook(sim);
        acted
    });
    let o = d.finish(&sim, seed, msl, fin_timeout);
    if let Err(why) = o.check() {
        sim.fail(&format!(
            "ends disagree: {why}\n  client: {:?}\n  server: {:?}",
            o.client, o.server
        ));
    }
    o
}

impl Driver {
    fn start(&mut self, sim: &mut Sim<Endpoint>) {
        let now = sim.now();
        let port = if self.scn == Scenario::Refused {
            SERVER_PORT + 1
        } else {
            let l = sim.server.listen(SERVER_IP, SERVER_PORT, 16);
            self.listener = Some(l.unwrap_or_else(|e| sim.fail(&format!("listen: {e}"))));
            SERVER_PORT
        };
        let remote = SocketAddrV4::new(SERVER_IP, port);
        match sim.client.connect(now, CLIENT_IP, remote) {
            Ok(id) => self.c.end.id = Some(id),
            Err(e) => sim.fail(&format!("connect: {e}")),
        }
        sim.note(Side::Client, "connect");
    }

    /// One application turn before each simulator step: observe, react to events, observe
    /// again (so a state entered by our own call is seen before the next segment moves on).
    fn app(&mut self, sim: &mut Sim<Endpoint>) -> bool {
        self.observe(sim);
        let mut acted = self.events(sim);
        acted |= self.act(sim, Side::Client);
        acted |= self.act(sim, Side::Server);
        acted |= self.scenario_moves(sim);
        self.observe(sim);
        acted
    }

    fn end(&mut self, side: Side) -> &mut AppEnd {
        match side {
            Side::Client => &mut self.c,
            Side::Server => &mut self.s,
        }
    }

    /// Records each end's current state (see `End::states`) and TIME-WAIT records.
    fn observe(&mut self, sim: &mut Sim<Endpoint>) {
        let now = sim.now();
        for side in [Side::Client, Side::Server] {
            let ep = sim.node(side);
            let tw = ep.time_wait_count();
            let a = self.end(side);
            let Some(id) = a.end.id else { continue };
            let st = match ep.state(id) {
                Some(s) => s,
                None => {
                    a.gone = true;
                    if tw > 0 {
                        State::TimeWait
                    } else {
                        State::Closed
                    }
                }
            };
            if a.end.last() != Some(st) {
                a.end.states.push(st);
                a.end.entered.push(now);
            }
            // TIME-WAIT from the first sight of the state (full connection or record) until
            // neither is left. One connection per scenario: the endpoint's record count is
            // this one's.
            let in_tw = st == State::TimeWait;
            match (&mut a.end.time_wait, in_tw) {
                (None, true) => a.end.time_wait = Some((now, None)),
                (Some((_, end @ None)), false) => *end = Some(now),
                _ => {}
            }
        }
    }

    fn events(&mut self, sim: &mut Sim<Endpoint>) -> bool {
        let mut acted = false;
        for side in [Side::Client, Side::Server] {
            while let Some(ev) = sim.node(side).poll_event() {
                acted = true;
                match ev {
                    EndpointEvent::Incoming(l) => {
                        self.s.end.incoming += 1;
                        while let Some(id) = sim.server.accept(l) {
                            sim.note(Side::Server, "accept");
                            if self.s.end.id.is_some() {
                                sim.fail("a second connection was accepted");
                            }
                            self.s.end.id = Some(id);
                            if let Some(st) = sim.server.state(id) {
                                self.s.end.states.push(st);
                                self.s.end.entered.push(sim.now());
                            }
                            self.on_accept();
                        }
                    }
                    EndpointEvent::Conn(id, e) => {
                        let a = self.end(side);
                        if a.end.id != Some(id) {
                            sim.fail(&format!("{side:?}: event {e:?} for unknown {id:?}"));
                        }
                        a.end.events.push(e);
                        match e {
                            Event::Connected if side == Side::Client => {
                                self.c.out = self.c_data.clone();
                                if self.scn == Scenario::HalfClose {
                                    self.c.fin_after_out = Some(FinKind::Shutdown);
                                }
                            }
                            Event::Error(err) if a.end.error.is_none() => {
                                a.end.error = Some(err);
                                a.end.error_at = Some(sim.now());
                            }
                            Event::PeerFin => self.on_peer_fin(sim, side),
                            // Nothing more will happen: release the handle, as an
                            // application closes a socket after an error or EOF.
                            Event::Closed if !a.closed => {
                                a.fin_after_out = Some(FinKind::Close);
                                a.out.clear();
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        acted
    }

    /// The response goes out at once, except in half-close (after end-of-stream). The
    /// server of `ServerClose` closes once it has read the request (`scenario_moves`).
    fn on_accept(&mut self) {
        if self.scn != Scenario::HalfClose {
            self.s.out = self.s_data.clone();
        }
    }

    fn on_peer_fin(&mut self, sim: &mut Sim<Endpoint>, side: Side) {
        match (self.scn, side) {
            (Scenario::FinWait2Timeout, Side::Server) => {
                let at = sim.now() + LINGER;
                self.s.close_at = Some(at);
                sim.wake_at(at);
            }
            // The passive closer closes on end-of-stream.
            (Scenario::ClientClose, Side::Server) | (Scenario::ServerClose, Side::Client) => {
                self.end(side).fin_after_out = Some(FinKind::Close);
            }
            (Scenario::HalfClose, Side::Server) => {
                self.s.out = self.s_data.clone();
                self.s.fin_after_out = Some(FinKind::Close);
            }
            (Scenario::HalfClose, Side::Client) => {
                self.c.fin_after_out = Some(FinKind::Close);
            }
            _ => {}
        }
    }

    /// Read everything readable, write what fits, then the FIN when due.
    fn act(&mut self, sim: &mut Sim<Endpoint>, side: Side) -> bool {
        let now = sim.now();
        let read = !(self.scn == Scenario::CloseUnread && side == Side::Client);
        let a = match side {
            Side::Client => &mut self.c,
            Side::Server => &mut self.s,
        };
        let Some(id) = a.end.id else { return false };
        if a.closed {
            return false;
        }
        if a.close_at.is_some_and(|t| now >= t) {
            a.close_at = None;
            a.fin_after_out = Some(FinKind::Close);
        }
        let ep = sim.node(side);
        let mut acted = false;
        let mut buf = [0u8; 4096];
        // Read until nothing is left (the close-with-unread client never reads).
        #[allow(clippy::while_immutable_condition)] // `read` gates; `break` ends it.
        while read {
            let n = ep.recv(id, &mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            a.end.received.extend_from_slice(&buf[..n]);
            acted = true;
        }
        if !a.out.is_empty() {
            if let Ok(n) = ep.send(now, id, &a.out) {
                a.end.sent.extend(a.out.drain(..n));
                acted = true;
            }
        }
        let fin = if a.out.is_empty() {
            a.fin_after_out.take()
        } else {
            None
        };
        match fin {
            Some(FinKind::Shutdown) => {
                let _ = ep.shutdown_write(now, id);
                sim.note(side, "shutdown_write");
            }
            Some(FinKind::Close) => self.close(sim, side),
            None => return acted,
        }
        true
    }

    fn close(&mut self, sim: &mut Sim<Endpoint>, side: Side) {
        let now = sim.now();
        let a = self.end(side);
        let Some(id) = a.end.id else { return };
        a.closed = true;
        let _ = sim.node(side).close(now, id);
        sim.note(side, "close");
        self.record_own_error(sim, side);
    }

    fn abort(&mut self, sim: &mut Sim<Endpoint>, side: Side) {
        let now = sim.now();
        let a = self.end(side);
        let Some(id) = a.end.id else { return };
        a.closed = true;
        let _ = sim.node(side).abort(now, id);
        sim.note(side, "abort");
        self.record_own_error(sim, side);
    }

    /// Our own abort (or reset-on-close) is reported as `Error(Aborted)`, but the handle goes
    /// stale when the RST leaves: read the error right away.
    fn record_own_error(&mut self, sim: &mut Sim<Endpoint>, side: Side) {
        let a = self.end(side);
        if let Some(id) = a.end.id {
            if let (None, Some(e)) = (a.end.error, sim.node(side).error(id)) {
                a.end.error = Some(e);
                a.end.error_at = Some(sim.now());
            }
        }
    }

    fn all_read(&self) -> bool {
        self.c.end.received.len() == self.s_data.len()
            && self.s.end.received.len() == self.c_data.len()
    }

    /// The scenario-specific decisions that depend on both ends.
    fn scenario_moves(&mut self, sim: &mut Sim<Endpoint>) -> bool {
        let now = sim.now();
        match self.scn {
            Scenario::ClientClose | Scenario::FinWait2Timeout
                if !self.c.closed && self.c.end.received.len() == self.s_data.len() =>
            {
                self.c.fin_after_out = Some(FinKind::Close);
                self.act(sim, Side::Client)
            }
            Scenario::ServerClose
                if !self.s.closed && self.s.end.received.len() == self.c_data.len() =>
            {
                self.s.fin_after_out = Some(FinKind::Close);
                self.act(sim, Side::Server)
            }
            Scenario::SimultaneousClose if !self.c.closed && !self.s.closed && self.all_read() => {
                // Same instant, both before the next step: the FINs cross.
                self.close(sim, Side::Client);
                self.close(sim, Side::Server);
                true
            }
            Scenario::Abort if !self.c.closed && self.all_read() => {
                self.abort(sim, Side::Client);
                self.arm_probe(sim, Side::Server, now);
                true
            }
            Scenario::ServerAbort if !self.s.closed && self.all_read() => {
                self.abort(sim, Side::Server);
                self.arm_probe(sim, Side::Client, now);
                true
            }
            Scenario::CloseUnread if !self.c.closed => {
                let id = self.c.end.id;
                let buffered = id.map_or(0, |id| sim.client.recv_available(id));
                if buffered == self.s_data.len() && self.s.end.received.len() == self.c_data.len() {
                    self.close(sim, Side::Client);
                    self.arm_probe(sim, Side::Server, now);
                    true
                } else {
                    false
                }
            }
            Scenario::Abort | Scenario::CloseUnread => self.probe(sim, Side::Server),
            Scenario::ServerAbort => self.probe(sim, Side::Client),
            _ => false,
        }
    }

    fn arm_probe(&mut self, sim: &mut Sim<Endpoint>, prober: Side, now: Instant) {
        self.end(prober).probe_at = Some(now + PROBE_AFTER);
        sim.wake_at(now + PROBE_AFTER);
    }

    /// The peer of the aborting end writes once more after the RST, unless it already saw
    /// the reset; once it has, it closes its handle (as an application does after
    /// ECONNRESET).
    fn probe(&mut self, sim: &mut Sim<Endpoint>, side: Side) -> bool {
        let now = sim.now();
        let a = self.end(side);
        if a.closed {
            return false;
        }
        if a.end.error.is_some() || a.end.saw(Event::Closed) {
            self.close(sim, side);
            return true;
        }
        match a.probe_at {
            Some(t) if now >= t => {
                a.probe_at = None;
                a.out.extend_from_slice(b"probe");
                sim.note(side, "probe write");
                self.act(sim, side)
            }
            _ => false,
        }
    }

    fn finish(
        mut self,
        sim: &Sim<Endpoint>,
        seed: u64,
        msl: Duration,
        fin_timeout: Duration,
    ) -> Outcome {
        for (a, ep) in [(&mut self.c, &sim.client), (&mut self.s, &sim.server)] {
            a.end.conns_left = ep.connection_count();
            a.end.tw_left = ep.time_wait_count();
        }
        let c = &self.c.end;
        let verdict = if c.error == Some(ConnError::TimedOut) && !c.saw(Event::Connected) {
            Verdict::ConnectTimedOut
        } else if c.error == Some(ConnError::Refused) {
            Verdict::Refused
        } else if c.error == Some(ConnError::Reset) && self.s.end.id.is_none() {
            Verdict::HalfOpenReset
        } else if c.error == Some(ConnError::TimedOut)
            || self.s.end.error == Some(ConnError::TimedOut)
            // An end the app already closed reports its TimedOut to nobody: ask its endpoint.
            || sim.client.stats().aborted_on_timeout > 0
            || sim.server.stats().aborted_on_timeout > 0
        {
            Verdict::RetriesExhausted
        } else {
            Verdict::Completed
        };
        let st = sim.stats();
        Outcome {
            scenario: self.scn,
            seed,
            verdict,
            client: self.c.end,
            server: self.s.end,
            elapsed: sim.elapsed(),
            msl,
            server_rst_closed: sim.server.stats().rst_closed,
            server_segments_in: sim.server.stats().segments_in,
            rejected: st.rejected,
            rsts: st.rsts,
            first_rst: st.first_rst,
            links: [
                sim.link(Side::Client).stats(),
                sim.link(Side::Server).stats(),
            ],
            fin_timeout,
        }
    }
}
