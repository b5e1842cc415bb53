//! Root-only: `--ipv6` in short: cps (both close orders) and rr (closed and open loop) for
//! about a second each over IPv6 (2001:2::1 / 2001:2::2, added with `nodad` in the bench's
//! own namespaces) in every pairing that runs them: each measured something, no errors, no
//! failures; timings are not asserted. And the binary with `--ipv6`: its report names the
//! family, a bulk run measures, an IPv4-only scenario is refused with one line. Fails with
//! one line when not root.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;
use xdptcp_bench::netns::VethNetns;
use xdptcp_bench::pairing::Pairing;
use xdptcp_bench::report::ScenarioResult;
use xdptcp_bench::scenario::{run_one, Opts, Scenario};

fn metric(r: &ScenarioResult, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{} {}: no metric {name}", r.scenario, r.pairing.name()))
        .value
}

#[test]
fn cps_and_rr_over_ipv6() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "cps_and_rr_over_ipv6 needs root (network namespaces, XDP): run as root"
    );
    // The `xdptcp` program as built with this package (see pairing::xdptcp_serve_binary).
    std::env::set_var("XDPTCP_BIN", env!("CARGO_BIN_EXE_xdptcp-serve"));
    let mut env = VethNetns::create().expect("create veth pair");
    env.add_ipv6().expect("add the IPv6 addresses");
    assert_eq!(env.family(), "IPv6");
    assert_eq!(env.server_addr(7000).to_string(), "[2001:2::1]:7000");
    let opts = Opts {
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
    };
    let scens = [
        Scenario::CpsClientClose,
        Scenario::CpsServerClose,
        Scenario::RrClosed,
        Scenario::RrOpen,
    ];
    let pairings = [
        Pairing::LinuxLinux,
        Pairing::LinuxToStack,
        Pairing::StackToLinux,
        Pairing::StackStack,
    ];
    let mut port = 6400;
    for scen in scens {
        assert!(scen.runs_over_ipv6());
        for pairing in pairings {
            assert!(pairing.runs(scen));
            port += 1;
            let r = run_one(&env, pairing, scen, &opts, port);
            let what = format!("{} {} over IPv6", scen.name(), pairing.name());
            assert_eq!(r.error, None, "{what}");
            assert_eq!(r.pairing, pairing);
            let rate = match scen {
                Scenario::CpsClientClose | Scenario::CpsServerClose => "conn/s",
                _ => "req/s",
            };
            assert!(metric(&r, rate) > 0.0, "{what}");
            assert_eq!(metric(&r, "failed"), 0.0, "{what}");
            let h = &r.latencies[0].1;
            assert!(!h.is_empty() && h.min() > 0, "{what}");
            if matches!(pairing, Pairing::LinuxToStack | Pairing::StackStack) {
                // The stack server saw TCP over IPv6 (the Linux servers listen on
                // 2001:2::1 only, so their runs are IPv6 by construction).
                let seg6 = r.details["server_stat"]["rx_segments6"].as_u64();
                assert!(seg6.is_some_and(|n| n > 0), "{what}: {}", r.details);
            }
        }
    }
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdptcp-bench"))
        .args(args)
        .env("XDPTCP_BIN", env!("CARGO_BIN_EXE_xdptcp-serve"))
        .output()
        .expect("run xdptcp-bench")
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn binary_reports_ipv6() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "binary_reports_ipv6 needs root (network namespaces, XDP): run as root"
    );
    for scen in ["conns", "mem", "ceiling", "app/redis"] {
        let out = bench(&["--ipv6", "--scenarios", scen]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{scen}: {err}");
        assert_eq!(err.lines().count(), 1, "{scen}: {err}");
        assert!(err.contains("--ipv6 runs the cps, rr and bulk"), "{err}");
    }
    let dir =
        TempDir(std::env::temp_dir().join(format!("xdptcp-ipv6-test-{}", std::process::id())));
    let out = bench(&[
        "--ipv6",
        "--scenarios",
        "rr/closed,bulk/1-up",
        "--pairings",
        "linux-linux,linux-stack",
        "--duration",
        "1",
        "--out",
        dir.0.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let first = "address family: IPv6 (server 2001:2::1, client 2001:2::2)";
    assert_eq!(stdout.lines().next(), Some(first), "{stdout}");
    let run = std::fs::read_dir(&dir.0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let table = std::fs::read_to_string(run.join("table.txt")).unwrap();
    assert_eq!(table.lines().next(), Some(first), "{table}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(j["meta"]["family"], "IPv6");
    let rs = j["results"].as_array().unwrap();
    assert_eq!(rs.len(), 4, "{j}");
    for r in rs {
        assert_eq!(r["error"], serde_json::Value::Null, "{r}");
        let name = if r["scenario"] == "rr/closed" {
            "req/s"
        } else {
            "throughput"
        };
        let m = r["metrics"].as_array().unwrap();
        let v = m.iter().find(|m| m["name"] == name).unwrap()["value"]
            .as_f64()
            .unwrap();
        assert!(v > 0.0, "{r}");
        if r["pairing"] == "linux-stack" {
            // `xdptcp serve` had both addresses.
            let log = r["details"]["server_log"].to_string();
            assert!(log.contains("198.18.0.1,2001:2::1"), "{log}");
        }
    }
}
