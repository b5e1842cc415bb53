//! Small OS helpers: namespaces, core pinning, the stop flag set by SIGINT/SIGTERM.

use crate::error::{bail, Context, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Makes SIGINT/SIGTERM set the stop flag instead of killing the process, so every loop ends
/// at its next check and the namespaces are removed by their `Drop`.
pub fn install_signal_handlers() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// True once a stop was requested by a signal.
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Moves the calling thread (only) into the named network namespace (`ip netns` name).
pub fn enter_netns(name: &str) -> Result<()> {
    let path = format!("/run/netns/{name}");
    let f = File::open(&path).with_context(|| format!("open {path}"))?;
    // SAFETY: valid fd; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        bail!("setns({path}): {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `core` modulo the number of cores (best effort: a failure to
/// pin makes numbers noisier, not wrong).
pub fn pin(core: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if !ids.is_empty() {
            core_affinity::set_for_current(ids[core % ids.len()]);
        }
    }
}

/// nginx's `worker_cpu_affinity` mask of one core: `1` for core 0, `10` for core 1, ...
pub fn cpu_mask(core: usize) -> String {
    format!("1{}", "0".repeat(core))
}

pub fn num_cores() -> usize {
    core_affinity::get_core_ids().map_or(1, |v| v.len().max(1))
}

/// Runs `f` on a thread of its own inside network namespace `ns` (a serve's stat socket is an
/// abstract socket, seen only from its own namespace).
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let ns = ns.to_string();
    std::thread::spawn(move || -> Result<T> {
        enter_netns(&ns)?;
        Ok(f())
    })
    .join()
    .map_err(|_| crate::error::format_err!("namespace thread panicked"))?
}

/// Reads a file as the calling thread would see it from inside namespace `ns` (e.g.
/// `/proc/thread-self/net/sockstat`, which is per namespace).
pub fn read_in_ns(ns: &str, path: &str) -> Result<String> {
    let (name, path) = (ns.to_string(), path.to_string());
    in_ns(ns, move || {
        std::fs::read_to_string(&path).with_context(|| format!("read {path} in {name}"))
    })?
}
