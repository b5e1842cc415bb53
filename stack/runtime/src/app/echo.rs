//! `echo`: sends back everything it receives; closes when the peer has closed and all its
//! data is echoed.
//!
//! Memory bound per connection: at most one read chunk ([`CHUNK`] bytes) the send buffer did
//! not take yet; while it is pending nothing more is read (the peer's window closes instead).
//! An idle connection has no entry at all: one exists only while bytes are pending or the
//! peer's FIN has been seen.

use rustc_hash::FxHashMap;

use super::{App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

/// Bytes read per `recv` call.
pub const CHUNK: usize = 16 * 1024;

#[derive(Debug, Default)]
struct Conn {
    pending: Vec<u8>,
    peer_fin: bool,
    closed: bool,
}

/// Counters of the echo application.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Bytes read from connections (each is echoed or held until the send buffer
    /// takes it).
    pub bytes: u64,
    /// Connections that reached `Closed`.
    pub closed: u64,
}

/// The echo application.
#[derive(Debug)]
pub struct Echo {
    conns: FxHashMap<ConnId, Conn>,
    scratch: Vec<u8>,
    /// Counters, updated as events are handled.
    pub stats: EchoStats,
}

impl Default for Echo {
    fn default() -> Self {
        Echo {
            conns: FxHashMap::default(),
            scratch: vec![0; CHUNK],
            stats: EchoStats::default(),
        }
    }
}

impl Echo {
    /// Echo until the send buffer is full, then close once the peer's FIN is reached.
    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        let st = self.conns.entry(c).or_default();
        loop {
            if !st.pending.is_empty() {
                match io.send(c, &st.pending) {
                    Ok(n) => {
                        st.pending.drain(..n);
                    }
                    Err(_) => st.pending.clear(),
                }
                if !st.pending.is_empty() {
                    return; // wait for Writable
                }
            }
            let n = match io.recv(c, &mut self.scratch) {
                Ok(n @ 1..) => n,
                _ => break,
            };
            self.stats.bytes += n as u64;
            let sent = io.send(c, &self.scratch[..n]).unwrap_or(n);
            st.pending.extend_from_slice(&self.scratch[sent..n]);
        }
        if st.peer_fin && st.pending.is_empty() && !st.closed {
            st.closed = true;
            let _ = io.close(c);
        }
        if st.pending.is_empty() && !st.peer_fin {
            self.conns.remove(&c); // nothing to remember for an idle connection
        }
    }
}

impl App for Echo {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Accepted(_) => self.stats.accepted += 1,
            AppEvent::Connected | AppEvent::Readable | AppEvent::Writable => self.pump(io, c),
            AppEvent::PeerFin => {
                self.conns.entry(c).or_default().peer_fin = true;
                self.pump(io, c);
            }
            AppEvent::Error(_) => {}
            AppEvent::Closed => {
                self.stats.closed += 1;
                self.conns.remove(&c);
            }
        }
    }
}
