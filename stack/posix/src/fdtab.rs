//! What each descriptor number is, readable without a lock or an allocation: the interposers'
//! fast path is one atomic load that sends every descriptor the stack does not own straight to
//! libc. Fixed size ([`MAX_FDS`]); a descriptor at or above it is never the stack's (a socket
//! created there stays a kernel socket).

use std::sync::atomic::{AtomicU8, Ordering};

/// Descriptors tracked: 0..MAX_FDS (64 KiB of flags).
pub const MAX_FDS: usize = 1 << 16;

/// What a descriptor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Not ours: every call goes to libc.
    Kernel = 0,
    /// An AF_INET SOCK_STREAM kernel socket not yet bound to the stack or connected: calls go
    /// to libc, but `bind` / `connect` decide whether it moves to the stack.
    Undecided = 1,
    /// A stack socket; the descriptor is its placeholder eventfd.
    Stack = 2,
    /// An epoll instance that holds stack sockets (its `epoll_wait` translates their events).
    Epoll = 3,
}

static KIND: [AtomicU8; MAX_FDS] = [const { AtomicU8::new(0) }; MAX_FDS];

/// The kind of `fd` (`Kernel` when out of range).
pub fn kind(fd: i32) -> Kind {
    match usize::try_from(fd).ok().and_then(|i| KIND.get(i)) {
        Some(k) => match k.load(Ordering::Acquire) & !ORPHAN {
            1 => Kind::Undecided,
            2 => Kind::Stack,
            3 => Kind::Epoll,
            _ => Kind::Kernel,
        },
        None => Kind::Kernel,
    }
}

/// Flag on a `Stack` descriptor: a connection inherited across `fork`, not usable in this
/// process (docs/posix.md, "Processes"). `set` clears it.
const ORPHAN: u8 = 0x80;

/// Marks `fd` as an inherited connection (a `Stack` descriptor every call but `close` fails).
pub fn set_orphan(fd: i32) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|i| KIND.get(i)) {
        slot.store(Kind::Stack as u8 | ORPHAN, Ordering::Release);
    }
}

/// Whether `fd` is an inherited connection ([`set_orphan`]).
pub fn orphan(fd: i32) -> bool {
    usize::try_from(fd)
        .ok()
        .and_then(|i| KIND.get(i))
        .is_some_and(|k| k.load(Ordering::Acquire) & ORPHAN != 0)
}

/// Sets the kind of `fd`; false when `fd` is out of range (it stays `Kernel`).
pub fn set(fd: i32, k: Kind) -> bool {
    match usize::try_from(fd).ok().and_then(|i| KIND.get(i)) {
        Some(slot) => {
            slot.store(k as u8, Ordering::Release);
            true
        }
        None => false,
    }
}

/// Whether `fd` can be tracked at all.
pub fn in_range(fd: i32) -> bool {
    usize::try_from(fd).is_ok_and(|i| i < MAX_FDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_out_of_range_is_kernel() {
        let fd = (MAX_FDS - 3) as i32;
        assert_eq!(kind(fd), Kind::Kernel);
        for k in [Kind::Undecided, Kind::Stack, Kind::Epoll, Kind::Kernel] {
            assert!(set(fd, k));
            assert_eq!(kind(fd), k);
        }
        set_orphan(fd);
        assert!(orphan(fd) && kind(fd) == Kind::Stack);
        set(fd, Kind::Kernel);
        assert!(!orphan(fd) && kind(fd) == Kind::Kernel);
        assert!(!set(MAX_FDS as i32, Kind::Stack));
        assert_eq!(kind(MAX_FDS as i32), Kind::Kernel);
        assert_eq!(kind(-1), Kind::Kernel);
        assert!(!in_range(-1) && in_range(0) && !in_range(MAX_FDS as i32));
    }
}
