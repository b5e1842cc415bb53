//! The `app/*` scenarios: unmodified Debian servers on the kernel and on the stack
//! (`xdptcp run`, [`crate::app_server`]), the same binary, configuration, client and cores,
//! side by side in one run.
//!
//! - `app/nginx-close`: GET of a 612-byte static page with `Connection: close` (every request
//!   a new connection, nginx closes first): connections per second.
//! - `app/nginx-keepalive`: the same page on persistent connections: requests per second.
//! - `app/redis`: `redis-benchmark -t set,get`: operations per second per command.
//!
//! The pairings name the client and where the server's sockets are:
//!
//! | pairing | client | server |
//! |---|---|---|
//! | `linux-linux` | wrk / redis-benchmark | on the kernel |
//! | `linux-stack` | wrk / redis-benchmark | under `xdptcp run` |
//! | `stack-linux` | the stack's load generator (HTTP, RESP) | on the kernel |
//! | `stack-stack` | the stack's load generator (HTTP, RESP) | under `xdptcp run` |
//!
//! `linux-stack` against `linux-linux` is the ratio (the tools people use);
//! `stack-stack` against `stack-linux` is the same with a client that is not the limit on a
//! 2-core machine (the stack's load generator, [`crate::stack_client`]'s `HttpClose` and
//! `Exchange` modes; for redis `Exchange` with RESP SET and GET, one command outstanding per
//! connection as redis-benchmark without pipelining).
//!
//! The server runs on the server cores (0..W, `taskset`), the client on the client cores
//! (W..2W): wrk `-t W`, redis-benchmark `--threads W` (W > 1), the stack client on the first.
//! A missing program is one result with one line saying which and how to install it.

use crate::app_server::{self, AppProcess, Under};
use crate::error::{bail, format_err, Context, Result};
use crate::http::{self, RunDir};
use crate::kinds::{ClientKind, Pairing};
use crate::netns::VethNetns;
use crate::pairing::TxChecksumOff;
use crate::redis_bench::{self, RedisTest};
use crate::report::{Metric, ScenarioResult};
use crate::stack_client::{self, Mode, StackClientCfg, HTTP_GET_CLOSE, HTTP_GET_KEEPALIVE};
use crate::{client, sys, wrk};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default `--scenarios` of `xdptcp-bench`: [`crate::scenario::DEFAULT_SCENARIOS`] and
/// the app scenarios (each reports one line when its programs are not installed).
pub const DEFAULT_SCENARIOS: &str = "cps,rr,bulk/1-up,bulk/1-down,conns,ceiling,app";

/// The first server port of a run's app scenarios; each (scenario, pairing) run takes the
/// next, as the cps and rr runs do: the kernel server's TIME-WAIT entries of one run (nginx
/// closes first) must not meet the next run's client, whose SYNs would carry another
/// timestamp clock (RFC 6191) and wait for a retransmission.
pub const FIRST_PORT: u16 = 7001;
/// redis-benchmark's tests.
pub const REDIS_TESTS: &str = "set,get";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppScenario {
    NginxClose,
    NginxKeepalive,
    Redis,
}

impl AppScenario {
    pub const ALL: [AppScenario; 3] = [
        AppScenario::NginxClose,
        AppScenario::NginxKeepalive,
        AppScenario::Redis,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AppScenario::NginxClose => "app/nginx-close",
            AppScenario::NginxKeepalive => "app/nginx-keepalive",
            AppScenario::Redis => "app/redis",
        }
    }

    /// Whether `p` has a column in this scenario (see the module docs).
    pub fn runs(self, p: Pairing) -> bool {
        match p {
            Pairing::LinuxLinux | Pairing::LinuxToStack => true,
            Pairing::StackToLinux | Pairing::StackStack => true,
            Pairing::LinuxLinuxNoOffload => false,
        }
    }

    /// The programs it needs (server, client), with their Debian packages.
    fn programs(self) -> [(&'static str, &'static str, &'static str); 2] {
        match self {
            AppScenario::Redis => [
                ("redis-server", "--version", "redis-server"),
                ("redis-benchmark", "--version", "redis-tools"),
            ],
            _ => [("nginx", "-v", "nginx"), ("wrk", "--version", "wrk")],
        }
    }

    /// `Some(line)` naming the first program that is not installed.
    pub fn missing(self) -> Option<String> {
        self.programs().into_iter().find_map(|(prog, arg, pkg)| {
            let ok = Command::new(prog)
                .arg(arg)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            (!ok).then(|| {
                format!(
                    "{} not run: `{prog}` is not installed (Debian package {pkg}; \
                     scripts/setup.sh installs it)",
                    self.name()
                )
            })
        })
    }
}

/// Takes the app scenarios out of a `--scenarios` list: `app` (all three), their names, and
/// `all` (which stays in the rest for the other groups). Returns the rest and the app
/// scenarios; an unknown `app/...` name is an error.
pub fn take_selection(list: &str) -> Result<(String, Vec<AppScenario>)> {
    let mut apps = Vec::new();
    let mut rest = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m: Vec<AppScenario> = AppScenario::ALL
            .into_iter()
            .filter(|a| item == "app" || item == "all" || item == a.name())
            .collect();
        if item.starts_with("app/") && m.is_empty() {
            bail!("unknown scenario `{item}` (app/nginx-close, app/nginx-keepalive, app/redis)");
        }
        if m.is_empty() || item == "all" {
            rest.push(item);
        }
        for a in m {
            if !apps.contains(&a) {
                apps.push(a);
            }
        }
    }
    Ok((rest.join(","), apps))
}

/// Knobs of the app runs.
#[derive(Clone, Debug)]
pub struct AppOpts {
    /// Per run (wrk's `-d` and the stack client's run, rounded up to whole seconds).
    pub duration: Duration,
    /// Server cores and client threads.
    pub workers: usize,
    /// nginx: wrk's connections (`-c`) and the stack client's (attempts in flight in close
    /// mode, persistent connections in keep-alive mode).
    pub http_conns: usize,
    /// redis-benchmark `-c`.
    pub redis_clients: usize,
    /// redis-benchmark `-n` per test.
    pub redis_requests: u64,
    pub stack_adaptive_idle: bool,
    pub max_ops: u64,
}

impl AppOpts {
    /// redis-benchmark `-n` for a run of `duration`: 25,000 requests per second of it (it
    /// has no duration flag; the duration at 25k operations/s, half of it at 50k).
    pub fn redis_requests_for(duration: Duration) -> u64 {
        ((duration.as_secs_f64() * 25_000.0) as u64).max(1000)
    }
}

/// Runs one app scenario in one pairing with the server on `port`; any error becomes the
/// result's `error`.
pub fn run_one(
    env: &VethNetns,
    p: Pairing,
    a: AppScenario,
    o: &AppOpts,
    port: u16,
) -> ScenarioResult {
    match run_inner(env, p, a, o, port) {
        Ok(r) => r,
        Err(e) => ScenarioResult::failed(a.name(), p, format!("{e:#}")),
    }
}

fn run_inner(
    env: &VethNetns,
    p: Pairing,
    a: AppScenario,
    o: &AppOpts,
    port: u16,
) -> Result<ScenarioResult> {
    if !a.runs(p) {
        bail!("{} has no {} column", a.name(), p.name());
    }
    if let Some(m) = a.missing() {
        bail!("{m}");
    }
    let w = o.workers.max(1);
    let ncores = sys::num_cores();
    let server_cores: Vec<usize> = (0..w).map(|i| i % ncores).collect();
    let client_cores: Vec<usize> = (0..w).map(|i| (w + i) % ncores).collect();
    let under = match p {
        Pairing::LinuxToStack | Pairing::StackStack => Under::Stack,
        _ => Under::Kernel,
    };
    let client = p.client_kind();
    if w > 1 && p == Pairing::StackToLinux {
        // The stack client is one worker on queue 0 of the client veth; N Linux workers answer
        // on every queue (veth delivers on the queue they transmit on).
        bail!("the stack client serves queue 0 only: stack-linux needs --workers 1");
    }
    // A stack end verifies TCP checksums: a Linux sender on veth must send full ones (the
    // readiness probe is a Linux client in every pairing).
    let _client_csum = match under {
        Under::Stack => Some(TxChecksumOff::set(&env.client_ns, &env.client_if)?),
        Under::Kernel => None,
    };
    let _server_csum = match (client, under) {
        (ClientKind::Stack, Under::Kernel) => {
            Some(TxChecksumOff::set(&env.server_ns, &env.server_if)?)
        }
        _ => None,
    };
    let dir = RunDir::new()?;
    let label = format!("{} {}", a.name(), p.name());
    let mut details = json!({
        "server_under": match under { Under::Kernel => "kernel", Under::Stack => "xdptcp run" },
        "server_cores": server_cores, "client_cores": client_cores,
    });
    let (metrics, latencies, server_out) = match a {
        AppScenario::Redis => {
            if w > 1 {
                // One process serves every queue on the kernel but only queue 0 under the
                // stack: the comparison would not be the same program's.
                bail!("redis-server is one process (one queue under xdptcp run): run app/redis with --workers 1");
            }
            let addr = SocketAddrV4::new(env.server_ip, port);
            let argv = app_server::redis_argv(dir.path(), addr);
            details["server_argv"] = json!(argv);
            let mut server =
                AppProcess::spawn(env, under, &server_cores, &argv, dir.path(), "redis-server")?;
            let ns = env.client_ns.clone();
            server.wait_ready(|| sys::in_ns(&ns, move || redis_probe(addr))?)?;
            let r = match client {
                ClientKind::Linux => run_redis(env, addr, &client_cores, o, &label, &mut details),
                ClientKind::Stack => {
                    run_stack_redis(env, addr, client_cores[0], o, &label, &mut details)
                }
            };
            (r?, Vec::new(), server.stop())
        }
        _ => {
            let close = a == AppScenario::NginxClose;
            let addr = SocketAddrV4::new(env.server_ip, port);
            let argv = app_server::nginx_argv(dir.path(), addr, o.http_conns, &server_cores)?;
            details["server_argv"] = json!(argv);
            let mut server =
                AppProcess::spawn(env, under, &server_cores, &argv, dir.path(), "nginx")?;
            let ns = env.client_ns.clone();
            let probe = server.wait_ready(|| sys::in_ns(&ns, move || http_get(addr, close))?)?;
            let text = String::from_utf8_lossy(&probe).to_string();
            if !text.starts_with("HTTP/1.1 200 OK\r\n") || !probe.ends_with(&app_server::page()) {
                bail!("nginx's answer is not the page: {text}");
            }
            details["probe_response"] = json!(text);
            details["probe_response_bytes"] = json!(probe.len());
            let r = match client {
                ClientKind::Linux => {
                    run_wrk(env, addr, &client_cores, close, o, &label, &mut details)
                        .map(|m| (m, Vec::new()))
                }
                ClientKind::Stack => run_stack_http(
                    env,
                    addr,
                    client_cores[0],
                    close,
                    probe.len(),
                    o,
                    &label,
                    &mut details,
                ),
            };
            let (m, l) = r?;
            (m, l, server.stop())
        }
    };
    details["server_output"] = json!(server_out.lines().collect::<Vec<_>>());
    Ok(ScenarioResult {
        scenario: a.name().into(),
        pairing: p,
        metrics,
        latencies,
        details,
        error: None,
    })
}

/// One GET of `/` from the calling thread's namespace, with the request the stack client
/// sends ([`HTTP_GET_CLOSE`] read to the server's close, or [`HTTP_GET_KEEPALIVE`] read to
/// Linux `IP_LOCAL_PORT_RANGE` (6.3+; not in the libc crate yet): the range this socket's
/// automatic bind draws from, `lo | hi << 16`.
const IP_LOCAL_PORT_RANGE: libc::c_int = 51;

/// A readiness probe's connection (300 ms to connect), from a source port below the stack
/// client's ephemeral range ([`stack_client::EPHEMERAL`]): the server keeps a TIME-WAIT entry
/// for the probe, and a stack client that later drew the same port would find it with
/// timestamps and sequence numbers of another TCP stack (the kernel's), which RFC 6191 does
/// not let reopen it; RFC 1337 (the stack ignores a RST in TIME-WAIT) then keeps that one
/// 4-tuple blocked for the TIME-WAIT length (one failed connection per run).
fn probe_connect(addr: SocketAddrV4) -> Result<TcpStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor we own (moved into the TcpStream at once).
    let s = unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let s = TcpStream::from_raw_fd(fd);
        let range: u32 = 1024 | (u32::from(stack_client::EPHEMERAL.0) - 1) << 16;
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            IP_LOCAL_PORT_RANGE,
            &range as *const u32 as *const libc::c_void,
            4,
        );
        s
    };
    s.set_write_timeout(Some(Duration::from_millis(300)))?;
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    use std::os::fd::AsRawFd;
    // SAFETY: a valid sockaddr_in; a blocking connect bounded by SO_SNDTIMEO.
    let r = unsafe {
        libc::connect(
            s.as_raw_fd(),
            &sin as *const libc::sockaddr_in as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    s.set_write_timeout(None)?;
    Ok(s)
}

/// `Content-Length`); returns the whole response.
pub fn http_get(addr: SocketAddrV4, close: bool) -> Result<Vec<u8>> {
    let mut s = probe_connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(if close {
        HTTP_GET_CLOSE
    } else {
        HTTP_GET_KEEPALIVE
    })?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            if close {
                return Ok(buf);
            }
            bail!("connection closed before a complete response");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            bail!("response larger than 64 KiB");
        }
        if close {
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                })
                .and_then(|v| v.parse().ok())
                .context("response without Content-Length")?;
            if buf.len() >= end + 4 + len {
                return Ok(buf);
            }
        }
    }
}

/// From the calling thread's namespace over RESP: `PING`, then the stack client's SET and
/// GET, each answered with exactly the reply the stack client counts on.
pub fn redis_probe(addr: SocketAddrV4) -> Result<()> {
    let mut s = probe_connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    for (cmd, want) in [
        (&b"*1\r\n$4\r\nPING\r\n"[..], &b"+PONG\r\n"[..]),
        (RESP_SET, RESP_SET_REPLY),
        (RESP_GET, RESP_GET_REPLY),
    ] {
        s.write_all(cmd)?;
        let mut b = vec![0u8; want.len()];
        s.read_exact(&mut b)?;
        if b != want {
            bail!(
                "redis answered {:?} to {:?}",
                String::from_utf8_lossy(&b),
                String::from_utf8_lossy(cmd)
            );
        }
    }
    Ok(())
}

fn run_wrk(
    env: &VethNetns,
    addr: SocketAddrV4,
    cores: &[usize],
    close: bool,
    o: &AppOpts,
    label: &str,
    details: &mut serde_json::Value,
) -> Result<Vec<Metric>> {
    let dir = RunDir::new()?;
    let script = dir.path().join("done.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let secs = whole_secs(o.duration);
    let url = format!("http://{addr}/");
    let args = wrk::args(
        &url,
        cores.len(),
        o.http_conns,
        secs,
        close,
        &script.to_string_lossy(),
    );
    let out = http::run_pinned(&env.client_ns, cores, "wrk", &args, secs, label)?;
    let r = wrk::parse(&out).with_context(|| format!("wrk output:\n{out}"))?;
    details["client"] = json!("wrk");
    details["client_args"] = json!(args);
    details["wrk"] = json!(r);
    let l = &r.latency_us;
    let mut m = vec![
        Metric::new(rate_name(close), "1/s", r.requests_per_s),
        Metric::new("requests", "n", r.requests as f64),
        Metric::new(
            "errors",
            "n",
            (r.socket_errors.total() + r.non_2xx_3xx) as f64,
        ),
        Metric::new("latency p50", "us", l.p50),
        Metric::new("latency p90", "us", l.p90),
        Metric::new("latency p99", "us", l.p99),
    ];
    if let Some(v) = l.p999 {
        m.push(Metric::new("latency p99.9", "us", v));
    }
    m.push(Metric::new("latency max", "us", l.max));
    Ok(m)
}

fn rate_name(close: bool) -> &'static str {
    if close {
        "conn/s"
    } else {
        "req/s"
    }
}

fn whole_secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

type Latencies = Vec<(String, hdrhistogram::Histogram<u64>)>;

/// Runs the stack's load generator in `mode` from the client namespace on `core` for the
/// run's duration, with a progress line.
fn stack_client_run(
    env: &VethNetns,
    addr: SocketAddrV4,
    core: usize,
    mode: Mode,
    o: &AppOpts,
    label: &str,
) -> Result<client::Outcome> {
    let progress = Arc::new(client::Progress::default());
    let cfg = StackClientCfg {
        ns: env.client_ns.clone(),
        ifname: env.client_if.clone(),
        addr: env.client_ip,
        addr6: None,
        extra_addrs: Vec::new(),
        server: addr.into(),
        core,
        duration: xdptcp::time::Duration::from_secs(whole_secs(o.duration)),
        max_ops: o.max_ops,
        adaptive_idle: o.stack_adaptive_idle,
        progress: progress.clone(),
    };
    let total = Duration::from_secs(whole_secs(o.duration));
    let h = std::thread::spawn(move || stack_client::run(&cfg, mode));
    let start = Instant::now();
    while !h.is_finished() {
        std::thread::sleep(Duration::from_millis(200));
        client::progress_line(label, start.elapsed(), total, &progress, false);
    }
    client::progress_line(label, start.elapsed(), total, &progress, true);
    h.join().map_err(|_| format_err!("stack client panicked"))?
}

/// The stack's load generator against nginx: `HttpClose`, or `Exchange` with
/// [`HTTP_GET_KEEPALIVE`], expecting the probed response length.
#[allow(clippy::too_many_arguments)]
fn run_stack_http(
    env: &VethNetns,
    addr: SocketAddrV4,
    core: usize,
    close: bool,
    response_len: usize,
    o: &AppOpts,
    label: &str,
    details: &mut serde_json::Value,
) -> Result<(Vec<Metric>, Latencies)> {
    let mode = if close {
        Mode::HttpClose {
            concurrency: o.http_conns.max(1),
            response_len,
        }
    } else {
        Mode::Exchange {
            conns: o.http_conns.max(1),
            request: HTTP_GET_KEEPALIVE,
            response_len,
        }
    };
    let out = stack_client_run(env, addr, core, mode, o, label)?;
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    details["client"] = json!(if close {
        "stack client HttpClose"
    } else {
        "stack client Exchange (HTTP GET keep-alive)"
    });
    details["client_counters"] = out.counters;
    details["client_log"] = json!(out.log);
    let m = vec![
        Metric::new(rate_name(close), "1/s", out.ok as f64 / secs),
        Metric::new("requests", "n", out.ok as f64),
        Metric::new("errors", "n", out.failed as f64),
    ];
    Ok((m, out.hists))
}

/// RESP commands of the stack client, the ones redis-benchmark sends for `-t set,get`
/// without `-r` (one key, a 3-byte value), and their replies.
pub const RESP_SET: &[u8] = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$3\r\nxxx\r\n";
pub const RESP_SET_REPLY: &[u8] = b"+OK\r\n";
pub const RESP_GET: &[u8] = b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n";
pub const RESP_GET_REPLY: &[u8] = b"$3\r\nxxx\r\n";

/// The stack's load generator against redis: SET, then GET, each for the run's duration on
/// `--redis-clients` persistent connections, one command outstanding on each (as
/// redis-benchmark without pipelining); the same rows as [`redis_metrics`].
fn run_stack_redis(
    env: &VethNetns,
    addr: SocketAddrV4,
    core: usize,
    o: &AppOpts,
    label: &str,
    details: &mut serde_json::Value,
) -> Result<Vec<Metric>> {
    let mut m = Vec::new();
    let mut per_test = serde_json::Map::new();
    for (t, request, reply) in [
        ("SET", RESP_SET, RESP_SET_REPLY),
        ("GET", RESP_GET, RESP_GET_REPLY),
    ] {
        let mode = Mode::Exchange {
            conns: o.redis_clients.max(1),
            request,
            response_len: reply.len(),
        };
        let out = stack_client_run(env, addr, core, mode, o, &format!("{label} {t}"))?;
        if out.failed > 0 {
            bail!("{t}: {} of the stack client's commands failed", out.failed);
        }
        let secs = out.elapsed.as_secs_f64().max(1e-9);
        let h = out
            .hists
            .iter()
            .find(|(n, _)| n == "latency")
            .map(|(_, h)| h)
            .context("stack client: no latency histogram")?;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        m.push(Metric::new(
            &format!("{t} ops/s"),
            "1/s",
            out.ok as f64 / secs,
        ));
        m.push(Metric::new(&format!("{t} latency p50"), "us", us(0.5)));
        m.push(Metric::new(&format!("{t} latency p95"), "us", us(0.95)));
        m.push(Metric::new(&format!("{t} latency p99"), "us", us(0.99)));
        m.push(Metric::new(
            &format!("{t} latency max"),
            "us",
            h.max() as f64 / 1000.0,
        ));
        per_test.insert(
            t.into(),
            json!({"ok": out.ok, "failed": out.failed, "seconds": secs,
                   "client_counters": out.counters, "client_log": out.log}),
        );
    }
    details["client"] = json!("stack client Exchange (RESP SET, then GET)");
    details["stack_client"] = json!(per_test);
    Ok(m)
}

fn run_redis(
    env: &VethNetns,
    addr: SocketAddrV4,
    cores: &[usize],
    o: &AppOpts,
    label: &str,
    details: &mut serde_json::Value,
) -> Result<Vec<Metric>> {
    let args = redis_bench::args(
        &addr.ip().to_string(),
        addr.port(),
        o.redis_clients,
        o.redis_requests,
        cores.len(),
        REDIS_TESTS,
    );
    // The progress line's scale and the bound (+15 s): the time at 5,000 operations/s, so a
    // busy machine still finishes.
    let tests = REDIS_TESTS.split(',').count() as u64;
    let secs = (o.redis_requests * tests / 5_000).max(1);
    let out = http::run_pinned(&env.client_ns, cores, "redis-benchmark", &args, secs, label)
        .map_err(|e| format_err!("{e:#} (after {secs} s + 15 s)"))?;
    let rows = redis_bench::parse(&out)?;
    details["client"] = json!("redis-benchmark");
    details["client_args"] = json!(args);
    details["redis_benchmark"] = json!(rows);
    Ok(redis_metrics(&rows))
}

/// Per command: operations/s and the latency percentiles redis-benchmark measured.
pub fn redis_metrics(rows: &[RedisTest]) -> Vec<Metric> {
    let mut m = Vec::new();
    for r in rows {
        let t = &r.test;
        m.push(Metric::new(&format!("{t} ops/s"), "1/s", r.rps));
        m.push(Metric::new(&format!("{t} latency p50"), "us", r.p50_us));
        m.push(Metric::new(&format!("{t} latency p95"), "us", r.p95_us));
        m.push(Metric::new(&format!("{t} latency p99"), "us", r.p99_us));
        m.push(Metric::new(&format!("{t} latency max"), "us", r.max_us));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection() {
        let (rest, a) = take_selection("cps,app,rr/open").unwrap();
        assert_eq!(
            (rest.as_str(), a),
            ("cps,rr/open", AppScenario::ALL.to_vec())
        );
        let (rest, a) = take_selection("app/redis").unwrap();
        assert_eq!((rest.as_str(), a), ("", vec![AppScenario::Redis]));
        let (rest, a) = take_selection("all").unwrap();
        assert_eq!((rest.as_str(), a.len()), ("all", 3));
        assert!(take_selection("app/nope").is_err());
        let (rest, a) = take_selection(DEFAULT_SCENARIOS).unwrap();
        assert_eq!(rest, crate::scenario::DEFAULT_SCENARIOS);
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn columns_and_rows() {
        use AppScenario::*;
        assert!(NginxClose.runs(Pairing::StackToLinux) && NginxKeepalive.runs(Pairing::StackStack));
        assert!(Redis.runs(Pairing::LinuxToStack) && Redis.runs(Pairing::StackStack));
        assert!(!NginxClose.runs(Pairing::LinuxLinuxNoOffload));
        assert_eq!(rate_name(true), "conn/s");
        let rows = redis_bench::parse(
            "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\
             \"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
             \"GET\",\"1000.00\",\"0.1\",\"0.01\",\"0.100\",\"0.2\",\"0.300\",\"1.0\"\n",
        )
        .unwrap();
        let m = redis_metrics(&rows);
        assert_eq!(m[0], Metric::new("GET ops/s", "1/s", 1000.0));
        assert_eq!(m[3], Metric::new("GET latency p99", "us", 300.0));
        assert_eq!(AppOpts::redis_requests_for(Duration::from_secs(2)), 50_000);
        assert_eq!(AppOpts::redis_requests_for(Duration::from_millis(1)), 1000);
    }
}
