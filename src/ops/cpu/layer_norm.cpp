// ops/cpu/layer_norm.cpp — see layer_norm.h. Plain scalar loops; rows spread over OpenMP threads.
#include "ops/cpu/layer_norm.h"

#include <cmath>

namespace autoround {

void layer_norm(const float* x, const float* w, const float* b, int64_t rows, int64_t dim, float eps, float* y) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = x + r * dim;
        float* yr = y + r * dim;
        double sum = 0.0;
        for (int64_t i = 0; i < dim; ++i) sum += xr[i];
        const double mean = sum / double(dim);
        double ss = 0.0;  // second pass around the mean: no cancellation for large offsets
        for (int64_t i = 0; i < dim; ++i) {
            const double d = double(xr[i]) - mean;
            ss += d * d;
        }
        const float inv = static_cast<float>(1.0 / std::sqrt(ss / double(dim) + double(eps)));
        const float m = static_cast<float>(mean);
        for (int64_t i = 0; i < dim; ++i) {
            const float v = (xr[i] - m) * inv * w[i];
            yr[i] = b ? v + b[i] : v;
        }
    }
}

}  // namespace autoround
