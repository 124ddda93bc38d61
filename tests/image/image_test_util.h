// tests/image/image_test_util.h — small in-memory PNG / JPEG / EXIF builders for the image tests.
//
// Why: decoding paths (palette, 16-bit gray, interlace, EXIF orientation, CMYK...) need inputs that
// the shared data does not have. libpng and libjpeg-turbo (linked through autoround_lib) write them
// here, so every case is generated, not stored.
#pragma once

#include <csetjmp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

namespace autoround::testimg {

using Bytes = std::vector<uint8_t>;

inline Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

struct PngSpec {
    int width = 0, height = 0;
    int color_type = PNG_COLOR_TYPE_RGB;
    int bit_depth = 8;
    bool interlace = false;
    std::vector<Bytes> rows;                 // raw PNG rows (packed as PNG stores them, 16-bit big-endian)
    std::vector<png_color> palette;          // PNG_COLOR_TYPE_PALETTE
    Bytes trns;                              // palette alpha (optional)
    Bytes exif;                              // eXIf payload (optional)
};

inline void png_write_to_vector(png_structp png, png_bytep data, png_size_t n) {
    auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
    out->insert(out->end(), data, data + n);
}
inline void png_flush_noop(png_structp) {}

inline bool encode_png_impl(const PngSpec& s, Bytes* out, png_structp png, png_infop info) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_write_fn(png, out, png_write_to_vector, png_flush_noop);
    png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
                 s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
    if (!s.trns.empty()) png_set_tRNS(png, info, s.trns.data(), static_cast<int>(s.trns.size()), nullptr);
    if (!s.exif.empty()) png_set_eXIf_1(png, info, static_cast<png_uint_32>(s.exif.size()), const_cast<png_bytep>(s.exif.data()));
    std::vector<png_bytep> ptrs;
    for (const auto& r : s.rows) ptrs.push_back(const_cast<png_bytep>(r.data()));
    png_set_rows(png, info, ptrs.data());
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
    return true;
}

inline Bytes encode_png(const PngSpec& s) {
    Bytes out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    const bool ok = encode_png_impl(s, &out, png, info);
    png_destroy_write_struct(&png, &info);
    if (!ok) throw std::runtime_error("test PNG encoder failed");
    return out;
}

// RGB (components 3) or gray (1) or CMYK (4, written with an Adobe marker) baseline JPEG.
inline Bytes encode_jpeg(int width, int height, int components, const Bytes& pixels, int quality = 95) {
    jpeg_compress_struct cinfo;
    jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buf, &size);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(pixels.data() + static_cast<size_t>(cinfo.next_scanline) * width * components);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    Bytes out(buf, buf + size);
    jpeg_destroy_compress(&cinfo);
    std::free(buf);
    return out;
}

// A TIFF holding one IFD0 entry: Orientation (0x0112, SHORT, count 1).
inline Bytes tiff_with_orientation(int orientation, bool big_endian) {
    auto u16 = [&](Bytes& b, uint16_t v) {
        if (big_endian) { b.push_back(v >> 8); b.push_back(v & 255); }
        else { b.push_back(v & 255); b.push_back(v >> 8); }
    };
    auto u32 = [&](Bytes& b, uint32_t v) {
        if (big_endian) for (int s = 24; s >= 0; s -= 8) b.push_back((v >> s) & 255);
        else for (int s = 0; s <= 24; s += 8) b.push_back((v >> s) & 255);
    };
    Bytes t;
    t.push_back(big_endian ? 'M' : 'I');
    t.push_back(big_endian ? 'M' : 'I');
    u16(t, 42);
    u32(t, 8);          // IFD0 offset
    u16(t, 2);          // two entries: an unrelated tag, then Orientation
    u16(t, 0x010F); u16(t, 2); u32(t, 4); t.insert(t.end(), {'A', 'C', 'M', 0});  // Make = "ACM"
    u16(t, 0x0112); u16(t, 3); u32(t, 1); u16(t, static_cast<uint16_t>(orientation)); u16(t, 0);
    u32(t, 0);          // no next IFD
    return t;
}

// Inserts an APP1 "Exif\0\0" + tiff segment right after a JPEG's SOI marker.
inline Bytes jpeg_with_exif(const Bytes& jpeg, const Bytes& tiff) {
    Bytes seg = {0xFF, 0xE1};
    const size_t len = 2 + 6 + tiff.size();
    seg.push_back(static_cast<uint8_t>(len >> 8));
    seg.push_back(static_cast<uint8_t>(len & 255));
    seg.insert(seg.end(), {'E', 'x', 'i', 'f', 0, 0});
    seg.insert(seg.end(), tiff.begin(), tiff.end());
    Bytes out(jpeg.size() + seg.size());  // SOI, the new segment, the rest of the file
    std::memcpy(out.data(), jpeg.data(), 2);
    std::memcpy(out.data() + 2, seg.data(), seg.size());
    std::memcpy(out.data() + 2 + seg.size(), jpeg.data() + 2, jpeg.size() - 2);
    return out;
}

// A PNG signature, an IHDR chunk with a correct CRC, an empty IDAT and IEND (for dimension tests).
inline Bytes png_header_only(uint32_t width, uint32_t height) {
    Bytes b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    auto chunk = [&](const char* type, const Bytes& data) {
        const uint32_t n = static_cast<uint32_t>(data.size());
        for (int s = 24; s >= 0; s -= 8) b.push_back((n >> s) & 255);
        Bytes td(type, type + 4);
        td.insert(td.end(), data.begin(), data.end());
        b.insert(b.end(), td.begin(), td.end());
        const uint32_t crc = static_cast<uint32_t>(crc32(0, td.data(), static_cast<uInt>(td.size())));
        for (int s = 24; s >= 0; s -= 8) b.push_back((crc >> s) & 255);
    };
    Bytes ihdr;
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back((width >> s) & 255);
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back((height >> s) & 255);
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, deflate, filter 0, no interlace
    chunk("IHDR", ihdr);
    chunk("IDAT", {});  // empty: libpng stops reading the header here
    chunk("IEND", {});
    return b;
}

}  // namespace autoround::testimg
