// ops/cpu/rope_grad.cpp — see rope_grad.h.
#include "ops/cpu/rope_grad.h"

#include <cmath>

#include "ops/cpu/rope.h"

namespace autoround {

template <typename T>
void rope_table(const std::vector<float>& inv_freq, int64_t L, T* cos, T* sin) {
    const int64_t half = static_cast<int64_t>(inv_freq.size());
    for (int64_t t = 0; t < L; ++t) {
        for (int64_t j = 0; j < half; ++j) {
            const T a = static_cast<T>(t) * static_cast<T>(inv_freq[j]);  // float: one float32 multiply
            cos[t * half + j] = std::cos(a);
            sin[t * half + j] = std::sin(a);
        }
    }
}

template <typename T>
void rope_table_mrope(const std::vector<float>& inv_freq, const int32_t* pos3, int64_t L, const std::vector<int>& section,
                      T* cos, T* sin) {
    const int64_t half = static_cast<int64_t>(inv_freq.size());
    for (int64_t j = 0; j < half; ++j) {
        const int32_t* pos = pos3 + mrope_axis(j, section) * L;
        for (int64_t t = 0; t < L; ++t) {
            const T a = static_cast<T>(pos[t]) * static_cast<T>(inv_freq[j]);
            cos[t * half + j] = std::cos(a);
            sin[t * half + j] = std::sin(a);
        }
    }
}

template <typename T>
void rope_forward(T* x, int64_t B, int64_t L, int64_t n_heads, int64_t head_dim, const T* cos, const T* sin) {
    const int64_t half = head_dim / 2, N = B * L;
#pragma omp parallel for schedule(static) if (N * n_heads * head_dim > 65536)
    for (int64_t n = 0; n < N; ++n) {
        const T* c = cos + (n % L) * half;
        const T* s = sin + (n % L) * half;
        for (int64_t h = 0; h < n_heads; ++h) {
            T* v = x + (n * n_heads + h) * head_dim;
            for (int64_t j = 0; j < half; ++j) {
                const T a = v[j], b = v[j + half];
                v[j] = a * c[j] - b * s[j];
                v[j + half] = b * c[j] + a * s[j];
            }
        }
    }
}

template <typename T>
void rope_backward(T* d, int64_t B, int64_t L, int64_t n_heads, int64_t head_dim, const T* cos, const T* sin) {
    const int64_t half = head_dim / 2, N = B * L;
#pragma omp parallel for schedule(static) if (N * n_heads * head_dim > 65536)
    for (int64_t n = 0; n < N; ++n) {
        const T* c = cos + (n % L) * half;
        const T* s = sin + (n % L) * half;
        for (int64_t h = 0; h < n_heads; ++h) {
            T* v = d + (n * n_heads + h) * head_dim;
            for (int64_t j = 0; j < half; ++j) {
                const T a = v[j], b = v[j + half];
                v[j] = a * c[j] + b * s[j];
                v[j + half] = b * c[j] - a * s[j];
            }
        }
    }
}

template void rope_table<float>(const std::vector<float>&, int64_t, float*, float*);
template void rope_table<double>(const std::vector<float>&, int64_t, double*, double*);
template void rope_table_mrope<float>(const std::vector<float>&, const int32_t*, int64_t, const std::vector<int>&,
                                       float*, float*);
template void rope_table_mrope<double>(const std::vector<float>&, const int32_t*, int64_t, const std::vector<int>&,
                                        double*, double*);
template void rope_forward<float>(float*, int64_t, int64_t, int64_t, int64_t, const float*, const float*);
template void rope_forward<double>(double*, int64_t, int64_t, int64_t, int64_t, const double*, const double*);
template void rope_backward<float>(float*, int64_t, int64_t, int64_t, int64_t, const float*, const float*);
template void rope_backward<double>(double*, int64_t, int64_t, int64_t, int64_t, const double*, const double*);

}  // namespace autoround
