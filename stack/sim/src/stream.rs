//! Bounded-memory byte-exact streams for the transfer tests: each direction's data is a
//! ChaCha8 stream (seed, stream id) generated in fixed chunks; the receiver regenerates it
//! and compares every byte as it reads, and both ends keep a streaming SipHash-1-3 128.
//! Memory: one chunk per `Source` and per `Sink`.

use std::hash::Hasher;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use siphasher::sip128::SipHasher13;

/// Generation chunk: a multiple of 4 so that ChaCha's word-wise output is the same stream
/// whatever the reader's chunking.
pub const CHUNK: usize = 64 * 1024;

/// Where a received stream departs from the one sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("read {extra} bytes beyond the {sent} sent")]
    Beyond { extra: u64, sent: u64 },
    #[error("byte {at} differs: got {got:#04x}, sent {sent:#04x}")]
    Differs { at: u64, got: u8, sent: u8 },
}

/// The sending side of one direction: generates the stream lazily, one chunk at a time.
pub struct Source {
    pub rng: ChaCha8Rng,
    pub total: u64,
    /// Bytes handed to `send` so far.
    pub sent: u64,
    pub buf: Vec<u8>,
    pub pos: usize,
    pub hash: SipHasher13,
}

impl Source {
    pub fn new(seed: u64, stream: u64, total: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Source {
            rng,
            total,
            sent: 0,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            hash: SipHasher13::new_with_keys(seed, stream),
        }
    }

    /// The next bytes to send (empty when all were sent).
    pub fn pending(&mut self) -> &[u8] {
        if self.pos == self.buf.len() {
            let produced = self.sent;
            let n = (self.total - produced).min(CHUNK as u64) as usize;
            self.buf.resize(CHUNK, 0);
            self.rng.fill_bytes(&mut self.buf);
            self.buf.truncate(n);
            self.pos = 0;
        }
        &self.buf[self.pos..]
    }

    pub fn consume(&mut self, n: usize) {
        self.hash.write(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        self.sent += n as u64;
    }

    pub fn done(&self) -> bool {
        self.sent == self.total
    }
}

/// The receiving side of one direction: regenerates the sender's stream and compares.
pub struct Sink {
    pub rng: ChaCha8Rng,
    pub total: u64,
    pub received: u64,
    pub expect: Vec<u8>,
    pub pos: usize,
    pub hash: SipHasher13,
}

impl Sink {
    pub fn new(seed: u64, stream: u64, total: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Sink {
            rng,
            total,
            received: 0,
            expect: Vec::new(),
            pos: 0,
            hash: SipHasher13::new_with_keys(seed, stream),
        }
    }

    pub fn take(&mut self, mut data: &[u8]) -> Result<(), StreamError> {
        if self.received + data.len() as u64 > self.total {
            return Err(StreamError::Beyond {
                extra: self.received + data.len() as u64 - self.total,
                sent: self.total,
            });
        }
        self.hash.write(data);
        while !data.is_empty() {
            if self.pos == self.expect.len() {
                self.expect.resize(CHUNK, 0);
                self.rng.fill_bytes(&mut self.expect);
                self.pos = 0;
            }
            let n = data.len().min(self.expect.len() - self.pos);
            let want = &self.expect[self.pos..self.pos + n];
            if let Some(i) = data[..n].iter().zip(want).position(|(a, b)| a != b) {
                return Err(StreamError::Differs {
                    at: self.received + i as u64,
                    got: data[i],
                    sent: want[i],
                });
            }
            self.pos += n;
            self.received += n as u64;
            data = &data[n..];
        }
        Ok(())
    }
}
