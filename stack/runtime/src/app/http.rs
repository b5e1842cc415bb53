//! `http`: a minimal HTTP/1.1 responder. Reads a request head up to `\r\n\r\n` (a body
//! announced by `Content-Length` is read and ignored), answers `200 OK` with a small body and
//! a `Content-Length`, and keeps the connection open unless the request says
//! `Connection: close` (or is HTTP/1.0 without `Connection: keep-alive`). Pipelined requests
//! are answered in order.
//!
//! The response has the header fields nginx sends for the same body (`Server`, `Date`,
//! `Content-Type`, `Content-Length`, `Connection`, in nginx's order), so the benchmark's
//! wrk runs against both move the same bytes (one byte more here: `xdptcp` vs `nginx`).
//! `Date` (RFC 9110 §6.6.1) needs a wall clock: [`Http::with_wall_clock`] maps the worker's
//! monotonic time to it; [`Http::default`] has none and omits the field, as §6.6.1 allows.
//!
//! Memory bound per connection: [`MAX_REQUEST`] bytes of request and at most one response
//! the send buffer did not take yet (reading pauses meanwhile). A larger request head gets
//! `431` and a close.

use rustc_hash::FxHashMap;

use super::{App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;
use crate::time::Instant;

/// Largest request head plus body buffered per connection.
pub const MAX_REQUEST: usize = 8192;
/// The response body.
pub const BODY: &[u8] = b"hello from xdptcp\n";

#[derive(Debug, Default)]
struct Conn {
    req: Vec<u8>,
    out: Vec<u8>,
    close_after: bool,
    peer_fin: bool,
    closed: bool,
}

/// The HTTP responder.
#[derive(Debug, Default)]
pub struct Http {
    conns: FxHashMap<ConnId, Conn>,
    /// Requests answered.
    pub responses: u64,
    /// Wall-clock nanoseconds since the Unix epoch at monotonic time zero, if known.
    wall_offset_ns: Option<u64>,
    /// The `Date` value of second `date_sec` (IMF-fixdate), formatted once per second.
    date: [u8; 29],
    date_sec: u64,
}

impl Http {
    /// A responder that sends `Date`: `wall_offset_ns` is the Unix time in nanoseconds at the
    /// worker's monotonic instant zero (wall clock minus monotonic clock).
    pub fn with_wall_offset(wall_offset_ns: u64) -> Self {
        Http {
            wall_offset_ns: Some(wall_offset_ns),
            ..Http::default()
        }
    }

    /// [`Http::with_wall_offset`] from the clocks now (`CLOCK_REALTIME` − `CLOCK_MONOTONIC`).
    /// Called where the server is built, above the worker loop.
    pub fn with_wall_clock() -> Self {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let mono = crate::clock::now().as_nanos();
        Http::with_wall_offset(wall.saturating_sub(mono))
    }

    /// The `Date` value at `now`, if there is a clock.
    fn date_at(&mut self, now: Instant) -> Option<&[u8]> {
        let unix = (self.wall_offset_ns? + now.as_nanos()) / 1_000_000_000;
        if self.date_sec != unix || self.date[0] == 0 {
            http_date(unix, &mut self.date);
            self.date_sec = unix;
        }
        Some(&self.date)
    }
}

/// IMF-fixdate (RFC 9110 §5.6.7) of a Unix time: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(unix: u64, out: &mut [u8; 29]) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, sod) = (unix / 86_400, unix % 86_400);
    // Civil-from-days (H. Hinnant's algorithm) for dates from 1970 on.
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = (yoe + era * 400 + u64::from(m <= 2)).min(9999);
    let mut w = &mut out[..];
    use std::io::Write;
    let _ = write!(
        w,
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

/// One parsed request head: its length including the blank line, the body length, and
/// whether the connection should close after the response.
fn parse_head(buf: &[u8]) -> Option<(usize, usize, bool)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..end]).unwrap_or("");
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let http10 = request_line.ends_with("HTTP/1.0");
    let (mut close, mut keep_alive, mut body) = (false, false, 0usize);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            close |= value.eq_ignore_ascii_case("close");
            keep_alive |= value.eq_ignore_ascii_case("keep-alive");
        } else if name.eq_ignore_ascii_case("content-length") {
            body = value.parse().unwrap_or(0);
        }
    }
    Some((end, body, close || (http10 && !keep_alive)))
}

/// A response in nginx's field order (see the module docs).
fn response(status: &str, close: bool, date: Option<&[u8]>, body: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(out, "HTTP/1.1 {status}\r\nServer: xdptcp\r\n");
    if let Some(d) = date {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(d);
        out.extend_from_slice(b"\r\n");
    }
    let _ = write!(
        out,
        "Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        body.len(),
        if close { "close" } else { "keep-alive" }
    );
    out.extend_from_slice(body);
}

impl Http {
    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
        // Formatted before borrowing the connection (at most once per second).
        let mut date = [0u8; 29];
        let has_date = match self.date_at(io.now()) {
            Some(d) => {
                date.copy_from_slice(d);
                true
            }
            None => false,
        };
        let date = has_date.then_some(&date[..]);
        let st = self.conns.entry(c).or_default();
        loop {
            if !st.out.is_empty() {
                let n = io.send(c, &st.out).unwrap_or(st.out.len());
                st.out.drain(..n);
                if !st.out.is_empty() {
                    return; // wait for Writable
                }
            }
            if st.close_after {
                break;
            }
            match parse_head(&st.req) {
                Some((head, body, close)) if st.req.len() >= head + body => {
                    st.req.drain(..head + body);
                    response("200 OK", close, date, BODY, &mut st.out);
                    st.close_after = close;
                    self.responses += 1;
                    continue;
                }
                Some((head, body, _)) if head + body > MAX_REQUEST => {
                    response("413 Content Too Large", true, date, b"", &mut st.out);
                    st.close_after = true;
                    continue;
                }
                None if st.req.len() >= MAX_REQUEST => {
                    response(
                        "431 Request Header Fields Too Large",
                        true,
                        date,
                        b"",
                        &mut st.out,
                    );
                    st.close_after = true;
                    continue;
                }
                _ => {}
            }
            // Read at most up to the bound; the rest waits in the connection's buffer.
            let room = MAX_REQUEST.saturating_sub(st.req.len());
            let mut chunk = [0u8; 2048];
            let want = room.min(chunk.len());
            match io.recv(c, &mut chunk[..want]) {
                Ok(n @ 1..) => st.req.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        if (st.close_after || st.peer_fin) && st.out.is_empty() && !st.closed {
            // Drain what is left so the close is a FIN, not a RST (RFC 2525 §2.17).
            let mut chunk = [0u8; 2048];
            while let Ok(1..) = io.recv(c, &mut chunk) {}
            st.closed = true;
            let _ = io.close(c);
        }
    }
}

impl App for Http {
    fn on_event(&mut self, io: &mut AppIo<'_>, c: ConnId, ev: AppEvent) {
        match ev {
            AppEvent::Readable | AppEvent::Writable => self.pump(io, c),
            AppEvent::PeerFin => {
                self.conns.entry(c).or_default().peer_fin = true;
                self.pump(io, c);
            }
            AppEvent::Closed => {
                self.conns.remove(&c);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET"),
            Some((27, 0, false))
        );
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nconnection: Close\r\n\r\n"),
            Some((37, 0, true))
        );
        assert_eq!(parse_head(b"GET / HTTP/1.0\r\n\r\n"), Some((18, 0, true)));
        assert_eq!(
            parse_head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Some((42, 0, false))
        );
        assert_eq!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
            Some((38, 5, false))
        );
    }

    #[test]
    fn response_format() {
        let mut out = Vec::new();
        response("200 OK", false, None, BODY, &mut out);
        assert_eq!(
            out,
            &b"HTTP/1.1 200 OK\r\nServer: xdptcp\r\nContent-Type: text/plain\r\n\
               Content-Length: 18\r\nConnection: keep-alive\r\n\r\nhello from xdptcp\n"[..]
        );
        out.clear();
        let date = b"Sun, 22 Nov 2026 02:54:02 GMT";
        response("200 OK", true, Some(date), b"", &mut out);
        assert_eq!(
            out,
            &b"HTTP/1.1 200 OK\r\nServer: xdptcp\r\nDate: Sun, 22 Nov 2026 02:54:02 GMT\r\n\
               Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..]
        );
        // nginx 1.22 (`server_tokens off`, `return 200 BODY`, default_type text/plain) sends
        // the same fields in the same order: 159 bytes with this body, 160 here.
        out.clear();
        response("200 OK", false, Some(date), BODY, &mut out);
        assert_eq!(out.len(), 160);
    }

    #[test]
    fn dates() {
        let mut d = [0u8; 29];
        let mut at = |unix| {
            http_date(unix, &mut d);
            String::from_utf8(d.to_vec()).unwrap()
        };
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110 §5.6.7's example.
        assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_795_307_072), "Sun, 22 Nov 2026 00:24:32 GMT");
        // The worker's monotonic time maps onto the wall clock, re-formatted per second.
        let mut h = Http::with_wall_offset(784_111_777_000_000_000 - 5_000_000_000);
        let t = Instant::from_secs(5);
        assert_eq!(h.date_at(t).unwrap(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        let t = Instant::from_millis(6_999);
        assert_eq!(h.date_at(t).unwrap(), b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(Http::default().date_at(t), None);
    }
}
