"""A multi-threaded client: THREADS threads share the process's stack, each makes ROUNDS
connections to the echo server and checks a 64 KiB echo byte for byte. Prints 'ok N'."""
import signal, socket, sys, threading

signal.alarm(120)
host, port = sys.argv[1], int(sys.argv[2])
THREADS, ROUNDS = int(sys.argv[3]), int(sys.argv[4])
errors = []
done = [0]
lock = threading.Lock()


def worker(i):
    try:
        for r in range(ROUNDS):
            data = bytes((i * 31 + r + k) % 256 for k in range(65536))
            s = socket.create_connection((host, port), timeout=20)
            s.sendall(b"echo\n")
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
            s.close()
            if bytes(got) != data:
                raise RuntimeError(f"thread {i} round {r}: {len(got)} bytes back")
            with lock:
                done[0] += 1
    except Exception as e:
        errors.append(repr(e))


ts = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    print("errors", errors, flush=True)
    sys.exit(1)
print("ok", done[0], flush=True)
