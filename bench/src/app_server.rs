//! The server programs of the `app/*` scenarios, the Debian binaries unchanged: nginx and
//! redis-server, started in the server namespace either on the kernel or under
//! `xdptcp run` (the POSIX layer preloaded, docs/posix.md), with the same configuration and
//! pinned to the same cores by `taskset` in both cases:
//!
//! `ip netns exec NS taskset -c CORES [xdptcp run --iface IF --addr IP [--set K=V].. --] PROG ARGS`
//!
//! Every `exec` keeps the PID, so the child we spawn is the server process itself; it is
//! stopped by that PID (SIGTERM, SIGKILL after 5 s), also on drop. Its stdout and stderr
//! (the POSIX layer's `xdptcp: ...` lines among them) go to a file in the run's directory.
//!
//! nginx runs as one process (`master_process off; worker_processes 1`) on one server core,
//! or, with `--workers N`, as nginx's stock model: a master and N worker processes, one per
//! core (`worker_cpu_affinity`), on an N-queue veth; under `xdptcp run --workers N` each
//! worker claims a queue of its own (docs/posix.md, "Processes"). The kernel baseline runs
//! the same file.

use crate::error::{bail, format_err, Context, Result};
use crate::netns::VethNetns;
use crate::pairing;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the server's sockets live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Under {
    /// The kernel's TCP.
    Kernel,
    /// `xdptcp run`: the stack, through the preloaded POSIX layer.
    Stack,
}

/// The preload library's file name (`xdptcp::launch::LIBRARY`).
pub use xdptcp::launch::LIBRARY;

/// The `xdptcp` program and the preload library next to it (or `$XDPTCP_PRELOAD`), or one
/// line saying what to build.
pub fn xdptcp_run_parts() -> Result<(PathBuf, PathBuf)> {
    let bin = pairing::xdptcp_serve_binary().ok_or_else(|| format_err!(pairing::NEEDS_SERVE))?;
    let lib = match std::env::var_os("XDPTCP_PRELOAD") {
        Some(p) => PathBuf::from(p),
        // `cargo build` puts it next to the program; `cargo test` alone leaves it in deps/.
        None => [
            bin.with_file_name(LIBRARY),
            bin.with_file_name("deps").join(LIBRARY),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| bin.with_file_name(LIBRARY)),
    };
    if !lib.is_file() {
        bail!(
            "`xdptcp run` needs {} (build it: cargo build --release -p xdptcp-posix, or set \
             XDPTCP_PRELOAD)",
            lib.display()
        );
    }
    Ok((bin, lib))
}

/// The command prefix of a server program: namespace, cores and, under the stack,
/// `xdptcp run` with the bench's stack settings ([`pairing::stack_sets`]) and, with more than
/// one core, `--workers N` (the program's worker processes claim queues 0..N).
pub fn command(env: &VethNetns, under: Under, cores: &[usize], argv: &[String]) -> Result<Command> {
    let cpus = cores
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &env.server_ns, "taskset", "-c", &cpus]);
    if under == Under::Stack {
        let (bin, lib) = xdptcp_run_parts()?;
        c.arg(bin).env("XDPTCP_PRELOAD", lib).args([
            "run",
            "--iface",
            &env.server_if,
            "--addr",
            &env.server_ip.to_string(),
        ]);
        for kv in pairing::stack_sets() {
            c.args(["--set", &kv]);
        }
        if cores.len() > 1 {
            c.args(["--workers", &cores.len().to_string()]);
        }
        c.arg("--");
    }
    c.args(argv);
    Ok(c)
}

/// A running server program; stopped by PID on drop.
pub struct AppProcess {
    child: Child,
    /// Its stdout and stderr.
    log: PathBuf,
    what: String,
}

impl AppProcess {
    /// Spawns `argv` (see [`command`]) with its output into `dir/<name>.log`.
    pub fn spawn(
        env: &VethNetns,
        under: Under,
        cores: &[usize],
        argv: &[String],
        dir: &Path,
        name: &str,
    ) -> Result<Self> {
        let log = dir.join(format!("{name}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = command(env, under, cores, argv)?
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        Ok(AppProcess {
            child,
            log,
            what: name.to_string(),
        })
    }

    /// The program's output so far (at most its last 4 KiB).
    pub fn output(&self) -> String {
        let t = std::fs::read(&self.log).unwrap_or_default();
        let from = t.len().saturating_sub(4096);
        String::from_utf8_lossy(&t[from..]).trim().to_string()
    }

    /// `Some(reason)` once the program has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(format!("{} exited ({st}): {}", self.what, self.last_line())),
            _ => None,
        }
    }

    fn last_line(&self) -> String {
        self.output()
            .lines()
            .last()
            .unwrap_or("(no output)")
            .to_string()
    }

    /// Retries `probe` every 100 ms for up to 10 s until it succeeds; gives up at once if the
    /// program exits. Returns what the probe returned.
    pub fn wait_ready<T>(&mut self, mut probe: impl FnMut() -> Result<T>) -> Result<T> {
        let end = Instant::now() + Duration::from_secs(10);
        let mut last = String::from("no attempt");
        while Instant::now() < end && !crate::sys::stopped() {
            match probe() {
                Ok(v) => return Ok(v),
                Err(e) => last = format!("{e:#}"),
            }
            if let Some(why) = self.exited() {
                bail!("{why}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} did not answer within 10 s: {last}", self.what)
    }

    /// Stops it (SIGTERM, SIGKILL after 5 s); returns its output.
    pub fn stop(mut self) -> String {
        self.shutdown();
        self.output()
    }

    fn shutdown(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        // SAFETY: signals only the process we spawned, by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for AppProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The static page nginx serves (`/index.html`, 612 bytes, about the size of nginx's own
/// welcome page).
pub fn page() -> Vec<u8> {
    let mut p = b"<!DOCTYPE html>\n<html><head><title>xdptcp-bench</title></head><body>\n".to_vec();
    let line = b"<p>app/nginx: the same page from nginx on the kernel and under xdptcp run.</p>\n";
    while p.len() + line.len() + 15 <= 612 {
        p.extend_from_slice(line);
    }
    p.extend_from_slice(b"</body></html>\n");
    p.resize(612, b'\n');
    p
}

/// nginx's configuration (everything under `dir`; the page in `dir/www`): one process on one
/// core, or a master and a worker per core of `cores` (see the module docs); the usual Debian
/// choices (`sendfile on`, `tcp_nopush` off), access log off, a huge `keepalive_requests`,
/// `conns` connections and a margin.
pub fn nginx_config(dir: &Path, addr: SocketAddrV4, conns: usize, cores: &[usize]) -> String {
    let d = dir.display();
    let processes = match cores {
        [] | [_] => "master_process off;\nworker_processes 1;".to_string(),
        _ => format!(
            "master_process on;\nworker_processes {};\nworker_cpu_affinity {};",
            cores.len(),
            cores
                .iter()
                .map(|&c| crate::http::cpu_mask(c))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    format!(
        "# xdptcp-bench app/nginx (generated): the same file on the kernel and under xdptcp run
daemon off;
{processes}
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections {wc}; }}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    default_type text/html;
    keepalive_requests 1000000000;
    keepalive_timeout 75s;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{
        listen {addr} backlog=4096;
        root {d}/www;
        index index.html;
    }}
}}
",
        wc = (2 * conns + 64).max(1024),
    )
}

/// Writes the page and the configuration into `dir`; returns nginx's argument vector.
pub fn nginx_argv(
    dir: &Path,
    addr: SocketAddrV4,
    conns: usize,
    cores: &[usize],
) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir.join("www"))?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    std::fs::write(dir.join("www/index.html"), page())?;
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_config(dir, addr, conns, cores))?;
    let d = dir.display().to_string();
    Ok(vec![
        "nginx".into(),
        "-q".into(),
        "-e".into(),
        format!("{d}/error.log"),
        "-p".into(),
        d,
        "-c".into(),
        conf.display().to_string(),
    ])
}

/// redis-server's argument vector: no persistence, no protected mode, in the foreground,
/// logging to stdout, its working directory `dir`.
pub fn redis_argv(dir: &Path, addr: SocketAddrV4) -> Vec<String> {
    [
        "redis-server",
        "--bind",
        &addr.ip().to_string(),
        "--port",
        &addr.port().to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
        "--dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_and_configs() {
        let p = page();
        assert_eq!(p.len(), 612);
        assert!(p.starts_with(b"<!DOCTYPE html>") && p.ends_with(b"\n"));
        let addr: SocketAddrV4 = "198.18.0.1:80".parse().unwrap();
        let c = nginx_config(Path::new("/t/d"), addr, 16, &[0]);
        // One core: one process, no master.
        assert!(c.contains("\nmaster_process off;\nworker_processes 1;\n"));
        // Two cores: nginx's stock model, a worker pinned to each.
        let two = nginx_config(Path::new("/t/d"), addr, 16, &[0, 1]);
        assert!(
            two.contains("\nmaster_process on;\nworker_processes 2;\nworker_cpu_affinity 1 10;\n")
        );
        assert!(c.contains("listen 198.18.0.1:80 backlog=4096;"));
        assert!(c.contains("root /t/d/www;") && c.contains("worker_connections 1024;"));
        let r = redis_argv(Path::new("/t/r"), "198.18.0.1:6379".parse().unwrap());
        assert_eq!(
            r[..5],
            ["redis-server", "--bind", "198.18.0.1", "--port", "6379"]
        );
        assert_eq!(r[5..7], ["--save", ""]);
    }
}
