// ops/cuda/flash_attention_sm90.cu — the Hopper (sm_90a) path of flash_attention_forward / _backward
// (ops/cuda/flash_attention.h): the same causal GQA attention with its products on warpgroup MMAs (wgmma,
// ops/cuda/wgmma.cuh) instead of mma.sync.
//
// Why: the mma.sync kernels of flash_attention.cu reach ~290 TFLOP/s forward and ~217 backward on an H100/H200, FA2's
// design point; wgmma reads both operands of QKᵀ straight from shared memory and P from registers for P·V,
// asynchronously, at the rate the tensor cores were built for on Hopper.
//
// Forward (one CTA of 2 warpgroups per 128 query rows of one (batch, query head); warpgroup w owns rows 64w..64w+63):
//   Q [128 × D] and three stages of K, V tiles [128 keys × D] in shared memory in the 128-byte swizzled layout
//   (wgmma.cuh), loaded by cp.async two tiles ahead (225 KB at D 128).
//   Per key tile a warpgroup computes S = Q Kᵀ (64 × 128: D/16 wgmma m64n128k16, both operands K-major in shared
//   memory), masks the diagonal tile, updates the running max / sum in the log2 domain, rescales its O accumulators,
//   packs P to bf16 A fragments in registers and issues P·V (8 wgmma m64nDk16 with V as an MN-major operand), which
//   runs on across the next tile's barrier until that tile's S is waited for (hence the third stage: tile j + 2
//   loads into tile j − 1's buffers). The barrier waits of the two warpgroups are what is left exposed.
//   Epilogue: o = O / l through the warpgroup's own rows of the Q tile into 16-byte stores, lse = ln2 · (m + log2 l).
// Backward: see fa_bwd_sm90_kernel (128 keys per CTA, dq by FP32 atomics).
// The math, the rounding points (P and dS to bf16, o to bf16 once) and the outputs are those of the mma.sync kernels.
// Measured (H200, bench_flash_attention, b 8, L 2048, nq 32, nkv 8, D 128): forward 0.80 ms (345 TFLOP/s; mma.sync
// 0.94), backward 2.20–2.24 ms (307–312 TFLOP/s; mma.sync 3.16–3.18); tile shapes and variants tried:
// bench/results/gpu-tuning-h200.md (session 14).
// Only built into sm_90a code (__CUDA_ARCH_FEAT_SM90_ALL); flash_attention_sm90_available() says whether the code that
// runs on the current device has it.
#include "ops/cuda/flash_attention_sm90.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/flash_attention_common.cuh"
#include "ops/cuda/wgmma.cuh"

namespace autoround {
namespace {

using bf16 = __nv_bfloat16;
constexpr int kWarpgroups = 2;
constexpr int kThreads = 128 * kWarpgroups;
constexpr int kFwdBr = 64 * kWarpgroups;  // query rows per CTA
constexpr int kFwdBc = 128;               // keys per K/V tile

template <int D>
struct FwdSmem {
    static constexpr int stages = 3;  // K/V tiles in flight: tile j in use, j + 1 and j + 2 loading
    static constexpr uint32_t q_bytes = kFwdBr * D * 2, kv_bytes = kFwdBc * D * 2;
    static constexpr size_t bytes = q_bytes + 2 * stages * size_t(kv_bytes) + 1024;  // + slack to align to 1024
};

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define AR_FA_SM90 1
#endif

__global__ void sm90a_probe_kernel(int* out) {  // its static shared memory says whether sm_90a code was built
#ifdef AR_FA_SM90
    __shared__ int mark[256];
    mark[threadIdx.x & 255] = 1;
    __syncthreads();
    if (out) *out = mark[0];
#else
    if (out) *out = 0;
#endif
}

#ifdef AR_FA_SM90
using namespace fa_detail;  // smem_u32, cp.async wrappers, pack_bf16, fast_exp2, tile loaders
// barrier of the 128 threads of warpgroup wg (ids 1, 2; 0 is __syncthreads)
__device__ __forceinline__ void wg_barrier(int wg) { asm volatile("bar.sync %0, 128;\n" ::"r"(wg + 1) : "memory"); }

// d (+)= A·B, both operands in shared memory; N = 64 or 128 columns.
template <int N, int TA, int TB>
__device__ __forceinline__ void mma_ss(float (&d)[N / 2], uint64_t da, uint64_t db, int scale_d) {
    if constexpr (N == 128) wgmma::wgmma_ss_m64n128k16<TA, TB>(d, da, db, scale_d);
    else wgmma::wgmma_ss_m64n64k16<TA, TB>(d, da, db, scale_d);
}
template <int N, int TA, int TB>
__device__ __forceinline__ void mma_ss0(float (&d)[N / 2], uint64_t da, uint64_t db) {
    if constexpr (N == 128) wgmma::wgmma_ss0_m64n128k16<TA, TB>(d, da, db);
    else wgmma::wgmma_ss0_m64n64k16<TA, TB>(d, da, db);
}
template <int N, int TB>
__device__ __forceinline__ void mma_rs(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t db, int scale_d) {
    if constexpr (N == 128) wgmma::wgmma_rs_m64n128k16<TB>(d, a, db, scale_d);
    else wgmma::wgmma_rs_m64n64k16<TB>(d, a, db, scale_d);
}
#endif

// ---- forward ----------------------------------------------------------------------------------------------------

template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    fa_fwd_sm90_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v, int L,
                       int nq, int nkv, float scale_log2, bf16* __restrict__ o, float* __restrict__ lse) {
#ifdef AR_FA_SM90
    using S = FwdSmem<D>;
    constexpr int CPR = D / 8;  // 16-byte chunks per row
    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = smem_u32(smem_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* gbase = smem_raw + (base - raw);  // generic pointer to the 1024-aligned base
    const uint32_t sQ = base, sK0 = sQ + S::q_bytes, sV0 = sK0 + S::stages * S::kv_bytes;

    const int bh = blockIdx.x, bi = bh / nq, h = bh % nq, g = h / (nq / nkv);
    const int q0 = (gridDim.y - 1 - blockIdx.y) * kFwdBr;
    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
    const int64_t ldq = int64_t(nq) * D, ldk = int64_t(nkv) * D;
    const bf16* qbase = q + int64_t(bi) * L * ldq + int64_t(h) * D;
    const bf16* kbase = k + int64_t(bi) * L * ldk + int64_t(g) * D;
    const bf16* vbase = v + int64_t(bi) * L * ldk + int64_t(g) * D;

    auto swz = [](int R) { return [R](int r, int cc) { return wgmma::sw128_offset(R, r, cc * 8); }; };
    load_rows_async(qbase, sQ, ldq, q0, kFwdBr, CPR, L, tid, kThreads, swz(kFwdBr));
    auto load_kv = [&](int j, int buf) {
        load_rows_async(kbase, sK0 + buf * S::kv_bytes, vbase, sV0 + buf * S::kv_bytes, ldk, j * kFwdBc, kFwdBc, CPR, L,
                        tid, kThreads, swz(kFwdBc));
    };
    const int kv_end = min(L, q0 + kFwdBr);
    const int nkb = (kv_end + kFwdBc - 1) / kFwdBc;
    load_kv(0, 0);
    cp_async_commit();
    if (nkb > 1) load_kv(1, 1);
    cp_async_commit();

    const int wr0 = q0 + 64 * wg + 16 * warp;  // this warp's first row in the sequence
    float oacc[D / 2];  // first written by tile 0's P·V (scale_d 0): a zero fill here would be a non-wgmma write of
                        // accumulators that ptxas then serialises every later wgmma for (C7515)
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};

    // Per tile j: tile j's loads landed (tile j + 1's may still run) → barrier → tile j + 2's loads into the stage
    // of tile j − 1, whose P·V every warpgroup waited for before the barrier → S = Q Kᵀ, waited together with the
    // previous P·V → softmax → P·V of tile j issued and left running across the next barrier.
    for (int j = 0; j < nkb; ++j) {
        cp_async_wait<1>();
        wgmma::fence_proxy_async();
        __syncthreads();
        if (j + 2 < nkb) load_kv(j + 2, (j + 2) % S::stages);
        cp_async_commit();
        const int k0 = j * kFwdBc;
        if (k0 > q0 + 64 * wg + 63) continue;  // warpgroup-uniform: the whole tile is after the warpgroup's rows
        const int stage = j % S::stages;
        const uint32_t cK = sK0 + stage * S::kv_bytes, cV = sV0 + stage * S::kv_bytes;

        float s[kFwdBc / 2];
        wgmma::fence();
        mma_ss0<kFwdBc, 0, 0>(s, wgmma::desc_kmajor(sQ, kFwdBr, 64 * wg, 0), wgmma::desc_kmajor(cK, kFwdBc, 0, 0));
#pragma unroll
        for (int ks = 1; ks < D / 16; ++ks)
            mma_ss<kFwdBc, 0, 0>(s, wgmma::desc_kmajor(sQ, kFwdBr, 64 * wg, ks), wgmma::desc_kmajor(cK, kFwdBc, 0, ks),
                                 1);
        wgmma::commit();
        wgmma::wait<0>();  // S, and the previous tile's P·V
        wgmma::fence_operands(s);
        wgmma::fence_operands(oacc);

        // scale into the log2 domain, mask, online softmax (s[4·nt + e]: row wr0 + gq + 8·(e/2), key
        // k0 + 8·nt + 2·tq + e%2)
        const bool need_mask = k0 + kFwdBc - 1 > wr0;
        float mx[2] = {m[0], m[1]};
#pragma unroll
        for (int nt = 0; nt < kFwdBc / 8; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float x = s[4 * nt + e] * scale_log2;
                if (need_mask) {
                    const int key = k0 + nt * 8 + 2 * tq + (e & 1), row = wr0 + gq + (e >> 1) * 8;
                    if (key > row) x = -INFINITY;
                }
                s[4 * nt + e] = x;
                mx[e >> 1] = fmaxf(mx[e >> 1], x);
            }
        }
        float basev[2], alpha[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
            mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
            basev[i] = mx[i] == -INFINITY ? 0.f : mx[i];
            alpha[i] = fast_exp2(m[i] - basev[i]);
            m[i] = mx[i];
        }
        float rs[2] = {0.f, 0.f};
        uint32_t pa[kFwdBc / 16][4];
#pragma unroll
        for (int nt = 0; nt < kFwdBc / 8; ++nt) {
            float p[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                p[e] = fast_exp2(s[4 * nt + e] - basev[e >> 1]);
                rs[e >> 1] += p[e];
            }
            // two n8 accumulator tiles (keys 16kk..+7, +8..+15) are one k16 A fragment
            pa[nt >> 1][(nt & 1) * 2] = pack_bf16(p[0], p[1]);
            pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(p[2], p[3]);
        }
        l[0] = l[0] * alpha[0] + rs[0];
        l[1] = l[1] * alpha[1] + rs[1];
#pragma unroll
        for (int dt = 0; dt < D / 8 && j > 0; ++dt) {
            oacc[4 * dt] *= alpha[0];
            oacc[4 * dt + 1] *= alpha[0];
            oacc[4 * dt + 2] *= alpha[1];
            oacc[4 * dt + 3] *= alpha[1];
        }
        // O += P V (V: rows = keys = the k dimension, columns = D: an MN-major operand)
        wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < kFwdBc / 16; ++kk)
            mma_rs<D, 1>(oacc, pa[kk], wgmma::desc_mnmajor(cV, kFwdBc, 0, kk), j > 0 || kk > 0);
        wgmma::commit();  // in flight until the next tile's wait (or the one after the loop)
    }
    wgmma::wait<0>();
    wgmma::fence_operands(oacc);

    // epilogue: o = O / l (bf16) into this warpgroup's own rows of the Q tile (only it read them), then 16-byte stores
    float* lrow = lse + (int64_t(bi) * nq + h) * L;
    float inv[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
        l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
        inv[i] = l[i] > 0.f ? 1.f / l[i] : 0.f;
        const int row = wr0 + gq + 8 * i;
        if (tq == 0 && row < L) lrow[row] = (m[i] + __log2f(l[i])) * kLn2;
    }
    const int lr = 64 * wg + 16 * warp + gq;  // tile row of e = 0, 1
#pragma unroll
    for (int dt = 0; dt < D / 8; ++dt) {
        const int col = dt * 8 + 2 * tq;
        *reinterpret_cast<uint32_t*>(gbase + wgmma::sw128_offset(kFwdBr, lr, col)) =
            pack_bf16(oacc[4 * dt] * inv[0], oacc[4 * dt + 1] * inv[0]);
        *reinterpret_cast<uint32_t*>(gbase + wgmma::sw128_offset(kFwdBr, lr + 8, col)) =
            pack_bf16(oacc[4 * dt + 2] * inv[1], oacc[4 * dt + 3] * inv[1]);
    }
    wg_barrier(wg);
    bf16* obase = o + int64_t(bi) * L * ldq + int64_t(h) * D;
    for (int c = tid & 127; c < 64 * CPR; c += 128) {
        const int r = 64 * wg + c / CPR, cc = c % CPR, row = q0 + r;
        if (row < L)
            *reinterpret_cast<uint4*>(obase + int64_t(row) * ldq + cc * 8) =
                *reinterpret_cast<const uint4*>(gbase + wgmma::sw128_offset(kFwdBr, r, cc * 8));
    }
#else
    __trap();  // launched only where flash_attention_sm90_available()
#endif
}

// ---- backward ---------------------------------------------------------------------------------------------------

constexpr int kBwdBc = 128;  // keys per CTA (warpgroup w owns keys 64w..64w+63 of dK and dV)
constexpr int kBwdBr = 64;   // query rows per step

template <int D>
struct BwdSmem {
    static constexpr uint32_t kv_bytes = kBwdBc * D * 2, q_bytes = kBwdBr * D * 2, ds_bytes = kBwdBc * kBwdBr * 2;
    static constexpr uint32_t q_off = 2 * kv_bytes, do_off = q_off + 2 * q_bytes,
                              ds_off = do_off + 2 * q_bytes, l_off = ds_off + ds_bytes, dl_off = l_off + 2 * kBwdBr * 4;
    static constexpr size_t bytes = dl_off + 2 * kBwdBr * 4 + 1024;  // + alignment slack to 1024 bytes
};

// One CTA per 128 keys of one (batch, kv head); it walks the group's query heads and the 64-row query tiles at or
// after its keys (Q, dO, lse, Δ double-buffered by cp.async), summing dK, dV in registers (243 registers, one CTA per
// SM). Per step, warpgroup w:
//   Sᵀ = K_w Qᵀ and dPᵀ = V_w dOᵀ (64 keys × 64 queries, both operands K-major in shared memory);
//   Pᵀ = exp2(Sᵀ·scale·log2e − lse·log2e) (masked), dSᵀ = Pᵀ ∘ (dPᵀ − Δ), both packed to bf16 A fragments in
//   registers, dSᵀ also stored to shared memory [key][query];
//   dV_w += Pᵀ dO and dK_w += dSᵀ Q (A from registers, dO and Q as MN-major B operands);
//   after a CTA barrier, dQ_tile = dS K over all 128 keys (dS as an MN-major A operand, K as an MN-major B
//   operand): D 128 — warpgroup w takes columns 64w..64w+63; D 64 — warpgroup w takes its own 64 keys (two partial
//   sums); added to dq with FP32 atomics (times scale).
// dk = scale · dK and dv are written once at the end with plain stores.
template <int D>
__global__ void __launch_bounds__(kThreads, 1)
    fa_bwd_sm90_kernel(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                       const bf16* __restrict__ dO, const float* __restrict__ lse, const float* __restrict__ delta,
                       int L, int nq, int nkv, float scale, float* __restrict__ dq, float* __restrict__ dk,
                       float* __restrict__ dv) {
#ifdef AR_FA_SM90
    using S = BwdSmem<D>;
    constexpr int CPR = D / 8;
    extern __shared__ unsigned char smem_raw[];
    const uint32_t raw = smem_u32(smem_raw), base = (raw + 1023u) & ~1023u;
    unsigned char* gbase = smem_raw + (base - raw);
    const uint32_t sK = base, sV = base + S::kv_bytes, sQ0 = base + S::q_off, sdO0 = base + S::do_off,
                   sdS = base + S::ds_off;
    float* sL = reinterpret_cast<float*>(gbase + S::l_off);   // [2][Br] lse
    float* sDl = reinterpret_cast<float*>(gbase + S::dl_off); // [2][Br] Δ

    const int bg = blockIdx.x, bi = bg / nkv, g = bg % nkv, r = nq / nkv;
    const int k0 = blockIdx.y * kBwdBc;
    const int tid = threadIdx.x, wg = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, gq = lane >> 2, tq = lane & 3;
    const int64_t ldq = int64_t(nq) * D, ldk = int64_t(nkv) * D;
    const BwdSteps steps(L, k0, kBwdBr, r);
    const int n_steps = steps.n_steps;
    const float scale_log2 = scale * kLog2e;
    auto swz = [](int R) { return [R](int rr, int cc) { return wgmma::sw128_offset(R, rr, cc * 8); }; };

    // K, V of this CTA's keys
    load_rows_async(k + int64_t(bi) * L * ldk + int64_t(g) * D, sK, v + int64_t(bi) * L * ldk + int64_t(g) * D, sV,
                    ldk, k0, kBwdBc, CPR, L, tid, kThreads, swz(kBwdBc));
    auto load_step = [&](int st, int buf) {
        const int h = steps.head(st, g, r), qr0 = steps.row0(st, kBwdBr);
        const int64_t head_off = int64_t(bi) * L * ldq + int64_t(h) * D;
        load_rows_async(q + head_off, sQ0 + buf * S::q_bytes, dO + head_off, sdO0 + buf * S::q_bytes, ldq, qr0, kBwdBr,
                        CPR, L, tid, kThreads, swz(kBwdBr));
        load_row_stats_async(lse, delta, (int64_t(bi) * nq + h) * L, qr0, kBwdBr, L, tid, smem_u32(sL + buf * kBwdBr),
                             smem_u32(sDl + buf * kBwdBr));
    };
    load_step(0, 0);
    cp_async_commit();

    const int kw = 64 * wg;  // this warpgroup's keys (CTA-local)
    float dka[D / 2], dva[D / 2];
#pragma unroll
    for (int i = 0; i < D / 2; ++i) dka[i] = dva[i] = 0.f;

    for (int st = 0; st < n_steps; ++st) {
        const int buf = st & 1;
        cp_async_wait<0>();
        wgmma::fence_proxy_async();
        __syncthreads();
        if (st + 1 < n_steps) load_step(st + 1, buf ^ 1);
        cp_async_commit();
        const int h = steps.head(st, g, r), qr0 = steps.row0(st, kBwdBr);
        const uint32_t cQ = sQ0 + buf * S::q_bytes, cD = sdO0 + buf * S::q_bytes;

        // Sᵀ = K_w Qᵀ, dPᵀ = V_w dOᵀ: 64 keys × 64 queries (s[4·nt + e]: key kw + 16·warp + gq + 8·(e/2), query
        // 8·nt + 2·tq + e%2)
        float sa[32], da[32];
        wgmma::fence();
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks)
            mma_ss<64, 0, 0>(sa, wgmma::desc_kmajor(sK, kBwdBc, kw, ks), wgmma::desc_kmajor(cQ, kBwdBr, 0, ks), ks > 0);
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks)
            mma_ss<64, 0, 0>(da, wgmma::desc_kmajor(sV, kBwdBc, kw, ks), wgmma::desc_kmajor(cD, kBwdBr, 0, ks), ks > 0);
        wgmma::commit();
        wgmma::wait<0>();
        wgmma::fence_operands(sa);
        wgmma::fence_operands(da);

        // the causal diagonal crosses this (query tile, key block) pair, or the query tile runs past L
        const bool need_mask = qr0 < k0 + kBwdBc - 1 || qr0 + kBwdBr > L;
        const float* cL = sL + buf * kBwdBr;
        const float* cDl = sDl + buf * kBwdBr;
        const int krow = kw + 16 * warp + gq;  // CTA-local key of e = 0, 1 (e = 2, 3: krow + 8)
        uint32_t pa[4][4], sda[4][4];
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
            const int ql = nt * 8 + 2 * tq;  // tile-local query of e = 0, 2 (e = 1, 3: ql + 1)
            const float l0 = cL[ql] * kLog2e, l1 = cL[ql + 1] * kLog2e;
            const float d0 = cDl[ql], d1 = cDl[ql + 1];
            float p[4], ds[4];
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                float pe = fast_exp2(fmaf(sa[4 * nt + e], scale_log2, -((e & 1) ? l1 : l0)));
                if (need_mask) {
                    const int key = k0 + krow + (e >> 1) * 8, qi = qr0 + ql + (e & 1);
                    if (key > qi || qi >= L) pe = 0.f;
                }
                p[e] = pe;
                ds[e] = pe * (da[4 * nt + e] - ((e & 1) ? d1 : d0));
            }
            // two n8 accumulator tiles (queries 16kk..+7, +8..+15) are one k16 A fragment
            pa[nt >> 1][(nt & 1) * 2] = pack_bf16(p[0], p[1]);
            pa[nt >> 1][(nt & 1) * 2 + 1] = pack_bf16(p[2], p[3]);
            const uint32_t s01 = pack_bf16(ds[0], ds[1]), s23 = pack_bf16(ds[2], ds[3]);
            sda[nt >> 1][(nt & 1) * 2] = s01;
            sda[nt >> 1][(nt & 1) * 2 + 1] = s23;
            *reinterpret_cast<uint32_t*>(gbase + S::ds_off + wgmma::sw128_offset(kBwdBc, krow, ql)) = s01;
            *reinterpret_cast<uint32_t*>(gbase + S::ds_off + wgmma::sw128_offset(kBwdBc, krow + 8, ql)) = s23;
        }

        // dV_w += Pᵀ dO, dK_w += dSᵀ Q (k = the 64 queries; dO, Q: rows = queries, an MN-major B operand)
        wgmma::fence();
#pragma unroll
        for (int kk = 0; kk < kBwdBr / 16; ++kk) mma_rs<D, 1>(dva, pa[kk], wgmma::desc_mnmajor(cD, kBwdBr, 0, kk), 1);
#pragma unroll
        for (int kk = 0; kk < kBwdBr / 16; ++kk) mma_rs<D, 1>(dka, sda[kk], wgmma::desc_mnmajor(cQ, kBwdBr, 0, kk), 1);
        wgmma::commit();

        // dQ_tile = dS K over the CTA's keys (dSᵀ of both warpgroups through shared memory)
        wgmma::fence_proxy_async();
        __syncthreads();
        float qa[32];
        constexpr int kQSteps = D == 128 ? kBwdBc / 16 : 4;  // k16 steps over keys: all 128, or this warpgroup's 64
        const int ks0 = D == 128 ? 0 : 4 * wg;
        const int panel = D == 128 ? wg : 0;
#pragma unroll
        for (int kk = 0; kk < kQSteps; ++kk)
            mma_ss<64, 1, 1>(qa, wgmma::desc_mnmajor(sdS, kBwdBc, 0, ks0 + kk),
                             wgmma::desc_mnmajor(sK, kBwdBc, panel, ks0 + kk), kk > 0);
        wgmma::commit();
        wgmma::wait<0>();
        wgmma::fence_operands(qa);
        wgmma::fence_operands(dka);
        wgmma::fence_operands(dva);
        const int c0 = D == 128 ? 64 * wg : 0;
        float* dqb = dq + int64_t(bi) * L * ldq + int64_t(h) * D + c0 + 2 * tq;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int qi = qr0 + 16 * warp + gq + 8 * i;
            if (qi < L) {
                float* rowp = dqb + int64_t(qi) * ldq;
#pragma unroll
                for (int nt = 0; nt < 8; ++nt)
                    atomicAdd(reinterpret_cast<float2*>(rowp + nt * 8),
                              make_float2(qa[4 * nt + 2 * i] * scale, qa[4 * nt + 2 * i + 1] * scale));
            }
        }
    }

    // dk = scale · dK, dv (sums over the group's query heads): plain stores
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const int key = k0 + kw + 16 * warp + gq + 8 * i;
        if (key >= L) continue;
        const int64_t off = (int64_t(bi) * L + key) * ldk + int64_t(g) * D + 2 * tq;
#pragma unroll
        for (int nt = 0; nt < D / 8; ++nt) {
            *reinterpret_cast<float2*>(dk + off + nt * 8) =
                make_float2(dka[4 * nt + 2 * i] * scale, dka[4 * nt + 2 * i + 1] * scale);
            *reinterpret_cast<float2*>(dv + off + nt * 8) = make_float2(dva[4 * nt + 2 * i], dva[4 * nt + 2 * i + 1]);
        }
    }
#else
    __trap();  // launched only where flash_attention_sm90_available()
#endif
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
    AR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    AR_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                       int(cudaSharedmemCarveoutMaxShared)));
}

template <int D>
void launch_forward(const bf16* q, const bf16* k, const bf16* v, int64_t b, int64_t L, int nq, int nkv, float scale,
                    bf16* o, float* lse, cudaStream_t stream) {
    constexpr size_t smem = FwdSmem<D>::bytes;
    set_smem(fa_fwd_sm90_kernel<D>, smem);
    const dim3 grid(unsigned(b * nq), unsigned((L + kFwdBr - 1) / kFwdBr));
    fa_fwd_sm90_kernel<D><<<grid, kThreads, smem, stream>>>(q, k, v, int(L), nq, nkv, scale * 1.4426950408889634f, o,
                                                            lse);
    AR_CUDA_CHECK(cudaGetLastError());
}

template <int D>
void launch_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* dO, const float* lse,
                     const float* delta, int64_t b, int64_t L, int nq, int nkv, float scale, float* dq, float* dk,
                     float* dv, cudaStream_t stream) {
    constexpr size_t smem = BwdSmem<D>::bytes;
    set_smem(fa_bwd_sm90_kernel<D>, smem);
    const dim3 grid(unsigned(b * nkv), unsigned((L + kBwdBc - 1) / kBwdBc));
    fa_bwd_sm90_kernel<D><<<grid, kThreads, smem, stream>>>(q, k, v, dO, lse, delta, int(L), nq, nkv, scale, dq, dk,
                                                            dv);
    AR_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

bool flash_attention_sm90_available() {
    if (device_code_sm() != 90) return false;
    static const bool built = [] {  // per process: every device that runs sm_90 code runs the same cubin
        cudaFuncAttributes fa{};
        AR_CUDA_CHECK(cudaFuncGetAttributes(&fa, sm90a_probe_kernel));
        return fa.sharedSizeBytes > 0;
    }();
    return built;
}

void flash_attention_sm90_forward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, int64_t b,
                                  int64_t L, int nq, int nkv, int D, float scale, __nv_bfloat16* o, float* lse,
                                  cudaStream_t stream) {
    check(D == 64 || D == 128, "flash_attention_sm90_forward: head_dim ", D, " (64 or 128)");
    if (D == 64)
        launch_forward<64>(q, k, v, b, L, nq, nkv, scale, o, lse, stream);
    else
        launch_forward<128>(q, k, v, b, L, nq, nkv, scale, o, lse, stream);
}

void flash_attention_sm90_backward(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                                   const __nv_bfloat16* dO, const float* lse, const float* delta, int64_t b, int64_t L,
                                   int nq, int nkv, int D, float scale, float* dq, float* dk, float* dv,
                                   cudaStream_t stream) {
    check(D == 64 || D == 128, "flash_attention_sm90_backward: head_dim ", D, " (64 or 128)");
    if (D == 64)
        launch_backward<64>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
    else
        launch_backward<128>(q, k, v, dO, lse, delta, b, L, nq, nkv, scale, dq, dk, dv, stream);
}

}  // namespace autoround
