//! What a running stack reports about itself, as text: the `xdptcp stat` report (text and
//! JSON, per worker and in total) and the stop summary `serve` prints. Built from the workers'
//! published snapshots ([`WorkerSnapshot`]); the caller prints or sends the text.

use std::fmt::Write as _;

use crate::cookies::XdpCookieStats;
use crate::neigh::route::RouteStats;
use crate::tcp::endpoint::StateCounts;
use crate::worker::WorkerSnapshot;

/// What a report names besides the snapshots.
#[derive(Debug, Clone)]
pub struct StatMeta {
    /// The interface the stack runs on.
    pub ifname: String,
    /// The stack's address: its IPv4 address, or its first IPv6 address when it is IPv6
    /// only.
    pub addr: std::net::IpAddr,
    /// The serving process.
    pub pid: u32,
    /// SYN cookies in XDP (`xdp_syncookies = 1`): the stack's counters.
    pub xdp: Option<std::sync::Arc<XdpCookieStats>>,
    /// The route refresher's counters (one set per stack).
    pub routes: Option<std::sync::Arc<RouteStats>>,
}

/// Named counters of one snapshot, in report order (also the JSON keys).
pub(crate) fn counters(s: &WorkerSnapshot) -> Vec<(&'static str, u64)> {
    let (c, e, i) = (&s.states, &s.endpoint, &s.iface);
    let u = |x: usize| x as u64;
    vec![
        ("listen", u(c.listen)),
        ("syn_sent", u(c.syn_sent)),
        ("syn_received", u(c.syn_received)),
        ("established", u(c.established)),
        ("fin_wait1", u(c.fin_wait1)),
        ("fin_wait2", u(c.fin_wait2)),
        ("close_wait", u(c.close_wait)),
        ("closing", u(c.closing)),
        ("last_ack", u(c.last_ack)),
        ("time_wait", u(c.time_wait)),
        ("closed", u(c.closed)),
        ("orphans", u(c.orphans)),
        ("conns_opened", e.conns_opened),
        ("conns_freed", e.conns_freed),
        ("cookies_sent", e.cookies_sent),
        ("cookies_accepted", e.cookies_accepted),
        ("cookies_rejected", e.cookies_rejected),
        ("rst_closed", e.rst_closed),
        ("rst_listen_bad_ack", e.rst_listen_bad_ack),
        ("rst_accept_overflow", e.rst_accept_overflow),
        ("challenge_acks_sent", e.challenge_acks_sent),
        ("acks_skipped", e.acks_skipped),
        ("aborted_on_memory", e.aborted_on_memory),
        ("syn_dropped", e.syn_dropped),
        ("listen_overflows", e.listen_overflows),
        ("conn_limit_drops", e.conn_limit_drops),
        ("tw_overflow", e.tw_overflow),
        ("tw_entered", e.tw_entered),
        ("tw_reopened", e.tw_reopened),
        ("tw_acks", e.tw_acks),
        ("tw_reused", e.tw_reused),
        ("tw_expired", e.tw_expired),
        ("tw_rst_ignored", e.tw_rst_ignored),
        ("tw_killed", e.tw_killed),
        ("tw_acks_skipped", e.tw_acks_skipped),
        ("malformed_in", e.malformed_in),
        ("martian_src_in", e.martian_src_in),
        ("bad_flags_in", e.bad_flags_in),
        ("no_listener", e.no_listener),
        ("control_dropped", e.control_dropped),
        ("rx_checksum", i.rx_checksum),
        ("rx_truncated", i.rx_truncated),
        ("rx_malformed", i.rx_malformed),
        ("rx_unsupported", i.rx_unsupported),
        ("rx_not_ours", i.rx_not_ours),
        ("tx_full", i.tx_full),
        ("tx_no_route", i.tx_no_route),
        ("tx_neigh_dropped", i.tx_neigh_dropped),
        ("neigh_netlink_errors", i.neigh_netlink_errors),
        ("rx_misdirected", i.rx_misdirected),
        ("handoff_sent", i.handoff_sent),
        ("handoff_received", i.handoff_received),
        ("handoff_dropped", i.handoff_dropped),
        ("connect_rss_miss", e.connect_rss_miss),
        ("rx_frames", i.rx_frames),
        ("tx_segments", i.tx_segments),
        ("rx_segments6", i.rx_segments6),
        ("tx_segments6", i.tx_segments6),
        ("dev_rx_frames", s.device.rx_frames),
        ("dev_tx_frames", s.device.tx_frames),
        ("dev_rx_dropped", s.device.rx_dropped),
        ("data_segs_in", e.flow.data_segs_in),
        ("data_bytes_in", e.flow.data_bytes_in),
        ("pure_acks_in", e.flow.pure_acks_in),
        ("data_segs_out", e.flow.data_segs_out),
        ("data_bytes_out", e.flow.data_bytes_out),
        ("retrans_segs", e.flow.retrans_segs),
        ("pure_acks_out", e.flow.pure_acks_out),
        ("tx_app_limited", e.flow.tx_app_limited),
        ("tx_sndbuf_limited", e.flow.tx_sndbuf_limited),
        ("tx_rwnd_limited", e.flow.tx_rwnd_limited),
        ("tx_cwnd_limited", e.flow.tx_cwnd_limited),
        ("tx_small_held", e.flow.tx_small_held),
        ("busy_ns", s.looping.busy_ns),
        ("idle_ns", s.looping.idle_ns),
        ("time_wait_bytes", u(s.time_wait_bytes)),
        ("buf_out_bytes", s.buffers.out_bytes),
        ("buf_pool_bytes", s.buffers.cached_bytes),
        ("buf_pool_allocated", s.buffers.allocated),
        ("buf_pool_released", s.buffers.released),
        ("mem_ooo_bytes", s.buffers.ooo_bytes),
        ("mem_pressure", s.buffers.mem_pressure),
        ("mem_pressure_entered", s.buffers.mem_pressure_entered),
        ("ofo_pruned", s.buffers.ofo_pruned),
        ("ofo_pruned_bytes", s.buffers.ofo_pruned_bytes),
        ("rcvq_mem_drops", s.buffers.rcvq_mem_drops),
        ("ofo_mem_drops", s.buffers.ofo_mem_drops),
        ("snd_mem_limited", s.buffers.snd_mem_limited),
        ("icmp_rx", i.rx_icmp),
        ("icmp6_param_problem", i.rx_icmp6_param_problem),
        ("icmp_param_problem", i.rx_icmp_param_problem),
        ("icmp_no_conn", e.icmp.no_connection),
        ("icmp_out_of_window", e.icmp.out_of_window),
        ("icmp_pmtu_lowered", e.icmp.pmtu_lowered),
        ("icmp_pmtu_unchanged", e.icmp.pmtu_unchanged),
        ("icmp_fatal", e.icmp.fatal),
        ("icmp_soft", e.icmp.soft),
        ("mtu_black_holes", e.icmp.black_hole_mss_lowered),
    ]
}

/// Report lines: (title, counter names) for the text form.
const SECTIONS: [(&str, &[&str]); 11] = [
    (
        "states",
        &[
            "listen",
            "syn_sent",
            "syn_received",
            "established",
            "fin_wait1",
            "fin_wait2",
            "close_wait",
            "closing",
            "last_ack",
            "time_wait",
            "closed",
            "orphans",
        ],
    ),
    (
        "conns",
        &["conns_opened", "conns_freed", "connect_rss_miss"],
    ),
    (
        "cookies",
        &["cookies_sent", "cookies_accepted", "cookies_rejected"],
    ),
    (
        "resets",
        &[
            "rst_closed",
            "rst_listen_bad_ack",
            "rst_accept_overflow",
            "challenge_acks_sent",
            "acks_skipped",
            "aborted_on_memory",
        ],
    ),
    (
        "drops",
        &[
            "syn_dropped",
            "listen_overflows",
            "conn_limit_drops",
            "tw_overflow",
            "malformed_in",
            "martian_src_in",
            "bad_flags_in",
            "no_listener",
            "control_dropped",
            "rx_checksum",
            "rx_truncated",
            "rx_malformed",
            "rx_unsupported",
            "rx_not_ours",
            "tx_full",
            "tx_no_route",
            "tx_neigh_dropped",
            "handoff_dropped",
            "neigh_netlink_errors",
        ],
    ),
    (
        "flow",
        &[
            "data_segs_in",
            "pure_acks_in",
            "data_segs_out",
            "retrans_segs",
            "pure_acks_out",
            "tx_app_limited",
            "tx_sndbuf_limited",
            "tx_rwnd_limited",
            "tx_cwnd_limited",
            "tx_small_held",
        ],
    ),
    (
        "handoff",
        &[
            "rx_misdirected",
            "handoff_sent",
            "handoff_received",
            "handoff_dropped",
        ],
    ),
    (
        "timewait",
        &[
            "tw_entered",
            "tw_reopened",
            "tw_acks",
            "tw_reused",
            "tw_expired",
            "tw_rst_ignored",
            "tw_killed",
            "tw_acks_skipped",
        ],
    ),
    (
        "device",
        &["dev_rx_frames", "dev_tx_frames", "dev_rx_dropped"],
    ),
    (
        "memory",
        &[
            "time_wait_bytes",
            "buf_out_bytes",
            "buf_pool_bytes",
            "buf_pool_allocated",
            "buf_pool_released",
            "mem_ooo_bytes",
            "mem_pressure",
            "mem_pressure_entered",
            "ofo_pruned",
            "ofo_pruned_bytes",
            "rcvq_mem_drops",
            "ofo_mem_drops",
            "snd_mem_limited",
        ],
    ),
    (
        "icmp",
        &[
            "icmp_rx",
            "icmp6_param_problem",
            "icmp_param_problem",
            "icmp_no_conn",
            "icmp_out_of_window",
            "icmp_pmtu_lowered",
            "icmp_pmtu_unchanged",
            "icmp_fatal",
            "icmp_soft",
            "mtu_black_holes",
        ],
    ),
];

fn line(out: &mut String, who: &str, title: &str, names: &[&str], c: &[(&str, u64)]) {
    let _ = write!(out, "{who:<8} {title:<8}");
    for n in names {
        let v = c.iter().find(|(k, _)| k == n).map_or(0, |(_, v)| *v);
        let _ = write!(out, " {n} {v}");
    }
    out.push('\n');
}

fn totals(snaps: &[WorkerSnapshot]) -> Vec<(&'static str, u64)> {
    let mut t: Vec<(&'static str, u64)> = Vec::new();
    for s in snaps {
        for (i, (k, v)) in counters(s).into_iter().enumerate() {
            match t.get_mut(i) {
                Some(e) => e.1 += v,
                None => t.push((k, v)),
            }
        }
    }
    t
}

/// The text report: per worker and total, one line per section; then the listeners.
pub fn report_text(meta: &StatMeta, snaps: &[WorkerSnapshot]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "xdptcp serve pid {} on {} {}: {} workers",
        meta.pid,
        meta.ifname,
        meta.addr,
        snaps.len()
    );
    let per: Vec<_> = snaps.iter().map(counters).collect();
    let tot = totals(snaps);
    for (title, names) in SECTIONS {
        for (w, c) in per.iter().enumerate() {
            line(&mut out, &format!("worker{w}"), title, names, c);
        }
        line(&mut out, "total", title, names, &tot);
    }
    if let Some(x) = &meta.xdp {
        let _ = write!(out, "{:<8} {:<8}", "xdp", "cookies");
        for (k, v) in x.counters() {
            let _ = write!(out, " {k} {v}");
        }
        out.push('\n');
    }
    if let Some(r) = &meta.routes {
        let _ = write!(out, "{:<8} {:<8}", "process", "routes");
        for (k, v) in r.counters() {
            let _ = write!(out, " {k} {v}");
        }
        out.push('\n');
    }
    for (w, s) in snaps.iter().enumerate() {
        for l in s.listeners() {
            let _ = writeln!(
                out,
                "worker{w:<2} listener {}:{} syn_queue {} accept_queue {} listen_overflows {} \
                 listen_drops {} cookies_sent {}",
                l.addr,
                l.port,
                l.syn_queue,
                l.accept_queue,
                l.stats.listen_overflows,
                l.stats.listen_drops,
                l.stats.cookies_sent
            );
        }
    }
    out
}

/// The JSON report: `{"iface","addr","pid","workers":[{...}],"total":{...}}`.
pub fn report_json(meta: &StatMeta, snaps: &[WorkerSnapshot]) -> String {
    fn obj(out: &mut String, c: &[(&str, u64)]) {
        out.push('{');
        for (i, (k, v)) in c.iter().enumerate() {
            let _ = write!(out, "{}\"{k}\":{v}", if i > 0 { "," } else { "" });
        }
    }
    let mut out = String::new();
    // Interface names cannot hold quotes or backslashes (dev_valid_name forbids only '/',
    // ':' and whitespace...), so escape them anyway.
    let name: String = meta
        .ifname
        .chars()
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c if c.is_control() => vec![],
            c => vec![c],
        })
        .collect();
    let _ = write!(
        out,
        "{{\"iface\":\"{name}\",\"addr\":\"{}\",\"pid\":{},\"workers\":[",
        meta.addr, meta.pid
    );
    for (w, s) in snaps.iter().enumerate() {
        if w > 0 {
            out.push(',');
        }
        obj(&mut out, &counters(s));
        // The snapshot's time (worker clock, ns): rates between two reports are exact.
        let _ = write!(out, ",\"at_ns\":{}", s.at.as_nanos());
        let _ = write!(out, ",\"worker\":{w},\"listeners\":[");
        for (i, l) in s.listeners().iter().enumerate() {
            let _ = write!(
                out,
                "{}{{\"addr\":\"{}\",\"port\":{},\"syn_queue\":{},\"accept_queue\":{}}}",
                if i > 0 { "," } else { "" },
                l.addr,
                l.port,
                l.syn_queue,
                l.accept_queue
            );
        }
        out.push_str("]}");
    }
    out.push_str("],\"total\":");
    obj(&mut out, &totals(snaps));
    out.push('}');
    if let Some(x) = &meta.xdp {
        out.push_str(",\"xdp\":");
        obj(&mut out, &x.counters());
        out.push('}');
    }
    if let Some(r) = &meta.routes {
        out.push_str(",\"routes\":");
        obj(&mut out, &r.counters());
        out.push('}');
    }
    out.push_str("}\n");
    out
}

/// The non-zero state counts as `established 3, time_wait 2` (or `none`).
fn states_line(c: &StateCounts) -> String {
    let all = [
        ("listen", c.listen),
        ("syn_sent", c.syn_sent),
        ("syn_received", c.syn_received),
        ("established", c.established),
        ("fin_wait1", c.fin_wait1),
        ("fin_wait2", c.fin_wait2),
        ("close_wait", c.close_wait),
        ("closing", c.closing),
        ("last_ack", c.last_ack),
        ("time_wait", c.time_wait),
        ("closed", c.closed),
    ];
    let parts: Vec<String> = all
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

/// The stop summary of one worker: loop, TCP, flow (flow.rs counters) and drop lines, each
/// starting with `xdptcp: ` (what `serve` prints when it stops; the bench keeps them).
pub fn summary_lines(s: &WorkerSnapshot) -> Vec<String> {
    let mut v = Vec::new();
    let l = &s.looping;
    let e = &s.endpoint;
    let i = &s.iface;
    v.push(format!(
        "xdptcp: worker {}: loop: {} iterations ({} busy, {} idle; busy {} ms, idle {} ms); \
         rx {} frames, tx {} segments",
        s.worker,
        l.iterations,
        l.busy_iterations,
        l.idle_iterations,
        l.busy_ns / 1_000_000,
        l.idle_ns / 1_000_000,
        l.rx_packets,
        l.tx_packets
    ));
    v.push(format!(
        "xdptcp: tcp: {} opened, {} freed, {} segments in, {} out, {} resets to closed ports, \
         {} TIME-WAIT entered, {} cookies sent; states: {}",
        e.conns_opened,
        e.conns_freed,
        e.segments_in,
        e.segments_out,
        e.rst_closed,
        e.tw_entered,
        e.cookies_sent,
        states_line(&s.states)
    ));
    let f = &e.flow;
    v.push(format!(
        "xdptcp: flow: in {} data segments ({} bytes), {} pure ACKs; out {} data segments \
         ({} bytes), {} retransmitted, {} pure ACKs; transmit rounds ended by: app {}, \
         send buffer {}, peer window {}, cwnd {}, nagle/sws {}",
        f.data_segs_in,
        f.data_bytes_in,
        f.pure_acks_in,
        f.data_segs_out,
        f.data_bytes_out,
        f.retrans_segs,
        f.pure_acks_out,
        f.tx_app_limited,
        f.tx_sndbuf_limited,
        f.tx_rwnd_limited,
        f.tx_cwnd_limited,
        f.tx_small_held
    ));
    v.push(format!(
        "xdptcp: drops: checksum {}, truncated {}, malformed {}, unsupported {}, not ours {}, \
         tx full {}, neighbour {}; hand-offs sent {}, received {}, dropped {}",
        i.rx_checksum,
        i.rx_truncated,
        i.rx_malformed,
        i.rx_unsupported,
        i.rx_not_ours,
        i.tx_full,
        i.tx_neigh_dropped,
        i.handoff_sent,
        i.handoff_received,
        i.handoff_dropped
    ));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::ListenerSnapshot;

    fn meta() -> StatMeta {
        StatMeta {
            ifname: "xts-1".into(),
            addr: std::net::Ipv4Addr::new(198, 18, 0, 1).into(),
            pid: 42,
            xdp: None,
            routes: None,
        }
    }

    fn snaps() -> Vec<WorkerSnapshot> {
        let mut a = WorkerSnapshot::default();
        a.states.established = 3;
        a.states.listen = 1;
        a.iface.handoff_received = 5;
        a.listeners[0] = ListenerSnapshot {
            port: 7,
            syn_queue: 2,
            accept_queue: 1,
            ..ListenerSnapshot::default()
        };
        a.listener_count = 1;
        let mut b = WorkerSnapshot::default();
        b.states.established = 4;
        b.states.listen = 1;
        b.iface.handoff_sent = 5;
        vec![a, b]
    }

    #[test]
    fn text_report_has_per_worker_and_total_lines() {
        let r = report_text(&meta(), &snaps());
        assert!(
            r.starts_with("xdptcp serve pid 42 on xts-1 198.18.0.1: 2 workers\n"),
            "{r}"
        );
        let states: Vec<&str> = r.lines().filter(|l| l.contains(" states ")).collect();
        assert_eq!(states.len(), 3, "{r}");
        assert!(
            states[0].starts_with("worker0  states   listen 1 syn_sent 0"),
            "{r}"
        );
        assert!(states[2].contains(" established 7 "), "{r}");
        let h = r
            .lines()
            .find(|l| l.starts_with("total    handoff"))
            .unwrap();
        assert_eq!(
            h,
            "total    handoff  rx_misdirected 0 handoff_sent 5 handoff_received 5 handoff_dropped 0"
        );
        assert!(
            r.contains("worker0  listener 0.0.0.0:7 syn_queue 2 accept_queue 1 listen_overflows 0")
        );
    }

    #[test]
    fn json_report_shape() {
        let r = report_json(&meta(), &snaps());
        assert!(r.starts_with("{\"iface\":\"xts-1\",\"addr\":\"198.18.0.1\",\"pid\":42,\"workers\":[{\"listen\":1,"), "{r}");
        assert!(r.contains("\"worker\":0,\"listeners\":[{\"addr\":\"0.0.0.0\",\"port\":7,\"syn_queue\":2,\"accept_queue\":1}]}"), "{r}");
        assert!(r.contains("\"total\":{\"listen\":2,"), "{r}");
        assert!(r.contains("\"established\":7,"), "{r}");
        assert!(
            r.contains(",\"buf_pool_released\":0,\"mem_ooo_bytes\":0,"),
            "{r}"
        );
        assert!(
            r.contains(",\"mtu_black_holes\":0,\"at_ns\":0,\"worker\":0,"),
            "{r}"
        );
        assert!(r.contains("\"tw_reopened\":0,\"tw_acks\":0,"), "{r}");
        assert!(r.ends_with("}}\n"));
        // Balanced braces and brackets.
        let depth = r.chars().fold(0i32, |d, c| match c {
            '{' | '[' => d + 1,
            '}' | ']' => d - 1,
            _ => d,
        });
        assert_eq!(depth, 0);
    }

    #[test]
    fn xdp_cookie_counters_in_both_reports() {
        let x = std::sync::Arc::new(XdpCookieStats::default());
        x.syn_acks.store(41, std::sync::atomic::Ordering::Relaxed);
        x.mode_flips.store(2, std::sync::atomic::Ordering::Relaxed);
        let m = StatMeta {
            xdp: Some(x),
            ..meta()
        };
        let t = report_text(&m, &snaps());
        assert!(
            t.contains("xdp      cookies  xdp_cookie_syn_acks 41 xdp_cookie_slow 0 xdp_cookie_mode_flips 2 xdp_cookie_rotations 0\n"),
            "{t}"
        );
        let j = report_json(&m, &snaps());
        assert!(
            j.ends_with("},\"xdp\":{\"xdp_cookie_syn_acks\":41,\"xdp_cookie_slow\":0,\"xdp_cookie_mode_flips\":2,\"xdp_cookie_rotations\":0}}\n"),
            "{j}"
        );
        let depth = j.chars().fold(0i32, |d, c| match c {
            '{' | '[' => d + 1,
            '}' | ']' => d - 1,
            _ => d,
        });
        assert_eq!(depth, 0);
    }

    /// docs/security.md's table of every bound, limit and counter names every `--set` key,
    /// every `xdptcp stat` counter and every process counter (so a new one is documented
    /// with its default there).
    #[test]
    fn security_doc_lists_every_counter_and_key() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/security.md");
        let doc = std::fs::read_to_string(path).expect("docs/security.md");
        let table = doc
            .split_once("## Every bound, limit and counter")
            .expect("the section")
            .1;
        let mut names: Vec<String> = counters(&WorkerSnapshot::default())
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect();
        names.extend(RouteStats::default().counters().map(|(k, _)| k.to_string()));
        names.extend(
            XdpCookieStats::default()
                .counters()
                .map(|(k, _)| k.to_string()),
        );
        names.extend(
            crate::tcp::TcpConfig::keys()
                .into_iter()
                .map(|k| k.name.to_string()),
        );
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !table.contains(&format!("`{n}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "not in docs/security.md's table: {missing:?}"
        );
    }
}
