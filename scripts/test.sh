#!/usr/bin/env bash
# scripts/test.sh — set up, build and run the whole test suite (what .ci/run runs).
#   1. CUDA build (-DAUTOROUND_CUDA=ON, when nvcc is installed): compiles everything with the CUDA backend and
#      runs the GPU tests (label "gpu"), which skip cleanly on a machine without a GPU (first, so that the
#      log ends with the CPU test runs, which are the ones that execute on CI)
#   2. Release build + every test (unit, golden vs ../shared/reference, CLI end to end)
#   3. ASan + UBSan build of the tests (the slow whole-model golden and perplexity runs, incl. GgufPackedModel.Perplexity*, are left to step 2)
#   4. with --fuzz: every libFuzzer target for a bounded time (FUZZ_SECONDS, default 30); the same as
#      scripts/fuzz.sh, which is the documented way to fuzz (kept out of the default run for CI time)
# Usage: scripts/test.sh [--no-sanitize] [--fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."
SANITIZE=1; FUZZ=0
for a in "$@"; do
  case "$a" in
    --no-sanitize) SANITIZE=0 ;;
    --fuzz) FUZZ=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
JOBS=${JOBS:-$(nproc)}
test -d ../shared/models/qwen3-nano || { echo "error: ../shared (models, reference data) not found beside the checkout" >&2; exit 1; }

./scripts/setup.sh

if [ "${NO_CUDA:-0}" != 1 ] && { command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ]; }; then
  echo "== [1/4] CUDA build + GPU tests (skipped without a GPU)"
  cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUTOROUND_CUDA=ON -DAUTOROUND_BENCH=OFF
  cmake --build build-cuda -j"$JOBS" --target autoround autoround_cuda_tests
  ctest --test-dir build-cuda -L gpu --output-on-failure
fi

echo "== [2/4] release build + tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$JOBS"
# one OpenMP thread per test process: ctest runs $JOBS processes side by side
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "$SANITIZE" = 1 ]; then
  echo "== [3/4] ASan + UBSan build + tests"
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAUTOROUND_SANITIZE=ON \
        -DAUTOROUND_BENCH=OFF -DAUTOROUND_NATIVE=OFF
  cmake --build build-asan -j"$JOBS" --target autoround autoround_tests
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ./build-asan/autoround_tests --gtest_filter='-Qwen3Golden.WikiText*:Qwen3Golden.Greedy*:Cli.*:GgufPackedModel.Perplexity*'
fi

if [ "$FUZZ" = 1 ]; then
  echo "== [4/4] fuzz targets, ${FUZZ_SECONDS:-30}s each"
  ./scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
echo "== all tests passed"
