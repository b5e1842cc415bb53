//! The `xdptcp` program's command line (clap) and its two commands:
//!
//! - `xdptcp serve --iface IF --addr IP --listen PORT=APP ... [--workers N] [--zero-copy]
//!   [--set KEY=VALUE ...]`: attaches, serves until SIGINT/SIGTERM (or `--duration`),
//!   detaches and prints a statistics summary.
//!   With `--workers N`, worker i serves queue i on its own core (`--cores`), listeners are
//!   replicated on every worker, and the main thread answers `xdptcp stat` on
//!   `@xdptcp/<iface>` (abstract Unix socket, per network namespace: [`crate::control`]).
//!   Once attached it runs as `--user` (default `nobody`) with only CAP_NET_ADMIN
//!   ([`crate::control::privileges`]). With `--metrics ADDR:PORT` a thread of its own
//!   answers Prometheus scrapes ([`crate::control::metrics`]).
//! - `xdptcp connect --iface IF --addr IP --remote IP:PORT [--message TEXT]`: the stack as a
//!   client: connect, send, read the echo, close; prints what came back.
//! - `xdptcp run --iface IF --addr IP [--set KEY=VALUE ...] -- CMD ARGS`: CMD with its TCP
//!   sockets on the stack ([`crate::launch`], docs/posix.md); exits with CMD's status.
//! - `xdptcp stat [--iface IF] [--json]`: per-state connection counts, queue depths, cookies,
//!   resets, drops and hand-offs of a running serve, per worker and in total.
//! - `xdptcp ss [-tanlois H] [--json] [--iface IF] [FILTER]`: its sockets, as iproute2's ss
//!   shows the kernel's ([`crate::control::ss`]).
//! - `xdptcp capture [--iface IF] -w FILE [-c COUNT] [FILTER]`: its frames in and out as
//!   pcapng ([`crate::control::capture`]).
//! - `xdptcp trace [--iface IF] [-n MAX] [-c COUNT] [--svg FILE] [FILTER]`: its live
//!   connections as ladder diagrams ([`crate::control::trace`]).
//!
//! Every start-up failure prints one line `xdptcp: ...` on stderr and exits with status 1
//! (2 for bad flags; 3 when a worker panicked: [`EXIT_WORKER_PANIC`]).
//!
//! This module only parses arguments and prints: the stack is brought up and run by
//! [`crate::stack`], the stat socket, the reports and the stop signals are
//! [`crate::control`]'s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration as StdDuration;

use clap::{Args, Parser, Subcommand};

use crate::app::client::Client;
use crate::app::server::{AppKind, Server, UnknownApp};
use crate::control::{self, report, StatMeta, StatServer};
use crate::phy::AfXdpConfig;
use crate::stack::{Stack, StackOptions};
use crate::tcp::config::ConfigError;
use crate::tcp::TcpConfig;
use crate::time::Duration;
use crate::worker::{IdleMode, WorkerConfig, WorkerSnapshot};

mod capture;
mod ss;
mod trace;

/// The `xdptcp` command line: one of the subcommands.
#[derive(Debug, Parser)]
#[command(
    name = "xdptcp",
    version,
    about = "A kernel-bypass TCP/IP stack on AF_XDP"
)]
pub struct Cli {
    /// The subcommand and its flags.
    #[command(subcommand)]
    pub command: Command,
}

/// `xdptcp serve`, `connect` or `stat`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve example applications on steered ports.
    Serve(ServeArgs),
    /// Connect to a server, send a message, print the echo.
    Connect(ConnectArgs),
    /// Statistics of a running `xdptcp serve` (like `ss -s`), per worker and in total.
    Stat(StatArgs),
    /// The sockets of a running `xdptcp serve`, like iproute2's `ss -t`.
    Ss(ss::SsArgs),
    /// Write what a running `xdptcp serve` receives and sends to a pcapng file, like
    /// `tcpdump -w`.
    Capture(capture::CaptureArgs),
    /// Follow live connections of a running `xdptcp serve` as ladder diagrams.
    Trace(trace::TraceArgs),
    /// Run a program with its TCP sockets on the stack (LD_PRELOAD of libxdptcp_posix.so).
    Run(RunArgs),
}

/// `xdptcp run`: a program with the stack underneath.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Interface to attach to (its queue 0).
    #[arg(long = "iface")]
    pub iface: String,
    /// The stack's addresses (repeatable, each on the interface): at most one IPv4 address
    /// and any IPv6 addresses; the program's AF_INET and AF_INET6 sockets bound to them (or to the
    /// wildcard) and its connects to other hosts go through the stack.
    #[arg(long, required = true)]
    pub addr: Vec<IpAddr>,
    /// TCP setting named after its Linux sysctl (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Ephemeral port range for the program's connects.
    #[arg(long, default_value = "61000-61999", value_name = "LO-HI")]
    pub ephemeral: String,
    /// Queues 0..N for the program's worker processes: each forked process that uses the
    /// stack claims one (docs/posix.md, "Processes"); the first process serves queue 0.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// The program and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// Flags of `xdptcp stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// The interface the serve runs on (default: every running serve).
    #[arg(long = "iface")]
    pub iface: Option<String>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options shared by both commands.
#[derive(Debug, Args)]
pub struct Common {
    /// Interface to attach to (its queue 0).
    #[arg(long = "iface")]
    pub iface: String,
    /// The stack's addresses (repeatable): at most one IPv4 address and any IPv6 addresses,
    /// at least one in all, each on the interface (the kernel keeps answering ARP and
    /// neighbour solicitations); with both families one stack serves both (dual-stack),
    /// with IPv6 addresses only the stack takes no IPv4 at all.
    #[arg(long, required = true)]
    pub addr: Vec<IpAddr>,
    /// Try AF_XDP zero-copy (falls back to copy mode with a message if the driver refuses).
    #[arg(long)]
    pub zero_copy: bool,
    /// TCP setting named after its Linux sysctl, e.g. `--set tcp_syncookies=2` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Ephemeral port range for active opens, steered to the stack and reserved from the
    /// kernel (net.ipv4.ip_local_reserved_ports) while running.
    #[arg(long, default_value = "61000-61999", value_name = "LO-HI")]
    pub ephemeral: String,
    /// Pin the worker to this core (worker i of several: core + i).
    #[arg(long)]
    pub core: Option<usize>,
    /// Pin worker i to the i-th core of this comma-separated list (default with several
    /// workers: the machine's cores in order).
    #[arg(long, value_delimiter = ',', conflicts_with = "core")]
    pub cores: Vec<usize>,
    /// Sleep when idle (adaptive idle) instead of busy-polling.
    #[arg(long)]
    pub adaptive_idle: bool,
}

/// Flags of `xdptcp serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Interface, address and stack settings.
    #[command(flatten)]
    pub common: Common,
    /// PORT=APP with APP one of echo, discard, http, close-first, source (repeatable).
    #[arg(long = "listen", value_name = "PORT=APP", required = true)]
    pub listen: Vec<String>,
    /// Worker threads, one per NIC queue (queues 0..N; at most the interface's queues).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Accept-queue backlog per listener (capped by somaxconn).
    #[arg(long, default_value_t = 1024)]
    pub backlog: usize,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<u64>,
    /// TCP_NODELAY on every accepted connection (Nagle off), as latency servers set it.
    #[arg(long)]
    pub nodelay: bool,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (a kernel socket on its own
    /// thread; not a port the stack steers, e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<String>,
    /// Once attached, run as this user, keeping only CAP_NET_ADMIN (see docs/security.md);
    /// default `nobody` where it exists; `root` keeps full root.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Keep each connection's last few events (64 bytes per connection slot) for
    /// `xdptcp ss -i --history`.
    #[arg(long)]
    pub history: bool,
}

/// Flags of `xdptcp connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Interface, address and stack settings.
    #[command(flatten)]
    pub common: Common,
    /// Server address, IPv4 (`IP:PORT`) or IPv6 (`[IP]:PORT`, from the first IPv6 `--addr`).
    #[arg(long)]
    pub remote: SocketAddr,
    /// What to send; the echo of as many bytes is read back.
    #[arg(long, default_value = "hello from xdptcp\n")]
    pub message: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// A start-up or run failure: the line to print and the exit status.
#[derive(Debug)]
pub struct Failure {
    /// One line for stderr.
    pub message: String,
    /// The exit status: 1 for a failure at run time, 2 for a bad flag.
    pub status: i32,
}

fn fail(status: i32, message: impl Into<String>) -> Failure {
    Failure {
        message: message.into(),
        status,
    }
}

/// A bad flag value: the one line `xdptcp` prints before exiting with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// `--listen` that is not `PORT=APP`.
    #[error(
        "bad --listen {arg:?}: expected PORT=APP (APP: echo, discard, http, close-first, source)"
    )]
    ListenForm {
        /// The flag's value.
        arg: String,
    },
    /// `--listen` with a port that is not 1-65535.
    #[error("bad --listen {arg:?}: {port:?} is not a port number (1-65535)")]
    ListenPort {
        /// The flag's value.
        arg: String,
        /// Its port part.
        port: String,
    },
    /// `--listen` with an unknown application.
    #[error("bad --listen {arg:?}: {source}")]
    ListenApp {
        /// The flag's value.
        arg: String,
        /// The application name that is not known.
        source: UnknownApp,
    },
    /// `--ephemeral` that is not `LO-HI` with 1 <= LO <= HI <= 65535.
    #[error("bad --ephemeral {0:?}: expected LO-HI with 1 <= LO <= HI <= 65535")]
    Ephemeral(String),
    /// `--addr` more than once with an IPv4 address.
    #[error("bad --addr {0}: at most one IPv4 address (have {1} already)")]
    AddrSecondV4(Ipv4Addr, Ipv4Addr),
    /// The same `--addr` twice.
    #[error("bad --addr {0}: given twice")]
    AddrTwice(IpAddr),
    /// No `--addr` at all (clap requires one; a library caller may not).
    #[error("bad --addr: at least one address is needed (IPv4, IPv6 or both)")]
    AddrNone,
    /// `--set` without `=`.
    #[error("bad --set {0:?}: expected KEY=VALUE")]
    SetForm(String),
    /// `--set` with a key or value the TCP settings refuse.
    #[error("bad --set {arg:?}: {source}")]
    Set {
        /// The flag's value.
        arg: String,
        /// Why the settings refused it.
        source: ConfigError,
    },
}

/// `PORT=APP`.
pub fn parse_listen(s: &str) -> Result<(u16, AppKind), ArgError> {
    let (port, app) = s
        .split_once('=')
        .ok_or_else(|| ArgError::ListenForm { arg: s.into() })?;
    let port_num: u16 =
        port.parse()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| ArgError::ListenPort {
                arg: s.into(),
                port: port.into(),
            })?;
    let kind = app.parse().map_err(|source| ArgError::ListenApp {
        arg: s.into(),
        source,
    })?;
    Ok((port_num, kind))
}

/// `LO-HI`.
pub fn parse_range(s: &str) -> Result<(u16, u16), ArgError> {
    let bad = || ArgError::Ephemeral(s.into());
    let (lo, hi) = s.split_once('-').ok_or_else(bad)?;
    let (lo, hi): (u16, u16) = (
        lo.parse().map_err(|_| bad())?,
        hi.parse().map_err(|_| bad())?,
    );
    if lo == 0 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Applies `--set KEY=VALUE` options to the defaults.
pub fn parse_sets(sets: &[String]) -> Result<TcpConfig, ArgError> {
    let mut cfg = TcpConfig::default();
    for s in sets {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| ArgError::SetForm(s.clone()))?;
        cfg.set(k, v).map_err(|source| ArgError::Set {
            arg: s.clone(),
            source,
        })?;
    }
    Ok(cfg)
}

fn usage(e: ArgError) -> Failure {
    fail(2, e.to_string())
}

/// `--addr`s: at most one IPv4 address and any IPv6 ones (in the order given), at least
/// one in all, none twice.
pub fn split_addrs(addrs: &[IpAddr]) -> Result<(Option<Ipv4Addr>, Vec<Ipv6Addr>), ArgError> {
    let (mut v4, mut v6) = (None, Vec::new());
    for (i, &a) in addrs.iter().enumerate() {
        if addrs[..i].contains(&a) {
            return Err(ArgError::AddrTwice(a));
        }
        match a {
            IpAddr::V4(a) => match v4 {
                Some(have) => return Err(ArgError::AddrSecondV4(a, have)),
                None => v4 = Some(a),
            },
            IpAddr::V6(a) => v6.push(a),
        }
    }
    if v4.is_none() && v6.is_empty() {
        return Err(ArgError::AddrNone);
    }
    Ok((v4, v6))
}

fn options(c: &Common, ports: Vec<u16>, workers: usize) -> Result<StackOptions, Failure> {
    let (addr, _) = split_addrs(&c.addr).map_err(usage)?;
    let tcp = parse_sets(&c.set).map_err(usage)?;
    let ephemeral = parse_range(&c.ephemeral).map_err(usage)?;
    if let Some(p) = ports
        .iter()
        .find(|p| (ephemeral.0..=ephemeral.1).contains(p))
    {
        return Err(fail(
            2,
            format!(
                "bad --listen: port {p} is inside the ephemeral range {}",
                c.ephemeral
            ),
        ));
    }
    Ok(StackOptions {
        ifname: c.iface.clone(),
        addr,
        extra_addrs: Vec::new(),
        ports,
        ephemeral,
        zero_copy: c.zero_copy,
        reserve_ports: true,
        tcp,
        afxdp: AfXdpConfig::default(),
        worker: WorkerConfig {
            core: c.core,
            idle: if c.adaptive_idle {
                IdleMode::Adaptive {
                    spins: 1000,
                    sleep: Duration::from_micros(50),
                }
            } else {
                IdleMode::BusyPoll
            },
            ..WorkerConfig::default()
        },
        workers,
        cores: if c.cores.is_empty() && c.core.is_none() && workers > 1 {
            crate::stack::machine_cores()
        } else {
            c.cores.clone()
        },
        rss_key: None,
    })
}

fn open(o: &StackOptions, addrs6: &[Ipv6Addr]) -> Result<Stack, Failure> {
    let s = Stack::open_dual(o, addrs6).map_err(|e| fail(1, e.to_string()))?;
    if s.zero_copy_fallback {
        eprintln!(
            "xdptcp: zero-copy is not supported on {}; running in copy mode",
            o.ifname
        );
    }
    Ok(s)
}

/// `xdptcp serve`.
pub fn serve(a: &ServeArgs) -> Result<(), Failure> {
    let listens = a
        .listen
        .iter()
        .map(|s| parse_listen(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    if a.workers == 0 {
        return Err(fail(2, "bad --workers 0: at least 1"));
    }
    let o = options(&a.common, listens.iter().map(|l| l.0).collect(), a.workers)?;
    let (_, addrs6) = split_addrs(&a.common.addr).map_err(usage)?;
    let metrics = bind_metrics(a.metrics.as_deref())?;
    let mut stack = open(&o, &addrs6)?;
    for w in &mut stack.workers {
        w.iface.endpoint_mut().record_history(a.history);
    }
    let mut servers: Vec<Server> = (0..a.workers)
        .map(|_| {
            let mut server = Server::new(a.backlog);
            server.nodelay = a.nodelay;
            for &(port, kind) in &listens {
                server.add(port, kind.build());
            }
            server
        })
        .collect();
    let mut stat = StatServer::bind(&o.ifname).map_err(|e| {
        fail(
            1,
            format!("stat socket {}: {e}", control::socket_display(&o.ifname)),
        )
    })?;
    // Root is needed to attach and bind; from here on only CAP_NET_ADMIN (and a root janitor
    // for the reserved-ports record). Single-threaded still: no worker has started.
    let user = serve_user(a.user.as_deref())?;
    let mut janitor = None;
    if let Some(u) = &user {
        if let Some(r) = stack.reserved_ports() {
            let mut r = r.clone();
            janitor = Some(
                control::privileges::Janitor::spawn(move || r.release())
                    .map_err(|e| fail(1, e.to_string()))?,
            );
        }
        control::privileges::drop_to(u).map_err(|e| fail(1, e.to_string()))?;
        stat.allow_uid(u.uid);
    }
    let stop = control::stop_on_signals();
    let deadline = a
        .duration
        .map(|secs| std::time::Instant::now() + StdDuration::from_secs(secs));
    let apps: Vec<String> = listens.iter().map(|(p, k)| format!("{p}={k}")).collect();
    println!(
        "xdptcp: serving on {} {} ports {}; {} worker{}, {} mode, ephemeral {}-{}; stat {}; \
         user {}",
        o.ifname,
        o.addr
            .map(IpAddr::from)
            .into_iter()
            .chain(addrs6.iter().map(|&a| a.into()))
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(","),
        apps.join(","),
        a.workers,
        if a.workers == 1 { "" } else { "s" },
        if o.zero_copy && !stack.zero_copy_fallback {
            "zero-copy"
        } else {
            "copy"
        },
        o.ephemeral.0,
        o.ephemeral.1,
        stat.name(),
        user.as_ref().map_or("root".to_string(), |u| format!(
            "{} (CAP_NET_ADMIN)",
            u.name
        ))
    );
    if let Some(m) = &metrics {
        println!("xdptcp: metrics on http://{}/metrics", m.local_addr());
    }
    flush_stdout();
    // The stack's address in reports: its IPv4 one, else its first IPv6 one.
    let addr = o
        .addr
        .map(IpAddr::from)
        .or_else(|| addrs6.first().map(|&a| a.into()))
        .ok_or_else(|| usage(ArgError::AddrNone))?;
    let meta = StatMeta {
        ifname: o.ifname.clone(),
        addr,
        pid: std::process::id(),
        xdp: stack.xdp_cookie_stats(),
        routes: Some(stack.route_stats()),
    };
    let flag = stop.clone();
    let metrics_meta = crate::control::metrics::Meta {
        ifname: o.ifname.clone(),
        addr,
        xdp: stack.xdp_cookie_stats(),
        routes: Some(stack.route_stats()),
    };
    // The control thread: answers `xdptcp stat` (and, with --metrics, scrapes on a thread of
    // its own, until dropped at the end of this closure) until stopped.
    let snaps = stack.run(&mut servers, stop.clone(), |handles| {
        let _metrics = metrics.and_then(|m| {
            m.spawn(metrics_meta, handles.to_vec())
                .map_err(|e| eprintln!("xdptcp: metrics thread: {e}"))
                .ok()
        });
        control::answer_until(&stat, &meta, handles, &flag, deadline)
    });
    drop(stat);
    let snaps = match snaps {
        Ok(s) => s,
        Err(p) => {
            // Everything is undone on the way out: the program detached (the bpf_link
            // closes), the reserved ports restored and the record removed (janitor), the
            // stat socket gone (it is abstract).
            drop(stack);
            drop(janitor);
            return Err(fail(
                EXIT_WORKER_PANIC,
                format!("{p}; all workers stopped, XDP program detached"),
            ));
        }
    };
    if let Some((port, e)) = servers.iter().find_map(|s| s.listen_errors.first()) {
        return Err(fail(1, format!("listen on port {port}: {e}")));
    }
    println!("xdptcp: stopped.");
    for s in &snaps {
        print_summary(s);
    }
    if let Ok(c) = stack.steering().counters() {
        println!(
            "xdptcp: xdp: {} redirected, {} passed to the kernel, {} malformed, {} without a \
             socket, {} fragments passed, {} first fragments dropped, {} ICMP errors for the \
             stack's flows",
            c.redirected,
            c.passed,
            c.malformed,
            c.no_socket,
            c.fragments,
            c.fragments_dropped,
            c.icmp_errors
        );
        if let Some(x) = stack.xdp_cookie_stats() {
            let x: Vec<String> = x
                .counters()
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect();
            println!(
                "xdptcp: xdp cookies: {} SYN-ACKs, {} left to workers; {}",
                c.cookie_syn_acks,
                c.cookie_slow,
                x[2..].join(", ")
            );
        }
    }
    flush_stdout();
    // Detach first, then the janitor restores the ports and removes the record.
    drop(stack);
    drop(janitor);
    Ok(())
}

/// Exit status of `serve` when a worker panicked (1: start-up or run failure, 2: bad flags).
pub const EXIT_WORKER_PANIC: i32 = 3;

/// The user `serve` drops to: `--user NAME` (`root`: none), default `nobody` if it exists.
fn serve_user(arg: Option<&str>) -> Result<Option<control::privileges::User>, Failure> {
    use control::privileges::lookup_user;
    match arg {
        Some("root") => Ok(None),
        Some(name) => match lookup_user(name) {
            Ok(Some(u)) => Ok(Some(u)),
            Ok(None) => Err(fail(2, format!("bad --user {name:?}: no such user"))),
            Err(e) => Err(fail(1, format!("--user {name:?}: {e}"))),
        },
        None => Ok(lookup_user("nobody").ok().flatten()),
    }
}

/// `--metrics ADDR:PORT`: bound before anything is attached, so a bad value or a port in
/// use fails start-up (status 2 / 1, like the other flags and sockets).
fn bind_metrics(
    arg: Option<&str>,
) -> Result<Option<crate::control::metrics::MetricsServer>, Failure> {
    let Some(arg) = arg else { return Ok(None) };
    let addr = crate::control::metrics::parse_addr(arg).map_err(|m| fail(2, m.to_string()))?;
    crate::control::metrics::MetricsServer::bind(addr)
        .map(Some)
        .map_err(|e| fail(1, format!("metrics {addr}: {e}")))
}

/// `xdptcp stat`: the serve of `--iface`, or every serve of this network namespace (one that
/// does not answer is reported on stderr and skipped; status 1 only if none answered).
pub fn stat_cmd(a: &StatArgs) -> Result<(), Failure> {
    let Some(i) = &a.iface else {
        let r = control::running();
        if r.is_empty() {
            return Err(fail(
                1,
                format!(
                    "no xdptcp serve running in this network namespace (no {}* socket)",
                    control::socket_display("")
                ),
            ));
        }
        let mut answered = 0;
        for i in &r {
            match control::query(i, a.json) {
                Ok(rep) => {
                    print!("{rep}");
                    answered += 1;
                }
                Err(e) => eprintln!("xdptcp: {e} (skipped)"),
            }
        }
        flush_stdout();
        return match answered {
            0 => Err(fail(1, "no running xdptcp serve answered")),
            _ => Ok(()),
        };
    };
    print!(
        "{}",
        control::query(i, a.json).map_err(|e| fail(1, e.to_string()))?
    );
    flush_stdout();
    Ok(())
}

/// `xdptcp connect`.
pub fn connect(a: &ConnectArgs) -> Result<(), Failure> {
    let o = options(&a.common, Vec::new(), 1)?;
    let (addr4, addrs6) = split_addrs(&a.common.addr).map_err(usage)?;
    if a.remote.is_ipv6() && addrs6.is_empty() {
        return Err(fail(2, "bad --remote: an IPv6 server needs an IPv6 --addr"));
    }
    if a.remote.is_ipv4() && addr4.is_none() {
        return Err(fail(2, "bad --remote: an IPv4 server needs an IPv4 --addr"));
    }
    let mut stack = open(&o, &addrs6)?;
    let stop = control::stop_on_signals();
    stack.workers[0].set_stop_flag(stop.clone());
    let timeout = a.timeout;
    control::stop_after(stop, timeout);
    let mut client = Client::new(a.remote, a.message.as_bytes());
    stack.workers[0].run(&mut client);
    match client.outcome() {
        Some(Ok(data)) => {
            println!(
                "xdptcp: received {} bytes from {}: {:?}",
                data.len(),
                a.remote,
                String::from_utf8_lossy(data)
            );
            Ok(())
        }
        Some(Err(e)) => Err(fail(1, format!("connect to {}: {e}", a.remote))),
        None => Err(fail(
            1,
            format!("connect to {}: no answer within {timeout} s", a.remote),
        )),
    }
}

/// `xdptcp run`: checks the flags, then becomes the program (returns only on failure).
pub fn run(a: &RunArgs) -> Result<(), Failure> {
    parse_sets(&a.set).map_err(usage)?;
    let ephemeral = parse_range(&a.ephemeral).map_err(usage)?;
    if !(1..=64).contains(&a.workers) {
        return Err(fail(
            2,
            format!(
                "bad --workers {}: 1..=64 (the queues the program's worker processes share)",
                a.workers
            ),
        ));
    }
    let (addr, addrs6) = split_addrs(&a.addr).map_err(usage)?;
    let spec = crate::launch::RunSpec {
        iface: a.iface.clone(),
        addr,
        addrs6,
        sets: a.set.clone(),
        ephemeral,
        workers: a.workers,
    };
    let (program, args) = a
        .cmd
        .split_first()
        .ok_or_else(|| fail(2, "no program to run"))?;
    let e = crate::launch::exec(&spec, program, args);
    Err(fail(127, e.to_string()))
}

fn flush_stdout() {
    use std::io::Write;
    let _ = std::io::stdout().flush();
}

fn print_summary(s: &WorkerSnapshot) {
    for l in report::summary_lines(s) {
        println!("{l}");
    }
}

/// Parses the command line and runs; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let r = match &cli.command {
        Command::Serve(a) => serve(a),
        Command::Connect(a) => connect(a),
        Command::Stat(a) => stat_cmd(a),
        Command::Ss(a) => ss::run(a),
        Command::Capture(a) => capture::run(a),
        Command::Trace(a) => trace::run(a),
        Command::Run(a) => run(a),
    };
    match r {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("xdptcp: {}", f.message);
            f.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_parsing() {
        assert_eq!(parse_listen("7=echo"), Ok((7, AppKind::Echo)));
        assert_eq!(parse_listen("80=http"), Ok((80, AppKind::Http)));
        assert_eq!(parse_listen("9=close-first"), Ok((9, AppKind::CloseFirst)));
        assert_eq!(parse_listen("19=source"), Ok((19, AppKind::Source)));
        let err = |s: &str| parse_listen(s).unwrap_err().to_string();
        assert!(err("7").contains("expected PORT=APP"));
        assert!(err("0=echo").contains("not a port"));
        assert!(err("x=echo").contains("not a port"));
        assert_eq!(
            err("7=ftp"),
            "bad --listen \"7=ftp\": unknown application \"ftp\" \
             (one of: echo, discard, http, close-first, source)"
        );
    }

    #[test]
    fn range_and_set_parsing() {
        assert_eq!(parse_range("61000-61999"), Ok((61000, 61999)));
        assert!(parse_range("5-4").is_err());
        assert!(parse_range("0-4").is_err());
        assert!(parse_range("x").is_err());
        let c = parse_sets(&["tcp_syncookies=2".into()]).unwrap();
        assert_eq!(c.syncookies, crate::tcp::SynCookieMode::Always);
        assert!(parse_sets(&["tcp_syncookies".into()])
            .unwrap_err()
            .to_string()
            .contains("KEY=VALUE"));
        assert!(parse_sets(&["no_such_key=1".into()])
            .unwrap_err()
            .to_string()
            .starts_with("bad --set"));
    }

    #[test]
    fn addr_parsing() {
        let v4: IpAddr = Ipv4Addr::new(198, 18, 0, 1).into();
        let a6 = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
        let b6 = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
        // IPv4 only, dual-stack, IPv6 only (one or several), in the order given.
        assert_eq!(
            split_addrs(&[v4]),
            Ok((Some(Ipv4Addr::new(198, 18, 0, 1)), vec![]))
        );
        assert_eq!(
            split_addrs(&[a6.into(), v4, b6.into()]),
            Ok((Some(Ipv4Addr::new(198, 18, 0, 1)), vec![a6, b6]))
        );
        assert_eq!(split_addrs(&[a6.into()]), Ok((None, vec![a6])));
        assert_eq!(
            split_addrs(&[b6.into(), a6.into()]),
            Ok((None, vec![b6, a6]))
        );
        // The exact lines `xdptcp` prints (after "xdptcp: ").
        let err = |a: &[IpAddr]| split_addrs(a).unwrap_err().to_string();
        assert_eq!(
            err(&[v4, Ipv4Addr::new(198, 18, 0, 3).into()]),
            "bad --addr 198.18.0.3: at most one IPv4 address (have 198.18.0.1 already)"
        );
        assert_eq!(
            err(&[a6.into(), b6.into(), a6.into()]),
            "bad --addr 2001:2::1: given twice"
        );
        assert_eq!(err(&[v4, v4]), "bad --addr 198.18.0.1: given twice");
        assert_eq!(
            err(&[]),
            "bad --addr: at least one address is needed (IPv4, IPv6 or both)"
        );
    }
}
