// image/image_codecs.h — the per-format decoders behind decode_image_bytes (internal to src/image).
//
// Each returns 8-bit RGB converted with Pillow's rules plus the EXIF orientation found in the file
// (1 when there is none); decode_image_bytes applies the orientation. Both refuse images of more
// than `max_pixels` pixels before allocating and throw autoround::Error naming `label`.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "image/image.h"

namespace autoround::image_detail {

struct Decoded {
    RgbImage image;
    int exif_orientation = 1;  // 1..8
};

Decoded decode_png(std::span<const uint8_t> bytes, const std::string& label, int64_t max_pixels);
Decoded decode_jpeg(std::span<const uint8_t> bytes, const std::string& label, int64_t max_pixels);

// The shared dimension check: nonzero, at most max_pixels. Throws Error naming `label` and `format`.
void check_dimensions(int64_t width, int64_t height, int64_t max_pixels, const std::string& label,
                      const char* format);

}  // namespace autoround::image_detail
