// tests/cuda/test_cuda_decode_ops.cpp — the row-wise kernels of the GPU decoder (ops/cuda/decode_ops.h) against the
// CPU model's functions (ops/cpu/norm.h rmsnorm, rope.h rope_apply + rope_inv_freq, activation.h swiglu,
// eval/perplexity.h token_nll, model/sampler.h Sampler::argmax) and a float64 attention reference, on awkward shapes:
// T ∈ {1, 3, 17}; H ∈ {8, 24, 520}; D ∈ {64, 128, 96 (the generic path)} (attention also 256 and 80);
// (nq, nkv) ∈ {(4, 2), (8, 1), (2, 2)} for everything, and for the attention also (8, 2), (12, 4) (3 heads of a
// 4-head block) and (24, 2) (a GQA group of 12: two head blocks per kv head) — every head-block size 2, 4, 8;
// slot0 ∈ {0, 5, 1000} with max_keys = slot0 + T and slot0 + T + 300 (single and split paths); long decodes
// (max_keys 3000 to 40000: many splits, several tiles per split, splits past the keys, more splits than CTAs) through
// the split + merge path, also replayed from a CUDA graph with a changing slot0; V ∈ {7, 8192, 151936} with ties for
// argmax and token NLL; the argument errors.
//
// Tolerances (err = GPU − reference):
//   embed_rows_bf16, f32_to_bf16, the v cache rows: exact (a bf16 widening / one RNE rounding; NaN only as NaN).
//   rms_norm_rows:      |err| ≤ 1e-6·|ref| + 1e-7 — the same FP32 operations as ops/cpu/norm.cpp after an FP64 sum of
//                       squares in another order (at most a 1-ulp change of the FP32 mean square).
//   qk_norm_rope_cache: q_f32 |err| ≤ 1e-5·(1 + |ref|) — the RMSNorm as above, then cosf/sinf of the same FP32 angle
//                       (CUDA's cosf/sinf are within 2 ulp of glibc's) and FMA contraction of the rotation (a few ulp
//                       of values ≤ ~5); the k cache (bf16) |err| ≤ 2⁻⁸·|ref| + 1e-5 — the bf16 rounding (2⁻⁹
//                       relative) of a value that may sit on the other side of a rounding boundary.
//                       bf16 outputs that have an FP32 twin (q_bf16, y_bf16, act_bf16): exactly bf16(twin).
//   decode_attention:   |err| ≤ 1e-4·max|ref| + 1e-5 per row — the inputs are the same (FP32 q, exact bf16 K/V
//                       values), so only FP32 arithmetic differs: the scores (relative ~1e-7), expf and the FP32 sums
//                       of up to 40,000 probabilities and P·V products (relative ~1e-6 in another order).
//   swiglu_rows:        |err| ≤ 4e-6·|ref| + 1e-12 — the same FP32 formula, expf within 2 ulp of glibc's.
//   argmax_rows:        exact (the lowest index among ties, NaN handled as std::max_element).
//   token_nll_rows:     |err| ≤ 1e-9·(1 + |ref|) — FP32 max (exact), FP64 exp and sum in another order.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "eval/perplexity.h"
#include "io/model_config.h"
#include "model/sampler.h"
#include "ops/cpu/activation.h"
#include "ops/cpu/norm.h"
#include "ops/cpu/rope.h"
#include "ops/cuda/decode_ops.h"
#include "ops/cuda/device_info.h"

using namespace autoround;

namespace {

void cuda_ok(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}
void sync() { cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

// Device array of n T (at least one element allocated).
template <typename T>
struct Dev {
    T* p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count) {
        cuda_ok(cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(count, 1) * sizeof(T)), "cudaMalloc");
    }
    explicit Dev(const std::vector<T>& h) : Dev(h.size()) { upload(h); }
    ~Dev() { cudaFree(p); }
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;
    void upload(const std::vector<T>& h) {
        cuda_ok(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy H2D");
        sync();  // a pageable copy may still be in flight when cudaMemcpy returns; other streams read it next
    }
    std::vector<T> download() const {
        sync();
        std::vector<T> h(n);
        cuda_ok(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy D2H");
        return h;
    }
};

std::vector<float> randn(size_t n, std::mt19937& g, float mean, float sd) {
    std::normal_distribution<float> nd(mean, sd);
    std::vector<float> v(n);
    for (float& x : v) x = nd(g);
    return v;
}

std::vector<uint16_t> randn_bf16(size_t n, std::mt19937& g, float sd) {
    std::normal_distribution<float> nd(0.f, sd);
    std::vector<uint16_t> v(n);
    for (uint16_t& x : v) x = float_to_bf16(nd(g));
    return v;
}

bool is_bf16_nan(uint16_t h) { return (h & 0x7f80u) == 0x7f80u && (h & 0x007fu) != 0; }

std::vector<float> inv_freq_for(int D) {
    RopeConfig rc;
    rc.theta = 1000000.0;  // Qwen3
    return rope_inv_freq(rc, D);
}

// ---- embed_rows_bf16 ----------------------------------------------------------------------------------------------

TEST(CudaDecodeOps, EmbedRowsBf16) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(1);
    const int64_t V = 50;
    for (int64_t H : {8, 24, 520}) {
        SCOPED_TRACE("H " + std::to_string(H));
        const std::vector<uint16_t> table = randn_bf16(size_t(V * H), g, 1.f);
        const std::vector<int32_t> ids = {0, 49, -1, 50, 7, 7, 13, 1000, 2, 48, 3, 4, 5, 6, 8, 9, 10};  // T 17
        const int64_t T = int64_t(ids.size());
        Dev<uint16_t> d_table(table);
        Dev<int32_t> d_ids(ids);
        Dev<float> d_x(size_t(T * H));
        embed_rows_bf16(d_table.p, V, d_ids.p, T, H, d_x.p, nullptr);
        const std::vector<float> x = d_x.download();
        for (int64_t t = 0; t < T; ++t) {
            const bool ok = ids[size_t(t)] >= 0 && ids[size_t(t)] < V;
            for (int64_t i = 0; i < H; ++i) {
                const float want = ok ? bf16_to_float(table[size_t(ids[size_t(t)] * H + i)]) : 0.f;
                ASSERT_EQ(x[size_t(t * H + i)], want) << "t " << t << " i " << i;
            }
        }
    }
}

// ---- rms_norm_rows ------------------------------------------------------------------------------------------------

TEST(CudaDecodeOps, RmsNormRows) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(2);
    const float eps = 1e-6f;
    for (int64_t T : {1, 3, 17})
        for (int64_t H : {8, 24, 520, 5120}) {
            SCOPED_TRACE("T " + std::to_string(T) + " H " + std::to_string(H));
            std::vector<float> x = randn(size_t(T * H), g, 0.3f, 2.f);
            const std::vector<float> w = randn(size_t(H), g, 1.f, 0.1f);
            std::vector<float> ref(x.size());
            rmsnorm(x.data(), w.data(), T, H, eps, ref.data());
            Dev<float> d_x(x), d_w(w), d_y(x.size());
            Dev<uint16_t> d_yb(x.size());
            rms_norm_rows(d_x.p, d_w.p, T, H, eps, d_y.p, d_yb.p, nullptr);
            const std::vector<float> y = d_y.download();
            const std::vector<uint16_t> yb = d_yb.download();
            for (size_t i = 0; i < y.size(); ++i) {
                ASSERT_LE(std::fabs(y[i] - ref[i]), 1e-6 * std::fabs(ref[i]) + 1e-7) << "i " << i;
                ASSERT_EQ(yb[i], float_to_bf16(y[i])) << "i " << i;
            }
            // bf16 only, then in place: the same values
            Dev<uint16_t> d_yb2(x.size());
            rms_norm_rows(d_x.p, d_w.p, T, H, eps, nullptr, d_yb2.p, nullptr);
            rms_norm_rows(d_x.p, d_w.p, T, H, eps, d_x.p, nullptr, nullptr);
            EXPECT_EQ(d_yb2.download(), yb);
            EXPECT_EQ(d_x.download(), y);
        }
}

// ---- qk_norm_rope_cache -------------------------------------------------------------------------------------------

struct RopeCase {
    int64_t T;
    int nq, nkv, D;
    int64_t slot0, pos_delta, capacity;
    bool qk_norm;
};

void run_rope_case(const RopeCase& c, std::mt19937& g) {
    const int64_t T = c.T, D = c.D, nq = c.nq, nkv = c.nkv, nh = nq + 2 * nkv;
    const float eps = 1e-6f;
    const std::vector<float> qkv = randn(size_t(T * nh * D), g, 0.f, 1.5f);
    const std::vector<float> qn = randn(size_t(D), g, 1.f, 0.1f), kn = randn(size_t(D), g, 1.f, 0.1f);
    const std::vector<float> inv = inv_freq_for(c.D);
    // CPU reference: per-head RMSNorm then RoPE at positions slot0 + t + pos_delta (model/qwen3_model.cpp)
    std::vector<float> q(size_t(T * nq * D)), k(size_t(T * nkv * D));
    for (int64_t t = 0; t < T; ++t) {
        const float* row = qkv.data() + t * nh * D;
        std::copy(row, row + nq * D, q.begin() + t * nq * D);
        std::copy(row + nq * D, row + (nq + nkv) * D, k.begin() + t * nkv * D);
    }
    if (c.qk_norm) {
        rmsnorm(q.data(), qn.data(), T * nq, D, eps, q.data());
        rmsnorm(k.data(), kn.data(), T * nkv, D, eps, k.data());
    }
    std::vector<int32_t> pos(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) pos[size_t(t)] = int32_t(c.slot0 + t + c.pos_delta);
    rope_apply(q.data(), T, nq, D, pos.data(), inv);
    rope_apply(k.data(), T, nkv, D, pos.data(), inv);

    const int64_t rows = c.capacity + 3;  // 3 rows past the capacity: must stay untouched
    const uint16_t sentinel = 0x1234;
    const std::vector<uint16_t> cache0(size_t(rows * nkv * D), sentinel);
    Dev<float> d_qkv(qkv), d_qn(qn), d_kn(kn), d_inv(inv), d_q(q.size());
    Dev<uint16_t> d_qb(q.size()), d_qb2(q.size()), d_k(cache0), d_v(cache0);
    Dev<int32_t> d_slot(std::vector<int32_t>{int32_t(c.slot0)});
    qk_norm_rope_cache(d_qkv.p, T, c.nq, c.nkv, c.D, c.qk_norm ? d_qn.p : nullptr, c.qk_norm ? d_kn.p : nullptr, eps,
                       d_inv.p, d_slot.p, c.pos_delta, d_q.p, d_qb.p, d_k.p, d_v.p, c.capacity, nullptr);
    const std::vector<float> gq = d_q.download();
    const std::vector<uint16_t> gqb = d_qb.download(), gk = d_k.download(), gv = d_v.download();
    for (size_t i = 0; i < q.size(); ++i) {
        ASSERT_LE(std::fabs(gq[i] - q[i]), 1e-5 * (1.0 + std::fabs(q[i]))) << "q " << i;
        ASSERT_EQ(gqb[i], float_to_bf16(gq[i])) << "q_bf16 " << i;
    }
    for (int64_t s = 0; s < rows; ++s)
        for (int64_t j = 0; j < nkv * D; ++j) {
            const size_t at = size_t(s * nkv * D + j);
            const int64_t t = s - c.slot0;
            if (t >= 0 && t < T && s < c.capacity) {
                const float kr = k[size_t(t * nkv * D + j)];
                ASSERT_LE(std::fabs(bf16_to_float(gk[at]) - kr), std::ldexp(std::fabs(kr), -8) + 1e-5)
                    << "k slot " << s << " j " << j;
                ASSERT_EQ(gv[at], float_to_bf16(qkv[size_t(t * nh * D + (nq + nkv) * D + j)]))
                    << "v slot " << s << " j " << j;
            } else {
                ASSERT_EQ(gk[at], sentinel) << "k slot " << s << " written";
                ASSERT_EQ(gv[at], sentinel) << "v slot " << s << " written";
            }
        }
    // q as bf16 only: the same bits
    qk_norm_rope_cache(d_qkv.p, T, c.nq, c.nkv, c.D, c.qk_norm ? d_qn.p : nullptr, c.qk_norm ? d_kn.p : nullptr, eps,
                       d_inv.p, d_slot.p, c.pos_delta, nullptr, d_qb2.p, d_k.p, d_v.p, c.capacity, nullptr);
    ASSERT_EQ(d_qb2.download(), gqb);
}

TEST(CudaDecodeOps, QkNormRopeCache) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(3);
    const int heads[3][2] = {{4, 2}, {8, 1}, {2, 2}};
    for (int D : {64, 128, 96})
        for (const auto& hd : heads)
            for (int64_t T : {1, 3, 17})
                for (int64_t slot0 : {0, 5, 1000})
                    for (bool norm : {true, false}) {
                        const int64_t delta = D == 96 ? -3 : (slot0 == 5 ? 11 : 0);
                        const RopeCase c{T, hd[0], hd[1], D, slot0, delta, slot0 + T + 2, norm};
                        SCOPED_TRACE("D " + std::to_string(D) + " nq " + std::to_string(hd[0]) + " nkv " +
                                     std::to_string(hd[1]) + " T " + std::to_string(T) + " slot0 " +
                                     std::to_string(slot0) + " norm " + std::to_string(norm));
                        run_rope_case(c, g);
                        if (HasFatalFailure()) return;
                    }
    // rows past the capacity are skipped (q is still written)
    for (int64_t cap : {int64_t(1), int64_t(6)}) {
        SCOPED_TRACE("capacity " + std::to_string(cap));
        run_rope_case(RopeCase{3, 4, 2, 128, 5, 0, cap, true}, g);  // slot0 5: rows 5, 6, 7
        if (HasFatalFailure()) return;
    }
}

// ---- decode_attention ---------------------------------------------------------------------------------------------

struct AttnCase {
    int64_t T;
    int nq, nkv, D;
    int64_t slot0, max_keys;
};

std::string attn_name(const AttnCase& c) {
    return "T " + std::to_string(c.T) + " nq " + std::to_string(c.nq) + " nkv " + std::to_string(c.nkv) + " D " +
           std::to_string(c.D) + " slot0 " + std::to_string(c.slot0) + " max_keys " + std::to_string(c.max_keys);
}

// float64 causal GQA attention: o [T, nq·D] for query rows at slots slot0 + t over the caches [·, nkv·D].
std::vector<double> attention_ref(const AttnCase& c, const std::vector<float>& q, const std::vector<uint16_t>& kc,
                                  const std::vector<uint16_t>& vc, double scale) {
    const int64_t D = c.D, nq = c.nq, nkv = c.nkv, r = nq / nkv, ld = nkv * D;
    std::vector<double> o(size_t(c.T * nq * D), 0.0);
    std::vector<double> p;
    for (int64_t t = 0; t < c.T; ++t)
        for (int64_t h = 0; h < nq; ++h) {
            const int64_t g = h / r, n = c.slot0 + t + 1;
            const float* qr = q.data() + (t * nq + h) * D;
            p.assign(size_t(n), 0.0);
            double m = -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
                double acc = 0;
                for (int64_t d = 0; d < D; ++d) acc += double(qr[d]) * bf16_to_float(kc[size_t(j * ld + g * D + d)]);
                p[size_t(j)] = acc * scale;
                m = std::max(m, p[size_t(j)]);
            }
            double sum = 0;
            for (int64_t j = 0; j < n; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - m));
            double* orow = o.data() + (t * nq + h) * D;
            for (int64_t j = 0; j < n; ++j) {
                const double pj = p[size_t(j)] / sum;
                for (int64_t d = 0; d < D; ++d) orow[d] += pj * bf16_to_float(vc[size_t(j * ld + g * D + d)]);
            }
        }
    return o;
}

// Per (row, head): max |o − ref| ≤ 1e-4 · max |ref| (over the whole output) + 1e-5.
void expect_attention_close(const std::vector<float>& o, const std::vector<double>& ref, const AttnCase& c) {
    double mx = 0;
    for (double v : ref) mx = std::max(mx, std::fabs(v));
    const double tol = 1e-4 * mx + 1e-5;
    for (size_t i = 0; i < ref.size(); ++i)
        ASSERT_LE(std::fabs(double(o[i]) - ref[i]), tol)
            << attn_name(c) << ": row " << i / size_t(c.nq * c.D) << " head " << (i / size_t(c.D)) % size_t(c.nq)
            << " dim " << i % size_t(c.D) << " gpu " << o[i] << " ref " << ref[i];
}

// Caches [max_keys, nkv·D]: random bf16 for the slots < slot0 + T, NaN beyond (a read past the causal range shows).
void make_caches(const AttnCase& c, std::mt19937& g, std::vector<uint16_t>& kc, std::vector<uint16_t>& vc) {
    const size_t used = size_t((c.slot0 + c.T) * c.nkv * c.D), all = size_t(c.max_keys * c.nkv * c.D);
    kc = randn_bf16(used, g, 1.f);
    vc = randn_bf16(used, g, 1.f);
    kc.resize(all, 0x7fc0);
    vc.resize(all, 0x7fc0);
}

void run_attention_case(const AttnCase& c, std::mt19937& g) {
    SCOPED_TRACE(attn_name(c));
    std::vector<uint16_t> kc, vc;
    make_caches(c, g, kc, vc);
    const std::vector<float> q = randn(size_t(c.T * c.nq * c.D), g, 0.f, 2.f);
    const float scale = 1.0f / std::sqrt(float(c.D));
    const std::vector<double> ref = attention_ref(c, q, kc, vc, scale);
    Dev<float> d_q(q), d_o(q.size());
    Dev<uint16_t> d_k(kc), d_v(vc);
    Dev<int32_t> d_slot(std::vector<int32_t>{int32_t(c.slot0)});
    const size_t ws_bytes = decode_attention_workspace_bytes(c.T, c.nq, c.D, c.max_keys);
    Dev<unsigned char> d_ws(ws_bytes);
    decode_attention(d_q.p, d_k.p, d_v.p, c.T, c.nq, c.nkv, c.D, scale, d_slot.p, c.max_keys, d_o.p,
                     ws_bytes ? d_ws.p : nullptr, nullptr);
    expect_attention_close(d_o.download(), ref, c);
}

TEST(CudaDecodeOps, DecodeAttentionShapes) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(4);
    const int heads[6][2] = {{4, 2}, {8, 1}, {2, 2}, {24, 2}, {8, 2}, {12, 4}};
    for (int D : {64, 128, 96})
        for (const auto& hd : heads)
            for (int64_t T : {1, 3, 17})
                for (int64_t slot0 : {0, 5, 1000})
                    for (int64_t extra : {0, 300}) {
                        run_attention_case(AttnCase{T, hd[0], hd[1], D, slot0, slot0 + T + extra}, g);
                        if (HasFatalFailure()) return;
                    }
}

TEST(CudaDecodeOps, DecodeAttentionLongCache) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(5);
    // T = 1 over 3000 keys: one 128-key tile per split; over 40,000 keys: several tiles per split; slot0 0 with
    // max_keys 3000: every split but the first is empty; D 256 and 80: the other head-dim paths.
    const AttnCase cases[] = {
        {1, 8, 2, 128, 2999, 3000},  {1, 8, 1, 128, 2999, 3000}, {1, 4, 2, 64, 2999, 3000},
        {1, 4, 2, 96, 2999, 3000},   {1, 24, 2, 128, 2999, 3000}, {1, 8, 2, 128, 0, 3000},
        {1, 8, 2, 128, 1234, 3000},  {1, 16, 8, 128, 39000, 40000}, {1, 4, 2, 64, 39999, 40000},
        {1, 2, 2, 256, 3000, 4096},  {1, 4, 1, 80, 2500, 3000},   {3, 8, 2, 128, 2990, 3000},
        {3, 16, 2, 256, 500, 600},   {1, 16, 2, 256, 700, 800},   {1, 12, 4, 128, 5000, 6000},
    };
    for (const AttnCase& c : cases) {
        run_attention_case(c, g);
        if (HasFatalFailure()) return;
    }
}

// One capture, replays at growing positions: the launch shape never depends on *d_slot0.
TEST(CudaDecodeOps, DecodeAttentionGraphReplay) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(6);
    AttnCase c{1, 8, 2, 128, 2999, 3000};
    std::vector<uint16_t> kc, vc;
    make_caches(c, g, kc, vc);  // all 3000 slots random
    const std::vector<float> q = randn(size_t(c.nq * c.D), g, 0.f, 2.f);
    const float scale = 1.0f / std::sqrt(float(c.D));
    Dev<float> d_q(q), d_o(q.size());
    Dev<uint16_t> d_k(kc), d_v(vc);
    Dev<int32_t> d_slot(std::vector<int32_t>{0});
    const size_t ws_bytes = decode_attention_workspace_bytes(1, c.nq, c.D, c.max_keys);
    ASSERT_GT(ws_bytes, 0u);
    Dev<unsigned char> d_ws(ws_bytes);
    cudaStream_t stream = nullptr;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    decode_attention(d_q.p, d_k.p, d_v.p, 1, c.nq, c.nkv, c.D, scale, d_slot.p, c.max_keys, d_o.p, d_ws.p, stream);
    cuda_ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int64_t slot0 : {0, 1, 127, 128, 700, 2999}) {
        c.slot0 = slot0;
        d_slot.upload({int32_t(slot0)});
        cuda_ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
        cuda_ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        expect_attention_close(d_o.download(), attention_ref(c, q, kc, vc, scale), c);
        if (HasFatalFailure()) break;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
}

// ---- decode_attention_step ----------------------------------------------------------------------------------------

// decode_attention_step against its definition, qk_norm_rope_cache + decode_attention (each checked above against
// the CPU): the same cache bits, o within the attention tolerance of a float64 reference built from the two-call q.
struct StepCase {
    int nq, nkv, D;
    int64_t capacity;
    bool qk_norm;
};

std::string step_name(const StepCase& c) {
    return "nq " + std::to_string(c.nq) + " nkv " + std::to_string(c.nkv) + " D " + std::to_string(c.D) +
           " capacity " + std::to_string(c.capacity) + " norm " + std::to_string(c.qk_norm);
}

// Steps at the given slots, in order, each with a new random qkv row, through one captured graph of
// decode_attention_step on one pair of caches and through the two calls on another.
void run_step_case(const StepCase& c, const std::vector<int64_t>& slots, std::mt19937& g) {
    SCOPED_TRACE(step_name(c));
    const int64_t D = c.D, nh = c.nq + 2 * c.nkv, ld = c.nkv * D, cap = c.capacity;
    const float eps = 1e-6f, scale = 1.0f / std::sqrt(float(D));
    std::vector<uint16_t> cache0 = randn_bf16(size_t(cap * ld), g, 1.f);  // rows the steps do not write: old keys
    const std::vector<float> qn = randn(size_t(D), g, 1.f, 0.1f), kn = randn(size_t(D), g, 1.f, 0.1f);
    Dev<float> d_qkv(size_t(nh * D)), d_qn(qn), d_kn(kn), d_inv(inv_freq_for(c.D)), d_o(size_t(c.nq * D)),
        d_o2(size_t(c.nq * D)), d_q(size_t(c.nq * D));
    Dev<uint16_t> d_k(cache0), d_v(cache0), d_k2(cache0), d_v2(cache0);
    Dev<int32_t> d_slot(std::vector<int32_t>{0});
    const size_t ws_bytes = decode_attention_step_workspace_bytes(c.nq, c.D, cap);
    Dev<unsigned char> d_ws(ws_bytes), d_ws2(decode_attention_workspace_bytes(1, c.nq, c.D, cap));
    const float* qn_p = c.qk_norm ? d_qn.p : nullptr;
    const float* kn_p = c.qk_norm ? d_kn.p : nullptr;
    cudaStream_t stream = nullptr;
    cuda_ok(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
    decode_attention_step(d_qkv.p, c.nq, c.nkv, c.D, qn_p, kn_p, eps, d_inv.p, d_slot.p, 7, d_k.p, d_v.p, cap, scale,
                          d_o.p, d_ws.p, stream);
    cuda_ok(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (int64_t slot : slots) {
        SCOPED_TRACE("slot " + std::to_string(slot));
        d_qkv.upload(randn(size_t(nh * D), g, 0.f, 1.5f));
        d_slot.upload({int32_t(slot)});
        cuda_ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
        cuda_ok(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        qk_norm_rope_cache(d_qkv.p, 1, c.nq, c.nkv, c.D, qn_p, kn_p, eps, d_inv.p, d_slot.p, 7, d_q.p, nullptr, d_k2.p,
                           d_v2.p, cap, nullptr);
        decode_attention(d_q.p, d_k2.p, d_v2.p, 1, c.nq, c.nkv, c.D, scale, d_slot.p, cap, d_o2.p,
                         d_ws2.n > 0 ? d_ws2.p : nullptr, nullptr);
        const std::vector<uint16_t> k = d_k.download(), v = d_v.download(), k2 = d_k2.download();
        ASSERT_EQ(k, k2) << "k cache";
        ASSERT_EQ(v, d_v2.download()) << "v cache";
        const AttnCase ac{1, c.nq, c.nkv, c.D, std::min(slot, cap - 1), cap};  // keys 0 .. min(slot, cap − 1)
        const std::vector<double> ref = slot < 0 ? std::vector<double>(size_t(c.nq * D), 0.0)
                                                 : attention_ref(ac, d_q.download(), k, v, scale);
        expect_attention_close(d_o.download(), ref, ac);
        if (::testing::Test::HasFatalFailure()) break;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
}

// The architecture of the code that runs (it decides the fused step and PDL): one this binary was built for
// (CMake's AUTOROUND_CUDA_ARCHS: 80 or 90 here), not newer than the device.
TEST(CudaDecodeOps, DeviceCodeSm) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const std::vector<CudaDeviceInfo> devs = cuda_list_devices();
    int dev = 0;
    cuda_ok(cudaGetDevice(&dev), "cudaGetDevice");
    const int sm = device_code_sm();
    EXPECT_GE(sm, 80);
    EXPECT_LE(sm, devs[size_t(dev)].sm_major * 10 + devs[size_t(dev)].sm_minor);
    EXPECT_EQ(device_code_sm(), sm);  // cached
    // what a launched kernel's __CUDA_ARCH__ says: a binary built only for sm_80 runs its compute_80 PTX on a Hopper
    // GPU (JIT-compiled into sm_90 code without the sm_90-only parts) and must report 80, not 90
    EXPECT_EQ(device_code_sm_launched(), sm);
}

TEST(CudaDecodeOps, DecodeAttentionStep) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(9);
    // heads: GQA groups of 2, 8, 1, 12 (two head blocks of 8), 4 (the Qwen3-4B shape); head dims: the three fast
    // paths and the generic one; capacities: one chunk, a partial cluster, 9 chunks (cluster of 8, one CTA with
    // two chunks)
    const int heads[5][2] = {{4, 2}, {8, 1}, {2, 2}, {24, 2}, {32, 8}};
    for (int D : {128, 64, 256, 96})
        for (const auto& hd : heads)
            for (int64_t cap : {int64_t(40), int64_t(200), int64_t(513)}) {
                run_step_case(StepCase{hd[0], hd[1], D, cap, D != 64}, {0, 1, 39, 64, 130, cap - 1, cap + 5, -1}, g);
                if (HasFatalFailure()) return;
            }
    // many consecutive steps (the graph replayed as the cache fills); the largest fused cache (1024 keys) and the
    // two-kernel path beyond it
    std::vector<int64_t> run(150);
    for (size_t i = 0; i < run.size(); ++i) run[i] = int64_t(i);
    run_step_case(StepCase{32, 8, 128, 300, true}, run, g);
    if (HasFatalFailure()) return;
    run_step_case(StepCase{16, 8, 128, 1024, true}, {0, 700, 1023, 1030}, g);
    if (HasFatalFailure()) return;
    run_step_case(StepCase{16, 8, 128, 1025, true}, {0, 1024}, g);
    if (HasFatalFailure()) return;
    run_step_case(StepCase{16, 8, 128, 5000, true}, {0, 4200, 4999}, g);
}

// ---- swiglu_rows --------------------------------------------------------------------------------------------------

TEST(CudaDecodeOps, SwigluRows) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(7);
    for (int64_t T : {1, 3, 17})
        for (int64_t I : {8, 24, 520, 3072}) {
            SCOPED_TRACE("T " + std::to_string(T) + " I " + std::to_string(I));
            const std::vector<float> gu = randn(size_t(T * 2 * I), g, 0.f, 3.f);
            std::vector<float> ref(size_t(T * I));
            for (int64_t t = 0; t < T; ++t)
                swiglu(gu.data() + t * 2 * I, gu.data() + t * 2 * I + I, I, ref.data() + t * I);
            Dev<float> d_gu(gu), d_a(ref.size());
            Dev<uint16_t> d_ab(ref.size());
            swiglu_rows(d_gu.p, T, I, d_a.p, d_ab.p, nullptr);
            const std::vector<float> a = d_a.download();
            const std::vector<uint16_t> ab = d_ab.download();
            for (size_t i = 0; i < ref.size(); ++i) {
                ASSERT_LE(std::fabs(a[i] - ref[i]), 4e-6 * std::fabs(ref[i]) + 1e-12) << "i " << i;
                ASSERT_EQ(ab[i], float_to_bf16(a[i])) << "i " << i;
            }
        }
}

// ---- argmax_rows, token_nll_rows ----------------------------------------------------------------------------------

// T rows of V logits ~ N(0, 2) with the row maximum repeated at 1–3 places (ties), plus special rows at the end
// when T ≥ 3: all equal; the maximum only at the last index.
std::vector<float> tie_logits(int64_t T, int64_t V, std::mt19937& g) {
    std::vector<float> l = randn(size_t(T * V), g, 0.f, 2.f);
    std::uniform_int_distribution<int64_t> pick(0, V - 1);
    for (int64_t t = 0; t < T; ++t) {
        float* row = l.data() + t * V;
        const float mx = *std::max_element(row, row + V) + 1.0f;
        const int n = 1 + int(t % 3);
        for (int i = 0; i < n; ++i) row[pick(g)] = mx;
        if (t == 1) row[V - 1] = mx;  // a tie with the last index
        if (t == 2) row[0] = mx;      // ... with the first
    }
    if (T >= 3) {
        std::fill(l.begin() + (T - 1) * V, l.end(), 0.5f);  // all equal: index 0
        float* row = l.data() + (T - 2) * V;
        row[V - 1] = 1e30f;  // the maximum at the last index only
    }
    return l;
}

void expect_argmax(const std::vector<float>& l, int64_t T, int64_t V, const float* d_logits) {
    Dev<int32_t> d_out(static_cast<size_t>(T));
    argmax_rows(d_logits, T, V, d_out.p, nullptr);
    const std::vector<int32_t> out = d_out.download();
    for (int64_t t = 0; t < T; ++t)
        ASSERT_EQ(out[size_t(t)], Sampler::argmax(std::span<const float>(l.data() + t * V, size_t(V)))) << "row " << t;
}

// ---- topk_candidates ------------------------------------------------------------------------------------------------

uint32_t float_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof(u));
    return u;
}

// The host definition (Sampler::sample's penalty, temperature and top-k threshold): ids ascending, their values.
void topk_ref(const std::vector<float>& l, const std::vector<uint8_t>& seen, float penalty, float temperature, int k,
              std::vector<int32_t>& idx, std::vector<float>& val) {
    std::vector<float> t = l;
    for (size_t i = 0; i < t.size(); ++i) {
        if (penalty != 1.f && seen[i]) t[i] = t[i] > 0 ? t[i] / penalty : t[i] * penalty;
        t[i] /= temperature;
    }
    std::vector<float> s = t;
    std::nth_element(s.begin(), s.begin() + (k - 1), s.end(), std::greater<float>());
    const float kth = s[size_t(k - 1)];
    idx.clear();
    val.clear();
    for (size_t i = 0; i < t.size(); ++i)
        if (!(t[i] < kth) && t[i] != -std::numeric_limits<float>::infinity()) {
            idx.push_back(int32_t(i));
            val.push_back(t[i]);
        }
}

// The device selection equals the host's exactly (set, values, count) on logits with many ties at coarse levels,
// ±0, −inf, with and without the penalty, k from 1 to V; a NaN is flagged; `mark` sets its flag before the penalty.
TEST(CudaDecodeOps, TopkCandidates) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(21);
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t V : {1, 7, 1000, 151936})
        for (int k : {1, 2, 20, 50, 1000000}) {
            k = int(std::min<int64_t>(k, V));
            for (int variant = 0; variant < 4; ++variant) {
                SCOPED_TRACE("V " + std::to_string(V) + " k " + std::to_string(k) + " variant " + std::to_string(variant));
                std::uniform_int_distribution<int> level(-30, 30);
                std::vector<float> l(static_cast<size_t>(V));
                for (float& x : l) x = variant == 0 ? float(level(g)) * 0.5f : randn(1, g, 0.f, 3.f)[0];
                if (V > 10) {
                    l[3] = 0.f;
                    l[4] = -0.f;
                    l[5] = -inf;
                }
                std::vector<uint8_t> seen(static_cast<size_t>(V), 0);
                for (int64_t i = 0; i < V; i += 3) seen[size_t(i)] = 1;
                const float penalty = variant >= 2 ? 1.3f : 1.f, temperature = variant % 2 ? 0.7f : 1.f;
                const int32_t mark = V > 1 ? int32_t(V - 1) : -1;
                const size_t nv = static_cast<size_t>(V);
                Dev<float> d_l(l), d_scratch(nv), d_val(nv);
                Dev<uint8_t> d_seen(seen);
                Dev<int32_t> d_idx(nv), d_count(2);
                topk_candidates(d_l.p, V, d_seen.p, mark, penalty, temperature, k, int(V), d_scratch.p, d_idx.p,
                                d_val.p, d_count.p, nullptr);
                if (mark >= 0) seen[size_t(mark)] = 1;
                std::vector<int32_t> ri;
                std::vector<float> rv;
                topk_ref(l, seen, penalty, temperature, k, ri, rv);
                const std::vector<int32_t> count = d_count.download();
                ASSERT_EQ(count[1], 0);
                ASSERT_EQ(count[0], int32_t(ri.size()));
                std::vector<int32_t> gi = d_idx.download();
                std::vector<float> gv = d_val.download();
                std::vector<std::pair<int32_t, float>> got;
                for (int32_t j = 0; j < count[0]; ++j) got.emplace_back(gi[size_t(j)], gv[size_t(j)]);
                std::sort(got.begin(), got.end());
                for (size_t j = 0; j < ri.size(); ++j) {
                    ASSERT_EQ(got[j].first, ri[j]) << "candidate " << j;
                    ASSERT_EQ(float_bits(got[j].second), float_bits(rv[j])) << "candidate " << j;
                }
                if (mark >= 0) {
                    ASSERT_EQ(d_seen.download()[size_t(mark)], 1);
                }
            }
        }
    // a NaN logit is flagged
    std::vector<float> l = randn(500, g, 0.f, 1.f);
    l[77] = std::numeric_limits<float>::quiet_NaN();
    Dev<float> d_l(l), d_scratch(500), d_val(500);
    Dev<int32_t> d_idx(500), d_count(2);
    topk_candidates(d_l.p, 500, nullptr, -1, 1.f, 1.f, 20, 500, d_scratch.p, d_idx.p, d_val.p, d_count.p, nullptr);
    EXPECT_EQ(d_count.download()[1], 1);
    // bad arguments
    EXPECT_THROW(topk_candidates(d_l.p, 500, nullptr, -1, 1.f, 1.f, 0, 500, d_scratch.p, d_idx.p, d_val.p, d_count.p,
                                 nullptr),
                 Error);
    EXPECT_THROW(topk_candidates(d_l.p, 500, nullptr, -1, 1.2f, 1.f, 5, 500, d_scratch.p, d_idx.p, d_val.p, d_count.p,
                                 nullptr),
                 Error);
}

TEST(CudaDecodeOps, ArgmaxRows) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(8);
    for (int64_t V : {7, 8192, 151936})
        for (int64_t T : {1, 3, 17}) {
            SCOPED_TRACE("V " + std::to_string(V) + " T " + std::to_string(T));
            const std::vector<float> l = tie_logits(T, V, g);
            Dev<float> d_l(l);
            expect_argmax(l, T, V, d_l.p);
            if (HasFatalFailure()) return;
        }
    // Special rows (V 8192): −inf everywhere; NaN first; NaN before the maximum; −inf with one finite value; +inf
    // twice. Then the same rows from a pointer that is not 16-byte aligned (the scalar path).
    const int64_t V = 8192, T = 5;
    std::vector<float> l = randn(size_t(T * V), g, 0.f, 1.f);
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    std::fill(l.begin(), l.begin() + V, -inf);
    l[size_t(V)] = nan;
    l[size_t(2 * V + 10)] = nan;
    l[size_t(2 * V + 20)] = 100.f;
    std::fill(l.begin() + 3 * V, l.begin() + 4 * V, -inf);
    l[size_t(3 * V + 4000)] = -1e30f;
    l[size_t(4 * V + 17)] = inf;
    l[size_t(4 * V + 9)] = inf;
    {
        SCOPED_TRACE("special rows");
        Dev<float> d_l(l);
        expect_argmax(l, T, V, d_l.p);
    }
    {
        SCOPED_TRACE("unaligned rows");
        std::vector<float> shifted(l.size() + 1, 0.f);
        std::copy(l.begin(), l.end(), shifted.begin() + 1);
        Dev<float> d_l(shifted);
        expect_argmax(l, T, V, d_l.p + 1);
    }
}

TEST(CudaDecodeOps, TokenNllRows) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(9);
    for (int64_t V : {7, 8192, 151936})
        for (int64_t T : {1, 3, 17}) {
            SCOPED_TRACE("V " + std::to_string(V) + " T " + std::to_string(T));
            const std::vector<float> l = tie_logits(T, V, g);
            std::uniform_int_distribution<int32_t> pick(0, int32_t(V - 1));
            std::vector<int32_t> tg(static_cast<size_t>(T));
            for (int64_t t = 0; t < T; ++t) tg[size_t(t)] = t == 0 ? 0 : (t == 1 ? int32_t(V - 1) : pick(g));
            Dev<float> d_l(l);
            Dev<int32_t> d_tg(tg);
            Dev<double> d_nll(static_cast<size_t>(T));
            token_nll_rows(d_l.p, d_tg.p, T, V, d_nll.p, nullptr);
            const std::vector<double> nll = d_nll.download();
            for (int64_t t = 0; t < T; ++t) {
                const double ref = token_nll(std::span<const float>(l.data() + t * V, size_t(V)), tg[size_t(t)]);
                ASSERT_LE(std::fabs(nll[size_t(t)] - ref), 1e-9 * (1.0 + std::fabs(ref))) << "row " << t;
            }
        }
    // a target outside [0, V) gives NaN
    const int64_t V = 7;
    const std::vector<float> l = randn(size_t(2 * V), g, 0.f, 1.f);
    Dev<float> d_l(l);
    Dev<int32_t> d_tg(std::vector<int32_t>{-1, int32_t(V)});
    Dev<double> d_nll(2);
    token_nll_rows(d_l.p, d_tg.p, 2, V, d_nll.p, nullptr);
    const std::vector<double> nll = d_nll.download();
    EXPECT_TRUE(std::isnan(nll[0]));
    EXPECT_TRUE(std::isnan(nll[1]));
}

// ---- f32_to_bf16 --------------------------------------------------------------------------------------------------

TEST(CudaDecodeOps, F32ToBf16) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::mt19937 g(10);
    for (int64_t n : {int64_t(1), int64_t(1000003)}) {
        SCOPED_TRACE("n " + std::to_string(n));
        std::vector<float> x(static_cast<size_t>(n));
        std::uniform_real_distribution<float> mant(-1.f, 1.f);
        std::uniform_int_distribution<int> ex(-140, 127);
        for (float& v : x) v = std::ldexp(mant(g), ex(g));  // all magnitudes, subnormals included
        const float specials[] = {0.f, -0.f, std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(), 1.f + 0x1p-8f /* tie → 1 */,
                                  1.f + 3 * 0x1p-8f /* tie → 1 + 2^-6 */, std::numeric_limits<float>::max(),
                                  std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::quiet_NaN()};
        for (size_t i = 0; i < std::size(specials) && i < x.size(); ++i) x[x.size() - 1 - i] = specials[i];
        Dev<float> d_x(x);
        Dev<uint16_t> d_y(x.size());
        f32_to_bf16(d_x.p, d_y.p, n, nullptr);
        const std::vector<uint16_t> y = d_y.download();
        for (size_t i = 0; i < x.size(); ++i) {
            if (std::isnan(x[i]))
                ASSERT_TRUE(is_bf16_nan(y[i])) << "i " << i;
            else
                ASSERT_EQ(y[i], float_to_bf16(x[i])) << "i " << i << " x " << x[i];
        }
    }
}

// ---- argument errors ----------------------------------------------------------------------------------------------

TEST(CudaDecodeOps, ArgumentErrors) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Dev<float> f(4096);
    Dev<uint16_t> h(4096);
    Dev<int32_t> i32(16);
    Dev<double> f64(16);
    // rms_norm_rows: no output; H 0; null input
    EXPECT_THROW(rms_norm_rows(f.p, f.p, 1, 8, 1e-6f, nullptr, nullptr, nullptr), Error);
    EXPECT_THROW(rms_norm_rows(f.p, f.p, 1, 0, 1e-6f, f.p, nullptr, nullptr), Error);
    EXPECT_THROW(rms_norm_rows(nullptr, f.p, 1, 8, 1e-6f, f.p, nullptr, nullptr), Error);
    // embed_rows_bf16: V 0
    EXPECT_THROW(embed_rows_bf16(h.p, 0, i32.p, 1, 8, f.p, nullptr), Error);
    // qk_norm_rope_cache: odd D; D > 256; nq not a multiple of nkv; no q output
    EXPECT_THROW(qk_norm_rope_cache(f.p, 1, 2, 1, 63, nullptr, nullptr, 1e-6f, f.p, i32.p, 0, f.p, nullptr, h.p, h.p, 4,
                                    nullptr),
                 Error);
    EXPECT_THROW(qk_norm_rope_cache(f.p, 1, 2, 1, 258, nullptr, nullptr, 1e-6f, f.p, i32.p, 0, f.p, nullptr, h.p, h.p,
                                    4, nullptr),
                 Error);
    EXPECT_THROW(qk_norm_rope_cache(f.p, 1, 3, 2, 64, nullptr, nullptr, 1e-6f, f.p, i32.p, 0, f.p, nullptr, h.p, h.p, 4,
                                    nullptr),
                 Error);
    EXPECT_THROW(qk_norm_rope_cache(f.p, 1, 2, 1, 64, nullptr, nullptr, 1e-6f, f.p, i32.p, 0, nullptr, nullptr, h.p,
                                    h.p, 4, nullptr),
                 Error);
    // decode_attention: nq not a multiple of nkv; odd D; max_keys < T; missing workspace for a split decode;
    // misaligned cache on the 16-byte path
    EXPECT_THROW(decode_attention(f.p, h.p, h.p, 1, 3, 2, 64, 0.125f, i32.p, 16, f.p, nullptr, nullptr), Error);
    EXPECT_THROW(decode_attention(f.p, h.p, h.p, 1, 2, 1, 65, 0.125f, i32.p, 16, f.p, nullptr, nullptr), Error);
    EXPECT_THROW(decode_attention(f.p, h.p, h.p, 4, 2, 1, 64, 0.125f, i32.p, 3, f.p, nullptr, nullptr), Error);
    ASSERT_GT(decode_attention_workspace_bytes(1, 2, 64, 3000), 0u);
    EXPECT_THROW(decode_attention(f.p, h.p, h.p, 1, 2, 1, 64, 0.125f, i32.p, 3000, f.p, nullptr, nullptr), Error);
    EXPECT_THROW(decode_attention(f.p, h.p + 1, h.p, 1, 2, 1, 64, 0.125f, i32.p, 16, f.p, nullptr, nullptr), Error);
    EXPECT_EQ(decode_attention_workspace_bytes(3, 2, 64, 3000), 0u);  // T > 1 needs none
    // swiglu_rows, argmax_rows, token_nll_rows, f32_to_bf16
    EXPECT_THROW(swiglu_rows(f.p, 1, 8, nullptr, nullptr, nullptr), Error);
    EXPECT_THROW(argmax_rows(f.p, 1, 0, i32.p, nullptr), Error);
    EXPECT_THROW(token_nll_rows(f.p, i32.p, 1, 0, f64.p, nullptr), Error);
    EXPECT_THROW(token_nll_rows(f.p, i32.p, -1, 8, f64.p, nullptr), Error);
    EXPECT_THROW(f32_to_bf16(f.p, h.p, -1, nullptr), Error);
    // nothing was launched
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
