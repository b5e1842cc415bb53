//! Root-only: `xdptcp ss` against a running `xdptcp serve` on a veth pair, with a Linux client
//! in the peer namespace holding connections in known states:
//!
//! - 5 ESTAB connections to `7=echo` (one of them with 4 MiB written and nothing read),
//!   3 to `9=close-first` left half-closed by the client (the stack: FIN-WAIT-2, Linux:
//!   CLOSE-WAIT), 4 to `9=close-first` closed by the client (the stack: TIME-WAIT).
//! - `xdptcp ss -tan | awk 'NR>1 {++S[$1]} END ...'` gives exactly those counts (and two
//!   LISTEN); the same pipeline over Linux's `ss -tan` in the peer namespace gives the same
//!   ESTAB count, and CLOSE-WAIT there equals FIN-WAIT-2 here (the states mirror).
//! - The default listing (no `-a`) shows no LISTEN or TIME-WAIT; `-l` shows the listeners
//!   with their backlog as Send-Q; `state` / `dport` / `src` filters select exactly; every
//!   ESTAB row's ports are a connection the client holds.
//! - The unread bytes: what the client wrote is in the four queues (client Send-Q and Recv-Q
//!   by Linux's ss, the stack's Recv-Q and Send-Q by ours) but for at most one echo chunk
//!   held by the echo application.
//! - `-o state time-wait`: `timer:(timewait,..)` counting down between two listings;
//!   `-i` shows the internals, `-i --history` each connection's last events (the serve runs
//!   with `--history`); `--json` parses and has one object per row; `-s` sums up.
//!
//! Each test builds its own namespaces (removed on drop, also on panic); the serve process
//! is killed by PID on drop. Every loop is bounded in count and time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use xdptcp_harness::{require_root, VethOptions, VethPair};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The echo application's read chunk (app/echo.rs `CHUNK`): bytes it may hold itself.
const ECHO_CHUNK: u64 = 16 * 1024;

/// The serve process; stopped on drop by SIGTERM (so it removes its stat socket), killed if
/// it is not gone within 10 s; always reaped. By PID.
struct Serve {
    child: Child,
    /// Its stdout lines (kept so its last lines have a reader).
    _lines: mpsc::Receiver<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        if xdptcp_harness::terminate(&mut self.child, Duration::from_secs(10)).is_some() {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(pair: &VethPair) -> Serve {
    serve_with(pair, &[])
}

fn serve_with(pair: &VethPair, extra: &[&str]) -> Serve {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, BIN, "serve"])
        .args(["--iface", &pair.stack_if, "--addr", "198.18.0.1"])
        .args(["--listen", "7=echo", "--listen", "9=close-first"])
        .args([
            "--backlog",
            "100",
            "--duration",
            "120",
            "--adaptive-idle",
            "--history",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning xdptcp serve");
    let out = child.stdout.take().expect("stdout");
    let rx = xdptcp_harness::lines_of(out);
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("start-up line");
    assert!(first.starts_with("xdptcp: serving on "), "{first}");
    Serve { child, _lines: rx }
}

/// `xdptcp ss ARGS` in the stack namespace: stdout (status checked).
fn xss(pair: &VethPair, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &pair.stack_ns,
            BIN,
            "ss",
            "--iface",
            &pair.stack_if,
        ])
        .args(args)
        .output()
        .expect("running xdptcp ss");
    assert!(
        out.status.success(),
        "xdptcp ss {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A shell pipeline in a namespace: stdout.
fn sh(ns: &str, script: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c", script])
        .output()
        .expect("running sh");
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

const AWK: &str = "awk 'NR>1 {++S[$1]} END {for (a in S) print a, S[a]}'";

fn counts(text: &str) -> BTreeMap<String, usize> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(s, n)| (s.to_string(), n.trim().parse().expect("count")))
        .collect()
}

fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

fn connect(pair: &VethPair, port: u16) -> TcpStream {
    pair.in_peer(move || {
        let addr: SocketAddr = format!("198.18.0.1:{port}").parse().unwrap();
        let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok::<_, std::io::Error>(s)
    })
    .expect("entering the peer namespace")
    .expect("connecting")
}

/// Polls `f` every 100 ms for up to 10 s until it returns `Some`.
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ss_lists_what_the_linux_client_holds() {
    require_root();
    let started = Instant::now();
    let pair = VethPair::new(VethOptions::default()).expect("creating the veth pair");
    let _serve = serve(&pair);

    // 5 ESTAB to echo.
    let estab: Vec<TcpStream> = (0..5).map(|_| connect(&pair, 7)).collect();
    for s in &estab[1..] {
        let mut s = s;
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
    }
    // 3 half-closed by the server only (stack FIN-WAIT-2, Linux CLOSE-WAIT): read the EOF.
    let half: Vec<TcpStream> = (0..3).map(|_| connect(&pair, 9)).collect();
    for s in &half {
        let mut v = Vec::new();
        (&mut &*s).read_to_end(&mut v).unwrap();
        assert_eq!(v, b"bye\n");
    }
    // 4 closed by both, the server first: TIME-WAIT on the stack.
    for _ in 0..4 {
        let s = connect(&pair, 9);
        let mut v = Vec::new();
        (&mut &s).read_to_end(&mut v).unwrap();
        drop(s);
    }
    // The unread bytes: write to the first echo connection without reading.
    let big = &estab[0];
    big.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 64 << 10];
    let mut written = 0u64;
    // Until 4 MiB or 300 ms without progress (every queue full).
    let mut stalled = Instant::now();
    while written < 4 << 20 && stalled.elapsed() < Duration::from_millis(300) {
        match (&mut &*big).write(&chunk) {
            Ok(n) => {
                written += n as u64;
                stalled = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(written > 0);

    let want: BTreeMap<String, usize> = [
        ("LISTEN", 2),
        ("ESTAB", 5),
        ("FIN-WAIT-2", 3),
        ("TIME-WAIT", 4),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_string(), n))
    .collect();
    let pipeline = format!("{BIN} ss --iface {} -tan | {AWK}", pair.stack_if);
    eventually("the per-state counts", || {
        let got = counts(&sh(&pair.stack_ns, &pipeline));
        (got == want).then_some(())
    });
    // Linux's ss on the client side, where the states mirror.
    let linux = counts(&sh(&pair.peer_ns, &format!("ss -tan | {AWK}")));
    assert_eq!(linux.get("ESTAB"), want.get("ESTAB"), "{linux:?}");
    assert_eq!(linux.get("CLOSE-WAIT"), want.get("FIN-WAIT-2"), "{linux:?}");

    // The default: connected sockets only, no LISTEN and no TIME-WAIT.
    let def = rows(&xss(&pair, &["-tn"]));
    assert_eq!(
        def[0],
        [
            "State",
            "Recv-Q",
            "Send-Q",
            "Local",
            "Address:Port",
            "Peer",
            "Address:Port"
        ]
    );
    assert_eq!(def.len(), 1 + 5 + 3, "{def:?}");
    // Every ESTAB row is a connection the client holds (its port), to port 7.
    let client_ports: Vec<String> = estab
        .iter()
        .map(|s| format!("198.18.0.2:{}", s.local_addr().unwrap().port()))
        .collect();
    for r in def.iter().filter(|r| r[0] == "ESTAB") {
        assert_eq!(r[3], "198.18.0.1:7");
        assert!(client_ports.contains(&r[4]), "{r:?}");
    }
    // -l: the listeners, Recv-Q = accept queue (0: accepted), Send-Q = backlog.
    let l = rows(&xss(&pair, &["-ltnH"]));
    let mut ls: Vec<(String, String, String)> = l
        .iter()
        .map(|r| (r[0].clone(), r[2].clone(), r[3].clone()))
        .collect();
    ls.sort();
    assert_eq!(
        ls,
        [
            ("LISTEN".into(), "100".into(), "198.18.0.1:7".into()),
            ("LISTEN".into(), "100".into(), "198.18.0.1:9".into())
        ]
    );
    assert!(l.iter().all(|r| r[1] == "0" && r[4] == "0.0.0.0:*"));
    // Filters.
    let tw = rows(&xss(&pair, &["-tanH", "state", "time-wait"]));
    assert_eq!(tw.len(), 4);
    assert!(tw
        .iter()
        .all(|r| r[0] == "TIME-WAIT" && r[3] == "198.18.0.1:9"));
    let p0 = estab[0].local_addr().unwrap().port();
    let one = rows(&xss(&pair, &["-tanH", "dport", "=", &format!(":{p0}")]));
    assert_eq!(one.len(), 1, "{one:?}");
    let bucket = rows(&xss(&pair, &["-tanH", "state", "bucket"]));
    assert_eq!(bucket.len(), 4);
    let sync = rows(&xss(
        &pair,
        &["-tanH", "state", "synchronized", "sport = :7"],
    ));
    assert_eq!(sync.len(), 5);
    let conn = rows(&xss(
        &pair,
        &["-tnH", "state", "connected", "src", "198.18.0.1:9"],
    ));
    assert_eq!(conn.len(), 3 + 4, "FIN-WAIT-2 and TIME-WAIT: {conn:?}");

    // The unread bytes are in the four queues (but for one echo chunk).
    let settled = eventually("queues to settle", || {
        let ours = rows(&xss(&pair, &["-tnH", "dport", "=", &format!(":{p0}")]));
        let theirs = rows(&sh(
            &pair.peer_ns,
            &format!("ss -tnH state established sport = :{p0}"),
        ));
        let q = |r: &Vec<String>, i: usize| r[i].parse::<u64>().unwrap();
        // Linux's -H rows in `state` mode have no State column.
        let (ours, theirs) = (&ours[0], &theirs[0]);
        let sum = q(ours, 1) + q(ours, 2) + q(theirs, 0) + q(theirs, 1);
        (sum <= written && written - sum <= ECHO_CHUNK && q(ours, 1) > 0 && q(ours, 2) > 0)
            .then_some((ours.clone(), theirs.clone()))
    });
    eprintln!("written {written}: stack {settled:?}");

    // Timers: TIME-WAIT counts down.
    let tw_timer = |text: &str| -> Vec<u64> {
        text.lines()
            .map(|l| {
                let t = l
                    .split("timer:(timewait,")
                    .nth(1)
                    .expect("a timewait timer");
                let (time, rest) = t.split_once(',').unwrap();
                assert_eq!(rest, "0)");
                time.strip_suffix("sec").expect("seconds").parse().unwrap()
            })
            .collect()
    };
    let t1 = tw_timer(&xss(&pair, &["-tanoH", "state", "time-wait"]));
    std::thread::sleep(Duration::from_millis(2100));
    let t2 = tw_timer(&xss(&pair, &["-tanoH", "state", "time-wait"]));
    assert_eq!(t1.len(), 4);
    assert!(t1.iter().all(|s| (30..=60).contains(s)), "{t1:?}");
    assert!(t2.iter().max() < t1.iter().min(), "{t1:?} then {t2:?}");

    // -i: the internals line.
    let i = xss(&pair, &["-tniH", "state", "established"]);
    let lines: Vec<&str> = i.lines().collect();
    assert_eq!(lines.len(), 10);
    for info in lines.iter().skip(1).step_by(2) {
        assert!(info.starts_with("\t cubic wscale:"), "{info}");
        for k in [
            "rto:",
            "rtt:",
            "mss:",
            "pmtu:1500",
            "cwnd:",
            "bytes_received:",
            "segs_in:",
            "worker:0",
        ] {
            assert!(info.contains(k), "{k} in {info}");
        }
    }
    // lastsnd/lastrcv/lastack and the send rate. The 4 ping connections have been idle
    // since before the 2.1 s sleep: each value is at least that and at most the test's age,
    // and their order is the exchange's: "ping" in, the echo out, the client's ACK of it.
    let age = started.elapsed().as_millis() as u64;
    let field = |info: &str, k: &str| -> Option<u64> {
        info.split(&format!(" {k}:"))
            .nth(1)?
            .split(' ')
            .next()?
            .parse()
            .ok()
    };
    let mut pings = 0;
    for row in lines.chunks(2) {
        if row[0].contains(&format!(":{p0} ")) {
            continue;
        }
        pings += 1;
        let info = row[1];
        let get = |k| field(info, k).unwrap_or_else(|| panic!("{k} in {info}"));
        let (snd, rcv, ack) = (get("lastsnd"), get("lastrcv"), get("lastack"));
        assert!(
            2100 <= ack && ack <= snd && snd <= rcv && rcv <= age,
            "{age}: {info}"
        );
        let rate = info
            .split(" send ")
            .nth(1)
            .expect("a send rate")
            .split(' ')
            .next();
        let rate = rate.unwrap().strip_suffix("bps").expect("bps");
        assert!(rate.parse::<u64>().is_ok_and(|r| r > 0), "{info}");
    }
    assert_eq!(pings, 4);
    // --history: the echo connections' last events; the half-closed ones' FIN-WAIT-2.
    let h = xss(&pair, &["-tniH", "--history", "state", "established"]);
    for info in h.lines().skip(1).step_by(2) {
        assert!(
            info.contains(" history:(0ms SYN-RECEIVED,") && info.contains("ms ESTABLISHED"),
            "{info}"
        );
    }
    let fw2 = xss(&pair, &["-tniH", "--history", "state", "fin-wait-2"]);
    assert!(
        fw2.contains("ms FIN-WAIT-1,") && fw2.contains("ms FIN-WAIT-2)"),
        "{fw2}"
    );
    eprintln!("{fw2}");
    // --json.
    let j: serde_json::Value = serde_json::from_str(&xss(&pair, &["-ta", "--json"])).unwrap();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 2 + 5 + 3 + 4);
    assert_eq!(arr.iter().filter(|o| o["state"] == "TIME-WAIT").count(), 4);
    assert!(arr
        .iter()
        .filter(|o| o["state"] == "ESTAB")
        .all(|o| o["cc"] == "cubic" && o["mss"].as_u64().is_some()));
    let age = started.elapsed().as_millis() as u64;
    for o in arr.iter().filter(|o| o["state"] == "ESTAB") {
        for k in ["lastsnd_ms", "lastrcv_ms", "lastack_ms"] {
            assert!(o[k].as_u64().is_some_and(|v| v <= age), "{k} in {o}");
        }
        assert!(o["send_bps"].as_u64().is_some_and(|v| v > 0), "{o}");
    }
    // What a reader of the test log sees.
    eprintln!("{}", xss(&pair, &["-tano"]));
    eprintln!("{}", xss(&pair, &["-tni", "dport", "=", &format!(":{p0}")]));
    // -s.
    let s = xss(&pair, &["-s"]);
    // The 3 FIN-WAIT-2 connections the close-first server closed are orphans here (the
    // `tcp_max_orphans` count; Linux would hold them as FIN-WAIT-2 TIME-WAIT buckets and
    // count them under timewait instead).
    assert!(
        s.contains("TCP:   14 (estab 5, closed 0, orphaned 3, timewait 4)"),
        "{s}"
    );
    // A bad filter: one line, status 2.
    let bad = Command::new("ip")
        .args(["netns", "exec", &pair.stack_ns, BIN, "ss", "state", "nope"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    drop(half);
}

/// Two workers on a 2-queue veth pair: connections land on both (each is listed by the
/// worker that owns it, `worker:N`), and the listing holds every socket of both once: the
/// per-state counts (listeners once per worker, as they are replicated), the per-worker
/// rows adding up to them, Linux's ss on the client side mirroring them, and `-s`.
#[test]
fn ss_lists_the_sockets_of_both_workers() {
    require_root();
    let pair = VethPair::new(VethOptions {
        queues: 2,
        mtu: None,
    })
    .expect("creating the 2-queue veth pair");
    let _serve = serve_with(&pair, &["--workers", "2"]);
    const ESTAB: usize = 24;
    const HALF: usize = 6;
    const TW: usize = 8;
    let estab: Vec<TcpStream> = (0..ESTAB)
        .map(|_| {
            let s = connect(&pair, 7);
            let mut r = &s;
            r.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            r.read_exact(&mut b).unwrap();
            s
        })
        .collect();
    let half: Vec<TcpStream> = (0..HALF).map(|_| connect(&pair, 9)).collect();
    for s in &half {
        let mut v = Vec::new();
        (&mut &*s).read_to_end(&mut v).unwrap();
        assert_eq!(v, b"bye\n");
    }
    for _ in 0..TW {
        let s = connect(&pair, 9);
        let mut v = Vec::new();
        (&mut &s).read_to_end(&mut v).unwrap();
        drop(s);
    }
    let want: BTreeMap<String, usize> = [
        ("LISTEN", 2 * 2),
        ("ESTAB", ESTAB),
        ("FIN-WAIT-2", HALF),
        ("TIME-WAIT", TW),
    ]
    .into_iter()
    .map(|(s, n)| (s.to_string(), n))
    .collect();
    let pipeline = format!("{BIN} ss --iface {} -tan | {AWK}", pair.stack_if);
    eventually("the per-state counts over both workers", || {
        let got = counts(&sh(&pair.stack_ns, &pipeline));
        (got == want).then_some(())
    });
    let linux = counts(&sh(&pair.peer_ns, &format!("ss -tan | {AWK}")));
    assert_eq!(linux.get("ESTAB"), Some(&ESTAB), "{linux:?}");
    assert_eq!(linux.get("CLOSE-WAIT"), Some(&HALF), "{linux:?}");
    // Each row once, owned by one worker; both workers own some of each kind.
    let j: serde_json::Value = serde_json::from_str(&xss(&pair, &["-ta", "--json"])).unwrap();
    let arr = j.as_array().unwrap();
    assert_eq!(arr.len(), 4 + ESTAB + HALF + TW);
    let mut per: BTreeMap<(u64, String), usize> = BTreeMap::new();
    let mut peers = std::collections::BTreeSet::new();
    for o in arr {
        let w = o["worker"].as_u64().expect("a worker");
        assert!(w < 2, "{o}");
        *per.entry((w, o["state"].as_str().unwrap().to_string()))
            .or_default() += 1;
        if o["state"] != "LISTEN" {
            assert!(
                peers.insert(o["peer"].as_str().unwrap().to_string()),
                "listed twice: {o}"
            );
        }
    }
    for w in 0..2u64 {
        assert_eq!(per.get(&(w, "LISTEN".to_string())), Some(&2), "{per:?}");
        assert!(
            per.get(&(w, "ESTAB".to_string())).is_some_and(|&n| n > 0),
            "worker {w}: {per:?}"
        );
    }
    let clients: std::collections::BTreeSet<String> = estab
        .iter()
        .chain(&half)
        .map(|s| s.local_addr().unwrap().to_string())
        .collect();
    assert!(clients.is_subset(&peers), "{clients:?} in {peers:?}");
    // -i: the worker on each row agrees with --json's.
    let info = xss(&pair, &["-tniH", "state", "established"]);
    let workers: Vec<&str> = info
        .lines()
        .skip(1)
        .step_by(2)
        .map(|l| {
            l.rsplit("worker:")
                .next()
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(workers.len(), ESTAB);
    for w in ["0", "1"] {
        let n = workers.iter().filter(|&&x| x == w).count();
        let key = (w.parse::<u64>().unwrap(), "ESTAB".to_string());
        assert_eq!(Some(&n), per.get(&key), "worker {w}: {info}");
    }
    // Filters apply to both workers' rows.
    assert_eq!(
        rows(&xss(&pair, &["-tanH", "state", "time-wait"])).len(),
        TW
    );
    assert_eq!(rows(&xss(&pair, &["-tnH", "dport", "=", ":7"])).len(), 0);
    assert_eq!(
        rows(&xss(&pair, &["-tnH", "sport", "=", ":7"])).len(),
        ESTAB
    );
    // -s: from the workers' snapshots (published every 100 ms).
    let total = 4 + ESTAB + HALF + TW;
    // The close-first server closed the FIN-WAIT-2 ones: orphans (Linux counts those under
    // timewait; docs/state-machine.md).
    let line = format!("TCP:   {total} (estab {ESTAB}, closed 0, orphaned {HALF}, timewait {TW})");
    eventually("-s over both workers", || {
        xss(&pair, &["-s"]).contains(&line).then_some(())
    });
    eprintln!("{}", xss(&pair, &["-tn"]));
    drop(half);
}
