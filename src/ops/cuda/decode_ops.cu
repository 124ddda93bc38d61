// ops/cuda/decode_ops.cu — see decode_ops.h. The row-wise kernels of the GPU decoder: embedding rows, RMSNorm,
// QK-norm + RoPE + KV-cache append, attention over the bf16 KV cache, SwiGLU, greedy argmax, token NLL, f32 → bf16.
//
// Why these shapes: a decode step (T = 1) of a Qwen3 decoder is a chain of small kernels between the weight GEMVs;
// each one here reads its rows once and is launched with a configuration that depends only on host arguments, so the
// whole step can be captured in a CUDA graph and replayed while the cache grows (the position, slot0, is read from
// device memory by every kernel).
//
// The math is the CPU model's (model/qwen3_model.cpp):
//   RMSNorm (ops/cpu/norm.cpp): the sum of squares of the FP32 inputs accumulated in FP64, then
//     inv = 1 / sqrt(float(ss / n) + eps) and y = w · (x · inv) in FP32 — the same operations as the CPU.
//   RoPE (ops/cpu/rope.cpp): angle = float(position) · inv_freq[j] in FP32, cos/sin in FP32 (cosf/sinf, as
//     std::cos(float)), rotate_half pairs (j, j + D/2).
//   attention (ops/cpu/attention.cpp): scores scale · (q·k) in FP32, FP32 softmax; the GPU normalises once at the
//     end instead of per probability and sums in another order.
//   SwiGLU (ops/cpu/activation.cpp): g / (1 + exp(−g)) · u in FP32 with expf.
//   token NLL (eval/perplexity.cpp token_nll): FP32 max, Σ exp(double(l) − max) in FP64, log(s) + max − l[target].
//   argmax (model/sampler.cpp Sampler::argmax = std::max_element): the lowest index among equal maxima.
//
// decode_attention (flash-decoding):
//   Keys are cut into splits of `chunk` keys (a multiple of 64, sized from max_keys only: T = 1 has
//   nsplit = min(256, ceil(max_keys / 64)) splits, T > 1 a single one). A CTA serves one (kv head g, block of HB ∈
//   {2, 4, 8} query heads of g's group, query row t) and walks the splits s = blockIdx.x, + gridDim.x, ... that hold
//   keys, i.e. s·chunk < n_keys(t) = min(slot0 + t + 1, max_keys) (gridDim.x ≈ 264 / (nkv · head blocks): about 2
//   CTAs per SM whatever the cache length; CTAs beyond the busy splits exit at once). For each split it walks
//   [s·chunk, min((s+1)·chunk, n_keys)) in tiles of 64 keys (32 for HB 8 or D > 128), all K and V loads of a tile issued first:
//     phase 1 — scores: a key row is read by LPK = D/8 lanes (16-byte loads of 8 bf16; the generic path for other
//       head dims: 32 lanes of bf16x2), each lane holding the matching 8 (2·4) q values of every head in registers;
//       the HB partial dots are summed over the LPK lanes by a transposing butterfly (a lane keeps half of its heads
//       and swaps the other half at each level: HB + log2(LPK/HB) − 1 shuffles per key instead of HB·log2(LPK));
//       scale·q·k goes to shared memory.
//     phase 2 — warp w owns heads w, w + warps, ...: tile max, running max m and sum l (online softmax),
//       p = exp(s − m) written back over the scores, the rescale α = exp(m_old − m_new) published for phase 3.
//     phase 3 — P·V with the same lane ↔ (key, 8 dims) mapping over V; the FP32 accumulators rescaled by α first.
//   After a split the accumulators are summed over the key slots of each warp (shuffles) and over the warps (shared
//   memory, fixed order: deterministic). One split (T > 1, or max_keys ≤ 64): o = acc / l is written directly.
//   Several (T = 1): the unnormalised acc and (m, l) of each busy split go to the workspace and a merge kernel
//   (a CTA of 1024 threads per 32 dims of a query head) combines the splits that hold keys — a split past n_keys
//   is never written nor read, so empty ranges contribute nothing and give no NaN.
//   8 warps per CTA for D ≤ 128 and HB ≤ 4, else 4; registers allow 2 CTAs per SM.
//   Measured (H200, graph replay, nq 32, nkv 8, D 128, T 1; bench outside the repository): 512 keys 8.9 µs,
//   4096 keys 13.4 µs (max_keys 4096) / 11.9 µs (max_keys 32768), 32768 keys 67 µs (2.0 TB/s of K/V);
//   nq 16: 32768 keys 52.5 µs (2.6 TB/s); nq 64 (HB 8): 122 µs (1.1 TB/s).
//
// decode_attention_step (T = 1, capacity ≤ 1024, sm_90): the attention input stage and the attention of one decode
//   step in one kernel, attn_step_kernel: a thread-block cluster of ncl = min(8, ceil(capacity / 64)) CTAs per
//   (kv head, head block) does the q-norm + RoPE of its query heads, the CTA holding the new key's 64-key chunk
//   appends k (norm + RoPE) and v to the caches, each CTA walks its chunks with the tile code above, and the ncl
//   partial softmaxes are merged through distributed shared memory. Why: in a Qwen3-4B decode step on the H200
//   the three kernels it replaces cost ~8.5 µs per layer with PDL (measured by leaving them out: 1.57 → 1.28 ms);
//   fused, the step takes 1.465 ms (4B) / 1.896 ms (8B) instead of 1.581 / 2.000.
#include "ops/cuda/decode_ops.h"

#include <cuda_bf16.h>
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/pdl.cuh"

namespace autoround {
namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int kNoIndex = 0x7fffffff;  // argmax: no candidate yet

// ---- small helpers ----------------------------------------------------------------------------------------------

__device__ __forceinline__ uint16_t to_bf16(float x) {  // round to nearest even (NaN stays NaN)
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}
__device__ __forceinline__ float bf16_bits_to_float(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
// The two bf16 of a little-endian 32-bit word: element 0 is the low half.
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFull, v, off);
    return v;
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFull, v, off);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(kFull, v, off));
    return v;
}

// Sum / max over the block (blockDim.x a multiple of 32, ≤ 1024); every thread gets the result. `red` holds 32
// values; the function syncs before returning, so `red` may be reused right after.
__device__ double block_sum(double v, double* red) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[w] = v;
    __syncthreads();
    double r = 0.0;
    for (int i = 0; i < nw; ++i) r += red[i];  // fixed order: every thread gets the same bits
    __syncthreads();
    return r;
}
__device__ float block_sum(float v, float* red) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) red[w] = v;
    __syncthreads();
    float r = 0.f;
    for (int i = 0; i < nw; ++i) r += red[i];
    __syncthreads();
    return r;
}
__device__ float block_max(float v, float* red) {
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) red[w] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; ++i) r = fmaxf(r, red[i]);
    __syncthreads();
    return r;
}

// ---- embedding --------------------------------------------------------------------------------------------------

// grid (T), block 256: x[t] [H] = table[ids[t]] [H] widened to FP32, or zeros for an id outside [0, V).
__global__ void embed_kernel(const uint16_t* __restrict__ table, int64_t V, const int32_t* __restrict__ ids, int64_t H,
                             float* __restrict__ x) {
    const int64_t t = blockIdx.x;
    const int64_t id = ids[t];
    const bool ok = id >= 0 && id < V;
    const uint16_t* src = table + (ok ? id : 0) * H;
    float* dst = x + t * H;
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) dst[i] = ok ? bf16_bits_to_float(src[i]) : 0.f;
}

// ---- RMSNorm ----------------------------------------------------------------------------------------------------

// grid (T), block 256 or 512: one row of H. x may equal y_f32 (each thread reads its elements before the reduction's
// barriers and writes the same elements after them).
__global__ void rms_norm_kernel(const float* x, const float* __restrict__ w, int64_t H, float eps, float* y_f32,
                                uint16_t* y_bf16) {
    __shared__ double red[32];
    const int64_t t = blockIdx.x;
    const float* xr = x + t * H;
    double ss = 0.0;
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) ss += double(xr[i]) * double(xr[i]);
    ss = block_sum(ss, red);
    const float inv = 1.0f / sqrtf(float(ss / double(H)) + eps);
    for (int64_t i = threadIdx.x; i < H; i += blockDim.x) {
        const float y = w[i] * (xr[i] * inv);
        if (y_f32) y_f32[t * H + i] = y;
        if (y_bf16) y_bf16[t * H + i] = to_bf16(y);
    }
}

// ---- QK-norm + RoPE + cache append ------------------------------------------------------------------------------

constexpr int kRopeWarps = 4;      // heads per CTA (one warp per head)
constexpr int kMaxHeadDim = 256;   // every kernel here: even head dims up to 256
constexpr int kRopePairs = kMaxHeadDim / 64;  // rotation pairs (j, j + D/2) per lane

// One warp: RMSNorm over D (weight wn [D]; null: none) and RoPE at position pos of one head row x [D], written to
// out_f32 [D] and/or out_bf16 [D] (either may be null). Lane l owns the pairs (j, j + D/2) for j = l, l + 32, ...
__device__ __forceinline__ void norm_rope_head_warp(const float* x, const float* __restrict__ wn, float eps,
                                                    const float* __restrict__ inv_freq, float pos, int D, int lane,
                                                    float* out_f32, uint16_t* out_bf16) {
    const int half = D / 2;
    float a[kRopePairs], b[kRopePairs];
#pragma unroll
    for (int c = 0; c < kRopePairs; ++c) {
        const int j = lane + 32 * c;
        a[c] = j < half ? x[j] : 0.f;
        b[c] = j < half ? x[j + half] : 0.f;
    }
    if (wn) {
        double ss = 0.0;
#pragma unroll
        for (int c = 0; c < kRopePairs; ++c) ss += double(a[c]) * double(a[c]) + double(b[c]) * double(b[c]);
        ss = warp_sum(ss);
        const float inv = 1.0f / sqrtf(float(ss / double(D)) + eps);
#pragma unroll
        for (int c = 0; c < kRopePairs; ++c) {
            const int j = lane + 32 * c;
            if (j < half) {
                a[c] = wn[j] * (a[c] * inv);
                b[c] = wn[j + half] * (b[c] * inv);
            }
        }
    }
#pragma unroll
    for (int c = 0; c < kRopePairs; ++c) {
        const int j = lane + 32 * c;
        if (j >= half) continue;
        float sn, cs;
        sincosf(pos * inv_freq[j], &sn, &cs);
        const float ra = a[c] * cs - b[c] * sn;
        const float rb = b[c] * cs + a[c] * sn;
        if (out_f32) {
            out_f32[j] = ra;
            out_f32[j + half] = rb;
        }
        if (out_bf16) {
            out_bf16[j] = to_bf16(ra);
            out_bf16[j + half] = to_bf16(rb);
        }
    }
}

// grid (ceil((nq + 2·nkv) / 4), T), block 128: warp w of CTA x handles head hh = 4x + w of row t's fused projection
// qkv [T, (nq + 2·nkv)·D]: hh < nq a query head, then nkv key heads, then nkv value heads.
__global__ void __launch_bounds__(kRopeWarps * 32)
    qk_norm_rope_kernel(const float* __restrict__ qkv, int nq, int nkv, int D, const float* __restrict__ q_norm,
                        const float* __restrict__ k_norm, float eps, const float* __restrict__ inv_freq,
                        const int32_t* __restrict__ d_slot0, int64_t pos_delta, float* __restrict__ q_f32,
                        uint16_t* __restrict__ q_bf16, uint16_t* __restrict__ k_cache, uint16_t* __restrict__ v_cache,
                        int64_t capacity) {
    pdl_trigger();  // launched with PDL in the decode chain (ops/cuda/pdl.cuh): everything here reads its inputs
    pdl_wait();
    const int lane = threadIdx.x & 31;
    const int hh = blockIdx.x * kRopeWarps + (threadIdx.x >> 5);
    const int n_heads = nq + 2 * nkv;
    if (hh >= n_heads) return;  // warp-uniform
    const int64_t t = blockIdx.y;
    const float* x = qkv + (t * n_heads + hh) * int64_t(D);  // [D]
    const int64_t slot = int64_t(*d_slot0) + t;
    const bool slot_ok = slot >= 0 && slot < capacity;
    const int64_t ldkv = int64_t(nkv) * D;

    if (hh >= nq + nkv) {  // value head: straight to the cache
        if (!slot_ok) return;
        uint16_t* dst = v_cache + slot * ldkv + int64_t(hh - nq - nkv) * D;  // [D]
        for (int j = lane; j < D; j += 32) dst[j] = to_bf16(x[j]);
        return;
    }
    const float pos = float(slot + pos_delta);
    if (hh < nq) {
        norm_rope_head_warp(x, q_norm, eps, inv_freq, pos, D, lane, q_f32 ? q_f32 + (t * nq + hh) * int64_t(D) : nullptr,
                            q_bf16 ? q_bf16 + (t * nq + hh) * int64_t(D) : nullptr);
    } else if (slot_ok) {
        norm_rope_head_warp(x, k_norm, eps, inv_freq, pos, D, lane, nullptr,
                            k_cache + slot * ldkv + int64_t(hh - nq) * D);
    }
}

// ---- attention over the KV cache --------------------------------------------------------------------------------

constexpr int kAttnGranule = 64;   // keys: a split's chunk is a multiple of it
constexpr int kMaxSplits = 256;    // T = 1: most key splits (max_keys ≤ 16,384: one split per 64 keys)
constexpr int kTargetCtas = 264;   // T = 1: CTAs of the split kernel, ≈ 2 per SM of an H100 / H200 (132 SMs)

// VEC bf16 per load (8: 16 bytes, 2: 4 bytes), NV loads per lane per key row, LPK lanes per key row, DMAX the largest
// head dim of the instance, HB query heads per CTA. Fast paths: D = VEC·NV·LPK exactly; the generic path (VEC 2,
// NV 4, LPK 32) masks dims ≥ D. Head dims ≤ 128 with HB ≤ 4 run 8 warps per CTA, the others 4 (registers: 2 CTAs
// per SM; the per-warp partial outputs in shared memory stay under 48 KB).
template <int VEC, int NV, int LPK, int DMAX, int HB>
struct AttnCfg {
    static constexpr int kVec = VEC, kNv = NV, kLpk = LPK, kDmax = DMAX, kHeads = HB;
    static constexpr int kWarps = DMAX <= 128 && HB <= 4 ? 8 : 4;
    static constexpr int kThreads = kWarps * 32;
    static constexpr int kMinBlocks = 2;                                // per SM (__launch_bounds__)
    static constexpr int kWords = VEC / 2;                              // 32-bit words per load
    static constexpr int kKeysPerWarp = 32 / LPK;                       // key rows a warp reads at once
    static constexpr int kKeysPerStep = kWarps * kKeysPerWarp;          // ... the CTA
    // K and V rows per lane per tile, all in registers at once: tiles of 64 keys (32 for HB 8), at most 8 rows each
    static constexpr int kTileTarget = HB == 8 ? 32 : 64;
    static constexpr int kUnroll =
        kTileTarget / kKeysPerStep < 1 ? 1 : (kTileTarget / kKeysPerStep > 8 ? 8 : kTileTarget / kKeysPerStep);
    static constexpr int kTile = kKeysPerStep * kUnroll;                // keys per tile
    static constexpr int kHeadsPerWarp = (HB + kWarps - 1) / kWarps;    // phase 2
    static constexpr int kLogHeads = HB == 8 ? 3 : (HB == 4 ? 2 : (HB == 2 ? 1 : 0));
    static_assert((1 << kLogHeads) == HB && HB <= LPK, "HB: a power of two ≤ 8 and ≤ the lanes per key");
    static_assert(VEC == 8 || VEC == 2, "loads of 8 or 2 bf16");
    static_assert(LPK >= 1 && LPK <= 32 && (LPK & (LPK - 1)) == 0, "lanes per key: a power of two ≤ 32");
    static_assert(VEC * NV * LPK >= DMAX, "a key group covers the head dim");
    static_assert(size_t(kWarps) * HB * DMAX * sizeof(float) <= 32768, "per-warp outputs fit shared memory");
};

// A K/V load of VEC bf16: through the read-only cache (kCoherent false) or L2 only (true: the kernel itself wrote
// part of the cache, attn_step_kernel, and read-only-cache loads need not see writes of the same launch).
template <int VEC, bool kCoherent>
__device__ __forceinline__ void load_bf16(const uint16_t* __restrict__ p, uint32_t (&w)[VEC / 2]) {
    if constexpr (VEC == 8) {
        const uint4 u = kCoherent ? __ldcg(reinterpret_cast<const uint4*>(p)) : __ldg(reinterpret_cast<const uint4*>(p));
        w[0] = u.x;
        w[1] = u.y;
        w[2] = u.z;
        w[3] = u.w;
    } else {
        w[0] = kCoherent ? __ldcg(reinterpret_cast<const unsigned int*>(p))
                         : __ldg(reinterpret_cast<const unsigned int*>(p));
    }
}

// A lane's place in an attention CTA of configuration C (see the file header).
template <class C>
struct AttnLane {
    int lane, w;      // lane, warp
    int sub;          // lane within its key group (LPK lanes read one key row)
    int ks;           // key slot of this lane's group, 0 .. KS − 1
    int head_ln;      // the head whose score this lane ends up with in phase 1's butterfly
    bool head_writer; // one lane per head of each key group writes the score
    __device__ __forceinline__ AttnLane() {
        lane = threadIdx.x & 31;
        w = threadIdx.x >> 5;
        sub = lane % C::kLpk;
        ks = w * C::kKeysPerWarp + lane / C::kLpk;
        head_ln = 0;
#pragma unroll
        for (int L = 0; L < C::kLogHeads; ++L)
            if (lane & (C::kLpk >> (L + 1))) head_ln += C::kHeads >> (L + 1);
        head_writer = sub % (C::kLpk / C::kHeads) == 0;
    }
    __device__ __forceinline__ int dim0(int v) const { return (v * C::kLpk + sub) * C::kVec; }  // first dim of load v
};

// The query heads of a CTA (blockIdx.y = kv head g · hblocks + head block hb): h0 .. h0 + nh − 1 with
// h0 = g·r + hb·HB, r = nq / nkv, nh = min(HB, r − hb·HB).
template <class C>
struct AttnHeads {
    int g, h0, nh;
    __device__ __forceinline__ AttnHeads(int nq, int nkv, int hblocks) {
        const int hb = int(blockIdx.y) % hblocks, r = nq / nkv;
        g = int(blockIdx.y) / hblocks;
        h0 = g * r + hb * C::kHeads;
        nh = min(C::kHeads, r - hb * C::kHeads);
    }
};

// The online-softmax state of a CTA's lanes over the keys it has walked.
template <class C>
struct AttnState {
    float acc[C::kHeads][C::kNv][C::kVec];  // this lane's P·V accumulators
    float m_run[C::kHeadsPerWarp], l_run[C::kHeadsPerWarp];  // heads w + NW·c (replicated over the warp's lanes)
    __device__ __forceinline__ void reset() {
#pragma unroll
        for (int i = 0; i < C::kHeads; ++i)
#pragma unroll
            for (int v = 0; v < C::kNv; ++v)
#pragma unroll
                for (int e = 0; e < C::kVec; ++e) acc[i][v][e] = 0.f;
#pragma unroll
        for (int c = 0; c < C::kHeadsPerWarp; ++c) {
            m_run[c] = -INFINITY;
            l_run[c] = 0.f;
        }
    }
};

// The CTA's shared memory for one tile and the final reduction.
template <class C>
struct AttnSmem {
    float sc[C::kHeads][C::kTile];                          // scores, then probabilities, of the current tile
    float alpha_s[C::kHeads];                               // rescale of the accumulators for the current tile
    float ml_s[C::kHeads][2];                               // final (m, l) per head
    __align__(16) float red[C::kWarps][C::kHeads][C::kDmax];  // per-warp partial outputs
};

// qr[i][v][e] = q_i[dim0(v) + e] for heads i < nh (row i at q0 + i·ldq; 16-byte (VEC 8) or 8-byte (VEC 2) aligned),
// zeros beyond nh and D. q0 may point to global or shared memory.
template <class C>
__device__ __forceinline__ void load_q_lane(const float* q0, int64_t ldq, int nh, int D, const AttnLane<C>& ln,
                                            float (&qr)[C::kHeads][C::kNv][C::kVec]) {
    constexpr int VEC = C::kVec;
#pragma unroll
    for (int i = 0; i < C::kHeads; ++i)
#pragma unroll
        for (int v = 0; v < C::kNv; ++v) {
#pragma unroll
            for (int e = 0; e < VEC; ++e) qr[i][v][e] = 0.f;
            if (i < nh && ln.dim0(v) < D) {
                const float* src = q0 + i * ldq + ln.dim0(v);
#pragma unroll
                for (int e = 0; e < VEC; e += 2) {
                    if constexpr (VEC % 4 == 0) {
                        if (e % 4 == 0) {
                            const float4 x = *reinterpret_cast<const float4*>(src + e);
                            qr[i][v][e] = x.x, qr[i][v][e + 1] = x.y, qr[i][v][e + 2] = x.z, qr[i][v][e + 3] = x.w;
                        }
                    } else {
                        const float2 x = *reinterpret_cast<const float2*>(src + e);
                        qr[i][v][e] = x.x, qr[i][v][e + 1] = x.y;
                    }
                }
            }
        }
}

// One tile of keys kt .. kt + n_tile − 1 (n_tile ≤ TILE) of kv head rows kbase / vbase (row j at + j·ldkv): all K and
// V loads of the tile first, then the three phases of the file header; ends with a barrier (sc, alpha_s reusable).
template <class C, bool kCoherent>
__device__ __forceinline__ void attend_tile(const uint16_t* __restrict__ kbase, const uint16_t* __restrict__ vbase,
                                            int64_t ldkv, int D, float scale, int kt, int n_tile, int nh,
                                            const AttnLane<C>& ln, const float (&qr)[C::kHeads][C::kNv][C::kVec],
                                            AttnState<C>& st, AttnSmem<C>& sm) {
    constexpr int HB = C::kHeads, VEC = C::kVec, NV = C::kNv, LPK = C::kLpk, W = C::kWords;
    constexpr int KS = C::kKeysPerStep, U = C::kUnroll, HPW = C::kHeadsPerWarp, NW = C::kWarps;
    const int lane = ln.lane, w = ln.w;
    // K and V rows kt + u·KS + ks of this lane's group, all loads in flight at once
    uint32_t kr[U][NV][W], vr[U][NV][W];
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int jj = u * KS + ln.ks;
#pragma unroll
        for (int v = 0; v < NV; ++v) {
#pragma unroll
            for (int x = 0; x < W; ++x) kr[u][v][x] = vr[u][v][x] = 0u;
            if (jj < n_tile && ln.dim0(v) < D) {
                const int64_t off = int64_t(kt + jj) * ldkv + ln.dim0(v);
                load_bf16<VEC, kCoherent>(kbase + off, kr[u][v]);
                load_bf16<VEC, kCoherent>(vbase + off, vr[u][v]);
            }
        }
    }
    // phase 1: sc[i][j] = scale · q_i · k_{kt+j}. The HB partial dots of a lane are summed over its LPK lanes by a
    // transposing butterfly: at level L (offset LPK / 2^(L+1)) a lane keeps half of its heads and swaps the other half
    // with its partner, so after log2(HB) levels it holds one head (head_ln), summed over 2^log2(HB) lanes; plain
    // levels finish the sum. HB + log2(LPK / HB) − 1 shuffles per key instead of HB · log2(LPK). All HB heads are
    // computed (q = 0 beyond nh).
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int jj = u * KS + ln.ks;
        float val[HB];
#pragma unroll
        for (int i = 0; i < HB; ++i) {
            float p = 0.f;
#pragma unroll
            for (int v = 0; v < NV; ++v)
#pragma unroll
                for (int x = 0; x < W; ++x) {
                    p = fmaf(qr[i][v][2 * x], bf16_lo(kr[u][v][x]), p);
                    p = fmaf(qr[i][v][2 * x + 1], bf16_hi(kr[u][v][x]), p);
                }
            val[i] = p;
        }
#pragma unroll
        for (int L = 0; L < C::kLogHeads; ++L) {
            const int half = HB >> (L + 1), off = LPK >> (L + 1);
            const bool upper = (lane & off) != 0;
#pragma unroll
            for (int j = 0; j < half; ++j) {
                const float send = upper ? val[j] : val[j + half];
                const float keep = upper ? val[j + half] : val[j];
                val[j] = keep + __shfl_xor_sync(kFull, send, off);
            }
        }
#pragma unroll
        for (int off = LPK / (2 * HB); off > 0; off >>= 1) val[0] += __shfl_xor_sync(kFull, val[0], off);
        if (ln.head_writer && ln.head_ln < nh && jj < n_tile) sm.sc[ln.head_ln][jj] = val[0] * scale;
    }
    __syncthreads();
    // phase 2: online softmax per head; warp w owns heads w, w + NW, ...
#pragma unroll
    for (int c = 0; c < HPW; ++c) {
        const int i = w + c * NW;
        if (i >= nh) continue;  // warp-uniform
        float mx = -INFINITY;
        for (int j = lane; j < n_tile; j += 32) mx = fmaxf(mx, sm.sc[i][j]);
        mx = warp_max(mx);
        const float m_new = fmaxf(st.m_run[c], mx);
        const float m_ref = m_new == -INFINITY ? 0.f : m_new;  // all scores −inf: p = 0, no NaN
        const float alpha = expf(st.m_run[c] - m_ref);         // first tile: exp(−inf) = 0
        float sum = 0.f;
        for (int j = lane; j < n_tile; j += 32) {
            const float p = expf(sm.sc[i][j] - m_ref);
            sm.sc[i][j] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        st.l_run[c] = st.l_run[c] * alpha + sum;
        st.m_run[c] = m_new;
        if (lane == 0) sm.alpha_s[i] = alpha;
    }
    __syncthreads();
    // phase 3: acc_i = α_i · acc_i + Σ_j p_ij · v_j
#pragma unroll
    for (int i = 0; i < HB; ++i) {
        if (i >= nh) break;
        const float a = sm.alpha_s[i];
#pragma unroll
        for (int v = 0; v < NV; ++v)
#pragma unroll
            for (int e = 0; e < VEC; ++e) st.acc[i][v][e] *= a;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int jj = u * KS + ln.ks;
        if (jj >= n_tile) continue;  // no shuffles in phase 3
#pragma unroll
        for (int i = 0; i < HB; ++i) {
            if (i >= nh) break;
            const float p = sm.sc[i][jj];
#pragma unroll
            for (int v = 0; v < NV; ++v)
#pragma unroll
                for (int x = 0; x < W; ++x) {
                    st.acc[i][v][2 * x] = fmaf(p, bf16_lo(vr[u][v][x]), st.acc[i][v][2 * x]);
                    st.acc[i][v][2 * x + 1] = fmaf(p, bf16_hi(vr[u][v][x]), st.acc[i][v][2 * x + 1]);
                }
        }
    }
    __syncthreads();  // sc and alpha_s are rewritten by the next tile
}

// After the CTA's keys: the accumulators summed over the key slots of each warp (shuffles) into sm.red[w], (m, l) of
// each head into sm.ml_s; ends with a barrier. The CTA's output of head i, dim d is then Σ_w red[w][i][d] (fixed
// order: deterministic).
template <class C>
__device__ __forceinline__ void publish_partials(AttnState<C>& st, int nh, int D, const AttnLane<C>& ln,
                                                 AttnSmem<C>& sm) {
    constexpr int HB = C::kHeads, VEC = C::kVec, NV = C::kNv, LPK = C::kLpk, HPW = C::kHeadsPerWarp;
#pragma unroll
    for (int i = 0; i < HB; ++i) {
        if (i >= nh) break;
#pragma unroll
        for (int v = 0; v < NV; ++v)
#pragma unroll
            for (int e = 0; e < VEC; ++e)
#pragma unroll
                for (int off = LPK; off < 32; off <<= 1)
                    st.acc[i][v][e] += __shfl_xor_sync(kFull, st.acc[i][v][e], off);
    }
    if (ln.lane < LPK) {
#pragma unroll
        for (int i = 0; i < HB; ++i) {
            if (i >= nh) break;
#pragma unroll
            for (int v = 0; v < NV; ++v) {
                if (ln.dim0(v) >= D) continue;
                float* dst = &sm.red[ln.w][i][ln.dim0(v)];  // 16-byte (VEC 8) or 8-byte (VEC 2) aligned
#pragma unroll
                for (int e = 0; e < VEC; e += 2) {
                    if constexpr (VEC % 4 == 0) {
                        if (e % 4 == 0)
                            *reinterpret_cast<float4*>(dst + e) = make_float4(st.acc[i][v][e], st.acc[i][v][e + 1],
                                                                              st.acc[i][v][e + 2], st.acc[i][v][e + 3]);
                    } else {
                        *reinterpret_cast<float2*>(dst + e) = make_float2(st.acc[i][v][e], st.acc[i][v][e + 1]);
                    }
                }
            }
        }
    }
#pragma unroll
    for (int c = 0; c < HPW; ++c) {
        const int i = ln.w + c * C::kWarps;
        if (i < nh && ln.lane == 0) {
            sm.ml_s[i][0] = st.m_run[c];
            sm.ml_s[i][1] = st.l_run[c];
        }
    }
    __syncthreads();
}

// grid (nblk, nkv · hblocks, T), block C::kThreads. See the file header. Row t, kv head g = blockIdx.y / hblocks,
// query heads h0 .. h0 + nh − 1 (AttnHeads).
// The CTA walks the splits s = blockIdx.x, + nblk, ... that hold keys (s·chunk < n_keys; n_keys from *d_slot0).
//   q [T, nq·D] FP32; k_cache, v_cache [≥ max_keys, nkv·D] bf16;
//   direct (one split, nblk 1): o [T, nq·D] = acc / l;
//   else (T = 1): ws_o [nsplit, nq, D] = acc, ws_ml [nsplit, nq, 2] = (m, l) of split s.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    attn_kernel(const float* __restrict__ q, const uint16_t* __restrict__ k_cache,
                const uint16_t* __restrict__ v_cache, int nq, int nkv, int D, float scale,
                const int32_t* __restrict__ d_slot0, int max_keys, int chunk, int hblocks, int direct,
                float* __restrict__ o, float* __restrict__ ws_o, float* __restrict__ ws_ml) {
    constexpr int HB = C::kHeads, TILE = C::kTile, NW = C::kWarps;
    pdl_trigger();  // PDL (ops/cuda/pdl.cuh): nothing to do before the inputs are ready
    pdl_wait();
    __shared__ AttnSmem<C> sm;

    const int t = blockIdx.z;
    const AttnHeads<C> hd(nq, nkv, hblocks);
    const int g = hd.g, h0 = hd.h0, nh = hd.nh;
    const AttnLane<C> ln;
    const int64_t ldkv = int64_t(nkv) * D;
    const uint16_t* kbase = k_cache + int64_t(g) * D;
    const uint16_t* vbase = v_cache + int64_t(g) * D;

    const int64_t n_keys64 = min(int64_t(*d_slot0) + t + 1, int64_t(max_keys));
    const int n_keys = int(max(n_keys64, int64_t(0)));
    const int ns_active = int((int64_t(n_keys) + chunk - 1) / chunk);  // splits holding keys (direct: 0 or 1)
    if (int(blockIdx.x) >= ns_active) {  // nothing to do (a row with slot0 + t < 0, or more CTAs than busy splits)
        if (direct)
            for (int idx = threadIdx.x; idx < nh * D; idx += blockDim.x)
                o[(int64_t(t) * nq + h0 + idx / D) * D + idx % D] = 0.f;
        return;  // split mode: the merge reads only the busy splits
    }

    float qr[HB][C::kNv][C::kVec];  // this lane's q values of each head (VEC consecutive floats per load v)
    load_q_lane<C>(q + (int64_t(t) * nq + h0) * D, D, nh, D, ln, qr);

    for (int s = blockIdx.x; s < ns_active; s += gridDim.x) {
        const int k_begin = s * chunk;  // < n_keys
        const int k_end = int(min(int64_t(k_begin) + chunk, int64_t(n_keys)));
        AttnState<C> st;
        st.reset();
        for (int kt = k_begin; kt < k_end; kt += TILE)
            attend_tile<C, false>(kbase, vbase, ldkv, D, scale, kt, min(TILE, k_end - kt), nh, ln, qr, st, sm);
        publish_partials<C>(st, nh, D, ln, sm);
        for (int idx = threadIdx.x; idx < nh * D; idx += blockDim.x) {
            const int i = idx / D, d = idx % D;
            float sum = 0.f;
#pragma unroll
            for (int ww = 0; ww < NW; ++ww) sum += sm.red[ww][i][d];
            const int h = h0 + i;
            if (direct) {
                const float l = sm.ml_s[i][1];
                o[(int64_t(t) * nq + h) * D + d] = l > 0.f ? sum / l : 0.f;
            } else {
                ws_o[(int64_t(s) * nq + h) * D + d] = sum;
                if (d == 0) {
                    ws_ml[(int64_t(s) * nq + h) * 2] = sm.ml_s[i][0];
                    ws_ml[(int64_t(s) * nq + h) * 2 + 1] = sm.ml_s[i][1];
                }
            }
        }
        __syncthreads();  // red and ml_s are rewritten by the next split
    }
}

// ---- the decode step's attention in one kernel (T = 1, sm_90 thread-block clusters) ------------------------------

constexpr int kStepMaxCluster = 8;      // CTAs per (kv head, head block): a portable cluster size
// Larger caches take qk_norm_rope_cache + decode_attention: their splits spread over ~2 CTAs per SM, while a cluster
// walks its chunks in turn (H200, Qwen3-4B shapes: equal at ~1,000 keys, 9 % slower at 3,000).
constexpr int64_t kStepMaxKeys = 1024;

// grid (ncl, nkv · hblocks), cluster (ncl, 1, 1), block C::kThreads; T = 1, position slot = *d_slot0.
// CTA rank c of the cluster of (kv head g, head block hb) (heads h0 .. h0 + nh − 1, as attn_kernel):
//   1. warps take the jobs: q-norm + RoPE of the nh query heads of qkv [(nq + 2·nkv)·D] into sq; and, where this CTA
//      holds the new key (0 ≤ slot < capacity and (slot / 64) % ncl == c), k-norm + RoPE of kv head g to
//      k_cache[slot] and v to v_cache[slot] (every head block of g writes the same bits); a barrier;
//   2. walks the 64-key chunks c, c + ncl, ... below n_keys = min(slot + 1, capacity) in one online softmax (the
//      cache loads bypass the read-only cache: this launch wrote row slot);
//   3. publishes its unnormalised output and (m, l) per head in shared memory; after a cluster barrier, CTA c
//      combines the ncl partials (read through distributed shared memory) for its share of the nh·D outputs:
//      o = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c (a CTA without keys weighs 0; no keys at all: o = 0);
//      a second cluster barrier keeps every CTA's shared memory alive until the others have read it.
template <class C>
__global__ void __launch_bounds__(C::kThreads, C::kMinBlocks)
    attn_step_kernel(const float* __restrict__ qkv, int nq, int nkv, int D, const float* __restrict__ q_norm,
                     const float* __restrict__ k_norm, float eps, const float* __restrict__ inv_freq,
                     const int32_t* __restrict__ d_slot0, int64_t pos_delta, uint16_t* k_cache, uint16_t* v_cache,
                     int capacity, float scale, int hblocks, float* __restrict__ o) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    namespace cg = cooperative_groups;
    constexpr int HB = C::kHeads, TILE = C::kTile, NW = C::kWarps, DM = C::kDmax;
    pdl_trigger();
    pdl_wait();
    __shared__ AttnSmem<C> sm;
    __shared__ __align__(16) float sq[HB][DM];  // the CTA's query heads after norm and RoPE

    const cg::cluster_group cluster = cg::this_cluster();
    const int rank = int(cluster.block_rank()), ncl = int(cluster.num_blocks());
    const AttnHeads<C> hd(nq, nkv, hblocks);
    const int g = hd.g, h0 = hd.h0, nh = hd.nh;
    const AttnLane<C> ln;
    const int64_t ldkv = int64_t(nkv) * D;
    const int64_t slot = *d_slot0;
    const int n_keys = int(max(min(slot + 1, int64_t(capacity)), int64_t(0)));
    const bool holds_new = slot >= 0 && slot < capacity && int((slot / kAttnGranule) % ncl) == rank;
    const float pos = float(slot + pos_delta);

    // 1. q heads, then (holds_new) the new key and value
    const int jobs = nh + (holds_new ? 2 : 0);
    for (int j = ln.w; j < jobs; j += NW) {  // warp-uniform
        if (j < nh) {
            norm_rope_head_warp(qkv + int64_t(h0 + j) * D, q_norm, eps, inv_freq, pos, D, ln.lane, &sq[j][0],
                                nullptr);
        } else if (j == nh) {
            norm_rope_head_warp(qkv + int64_t(nq + g) * D, k_norm, eps, inv_freq, pos, D, ln.lane, nullptr,
                                k_cache + slot * ldkv + int64_t(g) * D);
        } else {
            const float* x = qkv + int64_t(nq + nkv + g) * D;  // [D]
            uint16_t* dst = v_cache + slot * ldkv + int64_t(g) * D;
            for (int d = ln.lane; d < D; d += 32) dst[d] = to_bf16(x[d]);
        }
    }
    __syncthreads();  // sq ready; the new cache row visible to the CTA
    float qr[HB][C::kNv][C::kVec];
    load_q_lane<C>(&sq[0][0], DM, nh, D, ln, qr);

    // 2. the CTA's chunks in one online softmax
    AttnState<C> st;
    st.reset();
    const uint16_t* kbase = k_cache + int64_t(g) * D;
    const uint16_t* vbase = v_cache + int64_t(g) * D;
    for (int k0 = rank * kAttnGranule; k0 < n_keys; k0 += ncl * kAttnGranule) {
        const int k_end = min(k0 + kAttnGranule, n_keys);
        for (int kt = k0; kt < k_end; kt += TILE)
            attend_tile<C, true>(kbase, vbase, ldkv, D, scale, kt, min(TILE, k_end - kt), nh, ln, qr, st, sm);
    }

    // 3. partials, then the cluster's merge
    publish_partials<C>(st, nh, D, ln, sm);
    for (int idx = threadIdx.x; idx < nh * D; idx += blockDim.x) {  // the CTA's sum into red[0] (same thread)
        const int i = idx / D, d = idx % D;
        float sum = 0.f;
#pragma unroll
        for (int ww = 0; ww < NW; ++ww) sum += sm.red[ww][i][d];
        sm.red[0][i][d] = sum;
    }
    cluster.sync();
    for (int idx = rank * int(blockDim.x) + int(threadIdx.x); idx < nh * D; idx += ncl * int(blockDim.x)) {
        const int i = idx / D, d = idx % D;
        float M = -INFINITY;
        for (int c = 0; c < ncl; ++c) M = fmaxf(M, cluster.map_shared_rank(&sm.ml_s[i][0], c)[0]);
        float num = 0.f, den = 0.f;
        for (int c = 0; c < ncl; ++c) {  // fixed order: deterministic
            const float* ml = cluster.map_shared_rank(&sm.ml_s[i][0], c);
            const float wt = ml[0] == -INFINITY ? 0.f : expf(ml[0] - M);
            num += wt * cluster.map_shared_rank(&sm.red[0][i][d], c)[0];
            den += wt * ml[1];
        }
        o[int64_t(h0 + i) * D + d] = den > 0.f ? num / den : 0.f;
    }
    cluster.sync();
#endif
}

// grid (nq, ceil(D / 32)), block 1024: o[h][d] for 32 dims d of head h,
//   o[h][d] = Σ_s e^(m_s − M) acc_s[d] / Σ_s e^(m_s − M) l_s,  M = max_s m_s,
// over the splits s that hold keys (T = 1: n_keys = min(slot0 + 1, max_keys), splits 0 .. ceil(n_keys / chunk) − 1).
// Thread s reads split s's (m, l); warp w sums the splits w, w + 32, ... of the CTA's 32 dims (one coalesced row
// segment per split), then warp 0 adds the 32 warp sums in a fixed order.
constexpr int kMergeThreads = 1024;
static_assert(kMaxSplits <= kMergeThreads, "the merge reads one split's (m, l) per thread");

__global__ void __launch_bounds__(kMergeThreads)
    attn_merge_kernel(const float* __restrict__ ws_o, const float* __restrict__ ws_ml, int nq, int D,
                      const int32_t* __restrict__ d_slot0, int max_keys, int chunk, int nsplit, float* __restrict__ o) {
    __shared__ float wgt[kMaxSplits];
    __shared__ float red[32];
    __shared__ float part[32][33];
    pdl_trigger();  // PDL (ops/cuda/pdl.cuh)
    pdl_wait();
    const int h = blockIdx.x;
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int d = blockIdx.y * 32 + lane;
    const int64_t n_keys = max(min(int64_t(*d_slot0) + 1, int64_t(max_keys)), int64_t(0));
    const int ns = int(min((n_keys + chunk - 1) / chunk, int64_t(nsplit)));
    const int s = threadIdx.x;
    const float m = s < ns ? ws_ml[(int64_t(s) * nq + h) * 2] : -INFINITY;
    const float l = s < ns ? ws_ml[(int64_t(s) * nq + h) * 2 + 1] : 0.f;
    const float M = block_max(m, red);
    const float wt = m == -INFINITY ? 0.f : expf(m - M);  // an empty split (none is read) would weigh 0
    if (s < ns) wgt[s] = wt;
    const float L = block_sum(wt * l, red);  // its barriers also publish wgt
    float a = 0.f;
    if (d < D) {
#pragma unroll 4
        for (int k = w; k < ns; k += 32) a += wgt[k] * ws_o[(int64_t(k) * nq + h) * D + d];
    }
    part[w][lane] = a;
    __syncthreads();
    if (w == 0 && d < D) {
        float sum = 0.f;
        for (int k = 0; k < 32; ++k) sum += part[k][lane];
        o[int64_t(h) * D + d] = L > 0.f ? sum / L : 0.f;
    }
}

// The launch plan of decode_attention (host arguments only).
struct AttnPlan {
    int heads;    // query heads per CTA: 2, 4 or 8
    int hblocks;  // CTAs per kv head along the query heads of its group
    int nsplit;   // key splits (1: direct)
    int chunk;    // keys per split, a multiple of kAttnGranule
    int nblk;     // CTAs per (kv head, head block) along the splits (each walks splits nblk apart)
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t max_splits(int64_t T, int64_t max_keys) {
    return T == 1 ? std::min<int64_t>(kMaxSplits, ceil_div(max_keys, kAttnGranule)) : 1;
}

AttnPlan plan_attention(int64_t T, int nq, int nkv, int64_t max_keys) {
    AttnPlan p;
    const int r = nq / nkv;
    p.heads = r <= 2 ? 2 : (r <= 4 ? 4 : 8);
    p.hblocks = int(ceil_div(r, p.heads));
    const int64_t granules = ceil_div(max_keys, kAttnGranule);
    p.nsplit = 1;
    p.chunk = int(granules * kAttnGranule);
    const int64_t ns = max_splits(T, max_keys);  // T = 1: one split per granule up to kMaxSplits
    if (ns > 1) {
        const int64_t per = ceil_div(granules, ns);  // granules per split
        p.nsplit = int(ceil_div(granules, per));     // ≥ 2 and ≤ ns
        p.chunk = int(per * kAttnGranule);
    }
    p.nblk = int(std::min<int64_t>(p.nsplit, std::max<int64_t>(1, kTargetCtas / (int64_t(nkv) * p.hblocks))));
    return p;
}

template <class C>
void launch_attention(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, int64_t T, int nq, int nkv,
                      int D, float scale, const int32_t* d_slot0, int64_t max_keys, float* o, void* workspace,
                      const AttnPlan& p, cudaStream_t stream) {
    float* ws_o = p.nsplit > 1 ? static_cast<float*>(workspace) : nullptr;   // [nsplit, nq, D]
    float* ws_ml = p.nsplit > 1 ? ws_o + int64_t(p.nsplit) * nq * D : nullptr;  // [nsplit, nq, 2]
    const int direct = p.nsplit == 1 ? 1 : 0;
    const dim3 grid(unsigned(p.nblk), unsigned(nkv * p.hblocks), unsigned(T));
    launch_pdl(attn_kernel<C>, grid, dim3(C::kThreads), 0, stream, q, k_cache, v_cache, nq, nkv, D, scale, d_slot0,
               int(max_keys), p.chunk, p.hblocks, direct, o, ws_o, ws_ml);
    if (!direct) {
        const dim3 mgrid(unsigned(nq), unsigned((D + 31) / 32));
        launch_pdl(attn_merge_kernel, mgrid, dim3(kMergeThreads), 0, stream, ws_o, ws_ml, nq, D, d_slot0,
                   int(max_keys), p.chunk, p.nsplit, o);
    }
}

// The head-dim path (VEC, NV, LPK, DMAX) for HB query heads per CTA.
template <int HB>
void launch_attention_hb(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, int64_t T, int nq,
                         int nkv, int D, float scale, const int32_t* d_slot0, int64_t max_keys, float* o,
                         void* workspace, const AttnPlan& p, cudaStream_t stream) {
    if (D == 64)
        launch_attention<AttnCfg<8, 1, 8, 64, HB>>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o,
                                                   workspace, p, stream);
    else if (D == 128)
        launch_attention<AttnCfg<8, 1, 16, 128, HB>>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o,
                                                     workspace, p, stream);
    else if (D == 256)
        launch_attention<AttnCfg<8, 1, 32, 256, HB>>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o,
                                                     workspace, p, stream);
    else
        launch_attention<AttnCfg<2, 4, 32, 256, HB>>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o,
                                                     workspace, p, stream);
}

// ---- SwiGLU -----------------------------------------------------------------------------------------------------

// grid (x, min(T, 65535)), block 256: rows t = blockIdx.y, + gridDim.y, ...; columns grid-strided.
__global__ void swiglu_kernel(const float* __restrict__ gu, int64_t T, int64_t I, float* __restrict__ act_f32,
                              uint16_t* __restrict__ act_bf16) {
    for (int64_t t = blockIdx.y; t < T; t += gridDim.y) {
        const float* gate = gu + t * 2 * I;  // [I]
        const float* up = gate + I;          // [I]
        for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < I; i += int64_t(gridDim.x) * blockDim.x) {
            const float g = gate[i];
            const float a = g / (1.0f + expf(-g)) * up[i];
            if (act_f32) act_f32[t * I + i] = a;
            if (act_bf16) act_bf16[t * I + i] = to_bf16(a);
        }
    }
}

// ---- argmax -----------------------------------------------------------------------------------------------------

// (value, index) candidate: a wins over b when greater, or equal with a lower index. NaN values are never
// candidates (std::max_element never moves onto a NaN; a NaN at index 0 is handled by the caller).
__device__ __forceinline__ void arg_better(float& bv, int& bi, float v, int i) {
    if (v > bv || (v == bv && i < bi)) {
        bv = v;
        bi = i;
    }
}

// grid (T), block 1024: out[t] = argmax of logits[t] [V].
__global__ void argmax_kernel(const float* __restrict__ logits, int64_t V, int32_t* __restrict__ out) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const float* row = logits + int64_t(blockIdx.x) * V;
    float bv = -INFINITY;
    int bi = kNoIndex;
    // this thread's indices increase, so "strictly greater" keeps the lowest index of equal values
    const bool vec = (V % 4 == 0) && (reinterpret_cast<uintptr_t>(row) % 16 == 0);
    const int64_t v4 = vec ? V / 4 : 0;
    for (int64_t k = threadIdx.x; k < v4; k += blockDim.x) {
        const float4 x = __ldg(reinterpret_cast<const float4*>(row) + k);
        const int i = int(4 * k);
        if (x.x > bv) bv = x.x, bi = i;
        if (x.y > bv) bv = x.y, bi = i + 1;
        if (x.z > bv) bv = x.z, bi = i + 2;
        if (x.w > bv) bv = x.w, bi = i + 3;
    }
    for (int64_t i = 4 * v4 + threadIdx.x; i < V; i += blockDim.x) {
        const float x = row[i];
        if (x > bv) bv = x, bi = int(i);
    }
    // A thread that saw only −inf or NaN keeps (−inf, INT_MAX); if the whole block did, the row's maximum is −inf
    // (or there is none) and std::max_element's answer is index 0 (see the end).
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float ov = __shfl_xor_sync(kFull, bv, off);
        const int oi = __shfl_xor_sync(kFull, bi, off);
        arg_better(bv, bi, ov, oi);
    }
    const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) {
        sv[w] = bv;
        si[w] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int k = 1; k < int(blockDim.x >> 5); ++k) arg_better(bv, bi, sv[k], si[k]);
        // No finite or +inf value above -inf (every value -inf or NaN), or a NaN first value: std::max_element
        // gives index 0.
        const float first = row[0];
        if (bi == kNoIndex || first != first) bi = 0;
        out[blockIdx.x] = bi;
    }
}

// ---- top-k candidates ---------------------------------------------------------------------------------------------

// Order-preserving key of a float (larger float, larger key; −0 keyed as +0 so that the two compare equal).
__device__ __forceinline__ uint32_t order_key(float f) {
    const uint32_t u = f == 0.f ? 0u : __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

constexpr int kTopkThreads = 1024;

// grid 1, block kTopkThreads: the transform into scratch, a radix select of the k-th largest key (four rounds of
// 8 bits over a 256-bin shared histogram), then the compaction of every key ≥ it.
__global__ void __launch_bounds__(kTopkThreads)
    topk_candidates_kernel(const float* __restrict__ logits, int64_t V, uint8_t* seen, int32_t mark, float penalty,
                           float temperature, int k, int cap, float* __restrict__ scratch, int32_t* __restrict__ out_idx,
                           float* __restrict__ out_val, int32_t* __restrict__ out_count) {
    __shared__ int hist[256];
    __shared__ uint32_t sh_prefix, sh_mask;
    __shared__ int sh_krem, sh_nan;
    if (threadIdx.x == 0) {
        if (mark >= 0 && seen) seen[mark] = 1;
        sh_prefix = 0u;
        sh_mask = 0u;
        sh_krem = k;
        sh_nan = 0;
        out_count[0] = 0;
        out_count[1] = 0;
    }
    __syncthreads();
    bool nan_seen = false;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        float t = logits[i];
        if (penalty != 1.f && seen && seen[i]) t = t > 0 ? t / penalty : t * penalty;
        t /= temperature;
        nan_seen |= t != t;
        scratch[i] = t;
    }
    if (nan_seen) sh_nan = 1;  // benign race: every writer stores 1
    __syncthreads();
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
        __syncthreads();
        const uint32_t prefix = sh_prefix, mask = sh_mask;
        for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
            const uint32_t key = order_key(scratch[i]);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1);
        }
        __syncthreads();
        if (threadIdx.x == 0) {  // the bin holding the krem-th largest key among those matching the prefix
            int krem = sh_krem, b = 255;
            for (; b > 0 && hist[b] < krem; --b) krem -= hist[b];
            sh_krem = krem;
            sh_prefix = prefix | (uint32_t(b) << shift);
            sh_mask = mask | (255u << shift);
        }
        __syncthreads();
    }
    const uint32_t kth = sh_prefix;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
        const float t = scratch[i];
        if (order_key(t) >= kth && t != -INFINITY) {
            const int pos = atomicAdd(&out_count[0], 1);
            if (pos < cap) {
                out_idx[pos] = int32_t(i);
                out_val[pos] = t;
            }
        }
    }
    if (threadIdx.x == 0 && sh_nan) out_count[1] = 1;
}

// ---- token NLL --------------------------------------------------------------------------------------------------

// grid (T), block 512: nll[t] = log Σ exp(double(l) − mx) + mx − l[target] (NaN for a target outside [0, V)).
__global__ void token_nll_kernel(const float* __restrict__ logits, const int32_t* __restrict__ targets, int64_t V,
                                 double* __restrict__ nll) {
    __shared__ float redf[32];
    __shared__ double redd[32];
    const float* row = logits + int64_t(blockIdx.x) * V;
    float mx = -INFINITY;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = fmaxf(mx, row[i]);
    mx = block_max(mx, redf);
    double s = 0.0;
    const double md = double(mx);
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) s += exp(double(row[i]) - md);
    s = block_sum(s, redd);
    if (threadIdx.x == 0) {
        const int64_t tg = targets[blockIdx.x];
        nll[blockIdx.x] = (tg >= 0 && tg < V) ? log(s) + md - double(row[tg]) : nan("");
    }
}

// ---- f32 → bf16 -------------------------------------------------------------------------------------------------

__global__ void f32_to_bf16_kernel(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = to_bf16(src[i]);
}

// The decode step's fused attention for the head-dim path (VEC, NV, LPK, DMAX) of C, cluster of ncl CTAs.
template <class C>
void launch_attention_step(const float* qkv, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                           float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta,
                           uint16_t* k_cache, uint16_t* v_cache, int64_t capacity, float scale, int hblocks, int ncl,
                           float* o, cudaStream_t stream) {
    const dim3 grid(unsigned(ncl), unsigned(nkv * hblocks));
    launch_pdl_cluster(attn_step_kernel<C>, grid, dim3(C::kThreads), 0, stream, unsigned(ncl), qkv, nq, nkv, D,
                       q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, k_cache, v_cache, int(capacity), scale,
                       hblocks, o);
}

template <int HB>
void launch_attention_step_hb(const float* qkv, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                              float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta,
                              uint16_t* k_cache, uint16_t* v_cache, int64_t capacity, float scale, int hblocks,
                              int ncl, float* o, cudaStream_t stream) {
#define AR_STEP_ARGS qkv, nq, nkv, D, q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, k_cache, v_cache, capacity, \
                     scale, hblocks, ncl, o, stream
    if (D == 64) launch_attention_step<AttnCfg<8, 1, 8, 64, HB>>(AR_STEP_ARGS);
    else if (D == 128) launch_attention_step<AttnCfg<8, 1, 16, 128, HB>>(AR_STEP_ARGS);
    else if (D == 256) launch_attention_step<AttnCfg<8, 1, 32, 256, HB>>(AR_STEP_ARGS);
    else launch_attention_step<AttnCfg<2, 4, 32, 256, HB>>(AR_STEP_ARGS);
#undef AR_STEP_ARGS
}

// Whether decode_attention_step runs the fused kernel (else the two-kernel path): its body needs thread-block
// clusters and is compiled out below sm_90.
bool step_fused(int64_t capacity) { return capacity <= kStepMaxKeys && device_runs_sm90_code(); }

// ---- argument checks --------------------------------------------------------------------------------------------

void check_ptr(const char* what, const char* name, const void* p, int align) {
    check(p != nullptr, what, ": ", name, " is null");
    check(reinterpret_cast<uintptr_t>(p) % uintptr_t(align) == 0, what, ": ", name, " is not ", align,
          "-byte aligned");
}

void check_rows(const char* what, int64_t T, const char* tn, int64_t n, const char* nn) {
    check(T >= 0 && T <= kIntMax, what, ": ", tn, " = ", T, " is outside [0, 2^31)");
    check(n >= 1, what, ": ", nn, " = ", n, " must be positive");
}

void check_heads(const char* what, int nq, int nkv, int D) {
    check(nq > 0 && nkv > 0 && nq % nkv == 0, what, ": ", nq, " query heads are not a positive multiple of ", nkv,
          " kv heads");
    check(D > 0 && D % 2 == 0 && D <= kMaxHeadDim, what, ": head_dim ", D, " must be even and at most ", kMaxHeadDim);
}

}  // namespace

void embed_rows_bf16(const uint16_t* table, int64_t V, const int32_t* ids, int64_t T, int64_t H, float* x,
                     cudaStream_t stream) {
    const char* what = "embed_rows_bf16";
    check_rows(what, T, "T", H, "H");
    check(V >= 1, what, ": vocabulary size ", V, " must be positive");
    if (T == 0) return;
    check_ptr(what, "table", table, 2);
    check_ptr(what, "ids", ids, 4);
    check_ptr(what, "x", x, 4);
    embed_kernel<<<unsigned(T), 256, 0, stream>>>(table, V, ids, H, x);
    AR_CUDA_CHECK(cudaGetLastError());
}

void rms_norm_rows(const float* x, const float* w, int64_t T, int64_t H, float eps, float* y_f32, uint16_t* y_bf16,
                   cudaStream_t stream) {
    const char* what = "rms_norm_rows";
    check_rows(what, T, "T", H, "H");
    check(y_f32 != nullptr || y_bf16 != nullptr, what, ": both outputs (y_f32, y_bf16) are null");
    if (T == 0) return;
    check_ptr(what, "x", x, 4);
    check_ptr(what, "w", w, 4);
    if (y_f32) check_ptr(what, "y_f32", y_f32, 4);
    if (y_bf16) check_ptr(what, "y_bf16", y_bf16, 2);
    const int threads = H > 2048 ? 512 : 256;
    rms_norm_kernel<<<unsigned(T), threads, 0, stream>>>(x, w, H, eps, y_f32, y_bf16);
    AR_CUDA_CHECK(cudaGetLastError());
}

void qk_norm_rope_cache(const float* qkv, int64_t T, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                        float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta, float* q_f32,
                        uint16_t* q_bf16, uint16_t* k_cache, uint16_t* v_cache, int64_t capacity,
                        cudaStream_t stream) {
    const char* what = "qk_norm_rope_cache";
    check_heads(what, nq, nkv, D);
    check(T >= 0 && T <= 65535, what, ": T = ", T, " is outside [0, 65535]");
    check(capacity >= 1, what, ": cache capacity ", capacity, " must be positive");
    check(q_f32 != nullptr || q_bf16 != nullptr, what, ": both q outputs (q_f32, q_bf16) are null");
    check(int64_t(nq) + 2 * int64_t(nkv) <= kIntMax / 2, what, ": too many heads");
    if (T == 0) return;
    check_ptr(what, "qkv", qkv, 4);
    check_ptr(what, "inv_freq", inv_freq, 4);
    check_ptr(what, "d_slot0", d_slot0, 4);
    check_ptr(what, "k_cache", k_cache, 2);
    check_ptr(what, "v_cache", v_cache, 2);
    if (q_norm) check_ptr(what, "q_norm", q_norm, 4);
    if (k_norm) check_ptr(what, "k_norm", k_norm, 4);
    if (q_f32) check_ptr(what, "q_f32", q_f32, 4);
    if (q_bf16) check_ptr(what, "q_bf16", q_bf16, 2);
    const int n_heads = nq + 2 * nkv;
    const dim3 grid(unsigned((n_heads + kRopeWarps - 1) / kRopeWarps), unsigned(T));
    launch_pdl(qk_norm_rope_kernel, grid, dim3(kRopeWarps * 32), 0, stream, qkv, nq, nkv, D, q_norm, k_norm, eps,
               inv_freq, d_slot0, pos_delta, q_f32, q_bf16, k_cache, v_cache, capacity);
}

size_t decode_attention_workspace_bytes(int64_t T, int nq, int D, int64_t max_keys) {
    if (T != 1 || max_keys < 1 || nq < 1 || D < 1) return 0;
    const int64_t ns = max_splits(T, max_keys);
    return ns > 1 ? size_t(ns) * size_t(nq) * size_t(D + 2) * sizeof(float) : 0;
}

void decode_attention(const float* q, const uint16_t* k_cache, const uint16_t* v_cache, int64_t T, int nq, int nkv,
                      int D, float scale, const int32_t* d_slot0, int64_t max_keys, float* o, void* workspace,
                      cudaStream_t stream) {
    const char* what = "decode_attention";
    check_heads(what, nq, nkv, D);
    check(T >= 0 && T <= 65535, what, ": T = ", T, " is outside [0, 65535]");
    check(max_keys >= T && max_keys >= 1 && max_keys <= kIntMax - kAttnGranule, what, ": max_keys ", max_keys,
          " must be at least T = ", T, " (and below 2^31 − 128)");
    if (T == 0) return;
    const AttnPlan p = plan_attention(T, nq, nkv, max_keys);
    check(int64_t(nkv) * p.hblocks <= 65535, what, ": too many kv heads (", nkv, ")");
    const bool fast = D == 64 || D == 128 || D == 256;  // 16-byte K/V loads
    check_ptr(what, "q", q, fast ? 16 : 8);
    check_ptr(what, "k_cache", k_cache, fast ? 16 : 4);
    check_ptr(what, "v_cache", v_cache, fast ? 16 : 4);
    check_ptr(what, "d_slot0", d_slot0, 4);
    check_ptr(what, "o", o, 4);
    if (p.nsplit > 1) check_ptr(what, "workspace", workspace, 4);
    if (p.heads == 2)
        launch_attention_hb<2>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o, workspace, p, stream);
    else if (p.heads == 4)
        launch_attention_hb<4>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o, workspace, p, stream);
    else
        launch_attention_hb<8>(q, k_cache, v_cache, T, nq, nkv, D, scale, d_slot0, max_keys, o, workspace, p, stream);
}

namespace {
// The two-kernel path's q at the start of the workspace, rounded up to 16 bytes (the split attention's part follows).
size_t step_q_bytes(int nq, int D) { return (size_t(nq) * size_t(D) * sizeof(float) + 15) / 16 * 16; }
}  // namespace

size_t decode_attention_step_workspace_bytes(int nq, int D, int64_t capacity) {
    if (nq < 1 || D < 1 || capacity < 1) return 0;
    return step_q_bytes(nq, D) + decode_attention_workspace_bytes(1, nq, D, capacity);
}

void decode_attention_step(const float* qkv, int nq, int nkv, int D, const float* q_norm, const float* k_norm,
                           float eps, const float* inv_freq, const int32_t* d_slot0, int64_t pos_delta,
                           uint16_t* k_cache, uint16_t* v_cache, int64_t capacity, float scale, float* o,
                           void* workspace, cudaStream_t stream) {
    const char* what = "decode_attention_step";
    check_heads(what, nq, nkv, D);
    check(capacity >= 1 && capacity <= kIntMax - kAttnGranule, what, ": cache capacity ", capacity,
          " must be in [1, 2^31 − 128)");
    if (!step_fused(capacity)) {  // two kernels; q through the workspace
        check_ptr(what, "workspace", workspace, 16);
        float* q = static_cast<float*>(workspace);
        qk_norm_rope_cache(qkv, 1, nq, nkv, D, q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, q, nullptr, k_cache,
                           v_cache, capacity, stream);
        decode_attention(q, k_cache, v_cache, 1, nq, nkv, D, scale, d_slot0, capacity, o,
                         static_cast<unsigned char*>(workspace) + step_q_bytes(nq, D), stream);
        return;
    }
    const AttnPlan p = plan_attention(1, nq, nkv, capacity);
    check(int64_t(nkv) * p.hblocks <= 65535, what, ": too many kv heads (", nkv, ")");
    const bool fast = D == 64 || D == 128 || D == 256;  // 16-byte K/V loads
    check_ptr(what, "qkv", qkv, 4);
    check_ptr(what, "inv_freq", inv_freq, 4);
    check_ptr(what, "d_slot0", d_slot0, 4);
    check_ptr(what, "k_cache", k_cache, fast ? 16 : 4);
    check_ptr(what, "v_cache", v_cache, fast ? 16 : 4);
    check_ptr(what, "o", o, 4);
    if (q_norm) check_ptr(what, "q_norm", q_norm, 4);
    if (k_norm) check_ptr(what, "k_norm", k_norm, 4);
    const int ncl = int(std::min<int64_t>(kStepMaxCluster, ceil_div(capacity, kAttnGranule)));
    if (p.heads == 2)
        launch_attention_step_hb<2>(qkv, nq, nkv, D, q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, k_cache,
                                    v_cache, capacity, scale, p.hblocks, ncl, o, stream);
    else if (p.heads == 4)
        launch_attention_step_hb<4>(qkv, nq, nkv, D, q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, k_cache,
                                    v_cache, capacity, scale, p.hblocks, ncl, o, stream);
    else
        launch_attention_step_hb<8>(qkv, nq, nkv, D, q_norm, k_norm, eps, inv_freq, d_slot0, pos_delta, k_cache,
                                    v_cache, capacity, scale, p.hblocks, ncl, o, stream);
}

void swiglu_rows(const float* gu, int64_t T, int64_t I, float* act_f32, uint16_t* act_bf16, cudaStream_t stream) {
    const char* what = "swiglu_rows";
    check_rows(what, T, "T", I, "I");
    check(act_f32 != nullptr || act_bf16 != nullptr, what, ": both outputs (act_f32, act_bf16) are null");
    if (T == 0) return;
    check_ptr(what, "gu", gu, 4);
    if (act_f32) check_ptr(what, "act_f32", act_f32, 4);
    if (act_bf16) check_ptr(what, "act_bf16", act_bf16, 2);
    const dim3 grid(unsigned(std::min<int64_t>(ceil_div(I, 256), 1024)), unsigned(std::min<int64_t>(T, 65535)));
    swiglu_kernel<<<grid, 256, 0, stream>>>(gu, T, I, act_f32, act_bf16);
    AR_CUDA_CHECK(cudaGetLastError());
}

void argmax_rows(const float* logits, int64_t T, int64_t V, int32_t* out, cudaStream_t stream) {
    const char* what = "argmax_rows";
    check_rows(what, T, "T", V, "V");
    check(V <= kIntMax, what, ": V = ", V, " does not fit an int32 index");
    if (T == 0) return;
    check_ptr(what, "logits", logits, 4);
    check_ptr(what, "out", out, 4);
    argmax_kernel<<<unsigned(T), 1024, 0, stream>>>(logits, V, out);
    AR_CUDA_CHECK(cudaGetLastError());
}

void topk_candidates(const float* logits, int64_t V, uint8_t* seen, int32_t mark, float penalty, float temperature,
                     int k, int cap, float* scratch, int32_t* out_idx, float* out_val, int32_t* out_count,
                     cudaStream_t stream) {
    const char* what = "topk_candidates";
    check(V >= 1 && V <= kIntMax, what, ": V = ", V, " must be in [1, 2^31)");
    check(k >= 1 && k <= V, what, ": k = ", k, " must be in [1, V = ", V, "]");
    check(cap >= 1, what, ": cap = ", cap, " must be positive");
    check(temperature > 0.f, what, ": temperature ", temperature, " must be positive");
    check(penalty == 1.f || seen, what, ": a repetition penalty needs the seen flags");
    check(mark < V, what, ": mark ", mark, " is outside the vocabulary");
    check_ptr(what, "logits", logits, 4);
    check_ptr(what, "scratch", scratch, 4);
    check_ptr(what, "out_idx", out_idx, 4);
    check_ptr(what, "out_val", out_val, 4);
    check_ptr(what, "out_count", out_count, 4);
    topk_candidates_kernel<<<1, kTopkThreads, 0, stream>>>(logits, V, seen, mark, penalty, temperature, k, cap, scratch,
                                                          out_idx, out_val, out_count);
    AR_CUDA_CHECK(cudaGetLastError());
}

void token_nll_rows(const float* logits, const int32_t* targets, int64_t T, int64_t V, double* nll,
                    cudaStream_t stream) {
    const char* what = "token_nll_rows";
    check_rows(what, T, "T", V, "V");
    if (T == 0) return;
    check_ptr(what, "logits", logits, 4);
    check_ptr(what, "targets", targets, 4);
    check_ptr(what, "nll", nll, 8);
    token_nll_kernel<<<unsigned(T), 512, 0, stream>>>(logits, targets, V, nll);
    AR_CUDA_CHECK(cudaGetLastError());
}

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n, cudaStream_t stream) {
    const char* what = "f32_to_bf16";
    check(n >= 0, what, ": negative count ", n);
    if (n == 0) return;
    check_ptr(what, "src", src, 4);
    check_ptr(what, "dst", dst, 2);
    const unsigned blocks = unsigned(std::min<int64_t>(ceil_div(n, 256), 8192));
    f32_to_bf16_kernel<<<blocks, 256, 0, stream>>>(src, dst, n);
    AR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace autoround
