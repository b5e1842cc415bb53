//! Root-only: `xdptcp capture` on a running `xdptcp serve` (veth pair, Linux client).
//!
//! - `-c 3 port 7` around one connection: exactly the handshake, SYN in, SYN-ACK out, ACK
//!   in; the capture ends by itself and `tcpdump -r` reads the file: 3 frames, in order.
//! - Without a count, around 3 echo connections (open, echo, close), beside a `tcpdump -w`
//!   on the peer's veth: the stack's capture holds as many frames as the peer's, the
//!   inbound ones (EPB flags) are the peer's frames to port 7 and the outbound ones its
//!   frames from port 7; `tcpdump -r` reads both files, and `tshark -r` ours with the
//!   same frames and directions (tshark is required: scripts/setup.sh installs it).
//!
//! - `xdptcp trace -c 1 port 80 --svg F` around `curl -H 'Connection: close'`: the ladder
//!   shows SYN, SYN-ACK, ACK, the request, the response, the stack's FIN, the peer's FIN and
//!   the last ACK in order, with the stack's states LISTEN -> SYN-RECEIVED -> ESTABLISHED ->
//!   FIN-WAIT-1 -> (FIN-WAIT-2 ->) TIME-WAIT as the stack's worker saw them, each on the
//!   segment that caused it; the SVG has an arrow per segment.
//! - The same with `tcp_syncookies=2`: no state at the SYN, the SYN-ACK marked as a SYN
//!   cookie, the ACK that returns it marked and LISTEN -> ESTABLISHED.
//! - SIGTERM ends a capture and SIGINT a trace with their statistics and summaries.
//!
//! Each test builds its own namespaces (removed on drop, also on panic); every process it
//! starts is stopped by PID (SIGINT/SIGTERM, then SIGKILL) and reaped. Loops are bounded.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "common/echo.rs"]
mod echo;
use echo::echo_roundtrip;
use xdptcp::control::capture::receive;
use xdptcp_harness::{require_root, VethOptions, VethPair};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A child process with its stderr lines; stopped by PID on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Spawns `cmd` with stderr read line by line (stdout: null unless the caller set it).
    fn spawn(cmd: Command) -> Proc {
        Self::spawn_keep_stdout(cmd.stdout_null())
    }

    fn spawn_keep_stdout(mut cmd: Command) -> Proc {
        let mut child = cmd.stderr(Stdio::piped()).spawn().expect("spawning");
        let err = child.stderr.take().expect("stderr");
        let lines = xdptcp_harness::lines_of(err);
        Proc { child, lines }
    }

    /// Waits for a stderr line containing `what` (20 s at most).
    fn wait_for(&self, what: &str) -> String {
        let end = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(what) => return l,
                Ok(l) => seen.push(l),
                Err(_) => break,
            }
        }
        panic!("no {what:?} on stderr: {seen:?}");
    }

    /// Sends `sig`, waits up to 10 s for the exit (then SIGKILL); whether it exited 0.
    fn stop(&mut self, sig: libc::c_int) -> bool {
        // SAFETY: kill(2) on the PID of our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        self.wait()
    }

    fn wait(&mut self) -> bool {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

trait StdoutNull {
    fn stdout_null(self) -> Command;
}

impl StdoutNull for Command {
    fn stdout_null(mut self) -> Command {
        self.stdout(Stdio::null());
        self
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop(libc::SIGTERM);
        }
    }
}

fn serve(pair: &VethPair) -> Proc {
    serve_with(pair, &[])
}

fn serve_with(pair: &VethPair, extra: &[&str]) -> Proc {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args(["--listen", "7=echo", "--listen", "80=http"])
        .args(["--duration", "120", "--adaptive-idle"])
        .args(extra);
    // Its start-up line goes to stdout; wait until its stat socket (abstract, in the stack
    // namespace) answers instead.
    let p = Proc::spawn(c);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let st = Command::new("ip")
            .args([
                "netns",
                "exec",
                &pair.stack_ns,
                BIN,
                "stat",
                "--iface",
                &pair.stack_if,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("xdptcp stat");
        if st.success() {
            break;
        }
        assert!(Instant::now() < end, "no stat socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn capture(pair: &VethPair, file: &Path, args: &[&str]) -> Proc {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &pair.stack_ns, BIN, "capture"])
        .args(["--iface", &pair.stack_if, "-w"])
        .arg(file)
        .args(args);
    let p = Proc::spawn(c);
    p.wait_for("xdptcp: capturing on");
    p
}

/// `tcpdump -r FILE -n [FILTER]`: the frame lines.
fn tcpdump_r(file: &Path, filter: &[&str]) -> Vec<String> {
    let out = Command::new("tcpdump")
        .args(["-r"])
        .arg(file)
        .args(["-n", "-tt"])
        .args(filter)
        .output()
        .expect("running tcpdump -r");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `tshark -r FILE`: per frame (pcapng direction: 1 in, 2 out; TCP source port;
/// destination port). tshark must be installed (scripts/setup.sh): missing, the test fails.
fn tshark_r(file: &Path) -> Vec<(u32, u16, u16)> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        .args(["-n", "-T", "fields", "-E", "separator=,"])
        .args(["-e", "frame.packet_flags_direction"])
        .args(["-e", "tcp.srcport", "-e", "tcp.dstport"])
        .output()
        .expect("running tshark -r (scripts/setup.sh installs tshark)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            let n = |i: usize| -> u32 {
                // tshark prints the direction in hex (0x00000001).
                v.get(i)
                    .and_then(|x| match x.strip_prefix("0x") {
                        Some(h) => u32::from_str_radix(h, 16).ok(),
                        None => x.parse().ok(),
                    })
                    .unwrap_or_else(|| panic!("{l}"))
            };
            (n(0), n(1) as u16, n(2) as u16)
        })
        .collect()
}

fn connect(pair: &VethPair) -> TcpStream {
    pair.in_peer(|| {
        let addr: SocketAddr = "198.18.0.1:7".parse().unwrap();
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("entering the peer namespace")
    .expect("connecting")
}

fn temp(pair: &VethPair, name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("xdptcp-{}-{name}", pair.suffix))
}

/// Removes the files on drop.
struct Files(Vec<PathBuf>);

impl Drop for Files {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::fs::remove_file(f);
        }
    }
}

#[test]
fn a_counted_capture_holds_the_handshake() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let file = temp(&pair, "hs.pcapng");
    let _files = Files(vec![file.clone()]);
    let _serve = serve(&pair);
    let mut cap = capture(&pair, &file, &["-c", "3", "port", "7"]);
    let mut s = connect(&pair);
    echo_roundtrip(&mut s, b"hello").unwrap();
    assert!(cap.wait(), "capture -c 3 exits 0 by itself");
    let summary = cap.wait_for("packets captured");
    assert_eq!(summary, "3 packets captured (2 in, 1 out)");
    let dropped = cap.wait_for("dropped");
    assert_eq!(dropped, "0 packets dropped by the stack (queue full)");
    let lines = tcpdump_r(&file, &[]);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let port = s.local_addr().unwrap().port();
    assert!(
        lines[0].contains(&format!("198.18.0.2.{port} > 198.18.0.1.7: Flags [S]")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!("198.18.0.1.7 > 198.18.0.2.{port}: Flags [S.]")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].contains(&format!("198.18.0.2.{port} > 198.18.0.1.7: Flags [.]")),
        "{}",
        lines[2]
    );
}

#[test]
fn the_capture_matches_a_tcpdump_on_the_peer() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let (ours, theirs) = (temp(&pair, "stack.pcapng"), temp(&pair, "peer.pcap"));
    let _files = Files(vec![ours.clone(), theirs.clone()]);
    let _serve = serve(&pair);
    let mut dump = {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &pair.peer_ns,
            "tcpdump",
            "-i",
            &pair.peer_if,
        ])
        // Immediate mode: every frame is written before SIGINT ends it (otherwise
        // frames wait in a ring block until its timeout and are lost at exit).
        .args(["-n", "--immediate-mode", "-U", "-w"])
        .arg(&theirs)
        .args(["tcp", "port", "7"]);
        Proc::spawn(c)
    };
    dump.wait_for("listening on");
    let mut cap = capture(&pair, &ours, &["tcp", "port", "7"]);
    for i in 0..3 {
        let mut s = connect(&pair);
        echo_roundtrip(&mut s, format!("message {i}").as_bytes()).unwrap();
        drop(s);
    }
    // The last FIN / ACK exchange.
    std::thread::sleep(Duration::from_millis(500));

    // Ctrl-C: the capture ends the file with the serve's statistics and prints them, as
    // tcpdump does.
    assert!(cap.stop(libc::SIGINT), "capture exits 0 after SIGINT");
    dump.stop(libc::SIGINT);
    let sum = receive(
        &mut std::fs::File::open(&ours).unwrap(),
        &mut std::io::sink(),
        || {},
    )
    .expect("our file parses");
    assert_eq!(sum.statistics, 1, "one statistics block per worker");
    assert_eq!(
        cap.wait_for("packets captured"),
        format!(
            "{} packets captured ({} in, {} out)",
            sum.frames, sum.inbound, sum.outbound
        )
    );
    assert_eq!(
        cap.wait_for("dropped"),
        "0 packets dropped by the stack (queue full)"
    );
    let peer_all = tcpdump_r(&theirs, &[]);
    let peer_to_us = tcpdump_r(&theirs, &["dst", "port", "7"]);
    let peer_from_us = tcpdump_r(&theirs, &["src", "port", "7"]);
    assert!(peer_all.len() >= 3 * 7, "{peer_all:?}");
    assert_eq!(tcpdump_r(&ours, &[]).len() as u64, sum.frames);
    assert_eq!(sum.frames as usize, peer_all.len());
    assert_eq!(sum.inbound as usize, peer_to_us.len());
    assert_eq!(sum.outbound as usize, peer_from_us.len());
    assert_eq!(sum.dropped, 0);
    // tshark reads the same file: every frame, inbound ones to port 7, outbound from it.
    let t = tshark_r(&ours);
    assert_eq!(t.len() as u64, sum.frames, "{t:?}");
    let inbound = t.iter().filter(|f| f.0 == 1 && f.2 == 7).count() as u64;
    let outbound = t.iter().filter(|f| f.0 == 2 && f.1 == 7).count() as u64;
    assert_eq!((inbound, outbound), (sum.inbound, sum.outbound), "{t:?}");
    assert!(inbound > 0 && outbound > 0);
    eprintln!("{sum:?}");
}

/// SIGTERM ends a capture as Ctrl-C does: exit 0, the statistics in the file and printed.
#[test]
fn a_terminated_capture_prints_its_statistics() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let file = temp(&pair, "term.pcapng");
    let _files = Files(vec![file.clone()]);
    let _serve = serve(&pair);
    let mut cap = capture(&pair, &file, &["port", "7"]);
    let mut s = connect(&pair);
    echo_roundtrip(&mut s, b"hello").unwrap();
    // At least the handshake and the echo are in (bounded wait; the file is being written,
    // so tcpdump may meet a half-written last block: its status is not checked here).
    let so_far = || {
        Command::new("tcpdump")
            .arg("-r")
            .arg(&file)
            .arg("-n")
            .output()
            .map_or(0, |o| o.stdout.iter().filter(|&&b| b == b'\n').count())
    };
    let end = Instant::now() + Duration::from_secs(5);
    while so_far() < 5 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cap.stop(libc::SIGTERM), "capture exits 0 after SIGTERM");
    let sum = receive(
        &mut std::fs::File::open(&file).unwrap(),
        &mut std::io::sink(),
        || {},
    )
    .expect("the file parses");
    assert!(sum.frames >= 5 && sum.statistics == 1, "{sum:?}");
    assert_eq!(
        cap.wait_for("packets captured"),
        format!(
            "{} packets captured ({} in, {} out)",
            sum.frames, sum.inbound, sum.outbound
        )
    );
    assert_eq!(tcpdump_r(&file, &[]).len() as u64, sum.frames);
}

/// `xdptcp trace -c 1 --svg SVG tcp port 80` around one `curl -H 'Connection: close'`:
/// the trace's stdout and its ladder lines (after the header).
fn trace_curl(pair: &VethPair, svg: &Path) -> (String, Vec<String>) {
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &pair.stack_ns,
        BIN,
        "trace",
        "--iface",
        &pair.stack_if,
    ])
    .args(["-c", "1", "--svg"])
    .arg(svg)
    .args(["tcp", "port", "80"])
    .stdout(Stdio::piped());
    let mut tr = Proc::spawn_keep_stdout(c);
    tr.wait_for("xdptcp: tracing on");
    let curl = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.peer_ns,
            "curl",
            "-sS",
            "--max-time",
            "10",
        ])
        .args(["-H", "Connection: close", "http://198.18.0.1/"])
        .output()
        .expect("running curl");
    assert!(curl.status.success(), "{curl:?}");
    assert!(tr.wait(), "trace -c 1 ends by itself");
    let mut text = String::new();
    std::io::Read::read_to_string(tr.child.stdout.as_mut().unwrap(), &mut text).unwrap();
    eprintln!("{text}");
    let steps = text
        .lines()
        .filter(|l| l.contains('|'))
        .skip(1)
        .map(str::to_string)
        .collect();
    (text, steps)
}

/// The state change a ladder line shows (`""` for none).
fn change(line: &str) -> &str {
    line.split("|  ").nth(1).unwrap_or("")
}

#[test]
fn trace_draws_the_ladder_of_a_curl_request() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let svg = temp(&pair, "trace.svg");
    let _files = Files(vec![svg.clone()]);
    let _serve = serve(&pair);
    let (text, steps) = trace_curl(&pair, &svg);
    // (direction, flags) in order.
    let seen: Vec<(bool, String)> = steps
        .iter()
        .map(|l| {
            let inbound = l.contains("->|") || l.contains(">|");
            let flags = l
                .split('[')
                .nth(2)
                .and_then(|f| f.split(']').next())
                .unwrap_or("");
            (inbound && !l.contains("|<"), flags.to_string())
        })
        .collect();
    let want_prefix = [(true, "S"), (false, "S."), (true, ".")];
    for (i, (d, f)) in want_prefix.iter().enumerate() {
        assert_eq!((seen[i].0, seen[i].1.as_str()), (*d, *f), "{text}");
    }
    let pos = |pred: &dyn Fn(&(usize, &String)) -> bool| {
        steps
            .iter()
            .enumerate()
            .position(|x| pred(&x))
            .unwrap_or_else(|| panic!("{text}"))
    };
    let request = pos(&|(_, l)| !l.contains("|<") && !l.contains("len 0"));
    let response = pos(&|(_, l)| l.contains("|<") && !l.contains("len 0"));
    let our_fin = pos(&|(_, l)| l.contains("|<") && l.contains("[F"));
    let their_fin = pos(&|(_, l)| !l.contains("|<") && l.contains("[F"));
    // The stack may send its FIN with the response (one segment).
    assert!(
        2 < request && request < response && response <= our_fin,
        "{text}"
    );
    assert!(our_fin < their_fin, "{text}");
    // The states are the stack's own (the worker's before / after of each segment), each
    // on the segment that caused it: the SYN, the handshake's ACK, our FIN (close() ran
    // before it went out), the ACK of our FIN (if the peer sent one of its own), the
    // peer's FIN; the last ACK goes out from TIME-WAIT without a change.
    let changes: Vec<(usize, &str)> = steps
        .iter()
        .enumerate()
        .map(|(i, l)| (i, change(l)))
        .filter(|(_, c)| !c.is_empty())
        .collect();
    let mut want = vec![
        (0, "LISTEN -> SYN-RECEIVED"),
        (2, "SYN-RECEIVED -> ESTABLISHED"),
        (our_fin, "ESTABLISHED -> FIN-WAIT-1"),
    ];
    if changes.len() == 5 {
        let acked = changes[3].0;
        assert!(our_fin < acked && acked < their_fin, "{text}");
        want.push((acked, "FIN-WAIT-1 -> FIN-WAIT-2"));
        want.push((their_fin, "FIN-WAIT-2 -> TIME-WAIT"));
    } else {
        want.push((their_fin, "FIN-WAIT-1 -> TIME-WAIT"));
    }
    assert_eq!(changes, want, "{text}");
    assert_eq!(their_fin + 2, steps.len(), "{text}");
    assert!(steps.last().unwrap().contains("|<"), "our last ACK: {text}");
    assert!(!text.contains("cookie"), "{text}");
    assert!(text.contains("] end (TIME-WAIT)"), "{text}");
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.starts_with("<svg"));
    assert_eq!(picture.matches("marker-end").count(), steps.len());
}

/// tcp_syncookies=2 (every SYN answered with a cookie, RFC 4987 §3.6): the stack keeps no
/// state at the SYN (no change on its line: a tracker inferring from the segments would say
/// SYN-RECEIVED), its SYN-ACK is marked as a SYN cookie, and the ACK that returns the cookie
/// is marked and takes the listener's tuple straight to ESTABLISHED.
#[test]
fn trace_marks_a_cookie_handshake() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let svg = temp(&pair, "cookie.svg");
    let _files = Files(vec![svg.clone()]);
    let _serve = serve_with(&pair, &["--set", "tcp_syncookies=2"]);
    let (text, steps) = trace_curl(&pair, &svg);
    assert!(
        steps[0].contains("[S] ") && change(&steps[0]).is_empty(),
        "{text}"
    );
    assert!(
        steps[1].contains("[S.] ") && steps[1].contains("(SYN cookie)"),
        "{text}"
    );
    assert!(change(&steps[1]).is_empty(), "{text}");
    assert!(
        steps[2].contains("[.] ") && steps[2].contains("(cookie ACK)"),
        "{text}"
    );
    assert_eq!(change(&steps[2]), "LISTEN -> ESTABLISHED", "{text}");
    assert_eq!(text.matches("cookie").count(), 2, "{text}");
    assert!(text.contains("] end (TIME-WAIT)"), "{text}");
}

/// Ctrl-C ends a trace as it ends a capture: exit 0, the ladder so far on stdout and the
/// summary (with the serve's drop count) on stderr.
#[test]
fn an_interrupted_trace_prints_its_summary() {
    require_root();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let _serve = serve(&pair);
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &pair.stack_ns,
        BIN,
        "trace",
        "--iface",
        &pair.stack_if,
    ])
    .args(["tcp", "port", "7"])
    .stdout(Stdio::piped());
    let mut tr = Proc::spawn_keep_stdout(c);
    tr.wait_for("xdptcp: tracing on");
    let mut s = connect(&pair);
    echo_roundtrip(&mut s, b"hello").unwrap();
    drop(s);
    // The close's last segments reach the trace's queue (bounded wait).
    std::thread::sleep(Duration::from_millis(300));
    assert!(tr.stop(libc::SIGINT), "trace exits 0 after SIGINT");
    let summary = tr.wait_for("xdptcp: trace:");
    assert!(
        summary.ends_with("0 frames dropped by the stack"),
        "{summary}"
    );
    let mut text = String::new();
    std::io::Read::read_to_string(tr.child.stdout.as_mut().unwrap(), &mut text).unwrap();
    assert!(text.contains("LISTEN -> SYN-RECEIVED"), "{text}");
    assert!(text.contains("] end ("), "{text}");
}
