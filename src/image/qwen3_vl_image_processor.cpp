// image/qwen3_vl_image_processor.cpp — preprocessor_config.json, smart_resize, rescale + normalize
// and patchify of the Qwen3-VL image processor (docs/qwen3-architecture.md §3.2–3.6).
//
// Why the exact float order: transformers fuses rescale into normalize (mean' = f32(mean) ·
// f32(1/rescale_factor), likewise std') and computes (f32(u8) − mean') / std' in float32, a subtract
// then a true divide. Doing the same here makes pixel_values bit-identical; it is evaluated once per
// channel and byte value into a 256-entry table.
#include "image/qwen3_vl_image_processor.h"

#include <charconv>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "image/bicubic_resize.h"
#include "io/model_config.h"

namespace autoround {

namespace {

using json = nlohmann::json;

int64_t get_integer(const json& j, const char* key, int64_t fallback, int64_t lo, int64_t hi, const std::string& label) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    const json& v = j[key];
    int64_t out = 0;
    if (v.is_number_integer()) {
        out = v.get<int64_t>();
    } else if (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()) &&
               std::fabs(v.get<double>()) < 9.0e18) {
        out = static_cast<int64_t>(v.get<double>());
    } else {
        fail(label, ": '", key, "' must be an integer, got ", v.dump());
    }
    check(out >= lo && out <= hi, label, ": '", key, "' must be in [", lo, ", ", hi, "], got ", out);
    return out;
}

std::array<float, 3> get_triple(const json& j, const char* key, std::array<float, 3> fallback, const std::string& label) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    const json& v = j[key];
    std::array<float, 3> out{};
    if (v.is_number()) {  // a single value applies to every channel
        out.fill(static_cast<float>(v.get<double>()));
    } else {
        check(v.is_array() && v.size() == 3, label, ": '", key, "' must be a list of 3 numbers (R, G, B), got ", v.dump());
        for (size_t c = 0; c < 3; ++c) {
            check(v[c].is_number(), label, ": '", key, "' must be a list of 3 numbers, got ", v.dump());
            out[c] = static_cast<float>(v[c].get<double>());  // torch.tensor(list) is float32
        }
    }
    for (float x : out) check(std::isfinite(x), label, ": '", key, "' has a non-finite value: ", v.dump());
    return out;
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& label) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    check(j[key].is_boolean(), label, ": '", key, "' must be true or false, got ", j[key].dump());
    return j[key].get<bool>();
}

// Python's repr of a float (shortest round-trip, always with a '.' or exponent), for messages that
// must read like transformers' own.
std::string python_float(double x) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, x);
    std::string s(buf, r.ptr);
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

constexpr int64_t kMaxSide = int64_t{1} << 30;  // smart_resize inputs beyond this are not images

}  // namespace

ImageProcessorConfig parse_image_processor_config(const json& j, const std::string& label, const PixelOverrides& overrides) {
    check(j.is_object(), label, ": expected a JSON object (preprocessor_config.json)");
    ImageProcessorConfig c;
    c.patch_size = static_cast<int>(get_integer(j, "patch_size", c.patch_size, 1, 1024, label));
    c.temporal_patch_size = static_cast<int>(get_integer(j, "temporal_patch_size", c.temporal_patch_size, 1, 16, label));
    c.merge_size = static_cast<int>(get_integer(j, "merge_size", c.merge_size, 1, 64, label));
    check(c.factor() <= 4096, label, ": patch_size * merge_size = ", c.factor(), " is implausibly large");
    c.image_mean = get_triple(j, "image_mean", c.image_mean, label);
    c.image_std = get_triple(j, "image_std", c.image_std, label);
    if (j.contains("rescale_factor") && !j["rescale_factor"].is_null()) {
        check(j["rescale_factor"].is_number(), label, ": 'rescale_factor' must be a number, got ", j["rescale_factor"].dump());
        c.rescale_factor = j["rescale_factor"].get<double>();
        check(std::isfinite(c.rescale_factor) && c.rescale_factor > 0, label, ": 'rescale_factor' must be positive, got ",
              j["rescale_factor"].dump());
    }
    c.do_resize = get_bool(j, "do_resize", c.do_resize, label);
    c.do_rescale = get_bool(j, "do_rescale", c.do_rescale, label);
    c.do_normalize = get_bool(j, "do_normalize", c.do_normalize, label);
    if (c.do_normalize)
        for (float s : c.image_std) check(s != 0.0f, label, ": 'image_std' must not contain 0");

    // size {shortest_edge, longest_edge} = {min_pixels, max_pixels}; the older top-level
    // min_pixels / max_pixels keys override it (as Qwen2VLImageProcessor.__init__ does).
    if (j.contains("size") && !j["size"].is_null()) {
        const json& s = j["size"];
        check(s.is_object() && s.contains("shortest_edge") && s.contains("longest_edge"), label,
              ": 'size' must contain 'shortest_edge' and 'longest_edge' (min and max pixels), got ", s.dump());
        c.min_pixels = get_integer(s, "shortest_edge", c.min_pixels, 0, kMaxImagePixels, label + " size");
        c.max_pixels = get_integer(s, "longest_edge", c.max_pixels, 1, int64_t{1} << 40, label + " size");
    }
    c.min_pixels = get_integer(j, "min_pixels", c.min_pixels, 0, kMaxImagePixels, label);
    c.max_pixels = get_integer(j, "max_pixels", c.max_pixels, 1, int64_t{1} << 40, label);
    if (overrides.min_pixels) {
        check(*overrides.min_pixels >= 0 && *overrides.min_pixels <= kMaxImagePixels, "min_pixels must be in [0, ",
              kMaxImagePixels, "], got ", *overrides.min_pixels);
        c.min_pixels = *overrides.min_pixels;
    }
    if (overrides.max_pixels) {
        check(*overrides.max_pixels >= 1, "max_pixels must be positive, got ", *overrides.max_pixels);
        c.max_pixels = *overrides.max_pixels;
    }
    check(c.min_pixels <= c.max_pixels, label, ": min_pixels (", c.min_pixels, ") must not exceed max_pixels (",
          c.max_pixels, ")");
    return c;
}

ImageProcessorConfig load_image_processor_config(const std::filesystem::path& path, const PixelOverrides& overrides) {
    std::error_code ec;
    const std::filesystem::path file =
        std::filesystem::is_directory(path, ec) ? path / "preprocessor_config.json" : path;
    return parse_image_processor_config(read_json_file(file), file.string(), overrides);
}

ResizeTarget smart_resize(int64_t height, int64_t width, int64_t factor, int64_t min_pixels, int64_t max_pixels) {
    check(height > 0 && width > 0, "smart_resize: image size must be positive, got ", height, "x", width);
    check(height <= kMaxSide && width <= kMaxSide, "smart_resize: image size ", height, "x", width, " is too large");
    check(factor > 0 && max_pixels > 0 && min_pixels >= 0, "smart_resize: invalid factor or pixel bounds");
    const double h = static_cast<double>(height), w = static_cast<double>(width), f = static_cast<double>(factor);
    const double ratio = std::max(h, w) / std::min(h, w);
    check(!(ratio > 200.0), "absolute aspect ratio must be smaller than 200, got ", python_float(ratio));
    // Python's round() is round-half-to-even: std::nearbyint in the default rounding mode.
    int64_t h_bar = static_cast<int64_t>(std::nearbyint(h / f)) * factor;
    int64_t w_bar = static_cast<int64_t>(std::nearbyint(w / f)) * factor;
    const double area = static_cast<double>(height * width);  // exact: both sides <= 2^30
    if (h_bar * w_bar > max_pixels) {
        const double beta = std::sqrt(area / static_cast<double>(max_pixels));
        h_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(h / beta / f)) * factor);
        w_bar = std::max<int64_t>(factor, static_cast<int64_t>(std::floor(w / beta / f)) * factor);
    } else if (h_bar * w_bar < min_pixels) {
        const double beta = std::sqrt(static_cast<double>(min_pixels) / area);
        h_bar = static_cast<int64_t>(std::ceil(h * beta / f)) * factor;
        w_bar = static_cast<int64_t>(std::ceil(w * beta / f)) * factor;
    }
    return {h_bar, w_bar};
}

ProcessedImage preprocess_image(const RgbImage& image, const ImageProcessorConfig& config) {
    check(image.width > 0 && image.height > 0 && image.pixels.size() == image.num_pixels() * 3,
          "preprocess_image: empty or inconsistent image (", image.width, "x", image.height, ")");
    const int ps = config.patch_size, m = config.merge_size, T = config.temporal_patch_size;
    check(ps > 0 && m > 0 && T > 0, "preprocess_image: patch_size, merge_size and temporal_patch_size must be positive");
    const int64_t factor = config.factor();

    ResizeTarget target{image.height, image.width};
    if (config.do_resize) target = smart_resize(image.height, image.width, factor, config.min_pixels, config.max_pixels);
    check(target.height > 0 && target.width > 0 && target.height % factor == 0 && target.width % factor == 0,
          "preprocess_image: the image size ", target.width, "x", target.height, " is not a positive multiple of ",
          factor, " (patch_size * merge_size)", config.do_resize ? "; min_pixels may be 0" : "; enable do_resize");
    check(target.height <= kMaxImagePixels / target.width, "preprocess_image: resized image ", target.width, "x",
          target.height, " exceeds ", kMaxImagePixels, " pixels (lower max_pixels / min_pixels)");

    const int out_h = static_cast<int>(target.height), out_w = static_cast<int>(target.width);
    RgbImage resized_storage;
    const RgbImage* img = &image;
    if (out_h != image.height || out_w != image.width) {
        resized_storage = resize_bicubic_antialias(image, out_w, out_h);
        img = &resized_storage;
    }

    // The float32 value of every (channel, byte) pair, in transformers' operation order.
    float lut[3][256];
    for (int c = 0; c < 3; ++c) {
        if (config.do_rescale && config.do_normalize) {
            const float inv_rescale = static_cast<float>(1.0 / config.rescale_factor);
            const float mean = config.image_mean[c] * inv_rescale, std = config.image_std[c] * inv_rescale;
            for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) - mean) / std;
        } else if (config.do_normalize) {
            for (int v = 0; v < 256; ++v) lut[c][v] = (static_cast<float>(v) - config.image_mean[c]) / config.image_std[c];
        } else if (config.do_rescale) {
            const float r = static_cast<float>(config.rescale_factor);
            for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>(v) * r;
        } else {
            for (int v = 0; v < 256; ++v) lut[c][v] = static_cast<float>(v);
        }
    }

    ProcessedImage out;
    const int gh = out_h / ps, gw = out_w / ps;
    out.resized_height = out_h;
    out.resized_width = out_w;
    out.grid_thw = {1, gh, gw};
    out.n_patches = int64_t{gh} * gw;
    out.patch_dim = int64_t{3} * T * ps * ps;
    out.n_image_tokens = out.n_patches / (int64_t{m} * m);
    out.pixel_values.resize(static_cast<size_t>(out.n_patches * out.patch_dim));  // [n_patches, 3*T*ps*ps]

    // Row order [h/m, w/m, m, m]; within a row [C, T, ps, ps]; the one frame is repeated T times.
    const size_t plane = static_cast<size_t>(ps) * ps;
#pragma omp parallel for schedule(static) if (out.n_patches > 256)
    for (int br = 0; br < gh / m; ++br) {
        for (int bc = 0; bc < gw / m; ++bc) {
            for (int dy = 0; dy < m; ++dy) {
                for (int dx = 0; dx < m; ++dx) {
                    const int64_t patch = ((int64_t{br} * (gw / m) + bc) * m + dy) * m + dx;
                    float* dst = out.pixel_values.data() + static_cast<size_t>(patch * out.patch_dim);
                    const int row0 = (br * m + dy) * ps, col0 = (bc * m + dx) * ps;
                    for (int c = 0; c < 3; ++c) {
                        float* frame0 = dst + static_cast<size_t>(c) * T * plane;
                        for (int y = 0; y < ps; ++y) {
                            const uint8_t* src = img->at(row0 + y, col0);
                            for (int x = 0; x < ps; ++x) frame0[y * ps + x] = lut[c][src[3 * x + c]];
                        }
                        for (int t = 1; t < T; ++t) std::copy(frame0, frame0 + plane, frame0 + t * plane);
                    }
                }
            }
        }
    }
    return out;
}

}  // namespace autoround
