#!/usr/bin/env bash
# Loss (and duplication) on the wire for veth tests and benchmarks: this kernel has no netem,
# so a tc egress (tcx) BPF program drops TCP packets leaving an interface (put it on the
# *peer's* veth; see xdp-prog/src/loss.rs). The program lives as long as a background
# process (xdp-prog/examples/loss.rs, bounded by --seconds) that `off` stops by its PID.
#
#   scripts/loss.sh on  --ns xt-peer-0 --if xtp-0 --ppm 10000 [--every N] [--port P]
#                       [--dup-ppm N] [--seconds S] [--per-segment]
#   scripts/loss.sh off --ns xt-peer-0 --if xtp-0
#
# --per-segment sets the interface's gso_max_segs to 1: kernel TCP otherwise hands tc GSO
# bursts of up to 64 KB, and the injector drops whole bursts. The pid file and the counters
# log are /run/xdptcp-loss-NS-IF.{pid,log} (removed by `off`, which prints the last counters).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: $0 on|off --ns NS --if IF [--ppm N] [--every N] [--port P] [--dup-ppm N] [--seconds S] [--per-segment]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
ns="" ifname="" per_segment=0 extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --ns) [ $# -ge 2 ] || usage; ns=$2; shift 2 ;;
        --if) [ $# -ge 2 ] || usage; ifname=$2; shift 2 ;;
        --ppm | --every | --port | --dup-ppm | --seconds)
            [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || usage
            extra+=("$1" "$2"); shift 2 ;;
        --per-segment) per_segment=1; shift ;;
        *) usage ;;
    esac
done
[[ $ns =~ ^[A-Za-z0-9_.-]{1,64}$ ]] && [[ $ifname =~ ^[A-Za-z0-9_.-]{1,15}$ ]] || usage
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: needs root (attaches a BPF program in a network namespace)" >&2
    exit 1
fi
base=/run/xdptcp-loss-$ns-$ifname

off() {
    [ -f "$base.pid" ] || { echo "off: no injector on $ns/$ifname"; return 0; }
    pid=$(cat "$base.pid")
    # Only our own process: the pid file's PID, and only if it still runs the loss example.
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "examples/loss $ifname"; then
        kill -TERM "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$base.pid"
    tail -n 1 "$base.log" 2>/dev/null || true
    rm -f "$base.log"
}

on() {
    ip netns exec "$ns" true || { echo "$0: no network namespace $ns" >&2; exit 1; }
    off >/dev/null
    cargo build -q --release -p xdptcp-xdp --example loss
    bin=$(pwd)/target/release/examples/loss
    [ "$per_segment" = 0 ] || ip -n "$ns" link set dev "$ifname" gso_max_segs 1
    ip netns exec "$ns" "$bin" "$ifname" "${extra[@]}" >"$base.log" 2>&1 &
    pid=$!
    echo "$pid" >"$base.pid"
    # Wait (bounded) until attached, or report why not.
    for _ in $(seq 50); do
        grep -q "^loss: on" "$base.log" && { head -n 1 "$base.log"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$base.log" >&2
    off >/dev/null
    exit 1
}

case $cmd in
    on) on ;;
    off) off ;;
    *) usage ;;
esac
