//! Root-only: a NIC run (`--iface IF --peer-iface IF2 --queues N --zero-copy`) on a veth pair
//! made outside the bench, standing in for two ports cabled back to back. The binary must
//! move both ends into its namespaces, run the suite over them (Linux baseline and the stack
//! server, which falls back from zero-copy to copy mode on veth), and move them back; bad
//! flag combinations must fail with one line. Checks counts and placement, never timings.

use std::path::PathBuf;
use std::process::{Command, Output};

/// A veth pair in this namespace (no addresses), deleted on drop wherever it is left.
struct Ports {
    a: String,
    b: String,
}

impl Ports {
    fn new() -> Ports {
        let id = std::process::id();
        let p = Ports {
            a: format!("xna{id:x}"),
            b: format!("xnb{id:x}"),
        };
        let out = Command::new("ip")
            .args(["link", "add", &p.a, "type", "veth", "peer", "name", &p.b])
            .output()
            .expect("ip");
        assert!(out.status.success(), "ip link add: {out:?}");
        p
    }

    fn here(&self, ifn: &str) -> bool {
        std::path::Path::new("/sys/class/net").join(ifn).exists()
    }
}

impl Drop for Ports {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.a]).output();
    }
}

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdptcp-bench"))
        .args(args)
        .output()
        .expect("run xdptcp-bench")
}

/// The run failed with exactly one stderr line containing `want`.
fn one_line_error(out: &Output, want: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(want), "{err}");
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn nic_run_on_a_veth_pair_made_outside() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "nic_run_on_a_veth_pair_made_outside needs root (namespaces, moving interfaces): run as root"
    );
    if let Some(m) = xdptcp_bench::http::tools_missing() {
        panic!("{m}");
    }
    let ports = Ports::new();
    let (a, b) = (ports.a.as_str(), ports.b.as_str());
    one_line_error(&bench(&["--iface", a]), "needs --peer-iface");
    one_line_error(
        &bench(&["--iface", a, "--peer-iface", b, "--queues", "2"]),
        &format!("{a} has 1 receive queue(s), --queues 2 needs 2: run scripts/nic-setup.sh"),
    );
    one_line_error(
        &bench(&["--iface", a, "--peer-iface", "xdptcp-nope0"]),
        "no interface xdptcp-nope0",
    );
    one_line_error(
        &bench(&[
            "--iface",
            a,
            "--peer-iface",
            b,
            "--queues",
            "1",
            "--workers",
            "2",
        ]),
        "--queues 1 sets the server workers",
    );
    one_line_error(
        &bench(&[
            "--zero-copy",
            "--pairings",
            "linux-linux",
            "--scenarios",
            "rr",
        ]),
        "--zero-copy applies to the stack server",
    );
    assert!(
        ports.here(a) && ports.here(b),
        "failed runs leave the ports alone"
    );

    let dir = TempDir(std::env::temp_dir().join(format!("xdptcp-nic-test-{}", std::process::id())));
    let out = bench(&[
        "--iface",
        a,
        "--peer-iface",
        b,
        "--queues",
        "1",
        "--zero-copy",
        "--scenarios",
        "rr/closed,http/keepalive",
        "--pairings",
        "linux-linux,linux-stack",
        "--duration",
        "1",
        "--out",
        dir.0.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Both ends are back in this namespace.
    assert!(ports.here(a) && ports.here(b), "ports not moved back");
    let run = std::fs::read_dir(&dir.0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(j["meta"]["nic"]["iface"], a);
    assert_eq!(j["meta"]["nic"]["peer_iface"], b);
    assert_eq!(j["meta"]["zero_copy"], true);
    let rs = j["results"].as_array().unwrap();
    assert_eq!(rs.len(), 4, "{j}");
    for r in rs {
        assert_eq!(r["error"], serde_json::Value::Null, "{r}");
        let ok = r["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "req/s")
            .unwrap()["value"]
            .as_f64()
            .unwrap();
        assert!(ok > 0.0, "{r}");
        if r["pairing"] == "linux-stack" {
            // veth has no zero-copy: the server said so and ran in copy mode.
            let log = r["details"]["server_log"].to_string();
            assert!(log.contains("copy mode"), "{log}");
            assert!(log.contains(&format!("serving on {a} ")), "{log}");
        }
    }
}
