// tests/model/test_model_presets_vl.cpp — the Qwen3-VL presets of `autoround init-model`
// (model/model_presets.h): the qwen3-vl-8b / qwen3-vl-4b configs and tensor lists against
// qwen3-architecture.md §2.1–2.2 (without writing 17 GB), and a tiny VL checkpoint written by the
// streaming writer that loads with Qwen3VLModel::load and runs an image prefill.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/bf16.h"
#include "core/error.h"
#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/model_presets.h"
#include "model/qwen3_vl_model.h"

using namespace autoround;

namespace {

const std::string kShared = AR_SHARED_DIR;

class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("autoround_presets_vl_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

std::map<std::string, PresetTensor> by_name(const std::vector<PresetTensor>& v) {
    std::map<std::string, PresetTensor> m;
    for (const auto& t : v) EXPECT_TRUE(m.emplace(t.name, t).second) << "duplicate tensor " << t.name;
    return m;
}

using Shape = std::vector<int64_t>;

// A tiny Qwen3-VL config (head_dim must stay 128: mrope_section [24, 20, 20] sums to head_dim/2).
nlohmann::json tiny_vl_config(bool tied) {
    nlohmann::json c = qwen3_vl_preset_config("qwen3-vl-nano-shape");
    auto& t = c["text_config"];
    t["hidden_size"] = 128;
    t["intermediate_size"] = 192;
    t["num_hidden_layers"] = 2;
    t["num_attention_heads"] = 2;
    t["num_key_value_heads"] = 1;
    t["vocab_size"] = 600;
    t["bos_token_id"] = 590;
    t["eos_token_id"] = 591;
    t["tie_word_embeddings"] = tied;
    c["tie_word_embeddings"] = tied;
    c["vision_start_token_id"] = 592;
    c["vision_end_token_id"] = 593;
    c["image_token_id"] = 594;
    c["video_token_id"] = 595;
    auto& v = c["vision_config"];
    v["depth"] = 3;
    v["hidden_size"] = 32;
    v["num_heads"] = 2;
    v["intermediate_size"] = 48;
    v["num_position_embeddings"] = 16;
    v["out_hidden_size"] = 128;
    v["deepstack_visual_indexes"] = {0, 2};
    return c;
}

RgbImage gradient_image(int w, int h) {
    RgbImage img;
    img.width = w;
    img.height = h;
    img.pixels.resize(size_t(w) * h * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = img.pixels.data() + (size_t(y) * w + x) * 3;
            p[0] = uint8_t(x * 255 / w);
            p[1] = uint8_t(y * 255 / h);
            p[2] = uint8_t((x * 7 + y * 13) & 255);
        }
    return img;
}

std::string file_bytes(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST(ModelPresetsVL, Names) {
    const auto vl = qwen3_vl_preset_names();
    for (const char* n : {"qwen3-vl-8b", "qwen3-vl-4b", "qwen3-vl-nano-shape"}) {
        EXPECT_NE(std::find(vl.begin(), vl.end(), n), vl.end()) << n;
        EXPECT_TRUE(is_qwen3_vl_preset(n)) << n;
    }
    EXPECT_FALSE(is_qwen3_vl_preset("qwen3-8b"));
    const auto all = all_preset_names();
    EXPECT_EQ(all.size(), qwen3_preset_names().size() + vl.size());
    try {
        qwen3_vl_preset_config("qwen3-vl-99b");
        FAIL() << "expected an error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("qwen3-vl-8b"), std::string::npos) << e.what();
    }
}

// qwen3-architecture.md §2.1.
TEST(ModelPresetsVL, Config8bMatchesDoc) {
    const nlohmann::json j = qwen3_vl_preset_config("qwen3-vl-8b");
    EXPECT_EQ(j.at("architectures"), nlohmann::json::array({"Qwen3VLForConditionalGeneration"}));
    EXPECT_EQ(j.at("image_token_id"), 151655);
    EXPECT_EQ(j.at("video_token_id"), 151656);
    EXPECT_EQ(j.at("vision_start_token_id"), 151652);
    EXPECT_EQ(j.at("vision_end_token_id"), 151653);
    EXPECT_EQ(j.at("tie_word_embeddings"), false);
    const ModelConfig c = parse_model_config(j, "qwen3-vl-8b");
    EXPECT_TRUE(c.vision_language);
    EXPECT_EQ(c.text_prefix, "model.language_model.");
    EXPECT_EQ(c.hidden_size, 4096);
    EXPECT_EQ(c.intermediate_size, 12288);
    EXPECT_EQ(c.num_hidden_layers, 36);
    EXPECT_EQ(c.num_attention_heads, 32);
    EXPECT_EQ(c.num_key_value_heads, 8);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.vocab_size, 151936);
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_DOUBLE_EQ(c.rope.theta, 5e6);
    EXPECT_EQ(c.mrope_section, (std::vector<int>{24, 20, 20}));
    EXPECT_EQ(c.image_token_id, 151655);
    EXPECT_EQ(c.vision_start_token_id, 151652);
    EXPECT_EQ(j.at("text_config").at("max_position_embeddings"), 262144);
    EXPECT_EQ(j.at("text_config").at("bos_token_id"), 151643);
    EXPECT_EQ(j.at("text_config").at("eos_token_id"), 151645);

    const Qwen3VLVisionConfig v = parse_qwen3_vl_vision_config(j.at("vision_config"), "qwen3-vl-8b");
    EXPECT_EQ(v.depth, 27);
    EXPECT_EQ(v.hidden_size, 1152);
    EXPECT_EQ(v.num_heads, 16);
    EXPECT_EQ(v.head_dim(), 72);
    EXPECT_EQ(v.intermediate_size, 4304);
    EXPECT_EQ(v.in_channels, 3);
    EXPECT_EQ(v.patch_size, 16);
    EXPECT_EQ(v.temporal_patch_size, 2);
    EXPECT_EQ(v.spatial_merge_size, 2);
    EXPECT_EQ(v.out_hidden_size, 4096);
    EXPECT_EQ(v.num_position_embeddings, 2304);
    EXPECT_EQ(v.deepstack_visual_indexes, (std::vector<int>{8, 16, 24}));
    EXPECT_EQ(v.hidden_act, "gelu_pytorch_tanh");
    EXPECT_DOUBLE_EQ(v.rope_theta, 10000);

    // The preprocessor settings of the Qwen3-VL processor (and of ../shared/models/qwen3-vl-nano).
    const ImageProcessorConfig ip =
        parse_image_processor_config(qwen3_vl_preprocessor_config(j), "preprocessor_config.json");
    const ImageProcessorConfig nano =
        load_image_processor_config(kShared + "/models/qwen3-vl-nano/preprocessor_config.json");
    EXPECT_EQ(ip.patch_size, 16);
    EXPECT_EQ(ip.merge_size, 2);
    EXPECT_EQ(ip.temporal_patch_size, 2);
    EXPECT_EQ(ip.min_pixels, 65536);
    EXPECT_EQ(ip.max_pixels, 16777216);
    EXPECT_EQ(ip.image_mean, nano.image_mean);
    EXPECT_EQ(ip.image_std, nano.image_std);
    EXPECT_DOUBLE_EQ(ip.rescale_factor, nano.rescale_factor);
    EXPECT_EQ(ip.min_pixels, nano.min_pixels);
    EXPECT_EQ(ip.max_pixels, nano.max_pixels);
}

// qwen3-architecture.md §2.2, every row of the table.
TEST(ModelPresetsVL, Tensors8bMatchDocTable) {
    const auto list = qwen3_vl_preset_tensors(qwen3_vl_preset_config("qwen3-vl-8b"));
    const auto m = by_name(list);
    auto shape = [&](const std::string& n) -> Shape {
        auto it = m.find(n);
        EXPECT_NE(it, m.end()) << "missing " << n;
        return it == m.end() ? Shape{} : it->second.shape;
    };
    const std::string L = "model.language_model.";
    EXPECT_EQ(shape(L + "embed_tokens.weight"), (Shape{151936, 4096}));
    for (int i : {0, 17, 35}) {
        const std::string p = L + "layers." + std::to_string(i) + ".";
        EXPECT_EQ(shape(p + "input_layernorm.weight"), (Shape{4096}));
        EXPECT_EQ(shape(p + "self_attn.q_proj.weight"), (Shape{4096, 4096}));
        EXPECT_EQ(shape(p + "self_attn.k_proj.weight"), (Shape{1024, 4096}));
        EXPECT_EQ(shape(p + "self_attn.v_proj.weight"), (Shape{1024, 4096}));
        EXPECT_EQ(shape(p + "self_attn.o_proj.weight"), (Shape{4096, 4096}));
        EXPECT_EQ(shape(p + "self_attn.q_norm.weight"), (Shape{128}));
        EXPECT_EQ(shape(p + "self_attn.k_norm.weight"), (Shape{128}));
        EXPECT_EQ(shape(p + "post_attention_layernorm.weight"), (Shape{4096}));
        EXPECT_EQ(shape(p + "mlp.gate_proj.weight"), (Shape{12288, 4096}));
        EXPECT_EQ(shape(p + "mlp.up_proj.weight"), (Shape{12288, 4096}));
        EXPECT_EQ(shape(p + "mlp.down_proj.weight"), (Shape{4096, 12288}));
    }
    EXPECT_EQ(m.count(L + "layers.36.input_layernorm.weight"), 0u);
    EXPECT_EQ(shape(L + "norm.weight"), (Shape{4096}));
    EXPECT_EQ(shape("lm_head.weight"), (Shape{151936, 4096}));

    const std::string V = "model.visual.";
    EXPECT_EQ(shape(V + "patch_embed.proj.weight"), (Shape{1152, 3, 2, 16, 16}));
    EXPECT_EQ(shape(V + "patch_embed.proj.bias"), (Shape{1152}));
    EXPECT_EQ(shape(V + "pos_embed.weight"), (Shape{2304, 1152}));
    for (int b : {0, 13, 26}) {
        const std::string p = V + "blocks." + std::to_string(b) + ".";
        for (const char* n : {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"})
            EXPECT_EQ(shape(p + n), (Shape{1152})) << n;
        EXPECT_EQ(shape(p + "attn.qkv.weight"), (Shape{3456, 1152}));
        EXPECT_EQ(shape(p + "attn.qkv.bias"), (Shape{3456}));
        EXPECT_EQ(shape(p + "attn.proj.weight"), (Shape{1152, 1152}));
        EXPECT_EQ(shape(p + "attn.proj.bias"), (Shape{1152}));
        EXPECT_EQ(shape(p + "mlp.linear_fc1.weight"), (Shape{4304, 1152}));
        EXPECT_EQ(shape(p + "mlp.linear_fc1.bias"), (Shape{4304}));
        EXPECT_EQ(shape(p + "mlp.linear_fc2.weight"), (Shape{1152, 4304}));
        EXPECT_EQ(shape(p + "mlp.linear_fc2.bias"), (Shape{1152}));
    }
    EXPECT_EQ(m.count(V + "blocks.27.norm1.weight"), 0u);
    EXPECT_EQ(shape(V + "merger.norm.weight"), (Shape{1152}));
    EXPECT_EQ(shape(V + "merger.norm.bias"), (Shape{1152}));
    EXPECT_EQ(shape(V + "merger.linear_fc1.weight"), (Shape{4608, 4608}));
    EXPECT_EQ(shape(V + "merger.linear_fc1.bias"), (Shape{4608}));
    EXPECT_EQ(shape(V + "merger.linear_fc2.weight"), (Shape{4096, 4608}));
    EXPECT_EQ(shape(V + "merger.linear_fc2.bias"), (Shape{4096}));
    for (int k = 0; k < 3; ++k) {
        const std::string p = V + "deepstack_merger_list." + std::to_string(k) + ".";
        EXPECT_EQ(shape(p + "norm.weight"), (Shape{4608}));
        EXPECT_EQ(shape(p + "norm.bias"), (Shape{4608}));
        EXPECT_EQ(shape(p + "linear_fc1.weight"), (Shape{4608, 4608}));
        EXPECT_EQ(shape(p + "linear_fc1.bias"), (Shape{4608}));
        EXPECT_EQ(shape(p + "linear_fc2.weight"), (Shape{4096, 4608}));
        EXPECT_EQ(shape(p + "linear_fc2.bias"), (Shape{4096}));
    }
    EXPECT_EQ(m.count(V + "deepstack_merger_list.3.norm.weight"), 0u);

    // Counts: text 1 + 36·11 + 1 + lm_head; vision 3 + 27·12 + 6 + 3·6.
    EXPECT_EQ(list.size(), size_t(1 + 36 * 11 + 1 + 1 + 3 + 27 * 12 + 6 + 3 * 6));
    for (const auto& t : list) {
        if (t.name.ends_with(".bias")) EXPECT_EQ(t.init, PresetTensor::Init::Zeros) << t.name;
        else if (t.name.find("norm") != std::string::npos) EXPECT_EQ(t.init, PresetTensor::Init::Ones) << t.name;
        else EXPECT_EQ(t.init, PresetTensor::Init::Normal) << t.name;
    }
    // Parameters: 8.767 B (text 8.19 B incl. the untied head, vision 0.58 B): ~17.5 GB of bf16.
    const uint64_t bytes = preset_bytes(list);
    EXPECT_GT(bytes, uint64_t(17.4e9));
    EXPECT_LT(bytes, uint64_t(17.6e9));
}

TEST(ModelPresetsVL, Preset4bIsTiedWithItsOwnVisionTower) {
    const nlohmann::json j = qwen3_vl_preset_config("qwen3-vl-4b");
    const ModelConfig c = parse_model_config(j, "qwen3-vl-4b");
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.hidden_size, 2560);
    EXPECT_EQ(c.intermediate_size, 9728);
    EXPECT_EQ(c.num_hidden_layers, 36);
    const Qwen3VLVisionConfig v = parse_qwen3_vl_vision_config(j.at("vision_config"), "qwen3-vl-4b");
    EXPECT_EQ(v.depth, 24);
    EXPECT_EQ(v.hidden_size, 1024);
    EXPECT_EQ(v.num_heads, 16);
    EXPECT_EQ(v.intermediate_size, 4096);
    EXPECT_EQ(v.out_hidden_size, 2560);
    EXPECT_EQ(v.deepstack_visual_indexes, (std::vector<int>{5, 11, 17}));
    const auto m = by_name(qwen3_vl_preset_tensors(j));
    EXPECT_EQ(m.count("lm_head.weight"), 0u);
    EXPECT_EQ(m.at("model.visual.merger.linear_fc1.weight").shape, (Shape{4096, 4096}));
    EXPECT_EQ(m.at("model.visual.merger.linear_fc2.weight").shape, (Shape{2560, 4096}));
    EXPECT_EQ(m.at("model.visual.blocks.23.attn.qkv.weight").shape, (Shape{3072, 1024}));
}

// The nano-shape preset has exactly the tensors (names, shapes) and config values of qwen3-vl-nano.
TEST(ModelPresetsVL, NanoShapeMatchesTheNanoCheckpoint) {
    const nlohmann::json j = qwen3_vl_preset_config("qwen3-vl-nano-shape");
    const TensorStore nano = TensorStore::open(kShared + "/models/qwen3-vl-nano");
    const auto list = qwen3_vl_preset_tensors(j);
    EXPECT_EQ(list.size(), nano.tensors().size());
    for (const auto& t : list) {
        ASSERT_TRUE(nano.has(t.name)) << t.name;
        EXPECT_EQ(nano.get(t.name).shape, t.shape) << t.name;
    }
    std::ifstream in(kShared + "/models/qwen3-vl-nano/config.json");
    const nlohmann::json nj = nlohmann::json::parse(in);
    for (const char* k : {"image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id",
                          "architectures", "model_type", "tie_word_embeddings"})
        EXPECT_EQ(j.at(k), nj.at(k)) << k;
    EXPECT_EQ(j.at("text_config"), nj.at("text_config"));
    EXPECT_EQ(j.at("vision_config"), nj.at("vision_config"));
    // The chat template is the nano one, byte for byte.
    EXPECT_EQ(qwen3_vl_chat_template(), file_bytes(kShared + "/models/qwen3-vl-nano/chat_template.jinja"));
}

TEST(ModelPresetsVL, TinyCheckpointLoadsAndRunsAnImagePrefill) {
    for (bool tied : {false, true}) {
        SCOPED_TRACE(tied ? "tied" : "untied");
        TempDir dir;
        const nlohmann::json cfg = tiny_vl_config(tied);
        // A small shard limit: several shards + model.safetensors.index.json.
        write_random_qwen3_vl(cfg, dir.path(), /*seed=*/7, 0.02, /*max_shard_bytes=*/size_t(200) << 10);
        for (const char* f : {"config.json", "generation_config.json", "preprocessor_config.json",
                              "chat_template.jinja", "model.safetensors.index.json"})
            EXPECT_TRUE(std::filesystem::exists(dir.path() / f)) << f;
        const TensorStore st = TensorStore::open(dir.path());
        EXPECT_GT(st.files().size(), 2u);
        const auto list = qwen3_vl_preset_tensors(cfg);
        ASSERT_EQ(st.tensors().size(), list.size());
        for (const auto& t : list) {
            const TensorInfo& ti = st.get(t.name);
            EXPECT_EQ(ti.dtype, DType::BF16) << t.name;
            EXPECT_EQ(ti.shape, t.shape) << t.name;
            const std::vector<float> v = st.load_f32(t.name);
            if (t.init == PresetTensor::Init::Ones) {
                EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return x == 1.0f; })) << t.name;
            } else if (t.init == PresetTensor::Init::Zeros) {
                EXPECT_TRUE(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; })) << t.name;
            } else if (v.size() >= 4096) {
                double s = 0, s2 = 0;
                for (float x : v) s += x, s2 += double(x) * x;
                const double mean = s / v.size(), sd = std::sqrt(s2 / v.size() - mean * mean);
                EXPECT_NEAR(mean, 0.0, 0.002) << t.name;
                EXPECT_NEAR(sd, 0.02, 0.002) << t.name;
            }
        }
        EXPECT_EQ(st.has("lm_head.weight"), !tied);

        const Qwen3VLModel m = Qwen3VLModel::load(dir.path());
        EXPECT_EQ(m.vision().config().depth, 3);
        EXPECT_EQ(m.text().config().tie_word_embeddings, tied);
        PixelOverrides px;
        px.min_pixels = 32 * 32;
        px.max_pixels = 96 * 64;
        const ImageProcessorConfig ipc = load_model_image_processor_config(dir.path(), px);
        EXPECT_EQ(ipc.patch_size, 16);
        const ProcessedImage im = preprocess_image(gradient_image(90, 60), ipc);
        ASSERT_GT(im.n_image_tokens, 0);
        const std::vector<int32_t> ids = {1, 592, 594, 593, 5, 6, 7};
        const std::vector<int32_t> ex = m.expand_image_pads(ids, std::span<const ProcessedImage>(&im, 1));
        EXPECT_EQ(static_cast<int64_t>(ex.size()), 6 + im.n_image_tokens);
        KvCache cache = m.text().make_cache();
        std::vector<float> logits(600);
        const VisionOutput vo = m.prefill(ex, std::span<const ProcessedImage>(&im, 1), cache, logits.data(), false);
        EXPECT_EQ(vo.n_tokens, im.n_image_tokens);
        EXPECT_EQ(vo.deepstack.size(), 2u);
        EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); }));
        EXPECT_GT(*std::max_element(logits.begin(), logits.end()) - *std::min_element(logits.begin(), logits.end()),
                  0.0f);
        const int32_t one[1] = {5};
        m.text().forward(one, cache, logits.data(), false);
        EXPECT_TRUE(std::all_of(logits.begin(), logits.end(), [](float x) { return std::isfinite(x); }));
    }
}

TEST(ModelPresetsVL, WriterIsDeterministicAndSeeded) {
    const nlohmann::json cfg = tiny_vl_config(false);
    TempDir a, b, c;
    write_random_qwen3_vl(cfg, a.path(), 3);
    write_random_qwen3_vl(cfg, b.path(), 3);
    write_random_qwen3_vl(cfg, c.path(), 4);
    EXPECT_EQ(file_bytes(a.path() / "model.safetensors"), file_bytes(b.path() / "model.safetensors"));
    EXPECT_NE(file_bytes(a.path() / "model.safetensors"), file_bytes(c.path() / "model.safetensors"));
}

// A tensor spanning several generation pieces (16M elements each) is random throughout, and the
// streamed file is a valid safetensors file with 8-byte aligned offsets even for odd sizes.
TEST(ModelPresetsVL, StreamingWriterLargeAndOddTensors) {
    TempDir dir;
    const std::vector<PresetTensor> ts = {
        {"odd", {3}, PresetTensor::Init::Ones},
        {"big", {3, 6000001}, PresetTensor::Init::Normal},
        {"odd2", {5}, PresetTensor::Init::Zeros},
    };
    write_random_tensors(ts, dir.path(), 11, 0.5, size_t(1) << 30);
    const TensorStore st = TensorStore::open(dir.path() / "model.safetensors");
    EXPECT_EQ(st.load_f32("odd"), (std::vector<float>{1, 1, 1}));
    EXPECT_EQ(st.load_f32("odd2"), (std::vector<float>(5, 0.0f)));
    const std::vector<float> v = st.load_f32("big");
    ASSERT_EQ(v.size(), size_t(18000003));
    // Statistics of each 4M-element stretch (the second piece starts at 16,777,216).
    for (size_t start : {size_t(0), size_t(14000000), size_t(16777216) - 1000, size_t(17000000)}) {
        const size_t end = std::min(v.size(), start + 1000000);
        double s = 0, s2 = 0;
        for (size_t i = start; i < end; ++i) s += v[i], s2 += double(v[i]) * v[i];
        const double n = double(end - start), mean = s / n, sd = std::sqrt(s2 / n - mean * mean);
        EXPECT_NEAR(mean, 0.0, 0.01) << start;
        EXPECT_NEAR(sd, 0.5, 0.01) << start;
    }
    EXPECT_NE(v[16777216], 0.0f);
    EXPECT_NE(v.back(), 0.0f);
    // The second piece is not a copy of the first.
    EXPECT_NE(std::memcmp(v.data(), v.data() + 16777216, 1000 * sizeof(float)), 0);
}
