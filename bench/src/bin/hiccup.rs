//! `hiccup`: how often a pinned busy loop loses its core on this machine (hypervisor steal,
//! interrupts, kernel threads), the floor under every busy-polling latency tail. Each core
//! spins reading the monotonic clock for `--secs` and counts the gaps between two reads.
//!
//! `cargo run --release -p xdptcp-bench --bin hiccup -- --secs 5` (no root needed).

use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Cli {
    /// Seconds per core (all cores at once).
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
}

/// Gap thresholds (µs) of the report's columns.
const EDGES_US: [u64; 5] = [10, 20, 50, 100, 1000];

fn spin(core: usize, secs: f64) -> ([u64; 5], Duration) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|v| v.into_iter().nth(core)) {
        core_affinity::set_for_current(id);
    }
    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut last = start;
    let (mut counts, mut lost) = ([0u64; 5], Duration::ZERO);
    while last - start < limit {
        let t = Instant::now();
        let gap = t - last;
        last = t;
        if gap >= Duration::from_micros(EDGES_US[0]) {
            lost += gap;
            for (c, e) in counts.iter_mut().zip(EDGES_US) {
                *c += u64::from(gap >= Duration::from_micros(e));
            }
        }
    }
    (counts, lost)
}

fn main() {
    let cli = Cli::parse();
    let n = core_affinity::get_core_ids().map_or(1, |v| v.len());
    let handles: Vec<_> = (0..n)
        .map(|c| std::thread::spawn(move || spin(c, cli.secs)))
        .collect();
    println!("gaps of a pinned busy loop over {} s:", cli.secs);
    for (c, h) in handles.into_iter().enumerate() {
        let (counts, lost) = h.join().expect("spin thread");
        let cols: Vec<String> = EDGES_US
            .iter()
            .zip(counts)
            .map(|(e, k)| format!(">= {e} us: {k}"))
            .collect();
        println!(
            "core {c}: {}; time lost {:.2} %",
            cols.join(", "),
            lost.as_secs_f64() / cli.secs * 100.0
        );
    }
}
