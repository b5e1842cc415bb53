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

/// One-second runs with small counts: every scenario measures something, quickly.
fn short_opts() -> Opts {
    Opts {
        duration: Duration::from_secs(1),
        workers: 1,
        cps_concurrency: 8,
        rr_conns: 4,
        rate: 2000.0,
        bulk_flows: 2,
        conns: 200,
        client_addrs: 1,
        max_ops: 10_000_000,
        stack_adaptive_idle: false,
    }
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
    let opts = short_opts();
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
            Scenario::Mem => {
                // Memory under attack: the attack held memory and the legitimate client
                // was served without a failure.
                assert!(metric(&r, "server buffer memory held") > 0.0);
                assert!(metric(&r, "legit rr ok") > 0.0);
                assert_eq!(metric(&r, "legit rr failed"), 0.0);
            }
            Scenario::MemBase => {
                // The same client without the attack: served, nothing failed.
                assert!(metric(&r, "legit rr ok") > 0.0);
                assert_eq!(metric(&r, "legit rr failed"), 0.0);
                assert_eq!(r.details["attack"]["attackers"], 0, "{}", r.details);
            }
            _ => {
                assert!(metric(&r, "throughput") > 0.0, "{}", scen.name());
                assert_eq!(metric(&r, "failed flows"), 0.0);
            }
        }
    }
}

/// Linux → stack, stack ↔ stack and stack → Linux: cps (both close orders) and rr (closed
/// and open loop) for about a second each, with results and no failures (timings are not
/// asserted).
#[test]
fn stack_pairings_over_veth() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "stack_pairings_over_veth needs root (network namespaces, XDP): run as root"
    );
    // The `xdptcp` program as built with this package (see pairing::xdptcp_serve_binary).
    std::env::set_var("XDPTCP_BIN", env!("CARGO_BIN_EXE_xdptcp-serve"));
    let env = VethNetns::create().expect("create veth pair");
    let opts = short_opts();
    let scens = [
        Scenario::CpsClientClose,
        Scenario::CpsServerClose,
        Scenario::RrClosed,
        Scenario::RrOpen,
    ];
    let mut port = 6200;
    for pairing in [Pairing::LinuxToStack, Pairing::StackStack] {
        for scen in scens {
            port += 1;
            let r = run_one(&env, pairing, scen, &opts, port);
            let what = format!("{} {}", scen.name(), pairing.name());
            assert_eq!(r.error, None, "{what}");
            assert_eq!(r.pairing, pairing);
            // The serve's device counters, read over its stat socket before and after.
            assert!(metric(&r, "server rx frames/s") > 0.0, "{what}");
            assert!(metric(&r, "server tx frames/s") > 0.0, "{what}");
            assert!(r.details["server_stat"]["tw_acks"].is_u64(), "{what}");
            match scen {
                Scenario::CpsClientClose | Scenario::CpsServerClose => {
                    assert!(metric(&r, "conn/s") > 0.0, "{what}");
                    assert!(metric(&r, "connections") >= 1.0, "{what}");
                    assert_eq!(metric(&r, "failed"), 0.0, "{what}");
                    let (hs, ok) = (r.latencies[0].1.len() as f64, metric(&r, "connections"));
                    assert!(
                        hs >= ok && hs <= ok + 8.0,
                        "{what}: {hs} handshakes, {ok} ok"
                    );
                    assert_eq!(r.latencies[1].1.len() as f64, ok, "{what}");
                }
                _ => {
                    assert!(metric(&r, "req/s") > 0.0, "{what}");
                    assert_eq!(metric(&r, "failed"), 0.0, "{what}");
                    let h = &r.latencies[0].1;
                    assert!(!h.is_empty() && h.min() > 0, "{what}");
                    if scen == Scenario::RrOpen {
                        assert!(h.len() <= 2001, "{what}: {}", h.len());
                    }
                }
            }
        }
    }
    // Stack client → Linux server: the same scenarios measured, no failures; the server is
    // the kernel's (no serve counters), and the Linux server's checksum offload is back on.
    for scen in scens {
        port += 1;
        let r = run_one(&env, Pairing::StackToLinux, scen, &opts, port);
        let what = format!("{} stack-linux", scen.name());
        assert_eq!(r.error, None, "{what}");
        assert_eq!(metric(&r, "failed"), 0.0, "{what}");
        let rate = match scen {
            Scenario::CpsClientClose | Scenario::CpsServerClose => "conn/s",
            _ => "req/s",
        };
        assert!(metric(&r, rate) > 0.0, "{what}");
        assert!(
            r.metrics.iter().all(|m| !m.name.starts_with("server ")),
            "{what}"
        );
        assert!(
            !r.details["client_log"].is_null(),
            "{what}: the stack client's summary"
        );
    }
    let k = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &env.server_ns,
            "ethtool",
            "-k",
            &env.server_if,
        ])
        .output()
        .unwrap();
    let k = String::from_utf8_lossy(&k.stdout);
    assert!(k.contains("tx-checksumming: on"), "{k}");
}

/// Linux ↔ Linux with offloads off: both single-flow bulk directions measure something with
/// every offload of `netns::OFFLOADS` off on both ends during the run, and the default
/// offloads (TSO, checksums) are back on afterwards. The pairing skips other scenarios.
#[test]
fn linux_nooff_bulk_over_veth() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "linux_nooff_bulk_over_veth needs root (network namespaces, veth): run as root"
    );
    let env = VethNetns::create().expect("create veth pair");
    let opts = short_opts();
    let p = Pairing::LinuxLinuxNoOffload;
    let ran: Vec<Scenario> = Scenario::ALL.into_iter().filter(|&s| p.runs(s)).collect();
    assert_eq!(ran, [Scenario::BulkUp, Scenario::BulkDown]);
    for (i, scen) in ran.into_iter().enumerate() {
        let r = run_one(&env, p, scen, &opts, 6301 + i as u16);
        assert_eq!(r.error, None, "{}", scen.name());
        assert!(metric(&r, "throughput") > 0.0, "{}", scen.name());
        assert_eq!(metric(&r, "failed flows"), 0.0);
        for side in ["offloads_server", "offloads_client"] {
            let state = r.details[side].as_array().expect(side);
            assert_eq!(state.len(), xdptcp_bench::netns::OFFLOADS.len());
            for f in state {
                assert_eq!(f[1], false, "{side}: {f} on during the run: {}", r.details);
            }
        }
    }
    for (ns, ifn) in [
        (&env.server_ns, &env.server_if),
        (&env.client_ns, &env.client_if),
    ] {
        let state = xdptcp_bench::netns::offload_state(ns, ifn).unwrap();
        for k in ["tso", "tx"] {
            assert!(
                state.contains(&(k, true)),
                "{ifn}: {k} not restored: {state:?}"
            );
        }
    }
}
