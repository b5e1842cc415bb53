//! The Linux client side of the scenarios: one mio (epoll) event loop per thread, setns'd into
//! the client namespace and pinned. Every loop ends at its deadline, at its operation count
//! bound, or on SIGINT/SIGTERM, whichever comes first.

use crate::error::{Context, Result};
use crate::sys;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Request and reply size of `cps` and `rr`.
pub const MSG: usize = 64;
/// A connection attempt or an exchange older than this counts as failed.
pub const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// Open-loop `rr`: requests scheduled but not answered, at most (memory bound); beyond it a
/// scheduled request is dropped and counted as failed.
pub const MAX_INFLIGHT: usize = 1 << 16;
const IO_BUF: usize = 64 * 1024;
static ZEROS: [u8; IO_BUF] = [0u8; IO_BUF];

/// Live counters for the progress line.
#[derive(Default)]
pub struct Progress {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub bytes: AtomicU64,
}

/// The \r-updated progress line on stderr; `done` ends it with a newline.
pub fn progress_line(label: &str, elapsed: Duration, total: Duration, p: &Progress, done: bool) {
    let mb = p.bytes.load(Relaxed) as f64 / 1e6;
    let mut e = std::io::stderr().lock();
    let _ = write!(
        e,
        "\r{label:<28} {:5.1}/{:.0} s  ok {:>9}  failed {:>5}  {mb:>9.0} MB {}",
        elapsed.as_secs_f64(),
        total.as_secs_f64(),
        p.ok.load(Relaxed),
        p.failed.load(Relaxed),
        if done { "\n" } else { "" }
    );
    let _ = e.flush();
}

#[derive(Clone)]
pub struct ClientCfg {
    pub ns: String,
    /// The server, either family (`--ipv6`: 2001:2::1).
    pub server: SocketAddr,
    pub core: usize,
    pub duration: Duration,
    /// Upper bound on operations (connections, requests) this thread starts.
    pub max_ops: u64,
    pub progress: Arc<Progress>,
}

/// What one client thread measured. Histograms are in nanoseconds.
#[derive(Default)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub hists: Vec<(String, Histogram<u64>)>,
    /// The client's own counters for the JSON (the stack client's endpoint, interface and
    /// device counters; null for the Linux client).
    pub counters: serde_json::Value,
    /// The stack client's stop summary (`xdptcp::control::report::summary_lines`); empty for Linux.
    pub log: Vec<String>,
}

pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static bounds are valid")
}

fn elapsed_ns(since: Instant) -> u64 {
    since.elapsed().as_nanos().min(u64::MAX as u128) as u64
}

fn enter(cfg: &ClientCfg) -> Result<()> {
    sys::enter_netns(&cfg.ns)?;
    sys::pin(cfg.core);
    Ok(())
}

struct CpsConn {
    s: TcpStream,
    t0: Instant,
    connected: bool,
    got: usize,
}

enum Step {
    Wait,
    Done,
    Fail,
}

/// `cps`: connect, exchange, close, `concurrency` at a time. Client closes first: send 64
/// bytes, read the 64-byte echo, close. Server closes first (`close-first` app): read `bye\n`
/// until EOF, then close.
pub fn cps(cfg: &ClientCfg, concurrency: usize, server_closes: bool) -> Result<Outcome> {
    enter(cfg)?;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<CpsConn>> = (0..concurrency).map(|_| None).collect();
    let (mut hs, mut total) = (new_hist(), new_hist());
    let (mut ok, mut failed, mut launched) = (0u64, 0u64, 0u64);
    let addr = cfg.server;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut last_scan = start;
    let mut buf = [0u8; 256];
    loop {
        let running = Instant::now() < deadline && !sys::stopped();
        if !running {
            break; // in-flight attempts at the deadline are neither successes nor failures
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_some() || launched >= cfg.max_ops {
                continue;
            }
            launched += 1;
            match TcpStream::connect(addr) {
                Ok(mut s) => {
                    poll.registry().register(
                        &mut s,
                        Token(i),
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    *slot = Some(CpsConn {
                        s,
                        t0: Instant::now(),
                        connected: false,
                        got: 0,
                    });
                }
                Err(_) => failed += 1,
            }
        }
        poll.poll(&mut events, Some(Duration::from_millis(5)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(c) = slots[i].as_mut() else { continue };
            let step = cps_step(c, server_closes, &mut hs, &mut buf);
            match step {
                Step::Wait => continue,
                Step::Done => {
                    total.saturating_record(elapsed_ns(c.t0));
                    ok += 1;
                }
                Step::Fail => failed += 1,
            }
            // Closing the fd removes it from the epoll set: no deregister syscall needed.
            slots[i] = None;
        }
        let now = Instant::now();
        if now.duration_since(last_scan) > Duration::from_millis(100) {
            last_scan = now;
            for s in slots.iter_mut() {
                if s.as_ref()
                    .is_some_and(|c| now.duration_since(c.t0) > OP_TIMEOUT)
                {
                    *s = None;
                    failed += 1;
                }
            }
            cfg.progress.ok.store(ok, Relaxed);
            cfg.progress.failed.store(failed, Relaxed);
        }
    }
    Ok(Outcome {
        ok,
        failed,
        bytes: 0,
        elapsed: start.elapsed().min(cfg.duration),
        hists: vec![("handshake".into(), hs), ("connection".into(), total)],
        ..Outcome::default()
    })
}

fn cps_step(c: &mut CpsConn, server_closes: bool, hs: &mut Histogram<u64>, buf: &mut [u8]) -> Step {
    if !c.connected {
        if !matches!(c.s.take_error(), Ok(None)) {
            return Step::Fail;
        }
        match c.s.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected => return Step::Wait,
            Err(_) => return Step::Fail,
        }
        c.connected = true;
        hs.saturating_record(elapsed_ns(c.t0));
        if !server_closes && !matches!(c.s.write(&ZEROS[..MSG]), Ok(MSG)) {
            return Step::Fail;
        }
    }
    loop {
        match c.s.read(buf) {
            Ok(0) => {
                let want = if server_closes { 4 } else { MSG };
                return if c.got == want {
                    Step::Done
                } else {
                    Step::Fail
                };
            }
            Ok(n) => {
                c.got += n;
                if !server_closes && c.got >= MSG {
                    return if c.got == MSG { Step::Done } else { Step::Fail };
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Step::Fail,
        }
    }
}

/// Opens `n` connections to the server from the client namespace (blocking connects with a
/// timeout, then non-blocking with TCP_NODELAY).
pub fn connect_n(
    server: impl Into<SocketAddr>,
    n: usize,
    deadline: Instant,
) -> Result<Vec<TcpStream>> {
    let server: SocketAddr = server.into();
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        if Instant::now() > deadline || sys::stopped() {
            crate::error::bail!("connected only {} of {n} before the deadline", v.len());
        }
        let s = std::net::TcpStream::connect_timeout(&server, OP_TIMEOUT)
            .with_context(|| format!("connect {server}"))?;
        s.set_nodelay(true)?;
        s.set_nonblocking(true)?;
        v.push(TcpStream::from_std(s));
    }
    Ok(v)
}

struct RrConn {
    s: TcpStream,
    /// Scheduled send time of each request not yet answered (FIFO: echo keeps order).
    inflight: VecDeque<Instant>,
    unsent: usize,
    partial: usize,
    dead: bool,
}

impl RrConn {
    fn flush(&mut self) {
        while self.unsent > 0 && !self.dead {
            match self.s.write(&ZEROS[..self.unsent.min(IO_BUF)]) {
                Ok(n) => self.unsent -= n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.dead = true,
            }
        }
    }
}

/// `rr`: 64-byte request/response on `nconns` persistent connections to an echo server.
/// Closed loop (`rate` None): each connection keeps one request outstanding. Open loop: requests
/// are scheduled at a fixed total `rate` (round-robin over connections) and latency is measured
/// from the *scheduled* send time, which corrects coordinated omission.
pub fn rr(cfg: &ClientCfg, nconns: usize, rate: Option<f64>) -> Result<Outcome> {
    enter(cfg)?;
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut poll = Poll::new()?;
    let mut conns: Vec<RrConn> = Vec::new();
    for (i, mut s) in connect_n(cfg.server, nconns, deadline)?
        .into_iter()
        .enumerate()
    {
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)?;
        conns.push(RrConn {
            s,
            inflight: VecDeque::new(),
            unsent: 0,
            partial: 0,
            dead: false,
        });
    }
    let mut events = Events::with_capacity(1024);
    let mut h = new_hist();
    let (mut ok, mut failed, mut sent, mut inflight) = (0u64, 0u64, 0u64, 0usize);
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let interval = rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1.0)));
    let mut next_send = start;
    let mut rr_idx = 0usize;
    let mut buf = vec![0u8; IO_BUF];
    if interval.is_none() {
        for c in conns.iter_mut() {
            c.inflight.push_back(start);
            c.unsent += MSG;
            c.flush();
            sent += 1;
            inflight += 1;
        }
    }
    let timer = match interval {
        Some(_) => Some(TimerFd::new(poll.registry())?),
        None => None,
    };
    let mut last_progress = start;
    loop {
        let now = Instant::now();
        if now >= deadline || sys::stopped() {
            break;
        }
        let mut timeout = Duration::from_millis(10);
        if let Some(iv) = interval {
            while next_send <= now && sent < cfg.max_ops {
                if inflight >= MAX_INFLIGHT {
                    failed += 1; // overload: dropped, not queued without bound
                } else {
                    let nc = conns.len();
                    let c = &mut conns[rr_idx % nc];
                    c.inflight.push_back(next_send);
                    c.unsent += MSG;
                    c.flush();
                    inflight += 1;
                }
                rr_idx += 1;
                sent += 1;
                next_send += iv;
            }
            // Sleep until the next send on a timerfd (ns resolution; epoll_wait's own timeout
            // is in ms). Sleeping rather than spinning also keeps the scheduler's wake-up
            // preference for this thread on a shared core.
            let wait = next_send.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                timeout = Duration::ZERO;
            } else {
                timer.as_ref().expect("open loop has a timer").arm(wait)?;
            }
        }
        poll.poll(&mut events, Some(timeout))?;
        for ev in events.iter() {
            if ev.token() == TIMER {
                timer.as_ref().expect("open loop has a timer").clear();
                continue;
            }
            let c = &mut conns[ev.token().0];
            if c.dead {
                continue;
            }
            if ev.is_writable() {
                c.flush();
            }
            loop {
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        c.dead = true;
                        break;
                    }
                    Ok(n) => c.partial += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        c.dead = true;
                        break;
                    }
                }
            }
            let t = Instant::now();
            while c.partial >= MSG {
                c.partial -= MSG;
                let Some(t0) = c.inflight.pop_front() else {
                    c.dead = true; // more bytes than requested: not an echo
                    break;
                };
                h.saturating_record(t.saturating_duration_since(t0).as_nanos() as u64);
                ok += 1;
                inflight -= 1;
                if interval.is_none() && sent < cfg.max_ops {
                    c.inflight.push_back(t);
                    c.unsent += MSG;
                    sent += 1;
                    inflight += 1;
                }
            }
            c.flush();
            if c.dead {
                failed += 1 + c.inflight.len() as u64;
                inflight -= c.inflight.len();
                c.inflight.clear();
            }
        }
        if now.duration_since(last_progress) > Duration::from_millis(100) {
            last_progress = now;
            cfg.progress.ok.store(ok, Relaxed);
            cfg.progress.failed.store(failed, Relaxed);
        }
    }
    Ok(Outcome {
        ok,
        failed,
        bytes: 0,
        elapsed: start.elapsed().min(cfg.duration),
        hists: vec![("latency".into(), h)],
        ..Outcome::default()
    })
}

/// `bulk`: `flows` connections; `upload` writes to a `discard` server (bytes counted as
/// accepted by the client's socket: the few MB still in socket buffers at the deadline are
/// counted too), download reads from a `source` server (bytes counted as received).
pub fn bulk(cfg: &ClientCfg, flows: usize, upload: bool) -> Result<Outcome> {
    enter(cfg)?;
    let mut poll = Poll::new()?;
    let connect_deadline = Instant::now() + OP_TIMEOUT;
    let mut conns = connect_n(cfg.server, flows, connect_deadline)?;
    let interest = if upload {
        Interest::WRITABLE
    } else {
        Interest::READABLE
    };
    for (i, s) in conns.iter_mut().enumerate() {
        poll.registry().register(s, Token(i), interest)?;
    }
    let mut dead = vec![false; flows];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; IO_BUF];
    let (mut bytes, mut failed) = (0u64, 0u64);
    let start = Instant::now();
    let deadline = start + cfg.duration;
    let mut last_progress = start;
    while Instant::now() < deadline && !sys::stopped() {
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            while !dead[i] {
                let r = if upload {
                    conns[i].write(&ZEROS)
                } else {
                    conns[i].read(&mut buf)
                };
                match r {
                    Ok(0) => dead[i] = true,
                    Ok(n) => bytes += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => dead[i] = true,
                }
                if dead[i] {
                    failed += 1;
                }
            }
        }
        let now = Instant::now();
        if now.duration_since(last_progress) > Duration::from_millis(100) {
            last_progress = now;
            cfg.progress.bytes.store(bytes, Relaxed);
            cfg.progress.failed.store(failed, Relaxed);
        }
    }
    Ok(Outcome {
        ok: (flows as u64).saturating_sub(failed),
        failed,
        bytes,
        elapsed: start.elapsed(),
        hists: Vec::new(),
        ..Outcome::default()
    })
}

/// The poll token of a [`TimerFd`].
pub const TIMER: Token = Token(usize::MAX);

/// A one-shot CLOCK_MONOTONIC timerfd registered with the poll under [`TIMER`].
pub struct TimerFd(std::os::fd::OwnedFd);

impl TimerFd {
    pub fn new(registry: &mio::Registry) -> Result<Self> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: plain syscall; the fd is owned by the OwnedFd from here on.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            crate::error::bail!("timerfd_create: {}", std::io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor that nothing else owns.
        let t = TimerFd(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        registry.register(
            &mut mio::unix::SourceFd(&t.0.as_raw_fd()),
            TIMER,
            Interest::READABLE,
        )?;
        Ok(t)
    }

    /// Fires once after `after` (non-zero).
    pub fn arm(&self, after: Duration) -> Result<()> {
        use std::os::fd::AsRawFd;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos().max(1) as libc::c_long,
            },
        };
        // SAFETY: valid fd and a valid itimerspec.
        if unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } != 0
        {
            crate::error::bail!("timerfd_settime: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn clear(&self) {
        use std::os::fd::AsRawFd;
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into a u64; EAGAIN is fine (non-blocking).
        unsafe {
            libc::read(
                self.0.as_raw_fd(),
                &mut n as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }
}
