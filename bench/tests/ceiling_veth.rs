//! Root-only: the ceiling scenario for about a second per phase over a fresh veth pair with
//! the steering program attached. Checks that every phase counted frames and that the counts
//! are consistent (nothing received that was not sent), never timings. Fails with one line
//! when not root.

use std::time::Duration;
use xdptcp_bench::ceiling::{self, LARGE, SMALL};

#[test]
fn ceiling_counts_frames_in_every_phase() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "ceiling_counts_frames_in_every_phase needs root (network namespaces, XDP): run as root"
    );
    let c = ceiling::run(Duration::from_millis(250));
    assert_eq!(c.error, None, "{:#}", c.details);
    let tests: Vec<(&str, usize)> = c
        .rows
        .iter()
        .map(|r| (r.test.as_str(), r.frame_len))
        .collect();
    assert_eq!(
        tests,
        [
            ("rx", SMALL),
            ("rx", LARGE),
            ("tx", SMALL),
            ("tx", LARGE),
            ("l2fwd", SMALL)
        ]
    );
    for r in &c.rows {
        assert!(r.frames > 0 && r.seconds > 0.0 && r.mpps > 0.0, "{r:?}");
    }
    let d = &c.details;
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));

    // rx: the stack received only what the peer's socket sent (completed by its kernel), and
    // every received frame went through the steering program's redirect.
    let rx = c.row("rx", SMALL).unwrap().frames;
    let sent = n(&d["rx"]["counts"]["peer"]["tx_completed"]);
    assert!(rx <= sent, "stack received {rx} > {sent} sent: {d:#}");
    assert_eq!(c.row("rx", SMALL).unwrap().missing, sent - rx);
    assert!(
        sent <= n(&d["rx"]["counts"]["peer"]["tx_submitted"]),
        "{d:#}"
    );
    assert_eq!(n(&d["rx"]["counts"]["stack"]["rx_frames"]), rx, "{d:#}");
    assert!(n(&d["rx"]["steering_redirected"]) >= rx, "{d:#}");
    let rx = c.row("rx", LARGE).unwrap().frames;
    let r = &d[format!("rx_{LARGE}")];
    let sent = n(&r["counts"]["peer"]["tx_completed"]);
    assert!(rx <= sent, "stack received {rx} > {sent} sent: {r:#}");
    assert_eq!(n(&r["counts"]["stack"]["rx_frames"]), rx, "{r:#}");
    assert!(n(&r["steering_redirected"]) >= rx, "{r:#}");

    // tx: the peer interface counted at most what the stack's kernel completed.
    for len in [SMALL, LARGE] {
        let t = &d[format!("tx_{len}")];
        let got = c.row("tx", len).unwrap().frames;
        assert_eq!(n(&t["peer_rx_packets"]), got);
        assert!(got <= n(&t["stack"]["tx_completed"]) + 10, "{t:#}"); // + stray IPv6/ND
    }

    // l2fwd: what came back was forwarded by the stack, which forwarded only what was sent.
    let l = &d["l2fwd"];
    let back = c.row("l2fwd", SMALL).unwrap().frames;
    assert_eq!(n(&l["peer_returned"]), back);
    assert!(back <= n(&l["stack_forwarded"]), "{l:#}");
    assert!(n(&l["stack_forwarded"]) <= n(&l["peer_sent"]), "{l:#}");
}
