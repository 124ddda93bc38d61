// quant/multimodal_calibration.cpp — see multimodal_calibration.h.
#include "quant/multimodal_calibration.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <span>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "model/mrope_positions.h"
#include "model/qwen3_vl_model.h"
#include "text/bpe_tokenizer.h"
#include "text/chat_template.h"

namespace autoround {

namespace {

// The chat of one calibration image: the user's image and prompt, then the caption as the answer.
std::string render_sample(const ChatTemplate& tmpl, const TokenizerConfig& tcfg, const std::string& prompt,
                          const std::string& caption) {
    ChatTemplateInputs in;
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    parts.push_back({{"type", "image"}});
    parts.push_back({{"type", "text"}, {"text", prompt}});
    in.messages.push_back({{"role", "user"}, {"content", parts}});
    if (!caption.empty()) in.messages.push_back({{"role", "assistant"}, {"content", caption}});
    in.add_generation_prompt = caption.empty();
    in.extra["bos_token"] = tcfg.bos_token;
    in.extra["eos_token"] = tcfg.eos_token;
    return tmpl.render(in);
}

// The id that fills the padded tail (never in the loss, never attended to by real tokens).
int32_t padding_id(const ModelConfig& c, const BpeTokenizer& tok, const TokenizerConfig& tcfg) {
    for (const std::string* t : {&tcfg.pad_token, &tcfg.eos_token})
        if (!t->empty())
            if (const auto id = tok.token_to_id(*t)) return *id;
    check(!c.eos_token_ids.empty(), "the model has no pad or eos token to pad calibration samples with");
    return c.eos_token_ids.front();
}

}  // namespace

MultimodalCalibration build_multimodal_calibration(const Qwen3VLModel& model, const VisionCalibrationSet& cal,
                                                   const BpeTokenizer& tok, const TokenizerConfig& tcfg,
                                                   const MultimodalCalibrationOptions& o) {
    const ModelConfig& c = model.text().config();
    const Qwen3VLVisionConfig& vc = model.vision().config();
    check(cal.n > 0, "image+text calibration: no calibration images");
    check(static_cast<int64_t>(cal.caption_texts.size()) == cal.n, "image+text calibration: ", cal.caption_texts.size(),
          " captions for ", cal.n, " images");
    check(tcfg.chat_template.has_value(), "image+text calibration needs the model's chat template (tokenizer_config.json "
          "chat_template or chat_template.jinja)");
    check(c.image_token_id >= 0, "image+text calibration: config.json has no image_token_id");
    check(c.mrope_section.size() == 3, "image+text calibration: config.json has no 3-entry mrope_section");
    const int m = vc.spatial_merge_size;
    const ImageGrid g = cal.grid;
    check(m > 0 && g.h % m == 0 && g.w % m == 0, "image+text calibration: the image grid ", g.h, "x", g.w,
          " is not a multiple of spatial_merge_size ", m);
    const int64_t nvis = static_cast<int64_t>(g.t) * g.h * g.w / (static_cast<int64_t>(m) * m);
    const int64_t H = c.hidden_size, patches = cal.rows_per_image, patch_dim = vc.patch_dim();
    check(static_cast<int64_t>(cal.pixel_values.size()) == cal.n * patches * patch_dim,
          "image+text calibration: pixel values do not match ", cal.n, " images of ", patches, " patches");

    // ---- token ids: one chat per image, image pads expanded, cut to seqlen -----------------------------------
    MultimodalCalibration mc;
    const ChatTemplate tmpl(*tcfg.chat_template);
    ProcessedImage slot;  // expand_image_pads only reads the token count
    slot.n_image_tokens = nvis;
    std::vector<int64_t> visual_rows;
    int cut = 0;
    for (int64_t i = 0; i < cal.n; ++i) {
        const std::string& caption = cal.caption_texts[static_cast<size_t>(i)];
        const std::vector<int32_t> raw = tok.encode(render_sample(tmpl, tcfg, o.prompt, caption));
        std::vector<int32_t> ids = model.expand_image_pads(raw, std::span<const ProcessedImage>(&slot, 1));
        std::vector<int64_t> rows;
        for (size_t t = 0; t < ids.size(); ++t)
            if (ids[t] == c.image_token_id) rows.push_back(static_cast<int64_t>(t));
        check(!rows.empty() && static_cast<int64_t>(rows.size()) == nvis && rows.back() - rows.front() + 1 == nvis,
              "image+text calibration: sample ", i, " (", cal.files[static_cast<size_t>(i)],
              ") does not hold one run of ", nvis, " image tokens; check the chat template");
        if (i == 0) visual_rows = rows;
        check(rows == visual_rows, "image+text calibration: sample ", i, " places its image at other rows than sample 0 "
              "(the chat template's prefix differs between samples)");
        check(rows.back() + 2 <= o.seqlen, "--seqlen ", o.seqlen, " is too short for image+text calibration: the image "
              "alone takes rows ", rows.front(), "..", rows.back(), " (", nvis, " tokens for ", g.h, "x", g.w,
              " patches); raise --seqlen or lower --image_size");
        if (static_cast<int64_t>(ids.size()) > o.seqlen) {
            ids.resize(static_cast<size_t>(o.seqlen));
            ++cut;
        }
        mc.lengths.push_back(static_cast<int64_t>(ids.size()));
        mc.ids.push_back(std::move(ids));
    }
    const int64_t n = cal.n, L = *std::max_element(mc.lengths.begin(), mc.lengths.end());
    const int32_t pad = padding_id(c, tok, tcfg);
    for (auto& ids : mc.ids) ids.resize(static_cast<size_t>(L), pad);
    if (cut)
        mc.warnings.push_back(std::to_string(cut) + " calibration sample(s) cut to --seqlen " + std::to_string(o.seqlen) +
                              " tokens (long captions)");

    // ---- block-0 inputs --------------------------------------------------------------------------------------
    BlockInputs& in = mc.inputs;
    in.n = n;
    in.L = L;
    in.hidden = embed_samples(model.text(), mc.ids);  // [n, L, H]
    in.loss_mask.assign(static_cast<size_t>(n * L), 0);
    for (int64_t i = 0; i < n; ++i)
        std::fill_n(in.loss_mask.begin() + i * L, mc.lengths[static_cast<size_t>(i)], uint8_t{1});
    const ImageGrid grids[1] = {g};
    in.mrope_positions = mrope_positions(mc.ids[0], grids, c.image_token_id, m).positions;
    in.mrope_section = c.mrope_section;
    in.visual_rows = visual_rows;
    for (int64_t i = 0; i < n; ++i) {  // the FP vision tower, one image at a time (bounded memory)
        const std::span<const float> px(cal.pixel_values.data() + i * patches * patch_dim,
                                        static_cast<size_t>(patches * patch_dim));
        const VisionOutput vo = model.vision().encode(px, grids);
        check(vo.n_tokens == nvis, "image+text calibration: the vision tower gave ", vo.n_tokens, " tokens, expected ",
              nvis);
        if (i == 0) in.deepstack.assign(vo.deepstack.size(), std::vector<float>(static_cast<size_t>(n * nvis * H)));
        for (int64_t v = 0; v < nvis; ++v)
            std::memcpy(in.hidden.data() + (i * L + visual_rows[static_cast<size_t>(v)]) * H,
                        vo.image_embeds.data() + v * H, static_cast<size_t>(H) * sizeof(float));
        for (size_t k = 0; k < vo.deepstack.size(); ++k)
            std::memcpy(in.deepstack[k].data() + i * nvis * H, vo.deepstack[k].data(),
                        static_cast<size_t>(nvis * H) * sizeof(float));
    }
    int64_t real = 0;
    for (int64_t len : mc.lengths) real += len;
    char buf[320];
    std::snprintf(buf, sizeof buf,
                  "%lld image+text chats (%d with captions), %lld tokens each after padding (%lld image tokens, "
                  "%.0f real tokens on average), prompt \"%s\"",
                  static_cast<long long>(n), cal.captions, static_cast<long long>(L), static_cast<long long>(nvis),
                  double(real) / double(n), o.prompt.c_str());
    mc.description = buf;
    return mc;
}

}  // namespace autoround
