//! The benchmark's veth pair between two network namespaces (server side, client side): an
//! `xdptcp_harness::VethPair` (addresses in 198.18.0.0/15, per-run names, everything removed
//! on drop, also on panic: the release profile unwinds; and on SIGINT/SIGTERM, which set the
//! stop flag so that the run unwinds normally), tuned for kernel baselines.

use crate::error::{bail, Context, Result};
use crate::nic::{AdoptedPorts, NicPlan};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use xdptcp_harness::{
    VethOptions, VethPair, PEER_ADDR, PEER_ADDR6, PREFIX_LEN, STACK_ADDR, STACK_ADDR6,
};

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
    /// `--ipv6` ([`VethNetns::add_ipv6`]): the server's IPv6 address; the scenarios then
    /// listen and connect over IPv6 (the stack keeps `server_ip` for its IPv4-only parts).
    pub server_ip6: Option<Ipv6Addr>,
    /// The client's IPv6 address, with `server_ip6`.
    pub client_ip6: Option<Ipv6Addr>,
    /// NIC ports moved into the namespaces ([`VethNetns::adopt`]); declared before `pair`
    /// so that they move back before the namespaces are deleted.
    pub nic: Option<AdoptedPorts>,
    /// Further client addresses (`--client-addrs`), on the client veth.
    pub client_extra: Vec<Ipv4Addr>,
    /// Owns the namespaces; dropping it removes them.
    pub pair: VethPair,
    /// Stack servers run `xdptcp serve --zero-copy` (`--zero-copy`).
    pub zero_copy: bool,
}

impl VethNetns {
    /// Creates the pair (server 198.18.0.1/24, client 198.18.0.2/24) with the default
    /// offloads. The client namespace gets a wide ephemeral port range, `tcp_tw_reuse=1` and
    /// `tcp_tw_reuse_delay` [`TW_REUSE_DELAY_MS`] so that client-closes-first `cps` runs are
    /// not limited by TIME-WAIT port exhaustion.
    pub fn create() -> Result<Self> {
        Self::create_with(1)
    }

    /// [`VethNetns::create`] with `queues` receive and transmit queues per end (one per
    /// server worker: `xdptcp serve --workers N` binds queues 0..N).
    pub fn create_with(queues: u32) -> Result<Self> {
        let opts = VethOptions {
            queues,
            ..VethOptions::default()
        };
        let pair = VethPair::new(opts).context("creating the veth pair")?;
        pair.run_in_stack(&["ethtool", "-K", &pair.stack_if, "tx", "on", "tso", "on"])?;
        pair.run_in_peer(&["ethtool", "-K", &pair.peer_if, "tx", "on", "tso", "on"])?;
        tune(&pair)?;
        Ok(VethNetns {
            server_ns: pair.stack_ns.clone(),
            client_ns: pair.peer_ns.clone(),
            server_if: pair.stack_if.clone(),
            client_if: pair.peer_if.clone(),
            server_ip: STACK_ADDR,
            client_ip: PEER_ADDR,
            server_ip6: None,
            client_ip6: None,
            nic: None,
            client_extra: Vec::new(),
            pair,
            zero_copy: false,
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

    /// Two existing ports cabled back to back (or a veth pair made outside the bench) instead
    /// of a new veth pair: `plan.iface` moves into a fresh server namespace, `plan.peer_iface`
    /// into a fresh client namespace, with the same addresses and sysctls as
    /// [`VethNetns::create`]. Offloads stay as the driver has them (a NIC computes checksums on
    /// the wire). Both ports move back on drop, also when a step here fails.
    pub fn adopt(plan: &NicPlan) -> Result<Self> {
        static N: AtomicU32 = AtomicU32::new(0);
        let suffix = format!("{:x}-n{}", std::process::id(), N.fetch_add(1, Relaxed));
        let mut pair = VethPair {
            stack_ns: format!("xt-stack-{suffix}"),
            peer_ns: format!("xt-peer-{suffix}"),
            stack_if: plan.iface.clone(),
            peer_if: plan.peer_iface.clone(),
            suffix,
            stack_mac: [0; 6],
            peer_mac: [0; 6],
            opts: VethOptions {
                queues: plan.rx_queues as u32,
                mtu: None,
            },
        };
        // From here on, `pair`'s Drop deletes the namespaces and `ports`' (dropped first)
        // moves the ports back.
        ip(&["netns", "add", &pair.stack_ns])?;
        ip(&["netns", "add", &pair.peer_ns])?;
        let mut ports = AdoptedPorts::default();
        let sides = [
            (&pair.stack_ns, &plan.iface, STACK_ADDR),
            (&pair.peer_ns, &plan.peer_iface, PEER_ADDR),
        ];
        for (ns, ifn, addr) in sides {
            ports.adopt(ifn, ns)?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/{PREFIX_LEN}"),
                "dev",
                ifn,
            ])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "link", "set", ifn, "up"])?;
        }
        pair.stack_mac = mac(&pair.stack_ns, &plan.iface)?;
        pair.peer_mac = mac(&pair.peer_ns, &plan.peer_iface)?;
        tune(&pair)?;
        wait_carrier(&pair.stack_ns, &plan.iface)?;
        wait_carrier(&pair.peer_ns, &plan.peer_iface)?;
        Ok(VethNetns {
            server_ns: pair.stack_ns.clone(),
            client_ns: pair.peer_ns.clone(),
            server_if: plan.iface.clone(),
            client_if: plan.peer_iface.clone(),
            server_ip: STACK_ADDR,
            client_ip: PEER_ADDR,
            server_ip6: None,
            client_ip6: None,
            nic: Some(ports),
            client_extra: Vec::new(),
            pair,
            zero_copy: false,
        })
    }

    /// `--ipv6`: adds 2001:2::1 (server) and 2001:2::2 (client) from the benchmarking prefix
    /// 2001:2::/48 (RFC 5180) with `nodad`, in the bench's own namespaces (removed with
    /// them); from here on [`VethNetns::server_addr`] is the server's IPv6 address.
    pub fn add_ipv6(&mut self) -> Result<()> {
        self.pair
            .add_ipv6()
            .context("adding the IPv6 addresses (2001:2::1, 2001:2::2)")?;
        self.server_ip6 = Some(STACK_ADDR6);
        self.client_ip6 = Some(PEER_ADDR6);
        Ok(())
    }

    /// The address family the scenarios run over: "IPv6" after [`VethNetns::add_ipv6`],
    /// else "IPv4".
    pub fn family(&self) -> &'static str {
        if self.server_ip6.is_some() {
            "IPv6"
        } else {
            "IPv4"
        }
    }

    /// The server's address the clients connect to: IPv6 after [`VethNetns::add_ipv6`].
    pub fn server_addr(&self, port: u16) -> SocketAddr {
        let ip = match self.server_ip6 {
            Some(a) => IpAddr::V6(a),
            None => IpAddr::V4(self.server_ip),
        };
        SocketAddr::new(ip, port)
    }

    /// One line for the report's metadata.
    pub fn describe(&self) -> String {
        match self.nic {
            None => format!(
                "veth pair {} <-> {} between two network namespaces ({} queue(s)), no XDP \
                 program, offloads on",
                self.server_if, self.client_if, self.pair.opts.queues
            ),
            Some(_) => format!(
                "ports {} (server, {} rx queue(s)) <-> {} (client) moved into two network \
                 namespaces, offloads as the driver has them",
                self.server_if, self.pair.opts.queues, self.client_if
            ),
        }
    }
}

/// The client's wide ephemeral range and TIME-WAIT reuse, the server's deep backlogs.
fn tune(pair: &VethPair) -> Result<()> {
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
    Ok(())
}

fn ip(args: &[&str]) -> Result<String> {
    crate::nic::output("ip", args)
}

fn mac(ns: &str, ifn: &str) -> Result<[u8; 6]> {
    let text = ip(&["-n", ns, "-o", "link", "show", "dev", ifn])?;
    let m = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .and_then(|m| {
            let b: Vec<u8> = m
                .split(':')
                .filter_map(|x| u8::from_str_radix(x, 16).ok())
                .collect();
            <[u8; 6]>::try_from(b).ok()
        });
    m.with_context(|| format!("{ifn}: no Ethernet address in: {}", text.trim()))
}

/// Waits up to 10 s for the link to come up (a NIC renegotiates after the move).
fn wait_carrier(ns: &str, ifn: &str) -> Result<()> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = ip(&["-n", ns, "-o", "link", "show", "dev", ifn])?;
        if text.contains("state UP") || text.contains("LOWER_UP") {
            return Ok(());
        }
        if std::time::Instant::now() >= end {
            bail!("{ifn}: no link (carrier) within 10 s: is it cabled to the peer port?");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Client addresses at most (the client's own and `xdptcp::iface::MAX_EXTRA_ADDRS` more).
pub const MAX_CLIENT_ADDRS: usize = 1 + xdptcp::iface::MAX_EXTRA_ADDRS;

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
        crate::error::bail!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
