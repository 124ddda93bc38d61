// tests/quant/test_rtn.cpp — auto-round's int_sym / int_asym fake quantization and plain RTN
// (quant/rtn.h; docs/autoround-algorithm.md §2.2, §2.3, §3.1): hand-computed groups (full-range sym
// with both scale signs and the tie rule, round-half-to-even, asym zero points), zero padding of a
// partial last group, V / min_scale / max_scale handling and the padded V layout, code ranges and
// per-element error bounds on random and real (qwen3-nano) weights, and the RTN -> GPTQ/AWQ path.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>

#include "core/bf16.h"
#include "io/safetensors.h"
#include "quant/quant_test_util.h"
#include "quant/quantized_tensor.h"
#include "quant/rtn.h"

using namespace autoround;
using autoround::testquant::expect_error;
namespace fs = std::filesystem;

namespace {

const fs::path kShared = AR_SHARED_DIR;

QdqOptions opts(int bits, int64_t gs, bool sym) { return {{bits, gs, sym}, true}; }

std::vector<float> randn(size_t n, uint32_t seed, float sd = 0.02f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.f, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = round_to_bf16(d(rng));  // weights are bf16 values in the reference
    return v;
}

const float kFp16Tenth = 0.0999755859375f;  // fp16(0.1) = 0x2E66

}  // namespace

// ---- hand-computed groups -------------------------------------------------------------------------

TEST(RtnSym, NegativeSideDominatesGivesPositiveScale) {
    // wmin = -0.8, wmax = 0.7: a = 0.8 > b = 0.7 -> m = +0.8, s = fp16(0.8 / 8) = fp16(0.1) > 0;
    // x / s = -8.002, 1.0002, 2.0005, ... 7.0017 -> q = -8, 1, ..., 7 -> codes q + 8.
    const std::vector<float> x = {-0.8f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
    const QuantizedTensor q = quantize_rtn(x, 1, 8, opts(4, -1, true));
    EXPECT_EQ(q.scales, (std::vector<float>{kFp16Tenth}));
    EXPECT_EQ(q.zeros, (std::vector<int32_t>{8}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 9, 10, 11, 12, 13, 14, 15}));
    EXPECT_EQ(q.dequantize()[0], -8 * kFp16Tenth);
}

TEST(RtnSym, PositiveSideDominatesGivesNegativeScale) {
    // mirrored: a = 0.7 < b = 0.8 -> m = -0.8, s = -fp16(0.1); the largest value maps to code 0 (-8).
    const std::vector<float> x = {0.8f, -0.1f, -0.2f, -0.3f, -0.4f, -0.5f, -0.6f, -0.7f};
    const QuantizedTensor q = quantize_rtn(x, 1, 8, opts(4, -1, true));
    EXPECT_EQ(q.scales, (std::vector<float>{-kFp16Tenth}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 9, 10, 11, 12, 13, 14, 15}));
    EXPECT_EQ(q.dequantize()[0], 8 * kFp16Tenth);
}

TEST(RtnSym, TieGoesToTheNegativeScaleAndClampsTheOtherSide) {
    // a = b = 1 -> m = -1, s = -0.125: +1 -> -8 (code 0), -1 -> +8 clamped to 7 (code 15, y = -0.875),
    // 0.5 -> -4 (code 4), 0.25 -> -2 (code 6), 0 -> 0 (code 8).
    const std::vector<float> x = {-1.f, 1.f, 0.5f, 0.25f, 0.f, -0.f, 0.f, 0.f};
    const QuantizedTensor q = quantize_rtn(x, 1, 8, opts(4, -1, true));
    EXPECT_EQ(q.scales, (std::vector<float>{-0.125f}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{15, 0, 4, 6, 8, 8, 8, 8}));
    const auto y = q.dequantize();
    EXPECT_EQ(y[0], -0.875f);
    EXPECT_EQ(y[1], 1.f);
}

TEST(RtnSym, RoundsHalfToEven) {
    // s = 0.125 (set by -1.0). x / s = 0.5, 1.5, 2.5, -0.5, -1.5 -> 0, 2, 2, -0, -2 (C round() would
    // give 1, 2, 3, -1, -2).
    const std::vector<float> x = {-1.f, 0.0625f, 0.1875f, 0.3125f, -0.0625f, -0.1875f, 0.f, 0.f};
    const QuantizedTensor q = quantize_rtn(x, 1, 8, opts(4, -1, true));
    EXPECT_EQ(q.scales[0], 0.125f);
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 8, 10, 10, 8, 6, 8, 8}));
}

TEST(RtnSym, AllZeroGroupUsesTheThreshold) {
    // m = -0.0 -> s = -0.0 is not < 0 -> max(s, τ) = +τ (fp16(1e-5)); every code is the zero point.
    const QuantizedTensor q = quantize_rtn(std::vector<float>(8, 0.f), 1, 8, opts(4, -1, true));
    EXPECT_EQ(q.scales[0], fp16_to_float(float_to_fp16(1e-5f)));
    EXPECT_GT(q.scales[0], 0.f);
    for (auto c : q.codes) EXPECT_EQ(c, 8);
    for (float y : q.dequantize()) EXPECT_EQ(y, 0.f);
}

TEST(RtnAsym, HandComputedTwoBit) {
    // wmin = -0.5, wmax = 1.0, Qa = 3: s = 1.5 / 3 = 0.5, z = rint(0.5 / 0.5) = 1;
    // codes = clamp(rint(x / s) + 1): -1+1 = 0, 2+1 = 3, rint(0.5) = 0 -> 1, 0 -> 1.
    const std::vector<float> x = {-0.5f, 1.0f, 0.25f, 0.f};
    const QuantizedTensor q = quantize_rtn(x, 1, 4, opts(2, -1, false));
    EXPECT_EQ(q.scales, (std::vector<float>{0.5f}));
    EXPECT_EQ(q.zeros, (std::vector<int32_t>{1}));
    EXPECT_EQ(q.codes, (std::vector<uint8_t>{0, 3, 1, 1}));
    EXPECT_EQ(q.dequantize(), (std::vector<float>{-0.5f, 1.0f, 0.f, 0.f}));
}

TEST(RtnAsym, NonNegativeGroupHasZeroPointZero) {
    // min(0, min x) = 0 -> z = 0: legal for AWQ and GPTQ v2, impossible for GPTQ v1 (z - 1 = -1).
    std::vector<float> x(32);
    for (int i = 0; i < 32; ++i) x[i] = 0.01f * (i + 1);
    const QuantizedTensor q = quantize_rtn(x, 1, 32, opts(4, -1, false));
    EXPECT_EQ(q.zeros[0], 0);
    EXPECT_EQ(q.scales[0], fp16_to_float(float_to_fp16(0.32f / 15.f)));
    EXPECT_EQ(q.codes[31], 15);
    QuantizedTensor wide = q;  // the packed formats need out % 8 == 0: tile to 8 rows
    wide.out_features = 8;
    wide.codes.clear();
    for (int r = 0; r < 8; ++r) wide.codes.insert(wide.codes.end(), q.codes.begin(), q.codes.end());
    wide.scales.assign(8, q.scales[0]);
    wide.zeros.assign(8, 0);
    expect_error([&] { to_gptq(wide); }, {"zero point 0", "v1"});
    EXPECT_NO_THROW(to_awq(wide));
    EXPECT_NO_THROW(to_gptq(wide, {GptqZeros::V2}));
}

// ---- grouping -------------------------------------------------------------------------------------

TEST(RtnGroups, PartialLastGroupIsZeroPadded) {
    // in = 160, group 128: two groups; the second holds 32 real values + 96 zero pads, which (since
    // min/max already include 0) quantizes exactly like those 32 values on their own.
    for (bool sym : {true, false})
        for (int bits : {2, 3, 4, 8}) {
            const auto w = randn(3 * 160, 40 + bits);
            const QuantizedTensor q = quantize_rtn(w, 3, 160, opts(bits, 128, sym));
            ASSERT_EQ(q.n_groups(), 2);
            ASSERT_EQ(q.scales.size(), 6u);
            for (int r = 0; r < 3; ++r) {
                const std::vector<float> head(w.begin() + r * 160, w.begin() + r * 160 + 128);
                const std::vector<float> tail(w.begin() + r * 160 + 128, w.begin() + r * 160 + 160);
                const QuantizedTensor qh = quantize_rtn(head, 1, 128, opts(bits, -1, sym));
                const QuantizedTensor qt = quantize_rtn(tail, 1, 32, opts(bits, -1, sym));
                EXPECT_EQ(q.scales[r * 2], qh.scales[0]);
                EXPECT_EQ(q.scales[r * 2 + 1], qt.scales[0]);
                EXPECT_EQ(q.zeros[r * 2 + 1], qt.zeros[0]);
                EXPECT_TRUE(std::equal(qt.codes.begin(), qt.codes.end(), q.codes.begin() + r * 160 + 128));
                EXPECT_TRUE(std::equal(qh.codes.begin(), qh.codes.end(), q.codes.begin() + r * 160));
            }
        }
}

TEST(RtnGroups, GroupLargerThanRowIsPerChannel) {
    const auto w = randn(4 * 96, 5);
    const QuantizedTensor a = quantize_rtn(w, 4, 96, opts(4, 128, true));
    const QuantizedTensor b = quantize_rtn(w, 4, 96, opts(4, -1, true));
    EXPECT_EQ(a.n_groups(), 1);
    EXPECT_EQ(a.codes, b.codes);
    EXPECT_EQ(a.scales, b.scales);
    expect_error([&] { quantize_rtn(w, 4, 96, opts(4, 0, true)); }, {"group_size", "per-tensor"});
    expect_error([&] { quantize_rtn(w, 4, 95, opts(4, 32, true)); }, {"[4, 95]", "expected 380"});
    std::vector<float> bad = w;
    bad[100] = NAN;
    expect_error([&] { quantize_rtn(bad, 4, 96, opts(4, 32, true), "blk.w"); }, {"blk.w [4, 96]", "[1, 4]", "not finite"});
}

// ---- tuning parameters ------------------------------------------------------------------------------

TEST(RtnQdq, MinMaxScalesAreClampedAndApplied) {
    // x = {1.0, -0.25, 0.5, 0...}: a = 0.25, b = 0.5·β.
    std::vector<float> x = {1.0f, -0.25f, 0.5f, 0.f, 0.f, 0.f, 0.f, 0.f};
    const QdqOptions o = opts(4, -1, true);
    const float one = 1.f, two = 2.f, half = 0.5f, neg = -3.f;
    // α = 2 is clamped to 1: same as RTN
    EXPECT_EQ(qdq(x, 1, 8, {}, {&two, 1}, {&one, 1}, o), quantize_rtn(x, 1, 8, o).dequantize());
    // β = 0.5: b = 0.5 > a -> m = -0.5, s = -0.0625: 1.0 -> -16 clamped to -8 (y = 0.5), -0.25 -> 4, 0.5 -> -8
    const QuantizedTensor q = quantize(x, 1, 8, {}, {&one, 1}, {&half, 1}, o);
    EXPECT_EQ(q.scales[0], -0.0625f);
    EXPECT_EQ(q.codes[0], 0);
    EXPECT_EQ(q.codes[1], 12);
    EXPECT_EQ(q.codes[2], 0);
    EXPECT_EQ(q.dequantize()[0], 0.5f);
    // β = -3 clamps to 0: b = 0 < a = 0.25 -> m = 0.25, s = 0.03125: 1.0 -> 32 clamped to 7
    const QuantizedTensor z = quantize(x, 1, 8, {}, {&one, 1}, {&neg, 1}, o);
    EXPECT_EQ(z.scales[0], 0.03125f);
    EXPECT_EQ(z.codes[0], 15);
    EXPECT_EQ(z.codes[1], 0);
}

TEST(RtnQdq, RoundingOffsetUsesThePaddedGroupLayout) {
    // in = 160, group 128 -> V is [out, 2 * 128]; column k of group g sits at V[r][g*128 + k - g*128].
    const int64_t out = 2, in = 160;
    auto w = randn(out * in, 9);
    w[1 * in + 133] = 0.f;  // u = 0 -> code Q without V
    const QdqOptions o = opts(4, 128, true);
    std::vector<float> v(out * 256, 0.f);
    v[1 * 256 + 128 + 5] = 1.0f;                                   // -> k = 133 of row 1: code Q + 1
    for (int j = 160; j < 256; ++j) v[1 * 256 + j] = 100.f;        // padding positions: no effect
    const QuantizedTensor base = quantize_rtn(w, out, in, o);
    const QuantizedTensor tuned = quantize(w, out, in, v, {}, {}, o);
    EXPECT_EQ(base.scales, tuned.scales);
    for (int64_t i = 0; i < out * in; ++i) {
        if (i == 1 * in + 133) {
            EXPECT_EQ(base.codes[i], 8);
            EXPECT_EQ(tuned.codes[i], 9);
        } else {
            ASSERT_EQ(base.codes[i], tuned.codes[i]) << i;
        }
    }
    EXPECT_EQ(qdq(w, out, in, v, {}, {}, o), tuned.dequantize());
    expect_error([&] { quantize(w, out, in, std::vector<float>(out * in), {}, {}, o); }, {"V holds 320", "[2, 256]"});
}

// ---- properties on random weights --------------------------------------------------------------------

TEST(RtnProperties, CodesRangesExtremesAndErrorBounds) {
    const int64_t out = 40;
    for (int64_t in : {96, 160})
        for (int bits : {2, 3, 4, 8})
            for (int64_t gs : {32, 64, 128, -1})
                for (bool sym : {true, false}) {
                    SCOPED_TRACE(testing::Message() << "in " << in << " bits " << bits << " gs " << gs << " sym " << sym);
                    const auto w = randn(out * in, static_cast<uint32_t>(in * 1000 + bits * 100 + gs + sym));
                    const QuantizedTensor q = quantize_rtn(w, out, in, opts(bits, gs, sym), "rand");
                    ASSERT_NO_THROW(q.validate());
                    const auto y = q.dequantize();
                    const int64_t G = q.group_len(), ng = q.n_groups();
                    const int32_t Q = 1 << (bits - 1), Qa = (1 << bits) - 1;
                    for (int64_t r = 0; r < out; ++r)
                        for (int64_t g = 0; g < ng; ++g) {
                            const size_t gi = r * ng + g;
                            const float s = q.scales[gi];
                            const int32_t z = q.zeros[gi];
                            if (sym) ASSERT_EQ(z, Q);
                            else ASSERT_TRUE(z >= 0 && z <= Qa);
                            ASSERT_EQ(s, fp16_to_float(float_to_fp16(s)));  // fp16 scale
                            const int64_t k0 = g * G, k1 = std::min(in, k0 + G);
                            int64_t kmin = k0, kmax = k0, kabs = k0;
                            for (int64_t k = k0; k < k1; ++k) {
                                const size_t i = r * in + k;
                                ASSERT_LE(q.codes[i], Qa);
                                // plain RTN: error <= |s|/2 unless the integer was clamped
                                const float rr = std::nearbyint(w[i] / s);
                                const float unclamped = sym ? rr : rr + z;
                                const bool clamped = sym ? (rr < -Q || rr > Q - 1) : (unclamped < 0 || unclamped > Qa);
                                const float err = std::fabs(y[i] - w[i]);
                                if (!clamped) ASSERT_LE(err, std::fabs(s) * 0.5f * (1 + 1e-4f)) << "k " << k;
                                else ASSERT_LE(err, std::fabs(s) * 1.1f) << "clamped k " << k;  // fp16 scale: up to Q*2^-11 extra
                                if (w[i] < w[r * in + kmin]) kmin = k;
                                if (w[i] > w[r * in + kmax]) kmax = k;
                                // ties between +|m| and -|m| go to the positive element (negative scale)
                                const float cur = std::fabs(w[r * in + kabs]);
                                if (std::fabs(w[i]) > cur || (std::fabs(w[i]) == cur && w[i] > 0)) kabs = k;
                            }
                            if (sym) {
                                // the largest-magnitude element is the most negative integer -Q (code 0)
                                const size_t i = r * in + kabs;
                                ASSERT_EQ(q.codes[i], 0);
                                ASSERT_EQ(y[i], -Q * s);
                                ASSERT_LE(std::fabs(y[i] - w[i]), std::fabs(w[i]) * std::ldexp(1.f, -10));
                            } else {
                                // min -> code 0 (rint is odd-symmetric), max -> within one step of Qa
                                ASSERT_EQ(q.codes[r * in + kmin], 0);
                                ASSERT_LE(std::fabs(y[r * in + kmin] - w[r * in + kmin]), s * 0.5f * (1 + 1e-4f));
                                ASSERT_GE(q.codes[r * in + kmax], Qa - 1);
                                ASSERT_LE(std::fabs(y[r * in + kmax] - w[r * in + kmax]), s * 1.1f);
                            }
                        }
                    // qdq is the same function
                    ASSERT_EQ(qdq(w, out, in, {}, {}, {}, opts(bits, gs, sym)), y);
                }
}

TEST(RtnProperties, Fp32ScalesSkipTheCast) {
    const auto w = randn(8 * 64, 77);
    // asym: (wmax - wmin) / 15 is not an fp16 value in general (sym m / 2^(b-1) of bf16 weights always is)
    const QuantizedTensor q = quantize_rtn(w, 8, 64, {{4, 32, false}, false});
    bool any_not_fp16 = false;
    for (float s : q.scales) any_not_fp16 |= s != fp16_to_float(float_to_fp16(s));
    EXPECT_TRUE(any_not_fp16);
    EXPECT_EQ(scale_threshold({{4, 32, true}, false}), 1e-8f);
}

// ---- RTN into the packed formats ---------------------------------------------------------------------

TEST(RtnExport, SymRtnToGptqAndAwqAgree) {
    const auto w = randn(64 * 256, 21);
    const QuantizedTensor q = quantize_rtn(w, 64, 256, opts(4, 128, true), "model.layers.0.mlp.up_proj");
    const PackedLinear g = to_gptq(q);
    for (int32_t z : testquant::words_of(g.get("qzeros"))) EXPECT_EQ(z, 0x77777777);
    const QuantizedTensor qg = from_gptq(g.infos("p"), "p", q.scheme());
    const QuantizedTensor qa = from_awq(to_awq(q).infos("p"), "p", q.scheme());
    EXPECT_EQ(qg.dequantize(), q.dequantize());
    EXPECT_EQ(qa.dequantize(), q.dequantize());
    for (int bits : {2, 3, 8}) {
        const QuantizedTensor qb = quantize_rtn(w, 64, 256, opts(bits, 64, true));
        EXPECT_EQ(from_gptq(to_gptq(qb).infos("p"), "p", qb.scheme()).dequantize(), qb.dequantize()) << bits;
    }
}

TEST(RtnExport, RealQwen3NanoWeights) {
    // W4G128 sym RTN of every Linear of layer 0: error bound holds on real weights, and the tuned
    // peer checkpoint shares most integer codes with plain RTN (AutoRound moves codes by at most ~1).
    const TensorStore orig = TensorStore::open(kShared / "models/qwen3-nano");
    const TensorStore ar = TensorStore::open(kShared / "reference/peer-autoround/w4g128-ar200-auto_round");
    for (const char* sub : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                            "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"}) {
        const std::string l = std::string("model.layers.0.") + sub;
        SCOPED_TRACE(l);
        const TensorInfo& info = orig.get(l + ".weight");
        const int64_t out = info.shape[0], in = info.shape[1];
        const auto w = orig.load_f32(l + ".weight");
        const QuantizedTensor q = quantize_rtn(w, out, in, opts(4, 128, true), l);
        const auto y = q.dequantize();
        double err = 0;
        for (size_t i = 0; i < w.size(); ++i) err += std::fabs(y[i] - w[i]) / std::fabs(q.scales[(i / in) * q.n_groups() + (i % in) / 128]);
        err /= static_cast<double>(w.size());
        EXPECT_LT(err, 0.3);
        const QuantizedTensor t = from_auto_round(ar.tensors(), l, q.scheme(), AutoRoundPacking::AutoGptq);
        size_t same = 0;
        for (size_t i = 0; i < q.codes.size(); ++i) same += q.codes[i] == t.codes[i];
        const double frac = static_cast<double>(same) / q.codes.size();
        std::cout << "[ info ] " << l << ": RTN mean error " << err << " steps, codes equal to AutoRound's: " << frac << "\n";
        EXPECT_GT(frac, 0.5);
    }
}
