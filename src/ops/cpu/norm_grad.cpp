// ops/cpu/norm_grad.cpp — see norm_grad.h.
#include "ops/cpu/norm_grad.h"

#include <cmath>

namespace autoround {

template <typename T>
void rmsnorm_forward_train(const T* x, const T* w, int64_t rows, int64_t dim, T eps, T* y, T* rstd) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * dim;
        T* yr = y + r * dim;
        double ss = 0.0;
        for (int64_t i = 0; i < dim; ++i) ss += double(xr[i]) * xr[i];
        const T inv = T(1) / std::sqrt(static_cast<T>(ss / double(dim)) + eps);
        for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * inv);
        if (rstd) rstd[r] = inv;
    }
}

template <typename T>
void rmsnorm_backward(const T* x, const T* w, const T* rstd, const T* dy, int64_t rows, int64_t dim, T* dx,
                      bool accumulate) {
#pragma omp parallel for schedule(static) if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; ++r) {
        const T* xr = x + r * dim;
        const T* gr = dy + r * dim;
        T* dr = dx + r * dim;
        double dot = 0.0;  // Σ w·dy·x
        for (int64_t i = 0; i < dim; ++i) dot += double(w[i]) * gr[i] * xr[i];
        const T inv = rstd[r];
        const T c = static_cast<T>(dot * double(inv) * double(inv) * double(inv) / double(dim));
        for (int64_t i = 0; i < dim; ++i) {
            const T d = inv * w[i] * gr[i] - xr[i] * c;
            dr[i] = accumulate ? dr[i] + d : d;
        }
    }
}

template void rmsnorm_forward_train<float>(const float*, const float*, int64_t, int64_t, float, float*, float*);
template void rmsnorm_forward_train<double>(const double*, const double*, int64_t, int64_t, double, double*, double*);
template void rmsnorm_backward<float>(const float*, const float*, const float*, const float*, int64_t, int64_t, float*,
                                      bool);
template void rmsnorm_backward<double>(const double*, const double*, const double*, const double*, int64_t, int64_t,
                                       double*, bool);

}  // namespace autoround
