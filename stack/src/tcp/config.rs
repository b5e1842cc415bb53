//! TCP settings, named after Linux's sysctls (`net.ipv4.tcp_*`, `net.core.somaxconn`) and with
//! Linux's defaults, so an operator's knowledge carries over. `xdptcp serve --set KEY=VALUE`
//! changes them. The table of keys is in docs/state-machine.md and docs/operations.md.
//!
//! TODO(parts helper): `TcpConfig::set(key, value) -> Result<(), ConfigError>` and the doc table.

use crate::time::Duration;

/// Settings for one stack. Field names are the sysctl names without the `tcp_` prefix where
/// Linux has one; durations are `Duration`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// `tcp_syncookies`: 0 = never, 1 = when the SYN queue is full (default), 2 = always.
    pub syncookies: u8,
    /// `tcp_max_syn_backlog`: half-open connections (SYN-RECEIVED) per listener.
    pub max_syn_backlog: usize,
    /// `somaxconn`: upper bound on a listener's accept-queue backlog.
    pub somaxconn: usize,
    /// `tcp_fin_timeout`: how long an orphaned connection may stay in FIN-WAIT-2.
    pub fin_timeout: Duration,
    /// `tcp_tw_reuse`: 0 = off, 1 = on for active opens when timestamps make it safe,
    /// 2 = loopback only (Linux's default; for us equivalent to 0 as we have no loopback).
    pub tw_reuse: u8,
    /// `tcp_syn_retries`: SYN retransmissions before an active open gives up (TimedOut).
    pub syn_retries: u32,
    /// `tcp_synack_retries`: SYN-ACK retransmissions before a half-open connection is dropped.
    pub synack_retries: u32,
    /// `tcp_retries2`: data/FIN retransmissions before an established connection gives up.
    pub retries2: u32,
    /// `tcp_keepalive_time`: idle time before the first keepalive probe (when enabled).
    pub keepalive_time: Duration,
    /// `tcp_keepalive_intvl`: time between keepalive probes.
    pub keepalive_intvl: Duration,
    /// `tcp_keepalive_probes`: unanswered probes before the connection is dropped (TimedOut).
    pub keepalive_probes: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2 * msl. Linux hard-codes TIME-WAIT at 60 s.
    pub msl: Duration,
    /// `tcp_timestamps`: offer and accept RFC 7323 timestamps.
    pub timestamps: bool,
    /// `tcp_window_scaling`: offer and accept RFC 7323 window scaling.
    pub window_scaling: bool,
    /// `tcp_sack`: offer and accept RFC 2018 SACK.
    pub sack: bool,
    /// `tcp_rto_min`: lower bound on the retransmission timeout (Linux: 200 ms).
    pub rto_min: Duration,
    /// `tcp_rto_max`: upper bound on the retransmission timeout (Linux: 120 s).
    pub rto_max: Duration,
    /// Initial RTO before any RTT sample (RFC 6298 §2.1: 1 s).
    pub rto_initial: Duration,
    /// `tcp_challenge_ack_limit`: challenge ACKs per second (RFC 5961 §7).
    pub challenge_ack_limit: u32,
    /// `tcp_rmem` default: receive buffer bytes per connection.
    pub rmem: usize,
    /// `tcp_wmem` default: send buffer bytes per connection.
    pub wmem: usize,
    /// Our MSS when the interface MTU does not say otherwise (1500 - 40).
    pub mss: u16,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            syncookies: 1,
            max_syn_backlog: 4096,
            somaxconn: 4096,
            fin_timeout: Duration::from_secs(60),
            tw_reuse: 2,
            syn_retries: 6,
            synack_retries: 5,
            retries2: 15,
            keepalive_time: Duration::from_secs(7200),
            keepalive_intvl: Duration::from_secs(75),
            keepalive_probes: 9,
            msl: Duration::from_secs(30),
            timestamps: true,
            window_scaling: true,
            sack: true,
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(120),
            rto_initial: Duration::from_secs(1),
            challenge_ack_limit: 1000,
            rmem: 131_072,
            wmem: 16_384,
            mss: 1460,
        }
    }
}

impl TcpConfig {
    /// TIME-WAIT duration: 2 * MSL (RFC 9293 §3.6.1).
    pub fn time_wait(&self) -> Duration {
        self.msl * 2
    }
}
