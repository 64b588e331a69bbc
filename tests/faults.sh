#!/usr/bin/env bash
# The fault and load scenarios of tests/integration/faults_test.cpp, run
# longer than in CI: an open-loop load through vane-proxy while it is
# reloaded 100 times, gets 1,000 traffic PUTs, loses an upstream, talks to
# upstreams that reset or hang, and loses its canary mid-rollout. Prints one
# "faults:" line per phase: requests sent, answered, errors by cause.
#   tests/faults.sh [SECONDS_PER_PHASE]     (default 30; CI runs 4)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
bash scripts/setup.sh
[ -x build/tests/vane_integration_tests ] || bash scripts/build.sh build
cmake --build build --target vane_integration_tests vane-proxy vane-demo vane-bench >/dev/null
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
VANE_FAULT_SECONDS=$seconds build/tests/vane_integration_tests --gtest_filter='FaultsUnderLoad.*' >"$log" 2>&1 || status=$?
grep -v '^faults:' "$log" | grep -E '^\[ *(OK|FAILED|PASSED) *\]|Failure|Expected' || true
echo
echo "== faults, $seconds s of load per phase"
grep '^faults:' "$log" | sed 's/^faults: *//'
exit $status
