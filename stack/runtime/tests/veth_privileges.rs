//! Root-only: the hardening of privileges, worker panics and leftovers against the real `xdptcp serve` on veth pairs.
//!
//! - The running serve has dropped to `nobody` with only CAP_NET_ADMIN and NoNewPrivs (from
//!   `/proc/PID/status`) and still serves connections and `xdptcp stat`; at exit the reserved
//!   ports are restored and nothing is left (record, XDP program, stat socket).
//! - A worker panic (test trigger `XDPTCP_TEST_PANIC=N:K`) stops the serve with exit status 3
//!   and a message naming the worker, and leaves nothing behind either.
//! - SIGKILL: the root janitor of a dropped serve cleans up at once; a serve without one
//!   (`--user root`) leaves a record that the next start in the namespace uses to remove the
//!   stale reservation.
//! - Stat sockets are per network namespace: two serves' sockets with the same name in two
//!   namespaces do not collide, and each namespace lists only its own.
//!
//! Each test builds its own namespaces (`harness::VethPair`, per-run names, removed on drop,
//! also on panic); serve processes are killed by PID on drop. Every loop is bounded.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;
use xdptcp::control::{self, privileges, StatServer};
use xdptcp_harness::{require_root, VethOptions, VethPair, STACK_ADDR};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const IO_TIMEOUT: Duration = Duration::from_secs(10);
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn pair(queues: u32) -> VethPair {
    require_root();
    VethPair::new(VethOptions { queues, mtu: None }).expect("creating the veth pair")
}

/// A serve process; killed (by PID) and reaped on drop.
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
    /// `xdptcp serve --listen 7=echo` plus `extra` in the stack namespace; returns once it
    /// printed its start-up line (which is checked to name `user`).
    fn start(pair: &VethPair, extra: &[&str], env: Option<&str>, user: &str) -> Serve {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
            .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
            .args(["--listen", "7=echo", "--duration", "120", "--adaptive-idle"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(v) = env {
            c.env(xdptcp::stack::TEST_PANIC_ENV, v);
        }
        let mut child = c.spawn().expect("spawning xdptcp serve");
        let out = child.stdout.take().expect("stdout");
        let lines = xdptcp_harness::lines_of(out);
        let s = Serve { child, lines };
        let first = s
            .lines
            .recv_timeout(Duration::from_secs(20))
            .expect("start-up line");
        assert!(first.starts_with("xdptcp: serving on "), "{first}");
        assert!(first.ends_with(&format!("; user {user}")), "{first}");
        s
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// The exit status (bounded wait) and stderr.
    fn wait(&mut self) -> (std::process::ExitStatus, String) {
        let end = Instant::now() + Duration::from_secs(15);
        let st = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break st;
            }
            assert!(Instant::now() < end, "serve did not exit within 15 s");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (st, err)
    }
}

fn in_stack(pair: &VethPair, cmd: &[&str]) -> String {
    let o = pair
        .run_in_stack(cmd)
        .expect("command in the stack namespace");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn reserved_ports(pair: &VethPair) -> String {
    in_stack(pair, &["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"])
        .trim()
        .to_string()
}

/// The reserved-ports records of the stack namespace.
fn records(pair: &VethPair) -> Vec<String> {
    let ino = in_stack(pair, &["stat", "-L", "-c", "%i", "/proc/self/ns/net"]);
    let prefix = format!("reserved-{}-", ino.trim());
    std::fs::read_dir(control::STAT_DIR)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn xdp_attached(pair: &VethPair) -> bool {
    in_stack(pair, &["ip", "-d", "link", "show", "dev", &pair.stack_if]).contains("prog/xdp")
}

fn stat_socket_listed(pair: &VethPair) -> bool {
    in_stack(pair, &["cat", "/proc/net/unix"]).contains(&format!("@xdptcp/{}", pair.stack_if))
}

/// Nothing of a serve is left in the stack namespace (bounded wait: a SIGKILLed serve's
/// janitor and bpf_link go asynchronously).
fn assert_clean(pair: &VethPair, ports_before: &str) {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let state = (
            reserved_ports(pair),
            records(pair),
            xdp_attached(pair),
            stat_socket_listed(pair),
        );
        if state == (ports_before.to_string(), Vec::new(), false, false) {
            return;
        }
        assert!(
            Instant::now() < end,
            "left behind (reserved ports, records, xdp attached, stat socket): {state:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn echo_from_peer(pair: &VethPair, n: usize) {
    pair.in_peer(|| -> std::io::Result<()> {
        for i in 0..n {
            let mut s = TcpStream::connect_timeout(&SocketAddr::from((STACK_ADDR, 7)), IO_TIMEOUT)?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            s.set_write_timeout(Some(IO_TIMEOUT))?;
            echo_roundtrip(&mut s, format!("unprivileged {i}").as_bytes())?;
        }
        Ok(())
    })
    .expect("entering the peer namespace")
    .expect("echo through the unprivileged serve");
}

fn status_field(lines: &[String], key: &str) -> String {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("{key} in {lines:?}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn serve_runs_as_nobody_with_only_net_admin_and_restores_everything() {
    let _g = serial();
    let pair = pair(1);
    let before = reserved_ports(&pair);
    let mut serve = Serve::start(&pair, &[], None, "nobody (CAP_NET_ADMIN)");
    let st = privileges::status_lines(serve.pid()).expect("/proc/PID/status");
    assert_eq!(
        status_field(&st, "Uid:"),
        "65534 65534 65534 65534",
        "{st:?}"
    );
    assert_eq!(
        status_field(&st, "Gid:"),
        "65534 65534 65534 65534",
        "{st:?}"
    );
    assert_eq!(status_field(&st, "Groups:"), "", "{st:?}");
    // CAP_NET_ADMIN is bit 12.
    for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(status_field(&st, k), "0000000000001000", "{k} {st:?}");
    }
    assert_eq!(status_field(&st, "CapAmb:"), "0000000000000000", "{st:?}");
    assert_eq!(status_field(&st, "NoNewPrivs:"), "1", "{st:?}");
    // While running: our range is reserved and recorded.
    assert_eq!(reserved_ports(&pair), "61000-61999");
    assert_eq!(records(&pair).len(), 1);
    // Still serves connections, and root's `xdptcp stat` in the namespace.
    echo_from_peer(&pair, 20);
    let stat = in_stack(
        &pair,
        &["timeout", "10", BIN, "stat", "--iface", &pair.stack_if],
    );
    assert!(stat.contains("states"), "{stat}");
    // Without --iface: the serves of this namespace.
    let all = in_stack(&pair, &["timeout", "10", BIN, "stat"]);
    assert!(all.contains(&pair.stack_if), "{all}");
    // Another unprivileged user is refused.
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.stack_ns,
            "setpriv",
            "--reuid=1",
            "--regid=1",
        ])
        .args([
            "--clear-groups",
            "timeout",
            "10",
            BIN,
            "stat",
            "--iface",
            &pair.stack_if,
        ])
        .output()
        .expect("setpriv");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("permission denied"),
        "{o:?}"
    );
    serve.signal(libc::SIGTERM);
    let (status, err) = serve.wait();
    assert!(status.success(), "{status} {err}");
    assert_clean(&pair, &before);
}

#[test]
fn worker_panic_stops_all_cleans_up_and_exits_3() {
    let _g = serial();
    let pair = pair(2);
    let before = reserved_ports(&pair);
    let mut serve = Serve::start(
        &pair,
        &["--workers", "2"],
        Some("1:3000"),
        "nobody (CAP_NET_ADMIN)",
    );
    let (status, err) = serve.wait();
    assert_eq!(status.code(), Some(3), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "xdptcp: worker 1 panicked: test-triggered panic in worker 1 (XDPTCP_TEST_PANIC); \
         all workers stopped, XDP program detached",
        "{err}"
    );
    // The panic hook names the thread too.
    assert!(
        err.lines()
            .any(|l| l.starts_with("thread 'xdptcp-w1'") && l.contains(" panicked at ")),
        "{err}"
    );
    assert_clean(&pair, &before);
}

#[test]
fn sigkill_leaves_nothing_with_janitor_and_next_start_removes_stale_reservation() {
    let _g = serial();
    let pair = pair(1);
    let before = reserved_ports(&pair);
    // Dropped serve: its janitor (root) cleans up when the serve dies.
    let mut serve = Serve::start(&pair, &[], None, "nobody (CAP_NET_ADMIN)");
    serve.signal(libc::SIGKILL);
    let (status, _) = serve.wait();
    assert_eq!(status.code(), None, "killed by a signal");
    assert_clean(&pair, &before);
    // A root serve has no janitor: SIGKILL leaves the reservation and its record.
    let mut serve = Serve::start(&pair, &["--user", "root"], None, "root");
    serve.signal(libc::SIGKILL);
    serve.wait();
    assert_eq!(reserved_ports(&pair), "61000-61999");
    assert_eq!(records(&pair).len(), 1);
    // The next start removes the stale range before adding its own: one range, one record.
    let mut serve = Serve::start(
        &pair,
        &["--user", "root", "--ephemeral", "62000-62999"],
        None,
        "root",
    );
    assert_eq!(reserved_ports(&pair), "62000-62999");
    assert_eq!(records(&pair).len(), 1);
    serve.signal(libc::SIGTERM);
    let (status, err) = serve.wait();
    assert!(status.success(), "{status} {err}");
    assert_clean(&pair, &before);
}

#[test]
fn stat_sockets_are_per_network_namespace() {
    let _g = serial();
    let pair = pair(1);
    let name = format!("xdptcp-same{}", std::process::id());
    let (n1, n2) = (name.clone(), name.clone());
    let a = pair
        .in_stack(move || {
            let s = StatServer::bind(&n1).expect("bind in the stack namespace");
            (s, control::running())
        })
        .expect("stack namespace");
    let b = pair
        .in_peer(move || {
            let s = StatServer::bind(&n2).expect("same name in the peer namespace");
            (s, control::running())
        })
        .expect("peer namespace");
    assert_eq!(a.1, vec![name.clone()]);
    assert_eq!(b.1, vec![name.clone()]);
    // Not visible from this (the test's) namespace.
    assert!(!control::running().contains(&name));
    drop((a, b));
}
