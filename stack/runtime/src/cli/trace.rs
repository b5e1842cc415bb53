//! `xdptcp trace`: ladder diagrams of live connections ([`crate::control::trace`]).

use std::path::PathBuf;

use clap::Args;

use super::{capture::one_serve, fail, flush_stdout, Failure};
use crate::control::trace;

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The interface the serve runs on (default: the one running serve).
    #[arg(long = "iface")]
    pub iface: Option<String>,
    /// Connections followed at once (others are counted as skipped).
    #[arg(short = 'n', long = "max", default_value_t = 8)]
    pub max: usize,
    /// Stop after this many connections ended.
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Also draw the ladders of the ended connections (at most 32) as an SVG picture.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// tcpdump's filter: `[src|dst] host A`, `[src|dst] port N`, `net A/LEN`, `tcp`,
    /// `and`, `or`, `not`, parentheses.
    #[arg(trailing_var_arg = true, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// `xdptcp trace`.
pub fn run(a: &TraceArgs) -> Result<(), Failure> {
    if a.max == 0 {
        return Err(fail(2, "bad --max 0: at least 1"));
    }
    crate::iface::tap::PktFilter::parse(&a.filter)
        .map_err(|e| fail(2, format!("bad filter: {e}")))?;
    let ifname = one_serve(&a.iface)?;
    let keep = if a.svg.is_some() { 32 } else { 0 };
    let out = trace::follow(
        &ifname,
        a.filter.clone(),
        (a.max, a.count.unwrap_or(0), keep),
        // Ctrl-C / SIGTERM: the summary below still comes, with the serve's drop count.
        crate::control::stop_on_signals(),
        || eprintln!("xdptcp: tracing on {ifname}"),
        |l| {
            println!("{l}");
            flush_stdout();
        },
    )
    .map_err(|e| fail(1, e.to_string()))?;
    if let Some(path) = &a.svg {
        std::fs::write(path, trace::svg(&out.finished))
            .map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
    }
    eprintln!(
        "xdptcp: trace: {} connections skipped ({} segments) while {} were followed; {} frames \
         dropped by the stack",
        out.skipped_connections, out.skipped_segments, a.max, out.dropped
    );
    Ok(())
}
