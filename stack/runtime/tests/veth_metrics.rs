//! Root-only: `xdptcp serve --metrics` on a veth pair.
//!
//! - A Linux client in the peer namespace scrapes `http://198.18.0.1:9100/metrics` (a kernel
//!   socket: 9100 is neither a stack listener nor in the ephemeral range, so the XDP program
//!   passes it to the kernel) around a few echo connections: the exposition parses (strictly,
//!   and with the prometheus-parse crate), `xdptcp_connections_accepted_total` grows by the
//!   number of connections made, a held connection shows as `state="established"`, other
//!   paths get 404.
//! - A `--metrics` port in use, or a malformed value, fails start-up with one line on stderr
//!   before the XDP program is attached.
//!
//! Each test builds its own namespaces (`harness::VethPair`: 198.18.0.0/24, per-run names,
//! removed on drop, also on panic); the serve process is killed by PID on drop. Every loop is
//! bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;
use xdptcp_harness::prom;
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, STACK_ADDR};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const IO_TIMEOUT: Duration = Duration::from_secs(10);
const METRICS: &str = "198.18.0.1:9100";
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn pair() -> VethPair {
    require_root();
    VethPair::new(VethOptions::default()).expect("creating the veth pair")
}

/// The serve process; killed (by PID) and reaped on drop.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    /// `xdptcp serve --listen 7=echo --metrics 198.18.0.1:9100` in the stack namespace;
    /// returns once it printed its start-up and metrics lines.
    fn start(pair: &VethPair) -> Serve {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
            .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
            .args(["--listen", "7=echo", "--metrics", METRICS])
            .args(["--duration", "120", "--adaptive-idle"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning xdptcp serve");
        let out = child.stdout.take().expect("stdout");
        let lines = xdptcp_harness::lines_of(out);
        let s = Serve { child, lines };
        let wait = Duration::from_secs(20);
        let first = s.lines.recv_timeout(wait).expect("start-up line");
        assert!(first.starts_with("xdptcp: serving on "), "{first}");
        let second = s.lines.recv_timeout(wait).expect("metrics line");
        assert_eq!(
            second,
            format!("xdptcp: metrics on http://{METRICS}/metrics")
        );
        s
    }

    /// SIGTERM, then the exit status (bounded wait).
    fn terminate(&mut self) -> std::process::ExitStatus {
        xdptcp_harness::terminate(&mut self.child, Duration::from_secs(10))
            .expect("serve did not exit within 10 s")
    }
}

/// One HTTP/1.1 request from the peer namespace: (status line, body).
fn http_get(pair: &VethPair, path: &str) -> (String, String) {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {METRICS}\r\nAccept: text/plain\r\n\r\n");
    let resp = pair
        .in_peer(move || -> std::io::Result<String> {
            let addr: SocketAddr = METRICS.parse().expect("address");
            let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            s.write_all(req.as_bytes())?;
            let mut out = String::new();
            // Bounded: the server closes after one response; 4 MiB caps a runaway.
            s.take(4 << 20).read_to_string(&mut out)?;
            Ok(out)
        })
        .expect("entering the peer namespace")
        .expect("scraping the metrics");
    let (head, body) = resp.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or("").to_string();
    if status.starts_with("HTTP/1.1 200") {
        assert!(
            head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())));
    }
    (status, body.to_string())
}

/// A scrape, parsed strictly and by prometheus-parse (which must see every sample).
fn scrape(pair: &VethPair) -> prom::Exposition {
    let (status, body) = http_get(pair, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let e = prom::parse_strict(&body).unwrap_or_else(|m| panic!("{m}\n{body}"));
    let lenient = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus-parse");
    assert_eq!(lenient.samples.len(), e.samples.len());
    e
}

/// Scrapes until `cond` holds (snapshots are up to 100 ms old), at most 5 s.
fn scrape_until(pair: &VethPair, cond: impl Fn(&prom::Exposition) -> bool) -> prom::Exposition {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let e = scrape(pair);
        if cond(&e) || Instant::now() > end {
            return e;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn total(e: &prom::Exposition, name: &str) -> f64 {
    e.get(name, &[])
        .unwrap_or_else(|| panic!("no total {name}"))
}

fn connect() -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::from((STACK_ADDR, 7)), IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

#[test]
fn metrics_follow_linux_clients() {
    let _one = serial();
    let pair = pair();
    let mut serve = Serve::start(&pair);

    assert!(
        xdp_attached(&pair),
        "the check below must see an attached program"
    );
    let before = scrape(&pair);
    assert_eq!(before.get("xdptcp_workers", &[]), Some(1.0));
    let info = before
        .samples
        .iter()
        .find(|s| s.name == "xdptcp_info")
        .expect("xdptcp_info");
    assert!(info
        .labels
        .contains(&("iface".to_string(), pair.stack_if.clone())));
    assert_eq!(
        before.get("xdptcp_connections", &[("state", "listen")]),
        Some(1.0)
    );
    let backlog = before.get(
        "xdptcp_listener_backlog",
        &[("addr", "198.18.0.1"), ("port", "7")],
    );
    let backlog = backlog.or_else(|| {
        before.get(
            "xdptcp_listener_backlog",
            &[("addr", "0.0.0.0"), ("port", "7")],
        )
    });
    assert!(backlog.is_some_and(|b| b > 0.0), "backlog {backlog:?}");
    // The route refresher's counters (process-wide: no worker label): the start table holds
    // at least the on-link route, and no netlink error happened.
    assert!(before.get("xdptcp_route_tables_published_total", &[]) >= Some(1.0));
    assert!(before.get("xdptcp_routes", &[]) >= Some(1.0));
    assert_eq!(before.get("xdptcp_route_dump_errors_total", &[]), Some(0.0));
    assert_eq!(before.get("xdptcp_orphans", &[]), Some(0.0));
    let accepted0 = total(&before, "xdptcp_connections_accepted_total");
    let opened0 = total(&before, "xdptcp_connections_opened_total");
    let bytes0 = total(&before, "xdptcp_tcp_data_received_bytes_total");

    // A few echo connections from Linux, closed.
    const CONNS: usize = 5;
    let sent: usize = pair
        .in_peer(|| {
            let mut sent = 0;
            for i in 0..CONNS {
                let msg = format!("metrics {i}\n");
                let mut s = connect().expect("connect");
                echo_roundtrip(&mut s, msg.as_bytes()).expect("echo");
                sent += msg.len();
            }
            sent
        })
        .expect("peer namespace");
    let after = scrape_until(&pair, |e| {
        e.get("xdptcp_connections_accepted_total", &[]) == Some(accepted0 + CONNS as f64)
    });
    assert_eq!(
        total(&after, "xdptcp_connections_accepted_total"),
        accepted0 + CONNS as f64
    );
    assert_eq!(
        after.get("xdptcp_connections_accepted_total", &[("worker", "0")]),
        Some(accepted0 + CONNS as f64)
    );
    assert!(total(&after, "xdptcp_connections_opened_total") >= opened0 + CONNS as f64);
    assert!(total(&after, "xdptcp_tcp_data_received_bytes_total") >= bytes0 + sent as f64);
    assert!(total(&after, "xdptcp_worker_busy_seconds_total") > 0.0);
    let listener_accepted: f64 = after
        .samples
        .iter()
        .filter(|s| {
            s.name == "xdptcp_listener_accepted_total"
                && !s.labels.iter().any(|(k, _)| k == "worker")
                && s.labels.contains(&("port".into(), "7".into()))
        })
        .map(|s| s.value)
        .sum();
    assert_eq!(listener_accepted, accepted0 + CONNS as f64);
    assert_eq!(
        after.get("xdptcp_drops_total", &[("reason", "rx_checksum")]),
        Some(0.0)
    );

    // A connection held open shows as established.
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let ns = pair.peer_ns.clone();
    let holder = std::thread::spawn(move || {
        let _g = NetnsGuard::enter(&ns).expect("entering the peer namespace");
        let mut s = connect().expect("connect");
        echo_roundtrip(&mut s, b"held\n").expect("echo");
        let _ = ready_tx.send(());
        let _ = held_rx.recv_timeout(Duration::from_secs(30));
    });
    ready_rx
        .recv_timeout(Duration::from_secs(15))
        .expect("the held connection");
    let open = scrape_until(&pair, |e| {
        e.get("xdptcp_connections", &[("state", "established")]) == Some(1.0)
    });
    assert_eq!(
        open.get("xdptcp_connections", &[("state", "established")]),
        Some(1.0)
    );
    assert_eq!(
        open.get(
            "xdptcp_connections",
            &[("worker", "0"), ("state", "established")]
        ),
        Some(1.0)
    );
    let _ = held_tx.send(());
    holder.join().expect("holder thread");

    // Only GET /metrics.
    assert_eq!(http_get(&pair, "/").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http_get(&pair, "/metrics/x").0, "HTTP/1.1 404 Not Found");

    assert!(serve.terminate().success());
}

/// `ip link show` of the stack interface mentions an XDP program.
fn xdp_attached(pair: &VethPair) -> bool {
    let out = pair
        .run_in_stack(&["ip", "link", "show", "dev", &pair.stack_if])
        .expect("ip link show");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

/// `xdptcp serve ... --metrics VALUE` in the stack namespace: (status, stderr).
fn serve_with_metrics(pair: &VethPair, value: &str) -> (Option<i32>, String) {
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args(["--listen", "7=echo", "--metrics", value, "--duration", "5"])
        .output()
        .expect("running xdptcp serve");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_metrics_address_fails_before_attaching() {
    let _one = serial();
    let pair = pair();
    // A kernel socket already on the port, in the stack namespace.
    let taken = {
        let _g = pair.enter_stack_ns().expect("entering the stack namespace");
        TcpListener::bind("198.18.0.1:9101").expect("binding 9101")
    };
    let (code, err) = serve_with_metrics(&pair, "198.18.0.1:9101");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "xdptcp: metrics 198.18.0.1:9101: Address already in use (os error 98)\n"
    );
    assert!(!xdp_attached(&pair));
    drop(taken);

    let (code, err) = serve_with_metrics(&pair, "198.18.0.1");
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("xdptcp: bad --metrics \"198.18.0.1\": expected ADDR:PORT"));
    // Not an address of the namespace.
    let (code, err) = serve_with_metrics(&pair, "198.18.9.9:9100");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("xdptcp: metrics 198.18.9.9:9100: "),
        "{err}"
    );
    assert!(!xdp_attached(&pair));
}
