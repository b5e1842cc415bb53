#!/usr/bin/env bash
# Installs what building and testing xdptcp needs on a fresh Debian 12 machine (idempotent:
# installs only what is missing). Needs root. Used by scripts/test.sh, scripts/bench.sh and .ci/run.
set -euo pipefail

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: needs root to install packages and create network namespaces: run it as root (e.g. sudo -E $0)" >&2
    exit 1
  fi
}

# Build: clang/llvm for the XDP program, m4 for libxdp-sys, libelf/zlib/libbpf for libbpf-sys.
# Tests: iproute2 (ip netns, veth, ss), ethtool (checksum offload off), ping, tcpdump and
# tshark (read back `xdptcp capture` files in veth_capture.rs; tcpdump also for debugging),
# nftables (veth_conform.rs drops the raw-socket peer's own RSTs).
# Bench: fonts-dejavu-core for the text of the PNG latency plots (no fontconfig needed);
# wrk and nginx for the `http` scenarios (the bench runs its own nginx with a private config
# inside a namespace; the distribution's service is not needed, see below).
# POSIX layer tests (stack/posix/tests): python3 programs, nginx, redis-server and memcached
# (multi-threaded, -t 2) under the stack, served to curl, wrk, redis-benchmark and python clients.
# Fuzzing (scripts/fuzz.sh): g++ builds libFuzzer (libfuzzer-sys compiles its C++ sources).
# nftables: veth_conform.rs drops the raw-socket peer's own RSTs; veth_icmp.rs makes a Linux
# peer answer with ICMP port unreachable.
PKGS=(clang llvm m4 libelf-dev zlib1g-dev pkg-config libbpf-dev iproute2 ethtool iputils-ping nftables fonts-dejavu-core wrk nginx g++ tcpdump tshark curl python3 redis-server redis-tools memcached)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  need_root
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark's wireshark-common asks whether non-root users may capture: no (answered here
  # so that the install never waits for a question).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Installing nginx starts the distribution's service where init scripts may run: this
  # script only wants the binary, so stop and disable a service it just installed.
  if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null 2>&1 \
      && systemctl is-active --quiet nginx 2>/dev/null; then
    echo "setup: stopping and disabling the nginx service it just installed (the bench runs its own)"
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v systemctl >/dev/null 2>&1 \
      && systemctl is-active --quiet redis-server 2>/dev/null; then
    echo "setup: stopping and disabling the redis-server service it just installed (the tests run their own)"
    systemctl disable --now redis-server >/dev/null 2>&1 || true
  fi
  if [[ " ${missing[*]} " == *" memcached "* ]] && command -v systemctl >/dev/null 2>&1 \
      && systemctl is-active --quiet memcached 2>/dev/null; then
    echo "setup: stopping and disabling the memcached service it just installed (the tests run their own)"
    systemctl disable --now memcached >/dev/null 2>&1 || true
  fi
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install the Rust toolchain (https://rustup.rs) and re-run" >&2
  exit 1
fi
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c" >/dev/null 2>&1 || { echo "setup: cargo $c missing: rustup component add $c" >&2; exit 1; }
  fi
done
# cargo-fuzz drives the fuzz targets in fuzz/ (scripts/fuzz.sh); it runs on the stable
# toolchain with `-s none` (docs/security.md, "Fuzzing").
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked >/dev/null 2>&1 || { echo "setup: cargo install cargo-fuzz --locked failed" >&2; exit 1; }
fi
