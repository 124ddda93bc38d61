// ops/cpu/activation_grad.cpp — see activation_grad.h.
#include "ops/cpu/activation_grad.h"

#include <cmath>

namespace autoround {

template <typename T>
void swiglu_forward(const T* gate, const T* up, int64_t n, T* out) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const T g = gate[i];
        out[i] = g / (T(1) + std::exp(-g)) * up[i];
    }
}

template <typename T>
void swiglu_backward(const T* gate, const T* up, const T* dout, int64_t n, T* dgate, T* dup) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const T g = gate[i], u = up[i], d = dout[i];
        const T sig = T(1) / (T(1) + std::exp(-g));
        const T silu = g * sig;
        dgate[i] = d * u * sig * (T(1) + g * (T(1) - sig));
        dup[i] = d * silu;
    }
}

template void swiglu_forward<float>(const float*, const float*, int64_t, float*);
template void swiglu_forward<double>(const double*, const double*, int64_t, double*);
template void swiglu_backward<float>(const float*, const float*, const float*, int64_t, float*, float*);
template void swiglu_backward<double>(const double*, const double*, const double*, int64_t, double*, double*);

}  // namespace autoround
