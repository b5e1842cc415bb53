//! The application API: event-driven and run-to-completion. An [`App`]'s handler runs on the
//! worker's core, inside the worker loop, between receiving a burst and transmitting: whatever
//! it sends goes out in the same iteration's flush. Nothing blocks and nothing is shared.
//!
//! The worker calls [`App::on_start`] once, then [`App::on_event`] for every event of every
//! connection the application owns; [`AppIo`] is the handle on the shard's endpoint for the
//! duration of one call (send, recv, shutdown, close, abort, connect, listen).
//!
//! Example applications: [`echo`], [`discard`], [`http`], [`close_first`], [`source`] (servers) and
//! [`client`] (connect, send a message, read the echo, close); [`server::Server`] routes each
//! listener's connections to its own application (`xdptcp serve --listen PORT=APP ...`).

pub mod client;
pub mod close_first;
pub mod discard;
pub mod echo;
pub mod http;
pub mod server;
pub mod source;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};

use crate::tcp::conn::{ConnError, Event, SendError, State};
use crate::tcp::endpoint::{ConnId, ConnInfo, ConnectError, Endpoint, ListenError, ListenerId};
use crate::tcp::FourTuple;
use crate::time::Instant;

/// What an application is told about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEvent {
    /// A passive open on `ListenerId` completed and was accepted; the app owns the connection.
    /// (A `Connected` follows, as for an active open.)
    Accepted(ListenerId),
    /// The handshake completed.
    Connected,
    /// In-order data can be read with [`AppIo::recv`]. Edge-triggered: read until 0.
    Readable,
    /// Send-buffer space was freed after a short or refused [`AppIo::send`].
    Writable,
    /// The peer sent FIN: once the buffered data is read, the stream has ended.
    PeerFin,
    /// The connection failed; `Closed` follows.
    Error(AppError),
    /// The connection is over. The `ConnId` is released right after this call: forget it.
    Closed,
}

/// Typed errors of the application API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// Our SYN was answered by a RST (ECONNREFUSED).
    #[error("connection refused")]
    ConnectionRefused,
    /// The peer reset the connection (ECONNRESET).
    #[error("connection reset")]
    ConnectionReset,
    /// Retransmissions, keepalive probes or the user timeout ran out (ETIMEDOUT).
    #[error("connection timed out")]
    TimedOut,
    /// We aborted it (`abort`, or `close` with unread data).
    #[error("connection aborted")]
    Aborted,
    /// An ICMP error failed the connect (or was the last word before a timeout): the
    /// errno Linux gives it (ENETUNREACH, EHOSTUNREACH, ...).
    #[error("{0}")]
    Unreachable(crate::tcp::Unreachable),
    /// The handshake has not completed yet.
    #[error("not connected")]
    NotConnected,
    /// `shutdown` or `close` was called: no more sending.
    #[error("write side closed")]
    WriteClosed,
    /// The connection is closed (normally), or the handle is stale.
    #[error("connection closed")]
    Closed,
    /// `connect` failed at once: no free ephemeral port, connection limit, or invalid remote.
    #[error("connect: {0}")]
    Connect(ConnectError),
    /// `listen` failed: port in use, too many listeners, or port 0.
    #[error("listen: {0}")]
    Listen(ListenError),
}

impl From<ConnError> for AppError {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::Refused => AppError::ConnectionRefused,
            ConnError::Reset => AppError::ConnectionReset,
            ConnError::TimedOut => AppError::TimedOut,
            ConnError::Aborted => AppError::Aborted,
            ConnError::Unreachable(u) => AppError::Unreachable(u),
        }
    }
}

impl AppEvent {
    /// The application's view of a connection event.
    pub fn from_conn(ev: Event) -> AppEvent {
        match ev {
            Event::Connected => AppEvent::Connected,
            Event::Readable => AppEvent::Readable,
            Event::Writable => AppEvent::Writable,
            Event::PeerFin => AppEvent::PeerFin,
            Event::Error(e) => AppEvent::Error(e.into()),
            Event::Closed => AppEvent::Closed,
        }
    }
}

/// An application running on a worker. See the module docs.
pub trait App {
    /// Once, before the first loop iteration: open listeners, start connections.
    fn on_start(&mut self, _io: &mut AppIo<'_>) {}
    /// One event of a connection the application owns.
    fn on_event(&mut self, io: &mut AppIo<'_>, conn: ConnId, ev: AppEvent);
    /// Once, when the worker stops: the application ends what it holds (the example server
    /// aborts its live connections, so peers see a RST at once rather than after the XDP
    /// program is gone).
    fn on_stop(&mut self, _io: &mut AppIo<'_>) {}
    /// True when the application has nothing more to do (a client): the worker stops.
    fn is_done(&self) -> bool {
        false
    }
}

/// Bound on the stack's IPv6 addresses per interface.
pub const MAX_ADDRS6: usize = 32;

/// Up to [`MAX_ADDRS6`] IPv6 addresses of the stack (a fixed array: the config stays
/// `Copy`). The kernel owns them too (it answers Neighbor Solicitations for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Addrs6 {
    addrs: [Option<Ipv6Addr>; MAX_ADDRS6],
}

impl Addrs6 {
    /// The first [`MAX_ADDRS6`] of `v` (more are an error).
    pub fn new(v: &[Ipv6Addr]) -> Result<Self, usize> {
        if v.len() > MAX_ADDRS6 {
            return Err(v.len());
        }
        let mut e = Addrs6::default();
        for (slot, a) in e.addrs.iter_mut().zip(v) {
            *slot = Some(*a);
        }
        Ok(e)
    }

    /// Whether `a` is one of them.
    pub fn contains(&self, a: Ipv6Addr) -> bool {
        self.addrs.iter().map_while(|x| *x).any(|x| x == a)
    }

    /// The addresses, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.addrs.iter().map_while(|x| *x)
    }
}

/// The application's handle on the shard's endpoint during one callback.
pub struct AppIo<'a> {
    ep: &'a mut Endpoint,
    now: Instant,
    /// The interface's IPv4 address (none: IPv6 only).
    local: Option<Ipv4Addr>,
    /// The interface's IPv6 addresses (none: IPv4 only).
    addrs6: Addrs6,
}

impl<'a> AppIo<'a> {
    /// `local` is the interface address used for `listen` and `connect`.
    pub fn new(ep: &'a mut Endpoint, now: Instant, local: Ipv4Addr) -> Self {
        Self::with_local(ep, now, Some(local))
    }

    /// [`AppIo::new`] with or without an IPv4 address (`None`: an IPv6-only interface,
    /// whose addresses come with [`AppIo::with_addrs6`]).
    pub fn with_local(ep: &'a mut Endpoint, now: Instant, local: Option<Ipv4Addr>) -> Self {
        AppIo {
            ep,
            now,
            local,
            addrs6: Addrs6::default(),
        }
    }

    /// With the interface's IPv6 addresses: [`AppIo::listen_on`] them, and
    /// [`AppIo::connect_any`] to IPv6 servers from the first.
    pub fn with_addrs6(mut self, addrs6: Addrs6) -> Self {
        self.addrs6 = addrs6;
        self
    }

    /// The interface's IPv6 addresses.
    pub fn addrs6(&self) -> Addrs6 {
        self.addrs6
    }

    /// LISTEN on (`addr`, `port`), either family; `backlog` is capped by `somaxconn`.
    pub fn listen_on(
        &mut self,
        addr: IpAddr,
        port: u16,
        backlog: usize,
    ) -> Result<ListenerId, AppError> {
        self.ep
            .listen(addr, port, backlog)
            .map_err(AppError::Listen)
    }

    /// Active open to `remote` of either family: from the interface's IPv4 address, or from
    /// its first IPv6 address (`InvalidAddress` when it has none of that family).
    pub fn connect_any(&mut self, remote: SocketAddr) -> Result<ConnId, AppError> {
        let local: IpAddr = match remote {
            SocketAddr::V4(_) => self.local.map(IpAddr::from),
            SocketAddr::V6(_) => self.addrs6.iter().next().map(IpAddr::from),
        }
        .ok_or(AppError::Connect(ConnectError::InvalidAddress))?;
        self.ep
            .connect(self.now, local, remote)
            .map_err(AppError::Connect)
    }

    /// The loop iteration's time (read once per iteration by the worker).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The interface's IPv4 address, which [`AppIo::listen`] and [`AppIo::connect`] use
    /// (`None`: the interface is IPv6 only).
    pub fn local_addr(&self) -> Option<Ipv4Addr> {
        self.local
    }

    /// LISTEN on `port` of the interface's IPv4 address, or of its first IPv6 address when
    /// it is IPv6 only; `backlog` is capped by `somaxconn`. (An interface without any
    /// address is refused as `Connect(InvalidAddress)`: there is nothing to listen on.)
    pub fn listen(&mut self, port: u16, backlog: usize) -> Result<ListenerId, AppError> {
        let local = self
            .local
            .map(IpAddr::from)
            .or_else(|| self.addrs6.iter().next().map(IpAddr::from))
            .ok_or(AppError::Connect(ConnectError::InvalidAddress))?;
        self.ep
            .listen(local, port, backlog)
            .map_err(AppError::Listen)
    }

    /// Active open from an ephemeral port of this shard. `Connected` or `Error` follows
    /// (`Connect(InvalidAddress)` on an IPv6-only interface, as Linux's ENETUNREACH).
    pub fn connect(&mut self, remote: SocketAddrV4) -> Result<ConnId, AppError> {
        let local = self
            .local
            .ok_or(AppError::Connect(ConnectError::InvalidAddress))?;
        self.ep
            .connect(self.now, local, remote)
            .map_err(AppError::Connect)
    }

    /// Active open from `local` (the interface address or one of its `extra_addrs`; the
    /// interface drops replies to any other) to `remote`.
    pub fn connect_from(
        &mut self,
        local: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Result<ConnId, AppError> {
        self.ep
            .connect(self.now, local, remote)
            .map_err(AppError::Connect)
    }

    /// Active open from `local` of either family (one of the interface's addresses) to
    /// `remote` of the same family.
    pub fn connect_from_ip(
        &mut self,
        local: IpAddr,
        remote: SocketAddr,
    ) -> Result<ConnId, AppError> {
        self.ep
            .connect(self.now, local, remote)
            .map_err(AppError::Connect)
    }

    /// Takes the oldest established connection off listener `l`'s accept queue (the
    /// interface does this and reports `Accepted`).
    pub(crate) fn accept(&mut self, l: ListenerId) -> Option<ConnId> {
        self.ep.accept(l)
    }

    /// Queues data; returns how much was taken (0 when the send buffer is full: wait for
    /// `Writable`).
    pub fn send(&mut self, c: ConnId, data: &[u8]) -> Result<usize, AppError> {
        match self.ep.send(self.now, c, data) {
            Ok(n) => Ok(n),
            Err(SendError::Full) => Ok(0),
            Err(SendError::NotConnected) => Err(AppError::NotConnected),
            Err(SendError::WriteClosed) => Err(AppError::WriteClosed),
            Err(SendError::Closed(Some(e))) => Err(e.into()),
            Err(SendError::Closed(None)) => Err(AppError::Closed),
        }
    }

    /// Reads in-order data into `buf`; 0 when none is buffered (or at end of stream).
    pub fn recv(&mut self, c: ConnId, buf: &mut [u8]) -> Result<usize, AppError> {
        self.ep.recv(c, buf).map_err(|_| AppError::Closed)
    }

    /// Bytes buffered for `recv`.
    pub fn recv_available(&self, c: ConnId) -> usize {
        self.ep.recv_available(c)
    }

    /// Bytes `send` would take now.
    pub fn send_capacity(&self, c: ConnId) -> usize {
        self.ep.send_capacity(c)
    }

    /// Half-close: FIN after the queued data.
    pub fn shutdown(&mut self, c: ConnId) -> Result<(), AppError> {
        self.ep
            .shutdown_write(self.now, c)
            .map_err(|_| AppError::Closed)
    }

    /// Close: FIN after the queued data (RST if received data is left unread, RFC 2525
    /// §2.17). The handle stays valid until `Closed`.
    pub fn close(&mut self, c: ConnId) -> Result<(), AppError> {
        self.ep.close(self.now, c).map_err(|_| AppError::Closed)
    }

    /// Abort: RST now (RFC 9293 §3.10.5).
    pub fn abort(&mut self, c: ConnId) -> Result<(), AppError> {
        self.ep.abort(self.now, c).map_err(|_| AppError::Closed)
    }

    /// TCP_NODELAY: `true` turns Nagle's algorithm off for `c` (RFC 9293 §3.7.4).
    pub fn set_nodelay(&mut self, c: ConnId, on: bool) -> Result<(), AppError> {
        self.ep.set_nodelay(c, on).map_err(|_| AppError::Closed)
    }

    /// SO_KEEPALIVE: keepalive probes on `c` after `tcp_keepalive_time` idle (RFC 9293
    /// §3.8.4; the timings are the endpoint's `tcp_keepalive_*` settings).
    pub fn set_keepalive(&mut self, c: ConnId, on: bool) -> Result<(), AppError> {
        self.ep
            .set_keepalive(self.now, c, on)
            .map_err(|_| AppError::Closed)
    }

    /// The TCP state of `c`, or `None` if the handle is stale.
    pub fn state(&self, c: ConnId) -> Option<State> {
        self.ep.state(c)
    }

    /// The connection's 4-tuple (`local` = our side).
    pub fn tuple(&self, c: ConnId) -> Option<FourTuple> {
        self.ep.tuple(c)
    }

    /// A snapshot of the connection (RTT, windows, queues, timers; `ss -i` style).
    pub fn info(&self, c: ConnId) -> Option<ConnInfo> {
        self.ep.info(c)
    }
}

/// Reads everything buffered on `c` into `sink`, in chunks of `scratch`; returns the bytes
/// read. Bounded by what the connection buffers (`tcp_rmem`).
pub fn drain(
    io: &mut AppIo<'_>,
    c: ConnId,
    scratch: &mut [u8],
    mut sink: impl FnMut(&[u8]),
) -> usize {
    let mut total = 0;
    while let Ok(n @ 1..) = io.recv(c, scratch) {
        sink(&scratch[..n]);
        total += n;
    }
    total
}
