// ops/cpu/rope.h — rotary position embedding, rotate-half (NeoX) convention.
// Dimension i pairs with i + D/2: out[i] = x[i]cos_i − x[i+D/2]sin_i, out[i+D/2] = x[i+D/2]cos_i + x[i]sin_i.
// Inverse frequencies are computed in float32 as transformers does (1 / theta^(2j/D)), with the
// optional linear or Llama-3 frequency scaling.
#pragma once

#include <cstdint>
#include <vector>

#include "io/model_config.h"

namespace autoround {

// inv_freq[j], j < head_dim/2.
std::vector<float> rope_inv_freq(const RopeConfig& rope, int head_dim);

// Applies RoPE in place to x [T, n_heads, head_dim] with positions pos[T].
void rope_apply(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                const std::vector<float>& inv_freq);

}  // namespace autoround
