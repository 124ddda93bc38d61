// quant/vision_calibration.cpp — see vision_calibration.h.
#include "quant/vision_calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "image/bicubic_resize.h"
#include "image/image.h"

namespace autoround {

namespace fs = std::filesystem;

namespace {

bool is_image_file(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// The side actually used: image_size clamped into the processor's [min_pixels, max_pixels] (as a square,
// in multiples of the factor).
int64_t clamp_side(int64_t side, const ImageProcessorConfig& proc, std::vector<std::string>& warnings) {
    const int64_t f = proc.factor();
    if (side * side < proc.min_pixels) {
        const int64_t s = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(proc.min_pixels)) / f)) * f;
        warnings.push_back("--image_size " + std::to_string(side) + " is below the processor's min_pixels " +
                           std::to_string(proc.min_pixels) + "; calibration images use " + std::to_string(s) + "x" +
                           std::to_string(s));
        return s;
    }
    if (side * side > proc.max_pixels) {
        const int64_t s = std::max<int64_t>(f, static_cast<int64_t>(std::sqrt(static_cast<double>(proc.max_pixels))) / f * f);
        warnings.push_back("--image_size " + std::to_string(side) + " is above the processor's max_pixels " +
                           std::to_string(proc.max_pixels) + "; calibration images use " + std::to_string(s) + "x" +
                           std::to_string(s));
        return s;
    }
    return side;
}

}  // namespace

VisionCalibrationSet build_vision_calibration(const VisionCalibrationOptions& o, const ImageProcessorConfig& proc) {
    check(!o.dir.empty(), "--image_dataset: no folder given");
    std::error_code ec;
    check(fs::is_directory(o.dir, ec), "--image_dataset ", o.dir.string(),
          ": not a folder (expected a folder of .png/.jpg images, with optional <name>.txt captions)");
    check(o.nsamples > 0, "--nsamples must be positive");
    const int64_t f = proc.factor();
    check(o.image_size > 0 && o.image_size % f == 0, "--image_size ", o.image_size, ": expected a positive multiple of ",
          f, " (the processor's patch_size x merge_size)");

    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(o.dir, ec))
        if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path());
    check(!ec, "--image_dataset ", o.dir.string(), ": cannot list the folder: ", ec.message());
    check(!files.empty(), "--image_dataset ", o.dir.string(), ": no .png/.jpg/.jpeg images in the folder");
    std::sort(files.begin(), files.end());
    if (files.size() > static_cast<size_t>(o.nsamples)) files.resize(static_cast<size_t>(o.nsamples));

    VisionCalibrationSet cal;
    const int64_t side = clamp_side(o.image_size, proc, cal.warnings);
    ImageProcessorConfig pc = proc;
    pc.min_pixels = pc.max_pixels = side * side;  // smart_resize keeps side x side
    for (const fs::path& p : files) {
        const RgbImage img = decode_image(p);
        const RgbImage sq = resize_bicubic_antialias(img, static_cast<int>(side), static_cast<int>(side));
        const ProcessedImage pi = preprocess_image(sq, pc);
        const ImageGrid g{static_cast<int>(pi.grid_thw[0]), static_cast<int>(pi.grid_thw[1]),
                          static_cast<int>(pi.grid_thw[2])};
        if (cal.n == 0) {
            cal.grid = g;
            cal.rows_per_image = pi.n_patches;
        }
        check(g.t == cal.grid.t && g.h == cal.grid.h && g.w == cal.grid.w, p.string(),
              ": preprocessed to a different grid than the other calibration images");
        cal.pixel_values.insert(cal.pixel_values.end(), pi.pixel_values.begin(), pi.pixel_values.end());
        ++cal.n;
        cal.files.push_back(p.filename().string());
        fs::path cap = p;
        cap.replace_extension(".txt");
        std::string caption;
        if (fs::is_regular_file(cap, ec)) {
            std::ifstream f(cap, std::ios::binary);
            check(static_cast<bool>(f), "--image_dataset: cannot read the caption ", cap.string());
            caption.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
            const size_t b = caption.find_first_not_of(" \t\r\n"), e = caption.find_last_not_of(" \t\r\n");
            caption = b == std::string::npos ? std::string() : caption.substr(b, e - b + 1);
            if (!caption.empty()) ++cal.captions;
        }
        cal.caption_texts.push_back(std::move(caption));
    }
    char buf[256];
    std::snprintf(buf, sizeof buf, "%lld images from %s resized to %lldx%lld (%d x %d patches each)%s",
                  static_cast<long long>(cal.n), o.dir.string().c_str(), static_cast<long long>(side),
                  static_cast<long long>(side), cal.grid.h, cal.grid.w,
                  cal.captions ? (", " + std::to_string(cal.captions) + " with captions").c_str() : "");
    cal.description = buf;
    return cal;
}

}  // namespace autoround
