//! The stack client side of the scenarios (stack-stack, stack-linux): an in-process xdptcp
//! stack on the client-side veth (its own XDP steering program and ephemeral range, in the
//! client namespace, pinned), driven by [`BenchApp`] through the application API. It measures the
//! same figures the same way as the Linux client ([`crate::client`]): `cps` (both close
//! orders), `rr` (closed loop, and open loop with coordinated-omission correction), `bulk`
//! (both directions) and `conns` (hold N idle connections); for the `app/*` scenarios it
//! also speaks HTTP (`HttpClose`: GET, read to close) and any fixed request with a
//! fixed-length reply (`Exchange`: HTTP GET keep-alive, RESP SET and GET).
//!
//! The loop is the worker's own ([`Worker::iteration`]) with one addition: before each
//! iteration [`BenchApp::tick`] runs (open-loop sends on schedule, new `cps` attempts, the
//! timeout scan), so its sends leave in the same iteration's flush. Latencies are taken with
//! a fresh clock read when the event is handled, as the Linux client does after `read`.
//!
//! Memory bound: one [`Conn`] per open connection (at most the scenario's connection count
//! plus `cps` attempts in flight), plus per `rr` connection a FIFO of at most
//! [`client::MAX_INFLIGHT`] scheduled times in all.

use crate::client::{self, new_hist, Outcome, Progress, MSG, OP_TIMEOUT};
use crate::error::{format_err, Result};
use crate::sys;
use hdrhistogram::Histogram;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use xdptcp::app::{App, AppEvent, AppIo};
use xdptcp::phy::AfXdpConfig;
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::endpoint::ConnId;
use xdptcp::tcp::TcpConfig;
use xdptcp::time::{Duration, Instant};
use xdptcp::worker::WorkerConfig;

/// The stack client's ephemeral ports: steered to it and reserved from the client
/// namespace's kernel while it runs (the Linux client's range is 1024-65000 and is not in use
/// at the same time).
pub const EPHEMERAL: (u16, u16) = (10_000, 65_000);
const IO_BUF: usize = 64 * 1024;
static ZEROS: [u8; IO_BUF] = [0u8; IO_BUF];

/// Where and how the stack client runs.
#[derive(Clone)]
pub struct StackClientCfg {
    pub ns: String,
    pub ifname: String,
    pub addr: Ipv4Addr,
    /// `--ipv6`: the interface's IPv6 address (the stack opens dual-stack and connects to an
    /// IPv6 `server` from it).
    pub addr6: Option<Ipv6Addr>,
    /// Further local addresses (on the interface) to connect from, round-robin with `addr`.
    pub extra_addrs: Vec<Ipv4Addr>,
    /// The server, either family (IPv6 needs `addr6`).
    pub server: SocketAddr,
    pub core: usize,
    pub duration: Duration,
    pub max_ops: u64,
    /// Sleep when idle (as `xdptcp serve --adaptive-idle`: after [`IDLE_SPINS`] empty
    /// iterations, sleep up to [`IDLE_SLEEP`] or until the next scheduled send).
    pub adaptive_idle: bool,
    pub progress: Arc<Progress>,
}

/// Adaptive idle: empty iterations before sleeping, and the longest sleep (the values
/// `xdptcp serve --adaptive-idle` uses).
pub const IDLE_SPINS: u32 = 1000;
pub const IDLE_SLEEP: Duration = Duration::from_micros(50);

/// What the application does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// `concurrency` attempts in flight; connect, 64-byte exchange (or read `bye\n` when the
    /// server closes first), close.
    Cps {
        concurrency: usize,
        server_closes: bool,
    },
    /// `conns` persistent connections; `interval` None: closed loop; Some: open loop with one
    /// request per interval over all connections (round-robin).
    Rr {
        conns: usize,
        interval: Option<Duration>,
    },
    /// `flows` connections writing (upload) to `discard` or reading from `source`.
    Bulk { flows: usize, upload: bool },
    /// Open `n` connections and keep them idle.
    Hold { n: usize },
    /// As `Cps` with the server closing first, speaking HTTP: on connect send
    /// [`HTTP_GET_CLOSE`], read to the server's FIN; good when exactly `response_len` bytes
    /// came (a static page's response has one length: the caller probes it first).
    HttpClose {
        concurrency: usize,
        response_len: usize,
    },
    /// As closed-loop `Rr` speaking an application's protocol: `conns` persistent
    /// connections, one `request` outstanding on each (e.g. [`HTTP_GET_KEEPALIVE`], or a
    /// RESP command); a response is `response_len` bytes (the caller checks one first).
    Exchange {
        conns: usize,
        request: &'static [u8],
        response_len: usize,
    },
}

/// The `HttpClose` request: `GET /`, the server closes after the response.
pub const HTTP_GET_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
/// An `Exchange` request: `GET /` on a persistent connection.
pub const HTTP_GET_KEEPALIVE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";

/// What a connection of a cps-like mode does (`Cps`, `HttpClose`).
#[derive(Clone, Copy, Debug)]
struct CpsShape {
    concurrency: usize,
    /// Sent on connect (empty: nothing).
    send: &'static [u8],
    /// Read to the server's FIN (it closes first); else done at `expect` bytes.
    until_fin: bool,
    /// The bytes a good exchange brings.
    expect: usize,
    /// Record request → response-complete latency in `lat`.
    latency: bool,
}

#[derive(Debug)]
struct Conn {
    t0: Instant,
    /// cps-like: when the request left (the connection came up).
    t_req: Instant,
    connected: bool,
    got: usize,
    /// rr: scheduled send time of each request not yet answered (FIFO).
    inflight: VecDeque<Instant>,
    unsent: usize,
}

impl Conn {
    fn new(t0: Instant) -> Self {
        Conn {
            t0,
            t_req: t0,
            connected: false,
            got: 0,
            inflight: VecDeque::new(),
            unsent: 0,
        }
    }
}

/// The benchmark client application. See the module docs.
pub struct BenchApp {
    mode: Mode,
    server: SocketAddr,
    max_ops: u64,
    /// Fx, not SipHash: keys are our own handles, and this map is hit several times per
    /// cps connection (the client is the busier end in client-close).
    conns: FxHashMap<ConnId, Conn>,
    /// rr: the connections in opening order (the open loop's round-robin).
    order: Vec<ConnId>,
    /// When measuring started: at start for cps, once all connections are up otherwise.
    pub measure_start: Option<Instant>,
    pub launched: u64,
    pub ok: u64,
    pub failed: u64,
    pub bytes: u64,
    pub connected: usize,
    /// cps: handshake and whole-connection latency; rr: request latency (ns).
    pub hs: Histogram<u64>,
    pub total: Histogram<u64>,
    pub lat: Histogram<u64>,
    inflight: usize,
    next_send: Instant,
    rr_idx: usize,
    last_scan: Instant,
    scratch: Vec<u8>,
    /// Extra local addresses to connect from, round-robin with the interface's (empty: the
    /// interface's only; IPv4 servers only).
    locals: Vec<Ipv4Addr>,
    /// rr: the request repeated to about [`IO_BUF`] bytes (zeros, or the HTTP GET), one
    /// request `req_len` bytes; a response is `resp_len` bytes.
    pattern: Vec<u8>,
    req_len: usize,
    resp_len: usize,
}

/// `Hold`: handshakes in flight at most while opening (a new one starts as one completes),
/// so a million connections do not queue a million SYNs at once.
pub const HOLD_WINDOW: usize = 4096;

fn now() -> Instant {
    xdptcp::clock::now()
}

fn ns_since(t0: Instant) -> u64 {
    now().saturating_since(t0).as_nanos() as u64
}

impl BenchApp {
    pub fn new(mode: Mode, server: impl Into<SocketAddr>, max_ops: u64) -> Self {
        let server = server.into();
        let (req, resp_len): (&[u8], usize) = match mode {
            Mode::Exchange {
                request,
                response_len,
                ..
            } if !request.is_empty() => (request, response_len),
            _ => (&ZEROS[..MSG], MSG),
        };
        BenchApp {
            mode,
            server,
            max_ops,
            conns: FxHashMap::default(),
            order: Vec::new(),
            measure_start: None,
            launched: 0,
            ok: 0,
            failed: 0,
            bytes: 0,
            connected: 0,
            hs: new_hist(),
            total: new_hist(),
            lat: new_hist(),
            inflight: 0,
            next_send: Instant::ZERO,
            rr_idx: 0,
            last_scan: Instant::ZERO,
            scratch: vec![0; IO_BUF],
            locals: Vec::new(),
            pattern: req.repeat((IO_BUF / req.len()).max(1)),
            req_len: req.len(),
            resp_len: resp_len.max(1),
        }
    }

    /// The shape of a cps-like mode; None for the others.
    fn cps_shape(&self) -> Option<CpsShape> {
        match self.mode {
            Mode::Cps {
                concurrency,
                server_closes,
            } => Some(CpsShape {
                concurrency,
                send: if server_closes { &[] } else { &ZEROS[..MSG] },
                until_fin: server_closes,
                expect: if server_closes { 4 } else { MSG },
                latency: false,
            }),
            Mode::HttpClose {
                concurrency,
                response_len,
            } => Some(CpsShape {
                concurrency,
                send: HTTP_GET_CLOSE,
                until_fin: true,
                expect: response_len,
                latency: true,
            }),
            _ => None,
        }
    }

    /// Connect from these local addresses, round-robin (they must be on the interface).
    pub fn with_locals(mut self, locals: Vec<Ipv4Addr>) -> Self {
        self.locals = locals;
        self
    }

    fn wanted(&self) -> usize {
        match self.mode {
            Mode::Cps { concurrency, .. } | Mode::HttpClose { concurrency, .. } => concurrency,
            Mode::Rr { conns, .. } | Mode::Exchange { conns, .. } => conns,
            Mode::Bulk { flows, .. } => flows,
            Mode::Hold { n } => n,
        }
    }

    fn launch(&mut self, io: &mut AppIo<'_>) {
        if self.launched >= self.max_ops {
            return;
        }
        self.launched += 1;
        let r = match self.server {
            SocketAddr::V4(s) if self.locals.is_empty() => io.connect(s),
            SocketAddr::V4(s) => {
                let l = self.locals[self.launched as usize % self.locals.len()];
                io.connect_from(l, s)
            }
            // From the interface's (first) IPv6 address.
            SocketAddr::V6(_) => io.connect_any(self.server),
        };
        match r {
            Ok(c) => {
                self.conns.insert(c, Conn::new(now()));
                if self.cps_shape().is_none() {
                    self.order.push(c); // rr's round-robin (cps would grow it per connection)
                                        // As the Linux client's persistent connections (`client::connect_n`):
                                        // without it rr/open's back-to-back requests wait behind Nagle.
                    let _ = io.set_nodelay(c, true);
                }
            }
            Err(_) => self.failed += 1,
        }
    }

    /// Before each loop iteration: launch `cps` attempts, the open loop's due requests, and
    /// every 100 ms the timeout scan.
    pub fn tick(&mut self, io: &mut AppIo<'_>) {
        let t = io.now();
        if let Some(CpsShape { concurrency, .. }) = self.cps_shape() {
            // One attempt until the first handshake completes: the server's MAC is being
            // resolved meanwhile and the neighbour cache holds only `unres_qlen` (32) frames;
            // SYNs beyond would wait for their 1 s retransmission.
            let cap = if self.hs.is_empty() { 1 } else { concurrency };
            while self.conns.len() < cap && self.launched < self.max_ops {
                let before = self.failed;
                self.launch(io);
                if self.failed != before {
                    break; // no port now: retry next iteration
                }
            }
            if t.saturating_since(self.last_scan) > Duration::from_millis(100) {
                self.last_scan = t;
                let old: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| t.saturating_since(c.t0) > OP_TIMEOUT)
                    .map(|(&id, _)| id)
                    .collect();
                for id in old {
                    self.conns.remove(&id);
                    let _ = io.abort(id);
                    self.failed += 1;
                }
            }
        }
        if let (
            Mode::Rr {
                interval: Some(iv), ..
            },
            Some(_),
        ) = (self.mode, self.measure_start)
        {
            while self.next_send <= t && self.launched < self.max_ops && !self.order.is_empty() {
                if self.inflight >= client::MAX_INFLIGHT {
                    self.failed += 1; // overload: dropped, not queued without bound
                } else {
                    let id = self.order[self.rr_idx % self.order.len()];
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.inflight.push_back(self.next_send);
                        c.unsent += self.req_len;
                        self.inflight += 1;
                        self.flush(io, id);
                    } else {
                        self.failed += 1; // that connection died
                    }
                }
                self.rr_idx += 1;
                self.launched += 1;
                self.next_send += iv;
            }
        }
    }

    /// rr: writes what is due on `id` (the unsent tail of its requests, all the same: read
    /// from `pattern` at the offset inside the current request); a send error kills the
    /// connection.
    fn flush(&mut self, io: &mut AppIo<'_>, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let unit = self.req_len;
        while c.unsent > 0 {
            let off = (unit - c.unsent % unit) % unit;
            let end = (off + c.unsent).min(self.pattern.len());
            match io.send(id, &self.pattern[off..end]) {
                Ok(0) => return, // Writable follows
                Ok(n) => c.unsent -= n,
                Err(_) => {
                    self.kill(io, id);
                    return;
                }
            }
        }
    }

    /// A persistent connection failed: it and its outstanding requests count as failed.
    fn kill(&mut self, io: &mut AppIo<'_>, id: ConnId) {
        if let Some(c) = self.conns.remove(&id) {
            self.failed += 1 + c.inflight.len() as u64;
            self.inflight -= c.inflight.len();
            let _ = io.abort(id);
        }
    }

    /// All connections of rr/bulk/hold are up: measuring starts.
    fn all_connected(&mut self, io: &mut AppIo<'_>) {
        let t = now();
        self.measure_start = Some(t);
        match self.mode {
            Mode::Rr { interval: None, .. } | Mode::Exchange { .. } => {
                let ids = self.order.clone();
                for id in ids {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.inflight.push_back(t);
                        c.unsent += self.req_len;
                        self.inflight += 1;
                        self.launched += 1;
                    }
                    self.flush(io, id);
                }
            }
            Mode::Rr { .. } => self.next_send = t,
            Mode::Bulk { upload: true, .. } => {
                for id in self.order.clone() {
                    self.fill(io, id);
                }
            }
            _ => {}
        }
    }

    /// bulk upload: everything the send buffer takes.
    fn fill(&mut self, io: &mut AppIo<'_>, id: ConnId) {
        if self.measure_start.is_none() {
            return;
        }
        loop {
            match io.send(id, &ZEROS) {
                Ok(0) => return,
                Ok(n) => self.bytes += n as u64,
                Err(_) => {
                    self.bulk_dead(io, id);
                    return;
                }
            }
        }
    }

    fn bulk_dead(&mut self, io: &mut AppIo<'_>, id: ConnId) {
        if self.conns.remove(&id).is_some() {
            self.failed += 1;
            let _ = io.abort(id);
        }
    }

    /// Reads everything buffered on `id`; returns the byte count.
    fn read_all(&mut self, io: &mut AppIo<'_>, id: ConnId) -> usize {
        let mut n = 0;
        while let Ok(k @ 1..) = io.recv(id, &mut self.scratch) {
            n += k;
        }
        n
    }

    fn cps_event(&mut self, io: &mut AppIo<'_>, id: ConnId, ev: AppEvent, shape: CpsShape) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let done = match ev {
            AppEvent::Connected => {
                c.connected = true;
                c.t_req = now();
                self.hs
                    .saturating_record(c.t_req.saturating_since(c.t0).as_nanos() as u64);
                let n = shape.send.len();
                if n > 0 && !matches!(io.send(id, shape.send), Ok(k) if k == n) {
                    Some(false)
                } else {
                    None
                }
            }
            AppEvent::Readable | AppEvent::PeerFin => {
                let (t0, t_req) = (c.t0, c.t_req);
                let n = self.read_all(io, id);
                let c = self.conns.get_mut(&id).expect("present above");
                c.got += n;
                let fin = ev == AppEvent::PeerFin;
                match (shape.until_fin, fin) {
                    (false, _) if c.got >= shape.expect => Some(c.got == shape.expect),
                    (false, true) => Some(false),
                    (true, true) => Some(c.got == shape.expect),
                    _ => None,
                }
                .inspect(|&good| {
                    if good {
                        self.total.saturating_record(ns_since(t0));
                        if shape.latency {
                            self.lat.saturating_record(ns_since(t_req));
                        }
                    }
                })
            }
            AppEvent::Error(_) | AppEvent::Closed => Some(false),
            _ => None,
        };
        match done {
            None => {}
            Some(good) => {
                self.conns.remove(&id);
                if good {
                    self.ok += 1;
                    let _ = io.close(id);
                } else {
                    self.failed += 1;
                    let _ = io.abort(id);
                }
                if self.launched < self.max_ops {
                    self.launch(io); // keep `concurrency` in flight without waiting a tick
                }
            }
        }
    }

    fn rr_event(&mut self, io: &mut AppIo<'_>, id: ConnId, ev: AppEvent, closed_loop: bool) {
        match ev {
            AppEvent::Readable => {
                let n = self.read_all(io, id);
                let t = now();
                let Some(c) = self.conns.get_mut(&id) else {
                    return;
                };
                c.got += n;
                let mut bad = false;
                while c.got >= self.resp_len {
                    c.got -= self.resp_len;
                    let Some(t0) = c.inflight.pop_front() else {
                        bad = true; // more bytes than requested: not an echo
                        break;
                    };
                    self.lat
                        .saturating_record(t.saturating_since(t0).as_nanos() as u64);
                    self.ok += 1;
                    self.inflight -= 1;
                    if closed_loop && self.launched < self.max_ops {
                        c.inflight.push_back(t);
                        c.unsent += self.req_len;
                        self.inflight += 1;
                        self.launched += 1;
                    }
                }
                if bad {
                    self.kill(io, id);
                } else {
                    self.flush(io, id);
                }
            }
            AppEvent::Writable => self.flush(io, id),
            AppEvent::PeerFin | AppEvent::Error(_) | AppEvent::Closed => self.kill(io, id),
            _ => {}
        }
    }

    fn bulk_event(&mut self, io: &mut AppIo<'_>, id: ConnId, ev: AppEvent, upload: bool) {
        match ev {
            AppEvent::Writable if upload => self.fill(io, id),
            AppEvent::Readable => {
                let n = self.read_all(io, id);
                if !upload && self.measure_start.is_some() {
                    self.bytes += n as u64;
                }
            }
            AppEvent::PeerFin | AppEvent::Error(_) | AppEvent::Closed => self.bulk_dead(io, id),
            _ => {}
        }
    }

    /// Closes every connection this app still holds (end of a run).
    pub fn close_all(&mut self, io: &mut AppIo<'_>) {
        for (id, _) in self.conns.drain() {
            let _ = io.close(id);
        }
    }

    /// rr open loop: when the next request is due.
    pub fn next_send(&self) -> Option<Instant> {
        match (self.mode, self.measure_start) {
            (
                Mode::Rr {
                    interval: Some(_), ..
                },
                Some(_),
            ) => Some(self.next_send),
            _ => None,
        }
    }

    /// Connections currently held.
    pub fn held(&self) -> usize {
        self.conns.len()
    }
}

impl App for BenchApp {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        if self.cps_shape().is_some() {
            self.measure_start = Some(now());
            return; // tick launches
        }
        // One connection first; the rest once it is up (see `tick`: neighbour resolution).
        self.launch(io);
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, id: ConnId, ev: AppEvent) {
        if let Some(shape) = self.cps_shape() {
            self.cps_event(io, id, ev, shape);
        } else if ev == AppEvent::Connected {
            if let Some(c) = self.conns.get_mut(&id) {
                c.connected = true;
                self.connected += 1;
                if self.connected == 1 {
                    // The rest, now that the server's MAC is known; `conns` keeps at most
                    // HOLD_WINDOW handshakes in flight (one more per connection below).
                    let first = match self.mode {
                        Mode::Hold { n } => n.min(HOLD_WINDOW),
                        _ => self.wanted(),
                    };
                    while (self.launched as usize) < first && self.launched < self.max_ops {
                        self.launch(io);
                    }
                }
                if self.connected == self.wanted() {
                    self.all_connected(io);
                }
                if let Mode::Hold { n } = self.mode {
                    if (self.launched as usize) < n {
                        self.launch(io);
                    }
                }
            }
        } else {
            match self.mode {
                Mode::Rr { interval, .. } => self.rr_event(io, id, ev, interval.is_none()),
                Mode::Exchange { .. } => self.rr_event(io, id, ev, true),
                Mode::Bulk { upload, .. } => self.bulk_event(io, id, ev, upload),
                _ => match ev {
                    AppEvent::Readable => {
                        self.read_all(io, id);
                    }
                    AppEvent::Error(_) | AppEvent::Closed | AppEvent::PeerFin => {
                        self.bulk_dead(io, id)
                    }
                    _ => {}
                },
            }
        }
    }
}

/// Opens the stack on the client-side interface, in the calling thread's namespace (the
/// caller has entered the client namespace).
pub fn open_stack(cfg: &StackClientCfg) -> Result<Stack> {
    let mut tcp = TcpConfig::default();
    // Like the Linux client's namespace (tcp_tw_reuse=1, the same tcp_tw_reuse_delay):
    // client-closes-first cps must not run out of ports to its own TIME-WAIT entries.
    tcp.set("tcp_tw_reuse", "1")
        .map_err(|e| format_err!("tcp_tw_reuse: {e}"))?;
    let delay = crate::netns::TW_REUSE_DELAY_MS.to_string();
    tcp.set("tcp_tw_reuse_delay", &delay)
        .map_err(|e| format_err!("tcp_tw_reuse_delay: {e}"))?;
    for kv in crate::kinds::stack_sets() {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| format_err!("XDPTCP_BENCH_STACK_SET: {kv:?} is not KEY=VALUE"))?;
        tcp.set(k, v)
            .map_err(|e| format_err!("XDPTCP_BENCH_STACK_SET {kv}: {e}"))?;
    }
    let o = StackOptions {
        ifname: cfg.ifname.clone(),
        addr: Some(cfg.addr),
        extra_addrs: cfg.extra_addrs.clone(),
        ports: Vec::new(),
        ephemeral: EPHEMERAL,
        zero_copy: false,
        reserve_ports: true,
        tcp,
        afxdp: AfXdpConfig::default(),
        worker: WorkerConfig {
            core: Some(cfg.core),
            ..WorkerConfig::default()
        },
        workers: 1,
        cores: Vec::new(),
        rss_key: None,
    };
    let addrs6: Vec<Ipv6Addr> = cfg.addr6.into_iter().collect();
    Stack::open_dual(&o, &addrs6).map_err(|e| format_err!("stack client on {}: {e}", cfg.ifname))
}

/// Runs the loop until `until(app, now)` says stop, the signal flag, or a hard bound of
/// `limit` after the start. Publishes progress every 100 ms. The caller has called
/// [`start`] once before.
pub fn drive(
    stack: &mut Stack,
    app: &mut BenchApp,
    adaptive: bool,
    limit: Duration,
    progress: &Progress,
    mut until: impl FnMut(&BenchApp, Instant) -> bool,
) {
    let w = &mut stack.workers[0];
    let mut last = now();
    let mut empty = 0u32;
    let hard_end = last + limit;
    let mut next_progress = last;
    loop {
        let t = now();
        if t >= hard_end || sys::stopped() || until(app, t) {
            break;
        }
        app.tick(&mut w.iface.app_io(t));
        if w.iteration(t, &mut last, app) {
            empty = 0;
        } else if adaptive {
            empty = empty.saturating_add(1);
            if empty > IDLE_SPINS {
                let mut d = IDLE_SLEEP;
                if let Some(s) = app.next_send() {
                    d = d.min(s.saturating_since(t));
                }
                std::thread::sleep(d);
            }
        } else {
            // As the server's busy-poll (xdptcp::worker::BUSY_POLL_YIELD_EVERY).
            empty = empty.saturating_add(1);
            if empty.is_multiple_of(xdptcp::worker::BUSY_POLL_YIELD_EVERY) {
                std::thread::yield_now();
            }
        }
        if t >= next_progress {
            next_progress = t + Duration::from_millis(100);
            progress.ok.store(app.ok, Relaxed);
            progress.failed.store(app.failed, Relaxed);
            progress.bytes.store(app.bytes, Relaxed);
        }
    }
}

/// Pins the thread to the worker's core and calls the app's `on_start`.
pub fn start(stack: &mut Stack, app: &mut BenchApp) {
    stack.workers[0].pin();
    stack.workers[0].iface.start(now(), app);
}

/// Closes what the app holds and runs the loop for up to `linger` so FINs leave.
pub fn finish(stack: &mut Stack, app: &mut BenchApp, linger: Duration) {
    let w = &mut stack.workers[0];
    let t = now();
    app.close_all(&mut w.iface.app_io(t));
    let end = t + linger;
    let mut last = t;
    loop {
        let t = now();
        if t >= end || w.iface.endpoint().connection_count() == 0 {
            break;
        }
        w.iteration(t, &mut last, app);
    }
}

/// Runs one scenario's client in the calling thread: enters the namespace, opens the stack,
/// drives `mode` for the duration (measured from when all connections are up, as the Linux
/// client does), and returns what it measured.
pub fn run(cfg: &StackClientCfg, mode: Mode) -> Result<Outcome> {
    sys::enter_netns(&cfg.ns)?;
    let mut stack = open_stack(cfg)?;
    let mut app = BenchApp::new(mode, cfg.server, cfg.max_ops);
    let dur = cfg.duration;
    let connect_limit = OP_TIMEOUT;
    start(&mut stack, &mut app);
    let t_start = now();
    drive(
        &mut stack,
        &mut app,
        cfg.adaptive_idle,
        cfg.duration + OP_TIMEOUT,
        &cfg.progress,
        |a, t| match a.measure_start {
            Some(s) => t >= s + dur,
            None => t >= t_start + connect_limit,
        },
    );
    let Some(s) = app.measure_start else {
        crate::error::bail!(
            "connected only {} of {} within {:?}",
            app.connected,
            app.wanted(),
            OP_TIMEOUT
        );
    };
    let elapsed = now().saturating_since(s);
    finish(&mut stack, &mut app, Duration::from_millis(200));
    let log = xdptcp::control::report::summary_lines(&stack.workers[0].publish(now()));
    cfg.progress.ok.store(app.ok, Relaxed);
    cfg.progress.failed.store(app.failed, Relaxed);
    let hists = match mode {
        Mode::Cps { .. } => vec![
            (
                "handshake".into(),
                std::mem::replace(&mut app.hs, new_hist()),
            ),
            (
                "connection".into(),
                std::mem::replace(&mut app.total, new_hist()),
            ),
        ],
        Mode::Rr { .. } | Mode::Exchange { .. } => vec![(
            "latency".into(),
            std::mem::replace(&mut app.lat, new_hist()),
        )],
        // Request → response complete, as wrk measures; and the handshake.
        Mode::HttpClose { .. } => vec![
            (
                "latency".into(),
                std::mem::replace(&mut app.lat, new_hist()),
            ),
            (
                "handshake".into(),
                std::mem::replace(&mut app.hs, new_hist()),
            ),
        ],
        _ => Vec::new(),
    };
    Ok(Outcome {
        ok: app.ok,
        failed: app.failed,
        bytes: app.bytes,
        elapsed: elapsed.min(cfg.duration),
        hists,
        counters: client_counters(&stack),
        log,
    })
}

/// The stack client's counters for the JSON (whole run, set-up and linger included).
fn client_counters(stack: &Stack) -> serde_json::Value {
    let w = &stack.workers[0];
    let d = w.iface.device_stats();
    let l = w.loop_stats();
    serde_json::json!({
        "dev_rx_frames": d.rx_frames, "dev_tx_frames": d.tx_frames,
        "dev_rx_dropped": d.rx_dropped, "dev_tx_full": d.tx_full,
        "loop_iterations": l.iterations, "loop_busy_ns": l.busy_ns, "loop_idle_ns": l.idle_ns,
        "endpoint": format!("{:?}", w.iface.endpoint().stats()),
        "iface": format!("{:?}", w.iface.stats()),
        "neigh": format!("{:?}", w.iface.neigh().stats()),
    })
}

/// What [`hold`] measured of the client stack.
#[derive(Debug, Default, Clone, Copy)]
pub struct HoldReport {
    /// This process's RSS growth while the connections were opened, per connection (B).
    pub rss_per_conn: Option<f64>,
    /// TIME-WAIT entries of the client stack after it closed them.
    pub time_wait: usize,
    /// Bytes of the client stack's TIME-WAIT table then (`Endpoint::time_wait_bytes`).
    pub time_wait_bytes: usize,
    /// Seconds from the first SYN to the last connection established.
    pub open_secs: f64,
}

/// `conns` with the stack client: opens `n` idle connections, reports how many are held on
/// `held_tx`, keeps the loop running until `release` (or `limit`), then closes them all
/// (client first: TIME-WAIT in the client stack) and runs until every connection is gone or
/// 5 s passed.
pub fn hold(
    cfg: &StackClientCfg,
    n: usize,
    held_tx: std::sync::mpsc::Sender<Result<usize>>,
    release: std::sync::mpsc::Receiver<()>,
    limit: Duration,
    open_time: Duration,
) -> Result<HoldReport> {
    let r = (|| {
        sys::enter_netns(&cfg.ns)?;
        open_stack(cfg)
    })();
    let mut stack = match r {
        Ok(s) => s,
        Err(e) => {
            let _ = held_tx.send(Err(format_err!("{e:#}")));
            return Err(e);
        }
    };
    let rss0 = crate::memory::vm_rss("self");
    let mut locals = vec![cfg.addr];
    locals.extend(&cfg.extra_addrs);
    let mut app = BenchApp::new(Mode::Hold { n }, cfg.server, n as u64).with_locals(locals);
    let t_open = now();
    start(&mut stack, &mut app);
    let connect_limit = now() + open_time;
    drive(
        &mut stack,
        &mut app,
        cfg.adaptive_idle,
        open_time,
        &cfg.progress,
        |a, t| a.measure_start.is_some() || t >= connect_limit,
    );
    let rss1 = crate::memory::vm_rss("self");
    let open_secs = now().saturating_since(t_open).as_secs_f64();
    if app.measure_start.is_none() {
        let e = format_err!(
            "connected only {} of {n} within {open_time:?}",
            app.connected
        );
        let _ = held_tx.send(Err(format_err!("{e:#}")));
        return Err(e);
    }
    let held = app.held();
    let _ = held_tx.send(Ok(held));
    // Keep serving (ACKs, keepalives) until released; the receiver side polls the channel
    // every 10 ms of loop time.
    let end = now() + limit;
    let mut next_check = now();
    drive(
        &mut stack,
        &mut app,
        cfg.adaptive_idle,
        limit,
        &cfg.progress,
        |_, t| {
            if t >= end {
                return true;
            }
            if t >= next_check {
                next_check = t + Duration::from_millis(10);
                return release.try_recv().is_ok();
            }
            false
        },
    );
    finish(&mut stack, &mut app, Duration::from_secs(5));
    let rss_per_conn = match (rss0, rss1) {
        (Some(a), Some(b)) => Some((b as f64 - a as f64) / held.max(1) as f64),
        _ => None,
    };
    Ok(HoldReport {
        rss_per_conn,
        time_wait: stack.workers[0].iface.endpoint().time_wait_count(),
        time_wait_bytes: stack.workers[0].iface.endpoint().time_wait_bytes(),
        open_secs,
    })
}

#[cfg(test)]
mod tests {
    //! `BenchApp` against the stack's own servers over the in-memory device pair (no root):
    //! every mode completes exchanges without failures and records one latency per success.
    use super::*;
    use xdptcp::app::server::{AppKind, Server};
    use xdptcp::iface::{Interface, InterfaceConfig, StaticLink};
    use xdptcp::phy::MemoryDevice;
    use xdptcp::tcp::endpoint::{Endpoint, EndpointSecrets};

    const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MS: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    type Iface = Interface<MemoryDevice, StaticLink>;

    fn iface(dev: MemoryDevice, addr: Ipv4Addr, mac: [u8; 6], peer: (Ipv4Addr, [u8; 6])) -> Iface {
        let mut tcp = TcpConfig::default();
        tcp.set("tcp_tw_reuse", "1").unwrap();
        let ep = Endpoint::new(
            tcp,
            EndpointSecrets::from_seed(u64::from(mac[5])),
            40000..=60000,
        );
        Interface::new(
            dev,
            StaticLink::new(&[peer]),
            ep,
            InterfaceConfig::new(addr, mac),
        )
    }

    /// Runs `mode` against `app` on port 7 for `iters` iterations of both sides (real clock,
    /// as the benchmark loop reads it).
    fn run(mode: Mode, app: AppKind, iters: usize) -> BenchApp {
        let (ds, dc) = MemoryDevice::pair(1514, 1024);
        let mut s = iface(ds, S, MS, (C, MC));
        let mut c = iface(dc, C, MC, (S, MS));
        let mut server = Server::new(1024);
        server.add(7, app.build());
        let mut client = BenchApp::new(mode, std::net::SocketAddrV4::new(S, 7), u64::MAX);
        s.start(now(), &mut server);
        c.start(now(), &mut client);
        for _ in 0..iters {
            let t = now();
            client.tick(&mut c.app_io(t));
            c.poll(t, &mut client);
            s.poll(t, &mut server);
        }
        client
    }

    #[test]
    fn cps_both_close_orders() {
        for (server_closes, app) in [(false, AppKind::Echo), (true, AppKind::CloseFirst)] {
            let mode = Mode::Cps {
                concurrency: 8,
                server_closes,
            };
            let a = run(mode, app, 3000);
            assert_eq!(a.failed, 0, "server_closes {server_closes}");
            assert!(a.ok >= 100, "{} connections", a.ok);
            assert_eq!(a.total.len(), a.ok);
            // One handshake per success, plus those in flight at the end (at most 8).
            assert!(a.hs.len() >= a.ok && a.hs.len() <= a.ok + 8);
        }
    }

    #[test]
    fn rr_closed_and_open_loop() {
        let a = run(
            Mode::Rr {
                conns: 4,
                interval: None,
            },
            AppKind::Echo,
            3000,
        );
        assert_eq!(a.failed, 0);
        assert!(a.ok >= 1000, "{}", a.ok);
        assert_eq!(a.lat.len(), a.ok);
        // Closed loop: every connection has exactly one request outstanding.
        assert_eq!(a.inflight, 4);
        let a = run(
            Mode::Rr {
                conns: 4,
                interval: Some(Duration::from_micros(20)),
            },
            AppKind::Echo,
            5000,
        );
        assert_eq!(a.failed, 0);
        assert!(a.ok > 0);
        assert_eq!(a.lat.len(), a.ok);
        // Every scheduled request is either answered or still outstanding (`launched` also
        // counts the 4 connects).
        assert_eq!(a.launched, 4 + a.ok + a.inflight as u64);
    }

    /// The length of the stack's `http` app's response (its `Date` value, an IMF-fixdate,
    /// is always 29 bytes).
    fn http_response_len(close: bool) -> usize {
        let conn = if close { "close" } else { "keep-alive" };
        let body = xdptcp::app::http::BODY;
        let date = "Thu, 01 Jan 1970 00:00:00 GMT";
        format!(
            "HTTP/1.1 200 OK\r\nServer: xdptcp\r\nDate: {date}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: {conn}\r\n\r\n",
            body.len()
        )
        .len()
            + body.len()
    }

    #[test]
    fn http_close_and_keepalive() {
        let mode = Mode::HttpClose {
            concurrency: 8,
            response_len: http_response_len(true),
        };
        let a = run(mode, AppKind::Http, 3000);
        assert_eq!(a.failed, 0);
        assert!(a.ok >= 100, "{} connections", a.ok);
        // One request latency per good exchange.
        assert_eq!((a.total.len(), a.lat.len()), (a.ok, a.ok));
        // A wrong length is a failed exchange, never a success.
        let mode = Mode::HttpClose {
            concurrency: 2,
            response_len: http_response_len(true) + 1,
        };
        let a = run(mode, AppKind::Http, 500);
        assert_eq!(a.ok, 0);
        assert!(a.failed > 0);
        let mode = Mode::Exchange {
            conns: 4,
            request: HTTP_GET_KEEPALIVE,
            response_len: http_response_len(false),
        };
        let a = run(mode, AppKind::Http, 3000);
        assert_eq!(a.failed, 0);
        assert!(a.ok >= 1000, "{}", a.ok);
        assert_eq!(a.lat.len(), a.ok);
        assert_eq!(a.inflight, 4);
    }

    #[test]
    fn bulk_both_directions_and_hold() {
        for (upload, app) in [(true, AppKind::Discard), (false, AppKind::Source)] {
            let a = run(Mode::Bulk { flows: 2, upload }, app, 2000);
            assert_eq!(a.failed, 0, "upload {upload}");
            assert!(a.bytes > 1 << 20, "upload {upload}: {} bytes", a.bytes);
        }
        // More than `unres_qlen` (32) connections: the rest are launched once the first is up.
        let a = run(Mode::Hold { n: 100 }, AppKind::Echo, 2000);
        assert_eq!((a.connected, a.held(), a.failed), (100, 100, 0));
        assert!(a.measure_start.is_some());
    }
}
