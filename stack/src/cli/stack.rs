//! Bringing a stack up on one interface queue: the start-up checks (each failure is one clear
//! line, [`StartError`]), the XDP steering program, the ephemeral-port reservation, the AF_XDP
//! socket, the neighbour back-end and the endpoint, assembled into a [`Worker`]. Dropping a
//! [`Stack`] unregisters the socket, detaches the program (its bpf_link) and restores the
//! kernel's reserved ports.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use xdptcp_xdp::{AttachOptions, Steering};

use crate::iface::{Interface, InterfaceConfig};
use crate::neigh::{KernelResolver, Netlink};
use crate::phy::{AfXdpConfig, AfXdpDevice, AfXdpError};
use crate::tcp::endpoint::{Endpoint, EndpointSecrets};
use crate::tcp::TcpConfig;
use crate::worker::{Worker, WorkerConfig};

/// What to bring up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    pub ifname: String,
    pub addr: Ipv4Addr,
    /// Ports steered to the stack (its listeners).
    pub ports: Vec<u16>,
    /// The stack's ephemeral port range for active opens (steered, and reserved from the
    /// kernel when `reserve_ports`).
    pub ephemeral: (u16, u16),
    pub zero_copy: bool,
    pub reserve_ports: bool,
    pub tcp: TcpConfig,
    pub afxdp: AfXdpConfig,
    pub worker: WorkerConfig,
}

/// Why the stack could not start. Each prints as one line an operator can act on.
#[derive(Debug)]
pub enum StartError {
    NotRoot,
    NoSuchInterface(String),
    AddressNotOnInterface {
        addr: Ipv4Addr,
        ifname: String,
        have: Vec<Ipv4Addr>,
    },
    AlreadySteered {
        ifname: String,
        prog_id: u32,
    },
    Steering(xdptcp_xdp::Error),
    Device(AfXdpError),
    Netlink(io::Error),
    ReservePorts(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotRoot => f.write_str(
                "must run as root (attaching XDP programs and opening AF_XDP sockets needs \
                 CAP_NET_ADMIN and CAP_BPF)",
            ),
            StartError::NoSuchInterface(i) => {
                write!(f, "no such interface: {i:?} (in this network namespace)")
            }
            StartError::AddressNotOnInterface { addr, ifname, have } => {
                let have: Vec<String> = have.iter().map(|a| a.to_string()).collect();
                write!(
                    f,
                    "address {addr} is not on interface {ifname} (it has: {})",
                    if have.is_empty() {
                        "no IPv4 address".to_string()
                    } else {
                        have.join(", ")
                    }
                )
            }
            StartError::AlreadySteered { ifname, prog_id } => write!(
                f,
                "ports on {ifname} are already steered by another process (XDP program id \
                 {prog_id} is attached; another xdptcp?)"
            ),
            StartError::Steering(e) => write!(f, "XDP program: {e}"),
            StartError::Device(e) => write!(f, "AF_XDP socket: {e}"),
            StartError::Netlink(e) => write!(f, "netlink: {e}"),
            StartError::ReservePorts(e) => {
                write!(f, "reserving the ephemeral ports from the kernel: {e}")
            }
        }
    }
}

impl std::error::Error for StartError {}

const RESERVED_PORTS: &str = "/proc/sys/net/ipv4/ip_local_reserved_ports";

/// `net.ipv4.ip_local_reserved_ports` extended by our range; the old value comes back on drop
/// (not after SIGKILL: then the reservation stays, which is harmless).
#[derive(Debug)]
pub struct ReservedPorts {
    old: String,
}

impl ReservedPorts {
    /// Adds `lo-hi` to the calling thread's network namespace's reserved ports.
    pub fn reserve(lo: u16, hi: u16) -> io::Result<ReservedPorts> {
        let old = std::fs::read_to_string(RESERVED_PORTS)?.trim().to_string();
        let new = if old.is_empty() {
            format!("{lo}-{hi}")
        } else {
            format!("{old},{lo}-{hi}")
        };
        std::fs::write(RESERVED_PORTS, new)?;
        Ok(ReservedPorts { old })
    }
}

impl Drop for ReservedPorts {
    fn drop(&mut self) {
        // An empty write is rejected by some kernels; a newline clears the list.
        let v = if self.old.is_empty() { "\n" } else { &self.old };
        let _ = std::fs::write(Path::new(RESERVED_PORTS), v);
    }
}

/// A running stack on queue 0 of one interface. Field order is drop order after `Drop`.
pub struct Stack {
    pub worker: Worker<AfXdpDevice, KernelResolver>,
    steering: Steering,
    _reserved: Option<ReservedPorts>,
    /// Zero-copy was asked for but the driver refused it: running in copy mode.
    pub zero_copy_fallback: bool,
}

impl fmt::Debug for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("steering", &self.steering)
            .finish_non_exhaustive()
    }
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Stack {
    /// The checks and set-up, in the calling thread's network namespace.
    pub fn open(o: &StackOptions) -> Result<Stack, StartError> {
        if !is_root() {
            return Err(StartError::NotRoot);
        }
        let mut nl = Netlink::open().map_err(StartError::Netlink)?;
        let link = nl
            .link_info(&o.ifname)
            .map_err(|_| StartError::NoSuchInterface(o.ifname.clone()))?;
        let have = nl.link_addrs(link.ifindex).map_err(StartError::Netlink)?;
        if !have.contains(&o.addr) {
            return Err(StartError::AddressNotOnInterface {
                addr: o.addr,
                ifname: o.ifname.clone(),
                have,
            });
        }
        let mut steering =
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
        let mut afxdp = AfXdpConfig {
            zero_copy: o.zero_copy,
            ..o.afxdp
        };
        let mut zero_copy_fallback = false;
        let dev = match AfXdpDevice::open(&o.ifname, 0, afxdp) {
            Err(AfXdpError::ZeroCopyUnsupported { .. }) => {
                zero_copy_fallback = true;
                afxdp.zero_copy = false;
                AfXdpDevice::open(&o.ifname, 0, afxdp)
            }
            r => r,
        }
        .map_err(StartError::Device)?;
        steering
            .register_xsk(0, dev.fd())
            .map_err(StartError::Steering)?;
        for &p in &o.ports {
            steering
                .add_listen(o.addr, p)
                .map_err(StartError::Steering)?;
        }
        steering
            .set_ephemeral(o.addr, o.ephemeral.0, o.ephemeral.1)
            .map_err(StartError::Steering)?;
        let mut tcp = o.tcp.clone();
        // MSS from the interface MTU (IPv4 + TCP headers: 40 bytes).
        tcp.mss = tcp.mss.min(link.mtu.saturating_sub(40).min(65_535) as u16);
        let ep = Endpoint::new(
            tcp,
            EndpointSecrets::from_os_rng(),
            o.ephemeral.0..=o.ephemeral.1,
        );
        let resolver = KernelResolver::new(nl, link.ifindex);
        let iface = Interface::new(dev, resolver, ep, InterfaceConfig::new(o.addr, link.mac));
        Ok(Stack {
            worker: Worker::new(0, iface, o.worker),
            steering,
            _reserved: reserved,
            zero_copy_fallback,
        })
    }

    /// The steering program's counters.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Unregister before the socket closes (see AfXdpDevice::open).
        let _ = self.steering.unregister_xsk(0);
    }
}
