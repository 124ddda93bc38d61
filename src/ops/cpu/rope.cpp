// ops/cpu/rope.cpp — see rope.h.
#include "ops/cpu/rope.h"

#include <cmath>

#include "core/error.h"

namespace autoround {

std::vector<float> rope_inv_freq(const RopeConfig& rope, int head_dim) {
    const int half = head_dim / 2;
    std::vector<float> inv(half);
    const float base = static_cast<float>(rope.theta);
    for (int j = 0; j < half; ++j) {
        const float expo = static_cast<float>(2 * j) / static_cast<float>(head_dim);
        inv[j] = 1.0f / std::pow(base, expo);
    }
    if (rope.type == "linear") {
        for (float& f : inv) f = static_cast<float>(f / rope.factor);
    } else if (rope.type == "llama3") {
        // Llama 3.1 scaling: long wavelengths divided by `factor`, short ones kept, smooth in between.
        const double low_wl = rope.original_max_position_embeddings / rope.low_freq_factor;
        const double high_wl = rope.original_max_position_embeddings / rope.high_freq_factor;
        for (float& f : inv) {
            const double wl = 2 * M_PI / f;
            if (wl > low_wl) {
                f = static_cast<float>(f / rope.factor);
            } else if (wl >= high_wl) {
                const double smooth = (rope.original_max_position_embeddings / wl - rope.low_freq_factor) /
                                      (rope.high_freq_factor - rope.low_freq_factor);
                f = static_cast<float>((1 - smooth) * f / rope.factor + smooth * f);
            }
        }
    } else {
        check(rope.type == "default", "unsupported rope type '", rope.type, "'");
    }
    return inv;
}

namespace {

// Rotates every head of one token, x [n_heads, head_dim], by the angles whose cos/sin are c, s [head_dim/2].
void rotate_heads(float* x, int64_t n_heads, int64_t head_dim, const float* c, const float* s) {
    const int64_t half = head_dim / 2;
    for (int64_t h = 0; h < n_heads; ++h) {
        float* v = x + h * head_dim;
        for (int64_t j = 0; j < half; ++j) {
            const float a = v[j], b = v[j + half];
            v[j] = a * c[j] - b * s[j];
            v[j + half] = b * c[j] + a * s[j];
        }
    }
}

}  // namespace

void rope_cos_sin(const int32_t* pos, int64_t T, const std::vector<float>& inv_freq, float* c, float* s) {
    const int64_t half = static_cast<int64_t>(inv_freq.size());
    for (int64_t t = 0; t < T; ++t) {
        const float p = static_cast<float>(pos[t]);
        for (int64_t j = 0; j < half; ++j) {
            const float a = p * inv_freq[j];
            c[t * half + j] = std::cos(a);
            s[t * half + j] = std::sin(a);
        }
    }
}

void rope_rotate(float* x, int64_t n_heads, int64_t head_dim, const float* c, const float* s) {
    rotate_heads(x, n_heads, head_dim, c, s);
}

int mrope_axis(int64_t j, std::span<const int> section) {
    if (section.size() == 3) {
        if (j % 3 == 1 && j < 3 * static_cast<int64_t>(section[1])) return 1;
        if (j % 3 == 2 && j < 3 * static_cast<int64_t>(section[2])) return 2;
    }
    return 0;
}

void rope_apply_mrope(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos3,
                      const std::vector<float>& inv_freq, std::span<const int> section) {
    const int64_t half = head_dim / 2;
    check(half <= 512, "rope: head_dim ", head_dim, " is above the supported 1024");
    int axis[512];
    for (int64_t j = 0; j < half; ++j) axis[j] = mrope_axis(j, section);
#pragma omp parallel for schedule(static) if (T * n_heads > 256)
    for (int64_t t = 0; t < T; ++t) {
        float c[512], s[512];
        for (int64_t j = 0; j < half; ++j) {
            const float a = static_cast<float>(pos3[axis[j] * T + t]) * inv_freq[j];
            c[j] = std::cos(a);
            s[j] = std::sin(a);
        }
        rotate_heads(x + t * n_heads * head_dim, n_heads, head_dim, c, s);
    }
}

void rope_apply(float* x, int64_t T, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                const std::vector<float>& inv_freq) {
#pragma omp parallel for schedule(static) if (T * n_heads > 256)
    for (int64_t t = 0; t < T; ++t) {
        float c[512], s[512];
        rope_cos_sin(pos + t, 1, inv_freq, c, s);
        rotate_heads(x + t * n_heads * head_dim, n_heads, head_dim, c, s);
    }
}

}  // namespace autoround
