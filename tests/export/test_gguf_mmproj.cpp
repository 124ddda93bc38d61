// tests/export/test_gguf_mmproj.cpp — export/gguf_mmproj.h on qwen3-vl-nano: the mmproj GGUF of each type
// (F16, BF16, F32) reloads through io/gguf.h with every key llama.cpp's clip loader reads (type and value
// against config.json / preprocessor_config.json), exactly the expected tensor set (names, innermost-first
// dims, types by gguf-py's rules), and values equal to the bf16 source after gguf-py's conversion — the two
// Conv3d patch-kernel slices, the fused qkv, the position table, DeepStack mergers renamed to the ViT block
// they tap, the final merger. Bad input: a text-only model, a missing / extra / misshapen vision tensor, a
// missing image processor config and temporal_patch_size != 2 each give an Error naming the culprit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/bf16.h"
#include "export/gguf_mmproj.h"
#include "io/gguf.h"
#include "io/io_test_util.h"
#include "io/model_config.h"
#include "io/safetensors.h"

using namespace autoround;
using autoround::testio::expect_error;
using autoround::testio::TempDir;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const fs::path kModel = fs::path(AR_SHARED_DIR) / "models/qwen3-vl-nano";
const fs::path kTextModel = fs::path(AR_SHARED_DIR) / "models/qwen3-nano";

constexpr uint32_t kF32 = static_cast<uint32_t>(GgmlType::F32);
constexpr uint32_t kF16 = static_cast<uint32_t>(GgmlType::F16);
constexpr uint32_t kBF16 = static_cast<uint32_t>(GgmlType::BF16);

json read_json(const fs::path& p) {
    std::ifstream in(p);
    return json::parse(in);
}

struct Expected {
    std::string gguf, hf;
    std::vector<int64_t> ne;
    uint32_t type;
};

// The tensor table of the header comment, rebuilt from config.json independently of the writer.
std::vector<Expected> expected_tensors(GgufMmprojType t) {
    const json v = read_json(kModel / "config.json").at("vision_config");
    const int64_t H = v["hidden_size"], I = v["intermediate_size"], O = v["out_hidden_size"], C = v["in_channels"],
                  p = v["patch_size"], P = v["num_position_embeddings"], m = v["spatial_merge_size"];
    const int64_t M = m * m * H;
    const uint32_t w = t == GgufMmprojType::F16 ? kF16 : t == GgufMmprojType::BF16 ? kBF16 : kF32;
    const uint32_t patch = t == GgufMmprojType::F16 ? kF16 : kF32;
    const std::string V = "model.visual.";
    std::vector<Expected> e;
    e.push_back({"v.patch_embd.weight", V + "patch_embed.proj.weight", {p, p, C, H}, patch});
    e.push_back({"v.patch_embd.weight.1", V + "patch_embed.proj.weight", {p, p, C, H}, patch});
    e.push_back({"v.patch_embd.bias", V + "patch_embed.proj.bias", {H}, kF32});
    e.push_back({"v.position_embd.weight", V + "pos_embed.weight", {H, P}, kF32});
    auto lin = [&](const std::string& g, const std::string& h, int64_t out, int64_t in) {
        e.push_back({g + ".weight", V + h + ".weight", {in, out}, w});
        e.push_back({g + ".bias", V + h + ".bias", {out}, kF32});
    };
    auto norm = [&](const std::string& g, const std::string& h, int64_t n) {
        e.push_back({g + ".weight", V + h + ".weight", {n}, kF32});
        e.push_back({g + ".bias", V + h + ".bias", {n}, kF32});
    };
    for (int b = 0; b < v["depth"].get<int>(); ++b) {
        const std::string g = "v.blk." + std::to_string(b) + ".", h = "blocks." + std::to_string(b) + ".";
        norm(g + "ln1", h + "norm1", H);
        lin(g + "attn_qkv", h + "attn.qkv", 3 * H, H);
        lin(g + "attn_out", h + "attn.proj", H, H);
        norm(g + "ln2", h + "norm2", H);
        lin(g + "ffn_up", h + "mlp.linear_fc1", I, H);
        lin(g + "ffn_down", h + "mlp.linear_fc2", H, I);
    }
    const auto& ds = v["deepstack_visual_indexes"];
    for (size_t k = 0; k < ds.size(); ++k) {
        const std::string g = "v.deepstack." + std::to_string(ds[k].get<int>()) + ".",
                          h = "deepstack_merger_list." + std::to_string(k) + ".";
        norm(g + "norm", h + "norm", M);
        lin(g + "fc1", h + "linear_fc1", M, M);
        lin(g + "fc2", h + "linear_fc2", O, M);
    }
    norm("v.post_ln", "merger.norm", H);
    lin("mm.0", "merger.linear_fc1", M, M);
    lin("mm.2", "merger.linear_fc2", O, M);
    return e;
}

uint16_t u16_at(const uint8_t* p, int64_t i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return h;
}

// Checks a GGUF payload against source elements src_index(0..n-1) of a BF16 tensor, converted as gguf-py
// does for the payload's type. Reports the first mismatch only.
template <typename Index>
void expect_converted(const GgufTensorInfo& g, const TensorInfo& src, int64_t n, Index src_index) {
    ASSERT_EQ(src.dtype, DType::BF16) << src.name;
    ASSERT_EQ(g.numel(), n) << g.name;
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t s = u16_at(src.data, src_index(i));
        if (g.type == kBF16) {
            ASSERT_EQ(u16_at(g.data, i), s) << g.name << " element " << i;
        } else if (g.type == kF16) {
            ASSERT_EQ(u16_at(g.data, i), float_to_fp16(bf16_to_float(s))) << g.name << " element " << i;
        } else {
            ASSERT_EQ(g.type, kF32) << g.name;
            float f;
            std::memcpy(&f, g.data + 4 * i, 4);
            ASSERT_EQ(f, bf16_to_float(s)) << g.name << " element " << i;
        }
    }
}

class GgufMmprojNano : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        dir_ = std::make_unique<TempDir>();
        store_ = std::make_unique<TensorStore>(TensorStore::open(kModel));
        for (GgufMmprojType t : {GgufMmprojType::F16, GgufMmprojType::BF16, GgufMmprojType::F32}) {
            const fs::path p = dir_->path() / gguf_mmproj_file_name(kModel.string(), t);
            results_[t] = write_gguf_mmproj(kModel, *store_, t, "", p);
            files_[t] = GgufFile::open(p);
        }
    }
    static void TearDownTestSuite() {
        files_.clear();
        store_.reset();
        dir_.reset();
    }
    static std::unique_ptr<TempDir> dir_;
    static std::unique_ptr<TensorStore> store_;
    static std::map<GgufMmprojType, GgufMmprojResult> results_;
    static std::map<GgufMmprojType, std::shared_ptr<const GgufFile>> files_;
};
std::unique_ptr<TempDir> GgufMmprojNano::dir_;
std::unique_ptr<TensorStore> GgufMmprojNano::store_;
std::map<GgufMmprojType, GgufMmprojResult> GgufMmprojNano::results_;
std::map<GgufMmprojType, std::shared_ptr<const GgufFile>> GgufMmprojNano::files_;

const GgufValue& value(const GgufFile& f, const std::string& key, GgufValueType type) {
    const GgufValue& v = f.get(key);
    EXPECT_EQ(v.type, type) << key << " is " << gguf_value_type_name(v.type);
    return v;
}

std::vector<float> f32_array(const GgufFile& f, const std::string& key) {
    const GgufValue& v = value(f, key, GgufValueType::ARRAY);
    EXPECT_EQ(v.elem, GgufValueType::FLOAT32) << key;
    std::vector<float> out(v.count);
    if (v.raw.size() == v.count * 4 && v.count) std::memcpy(out.data(), v.raw.data(), v.raw.size());
    return out;
}

}  // namespace

TEST_F(GgufMmprojNano, FileNamesAndTypesFollowLlamaCpp) {
    EXPECT_EQ(gguf_mmproj_file_name(kModel.string(), GgufMmprojType::F16), "mmproj-qwen3-vl-nano-F16.gguf");
    EXPECT_EQ(gguf_mmproj_file_name("org/Qwen3-VL-2B-Instruct/", GgufMmprojType::BF16),
              "mmproj-Qwen3-VL-2B-Instruct-BF16.gguf");
    EXPECT_EQ(gguf_mmproj_file_name("m", GgufMmprojType::F32), "mmproj-m-F32.gguf");
    EXPECT_EQ(parse_gguf_mmproj_type("F16"), GgufMmprojType::F16);
    EXPECT_EQ(parse_gguf_mmproj_type("fp16"), GgufMmprojType::F16);
    EXPECT_EQ(parse_gguf_mmproj_type("bfloat16"), GgufMmprojType::BF16);
    EXPECT_EQ(parse_gguf_mmproj_type("f32"), GgufMmprojType::F32);
    expect_error([] { parse_gguf_mmproj_type("q4_k_m"); }, {"q4_k_m", "f16", "bf16", "f32"});
    for (const auto& [t, r] : results_) {
        EXPECT_TRUE(fs::exists(r.file)) << r.file;
        EXPECT_FALSE(fs::exists(r.file.string() + ".tmp")) << "temp file left behind";
    }
    EXPECT_NO_THROW(validate_gguf_mmproj(kModel, *store_, GgufMmprojType::F16));
}

TEST_F(GgufMmprojNano, MetadataIsWhatClipLoaderReads) {
    const json cfg = read_json(kModel / "config.json");
    const json& v = cfg.at("vision_config");
    const json& tc = cfg.at("text_config");
    const json pre = read_json(kModel / "preprocessor_config.json");
    for (const auto& [t, fp] : files_) {
        SCOPED_TRACE(std::string(gguf_mmproj_type_label(t)));
        const GgufFile& f = *fp;
        EXPECT_EQ(value(f, "general.architecture", GgufValueType::STRING).str, "clip");
        EXPECT_EQ(value(f, "general.type", GgufValueType::STRING).str, "mmproj");
        EXPECT_EQ(value(f, "general.name", GgufValueType::STRING).str, "qwen3-vl-nano");
        EXPECT_EQ(value(f, "general.file_type", GgufValueType::UINT32).u,
                  t == GgufMmprojType::F16 ? 1u : t == GgufMmprojType::BF16 ? 32u : 0u);
        EXPECT_EQ(value(f, "general.quantization_version", GgufValueType::UINT32).u, 2u);
        EXPECT_EQ(value(f, "clip.has_vision_encoder", GgufValueType::BOOL).u, 1u);
        EXPECT_EQ(value(f, "clip.projector_type", GgufValueType::STRING).str, "qwen3vl_merger");
        EXPECT_EQ(value(f, "clip.use_gelu", GgufValueType::BOOL).u, 1u);
        EXPECT_EQ(value(f, "clip.vision.projection_dim", GgufValueType::UINT32).u, tc["hidden_size"].get<uint64_t>());
        const int side = static_cast<int>(std::lround(std::sqrt(v["num_position_embeddings"].get<double>())));
        EXPECT_EQ(value(f, "clip.vision.image_size", GgufValueType::UINT32).u,
                  static_cast<uint64_t>(side * v["patch_size"].get<int>()));
        EXPECT_EQ(value(f, "clip.vision.image_size", GgufValueType::UINT32).u, 256u);  // 16×16 grid of 16-px patches
        EXPECT_EQ(value(f, "clip.vision.patch_size", GgufValueType::UINT32).u, v["patch_size"].get<uint64_t>());
        EXPECT_EQ(value(f, "clip.vision.embedding_length", GgufValueType::UINT32).u, v["hidden_size"].get<uint64_t>());
        EXPECT_EQ(value(f, "clip.vision.feed_forward_length", GgufValueType::UINT32).u,
                  v["intermediate_size"].get<uint64_t>());
        EXPECT_EQ(value(f, "clip.vision.block_count", GgufValueType::UINT32).u, v["depth"].get<uint64_t>());
        EXPECT_EQ(value(f, "clip.vision.attention.head_count", GgufValueType::UINT32).u, v["num_heads"].get<uint64_t>());
        EXPECT_EQ(value(f, "clip.vision.attention.layer_norm_epsilon", GgufValueType::FLOAT32).f,
                  static_cast<double>(static_cast<float>(tc["rms_norm_eps"].get<double>())));
        EXPECT_EQ(value(f, "clip.vision.spatial_merge_size", GgufValueType::UINT32).u,
                  v["spatial_merge_size"].get<uint64_t>());
        const std::vector<float> mean = f32_array(f, "clip.vision.image_mean"), sd = f32_array(f, "clip.vision.image_std");
        ASSERT_EQ(mean.size(), 3u);
        ASSERT_EQ(sd.size(), 3u);
        for (size_t i = 0; i < 3; ++i) {
            EXPECT_EQ(mean[i], pre["image_mean"][i].get<float>());
            EXPECT_EQ(sd[i], pre["image_std"][i].get<float>());
        }
        const GgufValue& ds = value(f, "clip.vision.is_deepstack_layers", GgufValueType::ARRAY);
        EXPECT_EQ(ds.elem, GgufValueType::BOOL);
        ASSERT_EQ(ds.count, v["depth"].get<uint64_t>());
        ASSERT_EQ(ds.raw.size(), ds.count);
        std::vector<uint8_t> want(ds.count, 0);
        for (const auto& i : v["deepstack_visual_indexes"]) want[i.get<size_t>()] = 1;
        EXPECT_EQ(ds.raw, want);  // nano: [false, true, true, false]
        EXPECT_EQ(f.metadata().size(), 20u) << "unexpected extra or missing keys";
    }
}

TEST_F(GgufMmprojNano, TensorNamesDimsAndTypes) {
    for (const auto& [t, fp] : files_) {
        SCOPED_TRACE(std::string(gguf_mmproj_type_label(t)));
        const std::vector<Expected> want = expected_tensors(t);
        const GgufFile& f = *fp;
        ASSERT_EQ(f.tensors().size(), want.size());
        ASSERT_EQ(results_[t].tensors.size(), want.size());
        for (const Expected& e : want) {
            const GgufTensorInfo* g = f.find_tensor(e.gguf);
            ASSERT_NE(g, nullptr) << "missing " << e.gguf;
            EXPECT_EQ(g->ne, e.ne) << e.gguf << " is " << g->ne_str();
            EXPECT_EQ(g->type, e.type) << e.gguf << " is " << ggml_type_name(g->type);
        }
        // The result lists the same plan, with the HF source of each tensor.
        std::map<std::string, std::string> hf_of;
        for (const GgufMmprojTensor& r : results_[t].tensors) hf_of[r.gguf_name] = r.hf_name;
        for (const Expected& e : want) EXPECT_EQ(hf_of[e.gguf], e.hf) << e.gguf;
        // No language-model tensor leaks into the mmproj.
        for (const GgufTensorInfo& g : f.tensors())
            EXPECT_TRUE(g.name.rfind("v.", 0) == 0 || g.name.rfind("mm.", 0) == 0) << g.name;
    }
}

TEST_F(GgufMmprojNano, PatchKernelsAreTheTwoTemporalSlices) {
    const TensorInfo& src = store_->get("model.visual.patch_embed.proj.weight");  // [H, C, 2, p, p]
    const int64_t H = src.shape[0], C = src.shape[1], T = src.shape[2], pp = src.shape[3] * src.shape[4];
    ASSERT_EQ(T, 2);
    for (const auto& [t, fp] : files_) {
        SCOPED_TRACE(std::string(gguf_mmproj_type_label(t)));
        for (int k = 0; k < 2; ++k) {
            const GgufTensorInfo& g = fp->tensor(k == 0 ? "v.patch_embd.weight" : "v.patch_embd.weight.1");
            expect_converted(g, src, H * C * pp, [&](int64_t i) {
                const int64_t hc = i / pp, xy = i % pp;
                return (hc * T + k) * pp + xy;
            });
        }
        // The slices differ (the kernel really was split along the temporal axis, not duplicated).
        EXPECT_NE(std::memcmp(fp->tensor("v.patch_embd.weight").data, fp->tensor("v.patch_embd.weight.1").data,
                              fp->tensor("v.patch_embd.weight").nbytes),
                  0);
    }
}

TEST_F(GgufMmprojNano, ValuesEqualTheSourceAfterConversion) {
    const std::vector<std::pair<std::string, std::string>> picks = {
        {"v.blk.1.attn_qkv.weight", "model.visual.blocks.1.attn.qkv.weight"},          // fused, [3H, H]
        {"v.blk.1.attn_qkv.bias", "model.visual.blocks.1.attn.qkv.bias"},
        {"v.blk.3.ffn_down.weight", "model.visual.blocks.3.mlp.linear_fc2.weight"},
        {"v.blk.0.ln1.weight", "model.visual.blocks.0.norm1.weight"},
        {"v.position_embd.weight", "model.visual.pos_embed.weight"},
        {"v.patch_embd.bias", "model.visual.patch_embed.proj.bias"},
        {"v.deepstack.1.fc1.weight", "model.visual.deepstack_merger_list.0.linear_fc1.weight"},
        {"v.deepstack.2.fc2.weight", "model.visual.deepstack_merger_list.1.linear_fc2.weight"},
        {"v.deepstack.2.norm.bias", "model.visual.deepstack_merger_list.1.norm.bias"},
        {"v.post_ln.weight", "model.visual.merger.norm.weight"},
        {"mm.0.weight", "model.visual.merger.linear_fc1.weight"},
        {"mm.2.weight", "model.visual.merger.linear_fc2.weight"},
        {"mm.2.bias", "model.visual.merger.linear_fc2.bias"},
    };
    for (const auto& [t, fp] : files_) {
        SCOPED_TRACE(std::string(gguf_mmproj_type_label(t)));
        for (const auto& [g, h] : picks) {
            const TensorInfo& src = store_->get(h);
            expect_converted(fp->tensor(g), src, src.numel(), [](int64_t i) { return i; });
        }
    }
    // bf16 files are bit copies of the bf16 checkpoint for every file-typed weight.
    const GgufFile& bf = *files_[GgufMmprojType::BF16];
    const TensorInfo& qkv = store_->get("model.visual.blocks.2.attn.qkv.weight");
    EXPECT_EQ(std::memcmp(bf.tensor("v.blk.2.attn_qkv.weight").data, qkv.data, qkv.nbytes), 0);
}

// ---- bad input --------------------------------------------------------------------------------------------

namespace {

// A folder with qwen3-vl-nano's configs and only its vision tensors, minus `drop`, plus `extra`
// (name -> shape, zero bf16), with `patch_config` applied to config.json.
void make_vision_folder(const fs::path& dir, const TensorStore& full, const std::string& drop,
                        const std::map<std::string, std::vector<int64_t>>& extra = {},
                        bool with_preprocessor = true, const std::function<void(json&)>& patch_config = {}) {
    json cfg = read_json(kModel / "config.json");
    if (patch_config) patch_config(cfg);
    std::ofstream(dir / "config.json") << cfg.dump(2);
    if (with_preprocessor) fs::copy_file(kModel / "preprocessor_config.json", dir / "preprocessor_config.json");
    SafetensorsWriter w;
    for (const auto& [name, t] : full.tensors()) {
        if (name.rfind("model.visual.", 0) != 0 || name == drop) continue;
        w.add(name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes));
    }
    for (const auto& [name, shape] : extra) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        w.add(name, DType::BF16, shape, std::vector<uint8_t>(static_cast<size_t>(2 * n), 0));
    }
    w.write_file(dir / "model.safetensors");
}

}  // namespace

TEST_F(GgufMmprojNano, TextOnlyModelIsRejected) {
    const TensorStore st = TensorStore::open(kTextModel);
    TempDir out;
    expect_error([&] { validate_gguf_mmproj(kTextModel, st, GgufMmprojType::F16); },
                 {"config.json", "Qwen3ForCausalLM", "vision tower", "language-model GGUF"});
    expect_error([&] { write_gguf_mmproj(kTextModel, st, GgufMmprojType::F16, "", out / "m.gguf"); },
                 {"Qwen3ForCausalLM"});
    EXPECT_FALSE(fs::exists(out / "m.gguf"));
    EXPECT_FALSE(fs::exists(out / "m.gguf.tmp"));
}

TEST_F(GgufMmprojNano, MissingVisionTensorIsNamed) {
    TempDir d;
    const std::string gone = "model.visual.blocks.2.attn.qkv.bias";
    make_vision_folder(d.path(), *store_, gone);
    const TensorStore st = TensorStore::open(d.path());
    expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::BF16); }, {gone, "missing", "[384]"});
    const fs::path out = d / "mmproj.gguf";
    expect_error([&] { write_gguf_mmproj(d.path(), st, GgufMmprojType::F16, "x", out); }, {gone});
    EXPECT_FALSE(fs::exists(out));
    EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

TEST_F(GgufMmprojNano, QuantizedVisionTensorSaysHowToFix) {
    TempDir d;
    const std::string gone = "model.visual.blocks.0.attn.proj.weight";
    make_vision_folder(d.path(), *store_, gone, {{"model.visual.blocks.0.attn.proj.qweight", {16, 128}}});
    const TensorStore st = TensorStore::open(d.path());
    expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); },
                 {gone, "quantized", "--quant_nontext_module"});
}

TEST_F(GgufMmprojNano, ExtraOrMisshapenVisionTensorIsNamed) {
    {
        TempDir d;  // a fifth block the config (depth 4) does not have
        make_vision_folder(d.path(), *store_, "", {{"model.visual.blocks.4.norm1.weight", {128}}});
        const TensorStore st = TensorStore::open(d.path());
        expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); },
                     {"model.visual.blocks.4.norm1.weight", "depth 4"});
    }
    {
        TempDir d;  // pos_embed of a 15×15 grid while the config says 256 positions
        const std::string bad = "model.visual.pos_embed.weight";
        make_vision_folder(d.path(), *store_, bad, {{bad, {225, 128}}});
        const TensorStore st = TensorStore::open(d.path());
        expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); }, {bad, "[225, 128]", "[256, 128]"});
    }
}

TEST_F(GgufMmprojNano, ConfigProblemsAreNamed) {
    {
        TempDir d;  // no image processor config: image_mean / image_std are unknown
        make_vision_folder(d.path(), *store_, "", {}, /*with_preprocessor=*/false);
        const TensorStore st = TensorStore::open(d.path());
        expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); },
                     {"preprocessor_config.json", "image_mean"});
    }
    {
        TempDir d;  // llama.cpp splits the Conv3d into exactly two Conv2d kernels
        make_vision_folder(d.path(), *store_, "", {}, true, [](json& c) { c["vision_config"]["temporal_patch_size"] = 1; });
        const TensorStore st = TensorStore::open(d.path());
        expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); }, {"temporal_patch_size", "2"});
    }
    {
        TempDir d;  // the projector must emit the language model's width
        make_vision_folder(d.path(), *store_, "", {}, true, [](json& c) { c["vision_config"]["out_hidden_size"] = 256; });
        const TensorStore st = TensorStore::open(d.path());
        expect_error([&] { validate_gguf_mmproj(d.path(), st, GgufMmprojType::F16); },
                     {"out_hidden_size", "256", "512"});
    }
}
