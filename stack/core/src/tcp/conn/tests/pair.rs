//! A deterministic simulated pair (model: quinn-proto's `Pair`): two connections joined by a
//! virtual network with latency, jitter (so reordering), seeded loss and duplication, and a
//! virtual clock that jumps to the next event. A minimal endpoint on each side creates the
//! server connection from the first SYN (`accept_syn`) and answers segments for a closed
//! connection with RFC 9293 §3.10.7.1 RSTs. Runs handshakes, data both ways and every close
//! path under 0 %, 5 % and 20 % loss over many seeds, and checks both ends agree on the
//! outcome and the bytes.
//!
//! Why its own impairment (`Sim::send`: loss, 2 % duplicates, 10-13 ms uniform delay so
//! segments reorder) rather than `xdptcp-sim`'s `Link`: that crate depends on this one, so
//! using it here would be a dev-dependency cycle, in which Cargo builds this crate twice and
//! `Link`'s `Instant` is not the `Instant` of these tests; and `Link` carries serialized IPv4
//! frames, while this pair exchanges `TcpRepr`s between two bare connections with no
//! endpoint or IP layer. The model is the few lines of `Sim::send`; the full one (rate,
//! queue, corruption, traces) is `Link`, used by the endpoint-level tests in stack/sim.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

/// One segment in flight, owned.
#[derive(Clone)]
struct Pkt {
    flags: TcpFlags,
    src_port: u16,
    dst_port: u16,
    seq: SeqNum,
    ack: SeqNum,
    window: u16,
    options: TcpOptions,
    payload: Vec<u8>,
}

impl Pkt {
    fn from(r: &TcpRepr<'_>) -> Pkt {
        Pkt {
            flags: r.flags,
            src_port: r.src_port,
            dst_port: r.dst_port,
            seq: r.seq,
            ack: r.ack,
            window: r.window,
            options: r.options,
            payload: r.payload.to_vec(),
        }
    }
    fn repr(&self) -> TcpRepr<'_> {
        TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            urgent: 0,
            options: self.options,
            payload: &self.payload,
        }
    }
}

/// What one side's application does and saw.
#[derive(Default)]
struct App {
    msg: Vec<u8>,
    sent: usize,
    received: Vec<u8>,
    connected: bool,
    peer_fin: bool,
    closed: bool,
    error: Option<ConnError>,
    shut: bool,
    saw: Vec<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The client sends, half-closes, reads the reply, closes: client TIME-WAIT.
    ClientCloses,
    /// The server replies and closes first: server TIME-WAIT, client LAST-ACK.
    ServerCloses,
    /// Both half-close at the same instant once all data is acknowledged (CLOSING when the
    /// FINs cross).
    Simultaneous,
    /// The client aborts after its data is acknowledged; the server sees a reset.
    Abort,
    /// The client closes with unread data (RST); the server sees a reset.
    CloseUnread,
}

const CLIENT: usize = 0;
const SERVER: usize = 1;

struct Sim {
    now: Instant,
    rng: ChaCha8Rng,
    loss: f64,
    /// (arrival time, tiebreak) -> (to side, segment)
    wire: BTreeMap<(Instant, u64), (usize, Pkt)>,
    next_id: u64,
    conns: [Option<Connection>; 2],
    apps: [App; 2],
    lims: [ChallengeAckLimiter; 2],
    pools: [BufPool; 2],
    cfg: TcpConfig,
    scenario: Scenario,
}

fn ends_of(side: usize) -> FourTuple {
    let e = ends(); // local = server 198.18.0.1:80, remote = client 198.18.0.2:40000
    if side == SERVER {
        e
    } else {
        e.reversed()
    }
}

impl Sim {
    fn new(seed: u64, loss: f64, scenario: Scenario) -> Sim {
        let cfg = TcpConfig {
            rmem: 8192,
            wmem: 4096,
            syn_retries: 12,
            synack_retries: 12,
            ..TcpConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let msg = |rng: &mut ChaCha8Rng, n| (0..n).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>();
        let apps = [
            App {
                msg: msg(&mut rng, 20_000),
                ..App::default()
            },
            App {
                msg: msg(&mut rng, 12_345),
                ..App::default()
            },
        ];
        let iss = SeqNum(rng.gen());
        let client = Connection::connect(
            Instant::ZERO,
            &limits(&cfg),
            ends_of(CLIENT),
            iss,
            rng.gen(),
        );
        Sim {
            now: Instant::ZERO,
            rng,
            loss,
            wire: BTreeMap::new(),
            next_id: 0,
            conns: [Some(client), None],
            apps,
            lims: [ChallengeAckLimiter::new(1000); 2],
            pools: [BufPool::new(), BufPool::new()],
            cfg,
            scenario,
        }
    }

    fn send(&mut self, to: usize, p: Pkt) {
        if self.rng.gen_bool(self.loss) {
            return;
        }
        let copies = if self.rng.gen_bool(0.02) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = Duration::from_micros(10_000 + self.rng.gen_range(0..3_000));
            self.next_id += 1;
            self.wire
                .insert((self.now + delay, self.next_id), (to, p.clone()));
        }
    }

    /// RFC 9293 §3.10.7.1: the reply of a CLOSED endpoint.
    fn closed_port(&mut self, to_side: usize, r: &TcpRepr<'_>) {
        if r.flags.rst() {
            return;
        }
        let (seq, ack, flags) = if r.flags.ack() {
            (r.ack, SeqNum(0), RST)
        } else {
            (SeqNum(0), r.seq + r.seq_len(), RST | ACK)
        };
        let rst = Pkt {
            flags,
            src_port: r.dst_port,
            dst_port: r.src_port,
            seq,
            ack,
            window: 0,
            options: TcpOptions::default(),
            payload: Vec::new(),
        };
        self.send(1 - to_side, rst);
    }

    fn deliver(&mut self, side: usize, p: Pkt) {
        let r = p.repr();
        match &mut self.conns[side] {
            Some(c) if c.state() != State::Closed => {
                let a = c.on_segment(self.now, &r, &mut self.lims[side], &mut self.pools[side]);
                assert_eq!(a, Arrival::Done);
            }
            None if side == SERVER && r.flags == SYN => {
                let iss = SeqNum(self.rng.gen());
                let c = Connection::accept_syn(
                    self.now,
                    &limits(&self.cfg),
                    ends_of(SERVER),
                    &r,
                    iss,
                    self.rng.gen(),
                );
                self.conns[SERVER] = Some(c);
            }
            _ => self.closed_port(side, &r),
        }
    }

    fn transmit(&mut self) {
        for side in [CLIENT, SERVER] {
            let Some(c) = self.conns[side].as_mut() else {
                continue;
            };
            let mut out = Vec::new();
            c.poll_transmit(self.now, |r| out.push(Pkt::from(r)));
            for p in out {
                self.send(1 - side, p);
            }
        }
    }

    /// The applications: read everything, write what fits, and the scenario's closes.
    fn drive(&mut self) {
        let sc = self.scenario;
        let all_acked = |c: &Connection, cfg: &TcpConfig| c.send_capacity() == cfg.wmem;
        for side in [CLIENT, SERVER] {
            let Some(c) = self.conns[side].as_mut() else {
                continue;
            };
            let app = &mut self.apps[side];
            let pool = &mut self.pools[side];
            if app.saw.last() != Some(&c.state()) {
                app.saw.push(c.state());
            }
            while let Some(e) = c.poll_event() {
                match e {
                    Event::Connected => app.connected = true,
                    Event::PeerFin => app.peer_fin = true,
                    Event::Closed => app.closed = true,
                    Event::Error(err) => app.error = Some(err),
                    Event::Readable | Event::Writable => {}
                }
            }
            let unread_close = sc == Scenario::CloseUnread && side == CLIENT;
            if !unread_close {
                let mut buf = [0u8; 4096];
                loop {
                    let n = c.recv(&mut buf, pool);
                    if n == 0 {
                        break;
                    }
                    app.received.extend_from_slice(&buf[..n]);
                }
            }
            // What this side may send now.
            let may_send = match (sc, side) {
                (Scenario::ClientCloses, SERVER) => app.peer_fin,
                (Scenario::ServerCloses, SERVER) | (Scenario::Abort, SERVER) => {
                    app.received.len() == 20_000
                }
                (Scenario::CloseUnread, CLIENT) => false,
                _ => app.connected,
            };
            if may_send && app.sent < app.msg.len() && !app.shut {
                if let Ok(n) = c.send(self.now, &app.msg[app.sent..], pool) {
                    app.sent += n;
                }
            }
            let done_sending =
                app.sent == app.msg.len() || (sc == Scenario::CloseUnread && side == CLIENT);
            let got_all = |app: &App, n| app.received.len() == n;
            if sc == Scenario::ClientCloses
                && side == CLIENT
                && app.peer_fin
                && got_all(app, 12_345)
            {
                c.close(self.now);
            }
            if app.shut {
                continue;
            }
            #[derive(PartialEq)]
            enum Act {
                Nothing,
                Shutdown,
                Close,
                Abort,
            }
            let act = match (sc, side) {
                (Scenario::ClientCloses, CLIENT) if done_sending => Act::Shutdown,
                (Scenario::ClientCloses, SERVER) | (Scenario::ServerCloses, CLIENT)
                    if done_sending && app.peer_fin =>
                {
                    Act::Close
                }
                (Scenario::ServerCloses, SERVER) | (Scenario::CloseUnread, SERVER)
                    if done_sending =>
                {
                    Act::Close
                }
                (Scenario::Abort, CLIENT)
                    if done_sending
                        && all_acked(c, &self.cfg)
                        && c.state() == State::Established =>
                {
                    Act::Abort
                }
                (Scenario::CloseUnread, CLIENT) if c.recv_available() > 0 => Act::Close,
                _ => Act::Nothing,
            };
            match act {
                Act::Nothing => {}
                Act::Shutdown => c.shutdown_write(self.now),
                Act::Close => c.close(self.now),
                Act::Abort => c.abort(self.now),
            }
            app.shut = act != Act::Nothing;
        }
        if sc == Scenario::Simultaneous {
            let ready = |s: usize, n: usize| {
                let app = &self.apps[s];
                self.conns[s].as_ref().is_some_and(|c| {
                    app.sent == app.msg.len() && app.received.len() == n && all_acked(c, &self.cfg)
                })
            };
            if ready(CLIENT, 12_345) && ready(SERVER, 20_000) && !self.apps[CLIENT].shut {
                for s in [CLIENT, SERVER] {
                    if let Some(c) = self.conns[s].as_mut() {
                        c.shutdown_write(self.now);
                    }
                    self.apps[s].shut = true;
                }
            }
        }
    }

    fn finished(&self) -> bool {
        self.conns
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.is_finished()))
    }

    /// Run to completion; bounded in steps and virtual time.
    fn run(&mut self) {
        for _ in 0..200_000 {
            self.drive();
            self.transmit();
            if self.finished() && self.wire.is_empty() {
                return;
            }
            let deadline = self
                .conns
                .iter()
                .flatten()
                .filter_map(|c| c.next_deadline())
                .min();
            let arrival = self.wire.keys().next().map(|k| k.0);
            let next = match (deadline, arrival) {
                (Some(d), Some(a)) => d.min(a),
                (d, a) => d
                    .or(a)
                    .unwrap_or_else(|| panic!("stuck at {:?}: {:?}", self.now, self.states())),
            };
            assert!(
                next < Instant::from_secs(3000),
                "too long: {:?}",
                self.states()
            );
            self.now = self.now.max(next);
            while let Some(entry) = self.wire.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let (to, p) = entry.remove();
                self.deliver(to, p);
            }
            for c in self.conns.iter_mut().flatten() {
                c.on_timeout(self.now);
            }
        }
        panic!("step limit: {:?}", self.states());
    }

    fn states(&self) -> Vec<Option<State>> {
        self.conns
            .iter()
            .map(|c| c.as_ref().map(|c| c.state()))
            .collect()
    }
}

fn check(seed: u64, loss: f64, sc: Scenario) {
    let mut sim = Sim::new(seed, loss, sc);
    sim.run();
    let [a, b] = &sim.apps;
    let ctx = format!(
        "seed {seed} loss {loss} {sc:?}: client saw {:?}, server saw {:?}",
        a.saw, b.saw
    );
    assert!(a.connected && b.connected, "{ctx}");
    assert!(a.closed && b.closed, "{ctx}");
    match sc {
        Scenario::ClientCloses | Scenario::ServerCloses | Scenario::Simultaneous => {
            assert_eq!((a.error, b.error), (None, None), "{ctx}");
            assert!(
                a.received == b.msg && b.received == a.msg,
                "{ctx}: bytes differ"
            );
            let tw = |app: &App| app.saw.contains(&State::TimeWait);
            // An orphaned FIN-WAIT-2 may time out (tcp_fin_timeout) before a heavily lost
            // FIN gets through; then the peer's FIN meets a closed port: RST in LAST-ACK,
            // which closes it without an error (RFC 9293 §3.10.7.4). Both still agree.
            let fin_timeout = |app: &App| app.saw.ends_with(&[State::FinWait2, State::Closed]);
            match sc {
                Scenario::ClientCloses => {
                    assert!(a.peer_fin && b.peer_fin && tw(a) && !tw(b), "{ctx}")
                }
                Scenario::ServerCloses => assert!(
                    a.peer_fin && !tw(a) && ((b.peer_fin && tw(b)) || fin_timeout(b)),
                    "{ctx}"
                ),
                _ => assert!(a.peer_fin && b.peer_fin && (tw(a) || tw(b)), "{ctx}"),
            }
        }
        Scenario::Abort => {
            assert_eq!(
                (a.error, b.error),
                (Some(ConnError::Aborted), Some(ConnError::Reset)),
                "{ctx}"
            );
            assert_eq!(b.received, a.msg, "{ctx}");
        }
        Scenario::CloseUnread => {
            assert_eq!(
                (a.error, b.error),
                (Some(ConnError::Aborted), Some(ConnError::Reset)),
                "{ctx}"
            );
        }
    }
}

const SCENARIOS: [Scenario; 5] = [
    Scenario::ClientCloses,
    Scenario::ServerCloses,
    Scenario::Simultaneous,
    Scenario::Abort,
    Scenario::CloseUnread,
];

#[test]
fn pair_no_loss() {
    for sc in SCENARIOS {
        for seed in 0..20 {
            check(seed, 0.0, sc);
        }
    }
}

#[test]
fn pair_5_percent_loss() {
    for sc in SCENARIOS {
        for seed in 0..100 {
            check(seed, 0.05, sc);
        }
    }
}

#[test]
fn pair_20_percent_loss() {
    for sc in SCENARIOS {
        for seed in 0..100 {
            check(seed, 0.20, sc);
        }
    }
}

/// With no loss the FINs cross: both sides pass through CLOSING (RFC 9293 Figure 13).
#[test]
fn pair_simultaneous_close_goes_through_closing() {
    let mut sim = Sim::new(1, 0.0, Scenario::Simultaneous);
    sim.run();
    assert!(
        sim.apps[CLIENT].saw.contains(&State::Closing),
        "{:?}",
        sim.apps[CLIENT].saw
    );
    assert!(
        sim.apps[SERVER].saw.contains(&State::Closing),
        "{:?}",
        sim.apps[SERVER].saw
    );
}
