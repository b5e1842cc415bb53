//! The capture tap of an interface (`xdptcp capture`, `xdptcp trace`): when set, every frame
//! the device received and every frame the interface handed to the device is matched
//! against a [`PktFilter`] and copied (up to the snap length) into a bounded queue for a
//! reader on another thread (each capture or trace running has its own tap). When no tap is
//! set the cost is one branch per frame. When the
//! reader falls behind the frame is dropped and counted, the worker never waits.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use super::note::TapNote;
use crate::time::Instant;

/// Which way a frame went, as the stack sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received by the device (pcapng EPB flags direction 1, inbound).
    In,
    /// Handed to the device by the interface (EPB direction 2, outbound).
    Out,
}

/// One captured frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapFrame {
    /// The worker's clock when the frame passed the tap.
    pub at: Instant,
    /// Received or sent.
    pub dir: Dir,
    /// The first `snaplen` bytes.
    pub data: Vec<u8>,
    /// The frame's length on the wire.
    pub len: u32,
    /// The stack's view of the segment, for a tap that asked ([`Tap::with_notes`]).
    pub note: Option<TapNote>,
}

/// What the worker and the reader share.
#[derive(Debug)]
pub struct TapShared {
    /// Frames waiting for the reader; holds at most the `capacity` given to [`Tap::new`]
    /// (at least 1).
    pub queue: ArrayQueue<TapFrame>,
    /// Frames that matched but found the queue full.
    pub dropped: AtomicU64,
    /// Frames that matched.
    pub matched: AtomicU64,
    /// Set by the reader when it is done: the worker removes the tap.
    pub closed: AtomicBool,
}

/// The worker's side of a tap.
#[derive(Debug, Clone)]
pub struct Tap {
    shared: Arc<TapShared>,
    filter: PktFilter,
    snaplen: usize,
    /// Frames carry the stack's [`TapNote`] (`xdptcp trace`).
    notes: bool,
    /// Sent frames of a noting tap, until the transmit round ends (the endpoint, busy
    /// emitting them, cannot be asked for their state before). At most the queue's
    /// capacity; more are dropped and counted.
    deferred: Vec<TapFrame>,
}

impl Tap {
    /// A tap queuing at most `capacity` frames; the reader keeps the returned handle.
    pub fn new(filter: PktFilter, snaplen: usize, capacity: usize) -> (Tap, Arc<TapShared>) {
        let shared = Arc::new(TapShared {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
            matched: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        });
        (
            Tap {
                shared: shared.clone(),
                filter,
                snaplen: snaplen.max(64),
                notes: false,
                deferred: Vec::new(),
            },
            shared,
        )
    }

    /// Frames will carry the stack's [`TapNote`]: the worker hands this tap a received
    /// frame once the endpoint took it and sent frames once the transmit round is over.
    pub fn with_notes(mut self) -> Tap {
        self.notes = true;
        self
    }

    /// It asked for notes.
    pub fn wants_notes(&self) -> bool {
        self.notes
    }

    /// The reader closed it.
    pub fn closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// A frame in or out.
    pub fn frame(&self, at: Instant, dir: Dir, frame: &[u8]) {
        self.frame_noted(at, dir, frame, None);
    }

    /// A frame in or out, with the stack's note.
    pub fn frame_noted(&self, at: Instant, dir: Dir, frame: &[u8], note: Option<TapNote>) {
        if let Some(f) = self.take(at, dir, frame, note) {
            self.push(f);
        }
    }

    fn take(&self, at: Instant, dir: Dir, frame: &[u8], note: Option<TapNote>) -> Option<TapFrame> {
        if !self.filter.matches(frame) {
            return None;
        }
        self.shared.matched.fetch_add(1, Ordering::Relaxed);
        Some(TapFrame {
            at,
            dir,
            data: frame[..frame.len().min(self.snaplen)].to_vec(),
            len: frame.len() as u32,
            note,
        })
    }

    fn push(&self, f: TapFrame) {
        if self.shared.queue.push(f).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A sent frame of a noting tap: held until [`Tap::flush_deferred`].
    fn defer(&mut self, at: Instant, frame: &[u8]) {
        let Some(f) = self.take(at, Dir::Out, frame, None) else {
            return;
        };
        if self.deferred.len() >= self.shared.queue.capacity() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.deferred.push(f);
    }

    /// Queues the held sent frames, each with `note(frame)`.
    fn flush_deferred(&mut self, mut note: impl FnMut(&[u8]) -> Option<TapNote>) {
        let mut held = std::mem::take(&mut self.deferred);
        for mut f in held.drain(..) {
            f.note = note(&f.data);
            self.push(f);
        }
        // Keep the allocation for the next round.
        self.deferred = held;
    }
}

/// Hands a frame to every tap that takes frames as they pass (captures); noting taps get
/// theirs from [`each_noted`] / [`each_out`] (out of line: the caller's check for "no taps"
/// is the only cost when none is set).
#[cold]
#[inline(never)]
pub fn each(taps: &[Tap], at: Instant, dir: Dir, frame: &[u8]) {
    for t in taps.iter().filter(|t| !t.notes) {
        t.frame(at, dir, frame);
    }
}

/// A received frame to the noting taps, after the endpoint took it.
#[cold]
#[inline(never)]
pub fn each_noted(taps: &[Tap], at: Instant, frame: &[u8], note: Option<TapNote>) {
    for t in taps.iter().filter(|t| t.notes) {
        t.frame_noted(at, Dir::In, frame, note);
    }
}

/// A sent frame: to captures at once, held by noting taps until the round is over.
#[cold]
#[inline(never)]
pub fn each_out(taps: &mut [Tap], at: Instant, frame: &[u8]) {
    for t in taps.iter_mut() {
        if t.notes {
            t.defer(at, frame);
        } else {
            t.frame(at, Dir::Out, frame);
        }
    }
}

/// The end of a transmit round: the noting taps' held frames, each with `note(frame)`.
#[cold]
#[inline(never)]
pub fn flush_out(taps: &mut [Tap], mut note: impl FnMut(&[u8]) -> Option<TapNote>) {
    for t in taps.iter_mut().filter(|t| t.notes) {
        t.flush_deferred(&mut note);
    }
}

/// Any tap wants notes.
pub fn noting(taps: &[Tap]) -> bool {
    taps.iter().any(|t| t.notes)
}

/// A noting tap's filter takes `frame`: only then is its note worth the endpoint lookups.
pub fn note_wanted(taps: &[Tap], frame: &[u8]) -> bool {
    taps.iter().any(|t| t.notes && t.filter.matches(frame))
}

/// Addresses and ports of an Ethernet/IPv4/TCP or Ethernet/IPv6/TCP frame (`None` for
/// anything else).
pub(crate) fn tcp_fields(f: &[u8]) -> Option<(IpAddr, IpAddr, u16, u16)> {
    // IPv6 with TCP right after the fixed header (what the stack sends and almost all it
    // gets; a frame with extension headers does not match address or port primitives).
    if f.len() >= 58 && f[12..14] == [0x86, 0xdd] && f[14] >> 4 == 6 && f[20] == 6 {
        let ip = |o: usize| {
            let b: [u8; 16] = f[o..o + 16].try_into().unwrap_or_default();
            IpAddr::V6(Ipv6Addr::from(b))
        };
        return Some((
            ip(22),
            ip(38),
            u16::from_be_bytes([f[54], f[55]]),
            u16::from_be_bytes([f[56], f[57]]),
        ));
    }
    if f.len() < 34 || f[12..14] != [0x08, 0x00] || f[14] >> 4 != 4 || f[23] != 6 {
        return None;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let t = 14 + ihl;
    if ihl < 20 || f.len() < t + 4 {
        return None;
    }
    let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(f[o], f[o + 1], f[o + 2], f[o + 3]));
    Some((
        ip(26),
        ip(30),
        u16::from_be_bytes([f[t], f[t + 1]]),
        u16::from_be_bytes([f[t + 2], f[t + 3]]),
    ))
}

/// Which end a primitive looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `src`: the source address or port.
    Src,
    /// `dst`: the destination address or port.
    Dst,
    /// Neither keyword: source or destination.
    Either,
}

/// A tcpdump-style filter (pcap-filter(7)'s primitives the stack's traffic needs):
/// `tcp`, `[src|dst] host A`, `[src|dst] net A/LEN`, `[src|dst] port N`, `and` / `&&`,
/// `or` / `||`, `not` / `!`, parentheses. No filter: every frame.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PktFilter {
    /// No filter: every frame, TCP or not.
    #[default]
    Any,
    /// `tcp`: Ethernet/IPv4/TCP and Ethernet/IPv6/TCP frames.
    Tcp,
    /// `host A` (prefix length 32) or `net A/LEN` (LEN 0..=32) on the given side.
    Net(Side, IpAddr, u8),
    /// `port N` on the given side.
    Port(Side, u16),
    /// `not` / `!`.
    Not(Box<PktFilter>),
    /// `and` / `&&`.
    And(Box<PktFilter>, Box<PktFilter>),
    /// `or` / `||`.
    Or(Box<PktFilter>, Box<PktFilter>),
}

impl PktFilter {
    /// Whether a whole Ethernet frame passes. The primitives (all but [`PktFilter::Any`] and the
    /// operators) are false for a frame that is not Ethernet/IPv4/TCP, so `not tcp` passes ARP.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match self {
            PktFilter::Any => true,
            PktFilter::Not(e) => !e.matches(frame),
            PktFilter::And(a, b) => a.matches(frame) && b.matches(frame),
            PktFilter::Or(a, b) => a.matches(frame) || b.matches(frame),
            p => tcp_fields(frame).is_some_and(|(s, d, sp, dp)| p.matches_fields(s, d, sp, dp)),
        }
    }

    /// The primitive on a frame's fields (source / destination address and port).
    pub fn matches_fields(
        &self,
        s: impl Into<IpAddr>,
        d: impl Into<IpAddr>,
        sp: u16,
        dp: u16,
    ) -> bool {
        self.fields(s.into(), d.into(), sp, dp)
    }

    fn fields(&self, s: IpAddr, d: IpAddr, sp: u16, dp: u16) -> bool {
        let side = |side: Side, f: &dyn Fn(bool) -> bool| match side {
            Side::Src => f(true),
            Side::Dst => f(false),
            Side::Either => f(true) || f(false),
        };
        match self {
            PktFilter::Any | PktFilter::Tcp => true,
            PktFilter::Net(sd, net, len) => {
                let mask = |bits: u32| match *len {
                    0 => 0,
                    l => u128::MAX << (bits - u32::from(l).min(bits)),
                };
                // An address of the other family never matches (length 0: any address).
                let m = |a: IpAddr| match (a, *net) {
                    _ if *len == 0 => true,
                    (IpAddr::V4(a), IpAddr::V4(n)) => {
                        let k = mask(32) as u32;
                        u32::from(a) & k == u32::from(n) & k
                    }
                    (IpAddr::V6(a), IpAddr::V6(n)) => {
                        u128::from(a) & mask(128) == u128::from(n) & mask(128)
                    }
                    _ => false,
                };
                side(*sd, &|src| m(if src { s } else { d }))
            }
            PktFilter::Port(sd, p) => side(*sd, &|src| *p == if src { sp } else { dp }),
            PktFilter::Not(e) => !e.fields(s, d, sp, dp),
            PktFilter::And(a, b) => a.fields(s, d, sp, dp) && b.fields(s, d, sp, dp),
            PktFilter::Or(a, b) => a.fields(s, d, sp, dp) || b.fields(s, d, sp, dp),
        }
    }

    /// Parses tcpdump's words (in any split; an empty list is [`PktFilter::Any`]).
    pub fn parse(words: &[String]) -> Result<PktFilter, PktFilterError> {
        let mut toks = Vec::new();
        for w in words.iter().flat_map(|w| w.split_whitespace()) {
            let mut cur = String::new();
            for c in w.chars() {
                if c == '(' || c == ')' || (c == '!' && cur.is_empty()) {
                    if !cur.is_empty() {
                        toks.push(std::mem::take(&mut cur));
                    }
                    toks.push(c.to_string());
                } else {
                    cur.push(c);
                }
            }
            if !cur.is_empty() {
                toks.push(cur);
            }
        }
        if toks.is_empty() {
            return Ok(PktFilter::Any);
        }
        let mut p = P { toks, at: 0 };
        let e = p.or()?;
        match p.peek() {
            None => Ok(e),
            Some(t) => Err(PktFilterError::Unexpected(t.into())),
        }
    }
}

/// A filter tcpdump would not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PktFilterError {
    /// A word that is no primitive or operator where it stands.
    #[error("unexpected {0:?} (primitives: tcp, [src|dst] host A, [src|dst] net A/LEN, [src|dst] port N; and, or, not, parentheses)")]
    Unexpected(String),
    /// An address, prefix length or port that does not parse.
    #[error("bad value {0:?}")]
    Value(String),
    /// A primitive or operator without its operand, or an unclosed parenthesis.
    #[error("the filter ends too early")]
    End,
}

struct P {
    toks: Vec<String>,
    at: usize,
}

impl P {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, PktFilterError> {
        let t = self.toks.get(self.at).cloned().ok_or(PktFilterError::End)?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<PktFilter, PktFilterError> {
        let mut e = self.and()?;
        while matches!(self.peek(), Some("or" | "||")) {
            self.at += 1;
            e = PktFilter::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<PktFilter, PktFilterError> {
        let mut e = self.unary()?;
        while matches!(self.peek(), Some("and" | "&&")) {
            self.at += 1;
            e = PktFilter::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<PktFilter, PktFilterError> {
        let t = self.next()?;
        let side = match t.as_str() {
            "not" | "!" => return Ok(PktFilter::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.or()?;
                return match self.next()?.as_str() {
                    ")" => Ok(e),
                    o => Err(PktFilterError::Unexpected(o.into())),
                };
            }
            // A protocol qualifier (`tcp port 80`) or alone (`tcp`).
            "tcp" | "ip" => {
                return match self.peek() {
                    Some("src" | "dst" | "host" | "net" | "port") => self.unary(),
                    _ => Ok(PktFilter::Tcp),
                }
            }
            "src" => Side::Src,
            "dst" => Side::Dst,
            _ => {
                self.at -= 1;
                Side::Either
            }
        };
        let kind = self.next()?;
        let (kind, value) = match kind.as_str() {
            "host" | "net" | "port" => (kind.clone(), self.next()?),
            // `src 198.18.0.2`: host.
            v if side != Side::Either && v.parse::<IpAddr>().is_ok() => ("host".into(), kind),
            _ => return Err(PktFilterError::Unexpected(kind)),
        };
        let bad = || PktFilterError::Value(value.clone());
        Ok(match kind.as_str() {
            "host" | "net" => {
                let (a, l) = match value.split_once('/') {
                    Some((a, l)) if kind == "net" => (a, Some(l)),
                    _ => (value.as_str(), None),
                };
                let a: IpAddr = a.parse().map_err(|_| bad())?;
                let max = if a.is_ipv6() { 128 } else { 32 };
                let len = match l {
                    Some(l) => l.parse().ok().filter(|&l| l <= max).ok_or_else(bad)?,
                    None => max,
                };
                PktFilter::Net(side, a, len)
            }
            _ => PktFilter::Port(side, value.parse().map_err(|_| bad())?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> PktFilter {
        PktFilter::parse(&[s.to_string()]).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn tcpdump_primitives() {
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let m = |s: &str| f(s).matches_fields(b, a, 40000, 80);
        assert!(m("port 80"));
        assert!(m("port 40000"));
        assert!(!m("src port 80"));
        assert!(m("dst port 80 and host 198.18.0.2"));
        assert!(m("src 198.18.0.2"));
        assert!(!m("dst host 198.18.0.2"));
        assert!(m("net 198.18.0.0/24"));
        assert!(!m("not tcp"));
        assert!(m("(port 1 or port 80) and tcp"));
        assert!(m("tcp port 80"));
        assert!(m("tcp dst port 80"));
        assert!(m("!port 1"));
        assert_eq!(f(""), PktFilter::Any);
        for bad in [
            "port",
            "port x",
            "host 1.2.3",
            "port 80 or",
            "( port 80",
            "udp",
        ] {
            assert!(PktFilter::parse(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    /// IPv6 frames: host, net and port primitives see their addresses and ports; IPv4
    /// patterns never match them.
    #[test]
    fn ipv6_frames_and_patterns() {
        use crate::wire::{self, EthernetAddress, EthernetRepr, SeqNum, TcpFlags, TcpRepr};
        let syn = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
            window: 1000,
            urgent: 0,
            options: Default::default(),
            payload: &[],
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: wire::EtherType::Ipv4, // ignored: emit_tcp6_frame writes 0x86dd
        };
        let (a, b): (Ipv6Addr, Ipv6Addr) =
            ("2001:2::2".parse().unwrap(), "2001:2::1".parse().unwrap());
        let mut buf = vec![0u8; wire::frame6::tcp6_frame_len(&syn)];
        wire::frame6::emit_tcp6_frame(&mut buf, &eth, a, b, 64, 0x12345, &syn);
        let m = |s: &str| {
            PktFilter::parse(&s.split(' ').map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .matches(&buf)
        };
        assert!(m("tcp"));
        assert!(m("port 80 and src host 2001:2::2"));
        assert!(m("dst 2001:2::1"));
        assert!(m("net 2001:2::/48"));
        assert!(!m("net 2001:3::/48"));
        assert!(!m("host 198.18.0.1"));
        assert!(m("not net 198.18.0.0/15"));
        assert!(PktFilter::parse(&["net".into(), "2001:2::/129".into()]).is_err());
    }

    #[test]
    fn the_tap_queues_matching_frames_and_counts_what_did_not_fit() {
        use crate::wire::{
            self, EtherType, EthernetAddress, EthernetRepr, SeqNum, TcpFlags, TcpRepr,
        };
        let syn = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(1),
            ack: SeqNum(0),
            flags: TcpFlags::SYN,
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
        let mut buf = vec![0u8; wire::tcp_frame_len(&syn)];
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
        wire::emit_tcp_frame(&mut buf, &eth, a, b, 64, &syn);
        let (tap, shared) = Tap::new(f("dst port 80"), 64, 2);
        for _ in 0..3 {
            tap.frame(Instant::from_millis(1), Dir::In, &buf);
        }
        tap.frame(Instant::from_millis(1), Dir::In, &buf[..20]);
        assert_eq!(shared.queue.len(), 2);
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(shared.matched.load(Ordering::Relaxed), 3);
        let got = shared.queue.pop().unwrap();
        assert_eq!(
            (got.dir, got.len as usize, got.data),
            (Dir::In, buf.len(), buf.clone())
        );
    }
}
