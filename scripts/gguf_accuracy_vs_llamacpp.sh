#!/usr/bin/env bash
# scripts/gguf_accuracy_vs_llamacpp.sh — GGUF accuracy of qwen3-nano against llama.cpp's own quantization (issue 7).
#
# For each GGUF type in $TYPES four files, all scored by the real llama.cpp (node-llama-cpp's prebuilt CPU
# library, scripts/llamacpp/check_gguf.mjs) and by autoround's `eval ppl`, on the same token ids and windows:
#   bf16              autoround's bf16 GGUF export (plain RTN run, `--format gguf:bf16`), one file for all types;
#   llama.cpp         llama.cpp's llama_model_quantize() of that bf16 file (what `llama-quantize` does without
#                     an imatrix), through scripts/llamacpp/quantize.c, built here with `cc ... -ldl`;
#   autoround RTN     `autoround quantize --iters 0 --disable_opt_rtn --format gguf:<type>`;
#   AutoRound         `autoround quantize --iters N --nsamples $NSAMPLES --seqlen $CALIB_SEQLEN
#                     --dataset $CALIB --format gguf:<type>`, one tuning run per type and per N in $ITERS
#                     (e.g. ITERS="50 200" gives one AutoRound column per count, the other files scored once).
# Prints a markdown table of perplexities on WikiText-2 test (llama.cpp-measured, autoround-measured in
# parentheses), plus how many tensors of the llama.cpp and AutoRound files are byte-identical to the
# autoround RTN file (scripts/llamacpp/gguf_diff.mjs; AutoRound = RTN everywhere means the tuning did not
# reach that type's export). The table is also written to $OUT/table.md.
# Exits non-zero when any step fails.
#
# Time on 2 CPU cores shared with other work, THREADS=1, 2 types, 16 windows of 1,024 tokens: about
# 3-3.5 minutes per scored file (~2.5 min llama.cpp, ~45 s autoround) plus the tuning, 0.7-2 s per
# block-iteration depending on the load, i.e. 6 blocks x 200 iters = 15-45 minutes per type. Measured:
# ITERS="50 200" (9 files, 4 tuning runs) took 102 minutes; the default ITERS=200 (7 files) is about
# 80 minutes. ITERS=50 quarters the tuning; MAX_TOKENS=8192 halves the scoring.
# Not part of scripts/test.sh: it downloads node-llama-cpp (~85 MB) into $LLAMACPP_DIR on first use.
#
# Usage: scripts/gguf_accuracy_vs_llamacpp.sh      (defaults below; each can be overridden from the environment)
#   AUTOROUND=build/autoround  LLAMACPP_DIR=build-llamacpp  NODE_LLAMA_CPP_VERSION=3.22.1  CC=cc
#   MODEL=../shared/models/qwen3-nano  DATA=../shared/data/text/wikitext-2-raw/wiki.test.raw
#   SEQLEN=1024  MAX_TOKENS=16384  THREADS=1 (scoring)  QUANT_THREADS= (quantize runs; empty = all cores)
#   TYPES="q4_0 q4_k_m" (any of q4_0 q4_1 q8_0 q4_k_s q4_k_m q6_k)
#   ITERS=200 (a list, e.g. "50 200": a column per count)  NSAMPLES=128  CALIB_SEQLEN=512
#   CALIB=../shared/data/text/c4-sample.jsonl
#   OUT=$LLAMACPP_DIR/accuracy (deleted and recreated)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${AUTOROUND:-build/autoround}
LLAMACPP_DIR=${LLAMACPP_DIR:-build-llamacpp}
VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
CC=${CC:-cc}
MODEL=${MODEL:-../shared/models/qwen3-nano}
DATA=${DATA:-../shared/data/text/wikitext-2-raw/wiki.test.raw}
SEQLEN=${SEQLEN:-1024}
MAX_TOKENS=${MAX_TOKENS:-16384}
THREADS=${THREADS:-1}
QUANT_THREADS=${QUANT_THREADS:-}
TYPES=${TYPES:-q4_0 q4_k_m}
ITERS=${ITERS:-200}
NSAMPLES=${NSAMPLES:-128}
CALIB_SEQLEN=${CALIB_SEQLEN:-512}
CALIB=${CALIB:-../shared/data/text/c4-sample.jsonl}
OUT=${OUT:-$LLAMACPP_DIR/accuracy}

for t in $TYPES; do
  case $t in
    q4_0|q4_1|q8_0|q4_k_s|q4_k_m|q6_k) ;;
    *) echo "gguf_accuracy_vs_llamacpp: unsupported type $t (q4_0 q4_1 q8_0 q4_k_s q4_k_m q6_k)" >&2; exit 2 ;;
  esac
done
[ -n "${ITERS// /}" ] || { echo "gguf_accuracy_vs_llamacpp: ITERS is empty" >&2; exit 2; }
for n in $ITERS; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "gguf_accuracy_vs_llamacpp: ITERS must be counts > 0, not $n" >&2; exit 2; }
done

start=$SECONDS
say() { printf '[%4ds] %s\n' $((SECONDS - start)) "$*" >&2; }
# Runs a command with its stdout in file $1 and its stderr in $1.err; shows both and fails when it fails.
logged() {
  local out=$1; shift
  if ! "$@" > "$out" 2> "$out.err"; then
    echo "gguf_accuracy_vs_llamacpp: failed: $*" >&2
    tail -n 20 "$out" "$out.err" >&2
    exit 1
  fi
}
# The single .gguf a quantize run wrote under a folder.
one_gguf() {
  local files
  files=$(find "$1" -name '*.gguf' | sort)
  if [ "$(printf '%s\n' "$files" | grep -c .)" != 1 ]; then
    echo "gguf_accuracy_vs_llamacpp: expected one .gguf under $1, found: ${files:-none}" >&2
    exit 1
  fi
  printf '%s\n' "$files"
}

# 1. node-llama-cpp with only the Linux x64 CPU binaries, and the C quantizer against its libllama.
scripts/llamacpp/install.sh "$LLAMACPP_DIR" "$VERSION"
LIB=$LLAMACPP_DIR/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so
QUANTIZE=$LLAMACPP_DIR/quantize
if [ ! -x "$QUANTIZE" ] || [ scripts/llamacpp/quantize.c -nt "$QUANTIZE" ]; then
  "$CC" -O1 -o "$QUANTIZE" scripts/llamacpp/quantize.c -ldl
fi

# 2. autoround itself.
if [ ! -x "$BIN" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"${JOBS:-1}"
  BIN=build/autoround
fi

rm -rf "$OUT"
mkdir -p "$OUT/log" "$OUT/ppl"
QT=()
[ -n "$QUANT_THREADS" ] && QT=(--threads "$QUANT_THREADS")
logged "$OUT/ids.json" "$BIN" tokenize --model "$MODEL" --file "$DATA" --json

# 3. the files: bf16 once, then llama.cpp / RTN / AutoRound per type.
say "bf16 export"
logged "$OUT/log/bf16.txt" "$BIN" quantize --model "$MODEL" --iters 0 --disable_opt_rtn --format gguf:bf16 \
  --output_dir "$OUT/bf16" --quiet "${QT[@]}"
BF16=$(one_gguf "$OUT/bf16")
declare -A FILE
for t in $TYPES; do
  say "$t: llama.cpp quantize"
  mkdir -p "$OUT/llamacpp-$t"
  FILE[$t.lc]=$OUT/llamacpp-$t/$(basename "$BF16" | sed "s/-BF16\.gguf\$//")-llamacpp-${t^^}.gguf
  logged "$OUT/log/llamacpp-$t.txt" "$QUANTIZE" --lib "$LIB" --threads "${QUANT_THREADS:-0}" \
    "$BF16" "${FILE[$t.lc]}" "$t"
  say "$t: autoround RTN"
  logged "$OUT/log/rtn-$t.txt" "$BIN" quantize --model "$MODEL" --iters 0 --disable_opt_rtn --format "gguf:$t" \
    --output_dir "$OUT/rtn-$t" --quiet "${QT[@]}"
  FILE[$t.rtn]=$(one_gguf "$OUT/rtn-$t")
  node scripts/llamacpp/gguf_diff.mjs "${FILE[$t.lc]}" "${FILE[$t.rtn]}" > "$OUT/ppl/$t.lc-vs-rtn.json"
  for n in $ITERS; do
    say "$t: AutoRound ($n iters)"
    logged "$OUT/log/autoround$n-$t.txt" "$BIN" quantize --model "$MODEL" --iters "$n" --nsamples "$NSAMPLES" \
      --seqlen "$CALIB_SEQLEN" --dataset "$CALIB" --format "gguf:$t" --output_dir "$OUT/autoround$n-$t" \
      --no_resume --quiet "${QT[@]}"
    FILE[$t.ar$n]=$(one_gguf "$OUT/autoround$n-$t")
    node scripts/llamacpp/gguf_diff.mjs "${FILE[$t.ar$n]}" "${FILE[$t.rtn]}" > "$OUT/ppl/$t.ar$n-vs-rtn.json"
  done
done

# 4. perplexity of every file, both sides.
measure() {  # key file
  say "score $1 ($(basename "$2"))"
  logged "$OUT/ppl/$1.autoround.json" "$BIN" eval ppl --model "$2" --data "$DATA" --seqlen "$SEQLEN" \
    --max_tokens "$MAX_TOKENS" --threads "$THREADS" --json
  logged "$OUT/ppl/$1.llamacpp.json" env LLAMACPP_DIR="$LLAMACPP_DIR" node scripts/llamacpp/check_gguf.mjs \
    --model "$2" --ids "$OUT/ids.json" --seqlen "$SEQLEN" --max-tokens "$MAX_TOKENS" --threads "$THREADS"
}
measure bf16 "$BF16"
for t in $TYPES; do
  measure "$t.lc" "${FILE[$t.lc]}"
  measure "$t.rtn" "${FILE[$t.rtn]}"
  for n in $ITERS; do measure "$t.ar$n" "${FILE[$t.ar$n]}"; done
done

# 5. the table.
cell() {  # key -> "llama.cpp ppl (autoround ppl)"
  node -e 'const fs = require("fs");
    const r = f => JSON.parse(fs.readFileSync(f, "utf8").trim().split("\n").pop());
    const lc = r(process.argv[1]), ar = r(process.argv[2]);
    if (lc.predictions !== ar.predictions)
      throw new Error(`${process.argv[1]}: ${lc.predictions} vs ${ar.predictions} predictions`);
    process.stdout.write(`${lc.ppl.toFixed(2)} (${ar.ppl.toFixed(2)})`);' \
    "$OUT/ppl/$1.llamacpp.json" "$OUT/ppl/$1.autoround.json"
}
same() {  # diff json -> "identical/total"
  node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    process.stdout.write(`${d.identical}/${d.tensors}`);' "$1"
}
windows=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).windows' \
  "$OUT/ppl/bf16.llamacpp.json")
{
  echo "WikiText-2 test perplexity of $(basename "$MODEL"), $windows windows of $SEQLEN tokens: llama.cpp-measured" \
       "(node-llama-cpp $VERSION), autoround \`eval ppl\` in parentheses. AutoRound: $NSAMPLES x $CALIB_SEQLEN" \
       "tokens of $(basename "$CALIB"). \"= RTN\" columns: tensors byte-identical to the autoround RTN file."
  echo
  head="| type | bf16 | llama.cpp quantize | autoround RTN |"
  rule="|---|---|---|---|"
  for n in $ITERS; do head+=" AutoRound ($n iters) |"; rule+="---|"; done
  head+=" llama.cpp = RTN |"; rule+="---|"
  for n in $ITERS; do head+=" AutoRound ($n) = RTN |"; rule+="---|"; done
  echo "$head"
  echo "$rule"
  for t in $TYPES; do
    row="| $t | $(cell bf16) | $(cell "$t.lc") | $(cell "$t.rtn") |"
    for n in $ITERS; do row+=" $(cell "$t.ar$n") |"; done
    row+=" $(same "$OUT/ppl/$t.lc-vs-rtn.json") |"
    for n in $ITERS; do row+=" $(same "$OUT/ppl/$t.ar$n-vs-rtn.json") |"; done
    echo "$row"
  done
} | tee "$OUT/table.md"
say "done"
