// bench/bench_fp8_gemm.cpp — the FP8 row-major GEMM (ops/cuda/fp8_gemm.h) against the bf16 cublasGemmEx the block
// engine runs (block_engine.cu gemm_bf<TC>), on the GEMMs of one Qwen3-4B decoder block's backward pass at
// 8 × 2048 = 16384 tokens (hidden 2560, q 4096, kv 1024, intermediate 9728), as backward_bf16 issues them:
//   weight gradients dW[out, in] (+)= dYᵀ·X   (ta, fp32 C, K = tokens)
//   input gradients  dX[tok, in]   = dY·W    (bf16 or fp32 C, K = out features)
// For each shape: bf16 cuBLAS, FP8 including its amax / quantise / transpose kernels ("fp8 total"), FP8 matmul
// alone on already quantised operands ("fp8 matmul", set_skip_quantize_for_benchmark), and with cuBLASLt's fast
// accumulation; ms and TFLOP/s (2·M·N·K), then the sum over one block backward (each shape × its count).
// Usage: bench_fp8_gemm [--tokens 16384] [--iters 20] [--warmup 3] [--e5m2_grad]
//   --e5m2_grad: the gradient operand (dY, always the GEMMs' A) in e5m2, the other e4m3.
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
#include "ops/cuda/fp8_gemm.h"

using namespace autoround;
using namespace bench;  // bench_util.h: flags, cuda_ok / blas_ok, Buf, upload_random_bf16, time_ms

namespace {

// row-major C[M,N] = alpha·op(A)·op(B) + beta·C on bf16 tensor cores (block_engine.cu's gemm_bf)
void gemm_bf(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
             int64_t lda, const void* B, int64_t ldb, float beta, void* C, cudaDataType tc, int64_t ldc) {
    blas_ok(cublasGemmEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M), int(K),
                         &alpha, B, CUDA_R_16BF, int(ldb), A, CUDA_R_16BF, int(lda), &beta, C, tc, int(ldc),
                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx");
}

struct Shape {
    const char* name;
    bool ta, tb;
    int64_t M, N, K;
    bool bf16_out;
    float beta;
    int count;  // how many times one block backward runs it
};

}  // namespace

int main(int argc, char** argv) {
    int64_t T = 16384;
    int iters = 20, warmup = 3;
    bool e5m2_grad = false;
    if (!Flags()
             .flag("--e5m2_grad", e5m2_grad)
             .value("--tokens", T)
             .value("--iters", iters)
             .value("--warmup", warmup)
             .parse(argc, argv))
        return 1;
    try {
        const auto devs = cuda_devices_or_complain();
        if (devs.empty()) return 1;
        int dev = 0;
        cuda_ok(cudaGetDevice(&dev), "cudaGetDevice");
        std::printf("device %s (sm_%d%d, %d SMs), tokens %lld, mean of %d runs after %d warm-ups, A operand %s\n",
                    devs[0].name.c_str(), devs[0].sm_major, devs[0].sm_minor, devs[0].multiprocessors, (long long)T,
                    iters, warmup, e5m2_grad ? "e5m2" : "e4m3");
        if (!Fp8Gemm::supported(dev)) {
            std::fprintf(stderr, "the device has no FP8 tensor cores (needs compute capability >= 8.9)\n");
            return 1;
        }
        const int64_t H = 2560, QD = 4096, KD = 1024, I = 9728;
        // backward_bf16's GEMMs of a Qwen3-4B block (attention core excluded: flash attention)
        const Shape shapes[] = {
            {"dW down   [H,I] = dY^T act", true, false, H, I, T, false, 1.f, 1},
            {"d act     [T,I] = dY W_down", false, false, T, I, H, true, 0.f, 1},
            {"dW gate/up [I,H] = dG^T h2", true, false, I, H, T, false, 1.f, 2},
            {"dH        [T,H] = dG W_gate", false, false, T, H, I, false, 0.f, 1},
            {"dH +=     [T,H] = dU W_up", false, false, T, H, I, false, 1.f, 1},
            {"dW o      [H,QD] = dX2^T att", true, false, H, QD, T, false, 1.f, 1},
            {"dA        [T,QD] = dX2 W_o", false, false, T, QD, H, true, 0.f, 1},
            {"dW q      [QD,H] = dq^T h1", true, false, QD, H, T, false, 1.f, 1},
            {"dW k/v    [KD,H] = dk^T h1", true, false, KD, H, T, false, 1.f, 2},
        };
        int64_t maxA = 0, maxB = 0, maxC = 0;
        for (const Shape& s : shapes) {
            maxA = std::max(maxA, s.M * s.K);
            maxB = std::max(maxB, s.K * s.N);
            maxC = std::max(maxC, s.M * s.N);
        }
        Buf A(size_t(maxA) * 2), B(size_t(maxB) * 2), C(size_t(maxC) * 4);
        upload_random_bf16(A, size_t(maxA), 1, 1e-3f);  // gradient-like
        upload_random_bf16(B, size_t(maxB), 2, 1.f);
        cuda_ok(cudaMemset(C.p, 0, size_t(maxC) * 4), "memset");
        cublasHandle_t hb;
        blas_ok(cublasCreate(&hb), "cublasCreate");
        Buf cws(size_t(32) << 20);
        blas_ok(cublasSetWorkspace(hb, cws.p, size_t(32) << 20), "cublasSetWorkspace");
        Fp8Gemm g;
        g.reserve(maxA, maxB);
        if (e5m2_grad) g.set_formats(Fp8Format::E5M2, Fp8Format::E4M3);
        using bf = __nv_bfloat16;
        double sum_bf = 0, sum_f8 = 0, sum_mm = 0, sum_fast = 0, sum_flop = 0;
        std::printf("%-30s %7s %7s %7s | %9s %9s %9s %9s | %7s %7s %7s %7s | %6s\n", "GEMM", "M", "N", "K",
                    "bf16 ms", "fp8 ms", "fp8mm ms", "fast ms", "bf16 TF", "fp8 TF", "mm TF", "fast TF", "x");
        for (const Shape& s : shapes) {
            const int64_t lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N, ldc = s.N;
            const double flop = 2.0 * double(s.M) * double(s.N) * double(s.K);
            auto f_bf = [&] {
                gemm_bf(hb, s.ta, s.tb, s.M, s.N, s.K, 1.f, A.p, lda, B.p, ldb, s.beta, C.p,
                        s.bf16_out ? CUDA_R_16BF : CUDA_R_32F, ldc);
            };
            auto f_f8 = [&] {
                if (s.bf16_out)
                    g.gemm(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.as<bf>(), lda, B.as<bf>(), ldb, s.beta, C.as<bf>(), ldc,
                           nullptr);
                else
                    g.gemm(s.ta, s.tb, s.M, s.N, s.K, 1.f, A.as<bf>(), lda, B.as<bf>(), ldb, s.beta, C.as<float>(),
                           ldc, nullptr);
            };
            const double t_bf = time_ms(f_bf, warmup, iters);
            g.set_fast_accum(false);
            const double t_f8 = time_ms(f_f8, warmup, iters);
            g.set_skip_quantize_for_benchmark(true);
            const double t_mm = time_ms(f_f8, warmup, iters);
            g.set_fast_accum(true);
            const double t_fast = time_ms(f_f8, warmup, iters);
            g.set_skip_quantize_for_benchmark(false);
            g.set_fast_accum(false);
            cuda_ok(cudaDeviceSynchronize(), "sync");
            auto tf = [&](double ms) { return flop / (ms * 1e-3) / 1e12; };
            std::printf("%-30s %7lld %7lld %7lld | %9.3f %9.3f %9.3f %9.3f | %7.0f %7.0f %7.0f %7.0f | %5.2fx\n",
                        s.name, (long long)s.M, (long long)s.N, (long long)s.K, t_bf, t_f8, t_mm, t_fast, tf(t_bf),
                        tf(t_f8), tf(t_mm), tf(t_fast), t_bf / t_f8);
            std::printf("{\"bench\":\"fp8_gemm\",\"gemm\":\"%s\",\"ta\":%d,\"tb\":%d,\"M\":%lld,\"N\":%lld,\"K\":%lld,"
                        "\"bf16_ms\":%.4f,\"fp8_ms\":%.4f,\"fp8_matmul_ms\":%.4f,\"fp8_fast_matmul_ms\":%.4f}\n",
                        s.name, int(s.ta), int(s.tb), (long long)s.M, (long long)s.N, (long long)s.K, t_bf, t_f8,
                        t_mm, t_fast);
            sum_bf += s.count * t_bf;
            sum_f8 += s.count * t_f8;
            sum_mm += s.count * t_mm;
            sum_fast += s.count * t_fast;
            sum_flop += s.count * flop;
        }
        blas_ok(cublasDestroy(hb), "cublasDestroy");
        std::printf("one block backward (these GEMMs): bf16 %.3f ms (%.0f TFLOP/s), fp8 %.3f ms (%.0f TFLOP/s; "
                    "quantise/transpose overhead %.3f ms), fp8 matmul alone %.3f ms, fast-accum matmul %.3f ms; "
                    "speed-up %.2fx\n",
                    sum_bf, sum_flop / (sum_bf * 1e-3) / 1e12, sum_f8, sum_flop / (sum_f8 * 1e-3) / 1e12,
                    sum_f8 - sum_mm, sum_mm, sum_fast, sum_bf / sum_f8);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}

#else
int main() {
    std::printf("bench_fp8_gemm: built without CUDA (configure with -DAUTOROUND_CUDA=ON)\n");
    return 0;
}
#endif
