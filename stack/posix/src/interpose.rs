//! The exported symbols that take libc's place under `LD_PRELOAD`. Each first asks
//! [`fdtab::kind`] (one atomic load, no lock, no allocation): a descriptor that is not the
//! stack's goes straight to libc's definition ([`crate::real`]). Stack sockets go to
//! [`crate::ops`], [`crate::opts`] and [`crate::epoll`].
//!
//! `fcntl` and `ioctl` are variadic in C; on x86-64 (the only target built) the optional
//! argument arrives in the same register as a third fixed argument, which is how they are
//! declared here.

#![allow(clippy::missing_safety_doc)]

use std::net::SocketAddr;
use std::os::fd::RawFd;

use libc::{
    c_int, c_void, epoll_event, iovec, msghdr, nfds_t, off_t, pollfd, sigset_t, size_t, sockaddr,
    socklen_t, ssize_t, timespec,
};

use crate::addr::Family;
use crate::fdtab::{self, Kind};
use crate::ops::{self, warn_once};
use crate::{epoll, opts, real};

fn set_errno(e: i32) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = e };
}

fn ret(r: Result<isize, i32>) -> isize {
    r.unwrap_or_else(|e| {
        set_errno(e);
        -1
    })
}

fn ret_int(r: Result<c_int, i32>) -> c_int {
    r.unwrap_or_else(|e| {
        set_errno(e);
        -1
    })
}

/// What `fd` is for this call: a thread that holds the stack's lock sees every descriptor as
/// the kernel's (`state::holding_lock`).
fn kind(fd: RawFd) -> Kind {
    match fdtab::kind(fd) {
        Kind::Kernel => Kind::Kernel,
        _ if crate::state::holding_lock() => Kind::Kernel,
        k => k,
    }
}

fn is_stack(fd: RawFd) -> bool {
    kind(fd) == Kind::Stack
}

#[no_mangle]
pub unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    let fd = unsafe { real::socket(domain, ty, proto) };
    if fd >= 0
        && Family::of_domain(domain).is_some()
        && ty & 0xf == libc::SOCK_STREAM
        && (proto == 0 || proto == libc::IPPROTO_TCP)
        && crate::state::config().is_some()
    {
        fdtab::set(fd, Kind::Undecided);
    }
    fd
}

/// The address a program passed for its undecided or stack socket `fd`, read for the
/// socket's family (`None`: another family or too short; the kernel's call then answers).
///
/// # Safety
/// `addr` points to `len` readable bytes (or is null).
unsafe fn read_addr(fd: RawFd, addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    let family = match ops::family_of(fd) {
        Some(f) => f,
        None => {
            let mut d: c_int = 0;
            let mut l = std::mem::size_of::<c_int>() as socklen_t;
            // SAFETY: an int buffer.
            let r = unsafe {
                real::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_DOMAIN,
                    &mut d as *mut c_int as *mut c_void,
                    &mut l,
                )
            };
            if r != 0 {
                return None;
            }
            Family::of_domain(d)?
        }
    };
    // SAFETY: the caller's contract.
    unsafe { crate::addr::read(addr, len, family) }
}

#[no_mangle]
pub unsafe extern "C" fn bind(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match kind(fd) {
        Kind::Undecided => {
            if let Some(r) = unsafe { read_addr(fd, addr, len) }.and_then(|a| ops::bind(fd, a)) {
                return ret(r) as c_int;
            }
            let r = unsafe { real::bind(fd, addr, len) };
            if r == 0 {
                // Bound to a kernel address: it stays the kernel's.
                fdtab::set(fd, Kind::Kernel);
            }
            r
        }
        Kind::Stack => {
            set_errno(libc::EINVAL); // already bound
            -1
        }
        _ => unsafe { real::bind(fd, addr, len) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn listen(fd: c_int, backlog: c_int) -> c_int {
    match kind(fd) {
        Kind::Stack => ret(ops::listen(fd, backlog)) as c_int,
        Kind::Undecided => {
            fdtab::set(fd, Kind::Kernel);
            unsafe { real::listen(fd, backlog) }
        }
        _ => unsafe { real::listen(fd, backlog) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if is_stack(fd) {
        return ret(unsafe { ops::accept4(fd, addr, len, 0) }) as c_int;
    }
    unsafe { real::accept(fd, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    if is_stack(fd) {
        return ret(unsafe { ops::accept4(fd, addr, len, flags) }) as c_int;
    }
    unsafe { real::accept4(fd, addr, len, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    match kind(fd) {
        Kind::Undecided | Kind::Stack => {
            match unsafe { read_addr(fd, addr, len) } {
                Some(a) => {
                    if let Some(r) = ops::connect(fd, a) {
                        return ret(r) as c_int;
                    }
                }
                None if is_stack(fd) => {
                    warn_once("connect(AF_UNSPEC) on a stack socket is not supported (EOPNOTSUPP)");
                    set_errno(libc::EOPNOTSUPP);
                    return -1;
                }
                None => {}
            }
            unsafe { real::connect(fd, addr, len) }
        }
        _ => unsafe { real::connect(fd, addr, len) },
    }
}

unsafe fn slice_mut<'a>(buf: *mut c_void, n: size_t) -> &'a mut [u8] {
    if n == 0 || buf.is_null() {
        &mut []
    } else {
        unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, n) }
    }
}

unsafe fn slice<'a>(buf: *const c_void, n: size_t) -> &'a [u8] {
    if n == 0 || buf.is_null() {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(buf as *const u8, n) }
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    if is_stack(fd) {
        return ret(ops::recv(fd, unsafe { slice_mut(buf, n) }, 0));
    }
    unsafe { real::read(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    if is_stack(fd) {
        return ret(ops::send(fd, unsafe { slice(buf, n) }, 0));
    }
    unsafe { real::write(fd, buf, n) }
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    if is_stack(fd) {
        return ret(ops::recv(fd, unsafe { slice_mut(buf, n) }, flags));
    }
    unsafe { real::recv(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if is_stack(fd) {
        let r = ops::recv(fd, unsafe { slice_mut(buf, n) }, flags);
        if r.is_ok() && !addr.is_null() && !len.is_null() {
            // Linux gives no source address for a stream socket.
            unsafe { *len = 0 };
        }
        return ret(r);
    }
    unsafe { real::recvfrom(fd, buf, n, flags, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    if is_stack(fd) {
        return ret(ops::send(fd, unsafe { slice(buf, n) }, flags));
    }
    unsafe { real::send(fd, buf, n, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    if is_stack(fd) {
        // A connected stream socket ignores the destination (as tcp_sendmsg does).
        return ret(ops::send(fd, unsafe { slice(buf, n) }, flags));
    }
    unsafe { real::sendto(fd, buf, n, flags, addr, len) }
}

/// Bound on one gathered or scattered transfer (readv/writev/recvmsg/sendmsg/sendfile).
const MAX_VEC_BYTES: usize = 4 << 20;

unsafe fn iovecs<'a>(iov: *const iovec, n: usize) -> Result<&'a [iovec], i32> {
    if n > libc::UIO_MAXIOV as usize {
        return Err(libc::EINVAL);
    }
    if n == 0 {
        return Ok(&[]);
    }
    if iov.is_null() {
        return Err(libc::EFAULT);
    }
    Ok(unsafe { std::slice::from_raw_parts(iov, n) })
}

unsafe fn gather(iov: &[iovec]) -> Vec<u8> {
    let total: usize = iov
        .iter()
        .map(|v| v.iov_len)
        .sum::<usize>()
        .min(MAX_VEC_BYTES);
    let mut out = Vec::with_capacity(total);
    for v in iov {
        let take = v.iov_len.min(total - out.len());
        out.extend_from_slice(unsafe { slice(v.iov_base, take) });
        if out.len() == total {
            break;
        }
    }
    out
}

unsafe fn scatter_recv(fd: c_int, iov: &[iovec], flags: c_int) -> Result<isize, i32> {
    let total: usize = iov
        .iter()
        .map(|v| v.iov_len)
        .sum::<usize>()
        .min(MAX_VEC_BYTES);
    let mut buf = vec![0u8; total];
    let n = ops::recv(fd, &mut buf, flags)? as usize;
    let mut off = 0;
    for v in iov {
        if off == n {
            break;
        }
        let take = v.iov_len.min(n - off);
        unsafe { slice_mut(v.iov_base, take) }.copy_from_slice(&buf[off..off + take]);
        off += take;
    }
    Ok(n as isize)
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if is_stack(fd) {
        return ret(unsafe { iovecs(iov, n.max(0) as usize) }
            .and_then(|v| unsafe { scatter_recv(fd, v, 0) }));
    }
    unsafe { real::readv(fd, iov, n) }
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    if is_stack(fd) {
        return ret(unsafe { iovecs(iov, n.max(0) as usize) }
            .and_then(|v| ops::send(fd, &unsafe { gather(v) }, 0)));
    }
    unsafe { real::writev(fd, iov, n) }
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    if is_stack(fd) {
        if msg.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        let m = unsafe { &mut *msg };
        let r = unsafe { iovecs(m.msg_iov, m.msg_iovlen) }
            .and_then(|v| unsafe { scatter_recv(fd, v, flags) });
        if r.is_ok() {
            m.msg_namelen = 0;
            m.msg_controllen = 0;
            m.msg_flags = 0;
        }
        return ret(r);
    }
    unsafe { real::recvmsg(fd, msg, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    if is_stack(fd) {
        if msg.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        let m = unsafe { &*msg };
        if m.msg_controllen != 0 {
            warn_once("sendmsg control data on a stack socket is ignored");
        }
        return ret(unsafe { iovecs(m.msg_iov, m.msg_iovlen) }
            .and_then(|v| ops::send(fd, &unsafe { gather(v) }, flags)));
    }
    unsafe { real::sendmsg(fd, msg, flags) }
}

/// sendfile to a stack socket: read from the file, send on the socket (a copy; the file
/// offset, or `*off`, advances by what was sent).
#[no_mangle]
pub unsafe extern "C" fn sendfile(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    if is_stack(inp) {
        set_errno(libc::EINVAL);
        return -1;
    }
    if !is_stack(out) {
        return unsafe { real::sendfile(out, inp, off, n) };
    }
    let mut buf = vec![0u8; n.min(1 << 20)];
    let got = if off.is_null() {
        unsafe { real::read(inp, buf.as_mut_ptr() as *mut c_void, buf.len()) }
    } else {
        unsafe { libc::pread(inp, buf.as_mut_ptr() as *mut c_void, buf.len(), *off) }
    };
    if got <= 0 {
        return got;
    }
    let got = got as usize;
    let r = ops::send(out, &buf[..got], 0);
    let sent = *r.as_ref().unwrap_or(&0) as usize;
    if off.is_null() {
        if sent < got {
            // Give back what was read and not sent.
            unsafe { libc::lseek(inp, -((got - sent) as off_t), libc::SEEK_CUR) };
        }
    } else {
        unsafe { *off += sent as off_t };
    }
    ret(r)
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    match kind(fd) {
        Kind::Stack => ret(ops::close(fd)) as c_int,
        Kind::Epoll | Kind::Undecided => {
            ops::forget(fd);
            unsafe { real::close(fd) }
        }
        Kind::Kernel => unsafe { real::close(fd) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn shutdown(fd: c_int, how: c_int) -> c_int {
    if is_stack(fd) {
        return ret(ops::shutdown(fd, how)) as c_int;
    }
    unsafe { real::shutdown(fd, how) }
}

#[no_mangle]
pub unsafe extern "C" fn getsockname(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if is_stack(fd) {
        return ret(unsafe { ops::sockname(fd, false, addr, len) }) as c_int;
    }
    unsafe { real::getsockname(fd, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn getpeername(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    if is_stack(fd) {
        return ret(unsafe { ops::sockname(fd, true, addr, len) }) as c_int;
    }
    unsafe { real::getpeername(fd, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    if is_stack(fd) {
        return ret_int(unsafe { opts::setsockopt(fd, level, name, val, len) });
    }
    unsafe { real::setsockopt(fd, level, name, val, len) }
}

#[no_mangle]
pub unsafe extern "C" fn getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> c_int {
    if is_stack(fd) {
        return ret_int(unsafe { opts::getsockopt(fd, level, name, val, len) });
    }
    unsafe { real::getsockopt(fd, level, name, val, len) }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    if is_stack(fd) {
        if let Some(r) = opts::fcntl(fd, cmd, arg) {
            return ret_int(r);
        }
    }
    unsafe { real::fcntl(fd, cmd, arg) }
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int {
    unsafe { fcntl(fd, cmd, arg) }
}

#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, req: libc::c_ulong, arg: libc::c_ulong) -> c_int {
    if is_stack(fd) {
        return ret_int(unsafe { opts::ioctl(fd, req, arg) });
    }
    unsafe { real::ioctl(fd, req, arg) }
}

#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    if is_stack(fd) {
        return ret(ops::dup_with(fd, || unsafe { real::dup(fd) })) as c_int;
    }
    unsafe { real::dup(fd) }
}

/// `dup2`/`dup3` over a stack socket close it first (as the kernel closes the old file).
/// The descriptor number itself is left to dup2/dup3, which replace it atomically.
fn before_dup_onto(old: c_int, new: c_int) -> Option<c_int> {
    if old == new {
        return None;
    }
    match kind(new) {
        Kind::Stack => {
            let _ = ops::release(new);
        }
        Kind::Epoll | Kind::Undecided => ops::forget(new),
        Kind::Kernel => {}
    }
    None
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if let Some(r) = before_dup_onto(old, new) {
        return r;
    }
    if is_stack(old) && old != new {
        return ret(ops::dup_with(old, || unsafe { real::dup2(old, new) })) as c_int;
    }
    unsafe { real::dup2(old, new) }
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if let Some(r) = before_dup_onto(old, new) {
        return r;
    }
    if is_stack(old) && old != new {
        return ret(ops::dup_with(old, || unsafe {
            real::dup3(old, new, flags)
        })) as c_int;
    }
    unsafe { real::dup3(old, new, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_ctl(
    epfd: c_int,
    op: c_int,
    fd: c_int,
    ev: *mut epoll_event,
) -> c_int {
    match kind(fd) {
        Kind::Stack => ret_int(unsafe { epoll::ctl(epfd, op, fd, ev) }),
        Kind::Undecided => {
            let r = unsafe { real::epoll_ctl(epfd, op, fd, ev) };
            if r == 0 {
                unsafe { epoll::note_undecided(epfd, op, fd, ev) };
            }
            r
        }
        _ => unsafe { real::epoll_ctl(epfd, op, fd, ev) },
    }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    if kind(epfd) == Kind::Epoll {
        return unsafe { epoll::wait(epfd, ev, max, timeout, std::ptr::null()) };
    }
    crate::state::flush_before_wait();
    unsafe { real::epoll_wait(epfd, ev, max, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    if kind(epfd) == Kind::Epoll {
        return unsafe { epoll::wait(epfd, ev, max, timeout, mask) };
    }
    crate::state::flush_before_wait();
    unsafe { real::epoll_pwait(epfd, ev, max, timeout, mask) }
}

unsafe fn any_stack(fds: *const pollfd, n: nfds_t) -> bool {
    !fds.is_null()
        && unsafe { std::slice::from_raw_parts(fds, n as usize) }
            .iter()
            .any(|p| is_stack(p.fd))
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    if unsafe { any_stack(fds, n) } {
        return unsafe { epoll::poll(fds, n, timeout, std::ptr::null()) };
    }
    crate::state::flush_before_wait();
    unsafe { real::poll(fds, n, timeout) }
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if unsafe { any_stack(fds, n) } {
        let ms = if t.is_null() {
            -1
        } else {
            let t = unsafe { *t };
            // Rounded up: never return before the deadline.
            (t.tv_sec.saturating_mul(1000) + (t.tv_nsec + 999_999) / 1_000_000).min(i32::MAX as i64)
                as c_int
        };
        return unsafe { epoll::poll(fds, n, ms, mask) };
    }
    crate::state::flush_before_wait();
    unsafe { real::ppoll(fds, n, t, mask) }
}

#[no_mangle]
pub unsafe extern "C" fn sendfile64(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t {
    // off_t is 64-bit on x86-64: the same function.
    unsafe { sendfile(out, inp, off, n) }
}

/// select over stack sockets: the sets become a pollfd array for [`epoll::poll`] (Linux's
/// own mapping: readable = POLLIN|POLLHUP|POLLERR, writable = POLLOUT|POLLERR, except =
/// POLLPRI). The timeout is not updated with the time left (Linux does; POSIX allows both).
unsafe fn select_stack(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    ms: c_int,
    mask: *const sigset_t,
) -> c_int {
    let isset =
        |set: *mut libc::fd_set, fd: c_int| !set.is_null() && unsafe { libc::FD_ISSET(fd, set) };
    let mut pfds = Vec::new();
    for fd in 0..n.min(libc::FD_SETSIZE as c_int) {
        let mut ev = 0;
        if isset(r, fd) {
            ev |= libc::POLLIN;
        }
        if isset(w, fd) {
            ev |= libc::POLLOUT;
        }
        if isset(e, fd) {
            ev |= libc::POLLPRI;
        }
        if ev != 0 {
            pfds.push(pollfd {
                fd,
                events: ev,
                revents: 0,
            });
        }
    }
    let k = unsafe { epoll::poll(pfds.as_mut_ptr(), pfds.len() as nfds_t, ms, mask) };
    if k < 0 {
        return k;
    }
    if pfds.iter().any(|p| p.revents & libc::POLLNVAL != 0) {
        set_errno(libc::EBADF);
        return -1;
    }
    for set in [r, w, e] {
        if !set.is_null() {
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0;
    for p in &pfds {
        let sets = [
            (
                r,
                libc::POLLIN,
                libc::POLLIN | libc::POLLHUP | libc::POLLERR,
            ),
            (w, libc::POLLOUT, libc::POLLOUT | libc::POLLERR),
            (e, libc::POLLPRI, libc::POLLPRI),
        ];
        for (set, asked, hit) in sets {
            if p.events & asked != 0 && p.revents & hit != 0 {
                unsafe { libc::FD_SET(p.fd, set) };
                count += 1;
            }
        }
    }
    count
}

unsafe fn select_has_stack(n: c_int, sets: [*mut libc::fd_set; 3]) -> bool {
    (0..n.min(libc::FD_SETSIZE as c_int)).any(|fd| {
        is_stack(fd)
            && sets
                .iter()
                .any(|s| !s.is_null() && unsafe { libc::FD_ISSET(fd, *s) })
    })
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    t: *mut libc::timeval,
) -> c_int {
    if unsafe { select_has_stack(n, [r, w, e]) } {
        let ms = if t.is_null() {
            -1
        } else {
            let t = unsafe { *t };
            (t.tv_sec.saturating_mul(1000) + (t.tv_usec + 999) / 1000).clamp(0, i32::MAX as i64)
                as c_int
        };
        return unsafe { select_stack(n, r, w, e, ms, std::ptr::null()) };
    }
    crate::state::flush_before_wait();
    unsafe { real::select(n, r, w, e, t) }
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    if unsafe { select_has_stack(n, [r, w, e]) } {
        let ms = if t.is_null() {
            -1
        } else {
            let t = unsafe { *t };
            (t.tv_sec.saturating_mul(1000) + (t.tv_nsec + 999_999) / 1_000_000)
                .clamp(0, i32::MAX as i64) as c_int
        };
        return unsafe { select_stack(n, r, w, e, ms, mask) };
    }
    crate::state::flush_before_wait();
    unsafe { real::pselect(n, r, w, e, t, mask) }
}

// _FORTIFY_SOURCE builds (Debian's nginx and redis) call these checked variants, which reach
// libc's internals without going through `read`, `recv` or `poll`.

fn chk_fail() -> ! {
    let msg = b"*** buffer overflow detected ***: terminated (xdptcp-posix)\n";
    // SAFETY: a static buffer to stderr, then abort (as glibc's __chk_fail).
    unsafe {
        libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
        libc::abort();
    }
}

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if is_stack(fd) {
        if n > buflen {
            chk_fail();
        }
        return unsafe { read(fd, buf, n) };
    }
    unsafe { real::__read_chk(fd, buf, n, buflen) }
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if is_stack(fd) {
        if n > buflen {
            chk_fail();
        }
        return unsafe { recv(fd, buf, n, flags) };
    }
    unsafe { real::__recv_chk(fd, buf, n, buflen, flags) }
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if is_stack(fd) {
        if n > buflen {
            chk_fail();
        }
        return unsafe { recvfrom(fd, buf, n, flags, addr, len) };
    }
    unsafe { real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, len) }
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: size_t,
) -> c_int {
    if unsafe { any_stack(fds, n) } {
        if (fdslen / std::mem::size_of::<pollfd>()) < n as usize {
            chk_fail();
        }
        return unsafe { poll(fds, n, timeout) };
    }
    crate::state::flush_before_wait();
    unsafe { real::__poll_chk(fds, n, timeout, fdslen) }
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
    fdslen: size_t,
) -> c_int {
    if unsafe { any_stack(fds, n) } {
        if (fdslen / std::mem::size_of::<pollfd>()) < n as usize {
            chk_fail();
        }
        return unsafe { ppoll(fds, n, t, mask) };
    }
    unsafe { real::__ppoll_chk(fds, n, t, mask, fdslen) }
}

/// sendmmsg on a stack socket: the messages in order, as sendmsg each; stops at the first
/// that is not sent in full (the count of messages sent so far, or its error if none).
#[no_mangle]
pub unsafe extern "C" fn sendmmsg(
    fd: c_int,
    v: *mut libc::mmsghdr,
    n: libc::c_uint,
    flags: c_int,
) -> c_int {
    if !is_stack(fd) {
        return unsafe { real::sendmmsg(fd, v, n, flags) };
    }
    if v.is_null() && n > 0 {
        set_errno(libc::EFAULT);
        return -1;
    }
    let n = n.min(libc::UIO_MAXIOV as libc::c_uint);
    let mut done = 0;
    for i in 0..n as usize {
        let m = unsafe { &mut *v.add(i) };
        let r = unsafe { sendmsg(fd, &m.msg_hdr, flags) };
        if r < 0 {
            return if done > 0 { done } else { -1 };
        }
        m.msg_len = r as libc::c_uint;
        done += 1;
        let want: usize = unsafe { iovecs(m.msg_hdr.msg_iov, m.msg_hdr.msg_iovlen) }
            .map(|v| v.iter().map(|x| x.iov_len).sum())
            .unwrap_or(0);
        if (r as usize) < want {
            break;
        }
    }
    done
}

/// recvmmsg on a stack socket: one message (a stream has no message boundaries; Linux
/// fills further entries only with data already queued, which a later call returns too).
#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    v: *mut libc::mmsghdr,
    n: libc::c_uint,
    flags: c_int,
    t: *mut timespec,
) -> c_int {
    if !is_stack(fd) {
        return unsafe { real::recvmmsg(fd, v, n, flags, t) };
    }
    if n == 0 {
        return 0;
    }
    if v.is_null() {
        set_errno(libc::EFAULT);
        return -1;
    }
    let m = unsafe { &mut *v };
    let r = unsafe { recvmsg(fd, &mut m.msg_hdr, flags & !libc::MSG_WAITFORONE) };
    if r < 0 {
        return -1;
    }
    m.msg_len = r as libc::c_uint;
    1
}

/// close_range: the stack sockets in the range are released first, then the kernel closes
/// the numbers (with CLOSE_RANGE_CLOEXEC only the flag is set: nothing to release).
#[no_mangle]
pub unsafe extern "C" fn close_range(
    first: libc::c_uint,
    last: libc::c_uint,
    flags: c_int,
) -> c_int {
    if flags & libc::CLOSE_RANGE_CLOEXEC as c_int == 0 {
        let hi = (last as u64).min(crate::fdtab::MAX_FDS as u64 - 1);
        for fd in first as u64..=hi {
            match kind(fd as c_int) {
                Kind::Stack => {
                    let _ = ops::release(fd as c_int);
                }
                Kind::Epoll | Kind::Undecided => ops::forget(fd as c_int),
                Kind::Kernel => {}
            }
        }
    }
    unsafe { real::close_range(first, last, flags) }
}

/// setuid: in a forked child that has not claimed its queue yet, a change from root keeps
/// what the claim needs (`creds`: nginx's `user nobody;` workers).
#[no_mangle]
pub unsafe extern "C" fn setuid(uid: libc::uid_t) -> c_int {
    let kept = crate::creds::before_uid_change(uid, uid, uid);
    let r = unsafe { real::setuid(uid) };
    crate::creds::after_uid_change(kept, r == 0);
    r
}

/// setreuid: as [`setuid`] (-1 leaves an id unchanged; the saved id follows the effective
/// one when the real one changes or the effective one becomes other than the real one).
#[no_mangle]
pub unsafe extern "C" fn setreuid(ruid: libc::uid_t, euid: libc::uid_t) -> c_int {
    let suid = if ruid != u32::MAX || euid != u32::MAX {
        euid
    } else {
        u32::MAX
    };
    let kept = crate::creds::before_uid_change(ruid, euid, suid);
    let r = unsafe { real::setreuid(ruid, euid) };
    crate::creds::after_uid_change(kept, r == 0);
    r
}

/// setresuid: as [`setuid`].
#[no_mangle]
pub unsafe extern "C" fn setresuid(
    ruid: libc::uid_t,
    euid: libc::uid_t,
    suid: libc::uid_t,
) -> c_int {
    let kept = crate::creds::before_uid_change(ruid, euid, suid);
    let r = unsafe { real::setresuid(ruid, euid, suid) };
    crate::creds::after_uid_change(kept, r == 0);
    r
}
