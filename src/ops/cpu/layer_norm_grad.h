// ops/cpu/layer_norm_grad.h — LayerNorm (weight and bias) for training: a forward that saves the mean and
// 1/std of every row, and the backward to the input (weight and bias are constants of the tuner, so no
// gradient for them).
//
// Why separate from layer_norm.h: the inference op keeps no state and is float32 only; the vision block
// of the tuner (model/qwen3_vl_vision_block_grad.h) needs mean, rstd and dx, in float and float64.
// The inference op (ops/cpu/layer_norm.cpp) is this forward with mean/rstd not saved: one formula (mean and the
// second pass around it in double, then float32 (x − mean)·rstd·w + b) for both.
//   y_i = x̂_i·w_i + b_i,  x̂ = (x − μ)·r,  r = (var(x) + eps)^(-1/2)  (biased variance)
//   dx_i = r·(g_i − mean(g) − x̂_i·mean(g∘x̂)),  g = w∘dy
#pragma once

#include <cstdint>

namespace autoround {

// x, y [rows, dim] (y may alias x); w [dim]; b [dim] or null (no bias); mean, rstd [rows] (either may be
// null: not saved).
template <typename T>
void layer_norm_forward_train(const T* x, const T* w, const T* b, int64_t rows, int64_t dim, T eps, T* y, T* mean,
                              T* rstd);

// x, dy, dx [rows, dim]; mean, rstd from the forward; dx may alias dy; accumulate: dx += instead of =.
template <typename T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, int64_t rows, int64_t dim,
                         T* dx, bool accumulate);

}  // namespace autoround
