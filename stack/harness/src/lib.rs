//! veth/netns helpers for root-only integration tests and benchmarks.
//!
//! [`VethPair`] is the Rust twin of `scripts/veth.sh up`: two network namespaces joined by a
//! veth pair (198.18.0.1/24 on the stack side, 198.18.0.2/24 on the peer), checksum offload
//! off, optional queue count and MTU, all removed again on drop (also while unwinding from a
//! panic). [`RoutedPath`] puts a forwarding router namespace between the stack and a peer
//! (a smaller MTU on its far side, for path MTU tests). [`answer_syn_with_icmp`] answers the
//! stack's SYN with a hand-made ICMP error from the peer. [`netns`] runs code inside a namespace on the current or a fresh thread.

mod icmp_answer;
pub mod netns;
pub mod process;
pub mod prom;
mod routed;
mod veth;

pub use icmp_answer::{answer_syn_with_icmp, IcmpAnswer};
pub use netns::{in_netns, NetnsGuard};
pub use process::{lines_of, terminate, KillOnDrop};
pub use routed::{
    RoutedPath, ROUTED_PEER_ADDR, ROUTED_PEER_ADDR6, ROUTED_STACK_ADDR, ROUTED_STACK_ADDR6,
    ROUTER_PEER_SIDE, ROUTER_PEER_SIDE6, ROUTER_STACK_SIDE, ROUTER_STACK_SIDE6,
};
pub use veth::{
    VethOptions, VethPair, PEER_ADDR, PEER_ADDR6, PREFIX_LEN, PREFIX_LEN6, STACK_ADDR, STACK_ADDR6,
};

/// Panics with one clear line unless running as root: the veth tests must fail, never skip.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!(
            "veth tests need root: run `sudo -E cargo test` (they create network namespaces \
             and attach XDP programs)"
        );
    }
}
