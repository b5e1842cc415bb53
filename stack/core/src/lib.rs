//! xdptcp-core: the sans-IO core of the xdptcp stack.
//!
//! Everything here is a pure function of its inputs: no I/O, no clock reads (time is the
//! [`time::Instant`] the caller passes in), no `unsafe`, no state carried between calls in
//! thread-locals. Segments go in, segments and events come out; the runtime crate (`xdptcp`)
//! owns the devices, the clock and the threads.
//!
//! - [`wire`]: zero-copy views and parsed representations of Ethernet, ARP, IPv4, TCP.
//! - [`tcp`]: the TCP state machine (RFC 9293), one shard's [`tcp::Endpoint`], SYN cookies,
//!   TIME-WAIT, congestion control, settings named after Linux's sysctls.
//! - [`wheel`]: the per-shard hierarchical timer wheel.
//! - [`rss`]: which worker owns a flow (Toeplitz hash of the 4-tuple; ephemeral sub-ranges).
//! - [`time`]: `Instant` and `Duration` as values.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod hash;
pub mod rss;
pub mod tcp;
pub mod time;
pub mod wheel;
pub mod wire;
