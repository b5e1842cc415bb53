//! Conformance details found in review on the wire, against the Linux kernel (root only): a raw
//! socket in the peer namespace sends the same crafted segment to the stack's listener and
//! to a Linux listener in the stack namespace (on a port the XDP program does not steer),
//! and the replies must have the same flags: SYN+FIN and SYN+RST to a listener are
//! discarded (item 11), a malformed TCP option does not cost the SYN (item 12), segments
//! without ACK to a listener are dropped, an ACK gets a RST.
//!
//! Each test builds its own namespaces (`VethPair`, removed on drop, also on panic); every
//! loop and socket call is bounded in count and time.

use std::io;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant as StdInstant};

use xdptcp::app::client::Client;
use xdptcp::app::echo::Echo;
use xdptcp::app::server::Server;
use xdptcp::app::{App, AppEvent, AppIo};
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::endpoint::ConnId;
use xdptcp::tcp::TcpConfig;
use xdptcp::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr};
use xdptcp::worker::WorkerConfig;
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

const STACK_PORT: u16 = 7;
const LINUX_PORT: u16 = 7000;
/// How long replies to one crafted segment are collected.
const LISTEN_FOR: Duration = Duration::from_millis(300);

/// A raw TCP socket in the current namespace (the kernel adds the IPv4 header).
struct Raw(i32);

impl Raw {
    fn new() -> io::Result<Raw> {
        // SAFETY: plain socket(2) call; the fd is owned by the returned value.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: fd is a socket we own; tv lives across the call.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Raw(fd))
    }

    fn send(&self, seg: &TcpRepr<'_>) -> io::Result<()> {
        let mut bytes = vec![0u8; seg.buffer_len()];
        seg.emit(&mut bytes, PEER_ADDR, STACK_ADDR);
        raw_send_bytes(self, &bytes)
    }

    /// The flags of every TCP segment from the stack address to `our_port` within
    /// `LISTEN_FOR` (bounded: at most 64 datagrams looked at).
    fn replies(&self, our_port: u16) -> Vec<TcpFlags> {
        let end = StdInstant::now() + LISTEN_FOR;
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        for _ in 0..64 {
            if StdInstant::now() > end {
                break;
            }
            // SAFETY: buf outlives the call.
            let n =
                unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n <= 0 {
                continue; // timeout (50 ms): look at the clock again
            }
            let d = &buf[..n as usize];
            let ihl = ((d[0] & 0x0f) as usize) * 4;
            if d.len() < ihl + 20 || d[12..16] != STACK_ADDR.octets() {
                continue;
            }
            let Ok(r) = TcpRepr::parse(&d[ihl..], STACK_ADDR, PEER_ADDR, false) else {
                continue;
            };
            if r.dst_port == our_port {
                out.push(r.flags);
            }
        }
        out
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

/// (case name, the stack's replies, Linux's replies).
type Replies = (String, Vec<TcpFlags>, Vec<TcpFlags>);

fn segment(sport: u16, dport: u16, flags: TcpFlags, options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: SeqNum(0x1000_0000),
        ack: SeqNum(if flags.ack() { 0x2000_0000 } else { 0 }),
        flags,
        window: 64240,
        urgent: 0,
        options,
        payload: &[],
    }
}

/// The same crafted segments to the stack's listener and to a Linux
/// listener; the replies' flags must match, and what they are is asserted too.
#[test]
fn listener_flag_combinations_and_bad_options_match_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let stop = Arc::new(AtomicBool::new(false));
    let opts = StackOptions {
        ifname: pair.stack_if.clone(),
        addr: Some(STACK_ADDR),
        extra_addrs: Vec::new(),
        ports: vec![STACK_PORT],
        ephemeral: (61000, 61999),
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
    let worker = std::thread::spawn(move || {
        let mut app = Server::new(1024);
        app.add(STACK_PORT, Box::<Echo>::default());
        let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
        let mut stack = match Stack::open(&opts) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return None;
            }
        };
        stack.workers[0].set_stop_flag(flag);
        let stats = stack.workers[0].stats_handle();
        let _ = tx.send(Ok(()));
        stack.workers[0].run(&mut app);
        Some(stats.get())
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("worker thread start")
        .expect("stack start");
    // The Linux listener, in the stack namespace, on an unsteered port.
    let linux = pair
        .in_stack(|| TcpListener::bind(SocketAddrV4::new(STACK_ADDR, LINUX_PORT)))
        .expect("stack namespace")
        .expect("linux listener");

    let mss = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    let none = TcpOptions::default();
    let syn_ack = vec![TcpFlags::SYN | TcpFlags::ACK];
    // (name, flags, options, raw option bytes replacing the parsed ones, expected replies)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, TcpFlags, TcpOptions, Option<Vec<u8>>, Vec<TcpFlags>)> = vec![
        ("SYN", TcpFlags::SYN, mss, None, syn_ack.clone()),
        ("SYN+FIN", TcpFlags::SYN | TcpFlags::FIN, mss, None, vec![]),
        ("SYN+RST", TcpFlags::SYN | TcpFlags::RST, mss, None, vec![]),
        ("FIN", TcpFlags::FIN, none, None, vec![]),
        ("no flags", TcpFlags(0), none, None, vec![]),
        ("ACK", TcpFlags::ACK, none, None, vec![TcpFlags::RST]),
        // MSS, then a "silly" option (length 0): Linux stops parsing, keeps the SYN.
        (
            "SYN, silly option",
            TcpFlags::SYN,
            none,
            Some(vec![2, 4, 5, 0xb4, 8, 0, 0, 0]),
            syn_ack.clone(),
        ),
        // A window-scale option with length 4: skipped by its length.
        (
            "SYN, WS length 4",
            TcpFlags::SYN,
            none,
            Some(vec![3, 4, 7, 0, 2, 4, 5, 0xb4]),
            syn_ack.clone(),
        ),
        // An option running past the header: parsing stops, the SYN stays.
        (
            "SYN, partial option",
            TcpFlags::SYN,
            none,
            Some(vec![2, 4, 5, 0xb4, 30, 9, 0, 0]),
            syn_ack,
        ),
    ];
    let results = pair
        .in_peer(|| -> io::Result<Vec<Replies>> {
            let raw = Raw::new()?;
            let mut got = Vec::new();
            for (i, (name, flags, options, bytes, _)) in cases.iter().enumerate() {
                let mut pair_replies = Vec::new();
                for dport in [STACK_PORT, LINUX_PORT] {
                    let sport = 33000 + 2 * i as u16 + (dport == LINUX_PORT) as u16;
                    let seg = segment(sport, dport, *flags, *options);
                    match bytes {
                        None => raw.send(&seg)?,
                        Some(b) => send_with_option_bytes(&raw, &seg, b)?,
                    }
                    pair_replies.push(raw.replies(sport));
                }
                let linux = pair_replies.pop().unwrap_or_default();
                let stack = pair_replies.pop().unwrap_or_default();
                got.push((name.to_string(), stack, linux));
            }
            Ok(got)
        })
        .expect("peer namespace")
        .expect("raw socket");
    drop(linux);
    stop.store(true, Ordering::Relaxed);
    let snap = worker.join().expect("worker").expect("stack ran");
    for ((name, stack, linux), (_, _, _, _, want)) in results.iter().zip(&cases) {
        assert_eq!(stack, linux, "{name}: the stack vs Linux");
        assert_eq!(stack, want, "{name}");
    }
    assert_eq!(snap.endpoint.bad_flags_in, 1, "SYN+FIN counted");
}

/// Sends `seg` with its option bytes replaced by `opts` (a multiple of 4 bytes), checksum
/// recomputed: options our emitter would never write.
fn send_with_option_bytes(raw: &Raw, seg: &TcpRepr<'_>, opts: &[u8]) -> io::Result<()> {
    let plain = TcpRepr {
        options: TcpOptions::default(),
        ..*seg
    };
    let mut b = vec![0u8; 20];
    plain.emit(&mut b, PEER_ADDR, STACK_ADDR);
    b[12] = (((20 + opts.len()) / 4) as u8) << 4;
    b[16] = 0;
    b[17] = 0;
    b.extend_from_slice(opts);
    let sum = checksum(&b);
    b[16..18].copy_from_slice(&sum.to_be_bytes());
    raw_send_bytes(raw, &b)
}

fn checksum(seg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for a in [PEER_ADDR, STACK_ADDR] {
        let o = a.octets();
        sum += u32::from(u16::from_be_bytes([o[0], o[1]]));
        sum += u32::from(u16::from_be_bytes([o[2], o[3]]));
    }
    sum += 6 + seg.len() as u32;
    for c in seg.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn raw_send_bytes(raw: &Raw, bytes: &[u8]) -> io::Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(STACK_ADDR).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: bytes and sa outlive the call.
    let n = unsafe {
        libc::sendto(
            raw.0,
            bytes.as_ptr() as *const libc::c_void,
            bytes.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The stack's client, kept running after it is done (so its TIME-WAIT still answers).
struct KeepRunning(Client);

impl App for KeepRunning {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        self.0.on_start(io)
    }
    fn on_event(&mut self, io: &mut AppIo<'_>, conn: ConnId, ev: AppEvent) {
        self.0.on_event(io, conn, ev)
    }
}

impl Raw {
    /// Reads what is queued (bounded): for each destination port, the last segment from the
    /// stack address to it as (its source port, its ACK field).
    fn last_by_port(&self) -> std::collections::HashMap<u16, (u16, u32)> {
        let mut last = std::collections::HashMap::new();
        let mut buf = [0u8; 2048];
        for _ in 0..256 {
            // SAFETY: buf outlives the call.
            let n =
                unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n <= 0 {
                break;
            }
            let d = &buf[..n as usize];
            let ihl = ((d[0] & 0x0f) as usize) * 4;
            if d.len() < ihl + 20 || d[12..16] != STACK_ADDR.octets() {
                continue;
            }
            if let Ok(r) = TcpRepr::parse(&d[ihl..], STACK_ADDR, PEER_ADDR, false) {
                last.insert(r.dst_port, (r.src_port, r.ack.0));
            }
        }
        last
    }
}

/// A Linux server in the peer namespace for one connection: echoes one message, then reads
/// to EOF and closes (the client closes first and holds TIME-WAIT).
fn echo_then_close(l: TcpListener) -> std::thread::JoinHandle<io::Result<()>> {
    std::thread::spawn(move || {
        let (mut s, _) = l.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut b = [0u8; 64];
        let n = s.read(&mut b)?;
        s.write_all(&b[..n])?;
        while s.read(&mut b)? > 0 {}
        Ok(())
    })
}

/// On the wire: the client side of an active close holds TIME-WAIT on its
/// port with no listener; a SYN from the old peer with a sequence number beyond RCV.NXT (one
/// RFC 6191 would let reopen) is answered with the TIME-WAIT ACK by Linux (tcp_v4_rcv:
/// TCP_TW_SYN without a listener -> TCP_TW_ACK) and by the stack, not with a RST.
#[test]
fn syn_to_client_time_wait_gets_ack_like_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let (raw, l_stack, l_linux) = pair
        .in_peer(|| -> io::Result<_> {
            Ok((
                Raw::new()?,
                TcpListener::bind(SocketAddrV4::new(PEER_ADDR, 5000))?,
                TcpListener::bind(SocketAddrV4::new(PEER_ADDR, 5002))?,
            ))
        })
        .expect("peer namespace")
        .expect("peer sockets");
    let srv_stack = echo_then_close(l_stack);
    let srv_linux = echo_then_close(l_linux);
    // The stack's client: connect, echo, close first.
    let stop = Arc::new(AtomicBool::new(false));
    let opts = StackOptions {
        ifname: pair.stack_if.clone(),
        addr: Some(STACK_ADDR),
        extra_addrs: Vec::new(),
        ports: Vec::new(),
        ephemeral: (61000, 61999),
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
    let worker = std::thread::spawn(move || {
        let mut app = KeepRunning(Client::new(SocketAddrV4::new(PEER_ADDR, 5000), b"hi"));
        let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
        let mut stack = match Stack::open(&opts) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return None;
            }
        };
        stack.workers[0].set_stop_flag(flag);
        let _ = tx.send(Ok(stack.workers[0].stats_handle()));
        stack.workers[0].run(&mut app);
        Some(())
    });
    let stats = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("worker thread start")
        .expect("stack start");
    srv_stack
        .join()
        .expect("server thread")
        .expect("server for the stack");
    let end = StdInstant::now() + Duration::from_secs(5);
    while stats.get().endpoint.tw_entered == 0 && StdInstant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stats.get().endpoint.tw_entered,
        1,
        "the stack holds TIME-WAIT"
    );
    // The Linux client: the same from the stack namespace, on an unsteered kernel port.
    pair.in_stack(|| -> io::Result<()> {
        let mut c = TcpStream::connect_timeout(
            &SocketAddrV4::new(PEER_ADDR, 5002).into(),
            Duration::from_secs(5),
        )?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"hi")?;
        let mut b = [0u8; 2];
        c.read_exact(&mut b)?;
        Ok(())
    })
    .expect("stack namespace")
    .expect("linux client");
    srv_linux
        .join()
        .expect("server thread")
        .expect("server for linux");
    std::thread::sleep(Duration::from_millis(100)); // the last ACKs arrive
    let replies = pair
        .in_peer(|| -> Vec<Vec<TcpFlags>> {
            let mut v = Vec::new();
            let last = raw.last_by_port();
            for server_port in [5000, 5002] {
                let (port, rcv_nxt) = *last.get(&server_port).expect("the client's last ACK");
                let syn = TcpRepr {
                    seq: SeqNum(rcv_nxt.wrapping_add(100_000)),
                    ..segment(server_port, port, TcpFlags::SYN, TcpOptions::default())
                };
                raw.send(&syn).expect("send SYN");
                v.push(raw.replies(server_port));
            }
            v
        })
        .expect("peer namespace");
    let snap = stats.get();
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker").expect("stack ran");
    assert_eq!(replies[1], vec![TcpFlags::ACK], "Linux: TIME-WAIT ACK");
    assert_eq!(replies[0], replies[1], "the stack vs Linux");
    assert_eq!((snap.endpoint.tw_acks, snap.endpoint.rst_closed), (1, 0));
}

// ---- Rate limits (tcp_invalid_ratelimit) on the wire ----
//
// A raw-socket peer's kernel has no socket for the crafted 4-tuples, so it answers every
// reply (the TIME-WAIT ACK, the SYN-ACK) with a RST, and that RST ends Linux's TIME-WAIT
// (tcp_rfc1337 = 0) and its SYN-RECEIVED request: the comparison would stop after the first
// reply. So the peer namespace drops its own outgoing RSTs (nftables, output hook); the
// raw socket sends none.

/// Drops every RST the peer namespace's kernel sends (the table goes with the namespace).
fn drop_peer_rsts(pair: &VethPair) {
    for cmd in [
        &["nft", "add", "table", "inet", "xdptcp_test"][..],
        &[
            "nft",
            "add chain inet xdptcp_test out { type filter hook output priority 0 ; }",
        ],
        &[
            "nft",
            "add rule inet xdptcp_test out tcp flags & rst == rst drop",
        ],
    ] {
        let out = pair
            .run_in_peer(cmd)
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (nftables installed? scripts/setup.sh)"));
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }
}

/// Starts the stack in the stack namespace with `ports` steered and `app`; returns its stats
/// handle, the stop flag and the worker thread.
fn start_stack<A: App + Send + 'static>(
    pair: &VethPair,
    ports: Vec<u16>,
    mut app: A,
) -> (
    xdptcp::worker::StatsHandle,
    Arc<AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let opts = StackOptions {
        ifname: pair.stack_if.clone(),
        addr: Some(STACK_ADDR),
        extra_addrs: Vec::new(),
        ports,
        ephemeral: (61000, 61999),
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
    let worker = std::thread::spawn(move || {
        let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
        let mut stack = match Stack::open(&opts) {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        stack.workers[0].set_stop_flag(flag);
        let _ = tx.send(Ok(stack.workers[0].stats_handle()));
        stack.workers[0].run(&mut app);
    });
    let stats = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("worker thread start")
        .expect("stack start");
    (stats, stop, worker)
}

/// Sleeps until `t` (bounded: `t` is at most a second away in these tests).
fn sleep_until(t: StdInstant) {
    if let Some(d) = t.checked_duration_since(StdInstant::now()) {
        std::thread::sleep(d.min(Duration::from_secs(2)));
    }
}

/// Item 5 on the wire: out-of-window ACKs to a TIME-WAIT connection are answered at most once
/// per `tcp_invalid_ratelimit` (500 ms) by Linux (tcp_timewait_state_process ->
/// tcp_timewait_check_oow_rate_limit, TCPACKSkippedTimeWait) and by the stack: a burst of four
/// gets one ACK, one more 700 ms later gets one again.
#[test]
fn time_wait_oow_acks_rate_limited_like_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    drop_peer_rsts(&pair);
    let (raw, l_stack, l_linux) = pair
        .in_peer(|| -> io::Result<_> {
            Ok((
                Raw::new()?,
                TcpListener::bind(SocketAddrV4::new(PEER_ADDR, 5000))?,
                TcpListener::bind(SocketAddrV4::new(PEER_ADDR, 5002))?,
            ))
        })
        .expect("peer namespace")
        .expect("peer sockets");
    let srv_stack = echo_then_close(l_stack);
    let srv_linux = echo_then_close(l_linux);
    let client = KeepRunning(Client::new(SocketAddrV4::new(PEER_ADDR, 5000), b"hi"));
    let (stats, stop, worker) = start_stack(&pair, Vec::new(), client);
    srv_stack
        .join()
        .expect("server thread")
        .expect("server for the stack");
    let end = StdInstant::now() + Duration::from_secs(5);
    while stats.get().endpoint.tw_entered == 0 && StdInstant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        stats.get().endpoint.tw_entered,
        1,
        "the stack holds TIME-WAIT"
    );
    pair.in_stack(|| -> io::Result<()> {
        let mut c = TcpStream::connect_timeout(
            &SocketAddrV4::new(PEER_ADDR, 5002).into(),
            Duration::from_secs(5),
        )?;
        c.set_read_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(b"hi")?;
        let mut b = [0u8; 2];
        c.read_exact(&mut b)?;
        Ok(())
    })
    .expect("stack namespace")
    .expect("linux client");
    srv_linux
        .join()
        .expect("server thread")
        .expect("server for linux");
    std::thread::sleep(Duration::from_millis(100)); // the last ACKs arrive
                                                    // Per server port: (replies to the burst, replies to the one 700 ms later).
    let replies = pair
        .in_peer(|| -> Vec<(Vec<TcpFlags>, Vec<TcpFlags>)> {
            let last = raw.last_by_port();
            let mut v = Vec::new();
            for server_port in [5000, 5002] {
                let (port, rcv_nxt) = *last.get(&server_port).expect("the client's last ACK");
                let oow = TcpRepr {
                    seq: SeqNum(rcv_nxt.wrapping_add(100_000)),
                    ack: SeqNum(1),
                    ..segment(server_port, port, TcpFlags::ACK, TcpOptions::default())
                };
                let burst_at = StdInstant::now();
                for _ in 0..4 {
                    raw.send(&oow).expect("send ACK");
                }
                let burst = raw.replies(server_port);
                sleep_until(burst_at + Duration::from_millis(700));
                raw.send(&oow).expect("send ACK");
                v.push((burst, raw.replies(server_port)));
            }
            v
        })
        .expect("peer namespace");
    let snap = stats.get();
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    let one_ack = vec![TcpFlags::ACK];
    assert_eq!(replies[1], (one_ack.clone(), one_ack), "Linux");
    assert_eq!(replies[0], replies[1], "the stack vs Linux");
    let e = snap.endpoint;
    assert_eq!((e.tw_acks, e.tw_acks_skipped), (2, 3));
}

/// Item 5 on the wire: duplicate SYNs to a connection in SYN-RECEIVED get the SYN-ACK again at
/// most once per `tcp_invalid_ratelimit` from Linux (tcp_check_req -> tcp_oow_rate_limited,
/// TCPACKSkippedSynRecv) and from the stack: the SYN gets its SYN-ACK, a burst of three
/// duplicates one more (well before the 1 s SYN-ACK retransmission).
#[test]
fn duplicate_syns_in_syn_received_rate_limited_like_linux() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    drop_peer_rsts(&pair);
    let mut app = Server::new(1024);
    app.add(STACK_PORT, Box::<Echo>::default());
    let (stats, stop, worker) = start_stack(&pair, vec![STACK_PORT], app);
    let linux = pair
        .in_stack(|| TcpListener::bind(SocketAddrV4::new(STACK_ADDR, LINUX_PORT)))
        .expect("stack namespace")
        .expect("linux listener");
    let mss = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    // Per listener: (replies to the SYN, replies to three duplicates of it).
    let replies = pair
        .in_peer(|| -> io::Result<Vec<(Vec<TcpFlags>, Vec<TcpFlags>)>> {
            let raw = Raw::new()?;
            let mut v = Vec::new();
            for (i, dport) in [STACK_PORT, LINUX_PORT].into_iter().enumerate() {
                let sport = 34000 + i as u16;
                let syn = segment(sport, dport, TcpFlags::SYN, mss);
                raw.send(&syn)?;
                let first = raw.replies(sport);
                for _ in 0..3 {
                    raw.send(&syn)?;
                }
                v.push((first, raw.replies(sport)));
            }
            Ok(v)
        })
        .expect("peer namespace")
        .expect("raw socket");
    drop(linux);
    let snap = stats.get();
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("worker");
    let syn_ack = vec![TcpFlags::SYN | TcpFlags::ACK];
    assert_eq!(replies[1], (syn_ack.clone(), syn_ack), "Linux");
    assert_eq!(replies[0], replies[1], "the stack vs Linux");
    assert_eq!(snap.endpoint.acks_skipped, 2);
}
