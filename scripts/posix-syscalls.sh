#!/usr/bin/env bash
# System calls, context switches and CPU per request of nginx and redis-server, on the kernel
# and under `xdptcp run` (docs/posix.md "Performance"): counts repeat where timings on a shared
# VM do not. The server runs pinned to core 0 in the stack namespace, the client (wrk,
# redis-benchmark) on core 1 in the peer namespace; `perf stat` counts the server's system
# calls while the client runs; every count is divided by the client's request count.
# Needs root and a built tree (cargo build --release --workspace).
#
#   scripts/posix-syscalls.sh [--secs S] [--flush wait|call|both]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=3
flushes="wait"
while [ $# -gt 0 ]; do
    case $1 in
        --secs) secs=$2; shift 2 ;;
        --flush) flushes=$2; shift 2 ;;
        *) echo "usage: $0 [--secs S] [--flush wait|call|both]" >&2; exit 2 ;;
    esac
done
[ "$flushes" = both ] && flushes="call wait"
[ "$(id -u)" -eq 0 ] || { echo "$0: needs root (namespaces, XDP): run it as root" >&2; exit 1; }
bin=$PWD/target/release/xdptcp
lib=$PWD/target/release/libxdptcp_posix.so
[ -x "$bin" ] && [ -f "$lib" ] || { echo "$0: $bin or $lib missing: cargo build --release --workspace" >&2; exit 1; }
for p in perf wrk nginx redis-server redis-benchmark; do
    command -v $p >/dev/null || { echo "$0: $p missing: scripts/setup.sh installs it" >&2; exit 1; }
done

sfx="sc$$"
sns=xt-stack-$sfx pns=xt-peer-$sfx sif=xts-$sfx
dir=$(mktemp -d /tmp/xdptcp-syscalls.XXXXXX)
srv_pid=""
stop_server() {
    if [ -n "$srv_pid" ]; then
        kill "$srv_pid" 2>/dev/null || true
        wait "$srv_pid" 2>/dev/null || true
        srv_pid=""
    fi
}
cleanup() {
    stop_server
    scripts/veth.sh down --suffix "$sfx" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
scripts/veth.sh up --suffix "$sfx" >/dev/null
# As the bench's namespaces (bench/src/netns.rs): a client that closes first (wrk after a
# response whose FIN came late) leaves TIME-WAIT entries; runs must not inherit them.
ip netns exec "$pns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1
mkdir -p "$dir/www" "$dir/tmp"
head -c 612 /dev/zero | tr '\0' x >"$dir/www/index.html"
cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000000;
    client_body_temp_path $dir/tmp;
    proxy_temp_path $dir/tmp;
    fastcgi_temp_path $dir/tmp;
    uwsgi_temp_path $dir/tmp;
    scgi_temp_path $dir/tmp;
    server { listen 198.18.0.1:8080 backlog=4096; root $dir/www; }
}
EOF

# $1: kernel|stack, $2: flush mode, rest: the server's argv. Sets srv_pid.
start_server() {
    local under=$1 flush=$2
    shift 2
    if [ "$under" = stack ]; then
        XDPTCP_PRELOAD=$lib XDPTCP_FLUSH=$flush ip netns exec "$sns" taskset -c 0 \
            "$bin" run --iface "$sif" --addr 198.18.0.1 -- "$@" >"$dir/server.log" 2>&1 &
    else
        ip netns exec "$sns" taskset -c 0 "$@" >"$dir/server.log" 2>&1 &
    fi
    srv_pid=$!
}
# The server process's pid (nginx or redis-server, below `ip netns exec` and `xdptcp run`).
server_pid() {
    local name=$1 p
    for _ in $(seq 1 100); do
        p=$(pgrep -n -x "$name" -P "$srv_pid" 2>/dev/null || true)
        [ -z "$p" ] && p=$(pgrep -n -x "$name" 2>/dev/null || true)
        [ -n "$p" ] && { echo "$p"; return; }
        sleep 0.1
    done
    echo "$0: $name did not start: $(tail -2 "$dir/server.log")" >&2
    exit 1
}
EVENTS=raw_syscalls:sys_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_read,context-switches,task-clock
# $1: pid, rest: the client command; prints the perf counts (csv) then the client's output.
count() {
    local pid=$1
    shift
    perf stat -x, -e "$EVENTS" -p "$pid" -o "$dir/perf.csv" &
    local perf=$!
    sleep 0.3
    "$@" >"$dir/client.out" 2>&1 || true
    kill -INT "$perf"
    wait "$perf" 2>/dev/null || true
}
# Prints one row: $1 label, $2 requests.
row() {
    awk -F, -v label="$1" -v n="$2" '
        $3 ~ /raw_syscalls:sys_enter/ {all=$1}
        $3 ~ /sys_enter_sendto/ {sendto=$1}
        $3 ~ /sys_enter_write/ {wr=$1}
        $3 ~ /sys_enter_read/ {rd=$1}
        $3 ~ /context-switches/ {cs=$1}
        $3 ~ /task-clock/ {ms=$1}
        END { if (n > 0) printf "%-40s %9d %8.2f %8.2f %8.2f %8.2f %8.2f %8.1f\n", label, n, all/n, sendto/n, wr/n, rd/n, cs/n, ms*1000/n }
    ' "$dir/perf.csv"
}
wrk_run() { # $1: extra header or ""
    if [ -n "$1" ]; then
        count "$pid" ip netns exec "$pns" taskset -c 1 wrk -t1 -c16 -d"${secs}s" -H "$1" http://198.18.0.1:8080/
    else
        count "$pid" ip netns exec "$pns" taskset -c 1 wrk -t1 -c16 -d"${secs}s" http://198.18.0.1:8080/
    fi
    awk '/requests in/ {print $1}' "$dir/client.out"
}

printf '%-40s %9s %8s %8s %8s %8s %8s %8s\n' run requests syscalls sendto write read ctxsw cpu-us
modes="kernel"
for f in $flushes; do modes="$modes stack:$f"; done
for m in $modes; do
    under=${m%%:*} flush=${m#*:}
    [ "$under" = kernel ] && flush=-
    label=$under
    [ "$under" = stack ] && label="stack (XDPTCP_FLUSH=$flush)"
    start_server "$under" "$flush" nginx -q -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
    pid=$(server_pid nginx)
    for _ in $(seq 1 50); do
        ip netns exec "$pns" curl -s -o /dev/null --max-time 1 http://198.18.0.1:8080/ && break
        sleep 0.1
    done
    n=$(wrk_run "Connection: close")
    row "$label nginx close" "$n"
    echo "    $((n / secs)) requests/s (wrk)"
    n=$(wrk_run "")
    row "$label nginx keep-alive" "$n"
    echo "    $((n / secs)) requests/s (wrk)"
    stop_server
    start_server "$under" "$flush" redis-server --bind 198.18.0.1 --port 6379 --save "" \
        --appendonly no --protected-mode no
    pid=$(server_pid redis-server)
    for _ in $(seq 1 50); do
        ip netns exec "$pns" redis-cli -h 198.18.0.1 ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    count "$pid" ip netns exec "$pns" taskset -c 1 redis-benchmark -h 198.18.0.1 -t get -n 50000 -c 16 -q
    row "$label redis GET" 50000
    tr '\r' '\n' <"$dir/client.out" | grep -a 'requests per second' | tail -1 | sed 's/^/    /'
    stop_server
done
