//! `synflood`: a flood from the client side ([`crate::flood`]: AF_XDP TX, spoofed
//! sources in 198.19.0.0/16) while legitimate Linux clients connect at a fixed rate (open
//! loop), exchange 64 bytes with the echo server and close. Its own section (like the
//! ceiling), one row per server and flood:
//!
//! - servers: the Linux kernel (`tcp_syncookies=1`), the stack with user-space cookies
//!   (`tcp_syncookies=1`), the stack with XDP cookies (`tcp_syncookies=1`,
//!   `xdp_syncookies=1`); all with a SYN queue of [`SYN_BACKLOG`] so cookies start early;
//! - floods: none (the baseline), `syn`, `ack` (random ACKs to the listening port), `rst`
//!   (random-sequence RSTs against [`HELD`] established connections that keep exchanging).
//!
//! Set-up: one veth pair of its own ([`VethNetns`]); the server namespace routes
//! 198.19.0.0/16 back via the client (so every reply stays on the pair); the client
//! namespace has no address there and forwarding off, so its kernel drops those replies and
//! counts them (`Ip InAddrErrors`: the "delivered" rate; "answered" is what the server
//! counted as sent: its cookies, RSTs or challenge ACKs). The client veth carries our
//! steering program with no listeners (it passes everything): on veth, XDP_TX frames reach
//! the peer promptly only when the peer has an XDP program (a finding recorded in docs/benchmarks.md).
//! The generator runs on the client core (1), as do the legitimate clients; the server on
//! core 0. On veth the receiver's XDP program and the kernel's receive path run in the
//! *sender's* softirq: the flood's receive work lands on the client core, not the server's.

use crate::client::{self, OP_TIMEOUT};
use crate::error::{bail, format_err, Context, Result};
use crate::flood::{self, Kind, Target};
use crate::flood_client::{hold, legit_cps};
pub use crate::flood_client::{HELD, MAX_PENDING};
use crate::kinds::ServerApp;
use crate::linux_server::LinuxServer;
use crate::memory;
use crate::netns::VethNetns;
use crate::pairing::{self, ServerHandle};
use crate::report::fmt_num;
use crate::sys;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use xdptcp::phy::AfXdpDevice;
use xdptcp_harness::NetnsGuard;

/// The listening port of every row.
pub const PORT: u16 = 7200;
/// `tcp_max_syn_backlog` (and `somaxconn` for Linux) of every server: small, so that
/// cookies start after this many half-open connections.
pub const SYN_BACKLOG: u32 = 1024;
/// The flood runs this long before the legitimate clients start.
const WARMUP: Duration = Duration::from_millis(300);

/// Knobs of the section.
#[derive(Clone, Debug)]
pub struct FloodOpts {
    /// Legitimate clients' measuring time per row.
    pub duration: Duration,
    /// Legitimate connection attempts per second (open loop).
    pub legit_rate: f64,
    /// Flood frames per second at most; None: as fast as the generator goes.
    pub flood_rate: Option<f64>,
}

/// The servers of the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    Linux,
    StackCookies,
    StackXdpCookies,
}

impl Server {
    pub const ALL: [Server; 3] = [Server::Linux, Server::StackCookies, Server::StackXdpCookies];

    pub fn name(self) -> &'static str {
        match self {
            Server::Linux => "linux",
            Server::StackCookies => "stack",
            Server::StackXdpCookies => "stack-xdp",
        }
    }

    /// The stack's `--set` values (the Linux server's are sysctls, [`server_sysctls`]).
    fn sets(self) -> Vec<String> {
        let mut v = vec![
            "tcp_syncookies=1".to_string(),
            format!("tcp_max_syn_backlog={SYN_BACKLOG}"),
        ];
        if self == Server::StackXdpCookies {
            v.push("xdp_syncookies=1".into());
        }
        v
    }

    /// The counters the table shows for this server under `flood` (deltas; all of them are
    /// in the JSON).
    fn shown(self, flood: &str) -> &'static [&'static str] {
        match (self, flood) {
            (Server::Linux, "syn") => &[
                "TcpExt.SyncookiesSent",
                "TcpExt.TCPReqQFullDoCookies",
                "TcpExt.ListenDrops",
            ],
            (Server::Linux, "ack") => &["TcpExt.SyncookiesFailed", "Tcp.OutRsts"],
            (Server::Linux, "rst") => &["TcpExt.TCPChallengeACK", "Tcp.EstabResets"],
            (_, "syn") => &[
                "xdp_cookie_syn_acks",
                "cookies_sent",
                "syn_dropped",
                "listen_overflows",
            ],
            (_, "ack") => &["cookies_rejected", "rst_listen_bad_ack"],
            (_, "rst") => &["challenge_acks_sent", "challenge_acks_suppressed"],
            _ => &[],
        }
    }

    /// The counters that sum to the server's replies to `flood`.
    fn answers(self, flood: &str) -> &'static [&'static str] {
        match (self, flood) {
            (Server::Linux, "syn") => &["TcpExt.SyncookiesSent"],
            (Server::Linux, "ack") => &["Tcp.OutRsts"],
            (Server::Linux, "rst") => &["TcpExt.TCPChallengeACK"],
            (_, "syn") => &["cookies_sent", "xdp_cookie_syn_acks"],
            (_, "ack") => &["rst_listen_bad_ack"],
            (_, "rst") => &["challenge_acks_sent"],
            _ => &[],
        }
    }
}

/// One row: a server under one flood (or none).
#[derive(Clone, Debug, Default, Serialize)]
pub struct FloodRow {
    pub server: String,
    /// `none`, `syn`, `ack` or `rst`.
    pub flood: String,
    /// Flood frames/s the generator sent.
    pub offered_pps: f64,
    /// Replies per second as the server counted them ([`Server::answers`]): SYN-ACKs for
    /// `syn`, RSTs for `ack`, challenge ACKs for `rst`.
    pub answered_pps: f64,
    /// Replies to spoofed sources per second that reached the client namespace (its kernel
    /// drops them: `Ip InAddrErrors`); below `answered_pps` when the veth rings overflow.
    pub delivered_pps: f64,
    pub attempted: u64,
    pub completed: u64,
    pub failed: u64,
    /// Of `failed`: attempts without an answer within [`OP_TIMEOUT`] (the others were
    /// refused or reset).
    pub timed_out: u64,
    /// Handshake latency percentiles (µs), from the scheduled connect time.
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// Busy share (0..1) of the server core (0) and the client core (1) from /proc/stat
    /// (the whole machine's load on those cores).
    pub server_busy: f64,
    pub client_busy: f64,
    /// `rst`: exchanges on the held connections (ok, failed) and connections that died.
    pub held: Option<(u64, u64, u64)>,
    /// The server's counters that moved (Linux: netstat/snmp of the server namespace; the
    /// stack: `xdptcp stat` totals).
    pub counters: BTreeMap<String, i64>,
    pub error: Option<String>,
}

/// The section's result.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FloodSection {
    pub rows: Vec<FloodRow>,
    pub error: Option<String>,
    pub details: Value,
}

/// Removes `synflood` from a `--scenarios` list: (the rest, whether it was there).
pub fn take_selection(list: &str) -> (String, bool) {
    let mut found = false;
    let rest: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|s| {
            found |= *s == "synflood";
            *s != "synflood" && !s.is_empty()
        })
        .collect();
    (rest.join(","), found)
}

/// Runs every server with every flood.
pub fn run(opts: &FloodOpts) -> FloodSection {
    let mut s = FloodSection::default();
    if let Err(e) = run_inner(opts, &mut s) {
        s.error = Some(format!("{e:#}"));
    }
    s
}

fn ip_in(ns: &str, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns])
        .args(args)
        .output()
        .context("ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The server namespace's sysctls for the section: cookies when the SYN queue is full, a
/// small SYN queue (the listener's backlog is capped by somaxconn).
fn server_sysctls(env: &VethNetns) -> Result<()> {
    let b = format!("net.ipv4.tcp_max_syn_backlog={SYN_BACKLOG}");
    let c = format!("net.core.somaxconn={SYN_BACKLOG}");
    #[rustfmt::skip]
    env.pair.run_in_stack(&["sysctl", "-qw", "net.ipv4.tcp_syncookies=1", &b, &c])?;
    Ok(())
}

fn run_inner(opts: &FloodOpts, sec: &mut FloodSection) -> Result<()> {
    if !sys::is_root() {
        bail!("synflood needs root (network namespaces, XDP): run as root");
    }
    let env = VethNetns::create()?;
    let gw = env.client_ip.to_string();
    ip_in(
        &env.server_ns,
        &["route", "add", "198.19.0.0/16", "via", &gw],
    )?;
    server_sysctls(&env)?;
    // Static neighbour entries both ways: a flood at this rate overflows the veth rings, and
    // a lost ARP reply would leave a side without its peer's MAC (connects then fail with
    // EHOSTUNREACH), which is not what this measures.
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let (smac, pmac) = (mac(env.pair.stack_mac), mac(env.pair.peer_mac));
    let (sip, cip) = (env.server_ip.to_string(), env.client_ip.to_string());
    #[rustfmt::skip]
    ip_in(&env.client_ns, &["neigh", "replace", &sip, "lladdr", &smac, "dev", &env.client_if,
        "nud", "permanent"])?;
    #[rustfmt::skip]
    ip_in(&env.server_ns, &["neigh", "replace", &cip, "lladdr", &pmac, "dev", &env.server_if,
        "nud", "permanent"])?;
    // Forwarding stays off in the client namespace (a fresh namespace's default): replies
    // to 198.19/16 die there.
    env.pair
        .run_in_peer(&["sysctl", "-qw", "net.ipv4.ip_forward=0"])?;
    // Declaration order is drop order reversed: the socket goes before the program.
    let g = NetnsGuard::enter(&env.client_ns)?;
    let mut dev = AfXdpDevice::open(&env.client_if, 0, flood::gen_cfg())
        .context("AF_XDP socket (flood generator, client veth)")?;
    let _peer_xdp = xdptcp_xdp::Steering::attach(&env.client_if, Default::default())
        .context("XDP program on the client veth (delivers the server's XDP_TX frames)")?;
    drop(g);
    let target = Target {
        src_mac: env.pair.peer_mac,
        dst_mac: env.pair.stack_mac,
        client: env.client_ip,
        server: env.server_ip,
        port: PORT,
    };
    sec.details = json!({
        "link": env.describe(),
        "client_veth_xdp": "steering program, no listeners (XDP_PASS)",
        "spoofed_sources": "198.19.0.0/16 random, ports 1024-65023 random",
        "syn_backlog": SYN_BACKLOG, "held_connections": HELD,
        "legit_rate": opts.legit_rate, "flood_rate_cap": opts.flood_rate,
        "generator": "AF_XDP socket (copy mode, TX only) on the client veth, 58-byte frames",
    });
    for server in Server::ALL {
        if sys::stopped() {
            bail!("stopped by signal");
        }
        match run_server(&env, server, opts, &mut dev, &target) {
            Ok(rows) => sec.rows.extend(rows),
            Err(e) => sec.rows.push(FloodRow {
                server: server.name().into(),
                flood: "-".into(),
                error: Some(format!("{e:#}")),
                ..FloodRow::default()
            }),
        }
    }
    Ok(())
}

/// Either kind of server, stopped on drop.
enum Running {
    Linux(#[allow(dead_code)] LinuxServer),
    Stack(ServerHandle),
}

fn run_server(
    env: &VethNetns,
    server: Server,
    opts: &FloodOpts,
    dev: &mut AfXdpDevice,
    target: &Target,
) -> Result<Vec<FloodRow>> {
    let addr = SocketAddrV4::new(env.server_ip, PORT);
    let running = match server {
        Server::Linux => Running::Linux(LinuxServer::start(
            &env.server_ns,
            addr,
            ServerApp::Echo,
            1,
            &[0],
        )?),
        _ => Running::Stack(pairing::start_stack_server(
            env,
            ServerApp::Echo,
            PORT,
            1,
            &[0],
            true,
            &server.sets(),
        )?),
    };
    crate::scenario::wait_ready(&env.client_ns, addr)?;
    let mut rows = Vec::new();
    for kind in [
        None,
        Some(Kind::Syn),
        Some(Kind::Ack),
        Some(Kind::Rst(Vec::new())),
    ] {
        if sys::stopped() {
            bail!("stopped by signal");
        }
        let name = kind.as_ref().map_or("none", |k| k.name());
        let label = format!("synflood {} {name}", server.name());
        let row =
            run_row(env, server, opts, dev, target, kind, &label).unwrap_or_else(|e| FloodRow {
                error: Some(format!("{e:#}")),
                ..FloodRow::default()
            });
        rows.push(FloodRow {
            server: server.name().into(),
            flood: name.into(),
            ..row
        });
    }
    if let Running::Stack(h) = running {
        h.stop();
    }
    Ok(rows)
}

/// The server's counters: Linux's netstat/snmp of the server namespace, or the stack's
/// `xdptcp stat` totals and XDP cookie counters.
fn server_counters(env: &VethNetns, server: Server) -> BTreeMap<String, i64> {
    if server == Server::Linux {
        return netstat(&env.server_ns);
    }
    let Some(bin) = pairing::xdptcp_serve_binary() else {
        return BTreeMap::new();
    };
    // The stat socket is per network namespace: ask from the server's.
    let out = std::process::Command::new("timeout")
        .arg("10")
        .args(["ip", "netns", "exec", &env.server_ns])
        .arg(bin)
        .args(["stat", "--iface", &env.server_if])
        .output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    parse_stat(&text)
}

/// `key value` pairs of the `total` and `xdp` lines of `xdptcp stat`.
pub fn parse_stat(text: &str) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        if !matches!(w.first(), Some(&"total" | &"xdp")) {
            continue;
        }
        let w = &w[2.min(w.len())..];
        for p in w.chunks(2) {
            if let [k, v] = p {
                if let Ok(v) = v.parse::<i64>() {
                    m.insert(k.to_string(), v);
                }
            }
        }
    }
    m
}

/// A veth end's `ethtool -S` counters and its sysfs rx/tx drops, keyed `PREFIX.name`.
fn veth_stats(ns: &str, ifname: &str, prefix: &str) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    let run = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    for l in run(&["ethtool", "-S", ifname]).lines() {
        if let Some((k, v)) = l.trim().split_once(':') {
            if let Ok(v) = v.trim().parse::<i64>() {
                m.insert(format!("{prefix}.{k}"), v);
            }
        }
    }
    for f in ["rx_dropped", "tx_dropped"] {
        let path = format!("/sys/class/net/{ifname}/statistics/{f}");
        if let Ok(v) = run(&["cat", &path]).trim().parse::<i64>() {
            m.insert(format!("{prefix}.{f}"), v);
        }
    }
    m
}

/// The server's counters and both veth ends' (prefixes `srv_veth`, `cli_veth`).
fn all_counters(env: &VethNetns, server: Server) -> BTreeMap<String, i64> {
    let mut m = server_counters(env, server);
    m.extend(veth_stats(&env.server_ns, &env.server_if, "srv_veth"));
    m.extend(veth_stats(&env.client_ns, &env.client_if, "cli_veth"));
    m
}

fn netstat(ns: &str) -> BTreeMap<String, i64> {
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
}

/// Per-core (busy, total) jiffies of cores 0 and 1 from /proc/stat.
fn cpu_times() -> [(u64, u64); 2] {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut out = [(0, 0); 2];
    for (i, o) in out.iter_mut().enumerate() {
        let tag = format!("cpu{i} ");
        if let Some(l) = text.lines().find(|l| l.starts_with(&tag)) {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().take(8).sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            *o = (total - idle, total);
        }
    }
    out
}

fn busy(a: (u64, u64), b: (u64, u64)) -> f64 {
    let t = b.1.saturating_sub(a.1);
    if t == 0 {
        return 0.0;
    }
    b.0.saturating_sub(a.0) as f64 / t as f64
}

fn delivered(env: &VethNetns) -> i64 {
    let m = netstat(&env.client_ns);
    m.get("Ip.InAddrErrors").copied().unwrap_or(0) + m.get("Ip.InNoRoutes").copied().unwrap_or(0)
}

fn run_row(
    env: &VethNetns,
    server: Server,
    opts: &FloodOpts,
    dev: &mut AfXdpDevice,
    target: &Target,
    kind: Option<Kind>,
    label: &str,
) -> Result<FloodRow> {
    let addr = SocketAddrV4::new(env.server_ip, PORT);
    let (cns, dur, rate) = (env.client_ns.clone(), opts.duration, opts.legit_rate);
    let stop = AtomicBool::new(false);
    let live = AtomicU64::new(0);
    let progress = client::Progress::default();
    let is_rst = matches!(kind, Some(Kind::Rst(_)));
    let kind_name = kind.as_ref().map_or("none", |k| k.name()).to_string();
    let c0 = all_counters(env, server);
    let a0 = delivered(env);
    let t0 = cpu_times();
    let (ports_tx, ports_rx) = mpsc::channel::<Vec<u16>>();
    let held_stop = AtomicBool::new(false);
    let (sent, legit, held) = std::thread::scope(|s| -> Result<_> {
        // The held connections first (rst): the generator needs their ports.
        let held = is_rst.then(|| {
            let (ns, hs) = (cns.clone(), &held_stop);
            s.spawn(move || hold(&ns, addr, ports_tx, hs))
        });
        let kind = match kind {
            Some(Kind::Rst(_)) => {
                match ports_rx.recv_timeout(OP_TIMEOUT + Duration::from_secs(1)) {
                    Ok(ports) => Some(Kind::Rst(ports)),
                    Err(_) => {
                        held_stop.store(true, Relaxed);
                        bail!("the held connections did not open");
                    }
                }
            }
            k => k,
        };
        let gen = kind.map(|k| {
            let (stop, live) = (&stop, &live);
            let limit = dur + WARMUP + OP_TIMEOUT + Duration::from_secs(2);
            s.spawn(move || {
                sys::pin(1);
                flood::run(dev, target, &k, opts.flood_rate, stop, limit, live)
            })
        });
        if gen.is_some() {
            std::thread::sleep(WARMUP);
        }
        let p = &progress;
        let lc = s.spawn(move || legit_cps(&cns, 1, addr, rate, dur, p));
        let start = Instant::now();
        while !lc.is_finished() {
            std::thread::sleep(Duration::from_millis(200));
            progress.bytes.store(live.load(Relaxed) * 58, Relaxed);
            client::progress_line(label, start.elapsed(), dur, &progress, false);
        }
        client::progress_line(label, start.elapsed(), dur, &progress, true);
        let legit = lc
            .join()
            .map_err(|_| format_err!("legit client panicked"))?;
        stop.store(true, Relaxed);
        let sent = gen.map(|g| g.join().unwrap_or_default());
        held_stop.store(true, Relaxed);
        let held = held.map(|h| h.join().map_err(|_| format_err!("holder panicked")));
        Ok((sent, legit, held.transpose()?))
    })?;
    let legit = legit?;
    // Replies still on their way: the stack's rings, the veth queues.
    std::thread::sleep(Duration::from_millis(200));
    let t1 = cpu_times();
    let a1 = delivered(env);
    let counters = memory::counter_delta(&c0, &all_counters(env, server));
    let flood = kind_name.as_str();
    let answers: i64 = server
        .answers(flood)
        .iter()
        .filter_map(|k| counters.get(*k))
        .sum();
    let pct = |q: f64| legit.hist.value_at_quantile(q) as f64 / 1000.0;
    let (offered, secs) = sent.map_or((0.0, 1.0), |s| (s.frames as f64, s.seconds.max(1e-9)));
    Ok(FloodRow {
        offered_pps: offered / secs,
        answered_pps: answers.max(0) as f64 / secs,
        delivered_pps: if sent.is_some() {
            (a1 - a0).max(0) as f64 / secs
        } else {
            0.0
        },
        attempted: legit.attempted,
        completed: legit.completed,
        failed: legit.failed,
        timed_out: legit.timed_out,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        server_busy: busy(t0[0], t1[0]),
        client_busy: busy(t0[1], t1[1]),
        held: held.transpose()?,
        counters,
        ..FloodRow::default()
    })
}

/// The section's table, with the command's targets checked where they apply. `ceiling_rx`:
/// the ceiling's rx 64 B rate in frames/s, if measured in the same run.
pub fn table(s: &FloodSection, ceiling_rx: Option<f64>) -> String {
    let mut out = String::from(
        "synflood: legitimate Linux clients (open loop, connect + 64 B echo + close) under a \
         flood from an AF_XDP sender (spoofed 198.19.0.0/16)\n",
    );
    let head = [
        "server",
        "flood",
        "offered/s",
        "answered/s",
        "delivered/s",
        "attempted",
        "completed",
        "failed",
        "hs p50 us",
        "hs p99 us",
        "hs p99.9 us",
        "srv core",
        "cli core",
        "counters (delta)",
    ];
    let mut cells: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for r in &s.rows {
        if let Some(e) = &r.error {
            cells.push(vec![
                r.server.clone(),
                r.flood.clone(),
                format!("error: {e}"),
            ]);
            continue;
        }
        let server = Server::ALL.into_iter().find(|x| x.name() == r.server);
        let mut shown: Vec<String> = server
            .map(|x| x.shown(&r.flood))
            .unwrap_or(&[])
            .iter()
            .filter_map(|k| Some(format!("{k} {}", fmt_num(*r.counters.get(*k)? as f64))))
            .collect();
        // Lost on the veth before any server code ran: the generator's frames the server
        // veth's ring refused (counted on the client veth's tx), and frames the server veth
        // could not hand to the stack's socket (its ring full: the worker too slow).
        let ring = r.counters.get("cli_veth.tx_dropped").copied().unwrap_or(0);
        let redir = r
            .counters
            .get("srv_veth.rx_queue_0_drops")
            .copied()
            .unwrap_or(0);
        if ring > 0 {
            shown.push(format!("veth ring full {}", fmt_num(ring as f64)));
        }
        if redir > 0 {
            shown.push(format!("socket ring full {}", fmt_num(redir as f64)));
        }
        if let Some((ok, failed, dead)) = r.held {
            shown.insert(0, format!("held: {ok} ok, {failed} failed, {dead} reset"));
        }
        cells.push(vec![
            r.server.clone(),
            r.flood.clone(),
            fmt_num(r.offered_pps),
            fmt_num(r.answered_pps),
            fmt_num(r.delivered_pps),
            fmt_num(r.attempted as f64),
            fmt_num(r.completed as f64),
            if r.timed_out > 0 {
                format!("{} ({} t/o)", fmt_num(r.failed as f64), r.timed_out)
            } else {
                fmt_num(r.failed as f64)
            },
            fmt_num(r.p50_us),
            fmt_num(r.p99_us),
            fmt_num(r.p999_us),
            format!("{:.0}%", r.server_busy * 100.0),
            format!("{:.0}%", r.client_busy * 100.0),
            shown.join(", "),
        ]);
    }
    let ncol = head.len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            cells
                .iter()
                .filter(|r| r.len() == ncol)
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &cells {
        for (c, cell) in row.iter().enumerate() {
            let w = widths.get(c).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count());
            if c < 2 || c + 1 == ncol || row.len() != ncol {
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            } else {
                let _ = write!(out, "{}{cell}  ", " ".repeat(pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    for t in targets(s, ceiling_rx) {
        let _ = writeln!(out, "{t}");
    }
    if let Some(e) = &s.error {
        let _ = writeln!(out, "synflood: {e}");
    }
    out
}

/// The targets, one line each: `ok`/`MISSED` and the figures.
pub fn targets(s: &FloodSection, ceiling_rx: Option<f64>) -> Vec<String> {
    let row = |srv: &str, f: &str| {
        s.rows
            .iter()
            .find(|r| r.server == srv && r.flood == f && r.error.is_none())
    };
    let mark = |b: bool| if b { "ok" } else { "MISSED" };
    let mut v = Vec::new();
    for srv in Server::ALL.map(Server::name) {
        for f in ["syn", "ack", "rst"] {
            if let Some(r) = row(srv, f) {
                let share = r.completed as f64 / r.attempted.max(1) as f64;
                let lost = r.held.is_some_and(|h| h.1 > 0);
                v.push(format!(
                    "target {srv} {f}: legitimate success {:.2}% >= 99.9%{}: {}",
                    share * 100.0,
                    if r.held.is_some() {
                        ", no held connection lost"
                    } else {
                        ""
                    },
                    mark(share >= 0.999 && !lost)
                ));
            }
        }
        if srv == "linux" {
            continue;
        }
        if let (Some(b), Some(f), Some(l)) =
            (row(srv, "none"), row(srv, "syn"), row("linux", "syn"))
        {
            v.push(format!(
                "target {srv}: handshake p99 under SYN flood {} us <= 2x no flood ({} us) and \
                 <= 0.5x Linux's ({} us): {}",
                fmt_num(f.p99_us),
                fmt_num(b.p99_us),
                fmt_num(l.p99_us),
                mark(f.p99_us <= 2.0 * b.p99_us && f.p99_us <= 0.5 * l.p99_us)
            ));
        }
    }
    if let (Some(r), Some(c)) = (row("stack-xdp", "syn"), ceiling_rx) {
        v.push(format!(
            "target stack-xdp: SYN-ACKs/s {} >= ceiling rx 64 B {}/s: {}",
            fmt_num(r.answered_pps),
            fmt_num(c),
            mark(r.answered_pps >= c)
        ));
    }
    v
}

/// The section as JSON (`synflood.json`).
pub fn to_json(s: &FloodSection, ceiling_rx: Option<f64>) -> Value {
    json!({ "rows": s.rows, "error": s.error, "details": s.details,
            "ceiling_rx_64_pps": ceiling_rx, "targets": targets(s, ceiling_rx) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_and_stat_parsing() {
        assert_eq!(take_selection("rr,synflood"), ("rr".into(), true));
        assert_eq!(take_selection("synflood"), (String::new(), true));
        assert_eq!(take_selection("cps, rr"), ("cps,rr".into(), false));
        let text = "xdptcp serve pid 1 on x 198.18.0.1: 1 workers\n\
                    worker0  tcp      cookies_sent 3 syn_dropped 0\n\
                    total    tcp      cookies_sent 3 syn_dropped 0\n\
                    xdp      cookies  xdp_cookie_syn_acks 7 xdp_cookie_slow 0\n";
        let m = parse_stat(text);
        assert_eq!(m["cookies_sent"], 3);
        assert_eq!(m["xdp_cookie_syn_acks"], 7);
        assert_eq!(m.len(), 4);
    }
}
