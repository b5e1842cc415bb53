"""Under an IPv6-only stack (`xdptcp run --addr 2001:2::1`): AF_INET6 sockets go through the
stack, IPv4 stays the kernel's. One line per check; tests/veth_posix.rs asserts them.
Every wait is bounded."""
import socket, sys, signal
from checks import kernel_has, out

signal.alarm(60)
peer4, port = sys.argv[1], int(sys.argv[2])


s6 = socket.socket(socket.AF_INET6)
s6.bind(("::", port))
s6.listen(8)
out("v6_listener_in_kernel", kernel_has(port, "0A"))
s4 = socket.socket()
s4.bind(("0.0.0.0", port + 1))
s4.listen(8)
out("v4_listener_in_kernel", kernel_has(port + 1, "0A"))
out("ready", 1)  # the peer connects over IPv6 to port, over IPv4 to port + 1
for ls in (s6, s4):
    c, peer = ls.accept()
    c.settimeout(10)
    b = c.recv(1)
    out(f"peer_{b.decode()}", peer[0])
    c.sendall(b * 2)
    c.close()
c = socket.create_connection((peer4, 7000), timeout=10)
out("v4_connect_in_kernel", kernel_has(c.getsockname()[1], "01"))
c.sendall(b"xyz")
got = b""
while len(got) < 3:
    got += c.recv(3 - len(got))
out("echoed", got)
c.close()
out("done", 1)
