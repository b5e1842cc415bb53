//! setsockopt / getsockopt / fcntl / ioctl on stack sockets, answered the way Linux answers
//! them for a TCP socket. Options the stack acts on: TCP_NODELAY, SO_LINGER (linger 0: close
//! sends a RST), SO_ERROR, TCP_INFO, SO_RCVTIMEO / SO_SNDTIMEO. Options stored and reported back but not acted on yet
//! (one line on stderr the first time): TCP_KEEPIDLE/INTVL/CNT (SO_KEEPALIVE is applied, with
//! the stack's tcp_keepalive_* timings), SO_RCVBUF / SO_SNDBUF (tcp_rmem / tcp_wmem apply),
//! TCP_DEFER_ACCEPT, TCP_FASTOPEN. Unknown options: ENOPROTOOPT and one line.

use std::os::fd::RawFd;

use libc::{c_int, c_void, socklen_t};

use crate::addr::Family;
use crate::ops::{warn_once, with_sock};
use crate::state::SockKind;

/// Linux's caps (include/net/tcp.h).
const MAX_TCP_KEEPIDLE: i32 = 32767;
const MAX_TCP_KEEPINTVL: i32 = 32767;
const MAX_TCP_KEEPCNT: i32 = 127;

/// # Safety
/// `val`/`len` as for setsockopt(2).
pub unsafe fn setsockopt(
    fd: RawFd,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> Result<c_int, i32> {
    let int = || -> Result<i32, i32> {
        if val.is_null() {
            return Err(libc::EFAULT);
        }
        if (len as usize) < 4 {
            return Err(libc::EINVAL);
        }
        // SAFETY: at least 4 bytes.
        Ok(unsafe { std::ptr::read_unaligned(val as *const i32) })
    };
    with_sock(fd, |io, app| {
        let s = app.sock_mut(fd).ok_or(libc::EBADF)?;
        let conn = match s.kind {
            SockKind::Conn(c) => Some(c),
            _ => None,
        };
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => s.opts.reuseaddr = int()? != 0,
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => {
                s.opts.reuseport = int()? != 0;
                if s.opts.reuseport {
                    warn_once("SO_REUSEPORT is accepted; one stack listener per port so far");
                }
            }
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => {
                s.opts.keepalive = int()? != 0;
                if let Some(c) = conn {
                    let _ = io.set_keepalive(c, s.opts.keepalive);
                }
            }
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                if val.is_null() {
                    return Err(libc::EFAULT);
                }
                if (len as usize) < std::mem::size_of::<libc::linger>() {
                    return Err(libc::EINVAL);
                }
                // SAFETY: size checked.
                let l: libc::linger =
                    unsafe { std::ptr::read_unaligned(val as *const libc::linger) };
                s.opts.linger = (l.l_onoff != 0).then_some(l.l_linger.max(0));
                if s.opts.linger.is_some_and(|t| t > 0) {
                    warn_once("SO_LINGER with a timeout: close does not block (the FIN is sent)");
                }
            }
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
                s.opts.rcvbuf = Some(int()?);
                warn_once(
                    "SO_RCVBUF/SO_SNDBUF are stored; the stack's buffers follow tcp_rmem/tcp_wmem",
                );
            }
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                s.opts.sndbuf = Some(int()?);
                warn_once(
                    "SO_RCVBUF/SO_SNDBUF are stored; the stack's buffers follow tcp_rmem/tcp_wmem",
                );
            }
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) => {
                // Linux sock_set_timeout: a timeval; usec out of range is EDOM; zero is
                // "forever"; a negative time is "do not wait".
                if val.is_null() {
                    return Err(libc::EFAULT);
                }
                if (len as usize) < std::mem::size_of::<libc::timeval>() {
                    return Err(libc::EINVAL);
                }
                // SAFETY: size checked.
                let tv: libc::timeval =
                    unsafe { std::ptr::read_unaligned(val as *const libc::timeval) };
                if !(0..1_000_000).contains(&tv.tv_usec) {
                    return Err(libc::EDOM);
                }
                let t = if tv.tv_sec < 0 {
                    Some(std::time::Duration::ZERO)
                } else if tv.tv_sec == 0 && tv.tv_usec == 0 {
                    None
                } else {
                    Some(
                        std::time::Duration::from_secs(tv.tv_sec as u64)
                            + std::time::Duration::from_micros(tv.tv_usec as u64),
                    )
                };
                if name == libc::SO_RCVTIMEO {
                    s.opts.rcvtimeo = t;
                } else {
                    s.opts.sndtimeo = t;
                }
            }
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => {
                s.opts.nodelay = int()? != 0;
                if let Some(c) = conn {
                    let _ = io.set_nodelay(c, s.opts.nodelay);
                }
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => {
                warn_once("TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT are stored; the stack's tcp_keepalive_* settings apply");
                let v = int()?;
                if !(1..=MAX_TCP_KEEPIDLE).contains(&v) {
                    return Err(libc::EINVAL);
                }
                s.opts.keepidle = Some(v);
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => {
                warn_once("TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT are stored; the stack's tcp_keepalive_* settings apply");
                let v = int()?;
                if !(1..=MAX_TCP_KEEPINTVL).contains(&v) {
                    return Err(libc::EINVAL);
                }
                s.opts.keepintvl = Some(v);
            }
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => {
                warn_once("TCP_KEEPIDLE/TCP_KEEPINTVL/TCP_KEEPCNT are stored; the stack's tcp_keepalive_* settings apply");
                let v = int()?;
                if !(1..=MAX_TCP_KEEPCNT).contains(&v) {
                    return Err(libc::EINVAL);
                }
                s.opts.keepcnt = Some(v);
            }
            (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) => {
                s.opts.defer_accept = int()?.max(0);
                warn_once("TCP_DEFER_ACCEPT is accepted; connections are handed over at once");
            }
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN) => {
                s.opts.fastopen = int()?;
                warn_once("TCP_FASTOPEN is accepted; the stack answers without Fast Open");
            }
            (libc::IPPROTO_TCP, libc::TCP_QUICKACK) => {
                int()?;
            }
            (libc::IPPROTO_TCP, libc::TCP_CORK) => {
                int()?;
                warn_once("TCP_CORK is accepted but not applied on stack sockets");
            }
            // Linux: only before bind (a stack socket is bound or connected already).
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.family == Family::V6 => {
                int()?;
                return Err(libc::EINVAL);
            }
            _ => {
                warn_once(
                    "an unsupported socket option was refused on a stack socket (ENOPROTOOPT)",
                );
                return Err(libc::ENOPROTOOPT);
            }
        }
        Ok(0)
    })
}

/// `struct tcp_info` states (Linux `TCP_ESTABLISHED` = 1 ...).
fn linux_state(s: xdptcp::tcp::conn::State) -> u8 {
    use xdptcp::tcp::conn::State::*;
    match s {
        Established => 1,
        SynSent => 2,
        SynReceived => 3,
        FinWait1 => 4,
        FinWait2 => 5,
        TimeWait => 6,
        Closed => 7,
        CloseWait => 8,
        LastAck => 9,
        Closing => 11,
    }
}

/// # Safety
/// `val`/`len` as for getsockopt(2).
pub unsafe fn getsockopt(
    fd: RawFd,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut socklen_t,
) -> Result<c_int, i32> {
    if val.is_null() || len.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller's length.
    let cap = unsafe { *len } as usize;
    let put = |bytes: &[u8]| {
        let n = bytes.len().min(cap);
        // SAFETY: at most `cap` bytes into the caller's buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), val as *mut u8, n);
            *len = n as socklen_t;
        }
    };
    let put_int = |v: i32| put(&v.to_ne_bytes());
    with_sock(fd, |io, app| {
        let s = app.sock(fd).ok_or(libc::EBADF)?;
        let conn = match s.kind {
            SockKind::Conn(c) => Some(c),
            _ => None,
        };
        match (level, name) {
            (libc::SOL_SOCKET, libc::SO_ERROR) => {
                let e = conn
                    .and_then(|c| app.conns.get_mut(&c))
                    .and_then(|r| r.err.take())
                    .unwrap_or(0);
                put_int(e);
                // The error is consumed: readiness may change.
                app.sync(io, fd, 0);
            }
            (libc::SOL_SOCKET, libc::SO_TYPE) => put_int(libc::SOCK_STREAM),
            (libc::SOL_SOCKET, libc::SO_DOMAIN) => put_int(s.family.domain()),
            (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.family == Family::V6 => {
                put_int(s.v6only as i32)
            }
            (libc::SOL_SOCKET, libc::SO_PROTOCOL) => put_int(libc::IPPROTO_TCP),
            (libc::SOL_SOCKET, libc::SO_ACCEPTCONN) => {
                put_int(matches!(s.kind, SockKind::Listener { .. }) as i32)
            }
            (libc::SOL_SOCKET, libc::SO_REUSEADDR) => put_int(s.opts.reuseaddr as i32),
            (libc::SOL_SOCKET, libc::SO_REUSEPORT) => put_int(s.opts.reuseport as i32),
            (libc::SOL_SOCKET, libc::SO_KEEPALIVE) => put_int(s.opts.keepalive as i32),
            // Linux doubles the value set (for bookkeeping overhead).
            (libc::SOL_SOCKET, libc::SO_RCVBUF) => {
                put_int(s.opts.rcvbuf.map_or(131072, |v| v.saturating_mul(2)))
            }
            (libc::SOL_SOCKET, libc::SO_SNDBUF) => {
                put_int(s.opts.sndbuf.map_or(16384, |v| v.saturating_mul(2)))
            }
            (libc::SOL_SOCKET, libc::SO_LINGER) => {
                let l = libc::linger {
                    l_onoff: s.opts.linger.is_some() as c_int,
                    l_linger: s.opts.linger.unwrap_or(0),
                };
                // SAFETY: linger is plain data.
                let b: [u8; 8] = unsafe { std::mem::transmute(l) };
                put(&b);
            }
            (libc::SOL_SOCKET, libc::SO_RCVTIMEO | libc::SO_SNDTIMEO) => {
                let t = if name == libc::SO_RCVTIMEO {
                    s.opts.rcvtimeo
                } else {
                    s.opts.sndtimeo
                };
                let t = t.unwrap_or_default();
                let tv = libc::timeval {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_usec: t.subsec_micros() as libc::suseconds_t,
                };
                // SAFETY: timeval is plain data.
                let b: [u8; 16] = unsafe { std::mem::transmute(tv) };
                put(&b);
            }
            (libc::IPPROTO_TCP, libc::TCP_NODELAY) => put_int(s.opts.nodelay as i32),
            (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE) => put_int(s.opts.keepidle.unwrap_or(7200)),
            (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL) => put_int(s.opts.keepintvl.unwrap_or(75)),
            (libc::IPPROTO_TCP, libc::TCP_KEEPCNT) => put_int(s.opts.keepcnt.unwrap_or(9)),
            (libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) => put_int(s.opts.defer_accept),
            (libc::IPPROTO_TCP, libc::TCP_FASTOPEN) => put_int(s.opts.fastopen),
            (libc::IPPROTO_TCP, libc::TCP_INFO) => {
                // SAFETY: tcp_info is plain data.
                let mut ti: libc::tcp_info = unsafe { std::mem::zeroed() };
                ti.tcpi_state = match (&s.kind, conn.and_then(|c| io.info(c))) {
                    (SockKind::Listener { .. }, _) => 10, // TCP_LISTEN
                    (_, Some(i)) => linux_state(i.state),
                    _ => 7, // TCP_CLOSE
                };
                if let Some(i) = conn.and_then(|c| io.info(c)) {
                    let mss = i.negotiated.mss.max(1) as u32;
                    ti.tcpi_retransmits = i.retransmits.min(255) as u8;
                    ti.tcpi_snd_mss = mss;
                    ti.tcpi_rtt = i.srtt.map_or(0, |d| d.as_micros() as u32);
                    ti.tcpi_rttvar = i.rttvar.map_or(0, |d| d.as_micros() as u32);
                    ti.tcpi_rto = i.rto.map_or(0, |d| d.as_micros() as u32);
                    ti.tcpi_snd_cwnd = i.cwnd.map_or(0, |c| c / mss);
                    ti.tcpi_snd_ssthresh = i.ssthresh.map_or(0, |c| c / mss);
                    ti.tcpi_unacked = i.in_flight / mss;
                    ti.tcpi_total_retrans = i.counters.retrans_segs;
                }
                let size = std::mem::size_of::<libc::tcp_info>();
                // SAFETY: reading tcp_info as bytes.
                let b = unsafe { std::slice::from_raw_parts(&ti as *const _ as *const u8, size) };
                put(b);
            }
            _ => {
                warn_once("an unsupported socket option was asked of a stack socket (ENOPROTOOPT)");
                return Err(libc::ENOPROTOOPT);
            }
        }
        Ok(0)
    })
}

/// `fcntl` on a stack socket: the status flags are the socket's (O_NONBLOCK, shared by its
/// duplicates as Linux shares them in the open file description); descriptor flags
/// (FD_CLOEXEC) are the placeholder's, i.e. the kernel's; F_DUPFD makes an alias.
/// `None`: let libc do it.
pub fn fcntl(fd: RawFd, cmd: c_int, arg: libc::c_ulong) -> Option<Result<c_int, i32>> {
    match cmd {
        libc::F_GETFL => Some(with_sock(fd, |_, app| {
            let nb = app.sock(fd).is_some_and(|s| s.nonblock);
            Ok(libc::O_RDWR | if nb { libc::O_NONBLOCK } else { 0 })
        })),
        libc::F_SETFL => Some(with_sock(fd, |_, app| {
            if let Some(s) = app.sock_mut(fd) {
                s.nonblock = arg as c_int & libc::O_NONBLOCK != 0;
            }
            Ok(0)
        })),
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => Some(
            // SAFETY: fcntl on the placeholder; the kernel duplicates it.
            crate::ops::dup_with(fd, || unsafe { crate::real::fcntl(fd, cmd, arg) })
                .map(|n| n as c_int),
        ),
        _ => None,
    }
}

/// `ioctl` on a stack socket: FIONBIO, FIONREAD; others ENOTTY with one line.
///
/// # Safety
/// `arg` points to an int for the two requests handled.
pub unsafe fn ioctl(fd: RawFd, req: libc::c_ulong, arg: libc::c_ulong) -> Result<c_int, i32> {
    let p = arg as *mut c_int;
    match req {
        libc::FIONBIO => {
            if p.is_null() {
                return Err(libc::EFAULT);
            }
            // SAFETY: the caller's int.
            let on = unsafe { std::ptr::read_unaligned(p) } != 0;
            with_sock(fd, |_, app| {
                if let Some(s) = app.sock_mut(fd) {
                    s.nonblock = on;
                }
                Ok(0)
            })
        }
        libc::FIONREAD => {
            if p.is_null() {
                return Err(libc::EFAULT);
            }
            let n = with_sock(fd, |io, app| match app.sock(fd).map(|s| &s.kind) {
                Some(SockKind::Conn(c)) => {
                    Ok(io.recv_available(*c) + app.conns.get(c).map_or(0, |r| r.tail.len()))
                }
                Some(SockKind::Listener { .. }) => Err(libc::EINVAL),
                _ => Ok(0),
            })?;
            // SAFETY: the caller's int.
            unsafe { std::ptr::write_unaligned(p, n.min(i32::MAX as usize) as c_int) };
            Ok(0)
        }
        _ => {
            warn_once("an unsupported ioctl was refused on a stack socket (ENOTTY)");
            Err(libc::ENOTTY)
        }
    }
}
