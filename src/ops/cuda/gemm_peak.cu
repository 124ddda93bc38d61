// ops/cuda/gemm_peak.cu — see gemm_peak.h.
#include "ops/cuda/gemm_peak.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "ops/cuda/cuda_check.h"

namespace autoround {
namespace {

__global__ void fill_bf16_kernel(__nv_bfloat16* p, int64_t n, uint32_t seed) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        uint32_t h = uint32_t(i) * 2654435761u ^ seed;
        h ^= h >> 13;
        h *= 0x5bd1e995u;
        h ^= h >> 15;
        p[i] = __float2bfloat16(float(h & 0xffff) / 65536.f - 0.5f);
    }
}

struct Scoped {
    void* a = nullptr;
    void* b = nullptr;
    void* c = nullptr;
    void* ws = nullptr;
    cublasHandle_t h = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    ~Scoped() {
        if (e0) cudaEventDestroy(e0);
        if (e1) cudaEventDestroy(e1);
        if (h) cublasDestroy(h);
        for (void* p : {a, b, c, ws})
            if (p) cudaFree(p);
    }
};

}  // namespace

double cuda_bf16_gemm_tflops(int64_t M, int64_t N, int64_t K, int reps) {
    Scoped s;
    const size_t ws_bytes = size_t(32) << 20;
    AR_CUDA_CHECK(cudaMalloc(&s.a, size_t(M * K) * 2));
    AR_CUDA_CHECK(cudaMalloc(&s.b, size_t(K * N) * 2));
    AR_CUDA_CHECK(cudaMalloc(&s.c, size_t(M * N) * 2));
    AR_CUDA_CHECK(cudaMalloc(&s.ws, ws_bytes));
    fill_bf16_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(s.a), M * K, 1u);
    fill_bf16_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(s.b), K * N, 2u);
    AR_CUDA_CHECK(cudaGetLastError());
    AR_CUBLAS_CHECK(cublasCreate(&s.h));
    AR_CUBLAS_CHECK(cublasSetMathMode(s.h, CUBLAS_DEFAULT_MATH));
    AR_CUBLAS_CHECK(cublasSetWorkspace(s.h, s.ws, ws_bytes));
    AR_CUDA_CHECK(cudaEventCreate(&s.e0));
    AR_CUDA_CHECK(cudaEventCreate(&s.e1));
    const float alpha = 1.f, beta = 0.f;
    auto run = [&] {  // column-major C[N,M] = B^T... the layout does not matter for the rate
        AR_CUBLAS_CHECK(cublasGemmEx(s.h, CUBLAS_OP_T, CUBLAS_OP_N, int(N), int(M), int(K), &alpha, s.b, CUDA_R_16BF,
                                     int(K), s.a, CUDA_R_16BF, int(K), &beta, s.c, CUDA_R_16BF, int(N),
                                     CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    for (int i = 0; i < 3; ++i) run();
    AR_CUDA_CHECK(cudaDeviceSynchronize());
    double best = 0;
    for (int i = 0; i < std::max(reps, 1); ++i) {
        AR_CUDA_CHECK(cudaEventRecord(s.e0));
        run();
        AR_CUDA_CHECK(cudaEventRecord(s.e1));
        AR_CUDA_CHECK(cudaEventSynchronize(s.e1));
        float ms = 0;
        AR_CUDA_CHECK(cudaEventElapsedTime(&ms, s.e0, s.e1));
        best = std::max(best, 2.0 * double(M) * double(N) * double(K) / (double(ms) * 1e-3) / 1e12);
    }
    return best;
}

}  // namespace autoround
