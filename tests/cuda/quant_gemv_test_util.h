// tests/cuda/quant_gemv_test_util.h — helpers shared by the tests of the packed-weight GEMVs (ops/cuda/quant_gemv.h):
// test_cuda_quant_gemv.cpp (quant_gemv, bf16_gemv, quant_dequantize_bf16) and test_cuda_quant_gemv_fast.cpp
// (quant_gemv_fast). The host arrays of a packed weight and their device copy as a DeviceQuantWeight, random normal
// vectors, and the per-row check of y against a float64 reference Σ_k w·x (+ y0) with a relative tolerance.
// Each test keeps its own way of drawing the codes and scales and its own reference weight values (bf16-rounded for
// quant_gemv, unrounded for quant_gemv_fast).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "ops/cuda/quant_gemv.h"

namespace cuda_test {

// A packed weight [n, k] on the host in quant_gemv.h's layout.
struct PackedArrays {
    int64_t n = 0, k = 0, group_len = 0;
    int bits = 4;
    std::vector<int32_t> qweight;  // [k·bits/32, n]
    std::vector<uint16_t> scales;  // [ng, n] fp16 bits
    std::vector<uint8_t> zeros;    // [ng, n]
};

inline autoround::DeviceQuantWeight device_weight(const uint32_t* qweight, const uint16_t* scales,
                                                  const uint8_t* zeros, int64_t n, int64_t k, int bits,
                                                  int64_t group_len) {
    autoround::DeviceQuantWeight w;
    w.qweight = qweight;
    w.scales = scales;
    w.zeros = zeros;
    w.n = n;
    w.k = k;
    w.bits = bits;
    w.group_len = group_len;
    return w;
}

// The packed weight in device memory (arrays with Slack bytes past their ends, see DevBuf).
template <size_t Slack = 0>
struct DevPackedWeight {
    DevBuf<uint32_t, Slack> qweight;
    DevBuf<uint16_t, Slack> scales;
    DevBuf<uint8_t, Slack> zeros;
    autoround::DeviceQuantWeight w;
    explicit DevPackedWeight(const PackedArrays& h)
        : qweight(h.qweight),
          scales(h.scales),
          zeros(h.zeros),
          w(device_weight(qweight.p, scales.p, zeros.p, h.n, h.k, h.bits, h.group_len)) {}
};

// n values ~ N(mean, sd²) from mt19937(seed).
inline std::vector<float> randn(size_t n, uint32_t seed, float mean = 0.f, float sd = 1.f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(mean, sd);
    std::vector<float> v(n);
    for (auto& x : v) x = nd(g);
    return v;
}

// Checks every row r of y [n] against ref = Σ_c weight(r, c)·x[c] (+ y0[r]) in float64:
// |y[r] − ref| ≤ tol · (Σ_c |weight(r, c)·x[c]| + |y0[r]|). tol_text is tol as the failure messages print it.
template <typename WeightAt>
void expect_rows_close(const std::vector<float>& y, int64_t n, int64_t k, WeightAt&& weight,
                       const std::vector<float>& x, const std::vector<float>* y0, double tol, const char* tol_text,
                       const std::string& what) {
    int bad = 0;
    for (int64_t r = 0; r < n; ++r) {
        double ref = y0 ? double((*y0)[size_t(r)]) : 0.0, mag = std::fabs(ref);
        for (int64_t c = 0; c < k; ++c) {
            const double t = weight(r, c) * double(x[size_t(c)]);
            ref += t;
            mag += std::fabs(t);
        }
        const double err = std::fabs(double(y[size_t(r)]) - ref);
        if (!(err <= tol * mag) && bad++ < 5)
            ADD_FAILURE() << what << ": row " << r << " y " << y[size_t(r)] << " ref " << ref << " |err| " << err
                          << " > " << tol_text << " · " << mag;
    }
    EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << n << " rows out of tolerance";
}

}  // namespace cuda_test
