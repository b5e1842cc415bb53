//! One shard's TCP endpoint, sans-IO (model: quinn-proto's `Endpoint`): it owns every
//! connection, listener, SYN/accept queue and TIME-WAIT record of one worker and does the
//! demultiplexing and the stateless replies that no single connection can.
//!
//! - Segments in: [`Endpoint::on_segment`] (4-tuple -> slab slot via a hash map, never a scan;
//!   then the TIME-WAIT table; then listeners by (addr, port) with a 0.0.0.0 fallback; else
//!   CLOSED, RFC 9293 §3.10.7.1).
//! - Time: [`Endpoint::on_timeout`] at [`Endpoint::next_deadline`]. Connection timers (one
//!   lazily kept entry per connection) run on a 1 ms-tick
//!   [`TimerWheel`](crate::wheel::TimerWheel) sized to `max_connections`; TIME-WAIT records
//!   expire in order from a FIFO (twtable.rs); deadlines round up to the millisecond,
//!   never fire early.
//! - Segments out: [`Endpoint::poll_transmit`] drains the stateless control queue and every
//!   connection on the ready list (connections touched since the last call).
//! - Application: [`Endpoint::poll_event`], `accept`, `connect`, `send`, `recv`, ... by
//!   [`ConnId`], a slab handle with a generation so a stale handle never reaches a new
//!   connection. [`Endpoint::info`] gives a read-only [`ConnInfo`] snapshot; the
//!   `Connection` itself never leaves the endpoint.
//! - Files: `input.rs` (segment arrival: demux, LISTEN, CLOSED, cookies), `twtable.rs` (the
//!   TIME-WAIT table), `timers.rs` (the connection timer wheel), `flow.rs` (flow counters),
//!   `info.rs` ([`ConnInfo`]).
//!
//! Contract: after `on_segment`, `on_timeout` or an application call, call `poll_transmit`:
//! it also re-arms timers and frees finished connections (settling happens there, once per
//! touched connection). Connection lifetime: an app-owned connection is freed when it is
//! finished and the application has called `close` or `abort`; in TIME-WAIT after `close` it
//! is replaced by a TIME-WAIT record (tcp/timewait.rs). A passive connection
//! belongs to its listener until `accept` (its events wait until then); one that dies there
//! (reset, SYN-ACK retries exhausted) is freed at once (Linux keeps a reset one in the accept
//! queue until accepted). A SYN that reopens a TIME-WAIT 4-tuple (RFC 6191) drops the old
//! connection even if the application still holds its (now stale) handle.
//!
//! Memory bounds (per shard): at most `max_connections` connections (slab, demux map, ready
//! lists and timer entries are O(that)); `tcp_max_tw_buckets` TIME-WAIT records; per listener
//! its SYN queue (`tcp_max_syn_backlog`) and accept queue (min(backlog, somaxconn) + 1), whose
//! members are slab connections and count towards `max_connections`; [`CONTROL_QUEUE_MAX`]
//! queued stateless replies; [`MAX_LISTENERS`] listeners. Of the connections, at most
//! `tcp_max_orphans` orphans (closed by the application, not finished) before orphans are reset;
//! orphans holding send data are reset too while `tcp_mem` is above HIGH (orphans.rs).

mod flow;
mod history;
mod icmp;
mod info;
mod input;
mod orphans;
mod timers;
mod twtable;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::hash::{keyed_state, KeyedState};
use slab::Slab;

use crate::rss::FlowOwner;
use crate::tcp::bufpool::{BufPool, MemLimits, PoolStats};
use crate::tcp::conn::{
    ChallengeAckLimiter, ConnError, Connection, Event, Limits, SendError, State, Timer,
};
use crate::tcp::cookie::{SynCookies, DEFAULT_COOKIE_PERIOD};
use crate::tcp::isn::IsnGenerator;
use crate::tcp::listener::{Listener, ListenerStats};
use crate::tcp::tuple::FourTuple;
use crate::tcp::TcpConfig;
use crate::time::{Duration, Instant};
use crate::wire::TcpRepr;
pub use flow::FlowStats;
pub use history::{ConnHistory, HistEvent, HISTORY_LEN};
pub use info::{Activity, ConnCounters, ConnInfo, Idle};

use timers::{Armed, ConnTimers, TimerKey};
use twtable::TwTable;

/// Bound on queued stateless replies (RSTs, cookie SYN-ACKs, TIME-WAIT ACKs) between two
/// `poll_transmit` calls; more are dropped and counted (`control_dropped`).
pub const CONTROL_QUEUE_MAX: usize = 4096;
/// Bound on listeners per endpoint.
pub const MAX_LISTENERS: usize = 1024;
/// Connection slots reserved (address space, not memory) when an endpoint is made.
const INITIAL_SLOTS: usize = 4096;

/// A connection handle: slab index and generation. Stale handles are rejected, never aliased.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    gen: u32,
}

impl ConnId {
    /// The slab index (the slot), reused after the connection is freed.
    pub fn index(self) -> u32 {
        self.index
    }
    /// The slot's generation when the handle was made; bumped each time the slot is freed.
    pub fn generation(self) -> u32 {
        self.gen
    }
}

/// A listener handle (index into the endpoint's listener table, with a generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId {
    index: u32,
    gen: u32,
}

/// The endpoint's secrets and seed: fixed values make a simulation deterministic.
#[derive(Clone)]
pub struct EndpointSecrets {
    /// RFC 6528 ISN and timestamp-offset key.
    pub isn: [u8; 16],
    /// SYN-cookie key (RFC 4987).
    pub cookie: [u8; 16],
    /// Seed of the ephemeral-port start (not security relevant beyond port guessing).
    pub seed: u64,
}

impl fmt::Debug for EndpointSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecrets { .. }")
    }
}

impl EndpointSecrets {
    /// Secrets from 40 random bytes (production: the runtime reads them from the OS RNG,
    /// `xdptcp::stack::os_secrets`).
    pub fn from_bytes(b: [u8; 40]) -> Self {
        let mut isn = [0u8; 16];
        let mut cookie = [0u8; 16];
        let mut seed = [0u8; 8];
        isn.copy_from_slice(&b[..16]);
        cookie.copy_from_slice(&b[16..32]);
        seed.copy_from_slice(&b[32..]);
        EndpointSecrets {
            isn,
            cookie,
            seed: u64::from_le_bytes(seed),
        }
    }

    /// Deterministic secrets derived from `seed` (tests, simulations).
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        EndpointSecrets {
            isn: rng.gen(),
            cookie: rng.gen(),
            seed: rng.gen(),
        }
    }
}

/// Why `listen` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ListenError {
    /// Another listener already has this address and port.
    #[error("address in use")]
    AddrInUse,
    /// `MAX_LISTENERS` listeners are open already.
    #[error("too many listeners")]
    TooManyListeners,
    /// Port 0 (no ephemeral port is picked for a listener).
    #[error("port 0 is not a valid listening port")]
    InvalidPort,
}

/// Why `connect` failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// No free ephemeral port for this remote (Linux EADDRNOTAVAIL).
    #[error("no free ephemeral port")]
    NoPorts,
    /// `max_connections` reached.
    #[error("too many connections")]
    TooManyConnections,
    /// Remote port 0 or an unspecified/broadcast/multicast address.
    #[error("invalid remote address")]
    InvalidAddress,
}

/// A stale or unknown `ConnId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such connection")]
pub struct NoSuchConn;

/// What `poll_event` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// An event of a connection the application owns (opened by `connect` or `accept`ed).
    Conn(ConnId, Event),
    /// The listener's accept queue became non-empty: call `accept` until it returns `None`.
    Incoming(ListenerId),
}

/// Endpoint counters by reason (names follow Linux's MIB where one exists).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Segments handed to the endpoint (`InSegs`), before any check.
    pub segments_in: u64,
    /// Segments emitted, stateless replies included (`OutSegs`).
    pub segments_out: u64,
    /// Segments dropped before demux: port 0, or a non-unicast address.
    pub malformed_in: u64,
    /// Segments dropped before demux for a source Linux calls martian: 0/8, 127/8, or our
    /// own address (`input::martian_source`).
    pub martian_src_in: u64,
    /// Segments dropped for a flag combination their state never takes: SYN+FIN at a
    /// listener (Linux tcp_rcv_state_process, drop reason TCP_FLAGS).
    pub bad_flags_in: u64,
    /// Segments for no connection, TIME-WAIT record or listener (`TCPNoListener`-ish).
    pub no_listener: u64,
    /// RSTs we generated statelessly, by reason.
    pub rst_closed: u64,
    /// RSTs to an ACK that reached a listener and was no SYN cookie (RFC 9293 §3.10.7.2).
    pub rst_listen_bad_ack: u64,
    /// RSTs to a handshake's ACK with the accept queue full (`tcp_abort_on_overflow` = 1).
    pub rst_accept_overflow: u64,
    /// SYNs a listener dropped (`ListenDrops` for SYNs), and why.
    pub syn_dropped: u64,
    /// Handshake ACKs dropped because the accept queue was full (`ListenOverflows`).
    pub listen_overflows: u64,
    /// SYNs and cookie ACKs dropped because `max_connections` was reached.
    pub conn_limit_drops: u64,
    /// `connect` calls refused because `max_connections` was reached.
    pub connect_limit_refused: u64,
    /// Active opens that found no free port hashing to their own RSS queue (replies are
    /// handed off from the queue they arrive on).
    pub connect_rss_miss: u64,
    /// SYN cookies (`SyncookiesSent` / `Recv` / `Failed`).
    pub cookies_sent: u64,
    /// Cookie ACKs that validated and became connections (`SyncookiesRecv`).
    pub cookies_accepted: u64,
    /// ACKs tried as cookies that did not validate (`SyncookiesFailed`).
    pub cookies_rejected: u64,
    /// SYN-cookie secret rotations (one per cookie lifetime while cookies are being sent).
    pub cookie_rotations: u64,
    /// Challenge ACKs sent and suppressed by the shared RFC 5961 §7 limiter.
    pub challenge_acks_sent: u64,
    /// Challenge ACKs the limiter suppressed (`TCPChallengeACK` is the sent count).
    pub challenge_acks_suppressed: u64,
    /// ACKs not sent by connections because of their per-connection `tcp_invalid_ratelimit`
    /// (out-of-window / PAWS / duplicate SYN / challenge; Linux TCPACKSkipped*).
    pub acks_skipped: u64,
    /// Connection timers that found the timer wheel full (impossible while the wheel is
    /// sized to `max_connections`; such a timer falls back to a polled list).
    pub timer_wheel_full: u64,
    /// TIME-WAIT: records created, reused by active opens (`TWRecycled`), connections
    /// destroyed without TIME-WAIT because the table was full (`TCPTimeWaitOverflow`), RSTs
    /// ignored (RFC 1337, `TWKilled` is what Linux would count without it), ACKs sent, SYNs
    /// that reopened a tuple (RFC 6191), records expired.
    pub tw_entered: u64,
    /// TIME-WAIT records reused by an active open (`TWRecycled`).
    pub tw_reused: u64,
    /// Connections closed without TIME-WAIT: the table was full (`TCPTimeWaitOverflow`).
    pub tw_overflow: u64,
    /// RSTs ignored in TIME-WAIT (RFC 1337, `tcp_rfc1337` = 1).
    pub tw_rst_ignored: u64,
    /// TIME-WAIT records a RST ended (`tcp_rfc1337` = 0; Linux `TWKilled`).
    pub tw_killed: u64,
    /// ACKs sent from TIME-WAIT records (retransmitted FINs, out-of-window segments).
    pub tw_acks: u64,
    /// ACKs TIME-WAIT records did not send because of `tcp_invalid_ratelimit`
    /// (`TCPACKSkippedTimeWait`).
    pub tw_acks_skipped: u64,
    /// SYNs that reopened a tuple in TIME-WAIT (RFC 6191).
    pub tw_reopened: u64,
    /// TIME-WAIT records that expired after their 2*MSL.
    pub tw_expired: u64,
    /// Stateless replies dropped because the control queue was full.
    pub control_dropped: u64,
    /// Connection slots taken (active opens, SYN-queue entries, cookie ACKs).
    pub conns_opened: u64,
    /// Connection slots freed. `conns_opened - conns_freed` = slots in use.
    pub conns_freed: u64,
    /// Connections ended because retries, keepalive probes or the user timeout ran out
    /// (`TimedOut`), whether or not the application still held them.
    pub aborted_on_timeout: u64,
    /// Orphaned connections reset because more than `tcp_max_orphans` were held, or because
    /// `tcp_mem` was above HIGH while they held send data (`TCPAbortOnMemory`; orphans.rs).
    pub aborted_on_memory: u64,
    /// Data segments, ACKs and transmit limits of the connections (flow.rs).
    pub flow: FlowStats,
    /// ICMP errors for this endpoint's flows, by outcome (tcp/icmp.rs).
    pub icmp: crate::tcp::icmp::IcmpStats,
}

/// Per-state counts, computed on demand by [`Endpoint::state_counts`] (O(connections)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Listeners.
    pub listen: usize,
    /// Connections in SYN-SENT.
    pub syn_sent: usize,
    /// Connections in SYN-RECEIVED (SYN-queue entries included).
    pub syn_received: usize,
    /// Connections in ESTABLISHED.
    pub established: usize,
    /// Connections in FIN-WAIT-1.
    pub fin_wait1: usize,
    /// Connections in FIN-WAIT-2.
    pub fin_wait2: usize,
    /// Connections in CLOSE-WAIT.
    pub close_wait: usize,
    /// Connections in CLOSING.
    pub closing: usize,
    /// Connections in LAST-ACK.
    pub last_ack: usize,
    /// Full connections in TIME-WAIT (not yet closed by the application) plus table records.
    pub time_wait: usize,
    /// Connections in CLOSED not yet freed (the application still holds them).
    pub closed: usize,
    /// Orphans: connections in the states above that the application has closed and that
    /// are not finished (Linux's orphan count; bounded by `tcp_max_orphans`).
    pub orphans: usize,
}

/// Who a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Passive open in a listener's SYN queue (or accept queue): not yet seen by the app.
    Listener(ListenerId),
    /// The application holds the `ConnId`.
    App,
}

#[derive(Debug)]
struct Slot {
    gen: u32,
    /// Holds the 4-tuple (`Connection::tuple`), the demux key: stored once.
    conn: Connection,
    owner: Owner,
    counters: ConnCounters,
    /// [`Instant::ms_stamp`] of the last data received in order ([`Activity::data_recv`]);
    /// in what was the slot's padding.
    data_recv: u32,
    /// The application called `close` or `abort` (or never will own it).
    closed: bool,
    /// ORPHAN, IN_READY, IN_EVENTS, IN_FALLBACK: one byte, so the slot stays within its bound
    /// (`slot_size_bound`).
    flags: SlotFlags,
    /// This slot's timer-wheel entry (for its earliest deadline, or earlier).
    timer: Option<Armed>,
}

/// A slot's bookkeeping bits.
#[derive(Debug, Clone, Copy, Default)]
struct SlotFlags(u8);

impl SlotFlags {
    /// Counted in `Endpoint::orphans` (closed by the application, not finished; orphans.rs).
    const ORPHAN: u8 = 1;
    /// On the ready list.
    const IN_READY: u8 = 2;
    /// On the application's event list.
    const IN_EVENTS: u8 = 4;
    /// On the `timer_fallback` list (the wheel was full when it armed).
    const IN_FALLBACK: u8 = 8;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.0 |= bit;
        } else {
            self.0 &= !bit;
        }
    }
}

struct ListenerSlot {
    gen: u32,
    addr: IpAddr,
    port: u16,
    /// SYN queue (keyed by the half-open connection's handle: its tuple is in the
    /// connection, not copied into the queue); accept queue of established ones.
    l: Listener<ConnId, ConnId, ConnId>,
    /// An `Incoming` notice is queued.
    notified: bool,
}

/// One shard's TCP endpoint. See the module docs.
pub struct Endpoint {
    cfg: TcpConfig,
    isn: IsnGenerator,
    cookies: SynCookies,
    /// When the SYN-cookie secret is next replaced (set by the first cookie sent).
    cookie_rotate_at: Option<Instant>,
    /// SYN cookies are also answered outside the endpoint (the XDP program, `xdp_syncookies = 1`): the
    /// secrets come from [`Endpoint::set_cookie_secrets`] (no self-rotation) and an ACK to a
    /// listener is tried as a cookie whenever cookies are on.
    xdp_cookies: bool,
    limiter: ChallengeAckLimiter,
    /// The settings every connection of this endpoint shares (built once from `cfg`).
    limits: Arc<Limits>,
    /// Send / receive buffer storage of this endpoint's connections (tcp/bufpool.rs).
    pool: BufPool,
    rng: ChaCha8Rng,
    ephemeral: RangeInclusive<u16>,
    /// RFC 6056 Algorithm 3's `next_ephemeral`: advances past every port an active open tried.
    next_ephemeral: u32,
    /// Prefer source ports whose RSS queue is this worker's (F-Stack `ff_rss_check`).
    rss_pref: Option<(FlowOwner, usize)>,
    conns: Slab<Slot>,
    /// Generation of each slab index ever used (bumped when a slot is freed).
    gens: Vec<u32>,
    /// Keyed with the endpoint's secret seed: remote peers choose these keys.
    /// 4-tuple -> slab index: a table of slab indices hashed (with `demux_hasher`) by their
    /// connection's tuple, which is stored once, in the connection (5 bytes per bucket
    /// instead of 41 for a map holding a copy of the 36-byte tuple).
    demux: HashTable<u32>,
    demux_hasher: KeyedState,
    /// Path MTUs learned from ICMP, by remote address (icmp.rs; Linux's route exceptions).
    pmtu_cache: icmp::PmtuCache,
    listeners: Vec<Option<ListenerSlot>>,
    listener_gens: Vec<u32>,
    listen_map: FxHashMap<(IpAddr, u16), u32>,
    tw: TwTable,
    timers: ConnTimers,
    /// Connections whose timer found the wheel full: polled on every `on_timeout` (never
    /// used while the wheel is sized to `max_connections`; bounded by the connections).
    timer_fallback: Vec<ConnId>,
    ready: VecDeque<ConnId>,
    events: VecDeque<ConnId>,
    incoming: VecDeque<ListenerId>,
    control: VecDeque<(IpAddr, IpAddr, TcpRepr<'static>)>,
    stats: EndpointStats,
    /// Connections with `Slot::orphan` set (`tcp_max_orphans`, orphans.rs).
    orphans: usize,
    /// Per slab index, with [`Endpoint::record_history`] on: each connection's last events
    /// (history.rs, 64 bytes per slot; off by default, then nothing is kept or checked
    /// beyond one branch).
    histories: Option<Vec<ConnHistory>>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.conns.len())
            .field("time_wait", &self.tw.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A shard endpoint. `ephemeral` is this shard's port range for active opens.
    pub fn new(cfg: TcpConfig, secrets: EndpointSecrets, ephemeral: RangeInclusive<u16>) -> Self {
        let slots = cfg.max_connections.min(INITIAL_SLOTS);
        Endpoint {
            // The budget's randomness comes from a secret (the ISN key's upper half), not the
            // port seed: it hides the budget from an off-path attacker (CVE-2016-5696).
            limiter: ChallengeAckLimiter::randomized(
                cfg.challenge_ack_limit,
                u64::from_le_bytes(secrets.isn[8..].try_into().unwrap_or_default()),
            ),
            limits: Arc::new(Limits::new(&cfg)),
            pool: BufPool::with_limits(MemLimits::from_pages(cfg.mem)),
            tw: TwTable::with_seed(secrets.seed),
            timers: ConnTimers::new(cfg.max_connections),
            timer_fallback: Vec::new(),
            isn: IsnGenerator::new(secrets.isn),
            cookies: SynCookies::new(secrets.cookie, DEFAULT_COOKIE_PERIOD),
            cookie_rotate_at: None,
            xdp_cookies: false,
            rng: ChaCha8Rng::seed_from_u64(secrets.seed),
            next_ephemeral: secrets.seed as u32,
            cfg,
            ephemeral,
            rss_pref: None,
            // Address space for the first connections up front: the pages are touched only
            // as slots are used, and the early doubling steps (whose freed copies stay in
            // the process) are skipped; later growth of a buffer this size is an mremap.
            conns: Slab::with_capacity(slots),
            gens: Vec::new(),
            demux: HashTable::new(),
            demux_hasher: keyed_state(secrets.seed),
            pmtu_cache: icmp::PmtuCache::new(secrets.seed.rotate_left(17)),
            listeners: Vec::new(),
            listener_gens: Vec::new(),
            listen_map: FxHashMap::default(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            incoming: VecDeque::new(),
            control: VecDeque::new(),
            stats: EndpointStats::default(),
            orphans: 0,
            histories: None,
        }
    }

    /// The settings this endpoint was made with.
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Counters of this endpoint's buffer pool (cached and lent-out buffer bytes).
    pub fn buffer_pool_stats(&self) -> PoolStats {
        self.pool.stats()
    }

    /// LISTEN on (addr, port), IPv4 or IPv6; `addr` 0.0.0.0 listens on every IPv4 address
    /// of the shard, `::` on every IPv6 one (one family each, as Linux's IPV6_V6ONLY). The
    /// accept queue holds min(backlog, somaxconn) + 1 connections (Linux).
    pub fn listen(
        &mut self,
        addr: impl Into<IpAddr>,
        port: u16,
        backlog: usize,
    ) -> Result<ListenerId, ListenError> {
        let addr = addr.into();
        if port == 0 {
            return Err(ListenError::InvalidPort);
        }
        if self.listen_map.contains_key(&(addr, port)) {
            return Err(ListenError::AddrInUse);
        }
        let index = match self.listeners.iter().position(Option::is_none) {
            Some(i) => i,
            None if self.listeners.len() < MAX_LISTENERS => {
                self.listeners.push(None);
                self.listener_gens.push(0);
                self.listeners.len() - 1
            }
            None => return Err(ListenError::TooManyListeners),
        };
        let gen = self.listener_gens[index];
        self.listeners[index] = Some(ListenerSlot {
            gen,
            addr,
            port,
            l: Listener::new(backlog, &self.cfg),
            notified: false,
        });
        self.listen_map.insert((addr, port), index as u32);
        Ok(ListenerId {
            index: index as u32,
            gen,
        })
    }

    /// Close a listener (Linux `close()` on a listening socket): its half-open and
    /// not-yet-accepted connections are aborted (RST where synchronized) and freed.
    pub fn unlisten(&mut self, now: Instant, l: ListenerId) -> bool {
        let Some(mut ls) = self.listeners.get_mut(l.index as usize).and_then(|o| {
            if o.as_ref().is_some_and(|s| s.gen == l.gen) {
                o.take()
            } else {
                None
            }
        }) else {
            return false;
        };
        self.listen_map.remove(&(ls.addr, ls.port));
        self.listener_gens[l.index as usize] = l.gen.wrapping_add(1);
        let mut children = Vec::with_capacity(ls.l.syn_queue.len() + ls.l.accept_queue.len());
        while let Some((_, id)) = ls.l.syn_queue.pop_oldest() {
            children.push(id);
        }
        while let Some(id) = ls.l.accept() {
            children.push(id);
        }
        for id in children {
            if let Some(s) = self.slot_mut(id) {
                s.conn.abort(now);
                s.closed = true;
                self.touch(id);
            }
        }
        true
    }

    /// A listener's queue depths (SYN queue, accept queue) and counters.
    pub fn listener_info(&self, l: ListenerId) -> Option<(usize, usize, ListenerStats)> {
        let ls = self.listener(l)?;
        Some((ls.l.syn_queue.len(), ls.l.accept_queue.len(), ls.l.stats))
    }

    /// Every listener: (address, port, SYN queue depth, accept queue depth, counters).
    pub fn listeners_info(
        &self,
    ) -> impl Iterator<Item = (IpAddr, u16, usize, usize, ListenerStats)> + '_ {
        self.listeners.iter().flatten().map(|ls| {
            (
                ls.addr,
                ls.port,
                ls.l.syn_queue.len(),
                ls.l.accept_queue.len(),
                ls.l.stats,
            )
        })
    }

    /// Every listener's accept-queue bound (min(backlog, somaxconn)), in the order of
    /// [`Endpoint::listeners_info`].
    pub fn listener_backlogs(&self) -> impl Iterator<Item = usize> + '_ {
        self.listeners
            .iter()
            .flatten()
            .map(|ls| ls.l.accept_queue.max())
    }

    fn listener(&self, l: ListenerId) -> Option<&ListenerSlot> {
        self.listeners
            .get(l.index as usize)?
            .as_ref()
            .filter(|s| s.gen == l.gen)
    }

    fn listener_mut(&mut self, l: ListenerId) -> Option<&mut ListenerSlot> {
        self.listeners
            .get_mut(l.index as usize)?
            .as_mut()
            .filter(|s| s.gen == l.gen)
    }

    /// Active open (RFC 9293 §3.10.1) from `local` to `remote` with an ephemeral port from
    /// this shard's range, chosen by RFC 6056 §3.3.3 (Algorithm 3, "simple hash-based"): the
    /// search starts at F(local, remote, remote port, secret) + `next_ephemeral` and probes
    /// linearly (at most the range's size), skipping ports with a connection to this remote
    /// or a listener; the counter then moves past the ports tried. Successive opens to one
    /// destination so walk the range in order: the next candidate is the port used longest
    /// ago, whose TIME-WAIT (ours, or the peer's) is the oldest, so the search usually ends at
    /// its first probe and a 4-tuple comes back only after the whole range (a random start
    /// per open hit recently used ports and probed long runs of young TIME-WAIT entries,
    /// and reused a 4-tuple still in the peer's TIME-WAIT within the millisecond, see
    /// `TimeWait::syn_may_reopen`). A TIME-WAIT 4-tuple is
    /// reused when `tcp_tw_reuse` = 1 and its timestamps make it safe (Linux
    /// `tcp_twsk_unique`); otherwise skipped. With [`Endpoint::set_rss_preference`], ports
    /// whose RSS hash lands on this worker's queue are tried first (F-Stack `ff_rss_check`).
    /// `local` and `remote` are of one family (IPv4 or IPv6), else `InvalidAddress`; the
    /// ephemeral range is shared by both families.
    pub fn connect(
        &mut self,
        now: Instant,
        local: impl Into<IpAddr>,
        remote: impl Into<SocketAddr>,
    ) -> Result<ConnId, ConnectError> {
        let (local, remote) = (local.into(), remote.into());
        let r = remote.ip();
        if remote.port() == 0
            || !is_unicast(r)
            || !is_unicast(local)
            || local.is_ipv4() != r.is_ipv4()
            || is_v4_mapped(local)
            || is_v4_mapped(r)
        {
            return Err(ConnectError::InvalidAddress);
        }
        if self.conns.len() >= self.cfg.max_connections {
            self.stats.connect_limit_refused += 1;
            return Err(ConnectError::TooManyConnections);
        }
        let (lo, hi) = (*self.ephemeral.start(), *self.ephemeral.end());
        if lo > hi {
            return Err(ConnectError::NoPorts);
        }
        let n = (hi - lo) as u32 + 1;
        let offset = self.isn.port_offset(local, r, remote.port());
        let start = offset.wrapping_add(self.next_ephemeral) % n;
        // Pass 0 takes only ports whose RSS queue is ours (replies on a NIC then need no
        // hand-off); pass 1, any free port of our range. At most 2·n probes.
        let passes = if self.rss_pref.is_some() { 0..2 } else { 1..2 };
        for pass in passes {
            for i in 0..n {
                let port = lo + ((start + i) % n) as u16;
                let Some(tuple) = FourTuple::from_ips(local, port, r, remote.port()) else {
                    return Err(ConnectError::InvalidAddress);
                };
                if pass == 0
                    && self
                        .rss_pref
                        .is_some_and(|(o, me)| o.rss_queue(&tuple) != me)
                {
                    continue;
                }
                if let Some(id) = self.try_port(now, tuple) {
                    self.next_ephemeral = self.next_ephemeral.wrapping_add(i + 1);
                    if pass == 1 && self.rss_pref.is_some() {
                        self.stats.connect_rss_miss += 1;
                    }
                    return Ok(id);
                }
            }
        }
        Err(ConnectError::NoPorts)
    }

    /// Makes `connect` prefer source ports whose flow hash lands on RSS queue `me` of `owner`.
    pub fn set_rss_preference(&mut self, owner: FlowOwner, me: usize) {
        self.rss_pref = Some((owner, me));
    }

    /// Opens `tuple` if it is free (no connection, no listener on the port, TIME-WAIT only
    /// when reusable).
    fn try_port(&mut self, now: Instant, tuple: FourTuple) -> Option<ConnId> {
        let (local, port, r) = (tuple.local_ip(), tuple.local_port, tuple.remote_ip());
        if port == 0
            || self.demux_find(&tuple).is_some()
            || self.listen_map.contains_key(&(local, port))
            || self.listen_map.contains_key(&(unspecified(local), port))
        {
            return None;
        }
        // The TIME-WAIT check first: the hashes below are only worth it for a usable port.
        let reused = match self.tw.get(&tuple, now) {
            Some(rec) => {
                let reuse = self.cfg.timestamps.then_some(()).and_then(|()| {
                    rec.reuse_for_connect(now, self.cfg.tw_reuse, self.cfg.tw_reuse_delay)
                });
                Some(reuse?)
            }
            None => None,
        };
        let (iss, ts_off) = match reused {
            Some(r) => {
                self.tw.remove(&tuple);
                self.stats.tw_reused += 1;
                r
            }
            None => (self.isn.isn(&tuple, now), self.isn.ts_offset(local, r)),
        };
        let conn = Connection::connect(now, &self.limits, tuple, iss, ts_off);
        Some(self.insert(conn, Owner::App))
    }

    /// The oldest established connection of listener `l` (what `accept()` returns); the
    /// application owns it from now on (its pending events follow).
    pub fn accept(&mut self, l: ListenerId) -> Option<ConnId> {
        loop {
            let id = self.listener_mut(l)?.l.accept()?;
            if let Some(s) = self.slot_mut(id) {
                s.owner = Owner::App;
                self.touch(id);
                if let Some(ls) = self.listener_mut(l) {
                    ls.l.stats.accepted += 1;
                }
                return Some(id);
            }
        }
    }

    /// Segments due: stateless replies first, then every connection touched since the last
    /// call (data, ACKs, retransmissions decided by `on_timeout`). `emit(src, dst, segment)`.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        mut emit: impl FnMut(IpAddr, IpAddr, &TcpRepr<'_>),
    ) {
        // Timers are only armed here and in `on_timeout`: start the wheels at the first time.
        self.timers.start(now);
        self.tw.start(now);
        let mut out = 0u64;
        while let Some((src, dst, seg)) = self.control.pop_front() {
            emit(src, dst, &seg);
            out += 1;
        }
        // Bounded: each connection is on the list at most once (`in_ready`).
        while let Some(id) = self.ready.pop_front() {
            let flow = &mut self.stats.flow;
            let Some(s) = self
                .conns
                .get_mut(id.index as usize)
                .filter(|s| s.gen == id.gen)
            else {
                continue;
            };
            s.flags.set(SlotFlags::IN_READY, false);
            let t = s.conn.tuple();
            let (src, dst) = (t.local_ip(), t.remote_ip());
            let max = s.conn.snd_max();
            let counters = &mut s.counters;
            s.conn.poll_transmit(now, |seg| {
                out += 1;
                flow.on_output(seg, max);
                counters.on_output(now, seg, max);
                emit(src, dst, seg)
            });
            if let Some(h) = self
                .histories
                .as_mut()
                .and_then(|h| h.get_mut(id.index as usize))
            {
                h.observe(now, &s.conn, &s.counters);
            }
            flow.on_round(s.conn.tx_limit());
            self.settle(id);
        }
        self.stats.segments_out += out;
    }

    /// The next application event: connection events of app-owned connections, and
    /// `Incoming` notices for listeners.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        if let Some(l) = self.incoming.pop_front() {
            if let Some(ls) = self.listener_mut(l) {
                ls.notified = false;
                return Some(EndpointEvent::Incoming(l));
            }
        }
        while let Some(&id) = self.events.front() {
            let Some(s) = self.slot_mut(id) else {
                self.events.pop_front();
                continue;
            };
            match s.conn.poll_event() {
                Some(ev) => return Some(EndpointEvent::Conn(id, ev)),
                None => {
                    s.flags.set(SlotFlags::IN_EVENTS, false);
                    self.events.pop_front();
                }
            }
        }
        None
    }

    /// Fires every connection timer due at `now` and expires TIME-WAIT records.
    pub fn on_timeout(&mut self, now: Instant) {
        self.timers.start(now);
        self.tw.start(now);
        if !self.timer_fallback.is_empty() {
            for id in std::mem::take(&mut self.timer_fallback) {
                let Some(s) = self.slot_mut(id) else { continue };
                s.flags.set(SlotFlags::IN_FALLBACK, false);
                self.fire_or_arm(id, now);
            }
        }
        while let Some((tid, key)) = self.timers.pop_due(now) {
            let id = ConnId {
                index: key.slot,
                gen: key.gen,
            };
            // Entries of freed slots are cancelled, so the generation check is a backstop.
            let Some(s) = self.slot_mut(id) else { continue };
            if s.timer.is_some_and(|a| a.id == tid) {
                s.timer = None; // spent
            }
            self.fire_or_arm(id, now);
        }
        self.tw.expire(now);
        self.stats.tw_expired = self.tw.expired;
    }

    /// When `on_timeout` should next be called (may be early, never late).
    pub fn next_deadline(&self) -> Option<Instant> {
        let fallback = self
            .timer_fallback
            .iter()
            .filter_map(|&id| self.slot(id)?.conn.next_deadline())
            .min();
        [self.timers.next(), self.tw.next_deadline(), fallback]
            .into_iter()
            .flatten()
            .min()
    }

    /// Queue data (see `Connection::send`). A stale id is `Closed(None)`.
    pub fn send(&mut self, now: Instant, id: ConnId, data: &[u8]) -> Result<usize, SendError> {
        let s = owned(&mut self.conns, id).ok_or(SendError::Closed(None))?;
        let r = s.conn.send(now, data, &mut self.pool);
        self.touch(id);
        r
    }

    /// Read received data (see `Connection::recv`).
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, NoSuchConn> {
        let s = owned(&mut self.conns, id).ok_or(NoSuchConn)?;
        let n = s.conn.recv(buf, &mut self.pool);
        self.touch(id);
        Ok(n)
    }

    /// Half-close: FIN after the buffered data (RFC 9293 §3.10.4).
    pub fn shutdown_write(&mut self, now: Instant, id: ConnId) -> Result<(), NoSuchConn> {
        self.owned_mut(id)
            .ok_or(NoSuchConn)?
            .conn
            .shutdown_write(now);
        self.touch(id);
        Ok(())
    }

    /// Close (RFC 9293 §3.10.4): the handle stays valid for `state`/`recv` until the
    /// connection is finished; then the endpoint frees it (or keeps only a TIME-WAIT record).
    pub fn close(&mut self, now: Instant, id: ConnId) -> Result<(), NoSuchConn> {
        let s = self.owned_mut(id).ok_or(NoSuchConn)?;
        s.conn.close(now);
        s.closed = true;
        self.orphan(now, id);
        self.touch(id);
        Ok(())
    }

    /// Abort (RFC 9293 §3.10.5): RST, CLOSED; the handle becomes stale once the RST is out.
    pub fn abort(&mut self, now: Instant, id: ConnId) -> Result<(), NoSuchConn> {
        let s = self.owned_mut(id).ok_or(NoSuchConn)?;
        s.conn.abort(now);
        s.closed = true;
        self.touch(id);
        Ok(())
    }

    /// Keepalive on/off (tcp_keepalive_*).
    pub fn set_keepalive(&mut self, now: Instant, id: ConnId, on: bool) -> Result<(), NoSuchConn> {
        self.owned_mut(id)
            .ok_or(NoSuchConn)?
            .conn
            .set_keepalive(now, on);
        self.touch(id);
        Ok(())
    }

    /// Nagle off (`true`) or on (TCP_NODELAY); queued data goes out with the next poll.
    pub fn set_nodelay(&mut self, id: ConnId, on: bool) -> Result<(), NoSuchConn> {
        self.owned_mut(id).ok_or(NoSuchConn)?.conn.set_nodelay(on);
        self.touch(id);
        Ok(())
    }

    /// User timeout (TCP_USER_TIMEOUT).
    pub fn set_user_timeout(
        &mut self,
        now: Instant,
        id: ConnId,
        timeout: Option<Duration>,
    ) -> Result<(), NoSuchConn> {
        self.owned_mut(id)
            .ok_or(NoSuchConn)?
            .conn
            .set_user_timeout(now, timeout);
        self.touch(id);
        Ok(())
    }

    /// The connection's state, `None` for a stale handle.
    pub fn state(&self, id: ConnId) -> Option<State> {
        self.slot(id).map(|s| s.conn.state())
    }

    /// What the endpoint holds for `tuple` (`local` = ours), for `xdptcp trace`: the
    /// connection's state, TIME-WAIT for a record of the TIME-WAIT table, `None` for neither
    /// (see [`Endpoint::has_listener`]). One demux lookup, plus one in the TIME-WAIT table.
    pub fn tuple_state(&self, tuple: &FourTuple) -> Option<State> {
        if let Some(i) = self.demux_find(tuple) {
            return self.conns.get(i as usize).map(|s| s.conn.state());
        }
        self.tw.contains(tuple).then_some(State::TimeWait)
    }

    /// A listener would take a SYN for `tuple` (its address and port, or the wildcard).
    pub fn has_listener(&self, tuple: &FourTuple) -> bool {
        self.listener_for(tuple).is_some()
    }

    /// A snapshot of a connection: state, 4-tuple, sequence numbers, negotiated options,
    /// RTT, congestion window, queues, timers (see [`ConnInfo`]).
    pub fn info(&self, id: ConnId) -> Option<ConnInfo> {
        self.slot(id).map(|s| {
            ConnInfo::of(
                &s.conn,
                s.counters,
                s.data_recv,
                self.history_of(id.index as usize),
            )
        })
    }

    /// The connection's 4-tuple (`local` = our side).
    pub fn tuple(&self, id: ConnId) -> Option<FourTuple> {
        self.slot(id).map(|s| s.conn.tuple())
    }

    /// Bytes `recv` can return now (0 for a stale handle).
    pub fn recv_available(&self, id: ConnId) -> usize {
        self.slot(id).map_or(0, |s| s.conn.recv_available())
    }

    /// Bytes `send` would take now (0 for a stale handle).
    pub fn send_capacity(&self, id: ConnId) -> usize {
        self.slot(id).map_or(0, |s| s.conn.send_capacity())
    }

    /// The error a connection ended with.
    pub fn error(&self, id: ConnId) -> Option<ConnError> {
        self.slot(id).and_then(|s| s.conn.error())
    }

    /// The endpoint's counters (cumulative since it was made).
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections held (all states except TIME-WAIT records).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// TIME-WAIT records held.
    pub fn time_wait_count(&self) -> usize {
        self.tw.len()
    }

    /// Bytes the TIME-WAIT table holds (records, map and expiry FIFO, by capacity): divided
    /// by `time_wait_count`, the memory per TIME-WAIT entry (twtable.rs: 75-103 bytes).
    pub fn time_wait_bytes(&self) -> usize {
        self.tw.bytes()
    }

    /// Per-state counts, on demand: O(connections + listeners).
    pub fn state_counts(&self) -> StateCounts {
        let mut c = StateCounts {
            listen: self.listeners.iter().flatten().count(),
            time_wait: self.tw.len(),
            orphans: self.orphans,
            ..StateCounts::default()
        };
        for (_, s) in self.conns.iter() {
            let n = match s.conn.state() {
                State::SynSent => &mut c.syn_sent,
                State::SynReceived => &mut c.syn_received,
                State::Established => &mut c.established,
                State::FinWait1 => &mut c.fin_wait1,
                State::FinWait2 => &mut c.fin_wait2,
                State::CloseWait => &mut c.close_wait,
                State::Closing => &mut c.closing,
                State::LastAck => &mut c.last_ack,
                State::TimeWait => &mut c.time_wait,
                State::Closed => &mut c.closed,
            };
            *n += 1;
        }
        c
    }

    /// Connections from slab index `cursor` on, at most `max` of them (and at most
    /// `4 * max + 64` slots looked at, so a sparse slab bounds the work too): the listing of
    /// `xdptcp ss`, taken a slice per worker iteration. Returns the index to continue from,
    /// `None` at the end. A connection that stays open is seen exactly once per walk; one
    /// opened or closed during the walk may or may not be (as Linux's `ss`).
    pub fn infos_from(
        &self,
        cursor: usize,
        max: usize,
        mut f: impl FnMut(ConnInfo),
    ) -> Option<usize> {
        let (mut i, mut taken) = (cursor, 0);
        let len = self.gens.len();
        let end = cursor.saturating_add(4 * max + 64);
        while i < len && taken < max && i < end {
            if let Some(s) = self.conns.get(i) {
                f(ConnInfo::of(
                    &s.conn,
                    s.counters,
                    s.data_recv,
                    self.history_of(i),
                ));
                taken += 1;
            }
            i += 1;
        }
        (i < len).then_some(i)
    }

    /// TIME-WAIT records from `cursor` on (as [`Endpoint::infos_from`]): each as (4-tuple,
    /// time left of its 2*MSL).
    pub fn time_wait_from(
        &self,
        now: Instant,
        cursor: usize,
        max: usize,
        f: impl FnMut(FourTuple, Duration),
    ) -> Option<usize> {
        self.tw.each_from(now, cursor, max, f)
    }

    /// Keeps (or stops keeping) each connection's last events, shown in
    /// [`ConnInfo::history`]: 64 bytes per connection slot while on. Connections already
    /// open start their history at their next event.
    pub fn record_history(&mut self, on: bool) {
        match (on, self.histories.is_some()) {
            (true, false) => self.histories = Some(vec![ConnHistory::default(); self.gens.len()]),
            (false, true) => self.histories = None,
            _ => {}
        }
    }

    fn history_of(&self, index: usize) -> ConnHistory {
        self.histories
            .as_ref()
            .and_then(|h| h.get(index))
            .copied()
            .unwrap_or_default()
    }

    // ---- internals ----

    fn slot(&self, id: ConnId) -> Option<&Slot> {
        self.conns
            .get(id.index as usize)
            .filter(|s| s.gen == id.gen)
    }

    fn slot_mut(&mut self, id: ConnId) -> Option<&mut Slot> {
        self.conns
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
    }

    /// A slot the application owns (listener-owned connections are not yet visible).
    fn owned_mut(&mut self, id: ConnId) -> Option<&mut Slot> {
        self.slot_mut(id).filter(|s| s.owner == Owner::App)
    }

    fn insert(&mut self, conn: Connection, owner: Owner) -> ConnId {
        let tuple = conn.tuple();
        let entry = self.conns.vacant_entry();
        let index = entry.key();
        if self.gens.len() <= index {
            self.gens.resize(index + 1, 0);
        }
        let gen = self.gens[index];
        if let Some(h) = self.histories.as_mut() {
            if h.len() <= index {
                h.resize(index + 1, ConnHistory::default());
            }
            h[index] = ConnHistory::default();
        }
        // The activity stamps start at the connection's creation, as its ACK stamp does.
        let born = conn.ack_stamp();
        entry.insert(Slot {
            gen,
            conn,
            owner,
            counters: ConnCounters {
                data_sent: born,
                ..ConnCounters::default()
            },
            data_recv: born,
            closed: false,
            flags: SlotFlags::default(),
            timer: None,
        });
        let id = ConnId {
            index: index as u32,
            gen,
        };
        // A new incarnation of a tuple replaces the old one's entry (RFC 6191 reopening).
        let h = self.demux_hasher.hash_one(tuple);
        let conns = &self.conns;
        if let Ok(e) = self.demux.find_entry(h, |&i| {
            i as usize != index
                && conns
                    .get(i as usize)
                    .is_some_and(|s| s.conn.tuple() == tuple)
        }) {
            e.remove();
        }
        let hasher = &self.demux_hasher;
        self.demux.insert_unique(h, index as u32, |&i| {
            conns
                .get(i as usize)
                .map_or(0, |s| hasher.hash_one(s.conn.tuple()))
        });
        self.stats.conns_opened += 1;
        self.touch(id);
        id
    }

    /// Puts a connection on the ready list (output may be due) and, if the application owns
    /// it, on the event list.
    fn touch(&mut self, id: ConnId) {
        let Some(s) = self.slot_mut(id) else { return };
        let (ready, events) = (
            !s.flags.has(SlotFlags::IN_READY),
            !s.flags.has(SlotFlags::IN_EVENTS) && s.owner == Owner::App,
        );
        s.flags.set(SlotFlags::IN_READY, true);
        if events {
            s.flags.set(SlotFlags::IN_EVENTS, true);
        }
        if ready {
            self.ready.push_back(id);
        }
        if events {
            self.events.push_back(id);
        }
    }

    /// A connection's wheel entry fired (or it is on the fallback list): run its timers if
    /// due, otherwise (the deadline moved later) arm again.
    fn fire_or_arm(&mut self, id: ConnId, now: Instant) {
        let Some(s) = self
            .conns
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
        else {
            return;
        };
        match s.conn.next_deadline() {
            Some(d) if d <= now => {
                let h = self
                    .histories
                    .as_mut()
                    .and_then(|h| h.get_mut(id.index as usize));
                let due = |t| s.conn.timer(t).is_some_and(|at| at <= now);
                let (probe, rto) = (due(Timer::Persist), due(Timer::Retransmit));
                // Linux tcp_write_timeout / tcp_probe_timer of an orphan ->
                // tcp_out_of_resources -> tcp_check_oom: out of memory, reset (orphans.rs).
                let oom = s.flags.has(SlotFlags::ORPHAN)
                    && ((rto && s.conn.flight_size() > 0) || (probe && s.conn.unsent() > 0))
                    && orphans::out_of_memory(&s.conn, &self.pool);
                if oom {
                    s.conn.abort(now);
                    self.stats.aborted_on_memory += 1;
                } else {
                    let mss = s.conn.send_mss();
                    s.conn.on_timeout(now);
                    // tcp_mtu_probing: a timeout that lowered the MSS is a black hole detected.
                    if rto && s.conn.send_mss() < mss {
                        self.stats.icmp.black_hole_mss_lowered += 1;
                    }
                }
                if let Some(h) = h {
                    if probe && !oom {
                        h.window_probe(now);
                    }
                    if rto && !oom {
                        h.rto(now, s.conn.rto_count());
                    }
                    h.observe(now, &s.conn, &s.counters);
                }
                self.touch(id); // settle re-arms after output
            }
            Some(_) => self.arm(id),
            None => {}
        }
    }

    fn arm(&mut self, id: ConnId) {
        let Some(s) = self.conns.get_mut(id.index as usize) else {
            return;
        };
        let Some(d) = s.conn.next_deadline() else {
            return;
        };
        let key = TimerKey {
            slot: id.index,
            gen: id.gen,
        };
        if self.timers.arm(key, d, &mut s.timer).is_err() {
            // Unreachable: at most one live entry per connection and the wheel holds
            // `max_connections`. Never panic on the packet path: poll this one instead.
            debug_assert!(false, "connection timer wheel full");
            self.stats.timer_wheel_full += 1;
            if !s.flags.has(SlotFlags::IN_FALLBACK) {
                s.flags.set(SlotFlags::IN_FALLBACK, true);
                self.timer_fallback.push(id);
            }
        }
    }

    /// After output: re-arm the timer, turn a closed TIME-WAIT connection into a record, free
    /// a finished one nobody will look at again.
    fn settle(&mut self, id: ConnId) {
        let Some(s) = self.slot(id) else { return };
        let unowned =
            s.closed || matches!(s.owner, Owner::Listener(_)) && !self.in_accept_queue(id);
        if unowned {
            if let Some(rec) = s.conn.time_wait_record() {
                let tuple = s.conn.tuple();
                if self.tw.len() < self.cfg.max_tw_buckets && self.tw.insert(tuple, rec) {
                    self.stats.tw_entered += 1;
                } else {
                    // Linux tcp_time_wait(): "TCPTimeWaitOverflow", no TIME-WAIT at all.
                    self.stats.tw_overflow += 1;
                }
                self.free(id);
                return;
            }
            if s.conn.is_finished() {
                self.free(id);
                return;
            }
        }
        self.arm(id);
    }

    fn in_accept_queue(&self, id: ConnId) -> bool {
        // A connection is only `Owner::Listener` in the accept queue once it is synchronized.
        self.slot(id).is_some_and(|s| {
            s.conn.state() != State::SynReceived && s.conn.state() != State::Closed
        })
    }

    fn free(&mut self, id: ConnId) {
        let Some(s) = self
            .conns
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)
        else {
            return;
        };
        self.timers.cancel(&mut s.timer);
        // Counted here, not from events: an orphaned connection (closed by the app) that
        // runs out of retries reports to nobody (Linux: TCPAbortOnTimeout).
        if s.conn.timed_out() {
            self.stats.aborted_on_timeout += 1;
        }
        if s.flags.has(SlotFlags::ORPHAN) {
            self.orphans -= 1;
        }
        let (tuple, owner) = (s.conn.tuple(), s.owner);
        if let Owner::Listener(l) = owner {
            if let Some(ls) = self.listener_mut(l) {
                ls.l.syn_queue.remove(&id);
            }
        }
        if let Ok(e) = self
            .demux
            .find_entry(self.demux_hasher.hash_one(tuple), |&i| i == id.index)
        {
            e.remove();
        }
        self.conns
            .remove(id.index as usize)
            .conn
            .release_buffers(&mut self.pool);
        self.gens[id.index as usize] = self.gens[id.index as usize].wrapping_add(1);
        self.stats.conns_freed += 1;
    }

    /// The slab index of the connection of `tuple`.
    fn demux_find(&self, tuple: &FourTuple) -> Option<u32> {
        let conns = &self.conns;
        self.demux
            .find(self.demux_hasher.hash_one(tuple), |&i| {
                conns
                    .get(i as usize)
                    .is_some_and(|s| s.conn.tuple() == *tuple)
            })
            .copied()
    }

    /// Queues a stateless reply (bounded).
    fn control(&mut self, src: IpAddr, dst: IpAddr, seg: TcpRepr<'static>) {
        if self.control.len() >= CONTROL_QUEUE_MAX {
            self.stats.control_dropped += 1;
            return;
        }
        self.control.push_back((src, dst, seg));
    }
}

fn is_unicast(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:0:0/96`): never on the wire (RFC 4038 §4.2), and
/// what [`FourTuple`] uses to store IPv4, so never taken as an IPv6 address.
fn is_v4_mapped(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.to_ipv4_mapped().is_some())
}

/// The wildcard address of `a`'s family.
fn unspecified(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Our MSS for a connection of `tuple`'s family: `tcp.mss` is the IPv4 figure (MTU - 40);
/// IPv6's header is 20 bytes longer (MTU - 60, RFC 8200 §5 / RFC 9293 §3.7.1).
pub(crate) fn family_mss(mss: u16, tuple: &FourTuple) -> u16 {
    if tuple.is_ipv6() {
        mss.saturating_sub(20)
    } else {
        mss
    }
}

/// `Endpoint::owned_mut` on the slab alone, so the caller may borrow the pool beside it.
fn owned(conns: &mut Slab<Slot>, id: ConnId) -> Option<&mut Slot> {
    conns
        .get_mut(id.index as usize)
        .filter(|s| s.gen == id.gen && s.owner == Owner::App)
}
