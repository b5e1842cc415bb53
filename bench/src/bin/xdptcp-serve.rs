//! The `xdptcp` program (`xdptcp::cli`) built inside this package, so that `cargo test` and
//! `cargo build -p xdptcp-bench` always have a server binary for the stack pairings: the
//! pairing uses `$XDPTCP_BIN`, else an `xdptcp` next to the bench binary, else this one.

fn main() {
    std::process::exit(xdptcp::cli::main());
}
