#!/usr/bin/env bash
# The test command (README, CI): installs missing packages, checks formatting and lints, then
# runs every test, including the root-only veth tests that create namespaces, attach the XDP
# program and talk to the Linux kernel. They never skip: without root they fail.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: the veth tests need root (namespaces, XDP, AF_XDP): run it as root (e.g. sudo -E scripts/test.sh)" >&2
  exit 1
fi
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --release -- -D warnings
echo "== cargo build (release): the programs and libxdptcp_posix.so the tests run"
cargo build --workspace --release
echo "== cargo test (release)"
cargo test --workspace --release -- --test-threads=2
echo "== fuzz (short run of each target; the long run is in docs/security.md)"
scripts/fuzz.sh --seconds "${FUZZ_SECONDS:-15}"
