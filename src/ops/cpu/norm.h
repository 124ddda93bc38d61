// ops/cpu/norm.h — RMSNorm over the last dimension (float32 math).
// y = x * rsqrt(mean(x²) + eps) * w. Used for input/post-attention/final norms (dim = hidden)
// and for Qwen3's per-head q_norm/k_norm (dim = head_dim, applied to each head's slice).
#pragma once

#include <cstdint>

namespace autoround {

// x, y: [rows, dim] (may alias); w: [dim].
void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y);
// The same on the calling thread only (inside a parallel region: the decode team of model/qwen3_model.cpp);
// bit-identical to rmsnorm.
void rmsnorm_serial(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y);

}  // namespace autoround
