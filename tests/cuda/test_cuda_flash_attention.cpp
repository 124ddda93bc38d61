// tests/cuda/test_cuda_flash_attention.cpp — the fused causal GQA attention (ops/cuda/flash_attention.h) against a
// float64 CPU reference computed from the same bf16-rounded q, k, v, dO: forward (o, lse) and backward (dq, dk, dv) on
// awkward shapes (L ∈ {1, 17, 64, 129, 300}: one token, shorter than a tile, one tile, tile + 1, several tiles with a
// tail; (nq, nkv) ∈ {(4, 2), (2, 2), (8, 1)}; D ∈ {64, 128}; b ∈ {1, 3}), causality, write-not-accumulate of the
// gradients and the error for an unsupported head dim. Each kernel family the device runs is checked: mma.sync, and on
// Hopper with an sm_90a build the wgmma forward and backward (ops/cuda/flash_attention_sm90.cu).
//
// Tolerances (per tensor; err = GPU − reference, both in FP32/FP64):
//   o:           max|err| ≤ 1e-2 · max|ref| and ‖err‖₂ ≤ 5e-3 · ‖ref‖₂ — P is a bf16 operand of P·V (relative rounding
//                2⁻⁹ per element) and o is stored as bf16 (another 2⁻⁹);
//   lse:         max|err| ≤ 1e-3 — FP32 scores of exact bf16 products, FP32 online softmax;
//   dq, dk, dv:  max|err| ≤ 2e-2 · max|ref| and ‖err‖₂ ≤ 1e-2 · ‖ref‖₂ — P and dS are bf16 operands, Δ comes from the
//                bf16 o, and each gradient is a sum of up to L such products.
// Each bound also allows an absolute 1e-4 per element: at L = 1 the exact dq and dk are 0 (P = 1, so dP = Δ) and the
// GPU's are the FP32 rounding of dP − Δ (~1e-6).
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/flash_attention_sm90.h"

using namespace autoround;

namespace {

#define FA_CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

struct Dims {
    int64_t b, L;
    int nq, nkv, D;
    std::string name() const {
        return "b" + std::to_string(b) + "_L" + std::to_string(L) + "_nq" + std::to_string(nq) + "_nkv" +
               std::to_string(nkv) + "_D" + std::to_string(D);
    }
};

// bf16 host tensor: the bits and their float values
struct HostBf16 {
    std::vector<uint16_t> bits;
    std::vector<double> val;
};

HostBf16 random_bf16(size_t n, std::mt19937& g, float sd) {
    std::normal_distribution<float> nd(0.f, sd);
    HostBf16 t;
    t.bits.resize(n);
    t.val.resize(n);
    for (size_t i = 0; i < n; ++i) {
        t.bits[i] = float_to_bf16(nd(g));
        t.val[i] = bf16_to_float(t.bits[i]);
    }
    return t;
}

template <typename T>
struct DevArray {
    T* p = nullptr;
    size_t n = 0;
    explicit DevArray(size_t count) : n(count) {
        const size_t bytes = std::max<size_t>(count, 1) * sizeof(T);
        if (cudaMalloc(reinterpret_cast<void**>(&p), bytes) != cudaSuccess) p = nullptr;
    }
    ~DevArray() {
        if (p) cudaFree(p);
    }
    DevArray(const DevArray&) = delete;
    DevArray& operator=(const DevArray&) = delete;
    __nv_bfloat16* bf() const { return reinterpret_cast<__nv_bfloat16*>(p); }
};

template <typename T>
std::vector<T> download(const DevArray<T>& d) {
    std::vector<T> h(d.n);
    EXPECT_EQ(cudaMemcpy(h.data(), d.p, d.n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
}

// float64 reference of the forward and backward, the layouts of flash_attention.h
struct Ref {
    std::vector<double> o, lse, dq, dk, dv;
};

Ref reference(const Dims& s, const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
              const std::vector<double>& dO, double scale) {
    const int64_t b = s.b, L = s.L, D = s.D, nq = s.nq, nkv = s.nkv, r = nq / nkv;
    const int64_t ldq = nq * D, ldk = nkv * D;
    Ref R;
    R.o.assign(size_t(b * L * ldq), 0.0);
    R.lse.assign(size_t(b * nq * L), 0.0);
    R.dq.assign(R.o.size(), 0.0);
    R.dk.assign(size_t(b * L * ldk), 0.0);
    R.dv.assign(R.dk.size(), 0.0);
    std::vector<double> p(static_cast<size_t>(L));
    for (int64_t bi = 0; bi < b; ++bi)
        for (int64_t h = 0; h < nq; ++h) {
            const int64_t g = h / r;
            for (int64_t i = 0; i < L; ++i) {
                const double* qi = &q[size_t((bi * L + i) * ldq + h * D)];
                double m = -INFINITY;
                for (int64_t j = 0; j <= i; ++j) {
                    const double* kj = &k[size_t((bi * L + j) * ldk + g * D)];
                    double acc = 0;
                    for (int64_t d = 0; d < D; ++d) acc += qi[d] * kj[d];
                    p[size_t(j)] = acc * scale;
                    m = std::max(m, p[size_t(j)]);
                }
                double sum = 0;
                for (int64_t j = 0; j <= i; ++j) sum += std::exp(p[size_t(j)] - m);
                R.lse[size_t((bi * nq + h) * L + i)] = m + std::log(sum);
                double* oi = &R.o[size_t((bi * L + i) * ldq + h * D)];
                for (int64_t j = 0; j <= i; ++j) {
                    p[size_t(j)] = std::exp(p[size_t(j)] - m) / sum;
                    const double* vj = &v[size_t((bi * L + j) * ldk + g * D)];
                    for (int64_t d = 0; d < D; ++d) oi[d] += p[size_t(j)] * vj[d];
                }
                // backward of row i
                const double* doi = &dO[size_t((bi * L + i) * ldq + h * D)];
                double delta = 0;
                for (int64_t d = 0; d < D; ++d) delta += doi[d] * oi[d];
                double* dqi = &R.dq[size_t((bi * L + i) * ldq + h * D)];
                for (int64_t j = 0; j <= i; ++j) {
                    const double* vj = &v[size_t((bi * L + j) * ldk + g * D)];
                    const double* kj = &k[size_t((bi * L + j) * ldk + g * D)];
                    double acc = 0;
                    for (int64_t d = 0; d < D; ++d) acc += doi[d] * vj[d];
                    const double ds = p[size_t(j)] * (acc - delta);
                    double* dkj = &R.dk[size_t((bi * L + j) * ldk + g * D)];
                    double* dvj = &R.dv[size_t((bi * L + j) * ldk + g * D)];
                    for (int64_t d = 0; d < D; ++d) {
                        dqi[d] += scale * ds * kj[d];
                        dkj[d] += scale * ds * qi[d];
                        dvj[d] += p[size_t(j)] * doi[d];
                    }
                }
            }
        }
    return R;
}

struct ErrStats {
    double max_err = 0, max_ref = 0, l2_err = 0, l2_ref = 0;
    size_t n = 0;
    bool finite = true;
};

template <typename T>
ErrStats compare(const std::vector<T>& got, const std::vector<double>& ref) {
    ErrStats e;
    e.n = ref.size();
    for (size_t i = 0; i < ref.size(); ++i) {
        const double gv = double(got[i]);
        if (!std::isfinite(gv)) e.finite = false;
        const double d = gv - ref[i];
        e.max_err = std::max(e.max_err, std::fabs(d));
        e.max_ref = std::max(e.max_ref, std::fabs(ref[i]));
        e.l2_err += d * d;
        e.l2_ref += ref[i] * ref[i];
    }
    e.l2_err = std::sqrt(e.l2_err);
    e.l2_ref = std::sqrt(e.l2_ref);
    return e;
}

void expect_close(const char* what, const ErrStats& e, double tol_max, double tol_l2) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(e.finite);
    EXPECT_LE(e.max_err, tol_max * e.max_ref + 1e-4) << "max |err| " << e.max_err << ", max |ref| " << e.max_ref;
    EXPECT_LE(e.l2_err, tol_l2 * e.l2_ref + 1e-4 * std::sqrt(double(e.n))) << "‖err‖ " << e.l2_err << ", ‖ref‖ "
                                                                          << e.l2_ref;
}

std::vector<float> bf16_vec_to_float(const std::vector<uint16_t>& b) {
    std::vector<float> f(b.size());
    for (size_t i = 0; i < b.size(); ++i) f[i] = bf16_to_float(b[i]);
    return f;
}

class FlashAttention : public ::testing::TestWithParam<Dims> {};

TEST_P(FlashAttention, MatchesFloat64Reference) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const Dims s = GetParam();
    const size_t nQ = size_t(s.b * s.L * s.nq * s.D), nK = size_t(s.b * s.L * s.nkv * s.D);
    std::mt19937 g(uint32_t(1000 + s.L * 7 + s.nq * 3 + s.nkv + s.D + s.b * 11));
    // q, k ~ N(0, 1.5²): scores scale·q·k of sd ≈ 2.25, softmax rows from flat to peaked
    const HostBf16 q = random_bf16(nQ, g, 1.5f), k = random_bf16(nK, g, 1.5f), v = random_bf16(nK, g, 1.f),
                   dO = random_bf16(nQ, g, 1.f);
    const double scale = 1.0 / std::sqrt(double(s.D));

    DevArray<uint16_t> q_d(nQ), k_d(nK), v_d(nK), dO_d(nQ), o_d(nQ);
    DevArray<float> lse(size_t(s.b * s.nq * s.L)), gq(nQ), gk(nK), gv(nK);
    DevArray<float> ws(flash_attention_backward_workspace_bytes(s.b, s.L, s.nq) / sizeof(float));
    ASSERT_TRUE(q_d.p && k_d.p && v_d.p && dO_d.p && o_d.p && lse.p && gq.p && gk.p && gv.p && ws.p);
    FA_CUDA_OK(cudaMemcpy(q_d.p, q.bits.data(), nQ * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(k_d.p, k.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(v_d.p, v.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(dO_d.p, dO.bits.data(), nQ * 2, cudaMemcpyHostToDevice));

    const Ref R = reference(s, q.val, k.val, v.val, dO.val, scale);
    // every kernel family this device runs: mma.sync everywhere, wgmma on Hopper with an sm_90a build
    std::vector<FlashAttentionKernel> kernels = {FlashAttentionKernel::MmaSync};
    if (flash_attention_sm90_available()) kernels.push_back(FlashAttentionKernel::Wgmma);
    for (const FlashAttentionKernel kern : kernels) {
        const char* kname = kern == FlashAttentionKernel::Wgmma ? "wgmma" : "mma.sync";
        SCOPED_TRACE(kname);
        // outputs start as NaN: every element must be written (gradients overwritten, not accumulated into)
        FA_CUDA_OK(cudaMemset(o_d.p, 0xff, nQ * 2));
        FA_CUDA_OK(cudaMemset(lse.p, 0xff, lse.n * 4));
        FA_CUDA_OK(cudaMemset(gq.p, 0xff, nQ * 4));
        FA_CUDA_OK(cudaMemset(gk.p, 0xff, nK * 4));
        FA_CUDA_OK(cudaMemset(gv.p, 0xff, nK * 4));
        flash_attention_forward(q_d.bf(), k_d.bf(), v_d.bf(), s.b, s.L, s.nq, s.nkv, s.D, float(scale), o_d.bf(),
                                lse.p, nullptr, kern);
        // odd b: the backward allocates its own workspace
        flash_attention_backward(q_d.bf(), k_d.bf(), v_d.bf(), o_d.bf(), dO_d.bf(), lse.p, s.b, s.L, s.nq, s.nkv, s.D,
                                 float(scale), gq.p, gk.p, gv.p, s.b % 2 ? nullptr : ws.p, nullptr, kern);
        FA_CUDA_OK(cudaDeviceSynchronize());

        const ErrStats eo = compare(bf16_vec_to_float(download(o_d)), R.o), el = compare(download(lse), R.lse),
                       eq = compare(download(gq), R.dq), ek = compare(download(gk), R.dk),
                       ev = compare(download(gv), R.dv);
        // max |err| / max |ref| (the absolute max |err| where the reference is all zero: dq, dk at L = 1)
        auto rel = [](const ErrStats& e) { return e.max_ref > 0 ? e.max_err / e.max_ref : e.max_err; };
        std::printf("  %-26s %-8s rel max err: o %.2e lse(abs) %.2e dq %.2e dk %.2e dv %.2e\n", s.name().c_str(),
                    kname, rel(eo), el.max_err, rel(eq), rel(ek), rel(ev));
        expect_close("o", eo, 1e-2, 5e-3);
        EXPECT_TRUE(el.finite);
        EXPECT_LE(el.max_err, 1e-3) << "lse";
        expect_close("dq", eq, 2e-2, 1e-2);
        expect_close("dk", ek, 2e-2, 1e-2);
        expect_close("dv", ev, 2e-2, 1e-2);
    }
}

std::vector<Dims> all_dims() {
    std::vector<Dims> v;
    for (int64_t b : {1, 3})
        for (int D : {64, 128})
            for (auto hk : {std::pair<int, int>{4, 2}, {2, 2}, {8, 1}})
                for (int64_t L : {1, 17, 64, 129, 300}) v.push_back({b, L, hk.first, hk.second, D});
    return v;
}

INSTANTIATE_TEST_SUITE_P(Shapes, FlashAttention, ::testing::ValuesIn(all_dims()),
                         [](const ::testing::TestParamInfo<Dims>& i) { return i.param.name(); });

// o and lse of query i are bit-identical when every key and value after position i0 is replaced (i ≤ i0).
TEST(FlashAttentionCausal, OutputIgnoresLaterKeys) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const Dims s{2, 300, 4, 2, 128};
    const int64_t i0 = 150;
    const size_t nQ = size_t(s.b * s.L * s.nq * s.D), nK = size_t(s.b * s.L * s.nkv * s.D);
    std::mt19937 g(7);
    const HostBf16 q = random_bf16(nQ, g, 1.5f), k = random_bf16(nK, g, 1.5f), v = random_bf16(nK, g, 1.f);
    HostBf16 k2 = k, v2 = v;
    const HostBf16 kn = random_bf16(nK, g, 3.f), vn = random_bf16(nK, g, 3.f);
    for (int64_t bi = 0; bi < s.b; ++bi)
        for (int64_t j = i0 + 1; j < s.L; ++j)
            for (int64_t c = 0; c < s.nkv * s.D; ++c) {
                const size_t idx = size_t((bi * s.L + j) * s.nkv * s.D + c);
                k2.bits[idx] = kn.bits[idx];
                v2.bits[idx] = vn.bits[idx];
            }
    DevArray<uint16_t> q_d(nQ), k_d(nK), v_d(nK), o1(nQ), o2(nQ);
    DevArray<float> l1(size_t(s.b * s.nq * s.L)), l2(l1.n);
    ASSERT_TRUE(q_d.p && k_d.p && v_d.p && o1.p && o2.p && l1.p && l2.p);
    const float scale = 1.f / std::sqrt(float(s.D));
    FA_CUDA_OK(cudaMemcpy(q_d.p, q.bits.data(), nQ * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(k_d.p, k.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(v_d.p, v.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    flash_attention_forward(q_d.bf(), k_d.bf(), v_d.bf(), s.b, s.L, s.nq, s.nkv, s.D, scale, o1.bf(), l1.p, nullptr);
    FA_CUDA_OK(cudaMemcpy(k_d.p, k2.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    FA_CUDA_OK(cudaMemcpy(v_d.p, v2.bits.data(), nK * 2, cudaMemcpyHostToDevice));
    flash_attention_forward(q_d.bf(), k_d.bf(), v_d.bf(), s.b, s.L, s.nq, s.nkv, s.D, scale, o2.bf(), l2.p, nullptr);
    FA_CUDA_OK(cudaDeviceSynchronize());
    const std::vector<uint16_t> a = download(o1), b = download(o2);
    const std::vector<float> la = download(l1), lb = download(l2);
    int64_t same_before = 0, differ_after = 0;
    for (int64_t bi = 0; bi < s.b; ++bi)
        for (int64_t i = 0; i < s.L; ++i) {
            bool row_same = true;
            for (int64_t c = 0; c < s.nq * s.D; ++c) {
                const size_t idx = size_t((bi * s.L + i) * s.nq * s.D + c);
                row_same = row_same && a[idx] == b[idx];
            }
            for (int64_t h = 0; h < s.nq; ++h) {
                const size_t li = size_t((bi * s.nq + h) * s.L + i);
                row_same = row_same && la[li] == lb[li];
            }
            if (i <= i0) {
                EXPECT_TRUE(row_same) << "batch " << bi << " query " << i << " changed with keys > " << i0;
                same_before += row_same;
            } else {
                differ_after += !row_same;
            }
        }
    EXPECT_EQ(same_before, s.b * (i0 + 1));
    EXPECT_EQ(differ_after, s.b * (s.L - i0 - 1));  // and the later rows do see the new keys
}

TEST(FlashAttentionArgs, RejectsUnsupportedHeadDim) {
    EXPECT_FALSE(flash_attention_supports_head_dim(80));
    EXPECT_TRUE(flash_attention_supports_head_dim(128));
    EXPECT_THROW(flash_attention_forward(nullptr, nullptr, nullptr, 1, 4, 2, 1, 80, 1.f, nullptr, nullptr, nullptr),
                 autoround::Error);
    EXPECT_THROW(flash_attention_forward(nullptr, nullptr, nullptr, 1, 4, 3, 2, 64, 1.f, nullptr, nullptr, nullptr),
                 autoround::Error);  // 3 query heads over 2 kv heads
}

}  // namespace
