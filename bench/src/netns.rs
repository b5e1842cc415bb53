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
            pair,
        })
    }
}

/// The offloads `linux-linux-nooff` turns off on both ends (ethtool feature names as
/// `ethtool -K` takes them, and as `ethtool -k` prints them).
pub const OFFLOADS: [(&str, &str); 6] = [
    ("tso", "tcp-segmentation-offload"),
    ("gso", "generic-segmentation-offload"),
    ("gro", "generic-receive-offload"),
    ("lro", "large-receive-offload"),
    ("tx", "tx-checksumming"),
    ("rx", "rx-checksumming"),
];

/// Offloads off on both ends of the pair while it lives (Linux ↔ Linux "as the stack sees
/// the wire": every 1500-byte-MTU segment built, checksummed and received one by one); on
/// drop, what was on comes back on. Turning TSO/GSO/checksums off on a live veth applies to
/// new segments at once.
pub struct OffloadsOff {
    /// (namespace, interface, `ethtool -K` names that were on).
    restore: Vec<(String, String, Vec<&'static str>)>,
}

impl OffloadsOff {
    pub fn set(env: &VethNetns) -> Result<Self> {
        let mut guard = OffloadsOff {
            restore: Vec::new(),
        };
        for (ns, ifname) in [
            (&env.server_ns, &env.server_if),
            (&env.client_ns, &env.client_if),
        ] {
            let was_on: Vec<&'static str> = offload_state(ns, ifname)?
                .into_iter()
                .filter(|&(_, on)| on)
                .map(|(k, _)| k)
                .collect();
            guard.restore.push((ns.clone(), ifname.clone(), was_on));
            let mut args = vec!["ethtool", "-K", ifname.as_str()];
            for (k, _) in OFFLOADS {
                args.extend([k, "off"]);
            }
            ethtool_in(ns, &args)?;
        }
        Ok(guard)
    }
}

impl Drop for OffloadsOff {
    fn drop(&mut self) {
        for (ns, ifname, on) in &self.restore {
            let mut args = vec!["ethtool", "-K", ifname.as_str()];
            for k in on {
                args.extend([*k, "on"]);
            }
            if !on.is_empty() {
                let _ = ethtool_in(ns, &args);
            }
        }
    }
}

/// Each of [`OFFLOADS`] and whether `ethtool -k` shows it on (`on [fixed]` counts as on).
pub fn offload_state(ns: &str, ifname: &str) -> Result<Vec<(&'static str, bool)>> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-k", ifname])
        .output()
        .context("ethtool -k")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(OFFLOADS
        .iter()
        .map(|&(k, long)| {
            let on = text.lines().any(|l| {
                l.trim_start()
                    .strip_prefix(long)
                    .and_then(|r| r.strip_prefix(':'))
                    .is_some_and(|v| v.trim_start().starts_with("on"))
            });
            (k, on)
        })
        .collect())
}

fn ethtool_in(ns: &str, args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .context("ethtool")?;
    if !out.status.success() {
        anyhow::bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
