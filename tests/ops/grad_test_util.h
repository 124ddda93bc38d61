// tests/ops/grad_test_util.h — helpers for the float64 gradient checks, defined once in
// tests/ops/test_grad_ops.cpp and shared by every test file that checks a backward against finite
// differences (ops, Qwen3 and Qwen3-VL vision blocks).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ops/cpu/fake_quant.h"

namespace grad_test {

// n normal(mean, scale) values from mt19937(seed).
std::vector<double> randn_d(size_t n, uint32_t seed, double scale = 1.0, double mean = 0.0);
// n uniform [lo, hi) values from mt19937(seed).
std::vector<double> uniform_d(size_t n, uint32_t seed, double lo, double hi);
double dot(const std::vector<double>& a, const std::vector<double>& b);
// `count` random indices in [0, n) (repeats possible; all of them, in order, when n <= count).
std::vector<size_t> some_indices(size_t n, size_t count, uint32_t seed);
// Central differences of f at x along each index in idx against the analytic gradient g; fails the test
// with `what` when |fd - g| > atol + rtol·max(|fd|, |g|).
void check_fd(const std::function<double(const std::vector<double>&)>& f, std::vector<double> x,
              const std::vector<double>& g, const std::vector<size_t>& idx, double h, double rtol, double atol,
              const std::string& what);
// fake_quant_forward with the scales and rounding decisions frozen at (V0, α0, β0) (see test_grad_ops.cpp).
std::function<std::vector<double>(const std::vector<double>&, const std::vector<double>&, const std::vector<double>&)>
frozen_fake_quant(const std::vector<double>& W, const autoround::FakeQuantShape& sh, const autoround::FakeQuantConfig& cfg,
                  const std::vector<double>& V0, const std::vector<double>& al0, const std::vector<double>& be0);
// Moves V away from rounding boundaries so finite differences do not cross one.
void nudge_fake_quant_params(const std::vector<double>& W, const autoround::FakeQuantShape& sh,
                             const autoround::FakeQuantConfig& cfg, std::vector<double>& V,
                             const std::vector<double>& al, const std::vector<double>& be);

}  // namespace grad_test
