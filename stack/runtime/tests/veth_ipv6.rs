//! The stack over IPv6 against the Linux kernel on a real veth pair (root only): Linux
//! connects to the stack over IPv6 (handshake, echo, 64 MiB byte-exact both ways, either
//! side closing first, a RST from Linux, close with unread data, half-close, a closed port
//! refused, SYN cookies with `tcp_syncookies = 2`), the stack connects to a Linux
//! server over IPv6 (`xdptcp connect`), and one `xdptcp serve` answers IPv4 and IPv6.
//!
//! Neighbour resolution is the kernel's NDP, prompted over netlink as ARP is for IPv4; the
//! addresses are 2001:2::1 (stack) and 2001:2::2 (Linux) from the RFC 5180 benchmarking
//! prefix, added with `nodad` in the test's own namespaces (`VethPair::add_ipv6`), removed
//! with them, also on panic. Every loop and socket call is bounded in count and time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use xdptcp::app::client::Client;
use xdptcp::app::close_first::CloseFirst;
use xdptcp::app::echo::Echo;
use xdptcp::app::server::Server;
use xdptcp::app::{App, AppError, AppEvent, AppIo};
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::endpoint::ConnId;
use xdptcp::tcp::{SynCookieMode, TcpConfig};
use xdptcp::worker::{StatsHandle, WorkerConfig, WorkerSnapshot};
use xdptcp_harness::{
    require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR6, STACK_ADDR, STACK_ADDR6,
};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const EPHEMERAL: (u16, u16) = (61000, 61999);
/// The byte-exact transfer: 64 MiB each way through the echo server.
const BULK: usize = 64 << 20;

fn afxdp() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 16384 + 4096,
        frame_size: 2048,
        fill_size: 16384,
        comp_size: 4096,
        rx_size: 4096,
        tx_size: 4096,
        zero_copy: false,
        need_wakeup: true,
    }
}

fn pair6() -> VethPair {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    pair
}

/// A dual-stack stack running `app` on a worker thread inside the stack namespace.
struct InProc<A: App + Send + 'static> {
    stop: Arc<AtomicBool>,
    stats: StatsHandle,
    thread: Option<JoinHandle<(WorkerSnapshot, A)>>,
    pair: VethPair,
}

impl<A: App + Send + 'static> InProc<A> {
    fn start(pair: VethPair, ports: &[u16], tcp: TcpConfig, app: A) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let opts = StackOptions {
            ifname: pair.stack_if.clone(),
            addr: Some(STACK_ADDR),
            extra_addrs: Vec::new(),
            ports: ports.to_vec(),
            ephemeral: EPHEMERAL,
            zero_copy: false,
            reserve_ports: true,
            tcp,
            afxdp: afxdp(),
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
            let mut stack = match Stack::open_dual(&opts, &[STACK_ADDR6]) {
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

    /// Lets the worker end by itself for at most `limit`, then stops it.
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

fn server(port: u16, app: Box<dyn App + Send>) -> Server {
    let mut s = Server::new(1024);
    s.add(port, app);
    s
}

fn connect6(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&SocketAddr::from((STACK_ADDR6, port)), IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// A byte of the test pattern at `i` (not periodic in 2^k, so a misplaced block shows).
fn pattern(i: usize) -> u8 {
    (i % 251) as u8 ^ (i / 65_521) as u8
}

/// Linux writes `n` bytes to the echo server on one thread and reads them back on another;
/// every byte checked; Linux closes first (half-close after the last byte).
fn echo_bulk(port: u16, n: usize) -> std::io::Result<()> {
    let mut s = connect6(port)?;
    let mut w = s.try_clone()?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buf = vec![0u8; 64 << 10];
        let mut off = 0;
        while off < n {
            let len = buf.len().min(n - off);
            for (j, b) in buf[..len].iter_mut().enumerate() {
                *b = pattern(off + j);
            }
            w.write_all(&buf[..len])?;
            off += len;
        }
        w.shutdown(Shutdown::Write)
    });
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < n {
        let k = s.read(&mut buf)?;
        if k == 0 {
            return Err(std::io::Error::other(format!(
                "EOF after {got} of {n} bytes"
            )));
        }
        if let Some(j) = (0..k).find(|&j| buf[j] != pattern(got + j)) {
            return Err(std::io::Error::other(format!("byte {} differs", got + j)));
        }
        got += k;
    }
    writer.join().expect("writer thread")?;
    // The stack answers our FIN with its own: EOF.
    match s.read(&mut buf)? {
        0 => Ok(()),
        k => Err(std::io::Error::other(format!("{k} bytes after the echo"))),
    }
}

/// Handshake, a short echo, then 64 MiB each way byte-exact over IPv6; Linux closes first,
/// so the stack's side is a passive close (no TIME-WAIT on the stack). IPv6 segments are
/// counted apart, and the neighbour (Linux's MAC) came from the kernel's NDP table.
#[test]
fn ipv6_handshake_echo_and_64mib_both_ways() {
    let s = InProc::start(
        pair6(),
        &[7],
        TcpConfig::default(),
        server(7, Box::<Echo>::default()),
    );
    s.peer(|| -> std::io::Result<()> {
        let mut c = connect6(7)?;
        assert_eq!(c.peer_addr()?, SocketAddr::from((STACK_ADDR6, 7)));
        c.write_all(b"hello over ipv6")?;
        let mut back = [0u8; 15];
        c.read_exact(&mut back)?;
        assert_eq!(&back, b"hello over ipv6");
        Ok(())
    })
    .expect("echo");
    s.peer(|| echo_bulk(7, BULK)).expect("64 MiB both ways");
    let snap = s.wait_for(Duration::from_secs(5), |w| {
        w.states.established == 0 && w.endpoint.conns_freed >= 2
    });
    assert_eq!(snap.endpoint.conns_opened, 2, "{:?}", snap.endpoint);
    assert_eq!(
        snap.states.time_wait, 0,
        "Linux closed first: no TIME-WAIT here"
    );
    assert!(
        snap.iface.rx_segments6 > 10_000 && snap.iface.tx_segments6 > 10_000,
        "{:?}",
        snap.iface
    );
    assert_eq!(
        (
            snap.iface.rx_checksum,
            snap.iface.rx_not_ours,
            snap.iface.tx_no_route
        ),
        (0, 0, 0)
    );
    assert!(snap.endpoint.flow.data_bytes_in >= BULK as u64);
    assert!(snap.endpoint.flow.data_bytes_out >= BULK as u64);
    let (_, app) = s.finish_within(Duration::ZERO);
    assert_eq!(app.accepted, 2);
}

/// The stack closes first (close-first app): FIN from the stack, Linux reads "bye\n" and
/// EOF and closes; the stack holds TIME-WAIT for the IPv6 4-tuple. A RST from Linux on
/// another connection closes that one at once (Linux aborts with SO_LINGER 0).
#[test]
fn ipv6_server_close_time_wait_and_reset() {
    let mut srv = server(9, Box::<CloseFirst>::default());
    srv.add(7, Box::<Echo>::default());
    let s = InProc::start(pair6(), &[7, 9], TcpConfig::default(), srv);
    let bye = s
        .peer(|| -> std::io::Result<Vec<u8>> {
            let mut v = Vec::new();
            connect6(9)?.read_to_end(&mut v)?;
            Ok(v)
        })
        .expect("close-first");
    assert_eq!(bye, b"bye\n");
    let snap = s.wait_for(Duration::from_secs(5), |w| w.states.time_wait == 1);
    assert_eq!(
        snap.states.time_wait, 1,
        "the stack closed first: TIME-WAIT"
    );
    assert_eq!(snap.endpoint.tw_entered, 1);
    // An abortive close from Linux (SO_LINGER 0): RST, the stack frees the connection.
    s.peer(|| -> std::io::Result<()> {
        let mut c = connect6(7)?;
        c.write_all(b"x")?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
        socket_linger_zero(&c);
        drop(c);
        Ok(())
    })
    .expect("abort");
    let snap = s.wait_for(Duration::from_secs(5), |w| {
        w.states.established == 0 && w.endpoint.conns_freed >= 2
    });
    assert_eq!(snap.states.established, 0, "{:?}", snap.states);
    assert_eq!(snap.states.time_wait, 1);
}

/// SO_LINGER {on, 0}: close() sends a RST.
fn socket_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads a linger we own, of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// `tcp_syncookies = 2`: every SYN over IPv6 is answered with a cookie (MSS from the IPv6
/// table), the handshake completes from the cookie and data flows.
#[test]
fn ipv6_syn_cookies_always() {
    let tcp = TcpConfig {
        syncookies: SynCookieMode::Always,
        ..TcpConfig::default()
    };
    let s = InProc::start(pair6(), &[7], tcp, server(7, Box::<Echo>::default()));
    for i in 0..3u8 {
        s.peer(|| -> std::io::Result<()> {
            let mut c = connect6(7)?;
            let msg = [b'c', i];
            c.write_all(&msg)?;
            let mut back = [0u8; 2];
            c.read_exact(&mut back)?;
            assert_eq!(back, msg);
            Ok(())
        })
        .expect("echo over a cookie connection");
    }
    let snap = s.wait_for(Duration::from_secs(5), |w| w.endpoint.cookies_accepted >= 3);
    assert_eq!(
        (snap.endpoint.cookies_sent, snap.endpoint.cookies_accepted),
        (3, 3),
        "{:?}",
        snap.endpoint
    );
    assert_eq!(snap.endpoint.cookies_rejected, 0);
}

/// The stack as an IPv6 client of a Linux echo server (the `connect` path of the
/// runtime: ephemeral port from the shared range, neighbour via the kernel's NDP).
#[test]
fn ipv6_stack_connects_to_linux() {
    let pair = pair6();
    let (port, server) = pair
        .peer_echo_once(PEER_ADDR6.into())
        .expect("peer echo server");
    let remote = std::net::SocketAddrV6::new(PEER_ADDR6, port, 0, 0);
    let s = InProc::start(
        pair,
        &[],
        TcpConfig::default(),
        Client::new(remote, b"from xdptcp"),
    );
    let (snap, client) = s.finish_within(Duration::from_secs(10));
    assert_eq!(client.outcome(), Some(Ok(&b"from xdptcp"[..])));
    let from = server.join().expect("server thread");
    assert_eq!(from.ip(), std::net::IpAddr::from(STACK_ADDR6));
    assert!((EPHEMERAL.0..=EPHEMERAL.1).contains(&from.port()), "{from}");
    assert!(snap.iface.tx_segments6 >= 3, "{:?}", snap.iface);
}

// ---- the xdptcp binary ----

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");

/// One `xdptcp serve --addr 198.18.0.1 --addr 2001:2::1` answers Linux over IPv4 and IPv6
/// on the same port; `xdptcp stat` lists both listeners.
#[test]
fn dual_stack_serve_binary() {
    let pair = pair6();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args([
            "--addr",
            "2001:2::1",
            "--listen",
            "7=echo",
            "--duration",
            "30",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let mut child = xdptcp_harness::KillOnDrop(child);
    let lines = xdptcp_harness::lines_of(out);
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(
        first.starts_with(&format!(
            "xdptcp: serving on {} 198.18.0.1,2001:2::1 ports 7=echo;",
            pair.stack_if
        )),
        "{first}"
    );
    for addr in [
        SocketAddr::from((STACK_ADDR, 7)),
        SocketAddr::from((STACK_ADDR6, 7)),
    ] {
        let back = pair
            .in_peer(|| -> std::io::Result<Vec<u8>> {
                let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.write_all(addr.to_string().as_bytes())?;
                s.shutdown(Shutdown::Write)?;
                let mut v = Vec::new();
                s.read_to_end(&mut v)?;
                Ok(v)
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("echo via {addr}: {e}"));
        assert_eq!(back, addr.to_string().as_bytes());
    }
    let stat = Command::new("timeout")
        .args(["10", "ip", "netns", "exec", &pair.stack_ns, BIN, "stat"])
        .args(["--iface", &pair.stack_if])
        .output()
        .expect("xdptcp stat");
    let text = String::from_utf8_lossy(&stat.stdout);
    assert!(
        text.contains("198.18.0.1") && text.contains("2001:2::1"),
        "{text}"
    );
    // `xdptcp ss -tln` lists both listeners as ss does; a filter on the IPv6 address keeps
    // only the IPv6 one.
    let ss = |filter: &[&str]| {
        let out = Command::new("timeout")
            .args([
                "10",
                "ip",
                "netns",
                "exec",
                &pair.stack_ns,
                BIN,
                "ss",
                "-tlnH",
            ])
            .args(["--iface", &pair.stack_if])
            .args(filter)
            .output()
            .expect("xdptcp ss");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let all = ss(&[]);
    let rows: Vec<Vec<&str>> = all
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{all}");
    assert_eq!(rows[0][3..], ["198.18.0.1:7", "0.0.0.0:*"], "{all}");
    assert_eq!(rows[1][3..], ["[2001:2::1]:7", "[::]:*"], "{all}");
    let v6 = ss(&["src", "[2001:2::1]:7"]);
    assert_eq!(v6.lines().count(), 1, "{v6}");
    assert!(v6.contains("[2001:2::1]:7"), "{v6}");
    // SIGTERM by PID: a clean stop.
    let status =
        xdptcp_harness::terminate(&mut child.0, Duration::from_secs(10)).expect("serve stopped");
    assert!(status.success(), "{status:?}");
}

/// `xdptcp connect --addr 198.18.0.1 --addr 2001:2::1 --remote [2001:2::2]:PORT` against a
/// Linux echo server; `--remote` IPv6 without an IPv6 `--addr` is one clear line.
#[test]
fn connect_binary_over_ipv6() {
    let pair = pair6();
    let (port, server) = pair
        .peer_echo_once(PEER_ADDR6.into())
        .expect("peer echo server");
    let remote = format!("[{PEER_ADDR6}]:{port}");
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &pair.stack_ns, BIN, "connect"])
        .args([
            "--iface",
            &pair.stack_if,
            "--addr",
            "198.18.0.1",
            "--addr",
            "2001:2::1",
        ])
        .args(["--remote", &remote, "--message", "v6 hello"])
        .output()
        .expect("xdptcp connect");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("received 8 bytes from {remote}: \"v6 hello\"")),
        "{text}"
    );
    server.join().expect("server thread");
    let out = Command::new("timeout")
        .args(["20", "ip", "netns", "exec", &pair.stack_ns, BIN, "connect"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args(["--remote", &remote])
        .output()
        .expect("xdptcp connect");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim(),
        "xdptcp: bad --remote: an IPv6 server needs an IPv6 --addr"
    );
}

/// The numbers after `"key":` in a JSON report (per worker, then the total).
fn values(report: &str, key: &str) -> Vec<u64> {
    let pat = format!("\"{key}\":");
    report
        .match_indices(&pat)
        .map(|(i, _)| {
            report[i + pat.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .expect("a number")
        })
        .collect()
}

/// Two workers on a 2-queue veth: 1,000 IPv6 connections from 4 Linux threads, each an
/// echo. Flows are owned by the Toeplitz hash of the IPv6 4-tuple; those the peer's queue
/// choice puts on the other worker's queue are handed off to their owner and still work.
#[test]
fn ipv6_two_workers_hand_off() {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 250;
    require_root();
    let pair = VethPair::new(VethOptions {
        queues: 2,
        mtu: None,
    })
    .expect("creating the 2-queue veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args([
            "--addr",
            "2001:2::1",
            "--workers",
            "2",
            "--listen",
            "7=echo",
        ])
        .args(["--duration", "120", "--adaptive-idle"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let mut child = xdptcp_harness::KillOnDrop(child);
    let mut out = BufReader::new(out);
    let mut first = String::new();
    out.read_line(&mut first).expect("start-up line");
    assert!(first.contains("2 workers"), "{first}");
    // Keep reading: the stop summary must find its stdout open.
    std::thread::spawn(move || out.lines().map_while(Result::ok).count());
    let failures: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let pair = &pair;
                sc.spawn(move || {
                    pair.in_peer(|| {
                        let mut errs = Vec::new();
                        for i in 0..PER_THREAD {
                            let msg = format!("t{t} c{i}");
                            let r = (|| -> std::io::Result<()> {
                                let mut s = connect6(7)?;
                                s.write_all(msg.as_bytes())?;
                                let mut back = vec![0u8; msg.len()];
                                s.read_exact(&mut back)?;
                                if back != msg.as_bytes() {
                                    return Err(std::io::Error::other("echo differs"));
                                }
                                Ok(())
                            })();
                            if let Err(e) = r {
                                errs.push(format!("{msg}: {e}"));
                            }
                        }
                        errs
                    })
                    .expect("peer namespace")
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failures: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let end = StdInstant::now() + Duration::from_secs(10);
    let report = loop {
        let out = Command::new("timeout")
            .args(["10", "ip", "netns", "exec", &pair.stack_ns, BIN, "stat"])
            .args(["--iface", &pair.stack_if, "--json"])
            .output()
            .expect("xdptcp stat");
        let r = String::from_utf8_lossy(&out.stdout).to_string();
        if values(&r, "conns_freed").last() == Some(&1000) || StdInstant::now() > end {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let opened = values(&report, "conns_opened");
    assert_eq!(opened.len(), 3, "two workers and a total: {report}");
    assert_eq!(opened[2], 1000, "{report}");
    assert!(
        opened[0] > 200 && opened[1] > 200,
        "both workers own flows: {opened:?}"
    );
    let six = values(&report, "rx_segments6");
    assert!(six[2] >= 4000, "{six:?}");
    let handed = values(&report, "handoff_received");
    eprintln!("opened {opened:?} IPv6 segments in {six:?} handed off {handed:?}");
    assert!(
        handed[2] > 0,
        "some IPv6 flows arrive on the other worker's queue: {report}"
    );
    assert_eq!(values(&report, "handoff_dropped")[2], 0);
    let status = xdptcp_harness::terminate(&mut child.0, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

// ---- the remaining close paths over IPv6 (the IPv4 versions are in veth_tcp.rs) ----

/// Echoes what arrives and records every event the stack gives it, for the test to read.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<AppEvent>>>,
}

impl App for Recorder {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        self.events.lock().expect("events").push(ev);
        if ev == AppEvent::Readable {
            let mut buf = [0u8; 2048];
            while let Ok(n @ 1..) = io.recv(c, &mut buf) {
                let _ = io.send(c, &buf[..n]);
            }
        }
    }
}

/// An established IPv6 connection ended by a RST from Linux (SO_LINGER 0): the stack's
/// application sees ECONNRESET and then `Closed` (RFC 9293 §3.10.7.4: "any outstanding
/// RECEIVEs and SEND should receive 'reset' responses"), no TIME-WAIT, nothing left open.
#[test]
fn ipv6_peer_reset_ends_established_connection() {
    let rec = Recorder::default();
    let events = rec.events.clone();
    let s = InProc::start(
        pair6(),
        &[7],
        TcpConfig::default(),
        server(7, Box::new(rec)),
    );
    s.peer(|| -> std::io::Result<()> {
        let mut c = connect6(7)?;
        c.write_all(b"x")?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
        socket_linger_zero(&c);
        drop(c);
        Ok(())
    })
    .expect("echo then abort");
    let snap = s.wait_for(Duration::from_secs(5), |w| w.endpoint.conns_freed >= 1);
    assert_eq!(snap.endpoint.conns_freed, 1, "{:?}", snap.endpoint);
    assert_eq!((snap.states.established, snap.states.time_wait), (0, 0));
    let ev = events.lock().expect("events").clone();
    assert!(
        ev.contains(&AppEvent::Error(AppError::ConnectionReset)),
        "{ev:?}"
    );
    assert_eq!(ev.last(), Some(&AppEvent::Closed), "{ev:?}");
}

/// Closes a connection as soon as data arrives, without reading it.
#[derive(Default)]
struct CloseUnread;

impl App for CloseUnread {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        if ev == AppEvent::Readable {
            let _ = io.close(c);
        }
    }
}

/// The stack closes an IPv6 connection with unread data: RST (RFC 9293 §3.10.4, RFC 2525
/// §2.17), so Linux's read fails with ECONNRESET; the stack keeps no TIME-WAIT.
#[test]
fn ipv6_close_with_unread_data_resets_linux() {
    let s = InProc::start(
        pair6(),
        &[7],
        TcpConfig::default(),
        server(7, Box::<CloseUnread>::default()),
    );
    let r = s.peer(|| -> std::io::Result<usize> {
        let mut c = connect6(7)?;
        c.write_all(b"data the application never reads")?;
        c.read(&mut [0u8; 64])
    });
    let e = r.expect_err("read after the stack's close with unread data must fail");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    let snap = s.wait_for(Duration::from_secs(5), |w| w.endpoint.conns_freed >= 1);
    assert_eq!(snap.endpoint.conns_freed, 1);
    assert_eq!(snap.states.time_wait, 0);
}

/// Bytes the half-close app sends after the peer's FIN.
const AFTER_FIN: usize = 300_000;

/// Reads what arrives; once the peer's FIN is in (CLOSE-WAIT), sends [`AFTER_FIN`] bytes of
/// the test pattern, then closes.
#[derive(Default)]
struct SendAfterFin {
    fin: bool,
    sent: usize,
    closed: bool,
}

impl SendAfterFin {
    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        if !self.fin || self.closed {
            return;
        }
        let mut buf = [0u8; 16 << 10];
        while self.sent < AFTER_FIN {
            let len = buf.len().min(AFTER_FIN - self.sent);
            for (j, b) in buf[..len].iter_mut().enumerate() {
                *b = pattern(self.sent + j);
            }
            match io.send(c, &buf[..len]) {
                Ok(0) | Err(_) => return,
                Ok(k) => self.sent += k,
            }
        }
        self.closed = true;
        let _ = io.close(c);
    }
}

impl App for SendAfterFin {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Readable => {
                let mut buf = [0u8; 2048];
                while let Ok(1..) = io.recv(c, &mut buf) {}
            }
            AppEvent::PeerFin => {
                self.fin = true;
                self.pump(io, c);
            }
            AppEvent::Writable => self.pump(io, c),
            _ => {}
        }
    }
}

/// Half-close over IPv6 (RFC 9293 §3.6): Linux shuts down its write side, the stack (in
/// CLOSE-WAIT) still sends 300 000 bytes, which Linux reads byte-exact, then closes; Linux
/// sees EOF. The stack closed second: LAST-ACK, no TIME-WAIT on its side.
#[test]
fn ipv6_half_close_stack_sends_after_peer_fin() {
    let s = InProc::start(
        pair6(),
        &[7],
        TcpConfig::default(),
        server(7, Box::<SendAfterFin>::default()),
    );
    let got = s
        .peer(|| -> std::io::Result<Vec<u8>> {
            let mut c = connect6(7)?;
            c.write_all(b"go")?;
            c.shutdown(Shutdown::Write)?;
            let mut v = Vec::with_capacity(AFTER_FIN);
            c.read_to_end(&mut v)?;
            Ok(v)
        })
        .expect("half-close");
    assert_eq!(got.len(), AFTER_FIN);
    if let Some(i) = (0..got.len()).find(|&i| got[i] != pattern(i)) {
        panic!("byte {i} differs");
    }
    let snap = s.wait_for(Duration::from_secs(5), |w| w.endpoint.conns_freed >= 1);
    assert_eq!(snap.endpoint.conns_freed, 1, "{:?}", snap.endpoint);
    assert_eq!(snap.states.time_wait, 0, "Linux closed first");
    assert_eq!(snap.endpoint.tw_entered, 0);
}

/// Port 8 is steered to the stack but nobody listens: a SYN over IPv6 is answered with a
/// RST (RFC 9293 §3.10.7.1), Linux's connect fails with ECONNREFUSED, and the same client
/// still gets service on the listening port.
#[test]
fn ipv6_connect_to_closed_port_refused() {
    let s = InProc::start(
        pair6(),
        &[7, 8],
        TcpConfig::default(),
        server(7, Box::<Echo>::default()),
    );
    let e = s
        .peer(|| connect6(8).map(|_| ()))
        .expect_err("connect to a port without listener must fail");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    let snap = s.wait_for(Duration::from_secs(2), |w| w.endpoint.rst_closed >= 1);
    assert_eq!(snap.endpoint.rst_closed, 1);
    s.peer(|| -> std::io::Result<()> {
        let mut c = connect6(7)?;
        c.write_all(b"ping")?;
        let mut b = [0u8; 4];
        c.read_exact(&mut b)?;
        assert_eq!(&b, b"ping");
        Ok(())
    })
    .expect("echo after refusal");
}
