//! An in-memory device pair: two ends joined by bounded queues, one per direction.
//!
//! Used by unit tests and the discrete-event simulator. Frames are copied once, by the
//! caller's `fill` closure, into a preallocated buffer; moving a frame from the sender's
//! staging ring to the receiver's queue swaps buffers instead of copying, so nothing is
//! allocated per frame.
//!
//! Memory bound per end: `2 * queue_cap * max_frame_len` bytes (its TX staging ring and
//! its RX queue).
//!
//! A full receive queue drops the frame at `flush` and counts it in the *receiver's*
//! `rx_dropped` (like the kernel's `rx_ring_full`); a full staging ring refuses `transmit`
//! with [`TxError::Full`] and counts `tx_full`.

use std::sync::{Arc, Mutex, MutexGuard};

use super::{Device, DeviceStats, TxError};
use crate::time::Instant;

/// A fixed ring of preallocated frame buffers.
#[derive(Debug)]
struct Ring {
    slots: Vec<Box<[u8]>>,
    lens: Vec<usize>,
    head: usize,
    len: usize,
    /// Frames refused because the ring was full (only used for RX queues).
    dropped: u64,
}

impl Ring {
    fn new(cap: usize, frame_len: usize) -> Ring {
        Ring {
            slots: (0..cap)
                .map(|_| vec![0u8; frame_len].into_boxed_slice())
                .collect(),
            lens: vec![0; cap],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    fn cap(&self) -> usize {
        self.slots.len()
    }

    fn is_full(&self) -> bool {
        self.len == self.cap()
    }

    fn tail(&self) -> usize {
        (self.head + self.len) % self.cap()
    }

    /// The buffer at the tail, to be written and then committed with `push(len)`.
    fn tail_buf(&mut self) -> &mut [u8] {
        let t = self.tail();
        &mut self.slots[t]
    }

    fn push(&mut self, len: usize) {
        let t = self.tail();
        self.lens[t] = len;
        self.len += 1;
    }

    /// Moves the front frame of `self` to the tail of `dst` by swapping buffers.
    /// Returns false (and leaves `self` unchanged) if `dst` is full.
    fn move_front_to(&mut self, dst: &mut Ring) -> bool {
        if dst.is_full() {
            return false;
        }
        let t = dst.tail();
        std::mem::swap(&mut self.slots[self.head], &mut dst.slots[t]);
        dst.lens[t] = self.lens[self.head];
        dst.len += 1;
        true
    }

    fn front(&self) -> Option<&[u8]> {
        (self.len > 0).then(|| &self.slots[self.head][..self.lens[self.head]])
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % self.cap();
            self.len -= 1;
        }
    }
}

/// One end of an in-memory link. See the module docs.
#[derive(Debug)]
pub struct MemoryDevice {
    max_frame_len: usize,
    /// Frames queued by `transmit`, moved to the peer's RX queue by `flush`.
    staged: Ring,
    rx: Arc<Mutex<Ring>>,
    peer_rx: Arc<Mutex<Ring>>,
    stats: DeviceStats,
}

/// Locks a queue; a poisoned lock (a panic in another thread's callback) still holds a
/// consistent ring, because no ring method can panic half-way.
fn lock(m: &Mutex<Ring>) -> MutexGuard<'_, Ring> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryDevice {
    /// Two ends joined by queues of `queue_cap` frames each way (at least 1), accepting
    /// frames up to `max_frame_len` bytes.
    pub fn pair(max_frame_len: usize, queue_cap: usize) -> (MemoryDevice, MemoryDevice) {
        let cap = queue_cap.max(1);
        let a_rx = Arc::new(Mutex::new(Ring::new(cap, max_frame_len)));
        let b_rx = Arc::new(Mutex::new(Ring::new(cap, max_frame_len)));
        let end = |rx: &Arc<Mutex<Ring>>, peer_rx: &Arc<Mutex<Ring>>| MemoryDevice {
            max_frame_len,
            staged: Ring::new(cap, max_frame_len),
            rx: rx.clone(),
            peer_rx: peer_rx.clone(),
            stats: DeviceStats::default(),
        };
        (end(&a_rx, &b_rx), end(&b_rx, &a_rx))
    }

    /// Frames waiting in this end's receive queue (for a simulator's "anything to do?").
    pub fn rx_pending(&self) -> usize {
        lock(&self.rx).len
    }

    /// Frames queued by `transmit` and not yet flushed.
    pub fn tx_staged(&self) -> usize {
        self.staged.len
    }
}

impl Device for MemoryDevice {
    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// `on_frame` runs with this end's RX queue locked: it may use this end's `transmit`,
    /// but must not call `flush` on the peer end from another thread's point of view.
    fn recv<F: FnMut(&[u8])>(&mut self, _now: Instant, budget: usize, mut on_frame: F) -> usize {
        let mut rx = lock(&self.rx);
        let mut n = 0;
        while n < budget {
            let Some(frame) = rx.front() else { break };
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += frame.len() as u64;
            on_frame(frame);
            rx.pop();
            n += 1;
        }
        n
    }

    fn transmit<F: FnOnce(&mut [u8])>(&mut self, len: usize, fill: F) -> Result<(), TxError> {
        if len > self.max_frame_len {
            return Err(TxError::TooLong);
        }
        if self.staged.is_full() {
            self.stats.tx_full += 1;
            return Err(TxError::Full);
        }
        fill(&mut self.staged.tail_buf()[..len]);
        self.staged.push(len);
        Ok(())
    }

    fn flush(&mut self, _now: Instant) {
        if self.staged.len == 0 {
            return;
        }
        let mut peer = lock(&self.peer_rx);
        while let Some(frame) = self.staged.front() {
            self.stats.tx_frames += 1;
            self.stats.tx_bytes += frame.len() as u64;
            if !self.staged.move_front_to(&mut peer) {
                peer.dropped += 1;
            }
            self.staged.pop();
        }
    }

    fn stats(&self) -> DeviceStats {
        DeviceStats {
            rx_dropped: lock(&self.rx).dropped,
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(dev: &mut MemoryDevice, bytes: &[u8]) -> Result<(), TxError> {
        dev.transmit(bytes.len(), |b| b.copy_from_slice(bytes))
    }

    fn drain(dev: &mut MemoryDevice, budget: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        dev.recv(Instant::ZERO, budget, |f| out.push(f.to_vec()));
        out
    }

    #[test]
    fn frames_cross_in_order_only_after_flush() {
        let (mut a, mut b) = MemoryDevice::pair(64, 4);
        send(&mut a, b"one").unwrap();
        send(&mut a, b"two").unwrap();
        assert_eq!(a.tx_staged(), 2);
        assert_eq!(
            drain(&mut b, 8),
            Vec::<Vec<u8>>::new(),
            "nothing before flush"
        );
        a.flush(Instant::ZERO);
        assert_eq!(b.rx_pending(), 2);
        assert_eq!(drain(&mut b, 8), vec![b"one".to_vec(), b"two".to_vec()]);
        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!((sa.tx_frames, sa.tx_bytes), (2, 6));
        assert_eq!((sb.rx_frames, sb.rx_bytes, sb.rx_dropped), (2, 6, 0));
    }

    #[test]
    fn both_directions_are_independent() {
        let (mut a, mut b) = MemoryDevice::pair(64, 4);
        send(&mut a, b"a->b").unwrap();
        send(&mut b, b"b->a").unwrap();
        a.flush(Instant::ZERO);
        b.flush(Instant::ZERO);
        assert_eq!(drain(&mut a, 8), vec![b"b->a".to_vec()]);
        assert_eq!(drain(&mut b, 8), vec![b"a->b".to_vec()]);
    }

    #[test]
    fn recv_respects_budget() {
        let (mut a, mut b) = MemoryDevice::pair(64, 8);
        for i in 0..5u8 {
            send(&mut a, &[i]).unwrap();
        }
        a.flush(Instant::ZERO);
        assert_eq!(drain(&mut b, 2), vec![vec![0], vec![1]]);
        assert_eq!(drain(&mut b, 10), vec![vec![2], vec![3], vec![4]]);
        assert_eq!(drain(&mut b, 10).len(), 0);
    }

    #[test]
    fn full_staging_refuses_and_counts() {
        let (mut a, _b) = MemoryDevice::pair(64, 2);
        send(&mut a, b"1").unwrap();
        send(&mut a, b"2").unwrap();
        assert_eq!(send(&mut a, b"3"), Err(TxError::Full));
        assert_eq!(a.stats().tx_full, 1);
    }

    #[test]
    fn too_long_is_refused() {
        let (mut a, _b) = MemoryDevice::pair(4, 2);
        assert_eq!(send(&mut a, b"12345"), Err(TxError::TooLong));
        assert_eq!(send(&mut a, b"1234"), Ok(()));
    }

    #[test]
    fn full_receive_queue_drops_and_counts_at_receiver() {
        let (mut a, mut b) = MemoryDevice::pair(64, 2);
        send(&mut a, b"1").unwrap();
        send(&mut a, b"2").unwrap();
        a.flush(Instant::ZERO);
        send(&mut a, b"3").unwrap();
        a.flush(Instant::ZERO);
        assert_eq!(b.stats().rx_dropped, 1);
        assert_eq!(a.stats().tx_frames, 3);
        assert_eq!(drain(&mut b, 8), vec![b"1".to_vec(), b"2".to_vec()]);
        // Buffers swapped around stay usable: the ring keeps working after wrapping.
        for round in 0..5u8 {
            send(&mut a, &[round, round]).unwrap();
            a.flush(Instant::ZERO);
            assert_eq!(drain(&mut b, 8), vec![vec![round, round]]);
        }
    }

    #[test]
    fn zero_capacity_is_raised_to_one() {
        let (mut a, mut b) = MemoryDevice::pair(8, 0);
        send(&mut a, b"x").unwrap();
        a.flush(Instant::ZERO);
        assert_eq!(drain(&mut b, 8), vec![b"x".to_vec()]);
    }
}
