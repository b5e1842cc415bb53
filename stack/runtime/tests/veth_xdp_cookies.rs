//! SYN cookies answered in the XDP program (issue 13) against Linux over a real veth pair
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

fn small_afxdp() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 4096 + 1024,
        frame_size: 2048,
        fill_size: 4096,
        comp_size: 1024,
        rx_size: 4096,
        tx_size: 1024,
        zero_copy: false,
        need_wakeup: true,
    }
}

fn connect() -> std::io::Result<TcpStream> {
    let addr = SocketAddr::from((STACK_ADDR, PORT));
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

type Started = (Vec<StatsHandle>, Option<Arc<XdpCookieStats>>);

#[test]
fn linux_handshakes_complete_on_xdp_cookies_and_echo_works() {
    require_root();
    let pair = VethPair::new(VethOptions {
        queues: WORKERS as u32,
        mtu: None,
    })
    .expect("creating the veth pair");
    // veth hands XDP_TX frames to its peer's NAPI ring, so the peer needs NAPI: without it
    // they are dropped; with only GRO on (6.18) they wait in the ring until the next frame
    // the kernel sends that way (seconds). An XDP program on the peer veth delivers them at
    // once: our steering program with no listeners passes everything to the peer's kernel.
    let _peer_xdp = pair
        .in_peer(|| xdptcp_xdp::Steering::attach(&pair.peer_if, Default::default()))
        .expect("entering the peer namespace")
        .expect("XDP_PASS program on the peer veth");
    let tcp = TcpConfig {
        syncookies: 2,
        xdp_syncookies: true,
        ..TcpConfig::default()
    };
    let opts = StackOptions {
        afxdp: small_afxdp(),
        workers: WORKERS,
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
        let mut apps: Vec<Server> = (0..WORKERS)
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
        (snaps, c)
    });
    let (handles, xdp) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("stack thread start")
        .expect("stack start");
    let xdp = xdp.expect("xdp_syncookies = 1 gives XDP cookie stats");

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
    // The cookie thread copies the program's counters every 50 ms.
    let end = StdInstant::now() + Duration::from_secs(3);
    while xdp.counters()[0].1 < (CONNECTIONS + 1) as u64 && StdInstant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let live = xdp.counters();
    // Snapshots are published every 100 ms: wait for every accepted cookie to show.
    let end = StdInstant::now() + Duration::from_secs(3);
    while handles
        .iter()
        .map(|h| h.get().endpoint.cookies_accepted)
        .sum::<u64>()
        < (CONNECTIONS + 1) as u64
        && StdInstant::now() < end
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let diag = |p: &VethPair| {
        let s = p.run_in_stack(&["ethtool", "-S", &p.stack_if]);
        let q = p.run_in_peer(&["ethtool", "-S", &p.peer_if]);
        let out = |o: std::io::Result<std::process::Output>| {
            o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let n = p.run_in_peer(&["nstat", "-a"]);
        format!(
            "stack veth:\n{}\npeer veth:\n{}\npeer nstat:\n{}",
            out(s),
            out(q),
            out(n)
        )
    };
    let veth_stats = diag(&pair);
    stop.store(true, Ordering::Relaxed);
    let (snaps, counters) = thread
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    if let Err(e) = result.expect("entering the peer namespace") {
        panic!("handshakes and echo over XDP cookies: {e}\n{counters:?}\n{snaps:#?}\n{veth_stats}");
    }

    let n = (CONNECTIONS + 1) as u64;
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
