//! The calls on stack sockets (and the decisions that move an undecided socket to the stack),
//! with Linux's errno values. Each returns `Ok(value)` or `Err(errno)`; [`crate::interpose`]
//! turns that into the C convention. Blocking calls sleep in the kernel on the socket's
//! placeholder eventfd ([`wait`]), never spinning.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::sync::Mutex;

use libc::{c_int, sockaddr, socklen_t};
use xdptcp::stack::Stack;
use xdptcp::tcp::endpoint::{ConnId, ListenerId};

use crate::addr::{self, Family};

use crate::fdtab::{self, Kind};
use crate::real::{self, sys};
use crate::state::{
    errno_of, global, spawn_stack_thread, started, ConnRec, Global, Inner, Reg, Sock, SockKind, ALL,
};

pub type R = Result<isize, i32>;

/// One line on stderr the first time `what` happens in this process.
pub fn warn_once(what: &'static str) {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.get_or_insert_with(HashSet::new).insert(what) {
        eprintln!("xdptcp: {what}");
    }
}

/// The stack a call on stack descriptor `fd` uses ([`crate::state::for_use`]: in a forked
/// child, the queue it claims; an inherited connection: EOPNOTSUPP).
fn g(fd: RawFd) -> Result<&'static Global, i32> {
    crate::state::for_use(fd)
}

fn getsockopt_int(fd: RawFd, level: c_int, name: c_int) -> i32 {
    let mut v: c_int = 0;
    let mut l = 4 as socklen_t;
    // SAFETY: a valid int buffer.
    let r = unsafe { real::getsockopt(fd, level, name, &mut v as *mut c_int as *mut _, &mut l) };
    if r == 0 {
        v
    } else {
        0
    }
}

/// Moves the undecided kernel socket `fd` to the stack: its options are read back, an eventfd
/// takes its number (dup3), and its epoll registrations move to the placeholder.
fn move_to_stack(inner: &mut Inner, fd: RawFd, kind: SockKind) -> Result<(), i32> {
    let family = match getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN) {
        libc::AF_INET6 => Family::V6,
        _ => Family::V4,
    };
    let v6only =
        family == Family::V6 && getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) != 0;
    // SAFETY: fcntl on a descriptor we were given.
    let fl = unsafe { real::fcntl(fd, libc::F_GETFL, 0) };
    // SAFETY: as above.
    let fdfl = unsafe { real::fcntl(fd, libc::F_GETFD, 0) };
    if fl < 0 || fdfl < 0 {
        return Err(libc::EBADF);
    }
    let cloexec = fdfl & libc::FD_CLOEXEC != 0;
    let mut s = Sock::new(kind, fl & libc::O_NONBLOCK != 0);
    s.family = family;
    s.v6only = v6only;
    s.opts.reuseaddr = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR) != 0;
    s.opts.reuseport = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT) != 0;
    s.opts.keepalive = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE) != 0;
    s.opts.nodelay = getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY) != 0;
    let mut lg = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut l = std::mem::size_of::<libc::linger>() as socklen_t;
    // SAFETY: a valid linger buffer.
    if unsafe {
        real::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &mut lg as *mut _ as *mut _,
            &mut l,
        )
    } == 0
        && lg.l_onoff != 0
    {
        s.opts.linger = Some(lg.l_linger);
    }
    for (name, slot) in [
        (libc::SO_RCVTIMEO, &mut s.opts.rcvtimeo),
        (libc::SO_SNDTIMEO, &mut s.opts.sndtimeo),
    ] {
        let mut tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        };
        let mut l = std::mem::size_of::<libc::timeval>() as socklen_t;
        // SAFETY: a valid timeval buffer.
        let r = unsafe {
            real::getsockopt(
                fd,
                libc::SOL_SOCKET,
                name,
                &mut tv as *mut _ as *mut _,
                &mut l,
            )
        };
        if r == 0 && (tv.tv_sec, tv.tv_usec) != (0, 0) {
            *slot = Some(
                std::time::Duration::from_secs(tv.tv_sec.max(0) as u64)
                    + std::time::Duration::from_micros(tv.tv_usec.max(0) as u64),
            );
        }
    }
    let e = sys::eventfd(cloexec)?;
    let r = sys::dup3(e, fd, cloexec);
    sys::close(e);
    r?;
    fdtab::set(fd, Kind::Stack);
    inner.app.socks.insert(fd, s);
    // The old socket's epoll items went with it: register the placeholder instead.
    let regs = crate::epoll::take_undecided(fd);
    if !regs.is_empty() {
        inner.app.regs.insert(fd, regs.clone());
    }
    for r in regs {
        crate::epoll::kernel_register(r.epfd, fd, r.events, true);
        fdtab::set(r.epfd, Kind::Epoll);
    }
    Ok(())
}

/// `bind` on an undecided socket: one of the stack's addresses or the family's wildcard with
/// a port goes to the stack; anything else stays on the kernel. `None`: let libc do it.
pub fn bind(fd: RawFd, a: SocketAddr) -> Option<R> {
    let cfg = crate::state::config()?;
    let ours = addr::is_stack_bind(a.ip(), cfg.addr, &cfg.addrs6);
    if !ours || a.port() == 0 {
        if ours {
            warn_once("bind to port 0 is served by the kernel (no stack port allocation yet)");
        }
        return None;
    }
    let Some(g) = global() else {
        return Some(Err(libc::ENETDOWN));
    };
    spawn_stack_thread(g);
    if (cfg.ephemeral.0..=cfg.ephemeral.1).contains(&a.port()) {
        return Some(Err(libc::EADDRINUSE));
    }
    let mut inner = match g.lock_live() {
        Ok(l) => l,
        Err(e) => return Some(Err(e)),
    };
    // SO_REUSEPORT on every socket of the port (set before bind, as Linux asks) shares it.
    let reuse = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT) != 0;
    let v6only = a.is_ipv6() && getsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) != 0;
    let mine = addr::listen_ips(a.ip(), v6only, cfg.addr, &cfg.addrs6);
    let taken = inner.app.socks.values().any(|s| {
        let Some(l) = s.local.filter(|l| l.port() == a.port()) else {
            return false;
        };
        if matches!(s.kind, SockKind::Conn(_)) || (reuse && s.opts.reuseport) {
            return false;
        }
        // 0.0.0.0 and [::] (dual-stack) overlap; 0.0.0.0 and a v6only [::] do not.
        addr::listen_ips(l.ip(), s.v6only, cfg.addr, &cfg.addrs6)
            .iter()
            .any(|ip| mine.contains(ip))
    });
    if taken {
        return Some(Err(libc::EADDRINUSE));
    }
    if let Err(e) = move_to_stack(&mut inner, fd, SockKind::Bound) {
        return Some(Err(e));
    }
    if let Some(s) = inner.app.sock_mut(fd) {
        s.local = Some(a);
    }
    Some(Ok(0))
}

/// `listen` on a stack socket.
pub fn listen(fd: RawFd, backlog: c_int) -> R {
    let g = g(fd)?;
    let mut inner = g.lock_live()?;
    let somaxconn = g.cfg.tcp.somaxconn.max(1);
    let backlog = usize::try_from(backlog).map_or(somaxconn, |b| b.clamp(1, somaxconn));
    let now = xdptcp::clock::now();
    let Inner { stack, app, .. } = &mut *inner;
    let fd = app.primary(fd);
    let Some(s) = app.sock_mut(fd) else {
        return Err(libc::EBADF);
    };
    let (port, ips) = match &mut s.kind {
        SockKind::Listener { backlog: b, .. } => {
            *b = backlog;
            return Ok(0);
        }
        SockKind::Conn(_) => return Err(libc::EINVAL),
        SockKind::Bound => {
            let local = s.local.unwrap_or(s.family.unspecified());
            let ips = addr::listen_ips(local.ip(), s.v6only, g.cfg.addr, &g.cfg.addrs6);
            (local.port(), ips)
        }
    };
    // An SO_REUSEPORT group: the port's endpoint listeners are shared (bind let only
    // SO_REUSEPORT sockets share the port).
    let group = app.socks.iter().find_map(|(&o, os)| match &os.kind {
        SockKind::Listener { ids, ips: oips, .. }
            if o != fd && os.local.is_some_and(|l| l.port() == port) && *oips == ips =>
        {
            Some(ids.clone())
        }
        _ => None,
    });
    let ids = match group {
        Some(ids) => ids,
        None => open_listeners(stack, &ips, port, backlog, now)?,
    };
    for id in &ids {
        app.listeners.entry(*id).or_default().push(fd);
    }
    if let Some(s) = app.sock_mut(fd) {
        s.kind = SockKind::Listener {
            ids,
            ips: ips.to_vec(),
            queue: Default::default(),
            backlog,
        };
    }
    Ok(0)
}

/// Listens on each of `ips` at `port` (the endpoint's listeners, steered to this stack by
/// the XDP program); on a failure undoes what it did and gives the errno.
pub fn open_listeners(
    stack: &mut Stack,
    ips: &[IpAddr],
    port: u16,
    backlog: usize,
    now: xdptcp::time::Instant,
) -> Result<Vec<ListenerId>, i32> {
    let mut ids = Vec::with_capacity(ips.len());
    for &ip in ips {
        let id = match stack.workers[0]
            .iface
            .app_io(now)
            .listen_on(ip, port, backlog)
        {
            Ok(id) => id,
            Err(e) => {
                close_listeners(stack, &ids, ips, port, true, now);
                return Err(errno_of(e));
            }
        };
        ids.push(id);
        let steered = match ip {
            IpAddr::V4(a) => stack.steering_mut().add_listen(a, port),
            IpAddr::V6(a) => stack.steering_mut().add_listen6(a, port),
        };
        if let Err(e) = steered {
            eprintln!("xdptcp: steering {ip} port {port}: {e}");
            close_listeners(stack, &ids, ips, port, true, now);
            return Err(libc::ENOBUFS);
        }
    }
    Ok(ids)
}

/// Closes the endpoint listeners `ids` (on `ips`, in the same order) and, with `unsteer`,
/// stops steering their addresses and port to this stack.
pub fn close_listeners(
    stack: &mut Stack,
    ids: &[ListenerId],
    ips: &[IpAddr],
    port: u16,
    unsteer: bool,
    now: xdptcp::time::Instant,
) {
    for (&id, &ip) in ids.iter().zip(ips) {
        stack.workers[0].iface.endpoint_mut().unlisten(now, id);
        if unsteer {
            let _ = match ip {
                IpAddr::V4(a) => stack.steering_mut().remove_listen(a, port),
                IpAddr::V6(a) => stack.steering_mut().remove_listen6(a, port),
            };
        }
    }
}

/// Sleeps until the placeholder of `fd` is readable (after the caller found the socket not
/// ready). `out`: the caller waits for writability, which is watched meanwhile. `again`: a
/// previous wait woke without the caller making progress (the eventfd is readable for
/// another reason): back off briefly instead of spinning.
/// `deadline`: SO_RCVTIMEO / SO_SNDTIMEO ran out: EAGAIN (as Linux).
fn wait(
    g: &Global,
    fd: RawFd,
    out: bool,
    again: bool,
    deadline: Option<std::time::Instant>,
) -> Result<(), i32> {
    let timeout = match deadline {
        None => -1,
        Some(d) => {
            let left = d.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(libc::EAGAIN);
            }
            left.as_micros().div_ceil(1000).min(i32::MAX as u128) as c_int
        }
    };
    g.flush();
    if out {
        let mut inner = g.lock_live()?;
        let now = xdptcp::clock::now();
        let (iface, app) = inner.split();
        if let Some(s) = app.sock_mut(fd) {
            s.out_waiters += 1;
        }
        app.sync(&iface.app_io(now), fd, 0);
    }
    if again {
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { real::poll(&mut p, 1, timeout) };
    let err = (r < 0).then(std::io::Error::last_os_error);
    if out {
        let mut inner = g.lock_live()?;
        let now = xdptcp::clock::now();
        let (iface, app) = inner.split();
        if let Some(s) = app.sock_mut(fd) {
            s.out_waiters = s.out_waiters.saturating_sub(1);
        }
        app.sync(&iface.app_io(now), fd, 0);
    }
    match err {
        Some(e) => Err(e.raw_os_error().unwrap_or(libc::EINTR)),
        None => Ok(()),
    }
}

/// When a blocking call on `fd` gives up: SO_SNDTIMEO (`send`) or SO_RCVTIMEO, from now.
fn timeout_of(g: &Global, fd: RawFd, send: bool) -> Option<std::time::Instant> {
    let inner = g.lock();
    deadline_of(inner.app.sock(fd)?, send)
}

/// [`timeout_of`] for a socket the caller has under the lock.
fn deadline_of(s: &crate::state::Sock, send: bool) -> Option<std::time::Instant> {
    let t = if send {
        s.opts.sndtimeo
    } else {
        s.opts.rcvtimeo
    };
    t.map(|d| std::time::Instant::now() + d)
}

/// `accept4` on a stack socket.
///
/// # Safety
/// `addr`/`len` as for accept(2).
pub unsafe fn accept4(fd: RawFd, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> R {
    if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
        return Err(libc::EINVAL);
    }
    let g = g(fd)?;
    let deadline = timeout_of(g, fd, false);
    let mut again = false;
    loop {
        let mut inner = g.lock_live()?;
        let now = xdptcp::clock::now();
        let (iface, app) = inner.split();
        let Some(s) = app.sock_mut(fd) else {
            return Err(libc::EBADF);
        };
        let (SockKind::Listener { queue, .. }, lopts, nonblock, family) =
            (&mut s.kind, s.opts, s.nonblock, s.family)
        else {
            return Err(libc::EINVAL);
        };
        if let Some(c) = queue.pop_front() {
            let mut io = iface.app_io(now);
            // Ready already (the request came with the handshake's ACK): the placeholder
            // is created readable, which saves the write of its first sync.
            let ready = app
                .conns
                .get(&c)
                .is_some_and(|r| crate::state::conn_ready(&io, c, r) & crate::state::ALWAYS != 0);
            let nfd = sys::eventfd_signaled(ready, flags & libc::SOCK_CLOEXEC != 0)?;
            if !fdtab::in_range(nfd) {
                sys::close(nfd);
                let _ = io.abort(c);
                app.conns.remove(&c);
                return Err(libc::EMFILE);
            }
            let tuple = io.tuple(c);
            if let Some(r) = app.conns.get_mut(&c) {
                r.fd = Some(nfd);
                r.queued = false;
            }
            if lopts.nodelay {
                let _ = io.set_nodelay(c, true);
            }
            if lopts.keepalive {
                let _ = io.set_keepalive(c, true);
            }
            let mut ns = Sock::new(SockKind::Conn(c), flags & libc::SOCK_NONBLOCK != 0);
            ns.opts = lopts;
            ns.family = family;
            ns.local = tuple.map(|t| t.local());
            ns.signaled = ready;
            app.socks.insert(nfd, ns);
            fdtab::set(nfd, Kind::Stack);
            app.sync(&io, fd, 0);
            // Created readable when ready: no edge to add (nobody watches it yet).
            app.sync(&io, nfd, if ready { 0 } else { ALL });
            // Already gone (reset while queued): Linux still returns it, with no address.
            let peer = tuple.map_or(family.unspecified(), |t| t.remote());
            // SAFETY: the caller's buffer.
            unsafe { addr::write(family, peer, addr, len) };
            return Ok(nfd as isize);
        }
        if nonblock {
            return Err(libc::EAGAIN);
        }
        drop(inner);
        wait(g, fd, false, again, deadline)?;
        again = true;
    }
}

/// `connect` on an undecided socket or a stack socket. `None`: let libc do it.
pub fn connect(fd: RawFd, a: SocketAddr) -> Option<R> {
    let kind = fdtab::kind(fd);
    if kind == Kind::Undecided {
        let cfg = crate::state::config()?;
        if addr::is_kernel_dest(a.ip(), cfg.addr.is_some(), !cfg.addrs6.is_empty()) {
            fdtab::set(fd, Kind::Kernel);
            return None;
        }
    }
    let Some(g) = global() else {
        return Some(Err(libc::ENETDOWN));
    };
    spawn_stack_thread(g);
    Some(connect_stack(g, fd, kind, a))
}

fn connect_stack(g: &'static Global, fd: RawFd, kind: Kind, a: SocketAddr) -> R {
    {
        let mut inner = g.lock_live()?;
        if kind == Kind::Undecided {
            move_to_stack(&mut inner, fd, SockKind::Bound)?;
        }
        let local = g.cfg.addr;
        let now = xdptcp::clock::now();
        let (iface, app) = inner.split();
        let fd = app.primary(fd);
        let Some(s) = app.socks.get_mut(&fd) else {
            return Err(libc::EBADF);
        };
        match s.kind {
            SockKind::Listener { .. } => return Err(libc::EISCONN),
            SockKind::Conn(c) => {
                let r = app.conns.get_mut(&c).ok_or(libc::EBADF)?;
                if let Some(e) = r.err.take() {
                    return Err(e);
                }
                if r.connected {
                    if std::mem::take(&mut r.connecting) {
                        return Ok(0);
                    }
                    return Err(libc::EISCONN);
                }
                if s.nonblock {
                    return Err(libc::EALREADY);
                }
            }
            SockKind::Bound => {
                if s.local.is_some_and(|l| l.port() != 0) {
                    warn_once("connect from a bound port: the stack picks an ephemeral port");
                }
                // From the bound address when it is one of the stack's (of the right
                // family), else the stack's first address of the peer's family.
                let from = match (s.local.map(|l| l.ip()), a) {
                    (Some(ip @ IpAddr::V6(b)), SocketAddr::V6(_)) if !b.is_unspecified() => ip,
                    (_, SocketAddr::V4(_)) if s.v6only => return Err(libc::ENETUNREACH),
                    (_, SocketAddr::V4(_)) => match local {
                        Some(v4) => IpAddr::V4(v4),
                        None => return Err(libc::ENETUNREACH),
                    },
                    (_, SocketAddr::V6(_)) => match g.cfg.addrs6.first() {
                        Some(&b) => IpAddr::V6(b),
                        None => return Err(libc::ENETUNREACH),
                    },
                };
                let mut io = iface.app_io(now);
                let c = io.connect_from_ip(from, a).map_err(errno_of)?;
                if s.opts.nodelay {
                    let _ = io.set_nodelay(c, true);
                }
                if s.opts.keepalive {
                    let _ = io.set_keepalive(c, true);
                }
                let nonblock = s.nonblock;
                s.kind = SockKind::Conn(c);
                s.local = io.tuple(c).map(|t| t.local());
                app.conns.insert(
                    c,
                    ConnRec {
                        fd: Some(fd),
                        connecting: nonblock,
                        ..ConnRec::default()
                    },
                );
                inner.iterate();
                if nonblock {
                    return Err(libc::EINPROGRESS);
                }
            }
        }
    }
    // Blocking: until established or failed.
    let deadline = timeout_of(g, fd, true);
    let mut again = false;
    loop {
        {
            let mut inner = g.lock_live()?;
            let c = match inner.app.sock(fd).map(|s| &s.kind) {
                Some(SockKind::Conn(c)) => *c,
                _ => return Err(libc::EBADF),
            };
            let r = inner.app.conns.get_mut(&c).ok_or(libc::EBADF)?;
            if let Some(e) = r.err.take() {
                return Err(e);
            }
            if r.connected {
                return Ok(0);
            }
            if r.released {
                return Err(libc::ECONNREFUSED);
            }
        }
        match wait(g, fd, true, again, deadline) {
            // A blocking connect that timed out (SO_SNDTIMEO) goes on in the background.
            Err(libc::EAGAIN) => return Err(libc::EINPROGRESS),
            r => r?,
        }
        again = true;
    }
}

/// Receive flags handled; anything else is refused with a line on stderr.
const RECV_FLAGS: c_int = libc::MSG_DONTWAIT
    | libc::MSG_WAITALL
    | libc::MSG_PEEK
    | libc::MSG_NOSIGNAL
    | libc::MSG_CMSG_CLOEXEC;

/// What one attempt of a stream call on a connection ([`with_conn`]) decided.
enum Step {
    /// The call returns this.
    Done(R),
    /// Not done: sleep until the socket changes (`progress`: this attempt moved data).
    Wait { progress: bool },
}

/// The loop every stream call on a connected stack socket runs (recv and send): lock, find
/// the connection (`not_conn` when the socket is not one), one attempt `f` (with the
/// connection, its record and whether the call may block), the placeholder invariant, one
/// stack iteration when `f` queued something (`*flush`), then sleep on the placeholder until
/// SO_RCVTIMEO / SO_SNDTIMEO (`send` picks which, and what is waited for). `*moved` counts
/// the bytes moved so far: a timeout after some returns them instead of EAGAIN.
fn with_conn(
    fd: RawFd,
    flags: c_int,
    send: bool,
    not_conn: impl Fn() -> i32,
    mut f: impl FnMut(&mut xdptcp::app::AppIo<'_>, ConnId, &mut ConnRec, bool, &mut bool) -> Step,
) -> R {
    let g = g(fd)?;
    // SO_RCVTIMEO / SO_SNDTIMEO, read under the first lock (one lock per call when the
    // call does not wait).
    let mut deadline = None;
    let mut again = false;
    loop {
        let progress = {
            let mut inner = g.lock_live()?;
            let now = xdptcp::clock::now();
            let (iface, app) = inner.split();
            let s = app.sock(fd).ok_or(libc::EBADF)?;
            if !again {
                deadline = deadline_of(s, send);
            }
            let nonblock = s.nonblock || flags & libc::MSG_DONTWAIT != 0;
            let SockKind::Conn(c) = s.kind else {
                return Err(not_conn());
            };
            let mut io = iface.app_io(now);
            let r = app.conns.get_mut(&c).ok_or(libc::EBADF)?;
            let mut flush = false;
            let step = f(&mut io, c, r, nonblock, &mut flush);
            app.sync(&io, fd, 0);
            if flush {
                g.queued(&mut inner);
            }
            match step {
                Step::Done(v) => return v,
                Step::Wait { progress } => progress,
            }
        };
        wait(g, fd, send, again && !progress, deadline)?;
        again = true;
    }
}

/// `recv` on a stack socket (read, recvfrom, recvmsg, readv end here). MSG_PEEK copies
/// without consuming: the bytes move from the stack into the connection's `tail` (which
/// every read drains first), so the stack's receive window opens by what was peeked.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: c_int) -> R {
    if flags & libc::MSG_OOB != 0 {
        // Linux: no urgent data (we never keep any).
        return Err(libc::EINVAL);
    }
    if flags & !RECV_FLAGS != 0 {
        warn_once(
            "recv flags other than MSG_DONTWAIT/MSG_WAITALL/MSG_PEEK are ignored on stack sockets",
        );
    }
    let peek = flags & libc::MSG_PEEK != 0;
    let waitall = flags & libc::MSG_WAITALL != 0;
    let mut got = 0usize;
    let timed_out = |got: usize| {
        if got > 0 {
            Ok(got as isize)
        } else {
            Err(libc::EAGAIN)
        }
    };
    let r = with_conn(
        fd,
        flags,
        false,
        || libc::ENOTCONN,
        |io, c, r, nonblock, flush| {
            if buf.is_empty() {
                return Step::Done(Ok(0));
            }
            let n = if r.rd_shut {
                0
            } else if peek {
                // Fill the tail up to the caller's length (bounded), then copy from it.
                let want = buf.len().min(PEEK_MAX);
                let mut chunk = [0u8; 4096];
                while !r.released && r.tail.len() < want {
                    let k = (want - r.tail.len()).min(chunk.len());
                    match io.recv(c, &mut chunk[..k]) {
                        Ok(m @ 1..) => r.tail.extend(&chunk[..m]),
                        _ => break,
                    }
                    *flush = true;
                }
                let n = r.tail.len().min(buf.len());
                for (d, s) in buf[..n].iter_mut().zip(r.tail.iter()) {
                    *d = *s;
                }
                let progress = n > got;
                got = n;
                if !progress {
                    0
                } else {
                    n
                }
            } else if !r.tail.is_empty() {
                let n = r.tail.len().min(buf.len() - got);
                for (d, s) in buf[got..got + n].iter_mut().zip(r.tail.drain(..n)) {
                    *d = s;
                }
                got += n;
                n
            } else if r.released {
                0
            } else {
                let n = io.recv(c, &mut buf[got..]).unwrap_or(0);
                got += n;
                // The window opened: tell the peer now, not at the stack thread's next wake-up.
                *flush = n >= 4096;
                n
            };
            let full = got == buf.len() || (peek && got == buf.len().min(PEEK_MAX));
            if full || (got > 0 && !waitall) {
                return Step::Done(Ok(got as isize));
            }
            if let Some(e) = r.err.take() {
                return Step::Done(if got > 0 { Ok(got as isize) } else { Err(e) });
            }
            let eof = (r.peer_fin || r.released || r.rd_shut) && (peek || r.tail.is_empty());
            if eof {
                return Step::Done(Ok(got as isize));
            }
            if nonblock {
                return Step::Done(timed_out(got));
            }
            // No data yet (also in SYN-SENT, where Linux waits for the handshake too).
            Step::Wait { progress: n > 0 }
        },
    );
    match r {
        Err(libc::EAGAIN) => timed_out(got),
        r => r,
    }
}

/// At most this many bytes held for MSG_PEEK per connection (one call's peek is capped).
const PEEK_MAX: usize = 4 << 20;

fn sigpipe(flags: c_int) {
    if flags & libc::MSG_NOSIGNAL == 0 {
        // SAFETY: raise has no preconditions; Linux sends SIGPIPE to the calling thread.
        unsafe { libc::raise(libc::SIGPIPE) };
    }
}

/// `send` on a stack socket (write, sendto, sendmsg, writev, sendfile end here).
pub fn send(fd: RawFd, data: &[u8], flags: c_int) -> R {
    if flags & libc::MSG_OOB != 0 {
        warn_once("send(MSG_OOB) on a stack socket is not supported (EOPNOTSUPP)");
        return Err(libc::EOPNOTSUPP);
    }
    let mut sent = 0usize;
    let not_conn = || {
        sigpipe(flags);
        libc::EPIPE
    };
    let r = with_conn(fd, flags, true, not_conn, |io, c, r, nonblock, flush| {
        if let Some(e) = r.err.take() {
            return Step::Done(if sent > 0 { Ok(sent as isize) } else { Err(e) });
        }
        if r.wr_shut || r.released {
            if sent > 0 {
                return Step::Done(Ok(sent as isize));
            }
            sigpipe(flags);
            return Step::Done(Err(libc::EPIPE));
        }
        let n = if r.connected && !data.is_empty() {
            match io.send(c, &data[sent..]) {
                Ok(n) => n,
                Err(e) => {
                    let e = errno_of(e);
                    if e == libc::EPIPE {
                        sigpipe(flags);
                    }
                    return Step::Done(Err(e));
                }
            }
        } else {
            0
        };
        sent += n;
        *flush = n > 0;
        // All of it queued (only once connected: a blocking send in SYN-SENT waits).
        if sent == data.len() && (r.connected || data.is_empty()) {
            return Step::Done(Ok(sent as isize));
        }
        if nonblock {
            return Step::Done(if sent > 0 {
                Ok(sent as isize)
            } else {
                Err(libc::EAGAIN)
            });
        }
        Step::Wait { progress: n > 0 }
    });
    match r {
        // SO_SNDTIMEO ran out after part of it was queued.
        Err(libc::EAGAIN) if sent > 0 => Ok(sent as isize),
        r => r,
    }
}

/// `close` of a stack socket's descriptor: the last one closes the socket (FIN; RST with
/// unread data or SO_LINGER 0; a listener stops).
pub fn close(fd: RawFd) -> R {
    let r = release(fd);
    sys::close(fd);
    r
}

/// [`close`] without closing the descriptor number (dup2/dup3 onto it replace it).
pub fn release(fd: RawFd) -> R {
    if crate::state::forked() {
        // The parent's socket lives on; this process only lets go of its descriptor.
        crate::fork::release_unclaimed(fd);
        return Ok(0);
    }
    if fdtab::orphan(fd) {
        // A connection inherited across fork: the parent's.
        fdtab::set(fd, Kind::Kernel);
        return Ok(0);
    }
    let g = g(fd)?;
    let mut inner = g.lock();
    // The stack thread may still be writing placeholders it signalled before this lock:
    // the number must not be freed (and reused) under such a write.
    crate::state::wait_signals();
    fdtab::set(fd, Kind::Kernel);
    if !inner.live() {
        // A worker process serves our queue: only the tables let go (the port stays steered
        // for it).
        inner.app.remove_fd(fd);
        return Ok(0);
    }
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    let mut closing = None;
    if let Some(s) = app.remove_fd(fd) {
        let mut io = iface.app_io(now);
        match s.kind {
            SockKind::Bound => {}
            SockKind::Conn(c) => {
                let released = app.conns.get(&c).is_none_or(|r| r.released);
                if released {
                    app.conns.remove(&c);
                } else {
                    // Peeked bytes nobody read are unread data too (RFC 2525 §2.17: RST).
                    let mut peeked = false;
                    if let Some(r) = app.conns.get_mut(&c) {
                        r.fd = None;
                        peeked = !std::mem::take(&mut r.tail).is_empty();
                    }
                    let _ = if s.opts.linger == Some(0) || peeked {
                        io.abort(c)
                    } else {
                        io.close(c)
                    };
                }
            }
            SockKind::Listener {
                ids, ips, queue, ..
            } => {
                // The last socket of an SO_REUSEPORT group closes the endpoint's listeners.
                let mut last = true;
                for id in &ids {
                    last &= app.listeners.get_mut(id).is_none_or(|g| {
                        g.retain(|&m| m != fd);
                        g.is_empty()
                    });
                }
                for c in queue {
                    // Linux resets connections nobody accepted.
                    let _ = io.abort(c);
                    if let Some(r) = app.conns.get_mut(&c) {
                        r.queued = false;
                        if r.released {
                            app.conns.remove(&c);
                        }
                    }
                }
                if last {
                    for id in &ids {
                        app.listeners.remove(id);
                    }
                    closing = Some((ids, ips, s.local.map_or(0, |l| l.port())));
                }
            }
        }
    }
    if let Some((ids, ips, port)) = closing {
        // The steering map is shared with forked worker processes: a port stays steered
        // while another process may still listen on it.
        let unsteer = g.table.alone(g.pid, g.cfg.workers);
        close_listeners(&mut inner.stack, &ids, &ips, port, unsteer, now);
    }
    g.queued(&mut inner);
    Ok(0)
}

/// The family of stack socket `fd` (`None`: not a stack socket of this process).
pub fn family_of(fd: RawFd) -> Option<Family> {
    if fdtab::kind(fd) != Kind::Stack {
        return None;
    }
    let g = started()?;
    let inner = g.lock();
    inner.app.sock(fd).map(|s| s.family)
}

/// `shutdown` on a stack socket.
pub fn shutdown(fd: RawFd, how: c_int) -> R {
    if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
        return Err(libc::EINVAL);
    }
    let g = g(fd)?;
    let mut inner = g.lock_live()?;
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    let Some(s) = app.sock(fd) else {
        return Err(libc::EBADF);
    };
    let SockKind::Conn(c) = s.kind else {
        return Err(libc::ENOTCONN);
    };
    let mut io = iface.app_io(now);
    let r = app.conns.get_mut(&c).ok_or(libc::EBADF)?;
    if !r.connected && !r.released {
        return Err(libc::ENOTCONN);
    }
    if how != libc::SHUT_WR {
        r.rd_shut = true;
    }
    if how != libc::SHUT_RD && !r.wr_shut {
        r.wr_shut = true;
        if !r.released {
            let _ = io.shutdown(c);
        }
    }
    app.sync(&io, fd, ALL);
    g.queued(&mut inner);
    Ok(0)
}

/// `getsockname` / `getpeername` on a stack socket.
///
/// # Safety
/// `addr`/`len` as for getsockname(2).
pub unsafe fn sockname(fd: RawFd, peer: bool, addr: *mut sockaddr, len: *mut socklen_t) -> R {
    let g = g(fd)?;
    let mut inner = g.lock_live()?;
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    let s = app.sock(fd).ok_or(libc::EBADF)?;
    let io = iface.app_io(now);
    let a = match (peer, &s.kind) {
        (false, _) => s.local.unwrap_or(s.family.unspecified()),
        (true, SockKind::Conn(c)) => {
            let r = app.conns.get(c).ok_or(libc::EBADF)?;
            if !r.connected || r.released {
                return Err(libc::ENOTCONN);
            }
            io.tuple(*c).ok_or(libc::ENOTCONN)?.remote()
        }
        (true, _) => return Err(libc::ENOTCONN),
    };
    // SAFETY: the caller's buffer.
    unsafe { addr::write(s.family, a, addr, len) };
    Ok(0)
}

/// Runs `f` on the tables with an endpoint handle (options, ioctl, fcntl).
pub fn with_sock<T>(
    fd: RawFd,
    f: impl FnOnce(&mut xdptcp::app::AppIo<'_>, &mut crate::state::Posix) -> Result<T, i32>,
) -> Result<T, i32> {
    let g = g(fd)?;
    let mut inner = g.lock_live()?;
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    if app.sock(fd).is_none() {
        return Err(libc::EBADF);
    }
    let mut io = iface.app_io(now);
    f(&mut io, app)
}

/// Forgets the epoll registrations of a closed kernel descriptor (an epoll instance or an
/// undecided socket).
pub fn forget(fd: RawFd) {
    crate::epoll::forget_undecided(fd);
    if let Some(g) = started() {
        let mut inner = g.lock();
        inner.app.regs.remove(&fd);
        for v in inner.app.regs.values_mut() {
            v.retain(|r: &Reg| r.epfd != fd);
        }
    }
    fdtab::set(fd, Kind::Kernel);
}

/// `dup`-like on a stack socket: `dup_fn` makes the new descriptor (the kernel duplicates the
/// placeholder); the new number becomes an alias of the socket.
pub fn dup_with(fd: RawFd, dup_fn: impl FnOnce() -> c_int) -> R {
    let g = g(fd)?;
    let mut inner = g.lock();
    if inner.app.sock(fd).is_none() {
        return Err(libc::EBADF);
    }
    let n = dup_fn();
    if n < 0 {
        return Err(crate::epoll::errno());
    }
    if !fdtab::in_range(n) {
        sys::close(n);
        return Err(libc::EMFILE);
    }
    inner.app.add_alias(fd, n);
    fdtab::set(n, Kind::Stack);
    Ok(n as isize)
}
