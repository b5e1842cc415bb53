//! The stack's packet rate against the physical ceiling; the target: the stack's packet rate
//! within half of the raw AF_XDP ceiling on the same veth.
//!
//! For every run with an `xdptcp serve` server, the bench reads the server's device counters
//! (frames received from / transmitted to its AF_XDP socket) over the stat socket
//! (`xdptcp stat --json`) before the clients start and after they end; the rate is the
//! difference over the difference of the snapshots' own times (`at_ns`, worker clock), so
//! the snapshots' age (at most ~100 ms) does not skew it. The window includes connection
//! set-up and the clients' final linger, so it slightly understates the steady rate.
//! [`summary`] compares the best rates of a run with the ceiling's rx and tx (64 B) rows.

use crate::ceiling::{Ceiling, CeilingRow};
use crate::kinds::Pairing;
use crate::report::{Metric, ScenarioResult};
use serde_json::{json, Value};

/// Metric names of the server's frame rates (per second).
pub const RX_METRIC: &str = "server rx frames/s";
pub const TX_METRIC: &str = "server tx frames/s";
/// The target: at least this fraction of the ceiling.
pub const TARGET: f64 = 0.5;

/// One worker's device counters at one snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerFrames {
    pub rx: u64,
    pub tx: u64,
    pub at_ns: u64,
}

/// Reads every worker's device frame counters from `xdptcp stat --json` of the serve on
/// `ifname` in namespace `ns`, with the report's `total` object (all counters, for the JSON's
/// details); `None` if it does not answer or the report lacks them.
pub fn snapshot(ns: &str, ifname: &str) -> Option<(Vec<WorkerFrames>, Value)> {
    let ifname = ifname.to_string();
    let text = crate::sys::in_ns(ns, move || xdptcp::control::query(&ifname, true))
        .ok()?
        .ok()?;
    let total = serde_json::from_str::<Value>(&text)
        .ok()?
        .get("total")?
        .clone();
    Some((parse(&text)?, total))
}

/// The per-worker frames of a stat JSON report.
pub fn parse(text: &str) -> Option<Vec<WorkerFrames>> {
    let v: Value = serde_json::from_str(text).ok()?;
    v.get("workers")?
        .as_array()?
        .iter()
        .map(|w| {
            Some(WorkerFrames {
                rx: w.get("dev_rx_frames")?.as_u64()?,
                tx: w.get("dev_tx_frames")?.as_u64()?,
                at_ns: w.get("at_ns")?.as_u64()?,
            })
        })
        .collect()
}

/// (rx, tx) frames per second between two snapshots: each worker's delta over its own
/// snapshot interval, summed over workers. `None` if the snapshots do not match up.
pub fn rates(before: &[WorkerFrames], after: &[WorkerFrames]) -> Option<(f64, f64)> {
    if before.len() != after.len() || before.is_empty() {
        return None;
    }
    let mut rx = 0.0;
    let mut tx = 0.0;
    for (a, b) in before.iter().zip(after) {
        let dt = b.at_ns.checked_sub(a.at_ns).filter(|&d| d > 0)? as f64 / 1e9;
        rx += b.rx.saturating_sub(a.rx) as f64 / dt;
        tx += b.tx.saturating_sub(a.tx) as f64 / dt;
    }
    Some((rx, tx))
}

/// The two metrics of a run, with the raw snapshots for the JSON's details.
pub fn metrics(before: &[WorkerFrames], after: &[WorkerFrames]) -> (Vec<Metric>, Value) {
    let detail = json!({
        "before": before.iter().map(|w| [w.rx, w.tx, w.at_ns]).collect::<Vec<_>>(),
        "after": after.iter().map(|w| [w.rx, w.tx, w.at_ns]).collect::<Vec<_>>(),
        "columns": ["dev_rx_frames", "dev_tx_frames", "at_ns"],
    });
    let m = match rates(before, after) {
        Some((rx, tx)) => vec![
            Metric::new(RX_METRIC, "1/s", rx),
            Metric::new(TX_METRIC, "1/s", tx),
        ],
        None => Vec::new(),
    };
    (m, detail)
}

/// The best rate of `metric` over the stack pairings' runs: (frames/s, scenario, pairing).
/// The frame size of the ceiling row a run is compared with: bulk runs move full-MTU frames
/// (1514 B), every other scenario small ones (64 B rows).
fn frame_class(scenario: &str) -> usize {
    if scenario.starts_with("bulk/") {
        1514
    } else {
        64
    }
}

/// The stack run (server of linux-stack / stack-stack) whose `metric` is the largest fraction
/// of the ceiling row `row` of its frame class: (rate, scenario, pairing, ceiling row).
fn best<'a>(
    results: &'a [ScenarioResult],
    metric: &str,
    ceiling: &'a Ceiling,
    row: &str,
) -> Option<(f64, &'a str, Pairing, &'a CeilingRow)> {
    results
        .iter()
        .filter(|r| matches!(r.pairing, Pairing::LinuxToStack | Pairing::StackStack))
        .filter_map(|r| {
            let m = r.metrics.iter().find(|m| m.name == metric)?;
            let c = ceiling.row(row, frame_class(&r.scenario))?;
            (c.mpps > 0.0).then_some((m.value, r.scenario.as_str(), r.pairing, c))
        })
        .max_by(|a, b| (a.0 / a.3.mpps).total_cmp(&(b.0 / b.3.mpps)))
}

/// The line(s) under the ceiling section and the JSON object: the stack server's best rx and
/// tx frame rates of this run as fractions of the ceiling's rx and tx (64 B) rates, and
/// whether each reaches [`TARGET`]. `None` when nothing to compare.
pub fn summary(results: &[ScenarioResult], ceiling: &Ceiling) -> Option<(String, Value)> {
    let mut text = String::new();
    let mut js = serde_json::Map::new();
    for (dir, metric) in [("rx", RX_METRIC), ("tx", TX_METRIC)] {
        let Some((v, scen, p, c)) = best(results, metric, ceiling, dir) else {
            continue;
        };
        let frac = v / 1e6 / c.mpps;
        let met = frac >= TARGET;
        text.push_str(&format!(
            "stack {dir}: best {:.3} Mpps ({scen}, {}) = {frac:.2} of the ceiling's {dir} {} B \
             {:.3} Mpps: target >= {TARGET} {}\n",
            v / 1e6,
            p.name(),
            c.frame_len,
            c.mpps,
            if met { "met" } else { "missed" }
        ));
        js.insert(
            dir.into(),
            json!({
                "best_mpps": v / 1e6, "scenario": scen, "pairing": p, "frame_len": c.frame_len,
                "ceiling_mpps": c.mpps, "fraction": frac, "target": TARGET, "met": met,
            }),
        );
    }
    (!js.is_empty()).then_some((text, Value::Object(js)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_rates() {
        let a = r#"{"iface":"x","workers":[{"dev_rx_frames":100,"dev_tx_frames":50,"at_ns":1000000000,"worker":0}],"total":{}}"#;
        let b = r#"{"iface":"x","workers":[{"dev_rx_frames":1100,"dev_tx_frames":2050,"at_ns":3000000000,"worker":0}],"total":{}}"#;
        let (a, b) = (parse(a).unwrap(), parse(b).unwrap());
        assert_eq!(
            a,
            [WorkerFrames {
                rx: 100,
                tx: 50,
                at_ns: 1_000_000_000
            }]
        );
        assert_eq!(rates(&a, &b), Some((500.0, 1000.0)));
        assert_eq!(rates(&b, &a), None, "time must move forward");
        assert_eq!(rates(&a, &[]), None);
        assert!(parse("{\"workers\":[{\"dev_rx_frames\":1}]}").is_none());
    }

    #[test]
    fn summary_against_ceiling() {
        let row = |test: &str, frame_len: usize, mpps: f64| CeilingRow {
            test: test.into(),
            frame_len,
            frames: 1,
            missing: 0,
            seconds: 1.0,
            mpps,
            gbps: 0.0,
        };
        let c = Ceiling {
            rows: vec![
                row("rx", 64, 0.8),
                row("rx", 1514, 0.4),
                row("tx", 64, 1.6),
                row("tx", 1514, 1.0),
            ],
            details: Value::Null,
            error: None,
        };
        let run = |scen: &str, p: Pairing, rx: f64, tx: f64| {
            let mut r = ScenarioResult::failed(scen, p, String::new());
            r.metrics = vec![
                Metric::new(RX_METRIC, "1/s", rx),
                Metric::new(TX_METRIC, "1/s", tx),
            ];
            r
        };
        let results = [
            run("rr/closed", Pairing::LinuxLinux, 9e9, 9e9), // never a stack figure
            run(
                "cps/server-close",
                Pairing::StackStack,
                600_000.0,
                400_000.0,
            ),
            // More frames/s than cps, but of full-MTU frames: compared with the 1514 B rows.
            run("bulk/1-up", Pairing::LinuxToStack, 700_000.0, 100_000.0),
        ];
        let (text, js) = summary(&results, &c).unwrap();
        assert!(text.contains("stack rx: best 0.700 Mpps (bulk/1-up, linux-stack) = 1.75 of the ceiling's rx 1514 B 0.400 Mpps: target >= 0.5 met"), "{text}");
        assert!(
            text.contains("stack tx: best 0.400 Mpps (cps/server-close, stack-stack) = 0.25 of the ceiling's tx 64 B 1.600 Mpps: target >= 0.5 missed"),
            "{text}"
        );
        assert_eq!(js["rx"]["met"], true);
        assert_eq!(js["rx"]["frame_len"], 1514);
        assert_eq!(js["tx"]["fraction"], 0.25);
        assert!(summary(&[], &c).is_none());
    }
}
