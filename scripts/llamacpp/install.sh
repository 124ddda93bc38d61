#!/usr/bin/env bash
# scripts/llamacpp/install.sh — installs node-llama-cpp with only its prebuilt Linux x64 CPU library (no install
# scripts, no other platforms' binaries) into $1 (default build-llamacpp), at version $2 (default 3.22.1).
# Idempotent; used by scripts/gguf_llamacpp_check.sh and scripts/gguf_speed_vs_llamacpp.sh.
set -euo pipefail
dir=${1:-build-llamacpp}
version=${2:-3.22.1}
if [ ! -d "$dir/node_modules/@node-llama-cpp/linux-x64" ]; then
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"autoround-llamacpp-check","private":true}' > "$dir/package.json"
  npm install --prefix "$dir" "node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version" \
    --ignore-scripts --omit=optional --no-audit --no-fund
fi
