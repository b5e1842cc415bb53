//! `xdptcp ss`: flags and filter in iproute2 ss's spelling; the listing is streamed from the
//! serve's stat socket to stdout ([`crate::control::ss`]).

use std::io::Write;

use clap::Args;

use super::{fail, flush_stdout, Failure};
use crate::control::{self, ss::SsFlags, ss::SsRequest, ss::ERROR_PREFIX};

#[derive(Debug, Args)]
pub struct SsArgs {
    /// TCP sockets (the only kind the stack has; accepted for ss's spelling).
    #[arg(short = 't', long = "tcp")]
    pub tcp: bool,
    /// All states (default: connected sockets without TIME-WAIT and SYN-RECV).
    #[arg(short = 'a', long = "all")]
    pub all: bool,
    /// Numeric addresses and ports (always numeric), and with -i rates in bit/s.
    #[arg(short = 'n', long = "numeric")]
    pub numeric: bool,
    /// Listening sockets only (Recv-Q: accept queue, Send-Q: backlog).
    #[arg(short = 'l', long = "listening")]
    pub listening: bool,
    /// Timers: timer:(NAME,TIME,RETRANS).
    #[arg(short = 'o', long = "options")]
    pub timers: bool,
    /// TCP internals (congestion control, RTT, cwnd, counters) on a second line.
    #[arg(short = 'i', long = "info")]
    pub info: bool,
    /// Summary (per-state counts).
    #[arg(short = 's', long = "summary")]
    pub summary: bool,
    /// No header line.
    #[arg(short = 'H', long = "no-header")]
    pub no_header: bool,
    /// JSON: an array with one object per socket.
    #[arg(long)]
    pub json: bool,
    /// With -i: each connection's last events (state changes, RTOs, retransmissions, window
    /// probes, how it ended); the serve must run with --history.
    #[arg(long)]
    pub history: bool,
    /// The interface the serve runs on (default: every running serve).
    #[arg(long = "iface")]
    pub iface: Option<String>,
    /// ss's filter: `[state NAME]... [dport = :PORT] [src ADDR[/LEN][:PORT]] [and|or|not ...]`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "FILTER"
    )]
    pub filter: Vec<String>,
}

/// `xdptcp ss`.
pub fn run(a: &SsArgs) -> Result<(), Failure> {
    let flags = SsFlags {
        all: a.all,
        listening: a.listening,
        timers: a.timers,
        info: a.info,
        summary: a.summary,
        no_header: a.no_header,
        json: a.json,
        history: a.history,
        numeric: a.numeric,
    };
    let mut req =
        SsRequest::new(flags, a.filter.clone()).map_err(|e| fail(2, format!("bad filter: {e}")))?;
    let ifaces = match &a.iface {
        Some(i) => vec![i.clone()],
        None => {
            let r = control::running();
            if r.is_empty() {
                return Err(fail(
                    1,
                    format!("no xdptcp serve running (no {}/*.sock)", control::STAT_DIR),
                ));
            }
            r
        }
    };
    let stdout = std::io::stdout();
    for (n, i) in ifaces.iter().enumerate() {
        let mut out = Checked::new(stdout.lock());
        control::query_stream(i, &req.line(), &mut out).map_err(|e| fail(1, e.to_string()))?;
        if let Some(e) = out.error {
            return Err(fail(1, e));
        }
        // One header for all serves.
        if n == 0 {
            req.flags.no_header = true;
        }
    }
    flush_stdout();
    Ok(())
}

/// Passes the answer through, holding back a server error line.
struct Checked<W: Write> {
    out: W,
    first: bool,
    error: Option<String>,
}

impl<W: Write> Checked<W> {
    fn new(out: W) -> Self {
        Checked {
            out,
            first: true,
            error: None,
        }
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::mem::take(&mut self.first) {
            if let Some(e) = buf.strip_prefix(ERROR_PREFIX.as_bytes()) {
                self.error = Some(String::from_utf8_lossy(e).trim().to_string());
            }
        }
        if self.error.is_some() {
            return Ok(buf.len());
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
