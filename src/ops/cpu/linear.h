// ops/cpu/linear.h — y = x · Wᵀ (+ b) on CPU with float32 math and bf16/f16/f32 or GGUF-packed weights.
//
// linear_ref : the plain scalar reference (double-free, float32 accumulate in index order).
// linear     : the fast path. For few rows (decode, T <= 4) a multi-threaded AVX2 GEMV that reads
//              the 16-bit weights directly (memory-bound: each weight byte is read once per step);
//              for prefill, rows of W are converted to float32 in tiles and multiplied with BLAS
//              sgemm, tiles spread over the OpenMP threads. Packed GGUF weights (w.packed()) take the int8
//              path of ops/cpu/quant_matmul.h for few rows and the dequantized-tile sgemm for many.
#pragma once

#include <cstdint>
#include <span>

#include "ops/weight_view.h"

namespace autoround {

// x [T, in] f32, w [out, in], bias [out] or null, y [T, out] f32.
void linear_ref(const float* x, int64_t T, const WeightView& w, const float* bias, float* y);
void linear(const float* x, int64_t T, const WeightView& w, const float* bias, float* y);

// Several weights applied to the same x (q|k|v, gate|up): outs[i].y = linear(x, T, *outs[i].w, outs[i].bias).
// When every weight is packed and T takes the int8 path, they run as one group (quant_matmul_q8_group: x
// quantized once, one fork/join), bit-identical to the separate calls; otherwise one linear() each.
struct LinearOut {
    const WeightView* w;
    const float* bias;  // [w->out] or null
    float* y;           // [T, w->out]
};
void linear_group(const float* x, int64_t T, std::span<const LinearOut> outs);

// Dot product of a 16-bit/32-bit (not packed) weight row with a float32 vector (the GEMV kernel's inner loop).
float dot_row(const WeightView& w, int64_t r, const float* x);

}  // namespace autoround
