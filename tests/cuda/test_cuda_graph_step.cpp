// tests/cuda/test_cuda_graph_step.cpp — CudaBlockEngineOptions::cuda_graphs (--enable_torch_compile): a tuning
// iteration replayed from CUDA graphs (quantize_forward_backward, step_tuned_layers) against the same iterations
// run eagerly by a second engine on the same inputs, weights, sample indices and learning rates.
//
// With head_dim 16 the engine takes the cuBLAS + softmax attention path, whose kernels are deterministic, so the
// two engines must agree bit for bit: every loss, every tuned V / α / β after the steps, and the best snapshot.
// The flash attention backward adds dq with atomics (its low bits depend on their order), so the head_dim 64 case
// checks the losses to 1e-4 relative and the tuned parameters to a small fraction of flipped steps instead.
// Each case changes the sub-batch size once (a new graph key: captured anew) and uses a per-sample loss mask in
// one of them (the mask rows are gathered on the device from the replayed indices). The fused step (SignSGD that also
// writes the next fake-quantized weights) is checked against the separate forward, bit for bit.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "cuda_test_util.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cuda/block_engine.h"
#include "ops/cuda/device_info.h"

using namespace autoround;

namespace {

struct TuneRun {
    std::vector<double> losses;
    std::vector<std::vector<float>> V, alpha, beta, bestV;
};

// `iters` iterations: quantize + forward + backward (sample indices drawn from a fixed generator; the sub-batch
// shrinks from `batch` to `batch` - 1 half-way), a snapshot after iteration 1, a SignSGD step with a decaying rate.
TuneRun tune(const cuda_test::Case& k, int64_t n, int64_t L, int64_t batch, const std::vector<float>& X,
         const std::vector<float>& R, const std::vector<uint8_t>* mask, bool graphs, int iters) {
    CudaBlockEngineOptions o;
    o.precision = GpuPrecision::Bf16;
    o.cuda_graphs = graphs;
    o.loss_mask = mask ? mask->data() : nullptr;
    CudaBlockEngine eng(k.c, n, L, batch, X.data(), R.data(), o);
    for (int i = 0; i < kNumBlockLinears; ++i) eng.set_weight(i, k.W[size_t(i)].data());
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const auto s = block_linear_shape(k.c.dims, i);
        const FakeQuantShape fsh = fake_quant_shape(s[0], s[1], 32);
        std::vector<float> lo(size_t(fsh.groups())), hi(lo.size());
        fake_quant_minmax(k.W[size_t(i)].data(), fsh, lo.data(), hi.data());
        FakeQuantConfig fc;
        fc.bits = 4;
        fc.group_size = 32;
        eng.add_tuned_layer(i, fsh, fc, /*minmax=*/true, k.W[size_t(i)].data(), lo.data(), hi.data());
    }
    std::mt19937 g(5);
    TuneRun r;
    for (int it = 0; it < iters; ++it) {
        const int64_t b = it < iters / 2 ? batch : batch - 1;
        std::vector<int64_t> idx(static_cast<size_t>(b));
        for (auto& v : idx) v = int64_t(g() % uint32_t(n));
        r.losses.push_back(eng.quantize_forward_backward(idx.data(), b, /*mask_last_token=*/true, 1000.0));
        if (it == 1) eng.snapshot_tuned_layers();
        const float lr = 5e-3f * float(iters - it) / float(iters);
        eng.step_tuned_layers(std::vector<std::array<float, 2>>(kNumBlockLinears, {lr, 0.5f * lr}));
    }
    for (int i = 0; i < kNumBlockLinears; ++i) {
        std::vector<float> v, a, be, bv, ba, bb;
        eng.get_tuned_params(i, false, v, a, be);
        eng.get_tuned_params(i, true, bv, ba, bb);
        r.V.push_back(v);
        r.alpha.push_back(a);
        r.beta.push_back(be);
        r.bestV.push_back(bv);
    }
    return r;
}

void inputs(int64_t n, int64_t L, int64_t H, std::vector<float>& X, std::vector<float>& R) {
    std::mt19937 g(3);
    std::normal_distribution<float> nd(0.f, 1.f);
    X.resize(size_t(n * L * H));
    R.resize(X.size());
    for (auto& x : X) x = nd(g);
    for (auto& x : R) x = nd(g);
}

double changed_fraction(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
    size_t diff = 0, total = 0;
    for (size_t i = 0; i < a.size(); ++i)
        for (size_t j = 0; j < a[i].size(); ++j) {
            total += 1;
            diff += a[i][j] != b[i][j];
        }
    return total ? double(diff) / double(total) : 0.0;
}

}  // namespace

TEST(CudaGraphStep, ReplayEqualsEagerBitForBit) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const cuda_test::Case k = cuda_test::random_case(/*H=*/96, /*nq=*/6, /*nkv=*/2, /*D=*/16, /*I=*/160, true, 21);
    const int64_t n = 7, L = 23, batch = 3;
    std::vector<float> X, R;
    inputs(n, L, k.c.dims.hidden, X, R);
    std::vector<uint8_t> mask(size_t(n * L));
    std::mt19937 g(9);
    for (auto& m : mask) m = uint8_t(g() % 4 != 0);
    const TuneRun eager = tune(k, n, L, batch, X, R, &mask, false, 8);
    const TuneRun graph = tune(k, n, L, batch, X, R, &mask, true, 8);
    ASSERT_EQ(eager.losses.size(), graph.losses.size());
    for (size_t i = 0; i < eager.losses.size(); ++i) {
        std::printf("  iter %zu: eager %.9g graph %.9g\n", i, eager.losses[i], graph.losses[i]);
        EXPECT_EQ(eager.losses[i], graph.losses[i]) << "iteration " << i;
    }
    EXPECT_EQ(changed_fraction(eager.V, graph.V), 0.0);
    EXPECT_EQ(changed_fraction(eager.alpha, graph.alpha), 0.0);
    EXPECT_EQ(changed_fraction(eager.beta, graph.beta), 0.0);
    EXPECT_EQ(changed_fraction(eager.bestV, graph.bestV), 0.0);
    // and the steps did change V (else the comparison above would be vacuous)
    std::vector<std::vector<float>> zeros;
    for (const auto& v : eager.V) zeros.emplace_back(v.size(), 0.f);
    EXPECT_GT(changed_fraction(eager.V, zeros), 0.01);
}

// The SignSGD step that also writes the next iteration's fake-quantized weights (the default) against the separate
// fake-quant forward at the start of every iteration (AUTOROUND_NO_FUSED_FQ=1), eager and replayed from graphs:
// the same losses and parameters bit for bit (deterministic attention path, head_dim 16).
TEST(CudaGraphStep, FusedFakeQuantEqualsSeparateForward) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const cuda_test::Case k = cuda_test::random_case(/*H=*/96, /*nq=*/6, /*nkv=*/2, /*D=*/16, /*I=*/160, true, 31);
    const int64_t n = 7, L = 23, batch = 3;
    std::vector<float> X, R;
    inputs(n, L, k.c.dims.hidden, X, R);
    for (bool graphs : {false, true}) {
        SCOPED_TRACE(graphs ? "graphs" : "eager");
        const TuneRun fused = tune(k, n, L, batch, X, R, nullptr, graphs, 8);
        setenv("AUTOROUND_NO_FUSED_FQ", "1", 1);
        const TuneRun separate = tune(k, n, L, batch, X, R, nullptr, graphs, 8);
        unsetenv("AUTOROUND_NO_FUSED_FQ");
        ASSERT_EQ(fused.losses.size(), separate.losses.size());
        for (size_t i = 0; i < fused.losses.size(); ++i) EXPECT_EQ(fused.losses[i], separate.losses[i]) << "iter " << i;
        EXPECT_EQ(changed_fraction(fused.V, separate.V), 0.0);
        // the fused step stores α, β clamped to [0, 1] right away (the separate forward clamps them at the start of
        // the next iteration): equal once clamped
        auto clamped = [](std::vector<std::vector<float>> v) {
            for (auto& r : v)
                for (float& x : r) x = std::min(std::max(x, 0.f), 1.f);
            return v;
        };
        EXPECT_EQ(changed_fraction(clamped(fused.alpha), clamped(separate.alpha)), 0.0);
        EXPECT_EQ(changed_fraction(clamped(fused.beta), clamped(separate.beta)), 0.0);
        EXPECT_EQ(changed_fraction(fused.bestV, separate.bestV), 0.0);
    }
}

TEST(CudaGraphStep, FlashAttentionReplayMatchesEager) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const cuda_test::Case k = cuda_test::random_case(/*H=*/128, /*nq=*/4, /*nkv=*/2, /*D=*/64, /*I=*/256, true, 23);
    const int64_t n = 5, L = 70, batch = 2;
    std::vector<float> X, R;
    inputs(n, L, k.c.dims.hidden, X, R);
    const TuneRun eager = tune(k, n, L, batch, X, R, nullptr, false, 6);
    const TuneRun graph = tune(k, n, L, batch, X, R, nullptr, true, 6);
    for (size_t i = 0; i < eager.losses.size(); ++i) {
        std::printf("  iter %zu: eager %.9g graph %.9g\n", i, eager.losses[i], graph.losses[i]);
        EXPECT_NEAR(graph.losses[i], eager.losses[i], 1e-4 * std::fabs(eager.losses[i])) << "iteration " << i;
    }
    // dq's atomics may flip the sign of a few near-zero q / k weight gradients, i.e. a few ±lr steps of V
    const double fv = changed_fraction(eager.V, graph.V);
    std::printf("  V entries that differ: %.4f %%\n", 100.0 * fv);
    EXPECT_LT(fv, 0.02);
}
