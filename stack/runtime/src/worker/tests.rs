//! The loop's accounting and snapshot rate limit, with virtual time over an in-memory link.

use std::net::Ipv4Addr;

use super::*;
use crate::app::echo::Echo;
use crate::app::server::Server;
use crate::iface::{InterfaceConfig, StaticLink};
use crate::phy::MemoryDevice;
use crate::tcp::endpoint::{Endpoint, EndpointSecrets};
use crate::tcp::TcpConfig;
use crate::wire::{self, EtherType, EthernetAddress, EthernetRepr, SeqNum, TcpFlags, TcpRepr};

const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAC_US: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn worker() -> (Worker<MemoryDevice, StaticLink>, MemoryDevice) {
    let (dev, peer) = MemoryDevice::pair(1514, 64);
    let ep = Endpoint::new(
        TcpConfig::default(),
        EndpointSecrets::from_seed(7),
        40000..=40999,
    );
    let link = StaticLink::new(&[(PEER, MAC_PEER)]);
    let iface = Interface::new(dev, link, ep, InterfaceConfig::new(US, MAC_US));
    (Worker::new(3, iface, WorkerConfig::default()), peer)
}

/// The peer's SYN to port 7, written into its end of the link.
fn send_syn(peer: &mut MemoryDevice) {
    send_syn_from(peer, 45000);
}

fn send_syn_from(peer: &mut MemoryDevice, src_port: u16) {
    let syn = TcpRepr {
        src_port,
        dst_port: 7,
        seq: SeqNum(1000),
        ack: SeqNum(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress(MAC_PEER),
        dst_addr: EthernetAddress(MAC_US),
        ethertype: EtherType::Ipv4,
    };
    let len = wire::tcp_frame_len(&syn);
    peer.transmit(len, |b| {
        wire::emit_tcp_frame(b, &eth, PEER, US, 64, &syn);
    })
    .unwrap();
    peer.flush(Instant::ZERO);
}

#[test]
fn iterations_are_accounted_busy_or_idle() {
    let (mut w, mut peer) = worker();
    let mut app = Server::new(16);
    app.add(7, Box::<Echo>::default());
    let mut last = Instant::from_millis(10);
    w.iface.start(last, &mut app);
    // Idle: nothing received, nothing due.
    assert!(!w.iteration(Instant::from_millis(11), &mut last, &mut app));
    // Busy: a SYN in, a SYN-ACK out.
    send_syn(&mut peer);
    assert!(w.iteration(Instant::from_millis(14), &mut last, &mut app));
    let s = *w.loop_stats();
    assert_eq!(
        (s.iterations, s.idle_iterations, s.busy_iterations),
        (2, 1, 1)
    );
    assert_eq!(s.idle_ns, 1_000_000);
    assert_eq!(s.busy_ns, 3_000_000);
    assert_eq!((s.rx_packets, s.tx_packets), (1, 1));
    let mut got = Vec::new();
    peer.recv(Instant::ZERO, 8, |f| {
        got.push(wire::parse_tcp_frame(f).unwrap().tcp.flags)
    });
    assert_eq!(got, [TcpFlags::SYN | TcpFlags::ACK]);
}

#[test]
fn snapshots_are_published_at_most_every_interval() {
    let (mut w, _peer) = worker();
    let h = w.stats_handle();
    let mut app = Server::new(16);
    let mut last = Instant::from_millis(1);
    w.iteration(Instant::from_millis(1), &mut last, &mut app);
    assert_eq!(h.get().looping.iterations, 1);
    assert_eq!(h.get().worker, 3);
    // 50 ms later: not yet republished.
    w.iteration(Instant::from_millis(51), &mut last, &mut app);
    assert_eq!(h.get().looping.iterations, 1);
    // 100 ms after the first: published.
    w.iteration(Instant::from_millis(101), &mut last, &mut app);
    let snap = h.get();
    assert_eq!(snap.looping.iterations, 3);
    assert_eq!(snap.at, Instant::from_millis(101));
    assert_eq!(snap.states.listen, 0);
}

#[test]
fn run_returns_after_the_stop_flag() {
    let (mut w, _peer) = worker();
    w.stop_flag().store(true, Ordering::Relaxed);
    let mut app = Server::new(16);
    app.add(7, Box::<Echo>::default());
    let snap = w.run(&mut app);
    // One iteration, then the final one that flushes the app's last output.
    assert_eq!(snap.looping.iterations, 2);
    assert_eq!(snap.states.listen, 1);
    assert_eq!(w.stats_handle().get(), snap);
}

#[test]
fn adaptive_idle_sleeps_after_empty_iterations_busy_poll_never() {
    for (idle, sleeps) in [
        (
            IdleMode::Adaptive {
                spins: 10,
                sleep: Duration::from_millis(1),
            },
            true,
        ),
        (IdleMode::BusyPoll, false),
    ] {
        let (dev, _peer) = MemoryDevice::pair(1514, 4);
        let ep = Endpoint::new(
            TcpConfig::default(),
            EndpointSecrets::from_seed(1),
            40000..=40999,
        );
        let iface = Interface::new(
            dev,
            StaticLink::default(),
            ep,
            InterfaceConfig::new(US, MAC_US),
        );
        let cfg = WorkerConfig {
            idle,
            ..WorkerConfig::default()
        };
        let mut w = Worker::new(0, iface, cfg);
        let stop = w.stop_flag();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            stop.store(true, Ordering::Relaxed);
        });
        let snap = w.run(&mut Server::new(1));
        t.join().unwrap();
        assert_eq!(
            snap.looping.sleeps > 0,
            sleeps,
            "{idle:?}: {:?}",
            snap.looping
        );
        assert_eq!(snap.looping.busy_iterations, 0);
    }
}

/// `xdptcp ss`: a request left in the mailbox is served one slice of at most `SS_SLICE` rows
/// per iteration: the listener, then every connection once, then `Done`; a full channel
/// holds the slice in the worker (the loop goes on) until the reader takes one.
#[test]
fn ss_listing_comes_in_slices_one_per_iteration() {
    use ss::{SsMsg, SsRow, SS_SLICE};
    use std::sync::mpsc::sync_channel;
    let (mut w, mut peer) = worker();
    let mut app = Server::new(1024);
    app.add(7, Box::<Echo>::default());
    let mut now = Instant::from_millis(1);
    let mut last = now;
    w.iface.start(now, &mut app);
    let n = 300u16;
    for i in 0..n {
        send_syn_from(&mut peer, 45000 + i);
        if i % 32 == 31 {
            now += Duration::from_micros(10);
            w.iteration(now, &mut last, &mut app);
            peer.recv(now, 64, |_| {});
        }
    }
    now += Duration::from_micros(10);
    w.iteration(now, &mut last, &mut app);
    let half_open = w.iface.endpoint().state_counts().syn_received;
    assert!(half_open > SS_SLICE, "{half_open}");
    let (tx, rx) = sync_channel(1);
    w.stats_handle().mailboxes().ss.request(tx);
    let (mut listeners, mut conns, mut slices, mut done) = (0, 0, 0, false);
    for _ in 0..100 {
        now += Duration::from_micros(10);
        w.iteration(now, &mut last, &mut app);
        // The channel holds one slice: the next waits in the worker.
        w.iteration(now, &mut last, &mut app);
        match rx.try_recv() {
            Ok(SsMsg::Rows(rows)) => {
                slices += 1;
                assert!(rows.len() <= SS_SLICE);
                for r in rows {
                    match r {
                        SsRow::Listener { port, backlog, .. } => {
                            assert_eq!((port, backlog), (7, 1024));
                            listeners += 1;
                        }
                        SsRow::Conn { info, worker, .. } => {
                            assert_eq!(worker, 3);
                            assert_eq!(info.state, crate::tcp::State::SynReceived);
                            conns += 1;
                        }
                        SsRow::TimeWait { .. } => panic!("no TIME-WAIT here"),
                    }
                }
            }
            Ok(SsMsg::Done) => {
                done = true;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(done);
    assert_eq!((listeners, conns), (1, half_open));
    assert!(slices > half_open.div_ceil(SS_SLICE), "{slices}");
    assert!(w.ss.is_none(), "the job ends with Done");
}
