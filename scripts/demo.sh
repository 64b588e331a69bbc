#!/usr/bin/env bash
# The live demo: two versions of vane-demo, vane-proxy in front with the 90/10
# split of configs/split.yaml, a few hundred requests, the share each version
# got. Everything runs on 127.0.0.1 on ports the OS picks, and stops cleanly
# (also on Ctrl-C).
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
echo "demo: done; stopping everything"
