// fuzz/fuzz_image.cpp — libFuzzer target: decode_image_bytes on arbitrary bytes, then the Qwen3-VL
// preprocessing of whatever decodes.
//
// Why: images come from users and the web. Any input must either decode into an RGB image whose
// buffer matches its size, or throw autoround::Error; crashes, sanitizer reports (libpng / libjpeg
// longjmp paths included), leaks, hangs and other exception types are bugs. The pixel limit is
// lowered to 2^22 so a header claiming a huge (but legal) image cannot exhaust the fuzzer's RSS
// limit. Small decoded images also go through preprocess_image (smart_resize, the antialiased
// bicubic resize, normalize, patchify) with a low max_pixels, and every output value is read.
// Build: cmake -DAUTOROUND_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang ...
// Run:   ./fuzz_image -max_len=262144 [corpus]   (seed with shared/data/images/*.png, *.jpg)
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    autoround::RgbImage im;
    try {
        im = autoround::decode_image_bytes({data, size}, "fuzz.img", autoround::DecodeOptions{int64_t{1} << 22, true});
    } catch (const autoround::Error&) {
        return 0;
    }
    if (im.width <= 0 || im.height <= 0 || im.pixels.size() != im.num_pixels() * 3) std::abort();
    volatile uint8_t sink = 0;
    for (uint8_t b : im.pixels) sink = sink ^ b;
    if (im.num_pixels() > (size_t{1} << 16)) return 0;

    autoround::ImageProcessorConfig cfg;  // Qwen3-VL values, small pixel bounds to keep runs fast
    cfg.patch_size = 16;
    cfg.merge_size = 2;
    cfg.temporal_patch_size = 2;
    cfg.image_mean = {0.5f, 0.5f, 0.5f};
    cfg.image_std = {0.5f, 0.5f, 0.5f};
    cfg.min_pixels = 32 * 32;
    cfg.max_pixels = 256 * 256;
    try {
        const autoround::ProcessedImage p = autoround::preprocess_image(im, cfg);
        if (p.pixel_values.size() != static_cast<size_t>(p.n_patches * p.patch_dim)) std::abort();
        float acc = 0.0f;
        for (float v : p.pixel_values) acc += v;
        volatile float fsink = acc;
        (void)fsink;
    } catch (const autoround::Error&) {
        // extreme aspect ratios are refused by smart_resize
    }
    return 0;
}
