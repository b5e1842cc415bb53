//! The control side of a running stack, on the thread that started it (the workers run on
//! their own): stop on SIGINT/SIGTERM or after a time, and the stat socket that answers
//! `xdptcp stat` with the [`report`]s.
//!
//! The stat socket is a Unix socket in the *abstract* namespace, `@xdptcp/<iface>`
//! ([`socket_name`]). Abstract names belong to the network namespace, so two serves on
//! same-named interfaces in different namespaces do not collide, `xdptcp stat` run in a
//! namespace finds exactly the serves of that namespace, and the name goes away with the
//! socket: a killed serve leaves nothing behind (no stale file), and an unprivileged serve
//! (after `--user`) needs no write access to a directory to clean up. Abstract sockets have no
//! file permissions, so the server checks the client's credentials (SO_PEERCRED): root and the
//! serve's own user are answered, anyone else gets one `error:` line.
//!
//! Protocol (extensible): a client connects, writes one request line of at most
//! [`MAX_REQUEST`] bytes, `VERB [ARGS]`, and reads the answer until EOF. Verbs: `text` and
//! `json` (the reports), `ss ARGS` (a socket listing) and `capture ARGS` (pcapng), the
//! last two streamed. An unknown verb is answered `error: unknown request ...` (so an old
//! serve tells a newer client clearly); new verbs are new [`Request`] variants. The report is
//! built from the workers' published snapshots (at most ~100 ms old), so asking costs the
//! workers nothing. Each client is served with 1 s I/O timeouts, one at a time: bounded.

pub mod capture;
pub mod metrics;
pub mod privileges;
pub mod report;
pub mod ss;
pub mod ss_filter;
pub mod trace;

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration as StdDuration;

use crate::worker::{StatsHandle, WorkerSnapshot};
pub use report::StatMeta;
use report::{report_json, report_text};

/// The directory of the reserved-ports records (and, before abstract sockets, of the stat
/// sockets: stale `*.sock` files found there are removed at start).
pub use crate::stack::STAT_DIR;

/// Prefix of every stat socket's abstract name.
pub const SOCKET_PREFIX: &str = "xdptcp/";

/// Longest request line accepted (bytes, newline included): an `ss` filter fits.
pub const MAX_REQUEST: u64 = 4096;

/// The abstract name of the stat socket of the serve on `ifname` (without the leading NUL).
pub fn socket_name(ifname: &str) -> String {
    format!("{SOCKET_PREFIX}{ifname}")
}

/// How the stat socket is shown to people: `@xdptcp/<ifname>` (like `ss -x` shows it).
pub fn socket_display(ifname: &str) -> String {
    format!("@{}", socket_name(ifname))
}

fn abstract_addr(ifname: &str) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(socket_name(ifname).as_bytes())
}

const IO_TIMEOUT: StdDuration = StdDuration::from_secs(1);

/// One request line of the stat protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `text`: the human-readable report.
    Text,
    /// `json`: the report as JSON.
    Json,
    /// `ss FLAGS FILTER...`: a socket listing, streamed ([`ss`]); the arguments.
    Ss(String),
    /// `capture ARGS`: frames in and out as pcapng, streamed ([`capture`]); the arguments.
    Capture(String),
    /// `trace ARGS`: as `capture`, each frame with the stack's state around it as its
    /// packet comment (`xdptcp trace`).
    Trace(String),
}

/// A request line the serve does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown request {0:?} (known: text, json, ss, capture, trace)")]
pub struct UnknownRequest(pub String);

impl Request {
    /// Parses one request line (`VERB [ARGS]`).
    pub fn parse(line: &str) -> Result<Request, UnknownRequest> {
        let line = line.trim();
        let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match (verb, rest.trim()) {
            ("text", "") => Ok(Request::Text),
            ("json", "") => Ok(Request::Json),
            ("ss", args) => Ok(Request::Ss(args.to_string())),
            ("capture", args) => Ok(Request::Capture(args.to_string())),
            ("trace", args) => Ok(Request::Trace(args.to_string())),
            _ => Err(UnknownRequest(line.to_string())),
        }
    }
}

/// The listening side, owned by `serve`. The abstract name disappears when it is dropped.
#[derive(Debug)]
pub struct StatServer {
    listener: UnixListener,
    name: String,
    /// Besides root, the user allowed to ask (the serve's effective uid when it answers).
    allowed_uid: u32,
}

impl StatServer {
    /// Binds `@xdptcp/<ifname>` in the calling thread's network namespace (non-blocking
    /// accept). Fails with `AddrInUse` when a serve on `ifname` already answers there.
    pub fn bind(ifname: &str) -> io::Result<StatServer> {
        remove_stale_files();
        let listener = UnixListener::bind_addr(&abstract_addr(ifname)?)?;
        listener.set_nonblocking(true)?;
        Ok(StatServer {
            listener,
            name: socket_display(ifname),
            // SAFETY: geteuid has no preconditions.
            allowed_uid: unsafe { libc::geteuid() },
        })
    }

    /// `@xdptcp/<ifname>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Also answer clients of `uid` (the user `serve` drops to).
    pub fn allow_uid(&mut self, uid: u32) {
        self.allowed_uid = uid;
    }

    /// Answers every client waiting now. Errors of one client are ignored.
    pub fn poll(&self, meta: &StatMeta, handles: &[StatsHandle]) {
        // Bounded: at most 64 clients per call.
        for _ in 0..64 {
            match self.listener.accept() {
                Ok((s, _)) => {
                    let _ = answer(s, self.allowed_uid, meta, handles);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return,
            }
        }
    }
}

/// Removes `STAT_DIR/*.sock` files nobody answers on (left by serves of earlier versions,
/// which used files). Best effort.
fn remove_stale_files() {
    let Ok(dir) = std::fs::read_dir(STAT_DIR) else {
        return;
    };
    for e in dir.flatten().take(4096) {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sock") && UnixStream::connect(&p).is_err() {
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// The uid of the process at the other end of `s` (SO_PEERCRED).
fn peer_uid(s: &UnixStream) -> io::Result<u32> {
    use std::os::fd::AsRawFd;
    // SAFETY: ucred is plain data; all-zero is valid.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we own.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut libc::ucred as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

fn answer(
    s: UnixStream,
    allowed_uid: u32,
    meta: &StatMeta,
    handles: &[StatsHandle],
) -> io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let uid = peer_uid(&s)?;
    if uid != 0 && uid != allowed_uid {
        return (&s).write_all(b"error: permission denied (root or the serve's user only)\n");
    }
    let mut line = String::new();
    BufReader::new((&s).take(MAX_REQUEST)).read_line(&mut line)?;
    let reply = match Request::parse(&line) {
        Ok(Request::Capture(rest)) => {
            match capture::CaptureRequest::parse(&rest) {
                Ok(req) => capture::serve(s, req, &meta.ifname, handles),
                Err(e) => writeln!(&s, "{}{e}", ss::ERROR_PREFIX)?,
            }
            return Ok(());
        }
        Ok(Request::Trace(rest)) => {
            match capture::CaptureRequest::parse(&rest) {
                Ok(req) => capture::serve(s, req.with_notes(), &meta.ifname, handles),
                Err(e) => writeln!(&s, "{}{e}", ss::ERROR_PREFIX)?,
            }
            return Ok(());
        }
        Ok(Request::Ss(rest)) => {
            // Streams: bounded memory whatever the number of connections.
            let mut out = io::BufWriter::with_capacity(64 << 10, &s);
            match ss::SsRequest::parse(&rest) {
                Ok(req) => ss::answer(&mut out, &req, handles)?,
                Err(e) => writeln!(out, "{}{e}", ss::ERROR_PREFIX)?,
            }
            return out.flush();
        }
        Ok(req) => {
            let snaps: Vec<WorkerSnapshot> = handles.iter().map(StatsHandle::get).collect();
            match req {
                Request::Json => report_json(meta, &snaps),
                _ => report_text(meta, &snaps),
            }
        }
        Err(bad) => format!("error: {bad}\n"),
    };
    (&s).write_all(reply.as_bytes())
}

/// Why `xdptcp stat` got no report.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Nobody listens on the socket.
    #[error("no xdptcp serve running on {ifname} in this network namespace (no {name})")]
    NotRunning {
        /// The interface asked about.
        ifname: String,
        /// Its stat socket (`@xdptcp/<ifname>`).
        name: String,
    },
    /// Connecting to or reading from the stat socket failed.
    #[error("{name}: {source}")]
    Io {
        /// The stat socket.
        name: String,
        /// What the system call said.
        #[source]
        source: io::Error,
    },
    /// The serve answered with an `error:` line.
    #[error("{name}: {message}")]
    Refused {
        /// The stat socket.
        name: String,
        /// The serve's error line.
        message: String,
    },
}

/// Asks the serve of `ifname` for its report (`json` or text).
pub fn query(ifname: &str, json: bool) -> Result<String, QueryError> {
    request(ifname, if json { "json" } else { "text" })
}

/// Sends one request line (`VERB [ARGS]`, see [`Request`]) to the serve of `ifname` and
/// returns the answer (at most 1 MiB); an `error:` answer becomes [`QueryError::Refused`].
pub fn request(ifname: &str, line: &str) -> Result<String, QueryError> {
    let name = socket_display(ifname);
    let io = |source: io::Error| QueryError::Io {
        name: name.clone(),
        source,
    };
    let mut s = UnixStream::connect_addr(&abstract_addr(ifname).map_err(io)?).map_err(|e| {
        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) {
            QueryError::NotRunning {
                ifname: ifname.to_string(),
                name: name.clone(),
            }
        } else {
            io(e)
        }
    })?;
    s.set_read_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    s.set_write_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    // A refusing server may close before reading the request: a write error then is not
    // the story, the error line is.
    let sent = s.write_all(format!("{line}\n").as_bytes());
    let mut out = String::new();
    // Reports are a few KiB; 1 MiB bounds a misbehaving server.
    let read = s.take(1 << 20).read_to_string(&mut out);
    if let Some(m) = out.strip_prefix("error: ") {
        return Err(QueryError::Refused {
            name,
            message: m.trim_end().to_string(),
        });
    }
    sent.map_err(io)?;
    read.map_err(io)?;
    Ok(out)
}

/// Sends `request` (one line) to the serve of `ifname` and copies the answer to `out` as it
/// arrives (an `ss` listing streams: bounded memory whatever its length). A line starting
/// with [`ss::ERROR_PREFIX`] is the server refusing the request.
pub fn query_stream(ifname: &str, request: &str, out: &mut impl Write) -> Result<(), QueryError> {
    let (mut s, name) = request_stream(ifname, request, Some(StdDuration::from_secs(5)))?;
    io::copy(&mut s, out).map_err(|source| QueryError::Io { name, source })?;
    Ok(())
}

/// Connects to the serve of `ifname`, sends `request`; returns the stream to read the answer
/// from (with `read_timeout` per read) and the socket's display name.
pub fn request_stream(
    ifname: &str,
    request: &str,
    read_timeout: Option<StdDuration>,
) -> Result<(UnixStream, String), QueryError> {
    let name = socket_display(ifname);
    let io = |source: io::Error| QueryError::Io {
        name: name.clone(),
        source,
    };
    let mut s = UnixStream::connect_addr(&abstract_addr(ifname).map_err(io)?).map_err(|e| {
        if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) {
            QueryError::NotRunning {
                ifname: ifname.to_string(),
                name: name.clone(),
            }
        } else {
            io(e)
        }
    })?;
    // Per read, not in total: a listing of a million rows takes seconds.
    s.set_read_timeout(read_timeout).map_err(io)?;
    s.set_write_timeout(Some(StdDuration::from_secs(5)))
        .map_err(io)?;
    s.write_all(format!("{request}\n").as_bytes()).map_err(io)?;
    Ok((s, name))
}

/// The interfaces with a listening stat socket in the calling thread's network namespace
/// (from `/proc/thread-self/net/unix`: listening sockets named `@xdptcp/...`).
pub fn running() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/thread-self/net/unix").unwrap_or_default();
    let mut v = parse_proc_net_unix(&text);
    v.sort();
    v.dedup();
    v
}

/// The interface names of listening `@xdptcp/<ifname>` sockets in a `/proc/net/unix` text.
fn parse_proc_net_unix(text: &str) -> Vec<String> {
    const ACCEPTCON: u32 = 0x10000;
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            let path = f.get(7)?;
            let name = path.strip_prefix('@')?.strip_prefix(SOCKET_PREFIX)?;
            (flags & ACCEPTCON != 0 && !name.is_empty()).then(|| name.to_string())
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_unknown_verbs_are_errors() {
        assert_eq!(Request::parse("text\n"), Ok(Request::Text));
        assert_eq!(Request::parse(" json \n"), Ok(Request::Json));
        let bad = |s: &str| Err(UnknownRequest(s.to_string()));
        assert_eq!(Request::parse("conns all\n"), bad("conns all"));
        assert_eq!(Request::parse("text extra"), bad("text extra"));
        assert_eq!(Request::parse(""), bad(""));
    }

    #[test]
    fn proc_net_unix_lists_listening_stat_sockets_only() {
        let t = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 @xdptcp/veth0
0000000000000000: 00000003 00000000 00000000 0001 03 31338 @xdptcp/veth0
0000000000000000: 00000002 00000000 00010000 0001 01 31339 /run/other.sock
0000000000000000: 00000002 00000000 00010000 0001 01 31340 @xdptcp/eth1
0000000000000000: 00000002 00000000 00000000 0002 01 31341
";
        assert_eq!(parse_proc_net_unix(t), vec!["veth0", "eth1"]);
    }

    #[test]
    fn abstract_socket_round_trip_and_name_gone_after_drop() {
        let ifname = format!("t{}", std::process::id());
        let srv = StatServer::bind(&ifname).expect("bind");
        assert!(running().contains(&ifname));
        assert!(matches!(
            StatServer::bind(&ifname),
            Err(e) if e.kind() == ErrorKind::AddrInUse
        ));
        let t = std::thread::spawn({
            let ifname = ifname.clone();
            move || request(&ifname, "bogus")
        });
        let meta = StatMeta {
            ifname: ifname.clone(),
            addr: std::net::Ipv4Addr::new(198, 18, 0, 1).into(),
            pid: 1,
            xdp: None,
            routes: None,
        };
        for _ in 0..500 {
            srv.poll(&meta, &[]);
            if t.is_finished() {
                break;
            }
            std::thread::sleep(StdDuration::from_millis(10));
        }
        match t.join().unwrap() {
            Err(QueryError::Refused { message, .. }) => {
                assert!(
                    message.starts_with("unknown request \"bogus\""),
                    "{message}"
                )
            }
            r => panic!("{r:?}"),
        }
        drop(srv);
        assert!(!running().contains(&ifname));
        assert!(matches!(
            query(&ifname, false),
            Err(QueryError::NotRunning { .. })
        ));
    }
}
