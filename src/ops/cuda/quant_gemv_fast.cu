// ops/cuda/quant_gemv_fast.cu — quant_gemv_fast (ops/cuda/quant_gemv.h): the decode GEMV of a packed GPTQ weight in
// FP32 without the per-weight bf16 rounding, with RMSNorm or SwiGLU fused into the staging of x.
//
// Why: quant_gemv (quant_gemv.cu) reproduces bf16(s·(q − z)) for every weight, ~6 instructions per weight and lane,
// so it is issue bound at 0.8–1.5 TB/s on an H200. At 4.25 TB/s a 4-bit weight arrives every ~0.12 ns, and an SM
// issues 128 lane-instructions per clock: the budget is ~4 instructions per weight including loads and overheads.
// Here a weight costs ~3.1: one LOP3 (code | 2^23 bits), one FADD (− (2^23 + z), exact), one FFMA with x, plus one
// shift per 8 codes. And every decode kernel that can be fused away (RMSNorm before q|k|v and gate|up, SwiGLU before
// down, the memsets of the y = outputs) saves the fill and drain of one more kernel per layer.
//
// Codes without shifting every one down (bits 2 and 4): a 32-bit word is cut into halves (4-bit: q, q >> 16) or
// bytes (2-bit: q >> 8m); inside such a piece code i sits at bit B·i, i = 0..3, so (piece & (mask << B·i)) | 2^23
// is the float 2^23 + 2^(B·i)·q, exact (< 2^24). Subtracting 2^23 + 2^(B·i)·z (one per column, position and group)
// leaves 2^(B·i)·(q − z) exactly; x[k] was staged pre-multiplied by 2^−(B·(k mod 4)) (k mod 4 = i for both widths),
// so the product is (q − z)·x rounded once, as without the scaling (powers of two: exact unless |x| < 2^−114).
// 8-bit: one PRMT per code (byte → 2^23 + q); 3-bit codes straddle words: the generic stream read, then the magic.
//
// Work split (CTA = 8 warps, grid = (column tiles, k splits)): a thread owns VEC = 4 adjacent columns (16-byte loads
// of one qweight row: a warp reads 512 contiguous bytes; VEC = 1 when n % 4 != 0 or the arrays are misaligned), all
// 8 warps of a CTA share its 32·VEC columns and cut the CTA's range of 32-input blocks into 8 near-equal contiguous
// pieces. The k split count S is chosen from the device's resident-CTA capacity so that the last wave is nearly full
// (a grid of 1.15 waves takes as long as 2). Each warp walks its blocks in batches of U blocks (8 16-byte loads per
// thread for 4 and 8 bits) with the next batch in flight while the current one is used; the first batch is issued
// before x is staged, so the staging (and the RMSNorm reduction over all of x) hides under the weight latency.
// Partial sums: per 32-input block in FP32 (two chains per column), scaled by the group's scale into the column's
// running sum; then the CTA's 8 warps in shared memory (fixed order) and the S splits with atomicAdd (the low bits of
// y depend on the order the atomics land in; S = 1: plain stores).
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
constexpr int kFMaxBlocks = 64;  // 32-input blocks per CTA at most: the staged x chunk is ≤ 2048 floats (8 KB)

// Code positions per piece that share one zero constant: 4 for bits 2 and 4 (code i at bit B·i of its piece), 1 else.
template <int B>
constexpr int kPos = (B == 2 || B == 4) ? 4 : 1;
// Blocks per batch: 8 (4-bit: 4 words × 2) or 6/4 16-byte loads per thread in flight.
template <int B>
constexpr int kBatch = B == 8 ? 1 : 2;

// The power of two x[k] is staged with: 2^−(B·(k mod 4)) for bits 2 and 4 (undoes the code's position), else 1.
template <int B>
__device__ __forceinline__ float pos_scale(int64_t k) {
    if constexpr (kPos<B> == 4) {
        const int i = int(k & 3);
        return __uint_as_float(uint32_t(127 - B * i) << 23);  // 2^−(B·i), a normal float
    } else {
        return 1.f;
    }
}

// Σ over the 32 codes of one column's block of (q − z)·x, as two FMA chains. q[0..B) the block's words, zm[i] =
// 2^23 + 2^(B·i)·z, xr[0..32) the block's staged (pre-scaled) x.
template <int B>
__device__ __forceinline__ float dot_block_fast(const uint32_t (&q)[B], const float (&zm)[kPos<B>],
                                                const float (&xr)[32]) {
    float a0 = 0.f, a1 = 0.f;
    if constexpr (B == 2 || B == 4) {
        // word w: codes (32/B)·w .. (32/B)·w + 32/B − 1 (code j at bit B·j), cut into 8/B pieces of 4 codes
        // (4-bit: halves q, q >> 16; 2-bit: bytes q >> 8m); code i of a piece sits at bit B·i
        constexpr int per_word = 32 / B, pieces = 8 / B;
#pragma unroll
        for (int w = 0; w < B; ++w) {
#pragma unroll
            for (int m = 0; m < pieces; ++m) {
                const uint32_t t = q[w] >> (4 * B * m);
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const float v = __uint_as_float((t & (pack::code_mask(B) << (B * i))) | kF32MagicBits);
                    const float d = __fsub_rn(v, zm[i]);
                    if (i & 1) a1 = fmaf(d, xr[per_word * w + 4 * m + i], a1);
                    else a0 = fmaf(d, xr[per_word * w + 4 * m + i], a0);
                }
            }
        }
    } else if constexpr (B == 8) {
#pragma unroll
        for (int w = 0; w < 8; ++w) {  // word w: codes 4w .. 4w + 3 (byte j)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                // bytes (q.byte[j], 0, 0, 0x4B) = float 2^23 + q
                const float v = __uint_as_float(__byte_perm(q[w], kF32MagicBits, 0x7540u | uint32_t(j)));
                const float d = __fsub_rn(v, zm[0]);
                if (j & 1) a1 = fmaf(d, xr[4 * w + j], a1);
                else a0 = fmaf(d, xr[4 * w + j], a0);
            }
        }
    } else {  // B == 3: the generic stream read (constant offsets after unrolling)
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            const float v = __uint_as_float(pack::gptq_get(q, 1, i, 3) | kF32MagicBits);
            const float d = __fsub_rn(v, zm[0]);
            if (i & 1) a1 = fmaf(d, xr[i], a1);
            else a0 = fmaf(d, xr[i], a0);
        }
    }
    return a0 + a1;
}

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

// The raw words (q[j][c] = word j of column col0 + c) and the raw scales and zeros of its group, of block b.
template <int B, int VEC>
__device__ __forceinline__ void load_block_and_group(const FastArgs& a, int b, int64_t col0, uint32_t (&q)[B][VEC],
                                                     uint2& s, uint32_t& z) {
    load_block<B, VEC>(a, b, col0, q);
    load_group_raw<VEC>(a, b / a.blocks_per_group, col0, s, z);
}

template <int B, int VEC, int OP>
__global__ void __launch_bounds__(kFThreads, 2) quant_gemv_fast_kernel(const FastArgs a) {
    constexpr int U = kBatch<B>, P = kPos<B>;
    __shared__ __align__(16) float xs[kFMaxBlocks * 32];    // staged x[kb0·32 ..) of this CTA (pre-scaled)
    __shared__ __align__(16) float red[kFWarps][32 * VEC];  // per-warp partial sums of the CTA's columns
    __shared__ double redd[kFWarps];                        // RmsNorm: the sum of squares per warp
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int kb0 = blockIdx.y * a.blocks_per_cta;
    const int nb = min(a.blocks_per_cta, a.nblk - kb0);  // ≥ 1: the launch makes every CTA non-empty
    // this warp's blocks [wb0, wb1): a near-equal contiguous share of the CTA's nb blocks (may be empty)
    const int wb0 = kb0 + (nb * warp) / kFWarps, wb1 = kb0 + (nb * (warp + 1)) / kFWarps;
    const int64_t col0 = (int64_t(blockIdx.x) * 32 + lane) * VEC;  // this thread's columns col0 .. col0 + VEC − 1
    const bool active = col0 < a.n;                                 // n % VEC == 0: all VEC columns or none

    // The first batch's words and group data, in flight while x is staged.
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

    // Stage x[kb0·32, kb0·32 + nb·32), each value times its position's power of two. Four values per thread and
    // step, all of a thread's loads issued before they are used (the prologue is a chain of memory round trips that
    // the weight stream waits behind, so each round trip saved shows); the scalar loops where x is misaligned.
    const int64_t k0 = int64_t(kb0) * 32;
    const int cnt = nb * 32;
    const bool v4 = (reinterpret_cast<uintptr_t>(a.src) & 15) == 0 && (a.k & 3) == 0 &&
                    (OP != int(GemvPrologue::RmsNorm) || (reinterpret_cast<uintptr_t>(a.norm_w) & 15) == 0);
    float inv = 1.f;  // RmsNorm: 1 / rms(x)
    if constexpr (OP == int(GemvPrologue::RmsNorm)) {
        double ss = 0.0;  // fixed summation order per thread, then per warp, then over warps: every CTA the same bits
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
        for (int i = 0; i < kFWarps; ++i) tot += redd[i];  // fixed order: every CTA gets the same bits
        inv = 1.0f / sqrtf(float(tot / double(a.k)) + a.eps);
    }
    // x value of input k (the prologue applied), before the position scale
    auto x_of = [&](int64_t k, float src_k, float second) -> float {
        if constexpr (OP == int(GemvPrologue::RmsNorm)) return second * (src_k * inv);  // second = norm_w[k]
        else if constexpr (OP == int(GemvPrologue::SwiGlu)) return src_k / (1.0f + expf(-src_k)) * second;  // up[k]
        else return src_k;
    };
    const float* second = OP == int(GemvPrologue::RmsNorm) ? a.norm_w : (OP == int(GemvPrologue::SwiGlu) ? a.src + a.k : nullptr);
    if (v4) {
        for (int i = 4 * threadIdx.x; i < cnt; i += 4 * kFThreads) {
            const int64_t k = k0 + i;
            const float4 sv = __ldg(reinterpret_cast<const float4*>(a.src + k));
            const float4 tv = second ? __ldg(reinterpret_cast<const float4*>(second + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
            *reinterpret_cast<float4*>(xs + i) =
                make_float4(x_of(k, sv.x, tv.x) * pos_scale<B>(k), x_of(k + 1, sv.y, tv.y) * pos_scale<B>(k + 1),
                            x_of(k + 2, sv.z, tv.z) * pos_scale<B>(k + 2), x_of(k + 3, sv.w, tv.w) * pos_scale<B>(k + 3));
        }
    } else {
        for (int i = threadIdx.x; i < cnt; i += kFThreads) {
            const int64_t k = k0 + i;
            xs[i] = x_of(k, a.src[k], second ? second[k] : 0.f) * pos_scale<B>(k);
        }
    }
    __syncthreads();

    float yacc[VEC];
#pragma unroll
    for (int c = 0; c < VEC; ++c) yacc[c] = 0.f;
    if (active) {
        int gcur = -1;
        float zm[VEC][P], sf[VEC];
#pragma unroll
        for (int c = 0; c < VEC; ++c) {
            sf[c] = 0.f;
#pragma unroll
            for (int i = 0; i < P; ++i) zm[c][i] = kF32Magic;
        }
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
                const int g = bb / a.blocks_per_group;
                if (g != gcur) {  // warp-uniform: a new group's constants
                    gcur = g;
#pragma unroll
                    for (int c = 0; c < VEC; ++c) {
                        sf[c] = fp16_bits_to_float(group_scale_bits(s[u], c));
                        const uint32_t zc = group_zero(z[u], c);
#pragma unroll
                        for (int i = 0; i < P; ++i) zm[c][i] = kF32Magic + float(zc << (B * i));  // exact: < 2^24
                    }
                }
                float xr[32];
                load_x32(xs + (bb - kb0) * 32, xr);
#pragma unroll
                for (int c = 0; c < VEC; ++c) {
                    uint32_t qc[B];
                    column_words<B, VEC>(q[u], c, qc);
                    yacc[c] = fmaf(sf[c], dot_block_fast<B>(qc, zm[c], xr), yacc[c]);
                }
            }
        }
    }

    cta_reduce_store<kFWarps, VEC>(a, red, yacc, lane, warp);

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
    const int smax = std::max(smin, std::min(nblk / kFWarps, smin + 1024));
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
    const int64_t gx = column_tiles(w, 32 * VEC, "quant_gemv_fast");
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
    launch_split_grid(kernel, kFThreads, a, w, y, accumulate, gx, nblk, bpc, splits, "quant_gemv_fast", stream);
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
