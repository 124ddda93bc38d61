// ops/cpu/norm.cpp — see norm.h. Sum of squares accumulated in float64.
#include "ops/cpu/norm.h"

#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace autoround {
namespace {

// Σ x_i² in double: each square is exact in double, the sum nearly so (closest to the exact mean, and the order of
// the adds moves it by far less than the float32 it ends in). Sixteen partial sums (two AVX-512 chains of 8 doubles)
// instead of one serial chain of dim dependent adds, which made each 1024-value norm ~1 µs (4 per layer and token).
inline double sum_squares(const float* x, int64_t n) {
    int64_t i = 0;
    double ss = 0.0;
#if defined(__AVX512F__)
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    for (; i + 16 <= n; i += 16) {
        const __m512d lo = _mm512_cvtps_pd(_mm256_loadu_ps(x + i)), hi = _mm512_cvtps_pd(_mm256_loadu_ps(x + i + 8));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    ss = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
#endif
    for (; i < n; ++i) ss += double(x[i]) * x[i];
    return ss;
}

inline void rmsnorm_row(const float* xr, const float* w, int64_t dim, float eps, float* yr) {
    const double ss = sum_squares(xr, dim);
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
