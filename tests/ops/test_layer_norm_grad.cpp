// tests/ops/test_layer_norm_grad.cpp — LayerNorm for training (ops/cpu/layer_norm_grad.h): the float64
// backward against central finite differences on awkward row lengths (with large row offsets, where a
// one-pass variance would cancel), the float forward against the inference op layer_norm (bit for bit),
// the float backward against float64, and the aliasing / accumulate contract.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/cpu/layer_norm.h"
#include "ops/cpu/layer_norm_grad.h"
#include "grad_test_util.h"

using namespace autoround;


using namespace grad_test;

namespace {
std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }
}  // namespace

TEST(LayerNormGrad, BackwardMatchesFiniteDifferences) {
    struct S { int64_t rows, dim; double offset; };
    for (S sh : {S{3, 7, 0.0}, S{2, 33, 5.0}, S{4, 1, 0.0}}) {
        const int64_t n = sh.rows * sh.dim;
        auto x = randn_d(n, 1, 1.0);
        for (double& v : x) v += sh.offset;
        auto w = randn_d(sh.dim, 2, 0.3);
        for (double& v : w) v += 1.0;
        const auto b = randn_d(sh.dim, 3, 0.2), R = randn_d(n, 4, 1.0);
        auto f = [&](const std::vector<double>& xx) {
            std::vector<double> y(n);
            layer_norm_forward_train<double>(xx.data(), w.data(), b.data(), sh.rows, sh.dim, 1e-6, y.data(), nullptr,
                                             nullptr);
            return dot(y, R);
        };
        std::vector<double> y(n), mean(sh.rows), rstd(sh.rows), dx(n);
        layer_norm_forward_train<double>(x.data(), w.data(), b.data(), sh.rows, sh.dim, 1e-6, y.data(), mean.data(),
                                         rstd.data());
        layer_norm_backward<double>(x.data(), w.data(), mean.data(), rstd.data(), R.data(), sh.rows, sh.dim, dx.data(),
                                    false);
        const std::string tag = std::to_string(sh.rows) + "x" + std::to_string(sh.dim);
        check_fd(f, x, dx, some_indices(n, 40, 5), 1e-5, 1e-6, 5e-9, "LayerNorm dx " + tag);
        if (sh.dim == 1) // a single-element row normalizes to 0: y = b whatever x, so dx = 0
            for (double g : dx) EXPECT_NEAR(g, 0.0, 1e-9);

        // dx may alias dy; accumulate adds
        std::vector<double> g = R;
        layer_norm_backward<double>(x.data(), w.data(), mean.data(), rstd.data(), g.data(), sh.rows, sh.dim, g.data(),
                                    false);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(g[i], dx[i]) << tag << " aliasing, index " << i;
        std::vector<double> acc(n, 0.5);
        layer_norm_backward<double>(x.data(), w.data(), mean.data(), rstd.data(), R.data(), sh.rows, sh.dim,
                                    acc.data(), true);
        for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(acc[i], 0.5 + dx[i], 1e-15) << tag << " accumulate, index " << i;
    }
}

TEST(LayerNormGrad, FloatForwardIsTheInferenceOpAndBackwardMatchesDouble) {
    const int64_t rows = 5, dim = 131;
    auto xd = randn_d(rows * dim, 11, 2.0);
    for (double& v : xd) v += 3.0;
    const auto wd = randn_d(dim, 12, 1.0), bd = randn_d(dim, 13, 1.0), Rd = randn_d(rows * dim, 14, 1.0);
    const auto x = to_f(xd), w = to_f(wd), b = to_f(bd), R = to_f(Rd);
    for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
        std::vector<float> y(rows * dim), yi(rows * dim), mean(rows), rstd(rows);
        layer_norm_forward_train<float>(x.data(), w.data(), bias, rows, dim, 1e-6f, y.data(), mean.data(), rstd.data());
        layer_norm(x.data(), w.data(), bias, rows, dim, 1e-6f, yi.data());
        for (int64_t i = 0; i < rows * dim; ++i) ASSERT_EQ(y[i], yi[i]) << i;
    }
    std::vector<float> y(rows * dim), mean(rows), rstd(rows), dx(rows * dim);
    layer_norm_forward_train<float>(x.data(), w.data(), b.data(), rows, dim, 1e-6f, y.data(), mean.data(), rstd.data());
    layer_norm_backward<float>(x.data(), w.data(), mean.data(), rstd.data(), R.data(), rows, dim, dx.data(), false);
    const std::vector<double> x2(x.begin(), x.end()), w2(w.begin(), w.end()), b2(b.begin(), b.end()),
        R2(R.begin(), R.end());
    std::vector<double> yd(rows * dim), md(rows), rd(rows), dxd(rows * dim);
    layer_norm_forward_train<double>(x2.data(), w2.data(), b2.data(), rows, dim, 1e-6, yd.data(), md.data(), rd.data());
    layer_norm_backward<double>(x2.data(), w2.data(), md.data(), rd.data(), R2.data(), rows, dim, dxd.data(), false);
    for (int64_t i = 0; i < rows * dim; ++i) {
        ASSERT_NEAR(y[i], yd[i], 2e-6 * (1 + std::abs(yd[i]))) << i;
        ASSERT_NEAR(dx[i], dxd[i], 1e-5 * (1 + std::abs(dxd[i]))) << i;
    }
}
