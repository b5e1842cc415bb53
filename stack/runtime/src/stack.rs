//! Bringing a stack up on an interface: the start-up checks (each failure is one clear line,
//! [`StartError`]), the XDP steering program, the ephemeral-port reservation, and per worker
//! (queue q = worker index) an AF_XDP socket registered in the XSKMAP at q, a neighbour
//! back-end and an endpoint with its own share of the ephemeral range, assembled into
//! [`Worker`]s joined by the hand-off mesh. [`Stack::run`] runs them, one thread each, with a
//! control closure on the calling thread. Dropping a [`Stack`] unregisters the sockets,
//! detaches the program (its bpf_link) and restores the kernel's reserved ports.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

use xdptcp_xdp::{AttachOptions, CookieConfig, Steering};

use crate::app::App;
use crate::cookies::{FlagPolicy, SharedCookieSecrets, XdpCookieStats};
use crate::handoff::{mesh, HandoffConfig};
use crate::iface::{Addrs6, ExtraAddrs, Interface, InterfaceConfig, MAX_EXTRA_ADDRS};
use crate::neigh::route::{RouteMonitor, RouteView, ROUTE_REFRESH};
use crate::neigh::{KernelResolver, Netlink};
use crate::phy::{AfXdpConfig, AfXdpDevice, AfXdpError};
use crate::rss::{FlowOwner, DEFAULT_RSS_KEY};
use crate::tcp::endpoint::{Endpoint, EndpointSecrets};
use crate::tcp::TcpConfig;
use crate::time::Instant;
use crate::worker::{StatsHandle, Worker, WorkerConfig, WorkerSnapshot};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The machine's cores in order (what several workers are pinned to by default); empty if
/// they cannot be read.
pub fn machine_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect()
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// The interface to attach to.
    pub ifname: String,
    /// The stack's IPv4 address (must be on the interface; the kernel answers ARP for it);
    /// `None` for an IPv6-only stack ([`Stack::open_dual`] with at least one IPv6 address):
    /// then no IPv4 is steered to it at all.
    pub addr: Option<Ipv4Addr>,
    /// Further addresses of the interface the stack uses (`InterfaceConfig::extra_addrs`: at
    /// most `iface::MAX_EXTRA_ADDRS`); with any, the ephemeral range is steered for every
    /// destination address.
    pub extra_addrs: Vec<Ipv4Addr>,
    /// Ports steered to the stack (its listeners).
    pub ports: Vec<u16>,
    /// The stack's ephemeral port range for active opens (steered, and reserved from the
    /// kernel when `reserve_ports`).
    pub ephemeral: (u16, u16),
    /// Ask for AF_XDP zero-copy; if the driver refuses, run in copy mode
    /// (`Stack::zero_copy_fallback`).
    pub zero_copy: bool,
    /// Reserve `ephemeral` from the kernel (`net.ipv4.ip_local_reserved_ports`) while running,
    /// so the kernel's own active opens cannot take those ports.
    pub reserve_ports: bool,
    /// TCP settings for every worker's endpoint (the MSS is capped by the interface's MTU).
    pub tcp: TcpConfig,
    /// AF_XDP socket and UMEM sizes (`zero_copy` above overrides its own flag).
    pub afxdp: AfXdpConfig,
    /// Template of every worker's settings (`core` is set per worker from `cores`).
    pub worker: WorkerConfig,
    /// Workers = queues used (0..workers); at least 1.
    pub workers: usize,
    /// Worker i is pinned to `cores[i % len]`; empty: worker i to `worker.core + i` when
    /// `worker.core` is set, else unpinned.
    pub cores: Vec<usize>,
    /// The RSS key flows are mapped with (`None`: the NIC's, read with `ETHTOOL_GRSSH`, else
    /// the Microsoft default key, e.g. on veth, which has no RSS).
    pub rss_key: Option<[u8; 40]>,
}

impl StackOptions {
    /// The options the single-worker stack used before: one worker on queue 0.
    pub fn single(
        ifname: String,
        addr: Ipv4Addr,
        ports: Vec<u16>,
        ephemeral: (u16, u16),
    ) -> StackOptions {
        StackOptions {
            ifname,
            addr: Some(addr),
            extra_addrs: Vec::new(),
            ports,
            ephemeral,
            zero_copy: false,
            reserve_ports: true,
            tcp: TcpConfig::default(),
            afxdp: AfXdpConfig::default(),
            worker: WorkerConfig::default(),
            workers: 1,
            cores: Vec::new(),
            rss_key: None,
        }
    }

    fn core_of(&self, i: usize) -> Option<usize> {
        if !self.cores.is_empty() {
            return Some(self.cores[i % self.cores.len()]);
        }
        self.worker.core.map(|c| c + i)
    }
}

/// Why the stack could not start. Each prints as one line an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Not running as root: attaching XDP programs and opening AF_XDP sockets need
    /// CAP_NET_ADMIN and CAP_BPF.
    #[error(
        "must run as root (attaching XDP programs and opening AF_XDP sockets needs \
         CAP_NET_ADMIN and CAP_BPF)"
    )]
    NotRoot,
    /// The named interface does not exist in this network namespace.
    #[error("no such interface: {0:?} (in this network namespace)")]
    NoSuchInterface(String),
    /// The stack's address is not configured on the interface (`have`: the IPv4 addresses
    /// that are).
    #[error(
        "address {addr} is not on interface {ifname} (it has: {})",
        addr_list(have)
    )]
    AddressNotOnInterface {
        /// The address asked for.
        addr: Ipv4Addr,
        /// The interface.
        ifname: String,
        /// The IPv4 addresses the interface has.
        have: Vec<Ipv4Addr>,
    },
    /// Another XDP program is attached to the interface (another xdptcp?).
    #[error(
        "ports on {ifname} are already steered by another process (XDP program id \
         {prog_id} is attached; another xdptcp?)"
    )]
    AlreadySteered {
        /// The interface.
        ifname: String,
        /// The kernel's id of the program that is attached.
        prog_id: u32,
    },
    /// Loading or attaching the steering XDP program failed.
    #[error("XDP program: {0}")]
    Steering(xdptcp_xdp::Error),
    /// Creating the AF_XDP socket or its UMEM failed.
    #[error("AF_XDP socket: {0}")]
    Device(AfXdpError),
    /// Opening queue `queue` for worker `queue` failed (the interface has fewer queues?).
    #[error(
        "AF_XDP socket on queue {queue} (for {workers} workers; does the interface \
         have {workers} queues?): {error}"
    )]
    Queue {
        /// The receive queue (= the worker index).
        queue: u32,
        /// How many workers were asked for.
        workers: usize,
        /// What the socket said.
        error: AfXdpError,
    },
    /// A worker count outside 1..=64, or more workers than ephemeral ports (each worker
    /// needs a sub-range of its own).
    #[error("bad --workers {workers}: 1..=64 and at most one per ephemeral port ({ports})")]
    Workers {
        /// How many workers were asked for.
        workers: usize,
        /// Ports in the ephemeral range.
        ports: usize,
    },
    /// More workers than the interface has receive queues.
    #[error(
        "--workers {workers}: interface {ifname} has {queues} receive queue(s); use at \
         most {queues} (one worker per queue)"
    )]
    TooFewQueues {
        /// The interface.
        ifname: String,
        /// How many workers were asked for.
        workers: usize,
        /// How many receive queues the interface has.
        queues: u32,
    },
    /// Reading the interface's index, addresses or queue count over netlink failed.
    #[error("netlink: {0}")]
    Netlink(io::Error),
    /// Writing `net.ipv4.ip_local_reserved_ports` failed.
    #[error("reserving the ephemeral ports from the kernel: {0}")]
    ReservePorts(io::Error),
    /// An IPv6 address of the stack is not configured on the interface.
    #[error("address {addr} is not on interface {ifname} (add it with nodad, e.g. `ip -6 addr add {addr}/64 dev {ifname} nodad`)")]
    Address6NotOnInterface {
        /// The address asked for.
        addr: Ipv6Addr,
        /// The interface.
        ifname: String,
    },
    /// Neither an IPv4 nor an IPv6 address: nothing to serve on.
    #[error("no address: the stack needs an IPv4 or an IPv6 address on {0}")]
    NoAddress(String),
    /// More `extra_addrs` than `iface::MAX_EXTRA_ADDRS`.
    #[error("{0} extra addresses: at most {MAX_EXTRA_ADDRS} per interface")]
    TooManyAddrs(usize),
}

/// "a, b, c", or "no IPv4 address" for none ([`StartError::AddressNotOnInterface`]).
fn addr_list(have: &[Ipv4Addr]) -> String {
    if have.is_empty() {
        return "no IPv4 address".to_string();
    }
    let have: Vec<String> = have.iter().map(|a| a.to_string()).collect();
    have.join(", ")
}

/// Where the reserved-ports records live (the control module's directory too).
pub const STAT_DIR: &str = "/run/xdptcp";

const RESERVED_PORTS: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// Our range added to `net.ipv4.ip_local_reserved_ports` (of the calling thread's network
/// namespace), and removed again on drop ([`ReservedPorts::release`]).
///
/// Crash recovery: while reserved, a record `/run/xdptcp/reserved-<netns inode>-<pid>-<n>`
/// (contents `LO-HI`) says what this process added. A serve that dies without cleaning up
/// (SIGKILL, and its janitor too) leaves the record; the next [`ReservedPorts::reserve`] in
/// the same network namespace finds records whose process is gone, removes their ranges and
/// the records. Release removes only our range (not "restore the old value"), and keeps the
/// ranges of other live serves of the namespace, so serves that start and stop in any order
/// leave the list as they found it.
#[derive(Debug, Clone)]
pub struct ReservedPorts {
    lo: u16,
    hi: u16,
    netns: u64,
    record: std::path::PathBuf,
    released: bool,
}

/// Ranges of a reserved-ports list (`1,5-7,61000-61999`).
fn parse_ranges(s: &str) -> Vec<(u16, u16)> {
    s.trim()
        .split(',')
        .filter_map(|r| {
            let r = r.trim();
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        })
        .filter(|(a, b)| a <= b)
        .collect()
}

/// `ranges` minus `[lo, hi]`, in the kernel's list format ("\n" when empty: an empty write
/// is rejected by some kernels, a newline clears the list).
fn subtract_range(ranges: &[(u16, u16)], lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for &(a, b) in ranges {
        if b < lo || a > hi {
            out.push((a, b));
            continue;
        }
        if a < lo {
            out.push((a, lo - 1));
        }
        if b > hi {
            out.push((hi + 1, b));
        }
    }
    out
}

fn format_ranges(r: &[(u16, u16)]) -> String {
    if r.is_empty() {
        return "\n".to_string();
    }
    r.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The inode of the calling thread's network namespace.
pub fn netns_inode() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/thread-self/ns/net")?.ino())
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks existence/permission.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// The records of network namespace `netns`: (path, pid, lo, hi).
fn records(netns: u64) -> Vec<(std::path::PathBuf, i32, u16, u16)> {
    let prefix = format!("reserved-{netns}-");
    let Ok(dir) = std::fs::read_dir(STAT_DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .take(4096)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            // reserved-<netns>-<pid>-<n>: n counts the reservations of one process.
            let rest = name.strip_prefix(&prefix)?;
            let pid: i32 = rest.split('-').next()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let &(lo, hi) = parse_ranges(&text).first()?;
            Some((e.path(), pid, lo, hi))
        })
        .collect()
}

impl ReservedPorts {
    /// Adds `lo-hi` to the calling thread's network namespace's reserved ports (after
    /// removing what dead serves of this namespace left) and writes the record.
    pub fn reserve(lo: u16, hi: u16) -> io::Result<ReservedPorts> {
        let netns = netns_inode()?;
        let me = std::process::id() as i32;
        let mut list = parse_ranges(&std::fs::read_to_string(RESERVED_PORTS)?);
        let live: Vec<_> = records(netns);
        for (path, pid, a, b) in &live {
            if *pid != me && !pid_alive(*pid) {
                list = subtract_range(&list, *a, *b);
                let _ = std::fs::remove_file(path);
            }
        }
        static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SERIAL.fetch_add(1, Ordering::Relaxed);
        let dir = std::path::Path::new(STAT_DIR);
        let record = dir.join(format!("reserved-{netns}-{me}-{n}"));
        // The record first: a reservation is never made without one.
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        std::fs::write(&record, format!("{lo}-{hi}\n"))?;
        list.push((lo, hi));
        if let Err(e) = std::fs::write(RESERVED_PORTS, format_ranges(&list)) {
            let _ = std::fs::remove_file(&record);
            return Err(e);
        }
        Ok(ReservedPorts {
            lo,
            hi,
            netns,
            record,
            released: false,
        })
    }

    /// The record file.
    pub fn record(&self) -> &std::path::Path {
        &self.record
    }

    /// Removes our range from the list (keeping the ranges of the namespace's other live
    /// serves) and the record. Idempotent: a janitor may run it again.
    pub fn release(&mut self) {
        if self.released {
            return;
        }
        if let Ok(cur) = std::fs::read_to_string(RESERVED_PORTS) {
            let mut list = subtract_range(&parse_ranges(&cur), self.lo, self.hi);
            let me = std::process::id() as i32;
            for (path, pid, a, b) in records(self.netns) {
                if path != self.record && pid != me && pid_alive(pid) {
                    list.push((a, b));
                }
            }
            if std::fs::write(RESERVED_PORTS, format_ranges(&list)).is_ok() {
                // Without the right to remove the record (an unprivileged serve) the
                // janitor removes it; a stale record is harmless (see above).
                let _ = std::fs::remove_file(&self.record);
                self.released = !self.record.exists();
            }
        }
    }
}

impl Drop for ReservedPorts {
    fn drop(&mut self) {
        self.release();
    }
}

/// A stack on queues 0..N of one interface. Field order is drop order after `Drop`.
pub struct Stack {
    /// Worker i serves queue i.
    pub workers: Vec<Worker<AfXdpDevice, KernelResolver>>,
    steering: Steering,
    _reserved: Option<ReservedPorts>,
    /// Zero-copy was asked for but the driver refused it: running in copy mode.
    pub zero_copy_fallback: bool,
    /// The flow-to-worker map in use.
    pub owner: FlowOwner,
    /// `xdp_syncookies = 1`: the shared secrets and the program's cookie settings.
    cookies: Option<XdpCookies>,
    /// The kernel's routes, refreshed on the route thread while [`Stack::run`] runs.
    routes: RouteMonitor,
}

/// SYN cookies in XDP (`xdp_syncookies = 1`): what the stack's cookie thread keeps up to date in the
/// steering program: the shared secret (rotated), the listeners' flags in
/// `tcp_syncookies = 1`, and the counters for `xdptcp stat`.
#[derive(Debug)]
struct XdpCookies {
    secrets: SharedCookieSecrets,
    /// The ISN / timestamp-offset key every endpoint of the stack shares.
    isn_key: [u8; 16],
    tcp: TcpConfig,
    ttl: u8,
    /// The stack's IPv4 address (`None`: IPv6 only, no IPv4 listener to flag).
    addr: Option<Ipv4Addr>,
    /// The epoch whose secret the program has (`None`: not written yet).
    written: Option<u64>,
    policy: FlagPolicy,
    stats: Arc<XdpCookieStats>,
}

/// How often the route thread looks for route-change notifications.
const ROUTE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// How often the cookie thread looks at the workers and the program.
const COOKIE_TICK: std::time::Duration = std::time::Duration::from_millis(50);

impl XdpCookies {
    fn config(&self, now: Instant) -> CookieConfig {
        let (secret, previous) = self.secrets.xdp_at(now);
        let t = &self.tcp;
        CookieConfig {
            enabled: true,
            mode: t.syncookies as u8,
            secret,
            previous,
            ts_secret: self.isn_key,
            period_ns: self.secrets.period().as_nanos() as u64,
            mss: t.mss,
            window: t.rmem.min(0xffff) as u16,
            rcv_shift: crate::tcp::Negotiated::our_shift(t),
            ttl: self.ttl,
            timestamps: t.timestamps,
            sack: t.sack,
            window_scaling: t.window_scaling,
        }
    }

    /// Writes the secrets when the program's epoch changed (and the first time).
    fn rotate(&mut self, now: Instant, steering: &mut Steering) -> Result<(), xdptcp_xdp::Error> {
        let lagged = Instant::from_nanos(
            now.as_nanos()
                .saturating_sub(crate::cookies::XDP_LAG.as_nanos() as u64),
        );
        let epoch = self.secrets.epoch(lagged);
        if self.written == Some(epoch) {
            return Ok(());
        }
        steering.set_cookie_config(&self.config(now))?;
        if self.written.is_some() {
            self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        }
        self.written = Some(epoch);
        Ok(())
    }

    /// One tick of the cookie thread.
    fn tick(&mut self, now: Instant, steering: &mut Steering, handles: &[StatsHandle]) {
        let _ = self.rotate(now, steering);
        let Ok(c) = steering.counters() else {
            return;
        };
        self.stats
            .syn_acks
            .store(c.cookie_syn_acks, Ordering::Relaxed);
        self.stats.slow.store(c.cookie_slow, Ordering::Relaxed);
        let Some(addr) = self.addr else {
            return;
        };
        if self.tcp.syncookies != crate::tcp::SynCookieMode::WhenFull {
            return;
        }
        // Cookies sent by the workers, per listening port, summed over workers.
        let mut sent: Vec<(Ipv4Addr, u16, u64)> = Vec::new();
        for h in handles {
            for l in h.get().listeners() {
                match sent.iter_mut().find(|e| e.1 == l.port) {
                    Some(e) => e.2 += l.stats.cookies_sent,
                    None => sent.push((addr, l.port, l.stats.cookies_sent)),
                }
            }
        }
        let flips = self
            .policy
            .tick(now, &sent, c.cookie_syn_acks, |addr, port, on| {
                // The stack steers (addr, port); a wildcard entry may exist too.
                let _ = steering.set_listen_cookies(addr, port, on);
                let _ = steering.set_listen_cookies(Ipv4Addr::UNSPECIFIED, port, on);
            });
        self.stats.mode_flips.fetch_add(flips, Ordering::Relaxed);
    }
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("workers", &self.workers.len())
            .field("steering", &self.steering)
            .finish_non_exhaustive()
    }
}

/// Whether the process runs as root.
/// Secrets for one endpoint (ISN key, SYN-cookie key, port seed) from the OS RNG (getrandom).
pub fn os_secrets() -> EndpointSecrets {
    use rand::RngCore;
    let mut b = [0u8; 40];
    rand::rngs::OsRng.fill_bytes(&mut b);
    EndpointSecrets::from_bytes(b)
}

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Stack {
    /// The checks and set-up, in the calling thread's network namespace.
    pub fn open(o: &StackOptions) -> Result<Stack, StartError> {
        Self::open_dual(o, &[])
    }

    /// [`Stack::open`] with IPv6 addresses besides `o.addr`: one stack for both families
    /// (dual-stack), or, with `o.addr` `None`, an IPv6-only stack (no IPv4 steered; the
    /// ephemeral range only on the IPv6 addresses). Each address must be on the interface
    /// (the kernel keeps it and answers neighbour solicitations); every listener of `o.ports` is also opened on each of them,
    /// the XDP program steers their ports and the shared ephemeral range to the stack, and
    /// IPv6 active opens leave from the first.
    pub fn open_dual(o: &StackOptions, addrs6: &[Ipv6Addr]) -> Result<Stack, StartError> {
        if !is_root() {
            return Err(StartError::NotRoot);
        }
        let mut nl = Netlink::open().map_err(StartError::Netlink)?;
        let link = nl
            .link_info(&o.ifname)
            .map_err(|_| StartError::NoSuchInterface(o.ifname.clone()))?;
        let have = nl.link_addrs(link.ifindex).map_err(StartError::Netlink)?;
        if o.addr.is_none() && o.extra_addrs.is_empty() && addrs6.is_empty() {
            return Err(StartError::NoAddress(o.ifname.clone()));
        }
        if let Some(&addr) = o
            .addr
            .iter()
            .chain(&o.extra_addrs)
            .find(|a| !have.contains(a))
        {
            return Err(StartError::AddressNotOnInterface {
                addr,
                ifname: o.ifname.clone(),
                have,
            });
        }
        let extra = ExtraAddrs::new(&o.extra_addrs).map_err(StartError::TooManyAddrs)?;
        let addrs6_cfg = Addrs6::new(addrs6).map_err(StartError::TooManyAddrs)?;
        if !addrs6.is_empty() {
            let have6 = nl.link_addrs6(link.ifindex).map_err(StartError::Netlink)?;
            if let Some(&addr) = addrs6.iter().find(|a| !have6.contains(a)) {
                return Err(StartError::Address6NotOnInterface {
                    addr,
                    ifname: o.ifname.clone(),
                });
            }
        }
        if o.workers > link.rx_queues as usize {
            return Err(StartError::TooFewQueues {
                ifname: o.ifname.clone(),
                workers: o.workers,
                queues: link.rx_queues,
            });
        }
        let steering =
            Steering::attach(&o.ifname, AttachOptions::default()).map_err(|e| match e {
                xdptcp_xdp::Error::AlreadyAttached { ifname, prog_id } => {
                    StartError::AlreadySteered { ifname, prog_id }
                }
                xdptcp_xdp::Error::NoSuchInterface(i) => StartError::NoSuchInterface(i),
                e => StartError::Steering(e),
            })?;
        let reserved = if o.reserve_ports {
            Some(
                ReservedPorts::reserve(o.ephemeral.0, o.ephemeral.1)
                    .map_err(StartError::ReservePorts)?,
            )
        } else {
            None
        };
        let n = o.workers;
        let size = usize::from(o.ephemeral.1.saturating_sub(o.ephemeral.0)) + 1;
        if n == 0 || n > 64 || size < n {
            return Err(StartError::Workers {
                workers: n,
                ports: size,
            });
        }
        let mut afxdp = AfXdpConfig {
            zero_copy: o.zero_copy,
            ..o.afxdp
        };
        let mut zero_copy_fallback = false;
        let mut tcp = o.tcp.clone();
        // MSS from the interface MTU (IPv4 + TCP headers: 40 bytes).
        tcp.mss = tcp.mss.min(link.mtu.saturating_sub(40).min(65_535) as u16);
        // The NIC's key when it reports one (veth does not).
        let key = o
            .rss_key
            .or_else(|| nic_rss_key(&o.ifname).ok().flatten())
            .unwrap_or(DEFAULT_RSS_KEY);
        let owner = FlowOwner::new(key, n).with_ephemeral(o.ephemeral.0, o.ephemeral.1);
        let mut handoffs = mesh(
            n,
            HandoffConfig {
                frame_len: afxdp.frame_size as usize,
                ..HandoffConfig::default()
            },
        )
        .into_iter();
        let mut first_nl = Some(nl);
        let routes = RouteMonitor::open(os_secrets().seed).map_err(StartError::Netlink)?;
        // xdp_syncookies: one ISN / timestamp key and one cookie master key for all workers
        // and the program (a cookie must validate wherever its ACK lands).
        let shared = tcp.xdp_syncookies.then(os_secrets);
        let mut stack = Stack {
            workers: Vec::with_capacity(n),
            steering,
            _reserved: reserved,
            zero_copy_fallback: false,
            owner,
            routes,
            cookies: shared.as_ref().map(|sh| XdpCookies {
                secrets: SharedCookieSecrets::new(sh.cookie),
                isn_key: sh.isn,
                tcp: tcp.clone(),
                ttl: InterfaceConfig::with_addr(o.addr, link.mac).ttl,
                addr: o.addr,
                written: None,
                policy: FlagPolicy::new((tcp.max_syn_backlog / 2) as u64),
                stats: Arc::new(XdpCookieStats::default()),
            }),
        };
        for q in 0..n {
            let dev = match AfXdpDevice::open(&o.ifname, q as u32, afxdp) {
                Err(AfXdpError::ZeroCopyUnsupported { .. }) => {
                    zero_copy_fallback = true;
                    afxdp.zero_copy = false;
                    AfXdpDevice::open(&o.ifname, q as u32, afxdp)
                }
                r => r,
            }
            .map_err(|error| match q {
                0 => StartError::Device(error),
                _ => StartError::Queue {
                    queue: q as u32,
                    workers: n,
                    error,
                },
            })?;
            stack
                .steering
                .register_xsk(q as u32, dev.fd())
                .map_err(StartError::Steering)?;
            let nl = match first_nl.take() {
                Some(nl) => nl,
                None => Netlink::open().map_err(StartError::Netlink)?,
            };
            let range = if n == 1 {
                o.ephemeral.0..=o.ephemeral.1
            } else {
                owner.ephemeral_range(q)
            };
            let mut secrets = os_secrets();
            if let Some(sh) = &shared {
                secrets.isn = sh.isn;
                secrets.cookie = sh.cookie; // replaced by the epoch's secret at once
            }
            let mut ep = Endpoint::new(tcp.clone(), secrets, range);
            ep.set_xdp_cookies(shared.is_some());
            let resolver = KernelResolver::new(nl, link.ifindex)
                .with_routes(RouteView::new(stack.routes.shared()));
            if n > 1 {
                ep.set_rss_preference(owner, q);
            }
            let mut icfg = InterfaceConfig::with_addr(o.addr, link.mac);
            icfg.extra_addrs = extra;
            icfg.hash_seed = os_secrets().seed;
            icfg.addrs6 = addrs6_cfg;
            // One flow-label secret per worker is enough: a flow only leaves from its owner.
            icfg.flow_label_secret = os_secrets().isn;
            let mut iface = Interface::new(dev, resolver, ep, icfg);
            if let (true, Some(h)) = (n > 1, handoffs.next()) {
                iface.set_shard(q, owner);
                iface.set_handoff(h);
            }
            let cfg = WorkerConfig {
                core: o.core_of(q),
                ..o.worker
            };
            let mut worker = Worker::new(q, iface, cfg);
            if let Some(c) = &stack.cookies {
                worker.set_shared_cookies(c.secrets);
            }
            stack.workers.push(worker);
        }
        for (a, &p) in o
            .addr
            .iter()
            .flat_map(|&a| o.ports.iter().map(move |p| (a, p)))
        {
            stack
                .steering
                .add_listen(a, p)
                .map_err(StartError::Steering)?;
        }
        for &a in addrs6 {
            stack.steering.add_addr6(a).map_err(StartError::Steering)?;
            for &p in &o.ports {
                stack
                    .steering
                    .add_listen6(a, p)
                    .map_err(StartError::Steering)?;
            }
        }
        match (o.addr, o.extra_addrs.is_empty()) {
            (Some(a), true) => stack
                .steering
                .set_ephemeral(a, o.ephemeral.0, o.ephemeral.1),
            // Every address of the stack (steer.bpf.c).
            (_, false) => {
                stack
                    .steering
                    .set_ephemeral(Ipv4Addr::UNSPECIFIED, o.ephemeral.0, o.ephemeral.1)
            }
            // IPv6 only: the range on the stack's IPv6 addresses, no IPv4 taken.
            (None, true) => stack.steering.set_ephemeral6(o.ephemeral.0, o.ephemeral.1),
        }
        .map_err(StartError::Steering)?;
        if let Some(c) = &mut stack.cookies {
            c.rotate(crate::clock::now(), &mut stack.steering)
                .map_err(StartError::Steering)?;
        }
        stack.zero_copy_fallback = zero_copy_fallback;
        Ok(stack)
    }

    /// A stack of its own for queue `queue` of `queues`, in a process forked from the one
    /// that opened `self` (the POSIX layer's worker processes, F-Stack's model: one stack
    /// per process). It shares `self`'s XDP program and maps (no second attach, no second
    /// port reservation: the parent keeps both) and registers its own AF_XDP socket at
    /// `queue` in the XSKMAP, replacing whatever was there. The socket can only bind once
    /// no other socket holds the queue ([`AfXdpDevice::open`]: EBUSY until then). With
    /// `queues` > 1 its ephemeral ports are the ones whose flows hash to `queue`.
    pub fn open_queue(
        &self,
        o: &StackOptions,
        queue: usize,
        queues: usize,
    ) -> Result<Stack, StartError> {
        let mut nl = Netlink::open().map_err(StartError::Netlink)?;
        let link = nl
            .link_info(&o.ifname)
            .map_err(|_| StartError::NoSuchInterface(o.ifname.clone()))?;
        if queue >= link.rx_queues as usize {
            return Err(StartError::TooFewQueues {
                ifname: o.ifname.clone(),
                workers: queue + 1,
                queues: link.rx_queues,
            });
        }
        let mut steering = self
            .steering
            .clone_unlinked()
            .map_err(StartError::Steering)?;
        let afxdp = AfXdpConfig {
            zero_copy: o.zero_copy && !self.zero_copy_fallback,
            ..o.afxdp
        };
        let q = queue as u32;
        let dev = AfXdpDevice::open(&o.ifname, q, afxdp).map_err(StartError::Device)?;
        steering
            .register_xsk(q, dev.fd())
            .map_err(StartError::Steering)?;
        let mut tcp = o.tcp.clone();
        tcp.mss = tcp.mss.min(link.mtu.saturating_sub(40).min(65_535) as u16);
        let key = o
            .rss_key
            .or_else(|| nic_rss_key(&o.ifname).ok().flatten())
            .unwrap_or(DEFAULT_RSS_KEY);
        let owner = FlowOwner::new(key, queues.max(1)).with_ephemeral(o.ephemeral.0, o.ephemeral.1);
        let routes = RouteMonitor::open(os_secrets().seed).map_err(StartError::Netlink)?;
        let range = if queues <= 1 {
            o.ephemeral.0..=o.ephemeral.1
        } else {
            owner.ephemeral_range(queue)
        };
        let mut secrets = os_secrets();
        if let Some(c) = &self.cookies {
            secrets.isn = c.isn_key;
        }
        let mut ep = Endpoint::new(tcp, secrets, range);
        ep.set_xdp_cookies(self.cookies.is_some());
        if queues > 1 {
            ep.set_rss_preference(owner, queue);
        }
        let resolver =
            KernelResolver::new(nl, link.ifindex).with_routes(RouteView::new(routes.shared()));
        let mut icfg = InterfaceConfig::with_addr(o.addr, link.mac);
        icfg.extra_addrs = ExtraAddrs::new(&o.extra_addrs).map_err(StartError::TooManyAddrs)?;
        icfg.hash_seed = os_secrets().seed;
        // The IPv6 addresses `self` was opened with (`open_dual`); the maps steer them already.
        if let Some(w) = self.workers.first() {
            icfg.addrs6 = w.iface.config().addrs6;
        }
        let iface = Interface::new(dev, resolver, ep, icfg);
        let mut worker = Worker::new(
            queue,
            iface,
            WorkerConfig {
                core: o.core_of(queue),
                ..o.worker
            },
        );
        if let Some(c) = &self.cookies {
            worker.set_shared_cookies(c.secrets);
        }
        Ok(Stack {
            workers: vec![worker],
            steering,
            _reserved: None,
            zero_copy_fallback: self.zero_copy_fallback,
            owner,
            cookies: None,
            routes,
        })
    }

    /// Every worker's snapshot handle (index = worker).
    pub fn stats_handles(&self) -> Vec<StatsHandle> {
        self.workers.iter().map(Worker::stats_handle).collect()
    }

    /// Runs worker i with `apps[i]` on its own thread (`xdptcp-w<i>`, pinned per its config)
    /// until `stop` is set or an application is done (any worker ending sets `stop`, so all
    /// end together), while `control` runs on the calling thread (it should return once
    /// `stop` is set). Returns each worker's final snapshot.
    ///
    /// Panic policy: a worker that panics stops every worker (its thread sets `stop` while
    /// unwinding); the others end normally, and the first panic (lowest worker index) comes
    /// back as [`WorkerPanic`] naming the worker and the cause, with this `Stack` intact so
    /// that dropping it detaches the program and restores the reserved ports as always.
    /// (A shard's connections and timers live only in its worker; restarting one worker
    /// alone would reset them anyway and could hide a bug that hits every shard.)
    ///
    /// Panics unless there is exactly one app per worker (a programming error: a worker
    /// without an app would leave its queue unserved).
    pub fn run<A, C>(
        &mut self,
        apps: &mut [A],
        stop: Arc<AtomicBool>,
        control: C,
    ) -> Result<Vec<WorkerSnapshot>, WorkerPanic>
    where
        A: App + Send,
        C: FnOnce(&[StatsHandle]),
    {
        assert_eq!(apps.len(), self.workers.len(), "one app per worker");
        let handles = self.stats_handles();
        let trigger = test_panic_trigger();
        let Stack {
            workers,
            steering,
            cookies,
            routes,
            ..
        } = self;
        std::thread::scope(|s| {
            {
                // The route thread: route changes reach the workers' route views.
                let stop = stop.clone();
                s.spawn(move || {
                    let mut last = std::time::Instant::now();
                    while !stop.load(Ordering::Relaxed) {
                        let force = last.elapsed() >= ROUTE_REFRESH;
                        if force {
                            last = std::time::Instant::now();
                        }
                        routes.poll(force);
                        std::thread::sleep(ROUTE_POLL);
                    }
                });
            }
            if let Some(c) = cookies.as_mut() {
                // The cookie thread: rotation, tcp_syncookies = 1 flags, counters.
                let (stop, handles) = (stop.clone(), handles.clone());
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        c.tick(crate::clock::now(), steering, &handles);
                        std::thread::sleep(COOKIE_TICK);
                    }
                });
            }
            let threads: Vec<_> = workers
                .iter_mut()
                .zip(apps.iter_mut())
                .enumerate()
                .map(|(i, (w, app))| {
                    w.set_stop_flag(stop.clone());
                    let stop = stop.clone();
                    let left = trigger.filter(|t| t.0 == i).map(|t| Cell::new(t.1));
                    std::thread::Builder::new()
                        .name(format!("xdptcp-w{i}"))
                        .spawn_scoped(s, move || {
                            // Set `stop` however this worker ends (also on a panic).
                            let _guard = StopOnDrop(stop);
                            w.run(&mut PanicAfter {
                                app,
                                left,
                                worker: i,
                            })
                        })
                })
                .collect();
            // A worker thread that could not even start: stop the others.
            if threads.iter().any(|t| t.is_err()) {
                stop.store(true, Ordering::Relaxed);
            }
            control(&handles);
            let mut snaps = Vec::with_capacity(threads.len());
            let mut first: Option<WorkerPanic> = None;
            for (i, t) in threads.into_iter().enumerate() {
                let r = match t {
                    Ok(t) => t.join().map_err(|p| panic_message(p.as_ref())),
                    Err(e) => Err(format!("thread not started: {e}")),
                };
                match r {
                    Ok(snap) => snaps.push(snap),
                    Err(message) => {
                        first.get_or_insert(WorkerPanic { worker: i, message });
                    }
                }
            }
            match first {
                Some(p) => Err(p),
                None => Ok(snaps),
            }
        })
    }

    /// The steering program's counters.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// The ports reserved from the kernel (for a janitor that must release them).
    pub fn reserved_ports(&self) -> Option<&ReservedPorts> {
        self._reserved.as_ref()
    }

    /// The steering program, to steer listening ports added while running (the POSIX
    /// layer's `listen`, which owns the workers' loop itself instead of [`Stack::run`]).
    pub fn steering_mut(&mut self) -> &mut Steering {
        &mut self.steering
    }

    /// The route refresher's counters, moving while [`Stack::run`] runs.
    pub fn route_stats(&self) -> Arc<crate::neigh::route::RouteStats> {
        self.routes.stats()
    }

    /// The XDP cookie counters (`xdp_syncookies = 1`), refreshed while [`Stack::run`] runs.
    pub fn xdp_cookie_stats(&self) -> Option<Arc<XdpCookieStats>> {
        self.cookies.as_ref().map(|c| c.stats.clone())
    }
}

/// A worker that panicked (see [`Stack::run`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker {worker} panicked: {message}")]
pub struct WorkerPanic {
    /// Its index (= its queue).
    pub worker: usize,
    /// The panic's message.
    pub message: String,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string())
}

/// Test-only fault injection: `XDPTCP_TEST_PANIC=N:K` makes worker N panic after K loop
/// iterations (read once per [`Stack::run`]). For the tests of the panic policy; malformed
/// values are ignored.
pub const TEST_PANIC_ENV: &str = "XDPTCP_TEST_PANIC";

fn test_panic_trigger() -> Option<(usize, u64)> {
    let v = std::env::var(TEST_PANIC_ENV).ok()?;
    let (n, k) = v.split_once(':')?;
    Some((n.parse().ok()?, k.parse().ok()?))
}

/// The worker's app, with the test trigger: `App::is_done` is asked once per loop iteration.
struct PanicAfter<'a, A: ?Sized> {
    app: &'a mut A,
    left: Option<Cell<u64>>,
    worker: usize,
}

impl<A: App + ?Sized> App for PanicAfter<'_, A> {
    fn on_start(&mut self, io: &mut crate::app::AppIo<'_>) {
        self.app.on_start(io)
    }
    fn on_event(
        &mut self,
        io: &mut crate::app::AppIo<'_>,
        conn: crate::tcp::endpoint::ConnId,
        ev: crate::app::AppEvent,
    ) {
        self.app.on_event(io, conn, ev)
    }
    fn on_stop(&mut self, io: &mut crate::app::AppIo<'_>) {
        self.app.on_stop(io)
    }
    fn is_done(&self) -> bool {
        if let Some(c) = &self.left {
            match c.get() {
                0 => panic!(
                    "test-triggered panic in worker {} ({TEST_PANIC_ENV})",
                    self.worker
                ),
                k => c.set(k - 1),
            }
        }
        self.app.is_done()
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Unregister before the sockets close (see AfXdpDevice::open).
        for w in &self.workers {
            let _ = self.steering.unregister_xsk(w.iface.device().queue_id());
        }
    }
}

/// The NIC's Toeplitz RSS key (`ETHTOOL_GRSSH`), if the driver reports a Toeplitz key of at
/// least 40 bytes. Of a longer key (ice and i40e have 52 bytes) the first 40 are returned:
/// an IPv4 4-tuple's 12 input bytes only ever read key bytes 0..16.
/// `Ok(None)`: no RSS (veth answers EOPNOTSUPP) or another hash function or key size; the
/// caller then uses the default key (hand-offs keep every flow working either way).
pub fn nic_rss_key(ifname: &str) -> io::Result<Option<[u8; 40]>> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GRSSH: u32 = 0x46;
    const ETH_RSS_HASH_TOP: u8 = 1;
    /// `struct ethtool_rxfh` without its flexible array: cmd, rss_context, indir_size,
    /// key_size, hfunc, input_xfrm, rsvd8[2], rsvd32.
    const HDR: usize = 24;
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let ask = |buf: &mut [u32]| -> io::Result<()> {
        // SAFETY: ifreq is plain data; all-zero is valid.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(ifname.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = buf.as_mut_ptr().cast();
        // SAFETY: SIOCETHTOOL reads/writes `buf`, which is large enough for the sizes it
        // carries (the kernel checks them against its own).
        let r = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                SIOCETHTOOL as _,
                &mut ifr as *mut libc::ifreq,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // First ask for the sizes.
    let mut hdr = [0u32; HDR / 4];
    hdr[0] = ETHTOOL_GRSSH;
    match ask(&mut hdr) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(None),
        r => r?,
    }
    let (indir, key_size) = (hdr[2] as usize, hdr[3] as usize);
    if !(40..=256).contains(&key_size) || indir > 1 << 16 {
        return Ok(None);
    }
    let mut buf = vec![0u32; HDR / 4 + indir + key_size.div_ceil(4)];
    buf[0] = ETHTOOL_GRSSH;
    buf[2] = indir as u32;
    buf[3] = key_size as u32;
    ask(&mut buf)?;
    let hfunc = buf[4].to_ne_bytes()[0];
    if hfunc != 0 && hfunc & ETH_RSS_HASH_TOP == 0 {
        return Ok(None);
    }
    let mut key = [0u8; 40];
    for (i, w) in buf[HDR / 4 + indir..].iter().take(10).enumerate() {
        key[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
    }
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_port_lists_subtract_and_format() {
        let l = parse_ranges("1,5-7,61000-61999\n");
        assert_eq!(l, vec![(1, 1), (5, 7), (61000, 61999)]);
        assert_eq!(format_ranges(&subtract_range(&l, 61000, 61999)), "1,5-7");
        assert_eq!(
            format_ranges(&subtract_range(&l, 6, 61500)),
            "1,5,61501-61999"
        );
        assert_eq!(format_ranges(&subtract_range(&[(10, 20)], 10, 20)), "\n");
        assert_eq!(parse_ranges(""), vec![]);
    }

    #[test]
    fn os_secrets_differ() {
        // 2^-128 chance of a false failure.
        let (a, b) = (os_secrets(), os_secrets());
        assert_ne!((a.isn, a.cookie), (b.isn, b.cookie));
    }

    #[test]
    fn rss_key_of_devices_without_rss_is_none_and_unknown_interface_is_an_error() {
        // The loopback device has no RSS (EOPNOTSUPP).
        assert!(matches!(nic_rss_key("lo"), Ok(None)));
        assert!(nic_rss_key("xdptcp-nope0").is_err());
        assert!(nic_rss_key("a-name-far-too-long-for-ifnamsiz").is_err());
    }

    #[test]
    fn start_errors_print_one_line() {
        assert_eq!(
            StartError::NotRoot.to_string(),
            "must run as root (attaching XDP programs and opening AF_XDP sockets needs \
             CAP_NET_ADMIN and CAP_BPF)"
        );
        let not_on = |have: Vec<Ipv4Addr>| StartError::AddressNotOnInterface {
            addr: Ipv4Addr::new(198, 18, 0, 1),
            ifname: "veth0".into(),
            have,
        };
        assert_eq!(
            not_on(vec![]).to_string(),
            "address 198.18.0.1 is not on interface veth0 (it has: no IPv4 address)"
        );
        assert_eq!(
            StartError::NoAddress("veth0".into()).to_string(),
            "no address: the stack needs an IPv4 or an IPv6 address on veth0"
        );
        assert_eq!(
            not_on(vec![
                Ipv4Addr::new(198, 18, 0, 2),
                Ipv4Addr::new(198, 18, 0, 3)
            ])
            .to_string(),
            "address 198.18.0.1 is not on interface veth0 (it has: 198.18.0.2, 198.18.0.3)"
        );
        assert_eq!(
            StartError::NoSuchInterface("x0".into()).to_string(),
            "no such interface: \"x0\" (in this network namespace)"
        );
        assert_eq!(
            StartError::TooManyAddrs(40).to_string(),
            "40 extra addresses: at most 32 per interface"
        );
        assert_eq!(
            StartError::Workers {
                workers: 3,
                ports: 2
            }
            .to_string(),
            "bad --workers 3: 1..=64 and at most one per ephemeral port (2)"
        );
    }
}
