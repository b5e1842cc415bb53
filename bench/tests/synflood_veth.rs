//! Root-only: the `synflood` section end to end at a modest flood rate (20,000 frames/s) and
//! 200 legitimate connections/s for one second per row, over its own veth pair. Checks the
//! rows' structure, that no legitimate connection or held connection was lost, that the
//! SYN-ACKs to spoofed sources came back to the client namespace (and died there), and that
//! each server's counters show the flood; never timings. Fails with one line when not root.

use std::time::Duration;
use xdptcp_bench::synflood::{self, FloodOpts, Server};

#[test]
fn synflood_rows_lose_nothing_legitimate_at_a_modest_rate() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "synflood_rows_lose_nothing_legitimate_at_a_modest_rate needs root (network \
         namespaces, XDP): run as root"
    );
    let s = synflood::run(&FloodOpts {
        duration: Duration::from_secs(1),
        legit_rate: 200.0,
        flood_rate: Some(20_000.0),
    });
    let table = synflood::table(&s, None);
    assert_eq!(s.error, None, "{table}");
    let names: Vec<(&str, &str)> = s
        .rows
        .iter()
        .map(|r| (r.server.as_str(), r.flood.as_str()))
        .collect();
    let mut want = Vec::new();
    for srv in Server::ALL {
        for f in ["none", "syn", "ack", "rst"] {
            want.push((srv.name(), f));
        }
    }
    assert_eq!(names, want, "{table}");
    for r in &s.rows {
        assert_eq!(r.error, None, "{table}");
        assert!(r.attempted >= 100, "{r:?}\n{table}");
        assert_eq!((r.completed, r.failed), (r.attempted, 0), "{table}");
        let c = |k: &str| r.counters.get(k).copied().unwrap_or(0);
        match r.flood.as_str() {
            "none" => assert_eq!(r.offered_pps, 0.0),
            "syn" => {
                assert!(r.offered_pps > 0.0, "{table}");
                // SYN-ACKs to 198.19/16 reached the client namespace and were dropped there.
                assert!(r.answered_pps > 0.0, "{table}");
                let answered = match r.server.as_str() {
                    "linux" => c("TcpExt.SyncookiesSent"),
                    "stack" => c("cookies_sent"),
                    _ => c("xdp_cookie_syn_acks"),
                };
                assert!(answered > 0, "{:?}\n{table}", r.counters);
            }
            "ack" => {
                assert!(r.offered_pps > 0.0 && r.answered_pps > 0.0, "{table}");
                let rejected = match r.server.as_str() {
                    "linux" => c("TcpExt.SyncookiesFailed"),
                    _ => c("cookies_rejected"),
                };
                assert!(rejected > 0, "{:?}\n{table}", r.counters);
            }
            _ => {
                assert!(r.offered_pps > 0.0, "{table}");
                let (ok, failed, dead) = r.held.expect("rst rows hold connections");
                assert!(ok > 0, "{table}");
                assert_eq!((failed, dead), (0, 0), "{table}");
            }
        }
    }
    let json = synflood::to_json(&s, None);
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(12));
}
