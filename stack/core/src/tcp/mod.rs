//! The sans-IO TCP core (RFC 9293): no I/O and no clock reads; time is a parameter,
//! segments in, segments out.
//!
//! - [`conn`]: one connection's state machine (SYN-SENT .. TIME-WAIT).
//! - [`endpoint`]: one shard's endpoint: demux, listeners, SYN cookies, TIME-WAIT table,
//!   timers, stateless replies; the API the worker and the application use.
//! - `timewait`: the compact TIME-WAIT record and the one copy of the TIME-WAIT segment
//!   rules (RFC 9293 §3.10.7.4, RFC 6191, RFC 1337), used by the endpoint's table and by a
//!   connection still in TIME-WAIT.
//! - [`tuple`](mod@tuple): [`FourTuple`], a connection's identity.
//! - Private: `listener` and `synqueue` (LISTEN, SYN and accept queues), `cookie` (RFC 4987
//!   SYN cookies), `isn` (RFC 6528 ISNs, RFC 6056 port offsets).
//! - [`icmp`]: ICMP errors for the stack's flows (PMTU, hard and soft errors), as Linux's
//!   `tcp_v4_err`.
//! - [`config`]: settings named after Linux's sysctls.
//! - [`cc`]: congestion control (CUBIC, NewReno) behind one trait.
//! - [`bufpool`]: the per-endpoint pool of send/receive buffer storage.

pub mod bufpool;
pub mod cc;
pub mod config;
pub mod conn;
pub(crate) mod cookie;
pub mod endpoint;
pub mod icmp;
pub(crate) mod isn;
pub(crate) mod listener;
pub(crate) mod synqueue;
pub(crate) mod timewait;
pub mod tuple;

pub use config::{SynCookieMode, TcpConfig, TwReuse};
pub use conn::{ConnError, Event, Negotiated, SendError, State, Timer, TxLimit};
pub use cookie::{DEFAULT_COOKIE_PERIOD, MAX_COOKIE_AGE};
pub use endpoint::{
    Activity, ConnCounters, ConnId, ConnInfo, ConnectError, Endpoint, EndpointEvent,
    EndpointSecrets, EndpointStats, Idle, ListenError, ListenerId, NoSuchConn, StateCounts,
};
pub use icmp::{IcmpError, IcmpOutcome, IcmpStats, Unreachable};
pub use listener::ListenerStats;
pub use tuple::FourTuple;
