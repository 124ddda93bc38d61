#!/usr/bin/env bash
# scripts/fuzz.sh — build the libFuzzer targets (clang, ASan+UBSan) and run each for N seconds.
# Targets: fuzz/*.cpp (safetensors header parser, JSON config loaders, tokenizer, chat templates).
# Usage: scripts/fuzz.sh [seconds=60]. Crashes leave a reproducer in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOROUND_FUZZ=ON \
  -DAUTOROUND_TESTS=OFF -DAUTOROUND_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"${JOBS:-$(nproc)}"
mkdir -p build-fuzz/crashes
export AR_SHARED_DIR="$(cd ../shared && pwd)"
for src in fuzz/*.cpp; do
  name=$(basename "$src" .cpp)
  corpus="build-fuzz/corpus/$name"; mkdir -p "$corpus"
  seeds="fuzz/seeds/$name"; [ -d "$seeds" ] || seeds=""
  echo "-- $name (${SECS}s)"
  ./build-fuzz/"$name" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix=build-fuzz/crashes/"$name"- "$corpus" $seeds 2>&1 | grep -E "^(stat::number_of_executed_units|==|SUMMARY)|ERROR" || true
  if ls build-fuzz/crashes/"$name"-* >/dev/null 2>&1; then echo "fuzz: $name found a crash"; exit 1; fi
done
