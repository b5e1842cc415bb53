//! Results and their reports: the side-by-side terminal table (each figure and its ratio to
//! Linux ↔ Linux), JSON, and HdrHistogram `.hgrm` percentile files.

use crate::ceiling::Ceiling;
use crate::kinds::Pairing;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// One scalar figure of a scenario.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    pub value: f64,
}

impl Metric {
    pub fn new(name: &str, unit: &str, value: f64) -> Self {
        Metric {
            name: name.into(),
            unit: unit.into(),
            value,
        }
    }
}

/// The usual percentiles of a latency histogram, in microseconds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Extracts percentiles from a histogram recorded in nanoseconds.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    let us = |ns: u64| ns as f64 / 1000.0;
    Percentiles {
        count: h.len(),
        mean: h.mean() / 1000.0,
        p50: us(h.value_at_quantile(0.5)),
        p90: us(h.value_at_quantile(0.9)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
    }
}

/// What one scenario measured in one pairing, or why it could not run.
pub struct ScenarioResult {
    /// e.g. `cps/client-close`.
    pub scenario: String,
    pub pairing: Pairing,
    pub metrics: Vec<Metric>,
    /// Latency histograms in nanoseconds, by name (e.g. `latency`, `handshake`).
    pub latencies: Vec<(String, Histogram<u64>)>,
    /// Extra measured detail for the JSON (e.g. per-slab-cache deltas).
    pub details: Value,
    pub error: Option<String>,
}

impl ScenarioResult {
    pub fn failed(scenario: &str, pairing: Pairing, error: String) -> Self {
        ScenarioResult {
            scenario: scenario.into(),
            pairing,
            metrics: Vec::new(),
            latencies: Vec::new(),
            details: Value::Null,
            error: Some(error),
        }
    }

    /// The scalar metrics followed by p50/p99/p99.9/max of each latency histogram.
    pub fn table_metrics(&self) -> Vec<Metric> {
        let mut v = self.metrics.clone();
        for (name, h) in &self.latencies {
            let p = percentiles(h);
            for (q, val) in [
                ("p50", p.p50),
                ("p90", p.p90),
                ("p99", p.p99),
                ("p99.9", p.p999),
                ("max", p.max),
            ] {
                v.push(Metric::new(&format!("{name} {q}"), "us", val));
            }
        }
        v
    }
}

/// A number for the table: thousands separators from 1000 up, else 3 significant-ish digits.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The side-by-side table: one row per (scenario, metric), one column per pairing; cells of
/// pairings other than linux-linux carry `(ratio x)` = value / linux-linux value. Errors are
/// listed under the table, once per distinct message.
pub fn table(results: &[ScenarioResult], pairings: &[Pairing]) -> String {
    let mut rows: Vec<(String, String)> = Vec::new(); // (scenario, "metric [unit]")
    for r in results {
        for m in r.table_metrics() {
            let key = (r.scenario.clone(), format!("{} [{}]", m.name, m.unit));
            if !rows.contains(&key) {
                rows.push(key);
            }
        }
    }
    let value = |scen: &str, metric: &str, p: Pairing| -> Option<f64> {
        let r = results
            .iter()
            .find(|r| r.scenario == scen && r.pairing == p)?;
        r.table_metrics()
            .into_iter()
            .find(|m| format!("{} [{}]", m.name, m.unit) == metric)
            .map(|m| m.value)
    };
    let mut cells: Vec<Vec<String>> = vec![{
        let mut h = vec!["scenario".to_string(), "metric".to_string()];
        h.extend(pairings.iter().map(|p| p.name().to_string()));
        h
    }];
    let mut last_scen = String::new();
    for (scen, metric) in &rows {
        let shown = if *scen == last_scen {
            String::new()
        } else {
            scen.clone()
        };
        last_scen = scen.clone();
        let mut line = vec![shown, metric.clone()];
        let base = value(scen, metric, Pairing::LinuxLinux);
        let nooff = value(scen, metric, Pairing::LinuxLinuxNoOffload).filter(|&b| b != 0.0);
        let sl = value(scen, metric, Pairing::StackToLinux).filter(|&b| b != 0.0);
        for &p in pairings {
            // A second ratio: to Linux without offloads (bulk), or for the stack server with
            // the stack client, to the Linux server with the same client (cps, rr, app).
            let second = match p {
                Pairing::LinuxLinuxNoOffload => None,
                Pairing::StackStack => sl.map(|o| (o, "sl")).or(nooff.map(|o| (o, "off"))),
                _ => nooff.map(|o| (o, "off")),
            };
            line.push(match (value(scen, metric, p), base) {
                (None, _) => "n/a".into(),
                (Some(v), Some(b)) if p != Pairing::LinuxLinux && b != 0.0 => match second {
                    Some((o, tag)) => {
                        format!("{} ({:.2}x, {:.2}x {tag})", fmt_num(v), v / b, v / o)
                    }
                    None => format!("{} ({:.2}x)", fmt_num(v), v / b),
                },
                (Some(v), _) => fmt_num(v),
            });
        }
        cells.push(line);
    }
    let ncol = cells[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            cells
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &cells {
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c < 2 {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    if pairings.contains(&Pairing::LinuxLinuxNoOffload)
        && results
            .iter()
            .any(|r| r.pairing == Pairing::LinuxLinuxNoOffload && r.error.is_none())
    {
        let _ = writeln!(
            out,
            "(a.bx, b.by off): ratio to linux-linux, and to linux-linux-nooff (Linux with \
             TSO/GSO/GRO/LRO and checksum offloads off, MTU 1500)"
        );
    }
    let ran = |p: Pairing| results.iter().any(|r| r.pairing == p && r.error.is_none());
    if pairings.contains(&Pairing::StackStack) && ran(Pairing::StackToLinux) {
        let _ = writeln!(
            out,
            "(a.bx, b.by sl): ratio to linux-linux, and to stack-linux (the same stack client \
             against the Linux server: the stack server read against the Linux server)"
        );
    }
    let mut seen: Vec<(Pairing, &str)> = Vec::new();
    for r in results {
        if let Some(e) = &r.error {
            if !seen.contains(&(r.pairing, e.as_str())) {
                seen.push((r.pairing, e));
                // `<scenario> not run: why` is about the scenario (e.g. a missing program),
                // not about the pairing it is filed under.
                if e.starts_with(&format!("{} not run:", r.scenario)) {
                    let _ = writeln!(out, "{e}");
                } else {
                    let _ = writeln!(out, "{}: {e}", r.pairing.name());
                }
            }
        }
    }
    out
}

/// The ceiling section under the pairings' table: one row per phase, frame length, frames
/// counted, Mpps and Gbit/s. An error (e.g. not root) is listed under it.
pub fn ceiling_table(c: &Ceiling) -> String {
    let mut out = String::from(
        "physical ceiling: raw AF_XDP frames on the same veth (copy mode, steering program \
         attached; no TCP)\n",
    );
    let mut cells =
        vec![["test", "frame [B]", "frames", "missing", "Mpps", "Gbit/s"].map(String::from)];
    for r in &c.rows {
        cells.push([
            r.test.clone(),
            r.frame_len.to_string(),
            fmt_num(r.frames as f64),
            fmt_num(r.missing as f64),
            format!("{:.3}", r.mpps),
            format!("{:.2}", r.gbps),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| cells.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in &cells {
        let _ = write!(out, "{:<w$}", row[0], w = widths[0]);
        for (cell, w) in row.iter().zip(&widths).skip(1) {
            let _ = write!(out, "  {cell:>w$}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "rx: sent by an {}; tx: counted by the peer's rx_packets; l2fwd: frames back at the \
         peer ({} in flight at most)",
        crate::ceiling::SENDER,
        crate::ceiling::WINDOW
    );
    if let Some(e) = &c.error {
        let _ = writeln!(out, "ceiling: {e}");
    }
    out
}

/// The JSON document: run metadata and, per scenario × pairing, metrics, latency
/// percentiles (µs), details and error.
pub fn to_json(meta: Value, results: &[ScenarioResult], ceiling: Option<&Ceiling>) -> Value {
    let rs: Vec<Value> = results
        .iter()
        .map(|r| {
            let lat: serde_json::Map<String, Value> = r
                .latencies
                .iter()
                .map(|(n, h)| (n.clone(), json!(percentiles(h))))
                .collect();
            json!({
                "scenario": r.scenario,
                "pairing": r.pairing,
                "metrics": r.metrics,
                "latency_us": lat,
                "details": r.details,
                "error": r.error,
            })
        })
        .collect();
    json!({ "meta": meta, "results": rs, "ceiling": ceiling })
}

/// HdrHistogram's classic percentile distribution text (`outputPercentileDistribution`), values
/// divided by `scale` (1000.0 turns nanoseconds into microseconds).
pub fn hgrm(h: &Histogram<u64>, scale: f64) -> String {
    let mut out = format!(
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let val = v.value_iterated_to() as f64 / scale;
        if q < 1.0 {
            let _ = writeln!(
                out,
                "{val:12.3} {q:2.12} {total:10} {:14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            let _ = writeln!(out, "{val:12.3} {q:2.12} {total:10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / scale,
        h.stdev() / scale
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / scale,
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[u64]) -> Histogram<u64> {
        let mut h = crate::client::new_hist();
        for &v in values {
            h.record(v).unwrap();
        }
        h
    }

    fn res(scen: &str, p: Pairing, cps: f64, lat_ns: &[u64]) -> ScenarioResult {
        ScenarioResult {
            scenario: scen.into(),
            pairing: p,
            metrics: vec![Metric::new("conn/s", "1/s", cps)],
            latencies: vec![("handshake".into(), hist(lat_ns))],
            details: Value::Null,
            error: None,
        }
    }

    #[test]
    fn percentiles_from_1_to_1000_us() {
        let ns: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        let p = percentiles(&hist(&ns));
        assert_eq!(p.count, 1000);
        // 3 significant digits: values are exact to within 0.1%.
        assert!((p.p50 - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p90 - 900.0).abs() <= 0.9, "{p:?}");
        assert!((p.p99 - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.p999 - 999.0).abs() <= 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() <= 1.0, "{p:?}");
        assert!((p.mean - 500.5).abs() <= 0.5, "{p:?}");
    }

    #[test]
    fn number_format() {
        assert_eq!(fmt_num(1234567.4), "1,234,567");
        assert_eq!(fmt_num(999.6), "1000");
        assert_eq!(fmt_num(123.4), "123");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.234), "1.23");
        assert_eq!(fmt_num(-4500.0), "-4,500");
        assert_eq!(fmt_num(f64::NAN), "-");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(7.0), "7");
    }

    #[test]
    fn table_shows_ratio_to_linux_and_errors() {
        let rs = vec![
            res("cps/client-close", Pairing::LinuxLinux, 8000.0, &[10_000]),
            res("cps/client-close", Pairing::StackStack, 40000.0, &[5_000]),
            ScenarioResult::failed("cps/client-close", Pairing::LinuxToStack, "nope".into()),
        ];
        let t = table(
            &rs,
            &[
                Pairing::LinuxLinux,
                Pairing::LinuxToStack,
                Pairing::StackStack,
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "scenario",
                "metric",
                "linux-linux",
                "linux-stack",
                "stack-stack"
            ]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            [
                "cps/client-close",
                "conn/s",
                "[1/s]",
                "8,000",
                "n/a",
                "40,000",
                "(5.00x)"
            ]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["handshake", "p50", "[us]", "10.0", "n/a", "5.00", "(0.50x)"]
        );
        // 1 header + 1 metric + 5 latency rows, then the error line.
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[7], "linux-stack: nope");
        // Columns line up: every row has the same width up to the last cell.
        assert_eq!(lines[1].len(), lines[2].len());
    }

    /// Rows that linux-linux-nooff measured show a second ratio, to it; the legend says so.
    #[test]
    fn table_shows_ratio_to_linux_without_offloads() {
        let bulk = |p, gbps| ScenarioResult {
            scenario: "bulk/1-up".into(),
            pairing: p,
            metrics: vec![Metric::new("throughput", "Gbit/s", gbps)],
            latencies: Vec::new(),
            details: Value::Null,
            error: None,
        };
        let rs = vec![
            bulk(Pairing::LinuxLinux, 30.0),
            bulk(Pairing::LinuxLinuxNoOffload, 5.0),
            bulk(Pairing::StackStack, 6.0),
            res("rr/closed", Pairing::LinuxLinux, 100.0, &[]),
            res("rr/closed", Pairing::StackStack, 200.0, &[]),
        ];
        let ps = [
            Pairing::LinuxLinux,
            Pairing::LinuxLinuxNoOffload,
            Pairing::StackStack,
        ];
        let t = table(&rs, &ps);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0][3], "linux-linux-nooff");
        assert_eq!(
            lines[1],
            [
                "bulk/1-up",
                "throughput",
                "[Gbit/s]",
                "30",
                "5",
                "(0.17x)",
                "6",
                "(0.20x,",
                "1.20x",
                "off)"
            ]
        );
        // Not measured without offloads: one ratio only.
        assert_eq!(
            lines[2],
            [
                "rr/closed",
                "conn/s",
                "[1/s]",
                "100",
                "n/a",
                "200",
                "(2.00x)"
            ]
        );
        assert_eq!(lines.last().unwrap()[..2], ["(a.bx,", "b.by"]);
    }

    #[test]
    fn table_reads_the_stack_server_against_the_linux_server() {
        let rs = vec![
            res("cps/server-close", Pairing::LinuxLinux, 10000.0, &[]),
            res("cps/server-close", Pairing::StackToLinux, 20000.0, &[]),
            res("cps/server-close", Pairing::StackStack, 50000.0, &[]),
        ];
        let ps = [
            Pairing::LinuxLinux,
            Pairing::StackToLinux,
            Pairing::StackStack,
        ];
        let t = table(&rs, &ps);
        let lines: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0][3], "stack-linux");
        // stack-linux: client against client (the server is Linux in both); stack-stack:
        // also server against server (the stack client in both).
        assert_eq!(
            lines[1],
            [
                "cps/server-close",
                "conn/s",
                "[1/s]",
                "10,000",
                "20,000",
                "(2.00x)",
                "50,000",
                "(5.00x,",
                "2.50x",
                "sl)"
            ]
        );
        assert_eq!(lines.last().unwrap()[..2], ["(a.bx,", "b.by"]);
        assert!(t.lines().last().unwrap().contains("stack-linux"));
    }

    #[test]
    fn a_scenario_not_run_is_one_line_without_a_pairing() {
        let why = "app/redis not run: `redis-benchmark` is not installed";
        let rs = vec![
            res("rr/closed", Pairing::LinuxLinux, 1.0, &[]),
            ScenarioResult::failed("app/redis", Pairing::LinuxLinux, why.into()),
            ScenarioResult::failed("rr/closed", Pairing::StackStack, "boom".into()),
        ];
        let t = table(&rs, &[Pairing::LinuxLinux, Pairing::StackStack]);
        let tail: Vec<&str> = t.lines().rev().take(2).collect();
        assert_eq!(tail, ["stack-stack: boom", why]);
    }

    #[test]
    fn json_shape() {
        let rs = vec![
            res("rr/closed", Pairing::LinuxLinux, 1.0, &[2_000, 4_000]),
            ScenarioResult::failed("rr/closed", Pairing::StackStack, "x".into()),
        ];
        let j = to_json(json!({"duration_s": 1}), &rs, None);
        assert_eq!(j["ceiling"], Value::Null);
        assert_eq!(j["meta"]["duration_s"], 1);
        let r0 = &j["results"][0];
        assert_eq!(r0["scenario"], "rr/closed");
        assert_eq!(r0["pairing"], "linux-linux");
        assert_eq!(r0["metrics"][0]["name"], "conn/s");
        assert_eq!(r0["metrics"][0]["value"], 1.0);
        assert_eq!(r0["latency_us"]["handshake"]["count"], 2);
        assert!((r0["latency_us"]["handshake"]["max"].as_f64().unwrap() - 4.0).abs() < 0.01);
        assert_eq!(r0["error"], Value::Null);
        assert_eq!(j["results"][1]["pairing"], "stack-stack");
        assert_eq!(j["results"][1]["error"], "x");
        assert_eq!(j["results"][1]["metrics"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn ceiling_section() {
        use crate::ceiling::CeilingRow;
        let c = Ceiling {
            rows: vec![
                CeilingRow::new("rx", 64, 1_250_000, 1_300_000, 2.0),
                CeilingRow::new("tx", 1514, 2_000_000, 2_000_000, 2.0),
            ],
            details: Value::Null,
            error: Some("stopped".into()),
        };
        let t = ceiling_table(&c);
        let lines: Vec<Vec<&str>> = t
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            lines[0],
            ["test", "frame", "[B]", "frames", "missing", "Mpps", "Gbit/s"]
        );
        assert_eq!(
            lines[1],
            ["rx", "64", "1,250,000", "50,000", "0.625", "0.32"]
        );
        assert_eq!(lines[2], ["tx", "1514", "2,000,000", "0", "1.000", "12.11"]);
        assert_eq!(lines[3][..3], ["rx:", "sent", "by"]);
        assert_eq!(lines[4], ["ceiling:", "stopped"]);
        let j = to_json(Value::Null, &[], Some(&c));
        assert_eq!(j["ceiling"]["rows"][1]["frame_len"], 1514);
        assert_eq!(j["ceiling"]["rows"][0]["mpps"], 0.625);
        assert_eq!(j["ceiling"]["rows"][0]["missing"], 50_000);
        assert_eq!(j["ceiling"]["error"], "stopped");
    }

    #[test]
    fn hgrm_format() {
        let h = hist(&[1_000, 2_000, 3_000, 4_000]);
        let t = hgrm(&h, 1000.0);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines[1], "");
        assert_eq!(
            lines[2],
            "       1.000 0.000000000000          1           1.00"
        );
        let last_data = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        // HdrHistogram reports a bucket's highest equivalent value: 4000 ns is in a 2-ns bucket.
        assert_eq!(*last_data, "       4.001 1.000000000000          4");
        assert!(t.contains("#[Max     =        4.001, Total count    =            4]"));
    }
}
