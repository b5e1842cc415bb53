//! The stack's own view of a traced segment (`xdptcp trace`): the connection's state before
//! and after the endpoint took an inbound segment, or when it sent one, and whether a SYN
//! cookie was involved. Worked out only for taps that ask for it (a running trace: one demux
//! lookup before and after each matching segment); a capture never pays for it.
//!
//! It travels to the trace client as the pcapng packet comment (`opt_comment`) of the frame:
//! `xdptcp: SYN-RECEIVED -> ESTABLISHED`, `xdptcp: LISTEN, SYN cookie`.

use crate::tcp::endpoint::Endpoint;
use crate::tcp::{FourTuple, State};
use crate::wire;

/// The stack's side of a 4-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackState {
    /// No connection, a listener would take a SYN (its state, RFC 9293 §3.3.2).
    Listen,
    /// Nothing for the tuple.
    Closed,
    /// A connection (or a TIME-WAIT record) in this state.
    Conn(State),
}

const STATES: [State; 10] = [
    State::SynSent,
    State::SynReceived,
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
    State::Closed,
];

impl StackState {
    /// RFC 9293's name, upper case (`SYN-RECEIVED`).
    pub fn name(self) -> &'static str {
        match self {
            StackState::Listen => "LISTEN",
            StackState::Closed => "CLOSED",
            StackState::Conn(s) => s.as_str(),
        }
    }

    /// What `ep.tuple_state` gave (`none` when nothing); a connection in CLOSED, about to be
    /// freed, is CLOSED.
    fn of(s: Option<State>, none: StackState) -> StackState {
        match s {
            None => none,
            Some(State::Closed) => StackState::Closed,
            Some(s) => StackState::Conn(s),
        }
    }

    fn parse(s: &str) -> Option<StackState> {
        match s {
            "LISTEN" => Some(StackState::Listen),
            "CLOSED" => Some(StackState::Closed),
            _ => STATES
                .into_iter()
                .find(|st| st.as_str() == s)
                .map(StackState::Conn),
        }
    }
}

/// What the worker saw around one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapNote {
    /// Before an inbound segment was processed; for an outbound one, its state when sent.
    pub before: StackState,
    /// After an inbound segment was processed; for an outbound one, as `before`.
    pub after: StackState,
    /// A SYN-ACK sent without state (its ISS is a SYN cookie, RFC 4987 §3.6), or the ACK
    /// whose cookie validated and created the connection.
    pub cookie: bool,
}

const PREFIX: &str = "xdptcp: ";
const COOKIE: &str = ", SYN cookie";

impl TapNote {
    /// The pcapng packet comment: `xdptcp: BEFORE -> AFTER` (`xdptcp: STATE` when equal),
    /// then `, SYN cookie`.
    pub fn comment(&self) -> String {
        let mut s = format!("{PREFIX}{}", self.before.name());
        if self.after != self.before {
            s.push_str(" -> ");
            s.push_str(self.after.name());
        }
        if self.cookie {
            s.push_str(COOKIE);
        }
        s
    }

    /// Parses [`TapNote::comment`]'s text (`None` for any other comment).
    pub fn parse(comment: &str) -> Option<TapNote> {
        let rest = comment.strip_prefix(PREFIX)?;
        let (rest, cookie) = match rest.strip_suffix(COOKIE) {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (b, a) = rest.split_once(" -> ").unwrap_or((rest, rest));
        Some(TapNote {
            before: StackState::parse(b)?,
            after: StackState::parse(a)?,
            cookie,
        })
    }
}

/// An inbound segment's note, half made: taken before the endpoint sees the segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InNote {
    tuple: FourTuple,
    before: StackState,
    cookies_accepted: u64,
}

impl InNote {
    /// Before `ep` takes the segment of `f`.
    pub(crate) fn before(ep: &Endpoint, f: &wire::AnyTcpFrame<'_>) -> InNote {
        let tuple = super::tuple_of(f);
        let none = if ep.has_listener(&tuple) {
            StackState::Listen
        } else {
            StackState::Closed
        };
        InNote {
            tuple,
            before: StackState::of(ep.tuple_state(&tuple), none),
            cookies_accepted: ep.stats().cookies_accepted,
        }
    }

    /// After: a tuple left without state stays LISTEN if it was (a SYN answered with a
    /// cookie or refused), else it is CLOSED (the connection was freed).
    pub(crate) fn after(self, ep: &Endpoint) -> TapNote {
        let none = match self.before {
            StackState::Listen => StackState::Listen,
            _ => StackState::Closed,
        };
        TapNote {
            before: self.before,
            after: StackState::of(ep.tuple_state(&self.tuple), none),
            cookie: ep.stats().cookies_accepted > self.cookies_accepted,
        }
    }
}

/// The note of a frame the worker sent (`None` if it is not TCP): the connection's
/// state now; a SYN-ACK with no connection behind it is the listener's stateless cookie
/// SYN-ACK (the only SYN-ACK the endpoint sends without state).
/// Reads the headers only: the frame may be cut at the snap length.
pub(crate) fn out_note(ep: &Endpoint, frame: &[u8]) -> Option<TapNote> {
    let (src, dst, sport, dport) = super::tap::tcp_fields(frame)?;
    // TCP flags: byte 13 of the TCP header (SYN 0x02, ACK 0x10), after the fixed IPv6
    // header (tcp_fields matched no extension header) or the IPv4 header with its options.
    let l3 = if src.is_ipv6() {
        40
    } else {
        usize::from(frame[14] & 0x0f) * 4
    };
    let flags = *frame.get(14 + l3 + 13)?;
    let tuple = FourTuple::from_ips(src, sport, dst, dport)?;
    let (state, cookie) = match ep.tuple_state(&tuple) {
        None if flags & 0x12 == 0x12 => (StackState::Listen, true),
        s => (StackState::of(s, StackState::Closed), false),
    };
    Some(TapNote {
        before: state,
        after: state,
        cookie,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip() {
        let n = TapNote {
            before: StackState::Listen,
            after: StackState::Conn(State::SynReceived),
            cookie: false,
        };
        assert_eq!(n.comment(), "xdptcp: LISTEN -> SYN-RECEIVED");
        assert_eq!(TapNote::parse(&n.comment()), Some(n));
        let c = TapNote {
            before: StackState::Listen,
            after: StackState::Listen,
            cookie: true,
        };
        assert_eq!(c.comment(), "xdptcp: LISTEN, SYN cookie");
        assert_eq!(TapNote::parse(&c.comment()), Some(c));
        let t = TapNote {
            before: StackState::Conn(State::FinWait1),
            after: StackState::Conn(State::TimeWait),
            cookie: false,
        };
        assert_eq!(t.comment(), "xdptcp: FIN-WAIT-1 -> TIME-WAIT");
        assert_eq!(TapNote::parse(&t.comment()), Some(t));
        assert_eq!(TapNote::parse("a comment"), None);
        assert_eq!(TapNote::parse("xdptcp: NOPE"), None);
        for s in STATES.into_iter().filter(|&s| s != State::Closed) {
            assert_eq!(StackState::parse(s.as_str()), Some(StackState::Conn(s)));
        }
        assert_eq!(StackState::parse("CLOSED"), Some(StackState::Closed));
        let closed = StackState::of(Some(State::Closed), StackState::Listen);
        assert_eq!(closed, StackState::Closed);
    }
}
