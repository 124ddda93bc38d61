// quant/vision_calibration.h — the image calibration set for tuning a Qwen3-VL vision tower
// (--quant_nontext_module): a local folder of images (PNG/JPEG; optional captions in <stem>.txt, which
// quant/multimodal_calibration.h turns into the language blocks' image+text samples), each
// resized to one common square size and preprocessed exactly as the model's image processor does, so
// that every sample has the same patch grid and the tuner can batch them as [n, L, H].
//
// Why one grid: the SignRound loop samples mini-batches of equal-shaped samples (quant/signround_tuner.h);
// the vision block's rotary table and attention segments depend on the grid. The square resize changes
// the aspect ratio of non-square images, which is harmless for calibration (the tuner matches the block
// outputs of the same inputs); the resize itself is the processor's antialiased bicubic one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "image/qwen3_vl_image_processor.h"
#include "model/qwen3_vl_vision.h"

namespace autoround {

struct VisionCalibrationOptions {
    std::filesystem::path dir;  // folder of *.png / *.jpg / *.jpeg (sorted by file name)
    int nsamples = 128;         // at most this many images are used
    int image_size = 448;       // side of the square every image is resized to (a multiple of the processor's
                                // patch_size · merge_size; raised to the processor's min_pixels if below)
};

struct VisionCalibrationSet {
    std::vector<float> pixel_values;     // [n · L, patch_dim], image after image
    ImageGrid grid{};                    // the common grid (t, h, w) in patches; L = t·h·w
    int64_t n = 0;                       // images
    int64_t rows_per_image = 0;          // L
    std::vector<std::string> files;      // image file names, in order
    int captions = 0;                    // images that have a non-empty <stem>.txt caption next to them
    std::vector<std::string> caption_texts;  // one per image: its caption (surrounding whitespace trimmed), or ""
    std::string description;             // one line for logs and the quantize report
    std::vector<std::string> warnings;
};

// Lists and decodes the images (EXIF orientation applied), resizes each to image_size², and preprocesses it
// with `proc`. Errors: a missing or empty folder, no image files, an undecodable image (its error names
// the file), image_size not a positive multiple of proc.factor().
VisionCalibrationSet build_vision_calibration(const VisionCalibrationOptions& options, const ImageProcessorConfig& proc);

}  // namespace autoround
