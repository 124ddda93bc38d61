// ops/cpu/gelu_grad.cpp — see gelu_grad.h. Plain scalar loops; large arrays split over OpenMP threads.
#include "ops/cpu/gelu_grad.h"

#include <cmath>
#include <type_traits>

#include "ops/cpu/gelu.h"

namespace autoround {

namespace {
constexpr double kBeta = M_SQRT2 * M_2_SQRTPI * 0.5;  // √(2/π)
constexpr double kKappa = 0.044715;
constexpr double kInvSqrt2Pi = M_2_SQRTPI * M_SQRT1_2 * 0.5;  // 1/√(2π)
}  // namespace

template <typename T>
void gelu_forward(const T* x, int64_t n, bool tanh_form, T* y) {
    if constexpr (std::is_same_v<T, float>) {
        if (tanh_form)
            gelu_tanh(x, n, y);
        else
            gelu_erf(x, n, y);
    } else {
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; ++i) {
            const T v = x[i];
            y[i] = tanh_form ? T(0.5) * v * (T(1) + std::tanh(T(kBeta) * (v + T(kKappa) * (v * v * v))))
                             : T(0.5) * v * (T(1) + std::erf(v * T(M_SQRT1_2)));
        }
    }
}

template <typename T>
void gelu_backward(const T* x, const T* dy, int64_t n, bool tanh_form, T* dx, bool accumulate) {
    const T beta = static_cast<T>(kBeta), kappa = static_cast<T>(kKappa);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
        const T v = x[i];
        T g;
        if (tanh_form) {
            const T t = std::tanh(beta * (v + kappa * (v * v * v)));
            g = T(0.5) * (T(1) + t) + T(0.5) * v * (T(1) - t * t) * beta * (T(1) + T(3) * kappa * v * v);
        } else {
            g = T(0.5) * (T(1) + std::erf(v * T(M_SQRT1_2))) + v * T(kInvSqrt2Pi) * std::exp(T(-0.5) * v * v);
        }
        const T d = dy[i] * g;
        dx[i] = accumulate ? dx[i] + d : d;
    }
}

template void gelu_forward<float>(const float*, int64_t, bool, float*);
template void gelu_forward<double>(const double*, int64_t, bool, double*);
template void gelu_backward<float>(const float*, const float*, int64_t, bool, float*, bool);
template void gelu_backward<double>(const double*, const double*, int64_t, bool, double*, bool);

}  // namespace autoround
