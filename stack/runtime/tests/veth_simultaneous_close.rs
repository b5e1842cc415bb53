//! Simultaneous close (RFC 9293 §3.6, figure 13) against the Linux kernel on a real veth pair
//! (root only), over IPv4 and over IPv6 with one helper: each side sends its FIN before it
//! has seen the other's, so the stack goes FIN-WAIT-1 -> CLOSING -> TIME-WAIT. (The simulator
//! covers the same path between two stacks, sim_lifecycle.rs; this is the kernel as peer.)
//!
//! "At once" is made deterministic with an nftables rule in the peer's own namespace that
//! drops the stack's FIN segments on Linux's input: the stack closes first (close-first app:
//! "bye\n" + FIN, dropped), Linux then sends its FIN (shutdown), which the stack takes in
//! FIN-WAIT-1 with its own FIN unacknowledged: CLOSING. The rule goes, the stack's
//! retransmitted FIN reaches Linux, whose ACK moves the stack to TIME-WAIT; Linux reads
//! "bye\n" and EOF and holds TIME-WAIT itself.
//!
//! Addresses 198.18.0.1/2 and 2001:2::1/2 (RFC 5180), namespaces, rule and addresses are the
//! test's own and removed with the namespaces, also on panic. Every wait is bounded.

use std::io::Read;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xdptcp::app::close_first::{CloseFirst, MESSAGE};
use xdptcp::app::server::Server;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::worker::{StatsHandle, WorkerSnapshot};
use xdptcp_harness::{require_root, VethOptions, VethPair, STACK_ADDR, STACK_ADDR6};

const PORT: u16 = 9;
const LIMIT: Duration = Duration::from_secs(10);
const TABLE: &str = "xt_simclose";

/// A dual-stack stack serving close-first on [`PORT`], on a worker thread in the stack
/// namespace; stopped and joined on drop.
struct Running {
    stop: Arc<AtomicBool>,
    stats: StatsHandle,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(pair: &VethPair) -> Running {
        let o = StackOptions::single(
            pair.stack_if.clone(),
            STACK_ADDR,
            vec![PORT],
            (61000, 61999),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (ns, flag) = (pair.stack_ns.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let _ns = xdptcp_harness::NetnsGuard::enter(&ns).expect("stack namespace");
            let mut stack = match Stack::open_dual(&o, &[STACK_ADDR6]) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            stack.workers[0].set_stop_flag(flag);
            let _ = tx.send(Ok(stack.workers[0].stats_handle()));
            let mut server = Server::new(16);
            server.add(PORT, Box::<CloseFirst>::default());
            stack.workers[0].run(&mut server);
        });
        let stats = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("worker thread start")
            .unwrap_or_else(|e| panic!("stack start: {e}"));
        Running {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    /// Polls the worker's snapshots (refreshed every 100 ms) until `cond`, at most [`LIMIT`].
    fn wait_for(&self, what: &str, cond: impl Fn(&WorkerSnapshot) -> bool) -> WorkerSnapshot {
        let end = Instant::now() + LIMIT;
        loop {
            let s = self.stats.get();
            if cond(&s) {
                return s;
            }
            assert!(Instant::now() < end, "{what}: {:?}", s.states);
            std::thread::sleep(Duration::from_millis(20));
        }
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

/// The peer's input drops TCP FINs from the stack's port (on) or lets them pass (off).
fn drop_stack_fins(pair: &VethPair, on: bool) {
    let script = if on {
        format!(
            "add table inet {TABLE}; \
             add chain inet {TABLE} input {{ type filter hook input priority 0; }}; \
             add rule inet {TABLE} input tcp sport {PORT} tcp flags & fin == fin drop"
        )
    } else {
        format!("delete table inet {TABLE}")
    };
    pair.run_in_peer(&["nft", &script])
        .unwrap_or_else(|e| panic!("nft {script}: {e}"));
}

/// The whole exchange with the stack at `stack` (either family).
fn simultaneous_close(stack: IpAddr) {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    pair.add_ipv6().expect("adding the IPv6 addresses");
    let run = Running::start(&pair);
    drop_stack_fins(&pair, true);
    let mut c = pair
        .in_peer(|| TcpStream::connect_timeout(&SocketAddr::new(stack, PORT), LIMIT))
        .expect("entering the peer namespace")
        .expect("Linux connects");
    c.set_read_timeout(Some(LIMIT)).unwrap();
    // The stack closed at once (its FIN dropped on the way): FIN-WAIT-1.
    run.wait_for("stack in FIN-WAIT-1", |s| s.states.fin_wait1 == 1);
    // Linux's FIN crosses it: the stack's FIN is not acknowledged, so CLOSING.
    c.shutdown(Shutdown::Write).expect("Linux shutdown");
    let snap = run.wait_for("stack in CLOSING", |s| s.states.closing == 1);
    assert_eq!(snap.states.fin_wait1, 0, "{:?}", snap.states);
    // The retransmitted FIN now reaches Linux, whose ACK ends CLOSING: TIME-WAIT.
    drop_stack_fins(&pair, false);
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("Linux reads to EOF");
    assert_eq!(got, MESSAGE);
    let snap = run.wait_for("stack in TIME-WAIT", |s| s.states.time_wait == 1);
    assert_eq!((snap.states.closing, snap.endpoint.tw_entered), (0, 1));
    assert_eq!(snap.endpoint.conns_opened, 1, "{:?}", snap.endpoint);
    // Linux holds TIME-WAIT too (it was in FIN-WAIT-2 when the FIN came).
    let local = c.local_addr().unwrap();
    drop(c);
    let ss = pair
        .run_in_peer(&["ss", "-tanH", "state", "time-wait"])
        .expect("ss in the peer namespace");
    let ss = String::from_utf8_lossy(&ss.stdout);
    assert!(
        ss.lines().any(|l| l.contains(&local.to_string())),
        "{local} not in TIME-WAIT: {ss}"
    );
}

#[test]
fn simultaneous_close_ipv4() {
    simultaneous_close(STACK_ADDR.into());
}

#[test]
fn simultaneous_close_ipv6() {
    simultaneous_close(STACK_ADDR6.into());
}
