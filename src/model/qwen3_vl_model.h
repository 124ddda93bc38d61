// model/qwen3_vl_model.h — Qwen3VLForConditionalGeneration on CPU: the vision tower
// (model/qwen3_vl_vision.h) in front of the Qwen3 language model (model/qwen3_model.h), joined as
// qwen3-architecture.md §2.4 describes.
//
// A prompt with images goes:
//   text --chat template--> ids with one <|image_pad|> per image --expand_image_pads--> ids with
//   n_image_tokens pads per image (the processor's prompt expansion, §3.6)
//   images --image/qwen3_vl_image_processor.h--> pixel_values [Σ patches, patch_dim], grids
//   prefill: vision.encode -> image rows + DeepStack features; mrope_positions -> [3, T] positions;
//            text.forward(ids, mm) -> logits, KV cache (whose position delta then drives the decode steps)
// Decode steps are ordinary text().forward calls.
#pragma once

#include <filesystem>
#include <span>
#include <vector>

#include "image/qwen3_vl_image_processor.h"
#include "model/qwen3_model.h"
#include "model/qwen3_vl_vision.h"

namespace autoround {

class Qwen3VLModel {
public:
    // Loads a Qwen3-VL folder (config.json with text_config + vision_config; weights of both towers).
    static Qwen3VLModel load(const std::filesystem::path& dir);
    // The vision tower of an already loaded Qwen3-VL language model (shares its TensorStore).
    static Qwen3VLModel from_text_model(Qwen3Model text, const std::filesystem::path& dir);

    const Qwen3Model& text() const { return text_; }
    const Qwen3VLVision& vision() const { return vision_; }

    // Replaces the k-th <|image_pad|> of `ids` by images[k].n_image_tokens pads. Throws when the prompt has
    // a different number of image placeholders than images.
    std::vector<int32_t> expand_image_pads(std::span<const int32_t> ids, std::span<const ProcessedImage> images) const;

    // Runs an expanded prompt with its images (none: a plain text forward) into `cache`; logits as
    // Qwen3Model::forward. Returns the vision encoder's output (image rows, DeepStack features).
    VisionOutput prefill(std::span<const int32_t> ids, std::span<const ProcessedImage> images, KvCache& cache,
                         float* logits, bool all_logits, const HiddenHook& hook = {},
                         const VisionHook& vision_hook = {}) const;

private:
    Qwen3Model text_;
    Qwen3VLVision vision_;
};

// The image processor settings of a model folder: preprocessor_config.json, else the "image_processor"
// object of processor_config.json; min/max pixels may be overridden (flags).
ImageProcessorConfig load_model_image_processor_config(const std::filesystem::path& dir,
                                                       const PixelOverrides& overrides = {});

}  // namespace autoround
