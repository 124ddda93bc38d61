#!/usr/bin/env bash
# scripts/accuracy_table.sh — reproduces Intel AutoRound's accuracy table on qwen3-nano
# (../shared/reference/peer-autoround/README.md) with autoround.cpp: same calibration recipe (c4-sample in
# file order, the first 128 documents of >= 512 tokens cut to 512; batch 8, seed 42) and the same perplexity
# recipe (WikiText-2 test and held-out C4 = c4-sample documents 900-999 joined by "\n\n"; first 65,536
# tokens; 64 windows of 1,024).
#
#   scripts/accuracy_table.sh run    OUTDIR [CONFIG...]   quantize + evaluate (all configs by default)
#   scripts/accuracy_table.sh report OUTDIR               OUTDIR/accuracy.md: ours next to the peer's
#
# Configs: bf16 W4G128-rtn W4G128-ar200 W4G128-asym-ar200 W3G128-rtn W3G128-ar200 W2G64-rtn W2G64-ar200
#          W4G128-ar1000
# Environment: AR (binary, default build/autoround), SHARED (default ../shared), THREADS (per config, default
# all cores), PARALLEL=1 runs the configs concurrently (give each THREADS_<config with - as _>=N threads),
# DEVICE=cuda tunes on the GPU (GPU_PRECISION=fp32|bf16, default fp32), QUANT_ARGS adds quantize flags (e.g.
# --fp8_backward), EVAL_ARGS eval flags (e.g. --device cuda), TIMEOUT=seconds stops unfinished quantizations (they resume from their checkpoint when run again).
# Each config writes OUTDIR/<config>.json (one line) and OUTDIR/<config>.log. `report` needs jq.
#
# On 2 cores a 200-iteration config takes ~15 min and the 1000-iteration one ~70 min (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?usage: $0 run|report OUTDIR [CONFIG...]}
OUTDIR=${2:?usage: $0 run|report OUTDIR [CONFIG...]}
shift 2
AR=${AR:-build/autoround}
SHARED=${SHARED:-../shared}
MODEL=${MODEL:-$SHARED/models/qwen3-nano}
WT2=$SHARED/data/text/wikitext-2-raw/wiki.test.raw
C4=$SHARED/data/text/c4-sample.jsonl
ALL="bf16 W4G128-rtn W4G128-ar200 W4G128-asym-ar200 W3G128-rtn W3G128-ar200 W2G64-rtn W2G64-ar200 W4G128-ar1000"
mkdir -p "$OUTDIR"
C4HELD=${C4HELD:-$OUTDIR/c4held.txt}

config_args() {
  case $1 in
    W4G128-rtn)        echo "--scheme W4A16 --iters 0 --disable_opt_rtn" ;;
    W4G128-ar200)      echo "--scheme W4A16 --iters 200" ;;
    W4G128-asym-ar200) echo "--scheme W4A16 --asym --iters 200" ;;
    W3G128-rtn)        echo "--scheme W3A16 --iters 0 --disable_opt_rtn" ;;
    W3G128-ar200)      echo "--scheme W3A16 --iters 200" ;;
    W2G64-rtn)         echo "--scheme W2A16G64 --iters 0 --disable_opt_rtn" ;;
    W2G64-ar200)       echo "--scheme W2A16G64 --iters 200" ;;
    W4G128-ar1000)     echo "--scheme W4A16 --iters 1000" ;;
    *) echo "unknown config $1 (known: $ALL)" >&2; return 1 ;;
  esac
}

ppl_of() {  # model data threads -> ppl
  # shellcheck disable=SC2086
  "$AR" eval ppl --model "$1" --data "$2" --seqlen 1024 --max_tokens 65536 --json --threads "$3" ${EVAL_ARGS:-} |
    grep -o '"ppl":[0-9.eE+-]*' | cut -d: -f2
}

run_config() {
  local name=$1 threads=$2 dir="$OUTDIR/$1" log="$OUTDIR/$1.log" model qs=null
  if [ "$name" = bf16 ]; then
    model=$MODEL
  else
    local args
    args=$(config_args "$name")
    local t0=$SECONDS
    # shellcheck disable=SC2086
    ${TIMEOUT:+timeout "$TIMEOUT"} "$AR" quantize --model "$MODEL" --output_dir "$dir" $args --nsamples 128 \
      --seqlen 512 --batch_size 8 --seed 42 --dataset "$C4:shuffle=false" --format auto_round --threads "$threads" \
      --device "${DEVICE:-cpu}" ${GPU_PRECISION:+--gpu_precision "$GPU_PRECISION"} ${QUANT_ARGS:-} \
      --overwrite >"$log" 2>&1 || { echo "$name: quantize stopped (see $log)"; return 0; }
    qs=$((SECONDS - t0))
    model=$(ls -d "$dir"/qwen3-nano-*)
  fi
  local w c
  w=$(ppl_of "$model" "$WT2" "$threads")
  c=$(ppl_of "$model" "$C4HELD" "$threads")
  printf '{"cfg": "%s", "wt2": %s, "c4held": %s, "quant_s": %s, "threads": %s, "device": "%s"}\n' "$name" "$w" "$c" \
    "$qs" "$threads" "${DEVICE:-cpu}${GPU_PRECISION:+-$GPU_PRECISION}" >"$OUTDIR/$name.json"
  echo "$name: wt2 $w c4held $c (quantize ${qs}s, $threads threads)"
}

case $cmd in
  run)
    [ -f "$C4HELD" ] || {
      command -v jq >/dev/null || { echo "need jq to cut c4held from $C4 (or set C4HELD)" >&2; exit 1; }
      jq -rs '.[900:1000] | map(.text) | join("\n\n")' "$C4" | head -c -1 >"$C4HELD"
    }
    configs=${*:-$ALL}
    for c in $configs; do
      [ "$c" = bf16 ] || config_args "$c" >/dev/null
      v=THREADS_${c//-/_}
      t=${!v:-${THREADS:-$(nproc)}}
      if [ "${PARALLEL:-0}" = 1 ]; then run_config "$c" "$t" & else run_config "$c" "$t"; fi
    done
    wait
    ;;
  report)
    peer=$SHARED/reference/peer-autoround/accuracy.jsonl
    {
      echo "| config | wt2 ppl (ours) | wt2 ppl (peer) | Δ wt2 | c4held (ours) | c4held (peer) | Δ c4held | quantize s (ours, CPU threads) | quantize s (peer, H100) |"
      echo "|---|---|---|---|---|---|---|---|---|"
      for c in $ALL; do
        [ -f "$OUTDIR/$c.json" ] || continue
        jq -rn --slurpfile o "$OUTDIR/$c.json" --slurpfile p <(grep "\"cfg\": \"$c\"" "$peer") '
          ($o[0]) as $a | ($p[0]) as $b |
          def d(x; y): ((x / y - 1) * 100 * 100 | round / 100 | tostring) + "%";
          "| \($a.cfg) | \($a.wt2 * 1000 | round / 1000) | \($b.wt2 * 1000 | round / 1000) | \(d($a.wt2; $b.wt2)) | " +
          "\($a.c4held * 1000 | round / 1000) | \($b.c4held * 1000 | round / 1000) | \(d($a.c4held; $b.c4held)) | " +
          "\(if $a.quant_s == null then "—" else "\($a.quant_s) (\($a.threads))" end) | " +
          "\(if $b.quant_s == null then "—" else ($b.quant_s * 10 | round / 10 | tostring) end) |"'
      done
    } >"$OUTDIR/accuracy.md"
    cat "$OUTDIR/accuracy.md"
    ;;
  *) echo "usage: $0 run|report OUTDIR [CONFIG...]" >&2; exit 1 ;;
esac
