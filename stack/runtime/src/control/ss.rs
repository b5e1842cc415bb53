//! `xdptcp ss`: the listing of a running serve's sockets in iproute2 ss's format, served
//! over the stat socket (request line `ss FLAGS [FILTER]`, see [`SsRequest`]).
//!
//! The control thread asks each worker in turn for its listing ([`crate::worker::ss`]),
//! receives it in slices through a bounded channel, filters and formats each row and writes
//! it to the client at once: memory stays at a few slices whatever the number of connections,
//! and a slow client slows the listing, not the workers. `-s` is answered from the published
//! snapshots (at most ~100 ms old) without asking the workers.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration as StdDuration;

use super::ss_filter::{self, Filter, FilterError, SsState};
use crate::tcp::endpoint::HistEvent;
use crate::tcp::{ConnInfo, State, Timer};
use crate::worker::ss::{SsMsg, SsRow, SS_CHANNEL};
use crate::worker::{StatsHandle, WorkerSnapshot};

/// How long the control thread waits for a worker's next slice before giving up on it (a
/// worker gives one per loop iteration; only a stopping worker is slower).
const SLICE_WAIT: StdDuration = StdDuration::from_secs(2);

/// How the server's answer to a bad request starts.
pub const ERROR_PREFIX: &str = "xdptcp-error: ";

/// The output flags of `xdptcp ss` (ss's letters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SsFlags {
    /// `-a`: all states (default: connected but not TIME-WAIT / SYN-RECV).
    pub all: bool,
    /// `-l`: listeners only.
    pub listening: bool,
    /// `-o`: timers.
    pub timers: bool,
    /// `-i`: TCP internals.
    pub info: bool,
    /// `-s`: the summary.
    pub summary: bool,
    /// `-H`: no header line.
    pub no_header: bool,
    /// `--json`: JSON, one object per row.
    pub json: bool,
    /// `--history` (with `-i`): each connection's last events.
    pub history: bool,
    /// `-n`: addresses are always numeric; with `-i` rates print in bit/s (`%.0f`) rather
    /// than ss's human-readable `125Gbps`.
    pub numeric: bool,
}

/// A flag's field.
type Field = fn(&mut SsFlags) -> &mut bool;

const LETTERS: [(char, Field); 9] = [
    ('a', |f| &mut f.all),
    ('l', |f| &mut f.listening),
    ('o', |f| &mut f.timers),
    ('i', |f| &mut f.info),
    ('s', |f| &mut f.summary),
    ('H', |f| &mut f.no_header),
    ('j', |f| &mut f.json),
    ('y', |f| &mut f.history),
    ('n', |f| &mut f.numeric),
];

/// One `ss` request: flags and filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsRequest {
    /// The output flags.
    pub flags: SsFlags,
    /// The filter parsed from `words`.
    pub filter: Filter,
    /// The filter's words, as sent.
    pub words: Vec<String>,
}

impl SsRequest {
    /// A request with the filter parsed from ss's `words` (any split; none: ss's default).
    pub fn new(flags: SsFlags, words: Vec<String>) -> Result<SsRequest, FilterError> {
        Ok(SsRequest {
            flags,
            filter: ss_filter::parse(&words)?,
            words,
        })
    }

    /// The request line: `ss FLAGS WORDS...` (`-` for no flags).
    pub fn line(&self) -> String {
        let mut f = self.flags;
        let mut letters: String = LETTERS
            .iter()
            .filter(|(_, get)| *get(&mut f))
            .map(|(c, _)| *c)
            .collect();
        if letters.is_empty() {
            letters.push('-');
        }
        let mut line = format!("ss {letters}");
        for w in &self.words {
            line.push(' ');
            line.push_str(&w.replace(['\n', '\r'], " "));
        }
        line
    }

    /// Parses a request line (after `ss `).
    pub fn parse(rest: &str) -> Result<SsRequest, FilterError> {
        let mut it = rest.split_whitespace();
        let mut flags = SsFlags::default();
        for c in it.next().unwrap_or("-").chars() {
            if let Some((_, get)) = LETTERS.iter().find(|(l, _)| *l == c) {
                *get(&mut flags) = true;
            }
        }
        SsRequest::new(flags, it.map(str::to_string).collect())
    }
}

/// Answers an `ss` request on `out`.
pub fn answer(out: &mut impl Write, req: &SsRequest, handles: &[StatsHandle]) -> io::Result<()> {
    if req.flags.summary {
        let snaps: Vec<WorkerSnapshot> = handles.iter().map(StatsHandle::get).collect();
        return out.write_all(summary(&snaps).as_bytes());
    }
    let shown = req.filter.states(req.flags.all, req.flags.listening);
    if req.flags.json {
        out.write_all(b"[")?;
    } else if !req.flags.no_header {
        out.write_all(header().as_bytes())?;
    }
    let mut first = true;
    let mut line = String::with_capacity(512);
    for h in handles {
        let (tx, rx) = mpsc::sync_channel(SS_CHANNEL);
        h.mailboxes().ss.request(tx);
        while let Ok(SsMsg::Rows(rows)) = rx.recv_timeout(SLICE_WAIT) {
            line.clear();
            for r in &rows {
                let v = View::of(r);
                if !req.filter.matches(shown, v.state, v.local, v.peer) {
                    continue;
                }
                if req.flags.json {
                    line.push_str(if first { "\n" } else { ",\n" });
                    json_row(&mut line, r, &v);
                } else {
                    text_row(&mut line, r, &v, req.flags);
                }
                first = false;
            }
            out.write_all(line.as_bytes())?;
        }
    }
    if req.flags.json {
        out.write_all(b"\n]\n")?;
    }
    Ok(())
}

/// A row's columns.
struct View {
    state: SsState,
    recv_q: u64,
    send_q: u64,
    local: SocketAddr,
    peer: SocketAddr,
}

impl View {
    fn of(r: &SsRow) -> View {
        match *r {
            SsRow::Listener {
                addr,
                port,
                accept_queue,
                backlog,
                ..
            } => View {
                state: SsState::Listen,
                recv_q: accept_queue as u64,
                send_q: backlog as u64,
                local: SocketAddr::new(addr, port),
                peer: SocketAddr::new(
                    match addr {
                        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
                    },
                    0,
                ),
            },
            SsRow::Conn { ref info, .. } => {
                let t = info.tuple;
                // Linux: Recv-Q = rcv_nxt - copied_seq, Send-Q = write_seq - snd_una;
                // both 0 for a request socket (SYN-RECV).
                let queues = info.state != State::SynReceived;
                View {
                    state: ss_state(info.state),
                    recv_q: if queues { info.unread as u64 } else { 0 },
                    send_q: if queues {
                        info.in_flight as u64 + info.unsent as u64
                    } else {
                        0
                    },
                    local: t.local(),
                    peer: t.remote(),
                }
            }
            SsRow::TimeWait { tuple: t, .. } => View {
                state: SsState::TimeWait,
                recv_q: 0,
                send_q: 0,
                local: t.local(),
                peer: t.remote(),
            },
        }
    }
}

fn ss_state(s: State) -> SsState {
    match s {
        State::SynSent => SsState::SynSent,
        State::SynReceived => SsState::SynRecv,
        State::Established => SsState::Established,
        State::FinWait1 => SsState::FinWait1,
        State::FinWait2 => SsState::FinWait2,
        State::CloseWait => SsState::CloseWait,
        State::Closing => SsState::Closing,
        State::LastAck => SsState::LastAck,
        State::TimeWait => SsState::TimeWait,
        State::Closed => SsState::Closed,
    }
}

fn header() -> String {
    format!(
        "{:<10} {:<6} {:<6} {:<21} {:<21}\n",
        "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"
    )
}

fn peer_text(v: &View) -> String {
    if v.state == SsState::Listen {
        match v.local {
            SocketAddr::V4(_) => "0.0.0.0:*".to_string(),
            SocketAddr::V6(_) => "[::]:*".to_string(),
        }
    } else {
        v.peer.to_string()
    }
}

fn text_row(out: &mut String, r: &SsRow, v: &View, flags: SsFlags) {
    let _ = write!(
        out,
        "{:<10} {:<6} {:<6} {:<21} {:<21}",
        v.state.column(),
        v.recv_q,
        v.send_q,
        v.local.to_string(),
        peer_text(v)
    );
    if flags.timers {
        if let Some((name, ms, n)) = timer(r) {
            let _ = write!(out, " timer:({name},{},{n})", ms_timer(ms));
        }
    }
    out.push('\n');
    if flags.info {
        if let SsRow::Conn {
            info, cc, worker, ..
        } = r
        {
            out.push('\t');
            internals(out, info, cc, *worker, crate::clock::now(), flags.numeric);
            if flags.history {
                history(out, info);
            }
            out.push('\n');
        }
    }
}

/// ss's `timer:(NAME,TIME,RETRANS)`: the name Linux reports for the pending timer.
fn timer(r: &SsRow) -> Option<(&'static str, u64, u32)> {
    match r {
        SsRow::TimeWait { left, .. } => Some(("timewait", left.as_millis() as u64, 0)),
        SsRow::Conn { info, .. } => {
            let (t, _) = info.timer?;
            let left = timer_left(info)?;
            let name = match t {
                Timer::Retransmit | Timer::UserTimeout => "on",
                Timer::Persist => "persist",
                // Linux runs the orphaned FIN-WAIT-2 limit on the keepalive timer.
                Timer::Keepalive | Timer::FinWait2 => "keepalive",
                Timer::TimeWait => "timewait",
                // Linux does not report the delayed-ACK timer.
                Timer::DelayedAck => return None,
            };
            let n = if name == "on" { info.retransmits } else { 0 };
            Some((name, left, n))
        }
        SsRow::Listener { .. } => None,
    }
}

/// Milliseconds until the connection's timer fires (the worker's clock is the process's
/// monotonic clock, read here too).
fn timer_left(info: &ConnInfo) -> Option<u64> {
    let (_, at) = info.timer?;
    Some(at.saturating_since(crate::clock::now()).as_millis() as u64)
}

/// iproute2's `print_ms_timer`: `200ms`, `1.204ms` (sic), `59sec`, `1min59sec`.
pub fn ms_timer(ms: u64) -> String {
    let mut secs = ms / 1000;
    let minutes = secs / 60;
    secs %= 60;
    let mut msecs = ms % 1000;
    let mut s = String::new();
    if minutes > 0 {
        msecs = 0;
        let _ = write!(s, "{minutes}min");
        if minutes > 9 {
            secs = 0;
        }
    }
    if secs > 0 {
        if secs > 9 {
            msecs = 0;
        }
        let _ = write!(s, "{secs}{}", if msecs > 0 { "." } else { "sec" });
    }
    if msecs > 0 {
        let _ = write!(s, "{msecs:03}ms");
    }
    s
}

fn ms(d: crate::time::Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

/// Milliseconds with at most 3 decimals and no trailing zeros (ss prints `%g`: `0.12`).
fn ms_g(d: crate::time::Duration) -> String {
    let s = format!("{:.3}", ms(d));
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// iproute2's `sprint_bw` for a rate in bit/s: `%.0f` with `-n`, else 3 significant digits
/// and a unit (`7.28G`, `125G`, `341k`), `%g` below 1000.
pub fn bw(bps: f64, numeric: bool) -> String {
    if numeric {
        return format!("{bps:.0}");
    }
    for (unit, scale) in [("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)] {
        if bps >= scale {
            return format!("{}{unit}", percent_g(bps / scale, 3));
        }
    }
    percent_g(bps, 6)
}

/// C's `%.{p}g`: `p` significant digits, trailing zeros dropped, exponent form outside
/// 1e-4..10^p.
fn percent_g(v: f64, p: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let e = format!("{:.*e}", p - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let x: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if x < -4 || x >= p as i32 {
        let sign = if x < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant), x.abs())
    } else {
        trim(&format!("{:.*}", (p as i32 - 1 - x) as usize, v))
    }
}

/// ss's `send` rate: cwnd (segments) x mss x 8 / SRTT, in bit/s (iproute2 computes it from
/// `tcpi_snd_cwnd`, `tcpi_snd_mss` and `tcpi_rtt` in µs); none before an RTT sample or
/// with an SRTT under 1 µs.
pub fn send_bps(i: &ConnInfo) -> Option<f64> {
    let mss = u32::from(i.negotiated.mss).max(1);
    let segs = i.cwnd?.div_ceil(mss);
    let us = i.srtt?.as_micros();
    (us > 0 && segs > 0).then(|| segs as f64 * mss as f64 * 8e6 / us as f64)
}

/// ss `-i`'s second line; `now` (the worker's clock) for `lastsnd`/`lastrcv`/`lastack`.
fn internals(
    out: &mut String,
    i: &ConnInfo,
    cc: &str,
    worker: usize,
    now: crate::time::Instant,
    numeric: bool,
) {
    let n = &i.negotiated;
    let mss = u32::from(n.mss).max(1);
    let _ = write!(out, " {cc}");
    if n.window_scaling {
        let _ = write!(out, " wscale:{},{}", n.snd_shift, n.rcv_shift);
    }
    if let Some(rto) = i.rto {
        let _ = write!(out, " rto:{}", rto.as_millis());
    }
    if let (Some(srtt), Some(var)) = (i.srtt, i.rttvar) {
        let _ = write!(out, " rtt:{}/{}", ms_g(srtt), ms_g(var));
    }
    let _ = write!(out, " mss:{}", n.mss);
    if let Some(p) = i.pmtu {
        let _ = write!(out, " pmtu:{p}");
    }
    if let Some(cwnd) = i.cwnd {
        let _ = write!(out, " cwnd:{}", cwnd.div_ceil(mss));
    }
    // Linux shows ssthresh only once it is below "infinity".
    if let Some(ss) = i.ssthresh.filter(|&s| s / mss < 0xFFFF) {
        let _ = write!(out, " ssthresh:{}", ss / mss);
    }
    let c = &i.counters;
    let _ = write!(
        out,
        " bytes_sent:{} bytes_acked:{} bytes_received:{} segs_out:{} segs_in:{}",
        c.bytes_out, c.bytes_acked, c.bytes_received, c.segs_out, c.segs_in
    );
    // In iproute2's order, each only when non-zero. No pacing_rate (the stack does not
    // pace) and no delivery_rate (it keeps no delivery-rate sampler).
    if let Some(b) = send_bps(i) {
        let _ = write!(out, " send {}bps", bw(b, numeric));
    }
    let idle = i.activity.idle(now);
    for (name, ms) in [
        ("lastsnd", idle.lastsnd),
        ("lastrcv", idle.lastrcv),
        ("lastack", idle.lastack),
    ] {
        if ms > 0 {
            let _ = write!(out, " {name}:{ms}");
        }
    }
    if i.retransmits > 0 || c.retrans_segs > 0 {
        let _ = write!(out, " retrans:{}/{}", i.retransmits, c.retrans_segs);
    }
    if i.unsent > 0 {
        let _ = write!(out, " notsent:{}", i.unsent);
    }
    if let Some(w) = i.snd_wnd {
        let _ = write!(out, " snd_wnd:{w}");
    }
    if let Some(e) = i.error {
        let _ = write!(out, " error:{e:?}");
    }
    let _ = write!(out, " worker:{worker}");
}

/// ` history:(0ms SYN-RECEIVED,0.2ms ESTABLISHED,1000ms rto#1,...)`: time since the
/// connection's first event; only when the serve records histories (`serve --history`).
fn history(out: &mut String, i: &ConnInfo) {
    let mut first = true;
    for (at, e) in i.history.events() {
        out.push_str(if first { " history:(" } else { "," });
        first = false;
        let _ = write!(out, "{}ms ", ms_g(at));
        let _ = match e {
            HistEvent::State(s) => write!(out, "{}", s.as_str()),
            HistEvent::Rto(n) => write!(out, "rto#{n}"),
            HistEvent::Retransmit(n) => write!(out, "retrans:{n}"),
            HistEvent::WindowProbe => write!(out, "window-probe"),
            HistEvent::Ended(e) => write!(out, "ended:{e}"),
        };
    }
    if !first {
        out.push(')');
    }
}

fn json_row(out: &mut String, r: &SsRow, v: &View) {
    let worker = match r {
        SsRow::Listener { worker, .. }
        | SsRow::Conn { worker, .. }
        | SsRow::TimeWait { worker, .. } => *worker,
    };
    let _ = write!(
        out,
        "{{\"worker\":{worker},\"state\":\"{}\",\"recv_q\":{},\"send_q\":{},\"local\":\"{}\",\"peer\":\"{}\"",
        v.state.column(),
        v.recv_q,
        v.send_q,
        v.local,
        peer_text(v)
    );
    if let Some((name, ms, n)) = timer(r) {
        let _ = write!(
            out,
            ",\"timer\":{{\"name\":\"{name}\",\"ms\":{ms},\"retrans\":{n}}}"
        );
    }
    if let SsRow::Conn { info: i, cc, .. } = r {
        let n = &i.negotiated;
        let c = &i.counters;
        let opt = |d: Option<crate::time::Duration>| {
            d.map_or("null".to_string(), |d| format!("{:.3}", ms(d)))
        };
        let idle = i.activity.idle(crate::clock::now());
        let _ = write!(
            out,
            ",\"lastsnd_ms\":{},\"lastrcv_ms\":{},\"lastack_ms\":{},\"send_bps\":{}",
            idle.lastsnd,
            idle.lastrcv,
            idle.lastack,
            send_bps(i).map_or("null".into(), |b| format!("{b:.0}"))
        );
        let _ = write!(
            out,
            ",\"cc\":\"{cc}\",\"mss\":{},\"wscale\":[{},{}],\"rto_ms\":{},\"rtt_ms\":{},\"rttvar_ms\":{},\
             \"cwnd\":{},\"ssthresh\":{},\"bytes_sent\":{},\"bytes_acked\":{},\"bytes_received\":{},\
             \"segs_out\":{},\"segs_in\":{},\"retransmits\":{},\"total_retrans\":{},\"unread\":{},\
             \"unsent\":{},\"in_flight\":{}",
            n.mss,
            n.snd_shift,
            n.rcv_shift,
            opt(i.rto),
            opt(i.srtt),
            opt(i.rttvar),
            i.cwnd.map_or("null".into(), |v| v.to_string()),
            i.ssthresh.map_or("null".into(), |v| v.to_string()),
            c.bytes_out,
            c.bytes_acked,
            c.bytes_received,
            c.segs_out,
            c.segs_in,
            i.retransmits,
            c.retrans_segs,
            i.unread,
            i.unsent,
            i.in_flight
        );
    }
    out.push('}');
}

/// `-s`: ss's summary of the TCP line, from the snapshots.
pub fn summary(snaps: &[WorkerSnapshot]) -> String {
    let mut c = crate::tcp::endpoint::StateCounts::default();
    for s in snaps {
        let t = &s.states;
        c.listen += t.listen;
        c.syn_sent += t.syn_sent;
        c.syn_received += t.syn_received;
        c.established += t.established;
        c.fin_wait1 += t.fin_wait1;
        c.fin_wait2 += t.fin_wait2;
        c.close_wait += t.close_wait;
        c.closing += t.closing;
        c.last_ack += t.last_ack;
        c.time_wait += t.time_wait;
        c.closed += t.closed;
        c.orphans += t.orphans;
    }
    let total = c.listen
        + c.syn_sent
        + c.syn_received
        + c.established
        + c.fin_wait1
        + c.fin_wait2
        + c.close_wait
        + c.closing
        + c.last_ack
        + c.time_wait
        + c.closed;
    format!(
        "Total: {total}\n\
         TCP:   {total} (estab {}, closed {}, orphaned {}, timewait {})\n\
         \n\
         Transport Total     IP        IPv6\n\
         TCP       {:<9} {:<9} 0\n\
         \n\
         listen {} syn-sent {} syn-recv {} estab {} fin-wait-1 {} fin-wait-2 {} close-wait {} \
         closing {} last-ack {} time-wait {} closed {}\n",
        c.established,
        c.closed,
        c.orphans,
        c.time_wait,
        total - c.closed,
        total - c.closed,
        c.listen,
        c.syn_sent,
        c.syn_received,
        c.established,
        c.fin_wait1,
        c.fin_wait2,
        c.close_wait,
        c.closing,
        c.last_ack,
        c.time_wait,
        c.closed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_prints_like_percent_g() {
        use crate::time::Duration;
        assert_eq!(ms_g(Duration::from_micros(120)), "0.12");
        assert_eq!(ms_g(Duration::from_millis(7)), "7");
        assert_eq!(ms_g(Duration::from_micros(7749)), "7.749");
    }

    /// iproute2's `sprint_bw`, on values from a Linux `ss -ti` / `ss -tni` (iproute2 6.1).
    #[test]
    fn rates_print_like_iproute2() {
        assert_eq!(bw(125_373_217_391.0, false), "125G");
        assert_eq!(bw(7_281_777_776.0, false), "7.28G");
        assert_eq!(bw(340_531_187_816.0, false), "341G");
        assert_eq!(bw(125_373_217_391.0, true), "125373217391");
        assert_eq!(bw(1_500_000.0, false), "1.5M");
        assert_eq!(bw(999_600.0, false), "1e+03k"); // C's %.3g rounds up into exponent form
        assert_eq!(bw(12_000.0, false), "12k");
        assert_eq!(bw(800.0, false), "800");
        assert_eq!(bw(2.5e12, false), "2.5T");
    }

    /// The `-i` line on a fixed connection: `send` = 10 x 1448 x 8 / 120 µs, the `last*`
    /// fields as ms since each stamp (a zero one is left out, as in ss).
    #[test]
    fn internals_show_rates_and_activity() {
        use crate::tcp::{Activity, ConnCounters, Negotiated};
        use crate::time::{Duration, Instant};
        use crate::wire::SeqNum;
        let t = crate::tcp::FourTuple::new(
            std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7),
            std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000),
        );
        let now = Instant::from_secs(5000);
        let stamp = |ms_ago: u64| Instant::from_millis(5_000_000 - ms_ago).ms_stamp();
        let i = ConnInfo {
            state: State::Established,
            tuple: t,
            error: None,
            negotiated: Negotiated {
                mss: 1448,
                ..Negotiated::default()
            },
            iss: SeqNum(0),
            snd_una: SeqNum(1),
            snd_nxt: SeqNum(1),
            rcv_nxt: Some(SeqNum(1)),
            snd_wnd: Some(65535),
            srtt: Some(Duration::from_micros(120)),
            rttvar: Some(Duration::from_micros(50)),
            rto: Some(Duration::from_millis(200)),
            cwnd: Some(10 * 1448),
            ssthresh: Some(u32::MAX),
            pmtu: Some(1500),
            retransmits: 0,
            in_flight: 0,
            unread: 0,
            unsent: 0,
            send_capacity: 0,
            tx_limit: None,
            timer: None,
            counters: ConnCounters::default(),
            history: Default::default(),
            activity: Activity {
                data_sent: stamp(524),
                data_recv: stamp(824),
                ack_recv: now.ms_stamp(),
            },
        };
        let mut out = String::new();
        internals(&mut out, &i, "cubic", 1, now, true);
        assert_eq!(
            out,
            " cubic rto:200 rtt:0.12/0.05 mss:1448 pmtu:1500 cwnd:10 bytes_sent:0 bytes_acked:0 \
             bytes_received:0 segs_out:0 segs_in:0 send 965333333bps lastsnd:524 lastrcv:824 \
             snd_wnd:65535 worker:1"
        );
        out.clear();
        internals(&mut out, &i, "cubic", 1, now, false);
        assert!(out.contains(" send 965Mbps lastsnd:524 "), "{out}");
        assert_eq!(send_bps(&ConnInfo { srtt: None, ..i }), None);
    }

    #[test]
    fn timers_print_like_iproute2() {
        assert_eq!(ms_timer(200), "200ms");
        assert_eq!(ms_timer(1204), "1.204ms");
        assert_eq!(ms_timer(59_000), "59sec");
        assert_eq!(ms_timer(59_400), "59sec");
        assert_eq!(ms_timer(119_000), "1min59sec");
        assert_eq!(ms_timer(600_000), "10min");
    }

    #[test]
    fn request_line_round_trips() {
        let flags = SsFlags {
            all: true,
            timers: true,
            no_header: true,
            ..SsFlags::default()
        };
        let words = vec![
            "state".to_string(),
            "time-wait".into(),
            "dport = :80".into(),
        ];
        let r = SsRequest::new(flags, words).unwrap();
        assert_eq!(r.line(), "ss aoH state time-wait dport = :80");
        let h = SsFlags {
            info: true,
            history: true,
            ..SsFlags::default()
        };
        assert_eq!(SsRequest::parse("iy").unwrap().flags, h);
        let back = SsRequest::parse(r.line().strip_prefix("ss ").unwrap()).unwrap();
        assert_eq!(back.flags, flags);
        assert_eq!(back.filter, r.filter);
        let none = SsRequest::new(SsFlags::default(), vec![]).unwrap();
        assert_eq!(none.line(), "ss -");
    }
}
