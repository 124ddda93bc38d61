// ops/cpu/activation.h — SwiGLU gate: out = silu(gate) * up, silu(x) = x · sigmoid(x) (float32).
#pragma once

#include <cstdint>

namespace autoround {

// gate, up, out: [n] (out may alias gate).
void swiglu(const float* gate, const float* up, int64_t n, float* out);
// The same on the calling thread only (inside a parallel region); bit-identical to swiglu.
void swiglu_serial(const float* gate, const float* up, int64_t n, float* out);

}  // namespace autoround
