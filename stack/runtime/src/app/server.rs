//! A server of several listeners, each with its own application (`xdptcp serve --listen
//! PORT=APP ...`): connections are routed to the application of the listener that accepted
//! them.
//!
//! Memory bound: one map entry (ConnId -> application index) per open connection.

use std::fmt;
use std::str::FromStr;

use rustc_hash::FxHashMap;

use super::close_first::CloseFirst;
use super::discard::Discard;
use super::echo::Echo;
use super::http::Http;
use super::source::Source;
use super::{App, AppError, AppEvent, AppIo};
use crate::tcp::endpoint::{ConnId, ListenerId};

/// The example applications `xdptcp serve` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// `echo`: sends back everything it receives.
    Echo,
    /// `discard`: reads and drops everything.
    Discard,
    /// `http`: a minimal HTTP/1.1 responder (200 OK, small body, keep-alive).
    Http,
    /// `close-first`: sends `bye
    /// ` and closes at once (the server closes first).
    CloseFirst,
    /// Sends as fast as possible until the peer closes (bulk download benchmarks).
    Source,
}

impl AppKind {
    /// Every kind, in the order names are listed to the user (parsing tries each).
    pub const ALL: [AppKind; 5] = [
        AppKind::Echo,
        AppKind::Discard,
        AppKind::Http,
        AppKind::CloseFirst,
        AppKind::Source,
    ];

    /// The name used on the command line (`PORT=NAME`).
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Echo => "echo",
            AppKind::Discard => "discard",
            AppKind::Http => "http",
            AppKind::CloseFirst => "close-first",
            AppKind::Source => "source",
        }
    }

    /// A fresh instance.
    pub fn build(self) -> Box<dyn App + Send> {
        match self {
            AppKind::Echo => Box::<Echo>::default(),
            AppKind::Discard => Box::<Discard>::default(),
            AppKind::Http => Box::new(Http::with_wall_clock()),
            AppKind::CloseFirst => Box::<CloseFirst>::default(),
            AppKind::Source => Box::<Source>::default(),
        }
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the built-in applications.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown application {0:?} (one of: echo, discard, http, close-first, source)")]
pub struct UnknownApp(pub String);

impl FromStr for AppKind {
    type Err = UnknownApp;
    fn from_str(s: &str) -> Result<Self, UnknownApp> {
        AppKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownApp(s.to_string()))
    }
}

/// Several listeners, each routed to its own application.
pub struct Server {
    backlog: usize,
    ports: Vec<(u16, Box<dyn App + Send>)>,
    listeners: Vec<(ListenerId, usize)>,
    conns: FxHashMap<ConnId, usize>,
    /// Errors of `listen` at start, by port (the caller reports them).
    pub listen_errors: Vec<(u16, AppError)>,
    /// Connections accepted.
    pub accepted: u64,
    /// TCP_NODELAY (Nagle off) on every accepted connection (`serve --nodelay`).
    pub nodelay: bool,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("ports", &self.ports.iter().map(|p| p.0).collect::<Vec<_>>())
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// `backlog` is each listener's accept-queue bound (capped by `somaxconn`).
    pub fn new(backlog: usize) -> Self {
        Server {
            backlog,
            ports: Vec::new(),
            listeners: Vec::new(),
            conns: FxHashMap::default(),
            listen_errors: Vec::new(),
            accepted: 0,
            nodelay: false,
        }
    }

    /// Serves `app` on `port` (opened at `on_start`).
    pub fn add(&mut self, port: u16, app: Box<dyn App + Send>) -> &mut Self {
        self.ports.push((port, app));
        self
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

impl App for Server {
    fn on_start(&mut self, io: &mut AppIo<'_>) {
        for (i, (port, app)) in self.ports.iter_mut().enumerate() {
            // IPv4 when the interface has it (an IPv6-only one has not).
            if let Some(a) = io.local_addr() {
                match io.listen_on(a.into(), *port, self.backlog) {
                    Ok(l) => self.listeners.push((l, i)),
                    Err(e) => self.listen_errors.push((*port, e)),
                }
            }
            // Dual-stack: the same port on each IPv6 address of the interface.
            for a in io.addrs6().iter() {
                match io.listen_on(a.into(), *port, self.backlog) {
                    Ok(l) => self.listeners.push((l, i)),
                    Err(e) => self.listen_errors.push((*port, e)),
                }
            }
            app.on_start(io);
        }
    }

    /// Aborts every live connection (RST, RFC 9293 §3.10.5): a stopping server does not wait
    /// for graceful closes.
    fn on_stop(&mut self, io: &mut AppIo<'_>) {
        for (&c, _) in self.conns.iter() {
            let _ = io.abort(c);
        }
        for (_, app) in self.ports.iter_mut() {
            app.on_stop(io);
        }
    }

    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        let idx = match ev {
            AppEvent::Accepted(l) => {
                let Some(&(_, i)) = self.listeners.iter().find(|(id, _)| *id == l) else {
                    // Not ours (cannot happen: only our listeners exist); refuse it cleanly.
                    let _ = io.abort(c);
                    return;
                };
                self.accepted += 1;
                if self.nodelay {
                    let _ = io.set_nodelay(c, true);
                }
                self.conns.insert(c, i);
                i
            }
            _ => match self.conns.get(&c) {
                Some(&i) => i,
                None => return,
            },
        };
        self.ports[idx].1.on_event(io, c, ev);
        if ev == AppEvent::Closed {
            self.conns.remove(&c);
        }
    }
}
