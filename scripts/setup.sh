#!/usr/bin/env bash
# scripts/setup.sh — install the Debian packages autoround.cpp builds and tests with (idempotent).
# Only installs what is missing; needs root (or sudo) the first time.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config   # toolchain
  nlohmann-json3-dev libcli11-dev                # JSON configs, command line
  libpcre2-dev libutf8proc-dev                   # tokenizer: Unicode regex, NFC
  libopenblas-dev zlib1g-dev libbz2-dev          # BLAS for prefill GEMMs, gzip, bzip2 (eval data)
  libcurl4-openssl-dev libssl-dev                # Hub downloads/uploads, SHA-256
  libsnappy-dev libzstd-dev                      # Parquet pages (datasets)
  libpng-dev libjpeg62-turbo-dev                 # images for Qwen3-VL
  libgtest-dev libgmock-dev libbenchmark-dev     # tests and benchmarks
  clang libclang-rt-14-dev                       # libFuzzer targets, sanitizers
  python3 python3-jinja2                         # reference renders of chat templates (tests only)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
