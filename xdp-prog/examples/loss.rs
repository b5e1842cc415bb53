//! Holds the wire fault injector on an interface's egress for a bounded time, printing the
//! counters once a second; SIGINT/SIGTERM detach it cleanly (the tcx link also goes with the
//! process on SIGKILL). Run inside the interface's namespace; `scripts/loss.sh` wraps it.
//!
//! `sudo ip netns exec xt-peer-0 target/release/examples/loss xtp-0 --ppm 10000 --seconds 60`

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use xdptcp_xdp::loss::{LossConfig, LossInjector};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

const USAGE: &str = "usage: loss IFNAME [--ppm N] [--every N] [--port P] [--dup-ppm N] \
                     [--seconds S (1..=86400, default 3600)]";

fn main() {
    if let Err(e) = run() {
        eprintln!("loss: {e}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<(String, LossConfig, u64), String> {
    let mut args = std::env::args().skip(1);
    let ifname = args.next().filter(|a| !a.starts_with('-')).ok_or(USAGE)?;
    let mut cfg = LossConfig::default();
    let mut secs = 3600u64;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        let bad = |_| format!("bad value for {flag}: {value:?}\n{USAGE}");
        match flag.as_str() {
            "--ppm" => cfg.drop_ppm = value.parse().map_err(bad)?,
            "--every" => cfg.every_nth = Some(value.parse().map_err(bad)?),
            "--port" => cfg.port = Some(value.parse().map_err(bad)?),
            "--dup-ppm" => cfg.dup_ppm = value.parse().map_err(bad)?,
            "--seconds" => secs = value.parse().map_err(bad)?,
            _ => return Err(USAGE.into()),
        }
    }
    if !(1..=86_400).contains(&secs) {
        return Err(USAGE.into());
    }
    Ok((ifname, cfg, secs))
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (ifname, cfg, secs) = parse_args()?;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
    let inj = LossInjector::attach_egress(&ifname, cfg)?;
    println!("loss: on {ifname} egress: {cfg:?} for at most {secs} s");
    // 10 ticks a second so a signal is noticed quickly; counters once a second.
    for tick in 1..=secs * 10 {
        std::thread::sleep(Duration::from_millis(100));
        if STOP.load(Ordering::Relaxed) {
            break;
        }
        if tick % 10 == 0 {
            println!("{:?}", inj.counters()?);
        }
    }
    println!("loss: off {ifname}: {:?}", inj.counters()?);
    Ok(())
}
