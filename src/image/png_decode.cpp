// image/png_decode.cpp — PNG -> 8-bit RGB with libpng, converted the way Pillow's
// Image.open(...).convert("RGB") converts each PNG mode.
//
// Why these rules (Pillow's PngImagePlugin modes and Convert.c):
//   palette          -> the palette's RGB (tRNS ignored)
//   gray 1/2/4/8 bit -> gray replicated (low bit depths scaled by bit replication: x255, x85, x17)
//   gray 16 bit      -> Pillow's mode "I;16": convert("RGB") CLIPS, v > 255 -> 255 (not v >> 8)
//   gray+alpha, RGB, RGBA at 16 bit -> the high byte of each sample
//   any alpha (channel or tRNS) -> dropped, never composited; gAMA/sRGB/iCCP are ignored.
// Error handling: libpng reports errors through png_error -> our error callback -> longjmp back
// into the one function that called setjmp. That function owns no object with a destructor; the
// libpng structs are freed by a guard in the caller, so an error never leaks. libpng's message is
// copied into a fixed buffer and turned into autoround::Error naming the file.
#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <png.h>

#include "core/error.h"
#include "image/exif_orientation.h"
#include "image/image_codecs.h"

namespace autoround::image_detail {

namespace {

struct PngSource {
    const uint8_t* data = nullptr;
    size_t size = 0;
    size_t pos = 0;
};

struct PngErrorState {
    char message[256] = {0};
};

void png_error_fn(png_structp png, png_const_charp msg) {
    auto* st = static_cast<PngErrorState*>(png_get_error_ptr(png));
    if (st != nullptr) std::snprintf(st->message, sizeof st->message, "%s", msg != nullptr ? msg : "unknown error");
    png_longjmp(png, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}  // warnings (bad ancillary chunks) are ignored, as Pillow does

void png_read_fn(png_structp png, png_bytep out, png_size_t n) {
    auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
    if (src->size - src->pos < n) png_error(png, "truncated file (read past the end of the data)");
    std::memcpy(out, src->data + src->pos, n);
    src->pos += n;
}

// Frees the libpng structs whatever way decoding ends.
struct PngGuard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~PngGuard() {
        if (png != nullptr) png_destroy_read_struct(&png, info != nullptr ? &info : nullptr, nullptr);
    }
};

struct PngHeader {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0;
    int channels = 0;        // after the transforms: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA
    int out_bit_depth = 0;   // after the transforms: 8, or 16 for 16-bit gray
    size_t rowbytes = 0;
    int passes = 1;
};

// Phase 1: signature, IHDR and the chunks before IDAT. Returns false on a libpng error (message in
// the error state). Only trivially destructible locals live in the setjmp functions.
bool png_read_header(PngGuard& g, PngSource& src, PngHeader& h) {
    if (setjmp(png_jmpbuf(g.png))) return false;
    png_set_read_fn(g.png, &src, png_read_fn);
    png_read_info(g.png, g.info);
    png_get_IHDR(g.png, g.info, &h.width, &h.height, &h.bit_depth, &h.color_type, nullptr, nullptr, nullptr);
    return true;
}

// Phase 2 (after the caller checked the dimensions): the transforms, then the row layout they give.
bool png_setup_transforms(PngGuard& g, PngHeader& h) {
    if (setjmp(png_jmpbuf(g.png))) return false;
    png_set_expand(g.png);  // palette -> RGB, gray < 8 bit -> 8 bit (bit replication), tRNS -> alpha
    if (h.bit_depth == 16) {
        if (h.color_type == PNG_COLOR_TYPE_GRAY) png_set_swap(g.png);  // keep 16 bits, little-endian
        else png_set_strip_16(g.png);                                   // keep the high byte
    }
    h.passes = png_set_interlace_handling(g.png);
    png_read_update_info(g.png, g.info);
    h.channels = png_get_channels(g.png, g.info);
    h.out_bit_depth = png_get_bit_depth(g.png, g.info);
    h.rowbytes = png_get_rowbytes(g.png, g.info);
    return true;
}

// Phase 3: all rows (every interlace pass) into `rows` (height * rowbytes, allocated by the caller),
// then the chunks after IDAT up to IEND.
bool png_read_pixels(PngGuard& g, const PngHeader& h, uint8_t* rows) {
    if (setjmp(png_jmpbuf(g.png))) return false;
    for (int pass = 0; pass < h.passes; ++pass)
        for (png_uint_32 y = 0; y < h.height; ++y) png_read_row(g.png, rows + static_cast<size_t>(y) * h.rowbytes, nullptr);
    png_read_end(g.png, g.info);
    return true;
}

}  // namespace

Decoded decode_png(std::span<const uint8_t> bytes, const std::string& label, int64_t max_pixels) {
    PngErrorState err;
    PngSource src{bytes.data(), bytes.size(), 0};
    PngGuard g;
    g.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
    check(g.png != nullptr, label, ": cannot initialise the PNG decoder (out of memory)");
    g.info = png_create_info_struct(g.png);
    check(g.info != nullptr, label, ": cannot initialise the PNG decoder (out of memory)");
    // libpng's own limits as a second line of defence; ours (max_pixels) is checked below.
    // (the side limits are the PNG maximum so that our own, clearer message reports big images).
    png_set_user_limits(g.png, 0x7fffffffu, 0x7fffffffu);
    png_set_chunk_malloc_max(g.png, 64u << 20);

    PngHeader h;
    if (!png_read_header(g, src, h)) fail(label, ": invalid PNG: ", err.message);
    check_dimensions(h.width, h.height, max_pixels, label, "PNG");
    if (!png_setup_transforms(g, h)) fail(label, ": invalid PNG: ", err.message);
    const int bytes_per_sample = h.out_bit_depth == 16 ? 2 : 1;
    check(h.channels >= 1 && h.channels <= 4 && (h.out_bit_depth == 8 || h.out_bit_depth == 16) &&
              h.rowbytes == static_cast<size_t>(h.width) * h.channels * bytes_per_sample,
          label, ": unsupported PNG layout (color type ", h.color_type, ", bit depth ", h.bit_depth, ")");

    std::vector<uint8_t> rows(static_cast<size_t>(h.height) * h.rowbytes);  // [height, width, channels(, 2 bytes)]
    if (!png_read_pixels(g, h, rows.data())) fail(label, ": invalid or truncated PNG: ", err.message);

    Decoded d;
    d.image.width = static_cast<int>(h.width);
    d.image.height = static_cast<int>(h.height);
    d.image.pixels.resize(d.image.num_pixels() * 3);  // [height, width, 3]
    const size_t n = d.image.num_pixels();
    const size_t c = static_cast<size_t>(h.channels);
    uint8_t* out = d.image.pixels.data();
    if (bytes_per_sample == 2) {  // 16-bit gray (tRNS may add a 16-bit alpha): Pillow's I;16 -> RGB clips
        for (size_t i = 0; i < n; ++i) {
            const uint8_t* s = rows.data() + i * c * 2;  // little-endian after png_set_swap
            const uint8_t v = s[1] == 0 ? s[0] : 255;
            out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = v;
        }
    } else if (c <= 2) {  // gray, gray+alpha
        for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = rows[i * c];
    } else {  // RGB, RGBA: alpha dropped
        for (size_t i = 0; i < n; ++i) std::memcpy(out + 3 * i, rows.data() + i * c, 3);
    }

#ifdef PNG_eXIf_SUPPORTED
    png_bytep exif = nullptr;
    png_uint_32 exif_len = 0;
    if (png_get_eXIf_1(g.png, g.info, &exif_len, &exif) != 0 && exif != nullptr)
        d.exif_orientation = exif_orientation_from_exif({exif, exif_len});
#endif
    return d;
}

}  // namespace autoround::image_detail
