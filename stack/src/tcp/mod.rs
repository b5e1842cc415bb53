//! The sans-IO TCP core (RFC 9293): no I/O and no clock reads; time is a parameter,
//! segments in, segments out.

pub mod config;
pub mod cookie;
pub mod isn;
pub mod listener;
pub mod synqueue;
pub mod tuple;

pub use config::TcpConfig;
pub use tuple::FourTuple;
