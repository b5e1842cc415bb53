//! Manual check of the steering program: attach to an interface, steer some ports, print the
//! counters once a second for a bounded time, detach on exit.
//!
//! `sudo ip netns exec xt-stack-0 cargo run -p xdptcp-xdp --example steer -- xts-0 10 8080 9090`
//! (interface, seconds, listening ports on any address).

use std::net::Ipv4Addr;
use std::time::Duration;

use xdptcp_xdp::{AttachOptions, Steering};

fn main() {
    if let Err(e) = run() {
        eprintln!("steer: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: steer IFNAME [SECONDS (max 3600)] [PORT...]";
    let ifname = args.next().ok_or(usage)?;
    let secs: u64 = args
        .next()
        .map_or(Ok(5), |s| s.parse())
        .map_err(|_| usage)?;
    let mut s = Steering::attach(&ifname, AttachOptions::default())?;
    for port in args {
        s.add_listen(Ipv4Addr::UNSPECIFIED, port.parse().map_err(|_| usage)?)?;
    }
    for _ in 0..secs.min(3600) {
        std::thread::sleep(Duration::from_secs(1));
        println!("{:?}", s.counters()?);
    }
    Ok(())
}
