//! Root-only: the `app/*` scenarios end to end for about a second each over a fresh veth
//! pair: Debian nginx and redis-server on the kernel and under `xdptcp run`, driven by wrk,
//! redis-benchmark and the stack's load generator (HTTP, RESP), in every column each
//! scenario has.
//! Checks counts (every run measured something, no errors, the same page from every server),
//! never timings. Fails with one line when not root, when a program is missing, or when the
//! preload library is not built (`cargo build --release -p xdptcp-posix` first: this test
//! runs `xdptcp run` from the same target directory).

use std::time::Duration;
use xdptcp_bench::app::{self, AppOpts, AppScenario};
use xdptcp_bench::app_server;
use xdptcp_bench::netns::VethNetns;
use xdptcp_bench::pairing::Pairing;
use xdptcp_bench::report::ScenarioResult;

fn metric(r: &ScenarioResult, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{} {}: no metric {name}", r.scenario, r.pairing.name()))
        .value
}

#[test]
fn app_scenarios_run_end_to_end() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "app_scenarios_run_end_to_end needs root (network namespaces, veth): run as root"
    );
    for a in AppScenario::ALL {
        if let Some(m) = a.missing() {
            panic!("{m}");
        }
    }
    if let Err(e) = app_server::xdptcp_run_parts() {
        panic!("{e}");
    }
    let env = VethNetns::create().expect("create veth pair");
    let o = AppOpts {
        duration: Duration::from_secs(1),
        workers: 1,
        http_conns: 4,
        redis_clients: 4,
        redis_requests: 2000,
        stack_adaptive_idle: false,
        max_ops: 100_000_000,
    };
    let mut port = app::FIRST_PORT;
    for a in AppScenario::ALL {
        let mut probe_sizes = Vec::new();
        for p in Pairing::ALL.into_iter().filter(|&p| a.runs(p)) {
            let r = app::run_one(&env, p, a, &o, port);
            port += 1;
            let what = format!("{} {}", a.name(), p.name());
            assert_eq!(r.error, None, "{what}");
            assert_eq!(r.scenario, a.name());
            let under = r.details["server_under"].as_str().unwrap();
            let stack_server = matches!(p, Pairing::LinuxToStack | Pairing::StackStack);
            assert_eq!(under == "xdptcp run", stack_server, "{what}: {under}");
            if a == AppScenario::Redis {
                for t in ["SET", "GET"] {
                    let ops = metric(&r, &format!("{t} ops/s"));
                    assert!(ops > 0.0, "{what}: {t} {ops} ops/s: {}", r.details);
                    assert!(metric(&r, &format!("{t} latency p99")) > 0.0, "{what}");
                }
                continue;
            }
            let rate = if a == AppScenario::NginxClose {
                "conn/s"
            } else {
                "req/s"
            };
            assert!(metric(&r, rate) > 0.0, "{what}: {}", r.details);
            assert!(metric(&r, "requests") >= 1.0, "{what}");
            assert_eq!(metric(&r, "errors"), 0.0, "{what}: {}", r.details);
            // The stack client's latencies are histograms; wrk's are figures.
            let stack_client = matches!(p, Pairing::StackToLinux | Pairing::StackStack);
            let hist = r.latencies.iter().find(|(n, _)| n == "latency");
            assert_eq!(hist.is_some(), stack_client, "{what}");
            if let Some((_, h)) = hist {
                assert_eq!(h.len() as f64, metric(&r, "requests"), "{what}");
            }
            let probe = r.details["probe_response"].as_str().unwrap();
            assert!(
                probe.starts_with("HTTP/1.1 200 OK\r\nServer: nginx\r\n"),
                "{what}"
            );
            probe_sizes.push(r.details["probe_response_bytes"].as_u64().unwrap());
        }
        // nginx sends the same response bytes whatever its sockets are.
        probe_sizes.dedup();
        assert!(probe_sizes.len() <= 1, "{}: {probe_sizes:?}", a.name());
    }
    // Linux without offloads is a bulk baseline only: refused with a reason.
    let r = app::run_one(
        &env,
        Pairing::LinuxLinuxNoOffload,
        AppScenario::Redis,
        &o,
        port,
    );
    assert!(r.error.unwrap().contains("has no linux-linux-nooff column"));
}

/// `--workers 2`: nginx's stock model (a master, a worker per core) on a 2-queue veth, on the
/// kernel and under `xdptcp run --workers 2` (each worker claims a queue), with wrk and with
/// the stack's client; the two pairings the model cannot compare are refused with a reason.
#[test]
fn app_nginx_with_two_workers() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "app_nginx_with_two_workers needs root (network namespaces, veth): run as root"
    );
    if let Err(e) = app_server::xdptcp_run_parts() {
        panic!("{e}");
    }
    let env = VethNetns::create_with(2).expect("create a 2-queue veth pair");
    let o = AppOpts {
        duration: Duration::from_secs(1),
        workers: 2,
        http_conns: 8,
        redis_clients: 4,
        redis_requests: 2000,
        stack_adaptive_idle: false,
        max_ops: 100_000_000,
    };
    let mut port = app::FIRST_PORT;
    for p in [
        Pairing::LinuxLinux,
        Pairing::LinuxToStack,
        Pairing::StackStack,
    ] {
        let r = app::run_one(&env, p, AppScenario::NginxKeepalive, &o, port);
        port += 1;
        let what = format!("nginx-keepalive {}", p.name());
        assert_eq!(r.error, None, "{what}");
        assert!(metric(&r, "req/s") > 0.0, "{what}: {}", r.details);
        assert_eq!(metric(&r, "errors"), 0.0, "{what}: {}", r.details);
        assert!(
            r.details["server_argv"].to_string().contains("nginx"),
            "{what}"
        );
    }
    let r = app::run_one(
        &env,
        Pairing::StackToLinux,
        AppScenario::NginxKeepalive,
        &o,
        port,
    );
    assert!(r.error.unwrap().contains("stack-linux needs --workers 1"));
    let r = app::run_one(
        &env,
        Pairing::LinuxToStack,
        AppScenario::Redis,
        &o,
        port + 1,
    );
    assert!(r.error.unwrap().contains("run app/redis with --workers 1"));
}
