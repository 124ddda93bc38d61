// ops/cpu/gelu_grad.h — GELU (tanh and erf forms) for training: a float/float64 forward and the backward
// to the input.
//
// Why separate from gelu.h: the inference op is float32 only; the vision block of the tuner
// (model/qwen3_vl_vision_block_grad.h) runs in float and, for its gradient checks, float64. The float
// forward is gelu.h's kernel itself (same results bit for bit).
//   tanh: y = ½x(1 + tanh u),  u = β(x + κx³), β = √(2/π), κ = 0.044715
//         dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·β(1 + 3κx²)
//   erf : y = ½x(1 + erf(x/√2)),  dy/dx = ½(1 + erf(x/√2)) + x·φ(x),  φ(x) = exp(−x²/2)/√(2π)
#pragma once

#include <cstdint>

namespace autoround {

// x, y [n] (may alias); tanh_form: the "gelu_pytorch_tanh" form, else the erf form ("gelu").
template <typename T>
void gelu_forward(const T* x, int64_t n, bool tanh_form, T* y);

// dx = dy · gelu'(x), x the forward's input; x, dy, dx [n] (dx may alias dy or x); accumulate: dx +=.
template <typename T>
void gelu_backward(const T* x, const T* dy, int64_t n, bool tanh_form, T* dx, bool accumulate = false);

}  // namespace autoround
