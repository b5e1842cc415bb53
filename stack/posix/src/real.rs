//! The next definitions of the interposed functions (libc's), found with
//! `dlsym(RTLD_NEXT, name)` on first use and cached. A symbol that cannot be found is a broken
//! process (no libc): that is the one place this library aborts, with a line on stderr.
//!
//! Placeholder bookkeeping (eventfd reads and writes, `dup3` over a socket) uses raw system
//! calls ([`sys`]) instead: those must never come back into the interposers.

use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{c_char, c_int, c_void};

/// Looks `name` (NUL-terminated) up once; `cache` holds the address.
pub fn lookup(cache: &AtomicUsize, name: &'static [u8]) -> usize {
    let p = cache.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: `name` is NUL-terminated; dlsym has no other precondition.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr() as *const c_char) } as usize;
    if p == 0 {
        let msg = b"xdptcp-posix: a libc function is missing (dlsym RTLD_NEXT)\n";
        // SAFETY: writing a static buffer to stderr, then exiting.
        unsafe {
            libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
            libc::_exit(127);
        }
    }
    cache.store(p, Ordering::Relaxed);
    p
}

/// `real!(name: fn(args) -> ret)` defines `real::name(args)` calling the next `name`.
macro_rules! real {
    ($($name:ident: fn($($a:ident: $t:ty),*) -> $r:ty;)*) => {$(
        /// The next (libc's) definition.
        ///
        /// # Safety
        /// The same contract as the libc function of that name.
        pub unsafe fn $name($($a: $t),*) -> $r {
            static CACHE: AtomicUsize = AtomicUsize::new(0);
            let p = lookup(&CACHE, concat!(stringify!($name), "\0").as_bytes());
            // SAFETY: `p` is the address of libc's function of this name and signature.
            let f: unsafe extern "C" fn($($t),*) -> $r = unsafe { std::mem::transmute(p) };
            unsafe { f($($a),*) }
        }
    )*};
}

use libc::{epoll_event, iovec, msghdr, nfds_t, pollfd, sigset_t, sockaddr, socklen_t, timespec};
use libc::{off_t, size_t, ssize_t};

real! {
    socket: fn(domain: c_int, ty: c_int, proto: c_int) -> c_int;
    bind: fn(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    listen: fn(fd: c_int, backlog: c_int) -> c_int;
    accept: fn(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    accept4: fn(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    connect: fn(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    read: fn(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    write: fn(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    readv: fn(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    writev: fn(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    recv: fn(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    recvfrom: fn(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    recvmsg: fn(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    send: fn(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    sendto: fn(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    sendmsg: fn(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    sendfile: fn(out: c_int, inp: c_int, off: *mut off_t, n: size_t) -> ssize_t;
    close: fn(fd: c_int) -> c_int;
    shutdown: fn(fd: c_int, how: c_int) -> c_int;
    getsockname: fn(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    getpeername: fn(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    setsockopt: fn(fd: c_int, level: c_int, name: c_int, val: *const c_void, len: socklen_t) -> c_int;
    getsockopt: fn(fd: c_int, level: c_int, name: c_int, val: *mut c_void, len: *mut socklen_t) -> c_int;
    fcntl: fn(fd: c_int, cmd: c_int, arg: libc::c_ulong) -> c_int;
    ioctl: fn(fd: c_int, req: libc::c_ulong, arg: libc::c_ulong) -> c_int;
    dup: fn(fd: c_int) -> c_int;
    dup2: fn(fd: c_int, new: c_int) -> c_int;
    dup3: fn(fd: c_int, new: c_int, flags: c_int) -> c_int;
    epoll_ctl: fn(epfd: c_int, op: c_int, fd: c_int, ev: *mut epoll_event) -> c_int;
    epoll_wait: fn(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int) -> c_int;
    epoll_pwait: fn(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int, mask: *const sigset_t) -> c_int;
    poll: fn(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    ppoll: fn(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t) -> c_int;
    close_range: fn(first: libc::c_uint, last: libc::c_uint, flags: c_int) -> c_int;
    sendmmsg: fn(fd: c_int, v: *mut libc::mmsghdr, n: libc::c_uint, flags: c_int) -> c_int;
    recvmmsg: fn(fd: c_int, v: *mut libc::mmsghdr, n: libc::c_uint, flags: c_int, t: *mut timespec) -> c_int;
    __read_chk: fn(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t;
    __recv_chk: fn(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t;
    __recvfrom_chk: fn(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    __poll_chk: fn(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int;
    __ppoll_chk: fn(fds: *mut pollfd, n: nfds_t, t: *const timespec, mask: *const sigset_t, fdslen: size_t) -> c_int;
    select: fn(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *mut libc::timeval) -> c_int;
    pselect: fn(n: c_int, r: *mut libc::fd_set, w: *mut libc::fd_set, e: *mut libc::fd_set, t: *const timespec, mask: *const sigset_t) -> c_int;
    setuid: fn(uid: libc::uid_t) -> c_int;
    setreuid: fn(ruid: libc::uid_t, euid: libc::uid_t) -> c_int;
    setresuid: fn(ruid: libc::uid_t, euid: libc::uid_t, suid: libc::uid_t) -> c_int;
}

/// Raw system calls for the placeholders (never interposed).
pub mod sys {
    use libc::c_int;

    fn ret(r: libc::c_long) -> Result<c_int, c_int> {
        if r < 0 {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        } else {
            Ok(r as c_int)
        }
    }

    /// A new non-blocking eventfd (the placeholder of a stack socket).
    pub fn eventfd(cloexec: bool) -> Result<c_int, c_int> {
        eventfd_signaled(false, cloexec)
    }

    /// [`eventfd`], readable from the start when `signaled` (its counter 1): a placeholder
    /// that is ready at once costs no separate [`signal`].
    pub fn eventfd_signaled(signaled: bool, cloexec: bool) -> Result<c_int, c_int> {
        let flags = libc::EFD_NONBLOCK | if cloexec { libc::EFD_CLOEXEC } else { 0 };
        // SAFETY: eventfd2 takes two integers.
        ret(unsafe { libc::syscall(libc::SYS_eventfd2, u32::from(signaled), flags) })
    }

    /// Makes the eventfd readable (and wakes its waiters: an edge for EPOLLET).
    pub fn signal(fd: c_int) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local; a full counter (EAGAIN) is still readable.
        unsafe { libc::syscall(libc::SYS_write, fd, &one as *const u64, 8) };
    }

    /// Makes the eventfd unreadable (reads the counter to 0).
    pub fn clear(fd: c_int) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local; EAGAIN (already 0) is fine.
        unsafe { libc::syscall(libc::SYS_read, fd, &mut v as *mut u64, 8) };
    }

    /// dup3(2).
    pub fn dup3(old: c_int, new: c_int, cloexec: bool) -> Result<c_int, c_int> {
        let flags = if cloexec { libc::O_CLOEXEC } else { 0 };
        // SAFETY: integers only.
        ret(unsafe { libc::syscall(libc::SYS_dup3, old, new, flags) })
    }

    /// close(2).
    pub fn close(fd: c_int) {
        // SAFETY: integers only.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
}
