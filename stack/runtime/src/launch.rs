//! `xdptcp run`: runs a program with the POSIX layer (`libxdptcp_posix.so`, the
//! `xdptcp-posix` crate) preloaded, so its TCP sockets on the stack's address use the stack.
//! This module finds the library, builds the environment the library reads (docs/posix.md)
//! and `exec`s the program: its exit status and signals are its own.

use std::ffi::OsString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The library's file name (`cargo build --release -p xdptcp-posix`).
pub const LIBRARY: &str = "libxdptcp_posix.so";

/// What `xdptcp run` was asked for (already validated by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// The interface the stack attaches to (`XDPTCP_IFACE`).
    pub iface: String,
    /// The stack's IPv4 address on it, if any (`XDPTCP_ADDR`, first).
    pub addr: Option<Ipv4Addr>,
    /// Its IPv6 addresses on it (`XDPTCP_ADDR`, after the IPv4 one, comma-separated).
    pub addrs6: Vec<Ipv6Addr>,
    /// `KEY=VALUE` settings (joined with `;` into `XDPTCP_SET`).
    pub sets: Vec<String>,
    /// The ephemeral port range for the program's connects (`XDPTCP_EPHEMERAL`), inclusive.
    pub ephemeral: (u16, u16),
    /// Queues the program's worker processes claim (`XDPTCP_WORKERS`, docs/posix.md).
    pub workers: usize,
}

/// Why the program could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The preload library is not where it was looked for.
    #[error("{LIBRARY} not found at {0} (build it: cargo build --release -p xdptcp-posix, or set XDPTCP_PRELOAD)")]
    NoLibrary(PathBuf),
    /// `exec` of the program failed.
    #[error("cannot run {cmd}: {source}")]
    Exec {
        /// The program.
        cmd: String,
        /// What `exec` said.
        source: std::io::Error,
    },
}

/// The library: `$XDPTCP_PRELOAD` if set, else next to the running executable.
pub fn find_library() -> Result<PathBuf, LaunchError> {
    let p = match std::env::var_os("XDPTCP_PRELOAD") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(|d| d.join(LIBRARY)))
            .unwrap_or_else(|| PathBuf::from(LIBRARY)),
    };
    if p.is_file() {
        Ok(p)
    } else {
        Err(LaunchError::NoLibrary(p))
    }
}

impl RunSpec {
    /// `XDPTCP_ADDR`: the IPv4 address, then the IPv6 ones, comma-separated.
    pub fn addr_list(&self) -> String {
        self.addr
            .iter()
            .map(Ipv4Addr::to_string)
            .chain(self.addrs6.iter().map(Ipv6Addr::to_string))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The command with the library preloaded (in front of any `LD_PRELOAD` already set) and
/// the library's settings in the environment.
pub fn command(spec: &RunSpec, lib: &Path, program: &str, args: &[String]) -> Command {
    let mut preload = OsString::from(lib);
    if let Some(old) = std::env::var_os("LD_PRELOAD").filter(|o| !o.is_empty()) {
        preload.push(":");
        preload.push(old);
    }
    let mut c = Command::new(program);
    c.args(args)
        .env("LD_PRELOAD", preload)
        .env("XDPTCP_IFACE", &spec.iface)
        .env("XDPTCP_ADDR", spec.addr_list())
        .env("XDPTCP_SET", spec.sets.join(";"))
        .env(
            "XDPTCP_EPHEMERAL",
            format!("{}-{}", spec.ephemeral.0, spec.ephemeral.1),
        )
        .env("XDPTCP_WORKERS", spec.workers.to_string());
    c
}

/// Replaces this process with `program` (returns only on failure).
pub fn exec(spec: &RunSpec, program: &str, args: &[String]) -> LaunchError {
    let lib = match find_library() {
        Ok(l) => l,
        Err(e) => return e,
    };
    let source = command(spec, &lib, program, args).exec();
    LaunchError::Exec {
        cmd: program.to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_of_the_program() {
        let spec = RunSpec {
            iface: "xts-1".into(),
            addr: Some(Ipv4Addr::new(198, 18, 0, 1)),
            addrs6: vec![],
            sets: vec![
                "tcp_syncookies=2".into(),
                "tcp_rmem=4096 65536 1048576".into(),
            ],
            ephemeral: (61000, 61999),
            workers: 1,
        };
        let c = command(
            &spec,
            Path::new("/x/libxdptcp_posix.so"),
            "nginx",
            &["-g".into()],
        );
        let env: std::collections::HashMap<_, _> = c
            .get_envs()
            .map(|(k, v)| (k.to_str().unwrap(), v.unwrap().to_str().unwrap()))
            .collect();
        assert!(env["LD_PRELOAD"].starts_with("/x/libxdptcp_posix.so"));
        assert_eq!(env["XDPTCP_IFACE"], "xts-1");
        assert_eq!(env["XDPTCP_ADDR"], "198.18.0.1");
        let dual = RunSpec {
            addrs6: vec!["2001:2::1".parse().unwrap(), "2001:2::5".parse().unwrap()],
            ..spec.clone()
        };
        assert_eq!(dual.addr_list(), "198.18.0.1,2001:2::1,2001:2::5");
        let v6only = RunSpec { addr: None, ..dual };
        assert_eq!(v6only.addr_list(), "2001:2::1,2001:2::5");
        assert_eq!(
            env["XDPTCP_SET"],
            "tcp_syncookies=2;tcp_rmem=4096 65536 1048576"
        );
        assert_eq!(env["XDPTCP_EPHEMERAL"], "61000-61999");
        assert_eq!(env["XDPTCP_WORKERS"], "1");
        assert_eq!(c.get_program(), "nginx");
        assert_eq!(c.get_args().collect::<Vec<_>>(), ["-g"]);
    }

    #[test]
    fn missing_library_is_one_clear_line() {
        let e = LaunchError::NoLibrary(PathBuf::from("/nope/libxdptcp_posix.so"));
        let s = e.to_string();
        assert!(s.contains("cargo build --release -p xdptcp-posix") && !s.contains('\n'));
    }
}
