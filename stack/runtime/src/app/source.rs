//! `source`: on connect, sends zeros as fast as the send buffer takes them until the peer
//! closes (the download direction of a bulk benchmark, the twin of [`super::discard`]).
//! Data the peer sends is read and dropped; on the peer's FIN it closes.
//!
//! Memory: no per-connection state; one static block of zeros.

use super::{drain, App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

/// Bytes offered per `send` call.
const BLOCK: usize = 64 * 1024;
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// The source application.
#[derive(Debug, Default)]
pub struct Source {
    /// Bytes the send buffers took.
    pub bytes: u64,
}

impl Source {
    /// Fills the send buffer (stops at the first short send: `Writable` follows).
    fn fill(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        while let Ok(n @ 1..) = io.send(c, &ZEROS) {
            self.bytes += n as u64;
            if n < BLOCK {
                break;
            }
        }
    }
}

impl App for Source {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Connected | AppEvent::Writable => self.fill(io, c),
            AppEvent::Readable => {
                let mut scratch = [0u8; 512];
                drain(io, c, &mut scratch, |_| {});
            }
            AppEvent::PeerFin => {
                let mut scratch = [0u8; 512];
                drain(io, c, &mut scratch, |_| {});
                let _ = io.close(c);
            }
            _ => {}
        }
    }
}
