//! Root-only: every Linux ↔ Linux scenario for about a second over a fresh veth pair, checking
//! that it measured something sane (non-zero, no failures), never timings. Fails with one line
//! when not root.

use std::time::Duration;
use xdptcp_bench::netns::VethNetns;
use xdptcp_bench::pairing::Pairing;
use xdptcp_bench::report::ScenarioResult;
use xdptcp_bench::scenario::{run_one, Opts, Scenario};

fn metric(r: &ScenarioResult, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{}: no metric {name}", r.scenario))
        .value
}

#[test]
fn linux_scenarios_over_veth() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "linux_scenarios_over_veth needs root (network namespaces, veth): run as root"
    );
    let env = VethNetns::create().expect("create veth pair");
    // The kernel baseline keeps its offloads (the harness turns them off for the stack's tests).
    for (out, ifn) in [
        (
            env.pair.run_in_stack(&["ethtool", "-k", &env.server_if]),
            &env.server_if,
        ),
        (
            env.pair.run_in_peer(&["ethtool", "-k", &env.client_if]),
            &env.client_if,
        ),
    ] {
        let text = String::from_utf8(out.expect("ethtool -k").stdout).unwrap();
        for feature in ["tx-checksumming: on", "tcp-segmentation-offload: on"] {
            assert!(text.contains(feature), "{ifn}: no `{feature}` in:\n{text}");
        }
    }
    let opts = Opts {
        duration: Duration::from_secs(1),
        workers: 1,
        cps_concurrency: 8,
        rr_conns: 4,
        rate: 2000.0,
        bulk_flows: 2,
        conns: 200,
        max_ops: 10_000_000,
    };
    for (i, scen) in Scenario::ALL.into_iter().enumerate() {
        let r = run_one(&env, Pairing::LinuxLinux, scen, &opts, 6001 + i as u16);
        assert_eq!(r.error, None, "{}", scen.name());
        assert_eq!(r.scenario, scen.name());
        match scen {
            Scenario::CpsClientClose | Scenario::CpsServerClose => {
                assert!(metric(&r, "conn/s") > 0.0);
                assert!(metric(&r, "connections") >= 1.0);
                assert_eq!(metric(&r, "failed"), 0.0, "{}", scen.name());
                let names: Vec<&str> = r.latencies.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, ["handshake", "connection"]);
                // Every successful connection recorded one handshake; so did those still in
                // flight at the deadline (at most `cps_concurrency`).
                let (hs, ok) = (r.latencies[0].1.len() as f64, metric(&r, "connections"));
                assert!(
                    hs >= ok && hs <= ok + 8.0,
                    "{hs} handshakes, {ok} connections"
                );
                assert_eq!(r.latencies[1].1.len() as f64, ok);
            }
            Scenario::RrClosed | Scenario::RrOpen => {
                assert!(metric(&r, "req/s") > 0.0);
                assert_eq!(metric(&r, "failed"), 0.0, "{}", scen.name());
                let h = &r.latencies[0].1;
                assert!(!h.is_empty() && h.min() > 0);
                if scen == Scenario::RrOpen {
                    // Open loop sends at most rate × duration requests (+1 for the first tick).
                    assert!(h.len() <= 2001, "{}", h.len());
                }
            }
            Scenario::Conns => {
                assert_eq!(metric(&r, "conns held"), 200.0);
                // Client-closed connections are in TIME-WAIT in the client namespace. Run alone,
                // all 200 are; after the cps runs some (up to ~5 %) are missing from sock_diag's
                // dump (not understood yet, see the report), hence the tolerance.
                let tw = r.details["time_wait_entries"].as_u64().unwrap();
                assert!((100..=200).contains(&tw), "{}", r.details);
                assert!(metric(&r, "kernel slab per socket") != 0.0);
                assert_eq!(
                    r.details["sockstat_client_held"]["inuse"], 200,
                    "{}",
                    r.details
                );
            }
            _ => {
                assert!(metric(&r, "throughput") > 0.0, "{}", scen.name());
                assert_eq!(metric(&r, "failed flows"), 0.0);
            }
        }
    }
}

#[test]
fn stack_client_pairing_reports_missing_serve() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "stack_client_pairing_reports_missing_serve needs root (network namespaces): run as root"
    );
    let env = VethNetns::create().expect("create veth pair");
    let opts = Opts {
        duration: Duration::from_millis(100),
        workers: 1,
        cps_concurrency: 1,
        rr_conns: 1,
        rate: 1.0,
        bulk_flows: 1,
        conns: 1,
        max_ops: 1,
    };
    // Until issue 5's stack client lands, stack ↔ stack must say so instead of measuring.
    let r = run_one(&env, Pairing::StackStack, Scenario::RrClosed, &opts, 6100);
    assert!(r.metrics.is_empty());
    assert_eq!(r.error.as_deref(), Some(xdptcp_bench::pairing::NEEDS_SERVE));
}
