// image/jpeg_decode.cpp — JPEG -> 8-bit RGB with libjpeg-turbo, with Pillow's decoder settings.
//
// Why: Pillow (and torchvision.io) decode with libjpeg's defaults — islow integer DCT, fancy
// (triangle) chroma upsampling, no block smoothing tricks beyond the library default — so leaving
// those defaults untouched gives the same pixels as Image.open(...).convert("RGB") on the same
// libjpeg-turbo. Colour handling follows Pillow:
//   1 component  -> mode "L", convert("RGB") replicates the gray value;
//   3 components -> libjpeg's YCbCr (or RGB) -> RGB conversion;
//   4 components -> mode "CMYK" read with rawmode "CMYK;I" (Adobe's inverted convention is assumed),
//                   then Pillow's cmyk2rgb: nk = 255 - K, out = nk - round(C * nk / 255).
// Truncation: with an in-memory source libjpeg pads a truncated stream with a fake EOI and only
// warns (JWRN_JPEG_EOF); Pillow raises "image file is truncated", so that warning is fatal here
// while the header and the scanlines are read. A missing EOI after the last scanline is tolerated.
// Other warnings (extraneous bytes, ...) are ignored, as Pillow ignores them. Progressive files are
// limited to kMaxScans scans so a crafted file cannot keep the decoder busy for minutes.
// Error handling: libjpeg's error_exit / our warning and progress hooks longjmp back into the one
// function that called setjmp; those functions own nothing with a destructor, and the decompressor
// is destroyed by a guard in the caller, so no error leaks memory.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <vector>

#include <jpeglib.h>
#include <jerror.h>

#include "core/error.h"
#include "image/exif_orientation.h"
#include "image/image_codecs.h"

namespace autoround::image_detail {

namespace {

constexpr int kMaxScans = 500;

struct JpegErrorManager {
    jpeg_error_mgr pub;            // must be first: libjpeg sees a jpeg_error_mgr*
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX + 64] = {0};
    bool eof_is_fatal = true;      // JWRN_JPEG_EOF (truncated data) is an error while this is set
};

[[noreturn]] void jpeg_jump(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    std::longjmp(err->jump, 1);
}

void jpeg_error_exit_fn(j_common_ptr cinfo) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, err->message);
    jpeg_jump(cinfo);
}

void jpeg_emit_message_fn(j_common_ptr cinfo, int msg_level) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    if (msg_level >= 0) return;  // trace messages
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && err->eof_is_fatal) {
        std::snprintf(err->message, sizeof err->message, "%s", "truncated file (the data ends before the image does)");
        jpeg_jump(cinfo);
    }
}

void jpeg_output_message_fn(j_common_ptr) {}  // never print to stderr

void jpeg_progress_fn(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
    if (d->input_scan_number > kMaxScans) {
        auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
        std::snprintf(err->message, sizeof err->message, "more than %d progressive scans (refusing a pathological file)",
                      kMaxScans);
        jpeg_jump(cinfo);
    }
}

struct JpegGuard {
    jpeg_decompress_struct cinfo;
    JpegErrorManager err;
    jpeg_progress_mgr progress;
    bool created = false;
    JpegGuard() {
        std::memset(&cinfo, 0, sizeof cinfo);
        std::memset(&progress, 0, sizeof progress);
    }
    ~JpegGuard() {
        if (created) jpeg_destroy_decompress(&cinfo);
    }
};

// Phase 1: create the decompressor, keep APP1 markers (EXIF), read the header.
bool jpeg_read_header_phase(JpegGuard& g, std::span<const uint8_t> bytes) {
    if (setjmp(g.err.jump)) return false;
    g.created = true;  // set first: jpeg_destroy_decompress is safe on a half-created (zeroed) struct
    jpeg_create_decompress(&g.cinfo);
    g.progress.progress_monitor = jpeg_progress_fn;
    g.cinfo.progress = &g.progress;
    jpeg_mem_src(&g.cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
    jpeg_save_markers(&g.cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&g.cinfo, TRUE);
    return true;
}

// Phase 2: decode every scanline into `out` (height rows of `row_stride` bytes, allocated by the
// caller), then finish (a missing EOI is tolerated there).
bool jpeg_read_pixels_phase(JpegGuard& g, J_COLOR_SPACE out_space, uint8_t* out, size_t row_stride) {
    if (setjmp(g.err.jump)) return false;
    g.cinfo.out_color_space = out_space;
    jpeg_start_decompress(&g.cinfo);
    while (g.cinfo.output_scanline < g.cinfo.output_height) {
        JSAMPROW row = out + static_cast<size_t>(g.cinfo.output_scanline) * row_stride;
        jpeg_read_scanlines(&g.cinfo, &row, 1);
    }
    g.err.eof_is_fatal = false;
    jpeg_finish_decompress(&g.cinfo);
    return true;
}

uint8_t muldiv255(int a, int b) {  // Pillow's MULDIV255: round(a * b / 255) for 0..255 inputs
    const int tmp = a * b + 128;
    return static_cast<uint8_t>(((tmp >> 8) + tmp) >> 8);
}

}  // namespace

Decoded decode_jpeg(std::span<const uint8_t> bytes, const std::string& label, int64_t max_pixels) {
    JpegGuard g;
    g.cinfo.err = jpeg_std_error(&g.err.pub);
    g.err.pub.error_exit = jpeg_error_exit_fn;
    g.err.pub.emit_message = jpeg_emit_message_fn;
    g.err.pub.output_message = jpeg_output_message_fn;

    if (!jpeg_read_header_phase(g, bytes)) fail(label, ": invalid JPEG: ", g.err.message);
    check_dimensions(g.cinfo.image_width, g.cinfo.image_height, max_pixels, label, "JPEG");

    const int components = g.cinfo.num_components;
    J_COLOR_SPACE out_space = JCS_RGB;
    if (components == 1) out_space = JCS_GRAYSCALE;
    else if (components == 3) out_space = JCS_RGB;
    else if (components == 4) out_space = JCS_CMYK;  // also converts YCCK to CMYK
    else fail(label, ": unsupported JPEG with ", components, " colour components (expected 1, 3 or 4)");

    Decoded d;
    // EXIF: Pillow keeps the first APP1 segment that starts with "Exif\0\0".
    for (jpeg_saved_marker_ptr m = g.cinfo.marker_list; m != nullptr; m = m->next) {
        if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
        d.exif_orientation = exif_orientation_from_exif({m->data, m->data_length});
        break;
    }

    const size_t width = g.cinfo.image_width, height = g.cinfo.image_height;
    const size_t stride = width * static_cast<size_t>(components);
    std::vector<uint8_t> raw(height * stride);  // [height, width, components] as libjpeg outputs them
    if (!jpeg_read_pixels_phase(g, out_space, raw.data(), stride)) fail(label, ": invalid or truncated JPEG: ", g.err.message);
    check(g.cinfo.output_width == width && g.cinfo.output_height == height &&
              g.cinfo.output_components == components,
          label, ": JPEG decoder returned an unexpected layout");

    d.image.width = static_cast<int>(width);
    d.image.height = static_cast<int>(height);
    if (components == 3) {
        d.image.pixels = std::move(raw);
        return d;
    }
    d.image.pixels.resize(width * height * 3);  // [height, width, 3]
    uint8_t* out = d.image.pixels.data();
    const size_t n = width * height;
    if (components == 1) {
        for (size_t i = 0; i < n; ++i) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = raw[i];
    } else {
        for (size_t i = 0; i < n; ++i) {
            const uint8_t* s = raw.data() + 4 * i;
            const int nk = s[3];  // K after the "CMYK;I" inversion is 255 - s[3], so nk = s[3]
            for (int c = 0; c < 3; ++c) {
                const int v = nk - muldiv255(255 - s[c], nk);
                out[3 * i + c] = static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    return d;
}

}  // namespace autoround::image_detail
