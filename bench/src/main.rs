//! `xdptcp-bench`: see `xdptcp-bench --help` and scripts/bench.sh.

use anyhow::{bail, Result};
use clap::Parser;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use xdptcp_bench::app::{self, AppOpts, AppScenario};
use xdptcp_bench::http::{HttpOpts, HttpScenario};
use xdptcp_bench::netns::{self, VethNetns};
use xdptcp_bench::nic::NicPlan;
use xdptcp_bench::pairing::Pairing;
use xdptcp_bench::report::ScenarioResult;
use xdptcp_bench::scenario::{self, Opts, Scenario};
use xdptcp_bench::{ceiling, synflood, sys};

/// Benchmarks side by side with the Linux kernel over a veth pair between two namespaces.
#[derive(Parser, Debug)]
#[command(name = "xdptcp-bench", version)]
struct Cli {
    /// Scenarios: groups cps, rr, bulk, conns or names like rr/open, comma-separated; and
    /// `ceiling` (raw AF_XDP frame rates on a veth pair: its own section, not per pairing);
    /// `http` (wrk against nginx and `xdptcp serve --listen 80=http`: http/keepalive,
    /// http/close); `app` (unmodified nginx and redis on the kernel and under `xdptcp run`:
    /// app/nginx-close, app/nginx-keepalive, app/redis); `all` for every scenario. The
    /// default (a few minutes) leaves out bulk/n-up, bulk/n-down and http.
    #[arg(long, default_value = app::DEFAULT_SCENARIOS)]
    scenarios: String,
    /// Pairings, comma-separated (linux-linux-nooff: Linux with offloads off, single-flow
    /// bulk only; stack-linux: the stack client against the Linux server, cps, rr and app
    /// only).
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "linux-linux,linux-linux-nooff,linux-stack,stack-linux,stack-stack"
    )]
    pairings: Vec<Pairing>,
    /// Seconds per scenario run (short: treat 2 s figures as orientation; use 10 for figures).
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Server workers (threads / stack workers) and client threads, one core each.
    #[arg(long)]
    workers: Option<usize>,
    /// A NIC port for the server side (needs --peer-iface; docs/nic.md). Without it the
    /// bench makes its own veth pair.
    #[arg(long)]
    iface: Option<String>,
    /// The port cabled to --iface, moved into the client namespace.
    #[arg(long)]
    peer_iface: Option<String>,
    /// Server workers = NIC queues 0..N, one core each (the veth pair gets N queues).
    #[arg(long)]
    queues: Option<usize>,
    /// Stack servers bind AF_XDP in zero-copy mode (copy mode with a message where the
    /// driver has none, e.g. veth).
    #[arg(long)]
    zero_copy: bool,
    /// http and app/nginx-*: wrk connections (and the stack client's in app/nginx-*).
    #[arg(long, default_value_t = 16)]
    http_conns: usize,
    /// app/redis: redis-benchmark connections (`-c`).
    #[arg(long, default_value_t = 50)]
    redis_clients: usize,
    /// app/redis: redis-benchmark requests per test (`-n`; default 25,000 per second of
    /// --duration).
    #[arg(long)]
    redis_requests: Option<u64>,
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
    /// conns, stack client: local addresses it connects from (198.18.0.2 and N-1 more of
    /// 198.18.0.0/24 added to the client veth; at most 33): ~55,000 4-tuples each.
    #[arg(long, default_value_t = 1)]
    client_addrs: usize,
    /// Bound on operations per client thread.
    #[arg(long, default_value_t = 100_000_000)]
    max_ops: u64,
    /// Stack sides sleep when idle instead of busy-polling (fairer on a shared machine).
    #[arg(long)]
    stack_adaptive_idle: bool,
    /// ceiling: seconds per phase (rx 64 B, rx 1514 B, tx 64 B, tx 1514 B, l2fwd), at most
    /// --duration.
    #[arg(long, default_value_t = 1.0)]
    ceiling_secs: f64,
    /// synflood: legitimate connection attempts per second (open loop).
    #[arg(long, default_value_t = 1000.0)]
    legit_rate: f64,
    /// synflood: flood frames per second at most (default: as fast as the generator goes).
    #[arg(long)]
    flood_rate: Option<f64>,
    /// Run cps, rr and bulk over IPv6 (server 2001:2::1, client 2001:2::2, added with nodad
    /// in the bench's namespaces), the kernel over IPv6 too; the stack server keeps its IPv4
    /// address besides. Default scenarios then: cps,rr,bulk/1-up,bulk/1-down.
    #[arg(long)]
    ipv6: bool,
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
    let mut cli = Cli::parse();
    if cli.ipv6 && cli.scenarios == app::DEFAULT_SCENARIOS {
        cli.scenarios = scenario::DEFAULT_SCENARIOS_IPV6.into();
    }
    if !sys::is_root() {
        bail!("needs root (network namespaces, veth): run it as root");
    }
    let nic = xdptcp_bench::nic::plan(
        cli.iface.as_deref(),
        cli.peer_iface.as_deref(),
        cli.queues,
        cli.workers,
    )?;
    let workers = cli.queues.or(cli.workers).unwrap_or(1).max(1);
    if !(cli.duration > 0.0 && cli.duration <= 3600.0) || cli.rate <= 0.0 {
        bail!("--duration must be in (0, 3600] s and --rate > 0");
    }
    if !(cli.ceiling_secs > 0.0 && cli.ceiling_secs <= 3600.0) {
        bail!("--ceiling-secs must be in (0, 3600] s");
    }
    // `synflood` is its own section (its own veth pair and servers); it brings the ceiling
    // along: its XDP target compares with the ceiling's rx 64 B rate of the same run.
    let (rest, want_flood) = synflood::take_selection(&cli.scenarios);
    let (rest, apps) = app::take_selection(&rest)?;
    let (scenarios, want_ceiling, http) = if rest.is_empty() && (want_flood || !apps.is_empty()) {
        (Vec::new(), want_flood, Vec::new())
    } else {
        let (s, c, h) = xdptcp_bench::http::parse_selection(&rest)?;
        (s, c || want_flood, h)
    };
    if cli.ipv6 {
        let v4_only = want_flood || want_ceiling || !http.is_empty() || !apps.is_empty();
        if v4_only || scenarios.iter().any(|s| !s.runs_over_ipv6()) {
            bail!("--ipv6 runs the cps, rr and bulk scenarios only (e.g. --scenarios cps,rr,bulk)");
        }
    }
    if !(cli.legit_rate > 0.0 && cli.legit_rate <= 1e6) || cli.flood_rate.is_some_and(|r| r <= 0.0)
    {
        bail!("--legit-rate must be in (0, 1e6] and --flood-rate > 0");
    }
    if !http.is_empty() {
        if let Some(m) = xdptcp_bench::http::tools_missing() {
            bail!("{m}");
        }
        let wrk_pairings = [Pairing::LinuxLinux, Pairing::LinuxToStack];
        if !cli.pairings.iter().any(|p| wrk_pairings.contains(p)) {
            bail!("http: wrk is a Linux client: select linux-linux and/or linux-stack");
        }
    }
    let stack_pairing = cli
        .pairings
        .iter()
        .any(|p| matches!(p, Pairing::LinuxToStack | Pairing::StackStack));
    if cli.zero_copy && !stack_pairing {
        bail!("--zero-copy applies to the stack server: select linux-stack or stack-stack");
    }
    let ceiling_phase = Duration::from_secs_f64(cli.ceiling_secs.min(cli.duration));
    let opts = Opts {
        duration: Duration::from_secs_f64(cli.duration),
        workers,
        cps_concurrency: cli.cps_concurrency.max(1),
        rr_conns: cli.rr_conns.max(1),
        rate: cli.rate,
        bulk_flows: cli.bulk_flows.max(1),
        conns: cli.conns.max(1),
        client_addrs: cli.client_addrs.clamp(1, netns::MAX_CLIENT_ADDRS),
        max_ops: cli.max_ops,
        stack_adaptive_idle: cli.stack_adaptive_idle,
    };
    sys::install_signal_handlers();
    let hopts = xdptcp_bench::http::HttpOpts {
        duration: opts.duration,
        workers,
        conns: cli.http_conns.max(1),
        stack_adaptive_idle: opts.stack_adaptive_idle,
        zero_copy: cli.zero_copy,
    };
    let aopts = AppOpts {
        duration: opts.duration,
        workers,
        http_conns: hopts.conns,
        redis_clients: cli.redis_clients.max(1),
        redis_requests: cli
            .redis_requests
            .unwrap_or_else(|| AppOpts::redis_requests_for(opts.duration))
            .max(1),
        stack_adaptive_idle: opts.stack_adaptive_idle,
        max_ops: opts.max_ops,
    };
    let (results, link) = if scenarios.is_empty() && http.is_empty() && apps.is_empty() {
        (Vec::new(), None)
    } else {
        let sel = (&scenarios[..], &http[..], &apps[..]);
        let r = run_pairings(&cli, nic.as_ref(), sel, &opts, &hopts, &aopts)?;
        (r.0, Some(r.1))
    };
    if want_ceiling && nic.is_some() {
        eprintln!("note: the ceiling runs on its own veth pair, not on the NIC ports");
    }
    let flood = want_flood.then(|| {
        synflood::run(&synflood::FloodOpts {
            duration: opts.duration,
            legit_rate: cli.legit_rate,
            flood_rate: cli.flood_rate,
        })
    });
    let ceiling = want_ceiling.then(|| ceiling::run(ceiling_phase));
    let dir = xdptcp_bench::results_dir(&cli.out)?;
    let meta = json!({
        "argv": std::env::args().collect::<Vec<_>>(),
        "duration_s": cli.duration, "workers": opts.workers, "cores": sys::num_cores(),
        "cps_concurrency": opts.cps_concurrency, "rr_conns": opts.rr_conns, "rate": opts.rate,
        "bulk_flows": opts.bulk_flows, "conns": opts.conns, "client_addrs": opts.client_addrs,
        "stack_adaptive_idle": opts.stack_adaptive_idle,
        "family": family(cli.ipv6),
        "link": link,
        "nic": nic.as_ref().map(|n| json!({"iface": n.iface, "peer_iface": n.peer_iface,
            "rx_queues": n.rx_queues})),
        "zero_copy": cli.zero_copy, "http_conns": hopts.conns,
        "redis_clients": aopts.redis_clients, "redis_requests": aopts.redis_requests,
        "ceiling_phase_s": want_ceiling.then_some(ceiling_phase.as_secs_f64()),
        "ceiling_link": "own veth pair (xdptcp_harness::VethPair, checksum offload off), \
            steering program attached, copy-mode AF_XDP on queue 0 of each end",
    });
    let mut table =
        xdptcp_bench::write_reports(&dir, meta, &results, &cli.pairings, ceiling.as_ref())?;
    if !results.is_empty() {
        // Which family the table measured, on its first line (table.txt too).
        let addrs = if cli.ipv6 {
            "server 2001:2::1, client 2001:2::2"
        } else {
            "server 198.18.0.1, client 198.18.0.2"
        };
        table = format!("address family: {} ({addrs})\n{table}", family(cli.ipv6));
        std::fs::write(dir.join("table.txt"), &table)?;
    }
    if let Some(f) = &flood {
        let rx = ceiling
            .as_ref()
            .and_then(|c| c.row("rx", ceiling::SMALL))
            .map(|r| r.mpps * 1e6);
        let t = synflood::table(f, rx);
        std::fs::write(dir.join("synflood.txt"), &t)?;
        let j = serde_json::to_string_pretty(&synflood::to_json(f, rx))?;
        std::fs::write(dir.join("synflood.json"), j)?;
        table = format!("{table}\n{t}");
    }
    println!("{table}");
    if !xdptcp_bench::plot::font_available() {
        eprintln!("note: no DejaVu font found; PNG plots were drawn without text");
    }
    println!("results: {}", dir.display());
    Ok(())
}

/// The address family name of the report (`meta.family`, the table's first line).
fn family(ipv6: bool) -> &'static str {
    if ipv6 {
        "IPv6"
    } else {
        "IPv4"
    }
}

/// Every scenario in every pairing over one veth pair without an XDP program (or the NIC
/// ports of `nic`); returns the results and the link's description.
fn run_pairings(
    cli: &Cli,
    nic: Option<&NicPlan>,
    (scenarios, http, apps): (&[Scenario], &[HttpScenario], &[AppScenario]),
    opts: &Opts,
    hopts: &HttpOpts,
    aopts: &AppOpts,
) -> Result<(Vec<ScenarioResult>, String)> {
    let mut env = match nic {
        Some(plan) => VethNetns::adopt(plan)?,
        None => VethNetns::create_with(opts.workers as u32)?,
    };
    env.zero_copy = cli.zero_copy;
    env.add_client_addrs(opts.client_addrs - 1)?;
    if cli.ipv6 {
        env.add_ipv6()?;
    }
    let ip = |v4: std::net::Ipv4Addr, v6: Option<std::net::Ipv6Addr>| match v6 {
        Some(a) => format!("{a}"),
        None => format!("{v4}"),
    };
    eprintln!(
        "veth {} ({}, {}) <-> {} ({}, {}); {} core(s), {} worker(s) per side",
        env.server_if,
        env.server_ns,
        ip(env.server_ip, env.server_ip6),
        env.client_if,
        env.client_ns,
        ip(env.client_ip, env.client_ip6),
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
    for &h in http {
        // wrk is a Linux client: no stack-stack column; nginx runs with the default offloads.
        let http_pairings = [Pairing::LinuxLinux, Pairing::LinuxToStack];
        for &p in cli.pairings.iter().filter(|p| http_pairings.contains(p)) {
            if sys::stopped() {
                bail!("stopped by signal");
            }
            results.push(xdptcp_bench::http::run_one(&env, p, h, hopts));
        }
    }
    let mut app_port = app::FIRST_PORT;
    for &a in apps {
        let ps: Vec<Pairing> = cli
            .pairings
            .iter()
            .copied()
            .filter(|&p| a.runs(p))
            .collect();
        // A missing program: one line for the scenario, not one per pairing.
        if let (Some(m), Some(&first)) = (a.missing(), ps.first()) {
            eprintln!("{m}");
            results.push(ScenarioResult::failed(a.name(), first, m));
            continue;
        }
        for p in ps {
            if sys::stopped() {
                bail!("stopped by signal");
            }
            results.push(app::run_one(&env, p, a, aopts, app_port));
            app_port += 1;
        }
    }
    Ok((results, env.describe()))
}
