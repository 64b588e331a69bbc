#!/usr/bin/env bash
# scripts/differential.sh: the full differential HTTP/1.x conformance run
# (tests/differential/harness.py): every case of the corpus through vane-proxy,
# nginx and HAProxy, each in front of its own recording upstream on 127.0.0.1.
# Prints the summary table per class, every BUG-class case (vane forwards what
# both peers refuse, or its upstream sees a different number of requests than
# its client sent or got answers for) and every case where vane alone differs
# from the two peers; writes the JSON report and the markdown table.
#
#   bash scripts/differential.sh [--vane BIN] [--out DIR] [more harness flags]
#
# --vane defaults to build/proxy/vane-proxy; --out to tests/differential/results
# (report.json, summary.md). Exit status: the harness's (1: a BUG-class case not
# in its KNOWN_VANE_BUGS list; 2: a proxy did not start; 77: nginx or HAProxy
# missing). The short subset runs in ctest as differential_short.
set -euo pipefail
cd "$(dirname "$0")/.."
vane=build/proxy/vane-proxy
out=tests/differential/results
rest=()
while [ $# -gt 0 ]; do
  case "$1" in
    --vane) vane=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) rest+=("$1"); shift ;;
  esac
done

missing=0
for bin in /usr/bin/python3 /usr/sbin/nginx /usr/sbin/haproxy; do
  if [ ! -x "$bin" ]; then echo "differential: $bin is missing" >&2; missing=1; fi
done
if [ "$missing" = 1 ]; then
  echo "differential: install the Debian packages (python3 nginx haproxy), e.g. with bash scripts/setup.sh" >&2
  exit 77
fi
if [ ! -x "$vane" ]; then
  echo "differential: no vane-proxy at $vane; build it (bash scripts/build.sh) or pass --vane BIN" >&2
  exit 2
fi

mkdir -p "$out"
start=$(date +%s)
status=0
/usr/bin/python3 tests/differential/harness.py --vane "$vane" \
  --json "$out/report.json" --markdown "$out/summary.md" "${rest[@]}" || status=$?
echo "differential: wall time $(( $(date +%s) - start )) s; reports in $out/report.json and $out/summary.md"
exit "$status"
