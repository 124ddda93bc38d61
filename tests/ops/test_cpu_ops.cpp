// tests/ops/test_cpu_ops.cpp — every CPU fast path against its plain scalar/float64 reference on
// awkward shapes (odd sizes, tails shorter than a SIMD vector, 1..N rows, GQA, cached prefixes).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "core/bf16.h"
#include "ops/cpu/activation.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/linear.h"
#include "ops/cpu/norm.h"
#include "ops/cpu/rope.h"

using namespace autoround;

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}

struct OwnedWeight {
    std::vector<uint16_t> u16;
    std::vector<float> f32;
    WeightView view;
};

OwnedWeight make_weight(DType dt, int64_t out, int64_t in, uint32_t seed) {
    OwnedWeight w;
    const auto v = randn(out * in, seed, 0.1f);
    if (dt == DType::F32) {
        w.f32 = v;
        w.view = {dt, w.f32.data(), out, in};
    } else {
        w.u16.resize(v.size());
        for (size_t i = 0; i < v.size(); ++i) w.u16[i] = dt == DType::BF16 ? float_to_bf16(v[i]) : float_to_fp16(v[i]);
        w.view = {dt, w.u16.data(), out, in};
    }
    return w;
}

}  // namespace

TEST(CpuLinear, FastPathMatchesScalarReferenceOnAwkwardShapes) {
    for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
        for (auto [out, in] : {std::pair<int64_t, int64_t>{1, 1}, {7, 5}, {67, 129}, {130, 31}, {64, 256}}) {
            for (int64_t T : {1, 2, 3, 4, 5, 9, 70}) {
                OwnedWeight w = make_weight(dt, out, in, 11);
                const auto x = randn(T * in, 12);
                const auto b = randn(out, 13);
                for (bool with_bias : {false, true}) {
                    std::vector<float> y(T * out), y_ref(T * out);
                    linear(x.data(), T, w.view, with_bias ? b.data() : nullptr, y.data());
                    linear_ref(x.data(), T, w.view, with_bias ? b.data() : nullptr, y_ref.data());
                    for (size_t i = 0; i < y.size(); ++i)
                        ASSERT_NEAR(y[i], y_ref[i], 1e-4 * (1 + std::abs(y_ref[i])) + 1e-5 * std::sqrt(double(in)))
                            << dtype_name(dt) << " out=" << out << " in=" << in << " T=" << T << " i=" << i;
                }
            }
        }
    }
}

TEST(CpuRmsNorm, MatchesFloat64Reference) {
    for (int64_t dim : {1, 7, 128, 513}) {
        const int64_t rows = 5;
        const auto x = randn(rows * dim, 3, 3.0f);
        const auto w = randn(dim, 4);
        std::vector<float> y(rows * dim);
        rmsnorm(x.data(), w.data(), rows, dim, 1e-6f, y.data());
        for (int64_t r = 0; r < rows; ++r) {
            double ss = 0;
            for (int64_t i = 0; i < dim; ++i) ss += double(x[r * dim + i]) * x[r * dim + i];
            const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
            for (int64_t i = 0; i < dim; ++i)
                ASSERT_NEAR(y[r * dim + i], w[i] * x[r * dim + i] * inv, 1e-5 * (1 + std::abs(w[i] * x[r * dim + i] * inv)));
        }
    }
    // In place (used for q/k norm).
    auto x = randn(256, 5);
    const auto w = randn(128, 6);
    std::vector<float> y(256);
    rmsnorm(x.data(), w.data(), 2, 128, 1e-6f, y.data());
    rmsnorm(x.data(), w.data(), 2, 128, 1e-6f, x.data());
    EXPECT_EQ(x, y);
}

TEST(CpuRope, RotateHalfPairsAndPositionZeroIsIdentity) {
    RopeConfig rc;
    rc.theta = 1e6;
    const int D = 128;
    const auto inv = rope_inv_freq(rc, D);
    ASSERT_EQ(inv.size(), 64u);
    EXPECT_FLOAT_EQ(inv[0], 1.0f);
    EXPECT_NEAR(inv[63], 1.0 / std::pow(1e6, 126.0 / 128.0), 1e-12);
    const int64_t T = 3, nh = 2;
    auto x = randn(T * nh * D, 7);
    const auto x0 = x;
    const int32_t pos[3] = {0, 5, 1000};
    rope_apply(x.data(), T, nh, D, pos, inv);
    for (int64_t h = 0; h < nh; ++h)
        for (int i = 0; i < D; ++i) EXPECT_EQ(x[h * D + i], x0[h * D + i]);  // position 0
    for (int64_t t = 1; t < T; ++t)
        for (int64_t h = 0; h < nh; ++h)
            for (int i = 0; i < 64; ++i) {
                const double a = double(pos[t]) * inv[i];
                const float* s = x0.data() + (t * nh + h) * D;
                const float* o = x.data() + (t * nh + h) * D;
                EXPECT_NEAR(o[i], s[i] * std::cos(a) - s[i + 64] * std::sin(a), 2e-4);
                EXPECT_NEAR(o[i + 64], s[i + 64] * std::cos(a) + s[i] * std::sin(a), 2e-4);
            }
}

TEST(CpuRope, Llama3ScalingKeepsHighFrequenciesAndDividesLowOnes) {
    RopeConfig rc;
    rc.type = "llama3";
    rc.theta = 500000;
    rc.factor = 8;
    rc.low_freq_factor = 1;
    rc.high_freq_factor = 4;
    rc.original_max_position_embeddings = 8192;
    RopeConfig plain = rc;
    plain.type = "default";
    const auto a = rope_inv_freq(rc, 128), b = rope_inv_freq(plain, 128);
    EXPECT_EQ(a[0], b[0]);                       // wavelength 2π < high_wl: unchanged
    EXPECT_NEAR(a[63], b[63] / 8, 1e-12);        // longest wavelength: divided by factor
    RopeConfig bad = rc;
    bad.type = "yarn";
    EXPECT_THROW(rope_inv_freq(bad, 128), std::exception);
}

// Float64 reference attention computed from scratch for the full sequence.
static std::vector<double> attention_ref(const std::vector<float>& q, const std::vector<float>& k,
                                         const std::vector<float>& v, int64_t S, int64_t nq, int64_t nkv, int64_t D) {
    std::vector<double> out(S * nq * D, 0.0);
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t kh = h / (nq / nkv);
        for (int64_t t = 0; t < S; ++t) {
            std::vector<double> s(t + 1);
            double mx = -1e300;
            for (int64_t j = 0; j <= t; ++j) {
                double d = 0;
                for (int64_t i = 0; i < D; ++i) d += double(q[(t * nq + h) * D + i]) * k[(j * nkv + kh) * D + i];
                s[j] = d / std::sqrt(double(D));
                mx = std::max(mx, s[j]);
            }
            double z = 0;
            for (double& e : s) z += e = std::exp(e - mx);
            for (int64_t j = 0; j <= t; ++j)
                for (int64_t i = 0; i < D; ++i) out[(t * nq + h) * D + i] += s[j] / z * v[(j * nkv + kh) * D + i];
        }
    }
    return out;
}

TEST(CpuAttention, CausalGqaWithCachedPrefixMatchesFloat64Reference) {
    for (auto [nq, nkv, D] : {std::tuple<int64_t, int64_t, int64_t>{4, 2, 128}, {3, 1, 17}, {2, 2, 8}}) {
        const int64_t S = 37;
        const auto q = randn(S * nq * D, 1), k = randn(S * nkv * D, 2), v = randn(S * nkv * D, 3);
        const auto want = attention_ref(q, k, v, S, nq, nkv, D);
        for (int64_t past : {0, 1, 20, 36}) {
            const int64_t T = S - past;
            std::vector<float> out(T * nq * D);
            attention_causal(q.data() + past * nq * D, k.data(), v.data(), AttentionShape{T, past, nq, nkv, D, nkv * D},
                             out.data());
            for (int64_t i = 0; i < T * nq * D; ++i)
                ASSERT_NEAR(out[i], want[past * nq * D + i], 1e-5) << "past=" << past << " i=" << i;
        }
    }
}

TEST(CpuActivation, SwiGluMatchesFormula) {
    const auto g = randn(1001, 8, 4.0f), u = randn(1001, 9);
    std::vector<float> o(1001);
    swiglu(g.data(), u.data(), 1001, o.data());
    for (int i = 0; i < 1001; ++i) EXPECT_NEAR(o[i], g[i] / (1 + std::exp(-double(g[i]))) * u[i], 1e-5 * (1 + std::abs(o[i])));
}

// The single-threaded pieces of the persistent decode team (model/qwen3_model.cpp) equal the ops they stand in for,
// bit for bit: attention_causal_heads over any split of the heads, rope_cos_sin + rope_rotate, rmsnorm_serial,
// swiglu_serial; on awkward shapes (GQA groups of 1–3, head_dim 8/17/128, cached prefixes, 1–5 rows).
TEST(CpuTeamPieces, SerialPiecesEqualTheOpsBitForBit) {
    for (auto [nq, nkv, D] : {std::tuple<int64_t, int64_t, int64_t>{4, 2, 128}, {3, 1, 17}, {2, 2, 8}, {6, 2, 40}}) {
        const int64_t S = 23;
        const auto q = randn(S * nq * D, 11), k = randn(S * nkv * D, 12), v = randn(S * nkv * D, 13);
        for (int64_t past : {0, 1, 18, 22}) {
            const int64_t T = std::min<int64_t>(S - past, 5);
            const AttentionShape sh{T, past, nq, nkv, D, nkv * D};
            std::vector<float> want(T * nq * D), got(T * nq * D, -1.f), scratch;
            attention_causal(q.data() + past * nq * D, k.data(), v.data(), sh, want.data());
            for (int64_t cut = 0; cut <= nq; ++cut) {
                std::fill(got.begin(), got.end(), -1.f);
                attention_causal_heads(q.data() + past * nq * D, k.data(), v.data(), sh, 0, cut, got.data(), scratch);
                attention_causal_heads(q.data() + past * nq * D, k.data(), v.data(), sh, cut, nq, got.data(), scratch);
                ASSERT_EQ(want, got) << nq << "/" << nkv << "/" << D << " past=" << past << " cut=" << cut;
            }
        }
    }
    RopeConfig rc;
    rc.theta = 1000000.0;
    for (int64_t D : {8, 18, 128}) {
        const std::vector<float> inv = rope_inv_freq(rc, static_cast<int>(D));
        const int64_t T = 3, nh = 5, half = D / 2;
        const int32_t pos[T] = {0, 7, 40000};
        auto want = randn(T * nh * D, 21), got = want;
        rope_apply(want.data(), T, nh, D, pos, inv);
        std::vector<float> c(T * half), s(T * half);
        rope_cos_sin(pos, T, inv, c.data(), s.data());
        for (int64_t t = 0; t < T; ++t) {
            rope_rotate(got.data() + t * nh * D, 2, D, c.data() + t * half, s.data() + t * half);
            rope_rotate(got.data() + t * nh * D + 2 * D, nh - 2, D, c.data() + t * half, s.data() + t * half);
        }
        ASSERT_EQ(want, got) << "D=" << D;
    }
    for (int64_t dim : {1, 7, 128, 1024, 1031}) {
        const auto x = randn(3 * dim, 31, 3.f), w = randn(dim, 32);
        std::vector<float> want(3 * dim), got(3 * dim);
        rmsnorm(x.data(), w.data(), 3, dim, 1e-6f, want.data());
        rmsnorm_serial(x.data(), w.data(), 3, dim, 1e-6f, got.data());
        ASSERT_EQ(want, got) << "dim=" << dim;
    }
    const auto g = randn(3073, 41, 4.f), u = randn(3073, 42);
    std::vector<float> want(3073), got(3073);
    swiglu(g.data(), u.data(), 3073, want.data());
    swiglu_serial(g.data(), u.data(), 1000, got.data());
    swiglu_serial(g.data() + 1000, u.data() + 1000, 2073, got.data() + 1000);
    ASSERT_EQ(want, got);
}

// The vectorised SwiGLU (AVX-512 builds: its own e^x) over the whole float range of the gate, including where e^-g
// overflows or underflows, and with tails of every length: within 2e-6 relative (+1e-30 absolute) of the formula.
TEST(CpuActivation, SwiGluAcrossTheRangeAndEveryTailLength) {
    std::vector<float> g, u;
    for (int i = 0; i <= 4000; ++i) g.push_back(-120.f + 0.06f * static_cast<float>(i));
    for (float v : {0.f, -0.f, 1e-30f, -1e-30f, 88.7f, -88.7f, 103.9f, -103.9f, 1e30f, -1e30f}) g.push_back(v);
    for (size_t i = 0; i < g.size(); ++i) u.push_back(0.5f + static_cast<float>(i % 7));
    for (int64_t n : {int64_t(g.size()), int64_t(1), int64_t(15), int64_t(17), int64_t(31)}) {
        std::vector<float> o(static_cast<size_t>(n));
        swiglu(g.data() + g.size() - n, u.data() + g.size() - n, n, o.data());
        for (int64_t i = 0; i < n; ++i) {
            const size_t k = g.size() - n + i;
            const double want = double(g[k]) / (1 + std::exp(-double(g[k]))) * u[k];
            ASSERT_NEAR(o[i], want, 2e-6 * std::fabs(want) + 1e-30) << "g=" << g[k] << " n=" << n;
        }
    }
}
