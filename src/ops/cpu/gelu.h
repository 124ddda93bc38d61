// ops/cpu/gelu.h — GELU activations (float32), the two forms the Qwen3-VL vision tower uses:
//   gelu_tanh : 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))  (hidden_act "gelu_pytorch_tanh", block MLPs)
//   gelu_erf  : 0.5·x·(1 + erf(x/√2))                        (nn.GELU() default, the patch mergers)
// Computed in float32 in the same operation order as PyTorch's CPU kernels.
#pragma once

#include <cstdint>

namespace autoround {

// x, y: [n] (may alias).
void gelu_tanh(const float* x, int64_t n, float* y);
void gelu_erf(const float* x, int64_t n, float* y);

}  // namespace autoround
