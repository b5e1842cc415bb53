//! A veth pair between two fresh network namespaces (mirrors `scripts/veth.sh`).

use std::ffi::OsStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::netns::{in_netns, NetnsGuard};

/// Address of the stack-side interface.
pub const STACK_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Address of the Linux peer.
pub const PEER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// Prefix length of both addresses.
pub const PREFIX_LEN: u8 = 24;
/// IPv6 address of the stack side (RFC 5180 benchmarking prefix), after
/// [`VethPair::add_ipv6`].
pub const STACK_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
/// IPv6 address of the Linux peer, after [`VethPair::add_ipv6`].
pub const PEER_ADDR6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
/// Prefix length of both IPv6 addresses.
pub const PREFIX_LEN6: u8 = 64;

/// Shape of the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VethOptions {
    /// RX and TX queues on each end (1..=64).
    pub queues: u32,
    /// MTU of both ends; `None` keeps the kernel default (1500).
    pub mtu: Option<u32>,
}

impl Default for VethOptions {
    fn default() -> Self {
        VethOptions {
            queues: 1,
            mtu: None,
        }
    }
}

/// Two namespaces `xt-stack-S` / `xt-peer-S` joined by veth `xts-S` / `xtp-S`, where `S` is
/// unique per process and call. Everything is deleted on drop.
#[derive(Debug)]
pub struct VethPair {
    /// Per-run suffix (process id + counter).
    pub suffix: String,
    /// Namespace of the stack side.
    pub stack_ns: String,
    /// Namespace of the Linux peer.
    pub peer_ns: String,
    /// Interface name in `stack_ns`.
    pub stack_if: String,
    /// Interface name in `peer_ns`.
    pub peer_if: String,
    /// MAC address of `stack_if`.
    pub stack_mac: [u8; 6],
    /// MAC address of `peer_if`.
    pub peer_mac: [u8; 6],
    /// What it was created with.
    pub opts: VethOptions,
}

/// Shared with `RoutedPath`, so that names stay unique between the two kinds of test setup
/// running at once in one test binary.
pub(crate) static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Runs a command, turning a non-zero exit into an error that carries its stderr.
pub(crate) fn run<I, S>(program: &str, args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = cmd
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

impl VethPair {
    /// Creates the namespaces and the pair, addresses them, turns checksum offload off on both
    /// ends and brings everything up. Needs root. On error, whatever was created is removed.
    pub fn new(opts: VethOptions) -> io::Result<VethPair> {
        if !(1..=64).contains(&opts.queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "queues must be 1..=64",
            ));
        }
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Interface names are limited to 15 bytes: "xts-" + up to 6 hex digits + "-" + n.
        let suffix = format!("{:x}-{n}", std::process::id());
        let mut pair = VethPair {
            stack_ns: format!("xt-stack-{suffix}"),
            peer_ns: format!("xt-peer-{suffix}"),
            stack_if: format!("xts-{suffix}"),
            peer_if: format!("xtp-{suffix}"),
            suffix,
            stack_mac: [0; 6],
            peer_mac: [0; 6],
            opts,
        };
        run("ip", ["netns", "add", &pair.stack_ns])?;
        // From here on, `pair`'s Drop removes whatever exists if a step fails.
        run("ip", ["netns", "add", &pair.peer_ns])?;
        let q = opts.queues.to_string();
        #[rustfmt::skip]
        run("ip", [
            "-n", &pair.stack_ns, "link", "add", &pair.stack_if,
            "numtxqueues", &q, "numrxqueues", &q, "type", "veth",
            "peer", "name", &pair.peer_if, "netns", &pair.peer_ns,
            "numtxqueues", &q, "numrxqueues", &q,
        ])?;
        let sides = [
            (pair.stack_ns.clone(), pair.stack_if.clone(), STACK_ADDR),
            (pair.peer_ns.clone(), pair.peer_if.clone(), PEER_ADDR),
        ];
        for (ns, ifname, addr) in &sides {
            if let Some(mtu) = opts.mtu {
                run(
                    "ip",
                    ["-n", ns, "link", "set", ifname, "mtu", &mtu.to_string()],
                )?;
            }
            let cidr = format!("{addr}/{PREFIX_LEN}");
            run("ip", ["-n", ns, "addr", "add", &cidr, "dev", ifname])?;
            // Full checksums on the wire, so the stack can verify them.
            run(
                "ip",
                ["netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off"],
            )?;
            run("ip", ["-n", ns, "link", "set", "lo", "up"])?;
            run("ip", ["-n", ns, "link", "set", ifname, "up"])?;
        }
        pair.stack_mac = Self::mac(&pair.stack_ns, &pair.stack_if)?;
        pair.peer_mac = Self::mac(&pair.peer_ns, &pair.peer_if)?;
        Ok(pair)
    }

    fn mac(ns: &str, ifname: &str) -> io::Result<[u8; 6]> {
        let out = run("ip", ["-n", ns, "-o", "link", "show", "dev", ifname])?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .and_then(parse_mac)
            .ok_or_else(|| io::Error::other(format!("no MAC address in: {text}")))
    }

    /// Address of the stack side.
    pub fn stack_addr(&self) -> Ipv4Addr {
        STACK_ADDR
    }

    /// Address of the peer.
    pub fn peer_addr(&self) -> Ipv4Addr {
        PEER_ADDR
    }

    /// Adds [`STACK_ADDR6`] / [`PEER_ADDR6`] (with `nodad`: usable at once, no duplicate
    /// address detection delay) to the two ends; they go with the namespaces on drop.
    pub fn add_ipv6(&self) -> io::Result<()> {
        for (ns, ifname, addr) in [
            (&self.stack_ns, &self.stack_if, STACK_ADDR6),
            (&self.peer_ns, &self.peer_if, PEER_ADDR6),
        ] {
            let cidr = format!("{addr}/{PREFIX_LEN6}");
            run(
                "ip",
                ["-n", ns, "-6", "addr", "add", &cidr, "dev", ifname, "nodad"],
            )?;
        }
        Ok(())
    }

    /// Runs `cmd` (program and arguments) in the peer namespace; a non-zero exit is an error.
    pub fn run_in_peer(&self, cmd: &[&str]) -> io::Result<Output> {
        self.run_in(&self.peer_ns, cmd)
    }

    /// Runs `cmd` in the stack namespace; a non-zero exit is an error.
    pub fn run_in_stack(&self, cmd: &[&str]) -> io::Result<Output> {
        self.run_in(&self.stack_ns, cmd)
    }

    fn run_in(&self, ns: &str, cmd: &[&str]) -> io::Result<Output> {
        run("ip", ["netns", "exec", ns].iter().chain(cmd))
    }

    /// A Linux echo server in the peer namespace on an ephemeral port of `ip`: it accepts one
    /// connection (within 30 s), sends back what the first read gives (at most 64 bytes)
    /// and returns the client's address. Returns the port and the server's thread.
    pub fn peer_echo_once(
        &self,
        ip: IpAddr,
    ) -> io::Result<(u16, std::thread::JoinHandle<SocketAddr>)> {
        use std::io::{Read, Write};
        let l = self.in_peer(|| TcpListener::bind((ip, 0)))??;
        let port = l.local_addr()?.port();
        l.set_nonblocking(true)?;
        let server = std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(30);
            let (mut c, from) = loop {
                match l.accept() {
                    Ok(x) => break x,
                    Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_millis(5)),
                    Err(e) => panic!("no connection to the peer's echo server: {e}"),
                }
            };
            c.set_nonblocking(false).expect("blocking");
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buf = [0u8; 64];
            let n = c.read(&mut buf).expect("read");
            c.write_all(&buf[..n]).expect("write");
            from
        });
        Ok((port, server))
    }

    /// Runs `f` on a thread inside the peer namespace (e.g. a kernel `TcpStream` client).
    pub fn in_peer<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        in_netns(&self.peer_ns, f)
    }

    /// Runs `f` on a thread inside the stack namespace.
    pub fn in_stack<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        in_netns(&self.stack_ns, f)
    }

    /// Moves the current thread into the stack namespace until the guard is dropped.
    pub fn enter_stack_ns(&self) -> io::Result<NetnsGuard> {
        NetnsGuard::enter(&self.stack_ns)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair. Errors
        // (e.g. a namespace never created) are ignored: there is nothing left to remove.
        for ns in [&self.stack_ns, &self.peer_ns] {
            let ino = netns_inode(ns);
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
            if let Some(ino) = ino {
                remove_reserved_records(ino);
            }
        }
    }
}

/// The inode of a named network namespace (`/run/netns/NAME` is a bind mount of its nsfs file).
pub(crate) fn netns_inode(ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/run/netns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// Removes the reserved-ports records (`/run/xdptcp/reserved-<netns inode>-<pid>-<n>`, see
/// `xdptcp::stack::ReservedPorts`) of a namespace that no longer exists: a serve killed on
/// purpose by a test leaves its record, and the next start that would clean it up can never
/// happen in a deleted namespace (the reservation itself died with the namespace's sysctls).
pub(crate) fn remove_reserved_records(ino: u64) {
    let prefix = format!("reserved-{ino}-");
    let Ok(dir) = std::fs::read_dir("/run/xdptcp") else {
        return;
    };
    for e in dir.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parsing() {
        assert_eq!(
            parse_mac("ea:61:64:02:6e:8c"),
            Some([0xea, 0x61, 0x64, 0x02, 0x6e, 0x8c])
        );
        assert_eq!(parse_mac("ea:61:64:02:6e"), None);
        assert_eq!(parse_mac("ea:61:64:02:6e:8c:00"), None);
        assert_eq!(parse_mac("zz:61:64:02:6e:8c"), None);
    }
}
