"""A kernel server for the semantics checks (peer namespace). Each connection sends one
command line: 'echo' (echo until EOF), 'close' (close at once), 'rst' (close with SO_LINGER 0),
'send4' (send b'data', then wait for EOF), 'stall' (read nothing for 2 s, then read until
EOF), 'hold' (read until EOF). Prints 'ready' when
listening. Exits after 120 s at most."""
import signal, socket, struct, sys, threading, time

signal.alarm(120)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(128)
print("ready", flush=True)


def line(c):
    b = b""
    while not b.endswith(b"\n"):
        d = c.recv(1)
        if not d:
            return b""
        b += d
    return b.strip()


def serve(c):
    try:
        cmd = line(c)
        if cmd == b"echo":
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        elif cmd == b"rst":
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif cmd == b"send4":
            c.sendall(b"data")
            while c.recv(65536):
                pass
        elif cmd == b"stall":
            time.sleep(2)
            while c.recv(65536):
                pass
        elif cmd == b"hold":
            while c.recv(65536):
                pass
    except OSError:
        pass
    finally:
        c.close()


while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
