"""Client-side call semantics, one line per check. tests/veth_posix.rs runs it on the kernel
and under the POSIX layer against the same kernel server (peer_server.py) and asserts that
the two outputs are identical. Only results that do not depend on timing are printed; every
wait is bounded."""
import fcntl, select, signal, socket, struct, sys, termios
from checks import attempt, name, out

signal.alarm(60)

host, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def conn(cmd):
    s = socket.create_connection((host, port), timeout=5)
    s.settimeout(None)
    s.sendall(cmd + b"\n")
    return s


# connect to a closed port, blocking and non-blocking
s = socket.socket()
out("connect_closed_blocking", attempt(lambda: s.connect((host, closed))))
s.close()
s = socket.socket()
s.setblocking(False)
out("connect_closed_nonblocking", name(s.connect_ex((host, closed))))
p = select.poll()
p.register(s, select.POLLOUT)
ev = p.poll(5000)
out("connect_closed_poll_out", bool(ev and ev[0][1] & select.POLLOUT))
out("connect_closed_so_error", name(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)))
out("connect_closed_so_error_again", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
s.close()

# non-blocking connect to an open port, completion through epoll
s = socket.socket()
s.setblocking(False)
out("connect_open_nonblocking", name(s.connect_ex((host, port))))
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLOUT)
evs = ep.poll(5)
out("connect_open_epollout", bool(evs and evs[0][1] & select.EPOLLOUT))
out("connect_open_so_error", s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))
out("connect_again", attempt(lambda: s.connect((host, port))))
out("getpeername", s.getpeername())
out("getsockname_ip", s.getsockname()[0])
out("so_type", s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
out("tcp_info_state", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0])
out("recv_nothing_nonblocking", attempt(lambda: s.recv(10)))
s.setblocking(True)
s.sendall(b"hold\n")
ep.close()
s.close()

# options
s = socket.socket()
s.connect((host, port))
s.sendall(b"hold\n")
out("nodelay_default", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
out("nodelay_set", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
out("keepalive_set", s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0)
out("keepidle_zero", attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 0)))
out("keepidle_ok", attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30)))
out("keepidle_get", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE))
out("keepcnt_too_big", attempt(lambda: s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 128)))
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
out("linger_get", struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)))
out("fionbio", attempt(lambda: fcntl.ioctl(s, termios.FIONBIO, struct.pack("i", 1)) and None))
out("nonblock_flag", bool(fcntl.fcntl(s, fcntl.F_GETFL) & 0o4000))
out("recv_after_fionbio", attempt(lambda: s.recv(1)))
s.close()

# data: FIONREAD, edge- and level-triggered epoll, end of stream and EPOLLRDHUP
s = conn(b"send4")
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
evs = ep.poll(5)
out("et_first", [e & select.EPOLLIN for _, e in evs])
out("et_again_without_reading", ep.poll(0.2))
out("fionread", struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0" * 4))[0])
ep.modify(s.fileno(), select.EPOLLIN)
out("lt_reports", [e & select.EPOLLIN for _, e in ep.poll(1)])
out("lt_reports_again", [e & select.EPOLLIN for _, e in ep.poll(1)])
out("recv", s.recv(100))
out("lt_after_read", ep.poll(0.2))
ep.close()
s.close()

s = conn(b"close")
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
evs = ep.poll(5)
out("peer_close_events", sorted(
    k for k, b in (("IN", select.EPOLLIN), ("RDHUP", select.EPOLLRDHUP), ("HUP", select.EPOLLHUP), ("ERR", select.EPOLLERR))
    if evs and evs[0][1] & b))
out("recv_eof", s.recv(100))
out("recv_eof_again", s.recv(100))
ep.close()
s.close()

# peer reset: ECONNRESET once, then end of stream
s = conn(b"rst")
p = select.poll()
p.register(s, select.POLLIN)
p.poll(5000)
out("recv_after_rst", attempt(lambda: s.recv(100)))
out("recv_after_rst_again", attempt(lambda: s.recv(100)))
out("send_after_rst", attempt(lambda: s.send(b"x")))
s.close()

# shutdown: send after SHUT_WR is EPIPE; the peer's echo of what came before still arrives
s = conn(b"echo")
s.sendall(b"abc")
s.shutdown(socket.SHUT_WR)
out("send_after_shut_wr", attempt(lambda: s.send(b"x")))
got = b""
while True:
    d = s.recv(100)
    if not d:
        break
    got += d
out("echo_after_shut_wr", got)
s.close()

# one epoll set with a stack socket and kernel descriptors (a pipe); EPOLLONESHOT; an idle
# wait sleeps (the process uses little CPU while epoll_wait waits with nothing ready)
import os, resource
s = conn(b"echo")
r, w = os.pipe()
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
ep.register(r, select.EPOLLIN)
t0 = resource.getrusage(resource.RUSAGE_SELF)
out("mixed_idle", ep.poll(1.0))
t1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
out("mixed_idle_sleeps", cpu < 0.5)
os.write(w, b"p")
out("mixed_pipe", [(fd == r, e) for fd, e in ep.poll(5)])
os.read(r, 1)
s.sendall(b"zz")
out("mixed_socket", [(fd == s.fileno(), e & select.EPOLLIN) for fd, e in ep.poll(5)])
out("oneshot_disarmed", ep.poll(0.2))
ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
out("oneshot_rearmed", [(fd == s.fileno(), e & select.EPOLLIN) for fd, e in ep.poll(5)])
got = b""
while len(got) < 2:
    got += s.recv(10)
out("mixed_recv", got)
ep.close()
os.close(r)
os.close(w)
s.close()

# select on a stack socket: readable once data arrives, writable when connected
s = conn(b"send4")
rl, wl, _ = select.select([s], [s], [], 5)
out("select_writable", wl == [s])
rl, _, _ = select.select([s], [], [], 5)
out("select_readable", rl == [s])
out("select_recv", s.recv(10))
rl, _, _ = select.select([s], [], [], 0.2)
out("select_not_readable", rl)
s.close()

# a full send buffer: EAGAIN, not writable; writable again (select, poll, epoll) once the
# peer reads
for how in ("select", "poll", "epoll"):
    s = conn(b"stall")
    s.setblocking(False)
    sent = 0
    # Until the peer's window is closed too: EAGAIN that persists 50 ms (the peer reads
    # nothing for 2 s), so no acknowledgement frees space before the checks.
    import time
    for _ in range(100):
        try:
            while sent < (64 << 20):
                sent += s.send(b"x" * 65536)
        except BlockingIOError:
            pass
        time.sleep(0.05)
        try:
            sent += s.send(b"x" * 65536)
        except BlockingIOError:
            break
    if how == "select":
        full = select.select([], [s], [], 0)[1] == []
        ok = select.select([], [s], [], 10)[1] == [s]
    elif how == "poll":
        p = select.poll()
        p.register(s, select.POLLOUT)
        full = p.poll(0) == []
        ok = bool(p.poll(10000))
    else:
        ep = select.epoll()
        ep.register(s.fileno(), select.EPOLLOUT | select.EPOLLET)
        first = ep.poll(0)  # ET: the registration itself reports the current state once
        full = first == []
        ok = bool(ep.poll(10))
        ep.close()
    out(f"full_{how}", (sent < (64 << 20), full, ok))
    s.close()

# duplicated descriptors share the socket; the last close closes it
def recv_n(sock, n):
    got = b""
    while len(got) < n:
        d = sock.recv(n - len(got))
        if not d:
            break
        got += d
    return got


s = conn(b"echo")
d = s.dup()
d.sendall(b"via dup")
out("dup_echo", recv_n(s, 7))
s.close()
d.sendall(b"after")
out("dup_after_first_close", recv_n(d, 5))
d.setblocking(False)
fd2 = fcntl.fcntl(d, fcntl.F_DUPFD, 200)
out("f_dupfd", fd2 >= 200)
out("dup_shares_nonblock", bool(fcntl.fcntl(fd2, fcntl.F_GETFL) & 0o4000))
os.close(fd2)
d.setblocking(True)
d.shutdown(socket.SHUT_WR)
out("dup_eof", recv_n(d, 100))
d.close()
a = conn(b"echo")
b = conn(b"hold")
os.dup2(a.fileno(), b.fileno())
b.sendall(b"onto")
out("dup2_onto_socket", recv_n(a, 4))
b.close()
a.sendall(b"still")
out("dup2_original_alive", recv_n(a, 5))
a.close()

# SO_RCVTIMEO: a blocking recv gives up with EAGAIN; set before or after connect
s = conn(b"hold")
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 200000))
out("rcvtimeo_get", struct.unpack("ll", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)))
out("recv_rcvtimeo", attempt(lambda: s.recv(10)))
out("rcvtimeo_bad_usec", attempt(lambda: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 2000000))))
s.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 100000))
s.connect((host, port))
s.sendall(b"hold\n")
out("recv_rcvtimeo_set_before_connect", attempt(lambda: s.recv(10)))
s.close()

# MSG_PEEK copies without consuming: with MSG_WAITALL it waits for the whole length; peeked
# data stays readable (poll, FIONREAD) and is read again; a peek at end of stream is b""
s = conn(b"echo")
s.sendall(b"peekaboo")
out("peek_waitall", s.recv(8, socket.MSG_PEEK | socket.MSG_WAITALL))
out("peek_again_short", s.recv(4, socket.MSG_PEEK))
out("peek_fionread", struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0" * 4))[0])
p = select.poll()
p.register(s, select.POLLIN)
out("peek_still_readable", bool(p.poll(0)))
out("peek_then_read", s.recv(3))
out("peek_rest", s.recv(100, socket.MSG_PEEK))
out("read_rest", recv_n(s, 5))
out("peek_empty_dontwait", attempt(lambda: s.recv(10, socket.MSG_PEEK | socket.MSG_DONTWAIT)))
s.setblocking(False)
out("peek_empty_nonblocking", attempt(lambda: s.recv(10, socket.MSG_PEEK)))
s.setblocking(True)
s.sendall(b"tail")
out("peek_blocking", s.recv(4, socket.MSG_PEEK | socket.MSG_WAITALL))
s.shutdown(socket.SHUT_WR)
out("read_after_peek", recv_n(s, 4))
out("peek_eof", s.recv(10, socket.MSG_PEEK))
out("read_eof", s.recv(10))
s.close()

# unconnected sockets
s = socket.socket()
out("getpeername_unconnected", attempt(lambda: s.getpeername()))
out("shutdown_unconnected", attempt(lambda: s.shutdown(socket.SHUT_WR)))
s.close()
print("done", flush=True)
