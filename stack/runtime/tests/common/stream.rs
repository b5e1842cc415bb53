//! The byte stream the veth ICMP tests send from the stack to a Linux peer ([`BulkSender`]),
//! and the peer's side: a listener in the peer's namespace that accepts one connection
//! (bounded wait) and checks the bytes.

use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xdptcp::app::{App, AppError, AppEvent, AppIo};
use xdptcp::tcp::endpoint::ConnId;
use xdptcp_harness::NetnsGuard;

use super::stack_run::LIMIT;

/// Byte `i` of the stream.
pub fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// The sending side: how much of the stream the stack took so far.
struct Stream {
    /// Bytes the stack accepted.
    pub sent: usize,
    /// 64 KiB of the stream plus one period, so any offset starts a slice.
    pattern: Vec<u8>,
}

impl Stream {
    fn new() -> Self {
        Stream {
            sent: 0,
            pattern: (0..65_536 + 251).map(byte).collect(),
        }
    }

    /// Sends the stream up to byte `limit`, as far as the send buffer takes it.
    fn send_upto(&mut self, io: &mut AppIo<'_>, c: ConnId, limit: usize) -> Result<(), AppError> {
        while self.sent < limit {
            let off = self.sent % 251;
            let n = (limit - self.sent).min(65_536);
            match io.send(c, &self.pattern[off..off + n]) {
                Ok(0) | Err(AppError::NotConnected) => return Ok(()),
                Ok(k) => self.sent += k,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Connects, sends the stream up to `first` bytes, the rest of `total` once the peer sent
/// a byte, and closes once all is queued and the peer sent `close_after` bytes; records
/// how it ended.
pub struct BulkSender {
    remote: SocketAddr,
    first: usize,
    total: usize,
    close_after: usize,
    stream: Stream,
    /// Bytes the peer sent.
    got: usize,
    closed: bool,
    /// The error the connection reported, if any.
    pub error: Option<AppError>,
    /// Whether the connection closed.
    pub done: bool,
}

impl BulkSender {
    /// Sends `total` bytes at once and closes.
    #[allow(dead_code)] // not every test binary sends in one go
    pub fn new(remote: impl Into<SocketAddr>, total: usize) -> Self {
        BulkSender::phased(remote, total, total, 0)
    }

    /// See the type's docs.
    pub fn phased(
        remote: impl Into<SocketAddr>,
        first: usize,
        total: usize,
        close_after: usize,
    ) -> Self {
        BulkSender {
            remote: remote.into(),
            first,
            total,
            close_after,
            stream: Stream::new(),
            got: 0,
            closed: false,
            error: None,
            done: false,
        }
    }

    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        let limit = if self.got > 0 { self.total } else { self.first };
        if let Err(e) = self.stream.send_upto(io, c, limit) {
            self.error = Some(e);
            return;
        }
        if self.stream.sent == self.total && self.got >= self.close_after && !self.closed {
            self.closed = true;
            let _ = io.close(c);
        }
    }
}

impl App for BulkSender {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        if let Err(e) = io.connect_any(self.remote) {
            self.error = Some(e);
            self.done = true;
        }
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Connected | AppEvent::Writable => self.pump(io, c),
            AppEvent::Readable => {
                let mut buf = [0u8; 2048];
                while let Ok(n @ 1..) = io.recv(c, &mut buf) {
                    self.got += n;
                }
                self.pump(io, c);
            }
            AppEvent::Error(e) => self.error = Some(e),
            AppEvent::Closed => self.done = true,
            _ => {}
        }
    }

    fn is_done(&self) -> bool {
        self.done
    }
}

/// Reads the stream from offset `*got` up to byte `upto` (EOF before it is an error) or,
/// with `None`, to EOF, checking every byte.
pub fn read_checked(
    s: &mut TcpStream,
    got: &mut usize,
    upto: Option<usize>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 65_536];
    loop {
        let want = upto.map_or(buf.len(), |n| (n - *got).min(buf.len()));
        if want == 0 {
            return Ok(());
        }
        let k = s.read(&mut buf[..want])?;
        if k == 0 {
            return match upto {
                None => Ok(()),
                Some(_) => Err(std::io::Error::other(format!("EOF at byte {got}"))),
            };
        }
        if let Some(i) = (0..k).find(|&i| buf[i] != byte(*got + i)) {
            return Err(std::io::Error::other(format!("byte {} differs", *got + i)));
        }
        *got += k;
    }
}

/// A thread in namespace `ns` listening on `addr:port` (listening on return): accepts one
/// connection within [`LIMIT`] and runs `f` on it (blocking, 30 s read timeout).
pub fn peer_accept<T: Send + 'static>(
    ns: &str,
    addr: IpAddr,
    port: u16,
    f: impl FnOnce(TcpStream) -> std::io::Result<T> + Send + 'static,
) -> JoinHandle<std::io::Result<T>> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let ns = ns.to_string();
    let peer = std::thread::spawn(move || -> std::io::Result<T> {
        let _ns = NetnsGuard::enter(&ns)?;
        let l = TcpListener::bind(SocketAddr::from((addr, port)))?;
        let _ = ready_tx.send(());
        l.set_nonblocking(true)?;
        let end = Instant::now() + LIMIT;
        let s = loop {
            match l.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(e),
            }
        };
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        f(s)
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("peer listening");
    peer
}
