//! A forked worker that gives up root before it claims its queue (nginx's `user nobody;`:
//! `ngx_worker_process_init` calls setuid before the worker first touches a listener). The
//! claim opens an AF_XDP socket (CAP_NET_RAW) and registers its UMEM (locked memory:
//! CAP_IPC_LOCK, else RLIMIT_MEMLOCK), and the stack asks the kernel to resolve neighbours
//! (RTM_NEWNEIGH: CAP_NET_ADMIN). So, in an unclaimed child only, `setuid`/`setreuid`/
//! `setresuid` from root keep exactly those three across the change (PR_SET_KEEPCAPS, then
//! permitted = {NET_ADMIN, NET_RAW, IPC_LOCK}, effective empty: the same steps nginx takes for
//! its own `transparent` listeners). The claim raises them, and once the queue is open keeps
//! CAP_NET_ADMIN alone (what `xdptcp serve --user` keeps). They are never inheritable or
//! ambient, so an exec drops them; a thread other than the caller loses every capability at
//! the uid change, as it would without this library.

use crate::state;

const CAP_IPC_LOCK: u32 = 14;
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
/// What a claim needs.
const CLAIM: u32 = 1 << CAP_NET_ADMIN | 1 << CAP_NET_RAW | 1 << CAP_IPC_LOCK;
/// What a claimed worker keeps (neighbour requests).
const SERVE: u32 = 1 << CAP_NET_ADMIN;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

/// Effective, permitted, inheritable (the first 32 capabilities; ours are all below 32).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn get() -> Option<[Data; 2]> {
    let mut h = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget into a header and two data blocks we own (version 3 takes two).
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    (rc == 0).then_some(d)
}

/// Sets the calling thread's effective and permitted sets to `effective` and `permitted`
/// (capabilities below 32), everything else empty.
fn set(effective: u32, permitted: u32) -> bool {
    let mut h = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let d = [
        Data {
            effective,
            permitted,
            inheritable: 0,
        },
        Data::default(),
    ];
    // SAFETY: capset from a header and two data blocks we own.
    unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) == 0 }
}

/// Before a uid change to `uid` (`u32::MAX`: unchanged, as -1 in setresuid): whether to keep
/// the claim's capabilities across it (an unclaimed forked child, root now, not staying root).
pub fn before_uid_change(ruid: u32, euid: u32, suid: u32) -> bool {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid into locals.
    if unsafe { libc::getresuid(&mut r, &mut e, &mut s) } != 0 {
        return false;
    }
    let new = |want: u32, cur: u32| if want == u32::MAX { cur } else { want };
    let all_root = [new(ruid, r), new(euid, e), new(suid, s)] == [0, 0, 0];
    if !state::forked() || e != 0 || all_root {
        return false;
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0 }
}

fn has_root_uid() -> bool {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid into locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) != 0 || r == 0 || e == 0 || s == 0 }
}

/// After the uid change (`kept`: what [`before_uid_change`] said, `ok`: whether it
/// succeeded): keeps the claim's capabilities permitted, not effective.
pub fn after_uid_change(kept: bool, ok: bool) {
    if !kept {
        return;
    }
    // Only a change that left no uid 0 would have cleared the permitted set: otherwise (e.g.
    // an effective uid changed alone) the capabilities stay as the kernel left them.
    if ok && !has_root_uid() {
        let permitted = get().map_or(0, |d| d[0].permitted);
        if !set(0, permitted & CLAIM) {
            // Keep nothing rather than more than the claim needs.
            set(0, 0);
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
}

/// Before a claim: raises what the claim needs from the permitted set. Whether the claim
/// can open a queue (root, or CAP_NET_RAW now effective).
pub fn raise_for_claim() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let Some(d) = get() else {
        return false;
    };
    let want = d[0].permitted & CLAIM;
    set(want, d[0].permitted);
    get().is_some_and(|d| d[0].effective & (1 << CAP_NET_RAW) != 0)
}

/// After a claim (done or failed) by a process that is not root: CAP_NET_ADMIN alone.
pub fn after_claim() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return;
    }
    let keep = get().map_or(0, |d| d[0].permitted & SERVE);
    set(keep, keep);
}

/// An unclaimed child that let go of every inherited stack socket: nothing to claim, no
/// capability kept.
pub fn drop_all() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        set(0, 0);
    }
}
