//! Child processes of the tests: stopped the way an operator stops them.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child killed (by its PID) and reaped on drop, also while a failed assertion unwinds:
/// no test leaves a process behind.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child's output (its stdout or stderr), a line at a time, read on a thread of its own
/// until it ends or the receiver is dropped; wait on it with `recv_timeout` (bounded).
pub fn lines_of(out: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// SIGTERM to `child` by its PID (`ip netns exec` execs the program in place, so that is the
/// program), then its exit status if it exits within `within` (`None`: still running).
pub fn terminate(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    // SAFETY: kill(2) on the PID of a child of this process that has not been reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let end = Instant::now() + within;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn sigterm_ends_a_child_and_gives_its_status() {
        let mut c = Command::new("sleep").arg("30").spawn().unwrap();
        let st = terminate(&mut c, Duration::from_secs(5)).expect("sleep exits on SIGTERM");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        // A child that ignores SIGTERM is still running when the bound ends.
        let mut c = Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(terminate(&mut c, Duration::from_millis(200)).is_none());
        c.kill().unwrap();
        c.wait().unwrap();
    }
}
