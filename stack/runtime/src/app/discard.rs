//! `discard` (RFC 863 in spirit): reads and drops everything; closes when the peer closes.

use super::{drain, App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

/// The discard application. No per-connection state.
#[derive(Debug)]
pub struct Discard {
    scratch: Vec<u8>,
    /// Bytes read and dropped.
    pub bytes: u64,
}

impl Default for Discard {
    fn default() -> Self {
        Discard {
            scratch: vec![0; 16 * 1024],
            bytes: 0,
        }
    }
}

impl App for Discard {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Readable => self.bytes += drain(io, c, &mut self.scratch, |_| {}) as u64,
            AppEvent::PeerFin => {
                self.bytes += drain(io, c, &mut self.scratch, |_| {}) as u64;
                let _ = io.close(c);
            }
            _ => {}
        }
    }
}
