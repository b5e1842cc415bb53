//! `xdptcp-bench`: see `xdptcp-bench --help` and scripts/bench.sh.

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use xdptcp_bench::netns::VethNetns;
use xdptcp_bench::pairing::Pairing;
use xdptcp_bench::report::ScenarioResult;
use xdptcp_bench::scenario::{self, Opts, Scenario};
use xdptcp_bench::{ceiling, sys};

/// Benchmarks side by side with the Linux kernel over a veth pair between two namespaces.
#[derive(Parser, Debug)]
#[command(name = "xdptcp-bench", version)]
struct Cli {
    /// Scenarios: groups cps, rr, bulk, conns or names like rr/open, comma-separated; and
    /// `ceiling` (raw AF_XDP frame rates on a veth pair: its own section, not per pairing).
    #[arg(long, default_value = "cps,rr,bulk,conns,ceiling")]
    scenarios: String,
    /// Pairings, comma-separated (linux-linux-nooff: Linux with offloads off, single-flow
    /// bulk only).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "linux-linux,linux-linux-nooff,linux-stack,stack-stack"
    )]
    pairings: Vec<Pairing>,
    /// Seconds per scenario run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Server workers (threads / stack workers) and client threads, one core each.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// A real NIC for hardware runs (not implemented yet).
    #[arg(long)]
    iface: Option<String>,
    /// cps: connection attempts in flight (all client threads together).
    #[arg(long, default_value_t = 32)]
    cps_concurrency: usize,
    /// rr: persistent connections.
    #[arg(long, default_value_t = 8)]
    rr_conns: usize,
    /// rr/open: offered requests per second (all connections together).
    #[arg(long, default_value_t = 10000.0)]
    rate: f64,
    /// bulk/n-*: flows.
    #[arg(long, default_value_t = 4)]
    bulk_flows: usize,
    /// conns: idle connections to hold.
    #[arg(long, default_value_t = 1000)]
    conns: usize,
    /// Bound on operations per client thread.
    #[arg(long, default_value_t = 100_000_000)]
    max_ops: u64,
    /// Stack sides sleep when idle instead of busy-polling (fairer on a shared machine).
    #[arg(long)]
    stack_adaptive_idle: bool,
    /// ceiling: seconds per phase (rx 64 B, rx 1514 B, tx 64 B, tx 1514 B, l2fwd), at most
    /// --duration.
    #[arg(long, default_value_t = 2.0)]
    ceiling_secs: f64,
    /// Folder under which results/<date-time>/ is created.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("xdptcp-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    if !sys::is_root() {
        bail!("needs root (network namespaces, veth): run it as root");
    }
    if let Some(ifn) = &cli.iface {
        bail!("--iface {ifn}: NIC runs are not implemented yet (issue 6 item 5)");
    }
    if !(cli.duration > 0.0 && cli.duration <= 3600.0) || cli.rate <= 0.0 {
        bail!("--duration must be in (0, 3600] s and --rate > 0");
    }
    if !(cli.ceiling_secs > 0.0 && cli.ceiling_secs <= 3600.0) {
        bail!("--ceiling-secs must be in (0, 3600] s");
    }
    let (scenarios, want_ceiling) = scenario::parse_selection(&cli.scenarios)?;
    let ceiling_phase = Duration::from_secs_f64(cli.ceiling_secs.min(cli.duration));
    let opts = Opts {
        duration: Duration::from_secs_f64(cli.duration),
        workers: cli.workers.max(1),
        cps_concurrency: cli.cps_concurrency.max(1),
        rr_conns: cli.rr_conns.max(1),
        rate: cli.rate,
        bulk_flows: cli.bulk_flows.max(1),
        conns: cli.conns.max(1),
        max_ops: cli.max_ops,
        stack_adaptive_idle: cli.stack_adaptive_idle,
    };
    sys::install_signal_handlers();
    let results = if scenarios.is_empty() {
        Vec::new()
    } else {
        run_pairings(&cli, &scenarios, &opts)?
    };
    let ceiling = want_ceiling.then(|| ceiling::run(ceiling_phase));
    let dir = xdptcp_bench::results_dir(&cli.out)?;
    let meta = json!({
        "argv": std::env::args().collect::<Vec<_>>(),
        "duration_s": cli.duration, "workers": opts.workers, "cores": sys::num_cores(),
        "cps_concurrency": opts.cps_concurrency, "rr_conns": opts.rr_conns, "rate": opts.rate,
        "bulk_flows": opts.bulk_flows, "conns": opts.conns,
        "stack_adaptive_idle": opts.stack_adaptive_idle,
        "link": "veth between two network namespaces, no XDP program, offloads on",
        "ceiling_phase_s": want_ceiling.then_some(ceiling_phase.as_secs_f64()),
        "ceiling_link": "own veth pair (xdptcp::harness::VethPair, checksum offload off), \
            steering program attached, copy-mode AF_XDP on queue 0 of each end",
    });
    let table = xdptcp_bench::write_reports(&dir, meta, &results, &cli.pairings, ceiling.as_ref())?;
    println!("{table}");
    if !xdptcp_bench::plot::font_available() {
        eprintln!("note: no DejaVu font found; PNG plots were drawn without text");
    }
    println!("results: {}", dir.display());
    Ok(())
}

/// Every scenario in every pairing over one veth pair without an XDP program.
fn run_pairings(cli: &Cli, scenarios: &[Scenario], opts: &Opts) -> Result<Vec<ScenarioResult>> {
    let env = VethNetns::create()?;
    eprintln!(
        "veth {} ({}, {}) <-> {} ({}, {}); {} core(s), {} worker(s) per side",
        env.server_if,
        env.server_ns,
        env.server_ip,
        env.client_if,
        env.client_ns,
        env.client_ip,
        sys::num_cores(),
        opts.workers
    );
    let mut results = Vec::new();
    let mut port = 5001u16;
    for &scen in scenarios {
        for &p in cli.pairings.iter().filter(|p| p.runs(scen)) {
            if sys::stopped() {
                bail!("stopped by signal");
            }
            results.push(scenario::run_one(&env, p, scen, opts, port));
            port = port.wrapping_add(1).max(5001);
        }
    }
    Ok(results)
}
