// model/qwen3_vl_model.cpp — see qwen3_vl_model.h.
#include "model/qwen3_vl_model.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "model/mrope_positions.h"

namespace autoround {

Qwen3VLModel Qwen3VLModel::from_text_model(Qwen3Model text, const std::filesystem::path& dir) {
    check(text.config().vision_language, dir.string(), " is a ", text.config().architecture,
          " model, not Qwen3-VL: it takes no images");
    const std::filesystem::path cfg_path = dir / "config.json";
    const nlohmann::json j = read_json_file(cfg_path);
    check(j.contains("vision_config") && j.at("vision_config").is_object(), cfg_path.string(),
          ": no vision_config object; a Qwen3-VL config needs one");
    Qwen3VLModel m;
    const Qwen3VLVisionConfig vc = parse_qwen3_vl_vision_config(j.at("vision_config"), cfg_path.string());
    check(vc.out_hidden_size == text.config().hidden_size, cfg_path.string(), ": vision_config.out_hidden_size ",
          vc.out_hidden_size, " differs from the language model's hidden_size ", text.config().hidden_size);
    check(static_cast<int>(vc.deepstack_visual_indexes.size()) <= text.config().num_hidden_layers, cfg_path.string(),
          ": more DeepStack taps than language-model layers");
    m.vision_ = Qwen3VLVision::load(text.tensors(), vc, "model.visual.",
                                    text.quantization() ? &*text.quantization() : nullptr);
    m.text_ = std::move(text);
    return m;
}

Qwen3VLModel Qwen3VLModel::load(const std::filesystem::path& dir) {
    return from_text_model(Qwen3Model::load(dir), dir);
}

std::vector<int32_t> Qwen3VLModel::expand_image_pads(std::span<const int32_t> ids,
                                                     std::span<const ProcessedImage> images) const {
    const int pad = text_.config().image_token_id;
    std::vector<int32_t> out;
    size_t k = 0;
    for (int32_t id : ids) {
        if (id != pad) {
            out.push_back(id);
            continue;
        }
        check(k < images.size(), "the prompt has more image placeholders (<|image_pad|>) than the ", images.size(),
              " image(s) given; pass one --image per placeholder");
        out.insert(out.end(), static_cast<size_t>(images[k].n_image_tokens), pad);
        ++k;
    }
    check(k == images.size(), "the prompt has ", k, " image placeholder(s) (<|image_pad|>) but ", images.size(),
          " image(s) were given; the chat template puts one placeholder per image content part");
    return out;
}

VisionOutput Qwen3VLModel::prefill(std::span<const int32_t> ids, std::span<const ProcessedImage> images,
                                   KvCache& cache, float* logits, bool all_logits, const HiddenHook& hook,
                                   const VisionHook& vision_hook) const {
    VisionOutput vo;
    if (images.empty()) {
        text_.forward(ids, cache, logits, all_logits, hook);
        return vo;
    }
    const int64_t patch_dim = vision_.config().patch_dim();
    std::vector<float> pixels;  // [Σ patches, patch_dim], images in prompt order
    std::vector<ImageGrid> grids;
    for (size_t i = 0; i < images.size(); ++i) {
        const ProcessedImage& im = images[i];
        check(im.patch_dim == patch_dim, "image ", i + 1, ": patch rows of ", im.patch_dim,
              " values, but the vision tower takes ", patch_dim, " (preprocessor_config.json and config.json disagree)");
        pixels.insert(pixels.end(), im.pixel_values.begin(), im.pixel_values.end());
        grids.push_back(ImageGrid{static_cast<int>(im.grid_thw[0]), static_cast<int>(im.grid_thw[1]),
                                  static_cast<int>(im.grid_thw[2])});
    }
    const ModelConfig& c = text_.config();
    const MropePositions pos = mrope_positions(ids, grids, c.image_token_id, vision_.config().spatial_merge_size);
    vo = vision_.encode(pixels, grids, vision_hook);
    MultimodalInput mm;
    mm.image_embeds = vo.image_embeds.data();
    mm.n_visual = vo.n_tokens;
    for (const auto& d : vo.deepstack) mm.deepstack.push_back(d.data());
    mm.positions = pos.positions.data();
    text_.forward(ids, cache, logits, all_logits, hook, &mm);
    return vo;
}

ImageProcessorConfig load_model_image_processor_config(const std::filesystem::path& dir,
                                                       const PixelOverrides& overrides) {
    std::error_code ec;
    if (std::filesystem::exists(dir / "preprocessor_config.json", ec))
        return load_image_processor_config(dir / "preprocessor_config.json", overrides);
    const std::filesystem::path pc = dir / "processor_config.json";
    if (std::filesystem::exists(pc, ec)) {
        const nlohmann::json j = read_json_file(pc);
        if (j.contains("image_processor") && j.at("image_processor").is_object())
            return parse_image_processor_config(j.at("image_processor"), pc.string() + " (image_processor)", overrides);
    }
    fail("no image processor settings in ", dir.string(),
         ": expected preprocessor_config.json (or processor_config.json with an image_processor object)");
}

}  // namespace autoround
