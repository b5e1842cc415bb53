//! `xdptcp`: see `xdptcp::cli` (serve / connect).

fn main() {
    std::process::exit(xdptcp::cli::main());
}
