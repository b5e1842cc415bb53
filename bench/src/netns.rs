//! A private veth pair between two network namespaces (server side, client side).
//!
//! Used until `xdptcp::harness::VethPair` lands on main. Follows the team's network rules:
//! addresses in 198.18.0.0/15 only, names with a per-run suffix, everything removed on drop
//! (also on panic: the release profile unwinds; and on SIGINT/SIGTERM, which set the stop flag
//! so that the run unwinds normally).

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by one veth pair. No XDP program is attached (a Linux baseline must
/// keep the peer's TSO, see PLATFORM.md).
#[derive(Debug)]
pub struct VethNetns {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: Ipv4Addr,
    pub client_ip: Ipv4Addr,
    created: Vec<String>,
}

fn run(args: &[&str]) -> Result<()> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("spawn {}", args[0]))?;
    if !out.status.success() {
        bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl VethNetns {
    /// Creates `xbs<suffix>` (server, 198.18.0.1/24) and `xbc<suffix>` (client, 198.18.0.2/24).
    /// The client namespace gets a wide ephemeral port range and `tcp_tw_reuse=1` so that
    /// client-closes-first `cps` runs are not limited by TIME-WAIT port exhaustion.
    pub fn create() -> Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let suffix = format!("{}x{}", std::process::id(), n);
        let mut v = VethNetns {
            server_ns: format!("xbs{suffix}"),
            client_ns: format!("xbc{suffix}"),
            server_if: format!("xbs{suffix}"),
            client_if: format!("xbc{suffix}"),
            server_ip: Ipv4Addr::new(198, 18, 0, 1),
            client_ip: Ipv4Addr::new(198, 18, 0, 2),
            created: Vec::new(),
        };
        for ns in [v.server_ns.clone(), v.client_ns.clone()] {
            run(&["ip", "netns", "add", &ns])?;
            v.created.push(ns);
        }
        run(&[
            "ip",
            "link",
            "add",
            &v.server_if,
            "netns",
            &v.server_ns,
            "type",
            "veth",
            "peer",
            "name",
            &v.client_if,
            "netns",
            &v.client_ns,
        ])?;
        for (ns, ifn, ip) in [
            (&v.server_ns, &v.server_if, v.server_ip),
            (&v.client_ns, &v.client_if, v.client_ip),
        ] {
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                ifn,
            ])?;
            run(&["ip", "-n", ns, "link", "set", ifn, "up"])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        run(&[
            "ip",
            "netns",
            "exec",
            &v.client_ns,
            "sysctl",
            "-qw",
            "net.ipv4.ip_local_port_range=1024 65000",
            "net.ipv4.tcp_tw_reuse=1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &v.server_ns,
            "sysctl",
            "-qw",
            "net.core.somaxconn=65535",
            "net.ipv4.tcp_max_syn_backlog=65535",
        ])?;
        Ok(v)
    }
}

impl Drop for VethNetns {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the peer.
        for ns in self.created.drain(..) {
            let _ = run(&["ip", "netns", "del", &ns]);
        }
    }
}
