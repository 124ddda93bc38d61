// tests/quant/test_multimodal_calibration.cpp — the language blocks' image+text calibration for
// --quant_nontext_module (quant/multimodal_calibration.h) and its use by the tuner
// (quantize_model_from_inputs in quant/signround_tuner.h), on qwen3-vl-nano with images of
// ../shared/data/images and captions written next to copies of them:
//  * the samples: one chat per image (caption as the answer, none: generation prompt), one run of image tokens
//    at the same rows in every sample, right padding, the loss mask = the real tokens;
//  * the training chain equals inference: the 6 language blocks run as Qwen3BlockGrad with the shared M-RoPE
//    positions and the DeepStack additions reproduce Qwen3VLModel::prefill's hidden states of every sample
//    (itself golden-tested against transformers) on its real tokens;
//  * padding never reaches the tuning: garbage in the padded rows leaves every code and loss unchanged;
//  * --nblocks groups end where a DeepStack addition follows; bad inputs are refused with clear errors.
// (The GPU block engine with the same positions and masks: tests/cuda/test_cuda_block_engine.cpp.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "io/model_config.h"
#include "model/qwen3_block_grad.h"
#include "model/qwen3_vl_model.h"
#include "quant/multimodal_calibration.h"
#include "quant/scheme.h"
#include "quant/signround_tuner.h"
#include "quant/vision_calibration.h"
#include "quant_test_util.h"
#include "text/bpe_tokenizer.h"

namespace fs = std::filesystem;
using namespace autoround;
using autoround::testquant::expect_error;

namespace {

const fs::path kShared = fs::path(AR_SHARED_DIR);
const fs::path kVl = kShared / "models/qwen3-vl-nano";

const Qwen3VLModel& vl() {
    static const Qwen3VLModel m = Qwen3VLModel::load(kVl);
    return m;
}

// A temporary folder of three images: two with captions of different lengths, one without (the caller
// removes it).
fs::path make_image_folder() {
    const fs::path d = fs::temp_directory_path() / ("ar_mm_cal_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    for (const char* f : {"000000039769.png", "Confusing-Pictures.jpg", "merlion.png"})
        fs::copy_file(kShared / "data/images" / f, d / f);
    std::ofstream(d / "000000039769.txt") << "Two cats sleep on a pink couch next to two remote controls.\n";
    std::ofstream(d / "merlion.txt") << "  The Merlion fountain in Singapore, a statue with a lion's head and a "
                                        "fish's body spouting water into the bay, with the city skyline behind.\n";
    return d;
}

struct Fixture {
    VisionCalibrationSet vcal;
    MultimodalCalibration mc;
};

const Fixture& fixture() {
    static const Fixture f = [] {
        Fixture x;
        VisionCalibrationOptions vo;
        vo.dir = make_image_folder();
        vo.image_size = 256;  // 16 x 16 patches -> 64 image tokens
        x.vcal = build_vision_calibration(vo, load_model_image_processor_config(kVl));
        fs::remove_all(vo.dir);  // the set holds the pixels and the captions
        const BpeTokenizer tok = BpeTokenizer::load(kVl / "tokenizer.json");
        x.mc = build_multimodal_calibration(vl(), x.vcal, tok, load_tokenizer_config(kVl), MultimodalCalibrationOptions{});
        return x;
    }();
    return f;
}

QuantPlan nano_plan() {
    SchemeOptions so;
    so.scheme = "W4A16";
    return plan_quantization(describe_model(vl().text().config(), vl().text().tensors()), so);
}

SignRoundOptions quick(int iters) {
    SignRoundOptions o;
    o.iters = iters;
    o.batch_size = 2;
    o.progress = false;
    return o;
}

}  // namespace

TEST(MultimodalCalibration, OneChatPerImagePaddedWithTheRealTokensInTheLoss) {
    const Fixture& f = fixture();
    const MultimodalCalibration& mc = f.mc;
    const BlockInputs& in = mc.inputs;
    const ModelConfig& c = vl().text().config();
    ASSERT_EQ(in.n, 3);
    ASSERT_EQ(mc.ids.size(), 3u);
    EXPECT_EQ(f.vcal.captions, 2);
    const BpeTokenizer tok = BpeTokenizer::load(kVl / "tokenizer.json");
    // file-name order: 000000039769 (caption), Confusing-Pictures (none), merlion (longer caption)
    EXPECT_NE(tok.decode(mc.ids[0]).find("assistant\nTwo cats sleep on a pink couch"), std::string::npos);
    const std::vector<int32_t> no_cap(mc.ids[1].begin(), mc.ids[1].begin() + mc.lengths[1]);
    const std::string tail = tok.decode(no_cap);
    EXPECT_EQ(tail.substr(tail.size() - 22), "<|im_start|>assistant\n") << tail;
    EXPECT_NE(tok.decode(mc.ids[2]).find("The Merlion fountain"), std::string::npos);  // whitespace trimmed
    EXPECT_LT(mc.lengths[1], mc.lengths[0]);
    EXPECT_LT(mc.lengths[0], mc.lengths[2]);
    EXPECT_EQ(in.L, mc.lengths[2]);
    // one run of 64 image tokens at the same rows everywhere; mask = real tokens; padding after them
    ASSERT_EQ(in.visual_rows.size(), 64u);
    EXPECT_EQ(in.visual_rows.back() - in.visual_rows.front(), 63);
    for (int64_t i = 0; i < in.n; ++i) {
        int64_t masked = 0, images = 0;
        for (int64_t t = 0; t < in.L; ++t) {
            masked += in.loss_mask[i * in.L + t];
            EXPECT_EQ(in.loss_mask[i * in.L + t], t < mc.lengths[i] ? 1 : 0);
            images += mc.ids[i][t] == c.image_token_id;
        }
        EXPECT_EQ(masked, mc.lengths[i]);
        EXPECT_EQ(images, 64);
        for (int64_t v : in.visual_rows) EXPECT_EQ(mc.ids[i][v], c.image_token_id);
    }
    ASSERT_EQ(in.mrope_positions.size(), static_cast<size_t>(3 * in.L));
    EXPECT_EQ(in.mrope_section, c.mrope_section);
    // the image's positions: t constant, h/w spanning the 8 x 8 merged grid
    const int64_t v0 = in.visual_rows.front();
    EXPECT_EQ(in.mrope_positions[v0 + 63], in.mrope_positions[v0]);
    EXPECT_EQ(in.mrope_positions[in.L + v0 + 63] - in.mrope_positions[in.L + v0], 7);
    EXPECT_EQ(in.mrope_positions[2 * in.L + v0 + 63] - in.mrope_positions[2 * in.L + v0], 7);
    EXPECT_EQ(in.deepstack.size(), 2u);  // deepstack_visual_indexes [1, 2]
    for (const auto& d : in.deepstack) EXPECT_EQ(d.size(), static_cast<size_t>(3 * 64 * c.hidden_size));
    EXPECT_NE(mc.description.find("3 image+text chats (2 with captions)"), std::string::npos) << mc.description;
}

// The tuner's view of a sample is the model's: embeddings with image rows, then each block with the shared
// M-RoPE positions and the DeepStack additions, equal to the inference prefill on every real token.
TEST(MultimodalCalibration, TrainingChainEqualsThePrefillOfEverySample) {
    const Fixture& f = fixture();
    const BlockInputs& in = f.mc.inputs;
    const Qwen3Model& text = vl().text();
    const int64_t n = in.n, L = in.L, H = text.config().hidden_size, nvis = 64;
    const int nl = text.config().num_hidden_layers;
    // the training chain over all samples at once
    std::vector<std::vector<float>> chain;  // [layer + 1][n, L, H]
    chain.push_back(in.hidden);
    for (int l = 0; l < nl; ++l) {
        Qwen3BlockGrad<float> blk(load_block_consts(text, l));
        blk.set_mrope_positions(in.mrope_positions, in.mrope_section);
        std::array<std::vector<float>, kNumBlockLinears> W;
        Qwen3BlockGrad<float>::Weights wp;
        for (int i = 0; i < kNumBlockLinears; ++i) {
            W[i] = load_block_weight(text, l, i);
            wp[i] = W[i].data();
        }
        std::vector<float> out(chain.back().size());
        blk.forward(chain.back().data(), n, L, wp, out.data());
        if (l < static_cast<int>(in.deepstack.size()))
            for (int64_t s = 0; s < n; ++s)
                for (int64_t v = 0; v < nvis; ++v)
                    for (int64_t h = 0; h < H; ++h)
                        out[(s * L + in.visual_rows[v]) * H + h] += in.deepstack[l][(s * nvis + v) * H + h];
        chain.push_back(std::move(out));
    }
    const int64_t patches = f.vcal.rows_per_image, pd = vl().vision().config().patch_dim();
    for (int64_t s = 0; s < n; ++s) {
        SCOPED_TRACE("sample " + std::to_string(s));
        ProcessedImage im;
        im.pixel_values.assign(f.vcal.pixel_values.begin() + s * patches * pd,
                               f.vcal.pixel_values.begin() + (s + 1) * patches * pd);
        im.n_patches = patches;
        im.patch_dim = pd;
        im.grid_thw = {f.vcal.grid.t, f.vcal.grid.h, f.vcal.grid.w};
        im.n_image_tokens = nvis;
        const int64_t T = f.mc.lengths[s];
        const std::vector<int32_t> ids(f.mc.ids[s].begin(), f.mc.ids[s].begin() + T);
        std::map<int, std::vector<float>> got;  // layer + 1 -> [T, H] (0: the embeddings)
        KvCache cache = text.make_cache();
        std::vector<float> logits(static_cast<size_t>(text.config().vocab_size));
        vl().prefill(ids, std::span<const ProcessedImage>(&im, 1), cache, logits.data(), false,
                     [&](const std::string& name, int layer, const float* d, int64_t rows, int64_t dim) {
                         if (name == "embeddings") got[0].assign(d, d + rows * dim);
                         if (name == "block_out") got[layer + 1].assign(d, d + rows * dim);
                     });
        ASSERT_EQ(got.size(), static_cast<size_t>(nl + 1));
        for (int l = 0; l <= nl; ++l) {
            double err = 0, mx = 0;
            for (int64_t t = 0; t < T; ++t)
                for (int64_t h = 0; h < H; ++h) {
                    const double a = chain[l][(s * L + t) * H + h], b = got[l][t * H + h];
                    err = std::max(err, std::abs(a - b));
                    mx = std::max(mx, std::abs(b));
                }
            if (l == 0) {
                EXPECT_EQ(err, 0.0) << "the block-0 inputs are the prefill's embeddings exactly";
            }
            EXPECT_LE(err, 2e-5 * std::max(1.0, mx)) << "layer " << l - 1 << " output, max |ref| " << mx;
        }
    }
}

// Padded rows are out of the loss and only later (never earlier) tokens could attend to them: whatever
// they hold, the tuning takes the same steps and exports the same codes.
TEST(MultimodalCalibration, PaddingNeverReachesTheTuning) {
    const QuantPlan plan = nano_plan();
    BlockInputs a = fixture().mc.inputs, b = a;
    const int64_t H = vl().text().config().hidden_size;
    int64_t pads = 0;
    for (int64_t i = 0; i < b.n; ++i)
        for (int64_t t = fixture().mc.lengths[i]; t < b.L; ++t, ++pads)
            for (int64_t h = 0; h < H; ++h) b.hidden[(i * b.L + t) * H + h] = 50.0f * std::sin(float(t * H + h));
    ASSERT_GT(pads, 10);
    const QuantizeResult ra = quantize_model_from_inputs(vl().text(), plan, std::move(a), quick(3));
    const QuantizeResult rb = quantize_model_from_inputs(vl().text(), plan, std::move(b), quick(3));
    ASSERT_EQ(ra.blocks.size(), rb.blocks.size());
    for (size_t k = 0; k < ra.blocks.size(); ++k) {
        EXPECT_EQ(ra.blocks[k].losses, rb.blocks[k].losses) << ra.blocks[k].name;
        EXPECT_EQ(ra.blocks[k].final_loss, rb.blocks[k].final_loss) << ra.blocks[k].name;
        EXPECT_GT(ra.blocks[k].initial_loss, 0.0);
    }
    for (const auto& [name, q] : ra.layers) {
        ASSERT_TRUE(rb.layers.count(name)) << name;
        EXPECT_EQ(q.codes, rb.layers.at(name).codes) << name;
        EXPECT_EQ(q.scales, rb.layers.at(name).scales) << name;
    }
    // ... while the real tokens do matter: the same run on 1-D positions tunes differently
    BlockInputs c = fixture().mc.inputs;
    c.mrope_positions.clear();
    const QuantizeResult rc = quantize_model_from_inputs(vl().text(), plan, std::move(c), quick(3));
    EXPECT_NE(rc.blocks[0].losses, ra.blocks[0].losses);
}

TEST(MultimodalCalibration, NblocksGroupsEndWhereDeepStackAddsFeatures) {
    SignRoundOptions o = quick(1);
    o.nblocks = 2;
    const QuantizeResult r = quantize_model_from_inputs(vl().text(), nano_plan(), fixture().mc.inputs, o);
    std::vector<std::string> groups;
    for (const auto& b : r.blocks) groups.push_back(b.group.empty() ? b.name : b.group);
    const std::string p = "model.language_model.layers.";
    // DeepStack features are added after layers 0 and 1: those end their groups
    EXPECT_EQ(groups, (std::vector<std::string>{p + "0", p + "1", p + "2-3", p + "2-3", p + "4-5", p + "4-5"}));
}

TEST(MultimodalCalibration, BadInputsAreRefused) {
    const Fixture& f = fixture();
    BlockInputs bad = f.mc.inputs;
    bad.loss_mask.pop_back();
    expect_error([&] { quantize_model_from_inputs(vl().text(), nano_plan(), std::move(bad), quick(1)); },
                 {"loss mask"});
    bad = f.mc.inputs;
    bad.deepstack[1].resize(7);
    expect_error([&] { quantize_model_from_inputs(vl().text(), nano_plan(), std::move(bad), quick(1)); },
                 {"DeepStack"});
    const BpeTokenizer tok = BpeTokenizer::load(kVl / "tokenizer.json");
    MultimodalCalibrationOptions mo;
    mo.seqlen = 40;  // shorter than the 64 image tokens
    expect_error([&] { build_multimodal_calibration(vl(), f.vcal, tok, load_tokenizer_config(kVl), mo); },
                 {"--seqlen 40", "--image_size"});
    mo.seqlen = static_cast<int>(f.mc.lengths[0]);  // the longer caption is cut, with a warning
    const MultimodalCalibration cut = build_multimodal_calibration(vl(), f.vcal, tok, load_tokenizer_config(kVl), mo);
    EXPECT_EQ(cut.inputs.L, f.mc.lengths[0]);
    ASSERT_EQ(cut.warnings.size(), 1u);
    EXPECT_NE(cut.warnings[0].find("cut to --seqlen"), std::string::npos);
}
