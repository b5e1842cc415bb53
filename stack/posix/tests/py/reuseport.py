"""SO_REUSEPORT, one line per check: tests/veth_posix.rs runs it on the kernel and under the
POSIX layer with the same Linux client and asserts the outputs are identical. Two listening
sockets share a port; the client's connections spread over both; after one closes, the other
takes every new connection. Every wait is bounded."""
import select, signal, socket, sys
from checks import attempt, out

signal.alarm(60)
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])


def sock(reuse):
    s = socket.socket()
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return s


# Only sockets that all set SO_REUSEPORT share a port.
a = sock(False)
a.bind((addr, port))
b = sock(True)
out("second_reuse_first_not", attempt(lambda: b.bind((addr, port))))
a.close()
b.close()
a = sock(True)
a.bind((addr, port))
b = sock(False)
out("second_without_reuse", attempt(lambda: b.bind((addr, port))))
b.close()
b = sock(True)
out("both_reuse", attempt(lambda: b.bind((addr, port))))
out("reuseport_opt", b.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT))
a.listen(64)
b.listen(64)
out("getsockname_b", b.getsockname())


def accept_all(socks, total):
    """Accepts `total` connections over `socks`; how many each took."""
    counts = [0] * len(socks)
    conns = []
    ep = select.epoll()
    for i, s in enumerate(socks):
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    fds = {s.fileno(): i for i, s in enumerate(socks)}
    left = 200
    while sum(counts) < total and left > 0:
        left -= 1
        for fd, _ in ep.poll(0.1):
            i = fds[fd]
            while True:
                try:
                    c, _ = socks[i].accept()
                except BlockingIOError:
                    break
                counts[i] += 1
                conns.append(c)
    ep.close()
    for c in conns:
        c.close()
    return counts


out("ready", 1)  # the client makes n connections
sys.stdin.readline()
counts = accept_all([a, b], n)
out("accepted", sum(counts))
out("spread_over_both", all(c > 0 for c in counts))
a.close()
out("ready", 2)  # the client makes 4 more
sys.stdin.readline()
out("after_close", accept_all([b], 4))
b.close()
out("done", 1)
