//! `close-first`: on accept, sends the 4 bytes `bye\n` and closes, so the server does the
//! active close (and its side of the connection ends in TIME-WAIT). Data the peer sends is
//! read and dropped, so the close is a FIN, not a RST (unless it arrived before the close).

use super::{drain, App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

/// What it sends before closing.
pub const MESSAGE: &[u8] = b"bye\n";

/// The close-first application. No per-connection state.
#[derive(Debug, Default)]
pub struct CloseFirst {
    /// Connections it closed.
    pub closed: u64,
}

impl App for CloseFirst {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Connected => {
                // An empty send buffer always takes 4 bytes (tcp_wmem >= 4).
                let _ = io.send(c, MESSAGE);
                let _ = io.close(c);
                self.closed += 1;
            }
            AppEvent::Readable | AppEvent::PeerFin => {
                let mut scratch = [0u8; 512];
                drain(io, c, &mut scratch, |_| {});
            }
            _ => {}
        }
    }
}
