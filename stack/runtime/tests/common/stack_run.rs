//! Runs an application on one in-process worker of a stack (`xdptcp::stack::Stack` as
//! `xdptcp serve` sets it up) inside a test's namespace, until the application is done or
//! [`LIMIT`] passes (shared by the veth ICMP tests).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xdptcp::app::App;
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::TcpConfig;
use xdptcp::worker::{WorkerConfig, WorkerSnapshot};
use xdptcp_harness::NetnsGuard;

/// The stack's ephemeral ports (reserved from the kernel).
pub const EPHEMERAL: (u16, u16) = (61000, 61999);
/// The whole transfer or connect must end within this.
pub const LIMIT: Duration = Duration::from_secs(120);

/// Runs `app` on one worker of a stack on `ifname` (in namespace `ns`, address `addr`, and
/// the IPv6 addresses `addrs6`: `Stack::open_dual`) until it is done or [`LIMIT`] passes;
/// returns the last snapshot and the app.
pub fn run_stack_dual<A: App + Send + 'static>(
    ns: &str,
    ifname: &str,
    addr: Ipv4Addr,
    addrs6: &[Ipv6Addr],
    tcp: TcpConfig,
    app: A,
) -> (WorkerSnapshot, A) {
    let addrs6 = addrs6.to_vec();
    let opts = StackOptions {
        ifname: ifname.to_string(),
        addr: Some(addr),
        extra_addrs: Vec::new(),
        ports: Vec::new(),
        ephemeral: EPHEMERAL,
        zero_copy: false,
        reserve_ports: true,
        tcp,
        afxdp: AfXdpConfig::small(),
        worker: WorkerConfig::default(),
        workers: 1,
        cores: Vec::new(),
        rss_key: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let ns = ns.to_string();
    let worker = std::thread::spawn(move || {
        let mut app = app;
        let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
        let mut stack =
            Stack::open_dual(&opts, &addrs6).unwrap_or_else(|e| panic!("stack did not start: {e}"));
        stack.workers[0].set_stop_flag(flag);
        let snap = stack.workers[0].run(&mut app);
        (snap, app)
    });
    let end = Instant::now() + LIMIT;
    while !worker.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    worker
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
