#!/usr/bin/env bash
# Prepares a NIC port for xdptcp runs (docs/nic.md): queue count, RSS key and
# indirection table, flow-hash fields, flow steering check, IRQ affinity, busy-poll settings,
# MTU, pause frames and interrupt coalescing. Idempotent: each step compares the current
# setting with the wanted one and prints `= name: value` (unchanged), `~ name: old -> new`
# (changed), `- name: why` (skipped: the driver cannot) or `! name: advice`. Nothing is
# changed that was not asked for, except the RSS table/key/hash fields when --queues is given
# (the stack's worker i owns queue i and computes a flow's queue with the NIC's key).
#
#   scripts/nic-setup.sh IF [--queues N] [--cores LIST] [--rss-key ms|keep|HEX] [--mtu M]
#                           [--busy-poll US] [--defer-irqs N] [--gro-flush-timeout NS]
#                           [--coalesce-usecs US] [--pause on|off] [--ntuple on|off]
#                           [--netns NS] [--dry-run]
#
#   --queues N        channels: `ethtool -L IF combined N` (rx N tx N where the driver has no
#                     combined channels, e.g. veth); then RSS: indirection table `equal N`,
#                     hash function toeplitz, key --rss-key, tcp4 hashed on addresses and ports.
#   --cores LIST      core of queue i's IRQ (default 0,1,..,N-1 mod the cores: worker i's core, as
#                     `xdptcp serve --workers N` pins them); irqbalance is stopped.
#   --rss-key K       ms (default: the Microsoft key, the stack's fallback, padded with zeros
#                     to the NIC's key length), keep, or colon-separated hex bytes.
#   --busy-poll US    net.core.busy_poll and busy_read (global sysctls; kernel sockets only:
#                     the Linux baselines). 0 turns them off.
#   --defer-irqs N / --gro-flush-timeout NS   per-device napi_defer_hard_irqs and
#                     gro_flush_timeout (preferred busy polling; see docs/nic.md before use).
#   --coalesce-usecs US  rx-usecs/tx-usecs with adaptive coalescing off.
#   --pause on|off    Ethernet pause frames (flow control), rx and tx.
#   --ntuple on|off   the ntuple feature (off also drops aRFS and, on most drivers, rules).
#   --netns NS        IF lives in network namespace NS (how the veth smoke test runs it).
#   --dry-run         print what would change, change nothing (no root needed).
set -euo pipefail

die() { echo "nic-setup: $*" >&2; exit 1; }
usage() {
  sed -n '/^#   scripts/,/^#                           \[--netns/p' "$0" | sed 's/^#//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
IF=$1
shift
[[ $IF =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || die "bad interface name '$IF'"
QUEUES="" CORES="" RSS_KEY=ms MTU="" BUSY="" DEFER="" GROT="" COAL="" PAUSE="" NTUPLE="" NS="" DRY=0
while [ $# -gt 0 ]; do
  case $1 in
    --queues|--cores|--rss-key|--mtu|--busy-poll|--defer-irqs|--gro-flush-timeout|--coalesce-usecs|--pause|--ntuple|--netns)
      [ $# -ge 2 ] || die "$1 needs a value"
      case $1 in
        --queues) QUEUES=$2 ;; --cores) CORES=$2 ;; --rss-key) RSS_KEY=$2 ;; --mtu) MTU=$2 ;;
        --busy-poll) BUSY=$2 ;; --defer-irqs) DEFER=$2 ;; --gro-flush-timeout) GROT=$2 ;;
        --coalesce-usecs) COAL=$2 ;; --pause) PAUSE=$2 ;; --ntuple) NTUPLE=$2 ;; --netns) NS=$2 ;;
      esac
      shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage ;;
    *) die "unknown option '$1' (see the head of $0)" ;;
  esac
done
isnum() { [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a number, got '$2'"; }
[ -z "$QUEUES" ] || { isnum --queues "$QUEUES"; [ "$QUEUES" -ge 1 ] && [ "$QUEUES" -le 256 ] || die "--queues must be 1..256"; }
[ -z "$MTU" ] || { isnum --mtu "$MTU"; [ "$MTU" -ge 68 ] || die "--mtu must be >= 68"; }
[ -z "$BUSY" ] || isnum --busy-poll "$BUSY"; [ -z "$DEFER" ] || isnum --defer-irqs "$DEFER"
[ -z "$GROT" ] || isnum --gro-flush-timeout "$GROT"; [ -z "$COAL" ] || isnum --coalesce-usecs "$COAL"
[ -z "$PAUSE" ] || [[ $PAUSE =~ ^(on|off)$ ]] || die "--pause must be on or off"
[ -z "$NTUPLE" ] || [[ $NTUPLE =~ ^(on|off)$ ]] || die "--ntuple must be on or off"
[ -n "$CORES" ] && [ -z "$QUEUES" ] && die "--cores needs --queues (core i is queue i's)"
[ "$DRY" = 1 ] || [ "$(id -u)" -eq 0 ] || die "needs root to change $IF (or use --dry-run)"
command -v ethtool >/dev/null || die "ethtool not found (Debian package ethtool)"

# Commands on IF run inside its namespace; `ip netns exec` also mounts that namespace's /sys.
inns() { if [ -n "$NS" ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }
if [ -n "$NS" ]; then
  ip netns list | grep -qw -- "$NS" || die "no network namespace '$NS'"
fi
inns test -e "/sys/class/net/$IF" || die "no interface '$IF'${NS:+ in namespace $NS}"

CHANGED=0
same() { echo "= $1: $2"; }
skip() { echo "- $1: $2"; }
advice() { echo "! $1: $2"; }
# change NAME OLD NEW CMD...: runs CMD (or only prints it with --dry-run).
change() {
  local name=$1 old=$2 new=$3
  shift 3
  if [ "$DRY" = 1 ]; then
    echo "~ $name: $old -> $new (dry run: $*)"
    return 0
  fi
  local err
  if err=$("$@" 2>&1); then
    echo "~ $name: $old -> $new"
    CHANGED=$((CHANGED + 1))
  else
    skip "$name" "$* failed: $(echo "$err" | head -1)"
    return 1
  fi
}
# sysfs/procfs write inside the namespace.
wr() { inns sh -c 'echo "$1" > "$2"' sh "$2" "$1"; }

DRIVER=$(inns ethtool -i "$IF" 2>/dev/null | awk '/^driver:/ {print $2}' || true)
echo "nic-setup: $IF${NS:+ (namespace $NS)}, driver ${DRIVER:-unknown}$([ "$DRY" = 1 ] && echo ', dry run')"

# --- channels --------------------------------------------------------------------------
# `ethtool -l` prints "Pre-set maximums:" then "Current hardware settings:", each with RX,
# TX, Other, Combined. chan SECTION FIELD -> number or n/a.
chan() {
  inns ethtool -l "$IF" 2>/dev/null | awk -v sec="$1" -v f="$2:" '
    /^Pre-set maximums/ {s="max"} /^Current hardware/ {s="cur"}
    s == sec && $1 == f {print $2; exit}' || true
}
rss_table_reset_needed=0
if [ -n "$QUEUES" ]; then
  cmax=$(chan max Combined) ccur=$(chan cur Combined) rmax=$(chan max RX) rcur=$(chan cur RX)
  if [[ $cmax =~ ^[0-9]+$ ]] && [ "$cmax" -gt 0 ]; then
    [ "$QUEUES" -le "$cmax" ] || die "--queues $QUEUES: $IF has at most $cmax combined channels"
    if [ "$ccur" = "$QUEUES" ]; then same "combined channels" "$QUEUES"; else
      # A user RSS table pointing past the new count makes -L fail (mlx5, ice): reset first.
      if [ "$ccur" -gt "$QUEUES" ] 2>/dev/null; then
        [ "$DRY" = 1 ] || inns ethtool -X "$IF" default >/dev/null 2>&1 || true
      fi
      change "combined channels" "$ccur" "$QUEUES" inns ethtool -L "$IF" combined "$QUEUES" ||
        die "could not set $QUEUES combined channels on $IF"
    fi
  elif [[ $rmax =~ ^[0-9]+$ ]] && [ "$rmax" -gt 0 ]; then
    [ "$QUEUES" -le "$rmax" ] || die "--queues $QUEUES: $IF has at most $rmax rx channels"
    if [ "$rcur" = "$QUEUES" ]; then same "rx/tx channels" "$QUEUES"; else
      change "rx/tx channels" "$rcur" "$QUEUES" inns ethtool -L "$IF" rx "$QUEUES" tx "$QUEUES" ||
        die "could not set $QUEUES rx/tx channels on $IF"
    fi
  else
    have=$(inns sh -c "ls -d /sys/class/net/$IF/queues/rx-* | wc -l")
    [ "$have" -ge "$QUEUES" ] || die "$IF reports no channels (ethtool -l) and has $have rx queues < $QUEUES"
    skip channels "ethtool -l not supported; $have rx queues"
  fi
  rss_table_reset_needed=1
fi

# --- RSS: indirection table, hash function, key, tcp4 hash fields ----------------------------
MS_KEY="6d:5a:56:da:25:5b:0e:c2:41:67:25:3d:43:a3:8f:b0:d0:ca:2b:cb:ae:7b:30:b4:77:cb:2d:a3:80:30:f2:0c:6a:42:b7:3b:be:ac:01:fa"
if [ "$rss_table_reset_needed" = 1 ]; then
  if ! x=$(inns ethtool -x "$IF" 2>&1); then
    skip "RSS" "not supported by ${DRIVER:-the driver} ($(echo "$x" | head -1)); queues are chosen by the peer's hash"
  else
    # Current table entries (after "RX flow hash indirection table"), key and function.
    entries=$(echo "$x" | awk '/indirection table/ {t=1; next} /^RSS hash key/ {t=0} t && /^ *[0-9]+:/ {for (i=2;i<=NF;i++) printf "%s ", $i}')
    key=$(echo "$x" | awk '/^RSS hash key/ {getline; print $1; exit}')
    hfunc=$(echo "$x" | awk '/^RSS hash function/ {h=1; next} h && /: on/ {sub(":", "", $1); print $1; exit}')
    n=0 equal=1
    for e in $entries; do [ "$e" = $((n % QUEUES)) ] || equal=0; n=$((n + 1)); done
    keylen=$(( $(echo "$key" | tr -cd ':' | wc -c) + 1 ))
    case $RSS_KEY in
      keep) want_key=$key ;;
      ms) want_key=$(echo "$MS_KEY" | tr ':' '\n' | head -n "$keylen" | paste -sd:)
          while [ "$(( $(echo "$want_key" | tr -cd ':' | wc -c) + 1 ))" -lt "$keylen" ]; do want_key="$want_key:00"; done ;;
      *) [[ $RSS_KEY =~ ^([0-9a-fA-F]{2}:)+[0-9a-fA-F]{2}$ ]] || die "--rss-key: ms, keep or aa:bb:..."
         want_key=${RSS_KEY,,} ;;
    esac
    args=()
    if [ "$equal" = 1 ] && [ "$n" -gt 0 ]; then same "RSS table" "equal $QUEUES ($n entries)"; else args+=(equal "$QUEUES"); fi
    if [ "$hfunc" = toeplitz ]; then same "RSS hash function" toeplitz; else args+=(hfunc toeplitz); fi
    if [ "${key,,}" = "$want_key" ]; then same "RSS key" "${key:0:23}... ($keylen bytes)"; else args+=(hkey "$want_key"); fi
    if [ ${#args[@]} -gt 0 ]; then
      change "RSS" "table/function/key as above" "${args[*]:0:4}..." inns ethtool -X "$IF" "${args[@]}" || true
    fi
  fi
  fh=$(inns ethtool -n "$IF" rx-flow-hash tcp4 2>/dev/null || true)
  if [ -z "$fh" ]; then
    skip "tcp4 flow hash" "not supported by ${DRIVER:-the driver}"
  elif echo "$fh" | grep -q "L4 bytes 0 & 1" && echo "$fh" | grep -q "L4 bytes 2 & 3" && echo "$fh" | grep -q "IP SA" && echo "$fh" | grep -q "IP DA"; then
    same "tcp4 flow hash" "addresses and ports (sdfn)"
  else
    change "tcp4 flow hash" "$(echo "$fh" | tail -n +2 | paste -sd, | tr -s ' \t')" sdfn inns ethtool -N "$IF" rx-flow-hash tcp4 sdfn || true
  fi
fi

# --- flow steering: RSS only (see docs/nic.md) ------------------------------------------------
feat() { inns ethtool -k "$IF" 2>/dev/null | awk -v f="$1:" '$1 == f {print $2; exit}' || true; }
nt=$(feat ntuple-filters)
if [ -n "$NTUPLE" ]; then
  if [ -z "$nt" ] || { inns ethtool -k "$IF" 2>/dev/null || true; } | grep -q "ntuple-filters: .*\[fixed\]"; then
    skip "ntuple" "not changeable on ${DRIVER:-this driver}"
  elif [ "$nt" = "$NTUPLE" ]; then same ntuple "$nt"; else change ntuple "$nt" "$NTUPLE" inns ethtool -K "$IF" ntuple "$NTUPLE" || true; fi
fi
rules=$(inns ethtool -n "$IF" 2>/dev/null | awk '/^Total/ {print $2}' || true)
if [ -n "$rules" ] && [ "$rules" != 0 ]; then
  advice "ntuple rules" "$rules rule(s) steer flows past RSS: the stack then hands segments between workers; remove them (ethtool -N $IF delete ID) or use --ntuple off"
fi
if [ "$(cat /proc/sys/net/core/rps_sock_flow_entries 2>/dev/null || echo 0)" != 0 ] && [ "$(feat ntuple-filters)" = on ]; then
  advice "aRFS" "rps_sock_flow_entries > 0 with ntuple on moves flows to their Linux reader's CPU, not the stack's RSS queue: --ntuple off for stack runs"
fi

# --- IRQ affinity -------------------------------------------------------------------------
if [ -n "$QUEUES" ]; then
  ncpu=$(nproc --all)
  # Default: queue i -> core i (mod the core count), as the bench pins worker i.
  IFS=, read -r -a core_list <<< "${CORES:-$(for ((i = 0; i < QUEUES; i++)); do printf '%s,' $((i % ncpu)); done)}"
  [ "${#core_list[@]}" -ge "$QUEUES" ] || die "--cores lists ${#core_list[@]} cores for $QUEUES queues"
  for c in "${core_list[@]}"; do [[ $c =~ ^[0-9]+$ ]] && [ "$c" -lt "$ncpu" ] || die "--cores: no core '$c' (0..$((ncpu - 1)))"; done
  irqs=$(inns sh -c "ls /sys/class/net/$IF/device/msi_irqs 2>/dev/null" || true)
  if [ -z "$irqs" ]; then
    skip "IRQ affinity" "$IF has no MSI IRQs (a virtual device: its receive work runs on the sender's CPU)"
  else
    if command -v systemctl >/dev/null && systemctl is-active --quiet irqbalance 2>/dev/null; then
      change irqbalance running stopped systemctl stop irqbalance || true
    elif [ -n "$(pidof irqbalance 2>/dev/null || true)" ]; then
      advice irqbalance "running outside systemd: stop it, or it moves these IRQs back"
    fi
    for irq in $irqs; do
      name=$(awk -v i="$irq:" '$1 == i {print $NF}' /proc/interrupts || true)
      # Queue IRQ names: i40e/ice "<drv>-IF-TxRx-Q", mlx5 "mlx5_compQ@pci:...".
      q=$(echo "$name" | sed -nE 's/.*(TxRx-|_comp)([0-9]+).*/\2/p' || true)
      [ -n "$q" ] && [ "$q" -lt "$QUEUES" ] || continue
      cur=$(cat "/proc/irq/$irq/smp_affinity_list" 2>/dev/null || echo "?")
      want=${core_list[$q]}
      if [ "$cur" = "$want" ]; then same "IRQ $irq ($name)" "core $want"; else
        change "IRQ $irq ($name)" "cores $cur" "core $want" sh -c "echo $want > /proc/irq/$irq/smp_affinity_list" || true
      fi
    done
  fi
fi

# --- busy polling -------------------------------------------------------------------------
if [ -n "$BUSY" ]; then
  for s in busy_poll busy_read; do
    f=/proc/sys/net/core/$s
    [ -e "$f" ] || { skip "net.core.$s" "not in this kernel"; continue; }
    cur=$(cat "$f")  # global: only in the initial namespace, so not via --netns
    if [ "$cur" = "$BUSY" ]; then same "net.core.$s" "$cur"; else change "net.core.$s" "$cur" "$BUSY" sysctl -qw "net.core.$s=$BUSY" || true; fi
  done
fi
for pair in "napi_defer_hard_irqs:$DEFER" "gro_flush_timeout:$GROT"; do
  k=${pair%%:*} v=${pair#*:}
  [ -n "$v" ] || continue
  f=/sys/class/net/$IF/$k
  cur=$(inns cat "$f" 2>/dev/null) || { skip "$k" "no $f"; continue; }
  if [ "$cur" = "$v" ]; then same "$k" "$cur"; else change "$k" "$cur" "$v" wr "$f" "$v" || true; fi
done

# --- MTU, pause frames, coalescing ---------------------------------------------------------
if [ -n "$MTU" ]; then
  cur=$(inns cat "/sys/class/net/$IF/mtu")
  if [ "$cur" = "$MTU" ]; then same MTU "$cur"; else change MTU "$cur" "$MTU" inns ip link set dev "$IF" mtu "$MTU" || true; fi
fi
pa=$(inns ethtool -a "$IF" 2>/dev/null || true)
if [ -z "$pa" ]; then
  [ -z "$PAUSE" ] || skip "pause frames" "not supported by ${DRIVER:-the driver}"
else
  rx=$(echo "$pa" | awk '$1 == "RX:" {print $2}') tx=$(echo "$pa" | awk '$1 == "TX:" {print $2}')
  if [ -z "$PAUSE" ]; then
    advice "pause frames" "rx $rx tx $tx (back to back, off avoids pauses hiding drops: --pause off)"
  elif [ "$rx" = "$PAUSE" ] && [ "$tx" = "$PAUSE" ]; then same "pause frames" "$PAUSE"
  else change "pause frames" "rx $rx tx $tx" "$PAUSE" inns ethtool -A "$IF" autoneg off rx "$PAUSE" tx "$PAUSE" || true; fi
fi
co=$(inns ethtool -c "$IF" 2>/dev/null || true)
if [ -z "$co" ]; then
  [ -z "$COAL" ] || skip coalescing "not supported by ${DRIVER:-the driver}"
else
  ad=$(echo "$co" | awk '/^Adaptive RX:/ {print $3}') ru=$(echo "$co" | awk '$1 == "rx-usecs:" {print $2}')
  if [ -z "$COAL" ]; then
    advice coalescing "adaptive-rx $ad, rx-usecs $ru (latency runs: --coalesce-usecs 0..8; busy-polling stack workers do not wait for interrupts)"
  elif [ "$ad" = off ] && [ "$ru" = "$COAL" ]; then same coalescing "rx-usecs $COAL, adaptive off"
  else change coalescing "adaptive $ad rx-usecs $ru" "adaptive off rx/tx-usecs $COAL" \
    inns ethtool -C "$IF" adaptive-rx off adaptive-tx off rx-usecs "$COAL" tx-usecs "$COAL" || true; fi
fi

if [ "$DRY" = 1 ]; then echo "nic-setup: dry run, nothing changed"; else echo "nic-setup: $CHANGED change(s)"; fi
