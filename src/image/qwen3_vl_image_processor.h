// image/qwen3_vl_image_processor.h — the Qwen3-VL image processor (transformers'
// Qwen2VLImageProcessor, torchvision backend): smart_resize, uint8 antialiased bicubic resize,
// fused rescale + normalize, patchify into pixel_values and image_grid_thw, and the number of
// <|image_pad|> tokens. See docs/qwen3-architecture.md §3.
//
// Why: the vision tower is only as right as its input; every step reproduces transformers 5.17
// bit for bit (float32 normalisation order included), so pixel_values can be compared exactly with
// the reference tensors.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "image/image.h"

namespace autoround {

// preprocessor_config.json. Missing keys take Qwen2VLImageProcessor's class defaults.
struct ImageProcessorConfig {
    int patch_size = 14;
    int temporal_patch_size = 2;
    int merge_size = 2;
    std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
    std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
    double rescale_factor = 1.0 / 255.0;
    int64_t min_pixels = 56 * 56;             // size.shortest_edge (or the older min_pixels key)
    int64_t max_pixels = 28 * 28 * 1280;      // size.longest_edge  (or the older max_pixels key)
    bool do_resize = true, do_rescale = true, do_normalize = true;

    int factor() const { return patch_size * merge_size; }  // smart_resize rounds to multiples of this
};

// Overrides as the processor's min_pixels / max_pixels keyword arguments give them.
struct PixelOverrides {
    std::optional<int64_t> min_pixels, max_pixels;
};

ImageProcessorConfig parse_image_processor_config(const nlohmann::json& j, const std::string& label,
                                                  const PixelOverrides& overrides = {});
// `path` is preprocessor_config.json or the model folder that holds it.
ImageProcessorConfig load_image_processor_config(const std::filesystem::path& path,
                                                 const PixelOverrides& overrides = {});

struct ResizeTarget {
    int64_t height = 0, width = 0;
};

// transformers' smart_resize: both sides multiples of `factor`, area within [min_pixels,
// max_pixels] (up to rounding), aspect ratio kept. Throws Error with transformers' message
// ("absolute aspect ratio must be smaller than 200, got ...") for ratios above 200, and for
// non-positive sizes.
ResizeTarget smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels, int64_t max_pixels);

struct ProcessedImage {
    std::vector<float> pixel_values;      // [n_patches, patch_dim] float32, patch_dim = 3 * T * ps * ps
    int64_t n_patches = 0, patch_dim = 0;
    std::array<int64_t, 3> grid_thw{};    // {t, h, w} in patches: {1, resized_h / ps, resized_w / ps}
    int64_t n_image_tokens = 0;           // t * h * w / merge^2: how many <|image_pad|> the prompt gets
    int resized_height = 0, resized_width = 0;
};

// Decoded RGB image -> model input. Output memory is bounded by smart_resize's result (itself
// bounded by max_pixels, or by min_pixels when upscaling a small image).
ProcessedImage preprocess_image(const RgbImage& image, const ImageProcessorConfig& config);

}  // namespace autoround
