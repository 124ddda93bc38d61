// tests/quant/test_gguf_double_quant.cpp — quant/gguf_double_quant.h:
//  * the scheme table (block type <-> scheme, both ways) and the fake-quant configuration it implies;
//  * a tuned double-quant layer (random V, α, β) stored as Q4_K / Q5_K / Q6_K super-blocks dequantizes — through
//    llama.cpp's block layouts — to exactly the fake-quantized weights the tuner evaluated, and the blocks read
//    back into the same QuantizedTensor;
//  * RTN of a k-quant scheme is llama.cpp's reference quantizer (byte-identical blocks);
//  * SignRound on block 0 of qwen3-nano with the q4_k_m layer mix (Q4_K, Q6_K for attn_v / down_proj): the loss
//    falls below its iteration-0 value and below llama.cpp's RTN of the same types, and the exported blocks
//    reproduce the tuned QDQ weights bit for bit.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/bf16.h"
#include "core/error.h"
#include "export/gguf_blocks.h"
#include "model/qwen3_model.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/fake_quant_dq.h"
#include "quant/gguf_double_quant.h"
#include "quant/signround_tuner.h"

using namespace autoround;
using gguf::BlockType;

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = round_to_bf16(d(g));
    return v;
}
std::vector<float> uniform(size_t n, uint32_t seed, float lo, float hi) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}

}  // namespace

TEST(GgufDoubleQuant, SchemeTable) {
    for (BlockType t : {BlockType::Q4_0, BlockType::Q4_1, BlockType::Q8_0, BlockType::Q4_K, BlockType::Q5_K,
                        BlockType::Q6_K}) {
        const auto s = gguf_block_scheme(t);
        ASSERT_TRUE(s) << gguf::block_type_name(t);
        EXPECT_EQ(gguf_block_type_of(*s), t);
    }
    EXPECT_FALSE(gguf_block_scheme(BlockType::F16));
    const LayerScheme q4k = *gguf_block_scheme(BlockType::Q4_K);
    EXPECT_EQ(q4k.data_type, "int_asym_dq");
    EXPECT_EQ(q4k.bits, 4);
    EXPECT_EQ(q4k.group_size, 32);
    EXPECT_EQ(q4k.super_group_size, 8);
    EXPECT_EQ(q4k.super_bits, 6);
    const LayerScheme q6k = *gguf_block_scheme(BlockType::Q6_K);
    EXPECT_EQ(q6k.data_type, "int_sym_dq");
    EXPECT_EQ(q6k.group_size, 16);
    EXPECT_EQ(q6k.super_group_size, 16);
    EXPECT_EQ(q6k.super_bits, 8);
    const FakeQuantConfig c = fake_quant_config(q4k);
    EXPECT_EQ(c.kind, FakeQuantKind::AsymDQ);
    EXPECT_FALSE(c.scale_fp16) << "GGUF scale_dtype is float32";
    EXPECT_EQ(fake_quant_config(q6k).kind, FakeQuantKind::SymDQ);
    EXPECT_EQ(fake_quant_config(*gguf_block_scheme(BlockType::Q4_0)).kind, FakeQuantKind::Int);
    EXPECT_FALSE(gguf_block_type_of(LayerScheme{4, 128, true, "int"}));
}

TEST(GgufDoubleQuant, TunedLayersPackIntoKQuantBlocksExactly) {
    for (BlockType t : {BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K}) {
        SCOPED_TRACE(gguf::block_type_name(t));
        const LayerScheme s = *gguf_block_scheme(t);
        const int64_t out = 5, in = 768;
        const FakeQuantShape sh = fake_quant_shape(out, in, s.group_size);
        FakeQuantConfig cfg = fake_quant_config(s);
        cfg.out_bf16 = false;
        const std::vector<float> W = randn(static_cast<size_t>(out * in), 11, 0.04f);
        const std::vector<float> V = uniform(static_cast<size_t>(out * sh.padded_in()), 12, -0.5f, 0.5f);
        const std::vector<float> al = uniform(static_cast<size_t>(sh.groups()), 13, 0.6f, 1.0f);
        const std::vector<float> be = uniform(static_cast<size_t>(sh.groups()), 14, 0.6f, 1.0f);
        std::vector<float> wmin(al.size()), wmax(al.size());
        fake_quant_minmax(W.data(), sh, wmin.data(), wmax.data());
        const FakeQuantTensors<float> ft{W.data(), V.data(), al.data(), be.data(), wmin.data(), wmax.data()};
        std::vector<float> y(W.size());
        fake_quant_forward(ft, sh, cfg, y.data(), nullptr, nullptr);

        const QuantizedTensor q = dq_quantized_tensor(fake_quant_dq_codes(ft, sh, cfg), s, out, in, "layer");
        EXPECT_TRUE(q.double_quant());
        EXPECT_EQ(q.dequantize(), y) << "the tensor reproduces the fake-quantized weights";
        const auto blocks = dq_blocks_from_tensor(q, t);
        ASSERT_TRUE(blocks);
        ASSERT_EQ(static_cast<int64_t>(blocks->size()), out * gguf::row_bytes(t, in));
        std::vector<float> back(W.size());
        for (int64_t r = 0; r < out; ++r)
            gguf::dequantize_row(t, blocks->data() + r * gguf::row_bytes(t, in), in, back.data() + r * in);
        EXPECT_EQ(back, y) << "llama.cpp's dequantization of the blocks gives the tuned weights";
        const QuantizedTensor again = dq_tensor_from_blocks(t, blocks->data(), out, in, "layer");
        EXPECT_EQ(again.codes, q.codes);
        EXPECT_EQ(again.scales, q.scales);
        EXPECT_EQ(again.dq_d, q.dq_d);
        EXPECT_EQ(again.dq_sc, q.dq_sc);
        EXPECT_EQ(again.dq_dmin, q.dq_dmin);
        EXPECT_EQ(again.dq_mn, q.dq_mn);
        // a scheme that does not match the block type is not packed
        EXPECT_FALSE(dq_blocks_from_tensor(q, t == BlockType::Q6_K ? BlockType::Q4_K : BlockType::Q6_K));
    }
}

TEST(GgufDoubleQuant, RtnIsLlamaCppsReferenceQuantizer) {
    for (BlockType t : {BlockType::Q4_K, BlockType::Q5_K, BlockType::Q6_K}) {
        SCOPED_TRACE(gguf::block_type_name(t));
        const int64_t out = 3, in = 512;
        const std::vector<float> W = randn(static_cast<size_t>(out * in), 21, 0.03f);
        const QuantizedTensor q = quantize_dq_rtn(W, out, in, *gguf_block_scheme(t), "layer");
        std::vector<uint8_t> ref(static_cast<size_t>(out * gguf::row_bytes(t, in)));
        for (int64_t r = 0; r < out; ++r)
            gguf::quantize_row(t, W.data() + r * in, in, ref.data() + r * gguf::row_bytes(t, in));
        const auto blocks = dq_blocks_from_tensor(q, t);
        ASSERT_TRUE(blocks);
        EXPECT_EQ(*blocks, ref);
    }
    try {
        quantize_dq_rtn(std::vector<float>(4 * 96), 4, 96, *gguf_block_scheme(BlockType::Q4_K), "model.layers.0.x");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("model.layers.0.x"), std::string::npos) << e.what();
    }
}

TEST(GgufDoubleQuant, SignRoundTunesTheQ4KMMixOnANanoBlock) {
    const Qwen3Model model = Qwen3Model::load(std::string(AR_SHARED_DIR) + "/models/qwen3-nano");
    const int64_t n = 4, L = 48;
    auto block = std::make_unique<Qwen3BlockGrad<float>>(load_block_consts(model, 2));
    const int64_t H = block->dims().hidden;
    std::array<std::vector<float>, kNumBlockLinears> W;
    std::array<const float*, kNumBlockLinears> wp{};
    std::vector<BlockLayerSpec> specs;
    for (int i = 0; i < kNumBlockLinears; ++i) {
        W[i] = load_block_weight(model, 2, i);
        wp[i] = W[i].data();
        const std::string t = block_linear_tensor(2, i);
        const std::string nm = block_linear_name(i);
        const bool promoted = nm == "self_attn.v_proj" || nm == "mlp.down_proj";  // q4_k_m, layer 2 of 6
        specs.push_back({i, t.substr(0, t.size() - 7), *gguf_block_scheme(promoted ? BlockType::Q6_K : BlockType::Q4_K)});
    }
    std::mt19937 g(3);
    std::uniform_int_distribution<int32_t> tok(0, model.config().vocab_size - 1);
    std::vector<std::vector<int32_t>> samples(n, std::vector<int32_t>(L));
    for (auto& v : samples)
        for (auto& x : v) x = tok(g);
    const std::vector<float> in = embed_samples(model, samples);
    std::vector<float> ref(in.size());
    block_forward_all(*block, wp, in.data(), n, L, n, ref.data());
    auto loss_with = [&](const std::array<std::vector<float>, kNumBlockLinears>& w) {
        std::array<const float*, kNumBlockLinears> p{};
        for (int i = 0; i < kNumBlockLinears; ++i) p[i] = w[i].data();
        std::vector<float> o(in.size());
        block_forward_all(*block, p, in.data(), n, L, n, o.data());
        const auto mask = last_token_mask(n, L);
        return masked_mse_loss<float>(o.data(), ref.data(), mask.data(), n, L, H, nullptr);
    };
    // llama.cpp's RTN of the same types
    std::array<std::vector<float>, kNumBlockLinears> rtn = W;
    for (const auto& s : specs) {
        const auto sh = block_linear_shape(block->dims(), s.which);
        rtn[s.which] = quantize_dq_rtn(W[s.which], sh[0], sh[1], s.scheme, s.name).dequantize();
        for (float& v : rtn[s.which]) v = round_to_bf16(v);
    }
    const double rtn_loss = loss_with(rtn);

    SignRoundOptions o;
    o.iters = 24;
    o.batch_size = static_cast<int>(n);
    o.progress = false;
    PythonRandom rng(42);
    const BlockTuneResult r = tune_block(*block, W, specs, in.data(), ref.data(), n, L, o, rng, "model.layers.2");
    std::printf("nano block 2, q4_k_m mix: iteration 0 (min-max) %.6g, llama.cpp RTN %.6g -> best %.6g at %d\n",
                r.losses[0], rtn_loss, r.report.best_loss, r.report.best_iter);
    EXPECT_LT(r.report.best_loss, 0.97 * r.losses[0]);
    EXPECT_LT(r.report.best_loss, rtn_loss) << "tuning beats llama.cpp's RTN of the same k-quant types";

    for (const auto& s : specs) {
        const QuantizedTensor& q = r.quantized.at(s.name);
        ASSERT_TRUE(q.double_quant()) << s.name;
        const BlockType t = *gguf_block_type_of(s.scheme);
        const auto blocks = dq_blocks_from_tensor(q, t);
        ASSERT_TRUE(blocks) << s.name;
        const int64_t rb = gguf::row_bytes(t, q.in_features);
        std::vector<float> row(static_cast<size_t>(q.in_features));
        for (int64_t i = 0; i < q.out_features; ++i) {
            gguf::dequantize_row(t, blocks->data() + i * rb, q.in_features, row.data());
            for (int64_t k = 0; k < q.in_features; ++k) {
                const size_t gi = static_cast<size_t>(i * q.n_groups() + k / q.group_len());
                if (!q.sym && q.dq_sc[gi] == 0) continue;  // τ-raised zero scale (documented)
                ASSERT_EQ(round_to_bf16(row[static_cast<size_t>(k)]),
                          r.qdq[static_cast<size_t>(s.which)][static_cast<size_t>(i * q.in_features + k)])
                    << s.name << " [" << i << ", " << k << "]";
            }
        }
    }
    EXPECT_NEAR(loss_with(r.qdq), r.report.best_loss, 1e-5 * r.report.best_loss);
}
