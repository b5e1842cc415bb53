//! SYN cookies answered in the XDP program against Linux over a real veth pair
//! (root only): a stack of two workers with `tcp_syncookies = 2` and `xdp_syncookies = 1`;
//! a Linux client completes handshakes whose SYN-ACKs only the XDP program sent (the
//! workers' own `cookies_sent` stays 0), the workers validate the returning ACKs with the
//! shared secret, and data flows both ways (echo) with the options the cookie carried
//! (window scaling, SACK, timestamps: a 300 kB echo needs the scaled window).
//!
//! Namespaces come from `harness::VethPair` (198.18.0.0/24, per-run names, removed on drop,
//! also on panic). Every loop and socket call is bounded in count and time.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant as StdInstant};

use xdptcp::app::echo::Echo;
use xdptcp::app::server::Server;
use xdptcp::cookies::XdpCookieStats;
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::TcpConfig;
use xdptcp::worker::{StatsHandle, WorkerConfig, WorkerSnapshot};
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, STACK_ADDR};
use xdptcp_xdp::Counters;

#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const PORT: u16 = 7;
const WORKERS: usize = 2;
const CONNECTIONS: usize = 40;

fn connect() -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((STACK_ADDR, PORT));
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

type Started = (Vec<StatsHandle>, Option<Arc<XdpCookieStats>>);

/// A pair with an XDP_PASS program on the peer side and a stack of `workers` running echo
/// on PORT with `tcp`, in a thread of the stack namespace.
struct Running {
    // Field order is drop order: the peer's program goes before the namespaces.
    _peer_xdp: xdptcp_xdp::Steering,
    pair: VethPair,
    stop: Arc<AtomicBool>,
    handles: Vec<StatsHandle>,
    xdp: Arc<XdpCookieStats>,
    thread: Option<std::thread::JoinHandle<(Vec<WorkerSnapshot>, Counters)>>,
}

impl Running {
    fn start(workers: usize, tcp: TcpConfig) -> Running {
        require_root();
        let pair = VethPair::new(VethOptions {
            queues: workers as u32,
            mtu: None,
        })
        .expect("creating the veth pair");
        // veth hands XDP_TX frames to its peer's NAPI ring, so the peer needs NAPI: without
        // it they are not delivered; with only GRO on (6.18) they wait in the ring until the
        // next frame the kernel sends that way (seconds). An XDP program on the peer veth
        // delivers them at once: our steering program with no listeners passes everything.
        let peer_xdp = pair
            .in_peer(|| xdptcp_xdp::Steering::attach(&pair.peer_if, Default::default()))
            .expect("entering the peer namespace")
            .expect("XDP_PASS program on the peer veth");
        let opts = StackOptions {
            afxdp: AfXdpConfig::small(),
            workers,
            tcp,
            worker: WorkerConfig::default(),
            ..StackOptions::single(
                pair.stack_if.clone(),
                STACK_ADDR,
                vec![PORT],
                (61000, 61999),
            )
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<Started, String>>();
        let ns = pair.stack_ns.clone();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || -> (Vec<WorkerSnapshot>, Counters) {
            let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
            let mut stack = match Stack::open(&opts) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    panic!("stack did not start: {e}");
                }
            };
            let mut apps: Vec<Server> = (0..workers)
                .map(|_| {
                    let mut s = Server::new(1024);
                    s.add(PORT, Box::<Echo>::default());
                    s
                })
                .collect();
            let _ = tx.send(Ok((stack.stats_handles(), stack.xdp_cookie_stats())));
            let wait = flag.clone();
            let snaps = stack.run(&mut apps, flag, |_| {
                // Bounded: the test sets the flag; 120 s is a safety net.
                let end = StdInstant::now() + Duration::from_secs(120);
                while !wait.load(Ordering::Relaxed) && StdInstant::now() < end {
                    std::thread::sleep(Duration::from_millis(10));
                }
                wait.store(true, Ordering::Relaxed);
            });
            let c = stack.steering().counters().expect("XDP counters");
            (snaps.expect("no worker panicked"), c)
        });
        let (handles, xdp) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("stack thread start")
            .expect("stack start");
        Running {
            _peer_xdp: peer_xdp,
            pair,
            stop,
            handles,
            xdp: xdp.expect("xdp_syncookies = 1 gives XDP cookie stats"),
            thread: Some(thread),
        }
    }

    /// Waits (bounded by `limit`) until `cond` holds on the live XDP cookie counters.
    fn wait_xdp(&self, limit: Duration, cond: impl Fn(&[(&str, u64); 4]) -> bool) {
        let end = StdInstant::now() + limit;
        while !cond(&self.xdp.counters()) && StdInstant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until the workers' summed `f` reaches `n`.
    fn wait_workers(&self, limit: Duration, n: u64, f: fn(&WorkerSnapshot) -> u64) {
        let end = StdInstant::now() + limit;
        while self.handles.iter().map(|h| f(&h.get())).sum::<u64>() < n && StdInstant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Interface statistics and the peer's TCP counters, for failure messages.
    fn diag(&self) -> String {
        let p = &self.pair;
        let out = |o: std::io::Result<std::process::Output>| {
            o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        format!(
            "stack veth:\n{}\npeer veth:\n{}\npeer nstat:\n{}",
            out(p.run_in_stack(&["ethtool", "-S", &p.stack_if])),
            out(p.run_in_peer(&["ethtool", "-S", &p.peer_if])),
            out(p.run_in_peer(&["nstat", "-a"]))
        )
    }

    /// Stops the stack; its workers' last snapshots and the program's counters.
    fn finish(mut self) -> (Vec<WorkerSnapshot>, Counters) {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined once");
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn linux_handshakes_complete_on_xdp_cookies_and_echo_works() {
    let tcp = TcpConfig {
        syncookies: xdptcp::tcp::SynCookieMode::Always,
        xdp_syncookies: true,
        ..TcpConfig::default()
    };
    let st = Running::start(WORKERS, tcp);
    let pair = &st.pair;
    // The Linux client: sequential handshakes with a short echo each, then one long echo.
    let result = pair.in_peer(|| -> std::io::Result<()> {
        for i in 0..CONNECTIONS {
            let mut s = connect()?;
            echo_roundtrip(&mut s, format!("hello {i}").as_bytes())?;
        }
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
        let mut s = connect()?;
        echo_roundtrip(&mut s, &big)
    });
    let n = (CONNECTIONS + 1) as u64;
    // The cookie thread copies the program's counters every 50 ms; snapshots come every
    // 100 ms.
    st.wait_xdp(Duration::from_secs(3), |c| c[0].1 >= n);
    let live = st.xdp.counters();
    st.wait_workers(Duration::from_secs(3), n, |s| s.endpoint.cookies_accepted);
    let veth_stats = st.diag();
    let (snaps, counters) = st.finish();
    if let Err(e) = result.expect("entering the peer namespace") {
        panic!("handshakes and echo over XDP cookies: {e}\n{counters:?}\n{snaps:#?}\n{veth_stats}");
    }
    let sum = |f: fn(&WorkerSnapshot) -> u64| snaps.iter().map(f).sum::<u64>();
    // The workers made no cookie, accepted one per connection, rejected none.
    assert_eq!(sum(|s| s.endpoint.cookies_sent), 0, "{snaps:#?}");
    assert_eq!(sum(|s| s.endpoint.cookies_accepted), n);
    assert_eq!(sum(|s| s.endpoint.cookies_rejected), 0);
    assert_eq!(sum(|s| s.endpoint.conns_opened), n);
    assert_eq!(sum(|s| s.endpoint.rst_listen_bad_ack), 0);
    assert_eq!(sum(|s| s.iface.rx_checksum), 0);
    // Every SYN was answered in XDP (a retransmitted SYN would be answered again).
    assert!(counters.cookie_syn_acks >= n, "{counters:?}");
    assert!(counters.cookie_syn_acks <= n + 3, "{counters:?}");
    assert_eq!(counters.cookie_slow, 0, "{counters:?}");
    assert_eq!(live[0], ("xdp_cookie_syn_acks", counters.cookie_syn_acks));
    assert_eq!(live[2], ("xdp_cookie_mode_flips", 0)); // mode 2: no flags
}

/// Sends `n` SYNs to PORT from spoofed sources in 198.19.0.0/16 (inside the test: the
/// replies go back to the peer veth, whose kernel drops them), one per `gap_us`.
const SYN_FLOOD: &str = r#"
import socket, struct, sys, time
n, dst, port, gap = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) / 1e6
def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xFFFF)
    t += t >> 16
    return ~t & 0xFFFF
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i in range(n):
    src = socket.inet_aton("198.19.%d.%d" % (i // 250, i % 250 + 1))
    d = socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", 10000 + i, port, 1000003 * i, 0, 5 << 4, 2, 64240, 0, 0)
    c = csum(src + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, d)
    s.sendto(ip + tcp, (dst, 0))
    time.sleep(gap)
"#;

#[test]
fn mode_1_flag_goes_on_when_a_worker_overflows_and_off_when_quiet() {
    // A SYN queue of 16: the spoofed SYNs fill it (their SYN-ACKs go nowhere), the worker
    // starts sending cookies, the cookie thread sets the listener's flag, the program takes
    // the rest of the flood; after the flood the flag goes off again.
    let tcp = TcpConfig {
        syncookies: xdptcp::tcp::SynCookieMode::WhenFull,
        xdp_syncookies: true,
        max_syn_backlog: 16,
        ..TcpConfig::default()
    };
    let st = Running::start(1, tcp);
    let pair = &st.pair;
    let flood = pair.run_in_peer(&[
        "python3",
        "-c",
        SYN_FLOOD,
        "600",
        &STACK_ADDR.to_string(),
        &PORT.to_string(),
        "2000",
    ]);
    // While the flag is on (it stays on for at least 2 s after the flood), a Linux client
    // gets through on an XDP cookie.
    let echoed = pair.in_peer(|| -> std::io::Result<()> {
        let mut s = connect()?;
        echo_roundtrip(&mut s, b"through the flood")
    });
    let during = st.xdp.counters();
    // Quiet: the flag goes off after FLAG_HOLD (2 s) plus a tick.
    st.wait_xdp(Duration::from_secs(6), |c| c[2].1 >= 2);
    let after = st.xdp.counters();
    let veth_stats = st.diag();
    let (snaps, counters) = st.finish();
    let msg = format!("{during:?}\n{after:?}\n{counters:?}\n{snaps:#?}\n{veth_stats}");
    flood
        .map_err(|e| format!("{e}\n{msg}"))
        .expect("the SYN flood script");
    echoed
        .expect("entering the peer namespace")
        .unwrap_or_else(|e| panic!("echo during the flood: {e}\n{msg}"));
    let e = &snaps[0].endpoint;
    // The worker sent cookies until the flag went on, then the program answered the rest.
    assert!(e.cookies_sent >= 1, "{msg}");
    assert!(
        counters.cookie_syn_acks >= 300,
        "most of the 600 SYNs answered in XDP: {msg}"
    );
    assert!(
        e.cookies_sent + counters.cookie_syn_acks + 16 >= 600,
        "{msg}"
    );
    assert_eq!(during[2].1, 1, "flag on during the flood: {msg}");
    assert_eq!(after[2].1, 2, "flag off after it: {msg}");
    assert_eq!(e.cookies_rejected, 0, "{msg}");
    assert_eq!(e.cookies_accepted, 1, "the Linux client: {msg}");
}

#[test]
fn serve_binary_with_set_xdp_syncookies_and_stat_shows_the_counters() {
    require_root();
    let bin = env!("CARGO_BIN_EXE_xdptcp");
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let _peer_xdp = pair
        .in_peer(|| xdptcp_xdp::Steering::attach(&pair.peer_if, Default::default()))
        .expect("entering the peer namespace")
        .expect("XDP_PASS program on the peer veth");
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, bin, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args(["--listen", "7=echo", "--duration", "60", "--adaptive-idle"])
        .args(["--set", "tcp_syncookies=2", "--set", "xdp_syncookies=1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let mut serve = xdptcp_harness::KillOnDrop(child);
    let lines = xdptcp_harness::lines_of(out);
    let first = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(first.starts_with("xdptcp: serving on "), "{first}");
    pair.in_peer(|| -> std::io::Result<()> {
        for i in 0..3 {
            echo_roundtrip(&mut connect()?, format!("via serve {i}").as_bytes())?;
        }
        Ok(())
    })
    .expect("entering the peer namespace")
    .expect("echo through xdptcp serve on XDP cookies");
    // The cookie thread refreshes the counters every 50 ms.
    let end = StdInstant::now() + Duration::from_secs(5);
    let report = loop {
        let o = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.stack_ns,
                "timeout",
                "10",
                bin,
                "stat",
            ])
            .args(["--iface", &pair.stack_if])
            .output()
            .expect("running xdptcp stat");
        let r = String::from_utf8_lossy(&o.stdout).into_owned();
        if r.contains("xdp_cookie_syn_acks 3 ") || StdInstant::now() > end {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        report.contains(
            "xdp      cookies  xdp_cookie_syn_acks 3 xdp_cookie_slow 0 xdp_cookie_mode_flips 0"
        ),
        "{report}"
    );
    assert!(report.contains(" cookies_sent 0 "), "{report}");
    // SIGTERM: the summary line names the XDP cookies.
    // SAFETY: kill(2) on the PID of our own child.
    unsafe { libc::kill(serve.0.id() as libc::pid_t, libc::SIGTERM) };
    let end = StdInstant::now() + Duration::from_secs(10);
    let mut summary = String::new();
    while StdInstant::now() < end {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => summary += &(l + "\n"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if serve.0.try_wait().ok().flatten().is_some() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(
        summary.contains("xdptcp: xdp cookies: 3 SYN-ACKs, 0 left to workers;"),
        "{summary}"
    );
}
