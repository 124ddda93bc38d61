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
//                    VPDPBUSD with the −8 offset and the scales vectorised, no scalar work per block; with GFNI the nibble / 6-bit
//                    code unpacking by GF2P8AFFINEQB bit matrices); QmmIsa::Avx2 forces the
//                    AVX2 dots everywhere (tests compare both with the reference).
//                    A weight with a load-time repacked copy (WeightView::repacked, ops/cpu/qmm_repack.h: Q4_0,
//                    Q4_K and Q6_K, 16 rows interleaved) runs its rows [0, repacked->rows) through 16-row dots on
//                    that copy (QmmIsa::Best; the rest of the rows as above): the same integer dot per row and block, one
//                    float multiply-add per block per row (acc += (d_w·d_a)·Σ) where the in-place dots take several
//                    lanes per block: results differ from those in the last bits (float rounding of the block sums
//                    only). QmmIsa::RepackRef runs the same repacked dots in scalar C++, bit-identical to Best's.
// linear() (ops/cpu/linear.h) picks between this and dequantized tiles + sgemm by N.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "ops/weight_view.h"

namespace autoround {

// x [N, in] f32, w packed [out, in] (w.packed()), bias [out] or null, y [N, out] f32.
void quant_matmul_ref(const float* x, int64_t N, const WeightView& w, const float* bias, float* y);
enum class QmmIsa { Best, Avx2, RepackRef };
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

// ---- persistent-team decode (Qwen3Model::forward, model/qwen3_model.cpp) ----
// One thread of a team computes its own rows of a group of weights that read the same x [N, in]: rows [r0, r1) of
// each weight into y [N, w->out] (other rows untouched), x quantized into the thread's scratch (each thread
// quantizes it for itself: no sync, and the team's x is small). Each output equals quant_matmul_q8's, bit for bit.
// With a PrefetchStream (ops/cpu/prefetch_stream.h, holding this thread's ranges in read order) the dots do not
// prefetch themselves; the stream is advanced by each row's bytes and prefetches on into the next weight.
// Never throws (it runs inside the team's parallel region): validate once with check_qmm_parts.
struct QmmPart {
    const WeightView* w;
    const float* bias;  // [w->out] or null
    float* y;           // [N, w->out]
    int64_t r0, r1;     // this thread's rows
};
class QmmScratch {
public:
    QmmScratch();
    ~QmmScratch();
    QmmScratch(QmmScratch&&) noexcept;
    QmmScratch& operator=(QmmScratch&&) noexcept;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};
class PrefetchStream;
void check_qmm_parts(std::span<const QmmPart> parts);
// Appends to pf the bytes quant_matmul_q8_part reads for rows [r0, r1) of w, in its order (the repacked groups that
// hold rows of the range, then the file rows past the repacked ones).
void add_qmm_part_ranges(PrefetchStream& pf, const WeightView& w, int64_t r0, int64_t r1, QmmIsa isa = QmmIsa::Best);
// Whether this build has the fast dots for repacked weights (AVX-512 VNNI): a runtime repacks only then.
bool qmm_repacked_dots_available();
void quant_matmul_q8_part(const float* x, int64_t N, std::span<const QmmPart> parts, QmmScratch& scratch,
                          PrefetchStream* pf, QmmIsa isa = QmmIsa::Best) noexcept;

// Values per activation block the int8 path quantizes x in for weights of type t (32 or 256): the
// granularity of the error bound above.
int64_t quant_act_block(gguf::BlockType t);

}  // namespace autoround
