// ops/cpu/norm_grad.h — RMSNorm for training: a forward that saves 1/rms per row and the backward
// to the input (the norm weight is a constant of the tuner, so no weight gradient).
//
// Why separate from norm.h: the inference op keeps no state; the tuner's block needs rstd and dx.
// The float forward uses ops/cpu/norm.cpp's formula (sum of squares in double, then float32
// 1/sqrt(mean + eps), y = w·(x·r)), so it agrees with the inference op to float rounding. Used for the hidden-size norms and for Qwen3's per-head
// q_norm/k_norm (rows = tokens·heads, dim = head_dim).
#pragma once

#include <cstdint>

namespace autoround {

// x, y [rows, dim] (y may alias x), w [dim], rstd [rows] (may be null) = 1/sqrt(mean(x²) + eps).
template <typename T>
void rmsnorm_forward_train(const T* x, const T* w, int64_t rows, int64_t dim, T eps, T* y, T* rstd);

// y_i = w_i·x_i·r, r = (mean(x²) + eps)^(-1/2)  ⇒  dx_i = r·w_i·dy_i − x_i·r³/dim · Σ_k w_k·dy_k·x_k.
// x, dy, dx [rows, dim]; dx may alias dy; accumulate: dx += instead of =.
template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* dy, int64_t rows, int64_t dim, T* dx,
                      bool accumulate);

}  // namespace autoround
