//! Checks that the worker loop adds no per-packet allocation: two interfaces over the
//! in-memory device pair (virtual time), an echo server and a closed-loop client keeping one
//! 64-byte request outstanding on each of `CONNS` established connections. After a warm-up,
//! a counting global allocator counts every allocation (alloc, alloc_zeroed, realloc) while
//! the loop moves `PACKETS` frames; it prints allocations per packet (expected: 0).
//!
//! If an allocation happens in the measured window, the run is repeated with backtrace
//! capture on and the first few distinct allocation sites are printed.
//!
//! Run: `cargo run --release -p xdptcp-bench --bin alloc_bench [-- PACKETS]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use xdptcp::app::echo::Echo;
use xdptcp::app::server::Server;
use xdptcp::app::{App, AppEvent, AppIo};
use xdptcp::iface::{Interface, InterfaceConfig, StaticLink};
use xdptcp::phy::MemoryDevice;
use xdptcp::tcp::endpoint::{ConnId, Endpoint, EndpointSecrets};
use xdptcp::tcp::TcpConfig;
use xdptcp::time::{Duration, Instant};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);
/// Distinct backtraces of allocations while tracing (at most `MAX_SITES`).
static SITES: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
const MAX_SITES: usize = 8;

thread_local! {
    static IN_TRACE: Cell<bool> = const { Cell::new(false) };
}

fn note(size: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    BYTES.fetch_add(size as u64, Relaxed);
    if TRACE.load(Relaxed) && !IN_TRACE.with(|f| f.replace(true)) {
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        if let Ok(mut s) = SITES.lock() {
            if let Some(i) = s.iter().position(|(_, b)| *b == bt) {
                s[i].0 += 1;
            } else if s.len() < MAX_SITES {
                s.push((1, bt));
            }
        }
        IN_TRACE.with(|f| f.set(false));
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC_S: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_C: [u8; 6] = [2, 0, 0, 0, 0, 2];
const PORT: u16 = 7;
const CONNS: usize = 16;
const MSG: usize = 64;

/// Closed-loop echo client: one 64-byte request outstanding per connection.
struct RrClient {
    conns: Vec<ConnId>,
    got: Vec<usize>,
    replies: u64,
    errors: u64,
}

impl RrClient {
    fn slot(&self, c: ConnId) -> Option<usize> {
        self.conns.iter().position(|&x| x == c)
    }
}

impl App for RrClient {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        for _ in 0..CONNS {
            match io.connect(SocketAddrV4::new(SERVER, PORT)) {
                Ok(c) => self.conns.push(c),
                Err(_) => self.errors += 1,
            }
        }
        self.got = vec![0; self.conns.len()];
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        let Some(i) = self.slot(c) else { return };
        let mut buf = [0u8; 256];
        match ev {
            AppEvent::Connected => self.errors += u64::from(io.send(c, &[7u8; MSG]) != Ok(MSG)),
            AppEvent::Readable => {
                while let Ok(n @ 1..) = io.recv(c, &mut buf) {
                    self.got[i] += n;
                }
                while self.got[i] >= MSG {
                    self.got[i] -= MSG;
                    self.replies += 1;
                    if io.send(c, &[7u8; MSG]) != Ok(MSG) {
                        self.errors += 1;
                    }
                }
            }
            AppEvent::Error(_) | AppEvent::Closed | AppEvent::PeerFin => self.errors += 1,
            _ => {}
        }
    }
}

type Iface = Interface<MemoryDevice, StaticLink>;

fn iface(dev: MemoryDevice, addr: Ipv4Addr, mac: [u8; 6], peer: (Ipv4Addr, [u8; 6])) -> Iface {
    let ep = Endpoint::new(
        TcpConfig::default(),
        EndpointSecrets::from_seed(u64::from(mac[5])),
        40000..=40999,
    );
    Interface::new(
        dev,
        StaticLink::new(&[peer]),
        ep,
        InterfaceConfig::new(addr, mac),
    )
}

struct Run {
    /// Allocations from set-up to the end of the warm-up (shows the counter counts).
    warm_allocs: u64,
    packets: u64,
    allocs: u64,
    bytes: u64,
    replies: u64,
    errors: u64,
    iterations: u64,
}

/// Warm-up (`warm` packets), then counts allocations over `packets` packets.
fn run(warm: u64, packets: u64, trace: bool) -> Run {
    let start_allocs = ALLOCS.load(Relaxed);
    let (ds, dc) = MemoryDevice::pair(1514, 1024);
    let mut s = iface(ds, SERVER, MAC_S, (CLIENT, MAC_C));
    let mut c = iface(dc, CLIENT, MAC_C, (SERVER, MAC_S));
    let mut server = Server::new(1024);
    server.add(PORT, Box::<Echo>::default());
    let mut client = RrClient {
        conns: Vec::new(),
        got: Vec::new(),
        replies: 0,
        errors: 0,
    };
    // Virtual time: 20 µs per iteration (delayed-ACK and other timers run as they would).
    let step = Duration::from_micros(20);
    let mut now = Instant::from_secs(1);
    s.start(now, &mut server);
    c.start(now, &mut client);
    // Each frame once: what both sides transmitted (all of it is received: checked below).
    let frames = |s: &Iface, c: &Iface| s.stats().tx_segments + c.stats().tx_segments;
    let mut iterate = |s: &mut Iface, c: &mut Iface, now: &mut Instant| {
        c.poll(*now, &mut client);
        s.poll(*now, &mut server);
        *now += step;
    };
    while frames(&s, &c) < warm {
        iterate(&mut s, &mut c, &mut now);
    }
    let p0 = frames(&s, &c);
    let (a0, b0) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let warm_allocs = a0 - start_allocs;
    TRACE.store(trace, Relaxed);
    let mut iterations = 0;
    while frames(&s, &c) < p0 + packets {
        iterate(&mut s, &mut c, &mut now);
        iterations += 1;
    }
    TRACE.store(false, Relaxed);
    let (a1, b1) = (ALLOCS.load(Relaxed), BYTES.load(Relaxed));
    let rx = s.stats().rx_frames + c.stats().rx_frames;
    assert!(
        rx + 2 * 1024 >= frames(&s, &c),
        "frames lost: {rx} received"
    );
    Run {
        warm_allocs,
        packets: frames(&s, &c) - p0,
        allocs: a1 - a0,
        bytes: b1 - b0,
        replies: client.replies,
        errors: client.errors,
        iterations,
    }
}

fn main() {
    let packets: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let warm = 200_000;
    let r = run(warm, packets, false);
    println!(
        "alloc_bench: {CONNS} connections, echo 64 B closed loop, in-memory device pair, \
         warm-up {warm} packets"
    );
    println!(
        "set-up and warm-up: {} allocations; measured: {} packets (each frame once, both \
         directions), {} loop iterations (both sides), {} replies in all, {} errors",
        r.warm_allocs, r.packets, r.iterations, r.replies, r.errors
    );
    println!(
        "allocations: {} ({} bytes) = {:.6} per packet",
        r.allocs,
        r.bytes,
        r.allocs as f64 / r.packets.max(1) as f64
    );
    if r.errors > 0 || r.replies == 0 {
        eprintln!("alloc_bench: the echo traffic failed; the figure is not meaningful");
        std::process::exit(1);
    }
    if r.allocs > 0 {
        println!("allocation sites (second run with backtraces; count, backtrace):");
        run(warm, packets.min(200_000), true);
        for (n, bt) in SITES.lock().map(|s| s.clone()).unwrap_or_default() {
            println!("--- {n} allocation(s) at:\n{bt}");
        }
    }
}
