//! `xdptcp-bench`: scenarios (cps, rr, bulk, conns) in their pairings (stack ↔ stack,
//! Linux ↔ Linux, Linux → stack, stack → Linux) over one veth pair, unmodified servers
//! (nginx, redis) on the kernel and under `xdptcp run` ([`app`]), the physical ceiling of
//! that path (raw AF_XDP frame rates, [`ceiling`]), and the reports (terminal table, JSON,
//! `.hgrm`, PNG). docs/benchmarks.md describes the runs and the targets.

pub mod app;
pub mod app_server;
pub mod ceiling;
pub mod client;
pub mod error;
pub mod flood;
pub mod flood_client;
pub mod http;
pub mod kinds;
pub mod linux_server;
pub mod memattack;
pub mod memory;
pub mod netns;
pub mod nic;
pub mod pairing;
pub mod pktrate;
pub mod plot;
pub mod redis_bench;
pub mod report;
pub mod scenario;
pub mod stack_client;
pub mod synflood;
pub mod sys;
pub mod wrk;

pub use client::progress_line;

use crate::error::{Context, Result};
use pairing::Pairing;
use report::ScenarioResult;
use std::path::{Path, PathBuf};

/// `YYYY-MM-DDTHH-MM-SSZ` (UTC) for a Unix time in seconds.
pub fn stamp(unix: u64) -> String {
    let (days, sod) = (unix / 86400, unix % 86400);
    // Civil-from-days (H. Hinnant's algorithm), valid for dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// A new `results/<date-time>/` under `base`.
pub fn results_dir(base: &Path) -> Result<PathBuf> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let dir = base.join(stamp(now));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

fn file_part(s: &str) -> String {
    s.replace(['/', ' '], "-")
}

/// Writes `table.txt`, `results.json`, one `.hgrm` per latency histogram and one PNG per
/// latency kind (all pairings on one chart). Returns the table.
pub fn write_reports(
    dir: &Path,
    meta: serde_json::Value,
    results: &[ScenarioResult],
    pairings: &[Pairing],
    ceiling: Option<&ceiling::Ceiling>,
) -> Result<String> {
    let mut table = if results.is_empty() {
        String::new()
    } else {
        report::table(results, pairings)
    };
    if let Some(c) = ceiling {
        if !table.is_empty() {
            table.push('\n');
        }
        table.push_str(&report::ceiling_table(c));
    }
    let pkt = ceiling.and_then(|c| pktrate::summary(results, c));
    if let Some((text, _)) = &pkt {
        table.push_str(text);
    }
    std::fs::write(dir.join("table.txt"), &table)?;
    let mut doc = report::to_json(meta, results, ceiling);
    if let Some((_, v)) = pkt {
        doc["packet_rate_vs_ceiling"] = v;
    }
    let json = serde_json::to_string_pretty(&doc)?;
    std::fs::write(dir.join("results.json"), json)?;
    let mut kinds: Vec<(String, String)> = Vec::new();
    for r in results {
        for (name, h) in &r.latencies {
            let f = format!(
                "{}-{}-{}.hgrm",
                file_part(&r.scenario),
                name,
                r.pairing.name()
            );
            std::fs::write(dir.join(f), report::hgrm(h, 1000.0))?;
            let k = (r.scenario.clone(), name.clone());
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
    }
    for (scen, name) in kinds {
        let series: Vec<(String, &hdrhistogram::Histogram<u64>)> = results
            .iter()
            .filter(|r| r.scenario == scen)
            .filter_map(|r| {
                let h = r.latencies.iter().find(|(n, _)| *n == name)?;
                Some((r.pairing.name().to_string(), &h.1))
            })
            .collect();
        let path = dir.join(format!("latency-{}-{name}.png", file_part(&scen)));
        let title = if name == "latency" {
            format!("{scen} latency")
        } else {
            format!("{scen} {name} latency")
        };
        plot::latency_png(&path, &title, &series)?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps() {
        assert_eq!(super::stamp(0), "1970-01-01T00-00-00Z");
        // 2026-11-22 00:24:32 UTC
        assert_eq!(super::stamp(1_795_307_072), "2026-11-22T00-24-32Z");
        assert_eq!(super::stamp(951_782_400), "2000-02-29T00-00-00Z");
    }
}
