//! `wrk` (the Debian package, 4.1.0) as the real HTTP client of the `http` scenarios: its
//! command line, a Lua `done()` hook that prints exact totals, and the parser of what it
//! prints.
//!
//! wrk's human summary rounds (`22.87MB`, `2.10s`, `59.00us`) and has no p99.9; the
//! [`SCRIPT`] hook prints one `xdptcp-wrk key=value ...` line with the exact request and
//! byte counts, the error counters and the percentiles in microseconds. [`parse`] reads the
//! human summary (which is always there) and lets the hook's line override it when present.
//! A script with only `done` adds no per-request work: wrk calls Lua per request only when
//! the script defines `request` or `response`.

use crate::error::{bail, Context, Result};
use serde::Serialize;

/// The Lua hook, written next to the run's other files and passed with `-s`.
pub const SCRIPT: &str = r#"-- xdptcp-bench: exact totals after wrk's summary (see bench/src/wrk.rs)
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "xdptcp-wrk requests=%d bytes=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d mean=%.3f stdev=%.3f max=%d p50=%d p75=%d p90=%d p99=%d p99.9=%d\n",
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency.mean, latency.stdev, latency.max, latency:percentile(50),
    latency:percentile(75), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
"#;

/// wrk's socket error counters (`Socket errors:` line; absent when all are 0).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl SocketErrors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// Latency (request written to response complete, per connection, closed loop) in µs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    pub mean: f64,
    pub stdev: f64,
    pub max: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p99: f64,
    /// Only from the [`SCRIPT`] line.
    pub p999: Option<f64>,
}

/// What one wrk run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WrkReport {
    pub threads: u64,
    pub connections: u64,
    /// Complete responses.
    pub requests: u64,
    pub seconds: f64,
    /// Bytes read (response heads and bodies).
    pub bytes: f64,
    pub requests_per_s: f64,
    /// Bytes read per second.
    pub transfer_per_s: f64,
    pub latency_us: Latency,
    pub socket_errors: SocketErrors,
    /// Responses with a status other than 2xx/3xx.
    pub non_2xx_3xx: u64,
    /// True when the [`SCRIPT`] line was found (exact counts, p99.9).
    pub exact: bool,
}

/// wrk's command line (after the program name). `secs` is whole seconds (wrk's `-d` takes
/// no fractions); `close` adds `Connection: close`, so every request is a new connection.
pub fn args(
    url: &str,
    threads: usize,
    conns: usize,
    secs: u64,
    close: bool,
    script: &str,
) -> Vec<String> {
    let threads = threads.max(1);
    let mut v: Vec<String> = vec![
        "-t".into(),
        threads.to_string(),
        "-c".into(),
        conns.max(threads).to_string(),
        "-d".into(),
        format!("{}s", secs.max(1)),
        "--latency".into(),
        "--timeout".into(),
        "2s".into(),
        "-s".into(),
        script.into(),
    ];
    if close {
        v.extend(["-H".into(), "Connection: close".into()]);
    }
    v.push(url.into());
    v
}

/// A number with a unit suffix from `units` (suffix, multiplier); longest suffixes first.
fn with_unit(s: &str, units: &[(&str, f64)]) -> Option<f64> {
    let s = s.trim();
    for (suffix, mul) in units {
        if let Some(num) = s.strip_suffix(suffix) {
            if let Ok(v) = num.parse::<f64>() {
                return Some(v * mul);
            }
        }
    }
    None
}

/// wrk's time format (`59.00us`, `5.37ms`, `2.10s`, `1.50m`, `1.00h`) in microseconds.
pub fn time_us(s: &str) -> Option<f64> {
    with_unit(
        s,
        &[
            ("us", 1.0),
            ("ms", 1e3),
            ("s", 1e6),
            ("m", 60e6),
            ("h", 3600e6),
        ],
    )
}

/// wrk's byte format (binary multiples: `22.87MB` = 22.87 × 2^20) in bytes.
pub fn bytes(s: &str) -> Option<f64> {
    with_unit(
        s,
        &[
            ("KB", 1024.0),
            ("MB", 1024.0 * 1024.0),
            ("GB", 1024.0 * 1024.0 * 1024.0),
            ("TB", 1024.0f64.powi(4)),
            ("B", 1.0),
        ],
    )
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &str) -> Result<T> {
    s.and_then(|v| v.trim_end_matches(',').parse().ok())
        .with_context(|| format!("wrk output: bad {what}"))
}

/// Parses wrk's output (`--latency` summary, optional `Socket errors` / `Non-2xx` lines,
/// optional [`SCRIPT`] line). Errors if the summary lines are missing.
pub fn parse(out: &str) -> Result<WrkReport> {
    let mut r = WrkReport::default();
    let (mut have_total, mut have_rate) = (false, false);
    for line in out.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            [t, "threads", "and", c, "connections"] => {
                r.threads = num(Some(t), "threads")?;
                r.connections = num(Some(c), "connections")?;
            }
            ["Latency", mean, stdev, max, _] => {
                r.latency_us.mean = time_us(mean).context("wrk output: latency mean")?;
                r.latency_us.stdev = time_us(stdev).context("wrk output: latency stdev")?;
                r.latency_us.max = time_us(max).context("wrk output: latency max")?;
            }
            [q @ ("50%" | "75%" | "90%" | "99%"), v] => {
                let v = time_us(v).context("wrk output: latency percentile")?;
                match *q {
                    "50%" => r.latency_us.p50 = v,
                    "75%" => r.latency_us.p75 = v,
                    "90%" => r.latency_us.p90 = v,
                    _ => r.latency_us.p99 = v,
                }
            }
            [n, "requests", "in", secs, b, "read"] => {
                r.requests = num(Some(n), "request count")?;
                let secs = secs.trim_end_matches(',');
                r.seconds = time_us(secs).context("wrk output: duration")? / 1e6;
                r.bytes = bytes(b).context("wrk output: bytes read")?;
                have_total = true;
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect N, read N, write N, timeout N
                for pair in rest.chunks(2) {
                    let v: u64 = num(pair.get(1).copied(), "socket error count")?;
                    match pair[0] {
                        "connect" => r.socket_errors.connect = v,
                        "read" => r.socket_errors.read = v,
                        "write" => r.socket_errors.write = v,
                        "timeout" => r.socket_errors.timeout = v,
                        other => bail!("wrk output: unknown socket error kind {other:?}"),
                    }
                }
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => {
                r.non_2xx_3xx = num(Some(n), "non-2xx count")?;
            }
            ["Requests/sec:", v] => {
                r.requests_per_s = num(Some(v), "Requests/sec")?;
                have_rate = true;
            }
            ["Transfer/sec:", v] => {
                r.transfer_per_s = bytes(v).context("wrk output: Transfer/sec")?;
            }
            ["xdptcp-wrk", kvs @ ..] => exact(&mut r, kvs)?,
            _ => {}
        }
    }
    if !(have_total && have_rate) {
        bail!(
            "wrk printed no summary: {}",
            out.lines().last().unwrap_or("(no output)")
        );
    }
    Ok(r)
}

/// The [`SCRIPT`] line's `key=value` pairs override the rounded summary.
fn exact(r: &mut WrkReport, kvs: &[&str]) -> Result<()> {
    let mut duration_us = 0.0;
    for kv in kvs {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("wrk script line: bad field {kv:?}");
        };
        let v: f64 = v
            .parse()
            .with_context(|| format!("wrk script line: bad value in {kv:?}"))?;
        let l = &mut r.latency_us;
        match k {
            "requests" => r.requests = v as u64,
            "bytes" => r.bytes = v,
            "duration_us" => duration_us = v,
            "connect" => r.socket_errors.connect = v as u64,
            "read" => r.socket_errors.read = v as u64,
            "write" => r.socket_errors.write = v as u64,
            "timeout" => r.socket_errors.timeout = v as u64,
            "status" => r.non_2xx_3xx = v as u64,
            "mean" => l.mean = v,
            "stdev" => l.stdev = v,
            "max" => l.max = v,
            "p50" => l.p50 = v,
            "p75" => l.p75 = v,
            "p90" => l.p90 = v,
            "p99" => l.p99 = v,
            "p99.9" => l.p999 = Some(v),
            _ => {} // newer fields: ignored
        }
    }
    if duration_us > 0.0 {
        r.seconds = duration_us / 1e6;
        r.requests_per_s = r.requests as f64 / r.seconds;
        r.transfer_per_s = r.bytes / r.seconds;
    }
    r.exact = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from wrk 4.1.0 against `xdptcp serve --listen 80=http` on this machine.
    const PLAIN: &str = "Running 2s test @ http://198.18.0.1:80/
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    66.32us  132.05us   5.37ms   99.63%
    Req/Sec   138.35k     5.13k  142.92k    85.71%
  Latency Distribution
     50%   59.00us
     75%   62.00us
     90%   65.00us
     99%   96.00us
  288872 requests in 2.10s, 22.87MB read
Requests/sec: 137563.53
Transfer/sec:     10.89MB
";

    #[test]
    fn plain_summary() {
        let r = parse(PLAIN).unwrap();
        assert_eq!((r.threads, r.connections, r.requests), (1, 16, 288_872));
        assert!((r.seconds - 2.10).abs() < 1e-9);
        assert!((r.bytes - 22.87 * 1024.0 * 1024.0).abs() < 1.0);
        assert!((r.requests_per_s - 137_563.53).abs() < 1e-6);
        assert!((r.transfer_per_s - 10.89 * 1024.0 * 1024.0).abs() < 1.0);
        let l = &r.latency_us;
        assert_eq!((l.p50, l.p75, l.p90, l.p99), (59.0, 62.0, 65.0, 96.0));
        assert!((l.mean - 66.32).abs() < 1e-9 && (l.stdev - 132.05).abs() < 1e-9);
        assert!((l.max - 5370.0).abs() < 1e-6);
        assert_eq!(l.p999, None);
        assert_eq!(r.socket_errors, SocketErrors::default());
        assert_eq!((r.non_2xx_3xx, r.exact), (0, false));
    }

    #[test]
    fn errors_and_script_line() {
        let out = format!(
            "{}  Socket errors: connect 3, read 4, write 0, timeout 7\n  Non-2xx or 3xx \
             responses: 5\n{}xdptcp-wrk requests=288873 bytes=23982000 duration_us=2100000 \
             connect=3 read=4 write=1 status=5 timeout=7 mean=66.500 stdev=132.000 max=5371 \
             p50=59 p75=62 p90=65 p99=96 p99.9=1203 future=1\n",
            PLAIN.split("Requests/sec").next().unwrap(),
            "Requests/sec: 137563.53\nTransfer/sec:     10.89MB\n"
        );
        let r = parse(&out).unwrap();
        assert!(r.exact);
        assert_eq!(r.requests, 288_873);
        assert_eq!(r.bytes, 23_982_000.0);
        assert!((r.requests_per_s - 288_873.0 / 2.1).abs() < 1e-6);
        assert_eq!(
            r.socket_errors,
            SocketErrors {
                connect: 3,
                read: 4,
                write: 1,
                timeout: 7
            }
        );
        assert_eq!(r.socket_errors.total(), 15);
        assert_eq!(r.non_2xx_3xx, 5);
        assert_eq!(r.latency_us.p999, Some(1203.0));
        assert_eq!(r.latency_us.max, 5371.0);
    }

    #[test]
    fn units_and_failures() {
        assert_eq!(time_us("1.50m"), Some(90e6));
        assert_eq!(time_us("2.00s"), Some(2e6));
        assert_eq!(time_us("3.5ms"), Some(3500.0));
        assert_eq!(time_us("abc"), None);
        assert_eq!(bytes("512.00B"), Some(512.0));
        assert_eq!(bytes("1.00KB"), Some(1024.0));
        assert_eq!(bytes("2GB"), Some(2.0 * 1024.0 * 1024.0 * 1024.0));
        let e = parse("unable to connect to 198.18.0.1:80 Connection refused\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "wrk printed no summary: unable to connect to 198.18.0.1:80 Connection refused"
        );
        assert!(parse("  Socket errors: connect x, read 0, write 0, timeout 0\n").is_err());
        let close = args("http://h/", 1, 16, 0, true, "/t/s.lua").join(" ");
        assert_eq!(
            close,
            "-t 1 -c 16 -d 1s --latency --timeout 2s -s /t/s.lua -H Connection: close http://h/"
        );
        assert_eq!(
            args("u", 2, 1, 3, false, "s")[..6],
            ["-t", "2", "-c", "2", "-d", "3s"]
        );
    }
}
