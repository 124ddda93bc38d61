// tests/ops/test_quant_matmul.cpp — ops/cpu/quant_matmul.h against its scalar reference (dequantize each row
// with gguf::dequantize_row, float dot) for every packed GGUF type, on awkward shapes: out = 37 (not a
// multiple of 8 or of the thread count), in = 3 super-blocks (K-quants) or 5 blocks (32-value types),
// N = 1, 3, 17 activation rows; also linear()'s dispatch (int8 path for few rows, dequantized tiles + sgemm
// for many), the rejection of ragged packed views, the threaded shapes (1 vs 2 threads bit-identical), and grouped
// weights on one input (quant_matmul_q8_group / linear_group) and the decode team's row shares (quant_matmul_q8_part)
// equal to separate / whole calls bit for bit.
//
// The load-time repacked copies (ops/cpu/qmm_repack.h, Q4_0 / Q4_K / Q6_K, 16 rows interleaved): the layout round-trips to
// the file's blocks and dequantizes to the same floats; the 16-row dots (QmmIsa::Best) equal their scalar reference
// (QmmIsa::RepackRef) bit for bit, stay within the activation-rounding bound of the reference, and differ from the
// in-place dots of the same weight only by float rounding of the block sums (same integer dot per block, summed in
// another order): |y_repacked − y_in_place| <= 4·(nb + 24)·FLT_EPSILON·Σ_i A_i·1.01·amax(block(i)) + 1e-6, with
// A_i = |w_i| (Q4_0, Q6_K) or |w_i| + 2·|dmin·mn| (Q4_K, whose scale and min parts are summed apart). Awkward shapes:
// out not a multiple of 16 (the last out % 16 rows keep the in-place dots), Q4_0 block counts of every residue mod 4
// (the VNNI dot takes four blocks per step, then pairs: in = 96, 160, 192, 224, 1056 → nb = 3, 5, 6, 7, 33),
// 1, 3 and 5 super-blocks (Q4_K, Q6_K),
// N = 1, 3, 5; threads 1 and 2 and any team split bit-identical to the whole matmul.
//
// Tolerance of the int8 path, per output: the activation is rounded to int8 per block of B values (B = 32,
// or 256 for the K-quants) with step d = amax(block)/127, so |x_i − x̂_i| <= d/2 and
//   |y − y_ref| <= Σ_i |w_i| · amax(block(i))/254  (+ float rounding, 1e-4 · Σ_i |w_i x_i| + 1e-6).
// The test evaluates that bound exactly for each output, for the build's best dots (AVX-512 VNNI for Q4_0, Q4_K and
// Q6_K where targeted) and for the AVX2 dots. The sgemm path has no activation rounding: it must agree to float rounding
// alone.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <cstdint>
#include <random>
#include <vector>

#include "export/gguf_blocks.h"
#include "ops/cpu/linear.h"
#include "ops/cpu/prefetch_stream.h"
#include "ops/cpu/qmm_repack.h"
#include "ops/cpu/quant_matmul.h"
#include "quant/quant_test_util.h"

using namespace autoround;
using autoround::testquant::expect_error;
using gguf::BlockType;

namespace {

struct Packed {
    std::vector<uint8_t> bytes;   // [out, row_bytes]
    std::vector<float> deq;       // [out, in] the exact weights the blocks hold
    WeightView view;
};

// Random weights [out, in] with a few outliers per row, quantized with the reference quantizer of t.
Packed make_weights(BlockType t, int64_t out, int64_t in, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 0.05f);
    std::vector<float> w(static_cast<size_t>(out * in));
    for (auto& v : w) v = n(rng);
    for (int64_t o = 0; o < out; ++o) w[o * in + (o * 37) % in] *= 8.f;
    Packed p;
    const int64_t rb = gguf::row_bytes(t, in);
    p.bytes.resize(static_cast<size_t>(out * rb));
    p.deq.resize(w.size());
    for (int64_t o = 0; o < out; ++o) {
        gguf::quantize_row(t, w.data() + o * in, in, p.bytes.data() + o * rb);
        gguf::dequantize_row(t, p.bytes.data() + o * rb, in, p.deq.data() + o * in);
    }
    p.view = packed_weight_view("test", t, p.bytes.data(), out, in);
    return p;
}

// Activations [N, in]: mixed scales per block, one all-zero block, an outlier.
std::vector<float> make_x(int64_t N, int64_t in, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    std::vector<float> x(static_cast<size_t>(N * in));
    for (int64_t t = 0; t < N; ++t)
        for (int64_t i = 0; i < in; ++i) x[t * in + i] = n(rng) * (1.f + static_cast<float>((i / 32 + t) % 4));
    for (int64_t i = 0; i < 32 && N > 1; ++i) x[1 * in + i] = 0.f;
    x[0] = 40.f;
    return x;
}

// The per-output bound of the header comment.
double q8_bound(const Packed& p, const float* x, int64_t in, int64_t o, int64_t B) {
    double b = 1e-6;
    for (int64_t blk = 0; blk < in / B; ++blk) {
        float amax = 0.f;
        for (int64_t i = blk * B; i < (blk + 1) * B; ++i) amax = std::max(amax, std::fabs(x[i]));
        for (int64_t i = blk * B; i < (blk + 1) * B; ++i) {
            const double wi = std::fabs(double(p.deq[o * in + i]));
            b += wi * amax / 254.0 + 1e-4 * wi * std::fabs(double(x[i]));
        }
    }
    return b;
}

// A packed weight with its repacked copy attached (view.repacked).
struct Repacked {
    std::shared_ptr<const QmmRepacked> copy;
    WeightView view;
};
Repacked with_repack(const Packed& p) {
    Repacked r{qmm_repack(p.view), p.view};
    r.view.repacked = r.copy.get();
    return r;
}

// The float-rounding bound between the repacked and the in-place dots (file comment), for output o of x row x.
double reorder_bound(const Packed& p, BlockType t, const float* x, int64_t in, int64_t o) {
    const int64_t B = quant_act_block(t), nb = in / gguf::block_elems(t), rb = gguf::row_bytes(t, in);
    double m = 0;
    for (int64_t i = 0; i < in; ++i) {
        float amax = 0.f;
        for (int64_t k = i / B * B; k < (i / B + 1) * B; ++k) amax = std::max(amax, std::fabs(x[k]));
        double a = std::fabs(double(p.deq[o * in + i]));
        if (t == BlockType::Q4_K) {
            const auto& blk = reinterpret_cast<const gguf::BlockQ4_K*>(p.bytes.data() + o * rb)[i / 256];
            uint8_t sc, mn;
            gguf::q4k_get_scale_min(static_cast<int>(i % 256 / 32), blk.scales, sc, mn);
            a += 2.0 * std::fabs(double(gguf::fp16_to_f32(blk.dmin)) * mn);
        }
        m += a * 1.01 * amax;
    }
    return 4.0 * double(nb + 24) * FLT_EPSILON * m + 1e-6;
}

const BlockType kTypes[] = {BlockType::Q4_0, BlockType::Q4_1, BlockType::Q8_0,
                            BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K};

}  // namespace

TEST(QuantMatmul, Int8PathWithinTheActivationRoundingBoundOfTheReference) {
    const int64_t out = 37;
    for (BlockType t : kTypes) {
        const int64_t in = gguf::block_elems(t) == 256 ? 256 * 3 : 32 * 5;
        const int64_t B = quant_act_block(t);
        EXPECT_EQ(B, gguf::block_elems(t) == 256 ? 256 : 32);
        const Packed p = make_weights(t, out, in, 7 + static_cast<uint32_t>(t));
        for (int64_t N : {1, 3, 17}) {
            const std::vector<float> x = make_x(N, in, 100 + static_cast<uint32_t>(N));
            std::vector<float> bias(out);
            for (int64_t o = 0; o < out; ++o) bias[o] = 0.01f * static_cast<float>(o);
            std::vector<float> ref(N * out), got(N * out);
            quant_matmul_ref(x.data(), N, p.view, bias.data(), ref.data());
            // both instruction sets of the int8 path: the build's best (AVX-512 VNNI dots for Q4_0, Q4_K and Q6_K
            // where the build targets them) and AVX2 everywhere
            for (const QmmIsa isa : {QmmIsa::Best, QmmIsa::Avx2}) {
            const char* isa_name = isa == QmmIsa::Best ? "best" : "avx2";
            quant_matmul_q8(x.data(), N, p.view, bias.data(), got.data(), isa);
            double worst = 0;  // largest |err| / bound
            for (int64_t r = 0; r < N; ++r)
                for (int64_t o = 0; o < out; ++o) {
                    const double err = std::fabs(double(got[r * out + o]) - ref[r * out + o]);
                    const double bound = q8_bound(p, x.data() + r * in, in, o, B);
                    worst = std::max(worst, err / bound);
                    ASSERT_LE(err, bound) << gguf::block_type_name(t) << " " << isa_name << " N=" << N << " row "
                                          << r << " out " << o << ": got " << got[r * out + o] << ", ref "
                                          << ref[r * out + o];
                }
            std::printf("[ %s %s N=%lld ] worst |err| = %.3f of the bound\n",
                        std::string(gguf::block_type_name(t)).c_str(), isa_name, (long long)N, worst);
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
            // The bound is loose but not vacuous: the int8 path does differ from float math (except Q8_0 x
            // an exactly representable input, which these are not). Builds without AVX2 (e.g. the sanitizer build,
            // AUTOROUND_NATIVE=OFF) run the scalar reference itself, whose error is 0.
            EXPECT_GT(worst, 0.0);
#endif
            }
        }
    }
}

TEST(QuantMatmul, LinearDispatchesPackedWeights) {
    const int64_t out = 37;
    for (BlockType t : kTypes) {
        const int64_t in = gguf::block_elems(t) == 256 ? 256 * 3 : 32 * 5;
        const Packed p = make_weights(t, out, in, 11 + static_cast<uint32_t>(t));
        for (int64_t N : {1, 3, 17}) {
            const std::vector<float> x = make_x(N, in, 200 + static_cast<uint32_t>(N));
            std::vector<float> ref(N * out), lin(N * out), lref(N * out), q8(N * out);
            quant_matmul_ref(x.data(), N, p.view, nullptr, ref.data());
            linear_ref(x.data(), N, p.view, nullptr, lref.data());  // weight_row_to_f32 dequantizes packed rows
            linear(x.data(), N, p.view, nullptr, lin.data());
            quant_matmul_q8(x.data(), N, p.view, nullptr, q8.data());
            for (int64_t r = 0; r < N; ++r)
                for (int64_t o = 0; o < out; ++o) {
                    const size_t k = static_cast<size_t>(r * out + o);
                    double mag = 1e-6;
                    for (int64_t i = 0; i < in; ++i) mag += std::fabs(double(p.deq[o * in + i]) * x[r * in + i]);
                    EXPECT_NEAR(lref[k], ref[k], 1e-5 * mag) << gguf::block_type_name(t);  // same math
                    if (N <= 4) {
                        EXPECT_EQ(lin[k], q8[k]) << "few rows take the int8 path";
                    } else {  // dequantized tiles + sgemm: float rounding only
                        EXPECT_NEAR(lin[k], ref[k], 1e-5 * mag) << gguf::block_type_name(t) << " N=" << N;
                    }
                }
        }
    }
}

TEST(QuantMatmul, RowDequantizationMatchesTheBlocks) {
    const Packed p = make_weights(BlockType::Q4_K, 5, 512, 3);
    std::vector<float> row(512);
    for (int64_t o = 0; o < 5; ++o) {
        weight_row_to_f32(p.view, o, row.data());
        EXPECT_TRUE(std::equal(row.begin(), row.end(), p.deq.begin() + o * 512));
    }
}

TEST(QuantMatmul, RaggedOrNonPackedViewsAreRejectedNamingTheTensor) {
    std::vector<uint8_t> buf(4096);
    expect_error([&] { packed_weight_view("model.gguf: tensor 'blk.0.attn_q.weight'", BlockType::Q4_0, buf.data(), 4, 48); },
                 {"blk.0.attn_q.weight", "Q4_0", "48", "32-value blocks"});
    expect_error([&] { packed_weight_view("tensor 'blk.3.ffn_down.weight'", BlockType::Q6_K, buf.data(), 2, 300); },
                 {"blk.3.ffn_down.weight", "Q6_K", "256-value blocks"});
    expect_error([&] { packed_weight_view("tensor 'x'", BlockType::Q4_K, buf.data(), 2, 0); }, {"'x'"});
    expect_error([&] { packed_weight_view("tensor 'y'", BlockType::F16, buf.data(), 2, 64); },
                 {"'y'", "F16", "not a packed block type"});
}

// Shapes the threaded path takes (out·in >= 2^16: rows split over threads in dynamic chunks), with row lengths that
// end on an odd 32-value block (the VNNI Q4_0 dot takes blocks in pairs) and on an even one: within the bound of the
// reference, and bit-identical with 1 and 2 threads (each output is one row's dot, whichever thread runs it).
TEST(QuantMatmul, ThreadedShapesMatchTheReferenceAndOneThread) {
    const int prev = omp_get_max_threads();
    for (BlockType t : kTypes) {
        const bool k = gguf::block_elems(t) == 256;
        for (const int64_t in : k ? std::vector<int64_t>{256 * 3, 256 * 4} : std::vector<int64_t>{32 * 7, 32 * 10}) {
            const int64_t out = 1037, B = quant_act_block(t);
            const Packed p = make_weights(t, out, in, 31 + static_cast<uint32_t>(t));
            for (int64_t N : {1, 2}) {
                const std::vector<float> x = make_x(N, in, 300 + static_cast<uint32_t>(N));
                std::vector<float> ref(N * out), one(N * out), two(N * out);
                quant_matmul_ref(x.data(), N, p.view, nullptr, ref.data());
                omp_set_num_threads(1);
                quant_matmul_q8(x.data(), N, p.view, nullptr, one.data());
                omp_set_num_threads(2);
                quant_matmul_q8(x.data(), N, p.view, nullptr, two.data());
                for (int64_t r = 0; r < N; ++r)
                    for (int64_t o = 0; o < out; ++o) {
                        const size_t i = static_cast<size_t>(r * out + o);
                        ASSERT_EQ(one[i], two[i]) << gguf::block_type_name(t) << " in=" << in << " out " << o;
                        ASSERT_LE(std::fabs(double(two[i]) - ref[i]), q8_bound(p, x.data() + r * in, in, o, B))
                            << gguf::block_type_name(t) << " in=" << in << " N=" << N << " out " << o;
                    }
            }
        }
    }
    omp_set_num_threads(prev);
}

// A group of weights of mixed types on one input (as q|k|v of a Q4_K_M file: Q4_K and Q6_K; here also the 32-value
// types, whose activation layouts are quantized alongside): each output bit-identical to quant_matmul_q8 on that weight
// alone, with 1 and 2 threads; linear_group likewise equals linear() per weight, for decode rows and for prefill rows
// (which take the sgemm path weight by weight).
TEST(QuantMatmul, GroupEqualsSeparateCallsBitForBit) {
    const int prev = omp_get_max_threads();
    const int64_t in = 512;
    const BlockType types[] = {BlockType::Q4_0, BlockType::Q6_K, BlockType::Q4_K, BlockType::Q8_0};
    const int64_t outs[] = {1037, 300, 129, 64};
    std::vector<Packed> ws;
    for (int i = 0; i < 4; ++i) ws.push_back(make_weights(types[i], outs[i], in, 50 + static_cast<uint32_t>(i)));
    std::vector<float> bias(1037);
    for (size_t o = 0; o < bias.size(); ++o) bias[o] = 0.001f * static_cast<float>(o);
    for (int threads : {1, 2})
        for (int64_t N : {1, 2, 17}) {
            omp_set_num_threads(threads);
            const std::vector<float> x = make_x(N, in, 400 + static_cast<uint32_t>(N));
            std::vector<std::vector<float>> sep(4), grp(4), lsep(4), lgrp(4);
            std::vector<QmmOut> q;
            std::vector<LinearOut> l;
            for (int i = 0; i < 4; ++i) {
                sep[i].resize(N * outs[i]); grp[i].resize(N * outs[i]);
                lsep[i].resize(N * outs[i]); lgrp[i].resize(N * outs[i]);
                const float* b = i == 1 ? bias.data() : nullptr;
                quant_matmul_q8(x.data(), N, ws[i].view, b, sep[i].data());
                linear(x.data(), N, ws[i].view, b, lsep[i].data());
                q.push_back(QmmOut{&ws[i].view, b, grp[i].data()});
                l.push_back(LinearOut{&ws[i].view, b, lgrp[i].data()});
            }
            quant_matmul_q8_group(x.data(), N, q);
            linear_group(x.data(), N, l);
            for (int i = 0; i < 4; ++i) {
                EXPECT_EQ(sep[i], grp[i]) << gguf::block_type_name(types[i]) << " threads=" << threads << " N=" << N;
                EXPECT_EQ(lsep[i], lgrp[i]) << gguf::block_type_name(types[i]) << " threads=" << threads << " N=" << N;
            }
        }
    omp_set_num_threads(prev);
    std::vector<float> x(256), y(8);
    const Packed a = make_weights(BlockType::Q4_0, 8, 256, 1), b = make_weights(BlockType::Q4_0, 8, 512, 2);
    const QmmOut bad[2] = {{&a.view, nullptr, y.data()}, {&b.view, nullptr, y.data()}};
    expect_error([&] { quant_matmul_q8_group(x.data(), 1, bad); }, {"one input"});
}

TEST(QuantMatmul, RepackedLayoutRoundTripsAndDequantizesLikeTheFileBlocks) {
    for (const auto& [t, in] : std::vector<std::pair<BlockType, int64_t>>{
             {BlockType::Q4_0, 160}, {BlockType::Q4_0, 256}, {BlockType::Q4_K, 256}, {BlockType::Q4_K, 768},
             {BlockType::Q6_K, 256}, {BlockType::Q6_K, 1280}}) {
        const int64_t out = 37, rb = gguf::row_bytes(t, in);
        const Packed p = make_weights(t, out, in, 11);
        const Repacked r = with_repack(p);
        ASSERT_TRUE(r.copy);
        EXPECT_EQ(r.copy->rows, 32);
        EXPECT_EQ(r.copy->group_bytes % 64, 0);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(r.copy->group(1)) % 64, 0u);
        std::vector<uint8_t> blocks(static_cast<size_t>(rb));
        std::vector<float> row(static_cast<size_t>(in));
        for (int64_t o = 0; o < r.copy->rows; ++o) {
            qmm_repack_unpack_row(*r.copy, o, blocks.data());
            ASSERT_EQ(0, std::memcmp(blocks.data(), p.bytes.data() + o * rb, static_cast<size_t>(rb)))
                << gguf::block_type_name(t) << " in=" << in << " row " << o;
            qmm_repack_dequantize_row(*r.copy, o, row.data());
            ASSERT_TRUE(std::equal(row.begin(), row.end(), p.deq.begin() + o * in))
                << gguf::block_type_name(t) << " in=" << in << " row " << o;
        }
        expect_error([&] { qmm_repack_unpack_row(*r.copy, 32, blocks.data()); }, {"row 32 of 32"});
    }
    // no layout for the other types, none for fewer than 16 rows
    EXPECT_FALSE(qmm_repack(make_weights(BlockType::Q5_K, 37, 256, 1).view));
    EXPECT_FALSE(qmm_repack(make_weights(BlockType::Q6_K, 15, 256, 1).view));
    EXPECT_FALSE(qmm_repack(make_weights(BlockType::Q4_0, 15, 256, 1).view));
}

TEST(QuantMatmul, RepackedDotsEqualTheirScalarReferenceAndTheInPlaceDotsUpToRounding) {
    const int prev = omp_get_max_threads();
    for (const auto& [t, in] : std::vector<std::pair<BlockType, int64_t>>{{BlockType::Q4_0, 160},
                                                                         {BlockType::Q4_0, 96},
                                                                         {BlockType::Q4_0, 1056},
                                                                         {BlockType::Q4_0, 192},
                                                                         {BlockType::Q4_0, 224},
                                                                         {BlockType::Q4_K, 256},
                                                                         {BlockType::Q4_K, 768},
                                                                         {BlockType::Q6_K, 256},
                                                                         {BlockType::Q6_K, 768},
                                                                         {BlockType::Q6_K, 1280}})
        for (const int64_t out : {16, 37, 71}) {
            const Packed p = make_weights(t, out, in, 21 + static_cast<uint32_t>(out));
            const Repacked r = with_repack(p);
            ASSERT_TRUE(r.copy);
            const std::string what = std::string(gguf::block_type_name(t)) + " in=" + std::to_string(in) +
                                     " out=" + std::to_string(out);
            for (const int64_t N : {1, 3, 5}) {
                const std::vector<float> x = make_x(N, in, 900 + static_cast<uint32_t>(N));
                std::vector<float> bias(out);
                for (int64_t o = 0; o < out; ++o) bias[o] = 0.01f * static_cast<float>(o);
                std::vector<float> ref(N * out), inplace(N * out), best(N * out), best2(N * out), scalar(N * out);
                quant_matmul_ref(x.data(), N, p.view, bias.data(), ref.data());
                omp_set_num_threads(1);
                quant_matmul_q8(x.data(), N, p.view, bias.data(), inplace.data());
                quant_matmul_q8(x.data(), N, r.view, bias.data(), best.data());
                quant_matmul_q8(x.data(), N, r.view, bias.data(), scalar.data(), QmmIsa::RepackRef);
                omp_set_num_threads(2);
                quant_matmul_q8(x.data(), N, r.view, bias.data(), best2.data());
                double worst = 0;  // largest |repacked − in place| / bound
                for (int64_t i = 0; i < N; ++i)
                    for (int64_t o = 0; o < out; ++o) {
                        const size_t k = static_cast<size_t>(i * out + o);
                        ASSERT_EQ(best[k], best2[k]) << what << " N=" << N << " out " << o << ": 1 vs 2 threads";
                        if (qmm_repacked_dots_available())
                            ASSERT_EQ(best[k], scalar[k]) << what << " N=" << N << " out " << o;
                        ASSERT_LE(std::fabs(double(best[k]) - ref[k]), q8_bound(p, x.data() + i * in, in, o,
                                                                                quant_act_block(t)))
                            << what << " N=" << N << " out " << o;
                        ASSERT_LE(std::fabs(double(scalar[k]) - ref[k]), q8_bound(p, x.data() + i * in, in, o,
                                                                                  quant_act_block(t)))
                            << what << " N=" << N << " out " << o;
                        const double err = std::fabs(double(best[k]) - inplace[k]),
                                     bound = reorder_bound(p, t, x.data() + i * in, in, o);
                        worst = std::max(worst, err / bound);
                        ASSERT_LE(err, bound) << what << " N=" << N << " out " << o << ": repacked " << best[k]
                                              << ", in place " << inplace[k];
                        if (o >= r.copy->rows) ASSERT_EQ(best[k], inplace[k]) << what << " tail row " << o;
                    }
                if (N == 1 && out == 37)
                    std::printf("[ %s ] worst |repacked - in place| = %.2e of the reorder bound\n", what.c_str(),
                                worst);
            }
        }
    omp_set_num_threads(prev);
}

// The persistent decode team's parts (quant_matmul_q8_part): any split of each weight's rows — empty shares, one
// row, ragged cuts — over "threads" run one after another with their own scratch, with and without a
// PrefetchStream holding the rows in read order, with both instruction sets: every output bit-identical to
// quant_matmul_q8 on the whole weight; rows outside a share are not written. Also with repacked copies of the Q4_0,
// Q4_K and Q6_K weights (the ragged cuts split 16-row groups; the stream holds add_qmm_part_ranges' ranges).
TEST(QuantMatmul, TeamPartsEqualTheWholeMatmulBitForBit) {
    const int64_t in = 512;
    const BlockType types[] = {BlockType::Q4_0, BlockType::Q6_K, BlockType::Q4_K, BlockType::Q8_0, BlockType::Q5_K,
                               BlockType::Q4_1};
    const int64_t outs[] = {1037, 300, 129, 64, 33, 7};
    std::vector<Packed> ws;
    for (int i = 0; i < 6; ++i) ws.push_back(make_weights(types[i], outs[i], in, 70 + static_cast<uint32_t>(i)));
    std::vector<float> bias(1037);
    for (size_t o = 0; o < bias.size(); ++o) bias[o] = 0.002f * static_cast<float>(o);
    std::vector<std::shared_ptr<const QmmRepacked>> copies;
    for (const bool repack : {false, true}) {
    if (repack)
        for (Packed& w : ws)
            if (qmm_repack_supported(*w.view.block)) {
                copies.push_back(qmm_repack(w.view));
                w.view.repacked = copies.back().get();
            }
    for (const QmmIsa isa : {QmmIsa::Best, QmmIsa::Avx2, QmmIsa::RepackRef})
        for (int64_t N : {1, 3})
            for (const bool with_pf : {false, true})
                for (int nt : {1, 2, 3}) {
                    const std::vector<float> x = make_x(N, in, 500 + static_cast<uint32_t>(N));
                    std::vector<std::vector<float>> want(6), got(6);
                    for (int i = 0; i < 6; ++i) {
                        const float* b = i % 2 ? bias.data() : nullptr;
                        want[i].resize(N * outs[i]);
                        got[i].assign(N * outs[i], -7.f);
                        quant_matmul_q8(x.data(), N, ws[i].view, b, want[i].data(), isa);
                    }
                    for (int t = 0; t < nt; ++t) {
                        QmmScratch scratch;
                        PrefetchStream pf;
                        std::vector<QmmPart> parts;
                        for (int i = 0; i < 6; ++i) {
                            // a ragged split: thread t's share of weight i
                            const int64_t r0 = outs[i] * t / nt + (t > 0 ? i % 2 : 0);
                            const int64_t r1 = t + 1 == nt ? outs[i] : outs[i] * (t + 1) / nt + i % 2;
                            parts.push_back(QmmPart{&ws[i].view, i % 2 ? bias.data() : nullptr, got[i].data(), r0, r1});
                            add_qmm_part_ranges(pf, ws[i].view, r0, r1, isa);
                        }
                        check_qmm_parts(parts);
                        pf.start(4096);
                        quant_matmul_q8_part(x.data(), N, parts, scratch, with_pf ? &pf : nullptr, isa);
                        // split the call in two as the team does (weights 0..2, then 3..5) with the same scratch
                        if (t == 0 && nt == 1) {
                            for (int i = 0; i < 6; ++i) got[i].assign(N * outs[i], -7.f);
                            const std::span<const QmmPart> all(parts);
                            quant_matmul_q8_part(x.data(), N, all.subspan(0, 3), scratch, nullptr, isa);
                            quant_matmul_q8_part(x.data(), N, all.subspan(3), scratch, nullptr, isa);
                        }
                        if (with_pf) EXPECT_EQ(pf.position(), pf.total());
                    }
                    for (int i = 0; i < 6; ++i)
                        EXPECT_EQ(want[i], got[i]) << gguf::block_type_name(types[i]) << " nt=" << nt << " N=" << N
                                                   << " pf=" << with_pf << " repack=" << repack;
                }
    }
    const Packed a = make_weights(BlockType::Q4_0, 8, 256, 1);
    std::vector<float> y(8);
    const QmmPart bad[1] = {{&a.view, nullptr, y.data(), 3, 9}};
    expect_error([&] { check_qmm_parts(bad); }, {"rows [3, 9)"});
}
