// tests/model/test_qwen3_vl_model.cpp — Qwen3-VL end to end against transformers' float32 reference for
// qwen3-vl-nano (../shared/reference/qwen3-vl-nano.*): the chat template with an image part, the prompt
// expansion to 108 pads (input ids exact), the image processor + vision tower + language model (final
// logits within a float32 tolerance), and greedy decoding after the image prefill.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "model/qwen3_vl_model.h"
#include "model/reference_ids.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

using namespace autoround;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kVlDir = kShared + "/models/qwen3-vl-nano";

std::vector<int32_t> ref_ids(const TensorStore& st, const std::string& name) { return test::reference_ids(st, name); }
const TensorStore& ref() {
    static TensorStore st = TensorStore::open(kShared + "/reference/qwen3-vl-nano.safetensors");
    return st;
}
const Qwen3VLModel& vl() {
    static Qwen3VLModel m = Qwen3VLModel::load(kVlDir);
    return m;
}

std::vector<int32_t> reference_prompt_ids(const ProcessedImage& im) {
    const TokenizerConfig tc = load_tokenizer_config(kVlDir);
    ChatTemplateInputs in;
    in.messages.push_back({{"role", "user"},
                           {"content", nlohmann::ordered_json::array({{{"type", "image"}},
                                                                      {{"type", "text"}, {"text", "Describe this image."}}})}});
    in.add_generation_prompt = true;
    const std::string text = ChatTemplate(*tc.chat_template).render(in);
    EXPECT_EQ(text,
              "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.<|im_end|>\n"
              "<|im_start|>assistant\n");
    const BpeTokenizer tok = BpeTokenizer::load(kVlDir + "/tokenizer.json");
    const std::vector<int32_t> ids = tok.encode(text);
    return vl().expand_image_pads(ids, std::span<const ProcessedImage>(&im, 1));
}

ProcessedImage reference_image() {
    const RgbImage img = decode_image(kShared + "/reference/qwen3-vl-nano-input-384x288.png");
    return preprocess_image(img, load_model_image_processor_config(kVlDir));
}

}  // namespace

TEST(Qwen3VLModel, PromptIdsEqualTheProcessorOutput) {
    const ProcessedImage im = reference_image();
    EXPECT_EQ(im.n_image_tokens, 108);
    EXPECT_EQ(reference_prompt_ids(im), ref_ids(ref(), "input_ids"));
}

TEST(Qwen3VLModel, LogitsMatchReferenceFromThePng) {
    const ProcessedImage im = reference_image();
    const std::vector<int32_t> ids = reference_prompt_ids(im);
    const int64_t T = static_cast<int64_t>(ids.size()), V = 8192;
    KvCache cache = vl().text().make_cache();
    std::vector<float> logits(T * V);
    const VisionOutput vo = vl().prefill(ids, std::span<const ProcessedImage>(&im, 1), cache, logits.data(), true);
    EXPECT_EQ(vo.n_tokens, 108);
    const std::vector<float> want = ref().load_f32("logits");
    ASSERT_EQ(want.size(), logits.size());
    double worst = 0, scale = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, double(std::abs(logits[i] - want[i])));
        scale = std::max(scale, double(std::abs(want[i])));
    }
    std::printf("qwen3-vl-nano image+text logits: max |diff| %.3g (max |logit| %.3g)\n", worst, scale);
    EXPECT_LT(worst, 1e-4 * std::max(1.0, scale));
    EXPECT_EQ(cache.position_delta(), ref_ids(ref(), "rope.mrope_position_deltas")[0]);

    // greedy continuation with the KV cache (the reference recomputes everything at each step)
    const std::vector<int32_t> greedy = ref_ids(ref(), "greedy_ids");
    const std::vector<float> margin = ref().load_f32("greedy_margin");
    std::vector<float> last(logits.end() - V, logits.end());
    for (size_t s = 0; s < greedy.size(); ++s) {
        const int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
        if (next != greedy[s]) {
            EXPECT_LT(margin[s], 1e-3) << "step " << s << ": got " << next << ", want " << greedy[s];
            break;
        }
        const int32_t tok[1] = {next};
        vl().text().forward(tok, cache, last.data(), false);
    }
}

TEST(Qwen3VLModel, PlaceholderCountMustMatchImages) {
    const ProcessedImage im = reference_image();
    const std::vector<int32_t> two_pads{1, 8178, 2, 8178, 3};
    EXPECT_THROW(vl().expand_image_pads(two_pads, std::span<const ProcessedImage>(&im, 1)), Error);
    const std::vector<int32_t> none{1, 2, 3};
    EXPECT_THROW(vl().expand_image_pads(none, std::span<const ProcessedImage>(&im, 1)), Error);
    EXPECT_EQ(vl().expand_image_pads(none, {}), none);
}

TEST(Qwen3VLModel, TextOnlyModelIsRefused) {
    EXPECT_THROW(Qwen3VLModel::load(kShared + "/models/qwen3-nano"), Error);
}
