//! `xdptcp capture`: tcpdump's `-w FILE [-c COUNT] [-s SNAPLEN] [FILTER]` on a running serve;
//! the frames come as pcapng over the stat socket ([`crate::control::capture`]).

use std::path::PathBuf;

use clap::Args;

use super::{fail, Failure};
use crate::control::{self, capture::CaptureRequest};

#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The interface the serve runs on (default: the one running serve).
    #[arg(long = "iface")]
    pub iface: Option<String>,
    /// The pcapng file to write.
    #[arg(short = 'w', value_name = "FILE")]
    pub file: PathBuf,
    /// Stop after this many frames.
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Bytes kept of each frame (64-2048).
    #[arg(short = 's', value_name = "SNAPLEN", default_value_t = control::capture::SNAPLEN)]
    pub snaplen: u32,
    /// Stop when the file reaches this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 30)]
    pub max_bytes: u64,
    /// tcpdump's filter: `[src|dst] host A`, `[src|dst] port N`, `net A/LEN`, `tcp`,
    /// `and`, `or`, `not`, parentheses.
    #[arg(trailing_var_arg = true, value_name = "FILTER")]
    pub filter: Vec<String>,
}

/// The serve to talk to: `--iface`, or the only one running.
pub fn one_serve(iface: &Option<String>) -> Result<String, Failure> {
    if let Some(i) = iface {
        return Ok(i.clone());
    }
    let r = control::running();
    match r.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(fail(
            1,
            format!("no xdptcp serve running (no {}/*.sock)", control::STAT_DIR),
        )),
        _ => Err(fail(
            2,
            format!(
                "several serves running ({}): choose one with --iface",
                r.join(", ")
            ),
        )),
    }
}

/// `xdptcp capture`.
pub fn run(a: &CaptureArgs) -> Result<(), Failure> {
    let req = CaptureRequest::new(
        a.count.unwrap_or(0),
        a.max_bytes,
        a.snaplen,
        a.filter.clone(),
    )
    .map_err(|e| fail(2, format!("bad filter: {e}")))?;
    let ifname = one_serve(&a.iface)?;
    let mut file = std::fs::File::create(&a.file)
        .map_err(|e| fail(1, format!("{}: {e}", a.file.display())))?;
    let (s, _) =
        control::request_stream(&ifname, &req.line(), None).map_err(|e| fail(1, e.to_string()))?;
    // Ctrl-C / SIGTERM: the serve ends the file with its statistics, and they are printed.
    let mut s = control::capture::Interruptible::new(s, control::stop_on_signals())
        .map_err(|e| fail(1, e.to_string()))?;
    let started = || {
        eprintln!(
            "xdptcp: capturing on {ifname} into {}{}",
            a.file.display(),
            a.count.map_or(String::new(), |c| format!(", {c} frames"))
        )
    };
    let sum = control::capture::receive(&mut s, &mut file, started)
        .map_err(|e| fail(1, e.to_string()))?;
    if s.interrupted() {
        // After the terminal's "^C", as tcpdump.
        eprintln!();
    }
    eprintln!("{}", summary_lines(&sum));
    Ok(())
}

/// What capture prints at its end, as tcpdump does (also after Ctrl-C).
pub fn summary_lines(sum: &control::capture::CaptureSummary) -> String {
    format!(
        "{} packets captured ({} in, {} out)\n{} packets dropped by the stack (queue full)",
        sum.frames, sum.inbound, sum.outbound, sum.dropped
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn summary_like_tcpdump() {
        let sum = crate::control::capture::CaptureSummary {
            frames: 12,
            inbound: 7,
            outbound: 5,
            dropped: 3,
            statistics: 2,
        };
        assert_eq!(
            super::summary_lines(&sum),
            "12 packets captured (7 in, 5 out)\n3 packets dropped by the stack (queue full)"
        );
    }
}
