//! `TcpConfig::set` / `get` by sysctl name, with range checks, and the generated key table.
//!
//! One table ([`KEYS`]) drives parsing, printing and docs/configuration.md, so the three cannot
//! disagree. Values are integers in the key's unit; booleans are 0 / 1 as in sysctl.

use super::{SynCookieMode, TcpConfig, TwReuse};
use crate::tcp::cc::CongestionAlgo;
use crate::time::Duration;

/// Why `TcpConfig::set` refused a key or value. The config is unchanged after an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No key of that name.
    #[error("unknown key {key} (known: {known})")]
    UnknownKey {
        /// The name given.
        key: String,
        /// The known keys, comma-separated.
        known: String,
    },
    /// The value is not a number, out of range or not one of the key's names.
    #[error("{key} must be {expected} (got {value:?})")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What the key allows, e.g. "0, 1 or 2" or "1 to 127".
        expected: String,
    },
}

/// One documented key, as listed by [`TcpConfig::keys`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// The sysctl-style key, e.g. "tcp_rmem" (without "net.ipv4.").
    pub name: &'static str,
    /// The default value as `get` prints it.
    pub default: String,
    /// The unit of the value: "bytes", "ms", "s", "bool", ...
    pub unit: &'static str,
    /// Allowed values, e.g. "0, 1 or 2" or "1 to 127".
    pub allowed: String,
    /// One sentence on what the key does, as printed in docs/configuration.md.
    pub meaning: &'static str,
}

#[derive(Clone, Copy)]
enum Allowed {
    Choice(&'static [u64]),
    Range(u64, u64),
    /// Named values (index = stored value), as Linux's `tcp_congestion_control`.
    Names(&'static [&'static str]),
    /// Three non-decreasing values (Linux's `tcp_mem` "low pressure high"), each in the
    /// range, stored packed in 21 bits each ([`pack3`]).
    Triple(u64, u64),
}

const BITS3: u32 = 21;
const MASK3: u64 = (1 << BITS3) - 1;

/// Three values of at most 21 bits in one u64 (the table's `get` / `set` carry one u64).
fn pack3(v: [u64; 3]) -> u64 {
    (v[0] & MASK3) | (v[1] & MASK3) << BITS3 | (v[2] & MASK3) << (2 * BITS3)
}

fn unpack3(v: u64) -> [u64; 3] {
    [v & MASK3, (v >> BITS3) & MASK3, (v >> (2 * BITS3)) & MASK3]
}

struct Key {
    name: &'static str,
    unit: &'static str,
    allowed: Allowed,
    /// Linux's `tcp_rmem` / `tcp_wmem` take "min default max"; we use the default.
    triple: bool,
    meaning: &'static str,
    get: fn(&TcpConfig) -> u64,
    set: fn(&mut TcpConfig, u64),
}

const BOOL: Allowed = Allowed::Choice(&[0, 1]);
const MAX_QUEUE: u64 = 1 << 20;

fn secs(d: Duration) -> u64 {
    d.as_secs()
}
fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

#[rustfmt::skip]
static KEYS: &[Key] = &[
    Key { name: "tcp_syncookies", unit: "mode", allowed: Allowed::Choice(&[0, 1, 2]), triple: false,
        meaning: "SYN cookies (RFC 4987): 0 = never (drop SYNs when the SYN queue is full), 1 = when the SYN queue is full, 2 = always",
        get: |c| c.syncookies as u64, set: |c, v| c.syncookies = SynCookieMode::from_sysctl(v).unwrap_or(c.syncookies) },
    Key { name: "xdp_syncookies", unit: "bool", allowed: BOOL, triple: false,
        meaning: "Answer the SYNs that tcp_syncookies sends cookies for in the XDP program (XDP_TX, no worker involved); the worker still validates the returning ACK. Not a Linux sysctl",
        get: |c| c.xdp_syncookies as u64, set: |c, v| c.xdp_syncookies = v != 0 },
    Key { name: "tcp_max_syn_backlog", unit: "connections", allowed: Allowed::Range(1, MAX_QUEUE), triple: false,
        meaning: "Upper bound on half-open (SYN-RECEIVED) connections per listener; with tcp_syncookies = 0 the last quarter is kept free as Linux does",
        get: |c| c.max_syn_backlog as u64, set: |c, v| c.max_syn_backlog = v as usize },
    Key { name: "somaxconn", unit: "connections", allowed: Allowed::Range(0, MAX_QUEUE), triple: false,
        meaning: "Upper bound on a listener's backlog (accept queue of established connections)",
        get: |c| c.somaxconn as u64, set: |c, v| c.somaxconn = v as usize },
    Key { name: "tcp_fin_timeout", unit: "s", allowed: Allowed::Range(1, 86_400), triple: false,
        meaning: "How long an orphaned connection may stay in FIN-WAIT-2",
        get: |c| secs(c.fin_timeout), set: |c, v| c.fin_timeout = Duration::from_secs(v) },
    Key { name: "tcp_tw_reuse", unit: "mode", allowed: Allowed::Choice(&[0, 1, 2]), triple: false,
        meaning: "Reuse a TIME-WAIT 4-tuple for an active open when timestamps make it safe: 0 = off, 1 = on, 2 = loopback only (= off here)",
        get: |c| c.tw_reuse as u64, set: |c, v| c.tw_reuse = TwReuse::from_sysctl(v).unwrap_or(c.tw_reuse) },
    Key { name: "tcp_tw_reuse_delay", unit: "ms", allowed: Allowed::Range(1, 2_000_000), triple: false,
        meaning: "With tcp_tw_reuse = 1: how long after its last segment (TS.Recent) a TIME-WAIT 4-tuple may be reused (Linux 6.13+)",
        get: |c| millis(c.tw_reuse_delay), set: |c, v| c.tw_reuse_delay = Duration::from_millis(v) },
    Key { name: "tcp_syn_retries", unit: "count", allowed: Allowed::Range(1, 127), triple: false,
        meaning: "SYN retransmissions before an active open fails with TimedOut",
        get: |c| c.syn_retries as u64, set: |c, v| c.syn_retries = v as u32 },
    Key { name: "tcp_synack_retries", unit: "count", allowed: Allowed::Range(0, 255), triple: false,
        meaning: "SYN-ACK retransmissions before a half-open connection is dropped",
        get: |c| c.synack_retries as u64, set: |c, v| c.synack_retries = v as u32 },
    Key { name: "tcp_retries2", unit: "count", allowed: Allowed::Range(0, 255), triple: false,
        meaning: "Data/FIN retransmission timeouts before an established connection fails with TimedOut, and no sooner than the time that many backoffs from tcp_rto_min take (Linux retransmits_timed_out: 15 is about 924 s), so RFC 6069 reverts do not shorten it",
        get: |c| c.retries2 as u64, set: |c, v| c.retries2 = v as u32 },
    Key { name: "tcp_orphan_retries", unit: "count", allowed: Allowed::Range(0, 255), triple: false,
        meaning: "Retransmissions and zero-window probes before a connection the application closed gives up; 0 = 8 (Linux); at most tcp_retries2",
        get: |c| c.orphan_retries as u64, set: |c, v| c.orphan_retries = v as u32 },
    Key { name: "tcp_keepalive_time", unit: "s", allowed: Allowed::Range(1, 32_767), triple: false,
        meaning: "Idle time before the first keepalive probe (keepalive is off unless a connection asks for it)",
        get: |c| secs(c.keepalive_time), set: |c, v| c.keepalive_time = Duration::from_secs(v) },
    Key { name: "tcp_keepalive_intvl", unit: "s", allowed: Allowed::Range(1, 32_767), triple: false,
        meaning: "Time between keepalive probes",
        get: |c| secs(c.keepalive_intvl), set: |c, v| c.keepalive_intvl = Duration::from_secs(v) },
    Key { name: "tcp_keepalive_probes", unit: "count", allowed: Allowed::Range(1, 127), triple: false,
        meaning: "Unanswered keepalive probes before the connection fails with TimedOut",
        get: |c| c.keepalive_probes as u64, set: |c, v| c.keepalive_probes = v as u32 },
    Key { name: "msl", unit: "s", allowed: Allowed::Range(1, 3_600), triple: false,
        meaning: "Maximum segment lifetime; TIME-WAIT lasts 2 * msl (RFC 9293 §3.6.1; Linux: 60 s TIME-WAIT)",
        get: |c| secs(c.msl), set: |c, v| c.msl = Duration::from_secs(v) },
    Key { name: "tcp_timestamps", unit: "bool", allowed: BOOL, triple: false,
        meaning: "Offer and accept RFC 7323 timestamps",
        get: |c| c.timestamps as u64, set: |c, v| c.timestamps = v == 1 },
    Key { name: "tcp_window_scaling", unit: "bool", allowed: BOOL, triple: false,
        meaning: "Offer and accept RFC 7323 window scaling",
        get: |c| c.window_scaling as u64, set: |c, v| c.window_scaling = v == 1 },
    Key { name: "tcp_sack", unit: "bool", allowed: BOOL, triple: false,
        meaning: "Offer and accept RFC 2018 selective acknowledgements",
        get: |c| c.sack as u64, set: |c, v| c.sack = v == 1 },
    Key { name: "tcp_rto_min", unit: "ms", allowed: Allowed::Range(1, 120_000), triple: false,
        meaning: "Lower bound on the retransmission timeout; at most tcp_rto_initial and tcp_rto_max",
        get: |c| millis(c.rto_min), set: |c, v| c.rto_min = Duration::from_millis(v) },
    Key { name: "tcp_rto_max", unit: "ms", allowed: Allowed::Range(1_000, 120_000), triple: false,
        meaning: "Upper bound on the retransmission timeout (Linux tcp_rto_max_ms)",
        get: |c| millis(c.rto_max), set: |c, v| c.rto_max = Duration::from_millis(v) },
    Key { name: "tcp_rto_initial", unit: "ms", allowed: Allowed::Range(1, 120_000), triple: false,
        meaning: "RTO before the first RTT sample (RFC 6298 §2.1; not a Linux sysctl)",
        get: |c| millis(c.rto_initial), set: |c, v| c.rto_initial = Duration::from_millis(v) },
    Key { name: "tcp_challenge_ack_limit", unit: "per s", allowed: Allowed::Range(0, u32::MAX as u64), triple: false,
        meaning: "Challenge ACKs per second per worker (RFC 5961 §7), a random budget in [limit/2, 3*limit/2) each second against CVE-2016-5696; 4294967295 = no stack-wide limit (Linux >= 6.0)",
        get: |c| c.challenge_ack_limit as u64, set: |c, v| c.challenge_ack_limit = v as u32 },
    Key { name: "tcp_invalid_ratelimit", unit: "ms", allowed: Allowed::Range(0, 60_000), triple: false,
        meaning: "Per connection and TIME-WAIT record, at most one ACK per interval for out-of-window segments, PAWS rejects, duplicate SYNs and challenge ACKs",
        get: |c| millis(c.invalid_ratelimit), set: |c, v| c.invalid_ratelimit = Duration::from_millis(v) },
    Key { name: "tcp_rmem", unit: "bytes", allowed: Allowed::Range(4_096, 1 << 30), triple: true,
        meaning: "Receive buffer per connection; \"min default max\" is accepted and the default used",
        get: |c| c.rmem as u64, set: |c, v| c.rmem = v as usize },
    Key { name: "tcp_wmem", unit: "bytes", allowed: Allowed::Range(4_096, 1 << 30), triple: true,
        meaning: "Send buffer per connection; \"min default max\" is accepted and the default used",
        get: |c| c.wmem as u64, set: |c, v| c.wmem = v as usize },
    Key { name: "tcp_mem", unit: "pages", allowed: Allowed::Triple(1, MASK3), triple: false,
        meaning: "Memory of the connection buffers per worker in 4 KiB pages (Linux's is per host): above PRESSURE windows are clamped and out-of-order queues pruned until below LOW; above HIGH no buffer grows and data needing memory is dropped (docs/security.md)",
        get: |c| pack3(c.mem), set: |c, v| c.mem = unpack3(v) },
    Key { name: "tcp_max_tw_buckets", unit: "records", allowed: Allowed::Range(0, 1 << 24), triple: false,
        meaning: "TIME-WAIT records per worker; beyond it a closing connection skips TIME-WAIT (Linux TCPTimeWaitOverflow)",
        get: |c| c.max_tw_buckets as u64, set: |c, v| c.max_tw_buckets = v as usize },
    Key { name: "tcp_max_orphans", unit: "connections", allowed: Allowed::Range(0, 1 << 24), triple: false,
        meaning: "Connections closed by the application but not finished (FIN-WAIT-1/2, CLOSING, LAST-ACK) per worker; a close beyond it resets the connection instead (Linux \"too many orphaned sockets\", TCPAbortOnMemory); above tcp_mem HIGH an orphan with queued data is also reset at close and at its retransmission or probe timer",
        get: |c| c.max_orphans as u64, set: |c, v| c.max_orphans = v as usize },
    Key { name: "max_connections", unit: "connections", allowed: Allowed::Range(1, 1 << 24), triple: false,
        meaning: "Connections per worker (memory bound; not a Linux sysctl): beyond it SYNs are dropped and connect fails",
        get: |c| c.max_connections as u64, set: |c, v| c.max_connections = v as usize },
    Key { name: "tcp_mss", unit: "bytes", allowed: Allowed::Range(536, 8_960), triple: false,
        meaning: "Our MSS when the interface MTU does not say otherwise (not a Linux sysctl)",
        get: |c| c.mss as u64, set: |c, v| c.mss = v as u16 },
    Key { name: "tcp_abort_on_overflow", unit: "bool", allowed: BOOL, triple: false,
        meaning: "Reset (instead of drop) a handshake-completing ACK that finds the accept queue full",
        get: |c| c.abort_on_overflow as u64, set: |c, v| c.abort_on_overflow = v == 1 },
    Key { name: "tcp_rfc1337", unit: "bool", allowed: BOOL, triple: false,
        meaning: "1: a RST in TIME-WAIT is ignored (RFC 1337, FreeBSD); 0 (Linux's default): a RST at RCV.NXT that PAWS does not reject ends TIME-WAIT (Linux TWKilled)",
        get: |c| c.rfc1337 as u64, set: |c, v| c.rfc1337 = v == 1 },
    Key { name: "tcp_congestion_control", unit: "name", allowed: Allowed::Names(&CongestionAlgo::NAMES), triple: false,
        meaning: "Congestion control: cubic (RFC 9438) or reno (NewReno, RFC 5681 / RFC 6582)",
        get: |c| c.congestion_control as u64, set: |c, v| c.congestion_control = CongestionAlgo::from_index(v) },
    Key { name: "tcp_mtu_probing", unit: "mode", allowed: Allowed::Choice(&[0, 1, 2]), triple: false,
        meaning: "Packetization-layer PMTUD (RFC 4821, as Linux): 0 off; 1 on once a black hole is seen (tcp_retries1 = 3 timeouts without progress lower the MSS to tcp_base_mss, then halve it); 2 always on, starting from tcp_base_mss. While on, larger probe segments raise the MSS again toward the path MTU",
        get: |c| c.mtu_probing as u64, set: |c, v| c.mtu_probing = v as u8 },
    Key { name: "tcp_base_mss", unit: "bytes", allowed: Allowed::Range(48, 65_535), triple: false,
        meaning: "The MSS black-hole detection (tcp_mtu_probing) starts from",
        get: |c| c.base_mss as u64, set: |c, v| c.base_mss = v as u16 },
];

impl Allowed {
    fn contains(self, v: u64) -> bool {
        match self {
            Allowed::Choice(list) => list.contains(&v),
            Allowed::Range(lo, hi) => (lo..=hi).contains(&v),
            Allowed::Names(names) => (v as usize) < names.len(),
            Allowed::Triple(lo, hi) => {
                let [a, b, c] = unpack3(v);
                v >> (3 * BITS3) == 0 && lo <= a && a <= b && b <= c && c <= hi
            }
        }
    }
    fn describe(self) -> String {
        match self {
            Allowed::Choice(list) => {
                let items: Vec<String> = list.iter().map(u64::to_string).collect();
                match items.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("{} or {last}", rest.join(", "))
                    }
                    _ => items.join(""),
                }
            }
            Allowed::Range(lo, hi) => format!("{lo} to {hi}"),
            Allowed::Names(names) => match names.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => names.join(""),
            },
            Allowed::Triple(lo, hi) => {
                format!("\"LOW PRESSURE HIGH\" (or LOW,PRESSURE,HIGH), each {lo} to {hi}, LOW <= PRESSURE <= HIGH")
            }
        }
    }
    /// How `get` prints a stored value.
    fn show(self, v: u64) -> String {
        match self {
            Allowed::Names(names) => names.get(v as usize).copied().unwrap_or("?").to_string(),
            Allowed::Triple(..) => {
                let [a, b, c] = unpack3(v);
                format!("{a} {b} {c}")
            }
            _ => v.to_string(),
        }
    }
}

fn find(key: &str) -> Result<&'static Key, ConfigError> {
    KEYS.iter()
        .find(|k| k.name == key)
        .ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_string(),
            known: KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
        })
}

/// Parses `value` for `key`: one integer, or for triples "min default max" with min <= default
/// <= max, returning the default.
fn parse(key: &Key, value: &str) -> Result<u64, ConfigError> {
    let invalid = |expected: String| ConfigError::Invalid {
        key: key.name,
        value: value.to_string(),
        expected,
    };
    let mut expected = key.allowed.describe();
    if key.triple {
        expected = format!("{expected}, or \"min default max\" with min <= default <= max");
    }
    if let Allowed::Names(names) = key.allowed {
        return match names.iter().position(|n| *n == value.trim()) {
            Some(i) => Ok(i as u64),
            None => Err(invalid(expected)),
        };
    }
    if let Allowed::Triple(..) = key.allowed {
        let words = value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty());
        let nums: Option<Vec<u64>> = words.map(|w| w.parse().ok()).collect();
        return match nums.as_deref() {
            Some(&[a, b, c]) if [a, b, c].iter().all(|&x| x <= MASK3) => {
                let v = pack3([a, b, c]);
                if key.allowed.contains(v) {
                    Ok(v)
                } else {
                    Err(invalid(expected))
                }
            }
            _ => Err(invalid(expected)),
        };
    }
    let nums: Option<Vec<u64>> = value.split_whitespace().map(|w| w.parse().ok()).collect();
    let v = match (nums.as_deref(), key.triple) {
        (Some(&[v]), _) => v,
        (Some(&[lo, v, hi]), true) if lo <= v && v <= hi => v,
        _ => return Err(invalid(expected)),
    };
    if key.allowed.contains(v) {
        Ok(v)
    } else {
        Err(invalid(expected))
    }
}

/// How the listener keys act together (stack/core/src/tcp/listener.rs, after Linux's
/// `tcp_conn_request` and `tcp_check_req`).
const QUEUES: &str = "
## Listener queues when full

A listener made with `listen(backlog)` has an accept queue of max = min(backlog, `somaxconn`)
that, as in Linux, holds max + 1 connections, and a SYN queue of half-open connections that
counts as full at max entries (Linux >= 4.4) and never holds more than `tcp_max_syn_backlog`.
For a new SYN, in this order:

1. `tcp_syncookies` = 2, or the SYN queue is full: with cookies on (1 or 2) the SYN-ACK carries
   a SYN cookie and no state is kept; with cookies off the SYN is dropped silently
   (`TCPReqQFullDrop`). A SYN that legitimately reuses a TIME-WAIT 4-tuple skips this step.
2. The accept queue is full: the SYN is dropped silently (`ListenOverflows`), cookies or not.
3. Cookies off and fewer than a quarter of `tcp_max_syn_backlog` slots free: dropped (Linux
   keeps that quarter for peers its metrics cache has seen alive; we keep no such cache).

The ACK completing a handshake while the accept queue is full is dropped (`ListenOverflows`)
and the half-open connection stays queued, so the peer's retransmission completes it once
the application accepts; with `tcp_abort_on_overflow` = 1 it is answered with RST instead
(never for a cookie handshake). Every drop also counts in `ListenDrops`.
";

impl TcpConfig {
    /// Sets `key` (a Linux sysctl name, see [`TcpConfig::keys`]) from its textual value, in the
    /// key's unit. On error the config is unchanged.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let k = find(key)?;
        let v = parse(k, value)?;
        let mut next = self.clone();
        (k.set)(&mut next, v);
        // Cross-key rule: rto_min <= rto_initial <= rto_max.
        if next.rto_min > next.rto_initial || next.rto_initial > next.rto_max {
            return Err(ConfigError::Invalid {
                key: k.name,
                value: value.to_string(),
                expected: format!(
                    "consistent with tcp_rto_min <= tcp_rto_initial <= tcp_rto_max (now {} <= {} <= {} ms)",
                    millis(self.rto_min),
                    millis(self.rto_initial),
                    millis(self.rto_max)
                ),
            });
        }
        *self = next;
        Ok(())
    }

    /// The current value of `key` as `set` accepts it.
    pub fn get(&self, key: &str) -> Result<String, ConfigError> {
        find(key).map(|k| k.allowed.show((k.get)(self)))
    }

    /// Every key with its default, unit, allowed values and meaning, in table order.
    pub fn keys() -> Vec<KeyDoc> {
        let d = TcpConfig::default();
        KEYS.iter()
            .map(|k| KeyDoc {
                name: k.name,
                default: k.allowed.show((k.get)(&d)),
                unit: k.unit,
                allowed: k.allowed.describe(),
                meaning: k.meaning,
            })
            .collect()
    }

    /// docs/configuration.md, generated from [`TcpConfig::keys`].
    pub fn docs_table() -> String {
        let mut s = String::from(
            "# Configuration\n\n\
             <!-- Generated by TcpConfig::docs_table() in stack/core/src/tcp/config/keys.rs; a test fails\n\
             when this file drifts. Regenerate: XDPTCP_BLESS_DOCS=1 cargo test -p xdptcp --lib tcp::config -->\n\n\
             TCP settings carry Linux's sysctl names (`net.ipv4.tcp_*`, `net.core.somaxconn`) and\n\
             Linux's defaults, so an operator's knowledge carries over. They are set with\n\
             `TcpConfig::set(key, value)` (`xdptcp serve --set KEY=VALUE`); values are integers in\n\
             the unit shown (a name for `name` keys), booleans are 0 or 1. Out-of-range values are refused, never clamped.\n\n\
             | Key | Default | Unit | Allowed | Meaning |\n|---|---|---|---|---|\n",
        );
        for k in TcpConfig::keys() {
            s += &format!(
                "| `{}` | {} | {} | {} | {} |\n",
                k.name, k.default, k.unit, k.allowed, k.meaning
            );
        }
        s += QUEUES;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_match_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
        let want = TcpConfig::docs_table();
        if std::env::var_os("XDPTCP_BLESS_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/configuration.md differs from TcpConfig::docs_table(); regenerate with \
             XDPTCP_BLESS_DOCS=1 cargo test -p xdptcp --lib tcp::config"
        );
    }

    #[test]
    fn set_then_get_every_key() {
        let mut c = TcpConfig::default();
        let cases = [
            ("tcp_syncookies", "2"),
            ("xdp_syncookies", "1"),
            ("tcp_max_syn_backlog", "128"),
            ("somaxconn", "0"),
            ("tcp_fin_timeout", "30"),
            ("tcp_tw_reuse", "1"),
            ("tcp_tw_reuse_delay", "10"),
            ("tcp_syn_retries", "3"),
            ("tcp_synack_retries", "0"),
            ("tcp_retries2", "8"),
            ("tcp_orphan_retries", "3"),
            ("tcp_keepalive_time", "600"),
            ("tcp_keepalive_intvl", "10"),
            ("tcp_keepalive_probes", "3"),
            ("msl", "5"),
            ("tcp_timestamps", "0"),
            ("tcp_window_scaling", "0"),
            ("tcp_sack", "0"),
            ("tcp_rto_min", "50"),
            ("tcp_rto_max", "60000"),
            ("tcp_rto_initial", "500"),
            ("tcp_challenge_ack_limit", "100"),
            ("tcp_invalid_ratelimit", "250"),
            ("tcp_rmem", "65536"),
            ("tcp_wmem", "262144"),
            ("tcp_mem", "10 20 30"),
            ("tcp_max_tw_buckets", "1000"),
            ("tcp_max_orphans", "100"),
            ("max_connections", "5000"),
            ("tcp_mss", "8960"),
            ("tcp_abort_on_overflow", "1"),
            ("tcp_rfc1337", "0"),
            ("tcp_congestion_control", "reno"),
            ("tcp_mtu_probing", "1"),
            ("tcp_base_mss", "512"),
        ];
        assert_eq!(cases.len(), KEYS.len(), "every key covered");
        for (k, v) in cases {
            c.set(k, v).unwrap();
            assert_eq!(c.get(k).unwrap(), v);
        }
        let want = TcpConfig {
            syncookies: SynCookieMode::Always,
            xdp_syncookies: true,
            max_syn_backlog: 128,
            somaxconn: 0,
            fin_timeout: Duration::from_secs(30),
            tw_reuse: TwReuse::On,
            tw_reuse_delay: Duration::from_millis(10),
            syn_retries: 3,
            synack_retries: 0,
            retries2: 8,
            orphan_retries: 3,
            keepalive_time: Duration::from_secs(600),
            keepalive_intvl: Duration::from_secs(10),
            keepalive_probes: 3,
            msl: Duration::from_secs(5),
            timestamps: false,
            window_scaling: false,
            sack: false,
            rto_min: Duration::from_millis(50),
            rto_max: Duration::from_secs(60),
            rto_initial: Duration::from_millis(500),
            challenge_ack_limit: 100,
            invalid_ratelimit: Duration::from_millis(250),
            rmem: 65_536,
            wmem: 262_144,
            mem: [10, 20, 30],
            mss: 8960,
            abort_on_overflow: true,
            rfc1337: false,
            max_tw_buckets: 1000,
            max_orphans: 100,
            max_connections: 5000,
            congestion_control: CongestionAlgo::Reno,
            mtu_probing: 1,
            base_mss: 512,
        };
        assert_eq!(c, want);
        assert_eq!(c.time_wait(), Duration::from_secs(10));
    }

    #[test]
    fn errors_are_clear_and_leave_config_unchanged() {
        let mut c = TcpConfig::default();
        let e = c.set("tcp_syncookies", "3").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_syncookies must be 0, 1 or 2 (got \"3\")"
        );
        let e = c.set("tcp_sack", "yes").unwrap_err();
        assert_eq!(e.to_string(), "tcp_sack must be 0 or 1 (got \"yes\")");
        let e = c.set("tcp_syn_retries", "0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_syn_retries must be 1 to 127 (got \"0\")"
        );
        let e = c.set("tcp_syn_retries", "-1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_syn_retries must be 1 to 127 (got \"-1\")"
        );
        let e = c.set("tcp_tw_recycle", "1").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("unknown key tcp_tw_recycle (known: tcp_syncookies, "),
            "{msg}"
        );
        assert!(
            msg.ends_with("tcp_congestion_control, tcp_mtu_probing, tcp_base_mss)"),
            "{msg}"
        );
        let e = c.set("tcp_congestion_control", "bbr").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_congestion_control must be cubic or reno (got \"bbr\")"
        );
        assert!(c.set("tcp_mss", "535").is_err());
        assert!(c.set("tcp_mss", "").is_err());
        assert!(c.set("tcp_rmem", "1 2").is_err());
        assert!(
            c.set("tcp_mss", "1460 1460 1460").is_err(),
            "triples only for rmem/wmem"
        );
        // RTO ordering is kept: rto_min above rto_initial (1 s) is refused.
        let e = c.set("tcp_rto_min", "2000").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tcp_rto_min must be consistent with tcp_rto_min <= tcp_rto_initial <= tcp_rto_max \
             (now 200 <= 1000 <= 120000 ms) (got \"2000\")"
        );
        assert_eq!(c, TcpConfig::default());
    }

    #[test]
    fn linux_triples_for_buffers() {
        let mut c = TcpConfig::default();
        c.set("tcp_rmem", "4096 131072 6291456").unwrap();
        assert_eq!(c.rmem, 131_072);
        c.set("tcp_wmem", " 4096\t32768   4194304 ").unwrap();
        assert_eq!(c.wmem, 32_768);
        assert!(
            c.set("tcp_wmem", "65536 16384 4194304").is_err(),
            "min > default"
        );
        assert!(
            c.set("tcp_wmem", "4096 1024 8192").is_err(),
            "default below 4096"
        );
    }

    /// `tcp_mem` takes Linux's three page counts (spaces, tabs or commas), non-decreasing.
    #[test]
    fn tcp_mem_triple() {
        let mut c = TcpConfig::default();
        assert_eq!(c.get("tcp_mem").unwrap(), "49152 65536 98304");
        c.set("tcp_mem", "100,200,300").unwrap();
        assert_eq!(c.mem, [100, 200, 300]);
        c.set("tcp_mem", "7\t8 9").unwrap();
        assert_eq!(c.get("tcp_mem").unwrap(), "7 8 9");
        for bad in [
            "1 2",
            "3 2 1",
            "0 1 2",
            "1 2 2097152",
            "1 2 3 4",
            "a b c",
            "5",
        ] {
            assert!(c.set("tcp_mem", bad).is_err(), "{bad}");
        }
        assert_eq!(c.mem, [7, 8, 9], "unchanged by errors");
    }

    #[test]
    fn keys_describe_defaults() {
        let keys = TcpConfig::keys();
        let sc = keys.iter().find(|k| k.name == "tcp_syncookies").unwrap();
        assert_eq!(
            (sc.default.as_str(), sc.allowed.as_str()),
            ("1", "0, 1 or 2")
        );
        let fin = keys.iter().find(|k| k.name == "tcp_fin_timeout").unwrap();
        assert_eq!((fin.default.as_str(), fin.unit), ("60", "s"));
        let rto = keys.iter().find(|k| k.name == "tcp_rto_min").unwrap();
        assert_eq!((rto.default.as_str(), rto.unit), ("200", "ms"));
        // Every default is itself accepted by set (the table and Default agree).
        let mut c = TcpConfig::default();
        for k in &keys {
            c.set(k.name, &k.default).unwrap();
        }
        assert_eq!(c, TcpConfig::default());
    }
}
