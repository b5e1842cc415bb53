//! The benchmark's veth pair between two network namespaces (server side, client side): an
//! `xdptcp::harness::VethPair` (addresses in 198.18.0.0/15, per-run names, everything removed
//! on drop, also on panic: the release profile unwinds; and on SIGINT/SIGTERM, which set the
//! stop flag so that the run unwinds normally), tuned for kernel baselines.

use anyhow::{Context, Result};
use std::net::Ipv4Addr;
use xdptcp::harness::{VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

/// `tcp_tw_reuse_delay` (ms) of both clients (the client namespace's kernel and the stack
/// client): with a 1 ms timestamp clock any delay of at least 1 ms is safe (PAWS), and the
/// default 1 s caps client-closes-first `cps` at (ephemeral ports) / 1 s ≈ 55-64k
/// connections/s per destination.
pub const TW_REUSE_DELAY_MS: u32 = 10;

/// Two namespaces joined by one veth pair: the pair's stack side is the server side, its peer
/// the client side. No XDP program is attached and checksum offload is back on (the harness
/// turns it off for the stack's tests, which also turns TSO off): a Linux baseline must keep
/// the peer's TSO, see PLATFORM.md.
#[derive(Debug)]
pub struct VethNetns {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    /// Owns the namespaces; dropping it removes them.
    pub pair: VethPair,
}

impl VethNetns {
    /// Creates the pair (server 198.18.0.1/24, client 198.18.0.2/24) with the default
    /// offloads. The client namespace gets a wide ephemeral port range, `tcp_tw_reuse=1` and
    /// `tcp_tw_reuse_delay` [`TW_REUSE_DELAY_MS`] so that client-closes-first `cps` runs are
    /// not limited by TIME-WAIT port exhaustion.
    pub fn create() -> Result<Self> {
        let pair = VethPair::new(VethOptions::default()).context("creating the veth pair")?;
        pair.run_in_stack(&["ethtool", "-K", &pair.stack_if, "tx", "on", "tso", "on"])?;
        pair.run_in_peer(&["ethtool", "-K", &pair.peer_if, "tx", "on", "tso", "on"])?;
        #[rustfmt::skip]
        pair.run_in_peer(&[
            "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1",
        ])?;
        // Linux 6.13+ only: older kernels keep their fixed 1 s.
        let delay = format!("net.ipv4.tcp_tw_reuse_delay={TW_REUSE_DELAY_MS}");
        let _ = pair.run_in_peer(&["sysctl", "-qw", &delay]);
        #[rustfmt::skip]
        pair.run_in_stack(&[
            "sysctl", "-qw", "net.core.somaxconn=65535", "net.ipv4.tcp_max_syn_backlog=65535",
        ])?;
        Ok(VethNetns {
            server_ns: pair.stack_ns.clone(),
            client_ns: pair.peer_ns.clone(),
            server_if: pair.stack_if.clone(),
            client_if: pair.peer_if.clone(),
            server_ip: STACK_ADDR,
            client_ip: PEER_ADDR,
            pair,
        })
    }
}
