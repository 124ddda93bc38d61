// tests/quant/test_quantization_config.cpp — quant/quantization_config.h and quant/quantized_loader.h:
// parsing the three `quantization_config` dialects (the real configs written by Intel's auto-round for
// qwen3-nano, plus hand-written GPTQModel `dynamic` / auto-round `extra_config` / old AutoAWQ forms), error
// messages that name the field, the writer's keys against the peer files (and its two documented
// deviations), metadata filtering, and write -> parse round trips of per-layer rules.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/model_config.h"
#include "quant/quant_test_util.h"
#include "quant/quantization_config.h"
#include "quant/quantized_loader.h"

using namespace autoround;
using autoround::testquant::expect_error;
namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kPeer = kShared / "reference/peer-autoround";

const char* const kQ = "model.layers.3.self_attn.q_proj";
const char* const kDown = "model.layers.3.mlp.down_proj";

QuantizationConfig parse(const std::string& text) { return parse_quantization_config(ojson::parse(text), "test"); }

std::vector<std::string> keys_of(const ojson& j) {
    std::vector<std::string> k;
    for (const auto& [key, v] : j.items()) k.push_back(key);
    return k;
}

ojson peer_qc_file(const std::string& dir) {
    std::ifstream in(kPeer / dir / "quantization_config.json");
    return ojson::parse(in);
}

void expect_scheme(const LayerScheme& s, int bits, int64_t gs, bool sym) {
    EXPECT_EQ(s.bits, bits);
    if (bits <= 8) {
        EXPECT_EQ(s.group_size, gs);
        EXPECT_EQ(s.sym, sym);
    }
}

}  // namespace

// ---- the peer configs -----------------------------------------------------------------------------------

TEST(QuantConfigPeer, AutoRoundNative) {
    for (const char* dir : {"w4g128-ar200-auto_round", "exp-w4g128-auto_round-config"}) {
        SCOPED_TRACE(dir);
        const auto qc = load_quantization_config(kPeer / dir);
        ASSERT_TRUE(qc.has_value());
        EXPECT_EQ(qc->method, QuantMethod::AutoRound);
        EXPECT_EQ(qc->bits, 4);
        EXPECT_EQ(qc->group_size, 128);
        EXPECT_TRUE(qc->sym);
        EXPECT_EQ(qc->data_type, "int");
        EXPECT_EQ(qc->packing, AutoRoundPacking::AutoGptq);
        EXPECT_EQ(qc->block_name_to_quantize, std::vector<std::string>{"model.layers"});
        EXPECT_EQ(qc->autoround_version, "0.15.0");
        EXPECT_FALSE(qc->quant_lm_head);
        expect_scheme(qc->scheme_for(kQ), 4, 128, true);
        EXPECT_FALSE(qc->is_quantized("lm_head"));
        EXPECT_FALSE(qc->is_quantized("model.embed_tokens"));
        EXPECT_FALSE(qc->iters.has_value());
    }
}

TEST(QuantConfigPeer, Gptq) {
    const auto qc = load_quantization_config(kPeer / "exp-w4g128-auto_gptq");
    ASSERT_TRUE(qc.has_value());
    EXPECT_EQ(qc->method, QuantMethod::Gptq);
    EXPECT_EQ(qc->gptq_zeros, GptqZeros::V1);  // no checkpoint_format => v1
    EXPECT_FALSE(qc->desc_act);
    EXPECT_FALSE(qc->quant_lm_head);
    EXPECT_TRUE(qc->block_name_to_quantize.empty());
    expect_scheme(qc->scheme_for(kDown), 4, 128, true);
    EXPECT_FALSE(qc->is_quantized("lm_head"));
}

TEST(QuantConfigPeer, Awq) {
    const auto qc = load_quantization_config(kPeer / "exp-w4g128-auto_awq");
    ASSERT_TRUE(qc.has_value());
    EXPECT_EQ(qc->method, QuantMethod::Awq);
    EXPECT_TRUE(qc->sym);                // auto-round's "sym" key wins over "zero_point"
    EXPECT_FALSE(qc->awq_zero_point);    // what the peer wrote
    EXPECT_EQ(qc->modules_to_not_convert, std::vector<std::string>{"lm_head"});
    EXPECT_EQ(qc->block_name_to_quantize, std::vector<std::string>{"model.layers"});
    expect_scheme(qc->scheme_for(kQ), 4, 128, true);
    EXPECT_FALSE(qc->is_quantized("lm_head"));
}

TEST(QuantConfigPeer, UnquantizedModelHasNoConfig) {
    EXPECT_FALSE(load_quantization_config(kShared / "models/qwen3-nano").has_value());
}

// ---- dialect details ---------------------------------------------------------------------------------------

TEST(QuantConfigParse, GptqDynamicRulesAndV2) {
    const auto qc = parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": false, "sym": true,
        "checkpoint_format": "gptq_v2", "lm_head": true,
        "dynamic": {"-:.*visual.*": {}, "+:.*down_proj": {"bits": 8, "group_size": 64},
                    ".*v_proj": {"sym": false}, "-:visual": {}}})");
    EXPECT_EQ(qc.gptq_zeros, GptqZeros::V2);
    EXPECT_TRUE(qc.quant_lm_head);
    EXPECT_FALSE(qc.is_quantized("model.visual.blocks.0.attn.qkv"));
    expect_scheme(qc.scheme_for(kDown), 8, 64, true);
    expect_scheme(qc.scheme_for("model.layers.0.self_attn.v_proj"), 4, 128, false);
    expect_scheme(qc.scheme_for(kQ), 4, 128, true);
    expect_scheme(qc.scheme_for("lm_head"), 4, 128, true);
    // re.match semantics: "-:visual" is anchored at the start, so it does not skip "model.visual..."
    QuantizationConfig only_anchored = qc;
    only_anchored.pattern_overrides = {qc.pattern_overrides.back()};
    EXPECT_TRUE(only_anchored.is_quantized("model.visual.blocks.0.attn.qkv"));
    EXPECT_FALSE(only_anchored.is_quantized("visual.blocks.0.attn.qkv"));
    // "format" (GPTQModel >= 5) is read when checkpoint_format is absent
    EXPECT_EQ(parse(R"({"quant_method":"gptq","bits":4,"group_size":128,"format":"gptq_v2"})").gptq_zeros, GptqZeros::V2);
}

TEST(QuantConfigParse, GptqModulesInBlockToQuantize) {
    const auto qc = parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": false,
        "block_name_to_quantize": "model.language_model.layers",
        "modules_in_block_to_quantize": [["self_attn.q_proj", "self_attn.k_proj"], ["mlp.up_proj"]]})");
    EXPECT_TRUE(qc.is_quantized("model.language_model.layers.0.self_attn.q_proj"));
    EXPECT_TRUE(qc.is_quantized("model.language_model.layers.5.mlp.up_proj"));
    EXPECT_FALSE(qc.is_quantized("model.language_model.layers.0.self_attn.v_proj"));
    EXPECT_FALSE(qc.is_quantized("model.visual.blocks.0.mlp.up_proj"));  // outside the block list
}

TEST(QuantConfigParse, AutoRoundExtraConfig) {
    const auto qc = parse(R"({"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": true,
        "data_type": "int", "packing_format": "auto_round:auto_awq", "block_name_to_quantize": "model.layers",
        "iters": 0, "nsamples": 512, "lr": null,
        "extra_config": {"model.layers.0.mlp.down_proj": {"bits": 16, "data_type": "fp"},
                         "lm_head": {"bits": 8, "group_size": 128, "sym": true, "data_type": "int"},
                         ".*k_proj": {"bits": 8}}})");
    EXPECT_EQ(qc.packing, AutoRoundPacking::AutoAwq);
    EXPECT_FALSE(qc.is_quantized("model.layers.0.mlp.down_proj"));
    EXPECT_EQ(qc.scheme_for("model.layers.0.mlp.down_proj").data_type, "fp");
    expect_scheme(qc.scheme_for("model.layers.1.mlp.down_proj"), 4, 128, true);
    expect_scheme(qc.scheme_for("model.layers.1.self_attn.k_proj"), 8, 128, true);
    expect_scheme(qc.scheme_for("lm_head"), 8, 128, true);
    EXPECT_TRUE(qc.quant_lm_head);
    EXPECT_EQ(qc.iters, 0);
    EXPECT_EQ(qc.nsamples, 512);
    EXPECT_FALSE(qc.lr.has_value());
    EXPECT_FALSE(qc.is_quantized("model.embed_tokens"));  // outside block_name_to_quantize
    // legacy key and list form
    const auto legacy = parse(R"({"quant_method": "intel/auto-round", "bits": 2, "group_size": 64, "sym": false,
        "to_quant_block_names": ["model.language_model.layers"]})");
    EXPECT_EQ(legacy.method, QuantMethod::AutoRound);
    EXPECT_EQ(legacy.packing, AutoRoundPacking::AutoGptq);  // absent packing_format
    EXPECT_EQ(legacy.block_name_to_quantize, std::vector<std::string>{"model.language_model.layers"});
}

TEST(QuantConfigParse, OldAutoAwqKeys) {
    const auto qc = parse(R"({"quant_method": "awq", "w_bit": 4, "q_group_size": 64, "zero_point": true,
        "version": "GEMM", "modules_to_not_convert": null})");
    EXPECT_EQ(qc.bits, 4);
    EXPECT_EQ(qc.group_size, 64);
    EXPECT_FALSE(qc.sym);  // zero_point true, no "sym": asymmetric
    EXPECT_TRUE(qc.modules_to_not_convert.empty());
}

TEST(QuantConfigParse, ErrorsNameTheField) {
    expect_error([] { parse(R"({"quant_method":"gptq","group_size":128})"); }, {"test.bits", "missing"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":"4","group_size":128})"); }, {"test.bits", "integer"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":5,"group_size":128})"); }, {"test.bits", "5"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":4,"group_size":0})"); }, {"test.group_size", "per-tensor"});
    expect_error([] { parse(R"({"bits":4,"group_size":128})"); }, {"test.quant_method", "missing"});
    expect_error([] { parse(R"({"quant_method":"bitsandbytes","bits":4,"group_size":128})"); },
                 {"test.quant_method", "bitsandbytes"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":4,"group_size":128,"checkpoint_format":"marlin"})"); },
                 {"test.checkpoint_format", "marlin"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":4,"group_size":128,"desc_act":"no"})"); },
                 {"test.desc_act", "true or false"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":4,"group_size":128,"dynamic":[1]})"); }, {"test.dynamic"});
    expect_error([] { parse(R"({"quant_method":"gptq","bits":4,"group_size":128,"dynamic":{"+:x":{"bits":"8"}}})"); },
                 {"test.dynamic[\"+:x\"].bits"});
    expect_error([] { parse(R"({"quant_method":"awq","bits":4,"group_size":128,"version":"gemv"})"); },
                 {"test.version", "gemv"});
    expect_error([] { parse(R"({"quant_method":"awq","bits":8,"group_size":128})"); }, {"test.bits", "4-bit"});
    expect_error([] { parse(R"({"quant_method":"auto-round","bits":4,"group_size":32,"data_type":"mx_fp"})"); },
                 {"test.data_type", "mx_fp"});
    expect_error([] { parse(R"({"quant_method":"auto-round","bits":4,"group_size":128,"act_bits":8})"); },
                 {"test.act_bits"});
    expect_error([] { parse(R"({"quant_method":"auto-round","bits":4,"group_size":128,"packing_format":"x"})"); },
                 {"packing_format", "'x'"});
    expect_error([] { parse(R"({"quant_method":"auto-round","bits":4,"group_size":128,"extra_config":{"a":3}})"); },
                 {"test.extra_config[\"a\"]"});
    expect_error([] { parse("[1, 2]"); }, {"test", "object"});
}

// ---- writing ------------------------------------------------------------------------------------------------

TEST(QuantConfigWrite, KeysMatchThePeerFiles) {
    QuantizationConfig qc;  // W4G128 sym, tuning metadata at auto-round's defaults
    qc.block_name_to_quantize = {"model.layers"};

    const ojson ar = quantization_config_json(qc, QuantMethod::AutoRound);
    const ojson ar_peer = peer_qc_file("w4g128-ar200-auto_round");
    EXPECT_EQ(keys_of(ar), keys_of(ar_peer));
    EXPECT_EQ(ar, ar_peer);

    const ojson gp = quantization_config_json(qc, QuantMethod::Gptq);
    const ojson gp_peer = peer_qc_file("exp-w4g128-auto_gptq");
    std::vector<std::string> expect_keys = keys_of(gp_peer);
    expect_keys.push_back("checkpoint_format");  // deviation: written explicitly (v1), checkpoint-formats.md §1.8
    EXPECT_EQ(keys_of(gp), expect_keys);
    for (const auto& [k, v] : gp_peer.items()) EXPECT_EQ(gp.at(k), v) << k;
    EXPECT_EQ(gp.at("checkpoint_format"), "gptq");

    const ojson aw = quantization_config_json(qc, QuantMethod::Awq);
    const ojson aw_peer = peer_qc_file("exp-w4g128-auto_awq");
    EXPECT_EQ(keys_of(aw), keys_of(aw_peer));
    for (const auto& [k, v] : aw_peer.items()) {
        if (k == "zero_point") continue;
        EXPECT_EQ(aw.at(k), v) << k;
    }
    // deviation: the peer wrote false for this sym model, which keeps vLLM off AWQ-Marlin (§2.4)
    EXPECT_EQ(aw.at("zero_point"), true);
    EXPECT_EQ(aw_peer.at("zero_point"), false);
}

TEST(QuantConfigWrite, MetadataOnlyWhenNotDefault) {
    QuantizationConfig qc;
    qc.iters = 200;
    qc.lr = 1.0 / 200;
    qc.minmax_lr = 1.0 / 200;
    qc.nsamples = 128;
    qc.seqlen = 2048;
    qc.batch_size = 8;
    ojson j = quantization_config_json(qc, QuantMethod::AutoRound);
    for (const char* k : {"iters", "lr", "minmax_lr", "nsamples", "seqlen", "batch_size"}) EXPECT_FALSE(j.contains(k)) << k;

    qc.iters = 0;       // RTN, as auto-round v0.12 wrote: "iters": 0
    qc.lr = 5e-3;       // the iters = 0 default
    qc.minmax_lr.reset();
    qc.nsamples = 512;
    qc.seqlen = 512;
    j = quantization_config_json(qc, QuantMethod::AutoRound);
    EXPECT_EQ(j.at("iters"), 0);
    EXPECT_EQ(j.at("nsamples"), 512);
    EXPECT_EQ(j.at("seqlen"), 512);
    EXPECT_FALSE(j.contains("lr"));
    EXPECT_FALSE(j.contains("batch_size"));

    qc.iters = 1000;
    qc.lr = 2e-3;  // default would be 1e-3
    j = quantization_config_json(qc, QuantMethod::Gptq);
    EXPECT_EQ(j.at("iters"), 1000);
    EXPECT_DOUBLE_EQ(j.at("lr").get<double>(), 2e-3);
    const QuantizationConfig back = parse_quantization_config(j, "rt");
    EXPECT_EQ(back.iters, 1000);
    EXPECT_EQ(back.nsamples, 512);
}

TEST(QuantConfigWrite, PerLayerRulesRoundTrip) {
    QuantizationConfig qc;
    qc.block_name_to_quantize = {"model.language_model.layers"};
    qc.layer_overrides["model.language_model.layers.0.mlp.down_proj"] = {16, 128, true, "float"};
    qc.layer_overrides["model.language_model.layers.1.mlp.down_proj"] = {8, 64, true, "int"};
    qc.layer_overrides["lm_head"] = {4, 128, true, "int"};
    qc.quant_lm_head = true;
    qc.pattern_overrides.push_back({".*k_proj", {8, 128, true, "int"}, false});
    qc.modules_to_not_convert = {"visual"};

    const std::vector<std::string> names = {
        "model.language_model.layers.0.mlp.down_proj", "model.language_model.layers.1.mlp.down_proj",
        "model.language_model.layers.2.mlp.down_proj", "model.language_model.layers.2.self_attn.k_proj",
        "model.language_model.layers.2.self_attn.q_proj", "model.visual.blocks.0.mlp.up_proj", "lm_head"};

    // auto-round: everything round-trips
    const ojson ar = quantization_config_json(qc, QuantMethod::AutoRound);
    EXPECT_EQ(ar.at("block_name_to_quantize"), "model.language_model.layers");
    EXPECT_EQ(ar.at("extra_config").at("model.language_model.layers.0.mlp.down_proj"),
              ojson({{"bits", 16}, {"data_type", "float"}}));
    EXPECT_EQ(ar.at("extra_config").at("model.language_model.layers.1.mlp.down_proj"),
              ojson({{"bits", 8}, {"group_size", 64}}));
    EXPECT_EQ(ar.at("extra_config").at("lm_head").size(), 4u);  // full scheme outside the blocks
    const QuantizationConfig ar_back = parse_quantization_config(ar, "rt");
    for (const auto& n : names) EXPECT_EQ(ar_back.scheme_for(n).bits, qc.scheme_for(n).bits) << n;
    expect_scheme(ar_back.scheme_for(names[1]), 8, 64, true);

    // GPTQ: dynamic rules + lm_head flag
    const ojson gp = quantization_config_json(qc, QuantMethod::Gptq);
    EXPECT_TRUE(gp.at("lm_head").get<bool>());
    EXPECT_TRUE(gp.at("dynamic").contains("-:model\\.language_model\\.layers\\.0\\.mlp\\.down_proj"));
    EXPECT_TRUE(gp.at("dynamic").contains("-:.*visual.*"));
    EXPECT_EQ(gp.at("block_name_to_quantize"), "model.language_model.layers");  // not an optimum default pattern
    const QuantizationConfig gp_back = parse_quantization_config(gp, "rt");
    for (const auto& n : names) {
        SCOPED_TRACE(n);
        const LayerScheme a = gp_back.scheme_for(n), b = qc.scheme_for(n);
        EXPECT_EQ(a.bits, b.bits);
        if (b.quantized()) {
            EXPECT_EQ(a.group_size, b.group_size);
            EXPECT_EQ(a.sym, b.sym);
        }
    }

    // AWQ: only skip rules exist
    QuantizationConfig aq = qc;
    aq.layer_overrides.erase("model.language_model.layers.1.mlp.down_proj");
    aq.layer_overrides.erase("lm_head");
    aq.quant_lm_head = false;
    aq.pattern_overrides.clear();
    const ojson aw = quantization_config_json(aq, QuantMethod::Awq);
    EXPECT_EQ(aw.at("modules_to_not_convert"),
              ojson({"lm_head", "visual", "model.language_model.layers.0.mlp.down_proj"}));
    const QuantizationConfig aw_back = parse_quantization_config(aw, "rt");
    for (const auto& n : names) EXPECT_EQ(aw_back.is_quantized(n), aq.is_quantized(n)) << n;
}

TEST(QuantConfigWrite, RefusesWhatTheDialectCannotSay) {
    QuantizationConfig qc;
    qc.bits = 3;
    expect_error([&] { quantization_config_json(qc, QuantMethod::Awq); }, {"AWQ", "4-bit"});
    qc.bits = 4;
    qc.data_type = "nv_fp";
    expect_error([&] { quantization_config_json(qc, QuantMethod::AutoRound); }, {"data_type", "nv_fp"});
}
