//! `http`: a minimal HTTP/1.1 responder. Reads a request head up to `\r\n\r\n` (a body
//! announced by `Content-Length` is read and ignored), answers `200 OK` with a small body and
//! a `Content-Length`, and keeps the connection open unless the request says
//! `Connection: close` (or is HTTP/1.0 without `Connection: keep-alive`). Pipelined requests
//! are answered in order.
//!
//! Memory bound per connection: [`MAX_REQUEST`] bytes of request and at most one response
//! the send buffer did not take yet (reading pauses meanwhile). A larger request head gets
//! `431` and a close.

use rustc_hash::FxHashMap;

use super::{App, AppEvent, AppIo};
use crate::tcp::endpoint::ConnId;

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

fn response(status: &str, close: bool, body: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    let _ = write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    out.extend_from_slice(body);
}

impl Http {
    fn pump(&mut self, io: &mut AppIo<'_>, c: ConnId) {
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
                    response("200 OK", close, BODY, &mut st.out);
                    st.close_after = close;
                    self.responses += 1;
                    continue;
                }
                Some((head, body, _)) if head + body > MAX_REQUEST => {
                    response("413 Content Too Large", true, b"", &mut st.out);
                    st.close_after = true;
                    continue;
                }
                None if st.req.len() >= MAX_REQUEST => {
                    response(
                        "431 Request Header Fields Too Large",
                        true,
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
        response("200 OK", false, BODY, &mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\nhello from xdptcp\n"
        );
        out.clear();
        response("200 OK", true, b"", &mut out);
        assert!(out.ends_with(b"Connection: close\r\n\r\n"));
    }
}
