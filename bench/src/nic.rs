//! NIC runs (docs/nic.md): `--iface IF --peer-iface IF2 [--queues N] [--zero-copy]`.
//!
//! Topology: two ports cabled back to back on this host (two ports of one card, or two
//! cards). The bench moves `IF` into its server namespace and `IF2` into its client
//! namespace ([`crate::netns::VethNetns::adopt`]), gives them 198.18.0.1/24 and
//! 198.18.0.2/24 and runs the unchanged suite over them: same pairings, same pinning, same
//! reports; only the link differs. At the end (also on failure, panic or SIGINT/SIGTERM) the
//! ports go back to the bench's own namespace ([`AdoptedPorts`]'s `Drop`) before the
//! namespaces are deleted. A veth pair created outside the bench stands in for two ports on a
//! machine without NICs (`tests/nic_veth.rs`).
//!
//! Why not a remote client: one host keeps one clock for latency, one set of core pins and
//! no remote orchestration; the price is that client and server share the host's cores and
//! PCIe (see docs/nic.md).

use crate::error::{bail, Context, Result};
use std::process::Command;

/// The checked NIC part of the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NicPlan {
    pub iface: String,
    pub peer_iface: String,
    /// `iface`'s receive queues (read before the move: a thread's `setns` does not change
    /// what `/sys/class/net` shows).
    pub rx_queues: usize,
}

/// Checks the flag combination; `Ok(None)` for the usual veth run. Every error is one line.
pub fn plan(
    iface: Option<&str>,
    peer_iface: Option<&str>,
    queues: Option<usize>,
    workers: Option<usize>,
) -> Result<Option<NicPlan>> {
    if let Some(q) = queues {
        if !(1..=64).contains(&q) {
            bail!("bad --queues {q}: 1..=64");
        }
        if workers.is_some_and(|w| w != q) {
            bail!("--queues {q} sets the server workers: drop --workers or make it {q}");
        }
    }
    let (iface, peer) = match (iface, peer_iface) {
        (None, None) => return Ok(None),
        (Some(i), None) => bail!(
            "--iface {i} needs --peer-iface IF2: the port cabled to it, which the bench moves \
             into the client namespace (docs/nic.md)"
        ),
        (None, Some(p)) => bail!("--peer-iface {p} needs --iface IF (the server port)"),
        (Some(i), Some(p)) if i == p => bail!("--iface and --peer-iface are both {i}"),
        (Some(i), Some(p)) => (i, p),
    };
    for ifn in [iface, peer] {
        check_port(ifn)?;
    }
    let want = queues.unwrap_or(1);
    let have = rx_queues(iface)?;
    if have < want {
        bail!(
            "{iface} has {have} receive queue(s), --queues {want} needs {want}: run \
             scripts/nic-setup.sh {iface} --queues {want}"
        );
    }
    Ok(Some(NicPlan {
        iface: iface.into(),
        peer_iface: peer.into(),
        rx_queues: have,
    }))
}

/// The port exists here and carries nothing the host needs (moving it away would cut it).
fn check_port(ifn: &str) -> Result<()> {
    if ifn.is_empty() || ifn.len() > 15 || ifn.contains(['/', ' ']) {
        bail!("bad interface name {ifn:?}");
    }
    if !std::path::Path::new("/sys/class/net").join(ifn).exists() {
        bail!("no interface {ifn} in this network namespace (ip link show)");
    }
    if ifn == "lo" {
        bail!("{ifn}: not a port");
    }
    let addrs = output("ip", &["-o", "addr", "show", "dev", ifn])?;
    if let Some(a) = addrs
        .lines()
        .find(|l| l.contains(" inet ") || (l.contains(" inet6 ") && l.contains("scope global")))
    {
        let a = a.split_whitespace().nth(3).unwrap_or("?");
        bail!(
            "{ifn} carries address {a}: the bench moves the port into a namespace; use a \
             dedicated port without addresses"
        );
    }
    let routes = output("ip", &["route", "show", "default"])?;
    if routes
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w == ["dev", ifn])
    {
        bail!("{ifn} carries the default route: use a dedicated port");
    }
    Ok(())
}

/// Receive queues the kernel has for `ifn` (its `queues/rx-*` entries: the active
/// channels on a NIC).
pub fn rx_queues(ifn: &str) -> Result<usize> {
    let dir = format!("/sys/class/net/{ifn}/queues");
    let n = std::fs::read_dir(&dir)
        .with_context(|| format!("read {dir}"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .count();
    Ok(n)
}

/// Runs `prog args`; its stdout, or an error with its stderr on a non-zero exit.
pub(crate) fn output(prog: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(prog)
        .args(args)
        .output()
        .with_context(|| format!("run {prog}"))?;
    if !out.status.success() {
        bail!(
            "{prog} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Ports moved into namespaces; moved back to this process's namespace on drop (and set up
/// again if they were up). A veth end left in a namespace would be destroyed with it, a
/// physical port would fall back to the initial namespace: either way, move back first.
#[derive(Debug, Default)]
pub struct AdoptedPorts {
    /// (interface, namespace it is in, was it up before).
    ports: Vec<(String, String, bool)>,
}

impl AdoptedPorts {
    /// Moves `ifn` into namespace `ns` (created by the caller) and records it.
    pub fn adopt(&mut self, ifn: &str, ns: &str) -> Result<()> {
        let flags = std::fs::read_to_string(format!("/sys/class/net/{ifn}/flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
        output("ip", &["link", "set", "dev", ifn, "netns", ns])?;
        self.ports.push((ifn.into(), ns.into(), flags & 1 != 0));
        Ok(())
    }
}

impl Drop for AdoptedPorts {
    fn drop(&mut self) {
        let me = std::process::id().to_string();
        for (ifn, ns, was_up) in self.ports.drain(..).rev() {
            let moved = Command::new("ip")
                .args(["-n", &ns, "link", "set", "dev", &ifn, "netns", &me])
                .output()
                .is_ok_and(|o| o.status.success());
            if !moved {
                eprintln!("xdptcp-bench: could not move {ifn} back from namespace {ns}");
                continue;
            }
            if was_up {
                let _ = Command::new("ip")
                    .args(["link", "set", "dev", &ifn, "up"])
                    .output();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_combinations() {
        assert_eq!(plan(None, None, None, None).unwrap(), None);
        assert_eq!(plan(None, None, Some(4), None).unwrap(), None);
        assert_eq!(plan(None, None, Some(2), Some(2)).unwrap(), None);
        let e = |r: Result<Option<NicPlan>>| r.unwrap_err().to_string();
        assert_eq!(
            e(plan(None, None, Some(2), Some(3))),
            "--queues 2 sets the server workers: drop --workers or make it 2"
        );
        assert_eq!(e(plan(None, None, Some(0), None)), "bad --queues 0: 1..=64");
        assert!(
            e(plan(Some("eth9"), None, None, None)).starts_with("--iface eth9 needs --peer-iface")
        );
        assert_eq!(
            e(plan(None, Some("eth9"), None, None)),
            "--peer-iface eth9 needs --iface IF (the server port)"
        );
        assert_eq!(
            e(plan(Some("a"), Some("a"), None, None)),
            "--iface and --peer-iface are both a"
        );
        assert_eq!(
            e(plan(Some("xdptcp-nope0"), Some("xdptcp-nope1"), None, None)),
            "no interface xdptcp-nope0 in this network namespace (ip link show)"
        );
        assert_eq!(
            e(plan(Some("a/b"), Some("c"), None, None)),
            "bad interface name \"a/b\""
        );
    }
}
