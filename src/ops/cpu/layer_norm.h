// ops/cpu/layer_norm.h — LayerNorm over the last dimension with weight and bias (float32 in and out).
// y = (x − mean(x)) / sqrt(var(x) + eps) · w + b, var the biased (population) variance, as in
// torch.nn.LayerNorm. Used by the Qwen3-VL vision tower (norm1/norm2 per block, the merger norms).
// Mean and variance are accumulated in double (two passes), so the result is within a few float32
// ulps of the exact value whatever the row length; PyTorch's float32 kernel is within tolerance of it.
#pragma once

#include <cstdint>

namespace autoround {

// x, y: [rows, dim] (may alias); w, b: [dim] (b may be null: no bias).
void layer_norm(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y);

}  // namespace autoround
