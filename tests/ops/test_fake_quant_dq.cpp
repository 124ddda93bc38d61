// tests/ops/test_fake_quant_dq.cpp — ops/cpu/fake_quant_dq.h, the GGUF k-quant data types (int_asym_dq,
// int_sym_dq) of the SignRound tuner:
//  * the float64 backward equals central finite differences of a "frozen" surrogate — the same forward with
//    every discrete decision (element and code rounding residuals, clamps, argmax anchors, the fp16 residual of
//    the super-group factor) held at the base point, which is smooth in (V, α, β) — for asym (Q4_K-like,
//    Q5_K-like and a 2-bit case) and sym (Q6_K-like) configurations, including a τ-clamped group;
//  * the gradient really crosses groups through the super-group factor (the anchor group's α/β gradient
//    depends on the other groups' upstream gradients);
//  * the entry points of fake_quant.h dispatch here, and bad shapes are refused with a message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/fake_quant_dq.h"
#include "grad_test_util.h"

using namespace autoround;
using namespace grad_test;

namespace {

double fp16d(double v) { return static_cast<double>(fp16_to_float(float_to_fp16(static_cast<float>(v)))); }

// The decisions of one DQ of n values at the base point.
struct FrozenDq {
    int kstar = 0;
    bool anchor_pass = true;       // asym: max >= 0
    double rd = 0;                 // fp16(anchor / ±P) - anchor / ±P
    std::vector<double> delta;     // rint(u) - u per code
    std::vector<uint8_t> pass;     // code clamp passed
    std::vector<double> cconst;    // clamped code
};

struct FrozenLayer {
    FakeQuantShape sh;
    FakeQuantConfig cfg;
    std::vector<double> W, wmin, wmax;
    // per group
    std::vector<uint8_t> raw_pass, s_pass;
    std::vector<int> which;
    // per super-group
    std::vector<FrozenDq> ds, dm;
    // per element
    std::vector<double> delta, qc;
    std::vector<uint8_t> in;
};

double pow2(int b) { return std::ldexp(1.0, b); }

// Raw per-group scale / min of the surrogate (smooth in α, β given the frozen branch decisions).
void raw_params(const FrozenLayer& f, int64_t g, double al, double be, double& sr, double& mr) {
    const double tau = f.cfg.tau;
    if (f.cfg.kind == FakeQuantKind::AsymDQ) {
        const double Qa = pow2(f.cfg.bits) - 1, lo = f.wmin[g] * al, hi = f.wmax[g] * be;
        sr = f.raw_pass[g] ? (hi - lo) / Qa : tau;
        mr = -lo;
    } else {
        const double Q = pow2(f.cfg.bits - 1), a = -(f.wmin[g] * al), b = f.wmax[g] * be;
        const double mv = f.which[g] == 0 ? a : f.which[g] == 1 ? -b : -(a + b) / 2;
        sr = mv / Q;
        mr = 0;
    }
}

// The DQ of t[0..n) replayed with frozen decisions (`frozen` true) or computed (building `fz`).
std::vector<double> dq_apply(const std::vector<double>& t, bool sym, int sb, FrozenDq& fz, bool freeze) {
    const int n = static_cast<int>(t.size());
    const double P = sym ? pow2(sb - 1) : pow2(sb) - 1;
    if (freeze) {
        fz = FrozenDq{};
        if (sym) {
            for (int k = 1; k < n; ++k)
                if (std::abs(t[k]) > std::abs(t[fz.kstar])) fz.kstar = k;
        } else {
            for (int k = 1; k < n; ++k)
                if (t[k] > t[fz.kstar]) fz.kstar = k;
            fz.anchor_pass = t[fz.kstar] >= 0;
        }
    }
    const double anchor = fz.anchor_pass ? t[fz.kstar] : 0.0;
    const double d_exact = sym ? anchor / -P : anchor / P;
    if (freeze) fz.rd = fp16d(d_exact) - d_exact;
    const double d = d_exact + fz.rd, inv = d == 0 ? 0 : 1 / d;
    std::vector<double> out(n);
    if (freeze) {
        fz.delta.resize(n);
        fz.pass.resize(n);
        fz.cconst.resize(n);
    }
    for (int k = 0; k < n; ++k) {
        const double u = t[k] * inv;
        if (freeze) {
            const double r = std::nearbyint(u);
            fz.delta[k] = r - u;
            const double lo = sym ? -P : -1e300, hi = sym ? P - 1 : P;
            fz.pass[k] = r >= lo && r <= hi;
            fz.cconst[k] = std::clamp(r, lo, hi);
        }
        const double c = fz.pass[k] ? u + fz.delta[k] : fz.cconst[k];
        out[k] = c * d;
    }
    return out;
}

// Forward of the surrogate; with `freeze` it records the decisions at this point (and must equal the real one).
std::vector<double> surrogate(FrozenLayer& f, const std::vector<double>& V, const std::vector<double>& al,
                              const std::vector<double>& be, bool freeze) {
    const FakeQuantShape& sh = f.sh;
    const int sg = f.cfg.super_group_size;
    const bool asym = f.cfg.kind == FakeQuantKind::AsymDQ;
    const double tau = f.cfg.tau, Qa = pow2(f.cfg.bits) - 1, Q = pow2(f.cfg.bits - 1);
    const int64_t nsg = sh.G / sg;
    if (freeze) {
        f.raw_pass.assign(sh.groups(), 1);
        f.s_pass.assign(sh.groups(), 1);
        f.which.assign(sh.groups(), 0);
        f.ds.assign(sh.out * nsg, {});
        f.dm.assign(sh.out * nsg, {});
        f.delta.assign(sh.out * sh.in, 0);
        f.qc.assign(sh.out * sh.in, 0);
        f.in.assign(sh.out * sh.in, 0);
        for (int64_t g = 0; g < sh.groups(); ++g) {
            const double a_ = std::clamp(al[g], 0.0, 1.0), b_ = std::clamp(be[g], 0.0, 1.0);
            if (asym) {
                f.raw_pass[g] = (f.wmax[g] * b_ - f.wmin[g] * a_) / Qa >= tau;
            } else {
                const double a = -(f.wmin[g] * a_), b = f.wmax[g] * b_;
                f.which[g] = b < a ? 0 : a < b ? 1 : 2;
            }
        }
    }
    std::vector<double> y(sh.out * sh.in);
    for (int64_t o = 0; o < sh.out; ++o)
        for (int64_t u = 0; u < nsg; ++u) {
            std::vector<double> sr(sg), mr(sg);
            for (int k = 0; k < sg; ++k) raw_params(f, o * sh.G + u * sg + k, al[o * sh.G + u * sg + k],
                                                    be[o * sh.G + u * sg + k], sr[k], mr[k]);
            const std::vector<double> s1 = dq_apply(sr, !asym, f.cfg.super_bits, f.ds[o * nsg + u], freeze);
            const std::vector<double> m1 = asym ? dq_apply(mr, false, f.cfg.super_bits, f.dm[o * nsg + u], freeze)
                                                : std::vector<double>(sg, 0.0);
            for (int k = 0; k < sg; ++k) {
                const int64_t g = o * sh.G + u * sg + k;
                double s = s1[k];
                if (asym) {
                    if (freeze) f.s_pass[g] = s >= tau;
                    if (!f.s_pass[g]) s = tau;
                }
                const double m = m1[k];
                for (int64_t c = (u * sg + k) * sh.gs; c < (u * sg + k + 1) * sh.gs; ++c) {
                    const int64_t e = o * sh.in + c;
                    const double x = f.W[e], v = V[o * sh.padded_in() + c];
                    if (asym) {
                        const double uu = (x + m) / s + v;
                        if (freeze) {
                            const double r = std::nearbyint(uu);
                            f.delta[e] = r - uu;
                            f.in[e] = r >= 0 && r <= Qa;
                            f.qc[e] = std::clamp(r, 0.0, Qa);
                        }
                        const double q = f.in[e] ? uu + f.delta[e] : f.qc[e];
                        y[e] = s * q - m;
                    } else {
                        const double uu = x / s + v;
                        if (freeze) {
                            const double r = std::nearbyint(uu);
                            f.delta[e] = r - uu;
                            f.in[e] = r + Q >= 0 && r + Q <= 2 * Q - 1;
                            f.qc[e] = std::clamp(r + Q, 0.0, 2 * Q - 1);
                        }
                        const double q = f.in[e] ? uu + f.delta[e] + Q : f.qc[e];
                        y[e] = s * (q - Q);
                    }
                }
            }
        }
    return y;
}

struct DqCase {
    const char* name;
    FakeQuantKind kind;
    int bits, sb, sg;
    int64_t out, in, gs;
};

}  // namespace

TEST(FakeQuantDq, BackwardMatchesFrozenSurrogateFiniteDifferences) {
    const DqCase cases[] = {
        {"q4_k-like", FakeQuantKind::AsymDQ, 4, 6, 4, 3, 64, 8},
        {"q5_k-like", FakeQuantKind::AsymDQ, 5, 6, 2, 2, 48, 8},
        {"q2_k-like", FakeQuantKind::AsymDQ, 2, 4, 4, 2, 32, 4},
        {"q6_k-like", FakeQuantKind::SymDQ, 6, 8, 4, 3, 64, 4},
        {"q3_k-like", FakeQuantKind::SymDQ, 3, 6, 4, 2, 32, 4},
    };
    uint32_t seed = 500;
    for (const DqCase& dc : cases) {
        SCOPED_TRACE(dc.name);
        FrozenLayer f;
        f.sh = fake_quant_shape(dc.out, dc.in, dc.gs);
        f.cfg.bits = dc.bits;
        f.cfg.group_size = dc.gs;
        f.cfg.sym = dc.kind == FakeQuantKind::SymDQ;
        f.cfg.kind = dc.kind;
        f.cfg.super_group_size = dc.sg;
        f.cfg.super_bits = dc.sb;
        f.cfg.scale_fp16 = false;
        f.cfg.out_bf16 = false;
        f.W = randn_d(dc.out * dc.in, seed++, 0.05);
        for (double& w : f.W) w = round_to_bf16(static_cast<float>(w));
        if (dc.kind == FakeQuantKind::AsymDQ)  // one group of tiny values: its scale hits the τ clamp
            for (int64_t c = 0; c < dc.gs; ++c) f.W[dc.in + c] = 1e-7 * ((c % 3) - 1);
        f.wmin.resize(f.sh.groups());
        f.wmax.resize(f.sh.groups());
        fake_quant_minmax<double>(f.W.data(), f.sh, f.wmin.data(), f.wmax.data());
        std::vector<double> V = uniform_d(dc.out * f.sh.padded_in(), seed++, -0.3, 0.3);
        std::vector<double> al = uniform_d(f.sh.groups(), seed++, 0.55, 0.97);
        std::vector<double> be = uniform_d(f.sh.groups(), seed++, 0.55, 0.97);

        // the surrogate at the base point equals the real forward
        const std::vector<double> ys = surrogate(f, V, al, be, /*freeze=*/true);
        FakeQuantTensors<double> t{f.W.data(), V.data(), al.data(), be.data(), f.wmin.data(), f.wmax.data()};
        std::vector<double> y(dc.out * dc.in);
        fake_quant_forward_ref<double>(t, f.sh, f.cfg, y.data(), nullptr, nullptr);  // dispatches to the DQ code
        for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(ys[i], y[i], 1e-12 * (1 + std::abs(y[i]))) << i;
        if (dc.kind == FakeQuantKind::AsymDQ) {
            EXPECT_FALSE(f.raw_pass[f.sh.G]) << "the tiny group is τ-clamped";
        }

        const std::vector<double> R = randn_d(dc.out * dc.in, seed++);
        std::vector<double> dV(V.size(), 7.0), dA(al.size(), 7.0), dB(be.size(), 7.0);
        fake_quant_backward_ref<double>(t, f.sh, f.cfg, R.data(), dV.data(), dA.data(), dB.data());
        auto loss_v = [&](const std::vector<double>& x) { return dot(surrogate(f, x, al, be, false), R); };
        auto loss_a = [&](const std::vector<double>& x) { return dot(surrogate(f, V, x, be, false), R); };
        auto loss_b = [&](const std::vector<double>& x) { return dot(surrogate(f, V, al, x, false), R); };
        std::vector<size_t> all_v(dV.size()), all_g(dA.size());
        for (size_t i = 0; i < all_v.size(); ++i) all_v[i] = i;
        for (size_t i = 0; i < all_g.size(); ++i) all_g[i] = i;
        check_fd(loss_v, V, dV, all_v, 1e-6, 1e-6, 1e-9, std::string("dV ") + dc.name);
        check_fd(loss_a, al, dA, all_g, 1e-6, 1e-5, 1e-9, std::string("dalpha ") + dc.name);
        check_fd(loss_b, be, dB, all_g, 1e-6, 1e-5, 1e-9, std::string("dbeta ") + dc.name);

        // the float path (fake_quant_forward / fake_quant_backward) agrees with the float64 reference
        std::vector<float> Wf(f.W.begin(), f.W.end()), Vf(V.begin(), V.end()), af(al.begin(), al.end()),
            bf(be.begin(), be.end()), mnf(f.wmin.begin(), f.wmin.end()), mxf(f.wmax.begin(), f.wmax.end()),
            Rf(R.begin(), R.end());
        FakeQuantTensors<float> tf{Wf.data(), Vf.data(), af.data(), bf.data(), mnf.data(), mxf.data()};
        std::vector<float> yf(y.size()), dVf(V.size()), dAf(al.size()), dBf(be.size());
        fake_quant_forward(tf, f.sh, f.cfg, yf.data(), nullptr, nullptr);
        fake_quant_backward(tf, f.sh, f.cfg, Rf.data(), dVf.data(), dAf.data(), dBf.data());
        int differ = 0;
        for (size_t i = 0; i < y.size(); ++i) differ += std::abs(yf[i] - y[i]) > 1e-5 * (1 + std::abs(y[i]));
        EXPECT_LE(differ, static_cast<int>(y.size() / 50)) << "float forward vs float64 (rounding ties may flip)";
    }
}

TEST(FakeQuantDq, TheSuperGroupFactorCouplesTheGroups) {
    // Q4_K-like: an upstream gradient on group 1 only reaches the α/β of the group that sets d (its anchor).
    FakeQuantConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 8;
    cfg.sym = false;
    cfg.kind = FakeQuantKind::AsymDQ;
    cfg.super_group_size = 4;
    cfg.super_bits = 6;
    cfg.scale_fp16 = false;
    cfg.out_bf16 = false;
    const FakeQuantShape sh = fake_quant_shape(1, 32, 8);
    std::vector<double> W = randn_d(32, 77, 0.05);
    for (int c = 0; c < 8; ++c) W[c] *= 4;  // group 0 has the largest range: it anchors d and dmin
    std::vector<double> wmin(4), wmax(4), V(32, 0.1), al(4, 0.9), be(4, 0.9);
    fake_quant_minmax<double>(W.data(), sh, wmin.data(), wmax.data());
    FakeQuantTensors<double> t{W.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
    std::vector<double> R(32, 0.0), dV(32), dA(4), dB(4);
    for (int c = 8; c < 16; ++c) R[c] = 1.0;  // only group 1 sees a gradient
    fake_quant_dq_backward<double>(t, sh, cfg, R.data(), dV.data(), dA.data(), dB.data());
    EXPECT_NE(dB[0], 0.0) << "the anchor group's β moves d, which scales group 1";
    EXPECT_NE(dB[1], 0.0);
    EXPECT_EQ(dB[2], 0.0);
    EXPECT_EQ(dB[3], 0.0);
    for (int c = 0; c < 8; ++c) EXPECT_EQ(dV[c], 0.0);
}

TEST(FakeQuantDq, BadShapesAreRefusedWithAMessage) {
    FakeQuantConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 32;
    cfg.sym = false;
    cfg.kind = FakeQuantKind::AsymDQ;
    cfg.super_group_size = 8;
    cfg.super_bits = 6;
    try {
        check_fake_quant_dq(fake_quant_shape(4, 96, 32), cfg);  // 3 groups, not a multiple of 8
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("multiple of 256"), std::string::npos) << e.what();
    }
    EXPECT_THROW(check_fake_quant_dq(fake_quant_shape(4, 260, 32), cfg), Error);  // 32 does not divide 260
    cfg.super_bits = 0;
    EXPECT_THROW(check_fake_quant_dq(fake_quant_shape(4, 256, 32), cfg), Error);
    cfg.super_bits = 6;
    EXPECT_NO_THROW(check_fake_quant_dq(fake_quant_shape(4, 256, 32), cfg));
}
