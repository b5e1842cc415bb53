//! Three namespaces in a line, a router in the middle: stack -- router -- peer. The stack's
//! link is 198.18.0.0/24 (stack .1, router .254), the peer's 198.19.0.0/24 (router .254,
//! peer .2); each end routes the other's prefix via the router, which forwards
//! (`ip_forward = 1` in the router namespace only). The router's interface toward the peer
//! can get a smaller MTU, so that the router answers the stack's larger DF packets with ICMP
//! "fragmentation needed" (RFC 1191). Checksum offload is off on every end (full checksums
//! on the wire for the stack). Everything is removed on drop, also on panic.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Output};
use std::sync::atomic::Ordering;

use super::netns::in_netns;
use super::veth::{netns_inode, remove_reserved_records, run};

/// The stack's address on the first link.
pub const ROUTED_STACK_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The router's address on the stack's link.
pub const ROUTER_STACK_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The router's address on the peer's link.
pub const ROUTER_PEER_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 254);
/// The Linux peer's address, one hop away from the stack.
pub const ROUTED_PEER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);

/// The stack's IPv6 address on the first link (2001:2::/64), after
/// [`RoutedPath::add_ipv6`].
pub const ROUTED_STACK_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// The router's IPv6 address on the stack's link.
pub const ROUTER_STACK_SIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0xfe);
/// The router's IPv6 address on the peer's link (2001:2:0:1::/64).
pub const ROUTER_PEER_SIDE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0xfe);
/// The Linux peer's IPv6 address, one hop away from the stack.
pub const ROUTED_PEER_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2);

/// See the module docs. Names carry a per-process, per-call suffix.
#[derive(Debug)]
pub struct RoutedPath {
    /// Namespace of the stack.
    pub stack_ns: String,
    /// Namespace of the router.
    pub router_ns: String,
    /// Namespace of the Linux peer.
    pub peer_ns: String,
    /// The stack's interface (in `stack_ns`).
    pub stack_if: String,
    /// The router's interface toward the peer (in `router_ns`), the one with `mtu`.
    pub router_peer_if: String,
    /// The peer's interface (in `peer_ns`).
    pub peer_if: String,
}

impl RoutedPath {
    /// Builds the path; `router_to_peer_mtu` is the MTU of the router's interface toward
    /// the peer (the others keep 1500). Needs root. On error, what was created is removed.
    pub fn new(router_to_peer_mtu: u32) -> io::Result<RoutedPath> {
        // The VethPair counter: a RoutedPath and a VethPair of one test binary never share a name.
        let n = crate::veth::COUNTER.fetch_add(1, Ordering::Relaxed);
        let s = format!("{:x}-{n}", std::process::id());
        let path = RoutedPath {
            stack_ns: format!("xt-stack-{s}"),
            router_ns: format!("xt-rtr-{s}"),
            peer_ns: format!("xt-peer-{s}"),
            stack_if: format!("xts-{s}"),
            router_peer_if: format!("xtq-{s}"),
            peer_if: format!("xtp-{s}"),
        };
        let router_stack_if = format!("xtr-{s}");
        for ns in [&path.stack_ns, &path.router_ns, &path.peer_ns] {
            // From the first one on, Drop removes whatever exists if a step fails.
            run("ip", ["netns", "add", ns])?;
        }
        #[rustfmt::skip]
        run("ip", ["-n", &path.stack_ns, "link", "add", &path.stack_if, "type", "veth",
            "peer", "name", &router_stack_if, "netns", &path.router_ns])?;
        #[rustfmt::skip]
        run("ip", ["-n", &path.router_ns, "link", "add", &path.router_peer_if, "type", "veth",
            "peer", "name", &path.peer_if, "netns", &path.peer_ns])?;
        run(
            "ip",
            [
                "-n",
                &path.router_ns,
                "link",
                "set",
                &path.router_peer_if,
                "mtu",
                &router_to_peer_mtu.to_string(),
            ],
        )?;
        let ends = [
            (&path.stack_ns, &path.stack_if, ROUTED_STACK_ADDR),
            (&path.router_ns, &router_stack_if, ROUTER_STACK_SIDE),
            (&path.router_ns, &path.router_peer_if, ROUTER_PEER_SIDE),
            (&path.peer_ns, &path.peer_if, ROUTED_PEER_ADDR),
        ];
        for (ns, ifname, addr) in ends {
            run(
                "ip",
                [
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    ifname,
                ],
            )?;
            run(
                "ip",
                ["netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off"],
            )?;
            run("ip", ["-n", ns, "link", "set", "lo", "up"])?;
            run("ip", ["-n", ns, "link", "set", ifname, "up"])?;
        }
        #[rustfmt::skip]
        run("ip", ["-n", &path.stack_ns, "route", "add", "198.19.0.0/24",
            "via", &ROUTER_STACK_SIDE.to_string()])?;
        #[rustfmt::skip]
        run("ip", ["-n", &path.peer_ns, "route", "add", "198.18.0.0/24",
            "via", &ROUTER_PEER_SIDE.to_string()])?;
        run(
            "ip",
            [
                "netns",
                "exec",
                &path.router_ns,
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
            ],
        )?;
        Ok(path)
    }

    /// Adds IPv6 to the path, besides IPv4: 2001:2::/64 on the stack's link (stack ::1,
    /// router ::fe), 2001:2:0:1::/64 on the peer's (router ::fe, peer ::2), all `nodad`;
    /// each end routes the other's /64 via the router, which forwards IPv6
    /// (`net.ipv6.conf.all.forwarding = 1` in the router namespace only).
    pub fn add_ipv6(&self) -> io::Result<()> {
        let router_stack_if = self.stack_if.replacen("xts-", "xtr-", 1);
        let ends = [
            (&self.stack_ns, &self.stack_if, ROUTED_STACK_ADDR6),
            (&self.router_ns, &router_stack_if, ROUTER_STACK_SIDE6),
            (&self.router_ns, &self.router_peer_if, ROUTER_PEER_SIDE6),
            (&self.peer_ns, &self.peer_if, ROUTED_PEER_ADDR6),
        ];
        for (ns, ifname, addr) in ends {
            let cidr = format!("{addr}/64");
            run(
                "ip",
                ["-n", ns, "-6", "addr", "add", &cidr, "dev", ifname, "nodad"],
            )?;
        }
        #[rustfmt::skip]
        run("ip", ["-n", &self.stack_ns, "-6", "route", "add", "2001:2:0:1::/64",
            "via", &ROUTER_STACK_SIDE6.to_string()])?;
        #[rustfmt::skip]
        run("ip", ["-n", &self.peer_ns, "-6", "route", "add", "2001:2::/64",
            "via", &ROUTER_PEER_SIDE6.to_string()])?;
        #[rustfmt::skip]
        run("ip", ["netns", "exec", &self.router_ns, "sysctl", "-q", "-w",
            "net.ipv6.conf.all.forwarding=1"])?;
        Ok(())
    }

    /// Runs `cmd` in the peer namespace; a non-zero exit is an error.
    pub fn run_in_peer(&self, cmd: &[&str]) -> io::Result<Output> {
        run("ip", ["netns", "exec", &self.peer_ns].iter().chain(cmd))
    }

    /// Runs `cmd` in the router namespace; a non-zero exit is an error.
    pub fn run_in_router(&self, cmd: &[&str]) -> io::Result<Output> {
        run("ip", ["netns", "exec", &self.router_ns].iter().chain(cmd))
    }

    /// Runs `f` on a thread inside the peer namespace.
    pub fn in_peer<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        in_netns(&self.peer_ns, f)
    }

    /// Runs `f` on a thread inside the stack namespace.
    pub fn in_stack<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        in_netns(&self.stack_ns, f)
    }
}

impl Drop for RoutedPath {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veths in them. Errors (a namespace never made)
        // leave nothing to remove.
        for ns in [&self.stack_ns, &self.router_ns, &self.peer_ns] {
            let ino = netns_inode(ns);
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            // As VethPair: a stack's reserved-ports record dies with its namespace.
            if let Some(ino) = ino {
                remove_reserved_records(ino);
            }
        }
    }
}
