//! The CPU cost of a connection's life in the stack alone, no AF_XDP and no kernel: two
//! interfaces over the in-memory device pair, the `cps` bench client ([`BenchApp`], 32
//! attempts in flight, connect / 64-byte request / echo / close) against an `echo` server (or
//! `close-first` with `server-close`), both driven by one thread on the real clock. Prints
//! connections, CPU time per connection (both ends together) and frames per connection: the
//! figure to profile (`perf record -g`) and compare before/after a change to the connection
//! set-up / teardown path. Bounded: stops after `SECS` seconds.
//!
//! Run: `cargo run --release -p xdptcp-bench --bin cps_cpu [-- SECS [server-close]]`

use std::net::{Ipv4Addr, SocketAddrV4};
use xdptcp::app::server::{AppKind, Server};
use xdptcp::iface::{Interface, InterfaceConfig, StaticLink};
use xdptcp::phy::MemoryDevice;
use xdptcp::tcp::endpoint::{Endpoint, EndpointSecrets};
use xdptcp::tcp::TcpConfig;
use xdptcp::time::Duration;
use xdptcp_bench::stack_client::{BenchApp, Mode};

const S: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const C: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MS: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn iface(
    dev: MemoryDevice,
    addr: Ipv4Addr,
    mac: [u8; 6],
    peer: (Ipv4Addr, [u8; 6]),
    ports: std::ops::RangeInclusive<u16>,
) -> Interface<MemoryDevice, StaticLink> {
    let mut tcp = TcpConfig::default();
    tcp.set("tcp_tw_reuse", "1").expect("known key");
    let delay = xdptcp_bench::netns::TW_REUSE_DELAY_MS.to_string();
    tcp.set("tcp_tw_reuse_delay", &delay).expect("known key");
    let ep = Endpoint::new(tcp, EndpointSecrets::from_seed(u64::from(mac[5])), ports);
    Interface::new(
        dev,
        StaticLink::new(&[peer]),
        ep,
        InterfaceConfig::new(addr, mac),
    )
}

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let server_closes = args.get(2).is_some_and(|s| s == "server-close");
    let (ds, dc) = MemoryDevice::pair(1514, 4096);
    let mut s = iface(ds, S, MS, (C, MC), 40_000..=40_999);
    let mut c = iface(dc, C, MC, (S, MS), 10_000..=65_000);
    let app = if server_closes {
        AppKind::CloseFirst
    } else {
        AppKind::Echo
    };
    let mut server = Server::new(4096);
    server.add(7, app.build());
    let mode = Mode::Cps {
        concurrency: 32,
        server_closes,
    };
    let mut client = BenchApp::new(mode, SocketAddrV4::new(S, 7), u64::MAX);
    let t0 = xdptcp::clock::now();
    s.start(t0, &mut server);
    c.start(t0, &mut client);
    let end = t0 + Duration::from_nanos((secs * 1e9) as u64);
    let (cpu0, mut iters) = (cpu_ns(), 0u64);
    loop {
        let t = xdptcp::clock::now();
        if t >= end {
            break;
        }
        client.tick(&mut c.app_io(t));
        c.poll(t, &mut client);
        s.poll(t, &mut server);
        iters += 1;
    }
    let cpu = cpu_ns() - cpu0;
    let frames = c.device_stats().tx_frames + s.device_stats().tx_frames;
    let n = client.ok.max(1);
    println!(
        "{}: {} connections ({} failed) in {:.2} s CPU, {iters} iterations: {:.0} ns CPU per \
         connection (both ends), {:.2} frames per connection",
        if server_closes {
            "server-close"
        } else {
            "client-close"
        },
        client.ok,
        client.failed,
        cpu as f64 / 1e9,
        cpu as f64 / n as f64,
        frames as f64 / n as f64
    );
}
