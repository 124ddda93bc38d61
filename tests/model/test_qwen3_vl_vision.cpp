// tests/model/test_qwen3_vl_vision.cpp — the Qwen3-VL vision encoder against transformers' float32
// outputs for qwen3-vl-nano (../shared/reference/qwen3-vl-nano.*), plus the new CPU ops it uses.
//
//   * golden: patch embedding, block-0 input (with the interpolated position embedding), the last block's
//     output, the merged image embeddings and both DeepStack features for the reference image (18×24 patches);
//   * packing: two images of different grids encoded together equal each encoded alone (attention stays
//     inside each image), and a 2-frame grid equals its two frames encoded as separate images;
//   * LayerNorm and GELU (tanh and erf) against double-precision formulas on awkward sizes;
//   * bad inputs and checkpoints throw autoround::Error naming what is wrong.
//
// Tolerance: the reference ran in float32 (bf16 weights upcast exactly, eager attention) on a GPU; we run
// float32 on CPU with other summation orders, so each op agrees to ~1e-6..1e-5 relative and 4 blocks plus
// the mergers stay well inside |a − b| <= 1e-4 · max|b| per tensor (the measured maxima are printed).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/qwen3_vl_vision.h"
#include "ops/cpu/gelu.h"
#include "ops/cpu/layer_norm.h"
#include "text/reference_safetensors.h"

using namespace autoround;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kVlDir = kShared + "/models/qwen3-vl-nano";
const std::string kRefFile = kShared + "/reference/qwen3-vl-nano.safetensors";

Qwen3VLVisionConfig nano_config() {
    const nlohmann::json j = read_json_file(kVlDir + "/config.json");
    return parse_qwen3_vl_vision_config(j.at("vision_config"), "config.json in " + kVlDir);
}

// The model's tensors are opened once for the whole file (mmap, cheap to share).
const TensorStore& nano_store() {
    static const TensorStore st = TensorStore::open(kVlDir);
    return st;
}
const Qwen3VLVision& nano_vision() {
    static const Qwen3VLVision v = Qwen3VLVision::load(nano_store(), nano_config());
    return v;
}

struct Reference {
    TensorStore st = TensorStore::open(kRefFile);
    std::vector<float> f32(const std::string& name, std::vector<int64_t> shape) const {
        EXPECT_EQ(st.get(name).shape, shape) << name;
        return st.load_f32(name);
    }
    std::vector<ImageGrid> grids() const {
        const auto v = test::read_safetensors_i64(kRefFile, "image_grid_thw");
        std::vector<ImageGrid> g;
        for (size_t i = 0; i + 2 < v.size(); i += 3)
            g.push_back({static_cast<int>(v[i]), static_cast<int>(v[i + 1]), static_cast<int>(v[i + 2])});
        return g;
    }
};

struct Diff {
    double max_abs = 0, max_ref = 0, max_rel = 0;  // max_rel: max |a−b| / (|b| + 1e-3·max|b|) elementwise
};

Diff compare(const std::vector<float>& got, const std::vector<float>& ref) {
    Diff d;
    EXPECT_EQ(got.size(), ref.size());
    for (float r : ref) d.max_ref = std::max(d.max_ref, std::fabs(double(r)));
    for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
        const double e = std::fabs(double(got[i]) - double(ref[i]));
        d.max_abs = std::max(d.max_abs, e);
        d.max_rel = std::max(d.max_rel, e / (std::fabs(double(ref[i])) + 1e-3 * d.max_ref));
    }
    return d;
}

void expect_close(const std::string& name, const std::vector<float>& got, const std::vector<float>& ref,
                  double tol = 1e-4) {
    const Diff d = compare(got, ref);
    std::printf("  %-28s max|ref| %.4g  max abs diff %.3g  (%.3g of max|ref|)  max elementwise rel %.3g\n",
                name.c_str(), d.max_ref, d.max_abs, d.max_abs / d.max_ref, d.max_rel);
    EXPECT_LE(d.max_abs, tol * d.max_ref) << name;
}

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(g);
    return v;
}

// Message fragments of an expected autoround::Error.
template <typename F>
void expect_error(F&& f, std::initializer_list<const char*> fragments) {
    try {
        f();
        ADD_FAILURE() << "expected autoround::Error";
    } catch (const Error& e) {
        const std::string msg = e.what();
        for (const char* frag : fragments) EXPECT_NE(msg.find(frag), std::string::npos) << "message: " << msg;
    }
}

class TempDir {
public:
    TempDir() {
        static std::atomic<int> counter{0};
        path_ = std::filesystem::temp_directory_path() /
                ("autoround_vision_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
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

}  // namespace

// ---- config -------------------------------------------------------------------------------------

TEST(Qwen3VLVisionConfig, ParsesNanoVisionConfig) {
    const Qwen3VLVisionConfig c = nano_config();
    EXPECT_EQ(c.depth, 4);
    EXPECT_EQ(c.hidden_size, 128);
    EXPECT_EQ(c.num_heads, 2);
    EXPECT_EQ(c.head_dim(), 64);
    EXPECT_EQ(c.intermediate_size, 256);
    EXPECT_EQ(c.in_channels, 3);
    EXPECT_EQ(c.patch_size, 16);
    EXPECT_EQ(c.temporal_patch_size, 2);
    EXPECT_EQ(c.patch_dim(), 1536);
    EXPECT_EQ(c.spatial_merge_size, 2);
    EXPECT_EQ(c.out_hidden_size, 512);
    EXPECT_EQ(c.num_position_embeddings, 256);
    EXPECT_EQ(c.deepstack_visual_indexes, (std::vector<int>{1, 2}));
    EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
    EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
}

TEST(Qwen3VLVisionConfig, BadFieldsNameTheFieldAndLabel) {
    const nlohmann::json good = read_json_file(kVlDir + "/config.json").at("vision_config");
    auto without = [&](const char* f) { nlohmann::json j = good; j.erase(f); return j; };
    expect_error([&] { parse_qwen3_vl_vision_config(without("depth"), "cfgX"); }, {"depth", "cfgX", "missing"});
    expect_error([&] { parse_qwen3_vl_vision_config(without("deepstack_visual_indexes"), "cfgX"); },
                 {"deepstack_visual_indexes", "cfgX"});
    nlohmann::json j = good;
    j["hidden_size"] = "128";
    expect_error([&] { parse_qwen3_vl_vision_config(j, "cfgX"); }, {"hidden_size", "integer", "cfgX"});
    j = good;
    j["num_position_embeddings"] = 250;
    expect_error([&] { parse_qwen3_vl_vision_config(j, "cfgX"); }, {"num_position_embeddings", "perfect square"});
    j = good;
    j["deepstack_visual_indexes"] = {1, 4};
    expect_error([&] { parse_qwen3_vl_vision_config(j, "cfgX"); }, {"deepstack_visual_indexes", "[0, 4)"});
    j = good;
    j["hidden_act"] = "relu";
    expect_error([&] { parse_qwen3_vl_vision_config(j, "cfgX"); }, {"hidden_act", "relu"});
    j = good;
    j["num_heads"] = 3;
    expect_error([&] { parse_qwen3_vl_vision_config(j, "cfgX"); }, {"num_heads", "cfgX"});
}

// ---- golden -------------------------------------------------------------------------------------

TEST(Qwen3VLVisionNano, MatchesTransformersReference) {
    const Reference ref;
    const auto grids = ref.grids();
    ASSERT_EQ(grids.size(), 1u);
    EXPECT_EQ(grids[0].t, 1);
    EXPECT_EQ(grids[0].h, 18);
    EXPECT_EQ(grids[0].w, 24);
    const auto pixels = ref.f32("pixel_values", {432, 1536});

    std::vector<float> patch_out, block0_in, last_out;
    int block_outs = 0;
    const VisionOutput out = nano_vision().encode(pixels, grids, [&](const std::string& name, const float* d,
                                                                     int64_t rows, int64_t cols) {
        EXPECT_EQ(rows, 432);
        EXPECT_EQ(cols, 128);
        std::vector<float> v(d, d + rows * cols);
        if (name == "patch_embed_out") patch_out = v;
        else if (name == "block0_input") block0_in = v;
        else if (name == "last_block_out") last_out = v;
        else if (name == "block_out") ++block_outs;
        else ADD_FAILURE() << "unexpected hook " << name;
    });
    EXPECT_EQ(block_outs, 4);
    ASSERT_EQ(out.n_tokens, 108);
    ASSERT_EQ(out.deepstack.size(), 2u);

    std::printf("qwen3-vl-nano vision tower vs transformers float32:\n");
    expect_close("vision.patch_embed_out", patch_out, ref.f32("vision.patch_embed_out", {432, 128}));
    expect_close("vision.block0_input", block0_in, ref.f32("vision.block0_input", {432, 128}));
    expect_close("vision.last_block_out", last_out, ref.f32("vision.last_block_out", {432, 128}));
    expect_close("vision.merged_image_embeds", out.image_embeds, ref.f32("vision.merged_image_embeds", {108, 512}));
    expect_close("vision.deepstack_0", out.deepstack[0], ref.f32("vision.deepstack_0", {108, 512}));
    expect_close("vision.deepstack_1", out.deepstack[1], ref.f32("vision.deepstack_1", {108, 512}));
}

// ---- packing ------------------------------------------------------------------------------------

TEST(Qwen3VLVisionNano, PackedImagesEqualSeparateEncodes) {
    const Qwen3VLVision& vis = nano_vision();
    const int64_t P = vis.config().patch_dim(), O = vis.config().out_hidden_size;
    const ImageGrid ga{1, 6, 10}, gb{1, 4, 2};  // 60 and 8 patches: different shapes and lengths
    const auto pa = randn(60 * P, 21), pb = randn(8 * P, 22);
    std::vector<float> packed(pa);
    packed.insert(packed.end(), pb.begin(), pb.end());
    const std::vector<ImageGrid> both{ga, gb};

    const VisionOutput o_ab = vis.encode(packed, both);
    const VisionOutput o_a = vis.encode(pa, std::span<const ImageGrid>(&ga, 1));
    const VisionOutput o_b = vis.encode(pb, std::span<const ImageGrid>(&gb, 1));
    ASSERT_EQ(o_ab.n_tokens, 17);
    ASSERT_EQ(o_a.n_tokens, 15);
    ASSERT_EQ(o_b.n_tokens, 2);

    auto concat = [](const std::vector<float>& a, const std::vector<float>& b) {
        std::vector<float> v(a);
        v.insert(v.end(), b.begin(), b.end());
        return v;
    };
    expect_close("packed image_embeds", o_ab.image_embeds, concat(o_a.image_embeds, o_b.image_embeds), 1e-5);
    for (size_t k = 0; k < o_ab.deepstack.size(); ++k)
        expect_close("packed deepstack_" + std::to_string(k), o_ab.deepstack[k],
                     concat(o_a.deepstack[k], o_b.deepstack[k]), 1e-5);
    ASSERT_EQ(o_ab.image_embeds.size(), static_cast<size_t>(17 * O));

    // Attention really is confined: changing image b's pixels leaves image a's outputs unchanged.
    std::vector<float> packed2(pa);
    const auto pb2 = randn(8 * P, 23);
    packed2.insert(packed2.end(), pb2.begin(), pb2.end());
    const VisionOutput o_ab2 = vis.encode(packed2, both);
    for (int64_t i = 0; i < 15 * O; ++i) ASSERT_NEAR(o_ab2.image_embeds[i], o_ab.image_embeds[i], 1e-5f) << i;
    double changed = 0;
    for (int64_t i = 15 * O; i < 17 * O; ++i) changed += std::fabs(o_ab2.image_embeds[i] - o_ab.image_embeds[i]);
    EXPECT_GT(changed, 1e-3);
}

TEST(Qwen3VLVisionNano, TwoFrameGridEqualsTwoSeparateFrames) {
    // A video grid (t=2) is two attention segments with the same positions: the same as two images.
    const Qwen3VLVision& vis = nano_vision();
    const int64_t P = vis.config().patch_dim();
    const auto px = randn(2 * 16 * P, 31);
    const ImageGrid video{2, 4, 4};
    const std::vector<ImageGrid> frames{{1, 4, 4}, {1, 4, 4}};
    const VisionOutput ov = vis.encode(px, std::span<const ImageGrid>(&video, 1));
    const VisionOutput of = vis.encode(px, frames);
    EXPECT_EQ(ov.n_tokens, 8);
    expect_close("2-frame image_embeds", ov.image_embeds, of.image_embeds, 1e-6);
    for (size_t k = 0; k < ov.deepstack.size(); ++k)
        expect_close("2-frame deepstack_" + std::to_string(k), ov.deepstack[k], of.deepstack[k], 1e-6);
}

// ---- bad inputs ---------------------------------------------------------------------------------

TEST(Qwen3VLVisionNano, BadInputsThrow) {
    const Qwen3VLVision& vis = nano_vision();
    const int64_t P = vis.config().patch_dim();
    const std::vector<float> px(432 * P, 0.1f);
    const std::vector<ImageGrid> g{{1, 18, 24}};

    const std::vector<float> narrow(432 * (P - 1), 0.1f);  // rows of 1535 instead of 1536
    expect_error([&] { vis.encode(narrow, g); }, {"pixel_values", "432 rows of width 1535", "width 1536"});

    const std::vector<ImageGrid> odd{{1, 18, 23}};
    expect_error([&] { vis.encode(px, odd); }, {"image 0", "h=18, w=23", "multiples of spatial_merge_size 2"});

    const std::vector<ImageGrid> fewer{{1, 18, 22}};
    expect_error([&] { vis.encode(px, fewer); }, {"grids total 396 patches", "432 rows"});

    const std::vector<ImageGrid> zero{{0, 18, 24}};
    expect_error([&] { vis.encode(px, zero); }, {"image 0", "t=0"});

    expect_error([&] { vis.encode(px, std::span<const ImageGrid>{}); }, {"no images"});

    const Qwen3VLVision empty;
    expect_error([&] { empty.encode(px, g); }, {"not loaded"});
}

TEST(Qwen3VLVisionNano, MissingOrMisshapenTensorsThrow) {
    const Qwen3VLVisionConfig cfg = nano_config();
    // A config with one block more than the checkpoint: blocks.4.* are missing.
    Qwen3VLVisionConfig deeper = cfg;
    deeper.depth = 5;
    expect_error([&] { Qwen3VLVision::load(nano_store(), deeper); },
                 {"model.visual.blocks.4.norm1.weight", "missing", "[128]"});
    // A wrong prefix: nothing is found.
    expect_error([&] { Qwen3VLVision::load(nano_store(), cfg, "visual."); },
                 {"visual.patch_embed.proj.weight", "missing", "[128, 3, 2, 16, 16]"});

    // A checkpoint whose tensor has the wrong shape, and one with a tensor left out.
    TempDir dir;
    const std::string bad = "model.visual.blocks.2.attn.proj.bias";
    const std::string gone = "model.visual.deepstack_merger_list.1.linear_fc2.weight";
    SafetensorsWriter shaped, holed;
    for (const std::string& name : nano_store().names()) {
        if (name.rfind("model.visual.", 0) != 0) continue;
        const TensorInfo& t = nano_store().get(name);
        std::vector<float> v = nano_store().load_f32(name);
        if (name == bad)
            shaped.add_f32(name, {t.shape[0] - 1}, std::span<const float>(v).first(v.size() - 1));
        else
            shaped.add_f32(name, t.shape, v);
        if (name != gone) holed.add_f32(name, t.shape, v);
    }
    shaped.write_file(dir.path() / "shaped.safetensors");
    holed.write_file(dir.path() / "holed.safetensors");
    const TensorStore s1 = TensorStore::open(dir.path() / "shaped.safetensors");
    expect_error([&] { Qwen3VLVision::load(s1, cfg); }, {bad.c_str(), "has shape [127]", "expected [128]"});
    const TensorStore s2 = TensorStore::open(dir.path() / "holed.safetensors");
    expect_error([&] { Qwen3VLVision::load(s2, cfg); }, {gone.c_str(), "missing", "[512, 512]"});

    // The float32 copy of the tower loads and encodes the same as the bf16 checkpoint (a sanity check
    // of the F32 weight path), and outlives the store it was loaded from.
    Qwen3VLVision from_f32;
    {
        SafetensorsWriter full;
        for (const std::string& name : nano_store().names())
            if (name.rfind("model.visual.", 0) == 0)
                full.add_f32(name, nano_store().get(name).shape, nano_store().load_f32(name));
        full.write_file(dir.path() / "full.safetensors");
        const TensorStore s3 = TensorStore::open(dir.path() / "full.safetensors");
        from_f32 = Qwen3VLVision::load(s3, cfg);
    }
    const int64_t P = cfg.patch_dim();
    const auto px = randn(16 * P, 41);
    const ImageGrid g{1, 4, 4};
    const auto a = from_f32.encode(px, std::span<const ImageGrid>(&g, 1));
    const auto b = nano_vision().encode(px, std::span<const ImageGrid>(&g, 1));
    expect_close("f32 checkpoint image_embeds", a.image_embeds, b.image_embeds, 1e-5);
}

// ---- ops ----------------------------------------------------------------------------------------

TEST(CpuLayerNorm, MatchesDoubleFormulaOnAwkwardSizes) {
    for (int64_t dim : {1, 2, 3, 17, 129, 1000, 4608}) {
        for (int64_t rows : {1, 3, 20}) {
            for (float offset : {0.0f, 50.0f}) {  // a large mean tests the variance for cancellation
                auto x = randn(rows * dim, 51 + static_cast<uint32_t>(dim));
                for (float& v : x) v += offset;
                const auto w = randn(dim, 52), b = randn(dim, 53);
                for (bool with_bias : {true, false}) {
                    std::vector<float> y(rows * dim);
                    layer_norm(x.data(), w.data(), with_bias ? b.data() : nullptr, rows, dim, 1e-6f, y.data());
                    for (int64_t r = 0; r < rows; ++r) {
                        double mean = 0, var = 0;
                        for (int64_t i = 0; i < dim; ++i) mean += x[r * dim + i];
                        mean /= double(dim);
                        for (int64_t i = 0; i < dim; ++i) var += (x[r * dim + i] - mean) * (x[r * dim + i] - mean);
                        var /= double(dim);
                        for (int64_t i = 0; i < dim; ++i) {
                            const double e = (x[r * dim + i] - mean) / std::sqrt(var + 1e-6) * w[i] +
                                             (with_bias ? b[i] : 0.0);
                            // 1 ulp of the input relative to its deviation from the mean, scaled by w
                            const double tol = 1e-5 * (1 + std::fabs(e)) +
                                               4e-7 * std::fabs(double(offset)) / std::sqrt(var + 1e-6) * std::fabs(w[i]);
                            ASSERT_NEAR(y[r * dim + i], e, tol) << "dim " << dim << " row " << r << " i " << i;
                        }
                    }
                }
            }
        }
    }
    // In place (x == y) gives the same result.
    auto x = randn(5 * 33, 54);
    const auto w = randn(33, 55), b = randn(33, 56);
    std::vector<float> y(x.size());
    layer_norm(x.data(), w.data(), b.data(), 5, 33, 1e-6f, y.data());
    layer_norm(x.data(), w.data(), b.data(), 5, 33, 1e-6f, x.data());
    EXPECT_EQ(x, y);
    // A constant row normalizes to the bias (variance 0: only eps in the denominator).
    std::vector<float> c(7, 3.0f), yc(7);
    const std::vector<float> ones(7, 1.0f), bias{1, 2, 3, 4, 5, 6, 7};
    layer_norm(c.data(), ones.data(), bias.data(), 1, 7, 1e-6f, yc.data());
    for (int i = 0; i < 7; ++i) EXPECT_FLOAT_EQ(yc[i], bias[i]);
}

TEST(CpuGelu, TanhAndErfMatchDoubleFormulas) {
    for (int64_t n : {1, 7, 33, 1001, 70001}) {  // 70001: the multi-threaded branch
        std::vector<float> x(n);
        for (int64_t i = 0; i < n; ++i) x[i] = n == 1 ? 0.5f : -12.0f + 24.0f * float(i) / float(n - 1);
        std::vector<float> yt(n), ye(n);
        gelu_tanh(x.data(), n, yt.data());
        gelu_erf(x.data(), n, ye.data());
        for (int64_t i = 0; i < n; ++i) {
            const double v = x[i];
            const double t = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            const double e = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
            ASSERT_NEAR(yt[i], t, 2e-6 * (1 + std::fabs(t))) << "tanh x=" << v;
            ASSERT_NEAR(ye[i], e, 2e-6 * (1 + std::fabs(e))) << "erf x=" << v;
        }
    }
    // Known values and in-place use.
    std::vector<float> x{0.0f, 1.0f, -1.0f, 3.0f};
    std::vector<float> y(4);
    gelu_erf(x.data(), 4, y.data());
    EXPECT_FLOAT_EQ(y[0], 0.0f);
    EXPECT_NEAR(y[1], 0.8413447460685429, 1e-6);
    EXPECT_NEAR(y[2], -0.15865525393145707, 1e-6);
    gelu_tanh(x.data(), 4, x.data());
    EXPECT_NEAR(x[1], 0.8411919906082768, 1e-6);
    EXPECT_NEAR(x[3], 2.996362607918227, 1e-6);
}
