//! One struct per RFC 9293 state, holding only what that state can have (model: netstack3):
//! SYN-SENT has no buffers, FIN-WAIT-2 and TIME-WAIT have no send buffer, CLOSE-WAIT /
//! CLOSING / LAST-ACK accept no more data (their receive side is a `RecvDone`: unread bytes
//! only). Transitions are `Transition` values applied in one place, [`Connection::apply`],
//! and every applied transition must be an edge of [`TRANSITIONS`] (the RFC 9293 §3.3.2
//! diagram; docs/state-machine.md is generated from it).

use super::receiver::{Receiver, RecvDone};
use super::ring::Ring;
use super::sender::{SendDone, Sender};
use super::timers::Timer;
use super::{ConnError, Connection, State, EV_CLOSED, EV_CONNECTED, EV_ERROR, EV_PEER_FIN};
use crate::tcp::bufpool::BufPool;
use crate::tcp::timewait::TimeWait;
use crate::time::{Duration, Instant};
use crate::wire::{SeqNum, TcpRepr};

/// SYN-SENT: our SYN is out (RFC 9293 §3.10.1).
#[derive(Debug)]
pub(super) struct SynSent {
    pub iss: SeqNum,
    /// SYNs sent so far (the first plus retransmissions).
    pub tx: u32,
    /// When the first SYN went out: the SYN -> SYN-ACK time is an RTT sample if it was the
    /// only one (RFC 6298 §2.2, Karn §3).
    pub sent_at: Instant,
}

/// SYN-RECEIVED: a SYN arrived and our SYN-ACK is out.
#[derive(Debug)]
pub(super) struct SynRcvd {
    pub iss: SeqNum,
    pub irs: SeqNum,
    /// SYN-ACKs sent so far.
    pub tx: u32,
    /// When the first SYN-ACK went out (the SYN-ACK -> ACK time is an RTT sample when
    /// `tx == 1`).
    pub sent_at: Instant,
    /// Reached from SYN-SENT (simultaneous open) rather than LISTEN: decides what a RST
    /// means (RFC 9293 §3.10.7.4 second check: refused vs. back to LISTEN).
    pub active: bool,
}

/// RFC 6298 §2.2 with Karn's rule (§3): the handshake gives the first RTT sample only when
/// exactly one SYN (SYN-ACK) was sent, so the answer cannot belong to a retransmission. A
/// cookie connection sent no SYN-ACK it remembers (`tx == 0`): no sample.
fn handshake_rtt(now: Instant, tx: u32, sent_at: Instant) -> Option<Duration> {
    (tx == 1).then(|| now.saturating_since(sent_at))
}

#[derive(Debug)]
pub(super) struct Established {
    pub snd: Sender,
    pub rcv: Receiver,
}

/// FIN-WAIT-1: our FIN is queued or sent, not yet acknowledged; still receiving.
#[derive(Debug)]
pub(super) struct FinWait1 {
    pub snd: Sender,
    pub rcv: Receiver,
}

/// FIN-WAIT-2: our FIN is acknowledged; still receiving.
#[derive(Debug)]
pub(super) struct FinWait2 {
    pub snd: SendDone,
    pub rcv: Receiver,
}

/// CLOSE-WAIT: the peer's FIN arrived; we may still send.
#[derive(Debug)]
pub(super) struct CloseWait {
    pub snd: Sender,
    pub rcv: RecvDone,
}

/// CLOSING: both FINs sent, ours not yet acknowledged.
#[derive(Debug)]
pub(super) struct Closing {
    pub snd: Sender,
    pub rcv: RecvDone,
}

/// LAST-ACK: the peer's FIN arrived earlier, ours is out and unacknowledged.
#[derive(Debug)]
pub(super) struct LastAck {
    pub snd: Sender,
    pub rcv: RecvDone,
}

/// TIME-WAIT: the compact record (what the endpoint keeps once the connection is dropped)
/// plus data the application has not read yet.
#[derive(Debug)]
pub(super) struct TimeWaitSt {
    pub rec: TimeWait,
    pub rcv: RecvDone,
}

/// CLOSED: only unread data (after an orderly close) remains.
#[derive(Debug, Default)]
pub(super) struct Closed {
    pub rcv: Option<RecvDone>,
    /// The storage of the buffers the close discarded (send, receive): kept, unread, until
    /// the endpoint frees the connection and gives it to its pool
    /// (`Connection::release_buffers`). Free in size: CLOSED is smaller than ESTABLISHED.
    pub spare: [Option<Ring>; 2],
    /// Bytes the discarded out-of-order data had charged to the pool (tcp/bufpool.rs),
    /// settled by `Connection::release_buffers`.
    pub ooo_debt: usize,
}

#[derive(Debug)]
pub(super) enum Inner {
    SynSent(SynSent),
    SynRcvd(SynRcvd),
    Established(Established),
    FinWait1(FinWait1),
    FinWait2(FinWait2),
    CloseWait(CloseWait),
    Closing(Closing),
    LastAck(LastAck),
    TimeWait(TimeWaitSt),
    Closed(Closed),
}

impl Inner {
    pub fn kind(&self) -> State {
        match self {
            Inner::SynSent(_) => State::SynSent,
            Inner::SynRcvd(_) => State::SynReceived,
            Inner::Established(_) => State::Established,
            Inner::FinWait1(_) => State::FinWait1,
            Inner::FinWait2(_) => State::FinWait2,
            Inner::CloseWait(_) => State::CloseWait,
            Inner::Closing(_) => State::Closing,
            Inner::LastAck(_) => State::LastAck,
            Inner::TimeWait(_) => State::TimeWait,
            Inner::Closed(_) => State::Closed,
        }
    }

    /// RFC 9293 §3.3.2: ESTABLISHED and later (but not CLOSED).
    pub fn is_synchronized(&self) -> bool {
        !matches!(
            self,
            Inner::SynSent(_) | Inner::SynRcvd(_) | Inner::Closed(_)
        )
    }

    /// The sending half, in the states that have one.
    pub fn sender(&self) -> Option<&Sender> {
        match self {
            Inner::Established(s) => Some(&s.snd),
            Inner::FinWait1(s) => Some(&s.snd),
            Inner::CloseWait(s) => Some(&s.snd),
            Inner::Closing(s) => Some(&s.snd),
            Inner::LastAck(s) => Some(&s.snd),
            _ => None,
        }
    }

    pub fn sender_mut(&mut self) -> Option<&mut Sender> {
        match self {
            Inner::Established(s) => Some(&mut s.snd),
            Inner::FinWait1(s) => Some(&mut s.snd),
            Inner::CloseWait(s) => Some(&mut s.snd),
            Inner::Closing(s) => Some(&mut s.snd),
            Inner::LastAck(s) => Some(&mut s.snd),
            _ => None,
        }
    }

    /// The sending half the application may still write to: ESTABLISHED and CLOSE-WAIT
    /// (RFC 9293 §3.10.2 SEND; in the other sending states our FIN is queued).
    pub fn writable_sender(&self) -> Option<&Sender> {
        match self {
            Inner::Established(s) => Some(&s.snd),
            Inner::CloseWait(s) => Some(&s.snd),
            _ => None,
        }
    }

    pub fn writable_sender_mut(&mut self) -> Option<&mut Sender> {
        match self {
            Inner::Established(s) => Some(&mut s.snd),
            Inner::CloseWait(s) => Some(&mut s.snd),
            _ => None,
        }
    }

    /// Keepalive applies (RFC 9293 §3.8.4): synchronized and not yet in TIME-WAIT.
    pub fn keepalive_applies(&self) -> bool {
        self.is_synchronized() && !matches!(self, Inner::TimeWait(_))
    }

    /// The receiving half, in the states that still accept data.
    pub fn receiver(&self) -> Option<&Receiver> {
        match self {
            Inner::Established(s) => Some(&s.rcv),
            Inner::FinWait1(s) => Some(&s.rcv),
            Inner::FinWait2(s) => Some(&s.rcv),
            _ => None,
        }
    }

    pub fn receiver_mut(&mut self) -> Option<&mut Receiver> {
        match self {
            Inner::Established(s) => Some(&mut s.rcv),
            Inner::FinWait1(s) => Some(&mut s.rcv),
            Inner::FinWait2(s) => Some(&mut s.rcv),
            _ => None,
        }
    }

    /// The receive side after the peer's FIN (unread data only), in the states that have one.
    pub fn recv_done(&self) -> Option<&RecvDone> {
        match self {
            Inner::CloseWait(s) => Some(&s.rcv),
            Inner::Closing(s) => Some(&s.rcv),
            Inner::LastAck(s) => Some(&s.rcv),
            Inner::TimeWait(s) => Some(&s.rcv),
            Inner::Closed(s) => s.rcv.as_ref(),
            _ => None,
        }
    }

    pub fn recv_done_mut(&mut self) -> Option<&mut RecvDone> {
        match self {
            Inner::CloseWait(s) => Some(&mut s.rcv),
            Inner::Closing(s) => Some(&mut s.rcv),
            Inner::LastAck(s) => Some(&mut s.rcv),
            Inner::TimeWait(s) => Some(&mut s.rcv),
            Inner::Closed(s) => s.rcv.as_mut(),
            _ => None,
        }
    }

    /// `recv`: bytes read into `out`, and whether the window opened enough to owe the peer a
    /// window update (only while the peer may still send).
    pub fn read(&mut self, out: &mut [u8], pool: &mut BufPool) -> (usize, bool) {
        if let Some(r) = self.receiver_mut() {
            return r.read(out, pool);
        }
        (self.recv_done_mut().map_or(0, |r| r.read(out, pool)), false)
    }

    /// The storage of every buffer this state holds (send, receive), its data discarded.
    pub fn into_rings(self) -> [Option<Ring>; 2] {
        match self {
            Inner::SynSent(_) | Inner::SynRcvd(_) => [None, None],
            Inner::Established(s) => [Some(s.snd.into_ring()), Some(s.rcv.into_ring())],
            Inner::FinWait1(s) => [Some(s.snd.into_ring()), Some(s.rcv.into_ring())],
            Inner::FinWait2(s) => [None, Some(s.rcv.into_ring())],
            Inner::CloseWait(s) => [Some(s.snd.into_ring()), Some(s.rcv.into_ring())],
            Inner::Closing(s) => [Some(s.snd.into_ring()), Some(s.rcv.into_ring())],
            Inner::LastAck(s) => [Some(s.snd.into_ring()), Some(s.rcv.into_ring())],
            Inner::TimeWait(s) => [None, Some(s.rcv.into_ring())],
            Inner::Closed(Closed {
                rcv,
                spare: [snd, r],
                ..
            }) => [snd, r.or(rcv.map(RecvDone::into_ring))],
        }
    }

    /// SND.NXT (for RSTs and probes).
    pub fn snd_nxt(&self) -> SeqNum {
        match self {
            Inner::SynSent(s) => s.iss + 1u32,
            Inner::SynRcvd(s) => s.iss + 1u32,
            Inner::FinWait2(s) => s.snd.nxt(),
            Inner::TimeWait(s) => s.rec.snd_nxt,
            Inner::Closed(_) => SeqNum(0),
            _ => self.sender().map_or(SeqNum(0), Sender::nxt),
        }
    }

    /// SND.UNA.
    pub fn snd_una(&self) -> SeqNum {
        match self {
            Inner::SynSent(s) => s.iss,
            Inner::SynRcvd(s) => s.iss,
            _ => self.sender().map_or(self.snd_nxt(), Sender::una),
        }
    }

    /// RCV.NXT, once there is one.
    pub fn rcv_nxt(&self) -> Option<SeqNum> {
        match self {
            Inner::SynSent(_) | Inner::Closed(_) => None,
            Inner::SynRcvd(s) => Some(s.irs + 1u32),
            Inner::TimeWait(s) => Some(s.rec.rcv_nxt),
            _ => match self.receiver() {
                Some(r) => Some(r.nxt()),
                None => self.recv_done().map(RecvDone::nxt),
            },
        }
    }

    /// Receive window in bytes (RCV.WND).
    pub fn rcv_wnd(&self) -> u32 {
        match self {
            Inner::SynSent(_) | Inner::Closed(_) => 0,
            Inner::SynRcvd(_) => u32::MAX, // replaced by the caller (buffer not yet made)
            _ => match self.receiver() {
                Some(r) => r.window(),
                None => self.recv_done().map_or(0, RecvDone::window),
            },
        }
    }

    /// Unread received bytes.
    pub fn unread(&self) -> usize {
        match self.receiver() {
            Some(r) => r.unread(),
            None => self.recv_done().map_or(0, RecvDone::unread),
        }
    }
}

/// A state change, as a value. Data a transition needs that the old state lacks travels in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transition {
    /// SYN-SENT -> SYN-RECEIVED (simultaneous open): the peer's SYN (without ACK) arrived.
    SynReceived { irs: SeqNum },
    /// SYN-SENT / SYN-RECEIVED -> ESTABLISHED (built by [`Transition::established`]). `wnd`
    /// = the peer's window in bytes, (`wl1`, `wl2`) = (SEG.SEQ, SEG.ACK) of the segment that
    /// set it. SEG.ACK itself is ISS + 1, checked by the caller, which is where the new
    /// sender's SND.UNA starts.
    Established {
        irs: SeqNum,
        wnd: u32,
        wl1: SeqNum,
        wl2: SeqNum,
    },
    /// ESTABLISHED -> FIN-WAIT-1 (CLOSE / shutdown).
    FinWait1,
    /// FIN-WAIT-1 -> FIN-WAIT-2 (our FIN acknowledged).
    FinWait2,
    /// ESTABLISHED -> CLOSE-WAIT (FIN received).
    CloseWait,
    /// FIN-WAIT-1 -> CLOSING (FIN received, ours unacknowledged).
    Closing,
    /// CLOSE-WAIT -> LAST-ACK (CLOSE / shutdown).
    LastAck,
    /// FIN-WAIT-1 / FIN-WAIT-2 / CLOSING -> TIME-WAIT.
    TimeWait,
    /// Anything -> CLOSED, with the error the application is told (if any).
    Closed(Option<ConnError>),
}

impl Transition {
    /// ESTABLISHED by `seg`, the segment acknowledging our SYN (its SEG.ACK = ISS + 1 already
    /// checked): "set SND.WND <- SEG.WND, set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK"
    /// (RFC 9293 §3.10.7.3 / §3.10.7.4). `shift` is the peer's window scale, 0 for a window
    /// carried on a SYN (RFC 7323 §2.2: never scaled).
    pub fn established(irs: SeqNum, seg: &TcpRepr<'_>, shift: u8) -> Transition {
        Transition::Established {
            irs,
            wnd: (seg.window as u32) << shift,
            wl1: seg.seq,
            wl2: seg.ack,
        }
    }
}

/// The RFC 9293 §3.3.2 state diagram (Figure 5) as (from, event, to), restricted to the
/// connection's states (LISTEN is the listener's). The diagram's FIN-WAIT-1 -> TIME-WAIT edge
/// ("rcv FIN, ACK of our FIN") is taken as FIN-WAIT-1 -> FIN-WAIT-2 (fifth check, the ACK)
/// then FIN-WAIT-2 -> TIME-WAIT (eighth check, the FIN) while processing that one segment. Every transition `apply` makes is checked
/// against this table in debug builds; docs/state-machine.md is generated from it.
pub const TRANSITIONS: &[(State, &str, State)] = &[
    (State::SynSent, "rcv SYN,ACK / snd ACK", State::Established),
    (State::SynSent, "rcv SYN / snd SYN,ACK", State::SynReceived),
    (
        State::SynSent,
        "rcv RST,ACK of SYN (refused)",
        State::Closed,
    ),
    (
        State::SynSent,
        "SYN retries exhausted / CLOSE / rcv ICMP error",
        State::Closed,
    ),
    (State::SynReceived, "rcv ACK of SYN", State::Established),
    (
        State::SynReceived,
        "rcv RST / SYN-ACK retries exhausted / rcv ICMP error",
        State::Closed,
    ),
    (State::Established, "CLOSE / snd FIN", State::FinWait1),
    (State::Established, "rcv FIN / snd ACK", State::CloseWait),
    (
        State::Established,
        "rcv RST / ABORT / timeout",
        State::Closed,
    ),
    (State::FinWait1, "rcv ACK of FIN", State::FinWait2),
    (State::FinWait1, "rcv FIN / snd ACK", State::Closing),
    (State::FinWait1, "rcv RST / ABORT / timeout", State::Closed),
    (State::FinWait2, "rcv FIN / snd ACK", State::TimeWait),
    (
        State::FinWait2,
        "rcv RST / ABORT / fin_timeout",
        State::Closed,
    ),
    (State::CloseWait, "CLOSE / snd FIN", State::LastAck),
    (State::CloseWait, "rcv RST / ABORT / timeout", State::Closed),
    (State::Closing, "rcv ACK of FIN", State::TimeWait),
    (State::Closing, "rcv RST / ABORT / timeout", State::Closed),
    (State::LastAck, "rcv ACK of FIN", State::Closed),
    (State::LastAck, "rcv RST / ABORT / timeout", State::Closed),
    (State::TimeWait, "2MSL timeout / ABORT", State::Closed),
];

/// The transition table as a Mermaid state diagram, for docs/state-machine.md (whose test
/// compares the committed diagram with this). Entry edges: `connect` and the listener.
pub fn state_diagram_mermaid() -> String {
    use std::fmt::Write;
    let id = |s: State| s.as_str().replace('-', "_");
    let mut out = String::from("stateDiagram-v2\n");
    out.push_str("    [*] --> SYN_SENT: connect / snd SYN\n");
    out.push_str("    [*] --> SYN_RECEIVED: LISTEN rcv SYN / snd SYN,ACK\n");
    for &(from, event, to) in TRANSITIONS {
        let _ = writeln!(out, "    {} --> {}: {}", id(from), id(to), event);
    }
    out.push_str("    CLOSED --> [*]\n");
    out
}

impl Connection {
    /// Apply a transition: the one place where the state changes. Takes the old state apart
    /// and builds the new one; arms and clears the timers the new state needs; tells the
    /// application.
    pub(super) fn apply(&mut self, now: Instant, t: Transition) {
        let t = self.timeout_error(t);
        let old = std::mem::replace(&mut self.inner, Inner::Closed(Closed::default()));
        let from = old.kind();
        self.inner = self.build(now, old, t);
        let to = self.inner.kind();
        #[cfg(test)]
        super::tests::record_transition(from, to);
        debug_assert!(
            TRANSITIONS.iter().any(|&(f, _, t2)| f == from && t2 == to),
            "transition {from} -> {to} is not in the RFC 9293 diagram"
        );
        self.enter(now, from, to);
    }

    fn build(&mut self, now: Instant, old: Inner, t: Transition) -> Inner {
        use Transition as T;
        // Simultaneous open (RFC 9293 §3.10.7.3): the ACK of ISS+1 may answer our SYN (it
        // is then the peer's SYN-ACK) rather than our SYN-ACK, so the time is ambiguous and,
        // as Karn's rule asks (RFC 6298 §3; Linux likewise only uses timestamps here), it is
        // no sample.
        let simultaneous = matches!(&old, Inner::SynRcvd(s) if s.active);
        match (old, t) {
            (Inner::SynSent(s), T::SynReceived { irs }) => Inner::SynRcvd(SynRcvd {
                iss: s.iss,
                irs,
                tx: 0,
                sent_at: now,
                active: true,
            }),
            (
                Inner::SynSent(SynSent { iss, tx, sent_at }),
                T::Established { irs, wnd, wl1, wl2 },
            )
            | (
                Inner::SynRcvd(SynRcvd {
                    iss, tx, sent_at, ..
                }),
                T::Established { irs, wnd, wl1, wl2 },
            ) => {
                let rtt = handshake_rtt(now, tx, sent_at).filter(|_| !simultaneous);
                let mut snd = Sender::new(iss, self.nego, self.limits.wmem, &self.limits)
                    .over_ipv6(self.tuple.is_ipv6(), self.nego)
                    .after_handshake(tx > 1, rtt);
                snd.set_window(wnd, wl1, wl2);
                let rcv = Receiver::new(irs + 1u32, self.limits.rmem, &self.nego);
                self.ts.last_ack_sent = irs + 1u32;
                Inner::Established(Established { snd, rcv })
            }
            (Inner::Established(Established { mut snd, rcv }), T::FinWait1) => {
                snd.queue_fin();
                Inner::FinWait1(FinWait1 { snd, rcv })
            }
            (Inner::FinWait1(FinWait1 { snd, rcv }), T::FinWait2) => Inner::FinWait2(FinWait2 {
                snd: snd.done(),
                rcv,
            }),
            (Inner::Established(Established { snd, rcv }), T::CloseWait) => {
                Inner::CloseWait(CloseWait {
                    snd,
                    rcv: rcv.finish(),
                })
            }
            (Inner::FinWait1(FinWait1 { snd, rcv }), T::Closing) => Inner::Closing(Closing {
                snd,
                rcv: rcv.finish(),
            }),
            (Inner::CloseWait(CloseWait { mut snd, rcv }), T::LastAck) => {
                snd.queue_fin();
                Inner::LastAck(LastAck { snd, rcv })
            }
            (Inner::FinWait2(FinWait2 { snd, rcv }), T::TimeWait) => {
                self.time_wait(now, snd.nxt(), rcv.finish())
            }
            (Inner::Closing(Closing { snd, rcv }), T::TimeWait) => {
                self.time_wait(now, snd.done().nxt(), rcv)
            }
            (mut old, T::Closed(err)) => {
                let ooo_debt = old.receiver_mut().map_or(0, Receiver::take_ooo_charge);
                if let Some(e) = err {
                    self.events.error = Some(e);
                    self.events.bits |= EV_ERROR;
                }
                // After a reset or abort unread data is discarded (RFC 9293 §3.10.7.4 "any
                // outstanding RECEIVEs ... should receive reset responses"); the storage
                // stays until the endpoint gives it to its pool.
                let (rcv, spare) = match (err, old) {
                    (None, Inner::LastAck(s)) => (Some(s.rcv), [Some(s.snd.into_ring()), None]),
                    (None, Inner::TimeWait(s)) => (Some(s.rcv), [None, None]),
                    (_, old) => (None, old.into_rings()),
                };
                Inner::Closed(Closed {
                    rcv,
                    spare,
                    ooo_debt,
                })
            }
            (old, t) => {
                // Unreachable by construction; keep the old state rather than panic.
                debug_assert!(false, "no transition {t:?} from {}", old.kind());
                old
            }
        }
    }

    fn time_wait(&mut self, now: Instant, snd_nxt: SeqNum, rcv: RecvDone) -> Inner {
        let rec = TimeWait::new(
            now,
            self.tuple.local_port,
            self.tuple.remote_port,
            snd_nxt,
            rcv.nxt(),
            self.advertised_window(rcv.window()),
            self.nego
                .timestamps
                .then_some((self.ts.recent, self.ts.recent_at, self.ts.offset)),
            self.limits.time_wait,
        );
        Inner::TimeWait(TimeWaitSt { rec, rcv })
    }

    /// Entry actions of the new state.
    fn enter(&mut self, now: Instant, from: State, to: State) {
        match to {
            State::SynReceived => {
                self.timers.clear(Timer::Retransmit);
                self.pending.syn = true;
            }
            State::Established => {
                self.timers.clear(Timer::Retransmit);
                self.timers.clear(Timer::UserTimeout);
                self.pending.syn = false;
                self.events.bits |= EV_CONNECTED;
                self.rearm_keepalive();
                // A FIN the application asked for before the handshake finished
                // (RFC 9293 §3.10.4: queued until ESTABLISHED).
                if self.app.write_closed {
                    self.apply(now, Transition::FinWait1);
                }
            }
            State::CloseWait | State::Closing => self.events.bits |= EV_PEER_FIN,
            State::FinWait2 => {
                self.timers.clear(Timer::Retransmit);
                self.timers.clear(Timer::UserTimeout);
                if self.app.orphaned {
                    self.timers
                        .set(Timer::FinWait2, now + self.limits.fin_timeout);
                }
            }
            State::TimeWait => {
                // RFC 9293 §3.10.7.4: "start the time-wait timer, turn off the other timers".
                self.timers = Default::default();
                self.timers
                    .set(Timer::TimeWait, now + self.limits.time_wait);
                if from != State::Closing {
                    self.events.bits |= EV_PEER_FIN;
                }
                self.events.bits |= EV_CLOSED;
            }
            State::Closed => {
                self.timers = Default::default();
                self.pending.ack = false;
                self.pending.syn = false;
                self.pending.probe = false;
                if from != State::TimeWait {
                    self.events.bits |= EV_CLOSED;
                }
            }
            _ => {}
        }
    }
}
