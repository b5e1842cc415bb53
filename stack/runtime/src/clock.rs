//! The clock. Only the worker loop (once per iteration) and the programs read it; everything
//! below takes the value as a parameter (`xdptcp_core::time`).

use crate::time::Instant;

/// Reads `CLOCK_MONOTONIC`.
pub fn now() -> Instant {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Instant::from_nanos(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}
