// tests/cuda/test_cuda_quant_gemv.cpp — the decode matrix–vector kernels (ops/cuda/quant_gemv.h) against the CPU:
//   * quant_gemv on awkward shapes (n ∈ {1, 3, 4, 37, 130, 2558, 2560}: one column, fewer than a vector, one
//     vector, non-multiples of 4 (the scalar-column path), a multiple of 4 (the 16-byte path) with a partial
//     column tile, the Qwen3-4B hidden size; k ∈ {32, 96, 384, 2560}; group_len ∈ {32, 64, 128, k}), bits 2, 3,
//     4, 8, y = and y +=, y starting as NaN for y = (so a missed zeroing shows);
//   * every weight the GPU multiplies is exact: with one-hot x, y[n] = w[n][k0] exactly, for all 63,488 finite fp16
//     scales (±0, subnormals, the largest) at 4 bits with zero points 0..16, and random scales at 2, 3 and 8 bits;
//   * quant_dequantize_bf16 bit-exact (zero signs included) with the host dequantization;
//   * bf16_gemv on odd n and k ∈ {8, 24, 1000, 2560}, x 16-byte aligned or not;
//   * replay of a captured CUDA graph (y = with the k split across CTAs: the zeroing must be captured too);
//   * argument errors (bits 5, k or group_len not a multiple of 32, group_len not dividing k, unaligned or
//     overlapping arrays) throw autoround::Error.
// The reference weights come from the project's own host path: codes → export/pack.h's gptq_pack_qweight for the
// packed qweight, and QuantizedTensor::dequantize (w = (q − z)·s in FP32) rounded to bf16 (round_to_bf16, as the CPU
// model runs it) for the values; products and sums in float64.
//
// Tolerance of the products (random x): |y − y_ref| ≤ 1e-4 · (Σ_k |w·x| + |y0|) per row (y0: the initial y of y +=).
// The GPU sums in FP32 in a different order (per-thread chains over ≤ k/S inputs, then shared-memory and atomic
// or shuffle reductions): the worst-case bound is ≈ k·2⁻²⁴ relative to Σ|w·x| (1.5e-4 at k = 2560, never reached
// by random signs), the typical error ≈ √k·2⁻²⁴ ≈ 3e-6; 1e-4 is far above the typical error and far below what a
// wrong index, group or column produces. A single wrong weight rounding could hide under it, which is why the
// weights themselves are checked exactly (one-hot x) and the dequantization bit for bit.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "export/pack.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/quant_gemv.h"
#include "quant/quantized_tensor.h"
#include "quant_gemv_test_util.h"

using namespace autoround;

namespace {

#define QG_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

template <typename T>
using DevArray = cuda_test::DevBuf<T>;
using DevQuant = cuda_test::DevPackedWeight<>;  // the packed weight in device memory

// One packed weight on the host: the arrays of quant_gemv.h and the bf16 values the kernels must use.
struct HostQuant : cuda_test::PackedArrays {
    std::vector<uint16_t> w;  // [n, k] bf16 bits
};

// Random codes and zero points (0 .. 2^bits, 255 at most: uint8), scales from scale_bits(row, group) (fp16 bits).
template <typename ScaleFn>
HostQuant make_quant(int64_t n, int64_t k, int64_t group_len, int bits, std::mt19937& g, ScaleFn&& scale_bits) {
    QuantizedTensor t;
    t.name = "test";
    t.bits = bits;
    t.group_size = group_len;
    t.sym = false;
    t.out_features = n;
    t.in_features = k;
    const int64_t ng = k / group_len;
    const int qmax = (1 << bits) - 1, zmax = std::min(1 << bits, 255);
    std::uniform_int_distribution<int> code(0, qmax), zero(0, zmax);
    t.codes.resize(size_t(n * k));
    for (auto& c : t.codes) c = static_cast<uint8_t>(code(g));
    t.scales.resize(size_t(n * ng));
    t.zeros.resize(size_t(n * ng));
    HostQuant h;
    h.n = n;
    h.k = k;
    h.group_len = group_len;
    h.bits = bits;
    h.scales.resize(size_t(ng * n));
    h.zeros.resize(size_t(ng * n));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t j = 0; j < ng; ++j) {
            const uint16_t sb = scale_bits(r, j);
            const int z = zero(g);
            t.scales[size_t(r * ng + j)] = fp16_to_float(sb);
            t.zeros[size_t(r * ng + j)] = z;
            h.scales[size_t(j * n + r)] = sb;
            h.zeros[size_t(j * n + r)] = static_cast<uint8_t>(z);
        }
    h.qweight = pack::gptq_pack_qweight(t.codes, n, k, bits);
    const std::vector<float> deq = t.dequantize();
    h.w.resize(deq.size());
    for (size_t i = 0; i < deq.size(); ++i) h.w[i] = float_to_bf16(deq[i]);
    return h;
}

// Random normal fp16 scales of either sign, magnitudes 2^-12 .. 2^1.
HostQuant random_quant(int64_t n, int64_t k, int64_t group_len, int bits, uint32_t seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> e(-12.f, 1.f);
    std::bernoulli_distribution neg(0.25);
    return make_quant(n, k, group_len, bits, g, [&](int64_t, int64_t) {
        const float s = std::exp2(e(g));
        return float_to_fp16(neg(g) ? -s : s);
    });
}

using cuda_test::randn;

// Checks y against Σ_k w[r][k]·x[k] (+ y0[r]) in float64; w as bf16 bits [n, k].
void expect_products(const std::vector<float>& y, const std::vector<uint16_t>& w, int64_t n, int64_t k,
                     const std::vector<float>& x, const std::vector<float>* y0, const std::string& what) {
    cuda_test::expect_rows_close(
        y, n, k, [&](int64_t r, int64_t c) { return double(bf16_to_float(w[size_t(r * k + c)])); }, x, y0, 1e-4,
        "1e-4", what);
}

std::string label(const HostQuant& h, bool accumulate) {
    return "bits " + std::to_string(h.bits) + " [n " + std::to_string(h.n) + ", k " + std::to_string(h.k) +
           "] group " + std::to_string(h.group_len) + (accumulate ? " y +=" : " y =");
}

struct Shape {
    int64_t n, k, group_len;
};
// n: 1 column, < 1 vector, 1 vector, odd, partial tiles, the 4B hidden size (and 2 less: the scalar path)
constexpr Shape kShapes[] = {{1, 32, 32},    {3, 96, 32},      {4, 128, 128},     {37, 384, 128},   {130, 384, 64},
                             {132, 96, 96},  {256, 2560, 128}, {2558, 2560, 2560}, {2560, 2560, 128}, {64, 384, 384}};

#define SKIP_WITHOUT_GPU() \
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

TEST(CudaQuantGemv, MatchesCpuReference) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 1;
    for (const int bits : {2, 3, 4, 8})
        for (const Shape& s : kShapes) {
            const HostQuant h = random_quant(s.n, s.k, s.group_len, bits, seed++);
            DevQuant d(h);
            const std::vector<float> x = randn(size_t(s.k), seed++);
            const std::vector<float> y0 = randn(size_t(s.n), seed++, 0.f, 4.f);
            DevArray<float> dx(x), dy{size_t(s.n)};
            ASSERT_TRUE(d.qweight.p && d.scales.p && d.zeros.p && dx.p && dy.p);
            for (const bool acc : {false, true}) {
                if (acc) {
                    dy.put(y0);
                } else {
                    QG_CUDA_OK(cudaMemset(dy.p, 0xff, dy.n * sizeof(float)));  // NaN: y = must overwrite
                }
                quant_gemv(d.w, dx.p, dy.p, acc, nullptr);
                QG_CUDA_OK(cudaDeviceSynchronize());
                expect_products(dy.get(), h.w, s.n, s.k, x, acc ? &y0 : nullptr, label(h, acc));
            }
        }
}

// One-hot x: y[r] = w[r][c]·1 + Σ ±0 = w[r][c] exactly, for every c.
void expect_weights_exact(const HostQuant& h) {
    DevQuant d(h);
    DevArray<float> dx{size_t(h.k)}, dy{size_t(h.n)};
    ASSERT_TRUE(d.qweight.p && d.scales.p && d.zeros.p && dx.p && dy.p);
    std::vector<float> x(size_t(h.k), 0.f);
    int bad = 0;
    for (int64_t c = 0; c < h.k; ++c) {
        x[size_t(c)] = 1.f;
        if (c > 0) x[size_t(c - 1)] = 0.f;
        dx.put(x);
        quant_gemv(d.w, dx.p, dy.p, false, nullptr);
        QG_CUDA_OK(cudaDeviceSynchronize());
        const std::vector<float> y = dy.get();
        for (int64_t r = 0; r < h.n; ++r) {
            const float ref = bf16_to_float(h.w[size_t(r * h.k + c)]);
            if (y[size_t(r)] != ref && bad++ < 5)
                ADD_FAILURE() << label(h, false) << ": w[" << r << "][" << c << "] = " << y[size_t(r)] << ", expected "
                              << ref << " (scale bits 0x" << std::hex
                              << h.scales[size_t(c / h.group_len * h.n + r)] << std::dec << ", zero "
                              << int(h.zeros[size_t(c / h.group_len * h.n + r)]) << ")";
        }
    }
    EXPECT_EQ(bad, 0) << label(h, false) << ": " << bad << " weights differ";
}

TEST(CudaQuantGemv, EveryFp16ScaleExact) {
    SKIP_WITHOUT_GPU();
    // 4 bits, k 64 in groups of 32: 31744 columns × 2 groups = every finite fp16 bit pattern once.
    std::vector<uint16_t> finite;
    for (uint32_t b = 0; b < 65536; ++b)
        if (((b >> 10) & 0x1f) != 0x1f) finite.push_back(static_cast<uint16_t>(b));
    ASSERT_EQ(finite.size(), 63488u);
    std::mt19937 g(7);
    const int64_t n = int64_t(finite.size()) / 2;
    expect_weights_exact(make_quant(n, 64, 32, 4, g, [&](int64_t r, int64_t j) { return finite[size_t(r * 2 + j)]; }));
    uint32_t seed = 100;
    for (const int bits : {2, 3, 8}) expect_weights_exact(random_quant(1000, 64, 32, bits, seed++));
    // the 16-byte path with many k splits (atomics), and the scalar path
    expect_weights_exact(random_quant(8, 2048, 128, 4, seed++));
    expect_weights_exact(random_quant(7, 256, 64, 3, seed++));
}

TEST(CudaQuantGemv, DequantizeBitExact) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 1000;
    for (const int bits : {2, 3, 4, 8})
        for (const Shape& s : kShapes) {
            const HostQuant h = random_quant(s.n, s.k, s.group_len, bits, seed++);
            DevQuant d(h);
            DevArray<uint16_t> out{size_t(s.n * s.k)};
            ASSERT_TRUE(out.p);
            QG_CUDA_OK(cudaMemset(out.p, 0xff, out.n * sizeof(uint16_t)));
            quant_dequantize_bf16(d.w, out.p, nullptr);
            QG_CUDA_OK(cudaDeviceSynchronize());
            const std::vector<uint16_t> got = out.get();
            int64_t bad = 0;
            for (size_t i = 0; i < got.size(); ++i)
                if (got[i] != h.w[i] && bad++ < 5)
                    ADD_FAILURE() << label(h, false) << ": out[" << i / size_t(s.k) << "][" << i % size_t(s.k)
                                  << "] = 0x" << std::hex << got[i] << ", expected 0x" << h.w[i] << std::dec;
            EXPECT_EQ(bad, 0) << label(h, false);
        }
    // every finite fp16 scale (negative ones give −0 for q = z, as the host does)
    std::vector<uint16_t> finite;
    for (uint32_t b = 0; b < 65536; ++b)
        if (((b >> 10) & 0x1f) != 0x1f) finite.push_back(static_cast<uint16_t>(b));
    std::mt19937 g(8);
    const int64_t n = int64_t(finite.size()) / 2;
    const HostQuant h = make_quant(n, 64, 32, 4, g, [&](int64_t r, int64_t j) { return finite[size_t(r * 2 + j)]; });
    DevQuant d(h);
    DevArray<uint16_t> out{size_t(h.n * h.k)};
    ASSERT_TRUE(out.p);
    quant_dequantize_bf16(d.w, out.p, nullptr);
    QG_CUDA_OK(cudaDeviceSynchronize());
    EXPECT_TRUE(out.get() == h.w) << "dequantization with every finite fp16 scale";
}

TEST(CudaBf16Gemv, MatchesCpuReference) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 2000;
    for (const int64_t n : {1, 3, 37, 1001})
        for (const int64_t k : {8, 24, 1000, 2560}) {
            std::mt19937 g(seed++);
            std::normal_distribution<float> nd(0.f, 0.05f);
            std::vector<uint16_t> w(size_t(n * k));
            for (auto& v : w) v = float_to_bf16(nd(g));
            const std::vector<float> x = randn(size_t(k), seed++);
            const std::vector<float> y0 = randn(size_t(n), seed++, 0.f, 4.f);
            DevArray<uint16_t> dw(w);
            DevArray<float> dx{size_t(k) + 1}, dy{size_t(n)};
            ASSERT_TRUE(dw.p && dx.p && dy.p);
            for (const int offset : {0, 1}) {  // x 16-byte aligned, and not
                QG_CUDA_OK(cudaMemcpy(dx.p + offset, x.data(), size_t(k) * sizeof(float), cudaMemcpyHostToDevice));
                for (const bool acc : {false, true}) {
                    if (acc) {
                        dy.put(y0);
                    } else {
                        QG_CUDA_OK(cudaMemset(dy.p, 0xff, dy.n * sizeof(float)));
                    }
                    bf16_gemv(dw.p, n, k, dx.p + offset, dy.p, acc, nullptr);
                    QG_CUDA_OK(cudaDeviceSynchronize());
                    expect_products(dy.get(), w, n, k, x, acc ? &y0 : nullptr,
                                    "bf16 [n " + std::to_string(n) + ", k " + std::to_string(k) + "] x offset " +
                                        std::to_string(offset) + (acc ? " y +=" : " y ="));
                }
            }
        }
}

TEST(CudaQuantGemv, GraphCaptureReplay) {
    SKIP_WITHOUT_GPU();
    // [130, 384]: the scalar-column path with the k range split across CTAs (atomics, y zeroed inside the call);
    // [512, 2048]: the 16-byte path, likewise; bf16_gemv beside them.
    const HostQuant h1 = random_quant(130, 384, 64, 3, 11), h2 = random_quant(512, 2048, 128, 4, 12);
    DevQuant d1(h1), d2(h2);
    std::mt19937 g(13);
    std::normal_distribution<float> nd(0.f, 0.05f);
    std::vector<uint16_t> wb(size_t(96 * 2048));
    for (auto& v : wb) v = float_to_bf16(nd(g));
    const std::vector<float> x1 = randn(384, 14), x2 = randn(2048, 15);
    DevArray<uint16_t> dwb(wb);
    DevArray<float> dx1(x1), dx2(x2), dy1(130), dy2(512), dy3(96);
    ASSERT_TRUE(dwb.p && dx1.p && dx2.p && dy1.p && dy2.p && dy3.p);
    cudaStream_t st;
    QG_CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    QG_CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    quant_gemv(d1.w, dx1.p, dy1.p, false, st);
    quant_gemv(d2.w, dx2.p, dy2.p, false, st);
    bf16_gemv(dwb.p, 96, 2048, dx2.p, dy3.p, false, st);
    QG_CUDA_OK(cudaStreamEndCapture(st, &graph));
    QG_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 3; ++rep) {  // y = : replays must not add up
        QG_CUDA_OK(cudaGraphLaunch(exec, st));
        QG_CUDA_OK(cudaStreamSynchronize(st));
        expect_products(dy1.get(), h1.w, 130, 384, x1, nullptr, "graph " + label(h1, false));
        expect_products(dy2.get(), h2.w, 512, 2048, x2, nullptr, "graph " + label(h2, false));
        expect_products(dy3.get(), wb, 96, 2048, x2, nullptr, "graph bf16 [96, 2048]");
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(st);
}

TEST(CudaQuantGemv, ArgumentErrors) {
    SKIP_WITHOUT_GPU();
    DevArray<uint32_t> qw(4096);
    DevArray<uint16_t> sc(4096), bw(4096);
    DevArray<uint8_t> z(4096);
    DevArray<float> x(512), y(512);
    DevArray<uint16_t> out(8192);
    ASSERT_TRUE(qw.p && sc.p && bw.p && z.p && x.p && y.p && out.p);
    const DeviceQuantWeight ok = cuda_test::device_weight(qw.p, sc.p, z.p, 16, 128, 4, 64);
    auto expect_error = [&](DeviceQuantWeight w, const char* what) {
        EXPECT_THROW(quant_gemv(w, x.p, y.p, false, nullptr), Error) << what;
        EXPECT_THROW(quant_dequantize_bf16(w, out.p, nullptr), Error) << what;
    };
    DeviceQuantWeight w = ok;
    w.bits = 5;
    expect_error(w, "bits 5");
    w = ok;
    w.bits = 1;
    expect_error(w, "bits 1");
    w = ok;
    w.k = 48;
    w.group_len = 48;
    expect_error(w, "k 48");
    w = ok;
    w.k = 96;
    w.group_len = 64;
    expect_error(w, "group_len 64 does not divide k 96");
    w = ok;
    w.group_len = 16;
    expect_error(w, "group_len 16");
    w = ok;
    w.n = 0;
    expect_error(w, "n 0");
    w = ok;
    w.zeros = nullptr;
    expect_error(w, "null zeros");
    EXPECT_THROW(quant_gemv(ok, x.p, x.p + 64, false, nullptr), Error) << "x and y overlap";
    EXPECT_THROW(quant_dequantize_bf16(ok, out.p + 1, nullptr), Error) << "unaligned out";
    EXPECT_THROW(bf16_gemv(bw.p, 16, 12, x.p, y.p, false, nullptr), Error) << "bf16 k 12";
    EXPECT_THROW(bf16_gemv(bw.p + 1, 16, 16, x.p, y.p, false, nullptr), Error) << "bf16 unaligned w";
    EXPECT_THROW(bf16_gemv(bw.p, 0, 16, x.p, y.p, false, nullptr), Error) << "bf16 n 0";
    // the valid weight runs
    EXPECT_NO_THROW(quant_gemv(ok, x.p, y.p, false, nullptr));
    EXPECT_NO_THROW(quant_dequantize_bf16(ok, out.p, nullptr));
    QG_CUDA_OK(cudaDeviceSynchronize());
}

}  // namespace
