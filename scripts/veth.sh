#!/usr/bin/env bash
# Two network namespaces joined by a veth pair, for xdptcp tests and benchmarks.
#
#   xt-stack-S: interface xts-S, 198.18.0.1/24  (the side xdptcp attaches to)
#   xt-peer-S:  interface xtp-S, 198.18.0.2/24  (a Linux peer)
#
# Checksum offload is turned off on both sides so that segments carry full checksums
# (a Linux peer with tx offload sends partial checksums). `down` is idempotent.
# The Rust twin of this script is stack/harness/src/veth.rs; keep them in step.
set -euo pipefail

usage() {
    echo "usage: $0 up|down [--suffix S] [--queues N] [--mtu M]   (S: 1-10 of [A-Za-z0-9_-], N: 1-64, M: 68-65535)" >&2
    exit 2
}

[ $# -ge 1 ] || usage
cmd=$1
shift
suffix=0
queues=1
mtu=""
while [ $# -gt 0 ]; do
    case $1 in
        --suffix) [ $# -ge 2 ] || usage; suffix=$2; shift 2 ;;
        --queues) [ $# -ge 2 ] || usage; queues=$2; shift 2 ;;
        --mtu) [ $# -ge 2 ] || usage; mtu=$2; shift 2 ;;
        *) usage ;;
    esac
done
[[ $suffix =~ ^[A-Za-z0-9_-]{1,10}$ ]] || usage
[[ $queues =~ ^[0-9]+$ ]] && [ "$queues" -ge 1 ] && [ "$queues" -le 64 ] || usage
[ -z "$mtu" ] || { [[ $mtu =~ ^[0-9]+$ ]] && [ "$mtu" -ge 68 ] && [ "$mtu" -le 65535 ]; } || usage

ns_stack=xt-stack-$suffix
ns_peer=xt-peer-$suffix
if_stack=xts-$suffix
if_peer=xtp-$suffix

down() {
    # Deleting a namespace deletes the veth end inside it, and with it the pair.
    ip netns del "$ns_stack" 2>/dev/null || true
    ip netns del "$ns_peer" 2>/dev/null || true
}

up() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$0: needs root (creates network namespaces)" >&2
        exit 1
    fi
    ip netns add "$ns_stack"
    trap 'down' ERR
    ip netns add "$ns_peer"
    ip -n "$ns_stack" link add "$if_stack" numtxqueues "$queues" numrxqueues "$queues" type veth \
        peer name "$if_peer" netns "$ns_peer" numtxqueues "$queues" numrxqueues "$queues"
    if [ -n "$mtu" ]; then
        ip -n "$ns_stack" link set "$if_stack" mtu "$mtu"
        ip -n "$ns_peer" link set "$if_peer" mtu "$mtu"
    fi
    ip -n "$ns_stack" addr add 198.18.0.1/24 dev "$if_stack"
    ip -n "$ns_peer" addr add 198.18.0.2/24 dev "$if_peer"
    ip netns exec "$ns_stack" ethtool -K "$if_stack" tx off >/dev/null
    ip netns exec "$ns_peer" ethtool -K "$if_peer" tx off >/dev/null
    for ns in "$ns_stack" "$ns_peer"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$ns_stack" link set "$if_stack" up
    ip -n "$ns_peer" link set "$if_peer" up
    trap - ERR
    echo "up: $ns_stack/$if_stack 198.18.0.1/24 <-> $ns_peer/$if_peer 198.18.0.2/24 (queues $queues${mtu:+, mtu $mtu})"
}

case $cmd in
    up) up ;;
    down) down ;;
    *) usage ;;
esac
