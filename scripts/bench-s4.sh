#!/usr/bin/env bash
# Benchmark S4 (BENCHMARKS.md): wrk through real Envoy, three ways in one run.
#
#   wrk --HTTP/1.1--> client Envoy --mTLS (spiffe://cluster.local/ns/ns-0/sa/sa-1, from 127.64.0.11)-->
#       server Envoy, three listeners that differ only in authorization, each answering a
#       direct_response 200:
#         (a) none   (b) Envoy RBAC with S2 translated (bench/s4-server-envoy.yaml)
#         (c) HTTP ext_authz -> `alp server` over a Unix socket, fed S2 by alp-replay
#
# S2's pods are moved from 10.64.0.0/16 to 127.64.0.0/16 (loopback) so the client Envoy can send
# from the pod address of its identity and alp's IP-set clauses see the address S2 gives that pod.
# Before measuring, the script checks: each path answers 200 to the benchmark request (S2's
# "allowed": GET /api/v1/items/42?verbose=1 as ns-0/sa-1) through the client Envoy, (b) and (c)
# answer 403 to a denied one, and (b) and (c) give the same verdict on a matrix of identities x
# requests sent with curl straight to the server Envoy (each identity from its own pod address).
# Then wrk runs against (a), (b), (c) interleaved, REPS times, and the CPU time of the server
# Envoy, the client Envoy, alp and wrk is read around each run (/proc/PID/stat utime+stime).
#
#   bash scripts/bench-s4.sh
#   REPS=1 DUR=3 bash scripts/bench-s4.sh        # quick look
#   PERF=1 bash scripts/bench-s4.sh              # also a perf profile (cpu-clock) of one (c) run
#
# NICE=-10 runs everything we start at that priority (needs root), so that builds of other users
# of a shared machine disturb the measurement less; "foreign" CPU is reported either way.
# PATHS="a b c d" adds (d): (c) with no request headers in the CheckRequest (ext_authz
# allowed_headers matching none), to see what the headers cost.
# Knobs: REPS (3), DUR wrk seconds (10), CONNS wrk connections (16), ALP_THREADS (1, alp's
# default), BUILD (1), PERF (0), OUT (target/bench/s4-<utc time>; copy summary.md and machine.txt to bench/results/ to keep a run), ALP_ENVOY (the Envoy binary).
# Output: $OUT/runs.jsonl, $OUT/summary.md, $OUT/verdicts.txt, the wrk outputs and the logs.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

REPS=${REPS:-3}
DUR=${DUR:-10}
CONNS=${CONNS:-16}
ALP_THREADS=${ALP_THREADS:-1}
PERF=${PERF:-0}
ENVOY=${ALP_ENVOY:-$REPO/.venv/bin/envoy}
OUT=${OUT:-$REPO/target/bench/s4-$(date -u +%Y%m%dT%H%M%SZ)}
ADDR_A=127.66.0.1 ADDR_B=127.66.0.2 ADDR_C=127.66.0.3 ADDR_D=127.66.0.4
PATHS=${PATHS:-a b c}
SRC_ADDR=127.64.0.11 # S2's pod ns-0/sa-1 (10.64.0.11), moved to loopback
HOST=svc-0.ns-0.svc.cluster.local
BENCH_PATH='/api/v1/items/42?verbose=1'

need wrk curl openssl jq bc /usr/bin/time "$ENVOY"
build

work_dir s4
mkdir -p "$WORK/bin" "$WORK/certs" "$OUT"
cp target/release/alp target/release/alp-replay "$WORK/bin/"
BIN=$WORK/bin
CERTS=$WORK/certs

{
  machine_info "envoy: $("$ENVOY" --version 2>/dev/null | grep -o 'version: [^ ]*' | head -1)" "wrk: $(wrk -v 2>&1 | head -1)"
  echo "NICE=$NICE PATHS=$PATHS REPS=$REPS DUR=$DUR CONNS=$CONNS ALP_THREADS=$ALP_THREADS; Envoy --concurrency 1 (client and server), wrk -t1"
} | tee "$OUT/machine.txt"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # seconds, description, command...
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { echo "timed out waiting for $what" >&2; return 1; }
    sleep 0.05
  done
}

# --- certificates (EC P-256): a CA, the server (ns-0/sa-0, S2's protected pod), clients ------------
openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/ca.key" 2>/dev/null
openssl req -x509 -new -key "$CERTS/ca.key" -subj /CN=alp-bench-ca -days 2 -out "$CERTS/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
leaf() { # name, subjectAltName value
  openssl ecparam -name prime256v1 -genkey -noout -out "$CERTS/$1.key" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" >"$CERTS/$1.ext"
  openssl req -new -key "$CERTS/$1.key" -subj "/CN=$1" 2>/dev/null |
    openssl x509 -req -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" -set_serial "0x$(openssl rand -hex 8)" -days 2 \
      -extfile "$CERTS/$1.ext" -out "$CERTS/$1.crt" 2>/dev/null
}
leaf server "URI:spiffe://cluster.local/ns/ns-0/sa/sa-0,DNS:$HOST"
leaf client "URI:spiffe://cluster.local/ns/ns-0/sa/sa-1"
# Identities of the verdict matrix: every tier-1 and tier-2 rule has a caller that hits it.
IDENTITIES="0:0 0:1 0:2 0:3 1:1 2:3 3:2 4:1 4:2 5:1 6:0 7:0 9:2 10:0 12:1 12:3 13:3 20:2 22:3 47:3 48:0 49:0"
for id in $IDENTITIES; do
  leaf "id-${id%:*}-${id#*:}" "URI:spiffe://cluster.local/ns/ns-${id%:*}/sa/sa-${id#*:}"
done

# --- S2 with its pods on loopback, served by alp-replay; alp server ----------------------------
$RUN "$BIN/alp-replay" --socket "$WORK/dump.sock" --scenario s2 --dump "$WORK/s2-orig.jsonl" 2>"$WORK/dump.log" &
DUMP_PID=$!
wait_for 10 "alp-replay --dump" test -S "$WORK/dump.sock"
kill -TERM "$DUMP_PID"; wait "$DUMP_PID" 2>/dev/null || true
sed 's/"10\.64\./"127.64./g' "$WORK/s2-orig.jsonl" >"$WORK/s2-loopback.jsonl"
if grep -q '10\.64\.' "$WORK/s2-loopback.jsonl"; then echo "an S2 address was left in 10.64.0.0/16" >&2; exit 1; fi
echo "S2 stream: $(wc -l <"$WORK/s2-loopback.jsonl") messages, $(grep -o '"127\.64\.[0-9.]*/32"' "$WORK/s2-loopback.jsonl" | wc -l) IP-set members and endpoint addresses moved to 127.64.0.0/16"

$RUN "$BIN/alp-replay" --socket "$WORK/sync.sock" --sync "$WORK/s2-loopback.jsonl" 2>"$WORK/replay.log" &
PIDS+=($!)
wait_for 10 "alp-replay" test -S "$WORK/sync.sock"
ALP_LOG=info NO_COLOR=1 $RUN "$BIN/alp" server -l "$WORK/authz.sock" -d "$WORK/sync.sock" --threads "$ALP_THREADS" \
  >"$WORK/alp.log" 2>&1 &
ALP_PID=$!
PIDS+=($!)
wait_for 10 "alp readiness" "$BIN/alp" health readiness --dial-path "$WORK/authz.sock"

# --- the two Envoys ------------------------------------------------------------------------------
S_ADMIN=$(free_port); C_ADMIN=$(free_port)
PORT_A=$(free_port); PORT_B=$(free_port); PORT_C=$(free_port); PORT_D=$(free_port)
subst() {
  sed -e "s|@ADDR_A@|$ADDR_A|g; s|@ADDR_B@|$ADDR_B|g; s|@ADDR_C@|$ADDR_C|g; s|@ADDR_D@|$ADDR_D|g; s|@CERT_DIR@|$CERTS|g" \
      -e "s|@AUTHZ_SOCK@|$WORK/authz.sock|g; s|@SRC_ADDR@|$SRC_ADDR|g" \
      -e "s|@PORT_A@|$PORT_A|g; s|@PORT_B@|$PORT_B|g; s|@PORT_C@|$PORT_C|g; s|@PORT_D@|$PORT_D|g; s|@ADMIN_PORT@|$2|g" "$1"
}
subst bench/s4-server-envoy.yaml "$S_ADMIN" >"$WORK/server-envoy.yaml"
subst bench/s4-client-envoy.yaml "$C_ADMIN" >"$WORK/client-envoy.yaml"
if grep -q '@[A-Z_]*@' "$WORK/server-envoy.yaml" "$WORK/client-envoy.yaml"; then echo "placeholder left" >&2; exit 1; fi
for side in server client; do
  "$ENVOY" --mode validate -c "$WORK/$side-envoy.yaml" >"$WORK/validate-$side.log" 2>&1 ||
    { echo "$side Envoy config does not validate" >&2; tail -5 "$WORK/validate-$side.log" >&2; exit 1; }
done
$RUN "$ENVOY" -c "$WORK/server-envoy.yaml" --concurrency 1 --disable-hot-restart --log-level warn >"$WORK/server-envoy.log" 2>&1 &
SENV_PID=$!
PIDS+=($!)
$RUN "$ENVOY" -c "$WORK/client-envoy.yaml" --concurrency 1 --disable-hot-restart --log-level warn >"$WORK/client-envoy.log" 2>&1 &
CENV_PID=$!
PIDS+=($!)
ready() { curl -sf --max-time 1 "http://127.0.0.1:$1/ready" | grep -q LIVE; }
wait_for 20 "server Envoy /ready" ready "$S_ADMIN"
wait_for 20 "client Envoy /ready" ready "$C_ADMIN"

# --- verdicts ----------------------------------------------------------------------------------
declare -A PORT=([a]=$PORT_A [b]=$PORT_B [c]=$PORT_C [d]=$PORT_D) ADDR=([a]=$ADDR_A [b]=$ADDR_B [c]=$ADDR_C [d]=$ADDR_D)
via_client() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X "$2" "http://127.0.0.1:${PORT[$1]}$3"; }
fail=0
for x in $PATHS; do
  got=$(via_client "$x" GET "$BENCH_PATH")
  echo "($x) via the client Envoy: GET $BENCH_PATH as ns-0/sa-1 -> $got (want 200)"
  [ "$got" = 200 ] || fail=1
done
for x in $PATHS; do
  [ "$x" = a ] && continue
  got=$(via_client "$x" GET /admin/settings)
  echo "($x) via the client Envoy: GET /admin/settings as ns-0/sa-1 -> $got (want 403)"
  [ "$got" = 403 ] || fail=1
done
[ "$fail" = 0 ] || { echo "a path does not answer as it should; logs in $OUT" >&2; exit 1; }

REQUESTS=(
  "GET $BENCH_PATH" "GET /api/v1/items/42" "HEAD /api/v1/items" "POST /api/v1/payments" "DELETE /api/v1/payments/7"
  "PUT /api/v1/bulk/1" "POST /api/v1/bulk" "GET /admin/settings" "DELETE /admin/users" "TRACE /admin/x"
  "TRACE /api/v1/items" "GET /internal/x" "GET /internal/debug/x" "GET /static/app.css" "GET /assets/app.js"
  "GET /api/v1/search?q=1" "POST /graphql" "GET /api/v2/items" "GET /metrics" "GET /api/v0/items" "GET /old"
  "GET /legacy/index.html" "GET /healthz" "GET /readyz" "GET /debug/pprof"
)
matrix() { # listener, ns, sa: one status per line, one line per entry of REQUESTS
  local x=$1 ns=$2 sa=$3 args=() first=1 r m p
  for r in "${REQUESTS[@]}"; do
    m=${r%% *}; p=${r#* }
    [ "$first" = 1 ] || args+=(--next)
    first=0
    args+=(-s -o /dev/null -w '%{http_code}\n' --max-time 5 --cacert "$CERTS/ca.crt"
      --cert "$CERTS/id-$ns-$sa.crt" --key "$CERTS/id-$ns-$sa.key" --interface "127.64.$ns.$((10 + sa))"
      --resolve "$HOST:8080:${ADDR[$x]}")
    if [ "$m" = HEAD ]; then args+=(--head); else args+=(-X "$m"); fi
    args+=("https://$HOST:8080$p")
  done
  curl "${args[@]}" || true
}
: >"$OUT/verdicts.txt"
mismatches=0; allowed=0; total=0
for id in $IDENTITIES; do
  ns=${id%:*}; sa=${id#*:}
  mapfile -t vb < <(matrix b "$ns" "$sa")
  mapfile -t vc < <(matrix c "$ns" "$sa")
  vd=("${vc[@]}")
  case " $PATHS " in *" d "*) mapfile -t vd < <(matrix d "$ns" "$sa") ;; esac
  for i in "${!REQUESTS[@]}"; do
    total=$((total + 1))
    [ "${vc[$i]:-}" = 200 ] && allowed=$((allowed + 1))
    mark=""
    if [ "${vb[$i]:-none}" != "${vc[$i]:-none}" ] || [ "${vd[$i]:-none}" != "${vc[$i]:-none}" ]; then
      mark="  MISMATCH"; mismatches=$((mismatches + 1))
    fi
    printf 'ns-%s/sa-%s %-30s rbac %s alp %s%s\n' "$ns" "$sa" "${REQUESTS[$i]}" "${vb[$i]:-none}" "${vc[$i]:-none}" "$mark" >>"$OUT/verdicts.txt"
  done
done
# S2's own eight requests (crates/scenarios/src/s2.rs S2_REQUESTS) and their labels.
s2_expect() { grep -F "ns-$1/sa-$2 $(printf '%-30s' "$3 $4")" "$OUT/verdicts.txt" | grep -q "rbac $5 alp $5"; }
for t in "0 1 GET $BENCH_PATH 200" "4 1 GET /api/v1/items/42 403" "5 1 POST /api/v1/payments 200" \
         "0 3 GET /admin/settings 200" "20 2 GET /healthz 200" "7 0 GET /healthz 403" \
         "0 1 DELETE /admin/users 403" "0 0 TRACE /api/v1/items 403"; do
  # shellcheck disable=SC2086
  set -- $t
  s2_expect "$@" || { echo "S2 request ns-$1/sa-$2 $3 $4: want $5 from both (b) and (c)" >&2; mismatches=$((mismatches + 1)); }
done
echo "verdict matrix: $total requests ($(echo "$IDENTITIES" | wc -w) identities x ${#REQUESTS[@]} requests), $allowed allowed by alp, $mismatches disagreements between (b) RBAC and (c) alp$(case " $PATHS " in *" d "*) echo " (or (d))";; esac)" |
  tee -a "$OUT/verdicts.txt"
if [ "$mismatches" != 0 ]; then grep MISMATCH "$OUT/verdicts.txt" >&2 || true; exit 1; fi

# --- measurement -------------------------------------------------------------------------------
to_us() { # wrk latency: 612.00us / 1.23ms / 2.00s
  case $1 in
    *us) echo "${1%us}" ;;
    *ms) echo "${1%ms} * 1000" | bc -l ;;
    *s) echo "${1%s} * 1000000" | bc -l ;;
  esac
}
RUNS=$OUT/runs.jsonl
: >"$RUNS"
# One short unmeasured pass per path first: connections, TLS sessions and the gRPC channel up.
for x in $PATHS; do wrk -t1 -c"$CONNS" -d1s "http://127.0.0.1:${PORT[$x]}$BENCH_PATH" >/dev/null; done
for rep in $(seq "$REPS"); do
  for x in $PATHS; do
    b0=$(busy_ticks); s0=$(ticks "$SENV_PID"); c0=$(ticks "$CENV_PID"); a0=$(ticks "$ALP_PID")
    /usr/bin/time -f '%U %S' -o "$WORK/time" $RUN wrk -t1 -c"$CONNS" -d"${DUR}s" --latency \
      "http://127.0.0.1:${PORT[$x]}$BENCH_PATH" >"$OUT/wrk-$x-$rep.txt"
    b1=$(busy_ticks); s1=$(ticks "$SENV_PID"); c1=$(ticks "$CENV_PID"); a1=$(ticks "$ALP_PID")
    read -r wu ws <"$WORK/time"
    w=$OUT/wrk-$x-$rep.txt
    reqs=$(awk '/requests in/ {print $1}' "$w")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$w")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$w"); non2xx=${non2xx:-0}
    sockerr=$(grep -c 'Socket errors' "$w" || true)
    p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$w")")
    p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$w")")
    jq -nc --arg path "$x" --argjson rep "$rep" --argjson reqs "$reqs" --argjson rps "$rps" \
      --argjson p50 "$p50" --argjson p99 "$p99" --argjson non2xx "$non2xx" --argjson sockerr "$sockerr" \
      --argjson hz "$HZ" --argjson senv $((s1 - s0)) --argjson cenv $((c1 - c0)) --argjson alp $((a1 - a0)) \
      --argjson busy $((b1 - b0)) --argjson wrk "$(echo "$wu + $ws" | bc)" --argjson dur "$DUR" '
      def per_req(t): t / $hz * 1e6 / $reqs;
      {path: $path, rep: $rep, requests: $reqs, rps: $rps, p50_us: $p50, p99_us: $p99, non2xx: $non2xx,
       socket_errors: $sockerr,
       cpu_us_per_req: {server_envoy: per_req($senv), client_envoy: per_req($cenv), alp: per_req($alp),
                        wrk: ($wrk * 1e6 / $reqs)},
       foreign_cpu_pct: ((($busy - $senv - $cenv - $alp) / $hz - $wrk) / $dur * 100 | if . < 0 then 0 else . end | floor)}' |
      tee -a "$RUNS" | jq -r '"rep \(.rep) (\(.path)): \(.rps|floor) req/s p50 \(.p50_us) µs p99 \(.p99_us) µs non-2xx \(.non2xx); CPU µs/req server Envoy \(.cpu_us_per_req.server_envoy*10|round/10), client Envoy \(.cpu_us_per_req.client_envoy*10|round/10), alp \(.cpu_us_per_req.alp*10|round/10), wrk \(.cpu_us_per_req.wrk*10|round/10); foreign \(.foreign_cpu_pct)%"'
    if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then echo "($x) had non-2xx answers or socket errors: $w" >&2; exit 1; fi
  done
done

if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
  $RUN wrk -t1 -c"$CONNS" -d"$((DUR + 2))s" "http://127.0.0.1:$PORT_C$BENCH_PATH" >/dev/null &
  WRK_PID=$!
  sleep 1
  perf record -q -F 999 -e cpu-clock -g -p "$ALP_PID" -o "$WORK/perf-alp.data" -- sleep "$DUR" 2>/dev/null &
  P1=$!
  perf record -q -F 999 -e cpu-clock -g -p "$SENV_PID" -o "$WORK/perf-envoy.data" -- sleep "$DUR" 2>/dev/null &
  P2=$!
  wait "$P1" "$P2" "$WRK_PID" || true
  for p in alp envoy; do
    perf report -i "$WORK/perf-$p.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
      grep -E "^ +[0-9.]+%" | head -400 >"$OUT/perf-$p-c.txt" || true
    perf report -i "$WORK/perf-$p.data" --no-children --sort dso --stdio 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -15 >"$OUT/perf-$p-c-dso.txt" || true
  done
  echo "perf profiles of a (c) run: $OUT/perf-*-c*.txt"
fi

# --- summary -----------------------------------------------------------------------------------
{
  sed 's/^/    /' "$OUT/machine.txt"
  echo "    loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "wrk -t1 -c$CONNS -d${DUR}s, $REPS interleaved repetitions (a,b,c,a,b,c,…); medians. CPU in µs per request"
  echo "(utime+stime of each process over the run / requests). foreign: CPU of processes not ours, % of a core (max)."
  echo
  echo "| path | req/s | p50 µs | p99 µs | server Envoy | client Envoy | alp | wrk | foreign % |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  jq -s -r '
    def med: sort | .[(length - 1) / 2 | floor];
    def r1: . * 10 | round / 10;
    group_by(.path) | .[] |
    "| (\(.[0].path)) \({a: "none", b: "Envoy RBAC", c: "ext_authz → alp", d: "ext_authz → alp, no headers sent"}[.[0].path]) | \(map(.rps) | med | floor) | \(map(.p50_us) | med | r1) | \(map(.p99_us) | med | r1) | \(map(.cpu_us_per_req.server_envoy) | med | r1) | \(map(.cpu_us_per_req.client_envoy) | med | r1) | \(map(.cpu_us_per_req.alp) | med | r1) | \(map(.cpu_us_per_req.wrk) | med | r1) | \(map(.foreign_cpu_pct) | max) |"
  ' "$RUNS"
  echo
  jq -s -r '
    def med: sort | .[(length - 1) / 2 | floor];
    def r2: . * 100 | round / 100;
    (group_by(.rep) | map(INDEX(.path))) as $reps |
    "Ratios (median of the per-repetition ratios): req/s (c)/(a) \($reps | map(.c.rps / .a.rps) | med | r2), (c)/(b) \($reps | map(.c.rps / .b.rps) | med | r2); p99 (c)/(a) \($reps | map(.c.p99_us / .a.p99_us) | med | r2), (c)/(b) \($reps | map(.c.p99_us / .b.p99_us) | med | r2)." +
    (if $reps[0].d then " (d)/(c): req/s \($reps | map(.d.rps / .c.rps) | med | r2), p99 \($reps | map(.d.p99_us / .c.p99_us) | med | r2)." else "" end)
  ' "$RUNS"
  tail -1 "$OUT/verdicts.txt"
} | tee "$OUT/summary.md"
echo "results: $OUT"
