"""Server-side call semantics, one line per check. tests/veth_posix.rs runs it on the kernel
and under the POSIX layer, each time with the same Linux client steps driven over stdin
('go' lines), and asserts the outputs are identical. Every wait is bounded."""
import fcntl, select, signal, socket, struct, sys, termios
from checks import attempt, out

signal.alarm(60)
addr, port = sys.argv[1], int(sys.argv[2])


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
out("getsockname_bound", ls.getsockname())
out("getpeername_bound", attempt(ls.getpeername))
ls.listen(16)
out("listen_again", attempt(lambda: ls.listen(32)))
out("acceptconn", ls.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
other = socket.socket()
out("bind_in_use", attempt(lambda: other.bind((addr, port))))
other.close()
ls.setblocking(False)
out("accept_empty", attempt(ls.accept))
out("recv_listener", attempt(lambda: ls.recv(1)))
out("send_listener", attempt(lambda: ls.send(b"x")))
out("fionread_listener", attempt(lambda: fcntl.ioctl(ls, termios.FIONREAD, b"\0" * 4) and None))
out("ready", 1)  # the client connects twice and sends b'hi' on the first
p = select.poll()
p.register(ls, select.POLLIN)
out("poll_listener", [e & select.POLLIN for _, e in p.poll(10000)])
c, peer = ls.accept()
ls.setblocking(True)
out("accepted_peer_ip", peer[0])
out("accepted_nonblock_flag", bool(fcntl.fcntl(c, fcntl.F_GETFL) & 0o4000))
out("accepted_cloexec", bool(fcntl.fcntl(c, fcntl.F_GETFD) & fcntl.FD_CLOEXEC))
out("accepted_sockname", c.getsockname())
out("accepted_peername_ip", c.getpeername()[0])
c.settimeout(10)
got = b""
while len(got) < 2:
    got += c.recv(10)
out("recv_blocking", got)
c.sendall(b"ok")
c2fd = ls._accept()[0]  # raw accept4(SOCK_CLOEXEC): the second connection
c2 = socket.socket(fileno=c2fd)
out("second_accept", c2.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE))
c2.close()
c.close()
# the client makes a third connection that nobody accepts; closing the listener resets it
out("wait_third", 1)
sys.stdin.readline()
ls.close()
out("done", 1)
