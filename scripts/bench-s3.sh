#!/usr/bin/env bash
# Benchmark S3 (BENCHMARKS.md): `alp server` under load over its Unix socket.
#
# One run holds every configuration side by side: the S2 and the S1 store, each served by
# `alp server --threads 1` and `--threads 2`, each of the sidecar build (`--no-default-features`:
# what a pod runs) and the full build (eight servers, each fed by alp-replay), and interleaves
# them: for each repetition, for each load, every server in turn. Loads: closed loop at
# concurrency 1, 16, 64 (one HTTP/2 connection) and 256 over 4 connections, open loop at 1,000 /
# 10,000 / 20,000 checks/s. Reports medians over the repetitions.
#
#   bash scripts/bench-s3.sh                 # full run (~10 min on 2 cores)
#   REPS=1 DUR=2 bash scripts/bench-s3.sh    # quick look
#
# NICE=-10 runs everything we start at that priority (needs root), so that builds of other users
# of a shared machine disturb the measurement less; "foreign" CPU is reported either way.
# Knobs (environment): REPS (3), DUR measured seconds (5), WARM warm-up seconds (1), IDLE seconds
# idle before the idle RSS (3), STORES ("s2 s1"), THREADS ("1 2"), BUILDS ("sidecar full"; "echo"
# adds alp-echo, which answers OK without decoding: the floor of the hop on this machine),
# LOADS ("c1 c16 c64 c256x4 r1000 r10000 r20000": cN = closed loop, N in flight; cNxM = over M
# connections; rN = open loop N/s), BASELINE (the path of another `alp` binary, e.g. a sidecar
# build of an earlier commit, measured beside the others as build "baseline"), BUILD (1: cargo
# build first), PIN (1), OUT
# (target/bench/s3-<utc time>; copy summary.md and machine.txt to bench/results/ to keep a run).
# Output: $OUT/runs.jsonl (one alp-load JSON object per run, annotated), $OUT/summary.md,
# $OUT/machine.txt, the server logs.
#
# The load generator (one thread: h2 straight, requests encoded once, open loop paced by a
# timerfd) shares the machine with the server. PIN=1 (default) keeps them off each other's core:
# a one-thread server on CPU 0, the generator on CPU 1 (a two-thread server is not pinned); PIN=0
# lets the scheduler place them. The generator's CPU is reported per check next to the server's,
# and so is CPU taken by processes that are not ours during each run ("foreign", from
# /proc/stat), so noisy runs can be told apart. Open-loop latency runs from each check's send;
# how late the send was against its schedule is reported apart ("lag").
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
DUR=${DUR:-5}
WARM=${WARM:-1}
IDLE=${IDLE:-3}
STORES=${STORES:-"s2 s1"}
THREADS=${THREADS:-"1 2"}
BUILDS=${BUILDS:-"sidecar full"}
LOADS=${LOADS:-"c1 c16 c64 c256x4 r1000 r10000 r20000"}
OUT=${OUT:-$REPO/target/bench/s3-$(date -u +%Y%m%dT%H%M%SZ)}
PIN=${PIN:-1}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU="taskset -c 0" LOADGEN_CPU="taskset -c 1"
  need taskset
else
  SERVER_CPU="" LOADGEN_CPU=""
fi

need jq bc /usr/bin/time
build
SIDECAR=target/release/alp-sidecar
if [ "${BUILD:-1}" = 1 ] || [ ! -x "$SIDECAR" ]; then
  # The sidecar build (`--no-default-features`: server, client, health) is what a pod runs; it
  # is built into the same target dir, kept under another name, and the full build restored.
  cargo build --release -q -p alp-cli --no-default-features
  cp target/release/alp "$SIDECAR"
  cargo build --release -q -p alp-cli
fi
work_dir s3

# Private copies: another build of the workspace during the run must not swap binaries under us.
mkdir -p "$WORK/bin" "$OUT"
cp target/release/alp target/release/alp-load target/release/alp-replay target/release/alp-echo "$WORK/bin/"
cp "$SIDECAR" "$WORK/bin/alp-sidecar"
cp target/release/alp "$WORK/bin/alp-full"
if [ -n "${BASELINE:-}" ]; then cp "$BASELINE" "$WORK/bin/alp-baseline"; fi
BIN=$WORK/bin

{
  machine_info
  echo "NICE=$NICE PIN=$PIN BASELINE=${BASELINE:-} REPS=$REPS DUR=$DUR WARM=$WARM IDLE=$IDLE STORES=$STORES THREADS=$THREADS BUILDS=$BUILDS LOADS=$LOADS"
} | tee "$OUT/machine.txt"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
rss_anon_kib() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status"; }

# --- policy-sync sources ---------------------------------------------------------------------
declare -A SERVER_PID SERVER_SOCK START
for store in $STORES; do
  $RUN "$BIN/alp-replay" --socket "$WORK/sync-$store.sock" --scenario "$store" 2>"$WORK/replay-$store.log" &
  PIDS+=($!)
done
for store in $STORES; do
  for _ in $(seq 200); do [ -S "$WORK/sync-$store.sock" ] && break; sleep 0.05; done
  [ -S "$WORK/sync-$store.sock" ] || { echo "alp-replay $store did not start" >&2; cat "$WORK/replay-$store.log" >&2; exit 1; }
done

# --- the authorizers: started afresh for every repetition -----------------------------------------
# A fresh process per repetition keeps one repetition's overload (the open loop past saturation
# queues checks in the server) out of the next one's memory figures.
CONFIGS=()
for store in $STORES; do for th in $THREADS; do for b in $BUILDS; do CONFIGS+=("$store-t$th-$b"); done; done; done
parse_cfg() { IFS=- read -r store th build <<<"$1"; th=${th#t}; }
IDLE_JSON=$OUT/idle.jsonl
: >"$IDLE_JSON"
start_servers() { # rep
  local cfg store th build start limit
  for cfg in "${CONFIGS[@]}"; do
    parse_cfg "$cfg"
    SERVER_SOCK[$cfg]=$WORK/authz-$cfg.sock
    pin=$([ "$th" = 1 ] && echo "$SERVER_CPU" || true)
    if [ "$build" = echo ]; then
      # shellcheck disable=SC2086
      $pin $RUN "$BIN/alp-echo" --socket "${SERVER_SOCK[$cfg]}" >>"$WORK/alp-$cfg.log" 2>&1 &
    else
      # shellcheck disable=SC2086 # $pin is a command prefix or nothing
      ALP_LOG=info NO_COLOR=1 $pin $RUN "$BIN/alp-$build" server -l "${SERVER_SOCK[$cfg]}" -d "$WORK/sync-$store.sock" \
        --threads "$th" >>"$WORK/alp-$cfg.log" 2>&1 &
    fi
    SERVER_PID[$cfg]=$!
    PIDS+=($!)
    START[$cfg]=$(date +%s.%N)
  done
  for cfg in "${CONFIGS[@]}"; do
    parse_cfg "$cfg"
    limit=$([ "$store" = s1 ] && echo 60 || echo 10)
    start=${START[$cfg]}
    until if [ "$build" = echo ]; then [ -S "${SERVER_SOCK[$cfg]}" ]; else
      "$BIN/alp" health readiness --dial-path "${SERVER_SOCK[$cfg]}" >/dev/null 2>&1; fi; do
      if [ "$(echo "$(date +%s.%N) - $start > $limit" | bc)" = 1 ]; then
        echo "$cfg not ready after ${limit}s" >&2; tail -5 "$WORK/alp-$cfg.log" >&2; exit 1
      fi
      kill -0 "${SERVER_PID[$cfg]}" 2>/dev/null || { echo "$cfg exited" >&2; tail -5 "$WORK/alp-$cfg.log" >&2; exit 1; }
      sleep 0.05
    done
    READY_S[$cfg]=$(echo "$(date +%s.%N) - $start" | bc)
  done
  sleep "$IDLE"
  for cfg in "${CONFIGS[@]}"; do
    parse_cfg "$cfg"
    jq -nc --argjson rep "$1" --arg store "$store" --argjson th "$th" --arg build "$build" --argjson ready "0${READY_S[$cfg]}" \
      --argjson rss "$(rss_kib "${SERVER_PID[$cfg]}")" --argjson anon "$(rss_anon_kib "${SERVER_PID[$cfg]}")" \
      '{rep: $rep, store: $store, threads: $th, build: $build, ready_s: $ready, idle_rss_kib: $rss, idle_rss_anon_kib: $anon}' | tee -a "$IDLE_JSON" |
      jq -r '"rep \(.rep) \(.store) t\(.threads) \(.build): ready after \(.ready_s) s (all servers started together), idle RSS \(.idle_rss_kib) KiB"'
  done
}
stop_servers() {
  local cfg
  for cfg in "${CONFIGS[@]}"; do kill -TERM "${SERVER_PID[$cfg]}" 2>/dev/null || true; done
  for cfg in "${CONFIGS[@]}"; do wait "${SERVER_PID[$cfg]}" 2>/dev/null || true; done
}
declare -A READY_S

load_args() {
  case $1 in
    c*x*) local c=${1#c}; echo "--concurrency ${c%x*} --connections ${c#*x}" ;;
    c*) echo "--concurrency ${1#c}" ;;
    r*) echo "--rate ${1#r}" ;;
    *) echo "unknown load $1" >&2; exit 1 ;;
  esac
}

# --- the runs, interleaved ---------------------------------------------------------------------
RUNS=$OUT/runs.jsonl
: >"$RUNS"
for rep in $(seq "$REPS"); do
  start_servers "$rep"
  order=("${CONFIGS[@]}")
  if [ $((rep % 2)) = 0 ]; then # alternate the order so no configuration always runs first
    order=(); for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[$i]}"); done
  fi
  for load in $LOADS; do
    for cfg in "${order[@]}"; do
      parse_cfg "$cfg"; pid=${SERVER_PID[$cfg]}
      b0=$(busy_ticks); s0=$(ticks "$pid")
      # shellcheck disable=SC2046
      /usr/bin/time -f '%U %S' -o "$WORK/time" timeout "$(echo "$DUR + $WARM + 60" | bc)" \
        $LOADGEN_CPU $RUN "$BIN/alp-load" --target "${SERVER_SOCK[$cfg]}" --scenario "$store" $(load_args "$load") \
        --duration "$DUR" --warmup "$WARM" --server-pid "$pid" --json >"$WORK/one.json"
      b1=$(busy_ticks); s1=$(ticks "$pid")
      read -r lu ls <"$WORK/time"
      jq -c --arg rep "$rep" --arg store "$store" --arg th "$th" --arg build "$build" --arg load "$load" \
        --argjson busy $((b1 - b0)) --argjson srv $((s1 - s0)) --argjson hz "$HZ" \
        --argjson lg "$(echo "$lu + $ls" | bc)" --argjson wall "$(echo "$DUR + $WARM" | bc)" \
        --argjson DUR_RATIO "$(echo "$DUR / ($DUR + $WARM)" | bc -l)" \
        '. + {rep: ($rep|tonumber), store: $store, threads: ($th|tonumber), build: $build, load: $load,
              loadgen_cpu_us_per_check: (if .checks > 0 then $lg * 1e6 * ($DUR_RATIO) / .checks else null end),
              foreign_cpu_pct: ((($busy - $srv) / $hz - $lg) / $wall * 100 | if . < 0 then 0 else . end | floor)}' \
        "$WORK/one.json" | tee -a "$RUNS" |
        jq -r '"rep \(.rep) \(.store) t\(.threads) \(.build) \(.load): \(.throughput_per_s|floor)/s p50 \(.p50_us) p99 \(.p99_us) p99.9 \(.p999_us) µs, srv \(.server_cpu_us_per_check) µs/check, loadgen \(.loadgen_cpu_us_per_check|floor) µs/check, RSS \(.server_rss_kib) KiB, codes \(.codes) errors \(.errors), foreign \(.foreign_cpu_pct)%"'
    done
  done
  stop_servers
done

# --- summary -----------------------------------------------------------------------------------
{
  cat "$OUT/machine.txt" | sed 's/^/    /'
  echo "    loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Start-up and idle memory (medians of $REPS fresh starts; RSS after ${IDLE} s idle):"
  echo
  echo "| server (store, threads, build) | ready after (s) | idle RSS (KiB) | of which anonymous (KiB) |"
  echo "|---|---:|---:|---:|"
  jq -s -r '
    def med: sort | .[(length - 1) / 2 | floor];
    group_by([.store, .threads, .build]) | sort_by(.[0].store != "s2", .[0].threads, .[0].build != "sidecar") | .[] |
    "| \(.[0].store), --threads \(.[0].threads), \(.[0].build) | \(map(.ready_s) | med * 1000 | round / 1000) | \(map(.idle_rss_kib) | med) | \(map(.idle_rss_anon_kib) | med) |"
  ' "$IDLE_JSON"
  echo
  echo "Medians of $REPS repetitions (${DUR} s measured after ${WARM} s warm-up); CPU in µs per check; RSS of the"
  echo "server at the end of the run (loads run in the order shown, on a server started fresh for the repetition);"
  echo "foreign = CPU used by processes that are not ours during the run, % of one core (max of the repetitions)."
  echo
  echo "| store | threads | build | load | checks/s | p50 µs | p99 µs | p99.9 µs | lag p99 µs | server CPU | loadgen CPU | RSS KiB at end | errors | foreign % |"
  echo "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  jq -s -r --arg loads "$LOADS" '
    ($loads | split(" ") | map(select(. != ""))) as $order |
    def med: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
    def r1: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
    group_by([.store, .threads, .build, .load]) | sort_by(.[0].store != "s2", .[0].threads, .[0].build != "sidecar", (.[0].load as $l | $order | index($l))) | .[] |
    "| \(.[0].store) | \(.[0].threads) | \(.[0].build) | \(.[0].load) | \(map(.throughput_per_s) | med | floor) | \(map(.p50_us) | med | r1) | \(map(.p99_us) | med | r1) | \(map(.p999_us) | med | r1) | \(map(.pacing_lag_p99_us) | map(select(. != null)) | med | r1) | \(map(.server_cpu_us_per_check) | med | r1) | \(map(.loadgen_cpu_us_per_check) | med | r1) | \(map(.server_rss_kib) | med) | \(map(.errors) | add) | \(map(.foreign_cpu_pct) | max) |"
  ' "$RUNS"
} | tee "$OUT/summary.md"
echo "results: $OUT"
