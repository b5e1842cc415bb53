//! Prometheus metrics: `xdptcp serve --metrics ADDR:PORT`.
//!
//! [`render`] writes the workers' published snapshots (the same source as `xdptcp stat`) in
//! the Prometheus text exposition format 0.0.4: every family has one `# HELP` and one
//! `# TYPE` line, counters end in `_total`, times are in seconds. Each worker metric appears
//! once per worker with a `worker="N"` label and once in total, without a `worker` label
//! (select the total with `{worker=""}`; summing over every series counts twice).
//!
//! [`MetricsServer`] answers `GET /metrics` over HTTP/1.1 on a kernel socket
//! (`std::net::TcpListener`) on a thread of its own, never on a worker: one request at a
//! time, [`MAX_REQUEST`] bytes of request head at most, [`IO_TIMEOUT`] per read or write and
//! [`REQUEST_DEADLINE`] per request, `Connection: close`. Any other method or path gets 404.
//! Rendering copies each worker's latest snapshot (a short lock the worker takes once per
//! 100 ms to publish), so a scrape costs the workers nothing.
//!
//! The address must not be one the XDP program steers to the stack: not a listening port and
//! not in the ephemeral range on the stack's address (127.0.0.1 or another port is fine).

use std::fmt::Write as _;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cookies::XdpCookieStats;
use crate::neigh::route::RouteStats;
use crate::worker::{ListenerSnapshot, StatsHandle, WorkerSnapshot};

/// The largest request head read (request line and headers); longer gets 431.
pub const MAX_REQUEST: usize = 8192;
/// Timeout of each read and write on a scrape connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(1);
/// A request must be read and its response written within this time (a slow client cannot
/// hold the thread longer).
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The accept loop's sleep when no client waits (also how fast it notices the stop).
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// The `Content-Type` of the text format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the metrics name besides the snapshots (the `xdptcp_info` labels).
#[derive(Debug, Clone)]
pub struct Meta {
    /// The interface the stack runs on.
    pub ifname: String,
    /// The stack's address (as [`crate::control::report::StatMeta::addr`]).
    pub addr: std::net::IpAddr,
    /// SYN cookies in XDP (`xdp_syncookies = 1`): the stack's counters.
    pub xdp: Option<Arc<XdpCookieStats>>,
    /// The route refresher's counters.
    pub routes: Option<Arc<RouteStats>>,
}

/// The stack's own counters (not per worker), by their `xdptcp stat` name: the metric, its
/// kind and help. One series each, without a `worker` label.
#[rustfmt::skip]
const PROCESS: &[(&str, &str, Kind, &str)] = &[
    ("route_tables", "xdptcp_route_tables_published_total", Kind::Counter,
     "Route tables published to the workers (a dump of the kernel's main table; the first at start)."),
    ("routes", "xdptcp_routes", Kind::Gauge, "Routes in the table the workers use."),
    ("route_events", "xdptcp_route_events_total", Kind::Counter,
     "Route-change notifications read (RTNLGRP_IPV4_ROUTE)."),
    ("route_events_lost", "xdptcp_route_events_lost_total", Kind::Counter,
     "Times route notifications were lost (ENOBUFS); a dump catches up."),
    ("route_recv_errors", "xdptcp_route_recv_errors_total", Kind::Counter,
     "Route notification reads that failed (other than EAGAIN and ENOBUFS)."),
    ("route_dump_errors", "xdptcp_route_dump_errors_total", Kind::Counter,
     "Route dumps that failed (the previous table stays in use)."),
    ("xdp_cookie_syn_acks", "xdptcp_xdp_cookie_syn_acks_total", Kind::Counter,
     "SYNs answered with a SYN cookie by the XDP program (xdp_syncookies = 1)."),
    ("xdp_cookie_slow", "xdptcp_xdp_cookie_slow_total", Kind::Counter,
     "SYNs in cookie mode the XDP program left to the workers (headers it does not handle)."),
    ("xdp_cookie_mode_flips", "xdptcp_xdp_cookie_mode_flips_total", Kind::Counter,
     "Listener cookie-flag flips in the XDP program for tcp_syncookies = 1 (on and off)."),
    ("xdp_cookie_rotations", "xdptcp_xdp_cookie_rotations_total", Kind::Counter,
     "SYN-cookie secret rotations written to the XDP program."),
];

/// The process counters present in `meta`, as (stat name, value).
fn process_counters(meta: &Meta) -> Vec<(&'static str, u64)> {
    let mut v = Vec::new();
    if let Some(r) = &meta.routes {
        v.extend(r.counters());
    }
    if let Some(x) = &meta.xdp {
        v.extend(x.counters());
    }
    v
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// How a raw value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    /// As the integer it is.
    One,
    /// Nanoseconds written as seconds.
    Seconds,
}

type Get = fn(&WorkerSnapshot) -> u64;

/// A family of worker metrics with one series per value of `label`.
struct Family {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    label: &'static str,
    series: &'static [(&'static str, Get)],
}

/// A family of one unlabelled series: (name, kind, unit, help, getter).
type Single = (&'static str, Kind, Unit, &'static str, Get);

const C: Kind = Kind::Counter;
const G: Kind = Kind::Gauge;
const N: Unit = Unit::One;
const S: Unit = Unit::Seconds;

fn u(x: usize) -> u64 {
    x as u64
}

/// Labelled families, in output order (before [`SINGLE`]).
#[rustfmt::skip]
const LABELLED: &[Family] = &[
    Family {
        name: "xdptcp_connections",
        kind: G,
        help: "Connections by TCP state (time_wait includes the TIME-WAIT table's records).",
        label: "state",
        series: &[
            ("listen", |s| u(s.states.listen)),
            ("syn_sent", |s| u(s.states.syn_sent)),
            ("syn_received", |s| u(s.states.syn_received)),
            ("established", |s| u(s.states.established)),
            ("fin_wait1", |s| u(s.states.fin_wait1)),
            ("fin_wait2", |s| u(s.states.fin_wait2)),
            ("close_wait", |s| u(s.states.close_wait)),
            ("closing", |s| u(s.states.closing)),
            ("last_ack", |s| u(s.states.last_ack)),
            ("time_wait", |s| u(s.states.time_wait)),
            ("closed", |s| u(s.states.closed)),
        ],
    },
    Family {
        name: "xdptcp_drops_total",
        kind: C,
        help: "Segments, frames and connections dropped, by reason (the xdptcp stat counter name).",
        label: "reason",
        series: &[
            ("syn_dropped", |s| s.endpoint.syn_dropped),
            ("listen_overflows", |s| s.endpoint.listen_overflows),
            ("conn_limit_drops", |s| s.endpoint.conn_limit_drops),
            ("tw_overflow", |s| s.endpoint.tw_overflow),
            ("malformed_in", |s| s.endpoint.malformed_in),
            ("martian_src_in", |s| s.endpoint.martian_src_in),
            ("bad_flags_in", |s| s.endpoint.bad_flags_in),
            ("no_listener", |s| s.endpoint.no_listener),
            ("control_dropped", |s| s.endpoint.control_dropped),
            ("rx_checksum", |s| s.iface.rx_checksum),
            ("rx_truncated", |s| s.iface.rx_truncated),
            ("rx_malformed", |s| s.iface.rx_malformed),
            ("rx_unsupported", |s| s.iface.rx_unsupported),
            ("rx_not_ours", |s| s.iface.rx_not_ours),
            ("tx_full", |s| s.iface.tx_full),
            ("tx_too_long", |s| s.iface.tx_too_long),
            ("tx_no_route", |s| s.iface.tx_no_route),
            ("tx_neigh_dropped", |s| s.iface.tx_neigh_dropped),
            ("handoff_dropped", |s| s.iface.handoff_dropped),
            ("dev_rx_dropped", |s| s.device.rx_dropped),
        ],
    },
    Family {
        name: "xdptcp_resets_sent_total",
        kind: C,
        help: "RSTs sent statelessly, by reason.",
        label: "reason",
        series: &[
            ("closed_port", |s| s.endpoint.rst_closed),
            ("listen_bad_ack", |s| s.endpoint.rst_listen_bad_ack),
            ("accept_overflow", |s| s.endpoint.rst_accept_overflow),
        ],
    },
    Family {
        name: "xdptcp_tcp_transmit_rounds_total",
        kind: C,
        help: "Transmit rounds of connections with data queued or in flight, by what ended them.",
        label: "limit",
        series: &[
            ("app", |s| s.endpoint.flow.tx_app_limited),
            ("sndbuf", |s| s.endpoint.flow.tx_sndbuf_limited),
            ("rwnd", |s| s.endpoint.flow.tx_rwnd_limited),
            ("cwnd", |s| s.endpoint.flow.tx_cwnd_limited),
            ("nagle_sws", |s| s.endpoint.flow.tx_small_held),
        ],
    },
    Family {
        name: "xdptcp_icmp_errors_total",
        kind: C,
        help: "ICMP errors for the stack's flows, by what they did (Linux tcp_v4_err).",
        label: "outcome",
        series: &[
            ("no_connection", |s| s.endpoint.icmp.no_connection),
            ("out_of_window", |s| s.endpoint.icmp.out_of_window),
            ("pmtu_lowered", |s| s.endpoint.icmp.pmtu_lowered),
            ("pmtu_unchanged", |s| s.endpoint.icmp.pmtu_unchanged),
            ("fatal", |s| s.endpoint.icmp.fatal),
            ("soft", |s| s.endpoint.icmp.soft),
        ],
    },
    Family {
        name: "xdptcp_worker_iterations_total",
        kind: C,
        help: "Worker loop iterations, by whether they did work.",
        label: "kind",
        series: &[
            ("busy", |s| s.looping.busy_iterations),
            ("idle", |s| s.looping.idle_iterations),
        ],
    },
    Family {
        name: "xdptcp_neighbour_events_total",
        kind: C,
        help: "Neighbour (next-hop MAC) cache events, by kind.",
        label: "event",
        series: &[
            ("held", |s| s.neigh.held),
            ("released", |s| s.neigh.released),
            ("dropped_overflow", |s| s.neigh.dropped_overflow),
            ("dropped_unresolved", |s| s.neigh.dropped_unresolved),
            ("rejected_table_full", |s| s.neigh.rejected_table_full),
            ("resolved", |s| s.neigh.resolved),
            ("solicits", |s| s.neigh.solicits),
            ("refreshed", |s| s.neigh.refreshed),
            ("mac_changed", |s| s.neigh.mac_changed),
            ("expired", |s| s.neigh.expired),
            ("evicted", |s| s.neigh.evicted),
            ("learned", |s| s.neigh.learned),
            ("learn_conflicts", |s| s.neigh.learn_conflicts),
            ("evicted_pending", |s| s.neigh.evicted_pending),
        ],
    },
];

/// Families of one unlabelled series, in output order (after [`LABELLED`]).
#[rustfmt::skip]
const SINGLE: &[Single] = &[
    // Connections.
    ("xdptcp_connections_opened_total", C, N,
     "Connections created: passive opens (at the SYN) and active opens.",
     |s| s.endpoint.conns_opened),
    ("xdptcp_connections_accepted_total", C, N,
     "Connections the application accepted from a listener's accept queue.",
     |s| s.listeners().iter().map(|l| l.stats.accepted).sum()), // the first 16 listeners
    ("xdptcp_connections_freed_total", C, N,
     "Connections whose state was freed.",
     |s| s.endpoint.conns_freed),
    ("xdptcp_connections_timed_out_total", C, N,
     "Connections ended because retries, keepalive probes or the user timeout ran out.",
     |s| s.endpoint.aborted_on_timeout),
    ("xdptcp_connections_aborted_on_memory_total", C, N,
     "Orphaned connections reset: tcp_max_orphans reached, or send data queued above tcp_mem HIGH (TCPAbortOnMemory).",
     |s| s.endpoint.aborted_on_memory),
    ("xdptcp_orphans", G, N,
     "Orphans: connections closed by the application and not finished (bounded by tcp_max_orphans).",
     |s| u(s.states.orphans)),
    ("xdptcp_connect_limit_refused_total", C, N,
     "Active opens refused because max_connections was reached.",
     |s| s.endpoint.connect_limit_refused),
    ("xdptcp_connect_rss_miss_total", C, N,
     "Active opens that found no free port hashing to their own RSS queue.",
     |s| s.endpoint.connect_rss_miss),
    // SYN cookies.
    ("xdptcp_syncookies_sent_total", C, N, "SYN-ACKs sent with a SYN cookie.",
     |s| s.endpoint.cookies_sent),
    ("xdptcp_syncookies_accepted_total", C, N, "ACKs that carried a valid SYN cookie.",
     |s| s.endpoint.cookies_accepted),
    ("xdptcp_syncookies_rejected_total", C, N, "ACKs tried as a SYN cookie that failed.",
     |s| s.endpoint.cookies_rejected),
    ("xdptcp_syncookie_secret_rotations_total", C, N, "SYN-cookie secret rotations.",
     |s| s.endpoint.cookie_rotations),
    // RFC 5961.
    ("xdptcp_challenge_acks_sent_total", C, N, "Challenge ACKs sent (RFC 5961).",
     |s| s.endpoint.challenge_acks_sent),
    ("xdptcp_challenge_acks_suppressed_total", C, N,
     "Challenge ACKs suppressed by the RFC 5961 section 7 rate limit.",
     |s| s.endpoint.challenge_acks_suppressed),
    ("xdptcp_acks_skipped_total", C, N,
     "ACKs not sent by connections for their per-connection tcp_invalid_ratelimit.",
     |s| s.endpoint.acks_skipped),
    // TIME-WAIT.
    ("xdptcp_time_wait_entered_total", C, N, "TIME-WAIT records created.",
     |s| s.endpoint.tw_entered),
    ("xdptcp_time_wait_reused_total", C, N, "TIME-WAIT records reused by active opens.",
     |s| s.endpoint.tw_reused),
    ("xdptcp_time_wait_reopened_total", C, N,
     "SYNs that reopened a tuple in TIME-WAIT (RFC 6191).",
     |s| s.endpoint.tw_reopened),
    ("xdptcp_time_wait_acks_sent_total", C, N, "ACKs sent from TIME-WAIT.",
     |s| s.endpoint.tw_acks),
    ("xdptcp_time_wait_expired_total", C, N, "TIME-WAIT records expired.",
     |s| s.endpoint.tw_expired),
    ("xdptcp_time_wait_rsts_ignored_total", C, N, "RSTs ignored in TIME-WAIT (RFC 1337).",
     |s| s.endpoint.tw_rst_ignored),
    ("xdptcp_time_wait_killed_total", C, N,
     "TIME-WAIT records a RST ended (tcp_rfc1337 = 0; Linux TWKilled).",
     |s| s.endpoint.tw_killed),
    ("xdptcp_time_wait_acks_skipped_total", C, N,
     "ACKs TIME-WAIT did not send for tcp_invalid_ratelimit.",
     |s| s.endpoint.tw_acks_skipped),
    // TCP segments.
    ("xdptcp_tcp_segments_received_total", C, N, "TCP segments processed by the endpoint.",
     |s| s.endpoint.segments_in),
    ("xdptcp_tcp_segments_sent_total", C, N, "TCP segments emitted by the endpoint.",
     |s| s.endpoint.segments_out),
    ("xdptcp_tcp_data_segments_received_total", C, N,
     "Segments received on connections with payload.",
     |s| s.endpoint.flow.data_segs_in),
    ("xdptcp_tcp_data_received_bytes_total", C, N,
     "Payload bytes of the data segments received.",
     |s| s.endpoint.flow.data_bytes_in),
    ("xdptcp_tcp_data_segments_sent_total", C, N, "Segments sent with payload.",
     |s| s.endpoint.flow.data_segs_out),
    ("xdptcp_tcp_data_sent_bytes_total", C, N, "Payload bytes of the data segments sent.",
     |s| s.endpoint.flow.data_bytes_out),
    ("xdptcp_tcp_retransmitted_segments_total", C, N,
     "Data segments sent below SND.MAX (retransmissions of any kind).",
     |s| s.endpoint.flow.retrans_segs),
    ("xdptcp_tcp_pure_acks_received_total", C, N,
     "Segments received without payload, SYN, FIN or RST.",
     |s| s.endpoint.flow.pure_acks_in),
    ("xdptcp_tcp_pure_acks_sent_total", C, N, "Segments sent without payload, SYN, FIN or RST.",
     |s| s.endpoint.flow.pure_acks_out),
    ("xdptcp_timer_wheel_full_total", C, N,
     "Connection timers that found the timer wheel full.",
     |s| s.endpoint.timer_wheel_full),
    // Interface and hand-offs.
    ("xdptcp_rx_frames_total", C, N, "Frames the interface received from the device.",
     |s| s.iface.rx_frames),
    ("xdptcp_rx_segments_total", C, N, "Parsed TCP segments handed to the endpoint.",
     |s| s.iface.rx_segments),
    ("xdptcp_tx_segments_total", C, N, "Segments emitted into device frames.",
     |s| s.iface.tx_segments),
    ("xdptcp_rx_segments6_total", C, N, "TCP/IPv6 segments handed to the endpoint (in rx_segments too).",
     |s| s.iface.rx_segments6),
    ("xdptcp_tx_segments6_total", C, N, "TCP/IPv6 segments emitted into device frames (in tx_segments too).",
     |s| s.iface.tx_segments6),
    ("xdptcp_rx_misdirected_segments_total", C, N,
     "Segments whose flow another worker owns.",
     |s| s.iface.rx_misdirected),
    ("xdptcp_handoff_sent_segments_total", C, N,
     "Misdirected segments handed to their owning worker.",
     |s| s.iface.handoff_sent),
    ("xdptcp_handoff_received_segments_total", C, N,
     "Segments other workers handed to this one.",
     |s| s.iface.handoff_received),
    ("xdptcp_neighbour_netlink_errors_total", C, N,
     "Netlink requests for the kernel's neighbour table that failed (read as not yet known).",
     |s| s.iface.neigh_netlink_errors),
    ("xdptcp_tx_neighbour_held_total", C, N,
     "Segments held for an unresolved neighbour.",
     |s| s.iface.tx_held),
    ("xdptcp_tx_neighbour_released_total", C, N,
     "Held segments sent after the neighbour resolved.",
     |s| s.iface.tx_released),
    ("xdptcp_app_events_total", C, N, "Application events delivered.",
     |s| s.iface.app_events),
    ("xdptcp_timer_runs_total", C, N, "Timer runs of the endpoint.",
     |s| s.iface.timer_runs),
    // Device (AF_XDP socket).
    ("xdptcp_device_rx_frames_total", C, N, "Frames received by the device.",
     |s| s.device.rx_frames),
    ("xdptcp_device_rx_bytes_total", C, N, "Bytes received by the device.",
     |s| s.device.rx_bytes),
    ("xdptcp_device_tx_frames_total", C, N, "Frames transmitted by the device.",
     |s| s.device.tx_frames),
    ("xdptcp_device_tx_bytes_total", C, N, "Bytes transmitted by the device.",
     |s| s.device.tx_bytes),
    ("xdptcp_device_tx_full_total", C, N,
     "Frames the device could not queue (TX ring or frame pool full).",
     |s| s.device.tx_full),
    // The worker loop.
    ("xdptcp_worker_busy_seconds_total", C, S,
     "Time of loop iterations that did work.",
     |s| s.looping.busy_ns),
    ("xdptcp_worker_idle_seconds_total", C, S,
     "Time of loop iterations that found no work.",
     |s| s.looping.idle_ns),
    ("xdptcp_worker_sleeps_total", C, N, "Sleeps or yields of the adaptive idle mode.",
     |s| s.looping.sleeps),
    ("xdptcp_worker_pinned", G, N, "1 if the worker thread is pinned to its core.",
     |s| u64::from(s.pinned)),
    // Memory.
    ("xdptcp_time_wait_table_bytes", G, N, "Bytes of the TIME-WAIT table.",
     |s| u(s.time_wait_bytes)),
    ("xdptcp_buffer_lent_bytes", G, N,
     "Capacity of the connection buffers lent out by the worker's buffer pool.",
     |s| s.buffers.out_bytes),
    ("xdptcp_buffer_pool_cached_bytes", G, N,
     "Capacity of the buffers cached in the worker's buffer pool.",
     |s| s.buffers.cached_bytes),
    ("xdptcp_buffer_pool_hits_total", C, N, "Buffer requests served from the pool's cache.",
     |s| s.buffers.hits),
    ("xdptcp_buffer_pool_allocated_total", C, N,
     "Buffer requests the cache could not serve (allocated).",
     |s| s.buffers.allocated),
    ("xdptcp_buffer_pool_released_total", C, N,
     "Buffers given back that did not fit the pool's bound (freed).",
     |s| s.buffers.released),
    ("xdptcp_tcp_ofo_bytes", G, N,
     "Bytes charged for out-of-order data held (chunk capacity plus overhead).",
     |s| s.buffers.ooo_bytes),
    ("xdptcp_tcp_memory_pressure", G, N,
     "1 while the worker is under tcp_mem memory pressure.",
     |s| s.buffers.mem_pressure),
    ("xdptcp_tcp_memory_pressures_total", C, N,
     "Times the worker entered tcp_mem memory pressure (Linux TCPMemoryPressures).",
     |s| s.buffers.mem_pressure_entered),
    ("xdptcp_tcp_ofo_pruned_total", C, N,
     "Out-of-order queue prunes for memory (Linux OfoPruned).",
     |s| s.buffers.ofo_pruned),
    ("xdptcp_tcp_ofo_pruned_bytes_total", C, N,
     "Out-of-order bytes dropped by prunes.",
     |s| s.buffers.ofo_pruned_bytes),
    ("xdptcp_tcp_rcvq_mem_drops_total", C, N,
     "In-order data segments dropped for lack of memory (Linux TCPRcvQDrop).",
     |s| s.buffers.rcvq_mem_drops),
    ("xdptcp_tcp_ofo_mem_drops_total", C, N,
     "Out-of-order data segments not held for lack of memory (Linux TCPOFODrop).",
     |s| s.buffers.ofo_mem_drops),
    ("xdptcp_tcp_send_mem_limited_total", C, N,
     "send calls cut short by tcp_mem.",
     |s| s.buffers.snd_mem_limited),
    // ICMP errors and path MTU.
    ("xdptcp_icmp_errors_received_total", C, N,
     "ICMP errors about the stack's TCP segments handed to the endpoint.",
     |s| s.iface.rx_icmp),
    ("xdptcp_icmp6_parameter_problems_received_total", C, N,
     "ICMPv6 Parameter Problems (RFC 4443 3.4) about the stack's TCP segments.",
     |s| s.iface.rx_icmp6_param_problem),
    ("xdptcp_icmp_parameter_problems_received_total", C, N,
     "ICMPv4 Parameter Problems (RFC 792 type 12) about the stack's TCP segments.",
     |s| s.iface.rx_icmp_param_problem),
    ("xdptcp_tcp_mtu_black_holes_total", C, N,
     "MSS reductions by black-hole detection after repeated timeouts (tcp_mtu_probing).",
     |s| s.endpoint.icmp.black_hole_mss_lowered),
];

/// A listener family: (name, kind, help, getter). Labels `addr` and `port`.
type ListenerFamily = (
    &'static str,
    Kind,
    &'static str,
    fn(&ListenerSnapshot) -> u64,
);

#[rustfmt::skip]
const LISTENER: &[ListenerFamily] = &[
    ("xdptcp_listener_syn_queue", G, "Handshakes in the listener's SYN queue.",
     |l| u(l.syn_queue)),
    ("xdptcp_listener_accept_queue", G,
     "Established connections waiting in the listener's accept queue.",
     |l| u(l.accept_queue)),
    ("xdptcp_listener_backlog", G, "The accept queue's bound: min(backlog, somaxconn).",
     |l| u(l.backlog)),
    ("xdptcp_listener_accepted_total", C, "Connections the application accepted.",
     |l| l.stats.accepted),
    ("xdptcp_listener_overflows_total", C,
     "SYNs or handshake ACKs that found the accept queue full (ListenOverflows).",
     |l| l.stats.listen_overflows),
    ("xdptcp_listener_drops_total", C,
     "SYNs or handshake ACKs the listener dropped for any reason (ListenDrops).",
     |l| l.stats.listen_drops),
    ("xdptcp_listener_syn_queue_full_drops_total", C,
     "SYNs dropped because the SYN queue was full and cookies were off (TCPReqQFullDrop).",
     |l| l.stats.syn_queue_full_drops),
    ("xdptcp_listener_syn_queue_full_cookies_total", C,
     "SYNs answered with a cookie because of the SYN queue or tcp_syncookies=2 (TCPReqQFullDoCookies).",
     |l| l.stats.syn_queue_full_cookies),
    ("xdptcp_listener_syncookies_sent_total", C, "SYN-ACKs the listener sent with a cookie.",
     |l| l.stats.cookies_sent),
    ("xdptcp_listener_overflow_resets_total", C,
     "Handshakes reset because of tcp_abort_on_overflow (EmbryonicRsts).",
     |l| l.stats.overflow_resets),
];

/// The exposition (text format 0.0.4) of `snaps`, one per worker in worker order.
pub fn render(meta: &Meta, snaps: &[WorkerSnapshot]) -> String {
    let mut out = String::with_capacity(48 * 1024);
    header(
        &mut out,
        "xdptcp_info",
        G,
        "The serving stack's interface, address and version (value 1).",
    );
    let _ = writeln!(
        out,
        "xdptcp_info{{iface=\"{}\",addr=\"{}\",version=\"{}\"}} 1",
        escape_label(&meta.ifname),
        meta.addr,
        env!("CARGO_PKG_VERSION")
    );
    header(
        &mut out,
        "xdptcp_workers",
        G,
        "Worker threads (one per NIC queue).",
    );
    let _ = writeln!(out, "xdptcp_workers {}", snaps.len());
    for f in LABELLED {
        header(&mut out, f.name, f.kind, f.help);
        for (value, get) in f.series {
            let label = format!("{}=\"{}\"", f.label, escape_label(value));
            worker_series(&mut out, f.name, &label, snaps, *get, Unit::One);
        }
    }
    for &(name, kind, unit, help, get) in SINGLE {
        header(&mut out, name, kind, help);
        worker_series(&mut out, name, "", snaps, get, unit);
    }
    listeners(&mut out, snaps);
    for (key, v) in process_counters(meta) {
        if let Some(&(_, name, kind, help)) = PROCESS.iter().find(|p| p.0 == key) {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {v}");
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
}

/// One line per worker (`worker="N"` first) and the total (no `worker` label).
fn worker_series(
    out: &mut String,
    name: &str,
    label: &str,
    snaps: &[WorkerSnapshot],
    get: Get,
    unit: Unit,
) {
    let sep = if label.is_empty() { "" } else { "," };
    let mut total = 0u64;
    for (w, s) in snaps.iter().enumerate() {
        let v = get(s);
        total = total.saturating_add(v);
        let _ = write!(out, "{name}{{worker=\"{w}\"{sep}{label}}} ");
        value(out, v, unit);
    }
    if label.is_empty() {
        let _ = write!(out, "{name} ");
    } else {
        let _ = write!(out, "{name}{{{label}}} ");
    }
    value(out, total, unit);
}

/// Per listener (`addr`, `port`): per worker and the total over the workers.
fn listeners(out: &mut String, snaps: &[WorkerSnapshot]) {
    let mut keys: Vec<(std::net::IpAddr, u16)> = Vec::new();
    for l in snaps.iter().flat_map(WorkerSnapshot::listeners) {
        if !keys.contains(&(l.addr, l.port)) {
            keys.push((l.addr, l.port));
        }
    }
    for &(name, kind, help, get) in LISTENER {
        header(out, name, kind, help);
        for &(addr, port) in &keys {
            let mut total = 0u64;
            for (w, s) in snaps.iter().enumerate() {
                for l in s.listeners() {
                    if (l.addr, l.port) == (addr, port) {
                        let v = get(l);
                        total = total.saturating_add(v);
                        let _ = writeln!(
                            out,
                            "{name}{{worker=\"{w}\",addr=\"{addr}\",port=\"{port}\"}} {v}"
                        );
                    }
                }
            }
            let _ = writeln!(out, "{name}{{addr=\"{addr}\",port=\"{port}\"}} {total}");
        }
    }
}

/// Writes `v` and the line's newline.
fn value(out: &mut String, v: u64, unit: Unit) {
    match unit {
        Unit::One => {
            let _ = writeln!(out, "{v}");
        }
        Unit::Seconds => {
            let (s, ns) = (v / 1_000_000_000, v % 1_000_000_000);
            if ns == 0 {
                let _ = writeln!(out, "{s}");
            } else {
                let frac = format!("{ns:09}");
                let _ = writeln!(out, "{s}.{}", frac.trim_end_matches('0'));
            }
        }
    }
}

/// A label value: `\`, `"` and newline escaped (text format 0.0.4).
pub fn escape_label(s: &str) -> String {
    let mut e = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => e.push_str("\\\\"),
            '"' => e.push_str("\\\""),
            '\n' => e.push_str("\\n"),
            c => e.push(c),
        }
    }
    e
}

/// A `# HELP` text: `\` and newline escaped.
pub fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A `--metrics` value that is not `ADDR:PORT` with a non-zero port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --metrics {0:?}: expected ADDR:PORT with a port 1-65535, e.g. 127.0.0.1:9100")]
pub struct BadMetricsAddr(pub String);

/// Parses `--metrics ADDR:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, BadMetricsAddr> {
    s.parse::<SocketAddr>()
        .ok()
        .filter(|a| a.port() != 0)
        .ok_or_else(|| BadMetricsAddr(s.to_string()))
}

/// The metrics listener (bound, not yet answering).
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` (fails when the port is in use or the address is not local).
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        Ok(MetricsServer { listener, addr })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers scrapes on a thread of its own until the returned guard is dropped.
    pub fn spawn(self, meta: Meta, handles: Vec<StatsHandle>) -> io::Result<MetricsThread> {
        let quit = Arc::new(AtomicBool::new(false));
        let q = quit.clone();
        let thread = std::thread::Builder::new()
            .name("xdptcp-metrics".into())
            .spawn(move || {
                self.serve(&q, || {
                    let snaps: Vec<WorkerSnapshot> = handles.iter().map(StatsHandle::get).collect();
                    render(&meta, &snaps)
                })
            })?;
        Ok(MetricsThread {
            quit,
            thread: Some(thread),
        })
    }

    /// The accept loop: one client at a time until `quit`.
    fn serve(&self, quit: &AtomicBool, render: impl Fn() -> String) {
        while !quit.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((s, _)) => {
                    let _ = answer(s, &render);
                }
                // WouldBlock, or a transient accept error (EMFILE, ECONNABORTED).
                Err(_) => std::thread::sleep(ACCEPT_POLL),
            }
        }
    }
}

/// The running metrics thread; stops and joins it on drop.
#[derive(Debug)]
pub struct MetricsThread {
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for MetricsThread {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Why a request head could not be read.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    /// EOF, timeout or an I/O error: nothing to answer.
    Gone,
}

/// Reads up to the blank line that ends the request head, within [`MAX_REQUEST`] bytes and
/// [`REQUEST_DEADLINE`].
fn read_head(s: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, HeadError> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HeadError::Gone);
        }
        s.set_read_timeout(Some(left.min(IO_TIMEOUT)))
            .map_err(|_| HeadError::Gone)?;
        let n = match s.read(&mut buf) {
            Ok(0) => return Err(HeadError::Gone),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Err(HeadError::Gone),
        };
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_REQUEST {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Where the head ends (after `\r\n\r\n` or `\n\n`), if it does.
fn head_end(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The response to a request head: status line, content type and body.
fn respond(head: &[u8], render: impl FnOnce() -> String) -> (&'static str, &'static str, String) {
    const TEXT: &str = "text/plain; charset=utf-8";
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("")
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    match (method, target, version, parts.next()) {
        (Some(m), Some(t), Some(v), None) if v.starts_with("HTTP/1.") && !m.is_empty() => {
            let path = t.split('?').next().unwrap_or("");
            if m == "GET" && path == "/metrics" {
                ("200 OK", CONTENT_TYPE, render())
            } else {
                (
                    "404 Not Found",
                    TEXT,
                    "only GET /metrics is served here\n".into(),
                )
            }
        }
        _ => ("400 Bad Request", TEXT, "bad request\n".into()),
    }
}

/// Serves one connection: one request, one response, close.
fn answer(mut s: TcpStream, render: impl FnOnce() -> String) -> io::Result<()> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    s.set_nonblocking(false)?;
    let (status, ctype, body) = match read_head(&mut s, deadline) {
        Ok(head) => respond(&head, render),
        Err(HeadError::TooLarge) => (
            "431 Request Header Fields Too Large",
            "text/plain; charset=utf-8",
            "request head too large\n".into(),
        ),
        Err(HeadError::Gone) => return Ok(()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write_by(&mut s, head.as_bytes(), deadline)?;
    write_by(&mut s, body.as_bytes(), deadline)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    Ok(())
}

/// `write_all` that gives up at `deadline` (a client that reads slowly cannot hold the
/// thread: each write waits at most [`IO_TIMEOUT`] and the whole response `deadline`).
fn write_by(s: &mut TcpStream, mut buf: &[u8], deadline: Instant) -> io::Result<()> {
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        s.set_write_timeout(Some(left.min(IO_TIMEOUT)))?;
        match s.write(buf) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::ListenerSnapshot;
    use std::net::Ipv4Addr;
    use xdptcp_harness::prom;

    fn meta() -> Meta {
        Meta {
            ifname: "xts-1".into(),
            addr: Ipv4Addr::new(198, 18, 0, 1).into(),
            xdp: None,
            routes: None,
        }
    }

    /// Two workers: established 3 + 4, one listener on port 7 on each, some counters.
    fn snaps() -> Vec<WorkerSnapshot> {
        let mut a = WorkerSnapshot::default();
        a.states.established = 3;
        a.states.listen = 1;
        a.endpoint.conns_opened = 10;
        a.endpoint.rst_closed = 2;
        a.iface.rx_checksum = 1;
        a.looping.busy_ns = 1_500_000_000;
        a.looping.idle_ns = 250;
        a.listeners[0] = ListenerSnapshot {
            port: 7,
            syn_queue: 2,
            accept_queue: 1,
            backlog: 1024,
            ..ListenerSnapshot::default()
        };
        a.listeners[0].stats.accepted = 6;
        a.listener_count = 1;
        let mut b = WorkerSnapshot::default();
        b.states.established = 4;
        b.states.listen = 1;
        b.endpoint.conns_opened = 5;
        b.looping.busy_ns = 2_000_000_000;
        b.listeners[0] = ListenerSnapshot {
            port: 7,
            backlog: 1024,
            ..ListenerSnapshot::default()
        };
        b.listeners[0].stats.accepted = 4;
        b.listener_count = 1;
        vec![a, b]
    }

    /// The lines of family `name`: its HELP, TYPE and samples, in order.
    fn block(text: &str, name: &str) -> Vec<String> {
        let help = format!("# HELP {name} ");
        let ty = format!("# TYPE {name} ");
        let sample = |l: &str| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        };
        text.lines()
            .filter(|l| l.starts_with(&help) || l.starts_with(&ty) || sample(l))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn exact_lines_for_a_fixed_snapshot() {
        let r = render(&meta(), &snaps());
        assert!(r.starts_with(
            "# HELP xdptcp_info The serving stack's interface, address and version (value 1).\n\
             # TYPE xdptcp_info gauge\n\
             xdptcp_info{iface=\"xts-1\",addr=\"198.18.0.1\",version=\"0.1.0\"} 1\n\
             # HELP xdptcp_workers Worker threads (one per NIC queue).\n\
             # TYPE xdptcp_workers gauge\n\
             xdptcp_workers 2\n"
        ));
        let states = block(&r, "xdptcp_connections");
        assert_eq!(states.len(), 2 + 11 * 3);
        assert_eq!(
            &states[..2],
            [
                "# HELP xdptcp_connections Connections by TCP state (time_wait includes the \
                 TIME-WAIT table's records).",
                "# TYPE xdptcp_connections gauge"
            ]
        );
        assert_eq!(
            &states[2..5],
            [
                "xdptcp_connections{worker=\"0\",state=\"listen\"} 1",
                "xdptcp_connections{worker=\"1\",state=\"listen\"} 1",
                "xdptcp_connections{state=\"listen\"} 2",
            ]
        );
        assert_eq!(
            &states[11..14],
            [
                "xdptcp_connections{worker=\"0\",state=\"established\"} 3",
                "xdptcp_connections{worker=\"1\",state=\"established\"} 4",
                "xdptcp_connections{state=\"established\"} 7",
            ]
        );
        assert_eq!(
            block(&r, "xdptcp_connections_accepted_total")[2..],
            [
                "xdptcp_connections_accepted_total{worker=\"0\"} 6",
                "xdptcp_connections_accepted_total{worker=\"1\"} 4",
                "xdptcp_connections_accepted_total 10",
            ]
        );
        assert_eq!(
            block(&r, "xdptcp_worker_busy_seconds_total"),
            [
                "# HELP xdptcp_worker_busy_seconds_total Time of loop iterations that did work.",
                "# TYPE xdptcp_worker_busy_seconds_total counter",
                "xdptcp_worker_busy_seconds_total{worker=\"0\"} 1.5",
                "xdptcp_worker_busy_seconds_total{worker=\"1\"} 2",
                "xdptcp_worker_busy_seconds_total 3.5",
            ]
        );
        assert_eq!(
            block(&r, "xdptcp_worker_idle_seconds_total")[2..],
            [
                "xdptcp_worker_idle_seconds_total{worker=\"0\"} 0.00000025",
                "xdptcp_worker_idle_seconds_total{worker=\"1\"} 0",
                "xdptcp_worker_idle_seconds_total 0.00000025",
            ]
        );
        let drops = block(&r, "xdptcp_drops_total");
        assert!(drops.contains(&"xdptcp_drops_total{worker=\"0\",reason=\"rx_checksum\"} 1".into()));
        assert!(drops.contains(&"xdptcp_drops_total{reason=\"rx_checksum\"} 1".into()));
        assert!(r.contains("\nxdptcp_resets_sent_total{reason=\"closed_port\"} 2\n"));
        assert_eq!(
            block(&r, "xdptcp_listener_backlog"),
            [
                "# HELP xdptcp_listener_backlog The accept queue's bound: min(backlog, somaxconn).",
                "# TYPE xdptcp_listener_backlog gauge",
                "xdptcp_listener_backlog{worker=\"0\",addr=\"0.0.0.0\",port=\"7\"} 1024",
                "xdptcp_listener_backlog{worker=\"1\",addr=\"0.0.0.0\",port=\"7\"} 1024",
                "xdptcp_listener_backlog{addr=\"0.0.0.0\",port=\"7\"} 2048",
            ]
        );
        assert_eq!(
            block(&r, "xdptcp_listener_syn_queue")[2..],
            [
                "xdptcp_listener_syn_queue{worker=\"0\",addr=\"0.0.0.0\",port=\"7\"} 2",
                "xdptcp_listener_syn_queue{worker=\"1\",addr=\"0.0.0.0\",port=\"7\"} 0",
                "xdptcp_listener_syn_queue{addr=\"0.0.0.0\",port=\"7\"} 2",
            ]
        );
    }

    /// A snapshot whose every `xdptcp stat` field holds its own value (1000 + 7 i; the loop
    /// times in ns are large enough to show fractions of a second).
    fn distinct() -> WorkerSnapshot {
        let mut s = WorkerSnapshot::default();
        s.states.listen = 1000;
        s.states.syn_sent = 1007;
        s.states.syn_received = 1014;
        s.states.established = 1021;
        s.states.fin_wait1 = 1028;
        s.states.fin_wait2 = 1035;
        s.states.close_wait = 1042;
        s.states.closing = 1049;
        s.states.last_ack = 1056;
        s.states.time_wait = 1063;
        s.states.closed = 1070;
        s.endpoint.conns_opened = 1077;
        s.endpoint.conns_freed = 1084;
        s.endpoint.cookies_sent = 1091;
        s.endpoint.cookies_accepted = 1098;
        s.endpoint.cookies_rejected = 1105;
        s.endpoint.rst_closed = 1112;
        s.endpoint.rst_listen_bad_ack = 1119;
        s.endpoint.rst_accept_overflow = 1126;
        s.endpoint.challenge_acks_sent = 1133;
        s.endpoint.syn_dropped = 1140;
        s.endpoint.listen_overflows = 1147;
        s.endpoint.conn_limit_drops = 1154;
        s.endpoint.tw_overflow = 1161;
        s.endpoint.tw_entered = 1168;
        s.endpoint.tw_reopened = 1175;
        s.endpoint.tw_acks = 1182;
        s.endpoint.tw_reused = 1189;
        s.endpoint.tw_expired = 1196;
        s.endpoint.tw_rst_ignored = 1203;
        s.endpoint.tw_killed = 1206;
        s.endpoint.malformed_in = 1210;
        s.endpoint.martian_src_in = 1511;
        s.endpoint.bad_flags_in = 1518;
        s.endpoint.acks_skipped = 1525;
        s.endpoint.tw_acks_skipped = 1532;
        s.endpoint.no_listener = 1217;
        s.endpoint.control_dropped = 1224;
        s.iface.rx_checksum = 1231;
        s.iface.rx_truncated = 1238;
        s.iface.rx_malformed = 1245;
        s.iface.rx_unsupported = 1252;
        s.iface.rx_not_ours = 1259;
        s.iface.tx_full = 1266;
        s.iface.tx_no_route = 1273;
        s.iface.tx_neigh_dropped = 1280;
        s.iface.rx_misdirected = 1287;
        s.iface.handoff_sent = 1294;
        s.iface.handoff_received = 1301;
        s.iface.handoff_dropped = 1308;
        s.endpoint.connect_rss_miss = 1315;
        s.iface.rx_frames = 1322;
        s.iface.tx_segments = 1329;
        s.device.rx_frames = 1336;
        s.device.tx_frames = 1343;
        s.device.rx_dropped = 1350;
        s.endpoint.flow.data_segs_in = 1357;
        s.endpoint.flow.data_bytes_in = 1364;
        s.endpoint.flow.pure_acks_in = 1371;
        s.endpoint.flow.data_segs_out = 1378;
        s.endpoint.flow.data_bytes_out = 1385;
        s.endpoint.flow.retrans_segs = 1392;
        s.endpoint.flow.pure_acks_out = 1399;
        s.endpoint.flow.tx_app_limited = 1406;
        s.endpoint.flow.tx_sndbuf_limited = 1413;
        s.endpoint.flow.tx_rwnd_limited = 1420;
        s.endpoint.flow.tx_cwnd_limited = 1427;
        s.endpoint.flow.tx_small_held = 1434;
        s.looping.busy_ns = 1441004323;
        s.looping.idle_ns = 1448004344;
        s.time_wait_bytes = 1455;
        s.buffers.out_bytes = 1462;
        s.buffers.cached_bytes = 1469;
        s.buffers.allocated = 1476;
        s.buffers.released = 1483;
        s.buffers.ooo_bytes = 1490;
        s.buffers.mem_pressure = 1;
        s.buffers.mem_pressure_entered = 1497;
        s.buffers.ofo_pruned = 1504;
        s.buffers.ofo_pruned_bytes = 1511;
        s.buffers.rcvq_mem_drops = 1518;
        s.buffers.ofo_mem_drops = 1525;
        s.buffers.snd_mem_limited = 1532;
        s.states.orphans = 1539;
        s.endpoint.aborted_on_memory = 1546;
        s.iface.neigh_netlink_errors = 1553;
        s.iface.rx_icmp = 1560;
        s.iface.rx_icmp6_param_problem = 1563;
        s.iface.rx_icmp_param_problem = 1564;
        s.endpoint.icmp.no_connection = 1567;
        s.endpoint.icmp.out_of_window = 1574;
        s.endpoint.icmp.pmtu_lowered = 1581;
        s.endpoint.icmp.pmtu_unchanged = 1588;
        s.endpoint.icmp.fatal = 1595;
        s.endpoint.icmp.soft = 1602;
        s.endpoint.icmp.black_hole_mss_lowered = 1609;
        s
    }

    /// (stat counter, metric, label of the metric's series).
    type StatMetric = (
        &'static str,
        &'static str,
        Option<(&'static str, &'static str)>,
    );

    /// Every `xdptcp stat` counter: the metric (and label) that exports it, for worker 0.
    const FROM_STAT: &[StatMetric] = &[
        ("listen", "xdptcp_connections", Some(("state", "listen"))),
        (
            "syn_sent",
            "xdptcp_connections",
            Some(("state", "syn_sent")),
        ),
        (
            "syn_received",
            "xdptcp_connections",
            Some(("state", "syn_received")),
        ),
        (
            "established",
            "xdptcp_connections",
            Some(("state", "established")),
        ),
        (
            "fin_wait1",
            "xdptcp_connections",
            Some(("state", "fin_wait1")),
        ),
        (
            "fin_wait2",
            "xdptcp_connections",
            Some(("state", "fin_wait2")),
        ),
        (
            "close_wait",
            "xdptcp_connections",
            Some(("state", "close_wait")),
        ),
        ("closing", "xdptcp_connections", Some(("state", "closing"))),
        (
            "last_ack",
            "xdptcp_connections",
            Some(("state", "last_ack")),
        ),
        (
            "time_wait",
            "xdptcp_connections",
            Some(("state", "time_wait")),
        ),
        ("closed", "xdptcp_connections", Some(("state", "closed"))),
        ("orphans", "xdptcp_orphans", None),
        ("conns_opened", "xdptcp_connections_opened_total", None),
        ("conns_freed", "xdptcp_connections_freed_total", None),
        ("cookies_sent", "xdptcp_syncookies_sent_total", None),
        ("cookies_accepted", "xdptcp_syncookies_accepted_total", None),
        ("cookies_rejected", "xdptcp_syncookies_rejected_total", None),
        (
            "rst_closed",
            "xdptcp_resets_sent_total",
            Some(("reason", "closed_port")),
        ),
        (
            "rst_listen_bad_ack",
            "xdptcp_resets_sent_total",
            Some(("reason", "listen_bad_ack")),
        ),
        (
            "rst_accept_overflow",
            "xdptcp_resets_sent_total",
            Some(("reason", "accept_overflow")),
        ),
        (
            "challenge_acks_sent",
            "xdptcp_challenge_acks_sent_total",
            None,
        ),
        ("acks_skipped", "xdptcp_acks_skipped_total", None),
        (
            "aborted_on_memory",
            "xdptcp_connections_aborted_on_memory_total",
            None,
        ),
        (
            "syn_dropped",
            "xdptcp_drops_total",
            Some(("reason", "syn_dropped")),
        ),
        (
            "listen_overflows",
            "xdptcp_drops_total",
            Some(("reason", "listen_overflows")),
        ),
        (
            "conn_limit_drops",
            "xdptcp_drops_total",
            Some(("reason", "conn_limit_drops")),
        ),
        (
            "tw_overflow",
            "xdptcp_drops_total",
            Some(("reason", "tw_overflow")),
        ),
        ("tw_entered", "xdptcp_time_wait_entered_total", None),
        ("tw_reopened", "xdptcp_time_wait_reopened_total", None),
        ("tw_acks", "xdptcp_time_wait_acks_sent_total", None),
        ("tw_reused", "xdptcp_time_wait_reused_total", None),
        ("tw_expired", "xdptcp_time_wait_expired_total", None),
        (
            "tw_rst_ignored",
            "xdptcp_time_wait_rsts_ignored_total",
            None,
        ),
        ("tw_killed", "xdptcp_time_wait_killed_total", None),
        (
            "tw_acks_skipped",
            "xdptcp_time_wait_acks_skipped_total",
            None,
        ),
        (
            "malformed_in",
            "xdptcp_drops_total",
            Some(("reason", "malformed_in")),
        ),
        (
            "martian_src_in",
            "xdptcp_drops_total",
            Some(("reason", "martian_src_in")),
        ),
        (
            "bad_flags_in",
            "xdptcp_drops_total",
            Some(("reason", "bad_flags_in")),
        ),
        (
            "no_listener",
            "xdptcp_drops_total",
            Some(("reason", "no_listener")),
        ),
        (
            "control_dropped",
            "xdptcp_drops_total",
            Some(("reason", "control_dropped")),
        ),
        (
            "rx_checksum",
            "xdptcp_drops_total",
            Some(("reason", "rx_checksum")),
        ),
        (
            "rx_truncated",
            "xdptcp_drops_total",
            Some(("reason", "rx_truncated")),
        ),
        (
            "rx_malformed",
            "xdptcp_drops_total",
            Some(("reason", "rx_malformed")),
        ),
        (
            "rx_unsupported",
            "xdptcp_drops_total",
            Some(("reason", "rx_unsupported")),
        ),
        (
            "rx_not_ours",
            "xdptcp_drops_total",
            Some(("reason", "rx_not_ours")),
        ),
        ("tx_full", "xdptcp_drops_total", Some(("reason", "tx_full"))),
        (
            "tx_no_route",
            "xdptcp_drops_total",
            Some(("reason", "tx_no_route")),
        ),
        (
            "tx_neigh_dropped",
            "xdptcp_drops_total",
            Some(("reason", "tx_neigh_dropped")),
        ),
        (
            "neigh_netlink_errors",
            "xdptcp_neighbour_netlink_errors_total",
            None,
        ),
        (
            "rx_misdirected",
            "xdptcp_rx_misdirected_segments_total",
            None,
        ),
        ("handoff_sent", "xdptcp_handoff_sent_segments_total", None),
        (
            "handoff_received",
            "xdptcp_handoff_received_segments_total",
            None,
        ),
        (
            "handoff_dropped",
            "xdptcp_drops_total",
            Some(("reason", "handoff_dropped")),
        ),
        ("connect_rss_miss", "xdptcp_connect_rss_miss_total", None),
        ("rx_frames", "xdptcp_rx_frames_total", None),
        ("tx_segments", "xdptcp_tx_segments_total", None),
        ("rx_segments6", "xdptcp_rx_segments6_total", None),
        ("tx_segments6", "xdptcp_tx_segments6_total", None),
        ("dev_rx_frames", "xdptcp_device_rx_frames_total", None),
        ("dev_tx_frames", "xdptcp_device_tx_frames_total", None),
        (
            "dev_rx_dropped",
            "xdptcp_drops_total",
            Some(("reason", "dev_rx_dropped")),
        ),
        (
            "data_segs_in",
            "xdptcp_tcp_data_segments_received_total",
            None,
        ),
        (
            "data_bytes_in",
            "xdptcp_tcp_data_received_bytes_total",
            None,
        ),
        ("pure_acks_in", "xdptcp_tcp_pure_acks_received_total", None),
        ("data_segs_out", "xdptcp_tcp_data_segments_sent_total", None),
        ("data_bytes_out", "xdptcp_tcp_data_sent_bytes_total", None),
        (
            "retrans_segs",
            "xdptcp_tcp_retransmitted_segments_total",
            None,
        ),
        ("pure_acks_out", "xdptcp_tcp_pure_acks_sent_total", None),
        (
            "tx_app_limited",
            "xdptcp_tcp_transmit_rounds_total",
            Some(("limit", "app")),
        ),
        (
            "tx_sndbuf_limited",
            "xdptcp_tcp_transmit_rounds_total",
            Some(("limit", "sndbuf")),
        ),
        (
            "tx_rwnd_limited",
            "xdptcp_tcp_transmit_rounds_total",
            Some(("limit", "rwnd")),
        ),
        (
            "tx_cwnd_limited",
            "xdptcp_tcp_transmit_rounds_total",
            Some(("limit", "cwnd")),
        ),
        (
            "tx_small_held",
            "xdptcp_tcp_transmit_rounds_total",
            Some(("limit", "nagle_sws")),
        ),
        ("busy_ns", "xdptcp_worker_busy_seconds_total", None),
        ("idle_ns", "xdptcp_worker_idle_seconds_total", None),
        ("time_wait_bytes", "xdptcp_time_wait_table_bytes", None),
        ("buf_out_bytes", "xdptcp_buffer_lent_bytes", None),
        ("buf_pool_bytes", "xdptcp_buffer_pool_cached_bytes", None),
        (
            "buf_pool_allocated",
            "xdptcp_buffer_pool_allocated_total",
            None,
        ),
        (
            "buf_pool_released",
            "xdptcp_buffer_pool_released_total",
            None,
        ),
        ("mem_ooo_bytes", "xdptcp_tcp_ofo_bytes", None),
        ("mem_pressure", "xdptcp_tcp_memory_pressure", None),
        (
            "mem_pressure_entered",
            "xdptcp_tcp_memory_pressures_total",
            None,
        ),
        ("ofo_pruned", "xdptcp_tcp_ofo_pruned_total", None),
        (
            "ofo_pruned_bytes",
            "xdptcp_tcp_ofo_pruned_bytes_total",
            None,
        ),
        ("rcvq_mem_drops", "xdptcp_tcp_rcvq_mem_drops_total", None),
        ("ofo_mem_drops", "xdptcp_tcp_ofo_mem_drops_total", None),
        ("snd_mem_limited", "xdptcp_tcp_send_mem_limited_total", None),
        ("icmp_rx", "xdptcp_icmp_errors_received_total", None),
        (
            "icmp6_param_problem",
            "xdptcp_icmp6_parameter_problems_received_total",
            None,
        ),
        (
            "icmp_param_problem",
            "xdptcp_icmp_parameter_problems_received_total",
            None,
        ),
        (
            "icmp_no_conn",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "no_connection")),
        ),
        (
            "icmp_out_of_window",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "out_of_window")),
        ),
        (
            "icmp_pmtu_lowered",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "pmtu_lowered")),
        ),
        (
            "icmp_pmtu_unchanged",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "pmtu_unchanged")),
        ),
        (
            "icmp_fatal",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "fatal")),
        ),
        (
            "icmp_soft",
            "xdptcp_icmp_errors_total",
            Some(("outcome", "soft")),
        ),
        ("mtu_black_holes", "xdptcp_tcp_mtu_black_holes_total", None),
    ];

    /// The stack's own counters (routes, XDP cookies), not per worker: every one `xdptcp stat`
    /// shows is exported as one series with its value.
    #[test]
    fn every_process_counter_is_exported() {
        use std::sync::atomic::Ordering::Relaxed;
        let r = Arc::new(RouteStats::default());
        let x = Arc::new(XdpCookieStats::default());
        let all = [
            &r.tables,
            &r.routes,
            &r.events,
            &r.events_lost,
            &r.recv_errors,
            &r.dump_errors,
            &x.syn_acks,
            &x.slow,
            &x.mode_flips,
            &x.rotations,
        ];
        for (i, a) in all.iter().enumerate() {
            a.store(2000 + 7 * i as u64, Relaxed);
        }
        let m = Meta {
            xdp: Some(x.clone()),
            routes: Some(r.clone()),
            ..meta()
        };
        let stat = process_counters(&m);
        assert_eq!(
            stat.len(),
            PROCESS.len(),
            "a process counter without a metric"
        );
        let e = prom::parse_strict(&render(&m, &snaps())).unwrap_or_else(|m| panic!("{m}"));
        let sm = crate::control::report::StatMeta {
            ifname: m.ifname.clone(),
            addr: m.addr,
            pid: 1,
            xdp: Some(x),
            routes: Some(r),
        };
        let text = crate::control::report::report_text(&sm, &snaps());
        for (key, v) in stat {
            let (_, name, ..) = PROCESS.iter().find(|p| p.0 == key).expect("mapped");
            assert_eq!(e.get(name, &[]), Some(v as f64), "{key} -> {name}");
            assert!(
                text.contains(&format!(" {key} {v}")),
                "{key} in xdptcp stat"
            );
        }
        // Without them (a stack of tests, tools): no such family at all.
        assert!(!render(&meta(), &snaps()).contains("xdptcp_route"));
    }

    /// The metrics follow `xdptcp stat`: every stat counter is exported with its value (a
    /// stat counter added without a metric fails here).
    #[test]
    fn every_stat_counter_is_exported() {
        let s = distinct();
        let stat = crate::control::report::counters(&s);
        let names: Vec<&str> = stat.iter().map(|(k, _)| *k).collect();
        let mapped: Vec<&str> = FROM_STAT.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(
            names, mapped,
            "a stat counter without a metric (or the order changed)"
        );
        let e = prom::parse_strict(&render(&meta(), &[s])).unwrap_or_else(|m| panic!("{m}"));
        for (&(key, value), &(_, metric, label)) in stat.iter().zip(FROM_STAT) {
            let mut labels = vec![("worker", "0")];
            labels.extend(label);
            let want = if metric.ends_with("_seconds_total") {
                value as f64 / 1e9
            } else {
                value as f64
            };
            assert_eq!(
                e.get(metric, &labels),
                Some(want),
                "{key} -> {metric} {label:?}"
            );
            // The total of one worker is the worker's value.
            assert_eq!(e.get(metric, &labels[1..]), Some(want), "{key} total");
        }
    }

    #[test]
    fn names_are_valid_and_each_family_has_help_and_type_once() {
        let r = render(&meta(), &snaps());
        let e = prom::parse_strict(&r).unwrap_or_else(|m| panic!("{m}\n{r}"));
        let mut names = HashSetOf::default();
        for f in &e.families {
            assert!(prom::valid_metric_name(&f.name), "{}", f.name);
            assert!(f.name.starts_with("xdptcp_"), "{}", f.name);
            assert!(names.insert(f.name.clone()), "{} twice", f.name);
            assert!(!f.help.is_empty());
            assert_eq!(
                f.kind == "counter",
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            assert_eq!(r.matches(&format!("# HELP {} ", f.name)).count(), 1);
            assert_eq!(r.matches(&format!("# TYPE {} ", f.name)).count(), 1);
        }
        // Every family the tables define, and every sample belongs to one.
        let defined = 2 + LABELLED.len() + SINGLE.len() + LISTENER.len();
        assert_eq!(e.families.len(), defined);
        assert!(e.samples.iter().all(|s| names.contains(&s.name)));
        // Per worker and total: 3 series per (family, label value), 1 each for the two meta.
        assert_eq!(
            e.samples.len(),
            2 + 3
                * (LABELLED.iter().map(|f| f.series.len()).sum::<usize>()
                    + SINGLE.len()
                    + LISTENER.len())
        );
        assert_eq!(e.get("xdptcp_connections_opened_total", &[]), Some(15.0));
        assert_eq!(
            e.get("xdptcp_connections_opened_total", &[("worker", "1")]),
            Some(5.0)
        );
    }

    type HashSetOf = std::collections::HashSet<String>;

    #[test]
    fn no_workers_or_listeners_still_valid() {
        let r = render(&meta(), &[]);
        let e = prom::parse_strict(&r).unwrap_or_else(|m| panic!("{m}\n{r}"));
        assert_eq!(e.get("xdptcp_workers", &[]), Some(0.0));
        assert_eq!(
            e.get("xdptcp_connections", &[("state", "established")]),
            Some(0.0)
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_label("plain-0"), "plain-0");
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
        let odd = Meta {
            ifname: "e\"v\\i\nl".into(),
            addr: Ipv4Addr::new(198, 18, 0, 1).into(),
            ..meta()
        };
        let r = render(&odd, &snaps());
        assert!(
            r.contains("xdptcp_info{iface=\"e\\\"v\\\\i\\nl\",addr="),
            "{r}"
        );
        let e = prom::parse_strict(&r).unwrap_or_else(|m| panic!("{m}"));
        assert_eq!(
            e.get(
                "xdptcp_info",
                &[
                    ("iface", "e\"v\\i\nl"),
                    ("addr", "198.18.0.1"),
                    ("version", "0.1.0")
                ]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn the_strict_parser_rejects_what_it_should() {
        let ok = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"v\"} 1\n";
        assert!(prom::parse_strict(ok).is_ok());
        for bad in [
            "# TYPE a_total counter\na_total 1\n", // no HELP
            "# HELP a_total x\n# TYPE a_total counter\na_total 1", // no final newline
            "# HELP a x\n# TYPE a counter\na 1\n", // counter without _total
            "# HELP a x\n# TYPE a gauge\na{l=\"v} 1\n", // unterminated
            "# HELP a x\n# TYPE a gauge\na{l=\"\\q\"} 1\n", // bad escape
            "# HELP a x\n# TYPE a gauge\na{0l=\"v\"} 1\n", // bad label name
            "# HELP a x\n# TYPE a gauge\na 1\na 2\n", // series twice
            "# HELP a x\n# TYPE a gauge\n# HELP a y\na 1\n", // HELP twice
            "# HELP a x\n# TYPE a gauge\na one\n", // bad value
            "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n", // bad name
            "# HELP a x\n# TYPE a gauge\n# HELP b x\n# TYPE b gauge\na 1\nb 1\na{l=\"v\"} 1\n",
        ] {
            assert!(prom::parse_strict(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn parses_with_prometheus_parse() {
        use prometheus_parse::{Scrape, Value};
        let r = render(&meta(), &snaps());
        let scrape = Scrape::parse(r.lines().map(|l| Ok(l.to_string()))).expect("parse");
        let sample_lines = r.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(scrape.samples.len(), sample_lines);
        let find = |name: &str, worker: Option<&str>| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("worker") == worker)
                .map(|s| s.value.clone())
        };
        assert_eq!(
            find("xdptcp_connections_opened_total", None),
            Some(Value::Counter(15.0))
        );
        assert_eq!(
            find("xdptcp_worker_busy_seconds_total", Some("0")),
            Some(Value::Counter(1.5))
        );
        assert_eq!(find("xdptcp_workers", None), Some(Value::Gauge(2.0)));
        for s in &scrape.samples {
            assert!(
                matches!(s.value, Value::Counter(_) | Value::Gauge(_)),
                "{} is untyped",
                s.metric
            );
        }
        assert_eq!(
            scrape.docs.len(),
            2 + LABELLED.len() + SINGLE.len() + LISTENER.len()
        );
    }

    #[test]
    fn routes_and_request_heads() {
        let body = || "m 1\n".to_string();
        let get = |h: &str| respond(h.as_bytes(), body);
        assert_eq!(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").0, "200 OK");
        assert_eq!(
            get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").1,
            CONTENT_TYPE
        );
        assert_eq!(get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").2, "m 1\n");
        assert_eq!(get("GET /metrics?x=1 HTTP/1.0\n\n").0, "200 OK");
        assert_eq!(get("GET / HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(get("POST /metrics HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(get("HEAD /metrics HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(get("GET /metrics/x HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(get("GET /metrics\r\n\r\n").0, "400 Bad Request");
        assert_eq!(get("GET  /metrics HTTP/1.1\r\n\r\n").0, "400 Bad Request");
        assert_eq!(get("\u{1}\u{2}\r\n\r\n").0, "400 Bad Request");
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn address_parsing() {
        assert_eq!(
            parse_addr("127.0.0.1:9100"),
            Ok("127.0.0.1:9100".parse().unwrap())
        );
        assert_eq!(parse_addr("[::1]:9100"), Ok("[::1]:9100".parse().unwrap()));
        for bad in [
            "9100",
            "127.0.0.1",
            "127.0.0.1:0",
            "127.0.0.1:70000",
            "host:9100",
            "",
        ] {
            let e = parse_addr(bad).unwrap_err().to_string();
            assert!(e.starts_with("bad --metrics "), "{e}");
        }
    }

    /// A client that asks and never reads holds the thread until REQUEST_DEADLINE at most
    /// (the response is larger than the socket buffers, so the server's writes block).
    #[test]
    fn a_client_that_does_not_read_is_dropped_at_the_deadline() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = server.local_addr();
        let quit = Arc::new(AtomicBool::new(false));
        let q = quit.clone();
        let t = std::thread::spawn(move || server.serve(&q, || "x".repeat(32 << 20)));
        let mut stuck = TcpStream::connect(addr).expect("connect");
        stuck.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let start = Instant::now();
        let mut next = TcpStream::connect(addr).expect("connect");
        next.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        next.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut first = [0u8; 15];
        next.read_exact(&mut first)
            .expect("the second client's response");
        assert_eq!(&first, b"HTTP/1.1 200 OK");
        let waited = start.elapsed();
        assert!(
            waited < REQUEST_DEADLINE + Duration::from_secs(1),
            "{waited:?}"
        );
        quit.store(true, Ordering::Relaxed);
        drop((stuck, next));
        t.join().expect("server thread");
    }

    /// A real loopback socket: GET, 404, an oversized head, and a silent client that cannot
    /// hold the thread longer than the request deadline.
    #[test]
    fn serves_over_a_loopback_socket_and_stays_bounded() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = server.local_addr();
        let handles = vec![StatsHandle::default(), StatsHandle::default()];
        let thread = server.spawn(meta(), handles).expect("spawn");
        let request = |req: &[u8]| -> String {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = s.write_all(req);
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        };
        let ok = request(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        let (head, body) = ok.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let e = prom::parse_strict(body).unwrap_or_else(|m| panic!("{m}"));
        assert_eq!(e.get("xdptcp_workers", &[]), Some(2.0));
        assert!(request(b"GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "));
        let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_REQUEST + 10));
        assert!(request(&big).starts_with("HTTP/1.1 431 "));
        // A client that sends nothing is dropped after IO_TIMEOUT; the next one is served.
        let silent = TcpStream::connect(addr).expect("connect");
        let t = Instant::now();
        let next = request(b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(next.starts_with("HTTP/1.1 200 OK"), "{next}");
        assert!(t.elapsed() < REQUEST_DEADLINE + Duration::from_secs(2));
        drop(silent);
        let t = Instant::now();
        drop(thread);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "stop took {:?}",
            t.elapsed()
        );
    }
}
