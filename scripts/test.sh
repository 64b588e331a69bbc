#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs, builds, runs every
# test (unit, integration, end-to-end) with ctest, then the same suite built
# with AddressSanitizer + UndefinedBehaviorSanitizer (VANE_SKIP_SANITIZE=1 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

start=$(date +%s)
echo "== build (RelWithDebInfo)"
bash scripts/build.sh build -DVANE_DEBUG_INFO=lines
echo "== tests"
ctest --test-dir build --output-on-failure --timeout 900 -j "${VANE_TEST_JOBS:-2}"

if [ "${VANE_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== build (ASan + UBSan)"
  bash scripts/build.sh build-asan -DVANE_SANITIZE=ON -DVANE_DEBUG_INFO=lines
  echo "== tests under ASan + UBSan"
  # Big-body streaming is exercised with 64 MiB here; the release run above streams 1 GiB.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    VANE_TEST_BIG_BYTES=$((64 << 20)) \
    ctest --test-dir build-asan --output-on-failure --timeout 900 -j "${VANE_TEST_JOBS:-2}"
fi
echo "== all tests passed in $(( $(date +%s) - start ))s"
