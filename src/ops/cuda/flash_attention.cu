// ops/cuda/flash_attention.cu — see flash_attention.h. Causal GQA attention forward and backward with bf16 mma.sync
// (m16n8k16, FP32 accumulators), ldmatrix fragment loads and cp.async double-buffered tiles; the argument checks,
// the backward's Δ pre-pass and the choice of kernels (on Hopper with sm_90a code the wgmma kernels of
// flash_attention_sm90.cu take the forward and the backward's main pass).
//
// Forward (default: one CTA of 4 warps per 128 query rows of one (batch, query head); each warp owns 32 rows as two
// 16-row m-tiles, so each K/V fragment read from shared memory feeds two MMAs; 104,448 bytes of shared memory at
// D 128, 2 CTAs per SM):
//   K/V tiles of 64 keys stream through two shared-memory buffers, the next one loading while the current one is used.
//   Per key tile a warp computes its 32×64 scores (Q fragments re-read from shared memory), applies the causal mask
//   (only on the tiles that cross the diagonal; tiles wholly after the warp's rows are skipped), updates the running
//   max m and sum l in the log2 domain (exp2 of scale·log2e·S), rescales its O accumulators and adds P·V, P packed to
//   bf16 A fragments straight from the score accumulators (the C layout of two n8 tiles is the A layout of one k16).
//   Epilogue: o = O / l through shared memory into 16-byte stores, lse = ln2 · (m + log2 l).
//   Grid: (b·nq, query tiles), the query tile index reversed so the longest (last) tiles start first.
// Backward (default: one CTA of 8 warps per 128 keys of one (batch, kv head), 177,152 bytes of shared memory at
// D 128; devices with less opt-in shared memory (A100) get 64-key CTAs. A CTA loops over the nq/nkv query heads of
// its group and the 64-row query tiles at or after its keys, so dk and dv are summed in registers and written once):
//   pre-pass: Δ_i = Σ_d dO·o per (row, head) into the workspace; dq zeroed.
//   per step (one 64-row query tile of one head; Q, dO, lse, Δ double-buffered through cp.async):
//     phase 1 — warp w computes, for keys 16·w..+15 and all 64 queries (64-key CTAs: keys 16·(w%4), queries
//       32·(w/4), K and V fragments held in registers), Sᵀ = K Qᵀ and dPᵀ = V dOᵀ, then
//       Pᵀ = exp2(Sᵀ·scale·log2e − lse·log2e) (masked) and dSᵀ = Pᵀ ∘ (dPᵀ − Δ); both go to shared memory as bf16
//       [key][query].
//     phase 2 — warp w owns key rows (BC/4)·(w%4).. and columns (D/2)·(w/4).. of dV += Pᵀ dO and dK += dSᵀ Q
//       (register accumulators over all steps), and query rows 16·(w%4).., the same columns, of dQ_tile = dS K,
//       added to dq with FP32 atomics (float2 atomics on sm_90): dq = Σ over key CTAs, so its low bits depend on the
//       order the atomics land in.
//   dk = scale · dK and dv are written with plain stores at the end. Grid: (b·nkv, key tiles), key tile 0 (the
//   longest) first.
// Shared-memory rows are padded by 8 bf16 (16 bytes) so the 8 row addresses of each ldmatrix hit distinct banks.
// Measured (H100 80GB HBM3, b 8, L 2048, nq 32, nkv 8, D 128; bench/bench_flash_attention.cpp): forward 0.95 ms
// (290 TFLOP/s causal), backward 3.22 ms (214), forward + backward 4.14 ms (232); the configurations tried were
// forward 8 warps × 16 rows (1.21 ms), 4 × 16 (1.11), 4 × 32 with 32-key tiles (1.03); backward 64-key CTAs (4.39).
#include "ops/cuda/flash_attention.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <limits>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/flash_attention_common.cuh"
#include "ops/cuda/flash_attention_sm90.h"

namespace autoround {
namespace {

using bf16 = __nv_bfloat16;
using namespace fa_detail;  // kLog2e, kLn2, smem_u32, cp.async wrappers, pack_bf16, fast_exp2, tile loaders
// Tile configuration (the AR_FA_* macros only exist for tuning experiments; the defaults are the measured best).
#ifndef AR_FA_FWD_WARPS
#define AR_FA_FWD_WARPS 4  // forward: warps per CTA
#endif
#ifndef AR_FA_FWD_MTILES
#define AR_FA_FWD_MTILES 2  // forward: 16-row m-tiles per warp (1: Q fragments held in registers)
#endif
#ifndef AR_FA_FWD_KEYS
#define AR_FA_FWD_KEYS 64  // forward: keys per K/V tile
#endif
#ifndef AR_FA_BWD_KEYS
#define AR_FA_BWD_KEYS 128  // backward: keys per CTA (64 or 128; 64 where the device lacks the shared memory)
#endif
constexpr int kBwdBr = 64;          // backward: query rows per step
constexpr int kBwdThreads = 256;    // backward: 8 warps
constexpr int kPS = kBwdBr + 8;     // row stride (bf16) of the backward's Pᵀ / dSᵀ tiles

template <int D_, int NW, int MT_, int BC_>
struct FwdCfg {
    static constexpr int D = D_, WARPS = NW, MT = MT_, BC = BC_;
    static constexpr int BR = NW * 16 * MT;  // query rows per CTA
    static constexpr int S = D + 8;          // padded row stride (bf16)
    static constexpr size_t smem = size_t(BR + 4 * BC) * S * sizeof(bf16);
    static_assert(MT == 1 || MT == 2, "forward m-tiles per warp: 1 or 2");
    static_assert(BC % 16 == 0, "forward key tile: a multiple of 16");
};
template <int D_, int BC_>
struct BwdCfg {
    static constexpr int D = D_, BC = BC_;
    static constexpr int S = D + 8;
    static constexpr size_t smem = size_t(2 * BC + 4 * kBwdBr) * S * sizeof(bf16) +
                                   size_t(2 * BC * kPS) * sizeof(bf16) + size_t(4 * kBwdBr) * sizeof(float);
    static_assert(BC == 64 || BC == 128, "backward keys per CTA: 64 or 128");
};
template <int D>
using FwdDefault = FwdCfg<D, AR_FA_FWD_WARPS, AR_FA_FWD_MTILES, AR_FA_FWD_KEYS>;

// ---- PTX helpers ------------------------------------------------------------------------------------------------

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// d += a·b: a 16×16 (row), b 16×8 (col), bf16 in, FP32 accumulate.
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void atomic_add2(float* p, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float2*>(p), make_float2(a, b));
#else
    atomicAdd(p, a);
    atomicAdd(p + 1, b);
#endif
}

// Fragment addressing (lane = thread in warp; g = lane/4, t = lane%4 in the mma layouts), the row and column each
// lane hands to ldmatrix:
//   A 16×16 at (r0, c0) of a row-major tile:            ldsm_x4   row r0 + a_row, col c0 + a_col
//   B 16×8 ×2 (n-tiles n0, n0+8) from a tile [n][k]:    ldsm_x4   row n0 + bn_row, col k0 + bn_col
//   B 16×8 ×2 (n-tiles n0, n0+8) from a tile [k][n]:    ldsm_x4_t row k0 + a_row, col n0 + a_col
//   A 16×16 (rows m0, k k0) from a tile stored [k][m]:  ldsm_x4_t row k0 + bn_row, col m0 + bn_col
// with a_row = lane & 15, a_col = (lane >> 4)·8, bn_row = (lane & 7) + (lane >> 4)·8, bn_col = ((lane >> 3) & 1)·8.
__device__ __forceinline__ int a_row(int lane) { return lane & 15; }
__device__ __forceinline__ int a_col(int lane) { return (lane >> 4) * 8; }
__device__ __forceinline__ int bn_row(int lane) { return (lane & 7) + (lane >> 4) * 8; }
__device__ __forceinline__ int bn_col(int lane) { return ((lane >> 3) & 1) * 8; }

// ---- forward ----------------------------------------------------------------------------------------------------

template <class C>
__global__ void __launch_bounds__(C::WARPS * 32, C::WARPS <= 4 ? 2 : 1)
    fa_fwd_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int L, int nq,
                  int nkv, float scale_log2, bf16* __restrict__ o, float* __restrict__ lse) {
    constexpr int D = C::D, S = C::S, MT = C::MT, kFwdBr = C::BR, kFwdBc = C::BC;
    constexpr int CPR = D / 8;  // 16-byte chunks per row
    constexpr int T = C::WARPS * 32;
    constexpr int WR = 16 * MT;         // rows per warp
    constexpr bool kQReg = MT == 1;     // Q fragments in registers (else re-read from shared memory per tile)
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* sQ = reinterpret_cast<bf16*>(smem_raw);  // [Br][S]
    bf16* sK = sQ + kFwdBr * S;                     // [2][Bc][S]
    bf16* sV = sK + 2 * kFwdBc * S;                 // [2][Bc][S]

    const int bh = blockIdx.x, bi = bh / nq, h = bh % nq, g = h / (nq / nkv);
    const int q0 = (gridDim.y - 1 - blockIdx.y) * kFwdBr;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
    const int64_t ldq = int64_t(nq) * D, ldk = int64_t(nkv) * D;
    const bf16* qbase = q + int64_t(bi) * L * ldq + int64_t(h) * D;
    const bf16* kbase = k + int64_t(bi) * L * ldk + int64_t(g) * D;
    const bf16* vbase = v + int64_t(bi) * L * ldk + int64_t(g) * D;

    const auto padded = [](int r, int cc) { return uint32_t((r * S + cc * 8) * sizeof(bf16)); };  // row stride S
    load_rows_async(qbase, smem_u32(sQ), ldq, q0, kFwdBr, CPR, L, tid, T, padded);
    auto load_kv = [&](int j, int buf) {
        load_rows_async(kbase, smem_u32(sK + buf * kFwdBc * S), vbase, smem_u32(sV + buf * kFwdBc * S), ldk,
                        j * kFwdBc, kFwdBc, CPR, L, tid, T, padded);
    };
    const int kv_end = min(L, q0 + kFwdBr);
    const int nkb = (kv_end + kFwdBc - 1) / kFwdBc;
    load_kv(0, 0);
    cp_async_commit();

    const int wl0 = warp * WR;    // this warp's first row in the tile
    const int wr0 = q0 + wl0;     // ... and in the sequence
    uint32_t qf[kQReg ? D / 16 : 1][4];
    float oacc[MT][D / 8][4];
    float m[MT][2], l[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        m[mt][0] = m[mt][1] = -INFINITY;
        l[mt][0] = l[mt][1] = 0.f;
#pragma unroll
        for (int i = 0; i < D / 8; ++i) oacc[mt][i][0] = oacc[mt][i][1] = oacc[mt][i][2] = oacc[mt][i][3] = 0.f;
    }

    for (int j = 0; j < nkb; ++j) {
        cp_async_wait<0>();
        __syncthreads();
        if (kQReg && j == 0) {
#pragma unroll
            for (int kk = 0; kk < (kQReg ? D / 16 : 0); ++kk)
                ldsm_x4(qf[kk], smem_u32(sQ + (wl0 + a_row(lane)) * S + kk * 16 + a_col(lane)));
        }
        if (j + 1 < nkb) load_kv(j + 1, (j + 1) & 1);
        cp_async_commit();
        const int k0 = j * kFwdBc;
        if (k0 > wr0 + WR - 1) continue;  // warp-uniform: every key of the tile is after every row of the warp
        const bf16* cK = sK + (j & 1) * kFwdBc * S;
        const bf16* cV = sV + (j & 1) * kFwdBc * S;

        float s[MT][kFwdBc / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int i = 0; i < kFwdBc / 8; ++i) s[mt][i][0] = s[mt][i][1] = s[mt][i][2] = s[mt][i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t qa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                if (kQReg) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) qa[mt][e] = qf[kQReg ? kk : 0][e];
                } else {
                    ldsm_x4(qa[mt], smem_u32(sQ + (wl0 + mt * 16 + a_row(lane)) * S + kk * 16 + a_col(lane)));
                }
            }
#pragma unroll
            for (int np = 0; np < kFwdBc / 16; ++np) {
                uint32_t b[4];
                ldsm_x4(b, smem_u32(cK + (np * 16 + bn_row(lane)) * S + kk * 16 + bn_col(lane)));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816(s[mt][2 * np], qa[mt], b[0], b[1]);
                    mma16816(s[mt][2 * np + 1], qa[mt], b[2], b[3]);
                }
            }
        }
        // scale into the log2 domain, mask, online softmax
        const bool need_mask = k0 + kFwdBc - 1 > wr0;
        uint32_t pa[MT][kFwdBc / 16][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const int mr0 = wr0 + mt * 16;
            float mx[2] = {m[mt][0], m[mt][1]};
#pragma unroll
            for (int nt = 0; nt < kFwdBc / 8; ++nt) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    float x = s[mt][nt][e] * scale_log2;
                    if (need_mask) {
                        const int key = k0 + nt * 8 + 2 * tq + (e & 1), row = mr0 + gq + (e >> 1) * 8;
                        if (key > row) x = -INFINITY;
                    }
                    s[mt][nt][e] = x;
                    mx[e >> 1] = fmaxf(mx[e >> 1], x);
                }
            }
            float base[2], alpha[2];
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
                mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
                base[i] = mx[i] == -INFINITY ? 0.f : mx[i];
                alpha[i] = fast_exp2(m[mt][i] - base[i]);
                m[mt][i] = mx[i];
            }
            float rs[2] = {0.f, 0.f};
#pragma unroll
            for (int nt = 0; nt < kFwdBc / 8; ++nt) {
                float p[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    p[e] = fast_exp2(s[mt][nt][e] - base[e >> 1]);
                    rs[e >> 1] += p[e];
                }
                // P as bf16 A fragments right away: two n8 C tiles (keys 16kk..+7, +8..+15) are one k16 A fragment
                pa[mt][nt >> 1][(nt & 1) * 2] = pack_bf16(p[0], p[1]);
                pa[mt][nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(p[2], p[3]);
            }
            l[mt][0] = l[mt][0] * alpha[0] + rs[0];
            l[mt][1] = l[mt][1] * alpha[1] + rs[1];
#pragma unroll
            for (int dt = 0; dt < D / 8; ++dt) {
                oacc[mt][dt][0] *= alpha[0];
                oacc[mt][dt][1] *= alpha[0];
                oacc[mt][dt][2] *= alpha[1];
                oacc[mt][dt][3] *= alpha[1];
            }
        }
        // O += P V
#pragma unroll
        for (int kk = 0; kk < kFwdBc / 16; ++kk) {
#pragma unroll
            for (int dp = 0; dp < D / 16; ++dp) {
                uint32_t b[4];
                ldsm_x4_t(b, smem_u32(cV + (kk * 16 + a_row(lane)) * S + dp * 16 + a_col(lane)));
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816(oacc[mt][2 * dp], pa[mt][kk], b[0], b[1]);
                    mma16816(oacc[mt][2 * dp + 1], pa[mt][kk], b[2], b[3]);
                }
            }
        }
    }

    // epilogue: o = O / l (bf16) through this warp's own rows of sQ (only this warp ever read them), then 16-byte
    // stores; lse
    __syncwarp();
    bf16* sO = sQ + wl0 * S;
    float* lrow = lse + (int64_t(bi) * nq + h) * L;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        float inv[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            l[mt][i] += __shfl_xor_sync(0xffffffffu, l[mt][i], 1);
            l[mt][i] += __shfl_xor_sync(0xffffffffu, l[mt][i], 2);
            inv[i] = l[mt][i] > 0.f ? 1.f / l[mt][i] : 0.f;
            const int row = wr0 + mt * 16 + gq + 8 * i;
            if (tq == 0 && row < L) lrow[row] = (m[mt][i] + __log2f(l[mt][i])) * kLn2;
        }
#pragma unroll
        for (int dt = 0; dt < D / 8; ++dt) {
            *reinterpret_cast<uint32_t*>(sO + (mt * 16 + gq) * S + dt * 8 + 2 * tq) =
                pack_bf16(oacc[mt][dt][0] * inv[0], oacc[mt][dt][1] * inv[0]);
            *reinterpret_cast<uint32_t*>(sO + (mt * 16 + gq + 8) * S + dt * 8 + 2 * tq) =
                pack_bf16(oacc[mt][dt][2] * inv[1], oacc[mt][dt][3] * inv[1]);
        }
    }
    __syncwarp();
    bf16* obase = o + int64_t(bi) * L * ldq + int64_t(h) * D;
    for (int c = lane; c < WR * CPR; c += 32) {
        const int r = c / CPR, cc = c % CPR, row = wr0 + r;
        if (row < L)
            *reinterpret_cast<uint4*>(obase + int64_t(row) * ldq + cc * 8) =
                *reinterpret_cast<const uint4*>(sO + r * S + cc * 8);
    }
}

// ---- backward ---------------------------------------------------------------------------------------------------

// Δ[b, h, i] = Σ_d dO·o over head h of row (b, i), rows (row, head) in memory order: a row in LPR = D / 8 lanes (one
// 16-byte load of o and of dO each), 32 / LPR rows per warp. (One warp per row moved 4 bytes per lane and load and
// launched a block per 8 rows: for a 4B step, b 8 × L 2048 × 32 heads, ~65 K blocks for 268 MB, 128 µs against 71.)
template <int LPR>
__global__ void fa_bwd_delta_kernel(const bf16* __restrict__ o, const bf16* __restrict__ dO,
                                    int64_t n_rows_heads, int64_t L, int nq, float* __restrict__ delta) {
    constexpr int D = 8 * LPR;
    const int lane = threadIdx.x & 31, seg = lane % LPR;
    const int64_t w = ((int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5) * (32 / LPR) + lane / LPR;
    const bool live = w < n_rows_heads;  // dead segments still take part in the shuffles
    float acc = 0.f;
    if (live) {
        const uint4 ou = reinterpret_cast<const uint4*>(o + w * D)[seg];
        const uint4 du = reinterpret_cast<const uint4*>(dO + w * D)[seg];
        const __nv_bfloat162* a = reinterpret_cast<const __nv_bfloat162*>(&ou);
        const __nv_bfloat162* b = reinterpret_cast<const __nv_bfloat162*>(&du);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const float2 x = __bfloat1622float2(a[j]), y = __bfloat1622float2(b[j]);
            acc = fmaf(x.x, y.x, fmaf(x.y, y.y, acc));
        }
    }
#pragma unroll
    for (int off = LPR / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (live && seg == 0) {
        const int64_t row = w / nq, bi = row / L, i = row % L;
        const int h = int(w % nq);
        delta[(bi * nq + h) * L + i] = acc;
    }
}

template <class C>
__global__ void __launch_bounds__(kBwdThreads, 1)
    fa_bwd_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                  const bf16* __restrict__ dO, const float* __restrict__ lse, const float* __restrict__ delta, int L,
                  int nq, int nkv, float scale, float* __restrict__ dq, float* __restrict__ dk,
                  float* __restrict__ dv) {
    constexpr int D = C::D, S = C::S, BC = C::BC;
    constexpr int CPR = D / 8;
    constexpr int T = kBwdThreads;
    constexpr int KG = BC / 16;          // phase 1: key groups of 16 (4 or 8 warps along the keys)
    constexpr int QW = kBwdBr * KG / 8;  // phase 1: queries per warp (32 or 64)
    constexpr int NT1 = QW / 8;          // ... in n8 tiles
    constexpr bool kKVReg = BC == 64;    // phase 1: K, V fragments held in registers (else re-read per step)
    constexpr int RM = BC / 4;           // phase 2: dK/dV rows per warp (4 row groups × 2 column halves)
    constexpr int MT2 = RM / 16;
    constexpr int DH = D / 2;            // phase 2: columns per warp
    extern __shared__ __align__(16) unsigned char smem_raw[];
    bf16* sK = reinterpret_cast<bf16*>(smem_raw);  // [BC][S]
    bf16* sV = sK + BC * S;                         // [BC][S]
    bf16* sQ = sV + BC * S;                         // [2][Br][S]
    bf16* sdO = sQ + 2 * kBwdBr * S;                // [2][Br][S]
    bf16* sP = sdO + 2 * kBwdBr * S;                // [BC][kPS]  Pᵀ
    bf16* sdS = sP + BC * kPS;                      // [BC][kPS]  dSᵀ
    float* sL = reinterpret_cast<float*>(sdS + BC * kPS);  // [2][Br] lse
    float* sDl = sL + 2 * kBwdBr;                            // [2][Br] Δ

    const int bg = blockIdx.x, bi = bg / nkv, g = bg % nkv, r = nq / nkv;
    const int k0 = blockIdx.y * BC;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
    const int64_t ldq = int64_t(nq) * D, ldk = int64_t(nkv) * D;
    const BwdSteps steps(L, k0, kBwdBr, r);
    const int n_steps = steps.n_steps;
    const float scale_log2 = scale * kLog2e;
    const auto padded = [](int rr, int cc) { return uint32_t((rr * S + cc * 8) * sizeof(bf16)); };  // row stride S

    // K, V of this CTA's keys
    load_rows_async(k + int64_t(bi) * L * ldk + int64_t(g) * D, smem_u32(sK), v + int64_t(bi) * L * ldk + int64_t(g) * D,
                    smem_u32(sV), ldk, k0, BC, CPR, L, tid, T, padded);
    auto load_step = [&](int st, int buf) {
        const int h = steps.head(st, g, r), qr0 = steps.row0(st, kBwdBr);
        const int64_t head_off = int64_t(bi) * L * ldq + int64_t(h) * D;
        load_rows_async(q + head_off, smem_u32(sQ + buf * kBwdBr * S), dO + head_off, smem_u32(sdO + buf * kBwdBr * S),
                        ldq, qr0, kBwdBr, CPR, L, tid, T, padded);
        load_row_stats_async(lse, delta, (int64_t(bi) * nq + h) * L, qr0, kBwdBr, L, tid, smem_u32(sL + buf * kBwdBr),
                             smem_u32(sDl + buf * kBwdBr));
    };
    load_step(0, 0);
    cp_async_commit();

    const int kw = (warp % KG) * 16;  // phase 1: keys of this warp (CTA-local)
    const int qw = (warp / KG) * QW;  // phase 1: queries of this warp (tile-local)
    const int pr = (warp & 3) * RM;   // phase 2: first key row for dK/dV
    const int pq = (warp & 3) * 16;   // phase 2: first query row for dQ
    const int pc = (warp >> 2) * DH;  // phase 2: first column
    uint32_t kf[kKVReg ? D / 16 : 1][4], vf[kKVReg ? D / 16 : 1][4];
    float dka[MT2][DH / 8][4], dva[MT2][DH / 8][4];
#pragma unroll
    for (int mt = 0; mt < MT2; ++mt)
#pragma unroll
        for (int i = 0; i < DH / 8; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) dka[mt][i][e] = dva[mt][i][e] = 0.f;

    for (int st = 0; st < n_steps; ++st) {
        const int buf = st & 1;
        cp_async_wait<0>();
        __syncthreads();
        if (kKVReg && st == 0) {
#pragma unroll
            for (int kk = 0; kk < (kKVReg ? D / 16 : 0); ++kk) {
                ldsm_x4(kf[kk], smem_u32(sK + (kw + a_row(lane)) * S + kk * 16 + a_col(lane)));
                ldsm_x4(vf[kk], smem_u32(sV + (kw + a_row(lane)) * S + kk * 16 + a_col(lane)));
            }
        }
        if (st + 1 < n_steps) load_step(st + 1, buf ^ 1);
        cp_async_commit();
        const int h = steps.head(st, g, r), qr0 = steps.row0(st, kBwdBr);
        const bf16* cQ = sQ + buf * kBwdBr * S;
        const bf16* cD = sdO + buf * kBwdBr * S;

        // phase 1: Sᵀ and dPᵀ for keys kw..kw+15 × queries qw..qw+QW-1
        float sa[NT1][4], da[NT1][4];
#pragma unroll
        for (int i = 0; i < NT1; ++i)
#pragma unroll
            for (int e = 0; e < 4; ++e) sa[i][e] = da[i][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
            uint32_t ka[4], va[4];
            if (kKVReg) {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    ka[e] = kf[kKVReg ? kk : 0][e];
                    va[e] = vf[kKVReg ? kk : 0][e];
                }
            } else {
                ldsm_x4(ka, smem_u32(sK + (kw + a_row(lane)) * S + kk * 16 + a_col(lane)));
                ldsm_x4(va, smem_u32(sV + (kw + a_row(lane)) * S + kk * 16 + a_col(lane)));
            }
#pragma unroll
            for (int np = 0; np < NT1 / 2; ++np) {
                uint32_t b[4];
                ldsm_x4(b, smem_u32(cQ + (qw + np * 16 + bn_row(lane)) * S + kk * 16 + bn_col(lane)));
                mma16816(sa[2 * np], ka, b[0], b[1]);
                mma16816(sa[2 * np + 1], ka, b[2], b[3]);
                ldsm_x4(b, smem_u32(cD + (qw + np * 16 + bn_row(lane)) * S + kk * 16 + bn_col(lane)));
                mma16816(da[2 * np], va, b[0], b[1]);
                mma16816(da[2 * np + 1], va, b[2], b[3]);
            }
        }
        // the causal diagonal crosses this (query tile, key block) pair, or the query tile runs past L
        const bool need_mask = qr0 < k0 + BC - 1 || qr0 + kBwdBr > L;
        const float* cL = sL + buf * kBwdBr;
        const float* cDl = sDl + buf * kBwdBr;
#pragma unroll
        for (int nt = 0; nt < NT1; ++nt) {
            const int ql = qw + nt * 8 + 2 * tq;  // tile-local query of elements e = 0, 2 (e = 1, 3: ql + 1)
            const float l0 = cL[ql] * kLog2e, l1 = cL[ql + 1] * kLog2e;
            const float d0 = cDl[ql], d1 = cDl[ql + 1];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float p = fast_exp2(fmaf(sa[nt][e], scale_log2, -((e & 1) ? l1 : l0)));
                if (need_mask) {
                    const int key = k0 + kw + gq + (e >> 1) * 8, qi = qr0 + ql + (e & 1);
                    if (key > qi || qi >= L) p = 0.f;
                }
                sa[nt][e] = p;
                da[nt][e] = p * (da[nt][e] - ((e & 1) ? d1 : d0));
            }
            *reinterpret_cast<uint32_t*>(sP + (kw + gq) * kPS + ql) = pack_bf16(sa[nt][0], sa[nt][1]);
            *reinterpret_cast<uint32_t*>(sP + (kw + gq + 8) * kPS + ql) = pack_bf16(sa[nt][2], sa[nt][3]);
            *reinterpret_cast<uint32_t*>(sdS + (kw + gq) * kPS + ql) = pack_bf16(da[nt][0], da[nt][1]);
            *reinterpret_cast<uint32_t*>(sdS + (kw + gq + 8) * kPS + ql) = pack_bf16(da[nt][2], da[nt][3]);
        }
        __syncthreads();

        // phase 2: dV += Pᵀ dO, dK += dSᵀ Q (key rows pr..pr+RM-1), columns pc..pc+DH-1
#pragma unroll
        for (int kk = 0; kk < kBwdBr / 16; ++kk) {
            uint32_t ap[MT2][4], as[MT2][4];
#pragma unroll
            for (int mt = 0; mt < MT2; ++mt) {
                ldsm_x4(ap[mt], smem_u32(sP + (pr + mt * 16 + a_row(lane)) * kPS + kk * 16 + a_col(lane)));
                ldsm_x4(as[mt], smem_u32(sdS + (pr + mt * 16 + a_row(lane)) * kPS + kk * 16 + a_col(lane)));
            }
#pragma unroll
            for (int dp = 0; dp < DH / 16; ++dp) {
                uint32_t b[4];
                ldsm_x4_t(b, smem_u32(cD + (kk * 16 + a_row(lane)) * S + pc + dp * 16 + a_col(lane)));
#pragma unroll
                for (int mt = 0; mt < MT2; ++mt) {
                    mma16816(dva[mt][2 * dp], ap[mt], b[0], b[1]);
                    mma16816(dva[mt][2 * dp + 1], ap[mt], b[2], b[3]);
                }
                ldsm_x4_t(b, smem_u32(cQ + (kk * 16 + a_row(lane)) * S + pc + dp * 16 + a_col(lane)));
#pragma unroll
                for (int mt = 0; mt < MT2; ++mt) {
                    mma16816(dka[mt][2 * dp], as[mt], b[0], b[1]);
                    mma16816(dka[mt][2 * dp + 1], as[mt], b[2], b[3]);
                }
            }
        }
        // dQ_tile = dS K (query rows pq..pq+15, columns pc..pc+DH-1), added to dq with atomics
        float qa[DH / 8][4];
#pragma unroll
        for (int i = 0; i < DH / 8; ++i) qa[i][0] = qa[i][1] = qa[i][2] = qa[i][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < BC / 16; ++kk) {
            uint32_t a[4];
            ldsm_x4_t(a, smem_u32(sdS + (kk * 16 + bn_row(lane)) * kPS + pq + bn_col(lane)));
#pragma unroll
            for (int dp = 0; dp < DH / 16; ++dp) {
                uint32_t b[4];
                ldsm_x4_t(b, smem_u32(sK + (kk * 16 + a_row(lane)) * S + pc + dp * 16 + a_col(lane)));
                mma16816(qa[2 * dp], a, b[0], b[1]);
                mma16816(qa[2 * dp + 1], a, b[2], b[3]);
            }
        }
        float* dqb = dq + int64_t(bi) * L * ldq + int64_t(h) * D + pc + 2 * tq;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int qi = qr0 + pq + gq + 8 * i;
            if (qi < L) {
                float* rowp = dqb + int64_t(qi) * ldq;
#pragma unroll
                for (int nt = 0; nt < DH / 8; ++nt)
                    atomic_add2(rowp + nt * 8, qa[nt][2 * i] * scale, qa[nt][2 * i + 1] * scale);
            }
        }
    }

    // dk = scale · dK, dv (sums over the group's query heads): plain stores
#pragma unroll
    for (int mt = 0; mt < MT2; ++mt) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int key = k0 + pr + mt * 16 + gq + 8 * i;
            if (key >= L) continue;
            const int64_t off = (int64_t(bi) * L + key) * ldk + int64_t(g) * D + pc + 2 * tq;
#pragma unroll
            for (int nt = 0; nt < DH / 8; ++nt) {
                *reinterpret_cast<float2*>(dk + off + nt * 8) =
                    make_float2(dka[mt][nt][2 * i] * scale, dka[mt][nt][2 * i + 1] * scale);
                *reinterpret_cast<float2*>(dv + off + nt * 8) = make_float2(dva[mt][nt][2 * i], dva[mt][nt][2 * i + 1]);
            }
        }
    }
}

// ---- host side --------------------------------------------------------------------------------------------------

struct Ptr {
    const void* p;
    int align;  // bytes
};

void check_args(const char* what, int64_t b, int64_t L, int nq, int nkv, int D, std::initializer_list<Ptr> ptrs) {
    check(flash_attention_supports_head_dim(D), what, ": head_dim ", D,
          " is not supported (flash attention is built for 64 and 128)");
    check(b >= 0 && L >= 0, what, ": negative size (b ", b, ", L ", L, ")");
    check(nkv > 0 && nq > 0 && nq % nkv == 0, what, ": ", nq, " query heads are not a multiple of ", nkv, " kv heads");
    check(L <= int64_t(std::numeric_limits<int>::max()) / 2 && (L + kBwdBr - 1) / kBwdBr <= 65535, what,
          ": sequence length ", L, " too long");
    check(b * nq <= int64_t(std::numeric_limits<int>::max()), what, ": b·nq = ", b * nq, " too large");
    int i = 0;
    for (const Ptr& p : ptrs) {
        check(p.p != nullptr && reinterpret_cast<uintptr_t>(p.p) % uintptr_t(p.align) == 0, what, ": tensor argument ",
              i, " is null or not ", p.align, "-byte aligned");
        ++i;
    }
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
    AR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    // as much shared memory as the SM has (two forward CTAs of ~105 KB per SM)
    AR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       int(cudaSharedmemCarveoutMaxShared)));
}

size_t max_dynamic_smem() {  // opt-in shared memory per block of the current device
    int dev = 0, bytes = 0;
    AR_CUDA_CHECK(cudaGetDevice(&dev));
    AR_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    return size_t(bytes);
}

template <int D>
void launch_forward(const bf16* q, const bf16* k, const bf16* v, int64_t b, int64_t L, int nq, int nkv, float scale,
                    bf16* o, float* lse, cudaStream_t stream) {
    using C = FwdDefault<D>;
    const size_t avail = max_dynamic_smem();
    check(C::smem <= avail, "flash attention: the device has only ", avail,
          " bytes of shared memory per block; head_dim ", D, " needs ", C::smem);
    set_smem(fa_fwd_kernel<C>, C::smem);
    const dim3 grid(unsigned(b * nq), unsigned((L + C::BR - 1) / C::BR));
    fa_fwd_kernel<C><<<grid, C::WARPS * 32, C::smem, stream>>>(q, k, v, int(L), nq, nkv, scale * kLog2e, o, lse);
    AR_CUDA_CHECK(cudaGetLastError());
}

template <class C>
void launch_backward_cfg(const bf16* q, const bf16* k, const bf16* v, const bf16* dO, const float* lse,
                         const float* delta, int64_t b, int64_t L, int nq, int nkv, float scale, float* dq, float* dk,
                         float* dv, cudaStream_t stream) {
    set_smem(fa_bwd_kernel<C>, C::smem);
    const dim3 grid(unsigned(b * nkv), unsigned((L + C::BC - 1) / C::BC));
    fa_bwd_kernel<C><<<grid, kBwdThreads, C::smem, stream>>>(q, k, v, dO, lse, delta, int(L), nq, nkv, scale, dq, dk,
                                                             dv);
    AR_CUDA_CHECK(cudaGetLastError());
}

template <int D>
void launch_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dO, const float* lse,
                     const float* delta, int64_t b, int64_t L, int nq, int nkv, float scale, float* dq, float* dk,
                     float* dv, cudaStream_t stream) {
    using C = BwdCfg<D, AR_FA_BWD_KEYS>;
    using Small = BwdCfg<D, 64>;
    const size_t avail = max_dynamic_smem();
    check(Small::smem <= avail, "flash attention: the device has only ", avail,
          " bytes of shared memory per block; the backward for head_dim ", D, " needs ", Small::smem);
    if (C::smem <= avail)
        launch_backward_cfg<C>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
    else  // e.g. the A100's 163 KB: the 64-key tiles
        launch_backward_cfg<Small>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
}

}  // namespace

bool flash_attention_supports_head_dim(int D) { return D == 64 || D == 128; }

namespace {
bool use_wgmma(FlashAttentionKernel kernel, const char* what) {
    if (kernel == FlashAttentionKernel::MmaSync) return false;
    const bool avail = flash_attention_sm90_available();
    if (kernel == FlashAttentionKernel::Wgmma) {
        check(avail, what, ": the wgmma kernels need a Hopper GPU and a build for sm_90a (AUTOROUND_CUDA_ARCHS)");
        return true;
    }
    static const bool forced_off = [] {
        const char* e = std::getenv("AUTOROUND_FA_MMA_SYNC");
        return e && e[0] == '1';
    }();
    return avail && !forced_off;
}
}  // namespace

void flash_attention_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t b,
                             int64_t L, int nq, int nkv, int D, float scale, __nv_bfloat16* o, float* lse,
                             cudaStream_t stream, FlashAttentionKernel kernel) {
    if (b == 0 || L == 0) return;
    check_args("flash_attention_forward", b, L, nq, nkv, D, {{q, 16}, {k, 16}, {v, 16}, {o, 16}, {lse, 4}});
    if (use_wgmma(kernel, "flash_attention_forward"))
        return flash_attention_sm90_forward(q, k, v, b, L, nq, nkv, D, scale, o, lse, stream);
    if (D == 64)
        launch_forward<64>(q, k, v, b, L, nq, nkv, scale, o, lse, stream);
    else
        launch_forward<128>(q, k, v, b, L, nq, nkv, scale, o, lse, stream);
}

size_t flash_attention_backward_workspace_bytes(int64_t b, int64_t L, int nq) {
    return size_t(b) * size_t(L) * size_t(nq) * sizeof(float);
}

void flash_attention_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                              const __nv_bfloat16* o, const __nv_bfloat16* dO, const float* lse, int64_t b, int64_t L,
                              int nq, int nkv, int D, float scale, float* dq, float* dk, float* dv, float* workspace,
                              cudaStream_t stream, FlashAttentionKernel kernel) {
    if (b == 0 || L == 0) return;
    check_args("flash_attention_backward", b, L, nq, nkv, D,
               {{q, 16}, {k, 16}, {v, 16}, {o, 16}, {dO, 16}, {lse, 4}, {dq, 8}, {dk, 8}, {dv, 8}});
    check(workspace == nullptr || reinterpret_cast<uintptr_t>(workspace) % 4 == 0,
          "flash_attention_backward: the workspace is not 4-byte aligned");
    const size_t ws_bytes = flash_attention_backward_workspace_bytes(b, L, nq);
    float* delta = workspace;
    if (!delta) AR_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&delta), ws_bytes, stream));
    AR_CUDA_CHECK(cudaMemsetAsync(dq, 0, size_t(b) * size_t(L) * size_t(nq) * size_t(D) * sizeof(float), stream));
    const int64_t n_rows_heads = b * L * nq;
    const int64_t rows_per_block = 8 * (D == 64 ? 4 : 2);  // D is 64 or 128 (check_args)
    const unsigned blocks = unsigned((n_rows_heads + rows_per_block - 1) / rows_per_block);
    if (D == 64)
        fa_bwd_delta_kernel<8><<<blocks, 256, 0, stream>>>(o, dO, n_rows_heads, L, nq, delta);
    else
        fa_bwd_delta_kernel<16><<<blocks, 256, 0, stream>>>(o, dO, n_rows_heads, L, nq, delta);
    AR_CUDA_CHECK(cudaGetLastError());
    if (use_wgmma(kernel, "flash_attention_backward"))
        flash_attention_sm90_backward(q, k, v, dO, lse, delta, b, L, nq, nkv, D, scale, dq, dk, dv, stream);
    else if (D == 64)
        launch_backward<64>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
    else
        launch_backward<128>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
    if (!workspace) AR_CUDA_CHECK(cudaFreeAsync(delta, stream));
}

}  // namespace autoround
