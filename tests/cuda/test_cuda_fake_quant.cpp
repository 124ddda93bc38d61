// tests/cuda/test_cuda_fake_quant.cpp — the on-device fake quantization + SignSGD step
// (ops/cuda/fake_quant_device.h) against the CPU scalar reference (ops/cpu/fake_quant.h, signsgd_step), and the
// GPU tuner with it against the GPU tuner with the host fake quantization (SignRoundOptions::cuda_host_fake_quant).
// Shapes: groups that pad the last one (in 200, gs 32), per-channel (in < gs, gs -1), 128-wide groups (the 16-byte
// path), full groups of 32–256 (the register-resident backward, dead segments in the last warp), a group size that
// is not a multiple of 4 (the 1-element path), 2/3/4/8 bits, sym and asym,
// with and without min/max tuning, α/β outside [0, 1] (clamped), an all-zero row (τ-clamped scale) and a sym tie;
// and the step that also writes the next W_q (fused) against a separate forward after the step, bit for bit.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/fake_quant_device.h"
#include "quant/signround_tuner.h"
#include "cuda_test_util.h"

using namespace autoround;

namespace {

std::vector<float> uniform(size_t n, std::mt19937& g, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}

void check_layer(int64_t out, int64_t in, int64_t group_size, int bits, bool sym, bool minmax, uint32_t seed) {
    SCOPED_TRACE("out " + std::to_string(out) + " in " + std::to_string(in) + " gs " + std::to_string(group_size) +
                 " bits " + std::to_string(bits) + (sym ? " sym" : " asym") + (minmax ? " minmax" : ""));
    std::mt19937 g(seed);
    const FakeQuantShape sh = fake_quant_shape(out, in, group_size);
    FakeQuantConfig cfg;
    cfg.bits = bits;
    cfg.group_size = group_size;
    cfg.sym = sym;
    std::vector<float> W = uniform(size_t(out * in), g, -0.2f, 0.2f);
    for (float& w : W) w = round_to_bf16(w);
    std::fill_n(W.begin(), in, 0.f);  // row 0: all zero -> the scale is τ-clamped
    if (out > 1) {                     // row 1: a sym tie (max = -min) in its first group
        W[size_t(in)] = 0.125f;
        W[size_t(in) + 1] = -0.125f;
    }
    std::vector<float> V = uniform(size_t(sh.out * sh.padded_in()), g, -0.5f, 0.5f);
    std::vector<float> al = uniform(size_t(sh.groups()), g, 0.4f, 1.2f), be = uniform(size_t(sh.groups()), g, 0.4f, 1.2f);
    std::vector<float> wmin(size_t(sh.groups())), wmax(wmin.size());
    fake_quant_minmax(W.data(), sh, wmin.data(), wmax.data());
    const std::vector<float> dWq = uniform(size_t(out * in), g, -1.f, 1.f);
    const float lr_v = 0.01f, lr_m = 0.005f;

    FakeQuantTensors<float> t;
    t.W = W.data();
    t.V = V.data();
    t.alpha = al.data();
    t.beta = be.data();
    t.wmin = wmin.data();
    t.wmax = wmax.data();
    const FakeQuantDeviceResult dev = fake_quant_device_run(t, sh, cfg, minmax, dWq, lr_v, lr_m);
    {  // the register-resident backward (where it applies) and the one-warp-per-group kernel: the same bits
        const FakeQuantDeviceResult w = fake_quant_device_run(t, sh, cfg, minmax, dWq, lr_v, lr_m, true);
        EXPECT_EQ(dev.gV, w.gV);
        EXPECT_EQ(dev.V, w.V);
        EXPECT_EQ(dev.gA, w.gA);
        EXPECT_EQ(dev.gB, w.gB);
        EXPECT_EQ(dev.alpha, w.alpha);
        EXPECT_EQ(dev.beta, w.beta);
    }

    // the step that also writes the next W_q (the engine's fused step) against a separate forward after the step
    for (bool out_bf16 : {false, true}) {
        FakeQuantConfig c2 = cfg;
        c2.out_bf16 = out_bf16;
        const FakeQuantDeviceFusedCheck fc = fake_quant_device_fused_check(t, sh, c2, minmax, dWq, lr_v, lr_m);
        EXPECT_EQ(fc.fused, fc.separate) << "fused next W_q (FP32), out_bf16 " << out_bf16;
        EXPECT_EQ(fc.fused_bf16, fc.separate_bf16) << "fused next W_q (bf16), out_bf16 " << out_bf16;
        EXPECT_NE(fc.fused, fc.first) << "the step changed nothing: the comparison above would be vacuous";
    }

    // CPU: clamp, reference forward and backward, SignSGD
    std::vector<float> a = al, b = be;
    if (minmax) fake_quant_clamp_minmax(a.data(), b.data(), sh.groups());
    FakeQuantTensors<float> tc = t;
    tc.alpha = minmax ? a.data() : nullptr;
    tc.beta = minmax ? b.data() : nullptr;
    std::vector<float> Wq(W.size()), gV(V.size()), gA(a.size()), gB(b.size());
    fake_quant_forward_ref<float>(tc, sh, cfg, Wq.data(), nullptr, nullptr);
    fake_quant_backward_ref<float>(tc, sh, cfg, dWq.data(), gV.data(), minmax ? gA.data() : nullptr,
                                   minmax ? gB.data() : nullptr);
    EXPECT_EQ(dev.Wq, Wq);  // bit for bit
    EXPECT_EQ(dev.gV, gV);  // g·s per element: the same single op
    std::vector<float> Vs = V;
    signsgd_step(Vs.data(), gV.data(), int64_t(Vs.size()), lr_v);
    EXPECT_EQ(dev.V, Vs);
    if (!minmax) return;
    double scale = 0;
    for (float x : gA) scale = std::max(scale, double(std::fabs(x)));
    for (float x : gB) scale = std::max(scale, double(std::fabs(x)));
    ASSERT_GT(scale, 0.0);
    for (size_t i = 0; i < gA.size(); ++i) {  // ds, dz are summed in another order
        EXPECT_NEAR(dev.gA[i], gA[i], 1e-5 * scale) << "dalpha " << i;
        EXPECT_NEAR(dev.gB[i], gB[i], 1e-5 * scale) << "dbeta " << i;
    }
    std::vector<float> as = a, bs = b;
    signsgd_step(as.data(), gA.data(), int64_t(as.size()), lr_m);
    signsgd_step(bs.data(), gB.data(), int64_t(bs.size()), lr_m);
    for (size_t i = 0; i < as.size(); ++i) {  // the same step wherever the gradient's sign is unambiguous
        if (std::fabs(gA[i]) > 1e-4 * scale) {
            EXPECT_EQ(dev.alpha[i], as[i]) << "alpha " << i;
        }
        if (std::fabs(gB[i]) > 1e-4 * scale) {
            EXPECT_EQ(dev.beta[i], bs[i]) << "beta " << i;
        }
    }
}

}  // namespace

TEST(FakeQuantDevice, MatchesTheCpuReference) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    uint32_t seed = 1;
    for (int bits : {2, 3, 4, 8})
        for (bool sym : {true, false}) {
            check_layer(7, 200, 32, bits, sym, true, seed++);   // 7 groups per row, the last one 8 wide + padding
            check_layer(5, 96, 128, bits, sym, true, seed++);   // in < gs: per-channel
            check_layer(3, 257, -1, bits, sym, false, seed++);  // per-channel, no min/max tuning
            // the 16-byte path: 128-wide groups; per-channel rows of 384 (three 4-wide steps per lane); and the
            // 1-element path for a group size that is not a multiple of 4
            check_layer(4, 512, 128, bits, sym, true, seed++);
            check_layer(2, 384, -1, bits, sym, true, seed++);
            check_layer(3, 90, 30, bits, sym, true, seed++);
            // the register-resident backward (full groups of 32 / 64 / 128 / 256: 8 / 4 / 2 / 1 per warp), with
            // group counts that leave dead segments in the last warp
            check_layer(5, 96, 32, bits, sym, true, seed++);
            check_layer(3, 192, 64, bits, sym, true, seed++);
            check_layer(7, 384, 128, bits, sym, true, seed++);
            check_layer(3, 512, 256, bits, sym, true, seed++);
            check_layer(3, 256, -1, bits, sym, false, seed++);
        }
}

// The GPU tuner keeping V, α, β on the device against the same tuner doing the fake quantization on the host:
// identical first loss (the same W_q reach the same engine), then trajectories that differ only through the
// summation order of dα, dβ.
TEST(FakeQuantDevice, TunerMatchesTheHostFakeQuantPath) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    cuda_test::Case k = cuda_test::random_case(/*H=*/96, /*nq=*/6, /*nkv=*/2, /*D=*/16, /*I=*/192, true, 5);
    for (auto& w : k.W)
        for (float& x : w) x = round_to_bf16(x);
    const int64_t n = 6, L = 33, H = 96;
    std::mt19937 g(3);
    std::vector<float> X = uniform(size_t(n * L * H), g, -1.f, 1.f), R(X.size());
    {  // targets: the FP block's output
        Qwen3BlockGrad<float> blk(k.c);
        std::array<const float*, kNumBlockLinears> wp{};
        for (int i = 0; i < kNumBlockLinears; ++i) wp[size_t(i)] = k.W[size_t(i)].data();
        block_forward_all(blk, wp, X.data(), n, L, n, R.data());
    }
    std::vector<BlockLayerSpec> layers;
    for (int i = 0; i < kNumBlockLinears; ++i)
        layers.push_back({i, std::string("layer.") + block_linear_name(i), LayerScheme{4, 32, i % 2 == 0, "int"}});
    auto run = [&](bool host_fq) {
        SignRoundOptions o;
        o.iters = 12;
        o.batch_size = 3;
        o.progress = false;
        o.cuda = true;
        o.cuda_host_fake_quant = host_fq;
        Qwen3BlockGrad<float> blk(k.c);
        PythonRandom rng(7);
        return tune_block(blk, k.W, layers, X.data(), R.data(), n, L, o, rng, "block.0", 0);
    };
    const BlockTuneResult host = run(true), dev = run(false);
    ASSERT_EQ(host.losses.size(), dev.losses.size());
    EXPECT_EQ(dev.losses[0], host.losses[0]);
    EXPECT_LT(dev.report.best_loss, dev.report.initial_loss);
    EXPECT_NEAR(dev.report.best_loss, host.report.best_loss, 0.05 * host.report.best_loss);
    size_t same = 0, total = 0;
    for (const auto& [name, q] : host.quantized) {
        const auto& d = dev.quantized.at(name).codes;
        for (size_t i = 0; i < q.codes.size(); ++i) same += q.codes[i] == d[i];
        total += q.codes.size();
    }
    EXPECT_GT(double(same) / double(total), 0.95) << same << " of " << total << " codes equal";
}
