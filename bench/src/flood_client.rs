//! The legitimate clients of `synflood` (Linux sockets in the client namespace): an open-loop
//! connection client (connect, 64-byte echo, close, at a fixed rate; handshake latency from
//! the scheduled time, coordinated omission corrected) and the holder of the established
//! connections the `rst` flood aims at. Every loop is bounded in time; pending attempts at
//! most [`MAX_PENDING`].

use crate::client::{self, new_hist, TimerFd, MSG, OP_TIMEOUT, TIMER};
use crate::error::Result;
use crate::sys;
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Connection attempts in flight at most (memory bound); beyond it one counts as failed.
pub const MAX_PENDING: usize = 1 << 14;
/// Established connections the `rst` flood aims at.
pub const HELD: usize = 16;

/// What the legitimate connection client measured.
pub struct Legit {
    pub attempted: u64,
    pub completed: u64,
    pub failed: u64,
    pub timed_out: u64,
    pub hist: Histogram<u64>,
}

struct Pending {
    s: TcpStream,
    /// The scheduled connect time (latency counts from it: coordinated omission corrected).
    t0: Instant,
    connected: bool,
    got: usize,
}

/// Open loop: one connection attempt every 1/`rate` s for `dur`; each connects, sends 64
/// bytes, reads the 64-byte echo and closes. Attempts still running at the end get
/// [`OP_TIMEOUT`] to finish; one that fails or times out counts as failed.
pub fn legit_cps(
    ns: &str,
    core: usize,
    server: SocketAddrV4,
    rate: f64,
    dur: Duration,
    p: &client::Progress,
) -> Result<Legit> {
    sys::enter_netns(ns)?;
    sys::pin(core);
    let mut poll = Poll::new()?;
    let timer = TimerFd::new(poll.registry())?;
    let mut events = Events::with_capacity(1024);
    let mut slots: Vec<Option<Pending>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut l = Legit {
        attempted: 0,
        completed: 0,
        failed: 0,
        timed_out: 0,
        hist: new_hist(),
    };
    let iv = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let start = Instant::now();
    let (end, hard_end) = (start + dur, start + dur + OP_TIMEOUT);
    let mut next = start;
    let mut live = 0usize;
    let mut last_scan = start;
    let mut buf = [0u8; 256];
    loop {
        let now = Instant::now();
        if sys::stopped() || now >= hard_end || (now >= end && live == 0) {
            break;
        }
        while next <= now && next < end {
            l.attempted += 1;
            let sched = next;
            next += iv;
            if live >= MAX_PENDING {
                l.failed += 1;
                continue;
            }
            let Ok(mut s) = TcpStream::connect(SocketAddr::V4(server)) else {
                l.failed += 1;
                continue;
            };
            let i = free.pop().unwrap_or_else(|| {
                slots.push(None);
                slots.len() - 1
            });
            let int = Interest::READABLE | Interest::WRITABLE;
            poll.registry().register(&mut s, Token(i), int)?;
            slots[i] = Some(Pending {
                s,
                t0: sched,
                connected: false,
                got: 0,
            });
            live += 1;
        }
        let mut timeout = Duration::from_millis(10);
        if next < end {
            let wait = next.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                timeout = Duration::ZERO;
            } else {
                timer.arm(wait)?;
            }
        }
        poll.poll(&mut events, Some(timeout))?;
        for ev in events.iter() {
            if ev.token() == TIMER {
                timer.clear();
                continue;
            }
            let i = ev.token().0;
            let Some(c) = slots[i].as_mut() else { continue };
            let done = match step(c, &mut l.hist, &mut buf) {
                None => continue,
                Some(true) => {
                    l.completed += 1;
                    true
                }
                Some(false) => false,
            };
            if !done {
                l.failed += 1;
            }
            slots[i] = None; // closing the fd removes it from the epoll set
            free.push(i);
            live -= 1;
        }
        let now = Instant::now();
        if now.duration_since(last_scan) > Duration::from_millis(100) {
            last_scan = now;
            for (i, s) in slots.iter_mut().enumerate() {
                if s.as_ref()
                    .is_some_and(|c| now.duration_since(c.t0) > OP_TIMEOUT)
                {
                    *s = None;
                    free.push(i);
                    live -= 1;
                    l.failed += 1;
                    l.timed_out += 1;
                }
            }
            p.ok.store(l.completed, Relaxed);
            p.failed.store(l.failed, Relaxed);
        }
    }
    // Still pending at the hard end (a signal): failed.
    l.failed += live as u64;
    l.timed_out += live as u64;
    p.ok.store(l.completed, Relaxed);
    p.failed.store(l.failed, Relaxed);
    Ok(l)
}

/// One event on a pending attempt: None = wait, Some(true) = echo complete, Some(false) =
/// failed.
fn step(c: &mut Pending, hs: &mut Histogram<u64>, buf: &mut [u8]) -> Option<bool> {
    if !c.connected {
        if !matches!(c.s.take_error(), Ok(None)) {
            return Some(false);
        }
        match c.s.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected => return None,
            Err(_) => return Some(false),
        }
        c.connected = true;
        hs.saturating_record(c.t0.elapsed().as_nanos() as u64);
        if !matches!(c.s.write(&[0u8; MSG]), Ok(MSG)) {
            return Some(false);
        }
    }
    loop {
        match c.s.read(buf) {
            Ok(0) => return Some(false),
            Ok(n) => {
                c.got += n;
                if c.got >= MSG {
                    return Some(c.got == MSG);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(false),
        }
    }
}

/// `rst`: opens [`HELD`] connections, sends their local ports, then exchanges 64 bytes on
/// each in turn (blocking, [`OP_TIMEOUT`] each way) until `stop`. Returns (exchanges ok,
/// failed: the connection is dropped, of which reset: ECONNRESET or EOF).
pub fn hold(
    ns: &str,
    server: SocketAddrV4,
    ports: mpsc::Sender<Vec<u16>>,
    stop: &AtomicBool,
) -> Result<(u64, u64, u64)> {
    sys::enter_netns(ns)?;
    sys::pin(1);
    let mut conns = Vec::new();
    for _ in 0..HELD {
        let s = std::net::TcpStream::connect_timeout(&server.into(), OP_TIMEOUT)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(OP_TIMEOUT))?;
        s.set_write_timeout(Some(OP_TIMEOUT))?;
        conns.push(Some(s));
    }
    let p: Vec<u16> = conns
        .iter()
        .flatten()
        .filter_map(|s| s.local_addr().ok().map(|a| a.port()))
        .collect();
    let _ = ports.send(p);
    let (mut ok, mut failed, mut dead) = (0u64, 0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(600);
    let mut buf = [0u8; MSG];
    while !stop.load(Relaxed) && !sys::stopped() && Instant::now() < end {
        for c in conns.iter_mut() {
            let Some(s) = c.as_mut() else { continue };
            let r = s
                .write_all(&[1u8; MSG])
                .and_then(|_| s.read_exact(&mut buf));
            match r {
                Ok(()) => ok += 1,
                Err(e) => {
                    failed += 1;
                    let reset = matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
                    );
                    dead += u64::from(reset);
                    *c = None;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((ok, failed, dead))
}
