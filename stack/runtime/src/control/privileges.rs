//! Dropping root once the stack is up (`xdptcp serve --user`), and the root janitor that undoes
//! what needs root at exit.
//!
//! What a running serve still needs, and why it is enough to keep **CAP_NET_ADMIN** alone:
//! - AF_XDP: the sockets are bound and registered before the drop; receive is ring access,
//!   the TX kick is `sendto` on the socket (no privilege).
//! - The XDP program: attached before the drop; its maps are written through fds opened
//!   before (cookie secrets, listener flags; map updates on an fd need no capability since
//!   Linux 6.5, the checks moved to BPF_PROG_LOAD / BPF_MAP_CREATE). Detaching is closing the
//!   bpf_link fd: no privilege.
//! - Neighbour resolution: RTM_NEWNEIGH with NTF_USE (asking the kernel to ARP) is a
//!   modifying rtnetlink request: **CAP_NET_ADMIN**. Reads (routes, neighbours, route
//!   notifications) need nothing.
//! - `net.ipv4.ip_local_reserved_ports` is restored at exit: a network sysctl is writable by
//!   the owner of the netns's user namespace or with **CAP_NET_ADMIN** there.
//! - The stat socket (abstract, bound before) and the metrics socket (bound before): nothing.
//! - The reserved-ports record in `/run/xdptcp` (root 0700) must be removed at exit: that is
//!   the one thing CAP_NET_ADMIN does not cover. A forked **janitor** (root, no capability use
//!   beyond that, no fds but two pipes) removes it and restores the ports when asked at exit
//!   or when the serve dies (its pipe reaches EOF, also after SIGKILL).
//!
//! The drop: no_new_privs, every capability but CAP_NET_ADMIN removed from the bounding set,
//! supplementary groups cleared, real/effective/saved gid and uid set to the user's, then
//! permitted = effective = {CAP_NET_ADMIN}, inheritable and ambient empty. Verified with
//! `/proc/PID/status` by `tests/veth_privileges.rs`.

use std::ffi::CString;
use std::io;

/// CAP_NET_ADMIN (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;

/// A user to drop to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name (`--user`).
    pub name: String,
    /// Its numeric user id.
    pub uid: u32,
    /// Its primary group id.
    pub gid: u32,
}

/// Why dropping privileges failed (one line each).
#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    /// `--user` names no user of this system.
    #[error("no such user {0:?}")]
    NoSuchUser(String),
    /// A system call of the drop failed.
    #[error("dropping privileges ({step}): {source}")]
    Step {
        /// Which step (prctl, setgroups, setresgid, setresuid, capset, ...).
        step: &'static str,
        /// What the system call said.
        #[source]
        source: io::Error,
    },
    /// The root helper that restores the reserved ports at exit could not be started.
    #[error("starting the root janitor: {0}")]
    Janitor(io::Error),
}

fn step(step: &'static str, rc: libc::c_long) -> Result<(), PrivError> {
    if rc < 0 {
        return Err(PrivError::Step {
            step,
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Looks `name` up in the user database (getpwnam_r). `Ok(None)`: no such user.
pub fn lookup_user(name: &str) -> io::Result<Option<User>> {
    let cname = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: passwd is plain data; all-zero is valid.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to memory we own, of the sizes passed.
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    if out.is_null() {
        return Ok(None);
    }
    Ok(Some(User {
        name: name.to_string(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    }))
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Drops the calling process (which must be single-threaded: the credentials of other
/// threads would not change) to `user`, keeping only CAP_NET_ADMIN. See the module docs.
pub fn drop_to(user: &User) -> Result<(), PrivError> {
    // capset changes only the calling thread: refuse rather than leave a thread privileged.
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(PrivError::Step {
            step: "single thread",
            source: io::Error::other(format!("{threads} threads running; drop before any starts")),
        });
    }
    let last_cap: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    // SAFETY (whole block): plain syscalls with integer arguments or pointers to values we own.
    unsafe {
        step(
            "no_new_privs",
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as libc::c_long,
        )?;
        for cap in 0..=last_cap {
            if cap != CAP_NET_ADMIN {
                step(
                    "capability bounding set",
                    libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0)
                        as libc::c_long,
                )?;
            }
        }
        step(
            "ambient capabilities",
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            ) as libc::c_long,
        )?;
        step(
            "setgroups",
            libc::setgroups(0, std::ptr::null()) as libc::c_long,
        )?;
        step(
            "setresgid",
            libc::setresgid(user.gid, user.gid, user.gid) as libc::c_long,
        )?;
        step(
            "keep capabilities",
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) as libc::c_long,
        )?;
        step(
            "setresuid",
            libc::setresuid(user.uid, user.uid, user.uid) as libc::c_long,
        )?;
        let mut hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let keep = 1u32 << CAP_NET_ADMIN;
        let data = [
            CapData {
                effective: keep,
                permitted: keep,
                inheritable: 0,
            },
            CapData::default(),
        ];
        step(
            "capset",
            libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()),
        )?;
        step(
            "keep capabilities off",
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) as libc::c_long,
        )?;
        // The drop must be irreversible.
        if user.uid != 0 && libc::setuid(0) == 0 {
            return Err(PrivError::Step {
                step: "verify",
                source: io::Error::other("setuid(0) succeeded after the drop"),
            });
        }
    }
    Ok(())
}

/// The root janitor process (see the module docs). Dropping it asks the janitor to clean up
/// and waits (at most 2 s) for it to finish and exit.
#[derive(Debug)]
pub struct Janitor {
    pid: libc::pid_t,
    ask: libc::c_int,
    done: libc::c_int,
}

fn pipe() -> io::Result<[libc::c_int; 2]> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds)
}

impl Janitor {
    /// Forks the janitor, which runs `cleanup` once (as the current, privileged user) when
    /// asked or when this process is gone. Call while the process is single-threaded.
    pub fn spawn(cleanup: impl FnOnce()) -> Result<Janitor, PrivError> {
        let ask = pipe().map_err(PrivError::Janitor)?;
        let done = pipe().map_err(PrivError::Janitor)?;
        // SAFETY: the process is single-threaded (documented precondition), so the child may
        // run ordinary code; it never returns into the caller (it ends in `_exit`).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(PrivError::Janitor(io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: fd and signal plumbing of the child; then cleanup and _exit.
            unsafe {
                libc::dup2(ask[0], 0);
                libc::dup2(done[1], 1);
                // Hold nothing of the serve: not the bpf_link (the program must go when the
                // serve does), the AF_XDP sockets or the stat socket.
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(sig, libc::SIG_IGN);
                }
                libc::prctl(
                    libc::PR_SET_NAME,
                    c"xdptcp-janitor".as_ptr() as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                let mut b = [0u8; 1];
                // A byte (asked) or EOF (the serve is gone), or an error: clean up.
                while libc::read(0, b.as_mut_ptr().cast(), 1) < 0
                    && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                {
                }
                cleanup();
                libc::write(1, b"1".as_ptr().cast(), 1);
                libc::_exit(0);
            }
        }
        // The cleanup belongs to the child: its captures must not be dropped here (a
        // captured ReservedPorts would release the ports at once).
        std::mem::forget(cleanup);
        // SAFETY: closing the child's ends, which we own.
        unsafe {
            libc::close(ask[0]);
            libc::close(done[1]);
        }
        Ok(Janitor {
            pid,
            ask: ask[1],
            done: done[0],
        })
    }

    /// The janitor's pid.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        // SAFETY: our fds and child; poll bounds the wait.
        unsafe {
            libc::write(self.ask, b"1".as_ptr().cast(), 1);
            let mut p = libc::pollfd {
                fd: self.done,
                events: libc::POLLIN,
                revents: 0,
            };
            libc::poll(&mut p, 1, 2000);
            libc::close(self.ask);
            libc::close(self.done);
            let mut status = 0;
            // The janitor exits right after answering; do not hang if it did not.
            for _ in 0..200 {
                if libc::waitpid(self.pid, &mut status, libc::WNOHANG) != 0 {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }
}

/// The lines of `/proc/PID/status` that show a process's privileges (for tests and logs).
pub fn status_lines(pid: u32) -> io::Result<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(s.lines()
        .filter(|l| {
            [
                "Uid:",
                "Gid:",
                "Groups:",
                "CapEff:",
                "CapPrm:",
                "CapBnd:",
                "CapAmb:",
                "NoNewPrivs:",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_looked_up() {
        let root = lookup_user("root").unwrap().expect("root exists");
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup_user("xdptcp-no-such-user").unwrap(), None);
    }

    #[test]
    fn janitor_runs_cleanup_when_dropped() {
        let dir = std::env::temp_dir().join(format!("xdptcp-janitor-{}", std::process::id()));
        std::fs::write(&dir, "x").unwrap();
        let path = dir.clone();
        // The test binary is multi-threaded; the child only removes a file and exits.
        let j = Janitor::spawn(move || {
            let _ = std::fs::remove_file(&path);
        })
        .unwrap();
        assert!(dir.exists());
        drop(j);
        assert!(!dir.exists());
    }
}
