//! Loader of the wire fault injector `src/bpf/loss.bpf.c`: a tc egress (tcx) program that
//! drops or duplicates TCP packets leaving an interface, for veth tests and benchmarks with a
//! Linux peer (this kernel has no netem).
//!
//! Attach it to the *peer's* veth: its egress comes before our XDP program on the other end.
//! Attaching resolves the interface in the calling thread's network namespace, so call
//! [`LossInjector::attach_egress`] from a thread inside that namespace
//! (`VethPair::in_peer(|| ...)`).
//!
//! ```no_run
//! use xdptcp_xdp::loss::{LossConfig, LossInjector};
//! let inj = LossInjector::attach_egress("xtp-0", LossConfig { drop_ppm: 100_000, ..Default::default() })?;
//! // ... traffic ...
//! println!("{:?}", inj.counters()?);
//! # Ok::<(), xdptcp_xdp::Error>(())
//! ```

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::ptr::NonNull;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{AsRawLibbpf, ErrorKind, Link, MapCore, MapFlags, MapHandle};

use crate::{bpf, ifindex, Counters, Error, Result};

mod skel {
    #![allow(clippy::all, clippy::pedantic, missing_docs, unused_qualifications)]
    include!(concat!(env!("OUT_DIR"), "/loss.skel.rs"));
}
use skel::LossSkelBuilder;

/// One million: probabilities are in parts per million.
pub const PPM: u32 = 1_000_000;

/// Counter indices in the per-CPU `loss_counters` array (mirrors the enum in loss.bpf.c).
const CNT_SEEN: u32 = 0;
const CNT_DROPPED: u32 = 1;
const CNT_DUPLICATED: u32 = 2;
const CNT_OTHER: u32 = 3;

/// What the injector does to matching TCP packets (IPv4, or IPv6 without extension headers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossConfig {
    /// Drop probability in parts per million (random mode); `>= 1_000_000` drops every packet.
    /// Ignored when `every_nth` is set.
    pub drop_ppm: u32,
    /// Deterministic mode: drop exactly the n-th, 2n-th, ... matching packet (counted across
    /// CPUs from the last [`LossInjector::set`]). `Some(0)` is rejected.
    pub every_nth: Option<u32>,
    /// Only packets with this source or destination port match; `None` = all TCP.
    pub port: Option<u16>,
    /// Probability (ppm) that a matching packet that was not dropped is sent twice.
    pub dup_ppm: u32,
}

impl LossConfig {
    /// `struct loss_config { u32 drop_ppm; u32 every_nth; u32 dup_ppm; u16 port; u16 pad; }`.
    fn bytes(&self) -> Result<[u8; 16]> {
        let nth = match self.every_nth {
            Some(0) => return Err(Error::BadEveryNth),
            n => n.unwrap_or(0),
        };
        let mut v = [0u8; 16];
        v[0..4].copy_from_slice(&self.drop_ppm.to_ne_bytes());
        v[4..8].copy_from_slice(&nth.to_ne_bytes());
        v[8..12].copy_from_slice(&self.dup_ppm.to_ne_bytes());
        v[12..14].copy_from_slice(&self.port.unwrap_or(0).to_ne_bytes());
        Ok(v)
    }
}

/// Counters of the injector, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LossCounters {
    /// Matching TCP packets (one skb each; see the GSO note in loss.bpf.c).
    pub seen: u64,
    /// Of those, dropped.
    pub dropped: u64,
    /// Of those, duplicated (one extra copy each).
    pub duplicated: u64,
    /// Packets that did not match (non-TCP, other ports): passed untouched.
    pub other: u64,
}

impl LossCounters {
    /// Counter-wise difference `self - earlier` (wrapping).
    pub fn since(&self, earlier: &LossCounters) -> LossCounters {
        LossCounters {
            seen: self.seen.wrapping_sub(earlier.seen),
            dropped: self.dropped.wrapping_sub(earlier.dropped),
            duplicated: self.duplicated.wrapping_sub(earlier.duplicated),
            other: self.other.wrapping_sub(earlier.other),
        }
    }
}

/// The fault injector attached to one interface's egress, with handles on its maps.
///
/// Attached through a tcx bpf_link owned by this value: it goes away when the value is dropped
/// or the process exits, even by SIGKILL (nothing is left on the interface). Kernel memory is
/// three fixed-size arrays (one config, one state, 4 per-CPU counters).
pub struct LossInjector {
    ifindex: u32,
    cfg: MapHandle,
    state: MapHandle,
    counters: MapHandle,
    prog_fd: OwnedFd,
    _link: Option<Link>,
}

impl std::fmt::Debug for LossInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LossInjector")
            .field("ifindex", &self.ifindex)
            .finish_non_exhaustive()
    }
}

impl LossInjector {
    /// Loads the program with `config` and attaches it to the egress of `ifname` (tcx link;
    /// other tc programs on the interface stay) in the calling thread's network namespace.
    pub fn attach_egress(ifname: &str, config: LossConfig) -> Result<LossInjector> {
        let ifindex = ifindex(ifname)?;
        let (mut inj, link) = Self::open_load(config, |prog| {
            let opts = libbpf_sys::bpf_tcx_opts {
                sz: std::mem::size_of::<libbpf_sys::bpf_tcx_opts>() as _,
                ..Default::default()
            };
            // SAFETY: `prog` is a loaded program of a live object; libbpf copies `opts`.
            // libbpf-rs 0.25 has no `attach_tcx`, so call libbpf directly.
            let ptr = unsafe {
                libbpf_sys::bpf_program__attach_tcx(
                    prog.as_libbpf_object().as_ptr(),
                    ifindex as i32,
                    &opts,
                )
            };
            match NonNull::new(ptr) {
                // SAFETY: a link freshly returned by libbpf, owned by nobody else.
                Some(p) => Ok(unsafe { Link::from_ptr(p) }),
                None => {
                    let e = std::io::Error::last_os_error();
                    match e.kind() {
                        std::io::ErrorKind::PermissionDenied => {
                            Err(Error::NotPermitted(e.to_string()))
                        }
                        _ => Err(bpf("attaching the tc egress program (tcx)")(e.into())),
                    }
                }
            }
        })?;
        inj.ifindex = ifindex;
        inj._link = Some(link);
        Ok(inj)
    }

    /// Loads the program with `config` without attaching it: for [`LossInjector::test_run`].
    pub fn load(config: LossConfig) -> Result<LossInjector> {
        Self::open_load(config, |_| Ok(())).map(|(inj, ())| inj)
    }

    fn open_load<T>(
        config: LossConfig,
        with_prog: impl FnOnce(&libbpf_rs::ProgramMut<'_>) -> Result<T>,
    ) -> Result<(LossInjector, T)> {
        let cfg_bytes = config.bytes()?;
        let mut storage = MaybeUninit::uninit();
        let open = LossSkelBuilder::default()
            .open(&mut storage)
            .map_err(bpf("opening the loss object"))?;
        let skel = open.load().map_err(|e| match e.kind() {
            ErrorKind::PermissionDenied => Error::NotPermitted(e.to_string()),
            _ => bpf("loading the loss program")(e),
        })?;
        let handle = |m| MapHandle::try_from(m).map_err(bpf("duplicating a map fd"));
        let mut inj = LossInjector {
            ifindex: 0,
            cfg: handle(&skel.maps.loss_cfg)?,
            state: handle(&skel.maps.loss_state)?,
            counters: handle(&skel.maps.loss_counters)?,
            prog_fd: skel
                .progs
                .xdptcp_loss
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| bpf("duplicating the program fd")(e.into()))?,
            _link: None,
        };
        // Configure before attaching, so no packet sees the zero (pass-all) config first.
        inj.write(&cfg_bytes)?;
        let extra = with_prog(&skel.progs.xdptcp_loss)?;
        Ok((inj, extra))
    }

    /// Replaces the configuration. Restarts the every-Nth sequence (the next N-1 matching
    /// packets pass, the N-th is dropped). Counters keep running.
    pub fn set(&mut self, config: LossConfig) -> Result<()> {
        let bytes = config.bytes()?;
        self.write(&bytes)
    }

    fn write(&mut self, cfg: &[u8; 16]) -> Result<()> {
        let key = 0u32.to_ne_bytes();
        self.cfg
            .update(&key, cfg, MapFlags::ANY)
            .map_err(bpf("writing the loss config"))?;
        self.state
            .update(&key, &0u64.to_ne_bytes(), MapFlags::ANY)
            .map_err(bpf("resetting the loss state"))
    }

    /// The counters, summed over CPUs. Each is read separately: a snapshot taken while
    /// packets flow can be off by the packets in flight.
    pub fn counters(&self) -> Result<LossCounters> {
        let read = |idx: u32| -> Result<u64> {
            let v = self
                .counters
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .map_err(bpf("reading loss counters"))?;
            Ok(v.as_deref().map_or(0, Counters::sum))
        };
        Ok(LossCounters {
            seen: read(CNT_SEEN)?,
            dropped: read(CNT_DROPPED)?,
            duplicated: read(CNT_DUPLICATED)?,
            other: read(CNT_OTHER)?,
        })
    }

    /// Index of the interface attached to (0 when only loaded).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Runs the program once on the Ethernet `frame` with BPF_PROG_TEST_RUN and returns its
    /// tc action (0 = TC_ACT_OK, 2 = TC_ACT_SHOT). Counters and state move as for a real
    /// packet. Do not use with `dup_ppm > 0` (a test run has no device to clone to).
    pub fn test_run(&self, frame: &[u8]) -> Result<u32> {
        let mut opts = libbpf_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_test_run_opts>() as _,
            data_in: frame.as_ptr().cast(),
            data_size_in: u32::try_from(frame.len()).unwrap_or(u32::MAX),
            repeat: 1,
            ..Default::default()
        };
        // SAFETY: `opts` points at `frame`, which outlives the call; no output buffers.
        let rc = unsafe { libbpf_sys::bpf_prog_test_run_opts(self.prog_fd.as_raw_fd(), &mut opts) };
        if rc != 0 {
            let e = std::io::Error::from_raw_os_error(rc.unsigned_abs() as i32);
            return Err(bpf("BPF_PROG_TEST_RUN")(e.into()));
        }
        Ok(opts.retval)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_layout_matches_the_c_struct() {
        let c = LossConfig {
            drop_ppm: 0x0102_0304,
            every_nth: Some(7),
            port: Some(0x1f90),
            dup_ppm: 9,
        };
        let b = c.bytes().unwrap();
        assert_eq!(b[0..4], 0x0102_0304u32.to_ne_bytes());
        assert_eq!(b[4..8], 7u32.to_ne_bytes());
        assert_eq!(b[8..12], 9u32.to_ne_bytes());
        assert_eq!(b[12..14], 0x1f90u16.to_ne_bytes());
        assert_eq!(b[14..16], [0, 0]);
        let d = LossConfig::default().bytes().unwrap();
        assert_eq!(d, [0u8; 16]);
    }

    #[test]
    fn every_nth_zero_is_rejected() {
        let c = LossConfig {
            every_nth: Some(0),
            ..Default::default()
        };
        assert!(matches!(c.bytes(), Err(Error::BadEveryNth)));
    }

    #[test]
    fn injector_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<LossInjector>();
    }
}
