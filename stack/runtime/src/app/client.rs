//! A client: connects, sends a message, reads until as many bytes came back (the echo), and
//! closes. The outcome is kept for the caller ([`Client::outcome`]); [`App::is_done`] turns
//! true when the connection is over, so the worker loop can stop.
//!
//! Memory bound: the message plus at most `expect` bytes received (more is dropped).

use std::net::SocketAddr;

use super::{App, AppError, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

/// The echo client.
#[derive(Debug)]
pub struct Client {
    remote: SocketAddr,
    message: Vec<u8>,
    /// Bytes to read before closing (at most this many are kept).
    expect: usize,
    /// Close only after the peer's FIN (the peer closes first).
    wait_for_fin: bool,
    conn: Option<ConnId>,
    sent: usize,
    received: Vec<u8>,
    closed: bool,
    error: Option<AppError>,
    done: bool,
}

impl Client {
    /// Sends `message`, reads as many bytes back, then closes (the active close).
    pub fn new(remote: impl Into<SocketAddr>, message: &[u8]) -> Self {
        Self::build(remote.into(), message, message.len(), false)
    }

    /// Sends nothing, reads (keeping at most `max` bytes) until the peer closes, then
    /// closes (the passive close).
    pub fn reader(remote: impl Into<SocketAddr>, max: usize) -> Self {
        Self::build(remote.into(), b"", max, true)
    }

    fn build(remote: SocketAddr, message: &[u8], expect: usize, wait_for_fin: bool) -> Self {
        Client {
            remote,
            message: message.to_vec(),
            expect,
            wait_for_fin,
            conn: None,
            sent: 0,
            received: Vec::with_capacity(expect.min(1 << 16)),
            closed: false,
            error: None,
            done: false,
        }
    }

    /// `None` while running; then the bytes received, or the error the connection ended with.
    pub fn outcome(&self) -> Option<Result<&[u8], AppError>> {
        if !self.done {
            return None;
        }
        Some(match self.error {
            Some(e) => Err(e),
            None => Ok(&self.received),
        })
    }

    /// The connection, once opened.
    pub fn conn(&self) -> Option<ConnId> {
        self.conn
    }

    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        if self.sent < self.message.len() {
            match io.send(c, &self.message[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(AppError::NotConnected) => {}
                Err(e) => self.error = Some(e),
            }
        }
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = io.recv(c, &mut chunk) {
            let room = self.expect.saturating_sub(self.received.len());
            self.received.extend_from_slice(&chunk[..n.min(room)]);
        }
        if !self.wait_for_fin && self.received.len() >= self.expect && !self.closed {
            self.closed = true;
            let _ = io.close(c);
        }
    }
}

impl App for Client {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        match io.connect_any(self.remote) {
            Ok(c) => self.conn = Some(c),
            Err(e) => {
                self.error = Some(e);
                self.done = true;
            }
        }
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        if Some(c) != self.conn {
            return;
        }
        match ev {
            AppEvent::Connected | AppEvent::Readable | AppEvent::Writable => self.pump(io, c),
            AppEvent::PeerFin => {
                self.pump(io, c);
                if !self.closed {
                    self.closed = true;
                    let _ = io.close(c);
                }
            }
            AppEvent::Error(e) => self.error = Some(e),
            AppEvent::Closed => self.done = true,
            AppEvent::Accepted(_) => {}
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}
