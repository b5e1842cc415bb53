//! Entering network namespaces created by `ip netns add` (bind-mounted under /run/netns).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

fn setns(file: &File) -> io::Result<()> {
    // SAFETY: setns only reads the fd; CLONE_NEWNET moves just this thread's net namespace.
    if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn open_named(name: &str) -> io::Result<File> {
    let path = Path::new("/run/netns").join(name);
    File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Moves the current thread into a network namespace until dropped, then moves it back.
///
/// Only the calling thread changes namespace (sockets it opens meanwhile stay in the new one).
/// Not `Send`: it must be dropped on the thread that created it.
#[derive(Debug)]
pub struct NetnsGuard {
    original: File,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl NetnsGuard {
    /// Enters the namespace `name` (as listed by `ip netns list`).
    pub fn enter(name: &str) -> io::Result<NetnsGuard> {
        let original = File::open("/proc/thread-self/ns/net")?;
        setns(&open_named(name)?)?;
        Ok(NetnsGuard {
            original,
            _not_send: std::marker::PhantomData,
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.original) {
            // Continuing in the wrong namespace would send test traffic elsewhere.
            panic!("cannot return to the original network namespace: {e}");
        }
    }
}

/// Runs `f` on a new thread that has entered the namespace `name`, and returns its result.
/// A panic in `f` is propagated to the caller.
pub fn in_netns<T, F>(name: &str, f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    let ns = open_named(name)?;
    std::thread::scope(|s| {
        let h = s.spawn(move || -> io::Result<T> {
            setns(&ns)?;
            Ok(f())
        });
        h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
