//! The process-wide state: the stack (one worker = one queue, run by a stack thread of this
//! process), the socket table and the epoll registrations, all behind one mutex that the
//! interposed calls take briefly (see docs/posix.md, "Model").
//!
//! Readiness: every stack socket's descriptor is a non-blocking eventfd (its placeholder). The
//! invariant kept by [`Posix::sync`] after every change is: the eventfd is readable exactly
//! when the socket's readiness intersects the readiness someone watches ([`Sock::watched`]:
//! always input, hang-up and error; output while an epoll registration or a blocked caller
//! wants it). New events (data, space, FIN, error) write the eventfd again even when it is
//! already readable: that write is the edge an `EPOLLET` registration of the placeholder sees.
//! So a kernel epoll set, `poll` or a blocked call sleeps in the kernel and wakes natively.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, TryLockError};

use xdptcp::app::{App, AppError, AppEvent, AppIo};
use xdptcp::iface::Interface;
use xdptcp::neigh::KernelResolver;
use xdptcp::phy::{AfXdpConfig, AfXdpDevice};
use xdptcp::stack::{Stack, StackOptions};
use xdptcp::tcp::endpoint::{ConnId, ListenerId};
use xdptcp::time::Instant;
use xdptcp::worker::{Worker, WorkerConfig};

use crate::addr::Family;
use crate::config::Config;
use crate::real::sys;

pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
pub const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
pub const EPOLLRDNORM: u32 = libc::EPOLLRDNORM as u32;
pub const EPOLLWRNORM: u32 = libc::EPOLLWRNORM as u32;
/// Always watched (Linux reports error and hang-up whether asked or not).
pub const ALWAYS: u32 = EPOLLIN | EPOLLRDNORM | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
const OUT: u32 = EPOLLOUT | EPOLLWRNORM;
/// An edge of every kind (an error, a new connection's first sync).
pub const ALL: u32 = u32::MAX;

/// Socket options that are stored (and some applied); see `opts.rs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Opts {
    pub reuseaddr: bool,
    pub reuseport: bool,
    pub keepalive: bool,
    /// SO_LINGER: `Some(0)` makes close send a RST (RFC 9293 §3.10.4 ABORT).
    pub linger: Option<i32>,
    pub rcvbuf: Option<i32>,
    pub sndbuf: Option<i32>,
    pub nodelay: bool,
    pub keepidle: Option<i32>,
    pub keepintvl: Option<i32>,
    pub keepcnt: Option<i32>,
    pub defer_accept: i32,
    pub fastopen: i32,
    /// SO_RCVTIMEO / SO_SNDTIMEO (`None`: wait forever; zero: do not wait).
    pub rcvtimeo: Option<std::time::Duration>,
    pub sndtimeo: Option<std::time::Duration>,
}

/// What a stack socket is.
#[derive(Debug)]
pub enum SockKind {
    /// Bound to the stack's address (`local`), neither listening nor connected.
    Bound,
    /// Listening on `ips` (the endpoint's listener `ids[i]` on `ips[i]`); established
    /// connections wait in `queue` (at most `backlog`) for `accept`.
    Listener {
        ids: Vec<ListenerId>,
        ips: Vec<IpAddr>,
        queue: VecDeque<ConnId>,
        backlog: usize,
    },
    /// A connection (active or accepted).
    Conn(ConnId),
}

/// One stack socket (key: its descriptor).
#[derive(Debug)]
pub struct Sock {
    pub kind: SockKind,
    pub nonblock: bool,
    /// AF_INET or AF_INET6: how its addresses read and write.
    pub family: Family,
    /// IPV6_V6ONLY (an AF_INET6 socket bound to `::` then leaves IPv4 out).
    pub v6only: bool,
    /// The bound (or connected) local address; an AF_INET6 socket's IPv4-mapped ones as IPv4.
    pub local: Option<SocketAddr>,
    pub opts: Opts,
    /// Whether the placeholder eventfd is readable now.
    pub signaled: bool,
    /// Callers blocked until the socket is writable (connect, send, poll for POLLOUT).
    pub out_waiters: u32,
}

impl Sock {
    pub fn new(kind: SockKind, nonblock: bool) -> Sock {
        Sock {
            kind,
            nonblock,
            family: Family::V4,
            v6only: false,
            local: None,
            opts: Opts::default(),
            signaled: false,
            out_waiters: 0,
        }
    }
}

/// One connection as the POSIX layer sees it (also before `accept`, and after the stack
/// released it, until the descriptor is closed).
#[derive(Debug, Default)]
pub struct ConnRec {
    pub fd: Option<RawFd>,
    /// Waiting in a listener's queue.
    pub queued: bool,
    pub connected: bool,
    pub peer_fin: bool,
    /// The pending socket error (SO_ERROR; reported once).
    pub err: Option<i32>,
    /// The stack's `Closed` came: the `ConnId` is stale.
    pub released: bool,
    pub wr_shut: bool,
    pub rd_shut: bool,
    /// Data taken from the stack but not read yet, which every read drains first: what
    /// MSG_PEEK saw, and what was unread when the stack released the connection (moved out
    /// at `Closed`, so the release does not count as a close with unread data, which would
    /// reset).
    pub tail: VecDeque<u8>,
    /// A non-blocking connect is in progress (Linux SS_CONNECTING): the first `connect`
    /// after it completed returns 0, later ones EISCONN.
    pub connecting: bool,
}

/// An epoll registration of a socket: the instance, the application's events and data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg {
    pub epfd: RawFd,
    pub events: u32,
    pub data: u64,
}

/// The socket tables and the event handler the stack's worker calls.
#[derive(Debug, Default)]
pub struct Posix {
    pub socks: HashMap<RawFd, Sock>,
    pub conns: HashMap<ConnId, ConnRec>,
    /// The endpoint's listeners and the sockets listening through each: one, or an
    /// SO_REUSEPORT group sharing the port (new connections spread by their flow hash).
    pub listeners: HashMap<ListenerId, Vec<RawFd>>,
    /// fd -> its epoll registrations (stack sockets and undecided ones, to move them along).
    pub regs: HashMap<RawFd, Vec<Reg>>,
    /// Connections reset because a listener's queue was full.
    pub accept_overflows: u64,
    /// Duplicated descriptors (dup, dup2, dup3, F_DUPFD): alias -> the descriptor the socket
    /// is filed under (its primary; the kernel shares the placeholder eventfd between them).
    pub alias: HashMap<RawFd, RawFd>,
    /// primary -> its aliases.
    pub aliases: HashMap<RawFd, Vec<RawFd>>,
    /// Set during a worker iteration ([`Inner::iterate`]): placeholder writes wait in
    /// `deferred` until the iteration has transmitted and kicked, so the application thread
    /// they wake does not find the lock still held (it would sleep on it: a `futex` wait,
    /// a wake and two context switches per event).
    defer: bool,
    /// Primaries whose placeholders the current iteration signals (each once; bounded by
    /// the number of sockets).
    deferred: Vec<RawFd>,
}

/// errno of an application-API error.
pub fn errno_of(e: AppError) -> i32 {
    match e {
        AppError::ConnectionRefused => libc::ECONNREFUSED,
        AppError::ConnectionReset => libc::ECONNRESET,
        AppError::TimedOut => libc::ETIMEDOUT,
        AppError::Aborted => libc::ECONNABORTED,
        AppError::Unreachable(u) => match u {
            xdptcp::tcp::Unreachable::Net => libc::ENETUNREACH,
            xdptcp::tcp::Unreachable::Host => libc::EHOSTUNREACH,
            xdptcp::tcp::Unreachable::Protocol => libc::ENOPROTOOPT,
            xdptcp::tcp::Unreachable::Port => libc::ECONNREFUSED,
            xdptcp::tcp::Unreachable::SourceRoute => libc::EOPNOTSUPP,
            xdptcp::tcp::Unreachable::HostDown => libc::EHOSTDOWN,
            xdptcp::tcp::Unreachable::NoNetwork => libc::ENONET,
            xdptcp::tcp::Unreachable::Prohibited => libc::EACCES,
            xdptcp::tcp::Unreachable::ProtocolError => libc::EPROTO,
        },
        AppError::NotConnected => libc::ENOTCONN,
        AppError::WriteClosed | AppError::Closed => libc::EPIPE,
        AppError::Connect(xdptcp::tcp::endpoint::ConnectError::NoPorts) => libc::EADDRNOTAVAIL,
        AppError::Connect(xdptcp::tcp::endpoint::ConnectError::TooManyConnections) => libc::ENOBUFS,
        AppError::Connect(xdptcp::tcp::endpoint::ConnectError::InvalidAddress) => libc::ENETUNREACH,
        AppError::Listen(xdptcp::tcp::endpoint::ListenError::AddrInUse) => libc::EADDRINUSE,
        AppError::Listen(xdptcp::tcp::endpoint::ListenError::TooManyListeners) => libc::ENOBUFS,
        AppError::Listen(xdptcp::tcp::endpoint::ListenError::InvalidPort) => libc::EINVAL,
    }
}

impl Posix {
    /// The descriptor `fd`'s socket is filed under.
    pub fn primary(&self, fd: RawFd) -> RawFd {
        *self.alias.get(&fd).unwrap_or(&fd)
    }

    /// The socket behind descriptor `fd` (a primary or an alias).
    pub fn sock(&self, fd: RawFd) -> Option<&Sock> {
        self.socks.get(&self.primary(fd))
    }

    pub fn sock_mut(&mut self, fd: RawFd) -> Option<&mut Sock> {
        let p = self.primary(fd);
        self.socks.get_mut(&p)
    }

    /// Records `new` as another descriptor of `fd`'s socket.
    pub fn add_alias(&mut self, fd: RawFd, new: RawFd) {
        let p = self.primary(fd);
        self.alias.insert(new, p);
        self.aliases.entry(p).or_default().push(new);
    }

    /// Forgets descriptor `fd`. Returns the socket if this was its last descriptor; otherwise
    /// the socket stays, filed under a remaining descriptor.
    pub fn remove_fd(&mut self, fd: RawFd) -> Option<Sock> {
        self.regs.remove(&fd);
        if let Some(p) = self.alias.remove(&fd) {
            if let Some(v) = self.aliases.get_mut(&p) {
                v.retain(|&a| a != fd);
                if v.is_empty() {
                    self.aliases.remove(&p);
                }
            }
            return None;
        }
        let sock = self.socks.remove(&fd)?;
        let Some(mut rest) = self.aliases.remove(&fd).filter(|v| !v.is_empty()) else {
            return Some(sock);
        };
        // Promote the first alias: the socket is filed under it from now on.
        let np = rest.remove(0);
        self.alias.remove(&np);
        for &a in &rest {
            self.alias.insert(a, np);
        }
        if !rest.is_empty() {
            self.aliases.insert(np, rest);
        }
        match &sock.kind {
            SockKind::Conn(c) => {
                if let Some(r) = self.conns.get_mut(c) {
                    r.fd = Some(np);
                }
            }
            SockKind::Listener { ids, .. } => {
                for id in ids {
                    for m in self.listeners.get_mut(id).into_iter().flatten() {
                        if *m == fd {
                            *m = np;
                        }
                    }
                }
            }
            SockKind::Bound => {}
        }
        self.socks.insert(np, sock);
        None
    }

    /// The socket's readiness now (Linux `tcp_poll`), as EPOLL* bits.
    pub fn ready(&self, io: &AppIo<'_>, fd: RawFd) -> u32 {
        let Some(s) = self.sock(fd) else {
            return 0;
        };
        match &s.kind {
            // A socket that is neither connected nor listening: TCP_CLOSE.
            SockKind::Bound => OUT | EPOLLHUP,
            SockKind::Listener { queue, .. } => {
                if queue.is_empty() {
                    0
                } else {
                    EPOLLIN | EPOLLRDNORM
                }
            }
            SockKind::Conn(c) => {
                let Some(r) = self.conns.get(c) else {
                    return 0;
                };
                conn_ready(io, *c, r)
            }
        }
    }

    /// What is watched on `fd` (see the module docs).
    pub fn watched(&self, fd: RawFd) -> u32 {
        let p = self.primary(fd);
        let reg_out = |d: &RawFd| {
            self.regs
                .get(d)
                .is_some_and(|v| v.iter().any(|r| r.events & EPOLLOUT != 0))
        };
        let wants_out = self.sock(fd).is_some_and(|s| s.out_waiters > 0)
            || reg_out(&p)
            || self.aliases.get(&p).is_some_and(|v| v.iter().any(reg_out));
        ALWAYS | if wants_out { OUT } else { 0 }
    }

    /// Restores the placeholder invariant of `fd`; `edge`: the readiness bits of something new
    /// that happened (data or FIN: input; space: output; an error: all), 0 for none. An edge
    /// that nobody watches (space freed while only input is watched) is not signalled, so an
    /// EPOLLET registration for input does not see it, as on Linux.
    pub fn sync(&mut self, io: &AppIo<'_>, fd: RawFd, edge: u32) {
        let watched = self.watched(fd);
        let m = self.ready(io, fd) & watched;
        let p = self.primary(fd);
        let Some(s) = self.socks.get_mut(&p) else {
            return;
        };
        if m != 0 {
            let write = !s.signaled || edge & m != 0;
            s.signaled = true;
            if write && !self.defer {
                sys::signal(fd);
            } else if write && !self.deferred.contains(&p) {
                self.deferred.push(p);
            }
        } else if s.signaled {
            s.signaled = false;
            self.deferred.retain(|&d| d != p);
            // A write the stack thread still makes after its unlock must land before this
            // read, or it would leave the placeholder readable with nothing ready.
            wait_signals();
            sys::clear(fd);
        }
    }

    /// Writes the placeholders [`Posix::sync`] deferred (see `defer`).
    fn signal_deferred(&mut self) {
        for fd in self.deferred.drain(..) {
            sys::signal(fd);
        }
    }
}

/// Set (under the lock) while the stack thread writes, after its unlock, the placeholders
/// its iteration signalled: so the application thread they wake finds the lock free (on
/// one CPU it preempts the writer at the write; had the writer still held the lock, the
/// woken thread would sleep on it at once). Whoever would free a placeholder's number
/// ([`crate::ops::release`]) or read it empty ([`Posix::sync`]) waits for those writes
/// first ([`wait_signals`]), so a write never reaches a reused descriptor nor re-arms a
/// cleared placeholder. Reset in a forked child (whose stack thread is not copied).
pub(crate) static SIGNALING: AtomicBool = AtomicBool::new(false);

/// Waits until the stack thread's post-unlock placeholder writes are done (a few system
/// calls; see [`SIGNALING`]). Called with the lock held, which those writes do not need.
pub fn wait_signals() {
    while SIGNALING.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
}

impl Posix {
    fn sync_conn(&mut self, io: &AppIo<'_>, c: ConnId, edge: u32) {
        if let Some(fd) = self.conns.get(&c).and_then(|r| r.fd) {
            self.sync(io, fd, edge);
        }
    }
}

/// The member of an SO_REUSEPORT group of `n` sockets a new connection goes to: its flow
/// hash scaled to `n` (Linux's `reciprocal_scale` of the flow hash), so connections spread.
pub fn reuseport_pick(t: Option<xdptcp::tcp::FourTuple>, n: usize) -> usize {
    let Some(t) = t.filter(|_| n > 1) else {
        return 0;
    };
    let mut h = u32::from_be_bytes(t.remote_ip6().octets()[12..].try_into().unwrap_or_default())
        ^ (u32::from(t.remote_port) << 16 | u32::from(t.local_port));
    // A 32-bit finaliser (murmur3's): every input bit moves the top bits.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    ((u64::from(h) * n as u64) >> 32) as usize
}

/// Linux `tcp_poll` for a connection.
pub fn conn_ready(io: &AppIo<'_>, c: ConnId, r: &ConnRec) -> u32 {
    let mut m = 0;
    if r.err.is_some() {
        m |= EPOLLERR;
    }
    let rd_closed = r.peer_fin || r.released || r.rd_shut;
    if r.released || (r.wr_shut && rd_closed) {
        m |= EPOLLHUP;
    }
    if rd_closed {
        m |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
    }
    if !r.tail.is_empty() || (!r.released && io.recv_available(c) > 0) {
        m |= EPOLLIN | EPOLLRDNORM;
    }
    // Shut or closed for writing: writable (a send fails at once with EPIPE).
    if r.released || r.wr_shut || (r.connected && io.send_capacity(c) > 0) {
        m |= OUT;
    }
    m
}

impl App for Posix {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Accepted(l) => {
                let Some(lfd) = self
                    .listeners
                    .get(&l)
                    .and_then(|g| g.get(reuseport_pick(io.tuple(c), g.len())))
                    .copied()
                else {
                    let _ = io.abort(c);
                    return;
                };
                let full = match self.sock_mut(lfd).map(|s| &mut s.kind) {
                    Some(SockKind::Listener { queue, backlog, .. }) => {
                        if queue.len() >= *backlog {
                            true
                        } else {
                            queue.push_back(c);
                            false
                        }
                    }
                    _ => true,
                };
                if full {
                    // The accept queue is bounded by the backlog: the newest is reset.
                    self.accept_overflows += 1;
                    let _ = io.abort(c);
                    return;
                }
                self.conns.insert(
                    c,
                    ConnRec {
                        queued: true,
                        connected: true,
                        ..ConnRec::default()
                    },
                );
                self.sync(io, lfd, EPOLLIN);
            }
            AppEvent::Connected => {
                if let Some(r) = self.conns.get_mut(&c) {
                    r.connected = true;
                }
                self.sync_conn(io, c, ALL);
            }
            AppEvent::Readable => self.sync_conn(io, c, EPOLLIN | EPOLLRDNORM),
            AppEvent::Writable => self.sync_conn(io, c, OUT),
            AppEvent::PeerFin => {
                if let Some(r) = self.conns.get_mut(&c) {
                    r.peer_fin = true;
                }
                self.sync_conn(io, c, EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
            }
            AppEvent::Error(e) => {
                if let Some(r) = self.conns.get_mut(&c) {
                    r.err = Some(errno_of(e));
                }
                self.sync_conn(io, c, ALL);
            }
            AppEvent::Closed => {
                let Some(r) = self.conns.get_mut(&c) else {
                    return;
                };
                r.released = true;
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = io.recv(c, &mut buf) {
                    r.tail.extend(&buf[..n]);
                }
                if r.fd.is_none() && !r.queued {
                    self.conns.remove(&c);
                    return;
                }
                self.sync_conn(io, c, ALL);
            }
        }
    }
}

/// The stack and the tables, behind [`Global::inner`].
pub struct Inner {
    pub stack: Stack,
    pub app: Posix,
    last: Instant,
}

type W = Worker<AfXdpDevice, KernelResolver>;

impl Inner {
    /// Whether this process still serves its queue: false once a forked worker process
    /// claimed it (the worker and its AF_XDP socket are gone; see `fork.rs`).
    pub fn live(&self) -> bool {
        !self.stack.workers.is_empty()
    }

    fn worker(&mut self) -> &mut W {
        &mut self.stack.workers[0]
    }

    /// The interface and the tables, borrowed apart (only while [`Inner::live`]).
    pub fn split(&mut self) -> (&mut Interface<AfXdpDevice, KernelResolver>, &mut Posix) {
        (&mut self.stack.workers[0].iface, &mut self.app)
    }

    /// One worker-loop iteration now (receive, events, timers, transmit, flush). Called by the
    /// stack thread, and by a caller right after it queued something (send, close, connect),
    /// so the segment leaves at once instead of at the stack thread's next wake-up.
    pub fn iterate(&mut self) -> bool {
        let busy = self.iterate_deferring();
        self.app.signal_deferred();
        busy
    }

    /// [`Inner::iterate`], leaving the placeholder writes in `app.deferred` (the stack
    /// thread makes them after its unlock).
    fn iterate_deferring(&mut self) -> bool {
        if !self.live() {
            return false;
        }
        let now = xdptcp::clock::now();
        let Inner {
            stack, app, last, ..
        } = self;
        app.defer = true;
        let busy = stack.workers[0].iteration(now, last, app);
        app.defer = false;
        busy
    }
}

/// A process's stack (one queue), once started.
pub struct Global {
    pub inner: Mutex<Inner>,
    pub cfg: Config,
    /// The AF_XDP socket (closed in a forked child, see `fork.rs`).
    pub xsk_fd: RawFd,
    stopped: AtomicBool,
    /// Output was queued and not transmitted yet (`XDPTCP_FLUSH=wait`): set under the lock by
    /// [`Global::queued`], cleared by the next iteration (the stack thread's, or
    /// [`Global::flush`] at the caller's next wait).
    unflushed: AtomicBool,
    /// Application threads spinning for or blocked on `inner`: the stack thread stands back
    /// while any are (see [`Global::lock`] and [`Global::lock_for_stack`]).
    wanted: AtomicU32,
    /// The process may run on more than one CPU: spinning for the lock can then pay off
    /// (its holder runs meanwhile); on one CPU it only delays the holder, so nobody spins.
    multi_cpu: bool,
    /// The stack thread's idle spins (`XDPTCP_SPINS`; unset: its default, or 0 on one CPU,
    /// where a spinning stack thread takes the CPU from the application).
    spins: u32,
    /// The queue this process serves.
    pub queue: usize,
    /// This process (a forked worker's stack is its own).
    pub pid: i32,
    /// Which process serves which queue, shared by the process family (`fork.rs`).
    pub table: &'static crate::fork::QueueTable,
    spawned: OnceLock<()>,
}

thread_local! {
    /// Set while this thread holds the stack's lock: a call it makes meanwhile (an stderr
    /// line, a raw descriptor operation) goes straight to libc, even for a descriptor that is
    /// a stack socket, instead of taking the lock again (which would deadlock).
    static HOLDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread holds the stack's lock (see `HOLDING`).
pub fn holding_lock() -> bool {
    HOLDING.with(|h| h.get())
}

/// The stack's lock, held; marks the thread (`HOLDING`) until dropped.
pub struct Locked<'a>(MutexGuard<'a, Inner>);

impl std::ops::Deref for Locked<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        HOLDING.with(|h| h.set(false));
    }
}

/// How long an application thread spins for the lock before it sleeps on it (a few busy
/// worker iterations of the stack thread): a hand-over by spinning costs no system call,
/// one by sleeping costs a `futex` wait, a `futex` wake and two context switches.
const LOCK_SPIN: std::time::Duration = std::time::Duration::from_micros(30);
/// Bound on the rounds of 64 `try_lock`s of that spin (should the clock stand still).
const LOCK_SPIN_ROUNDS: u32 = 1000;
/// `spin_loop` hints the idle stack thread waits between two polls (about a microsecond).
const IDLE_GAP_SPINS: u32 = 64;
/// How long the stack thread stands back (application threads hold or want the lock, and
/// run the iterations they need themselves) before it waits for the lock like everyone
/// else, so application threads that keep it busy do not starve the receive path.
const STACK_BACKOFF: std::time::Duration = std::time::Duration::from_millis(1);

fn guard<'a>(
    r: Result<MutexGuard<'a, Inner>, TryLockError<MutexGuard<'a, Inner>>>,
) -> Option<MutexGuard<'a, Inner>> {
    match r {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Global {
    /// The lock, for an application thread (an interposed call): taken at once when free;
    /// else announced in `wanted` (the stack thread then stops taking it between its
    /// iterations) and spun for briefly before sleeping.
    pub fn lock(&self) -> Locked<'_> {
        let g = match guard(self.inner.try_lock()) {
            Some(g) => g,
            None => {
                self.wanted.fetch_add(1, Ordering::SeqCst);
                let mut got = None;
                let start = std::time::Instant::now();
                let rounds = if self.multi_cpu { LOCK_SPIN_ROUNDS } else { 0 };
                'spin: for _ in 0..rounds {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                        if let Some(g) = guard(self.inner.try_lock()) {
                            got = Some(g);
                            break 'spin;
                        }
                    }
                    if start.elapsed() >= LOCK_SPIN {
                        break;
                    }
                }
                let g = got.unwrap_or_else(|| self.inner.lock().unwrap_or_else(|e| e.into_inner()));
                self.wanted.fetch_sub(1, Ordering::SeqCst);
                g
            }
        };
        HOLDING.with(|h| h.set(true));
        Locked(g)
    }

    /// The lock, for the stack thread's iteration: `None` while an application thread wants
    /// it or holds it (that thread runs the iterations it needs itself; the stack thread
    /// comes back at once), unless it has stood back since `since` for [`STACK_BACKOFF`]:
    /// then it waits.
    fn lock_for_stack(&self, since: &mut Option<std::time::Instant>) -> Option<Locked<'_>> {
        if since.is_some_and(|t| t.elapsed() >= STACK_BACKOFF) {
            *since = None;
            return Some(self.lock());
        }
        let g = if self.wanted.load(Ordering::SeqCst) == 0 {
            guard(self.inner.try_lock())
        } else {
            None
        };
        let Some(g) = g else {
            since.get_or_insert_with(std::time::Instant::now);
            return None;
        };
        *since = None;
        HOLDING.with(|h| h.set(true));
        Some(Locked(g))
    }

    /// A call queued output under `inner` (send, close, shutdown, a window update): transmit
    /// it now (`XDPTCP_FLUSH=call`) or leave it for the caller's next wait ([`Global::flush`])
    /// or the stack thread's next iteration, so that an event loop's writes, sendfile and
    /// close of one round leave in one TX kick instead of one each.
    pub fn queued(&self, inner: &mut Locked<'_>) {
        if self.cfg.flush_at_wait {
            self.unflushed.store(true, Ordering::Relaxed);
        } else {
            inner.iterate();
        }
    }

    /// Before a thread waits (epoll_wait, poll, select, a blocking call): transmit what its
    /// calls queued ([`Global::queued`]). One atomic load when nothing is pending.
    pub fn flush(&self) {
        if self.unflushed.load(Ordering::Relaxed) && self.unflushed.swap(false, Ordering::AcqRel) {
            let mut inner = self.lock();
            if inner.live() {
                inner.iterate();
            }
        }
    }

    /// The lock, if this process still serves its queue; else EOPNOTSUPP (a master whose
    /// queue a worker process claimed keeps its descriptors but cannot use them).
    pub fn lock_live(&self) -> Result<Locked<'_>, i32> {
        let l = self.lock();
        if l.live() {
            return Ok(l);
        }
        drop(l);
        Err(not_live())
    }
}

/// The errno (with one line on stderr) of a call on a stack socket of a process that does
/// not serve its queue any more.
pub fn not_live() -> i32 {
    crate::ops::warn_once(
        "this process's queue is served by a forked worker process now: its stack sockets \
         only close (EOPNOTSUPP)",
    );
    libc::EOPNOTSUPP
}

static CONFIG: OnceLock<Option<Config>> = OnceLock::new();

/// Where this process's stack is (see [`global`]).
// One static slot per process: the size does not matter, and the fork child handler
// moves the tables in without allocating.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Slot {
    Unstarted,
    /// Could not start (the reason was printed): stack calls fail with ENETDOWN.
    Failed,
    Running(&'static Global),
    /// A child forked from a process whose stack ran, not using a stack of its own yet:
    /// the parent's stack (never touched again here except to open a queue from its
    /// program) and its socket tables as they were at the fork.
    Forked {
        parent: &'static Global,
        tables: Posix,
    },
}

pub(crate) static SLOT: Mutex<Slot> = Mutex::new(Slot::Unstarted);
/// The running stack of this process (the fast path of [`current`]).
pub(crate) static CURRENT: AtomicPtr<Global> = AtomicPtr::new(std::ptr::null_mut());
/// Set in a forked child until it uses a stack of its own (see [`forked`]).
pub(crate) static UNCLAIMED: AtomicBool = AtomicBool::new(false);

pub(crate) fn slot() -> MutexGuard<'static, Slot> {
    SLOT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The configuration, read once (`None`: inert). A bad value prints one line and leaves the
/// library inert.
pub fn config() -> Option<&'static Config> {
    CONFIG
        .get_or_init(|| match Config::from_env() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("xdptcp: {e}; TCP stays on the kernel");
                None
            }
        })
        .as_ref()
}

/// The stack of this process, started on first use (the first socket that moves to it) or,
/// in a forked child, claimed (its own stack on a queue, the inherited listeners re-created:
/// `fork.rs`). `None` when the library is inert or the stack could not start (one line on
/// stderr says why). Its thread runs once this returns.
pub fn global() -> Option<&'static Global> {
    if let Some(g) = current() {
        return Some(g);
    }
    config()?;
    let mut slot = slot();
    let g = match std::mem::replace(&mut *slot, Slot::Failed) {
        Slot::Running(g) => g,
        Slot::Failed => return None,
        Slot::Unstarted => {
            let g: &'static Global = Box::leak(Box::new(start()?));
            crate::fork::register_handlers();
            g
        }
        Slot::Forked { parent, tables } => {
            let g = crate::fork::claim(parent, tables)?;
            UNCLAIMED.store(false, Ordering::Relaxed);
            g
        }
    };
    *slot = Slot::Running(g);
    CURRENT.store(g as *const Global as *mut Global, Ordering::Release);
    spawn_stack_thread(g);
    Some(g)
}

/// The stack if it runs in this process (without starting or claiming one).
pub fn current() -> Option<&'static Global> {
    let p = CURRENT.load(Ordering::Acquire);
    // SAFETY: CURRENT only ever holds a leaked (never freed) Global.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// Before a wait that involves no stack socket (a kernel-only epoll set, poll or select):
/// transmit what this process's calls queued ([`Global::flush`]); nothing while this thread
/// holds the lock (its calls are the kernel's).
pub fn flush_before_wait() {
    if let Some(g) = current() {
        if !holding_lock() {
            g.flush();
        }
    }
}

/// The same as [`current`] (the stack calls on existing descriptors start nothing).
pub fn started() -> Option<&'static Global> {
    current()
}

/// The stack a call on the existing stack descriptor `fd` uses: this process's, or in a
/// forked child the one it claims now (`fd` is an inherited listener, or a socket it made).
/// A connection inherited across fork is refused with EOPNOTSUPP; a stack that could not
/// start or claim a queue, ENETDOWN.
pub fn for_use(fd: RawFd) -> Result<&'static Global, i32> {
    if crate::fdtab::orphan(fd) {
        crate::ops::warn_once(
            "a connection inherited across fork is not usable in the child (EOPNOTSUPP); \
             only close works",
        );
        return Err(libc::EOPNOTSUPP);
    }
    if let Some(g) = current() {
        return Ok(g);
    }
    if forked() {
        return global().ok_or(libc::ENETDOWN);
    }
    Err(libc::EBADF)
}

/// Whether this is a child forked from a process whose stack ran, not using a stack of its
/// own yet: its `close` of an inherited descriptor only lets go of the number.
pub fn forked() -> bool {
    UNCLAIMED.load(Ordering::Relaxed)
}

/// Bound on the stack thread's sleep when idle: the neighbour cache's retries and held frames
/// are serviced at least this often.
const MAX_SLEEP_NS: u64 = 1_000_000;

/// The stack's options from the environment.
pub fn stack_options(cfg: &Config) -> StackOptions {
    let mut o = StackOptions::single(
        cfg.iface.clone(),
        Ipv4Addr::UNSPECIFIED,
        Vec::new(),
        cfg.ephemeral,
    );
    o.addr = cfg.addr; // None: an IPv6-only stack (its addresses go to `Stack::open_dual`)
    o.tcp = cfg.tcp.clone();
    o.afxdp = AfXdpConfig::default();
    o.worker = WorkerConfig::default();
    o
}

fn start() -> Option<Global> {
    let cfg = config()?.clone();
    let mut stack = match Stack::open_dual(&stack_options(&cfg), &cfg.addrs6) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("xdptcp: {e}");
            return None;
        }
    };
    let pid = std::process::id() as i32;
    let table = crate::fork::QueueTable::new(pid)?;
    Some(Global::new(
        stack_start(&mut stack),
        stack,
        cfg,
        0,
        pid,
        table,
    ))
}

/// Starts the stack's interface; returns its AF_XDP socket, kept out of forked children.
pub(crate) fn stack_start(stack: &mut Stack) -> (RawFd, Posix) {
    let xsk_fd = stack.workers[0].iface.device().fd();
    crate::fork::dont_fork_rings(xsk_fd);
    let mut app = Posix::default();
    stack.workers[0].iface.start(xdptcp::clock::now(), &mut app);
    (xsk_fd, app)
}

impl Global {
    pub(crate) fn new(
        (xsk_fd, app): (RawFd, Posix),
        stack: Stack,
        cfg: Config,
        queue: usize,
        pid: i32,
        table: &'static crate::fork::QueueTable,
    ) -> Global {
        let multi_cpu = allowed_cpus() > 1;
        let spins = if multi_cpu || std::env::var_os("XDPTCP_SPINS").is_some() {
            cfg.spins
        } else {
            0
        };
        Global {
            inner: Mutex::new(Inner {
                stack,
                app,
                last: xdptcp::clock::now(),
            }),
            cfg,
            xsk_fd,
            stopped: AtomicBool::new(false),
            unflushed: AtomicBool::new(false),
            wanted: AtomicU32::new(0),
            multi_cpu,
            spins,
            queue,
            pid,
            table,
            spawned: OnceLock::new(),
        }
    }
}

/// The CPUs this process may run on (1 if unknown).
fn allowed_cpus() -> usize {
    // SAFETY: a zeroed cpu_set_t filled by sched_getaffinity for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return 1;
        }
        libc::CPU_COUNT(&set).max(1) as usize
    }
}

/// Starts the stack thread of `g` (once).
pub fn spawn_stack_thread(g: &'static Global) {
    g.spawned.get_or_init(|| {
        // The stack thread blocks every signal (it inherits the mask set here, restored
        // below): a signal sent to the process goes to an application thread, whose
        // handler and interrupted call (nginx's SIGQUIT ending `epoll_wait` with EINTR) the
        // program expects; a handler run on the stack thread would also run with the lock.
        // SAFETY: sigset_t values initialised by sigfillset; this thread's mask only.
        let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        }
        let r = std::thread::Builder::new()
            .name("xdptcp-stack".into())
            .spawn(move || stack_loop(g));
        // SAFETY: restores the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if let Err(e) = r {
            eprintln!("xdptcp: cannot start the stack thread: {e}");
        }
    });
}

pub(crate) extern "C" fn at_exit() {
    if let Some(g) = current() {
        g.stopped.store(true, Ordering::Relaxed);
        // Live connections end with a RST (as `xdptcp serve` does on stop), so peers do not
        // wait for a process that is gone.
        let mut inner = g.lock();
        // The Global is never dropped: give the ephemeral range back to the kernel here
        // (the process that reserved it; forked workers reserve nothing), as a serve's drop
        // does, so no record stays in /run/xdptcp.
        if g.pid == std::process::id() as i32 {
            if let Some(r) = inner.stack.reserved_ports() {
                r.clone().release();
            }
        }
        if !inner.live() {
            return;
        }
        // What closes and sends queued leaves first (a FIN before the RST below).
        inner.iterate();
        let conns: Vec<ConnId> = inner
            .app
            .conns
            .iter()
            .filter(|(_, r)| !r.released)
            .map(|(c, _)| *c)
            .collect();
        {
            let now = xdptcp::clock::now();
            let (iface, _) = inner.split();
            let mut io = iface.app_io(now);
            for c in conns {
                let _ = io.abort(c);
            }
        }
        inner.iterate();
    }
}

fn stack_loop(g: &'static Global) {
    let mut streak = 0u32;
    let mut backoff = None;
    // The placeholders to write after the unlock (swapped with `Posix::deferred`, so
    // neither allocates once grown).
    let mut wake: Vec<RawFd> = Vec::new();
    loop {
        if g.stopped.load(Ordering::Relaxed) {
            return;
        }
        if !g.table.serves(g.queue, g.pid) {
            // A forked worker process claimed our queue: let go of the AF_XDP socket (its
            // socket can bind only once ours is closed) and stop serving. No placeholder
            // stays readable: a waiter would find nothing and wait again at once.
            let mut inner = g.lock();
            inner.stack.workers.clear();
            for (fd, s) in inner.app.socks.iter_mut() {
                if std::mem::take(&mut s.signaled) {
                    sys::clear(*fd);
                }
            }
            return;
        }
        let Some(mut inner) = g.lock_for_stack(&mut backoff) else {
            if g.multi_cpu {
                std::hint::spin_loop();
            } else {
                // The holder can only go on if we give it the CPU.
                std::thread::yield_now();
            }
            continue;
        };
        // This iteration transmits whatever the application queued before it took the lock.
        g.unflushed.store(false, Ordering::Relaxed);
        let busy = inner.iterate_deferring();
        let deadline = inner.worker().iface.endpoint().next_deadline();
        std::mem::swap(&mut inner.app.deferred, &mut wake);
        if !wake.is_empty() {
            SIGNALING.store(true, Ordering::SeqCst);
        }
        drop(inner);
        if !wake.is_empty() {
            for fd in wake.drain(..) {
                sys::signal(fd);
            }
            SIGNALING.store(false, Ordering::SeqCst);
        }
        if busy {
            streak = 0;
            continue;
        }
        streak = streak.saturating_add(1);
        if streak <= g.spins {
            if streak.is_multiple_of(64) {
                std::thread::yield_now();
            }
            // Idle: stay off the lock for a moment between polls, so an application thread
            // rarely finds it held (nor the stack thread preempted while holding it).
            for _ in 0..IDLE_GAP_SPINS {
                std::hint::spin_loop();
            }
            continue;
        }
        let now = xdptcp::clock::now();
        let ns = deadline
            .map_or(MAX_SLEEP_NS, |d| d.saturating_since(now).as_nanos() as u64)
            .min(MAX_SLEEP_NS);
        if ns == 0 {
            continue;
        }
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: ns as i64,
        };
        let mut p = libc::pollfd {
            fd: g.xsk_fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd and timespec.
        unsafe { crate::real::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV4;
    use xdptcp::tcp::endpoint::{Endpoint, EndpointSecrets};
    use xdptcp::tcp::TcpConfig;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

    fn endpoint() -> Endpoint {
        Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_bytes([7; 40]),
            61000..=61999,
        )
    }

    /// Linux `tcp_poll` masks for the states a connection passes through (net/ipv4/tcp.c).
    #[test]
    fn readiness_follows_linux_tcp_poll() {
        let mut ep = endpoint();
        let mut io = AppIo::new(&mut ep, Instant::from_millis(1), LOCAL);
        let c = io
            .connect(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80))
            .unwrap();
        // SYN-SENT: nothing.
        let mut r = ConnRec::default();
        assert_eq!(conn_ready(&io, c, &r), 0);
        // Refused (RST to our SYN, then released): IN|OUT|RDHUP|HUP|ERR with the NORM bits.
        r.err = Some(libc::ECONNREFUSED);
        r.released = true;
        assert_eq!(
            conn_ready(&io, c, &r),
            EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM | EPOLLRDHUP | EPOLLHUP | EPOLLERR
        );
        // The error read (SO_ERROR): the rest stays.
        r.err = None;
        assert_eq!(conn_ready(&io, c, &r) & EPOLLERR, 0);
        // Peer FIN on a live connection: IN|RDHUP, no HUP until our side is shut too.
        let mut r = ConnRec {
            peer_fin: true,
            ..ConnRec::default()
        };
        assert_eq!(conn_ready(&io, c, &r), EPOLLIN | EPOLLRDNORM | EPOLLRDHUP);
        r.wr_shut = true;
        assert_eq!(
            conn_ready(&io, c, &r),
            EPOLLIN | EPOLLRDNORM | EPOLLRDHUP | EPOLLHUP | EPOLLOUT | EPOLLWRNORM
        );
        // Data kept past the release is readable.
        let r = ConnRec {
            released: true,
            tail: VecDeque::from(vec![1u8, 2]),
            ..ConnRec::default()
        };
        assert_ne!(conn_ready(&io, c, &r) & EPOLLIN, 0);
    }

    #[test]
    fn watched_includes_output_only_when_asked() {
        let mut p = Posix::default();
        p.socks.insert(5, Sock::new(SockKind::Bound, false));
        assert_eq!(p.watched(5) & EPOLLOUT, 0);
        p.regs.insert(
            5,
            vec![Reg {
                epfd: 9,
                events: EPOLLIN | EPOLLOUT,
                data: 1,
            }],
        );
        assert_ne!(p.watched(5) & EPOLLOUT, 0);
        p.regs.clear();
        p.socks.get_mut(&5).unwrap().out_waiters = 1;
        assert_ne!(p.watched(5) & EPOLLOUT, 0);
    }

    /// dup'd descriptors: closing the primary files the socket under an alias (and its
    /// connection record follows); the last close returns the socket.
    #[test]
    fn duplicates_share_one_socket_until_the_last_close() {
        let mut ep = endpoint();
        let mut io = AppIo::new(&mut ep, Instant::from_millis(1), LOCAL);
        let c = io
            .connect(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80))
            .unwrap();
        let mut p = Posix::default();
        p.socks.insert(10, Sock::new(SockKind::Conn(c), false));
        p.conns.insert(
            c,
            ConnRec {
                fd: Some(10),
                ..ConnRec::default()
            },
        );
        p.add_alias(10, 11);
        p.add_alias(11, 12); // an alias of an alias is filed under the primary
        assert_eq!((p.primary(11), p.primary(12)), (10, 10));
        p.sock_mut(12).unwrap().nonblock = true;
        assert!(p.sock(10).unwrap().nonblock, "one socket, one O_NONBLOCK");
        // Closing an alias: the socket stays.
        assert!(p.remove_fd(11).is_none());
        assert_eq!(p.primary(12), 10);
        // Closing the primary: filed under the remaining alias.
        assert!(p.remove_fd(10).is_none());
        assert_eq!(p.primary(12), 12);
        assert!(p.sock(12).is_some() && p.sock(10).is_none());
        assert_eq!(p.conns[&c].fd, Some(12));
        // The last close returns it.
        assert!(matches!(p.remove_fd(12).map(|s| s.kind), Some(SockKind::Conn(x)) if x == c));
        assert!(p.socks.is_empty() && p.alias.is_empty() && p.aliases.is_empty());
    }

    /// SO_REUSEPORT: a flow always goes to the same member, every member gets flows, and a
    /// group of one (or a connection without a tuple) takes member 0.
    #[test]
    fn reuseport_spreads_flows_over_the_group() {
        let t = |port| {
            xdptcp::tcp::FourTuple::new(
                std::net::SocketAddrV4::new(LOCAL, 80),
                std::net::SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), port),
            )
        };
        let mut seen = [0usize; 3];
        for p in 40000..40300 {
            let i = reuseport_pick(Some(t(p)), 3);
            assert_eq!(i, reuseport_pick(Some(t(p)), 3));
            seen[i] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
        assert_eq!(reuseport_pick(Some(t(1)), 1), 0);
        assert_eq!(reuseport_pick(None, 4), 0);
    }

    #[test]
    fn errno_values_are_linuxs() {
        use xdptcp::tcp::endpoint::{ConnectError, ListenError};
        for (e, n) in [
            (AppError::ConnectionRefused, libc::ECONNREFUSED),
            (AppError::ConnectionReset, libc::ECONNRESET),
            (AppError::TimedOut, libc::ETIMEDOUT),
            (
                AppError::Connect(ConnectError::NoPorts),
                libc::EADDRNOTAVAIL,
            ),
            (
                AppError::Connect(ConnectError::TooManyConnections),
                libc::ENOBUFS,
            ),
            (AppError::Listen(ListenError::AddrInUse), libc::EADDRINUSE),
            (AppError::WriteClosed, libc::EPIPE),
        ] {
            assert_eq!(errno_of(e), n, "{e:?}");
        }
    }
}
