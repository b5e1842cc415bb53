//! Root-only: the `http` scenarios for about a second each, wrk against nginx (linux-linux)
//! and against `xdptcp serve --listen 80=http` (linux-stack) over a fresh veth pair. Checks
//! counts (requests > 0, no socket errors, no non-2xx responses, both servers' probe
//! responses the same size within a byte), never timings. Fails with one line when not root
//! or when wrk/nginx are missing.

use std::time::Duration;
use xdptcp_bench::http::{self, HttpOpts, HttpScenario};
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
fn wrk_against_nginx_and_the_stack() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "wrk_against_nginx_and_the_stack needs root (network namespaces, veth): run as root"
    );
    if let Some(m) = http::tools_missing() {
        panic!("{m}");
    }
    let env = VethNetns::create().expect("create veth pair");
    let o = HttpOpts {
        duration: Duration::from_secs(1),
        workers: 1,
        conns: 4,
        stack_adaptive_idle: false,
        zero_copy: false,
    };
    for h in HttpScenario::ALL {
        let mut sizes = Vec::new();
        for p in [Pairing::LinuxLinux, Pairing::LinuxToStack] {
            let r = http::run_one(&env, p, h, &o);
            let what = format!("{} {}", h.name(), p.name());
            assert_eq!(r.error, None, "{what}");
            assert_eq!(r.scenario, h.name());
            let n = metric(&r, "requests");
            assert!(n >= 1.0, "{what}: {n} requests");
            assert!(metric(&r, "req/s") > 0.0, "{what}");
            assert_eq!(metric(&r, "socket errors"), 0.0, "{what}: {}", r.details);
            assert_eq!(metric(&r, "non-2xx/3xx"), 0.0, "{what}: {}", r.details);
            assert_eq!(
                r.details["wrk"]["exact"], true,
                "{what}: the done() line was parsed"
            );
            let probe = r.details["probe_response"].as_str().unwrap().to_string();
            assert!(probe.starts_with("HTTP/1.1 200 OK\r\n"), "{what}: {probe}");
            assert!(
                probe.ends_with("\r\n\r\nhello from xdptcp\n"),
                "{what}: {probe}"
            );
            assert!(probe.contains("\r\nDate: "), "{what}: {probe}");
            sizes.push(probe.len());
            // In close mode every request was a connection the server closed.
            let per = metric(&r, "bytes per response");
            assert!(
                per > 100.0 && per < 200.0,
                "{what}: {per} bytes per response"
            );
        }
        // Same fields, same order: `Server: xdptcp` is one byte longer than `Server: nginx`.
        assert_eq!(
            sizes[1],
            sizes[0] + 1,
            "{}: probe sizes {sizes:?}",
            h.name()
        );
    }
    // wrk is a Linux client: the stack-stack pairing is refused with a reason.
    let r = http::run_one(&env, Pairing::StackStack, HttpScenario::Keepalive, &o);
    assert!(r.error.unwrap().contains("no stack-stack column"));
}
