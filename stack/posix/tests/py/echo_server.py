"""An epoll echo server (non-blocking, level-triggered) that reports what it sees on stdout:
'ready PORT' once listening, then per connection 'eof' (recv returned 0) or 'reset'
(ECONNRESET). Run under the POSIX layer by tests/veth_posix.rs. Exits after 120 s at most."""
import errno, select, signal, socket, sys

signal.alarm(120)
port = int(sys.argv[1])
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", port))
ls.listen(128)
ls.setblocking(False)
ep = select.epoll()
ep.register(ls.fileno(), select.EPOLLIN)
conns = {}
pending = {}  # fd -> bytes not yet sent
print("ready", port, flush=True)


def close(fd, why):
    ep.unregister(fd)
    conns.pop(fd).close()
    pending.pop(fd, None)
    print(why, flush=True)


while True:
    for fd, ev in ep.poll(5):
        if fd == ls.fileno():
            while True:
                try:
                    c, _ = ls.accept()
                except BlockingIOError:
                    break
                c.setblocking(False)
                conns[c.fileno()] = c
                ep.register(c.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
            continue
        c = conns.get(fd)
        if c is None:
            continue
        if ev & select.EPOLLOUT and fd in pending:
            try:
                n = c.send(pending[fd])
            except (BrokenPipeError, ConnectionResetError):
                close(fd, "reset")
                continue
            pending[fd] = pending[fd][n:]
            if not pending[fd]:
                del pending[fd]
                ep.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            continue
        if fd in pending:
            continue  # back-pressure: read again once the echo is out
        try:
            d = c.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionResetError:
            close(fd, "reset")
            continue
        if not d:
            close(fd, "eof")
            continue
        try:
            n = c.send(d)
        except BlockingIOError:
            n = 0
        except (BrokenPipeError, ConnectionResetError):
            close(fd, "reset")
            continue
        if n < len(d):
            pending[fd] = d[n:]
            ep.modify(fd, select.EPOLLOUT | select.EPOLLRDHUP)
