// ops/cuda/fp8_gemm.cu — see fp8_gemm.h. The row-major GEMM C[M,N] = alpha·op(A)·op(B) + beta·C on FP8 tensor
// cores, for the backward GEMMs of the tuner (SignSGD only needs the sign of dW, so per-tensor FP8 is enough).
//
// Per call, all on `stream`, no host synchronisation:
//   1. cudaMemsetAsync of the two amax slots;
//   2. amax2_kernel: amax(|A|) and amax(|B|) over the stored (strided) operands, one launch for both
//      (blockIdx.y = operand), atomicMax on the float bits (non-negative floats order like their int bits);
//   3. one quantising kernel per operand, bf16 → fp8 with s = fp8_max / amax (computed by every thread from the
//      amax; block 0 also stores 1/s for cuBLASLt), which also lays the operand out K-contiguous, as Hopper's FP8
//      cuBLASLt kernels need ("TN" only: Lt's A transposed, Lt's B not, both K-major):
//          Aq [M, K] row-major (Aq[i][k] = op(A)[i][k]),   Bq [N, K] row-major (Bq[j][k] = op(B)[k][j]);
//      an operand that is already K-contiguous (A with !ta, B with tb) is quantised row by row
//      (quant_rows_kernel), the other one goes through a 64×64 shared-memory tiled transpose
//      (quant_transpose_kernel);
//   4. cublasLtMatmul in column-major terms: the row-major Cᵀ [N, M] (column-major N × M, ld = ldc) is
//          D = alpha · (Lt A = Bq as column-major K × N, op T) · (Lt B = Aq as column-major K × M, op N) + beta · C
//      with A_SCALE_POINTER = 1/sB, B_SCALE_POINTER = 1/sA, FP32 compute and scale type, C = D (FP32 or bf16).
//
//   (ta, tb)  A stored    → Aq [M,K]           B stored    → Bq [N,K]           block engine use
//   (F, F)    [M,K] lda   rows (no transpose)  [K,N] ldb   tiled transpose      dX = dY · W
//   (T, F)    [K,M] lda   tiled transpose      [K,N] ldb   tiled transpose      dW = dYᵀ · X
//   (F, T)    [M,K] lda   rows                 [N,K] ldb   rows                 (forward-style X · Wᵀ)
//   (T, T)    [K,M] lda   tiled transpose      [N,K] ldb   rows
//
// Descriptors and the heuristic's algorithm are cached per (M, N, K, ldc, C type, formats, fast-accum, C
// alignment), so a steady-state call costs 5 launches and no cuBLASLt set-up.
#include "ops/cuda/fp8_gemm.h"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device_buffer.h"

namespace autoround {
namespace {

using bf16 = __nv_bfloat16;

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // what NVIDIA recommends for Hopper cuBLASLt
constexpr int kThreads = 256;
constexpr int kTile = 64;       // transpose tile: 64 k × 64 x
constexpr int kPitch = 68;      // smem row pitch in bytes of the transposed tile (4-byte aligned, few bank conflicts)

constexpr float fp8_max(Fp8Format f) { return f == Fp8Format::E5M2 ? 57344.f : 448.f; }
constexpr __nv_fp8_interpretation_t fp8_interp(Fp8Format f) {
    return f == Fp8Format::E5M2 ? __NV_E5M2 : __NV_E4M3;
}
constexpr cudaDataType fp8_dtype(Fp8Format f) { return f == Fp8Format::E5M2 ? CUDA_R_8F_E5M2 : CUDA_R_8F_E4M3; }
const char* fp8_name(Fp8Format f) { return f == Fp8Format::E5M2 ? "e5m2" : "e4m3"; }

// One stored bf16 operand: rows × cols, row stride ld (elements); vec: cols % 8 == 0, ld % 8 == 0 and p 16-byte
// aligned, so that 8 consecutive elements of a row are one 16-byte load.
struct OperandView {
    const bf16* p;
    int64_t rows, cols, ld;
    int vec;
};

// s = fp8_max / amax; 1 when amax is 0, tiny (< 1e-30: everything would be ~0 anyway, and s would overflow) or
// not finite (an overflowed gradient: the values then saturate at ±fp8_max). The host test repeats this formula.
__device__ __forceinline__ float scale_of(float amax, float fmax) {
    if (!(amax >= 1e-30f) || !(amax <= FLT_MAX)) return 1.f;
    return fmax / amax;
}

__device__ __forceinline__ float bf_bits_to_float(uint32_t bits16) { return __uint_as_float(bits16 << 16); }

// |x| max of the 8 bf16 in a 16-byte word
__device__ __forceinline__ float absmax8(uint4 u) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    float m = 0.f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        m = fmaxf(m, fabsf(bf_bits_to_float(w[i] & 0xffffu)));
        m = fmaxf(m, fabsf(bf_bits_to_float(w[i] >> 16)));
    }
    return m;
}

// 8 bf16 (one 16-byte word) · s → 8 fp8 bytes (element i in byte i of the result)
__device__ __forceinline__ uint2 quant8(uint4 u, float s, __nv_fp8_interpretation_t fmt) {
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    uint32_t q[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 f = make_float2(__fmul_rn(bf_bits_to_float(w[i] & 0xffffu), s),
                                     __fmul_rn(bf_bits_to_float(w[i] >> 16), s));
        q[i] = uint32_t(__nv_cvt_float2_to_fp8x2(f, __NV_SATFINITE, fmt));  // f.x in the low byte
    }
    return make_uint2(q[0] | (q[1] << 16), q[2] | (q[3] << 16));
}

__device__ __forceinline__ uint8_t quant1(bf16 x, float s, __nv_fp8_interpretation_t fmt) {
    return uint8_t(__nv_cvt_float_to_fp8(__fmul_rn(__bfloat162float(x), s), __NV_SATFINITE, fmt));
}

// amax[blockIdx.y] = max |x| over operand a (y = 0) or b (y = 1); amax zeroed before. Warps stride over rows,
// lanes over a row.
__global__ void __launch_bounds__(kThreads) amax2_kernel(OperandView a, OperandView b, float* amax) {
    __shared__ float sh[kThreads / 32];
    const OperandView v = blockIdx.y == 0 ? a : b;
    const int lane = threadIdx.x & 31, wib = threadIdx.x >> 5;
    const int64_t nwarps = int64_t(gridDim.x) * (kThreads / 32);
    float m = 0.f;
    for (int64_t r = int64_t(blockIdx.x) * (kThreads / 32) + wib; r < v.rows; r += nwarps) {
        const bf16* row = v.p + r * v.ld;
        if (v.vec) {
            const uint4* rv = reinterpret_cast<const uint4*>(row);
            const int64_t nv = v.cols / 8;
            for (int64_t c = lane; c < nv; c += 32) m = fmaxf(m, absmax8(__ldg(rv + c)));
        } else {
            for (int64_t c = lane; c < v.cols; c += 32) m = fmaxf(m, fabsf(__bfloat162float(row[c])));
        }
    }
    for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    if (lane == 0) sh[wib] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0.f;
        for (int i = 0; i < kThreads / 32; ++i) t = fmaxf(t, sh[i]);
        atomicMax(reinterpret_cast<int*>(amax + blockIdx.y), __float_as_int(t));  // t ≥ 0: int order = float order
    }
}

// dst [rows, cols] packed (row stride cols) = fp8(src · s): the operand is already K-contiguous (cols = K).
// Warps stride over rows; block 0 stores 1/s into *inv.
__global__ void __launch_bounds__(kThreads) quant_rows_kernel(OperandView v, const float* amax, float fmax,
                                                              __nv_fp8_interpretation_t fmt, float* inv,
                                                              uint8_t* dst) {
    const float s = scale_of(*amax, fmax);
    if (blockIdx.x == 0 && threadIdx.x == 0) *inv = 1.f / s;
    const int lane = threadIdx.x & 31;
    const int64_t nwarps = int64_t(gridDim.x) * (kThreads / 32);
    for (int64_t r = int64_t(blockIdx.x) * (kThreads / 32) + (threadIdx.x >> 5); r < v.rows; r += nwarps) {
        const bf16* row = v.p + r * v.ld;
        uint8_t* out = dst + r * v.cols;
        if (v.vec) {
            const uint4* rv = reinterpret_cast<const uint4*>(row);
            uint2* ov = reinterpret_cast<uint2*>(out);  // cols % 16 == 0 (K): 8-byte aligned
            const int64_t nv = v.cols / 8;
            for (int64_t c = lane; c < nv; c += 32) ov[c] = quant8(__ldg(rv + c), s, fmt);
        } else {
            for (int64_t c = lane; c < v.cols; c += 32) out[c] = quant1(row[c], s, fmt);
        }
    }
}

// The operand is stored [Kd = v.rows, X = v.cols] (K-major rows); dst [X, Kd] packed (row stride Kd):
// dst[x][k] = fp8(src[k][x] · s). One block per 64 × 64 tile (blockIdx.x: k tiles, blockIdx.y: x tiles):
// 16-byte loads along x (8 bf16), quantised and written transposed into shared memory t[x][k], then 16-byte
// stores along k. Needs Kd % 16 == 0 (a 16-k chunk of the output is entirely in or out of range).
__global__ void __launch_bounds__(kThreads) quant_transpose_kernel(OperandView v, const float* amax, float fmax,
                                                                   __nv_fp8_interpretation_t fmt, float* inv,
                                                                   uint8_t* dst) {
    __shared__ __align__(16) uint8_t t[kTile * kPitch];  // t[x * kPitch + k]
    const float s = scale_of(*amax, fmax);
    if (blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) *inv = 1.f / s;
    const int64_t k0 = int64_t(blockIdx.x) * kTile, x0 = int64_t(blockIdx.y) * kTile;
    // load: 64 k-rows × 8 vectors of 8 x
    for (int j = threadIdx.x; j < kTile * kTile / 8; j += kThreads) {
        const int kr = j >> 3, xv = (j & 7) * 8;
        const int64_t k = k0 + kr, x = x0 + xv;
        uint32_t lo = 0, hi = 0;  // bytes 0..3, 4..7 = x + 0..7
        if (k < v.rows) {
            const bf16* src = v.p + k * v.ld + x;
            if (v.vec) {
                if (x < v.cols) {  // cols % 8 == 0: the whole vector is in range
                    const uint2 q = quant8(__ldg(reinterpret_cast<const uint4*>(src)), s, fmt);
                    lo = q.x;
                    hi = q.y;
                }
            } else {
#pragma unroll
                for (int i = 0; i < 8; ++i)
                    if (x + i < v.cols) {
                        const uint32_t b = quant1(src[i], s, fmt);
                        if (i < 4) lo |= b << (8 * i);
                        else hi |= b << (8 * (i - 4));
                    }
            }
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            t[(xv + i) * kPitch + kr] = uint8_t(lo >> (8 * i));
            t[(xv + 4 + i) * kPitch + kr] = uint8_t(hi >> (8 * i));
        }
    }
    __syncthreads();
    // store: 64 x-rows × 4 chunks of 16 k (one per thread)
    const int xr = threadIdx.x >> 2, kc = (threadIdx.x & 3) * 16;
    const int64_t x = x0 + xr, k = k0 + kc;
    if (x < v.cols && k < v.rows) {
        const uint32_t* w = reinterpret_cast<const uint32_t*>(t + xr * kPitch + kc);  // kPitch, kc multiples of 4
        *reinterpret_cast<uint4*>(dst + x * v.rows + k) = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

OperandView view_of(const bf16* p, int64_t rows, int64_t cols, int64_t ld) {
    const int vec = (cols % 8 == 0 && ld % 8 == 0 && aligned16(p)) ? 1 : 0;
    return OperandView{p, rows, cols, ld, vec};
}

template <typename T>
struct DevPtr {
    T* p = nullptr;
    size_t n = 0;
    void grow(size_t count, const char* what) {
        if (count <= n) return;
        if (p) AR_CUDA_CHECK(cudaFree(p));
        p = nullptr;
        n = 0;
        p = static_cast<T*>(device_alloc_or_fail(count * sizeof(T), (std::string("the FP8 GEMM's ") + what).c_str(),
                                                 "run without --fp8_backward, or with --low_gpu_mem_usage or a "
                                                 "smaller --batch_size"));
        n = count;
    }
    void release() noexcept {
        if (p) cudaFree(p);
        p = nullptr;
        n = 0;
    }
};

// The GEMM's device-side alpha and beta (CUBLASLT_POINTER_MODE_DEVICE): the caller's alpha times both
// dequantization scales (sc[2] = 1/sA, sc[3] = 1/sB), and beta.
__global__ void alpha_beta_kernel(float* sc, float alpha, float beta) {
    sc[4] = alpha * sc[2] * sc[3];
    sc[5] = beta;
}

struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    // the heuristic's candidates, best first; `use` is the first one cublasLtMatmul accepted (on an H200 with
    // cuBLAS 13 the top candidate for small fp32-output problems was refused with NOT_SUPPORTED)
    std::vector<cublasLtMatmulAlgo_t> algos;
    size_t use = 0;
};

}  // namespace

struct Fp8Gemm::Impl {
    cublasLtHandle_t lt = nullptr;
    DevPtr<unsigned char> ws;
    DevPtr<uint8_t> qa, qb;  // Aq [M, K], Bq [N, K]
    DevPtr<float> sc;        // {amax A, amax B, 1/sA, 1/sB, alpha/(sA·sB), beta}
    Fp8Format fa = Fp8Format::E4M3, fb = Fp8Format::E4M3;
    bool fast_accum = false, skip_quant = false;
    int sms = 132;
    std::map<std::array<int64_t, 9>, Plan> plans;

    ~Impl() {
        for (auto& kv : plans) {
            Plan& p = kv.second;
            if (p.c) cublasLtMatrixLayoutDestroy(p.c);
            if (p.b) cublasLtMatrixLayoutDestroy(p.b);
            if (p.a) cublasLtMatrixLayoutDestroy(p.a);
            if (p.op) cublasLtMatmulDescDestroy(p.op);
        }
        ws.release();
        qa.release();
        qb.release();
        sc.release();
        if (lt) cublasLtDestroy(lt);
    }

    Plan& plan(int64_t M, int64_t N, int64_t K, int64_t ldc, cudaDataType ct, uint32_t align_c);
    void run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
             const bf16* B, int64_t ldb, float beta, void* C, int64_t ldc, cudaDataType ct, int out_bytes,
             cudaStream_t stream);
};

// Descriptors for the column-major problem D[N × M] = (Bq: K × N)ᵀ · (Aq: K × M), cached.
Plan& Fp8Gemm::Impl::plan(int64_t M, int64_t N, int64_t K, int64_t ldc, cudaDataType ct, uint32_t align_c) {
    const std::array<int64_t, 9> key{M, N, K, ldc, int64_t(ct), int64_t(fa), int64_t(fb), fast_accum ? 1 : 0,
                                     int64_t(align_c)};
    auto it = plans.find(key);
    if (it != plans.end()) return it->second;
    Plan p;
    try {
        AR_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t opT = CUBLAS_OP_T, opN = CUBLAS_OP_N;
        AR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opT, sizeof(opT)));
        AR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opN, sizeof(opN)));
        // The dequantization scales 1/sA · 1/sB are folded into alpha, read from device memory (sc[4], sc[5] =
        // beta): with cuBLAS 13.1 on an H200 every FP8 kernel refused A/B_SCALE_POINTER (NOT_SUPPORTED, also with
        // the library's own algorithm choice), while the same problem without them ran.
        const cublasLtPointerMode_t pm = CUBLASLT_POINTER_MODE_DEVICE;
        AR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_POINTER_MODE, &pm, sizeof(pm)));
        const int8_t fast = fast_accum ? 1 : 0;
        AR_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof(fast)));
        // layouts are column-major (the default order): rows, cols, ld
        AR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, fp8_dtype(fb), uint64_t(K), uint64_t(N), K));  // Bq
        AR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, fp8_dtype(fa), uint64_t(K), uint64_t(M), K));  // Aq
        AR_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.c, ct, uint64_t(N), uint64_t(M), ldc));           // Cᵀ
        cublasLtMatmulPreference_t pref = nullptr;
        AR_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        const uint64_t wsb = kWorkspaceBytes;
        cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                                 &wsb, sizeof(wsb));
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align_c,
                                                      sizeof(align_c));
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align_c,
                                                      sizeof(align_c));
        constexpr int kCandidates = 16;
        cublasLtMatmulHeuristicResult_t res[kCandidates] = {};
        int nres = 0;
        if (st == CUBLAS_STATUS_SUCCESS)
            st = cublasLtMatmulAlgoGetHeuristic(lt, p.op, p.a, p.b, p.c, p.c, pref, kCandidates, res, &nres);
        cublasLtMatmulPreferenceDestroy(pref);
        if (st != CUBLAS_STATUS_SUCCESS || nres < 1)
            fail("FP8 GEMM: cuBLASLt has no kernel for C[", M, ", ", N, "] (", ct == CUDA_R_32F ? "fp32" : "bf16",
                 ", ldc ", ldc, ", ", align_c, "-byte aligned) = A[", M, ", ", K, "] (", fp8_name(fa), ") · B[", K,
                 ", ", N, "] (", fp8_name(fb), ") on this device (", cublasGetStatusName(st), ", ", nres,
                 " algorithms); use the bf16 GEMM");
        for (int i = 0; i < nres; ++i)
            if (res[i].state == CUBLAS_STATUS_SUCCESS) p.algos.push_back(res[i].algo);
        check(!p.algos.empty(), "FP8 GEMM: cuBLASLt returned no usable kernel for C[", M, ", ", N, "]; use the bf16 GEMM");
    } catch (...) {
        if (p.c) cublasLtMatrixLayoutDestroy(p.c);
        if (p.b) cublasLtMatrixLayoutDestroy(p.b);
        if (p.a) cublasLtMatrixLayoutDestroy(p.a);
        if (p.op) cublasLtMatmulDescDestroy(p.op);
        throw;
    }
    return plans.emplace(key, p).first->second;
}

void Fp8Gemm::Impl::run(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A, int64_t lda,
                        const bf16* B, int64_t ldb, float beta, void* C, int64_t ldc, cudaDataType ct, int out_bytes,
                        cudaStream_t stream) {
    const char* tn = ct == CUDA_R_32F ? "fp32" : "bf16";
    check(shapes_supported(ta, tb, M, N, K, lda, ldb, ldc, out_bytes), "FP8 GEMM: unsupported shape C[", M, ", ", N,
          "] (", tn, ", ldc ", ldc, ") = op(A)[", M, ", ", K, "] (ta ", ta, ", lda ", lda, ") · op(B)[", K, ", ", N,
          "] (tb ", tb, ", ldb ", ldb,
          "): M, N, K must be positive multiples of 16, lda/ldb/ldc at least the stored row lengths and ldc·",
          out_bytes, " bytes a multiple of 16; use the bf16 GEMM");
    check(A && B && C, "FP8 GEMM: null operand pointer");
    check(aligned16(C), "FP8 GEMM: C (", C, ") must be 16-byte aligned for the FP8 kernels; use the bf16 GEMM");
    check(!(fa == Fp8Format::E5M2 && fb == Fp8Format::E5M2),
          "FP8 GEMM: e5m2 · e5m2 has no cuBLASLt kernel; make one operand e4m3");
    check((std::max(M, N) + kTile - 1) / kTile <= 65535, "FP8 GEMM: dimension too large for the transpose grid (M ",
          M, ", N ", N, ")");
    const size_t need_a = size_t(M) * size_t(K), need_b = size_t(N) * size_t(K);
    if (need_a > qa.n || need_b > qb.n) {
        cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
        AR_CUDA_CHECK(cudaStreamIsCapturing(stream, &cs));
        check(cs == cudaStreamCaptureStatusNone, "FP8 GEMM: scratch for A[", M, ", ", K, "] / B[", K, ", ", N,
              "] must grow inside a CUDA graph capture; call Fp8Gemm::reserve(", need_a, ", ", need_b,
              ") before capturing");
        // the old scratch may still be read by queued work of earlier calls: cudaFree waits for the device
        qa.grow(need_a, "FP8 copy of A");
        qb.grow(need_b, "FP8 copy of B");
    }
    if (!skip_quant) {
        AR_CUDA_CHECK(cudaMemsetAsync(sc.p, 0, 2 * sizeof(float), stream));
        // stored operands: A is [M, K] (or [K, M] when ta), B is [K, N] (or [N, K] when tb)
        const OperandView va = ta ? view_of(A, K, M, lda) : view_of(A, M, K, lda);
        const OperandView vb = tb ? view_of(B, N, K, ldb) : view_of(B, K, N, ldb);
        const int64_t rows = std::max(va.rows, vb.rows);
        const unsigned amax_blocks = unsigned(std::min<int64_t>((rows + 7) / 8, int64_t(sms) * 8));
        amax2_kernel<<<dim3(amax_blocks, 2), kThreads, 0, stream>>>(va, vb, sc.p);
        auto quant = [&](const OperandView& v, bool k_contiguous, Fp8Format f, const float* amax, float* inv,
                         uint8_t* dst) {
            if (k_contiguous) {  // v: [X, K] → dst [X, K]
                const unsigned blocks = unsigned(std::min<int64_t>((v.rows + 7) / 8, int64_t(sms) * 16));
                quant_rows_kernel<<<blocks, kThreads, 0, stream>>>(v, amax, fp8_max(f), fp8_interp(f), inv, dst);
            } else {  // v: [K, X] → dst [X, K]
                const dim3 grid(unsigned((v.rows + kTile - 1) / kTile), unsigned((v.cols + kTile - 1) / kTile));
                quant_transpose_kernel<<<grid, kThreads, 0, stream>>>(v, amax, fp8_max(f), fp8_interp(f), inv, dst);
            }
        };
        quant(va, !ta, fa, sc.p + 0, sc.p + 2, qa.p);  // amax of A at sc[0], 1/sA to sc[2]: Aq [M, K]
        quant(vb, tb, fb, sc.p + 1, sc.p + 3, qb.p);   // amax of B at sc[1], 1/sB to sc[3]: Bq [N, K]
        AR_CUDA_CHECK(cudaGetLastError());
    }
    alpha_beta_kernel<<<1, 1, 0, stream>>>(sc.p, alpha, beta);  // sc[4] = alpha · 1/sA · 1/sB, sc[5] = beta
    AR_CUDA_CHECK(cudaGetLastError());
    uint32_t align_c = 256;
    while (align_c > 16 && (reinterpret_cast<uintptr_t>(C) % align_c) != 0) align_c >>= 1;
    Plan& p = plan(M, N, K, ldc, ct, align_c);
    for (;;) {
        const cublasStatus_t st = cublasLtMatmul(lt, p.op, sc.p + 4, qb.p, p.a, qa.p, p.b, sc.p + 5, C, p.c, C, p.c,
                                                 &p.algos[p.use], ws.p, kWorkspaceBytes, stream);
        if (st == CUBLAS_STATUS_SUCCESS) break;
        // a refused candidate launches nothing: try the next one (remembered for the later calls of this shape)
        if (st != CUBLAS_STATUS_NOT_SUPPORTED || p.use + 1 >= p.algos.size()) AR_CUBLAS_CHECK(st);
        ++p.use;
    }
}

Fp8Gemm::Fp8Gemm() : p_(std::make_unique<Impl>()) {
    Impl& s = *p_;
    AR_CUBLAS_CHECK(cublasLtCreate(&s.lt));
    int dev = 0;
    AR_CUDA_CHECK(cudaGetDevice(&dev));
    AR_CUDA_CHECK(cudaDeviceGetAttribute(&s.sms, cudaDevAttrMultiProcessorCount, dev));
    s.ws.grow(kWorkspaceBytes, "cuBLASLt workspace");
    s.sc.grow(6, "scales");
    AR_CUDA_CHECK(cudaMemset(s.sc.p, 0, 6 * sizeof(float)));
}

Fp8Gemm::~Fp8Gemm() = default;

bool Fp8Gemm::supported(int device) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || device < 0 || device >= n) {
        cudaGetLastError();  // clear the (non-sticky) error
        return false;
    }
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return major * 10 + minor >= 89;
}

bool Fp8Gemm::shapes_supported(bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                               int64_t ldc, int out_bytes) {
    if (M <= 0 || N <= 0 || K <= 0 || M % 16 || N % 16 || K % 16) return false;
    if (out_bytes != 2 && out_bytes != 4) return false;
    if (lda < (ta ? M : K) || ldb < (tb ? K : N) || ldc < N) return false;
    return (ldc * out_bytes) % 16 == 0;
}

void Fp8Gemm::reserve(int64_t max_elems_A, int64_t max_elems_B) {
    check(max_elems_A >= 0 && max_elems_B >= 0, "Fp8Gemm::reserve: negative size");
    p_->qa.grow(size_t(max_elems_A), "FP8 copy of A");
    p_->qb.grow(size_t(max_elems_B), "FP8 copy of B");
}

void Fp8Gemm::set_formats(Fp8Format a, Fp8Format b) {
    p_->fa = a;
    p_->fb = b;
}
void Fp8Gemm::set_fast_accum(bool on) { p_->fast_accum = on; }
void Fp8Gemm::set_skip_quantize_for_benchmark(bool on) { p_->skip_quant = on; }
const float* Fp8Gemm::device_scales() const { return p_->sc.p; }

void Fp8Gemm::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const __nv_bfloat16* A,
                   int64_t lda, const __nv_bfloat16* B, int64_t ldb, float beta, float* C, int64_t ldc,
                   cudaStream_t stream) {
    p_->run(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_32F, 4, stream);
}

void Fp8Gemm::gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const __nv_bfloat16* A,
                   int64_t lda, const __nv_bfloat16* B, int64_t ldb, float beta, __nv_bfloat16* C, int64_t ldc,
                   cudaStream_t stream) {
    p_->run(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, CUDA_R_16BF, 2, stream);
}

}  // namespace autoround
