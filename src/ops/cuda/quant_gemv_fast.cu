// ops/cuda/quant_gemv_fast.cu — quant_gemv_fast (ops/cuda/quant_gemv.h): the decode GEMV of a packed GPTQ weight
// without the per-weight bf16 rounding, with RMSNorm or SwiGLU fused into the staging of x.
//
// Why: quant_gemv (quant_gemv.cu) reproduces bf16(s·(q − z)) for every weight, ~6 instructions per weight and lane,
// so it is issue bound at 0.8–1.5 TB/s on an H200. At 4.25 TB/s a 4-bit weight arrives every ~0.12 ns and an SM
// issues 128 lane-instructions per clock: the budget is ~4 instructions per weight including loads and overheads,
// and the kernels must leave the issue slots to the loads' latency hiding. Every decode kernel that can be fused away
// (RMSNorm before q|k|v and gate|up, SwiGLU before down, the memsets of the y = outputs) saves the fill and drain of
// one more kernel per layer.
//
// Bits 2, 4, 8 (the integer path, details above block_term_int): x is staged per 32-input block as three int8 digit
// planes of a 21-bit fixed-point value, and Σ (q − z)·x is formed exactly in int32 by DP4A: per 8 four-bit codes one
// shift and two masks, then two DP4A per plane (~1.3 instructions per weight; ncu: the FP32 path below needed 4.5).
// Bits 3 (the FP32 path): codes straddle words; each code is read by the generic stream read and placed in the
// mantissa of 2^23, 2^23 + z subtracted (exact), one FFMA with x.
//
// Work split (CTA = 8 warps, grid = (CTA column ranges, k splits)): a thread owns VEC = 4 adjacent columns (16-byte
// loads of one qweight row: a warp reads 512 contiguous bytes; VEC = 1 when n % 4 != 0 or the arrays are
// misaligned), each warp one tile of 32·VEC columns and the CTA's whole range of 32-input blocks; the CTA's 8 warps
// take 8 adjacent tiles, so one staging of x serves 8·32·VEC columns (measured on an H200, Qwen3-8B decode: 1, 2, 4
// tiles per CTA with the k range split among the tile's warps gave 428 / 452 / 484 tok/s, 8 tiles 500). The k split
// count S is chosen from the device's resident-CTA capacity so that the last wave is nearly full (a grid of 1.15
// waves takes as long as 2). Each warp walks its blocks in batches of U blocks (8 16-byte loads per thread for 4 and
// 8 bits) with the next batch in flight while the current one is used; the first batch is issued before the kernel
// waits for its predecessor (programmatic dependent launch, ops/cuda/pdl.cuh) and before x is staged, so the launch,
// the staging and the RMSNorm reduction over all of x hide under the weight latency.
// Partial sums: per 32-input block and column, scaled by the group's scale into the column's running sum; then the
// tile's warps in shared memory (fixed order) and the S splits with atomicAdd (the low bits of y depend on the order
// the atomics land in; S = 1: plain stores).
// Tried and not kept (bench/results/gpu-inference-h200.md, session 10): one wave of CTAs over (column tile, block)
// units with a per-warp cp.async ring 4 units deep — as fast on gate|up, slower on o and down.
// The weight loads, the CTA reduction, the argument checks and the launch are shared with quant_gemv.cu
// (ops/cuda/quant_gemv_common.cuh).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "export/pack_layout.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/quant_gemv.h"
#include "ops/cuda/quant_gemv_common.cuh"

namespace autoround {
namespace {

using namespace quant_gemv_detail;  // the loads, reductions and host checks shared with quant_gemv.cu

constexpr int kFWarps = 8;
constexpr int kFThreads = 32 * kFWarps;
// Column tiles (32·VEC columns) per CTA, all served by one staging of x; each tile's kWarpsPerTile warps split the
// CTA's k range (1 here: see the file header for the measurements that chose it).
constexpr int kTilesPerCta = 8;
constexpr int kWarpsPerTile = kFWarps / kTilesPerCta;
constexpr int kFMaxBlocks = 64;  // 32-input blocks per CTA at most: the staged x chunk is ≤ 2048 floats (8 KB)

// Blocks per batch: 8 (4-bit: 4 words × 2) or 6/4 16-byte loads per thread in flight.
template <int B>
constexpr int kBatch = B == 8 ? 1 : 2;

// ---- the FP32 path (bits 3) ------------------------------------------------------------------------------------
// A code q becomes the float 2^23 + q by OR-ing in 2^23's bits (exact: q < 2^23); subtracting zm = 2^23 + z (exact)
// leaves q − z, and one FFMA with x adds (q − z)·x rounded once. 3-bit codes straddle words: the generic stream read.

// Σ over the 32 codes of one column's block of (q − z)·x, as two FMA chains. q[0..3) the block's words,
// zm = 2^23 + z, xr[0..32) the block's staged x.
__device__ __forceinline__ float dot_block_fp32(const uint32_t (&q)[3], float zm, const float (&xr)[32]) {
    float a0 = 0.f, a1 = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
        const float v = __uint_as_float(pack::gptq_get(q, 1, i, 3) | kF32MagicBits);
        const float d = __fsub_rn(v, zm);
        if (i & 1) a1 = fmaf(d, xr[i], a1);
        else a0 = fmaf(d, xr[i], a0);
    }
    return a0 + a1;
}
// 2^23 + z as float bits (exact).
__device__ __forceinline__ float zero_magic(uint32_t z) { return __uint_as_float(kF32MagicBits | z); }

struct FastArgs {
    const uint32_t* qw;      // [k·bits/32, n]
    const uint16_t* scales;  // [k/group_len, n] fp16
    const uint8_t* zeros;    // [k/group_len, n]
    const float* src;        // [k] or [2k] (GemvPrologue)
    const float* norm_w;     // [k] (RmsNorm)
    float eps;
    float* y;                // [n]
    float* zero;             // [zero_count] set to 0 (optional)
    int64_t zero_count;
    int64_t n;
    int k;
    int nblk;              // k / 32
    int blocks_per_group;  // group_len / 32
    int blocks_per_cta;    // CTA y covers blocks [y·blocks_per_cta, ...)
    bool atomic;           // several k splits: atomicAdd into y
    bool accumulate;       // S = 1: y += instead of y =
};

// ---- the integer path (bits 2, 4, 8) ---------------------------------------------------------------------------
// Why: the FP32 path costs one LOP3, one FADD and one FFMA per weight plus overheads; ncu of the 4B gate|up GEMV
// counted ~4.5 instructions per weight even with the single LOP3, and the kernel was issue bound at ~2 TB/s. Here x
// is staged per 32-input block as a 21-bit fixed-point integer X = round(x / 2^(e−14)) (e: the smallest with
// max|x| ≤ 126·2^e over the block, so |X| < 2^21), split into three int8 digit planes X = a1·2^14 + a2·2^7 + a3
// (|a1| ≤ 127, a2, a3 in [−64, 63]); Σ (q − z)·X is then exact in int32 from DP4A (four code × digit products and
// their sum per instruction): per 8 codes of 4 bits one shift and two masks to spread the codes into bytes, and two
// DP4A per plane, ~1.3 instructions per weight. The zero point enters as the chains' start −z·Σ a_p.
// Accuracy: each x is represented to 2^(e−15) ≤ 2^−21·max|x| of its block (FP32 represents it to 2^−24·|x|); the
// integer sums are exact, the rest is one conversion and the FP32 scale arithmetic. A one-hot x (a power of two) is
// represented exactly, so single weights come out exact as on the FP32 path. Non-finite x make the block's scale NaN.
template <int B>
constexpr bool kIntPath = B != 3;

// A staged block: the digit planes p[plane][word] (byte order of plane_pos), their sums s[plane], and 2^(e−14).
struct __align__(16) ActBlock {
    uint32_t p[3][8];
    int s[3];
    float scale;
    uint32_t pad[4];  // one 128-byte slot, as 32 staged floats on the FP32 path
};
static_assert(sizeof(ActBlock) == 128, "ActBlock is one x slot");

// Byte offset within a plane of input r of a block: the order in which block_term_int spreads a column's codes.
// 4-bit: word j (inputs 8j..8j+7) → (w & 0x0F0F0F0F) holds codes 0, 2, 4, 6 in bytes 0..3 and (w >> 4) & 0x0F0F0F0F
// codes 1, 3, 5, 7 (plane words 2j, 2j + 1); 2-bit: word j (16j..16j+15) → (w >> 2m) & 0x03030303 holds codes m, m + 4,
// m + 8, m + 12 (plane word 4j + m); 8-bit: word j holds codes 4j..4j+3 in its bytes.
template <int B>
__device__ __forceinline__ int plane_pos(int r) {
    if constexpr (B == 4) return (2 * (r >> 3) + (r & 1)) * 4 + ((r & 7) >> 1);
    else if constexpr (B == 2) return (4 * (r >> 4) + (r & 3)) * 4 + ((r & 15) >> 2);
    else return r;
}

// d = Σ_i u8(a.byte[i]) · s8(b.byte[i]) + c (codes up to 255 on the 8-bit path).
__device__ __forceinline__ int dp4a_us(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// A staged block in registers (7 16-byte shared-memory loads, shared by a thread's columns).
struct ActRegs {
    uint32_t p[3][8];
    int s[3];
    float scale;
};
__device__ __forceinline__ void load_act(const ActBlock* b, ActRegs& r) {
    const uint4* v = reinterpret_cast<const uint4*>(b);
#pragma unroll
    for (int i = 0; i < 6; ++i) {
        const uint4 t = v[i];
        r.p[i / 2][4 * (i % 2)] = t.x;
        r.p[i / 2][4 * (i % 2) + 1] = t.y;
        r.p[i / 2][4 * (i % 2) + 2] = t.z;
        r.p[i / 2][4 * (i % 2) + 3] = t.w;
    }
    const uint4 t = v[6];
    r.s[0] = int(t.x);
    r.s[1] = int(t.y);
    r.s[2] = int(t.z);
    r.scale = __uint_as_float(t.w);
}

// Σ over one column's block of (q − z)·x, before the group scale: 2^(e−14) · Σ (q − z)·X.
template <int B>
__device__ __forceinline__ float block_term_int(const uint32_t (&q)[B], int z, const ActRegs& x) {
    int e0 = -z * x.s[0], e1 = -z * x.s[1], e2 = -z * x.s[2];
    if constexpr (B == 4) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int lo = int(q[j] & 0x0F0F0F0Fu), hi = int((q[j] >> 4) & 0x0F0F0F0Fu);
            e0 = __dp4a(lo, int(x.p[0][2 * j]), e0);
            e1 = __dp4a(lo, int(x.p[1][2 * j]), e1);
            e2 = __dp4a(lo, int(x.p[2][2 * j]), e2);
            e0 = __dp4a(hi, int(x.p[0][2 * j + 1]), e0);
            e1 = __dp4a(hi, int(x.p[1][2 * j + 1]), e1);
            e2 = __dp4a(hi, int(x.p[2][2 * j + 1]), e2);
        }
    } else if constexpr (B == 2) {
#pragma unroll
        for (int j = 0; j < 2; ++j)
#pragma unroll
            for (int m = 0; m < 4; ++m) {
                const int c = int((q[j] >> (2 * m)) & 0x03030303u);
                e0 = __dp4a(c, int(x.p[0][4 * j + m]), e0);
                e1 = __dp4a(c, int(x.p[1][4 * j + m]), e1);
                e2 = __dp4a(c, int(x.p[2][4 * j + m]), e2);
            }
    } else {
        static_assert(B == 8, "integer path: bits 2, 4, 8");
#pragma unroll
        for (int j = 0; j < 8; ++j) {
            e0 = dp4a_us(q[j], x.p[0][j], e0);
            e1 = dp4a_us(q[j], x.p[1][j], e1);
            e2 = dp4a_us(q[j], x.p[2][j], e2);
        }
    }
    if constexpr (B <= 4) {
        // |e0| ≤ 32·15·127 < 2^16: e0·2^14 + e1·2^7 + e2 < 2^31, exact
        return float(e0 * 16384 + e1 * 128 + e2) * x.scale;
    } else {
        return fmaf(float(e0), 16384.f, fmaf(float(e1), 128.f, float(e2))) * x.scale;
    }
}


// The raw words (q[j][c] = word j of column col0 + c) and the raw scales and zeros of its group, of block b.
template <int B, int VEC>
__device__ __forceinline__ void load_block_and_group(const FastArgs& a, int b, int64_t col0, uint32_t (&q)[B][VEC],
                                                     uint2& s, uint32_t& z) {
    load_block<B, VEC>(a, b, col0, q);
    load_group_raw<VEC>(a, b / a.blocks_per_group, col0, s, z);
}

// RmsNorm: 1 / rms(x) from a reduction over all of x (every CTA in the same fixed order, so every CTA gets the same
// bits; ends with a barrier); other prologues: 1. All of the CTA's threads call it.
template <int OP>
__device__ __forceinline__ float rms_inv(const FastArgs& a, bool v4, double* redd, int lane, int warp) {
    if constexpr (OP != int(GemvPrologue::RmsNorm)) {
        return 1.f;
    } else {
        double ss = 0.0;  // fixed summation order per thread, then per warp, then over warps
        if (v4) {
            const float4* s4 = reinterpret_cast<const float4*>(a.src);
            const int n4 = a.k >> 2;
            for (int i0 = threadIdx.x; i0 < n4; i0 += 4 * kFThreads) {
                float4 v[4];
#pragma unroll
                for (int u = 0; u < 4; ++u)
                    v[u] = i0 + u * kFThreads < n4 ? __ldg(s4 + i0 + u * kFThreads) : make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
                for (int u = 0; u < 4; ++u)
                    ss += double(v[u].x) * v[u].x + double(v[u].y) * v[u].y + double(v[u].z) * v[u].z +
                          double(v[u].w) * v[u].w;
            }
        } else {
            for (int i = threadIdx.x; i < a.k; i += kFThreads) {
                const double v = double(a.src[i]);
                ss += v * v;
            }
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (lane == 0) redd[warp] = ss;
        __syncthreads();
        double tot = 0.0;
#pragma unroll
        for (int i = 0; i < kFWarps; ++i) tot += redd[i];
        return 1.0f / sqrtf(float(tot / double(a.k)) + a.eps);
    }
}

// The prologue's second input (RmsNorm: the norm weight; SwiGlu: up = src[k ..]) or null.
template <int OP>
__device__ __forceinline__ const float* second_input(const FastArgs& a) {
    return OP == int(GemvPrologue::RmsNorm) ? a.norm_w : (OP == int(GemvPrologue::SwiGlu) ? a.src + a.k : nullptr);
}
// x value of one input with the prologue applied: src_k = src[k], second = second_input[k], inv = rms_inv.
template <int OP>
__device__ __forceinline__ float x_value(float src_k, float second, float inv) {
    if constexpr (OP == int(GemvPrologue::RmsNorm)) return second * (src_k * inv);
    else if constexpr (OP == int(GemvPrologue::SwiGlu)) return src_k / (1.0f + expf(-src_k)) * second;
    else return src_k;
}

// Whether the staging may read x (and the RMSNorm weight) as float4: 16-byte aligned, k a multiple of 4.
template <int OP>
__device__ __forceinline__ bool x_loads_vec4(const FastArgs& a) {
    return (reinterpret_cast<uintptr_t>(a.src) & 15) == 0 && (a.k & 3) == 0 &&
           (OP != int(GemvPrologue::RmsNorm) || (reinterpret_cast<uintptr_t>(a.norm_w) & 15) == 0);
}

// FP32 path (bits 3): stages xs[i] = x[k_of(i)] (the prologue applied), i in [0, cnt) (cnt a multiple of 32; k_of
// maps a 4-aligned run of 4 slots to 4 consecutive inputs), then a barrier. Four values per thread and step, all of a
// thread's loads issued before they are used (the prologue is a chain of memory round trips that the weight stream
// waits behind, so each round trip saved shows); the scalar loop where x is misaligned.
template <int OP, typename KOf>
__device__ __forceinline__ void stage_x(const FastArgs& a, float* xs, int cnt, KOf k_of, double* redd, int lane,
                                        int warp) {
    const bool v4 = x_loads_vec4<OP>(a);
    const float inv = rms_inv<OP>(a, v4, redd, lane, warp);
    const float* second = second_input<OP>(a);
    if (v4) {
        for (int i = 4 * threadIdx.x; i < cnt; i += 4 * kFThreads) {
            const int64_t k = k_of(i);
            const float4 sv = __ldg(reinterpret_cast<const float4*>(a.src + k));
            const float4 tv = second ? __ldg(reinterpret_cast<const float4*>(second + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
            *reinterpret_cast<float4*>(xs + i) = make_float4(x_value<OP>(sv.x, tv.x, inv), x_value<OP>(sv.y, tv.y, inv),
                                                             x_value<OP>(sv.z, tv.z, inv), x_value<OP>(sv.w, tv.w, inv));
        }
    } else {
        for (int i = threadIdx.x; i < cnt; i += kFThreads) {
            const int64_t k = k_of(i);
            xs[i] = x_value<OP>(a.src[k], second ? second[k] : 0.f, inv);
        }
    }
    __syncthreads();
}

// Integer path: stages blk[s] for slots s in [0, nslots) (slot s holds inputs k_of(32·s + r), r = 0..31), one warp per
// slot, then a barrier.
template <int B, int OP, typename KOf>
__device__ __forceinline__ void stage_int(const FastArgs& a, ActBlock* blk, int nslots, KOf k_of, double* redd,
                                          int lane, int warp) {
    const bool v4 = x_loads_vec4<OP>(a);
    const float inv = rms_inv<OP>(a, v4, redd, lane, warp);
    const float* second = second_input<OP>(a);
    const int pos = plane_pos<B>(lane);
    for (int s = warp; s < nslots; s += kFWarps) {
        const int64_t k = k_of(32 * s + lane);
        const float x = x_value<OP>(__ldg(a.src + k), second ? __ldg(second + k) : 0.f, inv);
        // the block's max |x| (float bits of non-negative floats order as unsigned; NaN sorts above infinity)
        const float m = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(fabsf(x))));
        int a1 = 0, a2 = 0, a3 = 0;
        float scale;
        if (m <= 3.402823466e38f) {
            // e: the smallest with m ≤ 126·2^e (r = m/126 rounded down at most one ulp: |X| ≤ 126·2^14 + 1),
            // clamped below to −100 (inputs under 2^−115 become 0)
            const uint32_t rb = __float_as_uint(m * (1.f / 126.f));
            int e = int(rb >> 23) - 127 + ((rb & 0x7FFFFFu) != 0u);
            e = max(e, -100);
            const int X = __float2int_rn(x * __uint_as_float(uint32_t(14 - e + 127) << 23));  // x · 2^(14 − e)
            a3 = ((X + 64) & 127) - 64;
            const int X2 = (X - a3) >> 7;  // exact
            a2 = ((X2 + 64) & 127) - 64;
            a1 = (X2 - a2) >> 7;
            scale = __uint_as_float(uint32_t(e - 14 + 127) << 23);  // 2^(e − 14)
        } else {
            scale = __uint_as_float(0x7FC00000u);  // NaN: a non-finite x makes the block's sums NaN
        }
        unsigned char* planes = reinterpret_cast<unsigned char*>(blk[s].p);
        planes[pos] = static_cast<unsigned char>(a1);
        planes[32 + pos] = static_cast<unsigned char>(a2);
        planes[64 + pos] = static_cast<unsigned char>(a3);
        const int s1 = __reduce_add_sync(0xffffffffu, a1), s2 = __reduce_add_sync(0xffffffffu, a2),
                  s3 = __reduce_add_sync(0xffffffffu, a3);
        if (lane == 0) {
            blk[s].s[0] = s1;
            blk[s].s[1] = s2;
            blk[s].s[2] = s3;
            blk[s].scale = scale;
        }
    }
    __syncthreads();
}

template <int B, int VEC, int OP>
__global__ void __launch_bounds__(kFThreads, 2) quant_gemv_fast_kernel(const FastArgs a) {
    constexpr int U = kBatch<B>;
    __shared__ __align__(16) float xs[kFMaxBlocks * 32];    // staged x of this CTA's blocks: 32 floats or an ActBlock
    __shared__ __align__(16) float red[kFWarps][32 * VEC];  // per-warp partial sums of its tile's columns
    __shared__ double redd[kFWarps];                        // RmsNorm: the sum of squares per warp
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kb0 = blockIdx.y * a.blocks_per_cta;
    const int nb = min(a.blocks_per_cta, a.nblk - kb0);  // ≥ 1: the launch makes every CTA non-empty
    // this warp's tile and blocks [wb0, wb1): a near-equal contiguous share of the CTA's nb blocks (may be empty)
    const int tile = warp / kWarpsPerTile, slice = warp % kWarpsPerTile;
    const int wb0 = kb0 + (nb * slice) / kWarpsPerTile, wb1 = kb0 + (nb * (slice + 1)) / kWarpsPerTile;
    // this thread's columns col0 .. col0 + VEC − 1
    const int64_t col0 = ((int64_t(blockIdx.x) * kTilesPerCta + tile) * 32 + lane) * VEC;
    const bool active = col0 < a.n;                                 // n % VEC == 0: all VEC columns or none

    // The first batch's words and group data, in flight while x is staged. (Two buffers used in turn instead of the
    // copy below spilled at the 128-register bound and decoded 5 % slower.)
    uint32_t qn[U][B][VEC];
    uint2 sn[U];
    uint32_t zn[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
        sn[u] = make_uint2(0u, 0u);
        zn[u] = 0u;
#pragma unroll
        for (int j = 0; j < B; ++j)
#pragma unroll
            for (int c = 0; c < VEC; ++c) qn[u][j][c] = 0u;
        if (active && wb0 + u < wb1) load_block_and_group<B, VEC>(a, wb0 + u, col0, qn[u], sn[u], zn[u]);
    }
    // The weights are read-only: only now wait for the kernel before (ops/cuda/pdl.cuh), and let the next one start.
    pdl_trigger();
    pdl_wait();

    // Stage x[kb0·32, kb0·32 + nb·32) (slot i holds block kb0 + i).
    const auto k_of = [kb0](int i) { return int64_t(kb0) * 32 + i; };
    if constexpr (kIntPath<B>) stage_int<B, OP>(a, reinterpret_cast<ActBlock*>(xs), nb, k_of, redd, lane, warp);
    else stage_x<OP>(a, xs, nb * 32, k_of, redd, lane, warp);

    float yacc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) yacc[c] = 0.f;
    if (active) {
        int gend = -1;           // the current group ends before block gend
        float zm[VEC], sf[VEC];  // the group's constants per column (zm: FP32 path)
        int zi[VEC];             // integer path
#pragma unroll
        for (int c = 0; c < VEC; ++c) sf[c] = 0.f, zm[c] = kF32Magic, zi[c] = 0;
        for (int b = wb0; b < wb1; b += U) {
            uint32_t q[U][B][VEC];
            uint2 s[U];
            uint32_t z[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                s[u] = sn[u];
                z[u] = zn[u];
#pragma unroll
                for (int j = 0; j < B; ++j)
#pragma unroll
                    for (int c = 0; c < VEC; ++c) q[u][j][c] = qn[u][j][c];
            }
#pragma unroll
            for (int u = 0; u < U; ++u)  // the next batch in flight while this one is used
                if (b + U + u < wb1) load_block_and_group<B, VEC>(a, b + U + u, col0, qn[u], sn[u], zn[u]);
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int bb = b + u;
                if (bb >= wb1) break;  // warp-uniform
                if (bb >= gend) {      // warp-uniform: a new group's constants (one division per group)
                    gend = (bb / a.blocks_per_group + 1) * a.blocks_per_group;
#pragma unroll
                    for (int c = 0; c < VEC; ++c) {
                        sf[c] = fp16_bits_to_float(group_scale_bits(s[u], c));
                        zi[c] = int(group_zero(z[u], c));
                        zm[c] = zero_magic(uint32_t(zi[c]));
                    }
                }
                if constexpr (kIntPath<B>) {
                    ActRegs xr;
                    load_act(reinterpret_cast<const ActBlock*>(xs) + (bb - kb0), xr);
#pragma unroll
                    for (int c = 0; c < VEC; ++c) {
                        uint32_t qc[B];
                        column_words<B, VEC>(q[u], c, qc);
                        yacc[c] = fmaf(sf[c], block_term_int<B>(qc, zi[c], xr), yacc[c]);
                    }
                } else {
                    float xr[32];
                    load_x32(xs + (bb - kb0) * 32, xr);
#pragma unroll
                    for (int c = 0; c < VEC; ++c) {
                        uint32_t qc[3];
                        column_words<3, VEC>(q[u], c, qc);
                        yacc[c] = fmaf(sf[c], dot_block_fp32(qc, zm[c], xr), yacc[c]);
                    }
                }
            }
        }
    }

    // The CTA's end: each tile's column sums over its warps in warp order, then into y (atomically with k splits).
    // With one warp per tile this is a transpose through shared memory: consecutive threads then add into
    // consecutive columns. (Each thread adding its own 4 columns directly, 16 bytes apart across the warp, decoded
    // 15 % slower: 538 / 461 tok/s for 4B / 8B instead of 637 / 500.)
    if constexpr (VEC == 4) {
        reinterpret_cast<float4*>(red[warp])[lane] = make_float4(yacc[0], yacc[1], yacc[2], yacc[3]);
    } else {
        red[warp][lane] = yacc[0];
    }
    __syncthreads();
    for (int t = threadIdx.x; t < kTilesPerCta * 32 * VEC; t += kFThreads) {
        const int tl = t / (32 * VEC), tc = t % (32 * VEC);
        const int64_t col = (int64_t(blockIdx.x) * kTilesPerCta + tl) * 32 * VEC + tc;
        if (col >= a.n) continue;
        float sum = 0.f;
#pragma unroll
        for (int w = 0; w < kWarpsPerTile; ++w) sum += red[tl * kWarpsPerTile + w][tc];
        if (a.atomic) atomicAdd(a.y + col, sum);
        else a.y[col] = a.accumulate ? a.y[col] + sum : sum;
    }

    // The side job: zero the caller's other buffer (grid-strided over every CTA).
    if (a.zero) {
        const int64_t cta = int64_t(blockIdx.y) * gridDim.x + blockIdx.x;
        const int64_t stride = int64_t(gridDim.x) * gridDim.y * kFThreads;
        for (int64_t i = cta * kFThreads + threadIdx.x; i < a.zero_count; i += stride) a.zero[i] = 0.f;
    }
}

// ---- host side -------------------------------------------------------------------------------------------------

// The k split: S CTAs per column tile, each ≤ kFMaxBlocks blocks, none empty, ≥ 1 block per warp where k allows;
// among those, the fewest splits whose grid fills its last wave of resident CTAs to ≥ 90 % (else the best fill).
// Measured against alternatives on an H200 (Qwen3-4B / 8B decode, bench_quant_gemv): the fewest splits (≤ 64
// blocks per CTA) and the fewest splits with at least one full wave were 2–9 % slower per token (o and down lose most);
// with up to 128 blocks per CTA, one CTA per SM (long per-warp streams, gate|up at S = 1) was 5–16 % slower (gate|up
// 21.5 vs 18.0 µs): a warp keeps only one batch (4 KB) of loads ahead, so longer streams do not hide the latency.
// Returns blocks per CTA.
int choose_blocks_per_cta(int64_t gx, int nblk, int64_t cap) {
    const int smin = (nblk + kFMaxBlocks - 1) / kFMaxBlocks;
    const int smax = std::max(smin, std::min(nblk / kWarpsPerTile, smin + 1024));
    int best_bpc = (nblk + smin - 1) / smin;
    double best_fill = -1.0;
    for (int s = smin; s <= smax; ++s) {
        const int bpc = (nblk + s - 1) / s;
        const int64_t splits = (nblk + bpc - 1) / bpc;
        if (splits != s) continue;  // the same grid as a smaller s
        const double waves = double(gx * splits) / double(cap);
        const double fill = waves / std::ceil(waves);
        if (fill > best_fill + 1e-9) {
            best_fill = fill;
            best_bpc = bpc;
        }
        if (fill >= 0.9) break;
    }
    return best_bpc;
}

template <int B, int VEC, int OP>
void launch_fast(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool accumulate, float* zero,
                 int64_t zero_count, cudaStream_t stream) {
    static std::atomic<int> cache[kMaxCachedDevices];
    auto kernel = quant_gemv_fast_kernel<B, VEC, OP>;
    const int64_t gx = column_tiles(w, kTilesPerCta * 32 * VEC, "quant_gemv_fast");
    const int nblk = static_cast<int>(w.k / 32);
    const int bpc = choose_blocks_per_cta(gx, nblk, resident_ctas(kernel, kFThreads, cache));
    const int64_t splits = (nblk + bpc - 1) / bpc;

    FastArgs a;
    a.src = in.src;
    a.norm_w = in.norm_w;
    a.eps = in.eps;
    a.zero = zero_count > 0 ? zero : nullptr;
    a.zero_count = zero_count;
    a.k = static_cast<int>(w.k);
    launch_split_grid(kernel, kFThreads, a, w, y, accumulate, gx, nblk, bpc, splits, "quant_gemv_fast", stream,
                      /*pdl=*/true);
}

template <int B, int OP>
void dispatch_vec(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool acc, float* zero, int64_t zc,
                  cudaStream_t stream) {
    if (vec4_ok(w)) launch_fast<B, 4, OP>(w, in, y, acc, zero, zc, stream);
    else launch_fast<B, 1, OP>(w, in, y, acc, zero, zc, stream);
}

template <int OP>
void dispatch_bits(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool acc, float* zero, int64_t zc,
                   cudaStream_t stream) {
    switch (w.bits) {
        case 2: return dispatch_vec<2, OP>(w, in, y, acc, zero, zc, stream);
        case 3: return dispatch_vec<3, OP>(w, in, y, acc, zero, zc, stream);
        case 4: return dispatch_vec<4, OP>(w, in, y, acc, zero, zc, stream);
        case 8: return dispatch_vec<8, OP>(w, in, y, acc, zero, zc, stream);
        default: fail("quant_gemv_fast: bits ", w.bits);
    }
}

}  // namespace

void quant_gemv_fast(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool accumulate, cudaStream_t stream,
                     float* zero, int64_t zero_count) {
    const char* fn = "quant_gemv_fast";
    check_weight(w, fn);
    check(in.src && y && is_aligned(in.src, 4) && is_aligned(y, 4), fn, ": null or misaligned x or y (weight [", w.n,
          ", ", w.k, "])");
    const size_t src_bytes = size_t(w.k) * 4 * (in.op == GemvPrologue::SwiGlu ? 2 : 1);
    check(!ranges_overlap(in.src, src_bytes, y, size_t(w.n) * 4), fn, ": x and y overlap (weight [", w.n, ", ", w.k,
          "])");
    if (in.op == GemvPrologue::RmsNorm) {
        check(in.norm_w && is_aligned(in.norm_w, 4), fn, ": RmsNorm needs a norm weight (weight [", w.n, ", ", w.k,
              "])");
        check(!ranges_overlap(in.norm_w, size_t(w.k) * 4, y, size_t(w.n) * 4), fn, ": norm weight and y overlap");
    }
    check(zero_count >= 0, fn, ": negative zero_count");
    if (zero_count > 0) {
        check(zero && is_aligned(zero, 4), fn, ": null or misaligned zero buffer");
        const size_t zb = size_t(zero_count) * 4;
        check(!ranges_overlap(zero, zb, y, size_t(w.n) * 4) && !ranges_overlap(zero, zb, in.src, src_bytes) &&
                  (in.op != GemvPrologue::RmsNorm || !ranges_overlap(zero, zb, in.norm_w, size_t(w.k) * 4)),
              fn, ": the zero buffer overlaps y or the inputs");
    }
    switch (in.op) {
        case GemvPrologue::None:
            return dispatch_bits<int(GemvPrologue::None)>(w, in, y, accumulate, zero, zero_count, stream);
        case GemvPrologue::RmsNorm:
            return dispatch_bits<int(GemvPrologue::RmsNorm)>(w, in, y, accumulate, zero, zero_count, stream);
        case GemvPrologue::SwiGlu:
            return dispatch_bits<int(GemvPrologue::SwiGlu)>(w, in, y, accumulate, zero, zero_count, stream);
    }
    fail(fn, ": unknown prologue");
}

void quant_gemv_fast(const DeviceQuantWeight& w, const float* x, float* y, bool accumulate, cudaStream_t stream) {
    GemvInput in;
    in.src = x;
    quant_gemv_fast(w, in, y, accumulate, stream);
}

}  // namespace autoround
