#!/usr/bin/env bash
# Configures and builds vane with CMake + Ninja (+ ccache when present).
#   scripts/build.sh [BUILD_DIR] [extra cmake args...]
# BUILD_DIR defaults to build/. Pass -DVANE_SANITIZE=ON for ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
# Configure on the first build, and whenever options are given (they must win
# over what an existing build directory was configured with).
if [ ! -f "$dir/build.ninja" ] || [ $# -gt 0 ]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="${VANE_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
fi
# Two compile jobs: the machine has 2 cores, and Beast TUs need ~1 GiB each.
cmake --build "$dir" -- -j "${VANE_JOBS:-$(nproc)}"
