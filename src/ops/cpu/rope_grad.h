// ops/cpu/rope_grad.h — RoPE (rotate-half / NeoX) for training on batches of independent samples,
// with its backward (the transposed rotation).
//
// Why separate from rope.h: the training block runs B samples of L tokens each (positions 0..L-1 per
// sample) and needs dx. The float tables are computed as rope_apply does
// (angle = float(pos)·inv_freq[j] in float32, std::cos/std::sin in float32); the double tables use
// double angles (only used by the gradient checks).
//   forward : y[i] = x[i]·c_i − x[i+h]·s_i,  y[i+h] = x[i+h]·c_i + x[i]·s_i      (h = D/2)
//   backward: dx[i] = dy[i]·c_i + dy[i+h]·s_i,  dx[i+h] = dy[i+h]·c_i − dy[i]·s_i
#pragma once

#include <cstdint>
#include <vector>

namespace autoround {

// cos, sin [L, D/2] for positions 0..L-1; inv_freq [D/2] (from rope_inv_freq).
template <typename T>
void rope_table(const std::vector<float>& inv_freq, int64_t L, T* cos, T* sin);

// cos, sin [L, D/2] for Qwen3-VL's interleaved M-RoPE (ops/cpu/rope.h): frequency j turns by
// pos3[mrope_axis(j, section)·L + t] · inv_freq[j] (pos3 [3, L]: the t, h and w rows), computed like
// rope_apply_mrope. With three equal rows 0..L-1 this is rope_table.
template <typename T>
void rope_table_mrope(const std::vector<float>& inv_freq, const int32_t* pos3, int64_t L, const std::vector<int>& section,
                      T* cos, T* sin);

// In place on x [B·L, n_heads, D]; row n has position n % L.
template <typename T>
void rope_forward(T* x, int64_t B, int64_t L, int64_t n_heads, int64_t head_dim, const T* cos, const T* sin);

// In place: dy → dx, same layout.
template <typename T>
void rope_backward(T* d, int64_t B, int64_t L, int64_t n_heads, int64_t head_dim, const T* cos, const T* sin);

}  // namespace autoround
