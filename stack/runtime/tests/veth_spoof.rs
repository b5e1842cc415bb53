//! Root-only: neighbour-table poisoning and exhaustion against a real kernel peer on a veth pair (198.18.0.0/15 only).
//!
//! - A spoofed SYN carrying the peer's IP address and another MAC does not redirect the
//!   stack's traffic: an established connection keeps working, the conflict is counted.
//! - A burst of SYNs from 300 spoofed on-link sources (more than the 256-entry table) neither
//!   evicts the peer's resolved entry nor stops the stack from sending: pending entries are
//!   evicted instead, and counted.
//!
//! Spoofed frames are written with an AF_PACKET socket in the peer namespace; the spoofed
//! sources are in 198.19.0.0/16, made on-link in the stack namespace only for this test. The
//! namespaces (`harness::VethPair`, per-run names) are removed on drop, also on panic; every
//! loop is bounded.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;
use xdptcp::app::server::{AppKind, Server};
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::wire::{self, SeqNum};
use xdptcp::worker::{StatsHandle, WorkerSnapshot};
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
const FAKE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x66];

/// The stack with an echo server on port 7, on its own thread in the stack namespace.
struct InProc {
    stop: Arc<AtomicBool>,
    stats: StatsHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProc {
    fn start(pair: &VethPair) -> InProc {
        let mut opts =
            StackOptions::single(pair.stack_if.clone(), STACK_ADDR, vec![7], (61000, 61999));
        opts.afxdp = AfXdpConfig {
            frame_count: 4096 + 1024,
            fill_size: 4096,
            rx_size: 4096,
            ..AfXdpConfig::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (ns, flag) = (pair.stack_ns.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
            let mut stack = Stack::open(&opts).expect("stack start");
            stack.workers[0].set_stop_flag(flag);
            let _ = tx.send(stack.workers[0].stats_handle());
            let mut app = Server::new(64);
            app.add(7, AppKind::Echo.build());
            stack.workers[0].run(&mut app);
        });
        let stats = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("stack start");
        InProc {
            stop,
            stats,
            thread: Some(thread),
        }
    }

    fn wait_for(&self, limit: Duration, cond: impl Fn(&WorkerSnapshot) -> bool) -> WorkerSnapshot {
        let end = Instant::now() + limit;
        loop {
            let s = self.stats.get();
            if cond(&s) || Instant::now() > end {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for InProc {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An AF_PACKET socket in the peer namespace.
struct RawSender {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSender {
    fn new(pair: &VethPair) -> RawSender {
        let ifname = pair.peer_if.clone();
        let (fd, ifindex) = pair
            .in_peer(move || {
                // SAFETY: plain socket(2); protocol 0 = send only.
                let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
                assert!(fd >= 0, "AF_PACKET socket: {}", io::Error::last_os_error());
                // SAFETY: fd is a fresh descriptor we own.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                (fd, xdptcp_xdp::ifindex(&ifname).expect("peer ifindex"))
            })
            .expect("peer namespace");
        RawSender {
            fd,
            ifindex: ifindex as i32,
        }
    }

    /// A SYN to port 7 from `src` (IP) with Ethernet source `src_mac`.
    fn syn(&self, pair: &VethPair, src: Ipv4Addr, src_mac: [u8; 6], sport: u16) {
        let syn = wire::TcpRepr {
            src_port: sport,
            dst_port: 7,
            seq: SeqNum(1000),
            ack: SeqNum(0),
            flags: wire::TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: wire::TcpOptions::default(),
            payload: &[],
        };
        let eth = wire::EthernetRepr {
            src_addr: wire::EthernetAddress(src_mac),
            dst_addr: wire::EthernetAddress(pair.stack_mac),
            ethertype: wire::EtherType::Ipv4,
        };
        let mut frame = vec![0u8; wire::tcp_frame_len(&syn)];
        wire::emit_tcp_frame(&mut frame, &eth, src, STACK_ADDR, 64, &syn);
        // SAFETY: zeroed sockaddr_ll is valid; we fill the fields sendto needs.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&pair.stack_mac);
        // SAFETY: buffer and address are valid for the given lengths.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, frame.len() as isize, "{}", io::Error::last_os_error());
    }
}

/// A Linux connection from the peer namespace to the stack's echo port.
fn connect(pair: &VethPair) -> TcpStream {
    pair.in_peer(|| -> io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(&SocketAddr::from((STACK_ADDR, 7)), IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    })
    .expect("peer namespace")
    .expect("connect to the stack")
}

fn setup() -> (VethPair, InProc, RawSender) {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    // 198.19.0.0/16 on-link in the stack namespace: SYN-ACKs to spoofed sources there need
    // neighbour resolution (which never succeeds).
    pair.run_in_stack(&["ip", "route", "add", "198.19.0.0/16", "dev", &pair.stack_if])
        .expect("on-link spoof range");
    let stack = InProc::start(&pair);
    let raw = RawSender::new(&pair);
    (pair, stack, raw)
}

#[test]
fn spoofed_syn_does_not_redirect_traffic_to_another_mac() {
    let (pair, stack, raw) = setup();
    let mut a = connect(&pair);
    echo_roundtrip(&mut a, b"before the spoof").expect("echo before");
    raw.syn(&pair, PEER_ADDR, FAKE_MAC, 40000);
    let s = stack.wait_for(Duration::from_secs(5), |s| s.neigh.learn_conflicts >= 1);
    assert_eq!(s.neigh.learn_conflicts, 1, "{:?}", s.neigh);
    assert_eq!(s.neigh.mac_changed, 0, "{:?}", s.neigh);
    // Our traffic still goes to the peer's real MAC: the established connection echoes.
    echo_roundtrip(&mut a, b"after the spoof").expect("echo after the spoofed SYN");
    echo_roundtrip(&mut connect(&pair), b"new connection").expect("new connection");
}

#[test]
fn spoofed_on_link_sources_do_not_evict_the_peer_or_stop_sending() {
    let (pair, stack, raw) = setup();
    let mut a = connect(&pair);
    echo_roundtrip(&mut a, b"before the flood").expect("echo before");
    // 300 distinct on-link sources (> the 256-entry table), each answered with a SYN-ACK
    // that waits for a neighbour that never resolves.
    for i in 0..300u32 {
        let src = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 19, 1, 0)) + i);
        raw.syn(&pair, src, FAKE_MAC, 40000 + i as u16);
    }
    let s = stack.wait_for(Duration::from_secs(5), |s| {
        s.neigh.evicted_pending + s.neigh.rejected_table_full >= 300 - 64
    });
    assert!(s.neigh.evicted_pending >= 300 - 64, "{:?}", s.neigh);
    assert_eq!(
        (s.neigh.evicted, s.neigh.rejected_table_full),
        (0, 0),
        "{:?}",
        s.neigh
    );
    // The peer's entry survived: the established connection and new ones work.
    echo_roundtrip(&mut a, b"after the flood").expect("echo after the flood");
    echo_roundtrip(&mut connect(&pair), b"new connection").expect("new connection");
}
