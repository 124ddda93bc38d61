// tests/quant/test_scheme.cpp — quant/scheme.h: presets and overrides, block selection
// (--to_quant_block_names), --ignore_layers (exact names, substrings, the trailing '.' after a digit),
// --layer_config (exact names, regexes, presets, the Python CLI's unquoted JSON, bad keys), the shape rule,
// lm_head with tied and untied embeddings, and describe_model on qwen3-nano.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/qwen3_block_grad.h"
#include "quant/scheme.h"
#include "quant_test_util.h"

using namespace autoround;
using autoround::testquant::expect_error;

namespace {

// A Qwen3-like layout: `nblocks` blocks of 7 linears (hidden 512, q 4x128, kv 2x128, intermediate `inter`),
// plus lm_head [8192, 512].
ModelLayout layout(int nblocks, int64_t inter = 1280, bool tied = true) {
    ModelLayout m;
    m.tie_word_embeddings = tied;
    Qwen3BlockDims d;
    d.hidden = 512;
    d.n_q_heads = 4;
    d.n_kv_heads = 2;
    d.head_dim = 128;
    d.intermediate = inter;
    for (int b = 0; b < nblocks; ++b) {
        const std::string blk = "model.layers." + std::to_string(b);
        m.blocks.push_back(blk);
        for (int w = 0; w < kNumBlockLinears; ++w) {
            const auto s = block_linear_shape(d, w);
            m.linears.push_back({blk + "." + block_linear_name(w), s[0], s[1]});
        }
    }
    m.linears.push_back({"lm_head", 8192, 512});
    return m;
}

std::vector<std::string> names_of(const QuantPlan& p) {
    std::vector<std::string> r;
    for (const auto& l : p.all_layers()) r.push_back(l.name);
    return r;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST(Scheme, Presets) {
    EXPECT_EQ(preset_scheme("W4A16"), (LayerScheme{4, 128, true, "int"}));
    EXPECT_EQ(preset_scheme("w2a16g64"), (LayerScheme{2, 64, true, "int"}));
    EXPECT_EQ(preset_scheme("W2A16G32"), (LayerScheme{2, 32, true, "int"}));
    EXPECT_EQ(preset_scheme("W2A16"), (LayerScheme{2, 128, true, "int"}));
    EXPECT_EQ(preset_scheme("W3A16"), (LayerScheme{3, 128, true, "int"}));
    EXPECT_EQ(preset_scheme("W8A16"), (LayerScheme{8, 128, true, "int"}));
    EXPECT_FALSE(preset_scheme("BF16").quantized());
    expect_error([] { preset_scheme("W4A8"); }, {"unknown scheme", "W4A16", "W2A16G64"});
}

TEST(Scheme, GlobalOverrides) {
    SchemeOptions o;
    EXPECT_EQ(resolve_global_scheme(o), (LayerScheme{4, 128, true, "int"}));
    o.scheme = "W2A16G64";
    o.bits = 3;
    o.sym = false;
    EXPECT_EQ(resolve_global_scheme(o), (LayerScheme{3, 64, false, "int"}));
    o.group_size = -1;
    EXPECT_EQ(resolve_global_scheme(o).group_size, -1);
    o.group_size = 0;
    expect_error([&] { resolve_global_scheme(o); }, {"group_size", "per-tensor"});
    o.group_size = 128;
    o.bits = 1;
    expect_error([&] { resolve_global_scheme(o); }, {"bits"});
    o.bits = 4;
    o.data_type = "mx_fp";
    expect_error([&] { resolve_global_scheme(o); }, {"data_type", "mx_fp"});
}

TEST(Scheme, DefaultPlanQuantizesEveryBlockLinearButNotLmHead) {
    const QuantPlan p = plan_quantization(layout(4), SchemeOptions{});
    ASSERT_EQ(p.blocks.size(), 4u);
    for (size_t b = 0; b < 4; ++b) {
        EXPECT_EQ(p.blocks[b].index, static_cast<int>(b));
        EXPECT_EQ(p.blocks[b].layers.size(), 7u);
    }
    EXPECT_TRUE(p.outside.empty());
    EXPECT_TRUE(p.skipped.empty());
    EXPECT_EQ(p.num_quantized(), 28);
    EXPECT_EQ(p.qc.block_name_to_quantize, std::vector<std::string>{"model.layers"});
    EXPECT_TRUE(p.qc.layer_overrides.empty());
    EXPECT_FALSE(p.qc.quant_lm_head);
    EXPECT_FALSE(p.qc.is_quantized("lm_head"));
    EXPECT_TRUE(p.qc.is_quantized("model.layers.2.mlp.up_proj"));
}

TEST(Scheme, ToQuantBlockNames) {
    SchemeOptions o;
    o.to_quant_block_names = "layers\\.[12]$";
    QuantPlan p = plan_quantization(layout(4), o);
    ASSERT_EQ(p.blocks.size(), 2u);
    EXPECT_EQ(p.blocks[0].name, "model.layers.1");
    EXPECT_EQ(p.blocks[1].name, "model.layers.2");
    o.to_quant_block_names = "model.layers.3, model.layers.0, model.layers.3";  // comma list, dupes, order
    p = plan_quantization(layout(4), o);
    ASSERT_EQ(p.blocks.size(), 2u);
    EXPECT_EQ(p.blocks[0].index, 0);
    EXPECT_EQ(p.blocks[1].index, 3);
    o.to_quant_block_names = "visual";
    expect_error([&] { plan_quantization(layout(4), o); }, {"--to_quant_block_names", "matched no block"});
    o.to_quant_block_names = "layers.(";
    expect_error([&] { plan_quantization(layout(4), o); }, {"--to_quant_block_names", "regular expression"});
}

TEST(Scheme, IgnoreLayers) {
    SchemeOptions o;
    o.ignore_layers = "mlp.down_proj";
    QuantPlan p = plan_quantization(layout(3), o);
    EXPECT_EQ(p.num_quantized(), 18);
    ASSERT_EQ(p.skipped.size(), 3u);
    EXPECT_EQ(p.skipped[0].reason, "ignore_layers");
    EXPECT_EQ(p.qc.layer_overrides.at("model.layers.1.mlp.down_proj"), (LayerScheme{16, 128, true, "float"}));
    EXPECT_FALSE(p.qc.is_quantized("model.layers.1.mlp.down_proj"));

    // "model.layers.1" ends in a digit: it becomes "model.layers.1." and leaves blocks 10 and 11 alone
    o.ignore_layers = "model.layers.1";
    p = plan_quantization(layout(12), o);
    const auto n = names_of(p);
    EXPECT_EQ(p.num_quantized(), 11 * 7);
    EXPECT_FALSE(has(n, "model.layers.1.self_attn.q_proj"));
    EXPECT_TRUE(has(n, "model.layers.10.self_attn.q_proj"));
    EXPECT_TRUE(has(n, "model.layers.11.mlp.up_proj"));

    // an exact layer name
    o.ignore_layers = "model.layers.0.self_attn.q_proj, nothing_like_this";
    p = plan_quantization(layout(2), o);
    EXPECT_EQ(p.num_quantized(), 13);
    ASSERT_FALSE(p.warnings.empty());
    EXPECT_NE(p.warnings.back().find("nothing_like_this"), std::string::npos);
}

TEST(Scheme, LayerConfigExactRegexAndPresets) {
    SchemeOptions o;
    o.layer_config =
        R"({"model.layers.0.self_attn.k_proj": {"bits": 8}, "mlp.gate_proj": "W2A16G32", "v_proj": {"bits": 16}})";
    const QuantPlan p = plan_quantization(layout(2), o);
    EXPECT_EQ(p.qc.scheme_for("model.layers.0.self_attn.k_proj"), (LayerScheme{8, 128, true, "int"}));
    EXPECT_EQ(p.qc.scheme_for("model.layers.1.self_attn.k_proj"), (LayerScheme{4, 128, true, "int"}));
    EXPECT_EQ(p.qc.scheme_for("model.layers.1.mlp.gate_proj"), (LayerScheme{2, 32, true, "int"}));
    EXPECT_FALSE(p.qc.is_quantized("model.layers.0.self_attn.v_proj"));
    EXPECT_EQ(p.num_quantized(), 12);
    // plain keys are kept as regex rules for the export, in auto-round's ".*<escaped>.*" form
    ASSERT_EQ(p.qc.pattern_overrides.size(), 2u);
    EXPECT_EQ(p.qc.pattern_overrides[0].pattern, ".*mlp\\.gate_proj.*");
    EXPECT_EQ(p.qc.pattern_overrides[1].pattern, ".*v_proj.*");
    // the planned layer carries its own scheme
    for (const auto& l : p.blocks[0].layers)
        if (l.name == "model.layers.0.self_attn.k_proj") {
            EXPECT_EQ(l.scheme.bits, 8);
        }
}

TEST(Scheme, LayerConfigPythonStyleAndErrors) {
    SchemeOptions o;
    o.layer_config = "{k_proj:{bits:8, sym:False}}";  // the Python CLI's JSON-like form
    const QuantPlan p = plan_quantization(layout(2), o);
    EXPECT_EQ(p.qc.scheme_for("model.layers.1.self_attn.k_proj"), (LayerScheme{8, 128, false, "int"}));

    o.layer_config = R"({"nonexistent_proj": {"bits": 8}})";
    expect_error([&] { plan_quantization(layout(2), o); }, {"nonexistent_proj", "neither"});
    o.layer_config = R"({"k_proj": {"bitz": 8}})";
    expect_error([&] { plan_quantization(layout(2), o); }, {"bitz", "unknown key"});
    o.layer_config = R"({"k_proj": {"act_bits": 8}})";
    expect_error([&] { plan_quantization(layout(2), o); }, {"act_bits", "not supported"});
    o.layer_config = R"({"k_proj": {"bits": 4, "group_size": 0}})";
    expect_error([&] { plan_quantization(layout(2), o); }, {"group_size"});
    o.layer_config = "[1, 2]";
    expect_error([&] { plan_quantization(layout(2), o); }, {"--layer_config", "object"});
}

TEST(Scheme, IgnoreLayersWinsOverLayerConfig) {
    SchemeOptions o;
    o.ignore_layers = "model.layers.0.mlp.up_proj";
    o.layer_config = R"({"up_proj": {"bits": 8}})";
    const QuantPlan p = plan_quantization(layout(2), o);
    EXPECT_FALSE(p.qc.is_quantized("model.layers.0.mlp.up_proj"));
    EXPECT_EQ(p.qc.scheme_for("model.layers.1.mlp.up_proj").bits, 8);
}

TEST(Scheme, ShapeRuleKeepsNonMultiplesOf32In16Bit) {
    const QuantPlan p = plan_quantization(layout(2, /*inter=*/1000), SchemeOptions{});
    EXPECT_EQ(p.num_quantized(), 8);  // q, k, v, o per block; gate/up [1000, 512], down [512, 1000] skipped
    EXPECT_EQ(p.skipped.size(), 6u);
    EXPECT_EQ(p.skipped[0].reason, "shape not divisible by 32");
    EXPECT_EQ(p.qc.layer_overrides.at("model.layers.0.mlp.down_proj"), (LayerScheme{16, 128, true, "fp"}));
    bool warned = false;
    for (const auto& w : p.warnings) warned |= w.find("not divisible by 32") != std::string::npos;
    EXPECT_TRUE(warned);
    // group sizes that do not divide `in` are allowed (zero-padded last group): group_size 96 with in 512
    SchemeOptions o;
    o.group_size = 96;
    EXPECT_EQ(plan_quantization(layout(1), o).num_quantized(), 7);
}

TEST(Scheme, LmHead) {
    SchemeOptions o;
    o.quant_lm_head = true;
    QuantPlan p = plan_quantization(layout(2, 1280, /*tied=*/true), o);
    EXPECT_TRUE(p.outside.empty());
    EXPECT_FALSE(p.qc.quant_lm_head);
    bool warned = false;
    for (const auto& w : p.warnings) warned |= w.find("tied") != std::string::npos;
    EXPECT_TRUE(warned);

    p = plan_quantization(layout(2, 1280, /*tied=*/false), o);
    ASSERT_EQ(p.outside.size(), 1u);
    EXPECT_EQ(p.outside[0].name, "lm_head");
    EXPECT_TRUE(p.qc.quant_lm_head);
    EXPECT_TRUE(p.qc.is_quantized("lm_head"));
    EXPECT_EQ(p.num_quantized(), 15);

    // a layer_config entry for lm_head asks for it too
    SchemeOptions o2;
    o2.layer_config = R"({"lm_head": "W8A16"})";
    p = plan_quantization(layout(1, 1280, false), o2);
    ASSERT_EQ(p.outside.size(), 1u);
    EXPECT_EQ(p.outside[0].scheme.bits, 8);
}

TEST(Scheme, NothingLeftIsAnError) {
    SchemeOptions o;
    o.ignore_layers = "model.layers";
    expect_error([&] { plan_quantization(layout(2), o); }, {"no layer is left to quantize"});
}

TEST(Scheme, DescribeQwen3Nano) {
    const std::string dir = std::string(AR_SHARED_DIR) + "/models/qwen3-nano";
    const ModelConfig cfg = load_model_config(dir);
    const TensorStore st = TensorStore::open(dir);
    const ModelLayout m = describe_model(cfg, st);
    EXPECT_EQ(m.blocks.size(), 6u);
    ASSERT_EQ(m.linears.size(), 6u * 7 + 1);
    EXPECT_EQ(m.linears[0].name, "model.layers.0.self_attn.q_proj");
    EXPECT_EQ(m.linears[6].name, "model.layers.0.mlp.down_proj");
    EXPECT_EQ(m.linears[6].out, 512);
    EXPECT_EQ(m.linears[6].in, 1280);
    EXPECT_EQ(m.linears.back().name, "lm_head");
    EXPECT_TRUE(m.tie_word_embeddings);
    const QuantPlan p = plan_quantization(m, SchemeOptions{});
    EXPECT_EQ(p.num_quantized(), 42);
}

TEST(Scheme, DescribeQwen3VlNanoWithTheVisionTower) {
    // --quant_nontext_module: the tower's blocks come first (named_modules order), each with its 4 linears; the
    // plan keeps each block's own layer number and records both block lists.
    const std::string dir = std::string(AR_SHARED_DIR) + "/models/qwen3-vl-nano";
    const ModelConfig cfg = load_model_config(dir);
    const TensorStore st = TensorStore::open(dir);
    const ModelLayout text_only = describe_model(cfg, st);
    const ModelLayout m = describe_model(cfg, st, /*include_vision=*/true);
    ASSERT_EQ(m.blocks.size(), text_only.blocks.size() + 4);
    EXPECT_EQ(m.blocks.front(), "model.visual.blocks.0");
    EXPECT_EQ(m.blocks[4], "model.language_model.layers.0");
    EXPECT_EQ(m.linears[0].name, "model.visual.blocks.0.attn.qkv");
    EXPECT_EQ(m.linears[3].name, "model.visual.blocks.0.mlp.linear_fc2");
    EXPECT_TRUE(is_vision_block_name("model.visual.blocks.3"));
    EXPECT_FALSE(is_vision_block_name("model.language_model.layers.3"));

    const QuantPlan p = plan_quantization(m, SchemeOptions{});
    EXPECT_EQ(p.qc.block_name_to_quantize, (std::vector<std::string>{"model.visual.blocks", "model.language_model.layers"}));
    ASSERT_EQ(p.blocks.size(), m.blocks.size());
    EXPECT_TRUE(p.blocks[3].vision);
    EXPECT_EQ(p.blocks[3].index, 3);
    EXPECT_FALSE(p.blocks[4].vision);
    EXPECT_EQ(p.blocks[4].index, 0);
    EXPECT_EQ(p.blocks[0].layers.size(), 4u);
    EXPECT_EQ(p.num_quantized(), plan_quantization(text_only, SchemeOptions{}).num_quantized() + 16);
    EXPECT_TRUE(p.qc.is_quantized("model.visual.blocks.1.attn.proj"));
    EXPECT_FALSE(p.qc.is_quantized("model.visual.merger.linear_fc1"));
    // the text-only layout never lists the tower
    EXPECT_EQ(plan_quantization(text_only, SchemeOptions{}).qc.block_name_to_quantize,
              std::vector<std::string>{"model.language_model.layers"});
}
