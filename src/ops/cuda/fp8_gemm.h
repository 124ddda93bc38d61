// ops/cuda/fp8_gemm.h — a row-major bf16 GEMM run on FP8 tensor cores (Ada / Hopper, sm_89+): per-tensor amax
// scaling of both operands to e4m3 or e5m2 on the device, then one cublasLtMatmul with FP32 accumulation.
//
// Why: the tuner's backward pass (dX = dY·W, dW = dYᵀ·X of every linear of a decoder block) dominates the GPU
// time; SignSGD only uses the sign of the weight gradient, so per-tensor FP8 is accurate enough there and runs
// the tensor cores at twice the bf16 rate. The forward stays bf16 (not this file's business).
//
// Semantics are those of block_engine.cu's gemm_bf<TC>: row-major
//     C[M, N] = alpha · op(A)[M, K] · op(B)[K, N] + beta · C
// with op(A) = A (A stored [M, K], row stride lda) or Aᵀ (ta: A stored [K, M]), op(B) = B (B stored [K, N], row
// stride ldb) or Bᵀ (tb: B stored [N, K]); C stored [M, N] with row stride ldc, FP32 or bf16.
// What is computed is alpha · (A_q·sA⁻¹)·(B_q·sB⁻¹) + beta·C, A_q = fp8(A·sA) (round to nearest even, saturating),
// sA = fp8_max / amax(|A|) (448 for e4m3, 57344 for e5m2; 1 when amax is 0), the same for B; FP32 accumulation.
// The amax is measured on every call (no delayed scaling, no host synchronisation).
//
// Requirements (checked on every call; a violation throws autoround::Error naming the shapes, so that the caller
// can fall back to its bf16 GEMM): M, N, K multiples of 16 and > 0; lda ≥ (ta ? M : K), ldb ≥ (tb ? K : N);
// ldc ≥ N, ldc · sizeof(C) and C's address multiples of 16 bytes; not both operands e5m2 (no such cuBLASLt kernel).
// A and B may have any row stride and alignment (16-byte aligned rows with lda % 8 == 0 take the vector path).
// C must not overlap A or B.
//
// Device memory, streams and graphs: the object owns the cuBLASLt handle, a 32 MiB workspace, the FP8 copies of
// A and B (grown on demand) and 4 floats of amax / inverse scales. Calls are asynchronous on `stream` and do not
// allocate once the scratch is big enough: call reserve() with the largest operands before capturing a CUDA
// graph (growing inside a capture throws). The scratch is shared by all calls, so one object must not be used on
// two streams concurrently (calls on one stream are ordered; give each concurrent stream its own Fp8Gemm).
// Plain C++ header (no CUDA types besides cudaStream_t); defined only in CUDA builds.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

struct __nv_bfloat16;  // cuda_bf16.h's type (declared the same way there); only pointers to it are used here

namespace autoround {

enum class Fp8Format : int {
    E4M3 = 0,  // 3 mantissa bits, max 448: activations and weights (default)
    E5M2 = 1,  // 2 mantissa bits, max 57344: wider range for gradients (at most one operand may be E5M2)
};

class Fp8Gemm {
public:
    // Binds to the current CUDA device. Throws autoround::Error when cuBLASLt or the allocation fails; does not
    // check supported() (a GEMM on a device without FP8 tensor cores fails in cublasLt with an Error).
    Fp8Gemm();
    ~Fp8Gemm();
    Fp8Gemm(const Fp8Gemm&) = delete;
    Fp8Gemm& operator=(const Fp8Gemm&) = delete;

    // True when `device` has FP8 tensor cores that cuBLASLt drives (compute capability ≥ 8.9); false for a bad
    // index or without a driver. Never throws.
    static bool supported(int device);

    // Whether gemm() accepts these shapes / strides / output type (the checks listed above; alignment of C is
    // checked only by gemm()). out_bytes is sizeof(C element): 4 (FP32) or 2 (bf16).
    static bool shapes_supported(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                                 int64_t ldc, int out_bytes);

    // Grows the FP8 scratch to hold op(A) of max_elems_A = M·K and op(B) of max_elems_B = K·N elements (one byte
    // each). Synchronous (cudaMalloc / cudaFree); call before capturing graphs.
    void reserve(int64_t max_elems_A, int64_t max_elems_B);

    // Formats of the two operands (default E4M3 for both); stays in effect for later calls.
    void set_formats(Fp8Format a, Fp8Format b);
    // cuBLASLt's FP8 "fast accumulation" (CUBLASLT_MATMUL_DESC_FAST_ACCUM): faster, but the tensor cores' partial
    // sums are no longer promoted to full FP32 periodically. Default off.
    void set_fast_accum(bool on);
    // Benchmark aid only: when on, gemm() skips the amax and the quantisation and multiplies whatever FP8 copies
    // the previous call left in the scratch (the results are then meaningless). Default off.
    void set_skip_quantize_for_benchmark(bool on);

    // C[M, N] = alpha · op(A) · op(B) + beta · C (see above). A, B bf16 and C device pointers.
    void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const __nv_bfloat16* A, int64_t lda,
              const __nv_bfloat16* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream);
    void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const __nv_bfloat16* A, int64_t lda,
              const __nv_bfloat16* B, int64_t ldb, float beta, __nv_bfloat16* C, int64_t ldc, cudaStream_t stream);

    // Device pointer to 4 floats {amax(A), amax(B), 1/sA, 1/sB} of the latest call (valid once it completed);
    // for tests and diagnostics.
    const float* device_scales() const;

    struct Impl;

private:
    std::unique_ptr<Impl> p_;
};

}  // namespace autoround
