// tests/cuda/test_cuda_resident_chain.cpp — quantize_model with --device cuda keeps the FP and quantized chains on
// the GPU from block to block (CudaActivations, quant/signround_tuner.cpp). It must tune exactly what the
// host-resident path (--low_gpu_mem_usage: activations in host memory, re-uploaded per block) tunes: the same
// losses, the same codes, the same final losses up to the summation order of the device MSE.
// qwen3-nano, blocks 0 and 2 tuned, block 1 forwarded unquantized on both chains (the "fp" path), samples not a
// multiple of the batch; with and without the quantized-input chain; FP32 and bf16 GPU precision (bf16: the
// resident chains are stored in bf16, the host ones hold the same bf16-rounded block outputs in float).
// Built only with -DAUTOROUND_CUDA=ON (label "gpu"); skips cleanly when no CUDA device is visible.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/qwen3_model.h"
#include "ops/cuda/block_engine.h"
#include "ops/cuda/device_info.h"
#include "quant/scheme.h"
#include "quant/quant_test_util.h"
#include "quant/signround_tuner.h"

using namespace autoround;

namespace {

const Qwen3Model& nano() {
    const char* env = std::getenv("AR_SHARED_DIR");  // the device machine keeps ../shared elsewhere
    static const std::unique_ptr<Qwen3Model> m =
        std::make_unique<Qwen3Model>(Qwen3Model::load(std::string(env ? env : AR_SHARED_DIR) + "/models/qwen3-nano"));
    return *m;
}

std::vector<std::vector<int32_t>> random_samples(int n, int L, uint32_t seed) {
    return testquant::random_token_samples(nano().config().vocab_size, n, L, seed);
}

void compare_paths(bool quanted_input, bool bf16) {
    SCOPED_TRACE(std::string(quanted_input ? "quantized-input chain" : "FP inputs") + (bf16 ? ", bf16" : ", fp32"));
    SchemeOptions so;
    so.to_quant_block_names = "model.layers.(0|2)$";
    const QuantPlan plan = plan_quantization(describe_model(nano().config(), nano().tensors()), so);
    const auto samples = random_samples(5, 40, 17);
    auto run = [&](bool host_resident) {
        SignRoundOptions o;
        o.progress = false;
        o.iters = 6;
        o.batch_size = 2;
        o.cuda = true;
        o.cuda_bf16 = bf16;
        o.enable_quanted_input = quanted_input;
        o.low_gpu_mem_usage = host_resident;
        return quantize_model(nano(), plan, samples, o);
    };
    const QuantizeResult host = run(true), dev = run(false);
    ASSERT_EQ(host.blocks.size(), 3u);
    ASSERT_EQ(dev.blocks.size(), host.blocks.size());
    for (size_t b = 0; b < host.blocks.size(); ++b) {
        const BlockReport &h = host.blocks[b], &d = dev.blocks[b];
        SCOPED_TRACE(h.name);
        EXPECT_EQ(d.method, h.method);
        ASSERT_EQ(d.losses.size(), h.losses.size());
        for (size_t i = 0; i < h.losses.size(); ++i) EXPECT_NEAR(d.losses[i], h.losses[i], 1e-6 * h.losses[i]) << i;
        if (h.method == "signround" && quanted_input) {
            EXPECT_GT(d.final_loss, 0.0);
            EXPECT_NEAR(d.final_loss, h.final_loss, 1e-6 * h.final_loss);
        }
    }
    ASSERT_EQ(dev.layers.size(), host.layers.size());
    size_t same = 0, total = 0;
    for (const auto& [name, q] : host.layers) {
        const auto& c = dev.layers.at(name).codes;
        ASSERT_EQ(c.size(), q.codes.size()) << name;
        for (size_t i = 0; i < c.size(); ++i) same += c[i] == q.codes[i];
        total += c.size();
    }
    EXPECT_EQ(same, total) << "codes differ between the device-resident and host-resident chains";
}

}  // namespace

TEST(CudaResidentChain, MatchesTheHostResidentPath) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    compare_paths(true, false);
    compare_paths(false, false);
    compare_paths(true, true);
}

// The activations container itself: upload, device copy, download.
TEST(CudaResidentChain, ActivationsRoundTrip) {
    if (!cuda_available()) GTEST_SKIP() << "no CUDA device";
    std::vector<float> x(3 * 5 * 7);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.25f * float(i) - 3.f;
    CudaActivations a(3, 5, 7, x.data()), b(3, 5, 7);
    b.copy_from(a);
    std::vector<float> y(x.size(), 0.f);
    b.download(y.data());
    EXPECT_EQ(y, x);
    CudaActivations c(3, 5, 8);
    EXPECT_THROW(c.copy_from(a), Error);
    // bf16 storage (the Bf16 engine's chains): these values are bf16-exact; 1 + 2^-10 is not and rounds to 1
    x[7] = 1.f + 1.f / 1024.f;
    CudaActivations h(3, 5, 7, x.data(), ActivationStorage::Bf16), k(3, 5, 7, ActivationStorage::Bf16);
    k.copy_from(h);
    k.download(y.data());
    x[7] = 1.f;
    EXPECT_EQ(y, x);
    EXPECT_THROW(k.copy_from(a), Error);  // another storage
}
