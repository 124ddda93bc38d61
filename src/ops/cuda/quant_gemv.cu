// ops/cuda/quant_gemv.cu — see quant_gemv.h. Batch-1 matrix–vector products for decode (packed GPTQ weights and
// dense bf16 weights) and the dequantization of a packed weight to bf16. Each kernel is built around its load
// pattern: 16-byte loads, coalesced across the warp, several in flight per thread.
//
// quant_gemv (CTA = 4 warps, grid = (column tiles, k splits)):
//   A thread owns VEC = 4 adjacent output columns (VEC = 1 when n % 4 != 0 or the arrays are not aligned for
//   vectors), so one 16-byte load fetches the same qweight word of 4 columns and a warp reads 512 contiguous bytes
//   of a qweight row; a CTA covers 32·VEC columns. The k axis is cut into 32-input blocks (`bits` qweight rows:
//   every 32 codes of a column fill exactly `bits` words, and a block never straddles a group since
//   group_len % 32 == 0); grid.y splits the blocks into S contiguous CTA ranges, chosen so that the grid fills the
//   resident-CTA capacity of the device once (n = 2560 gives only 20 column tiles, so S is ~30 there) while each
//   warp keeps ≥ 1 block; each warp takes a contiguous quarter of its CTA's range, with the next block's words and
//   its group's scales and zeros in flight while the current block is used (a new group's first scale load is an
//   L2 miss: loaded when needed, it stalled the warp once per group). x[k-range of the CTA] is staged in shared
//   memory (read as float4 broadcasts); the 4 warps' partial sums are reduced in shared memory, then across CTAs
//   with atomicAdd on y (y zeroed first with cudaMemsetAsync when !accumulate and S > 1; so the low bits of y
//   depend on the order the atomics land in). S = 1: plain stores.
//   Dequantization in registers, exact (w = bf16(float(s)·float(q − z)), the CPU model's value) without any
//   float→bf16 conversion instruction per weight (conversions issue at 1/8 of the FP32 rate):
//     bits 2, 3, 4: two codes at a time as a bf16x2 pair. The codes are placed in the low mantissa bits of the
//       bf16 128.0 (0x4300, ulp 1 in [128, 256); mask and magic are one LOP3 since the magic comes in as a kernel
//       parameter): v = 128 + q exactly; d = v − (128 + z) (exact, |d| ≤ 16 for z ≤ 2^bits); the fp16 scale is
//       split once per group into bf16 parts s = s_hi + s_lo (s_hi = bf16(s); s_lo = s − s_hi is exactly a bf16:
//       at most 3 significant bits, |s_lo| ≤ 4 fp16 ulps); c = s_lo·d is exact in bf16 (an integer multiple ≤ 64
//       of one ulp), so w = fma_bf16(s_hi, d, c) = round(s_hi·d + s_lo·d) = round(s·d), one rounding: exactly the
//       CPU's bf16(s·d) (s·d itself is exact in FP32: 11 × 5 significant bits). Only the sign of a zero weight may
//       differ (−0 vs +0), which a product with x cannot see. Tested for every finite fp16 scale.
//     bits 8: |d| up to 255 breaks the exactness of s_lo·d, so FP32: v = 2^23 + q via one byte permute,
//       d = v − (2^23 + z), s·d (exact), one packed cvt.rn.bf16x2 per two weights.
//   The products w·x and all sums are FP32 (FFMA; two accumulators per column).
//   Measured (H200, 4225 GB/s copy bandwidth, bench/bench_quant_gemv.cpp, bits 4, group 128, y +=): 1.07–1.95
//   TB/s, 25–46% of the copy bandwidth (Qwen3-8B gate|up [24576, 4096]: 27.1 µs). The kernel is issue bound, not
//   memory bound (ncu: ~75% issue slots busy, ~6 instructions per weight per lane: unpack, 3 bf16x2 ops per pair,
//   bf16→FP32 unpack, FFMA); the small layers (5–13 MB) are dominated by the ~3–4 µs a kernel needs to fill and
//   drain the memory pipeline. Tried and slower on the H200: a tensor-core variant (the dequantized bf16x2 pairs fed
//   straight to mma.m16n8k16 as A fragments, x split exactly into three bf16 columns of B; register- or
//   cp.async-staged, 2–10 stages): 1.5–1.8 TB/s; and 6 or 8 CTAs per SM (spills). AR_QG_MIN_CTAS exists only for
//   such tuning experiments; the default is the measured best.
// bf16_gemv: one warp per row (8 rows per CTA), 4 independent 16-byte loads in flight per lane, FP32 FMAs, a
//   shuffle reduction; no atomics. Measured (H200): LM head [151936, 2560] 178 µs, 4.38 TB/s (103% of the copy
//   bandwidth: reads only); [4096, 4096] 11.1 µs, 3.0 TB/s (71%: the fill/drain time again).
// quant_dequantize_bf16: a CTA dequantizes a tile of 32 columns × 256 inputs: each thread one (column, 32-block)
//   from coalesced qweight row reads into a padded shared-memory tile (the FP32 path above, so bit-exact, zero signs
//   included), then the tile's 32 output rows are written as 512-byte runs of 16-byte stores. Measured (H200):
//   3.5–3.8 TB/s read + written, 83–89% of the copy bandwidth.
// Every launch is asynchronous, allocates nothing and reads no device memory on the host, so all three can be
// captured in a CUDA graph. The launch shape depends on the device's SM count and occupancy, read once per device
// and cached (cudaOccupancy… calls are legal during stream capture; tested).
// The weight loads, the CTA reduction, the argument checks and the k-split launch are shared with quant_gemv_fast.cu
// (ops/cuda/quant_gemv_common.cuh).
#include "ops/cuda/quant_gemv.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "export/pack_layout.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/quant_gemv_common.cuh"

namespace autoround {
namespace {

using namespace quant_gemv_detail;  // the loads, reductions and host checks shared with quant_gemv_fast.cu

// ---- bf16 device helpers ---------------------------------------------------------------------------------------

__device__ __forceinline__ __nv_bfloat162 as_bf162(uint32_t u) {
    __nv_bfloat162 r;
    static_assert(sizeof(r) == sizeof(u), "bf16x2 is 4 bytes");
    memcpy(&r, &u, sizeof u);
    return r;
}
__device__ __forceinline__ uint32_t bits_of(__nv_bfloat162 v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}
// The two floats of a bf16x2 bit pattern (low half = element 0).
__device__ __forceinline__ float bf_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }

constexpr uint32_t kBf16Magic2 = 0x43004300u;  // bf16x2 (128, 128): q in the low 7 mantissa bits -> 128 + q

// Per-column, per-group constants of the dequantization.
struct Bf16Par {  // bits 2, 3, 4
    __nv_bfloat162 shi, slo, zm;  // (s_hi, s_hi), (s_lo, s_lo), (128 + z, 128 + z)
};
struct F32Par {  // bits 8
    float s, zm;  // s, 2^23 + z
};
template <int B>
using Par = std::conditional_t<B == 8, F32Par, Bf16Par>;

template <int B>
__device__ __forceinline__ Par<B> make_par(uint32_t sbits, uint32_t z) {
    const float s = fp16_bits_to_float(sbits);
    if constexpr (B == 8) {
        return F32Par{s, kF32Magic + float(z)};
    } else {
        const __nv_bfloat16 hi = __float2bfloat16_rn(s);
        const __nv_bfloat16 lo = __float2bfloat16_rn(s - __bfloat162float(hi));  // exact (see the file header)
        return Bf16Par{__bfloat162bfloat162(hi), __bfloat162bfloat162(lo),
                       __bfloat162bfloat162(__float2bfloat16_rn(128.f + float(z)))};
    }
}

// The bf16x2 weights of a code pair: v = raw | kBf16Magic2, raw holding code lo at bits 0.. and code hi at bits 16..
__device__ __forceinline__ uint32_t deq_magic(uint32_t v, const Bf16Par& p) {
    const __nv_bfloat162 d = __hsub2(as_bf162(v), p.zm);       // q − z, exact
    return bits_of(__hfma2(d, p.shi, __hmul2_rn(d, p.slo)));  // bf16(s·d), one rounding
}

// acc[0] + acc[1] += Σ w·x over the 32 weights of one column's block: q[0..B) its words, xr[0..32) the block's x,
// magic = kBf16Magic2. The low weight of each pair goes to acc[0], the high one to acc[1] (two FMA chains).
template <int B>
__device__ __forceinline__ void dot_block(const uint32_t (&q)[B], const Par<B>& p, uint32_t magic,
                                          const float (&xr)[32], float (&acc)[2]) {
    if constexpr (B == 8) {
#pragma unroll
        for (int w = 0; w < 8; ++w) {  // word w holds codes 4w .. 4w+3 (byte j = code 4w + j)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int j = 2 * h;
                // __byte_perm(q, 0x4B000000, 0x7540 | j): bytes (q.byte[j], 0, 0, 0x4B) = float 2^23 + q
                const float d0 = __fsub_rn(__uint_as_float(__byte_perm(q[w], 0x4B000000u, 0x7540u | j)), p.zm);
                const float d1 = __fsub_rn(__uint_as_float(__byte_perm(q[w], 0x4B000000u, 0x7540u | (j + 1))), p.zm);
                const uint32_t u = bits_of(__floats2bfloat162_rn(__fmul_rn(p.s, d0), __fmul_rn(p.s, d1)));
                acc[0] = fmaf(bf_lo(u), xr[4 * w + j], acc[0]);
                acc[1] = fmaf(bf_hi(u), xr[4 * w + j + 1], acc[1]);
            }
        }
    } else {
#pragma unroll
        for (int pi = 0; pi < 16; ++pi) {  // 16 pairs (code lo at bits 0.., code hi at bits 16..)
            uint32_t raw;
            int lo, hi;
            if constexpr (B == 3) {  // codes i and i + 16 (3-bit codes straddle words: the generic stream read)
                lo = pi;
                hi = pi + 16;
                raw = pack::gptq_get(q, 1, lo, 3) | (pack::gptq_get(q, 1, hi, 3) << 16);
            } else {  // B = 2, 4: word w holds codes pf·w .. pf·w + pf − 1; pair (j, j + pf/2) is 16 bits apart
                constexpr int pf = 32 / B, half = pf / 2;
                const int w = pi / half, j = pi % half;
                lo = pf * w + j;
                hi = lo + half;
                raw = (q[w] >> (B * j)) & (pack::code_mask(B) * 0x00010001u);
            }
            const uint32_t u = deq_magic(raw | magic, p);
            acc[0] = fmaf(bf_lo(u), xr[lo], acc[0]);
            acc[1] = fmaf(bf_hi(u), xr[hi], acc[1]);
        }
    }
}

// ---- quant_gemv ------------------------------------------------------------------------------------------------

#ifndef AR_QG_MIN_CTAS
#define AR_QG_MIN_CTAS 4  // CTAs per SM the registers must allow: ≤ 128 registers (the best of 1, 4, 5, 6)
#endif
constexpr int kWarps = 4;  // warps per CTA: each a contiguous slice of the CTA's k range
constexpr int kThreads = 32 * kWarps;
constexpr int kMaxBlocksPerCta = 64;  // 32-input blocks per CTA at most: the x chunk is ≤ 2048 floats (8 KB)

struct GemvArgs {
    const uint32_t* qw;      // [k·bits/32, n]
    const uint16_t* scales;  // [k/group_len, n] fp16
    const uint8_t* zeros;    // [k/group_len, n]
    const float* x;          // [k]
    float* y;                // [n]
    int64_t n;
    int nblk;              // k / 32
    int blocks_per_group;  // group_len / 32
    int blocks_per_cta;    // the k split: CTA y covers blocks [y·blocks_per_cta, ...)
    uint32_t magic;        // kBf16Magic2, as a kernel parameter: (w & mask) | magic is then one LOP3
    bool atomic;           // add the CTA's sums to y atomically (gridDim.y > 1)
    bool accumulate;       // (gridDim.y == 1) y += sum instead of y = sum
};

// s[c], z[c] = raw fp16 scale and zero of group g, column col0 + c.
template <int VEC>
__device__ __forceinline__ void load_group(const GemvArgs& a, int g, int64_t col0, uint32_t (&s)[VEC],
                                           uint32_t (&z)[VEC]) {
    uint2 sv;
    uint32_t zv;
    load_group_raw<VEC>(a, g, col0, sv, zv);
#pragma unroll
    for (int c = 0; c < VEC; ++c) {
        s[c] = group_scale_bits(sv, c);
        z[c] = group_zero(zv, c);
    }
}

template <int B, int VEC>
__global__ void __launch_bounds__(kThreads, AR_QG_MIN_CTAS) quant_gemv_kernel(const GemvArgs a) {
    __shared__ __align__(16) float xs[kMaxBlocksPerCta * 32];  // x[kb0·32 ..) of this CTA
    __shared__ __align__(16) float red[kWarps][32 * VEC];      // per-warp partial sums of the CTA's columns
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kb0 = blockIdx.y * a.blocks_per_cta;
    const int nb = min(a.blocks_per_cta, a.nblk - kb0);  // ≥ 1 (the launch makes every CTA non-empty)
    const int per = (nb + kWarps - 1) / kWarps;         // this warp's blocks: [wb0, wb1)
    const int wb0 = kb0 + min(nb, warp * per), wb1 = kb0 + min(nb, (warp + 1) * per);
    const int64_t col0 = (int64_t(blockIdx.x) * 32 + lane) * VEC;  // this thread's columns col0 .. col0 + VEC − 1
    const bool active = col0 < a.n;                                 // n % VEC == 0: all VEC columns or none

    // The next block's words and its group's raw scales and zeros, in flight while x is staged / the current block
    // is used.
    uint32_t qn[B][VEC] = {}, sn[VEC] = {}, zn[VEC] = {};
    int gn = 0;
    if (active && wb0 < wb1) {
        load_block<B, VEC>(a, wb0, col0, qn);
        gn = wb0 / a.blocks_per_group;
        load_group<VEC>(a, gn, col0, sn, zn);
    }
    for (int i = threadIdx.x; i < nb * 32; i += kThreads) xs[i] = a.x[int64_t(kb0) * 32 + i];
    __syncthreads();

    float acc[VEC][2] = {};
    if (active) {
        int gcur = -1;
        Par<B> par[VEC];
        for (int b = wb0; b < wb1; ++b) {
            uint32_t q[B][VEC], sc[VEC], zc[VEC];
            const int g = gn;
#pragma unroll
            for (int c = 0; c < VEC; ++c) {
#pragma unroll
                for (int j = 0; j < B; ++j) q[j][c] = qn[j][c];
                sc[c] = sn[c];
                zc[c] = zn[c];
            }
            if (b + 1 < wb1) {
                load_block<B, VEC>(a, b + 1, col0, qn);
                gn = (b + 1) / a.blocks_per_group;
                load_group<VEC>(a, gn, col0, sn, zn);
            }
            if (g != gcur) {  // warp-uniform: a new group
                gcur = g;
#pragma unroll
                for (int c = 0; c < VEC; ++c) par[c] = make_par<B>(sc[c], zc[c]);
            }

            float xr[32];
            load_x32(xs + (b - kb0) * 32, xr);
#pragma unroll
            for (int c = 0; c < VEC; ++c) {
                uint32_t qc[B];
                column_words<B, VEC>(q, c, qc);
                dot_block<B>(qc, par[c], a.magic, xr, acc[c]);
            }
        }
    }

    float sum[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) sum[c] = acc[c][0] + acc[c][1];
    cta_reduce_store<kWarps, VEC>(a, red, sum, lane, warp);
}

// ---- bf16_gemv -------------------------------------------------------------------------------------------------

#ifndef AR_QG_ROW_WARPS
#define AR_QG_ROW_WARPS 8
#endif
#ifndef AR_QG_ROW_UNROLL
#define AR_QG_ROW_UNROLL 4
#endif
constexpr int kRowWarps = AR_QG_ROW_WARPS;    // rows (warps) per CTA
constexpr int kRowUnroll = AR_QG_ROW_UNROLL;  // 16-byte loads in flight per lane

// One warp per row: y[row] (+)= Σ w[row][·]·x. kv = k / 8 (16-byte chunks per row). XVEC: x is 16-byte aligned.
template <bool XVEC>
__global__ void __launch_bounds__(32 * kRowWarps)
    bf16_gemv_kernel(const uint16_t* w, int64_t n, int kv, const float* x, float* y, bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t row = int64_t(blockIdx.x) * kRowWarps + (threadIdx.x >> 5);
    if (row >= n) return;  // whole warps only; no CTA barrier below
    const uint4* wr = reinterpret_cast<const uint4*>(w + row * int64_t(kv) * 8);
    float acc0 = 0.f, acc1 = 0.f;
    for (int i0 = lane; i0 < kv; i0 += 32 * kRowUnroll) {
        uint4 v[kRowUnroll];
#pragma unroll
        for (int u = 0; u < kRowUnroll; ++u) {
            const int i = i0 + 32 * u;
            v[u] = i < kv ? ld_stream4(wr + i) : make_uint4(0u, 0u, 0u, 0u);
        }
#pragma unroll
        for (int u = 0; u < kRowUnroll; ++u) {
            const int i = i0 + 32 * u;
            if (i >= kv) break;
            float xv[8];  // x[8i .. 8i + 8)
            if constexpr (XVEC) {
                const float4 a = __ldg(reinterpret_cast<const float4*>(x) + 2 * i);
                const float4 b = __ldg(reinterpret_cast<const float4*>(x) + 2 * i + 1);
                xv[0] = a.x, xv[1] = a.y, xv[2] = a.z, xv[3] = a.w, xv[4] = b.x, xv[5] = b.y, xv[6] = b.z, xv[7] = b.w;
            } else {
#pragma unroll
                for (int e = 0; e < 8; ++e) xv[e] = __ldg(x + 8 * int64_t(i) + e);
            }
            const uint32_t ws[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
            for (int e = 0; e < 4; ++e) {  // word e = bf16 elements 2e (low half), 2e + 1 (high half)
                acc0 = fmaf(bf_lo(ws[e]), xv[2 * e], acc0);
                acc1 = fmaf(bf_hi(ws[e]), xv[2 * e + 1], acc1);
            }
        }
    }
    float s = acc0 + acc1;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    if (lane == 0) y[row] = accumulate ? y[row] + s : s;
}

// ---- quant_dequantize_bf16 -------------------------------------------------------------------------------------

constexpr int kDqCols = 32;    // columns (output rows of `out`) per CTA
constexpr int kDqBlocks = 8;   // 32-input blocks per CTA: 256 inputs
constexpr int kDqThreads = 32 * kDqBlocks;
constexpr int kDqRow = kDqBlocks * 16 + 4;  // tile row in uint32 (bf16 pairs): 256 bf16 + 16 bytes of padding

template <int B>
__global__ void __launch_bounds__(kDqThreads)
    dequant_kernel(const uint32_t* qw, const uint16_t* scales, const uint8_t* zeros, int64_t n, int64_t k,
                   int nblk, int blocks_per_group, uint16_t* out) {
    __shared__ __align__(16) uint32_t tile[kDqCols][kDqRow];  // [column][bf16 pair along k]
    const int c = threadIdx.x & 31, bi = threadIdx.x >> 5;
    const int64_t col = int64_t(blockIdx.x) * kDqCols + c;
    const int b = blockIdx.y * kDqBlocks + bi;
    if (col < n && b < nblk) {
        uint32_t q[B];
#pragma unroll
        for (int j = 0; j < B; ++j) q[j] = __ldg(qw + (int64_t(b) * B + j) * n + col);  // coalesced along c
        const int64_t go = int64_t(b / blocks_per_group) * n + col;
        const float s = fp16_bits_to_float(__ldg(scales + go));
        const float zm = kF32Magic + float(__ldg(zeros + go));
        uint32_t* dst = &tile[c][bi * 16];
#pragma unroll
        for (int e = 0; e < 16; e += 4) {
            uint32_t o[4];
#pragma unroll
            for (int m = 0; m < 4; ++m) {  // pair p = e + m: codes 2p, 2p + 1
                const int i = 2 * (e + m);
                const float d0 = __fsub_rn(__uint_as_float(pack::gptq_get(q, 1, i, B) | 0x4B000000u), zm);
                const float d1 = __fsub_rn(__uint_as_float(pack::gptq_get(q, 1, i + 1, B) | 0x4B000000u), zm);
                o[m] = bits_of(__floats2bfloat162_rn(__fmul_rn(s, d0), __fmul_rn(s, d1)));
            }
            *reinterpret_cast<uint4*>(dst + e) = make_uint4(o[0], o[1], o[2], o[3]);
        }
    }
    __syncthreads();
    // 32 rows × 32 chunks of 16 bytes; a warp writes one row's 512 contiguous bytes.
    const int64_t k0 = int64_t(blockIdx.y) * kDqBlocks * 32;
#pragma unroll
    for (int it = 0; it < kDqCols * 32 / kDqThreads; ++it) {
        const int idx = it * kDqThreads + threadIdx.x;
        const int cc = idx >> 5, ch = idx & 31;
        const int64_t oc = int64_t(blockIdx.x) * kDqCols + cc, kk = k0 + ch * 8;
        if (oc < n && kk < k)
            *reinterpret_cast<uint4*>(out + oc * k + kk) = *reinterpret_cast<const uint4*>(&tile[cc][ch * 4]);
    }
}

// ---- host side -------------------------------------------------------------------------------------------------

// Launches kernel<<<(column tiles, k splits), threads>>> (cols_per_cta columns per CTA). The k splits: enough CTAs
// to fill the device once (resident CTAs / column tiles), each CTA ≥ min_blocks and ≤ kMaxBlocksPerCta 32-input
// blocks, none empty. With several splits the CTAs add into y atomically, after zeroing it for y =.
template <typename Kernel>
void launch_split(Kernel kernel, int threads, std::atomic<int> (&cache)[kMaxCachedDevices], int64_t cols_per_cta,
                  int min_blocks, int max_blocks, const DeviceQuantWeight& w, const float* x, float* y, bool accumulate,
                  cudaStream_t stream) {
    const int64_t gx = column_tiles(w, cols_per_cta, "quant_gemv");
    const int nblk = static_cast<int>(w.k / 32);
    const int64_t cap = resident_ctas(kernel, threads, cache);
    int64_t splits = std::max<int64_t>(1, cap / gx);
    splits = std::min<int64_t>(splits, std::max(1, nblk / min_blocks));
    splits = std::max<int64_t>(splits, (nblk + max_blocks - 1) / max_blocks);
    const int bpc = static_cast<int>((nblk + splits - 1) / splits);
    splits = (nblk + bpc - 1) / bpc;  // every CTA non-empty

    GemvArgs a;
    a.x = x;
    a.magic = kBf16Magic2;
    launch_split_grid(kernel, threads, a, w, y, accumulate, gx, nblk, bpc, splits, "quant_gemv", stream);
}

template <int B, int VEC>
void launch_simt(const DeviceQuantWeight& w, const float* x, float* y, bool accumulate, cudaStream_t stream) {
    static std::atomic<int> cache[kMaxCachedDevices];
    launch_split(quant_gemv_kernel<B, VEC>, kThreads, cache, 32 * VEC, kWarps, kMaxBlocksPerCta, w, x, y, accumulate,
                 stream);
}

}  // namespace

void quant_gemv(const DeviceQuantWeight& w, const float* x, float* y, bool accumulate, cudaStream_t stream) {
    const bool acc = accumulate;
    check_weight(w, "quant_gemv");
    check(x && y, "quant_gemv: null x or y (weight [", w.n, ", ", w.k, "])");
    check(!ranges_overlap(x, size_t(w.k) * 4, y, size_t(w.n) * 4), "quant_gemv: x and y overlap (weight [", w.n,
          ", ", w.k, "])");
    const bool vec4 = vec4_ok(w);
    switch (w.bits) {
        case 2: return vec4 ? launch_simt<2, 4>(w, x, y, acc, stream) : launch_simt<2, 1>(w, x, y, acc, stream);
        case 3: return vec4 ? launch_simt<3, 4>(w, x, y, acc, stream) : launch_simt<3, 1>(w, x, y, acc, stream);
        case 4: return vec4 ? launch_simt<4, 4>(w, x, y, acc, stream) : launch_simt<4, 1>(w, x, y, acc, stream);
        case 8: return vec4 ? launch_simt<8, 4>(w, x, y, acc, stream) : launch_simt<8, 1>(w, x, y, acc, stream);
        default: fail("quant_gemv: bits ", w.bits);
    }
}

void bf16_gemv(const uint16_t* w, int64_t n, int64_t k, const float* x, float* y, bool accumulate,
               cudaStream_t stream) {
    check(n >= 1 && k >= 8 && k % 8 == 0 && k <= (int64_t(1) << 30), "bf16_gemv: weight [", n, ", ", k,
          "]: need n ≥ 1 and k a positive multiple of 8");
    check(w && x && y, "bf16_gemv: null w, x or y (weight [", n, ", ", k, "])");
    check(is_aligned(w, 16), "bf16_gemv: w must be 16-byte aligned (weight [", n, ", ", k, "])");
    check(!ranges_overlap(x, size_t(k) * 4, y, size_t(n) * 4), "bf16_gemv: x and y overlap (weight [", n, ", ", k,
          "])");
    const int64_t grid = (n + kRowWarps - 1) / kRowWarps;
    check(grid <= INT_MAX, "bf16_gemv: n = ", n, " too large");
    const int kv = static_cast<int>(k / 8);
    if (is_aligned(x, 16))
        bf16_gemv_kernel<true><<<unsigned(grid), 32 * kRowWarps, 0, stream>>>(w, n, kv, x, y, accumulate);
    else
        bf16_gemv_kernel<false><<<unsigned(grid), 32 * kRowWarps, 0, stream>>>(w, n, kv, x, y, accumulate);
    AR_CUDA_CHECK(cudaGetLastError());
}

void quant_dequantize_bf16(const DeviceQuantWeight& w, uint16_t* out, cudaStream_t stream) {
    check_weight(w, "quant_dequantize_bf16");
    check(out && is_aligned(out, 16), "quant_dequantize_bf16: out must be a 16-byte aligned device pointer (weight [",
          w.n, ", ", w.k, "])");
    const int nblk = static_cast<int>(w.k / 32);
    const int64_t gx = (w.n + kDqCols - 1) / kDqCols, gy = (nblk + kDqBlocks - 1) / kDqBlocks;
    check(gx <= INT_MAX && gy <= 65535, "quant_dequantize_bf16: weight [", w.n, ", ", w.k, "] too large");
    const dim3 grid{static_cast<unsigned>(gx), static_cast<unsigned>(gy)};
    const int bpg = static_cast<int>(w.group_len / 32);
    auto run = [&](auto kernel) {
        kernel<<<grid, kDqThreads, 0, stream>>>(w.qweight, w.scales, w.zeros, w.n, w.k, nblk, bpg, out);
    };
    switch (w.bits) {
        case 2: run(dequant_kernel<2>); break;
        case 3: run(dequant_kernel<3>); break;
        case 4: run(dequant_kernel<4>); break;
        case 8: run(dequant_kernel<8>); break;
        default: fail("quant_dequantize_bf16: bits ", w.bits);
    }
    AR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace autoround
