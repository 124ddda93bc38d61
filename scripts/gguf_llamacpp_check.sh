#!/usr/bin/env bash
# scripts/gguf_llamacpp_check.sh — checks autoround's GGUF exports with the real llama.cpp (issue 7).
#
# For each exported GGUF of qwen3-nano: autoround's own `eval ppl` and greedy `generate` on the .gguf, and
# the same through llama.cpp (node-llama-cpp's prebuilt Linux x64 CPU library, scripts/llamacpp/check_gguf.mjs)
# on the same token ids and windows. Prints a markdown table; fails when a perplexity differs by more than 1 %.
# Not part of scripts/test.sh: it downloads node-llama-cpp (~85 MB, Linux x64 binaries only) into
# $LLAMACPP_DIR on first use and takes a few minutes.
#
# Usage: scripts/gguf_llamacpp_check.sh            (defaults below; each can be overridden from the environment)
#   AUTOROUND=build/autoround  LLAMACPP_DIR=build-llamacpp  NODE_LLAMA_CPP_VERSION=3.22.1
#   MODEL=../shared/models/qwen3-nano  DATA=../shared/data/text/wikitext-2-raw/wiki.test.raw
#   SEQLEN=1024  MAX_TOKENS=16384  NEW_TOKENS=32  THREADS=1  ITERS=0 (plain RTN; >0 tunes with SignRound first)
#   FORMATS=gguf:bf16,gguf:f16,gguf:q8_0,gguf:q6_k,gguf:q4_k_m,gguf:q4_k_s,gguf:q4_1,gguf:q4_0
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOROUND:-build/autoround}
LLAMACPP_DIR=${LLAMACPP_DIR:-build-llamacpp}
VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
MODEL=${MODEL:-../shared/models/qwen3-nano}
DATA=${DATA:-../shared/data/text/wikitext-2-raw/wiki.test.raw}
SEQLEN=${SEQLEN:-1024}
MAX_TOKENS=${MAX_TOKENS:-16384}
NEW_TOKENS=${NEW_TOKENS:-32}
THREADS=${THREADS:-1}
ITERS=${ITERS:-0}
FORMATS=${FORMATS:-gguf:bf16,gguf:f16,gguf:q8_0,gguf:q6_k,gguf:q4_k_m,gguf:q4_k_s,gguf:q4_1,gguf:q4_0}
PROMPT=${PROMPT:-"The history of the city begins"}
OUT=${OUT:-$LLAMACPP_DIR/out}

# 1. node-llama-cpp with only the Linux x64 CPU binaries (no install scripts, no other platforms).
scripts/llamacpp/install.sh "$LLAMACPP_DIR" "$VERSION"

# 2. autoround itself.
if [ ! -x "$BIN" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"${JOBS:-1}"
  BIN=build/autoround
fi

# 3. the exports (one .gguf per format) and the token ids both sides score.
rm -rf "$OUT"
mkdir -p "$OUT"
RTN_FLAGS=()
[ "$ITERS" = "0" ] && RTN_FLAGS=(--disable_opt_rtn)
"$BIN" quantize --model "$MODEL" --iters "$ITERS" "${RTN_FLAGS[@]}" --format "$FORMATS" --output_dir "$OUT/export" --quiet
"$BIN" tokenize --model "$MODEL" --file "$DATA" --json > "$OUT/ids.json"
"$BIN" tokenize --model "$MODEL" --text "$PROMPT" --json > "$OUT/prompt.json"

# 4. both sides, one row per file.
echo "| file | autoround ppl | llama.cpp ppl | difference | greedy tokens equal | llama.cpp prefill tok/s | llama.cpp decode tok/s | |"
echo "|---|---|---|---|---|---|---|---|"
status=0
while IFS= read -r f; do
  "$BIN" eval ppl --model "$f" --data "$DATA" --seqlen "$SEQLEN" --max_tokens "$MAX_TOKENS" --threads "$THREADS" \
    --json 2>/dev/null > "$OUT/ar.json"
  greedy=$("$BIN" generate --model "$f" --prompt "$PROMPT" --temperature 0 --max_new_tokens "$NEW_TOKENS" \
    --ignore_eos --ids --no_stats --threads "$THREADS")
  LLAMACPP_DIR="$LLAMACPP_DIR" node scripts/llamacpp/check_gguf.mjs --model "$f" --ids "$OUT/ids.json" \
    --prompt-ids "$OUT/prompt.json" --seqlen "$SEQLEN" --max-tokens "$MAX_TOKENS" --new-tokens "$NEW_TOKENS" \
    --threads "$THREADS" > "$OUT/lc.json"
  node scripts/llamacpp/compare.mjs --autoround "$OUT/ar.json" --greedy "$greedy" --llamacpp "$OUT/lc.json" || status=1
done < <(find "$OUT/export" -name '*.gguf' | sort)
exit $status
