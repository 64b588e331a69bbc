#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz (h2: vane's HTTP/2 frames both ways) for a bounded time each (clang,
# ASan + UBSan), starting from the seeds in tests/fuzz/corpus/ (and configs/
# for the config loader). A crash stops with the reproducer's path; its input
# belongs in tests/fuzz/regressions/ and a test.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(request config traffic matchers h2)
bash scripts/setup.sh
if ! command -v clang++ >/dev/null || ! dpkg -s libclang-rt-14-dev >/dev/null 2>&1; then
  echo "fuzz: installing clang and libclang-rt-14-dev (libFuzzer)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends clang libclang-rt-14-dev
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVANE_FUZZ=ON >/dev/null
fi
cmake --build build-fuzz --target $(printf 'fuzz_%s ' "${targets[@]}") -- -j "${VANE_JOBS:-$(nproc)}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  seeds=(tests/fuzz/corpus/"$t")
  [ "$t" = config ] && seeds+=(configs)
  echo "== fuzz_$t for ${seconds}s"
  # The corpus grows in $work; the seeds stay as committed.
  if ! build-fuzz/tests/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$work/$t-" -print_final_stats=1 "$work/$t" "${seeds[@]}" 2>"$work/$t.log"; then
    tail -40 "$work/$t.log"
    mkdir -p tests/fuzz/crashes
    cp "$work/$t"-* tests/fuzz/crashes/ 2>/dev/null || true
    echo "fuzz: fuzz_$t found a crash; reproducer copied to tests/fuzz/crashes/"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$work/$t.log" | sed 's/^/  /'
  echo "  corpus: $(ls "$work/$t" | wc -l) inputs"
done
echo "fuzz: no crash in ${targets[*]} (${seconds}s each)"
