// tests/cuda/test_cuda_fp8_gemm.cpp — the FP8 row-major GEMM (ops/cuda/fp8_gemm.h) against host float64
// references:
//   * all four (ta, tb) combinations (rows path and tiled-transpose path of both operands) on an awkward small
//     shape (M 48, N 80, K 112: partial 64-tiles everywhere) and a bigger one (512 × 1024 × 2048); padded row
//     strides (the padding holds 1e20, so reading it would wreck the amax), strides that are not multiples of 8
//     (the scalar paths); FP32 and bf16 C, beta 0 and 1 (dW accumulation, dH +=), alpha ≠ 1; C's row padding
//     must stay untouched;
//   * the scales: device amax and 1/s equal the host's bit for bit;
//   * e5m2 operands, fast accumulation; a captured CUDA graph replayed; argument errors throw autoround::Error.
// References (sampled rows for the big shape):
//   ref_q = alpha · Σ_k (q(a)/sA)·(q(b)/sB) + beta · C0  with q() the host's fp8 rounding (round to nearest
//           even, saturating; cross-checked against cuda_fp8.h's host conversion) of the same float a·s;
//   ref   = alpha · Σ_k a·b + beta · C0  on the unrounded bf16 inputs.
// Tolerances:
//   * vs ref_q (tight): the products of two fp8 values are exact in FP32; the remaining error is the FP32 / tensor
//     core accumulation (cuBLASLt promotes the partial sums to FP32 periodically unless fast accumulation is on:
//     ≲ 2^-13 of Σ|a·b| per element), the scaling in the epilogue and, for bf16 C, one rounding (≤ 2^-9 relative).
//     Per element |C − ref_q| ≤ 3e-4·Σ|terms| (+ 2^-8·|ref_q| for bf16 C), and relative Frobenius error ≤ 2e-3
//     (fp32 C) / 5e-3 (bf16 C). A wrong rounding mode (truncation instead of nearest-even), a wrong scale or an
//     index error gives errors of order 1e-2 … 1.
//   * vs ref (loose): e4m3 keeps 3 mantissa bits (relative rounding error ≤ 2^-4, RMS ≈ 2.5 %), so one product
//     carries ≈ 3.5 % and random sums keep that ratio: relative Frobenius error < 5 % (e4m3 · e4m3) and < 10 %
//     when an operand is e5m2 (2 mantissa bits); of the entries with |ref| above the median, ≥ 95 % have ref's
//     sign (SignSGD only uses signs).
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible or
// the device has no FP8 tensor cores (compute capability < 8.9).
#include <gtest/gtest.h>

#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/fp8_gemm.h"
#include "cuda_test_util.h"

using namespace autoround;

namespace {

#define FP8_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

bool fp8_device() {
    if (!cuda_available()) return false;
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    return Fp8Gemm::supported(dev);
}

#define SKIP_WITHOUT_FP8_GPU()                                                           \
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";                             \
    if (!fp8_device()) GTEST_SKIP() << "the CUDA device has no FP8 tensor cores (< sm_89)"

template <typename T>
using Dev = cuda_test::DevBuf<T>;

// ---- host fp8 rounding ------------------------------------------------------------------------------------------

// x rounded to the nearest e4m3 (3 mantissa bits, min normal 2^-6, max 448) or e5m2 (2 bits, 2^-14, 57344) value,
// ties to even, saturating to ±max (cvt.rn.satfinite); NaN stays NaN.
double fp8_round(double x, Fp8Format f) {
    const int mbits = f == Fp8Format::E5M2 ? 2 : 3;
    const int emin = f == Fp8Format::E5M2 ? -14 : -6;
    const double maxv = f == Fp8Format::E5M2 ? 57344.0 : 448.0;
    if (std::isnan(x)) return x;
    if (std::isinf(x)) return std::copysign(maxv, x);  // satfinite
    const double a = std::fabs(x);
    if (a == 0) return x;
    int e = 0;
    std::frexp(a, &e);                     // a = m · 2^e, m ∈ [0.5, 1): a's binade is 2^(e-1)
    const int be = std::max(e - 1, emin);  // subnormals share the quantum of the smallest normal binade
    const double q = std::ldexp(1.0, be - mbits);
    double r = std::nearbyint(a / q) * q;  // a / q exact (q a power of 2); nearbyint rounds ties to even
    if (r > maxv) r = maxv;
    return std::copysign(r, x);
}

float host_scale(float amax, float fmax) {  // the device's scale_of()
    if (!(amax >= 1e-30f) || !(amax <= FLT_MAX)) return 1.f;
    return fmax / amax;
}
float fmax_of(Fp8Format f) { return f == Fp8Format::E5M2 ? 57344.f : 448.f; }
const char* name_of(Fp8Format f) { return f == Fp8Format::E5M2 ? "e5m2" : "e4m3"; }

// ---- matrices ---------------------------------------------------------------------------------------------------

constexpr float kPad = 1e20f;  // in the row padding of A, B: must never be read

struct HostMat {
    std::vector<uint16_t> v;  // bf16 bits, rows × ld
    int64_t rows = 0, cols = 0, ld = 0;
    float at(int64_t r, int64_t c) const { return bf16_to_float(v[size_t(r * ld + c)]); }
};

HostMat random_mat(int64_t rows, int64_t cols, int64_t ld, float sd, uint32_t seed) {
    HostMat m;
    m.rows = rows;
    m.cols = cols;
    m.ld = ld;
    m.v.assign(size_t(rows * ld), float_to_bf16(kPad));
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.f, sd);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) m.v[size_t(r * ld + c)] = float_to_bf16(nd(g));
    return m;
}

struct Case {
    bool ta = false, tb = false;
    int64_t M = 0, N = 0, K = 0;
    int64_t pad_a = 0, pad_b = 0, pad_c = 0;  // row padding (elements) of the stored A, B, C
    float alpha = 1.f, beta = 0.f;
    bool bf16_out = false;
    Fp8Format fa = Fp8Format::E4M3, fb = Fp8Format::E4M3;
    bool fast_accum = false;
    int64_t row_step = 1;  // reference rows 0, row_step, 2·row_step, …
    uint32_t seed = 1;
};

std::string label(const Case& c) {
    return std::string("ta ") + (c.ta ? "T" : "N") + " tb " + (c.tb ? "T" : "N") + " M " + std::to_string(c.M) +
           " N " + std::to_string(c.N) + " K " + std::to_string(c.K) + " pads " + std::to_string(c.pad_a) + "/" +
           std::to_string(c.pad_b) + "/" + std::to_string(c.pad_c) + " alpha " + std::to_string(c.alpha) +
           " beta " + std::to_string(c.beta) + (c.bf16_out ? " C bf16" : " C fp32") + " " + name_of(c.fa) + "·" +
           name_of(c.fb) + (c.fast_accum ? " fast-accum" : "");
}

struct Outcome {
    std::vector<double> C, ref_q, ref, bound;  // sampled rows × N
};

// Runs one case on `g` and computes the references; nullopt-like empty Outcome on a setup failure (asserted).
void run_case(Fp8Gemm& g, const Case& c, Outcome& out) {
    const int64_t M = c.M, N = c.N, K = c.K;
    // stored operands: A [M, K] or (ta) [K, M]; B [K, N] or (tb) [N, K]
    const int64_t a_rows = c.ta ? K : M, a_cols = c.ta ? M : K, b_rows = c.tb ? N : K, b_cols = c.tb ? K : N;
    const HostMat A = random_mat(a_rows, a_cols, a_cols + c.pad_a, 1.f, c.seed);
    const HostMat B = random_mat(b_rows, b_cols, b_cols + c.pad_b, 0.02f, c.seed + 1000);
    auto opA = [&](int64_t i, int64_t k) { return c.ta ? A.at(k, i) : A.at(i, k); };
    auto opB = [&](int64_t k, int64_t j) { return c.tb ? B.at(j, k) : B.at(k, j); };
    const int64_t ldc = N + c.pad_c;
    // C0: typical product size, random; padding a sentinel
    const float c_sd = std::sqrt(float(K)) * 0.02f;
    std::mt19937 gc(c.seed + 2000);
    std::normal_distribution<float> nd(0.f, c_sd);
    std::vector<double> C0(size_t(M * N));
    std::vector<float> Cf(size_t(M * ldc), -7.f);
    std::vector<uint16_t> Cb(size_t(M * ldc), float_to_bf16(-7.f));
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            const float v = round_to_bf16(nd(gc));  // representable in both
            C0[size_t(i * N + j)] = v;
            Cf[size_t(i * ldc + j)] = v;
            Cb[size_t(i * ldc + j)] = float_to_bf16(v);
        }

    Dev<uint16_t> dA(A.v), dB(B.v);
    Dev<float> dCf(Cf);
    Dev<uint16_t> dCb(Cb);
    ASSERT_TRUE(dA.p && dB.p && dCf.p && dCb.p);
    g.set_formats(c.fa, c.fb);
    g.set_fast_accum(c.fast_accum);
    const auto* pA = reinterpret_cast<const __nv_bfloat16*>(dA.p);
    const auto* pB = reinterpret_cast<const __nv_bfloat16*>(dB.p);
    if (c.bf16_out)
        g.gemm(c.ta, c.tb, M, N, K, c.alpha, pA, A.ld, pB, B.ld, c.beta, reinterpret_cast<__nv_bfloat16*>(dCb.p),
               ldc, nullptr);
    else
        g.gemm(c.ta, c.tb, M, N, K, c.alpha, pA, A.ld, pB, B.ld, c.beta, dCf.p, ldc, nullptr);
    FP8_CUDA_OK(cudaDeviceSynchronize());

    // scales: amax exact, 1/s as the device computes it
    float amax_a = 0, amax_b = 0;
    for (int64_t i = 0; i < M; ++i)
        for (int64_t k = 0; k < K; ++k) amax_a = std::max(amax_a, std::fabs(opA(i, k)));
    for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < N; ++j) amax_b = std::max(amax_b, std::fabs(opB(k, j)));
    const float sa = host_scale(amax_a, fmax_of(c.fa)), sb = host_scale(amax_b, fmax_of(c.fb));
    const float inv_a = 1.f / sa, inv_b = 1.f / sb;
    float dsc[4] = {0, 0, 0, 0};
    FP8_CUDA_OK(cudaMemcpy(dsc, g.device_scales(), sizeof dsc, cudaMemcpyDeviceToHost));
    EXPECT_EQ(dsc[0], amax_a) << "amax(A)";
    EXPECT_EQ(dsc[1], amax_b) << "amax(B)";
    EXPECT_EQ(dsc[2], inv_a) << "1/sA";
    EXPECT_EQ(dsc[3], inv_b) << "1/sB";

    // op(B)ᵀ [N, K] (rounded and not) once; op(A) per sampled row
    std::vector<double> Bq(size_t(N * K)), Bd(size_t(N * K));
    for (int64_t j = 0; j < N; ++j)
        for (int64_t k = 0; k < K; ++k) {
            const float b = opB(k, j);
            Bd[size_t(j * K + k)] = b;
            Bq[size_t(j * K + k)] = fp8_round(double(b * sb), c.fb) * double(inv_b);
        }
    const std::vector<float> Cfo = c.bf16_out ? std::vector<float>() : dCf.get();
    const std::vector<uint16_t> Cbo = c.bf16_out ? dCb.get() : std::vector<uint16_t>();
    std::vector<double> aq(static_cast<size_t>(K)), ad(static_cast<size_t>(K));
    out = Outcome{};
    for (int64_t i = 0; i < M; i += c.row_step) {
        for (int64_t k = 0; k < K; ++k) {
            const float a = opA(i, k);
            ad[size_t(k)] = a;
            aq[size_t(k)] = fp8_round(double(a * sa), c.fa) * double(inv_a);
        }
        for (int64_t j = 0; j < N; ++j) {
            double sq = 0, sd = 0, sabs = 0;
            const double* bq = &Bq[size_t(j * K)];
            const double* bd = &Bd[size_t(j * K)];
            for (int64_t k = 0; k < K; ++k) {
                sq += aq[size_t(k)] * bq[k];
                sd += ad[size_t(k)] * bd[k];
                sabs += std::fabs(aq[size_t(k)] * bq[k]);
            }
            const double c0 = double(c.beta) * C0[size_t(i * N + j)];
            const double rq = double(c.alpha) * sq + c0;
            out.ref_q.push_back(rq);
            out.ref.push_back(double(c.alpha) * sd + c0);
            out.bound.push_back((c.fast_accum ? 1e-3 : 3e-4) * (std::fabs(double(c.alpha)) * sabs + std::fabs(c0)) +
                                (c.bf16_out ? std::ldexp(std::fabs(rq), -8) : 1e-6 * std::fabs(rq)) + 1e-30);
            out.C.push_back(c.bf16_out ? double(bf16_to_float(Cbo[size_t(i * ldc + j)]))
                                       : double(Cfo[size_t(i * ldc + j)]));
        }
    }
    // C's row padding untouched
    int64_t touched = 0;
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = N; j < ldc; ++j)
            touched += c.bf16_out ? (Cbo[size_t(i * ldc + j)] != float_to_bf16(-7.f))
                                  : (Cfo[size_t(i * ldc + j)] != -7.f);
    EXPECT_EQ(touched, 0) << "C row padding was written";
}

double rel_fro(const std::vector<double>& x, const std::vector<double>& ref) {
    double e = 0, r = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        e += (x[i] - ref[i]) * (x[i] - ref[i]);
        r += ref[i] * ref[i];
    }
    return std::sqrt(e / std::max(r, 1e-300));
}

// fraction of the entries with |ref| above the median that have ref's sign
double sign_agreement(const std::vector<double>& x, const std::vector<double>& ref) {
    std::vector<double> a(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) a[i] = std::fabs(ref[i]);
    std::nth_element(a.begin(), a.begin() + long(a.size() / 2), a.end());
    const double med = a[a.size() / 2];
    size_t n = 0, same = 0;
    for (size_t i = 0; i < ref.size(); ++i)
        if (std::fabs(ref[i]) > med) {
            ++n;
            same += (x[i] > 0) == (ref[i] > 0) && x[i] != 0;
        }
    return n ? double(same) / double(n) : 1.0;
}

void check_case(Fp8Gemm& g, const Case& c) {
    SCOPED_TRACE(label(c));
    Outcome o;
    run_case(g, c, o);
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_FALSE(o.C.empty());
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < o.C.size(); ++i)
        if (!(std::fabs(o.C[i] - o.ref_q[i]) <= o.bound[i])) {
            if (bad == 0) first_bad = i;
            ++bad;
        }
    EXPECT_EQ(bad, 0u) << "entries outside the tight bound; first at sampled index " << first_bad << ": C "
                       << o.C[first_bad] << " ref_q " << o.ref_q[first_bad] << " bound " << o.bound[first_bad];
    const double fq = rel_fro(o.C, o.ref_q);
    EXPECT_LE(fq, c.fast_accum ? 2e-2 : (c.bf16_out ? 5e-3 : 2e-3)) << "relative Frobenius error vs ref_q";
    const bool e5 = c.fa == Fp8Format::E5M2 || c.fb == Fp8Format::E5M2;
    const double fr = rel_fro(o.C, o.ref);
    EXPECT_LT(fr, e5 ? 0.10 : 0.05) << "relative Frobenius error vs the unrounded bf16 product";
    EXPECT_GE(sign_agreement(o.C, o.ref), 0.95) << "sign agreement above the median";
}

// ---- tests ------------------------------------------------------------------------------------------------------

TEST(Fp8Round, HostHelperMatchesCudaFp8Header) {  // host only: the test's fp8 rounding = cuda_fp8.h's conversion
    std::mt19937 g(7);
    std::uniform_real_distribution<float> ue(-30.f, 20.f);
    for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
        const __nv_fp8_interpretation_t it = f == Fp8Format::E5M2 ? __NV_E5M2 : __NV_E4M3;
        int mismatches = 0;
        for (int n = 0; n < 200000; ++n) {
            float x = std::ldexp(1.f + float(g() % 4096) / 4096.f, int(ue(g))) * ((g() & 1) ? 1.f : -1.f);
            if (n % 7 == 0) x = bf16_to_float(uint16_t(g()));  // every bf16 pattern region, incl. huge and tiny
            if (std::isnan(x)) continue;
            const __nv_fp8_storage_t s = __nv_cvt_float_to_fp8(x, __NV_SATFINITE, it);
            const __half_raw h = __nv_cvt_fp8_to_halfraw(s, it);
            const float want = fp16_to_float(h.x);
            const double got = fp8_round(double(x), f);
            if (double(want) != got && mismatches++ < 5)
                ADD_FAILURE() << name_of(f) << " x " << x << ": cuda_fp8.h " << want << ", helper " << got;
        }
        EXPECT_EQ(mismatches, 0) << name_of(f);
    }
    EXPECT_EQ(fp8_round(448.0, Fp8Format::E4M3), 448.0);
    EXPECT_EQ(fp8_round(470.0, Fp8Format::E4M3), 448.0);  // saturates (480 is e4m3's NaN pattern)
    EXPECT_EQ(fp8_round(1.0625, Fp8Format::E4M3), 1.0);   // tie → even
    EXPECT_EQ(fp8_round(1.1875, Fp8Format::E4M3), 1.25);  // tie → even
    EXPECT_EQ(fp8_round(std::ldexp(1.0, -9), Fp8Format::E4M3), std::ldexp(1.0, -9));  // smallest subnormal
    EXPECT_EQ(fp8_round(60000.0, Fp8Format::E5M2), 57344.0);
}

TEST(CudaFp8Gemm, AllTransposesSmallShape) {
    SKIP_WITHOUT_FP8_GPU();
    Fp8Gemm g;
    uint32_t seed = 10;
    for (int t = 0; t < 4; ++t)
        for (int out = 0; out < 4; ++out) {  // fp32 β 0, fp32 β 1, bf16 β 0, bf16 β 1
            Case c;
            c.ta = t & 1;
            c.tb = (t >> 1) & 1;
            c.M = 48;
            c.N = 80;
            c.K = 112;
            c.bf16_out = out >= 2;
            c.beta = (out & 1) ? 1.f : 0.f;
            c.alpha = (out == 1) ? 0.75f : 1.f;
            c.pad_a = (out == 0) ? 0 : (out == 1 ? 8 : 3);  // 3: not a multiple of 8 → the scalar paths
            c.pad_b = (out == 0) ? 0 : (out == 2 ? 8 : 5);
            c.pad_c = (out & 1) ? 8 : 0;
            c.seed = seed++;
            check_case(g, c);
        }
}

TEST(CudaFp8Gemm, AllTransposesBigShape) {
    SKIP_WITHOUT_FP8_GPU();
    Fp8Gemm g;
    uint32_t seed = 100;
    for (int t = 0; t < 4; ++t)
        for (int out = 0; out < 2; ++out) {
            Case c;
            c.ta = t & 1;
            c.tb = (t >> 1) & 1;
            c.M = 512;
            c.N = 1024;
            c.K = 2048;
            c.bf16_out = out == 1;
            c.beta = (out == 0 && c.ta && !c.tb) ? 1.f : 0.f;  // dW accumulation
            c.pad_a = 16;
            c.row_step = 8;
            c.seed = seed++;
            check_case(g, c);
        }
}

TEST(CudaFp8Gemm, E5M2AndFastAccum) {
    SKIP_WITHOUT_FP8_GPU();
    Fp8Gemm g;
    const Fp8Format E4 = Fp8Format::E4M3, E5 = Fp8Format::E5M2;
    struct V {
        bool ta, tb;
        Fp8Format fa, fb;
        bool fast;
    };
    const V vs[] = {{false, false, E5, E4, false},  // dX = dY·W with the gradient in e5m2
                    {true, false, E5, E4, false},   // dW = dYᵀ·X
                    {false, false, E4, E5, false},  {true, false, E4, E4, true}, {false, true, E5, E4, true}};
    uint32_t seed = 200;
    for (const V& v : vs) {
        Case c;
        c.ta = v.ta;
        c.tb = v.tb;
        c.M = 256;
        c.N = 384;
        c.K = 1024;
        c.fa = v.fa;
        c.fb = v.fb;
        c.fast_accum = v.fast;
        c.row_step = 4;
        c.seed = seed++;
        check_case(g, c);
    }
}

// The block engine's use: reserve, warm up once (fills the plan cache), capture dW += dYᵀ·X (fp32, β 1) and
// dX = dY·W (bf16) into a graph, replay; the replays must equal direct calls.
TEST(CudaFp8Gemm, GraphCaptureReplay) {
    SKIP_WITHOUT_FP8_GPU();
    const int64_t T = 256, out = 128, in = 192;  // tokens, out features, in features
    const HostMat dY = random_mat(T, out, out, 1.f, 31), X = random_mat(T, in, in, 1.f, 32),
                  W = random_mat(out, in, in, 0.05f, 33);
    Dev<uint16_t> ddY(dY.v), dX(X.v), dW(W.v), dXo(size_t(T * in)), dXo2(size_t(T * in));
    Dev<float> dWg(size_t(out * in)), dWg2(size_t(out * in));
    ASSERT_TRUE(ddY.p && dX.p && dW.p && dXo.p && dXo2.p && dWg.p && dWg2.p);
    FP8_CUDA_OK(cudaMemset(dWg.p, 0, size_t(out * in) * 4));
    FP8_CUDA_OK(cudaMemset(dWg2.p, 0, size_t(out * in) * 4));
    using bf = __nv_bfloat16;
    auto b = [](const Dev<uint16_t>& d) { return reinterpret_cast<bf*>(d.p); };
    cudaStream_t st;
    FP8_CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    Fp8Gemm g;
    g.reserve(std::max(out * T, T * out), std::max(in * T, in * out));
    auto step = [&](float* dwg, bf* dxo) {
        g.gemm(true, false, out, in, T, 1.f, b(ddY), out, b(dX), in, 1.f, dwg, in, st);  // dW += dYᵀ·X
        g.gemm(false, false, T, in, out, 1.f, b(ddY), out, b(dW), in, 0.f, dxo, in, st);  // dX = dY·W
    };
    step(dWg2.p, b(dXo2));  // warm-up (plans), then reset the reference accumulator
    FP8_CUDA_OK(cudaStreamSynchronize(st));
    FP8_CUDA_OK(cudaMemset(dWg2.p, 0, size_t(out * in) * 4));
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    FP8_CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    step(dWg.p, b(dXo));
    FP8_CUDA_OK(cudaStreamEndCapture(st, &graph));
    FP8_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
    for (int rep = 0; rep < 3; ++rep) {
        FP8_CUDA_OK(cudaGraphLaunch(exec, st));
        step(dWg2.p, b(dXo2));  // the same work outside the graph, into the second buffers
    }
    FP8_CUDA_OK(cudaStreamSynchronize(st));
    const std::vector<float> w1 = dWg.get(), w2 = dWg2.get();
    const std::vector<uint16_t> x1 = dXo.get(), x2 = dXo2.get();
    double wmax = 0, wdiff = 0;
    for (size_t i = 0; i < w1.size(); ++i) {
        wmax = std::max(wmax, double(std::fabs(w2[i])));
        wdiff = std::max(wdiff, double(std::fabs(w1[i] - w2[i])));
    }
    EXPECT_LE(wdiff, 1e-5 * wmax) << "graph dW (3 accumulations) vs direct calls";
    EXPECT_GT(wmax, 0.0);
    size_t xdiff = 0;
    for (size_t i = 0; i < x1.size(); ++i) xdiff += x1[i] != x2[i];
    EXPECT_EQ(xdiff, 0u) << "graph dX vs direct call";
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    // growing the scratch inside a capture is refused with an Error (and leaves the capture usable)
    Fp8Gemm g2;
    FP8_CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    EXPECT_THROW(g2.gemm(false, false, T, in, out, 1.f, b(ddY), out, b(dW), in, 0.f, b(dXo), in, st), Error);
    cudaGraph_t g_empty = nullptr;
    EXPECT_EQ(cudaStreamEndCapture(st, &g_empty), cudaSuccess);
    if (g_empty) cudaGraphDestroy(g_empty);
    cudaStreamDestroy(st);
}

TEST(CudaFp8Gemm, ArgumentErrors) {
    EXPECT_TRUE(Fp8Gemm::shapes_supported(false, false, 16384, 9728, 2560, 2560, 9728, 9728, 2));
    EXPECT_TRUE(Fp8Gemm::shapes_supported(true, false, 2560, 9728, 16384, 2560, 9728, 9728, 4));
    EXPECT_FALSE(Fp8Gemm::shapes_supported(false, false, 40, 64, 64, 64, 64, 64, 4));    // M % 16
    EXPECT_FALSE(Fp8Gemm::shapes_supported(false, false, 64, 64, 72, 72, 64, 64, 4));    // K % 16
    EXPECT_FALSE(Fp8Gemm::shapes_supported(false, false, 64, 64, 64, 64, 64, 66, 4));    // ldc·4 % 16
    EXPECT_FALSE(Fp8Gemm::shapes_supported(false, false, 64, 64, 64, 64, 64, 68, 2));    // ldc·2 % 16
    EXPECT_FALSE(Fp8Gemm::shapes_supported(true, false, 64, 32, 64, 48, 32, 32, 4));     // lda < M (ta)
    EXPECT_FALSE(Fp8Gemm::shapes_supported(false, true, 64, 32, 64, 64, 48, 32, 4));     // ldb < K (tb)
    SKIP_WITHOUT_FP8_GPU();
    Dev<uint16_t> a(64 * 64), b(64 * 64);
    Dev<float> c(64 * 80 + 4);
    ASSERT_TRUE(a.p && b.p && c.p);
    using bf = __nv_bfloat16;
    const bf* A = reinterpret_cast<const bf*>(a.p);
    const bf* B = reinterpret_cast<const bf*>(b.p);
    Fp8Gemm g;
    EXPECT_THROW(g.gemm(false, false, 40, 64, 64, 1.f, A, 64, B, 64, 0.f, c.p, 64, nullptr), Error);
    EXPECT_THROW(g.gemm(false, false, 64, 64, 64, 1.f, A, 64, B, 64, 0.f, c.p, 66, nullptr), Error);
    EXPECT_THROW(g.gemm(false, false, 64, 64, 64, 1.f, A, 64, B, 64, 0.f, c.p + 1, 64, nullptr), Error);  // align
    g.set_formats(Fp8Format::E5M2, Fp8Format::E5M2);
    EXPECT_THROW(g.gemm(false, false, 64, 64, 64, 1.f, A, 64, B, 64, 0.f, c.p, 64, nullptr), Error);
    try {
        g.gemm(false, false, 40, 64, 64, 1.f, A, 64, B, 64, 0.f, c.p, 64, nullptr);
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("C[40, 64]"), std::string::npos) << e.what();
    }
}

}  // namespace
