// ops/cpu/fake_quant.cpp — see fake_quant.h. One helper (group_params) derives a group's scale, zero
// and the branch decisions the backward needs; the reference and the fast path share it so that
// their scales agree bit for bit. Element loops are written once as scalar code (the reference and
// the tails of the fast path) and once with AVX2 intrinsics (the same IEEE operations, same order).
#include "ops/cpu/fake_quant.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define AR_FQ_AVX2 1
#endif

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cpu/fake_quant_math.h"
#include "ops/cpu/fake_quant_dq.h"

namespace autoround {

FakeQuantShape fake_quant_shape(int64_t out, int64_t in, int64_t group_size) {
    check(out > 0 && in > 0, "fake quant: weight shape [", out, ", ", in, "] is empty");
    check(group_size == -1 || group_size > 0, "fake quant: group_size ", group_size,
          " is not supported (use -1 for per-channel or a positive group size)");
    FakeQuantShape sh;
    sh.out = out;
    sh.in = in;
    sh.gs = (group_size == -1 || in < group_size) ? in : group_size;  // §2.2: in < gs → per-channel
    sh.G = (in + sh.gs - 1) / sh.gs;
    return sh;
}

namespace {

void check_config(const FakeQuantConfig& cfg) {
    check(cfg.bits >= 1 && cfg.bits <= 8, "fake quant: bits = ", cfg.bits, " (expected 2, 3, 4 or 8)");
    check(cfg.tau >= 0, "fake quant: q_scale_thresh ", cfg.tau, " must be >= 0");
}

using fq::cast_bf16;
using fq::cast_fp16;
using fq::clamp01;
using fq::rint_even;

// A group's quantization parameters plus the decisions the backward replays. Every step is one
// separately rounded float op, as PyTorch evaluates it (checked bit for bit against quant/rtn.h).
template <typename T>
struct GroupParams {
    T s = 0;      // scale used (fp16 value, τ-clamped)
    T z = 0;      // asym: rint(-wlo / s); sym: Q
    T wlo = 0;    // asym: wmin·α
    bool pass = true;  // the τ clamp left s unchanged (gradient flows into s)
    int which = 0;     // sym: 0 = a = -(wmin·α) won, 1 = b = wmax·β won, 2 = tie
};

template <typename T>
GroupParams<T> group_params(const FakeQuantTensors<T>& t, int64_t g, const FakeQuantConfig& cfg) {
    GroupParams<T> p;
    const T al = t.alpha ? clamp01(t.alpha[g]) : T(1);
    const T be = t.beta ? clamp01(t.beta[g]) : T(1);
    const T wmin = t.wmin[g], wmax = t.wmax[g];
    const T tau = static_cast<T>(cfg.tau);
    const T tau_val = cfg.scale_fp16 ? cast_fp16(tau) : tau;
    if (cfg.sym) {
        const T Q = static_cast<T>(int64_t(1) << (cfg.bits - 1));
        const T a = -(wmin * al), b = wmax * be;
        T m;
        if (b < a) { m = a; p.which = 0; }
        else if (a < b) { m = -b; p.which = 1; }
        else { m = -a; p.which = 2; }
        T s = m / Q;
        if (cfg.scale_fp16) s = cast_fp16(s);
        if (s < T(0)) { p.pass = s <= -tau; p.s = p.pass ? s : -tau_val; }
        else { p.pass = s >= tau; p.s = p.pass ? s : tau_val; }
        p.z = Q;
    } else {
        const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1);
        p.wlo = wmin * al;
        const T whi = wmax * be;
        T s = (whi - p.wlo) / Qa;
        if (cfg.scale_fp16) s = cast_fp16(s);
        p.pass = s >= tau;
        p.s = p.pass ? s : tau_val;
        p.z = rint_even(-p.wlo / p.s);
    }
    return p;
}

// Scalar forward of elements [0, n) of one group.
template <typename T>
void forward_elems(const T* x, const T* v, int64_t n, const GroupParams<T>& p, const FakeQuantConfig& cfg, T* y) {
    const T s = p.s, z = p.z;
    if (cfg.sym) {
        const T Q = z;
        for (int64_t j = 0; j < n; ++j) {
            const T u = x[j] / s + (v ? v[j] : T(0));
            const T q = std::min(std::max(rint_even(u), -Q), Q - T(1));
            y[j] = cfg.out_bf16 ? cast_bf16(s * q) : s * q;
        }
    } else {
        const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1);
        for (int64_t j = 0; j < n; ++j) {
            const T r = rint_even(x[j] / s + (v ? v[j] : T(0)));
            const T q = std::min(std::max(r + z, T(0)), Qa);
            y[j] = cfg.out_bf16 ? cast_bf16(s * (q - z)) : s * (q - z);
        }
    }
}

// Scalar backward of elements [0, n): writes dv, accumulates ds (gradient wrt the used s) and dz.
template <typename T>
void backward_elems(const T* x, const T* v, const T* g, int64_t n, const GroupParams<T>& p,
                    const FakeQuantConfig& cfg, T* dv, T& ds, T& dz) {
    const T s = p.s, z = p.z;
    if (cfg.sym) {
        const T Q = z;
        for (int64_t j = 0; j < n; ++j) {
            const T xs = x[j] / s;
            const T r = rint_even(xs + (v ? v[j] : T(0)));
            const bool in = r >= -Q && r <= Q - T(1);
            const T q = std::min(std::max(r, -Q), Q - T(1));
            if (dv) dv[j] = in ? g[j] * s : T(0);
            ds += g[j] * q - (in ? g[j] * xs : T(0));
        }
    } else {
        const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1);
        for (int64_t j = 0; j < n; ++j) {
            const T xs = x[j] / s;
            const T tq = rint_even(xs + (v ? v[j] : T(0))) + z;
            const bool in = tq >= T(0) && tq <= Qa;
            const T q = std::min(std::max(tq, T(0)), Qa);
            if (dv) dv[j] = in ? g[j] * s : T(0);
            ds += g[j] * (q - z) - (in ? g[j] * xs : T(0));
            if (!in) dz -= g[j] * s;
        }
    }
}

// Chain from (ds, dz) of one group to dα, dβ.
template <typename T>
void group_param_grads(const FakeQuantTensors<T>& t, int64_t g, const GroupParams<T>& p, const FakeQuantConfig& cfg,
                       T ds, T dz, T* dalpha, T* dbeta) {
    const T wmin = t.wmin[g], wmax = t.wmax[g];
    T da = 0, db = 0;
    if (cfg.sym) {
        const T Q = p.z;
        const T dm = p.pass ? ds / Q : T(0);  // s = fp16(m / Q): the cast is the identity
        if (p.which == 0) da = -dm * wmin;             // m = a = -(wmin·α)
        else if (p.which == 1) db = -dm * wmax;        // m = -b = -(wmax·β)
        else { da = dm * wmin / T(2); db = -dm * wmax / T(2); }  // m = -max(a, b), tie: 1/2 each
    } else {
        const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1);
        const T s = p.s;
        // z = rint(-wlo / s) with STE: dzf = dz, zf = -wlo / s
        ds += dz * p.wlo / (s * s);
        T dwlo = -dz / s;
        const T ds0 = p.pass ? ds : T(0);  // s = max(fp16((whi - wlo) / Qa), τ)
        const T dwhi = ds0 / Qa;
        dwlo -= ds0 / Qa;
        da = dwlo * wmin;  // wlo = wmin·α
        db = dwhi * wmax;  // whi = wmax·β
    }
    if (dalpha) dalpha[g] = da;
    if (dbeta) dbeta[g] = db;
}

void check_tensors_present(const void* W, const void* wmin, const void* wmax) {
    check(W && wmin && wmax, "fake quant: W, wmin and wmax are required");
}

#ifdef AR_FQ_AVX2
inline __m256 round_bf16_8(__m256 y) {
    __m256i b = _mm256_castps_si256(y);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    b = _mm256_add_epi32(b, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
    b = _mm256_and_si256(b, _mm256_set1_epi32(static_cast<int>(0xffff0000u)));
    return _mm256_castsi256_ps(b);
}
inline float hsum8(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}
constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
#endif

}  // namespace

template <typename T>
void fake_quant_minmax(const T* W, const FakeQuantShape& sh, T* wmin, T* wmax) {
#pragma omp parallel for schedule(static) if (sh.out * sh.in > 16384)
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t c0 = j * sh.gs, c1 = std::min(c0 + sh.gs, sh.in);
            T lo = 0, hi = 0;  // min(0, ·), max(0, ·); padded zeros change nothing
            for (int64_t c = c0; c < c1; ++c) {
                lo = std::min(lo, W[o * sh.in + c]);
                hi = std::max(hi, W[o * sh.in + c]);
            }
            wmin[o * sh.G + j] = lo;
            wmax[o * sh.G + j] = hi;
        }
    }
}

template <typename T>
void fake_quant_forward_ref(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                            T* Wq, T* scale, T* zero) {
    if (cfg.kind != FakeQuantKind::Int) {  // GGUF k-quant data types: ops/cpu/fake_quant_dq.h
        check(!scale && !zero, "fake quant: double-quantized kinds report their parameters via fake_quant_dq_codes");
        return fake_quant_dq_forward(t, sh, cfg, Wq);
    }
    check_config(cfg);
    check_tensors_present(t.W, t.wmin, t.wmax);
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j, c0 = j * sh.gs, n = std::min(sh.gs, sh.in - c0);
            const GroupParams<T> p = group_params(t, g, cfg);
            forward_elems(t.W + o * sh.in + c0, t.V ? t.V + o * sh.padded_in() + c0 : nullptr, n, p, cfg,
                          Wq + o * sh.in + c0);
            if (scale) scale[g] = p.s;
            if (zero) zero[g] = p.z;
        }
    }
}

template <typename T>
void fake_quant_backward_ref(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                             const T* dWq, T* dV, T* dalpha, T* dbeta) {
    if (cfg.kind != FakeQuantKind::Int) return fake_quant_dq_backward(t, sh, cfg, dWq, dV, dalpha, dbeta);
    check_config(cfg);
    check_tensors_present(t.W, t.wmin, t.wmax);
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j, c0 = j * sh.gs, n = std::min(sh.gs, sh.in - c0);
            const GroupParams<T> p = group_params(t, g, cfg);
            T* dv = dV ? dV + o * sh.padded_in() + c0 : nullptr;
            T ds = 0, dz = 0;
            backward_elems(t.W + o * sh.in + c0, t.V ? t.V + o * sh.padded_in() + c0 : nullptr, dWq + o * sh.in + c0,
                           n, p, cfg, dv, ds, dz);
            if (dv)
                for (int64_t c = n; c < sh.gs; ++c) dv[c] = T(0);  // padding
            group_param_grads(t, g, p, cfg, ds, dz, dalpha, dbeta);
        }
    }
}

void fake_quant_forward(const FakeQuantTensors<float>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                        float* Wq, float* scale, float* zero) {
    if (cfg.kind != FakeQuantKind::Int) {  // GGUF k-quant data types: ops/cpu/fake_quant_dq.h
        check(!scale && !zero, "fake quant: double-quantized kinds report their parameters via fake_quant_dq_codes");
        return fake_quant_dq_forward(t, sh, cfg, Wq);
    }
    check_config(cfg);
    check_tensors_present(t.W, t.wmin, t.wmax);
#pragma omp parallel for schedule(static) if (sh.out * sh.in > 16384)
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j, c0 = j * sh.gs, n = std::min(sh.gs, sh.in - c0);
            const GroupParams<float> p = group_params(t, g, cfg);
            const float* x = t.W + o * sh.in + c0;
            const float* v = t.V ? t.V + o * sh.padded_in() + c0 : nullptr;
            float* y = Wq + o * sh.in + c0;
            int64_t i = 0;
#ifdef AR_FQ_AVX2
            const __m256 vs = _mm256_set1_ps(p.s), vz = _mm256_set1_ps(p.z);
            if (cfg.sym) {
                const __m256 lo = _mm256_set1_ps(-p.z), hi = _mm256_set1_ps(p.z - 1.f);
                for (; i + 8 <= n; i += 8) {
                    // + V (or + 0.0, as the scalar path: turns -0 into +0)
                    const __m256 u = _mm256_add_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs),
                                                   v ? _mm256_loadu_ps(v + i) : _mm256_setzero_ps());
                    const __m256 q = _mm256_min_ps(_mm256_max_ps(_mm256_round_ps(u, kRound), lo), hi);
                    __m256 r = _mm256_mul_ps(vs, q);
                    if (cfg.out_bf16) r = round_bf16_8(r);
                    _mm256_storeu_ps(y + i, r);
                }
            } else {
                const __m256 lo = _mm256_setzero_ps(),
                             hi = _mm256_set1_ps(static_cast<float>((1 << cfg.bits) - 1));
                for (; i + 8 <= n; i += 8) {
                    // + V (or + 0.0, as the scalar path: turns -0 into +0)
                    const __m256 u = _mm256_add_ps(_mm256_div_ps(_mm256_loadu_ps(x + i), vs),
                                                   v ? _mm256_loadu_ps(v + i) : _mm256_setzero_ps());
                    const __m256 tq = _mm256_add_ps(_mm256_round_ps(u, kRound), vz);
                    const __m256 q = _mm256_min_ps(_mm256_max_ps(tq, lo), hi);
                    __m256 r = _mm256_mul_ps(vs, _mm256_sub_ps(q, vz));
                    if (cfg.out_bf16) r = round_bf16_8(r);
                    _mm256_storeu_ps(y + i, r);
                }
            }
#endif
            forward_elems(x + i, v ? v + i : nullptr, n - i, p, cfg, y + i);
            if (scale) scale[g] = p.s;
            if (zero) zero[g] = p.z;
        }
    }
}

void fake_quant_backward(const FakeQuantTensors<float>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                         const float* dWq, float* dV, float* dalpha, float* dbeta) {
    if (cfg.kind != FakeQuantKind::Int) return fake_quant_dq_backward(t, sh, cfg, dWq, dV, dalpha, dbeta);
    check_config(cfg);
    check_tensors_present(t.W, t.wmin, t.wmax);
#pragma omp parallel for schedule(static) if (sh.out * sh.in > 16384)
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j, c0 = j * sh.gs, n = std::min(sh.gs, sh.in - c0);
            const GroupParams<float> p = group_params(t, g, cfg);
            const float* x = t.W + o * sh.in + c0;
            const float* v = t.V ? t.V + o * sh.padded_in() + c0 : nullptr;
            const float* gr = dWq + o * sh.in + c0;
            float* dv = dV ? dV + o * sh.padded_in() + c0 : nullptr;
            float ds = 0.f, dz = 0.f;
            int64_t i = 0;
#ifdef AR_FQ_AVX2
            {
                const __m256 vs = _mm256_set1_ps(p.s), vz = _mm256_set1_ps(p.z);
                __m256 ads = _mm256_setzero_ps(), adz = _mm256_setzero_ps();
                __m256 lo, hi;
                if (cfg.sym) { lo = _mm256_set1_ps(-p.z); hi = _mm256_set1_ps(p.z - 1.f); }
                else { lo = _mm256_setzero_ps(); hi = _mm256_set1_ps(static_cast<float>((1 << cfg.bits) - 1)); }
                for (; i + 8 <= n; i += 8) {
                    const __m256 xs = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
                    const __m256 u = v ? _mm256_add_ps(xs, _mm256_loadu_ps(v + i)) : xs;
                    __m256 tq = _mm256_round_ps(u, kRound);
                    if (!cfg.sym) tq = _mm256_add_ps(tq, vz);
                    const __m256 in = _mm256_and_ps(_mm256_cmp_ps(tq, lo, _CMP_GE_OQ), _mm256_cmp_ps(tq, hi, _CMP_LE_OQ));
                    __m256 q = _mm256_min_ps(_mm256_max_ps(tq, lo), hi);
                    if (!cfg.sym) q = _mm256_sub_ps(q, vz);
                    const __m256 gv = _mm256_loadu_ps(gr + i);
                    const __m256 gs = _mm256_mul_ps(gv, vs);
                    if (dv) _mm256_storeu_ps(dv + i, _mm256_and_ps(in, gs));
                    ads = _mm256_add_ps(ads, _mm256_sub_ps(_mm256_mul_ps(gv, q), _mm256_and_ps(in, _mm256_mul_ps(gv, xs))));
                    if (!cfg.sym) adz = _mm256_sub_ps(adz, _mm256_andnot_ps(in, gs));
                }
                ds = hsum8(ads);
                dz = hsum8(adz);
            }
#endif
            backward_elems(x + i, v ? v + i : nullptr, gr + i, n - i, p, cfg, dv ? dv + i : nullptr, ds, dz);
            if (dv)
                for (int64_t c = n; c < sh.gs; ++c) dv[c] = 0.f;
            group_param_grads(t, g, p, cfg, ds, dz, dalpha, dbeta);
        }
    }
}

void fake_quant_clamp_minmax(float* alpha, float* beta, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        if (alpha) alpha[i] = clamp01(alpha[i]);
        if (beta) beta[i] = clamp01(beta[i]);
    }
}

template void fake_quant_minmax<float>(const float*, const FakeQuantShape&, float*, float*);
template void fake_quant_minmax<double>(const double*, const FakeQuantShape&, double*, double*);
template void fake_quant_forward_ref<float>(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                            const FakeQuantConfig&, float*, float*, float*);
template void fake_quant_forward_ref<double>(const FakeQuantTensors<double>&, const FakeQuantShape&,
                                             const FakeQuantConfig&, double*, double*, double*);
template void fake_quant_backward_ref<float>(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                             const FakeQuantConfig&, const float*, float*, float*, float*);
template void fake_quant_backward_ref<double>(const FakeQuantTensors<double>&, const FakeQuantShape&,
                                              const FakeQuantConfig&, const double*, double*, double*, double*);

}  // namespace autoround
