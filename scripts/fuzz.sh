#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of the targets in fuzz/: builds them and
# runs each for N seconds (default 20). Exits non-zero on the first crash and prints the
# crashing input and how to reproduce it. docs/security.md ("Fuzzing") explains the targets.
#
#   scripts/fuzz.sh [--seconds N] [target...]     targets: wire_parse endpoint xdp_prog
#
# New inputs go to fuzz/corpus-run/<target>/ (not checked in); the checked-in seeds in
# fuzz/corpus/<target>/ are read only. Crashes land in fuzz/artifacts/<target>/.
# Stable toolchain: `-s none` (no sanitizer; -Zsanitizer needs nightly). The coverage
# instrumentation (-Cpasses=sancov-module + -Cllvm-args) and debug assertions / overflow
# checks are stable flags. FUZZ_ASAN=1 adds AddressSanitizer through RUSTC_BOOTSTRAP=1.
# xdp_prog loads a BPF program: it needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds=20
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
    --seconds=*) seconds="${1#--seconds=}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "scripts/fuzz.sh: unknown flag $1 (usage: scripts/fuzz.sh [--seconds N] [target...])" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ "${#targets[@]}" -gt 0 ] || targets=(wire_parse endpoint xdp_prog)
case "$seconds" in ''|*[!0-9]*) echo "scripts/fuzz.sh: --seconds wants a whole number, got '$seconds'" >&2; exit 2 ;; esac
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "scripts/fuzz.sh: no target '$t' (have: $(cd fuzz/fuzz_targets && ls | sed 's/\.rs$//' | tr '\n' ' '))" >&2; exit 2; }
  if [ "$t" = xdp_prog ] && [ "$(id -u)" -ne 0 ]; then
    echo "scripts/fuzz.sh: xdp_prog loads a BPF program: run as root (e.g. sudo -E scripts/fuzz.sh)" >&2
    exit 1
  fi
done
command -v cargo-fuzz >/dev/null 2>&1 || { echo "scripts/fuzz.sh: cargo-fuzz missing: run scripts/setup.sh (cargo install cargo-fuzz --locked)" >&2; exit 1; }

san=(-s none)
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
  export RUSTC_BOOTSTRAP=1
  san=(-s address)
fi

echo "== fuzz: building the targets (${san[*]})"
if ! (cd fuzz && cargo fuzz build "${san[@]}" >../fuzz/artifacts-build.log 2>&1); then
  tail -30 fuzz/artifacts-build.log >&2
  echo "scripts/fuzz.sh: build failed (log: fuzz/artifacts-build.log)" >&2
  exit 1
fi

for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus-run/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  before=$(ls -1 "fuzz/artifacts/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sort || true)
  echo "== fuzz: $t for ${seconds}s"
  rc=0
  (cd fuzz && cargo fuzz run "${san[@]}" "$t" "corpus-run/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) \
      >"$log" 2>&1 || rc=$?
  grep -E '^Done [0-9]+ runs|DONE +cov|stat::number_of_executed_units|stat::peak_rss_mb' "$log" | sed 's/^/   /' || true
  if [ "$rc" -ne 0 ]; then
    after=$(ls -1 "fuzz/artifacts/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | sort || true)
    new=$(comm -13 <(echo "$before") <(echo "$after") | head -1)
    echo "scripts/fuzz.sh: $t FAILED (exit $rc); log: $log" >&2
    grep -E "panicked at|^ERROR|SUMMARY|assertion" -A3 "$log" | head -20 >&2 || true
    if [ -n "$new" ]; then
      echo "crash file: fuzz/artifacts/$t/$new" >&2
      echo "reproduce:  (cd fuzz && cargo fuzz run ${san[*]} $t artifacts/$t/$new)" >&2
    fi
    exit 1
  fi
done
echo "== fuzz: no crash in ${targets[*]} (${seconds}s each)"
