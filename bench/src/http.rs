//! The `http` scenarios: a real client, `wrk`, against the stack's `http`
//! application (`xdptcp serve --listen 80=http`, the `linux-stack` column) and against nginx
//! (the `linux-linux` column, the baseline of the ratios), on the same veth pair and cores.
//!
//! - `http/keepalive`: `--http-conns` persistent connections, one request outstanding each.
//! - `http/close`: the same with `Connection: close`: every request is a new connection (a
//!   connections-per-second test with a real client; the server closes first).
//!
//! wrk runs in the client namespace pinned to the client cores (`taskset`), `-t W -c N`.
//! nginx runs in the server namespace on the veth without the XDP program (offloads on, as
//! the Linux baseline of every scenario), `worker_processes W` pinned to the server cores,
//! access log off, keep-alive with a huge `keepalive_requests`, returning the stack's body
//! ([`xdptcp::app::http::BODY`]) with `Content-Type: text/plain`; its config, pid, logs and
//! temp dirs live in a private directory removed at the end. It is started and stopped by
//! PID (also on failure: [`Nginx`]'s `Drop`). There is no `stack-stack` column: wrk is a
//! Linux client.

use crate::error::{bail, format_err, Context, Result};
use crate::netns::VethNetns;
use crate::pairing::{self, Pairing, ServerHandle, TxChecksumOff};
use crate::report::{Metric, ScenarioResult};
use crate::scenario::{self, Scenario};
use crate::{sys, wrk};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The port both servers listen on.
pub const PORT: u16 = 80;

/// One line when a tool is missing.
pub const NEEDS_TOOLS: &str =
    "the http scenarios need `wrk` and `nginx` (Debian packages wrk, nginx): run scripts/setup.sh";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpScenario {
    Keepalive,
    Close,
}

impl HttpScenario {
    pub const ALL: [HttpScenario; 2] = [HttpScenario::Keepalive, HttpScenario::Close];

    pub fn name(self) -> &'static str {
        match self {
            HttpScenario::Keepalive => "http/keepalive",
            HttpScenario::Close => "http/close",
        }
    }
}

/// What the `--scenarios` list selects: the pairing scenarios, the ceiling, the http ones.
pub type Selection = (Vec<Scenario>, bool, Vec<HttpScenario>);

/// [`scenario::parse_selection`] plus the `http` group and its names.
pub fn parse_selection(list: &str) -> Result<Selection> {
    let mut http = Vec::new();
    let mut rest = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m: Vec<HttpScenario> = HttpScenario::ALL
            .into_iter()
            .filter(|h| item == "http" || item == "all" || item == h.name())
            .collect();
        if m.is_empty() || item == "all" {
            rest.push(item);
        }
        for h in m {
            if !http.contains(&h) {
                http.push(h);
            }
        }
    }
    if rest.is_empty() {
        if http.is_empty() {
            bail!("no scenario selected");
        }
        return Ok((Vec::new(), false, http));
    }
    let (scens, ceiling) = scenario::parse_selection(&rest.join(","))?;
    Ok((scens, ceiling, http))
}

/// `Some(line)` if wrk or nginx is not installed.
pub fn tools_missing() -> Option<&'static str> {
    let ok = |prog: &str, arg: &str| {
        Command::new(prog)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    (!(ok("wrk", "--version") && ok("nginx", "-v"))).then_some(NEEDS_TOOLS)
}

/// Knobs of the http runs.
#[derive(Clone, Debug)]
pub struct HttpOpts {
    /// wrk's run time, rounded up to whole seconds (at least 1).
    pub duration: Duration,
    /// Server workers (nginx worker processes, stack workers) and wrk threads.
    pub workers: usize,
    /// wrk connections (`-c`).
    pub conns: usize,
    pub stack_adaptive_idle: bool,
    /// `xdptcp serve --zero-copy`.
    pub zero_copy: bool,
}

/// Runs one http scenario in one pairing (`linux-linux` = nginx, `linux-stack` = the stack);
/// any error becomes the result's `error`.
pub fn run_one(env: &VethNetns, p: Pairing, h: HttpScenario, o: &HttpOpts) -> ScenarioResult {
    match run_inner(env, p, h, o) {
        Ok(r) => r,
        Err(e) => ScenarioResult::failed(h.name(), p, format!("{e:#}")),
    }
}

fn run_inner(env: &VethNetns, p: Pairing, h: HttpScenario, o: &HttpOpts) -> Result<ScenarioResult> {
    if let Some(m) = tools_missing() {
        bail!("{m}");
    }
    let w = o.workers.max(1);
    let ncores = sys::num_cores();
    let server_cores: Vec<usize> = (0..w).map(|i| i % ncores).collect();
    let client_cores: Vec<usize> = (0..w).map(|i| (w + i) % ncores).collect();
    let dir = RunDir::new()?;
    let addr = SocketAddrV4::new(env.server_ip, PORT);
    let mut server = match p {
        Pairing::LinuxLinux => Server::Nginx(Nginx::start(
            &env.server_ns,
            addr,
            &server_cores,
            o.conns,
            dir.path(),
        )?),
        Pairing::LinuxToStack => Server::Stack(start_stack(env, &server_cores, o)?),
        Pairing::StackStack | Pairing::StackToLinux => {
            bail!("wrk is a Linux client: no {} column", p.name())
        }
        Pairing::LinuxLinuxNoOffload => bail!("http runs with nginx's default offloads only"),
    };
    let probe = probe_until_ready(&env.client_ns, addr, &mut server)?;
    let script = dir.path().join("done.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let secs = o.duration.as_secs_f64().ceil().max(1.0) as u64;
    let url = format!("http://{addr}/");
    let args = wrk::args(
        &url,
        w,
        o.conns,
        secs,
        h == HttpScenario::Close,
        &script.to_string_lossy(),
    );
    let label = format!("{} {}", h.name(), p.name());
    let out = run_wrk(&env.client_ns, &client_cores, &args, secs, &label);
    let server_log = server.stop();
    let out = out?;
    let rep = wrk::parse(&out).with_context(|| format!("wrk output:\n{out}"))?;
    let mut details = json!({
        "client": "wrk", "wrk_args": args, "wrk": rep,
        "server": match p { Pairing::LinuxLinux => "nginx", _ => "xdptcp serve --listen 80=http" },
        "probe_response": probe, "probe_response_bytes": probe.len(),
        "server_cores": server_cores, "client_cores": client_cores,
    });
    if let Some(log) = server_log {
        details["server_log"] = json!(log.lines().collect::<Vec<_>>());
    }
    Ok(ScenarioResult {
        scenario: h.name().into(),
        pairing: p,
        metrics: metrics(&rep),
        latencies: Vec::new(),
        details,
        error: None,
    })
}

/// The table rows of a wrk run.
pub fn metrics(r: &wrk::WrkReport) -> Vec<Metric> {
    let per_resp = if r.requests > 0 {
        r.bytes / r.requests as f64
    } else {
        0.0
    };
    let l = &r.latency_us;
    let mut m = vec![
        Metric::new("req/s", "1/s", r.requests_per_s),
        Metric::new("requests", "n", r.requests as f64),
        Metric::new("transfer", "MB/s", r.transfer_per_s / 1e6),
        Metric::new("bytes per response", "B", per_resp),
        Metric::new("socket errors", "n", r.socket_errors.total() as f64),
        Metric::new("non-2xx/3xx", "n", r.non_2xx_3xx as f64),
        Metric::new("latency p50", "us", l.p50),
        Metric::new("latency p75", "us", l.p75),
        Metric::new("latency p90", "us", l.p90),
        Metric::new("latency p99", "us", l.p99),
    ];
    if let Some(v) = l.p999 {
        m.push(Metric::new("latency p99.9", "us", v));
    }
    m.push(Metric::new("latency max", "us", l.max));
    m
}

enum Server {
    Nginx(Nginx),
    Stack(ServerHandle),
}

impl Server {
    fn stop(self) -> Option<String> {
        match self {
            Server::Nginx(n) => n.stop(),
            Server::Stack(s) => s.stop(),
        }
    }

    fn exited(&mut self) -> Option<String> {
        match self {
            Server::Nginx(n) => match n.child.try_wait() {
                Ok(Some(s)) => Some(format!("nginx exited ({s}): {}", n.last_error())),
                _ => None,
            },
            Server::Stack(ServerHandle::Process(c, _)) => match c.try_wait() {
                Ok(Some(s)) => Some(format!("xdptcp serve exited ({s})")),
                _ => None,
            },
            Server::Stack(_) => None,
        }
    }
}

/// `xdptcp serve --listen 80=http` in the server namespace, as the other stack pairings
/// start it (the Linux client's transmit checksum offload off while it runs).
fn start_stack(env: &VethNetns, cores: &[usize], o: &HttpOpts) -> Result<ServerHandle> {
    let bin = pairing::xdptcp_serve_binary().ok_or_else(|| format_err!(pairing::NEEDS_SERVE))?;
    let offload = TxChecksumOff::set(&env.client_ns, &env.client_if)?;
    let w = o.workers.max(1);
    let mut args = pairing::stack_serve_args(&env.server_if, env.server_ip, PORT, "http", w);
    args.push("--cores".into());
    args.push(
        cores
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(","),
    );
    if o.stack_adaptive_idle {
        args.push("--adaptive-idle".into());
    }
    if o.zero_copy {
        args.push("--zero-copy".into());
    }
    let child = Command::new("ip")
        .args(["netns", "exec", &env.server_ns])
        .arg(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    Ok(ServerHandle::Process(child, offload))
}

/// One `GET /` from the client namespace, retried for up to 10 s until a complete response
/// arrives; returns it (head and body) for the report, so both servers' responses are on
/// record side by side. Gives up at once if the server exits.
fn probe_until_ready(ns: &str, addr: SocketAddrV4, server: &mut Server) -> Result<String> {
    let mut last = String::from("no attempt");
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && !sys::stopped() {
        let ns = ns.to_string();
        let r = std::thread::spawn(move || -> Result<String> {
            sys::enter_netns(&ns)?;
            get_once(addr)
        })
        .join()
        .map_err(|_| format_err!("probe thread panicked"))?;
        match r {
            Ok(resp) => return Ok(resp),
            Err(e) => last = format!("{e:#}"),
        }
        if let Some(why) = server.exited() {
            bail!("{why} before answering at {addr}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("server at {addr} gave no HTTP response within 10 s: {last}")
}

/// A raw HTTP/1.1 GET: the head and `Content-Length` bytes of body.
pub fn get_once(addr: SocketAddrV4) -> Result<String> {
    let mut s = TcpStream::connect_timeout(&addr.into(), Duration::from_millis(300))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {}\r\n\r\n", addr.ip()).as_bytes())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed before a complete response");
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            bail!("response larger than 64 KiB");
        }
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim())
                })
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(text);
            }
        }
    }
}

/// Runs wrk in `ns` pinned to `cores`, with a progress line; killed by PID if it overruns
/// its duration by 15 s. Returns its stdout.
fn run_wrk(ns: &str, cores: &[usize], args: &[String], secs: u64, label: &str) -> Result<String> {
    run_pinned(ns, cores, "wrk", args, secs, label)
}

/// Runs `prog` in `ns` pinned to `cores` (`taskset`), with a progress line over `secs`;
/// killed by PID if it overruns `secs` by 15 s. Returns its stdout; a failure exit is an
/// error with its stderr.
pub fn run_pinned(
    ns: &str,
    cores: &[usize],
    prog: &str,
    args: &[String],
    secs: u64,
    label: &str,
) -> Result<String> {
    let cpus = cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "taskset", "-c", &cpus, prog])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {prog}"))?;
    // Read the pipes on threads so that a chatty wrk never blocks on a full pipe.
    let mut so = child.stdout.take().expect("piped");
    let mut se = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let total = Duration::from_secs(secs);
    let limit = total + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break Some(st);
        }
        if start.elapsed() > limit || sys::stopped() {
            // SAFETY: signals only the child we spawned, by its PID.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        progress(label, start.elapsed(), total, prog, false);
        std::thread::sleep(Duration::from_millis(200));
    };
    progress(label, start.elapsed(), total, prog, true);
    let (out, err) = (
        t_out.join().unwrap_or_default(),
        t_err.join().unwrap_or_default(),
    );
    match status {
        None if sys::stopped() => bail!("stopped by signal"),
        None => bail!("{prog} did not finish within {} s; killed", limit.as_secs()),
        Some(st) if !st.success() => bail!("{prog} failed ({st}): {}", err.trim()),
        Some(_) => Ok(out),
    }
}

fn progress(label: &str, elapsed: Duration, total: Duration, prog: &str, done: bool) {
    let mut e = std::io::stderr().lock();
    let _ = write!(
        e,
        "\r{label:<28} {:5.1}/{:.0} s  {prog} running{}",
        elapsed.as_secs_f64().min(total.as_secs_f64()),
        total.as_secs_f64(),
        if done { "\n" } else { "" }
    );
    let _ = e.flush();
}

/// A private directory for one run (`$TMPDIR/xdptcp-bench-<pid>-<n>`), removed on drop.
pub struct RunDir(PathBuf);

impl RunDir {
    /// Creates it (a leftover of a crashed run with this PID is removed first).
    pub fn new() -> Result<Self> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("xdptcp-bench-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p); // a leftover of a crashed run with our pid
        std::fs::create_dir(&p).with_context(|| format!("create {}", p.display()))?;
        Ok(RunDir(p))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running nginx master (and its workers); stopped by PID on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
}

/// nginx's `worker_cpu_affinity` mask of one core: `1` for core 0, `10` for core 1, ...
pub(crate) fn cpu_mask(core: usize) -> String {
    format!("1{}", "0".repeat(core))
}

/// The body as an nginx string literal.
fn nginx_string(body: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in body {
        match b {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'"' | b'\\' | b'$' => {
                s.push('\\');
                s.push(b as char);
            }
            _ => s.push(b as char),
        }
    }
    s.push('"');
    s
}

/// The nginx configuration (everything under `dir`). Each worker may hold `conns`
/// connections (wrk's, twice over for connections still closing) and a margin.
pub fn nginx_config(dir: &Path, addr: SocketAddrV4, cores: &[usize], conns: usize) -> String {
    let d = dir.display();
    let masks: Vec<String> = cores.iter().map(|&c| cpu_mask(c)).collect();
    format!(
        "# xdptcp-bench: the nginx baseline of the http scenarios (generated)
daemon off;
master_process on;
worker_processes {w};
worker_cpu_affinity {masks};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {wc}; }}
http {{
    access_log off;
    server_tokens off;
    default_type text/plain;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {addr} reuseport backlog=65535;
        location / {{ return 200 {body}; }}
    }}
}}
",
        w = cores.len().max(1),
        wc = (2 * conns + 64).max(1024),
        masks = masks.join(" "),
        body = nginx_string(xdptcp::app::http::BODY),
    )
}

impl Nginx {
    /// Writes the config into `dir` and starts `nginx` (master + one worker per core) in
    /// namespace `ns`. Readiness is the caller's probe.
    pub fn start(
        ns: &str,
        addr: SocketAddrV4,
        cores: &[usize],
        conns: usize,
        dir: &Path,
    ) -> Result<Self> {
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_config(dir, addr, cores, conns))?;
        let log = dir.join("error.log");
        // `ip netns exec` execs nginx: the child's PID is the master's.
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nginx", "-q", "-e"])
            .arg(&log)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn nginx")?;
        let mut n = Nginx {
            child,
            dir: dir.to_path_buf(),
        };
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(Some(st)) = n.child.try_wait() {
            bail!("nginx exited at start ({st}): {}", n.last_error());
        }
        Ok(n)
    }

    fn last_error(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log"))
            .ok()
            .and_then(|t| t.lines().last().map(str::to_string))
            .unwrap_or_else(|| "(no error log)".into())
    }

    /// Stops it (fast shutdown); returns the error log's last lines if any.
    pub fn stop(mut self) -> Option<String> {
        self.shutdown();
        std::fs::read_to_string(self.dir.join("error.log"))
            .ok()
            .filter(|t| !t.trim().is_empty())
    }

    /// SIGTERM to the master (it stops its workers), SIGKILL to master and workers after 5 s.
    fn shutdown(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let pid = self.child.id();
        let workers = children_of(pid);
        // SAFETY: signals only the process we spawned, by its PID.
        unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        for w in workers {
            // Only a worker of ours that outlived its master (still our nginx's PID).
            if children_of_parent_is(w, pid) {
                // SAFETY: a PID we just read as a child of our nginx master.
                unsafe { libc::kill(w as i32, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// PIDs whose parent is `pid` (from /proc/PID/stat).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| children_of_parent_is(p, pid))
        .collect()
}

/// True if process `p` is an `nginx` whose parent is `parent`.
fn children_of_parent_is(p: u32, parent: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
        return false;
    };
    // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let ppid = tail
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<u32>().ok());
    head.ends_with("(nginx") && ppid == Some(parent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn selection() {
        let (s, c, h) = parse_selection("http").unwrap();
        assert_eq!((s, c), (vec![], false));
        assert_eq!(h, [HttpScenario::Keepalive, HttpScenario::Close]);
        let (s, c, h) = parse_selection("rr/open,http/close,ceiling").unwrap();
        assert_eq!(
            (s, c, h),
            (vec![Scenario::RrOpen], true, vec![HttpScenario::Close])
        );
        let (s, _, h) = parse_selection("cps").unwrap();
        assert_eq!((s.len(), h.len()), (2, 0));
        assert!(parse_selection("http/nope").is_err());
        assert!(parse_selection(" , ").is_err());
    }

    #[test]
    fn config() {
        let addr = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80);
        let c = nginx_config(Path::new("/tmp/x"), addr, &[0, 2], 5000);
        for want in [
            "worker_processes 2;\n",
            "worker_cpu_affinity 1 100;\n",
            "events { worker_connections 10064; }\n",
            "pid /tmp/x/nginx.pid;\n",
            "access_log off;\n",
            "keepalive_requests 1000000000;\n",
            "listen 198.18.0.1:80 reuseport backlog=65535;\n",
            "location / { return 200 \"hello from xdptcp\\n\"; }\n",
        ] {
            assert!(c.contains(want), "no {want:?} in:\n{c}");
        }
        assert_eq!(nginx_string(b"a\"$\\\r\t"), r#""a\"\$\\\r\t""#);
        assert_eq!(cpu_mask(0), "1");
        assert_eq!(cpu_mask(3), "1000");
    }

    #[test]
    fn rows() {
        let r = wrk::WrkReport {
            requests: 1000,
            bytes: 159_000.0,
            requests_per_s: 500.0,
            transfer_per_s: 79_500.0,
            latency_us: wrk::Latency {
                p50: 10.0,
                p999: Some(99.0),
                max: 120.0,
                ..Default::default()
            },
            non_2xx_3xx: 2,
            ..Default::default()
        };
        let m = metrics(&r);
        let get = |n: &str| m.iter().find(|x| x.name == n).unwrap().value;
        assert_eq!(get("req/s"), 500.0);
        assert_eq!(get("bytes per response"), 159.0);
        assert_eq!(get("transfer"), 0.0795);
        assert_eq!(get("non-2xx/3xx"), 2.0);
        assert_eq!(get("latency p99.9"), 99.0);
        assert_eq!(m.last().unwrap().name, "latency max");
    }
}
