#!/usr/bin/env bash
# The main job: install, build, and run the live demo on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VANE_BUILD_TYPE=${VANE_BUILD_TYPE:-Release} bash scripts/build.sh build-release -DVANE_BUILD_TESTS=OFF -DVANE_BUILD_BENCH=OFF
exec bash scripts/demo.sh build-release
