//! xdptcp-posix: the POSIX socket layer. Loaded with `LD_PRELOAD` (by `xdptcp run`, or by
//! hand), it runs an unmodified application's TCP sockets on the xdptcp stack and leaves every
//! other descriptor (files, pipes, AF_UNIX, UDP, TCP to addresses the stack does not own) to
//! the kernel. It translates calls; the runtime (`xdptcp`) implements TCP (OpenOnload's split
//! between its `transport/unix` layer and the stack).
//!
//! Modules: [`addr`] (socket addresses of both families), [`config`] (environment), [`real`] (libc's definitions, raw syscalls), [`fdtab`]
//! (what each descriptor is, lock-free), [`state`] (the stack thread, the socket table,
//! readiness), [`ops`] (the calls on stack sockets), [`interpose`] (the exported symbols), [`fork`]
//! (one stack per process), [`creds`] (a forked worker that gives up root).
//! docs/posix.md describes the model and the status.

pub mod addr;
pub mod config;
pub mod creds;
pub mod epoll;
pub mod fdtab;
pub mod fork;
pub mod interpose;
pub mod ops;
pub mod opts;
pub mod real;
pub mod state;
