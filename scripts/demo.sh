#!/usr/bin/env bash
# scripts/demo.sh — set up, build, and run the main job end to end, offline, on qwen3-nano:
# model info, greedy generation, a chat turn, and WikiText-2 perplexity.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-../shared/models/qwen3-nano}
./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DAUTOROUND_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target autoround
./build/autoround info --model "$MODEL"
./build/autoround generate --model "$MODEL" --prompt "Once upon a time, there was a little girl named Lily. She loved to" \
  --temperature 0 --max_new_tokens 32
./build/autoround generate --model "$MODEL" --chat --system "You are a helpful assistant." \
  --prompt "Write a short story about a cat who learns to read." --max_new_tokens 48 --seed 1
./build/autoround eval ppl --model "$MODEL" --data ../shared/data/text/wikitext-2-raw/wiki.test.raw --seqlen 512 --max_tokens 32768
