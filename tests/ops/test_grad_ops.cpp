// tests/ops/test_grad_ops.cpp — the training ops (ops/cpu/*_grad.h, fake_quant.h): every backward
// against float64 central finite differences on small awkward shapes, the float fast paths against
// the float64/scalar references, and the float forwards against the inference ops they mirror (same
// formulas; compared to 1e-6 since the compiler may contract a·b ± c·d into FMAs differently).
//
// Fake quantization is piecewise constant in V (rint), so its STE gradient cannot be checked by
// differencing the real function. The check differences a "frozen" surrogate instead: the rounding
// offsets rint(u) − u, the clamp decisions, the max/tie branch and the τ-clamp decision are taken
// from the base point and held fixed, which is exactly the function whose derivative the STE rules
// define (rint → identity, clamp passes iff in range, 1/2 on ties). The surrogate reproduces the real
// forward at the base point (checked). The discrete decisions themselves are tested directly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "ops/cpu/activation.h"
#include "ops/cpu/activation_grad.h"
#include "ops/cpu/attention.h"
#include "ops/cpu/attention_grad.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/linear_grad.h"
#include "ops/cpu/norm.h"
#include "ops/cpu/norm_grad.h"
#include "ops/cpu/rope.h"
#include "ops/cpu/rope_grad.h"
#include "quant/rtn.h"
#include "grad_test_util.h"

using namespace autoround;

namespace grad_test {

std::vector<double> randn_d(size_t n, uint32_t seed, double scale, double mean) {
    std::mt19937 g(seed);
    std::normal_distribution<double> d(mean, scale);
    std::vector<double> v(n);
    for (double& x : v) x = d(g);
    return v;
}

std::vector<double> uniform_d(size_t n, uint32_t seed, double lo, double hi) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> d(lo, hi);
    std::vector<double> v(n);
    for (double& x : v) x = d(g);
    return v;
}

std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

double dot(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Central differences of f at x for the listed indices vs the analytic gradient g.
// Tolerance: |fd − g| <= atol + rtol·max(|fd|, |g|); atol covers the round-off ≈ 1e-16·|f|/h of the
// difference quotient (|f| ~ 10 here, h = 1e-5 → ~1e-10), real bugs show as O(1) relative errors.
void check_fd(const std::function<double(const std::vector<double>&)>& f, std::vector<double> x,
              const std::vector<double>& g, const std::vector<size_t>& idx, double h, double rtol, double atol,
              const std::string& what) {
    for (size_t i : idx) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double fp = f(x);
        x[i] = x0 - h;
        const double fm = f(x);
        x[i] = x0;
        const double fd = (fp - fm) / (2 * h);
        EXPECT_NEAR(fd, g[i], atol + rtol * std::max(std::abs(fd), std::abs(g[i]))) << what << " index " << i;
    }
}

std::vector<size_t> some_indices(size_t n, size_t count, uint32_t seed) {
    std::vector<size_t> idx;
    if (n <= count) {
        for (size_t i = 0; i < n; ++i) idx.push_back(i);
        return idx;
    }
    std::mt19937 g(seed);
    for (size_t k = 0; k < count; ++k) idx.push_back(g() % n);
    return idx;
}

// ---- frozen fake-quant surrogate (float64) --------------------------------------------------------

// Decisions of one layer at a base point (V0, α0, β0), per group and per element.
struct FrozenFQ {
    FakeQuantShape sh;
    FakeQuantConfig cfg;
    std::vector<double> W, wmin, wmax;
    std::vector<int> which;            // [groups] sym: 0 a, 1 b, 2 tie
    std::vector<uint8_t> pass;         // [groups] τ clamp passes
    std::vector<double> s_const;       // [groups] scale when !pass
    std::vector<double> dz;            // [groups] asym: rint(zf) − zf
    std::vector<double> delta;         // [out, in] rint(u) − u
    std::vector<uint8_t> in;           // [out, in] clamp passes
    std::vector<double> qc;            // [out, in] clamped value when !in
};

FrozenFQ freeze_fq(const std::vector<double>& W, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                   const std::vector<double>& V, const std::vector<double>& al, const std::vector<double>& be) {
    FrozenFQ f;
    f.sh = sh;
    f.cfg = cfg;
    f.W = W;
    f.wmin.resize(sh.groups());
    f.wmax.resize(sh.groups());
    fake_quant_minmax<double>(W.data(), sh, f.wmin.data(), f.wmax.data());
    f.which.resize(sh.groups());
    f.pass.resize(sh.groups());
    f.s_const.resize(sh.groups());
    f.dz.resize(sh.groups());
    f.delta.resize(sh.out * sh.in);
    f.in.resize(sh.out * sh.in);
    f.qc.resize(sh.out * sh.in);
    const double tau = cfg.tau;
    const double Q = std::ldexp(1.0, cfg.bits - 1), Qa = std::ldexp(1.0, cfg.bits) - 1;
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j;
            const double a_ = std::clamp(al[g], 0.0, 1.0), b_ = std::clamp(be[g], 0.0, 1.0);
            double s, z = 0;
            if (cfg.sym) {
                const double a = -(f.wmin[g] * a_), b = f.wmax[g] * b_;
                double m;
                if (b < a) { f.which[g] = 0; m = a; }
                else if (a < b) { f.which[g] = 1; m = -b; }
                else { f.which[g] = 2; m = -a; }
                s = m / Q;
                if (s < 0) { f.pass[g] = s <= -tau; s = f.pass[g] ? s : -tau; }
                else { f.pass[g] = s >= tau; s = f.pass[g] ? s : tau; }
            } else {
                const double lo = f.wmin[g] * a_, hi = f.wmax[g] * b_;
                s = (hi - lo) / Qa;
                f.pass[g] = s >= tau;
                s = f.pass[g] ? s : tau;
                const double zf = -lo / s;
                z = std::nearbyint(zf);
                f.dz[g] = z - zf;
            }
            f.s_const[g] = s;
            for (int64_t c = j * sh.gs; c < std::min(sh.in, (j + 1) * sh.gs); ++c) {
                const double u = W[o * sh.in + c] / s + V[o * sh.padded_in() + c];
                const double r = std::nearbyint(u);
                f.delta[o * sh.in + c] = r - u;
                const double t = cfg.sym ? r : r + z;
                const double lo = cfg.sym ? -Q : 0, hi = cfg.sym ? Q - 1 : Qa;
                f.in[o * sh.in + c] = t >= lo && t <= hi;
                f.qc[o * sh.in + c] = std::clamp(t, lo, hi);
            }
        }
    }
    return f;
}

// W_q of the surrogate at (V, α, β).
std::vector<double> frozen_forward(const FrozenFQ& f, const std::vector<double>& V, const std::vector<double>& al,
                                   const std::vector<double>& be) {
    const FakeQuantShape& sh = f.sh;
    const double Q = std::ldexp(1.0, f.cfg.bits - 1), Qa = std::ldexp(1.0, f.cfg.bits) - 1;
    std::vector<double> y(sh.out * sh.in);
    for (int64_t o = 0; o < sh.out; ++o) {
        for (int64_t j = 0; j < sh.G; ++j) {
            const int64_t g = o * sh.G + j;
            double s, z = 0;
            if (f.cfg.sym) {
                const double a = -(f.wmin[g] * al[g]), b = f.wmax[g] * be[g];
                const double m = f.which[g] == 0 ? a : f.which[g] == 1 ? -b : -(a + b) / 2;  // tie: 1/2 each
                s = f.pass[g] ? m / Q : f.s_const[g];
            } else {
                const double lo = f.wmin[g] * al[g], hi = f.wmax[g] * be[g];
                s = f.pass[g] ? (hi - lo) / Qa : f.s_const[g];
                z = -lo / s + f.dz[g];
            }
            for (int64_t c = j * sh.gs; c < std::min(sh.in, (j + 1) * sh.gs); ++c) {
                const int64_t e = o * sh.in + c;
                const double r = f.W[e] / s + V[o * sh.padded_in() + c] + f.delta[e];
                const double t = f.cfg.sym ? r : r + z;
                const double q = f.in[e] ? t : f.qc[e];
                y[e] = f.cfg.sym ? s * q : s * (q - z);
            }
        }
    }
    return y;
}

// A random layer: bf16-valued W, V in (−0.3, 0.3), α, β in (0.55, 0.97) (away from the [0, 1] clamp
// and, almost surely, from max ties), then nudged away from rint's .5 boundaries.
struct FQCase {
    FakeQuantShape sh;
    FakeQuantConfig cfg;
    std::vector<double> W, V, al, be;
};

void nudge_away_from_boundaries(FQCase& k);

FQCase make_fq_case(int64_t out, int64_t in, int64_t gs, int bits, bool sym, uint32_t seed) {
    FQCase k;
    k.sh = fake_quant_shape(out, in, gs);
    k.cfg.bits = bits;
    k.cfg.group_size = gs;
    k.cfg.sym = sym;
    k.cfg.scale_fp16 = false;
    k.cfg.out_bf16 = false;
    k.W = randn_d(out * in, seed, 0.05);
    for (double& w : k.W) w = round_to_bf16(static_cast<float>(w));
    k.V = uniform_d(out * k.sh.padded_in(), seed + 1, -0.3, 0.3);
    k.al = uniform_d(k.sh.groups(), seed + 2, 0.55, 0.97);
    k.be = uniform_d(k.sh.groups(), seed + 3, 0.55, 0.97);
    nudge_away_from_boundaries(k);
    return k;
}

// Keeps every u_j at least 0.05 away from a .5 rounding boundary (nudges V_j by ±0.1 towards rint(u_j)).
void nudge_away_from_boundaries(FQCase& k) {
    FrozenFQ f = freeze_fq(k.W, k.sh, k.cfg, k.V, k.al, k.be);
    for (int64_t o = 0; o < k.sh.out; ++o)
        for (int64_t c = 0; c < k.sh.in; ++c) {
            const double d = f.delta[o * k.sh.in + c];  // rint(u) − u in [−0.5, 0.5]
            if (std::abs(d) > 0.45) k.V[o * k.sh.padded_in() + c] += d > 0 ? 0.1 : -0.1;
        }
}

// Exported for tests/model/test_qwen3_block_grad.cpp (declared there): the frozen surrogate of one
// layer as a closure, and the boundary nudge, with only library/std types in the signatures.
std::function<std::vector<double>(const std::vector<double>&, const std::vector<double>&, const std::vector<double>&)>
frozen_fake_quant(const std::vector<double>& W, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                  const std::vector<double>& V0, const std::vector<double>& al0, const std::vector<double>& be0) {
    auto f = std::make_shared<FrozenFQ>(freeze_fq(W, sh, cfg, V0, al0, be0));
    return [f](const std::vector<double>& V, const std::vector<double>& al, const std::vector<double>& be) {
        return frozen_forward(*f, V, al, be);
    };
}

void nudge_fake_quant_params(const std::vector<double>& W, const FakeQuantShape& sh, const FakeQuantConfig& cfg,
                             std::vector<double>& V, const std::vector<double>& al, const std::vector<double>& be) {
    FQCase k{sh, cfg, W, V, al, be};
    nudge_away_from_boundaries(k);
    V = k.V;
}

}  // namespace grad_test

using namespace grad_test;

// ---- linear / gemm ----------------------------------------------------------------------------------

TEST(GradLinear, GemmMatchesNaiveForAllTransposes) {
    for (auto [M, N, K] : {std::array<int64_t, 3>{1, 1, 1}, {7, 5, 3}, {67, 129, 33}, {300, 20, 9}, {20, 300, 700}}) {
        for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            const auto A = randn_d(M * K, 1), Bm = randn_d(K * N, 2), C0 = randn_d(M * N, 3);
            std::vector<double> C = C0, Cn(M * N);
            gemm<double>(ta, tb, M, N, K, 0.5, A.data(), ta ? M : K, Bm.data(), tb ? K : N, 2.0, C.data(), N);
            for (int64_t i = 0; i < M; ++i)
                for (int64_t j = 0; j < N; ++j) {
                    double s = 0;
                    for (int64_t k = 0; k < K; ++k) s += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? Bm[j * K + k] : Bm[k * N + j]);
                    Cn[i * N + j] = 0.5 * s + 2.0 * C0[i * N + j];
                }
            for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(C[i], Cn[i], 1e-10 * (1 + std::abs(Cn[i]))) << M << "x" << N << "x" << K;
            // float path
            const auto Af = to_f(A), Bf = to_f(Bm);
            auto Cf = to_f(C0);
            gemm<float>(ta, tb, M, N, K, 0.5f, Af.data(), ta ? M : K, Bf.data(), tb ? K : N, 2.0f, Cf.data(), N);
            for (int64_t i = 0; i < M * N; ++i) ASSERT_NEAR(Cf[i], Cn[i], 1e-4 * (1 + std::abs(Cn[i])));
        }
    }
}

TEST(GradLinear, WeightAndInputGradientsMatchFiniteDifferences) {
    const int64_t rows = 7, out = 5, in = 9;
    const auto x = randn_d(rows * in, 4), W = randn_d(out * in, 5), b = randn_d(out, 6), R = randn_d(rows * out, 7);
    auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww) {
        std::vector<double> y(rows * out);
        linear_forward<double>(xx.data(), rows, ww.data(), out, in, b.data(), y.data());
        return dot(y, R);
    };
    std::vector<double> dW(out * in, 1.0), dx(rows * in, 1.0);
    linear_backward_weight<double>(R.data(), x.data(), rows, out, in, dW.data(), false);
    linear_backward_input<double>(R.data(), W.data(), rows, out, in, dx.data(), false);
    check_fd([&](const std::vector<double>& w) { return loss(x, w); }, W, dW, some_indices(dW.size(), 50, 1), 1e-5,
             1e-6, 5e-9, "dW");
    check_fd([&](const std::vector<double>& xx) { return loss(xx, W); }, x, dx, some_indices(dx.size(), 50, 2), 1e-5,
             1e-6, 5e-9, "dx");
    // accumulate adds
    std::vector<double> dW2 = dW;
    linear_backward_weight<double>(R.data(), x.data(), rows, out, in, dW2.data(), true);
    for (size_t i = 0; i < dW.size(); ++i) EXPECT_NEAR(dW2[i], 2 * dW[i], 1e-12);
}

// ---- RMSNorm -----------------------------------------------------------------------------------------

TEST(GradNorm, RmsnormBackwardMatchesFiniteDifferences) {
    for (int64_t dim : {8, 16, 24}) {
        const int64_t rows = 5;
        const auto x = randn_d(rows * dim, 10 + dim), w = randn_d(dim, 11, 0.5), R = randn_d(rows * dim, 12);
        auto f = [&](const std::vector<double>& xx) {
            std::vector<double> y(rows * dim);
            rmsnorm_forward_train<double>(xx.data(), w.data(), rows, dim, 1e-6, y.data(), nullptr);
            return dot(y, R);
        };
        std::vector<double> y(rows * dim), rstd(rows), dx(rows * dim);
        rmsnorm_forward_train<double>(x.data(), w.data(), rows, dim, 1e-6, y.data(), rstd.data());
        rmsnorm_backward<double>(x.data(), w.data(), rstd.data(), R.data(), rows, dim, dx.data(), false);
        check_fd(f, x, dx, some_indices(dx.size(), 40, 3), 1e-5, 1e-6, 5e-9, "rmsnorm dx dim " + std::to_string(dim));
        // in place + accumulate
        std::vector<double> d2 = R;
        rmsnorm_backward<double>(x.data(), w.data(), rstd.data(), d2.data(), rows, dim, d2.data(), false);
        for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(d2[i], dx[i], 1e-12);
        std::vector<double> d3(dx.size(), 1.0);
        rmsnorm_backward<double>(x.data(), w.data(), rstd.data(), R.data(), rows, dim, d3.data(), true);
        for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(d3[i], dx[i] + 1.0, 1e-12);
    }
}

TEST(GradNorm, FloatForwardIsTheInferenceRmsnormAndBackwardMatchesDouble) {
    const int64_t rows = 9, dim = 24;
    const auto xd = randn_d(rows * dim, 20), wd = randn_d(dim, 21), Rd = randn_d(rows * dim, 22);
    const auto x = to_f(xd), w = to_f(wd), R = to_f(Rd);
    std::vector<float> y(rows * dim), yi(rows * dim), rstd(rows), dx(rows * dim);
    rmsnorm_forward_train<float>(x.data(), w.data(), rows, dim, 1e-6f, y.data(), rstd.data());
    rmsnorm(x.data(), w.data(), rows, dim, 1e-6f, yi.data());
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], yi[i], 1e-6f * (1 + std::abs(yi[i])));
    rmsnorm_backward<float>(x.data(), w.data(), rstd.data(), R.data(), rows, dim, dx.data(), false);
    std::vector<double> yd(rows * dim), rd(rows), dxd(rows * dim);
    const std::vector<double> xr(x.begin(), x.end()), wr(w.begin(), w.end()), Rr(R.begin(), R.end());
    rmsnorm_forward_train<double>(xr.data(), wr.data(), rows, dim, 1e-6, yd.data(), rd.data());
    rmsnorm_backward<double>(xr.data(), wr.data(), rd.data(), Rr.data(), rows, dim, dxd.data(), false);
    for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx[i], dxd[i], 1e-5 * (1 + std::abs(dxd[i])));
}

// ---- RoPE --------------------------------------------------------------------------------------------

// The M-RoPE table (Qwen3-VL calibration): with Qwen3-VL positions of an image span, the table-driven
// float forward equals inference's rope_apply_mrope bit for bit (awkward D/2 = 12 with section 4/4/4 and
// 3/5/4); with three equal rows 0..L-1 the table is rope_table's.
TEST(GradRope, MropeTableMatchesInferenceMrope) {
    const int64_t L = 9, nh = 3, D = 24;
    RopeConfig rc;
    rc.theta = 5000.0;
    const auto inv = rope_inv_freq(rc, static_cast<int>(D));
    const std::vector<int32_t> pos3 = {0, 1, 1, 1, 1, 1, 1, 4, 5,   // t
                                       0, 1, 1, 1, 2, 2, 2, 4, 5,   // h
                                       0, 1, 2, 3, 1, 2, 3, 4, 5};  // w
    for (const std::vector<int>& section : {std::vector<int>{4, 4, 4}, std::vector<int>{3, 5, 4}}) {
        std::vector<float> c(L * D / 2), s(L * D / 2);
        rope_table_mrope<float>(inv, pos3.data(), L, section, c.data(), s.data());
        std::mt19937 g(5);
        std::normal_distribution<float> nd;
        std::vector<float> x(L * nh * D);
        for (float& v : x) v = nd(g);
        std::vector<float> a = x, b = x;
        rope_forward<float>(a.data(), 1, L, nh, D, c.data(), s.data());
        rope_apply_mrope(b.data(), L, nh, D, pos3.data(), inv, section);
        EXPECT_EQ(a, b);
    }
    std::vector<int32_t> lin(3 * L);
    for (int64_t i = 0; i < 3 * L; ++i) lin[i] = static_cast<int32_t>(i % L);
    std::vector<double> c1(L * D / 2), s1(L * D / 2), c2(L * D / 2), s2(L * D / 2);
    rope_table_mrope<double>(inv, lin.data(), L, std::vector<int>{4, 4, 4}, c1.data(), s1.data());
    rope_table<double>(inv, L, c2.data(), s2.data());
    EXPECT_EQ(c1, c2);
    EXPECT_EQ(s1, s2);
}

TEST(GradRope, BackwardIsTheTransposeAndFloatForwardMatchesInference) {
    for (int64_t D : {8, 16}) {
        const int64_t B = 2, L = 7, nh = 3;
        RopeConfig rc;
        rc.theta = 10000.0;
        const auto inv = rope_inv_freq(rc, static_cast<int>(D));
        std::vector<double> c(L * D / 2), s(L * D / 2);
        rope_table<double>(inv, L, c.data(), s.data());
        const auto x = randn_d(B * L * nh * D, 30), R = randn_d(B * L * nh * D, 31);
        auto f = [&](const std::vector<double>& xx) {
            std::vector<double> y = xx;
            rope_forward<double>(y.data(), B, L, nh, D, c.data(), s.data());
            return dot(y, R);
        };
        std::vector<double> dx = R;
        rope_backward<double>(dx.data(), B, L, nh, D, c.data(), s.data());
        check_fd(f, x, dx, some_indices(dx.size(), 60, 4), 1e-5, 1e-6, 5e-9, "rope");

        // float forward == rope_apply per sample (positions 0..L-1)
        std::vector<float> cf(L * D / 2), sf(L * D / 2);
        rope_table<float>(inv, L, cf.data(), sf.data());
        auto xf = to_f(x), xi = xf;
        rope_forward<float>(xf.data(), B, L, nh, D, cf.data(), sf.data());
        std::vector<int32_t> pos(L);
        for (int64_t t = 0; t < L; ++t) pos[t] = static_cast<int32_t>(t);
        for (int64_t b = 0; b < B; ++b) rope_apply(xi.data() + b * L * nh * D, L, nh, D, pos.data(), inv);
        for (size_t i = 0; i < xf.size(); ++i) ASSERT_NEAR(xf[i], xi[i], 1e-6f * (1 + std::abs(xi[i])));
    }
}

// ---- SwiGLU ------------------------------------------------------------------------------------------

TEST(GradActivation, SwigluBackwardMatchesFiniteDifferences) {
    const int64_t n = 41;
    const auto g = randn_d(n, 40, 2.0), u = randn_d(n, 41), R = randn_d(n, 42);
    std::vector<double> dg(n), du(n);
    swiglu_backward<double>(g.data(), u.data(), R.data(), n, dg.data(), du.data());
    auto f = [&](const std::vector<double>& gg, const std::vector<double>& uu) {
        std::vector<double> y(n);
        swiglu_forward<double>(gg.data(), uu.data(), n, y.data());
        return dot(y, R);
    };
    check_fd([&](const std::vector<double>& gg) { return f(gg, u); }, g, dg, some_indices(n, n, 0), 1e-5, 1e-6, 5e-9,
             "dgate");
    check_fd([&](const std::vector<double>& uu) { return f(g, uu); }, u, du, some_indices(n, n, 0), 1e-5, 1e-6, 5e-9,
             "dup");
    // float forward == inference swiglu; float backward ≈ double
    const auto gf = to_f(g), uf = to_f(u), Rf = to_f(R);
    std::vector<float> y(n), yi(n), dgf(n), duf(n);
    swiglu_forward<float>(gf.data(), uf.data(), n, y.data());
    swiglu(gf.data(), uf.data(), n, yi.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], yi[i], 1e-6f * (1 + std::abs(yi[i])));
    swiglu_backward<float>(gf.data(), uf.data(), Rf.data(), n, dgf.data(), duf.data());
    for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(dgf[i], dg[i], 1e-5 * (1 + std::abs(dg[i])));
        EXPECT_NEAR(duf[i], du[i], 1e-5 * (1 + std::abs(du[i])));
    }
}

// ---- attention ---------------------------------------------------------------------------------------

TEST(GradAttention, BackwardMatchesFiniteDifferences) {
    struct S { int64_t B, L, nq, nkv, D; };
    for (S sh : {S{2, 5, 4, 2, 8}, S{1, 7, 3, 1, 16}}) {
        const AttnTrainShape as{sh.B, sh.L, sh.nq, sh.nkv, sh.D};
        const int64_t N = sh.B * sh.L, QD = sh.nq * sh.D, KD = sh.nkv * sh.D;
        const auto q = randn_d(N * QD, 50), k = randn_d(N * KD, 51), v = randn_d(N * KD, 52), R = randn_d(N * QD, 53);
        auto f = [&](const std::vector<double>& qq, const std::vector<double>& kk, const std::vector<double>& vv) {
            std::vector<double> o(N * QD), lse(sh.B * sh.nq * sh.L);
            attention_train_forward_ref<double>(qq.data(), kk.data(), vv.data(), as, o.data(), lse.data());
            return dot(o, R);
        };
        std::vector<double> dq(N * QD), dk(N * KD), dv(N * KD);
        attention_train_backward_ref<double>(q.data(), k.data(), v.data(), R.data(), as, dq.data(), dk.data(), dv.data());
        const std::string tag = "B" + std::to_string(sh.B) + " L" + std::to_string(sh.L) + " " + std::to_string(sh.nq) +
                                "/" + std::to_string(sh.nkv) + " D" + std::to_string(sh.D);
        check_fd([&](const std::vector<double>& x) { return f(x, k, v); }, q, dq, some_indices(dq.size(), 60, 5), 1e-5,
                 1e-6, 5e-9, "dq " + tag);
        check_fd([&](const std::vector<double>& x) { return f(q, x, v); }, k, dk, some_indices(dk.size(), 60, 6), 1e-5,
                 1e-6, 5e-9, "dk " + tag);
        check_fd([&](const std::vector<double>& x) { return f(q, k, x); }, v, dv, some_indices(dv.size(), 60, 7), 1e-5,
                 1e-6, 5e-9, "dv " + tag);
    }
}

TEST(GradAttention, FastPathsMatchReferencesAcrossRowBlocks) {
    struct S { int64_t B, L, nq, nkv, D; };
    for (S sh : {S{2, 5, 4, 2, 8}, S{1, 7, 3, 1, 16}, S{2, 67, 4, 2, 8}, S{1, 131, 3, 1, 16}}) {
        const AttnTrainShape as{sh.B, sh.L, sh.nq, sh.nkv, sh.D};
        const int64_t N = sh.B * sh.L, QD = sh.nq * sh.D, KD = sh.nkv * sh.D, NL = sh.B * sh.nq * sh.L;
        const auto q = randn_d(N * QD, 60), k = randn_d(N * KD, 61), v = randn_d(N * KD, 62), R = randn_d(N * QD, 63);
        // double: fast == ref to rounding
        std::vector<double> o(N * QD), lse(NL), o_r(N * QD), lse_r(NL);
        attention_train_forward<double>(q.data(), k.data(), v.data(), as, o.data(), lse.data());
        attention_train_forward_ref<double>(q.data(), k.data(), v.data(), as, o_r.data(), lse_r.data());
        for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(o[i], o_r[i], 1e-12);
        for (size_t i = 0; i < lse.size(); ++i) ASSERT_NEAR(lse[i], lse_r[i], 1e-12);
        std::vector<double> dq(N * QD), dk(N * KD), dv(N * KD), dq_r(N * QD), dk_r(N * KD), dv_r(N * KD);
        attention_train_backward<double>(q.data(), k.data(), v.data(), o.data(), lse.data(), R.data(), as, dq.data(),
                                         dk.data(), dv.data());
        attention_train_backward_ref<double>(q.data(), k.data(), v.data(), R.data(), as, dq_r.data(), dk_r.data(),
                                             dv_r.data());
        for (size_t i = 0; i < dq.size(); ++i) ASSERT_NEAR(dq[i], dq_r[i], 1e-11);
        for (size_t i = 0; i < dk.size(); ++i) ASSERT_NEAR(dk[i], dk_r[i], 1e-11);
        for (size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dv[i], dv_r[i], 1e-11);
        // float fast vs double
        const auto qf = to_f(q), kf = to_f(k), vf = to_f(v), Rf = to_f(R);
        std::vector<float> of(N * QD), lf(NL), dqf(N * QD), dkf(N * KD), dvf(N * KD);
        attention_train_forward<float>(qf.data(), kf.data(), vf.data(), as, of.data(), lf.data());
        attention_train_backward<float>(qf.data(), kf.data(), vf.data(), of.data(), lf.data(), Rf.data(), as,
                                        dqf.data(), dkf.data(), dvf.data());
        for (size_t i = 0; i < o.size(); ++i) ASSERT_NEAR(of[i], o[i], 2e-5 * (1 + std::abs(o[i])));
        for (size_t i = 0; i < dq.size(); ++i) ASSERT_NEAR(dqf[i], dq[i], 1e-4 * (1 + std::abs(dq[i])));
        for (size_t i = 0; i < dk.size(); ++i) ASSERT_NEAR(dkf[i], dk[i], 1e-4 * (1 + std::abs(dk[i])));
        for (size_t i = 0; i < dv.size(); ++i) ASSERT_NEAR(dvf[i], dv[i], 1e-4 * (1 + std::abs(dv[i])));
        // float forward vs the inference op (one sample at a time, no cache prefix)
        for (int64_t b = 0; b < sh.B; ++b) {
            std::vector<float> oi(sh.L * QD);
            attention_causal(qf.data() + b * sh.L * QD, kf.data() + b * sh.L * KD, vf.data() + b * sh.L * KD,
                             AttentionShape{sh.L, 0, sh.nq, sh.nkv, sh.D, KD}, oi.data());
            for (int64_t i = 0; i < sh.L * QD; ++i) ASSERT_NEAR(of[b * sh.L * QD + i], oi[i], 1e-5 * (1 + std::abs(oi[i])));
        }
    }
}

// ---- fake quantization -------------------------------------------------------------------------------

TEST(FakeQuant, ShapesAndPaddingLayout) {
    FakeQuantShape a = fake_quant_shape(3, 20, 8);
    EXPECT_EQ(a.gs, 8);
    EXPECT_EQ(a.G, 3);
    EXPECT_EQ(a.padded_in(), 24);
    EXPECT_EQ(a.groups(), 9);
    FakeQuantShape b = fake_quant_shape(3, 20, -1);
    EXPECT_EQ(b.gs, 20);
    EXPECT_EQ(b.G, 1);
    FakeQuantShape c = fake_quant_shape(3, 20, 32);  // in < gs → per-channel
    EXPECT_EQ(c.gs, 20);
    EXPECT_EQ(c.G, 1);
    EXPECT_THROW(fake_quant_shape(3, 20, 0), Error);
    EXPECT_THROW(fake_quant_shape(0, 20, 8), Error);
}

TEST(FakeQuant, BackwardMatchesFrozenSurrogateFiniteDifferences) {
    for (bool sym : {true, false}) {
        for (int bits : {2, 3, 4, 8}) {
            for (int64_t gs : {int64_t(8), int64_t(-1)}) {
                const int64_t out = 5, in = 21;  // gs 8 → 3 groups, the last padded by 3
                FQCase k = make_fq_case(out, in, gs, bits, sym, 100 + bits + (sym ? 0 : 50) + (gs < 0 ? 7 : 0));
                // row 3: a tie between the two sides (sym) in its first group; row 4: tiny values (τ clamp)
                const int64_t g3 = 3 * k.sh.G;
                k.W[3 * in + 0] = 0.0625;
                k.W[3 * in + 1] = -0.0625;
                for (int64_t c = 2; c < std::min<int64_t>(in, k.sh.gs); ++c) k.W[3 * in + c] = 0.01 * ((c % 5) - 2);
                k.al[g3] = k.be[g3] = 0.875;
                for (int64_t c = 0; c < in; ++c) k.W[4 * in + c] = 1e-7 * ((c % 7) - 3);
                nudge_away_from_boundaries(k);
                const std::string tag = std::string(sym ? "sym" : "asym") + " bits " + std::to_string(bits) + " gs " +
                                        std::to_string(gs);
                FrozenFQ fr = freeze_fq(k.W, k.sh, k.cfg, k.V, k.al, k.be);
                if (sym) {
                    EXPECT_EQ(fr.which[g3], 2) << tag;
                }
                EXPECT_FALSE(fr.pass[4 * k.sh.G]) << tag;

                // the surrogate equals the real forward at the base point
                FakeQuantTensors<double> t{k.W.data(), k.V.data(), k.al.data(), k.be.data(), fr.wmin.data(),
                                           fr.wmax.data()};
                std::vector<double> y(out * in);
                fake_quant_forward_ref<double>(t, k.sh, k.cfg, y.data(), nullptr, nullptr);
                const auto ys = frozen_forward(fr, k.V, k.al, k.be);
                for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(ys[i], y[i], 1e-12 * (1 + std::abs(y[i]))) << tag;

                const auto R = randn_d(out * in, 7);  // dL/dW_q
                std::vector<double> dV(k.sh.out * k.sh.padded_in(), 9.0), dA(k.sh.groups()), dB(k.sh.groups());
                fake_quant_backward_ref<double>(t, k.sh, k.cfg, R.data(), dV.data(), dA.data(), dB.data());
                auto loss_v = [&](const std::vector<double>& V) { return dot(frozen_forward(fr, V, k.al, k.be), R); };
                auto loss_a = [&](const std::vector<double>& A) { return dot(frozen_forward(fr, k.V, A, k.be), R); };
                auto loss_b = [&](const std::vector<double>& Bv) { return dot(frozen_forward(fr, k.V, k.al, Bv), R); };
                std::vector<size_t> all_v(dV.size()), all_g(dA.size());
                for (size_t i = 0; i < all_v.size(); ++i) all_v[i] = i;
                for (size_t i = 0; i < all_g.size(); ++i) all_g[i] = i;
                check_fd(loss_v, k.V, dV, all_v, 1e-6, 1e-7, 1e-9, "dV " + tag);
                check_fd(loss_a, k.al, dA, all_g, 1e-6, 1e-6, 1e-9, "dalpha " + tag);
                check_fd(loss_b, k.be, dB, all_g, 1e-6, 1e-6, 1e-9, "dbeta " + tag);
                // padded V entries get exactly 0
                for (int64_t o = 0; o < out; ++o)
                    for (int64_t c = in; c < k.sh.padded_in(); ++c) EXPECT_EQ(dV[o * k.sh.padded_in() + c], 0.0) << tag;
                // τ-clamped group: no gradient into α, β
                EXPECT_EQ(dA[4 * k.sh.G], 0.0) << tag;
                EXPECT_EQ(dB[4 * k.sh.G], 0.0) << tag;
            }
        }
    }
}

TEST(FakeQuant, DiscreteRulesInclusiveClampTieAndTau) {
    // one group of 8: the extreme maps exactly to −Q (in range, inclusive → gradient), V pushes
    // another element to −Q−1 (out of range → none)
    const FakeQuantShape sh = fake_quant_shape(1, 8, 8);
    FakeQuantConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 8;
    cfg.sym = true;
    cfg.scale_fp16 = false;
    cfg.out_bf16 = false;
    std::vector<double> W = {-0.5, 0.25, 0.1, -0.3, 0.05, 0.2, -0.125, 0.4375};
    std::vector<double> V(8, 0.0), al = {1.0}, be = {1.0}, wmin(1), wmax(1);
    fake_quant_minmax<double>(W.data(), sh, wmin.data(), wmax.data());
    EXPECT_EQ(wmin[0], -0.5);
    EXPECT_EQ(wmax[0], 0.4375);
    V[3] = -3.0;  // u = -0.3/0.0625 - 3 = -7.8 → r = -8: in range (inclusive)
    V[6] = -6.5;  // u = -2 - 6.5 = -8.5 → r = -8 (half to even): in range
    V[5] = -12.0; // u = 3.2 - 12 = -8.8 → r = -9: clamped, no gradient
    const std::vector<double> g = {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
    FakeQuantTensors<double> t{W.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
    std::vector<double> y(8), s(1), z(1), dV(8), dA(1), dB(1);
    fake_quant_forward_ref<double>(t, sh, cfg, y.data(), s.data(), z.data());
    EXPECT_EQ(s[0], 0.0625);  // b < a: positive scale 0.5/8
    EXPECT_EQ(z[0], 8.0);
    EXPECT_EQ(y[0], -0.5);    // the extreme → −Q·s
    EXPECT_EQ(y[3], -0.5);
    EXPECT_EQ(y[6], -0.5);
    EXPECT_EQ(y[5], -0.5);
    fake_quant_backward_ref<double>(t, sh, cfg, g.data(), dV.data(), dA.data(), dB.data());
    EXPECT_EQ(dV[0], 0.0625);
    EXPECT_EQ(dV[3], 0.0625);
    EXPECT_EQ(dV[6], 0.0625);
    EXPECT_EQ(dV[5], 0.0);
    // dα = (ds/Q)·(−wmin), ds = Σ g (q − in·x/s)
    double ds = 0;
    for (int j = 0; j < 8; ++j) ds += y[j] / s[0] - (j == 5 ? 0.0 : W[j] / s[0]);
    EXPECT_NEAR(dA[0], ds / 8 * 0.5, 1e-12);
    EXPECT_EQ(dB[0], 0.0);

    // tie: wmax·β == −wmin·α → m = −max(a, b): negative scale, gradient split 1/2 each
    W[7] = 0.5;
    fake_quant_minmax<double>(W.data(), sh, wmin.data(), wmax.data());
    std::fill(V.begin(), V.end(), 0.0);
    fake_quant_forward_ref<double>(t, sh, cfg, y.data(), s.data(), nullptr);
    EXPECT_EQ(s[0], -0.0625);
    EXPECT_EQ(y[0], -0.4375);  // -0.5 / -0.0625 = 8 → clamped to Q-1 = 7
    EXPECT_EQ(y[7], 0.5);      // the + extreme → −Q·s
    fake_quant_backward_ref<double>(t, sh, cfg, g.data(), dV.data(), dA.data(), dB.data());
    EXPECT_EQ(dV[0], 0.0);     // clamped
    ds = 0;
    for (int j = 0; j < 8; ++j) ds += y[j] / s[0] - (j == 0 ? 0.0 : W[j] / s[0]);
    const double dm = ds / 8;  // s = m / Q
    EXPECT_NEAR(dA[0], dm * wmin[0] / 2, 1e-12);   // a = −wmin·α, ∂m/∂a = −1/2
    EXPECT_NEAR(dB[0], -dm * wmax[0] / 2, 1e-12);  // b = wmax·β, ∂m/∂b = −1/2

    // τ: an all-zero group gets s = +τ (−0.0 goes to +τ) and no gradient into α, β
    std::vector<double> W0(8, 0.0);
    fake_quant_minmax<double>(W0.data(), sh, wmin.data(), wmax.data());
    FakeQuantTensors<double> t0{W0.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
    fake_quant_forward_ref<double>(t0, sh, cfg, y.data(), s.data(), nullptr);
    EXPECT_EQ(s[0], 1e-5);
    EXPECT_FALSE(std::signbit(s[0]));
    fake_quant_backward_ref<double>(t0, sh, cfg, g.data(), dV.data(), dA.data(), dB.data());
    EXPECT_EQ(dA[0], 0.0);
    EXPECT_EQ(dB[0], 0.0);
    EXPECT_EQ(dV[0], 1e-5);

    // α, β outside [0, 1] are used clamped
    std::vector<double> al2 = {1.7}, be2 = {-0.2};
    W = {-0.5, 0.25, 0.1, -0.3, 0.05, 0.2, -0.125, 0.4375};
    fake_quant_minmax<double>(W.data(), sh, wmin.data(), wmax.data());
    FakeQuantTensors<double> t2{W.data(), V.data(), al2.data(), be2.data(), wmin.data(), wmax.data()};
    fake_quant_forward_ref<double>(t2, sh, cfg, y.data(), s.data(), nullptr);
    EXPECT_EQ(s[0], 0.0625);
}

TEST(FakeQuant, AsymInclusiveClampAtZero) {
    const FakeQuantShape sh = fake_quant_shape(1, 8, 8);
    FakeQuantConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 8;
    cfg.sym = false;
    cfg.scale_fp16 = false;
    cfg.out_bf16 = false;
    std::vector<double> W = {-0.5, 0.25, 0.1, -0.3, 0.05, 0.2, -0.125, 1.0};
    std::vector<double> V(8, 0.0), wmin(1), wmax(1);
    fake_quant_minmax<double>(W.data(), sh, wmin.data(), wmax.data());
    V[1] = 20.0;  // pushed far above Qa → clamped
    FakeQuantTensors<double> t{W.data(), V.data(), nullptr, nullptr, wmin.data(), wmax.data()};
    std::vector<double> y(8), s(1), z(1), dV(8), g(8, 1.0);
    fake_quant_forward_ref<double>(t, sh, cfg, y.data(), s.data(), z.data());
    EXPECT_EQ(s[0], 0.1);
    EXPECT_EQ(z[0], 5.0);
    EXPECT_NEAR(y[0], -0.5, 1e-15);  // r + z = 0 exactly: in range (inclusive)
    fake_quant_backward_ref<double>(t, sh, cfg, g.data(), dV.data(), nullptr, nullptr);
    EXPECT_EQ(dV[0], 0.1);
    EXPECT_EQ(dV[7], 0.1);  // r + z = 15 = Qa: in range
    EXPECT_EQ(dV[1], 0.0);
}

TEST(FakeQuant, FloatFastPathIsBitExactAndBackwardMatchesReference) {
    for (bool sym : {true, false}) {
        for (int bits : {2, 3, 4, 8}) {
            for (auto [out, in, gs] : {std::array<int64_t, 3>{7, 21, 8}, {5, 40, 16}, {33, 128, 32}, {4, 37, -1},
                                       {3, 12, 32}}) {
                for (bool bf : {true, false}) {
                    const FakeQuantShape sh = fake_quant_shape(out, in, gs);
                    FakeQuantConfig cfg;
                    cfg.bits = bits;
                    cfg.group_size = gs;
                    cfg.sym = sym;
                    cfg.out_bf16 = bf;
                    auto W = to_f(randn_d(out * in, 200 + bits, 0.04));
                    for (float& w : W) w = round_to_bf16(w);
                    const auto V = to_f(uniform_d(out * sh.padded_in(), 201, -0.5, 0.5));
                    const auto al = to_f(uniform_d(sh.groups(), 202, 0.5, 1.2));  // > 1 exercises the clamp
                    const auto be = to_f(uniform_d(sh.groups(), 203, 0.5, 1.2));
                    const auto R = to_f(randn_d(out * in, 204));
                    std::vector<float> wmin(sh.groups()), wmax(sh.groups());
                    fake_quant_minmax<float>(W.data(), sh, wmin.data(), wmax.data());
                    FakeQuantTensors<float> t{W.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
                    std::vector<float> y(out * in), yr(out * in), s(sh.groups()), sr(sh.groups()), z(sh.groups()),
                        zr(sh.groups());
                    fake_quant_forward(t, sh, cfg, y.data(), s.data(), z.data());
                    fake_quant_forward_ref<float>(t, sh, cfg, yr.data(), sr.data(), zr.data());
                    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], yr[i]) << i;
                    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(s[i], sr[i]);
                    for (size_t i = 0; i < z.size(); ++i) ASSERT_EQ(z[i], zr[i]);
                    // the same without V (all zero)
                    FakeQuantTensors<float> t0 = t;
                    t0.V = nullptr;
                    std::vector<float> zeroV(out * sh.padded_in(), 0.f);
                    FakeQuantTensors<float> tz = t;
                    tz.V = zeroV.data();
                    fake_quant_forward(t0, sh, cfg, y.data(), nullptr, nullptr);
                    fake_quant_forward_ref<float>(tz, sh, cfg, yr.data(), nullptr, nullptr);
                    for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], yr[i]) << i;

                    std::vector<float> dV(out * sh.padded_in()), dVr(out * sh.padded_in()), dA(sh.groups()),
                        dAr(sh.groups()), dB(sh.groups()), dBr(sh.groups());
                    fake_quant_backward(t, sh, cfg, R.data(), dV.data(), dA.data(), dB.data());
                    fake_quant_backward_ref<float>(t, sh, cfg, R.data(), dVr.data(), dAr.data(), dBr.data());
                    for (size_t i = 0; i < dV.size(); ++i) ASSERT_EQ(dV[i], dVr[i]) << i;  // no reduction: exact
                    for (size_t i = 0; i < dA.size(); ++i) {
                        ASSERT_NEAR(dA[i], dAr[i], 1e-5 * (1 + std::abs(dAr[i])));
                        ASSERT_NEAR(dB[i], dBr[i], 1e-5 * (1 + std::abs(dBr[i])));
                    }
                }
            }
        }
    }
}

TEST(FakeQuant, FloatForwardMatchesTheExportQuantizer) {
    // ops/cpu/fake_quant and quant/rtn implement the same QDQ (fp16 scales): W_q must agree exactly.
    for (bool sym : {true, false}) {
        for (int bits : {2, 3, 4, 8}) {
            const int64_t out = 6, in = 45, gs = 16;
            const FakeQuantShape sh = fake_quant_shape(out, in, gs);
            FakeQuantConfig cfg;
            cfg.bits = bits;
            cfg.group_size = gs;
            cfg.sym = sym;
            cfg.out_bf16 = false;
            auto W = to_f(randn_d(out * in, 300 + bits, 0.04));
            for (float& w : W) w = round_to_bf16(w);
            const auto V = to_f(uniform_d(out * sh.padded_in(), 301, -0.5, 0.5));
            const auto al = to_f(uniform_d(sh.groups(), 302, 0.6, 1.0));
            const auto be = to_f(uniform_d(sh.groups(), 303, 0.6, 1.0));
            std::vector<float> wmin(sh.groups()), wmax(sh.groups()), y(out * in);
            fake_quant_minmax<float>(W.data(), sh, wmin.data(), wmax.data());
            FakeQuantTensors<float> t{W.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
            fake_quant_forward(t, sh, cfg, y.data(), nullptr, nullptr);
            QdqOptions opt;
            opt.scheme.bits = bits;
            opt.scheme.group_size = gs;
            opt.scheme.sym = sym;
            const std::vector<float> yq = qdq(W, out, in, V, al, be, opt);
            for (size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], yq[i]) << (sym ? "sym " : "asym ") << bits << " @" << i;
        }
    }
}
