// image/exif_orientation.cpp — EXIF Orientation: a bounds-checked read of IFD0 tag 0x0112, and the
// eight PIL exif_transpose transforms on an RGB image.
//
// Why: see exif_orientation.h. The reader never trusts an offset or count from the file: every read
// is checked against the buffer, and anything odd yields orientation 1.
#include "image/exif_orientation.h"

#include <cstring>

#include "image/image.h"

namespace autoround {

namespace {

struct TiffReader {
    std::span<const uint8_t> d;
    bool little = true;

    bool u16(size_t off, uint32_t& v) const {
        if (off > d.size() || d.size() - off < 2) return false;
        v = little ? (d[off] | (d[off + 1] << 8)) : ((d[off] << 8) | d[off + 1]);
        return true;
    }
    bool u32(size_t off, uint32_t& v) const {
        if (off > d.size() || d.size() - off < 4) return false;
        if (little)
            v = uint32_t(d[off]) | uint32_t(d[off + 1]) << 8 | uint32_t(d[off + 2]) << 16 | uint32_t(d[off + 3]) << 24;
        else
            v = uint32_t(d[off]) << 24 | uint32_t(d[off + 1]) << 16 | uint32_t(d[off + 2]) << 8 | uint32_t(d[off + 3]);
        return true;
    }
};

}  // namespace

int exif_orientation_from_tiff(std::span<const uint8_t> tiff) {
    if (tiff.size() < 8) return 1;
    TiffReader r{tiff};
    if (tiff[0] == 'I' && tiff[1] == 'I') r.little = true;
    else if (tiff[0] == 'M' && tiff[1] == 'M') r.little = false;
    else return 1;
    uint32_t magic = 0, ifd0 = 0, count = 0;
    if (!r.u16(2, magic) || magic != 42 || !r.u32(4, ifd0) || !r.u16(ifd0, count)) return 1;
    for (uint32_t i = 0; i < count; ++i) {
        const size_t entry = size_t{ifd0} + 2 + size_t{i} * 12;  // tag u16, type u16, count u32, value[4]
        uint32_t tag = 0, type = 0, n = 0, value = 0;
        if (!r.u16(entry, tag) || !r.u16(entry + 2, type) || !r.u32(entry + 4, n)) return 1;
        if (tag != 0x0112) continue;
        if (n < 1) return 1;
        if (type == 3) {            // SHORT: the first two bytes of the value field
            if (!r.u16(entry + 8, value)) return 1;
        } else if (type == 4) {     // LONG (seen from some writers)
            if (!r.u32(entry + 8, value)) return 1;
        } else {
            return 1;
        }
        return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
    }
    return 1;
}

int exif_orientation_from_exif(std::span<const uint8_t> exif) {
    static constexpr uint8_t kPrefix[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (exif.size() >= 6 && std::memcmp(exif.data(), kPrefix, 6) == 0) exif = exif.subspan(6);
    return exif_orientation_from_tiff(exif);
}

RgbImage apply_exif_orientation(const RgbImage& image, int orientation) {
    if (orientation < 2 || orientation > 8) return image;
    const int W = image.width, H = image.height;
    const bool swap = orientation >= 5;  // 5..8 exchange width and height
    RgbImage out;
    out.width = swap ? H : W;
    out.height = swap ? W : H;
    out.pixels.resize(image.pixels.size());  // [out.height, out.width, 3]
    for (int r = 0; r < out.height; ++r) {
        for (int c = 0; c < out.width; ++c) {
            int sy = 0, sx = 0;  // source row / column of output (r, c)
            switch (orientation) {
                case 2: sy = r; sx = W - 1 - c; break;                 // FLIP_LEFT_RIGHT
                case 3: sy = H - 1 - r; sx = W - 1 - c; break;         // ROTATE_180
                case 4: sy = H - 1 - r; sx = c; break;                 // FLIP_TOP_BOTTOM
                case 5: sy = c; sx = r; break;                         // TRANSPOSE
                case 6: sy = H - 1 - c; sx = r; break;                 // ROTATE_270 (90 clockwise)
                case 7: sy = H - 1 - c; sx = W - 1 - r; break;         // TRANSVERSE
                default: sy = c; sx = W - 1 - r; break;                // 8: ROTATE_90 (counter-clockwise)
            }
            std::memcpy(out.pixels.data() + (static_cast<size_t>(r) * out.width + c) * 3, image.at(sy, sx), 3);
        }
    }
    return out;
}

}  // namespace autoround
