//! The sans-IO TCP core (RFC 9293): no I/O and no clock reads; time is a parameter,
//! segments in, segments out.

pub mod config;

pub use config::TcpConfig;
