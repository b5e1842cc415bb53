//! SACK blocks for our ACKs (RFC 2018 §4) with D-SACK (RFC 2883 §4).
//!
//! Order: a D-SACK block first when a duplicate is to be reported (once, on the next ACK),
//! then, if that duplicate lies inside held out-of-order data, the held range containing it
//! (RFC 2883 §4), then the held ranges most recently extended first, which puts "the block
//! containing the segment which triggered this ACK" first (RFC 2018 §4) and repeats the most
//! recently reported blocks after it. Up to `MAX_SACK_BLOCKS` (4); the wire layer keeps the
//! first 3 when timestamps take their 12 option bytes.

use super::reassembly::Reassembly;
use crate::wire::{SeqNum, TcpOptions, MAX_SACK_BLOCKS};

/// Fill `opts.sack_blocks` for an ACK (only when SACK was negotiated).
pub(super) fn fill(dsack: Option<(SeqNum, SeqNum)>, ooo: Option<&Reassembly>, o: &mut TcpOptions) {
    let mut blocks = [(SeqNum(0), SeqNum(0)); MAX_SACK_BLOCKS];
    let mut n = 0;
    // The held range already listed after the D-SACK block (not repeated).
    let mut holder = None;
    if let Some(d) = dsack {
        blocks[0] = d;
        n = 1;
        holder = ooo.and_then(|q| q.ranges().iter().find(|r| r.start.le(d.0) && d.1.le(r.end)));
        if let Some(r) = holder {
            blocks[1] = (r.start, r.end);
            n = 2;
        }
    }
    if let Some(q) = ooo {
        for r in q.recent(MAX_SACK_BLOCKS) {
            if n < MAX_SACK_BLOCKS && holder != Some(r) {
                blocks[n] = (r.start, r.end);
                n += 1;
            }
        }
    }
    o.sack_blocks = blocks;
    o.sack_count = n as u8;
}
