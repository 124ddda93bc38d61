// ops/cpu/norm.cpp — see norm.h. Sum of squares accumulated in float32, as PyTorch does for fp32.
#include "ops/cpu/norm.h"

#include <cmath>

namespace autoround {
namespace {

inline void rmsnorm_row(const float* xr, const float* w, int64_t dim, float eps, float* yr) {
    double ss = 0.0;  // double accumulation: closest to the exact mean, order-independent enough
    for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / double(dim)) + eps);
    for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * inv);
}

}  // namespace

void rmsnorm(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) rmsnorm_row(x + r * dim, w, dim, eps, y + r * dim);
}

void rmsnorm_serial(const float* x, const float* w, int64_t rows, int64_t dim, float eps, float* y) {
    for (int64_t r = 0; r < rows; ++r) rmsnorm_row(x + r * dim, w, dim, eps, y + r * dim);
}

}  // namespace autoround
