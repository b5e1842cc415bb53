//! Memory accounting for `conns`. For kernel sockets we read the slab caches a TCP socket
//! lives in (`/proc/slabinfo`, root only) before and after, and the per-namespace socket
//! counts of `/proc/net/sockstat`. Slab figures are machine-wide: other processes allocating
//! at the same time add noise (the per-cache deltas go into the JSON so a reader can judge).

use std::collections::BTreeMap;

/// Slab caches that grow with a kernel TCP connection: the socket itself, its inode and file,
/// dentry, epoll item, bind buckets, and the TIME-WAIT mini-socket.
pub const TCP_SLABS: &[&str] = &[
    "TCP",
    "tw_sock_TCP",
    "request_sock_TCP",
    "sock_inode_cache",
    "tcp_bind_bucket",
    "tcp_bind2_bucket",
    "filp",
    "dentry",
    "eventpoll_epi",
    "eventpoll_pwq",
];

/// Bytes in use per slab cache (active objects × object size).
pub fn parse_slabinfo(text: &str) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.starts_with("slabinfo") {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 || !TCP_SLABS.contains(&f[0]) {
            continue;
        }
        if let (Ok(active), Ok(size)) = (f[1].parse::<u64>(), f[3].parse::<u64>()) {
            m.insert(f[0].to_string(), active * size);
        }
    }
    m
}

pub fn slab_snapshot() -> Option<BTreeMap<String, u64>> {
    let text = std::fs::read_to_string("/proc/slabinfo").ok()?;
    Some(parse_slabinfo(&text))
}

/// `after - before` per cache (signed), for caches present in either.
pub fn slab_delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, i64> {
    let mut d = BTreeMap::new();
    for k in before.keys().chain(after.keys()) {
        let b = *before.get(k).unwrap_or(&0) as i64;
        let a = *after.get(k).unwrap_or(&0) as i64;
        d.insert(k.clone(), a - b);
    }
    d
}

/// The `TCP:` line of sockstat: inuse, orphan, tw, alloc, mem (pages).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TcpSockstat {
    pub inuse: u64,
    pub orphan: u64,
    pub tw: u64,
    pub alloc: u64,
    pub mem_pages: u64,
}

pub fn parse_sockstat(text: &str) -> Option<TcpSockstat> {
    let line = text.lines().find(|l| l.starts_with("TCP:"))?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let get = |key: &str| -> Option<u64> {
        let i = f.iter().position(|x| *x == key)?;
        f.get(i + 1)?.parse().ok()
    };
    Some(TcpSockstat {
        inuse: get("inuse")?,
        orphan: get("orphan")?,
        tw: get("tw")?,
        alloc: get("alloc")?,
        mem_pages: get("mem")?,
    })
}

/// Sockets with destination port `dport` in namespace `ns`, per `ss` state name.
pub fn ss_states(ns: &str, dport: u16) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ss", "-Htan"])
        .arg(format!("( dport = :{dport} )"))
        .output();
    if let Ok(out) = out {
        for l in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(st) = l.split_whitespace().next() {
                *m.entry(st.to_string()).or_insert(0) += 1;
            }
        }
    }
    m
}

/// Sockets in any of `states` (`ss` state names) with destination port `dport` in namespace
/// `ns`, counted by `ss` over sock_diag netlink.
pub fn ss_count(ns: &str, states: &[&str], dport: u16) -> Option<u64> {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", ns, "ss", "-Htn"]);
    for st in states {
        cmd.args(["state", st]);
    }
    let out = cmd.arg(format!("( dport = :{dport} )")).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count() as u64
    })
}

/// Counters of `/proc/net/netstat` and `/proc/net/snmp` (`TcpExt: ...` header/value line
/// pairs), keyed `Group.Name`.
pub fn parse_netstat(text: &str) -> BTreeMap<String, i64> {
    let mut m = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((g1, n)), Some((g2, v))) = (names.split_once(':'), values.split_once(':')) else {
            continue;
        };
        if g1 != g2 {
            continue;
        }
        for (k, v) in n.split_whitespace().zip(v.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                m.insert(format!("{g1}.{k}"), v);
            }
        }
    }
    m
}

/// Non-zero `after - before` of counters present in both.
pub fn counter_delta(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    after
        .iter()
        .filter_map(|(k, a)| Some((k.clone(), a - before.get(k)?)))
        .filter(|(_, d)| *d != 0)
        .collect()
}

/// VmRSS of a process in bytes (`/proc/<pid>/status`).
pub fn vm_rss(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_tcp_line() {
        let t = "sockets: used 5\nTCP: inuse 3 orphan 1 tw 7 alloc 9 mem 2\nUDP: inuse 0 mem 0\n";
        let s = parse_sockstat(t).unwrap();
        assert_eq!(
            s,
            TcpSockstat {
                inuse: 3,
                orphan: 1,
                tw: 7,
                alloc: 9,
                mem_pages: 2
            }
        );
        assert_eq!(parse_sockstat("UDP: inuse 0\n"), None);
    }

    #[test]
    fn netstat_pairs_and_delta() {
        let t = "TcpExt: SyncookiesSent TW\nTcpExt: 0 5\nIpExt: InNoRoutes\nIpExt: 2\n";
        let m = parse_netstat(t);
        assert_eq!(m["TcpExt.TW"], 5);
        assert_eq!(m["IpExt.InNoRoutes"], 2);
        let mut after = m.clone();
        after.insert("TcpExt.TW".into(), 9);
        let d = counter_delta(&m, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(d["TcpExt.TW"], 4);
    }

    #[test]
    fn slabinfo_picks_tcp_caches() {
        let t = "slabinfo - version: 2.1\n# name <active_objs> <num_objs> <objsize> ...\n\
                 TCP 100 120 2368 13 8 : tunables 0 0 0\n\
                 kmalloc-64 999 999 64 64 1 : tunables 0 0 0\n\
                 tw_sock_TCP 10 32 248 32 2 : tunables 0 0 0\n";
        let m = parse_slabinfo(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m["TCP"], 236_800);
        assert_eq!(m["tw_sock_TCP"], 2_480);
        let mut after = m.clone();
        after.insert("TCP".into(), 200_000);
        let d = slab_delta(&m, &after);
        assert_eq!(d["TCP"], -36_800);
        assert_eq!(d["tw_sock_TCP"], 0);
    }
}
