//! epoll and poll over a mix of stack sockets and kernel descriptors. The kernel does the
//! sleeping: a stack socket is registered as its placeholder eventfd (input only, with the
//! application's EPOLLET / EPOLLONESHOT / EPOLLEXCLUSIVE flags and a tagged `data`), and the
//! events the kernel returns for it are translated into the socket's real readiness and the
//! application's `data` (see `state.rs` for the placeholder invariant).

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use libc::{c_int, epoll_event, pollfd};

use crate::fdtab::{self, Kind};
use crate::real;
use crate::state::{started, Reg, EPOLLERR, EPOLLHUP, EPOLLIN};

/// `data` of a placeholder's kernel registration: TAG | fd. Userspace pointers (below 2^47)
/// and small integers never carry these top bits.
const TAG: u64 = 0xfd7c_0000_0000_0000;
const TAG_MASK: u64 = 0xffff_0000_0000_0000;
const KEEP: u32 =
    (libc::EPOLLET | libc::EPOLLONESHOT | libc::EPOLLEXCLUSIVE | libc::EPOLLWAKEUP) as u32;

/// Registers (`add`) or modifies the placeholder `fd` in `epfd` for `events`.
pub fn kernel_register(epfd: RawFd, fd: RawFd, events: u32, add: bool) -> c_int {
    let mut ev = epoll_event {
        events: EPOLLIN | (events & KEEP),
        u64: TAG | fd as u32 as u64,
    };
    let op = if add {
        libc::EPOLL_CTL_ADD
    } else {
        libc::EPOLL_CTL_MOD
    };
    // SAFETY: a valid event.
    let r = unsafe { real::epoll_ctl(epfd, op, fd, &mut ev) };
    if r < 0 && add && errno() == libc::EEXIST {
        ev.events &= !(libc::EPOLLEXCLUSIVE as u32);
        // SAFETY: as above.
        return unsafe { real::epoll_ctl(epfd, libc::EPOLL_CTL_MOD, fd, &mut ev) };
    }
    r
}

pub fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `epoll_ctl` for a stack socket or an undecided one (`Err(errno)`).
///
/// # Safety
/// `ev` as for epoll_ctl(2).
pub unsafe fn ctl(epfd: RawFd, op: c_int, fd: RawFd, ev: *mut epoll_event) -> Result<c_int, i32> {
    let g = crate::state::for_use(fd)?;
    let (events, data) = if ev.is_null() {
        (0, 0)
    } else {
        // SAFETY: the caller's event (packed on x86_64: read it unaligned).
        let e = unsafe { std::ptr::read_unaligned(ev) };
        (e.events, e.u64)
    };
    if op != libc::EPOLL_CTL_DEL && ev.is_null() {
        return Err(libc::EFAULT);
    }
    let stack = fdtab::kind(fd) == Kind::Stack;
    let mut inner = g.lock();
    if !inner.live() {
        // A process whose queue a worker process took over may still unregister (nginx's
        // old worker on reload).
        if op != libc::EPOLL_CTL_DEL {
            return Err(crate::state::not_live());
        }
        let regs = inner.app.regs.entry(fd).or_default();
        let pos = regs
            .iter()
            .position(|r| r.epfd == epfd)
            .ok_or(libc::ENOENT)?;
        regs.remove(pos);
        // SAFETY: DEL ignores the event.
        unsafe { real::epoll_ctl(epfd, op, fd, std::ptr::null_mut()) };
        return Ok(0);
    }
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    let regs = app.regs.entry(fd).or_default();
    let pos = regs.iter().position(|r| r.epfd == epfd);
    // Update the table first (the watched mask), then the placeholder, then the kernel: the
    // kernel polls the eventfd when it is added or modified.
    let old = match op {
        libc::EPOLL_CTL_ADD => {
            if pos.is_some() {
                return Err(libc::EEXIST);
            }
            regs.push(Reg { epfd, events, data });
            None
        }
        libc::EPOLL_CTL_MOD => {
            let i = pos.ok_or(libc::ENOENT)?;
            Some(std::mem::replace(&mut regs[i], Reg { epfd, events, data }))
        }
        libc::EPOLL_CTL_DEL => Some(regs.remove(pos.ok_or(libc::ENOENT)?)),
        _ => return Err(libc::EINVAL),
    };
    if stack {
        app.sync(&iface.app_io(now), fd, 0);
    }
    let r = if !stack {
        // An undecided (kernel) socket: the kernel holds the application's own registration.
        // SAFETY: the caller's arguments.
        unsafe { real::epoll_ctl(epfd, op, fd, ev) }
    } else if op == libc::EPOLL_CTL_DEL {
        // SAFETY: DEL ignores the event.
        unsafe { real::epoll_ctl(epfd, op, fd, std::ptr::null_mut()) }
    } else {
        kernel_register(epfd, fd, events, op == libc::EPOLL_CTL_ADD)
    };
    if r < 0 {
        let e = errno();
        // Undo the table change.
        let regs = app.regs.entry(fd).or_default();
        match (op, old) {
            (libc::EPOLL_CTL_ADD, _) => regs.retain(|r| r.epfd != epfd),
            (libc::EPOLL_CTL_MOD, Some(o)) => {
                if let Some(r) = regs.iter_mut().find(|r| r.epfd == epfd) {
                    *r = o;
                }
            }
            (_, Some(o)) => regs.push(o),
            _ => {}
        }
        if stack {
            app.sync(&iface.app_io(now), fd, 0);
        }
        return Err(e);
    }
    if stack {
        fdtab::set(epfd, Kind::Epoll);
    }
    Ok(0)
}

fn remaining(deadline: Option<Instant>) -> c_int {
    match deadline {
        None => -1,
        Some(d) => d
            .saturating_duration_since(Instant::now())
            .as_millis()
            .min(i32::MAX as u128) as c_int,
    }
}

fn deadline_of(timeout: c_int) -> Option<Instant> {
    (timeout >= 0).then(|| Instant::now() + Duration::from_millis(timeout as u64))
}

/// `epoll_wait` / `epoll_pwait` on an instance that holds stack sockets: the kernel's events
/// with the placeholders' translated; a wake-up with nothing left after translation sleeps
/// again until the timeout.
///
/// # Safety
/// As for epoll_pwait(2).
pub unsafe fn wait(
    epfd: RawFd,
    events: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    if let Some(g) = started() {
        g.flush();
    }
    let deadline = deadline_of(timeout);
    let mut t = timeout;
    let mut spurious = false;
    loop {
        if spurious {
            std::thread::sleep(Duration::from_micros(200));
        }
        // SAFETY: the caller's arguments.
        let n = unsafe { real::epoll_pwait(epfd, events, max, t, mask) };
        if n <= 0 {
            return n;
        }
        // SAFETY: the kernel wrote n events.
        let evs = unsafe { std::slice::from_raw_parts_mut(events, n as usize) };
        let kept = translate(epfd, evs);
        if kept > 0 {
            return kept as c_int;
        }
        t = remaining(deadline);
        if t == 0 {
            return 0;
        }
        spurious = true;
    }
}

/// Rewrites the placeholders' events in place, drops those not ready; returns how many are
/// left (compacted to the front).
fn translate(epfd: RawFd, evs: &mut [epoll_event]) -> usize {
    if !evs.iter().any(|e| e.u64 & TAG_MASK == TAG) {
        return evs.len();
    }
    let Some(g) = started() else {
        return evs.len();
    };
    let Ok(mut inner) = g.lock_live() else {
        return 0;
    };
    let now = xdptcp::clock::now();
    let (iface, app) = inner.split();
    let io = iface.app_io(now);
    let mut kept = 0;
    for i in 0..evs.len() {
        let e = evs[i];
        let data = e.u64;
        if data & TAG_MASK != TAG {
            evs[kept] = e;
            kept += 1;
            continue;
        }
        let fd = (data & 0xffff_ffff) as RawFd;
        let Some(reg) = app
            .regs
            .get(&fd)
            .and_then(|v| v.iter().find(|r| r.epfd == epfd))
            .copied()
        else {
            continue;
        };
        let m = app.ready(&io, fd) & (reg.events | EPOLLERR | EPOLLHUP);
        if m == 0 {
            continue;
        }
        evs[kept] = epoll_event {
            events: m,
            u64: reg.data,
        };
        kept += 1;
    }
    kept
}

/// poll(2) bits <-> epoll bits (the values are the same on Linux for these).
fn to_epoll(ev: i16) -> u32 {
    ev as u16 as u32
}

/// `poll` / `ppoll` over descriptors some of which are stack sockets.
///
/// # Safety
/// As for ppoll(2).
pub unsafe fn poll(
    fds: *mut pollfd,
    n: libc::nfds_t,
    timeout: c_int,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: the caller's array.
    let fds = unsafe { std::slice::from_raw_parts_mut(fds, n as usize) };
    // A forked child polling an inherited listener claims its queue here.
    let first = fds.iter().find(|p| fdtab::kind(p.fd) == Kind::Stack);
    let g = match (started(), first) {
        (Some(g), _) => g,
        (None, Some(p)) if crate::state::forked() => match crate::state::for_use(p.fd) {
            Ok(g) => g,
            Err(e) => {
                // SAFETY: the calling thread's errno.
                unsafe { *libc::__errno_location() = e };
                return -1;
            }
        },
        (None, _) => return unsafe { ppoll_ms(fds, timeout, mask) },
    };
    g.flush();
    let stack: Vec<bool> = fds
        .iter()
        .map(|p| fdtab::kind(p.fd) == Kind::Stack)
        .collect();
    let deadline = deadline_of(timeout);
    let mut copy: Vec<pollfd> = fds.to_vec();
    let mut spurious = false;
    loop {
        // Stack sockets first: ready ones answer at once.
        let mut ready = 0;
        {
            let mut inner = match g.lock_live() {
                Ok(l) => l,
                Err(e) => {
                    // SAFETY: the calling thread's errno.
                    unsafe { *libc::__errno_location() = e };
                    return -1;
                }
            };
            let now = xdptcp::clock::now();
            let (iface, app) = inner.split();
            let io = iface.app_io(now);
            for (i, p) in fds.iter_mut().enumerate() {
                if !stack[i] {
                    continue;
                }
                let want = to_epoll(p.events) | EPOLLERR | EPOLLHUP;
                let m = app.ready(&io, p.fd) & want;
                p.revents = m as u16 as i16;
                if m != 0 {
                    ready += 1;
                }
                copy[i] = pollfd {
                    fd: if m != 0 { -1 } else { p.fd },
                    events: libc::POLLIN,
                    revents: 0,
                };
            }
            if ready == 0 {
                for (i, p) in fds.iter().enumerate() {
                    if stack[i] && p.events & libc::POLLOUT != 0 {
                        if let Some(s) = app.sock_mut(p.fd) {
                            s.out_waiters += 1;
                        }
                        app.sync(&io, p.fd, 0);
                    }
                }
            }
        }
        for (i, p) in fds.iter().enumerate() {
            if !stack[i] {
                copy[i] = pollfd { revents: 0, ..*p };
            }
        }
        if spurious && ready == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
        let t = if ready > 0 { 0 } else { remaining(deadline) };
        // SAFETY: a valid array.
        let r = unsafe { ppoll_ms(&mut copy, t, mask) };
        let live = if ready == 0 { g.lock_live().ok() } else { None };
        if let Some(mut inner) = live {
            let now = xdptcp::clock::now();
            let (iface, app) = inner.split();
            let io = iface.app_io(now);
            for (i, p) in fds.iter().enumerate() {
                if stack[i] && p.events & libc::POLLOUT != 0 {
                    if let Some(s) = app.sock_mut(p.fd) {
                        s.out_waiters = s.out_waiters.saturating_sub(1);
                    }
                    app.sync(&io, p.fd, 0);
                }
            }
        }
        if r < 0 {
            return r;
        }
        let mut count = ready;
        for (i, p) in fds.iter_mut().enumerate() {
            if !stack[i] {
                p.revents = copy[i].revents;
                if p.revents != 0 {
                    count += 1;
                }
            }
        }
        if count > 0 || remaining(deadline) == 0 {
            return count;
        }
        if r > 0 {
            // A placeholder woke us: re-check the stack sockets.
            spurious = true;
        }
    }
}

/// ppoll with a millisecond timeout (-1: forever).
unsafe fn ppoll_ms(fds: &mut [pollfd], timeout: c_int, mask: *const libc::sigset_t) -> c_int {
    let ts;
    let tp = if timeout < 0 {
        std::ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout / 1000) as libc::time_t,
            tv_nsec: ((timeout % 1000) as libc::c_long) * 1_000_000,
        };
        &ts as *const libc::timespec
    };
    // SAFETY: a valid array and timespec.
    unsafe { real::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, tp, mask) }
}

/// Registrations of undecided sockets (kernel sockets that may still move to the stack),
/// kept without the stack so they can move along ([`take_undecided`]).
static UNDECIDED: std::sync::Mutex<Option<std::collections::HashMap<RawFd, Vec<Reg>>>> =
    std::sync::Mutex::new(None);

/// Records an `epoll_ctl` the kernel accepted on an undecided socket.
///
/// # Safety
/// `ev` as for epoll_ctl(2).
pub unsafe fn note_undecided(epfd: RawFd, op: c_int, fd: RawFd, ev: *mut epoll_event) {
    let mut t = UNDECIDED.lock().unwrap_or_else(|e| e.into_inner());
    let v = t
        .get_or_insert_with(Default::default)
        .entry(fd)
        .or_default();
    v.retain(|r| r.epfd != epfd);
    if op != libc::EPOLL_CTL_DEL && !ev.is_null() {
        // SAFETY: the caller's event.
        let e = unsafe { std::ptr::read_unaligned(ev) };
        v.push(Reg {
            epfd,
            events: e.events,
            data: e.u64,
        });
    }
}

/// The registrations of undecided `fd` (removed from the table).
pub fn take_undecided(fd: RawFd) -> Vec<Reg> {
    let mut t = UNDECIDED.lock().unwrap_or_else(|e| e.into_inner());
    t.as_mut().and_then(|m| m.remove(&fd)).unwrap_or_default()
}

/// Forgets `fd` as a socket and as an epoll instance.
pub fn forget_undecided(fd: RawFd) {
    let mut t = UNDECIDED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = t.as_mut() {
        m.remove(&fd);
        for v in m.values_mut() {
            v.retain(|r| r.epfd != fd);
        }
    }
}
