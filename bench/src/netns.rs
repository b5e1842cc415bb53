//! The benchmark's veth pair between two network namespaces (server side, client side): an
//! `xdptcp::harness::VethPair` (addresses in 198.18.0.0/15, per-run names, everything removed
//! on drop, also on panic: the release profile unwinds; and on SIGINT/SIGTERM, which set the
//! stop flag so that the run unwinds normally), tuned for kernel baselines.

use anyhow::{Context, Result};
use std::net::Ipv4Addr;
use xdptcp::harness::{VethOptions, VethPair, PEER_ADDR, STACK_ADDR};

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
    /// Further client addresses (`--client-addrs`), on the client veth.
    pub client_extra: Vec<Ipv4Addr>,
    /// Owns the namespaces; dropping it removes them.
    pub pair: VethPair,
}

impl VethNetns {
    /// Creates the pair (server 198.18.0.1/24, client 198.18.0.2/24) with the default
    /// offloads. The client namespace gets a wide ephemeral port range and `tcp_tw_reuse=1`
    /// so that client-closes-first `cps` runs are not limited by TIME-WAIT port exhaustion.
    pub fn create() -> Result<Self> {
        let pair = VethPair::new(VethOptions::default()).context("creating the veth pair")?;
        pair.run_in_stack(&["ethtool", "-K", &pair.stack_if, "tx", "on", "tso", "on"])?;
        pair.run_in_peer(&["ethtool", "-K", &pair.peer_if, "tx", "on", "tso", "on"])?;
        #[rustfmt::skip]
        pair.run_in_peer(&[
            "sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1",
        ])?;
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
            client_extra: Vec::new(),
            pair,
        })
    }

    /// Adds `n` addresses after the client's (198.18.0.3, ...) to the client veth, so the
    /// kernel answers ARP for them and the stack client can connect from them.
    pub fn add_client_addrs(&mut self, n: usize) -> Result<()> {
        for i in 0..n.min(MAX_CLIENT_ADDRS - 1) {
            let o = PEER_ADDR.octets();
            let a = Ipv4Addr::new(o[0], o[1], o[2], o[3] + 1 + i as u8);
            let cidr = format!("{a}/24");
            self.pair
                .run_in_peer(&["ip", "addr", "add", &cidr, "dev", &self.client_if])?;
            self.client_extra.push(a);
        }
        Ok(())
    }
}

/// Client addresses at most (the client's own and `xdptcp::iface::MAX_EXTRA_ADDRS` more).
pub const MAX_CLIENT_ADDRS: usize = 1 + xdptcp::iface::MAX_EXTRA_ADDRS;
