// tests/ops/test_gelu_grad.cpp — GELU for training (ops/cpu/gelu_grad.h), tanh and erf forms: the float64
// backward against central finite differences (including the tails and around 0), the float forward
// against the inference kernels of gelu.h (bit for bit), the float backward against float64, and the
// aliasing / accumulate contract.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "ops/cpu/gelu.h"
#include "ops/cpu/gelu_grad.h"

using namespace autoround;

namespace {

std::vector<double> test_points() {
    std::vector<double> x;
    for (int i = -80; i <= 80; ++i) x.push_back(i * 0.1 + 0.0137);  // [-8, 8], never exactly 0
    x.push_back(0.0);
    x.push_back(-20.0);
    x.push_back(15.0);
    return x;
}

}  // namespace

TEST(GeluGrad, BackwardMatchesFiniteDifferences) {
    const auto x = test_points();
    const int64_t n = static_cast<int64_t>(x.size());
    for (bool tanh_form : {true, false}) {
        std::vector<double> ones(n, 1.0), g(n);
        gelu_backward<double>(x.data(), ones.data(), n, tanh_form, g.data());
        const double h = 1e-5;
        for (int64_t i = 0; i < n; ++i) {
            double yp, ym;
            const double xp = x[i] + h, xm = x[i] - h;
            gelu_forward<double>(&xp, 1, tanh_form, &yp);
            gelu_forward<double>(&xm, 1, tanh_form, &ym);
            const double fd = (yp - ym) / (2 * h);
            EXPECT_NEAR(g[i], fd, 1e-9 + 1e-7 * std::abs(fd)) << (tanh_form ? "tanh" : "erf") << " x = " << x[i];
        }
        // dx aliasing dy, and accumulate
        std::vector<double> d(n, 2.0);
        gelu_backward<double>(x.data(), d.data(), n, tanh_form, d.data());
        for (int64_t i = 0; i < n; ++i) ASSERT_DOUBLE_EQ(d[i], 2.0 * g[i]);
        std::vector<double> acc(n, 1.0);
        gelu_backward<double>(x.data(), ones.data(), n, tanh_form, acc.data(), true);
        for (int64_t i = 0; i < n; ++i) ASSERT_DOUBLE_EQ(acc[i], 1.0 + g[i]);
    }
}

TEST(GeluGrad, FloatForwardIsTheInferenceKernelAndBackwardMatchesDouble) {
    const auto xd = test_points();
    const int64_t n = static_cast<int64_t>(xd.size());
    const std::vector<float> x(xd.begin(), xd.end());
    const std::vector<double> xr(x.begin(), x.end());  // the float inputs, exactly
    for (bool tanh_form : {true, false}) {
        std::vector<float> y(n), yi(n), g(n), ones(n, 1.0f);
        gelu_forward<float>(x.data(), n, tanh_form, y.data());
        if (tanh_form)
            gelu_tanh(x.data(), n, yi.data());
        else
            gelu_erf(x.data(), n, yi.data());
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[i], yi[i]) << i;
        std::vector<double> yd(n), gd(n), onesd(n, 1.0);
        gelu_forward<double>(xr.data(), n, tanh_form, yd.data());
        gelu_backward<float>(x.data(), ones.data(), n, tanh_form, g.data());
        gelu_backward<double>(xr.data(), onesd.data(), n, tanh_form, gd.data());
        for (int64_t i = 0; i < n; ++i) {
            EXPECT_NEAR(y[i], yd[i], 1e-6 * (1 + std::abs(yd[i]))) << (tanh_form ? "tanh" : "erf") << " " << xr[i];
            EXPECT_NEAR(g[i], gd[i], 1e-6 * (1 + std::abs(gd[i]))) << (tanh_form ? "tanh" : "erf") << " " << xr[i];
        }
    }
}
