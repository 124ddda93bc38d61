// tests/export/test_gguf_blocks.cpp — export/gguf_blocks.h: the worked examples of
// checkpoint-formats.md §5.4 (Q8_0 and Q4_0 blocks, the Q4_K scale packing), element accessors against
// the documented bit positions, round trips of every type with error bounds, and awkward inputs (all
// zeros, constant rows, ±large values, single spikes): no NaN/Inf, codes in range, dequantize(quantize(x))
// close to x.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "export/gguf_blocks.h"

using namespace autoround;
using namespace autoround::gguf;

namespace {

const BlockType kAll[] = {BlockType::F32, BlockType::F16,  BlockType::BF16, BlockType::Q4_0, BlockType::Q4_1,
                          BlockType::Q8_0, BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K};

std::vector<float> roundtrip(BlockType t, const std::vector<float>& x) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, static_cast<int64_t>(x.size()))));
    quantize_row(t, x.data(), static_cast<int64_t>(x.size()), q.data());
    std::vector<float> y(x.size());
    dequantize_row(t, q.data(), static_cast<int64_t>(x.size()), y.data());
    return y;
}

// Relative RMS error of y against x.
double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
    double e = 0, s = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        e += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        s += double(x[i]) * x[i];
    }
    return s > 0 ? std::sqrt(e / s) : std::sqrt(e);
}

}  // namespace

TEST(GgufBlocks, Q8_0WorkedExample) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
    BlockQ8_0 b;
    quantize_block_q8_0(x, b);
    EXPECT_EQ(b.d, 0x3008);  // fp16(16/127) = 0.12597656, bytes 08 30
    EXPECT_EQ(b.qs[0], -127);
    EXPECT_EQ(b.qs[1], -119);
    EXPECT_EQ(b.qs[2], -111);
    EXPECT_EQ(b.qs[3], -103);
    EXPECT_EQ(b.qs[8], -64);  // -8 * 7.9375 = -63.5: roundf rounds half away from zero
    EXPECT_EQ(b.qs[31], 119);
    const auto* bytes = reinterpret_cast<const uint8_t*>(&b);
    EXPECT_EQ(bytes[0], 0x08);
    EXPECT_EQ(bytes[1], 0x30);
    EXPECT_EQ(bytes[2], 0x81);
    EXPECT_EQ(bytes[3], 0x89);
    EXPECT_EQ(bytes[4], 0x91);
    EXPECT_EQ(bytes[5], 0x99);
}

TEST(GgufBlocks, Q4_0WorkedExample) {
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 - 8);
    BlockQ4_0 b;
    quantize_block_q4_0(x, b);
    EXPECT_EQ(b.d, 0x3C00);  // d = -8 / -8 = 1.0
    for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], static_cast<uint8_t>(j * 0x11)) << j;
    float y[32];
    dequant_q4_0(b, y);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]);
    // element j+16 is the high nibble of qs[j], not a neighbour
    EXPECT_EQ(q4_nibble(b.qs, 3), 3);
    EXPECT_EQ(q4_nibble(b.qs, 19), 3);
}

TEST(GgufBlocks, Q4_KScalePackingWorkedExample) {
    const uint8_t sc[8] = {1, 2, 3, 4, 33, 34, 35, 63};
    const uint8_t mn[8] = {5, 6, 7, 8, 40, 41, 42, 0};
    uint8_t s[12];
    q4k_pack_scale_min(sc, mn, s);
    const uint8_t want[12] = {0x81, 0x82, 0x83, 0xC4, 0x85, 0x86, 0x87, 0x08, 0x81, 0x92, 0xA3, 0x0F};
    for (int i = 0; i < 12; ++i) EXPECT_EQ(s[i], want[i]) << i;
    for (int j = 0; j < 8; ++j) {
        uint8_t a, b;
        q4k_get_scale_min(j, s, a, b);
        EXPECT_EQ(a, sc[j]);
        EXPECT_EQ(b, mn[j]);
    }
}

TEST(GgufBlocks, CodePositionsFollowTheDoc) {
    // Q4_K: element 64c + l -> low nibble of qs[32c + l]; 64c + 32 + l -> high nibble.
    BlockQ4_K k{};
    k.qs[32 * 2 + 5] = 0xA7;
    EXPECT_EQ(q4k_code(k, 128 + 5), 0x7);
    EXPECT_EQ(q4k_code(k, 128 + 32 + 5), 0xA);
    // Q6_K: pack codes e % 64, read them back, and check one element by hand: e = 200 -> h 1, r 72,
    // t 2, l 8: low bits = high nibble of ql[64 + 8], high bits = (qh[32 + 8] >> 4) & 3.
    uint8_t L[256];
    for (int e = 0; e < 256; ++e) L[e] = static_cast<uint8_t>((e * 37) % 64);
    BlockQ6_K b{};
    q6k_pack_codes(L, b);
    for (int e = 0; e < 256; ++e) ASSERT_EQ(q6k_code(b, e), L[e]) << e;
    EXPECT_EQ((b.ql[72] >> 4) | (((b.qh[40] >> 4) & 3) << 4), L[200]);
    // Q5_K: the fifth bit of element 64c + l is qh[l] bit 2c, of 64c + 32 + l bit 2c + 1.
    for (int e = 0; e < 256; ++e) L[e] = static_cast<uint8_t>((e * 11) % 32);
    BlockQ5_K f{};
    q5k_pack_codes(L, f);
    for (int e = 0; e < 256; ++e) ASSERT_EQ(q5k_code(f, e), L[e]) << e;
    EXPECT_EQ(((f.qh[7] >> 5) & 1) << 4 | (f.qs[64 + 7] >> 4), L[128 + 32 + 7]);
}

TEST(GgufBlocks, NearestIntIsTiesToEven) {
    EXPECT_EQ(nearest_int(0.5f), 0);
    EXPECT_EQ(nearest_int(1.5f), 2);
    EXPECT_EQ(nearest_int(2.5f), 2);
    EXPECT_EQ(nearest_int(-0.5f), 0);
    EXPECT_EQ(nearest_int(-1.5f), -2);
    EXPECT_EQ(nearest_int(-2.6f), -3);
    EXPECT_EQ(nearest_int(4194303.f), 4194303);
}

TEST(GgufBlocks, RoundTripsOfEveryType) {
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.f, 0.02f);
    std::vector<float> x(1024);
    for (auto& v : x) v = nd(rng);
    // Expected relative RMS errors of Gaussian data (4-bit ~ 0.1, 5-bit ~ 0.05, 6-bit ~ 0.025, 8-bit ~ 0.005).
    const struct {
        BlockType t;
        double max_err;
    } cases[] = {{BlockType::F32, 0},     {BlockType::F16, 1e-3},  {BlockType::BF16, 5e-3},
                 {BlockType::Q4_0, 0.15}, {BlockType::Q4_1, 0.13}, {BlockType::Q8_0, 0.01},
                 {BlockType::Q4_K, 0.12}, {BlockType::Q5_K, 0.06}, {BlockType::Q6_K, 0.03}};
    for (const auto& c : cases) {
        const std::vector<float> y = roundtrip(c.t, x);
        EXPECT_LE(rel_rmse(x, y), c.max_err) << block_type_name(c.t);
        if (c.t == BlockType::F32) {
            EXPECT_EQ(y, x);
        }
    }
    // More bits, less error.
    EXPECT_LT(rel_rmse(x, roundtrip(BlockType::Q5_K, x)), rel_rmse(x, roundtrip(BlockType::Q4_K, x)));
    EXPECT_LT(rel_rmse(x, roundtrip(BlockType::Q6_K, x)), rel_rmse(x, roundtrip(BlockType::Q5_K, x)));
}

TEST(GgufBlocks, PerElementBoundsOfTheSimpleTypes) {
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> ud(-3.f, 3.f);
    std::vector<float> x(32 * 64);
    for (auto& v : x) v = ud(rng);
    for (BlockType t : {BlockType::Q8_0, BlockType::Q4_1}) {
        std::vector<uint8_t> q(static_cast<size_t>(row_bytes(t, static_cast<int64_t>(x.size()))));
        quantize_row(t, x.data(), static_cast<int64_t>(x.size()), q.data());
        std::vector<float> y(x.size());
        dequantize_row(t, q.data(), static_cast<int64_t>(x.size()), y.data());
        for (size_t b = 0; b < x.size() / 32; ++b) {
            uint16_t dh;
            std::memcpy(&dh, q.data() + b * static_cast<size_t>(block_bytes(t)), 2);
            const float d = fp16_to_float(dh);
            for (size_t j = 0; j < 32; ++j) {
                const size_t i = b * 32 + j;
                // half a step, plus the fp16 rounding of d (and m) times the largest code
                const float tol = t == BlockType::Q8_0 ? 0.5f * d + 127 * d * 1e-3f : 0.5f * d + 16 * d * 1e-3f + 3e-3f;
                EXPECT_LE(std::fabs(y[i] - x[i]), tol) << block_type_name(t) << " element " << i;
            }
        }
    }
}

TEST(GgufBlocks, AwkwardValues) {
    std::vector<std::vector<float>> rows;
    rows.push_back(std::vector<float>(256, 0.f));               // all zeros
    rows.push_back(std::vector<float>(256, 0.75f));             // constant positive
    rows.push_back(std::vector<float>(256, -3.f));              // constant negative
    std::vector<float> spike(256, 0.f);
    spike[77] = 1000.f;                                         // one spike
    rows.push_back(spike);
    std::vector<float> big(256);
    for (int i = 0; i < 256; ++i) big[i] = (i % 2 ? 1.f : -1.f) * 60000.f * (i + 1) / 256.f;  // near fp16 max
    rows.push_back(big);
    std::vector<float> tiny(256);
    for (int i = 0; i < 256; ++i) tiny[i] = 1e-9f * static_cast<float>(i - 128);  // below fp16 resolution
    rows.push_back(tiny);
    for (const auto& x : rows) {
        for (BlockType t : kAll) {
            if (t == BlockType::F16) continue;  // not meaningful for |x| beyond fp16 here
            const std::vector<float> y = roundtrip(t, x);
            float amax = 0;
            for (float v : x) amax = std::max(amax, std::fabs(v));
            for (size_t i = 0; i < y.size(); ++i) {
                ASSERT_TRUE(std::isfinite(y[i])) << block_type_name(t) << " element " << i;
                ASSERT_LE(std::fabs(y[i]), amax * 1.01f + 1e-6f) << block_type_name(t) << " element " << i;
            }
        }
    }
    // All zeros dequantize to zeros for every type.
    for (BlockType t : kAll)
        for (float v : roundtrip(t, rows[0])) ASSERT_EQ(v, 0.f) << block_type_name(t);
    // A constant non-negative row is exact in the asymmetric types (Q4_1 min = the value, d = 0).
    for (float v : roundtrip(BlockType::Q4_1, rows[1])) EXPECT_EQ(v, 0.75f);
    // The spike survives in every quantized type (its block's scale comes from it).
    for (BlockType t : {BlockType::Q4_0, BlockType::Q8_0, BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K})
        EXPECT_NEAR(roundtrip(t, rows[3])[77], 1000.f, 1000.f * 0.02f) << block_type_name(t);
}

TEST(GgufBlocks, RowSizes) {
    EXPECT_EQ(row_bytes(BlockType::Q4_K, 512), 288);
    EXPECT_EQ(row_bytes(BlockType::Q5_K, 256), 176);
    EXPECT_EQ(row_bytes(BlockType::Q6_K, 1280), 1050);
    EXPECT_EQ(row_bytes(BlockType::BF16, 7), 14);
    EXPECT_THROW(row_bytes(BlockType::Q4_K, 288), Error);
    EXPECT_TRUE(is_supported(13));
    EXPECT_FALSE(is_supported(6));
}
