// tests/cuda/test_cuda_quant_gemv_fast.cpp — quant_gemv_fast (ops/cuda/quant_gemv.h; quant_gemv_fast.cu), the
// decode GEMV without per-weight bf16 rounding and with RMSNorm / SwiGLU fused into its staging of x, against a plain
// scalar host reference in FP64 of y[r] = Σ_k s·(q − z)·x[k]:
//   * bits 2, 3, 4, 8 on awkward shapes: n ∈ {1, 3, 4, 37, 130, 132, 2558, 2560} (one column, fewer than a vector,
//     odd, partial column tiles, the scalar-column path for n % 4 != 0), k = 32·odd (32, 96, 160, 480) and larger
//     (384, 2560: k split across CTAs, atomics), group_len 32 / 64 / 128 / k; y = (y starting as NaN, so a missed
//     zeroing shows) and y +=;
//   * the prologues: x = RMSNorm(r)·w computed the way decode_ops' rms_norm_rows does (sum of squares in FP64) and
//     x = silu(g)·u, each against the host's FP64 product with the host-computed FP32 x;
//   * the side job zeroes its buffer, a captured graph replays y = correctly, misaligned arrays take the scalar path;
//   * argument errors throw autoround::Error.
//   * bits 2, 4, 8 hold x per 32-input block as a 21-bit fixed-point value: x spanning 2^±20 inside a block stays
//     within that bound, whole vectors scaled by 1e±30 keep their relative accuracy, non-finite x give non-finite y.
// Tolerance: |y − y_ref| ≤ 1e-5 · (Σ_k |w·x| + |y0|) per row, w = s·(q − z) unrounded. Bits 3: q − z exact, one FP32
// rounding per product plus FP32 sums over ≤ 32 products; bits 2, 4, 8: each x to ≤ 2^−21 of its block's largest
// |x| (for Gaussian x a few 2^−21 of Σ|w·x|), exact integer sums, then FP32 scaling. A wrong code, group, column,
// digit plane or block scale is off by far more. The prologue x differs from the host's by ≤ 1–2 ulp (expf, sum
// order): also far below it.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "export/pack.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/quant_gemv.h"
#include "quant_gemv_test_util.h"

using namespace autoround;
using cuda_test::randn;

namespace {

#define QF_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call
#define SKIP_WITHOUT_GPU() \
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device"

template <typename T>
using Dev = cuda_test::DevBuf<T, 64>;
using DevPacked = cuda_test::DevPackedWeight<64>;

// A packed weight: codes [n, k], scales / zeros [ng, n] (the GPU layout), and the FP64 weights s·(q − z) [n, k].
struct Packed : cuda_test::PackedArrays {
    std::vector<double> w;  // [n, k]
};

Packed make_packed(int64_t n, int64_t k, int64_t group, int bits, uint32_t seed) {
    std::mt19937 g(seed);
    const int qmax = (1 << bits) - 1, zmax = std::min(1 << bits, 255);
    std::uniform_int_distribution<int> code(0, qmax), zero(0, zmax);
    std::uniform_real_distribution<float> e(-10.f, 1.f);
    std::bernoulli_distribution neg(0.25);
    Packed p;
    p.n = n;
    p.k = k;
    p.group_len = group;
    p.bits = bits;
    const int64_t ng = k / group;
    std::vector<uint8_t> codes(size_t(n * k));
    for (auto& c : codes) c = static_cast<uint8_t>(code(g));
    p.scales.resize(size_t(ng * n));
    p.zeros.resize(size_t(ng * n));
    for (auto& s : p.scales) {
        const float v = std::exp2(e(g));
        s = float_to_fp16(neg(g) ? -v : v);
    }
    for (auto& z : p.zeros) z = static_cast<uint8_t>(zero(g));
    p.qweight = pack::gptq_pack_qweight(codes, n, k, bits);
    p.w.resize(size_t(n * k));
    for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < k; ++c) {
            const size_t gi = size_t((c / group) * n + r);
            p.w[size_t(r * k + c)] = double(fp16_to_float(p.scales[gi])) *
                                     (double(codes[size_t(r * k + c)]) - double(p.zeros[gi]));
        }
    return p;
}

// The x the kernel must stage, computed on the host with decode_ops' formulas (FP32 with an FP64 sum of squares).
std::vector<float> host_x(GemvPrologue op, const std::vector<float>& src, const std::vector<float>& nw, int64_t k,
                          float eps) {
    std::vector<float> x(static_cast<size_t>(k));
    if (op == GemvPrologue::None) {
        std::copy(src.begin(), src.begin() + k, x.begin());
    } else if (op == GemvPrologue::RmsNorm) {
        double ss = 0.0;
        for (int64_t i = 0; i < k; ++i) ss += double(src[size_t(i)]) * double(src[size_t(i)]);
        const float inv = 1.0f / std::sqrt(float(ss / double(k)) + eps);
        for (int64_t i = 0; i < k; ++i) x[size_t(i)] = nw[size_t(i)] * (src[size_t(i)] * inv);
    } else {
        for (int64_t i = 0; i < k; ++i) {
            const float g = src[size_t(i)];
            x[size_t(i)] = g / (1.0f + std::exp(-g)) * src[size_t(k + i)];
        }
    }
    return x;
}

// |y − Σ w·x − y0| ≤ 1e-5 · (Σ|w·x| + |y0|) for every row.
void expect_close(const std::vector<float>& y, const Packed& p, const std::vector<float>& x,
                  const std::vector<float>* y0, const std::string& what) {
    cuda_test::expect_rows_close(
        y, p.n, p.k, [&](int64_t r, int64_t c) { return p.w[size_t(r * p.k + c)]; }, x, y0, 1e-5, "1e-5", what);
}

std::string label(const Packed& p, const char* op, bool acc) {
    return std::string(op) + " bits " + std::to_string(p.bits) + " [n " + std::to_string(p.n) + ", k " +
           std::to_string(p.k) + "] group " + std::to_string(p.group_len) + (acc ? " y +=" : " y =");
}

struct Shape {
    int64_t n, k, group;
};
constexpr Shape kShapes[] = {{1, 32, 32},     {3, 96, 32},      {4, 160, 32},       {37, 480, 96},
                             {130, 384, 64},  {132, 96, 96},    {256, 2560, 128},   {2558, 2560, 2560},
                             {2560, 2560, 128}, {64, 384, 384}, {8, 4096, 128},     {20, 480, 160}};

TEST(CudaQuantGemvFast, MatchesFp64ReferenceWithEveryPrologue) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 1;
    const float eps = 1e-6f;
    for (const int bits : {2, 3, 4, 8})
        for (const Shape& s : kShapes)
            for (const GemvPrologue op : {GemvPrologue::None, GemvPrologue::RmsNorm, GemvPrologue::SwiGlu}) {
                if (s.k % s.group != 0) continue;
                const Packed p = make_packed(s.n, s.k, s.group, bits, seed++);
                DevPacked d(p);
                const std::vector<float> src = randn(size_t(2 * s.k), seed++, 0.f, 2.f);
                const std::vector<float> nw = randn(size_t(s.k), seed++, 1.f, 0.1f);
                const std::vector<float> y0 = randn(size_t(s.n), seed++, 0.f, 4.f);
                const std::vector<float> x = host_x(op, src, nw, s.k, eps);
                Dev<float> dsrc(src), dnw(nw), dy(size_t(s.n));
                ASSERT_TRUE(d.qweight.p && d.scales.p && d.zeros.p && dsrc.p && dnw.p && dy.p);
                GemvInput in;
                in.op = op;
                in.src = dsrc.p;
                in.norm_w = dnw.p;
                in.eps = eps;
                const char* name = op == GemvPrologue::None ? "plain" : (op == GemvPrologue::RmsNorm ? "rmsnorm" : "swiglu");
                for (const bool acc : {false, true}) {
                    if (acc) dy.put(y0);
                    else QF_CUDA_OK(cudaMemset(dy.p, 0xff, dy.n * sizeof(float)));  // NaN: y = must overwrite
                    quant_gemv_fast(d.w, in, dy.p, acc, nullptr);
                    QF_CUDA_OK(cudaDeviceSynchronize());
                    expect_close(dy.get(), p, x, acc ? &y0 : nullptr, label(p, name, acc));
                }
            }
}

// Every weight exactly: with one-hot x, y[r] = s·(q − z) (exact in FP32: 11 × 9 significant bits at most).
TEST(CudaQuantGemvFast, OneHotGivesEveryWeightExactly) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 500;
    for (const int bits : {2, 3, 4, 8})
        for (const Shape& s : {Shape{36, 64, 32}, Shape{40, 256, 128}}) {
            const Packed p = make_packed(s.n, s.k, s.group, bits, seed++);
            DevPacked d(p);
            Dev<float> dx(size_t(s.k)), dy(size_t(s.n));
            ASSERT_TRUE(dx.p && dy.p);
            std::vector<float> x(size_t(s.k), 0.f);
            int bad = 0;
            for (int64_t c = 0; c < s.k; ++c) {
                std::fill(x.begin(), x.end(), 0.f);
                x[size_t(c)] = 1.f;
                dx.put(x);
                quant_gemv_fast(d.w, dx.p, dy.p, false, nullptr);
                QF_CUDA_OK(cudaDeviceSynchronize());
                const std::vector<float> y = dy.get();
                for (int64_t r = 0; r < s.n; ++r)
                    if (double(y[size_t(r)]) != p.w[size_t(r * s.k + c)] && bad++ < 5)
                        ADD_FAILURE() << label(p, "one-hot", false) << ": w[" << r << "][" << c << "] = " << y[size_t(r)]
                                      << ", expected " << p.w[size_t(r * s.k + c)];
            }
            EXPECT_EQ(bad, 0) << label(p, "one-hot", false);
        }
}

// The integer path's documented bound: each x off by ≤ 2^−21 of its block's largest |x| (asserted with 2^−20), with
// x spanning 2^−20 … 2^20 inside every block; and whole vectors scaled by 1e−30 / 1e30 keep the relative tolerance.
TEST(CudaQuantGemvFast, IntegerPathStaysInsideItsPrecisionBound) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 700;
    for (const int bits : {2, 4, 8}) {
        const int64_t n = 132, k = 480, group = 96;
        const Packed p = make_packed(n, k, group, bits, seed++);
        DevPacked d(p);
        std::mt19937 g(seed++);
        std::uniform_int_distribution<int> ex(-20, 20);
        std::vector<float> x = randn(size_t(k), seed++);
        for (auto& v : x) v = std::ldexp(v, ex(g));
        Dev<float> dx(x), dy{size_t(n)};
        ASSERT_TRUE(dx.p && dy.p);
        quant_gemv_fast(d.w, dx.p, dy.p, false, nullptr);
        QF_CUDA_OK(cudaDeviceSynchronize());
        const std::vector<float> y = dy.get();
        int bad = 0;
        for (int64_t r = 0; r < n; ++r) {
            double ref = 0.0, abs_sum = 0.0, bound = 0.0;
            for (int64_t b = 0; b < k / 32; ++b) {
                double m = 0.0;
                for (int64_t c = 32 * b; c < 32 * b + 32; ++c) m = std::max(m, std::fabs(double(x[size_t(c)])));
                for (int64_t c = 32 * b; c < 32 * b + 32; ++c) {
                    const double w = p.w[size_t(r * k + c)];
                    ref += w * double(x[size_t(c)]);
                    abs_sum += std::fabs(w * double(x[size_t(c)]));
                    bound += std::fabs(w) * m * std::ldexp(1.0, -20);
                }
            }
            const double err = std::fabs(double(y[size_t(r)]) - ref);
            if (!(err <= bound + 1e-6 * abs_sum) && bad++ < 5)
                ADD_FAILURE() << "bits " << bits << " row " << r << ": y " << y[size_t(r)] << ", ref " << ref
                              << ", error " << err << " > bound " << bound + 1e-6 * abs_sum;
        }
        EXPECT_EQ(bad, 0) << "bits " << bits;

        for (const float scale : {1e-30f, 1e30f}) {
            std::vector<float> xs = randn(size_t(k), seed++);
            for (auto& v : xs) v *= scale;
            dx.put(xs);
            quant_gemv_fast(d.w, dx.p, dy.p, false, nullptr);
            QF_CUDA_OK(cudaDeviceSynchronize());
            expect_close(dy.get(), p, xs, nullptr,
                         "bits " + std::to_string(bits) + " x scaled by " + std::to_string(scale));
        }
    }
}

// A NaN or an infinity in x makes every y non-finite (on the integer path the block's scale becomes NaN).
TEST(CudaQuantGemvFast, NonFiniteXGivesNonFiniteY) {
    SKIP_WITHOUT_GPU();
    uint32_t seed = 800;
    for (const int bits : {2, 3, 4, 8})
        for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
            const Packed p = make_packed(40, 256, 128, bits, seed++);
            DevPacked d(p);
            std::vector<float> x = randn(256, seed++);
            x[37] = bad;
            Dev<float> dx(x), dy(40);
            ASSERT_TRUE(dx.p && dy.p);
            quant_gemv_fast(d.w, dx.p, dy.p, false, nullptr);
            QF_CUDA_OK(cudaDeviceSynchronize());
            const std::vector<float> y = dy.get();
            EXPECT_EQ(std::count_if(y.begin(), y.end(), [](float v) { return std::isfinite(v); }), 0)
                << "bits " << bits << ", x[37] = " << bad;
        }
}

TEST(CudaQuantGemvFast, SideJobZeroesItsBuffer) {
    SKIP_WITHOUT_GPU();
    const Packed p = make_packed(512, 2048, 128, 4, 900);
    DevPacked d(p);
    const std::vector<float> x = randn(2048, 901);
    Dev<float> dx(x), dy(512), dz(70001);
    ASSERT_TRUE(dx.p && dy.p && dz.p);
    QF_CUDA_OK(cudaMemset(dz.p, 0xff, dz.n * sizeof(float)));
    QF_CUDA_OK(cudaMemset(dy.p, 0, dy.n * sizeof(float)));
    GemvInput in;
    in.src = dx.p;
    quant_gemv_fast(d.w, in, dy.p, true, nullptr, dz.p, int64_t(dz.n));
    QF_CUDA_OK(cudaDeviceSynchronize());
    expect_close(dy.get(), p, x, nullptr, "with side job");
    const std::vector<float> z = dz.get();
    EXPECT_EQ(std::count(z.begin(), z.end(), 0.f), int64_t(z.size()));
}

// {0, v[0], v[1], ...}: v one element into a larger array.
template <typename T>
std::vector<T> shifted_by_one(const std::vector<T>& v) {
    std::vector<T> r(1, T(0));
    r.insert(r.end(), v.begin(), v.end());
    return r;
}

TEST(CudaQuantGemvFast, MisalignedArraysTakeTheScalarPath) {
    SKIP_WITHOUT_GPU();
    const Packed p = make_packed(64, 256, 64, 4, 950);
    // the same arrays one element into a larger allocation: qweight 4-, scales 2-, zeros 1-byte aligned
    Dev<uint32_t> dq(shifted_by_one(p.qweight));
    Dev<uint16_t> ds(shifted_by_one(p.scales));
    Dev<uint8_t> dzr(shifted_by_one(p.zeros));
    const std::vector<float> x = randn(256, 951);
    Dev<float> dx(x), dy(64);
    ASSERT_TRUE(dq.p && ds.p && dzr.p && dx.p && dy.p);
    const DeviceQuantWeight w = cuda_test::device_weight(dq.p + 1, ds.p + 1, dzr.p + 1, 64, 256, 4, 64);
    quant_gemv_fast(w, dx.p, dy.p, false, nullptr);
    QF_CUDA_OK(cudaDeviceSynchronize());
    expect_close(dy.get(), p, x, nullptr, "misaligned");
}

TEST(CudaQuantGemvFast, GraphCaptureReplay) {
    SKIP_WITHOUT_GPU();
    // y = with the k split across CTAs (the zeroing memset is captured too), RMSNorm and SwiGLU prologues
    const Packed p1 = make_packed(512, 2048, 128, 4, 1001), p2 = make_packed(130, 960, 64, 3, 1002);
    DevPacked d1(p1), d2(p2);
    const std::vector<float> r = randn(2048, 1003), nw = randn(2048, 1004, 1.f, 0.1f), gu = randn(1920, 1005);
    Dev<float> dr(r), dnw(nw), dgu(gu), dy1(512), dy2(130);
    ASSERT_TRUE(dr.p && dnw.p && dgu.p && dy1.p && dy2.p);
    GemvInput in1;
    in1.op = GemvPrologue::RmsNorm;
    in1.src = dr.p;
    in1.norm_w = dnw.p;
    GemvInput in2;
    in2.op = GemvPrologue::SwiGlu;
    in2.src = dgu.p;
    cudaStream_t st;
    QF_CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    QF_CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    quant_gemv_fast(d1.w, in1, dy1.p, false, st);
    quant_gemv_fast(d2.w, in2, dy2.p, false, st);
    QF_CUDA_OK(cudaStreamEndCapture(st, &graph));
    QF_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    const std::vector<float> x1 = host_x(GemvPrologue::RmsNorm, r, nw, 2048, in1.eps),
                             x2 = host_x(GemvPrologue::SwiGlu, gu, nw, 960, in2.eps);
    for (int rep = 0; rep < 3; ++rep) {  // y = : replays must not add up
        QF_CUDA_OK(cudaGraphLaunch(exec, st));
        QF_CUDA_OK(cudaStreamSynchronize(st));
        expect_close(dy1.get(), p1, x1, nullptr, "graph " + label(p1, "rmsnorm", false));
        expect_close(dy2.get(), p2, x2, nullptr, "graph " + label(p2, "swiglu", false));
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(st);
}

TEST(CudaQuantGemvFast, ArgumentErrors) {
    SKIP_WITHOUT_GPU();
    Dev<uint32_t> qw(4096);
    Dev<uint16_t> sc(4096);
    Dev<uint8_t> z(4096);
    Dev<float> x(512), y(512), nw(512);
    ASSERT_TRUE(qw.p && sc.p && z.p && x.p && y.p && nw.p);
    const DeviceQuantWeight ok = cuda_test::device_weight(qw.p, sc.p, z.p, 16, 128, 4, 64);
    auto expect_error = [&](DeviceQuantWeight w, const char* what) {
        EXPECT_THROW(quant_gemv_fast(w, x.p, y.p, false, nullptr), Error) << what;
    };
    DeviceQuantWeight w = ok;
    w.bits = 5;
    expect_error(w, "bits 5");
    w = ok;
    w.k = 48;
    w.group_len = 48;
    expect_error(w, "k 48");
    w = ok;
    w.k = 96;
    w.group_len = 64;
    expect_error(w, "group_len 64 does not divide k 96");
    w = ok;
    w.n = 0;
    expect_error(w, "n 0");
    w = ok;
    w.scales = nullptr;
    expect_error(w, "null scales");
    EXPECT_THROW(quant_gemv_fast(ok, x.p, x.p + 64, false, nullptr), Error) << "x and y overlap";
    GemvInput in;
    in.op = GemvPrologue::RmsNorm;
    in.src = x.p;
    EXPECT_THROW(quant_gemv_fast(ok, in, y.p, false, nullptr), Error) << "RmsNorm without a norm weight";
    in.op = GemvPrologue::SwiGlu;
    EXPECT_THROW(quant_gemv_fast(ok, in, x.p + 200, false, nullptr), Error) << "SwiGLU input [2k] overlaps y";
    in.op = GemvPrologue::None;
    EXPECT_THROW(quant_gemv_fast(ok, in, y.p, false, nullptr, y.p + 8, 4), Error) << "zero buffer overlaps y";
    EXPECT_THROW(quant_gemv_fast(ok, in, y.p, false, nullptr, nullptr, 4), Error) << "null zero buffer";
    EXPECT_NO_THROW(quant_gemv_fast(ok, in, y.p, false, nullptr, nw.p, 512));
    QF_CUDA_OK(cudaDeviceSynchronize());
}

}  // namespace
