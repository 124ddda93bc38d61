// ops/cuda/gemm_peak.h — the bf16 tensor-core GEMM rate this card reaches (cuBLAS, bf16 A/B, FP32
// accumulation), measured on the spot: the denominator of "fraction of bf16 peak" in bench/bench_block_step.
// Plain C++ header; defined only in CUDA builds (there is no CPU stub: guard callers with AUTOROUND_HAVE_CUDA).
#pragma once

#include <cstdint>

namespace autoround {

// Best-of-`reps` TFLOP/s of C[M,N] (bf16) = A[M,K] · B[K,N] (bf16, FP32 compute) after a warm-up.
// Throws autoround::Error without a GPU or when the buffers do not fit.
double cuda_bf16_gemm_tflops(int64_t M, int64_t N, int64_t K, int reps);

}  // namespace autoround
