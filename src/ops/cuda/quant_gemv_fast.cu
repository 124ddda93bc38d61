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

namespace autoround {
namespace {

constexpr int kFWarps = 8;
constexpr int kFThreads = 32 * kFWarps;
constexpr int kFMaxBlocks = 64;  // 32-input blocks per CTA at most: the staged x chunk is ≤ 2048 floats (8 KB)
constexpr uint32_t kMagicBits = 0x4B000000u;  // 2^23 as float bits
constexpr float kMagic = 8388608.f;

// Read-once weight streams: bypass L1.
__device__ __forceinline__ uint4 ldg_stream4(const void* p) {
    uint4 r;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
        : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
        : "l"(p));
    return r;
}
__device__ __forceinline__ uint32_t ldg_stream1(const uint32_t* p) {
    uint32_t r;
    asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(r) : "l"(p));
    return r;
}

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
    if constexpr (B == 4) {
#pragma unroll
        for (int w = 0; w < 4; ++w) {  // word w: codes 8w .. 8w + 7 (code j at bit 4j)
#pragma unroll
            for (int h = 0; h < 2; ++h) {
                const uint32_t t = h ? (q[w] >> 16) : q[w];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const float v = __uint_as_float((t & (0xFu << (4 * i))) | kMagicBits);
                    const float d = __fsub_rn(v, zm[i]);
                    if (i & 1) a1 = fmaf(d, xr[8 * w + 4 * h + i], a1);
                    else a0 = fmaf(d, xr[8 * w + 4 * h + i], a0);
                }
            }
        }
    } else if constexpr (B == 2) {
#pragma unroll
        for (int w = 0; w < 2; ++w) {  // word w: codes 16w .. 16w + 15 (code j at bit 2j)
#pragma unroll
            for (int m = 0; m < 4; ++m) {
                const uint32_t t = q[w] >> (8 * m);
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    const float v = __uint_as_float((t & (0x3u << (2 * i))) | kMagicBits);
                    const float d = __fsub_rn(v, zm[i]);
                    if (i & 1) a1 = fmaf(d, xr[16 * w + 4 * m + i], a1);
                    else a0 = fmaf(d, xr[16 * w + 4 * m + i], a0);
                }
            }
        }
    } else if constexpr (B == 8) {
#pragma unroll
        for (int w = 0; w < 8; ++w) {  // word w: codes 4w .. 4w + 3 (byte j)
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                // bytes (q.byte[j], 0, 0, 0x4B) = float 2^23 + q
                const float v = __uint_as_float(__byte_perm(q[w], kMagicBits, 0x7540u | uint32_t(j)));
                const float d = __fsub_rn(v, zm[0]);
                if (j & 1) a1 = fmaf(d, xr[4 * w + j], a1);
                else a0 = fmaf(d, xr[4 * w + j], a0);
            }
        }
    } else {  // B == 3: the generic stream read (constant offsets after unrolling)
#pragma unroll
        for (int i = 0; i < 32; ++i) {
            const float v = __uint_as_float(pack::gptq_get(q, 1, i, 3) | kMagicBits);
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

// Raw words of block b for the VEC columns from col0: q[j][c] = word j of column col0 + c.
template <int B, int VEC>
__device__ __forceinline__ void load_words(const FastArgs& a, int b, int64_t col0, uint32_t (&q)[B][VEC]) {
    const uint32_t* p = a.qw + int64_t(b) * B * a.n + col0;
#pragma unroll
    for (int j = 0; j < B; ++j) {
        if constexpr (VEC == 4) {
            const uint4 v = ldg_stream4(p + j * a.n);
            q[j][0] = v.x;
            q[j][1] = v.y;
            q[j][2] = v.z;
            q[j][3] = v.w;
        } else {
            q[j][0] = ldg_stream1(p + j * a.n);
        }
    }
}

// Raw scales (fp16 pairs) and zeros (bytes) of the group of block b for the VEC columns from col0.
template <int VEC>
__device__ __forceinline__ void load_sz(const FastArgs& a, int b, int64_t col0, uint2& s, uint32_t& z) {
    const int64_t off = int64_t(b / a.blocks_per_group) * a.n + col0;
    if constexpr (VEC == 4) {
        s = __ldg(reinterpret_cast<const uint2*>(a.scales + off));
        z = __ldg(reinterpret_cast<const unsigned int*>(a.zeros + off));
    } else {
        s = make_uint2(__ldg(a.scales + off), 0u);
        z = __ldg(a.zeros + off);
    }
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
        if (active && wb0 + u < wb1) {
            load_words<B, VEC>(a, wb0 + u, col0, qn[u]);
            load_sz<VEC>(a, wb0 + u, col0, sn[u], zn[u]);
        }
    }

    // Stage x[kb0·32, kb0·32 + nb·32), each value times its position's power of two.
    const int64_t k0 = int64_t(kb0) * 32;
    const int cnt = nb * 32;
    if constexpr (OP == int(GemvPrologue::RmsNorm)) {
        double ss = 0.0;
        for (int i = threadIdx.x; i < a.k; i += kFThreads) {
            const double v = double(a.src[i]);
            ss += v * v;
        }
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (lane == 0) redd[warp] = ss;
        __syncthreads();
        double tot = 0.0;
#pragma unroll
        for (int i = 0; i < kFWarps; ++i) tot += redd[i];  // fixed order: every CTA gets the same bits
        const float inv = 1.0f / sqrtf(float(tot / double(a.k)) + a.eps);
        for (int i = threadIdx.x; i < cnt; i += kFThreads) {
            const int64_t k = k0 + i;
            xs[i] = (a.norm_w[k] * (a.src[k] * inv)) * pos_scale<B>(k);
        }
    } else if constexpr (OP == int(GemvPrologue::SwiGlu)) {
        for (int i = threadIdx.x; i < cnt; i += kFThreads) {
            const int64_t k = k0 + i;
            const float g = a.src[k];
            xs[i] = (g / (1.0f + expf(-g)) * a.src[a.k + k]) * pos_scale<B>(k);
        }
    } else {
        for (int i = threadIdx.x; i < cnt; i += kFThreads) {
            const int64_t k = k0 + i;
            xs[i] = a.src[k] * pos_scale<B>(k);
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
            for (int i = 0; i < P; ++i) zm[c][i] = kMagic;
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
                if (b + U + u < wb1) {
                    load_words<B, VEC>(a, b + U + u, col0, qn[u]);
                    load_sz<VEC>(a, b + U + u, col0, sn[u], zn[u]);
                }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                const int bb = b + u;
                if (bb >= wb1) break;  // warp-uniform
                const int g = bb / a.blocks_per_group;
                if (g != gcur) {  // warp-uniform: a new group's constants
                    gcur = g;
#pragma unroll
                    for (int c = 0; c < VEC; ++c) {
                        const uint32_t sb = c < 2 ? (c == 0 ? s[u].x & 0xffffu : s[u].x >> 16)
                                                  : (c == 2 ? s[u].y & 0xffffu : s[u].y >> 16);
                        sf[c] = __half2float(__ushort_as_half(static_cast<unsigned short>(sb)));
                        const uint32_t zc = (z[u] >> (8 * c)) & 0xffu;
#pragma unroll
                        for (int i = 0; i < P; ++i) zm[c][i] = kMagic + float(zc << (B * i));  // exact: < 2^24
                    }
                }
                float xr[32];
                const float4* xv = reinterpret_cast<const float4*>(xs + (bb - kb0) * 32);
#pragma unroll
                for (int i = 0; i < 8; ++i) {
                    const float4 v = xv[i];
                    xr[4 * i] = v.x;
                    xr[4 * i + 1] = v.y;
                    xr[4 * i + 2] = v.z;
                    xr[4 * i + 3] = v.w;
                }
#pragma unroll
                for (int c = 0; c < VEC; ++c) {
                    uint32_t qc[B];
#pragma unroll
                    for (int j = 0; j < B; ++j) qc[j] = q[u][j][c];
                    yacc[c] = fmaf(sf[c], dot_block_fast<B>(qc, zm[c], xr), yacc[c]);
                }
            }
        }
    }

    // CTA reduction: red[w][t] = warp w's sum for column blockIdx.x·32·VEC + t.
    if constexpr (VEC == 4) {
        reinterpret_cast<float4*>(red[warp])[lane] = make_float4(yacc[0], yacc[1], yacc[2], yacc[3]);
    } else {
        red[warp][lane] = yacc[0];
    }
    __syncthreads();
    for (int t = threadIdx.x; t < 32 * VEC; t += kFThreads) {
        const int64_t col = int64_t(blockIdx.x) * 32 * VEC + t;
        if (col >= a.n) continue;
        float sum = 0.f;
#pragma unroll
        for (int w = 0; w < kFWarps; ++w) sum += red[w][t];
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

bool is_aligned(const void* p, uintptr_t al) { return reinterpret_cast<uintptr_t>(p) % al == 0; }

bool ranges_overlap(const void* a, size_t abytes, const void* b, size_t bbytes) {
    const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
    return pa < pb + bbytes && pb < pa + abytes;
}

constexpr int kMaxDevices = 64;

// CTAs of `kernel` resident at once on the current device (SMs × occupancy), cached per device and instance.
template <typename Kernel>
int64_t resident(Kernel kernel, std::atomic<int> (&cache)[kMaxDevices]) {
    int dev = 0;
    AR_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < kMaxDevices) {
        const int v = cache[dev].load(std::memory_order_relaxed);
        if (v > 0) return v;
    }
    int sms = 0, per_sm = 0;
    AR_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    AR_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kFThreads, 0));
    const int v = std::max(1, sms * std::max(1, per_sm));
    if (dev < kMaxDevices) cache[dev].store(v, std::memory_order_relaxed);
    return v;
}

// The k split: S CTAs per column tile, each ≤ kFMaxBlocks blocks, none empty, ≥ 1 block per warp where k allows;
// among those, the fewest splits whose grid fills its last wave of resident CTAs to ≥ 90 % (else the best fill).
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
    static std::atomic<int> cache[kMaxDevices];
    auto kernel = quant_gemv_fast_kernel<B, VEC, OP>;
    const int64_t gx = (w.n + 32 * VEC - 1) / (32 * VEC);
    check(gx <= INT_MAX, "quant_gemv_fast: n = ", w.n, " too large");
    const int nblk = static_cast<int>(w.k / 32);
    const int bpc = choose_blocks_per_cta(gx, nblk, resident(kernel, cache));
    const int64_t splits = (nblk + bpc - 1) / bpc;
    check(splits <= 65535, "quant_gemv_fast: k = ", w.k, " too large");

    FastArgs a;
    a.qw = w.qweight;
    a.scales = w.scales;
    a.zeros = w.zeros;
    a.src = in.src;
    a.norm_w = in.norm_w;
    a.eps = in.eps;
    a.y = y;
    a.zero = zero_count > 0 ? zero : nullptr;
    a.zero_count = zero_count;
    a.n = w.n;
    a.k = static_cast<int>(w.k);
    a.nblk = nblk;
    a.blocks_per_group = static_cast<int>(w.group_len / 32);
    a.blocks_per_cta = bpc;
    a.atomic = splits > 1;
    a.accumulate = accumulate;
    if (a.atomic && !accumulate) AR_CUDA_CHECK(cudaMemsetAsync(y, 0, size_t(w.n) * sizeof(float), stream));
    kernel<<<dim3(unsigned(gx), unsigned(splits)), kFThreads, 0, stream>>>(a);
    AR_CUDA_CHECK(cudaGetLastError());
}

template <int B, int OP>
void dispatch_vec(const DeviceQuantWeight& w, const GemvInput& in, float* y, bool acc, float* zero, int64_t zc,
                  cudaStream_t stream) {
    const bool vec4 =
        w.n % 4 == 0 && is_aligned(w.qweight, 16) && is_aligned(w.scales, 8) && is_aligned(w.zeros, 4);
    if (vec4) launch_fast<B, 4, OP>(w, in, y, acc, zero, zc, stream);
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
    check(pack::gptq_bits_ok(w.bits), fn, ": bits must be 2, 3, 4 or 8, got ", w.bits, " (weight [", w.n, ", ", w.k,
          "])");
    check(w.n >= 1 && w.n <= (int64_t(1) << 36), fn, ": n = ", w.n, " out of range (weight [", w.n, ", ", w.k, "])");
    check(w.k >= 32 && w.k % 32 == 0 && w.k <= (int64_t(1) << 30), fn, ": k = ", w.k,
          " must be a positive multiple of 32 (≤ 2^30) (weight [", w.n, ", ", w.k, "])");
    check(w.group_len >= 32 && w.group_len % 32 == 0 && w.k % w.group_len == 0, fn, ": group_len = ", w.group_len,
          " must be a multiple of 32 that divides k (weight [", w.n, ", ", w.k, "])");
    check(w.qweight && w.scales && w.zeros, fn, ": null qweight / scales / zeros (weight [", w.n, ", ", w.k, "])");
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
