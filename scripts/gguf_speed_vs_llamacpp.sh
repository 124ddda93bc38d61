#!/usr/bin/env bash
# scripts/gguf_speed_vs_llamacpp.sh — CPU speed of autoround's runtime on GGUF files next to llama.cpp's (issue 7).
#
# The same .gguf file, the same thread count, both sides measured the same way: prefill = a PROMPT_TOKENS
# prompt from an empty KV cache; decode = DECODE_TOKENS single-token steps after an 8-token prompt; best of
# REPS runs each. autoround: bench/bench_inference.cpp (quantized weights stay packed, ops/cpu/quant_matmul.h).
# llama.cpp: node-llama-cpp's prebuilt Linux x64 CPU library (scripts/llamacpp/bench.mjs), installed into
# $LLAMACPP_DIR like scripts/gguf_llamacpp_check.sh does. Files: qwen3-nano and a random Qwen3-0.6B-shaped model
# (autoround init-model), each exported to q4_0 and q4_k_m with --iters 0 (RTN). Also the machine's read
# bandwidth (bench_inference --membw) and decode as a fraction of the bytes-moved bound (bandwidth / weight
# bytes read per token). Prints a markdown table. Not part of scripts/test.sh (minutes on 2 cores; the 0.6B
# export alone takes a few).
#
# Usage: scripts/gguf_speed_vs_llamacpp.sh     (each default can be overridden from the environment)
#   AUTOROUND=build/autoround  BENCH=build/bench_inference  LLAMACPP_DIR=build-llamacpp
#   NODE_LLAMA_CPP_VERSION=3.22.1  THREADS=2  PROMPT_TOKENS=128  DECODE_TOKENS=64  REPS=3
#   MODELS="../shared/models/qwen3-nano qwen3-0.6b"  (a folder, or a --like preset made with init-model,
#   with the Qwen3 tokenizer from TOKENIZER=../shared/tokenizers/qwen3)
#   FORMATS=gguf:q4_0,gguf:q4_k_m  OUT=$LLAMACPP_DIR/speed (exports are kept there and reused)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOROUND:-build/autoround}
BENCH=${BENCH:-build/bench_inference}
LLAMACPP_DIR=${LLAMACPP_DIR:-build-llamacpp}
VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
THREADS=${THREADS:-2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
DECODE_TOKENS=${DECODE_TOKENS:-64}
REPS=${REPS:-3}
MODELS=${MODELS:-"../shared/models/qwen3-nano qwen3-0.6b"}
TOKENIZER=${TOKENIZER:-../shared/tokenizers/qwen3}
FORMATS=${FORMATS:-gguf:q4_0,gguf:q4_k_m}
OUT=${OUT:-$LLAMACPP_DIR/speed}

# 1. node-llama-cpp with only the Linux x64 CPU binaries (no install scripts, no other platforms).
scripts/llamacpp/install.sh "$LLAMACPP_DIR" "$VERSION"

# 2. autoround and the bench.
if [ ! -x "$BIN" ] || [ ! -x "$BENCH" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"${JOBS:-1}" --target autoround bench_inference
  BIN=build/autoround BENCH=build/bench_inference
fi

# 3. the GGUF files (kept between runs).
mkdir -p "$OUT"
files=()
for m in $MODELS; do
  if [ -d "$m" ]; then src=$m; name=$(basename "$m")
  else src=$OUT/$m-random; name=$m
    [ -f "$src/config.json" ] || "$BIN" init-model --like "$m" --output "$src" --tokenizer_from "$TOKENIZER" --overwrite >&2
  fi
  dst=$OUT/$name
  if [ -z "$(find "$dst" -name '*.gguf' 2>/dev/null | head -1)" ]; then
    "$BIN" quantize --model "$src" --iters 0 --disable_opt_rtn --format "$FORMATS" --output_dir "$dst" --quiet >&2
  fi
  while IFS= read -r f; do files+=("$f"); done < <(find "$dst" -name '*.gguf' | sort)
done

# 4. both sides, one row per file.
bw=$("$BENCH" --membw --threads "$THREADS" | tail -1)
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $THREADS threads; read bandwidth $bw"
echo
echo "| file | weights read / token | prefill $PROMPT_TOKENS tok: autoround | llama.cpp | ratio | decode $DECODE_TOKENS tok: autoround | llama.cpp | ratio | decode vs bytes-moved bound: autoround | llama.cpp |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for f in "${files[@]}"; do
  ar=$("$BENCH" --model "$f" --threads "$THREADS" --prompt_tokens "$PROMPT_TOKENS" --decode_tokens "$DECODE_TOKENS" \
    --reps "$REPS" | tail -1)
  lc=$(LLAMACPP_DIR="$LLAMACPP_DIR" node scripts/llamacpp/bench.mjs --model "$f" --threads "$THREADS" \
    --prompt-tokens "$PROMPT_TOKENS" --decode-tokens "$DECODE_TOKENS" --reps "$REPS")
  node -e '
    const [f, ar, lc, bw] = process.argv.slice(1).map((s, i) => i ? JSON.parse(s) : s);
    const bound = bw.read_gbs * 1e3 / ar.weight_mb;  // tok/s if decode moved only the weights at the read bandwidth
    const name = f.split("/").slice(-2).join("/");
    const pct = (x) => (100 * x / bound).toFixed(0) + " %";
    console.log(`| ${name} | ${ar.weight_mb.toFixed(1)} MB | ${ar.prefill_tps.toFixed(1)} | ${lc.prefill_tps.toFixed(1)} | ` +
      `${(ar.prefill_tps / lc.prefill_tps).toFixed(2)} | ${ar.decode_tps.toFixed(1)} | ${lc.decode_tps.toFixed(1)} | ` +
      `${(ar.decode_tps / lc.decode_tps).toFixed(2)} | ${pct(ar.decode_tps)} | ${pct(lc.decode_tps)} |`);
  ' "$f" "$ar" "$lc" "$bw"
done
echo
echo "tok/s, best of $REPS runs per side (other processes may share the cores); bound = read bandwidth / weight bytes per token"
