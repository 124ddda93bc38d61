// ops/cpu/attention.cpp — see attention.h. One (head, query) row per task: scores, softmax, P·V.
#include "ops/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace autoround {

void attention_causal(const float* q, const float* k, const float* v, const AttentionShape& s, float* out) {
    const int64_t group = s.n_q_heads / s.n_kv_heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
    const int64_t D = s.head_dim;
#pragma omp parallel
    {
        std::vector<float> scores(static_cast<size_t>(s.past + s.T));
        std::vector<float> acc(static_cast<size_t>(D));
#pragma omp for schedule(dynamic, 4) collapse(2)
        for (int64_t h = 0; h < s.n_q_heads; ++h) {
            for (int64_t t = 0; t < s.T; ++t) {
                const int64_t kvh = h / group;
                const float* qr = q + (t * s.n_q_heads + h) * D;
                const int64_t n = s.past + t + 1;
                float mx = -INFINITY;
                for (int64_t j = 0; j < n; ++j) {
                    const float* kr = k + j * s.kv_stride + kvh * D;
                    float d = 0.f;
                    for (int64_t i = 0; i < D; ++i) d += qr[i] * kr[i];
                    scores[j] = d * scale;
                    mx = std::max(mx, scores[j]);
                }
                float sum = 0.f;
                for (int64_t j = 0; j < n; ++j) {
                    scores[j] = std::exp(scores[j] - mx);
                    sum += scores[j];
                }
                const float inv = 1.0f / sum;
                std::fill(acc.begin(), acc.end(), 0.f);
                for (int64_t j = 0; j < n; ++j) {
                    const float p = scores[j] * inv;
                    const float* vr = v + j * s.kv_stride + kvh * D;
                    for (int64_t i = 0; i < D; ++i) acc[i] += p * vr[i];
                }
                std::copy(acc.begin(), acc.end(), out + t * s.n_q_heads * D + h * D);
            }
        }
    }
}

}  // namespace autoround
