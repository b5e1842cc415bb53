"""AF_INET6 and dual-stack semantics, one line per check. tests/veth_posix.rs runs it on the
kernel and under the POSIX layer with the same Linux peer (driven over stdin, 'go' lines) and
asserts the outputs are identical. Ephemeral ports differ between runs: only addresses print.
Every wait is bounded."""
import socket, sys, signal
from checks import attempt, kernel_has, out

signal.alarm(60)
v4, v6, peer6, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
A6, V6ONLY = socket.IPPROTO_IPV6, socket.IPV6_V6ONLY


def serve(ls, n):
    """Accepts n connections; each sends one byte (its family) and gets it twice back."""
    for _ in range(n):
        c, peer = ls.accept()
        c.settimeout(10)
        b = c.recv(1)
        out(f"peer_{b.decode()}", (peer[0], c.getsockname()[0], c.family.name))
        c.sendall(b * 2)
        c.close()


# A dual-stack listener: [::] without IPV6_V6ONLY takes IPv4 too (man 7 ipv6).
d = socket.socket(socket.AF_INET6)
d.setsockopt(A6, V6ONLY, 0)
d.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
d.bind(("::", port))
out("dual_sockname", d.getsockname()[:2])
out("dual_domain", d.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN))
out("dual_v6only", d.getsockopt(A6, V6ONLY))
out("v6only_after_bind", attempt(lambda: d.setsockopt(A6, V6ONLY, 1)))
o = socket.socket()
out("v4_wildcard_same_port", attempt(lambda: o.bind(("0.0.0.0", port))))
o.close()
d.listen(8)
out("kernel_listens", kernel_has(port, "0A"))
out("ready", 1)  # the peer connects over IPv4, then over IPv6
serve(d, 2)
d.close()

# IPV6_V6ONLY: [::] and 0.0.0.0 share a port, one family each.
a6 = socket.socket(socket.AF_INET6)
a6.setsockopt(A6, V6ONLY, 1)
a6.bind(("::", port + 1))
a6.listen(8)
a4 = socket.socket()
out("v4_next_to_v6only", attempt(lambda: a4.bind(("0.0.0.0", port + 1))))
a4.listen(8)
out("ready", 2)  # the peer connects over IPv4, then over IPv6
serve(a4, 1)
serve(a6, 1)
a4.close()
a6.close()

# A listener on the one IPv6 address: IPv4 is refused.
s6 = socket.socket(socket.AF_INET6)
s6.bind((v6, port + 2))
out("specific_sockname", s6.getsockname()[:2])
s6.listen(8)
out("ready", 3)  # the peer tries IPv4 (refused), then connects over IPv6
serve(s6, 1)
s6.close()

# Active opens over IPv6 (to the peer's echo server) and IPv4-mapped from an AF_INET6 socket.
for dest in (peer6, "::ffff:" + sys.argv[5]):
    c = socket.socket(socket.AF_INET6)
    c.settimeout(10)
    out(f"connect {dest}", attempt(lambda: c.connect((dest, 7000))))
    out("kernel_connected", kernel_has(c.getsockname()[1], "01"))
    out("connected_names", (c.getsockname()[0], c.getpeername()[:2]))
    c.sendall(b"xyz")
    got = b""
    while len(got) < 3:
        got += c.recv(3 - len(got))
    out("echoed", got)
    c.close()
only = socket.socket(socket.AF_INET6)
only.setsockopt(A6, V6ONLY, 1)
only.settimeout(10)
out("v6only_connect_mapped", attempt(lambda: only.connect(("::ffff:" + sys.argv[5], 7000))))
only.close()
out("done", 1)
