// tests/export/test_exporter.cpp — export/exporter.h end to end on qwen3-nano: RTN W4G128 sym of every
// block Linear, exported to auto_round, auto_gptq, auto_awq and fake in one call, then checked against the
// checkpoints Intel's auto-round wrote for the same model (shared/reference/peer-autoround): folder names,
// tensor names/dtypes/shapes, config.json and quantization_config keys and values (with the two documented
// deviations), bit-identical dequantized weights across the three packed formats and the fake export (after
// bf16 rounding), byte-identical unquantized tensors and tokenizer files; the peer checkpoints through
// load_linear_dequantized; sharding; skipped in-block layers; and refusals that leave no folder behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "export/exporter.h"
#include "io/io_test_util.h"
#include "io/model_config.h"
#include "quant/quant_test_util.h"
#include "quant/quantization_config.h"
#include "quant/quantized_loader.h"
#include "quant/rtn.h"

using namespace autoround;
using autoround::testio::read_file;
using autoround::testio::TempDir;
using autoround::testquant::expect_error;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kShared = AR_SHARED_DIR;
const fs::path kPeer = kShared / "reference/peer-autoround";
const fs::path kModel = kShared / "models/qwen3-nano";

bool ends_with(const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Every 2-D weight inside model.layers, RTN-quantized with `opt` (W4G128 sym by default).
QuantizedLayers rtn_layers(const TensorStore& st, const QdqOptions& opt, const std::string& only = "") {
    QuantizedLayers out;
    for (const auto& [name, t] : st.tensors()) {
        if (name.rfind("model.layers.", 0) != 0 || !ends_with(name, ".weight") || t.shape.size() != 2) continue;
        const std::string layer = name.substr(0, name.size() - 7);
        if (!only.empty() && layer != only) continue;
        const std::vector<float> w = st.load_f32(name);
        out.emplace(layer, quantize_rtn(w, t.shape[0], t.shape[1], opt, layer));
    }
    return out;
}

struct Sig {
    DType dtype;
    std::vector<int64_t> shape;
    bool operator==(const Sig&) const = default;
};
std::map<std::string, Sig> signature(const TensorStore& st) {
    std::map<std::string, Sig> m;
    for (const auto& [n, t] : st.tensors()) m[n] = {t.dtype, t.shape};
    return m;
}

std::set<std::string> key_set(const json& j) {
    std::set<std::string> k;
    for (const auto& [key, v] : j.items()) k.insert(key);
    return k;
}

bool same_bytes(const TensorInfo& a, const TensorInfo& b) {
    return a.dtype == b.dtype && a.shape == b.shape && a.nbytes == b.nbytes && std::memcmp(a.data, b.data, a.nbytes) == 0;
}

// Leftovers of AtomicDir (".NAME.tmp-PID") anywhere under `root`.
int temp_folders_under(const fs::path& root) {
    int n = 0;
    std::error_code ec;
    if (!fs::exists(root, ec)) return 0;
    for (const auto& e : fs::recursive_directory_iterator(root, ec))
        if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
    return n;
}

// One export of all four formats, shared by the tests below.
class ExportQwen3Nano : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tmp_ = std::make_unique<TempDir>();
        src_ = std::make_unique<TensorStore>(TensorStore::open(kModel));
        layers_ = std::make_unique<QuantizedLayers>(rtn_layers(*src_, QdqOptions{}));
        ExportOptions o;
        o.output_dir = tmp_->path() / "out";
        results_ = std::make_unique<std::vector<ExportResult>>(export_model(
            kModel, *src_, QuantizationConfig{}, *layers_,
            parse_export_formats("auto_round,auto_gptq,auto_awq,fake"), o));
    }
    static void TearDownTestSuite() {
        results_.reset();
        layers_.reset();
        src_.reset();
        tmp_.reset();
    }
    static fs::path folder(ExportFormat f) {
        for (const auto& r : *results_)
            if (r.format == f) return r.folder;
        ADD_FAILURE() << "format not exported";
        return {};
    }

    static std::unique_ptr<TempDir> tmp_;
    static std::unique_ptr<TensorStore> src_;
    static std::unique_ptr<QuantizedLayers> layers_;
    static std::unique_ptr<std::vector<ExportResult>> results_;
};
std::unique_ptr<TempDir> ExportQwen3Nano::tmp_;
std::unique_ptr<TensorStore> ExportQwen3Nano::src_;
std::unique_ptr<QuantizedLayers> ExportQwen3Nano::layers_;
std::unique_ptr<std::vector<ExportResult>> ExportQwen3Nano::results_;

const ExportFormat kPacked[] = {ExportFormat::AutoRound, ExportFormat::AutoGptq, ExportFormat::AutoAwq};
std::string peer_dir_for(ExportFormat f) {
    switch (f) {
        case ExportFormat::AutoRound: return "w4g128-ar200-auto_round";
        case ExportFormat::AutoGptq: return "exp-w4g128-auto_gptq";
        default: return "exp-w4g128-auto_awq";
    }
}

}  // namespace

// ---- the four folders ------------------------------------------------------------------------------------

TEST_F(ExportQwen3Nano, FolderNamesFollowTheSpec) {
    ASSERT_EQ(layers_->size(), 42u);  // 6 blocks x (q, k, v, o, gate, up, down)
    ASSERT_EQ(results_->size(), 4u);
    const fs::path base = tmp_->path() / "out" / "qwen3-nano-w4g128";
    EXPECT_EQ(folder(ExportFormat::AutoRound), base / "auto-round-auto-gptq");
    EXPECT_EQ(folder(ExportFormat::AutoGptq), base / "auto-gptq");
    EXPECT_EQ(folder(ExportFormat::AutoAwq), base / "auto-awq");
    EXPECT_EQ(folder(ExportFormat::Fake), base / "fake");
    for (const auto& r : *results_) {
        EXPECT_TRUE(fs::is_directory(r.folder)) << r.folder;
        EXPECT_TRUE(fs::exists(r.folder / "model.safetensors")) << r.folder;  // < 5 GB: one shard, no index
        EXPECT_FALSE(fs::exists(r.folder / "model.safetensors.index.json")) << r.folder;
    }
    EXPECT_EQ((*results_)[0].backend, "auto_round:auto_gptq");
    EXPECT_EQ(temp_folders_under(tmp_->path()), 0);
}

TEST_F(ExportQwen3Nano, TensorNamesDtypesShapesMatchThePeerExports) {
    for (ExportFormat f : kPacked) {
        SCOPED_TRACE(std::string(export_format_name(f)));
        const TensorStore ours = TensorStore::open(folder(f));
        const TensorStore peer = TensorStore::open(kPeer / peer_dir_for(f));
        const auto a = signature(ours), b = signature(peer);
        EXPECT_EQ(a.size(), b.size());
        for (const auto& [n, s] : b) {
            auto it = a.find(n);
            ASSERT_NE(it, a.end()) << "missing " << n;
            EXPECT_TRUE(it->second == s) << n;
        }
        EXPECT_EQ(ours.metadata().at("format"), "pt");
    }
    const TensorStore fake = TensorStore::open(folder(ExportFormat::Fake));
    EXPECT_TRUE(signature(fake) == signature(*src_));
}

TEST_F(ExportQwen3Nano, ConfigsMatchThePeerExports) {
    for (ExportFormat f : kPacked) {
        SCOPED_TRACE(std::string(export_format_name(f)));
        const json ours = read_json_file(folder(f) / "config.json");
        const json peer = read_json_file(kPeer / peer_dir_for(f) / "config.json");
        EXPECT_EQ(key_set(ours), key_set(peer));
        for (const auto& [k, v] : peer.items()) {
            if (k == "quantization_config") continue;
            EXPECT_EQ(ours.at(k), v) << k;  // incl. dtype/torch_dtype float16 for GPTQ/AWQ
        }

        const json& q = ours.at("quantization_config");
        const json& pq = peer.at("quantization_config");
        std::set<std::string> expect = key_set(pq);
        if (f == ExportFormat::AutoGptq) expect.insert("checkpoint_format");  // documented deviation
        EXPECT_EQ(key_set(q), expect);
        for (const auto& [k, v] : pq.items()) {
            if (k == "zero_point") continue;  // documented deviation: true for sym AWQ (vLLM AWQ-Marlin)
            EXPECT_EQ(q.at(k), v) << k;
        }
        // quantization_config.json holds the same dict; GPTQ also writes quantize_config.json
        EXPECT_EQ(read_json_file(folder(f) / "quantization_config.json"), q);
        EXPECT_EQ(fs::exists(folder(f) / "quantize_config.json"), f == ExportFormat::AutoGptq);
        if (f == ExportFormat::AutoGptq) {
            EXPECT_EQ(read_json_file(folder(f) / "quantize_config.json"), q);
        }
    }
    EXPECT_EQ(read_json_file(folder(ExportFormat::AutoAwq) / "config.json").at("quantization_config").at("zero_point"), true);
    EXPECT_EQ(read_json_file(folder(ExportFormat::AutoGptq) / "config.json").at("quantization_config").at("checkpoint_format"),
              "gptq");
    // fake: the source config.json unchanged, no quantization_config anywhere
    EXPECT_EQ(read_file(folder(ExportFormat::Fake) / "config.json"), read_file(kModel / "config.json"));
    EXPECT_FALSE(fs::exists(folder(ExportFormat::Fake) / "quantization_config.json"));
}

TEST_F(ExportQwen3Nano, AllFormatsDequantizeToTheSameWeights) {
    std::map<ExportFormat, std::unique_ptr<TensorStore>> stores;
    std::map<ExportFormat, QuantizationConfig> configs;
    for (ExportFormat f : kPacked) {
        stores[f] = std::make_unique<TensorStore>(TensorStore::open(folder(f)));
        auto qc = load_quantization_config(folder(f));
        ASSERT_TRUE(qc.has_value());
        configs[f] = *qc;
    }
    EXPECT_EQ(configs[ExportFormat::AutoRound].method, QuantMethod::AutoRound);
    EXPECT_EQ(configs[ExportFormat::AutoGptq].method, QuantMethod::Gptq);
    EXPECT_EQ(configs[ExportFormat::AutoAwq].method, QuantMethod::Awq);
    const TensorStore fake = TensorStore::open(folder(ExportFormat::Fake));

    for (const auto& [name, q] : *layers_) {
        SCOPED_TRACE(name);
        const std::vector<float> ref = q.dequantize();
        for (ExportFormat f : kPacked) {
            const auto d = load_linear_dequantized(*stores[f], name, configs[f], q.out_features, q.in_features);
            ASSERT_TRUE(d.has_value()) << export_format_name(f);
            ASSERT_EQ(d->size(), ref.size());
            EXPECT_EQ(std::memcmp(d->data(), ref.data(), ref.size() * 4), 0) << export_format_name(f);
        }
        // fake is bf16 (the source dtype): the same values after bf16 rounding
        const TensorInfo& t = fake.get(name + ".weight");
        ASSERT_EQ(t.dtype, DType::BF16);
        const std::vector<float> fw = fake.load_f32(name + ".weight");
        size_t bad = 0;
        for (size_t i = 0; i < ref.size(); ++i) bad += fw[i] != round_to_bf16(ref[i]);
        EXPECT_EQ(bad, 0u);
        // the loader says "plain tensor" for the fake export
        EXPECT_FALSE(load_linear_dequantized(fake, name, configs[ExportFormat::AutoRound], q.out_features, q.in_features));
    }
    // unquantized layers are plain tensors in every format
    EXPECT_FALSE(load_linear_dequantized(*stores[ExportFormat::AutoGptq], "model.embed_tokens",
                                         configs[ExportFormat::AutoGptq], 8192, 512));
}

TEST_F(ExportQwen3Nano, UnquantizedTensorsAndSideFilesAreCopiedExactly) {
    for (const auto& r : *results_) {
        SCOPED_TRACE(r.backend);
        const TensorStore out = TensorStore::open(r.folder);
        int copied = 0;
        for (const auto& [name, t] : src_->tensors()) {
            if (ends_with(name, ".weight") && layers_->count(name.substr(0, name.size() - 7))) continue;
            ASSERT_TRUE(out.has(name)) << name;
            EXPECT_TRUE(same_bytes(out.get(name), t)) << name;
            ++copied;
        }
        EXPECT_EQ(copied, 68 - 42);  // embeddings + norms
        for (const char* f : {"tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                              "generation_config.json"}) {
            EXPECT_EQ(read_file(r.folder / f), read_file(kModel / f)) << f;
            EXPECT_NE(fs::status(r.folder / f).permissions() & fs::perms::owner_write, fs::perms::none) << f;
        }
        EXPECT_FALSE(fs::exists(r.folder / "special_tokens_map.json"));  // not in the source: not invented
    }
}

// ---- the peer checkpoints through the loader ---------------------------------------------------------------

TEST(ExportPeer, PeerCheckpointsLoadThroughTheLoader) {
    const TensorStore src = TensorStore::open(kModel);
    const TensorStore g = TensorStore::open(kPeer / "exp-w4g128-auto_gptq");
    const TensorStore a = TensorStore::open(kPeer / "exp-w4g128-auto_awq");
    const TensorStore r = TensorStore::open(kPeer / "w4g128-ar200-auto_round");
    const auto gq = load_quantization_config(kPeer / "exp-w4g128-auto_gptq");
    const auto aq = load_quantization_config(kPeer / "exp-w4g128-auto_awq");
    const auto rq = load_quantization_config(kPeer / "w4g128-ar200-auto_round");
    ASSERT_TRUE(gq && aq && rq);
    int n = 0;
    for (const auto& [name, t] : src.tensors()) {
        if (name.rfind("model.layers.", 0) != 0 || !ends_with(name, ".weight") || t.shape.size() != 2) continue;
        const std::string layer = name.substr(0, name.size() - 7);
        SCOPED_TRACE(layer);
        const int64_t out = t.shape[0], in = t.shape[1];
        const auto dg = load_linear_dequantized(g, layer, *gq, out, in);
        const auto da = load_linear_dequantized(a, layer, *aq, out, in);
        const auto dr = load_linear_dequantized(r, layer, *rq, out, in);
        ASSERT_TRUE(dg && da && dr);
        // the GPTQ and AWQ exports of one run hold the same model
        EXPECT_EQ(std::memcmp(dg->data(), da->data(), dg->size() * 4), 0);
        // the native checkpoint (another run) is a 4-bit approximation of the bf16 weights
        const std::vector<float> w = src.load_f32(name);
        double num = 0, den = 0;
        for (size_t i = 0; i < w.size(); ++i) {
            num += (w[i] - (*dr)[i]) * (w[i] - (*dr)[i]);
            den += w[i] * w[i];
        }
        EXPECT_LT(std::sqrt(num / den), 0.2);
        ++n;
    }
    EXPECT_EQ(n, 42);
    // the shape the model asks for is checked
    expect_error([&] { load_linear_dequantized(g, "model.layers.0.mlp.down_proj", *gq, 512, 1024); },
                 {"model.layers.0.mlp.down_proj", "[512, 1280]", "[512, 1024]"});
    expect_error([&] { load_linear_dequantized(g, "model.layers.0.mlp.nope", *gq, 512, 1280); },
                 {"model.layers.0.mlp.nope.weight", "model.layers.0.mlp.nope.qweight"});
    QuantizationConfig skip = *gq;
    skip.layer_overrides["model.layers.0.mlp.down_proj"] = {16, 128, true, "float"};
    expect_error([&] { load_linear_dequantized(g, "model.layers.0.mlp.down_proj", skip, 512, 1280); },
                 {"model.layers.0.mlp.down_proj", "unquantized"});
}

// ---- variants ----------------------------------------------------------------------------------------------

TEST(ExportVariants, ShardedOutputWithIndex) {
    TempDir tmp;
    const TensorStore src = TensorStore::open(kModel);
    const QuantizedLayers layers = rtn_layers(src, QdqOptions{});
    ExportOptions o;
    o.output_dir = tmp.path();
    o.max_shard_bytes = 4'000'000;
    const auto res = export_model(kModel, src, QuantizationConfig{}, layers, {ExportFormat::AutoGptq}, o);
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].folder, tmp.path() / "qwen3-nano-w4g128");  // one format: no subfolder
    EXPECT_TRUE(fs::exists(res[0].folder / "model.safetensors.index.json"));
    EXPECT_FALSE(fs::exists(res[0].folder / "model.safetensors"));
    const TensorStore out = TensorStore::open(res[0].folder);
    EXPECT_GT(out.files().size(), 2u);
    const auto qc = load_quantization_config(res[0].folder);
    ASSERT_TRUE(qc.has_value());
    for (const auto& [name, q] : layers) {
        const auto d = load_linear_dequantized(out, name, *qc, q.out_features, q.in_features);
        ASSERT_TRUE(d.has_value()) << name;
        EXPECT_TRUE(*d == q.dequantize()) << name;
    }
}

TEST(ExportVariants, SkippedInBlockLayerIsDeclaredByEveryFormat) {
    TempDir tmp;
    const TensorStore src = TensorStore::open(kModel);
    QuantizedLayers layers = rtn_layers(src, QdqOptions{});
    const std::string skipped = "model.layers.0.mlp.down_proj";
    layers.erase(skipped);
    ExportOptions o;
    o.output_dir = tmp.path();
    const auto res = export_model(kModel, src, QuantizationConfig{}, layers,
                                  {ExportFormat::AutoRound, ExportFormat::AutoGptq, ExportFormat::AutoAwq}, o);
    ASSERT_EQ(res.size(), 3u);
    const json ar = read_json_file(res[0].folder / "quantization_config.json");
    EXPECT_EQ(ar.at("extra_config").at(skipped), json({{"bits", 16}, {"data_type", "float"}}));
    const json gp = read_json_file(res[1].folder / "quantization_config.json");
    EXPECT_TRUE(gp.at("dynamic").contains("-:" + regex_escape(skipped)));
    EXPECT_EQ(gp.at("modules_in_block_to_quantize"),
              json::parse(R"([["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj", "self_attn.k_proj",
                              "self_attn.o_proj", "self_attn.q_proj", "self_attn.v_proj"]])"));
    const json aw = read_json_file(res[2].folder / "quantization_config.json");
    EXPECT_EQ(aw.at("modules_to_not_convert"), json({"lm_head", skipped}));
    for (const auto& r : res) {
        SCOPED_TRACE(r.backend);
        const TensorStore out = TensorStore::open(r.folder);
        const auto qc = load_quantization_config(r.folder);
        ASSERT_TRUE(qc.has_value());
        EXPECT_FALSE(qc->is_quantized(skipped));
        EXPECT_TRUE(qc->is_quantized("model.layers.1.mlp.down_proj"));
        EXPECT_FALSE(load_linear_dequantized(out, skipped, *qc, 512, 1280).has_value());
        EXPECT_TRUE(same_bytes(out.get(skipped + ".weight"), src.get(skipped + ".weight")));
        const QuantizedTensor& q = layers.at("model.layers.1.mlp.down_proj");
        EXPECT_TRUE(*load_linear_dequantized(out, "model.layers.1.mlp.down_proj", *qc, 512, 1280) == q.dequantize());
    }
}

TEST(ExportVariants, AsymmetricAndOtherWidthsPickTheirPacking) {
    TempDir tmp;
    const TensorStore src = TensorStore::open(kModel);
    QdqOptions asym4;
    asym4.scheme = {4, 128, false};
    const QuantizedLayers l4 = rtn_layers(src, asym4);
    QuantizationConfig q4;
    q4.sym = false;
    ExportOptions o;
    o.output_dir = tmp.path() / "a4";
    auto res = export_model(kModel, src, q4, l4, {ExportFormat::AutoRound, ExportFormat::AutoAwq}, o);
    EXPECT_EQ(res[0].backend, "auto_round:auto_awq");
    EXPECT_EQ(res[0].folder.filename(), "auto-round-auto-awq");
    json cfg = read_json_file(res[0].folder / "config.json");
    EXPECT_EQ(cfg.at("quantization_config").at("packing_format"), "auto_round:auto_awq");
    EXPECT_EQ(cfg.at("torch_dtype"), "float16");  // auto-round forces fp16 for AWQ packing
    for (const auto& r : res) {
        const TensorStore out = TensorStore::open(r.folder);
        const auto qc = load_quantization_config(r.folder);
        ASSERT_TRUE(qc.has_value());
        EXPECT_FALSE(qc->sym);
        for (const auto& [name, q] : l4)
            ASSERT_TRUE(*load_linear_dequantized(out, name, *qc, q.out_features, q.in_features) == q.dequantize()) << name;
    }

    // 3-bit sym: GPTQ layout in every format that can take it; AWQ refused
    QdqOptions w3;
    w3.scheme = {3, 128, true};
    const QuantizedLayers l3 = rtn_layers(src, w3);
    QuantizationConfig q3;
    q3.bits = 3;
    o.output_dir = tmp.path() / "w3";
    res = export_model(kModel, src, q3, l3, {ExportFormat::AutoRound, ExportFormat::AutoGptq}, o);
    EXPECT_EQ(res[0].folder.parent_path().filename(), "qwen3-nano-w3g128");
    for (const auto& r : res) {
        const TensorStore out = TensorStore::open(r.folder);
        const auto qc = load_quantization_config(r.folder);
        ASSERT_TRUE(qc.has_value());
        for (const auto& [name, q] : l3)
            ASSERT_TRUE(*load_linear_dequantized(out, name, *qc, q.out_features, q.in_features) == q.dequantize()) << name;
    }
}

// ---- refusals --------------------------------------------------------------------------------------------

TEST(ExportRefusals, InvalidCombinationsAreRefusedBeforeWriting) {
    TempDir tmp;
    const TensorStore src = TensorStore::open(kModel);
    ExportOptions o;
    o.output_dir = tmp.path() / "out";
    const std::string down = "model.layers.0.mlp.down_proj";  // [512, 1280]

    // 3-bit AWQ (together with a format that could take it: nothing at all is written)
    QdqOptions w3;
    w3.scheme = {3, 128, true};
    QuantizationConfig q3;
    q3.bits = 3;
    const QuantizedLayers l3 = rtn_layers(src, w3, down);
    expect_error([&] { export_model(kModel, src, q3, l3, {ExportFormat::AutoGptq, ExportFormat::AutoAwq}, o); },
                 {"auto_awq", "4-bit", "auto_round", "auto_gptq"});
    EXPECT_FALSE(fs::exists(o.output_dir));
    expect_error([&] { validate_export(kModel, src, q3, l3, {ExportFormat::AutoAwq}, o); }, {"auto_awq", "bits 3"});

    // group_size that does not divide in_features: refused by AWQ and GPTQ, fine for fake
    QdqOptions g96;
    g96.scheme = {4, 96, true};
    QuantizationConfig q96;
    q96.group_size = 96;
    const QuantizedLayers l96 = rtn_layers(src, g96, down);
    expect_error([&] { export_model(kModel, src, q96, l96, {ExportFormat::AutoAwq}, o); },
                 {"auto_awq", down, "1280", "group_size 96", "fake"});
    expect_error([&] { export_model(kModel, src, q96, l96, {ExportFormat::AutoGptq}, o); }, {"auto_gptq", "group_size 96"});
    expect_error([&] { export_model(kModel, src, q96, l96, {ExportFormat::AutoRound}, o); },
                 {"auto_round:auto_gptq", "group_size 96"});
    EXPECT_FALSE(fs::exists(o.output_dir));
    {
        ExportOptions of = o;
        of.output_dir = tmp.path() / "fake96";
        const auto res = export_model(kModel, src, q96, l96, {ExportFormat::Fake}, of);
        const TensorStore fk = TensorStore::open(res[0].folder);
        const auto ref = l96.at(down).dequantize();
        const auto got = fk.load_f32(down + ".weight");
        for (size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(got[i], round_to_bf16(ref[i])) << i;
        EXPECT_EQ(res[0].folder, tmp.path() / "fake96" / "qwen3-nano-w4g96");
    }

    // asymmetric zero point 0: GPTQ v1 cannot store it; auto_round (AWQ packing for asym 4-bit) can
    QdqOptions a4;
    a4.scheme = {4, 128, false};
    QuantizationConfig qa;
    qa.sym = false;
    QuantizedLayers la = rtn_layers(src, a4, down);
    la.at(down).zeros[3] = 0;
    expect_error([&] { export_model(kModel, src, qa, la, {ExportFormat::AutoGptq}, o); },
                 {"auto_gptq", down, "zero point 0", "auto_awq"});
    expect_error([&] { export_model(kModel, src, qa, la, {ExportFormat::AutoRoundAutoGptq}, o); },
                 {"auto_round:auto_gptq", "zero point 0"});
    EXPECT_FALSE(fs::exists(o.output_dir));

    // quantized lm_head of a tied model; unknown layer; config disagreeing with the tensor
    QuantizedLayers bad = rtn_layers(src, QdqOptions{}, down);
    bad.emplace("lm_head", bad.at(down));
    bad.at("lm_head").name = "lm_head";
    expect_error([&] { validate_export(kModel, src, QuantizationConfig{}, bad, {ExportFormat::AutoRound}, o); },
                 {"lm_head", "tied"});
    QuantizedLayers unknown = rtn_layers(src, QdqOptions{}, down);
    auto node = unknown.extract(down);
    node.key() = "model.layers.0.mlp.nope";
    node.mapped().name = "";
    unknown.insert(std::move(node));
    expect_error([&] { validate_export(kModel, src, QuantizationConfig{}, unknown, {ExportFormat::Fake}, o); },
                 {"model.layers.0.mlp.nope.weight"});
    QuantizationConfig says8;
    says8.layer_overrides[down] = {8, 128, true, "int"};
    expect_error([&] { validate_export(kModel, src, says8, rtn_layers(src, QdqOptions{}, down), {ExportFormat::Fake}, o); },
                 {down, "4-bit", "8-bit"});
    expect_error([] { parse_export_formats("auto_round,gguf:q9_z"); }, {"gguf:q9_z", "q4_k_m"});
    EXPECT_FALSE(fs::exists(o.output_dir));
}

TEST(ExportRefusals, FailedExportLeavesNoFolder) {
    TempDir tmp;
    const TensorStore src = TensorStore::open(kModel);
    const QuantizedLayers layers = rtn_layers(src, QdqOptions{}, "model.layers.2.self_attn.q_proj");
    ExportOptions o;
    o.output_dir = tmp.path() / "out";

    // an existing non-empty target folder is found before anything is written
    const fs::path base = o.output_dir / "qwen3-nano-w4g128";
    fs::create_directories(base / "auto-gptq");
    autoround::testio::write_file(base / "auto-gptq" / "keep.txt", "x");
    expect_error([&] { export_model(kModel, src, QuantizationConfig{}, layers,
                                    {ExportFormat::AutoRound, ExportFormat::AutoGptq}, o); },
                 {"auto-gptq", "already exists", "--overwrite"});
    EXPECT_FALSE(fs::exists(base / "auto-round-auto-gptq"));
    EXPECT_TRUE(fs::exists(base / "auto-gptq" / "keep.txt"));
    fs::remove_all(o.output_dir);

    // a failure while writing (here: in the hook, after the first folder is complete) leaves nothing,
    // not even the temporary folders or the common parent
    int calls = 0;
    o.before_commit = [&](const fs::path& tmp_folder) {
        EXPECT_TRUE(fs::exists(tmp_folder / "model.safetensors"));
        if (++calls == 2) throw Error("simulated failure");
    };
    expect_error([&] { export_model(kModel, src, QuantizationConfig{}, layers,
                                    {ExportFormat::AutoRound, ExportFormat::Fake}, o); },
                 {"simulated failure"});
    EXPECT_EQ(calls, 2);
    EXPECT_FALSE(fs::exists(base));
    EXPECT_EQ(temp_folders_under(o.output_dir), 0);

    // overwrite replaces an existing folder
    o.before_commit = nullptr;
    fs::create_directories(base / "fake");
    autoround::testio::write_file(base / "fake" / "old.txt", "x");
    o.overwrite = true;
    const auto res = export_model(kModel, src, QuantizationConfig{}, layers, {ExportFormat::AutoRound, ExportFormat::Fake}, o);
    EXPECT_FALSE(fs::exists(base / "fake" / "old.txt"));
    EXPECT_TRUE(fs::exists(base / "fake" / "model.safetensors"));
}

// ---- folder naming -------------------------------------------------------------------------------------------

TEST(ExportNames, ModelDirAndSubfolders) {
    QuantizationConfig qc;
    EXPECT_EQ(quantized_model_dir("out", "/models/Qwen3-8B/", qc), fs::path("out/Qwen3-8B-w4g128"));
    EXPECT_EQ(quantized_model_dir("out", "Qwen/Qwen3-8B", qc), fs::path("out/Qwen3-8B-w4g128"));
    EXPECT_EQ(quantized_model_dir("out", ".", qc), fs::path("out/w4g128"));
    EXPECT_EQ(quantized_model_dir("out", "./", qc), fs::path("out/w4g128"));
    qc.group_size = -1;
    EXPECT_EQ(quantized_model_dir("out", "Qwen3-8B", qc), fs::path("out/Qwen3-8B-w4a16"));
    qc.group_size = 32;
    qc.data_type = "mx_fp";
    EXPECT_EQ(quantized_model_dir("out", "Qwen3-8B", qc), fs::path("out/Qwen3-8B-mxfp-w4g32"));

    QuantizationConfig sym, asym4, asym3;
    asym4.sym = false;
    asym3.sym = false;
    asym3.bits = 3;
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoRound, sym), "auto-round-auto-gptq");
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoRound, asym4), "auto-round-auto-awq");
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoRound, asym3), "auto-round");
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoRoundGptqModel, sym), "auto-round-gptqmodel");
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoGptq, sym), "auto-gptq");
    EXPECT_EQ(export_subfolder_name(ExportFormat::AutoAwq, sym), "auto-awq");
    EXPECT_EQ(export_subfolder_name(ExportFormat::Fake, sym), "fake");
    const auto one = export_folders("m", {ExportFormat::AutoGptq}, sym);
    EXPECT_EQ(one, std::vector<fs::path>{"m"});
    const auto two = export_folders("m", parse_export_formats(" auto_round , fake,auto_round"), sym);
    EXPECT_EQ(two, (std::vector<fs::path>{"m/auto-round-auto-gptq", "m/fake"}));
    EXPECT_EQ(parse_export_format("AUTO_ROUND:GPTQ"), ExportFormat::AutoRoundAutoGptq);
}
