//! Who serves and who connects in a run. Every scenario runs over the same veth pair with the
//! same core pinning in each pairing; only the endpoints change.
//!
//! The stack side: [`Pairing::start_server`] spawns
//! `xdptcp serve --iface IF --addr IP --listen PORT=APP --workers N [--core C]` inside the
//! server namespace ([`stack_serve_args`], [`xdptcp_serve_binary`]) with the Linux peer's
//! transmit checksum offload off while it runs ([`TxChecksumOff`]); [`Pairing::client_kind`]
//! names the in-process stack client ([`crate::stack_client`]) for stack ↔ stack.

use crate::error::{bail, Result};
pub use crate::kinds::{stack_sets, ClientKind, Pairing, Scenario, ServerApp};
use crate::linux_server::LinuxServer;
use crate::netns::VethNetns;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running server of any kind; stopping it is dropping it.
pub enum ServerHandle {
    Linux(LinuxServer),
    /// An `xdptcp serve` process in the server namespace; killed by PID on drop (then the
    /// peer's checksum offload comes back on).
    Process(Child, TxChecksumOff),
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let ServerHandle::Process(c, _) = self {
            // SAFETY: signals only the child we spawned, by its PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let _ = c.wait();
        }
    }
}

/// No `xdptcp` program found (see [`xdptcp_serve_binary`]).
pub const NEEDS_SERVE: &str =
    "no `xdptcp` program found: build it (cargo build --release -p xdptcp-bench) or set XDPTCP_BIN";

impl Pairing {
    /// Starts this pairing's server for `scen` (its application; for the stack also its
    /// `--set`s) on `port`; server threads go on `cores`.
    pub fn start_server(
        self,
        env: &VethNetns,
        scen: Scenario,
        port: u16,
        workers: usize,
        cores: &[usize],
        adaptive_idle: bool,
    ) -> Result<ServerHandle> {
        let app = scen.app();
        match self {
            Pairing::LinuxLinux | Pairing::LinuxLinuxNoOffload | Pairing::StackToLinux => {
                let addr = env.server_addr(port);
                let s = LinuxServer::start(&env.server_ns, addr, app, workers, cores)?;
                Ok(ServerHandle::Linux(s))
            }
            Pairing::LinuxToStack | Pairing::StackStack => start_stack_server(
                env,
                app,
                port,
                workers,
                cores,
                adaptive_idle,
                &scen.stack_sets(),
            ),
        }
    }
}

/// `xdptcp serve` in the server namespace (the stack side of [`Pairing::start_server`]), with
/// `extra_sets` (`KEY=VALUE`) after those of [`stack_sets`] (so they win).
pub fn start_stack_server(
    env: &VethNetns,
    app: ServerApp,
    port: u16,
    workers: usize,
    cores: &[usize],
    adaptive_idle: bool,
    extra_sets: &[String],
) -> Result<ServerHandle> {
    let Some(name) = app.serve_name() else {
        bail!("`xdptcp serve` has no app for {app:?}");
    };
    let Some(bin) = xdptcp_serve_binary() else {
        bail!("{NEEDS_SERVE}");
    };
    // The stack verifies TCP checksums: the Linux peer must send full ones.
    let offload = TxChecksumOff::set(&env.client_ns, &env.client_if)?;
    let mut args = stack_serve_args(&env.server_if, env.server_ip, port, name, workers);
    if let Some(a6) = env.server_ip6 {
        // `--ipv6`: dual-stack; the listener opens on the IPv6 address too.
        args.extend(["--addr".to_string(), a6.to_string()]);
    }
    if let (1, Some(core)) = (workers, cores.first()) {
        args.extend(["--core".to_string(), core.to_string()]);
    }
    if adaptive_idle {
        args.push("--adaptive-idle".into());
    }
    if env.zero_copy {
        args.push("--zero-copy".into());
    }
    // As the Linux server (`linux_server.rs`) sets TCP_NODELAY on accepted sockets.
    args.push("--nodelay".into());
    for kv in stack_sets().into_iter().chain(extra_sets.iter().cloned()) {
        args.extend(["--set".to_string(), kv]);
    }
    let child = Command::new("ip")
        .args(["netns", "exec", &env.server_ns])
        .arg(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped()) // a few lines: read at stop
        .spawn()?;
    // Readiness is checked by the caller with a probe connection.
    Ok(ServerHandle::Process(child, offload))
}

/// `ethtool -K IF tx off` in a namespace, undone on drop if it was on. A Linux peer on veth
/// with transmit checksum offload on sends partial checksums (PLATFORM.md), which the stack
/// drops. A NIC port is left alone: its hardware puts full checksums on the wire.
pub struct TxChecksumOff {
    ns: String,
    ifname: String,
    was_on: bool,
}

impl TxChecksumOff {
    pub fn set(ns: &str, ifname: &str) -> Result<Self> {
        let out = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-k", ifname])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let driver = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-i", ifname])
            .output()?;
        let veth = String::from_utf8_lossy(&driver.stdout)
            .lines()
            .any(|l| l.trim() == "driver: veth");
        let was_on = veth
            && text
                .lines()
                .any(|l| l.trim_start().starts_with("tx-checksumming: on"));
        if was_on {
            ethtool_tx(ns, ifname, "off")?;
        }
        Ok(TxChecksumOff {
            ns: ns.into(),
            ifname: ifname.into(),
            was_on,
        })
    }
}

impl Drop for TxChecksumOff {
    fn drop(&mut self) {
        // Back on for the Linux ↔ Linux baseline (TSO comes back with it).
        if self.was_on {
            let _ = ethtool_tx(&self.ns, &self.ifname, "on");
        }
    }
}

fn ethtool_tx(ns: &str, ifname: &str, on: &str) -> Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ethtool", "-K", ifname, "tx", on])
        .output()?;
    if !out.status.success() {
        bail!(
            "ethtool -K {ifname} tx {on}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The argument vector of the stack server (the `xdptcp serve` command line).
pub fn stack_serve_args(
    iface: &str,
    ip: std::net::Ipv4Addr,
    port: u16,
    app: &str,
    workers: usize,
) -> Vec<String> {
    vec![
        "serve".into(),
        "--iface".into(),
        iface.into(),
        "--addr".into(),
        ip.to_string(),
        "--listen".into(),
        format!("{port}={app}"),
        "--workers".into(),
        workers.to_string(),
    ]
}

impl ServerHandle {
    /// Stops the server; for an `xdptcp serve` process, returns what it printed (its start
    /// line and the statistics summary it prints on SIGTERM).
    pub fn stop(mut self) -> Option<String> {
        let ServerHandle::Process(c, _) = &mut self else {
            return None;
        };
        // SAFETY: signals only the child we spawned, by its PID.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        // It exits within milliseconds on SIGTERM; after 5 s it is killed (then its pipe
        // reaches EOF and the read below ends).
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while matches!(c.try_wait(), Ok(None)) && std::time::Instant::now() < end {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if matches!(c.try_wait(), Ok(None)) {
            let _ = c.kill();
        }
        let mut out = String::new();
        if let Some(mut so) = c.stdout.take() {
            use std::io::Read;
            let _ = so.by_ref().take(1 << 20).read_to_string(&mut out);
        }
        Some(out)
    }

    /// The server's process id, if it is a separate process.
    pub fn pid(&self) -> Option<u32> {
        match self {
            ServerHandle::Process(c, _) => Some(c.id()),
            ServerHandle::Linux(_) => None,
        }
    }
}

/// `$XDPTCP_BIN`, or `xdptcp-serve` (the `xdptcp` program built in this package, so never
/// older than the bench) or `xdptcp` next to this executable or one folder up (test binaries
/// live in `target/<profile>/deps/`): the first that answers `serve --help`.
pub fn xdptcp_serve_binary() -> Option<PathBuf> {
    let cands: Vec<PathBuf> = match std::env::var_os("XDPTCP_BIN") {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let exe = std::env::current_exe().ok()?;
            let dir = exe.parent()?;
            let mut v = Vec::new();
            for d in [Some(dir), dir.parent()].into_iter().flatten() {
                v.push(d.join("xdptcp-serve"));
                v.push(d.join("xdptcp"));
            }
            v
        }
    };
    cands.into_iter().find(|cand| {
        Command::new(cand)
            .args(["serve", "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_args_follow_the_serve_command_line() {
        let a = stack_serve_args("xbs1", "198.18.0.1".parse().unwrap(), 5001, "echo", 2);
        assert_eq!(
            a.join(" "),
            "serve --iface xbs1 --addr 198.18.0.1 --listen 5001=echo --workers 2"
        );
    }

    #[test]
    fn serve_names() {
        assert_eq!(ServerApp::CloseFirst.serve_name(), Some("close-first"));
        assert_eq!(ServerApp::Source.serve_name(), Some("source"));
        assert_eq!(Pairing::LinuxToStack.name(), "linux-stack");
        assert_eq!(Pairing::LinuxLinuxNoOffload.name(), "linux-linux-nooff");
        assert_eq!(Pairing::StackToLinux.name(), "stack-linux");
        assert_eq!(Pairing::StackToLinux.client_kind(), ClientKind::Stack);
        use crate::kinds::Scenario;
        for scen in Scenario::ALL {
            let bulk1 = matches!(scen, Scenario::BulkUp | Scenario::BulkDown);
            assert_eq!(
                Pairing::LinuxLinuxNoOffload.runs(scen),
                bulk1,
                "{}",
                scen.name()
            );
            // `mem`'s attacker is a Linux client (raw sockets): no stack client.
            let stack_client = !scen.is_mem();
            assert!(Pairing::LinuxLinux.runs(scen) && Pairing::LinuxToStack.runs(scen));
            let cps_rr = scen.name().starts_with("cps/") || scen.name().starts_with("rr/");
            assert_eq!(Pairing::StackToLinux.runs(scen), cps_rr, "{}", scen.name());
            assert_eq!(
                Pairing::StackStack.runs(scen),
                stack_client,
                "{}",
                scen.name()
            );
        }
        // The CLI value, the JSON value and the table column are the same name.
        for p in Pairing::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.name());
            let v = clap::ValueEnum::to_possible_value(&p).unwrap();
            assert_eq!(v.get_name(), p.name());
        }
    }
}
