// ops/cpu/activation.cpp — see activation.h.
#include "ops/cpu/activation.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace autoround {
namespace {

#if defined(__AVX512F__)
// e^x for 16 floats: x = n·ln2 + r (|r| <= ln2/2, ln2 split in two for an exact n·ln2), e^r by its degree-6 Taylor
// polynomial (Horner, FMA; relative error < 2^-23 on that interval), times 2^n by VSCALEFPS, which gives +inf above
// ~88.7 and 0 below ~-103.9 like expf. Within 2 ulp of expf; SwiGLU's scalar expf was ~5 µs per 1536 values, a
// measurable part of a 0.6B decode step's row work.
inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.f)), _mm512_set1_ps(89.f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.f / 720.f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 120.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 24.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f / 6.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.f));
    return _mm512_scalef_ps(p, n);
}
#endif

// Every value by the same arithmetic wherever it sits (the last partial group of 16 masked, not scalar), so a value's
// result does not depend on how the range was split between threads.
inline void swiglu_range(const float* gate, const float* up, int64_t i0, int64_t i1, float* out) {
#if defined(__AVX512F__)
    const __m512 one = _mm512_set1_ps(1.f);
    for (int64_t i = i0; i < i1; i += 16) {
        const __mmask16 m = i1 - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (i1 - i)) - 1);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        const __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), g));
        _mm512_mask_storeu_ps(out + i, m,
                              _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, up + i)));
    }
#else
    for (int64_t i = i0; i < i1; ++i) {
        const float g = gate[i];
        out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
#endif
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, float* out) {
    const int64_t nc = (n + 1023) / 1024;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t c = 0; c < nc; ++c) swiglu_range(gate, up, c * 1024, std::min(n, (c + 1) * 1024), out);
}

void swiglu_serial(const float* gate, const float* up, int64_t n, float* out) {
    for (int64_t i = 0; i < n; i += 1024) swiglu_range(gate, up, i, std::min(n, i + 1024), out);
}

}  // namespace autoround
