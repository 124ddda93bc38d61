// quant/rtn.h — auto-round's integer fake-quantization (QDQ) as a scalar reference, and plain
// round-to-nearest (RTN) quantization of a float32 weight [out, in] into a QuantizedTensor.
//
// Why here: RTN is the qdq function at its neutral point (V = 0, α = β = 1), and the SignRound tuner
// evaluates the very same function with learned V, α, β; the CUDA kernels must match this reference.
// Formulas: docs/autoround-algorithm.md §2.2 (grouping/padding), §2.3 (int_sym / int_asym), §3.1 (RTN).
//
// Per group of G values x_j (the original weight, bf16 values in the reference; a partial last group is
// padded with zeros, which take part in min/max and are dropped afterwards), wmin = min(0, min x),
// wmax = max(0, max x), α, β clamped to [0, 1], τ = 1e-5 (fp16 scales) or 1e-8 (fp32 scales),
// rint = round half to even, all arithmetic in float32:
//
//   sym ("full-range symmetric", int_sym), Q = 2^(bits-1):
//     a = -(wmin·α) >= 0,  b = wmax·β >= 0
//     m = (b < a) ? a : -b                      (ties -> negative scale; the extreme maps to -Q)
//     s = fp16(m / Q);  s = (s < 0) ? min(s, -τ) : max(s, τ)        (-0.0 goes to +τ)
//     q_j = clamp(rint(x_j / s + V_j), -Q, Q-1);   y_j = s · q_j
//     stored: code = q_j + Q in [0, 2^bits - 1], zero = Q
//   asym (int_asym), Qa = 2^bits - 1:
//     s = max(fp16((wmax·β - wmin·α) / Qa), τ);   z = rint(-wmin·α / s)   (in [0, Qa])
//     q_j = clamp(rint(x_j / s + V_j) + z, 0, Qa);   y_j = s · (q_j - z)
//     stored: code = q_j, zero = z
//
// y is returned in float32 (exact: s is an fp16 value and |q| <= 255); the reference then casts it to
// the weight dtype (bf16) for the forward pass — use round_to_bf16 from core/bf16.h for that.
// y always equals QuantizedTensor::dequantize() of the same quantization.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "quant/quantized_tensor.h"

namespace autoround {

struct QdqOptions {
    QuantScheme scheme;       // bits 1..8 (2/3/4/8 exportable), group_size -1 or > 0, sym
    bool fp16_scale = true;   // scale_dtype fp16 (auto-round default): scale cast to fp16, τ = fp16(1e-5);
                              // false = fp32 scales, no cast, τ = 1e-8
};

// τ used for |s| (see the formulas above).
float scale_threshold(const QdqOptions& opt);

// One group: x[0..n) values (padding already zero), v[0..n) rounding offsets (nullptr = all 0),
// alpha/beta the group's min/max scales (clamped to [0, 1] here). Writes stored codes[0..n) and
// returns the scale and integer zero point. y_j = scale · (codes[j] - zero).
struct GroupQuant {
    float scale = 0.f;
    int32_t zero = 0;
};
GroupQuant quantize_group(const float* x, const float* v, int64_t n, float alpha, float beta, const QdqOptions& opt,
                          uint8_t* codes);

// Full QDQ of a weight w [out, in] float32:
//   v     [out, n_groups * G] float32 rounding offsets in auto-round's padded group layout
//         (row-major [out·n_groups, G]; equals [out, in] when G divides in); empty = all 0
//   alpha [out, n_groups] min_scale, beta [out, n_groups] max_scale; empty = all 1
// where G = effective_group_len(group_size, in). Returns y [out, in] float32.
std::vector<float> qdq(std::span<const float> w, int64_t out, int64_t in, std::span<const float> v,
                       std::span<const float> alpha, std::span<const float> beta, const QdqOptions& opt);

// The same quantization, keeping the integer codes, scales and zeros (what the tuner exports after
// tuning). `name` is stored in the result and used in error messages.
QuantizedTensor quantize(std::span<const float> w, int64_t out, int64_t in, std::span<const float> v,
                         std::span<const float> alpha, std::span<const float> beta, const QdqOptions& opt,
                         const std::string& name = "");

// Plain RTN: quantize() with V = 0, α = β = 1 (auto-round iters = 0 without optimized RTN, §3.1).
QuantizedTensor quantize_rtn(std::span<const float> w, int64_t out, int64_t in, const QdqOptions& opt,
                             const std::string& name = "");

}  // namespace autoround
