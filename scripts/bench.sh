#!/usr/bin/env bash
# The benchmark command (README): builds xdptcp-bench and xdptcp-posix in release and runs the
# default suite (about 2.5 minutes: 2 s per run; cps both close orders, rr closed and open loop,
# bulk single flow both directions, conns 1000, each in three pairings, cps and rr also stack
# client -> Linux server; app/nginx-close, app/nginx-keepalive, app/redis: Debian nginx and
# redis-server on the kernel and under `xdptcp run` with wrk, redis-benchmark and the stack's
# HTTP client) over a fresh veth pair between two network
# namespaces (the binary creates and removes it), then the physical ceiling (`ceiling`: raw
# AF_XDP frame rates rx / tx 64 B / tx 1514 B / l2fwd on a second veth pair with the steering
# program attached, 1 s per phase), and prints the side-by-side table, the ceiling section and
# the stack's packet rate as a fraction of it. Results (table, JSON, .hgrm, PNG) go to
# results/<date-time>/. See docs/benchmarks.md.
#
# Flags (passed through to xdptcp-bench; see `xdptcp-bench --help` for all of them):
#   --scenarios LIST                groups cps,rr,bulk,conns,ceiling,http,app, names like rr/open,
#                                   or all (default: cps,rr,bulk/1-up,bulk/1-down,conns,ceiling,app;
#                                   http = wrk vs nginx and the stack, not in the default;
#                                   app = nginx/redis on the kernel vs under xdptcp run)
#                                   synflood = SYN/ACK/RST floods vs Linux, the stack and
#                                   its XDP cookies, with the ceiling; not in the default nor all)
#   --legit-rate R --flood-rate R   synflood: legitimate conn/s (1000), flood frames/s cap
#   --duration SECS                 per scenario run (default 2; use 10 for figures)
#   --ceiling-secs SECS             ceiling: seconds per phase (default 1, at most --duration)
#   --workers N                     server workers and client threads, one core each
#   --iface IF --peer-iface IF2     two NIC ports cabled back to back (docs/nic.md); with
#   --queues N [--zero-copy]        N queues/workers, stack server in AF_XDP zero-copy
#   --pairings linux-linux,...      default: linux-linux, linux-linux-nooff, linux-stack,
#                                   stack-linux, stack-stack
#   --http-conns N --redis-clients N --redis-requests N   app: wrk/stack client connections,
#                                   redis-benchmark -c and -n
#   --ipv6                          cps, rr, bulk over IPv6 (2001:2::1 / 2001:2::2), the
#                                   kernel too (default scenarios then cps,rr,bulk/1-up,bulk/1-down)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/bench.sh: needs root (network namespaces, veth): run it as root (e.g. sudo -E scripts/bench.sh)" >&2
  exit 1
fi
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
# xdptcp-posix: the preload library `xdptcp run` needs for the app scenarios.
cargo build --release -p xdptcp-bench -p xdptcp-posix >&2
exec target/release/xdptcp-bench "$@"
