//! What a run is made of, by name: the pairings, the scenarios, the server applications, the
//! client kinds, and the stack's TCP settings of a run. The bottom of the bench: it imports
//! nothing else of the crate, so every layer (servers, clients, reports, scenarios) can name
//! these without importing the layers that use them.

use crate::error::{bail, Result};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Pairing {
    /// xdptcp client ↔ xdptcp server.
    StackStack,
    /// Linux (mio/epoll) client ↔ Linux (mio/epoll) server: the baseline of every ratio.
    LinuxLinux,
    /// Linux client → xdptcp server.
    #[serde(rename = "linux-stack")]
    #[value(name = "linux-stack")]
    LinuxToStack,
    /// xdptcp client → Linux server: the stack's load generator against the kernel, so that
    /// a stack server (`stack-stack`) can be read against the Linux server with the same
    /// client (cps, rr and the app scenarios).
    #[serde(rename = "stack-linux")]
    #[value(name = "stack-linux")]
    StackToLinux,
    /// Linux ↔ Linux with TSO/GSO/GRO/LRO and checksum offloads off on both ends, MTU 1500
    /// (netns::OffloadsOff): the kernel moving the stack's segment size. Single-flow bulk
    /// only: the bulk target compares the stack with Linux both with and without offloads.
    #[serde(rename = "linux-linux-nooff")]
    #[value(name = "linux-linux-nooff")]
    LinuxLinuxNoOffload,
}

/// Server applications; the first four are the `xdptcp serve --listen PORT=APP` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerApp {
    /// Echo everything, close when the peer closes.
    Echo,
    /// Read and drop.
    Discard,
    /// On accept send `bye\n` and close first (the server does the active close).
    CloseFirst,
    /// Write continuously until the peer closes (download direction of `bulk`).
    Source,
}

impl ServerApp {
    /// The APP name `xdptcp serve` takes, if it has this application.
    pub fn serve_name(self) -> Option<&'static str> {
        match self {
            ServerApp::Echo => Some("echo"),
            ServerApp::Discard => Some("discard"),
            ServerApp::CloseFirst => Some("close-first"),
            ServerApp::Source => Some("source"),
        }
    }
}

/// Which client implementation drives a pairing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Linux,
    Stack,
}

impl Pairing {
    pub const ALL: [Pairing; 5] = [
        Pairing::LinuxLinux,
        Pairing::LinuxLinuxNoOffload,
        Pairing::LinuxToStack,
        Pairing::StackToLinux,
        Pairing::StackStack,
    ];

    /// Whether this pairing runs `scen`: `linux-linux-nooff` only runs the single-flow bulk
    /// scenarios (the second baseline of the bulk target; it keeps the default suite short);
    /// `stack-linux` only cps and rr (the server-against-server reading of those figures).
    pub fn runs(self, scen: Scenario) -> bool {
        if self == Pairing::StackToLinux {
            return matches!(
                scen,
                Scenario::CpsClientClose
                    | Scenario::CpsServerClose
                    | Scenario::RrClosed
                    | Scenario::RrOpen
            );
        }
        if scen.is_mem() {
            // The attacker is a Linux client with raw sockets (memattack.rs); the baseline
            // runs where the attack does, to be read against it.
            return matches!(self, Pairing::LinuxLinux | Pairing::LinuxToStack);
        }
        self != Pairing::LinuxLinuxNoOffload
            || matches!(scen, Scenario::BulkUp | Scenario::BulkDown)
    }

    pub fn name(self) -> &'static str {
        match self {
            Pairing::StackStack => "stack-stack",
            Pairing::LinuxLinux => "linux-linux",
            Pairing::LinuxToStack => "linux-stack",
            Pairing::StackToLinux => "stack-linux",
            Pairing::LinuxLinuxNoOffload => "linux-linux-nooff",
        }
    }

    pub fn client_kind(self) -> ClientKind {
        match self {
            Pairing::StackStack | Pairing::StackToLinux => ClientKind::Stack,
            _ => ClientKind::Linux,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    CpsClientClose,
    CpsServerClose,
    RrClosed,
    RrOpen,
    BulkUp,
    BulkDown,
    BulkMultiUp,
    BulkMultiDown,
    Conns,
    /// Memory attacks (out-of-order data pinned by many connections, peers that never
    /// read) while a legitimate client runs request/response (memattack.rs).
    Mem,
    /// `mem`'s baseline: the same server (same `tcp_mem`) and the same legitimate client,
    /// without attackers or sinks, so the `mem` row reads against it.
    MemBase,
}

impl Scenario {
    pub const ALL: [Scenario; 11] = [
        Scenario::CpsClientClose,
        Scenario::CpsServerClose,
        Scenario::RrClosed,
        Scenario::RrOpen,
        Scenario::BulkUp,
        Scenario::BulkDown,
        Scenario::BulkMultiUp,
        Scenario::BulkMultiDown,
        Scenario::Conns,
        Scenario::MemBase,
        Scenario::Mem,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::CpsClientClose => "cps/client-close",
            Scenario::CpsServerClose => "cps/server-close",
            Scenario::RrClosed => "rr/closed",
            Scenario::RrOpen => "rr/open",
            Scenario::BulkUp => "bulk/1-up",
            Scenario::BulkDown => "bulk/1-down",
            Scenario::BulkMultiUp => "bulk/n-up",
            Scenario::BulkMultiDown => "bulk/n-down",
            Scenario::Conns => "conns",
            Scenario::Mem => "mem",
            Scenario::MemBase => "mem/base",
        }
    }

    /// Whether `--ipv6` runs it: cps, rr and bulk (conns and mem measure kernel memory and
    /// attack with IPv4 segments; they stay IPv4).
    pub fn runs_over_ipv6(self) -> bool {
        !matches!(self, Scenario::Conns | Scenario::Mem | Scenario::MemBase)
    }

    /// `mem` or its baseline (one driver, memattack.rs).
    pub fn is_mem(self) -> bool {
        matches!(self, Scenario::Mem | Scenario::MemBase)
    }

    pub fn app(self) -> ServerApp {
        match self {
            Scenario::CpsServerClose => ServerApp::CloseFirst,
            Scenario::BulkUp | Scenario::BulkMultiUp => ServerApp::Discard,
            Scenario::BulkDown | Scenario::BulkMultiDown => ServerApp::Source,
            _ => ServerApp::Echo,
        }
    }

    /// `xdptcp serve --set` settings this scenario adds: `mem` bounds the stack server's
    /// buffers by a small `tcp_mem` (256 KiB / 512 KiB / 1 MiB per worker) so the attack
    /// reaches it (its baseline too, so that only the attack differs). Linux's `tcp_mem` is
    /// host-wide and left alone.
    pub fn stack_sets(self) -> Vec<String> {
        match self {
            Scenario::Mem | Scenario::MemBase => {
                vec![format!("tcp_mem={}", MEM_SCENARIO_TCP_MEM)]
            }
            _ => Vec::new(),
        }
    }

    /// Expands names: a group (`cps`, `rr`, `bulk`, `conns`) or a full name (`rr/open`).
    pub fn parse_list(list: &str) -> Result<Vec<Scenario>> {
        let mut v = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let matched: Vec<Scenario> = Scenario::ALL
                .into_iter()
                .filter(|s| s.name() == item || s.name().split('/').next() == Some(item))
                .collect();
            if matched.is_empty() {
                bail!(
                    "unknown scenario `{item}` (groups: cps, rr, bulk, conns, mem, ceiling, all; or \
                     e.g. rr/open)"
                );
            }
            for s in matched {
                if !v.contains(&s) {
                    v.push(s);
                }
            }
        }
        Ok(v)
    }
}

/// The stack server's `tcp_mem` in the `mem` scenario (pages).
pub const MEM_SCENARIO_TCP_MEM: &str = "64,128,256";

/// `KEY=VALUE` TCP settings for both stack sides from `$XDPTCP_BENCH_STACK_SET`
/// (comma-separated, e.g. `tcp_wmem=16384,tcp_rmem=131072`): `xdptcp serve --set` and the
/// stack client's `TcpConfig::set`. For trying settings without a rebuild.
pub fn stack_sets() -> Vec<String> {
    std::env::var("XDPTCP_BENCH_STACK_SET")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
