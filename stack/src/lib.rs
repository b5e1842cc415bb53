//! xdptcp: a kernel-bypass TCP/IP stack on Linux AF_XDP.
//!
//! Layers, bottom to top (see docs/architecture.md):
//! - [`phy`]: the `Device` trait (batched RX/TX of Ethernet frames), the AF_XDP device,
//!   an in-memory device for tests and a seeded fault injector.
//! - [`wire`]: zero-copy views and parsed representations of Ethernet, ARP, IPv4, TCP.
//! - [`neigh`]: next-hop MAC resolution from the kernel's neighbour table (netlink).
//! - [`tcp`]: the sans-IO TCP core: time is a parameter, segments in, segments out.
//! - [`wheel`]: the per-worker hierarchical timer wheel.
//! - [`sim`]: a deterministic discrete-event network simulator for two endpoints (tests).
//! - [`harness`]: veth/netns helpers for root-only integration tests and benchmarks.

pub mod app;
pub mod cli;
pub mod harness;
pub mod iface;
pub mod neigh;
pub mod phy;
pub mod sim;
pub mod tcp;
pub mod time;
pub mod wheel;
pub mod wire;
pub mod worker;
