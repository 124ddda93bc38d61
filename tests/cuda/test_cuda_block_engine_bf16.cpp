// tests/cuda/test_cuda_block_engine_bf16.cpp — the GPU block engine in GpuPrecision::Bf16 (bf16 tensor-core
// GEMMs, FP32 accumulation; ops/cuda/block_engine.h) against the CPU float32 reference Qwen3BlockGrad<float> on
// awkward shapes: odd L, hidden not a multiple of 64 (96, 72, 70), intermediate 90, GQA ratios 3 / 8 (MQA) / 2, head_dim 16 / 24 / 128,
// with and without QK-norm, gradient accumulation over two sub-batches, and a real qwen3-nano block. Head dims 64
// and 128 run the flash attention kernels (ops/cuda/flash_attention.h), the others (and one 128 case with it
// switched off) the cuBLAS + softmax path.
//
// Tolerances (bf16 has 8 significant bits: unit roundoff u = 2^-9 ≈ 2e-3). Every GEMM operand is rounded once
// to bf16 (relative error ≤ u per element, random in sign), the products accumulate in FP32, so a GEMM output
// carries a relative L2 error of about u·√(#rounded operands) ≈ 0.3 %. The longest chain — dY → dX2 → dA → dS →
// dq → RMSNorm'/RoPE' → dW_q — passes about six rounded tensors, so the weight gradients are expected at
// ≈ 0.5–1.5 % relative L2 error (cosine ≥ 0.9999). The checks leave a ≥ 5× margin while any real bug (a wrong
// transpose, a missing GQA accumulation, a lost scale) gives errors of order 1:
//   * loss:                 |Δ| ≤ 1e-2 · loss            (the residual stream and the MSE stay FP32)
//   * forward_all output:   relative L2 error ≤ 1e-2     (bf16 noise only enters through the two branches)
//   * each weight gradient: cosine similarity ≥ 0.995, relative L2 error ≤ 8e-2, and magnitude-weighted sign
//                           agreement ≥ 0.98 (SignSGD uses only the signs; flips only happen for entries near 0)
// The weights are rounded to bf16 before the comparison (the tuner's QDQ weights are bf16 values, as in
// AutoRound), so the CPU reference and the GPU see the same weights and only activation rounding is measured.
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); every test skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "model/qwen3_block_grad.h"
#include "model/qwen3_model.h"
#include "ops/cuda/block_engine.h"
#include "ops/cuda/device_info.h"
#include "ops/cuda/fp8_gemm.h"
#include "cuda_test_util.h"
#include "quant/signround_tuner.h"

using namespace autoround;

namespace {

float round_bf16(float x) {  // round to nearest even bf16, returned as float
    uint32_t u;
    std::memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return x;  // inf / nan
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    float y;
    std::memcpy(&y, &u, 4);
    return y;
}

using cuda_test::Case;
using cuda_test::random_case;

struct Err {
    double rel_l2 = 0, cos = 0, sign_agree = 0;  // sign agreement weighted by |ref|
};

Err error_of(const std::vector<float>& got, const std::vector<float>& ref) {
    double dd = 0, rr = 0, gg = 0, gr = 0, w_all = 0, w_same = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double a = got[i], b = ref[i];
        dd += (a - b) * (a - b);
        rr += b * b;
        gg += a * a;
        gr += a * b;
        w_all += std::fabs(b);
        if ((a > 0) == (b > 0) || b == 0) w_same += std::fabs(b);
    }
    Err e;
    e.rel_l2 = std::sqrt(dd / std::max(rr, 1e-300));
    e.cos = gr / std::max(std::sqrt(gg * rr), 1e-300);
    e.sign_agree = w_all > 0 ? w_same / w_all : 1.0;
    return e;
}

// CPU float32 reference and the Bf16 GPU engine on the same inputs: loss, the 7 gradients (accumulated over
// `subbatches` sub-batches of idx), and the no-grad forward of all n samples.
void compare_bf16(Case& k, int64_t n, int64_t L, int64_t batch, const std::vector<int64_t>& idx, int subbatches,
                  bool flash = true) {
    for (auto& w : k.W)
        for (float& x : w) x = round_bf16(x);
    const int64_t H = k.c.dims.hidden, LH = L * H;
    std::mt19937 g(11);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> X(size_t(n * LH)), R(X.size());
    for (auto& x : X) x = nd(g);
    for (auto& x : R) x = nd(g);
    Qwen3BlockGrad<float> cpu(k.c);
    std::array<const float*, kNumBlockLinears> wp{};
    std::array<std::vector<float>, kNumBlockLinears> gc, gg;
    std::array<float*, kNumBlockLinears> gp{};
    for (int i = 0; i < kNumBlockLinears; ++i) {
        wp[size_t(i)] = k.W[size_t(i)].data();
        gc[size_t(i)].assign(k.W[size_t(i)].size(), 0.f);
        gg[size_t(i)].assign(k.W[size_t(i)].size(), 0.f);
        gp[size_t(i)] = gc[size_t(i)].data();
    }
    CudaBlockEngineOptions opt;
    opt.precision = GpuPrecision::Bf16;
    opt.flash_attention = flash;
    CudaBlockEngine gpu(k.c, n, L, batch, X.data(), R.data(), opt);
    ASSERT_EQ(gpu.precision(), GpuPrecision::Bf16);
    for (int i = 0; i < kNumBlockLinears; ++i) gpu.set_weight(i, wp[size_t(i)]);
    const int64_t global = int64_t(idx.size()), per = global / subbatches;
    double loss_cpu = 0, loss_gpu = 0;
    for (int s = 0; s < subbatches; ++s) {
        const int64_t b = per, s0 = s * per;
        std::vector<float> xb(size_t(b * LH)), rb(xb.size()), y(xb.size()), dy(xb.size());
        for (int64_t j = 0; j < b; ++j) {
            std::copy_n(X.begin() + idx[size_t(s0 + j)] * LH, LH, xb.begin() + j * LH);
            std::copy_n(R.begin() + idx[size_t(s0 + j)] * LH, LH, rb.begin() + j * LH);
        }
        const std::vector<uint8_t> mask = last_token_mask(b, L);
        cpu.forward(xb.data(), b, L, wp, y.data());
        const double w = double(b) / double(global);
        loss_cpu += w * masked_mse_loss<float>(y.data(), rb.data(), mask.data(), b, L, H, dy.data(), 1000.0 * w);
        cpu.backward(dy.data(), gp, s > 0);
        loss_gpu += w * gpu.forward_backward(idx.data() + s0, b, true, 1000.0 * w, s > 0);
    }
    EXPECT_NEAR(loss_gpu, loss_cpu, 1e-2 * std::fabs(loss_cpu));
    std::printf("  loss cpu %.6g gpu-bf16 %.6g (rel %.2e)\n", loss_cpu, loss_gpu,
                std::fabs(loss_gpu - loss_cpu) / std::fabs(loss_cpu));
    for (int i = 0; i < kNumBlockLinears; ++i) {
        gpu.get_weight_grad(i, gg[size_t(i)].data());
        const Err e = error_of(gg[size_t(i)], gc[size_t(i)]);
        std::printf("  dW %-18s rel_l2 %.3e  cos %.6f  sign agreement %.5f\n", block_linear_name(i), e.rel_l2, e.cos,
                    e.sign_agree);
        EXPECT_GT(e.cos, 0.995) << block_linear_name(i);
        EXPECT_LT(e.rel_l2, 8e-2) << block_linear_name(i);
        EXPECT_GT(e.sign_agree, 0.98) << block_linear_name(i);
    }
    std::vector<float> yc(X.size()), yg(X.size());
    block_forward_all(cpu, wp, X.data(), n, L, batch, yc.data());
    gpu.forward_all(yg.data());
    const Err ef = error_of(yg, yc);
    std::printf("  forward_all rel_l2 %.3e\n", ef.rel_l2);
    EXPECT_LT(ef.rel_l2, 1e-2);
}

}  // namespace

TEST(CudaBlockEngineBf16, GqaRatio3OddLengthAccumulate) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/96, /*nq=*/6, /*nkv=*/2, /*D=*/16, /*I=*/200, /*qk_norm=*/true, 3);
    compare_bf16(k, /*n=*/5, /*L=*/37, /*batch=*/2, {3, 0, 4, 1}, /*subbatches=*/2);
}

TEST(CudaBlockEngineBf16, MqaNoQkNormHidden72) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/72, /*nq=*/8, /*nkv=*/1, /*D=*/24, /*I=*/136, /*qk_norm=*/false, 5);
    compare_bf16(k, /*n=*/3, /*L=*/33, /*batch=*/3, {2, 0, 1}, /*subbatches=*/1);
}

// hidden 70 and intermediate 90 (batch · L · 90 not a multiple of 8): the scalar fallbacks of the 4- and 8-wide
// RMSNorm / residual / SwiGLU kernels; head_dim 80 (40 rotation pairs: more than one per lane of the fused
// QK-norm + RoPE kernels, and a tail)
TEST(CudaBlockEngineBf16, UnvectorisableHiddenAndIntermediate) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/70, /*nq=*/4, /*nkv=*/2, /*D=*/80, /*I=*/90, /*qk_norm=*/true, 13);
    compare_bf16(k, /*n=*/3, /*L=*/29, /*batch=*/3, {1, 2, 0}, /*subbatches=*/1);
}

TEST(CudaBlockEngineBf16, HeadDim128OddLength) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/320, /*nq=*/4, /*nkv=*/2, /*D=*/128, /*I=*/704, /*qk_norm=*/true, 9);
    compare_bf16(k, /*n=*/3, /*L=*/131, /*batch=*/3, {1, 2, 0}, /*subbatches=*/1);
}

TEST(CudaBlockEngineBf16, HeadDim128WithoutFlashAttention) {  // the materialised-scores path
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/320, /*nq=*/4, /*nkv=*/2, /*D=*/128, /*I=*/704, /*qk_norm=*/true, 9);
    compare_bf16(k, /*n=*/3, /*L=*/131, /*batch=*/3, {1, 2, 0}, /*subbatches=*/1, /*flash=*/false);
}

TEST(CudaBlockEngineBf16, HeadDim64Gqa4FlashAttention) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    Case k = random_case(/*H=*/256, /*nq=*/8, /*nkv=*/2, /*D=*/64, /*I=*/512, /*qk_norm=*/true, 11);
    compare_bf16(k, /*n=*/4, /*L=*/200, /*batch=*/2, {3, 1, 0, 2}, /*subbatches=*/2);
}

TEST(CudaBlockEngineBf16, MatchesCpuOnANanoBlock) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    const char* env = std::getenv("AR_SHARED_DIR");  // the device machine keeps ../shared elsewhere
    const std::string dir = std::string(env ? env : AR_SHARED_DIR) + "/models/qwen3-nano";
    if (!std::filesystem::exists(dir)) GTEST_SKIP() << "no " << dir << " (set AR_SHARED_DIR)";
    const Qwen3Model model = Qwen3Model::load(dir);
    Case k;
    k.c = load_block_consts(model, 2);
    for (int i = 0; i < kNumBlockLinears; ++i) k.W[size_t(i)] = load_block_weight(model, 2, i);
    compare_bf16(k, /*n=*/4, /*L=*/129, /*batch=*/2, {2, 1, 3, 0}, /*subbatches=*/2);
}

TEST(CudaBlockEngineBf16, DefaultIsFp32) {
    EXPECT_EQ(CudaBlockEngineOptions{}.precision, GpuPrecision::Fp32);
}

// fp8_backward: the same forward (identical losses) and weight gradients close to the bf16 engine's in direction
// and sign (what SignSGD uses), on shapes where every backward GEMM takes the FP8 path (multiples of 16).
TEST(CudaBlockEngineBf16, Fp8BackwardKeepsTheGradientSigns) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    int dev = 0;
    ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
    if (!Fp8Gemm::supported(dev)) GTEST_SKIP() << "no FP8 tensor cores";
    Case k = random_case(/*H=*/256, /*nq=*/4, /*nkv=*/2, /*D=*/64, /*I=*/512, true, 23);
    for (auto& w : k.W)
        for (float& x : w) x = round_bf16(x);
    const int64_t n = 4, L = 64, H = 256, LH = L * H;
    std::mt19937 g(5);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::vector<float> X(size_t(n * LH)), R(X.size());
    for (auto& x : X) x = nd(g);
    for (auto& x : R) x = nd(g);
    auto grads = [&](bool fp8, std::vector<double>& losses) {
        CudaBlockEngineOptions opt;
        opt.precision = GpuPrecision::Bf16;
        opt.fp8_backward = fp8;
        CudaBlockEngine e(k.c, n, L, 2, X.data(), R.data(), opt);
        for (int i = 0; i < kNumBlockLinears; ++i) e.set_weight(i, k.W[size_t(i)].data());
        const std::vector<int64_t> idx = {3, 0, 2, 1};
        losses.push_back(e.forward_backward(idx.data(), 2, true, 500.0, false));
        losses.push_back(e.forward_backward(idx.data() + 2, 2, true, 500.0, true));
        std::array<std::vector<float>, kNumBlockLinears> dW;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            dW[size_t(i)].resize(k.W[size_t(i)].size());
            e.get_weight_grad(i, dW[size_t(i)].data());
        }
        return dW;
    };
    std::vector<double> l16, l8;
    const auto g16 = grads(false, l16), g8 = grads(true, l8);
    EXPECT_EQ(l8, l16);  // the forward is bf16 in both
    for (int i = 0; i < kNumBlockLinears; ++i) {
        const Err e = error_of(g8[size_t(i)], g16[size_t(i)]);
        std::printf("  fp8 vs bf16 dW %-18s rel_l2 %.3e  cos %.6f  sign agreement %.5f\n", block_linear_name(i),
                    e.rel_l2, e.cos, e.sign_agree);
        EXPECT_GT(e.cos, 0.98) << block_linear_name(i);
        EXPECT_GT(e.sign_agree, 0.95) << block_linear_name(i);
    }
}
