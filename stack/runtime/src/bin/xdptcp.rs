//! `xdptcp`: see `xdptcp::cli` (serve / connect / stat).

fn main() {
    std::process::exit(xdptcp::cli::main());
}
