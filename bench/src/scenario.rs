//! Scenarios and how one runs in one pairing: start the pairing's server in the server
//! namespace, run the client threads in the client namespace, turn outcomes into metrics.

use crate::client::{self, ClientCfg, Outcome, Progress};
use crate::error::{bail, format_err, Result};
pub use crate::kinds::Scenario;
use crate::kinds::{ClientKind, Pairing};
use crate::memattack;
use crate::memory;
use crate::netns::VethNetns;
use crate::pairing::ServerHandle;
use crate::report::{Metric, ScenarioResult};
use crate::stack_client::{self, HoldReport, Mode, StackClientCfg};
use crate::sys;
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// The default `--scenarios` (about a minute with the default 2 s runs and three pairings):
/// every group, the single-flow bulk runs only. `all` selects everything.
pub const DEFAULT_SCENARIOS: &str = "cps,rr,bulk/1-up,bulk/1-down,conns,ceiling";

/// The default `--scenarios` with `--ipv6`: the IPv4 default's cps, rr and single-flow bulk
/// runs (what [`Scenario::runs_over_ipv6`] allows of it).
pub const DEFAULT_SCENARIOS_IPV6: &str = "cps,rr,bulk/1-up,bulk/1-down";

/// Splits a `--scenarios` list into the pairing scenarios and whether the `ceiling` (its own
/// section, not run per pairing) was asked for. `all` = every scenario and the ceiling.
pub fn parse_selection(list: &str) -> Result<(Vec<Scenario>, bool)> {
    let mut ceiling = false;
    let mut all = false;
    let rest: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| {
            let c = *s == "ceiling";
            ceiling |= c;
            all |= *s == "all";
            !c && *s != "all"
        })
        .collect();
    let mut v = Scenario::parse_list(&rest.join(","))?;
    if all {
        ceiling = true;
        v = Scenario::ALL.to_vec();
    }
    if v.is_empty() && !ceiling {
        bail!("no scenario selected");
    }
    Ok((v, ceiling))
}

/// Knobs of a run (the binary's flags).
#[derive(Clone, Debug)]
pub struct Opts {
    pub duration: Duration,
    pub workers: usize,
    pub cps_concurrency: usize,
    pub rr_conns: usize,
    pub rate: f64,
    pub bulk_flows: usize,
    pub conns: usize,
    /// `conns` with the stack client: local addresses to connect from (`--client-addrs`).
    pub client_addrs: usize,
    /// Bound on operations per client thread (connections or requests).
    pub max_ops: u64,
    /// The stack sides sleep when idle (`xdptcp serve --adaptive-idle`, and the stack
    /// client likewise) instead of busy-polling: on a shared, oversubscribed machine a
    /// busy-polling thread loses the scheduler's wake-up preference that sleeping Linux
    /// threads get.
    pub stack_adaptive_idle: bool,
}

/// Runs one scenario in one pairing; any error becomes the result's `error`.
pub fn run_one(
    env: &VethNetns,
    pairing: Pairing,
    scen: Scenario,
    opts: &Opts,
    port: u16,
) -> ScenarioResult {
    match run_inner(env, pairing, scen, opts, port) {
        Ok(r) => r,
        Err(e) => ScenarioResult::failed(scen.name(), pairing, format!("{e:#}")),
    }
}

fn run_inner(
    env: &VethNetns,
    pairing: Pairing,
    scen: Scenario,
    opts: &Opts,
    port: u16,
) -> Result<ScenarioResult> {
    let ncores = sys::num_cores();
    let w = opts.workers.max(1);
    let server_cores: Vec<usize> = (0..w).collect();
    let client_cores: Vec<usize> = (0..w).map(|i| (w + i) % ncores).collect();
    let idle = opts.stack_adaptive_idle;
    // Offloads off on both ends for the whole run, restored on drop (after the server).
    let offloads_off = match pairing {
        Pairing::LinuxLinuxNoOffload => Some(crate::netns::OffloadsOff::set(env)?),
        _ => None,
    };
    // The stack client verifies TCP checksums: the Linux server must send full ones (as
    // `start_stack_server` does for a Linux client). Restored on drop, after the server.
    let _server_csum = match pairing {
        Pairing::StackToLinux => Some(crate::pairing::TxChecksumOff::set(
            &env.server_ns,
            &env.server_if,
        )?),
        _ => None,
    };
    let server = pairing.start_server(env, scen, port, w, &server_cores, idle)?;
    let addr = env.server_addr(port);
    if let ServerHandle::Process(..) = server {
        wait_ready(&env.client_ns, addr)?;
    }
    let label = format!("{} {}", scen.name(), pairing.name());
    let kind = pairing.client_kind();
    // The stack server's device counters before and after the clients (frames/s).
    let frames0 = server
        .pid()
        .and_then(|_| crate::pktrate::snapshot(&env.server_ns, &env.server_if));
    let res = if scen == Scenario::Conns {
        conns(env, addr, opts, client_cores[0], &label, kind, server.pid())
    } else if scen.is_mem() {
        mem(env, addr, opts, &label, server.pid(), scen == Scenario::Mem)
    } else {
        let threads = match (scen, kind) {
            // The stack client is single-worker: one stack on the client veth's queue 0.
            (Scenario::BulkUp | Scenario::BulkDown, _) | (_, ClientKind::Stack) => 1,
            _ => w,
        };
        let cores = &client_cores[..threads];
        let outs = run_clients(env, addr, scen, opts, cores, &label, kind)?;
        Ok(metrics(scen, opts, outs))
    };
    let frames1 = server
        .pid()
        .and_then(|_| crate::pktrate::snapshot(&env.server_ns, &env.server_if));
    let server_log = server.stop();
    let (mut metrics, latencies, mut details) = res?;
    if let (Some((a, _)), Some((b, total))) = (&frames0, &frames1) {
        let (m, d) = crate::pktrate::metrics(a, b);
        metrics.extend(m);
        details["server_frames"] = d;
        // Every counter of `xdptcp stat --json` (whole server life) after the clients.
        details["server_stat"] = total.clone();
    }
    if offloads_off.is_some() {
        // What the run really had: every offload of netns::OFFLOADS and whether it was on.
        let state = |ns: &str, ifn: &str| crate::netns::offload_state(ns, ifn).ok();
        details["offloads_server"] = json!(state(&env.server_ns, &env.server_if));
        details["offloads_client"] = json!(state(&env.client_ns, &env.client_if));
    }
    drop(offloads_off);
    if let Some(log) = server_log {
        // `xdptcp serve`'s start line and stop summary (loop, TCP, drop and XDP counters).
        details["server_log"] = json!(log.lines().collect::<Vec<_>>());
    }
    Ok(ScenarioResult {
        scenario: scen.name().into(),
        pairing,
        metrics,
        latencies,
        details,
        error: None,
    })
}

/// Probes the server with connections from the client namespace for up to 10 s.
/// Waits (at most 10 s) until a probe connection from `ns` to `addr` succeeds.
pub fn wait_ready(ns: &str, addr: impl Into<SocketAddr>) -> Result<()> {
    let (ns, addr): (String, SocketAddr) = (ns.to_string(), addr.into());
    std::thread::spawn(move || -> Result<()> {
        sys::enter_netns(&ns)?;
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && !sys::stopped() {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("server at {addr} did not accept a connection within 10 s")
    })
    .join()
    .map_err(|_| format_err!("probe thread panicked"))?
}

fn split(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

fn run_clients(
    env: &VethNetns,
    addr: SocketAddr,
    scen: Scenario,
    opts: &Opts,
    cores: &[usize],
    label: &str,
    kind: ClientKind,
) -> Result<Vec<Outcome>> {
    let progress = Arc::new(Progress::default());
    let n = cores.len();
    let mut handles = Vec::new();
    for (i, &core) in cores.iter().enumerate() {
        if kind == ClientKind::Stack {
            let cfg = stack_cfg(env, addr, core, opts, progress.clone());
            let mode = stack_mode(scen, opts);
            handles.push(std::thread::spawn(move || stack_client::run(&cfg, mode)));
            continue;
        }
        let cfg = ClientCfg {
            ns: env.client_ns.clone(),
            server: addr,
            core,
            duration: opts.duration,
            max_ops: opts.max_ops,
            progress: progress.clone(),
        };
        let opts = opts.clone();
        handles.push(std::thread::spawn(move || match scen {
            Scenario::CpsClientClose | Scenario::CpsServerClose => client::cps(
                &cfg,
                split(opts.cps_concurrency, n, i).max(1),
                scen == Scenario::CpsServerClose,
            ),
            Scenario::RrClosed => client::rr(&cfg, split(opts.rr_conns, n, i).max(1), None),
            Scenario::RrOpen => client::rr(
                &cfg,
                split(opts.rr_conns, n, i).max(1),
                Some(opts.rate / n as f64),
            ),
            Scenario::BulkUp => client::bulk(&cfg, 1, true),
            Scenario::BulkDown => client::bulk(&cfg, 1, false),
            Scenario::BulkMultiUp => client::bulk(&cfg, split(opts.bulk_flows, n, i).max(1), true),
            Scenario::BulkMultiDown => {
                client::bulk(&cfg, split(opts.bulk_flows, n, i).max(1), false)
            }
            Scenario::Conns => unreachable!("conns has its own driver"),
            Scenario::Mem | Scenario::MemBase => unreachable!("mem has its own driver"),
        }));
    }
    let start = Instant::now();
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        client::progress_line(label, start.elapsed(), opts.duration, &progress, false);
    }
    client::progress_line(label, start.elapsed(), opts.duration, &progress, true);
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .map_err(|_| format_err!("client thread panicked"))?
        })
        .collect()
}

fn stack_cfg(
    env: &VethNetns,
    addr: SocketAddr,
    core: usize,
    opts: &Opts,
    progress: Arc<Progress>,
) -> StackClientCfg {
    StackClientCfg {
        ns: env.client_ns.clone(),
        ifname: env.client_if.clone(),
        addr: env.client_ip,
        addr6: env.client_ip6,
        extra_addrs: env.client_extra.clone(),
        server: addr,
        core,
        duration: opts.duration,
        max_ops: opts.max_ops,
        adaptive_idle: opts.stack_adaptive_idle,
        progress,
    }
}

/// The stack client's mode for a scenario (one client thread: the whole load).
fn stack_mode(scen: Scenario, opts: &Opts) -> Mode {
    match scen {
        Scenario::CpsClientClose | Scenario::CpsServerClose => Mode::Cps {
            concurrency: opts.cps_concurrency,
            server_closes: scen == Scenario::CpsServerClose,
        },
        Scenario::RrClosed => Mode::Rr {
            conns: opts.rr_conns,
            interval: None,
        },
        Scenario::RrOpen => Mode::Rr {
            conns: opts.rr_conns,
            interval: Some(xdptcp::time::Duration::from_nanos(
                (1e9 / opts.rate.max(1.0)) as u64,
            )),
        },
        Scenario::BulkUp => Mode::Bulk {
            flows: 1,
            upload: true,
        },
        Scenario::BulkDown => Mode::Bulk {
            flows: 1,
            upload: false,
        },
        Scenario::BulkMultiUp => Mode::Bulk {
            flows: opts.bulk_flows,
            upload: true,
        },
        Scenario::BulkMultiDown => Mode::Bulk {
            flows: opts.bulk_flows,
            upload: false,
        },
        Scenario::Conns | Scenario::Mem | Scenario::MemBase => Mode::Hold { n: opts.conns },
    }
}

type Measured = (
    Vec<Metric>,
    Vec<(String, hdrhistogram::Histogram<u64>)>,
    serde_json::Value,
);

fn metrics(scen: Scenario, opts: &Opts, outs: Vec<Outcome>) -> Measured {
    let secs = outs
        .iter()
        .map(|o| o.elapsed.as_secs_f64())
        .fold(0.0, f64::max)
        .max(1e-9);
    let ok: u64 = outs.iter().map(|o| o.ok).sum();
    let failed: u64 = outs.iter().map(|o| o.failed).sum();
    let bytes: u64 = outs.iter().map(|o| o.bytes).sum();
    let client_counters: Vec<serde_json::Value> = outs
        .iter()
        .map(|o| o.counters.clone())
        .filter(|c| !c.is_null())
        .collect();
    let client_log: Vec<String> = outs.iter().flat_map(|o| o.log.iter().cloned()).collect();
    let mut hists: Vec<(String, hdrhistogram::Histogram<u64>)> = Vec::new();
    for o in outs {
        for (name, h) in o.hists {
            match hists.iter_mut().find(|(n, _)| *n == name) {
                Some((_, acc)) => acc.add(&h).expect("same bounds"),
                None => hists.push((name, h)),
            }
        }
    }
    let m = match scen {
        Scenario::CpsClientClose | Scenario::CpsServerClose => vec![
            Metric::new("conn/s", "1/s", ok as f64 / secs),
            Metric::new("connections", "n", ok as f64),
            Metric::new("failed", "n", failed as f64),
        ],
        Scenario::RrClosed | Scenario::RrOpen => {
            let mut v = vec![
                Metric::new("req/s", "1/s", ok as f64 / secs),
                Metric::new("failed", "n", failed as f64),
            ];
            if scen == Scenario::RrOpen {
                v.insert(0, Metric::new("offered req/s", "1/s", opts.rate));
            }
            v
        }
        _ => vec![
            Metric::new("throughput", "Gbit/s", bytes as f64 * 8.0 / secs / 1e9),
            Metric::new("failed flows", "n", failed as f64),
        ],
    };
    let mut details = json!({
        "seconds": secs, "ok": ok, "failed": failed, "bytes": bytes,
        "client_counters": client_counters,
    });
    if !client_log.is_empty() {
        // The stack client's loop, TCP and flow counters (as `xdptcp serve`'s server_log).
        details["client_log"] = json!(client_log);
    }
    (m, hists, details)
}

/// `conns`: hold `opts.conns` idle connections and measure the kernel memory they take, then
/// close them from the client (client TIME-WAIT) and measure the TIME-WAIT entries.
/// `mem`: attackers pin out-of-order data, sinks never read, a legitimate client runs
/// request/response (memattack.rs); `mem/base` (`attack` false): the same without attackers
/// and sinks. Measured with the attack in place: the server's
/// connection-buffer memory (stack: `buf_out_bytes` + `mem_ooo_bytes` of `xdptcp stat`;
/// Linux: sockstat's `TCP: mem` pages, namespace-wide) against its limit (the stack's
/// `tcp_mem` HIGH per worker; Linux's host `tcp_mem` HIGH), and the legitimate client's
/// success.
fn mem(
    env: &VethNetns,
    addr: SocketAddr,
    opts: &Opts,
    label: &str,
    server_pid: Option<u32>,
    attack: bool,
) -> Result<Measured> {
    let SocketAddr::V4(addr) = addr else {
        bail!("mem runs over IPv4 only (its attacker builds IPv4 segments)");
    };
    let (attackers, sinks) = if attack { (200, 20) } else { (0, 0) };
    let ifname = env.server_if.clone();
    let server_ns = env.server_ns.clone();
    let (ns, duration) = (env.client_ns.clone(), opts.duration);
    let stack = server_pid.is_some();
    let t = std::thread::spawn(
        move || -> Result<(memattack::MemReport, serde_json::Value)> {
            let mut sample = serde_json::Value::Null;
            let mut take = || {
                sample = if stack {
                    let ifname = ifname.clone();
                    sys::in_ns(&server_ns, move || xdptcp::control::query(&ifname, true))
                        .ok()
                        .and_then(|r| r.ok())
                        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                        .and_then(|v| v.get("total").cloned())
                        .unwrap_or_default()
                } else {
                    json!(
                        sys::read_in_ns(&server_ns, "/proc/thread-self/net/sockstat")
                            .ok()
                            .and_then(|t| memory::parse_sockstat(&t))
                    )
                };
            };
            let r = memattack::run(&ns, addr, attackers, sinks, duration, &mut take)?;
            Ok((r, sample))
        },
    );
    let start = Instant::now();
    let (r, sample) = t.join().map_err(|_| format_err!("mem client panicked"))??;
    let rss = server_pid.and_then(|p| memory::vm_rss(&p.to_string()));
    let progress = Progress::default();
    progress.ok.store(r.rr_ok, Relaxed);
    client::progress_line(label, start.elapsed(), opts.duration, &progress, true);
    let page = 4096.0;
    let (held, limit) = if stack {
        let g = |k: &str| sample.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as f64;
        let high: f64 = crate::kinds::MEM_SCENARIO_TCP_MEM
            .rsplit(',')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        (
            g("buf_out_bytes") + g("mem_ooo_bytes"),
            high * page * opts.workers.max(1) as f64,
        )
    } else {
        let pages = sample
            .get("mem_pages")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        // Host-wide: `net.ipv4.tcp_mem` exists in the initial namespace only.
        let high = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_mem")
            .ok()
            .and_then(|t| {
                t.split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<f64>().ok())
            })
            .unwrap_or(0.0);
        (pages as f64 * page, high * page)
    };
    let mut m = vec![
        Metric::new("server buffer memory held", "B", held),
        Metric::new("limit (tcp_mem high)", "B", limit),
        Metric::new("legit rr ok", "n", r.rr_ok as f64),
        Metric::new("legit rr failed", "n", r.rr_failed as f64),
        Metric::new("legit rr mean", "us", r.rr_mean_us),
    ];
    if let Some(b) = rss {
        m.push(Metric::new("server RSS", "B", b as f64));
    }
    if stack {
        for (name, key) in [
            ("out-of-order held", "mem_ooo_bytes"),
            ("ofo segments dropped (memory)", "ofo_mem_drops"),
            ("in-order segments dropped (memory)", "rcvq_mem_drops"),
            ("sends cut short (memory)", "snd_mem_limited"),
        ] {
            let v = sample.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
            m.push(Metric::new(
                name,
                if key == "mem_ooo_bytes" { "B" } else { "n" },
                v as f64,
            ));
        }
    }
    let details = json!({ "attack": r, "server_sample": sample });
    Ok((m, Vec::new(), details))
}

fn conns(
    env: &VethNetns,
    addr: SocketAddr,
    opts: &Opts,
    core: usize,
    label: &str,
    kind: ClientKind,
    server_pid: Option<u32>,
) -> Result<Measured> {
    let n = opts.conns;
    let server_rss = || server_pid.and_then(|p| memory::vm_rss(&p.to_string()));
    let srss0 = server_rss();
    let sockstat = |ns: &str| {
        sys::read_in_ns(ns, "/proc/thread-self/net/sockstat")
            .ok()
            .and_then(|t| memory::parse_sockstat(&t))
            .unwrap_or_default()
    };
    let slab0 = memory::slab_snapshot();
    let rss0 = memory::vm_rss("self");
    let (held_tx, held_rx) = mpsc::channel::<Result<usize>>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // Opening takes longer with many connections: allow 1 s per 2,000 beyond the op timeout.
    let open_time = client::OP_TIMEOUT + Duration::from_secs((n / 2000) as u64);
    let (ns, timeout) = (env.client_ns.clone(), opts.duration + open_time);
    let scfg = stack_cfg(env, addr, core, opts, Arc::new(Progress::default()));
    let t = std::thread::spawn(move || -> Result<HoldReport> {
        if kind == ClientKind::Stack {
            let limit = Duration::from_secs(120);
            return stack_client::hold(&scfg, n, held_tx, release_rx, limit, open_time);
        }
        let r = (|| {
            sys::enter_netns(&ns)?;
            sys::pin(core);
            client::connect_n(addr, n, Instant::now() + timeout)
        })();
        match r {
            Ok(v) => {
                let _ = held_tx.send(Ok(v.len()));
                let _ = release_rx.recv_timeout(Duration::from_secs(120));
                drop(v); // client closes first: TIME-WAIT on the client side
            }
            Err(e) => {
                let _ = held_tx.send(Err(e));
            }
        }
        Ok(HoldReport::default())
    });
    let start = Instant::now();
    let progress = Progress::default();
    let held = held_rx
        .recv_timeout(timeout + Duration::from_secs(5))
        .map_err(|_| format_err!("conns: client did not report"))??;
    progress.ok.store(held as u64, Relaxed);
    client::progress_line(label, start.elapsed(), opts.duration, &progress, false);
    std::thread::sleep(Duration::from_millis(500)); // let the server accept the last ones
    let slab1 = memory::slab_snapshot();
    let rss1 = memory::vm_rss("self");
    let srss1 = server_rss();
    let (ss_c1, ss_s1) = (sockstat(&env.client_ns), sockstat(&env.server_ns));
    // The client namespace's TCP counters around the close (TCPTimeWaitOverflow, RSTs, ...):
    // they say why a closed socket did not reach TIME-WAIT.
    let netstat = |ns: &str| {
        let mut m = BTreeMap::new();
        for f in [
            "/proc/thread-self/net/netstat",
            "/proc/thread-self/net/snmp",
        ] {
            if let Ok(t) = sys::read_in_ns(ns, f) {
                m.extend(memory::parse_netstat(&t));
            }
        }
        m
    };
    let (nstat_c1, nstat_s1) = (netstat(&env.client_ns), netstat(&env.server_ns));
    let _ = release_tx.send(());
    let hold = t
        .join()
        .map_err(|_| format_err!("conns client panicked"))??;
    // Wait (at most 5 s) for every client socket to reach TIME-WAIT, i.e. for the server's
    // FIN. Counted with sock_diag (ss), not /proc/net/tcp, which is read in chunks that can
    // skip entries while other entries of the shared hash come and go. An orphaned socket in
    // FIN-WAIT-2 is a TIME-WAIT mini-socket (tw_sock_TCP) too, so both states count.
    let tw_states = ["time-wait", "fin-wait-2"];
    let mut tw_n = 0;
    let wait_end = Instant::now() + Duration::from_secs(5);
    while kind == ClientKind::Linux && Instant::now() < wait_end && !sys::stopped() {
        std::thread::sleep(Duration::from_millis(200));
        let tw = memory::ss_count(&env.client_ns, &["time-wait"], addr.port()).unwrap_or(0);
        if tw >= held as u64 {
            break;
        }
    }
    let slab2 = memory::slab_snapshot();
    let ss_c2 = sockstat(&env.client_ns);
    let nstat_close = memory::counter_delta(&nstat_c1, &netstat(&env.client_ns));
    let nstat_close_s = memory::counter_delta(&nstat_s1, &netstat(&env.server_ns));
    if let Some(n) = memory::ss_count(&env.client_ns, &tw_states, addr.port()) {
        tw_n = n;
    }
    if kind == ClientKind::Stack {
        tw_n = hold.time_wait as u64;
    }
    client::progress_line(label, start.elapsed(), opts.duration, &progress, true);

    let mut m = vec![Metric::new("conns held", "n", held as f64)];
    let mut details = json!({
        "sockstat_client_held": ss_c1, "sockstat_server_held": ss_s1,
        "sockstat_client_closed": ss_c2, "time_wait_entries": tw_n,
        "client_states_after_close": memory::ss_states(&env.client_ns, addr.port()),
        "client_netstat_close_delta": nstat_close,
        "server_netstat_close_delta": nstat_close_s,
    });
    // Kernel TCP sockets per connection: both ends for Linux ↔ Linux, the client's only for
    // Linux → stack, none for stack ↔ stack.
    let kernel_ends = match (kind, server_pid) {
        (ClientKind::Linux, None) => 2.0,
        (ClientKind::Linux, Some(_)) => 1.0,
        (ClientKind::Stack, _) => 0.0,
    };
    let mut kernel_per_socket = None;
    if let (Some(s0), Some(s1), Some(s2)) = (&slab0, &slab1, &slab2) {
        let d_est = memory::slab_delta(s0, s1);
        let d_tw = memory::slab_delta(s1, s2);
        let est: i64 = d_est
            .iter()
            .filter(|(k, _)| *k != "tw_sock_TCP")
            .map(|(_, v)| v)
            .sum();
        if kernel_ends > 0.0 {
            let per = est as f64 / (kernel_ends * held.max(1) as f64);
            kernel_per_socket = Some(per);
            m.push(Metric::new("kernel slab per socket", "B", per));
            if tw_n > 0 && kind == ClientKind::Linux {
                m.push(Metric::new(
                    "kernel slab per TIME-WAIT",
                    "B",
                    d_tw["tw_sock_TCP"] as f64 / tw_n as f64,
                ));
            }
        }
        details["slab_delta_established"] = json!(d_est);
        details["slab_delta_closed"] = json!(d_tw);
    } else {
        details["slab"] = json!("/proc/slabinfo not readable: kernel memory not measured");
    }
    // Comparable figures across pairings: a kernel socket's slab memory, or the stack
    // process's RSS growth per connection.
    let server_mem = match (srss0, srss1) {
        (Some(a), Some(b)) => Some((b as f64 - a as f64) / held.max(1) as f64),
        _ if server_pid.is_none() => kernel_per_socket,
        _ => None,
    };
    let client_mem = match kind {
        ClientKind::Stack => hold.rss_per_conn,
        ClientKind::Linux => kernel_per_socket,
    };
    if let Some(v) = server_mem {
        m.push(Metric::new("server memory per conn", "B", v));
    }
    if let Some(v) = client_mem {
        m.push(Metric::new("client memory per conn", "B", v));
    }
    m.push(Metric::new("client TIME-WAIT entries", "n", tw_n as f64));
    if kind == ClientKind::Stack {
        m.push(Metric::new("time to open all", "s", hold.open_secs));
    }
    if kind == ClientKind::Stack && hold.time_wait > 0 {
        // The stack's own accounting of its TIME-WAIT table (records, map, expiry FIFO).
        m.push(Metric::new(
            "stack TIME-WAIT per entry",
            "B",
            hold.time_wait_bytes as f64 / hold.time_wait as f64,
        ));
    }
    // (With the stack client, this process's RSS also holds the client stack's start-up.)
    if let (Some(a), Some(b), ClientKind::Linux) = (rss0, rss1, kind) {
        m.push(Metric::new(
            "process RSS per conn",
            "B",
            (b as f64 - a as f64) / held.max(1) as f64,
        ));
    }
    Ok((m, Vec::new(), details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_lists() {
        let v = Scenario::parse_list("cps,rr/open").unwrap();
        assert_eq!(
            v,
            [
                Scenario::CpsClientClose,
                Scenario::CpsServerClose,
                Scenario::RrOpen
            ]
        );
        assert_eq!(Scenario::parse_list("bulk").unwrap().len(), 4);
        assert!(Scenario::parse_list("nope").is_err());
        let (v, c) = parse_selection("ceiling, rr/open").unwrap();
        assert_eq!((v, c), (vec![Scenario::RrOpen], true));
        assert_eq!(parse_selection("ceiling").unwrap(), (vec![], true));
        assert_eq!(
            parse_selection("conns").unwrap(),
            (vec![Scenario::Conns], false)
        );
        // `mem` runs its baseline first.
        assert_eq!(
            parse_selection("mem").unwrap(),
            (vec![Scenario::MemBase, Scenario::Mem], false)
        );
        assert!(parse_selection("").is_err());
        let (v, c) = parse_selection("all").unwrap();
        assert_eq!((v.len(), c), (Scenario::ALL.len(), true));
        let (v, c) = parse_selection(DEFAULT_SCENARIOS).unwrap();
        assert!(c && v.contains(&Scenario::BulkDown) && !v.contains(&Scenario::BulkMultiUp));
        assert_eq!(v.len(), 7);
        assert!(parse_selection("ceiling,nope").is_err());
        // `--ipv6`'s default: cps, rr and single-flow bulk, all of which run over IPv6.
        let (v, c) = parse_selection(DEFAULT_SCENARIOS_IPV6).unwrap();
        assert!(!c && v.len() == 6 && v.iter().all(|s| s.runs_over_ipv6()));
        let v6: Vec<&str> = Scenario::ALL
            .into_iter()
            .filter(|s| !s.runs_over_ipv6())
            .map(Scenario::name)
            .collect();
        assert_eq!(v6, ["conns", "mem/base", "mem"]);
        assert_eq!(split(10, 3, 0), 4);
        assert_eq!(split(10, 3, 2), 3);
    }
}
