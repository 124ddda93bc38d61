// image/image.h — decoded images: PNG and JPEG bytes -> 8-bit RGB, the way Pillow sees them.
//
// Why: the Qwen3-VL processor starts from `Image.open(path).convert("RGB")`, so the pixels that reach
// the resize must be the ones Pillow gives: alpha is dropped (not composited), palette / grayscale /
// 16-bit PNGs and grayscale / CMYK JPEGs are converted with Pillow's rules, and JPEGs are decoded by
// libjpeg-turbo with Pillow's settings (islow DCT, fancy upsampling). The format is taken from the
// magic bytes, never the file name. EXIF orientation (1..8) is applied like PIL's
// ImageOps.exif_transpose unless the caller turns it off.
//
// Every failure (missing file, empty or truncated data, corrupt stream, unsupported format, zero or
// absurd dimensions) throws autoround::Error naming the file; dimensions are checked against
// DecodeOptions::max_pixels before any pixel buffer is allocated.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace autoround {

struct RgbImage {
    int width = 0, height = 0;
    std::vector<uint8_t> pixels;  // [height, width, 3] uint8, row-major, RGB interleaved

    size_t num_pixels() const { return static_cast<size_t>(width) * static_cast<size_t>(height); }
    const uint8_t* at(int y, int x) const { return pixels.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

// Images larger than this (width * height) are refused before decoding: 2^28 pixels is 768 MiB of RGB.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

struct DecodeOptions {
    int64_t max_pixels = kMaxImagePixels;  // refuse width*height above this (checked before allocating)
    bool apply_exif_orientation = true;    // PIL ImageOps.exif_transpose on the EXIF Orientation tag
};

enum class ImageFormat { Unknown, Png, Jpeg };

ImageFormat detect_image_format(std::span<const uint8_t> bytes);  // from the magic bytes only

// Reads the file and decodes it; the path names the file in errors.
RgbImage decode_image(const std::filesystem::path& path, const DecodeOptions& options = {});
// Decodes an in-memory PNG or JPEG; `label` names the source in errors.
RgbImage decode_image_bytes(std::span<const uint8_t> bytes, const std::string& label,
                            const DecodeOptions& options = {});

// PIL ImageOps.exif_transpose for one EXIF Orientation value: 1 (or anything outside 2..8) returns
// the image unchanged; 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
// 7 transverse, 8 rotate 90 counter-clockwise.
RgbImage apply_exif_orientation(const RgbImage& image, int orientation);

}  // namespace autoround
