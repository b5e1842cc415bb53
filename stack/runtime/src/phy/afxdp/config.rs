//! AF_XDP socket and UMEM configuration, validated before any syscall.

use std::io;

use xsk_rs::config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig};

/// XDP_PACKET_HEADROOM: the kernel reserves this much before each packet in a UMEM frame.
pub const XDP_HEADROOM: u32 = 256;
/// The kernel accepts aligned UMEM chunks from 2048 bytes up to the page size.
const MIN_FRAME_SIZE: u32 = 2048;
const MAX_FRAME_SIZE: u32 = 4096;

/// Sizes of one AF_XDP socket's UMEM and rings.
///
/// Frames: the first `fill_size` frames belong to RX (they circulate fill ring → kernel →
/// RX ring → our batch → fill ring, so the fill ring can always take them back); the other
/// `frame_count - fill_size` are the TX pool (free list → TX ring → completion ring → free
/// list).
///
/// Memory bound: the UMEM is `frame_count * frame_size` bytes ([`AfXdpConfig::umem_bytes`],
/// 40 MiB with the defaults), plus 8 or 16 bytes per ring entry for the four rings, plus
/// our own descriptor arrays (`frame_count` entries). Nothing grows afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfXdpConfig {
    /// Frames in the UMEM; must exceed `fill_size` (the rest are TX frames).
    pub frame_count: u32,
    /// Bytes per frame: a power of two in 2048..=4096. The largest frame is
    /// `frame_size - 256` (the kernel's XDP headroom).
    pub frame_size: u32,
    /// Fill ring entries (power of two). A 4k fill ring dropped packets when the receiver
    /// was descheduled; 16k did not (see docs/PLATFORM notes).
    pub fill_size: u32,
    /// Completion ring entries (power of two).
    pub comp_size: u32,
    /// RX ring entries (power of two). At least `fill_size` means the RX ring never
    /// overflows: only as many frames as the fill ring holds can be in flight.
    pub rx_size: u32,
    /// TX ring entries (power of two).
    pub tx_size: u32,
    /// Bind in zero-copy mode (XDP_ZEROCOPY) instead of copy mode (XDP_COPY).
    pub zero_copy: bool,
    /// Bind with XDP_USE_NEED_WAKEUP: kick only when the kernel asks for it.
    pub need_wakeup: bool,
}

impl Default for AfXdpConfig {
    /// 16k RX frames + 4k TX frames of 2 KiB (40 MiB), copy mode, need_wakeup.
    fn default() -> Self {
        AfXdpConfig {
            frame_count: 16384 + 4096,
            frame_size: 2048,
            fill_size: 16384,
            comp_size: 4096,
            rx_size: 16384,
            tx_size: 4096,
            zero_copy: false,
            need_wakeup: true,
        }
    }
}

impl AfXdpConfig {
    /// A quarter of the default: 4k RX frames + 1k TX frames of 2 KiB (10 MiB), for stacks
    /// that carry little (tests, tools), so many can run at once.
    pub fn small() -> Self {
        AfXdpConfig {
            frame_count: 4096 + 1024,
            fill_size: 4096,
            comp_size: 1024,
            rx_size: 4096,
            tx_size: 1024,
            ..AfXdpConfig::default()
        }
    }

    /// Bytes of the UMEM this configuration maps.
    pub fn umem_bytes(&self) -> u64 {
        self.frame_count as u64 * self.frame_size as u64
    }

    /// Largest Ethernet frame (no FCS) a frame can carry.
    pub fn max_frame_len(&self) -> usize {
        self.frame_size.saturating_sub(XDP_HEADROOM) as usize
    }

    /// Frames of the TX pool.
    pub fn tx_frames(&self) -> u32 {
        self.frame_count.saturating_sub(self.fill_size)
    }

    /// Checks what the kernel would reject, naming the field.
    pub fn validate(&self) -> Result<(), ConfigInvalid> {
        let pow2 = |field: &'static str, value: u32| {
            if value.is_power_of_two() {
                Ok(())
            } else {
                Err(ConfigInvalid::NotPowerOfTwo { field, value })
            }
        };
        pow2("frame_size", self.frame_size)?;
        pow2("fill_size", self.fill_size)?;
        pow2("comp_size", self.comp_size)?;
        pow2("rx_size", self.rx_size)?;
        pow2("tx_size", self.tx_size)?;
        if !(MIN_FRAME_SIZE..=MAX_FRAME_SIZE).contains(&self.frame_size) {
            return Err(ConfigInvalid::FrameSize {
                value: self.frame_size,
            });
        }
        if self.frame_count <= self.fill_size {
            return Err(ConfigInvalid::NoTxFrames {
                frame_count: self.frame_count,
                fill_size: self.fill_size,
            });
        }
        Ok(())
    }

    /// The xsk-rs configurations: no frame headroom, INHIBIT_PROG_LOAD (our own program
    /// steers), copy or zero-copy bind, optional need_wakeup.
    pub(super) fn xsk_configs(&self) -> Result<(UmemConfig, SocketConfig), AfXdpError> {
        self.validate()
            .map_err(|e| AfXdpError::InvalidConfig(e.to_string()))?;
        let invalid = |e: &dyn std::fmt::Display| AfXdpError::InvalidConfig(e.to_string());
        let q = |n: u32| QueueSize::new(n).map_err(|e| invalid(&e));
        let umem = UmemConfig::builder()
            .frame_size(FrameSize::new(self.frame_size).map_err(|e| invalid(&e))?)
            .fill_queue_size(q(self.fill_size)?)
            .comp_queue_size(q(self.comp_size)?)
            .frame_headroom(0)
            .build()
            .map_err(|e| invalid(&e))?;
        debug_assert_eq!(umem.mtu() as usize, self.max_frame_len());
        let mut bind = if self.zero_copy {
            BindFlags::XDP_ZEROCOPY
        } else {
            BindFlags::XDP_COPY
        };
        if self.need_wakeup {
            bind |= BindFlags::XDP_USE_NEED_WAKEUP;
        }
        let socket = SocketConfig::builder()
            .rx_queue_size(q(self.rx_size)?)
            .tx_queue_size(q(self.tx_size)?)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(bind)
            .build();
        Ok((umem, socket))
    }
}

/// Why an AF_XDP device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum AfXdpError {
    /// A field fails [`AfXdpConfig::validate`] or xsk-rs's own checks; the message names it.
    #[error("invalid AF_XDP config: {0}")]
    InvalidConfig(String),
    /// The interface name contains a NUL byte (the name as given).
    #[error("invalid interface name {0:?}")]
    InvalidInterface(String),
    /// The driver refused XDP_ZEROCOPY (EOPNOTSUPP), e.g. veth.
    #[error("zero-copy not supported by {ifname}'s driver; run without --zero-copy")]
    ZeroCopyUnsupported {
        /// The interface whose driver refused.
        ifname: String,
    },
    /// Mapping or registering the UMEM failed (often `RLIMIT_MEMLOCK` or memory).
    #[error("creating the UMEM ({bytes} bytes) failed: {reason}")]
    Umem {
        /// Size of the UMEM asked for ([`AfXdpConfig::umem_bytes`]).
        bytes: u64,
        /// xsk-rs's description of the failure.
        reason: String,
        /// The OS error behind it.
        #[source]
        source: io::Error,
    },
    /// Creating or binding the socket failed (no such interface or queue, no permission,
    /// EBUSY while the queue's previous socket is being released, ...).
    #[error("creating the AF_XDP socket on {ifname} queue {queue} failed: {reason}")]
    Socket {
        /// The interface.
        ifname: String,
        /// The NIC queue id.
        queue: u32,
        /// xsk-rs's description and the OS error.
        reason: String,
        /// The OS error behind it.
        #[source]
        source: io::Error,
    },
    /// The socket came without its own fill and completion rings (xsk-rs hands them only
    /// to the first socket bound to a queue from a UMEM); each device needs its own.
    #[error("the AF_XDP socket on {ifname} queue {queue} shares another socket's rings")]
    SharedRings {
        /// The interface.
        ifname: String,
        /// The NIC queue id.
        queue: u32,
    },
}

/// A setting of [`AfXdpConfig`] the kernel would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigInvalid {
    /// A ring or frame size that is not a power of two.
    #[error("{field} must be a power of two, got {value}")]
    NotPowerOfTwo {
        /// The setting's name.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// A frame size outside `MIN_FRAME_SIZE..=MAX_FRAME_SIZE`.
    #[error("frame_size must be in {min}..={max}, got {value}", min = MIN_FRAME_SIZE, max = MAX_FRAME_SIZE)]
    FrameSize {
        /// The frame size given.
        value: u32,
    },
    /// The fill ring would take every frame, leaving none to transmit from.
    #[error(
        "frame_count ({frame_count}) must exceed fill_size ({fill_size}) to leave frames for TX"
    )]
    NoTxFrames {
        /// UMEM frames.
        frame_count: u32,
        /// Fill-ring size.
        fill_size: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bounded() {
        let c = AfXdpConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.umem_bytes(), 40 << 20);
        assert_eq!(c.max_frame_len(), 1792);
        assert_eq!(c.tx_frames(), 4096);
        assert!(c.rx_size >= c.fill_size, "RX ring cannot overflow");
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        let ok = AfXdpConfig::default();
        let bad = [
            AfXdpConfig {
                frame_size: 3000,
                ..ok
            },
            AfXdpConfig {
                frame_size: 1024,
                ..ok
            },
            AfXdpConfig {
                frame_size: 8192,
                ..ok
            },
            AfXdpConfig {
                fill_size: 1000,
                ..ok
            },
            AfXdpConfig { comp_size: 0, ..ok },
            AfXdpConfig { rx_size: 3, ..ok },
            AfXdpConfig { tx_size: 6, ..ok },
            AfXdpConfig {
                frame_count: 16384,
                ..ok
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let msg = AfXdpConfig {
            fill_size: 1000,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            msg.to_string(),
            "fill_size must be a power of two, got 1000"
        );
        assert_eq!(
            AfXdpConfig {
                frame_size: 4096,
                ..ok
            }
            .validate(),
            Ok(())
        );
    }

    #[test]
    fn xsk_configs_match_ours() {
        let (umem, sock) = AfXdpConfig::default().xsk_configs().unwrap();
        assert_eq!(umem.mtu(), 1792);
        assert_eq!(umem.fill_queue_size().get(), 16384);
        assert_eq!(sock.rx_queue_size().get(), 16384);
        assert!(sock
            .libxdp_flags()
            .contains(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD));
        assert!(sock
            .bind_flags()
            .contains(BindFlags::XDP_COPY | BindFlags::XDP_USE_NEED_WAKEUP));
        let zc = AfXdpConfig {
            zero_copy: true,
            need_wakeup: false,
            ..Default::default()
        };
        let (_, sock) = zc.xsk_configs().unwrap();
        assert_eq!(sock.bind_flags().bits(), BindFlags::XDP_ZEROCOPY.bits());
    }

    #[test]
    fn zero_copy_message_names_interface_and_flag() {
        let e = AfXdpError::ZeroCopyUnsupported {
            ifname: "veth0".into(),
        };
        assert_eq!(
            e.to_string(),
            "zero-copy not supported by veth0's driver; run without --zero-copy"
        );
    }
}
