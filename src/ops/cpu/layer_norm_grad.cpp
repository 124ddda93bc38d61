// ops/cpu/layer_norm_grad.cpp — see layer_norm_grad.h. Plain scalar loops; rows spread over OpenMP threads.
#include "ops/cpu/layer_norm_grad.h"

#include <cmath>

namespace autoround {

template <typename T>
void layer_norm_forward_train(const T* x, const T* w, const T* b, int64_t rows, int64_t dim, T eps, T* y, T* mean,
                              T* rstd) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * dim;
        T* yr = y + r * dim;
        double sum = 0.0;
        for (int64_t i = 0; i < dim; ++i) sum += xr[i];
        const double mu = sum / double(dim);
        double ss = 0.0;  // second pass around the mean: no cancellation for large offsets
        for (int64_t i = 0; i < dim; ++i) {
            const double d = double(xr[i]) - mu;
            ss += d * d;
        }
        const T inv = static_cast<T>(1.0 / std::sqrt(ss / double(dim) + double(eps)));
        const T m = static_cast<T>(mu);
        for (int64_t i = 0; i < dim; ++i) {
            const T v = (xr[i] - m) * inv * w[i];
            yr[i] = b ? v + b[i] : v;
        }
        if (mean) mean[r] = m;
        if (rstd) rstd[r] = inv;
    }
}

template <typename T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* dy, int64_t rows, int64_t dim,
                         T* dx, bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * dim;
        const T* gr = dy + r * dim;
        T* dr = dx + r * dim;
        const T m = mean[r], inv = rstd[r];
        double sg = 0.0, sgx = 0.0;  // Σ g, Σ g·x̂ with g = w·dy
        for (int64_t i = 0; i < dim; ++i) {
            const double g = double(w[i]) * gr[i];
            sg += g;
            sgx += g * (double(xr[i] - m) * inv);
        }
        const T mg = static_cast<T>(sg / double(dim)), mgx = static_cast<T>(sgx / double(dim));
        for (int64_t i = 0; i < dim; ++i) {  // dy row fully read above: dx may alias it
            const T xh = (xr[i] - m) * inv;
            const T d = inv * (w[i] * gr[i] - mg - xh * mgx);
            dr[i] = accumulate ? dr[i] + d : d;
        }
    }
}

template void layer_norm_forward_train<float>(const float*, const float*, const float*, int64_t, int64_t, float, float*,
                                              float*, float*);
template void layer_norm_forward_train<double>(const double*, const double*, const double*, int64_t, int64_t, double,
                                               double*, double*, double*);
template void layer_norm_backward<float>(const float*, const float*, const float*, const float*, const float*, int64_t,
                                         int64_t, float*, bool);
template void layer_norm_backward<double>(const double*, const double*, const double*, const double*, const double*,
                                          int64_t, int64_t, double*, bool);

}  // namespace autoround
