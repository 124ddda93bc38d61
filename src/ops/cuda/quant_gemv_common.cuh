// ops/cuda/quant_gemv_common.cuh — the pieces that quant_gemv (quant_gemv.cu) and quant_gemv_fast
// (quant_gemv_fast.cu) share: the streaming loads of a packed weight's words, the loads of a group's raw scales and
// zeros, the staging of 32 x values from shared memory, the CTA reduction of the per-warp column sums into y, and on
// the host the argument checks, the alignment test of the 16-byte path, the resident-CTA count and the launch of a
// k-split grid.
//
// Why: both GEMVs read the same GPTQ layout (ops/cuda/quant_gemv.h) with the same work split (a thread owns VEC
// adjacent columns, the k axis cut into 32-input blocks, CTAs splitting the blocks, atomics across splits); only the
// arithmetic per weight differs. One copy of the load and reduction code keeps the two kernels' memory access and
// summation order the same by construction.
//
// The device helpers are templated on the kernel's argument struct, which must have the members
//   qw [k·bits/32, n], scales [k/group_len, n] (fp16 bits), zeros [k/group_len, n], y [n], n, nblk,
//   blocks_per_group, blocks_per_cta, atomic, accumulate
// (see GemvArgs in quant_gemv.cu, FastArgs in quant_gemv_fast.cu). Included only by those two .cu files.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>

#include "core/error.h"
#include "export/pack_layout.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.cuh"
#include "ops/cuda/quant_gemv.h"

namespace autoround {
namespace quant_gemv_detail {

// ---- device ----------------------------------------------------------------------------------------------------

constexpr uint32_t kF32MagicBits = 0x4B000000u;  // 2^23 as float bits: q in the low mantissa bits -> 2^23 + q
constexpr float kF32Magic = 8388608.f;           // 2^23

// Read-once weight streams: bypass L1 (ld.global.nc.L1::no_allocate).
__device__ __forceinline__ uint4 ld_stream4(const void* p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}
__device__ __forceinline__ uint32_t ld_stream1(const uint32_t* p) {
    uint32_t r;
    asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(r) : "l"(p));
    return r;
}

__device__ __forceinline__ float fp16_bits_to_float(uint32_t h) {
    return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
}

// q[j][c] = word j of block b of column col0 + c (the B words of a 32-input block).
template <int B, int VEC, typename Args>
__device__ __forceinline__ void load_block(const Args& a, int b, int64_t col0, uint32_t (&q)[B][VEC]) {
    const uint32_t* p = a.qw + int64_t(b) * B * a.n + col0;
#pragma unroll
    for (int j = 0; j < B; ++j) {
        if constexpr (VEC == 4) {
            const uint4 v = ld_stream4(p + j * a.n);
            q[j][0] = v.x;
            q[j][1] = v.y;
            q[j][2] = v.z;
            q[j][3] = v.w;
        } else {
            q[j][0] = ld_stream1(p + j * a.n);
        }
    }
}

// qc[j] = q[j][c]: the B words of column col0 + c out of load_block's q.
template <int B, int VEC>
__device__ __forceinline__ void column_words(const uint32_t (&q)[B][VEC], int c, uint32_t (&qc)[B]) {
#pragma unroll
    for (int j = 0; j < B; ++j) qc[j] = q[j][c];
}

// The raw scales (fp16 pairs: column col0 + c in the low / high half of s.x (c = 0, 1) and s.y (c = 2, 3)) and zeros
// (byte c of z) of group g for the VEC columns from col0; VEC = 1: s.x and z hold the one column's values.
template <int VEC, typename Args>
__device__ __forceinline__ void load_group_raw(const Args& a, int g, int64_t col0, uint2& s, uint32_t& z) {
    const int64_t off = int64_t(g) * a.n + col0;
    if constexpr (VEC == 4) {
        s = __ldg(reinterpret_cast<const uint2*>(a.scales + off));              // 4 fp16
        z = __ldg(reinterpret_cast<const unsigned int*>(a.zeros + off));        // 4 uint8
    } else {
        s = make_uint2(__ldg(a.scales + off), 0u);
        z = __ldg(a.zeros + off);
    }
}
// Column c's fp16 scale bits and zero point out of load_group_raw's s and z.
__device__ __forceinline__ uint32_t group_scale_bits(const uint2& s, int c) {
    return c < 2 ? (c == 0 ? s.x & 0xffffu : s.x >> 16) : (c == 2 ? s.y & 0xffffu : s.y >> 16);
}
__device__ __forceinline__ uint32_t group_zero(uint32_t z, int c) { return (z >> (8 * c)) & 0xffu; }

// xr[0..32) = xs[0..32) (16-byte aligned shared memory, read as float4 broadcasts).
__device__ __forceinline__ void load_x32(const float* xs, float (&xr)[32]) {
    const float4* xv = reinterpret_cast<const float4*>(xs);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const float4 v = xv[i];
        xr[4 * i] = v.x;
        xr[4 * i + 1] = v.y;
        xr[4 * i + 2] = v.z;
        xr[4 * i + 3] = v.w;
    }
}

// The CTA's end: sum[c] is this thread's (lane of warp `warp`) total for column blockIdx.x·32·VEC + lane·VEC + c.
// red[w][t] = warp w's sum for column blockIdx.x·32·VEC + t; after a barrier the WARPS sums of each column are added
// in warp order and written to y (atomicAdd with several k splits; else y = or y +=).
template <int WARPS, int VEC, typename Args>
__device__ __forceinline__ void cta_reduce_store(const Args& a, float (&red)[WARPS][32 * VEC], const float (&sum)[VEC],
                                                 int lane, int warp) {
    if constexpr (VEC == 4) {
        reinterpret_cast<float4*>(red[warp])[lane] = make_float4(sum[0], sum[1], sum[2], sum[3]);
    } else {
        red[warp][lane] = sum[0];
    }
    __syncthreads();
    for (int t = threadIdx.x; t < 32 * VEC; t += 32 * WARPS) {
        const int64_t col = int64_t(blockIdx.x) * 32 * VEC + t;
        if (col >= a.n) continue;
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) s += red[w][t];
        if (a.atomic) atomicAdd(a.y + col, s);
        else a.y[col] = a.accumulate ? a.y[col] + s : s;
    }
}

// ---- host ------------------------------------------------------------------------------------------------------

inline bool is_aligned(const void* p, uintptr_t al) { return reinterpret_cast<uintptr_t>(p) % al == 0; }

inline bool ranges_overlap(const void* a, size_t abytes, const void* b, size_t bbytes) {
    const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
    return pa < pb + bbytes && pb < pa + abytes;
}

// The requirements of quant_gemv.h on the weight; fn names the caller in the error.
inline void check_weight(const DeviceQuantWeight& w, const char* fn) {
    check(pack::gptq_bits_ok(w.bits), fn, ": bits must be 2, 3, 4 or 8, got ", w.bits, " (weight [", w.n, ", ",
          w.k, "])");
    check(w.n >= 1 && w.n <= (int64_t(1) << 36), fn, ": n = ", w.n, " out of range (weight [", w.n, ", ", w.k, "])");
    check(w.k >= 32 && w.k % 32 == 0 && w.k <= (int64_t(1) << 30), fn, ": k = ", w.k,
          " must be a positive multiple of 32 (≤ 2^30) (weight [", w.n, ", ", w.k, "])");
    check(w.group_len >= 32 && w.group_len % 32 == 0 && w.k % w.group_len == 0, fn, ": group_len = ", w.group_len,
          " must be a multiple of 32 that divides k (weight [", w.n, ", ", w.k, "])");
    check(w.qweight && w.scales && w.zeros, fn, ": null qweight / scales / zeros (weight [", w.n, ", ", w.k, "])");
}

// The weight's arrays allow the 4-column vector loads.
inline bool vec4_ok(const DeviceQuantWeight& w) {
    return w.n % 4 == 0 && is_aligned(w.qweight, 16) && is_aligned(w.scales, 8) && is_aligned(w.zeros, 4);
}

// CTAs of `kernel` (launched with `threads` threads) resident at once on the current device (SMs × occupancy),
// cached per device in `cache` (one cache per kernel instance).
constexpr int kMaxCachedDevices = 64;
template <typename Kernel>
int resident_ctas(Kernel kernel, int threads, std::atomic<int> (&cache)[kMaxCachedDevices]) {
    int dev = 0;
    AR_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < kMaxCachedDevices) {
        const int v = cache[dev].load(std::memory_order_relaxed);
        if (v > 0) return v;
    }
    int sms = 0, per_sm = 0;
    AR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    AR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, 0));
    const int v = std::max(1, sms * std::max(1, per_sm));
    if (dev < kMaxCachedDevices) cache[dev].store(v, std::memory_order_relaxed);
    return v;
}

// Column tiles of cols_per_cta columns covering the weight's n (checked to fit grid.x).
inline int64_t column_tiles(const DeviceQuantWeight& w, int64_t cols_per_cta, const char* fn) {
    const int64_t gx = (w.n + cols_per_cta - 1) / cols_per_cta;
    check(gx <= INT_MAX, fn, ": n = ", w.n, " too large");
    return gx;
}

// Fills the argument members shared by both kernels (see the file header) for a grid of `splits` k splits of bpc
// blocks each, zeroes y for y = with several splits (they add into it atomically) and launches
// kernel<<<(gx, splits), threads>>>(a) on `stream` (with programmatic dependent launch when `pdl`: the kernel keeps
// the contract of ops/cuda/pdl.cuh).
template <typename Kernel, typename Args>
void launch_split_grid(Kernel kernel, int threads, Args& a, const DeviceQuantWeight& w, float* y, bool accumulate,
                       int64_t gx, int nblk, int bpc, int64_t splits, const char* fn, cudaStream_t stream,
                       bool pdl = false) {
    check(splits <= 65535, fn, ": k = ", w.k, " too large");
    a.qw = w.qweight;
    a.scales = w.scales;
    a.zeros = w.zeros;
    a.y = y;
    a.n = w.n;
    a.nblk = nblk;
    a.blocks_per_group = static_cast<int>(w.group_len / 32);
    a.blocks_per_cta = bpc;
    a.atomic = splits > 1;
    a.accumulate = accumulate;
    if (a.atomic && !accumulate) AR_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(w.n) * sizeof(float), stream));
    if (pdl) {
        launch_pdl(kernel, dim3(unsigned(gx), unsigned(splits)), dim3(unsigned(threads)), 0, stream, a);
        return;
    }
    kernel<<<dim3(unsigned(gx), unsigned(splits)), threads, 0, stream>>>(a);
    AR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace quant_gemv_detail
}  // namespace autoround
