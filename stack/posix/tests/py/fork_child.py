"""Fork after the stack started: the child cannot use the parent's stack sockets (EOPNOTSUPP),
closing them in the child and the child's exit leave the parent's connection intact."""
import errno, os, signal, socket, sys

signal.alarm(60)
host, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((host, port), timeout=10)
s.settimeout(None)
s.sendall(b"echo\n")
pid = os.fork()
if pid == 0:
    try:
        s.send(b"x")
        r = "sent"
    except OSError as e:
        r = "EOPNOTSUPP" if e.errno == errno.EOPNOTSUPP else errno.errorcode.get(e.errno)
    print("child send:", r, flush=True)
    s.close()
    sys.exit(0)  # runs the C atexit handlers
_, status = os.waitpid(pid, 0)
print("child exit:", os.waitstatus_to_exitcode(status), flush=True)
s.sendall(b"after fork")
got = b""
while len(got) < 10:
    d = s.recv(100)
    if not d:
        break
    got += d
print("parent echo:", got.decode(), flush=True)
s.close()
