#!/usr/bin/env bash
# What `xdptcp ss` and `xdptcp capture` cost a busy serve: connections/s of wrk
# (`Connection: close`, pinned to core 0) against `xdptcp serve --listen 80=http --core 1`, in
# four interleaved configurations per round: baseline, `ss -tan` every 100 ms, `ss -tan` back to
# back, and a capture of port 80 to /dev/null. Prints one row per round (connections/s).
# Needs root and a built tree (cargo build --release -p xdptcp); only run it on a quiet machine.
#
#   scripts/obs-overhead.sh [--rounds N] [--secs S]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3
secs=4
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) rounds=$2; shift 2 ;;
        --secs) secs=$2; shift 2 ;;
        *) echo "usage: $0 [--rounds N] [--secs S]" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (namespaces, XDP): run it as root" >&2; exit 1; }
bin=target/release/xdptcp
[ -x "$bin" ] || { echo "$0: $bin missing: cargo build --release -p xdptcp" >&2; exit 1; }
command -v wrk >/dev/null || { echo "$0: wrk missing: scripts/setup.sh installs it" >&2; exit 1; }

sfx="ov$$"
sns=xt-stack-$sfx pns=xt-peer-$sfx sif=xts-$sfx
serve_pid="" loop_pid=""
cleanup() {
    [ -n "$loop_pid" ] && kill "$loop_pid" 2>/dev/null || true
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
    scripts/veth.sh down --suffix "$sfx" >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/veth.sh up --suffix "$sfx" >/dev/null

ip netns exec "$sns" "$bin" serve --iface "$sif" --addr 198.18.0.1 --listen 80=http --core 1 \
    --user root --duration $((rounds * 4 * (secs + 2) + 30)) >/dev/null &
serve_pid=$!
for _ in $(seq 1 100); do
    ip netns exec "$sns" "$bin" stat --iface "$sif" >/dev/null 2>&1 && break
    sleep 0.1
done

run_wrk() {
    ip netns exec "$pns" taskset -c 0 wrk -t1 -c16 -d"${secs}s" -H 'Connection: close' \
        http://198.18.0.1/ 2>/dev/null | awk '/Requests\/sec/ {printf "%d", $2}'
}
with_loop() { # $1: a command run repeatedly (bounded by the wrk run) beside wrk
    ( end=$((SECONDS + secs + 1)); while [ $SECONDS -lt $end ]; do eval "$1"; done ) &
    loop_pid=$!
    run_wrk
    kill "$loop_pid" 2>/dev/null || true; wait "$loop_pid" 2>/dev/null || true; loop_pid=""
}

printf '%-6s %10s %10s %10s %10s\n' round baseline ss-10Hz ss-loop capture
for r in $(seq 1 "$rounds"); do
    base=$(run_wrk)
    ss10=$(with_loop "ip netns exec $sns $bin ss -tan --iface $sif >/dev/null; sleep 0.1")
    ssl=$(with_loop "ip netns exec $sns $bin ss -tan --iface $sif >/dev/null")
    ip netns exec "$sns" "$bin" capture --iface "$sif" -w /dev/null port 80 >/dev/null 2>&1 &
    cap_pid=$!
    sleep 0.3
    cap=$(run_wrk)
    kill "$cap_pid" 2>/dev/null || true; wait "$cap_pid" 2>/dev/null || true
    printf '%-6s %10s %10s %10s %10s\n' "$r" "$base" "$ss10" "$ssl" "$cap"
done
