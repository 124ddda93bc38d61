// tests/model/test_qwen3_vl_text.cpp — the Qwen3-VL language model side against transformers' float32
// outputs for qwen3-vl-nano (../shared/reference/qwen3-vl-nano.*), with the reference's own vision
// features as input so that this file tests only what follows the vision tower:
//   config parsing (text_config, token ids, mrope_section), get_rope_index positions (exact),
//   placing the image rows (lm.inputs_embeds, exact: copies), DeepStack additions and interleaved M-RoPE
//   (the logits), and the decode positions after a multimodal prefill (greedy with the KV cache).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/mrope_positions.h"
#include "model/qwen3_model.h"
#include "model/reference_ids.h"
#include "model/sampler.h"
#include "ops/cpu/rope.h"

using namespace autoround;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kVlDir = kShared + "/models/qwen3-vl-nano";

struct VlRef {
    TensorStore st = TensorStore::open(kShared + "/reference/qwen3-vl-nano.safetensors");
    std::vector<int32_t> ids(const std::string& name) const { return test::reference_ids(st, name); }
    std::vector<float> f32(const std::string& name) const { return st.load_f32(name); }
};
const VlRef& ref() { static VlRef r; return r; }
const Qwen3Model& vl_text() {
    static Qwen3Model m = Qwen3Model::load(kVlDir);
    return m;
}

std::vector<ImageGrid> ref_grids() {
    const std::vector<int32_t> g = ref().ids("image_grid_thw");
    return {ImageGrid{g[0], g[1], g[2]}};
}

}  // namespace

TEST(Qwen3VLText, ConfigReadsTextConfigAndTokenIds) {
    const ModelConfig c = load_model_config(kVlDir);
    EXPECT_TRUE(c.vision_language);
    EXPECT_EQ(c.architecture, "Qwen3VLForConditionalGeneration");
    EXPECT_EQ(c.text_prefix, "model.language_model.");
    EXPECT_EQ(c.hidden_size, 512);
    EXPECT_EQ(c.num_hidden_layers, 6);
    EXPECT_EQ(c.head_dim, 128);
    EXPECT_EQ(c.vocab_size, 8192);
    EXPECT_FALSE(c.tie_word_embeddings);
    EXPECT_DOUBLE_EQ(c.rope.theta, 5e6);
    EXPECT_EQ(c.mrope_section, (std::vector<int>{24, 20, 20}));
    EXPECT_EQ(c.image_token_id, 8178);
    EXPECT_EQ(c.video_token_id, 8179);
    EXPECT_EQ(c.vision_start_token_id, 8175);
    EXPECT_EQ(c.vision_end_token_id, 8176);
}

TEST(Qwen3VLText, BadVlConfigsNameTheField) {
    nlohmann::json j = read_json_file(kVlDir + "/config.json");
    auto msg = [](const nlohmann::json& x) {
        try {
            parse_model_config(x, "cfg.json");
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    nlohmann::json a = j;
    a.erase("text_config");
    EXPECT_NE(msg(a).find("text_config"), std::string::npos) << msg(a);
    nlohmann::json b = j;
    b["text_config"]["rope_parameters"]["mrope_section"] = {24, 20, 21};
    EXPECT_NE(msg(b).find("mrope_section"), std::string::npos) << msg(b);
    nlohmann::json c = j;
    c["image_token_id"] = 999999;
    EXPECT_NE(msg(c).find("image_token_id"), std::string::npos) << msg(c);
    nlohmann::json d = j;
    d.erase("vision_config");
    EXPECT_NE(msg(d).find("vision_config"), std::string::npos) << msg(d);
}

TEST(Qwen3VLText, MropeAxisLayoutIsInterleaved) {
    const std::vector<int> sec{24, 20, 20};
    int counts[3] = {0, 0, 0};
    for (int j = 0; j < 64; ++j) ++counts[mrope_axis(j, sec)];
    EXPECT_EQ(counts[0], 24);
    EXPECT_EQ(counts[1], 20);
    EXPECT_EQ(counts[2], 20);
    EXPECT_EQ(mrope_axis(1, sec), 1);
    EXPECT_EQ(mrope_axis(58, sec), 1);
    EXPECT_EQ(mrope_axis(59, sec), 2);
    EXPECT_EQ(mrope_axis(60, sec), 0);
    EXPECT_EQ(mrope_axis(61, sec), 0);
    // With equal t/h/w rows, M-RoPE is the 1-D RoPE bit for bit.
    const int64_t T = 7, nh = 3, D = 128;
    RopeConfig rc;
    rc.theta = 5e6;
    const std::vector<float> inv = rope_inv_freq(rc, static_cast<int>(D));
    std::vector<float> a(T * nh * D);
    for (size_t i = 0; i < a.size(); ++i) a[i] = std::sin(0.37f * static_cast<float>(i)) + 0.1f;
    std::vector<float> b = a;
    std::vector<int32_t> pos(T), pos3(3 * T);
    for (int64_t t = 0; t < T; ++t) pos[t] = pos3[t] = pos3[T + t] = pos3[2 * T + t] = static_cast<int32_t>(5 * t + 3);
    rope_apply(a.data(), T, nh, D, pos.data(), inv);
    rope_apply_mrope(b.data(), T, nh, D, pos3.data(), inv, sec);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
}

TEST(Qwen3VLText, RopeIndexEqualsReferenceExactly) {
    const std::vector<int32_t> ids = ref().ids("input_ids");
    const std::vector<int32_t> want = ref().ids("rope.position_ids");
    const std::vector<ImageGrid> grids = ref_grids();
    const MropePositions mp = mrope_positions(ids, grids, 8178, 2);
    ASSERT_EQ(mp.positions.size(), want.size());
    EXPECT_EQ(mp.positions, want);
    EXPECT_EQ(mp.rope_delta, ref().ids("rope.mrope_position_deltas")[0]);
    EXPECT_EQ(mp.rope_delta, -96);
}

TEST(Qwen3VLText, RopeIndexRejectsMismatchedPlaceholders) {
    std::vector<int32_t> ids = ref().ids("input_ids");
    const std::vector<ImageGrid> grids = ref_grids();
    // one pad token short
    std::vector<int32_t> shorter = ids;
    shorter.erase(std::find(shorter.begin(), shorter.end(), 8178));
    EXPECT_THROW(mrope_positions(shorter, grids, 8178, 2), Error);
    // two images for one placeholder run
    std::vector<ImageGrid> two = grids;
    two.push_back(grids[0]);
    EXPECT_THROW(mrope_positions(ids, two, 8178, 2), Error);
    // no images for a placeholder run
    EXPECT_THROW(mrope_positions(ids, std::span<const ImageGrid>{}, 8178, 2), Error);
    // text only: positions 0..T-1, delta 0
    const std::vector<int32_t> text{1, 2, 3};
    const MropePositions mp = mrope_positions(text, std::span<const ImageGrid>{}, 8178, 2);
    EXPECT_EQ(mp.positions, (std::vector<int32_t>{0, 1, 2, 0, 1, 2, 0, 1, 2}));
    EXPECT_EQ(mp.rope_delta, 0);
}

TEST(Qwen3VLText, LogitsMatchReferenceWithReferenceVisionFeatures) {
    const Qwen3Model& m = vl_text();
    const std::vector<int32_t> ids = ref().ids("input_ids");
    const int64_t T = static_cast<int64_t>(ids.size()), H = 512, V = 8192;
    const std::vector<float> img = ref().f32("vision.merged_image_embeds");
    const std::vector<float> ds0 = ref().f32("vision.deepstack_0"), ds1 = ref().f32("vision.deepstack_1");
    const std::vector<int32_t> pos = ref().ids("rope.position_ids");
    MultimodalInput mm;
    mm.image_embeds = img.data();
    mm.n_visual = static_cast<int64_t>(img.size()) / H;
    mm.deepstack = {ds0.data(), ds1.data()};
    mm.positions = pos.data();

    std::vector<float> embeds;
    KvCache cache = m.make_cache();
    std::vector<float> logits(T * V);
    m.forward(ids, cache, logits.data(), true,
              [&](const std::string& name, int, const float* d, int64_t t, int64_t dim) {
                  if (name == "embeddings") embeds.assign(d, d + t * dim);
              },
              &mm);
    const std::vector<float> want_embeds = ref().f32("lm.inputs_embeds");
    ASSERT_EQ(embeds.size(), want_embeds.size());
    double emb_diff = 0;
    for (size_t i = 0; i < embeds.size(); ++i) emb_diff = std::max(emb_diff, double(std::abs(embeds[i] - want_embeds[i])));
    EXPECT_EQ(emb_diff, 0.0);  // bf16 rows upcast and reference rows copied: exact

    const std::vector<float> want = ref().f32("logits");
    double worst = 0, scale = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, double(std::abs(logits[i] - want[i])));
        scale = std::max(scale, double(std::abs(want[i])));
    }
    std::printf("qwen3-vl-nano LM logits: max |diff| %.3g (max |logit| %.3g)\n", worst, scale);
    EXPECT_LT(worst, 1e-4 * std::max(1.0, scale));  // measured 1.7e-6
    EXPECT_EQ(cache.position_delta(), -96);
}

TEST(Qwen3VLText, GreedyDecodeContinuesAfterTheImage) {
    // The reference recomputes the whole sequence (vision tower included) at each step; here the image
    // prefill runs once and the 16 decode steps use the KV cache with slot + rope_delta positions.
    const Qwen3Model& m = vl_text();
    const std::vector<int32_t> ids = ref().ids("input_ids");
    const int64_t H = 512, V = 8192;
    const std::vector<float> img = ref().f32("vision.merged_image_embeds");
    const std::vector<float> ds0 = ref().f32("vision.deepstack_0"), ds1 = ref().f32("vision.deepstack_1");
    const MropePositions mp = mrope_positions(ids, ref_grids(), 8178, 2);
    MultimodalInput mm;
    mm.image_embeds = img.data();
    mm.n_visual = static_cast<int64_t>(img.size()) / H;
    mm.deepstack = {ds0.data(), ds1.data()};
    mm.positions = mp.positions.data();
    KvCache cache = m.make_cache();
    std::vector<float> logits(V);
    m.forward(ids, cache, logits.data(), false, {}, &mm);
    const std::vector<int32_t> want = ref().ids("greedy_ids");
    const std::vector<float> margin = ref().f32("greedy_margin");
    for (size_t s = 0; s < want.size(); ++s) {
        const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
        if (next != want[s]) {
            EXPECT_LT(margin[s], 1e-3) << "step " << s << ": got " << next << ", want " << want[s];
            break;  // a legitimate near-tie: the continuation diverges from here
        }
        const int32_t tok[1] = {next};
        m.forward(tok, cache, logits.data(), false);
    }
}
