//! `xdptcp ss`'s filter, in iproute2 ss's syntax (ss(8) "STATE-FILTER" and "EXPRESSION"):
//!
//! `[state NAME | exclude NAME]... [EXPR]` with EXPR made of `dport OP [:]PORT`,
//! `sport OP [:]PORT`, `dst ADDR`, `src ADDR` (ADDR: `IP`, `IP/LEN`, `IP:PORT`, `:PORT`, `*`),
//! `and` (or `&&`, `&`, or nothing), `or` (`||`, `|`), `not` (`!`) and parentheses; OP is one
//! of `=` `==` `eq` `!=` `ne` `neq` `>` `gt` `<` `lt` `>=` `ge` `<=` `le` (absent: `=`).
//! State names: the TCP states (`established`, `syn-sent`, `syn-recv`, `fin-wait-1`,
//! `fin-wait-2`, `time-wait`, `closed`, `close-wait`, `last-ack`, `listening`, `closing`) and
//! ss's groups `all`, `connected`, `synchronized`, `bucket`, `big`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// ss's socket states (its display names), as bits of a [`StateMask`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsState {
    /// ESTABLISHED (`established`, ss's `ESTAB`).
    Established,
    /// SYN-SENT (`syn-sent`).
    SynSent,
    /// SYN-RECEIVED (`syn-recv`, ss's `SYN-RECV`).
    SynRecv,
    /// FIN-WAIT-1 (`fin-wait-1`).
    FinWait1,
    /// FIN-WAIT-2 (`fin-wait-2`).
    FinWait2,
    /// TIME-WAIT (`time-wait`).
    TimeWait,
    /// CLOSED (`closed`, ss's `UNCONN`).
    Closed,
    /// CLOSE-WAIT (`close-wait`).
    CloseWait,
    /// LAST-ACK (`last-ack`).
    LastAck,
    /// LISTEN (`listening`).
    Listen,
    /// CLOSING (`closing`).
    Closing,
}

impl SsState {
    /// Every state, in bit order.
    pub(crate) const ALL: [SsState; 11] = [
        SsState::Established,
        SsState::SynSent,
        SsState::SynRecv,
        SsState::FinWait1,
        SsState::FinWait2,
        SsState::TimeWait,
        SsState::Closed,
        SsState::CloseWait,
        SsState::LastAck,
        SsState::Listen,
        SsState::Closing,
    ];

    /// The State column (ss's `sstate_name`).
    pub fn column(self) -> &'static str {
        match self {
            SsState::Established => "ESTAB",
            SsState::SynSent => "SYN-SENT",
            SsState::SynRecv => "SYN-RECV",
            SsState::FinWait1 => "FIN-WAIT-1",
            SsState::FinWait2 => "FIN-WAIT-2",
            SsState::TimeWait => "TIME-WAIT",
            SsState::Closed => "UNCONN",
            SsState::CloseWait => "CLOSE-WAIT",
            SsState::LastAck => "LAST-ACK",
            SsState::Listen => "LISTEN",
            SsState::Closing => "CLOSING",
        }
    }

    /// The filter name (ss's `sstate_namel`).
    pub fn filter_name(self) -> &'static str {
        match self {
            SsState::Established => "established",
            SsState::SynSent => "syn-sent",
            SsState::SynRecv => "syn-recv",
            SsState::FinWait1 => "fin-wait-1",
            SsState::FinWait2 => "fin-wait-2",
            SsState::TimeWait => "time-wait",
            SsState::Closed => "closed",
            SsState::CloseWait => "close-wait",
            SsState::LastAck => "last-ack",
            SsState::Listen => "listening",
            SsState::Closing => "closing",
        }
    }

    /// The mask with only this state.
    pub(crate) fn bit(self) -> StateMask {
        StateMask(1 << self as u16)
    }
}

/// A set of states: bit `n` is the [`SsState`] with discriminant `n`, which is Linux's `TCP_*`
/// number minus one (ESTABLISHED = bit 0 .. CLOSING = bit 10); 11 bits used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateMask(pub u16);

impl StateMask {
    /// Every state (ss's `all`).
    pub const ALL: StateMask = StateMask((1 << 11) - 1);
    /// ss's default without `-a`/`-l`: all but listening, closed, time-wait and syn-recv.
    pub const CONN: StateMask = StateMask(
        Self::ALL.0
            & !(1 << SsState::Listen as u16
                | 1 << SsState::Closed as u16
                | 1 << SsState::TimeWait as u16
                | 1 << SsState::SynRecv as u16),
    );
    /// Listeners only (ss's `-l`).
    pub const LISTEN: StateMask = StateMask(1 << SsState::Listen as u16);

    /// Whether `s` is in the set.
    pub fn has(self, s: SsState) -> bool {
        self.0 & s.bit().0 != 0
    }

    /// A state name or group.
    pub fn named(name: &str) -> Option<StateMask> {
        let bits = |v: &[SsState]| StateMask(v.iter().fold(0, |m, s| m | s.bit().0));
        use SsState::*;
        Some(match name {
            "all" => Self::ALL,
            // ss: all but listening and closed.
            "connected" => StateMask(Self::ALL.0 & !bits(&[Listen, Closed]).0),
            // ss: connected but syn-sent.
            "synchronized" => StateMask(Self::ALL.0 & !bits(&[Listen, Closed, SynSent]).0),
            // ss: the minisockets.
            "bucket" => bits(&[SynRecv, TimeWait]),
            "big" => StateMask(Self::ALL.0 & !bits(&[SynRecv, TimeWait]).0),
            "listen" => Self::LISTEN,
            n => {
                return SsState::ALL
                    .into_iter()
                    .find(|s| s.filter_name() == n)
                    .map(SsState::bit)
            }
        })
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`, `==`, `eq`.
    Eq,
    /// `!=`, `ne`, `neq`.
    Ne,
    /// `>`, `gt`.
    Gt,
    /// `<`, `lt`.
    Lt,
    /// `>=`, `ge`, `geq`.
    Ge,
    /// `<=`, `le`, `leq`.
    Le,
}

impl Op {
    fn parse(t: &str) -> Option<Op> {
        Some(match t {
            "=" | "==" | "eq" => Op::Eq,
            "!=" | "ne" | "neq" => Op::Ne,
            ">" | "gt" => Op::Gt,
            "<" | "lt" => Op::Lt,
            ">=" | "ge" | "geq" => Op::Ge,
            "<=" | "le" | "leq" => Op::Le,
            _ => return None,
        })
    }

    fn cmp(self, a: u16, b: u16) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Gt => a > b,
            Op::Lt => a < b,
            Op::Ge => a >= b,
            Op::Le => a <= b,
        }
    }
}

/// An address pattern: prefix and optional port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrPat {
    /// The address (only its first `len` bits count).
    pub net: IpAddr,
    /// Prefix length, 0..=32 for IPv4, 0..=128 for IPv6 (the whole address for a plain
    /// `IP`, 0 for `*` and `:PORT`, which match either family).
    pub len: u8,
    /// The port to match too (`IP:PORT`, `:PORT`); `None`: any port.
    pub port: Option<u16>,
}

impl AddrPat {
    fn matches(&self, a: SocketAddr) -> bool {
        let mask = |bits: u32| match self.len {
            0 => 0,
            l => u128::MAX << (bits - u32::from(l).min(bits)),
        };
        let net = match (self.net, a.ip()) {
            _ if self.len == 0 => true,
            (IpAddr::V4(n), IpAddr::V4(x)) => {
                let m = mask(32) as u32;
                u32::from(n) & m == u32::from(x) & m
            }
            (IpAddr::V6(n), IpAddr::V6(x)) => {
                u128::from(n) & mask(128) == u128::from(x) & mask(128)
            }
            _ => false,
        };
        net && self.port.is_none_or(|p| p == a.port())
    }
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `dport OP PORT`: the peer's port.
    Dport(Op, u16),
    /// `sport OP PORT`: the local port.
    Sport(Op, u16),
    /// `dst [=|!=] ADDR`: the peer's address; `false` for `!=` / `ne`.
    Dst(bool, AddrPat),
    /// `src [=|!=] ADDR`: the local address; `false` for `!=` / `ne`.
    Src(bool, AddrPat),
    /// `not` / `!`.
    Not(Box<Expr>),
    /// `and` / `&&` / `&` / two expressions side by side.
    And(Box<Expr>, Box<Expr>),
    /// `or` / `||` / `|`.
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// `local` / `peer`: the row's addresses (a listener's peer is the unspecified address
    /// of its family, port 0).
    pub fn matches(&self, local: SocketAddr, peer: SocketAddr) -> bool {
        match self {
            Expr::Dport(op, p) => op.cmp(peer.port(), *p),
            Expr::Sport(op, p) => op.cmp(local.port(), *p),
            Expr::Dst(eq, a) => a.matches(peer) == *eq,
            Expr::Src(eq, a) => a.matches(local) == *eq,
            Expr::Not(e) => !e.matches(local, peer),
            Expr::And(a, b) => a.matches(local, peer) && b.matches(local, peer),
            Expr::Or(a, b) => a.matches(local, peer) || b.matches(local, peer),
        }
    }
}

/// A parsed filter: the states asked for (`None`: the flags' default) and an expression.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// From `state` / `exclude` words; `None`: none given.
    pub states: Option<StateMask>,
    /// The expression; `None`: every row.
    pub expr: Option<Expr>,
}

impl Filter {
    /// The states shown: the filter's, or ss's default for `-a` / `-l` / neither.
    pub fn states(&self, all: bool, listening: bool) -> StateMask {
        self.states.unwrap_or(match (all, listening) {
            (true, _) => StateMask::ALL,
            (false, true) => StateMask::LISTEN,
            (false, false) => StateMask::CONN,
        })
    }

    /// Whether a row in state `s` with these addresses is listed, `shown` being
    /// [`Filter::states`]'s answer (a listener's `peer` is 0.0.0.0:0).
    pub fn matches(
        &self,
        shown: StateMask,
        s: SsState,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> bool {
        shown.has(s) && self.expr.as_ref().is_none_or(|e| e.matches(local, peer))
    }
}

/// A filter ss would not take: the one line `xdptcp ss` prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A `state` / `exclude` name that is no state or group.
    #[error("unknown state {0:?} (one of: all, connected, synchronized, bucket, big, established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing)")]
    State(String),
    /// A port that is not a number in 0..=65535.
    #[error("bad port {0:?}")]
    Port(String),
    /// An address pattern that does not parse.
    #[error("bad address {0:?}")]
    Addr(String),
    /// A word that is no keyword or operator where it stands.
    #[error("unexpected {0:?}")]
    Unexpected(String),
    /// A keyword without its operand, or an unclosed parenthesis.
    #[error("the filter ends too early")]
    End,
}

/// Splits words into tokens: parentheses and `!` stand alone.
fn tokens(words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for w in words.iter().flat_map(|w| w.split_whitespace()) {
        let mut cur = String::new();
        for c in w.chars() {
            if c == '(' || c == ')' || (c == '!' && cur.is_empty()) {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            } else {
                cur.push(c);
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    // `!` followed by `=`: the `!=` operator split above.
    let mut merged: Vec<String> = Vec::with_capacity(out.len());
    for t in out {
        if let Some(last) = merged.last_mut() {
            if last == "!" && t.starts_with('=') {
                last.push_str(&t);
                continue;
            }
        }
        merged.push(t);
    }
    merged
}

fn parse_port(t: &str) -> Result<u16, FilterError> {
    t.strip_prefix(':')
        .unwrap_or(t)
        .parse()
        .map_err(|_| FilterError::Port(t.into()))
}

/// `IP`, `IP/LEN`, `IP:PORT`, `IP:*`, `:PORT`, `*`; IPv6 as `[IP6]:PORT`, `[IP6/LEN]`, or a
/// bare `IP6` / `IP6/LEN` (no port: its colons are the address's), as ss takes them.
fn parse_addr(t: &str) -> Result<AddrPat, FilterError> {
    let bad = || FilterError::Addr(t.into());
    let port_of = |p: &str| -> Result<Option<u16>, FilterError> {
        match p {
            "*" => Ok(None),
            p => p.parse().map(Some).map_err(|_| bad()),
        }
    };
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (h, None),
            a => (h, port_of(a.strip_prefix(':').ok_or_else(bad)?)?),
        }
    } else if t.matches(':').count() > 1 {
        (t, None)
    } else {
        match t.rsplit_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (t, None),
        }
    };
    let (net, len): (IpAddr, u8) = match host {
        "" | "*" => (Ipv4Addr::UNSPECIFIED.into(), 0),
        h => {
            let (a, l) = match h.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (h, None),
            };
            let net: IpAddr = a.parse().map_err(|_| bad())?;
            let max = if net.is_ipv6() { 128 } else { 32 };
            let len = match l {
                Some(l) => l.parse().ok().filter(|&l| l <= max).ok_or_else(bad)?,
                None => max,
            };
            (net, len)
        }
    };
    Ok(AddrPat { net, len, port })
}

struct Parser {
    toks: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.toks.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> Result<String, FilterError> {
        let t = self.toks.get(self.at).cloned().ok_or(FilterError::End)?;
        self.at += 1;
        Ok(t)
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.and()?;
        while matches!(self.peek(), Some("or" | "||" | "|")) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.unary()?;
        loop {
            match self.peek() {
                Some("and" | "&&" | "&") => self.at += 1,
                None | Some(")" | "or" | "||" | "|") => return Ok(e),
                Some(_) => {}
            }
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let t = self.next()?;
        match t.as_str() {
            "not" | "!" => Ok(Expr::Not(Box::new(self.unary()?))),
            "(" => {
                let e = self.or()?;
                match self.next()?.as_str() {
                    ")" => Ok(e),
                    other => Err(FilterError::Unexpected(other.into())),
                }
            }
            "dport" | "sport" => {
                let mut v = self.next()?;
                let op = match Op::parse(&v) {
                    Some(op) => {
                        v = self.next()?;
                        op
                    }
                    None => Op::Eq,
                };
                let p = parse_port(&v)?;
                Ok(if t == "dport" {
                    Expr::Dport(op, p)
                } else {
                    Expr::Sport(op, p)
                })
            }
            "dst" | "src" => {
                let mut v = self.next()?;
                let eq = match Op::parse(&v) {
                    Some(op @ (Op::Eq | Op::Ne)) => {
                        v = self.next()?;
                        op == Op::Eq
                    }
                    Some(_) => return Err(FilterError::Unexpected(v)),
                    None => true,
                };
                let a = parse_addr(&v)?;
                Ok(if t == "dst" {
                    Expr::Dst(eq, a)
                } else {
                    Expr::Src(eq, a)
                })
            }
            _ => Err(FilterError::Unexpected(t)),
        }
    }
}

/// Parses ss's filter words (as given on the command line, in any split).
pub fn parse(words: &[String]) -> Result<Filter, FilterError> {
    let mut p = Parser {
        toks: tokens(words),
        at: 0,
    };
    let mut states: Option<StateMask> = None;
    while let Some(kw @ ("state" | "exclude")) = p.peek().map(str::to_string).as_deref() {
        p.at += 1;
        let name = p.next()?;
        let m = StateMask::named(&name).ok_or(FilterError::State(name))?;
        // ss: `exclude` alone starts from all states.
        let cur = states.unwrap_or(if kw == "state" {
            StateMask(0)
        } else {
            StateMask::ALL
        });
        states = Some(if kw == "state" {
            StateMask(cur.0 | m.0)
        } else {
            StateMask(cur.0 & !m.0)
        });
    }
    let expr = if p.peek().is_some() {
        let e = p.or()?;
        if let Some(t) = p.peek() {
            return Err(FilterError::Unexpected(t.into()));
        }
        Some(e)
    } else {
        None
    };
    Ok(Filter { states, expr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(s: &str) -> Filter {
        let words: Vec<String> = s.split(' ').map(str::to_string).collect();
        parse(&words).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// IPv6 rows and patterns (`[IP6]:PORT`, bare `IP6/LEN`); an IPv4 pattern never matches
    /// an IPv6 address, `*` and `:PORT` match either family.
    #[test]
    fn ipv6_patterns() {
        let (l, p) = (sa("[2001:2::1]:80"), sa("[2001:2::2]:40000"));
        assert!(f("src [2001:2::1]:80").expr.unwrap().matches(l, p));
        assert!(f("src 2001:2::1").expr.unwrap().matches(l, p));
        assert!(f("dst 2001:2::/48").expr.unwrap().matches(l, p));
        assert!(f("dst [2001:2::/64]").expr.unwrap().matches(l, p));
        assert!(!f("dst 2001:3::/48").expr.unwrap().matches(l, p));
        assert!(f("dst [2001:2::2]:*").expr.unwrap().matches(l, p));
        assert!(!f("src 198.18.0.1").expr.unwrap().matches(l, p));
        assert!(f("dport = :40000").expr.unwrap().matches(l, p));
        assert!(f("src *:80").expr.unwrap().matches(l, p));
        let (l4, p4) = (sa("198.18.0.1:80"), sa("198.18.0.2:40000"));
        assert!(!f("src 2001:2::1").expr.unwrap().matches(l4, p4));
        assert!(
            f("src ::/0").expr.unwrap().matches(l4, p4),
            "length 0: any address"
        );
        for bad in [
            "src [2001:2::1",
            "src [2001:2::1]80",
            "dst 2001:2::/129",
            "src [1.2.3.4]:x",
        ] {
            let words: Vec<String> = bad.split(' ').map(str::to_string).collect();
            assert!(parse(&words).is_err(), "{bad}");
        }
    }

    #[test]
    fn states_and_groups() {
        assert_eq!(
            f("state established").states,
            Some(SsState::Established.bit())
        );
        let b = f("state bucket").states.unwrap();
        assert!(
            b.has(SsState::TimeWait) && b.has(SsState::SynRecv) && !b.has(SsState::Established)
        );
        let c = f("state connected").states.unwrap();
        assert!(!c.has(SsState::Listen) && !c.has(SsState::Closed) && c.has(SsState::TimeWait));
        let s = f("state synchronized").states.unwrap();
        assert!(!s.has(SsState::SynSent) && s.has(SsState::SynRecv));
        let two = f("state time-wait state syn-recv").states.unwrap();
        assert_eq!(two.0, SsState::TimeWait.bit().0 | SsState::SynRecv.bit().0);
        assert!(!f("exclude listening").states.unwrap().has(SsState::Listen));
        // The defaults of the flags.
        let none = Filter::default();
        assert_eq!(none.states(false, false), StateMask::CONN);
        assert!(!StateMask::CONN.has(SsState::TimeWait));
        assert_eq!(none.states(false, true), StateMask::LISTEN);
        assert_eq!(none.states(true, true), StateMask::ALL);
        assert!(parse(&["state".into(), "bogus".into()]).is_err());
    }

    #[test]
    fn expressions() {
        let (l, p) = (sa("198.18.0.1:80"), sa("198.18.0.2:40000"));
        assert!(f("dport = :40000").expr.unwrap().matches(l, p));
        assert!(!f("dport = :80").expr.unwrap().matches(l, p));
        assert!(f("sport == 80").expr.unwrap().matches(l, p));
        assert!(f("sport >= :1024").expr.is_some_and(|e| !e.matches(l, p)));
        assert!(f("src 198.18.0.1").expr.unwrap().matches(l, p));
        assert!(f("src 198.18.0.0/24:80").expr.unwrap().matches(l, p));
        assert!(f("dst 198.18.0.2:*").expr.unwrap().matches(l, p));
        assert!(!f("dst 198.18.1.0/24").expr.unwrap().matches(l, p));
        assert!(f("( dport = :1 or sport = :80 )")
            .expr
            .unwrap()
            .matches(l, p));
        assert!(f("(dport = :1 or sport = :80)").expr.unwrap().matches(l, p));
        assert!(!f("not sport = :80").expr.unwrap().matches(l, p));
        assert!(!f("!sport = :80").expr.unwrap().matches(l, p));
        assert!(f("sport != :81 and dst 198.18.0.2")
            .expr
            .unwrap()
            .matches(l, p));
        // Implicit `and`.
        assert!(!f("sport = :80 dport = :1").expr.unwrap().matches(l, p));
        let st = f("state established dport = :40000");
        assert!(st.matches(st.states(false, false), SsState::Established, l, p));
        assert!(!st.matches(st.states(false, false), SsState::TimeWait, l, p));
        for bad in [
            "dport = :x",
            "src 1.2.3",
            "( sport = :80",
            "sport = :80 )",
            "dport =",
        ] {
            let words: Vec<String> = bad.split(' ').map(str::to_string).collect();
            assert!(parse(&words).is_err(), "{bad}");
        }
    }
}
