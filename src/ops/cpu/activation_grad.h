// ops/cpu/activation_grad.h — SwiGLU for training: out = silu(g)·u, silu(g) = g·σ(g), and its backward
//   dg = dout·u·σ(g)·(1 + g·(1 − σ(g))),   du = dout·silu(g).
// The float forward uses ops/cpu/activation.cpp's formula g / (1 + exp(−g)) · u.
#pragma once

#include <cstdint>

namespace autoround {

// gate, up, out [n] (out may alias gate or up).
template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out);

// dout [n] → dgate, dup [n]. dgate may alias dout; dup may alias dout only if dgate does not.
template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dout, int64_t n, T* dgate, T* dup);

}  // namespace autoround
