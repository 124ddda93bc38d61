// ops/cpu/gelu.cpp — see gelu.h. Plain scalar loops (the compiler vectorizes what it can);
// large arrays are split over OpenMP threads.
#include "ops/cpu/gelu.h"

#include <cmath>

namespace autoround {

void gelu_tanh(const float* x, int64_t n, float* y) {
    constexpr float kBeta = static_cast<float>(M_SQRT2 * M_2_SQRTPI * 0.5);  // √(2/π)
    constexpr float kKappa = 0.044715f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        const float inner = kBeta * (v + kKappa * (v * v * v));
        y[i] = 0.5f * v * (1.0f + std::tanh(inner));
    }
}

void gelu_erf(const float* x, int64_t n, float* y) {
    constexpr float kAlpha = static_cast<float>(M_SQRT1_2);  // 1/√2
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        y[i] = v * 0.5f * (1.0f + std::erf(v * kAlpha));
    }
}

}  // namespace autoround
