//! The Linux baseline server: plain kernel sockets driven by mio (epoll), one thread per
//! worker, each with its own SO_REUSEPORT listener, setns'd into the server namespace and
//! pinned to a core. Its applications follow the `xdptcp serve --listen PORT=APP` contract so that
//! pairings are comparable, plus `source` for the download direction of `bulk`.

use crate::error::{bail, format_err, Result};
use crate::kinds::ServerApp;
use crate::sys;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections one worker holds at most; further accepts are closed at once (memory bound:
/// this many slots of a few dozen bytes plus at most `ECHO_BUF` pending bytes each).
pub const MAX_CONNS_PER_WORKER: usize = 1 << 21;
const ECHO_BUF: usize = 64 * 1024;
const LISTENER: Token = Token(usize::MAX);

pub struct LinuxServer {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
}

impl LinuxServer {
    /// Starts `workers` threads in namespace `ns`, pinned to `cores[i % len]`, and returns once
    /// every listener is listening.
    pub fn start(
        ns: &str,
        addr: impl Into<SocketAddr>,
        app: ServerApp,
        workers: usize,
        cores: &[usize],
    ) -> Result<Self> {
        let addr: SocketAddr = addr.into();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<()>>();
        let mut threads = Vec::new();
        for i in 0..workers.max(1) {
            let (ns, stop, tx) = (ns.to_string(), stop.clone(), tx.clone());
            let core = cores[i % cores.len()];
            threads.push(std::thread::spawn(move || -> Result<()> {
                let setup = (|| {
                    sys::enter_netns(&ns)?;
                    sys::pin(core);
                    reuseport_listener(addr)
                })();
                match setup {
                    Ok(l) => {
                        let _ = tx.send(Ok(()));
                        serve(l, app, &stop)
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format_err!("{e:#}")));
                        Err(e)
                    }
                }
            }));
        }
        let server = LinuxServer { stop, threads };
        for _ in 0..workers.max(1) {
            rx.recv_timeout(Duration::from_secs(10))
                .map_err(|_| format_err!("Linux server did not start within 10 s"))??;
        }
        Ok(server)
    }
}

impl Drop for LinuxServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A listening socket on `addr` (either family) with SO_REUSEADDR and SO_REUSEPORT.
fn reuseport_listener(addr: SocketAddr) -> Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => libc::AF_INET,
        SocketAddr::V6(_) => libc::AF_INET6,
    };
    // SAFETY: plain socket syscalls on a fresh fd we own; errors are checked.
    unsafe {
        let fd = libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            bail!("socket: {}", std::io::Error::last_os_error());
        }
        let l = std::net::TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let rc = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as u16,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                libc::bind(
                    fd,
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as u32,
                )
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as u16,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: 0,
                };
                libc::bind(
                    fd,
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as u32,
                )
            }
        };
        if rc != 0 {
            bail!("bind {addr}: {}", std::io::Error::last_os_error());
        }
        if libc::listen(fd, 65535) != 0 {
            bail!("listen: {}", std::io::Error::last_os_error());
        }
        Ok(TcpListener::from_std(l))
    }
}

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet echoed (echo only); reading pauses while non-empty.
    pending: Vec<u8>,
}

/// One worker's event loop; ends when `stop` is set (checked every 50 ms at least).
fn serve(mut listener: TcpListener, app: ServerApp, stop: &AtomicBool) -> Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut buf = vec![0u8; ECHO_BUF];
    let source = vec![0x5au8; ECHO_BUF];
    while !stop.load(Ordering::Relaxed) && !sys::stopped() {
        poll.poll(&mut events, Some(Duration::from_millis(50)))?;
        for ev in events.iter() {
            if ev.token() == LISTENER {
                accept_all(&mut listener, &poll, app, &mut conns, &mut free)?;
                continue;
            }
            let i = ev.token().0;
            let Some(c) = conns.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            let keep = match app {
                ServerApp::Echo => echo(c, &mut buf),
                ServerApp::Discard => discard(c, &mut buf),
                ServerApp::Source => source_write(c, &source, &mut buf),
                ServerApp::CloseFirst => false,
            };
            if !keep {
                if let Some(mut c) = conns[i].take() {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                free.push(i);
            }
        }
    }
    Ok(())
}

fn accept_all(
    listener: &mut TcpListener,
    poll: &Poll,
    app: ServerApp,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
) -> Result<()> {
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            // ECONNABORTED, EMFILE, ...: skip this one; the client counts the failure.
            Err(_) => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        if app == ServerApp::CloseFirst {
            // As `xdptcp serve`'s close-first: on accept send `bye\n` and close first (the server
            // does the active close).
            let _ = stream.write(b"bye\n");
            continue;
        }
        let i = match free.pop() {
            Some(i) => i,
            None if conns.len() < MAX_CONNS_PER_WORKER => {
                conns.push(None);
                conns.len() - 1
            }
            None => continue, // over the bound: dropping closes it
        };
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut c = Conn {
            stream,
            pending: Vec::new(),
        };
        let mut buf = [0u8; 0];
        if app == ServerApp::Source {
            // Start streaming at once; later writes follow WRITABLE events.
            let src = vec![0x5au8; ECHO_BUF];
            let _ = source_write(&mut c, &src, &mut buf);
        }
        conns[i] = Some(c);
    }
}

/// Echoes everything; closes when the peer closes (as `xdptcp serve`'s `echo`). Returns
/// false to close.
fn echo(c: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        while !c.pending.is_empty() {
            match c.stream.write(&c.pending) {
                Ok(n) => {
                    c.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => c.pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

fn discard(c: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        match c.stream.read(buf) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes until the socket is full; notices the peer's close through the read side.
fn source_write(c: &mut Conn, src: &[u8], buf: &mut [u8]) -> bool {
    if !buf.is_empty() {
        match c.stream.read(buf) {
            Ok(0) => return false,
            Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::Interrupted => {
                return false
            }
            _ => {}
        }
    }
    loop {
        match c.stream.write(src) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
