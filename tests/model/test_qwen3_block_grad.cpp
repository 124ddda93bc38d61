// tests/model/test_qwen3_block_grad.cpp — the differentiable Qwen3 block (model/qwen3_block_grad.h):
//  * float64 gradients of the masked-MSE loss wrt each of the 7 linear weights, wrt the block input X
//    (dX, also through two chained blocks as --nblocks tunes them), and through the
//    fake quantization wrt V, α, β, against central finite differences (small awkward shapes:
//    hidden 24, intermediate 40, GQA 4/2 and 3/1, head_dim 8/16, odd L, group size 16 with padded
//    last groups, bits 2/3/4/8, sym and asym). Fake quant is differenced through the frozen STE
//    surrogate of tests/ops/test_grad_ops.cpp (see the comment there).
//  * the float block against the float64 block (forward and gradients) on small and nano shapes;
//  * block 0 of qwen3-nano against Qwen3Model::forward's "block_out" hook;
//  * the loss and its mask.
// A disabled test times one forward+backward at qwen3-nano shapes, B=8, L=512:
//   autoround_tests --gtest_also_run_disabled_tests --gtest_filter='*Timing*'
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "model/qwen3_block_grad.h"
#include "model/qwen3_model.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/rope.h"
#include "../ops/grad_test_util.h"

using namespace autoround;


namespace {

const std::string kShared = AR_SHARED_DIR;

using grad_test::randn_d;
using grad_test::uniform_d;
std::vector<float> to_f(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }
std::vector<double> to_d(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// A small random block (float64 constants).
Qwen3BlockConsts<double> small_consts(int64_t nq, int64_t nkv, int64_t D, bool bias, uint32_t seed) {
    Qwen3BlockConsts<double> c;
    c.dims.hidden = 24;
    c.dims.n_q_heads = nq;
    c.dims.n_kv_heads = nkv;
    c.dims.head_dim = D;
    c.dims.intermediate = 40;
    c.dims.rms_eps = 1e-6;
    c.dims.qk_norm = true;
    c.input_norm = randn_d(24, seed, 0.2, 1.0);
    c.post_attn_norm = randn_d(24, seed + 1, 0.2, 1.0);
    c.q_norm = randn_d(D, seed + 2, 0.2, 1.0);
    c.k_norm = randn_d(D, seed + 3, 0.2, 1.0);
    if (bias) {
        c.q_bias = randn_d(nq * D, seed + 4, 0.1);
        c.k_bias = randn_d(nkv * D, seed + 5, 0.1);
        c.v_bias = randn_d(nkv * D, seed + 6, 0.1);
    }
    RopeConfig rc;
    rc.theta = 10000.0;
    c.inv_freq = rope_inv_freq(rc, static_cast<int>(D));
    return c;
}

std::array<std::vector<double>, kNumBlockLinears> random_weights(const Qwen3BlockDims& d, uint32_t seed) {
    std::array<std::vector<double>, kNumBlockLinears> W;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const auto [out, in] = block_linear_shape(d, i);
        W[i] = randn_d(out * in, seed + i, 1.0 / std::sqrt(double(in)));
        for (double& w : W[i]) w = round_to_bf16(static_cast<float>(w));
    }
    return W;
}

template <typename T>
typename Qwen3BlockGrad<T>::Weights ptrs(const std::array<std::vector<T>, kNumBlockLinears>& W) {
    typename Qwen3BlockGrad<T>::Weights p;
    for (int i = 0; i < kNumBlockLinears; ++i) p[i] = W[i].data();
    return p;
}

// loss(W) = masked MSE(block(X; W), ref) with the last token of every sample masked.
struct SmallProblem {
    Qwen3BlockConsts<double> c;
    int64_t B = 2, L = 5;
    std::vector<double> X, ref;
    std::vector<uint8_t> mask;

    SmallProblem(int64_t nq, int64_t nkv, int64_t D, bool bias, uint32_t seed) : c(small_consts(nq, nkv, D, bias, seed)) {
        X = randn_d(B * L * 24, seed + 10);
        ref = randn_d(B * L * 24, seed + 11);
        mask = last_token_mask(B, L);
    }
    double loss(const std::array<std::vector<double>, kNumBlockLinears>& W) const {
        Qwen3BlockGrad<double> blk(c);
        std::vector<double> Y(X.size());
        blk.forward(X.data(), B, L, ptrs(W), Y.data());
        return masked_mse_loss<double>(Y.data(), ref.data(), mask.data(), B, L, 24, nullptr);
    }
    // dL/dW for all 7 linears.
    std::array<std::vector<double>, kNumBlockLinears> grads(const std::array<std::vector<double>, kNumBlockLinears>& W,
                                                           double* loss_out = nullptr) const {
        Qwen3BlockGrad<double> blk(c);
        std::vector<double> Y(X.size()), dY(X.size());
        blk.forward(X.data(), B, L, ptrs(W), Y.data());
        const double l = masked_mse_loss<double>(Y.data(), ref.data(), mask.data(), B, L, 24, dY.data());
        if (loss_out) *loss_out = l;
        std::array<std::vector<double>, kNumBlockLinears> dW;
        typename Qwen3BlockGrad<double>::Grads gp;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            dW[i].assign(W[i].size(), 0.0);
            gp[i] = dW[i].data();
        }
        blk.backward(dY.data(), gp);
        return dW;
    }
};

void expect_fd(double fd, double g, double rtol, double atol, const std::string& what) {
    EXPECT_NEAR(fd, g, atol + rtol * std::max(std::abs(fd), std::abs(g))) << what;
}

std::vector<size_t> pick(size_t n, size_t count, uint32_t seed) {
    std::mt19937 g(seed);
    std::vector<size_t> idx;
    for (size_t k = 0; k < count; ++k) idx.push_back(g() % n);
    return idx;
}

}  // namespace

TEST(Qwen3BlockGrad, WeightGradientsMatchFiniteDifferences) {
    struct Cfg { int64_t nq, nkv, D; bool bias; };
    for (Cfg cf : {Cfg{4, 2, 8, false}, Cfg{3, 1, 16, true}}) {
        SmallProblem p(cf.nq, cf.nkv, cf.D, cf.bias, 7);
        auto W = random_weights(p.c.dims, 70);
        double l0 = 0;
        const auto dW = p.grads(W, &l0);
        EXPECT_GT(l0, 0.1);
        const double h = 1e-5;  // loss ~ 1: round-off of the quotient ~ 1e-11
        for (int i = 0; i < kNumBlockLinears; ++i) {
            double gmax = 0;
            for (double g : dW[i]) gmax = std::max(gmax, std::abs(g));
            EXPECT_GT(gmax, 1e-6) << block_linear_name(i) << ": gradient is all zero";
            for (size_t e : pick(W[i].size(), 8, 100 + i)) {
                const double w0 = W[i][e];
                W[i][e] = w0 + h;
                const double lp = p.loss(W);
                W[i][e] = w0 - h;
                const double lm = p.loss(W);
                W[i][e] = w0;
                expect_fd((lp - lm) / (2 * h), dW[i][e], 1e-5, 1e-9,
                          std::string(block_linear_name(i)) + " nq " + std::to_string(cf.nq) + " index " + std::to_string(e));
            }
        }
    }
}

// dL/dX (the block input: through the residual, the input RMSNorm and q/k/v, and the post-attention
// norm path) against central differences at 48 random input elements; asking for dX leaves dW unchanged,
// and dX may alias dY.
TEST(Qwen3BlockGrad, InputGradientMatchesFiniteDifferences) {
    struct Cfg { int64_t nq, nkv, D; bool bias; };
    for (Cfg cf : {Cfg{4, 2, 8, false}, Cfg{3, 1, 16, true}}) {
        SmallProblem p(cf.nq, cf.nkv, cf.D, cf.bias, 31);
        const auto W = random_weights(p.c.dims, 130);
        const auto dW_only = p.grads(W);
        const size_t NH = p.X.size();
        Qwen3BlockGrad<double> blk(p.c);
        std::vector<double> Y(NH), dY(NH), dX(NH, -1.0);
        blk.forward(p.X.data(), p.B, p.L, ptrs(W), Y.data());
        masked_mse_loss<double>(Y.data(), p.ref.data(), p.mask.data(), p.B, p.L, 24, dY.data());
        std::array<std::vector<double>, kNumBlockLinears> dW;
        Qwen3BlockGrad<double>::Grads gp;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            dW[i].assign(W[i].size(), 0.0);
            gp[i] = dW[i].data();
        }
        blk.backward(dY.data(), gp, false, dX.data());
        for (int i = 0; i < kNumBlockLinears; ++i) EXPECT_EQ(dW[i], dW_only[i]) << block_linear_name(i);

        auto loss_x = [&](const std::vector<double>& X) {
            Qwen3BlockGrad<double> b(p.c);
            std::vector<double> out(NH);
            b.forward(X.data(), p.B, p.L, ptrs(W), out.data());
            return masked_mse_loss<double>(out.data(), p.ref.data(), p.mask.data(), p.B, p.L, 24, nullptr);
        };
        const double h = 1e-5;
        std::vector<double> X = p.X;
        double gmax = 0;
        for (size_t e : pick(NH, 48, 900)) {
            const double x0 = X[e];
            X[e] = x0 + h;
            const double lp = loss_x(X);
            X[e] = x0 - h;
            const double lm = loss_x(X);
            X[e] = x0;
            expect_fd((lp - lm) / (2 * h), dX[e], 1e-5, 1e-9, "dX nq " + std::to_string(cf.nq) + " index " + std::to_string(e));
            gmax = std::max(gmax, std::abs(dX[e]));
        }
        for (double g : dX) gmax = std::max(gmax, std::abs(g));
        EXPECT_GT(gmax, 1e-4);
        // the last token of each sample is masked and only attends to itself-and-earlier: no gradient
        for (int64_t b = 0; b < p.B; ++b)
            for (int64_t k = 0; k < 24; ++k) EXPECT_EQ(dX[(b * p.L + p.L - 1) * 24 + k], 0.0);

        // dX written over dY (aliasing) gives the same values; weight gradients may be skipped entirely
        std::vector<double> g(NH);
        blk.forward(p.X.data(), p.B, p.L, ptrs(W), Y.data());
        masked_mse_loss<double>(Y.data(), p.ref.data(), p.mask.data(), p.B, p.L, 24, g.data());
        blk.backward(g.data(), Qwen3BlockGrad<double>::Grads{}, false, g.data());
        for (size_t e = 0; e < NH; ++e) ASSERT_NEAR(g[e], dX[e], 1e-13 * (1.0 + std::abs(dX[e]))) << e;
    }
}

// Qwen3-VL calibration (set_mrope_positions): the block with shared 3-D M-RoPE positions (an image span with
// t constant and h/w varying, then text) against central differences, for dW of q/k (the rotated
// projections) and dX; equal position rows 0..L-1 reproduce the 1-D block exactly, and the image positions
// change the output (so the positions really reach the rotation).
TEST(Qwen3BlockGrad, MropePositionsGradientsMatchFiniteDifferences) {
    const int64_t B = 2, L = 7, H = 24, nq = 2, nkv = 1, D = 16;  // D/2 = 8 = section 2 + 3 + 3
    const Qwen3BlockConsts<double> c = small_consts(nq, nkv, D, false, 57);
    const std::vector<int> section = {2, 3, 3};
    // tokens: text 0, image 2x2 merged tokens (t = 1, h = 1..2, w = 1..2), then text continuing at 3
    const std::vector<int32_t> pos3 = {0, 1, 1, 1, 1, 3, 4,   // t
                                       0, 1, 1, 2, 2, 3, 4,   // h
                                       0, 1, 2, 1, 2, 3, 4};  // w
    std::vector<int32_t> linear(3 * L);
    for (int64_t r = 0; r < 3; ++r)
        for (int64_t t = 0; t < L; ++t) linear[r * L + t] = static_cast<int32_t>(t);
    const std::vector<double> X = randn_d(B * L * H, 58), ref = randn_d(B * L * H, 59);
    const std::vector<uint8_t> mask = last_token_mask(B, L);
    auto W = random_weights(c.dims, 60);
    auto run = [&](const std::vector<int32_t>& p, const std::array<std::vector<double>, kNumBlockLinears>& w,
                   const std::vector<double>& x, std::vector<double>* dY) {
        Qwen3BlockGrad<double> blk(c);
        if (!p.empty()) blk.set_mrope_positions(p, section);
        std::vector<double> Y(x.size());
        blk.forward(x.data(), B, L, ptrs(w), Y.data());
        const double l = masked_mse_loss<double>(Y.data(), ref.data(), mask.data(), B, L, H, dY ? dY->data() : nullptr);
        return std::make_pair(l, Y);
    };
    EXPECT_EQ(run(linear, W, X, nullptr).second, run({}, W, X, nullptr).second);  // bitwise
    const auto [l_img, Y_img] = run(pos3, W, X, nullptr);
    const std::vector<double> Y_1d = run({}, W, X, nullptr).second;
    double diff = 0;
    for (size_t i = 0; i < Y_img.size(); ++i) diff = std::max(diff, std::abs(Y_img[i] - Y_1d[i]));
    EXPECT_GT(diff, 1e-3);

    Qwen3BlockGrad<double> blk(c);
    blk.set_mrope_positions(pos3, section);
    std::vector<double> Y(X.size()), dY(X.size()), dX(X.size());
    blk.forward(X.data(), B, L, ptrs(W), Y.data());
    masked_mse_loss<double>(Y.data(), ref.data(), mask.data(), B, L, H, dY.data());
    std::array<std::vector<double>, kNumBlockLinears> dW;
    Qwen3BlockGrad<double>::Grads gp{};
    for (int i : {kLinQ, kLinK}) {
        dW[i].assign(W[i].size(), 0.0);
        gp[i] = dW[i].data();
    }
    blk.backward(dY.data(), gp, false, dX.data());
    const double h = 1e-5;
    for (int i : {kLinQ, kLinK})
        for (size_t e : pick(W[i].size(), 10, 300 + i)) {
            const double w0 = W[i][e];
            W[i][e] = w0 + h;
            const double lp = run(pos3, W, X, nullptr).first;
            W[i][e] = w0 - h;
            const double lm = run(pos3, W, X, nullptr).first;
            W[i][e] = w0;
            expect_fd((lp - lm) / (2 * h), dW[i][e], 1e-5, 1e-9, std::string(block_linear_name(i)) + " " + std::to_string(e));
        }
    std::vector<double> Xp = X;
    for (size_t e : pick(X.size(), 24, 310)) {
        const double x0 = Xp[e];
        Xp[e] = x0 + h;
        const double lp = run(pos3, W, Xp, nullptr).first;
        Xp[e] = x0 - h;
        const double lm = run(pos3, W, Xp, nullptr).first;
        Xp[e] = x0;
        expect_fd((lp - lm) / (2 * h), dX[e], 1e-5, 1e-9, "dX " + std::to_string(e));
    }
    // positions for another length are refused
    Qwen3BlockGrad<double> other(c);
    other.set_mrope_positions(pos3, section);
    std::vector<double> Y2(static_cast<size_t>(B * (L - 1) * H));
    EXPECT_THROW(other.forward(X.data(), B, L - 1, ptrs(W), Y2.data()), Error);
    EXPECT_THROW(other.set_mrope_positions({1, 2}, section), Error);
}

// Two blocks chained (what --nblocks 2 tunes): the loss at the second block's output, differentiated
// wrt the FIRST block's weights through the second block's dX, against central differences.
TEST(Qwen3BlockGrad, ChainedBlocksPassGradientsThroughDX) {
    SmallProblem p(4, 2, 8, false, 41);
    const Qwen3BlockConsts<double> c2 = small_consts(4, 2, 8, false, 55);
    auto W1 = random_weights(p.c.dims, 140);
    const auto W2 = random_weights(c2.dims, 150);
    const size_t NH = p.X.size();
    auto loss = [&](std::vector<double>* dW1) {
        Qwen3BlockGrad<double> b1(p.c), b2(c2);
        std::vector<double> mid(NH), Y(NH), g(NH);
        b1.forward(p.X.data(), p.B, p.L, ptrs(W1), mid.data());
        b2.forward(mid.data(), p.B, p.L, ptrs(W2), Y.data());
        const double l = masked_mse_loss<double>(Y.data(), p.ref.data(), p.mask.data(), p.B, p.L, 24, dW1 ? g.data() : nullptr);
        if (dW1) {
            b2.backward(g.data(), Qwen3BlockGrad<double>::Grads{}, false, g.data());
            Qwen3BlockGrad<double>::Grads gp{};
            for (int i = 0; i < kNumBlockLinears; ++i) gp[i] = dW1[i].data();
            b1.backward(g.data(), gp);
        }
        return l;
    };
    std::vector<double> dW1[kNumBlockLinears];
    for (int i = 0; i < kNumBlockLinears; ++i) dW1[i].assign(W1[i].size(), 0.0);
    EXPECT_GT(loss(dW1), 0.1);
    const double h = 1e-5;
    for (int i = 0; i < kNumBlockLinears; ++i)
        for (size_t e : pick(W1[i].size(), 6, 800 + i)) {
            const double w0 = W1[i][e];
            W1[i][e] = w0 + h;
            const double lp = loss(nullptr);
            W1[i][e] = w0 - h;
            const double lm = loss(nullptr);
            W1[i][e] = w0;
            expect_fd((lp - lm) / (2 * h), dW1[i][e], 1e-5, 1e-9,
                      std::string("block 1 of 2: ") + block_linear_name(i) + " index " + std::to_string(e));
        }
}

TEST(Qwen3BlockGrad, FakeQuantParameterGradientsMatchFiniteDifferences) {
    SmallProblem p(4, 2, 8, false, 11);
    const auto W0 = random_weights(p.c.dims, 90);
    const int bits_of[kNumBlockLinears] = {2, 3, 4, 8, 4, 3, 2};
    struct Layer {
        FakeQuantShape sh;
        FakeQuantConfig cfg;
        std::vector<double> V, al, be, wmin, wmax;
        std::function<std::vector<double>(const std::vector<double>&, const std::vector<double>&,
                                          const std::vector<double>&)>
            surrogate;
    };
    std::array<Layer, kNumBlockLinears> Ls;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        Layer& l = Ls[i];
        const auto [out, in] = block_linear_shape(p.c.dims, i);
        l.sh = fake_quant_shape(out, in, 16);  // in 24 → 2 groups (8 padded), 32 → 2, 40 → 3 (8 padded)
        l.cfg.bits = bits_of[i];
        l.cfg.group_size = 16;
        l.cfg.sym = i % 2 == 0;
        l.cfg.scale_fp16 = false;
        l.cfg.out_bf16 = false;
        l.V = uniform_d(out * l.sh.padded_in(), 200 + i, -0.3, 0.3);
        l.al = uniform_d(l.sh.groups(), 300 + i, 0.6, 0.95);
        l.be = uniform_d(l.sh.groups(), 400 + i, 0.6, 0.95);
        grad_test::nudge_fake_quant_params(W0[i], l.sh, l.cfg, l.V, l.al, l.be);
        l.wmin.resize(l.sh.groups());
        l.wmax.resize(l.sh.groups());
        fake_quant_minmax<double>(W0[i].data(), l.sh, l.wmin.data(), l.wmax.data());
        l.surrogate = grad_test::frozen_fake_quant(W0[i], l.sh, l.cfg, l.V, l.al, l.be);
    }
    auto quantized = [&]() {
        std::array<std::vector<double>, kNumBlockLinears> Wq;
        for (int i = 0; i < kNumBlockLinears; ++i) Wq[i] = Ls[i].surrogate(Ls[i].V, Ls[i].al, Ls[i].be);
        return Wq;
    };
    // analytic: block backward → dW_q → fake-quant backward
    const auto Wq = quantized();
    for (int i = 0; i < kNumBlockLinears; ++i) {  // the surrogate is the real fake quant at the base point
        std::vector<double> y(Wq[i].size());
        FakeQuantTensors<double> t{W0[i].data(), Ls[i].V.data(), Ls[i].al.data(), Ls[i].be.data(), Ls[i].wmin.data(),
                                   Ls[i].wmax.data()};
        fake_quant_forward_ref<double>(t, Ls[i].sh, Ls[i].cfg, y.data(), nullptr, nullptr);
        for (size_t e = 0; e < y.size(); ++e) ASSERT_NEAR(y[e], Wq[i][e], 1e-12) << block_linear_name(i);
    }
    const auto dWq = p.grads(Wq);
    for (int i = 0; i < kNumBlockLinears; ++i) {
        Layer& l = Ls[i];
        std::vector<double> dV(l.V.size()), dA(l.al.size()), dB(l.be.size());
        FakeQuantTensors<double> t{W0[i].data(), l.V.data(), l.al.data(), l.be.data(), l.wmin.data(), l.wmax.data()};
        fake_quant_backward_ref<double>(t, l.sh, l.cfg, dWq[i].data(), dV.data(), dA.data(), dB.data());
        const std::string tag = std::string(block_linear_name(i)) + (l.cfg.sym ? " sym" : " asym") + " bits " +
                                std::to_string(l.cfg.bits);
        auto fd = [&](std::vector<double>& param, size_t e, double h) {
            const double x0 = param[e];
            param[e] = x0 + h;
            const double lp = p.loss(quantized());
            param[e] = x0 - h;
            const double lm = p.loss(quantized());
            param[e] = x0;
            return (lp - lm) / (2 * h);
        };
        // the surrogate is smooth; V enters W_q scaled by s (~1e-3..1e-1), hence the larger step
        for (size_t e : pick(l.V.size(), 6, 500 + i)) expect_fd(fd(l.V, e, 1e-4), dV[e], 1e-5, 1e-9, "dV " + tag);
        for (size_t e : pick(l.al.size(), 3, 600 + i))
            expect_fd(fd(l.al, e, 1e-5), dA[e], 1e-5, 1e-9, "dalpha " + tag);
        for (size_t e : pick(l.be.size(), 3, 700 + i))
            expect_fd(fd(l.be, e, 1e-5), dB[e], 1e-5, 1e-9, "dbeta " + tag);
        double amax = 0;
        for (double g : dA) amax = std::max(amax, std::abs(g));
        EXPECT_GT(amax, 0.0) << tag;
    }
}

TEST(Qwen3BlockGrad, FloatBlockMatchesDoubleBlock) {
    SmallProblem p(4, 2, 8, false, 21);
    const auto Wd = random_weights(p.c.dims, 120);
    std::array<std::vector<float>, kNumBlockLinears> Wf;
    for (int i = 0; i < kNumBlockLinears; ++i) Wf[i] = to_f(Wd[i]);
    Qwen3BlockConsts<float> cf;
    cf.dims = p.c.dims;
    cf.input_norm = to_f(p.c.input_norm);
    cf.post_attn_norm = to_f(p.c.post_attn_norm);
    cf.q_norm = to_f(p.c.q_norm);
    cf.k_norm = to_f(p.c.k_norm);
    cf.inv_freq = p.c.inv_freq;
    const auto dWd = p.grads(Wd);
    Qwen3BlockGrad<float> blk(cf);
    const auto Xf = to_f(p.X), rf = to_f(p.ref);
    std::vector<float> Y(Xf.size()), dY(Xf.size());
    blk.forward(Xf.data(), p.B, p.L, ptrs(Wf), Y.data());
    masked_mse_loss<float>(Y.data(), rf.data(), p.mask.data(), p.B, p.L, 24, dY.data());
    std::array<std::vector<float>, kNumBlockLinears> dWf;
    Qwen3BlockGrad<float>::Grads gp;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        dWf[i].assign(Wf[i].size(), 0.f);
        gp[i] = dWf[i].data();
    }
    blk.backward(dY.data(), gp);
    for (int i = 0; i < kNumBlockLinears; ++i) {
        double scale = 0;
        for (double g : dWd[i]) scale = std::max(scale, std::abs(g));
        for (size_t e = 0; e < dWd[i].size(); ++e)
            ASSERT_NEAR(dWf[i][e], dWd[i][e], 1e-4 * scale) << block_linear_name(i) << " @" << e;
    }
    // accumulate adds; a second backward without a new forward is an error
    EXPECT_THROW(blk.backward(dY.data(), gp, true), Error);
    blk.forward(Xf.data(), p.B, p.L, ptrs(Wf), Y.data());
    blk.backward(dY.data(), gp, true);
    for (int i = 0; i < kNumBlockLinears; ++i) {
        double scale = 0;
        for (double g : dWd[i]) scale = std::max(scale, std::abs(g));
        for (size_t e = 0; e < dWd[i].size(); ++e) ASSERT_NEAR(dWf[i][e], 2 * dWd[i][e], 2e-4 * scale);
    }
}

TEST(Qwen3BlockGrad, LossIsMaskedMeanOverAllElements) {
    const int64_t B = 2, L = 3, H = 4;
    const auto pred = randn_d(B * L * H, 1), ref = randn_d(B * L * H, 2);
    const auto mask = last_token_mask(B, L);
    ASSERT_EQ(mask, (std::vector<uint8_t>{1, 1, 0, 1, 1, 0}));
    double want = 0;
    for (int64_t n = 0; n < B * L; ++n)
        for (int64_t h = 0; h < H; ++h)
            if (mask[n]) want += (pred[n * H + h] - ref[n * H + h]) * (pred[n * H + h] - ref[n * H + h]);
    want /= double(B * L * H);  // the denominator counts masked positions
    std::vector<double> g(B * L * H);
    EXPECT_NEAR(masked_mse_loss<double>(pred.data(), ref.data(), mask.data(), B, L, H, g.data(), 1000.0), want, 1e-14);
    for (int64_t n = 0; n < B * L; ++n)
        for (int64_t h = 0; h < H; ++h) {
            const double e = mask[n] ? 1000.0 * 2 * (pred[n * H + h] - ref[n * H + h]) / double(B * L * H) : 0.0;
            EXPECT_NEAR(g[n * H + h], e, 1e-12);
        }
    double all = 0;
    for (size_t i = 0; i < pred.size(); ++i) all += (pred[i] - ref[i]) * (pred[i] - ref[i]);
    EXPECT_NEAR(masked_mse_loss<double>(pred.data(), ref.data(), nullptr, B, L, H, nullptr), all / pred.size(), 1e-14);
}

namespace {

const Qwen3Model& nano() {
    static Qwen3Model m = Qwen3Model::load(kShared + "/models/qwen3-nano");
    return m;
}

// Layer-0 input (embeddings) and output (block_out) of the inference model for B random sequences.
void nano_layer0_io(int64_t B, int64_t L, uint32_t seed, std::vector<float>& X, std::vector<float>& Y) {
    const Qwen3Model& m = nano();
    const int64_t H = m.config().hidden_size;
    X.assign(B * L * H, 0.f);
    Y.assign(B * L * H, 0.f);
    std::mt19937 g(seed);
    for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> ids(L);
        for (auto& id : ids) id = static_cast<int32_t>(g() % m.config().vocab_size);
        KvCache cache = m.make_cache();
        m.forward(ids, cache, nullptr, false, [&](const std::string& name, int layer, const float* data, int64_t T, int64_t dim) {
            ASSERT_EQ(T, L);
            ASSERT_EQ(dim, H);
            if (name == "embeddings") std::copy(data, data + T * dim, X.begin() + b * L * H);
            if (name == "block_out" && layer == 0) std::copy(data, data + T * dim, Y.begin() + b * L * H);
        });
    }
}

}  // namespace

TEST(Qwen3BlockGrad, NanoBlock0ForwardMatchesInferenceModel) {
    const Qwen3Model& m = nano();
    const Qwen3BlockConsts<float> c = load_block_consts(m, 0);
    std::array<std::vector<float>, kNumBlockLinears> W;
    for (int i = 0; i < kNumBlockLinears; ++i) W[i] = load_block_weight(m, 0, i);
    Qwen3BlockGrad<float> blk(c);
    for (auto [B, L] : {std::pair<int64_t, int64_t>{3, 11}, {2, 70}}) {
        std::vector<float> X, Yref, Y;
        nano_layer0_io(B, L, 5 + static_cast<uint32_t>(L), X, Yref);
        Y.resize(X.size());
        blk.forward(X.data(), B, L, ptrs(W), Y.data());
        double worst = 0, ymax = 0;
        for (size_t i = 0; i < Y.size(); ++i) {
            worst = std::max(worst, std::abs(double(Y[i]) - Yref[i]) / (1.0 + std::abs(Yref[i])));
            ymax = std::max(ymax, std::abs(double(Yref[i])));
        }
        std::printf("  nano block 0, B=%lld L=%lld: max |Y - block_out| / (1 + |block_out|) = %.3g (max |Y| %.3g)\n",
                    static_cast<long long>(B), static_cast<long long>(L), worst, ymax);
        EXPECT_LT(worst, 1e-5);
    }
    EXPECT_THROW(load_block_consts(m, 6), Error);
}

TEST(Qwen3BlockGrad, NanoBlockFloatGradientsMatchDouble) {
    const Qwen3Model& m = nano();
    const Qwen3BlockConsts<float> c = load_block_consts(m, 1);
    std::array<std::vector<float>, kNumBlockLinears> W;
    std::array<std::vector<double>, kNumBlockLinears> Wd;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        W[i] = load_block_weight(m, 1, i);
        Wd[i] = to_d(W[i]);
    }
    const int64_t B = 1, L = 33, H = c.dims.hidden;
    std::vector<float> X, Yl0;
    nano_layer0_io(B, L, 9, X, Yl0);  // block 1 input = block 0 output
    const auto ref = to_f(randn_d(B * L * H, 3, 0.5));
    const auto mask = last_token_mask(B, L);
    // float
    Qwen3BlockGrad<float> bf(c);
    std::vector<float> Y(B * L * H), dY(B * L * H);
    bf.forward(Yl0.data(), B, L, ptrs(W), Y.data());
    const double lf = masked_mse_loss<float>(Y.data(), ref.data(), mask.data(), B, L, H, dY.data());
    std::array<std::vector<float>, kNumBlockLinears> dW;
    Qwen3BlockGrad<float>::Grads gp;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        dW[i].assign(W[i].size(), 0.f);
        gp[i] = dW[i].data();
    }
    std::vector<float> dXf(B * L * H);
    bf.backward(dY.data(), gp, false, dXf.data());
    // double
    Qwen3BlockGrad<double> bd(consts_to_double(c));
    const auto Xd = to_d(Yl0), refd = to_d(ref);
    std::vector<double> Yd(B * L * H), dYd(B * L * H);
    bd.forward(Xd.data(), B, L, ptrs(Wd), Yd.data());
    const double ld = masked_mse_loss<double>(Yd.data(), refd.data(), mask.data(), B, L, H, dYd.data());
    EXPECT_NEAR(lf, ld, 1e-5 * ld);
    std::array<std::vector<double>, kNumBlockLinears> dWd;
    Qwen3BlockGrad<double>::Grads gpd;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        dWd[i].assign(Wd[i].size(), 0.0);
        gpd[i] = dWd[i].data();
    }
    std::vector<double> dXd(B * L * H);
    bd.backward(dYd.data(), gpd, false, dXd.data());
    {
        double num = 0, den = 0;
        for (size_t e = 0; e < dXd.size(); ++e) {
            num += (dXf[e] - dXd[e]) * (dXf[e] - dXd[e]);
            den += dXd[e] * dXd[e];
        }
        EXPECT_LT(std::sqrt(num / den), 1e-4) << "dX";
        EXPECT_GT(den, 0.0) << "dX";
    }
    for (int i = 0; i < kNumBlockLinears; ++i) {
        double num = 0, den = 0;
        for (size_t e = 0; e < dW[i].size(); ++e) {
            num += (dW[i][e] - dWd[i][e]) * (dW[i][e] - dWd[i][e]);
            den += dWd[i][e] * dWd[i][e];
        }
        EXPECT_LT(std::sqrt(num / den), 1e-4) << block_linear_name(i);
        EXPECT_GT(den, 0.0) << block_linear_name(i);
    }
}

// Timing at qwen3-nano shapes (B=8, L=512): block forward + backward, and the fake-quant forward +
// backward of the 7 linears (W4 G128 asym). Disabled by default; prints the numbers.
TEST(Qwen3BlockGrad, DISABLED_TimingNanoB8L512) {
    const Qwen3Model& m = nano();
    const Qwen3BlockConsts<float> c = load_block_consts(m, 0);
    const int64_t B = 8, L = 512, H = c.dims.hidden;
    std::array<std::vector<float>, kNumBlockLinears> W, Wq, dW, V, al, be, wmin, wmax, dV, dA, dB;
    std::array<FakeQuantShape, kNumBlockLinears> sh;
    FakeQuantConfig cfg;
    cfg.bits = 4;
    cfg.group_size = 128;
    cfg.sym = false;
    Qwen3BlockGrad<float>::Grads gp;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        W[i] = load_block_weight(m, 0, i);
        const auto [out, in] = block_linear_shape(c.dims, i);
        sh[i] = fake_quant_shape(out, in, 128);
        Wq[i].resize(W[i].size());
        dW[i].resize(W[i].size());
        gp[i] = dW[i].data();
        V[i].assign(out * sh[i].padded_in(), 0.f);
        dV[i].resize(V[i].size());
        al[i].assign(sh[i].groups(), 1.f);
        be[i].assign(sh[i].groups(), 1.f);
        dA[i].resize(sh[i].groups());
        dB[i].resize(sh[i].groups());
        wmin[i].resize(sh[i].groups());
        wmax[i].resize(sh[i].groups());
        fake_quant_minmax<float>(W[i].data(), sh[i], wmin[i].data(), wmax[i].data());
    }
    const auto X = to_f(randn_d(B * L * H, 1)), ref = to_f(randn_d(B * L * H, 2));
    const auto mask = last_token_mask(B, L);
    std::vector<float> Y(X.size()), dY(X.size());
    Qwen3BlockGrad<float> blk(c);
    using clk = std::chrono::steady_clock;
    auto ms = [](clk::time_point a, clk::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
    for (int rep = 0; rep < 3; ++rep) {
        const auto t0 = clk::now();
        for (int i = 0; i < kNumBlockLinears; ++i) {
            FakeQuantTensors<float> t{W[i].data(), V[i].data(), al[i].data(), be[i].data(), wmin[i].data(), wmax[i].data()};
            fake_quant_forward(t, sh[i], cfg, Wq[i].data(), nullptr, nullptr);
        }
        const auto t1 = clk::now();
        blk.forward(X.data(), B, L, ptrs(Wq), Y.data());
        const auto t2 = clk::now();
        masked_mse_loss<float>(Y.data(), ref.data(), mask.data(), B, L, H, dY.data(), 1000.0);
        blk.backward(dY.data(), gp);
        const auto t3 = clk::now();
        for (int i = 0; i < kNumBlockLinears; ++i) {
            FakeQuantTensors<float> t{W[i].data(), V[i].data(), al[i].data(), be[i].data(), wmin[i].data(), wmax[i].data()};
            fake_quant_backward(t, sh[i], cfg, dW[i].data(), dV[i].data(), dA[i].data(), dB[i].data());
        }
        const auto t4 = clk::now();
        std::printf("  rep %d: fq fwd %.1f ms, block fwd %.1f ms, loss+block bwd %.1f ms, fq bwd %.1f ms, total %.1f ms"
                    " (saved %.0f MB)\n",
                    rep, ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t3, t4), ms(t0, t4), blk.saved_bytes() / 1e6);
    }
}
