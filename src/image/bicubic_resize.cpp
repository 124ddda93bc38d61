// image/bicubic_resize.cpp — the torchvision-exact uint8 antialiased bicubic resize (see the header).
//
// Why each detail matters for bit-exactness: the weights are computed in double exactly as PyTorch's
// _compute_weights_aa does (center = scale·(i+0.5), window rounded with trunc(x + 0.5), the window
// clamped to the kernel's max tap count, normalisation by the window sum), the integer weights are
// rounded half away from zero, and the intermediate of the horizontal pass is stored as uint8.
#include "image/bicubic_resize.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace autoround {

namespace {

// Keys cubic convolution with a = -0.5 (the antialias path's choice, compatible with Pillow).
double keys_cubic(double x) {
    constexpr double a = -0.5;
    x = std::fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

inline uint8_t clamp_shift(int64_t acc, int precision) {
    const int64_t v = acc >> precision;  // arithmetic shift (floor), as _mm_srai_epi32
    return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

}  // namespace

ResampleAxis compute_bicubic_axis(int in_size, int out_size) {
    check(in_size > 0 && out_size > 0, "bicubic resize: sizes must be positive (", in_size, " -> ", out_size, ")");
    ResampleAxis ax;
    ax.in_size = in_size;
    ax.out_size = out_size;
    const double scale = static_cast<double>(in_size) / out_size;
    const double support = scale >= 1.0 ? 2.0 * scale : 2.0;  // (interp_size 4 / 2) · scale
    const double inv_scale = scale >= 1.0 ? 1.0 / scale : 1.0;
    ax.max_taps = static_cast<int>(std::ceil(support)) * 2 + 1;
    const size_t mt = static_cast<size_t>(ax.max_taps);
    ax.start.resize(out_size);
    ax.taps.resize(out_size);
    std::vector<double> w(static_cast<size_t>(out_size) * mt, 0.0);  // [out_size, max_taps]
    double wmax = 0.0;
    for (int i = 0; i < out_size; ++i) {
        const double center = scale * (i + 0.5);
        const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
        int64_t xsize = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in_size) - xmin;
        xsize = std::clamp<int64_t>(xsize, 0, ax.max_taps);
        double* wi = w.data() + static_cast<size_t>(i) * mt;
        double total = 0.0;
        for (int64_t j = 0; j < xsize; ++j) {
            wi[j] = keys_cubic((static_cast<double>(j + xmin) - center + 0.5) * inv_scale);
            total += wi[j];
        }
        if (total != 0.0) {
            for (int64_t j = 0; j < xsize; ++j) {
                wi[j] /= total;
                wmax = std::max(wmax, wi[j]);
            }
        }
        ax.start[i] = xmin;
        ax.taps[i] = xsize;
    }
    int p = 0;
    for (; p < 22; ++p) {
        const int next = static_cast<int>(0.5 + wmax * static_cast<double>(int64_t{1} << (p + 1)));
        if (next >= (1 << 15)) break;
    }
    ax.precision = p;
    ax.weights.resize(w.size());
    const double s = static_cast<double>(int64_t{1} << p);
    for (size_t k = 0; k < w.size(); ++k) {
        const double v = w[k] * s;
        ax.weights[k] = static_cast<int32_t>(v < 0 ? std::trunc(v - 0.5) : std::trunc(v + 0.5));
    }
    return ax;
}

RgbImage resize_bicubic_antialias(const RgbImage& image, int out_width, int out_height) {
    check(image.width > 0 && image.height > 0, "bicubic resize: empty input image");
    check(out_width > 0 && out_height > 0, "bicubic resize: output size must be positive (", out_width, "x", out_height, ")");
    RgbImage cur = image;
    if (out_width != cur.width) {  // horizontal pass: [H, W, 3] -> [H, out_width, 3]
        const ResampleAxis ax = compute_bicubic_axis(cur.width, out_width);
        RgbImage next;
        next.width = out_width;
        next.height = cur.height;
        next.pixels.resize(next.num_pixels() * 3);
        const int64_t bias = ax.precision > 0 ? int64_t{1} << (ax.precision - 1) : 0;
#pragma omp parallel for schedule(static) if (next.num_pixels() > (1 << 16))
        for (int y = 0; y < cur.height; ++y) {
            const uint8_t* src = cur.pixels.data() + static_cast<size_t>(y) * cur.width * 3;
            uint8_t* dst = next.pixels.data() + static_cast<size_t>(y) * out_width * 3;
            for (int x = 0; x < out_width; ++x) {
                const int32_t* wx = ax.weights.data() + static_cast<size_t>(x) * ax.max_taps;
                const uint8_t* s = src + ax.start[x] * 3;
                int64_t acc[3] = {bias, bias, bias};
                for (int64_t j = 0; j < ax.taps[x]; ++j)
                    for (int c = 0; c < 3; ++c) acc[c] += int64_t{wx[j]} * s[j * 3 + c];
                for (int c = 0; c < 3; ++c) dst[x * 3 + c] = clamp_shift(acc[c], ax.precision);
            }
        }
        cur = std::move(next);
    }
    if (out_height != cur.height) {  // vertical pass on the uint8 intermediate: [H, W', 3] -> [out_height, W', 3]
        const ResampleAxis ax = compute_bicubic_axis(cur.height, out_height);
        RgbImage next;
        next.width = cur.width;
        next.height = out_height;
        next.pixels.resize(next.num_pixels() * 3);
        const int64_t bias = ax.precision > 0 ? int64_t{1} << (ax.precision - 1) : 0;
        const size_t row = static_cast<size_t>(cur.width) * 3;
#pragma omp parallel for schedule(static) if (next.num_pixels() > (1 << 16))
        for (int y = 0; y < out_height; ++y) {
            const int32_t* wy = ax.weights.data() + static_cast<size_t>(y) * ax.max_taps;
            uint8_t* dst = next.pixels.data() + static_cast<size_t>(y) * row;
            const uint8_t* src = cur.pixels.data() + static_cast<size_t>(ax.start[y]) * row;
            std::vector<int64_t> acc(row, bias);  // [W' * 3]: one output row, accumulated tap by tap
            for (int64_t j = 0; j < ax.taps[y]; ++j) {
                const int64_t wj = wy[j];
                const uint8_t* s = src + static_cast<size_t>(j) * row;
                for (size_t k = 0; k < row; ++k) acc[k] += wj * s[k];
            }
            for (size_t k = 0; k < row; ++k) dst[k] = clamp_shift(acc[k], ax.precision);
        }
        cur = std::move(next);
    }
    return cur;
}

}  // namespace autoround
