"""Sends without a following epoll_wait/poll/blocking socket call (XDPTCP_FLUSH=wait leaves
the segment to the stack thread), then blocks in a kernel read of stdin until the test says
it saw the data. tests/veth_posix.rs: output_leaves_without_a_following_wait."""
import signal, socket, sys

signal.alarm(60)
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"ping")
print("sent", flush=True)
sys.stdin.readline()  # the kernel's read: no flush point of the layer
s.close()
print("done", flush=True)
