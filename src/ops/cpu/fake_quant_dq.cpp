// ops/cpu/fake_quant_dq.cpp — see fake_quant_dq.h. One routine (super_params) derives a super-group's scales,
// mins, DQ factors and every branch decision; the forward, the backward and the code export all replay it, so
// they agree bit for bit. Rows are independent: OpenMP over rows.
#include "ops/cpu/fake_quant_dq.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cpu/fake_quant_math.h"

namespace autoround {

namespace {

constexpr int kMaxSg = 64;  // super-groups up to 64 groups (GGUF uses 8 and 16)

using fq::cast_bf16;
using fq::cast_fp16;
using fq::clamp01;
using fq::rint_even;

// The double quantization of n values t[k] (one super-group's scales or mins) and its decisions.
template <typename T>
struct DqVec {
    T d = 0, inv = 0;
    int kstar = 0;                // the argmax whose value sets d
    bool max_pass = true;         // asym: clamp(max, min=0) passed (max >= 0)
    std::array<T, kMaxSg> c{};    // integer codes (clamped)
    std::array<bool, kMaxSg> pass{};  // the code clamp passed
    std::array<T, kMaxSg> out{};  // c·d
};

// Unsigned (int_asym_dq): M = max(0, max t), d = fp16(M / P), c = min(rint(t·inv), P).
template <typename T>
DqVec<T> dq_unsigned(const T* t, int n, int super_bits) {
    DqVec<T> r;
    const T P = static_cast<T>((int64_t(1) << super_bits) - 1);
    T mx = t[0];
    for (int k = 1; k < n; ++k)
        if (t[k] > mx) { mx = t[k]; r.kstar = k; }
    r.max_pass = mx >= T(0);
    const T M = std::max(mx, T(0));
    r.d = cast_fp16(M / P);
    r.inv = r.d == T(0) ? T(0) : T(1) / r.d;
    for (int k = 0; k < n; ++k) {
        const T v = rint_even(t[k] * r.inv);
        r.pass[k] = v <= P;
        r.c[k] = std::min(v, P);
        r.out[k] = r.c[k] * r.d;
    }
    return r;
}

// Signed (int_sym_dq): w = t[k*] (first argmax |t|), d = fp16(w / -P), c = clamp(rint(t·inv), -P, P-1).
template <typename T>
DqVec<T> dq_signed(const T* t, int n, int super_bits) {
    DqVec<T> r;
    const T P = static_cast<T>(int64_t(1) << (super_bits - 1));
    T best = std::abs(t[0]);
    for (int k = 1; k < n; ++k)
        if (std::abs(t[k]) > best) { best = std::abs(t[k]); r.kstar = k; }
    r.d = cast_fp16(t[r.kstar] / -P);
    r.inv = r.d == T(0) ? T(0) : T(1) / r.d;
    for (int k = 0; k < n; ++k) {
        const T v = rint_even(t[k] * r.inv);
        r.pass[k] = v >= -P && v <= P - T(1);
        r.c[k] = std::min(std::max(v, -P), P - T(1));
        r.out[k] = r.c[k] * r.d;
    }
    return r;
}

// d(loss)/d t[k] from d(loss)/d out[k] (g), through c = round/clamp(t·inv)·d with d = M/P (or w/-P) and inv = 1/d.
template <typename T>
void dq_backward(const DqVec<T>& r, const T* t, const T* g, int n, T d_of_anchor, bool sign_anchor, T* gt) {
    T dd = 0, dinv = 0;
    for (int k = 0; k < n; ++k) {
        gt[k] = 0;
        dd += g[k] * r.c[k];
        if (r.pass[k]) {
            const T gu = g[k] * r.d;
            gt[k] += gu * r.inv;
            dinv += gu * t[k];
        }
    }
    if (r.d != T(0)) dd += dinv * (-(r.inv * r.inv));
    // d = anchor / P (asym, through clamp(min=0)) or anchor / -P (sym)
    if (sign_anchor || r.max_pass) gt[r.kstar] += dd * d_of_anchor;
}

// Everything one super-group of one row needs.
template <typename T>
struct SuperParams {
    int n = 0;                               // groups
    std::array<T, kMaxSg> sr{}, mr{};        // raw scale, raw min (asym) per group
    std::array<bool, kMaxSg> raw_pass{};     // asym: the τ clamp of sr passed
    std::array<int, kMaxSg> which{};         // sym: 0 a won, 1 b won, 2 tie
    DqVec<T> ds, dm;                         // DQ of the scales, of the mins (asym)
    std::array<T, kMaxSg> s{}, m{};          // scale / min used per group
    std::array<bool, kMaxSg> s_pass{};       // asym: the final τ clamp passed
};

template <typename T>
SuperParams<T> super_params(const FakeQuantTensors<T>& t, int64_t g0, const FakeQuantConfig& cfg) {
    SuperParams<T> p;
    p.n = cfg.super_group_size;
    const T tau = static_cast<T>(cfg.tau);
    const T tau_val = cfg.scale_fp16 ? cast_fp16(tau) : tau;
    if (cfg.kind == FakeQuantKind::AsymDQ) {
        const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1);
        for (int k = 0; k < p.n; ++k) {
            const int64_t g = g0 + k;
            const T al = t.alpha ? clamp01(t.alpha[g]) : T(1);
            const T be = t.beta ? clamp01(t.beta[g]) : T(1);
            const T lo = t.wmin[g] * al, hi = t.wmax[g] * be;
            T s = (hi - lo) / Qa;
            if (cfg.scale_fp16) s = cast_fp16(s);
            p.raw_pass[k] = s >= tau;
            p.sr[k] = p.raw_pass[k] ? s : tau_val;
            p.mr[k] = -lo;
        }
        p.ds = dq_unsigned(p.sr.data(), p.n, cfg.super_bits);
        p.dm = dq_unsigned(p.mr.data(), p.n, cfg.super_bits);
        for (int k = 0; k < p.n; ++k) {
            p.s_pass[k] = p.ds.out[k] >= tau;
            p.s[k] = p.s_pass[k] ? p.ds.out[k] : tau_val;
            p.m[k] = p.dm.out[k];
        }
    } else {
        const T Q = static_cast<T>(int64_t(1) << (cfg.bits - 1));
        for (int k = 0; k < p.n; ++k) {
            const int64_t g = g0 + k;
            const T al = t.alpha ? clamp01(t.alpha[g]) : T(1);
            const T be = t.beta ? clamp01(t.beta[g]) : T(1);
            const T a = -(t.wmin[g] * al), b = t.wmax[g] * be;
            T mv;
            if (b < a) { mv = a; p.which[k] = 0; }
            else if (a < b) { mv = -b; p.which[k] = 1; }
            else { mv = -a; p.which[k] = 2; }
            T s = mv / Q;
            if (cfg.scale_fp16) s = cast_fp16(s);
            p.sr[k] = s;
        }
        p.ds = dq_signed(p.sr.data(), p.n, cfg.super_bits);
        for (int k = 0; k < p.n; ++k) p.s[k] = p.ds.out[k];
    }
    return p;
}

struct ElemRange {
    int64_t lo, hi;
};

template <typename T>
void check_present(const FakeQuantTensors<T>& t) {
    check(t.W && t.wmin && t.wmax, "fake quant (double quant): W, wmin and wmax are required");
}

}  // namespace

void check_fake_quant_dq(const FakeQuantShape& sh, const FakeQuantConfig& cfg) {
    check(cfg.kind == FakeQuantKind::AsymDQ || cfg.kind == FakeQuantKind::SymDQ,
          "fake quant (double quant): not a double-quantized kind");
    check(cfg.bits >= 2 && cfg.bits <= 8, "fake quant (double quant): bits = ", cfg.bits, " (expected 2..8)");
    check(cfg.super_bits >= 2 && cfg.super_bits <= 8, "fake quant (double quant): super_bits = ", cfg.super_bits,
          " (expected 2..8; GGUF k-quants use 4, 6 or 8)");
    check(cfg.super_group_size >= 1 && cfg.super_group_size <= kMaxSg, "fake quant (double quant): super_group_size ",
          cfg.super_group_size, " must be in 1..", kMaxSg);
    check(sh.in % sh.gs == 0, "fake quant (double quant): group size ", sh.gs, " must divide the input width ", sh.in,
          " (a GGUF k-quant super-block holds whole groups)");
    check(sh.G % cfg.super_group_size == 0, "fake quant (double quant): ", sh.G, " groups per row are not a multiple "
          "of super_group_size ", cfg.super_group_size, "; the row width ", sh.in, " must be a multiple of ",
          sh.gs * cfg.super_group_size);
}

template <typename T>
void fake_quant_dq_forward(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg, T* Wq) {
    check_fake_quant_dq(sh, cfg);
    check_present(t);
    const int sg = cfg.super_group_size;
    const int64_t nsg = sh.G / sg, pin = sh.padded_in();
    const bool asym = cfg.kind == FakeQuantKind::AsymDQ;
    const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1), Q = static_cast<T>(int64_t(1) << (cfg.bits - 1));
#pragma omp parallel for schedule(static) if (sh.out * sh.in > 65536)
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t u = 0; u < nsg; ++u) {
            const int64_t g0 = o * sh.G + u * sg;
            const SuperParams<T> p = super_params(t, g0, cfg);
            for (int k = 0; k < sg; ++k) {
                const int64_t c0 = (u * sg + k) * sh.gs;
                const T s = p.s[k], m = p.m[k];
                for (int64_t c = c0; c < c0 + sh.gs; ++c) {
                    const T x = t.W[o * sh.in + c], v = t.V ? t.V[o * pin + c] : T(0);
                    T y;
                    if (asym) {
                        const T q = std::min(std::max(rint_even((x + m) / s + v), T(0)), Qa);
                        y = s * q - m;
                    } else {
                        const T r = s != T(0) ? rint_even(x / s + v) : T(0);
                        const T q = std::min(std::max(r + Q, T(0)), T(2) * Q - T(1));
                        y = s * (q - Q);
                    }
                    Wq[o * sh.in + c] = cfg.out_bf16 ? cast_bf16(y) : y;
                }
            }
        }
    }
}

template <typename T>
void fake_quant_dq_backward(const FakeQuantTensors<T>& t, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                            const T* dWq, T* dV, T* dalpha, T* dbeta) {
    check_fake_quant_dq(sh, cfg);
    check_present(t);
    const int sg = cfg.super_group_size;
    const int64_t nsg = sh.G / sg, pin = sh.padded_in();
    const bool asym = cfg.kind == FakeQuantKind::AsymDQ;
    const T Qa = static_cast<T>((int64_t(1) << cfg.bits) - 1), Q = static_cast<T>(int64_t(1) << (cfg.bits - 1));
    const T Pa = static_cast<T>((int64_t(1) << cfg.super_bits) - 1);
    const T Ps = static_cast<T>(int64_t(1) << (cfg.super_bits - 1));
#pragma omp parallel for schedule(static) if (sh.out * sh.in > 65536)
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t u = 0; u < nsg; ++u) {
            const int64_t g0 = o * sh.G + u * sg;
            const SuperParams<T> p = super_params(t, g0, cfg);
            std::array<T, kMaxSg> gs_{}, gm_{};  // d loss / d s_k (used), d loss / d m_k
            for (int k = 0; k < sg; ++k) {
                const int64_t c0 = (u * sg + k) * sh.gs;
                const T s = p.s[k], m = p.m[k];
                T ds = 0, dm = 0;
                for (int64_t c = c0; c < c0 + sh.gs; ++c) {
                    const T x = t.W[o * sh.in + c], v = t.V ? t.V[o * pin + c] : T(0);
                    const T g = dWq[o * sh.in + c];
                    T dv;
                    if (asym) {
                        const T xm = (x + m) / s;
                        const T r = rint_even(xm + v);
                        const bool in = r >= T(0) && r <= Qa;
                        const T q = std::min(std::max(r, T(0)), Qa);
                        dv = in ? g * s : T(0);
                        ds += g * q - (in ? g * xm : T(0));     // y = s·q - m, q = (x + m)/s + V
                        dm += in ? T(0) : -g;                   // ∂y/∂m = in - 1
                    } else {
                        const bool nz = s != T(0);
                        const T xs = nz ? x / s : T(0);
                        const T r = nz ? rint_even(xs + v) : T(0);
                        const bool in = nz && r + Q >= T(0) && r + Q <= T(2) * Q - T(1);
                        const T q = std::min(std::max(r + Q, T(0)), T(2) * Q - T(1));
                        dv = in ? g * s : T(0);
                        ds += g * (q - Q) - (in ? g * xs : T(0));
                    }
                    if (dV) dV[o * pin + c] = dv;
                }
                gs_[k] = ds;
                gm_[k] = dm;
            }
            if (!dalpha && !dbeta) continue;
            std::array<T, kMaxSg> gsr{}, gmr{};
            if (asym) {
                for (int k = 0; k < sg; ++k)
                    if (!p.s_pass[k]) gs_[k] = 0;  // the final τ clamp
                dq_backward(p.ds, p.sr.data(), gs_.data(), sg, T(1) / Pa, false, gsr.data());
                dq_backward(p.dm, p.mr.data(), gm_.data(), sg, T(1) / Pa, false, gmr.data());
                for (int k = 0; k < sg; ++k) {
                    const int64_t g = g0 + k;
                    const T dsr = p.raw_pass[k] ? gsr[k] : T(0);
                    // sr = (hi - lo)/Qa, mr = -lo; lo = wmin·α, hi = wmax·β
                    const T dlo = -dsr / Qa - gmr[k], dhi = dsr / Qa;
                    if (dalpha) dalpha[g] = dlo * t.wmin[g];
                    if (dbeta) dbeta[g] = dhi * t.wmax[g];
                }
            } else {
                dq_backward(p.ds, p.sr.data(), gs_.data(), sg, T(1) / -Ps, true, gsr.data());
                for (int k = 0; k < sg; ++k) {
                    const int64_t g = g0 + k;
                    const T dmv = gsr[k] / Q;  // sr = mv / Q
                    T da = 0, db = 0;          // d loss / d a, d b
                    if (p.which[k] == 0) da = dmv;                           // mv = max(a, b) = a
                    else if (p.which[k] == 1) db = -dmv;                     // mv = -max(a, b) = -b
                    else { da = -dmv / T(2); db = -dmv / T(2); }             // tie: -max, half each
                    if (dalpha) dalpha[g] = -da * t.wmin[g];                 // a = -(wmin·α)
                    if (dbeta) dbeta[g] = db * t.wmax[g];                    // b = wmax·β
                }
            }
        }
    }
}

DoubleQuantCodes fake_quant_dq_codes(const FakeQuantTensors<float>& t, const FakeQuantShape& sh,
                                     const FakeQuantConfig& cfg) {
    check_fake_quant_dq(sh, cfg);
    check_present(t);
    const int sg = cfg.super_group_size;
    const int64_t nsg = sh.G / sg, pin = sh.padded_in();
    const bool asym = cfg.kind == FakeQuantKind::AsymDQ;
    const float Qa = static_cast<float>((int64_t(1) << cfg.bits) - 1), Q = static_cast<float>(int64_t(1) << (cfg.bits - 1));
    DoubleQuantCodes r;
    r.super_groups = sh.out * nsg;
    r.codes.resize(static_cast<size_t>(sh.out * sh.in));
    r.d.resize(static_cast<size_t>(r.super_groups));
    r.sc.resize(static_cast<size_t>(sh.groups()));
    if (asym) {
        r.dmin.resize(r.d.size());
        r.mn.resize(r.sc.size());
    }
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t u = 0; u < nsg; ++u) {
            const int64_t g0 = o * sh.G + u * sg, su = o * nsg + u;
            const SuperParams<float> p = super_params(t, g0, cfg);
            r.d[static_cast<size_t>(su)] = p.ds.d;
            if (asym) r.dmin[static_cast<size_t>(su)] = p.dm.d;
            for (int k = 0; k < sg; ++k) {
                r.sc[static_cast<size_t>(g0 + k)] = static_cast<int32_t>(p.ds.c[k]);
                if (asym) r.mn[static_cast<size_t>(g0 + k)] = static_cast<int32_t>(p.dm.c[k]);
                const int64_t c0 = (u * sg + k) * sh.gs;
                const float s = p.s[k], m = p.m[k];
                for (int64_t c = c0; c < c0 + sh.gs; ++c) {
                    const float x = t.W[o * sh.in + c], v = t.V ? t.V[o * pin + c] : 0.f;
                    float q;
                    if (asym) {
                        q = std::min(std::max(rint_even((x + m) / s + v), 0.f), Qa);
                    } else {
                        const float rr = s != 0.f ? rint_even(x / s + v) : 0.f;
                        q = std::min(std::max(rr + Q, 0.f), 2.f * Q - 1.f);
                    }
                    r.codes[static_cast<size_t>(o * sh.in + c)] = static_cast<uint8_t>(q);
                }
            }
        }
    }
    return r;
}

template void fake_quant_dq_forward<float>(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                           const FakeQuantConfig&, float*);
template void fake_quant_dq_forward<double>(const FakeQuantTensors<double>&, const FakeQuantShape&,
                                            const FakeQuantConfig&, double*);
template void fake_quant_dq_backward<float>(const FakeQuantTensors<float>&, const FakeQuantShape&,
                                            const FakeQuantConfig&, const float*, float*, float*, float*);
template void fake_quant_dq_backward<double>(const FakeQuantTensors<double>&, const FakeQuantShape&,
                                             const FakeQuantConfig&, const double*, double*, double*, double*);

}  // namespace autoround
