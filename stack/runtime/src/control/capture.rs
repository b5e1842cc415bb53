//! `xdptcp capture`: what a running serve received and sent, as pcapng.
//!
//! Server side ([`serve`]): a capture request gets a thread of its own (at most
//! [`MAX_CAPTURES`] at a time) that leaves a [`Tap`] in every worker's mailbox (installed
//! with the worker's next snapshot, within ~100 ms), then writes the frames the taps queue as
//! pcapng blocks to the client: a section header, one interface description per worker
//! (`IF:qN`, nanosecond timestamps), an enhanced packet block per frame with its direction
//! in the EPB flags (1 inbound, 2 outbound), and at the end one interface statistics block
//! per worker with the frames dropped because this writer fell behind (`isb_ifdrop`) and
//! those delivered (`isb_usrdeliv`). It stops after COUNT frames or MAX bytes, or when the
//! client shuts its sending side (it was interrupted: the statistics still go out), or goes
//! away (nothing more is written), and closes the taps (the workers remove them).
//!
//! Client side ([`receive`]): reads the stream block by block and appends each whole block
//! to the file, so a capture cut short still reads with `tcpdump -r`. [`Interruptible`]
//! turns SIGINT/SIGTERM into that shutdown, so an interrupted client still learns (and
//! prints) what the stack dropped.

use std::borrow::Cow;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::interface_statistics::{
    InterfaceStatisticsBlock, InterfaceStatisticsOption,
};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::DataLink;

use crate::iface::note::TapNote;
use crate::iface::tap::{Dir, PktFilter, PktFilterError, Tap, TapShared};
use crate::worker::StatsHandle;

/// Captures running at once (each has a thread and a queue per worker).
pub const MAX_CAPTURES: usize = 2;
/// Frames queued per worker between the worker and the writer.
pub const TAP_QUEUE: usize = 8192;
/// Default and largest snap length.
pub const SNAPLEN: u32 = 2048;
/// A block larger than this is not a block this server wrote.
const MAX_BLOCK: usize = 1 << 20;

static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// One capture request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Stop after this many frames (0: no limit).
    pub count: u64,
    /// Stop after this many bytes of pcapng.
    pub max_bytes: u64,
    /// Bytes kept per frame, 64..=[`SNAPLEN`] (tcpdump's `-s`).
    pub snaplen: u32,
    /// The filter parsed from `words`.
    pub filter: PktFilter,
    /// The filter's words (tcpdump's expression), as sent.
    pub words: Vec<String>,
    /// Each frame carries the stack's state around it as its packet comment
    /// ([`crate::iface::note`]): `xdptcp trace`, request verb `trace`.
    pub notes: bool,
}

impl CaptureRequest {
    /// A request with `snaplen` clamped to 64..=[`SNAPLEN`] and the filter parsed from
    /// tcpdump's `words`.
    pub fn new(
        count: u64,
        max_bytes: u64,
        snaplen: u32,
        words: Vec<String>,
    ) -> Result<Self, PktFilterError> {
        Ok(CaptureRequest {
            count,
            max_bytes,
            snaplen: snaplen.clamp(64, SNAPLEN),
            filter: PktFilter::parse(&words)?,
            words,
            notes: false,
        })
    }

    /// The same with the stack's notes on every frame (`xdptcp trace`).
    pub fn with_notes(mut self) -> Self {
        self.notes = true;
        self
    }

    /// `capture COUNT MAX_BYTES SNAPLEN WORDS...` (`trace ...` with notes).
    pub fn line(&self) -> String {
        let verb = if self.notes { "trace" } else { "capture" };
        let mut l = format!("{verb} {} {} {}", self.count, self.max_bytes, self.snaplen);
        for w in &self.words {
            l.push(' ');
            l.push_str(&w.replace(['\n', '\r'], " "));
        }
        l
    }

    /// Parses what follows `capture` (or `trace`, then add [`CaptureRequest::with_notes`]).
    pub fn parse(rest: &str) -> Result<Self, RequestError> {
        let mut it = rest.split_whitespace();
        let mut num = |what: &'static str| -> Result<u64, RequestError> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or(RequestError::Number(what))
        };
        let (count, max_bytes, snaplen) = (num("count")?, num("size")?, num("snaplen")?);
        let words = it.map(str::to_string).collect();
        CaptureRequest::new(count, max_bytes, snaplen.min(SNAPLEN as u64) as u32, words)
            .map_err(RequestError::Filter)
    }
}

/// A capture request the server does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// COUNT, MAX_BYTES or SNAPLEN (named) missing or not a number.
    #[error("capture: bad {0}")]
    Number(&'static str),
    /// The filter does not parse.
    #[error("bad filter: {0}")]
    Filter(PktFilterError),
}

/// Starts a capture for the client on `s` (a thread of its own); an error line when
/// [`MAX_CAPTURES`] run already.
pub fn serve(s: UnixStream, req: CaptureRequest, ifname: &str, handles: &[StatsHandle]) {
    if RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_CAPTURES {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
        let _ = writeln!(
            &s,
            "{}{MAX_CAPTURES} captures run already",
            super::ss::ERROR_PREFIX
        );
        return;
    }
    let (ifname, handles) = (ifname.to_string(), handles.to_vec());
    let spawned = std::thread::Builder::new()
        .name("xdptcp-capture".into())
        .spawn(move || {
            let _ = run(&s, &req, &ifname, &handles);
            RUNNING.fetch_sub(1, Ordering::AcqRel);
        });
    if spawned.is_err() {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Closes the taps however the capture ends.
struct Taps(Vec<Arc<TapShared>>);

impl Drop for Taps {
    fn drop(&mut self) {
        for t in &self.0 {
            t.closed.store(true, Ordering::Relaxed);
        }
    }
}

/// What the client did with its end of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    /// Still reading, sent nothing.
    Reading,
    /// Shut its sending side (an interrupted capture): end with the statistics.
    Done,
    /// Gone, or sent something it should not have.
    Gone,
}

/// The client's end, seen by a non-blocking peek: EOF is a shutdown (it still reads).
fn client(s: &UnixStream) -> Client {
    let mut b = [0u8; 1];
    // SAFETY: recv(2) into a buffer we own, on a descriptor we own.
    let n = unsafe {
        libc::recv(
            s.as_raw_fd(),
            b.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => Client::Done,
        n if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock => {
            Client::Reading
        }
        _ => Client::Gone,
    }
}

/// How often the writer looks at the client while frames keep coming.
const CLIENT_CHECK: StdDuration = StdDuration::from_millis(100);

fn run(
    s: &UnixStream,
    req: &CaptureRequest,
    ifname: &str,
    handles: &[StatsHandle],
) -> Result<(), pcap_file::PcapError> {
    s.set_write_timeout(Some(StdDuration::from_secs(5)))
        .map_err(pcap_file::PcapError::IoError)?;
    // Worker instants are CLOCK_MONOTONIC; the file wants the time of day.
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let offset = wall.saturating_sub(StdDuration::from_nanos(crate::clock::now().as_nanos()));
    let taps = Taps(
        handles
            .iter()
            .map(|h| {
                let (tap, shared) = Tap::new(req.filter.clone(), req.snaplen as usize, TAP_QUEUE);
                let tap = if req.notes { tap.with_notes() } else { tap };
                h.mailboxes()
                    .taps
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(tap);
                shared
            })
            .collect(),
    );
    // The header goes out once every worker installed its tap (with its next snapshot):
    // from then on every frame is captured. Bounded: 2 s (a stopping worker never does).
    for _ in 0..200 {
        let waiting = handles.iter().any(|h| {
            !h.mailboxes()
                .taps
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
        });
        if !waiting {
            break;
        }
        std::thread::sleep(StdDuration::from_millis(10));
    }
    let mut w = PcapNgWriter::new(BufWriter::with_capacity(64 << 10, s))?;
    for i in 0..handles.len() {
        w.write_pcapng_block(InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: req.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(format!("{ifname}:q{i}"))),
                InterfaceDescriptionOption::IfDescription(Cow::Owned(format!(
                    "xdptcp worker {i} (queue {i}) of {ifname}"
                ))),
                InterfaceDescriptionOption::IfTsResol(9),
            ],
        })?;
    }
    w.get_mut().flush().map_err(pcap_file::PcapError::IoError)?;
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut delivered = vec![0u64; handles.len()];
    let mut checked = std::time::Instant::now();
    let mut finishing = false;
    'outer: loop {
        // Every ~100 ms, busy or not: has the client stopped or gone?
        if checked.elapsed() >= CLIENT_CHECK {
            checked = std::time::Instant::now();
            match client(s) {
                Client::Reading => {}
                // One last round with what is queued now, then the statistics.
                Client::Done => finishing = true,
                Client::Gone => return Ok(()),
            }
        }
        let mut any = false;
        for (i, t) in taps.0.iter().enumerate() {
            // Bounded per round so one busy worker does not starve the others; the last
            // round takes what each queue holds (at most TAP_QUEUE).
            let budget = if finishing { t.queue.len() } else { 256 };
            for _ in 0..budget {
                let Some(f) = t.queue.pop() else { break };
                any = true;
                let mut options = vec![EnhancedPacketOption::Flags(match f.dir {
                    Dir::In => 1,
                    Dir::Out => 2,
                })];
                if let Some(n) = f.note {
                    options.push(EnhancedPacketOption::Comment(Cow::Owned(n.comment())));
                }
                bytes += w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: i as u32,
                    timestamp: offset + StdDuration::from_nanos(f.at.as_nanos()),
                    original_len: f.len,
                    data: Cow::Owned(f.data),
                    options,
                })? as u64;
                frames += 1;
                delivered[i] += 1;
                if (req.count > 0 && frames >= req.count) || bytes >= req.max_bytes {
                    break 'outer;
                }
            }
        }
        if finishing {
            break;
        }
        if any {
            continue;
        }
        w.get_mut().flush().map_err(pcap_file::PcapError::IoError)?;
        std::thread::sleep(StdDuration::from_millis(1));
    }
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    for (i, t) in taps.0.iter().enumerate() {
        w.write_pcapng_block(InterfaceStatisticsBlock {
            interface_id: i as u32,
            timestamp: end,
            options: vec![
                InterfaceStatisticsOption::IsbIfDrop(t.dropped.load(Ordering::Relaxed)),
                InterfaceStatisticsOption::IsbUsrDeliv(delivered[i]),
            ],
        })?;
    }
    w.get_mut().flush().map_err(pcap_file::PcapError::IoError)?;
    Ok(())
}

/// What a capture client saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureSummary {
    /// Enhanced packet blocks received (the frames in the file).
    pub frames: u64,
    /// Of those, flagged inbound (EPB flags direction 1).
    pub inbound: u64,
    /// Of those, flagged outbound (EPB flags direction 2).
    pub outbound: u64,
    /// Frames the server dropped (its writer fell behind), from the statistics blocks.
    pub dropped: u64,
    /// Interface statistics blocks received: one per worker when the capture ended
    /// normally (count, size, or the client's shutdown), none when it was cut off.
    pub statistics: u64,
}

/// Why a capture client stopped.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The serve answered with an error line (its text, without the prefix).
    #[error("{0}")]
    Refused(String),
    /// Reading the stream or writing the file failed.
    #[error("reading the capture: {0}")]
    Io(#[from] io::Error),
    /// The stream is not pcapng: a truncated block, a block length not a multiple of 4 in
    /// 12 bytes..=1 MiB, or a block that does not parse.
    #[error("the serve sent something that is not pcapng: {0}")]
    Format(String),
}

/// Reads the pcapng stream from `src` block by block, appends each whole block to `out`,
/// and sums up (bounded memory: one block). `started` is called after the section header,
/// which the server sends once every worker's tap is in place: every frame from then on is
/// in the capture.
pub fn receive(
    src: &mut impl Read,
    out: &mut impl Write,
    started: impl FnOnce(),
) -> Result<CaptureSummary, CaptureError> {
    receive_with(src, out, started, |_, _, _, _| true)
}

/// [`receive`], handing each frame to `frame(timestamp, direction, bytes, note)` too (the
/// stack's note from the packet comment, for a `trace` request); it returns false to stop
/// reading.
pub fn receive_with(
    src: &mut impl Read,
    out: &mut impl Write,
    started: impl FnOnce(),
    mut frame: impl FnMut(StdDuration, Dir, &[u8], Option<TapNote>) -> bool,
) -> Result<CaptureSummary, CaptureError> {
    let mut started = Some(started);
    let mut more = true;
    let mut sum = CaptureSummary::default();
    let mut block = Vec::with_capacity(64 << 10);
    let mut parser: Option<PcapNgParser> = None;
    loop {
        let mut head = [0u8; 8];
        match read_full(src, &mut head)? {
            0 => return Ok(sum),
            8 => {}
            _ => return Err(CaptureError::Format("a truncated block".into())),
        }
        if parser.is_none() && head[..4] != [0x0a, 0x0d, 0x0d, 0x0a] {
            let mut rest = Vec::new();
            src.take(4096).read_to_end(&mut rest)?;
            let text = String::from_utf8_lossy(&[&head[..], &rest].concat()).to_string();
            let msg = text
                .trim()
                .strip_prefix(super::ss::ERROR_PREFIX)
                .unwrap_or(text.trim());
            return Err(CaptureError::Refused(msg.to_string()));
        }
        // The section header is written in this machine's byte order (PcapNgWriter::new).
        let len = u32::from_ne_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
            return Err(CaptureError::Format(format!("block length {len}")));
        }
        block.clear();
        block.extend_from_slice(&head);
        block.resize(len, 0);
        if read_full(src, &mut block[8..])? != len - 8 {
            return Err(CaptureError::Format("a truncated block".into()));
        }
        let parsed = match &mut parser {
            None => {
                let (_, p) =
                    PcapNgParser::new(&block).map_err(|e| CaptureError::Format(e.to_string()))?;
                parser = Some(p);
                if let Some(f) = started.take() {
                    f();
                }
                None
            }
            Some(p) => Some(
                p.next_block(&block)
                    .map_err(|e| CaptureError::Format(e.to_string()))?
                    .1,
            ),
        };
        match parsed {
            Some(Block::EnhancedPacket(e)) => {
                sum.frames += 1;
                let dir = match e.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Flags(f) => Some(f & 3),
                    _ => None,
                }) {
                    Some(1) => {
                        sum.inbound += 1;
                        Some(Dir::In)
                    }
                    Some(2) => {
                        sum.outbound += 1;
                        Some(Dir::Out)
                    }
                    _ => None,
                };
                if let Some(d) = dir {
                    let note = e.options.iter().find_map(|o| match o {
                        EnhancedPacketOption::Comment(c) => TapNote::parse(c),
                        _ => None,
                    });
                    more = frame(e.timestamp, d, &e.data, note);
                }
            }
            Some(Block::InterfaceStatistics(s)) => {
                sum.statistics += 1;
                for o in &s.options {
                    if let InterfaceStatisticsOption::IsbIfDrop(d) = o {
                        sum.dropped += d;
                    }
                }
            }
            _ => {}
        }
        // One write per whole block: a capture cut short ends on a block boundary.
        out.write_all(&block)?;
        out.flush()?;
        if !more {
            return Ok(sum);
        }
    }
}

/// A client's stream that SIGINT / SIGTERM (the flag of [`super::stop_on_signals`]) ends
/// gracefully: it shuts its sending side, which tells the serve to finish with its
/// statistics blocks, and reads on to the end; after [`Interruptible::GRACE`] without the
/// end it reports EOF itself. Reads wake every 100 ms to look at the flag.
#[derive(Debug)]
pub struct Interruptible {
    s: UnixStream,
    stop: Arc<std::sync::atomic::AtomicBool>,
    shut_at: Option<std::time::Instant>,
}

impl Interruptible {
    /// How long an interrupted client waits for the serve's last blocks.
    pub const GRACE: StdDuration = StdDuration::from_secs(2);

    /// Wraps `s` (its read timeout becomes 100 ms).
    pub fn new(s: UnixStream, stop: Arc<std::sync::atomic::AtomicBool>) -> io::Result<Self> {
        s.set_read_timeout(Some(StdDuration::from_millis(100)))?;
        Ok(Interruptible {
            s,
            stop,
            shut_at: None,
        })
    }

    /// The client was interrupted.
    pub fn interrupted(&self) -> bool {
        self.shut_at.is_some()
    }
}

impl Read for Interruptible {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.shut_at.is_none() && self.stop.load(Ordering::Relaxed) {
                self.shut_at = Some(std::time::Instant::now());
                // The serve sees EOF and ends with its statistics.
                let _ = self.s.shutdown(std::net::Shutdown::Write);
            }
            if self.shut_at.is_some_and(|t| t.elapsed() >= Self::GRACE) {
                return Ok(0);
            }
            match self.s.read(buf) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                r => return r,
            }
        }
    }
}

/// Reads until `buf` is full or EOF; returns the bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    /// An interrupted client shuts its sending side (the serve sees EOF) and still reads
    /// what the serve sends after that, up to the serve's close.
    #[test]
    fn an_interrupted_client_reads_to_the_end() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut r = Interruptible::new(ours, stop.clone()).unwrap();
        (&theirs).write_all(b"blocks").unwrap();
        let mut b = [0u8; 16];
        assert_eq!(r.read(&mut b).unwrap(), 6);
        assert!(!r.interrupted());
        assert_eq!(client(&theirs), Client::Reading);
        stop.store(true, Ordering::Relaxed);
        let serve = std::thread::spawn(move || {
            // The serve's side: EOF from the client, then the statistics, then the end.
            let end = std::time::Instant::now() + StdDuration::from_secs(5);
            while client(&theirs) != Client::Done && std::time::Instant::now() < end {
                std::thread::sleep(StdDuration::from_millis(5));
            }
            (&theirs).write_all(b"stats").unwrap();
        });
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        serve.join().unwrap();
        assert_eq!(rest, b"stats");
        assert!(r.interrupted());
    }

    /// A serve that never answers the shutdown: the client ends after the grace period.
    #[test]
    fn an_interrupted_client_gives_up_after_the_grace() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let stop = Arc::new(AtomicBool::new(true));
        let mut r = Interruptible::new(ours, stop).unwrap();
        let mut b = [0u8; 4];
        assert_eq!(r.read(&mut b).unwrap(), 0);
    }
}
