//! What one `xdptcp ss` slice costs a worker (docs/benchmarks.md, "Observability overhead"):
//! an endpoint holding N connections (SYN-SENT active opens, to 250 remotes x the ephemeral
//! range) and M TIME-WAIT-free listeners is listed completely through `SsJob::step`, the
//! function the worker calls once per loop iteration during a listing; the reader drains
//! the channel between steps. Prints the mean and the worst step time and the total.
//!
//! Then what a capture tap costs per frame (`Tap::frame`: filter, copy, queue push) for a
//! 66-byte ACK and a 1514-byte data frame, matching and not matching the filter, with the
//! queue drained by the measuring loop.
//!
//! `cargo run --release -p xdptcp --example ss_slice_cost -- [N]` (default 1,000,000; about
//! 1 GiB of memory at a million; no network, no root).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc::sync_channel;
use std::time::Instant as StdInstant;

use xdptcp::iface::tap::{Dir, PktFilter, Tap};
use xdptcp::tcp::endpoint::{Endpoint, EndpointSecrets};
use xdptcp::tcp::TcpConfig;
use xdptcp::time::Instant;
use xdptcp::wire::{self, EtherType, EthernetAddress, EthernetRepr, SeqNum, TcpFlags, TcpRepr};
use xdptcp::worker::ss::{SsJob, SsMailbox, SsMsg, SS_CHANNEL, SS_SLICE};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cfg = TcpConfig {
        max_connections: n + 16,
        ..TcpConfig::default()
    };
    let mut ep = Endpoint::new(cfg, EndpointSecrets::from_seed(1), 1024..=65535);
    let now = Instant::from_millis(1);
    let local = Ipv4Addr::new(198, 18, 0, 1);
    let mut made = 0;
    'fill: for r in 0..=u16::MAX {
        let remote = Ipv4Addr::new(198, 19, (r >> 8) as u8, r as u8);
        for _ in 0..64_000 {
            if made == n {
                break 'fill;
            }
            if ep
                .connect(now, local, SocketAddrV4::new(remote, 80))
                .is_err()
            {
                break;
            }
            made += 1;
        }
    }
    // The SYNs stay queued (nothing is transmitted): only the listing is measured.
    eprintln!("{made} connections");
    let mailbox = SsMailbox::default();
    let (tx, rx) = sync_channel(SS_CHANNEL);
    mailbox.request(tx);
    let mut job = SsJob::take(&mailbox).expect("the request");
    let (mut times, mut rows) = (Vec::new(), 0usize);
    let all = StdInstant::now();
    loop {
        let t = StdInstant::now();
        let more = job.step(0, &ep, now);
        times.push(t.elapsed().as_nanos() as u64);
        while let Ok(m) = rx.try_recv() {
            if let SsMsg::Rows(r) = m {
                rows += r.len();
            }
        }
        if !more {
            break;
        }
    }
    let total: u64 = times.iter().sum();
    let steps = times.len();
    times.sort_unstable();
    let pct = |p: f64| times[((steps as f64 * p) as usize).min(steps - 1)] as f64 / 1e3;
    println!(
        "{rows} rows in {steps} steps of at most {SS_SLICE}: per step mean {:.2} us, p50 {:.2}, \
         p99 {:.2}, p99.9 {:.2}, max {:.2} us; {:.0} ms in steps, {:.0} ms wall",
        total as f64 / steps as f64 / 1e3,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0),
        total as f64 / 1e6,
        all.elapsed().as_secs_f64() * 1e3
    );
    tap_cost();
}

/// Nanoseconds per `Tap::frame` call.
fn tap_cost() {
    let payload = vec![0u8; 1460];
    for (what, len, filter) in [
        ("ACK, matching", 0, "port 80"),
        ("1514 B, matching", 1460, "port 80"),
        ("ACK, not matching", 0, "port 81"),
    ] {
        let t = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNum(1),
            ack: SeqNum(1),
            flags: TcpFlags::ACK,
            window: 1000,
            urgent: 0,
            options: Default::default(),
            payload: &payload[..len],
        };
        let eth = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            ethertype: EtherType::Ipv4,
        };
        let mut f = vec![0u8; wire::tcp_frame_len(&t)];
        let (a, b) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
        wire::emit_tcp_frame(&mut f, &eth, a, b, 64, &t);
        let (tap, shared) = Tap::new(PktFilter::parse(&[filter.to_string()]).unwrap(), 2048, 8192);
        let rounds = 200_000u32;
        let start = StdInstant::now();
        for i in 0..rounds {
            tap.frame(Instant::from_nanos(u64::from(i)), Dir::In, &f);
            if i % 1024 == 0 {
                while shared.queue.pop().is_some() {}
            }
        }
        println!(
            "tap, {what} ({} B): {:.0} ns per frame",
            f.len(),
            start.elapsed().as_nanos() as f64 / f64::from(rounds)
        );
    }
}
