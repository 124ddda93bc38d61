// ops/cpu/activation.cpp — see activation.h.
#include "ops/cpu/activation.h"

#include <cmath>

namespace autoround {
namespace {

inline void swiglu_range(const float* gate, const float* up, int64_t i0, int64_t i1, float* out) {
    for (int64_t i = i0; i < i1; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) swiglu_range(gate, up, i, i + 1, out);
}

void swiglu_serial(const float* gate, const float* up, int64_t n, float* out) { swiglu_range(gate, up, 0, n, out); }

}  // namespace autoround
