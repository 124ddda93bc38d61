// tests/image/test_qwen3_vl_image_processor.cpp — the Qwen3-VL image processor against
// transformers' outputs in ../shared/reference/qwen3-vl-nano.safetensors:
//   * the 384x288 reference input (no resize): pixel_values [432, 1536] and image_grid_thw, exact;
//   * the original 1192x874 RGBA merlion (smart_resize to 864x1184, torchvision antialiased
//     bicubic): image_grid_thw exact, the first 64 rows of pixel_values and every row mean;
// plus smart_resize on awkward sizes, config parsing, the patch order and bounded memory.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

#include "image/bicubic_resize.h"
#include "image/image.h"
#include "image/qwen3_vl_image_processor.h"
#include "io/io_test_util.h"
#include "io/safetensors.h"

using namespace autoround;
using autoround::testio::expect_error;
using autoround::testio::TempDir;
using autoround::testio::write_file;
using json = nlohmann::json;

namespace {

const std::string kShared = AR_SHARED_DIR;
const std::string kModel = kShared + "/models/qwen3-vl-nano";
const std::string kRef = kShared + "/reference/qwen3-vl-nano.safetensors";

std::vector<int64_t> load_i64(const TensorStore& st, const std::string& name) {
    const TensorInfo& t = st.get(name);
    EXPECT_EQ(t.dtype, DType::I64);
    std::vector<int64_t> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), t.data, v.size() * sizeof(int64_t));
    return v;
}

RgbImage gradient_image(int w, int h) {
    RgbImage im;
    im.width = w;
    im.height = h;
    im.pixels.resize(im.num_pixels() * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = im.pixels.data() + (static_cast<size_t>(y) * w + x) * 3;
            p[0] = static_cast<uint8_t>((x * 7 + y * 3) & 255);
            p[1] = static_cast<uint8_t>((x * x + y) & 255);
            p[2] = static_cast<uint8_t>(((x ^ y) * 5) & 255);
        }
    return im;
}

}  // namespace

TEST(Qwen3VLImageProcessor, ConfigFromNanoModel) {
    const ImageProcessorConfig c = load_image_processor_config(kModel);
    EXPECT_EQ(c.patch_size, 16);
    EXPECT_EQ(c.temporal_patch_size, 2);
    EXPECT_EQ(c.merge_size, 2);
    EXPECT_EQ(c.factor(), 32);
    EXPECT_EQ(c.min_pixels, 65536);
    EXPECT_EQ(c.max_pixels, 16777216);
    EXPECT_FLOAT_EQ(c.image_mean[1], 0.5f);
    EXPECT_FLOAT_EQ(c.image_std[2], 0.5f);
    EXPECT_DOUBLE_EQ(c.rescale_factor, 0.00392156862745098);
}

TEST(Qwen3VLImageProcessor, ConfigOlderKeysOverridesAndErrors) {
    json j = {{"patch_size", 14}, {"merge_size", 2}, {"temporal_patch_size", 2}, {"min_pixels", 3136},
              {"max_pixels", 12845056}, {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
              {"image_std", {0.26862954, 0.26130258, 0.27577711}}};
    ImageProcessorConfig c = parse_image_processor_config(j, "old.json");
    EXPECT_EQ(c.factor(), 28);
    EXPECT_EQ(c.min_pixels, 3136);
    EXPECT_EQ(c.max_pixels, 12845056);
    // Top-level min/max_pixels win over size (as in Qwen2VLImageProcessor.__init__); overrides win over both.
    j["size"] = {{"shortest_edge", 100}, {"longest_edge", 200000}};
    c = parse_image_processor_config(j, "both.json", PixelOverrides{std::nullopt, 1000000});
    EXPECT_EQ(c.min_pixels, 3136);
    EXPECT_EQ(c.max_pixels, 1000000);
    c = load_image_processor_config(kModel + "/preprocessor_config.json", PixelOverrides{256 * 256, 512 * 512});
    EXPECT_EQ(c.min_pixels, 65536);
    EXPECT_EQ(c.max_pixels, 262144);

    expect_error([] { parse_image_processor_config(json{{"size", {{"shortest_edge", 1}}}}, "s.json"); },
                 {"s.json", "longest_edge"});
    expect_error([] { parse_image_processor_config(json{{"patch_size", "16"}}, "p.json"); }, {"p.json", "patch_size"});
    expect_error([] { parse_image_processor_config(json{{"patch_size", 0}}, "p0.json"); }, {"p0.json", "patch_size"});
    expect_error([] { parse_image_processor_config(json{{"image_mean", {0.5, 0.5}}}, "m.json"); }, {"m.json", "image_mean"});
    expect_error([] { parse_image_processor_config(json{{"image_std", {0.5, 0.0, 0.5}}}, "z.json"); }, {"z.json", "image_std"});
    expect_error([] { parse_image_processor_config(json{{"min_pixels", 5000}, {"max_pixels", 4000}}, "mm.json"); },
                 {"mm.json", "must not exceed"});
    TempDir dir;
    expect_error([&] { load_image_processor_config(dir.path()); }, {"preprocessor_config.json", "not found"});
}

TEST(Qwen3VLImageProcessor, SmartResizeAwkwardSizes) {
    auto sr = [](int64_t h, int64_t w) { return smart_resize(h, w, 32, 65536, 16777216); };
    // The examples checked against transformers 5.17 (docs §3.2).
    EXPECT_EQ(sr(480, 640).height, 480);
    EXPECT_EQ(sr(480, 640).width, 640);
    EXPECT_EQ(sr(37, 91).height, 192);
    EXPECT_EQ(sr(37, 91).width, 416);
    EXPECT_EQ(sr(1000, 700).height, 992);
    EXPECT_EQ(sr(1000, 700).width, 704);
    EXPECT_EQ(sr(333, 517).height, 320);
    EXPECT_EQ(sr(333, 517).width, 512);
    EXPECT_EQ(sr(874, 1192).height, 864);   // the merlion
    EXPECT_EQ(sr(874, 1192).width, 1184);
    // Python round() is half-to-even: 1.5 -> 2, 2.5 -> 2, 3.5 -> 4 (in units of 32).
    EXPECT_EQ(smart_resize(48, 4096, 32, 0, 1 << 30).height, 64);
    EXPECT_EQ(smart_resize(80, 4096, 32, 0, 1 << 30).height, 64);
    EXPECT_EQ(smart_resize(112, 4096, 32, 0, 1 << 30).height, 128);
    // Tiny: 1x1 scales up to min_pixels.
    EXPECT_EQ(sr(1, 1).height, 256);
    EXPECT_EQ(sr(1, 1).width, 256);
    // Ratio exactly 200 is allowed; above is transformers' ValueError text.
    const ResizeTarget r200 = sr(1, 200);
    EXPECT_EQ(r200.height, 32);
    EXPECT_EQ(r200.width, 3648);
    expect_error([&] { sr(1, 201); }, {"absolute aspect ratio must be smaller than 200, got 201.0"});
    expect_error([&] { sr(4000, 3); }, {"absolute aspect ratio must be smaller than 200, got 1333.3333333333333"});
    expect_error([&] { sr(0, 10); }, {"positive"});
    // Huge: 100000 x 50000 shrinks under max_pixels, multiples of 32, aspect kept.
    const ResizeTarget big = sr(100000, 50000);
    EXPECT_LE(big.height * big.width, 16777216);
    EXPECT_EQ(big.height % 32, 0);
    EXPECT_EQ(big.width % 32, 0);
    EXPECT_EQ(big.height, 5792);  // floor(100000 / sqrt(5e9/2^24) / 32) * 32
    EXPECT_EQ(big.width, 2880);
    // Max branch never goes below one factor per side.
    const ResizeTarget thin = smart_resize(40, 4000, 32, 0, 1024);
    EXPECT_EQ(thin.height, 32);
    EXPECT_EQ(thin.width, 320);
    // With min_pixels 0 a side can round to 0, as in transformers (10 -> round(0.3125) = 0).
    EXPECT_EQ(smart_resize(10, 1000, 32, 0, 1024).height, 0);
}

TEST(Qwen3VLImageProcessor, NanoReferencePixelValuesExact) {
    const TensorStore st = TensorStore::open(kRef);
    const ImageProcessorConfig cfg = load_image_processor_config(kModel);
    const RgbImage im = decode_image(kShared + "/reference/qwen3-vl-nano-input-384x288.png");
    const ProcessedImage out = preprocess_image(im, cfg);

    EXPECT_EQ(load_i64(st, "image_grid_thw"), (std::vector<int64_t>{1, 18, 24}));
    EXPECT_EQ(out.grid_thw, (std::array<int64_t, 3>{1, 18, 24}));
    EXPECT_EQ(out.n_image_tokens, 108);
    ASSERT_EQ(out.n_patches, 432);
    ASSERT_EQ(out.patch_dim, 1536);
    const std::vector<float> ref = st.load_f32("pixel_values");
    ASSERT_EQ(ref.size(), out.pixel_values.size());
    double maxdiff = 0.0;
    size_t differing = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double d = std::fabs(double(ref[i]) - double(out.pixel_values[i]));
        maxdiff = std::max(maxdiff, d);
        differing += d != 0.0;
    }
    std::printf("[ pixel_values 384x288 ] max |diff| = %.3g, differing values = %zu of %zu\n", maxdiff, differing, ref.size());
    EXPECT_EQ(differing, 0u);
}

TEST(Qwen3VLImageProcessor, FullsizeMerlionMatchesReference) {
    const TensorStore st = TensorStore::open(kRef);
    const ImageProcessorConfig cfg = load_image_processor_config(kModel);
    const RgbImage im = decode_image(kShared + "/data/images/merlion.png");
    const ProcessedImage out = preprocess_image(im, cfg);
    EXPECT_EQ(out.resized_height, 864);
    EXPECT_EQ(out.resized_width, 1184);
    const std::vector<int64_t> grid = load_i64(st, "fullsize.image_grid_thw");
    EXPECT_EQ(grid, (std::vector<int64_t>{1, 54, 74}));
    EXPECT_EQ(out.grid_thw, (std::array<int64_t, 3>{1, 54, 74}));
    EXPECT_EQ(out.n_image_tokens, 999);
    ASSERT_EQ(out.n_patches, 3996);

    const std::vector<float> first = st.load_f32("fullsize.pixel_values_first64rows");
    ASSERT_EQ(first.size(), size_t{64} * 1536);
    double max_first = 0.0;
    size_t differing = 0;
    for (size_t i = 0; i < first.size(); ++i) {
        const double d = std::fabs(double(first[i]) - double(out.pixel_values[i]));
        max_first = std::max(max_first, d);
        differing += d != 0.0;
    }
    const std::vector<float> mean = st.load_f32("fullsize.pixel_values_row_mean");
    ASSERT_EQ(mean.size(), size_t{3996});
    double max_mean = 0.0;
    for (size_t r = 0; r < mean.size(); ++r) {
        double s = 0.0;
        for (int k = 0; k < 1536; ++k) s += out.pixel_values[r * 1536 + k];
        max_mean = std::max(max_mean, std::fabs(s / 1536.0 - double(mean[r])));
    }
    std::printf("[ fullsize merlion ] first 64 rows: max |diff| = %.3g (%zu of %zu values differ); "
                "row means: max |diff| = %.3g\n", max_first, differing, first.size(), max_mean);
    // Bit-exact resize expected (docs §3.3); one uint8 step would be 2/255 = 0.0078.
    EXPECT_EQ(differing, 0u);
    EXPECT_LT(max_mean, 1e-6);  // float32 mean of 1536 values vs our double mean
}

TEST(Qwen3VLImageProcessor, PatchOrderAndTemporalDuplication) {
    // 64x96 (h x w) needs no resize; check every value against the patch formula of docs §3.5.
    ImageProcessorConfig cfg = load_image_processor_config(kModel);
    cfg.min_pixels = 0;
    const RgbImage im = gradient_image(96, 64);
    const ProcessedImage out = preprocess_image(im, cfg);
    ASSERT_EQ(out.grid_thw, (std::array<int64_t, 3>{1, 4, 6}));
    ASSERT_EQ(out.n_image_tokens, 6);
    for (int br = 0; br < 2; ++br)
        for (int bc = 0; bc < 3; ++bc)
            for (int dy = 0; dy < 2; ++dy)
                for (int dx = 0; dx < 2; ++dx) {
                    const int patch = ((br * 3 + bc) * 2 + dy) * 2 + dx;
                    const int row = 2 * br + dy, col = 2 * bc + dx;
                    for (int c = 0; c < 3; ++c)
                        for (int t = 0; t < 2; ++t)
                            for (int y = 0; y < 16; ++y)
                                for (int x = 0; x < 16; ++x) {
                                    const float v = out.pixel_values[patch * 1536 + c * 512 + t * 256 + y * 16 + x];
                                    const float u = im.at(row * 16 + y, col * 16 + x)[c];
                                    ASSERT_EQ(v, (u - 127.5f) / 127.5f) << patch << " " << c << " " << t << " " << y << " " << x;
                                }
                }
}

TEST(Qwen3VLImageProcessor, ResizeBasicsAndBoundedOutput) {
    // Same size: unchanged. Constant images stay (nearly) constant: the fixed-point weights sum to 2^p
    // within rounding, as in torchvision.
    const RgbImage g = gradient_image(40, 30);
    EXPECT_EQ(resize_bicubic_antialias(g, 40, 30).pixels, g.pixels);
    RgbImage flat;
    flat.width = 50;
    flat.height = 37;
    flat.pixels.assign(flat.num_pixels() * 3, 173);
    for (auto [w, h] : {std::pair{17, 11}, {128, 96}, {50, 200}, {3, 37}}) {
        const RgbImage r = resize_bicubic_antialias(flat, w, h);
        ASSERT_EQ(r.pixels.size(), size_t(w) * h * 3);
        for (uint8_t v : r.pixels) ASSERT_NEAR(v, 173, 1) << w << "x" << h;
    }
    // Axis weights: precision in range, integer weights of every output sum to about 2^p.
    for (auto [in, out] : {std::pair{1192, 1184}, {874, 864}, {37, 192}, {1000, 7}}) {
        const ResampleAxis ax = compute_bicubic_axis(in, out);
        ASSERT_GT(ax.precision, 0);
        ASSERT_LE(ax.precision, 22);
        for (int i = 0; i < out; ++i) {
            int64_t s = 0;
            for (int j = 0; j < ax.max_taps; ++j) s += ax.weights[i * ax.max_taps + j];
            ASSERT_NEAR(double(s), double(int64_t{1} << ax.precision), ax.max_taps) << in << "->" << out << " i=" << i;
            ASSERT_GE(ax.start[i], 0);
            ASSERT_LE(ax.start[i] + ax.taps[i], in);
        }
    }
    // A large image with a small max_pixels: the output is bounded by max_pixels.
    ImageProcessorConfig cfg = load_image_processor_config(kModel, PixelOverrides{1024, 128 * 128});
    const ProcessedImage out = preprocess_image(gradient_image(2000, 1500), cfg);
    EXPECT_LE(out.resized_height * out.resized_width, 128 * 128);
    EXPECT_EQ(out.pixel_values.size(), size_t(out.n_patches * 1536));
    // A tiny image grows to min_pixels.
    const ProcessedImage tiny = preprocess_image(gradient_image(1, 1), load_image_processor_config(kModel));
    EXPECT_EQ(tiny.grid_thw, (std::array<int64_t, 3>{1, 16, 16}));
    EXPECT_EQ(tiny.n_image_tokens, 64);
    expect_error([] { preprocess_image(gradient_image(300, 1), load_image_processor_config(kModel)); },
                 {"absolute aspect ratio must be smaller than 200"});
    ImageProcessorConfig zero_min = load_image_processor_config(kModel);
    zero_min.min_pixels = 0;
    expect_error([&] { preprocess_image(gradient_image(1000, 10), zero_min); }, {"not a positive multiple of 32"});
}
