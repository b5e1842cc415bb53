//! `xdptcp trace`: live connections of a running serve as ladder diagrams, one line per
//! segment (both directions): time since the connection's first segment, flags, relative
//! sequence and acknowledgment numbers, window, length, options, and the state change the
//! segment caused on the stack's side.
//!
//! The frames come from a capture ([`super::capture`], same filter syntax) that asks the
//! workers for notes ([`crate::iface::note`]): the stack's own state of the connection
//! before and after each segment it received, and when it sent one, and whether a SYN
//! cookie was involved. A frame without a note (none would only come from an older serve)
//! falls back to the transitions RFC 9293 gives for the segments seen. Marked:
//! retransmissions (a sequence range sent again), RSTs, challenge ACKs (a pure ACK sent
//! right after a SYN or RST arrived on a synchronized connection, RFC 5961), SYN-ACKs
//! carrying a SYN cookie and the ACK that completed a cookie handshake. Bounded: at most
//! `max` connections followed at once; segments of others are counted as skipped. A
//! connection ends at TIME-WAIT or CLOSED.

use std::collections::HashMap;
use std::fmt::Write as _;

use std::net::IpAddr;

use crate::iface::note::{StackState, TapNote};
use crate::iface::tap::Dir;
use crate::tcp::FourTuple;
use crate::wire::{self, TcpFlags, TcpRepr};

/// The stack's side of a traced connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TState {
    /// LISTEN: the first segment seen was a SYN to the stack.
    Listen,
    /// CLOSED: before the stack's first segment, or after a reset or the last ACK.
    Closed,
    /// SYN-SENT.
    SynSent,
    /// SYN-RECEIVED.
    SynReceived,
    /// ESTABLISHED.
    Established,
    /// FIN-WAIT-1.
    FinWait1,
    /// FIN-WAIT-2.
    FinWait2,
    /// CLOSE-WAIT.
    CloseWait,
    /// CLOSING.
    Closing,
    /// LAST-ACK.
    LastAck,
    /// TIME-WAIT.
    TimeWait,
}

impl TState {
    /// The stack's state as a worker noted it.
    pub fn of(s: StackState) -> TState {
        use crate::tcp::State;
        match s {
            StackState::Listen => TState::Listen,
            StackState::Closed | StackState::Conn(State::Closed) => TState::Closed,
            StackState::Conn(s) => match s {
                State::SynSent => TState::SynSent,
                State::SynReceived => TState::SynReceived,
                State::Established => TState::Established,
                State::FinWait1 => TState::FinWait1,
                State::FinWait2 => TState::FinWait2,
                State::CloseWait => TState::CloseWait,
                State::Closing => TState::Closing,
                State::LastAck => TState::LastAck,
                State::TimeWait => TState::TimeWait,
                State::Closed => TState::Closed,
            },
        }
    }

    /// RFC 9293's name, upper case (`SYN-RECEIVED`).
    pub fn name(self) -> &'static str {
        match self {
            TState::Listen => "LISTEN",
            TState::Closed => "CLOSED",
            TState::SynSent => "SYN-SENT",
            TState::SynReceived => "SYN-RECEIVED",
            TState::Established => "ESTABLISHED",
            TState::FinWait1 => "FIN-WAIT-1",
            TState::FinWait2 => "FIN-WAIT-2",
            TState::CloseWait => "CLOSE-WAIT",
            TState::Closing => "CLOSING",
            TState::LastAck => "LAST-ACK",
            TState::TimeWait => "TIME-WAIT",
        }
    }
}

/// One segment of a ladder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Nanoseconds since the connection's first segment.
    pub at_ns: u64,
    /// Received (peer to stack) or sent.
    pub dir: Dir,
    /// `[S.] seq 0 ack 1 win 65535 len 0 <mss 1460,...>` and marks.
    pub label: String,
    /// `(from, to)` when the segment changed the state.
    pub change: Option<(TState, TState)>,
}

/// A followed connection.
#[derive(Debug, Clone)]
pub struct Traced {
    /// Its number, in order of first appearance.
    pub number: u64,
    /// `local` = the stack's side.
    pub tuple: FourTuple,
    /// Its segments so far, at most [`MAX_STEPS`].
    pub steps: Vec<Step>,
    t0: u64,
    state: TState,
    /// Initial sequence numbers: the peer's, ours.
    isn_in: Option<u32>,
    isn_out: Option<u32>,
    /// Highest sequence end seen per direction (retransmission check).
    nxt_in: Option<u32>,
    nxt_out: Option<u32>,
    /// Our FIN's sequence number.
    fin_out: Option<u32>,
    /// The last inbound segment was a SYN or RST (challenge-ACK check).
    last_in_syn_or_rst: bool,
    /// TIME-WAIT entered on the peer's FIN: our ACK of it is still to come.
    linger: bool,
}

/// Steps kept per connection for `--svg` (the text streams, it keeps nothing).
pub const MAX_STEPS: usize = 10_000;

/// The tracker.
#[derive(Debug, Default)]
pub struct Tracer {
    max: usize,
    conns: HashMap<FourTuple, Traced>,
    next_number: u64,
    /// Segments of connections not followed (the table was full) or not TCP/IPv4.
    pub skipped_segments: u64,
    /// Connections not followed: their SYN found the table full.
    pub skipped_connections: u64,
    /// Connections that ended.
    pub finished: u64,
}

fn lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

fn flags(f: TcpFlags) -> String {
    let mut s = String::new();
    for (on, c) in [
        (f.syn(), 'S'),
        (f.fin(), 'F'),
        (f.rst(), 'R'),
        (f.psh(), 'P'),
        (f.ack(), '.'),
    ] {
        if on {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push_str("none");
    }
    format!("[{s}]")
}

fn options(t: &TcpRepr<'_>) -> String {
    let o = &t.options;
    let mut v: Vec<String> = Vec::new();
    if let Some(m) = o.mss {
        v.push(format!("mss {m}"));
    }
    if o.sack_permitted {
        v.push("sackOK".into());
    }
    if let Some((val, ecr)) = o.timestamp {
        v.push(format!("TS val {val} ecr {ecr}"));
    }
    if let Some(w) = o.window_scale {
        v.push(format!("wscale {w}"));
    }
    if o.sack_count > 0 {
        v.push(format!("sack {}", o.sack_count));
    }
    if v.is_empty() {
        String::new()
    } else {
        format!(" <{}>", v.join(","))
    }
}

impl Tracer {
    /// A tracker following at most `max` connections at once (at least 1).
    pub(crate) fn new(max: usize) -> Tracer {
        Tracer {
            max: max.max(1),
            ..Tracer::default()
        }
    }

    /// Connections followed now.
    pub fn following(&self) -> usize {
        self.conns.len()
    }

    /// One frame in or out at `at_ns` (any clock), without the stack's note: see
    /// [`Tracer::frame_noted`].
    pub fn frame(&mut self, at_ns: u64, dir: Dir, frame: &[u8]) -> Option<(Step, Traced, bool)> {
        self.frame_noted(at_ns, dir, frame, None)
    }

    /// One frame in or out at `at_ns` (any clock) with the stack's note if it has one: the
    /// step it adds, with its connection, and the connection if it ended with this segment
    /// (removed from the table).
    pub fn frame_noted(
        &mut self,
        at_ns: u64,
        dir: Dir,
        frame: &[u8],
        note: Option<TapNote>,
    ) -> Option<(Step, Traced, bool)> {
        let Ok(f) = wire::parse_any_tcp_frame_with(frame, false) else {
            self.skipped_segments += 1;
            return None;
        };
        let (src, dst, t): (IpAddr, IpAddr, _) = match &f {
            wire::AnyTcpFrame::V4(f) => (f.ip.src_addr.into(), f.ip.dst_addr.into(), &f.tcp),
            wire::AnyTcpFrame::V6(f) => (f.ip.src_addr.into(), f.ip.dst_addr.into(), &f.tcp),
        };
        let (local, remote) = match dir {
            Dir::In => ((dst, t.dst_port), (src, t.src_port)),
            Dir::Out => ((src, t.src_port), (dst, t.dst_port)),
        };
        let Some(tuple) = FourTuple::from_ips(local.0, local.1, remote.0, remote.1) else {
            self.skipped_segments += 1;
            return None;
        };
        if !self.conns.contains_key(&tuple) {
            if self.conns.len() >= self.max {
                self.skipped_segments += 1;
                if t.flags.syn() && !t.flags.ack() {
                    self.skipped_connections += 1;
                }
                return None;
            }
            self.next_number += 1;
            let state = match (note, dir, t.flags.syn(), t.flags.ack()) {
                (Some(n), ..) => TState::of(n.before),
                (None, Dir::In, true, false) => TState::Listen,
                (None, Dir::Out, true, false) => TState::Closed,
                // Caught mid-connection.
                _ => TState::Established,
            };
            self.conns.insert(
                tuple,
                Traced {
                    number: self.next_number,
                    tuple,
                    steps: Vec::new(),
                    t0: at_ns,
                    state,
                    isn_in: None,
                    isn_out: None,
                    nxt_in: None,
                    nxt_out: None,
                    fin_out: None,
                    last_in_syn_or_rst: false,
                    linger: false,
                },
            );
        }
        let c = self.conns.get_mut(&tuple)?;
        let step = c.step(at_ns, dir, t, note);
        if c.steps.len() < MAX_STEPS {
            c.steps.push(step.clone());
        }
        let ended = c.state == TState::Closed || (c.state == TState::TimeWait && !c.linger);
        let snapshot = c.clone();
        if ended {
            self.conns.remove(&tuple);
            self.finished += 1;
        }
        Some((step, snapshot, ended))
    }
}

impl Traced {
    fn step(&mut self, at_ns: u64, dir: Dir, t: &TcpRepr<'_>, note: Option<TapNote>) -> Step {
        let f = t.flags;
        let len = t.payload.len() as u32;
        let seg_len = len + u32::from(f.syn()) + u32::from(f.fin());
        let (isn, peer_isn, nxt) = match dir {
            Dir::In => (&mut self.isn_in, self.isn_out, &mut self.nxt_in),
            Dir::Out => (&mut self.isn_out, self.isn_in, &mut self.nxt_out),
        };
        if isn.is_none() {
            *isn = Some(t.seq.0);
        }
        let rel_seq = t.seq.0.wrapping_sub(isn.unwrap_or(0));
        let mut marks = Vec::new();
        if seg_len > 0 {
            if let Some(n) = *nxt {
                if lt(t.seq.0, n) {
                    marks.push("retransmission");
                }
            }
            let end = t.seq.0.wrapping_add(seg_len);
            if nxt.is_none_or(|n| lt(n, end)) {
                *nxt = Some(end);
            }
        }
        if f.rst() {
            marks.push("RST");
        }
        if note.is_some_and(|n| n.cookie) {
            marks.push(if dir == Dir::Out {
                "SYN cookie"
            } else {
                "cookie ACK"
            });
        }
        if dir == Dir::Out
            && self.last_in_syn_or_rst
            && f.ack()
            && !f.syn()
            && !f.rst()
            && seg_len == 0
            && !matches!(
                self.state,
                TState::Listen | TState::SynSent | TState::SynReceived
            )
        {
            marks.push("challenge ACK");
        }
        if dir == Dir::In {
            self.last_in_syn_or_rst = f.syn() || f.rst();
        }
        let mut label = format!("{} seq {rel_seq}", flags(f));
        if f.ack() {
            let a = t.ack.0.wrapping_sub(peer_isn.unwrap_or(0));
            let _ = write!(label, " ack {a}");
        }
        let _ = write!(label, " win {} len {len}{}", t.window, options(t));
        for m in marks {
            let _ = write!(label, " ({m})");
        }
        let before = self.state;
        if dir == Dir::Out && f.fin() && self.fin_out.is_none() {
            self.fin_out = Some(t.seq.0.wrapping_add(t.payload.len() as u32));
        }
        match note {
            // The stack's own: after an arrival, or when it sent the segment.
            Some(n) => self.state = TState::of(n.after),
            None => self.transition(dir, t),
        }
        let change = (self.state != before).then_some((before, self.state));
        // The ladder ends with our ACK of the FIN that brought TIME-WAIT.
        self.linger = self.state == TState::TimeWait && dir == Dir::In && f.fin();
        Step {
            at_ns: at_ns.saturating_sub(self.t0),
            dir,
            label,
            change,
        }
    }

    /// RFC 9293 §3.3.2's transitions for the stack's side, from the segments.
    fn transition(&mut self, dir: Dir, t: &TcpRepr<'_>) {
        use TState::*;
        let f = t.flags;
        if f.rst() {
            self.state = Closed;
            return;
        }
        let fin_acked = |c: &Traced| {
            c.fin_out
                .is_some_and(|s| f.ack() && !lt(t.ack.0, s.wrapping_add(1)))
        };
        self.state = match (self.state, dir) {
            (Listen, Dir::In) if f.syn() => SynReceived,
            (Closed, Dir::Out) if f.syn() => SynSent,
            (SynSent, Dir::In) if f.syn() && f.ack() => Established,
            (SynSent, Dir::In) if f.syn() => SynReceived,
            (SynReceived, Dir::In) if f.ack() && !f.syn() => {
                if f.fin() {
                    CloseWait
                } else {
                    Established
                }
            }
            (SynReceived | Established, Dir::Out) if f.fin() => FinWait1,
            (Established, Dir::In) if f.fin() => CloseWait,
            (CloseWait, Dir::Out) if f.fin() => LastAck,
            (FinWait1, Dir::In) if f.fin() && fin_acked(self) => TimeWait,
            (FinWait1, Dir::In) if f.fin() => Closing,
            (FinWait1, Dir::In) if fin_acked(self) => FinWait2,
            (FinWait2, Dir::In) if f.fin() => TimeWait,
            (Closing, Dir::In) if fin_acked(self) => TimeWait,
            (LastAck, Dir::In) if fin_acked(self) => Closed,
            (s, _) => s,
        };
    }
}

/// The text ladder's header of a connection.
pub fn header(c: &Traced) -> String {
    let t = c.tuple;
    format!(
        "[{n}] {} (peer) <-> {} (xdptcp)\n[{n}]        ms  {:<74}  xdptcp state",
        t.remote(),
        t.local(),
        "peer | ... | xdptcp",
        n = c.number
    )
}

/// One text ladder line.
pub fn line(number: u64, s: &Step) -> String {
    let w: usize = 70;
    let label = format!(" {} ", s.label);
    let pad = w.saturating_sub(label.chars().count());
    let (l, r) = (pad / 2, pad - pad / 2);
    let arrow = match s.dir {
        Dir::In => format!("|{}{label}{}>|", "-".repeat(l), "-".repeat(r)),
        Dir::Out => format!("|<{}{label}{}|", "-".repeat(l), "-".repeat(r)),
    };
    let change = s.change.map_or(String::new(), |(a, b)| {
        format!("  {} -> {}", a.name(), b.name())
    });
    format!("[{number}] {:>9.3}  {arrow}{change}", s.at_ns as f64 / 1e6)
}

/// What a trace client did.
#[derive(Debug, Default)]
pub struct TraceOutcome {
    /// The connections that ended, with their steps (for `--svg`; at most `keep`).
    pub finished: Vec<Traced>,
    /// Connections not followed: their SYN found `max` connections followed.
    pub skipped_connections: u64,
    /// Segments not shown: of connections not followed, or not TCP/IPv4.
    pub skipped_segments: u64,
    /// Frames the server dropped (its queue was full).
    pub dropped: u64,
}

/// Follows connections of the serve on `ifname` that match tcpdump's `words`: at most `max`
/// at once, until `count` of them ended (0: until the serve or the reader stops). `print`
/// gets each text line as it happens; `keep` connections are kept for a picture. `started`
/// runs once every worker's tap is in place. `stop` (set by SIGINT / SIGTERM) ends it as
/// `count` would, with the serve's statistics ([`super::capture::Interruptible`]).
pub fn follow(
    ifname: &str,
    words: Vec<String>,
    (max, count, keep): (usize, u64, usize),
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    started: impl FnOnce(),
    mut print: impl FnMut(&str),
) -> Result<TraceOutcome, TraceError> {
    let req = super::capture::CaptureRequest::new(0, u64::MAX, super::capture::SNAPLEN, words)
        .map_err(TraceError::Filter)?
        .with_notes();
    let (s, _) = super::request_stream(ifname, &req.line(), None)?;
    let mut s = super::capture::Interruptible::new(s, stop)
        .map_err(|e| TraceError::Capture(super::capture::CaptureError::Io(e)))?;
    let mut tr = Tracer::new(max);
    let mut out = TraceOutcome::default();
    let mut seen = std::collections::HashSet::new();
    let sum =
        super::capture::receive_with(&mut s, &mut std::io::sink(), started, |ts, dir, f, n| {
            let Some((step, c, ended)) = tr.frame_noted(ts.as_nanos() as u64, dir, f, n) else {
                return true;
            };
            // Bounded: the numbers of the connections being followed.
            if seen.insert(c.number) {
                print(&header(&c));
            }
            print(&line(c.number, &step));
            if ended {
                seen.remove(&c.number);
                print(&format!("[{}] end ({})", c.number, c.state_name()));
                if out.finished.len() < keep {
                    out.finished.push(c);
                }
            }
            count == 0 || tr.finished < count
        })?;
    out.skipped_connections = tr.skipped_connections;
    out.skipped_segments = tr.skipped_segments;
    out.dropped = sum.dropped;
    Ok(out)
}

/// Why `xdptcp trace` stopped.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The filter does not parse.
    #[error("bad filter: {0}")]
    Filter(crate::iface::tap::PktFilterError),
    /// No serve on the interface, or its stat socket failed.
    #[error(transparent)]
    Query(#[from] super::QueryError),
    /// The capture under the trace failed.
    #[error(transparent)]
    Capture(#[from] super::capture::CaptureError),
}

impl Traced {
    /// The stack's state at the last segment seen.
    pub fn state_name(&self) -> &'static str {
        self.state.name()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The ladders of `conns` as one SVG picture: the peer's time line on the left, the stack's
/// on the right, one arrow per segment (labelled), the stack's state changes beside its line.
pub fn svg(conns: &[Traced]) -> String {
    const ROW: usize = 28;
    const HEAD: usize = 60;
    let (xl, xr, width) = (200usize, 900usize, 1200usize);
    let rows: usize = conns.iter().map(|c| c.steps.len() + 3).sum();
    let height = HEAD + rows * ROW + 20;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"monospace\" font-size=\"12\">\n\
         <defs><marker id=\"a\" markerWidth=\"10\" markerHeight=\"8\" refX=\"10\" refY=\"4\" \
         orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\"/></marker></defs>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    let mut y = HEAD;
    for c in conns {
        let t = c.tuple;
        let _ = writeln!(
            s,
            "<text x=\"{xl}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{} (peer)</text>\
             <text x=\"{xr}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">{} (xdptcp)</text>",
            y - 20,
            t.remote(),
            y - 20,
            t.local()
        );
        let bottom = y + (c.steps.len() + 1) * ROW;
        for x in [xl, xr] {
            let _ = writeln!(
                s,
                "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{bottom}\" stroke=\"#888\"/>",
                y - 10
            );
        }
        for st in &c.steps {
            let (x1, x2) = match st.dir {
                Dir::In => (xl, xr),
                Dir::Out => (xr, xl),
            };
            let color = if st.label.contains("(RST)") {
                "#c00"
            } else if st.label.contains("retransmission") || st.label.contains("challenge") {
                "#c60"
            } else {
                "#036"
            };
            let _ = writeln!(
                s,
                "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{}\" stroke=\"{color}\" \
                 marker-end=\"url(#a)\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{color}\">{}</text>\
                 <text x=\"10\" y=\"{}\">{:.3} ms</text>",
                y + ROW / 2,
                (xl + xr) / 2,
                y + ROW / 2 - 6,
                esc(&st.label),
                y + ROW / 2,
                st.at_ns as f64 / 1e6
            );
            if let Some((_, to)) = st.change {
                let _ = writeln!(
                    s,
                    "<text x=\"{}\" y=\"{}\">{}</text>",
                    xr + 10,
                    y + ROW / 2 + 4,
                    to.name()
                );
            }
            y += ROW;
        }
        y += 3 * ROW;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EtherType, EthernetAddress, EthernetRepr, SeqNum};
    use std::net::Ipv4Addr;

    const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    fn frame(dir: Dir, seq: u32, ack: u32, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
        let (sp, dp, src, dst) = match dir {
            Dir::In => (40000, 80, PEER, US),
            Dir::Out => (80, 40000, US, PEER),
        };
        let t = TcpRepr {
            src_port: sp,
            dst_port: dp,
            seq: SeqNum(seq),
            ack: SeqNum(ack),
            flags,
            window: 1000,
            urgent: 0,
            options: Default::default(),
            payload,
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EtherType::Ipv4,
        };
        let mut b = vec![0u8; wire::tcp_frame_len(&t)];
        wire::emit_tcp_frame(&mut b, &eth, src, dst, 64, &t);
        b
    }

    /// RFC 9293 Figure 5 / §3.6: a passive open, data both ways, the stack closing first
    /// (FIN-WAIT-1, FIN-WAIT-2, TIME-WAIT), with a retransmitted request in the middle.
    #[test]
    fn a_passive_open_and_an_active_close() {
        use Dir::*;
        let (a, s, p, f) = (TcpFlags::ACK, TcpFlags::SYN, TcpFlags::PSH, TcpFlags::FIN);
        let segs = [
            (In, 100, 0, s, &b""[..]),
            (Out, 500, 101, s | a, b""),
            (In, 101, 501, a, b""),
            (In, 101, 501, p | a, b"GET"),
            (In, 101, 501, p | a, b"GET"),
            (Out, 501, 104, p | a, b"200"),
            (Out, 504, 104, f | a, b""),
            (In, 104, 505, a, b""),
            (In, 104, 505, f | a, b""),
            (Out, 505, 105, a, b""),
        ];
        let mut tr = Tracer::new(4);
        let mut out = Vec::new();
        for (i, (d, seq, ack, fl, pl)) in segs.into_iter().enumerate() {
            let (step, c, ended) = tr
                .frame(i as u64 * 1000, d, &frame(d, seq, ack, fl, pl))
                .expect("followed");
            out.push((step.label.clone(), step.change, ended, c.number));
        }
        let changes: Vec<_> = out.iter().filter_map(|o| o.1).collect();
        use TState::*;
        assert_eq!(
            changes,
            [
                (Listen, SynReceived),
                (SynReceived, Established),
                (Established, FinWait1),
                (FinWait1, FinWait2),
                (FinWait2, TimeWait)
            ]
        );
        assert_eq!(out[0].0, "[S] seq 0 win 1000 len 0");
        assert_eq!(out[1].0, "[S.] seq 0 ack 1 win 1000 len 0");
        assert_eq!(out[3].0, "[P.] seq 1 ack 1 win 1000 len 3");
        assert_eq!(out[4].0, "[P.] seq 1 ack 1 win 1000 len 3 (retransmission)");
        // Our ACK of the peer's FIN ends the connection in TIME-WAIT and frees its slot.
        assert!(!out[8].2 && out[9].2);
        assert_eq!(out[9].0, "[.] seq 5 ack 5 win 1000 len 0");
        assert_eq!(tr.following(), 0);
        assert_eq!(tr.finished, 1);
        let l = line(
            1,
            &Step {
                at_ns: 1_500_000,
                dir: Out,
                label: "[S.]".into(),
                change: Some((Listen, SynReceived)),
            },
        );
        let dashes = "-".repeat(32);
        assert_eq!(
            l,
            format!("[1]     1.500  |<{dashes} [S.] {dashes}|  LISTEN -> SYN-RECEIVED")
        );
    }

    /// An IPv6 connection is followed like an IPv4 one, its ends shown as `[addr]:port`.
    #[test]
    fn ipv6_connection_is_traced() {
        let (us, peer): (std::net::Ipv6Addr, std::net::Ipv6Addr) =
            ("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap());
        let frame6 = |dir: Dir, seq: u32, ack: u32, flags: TcpFlags| {
            let (sp, dp, src, dst) = match dir {
                Dir::In => (40000, 80, peer, us),
                Dir::Out => (80, 40000, us, peer),
            };
            let t = TcpRepr {
                src_port: sp,
                dst_port: dp,
                seq: SeqNum(seq),
                ack: SeqNum(ack),
                flags,
                window: 1000,
                urgent: 0,
                options: Default::default(),
                payload: &[],
            };
            let eth = EthernetRepr {
                src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
                dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
                ethertype: EtherType::Ipv4,
            };
            let mut b = vec![0u8; wire::frame6::tcp6_frame_len(&t)];
            wire::frame6::emit_tcp6_frame(&mut b, &eth, src, dst, 64, 1, &t);
            b
        };
        let mut tr = Tracer::new(4);
        let (s, a) = (TcpFlags::SYN, TcpFlags::ACK);
        tr.frame(0, Dir::In, &frame6(Dir::In, 100, 0, s)).unwrap();
        tr.frame(1, Dir::Out, &frame6(Dir::Out, 500, 101, s | a))
            .unwrap();
        let (_, c, ended) = tr.frame(2, Dir::In, &frame6(Dir::In, 101, 501, a)).unwrap();
        assert!(!ended);
        assert_eq!(c.steps.len(), 3);
        assert!(header(&c).contains("[2001:2::2]:40000 (peer) <-> [2001:2::1]:80 (xdptcp)"));
        assert_eq!(tr.following(), 1);
    }

    /// With the workers' notes the states are the stack's own, not inferred: a cookie
    /// handshake (tcp_syncookies=2) leaves LISTEN as it is at the SYN and goes straight to
    /// ESTABLISHED at the ACK; the cookie SYN-ACK and that ACK are marked.
    #[test]
    fn notes_give_the_stacks_states_and_cookie_marks() {
        use crate::tcp::State;
        use Dir::*;
        use StackState::{Conn, Listen};
        let (a, s, p, f) = (TcpFlags::ACK, TcpFlags::SYN, TcpFlags::PSH, TcpFlags::FIN);
        let n = |before, after, cookie| TapNote {
            before,
            after,
            cookie,
        };
        let segs = [
            (In, 100, 0, s, n(Listen, Listen, false)),
            (Out, 500, 101, s | a, n(Listen, Listen, true)),
            (In, 101, 501, a, n(Listen, Conn(State::Established), true)),
            (
                Out,
                501,
                101,
                f | p | a,
                n(Conn(State::FinWait1), Conn(State::FinWait1), false),
            ),
            (
                In,
                101,
                502,
                f | a,
                n(Conn(State::FinWait1), Conn(State::TimeWait), false),
            ),
            (
                Out,
                502,
                102,
                a,
                n(Conn(State::TimeWait), Conn(State::TimeWait), false),
            ),
        ];
        let mut tr = Tracer::new(4);
        let mut out = Vec::new();
        for (i, (d, seq, ack, fl, note)) in segs.into_iter().enumerate() {
            let b = frame(d, seq, ack, fl, b"");
            let (step, _, ended) = tr.frame_noted(i as u64, d, &b, Some(note)).unwrap();
            out.push((step.label, step.change, ended));
        }
        let changes: Vec<_> = out.iter().filter_map(|o| o.1).collect();
        assert_eq!(
            changes,
            [
                (TState::Listen, TState::Established),
                (TState::Established, TState::FinWait1),
                (TState::FinWait1, TState::TimeWait)
            ]
        );
        assert_eq!(out[1].0, "[S.] seq 0 ack 1 win 1000 len 0 (SYN cookie)");
        assert_eq!(out[2].0, "[.] seq 1 ack 1 win 1000 len 0 (cookie ACK)");
        assert!(
            !out[4].2 && out[5].2,
            "ends after the ACK sent from TIME-WAIT"
        );
    }

    #[test]
    fn resets_challenge_acks_and_the_bound() {
        use Dir::*;
        let a = TcpFlags::ACK;
        let mut tr = Tracer::new(1);
        // Caught mid-connection: ESTABLISHED.
        tr.frame(0, In, &frame(In, 1000, 1, a, b"x")).unwrap();
        let (st, _, _) = tr
            .frame(1, In, &frame(In, 5000, 1, TcpFlags::SYN, b""))
            .unwrap();
        assert_eq!(st.change, None);
        let (st, _, _) = tr.frame(2, Out, &frame(Out, 1, 1001, a, b"")).unwrap();
        assert!(st.label.ends_with("(challenge ACK)"), "{}", st.label);
        // A second connection: the table (1) is full.
        let other = {
            let mut f = frame(In, 1, 0, TcpFlags::SYN, b"");
            // Another source port: 40001 (and a checksum nobody checks here).
            f[34..36].copy_from_slice(&40001u16.to_be_bytes());
            f
        };
        assert!(tr.frame(3, In, &other).is_none());
        assert_eq!((tr.skipped_connections, tr.skipped_segments), (1, 1));
        let (st, _, ended) = tr
            .frame(4, In, &frame(In, 1001, 1, TcpFlags::RST, b""))
            .unwrap();
        assert_eq!(st.change, Some((TState::Established, TState::Closed)));
        assert!(st.label.ends_with("(RST)") && ended);
        assert!(svg(&[]).starts_with("<svg"));
    }
}
