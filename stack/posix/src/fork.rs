//! `fork`: one stack per process (F-Stack's and OpenOnload's model). A child forked after the
//! stack started has no stack thread and must never touch its parent's stack (the AF_XDP
//! rings and ring indices are the parent's). The `pthread_atfork` handlers take the stack's
//! locks around the fork, so the child's copy of the tables is consistent; the child keeps
//! them aside (`Slot::Forked`), marks inherited connections unusable (EOPNOTSUPP, they stay
//! the parent's) and closes its copy of the parent's AF_XDP socket (whose ring mappings are
//! not inherited: `MADV_DONTFORK`). Only a child that uses a stack socket (an inherited
//! listener, or a socket it binds or connects) *claims* a queue: it opens a stack of its own
//! on that queue ([`Stack::open_queue`]), gives its inherited listeners fresh placeholders
//! under the same descriptor numbers and re-creates them there. A child that only closes its
//! copies (redis's BGSAVE) leaves everything to the parent.
//!
//! Queues: [`QueueTable`], a page shared by the process family, says which process serves
//! which of the queues `0..XDPTCP_WORKERS`. The first process serves queue 0. A claiming
//! child takes the lowest queue that nobody serves, that the first process serves, or whose
//! process is gone, else takes one over in turn. The process that served it then closes its
//! AF_XDP socket and stops serving (a master that only supervises steals no traffic); the
//! child's socket binds once the kernel released the old one (a few milliseconds; bounded
//! retries). docs/posix.md, "Processes", has the whole model and its limits.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use xdptcp::phy::AfXdpError;
use xdptcp::stack::StartError;

use crate::config::MAX_QUEUES;
use crate::fdtab::{self, Kind};
use crate::real::sys;
use crate::state::{self, Global, Locked, Posix, Slot, SockKind};

/// Which process serves which queue, in a `MAP_SHARED` page every forked process sees.
#[repr(C)]
pub struct QueueTable {
    /// The process that started the stack.
    origin: AtomicI32,
    /// The pid serving queue q (0: nobody).
    owner: [AtomicI32; MAX_QUEUES],
    /// Claims that found every queue served (the next takes over queue `next % queues`).
    next: AtomicI32,
}

impl QueueTable {
    /// A table in shared memory, queue 0 served by `origin` (`None`, with a line on stderr,
    /// if the page cannot be mapped).
    pub fn new(origin: i32) -> Option<&'static QueueTable> {
        // SAFETY: a fresh anonymous shared mapping, zero-filled; never unmapped.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<QueueTable>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            eprintln!(
                "xdptcp: cannot map the queue table: {}",
                std::io::Error::last_os_error()
            );
            return None;
        }
        // SAFETY: zeroed memory is a valid QueueTable (atomics of 0), aligned to a page.
        let t: &'static QueueTable = unsafe { &*(p as *const QueueTable) };
        t.origin.store(origin, Ordering::Relaxed);
        t.owner[0].store(origin, Ordering::Release);
        Some(t)
    }

    /// Whether `pid` still serves `queue`.
    pub fn serves(&self, queue: usize, pid: i32) -> bool {
        self.owner[queue].load(Ordering::Acquire) == pid
    }

    /// Takes the lowest of `queues` queues that nobody serves, the first process serves, or
    /// whose process is gone; when every one is served by a live worker process, takes
    /// them over in turn (`next`): its process stops serving it (nginx's reload forks new
    /// workers while the old ones finish).
    fn claim(&self, queues: usize, me: i32) -> usize {
        let origin = self.origin.load(Ordering::Relaxed);
        let n = queues.clamp(1, MAX_QUEUES);
        let free = (0..n).find(|&q| {
            let cur = self.owner[q].load(Ordering::Acquire);
            let free = cur == 0 || (cur == origin && cur != me) || !alive(cur);
            free && self.owner[q]
                .compare_exchange(cur, me, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        });
        free.unwrap_or_else(|| {
            let q = self.next.fetch_add(1, Ordering::AcqRel).unsigned_abs() as usize % n;
            self.owner[q].store(me, Ordering::Release);
            q
        })
    }

    /// Whether no other live process serves one of `queues` queues or is the first
    /// process (which may still listen).
    pub fn alone(&self, me: i32, queues: usize) -> bool {
        let origin = self.origin.load(Ordering::Relaxed);
        (origin == me || !alive(origin))
            && self
                .owners(queues)
                .iter()
                .all(|&p| p == 0 || p == me || !alive(p))
    }

    fn owners(&self, queues: usize) -> Vec<i32> {
        self.owner[..queues.min(MAX_QUEUES)]
            .iter()
            .map(|o| o.load(Ordering::Relaxed))
            .collect()
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The AF_XDP ring mappings of socket `xsk_fd` (`socket:[inode]` in /proc/self/maps) are
/// not inherited by forked children: a mapping holds the socket open, and a queue's socket
/// must close before another process can bind one there.
pub fn dont_fork_rings(xsk_fd: RawFd) {
    // SAFETY: fstat into a local.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(xsk_fd, &mut st) } != 0 {
        return;
    }
    let tag = format!("socket:[{}]", st.st_ino);
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut found = 0;
    for line in maps.lines().filter(|l| l.ends_with(&tag)) {
        let range = line.split(' ').next().unwrap_or("");
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: an existing mapping of this process, advice only.
        if unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTFORK) } == 0 {
            found += 1;
        }
    }
    if found == 0 {
        eprintln!("xdptcp: AF_XDP rings not found in /proc/self/maps: forked workers may not bind");
    }
}

/// The locks held across a fork by the forking thread.
type Held = (MutexGuard<'static, Slot>, Option<Locked<'static>>);

thread_local! {
    static HELD: std::cell::RefCell<Option<Held>> = const { std::cell::RefCell::new(None) };
}

extern "C" fn before_fork() {
    if state::holding_lock() {
        return;
    }
    let slot = state::slot();
    let inner = match &*slot {
        Slot::Running(g) => Some(g.lock()),
        _ => None,
    };
    HELD.with(|h| *h.borrow_mut() = Some((slot, inner)));
}

extern "C" fn after_fork_parent() {
    HELD.with(|h| drop(h.borrow_mut().take()));
}

extern "C" fn after_fork_child() {
    // The parent's stack thread, which may have been writing placeholders, is not copied.
    crate::state::SIGNALING.store(false, std::sync::atomic::Ordering::SeqCst);
    let Some((mut slot, inner)) = HELD.with(|h| h.borrow_mut().take()) else {
        return;
    };
    let parent = match &*slot {
        Slot::Running(g) => Some(*g),
        _ => None,
    };
    if let (Some(parent), Some(mut inner)) = (parent, inner) {
        let tables = std::mem::take(&mut inner.app);
        // A parent whose queue was claimed closed its socket already (the number may be
        // another descriptor by now).
        let xsk_open = inner.live();
        drop(inner);
        for (fd, s) in &tables.socks {
            if matches!(s.kind, SockKind::Conn(_)) {
                fdtab::set_orphan(*fd);
                for &a in tables.aliases.get(fd).into_iter().flatten() {
                    fdtab::set_orphan(a);
                }
            }
        }
        if xsk_open {
            sys::close(parent.xsk_fd);
        }
        *slot = Slot::Forked { parent, tables };
        state::CURRENT.store(std::ptr::null_mut(), Ordering::Release);
        state::UNCLAIMED.store(true, Ordering::Relaxed);
    }
}

/// Registers the fork and exit handlers (once per program; a forked child inherits them).
pub fn register_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registering plain extern "C" functions.
        unsafe {
            libc::atexit(state::at_exit);
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_parent),
                Some(after_fork_child),
            );
        }
    });
}

/// In an unclaimed child, `close` of an inherited descriptor: the parent's socket lives on,
/// this process forgets the number (and will not re-create it when it claims a queue).
pub fn release_unclaimed(fd: RawFd) {
    fdtab::set(fd, Kind::Kernel);
    if let Slot::Forked { tables, .. } = &mut *state::slot() {
        tables.remove_fd(fd);
        if tables.socks.is_empty() {
            crate::creds::drop_all();
        }
    }
}

/// How long a claiming child waits for the queue's previous socket to be released.
const BIND_WAIT: Duration = Duration::from_secs(5);

/// Claims a queue for this forked child: its own stack there, the inherited listeners
/// re-created. `None` (one line on stderr): no queue free, or the stack did not open.
pub fn claim(parent: &'static Global, tables: Posix) -> Option<&'static Global> {
    let cfg = parent.cfg.clone();
    let me = std::process::id() as i32;
    let before = parent.table.owners(cfg.workers);
    let queue = parent.table.claim(cfg.workers, me);
    let prev = before[queue];
    if prev != 0 && prev != parent.table.origin.load(Ordering::Relaxed) && alive(prev) {
        eprintln!(
            "xdptcp: process {me} takes queue {queue} over from process {prev} (every queue of \
             XDPTCP_WORKERS={} was served)",
            cfg.workers
        );
    }
    if !crate::creds::raise_for_claim() {
        eprintln!(
            "xdptcp: process {me} has neither root nor CAP_NET_RAW to open its queue (a uid \
             change keeps them only in a forked child that has not claimed one, single-threaded \
             at the change: docs/posix.md); its stack sockets fail with ENETDOWN"
        );
        let _ =
            parent.table.owner[queue].compare_exchange(me, 0, Ordering::AcqRel, Ordering::Relaxed);
        return None;
    }
    let o = state::stack_options(&cfg);
    let deadline = Instant::now() + BIND_WAIT;
    let mut stack = loop {
        let r = parent.lock().stack.open_queue(&o, queue, cfg.workers);
        match r {
            Ok(s) => break s,
            Err(StartError::Device(AfXdpError::Socket { source, .. }))
                if source.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => {
                eprintln!("xdptcp: process {me}, queue {queue}: {e}");
                crate::creds::after_claim();
                let _ = parent.table.owner[queue].compare_exchange(
                    me,
                    0,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                return None;
            }
        }
    };
    crate::creds::after_claim();
    let (xsk_fd, mut app) = state::stack_start(&mut stack);
    recreate(&mut stack, &mut app, tables);
    let g = Global::new((xsk_fd, app), stack, cfg, queue, me, parent.table);
    Some(Box::leak(Box::new(g)))
}

/// The inherited sockets in the child's own stack: each keeps its descriptor numbers with a
/// fresh placeholder (the inherited one is the parent's file); a listener listens again.
/// Inherited connections stay out (marked at the fork); so do epoll registrations (an epoll
/// instance created before the fork is shared with the parent, as on Linux, and watches the
/// parent's placeholders).
fn recreate(stack: &mut xdptcp::stack::Stack, app: &mut Posix, mut tables: Posix) {
    let now = xdptcp::clock::now();
    let fds: Vec<RawFd> = tables.socks.keys().copied().collect();
    // An SO_REUSEPORT group listens once: port -> the listener its members share.
    let mut groups = std::collections::HashMap::new();
    for fd in fds {
        let Some(mut s) = tables.socks.remove(&fd) else {
            continue;
        };
        if matches!(s.kind, SockKind::Conn(_)) {
            continue;
        }
        let aliases = tables.aliases.remove(&fd).unwrap_or_default();
        let Ok(e) = sys::eventfd(false) else {
            continue;
        };
        for &d in std::iter::once(&fd).chain(&aliases) {
            // SAFETY: fcntl on an inherited descriptor.
            let fl = unsafe { crate::real::fcntl(d, libc::F_GETFD, 0) };
            let _ = sys::dup3(e, d, fl >= 0 && fl & libc::FD_CLOEXEC != 0);
        }
        sys::close(e);
        s.signaled = false;
        s.out_waiters = 0;
        if let SockKind::Listener { backlog, ips, .. } = &s.kind {
            let (backlog, ips) = (*backlog, ips.clone());
            let port = s.local.map_or(0, |l| l.port());
            // An SO_REUSEPORT group listens once: (port, addresses) -> its listeners.
            let ids = match groups.get(&(port, ips.clone())) {
                Some(ids) => Ok(Vec::clone(ids)),
                None => crate::ops::open_listeners(stack, &ips, port, backlog, now),
            };
            match ids {
                Ok(ids) => {
                    for id in &ids {
                        app.listeners.entry(*id).or_default().push(fd);
                    }
                    groups.insert((port, ips.clone()), ids.clone());
                    s.kind = SockKind::Listener {
                        ids,
                        ips,
                        queue: Default::default(),
                        backlog,
                    };
                }
                Err(e) => {
                    eprintln!(
                        "xdptcp: inherited listener on port {port}: {}",
                        std::io::Error::from_raw_os_error(e)
                    );
                    s.kind = SockKind::Bound;
                }
            }
        }
        app.socks.insert(fd, s);
        for a in aliases {
            app.add_alias(fd, a);
            fdtab::set(a, Kind::Stack);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Queue claims: the first process's queue first, then free queues, then a dead
    /// process's queue, and when every queue is served by a live process, take-overs in turn.
    #[test]
    fn claims_take_the_origins_then_free_then_dead_then_turns() {
        let origin = std::process::id() as i32;
        let t = QueueTable::new(origin).unwrap();
        let (a, b, c) = (1, 2, 3); // init and kthreadd: alive
        let dead = 0x3fff_fff0; // above any pid_max
        assert!(t.serves(0, origin));
        assert_eq!(t.claim(2, a), 0);
        assert!(!t.serves(0, origin) && t.serves(0, a));
        assert_eq!(t.claim(2, b), 1);
        assert_eq!(t.claim(2, c), 0, "every queue served: take-over in turn");
        assert_eq!(t.claim(2, a), 1);
        t.owner[1].store(dead, Ordering::Relaxed);
        assert_eq!(t.claim(2, b), 1, "a dead process's queue is free");
        assert!(!t.alone(origin, 2), "workers serve beside the origin");
        let solo = QueueTable::new(origin).unwrap();
        assert!(solo.alone(origin, 1));
    }
}
