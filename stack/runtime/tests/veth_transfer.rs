//! Veth interop under loss (root only): bulk transfers between the stack and the Linux
//! kernel over a real veth pair with loss on the path, both directions, byte-exact.
//!
//! - Loss Linux -> stack: `xdptcp_xdp::loss::LossInjector` (tcx egress) on the peer veth,
//!   with the peer's `gso_max_segs 1` so that each dropped skb is one segment on the wire.
//! - Loss stack -> Linux: the stack's own `xdptcp::phy::FaultInjector` wrapping its AF_XDP
//!   device, dropping on transmit (the stack's AF_XDP transmit bypasses tc, so no tc
//!   program can see it).
//!
//! So each direction's data segments and the other direction's ACKs are dropped at the same
//! rate. Data is a seeded ChaCha8 stream per direction, verified on the fly at the receiver
//! (first differing offset reported) and by a SipHash-1-3 128 of both ends' streams; memory
//! stays bounded (one 64 KiB chunk per stream).
//!
//! The stack runs in-process: a worker thread in the stack namespace, set up like
//! `xdptcp::stack::Stack::open` but with the device wrapped in the fault injector. Each test
//! builds its own namespaces (`harness::VethPair`: 198.18.0.0/24, per-run names, removed on
//! drop, also on panic); every socket call and wait is bounded in time.
//!
//! Run (as root): `cargo test --release -p xdptcp --test veth_transfer -- --nocapture`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use siphasher::sip128::Hasher128;

use xdptcp::app::{App, AppEvent, AppIo};
use xdptcp::iface::{Interface, InterfaceConfig};
use xdptcp::neigh::{KernelResolver, Netlink};
use xdptcp::phy::{AfXdpConfig, AfXdpDevice, FaultConfig, FaultCounters, FaultInjector};
use xdptcp::stack::ReservedPorts;
use xdptcp::tcp::endpoint::{ConnId, Endpoint, EndpointSecrets};
use xdptcp::tcp::TcpConfig;
use xdptcp::worker::{Worker, WorkerConfig};
use xdptcp_harness::{require_root, NetnsGuard, VethOptions, VethPair, PEER_ADDR, STACK_ADDR};
use xdptcp_xdp::loss::{LossConfig, LossCounters, LossInjector};
use xdptcp_xdp::{AttachOptions, Steering};

use stream::{Sink, Source, CHUNK};
use xdptcp_sim::stream;

const MIB: u64 = 1 << 20;
const EPHEMERAL: (u16, u16) = (61000, 61999);
const PORT: u16 = 5201;
/// A whole transfer (both directions) must end within this; a stall fails with this line.
const TRANSFER_LIMIT: Duration = Duration::from_secs(240);
/// Linux socket calls block at most this long each.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

// ---- the stack's application: stream out, verify in ----

/// Connects (or accepts one connection), sends `out` bytes of its stream, verifies `inc`
/// bytes of the peer's, half-closes when its data is out, closes after end-of-stream.
struct Streamer {
    connect_to: Option<SocketAddrV4>,
    conn: Option<ConnId>,
    src: Source,
    sink: Sink,
    fin_sent: bool,
    peer_fin: bool,
    closed: bool,
    /// Set when the connection is over: Ok or why not.
    result: Option<Result<(), String>>,
    buf: Vec<u8>,
}

impl Streamer {
    /// Stream ids: 1 = Linux -> stack, 2 = stack -> Linux.
    fn new(seed: u64, connect_to: Option<SocketAddrV4>, out: u64, inc: u64) -> Self {
        Streamer {
            connect_to,
            conn: None,
            src: Source::new(seed, 2, out),
            sink: Sink::new(seed, 1, inc),
            fin_sent: false,
            peer_fin: false,
            closed: false,
            result: None,
            buf: vec![0; CHUNK],
        }
    }

    fn fail(&mut self, why: String) {
        self.result.get_or_insert(Err(why));
    }

    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        loop {
            match io.recv(c, &mut self.buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Err(e) = self.sink.take(&self.buf[..n]) {
                        self.fail(format!("stack received: {e}"));
                        let _ = io.abort(c);
                        return;
                    }
                }
            }
        }
        while !self.src.done() {
            match io.send(c, self.src.pending()) {
                Ok(0) => break,
                Ok(n) => self.src.consume(n),
                Err(e) => {
                    self.fail(format!("stack send: {e}"));
                    return;
                }
            }
        }
        if !self.fin_sent && self.src.done() && (self.src.total > 0 || self.peer_fin) {
            self.fin_sent = true;
            let _ = io.shutdown(c);
        }
        if self.fin_sent && self.peer_fin && !self.closed {
            self.closed = true;
            let _ = io.close(c);
        }
    }
}

impl App for Streamer {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        let r = match self.connect_to {
            Some(to) => io.connect(to).map(|c| self.conn = Some(c)),
            None => io.listen(PORT, 4).map(drop),
        };
        if let Err(e) = r {
            self.fail(format!("start: {e}"));
        }
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Accepted(_) if self.conn.is_some() => {
                let _ = io.abort(c);
                self.fail("a second connection".into());
            }
            AppEvent::Accepted(_) => self.conn = Some(c),
            AppEvent::PeerFin => {
                self.peer_fin = true;
                self.pump(io, c);
            }
            AppEvent::Connected | AppEvent::Readable | AppEvent::Writable => self.pump(io, c),
            AppEvent::Error(e) => self.fail(format!("stack connection error: {e}")),
            AppEvent::Closed => {
                let ok = self.peer_fin
                    && self.sink.received == self.sink.total
                    && self.src.done()
                    && self.fin_sent;
                if ok {
                    self.result.get_or_insert(Ok(()));
                } else {
                    self.fail(format!(
                        "closed early: read {}/{}, sent {}/{}, peer FIN {}",
                        self.sink.received,
                        self.sink.total,
                        self.src.sent,
                        self.src.total,
                        self.peer_fin
                    ));
                }
            }
        }
    }

    fn is_done(&self) -> bool {
        self.result.is_some()
    }
}

// ---- the stack, in-process, with a fault injector on its device ----

fn afxdp() -> AfXdpConfig {
    AfXdpConfig {
        frame_count: 16384 + 4096,
        frame_size: 2048,
        fill_size: 16384,
        comp_size: 2048,
        rx_size: 4096,
        tx_size: 2048,
        zero_copy: false,
        need_wakeup: true,
    }
}

/// Bigger buffers than the defaults so the transfer is window- and loss-bound, not
/// buffer-bound.
fn tcp() -> TcpConfig {
    TcpConfig {
        rmem: 1 << 20,
        wmem: 1 << 20,
        ..TcpConfig::default()
    }
}

type Done = (Streamer, FaultCounters);

struct InProc {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Done>>,
}

impl InProc {
    /// Brings the stack up in the stack namespace (as `Stack::open` does) with transmit drops
    /// at `tx_drop`, and runs `app` on a worker thread until it is done or stopped.
    fn start(pair: &VethPair, tx_drop: f64, seed: u64, app: Streamer) -> InProc {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let (ns, ifname, flag) = (pair.stack_ns.clone(), pair.stack_if.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut app = app;
            let _ns = NetnsGuard::enter(&ns).expect("entering the stack namespace");
            let mut nl = Netlink::open().expect("netlink");
            let link = nl.link_info(&ifname).expect("stack interface");
            let mut steering =
                Steering::attach(&ifname, AttachOptions::default()).expect("XDP steering");
            let _reserved = ReservedPorts::reserve(EPHEMERAL.0, EPHEMERAL.1).expect("reserve");
            let dev = AfXdpDevice::open(&ifname, 0, afxdp()).expect("AF_XDP socket");
            steering.register_xsk(0, dev.fd()).expect("register xsk");
            steering.add_listen(STACK_ADDR, PORT).expect("steer port");
            steering
                .set_ephemeral(STACK_ADDR, EPHEMERAL.0, EPHEMERAL.1)
                .expect("steer ephemeral");
            let faults = FaultConfig {
                drop: tx_drop,
                rx: false,
                tx: true,
                ..FaultConfig::default()
            };
            let dev = FaultInjector::new(dev, faults, seed);
            let mut cfg = tcp();
            cfg.mss = cfg.mss.min(link.mtu.saturating_sub(40) as u16);
            let ep = Endpoint::new(
                cfg,
                EndpointSecrets::from_seed(seed),
                EPHEMERAL.0..=EPHEMERAL.1,
            );
            let resolver = KernelResolver::new(nl, link.ifindex);
            let iface = Interface::new(
                dev,
                resolver,
                ep,
                InterfaceConfig::new(STACK_ADDR, link.mac),
            );
            let mut worker = Worker::new(0, iface, WorkerConfig::default());
            worker.set_stop_flag(flag);
            let _ = ready_tx.send(());
            worker.run(&mut app);
            let faults = worker.iface.device().fault_stats();
            // Unregister before the socket closes (see AfXdpDevice::open).
            let _ = steering.unregister_xsk(0);
            (app, faults)
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the stack did not start (its thread panicked: see above)");
        InProc {
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for the application to finish (at most until `deadline`), then stops the
    /// worker and returns the application and the injector's counters.
    fn finish(mut self, deadline: StdInstant) -> Done {
        let t = self.thread.take().expect("finished once");
        while StdInstant::now() < deadline && !t.is_finished() {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        t.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
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

// ---- the Linux side ----

/// Writes its stream (id 1) and half-closes, while reading the stack's stream (id 2) to
/// EOF and verifying it, giving up at `deadline` (checked between 64 KiB chunks; each socket
/// call blocks at most `IO_TIMEOUT`). Returns both hashes (sent, received) or the first error.
fn linux_side(
    s: TcpStream,
    seed: u64,
    out: u64,
    inc: u64,
    deadline: StdInstant,
) -> Result<(u128, u128), String> {
    s.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut r = s.try_clone().map_err(|e| e.to_string())?;
    let mut w = s;
    std::thread::scope(|sc| {
        let reader = sc.spawn(move || -> Result<u128, String> {
            let mut sink = Sink::new(seed, 2, inc);
            let mut buf = vec![0u8; CHUNK];
            loop {
                if StdInstant::now() > deadline {
                    return Err(format!(
                        "Linux read: deadline hit after {} B",
                        sink.received
                    ));
                }
                match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => sink
                        .take(&buf[..n])
                        .map_err(|e| format!("Linux received: {e}"))?,
                    Err(e) => {
                        return Err(format!("Linux read after {} B: {e}", sink.received));
                    }
                }
            }
            if sink.received != inc {
                return Err(format!("Linux read EOF after {} of {inc} B", sink.received));
            }
            Ok(sink.hash.finish128().as_u128())
        });
        let mut src = Source::new(seed, 1, out);
        let wrote = (|| -> std::io::Result<()> {
            while !src.done() {
                if StdInstant::now() > deadline {
                    return Err(std::io::Error::other("deadline hit"));
                }
                let n = src.pending().len();
                w.write_all(src.pending())?;
                src.consume(n);
            }
            w.shutdown(Shutdown::Write)
        })();
        let sent_hash = src.hash.finish128().as_u128();
        let got = reader.join().map_err(|_| "reader panicked".to_string())?;
        wrote.map_err(|e| format!("Linux write after {} B: {e}", src.sent))?;
        Ok((sent_hash, got?))
    })
}

// ---- one transfer ----

/// Who opens the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opener {
    Linux,
    Stack,
}

/// Linux sends `up` bytes to the stack and the stack `down` bytes to Linux, at once, over
/// one connection opened by `opener`, with `loss` on both directions of the wire.
fn transfer(opener: Opener, loss: f64, seed: u64, up: u64, down: u64) {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("create the veth pair");
    pair.run_in_peer(&[
        "ip",
        "link",
        "set",
        "dev",
        &pair.peer_if,
        "gso_max_segs",
        "1",
    ])
    .expect("gso_max_segs 1 on the peer");
    let ifname = pair.peer_if.clone();
    let drop_ppm = (loss * 1e6) as u32;
    let inj = pair
        .in_peer(move || {
            LossInjector::attach_egress(
                &ifname,
                LossConfig {
                    drop_ppm,
                    ..Default::default()
                },
            )
        })
        .expect("enter the peer namespace")
        .expect("attach the loss injector");
    let started = StdInstant::now();
    let deadline = started + TRANSFER_LIMIT;
    let (stack, linux) = match opener {
        Opener::Linux => {
            let app = Streamer::new(seed, None, down, up);
            let st = InProc::start(&pair, loss, seed, app);
            let to = SocketAddr::from((STACK_ADDR, PORT));
            let linux = pair
                .in_peer(move || {
                    let s = TcpStream::connect_timeout(&to, Duration::from_secs(20))
                        .map_err(|e| format!("Linux connect: {e}"))?;
                    linux_side(s, seed, up, down, deadline)
                })
                .expect("enter the peer namespace");
            (st.finish(deadline), linux)
        }
        Opener::Stack => {
            let l = pair
                .in_peer(|| TcpListener::bind((PEER_ADDR, PORT)))
                .expect("enter the peer namespace")
                .expect("bind the Linux listener");
            let app = Streamer::new(seed, Some(SocketAddrV4::new(PEER_ADDR, PORT)), down, up);
            let st = InProc::start(&pair, loss, seed, app);
            l.set_nonblocking(true).unwrap();
            let accepted = loop {
                match l.accept() {
                    Ok((s, _)) => break Ok(s),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if started.elapsed() > Duration::from_secs(20) {
                            break Err("Linux accept: no connection in 20 s".to_string());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => break Err(format!("Linux accept: {e}")),
                }
            };
            let linux = accepted.and_then(|s| {
                s.set_nonblocking(false).map_err(|e| e.to_string())?;
                linux_side(s, seed, up, down, deadline)
            });
            (st.finish(deadline), linux)
        }
    };
    let took = started.elapsed();
    let (app, faults) = stack;
    let counters: LossCounters = inj.counters().unwrap_or_default();
    println!(
        "{opener:?} opens, loss {:.0} %, Linux->stack {} MiB, stack->Linux {} MiB: {took:?}; \
         peer egress {counters:?}; stack tx {:?}",
        loss * 100.0,
        up / MIB,
        down / MIB,
        faults.tx
    );
    let (linux_sent, linux_got) = linux.unwrap_or_else(|e| panic!("Linux side: {e}"));
    match &app.result {
        Some(Ok(())) => {}
        Some(Err(e)) => panic!("stack side: {e}"),
        None => panic!(
            "stack side not finished after {took:?}: read {}/{}, sent {}/{}, peer FIN {}",
            app.sink.received, app.sink.total, app.src.sent, app.src.total, app.peer_fin
        ),
    }
    assert_eq!(
        linux_sent,
        app.sink.hash.finish128().as_u128(),
        "Linux -> stack hash"
    );
    assert_eq!(
        app.src.hash.finish128().as_u128(),
        linux_got,
        "stack -> Linux hash"
    );
    // The injectors really dropped at about the rate asked for (only when there was loss).
    if loss > 0.0 {
        assert!(
            counters.dropped > 0,
            "no drop on the peer egress: {counters:?}"
        );
        assert!(
            faults.tx.dropped > 0,
            "no drop on the stack's tx: {faults:?}"
        );
    }
}

#[test]
fn linux_to_stack_1_percent() {
    transfer(Opener::Linux, 0.01, 11, 32 * MIB, 0);
}

#[test]
fn linux_to_stack_5_percent() {
    transfer(Opener::Linux, 0.05, 12, 16 * MIB, 0);
}

#[test]
fn stack_to_linux_1_percent() {
    transfer(Opener::Stack, 0.01, 13, 0, 32 * MIB);
}

#[test]
fn stack_to_linux_5_percent() {
    transfer(Opener::Stack, 0.05, 14, 0, 16 * MIB);
}

#[test]
fn both_ways_at_once_5_percent() {
    transfer(Opener::Linux, 0.05, 15, 16 * MIB, 16 * MIB);
}

#[test]
fn both_ways_at_once_1_percent_stack_opens() {
    transfer(Opener::Stack, 0.01, 16, 16 * MIB, 16 * MIB);
}
