//! veth/netns helpers for root-only integration tests and benchmarks.
//!
//! TODO(io helper).
