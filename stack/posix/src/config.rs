//! The library's settings, read from the environment once (`xdptcp run` sets them; they can
//! also be set by hand next to `LD_PRELOAD=`, see docs/posix.md):
//!
//! - `XDPTCP_IFACE` (required: without it the library passes every call to the kernel),
//! - `XDPTCP_ADDR` (required with `XDPTCP_IFACE`): the stack's addresses on the interface,
//!   comma-separated: at most one IPv4 address and any IPv6 addresses (at most
//!   [`xdptcp::app::MAX_ADDRS6`]),
//! - `XDPTCP_SET`: `KEY=VALUE` TCP settings (the sysctl names of `--set`), separated by `;`,
//! - `XDPTCP_EPHEMERAL`: `LO-HI`, the stack's ephemeral range (default 61000-61999),
//! - `XDPTCP_WORKERS`: the queues 0..N that forked worker processes claim, one each (the
//!   first process serves queue 0; see docs/posix.md, "Processes"),
//! - `XDPTCP_SPINS`: empty loop iterations the stack thread spins before it sleeps in
//!   `poll(2)` on the AF_XDP socket (default 200; unset on a process allowed one CPU
//!   only: 0, see `state.rs`),
//! - `XDPTCP_FLUSH`: when a call that queued output (send, write, sendfile, close, shutdown, a
//!   read that opened the window) transmits it: `wait` (default: at the thread's next
//!   `epoll_wait`, `poll`, `select` or blocking call, or the stack thread's next iteration,
//!   at most 1 ms later; one TX kick per event-loop round, as F-Stack flushes at
//!   `epoll_wait`) or `call` (before the call returns).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use xdptcp::tcp::TcpConfig;

/// The parsed environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub iface: String,
    /// The stack's IPv4 address (none: IPv6 only; IPv4 stays the kernel's).
    pub addr: Option<Ipv4Addr>,
    /// The stack's IPv6 addresses (the rest of `XDPTCP_ADDR`).
    pub addrs6: Vec<Ipv6Addr>,
    pub tcp: TcpConfig,
    pub ephemeral: (u16, u16),
    pub workers: usize,
    pub spins: u32,
    /// `XDPTCP_FLUSH=wait` (the default): output waits for the caller's next wait.
    pub flush_at_wait: bool,
}

/// Default ephemeral range (the same as `xdptcp serve`).
pub const DEFAULT_EPHEMERAL: (u16, u16) = (61000, 61999);
/// At most this many queues for worker processes (the XSKMAP's size is larger).
pub const MAX_QUEUES: usize = 64;
/// Default idle spins of the stack thread.
pub const DEFAULT_SPINS: u32 = 200;

impl Config {
    /// `Ok(None)`: `XDPTCP_IFACE` is unset, the library stays out of the way.
    pub fn from_env() -> Result<Option<Config>, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// The same from any lookup (tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Config>, String> {
        let Some(iface) = get("XDPTCP_IFACE").filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let list = get("XDPTCP_ADDR").ok_or("XDPTCP_ADDR is not set (the stack's addresses)")?;
        let (addr, addrs6) = parse_addrs(&list)?;
        let sets: Vec<String> = get("XDPTCP_SET")
            .unwrap_or_default()
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let tcp = xdptcp::cli::parse_sets(&sets).map_err(|e| format!("XDPTCP_SET: {e}"))?;
        let ephemeral = match get("XDPTCP_EPHEMERAL") {
            Some(s) => {
                xdptcp::cli::parse_range(&s).map_err(|e| format!("XDPTCP_EPHEMERAL: {e}"))?
            }
            None => DEFAULT_EPHEMERAL,
        };
        let workers = match get("XDPTCP_WORKERS") {
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_QUEUES).contains(n))
                .ok_or(format!(
                    "bad XDPTCP_WORKERS {s:?}: 1..={MAX_QUEUES} (queues for worker processes)"
                ))?,
            None => 1,
        };
        let spins = match get("XDPTCP_SPINS") {
            Some(s) => s
                .parse()
                .map_err(|_| format!("bad XDPTCP_SPINS {s:?}: a number"))?,
            None => DEFAULT_SPINS,
        };
        let flush_at_wait = match get("XDPTCP_FLUSH").as_deref() {
            None | Some("wait") => true,
            Some("call") => false,
            Some(s) => return Err(format!("bad XDPTCP_FLUSH {s:?}: wait or call")),
        };
        Ok(Some(Config {
            iface,
            addr,
            addrs6,
            tcp,
            ephemeral,
            workers,
            spins,
            flush_at_wait,
        }))
    }
}

/// `XDPTCP_ADDR`: at most one IPv4 address and any IPv6 addresses, at least one in all,
/// comma-separated.
fn parse_addrs(list: &str) -> Result<(Option<Ipv4Addr>, Vec<Ipv6Addr>), String> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for a in list.split(',').map(str::trim) {
        match a.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => v4.push(a),
            Ok(IpAddr::V6(a)) => v6.push(a),
            Err(e) => return Err(format!("bad XDPTCP_ADDR {a:?}: {e}")),
        }
    }
    match v4[..] {
        [] if v6.is_empty() => Err(format!("bad XDPTCP_ADDR {list:?}: no address")),
        [] => Ok((None, v6)),
        [a] => Ok((Some(a), v6)),
        _ => Err(format!(
            "bad XDPTCP_ADDR {list:?}: at most one IPv4 address (and any IPv6 addresses)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(v: &[(&str, &str)]) -> Result<Option<Config>, String> {
        let m: HashMap<String, String> = v
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn unset_iface_means_inert() {
        assert!(parse(&[]).unwrap().is_none());
        assert!(parse(&[("XDPTCP_ADDR", "198.18.0.1")]).unwrap().is_none());
    }

    #[test]
    fn full_configuration_and_errors() {
        let c = parse(&[
            ("XDPTCP_IFACE", "veth0"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            (
                "XDPTCP_SET",
                "tcp_syncookies=2; tcp_rmem=4096 65536 1048576 ;tcp_fin_timeout=30",
            ),
            ("XDPTCP_EPHEMERAL", "50000-50999"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.iface, "veth0");
        assert_eq!(c.addr, Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert!(c.addrs6.is_empty());
        assert_eq!(c.ephemeral, (50000, 50999));
        assert_eq!(c.workers, 1);
        let c = parse(&[
            ("XDPTCP_IFACE", "veth0"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_SET", "tcp_syncookies=2"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.ephemeral, DEFAULT_EPHEMERAL);
        assert_eq!(c.spins, DEFAULT_SPINS);
        assert!(c.flush_at_wait);
        assert!(parse(&[("XDPTCP_IFACE", "veth0")])
            .unwrap_err()
            .contains("XDPTCP_ADDR"));
        let bad = parse(&[("XDPTCP_IFACE", "v"), ("XDPTCP_ADDR", "nope")]).unwrap_err();
        assert!(bad.contains("bad XDPTCP_ADDR"), "{bad}");
        let dual = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1,2001:2::1, 2001:2::7"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(dual.addr, Some(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(
            dual.addrs6,
            [
                "2001:2::1".parse::<Ipv6Addr>().unwrap(),
                "2001:2::7".parse().unwrap()
            ]
        );
        let only6 = parse(&[("XDPTCP_IFACE", "v"), ("XDPTCP_ADDR", "2001:2::1")]);
        assert_eq!(only6.unwrap().unwrap().addr, None);
        let bad = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1,198.18.0.3"),
        ]);
        assert!(bad.unwrap_err().contains("at most one IPv4 address"));
        let bad = parse(&[("XDPTCP_IFACE", "v"), ("XDPTCP_ADDR", "")]).unwrap_err();
        assert!(bad.contains("bad XDPTCP_ADDR"), "{bad}");
        let bad = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_SET", "no_such_key=1"),
        ])
        .unwrap_err();
        assert!(bad.starts_with("XDPTCP_SET"), "{bad}");
        let bad = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_WORKERS", "65"),
        ])
        .unwrap_err();
        assert!(bad.contains("1..=64"), "{bad}");
        let two = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_WORKERS", "2"),
        ]);
        assert_eq!(two.unwrap().unwrap().workers, 2);
        let call = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_FLUSH", "call"),
        ]);
        assert!(!call.unwrap().unwrap().flush_at_wait);
        let bad = parse(&[
            ("XDPTCP_IFACE", "v"),
            ("XDPTCP_ADDR", "198.18.0.1"),
            ("XDPTCP_FLUSH", "later"),
        ])
        .unwrap_err();
        assert!(bad.contains("wait or call"), "{bad}");
    }
}
