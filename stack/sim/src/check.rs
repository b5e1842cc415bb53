//! The agreement checks of [`Outcome::check`]: what both ends must have seen, per scenario
//! and verdict (see the docs of [`Scenario`] and [`Verdict`]).

use super::scenario::{End, Outcome, Scenario, Verdict};
use xdptcp_core::tcp::conn::{ConnError, Event, State};

/// The RFC 9293 §3.3.2 state diagram as seen from outside, one event at a time (written
/// from the RFC, independently of the connection code's own table), plus "any state ->
/// CLOSED" (RST, abort, retries exhausted). A step is one segment, one timeout or one
/// application call, so e.g. FIN-WAIT-1 -> TIME-WAIT (a FIN that also acks our FIN) is one
/// edge.
fn rfc_edge(from: State, to: State) -> bool {
    use State::*;
    to == Closed
        || matches!(
            (from, to),
            (SynSent, SynReceived)
                | (SynSent, Established)
                | (SynReceived, Established)
                | (SynReceived, FinWait1)
                | (Established, FinWait1)
                | (Established, CloseWait)
                | (FinWait1, FinWait2)
                | (FinWait1, Closing)
                | (FinWait1, TimeWait)
                | (FinWait2, TimeWait)
                | (CloseWait, LastAck)
                | (Closing, TimeWait)
        )
}

/// How the two ends of a run disagree: one line for the failure report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Disagreement(pub String);

type Check = Result<(), Disagreement>;

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(Disagreement(what()))
    }
}

fn path_is_rfc(name: &str, e: &End) -> Check {
    for w in e.states.windows(2) {
        ensure(rfc_edge(w[0], w[1]), || {
            format!("{name}: {} -> {} is not an RFC 9293 transition", w[0], w[1])
        })?;
    }
    // Nothing after Closed; at most one Error, which precedes Closed.
    if let Some(i) = e.events.iter().position(|&ev| ev == Event::Closed) {
        ensure(i + 1 == e.events.len(), || {
            format!("{name}: events after Closed: {:?}", e.events)
        })?;
    }
    let errors = e
        .events
        .iter()
        .filter(|ev| matches!(ev, Event::Error(_)))
        .count();
    ensure(errors <= 1, || {
        format!("{name}: {errors} errors: {:?}", e.events)
    })
}

fn no_error(name: &str, e: &End) -> Check {
    ensure(e.error.is_none(), || {
        format!("{name}: unexpected error {:?}", e.error)
    })
}

fn ends_closed_clean(name: &str, e: &End) -> Check {
    ensure(e.states.last() == Some(&State::Closed), || {
        format!("{name}: ends in {:?}, not CLOSED", e.states.last())
    })?;
    ensure(e.conns_left == 0 && e.tw_left == 0, || {
        format!(
            "{name}: endpoint still holds {} connections, {} TIME-WAIT records",
            e.conns_left, e.tw_left
        )
    })
}

fn passes(name: &str, e: &End, states: &[State]) -> Check {
    for s in states {
        ensure(e.states.contains(s), || {
            format!("{name}: never in {s}: {:?}", e.states)
        })?;
    }
    Ok(())
}

fn avoids(name: &str, e: &End, states: &[State]) -> Check {
    for s in states {
        ensure(!e.states.contains(s), || {
            format!("{name}: was in {s}: {:?}", e.states)
        })?;
    }
    Ok(())
}

/// TIME-WAIT entered, then left no earlier than 2MSL later (RFC 9293 §3.6.1).
fn time_wait_2msl(name: &str, e: &End, o: &Outcome) -> Check {
    match e.time_wait {
        Some((t0, Some(t1))) => ensure(t1 - t0 >= o.msl * 2, || {
            format!("{name}: TIME-WAIT lasted {:?} < 2MSL", t1 - t0)
        }),
        other => Err(Disagreement(format!(
            "{name}: TIME-WAIT record {other:?} (never entered or never left)"
        ))),
    }
}

impl Outcome {
    /// Whether the two ends agree, per the scenario's and the verdict's definition.
    pub fn check(&self) -> Result<(), Disagreement> {
        let (c, s) = (&self.client, &self.server);
        path_is_rfc("client", c)?;
        path_is_rfc("server", s)?;
        ensure(c.states.first() == Some(&State::SynSent), || {
            format!("client starts in {:?}", c.states.first())
        })?;
        if let Some(first) = s.states.first() {
            // The application sees a passive connection only once it is synchronized.
            ensure(
                matches!(first, State::Established | State::CloseWait),
                || format!("server accepted a connection in {first}"),
            )?;
        }
        match self.verdict {
            Verdict::ConnectTimedOut => self.check_no_connection(ConnError::TimedOut),
            Verdict::Refused => {
                ensure(self.scenario == Scenario::Refused, || {
                    "connection refused although the server listens".into()
                })?;
                self.check_no_connection(ConnError::Refused)?;
                ensure(self.server_rst_closed >= 1, || {
                    "client refused but the server sent no RST".into()
                })
            }
            Verdict::HalfOpenReset => {
                ensure(c.events.first() == Some(&Event::Connected), || {
                    format!("half-open reset without Connected: {:?}", c.events)
                })?;
                ensure(s.incoming == 0 && s.id.is_none(), || {
                    "client reset though the server accepted".into()
                })?;
                ensure(s.conns_left == 0, || {
                    "server still holds the half-open one".into()
                })
            }
            Verdict::RetriesExhausted => self.check_retries_exhausted(),
            Verdict::Completed => self.check_completed(),
        }
    }

    /// An end gave up after tcp_retries2 (only under extreme loss): it ends CLOSED holding
    /// nothing; what each end received is a prefix of what the other sent.
    fn check_retries_exhausted(&self) -> Check {
        let (c, s) = (&self.client, &self.server);
        for (n, e, peer) in [("client", c, s), ("server", s, c)] {
            ensure(peer.sent.starts_with(&e.received), || {
                format!("{n} received bytes the peer never sent")
            })?;
            if e.error == Some(ConnError::TimedOut) {
                ends_closed_clean(n, e)?;
            }
        }
        Ok(())
    }

    /// The client never got a connection; the server never accepted one and holds none.
    fn check_no_connection(&self, err: ConnError) -> Check {
        let (c, s) = (&self.client, &self.server);
        ensure(c.states == [State::SynSent, State::Closed], || {
            format!("client path {:?}", c.states)
        })?;
        ensure(
            c.error == Some(err) && !c.events.contains(&Event::Connected),
            || format!("client error {:?}, events {:?}", c.error, c.events),
        )?;
        ensure(
            s.incoming == 0 && s.id.is_none() && s.conns_left == 0,
            || {
                format!(
                    "server: {} incoming, holds {} connections",
                    s.incoming, s.conns_left
                )
            },
        )?;
        ensure(c.conns_left == 0 && c.tw_left == 0, || {
            "client endpoint still holds the failed connection".into()
        })?;
        if self.scenario == Scenario::Refused && err == ConnError::TimedOut {
            // Every SYN that reached the server was refused; all RSTs were lost.
            ensure(self.server_rst_closed == self.server_segments_in, || {
                format!(
                    "server got {} segments, sent {} RSTs",
                    self.server_segments_in, self.server_rst_closed
                )
            })?;
        }
        Ok(())
    }

    fn check_completed(&self) -> Check {
        let (c, s) = (&self.client, &self.server);
        ensure(self.scenario != Scenario::Refused, || {
            "refused scenario completed a connection".into()
        })?;
        ensure(c.events.first() == Some(&Event::Connected), || {
            format!("client events {:?}", c.events)
        })?;
        ensure(s.id.is_some(), || "server never accepted".into())?;
        // Data: each received exactly what the other sent (the close-with-unread client reads
        // nothing; the server's post-RST probe is never delivered).
        let c_sent = &c.sent[..c.sent.len() - probe_len(c)];
        let s_sent = &s.sent[..s.sent.len() - probe_len(s)];
        ensure(s.received == c_sent, || {
            format!(
                "server got {} of {} bytes (or other bytes)",
                s.received.len(),
                c_sent.len()
            )
        })?;
        if self.scenario == Scenario::CloseUnread {
            ensure(c.received.is_empty(), || "unread client read".into())?;
        } else {
            let want = s_sent;
            ensure(c.received == want, || {
                format!(
                    "client got {} of {} bytes (or other bytes)",
                    c.received.len(),
                    want.len()
                )
            })?;
        }
        use State::*;
        match self.scenario {
            Scenario::Handshake => {
                no_error("client", c)?;
                no_error("server", s)?;
                ensure(c.states.last() == Some(&Established), || {
                    format!("client ends {:?}", c.states)
                })?;
                ensure(s.states.last() == Some(&Established), || {
                    format!("server ends {:?}", s.states)
                })?;
                self.no_rst_before_closed("client", c)?;
                self.no_rst_before_closed("server", s)
            }
            Scenario::ClientClose => self.graceful(c, s, "client", "server"),
            Scenario::ServerClose => self.graceful(s, c, "server", "client"),
            Scenario::FinWait2Timeout => self.fin_wait2_timeout(),
            Scenario::SimultaneousClose => {
                for (n, e, peer) in [("client", c, s), ("server", s, c)] {
                    no_error(n, e)?;
                    passes(n, e, &[FinWait1])?;
                    avoids(n, e, &[CloseWait, LastAck])?;
                    if e.states.contains(&TimeWait) {
                        time_wait_2msl(n, e, self)?;
                    } else if !self.fin_wait2_timed_out(e) {
                        // Legitimate only if every retransmission of this end's FIN (or
                        // every ACK of it) was lost until the peer was gone (its TIME-WAIT
                        // over, or its FIN-WAIT-2 timed out): the next one then met a closed
                        // port, whose RST ended CLOSING / FIN-WAIT-1 (RFC 9293 §3.10.7.4
                        // second check).
                        let peer_closed = peer
                            .states
                            .last()
                            .filter(|&&s| s == Closed)
                            .and(peer.entered.last().copied());
                        let closed = e.entered.last().copied();
                        ensure(
                            matches!((peer_closed, closed), (Some(p), Some(c)) if c >= p),
                            || {
                                format!(
                                    "{n} never in TIME-WAIT ({:?}) though the peer closed at \
                                     {peer_closed:?}, after {n}'s CLOSED at {closed:?}",
                                    e.states
                                )
                            },
                        )?;
                    }
                    ends_closed_clean(n, e)?;
                    self.no_rst_before_closed(n, e)?;
                }
                Ok(())
            }
            Scenario::HalfClose => {
                self.graceful(c, s, "client", "server")?;
                passes("client", c, &[FinWait2])?;
                ensure(c.events.contains(&Event::PeerFin), || {
                    format!("half-closed client never saw end-of-stream: {:?}", c.events)
                })
            }
            Scenario::Abort | Scenario::CloseUnread => self.aborted(c, s, "client", "server"),
            Scenario::ServerAbort => self.aborted(s, c, "server", "client"),
            Scenario::Refused => unreachable!("checked above"),
        }
    }

    fn fin_wait2_timeout(&self) -> Check {
        use State::*;
        let (c, s) = (&self.client, &self.server);
        let at = |e: &End, st: State| e.states.iter().position(|&x| x == st).map(|i| e.entered[i]);
        if c.states.contains(&TimeWait) {
            // Legitimate only if the client's FIN was acknowledged so late (many lost
            // rounds) that the server closed within tcp_fin_timeout of FIN-WAIT-2, or only
            // by the server's FIN itself (FIN-WAIT-1 -> TIME-WAIT, never FIN-WAIT-2): then
            // it is an ordinary client-first close.
            let (fw2, server_close) = (at(c, FinWait2), at(s, LastAck));
            ensure(
                match (fw2, server_close) {
                    (None, _) => true,
                    (Some(a), Some(b)) => b < a + self.fin_timeout,
                    (Some(_), None) => false,
                },
                || {
                    format!(
                        "client in TIME-WAIT although the server closed at {server_close:?}, \
                         more than tcp_fin_timeout after FIN-WAIT-2 at {fw2:?}"
                    )
                },
            )?;
            return self.graceful(c, s, "client", "server");
        }
        no_error("server", s)?;
        passes("client", c, &[FinWait1, FinWait2])?;
        avoids("client", c, &[TimeWait, CloseWait])?;
        passes("server", s, &[CloseWait, LastAck])?;
        avoids("server", s, &[TimeWait, FinWait1])?;
        ensure(s.events.contains(&Event::PeerFin), || {
            format!("server never saw end-of-stream: {:?}", s.events)
        })?;
        let (fw2, closed) = (at(c, FinWait2), at(c, Closed));
        ensure(
            matches!((fw2, closed), (Some(a), Some(b)) if b - a >= self.fin_timeout),
            || format!("client FIN-WAIT-2 at {fw2:?}, CLOSED at {closed:?}: < tcp_fin_timeout"),
        )?;
        ends_closed_clean("client", c)?;
        ends_closed_clean("server", s)?;
        self.no_rst_before_closed("client", c)?;
        self.no_rst_before_closed("server", s)
    }

    /// In a graceful close neither end sends a RST while it still has the connection. After
    /// its CLOSED a late duplicate (or, after the whole TIME-WAIT, a FIN retransmission)
    /// meets a closed port and rightly draws one (RFC 9293 §3.10.7.1; a TIME-WAIT end
    /// ignores it, RFC 1337).
    fn no_rst_before_closed(&self, name: &str, e: &End) -> Check {
        let i = if name == "client" { 0 } else { 1 };
        let closed = e
            .states
            .last()
            .filter(|&&s| s == State::Closed)
            .and(e.entered.last().copied());
        match self.first_rst[i] {
            Some(r) => ensure(matches!(closed, Some(c) if r >= c), || {
                format!("{name} sent a RST at {r:?} before its CLOSED at {closed:?}")
            }),
            None => Ok(()),
        }
    }

    /// An orphaned (closed) connection left FIN-WAIT-2 for CLOSED no earlier than
    /// `tcp_fin_timeout` after entering it: the peer's FIN was lost for that long (Linux
    /// `tcp_fin_timeout`; the FIN, when it comes, meets a closed port and draws a RST).
    fn fin_wait2_timed_out(&self, e: &End) -> bool {
        let n = e.states.len();
        n >= 2
            && e.states[n - 2] == State::FinWait2
            && e.states[n - 1] == State::Closed
            && e.entered[n - 1] - e.entered[n - 2] >= self.fin_timeout
    }

    /// `a` aborted (or closed with unread data): it reports `Aborted`, `p` a reset
    /// followed by `Closed`; neither went through a FIN state; nothing left on either.
    fn aborted(&self, a: &End, p: &End, an: &str, pn: &str) -> Check {
        use State::*;
        ensure(a.error == Some(ConnError::Aborted), || {
            format!("{an} error {:?}, want Aborted", a.error)
        })?;
        ensure(p.error == Some(ConnError::Reset), || {
            format!("{pn} error {:?}, want Reset", p.error)
        })?;
        ensure(p.events.contains(&Event::Closed), || {
            format!("{pn} events {:?}: no Closed after the reset", p.events)
        })?;
        for (n, e) in [(an, a), (pn, p)] {
            avoids(n, e, &[TimeWait, FinWait1, CloseWait])?;
            ends_closed_clean(n, e)?;
        }
        Ok(())
    }

    /// `a` closes first, `p` closes on end-of-stream.
    fn graceful(&self, a: &End, p: &End, an: &str, pn: &str) -> Check {
        use State::*;
        no_error(an, a)?;
        no_error(pn, p)?;
        passes(an, a, &[FinWait1])?;
        // The half-closed client is not orphaned: no FIN-WAIT-2 timeout for it.
        if self.scenario == Scenario::HalfClose || !self.fin_wait2_timed_out(a) {
            passes(an, a, &[TimeWait])?;
            time_wait_2msl(an, a, self)?;
        }
        passes(pn, p, &[CloseWait, LastAck])?;
        avoids(pn, p, &[TimeWait, FinWait1])?;
        ensure(p.events.contains(&Event::PeerFin), || {
            format!("{pn} never saw end-of-stream: {:?}", p.events)
        })?;
        ends_closed_clean(an, a)?;
        ends_closed_clean(pn, p)?;
        self.no_rst_before_closed(an, a)?;
        self.no_rst_before_closed(pn, p)?;
        Ok(())
    }
}

/// Bytes an end wrote as its post-RST probe (not part of the exchange).
fn probe_len(s: &End) -> usize {
    if s.sent.ends_with(b"probe") {
        5
    } else {
        0
    }
}
