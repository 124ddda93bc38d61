// ops/cuda/fake_quant_device.cu — see fake_quant_device.h. One warp per quantization group: every lane derives the
// group's scale and zero point (the CPU's group_params, op for op), the lanes stride over the group's elements (4 at
// a time with 16-byte loads where the shapes and alignments allow, else one), and the backward reduces ds, dz over
// the warp before lane 0 chains them to dα, dβ (the CPU's group_param_grads) and steps α, β. Where every group is
// full and 32–256 wide, the backward step instead holds a group in a segment of a warp's registers
// (backward_step_seg_kernel).
#include "ops/cuda/fake_quant_device.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>
#include <initializer_list>

#include "core/error.h"
#include "ops/cuda/cuda_check.h"

namespace autoround {
namespace {

constexpr int kWarpsPerBlock = 8;  // groups per thread block (one warp each)

struct Params {  // per launch: the layer's constants
    int64_t in, gs, G, padded;
    int bits;
    bool sym, scale_fp16, out_bf16, minmax;
    float tau, tau_val;  // τ as float, and the value a clamped scale takes (fp16(τ) with fp16 scales)
};

struct Group {  // ops/cpu/fake_quant.cpp GroupParams
    float s, z, wlo;
    bool pass;
    int which;
};

__device__ float clamp01(float v) { return fminf(fmaxf(v, 0.f), 1.f); }
__device__ float cast_fp16(float v) { return __half2float(__float2half_rn(v)); }

// The group's parameters from (clamped) α, β: group_params of ops/cpu/fake_quant.cpp with every op rounded
// on its own (no FMA contraction).
__device__ Group group_params(const Params& P, float al, float be, float wmin, float wmax) {
    Group p{0.f, 0.f, 0.f, true, 0};
    if (P.sym) {
        const float Q = float(1 << (P.bits - 1));
        const float a = -__fmul_rn(wmin, al), b = __fmul_rn(wmax, be);
        float m;
        if (b < a) { m = a; p.which = 0; }
        else if (a < b) { m = -b; p.which = 1; }
        else { m = -a; p.which = 2; }
        float s = __fdiv_rn(m, Q);
        if (P.scale_fp16) s = cast_fp16(s);
        if (s < 0.f) { p.pass = s <= -P.tau; p.s = p.pass ? s : -P.tau_val; }
        else { p.pass = s >= P.tau; p.s = p.pass ? s : P.tau_val; }
        p.z = Q;
    } else {
        const float Qa = float((1 << P.bits) - 1);
        p.wlo = __fmul_rn(wmin, al);
        const float whi = __fmul_rn(wmax, be);
        float s = __fdiv_rn(__fsub_rn(whi, p.wlo), Qa);
        if (P.scale_fp16) s = cast_fp16(s);
        p.pass = s >= P.tau;
        p.s = p.pass ? s : P.tau_val;
        p.z = rintf(__fdiv_rn(-p.wlo, p.s));
    }
    return p;
}

// One warp per group (kWarpsPerBlock groups per thread block): every lane computes the group's parameters itself
// (no shared memory, no block barrier), then the warp streams the group's weights with coalesced loads. One thread
// block per group with a barrier around thread 0's parameters was latency-bound: ~2.5 ms per 4B-block iteration for
// the forward + backward of ~100 M weights that move ~2.6 GB.
// VEC (vec_ok below): a lane takes 4 adjacent elements per 16-byte load, so a 128-wide group is one load of W and one
// of V per lane, all in flight at once; the scalar loop (4-byte loads, one element per lane and step) kept only
// ~256 bytes per warp in flight and streamed at ~1.6 TB/s on an H200 (ncu, per 4B step: forward 0.68 ms and
// backward 0.94 ms; with the 16-byte path 0.42 and 0.70 ms). The per-element arithmetic is the same in both.
// Tried and not kept: issuing the first 16-byte loads before the group's parameters (backward 1.19 ms: slower).

// One element of the forward: W_q = s·clamp(round(x/s + v)) (sym) or s·(clamp(round(x/s + v) + z) − z) (asym).
__device__ __forceinline__ float fq_value(const Params& P, const Group& p, float x, float v) {
    const float u = __fadd_rn(__fdiv_rn(x, p.s), v);
    if (P.sym) {
        const float q = fminf(fmaxf(rintf(u), -p.z), p.z - 1.f);
        return __fmul_rn(p.s, q);
    }
    const float Qa = float((1 << P.bits) - 1);
    const float q = fminf(fmaxf(__fadd_rn(rintf(u), p.z), 0.f), Qa);
    return __fmul_rn(p.s, __fsub_rn(q, p.z));
}

// W_q of 4 adjacent elements (W in xv, V in vv) at element y of the outputs: FP32 into yf and / or bf16 into yb
// (16- / 8-byte stores), as forward_kernel writes them.
__device__ __forceinline__ void store_wq4(const Params& P, const Group& p, float4 xv, float4 vv, int64_t y, float* yf,
                                          __nv_bfloat16* yb) {
    float w[4] = {fq_value(P, p, xv.x, vv.x), fq_value(P, p, xv.y, vv.y), fq_value(P, p, xv.z, vv.z),
                  fq_value(P, p, xv.w, vv.w)};
    __nv_bfloat16 b[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        b[e] = __float2bfloat16_rn(w[e]);
        if (P.out_bf16) w[e] = __bfloat162float(b[e]);
    }
    if (yf) *reinterpret_cast<float4*>(yf + y) = make_float4(w[0], w[1], w[2], w[3]);
    if (yb) {  // bf16 of the FP32 value (out_bf16: w already is that value)
        __nv_bfloat162 lo, hi;
        lo.x = b[0];
        lo.y = b[1];
        hi.x = b[2];
        hi.y = b[3];
        uint2 u;
        u.x = *reinterpret_cast<const uint32_t*>(&lo);
        u.y = *reinterpret_cast<const uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(yb + y) = u;
    }
}

// W_q of one group (the warp's lanes over its n elements; x, v: the group's W and V, y offset: its first element in
// the outputs): FP32 into yf and / or bf16 into yb, as forward_kernel writes it. kVConst: V is not written by this
// kernel (read through the read-only cache); false where the lane itself just wrote its elements of V.
template <bool VEC, bool kVConst>
__device__ __forceinline__ void store_group_wq(const Params& P, const Group& p, int lane, int64_t n, const float* x,
                                               const float* v, int64_t y0, float* yf, __nv_bfloat16* yb) {
    if constexpr (VEC) {  // n, c0, in, padded multiples of 4; arrays 16-byte (yb 8-byte) aligned
#pragma unroll 4
        for (int64_t c = 4 * lane; c < n; c += 128) {
            const float4 xv = __ldg(reinterpret_cast<const float4*>(x + c));
            const float4 vv = kVConst ? __ldg(reinterpret_cast<const float4*>(v + c))
                                      : *reinterpret_cast<const float4*>(v + c);
            store_wq4(P, p, xv, vv, y0 + c, yf, yb);
        }
    } else {
        for (int64_t c = lane; c < n; c += 32) {
            float y = fq_value(P, p, x[c], v[c]);
            const __nv_bfloat16 yb16 = __float2bfloat16_rn(y);
            if (P.out_bf16) y = __bfloat162float(yb16);
            if (yf) yf[y0 + c] = y;
            if (yb) yb[y0 + c] = P.out_bf16 ? yb16 : __float2bfloat16_rn(y);
        }
    }
}

template <bool VEC>
__global__ void forward_kernel(Params P, int64_t groups, const float* W, const float* V, float* alpha, float* beta,
                               const float* wmin, const float* wmax, float* yf, __nv_bfloat16* yb) {
    const int lane = threadIdx.x & 31;
    const int64_t g = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
    if (g >= groups) return;
    const int64_t o = g / P.G, j = g % P.G, c0 = j * P.gs;
    const int64_t n = min(P.gs, P.in - c0);
    float al = 1.f, be = 1.f;
    if (P.minmax) {  // fake_quant_clamp_minmax, in place (every lane reads before lane 0 writes)
        al = clamp01(alpha[g]);
        be = clamp01(beta[g]);
        __syncwarp();
        if (lane == 0) {
            alpha[g] = al;
            beta[g] = be;
        }
    }
    const Group p = group_params(P, al, be, wmin[g], wmax[g]);
    store_group_wq<VEC, true>(P, p, lane, n, W + o * P.in + c0, V + o * P.padded + c0, o * P.in + c0, yf, yb);
}

__device__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// signsgd_step of one parameter
__device__ float sign_step(float p, float g, float lr) {
    if (g > 0.f) return __fsub_rn(p, lr);
    if (g < 0.f) return __fadd_rn(p, lr);
    return p;  // sign(0) = 0; NaN: no step
}

// One element of the backward: returns dv = ∂L/∂v (straight-through rounding) and adds the element's terms to ds, dz.
__device__ __forceinline__ float fq_grad(const Params& P, const Group& p, float x, float v, float gc, float& ds,
                                         float& dz) {
    const float xs = __fdiv_rn(x, p.s);
    const float r = rintf(__fadd_rn(xs, v));
    if (P.sym) {
        const bool in = r >= -p.z && r <= p.z - 1.f;
        const float q = fminf(fmaxf(r, -p.z), p.z - 1.f);
        ds += __fsub_rn(__fmul_rn(gc, q), in ? __fmul_rn(gc, xs) : 0.f);
        return in ? __fmul_rn(gc, p.s) : 0.f;
    }
    const float Qa = float((1 << P.bits) - 1);
    const float tq = __fadd_rn(r, p.z);
    const bool in = tq >= 0.f && tq <= Qa;
    const float q = fminf(fmaxf(tq, 0.f), Qa);
    ds += __fsub_rn(__fmul_rn(gc, __fsub_rn(q, p.z)), in ? __fmul_rn(gc, xs) : 0.f);
    if (!in) dz -= __fmul_rn(gc, p.s);
    return in ? __fmul_rn(gc, p.s) : 0.f;
}

// fq_grad of 4 adjacent elements (in order, into ds, dz), then their SignSGD step of V (vv, in place); returns dV.
__device__ __forceinline__ float4 grad_step4(const Params& P, const Group& p, float4 xv, float4 gv, float lr_v,
                                             float4& vv, float& ds, float& dz) {
    float4 dv;
    dv.x = fq_grad(P, p, xv.x, vv.x, gv.x, ds, dz);
    dv.y = fq_grad(P, p, xv.y, vv.y, gv.y, ds, dz);
    dv.z = fq_grad(P, p, xv.z, vv.z, gv.z, ds, dz);
    dv.w = fq_grad(P, p, xv.w, vv.w, gv.w, ds, dz);
    vv.x = sign_step(vv.x, dv.x, lr_v);
    vv.y = sign_step(vv.y, dv.y, lr_v);
    vv.z = sign_step(vv.z, dv.z, lr_v);
    vv.w = sign_step(vv.w, dv.w, lr_v);
    return dv;
}

// The SignSGD step of a group's α, β (al, be: their current values) from dα, dβ; clamped to [0, 1] when the step
// also writes the next W_q (the next forward's fake_quant_clamp_minmax, done here). 1, 1 without min/max tuning.
__device__ __forceinline__ void step_minmax(const Params& P, float al, float be, float da, float db, float lr_m,
                                            bool clamp, float& na, float& nb) {
    na = 1.f;
    nb = 1.f;
    if (!P.minmax) return;
    na = sign_step(al, da, lr_m);
    nb = sign_step(be, db, lr_m);
    if (clamp) {
        na = clamp01(na);
        nb = clamp01(nb);
    }
}

// group_param_grads of ops/cpu/fake_quant.cpp: the group's (ds, dz) to dα, dβ
__device__ __forceinline__ void param_grads(const Params& P, const Group& p, float ds, float dz, float wmn, float wmx,
                                            float& da, float& db) {
    da = 0.f;
    db = 0.f;
    if (P.sym) {
        const float Q = p.z;
        const float dm = p.pass ? ds / Q : 0.f;
        if (p.which == 0) da = -dm * wmn;
        else if (p.which == 1) db = -dm * wmx;
        else { da = dm * wmn / 2.f; db = -dm * wmx / 2.f; }
    } else {
        const float Qa = float((1 << P.bits) - 1);
        const float s = p.s;
        ds += dz * p.wlo / (s * s);
        float dwlo = -dz / s;
        const float ds0 = p.pass ? ds : 0.f;
        const float dwhi = ds0 / Qa;
        dwlo -= ds0 / Qa;
        da = dwlo * wmn;
        db = dwhi * wmx;
    }
}

template <bool VEC>
__global__ void backward_step_kernel(Params P, int64_t groups, const float* W, float* V, float* alpha, float* beta,
                                     const float* wmin, const float* wmax, const float* dWq, float lr_v, float lr_m,
                                     const float* lr_dev, float* gV, float* gA, float* gB, float* yf,
                                     __nv_bfloat16* yb) {
    if (lr_dev) {  // the rates of this launch from device memory (a replayed CUDA graph)
        lr_v = lr_dev[0];
        lr_m = lr_dev[1];
    }
    const int lane = threadIdx.x & 31;
    const int64_t g = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
    if (g >= groups) return;
    const int64_t o = g / P.G, j = g % P.G, c0 = j * P.gs;
    const int64_t n = min(P.gs, P.in - c0);
    const Group p =
        group_params(P, P.minmax ? clamp01(alpha[g]) : 1.f, P.minmax ? clamp01(beta[g]) : 1.f, wmin[g], wmax[g]);
    const float* x = W + o * P.in + c0;
    float* v = V + o * P.padded + c0;
    const float* gr = dWq + o * P.in + c0;
    float ds = 0.f, dz = 0.f;
    if constexpr (VEC) {  // as forward_kernel; gs a multiple of 4, so a 4-element step is all in [0, n) or all padding
#pragma unroll 4
        for (int64_t c = 4 * lane; c < P.gs; c += 128) {
            float4 dv = make_float4(0.f, 0.f, 0.f, 0.f);
            if (c < n) {
                const float4 xv = __ldg(reinterpret_cast<const float4*>(x + c));
                const float4 gv = __ldg(reinterpret_cast<const float4*>(gr + c));
                float4 vv = *reinterpret_cast<const float4*>(v + c);
                dv = grad_step4(P, p, xv, gv, lr_v, vv, ds, dz);
                *reinterpret_cast<float4*>(v + c) = vv;
            }
            if (gV) *reinterpret_cast<float4*>(gV + o * P.padded + c0 + c) = dv;  // padding: 0
        }
    } else {
        for (int64_t c = lane; c < P.gs; c += 32) {
            float dv = 0.f;
            if (c < n) {
                dv = fq_grad(P, p, x[c], v[c], gr[c], ds, dz);
                v[c] = sign_step(v[c], dv, lr_v);
            }
            if (gV) gV[o * P.padded + c0 + c] = dv;  // padding: 0
        }
    }
    ds = warp_sum(ds);
    dz = warp_sum(dz);
    const float wmn = wmin[g], wmx = wmax[g];
    float na = 1.f, nb = 1.f;  // the stepped α, β, clamped (fused forward below)
    if (lane == 0) {
        float da, db;
        param_grads(P, p, ds, dz, wmn, wmx, da, db);
        if (gA) gA[g] = da;
        if (gB) gB[g] = db;
        if (P.minmax) {
            step_minmax(P, alpha[g], beta[g], da, db, lr_m, yf || yb, na, nb);
            alpha[g] = na;
            beta[g] = nb;
        }
    }
    if (!yf && !yb) return;
    // fused: W_q of the stepped parameters, as the next forward_kernel would write it (each lane re-reads the V
    // elements it just wrote)
    na = __shfl_sync(0xffffffffu, na, 0);
    nb = __shfl_sync(0xffffffffu, nb, 0);
    const Group pn = group_params(P, P.minmax ? na : 1.f, P.minmax ? nb : 1.f, wmn, wmx);
    store_group_wq<VEC, false>(P, pn, lane, n, x, v, o * P.in + c0, yf, yb);
}

// The backward step with the group held in registers (seg_ok below: every group full, gs = 8·LPG with LPG lanes per
// group, LPG ∈ {4, 8, 16, 32}; 32 / LPG groups per warp). A lane loads its 8 elements of W, dW_q and V (two 16-byte
// chunks, 4·LPG elements apart, so each load instruction of the warp covers contiguous memory) together with the
// group's wmin, wmax, α, β before any of them is used, steps V, and sums ds, dz over its segment with a butterfly,
// which leaves the sums in every lane: each lane then derives dα, dβ, the stepped α, β and the next W_q of its own
// elements from registers. backward_step_kernel keeps one group per warp and re-reads W and V after the reduction:
// two dependent memory round trips per 128 elements, which left its 7 launches of a 4B step latency-bound at
// ~1.7 TB/s (ncu: 1.16 ms with the fused next W_q). Same per-element arithmetic, the same order of the ds, dz sums
// and the same scalar chain for dα, dβ as backward_step_kernel: bit for bit its results (a tuning run's trajectory
// does not depend on which of the two kernels ran; the tests compare both with the CPU reference).
template <int LPG>
__global__ void backward_step_seg_kernel(Params P, int64_t groups, const float* W, float* V, float* alpha, float* beta,
                                         const float* wmin, const float* wmax, const float* dWq, float lr_v,
                                         float lr_m, const float* lr_dev, float* gV, float* gA, float* gB, float* yf,
                                         __nv_bfloat16* yb) {
    static_assert(LPG == 4 || LPG == 8 || LPG == 16 || LPG == 32, "lanes per group");
    constexpr int kGroupsPerWarp = 32 / LPG;
    if (lr_dev) {
        lr_v = lr_dev[0];
        lr_m = lr_dev[1];
    }
    const int lane = threadIdx.x & 31, seg_lane = lane % LPG;
    const int64_t g = (int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5)) * kGroupsPerWarp + lane / LPG;
    const bool live = g < groups;  // dead segments of the last warp still take part in the shuffles
    const int64_t e0 = g * P.gs + 4 * seg_lane;  // in == G·gs: group g starts at element g·gs of W, V and dW_q
    float4 xv[2], gv[2], vv[2];
    float wmn = 0.f, wmx = 0.f, al = 1.f, be = 1.f;
    if (live) {
        wmn = wmin[g];
        wmx = wmax[g];
        if (P.minmax) {
            al = alpha[g];
            be = beta[g];
        }
#pragma unroll
        for (int k = 0; k < 2; ++k) {
            const int64_t e = e0 + 4 * LPG * k;
            xv[k] = __ldg(reinterpret_cast<const float4*>(W + e));
            gv[k] = __ldg(reinterpret_cast<const float4*>(dWq + e));
            vv[k] = *reinterpret_cast<const float4*>(V + e);
        }
    } else {
#pragma unroll
        for (int k = 0; k < 2; ++k) xv[k] = gv[k] = vv[k] = make_float4(0.f, 0.f, 0.f, 0.f);
        wmn = -1.f;  // any group with a non-zero scale: dead lanes compute and discard
        wmx = 1.f;
    }
    const Group p = group_params(P, P.minmax ? clamp01(al) : 1.f, P.minmax ? clamp01(be) : 1.f, wmn, wmx);
    // ds, dz in backward_step_kernel's order, so both kernels give the same bits: there, with LPG < 32, chunk 1 of
    // this lane is another lane's chunk 0 and the two per-lane sums meet in the first butterfly step that matters
    // (sum_0 + sum_1); with LPG = 32 one lane walks both chunks in one running sum.
    float dsk[2] = {0.f, 0.f}, dzk[2] = {0.f, 0.f};
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        float& ds = LPG == 32 ? dsk[0] : dsk[k];
        float& dz = LPG == 32 ? dzk[0] : dzk[k];
        const float4 dv = grad_step4(P, p, xv[k], gv[k], lr_v, vv[k], ds, dz);
        if (live) {
            const int64_t e = e0 + 4 * LPG * k;
            *reinterpret_cast<float4*>(V + e) = vv[k];
            if (gV) *reinterpret_cast<float4*>(gV + e) = dv;
        }
    }
    float ds = LPG == 32 ? dsk[0] : dsk[0] + dsk[1], dz = LPG == 32 ? dzk[0] : dzk[0] + dzk[1];
#pragma unroll
    for (int off = LPG / 2; off > 0; off >>= 1) {  // within the segment: every lane ends with the sums
        ds += __shfl_xor_sync(0xffffffffu, ds, off);
        dz += __shfl_xor_sync(0xffffffffu, dz, off);
    }
    float da, db;  // as backward_step_kernel's lane 0, in every lane of the segment
    param_grads(P, p, ds, dz, wmn, wmx, da, db);
    float na, nb;
    step_minmax(P, al, be, da, db, lr_m, yf || yb, na, nb);
    if (live && seg_lane == 0) {
        if (gA) gA[g] = da;
        if (gB) gB[g] = db;
        if (P.minmax) {
            alpha[g] = na;
            beta[g] = nb;
        }
    }
    if ((!yf && !yb) || !live) return;
    const Group pn = group_params(P, na, nb, wmn, wmx);
#pragma unroll
    for (int k = 0; k < 2; ++k) store_wq4(P, pn, xv[k], vv[k], e0 + 4 * LPG * k, yf, yb);
}

Params params_of(const FakeQuantDeviceLayer& l) {
    check(l.cfg.bits >= 1 && l.cfg.bits <= 8, "fake quant (GPU): bits = ", l.cfg.bits);
    check(l.W && l.V && l.wmin && l.wmax && (!l.minmax || (l.alpha && l.beta)), "fake quant (GPU): missing arrays");
    Params P;
    P.in = l.sh.in;
    P.gs = l.sh.gs;
    P.G = l.sh.G;
    P.padded = l.sh.padded_in();
    P.bits = l.cfg.bits;
    P.sym = l.cfg.sym;
    P.scale_fp16 = l.cfg.scale_fp16;
    P.out_bf16 = l.cfg.out_bf16;
    P.minmax = l.minmax;
    P.tau = static_cast<float>(l.cfg.tau);
    P.tau_val = l.cfg.scale_fp16 ? __half2float(__float2half_rn(P.tau)) : P.tau;
    return P;
}

template <typename T>
struct Dev {  // a scratch device array for fake_quant_device_run
    T* p = nullptr;
    explicit Dev(size_t n, const T* host = nullptr) {
        AR_CUDA_CHECK(cudaMalloc(&p, (n ? n : 1) * sizeof(T)));
        if (host && n) AR_CUDA_CHECK(cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice));
    }
    ~Dev() { cudaFree(p); }
    Dev(const Dev&) = delete;
    Dev& operator=(const Dev&) = delete;
    std::vector<T> get(size_t n) const {
        std::vector<T> h(n);
        AR_CUDA_CHECK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
        return h;
    }
};

bool aligned(const void* p, uintptr_t a) { return reinterpret_cast<uintptr_t>(p) % a == 0; }

// The 4-element path applies: every group starts and ends on a multiple of 4 elements (rows of W, V and the outputs
// too) and every array is 16-byte aligned (the bf16 output 8-byte); null arrays are not used.
bool vec_ok(const Params& P, std::initializer_list<const void*> f32, const void* bf16) {
    if (P.gs % 4 != 0 || P.in % 4 != 0 || P.padded % 4 != 0) return false;
    for (const void* q : f32)
        if (!aligned(q, 16)) return false;
    return aligned(bf16, 8);
}

// The register-resident backward (backward_step_seg_kernel) applies: every group is full (in = G·gs, so W, V and
// dW_q share one layout), gs = 8·LPG for LPG ∈ {4, 8, 16, 32}, the arrays 16-byte aligned (the bf16 output
// 8-byte). Returns LPG, or 0.
int seg_lanes(const Params& P, std::initializer_list<const void*> f32, const void* bf16) {
    if (P.in != P.G * P.gs || P.padded != P.in) return 0;
    const int lpg = P.gs == 32 ? 4 : P.gs == 64 ? 8 : P.gs == 128 ? 16 : P.gs == 256 ? 32 : 0;
    if (!lpg) return 0;
    for (const void* q : f32)
        if (!aligned(q, 16)) return 0;
    return aligned(bf16, 8) ? lpg : 0;
}

}  // namespace

void fake_quant_device_forward(const FakeQuantDeviceLayer& l, float* Wq_f32, uint16_t* Wq_bf16, CUstream_st* stream) {
    const Params P = params_of(l);
    const int64_t groups = l.sh.groups();
    const unsigned grid = unsigned((groups + kWarpsPerBlock - 1) / kWarpsPerBlock);
    auto* yb = reinterpret_cast<__nv_bfloat16*>(Wq_bf16);
    if (vec_ok(P, {l.W, l.V, Wq_f32}, Wq_bf16))
        forward_kernel<true><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(P, groups, l.W, l.V, l.alpha, l.beta, l.wmin,
                                                                         l.wmax, Wq_f32, yb);
    else
        forward_kernel<false><<<grid, 32 * kWarpsPerBlock, 0, stream>>>(P, groups, l.W, l.V, l.alpha, l.beta, l.wmin,
                                                                          l.wmax, Wq_f32, yb);
    AR_CUDA_CHECK(cudaGetLastError());
}

void fake_quant_device_backward_step(const FakeQuantDeviceLayer& l, const float* dWq, float lr_v, float lr_m, float* gV,
                                     float* gA, float* gB, CUstream_st* stream, const float* lr_device,
                                     float* next_Wq_f32, uint16_t* next_Wq_bf16, bool one_warp_per_group) {
    const Params P = params_of(l);
    const int64_t groups = l.sh.groups();
    auto* yb = reinterpret_cast<__nv_bfloat16*>(next_Wq_bf16);
    // every backward kernel takes the same arguments; groups_per_warp: 1, or 32 / LPG for the segmented one
    auto launch = [&](auto kernel, int64_t groups_per_warp) {
        const int64_t per_block = int64_t(kWarpsPerBlock) * groups_per_warp;
        kernel<<<unsigned((groups + per_block - 1) / per_block), 32 * kWarpsPerBlock, 0, stream>>>(
            P, groups, l.W, l.V, l.alpha, l.beta, l.wmin, l.wmax, dWq, lr_v, lr_m, lr_device, gV, gA, gB, next_Wq_f32,
            yb);
    };
    // AUTOROUND_FQ_WARP_PER_GROUP=1: one warp per group everywhere (A/B runs of the register-resident kernel)
    static const bool warp_per_group = [] {
        const char* e = std::getenv("AUTOROUND_FQ_WARP_PER_GROUP");
        return e && e[0] == '1';
    }();
    const int lpg = warp_per_group || one_warp_per_group ? 0 : seg_lanes(P, {l.W, l.V, dWq, gV, next_Wq_f32}, next_Wq_bf16);
    switch (lpg) {
        case 4: launch(backward_step_seg_kernel<4>, 8); break;
        case 8: launch(backward_step_seg_kernel<8>, 4); break;
        case 16: launch(backward_step_seg_kernel<16>, 2); break;
        case 32: launch(backward_step_seg_kernel<32>, 1); break;
        default:
            if (vec_ok(P, {l.W, l.V, dWq, gV, next_Wq_f32}, next_Wq_bf16)) launch(backward_step_kernel<true>, 1);
            else launch(backward_step_kernel<false>, 1);
    }
    AR_CUDA_CHECK(cudaGetLastError());
}

namespace {
// The host arrays of one layer uploaded for the test entry points below (checked against the shape first).
struct UploadedLayer {
    size_t nw, nv, ng;
    Dev<float> W, V, A, B, lo, hi, G;
    FakeQuantDeviceLayer l;
    // the weight's element count, once the arrays are checked
    static size_t checked_count(const char* what, const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                bool minmax, const std::vector<float>& dWq) {
        const size_t n = size_t(sh.out * sh.in);
        check(t.W && t.V && t.wmin && t.wmax && (!minmax || (t.alpha && t.beta)) && dWq.size() == n, what,
              ": missing or mis-sized arrays");
        return n;
    }
    UploadedLayer(const char* what, const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                  const FakeQuantConfig& cfg, bool minmax, const std::vector<float>& dWq)
        : nw(checked_count(what, t, sh, minmax, dWq)), nv(size_t(sh.out * sh.padded_in())), ng(size_t(sh.groups())),
          W(nw, t.W), V(nv, t.V), A(ng, minmax ? t.alpha : nullptr), B(ng, minmax ? t.beta : nullptr), lo(ng, t.wmin),
          hi(ng, t.wmax), G(nw, dWq.data()) {
        l.sh = sh;
        l.cfg = cfg;
        l.minmax = minmax;
        l.W = W.p;
        l.V = V.p;
        l.alpha = minmax ? A.p : nullptr;
        l.beta = minmax ? B.p : nullptr;
        l.wmin = lo.p;
        l.wmax = hi.p;
    }
};
}  // namespace

FakeQuantDeviceResult fake_quant_device_run(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                            const FakeQuantConfig& cfg, bool minmax, const std::vector<float>& dWq,
                                            float lr_v, float lr_m, bool one_warp_per_group) {
    UploadedLayer u("fake_quant_device_run", t, sh, cfg, minmax, dWq);
    const size_t nw = u.nw, nv = u.nv, ng = u.ng;
    Dev<float> Wq(nw), gV(nv), gA(ng), gB(ng);
    const FakeQuantDeviceLayer& l = u.l;
    fake_quant_device_forward(l, Wq.p, nullptr);
    fake_quant_device_backward_step(l, u.G.p, lr_v, lr_m, gV.p, gA.p, gB.p, nullptr, nullptr, nullptr, nullptr,
                                    one_warp_per_group);
    AR_CUDA_CHECK(cudaDeviceSynchronize());
    FakeQuantDeviceResult r;
    r.Wq = Wq.get(nw);
    r.gV = gV.get(nv);
    r.gA = gA.get(ng);
    r.gB = gB.get(ng);
    r.V = u.V.get(nv);
    if (minmax) {
        r.alpha = u.A.get(ng);
        r.beta = u.B.get(ng);
    }
    return r;
}

FakeQuantDeviceFusedCheck fake_quant_device_fused_check(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                                        const FakeQuantConfig& cfg, bool minmax,
                                                        const std::vector<float>& dWq, float lr_v, float lr_m) {
    UploadedLayer u("fake_quant_device_fused_check", t, sh, cfg, minmax, dWq);
    const size_t nw = u.nw;
    Dev<float> Wq(nw), fused(nw), separate(nw);
    Dev<uint16_t> Wqb(nw), fused_b(nw), separate_b(nw);
    const FakeQuantDeviceLayer& l = u.l;
    fake_quant_device_forward(l, Wq.p, Wqb.p);
    fake_quant_device_backward_step(l, u.G.p, lr_v, lr_m, nullptr, nullptr, nullptr, nullptr, nullptr, fused.p,
                                    fused_b.p);
    fake_quant_device_forward(l, separate.p, separate_b.p);
    AR_CUDA_CHECK(cudaDeviceSynchronize());
    FakeQuantDeviceFusedCheck r;
    r.fused = fused.get(nw);
    r.separate = separate.get(nw);
    r.fused_bf16 = fused_b.get(nw);
    r.separate_bf16 = separate_b.get(nw);
    r.first = Wq.get(nw);
    return r;
}

}  // namespace autoround
