// image/bicubic_resize.h — uint8 antialiased bicubic resize, bit-exact with torchvision on CPU.
//
// Why: the Qwen3-VL processor calls torchvision's resize(uint8 CHW, BICUBIC, antialias=True), which
// on CPU runs PyTorch's Pillow-SIMD-derived uint8 kernel with int16 fixed-point weights. Pillow's own
// BICUBIC differs from it by up to 2 LSB, so the recipe of docs/qwen3-architecture.md §3.3 is
// followed literally: separable, horizontal pass first (uint8 intermediate), Keys cubic a = -0.5
// stretched by the scale when downsampling, weights normalised in double, then quantised per axis
// with the largest precision p < 22 that keeps 2·max_weight·2^p below 2^15, and each sample
// computed as clamp((2^(p-1) + Σ w_i·x_i) >> p, 0, 255).
#pragma once

#include <cstdint>
#include <vector>

#include "image/image.h"

namespace autoround {

// The fixed-point filter of one axis: output i reads input [start[i], start[i] + taps[i]) with
// weights[i * max_taps + j], scaled by 2^precision.
struct ResampleAxis {
    int in_size = 0, out_size = 0;
    int max_taps = 0;
    int precision = 0;
    std::vector<int64_t> start, taps;   // [out_size]
    std::vector<int32_t> weights;       // [out_size, max_taps], int16 range
};

ResampleAxis compute_bicubic_axis(int in_size, int out_size);

// Resizes to out_width x out_height (both > 0). Same size returns a copy, as torchvision does.
RgbImage resize_bicubic_antialias(const RgbImage& image, int out_width, int out_height);

}  // namespace autoround
