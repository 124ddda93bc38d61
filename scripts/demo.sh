#!/usr/bin/env bash
# scripts/demo.sh — set up, build, and run the main job end to end, offline, on qwen3-nano:
# inspect the model, generate, quantize it with AutoRound (W4G128, short schedule) into the
# auto_round / auto_gptq / auto_awq formats, then compare perplexity before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-../shared/models/qwen3-nano}
OUT=${OUT:-/tmp/autoround-demo}
ITERS=${ITERS:-20}
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target autoround
AR=./build/autoround
$AR info --model "$MODEL"
$AR generate --model "$MODEL" --prompt "Once upon a time, there was a little girl named Lily. She loved to" \
  --temperature 0 --max_new_tokens 32
$AR generate --model "$MODEL" --chat --system "You are a helpful assistant." \
  --prompt "Write a short story about a cat who learns to read." --max_new_tokens 48 --seed 1
$AR quantize --model "$MODEL" --output_dir "$OUT" --overwrite --scheme W4A16 --iters "$ITERS" \
  --nsamples 32 --seqlen 256 --batch_size 8 --dataset ../shared/data/text/c4-sample.jsonl:shuffle=false \
  --format auto_round,auto_gptq,auto_awq
Q="$OUT/$(basename "$MODEL")-w4g128"
$AR eval ppl --model "$MODEL" --model "$Q/auto-round-auto-gptq" --model "$Q/auto-gptq" --model "$Q/auto-awq" \
  --data ../shared/data/text/wikitext-2-raw/wiki.test.raw --seqlen 1024 --max_tokens 16384
