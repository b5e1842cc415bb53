//! The AF_XDP device: one socket per NIC queue, each with its own UMEM (xsk-rs 0.11).
//!
//! The socket binds with `XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD`: our own XDP program
//! (crate `xdptcp-xdp`) steers the stack's TCP ports; the caller registers this socket in
//! its XSKMAP with `Steering::register_xsk(queue, dev.fd())`.
//!
//! Frame life cycles (see [`AfXdpConfig`] for the split and the memory bound):
//! - RX: the fill ring is prefilled with every RX frame at open; `recv` consumes a batch
//!   from the RX ring, hands each frame to the caller, and puts the whole batch back on the
//!   fill ring. RX needs no syscall (the kernel's softirq fills the ring), except a poll
//!   when the kernel sets need_wakeup on the fill ring (zero-copy drivers).
//! - TX: `transmit` takes a frame from the free list and lets the caller write it in place;
//!   `flush` puts the queued frames on the TX ring, kicks the kernel, and returns completed
//!   frames from the completion ring to the free list. In copy mode every send needs a
//!   kick (`sendto`) and one kick sends at most 32 frames, so `flush` kicks until the TX
//!   ring drains, a kick makes no progress, or `MAX_KICKS` is reached.
//!
//! Nothing is allocated per packet: the descriptor arrays are sized at open.

mod config;

pub use config::{AfXdpConfig, AfXdpError, ConfigInvalid, XDP_HEADROOM};

use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, RawFd};

use xsk_rs::config::Interface;
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use super::{Device, DeviceStats, TxError};
use crate::time::Instant;

/// Descriptors moved per ring operation.
const BATCH: usize = 64;
/// Frames the kernel sends per copy-mode kick (its per-call TX budget).
const FRAMES_PER_KICK: u32 = 32;
/// Kicks beyond the ring's `tx_size / 32` that one `flush` may spend.
const EXTRA_KICKS: u32 = 4;
/// Submit/kick/reclaim rounds per `flush` when the TX ring is full.
const FLUSH_ROUNDS: usize = 4;
/// `XDP_PKT_CONTD`: more descriptors of this packet follow (multi-buffer).
const XDP_PKT_CONTD: u32 = 1;

/// Counters of one AF_XDP socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfXdpStats {
    /// The generic counters; `rx_dropped` is the kernel's `rx_dropped + rx_ring_full` plus
    /// `rx_invalid`.
    pub dev: DeviceStats,
    /// `sendto` kicks made by `flush`.
    pub tx_kicks: u64,
    /// Kicks that failed with an unexpected error (ENOBUFS/EAGAIN/EBUSY/ENETDOWN are normal).
    pub tx_kick_errors: u64,
    /// `flush` calls that stopped kicking with frames still on the TX ring.
    pub tx_kick_limit: u64,
    /// Frames returned by the completion ring.
    pub tx_completed: u64,
    /// RX descriptors dropped: out of UMEM bounds, or parts of a multi-buffer packet.
    pub rx_invalid: u64,
    /// Poll syscalls made because the kernel set need_wakeup on the fill ring.
    pub fill_wakeups: u64,
    /// Kernel counters (`XDP_STATISTICS`, the `kernel_*` fields) are read only by
    /// [`AfXdpDevice::stats_full`]. This one: frames dropped for reasons other than an
    /// invalid descriptor or a full ring (`rx_dropped`).
    pub kernel_rx_dropped: u64,
    /// Kernel: frames dropped because the RX ring was full (`rx_ring_full`).
    pub kernel_rx_ring_full: u64,
    /// Kernel: times the fill ring had no frame for a packet (`rx_fill_ring_empty_descs`).
    pub kernel_rx_fill_ring_empty: u64,
    /// Kernel: RX descriptors dropped as invalid (`rx_invalid_descs`).
    pub kernel_rx_invalid_descs: u64,
    /// Kernel: TX descriptors it rejected as invalid (`tx_invalid_descs`).
    pub kernel_tx_invalid_descs: u64,
    /// Kernel: times it found the TX ring empty when asked to send (`tx_ring_empty_descs`).
    pub kernel_tx_ring_empty: u64,
}

/// One AF_XDP socket bound to `(ifname, queue_id)`. See the module docs.
#[derive(Debug)]
pub struct AfXdpDevice {
    ifname: String,
    queue_id: u32,
    cfg: AfXdpConfig,
    umem: Umem,
    fill: FillQueue,
    comp: CompQueue,
    rx: RxQueue,
    tx: TxQueue,
    /// Scratch for RX and completion batches.
    batch: Vec<FrameDesc>,
    /// RX frames the fill ring could not take back yet (should stay empty; see config).
    fill_backlog: Vec<FrameDesc>,
    /// Free TX frames.
    tx_free: Vec<FrameDesc>,
    /// TX frames written by `transmit`, put on the TX ring by `flush`.
    tx_pending: Vec<FrameDesc>,
    /// Frames handed to the kernel and not yet completed.
    tx_in_flight: u32,
    /// Inside a multi-buffer packet being dropped.
    skipping_fragments: bool,
    stats: AfXdpStats,
}

impl AfXdpDevice {
    /// Creates a UMEM and binds a socket to `ifname`'s queue `queue_id` (copy mode unless
    /// `cfg.zero_copy`). Does not load any XDP program: register [`AfXdpDevice::fd`] in the
    /// steering program's XSKMAP.
    ///
    /// Re-opening a queue right after dropping its previous socket can fail with EBUSY
    /// ([`AfXdpError::Socket`]) for a few milliseconds: the kernel releases a closed
    /// socket's buffer pool from a workqueue. Unregister the socket from the XSKMAP before
    /// dropping the device.
    pub fn open(ifname: &str, queue_id: u32, cfg: AfXdpConfig) -> Result<Self, AfXdpError> {
        let (umem_cfg, sock_cfg) = cfg.xsk_configs()?;
        let frame_count = NonZeroU32::new(cfg.frame_count)
            .ok_or_else(|| AfXdpError::InvalidConfig("frame_count is 0".into()))?;
        let (umem, mut descs) =
            Umem::new(umem_cfg, frame_count, false).map_err(|e| AfXdpError::Umem {
                bytes: cfg.umem_bytes(),
                reason: e.to_string(),
                source: os_error(&e),
            })?;
        let iface: Interface = ifname
            .parse()
            .map_err(|_| AfXdpError::InvalidInterface(ifname.to_string()))?;
        // SAFETY: this UMEM is not shared with any other socket, and we set
        // INHIBIT_PROG_LOAD as the contract asks for shared UMEMs anyway.
        let created = unsafe { Socket::new(sock_cfg, &umem, &iface, queue_id) };
        let (tx, rx, rings) = created.map_err(|e| {
            let source = os_error(&e);
            if cfg.zero_copy && source.raw_os_error() == Some(libc::EOPNOTSUPP) {
                AfXdpError::ZeroCopyUnsupported {
                    ifname: ifname.to_string(),
                }
            } else {
                AfXdpError::Socket {
                    ifname: ifname.to_string(),
                    queue: queue_id,
                    reason: format!("{e}: {source}"),
                    source,
                }
            }
        })?;
        let Some((mut fill, comp)) = rings else {
            return Err(AfXdpError::SharedRings {
                ifname: ifname.to_string(),
                queue: queue_id,
            });
        };

        let tx_free = descs.split_off(cfg.fill_size as usize);
        // SAFETY: the descriptors come from this UMEM and are owned by nobody else yet.
        let filled = unsafe { fill.produce(&descs) };
        let mut fill_backlog = Vec::with_capacity(cfg.fill_size as usize);
        fill_backlog.extend_from_slice(&descs[filled..]);
        let tx_frames = tx_free.len();
        Ok(AfXdpDevice {
            ifname: ifname.to_string(),
            queue_id,
            cfg,
            umem,
            fill,
            comp,
            rx,
            tx,
            batch: vec![FrameDesc::default(); BATCH],
            fill_backlog,
            tx_free,
            tx_pending: Vec::with_capacity(tx_frames),
            tx_in_flight: 0,
            skipping_fragments: false,
            stats: AfXdpStats::default(),
        })
    }

    /// The socket's file descriptor, for `Steering::register_xsk(queue, fd)`.
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    /// The interface name the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The NIC queue the socket is bound to.
    pub fn queue_id(&self) -> u32 {
        self.queue_id
    }

    /// The configuration the device was opened with.
    pub fn config(&self) -> &AfXdpConfig {
        &self.cfg
    }

    /// Free TX frames right now (after the last `flush`'s reclaim).
    pub fn tx_free(&self) -> usize {
        self.tx_free.len()
    }

    /// TX frames handed to the kernel and not yet completed.
    pub fn tx_in_flight(&self) -> u32 {
        self.tx_in_flight
    }

    /// Our counters plus the kernel's (one `getsockopt`); kernel fields stay 0 if it fails.
    pub fn stats_full(&self) -> AfXdpStats {
        let mut s = self.stats;
        if let Ok(k) = self.rx.fd().xdp_statistics() {
            s.kernel_rx_dropped = k.rx_dropped();
            s.kernel_rx_ring_full = k.rx_ring_full();
            s.kernel_rx_fill_ring_empty = k.rx_fill_ring_empty_descs();
            s.kernel_rx_invalid_descs = k.rx_invalid_descs();
            s.kernel_tx_invalid_descs = k.tx_invalid_descs();
            s.kernel_tx_ring_empty = k.tx_ring_empty_descs();
        }
        s.dev.rx_dropped = s.kernel_rx_dropped + s.kernel_rx_ring_full + s.rx_invalid;
        s
    }

    /// Whether an RX descriptor lies inside the UMEM (the kernel guarantees it; checked so
    /// that a bad descriptor is dropped rather than read out of bounds).
    fn rx_desc_ok(&mut self, desc: &FrameDesc) -> bool {
        if desc.options() & XDP_PKT_CONTD != 0 {
            self.skipping_fragments = true;
            return false;
        }
        if std::mem::take(&mut self.skipping_fragments) {
            return false; // the last part of a multi-buffer packet
        }
        let end = desc.addr() as u64 + desc.lengths().data() as u64;
        let frame_end = (desc.addr() as u64 | (self.cfg.frame_size as u64 - 1)) + 1;
        end <= frame_end && end <= self.cfg.umem_bytes()
    }

    /// Returns RX frames to the fill ring, those the ring could not take first.
    fn refill(&mut self, n: usize) {
        if !self.fill_backlog.is_empty() {
            // SAFETY: backlog frames are RX frames of this UMEM that nobody else holds.
            let put = unsafe { self.fill.produce(&self.fill_backlog) };
            self.fill_backlog.drain(..put);
        }
        let batch = &self.batch[..n];
        let put = if self.fill_backlog.is_empty() {
            // SAFETY: the batch's frames came off our RX ring and the caller is done with them.
            unsafe { self.fill.produce(batch) }
        } else {
            0
        };
        self.fill_backlog.extend_from_slice(&batch[put..]);
    }

    /// Moves completed TX frames back to the free list.
    fn reclaim(&mut self) {
        loop {
            // SAFETY: completions name frames of this UMEM we put on the TX ring.
            let n = unsafe { self.comp.consume(&mut self.batch) };
            self.tx_free.extend_from_slice(&self.batch[..n]);
            self.tx_in_flight = self.tx_in_flight.saturating_sub(n as u32);
            self.stats.tx_completed += n as u64;
            if n < self.batch.len() {
                break;
            }
        }
    }

    /// Puts as many pending frames on the TX ring as it has room for.
    fn submit_pending(&mut self) {
        if self.tx_pending.is_empty() {
            return;
        }
        // SAFETY: pending frames are ours, written by `transmit`, on no ring.
        let n = unsafe { self.tx.produce(&self.tx_pending) };
        for d in &self.tx_pending[..n] {
            self.stats.dev.tx_frames += 1;
            self.stats.dev.tx_bytes += d.lengths().data() as u64;
        }
        self.tx_in_flight += n as u32;
        self.tx_pending.drain(..n);
    }

    /// Kicks the kernel until the TX ring drains, a kick makes no progress, or the bound.
    fn kick(&mut self) {
        let max_kicks = self.cfg.tx_size / FRAMES_PER_KICK + EXTRA_KICKS;
        let mut kicks = 0;
        loop {
            let free = self.tx.nb_free_exact();
            if free == self.cfg.tx_size {
                return; // drained
            }
            if self.cfg.need_wakeup && !self.tx.needs_wakeup() {
                return; // the driver is already processing the ring
            }
            if kicks == max_kicks {
                self.stats.tx_kick_limit += 1;
                return;
            }
            kicks += 1;
            self.stats.tx_kicks += 1;
            if self.tx.wakeup().is_err() {
                self.stats.tx_kick_errors += 1;
                return;
            }
            self.reclaim();
            // Zero-copy sends asynchronously; copy mode sends within the kick.
            if self.cfg.zero_copy || self.tx.nb_free_exact() == free {
                return;
            }
        }
    }
}

/// The OS error behind an xsk-rs error, or the error's text as an `io::Error`.
fn os_error(e: &(dyn std::error::Error + 'static)) -> io::Error {
    match e.source().and_then(|s| s.downcast_ref::<io::Error>()) {
        Some(io) => match io.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(io.kind(), io.to_string()),
        },
        None => io::Error::other(e.to_string()),
    }
}

impl Device for AfXdpDevice {
    fn max_frame_len(&self) -> usize {
        self.cfg.max_frame_len()
    }

    fn recv<F: FnMut(&[u8])>(&mut self, _now: Instant, budget: usize, mut on_frame: F) -> usize {
        let mut total = 0;
        while total < budget {
            let want = (budget - total).min(BATCH);
            // SAFETY: descriptors written into our scratch batch name frames of this UMEM.
            let n = unsafe { self.rx.consume(&mut self.batch[..want]) };
            for i in 0..n {
                let desc = self.batch[i];
                if !self.rx_desc_ok(&desc) {
                    self.stats.rx_invalid += 1;
                    continue;
                }
                // SAFETY: the kernel handed this frame to us via the RX ring; it is not on
                // the fill ring until `refill` below, and its bounds were checked.
                let data = unsafe { self.umem.data(&desc) };
                self.stats.dev.rx_frames += 1;
                self.stats.dev.rx_bytes += data.len() as u64;
                on_frame(data.contents());
            }
            self.refill(n);
            total += n;
            if n < want {
                break;
            }
        }
        if self.cfg.need_wakeup && self.fill.needs_wakeup() {
            self.stats.fill_wakeups += 1;
            // An error here only means no wakeup happened; the next recv retries.
            let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
        }
        total
    }

    fn transmit<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> Result<(), TxError> {
        if len > self.cfg.max_frame_len() {
            return Err(TxError::TooLong);
        }
        if self.tx_free.is_empty() {
            self.reclaim();
        }
        let Some(mut desc) = self.tx_free.pop() else {
            self.stats.dev.tx_full += 1;
            return Err(TxError::Full);
        };
        // SAFETY: a free-list frame is on no ring, so nothing else reads or writes it.
        let mut data = unsafe { self.umem.data_mut(&mut desc) };
        data.cursor().set_pos(len);
        fill(data.contents_mut());
        self.tx_pending.push(desc);
        Ok(())
    }

    fn flush(&mut self, _now: Instant) {
        // More rounds only when the TX ring was full: each round frees ring slots.
        for _ in 0..FLUSH_ROUNDS {
            self.submit_pending();
            if self.tx_in_flight == 0 {
                return;
            }
            self.kick();
            self.reclaim();
            if self.tx_pending.is_empty() {
                return;
            }
        }
    }

    /// Our counters without a syscall; [`AfXdpDevice::stats_full`] adds the kernel's drops.
    fn stats(&self) -> DeviceStats {
        DeviceStats {
            rx_dropped: self.stats.rx_invalid,
            ..self.stats.dev
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rejects_invalid_config_before_any_syscall() {
        let cfg = AfXdpConfig {
            frame_size: 3000,
            ..Default::default()
        };
        let err = AfXdpDevice::open("lo", 0, cfg).unwrap_err();
        assert!(matches!(err, AfXdpError::InvalidConfig(_)), "{err}");
    }

    #[test]
    fn device_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<AfXdpDevice>();
    }
}
