# Shared by the benchmark scripts (bench-s3.sh, bench-s4.sh): sourced after their
# `set -euo pipefail`, never run on its own.
#
# Sets REPO (and cds there), NICE and RUN (`nice -n $NICE`, to prefix what we start) and HZ;
# defines need, build, machine_info, work_dir (WORK, PIDS, cleanup on exit), ticks and busy_ticks.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
NICE=${NICE:-0}
RUN="nice -n $NICE"
HZ=$(getconf CLK_TCK)

need() { # commands or paths the script cannot run without
  local t
  for t; do command -v "$t" >/dev/null || { echo "missing $t" >&2; exit 1; }; done
}

build() { # the release binaries, unless BUILD=0
  if [ "${BUILD:-1}" = 1 ]; then
    cargo build --release -q -p alp-cli -p alp-loadgen
  fi
}

machine_info() { # extra "name: value" lines, printed after the kernel's
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
  echo "kernel: $(uname -r)"
  if (($#)); then printf '%s\n' "$@"; fi
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# WORK: a fresh /tmp/alp-bench-NAME.XXXXXX. Every pid added to PIDS is stopped on exit, the
# *.log files of WORK are copied to OUT (when it exists) and WORK is removed.
work_dir() { # name
  WORK=$(mktemp -d "/tmp/alp-bench-$1.XXXXXX")
  PIDS=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -d "${OUT:-}" ]; then cp "$WORK"/*.log "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}

ticks() { # utime+stime of a pid, in clock ticks (0 once it is gone)
  local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  # shellcheck disable=SC2086 # split on purpose: the fields after the command name
  s=${s##*) }; set -- $s; echo $(( ${12} + ${13} ))
}
busy_ticks() { # all CPUs, every non-idle state
  local _c u n s i w irq sirq st rest
  read -r _c u n s i w irq sirq st rest < /proc/stat; echo $(( u + n + s + irq + sirq + st ))
}
