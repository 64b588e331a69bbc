#!/usr/bin/env bash
# ThreadSanitizer run: builds build-tsan (g++ -fsanitize=thread) and runs the
# tests where several threads meet — multi-worker proxying, metrics scraped
# while four workers count, policy swaps and reloads under traffic, drain,
# health checks, TLS and certificate rotation, faults under load, the
# controller — against TSan-built binaries. Bounded by
# ctest's per-test timeout; any data race fails the test (halt_on_error).
#   scripts/tsan.sh [CTEST_REGEX]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
regex=${1:-'^(Metrics|Admin|Health|Proxy|Routing|Control|Tls|UpstreamTls|FaultsUnderLoad)\.'}
start=$(date +%s)
VANE_BUILD_TYPE=RelWithDebInfo bash scripts/build.sh build-tsan -DVANE_TSAN=ON
# The unit tests are single-threaded; only the integration tests are run.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --test-dir build-tsan --output-on-failure --timeout 900 -j "${VANE_TEST_JOBS:-2}" -R "$regex"
echo "tsan: passed in $(( $(date +%s) - start ))s"
