// ops/cpu/rope.h — rotary position embedding, rotate-half (NeoX) convention.
// Dimension i pairs with i + D/2: out[i] = x[i]cos_i − x[i+D/2]sin_i, out[i+D/2] = x[i+D/2]cos_i + x[i]sin_i.
// Inverse frequencies are computed in float32 as transformers does (1 / theta^(2j/D)), with the
// optional linear or Llama-3 frequency scaling.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "io/model_config.h"

namespace autoround {

// inv_freq[j], j < head_dim/2.
std::vector<float> rope_inv_freq(const RopeConfig& rope, int head_dim);

// Applies RoPE in place to x [T, n_heads, head_dim] with positions pos[T].
void rope_apply(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                const std::vector<float>& inv_freq);

// rope_apply in two steps, for a caller that rotates many heads at the same positions (the decode team of
// model/qwen3_model.cpp: every layer's q and k heads of one token): c, s [T, head_dim/2] = cos, sin of
// pos[t] · inv_freq[j]; rope_rotate turns one token's heads x [n_heads, head_dim] by one row of them. Together
// bit-identical to rope_apply. Single-threaded.
void rope_cos_sin(const int32_t* pos, int64_t T, const std::vector<float>& inv_freq, float* c, float* s);
void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, const float* c, const float* s);

// The M-RoPE axis (0 = t, 1 = h, 2 = w) of frequency j under the interleaved layout of Qwen3-VL
// (qwen3-architecture.md §2.4c): h when j % 3 == 1 and j < 3·section[1], w when j % 3 == 2 and
// j < 3·section[2], t otherwise.
int mrope_axis(int64_t j, std::span<const int> section);

// Interleaved M-RoPE in place on x [T, n_heads, head_dim]; pos3 [3, T] holds the t, h and w position rows.
// Frequency j turns by pos3[mrope_axis(j)][t] · inv_freq[j]; with equal rows this is rope_apply exactly.
void rope_apply_mrope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos3,
                      const std::vector<float>& inv_freq, std::span<const int> section);

}  // namespace autoround
