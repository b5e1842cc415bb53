//! The stack against the Linux kernel over a real veth pair (root only): Linux connects to the
//! stack and the stack connects to Linux, both close orders, "connection refused" and
//! "connection reset" exactly where a Linux server would cause them, many sequential and
//! concurrent connections, TIME-WAIT at the stack after its active close, and the `xdptcp`
//! program's start-up errors and clean exit.
//!
//! The stack runs either in-process (a worker thread inside the stack namespace, set up by
//! `xdptcp::stack::Stack`, as `xdptcp serve` does) or as the `xdptcp` binary. Each test builds
//! its own namespaces (`harness::VethPair`: 198.18.0.0/24, per-run names, removed on drop,
//! also on panic). Every loop and socket call is bounded in count and time.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use xdptcp::app::client::Client;
use xdptcp::app::close_first::CloseFirst;
use xdptcp::app::echo::Echo;
use xdptcp::app::server::Server;
use xdptcp::app::{App, AppError, AppEvent, AppIo};
use xdptcp::stack::{Stack, StackOptions};
#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;
use xdptcp::phy::AfXdpConfig;
use xdptcp::tcp::endpoint::ConnId;
use xdptcp::tcp::TcpConfig;
use xdptcp::worker::{StatsHandle, WorkerConfig, WorkerSnapshot};
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const EPHEMERAL: (u16, u16) = (61000, 61999);

/// A stack running `app` on a worker thread inside the stack namespace. Dropping it stops
/// the worker (joins it), then removes the namespaces.
struct InProc<A: App + Send + 'static> {
    stop: Arc<AtomicBool>,
    stats: StatsHandle,
    thread: Option<JoinHandle<(WorkerSnapshot, A)>>,
    pair: VethPair,
}

impl<A: App + Send + 'static> InProc<A> {
    /// Steers `ports` (listeners or not) plus the ephemeral range, runs `app`.
    fn start(ports: &[u16], app: A) -> Self {
        require_root();
        let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
        Self::start_on(pair, ports, app)
    }

    /// [`InProc::start`] on an existing pair.
    fn start_on(pair: VethPair, ports: &[u16], app: A) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let opts = StackOptions {
            ifname: pair.stack_if.clone(),
            addr: Some(STACK_ADDR),
            extra_addrs: Vec::new(),
            ports: ports.to_vec(),
            ephemeral: EPHEMERAL,
            zero_copy: false,
            reserve_ports: true,
            tcp: TcpConfig::default(),
            afxdp: AfXdpConfig::small(),
            worker: WorkerConfig::default(),
            workers: 1,
            cores: Vec::new(),
            rss_key: None,
        };
        let (tx, rx) = mpsc::channel();
        let ns = pair.stack_ns.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut app = app;
            let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
            let mut stack = match Stack::open(&opts) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    panic!("stack did not start: {e}");
                }
            };
            stack.workers[0].set_stop_flag(flag);
            let _ = tx.send(Ok(stack.workers[0].stats_handle()));
            let snap = stack.workers[0].run(&mut app);
            (snap, app)
        });
        let stats = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("worker thread start")
            .expect("stack start");
        InProc {
            stop,
            stats,
            thread: Some(thread),
            pair,
        }
    }

    /// Waits (at most `limit`, polling the 100 ms snapshots) until `cond` holds.
    fn wait_for(&self, limit: Duration, cond: impl Fn(&WorkerSnapshot) -> bool) -> WorkerSnapshot {
        let end = StdInstant::now() + limit;
        loop {
            let s = self.stats.get();
            if cond(&s) || StdInstant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the worker and returns its last snapshot and the application.
    fn finish(self) -> (WorkerSnapshot, A) {
        self.finish_within(Duration::ZERO)
    }

    /// Lets the worker end by itself (its application is done) for at most `limit`, then
    /// stops it; returns its last snapshot and the application.
    fn finish_within(mut self, limit: Duration) -> (WorkerSnapshot, A) {
        let end = StdInstant::now() + limit;
        while StdInstant::now() < end && !self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined once");
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }

    fn peer<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.pair.in_peer(f).expect("entering the peer namespace")
    }
}

impl<A: App + Send + 'static> Drop for InProc<A> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn echo_server(port: u16) -> Server {
    let mut s = Server::new(1024);
    s.add(port, Box::<Echo>::default());
    s
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((STACK_ADDR, port));
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Writes `msg`, half-closes, reads to EOF (Linux closes first).
fn echo_half_close(port: u16, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = connect(port)?;
    s.write_all(msg)?;
    s.shutdown(Shutdown::Write)?;
    let mut back = Vec::with_capacity(msg.len());
    s.read_to_end(&mut back)?;
    Ok(back)
}

/// Writes `msg`, reads as many bytes back, closes.
fn echo_once(port: u16, msg: &[u8]) -> std::io::Result<()> {
    echo_roundtrip(&mut connect(port)?, msg)
}

#[test]
fn linux_client_echo_linux_closes_first() {
    let st = InProc::start(&[7], echo_server(7));
    let msg: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let back = st
        .peer(|| echo_half_close(7, &msg))
        .expect("echo over the stack");
    assert_eq!(back.len(), msg.len());
    assert!(back == msg, "echoed bytes differ");
    // The stack closed passively: no TIME-WAIT on its side, nothing left open.
    let s = st.wait_for(Duration::from_secs(3), |s| s.endpoint.conns_freed == 1);
    assert_eq!(s.endpoint.conns_opened, 1);
    assert_eq!(s.endpoint.conns_freed, 1);
    assert_eq!(s.states.time_wait, 0);
    assert_eq!(s.iface.rx_checksum, 0);
    let (snap, srv) = st.finish();
    assert_eq!(srv.accepted, 1);
    assert!(snap.looping.rx_packets >= 100, "{:?}", snap.looping);
}

#[test]
fn stack_closes_first_linux_reads_bye_then_eof_and_stack_holds_time_wait() {
    let mut srv = Server::new(1024);
    srv.add(9, Box::<CloseFirst>::default());
    let st = InProc::start(&[9], srv);
    let got = st
        .peer(|| -> std::io::Result<Vec<u8>> {
            let mut s = connect(9)?;
            let mut v = Vec::new();
            s.read_to_end(&mut v)?;
            Ok(v)
        })
        .expect("reading from close-first");
    assert_eq!(got, b"bye\n");
    // RFC 9293 §3.6: the side that closes first passes through TIME-WAIT.
    let s = st.wait_for(Duration::from_secs(3), |s| s.endpoint.tw_entered == 1);
    assert_eq!(s.endpoint.tw_entered, 1);
    assert_eq!(s.states.time_wait, 1, "{:?}", s.states);
    assert_eq!(s.states.established, 0);
}

#[test]
fn linux_client_refused_on_steered_port_without_listener() {
    // Port 8 is steered to the stack but nobody listens: RFC 9293 §3.10.7.1 RST.
    let st = InProc::start(&[7, 8], echo_server(7));
    let e = st
        .peer(|| connect(8).map(|_| ()))
        .expect_err("connect to a port without listener must fail");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    let s = st.wait_for(Duration::from_secs(2), |s| s.endpoint.rst_closed >= 1);
    assert_eq!(s.endpoint.rst_closed, 1);
    // The same Linux client still gets service on the listening port.
    st.peer(|| echo_once(7, b"ping"))
        .expect("echo after refusal");
}

/// Closes a connection as soon as data arrives, without reading it.
#[derive(Default)]
struct CloseUnread {
    closed: u64,
}

impl App for CloseUnread {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        if ev == AppEvent::Readable {
            let _ = io.close(c);
            self.closed += 1;
        }
    }
}

#[test]
fn linux_client_reset_when_stack_closes_with_unread_data() {
    let mut srv = Server::new(1024);
    srv.add(7, Box::<CloseUnread>::default());
    let st = InProc::start(&[7], srv);
    let r = st.peer(|| -> std::io::Result<usize> {
        let mut s = connect(7)?;
        s.write_all(b"data the application never reads")?;
        let mut buf = [0u8; 64];
        s.read(&mut buf)
    });
    let e = r.expect_err("read after the stack's close with unread data must fail");
    // RFC 9293 §3.10.4 / RFC 2525 §2.17: close with unread data sends RST.
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    let s = st.wait_for(Duration::from_secs(2), |s| s.endpoint.conns_freed == 1);
    assert_eq!(s.endpoint.conns_freed, 1);
    assert_eq!(s.states.time_wait, 0);
}

/// A Linux echo server for `n` connections on PEER_ADDR:`port`, in the peer namespace.
fn linux_echo_server(pair: &VethPair, port: u16, n: usize) -> JoinHandle<std::io::Result<usize>> {
    let ns = pair.peer_ns.clone();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || -> std::io::Result<usize> {
        let _g = NetnsGuard::enter(&ns)?;
        let l = TcpListener::bind(SocketAddrV4::new(PEER_ADDR, port))?;
        let _ = tx.send(());
        let mut bytes = 0;
        for _ in 0..n {
            let (mut s, _) = l.accept()?;
            s.set_read_timeout(Some(IO_TIMEOUT))?;
            let mut buf = [0u8; 4096];
            loop {
                let k = s.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                s.write_all(&buf[..k])?;
                bytes += k;
            }
        }
        Ok(bytes)
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("linux server up");
    h
}

#[test]
fn stack_connects_to_linux_server() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let srv = linux_echo_server(&pair, 5000, 1);
    let msg = b"hello from the stack to linux\n";
    let st = InProc::start_on(
        pair,
        &[],
        Client::new(SocketAddrV4::new(PEER_ADDR, 5000), msg),
    );
    let (s, client) = st.finish_within(Duration::from_secs(10));
    assert_eq!(client.outcome(), Some(Ok(&msg[..])));
    assert_eq!(
        srv.join().expect("server thread").expect("linux server"),
        msg.len()
    );
    // The stack closed first (after reading the echo): its side holds TIME-WAIT.
    assert_eq!(s.endpoint.tw_entered, 1);
    assert_eq!(s.states.time_wait, 1);
}

#[test]
fn stack_connect_refused_by_linux() {
    let st = InProc::start(&[], Client::new(SocketAddrV4::new(PEER_ADDR, 5001), b"x"));
    let (s, client) = st.finish_within(Duration::from_secs(10));
    assert_eq!(client.outcome(), Some(Err(AppError::ConnectionRefused)));
    assert_eq!(s.endpoint.conns_freed, 1);
}

#[test]
fn two_hundred_sequential_and_concurrent_connections() {
    let st = InProc::start(&[7], echo_server(7));
    let failures = st.peer(|| {
        let mut failures = Vec::new();
        for i in 0..200 {
            let msg = format!("sequential {i}\n");
            if let Err(e) = echo_once(7, msg.as_bytes()) {
                failures.push(format!("sequential {i}: {e}"));
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{failures:?}");
    let ns = st.pair.peer_ns.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let ns = ns.clone();
            std::thread::spawn(move || {
                let _g = NetnsGuard::enter(&ns).expect("peer namespace");
                let mut failures = Vec::new();
                for i in 0..25 {
                    let msg = vec![b'a' + t as u8; 1000 + i * 97];
                    if let Err(e) = echo_once(7, &msg) {
                        failures.push(format!("thread {t} conn {i}: {e}"));
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    assert!(failures.is_empty(), "{failures:?}");
    let s = st.wait_for(Duration::from_secs(5), |s| s.endpoint.conns_freed == 400);
    assert_eq!(s.endpoint.conns_opened, 400);
    assert_eq!(s.endpoint.conns_freed, 400, "{:?}", s.states);
    assert_eq!(
        s.iface.rx_checksum + s.iface.rx_malformed + s.iface.rx_truncated,
        0
    );
}

// ---- the xdptcp binary ----

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");

fn run_bin(ns: &str, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["20", "ip", "netns", "exec", ns, BIN])
        .args(args)
        .output()
        .expect("running xdptcp")
}

/// The single stderr line of a failed start.
fn one_line_error(out: &std::process::Output, status: i32) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(status), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line, got: {err}");
    assert!(err.starts_with("xdptcp: "), "{err}");
    err
}

/// `xdptcp serve` in the stack namespace; returns once it printed its start-up line.
fn spawn_serve(pair: &VethPair, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.stack_ns,
            BIN,
            "serve",
            "--iface",
            &pair.stack_if,
        ])
        .args(["--addr", "198.18.0.1", "--duration", "30"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let rx = xdptcp_harness::lines_of(out);
    (child, rx)
}

#[test]
fn serve_binary_echo_then_sigterm_detaches_and_restores() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let (child, lines) = spawn_serve(&pair, &["--listen", "7=echo", "--listen", "9=close-first"]);
    let mut child = xdptcp_harness::KillOnDrop(child);
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(first.starts_with("xdptcp: serving on "), "{first}");
    let reserved = pair
        .run_in_stack(&["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"])
        .expect("reading reserved ports");
    assert_eq!(
        String::from_utf8_lossy(&reserved.stdout).trim(),
        "61000-61999"
    );
    let back = pair
        .in_peer(|| echo_half_close(7, b"through the binary"))
        .unwrap();
    assert_eq!(back.expect("echo"), b"through the binary");
    let bye = pair
        .in_peer(|| -> std::io::Result<Vec<u8>> {
            let mut v = Vec::new();
            connect(9)?.read_to_end(&mut v)?;
            Ok(v)
        })
        .unwrap();
    assert_eq!(bye.expect("close-first"), b"bye\n");
    let status = xdptcp_harness::terminate(&mut child.0, Duration::from_secs(10))
        .expect("xdptcp did not exit on SIGTERM");
    assert!(status.success(), "{status}");
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.starts_with("xdptcp: stopped.")),
        "{rest:?}"
    );
    let link = pair
        .run_in_stack(&["ip", "link", "show", "dev", &pair.stack_if])
        .expect("ip link");
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("xdp"),
        "XDP still attached"
    );
    let reserved = pair
        .run_in_stack(&["cat", "/proc/sys/net/ipv4/ip_local_reserved_ports"])
        .expect("reading reserved ports");
    assert_eq!(String::from_utf8_lossy(&reserved.stdout).trim(), "");
}

#[test]
fn serve_binary_start_errors() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let ns = pair.stack_ns.as_str();
    let ifname = pair.stack_if.as_str();
    let base = |iface: &str, addr: &str, listen: &str| {
        vec![
            "serve".to_string(),
            "--iface".into(),
            iface.into(),
            "--addr".into(),
            addr.into(),
            "--listen".into(),
            listen.into(),
            "--duration".into(),
            "1".into(),
        ]
    };
    let run = |args: Vec<String>| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_bin(ns, &a)
    };
    let e = one_line_error(&run(base("nope0", "198.18.0.1", "7=echo")), 1);
    assert!(e.contains("no such interface: \"nope0\""), "{e}");
    let e = one_line_error(&run(base(ifname, "198.18.0.9", "7=echo")), 1);
    assert!(e.contains("address 198.18.0.9 is not on interface"), "{e}");
    assert!(e.contains("198.18.0.1"), "{e}");
    let e = one_line_error(&run(base(ifname, "198.18.0.1", "7=ftp")), 2);
    assert!(e.contains("bad --listen \"7=ftp\""), "{e}");
    let e = one_line_error(&run(base(ifname, "198.18.0.1", "seven")), 2);
    assert!(e.contains("bad --listen"), "{e}");
    let mut a = base(ifname, "198.18.0.1", "7=echo");
    a.extend(["--set".into(), "tcp_no_such_key=1".into()]);
    let e = one_line_error(&run(a), 2);
    assert!(e.contains("bad --set \"tcp_no_such_key=1\""), "{e}");
    let mut a = base(ifname, "198.18.0.1", "7=echo");
    a.extend(["--workers".into(), "2".into()]);
    let e = one_line_error(&run(a), 1);
    assert!(
        e.contains("--workers 2: interface xts-") && e.contains("has 1 receive queue(s)"),
        "{e}"
    );
    // Not root: the same command as an unprivileged user.
    let out = Command::new("timeout")
        .args([
            "20",
            "ip",
            "netns",
            "exec",
            ns,
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
        ])
        .args([
            "--clear-groups",
            BIN,
            "serve",
            "--iface",
            ifname,
            "--addr",
            "198.18.0.1",
        ])
        .args(["--listen", "7=echo"])
        .output()
        .expect("setpriv");
    let e = one_line_error(&out, 1);
    assert!(e.contains("must run as root"), "{e}");
    // Zero-copy on veth: refused by the driver, falls back to copy mode with a message.
    let mut a = base(ifname, "198.18.0.1", "7=echo");
    a.push("--zero-copy".into());
    let out = run(a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("zero-copy is not supported on"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("copy mode"));
    // A second stack on an interface that is already steered.
    let (child, lines) = spawn_serve(&pair, &["--listen", "7=echo"]);
    let _first = xdptcp_harness::KillOnDrop(child);
    let up = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(up.starts_with("xdptcp: serving on "), "{up}");
    let e = one_line_error(&run(base(ifname, "198.18.0.1", "8=echo")), 1);
    assert!(e.contains("already steered by another process"), "{e}");
}

#[test]
fn connect_binary_against_linux_echo_server_and_refused() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let srv = linux_echo_server(&pair, 5002, 1);
    let args = |port: &str| {
        vec![
            "connect".to_string(),
            "--iface".into(),
            pair.stack_if.clone(),
            "--addr".into(),
            "198.18.0.1".into(),
            "--remote".into(),
            format!("198.18.0.2:{port}"),
            "--message".into(),
            "ping over xdptcp".into(),
            "--timeout".into(),
            "10".into(),
        ]
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        run_bin(&pair.stack_ns, &a)
    };
    let out = run(args("5002"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("received 16 bytes from 198.18.0.2:5002: \"ping over xdptcp\""),
        "{stdout}"
    );
    assert_eq!(
        srv.join().expect("server thread").expect("linux server"),
        16
    );
    // Nobody listens on 5003: Linux answers RST, the stack reports it.
    let e = one_line_error(&run(args("5003")), 1);
    assert!(
        e.contains("connect to 198.18.0.2:5003: connection refused"),
        "{e}"
    );
}

#[test]
fn http_keep_alive_and_connection_close() {
    let mut srv = Server::new(1024);
    srv.add(80, Box::<xdptcp::app::http::Http>::default());
    let st = InProc::start(&[80], srv);
    let (first, second, tail) = st
        .peer(|| -> std::io::Result<(String, String, Vec<u8>)> {
            let mut s = connect(80)?;
            let read_response = |s: &mut TcpStream| -> std::io::Result<String> {
                // Head, then exactly Content-Length bytes of body.
                let mut buf = Vec::new();
                let mut byte = [0u8; 1];
                while !buf.ends_with(b"\r\n\r\n") && buf.len() < 4096 {
                    s.read_exact(&mut byte)?;
                    buf.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                s.read_exact(&mut body)?;
                Ok(head + &String::from_utf8_lossy(&body))
            };
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
            let first = read_response(&mut s)?;
            s.write_all(b"GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let second = read_response(&mut s)?;
            let mut tail = Vec::new();
            s.read_to_end(&mut tail)?;
            Ok((first, second, tail))
        })
        .expect("http exchange");
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.ends_with("\r\n\r\nhello from xdptcp\n"), "{first}");
    assert!(!first.contains("Connection: close"), "{first}");
    assert!(second.contains("Connection: close\r\n"), "{second}");
    // The server closed after the second response: EOF, nothing more.
    assert!(tail.is_empty());
    let s = st.wait_for(Duration::from_secs(3), |s| s.endpoint.tw_entered == 1);
    assert_eq!(s.endpoint.tw_entered, 1, "the server closed first");
}

#[test]
fn stopping_the_stack_resets_live_connections() {
    let st = InProc::start(&[7], echo_server(7));
    let ns = st.pair.peer_ns.clone();
    let (tx, rx) = mpsc::channel();
    let client = std::thread::spawn(move || -> std::io::Result<usize> {
        let _g = NetnsGuard::enter(&ns)?;
        let mut s = connect(7)?;
        s.write_all(b"a")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        let _ = tx.send(());
        // Blocks until the stack goes away.
        s.read(&mut b)
    });
    rx.recv_timeout(IO_TIMEOUT)
        .expect("connection established and echoing");
    let (snap, _) = st.finish();
    let r = client.join().expect("client thread");
    let e = r.expect_err("a live connection must see the stop");
    // The example server aborts live connections on stop: RST.
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    assert_eq!(snap.endpoint.conns_freed, 1);
}

/// The same Linux client against the stack and against a Linux server (in the stack
/// namespace, on ports the XDP program does not steer): the errors it sees must match.
#[test]
fn refused_and_reset_match_a_linux_server() {
    let mut srv = Server::new(1024);
    srv.add(7, Box::<CloseUnread>::default());
    // Steered: 7 (closes with unread data), 8 (no listener).
    let st = InProc::start(&[7, 8], srv);
    // Linux server on unsteered 7000: accepts, waits for data, closes without reading it.
    let ns = st.pair.stack_ns.clone();
    let (tx, rx) = mpsc::channel();
    let linux = std::thread::spawn(move || -> std::io::Result<()> {
        let _g = NetnsGuard::enter(&ns)?;
        let l = TcpListener::bind(SocketAddrV4::new(STACK_ADDR, 7000))?;
        let _ = tx.send(());
        let (s, _) = l.accept()?;
        let mut b = [0u8; 1];
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        let _ = s.peek(&mut b)?;
        drop(s);
        Ok(())
    });
    rx.recv_timeout(IO_TIMEOUT).expect("linux server up");
    let kinds = st.peer(|| {
        let reset = |port| -> ErrorKind {
            let r = (|| -> std::io::Result<usize> {
                let mut s = connect(port)?;
                s.write_all(b"unread")?;
                s.read(&mut [0u8; 16])
            })();
            r.err().map_or(ErrorKind::Other, |e| e.kind())
        };
        let refused = |port| connect(port).err().map_or(ErrorKind::Other, |e| e.kind());
        [(reset(7), reset(7000)), (refused(8), refused(7001))]
    });
    linux.join().expect("linux thread").expect("linux server");
    assert_eq!(
        kinds[0],
        (ErrorKind::ConnectionReset, ErrorKind::ConnectionReset)
    );
    assert_eq!(
        kinds[1],
        (ErrorKind::ConnectionRefused, ErrorKind::ConnectionRefused)
    );
}
