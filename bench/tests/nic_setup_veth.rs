//! Root-only: scripts/nic-setup.sh on a veth in a namespace this test creates (channels,
//! per-device busy-poll settings, MTU; idempotent second run; dry run; one-line errors), and
//! its RSS/channel logic against a fake `ethtool` that answers like an ice port (combined
//! channels, 52-byte key, indirection table, tcp4 hash fields), since this machine has no
//! NIC. Removes the namespace at the end, also on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/nic-setup.sh");

struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {out:?}");
}

fn setup(args: &[&str], path: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new(SCRIPT);
    c.args(args);
    if let Some(p) = path {
        let old = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{old}", p.display()));
    }
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("run nic-setup.sh");
    let (o, e) = (
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr),
    );
    (status.code().unwrap_or(-1), o.into_owned(), e.into_owned())
}

fn rx_queues(ns: &str, ifn: &str) -> usize {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "ls",
            &format!("/sys/class/net/{ifn}/queues"),
        ])
        .output()
        .expect("ls");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|q| q.starts_with("rx-"))
        .count()
}

/// A fake ethtool for an ice port: state in files under $FAKE (channels, table, key, hash).
const FAKE_ETHTOOL: &str = r#"#!/bin/bash
S=$FAKE
[ -f $S/ch ] || { echo 8 > $S/ch; echo 8 > $S/eq; echo xor > $S/hf; echo sd > $S/fh
  k=""; for i in $(seq 1 52); do k="$k:11"; done; echo ${k#:} > $S/key; }
echo "$*" >> $S/log
case $1 in
  -i) echo "driver: ice" ;;
  -l) for s in "Pre-set maximums:" "Current hardware settings:"; do echo "$s"
        echo "RX:		n/a"; echo "TX:		n/a"; echo "Other:		1"
        [ "$s" = "Pre-set maximums:" ] && echo "Combined:	16" || echo "Combined:	$(cat $S/ch)"; done ;;
  -L) echo $4 > $S/ch ;;
  -x) n=$(cat $S/eq); echo "RX flow hash indirection table for $2 with $(cat $S/ch) RX ring(s):"
      for r in 0 8 16 24; do printf '%5d:' $r; for i in $(seq $r $((r + 7))); do printf '%6d' $((i % n)); done; echo; done
      echo "RSS hash key:"; cat $S/key; echo "RSS hash function:"
      for f in toeplitz xor crc32; do [ $f = $(cat $S/hf) ] && echo "    $f: on" || echo "    $f: off"; done ;;
  -X) [ "$3" = default ] && cp $S/ch $S/eq
      shift 2; while [ $# -ge 2 ]; do case $1 in equal) echo $2 > $S/eq ;; hfunc) echo $2 > $S/hf ;;
        hkey) echo $2 > $S/key ;; esac; shift 2; done ;;
  -n) if [ "$3" = rx-flow-hash ]; then echo "TCP over IPV4 flows use these fields for computing Hash flow key:"
        echo "IP SA"; echo "IP DA"; grep -q n $S/fh && { echo "L4 bytes 0 & 1 [TCP/UDP src port]"; echo "L4 bytes 2 & 3 [TCP/UDP dst port]"; }
      else echo "16 RX rings available"; echo "Total 0 rules"; fi ;;
  -N) echo $5 > $S/fh ;;
  -k) echo "Features for $2:"; echo "ntuple-filters: on" ;;
  *) exit 1 ;;
esac
"#;

#[test]
fn nic_setup_on_veth_and_fake_ice() {
    assert!(
        xdptcp_bench::sys::is_root(),
        "nic_setup_on_veth_and_fake_ice needs root (network namespaces, veth): run as root"
    );
    let ns = Netns(format!("xt-nicsetup-{:x}", std::process::id()));
    let n = ns.0.as_str();
    ip(&["netns", "add", n]);
    #[rustfmt::skip]
    ip(&["-n", n, "link", "add", "xq0", "numtxqueues", "4", "numrxqueues", "4", "type", "veth",
         "peer", "name", "xq1", "numtxqueues", "4", "numrxqueues", "4"]);
    let base = [
        "xq0",
        "--netns",
        n,
        "--queues",
        "2",
        "--defer-irqs",
        "2",
        "--mtu",
        "3000",
    ];
    let (rc, out, err) = setup(&base, None);
    assert_eq!(rc, 0, "{out}{err}");
    for want in [
        "driver veth",
        "~ rx/tx channels: 4 -> 2",
        "~ napi_defer_hard_irqs: 0 -> 2",
        "~ MTU: 1500 -> 3000",
        "- RSS: not supported by veth",
        "- IRQ affinity: xq0 has no MSI IRQs",
        "nic-setup: 3 change(s)",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    assert_eq!(rx_queues(n, "xq0"), 2);
    // Idempotent.
    let (rc, out, _) = setup(&base, None);
    assert_eq!(rc, 0);
    assert!(
        out.contains("= rx/tx channels: 2") && out.contains("nic-setup: 0 change(s)"),
        "{out}"
    );
    // Dry run: says, does not do.
    let (rc, out, _) = setup(&["xq0", "--netns", n, "--queues", "1", "--dry-run"], None);
    assert_eq!(rc, 0);
    assert!(out.contains("~ rx/tx channels: 2 -> 1 (dry run"), "{out}");
    assert_eq!(rx_queues(n, "xq0"), 2);
    // One line on errors.
    for (args, want) in [
        (
            vec!["nope0", "--netns", n],
            "nic-setup: no interface 'nope0' in namespace",
        ),
        (
            vec!["xq0", "--netns", n, "--queues", "9"],
            "--queues 9: xq0 has at most 4 rx channels",
        ),
        (
            vec!["xq0", "--netns", n, "--queues", "x"],
            "--queues must be a number",
        ),
        (vec!["xq0", "--pause", "maybe"], "--pause must be on or off"),
    ] {
        let (rc, out, err) = setup(&args, None);
        assert_eq!(rc, 1, "{args:?}: {out}{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }

    // The RSS path, against the fake ice ethtool (the interface itself is the veth).
    let dir =
        TempDir(std::env::temp_dir().join(format!("xdptcp-fake-ethtool-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let fake = dir.0.join("ethtool");
    std::fs::write(&fake, FAKE_ETHTOOL).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var("FAKE", &dir.0);
    let ice = ["xq0", "--netns", n, "--queues", "4"];
    let (rc, out, err) = setup(&ice, Some(&dir.0));
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("driver ice"), "{out}");
    assert!(out.contains("~ combined channels: 8 -> 4"), "{out}");
    assert!(out.contains("~ RSS:"), "{out}");
    assert!(out.contains("~ tcp4 flow hash:"), "{out}");
    let state = |f: &str| {
        std::fs::read_to_string(dir.0.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        (state("ch"), state("eq"), state("hf"), state("fh")),
        ("4".into(), "4".into(), "toeplitz".into(), "sdfn".into())
    );
    // The Microsoft key (the stack's fallback) padded with zeros to ice's 52 bytes.
    let key = state("key");
    assert!(key.starts_with("6d:5a:56:da:25:5b:0e:c2:41:67"), "{key}");
    assert!(
        key.ends_with("01:fa:00:00:00:00:00:00:00:00:00:00:00:00"),
        "{key}"
    );
    assert_eq!(key.split(':').count(), 52);
    // Channels are set before the table is reset (a table pointing past the new count
    // makes -L fail on ice and mlx5).
    let log = state("log");
    let reset = log
        .lines()
        .position(|l| l.ends_with("default"))
        .expect(&log);
    let set = log.lines().position(|l| l.starts_with("-L")).expect(&log);
    assert!(reset < set, "{log}");
    let (rc, out, _) = setup(&ice, Some(&dir.0));
    assert_eq!(rc, 0);
    for want in [
        "= combined channels: 4",
        "= RSS table: equal 4 (32 entries)",
        "= RSS hash function: toeplitz",
        "= RSS key: 6d:5a:56:da:25:5b:0e:c2... (52 bytes)",
        "= tcp4 flow hash: addresses and ports (sdfn)",
        "nic-setup: 0 change(s)",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
}
