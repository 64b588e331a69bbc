#!/usr/bin/env bash
# The live demo: two versions of vane-demo, vane-proxy in front with the 90/10
# split of configs/split.yaml, a few hundred requests, the share each version
# got; then vane-control runs two canary analyses under load (1 s ticks): a
# healthy revision walks the weights and is promoted, a bad one (errors
# injected) is rolled back; then a gRPC canary (configs/grpc.yaml, `protocol:
# h2` clusters, gRPC load) failing 30% of its calls with HTTP 200 and
# grpc-status INTERNAL is rolled back too. Everything runs on 127.0.0.1 on
# ports the OS picks, and stops cleanly (also on Ctrl-C).
# VANE_DEMO_SPLIT_ONLY=1 skips the canary parts.
#   scripts/demo.sh [BUILD_DIR] [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-release}
requests=${2:-500}
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted"; exit 130' INT TERM

# Waits (up to 30 s) for "listening on HOST:PORT" in a log; prints HOST:PORT.
wait_listening() {
  local log=$1
  for _ in $(seq 300); do
    if grep -q 'listening on' "$log" 2>/dev/null; then
      grep -o 'listening on [0-9.]*:[0-9]*' "$log" | head -1 | cut -d' ' -f3
      return 0
    fi
    sleep 0.1
  done
  echo "demo: no 'listening on' in $log:" >&2
  cat "$log" >&2
  return 1
}

"$build/demo/vane-demo" --listen 127.0.0.1:0 --version 6.0.0 >"$work/primary.log" 2>&1 &
pids+=($!)
"$build/demo/vane-demo" --listen 127.0.0.1:0 --version 6.1.0 >"$work/canary.log" 2>&1 &
pids+=($!)
primary=$(wait_listening "$work/primary.log")
canary=$(wait_listening "$work/canary.log")
echo "demo: podinfo-primary (6.0.0) on $primary, podinfo-canary (6.1.0) on $canary"

sed -e "s/127.0.0.1:8080/127.0.0.1:0/" -e "s/127.0.0.1:9901/127.0.0.1:0/" -e "s/drain_delay: 5s/drain_delay: 0s/" -e "s/127.0.0.1:9898/$primary/" -e "s/127.0.0.1:9899/$canary/" \
  configs/split.yaml >"$work/split.yaml"
"$build/proxy/vane-proxy" --validate --config "$work/split.yaml"
"$build/proxy/vane-proxy" --config "$work/split.yaml" --workers 2 >"$work/proxy.log" 2>&1 &
pids+=($!)
proxy=$(wait_listening "$work/proxy.log")
echo "demo: vane-proxy on $proxy, split podinfo-primary 90 / podinfo-canary 10"

# One curl process, one keep-alive connection, $requests requests.
for _ in $(seq "$requests"); do echo "url = http://$proxy/"; echo "output = /dev/null"; done >"$work/urls"
curl -s --fail-with-body -K "$work/urls" -w '%{http_code} %header{x-version}\n' >"$work/results"
echo "demo: sent $requests requests through vane-proxy"
awk -v total="$requests" '
  { n[$2]++; if ($1 != 200) errors++ }
  END {
    for (v in n) printf "  version %-6s %5d requests  %5.1f%%\n", v, n[v], 100 * n[v] / total
    printf "  errors %d\n", errors + 0
  }' "$work/results" | sort
ok=$(awk '$1 == 200' "$work/results" | wc -l)
if [ "$ok" -ne "$requests" ]; then
  echo "demo: FAILED: only $ok of $requests requests succeeded" >&2
  exit 1
fi
if [ "${VANE_DEMO_SPLIT_ONLY:-0}" = 1 ]; then
  echo "demo: done; stopping everything"
  exit 0
fi

# --- part 2: canary analysis with vane-control -----------------------------
admin=$(grep -o 'admin listening on [0-9.]*:[0-9]*' "$work/proxy.log" | head -1 | cut -d' ' -f4)
curl -s -X PUT "http://$admin/routes/podinfo/traffic" \
  -d '{"split":[{"cluster":"podinfo-primary","weight":100},{"cluster":"podinfo-canary","weight":0}]}' >/dev/null
mkdir -p "$work/canaries"
write_canary() {  # REVISION (written whole, then renamed: the controller polls the file)
  cat >"$work/canaries/podinfo.yaml.tmp" <<EOF
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: demo}
spec:
  targetRef: {name: podinfo}
  revision: "$1"
  route: podinfo
  proxies: [http://$admin]
  promote: {command: ["sh", "$work/promote.sh"], timeout: 30s}
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 60
    stepWeight: 20
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
      - {name: request-duration, thresholdRange: {max: 500}, interval: 2s}
EOF
  mv "$work/canaries/podinfo.yaml.tmp" "$work/canaries/podinfo.yaml"
}
# What a promote command does for real (kubectl set image, a Flux commit...): make
# the primary run the canary's revision, here by telling the demo service so.
cat >"$work/promote.sh" <<EOF
exec curl -sf -o /dev/null -X PUT "http://$primary/_demo/config" -d "{\"version\":\"\$VANE_REVISION\"}"
EOF
# Flagger's first sight: the revision the controller first sees is the primary's (the baseline); a later
# revision starts a run.
write_canary 6.0.0
# Load: requests through the proxy until the demo ends, each answer's status logged.
( while :; do curl -s -o /dev/null -w '%{http_code} %header{x-version}\n' "http://$proxy/" || true; done >"$work/load.log" ) &
pids+=($!)
"$build/control/vane-control" --canaries "$work/canaries" --listen 127.0.0.1:0 --state "$work/state.json" \
  >"$work/control.log" 2>&1 &
pids+=($!)
control=$(wait_listening "$work/control.log")
echo "demo: vane-control on $control; canary podinfo.demo, 1 s ticks, steps of 20% up to 60%"

# Follows a run with `vane-control watch`: the event lines as they come and a
# progress line (weight bar, success rate, p99, failed checks); then the table.
follow() {  # EXPECTED_EXIT (0 promoted, 3 rolled back)
  local code=0
  "$build/control/vane-control" watch podinfo --server "http://$control" --timeout 120s || code=$?
  "$build/control/vane-control" status podinfo --server "http://$control" | sed 's/^/  /'
  if [ "$code" -ne "$1" ]; then
    echo "demo: FAILED: vane-control watch exited $code, expected $1; the controller's log:" >&2
    cat "$work/control.log" >&2
    return 1
  fi
}
for _ in $(seq 300); do grep -q 'Initialization done! podinfo.demo' "$work/control.log" && break; sleep 0.1; done
grep -q 'Initialization done! podinfo.demo' "$work/control.log" || { echo "demo: FAILED: no initialization" >&2; cat "$work/control.log" >&2; exit 1; }
echo "demo: podinfo.demo initialized on 6.0.0 (the primary's revision)"
echo "demo: rollout of 6.1.0 (healthy)"
write_canary 6.1.0
follow 0

echo "demo: the primary now runs $(curl -s "http://$primary/" | grep -o '"version":"[^"]*"')"
echo "demo: rollout of 6.2.0 to the canary (it fails 30% of its requests)"
curl -sf -X PUT "http://$canary/_demo/config" -d '{"version":"6.2.0","error_percent":30,"error_status":503}' >/dev/null
write_canary 6.2.0
follow 3

echo "demo: summary"
echo "  6.1.0 promoted, 6.2.0 rolled back"
echo "  load through the proxy during the rollouts: $(grep -c . "$work/load.log" || true) requests"
awk '{ by[$2 " " $1]++ } END { for (k in by) { split(k, f, " "); printf "    version %-6s status %s  %6d\n", f[1], f[2], by[k] } }' \
  "$work/load.log" | sort
echo "  (every 503 is one of the 6.2.0 canary's injected errors, before the rollback)"

# --- part 3: a gRPC canary failing with HTTP 200 -----------------------------
# Two versions of the gRPC service behind `protocol: h2` clusters (configs/grpc.yaml),
# gRPC load through the proxy, and a revision that fails 30% of its calls with
# HTTP 200 + grpc-status INTERNAL: HTTP status alone sees nothing wrong; vane
# counts the gRPC status, so vane-control rolls it back.
if ! /usr/bin/python3 -c 'import grpc' 2>/dev/null; then
  echo "demo: FAILED: python3-grpcio is missing (scripts/setup.sh installs it)" >&2
  exit 1
fi
"$build/demo/vane-demo" --listen 127.0.0.1:0 --version 7.0.0 >"$work/grpc-primary.log" 2>&1 &
pids+=($!)
"$build/demo/vane-demo" --listen 127.0.0.1:0 --version 7.0.0 >"$work/grpc-canary.log" 2>&1 &
pids+=($!)
gprimary=$(wait_listening "$work/grpc-primary.log")
gcanary=$(wait_listening "$work/grpc-canary.log")
sed -e "s/127.0.0.1:8080/127.0.0.1:0/" -e "s/127.0.0.1:9901/127.0.0.1:0/" -e "s/drain_delay: 5s/drain_delay: 0s/" \
  -e "s/127.0.0.1:9898/$gprimary/" -e "s/127.0.0.1:9899/$gcanary/" configs/grpc.yaml >"$work/grpc.yaml"
"$build/proxy/vane-proxy" --validate --config "$work/grpc.yaml"
"$build/proxy/vane-proxy" --config "$work/grpc.yaml" --workers 1 >"$work/grpc-proxy.log" 2>&1 &
pids+=($!)
gproxy=$(wait_listening "$work/grpc-proxy.log")
gadmin=$(grep -o 'admin listening on [0-9.]*:[0-9]*' "$work/grpc-proxy.log" | head -1 | cut -d' ' -f4)
curl -s -X PUT "http://$gadmin/routes/echo/traffic" \
  -d '{"split":[{"cluster":"echo-primary","weight":100},{"cluster":"echo-canary","weight":0}]}' >/dev/null
echo "demo: gRPC: echo-primary and echo-canary (h2c) on $gprimary and $gcanary, vane-proxy (configs/grpc.yaml) on $gproxy"
# gRPC load (vane.demo.v1.Demo/Echo, 200 calls/s) through the proxy until the demo ends.
/usr/bin/python3 tests/support/grpc_client.py --target "$gproxy" --method echo --calls 0 --duration 300 \
  --rate 200 --concurrency 4 --wait-ready 10 >"$work/grpc-load.log" 2>&1 &
pids+=($!)
write_echo_canary() { # REVISION
  cat >"$work/canaries/echo.yaml.tmp" <<EOF
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: echo, namespace: demo}
spec:
  targetRef: {name: echo}
  revision: "$1"
  route: echo
  proxies: [http://$gadmin]
  analysis:
    interval: 1s
    threshold: 2
    maxWeight: 60
    stepWeight: 20
    metrics:
      - {name: request-success-rate, thresholdRange: {min: 99}, interval: 2s}
EOF
  mv "$work/canaries/echo.yaml.tmp" "$work/canaries/echo.yaml"
}
write_echo_canary 7.0.0
for _ in $(seq 300); do grep -q 'Initialization done! echo.demo' "$work/control.log" && break; sleep 0.1; done
grep -q 'Initialization done! echo.demo' "$work/control.log" || {
  echo "demo: FAILED: no initialization of echo.demo" >&2
  cat "$work/control.log" >&2
  exit 1
}
echo "demo: rollout of 7.1.0 to echo-canary (30% of its gRPC calls fail: HTTP 200, grpc-status INTERNAL)"
curl -sf -X PUT "http://$gcanary/_demo/config" \
  -d '{"version":"7.1.0","error_percent":30,"grpc_error_status":"internal"}' >/dev/null
write_echo_canary 7.1.0
code=0
"$build/control/vane-control" watch echo --server "http://$control" --timeout 120s || code=$?
"$build/control/vane-control" status echo --server "http://$control" | sed 's/^/  /'
if [ "$code" -ne 3 ]; then
  echo "demo: FAILED: vane-control watch exited $code, expected 3 (rolled back); the controller's log:" >&2
  cat "$work/control.log" >&2
  exit 1
fi
# What the clients got, from the proxy's /metrics: the HTTP status and the gRPC status of every call.
curl -s "http://$gadmin/metrics" >"$work/grpc-metrics.txt"
http_codes=$(grep '^vane_requests_total{route="echo"' "$work/grpc-metrics.txt" |
  sed 's/.*code="\([0-9]*\)".* \([0-9.e+]*\)$/\1 \2/' |
  awk '{ n[$1] += $2 } END { for (c in n) printf "%s x %d, ", c, n[c] }' | sed 's/, $//')
grpc_codes=$(grep '^vane_grpc_requests_total{route="echo"' "$work/grpc-metrics.txt" |
  sed 's/.*grpc_status="\([0-9]*\)".* \([0-9.e+]*\)$/\1 \2/' |
  awk 'BEGIN { split("OK CANCELLED UNKNOWN INVALID_ARGUMENT DEADLINE_EXCEEDED NOT_FOUND ALREADY_EXISTS PERMISSION_DENIED RESOURCE_EXHAUSTED FAILED_PRECONDITION ABORTED OUT_OF_RANGE UNIMPLEMENTED INTERNAL UNAVAILABLE DATA_LOSS UNAUTHENTICATED", name, " ") }
       { n[$1] += $2 } END { for (c in n) printf "%s x %d, ", name[c + 1], n[c] }' | sed 's/, $//')
echo "demo: gRPC summary"
echo "  7.1.0 rolled back on its gRPC errors"
echo "  HTTP status of the calls through the proxy: $http_codes"
echo "  gRPC status of the same calls:              $grpc_codes"
if [ -z "$http_codes" ] || echo "$http_codes" | tr ',' '\n' | grep -qv '^ *200 x' || ! echo "$grpc_codes" | grep -q INTERNAL; then
  echo "demo: FAILED: expected HTTP 200 for every call and some INTERNAL gRPC statuses" >&2
  exit 1
fi
echo "  (HTTP status alone shows no failure: every INTERNAL is one of the 7.1.0 canary's, before the rollback)"
echo "demo: done; stopping everything"
