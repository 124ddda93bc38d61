// tests/cuda/cuda_test_util.h — helpers shared by the GPU tests: a device array tied to host vectors (the GEMV,
// FP8 GEMM and other kernel tests), and a random Qwen3 block (constants and the 7 weights) for the GPU block engine
// tests, shared by the FP32 and the bf16 engine tests.
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "model/qwen3_block_grad.h"

namespace cuda_test {

// n elements of T in device memory (cudaMalloc of max(n, 1) elements plus Slack bytes past the end; p stays null when
// the allocation fails, which the tests assert), filled from / read back into host vectors. A failed copy is a test
// failure (EXPECT), not an exception. Not copyable.
template <typename T, size_t Slack = 0>
struct DevBuf {
    T* p = nullptr;
    size_t n = 0;
    explicit DevBuf(size_t count) : n(count) {
        if (cudaMalloc(reinterpret_cast<void**>(&p), std::max<size_t>(count, 1) * sizeof(T) + Slack) != cudaSuccess)
            p = nullptr;
    }
    // The bytes of a host vector whose elements have T's size (e.g. int32 words into a uint32 array).
    template <typename U>
    explicit DevBuf(const std::vector<U>& h) : DevBuf(h.size() * sizeof(U) / sizeof(T)) {
        static_assert(sizeof(U) == sizeof(T), "same element size");
        if (p && !h.empty()) {
            EXPECT_EQ(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
        }
    }
    ~DevBuf() {
        if (p) cudaFree(p);
    }
    DevBuf(const DevBuf&) = delete;
    DevBuf& operator=(const DevBuf&) = delete;
    std::vector<T> get() const {
        std::vector<T> h(n);
        EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return h;
    }
    // Uploads h (at most n elements) to the start of the array.
    void put(const std::vector<T>& h) const {
        EXPECT_EQ(cudaMemcpy(p, h.data(), std::min(n, h.size()) * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
};

struct Case {
    autoround::Qwen3BlockConsts<float> c;
    std::array<std::vector<float>, autoround::kNumBlockLinears> W;
};

// Norm weights ~ 1 ± 0.1, weights ~ N(0, 1/in), RoPE theta 10000; all from mt19937(seed).
inline Case random_case(int64_t H, int64_t nq, int64_t nkv, int64_t D, int64_t I, bool qk_norm, uint32_t seed) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    Case k;
    autoround::Qwen3BlockDims& d = k.c.dims;
    d.hidden = H;
    d.n_q_heads = nq;
    d.n_kv_heads = nkv;
    d.head_dim = D;
    d.intermediate = I;
    d.rms_eps = 1e-6;
    d.qk_norm = qk_norm;
    auto fill = [&](std::vector<float>& v, size_t n, float mean, float sd) {
        v.resize(n);
        for (auto& x : v) x = mean + sd * nd(g);
    };
    fill(k.c.input_norm, size_t(H), 1.f, 0.1f);
    fill(k.c.post_attn_norm, size_t(H), 1.f, 0.1f);
    if (qk_norm) {
        fill(k.c.q_norm, size_t(D), 1.f, 0.1f);
        fill(k.c.k_norm, size_t(D), 1.f, 0.1f);
    }
    k.c.inv_freq.resize(size_t(D / 2));
    for (int64_t i = 0; i < D / 2; ++i) k.c.inv_freq[size_t(i)] = std::pow(10000.f, -2.f * float(i) / float(D));
    for (int i = 0; i < autoround::kNumBlockLinears; ++i) {
        const auto sh = autoround::block_linear_shape(d, i);
        fill(k.W[size_t(i)], size_t(sh[0] * sh[1]), 0.f, 1.f / std::sqrt(float(sh[1])));
    }
    return k;
}

}  // namespace cuda_test
