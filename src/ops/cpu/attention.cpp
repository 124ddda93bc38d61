// ops/cpu/attention.cpp — see attention.h. One (head, query) row per task: scores (four keys at a time), softmax, P·V.
#include "ops/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace autoround {
namespace {

// q·k over D values with 8 independent partial sums (lanes i % 8); a single running sum is a serial chain of D
// dependent adds (4 cycles each) and made decode attention ~20 % of a 0.6B model's decode time at a few hundred tokens
// of context. dot8x4 takes four keys at once, each key's arithmetic exactly dot8's (the same FMAs in the same order,
// the same final sum), so a score does not depend on which of the two computed it; the four chains are independent.
#if defined(__AVX2__) && defined(__FMA__)
inline float sum8(__m256 p) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(p), _mm256_extractf128_ps(p, 1));  // lanes l + l+4
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}
float dot8(const float* a, const float* b, int64_t n) {
    __m256 p = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) p = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), p);
    float d = sum8(p);
    for (; i < n; ++i) d += a[i] * b[i];
    return d;
}
void dot8x4(const float* a, const float* b0, int64_t stride, int64_t n, float* out) {
    __m256 p0 = _mm256_setzero_ps(), p1 = p0, p2 = p0, p3 = p0;
    const float *b1 = b0 + stride, *b2 = b1 + stride, *b3 = b2 + stride;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(a + i);
        p0 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b0 + i), p0);
        p1 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b1 + i), p1);
        p2 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b2 + i), p2);
        p3 = _mm256_fmadd_ps(x, _mm256_loadu_ps(b3 + i), p3);
    }
    out[0] = sum8(p0), out[1] = sum8(p1), out[2] = sum8(p2), out[3] = sum8(p3);
    for (; i < n; ++i) out[0] += a[i] * b0[i], out[1] += a[i] * b1[i], out[2] += a[i] * b2[i], out[3] += a[i] * b3[i];
}
#else
float dot8(const float* a, const float* b, int64_t n) {
    float p[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) p[l] += a[i + l] * b[i + l];
    float d = ((p[0] + p[4]) + (p[1] + p[5])) + ((p[2] + p[6]) + (p[3] + p[7]));
    for (; i < n; ++i) d += a[i] * b[i];
    return d;
}
void dot8x4(const float* a, const float* b0, int64_t stride, int64_t n, float* out) {
    for (int k = 0; k < 4; ++k) out[k] = dot8(a, b0 + k * stride, n);
}
#endif

// Query row t of head h: scores (four keys at a time), softmax, P·V into out [D]. scores [past + T], acc [D] scratch.
void attend_row(const float* q, const float* k, const float* v, const AttentionShape& s, int64_t h, int64_t t,
                float* scores, float* acc, float* out) {
    const int64_t group = s.n_q_heads / s.n_kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    const int64_t D = s.head_dim;
    const int64_t kvh = h / group;
    const float* qr = q + (t * s.n_q_heads + h) * D;
    const int64_t n = s.past + t + 1;
    float mx = -INFINITY;
    int64_t j4 = 0;
    for (; j4 + 4 <= n; j4 += 4) {
        const float* kr = k + j4 * s.kv_stride + kvh * D;
        float d[4];
        dot8x4(qr, kr, s.kv_stride, D, d);
        for (int u = 0; u < 4; ++u) {
            scores[j4 + u] = d[u] * scale;
            mx = std::max(mx, scores[j4 + u]);
        }
    }
    for (int64_t j = j4; j < n; ++j) {
        const float* kr = k + j * s.kv_stride + kvh * D;
        scores[j] = dot8(qr, kr, D) * scale;
        mx = std::max(mx, scores[j]);
    }
    float sum = 0.f;
    for (int64_t j = 0; j < n; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
    }
    const float inv = 1.0f / sum;
    std::fill(acc, acc + D, 0.f);
    // four keys per pass over acc: a quarter of the loads and stores of the accumulator row
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const float p0 = scores[j] * inv, p1 = scores[j + 1] * inv, p2 = scores[j + 2] * inv, p3 = scores[j + 3] * inv;
        const float* v0 = v + j * s.kv_stride + kvh * D;
        const float *v1 = v0 + s.kv_stride, *v2 = v1 + s.kv_stride, *v3 = v2 + s.kv_stride;
        for (int64_t i = 0; i < D; ++i) acc[i] += (p0 * v0[i] + p1 * v1[i]) + (p2 * v2[i] + p3 * v3[i]);
    }
    for (; j < n; ++j) {
        const float p = scores[j] * inv;
        const float* vr = v + j * s.kv_stride + kvh * D;
        for (int64_t i = 0; i < D; ++i) acc[i] += p * vr[i];
    }
    std::copy(acc, acc + D, out);
}

}  // namespace

void attention_causal(const float* q, const float* k, const float* v, const AttentionShape& s, float* out) {
    const int64_t D = s.head_dim;
#pragma omp parallel
    {
        std::vector<float> scores(static_cast<size_t>(s.past + s.T));
        std::vector<float> acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 4) collapse(2)
        for (int64_t h = 0; h < s.n_q_heads; ++h)
            for (int64_t t = 0; t < s.T; ++t)
                attend_row(q, k, v, s, h, t, scores.data(), acc.data(), out + t * s.n_q_heads * D + h * D);
    }
}

void attention_causal_heads(const float* q, const float* k, const float* v, const AttentionShape& s, int64_t h0,
                            int64_t h1, float* out, std::vector<float>& scratch) {
    const int64_t D = s.head_dim;
    const size_t need = static_cast<size_t>(s.past + s.T + D);
    if (scratch.size() < need) scratch.resize(need);
    float* scores = scratch.data();
    float* acc = scores + s.past + s.T;
    for (int64_t h = h0; h < h1; ++h)
        for (int64_t t = 0; t < s.T; ++t) attend_row(q, k, v, s, h, t, scores, acc, out + t * s.n_q_heads * D + h * D);
}

}  // namespace autoround
