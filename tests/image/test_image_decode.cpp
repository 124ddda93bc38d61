// tests/image/test_image_decode.cpp — PNG / JPEG decoding to RGB the way Pillow's convert("RGB")
// does, EXIF orientation like PIL's exif_transpose, and the errors for bad input.
//
// The shared images give real files (the 384x288 reference input, the RGBA merlion, a JPEG);
// everything else (palette, 16-bit gray, gray+alpha, interlace, CMYK, EXIF) is generated in memory
// with libpng / libjpeg by image_test_util.h.
#include <gtest/gtest.h>

#include <numeric>

#include "image/exif_orientation.h"
#include "image/image.h"
#include "image/image_test_util.h"
#include "io/io_test_util.h"

using namespace autoround;
using namespace autoround::testimg;
using autoround::testio::expect_error;
using autoround::testio::TempDir;
using autoround::testio::write_file;

namespace {

const std::string kShared = AR_SHARED_DIR;

std::vector<uint8_t> pixel(const RgbImage& im, int y, int x) { return {im.at(y, x), im.at(y, x) + 3}; }

// A w x h RGB image whose pixel (y, x) is (y*16+x, 100+y, 200-x): every pixel distinct.
RgbImage numbered_image(int w, int h) {
    RgbImage im;
    im.width = w;
    im.height = h;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            im.pixels.insert(im.pixels.end(), {uint8_t(y * 16 + x), uint8_t(100 + y), uint8_t(200 - x)});
    return im;
}

}  // namespace

TEST(ImageDecode, ReferencePngIs384x288Rgb) {
    const RgbImage im = decode_image(kShared + "/reference/qwen3-vl-nano-input-384x288.png");
    EXPECT_EQ(im.width, 384);
    EXPECT_EQ(im.height, 288);
    ASSERT_EQ(im.pixels.size(), size_t{384} * 288 * 3);
}

TEST(ImageDecode, MerlionRgbaDropsAlpha) {
    const RgbImage im = decode_image(kShared + "/data/images/merlion.png");
    EXPECT_EQ(im.width, 1192);
    EXPECT_EQ(im.height, 874);
    ASSERT_EQ(im.pixels.size(), size_t{1192} * 874 * 3);
    const double mean = std::accumulate(im.pixels.begin(), im.pixels.end(), 0.0) / im.pixels.size();
    EXPECT_GT(mean, 20.0);
    EXPECT_LT(mean, 235.0);
}

TEST(ImageDecode, ConfusingPicturesJpeg) {
    const std::string path = kShared + "/data/images/Confusing-Pictures.jpg";
    const RgbImage im = decode_image(path);
    EXPECT_GT(im.width, 16);
    EXPECT_GT(im.height, 16);
    ASSERT_EQ(im.pixels.size(), im.num_pixels() * 3);
    // A colour photo: the channels are not all equal everywhere.
    size_t colourful = 0;
    for (size_t i = 0; i < im.num_pixels(); ++i)
        colourful += im.pixels[3 * i] != im.pixels[3 * i + 1] || im.pixels[3 * i + 1] != im.pixels[3 * i + 2];
    EXPECT_GT(colourful, im.num_pixels() / 4);
    // The format comes from the bytes: the same data under a .png name decodes the same way.
    TempDir dir;
    const auto bytes = read_bytes(path);
    write_file(dir / "actually_a_jpeg.png", std::string(bytes.begin(), bytes.end()));
    EXPECT_EQ(decode_image(dir / "actually_a_jpeg.png").pixels, im.pixels);
}

TEST(ImageDecode, JpegRoundTripIsClose) {
    const RgbImage src = numbered_image(16, 16);
    const RgbImage im = decode_image_bytes(encode_jpeg(16, 16, 3, src.pixels, 100), "rt.jpg");
    ASSERT_EQ(im.width, 16);
    ASSERT_EQ(im.height, 16);
    int maxdiff = 0;
    for (size_t i = 0; i < im.pixels.size(); ++i) maxdiff = std::max(maxdiff, std::abs(int(im.pixels[i]) - int(src.pixels[i])));
    EXPECT_LE(maxdiff, 12);  // quality 100 with 4:2:0 chroma
}

TEST(ImageDecode, GrayAndCmykJpegBecomeRgb) {
    std::vector<uint8_t> gray(8 * 8);
    for (size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i * 4);
    const RgbImage g = decode_image_bytes(encode_jpeg(8, 8, 1, gray, 100), "gray.jpg");
    ASSERT_EQ(g.num_pixels(), 64u);
    for (size_t i = 0; i < 64; ++i) {
        EXPECT_EQ(g.pixels[3 * i], g.pixels[3 * i + 1]);
        EXPECT_EQ(g.pixels[3 * i], g.pixels[3 * i + 2]);
        EXPECT_NEAR(g.pixels[3 * i], gray[i], 3);
    }
    // libjpeg writes CMYK as given (Adobe marker, transform 0); Pillow reads it as inverted ("CMYK;I").
    // Stored (255, 255, 255, 255) = C M Y K all zero after inversion -> white; stored K byte 0 -> black.
    std::vector<uint8_t> cmyk;
    for (int i = 0; i < 64; ++i) cmyk.insert(cmyk.end(), {255, 255, 255, uint8_t(i < 32 ? 255 : 0)});
    const RgbImage c = decode_image_bytes(encode_jpeg(8, 8, 4, cmyk, 100), "cmyk.jpg");
    ASSERT_EQ(c.num_pixels(), 64u);
    EXPECT_GE(c.pixels[0], 250);                 // white top half
    EXPECT_LE(c.pixels[3 * 63], 5);              // black bottom half
    // Stored (0, 255, 255, 255): C = 255 after inversion, no black -> cyan (0, 255, 255).
    std::vector<uint8_t> cyan;
    for (int i = 0; i < 64; ++i) cyan.insert(cyan.end(), {0, 255, 255, 255});
    const RgbImage cy = decode_image_bytes(encode_jpeg(8, 8, 4, cyan, 100), "cyan.jpg");
    EXPECT_LE(cy.pixels[0], 5);
    EXPECT_GE(cy.pixels[1], 250);
    EXPECT_GE(cy.pixels[2], 250);
}

TEST(ImageDecode, PngModesConvertLikePillow) {
    // Palette with tRNS: palette RGB, alpha ignored.
    PngSpec p;
    p.width = 2;
    p.height = 1;
    p.color_type = PNG_COLOR_TYPE_PALETTE;
    p.palette = {{10, 20, 30}, {200, 150, 100}};
    p.trns = {0, 128};
    p.rows = {{1, 0}};
    RgbImage im = decode_image_bytes(encode_png(p), "palette.png");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{200, 150, 100, 10, 20, 30}));

    // 2-bit gray: bit replication (x85).
    PngSpec g2;
    g2.width = 4;
    g2.height = 1;
    g2.color_type = PNG_COLOR_TYPE_GRAY;
    g2.bit_depth = 2;
    g2.rows = {{0b00011011}};
    im = decode_image_bytes(encode_png(g2), "gray2.png");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255}));

    // 16-bit gray: Pillow's I;16 -> RGB clips at 255 (0x0080 -> 128, 0x0100 -> 255, 0xFFFF -> 255).
    PngSpec g16;
    g16.width = 3;
    g16.height = 1;
    g16.color_type = PNG_COLOR_TYPE_GRAY;
    g16.bit_depth = 16;
    g16.rows = {{0x00, 0x80, 0x01, 0x00, 0xFF, 0xFF}};
    im = decode_image_bytes(encode_png(g16), "gray16.png");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{128, 128, 128, 255, 255, 255, 255, 255, 255}));

    // 16-bit RGBA: the high byte of each colour sample, alpha dropped.
    PngSpec rgba16;
    rgba16.width = 1;
    rgba16.height = 1;
    rgba16.color_type = PNG_COLOR_TYPE_RGBA;
    rgba16.bit_depth = 16;
    rgba16.rows = {{0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF, 0x00, 0x00}};
    im = decode_image_bytes(encode_png(rgba16), "rgba16.png");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0x12, 0xAB, 0x00}));

    // 8-bit gray + alpha: gray replicated, alpha dropped (not composited).
    PngSpec ga;
    ga.width = 2;
    ga.height = 1;
    ga.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
    ga.rows = {{77, 0, 200, 255}};
    im = decode_image_bytes(encode_png(ga), "ga.png");
    EXPECT_EQ(im.pixels, (std::vector<uint8_t>{77, 77, 77, 200, 200, 200}));
}

TEST(ImageDecode, InterlacedPngMatchesPlain) {
    const RgbImage src = numbered_image(13, 11);
    PngSpec s;
    s.width = 13;
    s.height = 11;
    for (int y = 0; y < 11; ++y) s.rows.emplace_back(src.pixels.begin() + y * 39, src.pixels.begin() + (y + 1) * 39);
    s.interlace = true;
    EXPECT_EQ(decode_image_bytes(encode_png(s), "adam7.png").pixels, src.pixels);
}

TEST(ImageDecode, ExifOrientationTagParsing) {
    for (int o = 1; o <= 8; ++o) {
        EXPECT_EQ(exif_orientation_from_tiff(tiff_with_orientation(o, false)), o);
        EXPECT_EQ(exif_orientation_from_tiff(tiff_with_orientation(o, true)), o);
        Bytes with_prefix = {'E', 'x', 'i', 'f', 0, 0};
        const Bytes t = tiff_with_orientation(o, true);
        with_prefix.insert(with_prefix.end(), t.begin(), t.end());
        EXPECT_EQ(exif_orientation_from_exif(with_prefix), o);
    }
    EXPECT_EQ(exif_orientation_from_tiff(tiff_with_orientation(9, false)), 1);   // out of range
    EXPECT_EQ(exif_orientation_from_tiff(tiff_with_orientation(0, true)), 1);
    EXPECT_EQ(exif_orientation_from_tiff({}), 1);
    Bytes bad = tiff_with_orientation(6, false);
    bad[4] = 0xF0;  // IFD0 offset far outside the buffer
    EXPECT_EQ(exif_orientation_from_tiff(bad), 1);
    Bytes many = tiff_with_orientation(6, false);
    many[8] = 0xFF;  // entry count larger than the data
    many[9] = 0xFF;
    EXPECT_EQ(exif_orientation_from_tiff(many), 6);  // found before running out
    many.resize(20);  // cut inside the first entry
    EXPECT_EQ(exif_orientation_from_tiff(many), 1);
    const Bytes junk = {'I', 'I', 42, 0, 8, 0, 0, 0, 1};
    EXPECT_EQ(exif_orientation_from_tiff(junk), 1);
}

TEST(ImageDecode, ExifTransposeAllEightOrientations) {
    const RgbImage im = numbered_image(3, 2);  // W=3, H=2
    const auto p = [&](int y, int x) { return pixel(im, y, x); };
    // Expected top-left and bottom-right source pixels and output size for each orientation (PIL's
    // exif_transpose: 2 mirror, 3 rot180, 4 flip, 5 transpose, 6 rot270, 7 transverse, 8 rot90).
    struct Case { int o, w, h; std::vector<uint8_t> tl, br; };
    const std::vector<Case> cases = {
        {1, 3, 2, p(0, 0), p(1, 2)}, {2, 3, 2, p(0, 2), p(1, 0)}, {3, 3, 2, p(1, 2), p(0, 0)},
        {4, 3, 2, p(1, 0), p(0, 2)}, {5, 2, 3, p(0, 0), p(1, 2)}, {6, 2, 3, p(1, 0), p(0, 2)},
        {7, 2, 3, p(1, 2), p(0, 0)}, {8, 2, 3, p(0, 2), p(1, 0)},
    };
    for (const auto& c : cases) {
        const RgbImage r = apply_exif_orientation(im, c.o);
        ASSERT_EQ(r.width, c.w) << "orientation " << c.o;
        ASSERT_EQ(r.height, c.h) << "orientation " << c.o;
        EXPECT_EQ(pixel(r, 0, 0), c.tl) << "orientation " << c.o;
        EXPECT_EQ(pixel(r, r.height - 1, r.width - 1), c.br) << "orientation " << c.o;
    }
    // 6 (rotate 90 clockwise): the left column, read bottom to top, becomes the top row.
    const RgbImage r6 = apply_exif_orientation(im, 6);
    EXPECT_EQ(pixel(r6, 0, 1), p(0, 0));
    // 8 then 6 is the identity.
    EXPECT_EQ(apply_exif_orientation(apply_exif_orientation(im, 8), 6).pixels, im.pixels);
}

TEST(ImageDecode, JpegAndPngExifOrientationIsApplied) {
    const RgbImage src = numbered_image(16, 8);
    const Bytes jpeg = jpeg_with_exif(encode_jpeg(16, 8, 3, src.pixels, 100), tiff_with_orientation(6, false));
    const RgbImage raw = decode_image_bytes(jpeg, "exif.jpg", DecodeOptions{kMaxImagePixels, false});
    EXPECT_EQ(raw.width, 16);
    EXPECT_EQ(raw.height, 8);
    const RgbImage turned = decode_image_bytes(jpeg, "exif.jpg");
    EXPECT_EQ(turned.width, 8);
    EXPECT_EQ(turned.height, 16);
    EXPECT_EQ(turned.pixels, apply_exif_orientation(raw, 6).pixels);

    PngSpec s;
    s.width = 16;
    s.height = 8;
    for (int y = 0; y < 8; ++y) s.rows.emplace_back(src.pixels.begin() + y * 48, src.pixels.begin() + (y + 1) * 48);
    s.exif = tiff_with_orientation(3, true);
    const RgbImage png = decode_image_bytes(encode_png(s), "exif.png");
    EXPECT_EQ(png.pixels, apply_exif_orientation(src, 3).pixels);
}

TEST(ImageDecode, BadInputThrowsNamedErrors) {
    const Bytes merlion = read_bytes(kShared + "/data/images/merlion.png");
    const Bytes photo = read_bytes(kShared + "/data/images/Confusing-Pictures.jpg");

    expect_error([] { decode_image_bytes({}, "empty.png"); }, {"empty.png", "empty"});
    expect_error([] { decode_image_bytes(Bytes{'h', 'e', 'l', 'l', 'o'}, "text.jpg"); },
                 {"text.jpg", "unknown image format", "PNG, JPEG", "68 65 6c"});
    expect_error([] { decode_image_bytes(Bytes{'G', 'I', 'F', '8', '9', 'a', 1, 0}, "anim.gif"); },
                 {"anim.gif", "GIF", "not supported", "PNG, JPEG"});
    // PNG: signature only; cut in half; a flipped byte in the data (CRC); zero and absurd sizes.
    expect_error([&] { decode_image_bytes(Bytes(merlion.begin(), merlion.begin() + 8), "sig.png"); }, {"sig.png", "PNG"});
    expect_error([&] { decode_image_bytes(Bytes(merlion.begin(), merlion.begin() + merlion.size() / 2), "half.png"); },
                 {"half.png", "truncated"});
    Bytes flipped = merlion;
    flipped[flipped.size() / 2] ^= 0x5A;
    expect_error([&] { decode_image_bytes(flipped, "flipped.png"); }, {"flipped.png", "PNG"});
    expect_error([] { decode_image_bytes(png_header_only(0, 10), "zero.png"); }, {"zero.png", "zero"});
    expect_error([] { decode_image_bytes(png_header_only(100000, 100000), "huge.png"); },
                 {"huge.png", "10000000000 pixels", "limit"});
    expect_error([] { decode_image_bytes(png_header_only(4, 4), "nodata.png"); }, {"nodata.png", "PNG"});
    expect_error([&] { decode_image_bytes(merlion, "merlion.png", DecodeOptions{1000, true}); },
                 {"merlion.png", "1192x874", "limit of 1000"});
    // JPEG: SOI only; cut in half; garbage after the SOI marker; absurd size.
    expect_error([] { decode_image_bytes(Bytes{0xFF, 0xD8, 0xFF}, "soi.jpg"); }, {"soi.jpg", "JPEG"});
    expect_error([&] { decode_image_bytes(Bytes(photo.begin(), photo.begin() + photo.size() / 2), "half.jpg"); },
                 {"half.jpg", "truncated"});
    Bytes garbage = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x03, 0x01, 0x02, 0x03, 0x04};
    expect_error([&] { decode_image_bytes(garbage, "garbage.jpg"); }, {"garbage.jpg", "invalid JPEG"});
    expect_error([&] { decode_image_bytes(photo, "photo.jpg", DecodeOptions{1000, true}); }, {"photo.jpg", "limit of 1000"});
    // Files: missing, a folder, an empty file.
    TempDir dir;
    expect_error([&] { decode_image(dir / "missing.png"); }, {"missing.png", "not found"});
    expect_error([&] { decode_image(dir.path()); }, {"folder"});
    write_file(dir / "empty.jpg", "");
    expect_error([&] { decode_image(dir / "empty.jpg"); }, {"empty.jpg", "empty"});
}
