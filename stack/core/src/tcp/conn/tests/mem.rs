//! Memory under attack: out-of-order data is charged by its bytes, not its span
//! from RCV.NXT; under `tcp_mem` pressure the out-of-order queue is pruned from the top
//! (Linux tcp_prune_ofo_queue) and the SACK blocks we send no longer claim what was pruned
//! (RFC 2018 §8 allows reneging); above the hard limit data needing memory is dropped and
//! `send` takes less. Exact reply segments throughout.

use super::*;
use crate::tcp::bufpool::{MemLimits, OOO_CHUNK_OVERHEAD};

/// ESTABLISHED with SACK negotiated. RCV.NXT 5001, window 4096.
fn established_sack() -> T {
    let mut syn = peer_syn();
    syn.options.sack_permitted = true;
    let cfg = TcpConfig {
        sack: true,
        ..cfg()
    };
    let mut t = syn_received_with(&cfg, &syn);
    assert_eq!(t.feed(&seg(ACK, PEER_ISS + 1, OUR_ISS + 1)), vec![]);
    t.events();
    t
}

fn sacks(blocks: &[(u32, u32)]) -> TcpOptions {
    let mut o = TcpOptions::default();
    for (i, &(l, r)) in blocks.iter().enumerate() {
        o.sack_blocks[i] = (SeqNum(l), SeqNum(r));
    }
    o.sack_count = blocks.len() as u8;
    o
}

fn limits_bytes(low: u64, pressure: u64, high: u64) -> BufPool {
    BufPool::with_limits(MemLimits {
        low,
        pressure,
        high,
    })
}

/// A 1-byte segment at the right edge of the window is held (and SACKed, RFC 2018 §4) at
/// the cost of its byte plus the chunk overhead: the receive ring does not grow to the span.
#[test]
fn far_out_of_order_byte_charges_its_size_not_the_span() {
    let mut t = established_sack();
    let edge = 5001 + WND as u32;
    assert_eq!(
        t.feed(&data(ACK, edge - 1, 1001, b"z")),
        vec![ack_out(1001, 5001).opts(sacks(&[(edge - 1, edge)]))]
    );
    let s = t.pool.stats();
    assert_eq!(s.out_bytes, 0, "no ring storage");
    assert_eq!(s.ooo_bytes, 1 + OOO_CHUNK_OVERHEAD as u64);
    assert_eq!(t.pool.charged(), 1 + OOO_CHUNK_OVERHEAD as u64);
    // The hole filled: the byte moves into the ring and its chunk is uncharged.
    static FILL: [u8; WND as usize - 1] = [b'a'; WND as usize - 1];
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, &FILL)),
        vec![ack_out(1001, edge).win(0)]
    );
    assert_eq!(t.pool.stats().ooo_bytes, 0);
    let got = t.read_all();
    assert_eq!((got.len(), got[got.len() - 1]), (WND as usize, b'z'));
}

/// Beyond what out-of-order data may hold (`tcp_mem` PRESSURE) an out-of-order segment prunes the held range with the highest
/// sequence numbers if that lies above it (Linux tcp_prune_ofo_queue) and is held; the
/// ACK's SACK blocks list only what is still held. A segment with nothing above it to
/// prune is dropped instead.
#[test]
fn pruned_under_pressure_and_sack_reflects_what_is_held() {
    let mut t = established_sack();
    // Out-of-order data may take 200 bytes (PRESSURE): about three small chunks.
    t.pool = limits_bytes(0, 200, 1000);
    assert_eq!(
        t.feed(&data(ACK, 5011, 1001, b"later")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5011, 5016)]))]
    );
    assert_eq!(
        t.feed(&data(ACK, 5021, 1001, b"zz")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5021, 5023), (5011, 5016)]))]
    );
    // 69 + 66 charged; 2 bytes + 64 more is above 200: the highest range, [5021, 5023),
    // lies above the new segment and is pruned.
    assert_eq!(
        t.feed(&data(ACK, 5017, 1001, b"xy")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5017, 5019), (5011, 5016)]))]
    );
    let s = t.pool.stats();
    assert_eq!(
        (s.ofo_pruned, s.ofo_pruned_bytes, s.ofo_mem_drops),
        (1, 2, 0)
    );
    // Above every held range: nothing above it to prune, so it is dropped (TCPOFODrop);
    // the blocks are unchanged.
    assert_eq!(
        t.feed(&data(ACK, 5030, 1001, b"0123456789")),
        vec![ack_out(1001, 5001).opts(sacks(&[(5017, 5019), (5011, 5016)]))]
    );
    assert_eq!(t.pool.stats().ofo_mem_drops, 1);
    // In-order data (an empty ring is always given a segment) reaches the first range.
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"0123456789")),
        vec![ack_out(1001, 5016)
            .win(WND - 15)
            .opts(sacks(&[(5017, 5019)]))]
    );
    assert_eq!(t.read_all(), b"0123456789later");
}

/// Above the hard limit in-order text that needs the ring to grow is dropped (TCPRcvQDrop)
/// and ACKed at once with the unchanged RCV.NXT; once the application reads (the ring is
/// empty) the retransmission is taken: an empty ring always gets one segment.
#[test]
fn in_order_dropped_above_high_until_read() {
    let mut t = established();
    t.pool = limits_bytes(0, 0, 1);
    assert_eq!(
        t.feed(&data(ACK, 5001, 1001, b"a")),
        vec![ack_out(1001, 5002).win(WND - 1)]
    );
    assert_eq!(
        t.feed(&data(ACK, 5002, 1001, b"bc")),
        vec![ack_out(1001, 5002).win(WND - 1)]
    );
    assert_eq!(t.pool.stats().rcvq_mem_drops, 1);
    assert_eq!(t.read_all(), b"a");
    assert_eq!(t.pool.charged(), 0);
    assert_eq!(
        t.feed(&data(ACK, 5002, 1001, b"bc")),
        vec![ack_out(1001, 5004).win(WND - 3)]
    );
    assert_eq!(t.read_all(), b"bc");
}

/// Above the hard limit `send` takes only what the send buffer's storage holds: an empty
/// buffer gets one minimum-sized ring (Linux forces memory for the first skb), then `send`
/// would block; after the data is acknowledged and freed it takes more.
#[test]
fn send_limited_above_high() {
    let mut t = established();
    t.pool = limits_bytes(0, 0, 1);
    assert_eq!(t.send(&[7u8; 4000]), Ok(2048));
    assert_eq!(t.send(b"more"), Err(SendError::Full));
    assert_eq!(t.pool.stats().snd_mem_limited, 2);
    let out = t.out();
    let sent: usize = out.iter().map(|o| o.payload.len()).sum();
    assert_eq!(sent, 2048);
    t.feed(&seg(ACK, 5001, 1001 + 2048));
    assert_eq!(t.pool.charged(), 0, "acknowledged: storage given back");
    assert_eq!(t.send(b"more"), Ok(4));
}

/// Out-of-order data of a connection that is aborted (no pool at hand in `abort`) is
/// uncharged when the endpoint frees the connection (`release_buffers`), as is that of a
/// connection freed while holding it: the accountant's gauge returns to zero.
#[test]
fn held_data_is_uncharged_on_abort_and_free() {
    for abort in [true, false] {
        let mut t = established_sack();
        t.feed(&data(ACK, 5011, 1001, b"later"));
        assert_eq!(t.pool.stats().ooo_bytes, 5 + OOO_CHUNK_OVERHEAD as u64);
        if abort {
            t.c.abort(t.now);
            assert_eq!(t.state(), State::Closed);
        }
        let T { c, mut pool, .. } = t;
        c.release_buffers(&mut pool);
        assert_eq!(
            (pool.stats().ooo_bytes, pool.charged()),
            (0, 0),
            "abort {abort}"
        );
    }
}
