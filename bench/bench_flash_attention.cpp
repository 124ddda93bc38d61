// bench/bench_flash_attention.cpp — the fused causal GQA attention (ops/cuda/flash_attention.h): forward, backward and
// forward + backward time and TFLOP/s for the attention of a Qwen3-4B and a Qwen3-8B block (both: 32 query heads,
// 8 kv heads, head_dim 128) at batch 8 × 2048 tokens, and, for comparison, the bf16 cuBLAS GEMMs alone of the
// block engine's materialising path (FP32 scores [b, nq, L, L], then P·V; backward dO·Vᵀ, dS·K, dSᵀ·Q, Pᵀ·dO — full
// L × L products, the softmax kernels and their 8.6 GB round trips not included, so a lower bound of that path).
//
// FLOPs counted (causal): forward 2 · 2·b·nq·L²·D / 2 (QKᵀ and PV over the lower triangle), backward 2.5 × forward
// (five products: the S recompute, dP, dV, dK, dQ). The cuBLAS rows use the same count (the work that is needed),
// though cuBLAS computes the full squares.
// Usage: bench_flash_attention [--batch 8] [--seqlen 2048] [--iters 20] [--warmup 3] [--no_cublas]
// Built in every benchmark build; without CUDA (AUTOROUND_HAVE_CUDA undefined) it only says so.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench_util.h"

#ifdef AUTOROUND_HAVE_CUDA
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/flash_attention.h"

using namespace autoround;
using namespace bench;  // bench_util.h: flags, cuda_ok / blas_ok, Buf, upload_random_bf16, time_ms

namespace {

struct Shape {
    const char* name;
    int nq, nkv, D;
};
constexpr Shape kShapes[] = {{"qwen3-4b", 32, 8, 128}, {"qwen3-8b", 32, 8, 128}};

// row-major C[M,N] = alpha·op(A)·op(B) + beta·C, batched with strides (as the block engine's gemm_bf_batched)
void gemm_rm_batched(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                     int64_t lda, int64_t sA, const void* B, int64_t ldb, int64_t sB, float beta, void* C,
                     cudaDataType tc, int64_t ldc, int64_t sC, int64_t batch) {
    blas_ok(cublasGemmStridedBatchedEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
                                       int(M), int(K), &alpha, B, CUDA_R_16BF, int(ldb), sB, A, CUDA_R_16BF,
                                       int(lda), sA, &beta, C, tc, int(ldc), sC, int(batch), CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx");
}

}  // namespace

int main(int argc, char** argv) {
    int64_t batch = 8, L = 2048;
    int iters = 20, warmup = 3;
    bool cublas = true;
    if (!Flags()
             .flag("--no_cublas", cublas, false)
             .value("--batch", batch)
             .value("--seqlen", L)
             .value("--iters", iters)
             .value("--warmup", warmup)
             .parse(argc, argv))
        return 1;
    try {
        const auto devs = cuda_devices_or_complain();
        if (devs.empty()) return 1;
        std::printf("device %s (sm_%d%d, %d SMs), batch %lld, seqlen %lld, mean of %d runs after %d warm-ups\n",
                    devs[0].name.c_str(), devs[0].sm_major, devs[0].sm_minor, devs[0].multiprocessors,
                    (long long)batch, (long long)L, iters, warmup);
        for (const Shape& sh : kShapes) {
            const int nq = sh.nq, nkv = sh.nkv, D = sh.D;
            const size_t nQ = size_t(batch * L) * size_t(nq * D), nK = size_t(batch * L) * size_t(nkv * D);
            const float scale = 1.f / std::sqrt(float(D));
            const double fwd_flop = 2.0 * 2.0 * double(batch) * nq * double(L) * double(L) * D / 2.0;
            const double bwd_flop = 2.5 * fwd_flop;
            Buf q(nQ * 2), k(nK * 2), v(nK * 2), o(nQ * 2), dO(nQ * 2), lse(size_t(batch * nq * L) * 4);
            Buf dq(nQ * 4), dk(nK * 4), dv(nK * 4), ws(flash_attention_backward_workspace_bytes(batch, L, nq));
            upload_random_bf16(q, nQ, 1, 1.f);
            upload_random_bf16(k, nK, 2, 1.f);
            upload_random_bf16(v, nK, 3, 1.f);
            upload_random_bf16(dO, nQ, 4, 1.f);
            using bf = __nv_bfloat16;
            auto fwd = [&] {
                flash_attention_forward(q.as<bf>(), k.as<bf>(), v.as<bf>(), batch, L, nq, nkv, D, scale, o.as<bf>(),
                                        lse.as<float>(), nullptr);
            };
            auto bwd = [&] {
                flash_attention_backward(q.as<bf>(), k.as<bf>(), v.as<bf>(), o.as<bf>(), dO.as<bf>(), lse.as<float>(),
                                         batch, L, nq, nkv, D, scale, dq.as<float>(), dk.as<float>(), dv.as<float>(),
                                         ws.as<float>(), nullptr);
            };
            const double t_f = time_ms(fwd, warmup, iters);
            fwd();
            const double t_b = time_ms(bwd, warmup, iters);
            const double t_fb = time_ms([&] { fwd(); bwd(); }, warmup, iters);
            cuda_ok(cudaDeviceSynchronize(), "sync");
            auto line = [&](const char* what, double ms, double flop) {
                std::printf("%-9s %-28s %8.3f ms  %7.1f TFLOP/s\n", sh.name, what, ms, flop / (ms * 1e-3) / 1e12);
            };
            line("flash forward", t_f, fwd_flop);
            line("flash backward", t_b, bwd_flop);
            line("flash forward+backward", t_fb, fwd_flop + bwd_flop);
            std::printf("{\"bench\":\"flash_attention\",\"shape\":\"%s\",\"batch\":%lld,\"seqlen\":%lld,"
                        "\"fwd_ms\":%.4f,\"bwd_ms\":%.4f,\"fwd_bwd_ms\":%.4f,\"fwd_tflops\":%.1f,\"bwd_tflops\":%.1f,"
                        "\"fwd_bwd_tflops\":%.1f}\n",
                        sh.name, (long long)batch, (long long)L, t_f, t_b, t_fb, fwd_flop / t_f / 1e9,
                        bwd_flop / t_b / 1e9, (fwd_flop + bwd_flop) / t_fb / 1e9);
            if (!cublas) continue;
            // the materialising path's GEMMs (block_engine.cu forward_bf16 / backward_bf16)
            const size_t LL = size_t(batch) * size_t(nq) * size_t(L) * size_t(L);
            Buf P(LL * 4), Pb(LL * 2), dSb(LL * 2), att(nQ * 2);
            cublasHandle_t hb;
            blas_ok(cublasCreate(&hb), "cublasCreate");
            Buf cws(size_t(32) << 20);
            blas_ok(cublasSetWorkspace(hb, cws.p, size_t(32) << 20), "cublasSetWorkspace");
            const int64_t QD = int64_t(nq) * D, KD = int64_t(nkv) * D, r = nq / nkv, sQ = L * QD, sK = L * KD,
                          LLh = L * L, sS = nq * LLh;
            auto gf = [&] {
                for (int64_t h = 0; h < nq; ++h)
                    gemm_rm_batched(hb, false, true, L, L, D, scale, q.as<bf>() + h * D, QD, sQ,
                                    k.as<bf>() + h / r * D, KD, sK, 0.f, P.as<float>() + h * LLh, CUDA_R_32F, L, sS,
                                    batch);
                for (int64_t h = 0; h < nq; ++h)
                    gemm_rm_batched(hb, false, false, L, D, L, 1.f, Pb.as<bf>() + h * LLh, L, sS,
                                    v.as<bf>() + h / r * D, KD, sK, 0.f, att.as<bf>() + h * D, CUDA_R_16BF, QD, sQ,
                                    batch);
            };
            auto gb = [&] {
                for (int64_t h = 0; h < nq; ++h)
                    gemm_rm_batched(hb, false, true, L, L, D, 1.f, dO.as<bf>() + h * D, QD, sQ,
                                    v.as<bf>() + h / r * D, KD, sK, 0.f, P.as<float>() + h * LLh, CUDA_R_32F, L, sS,
                                    batch);
                for (int64_t h = 0; h < nq; ++h) {
                    const int64_t g = h / r;
                    const float bacc = (h % r == 0) ? 0.f : 1.f;
                    gemm_rm_batched(hb, false, false, L, D, L, scale, dSb.as<bf>() + h * LLh, L, sS,
                                    k.as<bf>() + g * D, KD, sK, 0.f, dq.as<float>() + h * D, CUDA_R_32F, QD, sQ, batch);
                    gemm_rm_batched(hb, true, false, L, D, L, scale, dSb.as<bf>() + h * LLh, L, sS,
                                    q.as<bf>() + h * D, QD, sQ, bacc, dk.as<float>() + g * D, CUDA_R_32F, KD, sK,
                                    batch);
                    gemm_rm_batched(hb, true, false, L, D, L, 1.f, Pb.as<bf>() + h * LLh, L, sS,
                                    dO.as<bf>() + h * D, QD, sQ, bacc, dv.as<float>() + g * D, CUDA_R_32F, KD, sK,
                                    batch);
                }
            };
            cuda_ok(cudaMemset(Pb.p, 0, LL * 2), "memset");
            cuda_ok(cudaMemset(dSb.p, 0, LL * 2), "memset");
            const double c_f = time_ms(gf, 1, std::max(1, iters / 4));
            const double c_b = time_ms(gb, 1, std::max(1, iters / 4));
            cuda_ok(cudaDeviceSynchronize(), "sync");
            blas_ok(cublasDestroy(hb), "cublasDestroy");
            line("cuBLAS GEMMs only, forward", c_f, fwd_flop);
            line("cuBLAS GEMMs only, backward", c_b, bwd_flop);
            line("cuBLAS GEMMs only, fwd+bwd", c_f + c_b, fwd_flop + bwd_flop);
            std::printf("%-9s speed-up fwd+bwd vs cuBLAS GEMMs only: %.2fx; score buffers avoided: %.1f GB\n",
                        sh.name, (c_f + c_b) / t_fb, double(LL) * (4 + 2 + 2) / 1e9);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

#else
int main() {
    std::printf("bench_flash_attention: built without CUDA (configure with -DAUTOROUND_CUDA=ON)\n");
    return 0;
}
#endif
