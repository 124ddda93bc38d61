#!/usr/bin/env bash
# scripts/gpu_resume_check.sh — the GPU (resident-chain) resume path end to end, on a machine with a CUDA device:
# `quantize --device cuda` on qwen3-nano, killed with SIGKILL once two blocks are checkpointed, then the same command
# again; the resumed export must carry "resumed": true for the finished blocks and equal, file for file, an
# uninterrupted run (two uninterrupted runs are compared first: if the device path is not bit-reproducible the script
# says so and compares perplexities instead).
# Usage: AR=build-cuda/autoround SHARED=../shared [ITERS=50] [PRECISION=fp32|bf16] scripts/gpu_resume_check.sh
# (DEVICE=cpu runs the same check on the CPU path, to try the script without a GPU.)
set -euo pipefail
AR=${AR:-build-cuda/autoround}
SHARED=${SHARED:-../shared}
ITERS=${ITERS:-50}
PRECISION=${PRECISION:-fp32}
DEVICE=${DEVICE:-cuda}
GPU_ARGS=""
[ "$DEVICE" = cuda ] && GPU_ARGS="--gpu_precision $PRECISION"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
args() {
    echo "quantize --model $SHARED/models/qwen3-nano --output_dir $1 --iters $ITERS --nsamples 16 --seqlen 128" \
         "--batch_size 8 --dataset $SHARED/data/text/c4-sample.jsonl:shuffle=false --device $DEVICE" \
         "$GPU_ARGS --format auto_gptq --quiet"
}
files() { (cd "$1" && find . -type f ! -name quantize_report.json ! -name README.md | sort); }
same_tree() {
    [ "$(files "$1")" = "$(files "$2")" ] || return 1
    for f in $(files "$1"); do cmp -s "$1/$f" "$2/$f" || return 1; done
}

$AR $(args "$T/a") >/dev/null
$AR $(args "$T/a2") >/dev/null
if same_tree "$T/a/qwen3-nano-w4g128" "$T/a2/qwen3-nano-w4g128"; then repro=1; else repro=0; fi
echo "two uninterrupted runs bit-identical: $repro"

ck="$T/b/qwen3-nano-w4g128.resume"
$AR $(args "$T/b") >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 3000); do
    if [ -e "$ck/block-0001.json" ]; then kill -9 $pid; break; fi
    if ! kill -0 $pid 2>/dev/null; then echo "FAIL: the run ended before it could be killed"; exit 1; fi
    sleep 0.02
done
wait $pid 2>/dev/null || true
[ -e "$ck/block-0001.json" ] || { echo "FAIL: no checkpoint"; exit 1; }
[ ! -e "$T/b/qwen3-nano-w4g128" ] || { echo "FAIL: an output folder appeared before the run ended"; exit 1; }
echo "killed with $(ls "$ck" | grep -c '^block-.*json$') blocks checkpointed"
$AR $(args "$T/b") >/dev/null
rep="$T/b/qwen3-nano-w4g128/quantize_report.json"
resumed=$(grep -o '"resumed": *true' "$rep" | wc -l)
echo "blocks resumed: $resumed"
[ "$resumed" -ge 2 ] || { echo "FAIL: fewer than 2 blocks resumed"; exit 1; }
[ ! -e "$ck" ] || { echo "FAIL: the checkpoint was not removed"; exit 1; }
if [ $repro = 1 ]; then
    same_tree "$T/a/qwen3-nano-w4g128" "$T/b/qwen3-nano-w4g128" || { echo "FAIL: resumed export differs"; exit 1; }
    echo "PASS: the resumed export equals the uninterrupted one file for file"
else
    for d in a b; do
        $AR eval ppl --model "$T/$d/qwen3-nano-w4g128" --data "$SHARED/data/text/wikitext-2-raw/wiki.test.raw" \
            --seqlen 512 --max_tokens 16384 --device $DEVICE --json 2>/dev/null | grep -o '"ppl": *[0-9.]*'
    done
    echo "PASS (not bit-reproducible on this path: compare the two perplexities above)"
fi
