//! Devices: batched receive and transmit of whole Ethernet frames.
//!
//! - `afxdp`: AF_XDP sockets (copy mode by default, zero-copy where the driver allows).
//! - `memory`: an in-memory device pair for tests and the simulator.
//! - `fault`: a seeded fault injector wrapping any device (drop, duplicate, reorder, delay,
//!   corrupt), because this kernel has no netem.

pub mod afxdp;
pub mod fault;
pub mod memory;

pub use afxdp::{AfXdpConfig, AfXdpDevice, AfXdpError, AfXdpStats, ConfigInvalid};
pub use fault::{FaultConfig, FaultCounters, FaultInjector, FaultStats};
pub use memory::MemoryDevice;

use crate::time::Instant;

/// Why a frame could not be queued for transmission. Counted by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxError {
    /// No free frame or TX ring slot right now; flush and retry later.
    Full,
    /// The frame is longer than the device's MTU allows.
    TooLong,
}

/// Counters every device keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Frames handed to the caller by `recv`.
    pub rx_frames: u64,
    /// Bytes of those frames (Ethernet header included, no FCS).
    pub rx_bytes: u64,
    /// Frames handed to the wire (for AF_XDP: put on the TX ring).
    pub tx_frames: u64,
    /// Bytes of those frames (Ethernet header included, no FCS).
    pub tx_bytes: u64,
    /// Frames we could not queue (TX ring or frame pool full).
    pub tx_full: u64,
    /// Frames dropped on receive by the device itself (e.g. ring overflow reported by the kernel).
    pub rx_dropped: u64,
}

/// A network device that moves whole Ethernet frames in batches.
///
/// The worker loop calls `recv` (one burst), processes the frames, queues replies with
/// `transmit`, and calls `flush` once per iteration (which kicks the kernel for AF_XDP).
pub trait Device {
    /// Largest frame (Ethernet header included) `transmit` accepts.
    fn max_frame_len(&self) -> usize;

    /// Receives up to `budget` frames, calling `on_frame` for each. Returns how many.
    /// The slice is valid only during the call: the frame is recycled afterwards.
    fn recv<F: FnMut(&[u8])>(&mut self, now: Instant, budget: usize, on_frame: F) -> usize;

    /// Queues one frame of exactly `len` bytes, written in place by `fill` (straight into
    /// the UMEM frame for AF_XDP). Not sent before `flush`.
    fn transmit<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> Result<(), TxError>;

    /// Hands queued frames to the wire and reclaims completed ones.
    fn flush(&mut self, now: Instant);

    /// A snapshot of the device's counters (cumulative since it was opened).
    fn stats(&self) -> DeviceStats;
}
