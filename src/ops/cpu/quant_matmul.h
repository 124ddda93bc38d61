// ops/cpu/quant_matmul.h — y = x · Wᵀ (+ b) with W in GGUF blocks (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) read
// in place from the mapped file, the way llama.cpp runs them on CPU.
//
// Why: decode is memory-bound, and a 4-bit weight read as 4 bits moves ~8x fewer bytes than the float32
// copy the loader used to make. The int8 path quantizes each activation row once to 8-bit blocks (32
// values for Q4_0/Q4_1/Q8_0, 256 with 16-value sums for the K-quants: our own layout, not a file format)
// and takes integer dot products against the packed codes (AVX2 maddubs/madd), one float multiply per
// block or sub-block. The activation rounding is the only approximation: per element at most half a step,
// |x_i - x̂_i| <= amax(block)/254, so |y - y_ref| <= Σ_i |w_i| · amax(block(i))/254 (+ float rounding).
//
// quant_matmul_ref : the plain scalar reference: dequantize each row (gguf::dequantize_row), float dot.
// quant_matmul_q8  : the int8 path for any N (each weight row is read once and dotted with every
//                    activation row while it is in L1), OpenMP over output rows. Without AVX2 it falls
//                    back to the reference math. Builds for AVX-512 VNNI (-march=native on Zen 4/5, Ice Lake
//                    and later, with VBMI) take 512-bit dots for Q4_0, Q4_K and Q6_K (QmmIsa::Best: Q4_0 two blocks per
//                    VPDPBUSD with the −8 offset and the scales vectorised, no scalar work per block); QmmIsa::Avx2 forces the
//                    AVX2 dots everywhere (tests compare both with the reference).
// linear() (ops/cpu/linear.h) picks between this and dequantized tiles + sgemm by N.
#pragma once

#include <cstdint>
#include <span>

#include "ops/weight_view.h"

namespace autoround {

// x [N, in] f32, w packed [out, in] (w.packed()), bias [out] or null, y [N, out] f32.
void quant_matmul_ref(const float* x, int64_t N, const WeightView& w, const float* bias, float* y);
enum class QmmIsa { Best, Avx2 };
void quant_matmul_q8(const float* x, int64_t N, const WeightView& w, const float* bias, float* y,
                     QmmIsa isa = QmmIsa::Best);

// Up to 8 weights that read the same x [N, in] (q|k|v, gate|up): x is quantized once per activation layout and
// all their rows run in one parallel region (one fork/join for the group instead of one per weight); each
// output equals quant_matmul_q8's for that weight alone, bit for bit.
struct QmmOut {
    const WeightView* w;
    const float* bias;  // [w->out] or null
    float* y;           // [N, w->out]
};
void quant_matmul_q8_group(const float* x, int64_t N, std::span<const QmmOut> outs, QmmIsa isa = QmmIsa::Best);

// Values per activation block the int8 path quantizes x in for weights of type t (32 or 256): the
// granularity of the error bound above.
int64_t quant_act_block(gguf::BlockType t);

}  // namespace autoround
