// image/image.cpp — the decode_image front: read the file, pick the decoder from the magic bytes,
// apply the EXIF orientation.
//
// Why: file names lie (".png" that is a JPEG, no extension at all), so only the first bytes decide.
// Formats that Pillow would open but this project does not decode (GIF, BMP, TIFF, WebP, ...) get
// an error that says which formats are supported, naming what the file looks like.
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "image/exif_orientation.h"
#include "image/image.h"
#include "image/image_codecs.h"

namespace autoround {

namespace image_detail {

void check_dimensions(int64_t width, int64_t height, int64_t max_pixels, const std::string& label, const char* format) {
    check(width > 0 && height > 0, label, ": ", format, " image has zero size (", width, "x", height, ")");
    check(width <= max_pixels / height, label, ": ", format, " image is ", width, "x", height, " = ", width * height,
          " pixels, more than the limit of ", max_pixels, " pixels (refusing to decode it)");
}

}  // namespace image_detail

namespace {

bool starts_with(std::span<const uint8_t> b, std::initializer_list<uint8_t> magic) {
    if (b.size() < magic.size()) return false;
    size_t i = 0;
    for (uint8_t m : magic)
        if (b[i++] != m) return false;
    return true;
}

// A name for formats we recognise but do not decode, for the error message.
const char* other_format_name(std::span<const uint8_t> b) {
    if (starts_with(b, {'G', 'I', 'F', '8'})) return "GIF";
    if (starts_with(b, {'B', 'M'})) return "BMP";
    if (starts_with(b, {'I', 'I', 42, 0}) || starts_with(b, {'M', 'M', 0, 42})) return "TIFF";
    if (starts_with(b, {'R', 'I', 'F', 'F'}) && b.size() >= 12 && std::memcmp(b.data() + 8, "WEBP", 4) == 0) return "WebP";
    if (b.size() >= 12 && std::memcmp(b.data() + 4, "ftyp", 4) == 0) return "HEIF/AVIF";
    if (starts_with(b, {0x00, 0x00, 0x00, 0x0C, 'j', 'P'}) || starts_with(b, {0xFF, 0x4F, 0xFF, 0x51})) return "JPEG 2000";
    if (starts_with(b, {0xFF, 0x0A})) return "JPEG XL";
    return nullptr;
}

std::string hex_prefix(std::span<const uint8_t> b) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < b.size() && i < 8; ++i) {
        if (i) s += ' ';
        s += digits[b[i] >> 4];
        s += digits[b[i] & 15];
    }
    return s;
}

}  // namespace

ImageFormat detect_image_format(std::span<const uint8_t> bytes) {
    if (starts_with(bytes, {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'})) return ImageFormat::Png;
    if (starts_with(bytes, {0xFF, 0xD8, 0xFF})) return ImageFormat::Jpeg;
    return ImageFormat::Unknown;
}

RgbImage decode_image_bytes(std::span<const uint8_t> bytes, const std::string& label, const DecodeOptions& options) {
    check(!bytes.empty(), label, ": empty file, expected a PNG or JPEG image");
    check(options.max_pixels > 0, label, ": the pixel limit must be positive");
    image_detail::Decoded d;
    switch (detect_image_format(bytes)) {
        case ImageFormat::Png: d = image_detail::decode_png(bytes, label, options.max_pixels); break;
        case ImageFormat::Jpeg: d = image_detail::decode_jpeg(bytes, label, options.max_pixels); break;
        case ImageFormat::Unknown: {
            if (const char* name = other_format_name(bytes))
                fail(label, ": ", name, " images are not supported (supported formats: PNG, JPEG); convert it to PNG");
            fail(label, ": unknown image format (the file starts with ", hex_prefix(bytes),
                 "); supported formats: PNG, JPEG");
        }
    }
    if (options.apply_exif_orientation && d.exif_orientation != 1)
        return apply_exif_orientation(d.image, d.exif_orientation);
    return std::move(d.image);
}

RgbImage decode_image(const std::filesystem::path& path, const DecodeOptions& options) {
    std::error_code ec;
    check(std::filesystem::exists(path, ec), "image file not found: ", path.string());
    check(!std::filesystem::is_directory(path, ec), path.string(), " is a folder, expected an image file");
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) {
        const int err = errno;
        fail("cannot open ", path.string(), ": ", std::strerror(err), " (check the file permissions)");
    }
    const std::streamoff size = in.tellg();
    check(size >= 0, "cannot read ", path.string(), " (I/O error)");
    // Compressed data larger than this cannot be an image within kMaxImagePixels of any sane format.
    check(size <= (std::streamoff{1} << 31), path.string(), ": file is ", size, " bytes, too large for an image");
    std::vector<uint8_t> bytes(static_cast<size_t>(size));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    check(in.good() || (in.eof() && in.gcount() == size), "cannot read ", path.string(), " (I/O error)");
    return decode_image_bytes(bytes, path.string(), options);
}

}  // namespace autoround
