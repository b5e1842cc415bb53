//! xdptcp: a kernel-bypass TCP/IP stack on Linux AF_XDP. This crate is the runtime: it
//! owns the devices, the clock and the threads, and drives the sans-IO core
//! ([`xdptcp_core`], re-exported here as [`tcp`], [`wire`], [`wheel`], [`rss`], [`time`]).
//!
//! Layers, bottom to top (see docs/architecture.md; a module only imports modules above it
//! in this list, never below):
//! - the core: [`wire`], [`tcp`], [`wheel`], [`rss`], [`time`];
//! - [`clock`]: the one place that reads `CLOCK_MONOTONIC`;
//! - [`cookies`]: the SYN-cookie secrets shared by the workers and the XDP program
//!   (`xdp_syncookies`), their rotation and the mode-1 flag policy;
//! - [`phy`]: the `Device` trait (batched RX/TX of Ethernet frames), the AF_XDP device,
//!   an in-memory device for tests and a seeded fault injector;
//! - [`neigh`]: next-hop MAC resolution from the kernel's neighbour table (netlink);
//! - [`app`]: the application interface and the built-in applications;
//! - [`handoff`]: the bounded mesh that carries a flow's frames to the worker that owns it;
//! - [`iface`]: one queue's loop iteration (device + wire + neighbours + endpoint + app);
//! - [`worker`]: the pinned run-to-completion loop around an interface;
//! - [`stack`]: the builder that brings a stack up on an interface ([`stack::Stack`]);
//! - [`control`]: the control side of a running stack: stop signals, the stat socket
//!   (`xdptcp stat`), the text reports and the Prometheus metrics server;
//! - [`launch`]: `xdptcp run`: a program with the POSIX layer preloaded (docs/posix.md);
//! - [`cli`]: the `xdptcp` program's command line (parsing and printing only).
//!
//! `tests/layers.rs` checks this order on every `cargo test`.

#![deny(missing_docs)]

pub use xdptcp_core::{hash, rss, tcp, time, wheel, wire};

pub mod app;
pub mod cli;
pub mod clock;
pub mod control;
pub mod cookies;
pub mod handoff;
pub mod iface;
pub mod launch;
pub mod neigh;
pub mod phy;
pub mod stack;
pub mod worker;
