// ops/cuda/block_engine.cu — see block_engine.h. Kernels for the element-wise and row-wise parts of a
// Qwen3 block (RMSNorm, RoPE, SwiGLU, causal softmax, masked MSE) and the cuBLAS GEMM plumbing; the math of
// every kernel is the float32 formula of its CPU counterpart in ops/cpu/*_grad.h. Kernels that feed or read
// GEMM operands are templated on the element type (float, or bf16 in GpuPrecision::Bf16); they always compute
// in float32.
#include "ops/cuda/block_engine.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "ops/cpu/rope_grad.h"
#include "ops/cuda/flash_attention.h"
#include "ops/cuda/fp8_gemm.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device_buffer.h"
#include "ops/cuda/fake_quant_device.h"

namespace autoround {
namespace {

constexpr int kThreads = 256;
using bf16 = __nv_bfloat16;

// ---- device buffers -----------------------------------------------------------------------------------------

// Out of GPU memory while tuning: what to change (ops/cuda/device_buffer.h). Buffers grow only (ensure), so a
// block of the same shape reuses them.
struct TuningOom {
    static constexpr const char* advice = "use a smaller --batch_size, --seqlen or --nsamples, or --low_gpu_mem_usage";
};
template <typename T>
using DevBuf = DeviceBuffer<T, TuningOom>;

// A page-locked host array (cudaMallocHost), for the small per-iteration copies.
template <typename T>
struct PinnedHost {
    T* p = nullptr;
    size_t n = 0;
    PinnedHost() = default;
    PinnedHost(const PinnedHost&) = delete;
    PinnedHost& operator=(const PinnedHost&) = delete;
    ~PinnedHost() {
        if (p) cudaFreeHost(p);
    }
    void alloc(size_t count) {
        if (count <= n) return;
        if (p) cudaFreeHost(p);
        p = nullptr;
        AR_CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&p), count * sizeof(T)));
        n = count;
    }
};

// ---- GEMM (row-major through column-major cuBLAS: C^T = op(B)^T · op(A)^T) --------------------------------------

void gemm_rm(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
             int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    AR_CUBLAS_CHECK(cublasSgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M),
                                int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc)));
}

void gemm_rm_batched(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                     int64_t lda, int64_t sA, const float* B, int64_t ldb, int64_t sB, float beta, float* C,
                     int64_t ldc, int64_t sC, int64_t batch) {
    AR_CUBLAS_CHECK(cublasSgemmStridedBatched(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
                                              int(M), int(K), &alpha, B, int(ldb), sB, A, int(lda), sA, &beta, C,
                                              int(ldc), sC, int(batch)));
}

template <typename T>
constexpr cudaDataType dtype_of();
template <>
constexpr cudaDataType dtype_of<float>() {
    return CUDA_R_32F;
}
template <>
constexpr cudaDataType dtype_of<bf16>() {
    return CUDA_R_16BF;
}

// bf16 A, B on tensor cores, FP32 accumulation and scaling; C is float or bf16 (rounded once at the end).
template <typename TC>
void gemm_bf(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
             int64_t lda, const bf16* B, int64_t ldb, float beta, TC* C, int64_t ldc) {
    AR_CUBLAS_CHECK(cublasGemmEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N), int(M),
                                 int(K), &alpha, B, CUDA_R_16BF, int(ldb), A, CUDA_R_16BF, int(lda), &beta, C,
                                 dtype_of<TC>(), int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template <typename TC>
void gemm_bf_batched(cublasHandle_t h, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const bf16* A,
                     int64_t lda, int64_t sA, const bf16* B, int64_t ldb, int64_t sB, float beta, TC* C, int64_t ldc,
                     int64_t sC, int64_t batch) {
    AR_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                               int(N), int(M), int(K), &alpha, B, CUDA_R_16BF, int(ldb), sB, A,
                                               CUDA_R_16BF, int(lda), sA, &beta, C, dtype_of<TC>(), int(ldc), sC,
                                               int(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ---- kernels ----------------------------------------------------------------------------------------------------

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16(v); }

// true when p is 16-byte aligned and n is a multiple of 4 (a row of n floats at p can be read as float4)
__device__ __forceinline__ bool vec4_ok(const void* p, int64_t n) {
    return (n & 3) == 0 && (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}
// the same for a row of bf16 read 4 at a time (8-byte loads)
__device__ __forceinline__ bool vec4_ok(const bf16* p, int64_t n) {
    return (n & 3) == 0 && (reinterpret_cast<uintptr_t>(p) & 7) == 0;
}

// p[4i..4i+4) as float (bf16 widened, exactly); p as vec4_ok allows
__device__ __forceinline__ float4 ld4(const float* p, int64_t i) { return reinterpret_cast<const float4*>(p)[i]; }
__device__ __forceinline__ float4 ld4(const bf16* p, int64_t i) {
    const uint2 u = reinterpret_cast<const uint2*>(p)[i];
    const __nv_bfloat162 lo = *reinterpret_cast<const __nv_bfloat162*>(&u.x),
                         hi = *reinterpret_cast<const __nv_bfloat162*>(&u.y);
    return make_float4(__low2float(lo), __high2float(lo), __low2float(hi), __high2float(hi));
}

// Row `row` of an operand of rows of `dim` values: in order, or (idx not null) picked from the cached samples —
// row r is position r % L of sample idx[r / L] (a sub-batch read in place, without a gathered copy).
template <typename T>
__device__ __forceinline__ const T* src_row(const T* x, const int64_t* idx, int64_t L, int64_t row, int64_t dim) {
    return x + (idx ? idx[row / L] * L + row % L : row) * dim;
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ float block_sum(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = 0.f;
    const int nw = (blockDim.x + 31) / 32;
    for (int i = 0; i < nw; ++i) t += sh[i];
    return t;
}

__device__ float block_max(float v, float* sh) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    float t = -INFINITY;
    const int nw = (blockDim.x + 31) / 32;
    for (int i = 0; i < nw; ++i) t = fmaxf(t, sh[i]);
    return t;
}

// The output half of an RMSNorm row once the block has the row's sum of squares s: r = (s / dim + eps)^(-1/2),
// rstd[row] = r (optional), y = w ∘ (x · r); v4: 16-byte loads of x and w.
template <typename TO, typename TX>
__device__ __forceinline__ void rmsnorm_row_out(const TX* xr, const float* w, int64_t row, int64_t dim, float s,
                                                float eps, bool v4, TO* y, float* rstd) {
    const float r = rsqrtf(s / float(dim) + eps);
    if (rstd && threadIdx.x == 0) rstd[row] = r;
    if (v4) {
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 a = ld4(xr, i), g = reinterpret_cast<const float4*>(w)[i];
            const int64_t o = row * dim + 4 * i;
            st(y, o, g.x * (a.x * r));
            st(y, o + 1, g.y * (a.y * r));
            st(y, o + 2, g.z * (a.z * r));
            st(y, o + 3, g.w * (a.w * r));
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) st(y, row * dim + i, w[i] * (ld(xr, i) * r));
}

// y = w ∘ (x · r), r = (mean(x²) + eps)^(-1/2); one block per row. x: float, or bf16 (widened); idx (optional):
// the rows picked from the cached samples (src_row).
template <typename TO, typename TX = float>
__global__ void rmsnorm_fwd_kernel(const TX* x, const float* w, int64_t dim, float eps, TO* y, float* rstd,
                                   const int64_t* idx = nullptr, int64_t L = 1) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const TX* xr = src_row(x, idx, L, row, dim);
    const bool v4 = vec4_ok(x, dim) && vec4_ok(w, dim);  // 16-byte loads (same math, same order per element)
    float s = 0.f;
    if (v4) {
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 a = ld4(xr, i);
            s += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
        }
    } else {
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += ld(xr, i) * ld(xr, i);
    }
    s = block_sum(s, sh);
    rmsnorm_row_out(xr, w, row, dim, s, eps, v4, y, rstd);
}

// The residual add then the RMSNorm of its result in one pass over the row (Bf16 mode after the o projection):
// x += res, y = w ∘ (x · r). Per element and per thread the same float math, in the same order, as add_kernel
// followed by rmsnorm_fwd_kernel with the same block size, so the results are bit-identical to the two kernels.
// res: float, or bf16 (widened); idx (optional): its rows picked from the cached samples (src_row).
template <typename TO, typename TR = float>
__global__ void add_rmsnorm_fwd_kernel(float* x, const TR* res, const float* w, int64_t dim, float eps, TO* y,
                                       float* rstd, const int64_t* idx = nullptr, int64_t L = 1) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    float* xr = x + row * dim;
    const TR* rr = src_row(res, idx, L, row, dim);
    const bool v4 = vec4_ok(x, dim) && vec4_ok(res, dim) && vec4_ok(w, dim);
    float s = 0.f;
    if (v4) {
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            float4 a = reinterpret_cast<const float4*>(xr)[i];
            const float4 b = ld4(rr, i);
            a.x += b.x;
            a.y += b.y;
            a.z += b.z;
            a.w += b.w;
            reinterpret_cast<float4*>(xr)[i] = a;
            s += a.x * a.x + a.y * a.y + a.z * a.z + a.w * a.w;
        }
    } else {
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
            const float v = xr[i] + ld(rr, i);
            xr[i] = v;
            s += v * v;
        }
    }
    s = block_sum(s, sh);  // its barriers also order each thread's stores above before the reads below
    rmsnorm_row_out(xr, w, row, dim, s, eps, v4, y, rstd);
}

// The shared first half of an RMSNorm row's backward: this thread's part of Σ_k w_k·dy_k·x_k (v4: 16-byte loads).
__device__ __forceinline__ float rmsnorm_bwd_row_dot(const float* xr, const float* w, const float* dyr, int64_t dim,
                                                     bool v4) {
    float s = 0.f;
    if (v4) {
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 a = reinterpret_cast<const float4*>(xr)[i], g = reinterpret_cast<const float4*>(w)[i],
                         e = reinterpret_cast<const float4*>(dyr)[i];
            s += g.x * e.x * a.x + g.y * e.y * a.y + g.z * e.z * a.z + g.w * e.w * a.w;
        }
    } else {
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) s += w[i] * dyr[i] * xr[i];
    }
    return s;
}

// dx_i = r·w_i·dy_i − x_i·r³/dim · Σ_k w_k·dy_k·x_k (dx may alias dy when both are float).
template <typename TO>
__global__ void rmsnorm_bwd_kernel(const float* x, const float* w, const float* rstd, const float* dy, int64_t dim,
                                   TO* dx) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * dim;
    const float* dyr = dy + row * dim;
    const bool v4 = vec4_ok(x, dim) && vec4_ok(w, dim) && vec4_ok(dy, dim);
    const float s = block_sum(rmsnorm_bwd_row_dot(xr, w, dyr, dim, v4), sh);
    const float r = rstd[row];
    const float c = r * r * r / float(dim) * s;
    if (v4) {  // dx may alias dy: each thread reads its four values before writing them
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 a = reinterpret_cast<const float4*>(xr)[i], g = reinterpret_cast<const float4*>(w)[i],
                         e = reinterpret_cast<const float4*>(dyr)[i];
            const int64_t o = row * dim + 4 * i;
            st(dx, o, r * g.x * e.x - a.x * c);
            st(dx, o + 1, r * g.y * e.y - a.y * c);
            st(dx, o + 2, r * g.z * e.z - a.z * c);
            st(dx, o + 3, r * g.w * e.w - a.w * c);
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) st(dx, row * dim + i, r * w[i] * dyr[i] - xr[i] * c);
}

// The post-attention RMSNorm's backward plus the residual's gradient, straight to bf16 (Bf16 mode):
// out = bf16(rmsnorm_bwd(dy) + res). The same float math per element as rmsnorm_bwd_kernel<float> followed by
// add_kernel, without the FP32 round trip of the sum (nothing reads it).
__global__ void rmsnorm_bwd_add_kernel(const float* x, const float* w, const float* rstd, const float* dy,
                                       const float* res, int64_t dim, bf16* out) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x;
    const float* xr = x + row * dim;
    const float* dyr = dy + row * dim;
    const float* rr = res + row * dim;
    const bool v4 = vec4_ok(x, dim) && vec4_ok(w, dim) && vec4_ok(dy, dim) && vec4_ok(res, dim) &&
                    (reinterpret_cast<uintptr_t>(out) & 7) == 0;
    const float s = block_sum(rmsnorm_bwd_row_dot(xr, w, dyr, dim, v4), sh);
    const float r = rstd[row];
    const float c = r * r * r / float(dim) * s;
    if (v4) {
        for (int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
            const float4 a = reinterpret_cast<const float4*>(xr)[i], g = reinterpret_cast<const float4*>(w)[i],
                         e = reinterpret_cast<const float4*>(dyr)[i], b = reinterpret_cast<const float4*>(rr)[i];
            float vx = r * g.x * e.x - a.x * c, vy = r * g.y * e.y - a.y * c, vz = r * g.z * e.z - a.z * c,
                  vw = r * g.w * e.w - a.w * c;
            vx += b.x;
            vy += b.y;
            vz += b.z;
            vw += b.w;
            const __nv_bfloat162 lo = __floats2bfloat162_rn(vx, vy), hi = __floats2bfloat162_rn(vz, vw);
            reinterpret_cast<uint2*>(out + row * dim)[i] =
                make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
        }
        return;
    }
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = r * w[i] * dyr[i] - xr[i] * c;
        v += rr[i];
        out[row * dim + i] = __float2bfloat16(v);
    }
}

// rotate-half RoPE of x [N, nh, D] into out (out may be x: in place), position of row n = n % L;
// backward = rotation by −θ (sign = −1).
template <typename TO>
__global__ void rope_kernel(const float* x, int64_t N, int64_t L, int64_t nh, int64_t D, const float* cos_t,
                            const float* sin_t, float sign, TO* out) {
    const int64_t half = D / 2, total = N * nh * half;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i = e % half, nhh = e / half, n = nhh / nh;
        const int64_t pos = n % L;
        const float c = cos_t[pos * half + i], s = sign * sin_t[pos * half + i];
        const float* v = x + nhh * D;
        const float x1 = v[i], x2 = v[i + half];
        st(out, nhh * D + i, x1 * c - x2 * s);
        st(out, nhh * D + i + half, x2 * c + x1 * s);
    }
}

__device__ float sigmoidf_(float g) { return 1.f / (1.f + expf(-g)); }

template <typename TI, typename TO>
__global__ void swiglu_fwd_kernel(const TI* g, const TI* u, int64_t n, TO* act) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const float gi = ld(g, i);
        const float s = sigmoidf_(gi);
        st(act, i, gi * s * ld(u, i));
    }
}

// act = silu(g)·u: du = da·silu(g), dg = da·u·σ(g)·(1 + g·(1 − σ(g))). dg may alias da (same type).
template <typename TI, typename TD, typename TO>
__global__ void swiglu_bwd_kernel(const TI* g, const TI* u, const TD* da, int64_t n, TO* dg, TO* du) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
        const float gi = ld(g, i), ui = ld(u, i), d = ld(da, i);
        const float s = sigmoidf_(gi);
        st(du, i, d * gi * s);
        st(dg, i, d * ui * s * (1.f + gi * (1.f - s)));
    }
}

// ---- Bf16 mode: fused / 8-wide kernels (per element the same float math as the generic kernels above) -------

// QK-norm then RoPE of rows [rows = N·nh, D] (row = token·nh + head, token position = (row / nh) % L), one warp per
// row: out = rope(w ∘ (x · r)) in bf16, rstd[row] = r. Replaces rmsnorm_fwd_kernel<float> + rope_kernel<bf16>
// (no FP32 round trip of the normed rows).
__global__ void qk_norm_rope_fwd_kernel(const float* __restrict__ x, const float* __restrict__ w, int64_t rows,
                                        int64_t L, int64_t nh, int64_t D, float eps, const float* __restrict__ cos_t,
                                        const float* __restrict__ sin_t, bf16* __restrict__ out,
                                        float* __restrict__ rstd) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;  // warp-uniform
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const int64_t half = D / 2, pos = (row / nh) % L;
    const float* xr = x + row * D;
    const float* c = cos_t + pos * half;
    const float* sn = sin_t + pos * half;
    bf16* o = out + row * D;
    // D 128 (Qwen3): lane l holds the pairs (2l, 2l + 64), (2l + 1, 2l + 65), every load in flight at once (H200, 4B
    // step: 297 → 181 µs forward, 425 → 244 µs backward against the strided loops below, which stay for other D)
    if (D == 128) {
        const int i = 2 * lane;
        const float2 a = *reinterpret_cast<const float2*>(xr + i), b = *reinterpret_cast<const float2*>(xr + i + 64);
        const float2 cv = *reinterpret_cast<const float2*>(c + i), sv = *reinterpret_cast<const float2*>(sn + i);
        const float2 wa = *reinterpret_cast<const float2*>(w + i), wb = *reinterpret_cast<const float2*>(w + i + 64);
        // (the sum of squares in another order than the loop below: rounding only)
        const float r = rsqrtf(warp_sum(a.x * a.x + a.y * a.y + b.x * b.x + b.y * b.y) / 128.f + eps);
        if (lane == 0) rstd[row] = r;
        const float y1x = wa.x * (a.x * r), y2x = wb.x * (b.x * r), y1y = wa.y * (a.y * r), y2y = wb.y * (b.y * r);
        *reinterpret_cast<__nv_bfloat162*>(o + i) =
            __halves2bfloat162(__float2bfloat16(y1x * cv.x - y2x * sv.x), __float2bfloat16(y1y * cv.y - y2y * sv.y));
        *reinterpret_cast<__nv_bfloat162*>(o + i + 64) =
            __halves2bfloat162(__float2bfloat16(y2x * cv.x + y1x * sv.x), __float2bfloat16(y2y * cv.y + y1y * sv.y));
        return;
    }
    float s = 0.f;
    for (int64_t i = lane; i < D; i += 32) s += xr[i] * xr[i];
    const float r = rsqrtf(warp_sum(s) / float(D) + eps);
    if (lane == 0) rstd[row] = r;
    for (int64_t i = lane; i < half; i += 32) {
        const float y1 = w[i] * (xr[i] * r), y2 = w[i + half] * (xr[i + half] * r);
        o[i] = __float2bfloat16(y1 * c[i] - y2 * sn[i]);
        o[i + half] = __float2bfloat16(y2 * c[i] + y1 * sn[i]);
    }
}

// Backward of qk_norm_rope_fwd_kernel: g [rows, D] is the FP32 gradient of the roped rows; dy = rope by −θ of g,
// then dx = r·w·dy − x·r³/D·Σ w·dy·x into bf16 (replaces rope_kernel<float>(−1) + rmsnorm_bwd_kernel<bf16>).
__global__ void qk_norm_rope_bwd_kernel(const float* __restrict__ g, const float* __restrict__ x,
                                        const float* __restrict__ w, const float* __restrict__ rstd, int64_t rows,
                                        int64_t L, int64_t nh, int64_t D, const float* __restrict__ cos_t,
                                        const float* __restrict__ sin_t, bf16* __restrict__ dx) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x & 31;
    if (row >= rows) return;
    const int64_t half = D / 2, pos = (row / nh) % L;
    const float *gr = g + row * D, *xr = x + row * D, *c = cos_t + pos * half, *sn = sin_t + pos * half;
    if (D == 128) {  // as the forward: lane l owns (2l, 2l + 64), (2l + 1, 2l + 65), every load issued at once
        const int i = 2 * lane;
        const float2 g1 = *reinterpret_cast<const float2*>(gr + i), g2 = *reinterpret_cast<const float2*>(gr + i + 64);
        const float2 x1 = *reinterpret_cast<const float2*>(xr + i), x2 = *reinterpret_cast<const float2*>(xr + i + 64);
        const float2 cv = *reinterpret_cast<const float2*>(c + i), sv = *reinterpret_cast<const float2*>(sn + i);
        const float2 w1 = *reinterpret_cast<const float2*>(w + i), w2 = *reinterpret_cast<const float2*>(w + i + 64);
        const float d1x = g1.x * cv.x + g2.x * sv.x, d2x = g2.x * cv.x - g1.x * sv.x;
        const float d1y = g1.y * cv.y + g2.y * sv.y, d2y = g2.y * cv.y - g1.y * sv.y;
        const float s = warp_sum(w1.x * d1x * x1.x + w2.x * d2x * x2.x + w1.y * d1y * x1.y + w2.y * d2y * x2.y);
        const float r = rstd[row];
        const float cc = r * r * r / 128.f * s;
        bf16* o = dx + row * D;
        *reinterpret_cast<__nv_bfloat162*>(o + i) = __halves2bfloat162(__float2bfloat16(r * w1.x * d1x - x1.x * cc),
                                                                       __float2bfloat16(r * w1.y * d1y - x1.y * cc));
        *reinterpret_cast<__nv_bfloat162*>(o + i + 64) = __halves2bfloat162(
            __float2bfloat16(r * w2.x * d2x - x2.x * cc), __float2bfloat16(r * w2.y * d2y - x2.y * cc));
        return;
    }
    float s = 0.f;
    for (int64_t i = lane; i < half; i += 32) {
        const float g1 = gr[i], g2 = gr[i + half];
        const float dy1 = g1 * c[i] + g2 * sn[i], dy2 = g2 * c[i] - g1 * sn[i];
        s += w[i] * dy1 * xr[i] + w[i + half] * dy2 * xr[i + half];
    }
    s = warp_sum(s);
    const float r = rstd[row];
    const float cc = r * r * r / float(D) * s;
    bf16* o = dx + row * D;
    for (int64_t i = lane; i < half; i += 32) {
        const float g1 = gr[i], g2 = gr[i + half];
        const float dy1 = g1 * c[i] + g2 * sn[i], dy2 = g2 * c[i] - g1 * sn[i];
        o[i] = __float2bfloat16(r * w[i] * dy1 - xr[i] * cc);
        o[i + half] = __float2bfloat16(r * w[i + half] * dy2 - xr[i + half] * cc);
    }
}

// SwiGLU on bf16, eight elements per 16-byte access (n8 = n / 8; the caller checks n % 8 and the alignment).
__global__ void swiglu_fwd_bf16x8_kernel(const uint4* __restrict__ g, const uint4* __restrict__ u, int64_t n8,
                                         uint4* __restrict__ act) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8; i += int64_t(gridDim.x) * blockDim.x) {
        const uint4 gv = g[i], uv = u[i];
        const bf16* gp = reinterpret_cast<const bf16*>(&gv);
        const bf16* up = reinterpret_cast<const bf16*>(&uv);
        uint4 ov;
        bf16* op = reinterpret_cast<bf16*>(&ov);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const float gi = __bfloat162float(gp[j]);
            op[j] = __float2bfloat16(gi * sigmoidf_(gi) * __bfloat162float(up[j]));
        }
        act[i] = ov;
    }
}

// dg may alias da (each thread reads its eight values before writing them).
__global__ void swiglu_bwd_bf16x8_kernel(const uint4* __restrict__ g, const uint4* __restrict__ u, const uint4* da,
                                         int64_t n8, uint4* dg, uint4* __restrict__ du) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n8; i += int64_t(gridDim.x) * blockDim.x) {
        const uint4 gv = g[i], uv = u[i], dv = da[i];
        const bf16* gp = reinterpret_cast<const bf16*>(&gv);
        const bf16* up = reinterpret_cast<const bf16*>(&uv);
        const bf16* dp = reinterpret_cast<const bf16*>(&dv);
        uint4 og, ou;
        bf16* pg = reinterpret_cast<bf16*>(&og);
        bf16* pu = reinterpret_cast<bf16*>(&ou);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            const float gi = __bfloat162float(gp[j]), ui = __bfloat162float(up[j]), d = __bfloat162float(dp[j]);
            const float s = sigmoidf_(gi);
            pu[j] = __float2bfloat16(d * gi * s);
            pg[j] = __float2bfloat16(d * ui * s * (1.f + gi * (1.f - s)));
        }
        du[i] = ou;
        dg[i] = og;
    }
}

// y += x; also yb = bf16(y) when yb is not null. Four elements per step where y, x (and yb) allow 16-byte
// (8-byte) accesses.
__global__ void add_kernel(float* y, const float* x, int64_t n, bf16* yb) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    int64_t start = 0;
    if (vec4_ok(y, n) && vec4_ok(x, n) && (!yb || (reinterpret_cast<uintptr_t>(yb) & 7) == 0)) {
        for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n / 4; i += stride) {
            float4 a = reinterpret_cast<float4*>(y)[i];
            const float4 b = reinterpret_cast<const float4*>(x)[i];
            a.x += b.x;
            a.y += b.y;
            a.z += b.z;
            a.w += b.w;
            reinterpret_cast<float4*>(y)[i] = a;
            if (yb) {
                const __nv_bfloat162 lo = __floats2bfloat162_rn(a.x, a.y), hi = __floats2bfloat162_rn(a.z, a.w);
                reinterpret_cast<uint2*>(yb)[i] =
                    make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
            }
        }
        start = n;  // n is a multiple of 4 here
    }
    for (int64_t i = start + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += stride) {
        const float v = y[i] + x[i];
        y[i] = v;
        if (yb) yb[i] = __float2bfloat16(v);
    }
}

__global__ void f2bf_kernel(const float* x, bf16* y, int64_t n) {
    const int64_t stride = int64_t(gridDim.x) * blockDim.x;
    int64_t start = 0;
    if (vec4_ok(x, n) && (reinterpret_cast<uintptr_t>(y) & 7) == 0) {
        for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n / 4; i += stride) {
            const float4 a = reinterpret_cast<const float4*>(x)[i];
            const __nv_bfloat162 lo = __floats2bfloat162_rn(a.x, a.y), hi = __floats2bfloat162_rn(a.z, a.w);
            reinterpret_cast<uint2*>(y)[i] =
                make_uint2(*reinterpret_cast<const uint32_t*>(&lo), *reinterpret_cast<const uint32_t*>(&hi));
        }
        start = n;
    }
    for (int64_t i = start + blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += stride)
        y[i] = __float2bfloat16(x[i]);
}

__global__ void bf2f_kernel(const bf16* x, float* y, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        y[i] = __bfloat162float(x[i]);
}

// x <- bf16(x) as float (round to nearest even), in place
__global__ void round_bf16_kernel(float* x, int64_t n) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        x[i] = __bfloat162float(__float2bfloat16(x[i]));
}

// dst[j, :] = src[idx[j], :] for the b = gridDim.y samples of a sub-batch, rows of `row` values: float copied, or
// bf16 widened to float (src_bf16); 16-byte accesses where row and the pointers allow it. idx is read on the
// device, so a captured CUDA graph gathers whatever sample indices were uploaded before its replay.
__global__ void gather_rows_kernel(const void* __restrict__ src, bool src_bf16, const int64_t* __restrict__ idx,
                                   int64_t row, float* __restrict__ dst) {
    const int64_t j = blockIdx.y, stride = int64_t(gridDim.x) * blockDim.x;
    const int64_t first = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    float* d = dst + j * row;
    if (src_bf16) {
        const bf16* r = static_cast<const bf16*>(src) + idx[j] * row;
        if ((row & 7) == 0 && (reinterpret_cast<uintptr_t>(r) & 15) == 0 && (reinterpret_cast<uintptr_t>(d) & 15) == 0) {
            for (int64_t i = first; i < row / 8; i += stride) {
                const uint4 v = reinterpret_cast<const uint4*>(r)[i];
                const bf16* e = reinterpret_cast<const bf16*>(&v);
                reinterpret_cast<float4*>(d)[2 * i] =
                    make_float4(__bfloat162float(e[0]), __bfloat162float(e[1]), __bfloat162float(e[2]), __bfloat162float(e[3]));
                reinterpret_cast<float4*>(d)[2 * i + 1] =
                    make_float4(__bfloat162float(e[4]), __bfloat162float(e[5]), __bfloat162float(e[6]), __bfloat162float(e[7]));
            }
            return;
        }
        for (int64_t i = first; i < row; i += stride) d[i] = __bfloat162float(r[i]);
        return;
    }
    const float* r = static_cast<const float*>(src) + idx[j] * row;
    if (vec4_ok(r, row) && vec4_ok(d, row)) {
        for (int64_t i = first; i < row / 4; i += stride) reinterpret_cast<float4*>(d)[i] = reinterpret_cast<const float4*>(r)[i];
        return;
    }
    for (int64_t i = first; i < row; i += stride) d[i] = r[i];
}

// the per-sample loss mask rows of a sub-batch: dst[j, :] = src[idx[j], :] (rows of L bytes)
__global__ void gather_mask_kernel(const uint8_t* __restrict__ src, const int64_t* __restrict__ idx, int64_t L,
                                   uint8_t* __restrict__ dst) {
    const int64_t j = blockIdx.y;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < L; i += int64_t(gridDim.x) * blockDim.x)
        dst[j * L + i] = src[idx[j] * L + i];
}

// Causal softmax over rows of the scores S [B·nq, L, L] into P (P may be S: in place): row r has query
// position i = r % L; j > i → 0.
template <typename TO>
__global__ void softmax_causal_kernel(const float* S, int64_t L, TO* P) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x, i = row % L;
    const float* s_row = S + row * L;
    float m = -INFINITY;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, s_row[j]);
    m = block_max(m, sh);
    float s = 0.f;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) s += expf(s_row[j] - m);
    s = block_sum(s, sh);
    const float inv = 1.f / s;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x)
        st(P, row * L + j, j <= i ? expf(s_row[j] - m) * inv : 0.f);
}

// dS = P ∘ (dP − Σ_j P·dP) per row (causal: P = 0 for j > i), into dS (dS may be dP: in place).
template <typename TP, typename TO>
__global__ void softmax_bwd_kernel(const TP* P, const float* dP, int64_t L, TO* dS) {
    __shared__ float sh[32];
    const int64_t row = blockIdx.x, i = row % L;
    const TP* p = P + row * L;
    const float* d = dP + row * L;
    float s = 0.f;
    for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) s += ld(p, j) * d[j];
    s = block_sum(s, sh);
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) st(dS, row * L + j, j <= i ? ld(p, j) * (d[j] - s) : 0.f);
}

// Per row of [N, H]: partial[row] = Σ mask·(pred − ref)²; grad = scale·2·mask·(pred − ref)/denom (and its bf16
// copy in grad_b when not null).
// mask (optional, [rows]): 1 = in the loss; it replaces the last-token rule.
// pred_res (optional): the block's last residual, not yet added to pred (forward_bf16 with add_final_residual
// false); the prediction is then the float sum pred + pred_res, as add_kernel would have stored it.
// ref: float, or bf16 (widened); ref_idx (optional): its rows picked from the cached samples (src_row).
// Four elements per thread and access where every row and pointer allows it (the same math per element).
__device__ __forceinline__ float mse_elem(float y, float r, bool on, double denom, double scale, double& acc) {
    const double e = on ? double(y) - double(r) : 0.0;
    acc += e * e;
    return float(scale * 2.0 * e / denom);
}
template <typename TR = float>
__global__ void mse_kernel(const float* pred, const float* pred_res, const TR* ref, const uint8_t* mask, int64_t L,
                           int64_t H, bool mask_last, double denom, double scale, float* grad, bf16* grad_b,
                           double* partial, const int64_t* ref_idx = nullptr) {
    __shared__ double shd[32];
    const int64_t row = blockIdx.x;
    const bool on = mask ? mask[row] != 0 : !(mask_last && row % L == L - 1);
    const TR* rr = src_row(ref, ref_idx, L, row, H);
    const float* pr = pred + row * H;
    const float* qr = pred_res ? pred_res + row * H : nullptr;
    double acc = 0.0;
    if (vec4_ok(pred, H) && (!pred_res || vec4_ok(pred_res, H)) && vec4_ok(ref, H) && vec4_ok(grad, H) &&
        (!grad_b || (reinterpret_cast<uintptr_t>(grad_b) & 7) == 0)) {
        for (int64_t i = threadIdx.x; i < H / 4; i += blockDim.x) {
            float4 y = ld4(pr, i);
            if (qr) {
                const float4 q = ld4(qr, i);
                y.x += q.x;
                y.y += q.y;
                y.z += q.z;
                y.w += q.w;
            }
            const float4 r = ld4(rr, i);
            float4 g;
            g.x = mse_elem(y.x, r.x, on, denom, scale, acc);
            g.y = mse_elem(y.y, r.y, on, denom, scale, acc);
            g.z = mse_elem(y.z, r.z, on, denom, scale, acc);
            g.w = mse_elem(y.w, r.w, on, denom, scale, acc);
            const int64_t o = row * H + 4 * i;
            *reinterpret_cast<float4*>(grad + o) = g;
            if (grad_b) {
                uint2 u;
                *reinterpret_cast<__nv_bfloat162*>(&u.x) = __floats2bfloat162_rn(g.x, g.y);
                *reinterpret_cast<__nv_bfloat162*>(&u.y) = __floats2bfloat162_rn(g.z, g.w);
                *reinterpret_cast<uint2*>(grad_b + o) = u;
            }
        }
    } else {
        for (int64_t h = threadIdx.x; h < H; h += blockDim.x) {
            float y = pr[h];
            if (qr) y += qr[h];
            const float gv = mse_elem(y, ld(rr, h), on, denom, scale, acc);
            grad[row * H + h] = gv;
            if (grad_b) grad_b[row * H + h] = __float2bfloat16(gv);
        }
    }
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) shd[warp] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int i = 0; i < (int(blockDim.x) + 31) / 32; ++i) t += shd[i];
        partial[row] = t;
    }
}

int grid_for(int64_t n) { return int(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }

// The block input (or target) rows a kernel reads: [b·L, H] float or bf16 at p, in order, or (idx not null, on the
// device) the rows of the sub-batch's samples idx[0..b) of the cached [n, L, H] activations at p (src_row).
struct InRows {
    const void* p = nullptr;
    bool bf16 = false;
    const int64_t* idx = nullptr;
};
// f(p as const float* or const bf16*)
template <typename F>
void with_rows(const InRows& r, F&& f) {
    if (r.bf16) f(static_cast<const bf16*>(r.p));
    else f(static_cast<const float*>(r.p));
}

// Records what `work` enqueues on `stream` into an instantiated CUDA graph (nothing runs). The capture is
// thread-local: only this thread's stream-ordered calls are recorded, and a call that cannot be captured throws.
// A throw inside `work` ends the capture before it propagates, so the stream stays usable.
template <typename F>
cudaGraphExec_t capture_graph(cudaStream_t stream, F&& work) {
    AR_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
        work();
    } catch (...) {
        cudaGraph_t g = nullptr;
        (void)cudaStreamEndCapture(stream, &g);
        if (g) cudaGraphDestroy(g);
        (void)cudaGetLastError();
        throw;
    }
    cudaGraph_t g = nullptr;
    AR_CUDA_CHECK(cudaStreamEndCapture(stream, &g));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    AR_CUDA_CHECK(e);
    return exec;
}
// blocks of kThreads for one warp per row
unsigned warp_rows_grid(int64_t rows) { return unsigned((rows * 32 + kThreads - 1) / kThreads); }
bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

// act = silu(g)·u on bf16 [n]; eight per access when n and the pointers allow it
void swiglu_forward_bf16(const bf16* g, const bf16* u, int64_t n, bf16* act, cudaStream_t stream) {
    if (n % 8 == 0 && aligned16(g) && aligned16(u) && aligned16(act))
        swiglu_fwd_bf16x8_kernel<<<grid_for(n / 8), kThreads, 0, stream>>>(reinterpret_cast<const uint4*>(g),
                                                                reinterpret_cast<const uint4*>(u), n / 8,
                                                                reinterpret_cast<uint4*>(act));
    else
        swiglu_fwd_kernel<bf16, bf16><<<grid_for(n), kThreads, 0, stream>>>(g, u, n, act);
}

// dg, du of act = silu(g)·u from da (dg may alias da)
void swiglu_backward_bf16(const bf16* g, const bf16* u, const bf16* da, int64_t n, bf16* dg, bf16* du,
                          cudaStream_t stream) {
    if (n % 8 == 0 && aligned16(g) && aligned16(u) && aligned16(da) && aligned16(dg) && aligned16(du))
        swiglu_bwd_bf16x8_kernel<<<grid_for(n / 8), kThreads, 0, stream>>>(
            reinterpret_cast<const uint4*>(g), reinterpret_cast<const uint4*>(u), reinterpret_cast<const uint4*>(da),
            n / 8, reinterpret_cast<uint4*>(dg), reinterpret_cast<uint4*>(du));
    else
        swiglu_bwd_kernel<bf16, bf16, bf16><<<grid_for(n), kThreads, 0, stream>>>(g, u, da, n, dg, du);
}

constexpr size_t kBf16Workspace = size_t(32) << 20;  // cuBLAS workspace for the tensor-core GEMMs (Hopper: 32 MiB)

}  // namespace

struct CudaBlockEngine::Impl {
    Qwen3BlockDims d;
    std::unique_ptr<Fp8Gemm> fp8;      // Bf16 mode with fp8_backward: the backward GEMMs on FP8 tensor cores
    int64_t n = 0, L = 0, batch = 0;
    bool bf = false;                   // GpuPrecision::Bf16
    bool flash = false;                // Bf16 mode with flash attention (no score matrices)
    // Every kernel, GEMM and copy of the engine runs on this stream. It is a blocking stream, so work that other
    // code puts on the legacy default stream (CudaActivations copies, the tuner's downloads) stays ordered with it;
    // being a real stream, it can be captured into a CUDA graph (CudaBlockEngineOptions::cuda_graphs).
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;     // pedantic FP32 (Fp32 mode)
    cublasHandle_t blas16 = nullptr;   // default math, bf16 tensor cores (Bf16 mode)
    DevBuf<char> workspace;
    DevBuf<float> train, ref;
    std::array<DevBuf<float>, kNumBlockLinears> W, dW;  // W: Fp32 mode only
    std::array<DevBuf<bf16>, kNumBlockLinears> Wb;      // Bf16 mode only
    DevBuf<float> stage;                                 // Bf16 mode: upload staging of one weight
    DevBuf<float> in_norm, post_norm, q_norm, k_norm, cos_t, sin_t;
    // activations for `batch` samples (both modes)
    DevBuf<float> X, R, q_lin, k_lin, rstd_q, rstd_k, q, k, P, x2, rstd2, Y, dY, dH, dq, dk, dv;
    // Fp32 mode only
    DevBuf<float> h1, v, dP, att, h2, gate, up, act, dI, dA;
    // Bf16 mode only (P above holds the FP32 scores, then dP)
    DevBuf<bf16> h1b, qb, kb, vb, Pb, dSb, attb, h2b, gateb, upb, actb, dYb, dIb, dX2b, dAb, dqb, dkb, dvb;
    DevBuf<float> lse, fa_ws;          // flash attention: [batch, nq, L] log-sum-exp, backward workspace
    DevBuf<double> partial;
    PinnedHost<double> partial_host;   // [N] the loss partial sums read back every iteration
    PinnedHost<int64_t> idx_h;          // [batch] the sub-batch's sample indices on their way to idx_d
    DevBuf<uint8_t> sample_mask, batch_mask;  // [n, L] per-sample loss mask (optional), the sub-batch's rows
    // on-device SignRound parameters (add_tuned_layer)
    struct Tuned {
        int which = 0;
        FakeQuantShape sh;
        FakeQuantConfig cfg;
        bool minmax = true;
        DevBuf<float> W, V, alpha, beta, wmin, wmax, bV, balpha, bbeta;  // b*: the best-loss snapshot
        FakeQuantDeviceLayer layer() {
            FakeQuantDeviceLayer l;
            l.sh = sh;
            l.cfg = cfg;
            l.minmax = minmax;
            l.W = W.p;
            l.V = V.p;
            l.alpha = alpha.p;
            l.beta = beta.p;
            l.wmin = wmin.p;
            l.wmax = wmax.p;
            return l;
        }
    };
    std::vector<std::unique_ptr<Tuned>> tuned;
    int64_t fwd_b = 0;  // samples of the last forward

    // host_resident_inputs: the caller's arrays [n, L, H] and the ones pinned in place here
    bool host = false;
    const float* train_h = nullptr;
    const float* ref_h = nullptr;
    std::vector<const float*> pinned;
    // device-resident inputs and targets: this engine's own copies (train, ref) or a caller's CudaActivations
    const void* train_d = nullptr;
    const void* ref_d = nullptr;
    bool chain_bf16 = false;  // train_d / ref_d hold bf16 (CudaActivations with Bf16 storage)

    // CUDA graphs (options.cuda_graphs): one of quantize_tuned_layers + gather + forward + loss + backward, keyed
    // by the sub-batch shape and loss settings; one of step_tuned_layers, its rates read from lr_d.
    bool graphs = false;
    DevBuf<int64_t> idx_d;             // [batch] the sub-batch's sample indices (gathered on the device)
    DevBuf<float> lr_d;                // [tuned, 2] step_tuned_layers' rates (graph mode)
    std::vector<float> lr_host;
    cudaGraphExec_t fb_exec = nullptr, step_exec = nullptr;
    int64_t fb_b = -1;
    bool fb_mask_last = false;
    double fb_scale = 0.0;
    int fb_calls = 0;                  // calls with the current key (the first runs eagerly: cuBLAS warm-up)
    bool fb_has_fq = false;            // the captured graph includes quantize_tuned's kernels
    size_t step_slots = 0;

    // The block weights of the tuned layers hold fake_quant(W, V, α, β) of their current parameters: the SignSGD
    // step writes them for the stepped parameters in the same pass (fused_fq, on unless AUTOROUND_NO_FUSED_FQ=1),
    // so the next quantize_tuned has nothing to do. Cleared by set_weight and add_tuned_layer.
    bool wq_current = false;
    bool fused_fq = true;

    ~Impl() {
        if (fb_exec) cudaGraphExecDestroy(fb_exec);
        if (step_exec) cudaGraphExecDestroy(step_exec);
        if (blas) cublasDestroy(blas);
        if (blas16) cublasDestroy(blas16);
        for (const float* p : pinned) cudaHostUnregister(const_cast<float*>(p));
        if (stream) cudaStreamDestroy(stream);
    }

    // Pins a host array in place for fast copies; pageable copies still work when this fails (e.g. the range
    // is already registered), so a failure only costs copy speed.
    void pin(const float* p, size_t count) {
        if (!p || std::find(pinned.begin(), pinned.end(), p) != pinned.end()) return;
        if (cudaHostRegister(const_cast<float*>(p), count * sizeof(float), cudaHostRegisterDefault) == cudaSuccess)
            pinned.push_back(p);
        else
            (void)cudaGetLastError();  // clear the (non-sticky) error of the failed registration
    }
    // rows of sample i: host float, device float, or device bf16 (chain_bf16)
    const void* rows_of(const float* h, const void* dv, int64_t i) const {
        const int64_t off = i * L * d.hidden;
        if (host) return h + off;
        return chain_bf16 ? static_cast<const void*>(static_cast<const bf16*>(dv) + off)
                          : static_cast<const void*>(static_cast<const float*>(dv) + off);
    }
    const void* train_rows(int64_t i) const { return rows_of(train_h, train_d, i); }
    const void* ref_rows(int64_t i) const { return rows_of(ref_h, ref_d, i); }
    // Bf16 mode with device-resident inputs: the sub-batch's input and target rows are read in place by the first
    // kernels that need them (rmsnorm_fwd_kernel, add_rmsnorm_fwd_kernel, mse_kernel, through idx_d) instead of
    // being gathered into X and R first (two copies of 2 × b·L·H floats per step).
    bool reads_in_place() const { return bf && !host; }
    InRows batch_inputs() const {
        return reads_in_place() ? InRows{train_d, chain_bf16, idx_d.p} : InRows{X.p, false, nullptr};
    }
    // The block forward of samples [s0, s0 + b) in order into Y: their rows read in place (reads_in_place), or
    // loaded into X first.
    void forward_chunk(int64_t s0, int64_t b) {
        if (reads_in_place()) return forward(InRows{train_rows(s0), chain_bf16, nullptr}, b, Y.p);
        load_rows(X.p, train_rows(s0), b * L * d.hidden);
        forward(InRows{X.p, false, nullptr}, b, Y.p);
    }
    // dst [count] float on the device <- rows at src (train_rows / ref_rows), converted from bf16 when needed
    void load_rows(float* dst, const void* src, int64_t count) {
        if (chain_bf16) {
            bf2f_kernel<<<grid_for(count), kThreads, 0, stream>>>(static_cast<const bf16*>(src), dst, count);
            AR_CUDA_CHECK(cudaGetLastError());
            return;
        }
        AR_CUDA_CHECK(cudaMemcpyAsync(dst, src, size_t(count) * sizeof(float),
                                      host ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToDevice, stream));
    }
    // The sub-batch idx[0..b) into X (inputs), R (targets) and batch_mask: host-resident inputs are copied sample
    // by sample; device-resident ones are gathered by kernels from the indices uploaded to idx_d.
    void upload_idx(const int64_t* idx, int64_t b) {
        for (int64_t i = 0; i < b; ++i)
            check(idx[i] >= 0 && idx[i] < n, "CUDA block engine: sample index ", idx[i], " out of range [0, ", n, ")");
        if (!host) {
            // through pinned memory: a pageable copy is staged by the driver, behind any large pageable copy another
            // thread has in flight (the tuner downloads a finished block's parameters meanwhile)
            std::memcpy(idx_h.p, idx, size_t(b) * sizeof(int64_t));
            AR_CUDA_CHECK(cudaMemcpyAsync(idx_d.p, idx_h.p, size_t(b) * sizeof(int64_t), cudaMemcpyHostToDevice, stream));
        }
    }
    void gather_batch(const int64_t* idx, int64_t b) {  // after upload_idx; idx only read for host-resident inputs
        const int64_t LH = L * d.hidden;
        if (reads_in_place()) {  // inputs and targets are read through idx_d; only the loss mask rows are copied
            if (sample_mask.p)
                gather_mask_kernel<<<dim3(unsigned((L + kThreads - 1) / kThreads), unsigned(b)), kThreads, 0, stream>>>(
                    sample_mask.p, idx_d.p, L, batch_mask.p);
            AR_CUDA_CHECK(cudaGetLastError());
            return;
        }
        if (host) {
            for (int64_t i = 0; i < b; ++i) {
                load_rows(X.p + i * LH, train_rows(idx[i]), LH);
                load_rows(R.p + i * LH, ref_rows(idx[i]), LH);
                if (sample_mask.p)
                    AR_CUDA_CHECK(cudaMemcpyAsync(batch_mask.p + i * L, sample_mask.p + idx[i] * L, size_t(L),
                                                  cudaMemcpyDeviceToDevice, stream));
            }
            return;
        }
        const dim3 grid(unsigned(std::min<int64_t>((LH / 8 + kThreads - 1) / kThreads + 1, 1024)), unsigned(b));
        gather_rows_kernel<<<grid, kThreads, 0, stream>>>(train_d, chain_bf16, idx_d.p, LH, X.p);
        gather_rows_kernel<<<grid, kThreads, 0, stream>>>(ref_d, chain_bf16, idx_d.p, LH, R.p);
        if (sample_mask.p)
            gather_mask_kernel<<<dim3(unsigned((L + kThreads - 1) / kThreads), unsigned(b)), kThreads, 0, stream>>>(
                sample_mask.p, idx_d.p, L, batch_mask.p);
        AR_CUDA_CHECK(cudaGetLastError());
    }
    // forward, masked MSE (per-row partial sums into `partial`) and backward of the gathered sub-batch
    void forward_loss_backward(int64_t b, bool mask_last_token, double grad_scale, bool accumulate) {
        const int64_t N = b * L;
        // Bf16 mode: the block's last residual add is done by the loss kernel (Y itself is not read again)
        forward(batch_inputs(), b, Y.p, /*add_final_residual=*/!bf);
        const double denom = double(N) * double(d.hidden);
        const InRows ref = reads_in_place() ? InRows{ref_d, chain_bf16, idx_d.p} : InRows{R.p, false, nullptr};
        with_rows(ref, [&](auto* r) {
            mse_kernel<<<unsigned(N), kThreads, 0, stream>>>(Y.p, bf ? x2.p : nullptr, r,
                                                             sample_mask.p ? batch_mask.p : nullptr, L, d.hidden,
                                                             mask_last_token, denom, grad_scale, dY.p,
                                                             bf ? dYb.p : nullptr, partial.p, ref.idx);
        });
        AR_CUDA_CHECK(cudaGetLastError());
        backward(dY.p, accumulate);
    }
    double read_loss(int64_t b) {  // waits for the stream; the mean of the sub-batch's partial sums
        const int64_t N = b * L;
        AR_CUDA_CHECK(cudaMemcpyAsync(partial_host.p, partial.p, size_t(N) * sizeof(double),
                                      cudaMemcpyDeviceToHost, stream));
        AR_CUDA_CHECK(cudaStreamSynchronize(stream));
        double total = 0.0;
        for (int64_t i = 0; i < N; ++i) total += partial_host.p[i];
        return total / (double(N) * double(d.hidden));
    }
    void quantize_tuned() {
        if (wq_current) return;
        wq_current = true;
        for (auto& t : tuned) {
            if (bf)
                fake_quant_device_forward(t->layer(), nullptr, reinterpret_cast<uint16_t*>(Wb[t->which].p), stream);
            else
                fake_quant_device_forward(t->layer(), W[t->which].p, nullptr, stream);
        }
    }
    void setup(const Qwen3BlockConsts<float>& c, int64_t n, int64_t L, int64_t batch, const CudaBlockEngineOptions& opt);

    // add_final_residual false (Bf16 mode only): Yd is left without the last residual x2 (the loss kernel adds it)
    void forward(const InRows& x, int64_t b, float* Yd, bool add_final_residual = true) {
        if (bf) return forward_bf16(x, b, Yd, add_final_residual);
        check(!x.bf16 && !x.idx, "CUDA block engine: the FP32 forward reads gathered float inputs");
        forward_fp32(static_cast<const float*>(x.p), b, Yd);
    }
    void backward(const float* dYd, bool accumulate) { bf ? backward_bf16(dYd, accumulate) : backward_fp32(dYd, accumulate); }
    void forward_fp32(const float* Xd, int64_t b, float* Yd);
    void backward_fp32(const float* dYd, bool accumulate);
    void forward_bf16(const InRows& x, int64_t b, float* Yd, bool add_final_residual);
    void backward_bf16(const float* dYd, bool accumulate);
};

void CudaBlockEngine::Impl::forward_fp32(const float* Xd, int64_t b, float* Yd) {
    const int64_t N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim, I = d.intermediate,
                  QD = nq * D, KD = nkv * D, r = nq / nkv;
    const float eps = float(d.rms_eps);
    fwd_b = b;
    rmsnorm_fwd_kernel<float><<<unsigned(N), kThreads, 0, stream>>>(Xd, in_norm.p, H, eps, h1.p, nullptr);
    float* qa = d.qk_norm ? q_lin.p : q.p;
    float* ka = d.qk_norm ? k_lin.p : k.p;
    gemm_rm(blas, false, true, N, QD, H, 1.f, h1.p, H, W[kLinQ].p, H, 0.f, qa, QD);
    gemm_rm(blas, false, true, N, KD, H, 1.f, h1.p, H, W[kLinK].p, H, 0.f, ka, KD);
    gemm_rm(blas, false, true, N, KD, H, 1.f, h1.p, H, W[kLinV].p, H, 0.f, v.p, KD);
    if (d.qk_norm) {
        rmsnorm_fwd_kernel<float><<<unsigned(N * nq), 128, 0, stream>>>(q_lin.p, q_norm.p, D, eps, q.p, rstd_q.p);
        rmsnorm_fwd_kernel<float><<<unsigned(N * nkv), 128, 0, stream>>>(k_lin.p, k_norm.p, D, eps, k.p, rstd_k.p);
    }
    rope_kernel<float><<<grid_for(N * nq * D / 2), kThreads, 0, stream>>>(q.p, N, L, nq, D, cos_t.p, sin_t.p, 1.f, q.p);
    rope_kernel<float><<<grid_for(N * nkv * D / 2), kThreads, 0, stream>>>(k.p, N, L, nkv, D, cos_t.p, sin_t.p, 1.f, k.p);
    // attention: per head h (kv head h / r), batched over the b samples
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, true, L, L, D, scale, q.p + h * D, QD, sQ, k.p + g * D, KD, sK, 0.f, P.p + h * LL, L,
                        sS, b);
    }
    softmax_causal_kernel<float><<<unsigned(b * nq * L), 128, 0, stream>>>(P.p, L, P.p);
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, false, L, D, L, 1.f, P.p + h * LL, L, sS, v.p + g * D, KD, sK, 0.f, att.p + h * D,
                        QD, sQ, b);
    }
    gemm_rm(blas, false, true, N, H, QD, 1.f, att.p, QD, W[kLinO].p, QD, 0.f, x2.p, H);
    add_kernel<<<grid_for(N * H), kThreads, 0, stream>>>(x2.p, Xd, N * H, nullptr);
    rmsnorm_fwd_kernel<float><<<unsigned(N), kThreads, 0, stream>>>(x2.p, post_norm.p, H, eps, h2.p, rstd2.p);
    gemm_rm(blas, false, true, N, I, H, 1.f, h2.p, H, W[kLinGate].p, H, 0.f, gate.p, I);
    gemm_rm(blas, false, true, N, I, H, 1.f, h2.p, H, W[kLinUp].p, H, 0.f, up.p, I);
    swiglu_fwd_kernel<float, float><<<grid_for(N * I), kThreads, 0, stream>>>(gate.p, up.p, N * I, act.p);
    gemm_rm(blas, false, true, N, H, I, 1.f, act.p, I, W[kLinDown].p, I, 0.f, Yd, H);
    add_kernel<<<grid_for(N * H), kThreads, 0, stream>>>(Yd, x2.p, N * H, nullptr);
    AR_CUDA_CHECK(cudaGetLastError());
}

void CudaBlockEngine::Impl::backward_fp32(const float* dYd, bool accumulate) {
    const int64_t b = fwd_b, N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim,
                  I = d.intermediate, QD = nq * D, KD = nkv * D, r = nq / nkv;
    const float beta_w = accumulate ? 1.f : 0.f;
    auto weight_grad = [&](int which, const float* dy, const float* x, int64_t out, int64_t in) {
        gemm_rm(blas, true, false, out, in, N, 1.f, dy, out, x, in, beta_w, dW[which].p, in);
    };
    // MLP
    weight_grad(kLinDown, dYd, act.p, H, I);
    gemm_rm(blas, false, false, N, I, H, 1.f, dYd, H, W[kLinDown].p, I, 0.f, dI.p, I);  // d act
    swiglu_bwd_kernel<float, float, float>
        <<<grid_for(N * I), kThreads, 0, stream>>>(gate.p, up.p, dI.p, N * I, dI.p, act.p);  // dI = dgate, act = dup
    weight_grad(kLinGate, dI.p, h2.p, I, H);
    weight_grad(kLinUp, act.p, h2.p, I, H);
    gemm_rm(blas, false, false, N, H, I, 1.f, dI.p, I, W[kLinGate].p, H, 0.f, dH.p, H);
    gemm_rm(blas, false, false, N, H, I, 1.f, act.p, I, W[kLinUp].p, H, 1.f, dH.p, H);
    rmsnorm_bwd_kernel<float><<<unsigned(N), kThreads, 0, stream>>>(x2.p, post_norm.p, rstd2.p, dH.p, H, dH.p);
    add_kernel<<<grid_for(N * H), kThreads, 0, stream>>>(dH.p, dYd, N * H, nullptr);  // dX2
    // attention
    weight_grad(kLinO, dH.p, att.p, H, QD);
    gemm_rm(blas, false, false, N, QD, H, 1.f, dH.p, H, W[kLinO].p, QD, 0.f, dA.p, QD);
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    for (int64_t h = 0; h < nq; ++h) {  // dP = dO·Vᵀ
        const int64_t g = h / r;
        gemm_rm_batched(blas, false, true, L, L, D, 1.f, dA.p + h * D, QD, sQ, v.p + g * D, KD, sK, 0.f, dP.p + h * LL, L,
                        sS, b);
    }
    softmax_bwd_kernel<float, float><<<unsigned(b * nq * L), 128, 0, stream>>>(P.p, dP.p, L, dP.p);  // dP -> dS
    for (int64_t h = 0; h < nq; ++h) {
        const int64_t g = h / r;
        const float bacc = (h % r == 0) ? 0.f : 1.f;  // the r query heads of a kv head add up
        gemm_rm_batched(blas, false, false, L, D, L, scale, dP.p + h * LL, L, sS, k.p + g * D, KD, sK, 0.f,
                        dq.p + h * D, QD, sQ, b);
        gemm_rm_batched(blas, true, false, L, D, L, scale, dP.p + h * LL, L, sS, q.p + h * D, QD, sQ, bacc,
                        dk.p + g * D, KD, sK, b);
        gemm_rm_batched(blas, true, false, L, D, L, 1.f, P.p + h * LL, L, sS, dA.p + h * D, QD, sQ, bacc, dv.p + g * D,
                        KD, sK, b);
    }
    weight_grad(kLinV, dv.p, h1.p, KD, H);
    rope_kernel<float><<<grid_for(N * nq * D / 2), kThreads, 0, stream>>>(dq.p, N, L, nq, D, cos_t.p, sin_t.p, -1.f, dq.p);
    rope_kernel<float><<<grid_for(N * nkv * D / 2), kThreads, 0, stream>>>(dk.p, N, L, nkv, D, cos_t.p, sin_t.p, -1.f, dk.p);
    if (d.qk_norm) {
        rmsnorm_bwd_kernel<float><<<unsigned(N * nq), 128, 0, stream>>>(q_lin.p, q_norm.p, rstd_q.p, dq.p, D, dq.p);
        rmsnorm_bwd_kernel<float><<<unsigned(N * nkv), 128, 0, stream>>>(k_lin.p, k_norm.p, rstd_k.p, dk.p, D, dk.p);
    }
    weight_grad(kLinQ, dq.p, h1.p, QD, H);
    weight_grad(kLinK, dk.p, h1.p, KD, H);
    AR_CUDA_CHECK(cudaGetLastError());
}

// Bf16 mode: the same dataflow as forward_fp32 with bf16 GEMM operands (see block_engine.h).
void CudaBlockEngine::Impl::forward_bf16(const InRows& x, int64_t b, float* Yd, bool add_final_residual) {
    const int64_t N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim, I = d.intermediate,
                  QD = nq * D, KD = nkv * D, r = nq / nkv;
    const float eps = float(d.rms_eps);
    cublasHandle_t hb = blas16;
    fwd_b = b;
    with_rows(x, [&](auto* xr) {
        rmsnorm_fwd_kernel<bf16><<<unsigned(N), kThreads, 0, stream>>>(xr, in_norm.p, H, eps, h1b.p, nullptr, x.idx, L);
    });
    float* qa = d.qk_norm ? q_lin.p : q.p;
    float* ka = d.qk_norm ? k_lin.p : k.p;
    gemm_bf<float>(hb, false, true, N, QD, H, 1.f, h1b.p, H, Wb[kLinQ].p, H, 0.f, qa, QD);
    gemm_bf<float>(hb, false, true, N, KD, H, 1.f, h1b.p, H, Wb[kLinK].p, H, 0.f, ka, KD);
    gemm_bf<bf16>(hb, false, true, N, KD, H, 1.f, h1b.p, H, Wb[kLinV].p, H, 0.f, vb.p, KD);
    if (d.qk_norm) {  // QK-norm and RoPE in one pass: q_lin / k_lin (FP32) -> qb / kb (bf16)
        qk_norm_rope_fwd_kernel<<<warp_rows_grid(N * nq), kThreads, 0, stream>>>(q_lin.p, q_norm.p, N * nq, L, nq, D, eps,
                                                                      cos_t.p, sin_t.p, qb.p, rstd_q.p);
        qk_norm_rope_fwd_kernel<<<warp_rows_grid(N * nkv), kThreads, 0, stream>>>(k_lin.p, k_norm.p, N * nkv, L, nkv, D, eps,
                                                                       cos_t.p, sin_t.p, kb.p, rstd_k.p);
    } else {
        rope_kernel<bf16><<<grid_for(N * nq * D / 2), kThreads, 0, stream>>>(q.p, N, L, nq, D, cos_t.p, sin_t.p, 1.f, qb.p);
        rope_kernel<bf16><<<grid_for(N * nkv * D / 2), kThreads, 0, stream>>>(k.p, N, L, nkv, D, cos_t.p, sin_t.p, 1.f, kb.p);
    }
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    if (flash) {
        flash_attention_forward(qb.p, kb.p, vb.p, b, L, int(nq), int(nkv), int(D), scale, attb.p, lse.p, stream);
    } else {
        for (int64_t h = 0; h < nq; ++h) {  // FP32 scores (softmax input stays FP32, as in flash attention)
            const int64_t g = h / r;
            gemm_bf_batched<float>(hb, false, true, L, L, D, scale, qb.p + h * D, QD, sQ, kb.p + g * D, KD, sK, 0.f,
                                   P.p + h * LL, L, sS, b);
        }
        softmax_causal_kernel<bf16><<<unsigned(b * nq * L), 128, 0, stream>>>(P.p, L, Pb.p);
        for (int64_t h = 0; h < nq; ++h) {
            const int64_t g = h / r;
            gemm_bf_batched<bf16>(hb, false, false, L, D, L, 1.f, Pb.p + h * LL, L, sS, vb.p + g * D, KD, sK, 0.f,
                                  attb.p + h * D, QD, sQ, b);
        }
    }
    gemm_bf<float>(hb, false, true, N, H, QD, 1.f, attb.p, QD, Wb[kLinO].p, QD, 0.f, x2.p, H);
    with_rows(x, [&](auto* xr) {
        add_rmsnorm_fwd_kernel<bf16><<<unsigned(N), kThreads, 0, stream>>>(x2.p, xr, post_norm.p, H, eps, h2b.p, rstd2.p,
                                                                           x.idx, L);
    });
    gemm_bf<bf16>(hb, false, true, N, I, H, 1.f, h2b.p, H, Wb[kLinGate].p, H, 0.f, gateb.p, I);
    gemm_bf<bf16>(hb, false, true, N, I, H, 1.f, h2b.p, H, Wb[kLinUp].p, H, 0.f, upb.p, I);
    swiglu_forward_bf16(gateb.p, upb.p, N * I, actb.p, stream);
    gemm_bf<float>(hb, false, true, N, H, I, 1.f, actb.p, I, Wb[kLinDown].p, I, 0.f, Yd, H);
    if (add_final_residual) add_kernel<<<grid_for(N * H), kThreads, 0, stream>>>(Yd, x2.p, N * H, nullptr);
    AR_CUDA_CHECK(cudaGetLastError());
}

// Bf16 mode backward; expects dYb (the bf16 copy of dYd) to be filled by the loss kernel.
void CudaBlockEngine::Impl::backward_bf16(const float* dYd, bool accumulate) {
    const int64_t b = fwd_b, N = b * L, H = d.hidden, nq = d.n_q_heads, nkv = d.n_kv_heads, D = d.head_dim,
                  I = d.intermediate, QD = nq * D, KD = nkv * D, r = nq / nkv;
    cublasHandle_t hb = blas16;
    const float beta_w = accumulate ? 1.f : 0.f;
    // the linears' backward GEMMs: bf16, or FP8 (fp8_backward) where the shapes allow it
    auto bwd_gemm = [&](bool ta, int64_t M, int64_t Nn, int64_t K, const bf16* A, int64_t lda, const bf16* B,
                        int64_t ldb, float beta, auto* C, int64_t ldc) {
        using TC = std::remove_pointer_t<decltype(C)>;
        if (fp8 && Fp8Gemm::shapes_supported(ta, false, M, Nn, K, lda, ldb, ldc, int(sizeof(TC)))) {
            try {
                fp8->gemm(ta, false, M, Nn, K, 1.f, A, lda, B, ldb, beta, C, ldc, stream);
                return;
            } catch (const Error& e) {  // no FP8 kernel for this problem on this cuBLAS / GPU: bf16 from now on
                std::fprintf(stderr, "warning: --fp8_backward: %s; the backward GEMMs continue in bf16\n", e.what());
                fp8.reset();
            }
        }
        gemm_bf<TC>(hb, ta, false, M, Nn, K, 1.f, A, lda, B, ldb, beta, C, ldc);
    };
    auto weight_grad = [&](int which, const bf16* dy, const bf16* x, int64_t out, int64_t in) {
        bwd_gemm(true, out, in, N, dy, out, x, in, beta_w, dW[which].p, in);
    };
    // MLP
    weight_grad(kLinDown, dYb.p, actb.p, H, I);
    bwd_gemm(false, N, I, H, dYb.p, H, Wb[kLinDown].p, I, 0.f, dIb.p, I);  // d act
    swiglu_backward_bf16(gateb.p, upb.p, dIb.p, N * I, dIb.p, actb.p, stream);  // dIb = dgate, actb = dup
    weight_grad(kLinGate, dIb.p, h2b.p, I, H);
    weight_grad(kLinUp, actb.p, h2b.p, I, H);
    bwd_gemm(false, N, H, I, dIb.p, I, Wb[kLinGate].p, H, 0.f, dH.p, H);
    bwd_gemm(false, N, H, I, actb.p, I, Wb[kLinUp].p, H, 1.f, dH.p, H);
    // dX2 = RMSNorm backward of dH + dY, in bf16 only
    rmsnorm_bwd_add_kernel<<<unsigned(N), kThreads, 0, stream>>>(x2.p, post_norm.p, rstd2.p, dH.p, dYd, H, dX2b.p);
    // attention
    weight_grad(kLinO, dX2b.p, attb.p, H, QD);
    bwd_gemm(false, N, QD, H, dX2b.p, H, Wb[kLinO].p, QD, 0.f, dAb.p, QD);
    const float scale = 1.f / std::sqrt(float(D));
    const int64_t sQ = L * QD, sK = L * KD, LL = L * L, sS = nq * LL;
    if (flash) {  // dq, dk, dv (FP32; dk / dv summed over the r query heads of each kv head)
        flash_attention_backward(qb.p, kb.p, vb.p, attb.p, dAb.p, lse.p, b, L, int(nq), int(nkv), int(D), scale, dq.p,
                                 dk.p, dv.p, fa_ws.p, stream);
    } else {
        for (int64_t h = 0; h < nq; ++h) {  // dP = dO·Vᵀ (FP32, into the scores buffer)
            const int64_t g = h / r;
            gemm_bf_batched<float>(hb, false, true, L, L, D, 1.f, dAb.p + h * D, QD, sQ, vb.p + g * D, KD, sK, 0.f,
                                   P.p + h * LL, L, sS, b);
        }
        softmax_bwd_kernel<bf16, bf16><<<unsigned(b * nq * L), 128, 0, stream>>>(Pb.p, P.p, L, dSb.p);
        for (int64_t h = 0; h < nq; ++h) {
            const int64_t g = h / r;
            const float bacc = (h % r == 0) ? 0.f : 1.f;  // the r query heads of a kv head add up (FP32)
            gemm_bf_batched<float>(hb, false, false, L, D, L, scale, dSb.p + h * LL, L, sS, kb.p + g * D, KD, sK, 0.f,
                                   dq.p + h * D, QD, sQ, b);
            gemm_bf_batched<float>(hb, true, false, L, D, L, scale, dSb.p + h * LL, L, sS, qb.p + h * D, QD, sQ, bacc,
                                   dk.p + g * D, KD, sK, b);
            gemm_bf_batched<float>(hb, true, false, L, D, L, 1.f, Pb.p + h * LL, L, sS, dAb.p + h * D, QD, sQ, bacc,
                                   dv.p + g * D, KD, sK, b);
        }
    }
    // four values per thread (a grid of N·KD threads left three quarters of its blocks idle: 57 -> 28 us, 4B step)
    f2bf_kernel<<<grid_for(N * KD / 4 + 1), kThreads, 0, stream>>>(dv.p, dvb.p, N * KD);
    weight_grad(kLinV, dvb.p, h1b.p, KD, H);
    if (d.qk_norm) {  // RoPE and QK-norm backward in one pass: dq / dk (FP32, roped) -> dqb / dkb (bf16)
        qk_norm_rope_bwd_kernel<<<warp_rows_grid(N * nq), kThreads, 0, stream>>>(dq.p, q_lin.p, q_norm.p, rstd_q.p, N * nq, L, nq,
                                                                      D, cos_t.p, sin_t.p, dqb.p);
        qk_norm_rope_bwd_kernel<<<warp_rows_grid(N * nkv), kThreads, 0, stream>>>(dk.p, k_lin.p, k_norm.p, rstd_k.p, N * nkv, L,
                                                                       nkv, D, cos_t.p, sin_t.p, dkb.p);
    } else {
        rope_kernel<bf16><<<grid_for(N * nq * D / 2), kThreads, 0, stream>>>(dq.p, N, L, nq, D, cos_t.p, sin_t.p, -1.f, dqb.p);
        rope_kernel<bf16><<<grid_for(N * nkv * D / 2), kThreads, 0, stream>>>(dk.p, N, L, nkv, D, cos_t.p, sin_t.p, -1.f, dkb.p);
    }
    weight_grad(kLinQ, dqb.p, h1b.p, QD, H);
    weight_grad(kLinK, dkb.p, h1b.p, KD, H);
    AR_CUDA_CHECK(cudaGetLastError());
}

CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>& c, int64_t n, int64_t L, int64_t batch,
                                 const float* train_in, const float* ref_out)
    : CudaBlockEngine(c, n, L, batch, train_in, ref_out, CudaBlockEngineOptions{}) {}

// Everything but the resident inputs and targets (the constructors differ only in where those live).
void CudaBlockEngine::Impl::setup(const Qwen3BlockConsts<float>& c, int64_t n_, int64_t L_, int64_t batch_,
                                  const CudaBlockEngineOptions& opt) {
    Impl& s = *this;
    const int64_t n = n_, L = L_, batch = batch_;
    s.d = c.dims;
    s.n = n;
    s.L = L;
    s.batch = std::min(batch, n);
    s.bf = opt.precision == GpuPrecision::Bf16;
    s.host = opt.host_resident_inputs;
    const Qwen3BlockDims& d = s.d;
    check(n > 0 && L > 0 && batch > 0, "CUDA block engine: empty input (n ", n, ", L ", L, ", batch ", batch, ")");
    check(c.q_bias.empty(), "CUDA tuning does not support q/k/v biases yet (Qwen2-style models); use --device cpu");
    check(d.n_kv_heads > 0 && d.n_q_heads % d.n_kv_heads == 0 && d.head_dim % 2 == 0,
          "CUDA block engine: bad head layout (", d.n_q_heads, " q heads, ", d.n_kv_heads, " kv heads, head_dim ",
          d.head_dim, ")");
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
        fail("--device cuda: no CUDA device is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)");
    AR_CUDA_CHECK(cudaStreamCreate(&s.stream));
    if (s.bf) {
        int dev = 0, major = 0;
        AR_CUDA_CHECK(cudaGetDevice(&dev));
        AR_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
        check(major >= 8, "CUDA block engine: bf16 precision needs a compute capability 8.0+ GPU (this one is ", major,
              ".x); use the FP32 precision");
        AR_CUBLAS_CHECK(cublasCreate(&s.blas16));
        AR_CUBLAS_CHECK(cublasSetMathMode(s.blas16, CUBLAS_DEFAULT_MATH));
        s.workspace.ensure(kBf16Workspace, "the cuBLAS workspace");
        AR_CUBLAS_CHECK(cublasSetWorkspace(s.blas16, s.workspace.p, kBf16Workspace));
        AR_CUBLAS_CHECK(cublasSetStream(s.blas16, s.stream));
    } else {
        AR_CUBLAS_CHECK(cublasCreate(&s.blas));
        AR_CUBLAS_CHECK(cublasSetMathMode(s.blas, CUBLAS_PEDANTIC_MATH));  // true FP32, like the CPU path
        AR_CUBLAS_CHECK(cublasSetStream(s.blas, s.stream));
    }
    const int64_t H = d.hidden, D = d.head_dim;
    s.in_norm.upload(c.input_norm.data(), c.input_norm.size(), "norm weights");
    s.post_norm.upload(c.post_attn_norm.data(), c.post_attn_norm.size(), "norm weights");
    if (d.qk_norm) {
        s.q_norm.upload(c.q_norm.data(), c.q_norm.size(), "q_norm");
        s.k_norm.upload(c.k_norm.data(), c.k_norm.size(), "k_norm");
    }
    std::vector<float> cs(size_t(L * (D / 2))), sn(cs.size());
    if (opt.mrope_positions.empty()) {
        rope_table<float>(c.inv_freq, L, cs.data(), sn.data());
    } else {
        check(static_cast<int64_t>(opt.mrope_positions.size()) == 3 * L && opt.mrope_section.size() == 3,
              "CUDA block engine: M-RoPE positions must be [3, ", L, "] with a 3-entry section");
        rope_table_mrope<float>(c.inv_freq, opt.mrope_positions.data(), L, opt.mrope_section, cs.data(), sn.data());
    }
    s.cos_t.upload(cs.data(), cs.size(), "RoPE tables");
    s.sin_t.upload(sn.data(), sn.size(), "RoPE tables");
    size_t max_w = 0;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const auto sh = block_linear_shape(d, i);
        const size_t cnt = size_t(sh[0] * sh[1]);
        max_w = std::max(max_w, cnt);
        if (s.bf)
            s.Wb[i].ensure(cnt, "block weights (bf16)");
        else
            s.W[i].ensure(cnt, "block weights");
        s.dW[i].ensure(cnt, "weight gradients");
    }
    if (s.bf) s.stage.ensure(max_w, "the weight upload buffer");
    const size_t N = size_t(s.batch * L), nq = size_t(d.n_q_heads), nkv = size_t(d.n_kv_heads), I = size_t(d.intermediate);
    const size_t QD = nq * size_t(D), KD = nkv * size_t(D), HH = size_t(H);
    const size_t LL = size_t(s.batch) * nq * size_t(L) * size_t(L);
    for (DevBuf<float>* bf : {&s.x2, &s.Y, &s.dY, &s.dH}) bf->alloc(N * HH, "activations");
    // the gathered sub-batch inputs and targets, unless the kernels read them in place
    if (!s.reads_in_place())
        for (DevBuf<float>* bf : {&s.X, &s.R}) bf->alloc(N * HH, "activations");
    s.dq.ensure(N * QD, "activations");
    for (DevBuf<float>* bf : {&s.dk, &s.dv}) bf->alloc(N * KD, "activations");
    if (!(s.bf && d.qk_norm)) {  // the FP32 normed / roped q and k (Bf16 mode with QK-norm goes straight to bf16)
        s.q.ensure(N * QD, "activations");
        s.k.ensure(N * KD, "activations");
    }
    if (d.qk_norm) {
        s.q_lin.ensure(N * QD, "activations");
        s.k_lin.ensure(N * KD, "activations");
    }
    s.rstd_q.ensure(N * nq, "activations");
    s.rstd_k.ensure(N * nkv, "activations");
    s.rstd2.ensure(N, "activations");
    s.flash = s.bf && opt.flash_attention && flash_attention_supports_head_dim(int(D));
    if (opt.fp8_backward) {
        int dev = 0;
        AR_CUDA_CHECK(cudaGetDevice(&dev));
        check(s.bf, "--fp8_backward needs --gpu_precision bf16 (the FP8 backward replaces bf16 GEMMs)");
        check(Fp8Gemm::supported(dev), "--fp8_backward needs FP8 tensor cores (compute capability 8.9+, e.g. H100); "
              "this GPU has none: drop the flag");
        s.fp8 = std::make_unique<Fp8Gemm>();
        s.fp8->set_formats(Fp8Format::E5M2, Fp8Format::E4M3);  // A: the gradient operand (dY, dI, dX2, ...)
    }
    if (s.flash) {
        s.lse.ensure(size_t(s.batch) * nq * size_t(L), "flash attention statistics");
        s.fa_ws.ensure((flash_attention_backward_workspace_bytes(s.batch, L, int(nq)) + 3) / 4,
                      "flash attention workspace");
    } else {
        s.P.ensure(LL, "attention scores/probabilities");
    }
    if (s.bf) {
        for (DevBuf<bf16>* bf : {&s.h1b, &s.h2b, &s.dYb, &s.dX2b}) bf->alloc(N * HH, "activations (bf16)");
        for (DevBuf<bf16>* bf : {&s.qb, &s.attb, &s.dAb, &s.dqb}) bf->alloc(N * QD, "activations (bf16)");
        for (DevBuf<bf16>* bf : {&s.kb, &s.vb, &s.dkb, &s.dvb}) bf->alloc(N * KD, "activations (bf16)");
        for (DevBuf<bf16>* bf : {&s.gateb, &s.upb, &s.actb, &s.dIb}) bf->alloc(N * I, "activations (bf16)");
        if (!s.flash) {
            s.Pb.ensure(LL, "attention probabilities (bf16)");
            s.dSb.ensure(LL, "attention probability gradients (bf16)");
        }
    } else {
        for (DevBuf<float>* bf : {&s.h1, &s.h2}) bf->alloc(N * HH, "activations");
        for (DevBuf<float>* bf : {&s.att, &s.dA}) bf->alloc(N * QD, "activations");
        s.v.ensure(N * KD, "activations");
        for (DevBuf<float>* bf : {&s.gate, &s.up, &s.act, &s.dI}) bf->alloc(N * I, "activations");
        s.dP.ensure(LL, "attention probability gradients");
    }
    if (s.fp8) {  // the FP8 GEMMs read beta from device memory, so C is read even when beta is 0: no NaN garbage
        for (auto& g : s.dW) AR_CUDA_CHECK(cudaMemset(g.p, 0, g.n * sizeof(float)));
        AR_CUDA_CHECK(cudaMemset(s.dH.p, 0, s.dH.n * sizeof(float)));
        AR_CUDA_CHECK(cudaMemset(s.dIb.p, 0, s.dIb.n * sizeof(bf16)));
        AR_CUDA_CHECK(cudaMemset(s.dAb.p, 0, s.dAb.n * sizeof(bf16)));
    }
    s.partial.ensure(N, "loss partial sums");
    s.idx_d.ensure(size_t(s.batch), "sample indices");
    // graphs need device-resident inputs (the gather kernels) and a workspace-backed cuBLAS handle (Bf16 mode)
    s.graphs = opt.cuda_graphs && s.bf && !opt.host_resident_inputs;
    {
        const char* e = std::getenv("AUTOROUND_NO_FUSED_FQ");  // A/B: the separate fake-quant forward every iteration
        s.fused_fq = !(e && e[0] == '1');
    }
    s.partial_host.alloc(N);
    s.idx_h.alloc(size_t(s.batch));
    if (opt.loss_mask) {
        s.sample_mask.upload(opt.loss_mask, size_t(n * L), "the loss mask");
        s.batch_mask.ensure(N, "the loss mask");
    }
}

CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>& c, int64_t n, int64_t L, int64_t batch,
                                 const float* train_in, const float* ref_out, const CudaBlockEngineOptions& opt)
    : precision_(opt.precision), p_(std::make_unique<Impl>()) {
    Impl& s = *p_;
    s.setup(c, n, L, batch, opt);
    const int64_t LH = L * c.dims.hidden;
    if (s.host) {
        s.train_h = train_in;
        s.ref_h = ref_out;
        s.pin(train_in, size_t(n * LH));
        s.pin(ref_out, size_t(n * LH));
    } else {
        s.train.upload(train_in, size_t(n * LH), "the cached block inputs (or use --low_gpu_mem_usage)");
        s.train_d = s.train.p;
        if (ref_out) {
            s.ref.upload(ref_out, size_t(n * LH), "the block's FP targets (or use --low_gpu_mem_usage)");
            s.ref_d = s.ref.p;
        }
    }
}

CudaBlockEngine::CudaBlockEngine(const Qwen3BlockConsts<float>& c, int64_t batch, const CudaActivations& train_in,
                                 const CudaActivations* ref_out, const CudaBlockEngineOptions& opt)
    : precision_(opt.precision), p_(std::make_unique<Impl>()) {
    check(!opt.host_resident_inputs, "CUDA block engine: device-resident inputs cannot be host-resident too");
    check(train_in.H() == c.dims.hidden && (!ref_out || (ref_out->n() == train_in.n() && ref_out->L() == train_in.L() &&
                                                         ref_out->H() == train_in.H())),
          "CUDA block engine: inputs [", train_in.n(), ", ", train_in.L(), ", ", train_in.H(),
          "] do not match the targets or the block's hidden size ", c.dims.hidden);
    Impl& s = *p_;
    s.setup(c, train_in.n(), train_in.L(), batch, opt);
    check(!ref_out || ref_out->storage() == train_in.storage(), "CUDA block engine: inputs and targets must have the "
          "same storage");
    s.train_d = train_in.data();
    s.ref_d = ref_out ? ref_out->data() : nullptr;
    s.chain_bf16 = train_in.storage() == ActivationStorage::Bf16;
}

CudaBlockEngine::~CudaBlockEngine() = default;

void CudaBlockEngine::set_weight(int which, const float* W) {
    Impl& s = *p_;
    check(which >= 0 && which < kNumBlockLinears, "CUDA block engine: bad weight index ", which);
    const auto sh = block_linear_shape(s.d, which);
    const int64_t cnt = sh[0] * sh[1];
    s.wq_current = false;
    if (!s.bf) {
        AR_CUDA_CHECK(cudaMemcpy(s.W[which].p, W, size_t(cnt) * sizeof(float), cudaMemcpyHostToDevice));
        return;
    }
    AR_CUDA_CHECK(cudaMemcpy(s.stage.p, W, size_t(cnt) * sizeof(float), cudaMemcpyHostToDevice));
    f2bf_kernel<<<grid_for(cnt), kThreads, 0, s.stream>>>(s.stage.p, s.Wb[which].p, cnt);
    AR_CUDA_CHECK(cudaGetLastError());
}

int CudaBlockEngine::add_tuned_layer(int which, const FakeQuantShape& sh, const FakeQuantConfig& cfg, bool minmax,
                                     const float* W, const float* wmin, const float* wmax) {
    Impl& s = *p_;
    check(which >= 0 && which < kNumBlockLinears, "CUDA block engine: bad weight index ", which);
    const auto shape = block_linear_shape(s.d, which);
    check(sh.out == shape[0] && sh.in == shape[1], "CUDA block engine: tuned layer ", block_linear_name(which),
          " has shape [", sh.out, ", ", sh.in, "], the block's is [", shape[0], ", ", shape[1], "]");
    auto t = std::make_unique<Impl::Tuned>();
    s.wq_current = false;
    t->which = which;
    t->sh = sh;
    t->cfg = cfg;
    t->minmax = minmax;
    const size_t nw = size_t(sh.out * sh.in), nv = size_t(sh.out * sh.padded_in()), ng = size_t(sh.groups());
    t->W.upload(W, nw, "a tuned layer's weight");
    t->wmin.upload(wmin, ng, "a tuned layer's group minima");
    t->wmax.upload(wmax, ng, "a tuned layer's group maxima");
    const std::vector<float> ones(ng, 1.f);
    t->V.ensure(nv, "a tuned layer's rounding offsets V");  // V = 0 (set on the device: no host array of zeros)
    AR_CUDA_CHECK(cudaMemsetAsync(t->V.p, 0, nv * sizeof(float), s.stream));
    t->bV.ensure(nv, "a tuned layer's best V");
    if (minmax) {
        t->alpha.upload(ones.data(), ng, "a tuned layer's min scales");
        t->beta.upload(ones.data(), ng, "a tuned layer's max scales");
        t->balpha.ensure(ng, "a tuned layer's best min scales");
        t->bbeta.ensure(ng, "a tuned layer's best max scales");
    }
    s.tuned.push_back(std::move(t));
    return int(s.tuned.size()) - 1;
}

void CudaBlockEngine::quantize_tuned_layers() { p_->quantize_tuned(); }

void CudaBlockEngine::step_tuned_layers(const std::vector<std::array<float, 2>>& lr) {
    Impl& s = *p_;
    check(lr.size() == s.tuned.size(), "CUDA block engine: ", lr.size(), " learning rates for ", s.tuned.size(),
          " tuned layers");
    // fused: each step also writes the block weight for the stepped parameters (what the next quantize_tuned would)
    auto next_f32 = [&](const Impl::Tuned& t) { return s.fused_fq && !s.bf ? s.W[t.which].p : nullptr; };
    auto next_bf16 = [&](const Impl::Tuned& t) {
        return s.fused_fq && s.bf ? reinterpret_cast<uint16_t*>(s.Wb[t.which].p) : nullptr;
    };
    if (!s.graphs) {
        for (size_t i = 0; i < s.tuned.size(); ++i) {
            Impl::Tuned& t = *s.tuned[i];
            fake_quant_device_backward_step(t.layer(), s.dW[t.which].p, lr[i][0], lr[i][1], nullptr, nullptr, nullptr,
                                            s.stream, nullptr, next_f32(t), next_bf16(t));
        }
        s.wq_current = s.fused_fq;
        return;
    }
    // graph mode: the rates go to device memory (ordered before the replay on the stream), the steps read them
    if (s.step_slots != s.tuned.size()) {
        if (s.step_exec) AR_CUDA_CHECK(cudaGraphExecDestroy(s.step_exec));
        s.step_exec = nullptr;
        s.step_slots = s.tuned.size();
        s.lr_d.ensure(2 * s.step_slots, "learning rates");
        s.lr_host.resize(2 * s.step_slots);
    }
    for (size_t i = 0; i < lr.size(); ++i) {
        s.lr_host[2 * i] = lr[i][0];
        s.lr_host[2 * i + 1] = lr[i][1];
    }
    AR_CUDA_CHECK(cudaMemcpyAsync(s.lr_d.p, s.lr_host.data(), s.lr_host.size() * sizeof(float), cudaMemcpyHostToDevice,
                                  s.stream));
    if (!s.step_exec)
        s.step_exec = capture_graph(s.stream, [&] {
            for (size_t i = 0; i < s.tuned.size(); ++i) {
                Impl::Tuned& t = *s.tuned[i];
                fake_quant_device_backward_step(t.layer(), s.dW[t.which].p, 0.f, 0.f, nullptr, nullptr, nullptr,
                                                s.stream, s.lr_d.p + 2 * i, next_f32(t), next_bf16(t));
            }
        });
    AR_CUDA_CHECK(cudaGraphLaunch(s.step_exec, s.stream));
    s.wq_current = s.fused_fq;
}

namespace {
// V, α, β of every tuned layer: current → best (snapshot) or best → current
template <typename Tuned>
void copy_tuned_params(std::vector<std::unique_ptr<Tuned>>& tuned, bool to_best, cudaStream_t stream) {
    for (auto& t : tuned) {
        const size_t nv = size_t(t->sh.out * t->sh.padded_in()), ng = size_t(t->sh.groups());
        auto copy = [&](DevBuf<float>& cur, DevBuf<float>& best, size_t count) {
            float* dst = to_best ? best.p : cur.p;
            const float* src = to_best ? cur.p : best.p;
            AR_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream));
        };
        copy(t->V, t->bV, nv);
        if (t->minmax) {
            copy(t->alpha, t->balpha, ng);
            copy(t->beta, t->bbeta, ng);
        }
    }
}
}  // namespace

void CudaBlockEngine::snapshot_tuned_layers() { copy_tuned_params(p_->tuned, /*to_best=*/true, p_->stream); }

void CudaBlockEngine::quantize_best_tuned_layers() {
    Impl& s = *p_;
    copy_tuned_params(s.tuned, /*to_best=*/false, s.stream);
    s.wq_current = false;
    s.quantize_tuned();
}

struct CudaTunedParams::Impl {
    struct Layer {
        size_t nv = 0, ng = 0;
        bool minmax = false;
        DevBuf<float> V, alpha, beta;
    };
    std::vector<Layer> layers;
    int device = 0;
    cudaEvent_t ready = nullptr;  // recorded on the engine's stream after the last write
    mutable cudaStream_t stream = nullptr;
    ~Impl() {
        if (stream) cudaStreamDestroy(stream);
        if (ready) cudaEventDestroy(ready);
    }
};

CudaTunedParams::CudaTunedParams(std::unique_ptr<Impl> p) : p_(std::move(p)) {}
CudaTunedParams::~CudaTunedParams() = default;
int CudaTunedParams::layers() const { return int(p_->layers.size()); }

void CudaTunedParams::download(int slot, std::vector<float>& V, std::vector<float>& alpha,
                               std::vector<float>& beta) const {
    check(slot >= 0 && slot < layers(), "CUDA tuned parameters: no tuned layer ", slot);
    Impl& s = *p_;
    AR_CUDA_CHECK(cudaSetDevice(s.device));  // (a thread's current device starts at 0)
    if (!s.stream) AR_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    AR_CUDA_CHECK(cudaStreamWaitEvent(s.stream, s.ready, 0));
    const Impl::Layer& l = s.layers[size_t(slot)];
    V.resize(l.nv);
    alpha.assign(l.ng, 1.f);
    beta.assign(l.ng, 1.f);
    AR_CUDA_CHECK(cudaMemcpyAsync(V.data(), l.V.p, l.nv * sizeof(float), cudaMemcpyDeviceToHost, s.stream));
    if (l.minmax) {
        AR_CUDA_CHECK(cudaMemcpyAsync(alpha.data(), l.alpha.p, l.ng * sizeof(float), cudaMemcpyDeviceToHost, s.stream));
        AR_CUDA_CHECK(cudaMemcpyAsync(beta.data(), l.beta.p, l.ng * sizeof(float), cudaMemcpyDeviceToHost, s.stream));
    }
    AR_CUDA_CHECK(cudaStreamSynchronize(s.stream));
}

std::unique_ptr<CudaTunedParams> CudaBlockEngine::take_best_params() {
    Impl& s = *p_;
    auto out = std::make_unique<CudaTunedParams::Impl>();
    AR_CUDA_CHECK(cudaGetDevice(&out->device));
    for (auto& t : s.tuned) {
        CudaTunedParams::Impl::Layer l;
        l.nv = size_t(t->sh.out * t->sh.padded_in());
        l.ng = size_t(t->sh.groups());
        l.minmax = t->minmax;
        l.V = std::move(t->bV);
        l.alpha = std::move(t->balpha);
        l.beta = std::move(t->bbeta);
        out->layers.push_back(std::move(l));
    }
    AR_CUDA_CHECK(cudaEventCreateWithFlags(&out->ready, cudaEventDisableTiming));
    AR_CUDA_CHECK(cudaEventRecord(out->ready, s.stream));
    return std::make_unique<CudaTunedParams>(std::move(out));
}

void CudaBlockEngine::get_tuned_params(int slot, bool best, std::vector<float>& V, std::vector<float>& alpha,
                                       std::vector<float>& beta) const {
    const Impl& s = *p_;
    check(slot >= 0 && slot < int(s.tuned.size()), "CUDA block engine: no tuned layer ", slot);
    const Impl::Tuned& t = *s.tuned[size_t(slot)];
    const size_t nv = size_t(t.sh.out * t.sh.padded_in()), ng = size_t(t.sh.groups());
    V.resize(nv);
    AR_CUDA_CHECK(cudaMemcpy(V.data(), best ? t.bV.p : t.V.p, nv * sizeof(float), cudaMemcpyDeviceToHost));
    alpha.assign(ng, 1.f);
    beta.assign(ng, 1.f);
    if (t.minmax) {
        AR_CUDA_CHECK(cudaMemcpy(alpha.data(), best ? t.balpha.p : t.alpha.p, ng * sizeof(float), cudaMemcpyDeviceToHost));
        AR_CUDA_CHECK(cudaMemcpy(beta.data(), best ? t.bbeta.p : t.beta.p, ng * sizeof(float), cudaMemcpyDeviceToHost));
    }
}

void CudaBlockEngine::set_train_inputs(const float* train_in) {
    Impl& s = *p_;
    check(!s.chain_bf16, "CUDA block engine: set_train_inputs on an engine built from bf16 device activations");
    if (s.host) {
        s.train_h = train_in;
        s.pin(train_in, size_t(s.n * s.L * s.d.hidden));
        return;
    }
    s.train.upload(train_in, size_t(s.n * s.L * s.d.hidden), "the cached block inputs (or use --low_gpu_mem_usage)");
    s.train_d = s.train.p;
}

double CudaBlockEngine::forward_backward(const int64_t* idx, int64_t b, bool mask_last_token, double grad_scale,
                                         bool accumulate) {
    Impl& s = *p_;
    check(b > 0 && b <= s.batch, "CUDA block engine: sub-batch of ", b, " samples (capacity ", s.batch, ")");
    check((s.host ? static_cast<const void*>(s.ref_h) : s.ref_d) != nullptr, "CUDA block engine: no targets were given");
    s.upload_idx(idx, b);
    s.gather_batch(idx, b);
    s.forward_loss_backward(b, mask_last_token, grad_scale, accumulate);
    return s.read_loss(b);
}

double CudaBlockEngine::quantize_forward_backward(const int64_t* idx, int64_t b, bool mask_last_token,
                                                  double grad_scale) {
    Impl& s = *p_;
    if (!s.graphs) {
        quantize_tuned_layers();
        return forward_backward(idx, b, mask_last_token, grad_scale, false);
    }
    check(b > 0 && b <= s.batch, "CUDA block engine: sub-batch of ", b, " samples (capacity ", s.batch, ")");
    check(s.ref_d != nullptr, "CUDA block engine: no targets were given");
    if (b != s.fb_b || mask_last_token != s.fb_mask_last || grad_scale != s.fb_scale) {  // a new graph key
        if (s.fb_exec) AR_CUDA_CHECK(cudaGraphExecDestroy(s.fb_exec));
        s.fb_exec = nullptr;
        s.fb_b = b;
        s.fb_mask_last = mask_last_token;
        s.fb_scale = grad_scale;
        s.fb_calls = 0;
    }
    s.upload_idx(idx, b);  // outside the graph: its kernels read idx_d
    auto device_work = [&] {
        s.quantize_tuned();
        s.gather_batch(idx, b);
        s.forward_loss_backward(b, mask_last_token, grad_scale, false);
    };
    if (s.fb_exec) {
        if (!s.fb_has_fq) s.quantize_tuned();  // captured after a fused step; the weights are stale now (eager kernels)
        AR_CUDA_CHECK(cudaGraphLaunch(s.fb_exec, s.stream));
        s.wq_current = true;
    } else if (s.fb_calls++ == 0) {  // the first call runs eagerly (cuBLAS heuristics, FP8 fallback decisions)
        device_work();
    } else {
        s.fb_has_fq = !s.wq_current;
        s.fb_exec = capture_graph(s.stream, device_work);
        AR_CUDA_CHECK(cudaGraphLaunch(s.fb_exec, s.stream));
        s.wq_current = true;
    }
    return s.read_loss(b);
}

void CudaBlockEngine::get_weight_grad(int which, float* dW) const {
    check(which >= 0 && which < kNumBlockLinears, "CUDA block engine: bad weight index ", which);
    const auto sh = block_linear_shape(p_->d, which);
    AR_CUDA_CHECK(cudaMemcpy(dW, p_->dW[which].p, size_t(sh[0] * sh[1]) * sizeof(float), cudaMemcpyDeviceToHost));
}

void CudaBlockEngine::forward_all(float* out) {
    Impl& s = *p_;
    const int64_t LH = s.L * s.d.hidden;
    for (int64_t s0 = 0; s0 < s.n; s0 += s.batch) {
        const int64_t b = std::min(s.batch, s.n - s0);
        s.forward_chunk(s0, b);  // (out may alias the host inputs: chunk s0 is read before it is written)
        if (s.bf) {  // the block outputs of a bf16 model (see the header)
            round_bf16_kernel<<<grid_for(b * LH), kThreads, 0, s.stream>>>(s.Y.p, b * LH);
            AR_CUDA_CHECK(cudaGetLastError());
        }
        AR_CUDA_CHECK(cudaMemcpy(out + s0 * LH, s.Y.p, size_t(b * LH) * sizeof(float), cudaMemcpyDeviceToHost));
    }
}

void CudaBlockEngine::forward_all(CudaActivations& out) {
    Impl& s = *p_;
    check(!s.host, "CUDA block engine: forward_all into device activations needs device-resident inputs");
    check(out.n() == s.n && out.L() == s.L && out.H() == s.d.hidden, "CUDA block engine: forward_all output [",
          out.n(), ", ", out.L(), ", ", out.H(), "] does not match the inputs [", s.n, ", ", s.L, ", ", s.d.hidden, "]");
    const bool out_bf16 = out.storage() == ActivationStorage::Bf16;
    check(!out_bf16 || s.bf, "CUDA block engine: bf16 activations need the Bf16 engine");
    const int64_t LH = s.L * s.d.hidden;
    for (int64_t s0 = 0; s0 < s.n; s0 += s.batch) {
        const int64_t b = std::min(s.batch, s.n - s0), cnt = b * LH;
        s.forward_chunk(s0, b);  // chunk s0 is read before it is overwritten below
        if (out_bf16) {
            f2bf_kernel<<<grid_for(cnt), kThreads, 0, s.stream>>>(s.Y.p, static_cast<bf16*>(out.data()) + s0 * LH, cnt);
        } else {
            if (s.bf) round_bf16_kernel<<<grid_for(cnt), kThreads, 0, s.stream>>>(s.Y.p, cnt);
            AR_CUDA_CHECK(cudaMemcpyAsync(static_cast<float*>(out.data()) + s0 * LH, s.Y.p, size_t(cnt) * sizeof(float),
                                          cudaMemcpyDeviceToDevice, s.stream));
        }
        AR_CUDA_CHECK(cudaGetLastError());
    }
    AR_CUDA_CHECK(cudaDeviceSynchronize());
}

double CudaBlockEngine::masked_mse_all(const CudaActivations& pred, const CudaActivations& ref, bool mask_last_token) {
    Impl& s = *p_;
    check(pred.count() == ref.count() && pred.n() == s.n && pred.L() == s.L && pred.H() == s.d.hidden &&
              pred.storage() == ref.storage(),
          "CUDA block engine: masked_mse_all of [", pred.n(), ", ", pred.L(), ", ", pred.H(), "] vs [", ref.n(), ", ",
          ref.L(), ", ", ref.H(), "]");
    const bool bf = pred.storage() == ActivationStorage::Bf16;
    const int64_t LH = s.L * s.d.hidden;
    const double denom = double(s.n) * double(LH);
    double total = 0.0;
    for (int64_t s0 = 0; s0 < s.n; s0 += s.batch) {
        const int64_t b = std::min(s.batch, s.n - s0), N = b * s.L;
        const float* yp = s.Y.p;
        if (bf)  // widen the prediction chunk into the sub-batch's Y scratch (the targets are read in place)
            bf2f_kernel<<<grid_for(N * s.d.hidden), kThreads, 0, s.stream>>>(static_cast<const bf16*>(pred.data()) + s0 * LH,
                                                                              s.Y.p, N * s.d.hidden);
        else
            yp = static_cast<const float*>(pred.data()) + s0 * LH;
        const size_t elem = bf ? sizeof(bf16) : sizeof(float);
        const InRows rr{static_cast<const char*>(ref.data()) + size_t(s0 * LH) * elem, bf, nullptr};
        // the gradient outputs land in the sub-batch's dY scratch and are not used
        with_rows(rr, [&](auto* rp) {
            mse_kernel<<<unsigned(N), kThreads, 0, s.stream>>>(yp, nullptr, rp,
                                                               s.sample_mask.p ? s.sample_mask.p + s0 * s.L : nullptr,
                                                               s.L, s.d.hidden, mask_last_token, denom, 0.0, s.dY.p,
                                                               nullptr, s.partial.p);
        });
        AR_CUDA_CHECK(cudaGetLastError());
        AR_CUDA_CHECK(cudaMemcpyAsync(s.partial_host.p, s.partial.p, size_t(N) * sizeof(double), cudaMemcpyDeviceToHost,
                                      s.stream));
        AR_CUDA_CHECK(cudaStreamSynchronize(s.stream));
        for (int64_t i = 0; i < N; ++i) total += s.partial_host.p[i];
    }
    return total / denom;
}

// ---- CudaActivations ----------------------------------------------------------------------------------------

namespace {
size_t element_bytes(ActivationStorage st) { return st == ActivationStorage::Bf16 ? sizeof(bf16) : sizeof(float); }
constexpr int64_t kStageRows = int64_t(1) << 22;  // floats per conversion stage of upload/download (16 MiB)
}  // namespace

CudaActivations::CudaActivations(int64_t n, int64_t L, int64_t H, ActivationStorage storage)
    : n_(n), L_(L), H_(H), storage_(storage) {
    check(n > 0 && L > 0 && H > 0, "CUDA activations: empty shape [", n, ", ", L, ", ", H, "]");
    const size_t bytes = count() * element_bytes(storage);
    const std::string what = "the calibration activations [" + std::to_string(n) + ", " + std::to_string(L) + ", " +
                             std::to_string(H) + "]";
    p_ = device_alloc_or_fail(bytes, what.c_str(),
                              "use --low_gpu_mem_usage (activations in host memory), or fewer --nsamples or a "
                              "shorter --seqlen");
}

CudaActivations::CudaActivations(int64_t n, int64_t L, int64_t H, const float* host, ActivationStorage storage)
    : CudaActivations(n, L, H, storage) {
    upload(host);
}

CudaActivations::~CudaActivations() {
    if (p_) cudaFree(p_);
}

void CudaActivations::copy_from(const CudaActivations& src) {
    check(src.n_ == n_ && src.L_ == L_ && src.H_ == H_ && src.storage_ == storage_, "CUDA activations: copy of [",
          src.n_, ", ", src.L_, ", ", src.H_, "] into [", n_, ", ", L_, ", ", H_, "] (or another storage)");
    AR_CUDA_CHECK(cudaMemcpy(p_, src.p_, count() * element_bytes(storage_), cudaMemcpyDeviceToDevice));
}

void CudaActivations::download(float* host) const {
    if (storage_ == ActivationStorage::Fp32) {
        AR_CUDA_CHECK(cudaMemcpy(host, p_, count() * sizeof(float), cudaMemcpyDeviceToHost));
        return;
    }
    DevBuf<float> stage;
    stage.ensure(size_t(std::min<int64_t>(kStageRows, int64_t(count()))), "the activation download stage");
    for (int64_t i = 0; i < int64_t(count()); i += kStageRows) {
        const int64_t c = std::min<int64_t>(kStageRows, int64_t(count()) - i);
        bf2f_kernel<<<grid_for(c), kThreads>>>(static_cast<const bf16*>(p_) + i, stage.p, c);
        AR_CUDA_CHECK(cudaGetLastError());
        AR_CUDA_CHECK(cudaMemcpy(host + i, stage.p, size_t(c) * sizeof(float), cudaMemcpyDeviceToHost));
    }
}

void CudaActivations::upload(const float* host) {
    if (storage_ == ActivationStorage::Fp32) {
        AR_CUDA_CHECK(cudaMemcpy(p_, host, count() * sizeof(float), cudaMemcpyHostToDevice));
        return;
    }
    DevBuf<float> stage;
    stage.ensure(size_t(std::min<int64_t>(kStageRows, int64_t(count()))), "the activation upload stage");
    for (int64_t i = 0; i < int64_t(count()); i += kStageRows) {
        const int64_t c = std::min<int64_t>(kStageRows, int64_t(count()) - i);
        AR_CUDA_CHECK(cudaMemcpy(stage.p, host + i, size_t(c) * sizeof(float), cudaMemcpyHostToDevice));
        f2bf_kernel<<<grid_for(c), kThreads>>>(stage.p, static_cast<bf16*>(p_) + i, c);
        AR_CUDA_CHECK(cudaGetLastError());
    }
    AR_CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace autoround
