//! Unmodified programs on the stack through the POSIX layer (root only): real veth pairs in
//! fresh namespaces (`harness::VethPair`), Python programs run with `libxdptcp_posix.so`
//! preloaded (the environment is built by `xdptcp::launch::command`, what `xdptcp run`
//! execs), Linux programs in the peer namespace.
//!
//! - an epoll echo server under the stack, a Linux client: 1 MiB echoed byte for byte, the
//!   client's half-close seen by the server as recv() == 0, 50 sequential connections, the
//!   client's RST seen as ECONNRESET;
//! - call semantics: the same client script (tests/py/semantics.py) runs on the kernel and on
//!   the stack against the same Linux server; the outputs must be identical;
//! - a multi-threaded client sharing the stack, and memcached `-t 2` (a multi-threaded
//!   server) serving 64 connections at once;
//! - nginx (workers as `user www-data;`, also over IPv6) and redis-server, unmodified;
//! - output a program queued leaves although it then blocks in a kernel call (XDPTCP_FLUSH);
//! - AF_INET6 (tests/py/dual_stack.py, kernel vs stack): dual-stack and IPV6_V6ONLY
//!   listeners, IPv4-mapped names, active opens over IPv6.
//!
//! Every process is bounded (the scripts end themselves after at most 120 s, `Proc` kills
//! them by PID on drop) and every wait has a timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use xdptcp::launch::{self, RunSpec, LIBRARY};
use xdptcp_harness::{
    require_root, VethOptions, VethPair, PEER_ADDR, PEER_ADDR6, STACK_ADDR, STACK_ADDR6,
};

const WAIT: Duration = Duration::from_secs(30);

/// The preload library cargo built next to this test (target/<profile>/deps or its parent).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let deps = exe.parent().expect("deps dir");
    for dir in [Some(deps), deps.parent()].into_iter().flatten() {
        let p = dir.join(LIBRARY);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{LIBRARY} not found near {}: cargo build -p xdptcp-posix",
        deps.display()
    );
}

fn script(name: &str) -> String {
    format!("{}/tests/py/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `args` in the stack namespace with the POSIX layer preloaded (as `xdptcp run` does).
fn on_stack(pair: &VethPair, args: &[&str]) -> Command {
    on_stack_workers(pair, 1, args)
}

/// [`on_stack`] with `XDPTCP_WORKERS` = `workers` (queues for forked worker processes).
fn on_stack_workers(pair: &VethPair, workers: usize, args: &[&str]) -> Command {
    on_stack_spec(pair, workers, Some(STACK_ADDR), Vec::new(), args)
}

/// [`on_stack`] with the stack's IPv6 address too (`xdptcp run --addr V4 --addr V6`;
/// [`VethPair::add_ipv6`] first).
fn on_stack_dual(pair: &VethPair, args: &[&str]) -> Command {
    on_stack_spec(pair, 1, Some(STACK_ADDR), vec![STACK_ADDR6], args)
}

fn on_stack_spec(
    pair: &VethPair,
    workers: usize,
    addr: Option<std::net::Ipv4Addr>,
    addrs6: Vec<std::net::Ipv6Addr>,
    args: &[&str],
) -> Command {
    let spec = RunSpec {
        iface: pair.stack_if.clone(),
        addr,
        addrs6,
        sets: Vec::new(),
        ephemeral: (61000, 61999),
        workers,
    };
    let mut full: Vec<String> = ["netns", "exec", &pair.stack_ns]
        .iter()
        .map(|s| s.to_string())
        .collect();
    full.extend(args.iter().map(|s| s.to_string()));
    launch::command(&spec, &library(), "ip", &full)
}

/// `args` in namespace `ns`, on the kernel.
fn in_ns(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(args);
    c
}

/// A running program whose stdout lines are read on a thread; killed (by PID) on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn spawn(mut c: Command) -> Proc {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// Waits for the next line; panics after `WAIT`.
    fn line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|e| panic!("no line from the program within {WAIT:?}: {e}"))
    }

    /// Writes one line to the program's stdin.
    fn say(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("writing to the program");
        stdin.flush().unwrap();
    }

    /// Lines up to and including `last`.
    fn lines_until(&self, last: &str) -> Vec<String> {
        let mut v = Vec::new();
        loop {
            let l = self.line();
            let end = l == last;
            v.push(l);
            if end {
                return v;
            }
        }
    }

    fn expect(&self, want: &str) {
        let l = self.line();
        assert_eq!(l, want, "unexpected line from the program");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pattern(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Sends `data`, half-closes, reads the echo to the end of stream.
fn echo_roundtrip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the stack");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    let mut w = s.try_clone().unwrap();
    let out = data.to_vec();
    let writer = std::thread::spawn(move || {
        w.write_all(&out).expect("writing");
        w.shutdown(Shutdown::Write).expect("half-close");
    });
    let mut back = Vec::with_capacity(data.len());
    (&s).read_to_end(&mut back).expect("reading the echo");
    writer.join().unwrap();
    back
}

#[test]
fn epoll_echo_server_under_the_stack() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let srv = Proc::spawn(on_stack(
        &pair,
        &["python3", &script("echo_server.py"), "7000"],
    ));
    srv.expect("ready 7000");
    let addr = SocketAddr::from((STACK_ADDR, 7000));

    // 1 MiB byte for byte; the client's FIN reaches the server as recv() == 0.
    let data = pattern(1 << 20, 1);
    let back = pair.in_peer(|| echo_roundtrip(addr, &data)).unwrap();
    assert!(
        back == data,
        "echo differs: {} of {} bytes back",
        back.len(),
        data.len()
    );
    srv.expect("eof");

    // Many sequential connections.
    pair.in_peer(|| {
        for i in 0..50u32 {
            let d = pattern(100 + i as usize * 37, i + 2);
            assert_eq!(echo_roundtrip(addr, &d), d, "connection {i}");
        }
    })
    .unwrap();
    for _ in 0..50 {
        srv.expect("eof");
    }

    // The client aborts (SO_LINGER 0): the server's recv fails with ECONNRESET.
    pair.in_peer(|| {
        let mut s = TcpStream::connect_timeout(&addr, WAIT).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        let lg = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: a valid linger on our own socket.
        let r = unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &lg as *const libc::linger as *const libc::c_void,
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        drop(s); // RST
    })
    .unwrap();
    srv.expect("reset");
}

/// Runs semantics.py to completion and returns its stdout.
fn semantics(mut c: Command) -> String {
    let out = c
        .stderr(Stdio::inherit())
        .output()
        .expect("running semantics.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "semantics.py failed ({}):\n{text}",
        out.status
    );
    text
}

#[test]
fn call_semantics_match_the_kernel() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let peer = PEER_ADDR.to_string();
    let srv = Proc::spawn(in_ns(
        &pair.peer_ns,
        &["python3", &script("peer_server.py"), &peer, "5000"],
    ));
    srv.expect("ready");
    let args = ["python3", &script("semantics.py"), &peer, "5000", "5001"];
    let kernel = semantics(in_ns(&pair.stack_ns, &args));
    let stack = semantics(on_stack(&pair, &args));
    println!("kernel:\n{kernel}");
    // The reference is what we think it is.
    for l in [
        "connect_closed_blocking: ECONNREFUSED",
        "connect_closed_so_error: ECONNREFUSED",
        "connect_open_nonblocking: EINPROGRESS",
        "recv_nothing_nonblocking: EAGAIN",
        "et_again_without_reading: []",
        "peer_close_events: ['IN', 'RDHUP']",
        "recv_after_rst: ECONNRESET",
        "send_after_shut_wr: EPIPE",
        "mixed_idle_sleeps: True",
        "full_select: (True, True, True)",
        "full_poll: (True, True, True)",
        "full_epoll: (True, True, True)",
        "done",
    ] {
        assert!(
            kernel.lines().any(|k| k == l),
            "kernel output lacks {l:?}:\n{kernel}"
        );
    }
    let (k, s): (Vec<&str>, Vec<&str>) = (kernel.lines().collect(), stack.lines().collect());
    for (i, (a, b)) in k.iter().zip(&s).enumerate() {
        assert_eq!(a, b, "check {i} differs (kernel vs stack)");
    }
    assert_eq!(k.len(), s.len(), "stack output:\n{stack}");
}

#[test]
fn threads_share_the_stack() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let peer = PEER_ADDR.to_string();
    let srv = Proc::spawn(in_ns(
        &pair.peer_ns,
        &["python3", &script("peer_server.py"), &peer, "5000"],
    ));
    srv.expect("ready");
    let client = Proc::spawn(on_stack(
        &pair,
        &["python3", &script("threads.py"), &peer, "5000", "8", "10"],
    ));
    client.expect("ok 80");
}

/// The next connection on `l`, or `None` after `wait` (a listener never blocks a test).
fn accept_within(l: &std::net::TcpListener, wait: Duration) -> Option<TcpStream> {
    l.set_nonblocking(true).unwrap();
    let end = std::time::Instant::now() + wait;
    while std::time::Instant::now() < end {
        if let Ok((s, _)) = l.accept() {
            s.set_nonblocking(false).unwrap();
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    None
}

/// XDPTCP_FLUSH=wait (the default) transmits a call's output at the caller's next wait: a
/// program that sends and then blocks elsewhere (a kernel read of stdin) still gets its data
/// out, from the stack thread within its 1 ms sleep bound. The peer's read timeout (2 s) is
/// far above that bound and far below the program's wait (until told).
#[test]
fn output_leaves_without_a_following_wait() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let l = pair
        .in_peer(|| std::net::TcpListener::bind((PEER_ADDR, 5100)).expect("peer listener"))
        .unwrap();
    let mut prog = Proc::spawn(on_stack(
        &pair,
        &[
            "python3",
            &script("send_then_block.py"),
            &PEER_ADDR.to_string(),
            "5100",
        ],
    ));
    let mut s = accept_within(&l, WAIT).expect("the program's connection");
    prog.expect("sent");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b)
        .expect("the data while the program blocks in a kernel read");
    assert_eq!(&b, b"ping");
    prog.say("");
    prog.expect("done");
    let mut rest = Vec::new();
    s.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(s.read_to_end(&mut rest).expect("FIN"), 0);
    // A program that exits gives its ephemeral range back to the kernel: no reservation
    // record of its PID stays in /run/xdptcp (`ip netns exec` execs it: same PID).
    let pid = prog.child.id();
    let end = std::time::Instant::now() + WAIT;
    while prog.child.try_wait().ok().flatten().is_none() && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<String> = std::fs::read_dir("/run/xdptcp")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("reserved-") && n.contains(&format!("-{pid}-")))
        .collect();
    assert!(left.is_empty(), "reservation records left: {left:?}");
}

/// A directory for one nginx run, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn nginx_serves_static_files_through_the_stack() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    pair.add_ipv6().expect("IPv6 addresses");
    let dir = TempDir(std::env::temp_dir().join(format!("xdptcp-nginx-{}", pair.suffix)));
    let d = dir.0.display().to_string();
    std::fs::create_dir_all(dir.0.join("www")).unwrap();
    std::fs::create_dir_all(dir.0.join("tmp")).unwrap();
    let big = pattern(10 << 20, 7);
    std::fs::write(dir.0.join("www/big.bin"), &big).unwrap();
    std::fs::write(
        dir.0.join("www/index.html"),
        b"hello from nginx on xdptcp\n",
    )
    .unwrap();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1;\n\
         error_log {d}/error.log info; pid {d}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
         http {{ access_log off; sendfile on; keepalive_requests 100000;\n\
           client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;\n\
           uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
           server {{ listen {STACK_ADDR}:8080; listen [{STACK_ADDR6}]:8080; root {d}/www; }} }}\n"
    );
    std::fs::write(dir.0.join("nginx.conf"), conf).unwrap();
    let _nginx = Proc::spawn(on_stack_dual(
        &pair,
        &["nginx", "-c", &format!("{d}/nginx.conf"), "-p", &d],
    ));
    let url = |f: &str| format!("http://{STACK_ADDR}:8080/{f}");
    let curl = |args: &[&str]| -> Vec<u8> {
        let out = in_ns(
            &pair.peer_ns,
            &[&["curl", "-sS", "-m", "30"], args].concat(),
        )
        .output()
        .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // nginx listens once it runs: retry the first request (bounded).
    let index = url("index.html");
    let mut first = None;
    for _ in 0..100 {
        let out = in_ns(&pair.peer_ns, &["curl", "-s", "-m", "5", &index])
            .output()
            .expect("curl");
        if out.status.success() {
            first = Some(out.stdout);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(first.as_deref(), Some(&b"hello from nginx on xdptcp\n"[..]));
    // 10 MiB (sendfile) byte for byte, three times on one keep-alive connection.
    let b = url("big.bin");
    let three = curl(&[&b, &b, &b]);
    assert_eq!(three.len(), 3 * big.len());
    for (i, chunk) in three.chunks(big.len()).enumerate() {
        assert!(chunk == &big[..], "copy {i} of big.bin differs");
    }
    // Connection: close, several requests, over IPv4 and IPv6 (`listen [2001:2::1]:8080`).
    let index6 = format!("http://[{STACK_ADDR6}]:8080/index.html");
    for i in 0..20 {
        let u = if i % 2 == 0 { &index } else { &index6 };
        assert_eq!(
            curl(&["-g", "-H", "Connection: close", u]),
            b"hello from nginx on xdptcp\n"
        );
    }
    // 10 MiB over IPv6 byte for byte.
    let big6 = curl(&["-g", &format!("http://[{STACK_ADDR6}]:8080/big.bin")]);
    assert!(
        big6 == big,
        "big.bin over IPv6 differs ({} bytes)",
        big6.len()
    );
    // wrk, keep-alive and close: every request answered, no socket errors.
    // Close mode leaves a TIME-WAIT per request at the stack (nginx closes first): a short run
    // keeps the peer's ephemeral ports far from wrapping into them on a fast machine.
    for close in [false, true] {
        let mut args = vec!["wrk", "-t1", "--timeout", "10s"];
        if close {
            args.extend(["-c4", "-d1", "-H", "Connection: close"]);
        } else {
            args.extend(["-c8", "-d2"]);
        }
        args.push(&index);
        let out = in_ns(&pair.peer_ns, &args).output().expect("wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "wrk: {text}");
        assert!(text.contains("requests in"), "wrk: {text}");
        assert!(
            !text.contains("Socket errors") && !text.contains("Non-2xx"),
            "wrk (close = {close}) saw errors:\n{text}"
        );
    }
}

/// An nginx master (`ip netns exec` execs it: the child is the master). Stopped with SIGTERM
/// on drop, also on a failed assertion: the master stops its workers, then exits (waited for,
/// bounded); killing the master alone would leave its workers running.
struct Master(Proc);

impl Drop for Master {
    fn drop(&mut self) {
        let pid = self.0.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// nginx's stock process model (`master_process on`): the master creates the listener, then
/// forks `workers` worker processes on a `queues`-queue veth; each claims a queue of its own
/// (its own stack, the inherited listener re-created there) and the master stops serving.
/// curl gets a static page and 10 MiB byte for byte, wrk with `Connection: close` sees no
/// error, and with two workers both answer (the `X-Pid` header names the worker). The workers
/// run as `user www-data;` (the stock line): uid 33 with CAP_NET_ADMIN alone.
fn nginx_with_worker_processes(queues: u32, workers: usize) {
    require_root();
    let pair = VethPair::new(VethOptions {
        queues,
        ..VethOptions::default()
    })
    .expect("veth pair");
    let dir = TempDir(std::env::temp_dir().join(format!("xdptcp-nginxw-{}", pair.suffix)));
    let d = dir.0.display().to_string();
    std::fs::create_dir_all(dir.0.join("www")).unwrap();
    std::fs::create_dir_all(dir.0.join("tmp")).unwrap();
    let big = pattern(10 << 20, 11);
    std::fs::write(dir.0.join("www/big.bin"), &big).unwrap();
    let page = b"hello from nginx workers on xdptcp\n";
    std::fs::write(dir.0.join("www/index.html"), page).unwrap();
    // Debian's stock `user www-data;`: a worker claims its queue (AF_XDP socket, XSKMAP) when
    // it first uses the listener, after nginx's setuid (creds.rs keeps what the claim needs).
    let conf = format!(
        "daemon off; master_process on; worker_processes {workers}; user www-data;\n\
         error_log {d}/error.log info; pid {d}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
         http {{ access_log off; sendfile on; keepalive_requests 100000;\n\
           client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;\n\
           uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
           server {{ listen {STACK_ADDR}:8080; root {d}/www; add_header X-Pid $pid; }} }}\n"
    );
    std::fs::write(dir.0.join("nginx.conf"), conf).unwrap();
    let _nginx = Master(Proc::spawn(on_stack_workers(
        &pair,
        workers,
        &["nginx", "-c", &format!("{d}/nginx.conf"), "-p", &d],
    )));
    let log = || std::fs::read_to_string(dir.0.join("error.log")).unwrap_or_default();
    let url = |f: &str| format!("http://{STACK_ADDR}:8080/{f}");
    let curl = |args: &[&str]| -> Vec<u8> {
        let out = in_ns(
            &pair.peer_ns,
            &[&["curl", "-sS", "-m", "30"], args].concat(),
        )
        .output()
        .expect("curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}\nnginx error.log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            log()
        );
        out.stdout
    };
    let index = url("index.html");
    // The worker that answered (X-Pid), if the page came back.
    let x_pid = |text: &str| -> Option<String> {
        let pid = text.lines().find_map(|l| l.strip_prefix("X-Pid: "))?;
        text.ends_with("on xdptcp\n")
            .then(|| pid.trim().to_string())
    };
    // One request on a new connection (bounded wait): the answering worker's pid.
    let ask = || -> Option<String> {
        let out = in_ns(
            &pair.peer_ns,
            &[
                "curl",
                "-s",
                "-i",
                "-m",
                "2",
                "-H",
                "Connection: close",
                &index,
            ],
        )
        .output()
        .expect("curl");
        x_pid(&String::from_utf8_lossy(&out.stdout))
    };
    // The workers claim their queues as they start: until each has answered, a connection
    // may meet a queue that is not served yet (bounded retries).
    let mut pids = std::collections::BTreeSet::new();
    for _ in 0..200 {
        match ask() {
            Some(p) => {
                pids.insert(p);
                if pids.len() == workers {
                    break;
                }
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    assert_eq!(
        pids.len(),
        workers,
        "workers that answered: {pids:?}; error.log:\n{}",
        log()
    );
    // Each worker runs as www-data with CAP_NET_ADMIN alone (the neighbour requests), as
    // `xdptcp serve --user` does.
    for pid in &pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        };
        assert_eq!(field("Uid:").as_deref(), Some("33 33 33 33"), "{status}");
        assert_eq!(field("CapEff:").as_deref(), Some("0000000000001000"));
        assert_eq!(field("CapPrm:").as_deref(), Some("0000000000001000"));
    }
    assert_eq!(curl(&[&index]), page);
    assert_eq!(curl(&[&url("big.bin")]), big, "big.bin through a worker");
    // Every request on a new connection (a new flow, spread over the queues by the peer).
    for _ in 0..40 {
        let out = curl(&["-i", "-H", "Connection: close", &index]);
        let text = String::from_utf8_lossy(&out).to_string();
        let pid = x_pid(&text).unwrap_or_else(|| panic!("not the page: {text}"));
        assert!(
            pids.contains(&pid),
            "{pid} is not one of the workers {pids:?}"
        );
    }
    let out = in_ns(
        &pair.peer_ns,
        &[
            "wrk",
            "-t1",
            "-c4",
            "-d1",
            "--timeout",
            "10s",
            "-H",
            "Connection: close",
            &index,
        ],
    )
    .output()
    .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("requests in"),
        "wrk: {text}"
    );
    assert!(
        !text.contains("Socket errors") && !text.contains("Non-2xx"),
        "wrk saw errors:\n{text}\nerror.log:\n{}",
        log()
    );
    assert!(!log().contains("exited with"), "a worker died:\n{}", log());
    if workers != 1 {
        return;
    }
    // The pid of a worker other than `old` that answers (bounded retries).
    let answer_other_than = |old: &str| -> String {
        for _ in 0..100 {
            match ask() {
                Some(p) if p != old => return p,
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        panic!(
            "no answer from a worker other than {old}; error.log:\n{}",
            log()
        );
    };
    let signal = |sig: &str, pid: &str| {
        let st = Command::new("kill")
            .args([sig, pid])
            .status()
            .expect("kill");
        assert!(st.success(), "kill {sig} {pid}");
    };
    // A worker killed: nginx forks another, which claims the dead one's queue.
    let first_pid = pids.into_iter().next().unwrap();
    signal("-KILL", &first_pid);
    let second = answer_other_than(&first_pid);
    // Reload: nginx forks a new worker while the old one finishes; the new one takes the
    // queue over.
    let master = std::fs::read_to_string(dir.0.join("nginx.pid")).expect("nginx.pid");
    signal("-HUP", master.trim());
    let third = answer_other_than(&second);
    assert_ne!(third, first_pid);
    assert_eq!(curl(&[&url("big.bin")]), big, "big.bin after the reload");
}

#[test]
fn nginx_master_process_forks_a_worker_that_serves_queue_0() {
    nginx_with_worker_processes(1, 1);
}

#[test]
fn nginx_two_worker_processes_serve_two_queues() {
    nginx_with_worker_processes(2, 2);
}

/// What the Linux client saw of server_semantics.py, and the server's lines.
fn server_semantics(pair: &VethPair, mut c: Command) -> (Vec<String>, Vec<String>) {
    c.args([
        "python3",
        &script("server_semantics.py"),
        &STACK_ADDR.to_string(),
        "6000",
    ]);
    let mut srv = Proc::spawn(c);
    let mut lines = srv.lines_until("ready: 1");
    let addr = SocketAddr::from((STACK_ADDR, 6000));
    let mut seen = Vec::new();
    let third = pair
        .in_peer(|| {
            let mut seen = Vec::new();
            let mut a = TcpStream::connect_timeout(&addr, WAIT).unwrap();
            a.set_read_timeout(Some(WAIT)).unwrap();
            a.write_all(b"hi").unwrap();
            let mut r = [0u8; 2];
            a.read_exact(&mut r).unwrap();
            seen.push(format!("reply {:?}", String::from_utf8_lossy(&r)));
            let mut b = TcpStream::connect_timeout(&addr, WAIT).unwrap();
            b.set_read_timeout(Some(WAIT)).unwrap();
            let mut rest = Vec::new();
            seen.push(format!(
                "second: {:?}",
                b.read_to_end(&mut rest).map(|_| rest)
            ));
            let c = TcpStream::connect_timeout(&addr, WAIT).unwrap();
            c.set_read_timeout(Some(WAIT)).unwrap();
            (seen, c)
        })
        .unwrap();
    seen.extend(third.0);
    let mut c = third.1;
    lines.extend(srv.lines_until("wait_third: 1"));
    srv.say("");
    lines.extend(srv.lines_until("done: 1"));
    let mut b = [0u8; 1];
    seen.push(format!(
        "third after the listener closed: {:?}",
        c.read(&mut b).map_err(|e| e.kind())
    ));
    (lines, seen)
}

/// tests/py/reuseport.py with the Linux client: its lines and what the client saw.
fn reuseport(pair: &VethPair, mut c: Command) -> Vec<String> {
    const N: usize = 32;
    c.args([
        "python3",
        &script("reuseport.py"),
        &STACK_ADDR.to_string(),
        "6100",
        &N.to_string(),
    ]);
    let mut srv = Proc::spawn(c);
    let mut lines = srv.lines_until("ready: 1");
    let addr = SocketAddr::from((STACK_ADDR, 6100));
    // Connections from distinct source ports (distinct flows); held until the server has
    // accepted them all.
    let connect = |n: usize| {
        pair.in_peer(move || {
            (0..n)
                .map(|_| TcpStream::connect_timeout(&addr, WAIT).expect("connect"))
                .collect::<Vec<_>>()
        })
        .unwrap()
    };
    let held = connect(N);
    srv.say("");
    lines.extend(srv.lines_until("ready: 2"));
    drop(held);
    let held = connect(4);
    srv.say("");
    lines.extend(srv.lines_until("done: 1"));
    drop(held);
    lines
}

/// SO_REUSEPORT: two listening sockets of one process share a port and the connections spread
/// over both, as on the kernel; closing one leaves the port to the other.
#[test]
fn reuseport_matches_the_kernel() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let kernel = reuseport(&pair, in_ns(&pair.stack_ns, &[]));
    let stack = reuseport(&pair, on_stack(&pair, &[]));
    for l in [
        "second_reuse_first_not: EADDRINUSE",
        "second_without_reuse: EADDRINUSE",
        "both_reuse: ok",
        "accepted: 32",
        "spread_over_both: True",
        "after_close: [4]",
    ] {
        assert!(
            kernel.iter().any(|k| k == l),
            "kernel output lacks {l:?}: {kernel:#?}"
        );
    }
    assert_eq!(kernel, stack, "reuseport.py (kernel vs stack)");
}

#[test]
fn server_call_semantics_match_the_kernel() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let (k_lines, k_seen) = server_semantics(&pair, in_ns(&pair.stack_ns, &[]));
    let (s_lines, s_seen) = server_semantics(&pair, on_stack(&pair, &[]));
    for l in [
        "accept_empty: EAGAIN",
        "recv_listener: ENOTCONN",
        "bind_in_use: EADDRINUSE",
        "fionread_listener: EINVAL",
    ] {
        assert!(
            k_lines.iter().any(|k| k == l),
            "kernel output lacks {l:?}: {k_lines:#?}"
        );
    }
    assert!(
        k_seen.last().unwrap().contains("ConnectionReset"),
        "{k_seen:?}"
    );
    assert_eq!(k_lines, s_lines, "server lines (kernel vs stack)");
    assert_eq!(k_seen, s_seen, "client observations (kernel vs stack)");
}

#[test]
fn fork_leaves_the_parents_sockets_alone() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let peer = PEER_ADDR.to_string();
    let srv = Proc::spawn(in_ns(
        &pair.peer_ns,
        &["python3", &script("peer_server.py"), &peer, "5000"],
    ));
    srv.expect("ready");
    let p = Proc::spawn(on_stack(
        &pair,
        &["python3", &script("fork_child.py"), &peer, "5000"],
    ));
    p.expect("child send: EOPNOTSUPP");
    p.expect("child exit: 0");
    p.expect("parent echo: after fork");
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).expect("reading the reply");
    b
}

/// SET big `value`, then GET big, in RESP on one connection: the value GET returned.
fn resp_set_get(addr: SocketAddr, value: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect to redis");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", value.len()).into_bytes();
    set.extend_from_slice(value);
    set.extend_from_slice(b"\r\n");
    s.write_all(&set).expect("SET");
    assert_eq!(read_n(&mut s, 5), b"+OK\r\n");
    s.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
        .expect("GET");
    let head = format!("${}\r\n", value.len());
    assert_eq!(
        read_n(&mut s, head.len()),
        head.as_bytes(),
        "GET's bulk length"
    );
    let back = read_n(&mut s, value.len());
    assert_eq!(read_n(&mut s, 2), b"\r\n");
    back
}

/// redis-server (one thread serving clients, BGSAVE by fork) under the stack, as the issue
/// asks: redis-cli round trips, a 1 MiB value SET and GET byte for byte, `redis-benchmark -t
/// ping,set,get,lpush -n 100000 -c 50` with no error; then BGSAVE's child leaves the stack alone.
#[test]
fn redis_under_the_stack_with_redis_benchmark_and_bgsave() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let dir = TempDir(std::env::temp_dir().join(format!("xdptcp-redis-{}", pair.suffix)));
    std::fs::create_dir_all(&dir.0).unwrap();
    let d = dir.0.display().to_string();
    let addr = STACK_ADDR.to_string();
    let _redis = Proc::spawn(on_stack(
        &pair,
        &[
            "redis-server",
            "--bind",
            &addr,
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--dir",
            &d,
            "--daemonize",
            "no",
            "--logfile",
            "",
        ],
    ));
    let cli = |args: &[&str]| -> String {
        let out = in_ns(
            &pair.peer_ns,
            &[&["timeout", "20", "redis-cli", "-h", &addr], args].concat(),
        )
        .output()
        .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    // redis listens once it runs: retry the first command (bounded).
    let mut pong = String::new();
    for _ in 0..100 {
        pong = cli(&["ping"]);
        if pong == "PONG" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pong, "PONG");
    assert_eq!(cli(&["set", "k", "a value"]), "OK");
    assert_eq!(cli(&["get", "k"]), "a value");
    // A 1 MiB value (every byte value) SET and GET byte for byte, in RESP from the peer.
    let value = pattern(1 << 20, 5);
    let back = pair
        .in_peer(|| resp_set_get(SocketAddr::from((STACK_ADDR, 6379)), &value))
        .unwrap();
    assert!(
        back == value,
        "GET returned {} bytes, not the value",
        back.len()
    );
    assert_eq!(cli(&["strlen", "big"]), (1 << 20).to_string());
    // The run: `redis-benchmark -t ping,set,get,lpush -n 100000 -c 50`, every request
    // answered with no error (bounded by `timeout`).
    let out = in_ns(
        &pair.peer_ns,
        &[
            "timeout",
            "300",
            "redis-benchmark",
            "-h",
            &addr,
            "-q",
            "-n",
            "100000",
            "-c",
            "50",
            "-t",
            "ping,set,get,lpush",
        ],
    )
    .output()
    .expect("redis-benchmark");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark: {text}\n{err}");
    println!("{text}");
    for t in ["PING_INLINE", "PING_MBULK", "SET", "GET", "LPUSH"] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("{t}: ")) && l.contains("requests per second")),
            "redis-benchmark {t}: {text}"
        );
    }
    assert!(
        !format!("{text}{err}").to_lowercase().contains("error"),
        "redis-benchmark reported an error:\n{text}\n{err}"
    );
    // redis-cli round trips after the load.
    for i in 0..20 {
        let (k, v) = (format!("key{i}"), format!("value {i}"));
        assert_eq!(cli(&["set", &k, &v]), "OK");
        assert_eq!(cli(&["get", &k]), v);
    }
    assert_eq!(cli(&["llen", "nothere"]), "0");
    // BGSAVE forks a child that closes its copies of the stack sockets and exits: the parent
    // keeps serving.
    assert_eq!(cli(&["bgsave"]), "Background saving started");
    let mut status = String::new();
    for _ in 0..100 {
        status = cli(&["info", "persistence"]);
        if status.contains("rdb_bgsave_in_progress:0") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(status.contains("rdb_last_bgsave_status:ok"), "{status}");
    assert!(dir.0.join("dump.rdb").is_file());
    assert_eq!(cli(&["get", "k"]), "a value");
}

/// One memcached text-protocol connection.
struct Memcache {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Memcache {
    fn connect(addr: SocketAddr) -> std::io::Result<Memcache> {
        let w = TcpStream::connect_timeout(&addr, WAIT)?;
        w.set_read_timeout(Some(WAIT))?;
        w.set_write_timeout(Some(WAIT))?;
        Ok(Memcache {
            r: BufReader::new(w.try_clone()?),
            w,
        })
    }

    fn line(&mut self) -> String {
        let mut l = Vec::new();
        self.r
            .read_until(b'\n', &mut l)
            .expect("reading a reply line");
        String::from_utf8_lossy(&l).into_owned()
    }

    fn set(&mut self, key: &str, value: &[u8]) {
        let mut m = format!("set {key} 7 0 {}\r\n", value.len()).into_bytes();
        m.extend_from_slice(value);
        m.extend_from_slice(b"\r\n");
        self.w.write_all(&m).expect("set");
        assert_eq!(self.line(), "STORED\r\n", "set {key}");
    }

    /// The values of `keys` (one `get` of them all), in the order memcached returns them.
    fn get(&mut self, keys: &[String]) -> Vec<(String, Vec<u8>)> {
        self.w
            .write_all(format!("get {}\r\n", keys.join(" ")).as_bytes())
            .expect("get");
        let mut out = Vec::new();
        loop {
            let l = self.line();
            if l == "END\r\n" {
                return out;
            }
            let f: Vec<&str> = l.split_whitespace().collect();
            assert!(
                f.len() == 4 && f[0] == "VALUE" && f[2] == "7",
                "reply: {l:?}"
            );
            let n: usize = f[3].parse().expect("length");
            let mut v = vec![0u8; n + 2];
            self.r.read_exact(&mut v).expect("reading a value");
            assert_eq!(&v[n..], b"\r\n");
            v.truncate(n);
            out.push((f[1].to_string(), v));
        }
    }
}

/// The value of key (thread, connection, round): up to 200 kB of every byte value.
fn mc_value(t: usize, c: usize, r: usize) -> (String, Vec<u8>) {
    let seed = (t * 1000 + c * 100 + r) as u32 + 1;
    let len = 1 + (seed as usize * 7919) % 200_000;
    (format!("k{t}-{c}-{r}"), pattern(len, seed))
}

/// A multi-threaded server under the stack: memcached with `-t 2` (a listener thread
/// handing connections to two worker threads, each with its own epoll loop, all sharing the
/// stack's sockets). 16 peer threads hold 4 connections each open at once and set and get
/// values of up to 200 kB on each, byte for byte; then one connection reads every key back
/// in multi-gets (values stored through every worker thread).
#[test]
fn memcached_with_two_threads_under_the_stack() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    let addr = STACK_ADDR.to_string();
    let _mc = Proc::spawn(on_stack(
        &pair,
        &[
            "memcached",
            "-u",
            "root",
            "-t",
            "2",
            "-l",
            &addr,
            "-p",
            "11311",
            "-U",
            "0",
            "-c",
            "256",
            "-m",
            "64",
        ],
    ));
    let sa = SocketAddr::from((STACK_ADDR, 11311));
    const THREADS: usize = 16;
    const CONNS: usize = 4;
    const ROUNDS: usize = 5;
    pair.in_peer(|| {
        // memcached listens once it runs: retry the first connection (bounded).
        let mut first = None;
        for _ in 0..100 {
            if let Ok(m) = Memcache::connect(sa) {
                first = Some(m);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut m = first.expect("memcached did not accept within 10 s");
        m.set("hello", b"world");
        assert_eq!(
            m.get(&["hello".to_string()]),
            [("hello".to_string(), b"world".to_vec())]
        );
        std::thread::scope(|s| {
            for t in 0..THREADS {
                s.spawn(move || {
                    let mut conns: Vec<Memcache> = (0..CONNS)
                        .map(|_| Memcache::connect(sa).expect("connect to memcached"))
                        .collect();
                    for r in 0..ROUNDS {
                        for (c, m) in conns.iter_mut().enumerate() {
                            let (k, v) = mc_value(t, c, r);
                            m.set(&k, &v);
                            let got = m.get(std::slice::from_ref(&k));
                            assert!(
                                got.len() == 1 && got[0].0 == k && got[0].1 == v,
                                "{k}: {} values back",
                                got.len()
                            );
                        }
                    }
                });
            }
        });
        let mut n = 0;
        for t in 0..THREADS {
            let keys: Vec<(String, Vec<u8>)> = (0..CONNS)
                .flat_map(|c| (0..ROUNDS).map(move |r| mc_value(t, c, r)))
                .collect();
            let names: Vec<String> = keys.iter().map(|(k, _)| k.clone()).collect();
            let got = m.get(&names);
            assert_eq!(got.len(), keys.len(), "thread {t}'s keys");
            for ((k, v), (gk, gv)) in keys.iter().zip(&got) {
                assert!(k == gk && v == gv, "{k} read back differs");
                n += 1;
            }
        }
        assert_eq!(n, THREADS * CONNS * ROUNDS);
    })
    .unwrap();
    // The stack served it: the kernel of the stack's namespace has no listener on the port.
    let out = in_ns(&pair.stack_ns, &["ss", "-Hltn", "sport = :11311"])
        .output()
        .expect("ss");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "a kernel listener"
    );
}

/// A Linux echo server on `addr` in the peer namespace for `n` connections (each sends 3
/// bytes and gets them back), each accepted within WAIT.
fn peer_echo(pair: &VethPair, addr: SocketAddr, n: usize) -> std::thread::JoinHandle<()> {
    let l = pair
        .in_peer(|| std::net::TcpListener::bind(addr).expect("peer echo server"))
        .unwrap();
    std::thread::spawn(move || {
        for _ in 0..n {
            let Some(mut s) = accept_within(&l, WAIT) else {
                return;
            };
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut b = [0u8; 3];
            if s.read_exact(&mut b).is_ok() {
                let _ = s.write_all(&b);
            }
        }
    })
}

/// From the peer namespace: connect to `addr`, send `b`, read to the end (the scripts answer
/// with the byte twice and close), or the connect's error.
fn talk_once(pair: &VethPair, addr: SocketAddr, b: u8) -> Result<Vec<u8>, std::io::ErrorKind> {
    pair.in_peer(move || {
        let mut s = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.kind())?;
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(&[b]).unwrap();
        let mut r = Vec::new();
        let _ = s.read_to_end(&mut r);
        Ok(r)
    })
    .unwrap()
}

/// tests/py/dual_stack.py against the Linux peer: the script's lines. The peer runs a
/// dual-stack echo server on port 7000 (for the script's active opens) and connects to the
/// script's listeners over IPv4 and IPv6 when it says "ready".
fn dual_stack(pair: &VethPair, mut c: Command) -> Vec<String> {
    const PORT: u16 = 6200;
    // The script's IPv6 and IPv4-mapped opens.
    let echo = peer_echo(pair, "[::]:7000".parse().unwrap(), 2);
    c.args([
        "python3",
        &script("dual_stack.py"),
        &STACK_ADDR.to_string(),
        &STACK_ADDR6.to_string(),
        &PEER_ADDR6.to_string(),
        &PORT.to_string(),
        &PEER_ADDR.to_string(),
    ]);
    let srv = Proc::spawn(c);
    let talk = |addr: SocketAddr, b: u8| -> String {
        match talk_once(pair, addr, b) {
            Ok(r) => format!("{addr}: {:?}", String::from_utf8_lossy(&r)),
            Err(e) => format!("{addr}: {e:?}"),
        }
    };
    let v4 = |p: u16| SocketAddr::from((STACK_ADDR, p));
    let v6 = |p: u16| SocketAddr::from((STACK_ADDR6, p));
    let mut lines = srv.lines_until("ready: 1");
    lines.push(talk(v4(PORT), b'4'));
    lines.push(talk(v6(PORT), b'6'));
    lines.extend(srv.lines_until("ready: 2"));
    lines.push(talk(v4(PORT + 1), b'4'));
    lines.push(talk(v6(PORT + 1), b'6'));
    lines.extend(srv.lines_until("ready: 3"));
    lines.push(talk(v4(PORT + 2), b'4'));
    lines.push(talk(v6(PORT + 2), b'6'));
    lines.extend(srv.lines_until("done: 1"));
    echo.join().unwrap();
    lines
}

/// AF_INET6 under `xdptcp run --addr V4 --addr V6`: a dual-stack `[::]` listener takes IPv4
/// (peers read back as `::ffff:a.b.c.d`, RFC 4291 §2.5.5.2) and IPv6, IPV6_V6ONLY splits the
/// families, a listener on the IPv6 address refuses IPv4, active opens over IPv6 and
/// IPv4-mapped; every line as on the kernel.
#[test]
fn ipv6_and_dual_stack_sockets_match_the_kernel() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    pair.add_ipv6().expect("IPv6 addresses");
    let kernel = dual_stack(&pair, in_ns(&pair.stack_ns, &[]));
    let stack = dual_stack(&pair, on_stack_dual(&pair, &[]));
    for l in [
        "v6only_after_bind: EINVAL",
        "v4_wildcard_same_port: EADDRINUSE",
        "peer_4: ('::ffff:198.18.0.2', '::ffff:198.18.0.1', 'AF_INET6')",
        "peer_6: ('2001:2::2', '2001:2::1', 'AF_INET6')",
        "v4_next_to_v6only: ok",
        "peer_4: ('198.18.0.2', '198.18.0.1', 'AF_INET')",
        "198.18.0.1:6202: ConnectionRefused",
        "echoed: b'xyz'",
        "v6only_connect_mapped: ENETUNREACH",
    ] {
        assert!(
            kernel.iter().any(|k| k == l),
            "kernel output lacks {l:?}: {kernel:#?}"
        );
    }
    // The kernel's own TCP tables hold the sockets only in the kernel's run.
    let split = |v: Vec<String>, yes: &str| -> Vec<String> {
        let (probes, rest): (Vec<_>, Vec<_>) =
            v.into_iter().partition(|l| l.starts_with("kernel_"));
        assert_eq!(probes.len(), 3, "{probes:?}");
        assert!(probes.iter().all(|l| l.ends_with(yes)), "{probes:?}");
        rest
    };
    assert_eq!(
        split(kernel, ": True"),
        split(stack, ": False"),
        "dual_stack.py (kernel vs stack)"
    );
}

/// `xdptcp run --addr 2001:2::1` (an IPv6-only stack): an AF_INET6 listener on `::` is the
/// stack's (not in the kernel's TCP tables) and serves IPv6; IPv4 (a listener on 0.0.0.0, a
/// connect to the peer's IPv4 address) stays the kernel's and works as without the layer.
#[test]
fn ipv6_only_stack_leaves_ipv4_to_the_kernel() {
    require_root();
    const PORT: u16 = 6300;
    let pair = VethPair::new(VethOptions::default()).expect("veth pair");
    pair.add_ipv6().expect("IPv6 addresses");
    let echo = peer_echo(&pair, SocketAddr::from((PEER_ADDR, 7000)), 1);
    let srv = Proc::spawn(on_stack_spec(
        &pair,
        1,
        None,
        vec![STACK_ADDR6],
        &[
            "python3",
            &script("ipv6_only.py"),
            &PEER_ADDR.to_string(),
            &PORT.to_string(),
        ],
    ));
    let mut lines = srv.lines_until("ready: 1");
    let talk = |addr: SocketAddr, b: u8| talk_once(&pair, addr, b).expect("connect");
    assert_eq!(talk(SocketAddr::from((STACK_ADDR6, PORT)), b'6'), b"66");
    assert_eq!(talk(SocketAddr::from((STACK_ADDR, PORT + 1)), b'4'), b"44");
    lines.extend(srv.lines_until("done: 1"));
    echo.join().unwrap();
    assert_eq!(
        lines,
        [
            "v6_listener_in_kernel: False",
            "v4_listener_in_kernel: True",
            "ready: 1",
            "peer_6: 2001:2::2",
            "peer_4: 198.18.0.2",
            "v4_connect_in_kernel: True",
            "echoed: b'xyz'",
            "done: 1",
        ]
    );
}
