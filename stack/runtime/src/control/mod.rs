//! The control side of a running stack, on the thread that started it (the workers run on
//! their own): stop on SIGINT/SIGTERM or after a time, and the stat socket that answers
//! `xdptcp stat` with the [`report`]s.
//!
//! The stat socket is `/run/xdptcp/<iface>.sock` (directory mode 0700, socket mode 0600: root
//! only; removed on exit; a stale file of a killed serve is replaced). A client connects,
//! writes one request line (`text` or `json`) and reads the report until EOF. The report is
//! built from the workers' published snapshots (at most ~100 ms old), so asking costs the
//! workers nothing. Each client is served with 1 s I/O timeouts, one at a time: bounded.

pub mod capture;
pub mod metrics;
pub mod report;
pub mod ss;
pub mod ss_filter;
pub mod trace;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use crate::worker::{StatsHandle, WorkerSnapshot};
pub use report::StatMeta;
use report::{report_json, report_text};

/// Where stat sockets live.
pub const STAT_DIR: &str = "/run/xdptcp";

/// The socket of the stack serving `ifname`.
pub fn socket_path(ifname: &str) -> PathBuf {
    Path::new(STAT_DIR).join(format!("{ifname}.sock"))
}

const IO_TIMEOUT: StdDuration = StdDuration::from_secs(1);

/// The listening side, owned by `serve`. Removes the socket file on drop.
#[derive(Debug)]
pub struct StatServer {
    listener: UnixListener,
    path: PathBuf,
}

impl StatServer {
    /// Binds `/run/xdptcp/<ifname>.sock` (non-blocking accept).
    pub fn bind(ifname: &str) -> io::Result<StatServer> {
        std::fs::create_dir_all(STAT_DIR)?;
        std::fs::set_permissions(STAT_DIR, std::fs::Permissions::from_mode(0o700))?;
        let path = socket_path(ifname);
        // A file left by a serve that was killed: nobody answers on it.
        if path.exists() && UnixStream::connect(&path).is_err() {
            let _ = std::fs::remove_file(&path);
        }
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(StatServer { listener, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Answers every client waiting now. Errors of one client are ignored.
    pub fn poll(&self, meta: &StatMeta, handles: &[StatsHandle]) {
        // Bounded: at most 64 clients per call.
        for _ in 0..64 {
            match self.listener.accept() {
                Ok((s, _)) => {
                    let _ = answer(s, meta, handles);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }
}

impl Drop for StatServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn answer(s: UnixStream, meta: &StatMeta, handles: &[StatsHandle]) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut line = String::new();
    // Bounded: a request line (an `ss` filter) is at most 4 KiB.
    BufReader::new((&s).take(4096)).read_line(&mut line)?;
    if let Some(rest) = line.trim().strip_prefix("capture") {
        match capture::CaptureRequest::parse(rest) {
            Ok(req) => capture::serve(s, req, &meta.ifname, handles),
            Err(e) => writeln!(&s, "{}{e}", ss::ERROR_PREFIX)?,
        }
        return Ok(());
    }
    if let Some(rest) = line.trim().strip_prefix("ss") {
        let mut out = io::BufWriter::with_capacity(64 << 10, &s);
        match ss::SsRequest::parse(rest) {
            Ok(req) => ss::answer(&mut out, &req, handles)?,
            Err(e) => writeln!(out, "{}{e}", ss::ERROR_PREFIX)?,
        }
        return out.flush();
    }
    let snaps: Vec<WorkerSnapshot> = handles.iter().map(StatsHandle::get).collect();
    let report = if line.trim() == "json" {
        report_json(meta, &snaps)
    } else {
        report_text(meta, &snaps)
    };
    (&s).write_all(report.as_bytes())
}

/// Why `xdptcp stat` got no report.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nobody listens on the socket (or it does not exist).
    #[error("no xdptcp serve running on {ifname} (no {})", path.display())]
    NotRunning { ifname: String, path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Asks the serve of `ifname` for its report (`json` or text).
pub fn query(ifname: &str, json: bool) -> Result<String, QueryError> {
    let path = socket_path(ifname);
    let mut s = UnixStream::connect(&path).map_err(|e| {
        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) {
            QueryError::NotRunning {
                ifname: ifname.to_string(),
                path: path.clone(),
            }
        } else {
            QueryError::Io {
                path: path.clone(),
                source: e,
            }
        }
    })?;
    let io = |source: io::Error| QueryError::Io {
        path: path.clone(),
        source,
    };
    s.set_read_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    s.set_write_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    s.write_all(if json { b"json\n" } else { b"text\n" })
        .map_err(io)?;
    let mut out = String::new();
    // Reports are a few KiB; 1 MiB bounds a misbehaving server.
    s.take(1 << 20).read_to_string(&mut out).map_err(io)?;
    Ok(out)
}

/// Sends `request` (one line) to the serve of `ifname` and copies the answer to `out` as it
/// arrives (an `ss` listing streams: bounded memory whatever its length). A line starting
/// with [`ss::ERROR_PREFIX`] is the server refusing the request.
pub fn query_stream(ifname: &str, request: &str, out: &mut impl Write) -> Result<(), QueryError> {
    let (mut s, path) = request_stream(ifname, request, Some(StdDuration::from_secs(5)))?;
    io::copy(&mut s, out).map_err(|source| QueryError::Io { path, source })?;
    Ok(())
}

/// Connects to the serve of `ifname`, sends `request`; the stream to read the answer from
/// (with `read_timeout` per read).
pub fn request_stream(
    ifname: &str,
    request: &str,
    read_timeout: Option<StdDuration>,
) -> Result<(UnixStream, PathBuf), QueryError> {
    let path = socket_path(ifname);
    let mut s = UnixStream::connect(&path).map_err(|e| {
        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) {
            QueryError::NotRunning {
                ifname: ifname.to_string(),
                path: path.clone(),
            }
        } else {
            QueryError::Io {
                path: path.clone(),
                source: e,
            }
        }
    })?;
    let io = |source: io::Error| QueryError::Io {
        path: path.clone(),
        source,
    };
    // Per read, not in total: a listing of a million rows takes seconds.
    s.set_read_timeout(read_timeout).map_err(io)?;
    s.set_write_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(io)?;
    Ok((s, path))
}

/// The interfaces with a stat socket now.
pub fn running() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(STAT_DIR)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".sock"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Answers stat clients every 20 ms until `stop` is set (or, with a `deadline`, until then;
/// it then sets `stop`). The control loop of `xdptcp serve`.
pub fn answer_until(
    stat: &StatServer,
    meta: &StatMeta,
    handles: &[StatsHandle],
    stop: &AtomicBool,
    deadline: Option<std::time::Instant>,
) {
    while !stop.load(Ordering::Relaxed) {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            stop.store(true, Ordering::Relaxed);
            break;
        }
        stat.poll(meta, handles);
        std::thread::sleep(StdDuration::from_millis(20));
    }
}

static STOP: OnceLock<Arc<AtomicBool>> = OnceLock::new();

extern "C" fn on_signal(_: libc::c_int) {
    if let Some(f) = STOP.get() {
        f.store(true, Ordering::Relaxed);
    }
}

/// SIGINT and SIGTERM set the returned flag (one flag per process).
pub fn stop_on_signals() -> Arc<AtomicBool> {
    let flag = STOP
        .get_or_init(|| Arc::new(AtomicBool::new(false)))
        .clone();
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only does an atomic store (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
    flag
}

/// Sets `stop` after `secs` seconds (a detached timer thread).
pub fn stop_after(stop: Arc<AtomicBool>, secs: u64) {
    std::thread::spawn(move || {
        std::thread::sleep(StdDuration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
    });
}
