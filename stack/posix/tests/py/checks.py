"""What every check script of tests/veth_posix.rs prints and how: one `key: value` line per
check, an OSError as its errno name (so kernel and stack runs compare line for line)."""
import errno


def name(e):
    return errno.errorcode.get(e, str(e))


def out(k, v):
    print(f"{k}: {v}", flush=True)


def attempt(f):
    try:
        r = f()
        return "ok" if r is None else r
    except OSError as e:
        return name(e.errno)


def kernel_has(port, state):
    """Whether the kernel's own TCP tables hold a socket on local `port` in `state` (hex as in
    /proc/net/tcp: 0A LISTEN, 01 ESTABLISHED): true on the kernel, false under the stack."""
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as t:
            for row in t.readlines()[1:]:
                cols = row.split()
                if int(cols[1].rsplit(":", 1)[1], 16) == port and cols[3] == state:
                    return True
    return False
