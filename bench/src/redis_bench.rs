//! `redis-benchmark` (Debian redis-tools 7.0) as the real client of `app/redis`: its command
//! line and the parser of its `--csv` output (one row per test: requests per second and the
//! latency percentiles it measured, in milliseconds with microsecond resolution).

use crate::error::{bail, Context, Result};
use serde::Serialize;

/// One test's row (`SET`, `GET`, ...), latencies in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RedisTest {
    pub test: String,
    pub rps: f64,
    pub avg_us: f64,
    pub min_us: f64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

/// redis-benchmark's command line (after the program name): `clients` connections,
/// `requests` requests per test, `threads` client threads (1: its single event loop),
/// `tests` like `set,get`, CSV output.
pub fn args(
    host: &str,
    port: u16,
    clients: usize,
    requests: u64,
    threads: usize,
    tests: &str,
) -> Vec<String> {
    let mut v: Vec<String> = [
        "-h",
        host,
        "-p",
        &port.to_string(),
        "-c",
        &clients.max(1).to_string(),
        "-n",
        &requests.max(1).to_string(),
        "-t",
        tests,
        "--csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if threads > 1 {
        v.extend(["--threads".into(), threads.to_string()]);
    }
    v
}

/// Removes the CSV quotes of a field.
fn field(s: &str) -> &str {
    s.trim().trim_matches('"')
}

/// Parses the `--csv` output: a header naming the columns, then one row per test. Columns
/// are found by name, so added ones are ignored. Errors if no row is there.
pub fn parse(out: &str) -> Result<Vec<RedisTest>> {
    let mut lines = out.lines().map(str::trim).filter(|l| l.starts_with('"'));
    let Some(head) = lines.next() else {
        bail!("redis-benchmark printed no CSV header: {}", out.trim());
    };
    let cols: Vec<&str> = head.split(',').map(field).collect();
    let at = |name: &str| -> Result<usize> {
        cols.iter()
            .position(|c| *c == name)
            .with_context(|| format!("redis-benchmark CSV: no column {name} in {head}"))
    };
    let idx = [
        at("rps")?,
        at("avg_latency_ms")?,
        at("min_latency_ms")?,
        at("p50_latency_ms")?,
        at("p95_latency_ms")?,
        at("p99_latency_ms")?,
        at("max_latency_ms")?,
    ];
    let test_col = at("test")?;
    let mut v = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').map(field).collect();
        let num = |i: usize| -> Result<f64> {
            let s = f.get(i).copied().unwrap_or("");
            s.parse::<f64>()
                .with_context(|| format!("redis-benchmark CSV: bad number {s:?} in {line}"))
        };
        let ms = |i: usize| num(i).map(|x| x * 1000.0);
        v.push(RedisTest {
            test: f.get(test_col).copied().unwrap_or("").to_string(),
            rps: num(idx[0])?,
            avg_us: ms(idx[1])?,
            min_us: ms(idx[2])?,
            p50_us: ms(idx[3])?,
            p95_us: ms(idx[4])?,
            p99_us: ms(idx[5])?,
            max_us: ms(idx[6])?,
        });
    }
    if v.is_empty() {
        bail!("redis-benchmark printed no result row: {}", out.trim());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from redis-benchmark 7.0.15 against redis-server 7.0 on this machine.
    const CSV: &str = r#""test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","57971.02","0.115","0.024","0.103","0.167","0.239","3.871"
"GET","62695.92","0.105","0.032","0.103","0.151","0.167","4.503"
"#;

    #[test]
    fn csv_rows() {
        let v = parse(CSV).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].test, "SET");
        assert!((v[0].rps - 57971.02).abs() < 1e-9);
        assert!((v[0].p50_us - 103.0).abs() < 1e-9);
        assert!((v[0].p99_us - 239.0).abs() < 1e-9);
        assert!((v[1].max_us - 4503.0).abs() < 1e-9);
        assert_eq!(v[1].test, "GET");
        assert!((v[1].p95_us - 151.0).abs() < 1e-9);
    }

    #[test]
    fn failures_and_args() {
        let e = parse("Could not connect to Redis at 198.18.0.1:6379: Connection refused\n")
            .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("redis-benchmark printed no CSV header"));
        let head = CSV.lines().next().unwrap();
        assert!(parse(head).is_err());
        assert!(parse(&format!(
            "{head}\n\"SET\",\"x\",\"1\",\"1\",\"1\",\"1\",\"1\",\"1\"\n"
        ))
        .is_err());
        assert!(parse("\"test\",\"rps\"\n\"SET\",\"1\"\n").is_err());
        assert_eq!(
            args("198.18.0.1", 6379, 50, 1000, 1, "set,get").join(" "),
            "-h 198.18.0.1 -p 6379 -c 50 -n 1000 -t set,get --csv"
        );
        assert_eq!(
            args("h", 1, 0, 0, 2, "get")[8..],
            ["-t", "get", "--csv", "--threads", "2"]
        );
    }
}
