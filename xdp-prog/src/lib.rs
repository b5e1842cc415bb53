//! The XDP steering program of xdptcp and its loader.
//!
//! The program (`src/bpf/steer.bpf.c`) redirects IPv4 TCP segments addressed to the stack
//! (a listening `(addr, port)` or the stack's ephemeral port range) to the AF_XDP socket of the
//! receive queue, and passes everything else (ARP, ICMP, other ports) to the kernel. IPv6 TCP
//! follows the same rules through its own maps ([`Steering::add_listen6`],
//! [`Steering::add_addr6`]); NDP and all other ICMPv6 go to the kernel except errors quoting
//! a stack flow, which are steered to the stack like the flow's segments.
//!
//! [`loss`] is a separate test tool: a tc egress program that drops or duplicates TCP packets
//! on a Linux peer's veth (the kernel has no netem).
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use xdptcp_xdp::{AttachOptions, Steering};
//! let mut s = Steering::attach("eth0", AttachOptions::default())?;
//! s.add_listen(Ipv4Addr::new(198, 18, 0, 1), 8080)?;
//! s.set_ephemeral(Ipv4Addr::new(198, 18, 0, 1), 40000, 40999)?;
//! // s.register_xsk(queue, xsk_fd)? for each AF_XDP socket.
//! println!("{:?}", s.counters()?);
//! # Ok::<(), xdptcp_xdp::Error>(())
//! ```

pub mod loss;
mod maps;

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{ErrorKind, Link, MapCore, MapFlags, MapHandle};

pub use maps::{CookieConfig, Counters, Counters6, ADDRS6_MAX, LISTENERS_MAX, XSKS_MAX};

mod skel {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
    include!(concat!(env!("OUT_DIR"), "/steer.skel.rs"));
}
use skel::SteerSkelBuilder;

/// Errors of the loader. The messages are meant to be shown to an operator as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or attaching BPF needs privileges.
    #[error("loading the XDP program needs root (or CAP_BPF + CAP_NET_ADMIN): {0}")]
    NotPermitted(String),
    /// The interface name does not resolve in the current network namespace.
    #[error("no such network interface: {0:?} (in this network namespace)")]
    NoSuchInterface(String),
    /// Some XDP program is already attached to the interface.
    #[error("another XDP program is attached to {ifname} (program id {prog_id}; another xdptcp?)")]
    AlreadyAttached { ifname: String, prog_id: u32 },
    /// The driver refused a single-buffer program because the MTU needs several buffers.
    #[error(
        "cannot attach the XDP program to {ifname}: MTU {mtu} needs the multi-buffer variant \
         (AttachOptions {{ frags: true }}, and XDP_USE_SG on the sockets)"
    )]
    NeedsFrags { ifname: String, mtu: u32 },
    /// Queue id outside the XSKMAP.
    #[error("queue {0} is out of range: the XSKMAP holds queues 0..{XSKS_MAX}")]
    QueueOutOfRange(u32),
    /// Ephemeral range with `lo > hi`.
    #[error("empty ephemeral port range {lo}..={hi}")]
    BadRange { lo: u16, hi: u16 },
    /// `LossConfig::every_nth == Some(0)`.
    #[error("every_nth must be at least 1")]
    BadEveryNth,
    /// Any other libbpf failure (with its context).
    #[error("{context}: {source}")]
    Bpf {
        context: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn bpf(context: &'static str) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |source| Error::Bpf { context, source }
}

/// How to attach the program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttachOptions {
    /// Attach the `xdp.frags` variant (multi-buffer), required for MTUs above one page
    /// (jumbo frames); the AF_XDP sockets must then be bound with `XDP_USE_SG`.
    pub frags: bool,
}

/// The steering program attached to one interface, with handles on its maps.
///
/// The program is attached through a bpf_link owned by this value: it is detached when the
/// value is dropped or the process exits for any reason (including SIGKILL).
/// Kernel memory is bounded by the maps' fixed capacities ([`XSKS_MAX`], [`LISTENERS_MAX`]).
pub struct Steering {
    ifname: String,
    ifindex: u32,
    frags: bool,
    xsks: MapHandle,
    listeners: MapHandle,
    config: MapHandle,
    cookie_config: MapHandle,
    cookie_slot: MapHandle,
    /// The `cookie_config` slot the program reads (the other one is written next).
    slot: u32,
    counters: MapHandle,
    listeners6: MapHandle,
    addrs6: MapHandle,
    counters6: MapHandle,
    prog_fd: OwnedFd,
    /// `None` when only loaded ([`Steering::load`]).
    _link: Option<Link>,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ifname", &self.ifname)
            .field("ifindex", &self.ifindex)
            .field("frags", &self.frags)
            .finish_non_exhaustive()
    }
}

/// Interface index of `ifname` in the calling thread's network namespace.
pub fn ifindex(ifname: &str) -> Result<u32> {
    let c = CString::new(ifname).map_err(|_| Error::NoSuchInterface(ifname.to_owned()))?;
    // SAFETY: `c` is a valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(Error::NoSuchInterface(ifname.to_owned())),
        i => Ok(i),
    }
}

/// MTU of `ifname` in the calling thread's network namespace.
fn mtu(ifname: &str) -> Option<u32> {
    // SAFETY: a plain datagram socket, closed below; the ioctl fills the ifreq we own.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, s) in req
            .ifr_name
            .iter_mut()
            .zip(ifname.bytes().take(libc::IFNAMSIZ - 1))
        {
            *d = s as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFMTU, &mut req);
        libc::close(fd);
        (rc == 0).then_some(req.ifr_ifru.ifru_mtu as u32)
    }
}

/// Id of the XDP program attached to `ifindex` (any mode), if any.
pub fn attached_prog_id(ifindex: u32) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: plain netlink query writing one u32 we own.
    let rc = unsafe { libbpf_rs::libbpf_sys::bpf_xdp_query_id(ifindex as i32, 0, &mut id) };
    (rc == 0 && id != 0).then_some(id)
}

impl Steering {
    /// Loads the program and attaches it to `ifname` (driver mode where the driver supports it,
    /// as the kernel chooses for a link) in the calling thread's network namespace.
    pub fn attach(ifname: &str, opts: AttachOptions) -> Result<Steering> {
        let ifindex = ifindex(ifname)?;
        let already = |prog_id| Error::AlreadyAttached {
            ifname: ifname.to_owned(),
            prog_id,
        };
        if let Some(id) = attached_prog_id(ifindex) {
            return Err(already(id));
        }
        Self::open_load(opts, |prog| {
            prog.attach_xdp(ifindex as i32).map_err(|e| {
                // EBUSY is not classified by libbpf-rs; ask the kernel what is there instead.
                if let Some(id) = attached_prog_id(ifindex) {
                    return already(id);
                }
                match (e.kind(), opts.frags, mtu(ifname)) {
                    (ErrorKind::PermissionDenied, ..) => Error::NotPermitted(e.to_string()),
                    (ErrorKind::AlreadyExists, ..) => already(0),
                    // A page holds one frame of at most ~3.5 kB behind XDP headroom.
                    (_, false, Some(mtu)) if mtu > 3000 => Error::NeedsFrags {
                        ifname: ifname.to_owned(),
                        mtu,
                    },
                    _ => bpf("attaching the XDP program")(e),
                }
            })
        })
        .map(|(mut s, link)| {
            s.ifname = ifname.to_owned();
            s.ifindex = ifindex;
            s._link = Some(link);
            s
        })
    }

    /// Loads the program without attaching it anywhere: for [`Steering::test_run`] and map
    /// tests. [`Steering::ifindex`] is 0 and [`Steering::ifname`] empty.
    pub fn load(opts: AttachOptions) -> Result<Steering> {
        Self::open_load(opts, |_| Ok(())).map(|(s, ())| s)
    }

    /// Opens and loads the object, runs `with_prog` on the selected program, and keeps
    /// duplicated fds of the maps and program so the object (and its borrow) can be dropped:
    /// a link keeps its program alive and the program keeps its maps.
    fn open_load<T>(
        opts: AttachOptions,
        with_prog: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> Result<T>,
    ) -> Result<(Steering, T)> {
        let mut storage = MaybeUninit::uninit();
        let mut open = SteerSkelBuilder::default()
            .open(&mut storage)
            .map_err(bpf("opening the XDP object"))?;
        open.progs.xdptcp_steer.set_autoload(!opts.frags);
        open.progs.xdptcp_steer_frags.set_autoload(opts.frags);
        let skel = open.load().map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Error::NotPermitted(e.to_string()),
            _ => bpf("loading the XDP program")(e),
        })?;
        let prog = if opts.frags {
            &skel.progs.xdptcp_steer_frags
        } else {
            &skel.progs.xdptcp_steer
        };
        let extra = with_prog(prog)?;
        let prog_fd = prog
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| bpf("duplicating the program fd")(e.into()))?;
        let handle = |m| MapHandle::try_from(m).map_err(bpf("duplicating a map fd"));
        let s = Steering {
            ifname: String::new(),
            ifindex: 0,
            frags: opts.frags,
            xsks: handle(&skel.maps.xsks)?,
            listeners: handle(&skel.maps.listeners)?,
            config: handle(&skel.maps.config)?,
            cookie_config: handle(&skel.maps.cookie_config)?,
            cookie_slot: handle(&skel.maps.cookie_slot)?,
            slot: 0,
            counters: handle(&skel.maps.counters)?,
            listeners6: handle(&skel.maps.listeners6)?,
            addrs6: handle(&skel.maps.addrs6)?,
            counters6: handle(&skel.maps.counters6)?,
            prog_fd,
            _link: None,
        };
        Ok((s, extra))
    }

    /// Handles on the same program and maps without the link (duplicated descriptors): for a
    /// process forked from the one that attached the program (the POSIX layer's worker
    /// processes), which registers its own AF_XDP socket and steers ports in the shared maps.
    /// Dropping the copy never detaches the program.
    pub fn clone_unlinked(&self) -> Result<Steering> {
        let dup = |m: &MapHandle| MapHandle::try_from(m).map_err(bpf("duplicating a map fd"));
        Ok(Steering {
            ifname: self.ifname.clone(),
            ifindex: self.ifindex,
            frags: self.frags,
            xsks: dup(&self.xsks)?,
            listeners: dup(&self.listeners)?,
            config: dup(&self.config)?,
            cookie_config: dup(&self.cookie_config)?,
            cookie_slot: dup(&self.cookie_slot)?,
            slot: self.slot,
            counters: dup(&self.counters)?,
            listeners6: dup(&self.listeners6)?,
            addrs6: dup(&self.addrs6)?,
            counters6: dup(&self.counters6)?,
            prog_fd: self
                .prog_fd
                .try_clone()
                .map_err(|e| bpf("duplicating the program fd")(e.into()))?,
            _link: None,
        })
    }

    /// Runs the program once on `frame` with BPF_PROG_TEST_RUN (rx queue 0, no device) and
    /// returns its XDP action (`libc`'s numbering: 1 = XDP_DROP, 2 = XDP_PASS,
    /// 4 = XDP_REDIRECT). Counters are updated as for a real packet. The kernel rejects
    /// frames shorter than an Ethernet header (14 bytes).
    pub fn test_run(&self, frame: &[u8]) -> Result<u32> {
        self.test_run_out(frame).map(|(action, _)| action)
    }

    /// [`Steering::test_run`] that also returns the frame as the program left it (e.g. the
    /// SYN-ACK it rewrote a SYN into, action 3 = XDP_TX).
    pub fn test_run_out(&self, frame: &[u8]) -> Result<(u32, Vec<u8>)> {
        let mut out = vec![0u8; 4096];
        let mut opts = libbpf_rs::libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_test_run_opts>() as _,
            data_in: frame.as_ptr().cast(),
            data_size_in: u32::try_from(frame.len()).unwrap_or(u32::MAX),
            data_out: out.as_mut_ptr().cast(),
            data_size_out: out.len() as u32,
            repeat: 1,
            ..Default::default()
        };
        // SAFETY: `opts` points at `frame` and `out`, which outlive the call; the kernel
        // writes at most `data_size_out` bytes to `out`.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_prog_test_run_opts(self.prog_fd.as_raw_fd(), &mut opts)
        };
        if rc != 0 {
            let e = std::io::Error::from_raw_os_error(rc.unsigned_abs() as i32);
            return Err(bpf("BPF_PROG_TEST_RUN")(e.into()));
        }
        out.truncate((opts.data_size_out as usize).min(out.len()));
        Ok((opts.retval, out))
    }

    /// The interface this program is attached to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Its index (in the namespace it was attached in).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Whether the `xdp.frags` variant is attached.
    pub fn frags(&self) -> bool {
        self.frags
    }

    /// Steers TCP to `(addr, port)` to the stack. `Ipv4Addr::UNSPECIFIED` matches any address.
    /// At most [`LISTENERS_MAX`] entries (the kernel returns E2BIG beyond).
    pub fn add_listen(&mut self, addr: Ipv4Addr, port: u16) -> Result<()> {
        self.listeners
            .update(
                &maps::listen_key(addr, port),
                &[maps::LISTEN_STEER],
                MapFlags::ANY,
            )
            .map_err(bpf("adding a listener"))
    }

    /// `tcp_syncookies` = 1: marks the listener `(addr, port)` (added with
    /// [`Steering::add_listen`]) as overflowing, so the program answers its SYNs with cookies
    /// (`on`), or stops doing so. A listener that is not in the map is not added.
    pub fn set_listen_cookies(&mut self, addr: Ipv4Addr, port: u16, on: bool) -> Result<()> {
        let key = maps::listen_key(addr, port);
        let v = maps::LISTEN_STEER | if on { maps::LISTEN_COOKIES } else { 0 };
        match self.listeners.update(&key, &[v], MapFlags::EXIST) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r.map_err(bpf("setting a listener's cookie flag")),
        }
    }

    /// Writes the SYN-cookie settings and secrets the program answers SYNs with (all of them
    /// at once: a rotation rewrites the whole value). The value goes to the slot the program
    /// does not read, then the selector flips: a SYN sees the old or the new value, never a
    /// mix. Until this is called, SYN cookies in XDP are off.
    pub fn set_cookie_config(&mut self, c: &CookieConfig) -> Result<()> {
        let next = self.slot ^ 1;
        self.cookie_config
            .update(&next.to_ne_bytes(), &maps::cookie_config(c), MapFlags::ANY)
            .map_err(bpf("writing the SYN-cookie config"))?;
        self.cookie_slot
            .update(&0u32.to_ne_bytes(), &next.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("switching the SYN-cookie config"))?;
        self.slot = next;
        Ok(())
    }

    /// Stops steering `(addr, port)`. Removing an absent entry is not an error.
    pub fn remove_listen(&mut self, addr: Ipv4Addr, port: u16) -> Result<()> {
        match self.listeners.delete(&maps::listen_key(addr, port)) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r.map_err(bpf("removing a listener")),
        }
    }

    /// Steers TCP to `addr` with a destination port in `lo..=hi` (the stack's ephemeral
    /// range; reserve it from the kernel with `net.ipv4.ip_local_reserved_ports`).
    /// `addr` 0.0.0.0 steers the range for every destination address (a stack with several
    /// addresses on the interface).
    pub fn set_ephemeral(&mut self, addr: Ipv4Addr, lo: u16, hi: u16) -> Result<()> {
        if lo > hi {
            return Err(Error::BadRange { lo, hi });
        }
        self.write_config(&maps::steer_config(
            addr,
            lo,
            hi,
            maps::EPH_V4 | maps::EPH_V6,
        ))
    }

    /// [`Steering::set_ephemeral`] for IPv6 only (to the addresses of
    /// [`Steering::add_addr6`]): an IPv6-only stack, whose range must not take IPv4 traffic
    /// from the kernel.
    pub fn set_ephemeral6(&mut self, lo: u16, hi: u16) -> Result<()> {
        if lo > hi {
            return Err(Error::BadRange { lo, hi });
        }
        self.write_config(&maps::steer_config(
            Ipv4Addr::UNSPECIFIED,
            lo,
            hi,
            maps::EPH_V6,
        ))
    }

    /// Stops steering the ephemeral range.
    pub fn clear_ephemeral(&mut self) -> Result<()> {
        self.write_config(&maps::steer_config(Ipv4Addr::UNSPECIFIED, 0, 0, 0))
    }

    fn write_config(&mut self, value: &[u8]) -> Result<()> {
        self.config
            .update(&0u32.to_ne_bytes(), value, MapFlags::ANY)
            .map_err(bpf("writing the steering config"))
    }

    /// Redirects stack traffic arriving on `queue` to the AF_XDP socket `xsk_fd`, which must
    /// be bound to this interface and queue (else the kernel drops the packets).
    pub fn register_xsk(&mut self, queue: u32, xsk_fd: RawFd) -> Result<()> {
        if queue >= XSKS_MAX {
            return Err(Error::QueueOutOfRange(queue));
        }
        self.xsks
            .update(&queue.to_ne_bytes(), &xsk_fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("registering an AF_XDP socket"))
    }

    /// Removes the socket of `queue`; its stack traffic then goes to the kernel (`no_socket`).
    pub fn unregister_xsk(&mut self, queue: u32) -> Result<()> {
        if queue >= XSKS_MAX {
            return Err(Error::QueueOutOfRange(queue));
        }
        match self.xsks.delete(&queue.to_ne_bytes()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r.map_err(bpf("unregistering an AF_XDP socket")),
        }
    }

    /// Steers IPv6 TCP to `(addr, port)` to the stack. `Ipv6Addr::UNSPECIFIED` matches any
    /// address. At most [`LISTENERS_MAX`] entries (separate from the IPv4 listeners).
    pub fn add_listen6(&mut self, addr: Ipv6Addr, port: u16) -> Result<()> {
        self.listeners6
            .update(
                &maps::listen6_key(addr, port),
                &[maps::LISTEN_STEER],
                MapFlags::ANY,
            )
            .map_err(bpf("adding an IPv6 listener"))
    }

    /// Stops steering IPv6 `(addr, port)`. Removing an absent entry is not an error.
    pub fn remove_listen6(&mut self, addr: Ipv6Addr, port: u16) -> Result<()> {
        match self.listeners6.delete(&maps::listen6_key(addr, port)) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r.map_err(bpf("removing an IPv6 listener")),
        }
    }

    /// Adds one of the stack's IPv6 addresses: TCP to it with a destination port in the
    /// ephemeral range ([`Steering::set_ephemeral`], one range for both families, as
    /// `ip_local_reserved_ports` is) goes to the stack. `Ipv6Addr::UNSPECIFIED` stands for
    /// every address. At most [`ADDRS6_MAX`] addresses (the kernel returns E2BIG beyond).
    /// The kernel keeps the address too (it answers neighbour solicitations for it).
    pub fn add_addr6(&mut self, addr: Ipv6Addr) -> Result<()> {
        self.addrs6
            .update(&addr.octets(), &[1], MapFlags::ANY)
            .map_err(bpf("adding an IPv6 address"))
    }

    /// Removes one of the stack's IPv6 addresses. Removing an absent one is not an error.
    pub fn remove_addr6(&mut self, addr: Ipv6Addr) -> Result<()> {
        match self.addrs6.delete(&addr.octets()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            r => r.map_err(bpf("removing an IPv6 address")),
        }
    }

    /// The program's IPv6-only counters, summed over CPUs.
    pub fn counters6(&self) -> Result<Counters6> {
        let read = |idx: u32| -> Result<u64> {
            let v = self
                .counters6
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("reading IPv6 counters"))?;
            Ok(v.as_deref().map_or(0, Counters::sum))
        };
        Ok(Counters6 {
            redirected: read(maps::CNT6_REDIRECTED)?,
            icmp_errors_redirected: read(maps::CNT6_ICMP_REDIRECTED)?,
            ext_limit: read(maps::CNT6_EXT_LIMIT)?,
        })
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Counters> {
        let read = |idx: u32| -> Result<u64> {
            let v = self
                .counters
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("reading counters"))?;
            Ok(v.as_deref().map_or(0, Counters::sum))
        };
        Ok(Counters {
            redirected: read(maps::CNT_REDIRECTED)?,
            passed: read(maps::CNT_PASSED)?,
            malformed: read(maps::CNT_MALFORMED)?,
            no_socket: read(maps::CNT_NO_SOCKET)?,
            fragments: read(maps::CNT_FRAGMENT)?,
            fragments_dropped: read(maps::CNT_FRAG_DROPPED)?,
            cookie_syn_acks: read(maps::CNT_COOKIE_SYNACK)?,
            cookie_slow: read(maps::CNT_COOKIE_SLOW)?,
            icmp_errors: read(maps::CNT_ICMP)?,
        })
    }
}

#[cfg(test)]
mod tests {
    /// The AF_XDP device hands the loader to worker threads.
    #[test]
    fn steering_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Steering>();
    }
}
