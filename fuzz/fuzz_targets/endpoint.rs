//! One `xdptcp_core::tcp::Endpoint` (the stack under test, 198.18.0.2) with tiny buffers, a
//! listener on :80 and an active open to the peer's :443, driven by a script of operations
//! read from the fuzzer's bytes. The fuzzer plays the peer (198.18.0.1): it sends segments
//! whose sequence and acknowledgment numbers are picked *near* what the endpoint has sent and
//! acknowledged (so they are often in window), with arbitrary flags, options and payload, and
//! it moves a monotonic clock forward (by small steps or to the endpoint's next deadline), so
//! retransmission, delayed-ACK, keepalive, FIN-WAIT-2 and TIME-WAIT timers really fire. The
//! application side calls send / recv / accept / shutdown / close / abort / connect.
//!
//! Every emitted segment is serialized and re-parsed with its checksum (as on the wire), and
//! after every operation the target asserts: no panic; connections <= max_connections and
//! TIME-WAIT records <= max_tw_buckets; orphans <= tcp_max_orphans (the input may choose 0, 1
//! or 2, and a `tcp_mem` of a few pages); per connection unread <= tcp_rmem, unsent and in
//! flight each <= tcp_wmem; pooled buffer bytes lent out bounded by the connections'
//! caps; endpoint counters and per-connection counters never decrease.
#![no_main]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use libfuzzer_sys::fuzz_target;
use xdptcp_core::tcp::{
    ConnCounters, ConnId, Endpoint, EndpointEvent, EndpointSecrets, EndpointStats, ListenerId,
    SynCookieMode, TcpConfig,
};
use xdptcp_core::time::{Duration, Instant};
use xdptcp_core::wire::{SeqNum, TcpFlags, TcpOptions, TcpRepr, MAX_SACK_BLOCKS};

const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LISTEN_PORT: u16 = 80;
const PEER_LISTEN_PORT: u16 = 443;
const MAX_OPS: usize = 400;

/// Reads the script; past the end every read is 0 (the run then ends).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the peer knows of one 4-tuple, learned from the endpoint's segments.
#[derive(Default, Clone, Copy)]
struct PeerView {
    /// The endpoint's highest sequence number sent (seq + seq_len): what the peer acks.
    their_nxt: SeqNum,
    /// The peer's own next sequence number (advanced by what it sends).
    our_nxt: SeqNum,
    /// The last TSval the endpoint sent (the peer's TSecr).
    their_ts: u32,
}

struct Harness {
    ep: Endpoint,
    cfg: TcpConfig,
    now: Instant,
    listener: ListenerId,
    /// Connections the application holds (connect or accept).
    app: Vec<ConnId>,
    /// Peer port -> what the peer knows (remote port of the endpoint is the key: the peer
    /// uses ports 1000..1004 towards :80 and 443 for the active opens).
    peers: HashMap<(u16, u16), PeerView>,
    stats: EndpointStats,
    counters: HashMap<ConnId, ConnCounters>,
    ts_clock: u32,
}

fn config(b: &mut Bytes) -> TcpConfig {
    let c = b.u8();
    let mut cfg = TcpConfig {
        rmem: [1024, 2048, 4096, 8192][(c & 3) as usize],
        wmem: [1024, 2048, 4096, 8192][((c >> 2) & 3) as usize],
        mss: [536, 1460, 100, 1000][((c >> 4) & 3) as usize],
        max_connections: 8,
        max_syn_backlog: 4,
        somaxconn: 2,
        max_tw_buckets: 4,
        syncookies: [
            SynCookieMode::WhenFull,
            SynCookieMode::Always,
            SynCookieMode::Never,
            SynCookieMode::WhenFull,
        ][(c >> 6) as usize],
        ..TcpConfig::default()
    };
    let c = b.u8();
    cfg.timestamps = c & 1 == 0;
    cfg.sack = c & 2 == 0;
    cfg.window_scaling = c & 4 == 0;
    cfg.abort_on_overflow = c & 8 != 0;
    cfg.keepalive_time = Duration::from_secs(if c & 16 != 0 { 10 } else { 7200 });
    // tcp_max_orphans within reach of max_connections (the default never is), and a tcp_mem
    // of a few pages (4 / 8 / 12 KiB) that the tiny buffers can fill: the orphan resets at
    // close and at the retransmission / probe timer (endpoint/orphans.rs) get exercised.
    if let Some(n) = [None, Some(0), Some(1), Some(2)][((c >> 5) & 3) as usize] {
        cfg.max_orphans = n;
    }
    if c & 0x80 != 0 {
        cfg.mem = [1, 2, 3];
    }
    cfg
}

impl Harness {
    fn new(b: &mut Bytes) -> Harness {
        let cfg = config(b);
        let mut ep = Endpoint::new(cfg.clone(), EndpointSecrets::from_seed(7), 40000..=40007);
        let listener = ep.listen(US, LISTEN_PORT, 2).expect("listen");
        let mut h = Harness {
            ep,
            cfg,
            now: Instant::from_secs(1_000),
            listener,
            app: Vec::new(),
            peers: HashMap::new(),
            stats: EndpointStats::default(),
            counters: HashMap::new(),
            ts_clock: 1,
        };
        h.connect();
        h
    }

    fn connect(&mut self) {
        let remote = SocketAddrV4::new(PEER, PEER_LISTEN_PORT);
        if let Ok(id) = self.ep.connect(self.now, US, remote) {
            self.app.push(id);
        }
    }

    /// Flushes the endpoint: every segment goes through emit + parse (checksum verified)
    /// and updates what the peer knows.
    fn flush(&mut self) {
        let mut out: Vec<(Ipv4Addr, Ipv4Addr, Vec<u8>)> = Vec::new();
        self.ep.poll_transmit(self.now, |s, d, seg| {
            let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (s, d) else {
                panic!("an IPv6 segment from an IPv4-only endpoint");
            };
            let mut bytes = vec![0u8; seg.buffer_len()];
            seg.emit(&mut bytes, s, d);
            out.push((s, d, bytes));
        });
        for (s, d, bytes) in out {
            assert_eq!((s, d), (US, PEER), "segment between the right hosts");
            let seg = TcpRepr::parse(&bytes, s, d, true).expect("our own segment parses");
            let key = (seg.dst_port, seg.src_port);
            let v = self.peers.entry(key).or_default();
            let end = seg.seq + seg.seq_len();
            if seg.flags.syn() || end.gt(v.their_nxt) {
                v.their_nxt = end;
            }
            if seg.flags.syn() && seg.flags.ack() {
                v.our_nxt = seg.ack;
            }
            if let Some((val, _)) = seg.options.timestamp {
                v.their_ts = val;
            }
        }
    }

    fn events(&mut self) {
        while let Some(ev) = self.ep.poll_event() {
            if let EndpointEvent::Incoming(l) = ev {
                assert_eq!(l, self.listener, "Incoming for our only listener");
                while let Some(id) = self.ep.accept(l) {
                    if self.app.len() < 16 {
                        self.app.push(id);
                    } else {
                        let _ = self.ep.abort(self.now, id);
                    }
                }
            }
        }
    }

    /// A segment from the peer, its fields chosen by the script.
    fn peer_segment(&mut self, b: &mut Bytes) {
        let sel = b.u8();
        // Ports: 1000..1004 towards the listener, or an active open's tuple.
        let (sport, dport) = if sel & 0x80 != 0 {
            let ids: Vec<_> = self
                .app
                .iter()
                .filter_map(|&id| self.ep.tuple(id))
                .collect();
            match ids.get((sel & 0x7f) as usize % ids.len().max(1)) {
                Some(t) => (t.remote_port, t.local_port),
                None => (1000, LISTEN_PORT),
            }
        } else {
            (1000 + (sel & 3) as u16, LISTEN_PORT)
        };
        let v = *self
            .peers
            .entry((sport, dport))
            .or_insert_with(|| PeerView {
                our_nxt: SeqNum(0x1000_0000 + sport as u32 * 0x10000),
                ..PeerView::default()
            });
        let flags = TcpFlags(b.u8());
        let seq = v.our_nxt + delta(b);
        let ack = v.their_nxt + delta(b);
        let w = b.u8();
        let window = match w >> 6 {
            0 => 0,
            1 => w as u16 & 0x3f,
            2 => 65535,
            _ => (w as u16) << 8,
        };
        let o = b.u8();
        let mut options = TcpOptions::default();
        if o & 1 != 0 {
            options.mss = Some([0, 1, 536, 1460, 9000, 65535, 64, 88][(o >> 5) as usize]);
        }
        if o & 2 != 0 {
            options.window_scale = Some(b.u8() % 16);
        }
        options.sack_permitted = o & 4 != 0;
        if o & 8 != 0 {
            self.ts_clock = self.ts_clock.wrapping_add(b.u8() as u32);
            let ecr = if o & 0x10 != 0 { v.their_ts } else { b.u32() };
            options.timestamp = Some((self.ts_clock, ecr));
        }
        if o & 0x80 != 0 {
            let n = (b.u8() as usize % MAX_SACK_BLOCKS) + 1;
            for i in 0..n {
                let l = v.their_nxt - (b.u16() as u32);
                options.sack_blocks[i] = (l, l + b.u8() as u32 * 8);
            }
            options.sack_count = n as u8;
        }
        let len = match b.u8() {
            0..=127 => 0,
            l @ 128..=250 => (l as usize - 127) * 8,
            _ => 2000,
        };
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let seg = TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq,
            ack,
            flags,
            window,
            urgent: 0,
            options,
            payload: &payload,
        };
        // As on the wire: emitted, parsed (options the wire cannot carry are left out).
        let mut bytes = vec![0u8; seg.buffer_len()];
        seg.emit(&mut bytes, PEER, US);
        let seg = TcpRepr::parse(&bytes, PEER, US, true).expect("emitted segment parses");
        self.ep.on_segment(self.now, PEER, US, &seg);
        // A well-behaved peer advances by what it sent; a fuzzed one may not (delta).
        if b.u8() & 1 == 0 {
            let v = self.peers.get_mut(&(sport, dport)).expect("inserted above");
            v.our_nxt = seg.seq + seg.seq_len();
        }
    }

    fn advance(&mut self, b: &mut Bytes) {
        let step = b.u8();
        let to = match step >> 5 {
            0 => self.now + Duration::from_millis(step as u64 & 0x1f),
            1 => self.now + Duration::from_millis(40 * (step as u64 & 0x1f)),
            2 => self.now + Duration::from_secs(step as u64 & 0x1f),
            3 => self.now + Duration::from_secs(60 * (step as u64 & 0x1f)),
            // The endpoint's next deadline, as the worker's loop would wake for it.
            _ => self.ep.next_deadline().unwrap_or(self.now).max(self.now),
        };
        self.now = to;
        self.ep.on_timeout(self.now);
    }

    fn app_op(&mut self, b: &mut Bytes) {
        let op = b.u8();
        if self.app.is_empty() {
            self.connect();
            return;
        }
        let id = self.app[(op >> 3) as usize % self.app.len()];
        match op & 7 {
            0 | 1 => {
                let n = b.u8() as usize * 32;
                let data = vec![0x5a; n];
                let _ = self.ep.send(self.now, id, &data);
            }
            2 | 3 => {
                let mut buf = vec![0u8; b.u8() as usize * 32];
                let _ = self.ep.recv(id, &mut buf);
            }
            4 => {
                let _ = self.ep.shutdown_write(self.now, id);
            }
            5 => {
                let _ = self.ep.close(self.now, id);
                self.app.retain(|&x| x != id);
            }
            6 => {
                let _ = self.ep.abort(self.now, id);
                self.app.retain(|&x| x != id);
            }
            _ => {
                if b.u8() & 1 == 0 {
                    self.connect();
                } else {
                    let _ = self.ep.set_keepalive(self.now, id, true);
                }
            }
        }
    }

    fn check(&mut self) {
        let cfg = &self.cfg;
        assert!(self.ep.connection_count() <= cfg.max_connections);
        assert!(self.ep.time_wait_count() <= cfg.max_tw_buckets);
        let orphans = self.ep.orphan_count();
        assert!(
            orphans <= cfg.max_orphans,
            "{orphans} orphans > tcp_max_orphans {}",
            cfg.max_orphans
        );
        assert_eq!(self.ep.state_counts().orphans, orphans);
        let mut live = 0usize;
        for &id in &self.app {
            let Some(info) = self.ep.info(id) else {
                continue;
            };
            live += 1;
            assert!(
                info.unread <= cfg.rmem,
                "unread {} > tcp_rmem {}",
                info.unread,
                cfg.rmem
            );
            // The send buffer holds SND.UNA..end: what is in flight and what is not sent
            // yet are each within tcp_wmem (+1 for a SYN or FIN in flight). Their sum is
            // not: `unsent` counts from SND.NXT, which an RTO moves back below SND.MAX.
            assert!(info.unsent <= cfg.wmem, "unsent {} > tcp_wmem", info.unsent);
            assert!(
                info.in_flight as usize <= cfg.wmem + 1,
                "in flight {} > tcp_wmem {} + 1",
                info.in_flight,
                cfg.wmem
            );
            assert!(info.send_capacity <= cfg.wmem);
            let c = info.counters;
            if let Some(old) = self.counters.insert(id, c) {
                assert!(c.bytes_acked >= old.bytes_acked, "bytes_acked went back");
                assert!(
                    c.bytes_received >= old.bytes_received,
                    "bytes_received went back"
                );
                assert!(c.bytes_out >= old.bytes_out, "bytes_out went back");
            }
        }
        let _ = live;
        // Buffers are power-of-two classes: at most twice the cap each, two per connection.
        let per_conn = 2 * (cfg.rmem.next_power_of_two() + cfg.wmem.next_power_of_two());
        let pool = self.ep.buffer_pool_stats();
        assert!(
            pool.out_bytes as usize <= self.ep.connection_count() * per_conn,
            "{} buffer bytes lent out to {} connections",
            pool.out_bytes,
            self.ep.connection_count()
        );
        let s = *self.ep.stats();
        let o = &self.stats;
        let mono = [
            (s.segments_in, o.segments_in, "segments_in"),
            (s.segments_out, o.segments_out, "segments_out"),
            (s.malformed_in, o.malformed_in, "malformed_in"),
            (s.no_listener, o.no_listener, "no_listener"),
            (s.rst_closed, o.rst_closed, "rst_closed"),
            (s.syn_dropped, o.syn_dropped, "syn_dropped"),
            (s.conns_opened, o.conns_opened, "conns_opened"),
            (s.conns_freed, o.conns_freed, "conns_freed"),
            (s.cookies_sent, o.cookies_sent, "cookies_sent"),
            (s.cookies_accepted, o.cookies_accepted, "cookies_accepted"),
            (s.cookies_rejected, o.cookies_rejected, "cookies_rejected"),
            (s.tw_entered, o.tw_entered, "tw_entered"),
            (s.tw_expired, o.tw_expired, "tw_expired"),
            (
                s.aborted_on_memory,
                o.aborted_on_memory,
                "aborted_on_memory",
            ),
            (
                s.challenge_acks_sent,
                o.challenge_acks_sent,
                "challenge_acks_sent",
            ),
        ];
        for (new, old, name) in mono {
            assert!(new >= old, "{name} went back: {old} -> {new}");
        }
        assert!(
            s.conns_freed <= s.conns_opened,
            "more connections freed than opened"
        );
        self.stats = s;
    }
}

/// A small offset around an expected sequence number (mostly in window), or a wild one.
fn delta(b: &mut Bytes) -> u32 {
    let d = b.u8();
    match d >> 6 {
        0 => 0,
        1 => (d as u32 & 0x3f).wrapping_sub(32),
        2 => (d as u32 & 0x3f) * 512,
        _ => b.u32(),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let mut h = Harness::new(&mut b);
    h.flush();
    h.check();
    for _ in 0..MAX_OPS {
        if b.is_empty() {
            break;
        }
        match b.u8() % 8 {
            0..=3 => h.peer_segment(&mut b),
            4 | 5 => h.advance(&mut b),
            _ => h.app_op(&mut b),
        }
        h.flush();
        h.events();
        h.flush();
        h.check();
    }
    // For looking at what a corpus reaches: `XDPTCP_FUZZ_DEBUG=1 .../endpoint FILE`.
    if std::env::var_os("XDPTCP_FUZZ_DEBUG").is_some() {
        eprintln!("{:?}\n{:?}", h.ep.state_counts(), h.ep.stats());
    }
    // Let every timer run out: the endpoint must go quiet with bounded work.
    for _ in 0..64 {
        let Some(t) = h.ep.next_deadline() else {
            break;
        };
        h.now = t.max(h.now);
        h.ep.on_timeout(h.now);
        h.flush();
        h.events();
        h.check();
    }
});
