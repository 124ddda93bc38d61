// export/pack_layout.h — THE one definition of every packed integer layout autoround.cpp reads or writes:
// GPTQ qweight/qzeros (bits 2, 3, 4, 8), AWQ-GEMM qweight/qzeros (bits 4, interleaved), and the
// auto-round native format, which has no layout of its own: every `packing_format` of auto-round
// reuses one of these two (auto_round:auto_gptq, auto_round:gptqmodel and plain auto_round use the
// GPTQ layout; auto_round:auto_awq uses the AWQ layout; docs/checkpoint-formats.md §3.1).
//
// Why one file: the exporters, the checkpoint loaders and (later) the CUDA dequant kernels must agree
// on every bit. This header is plain C++17 with only <cstdint> (no std containers, no exceptions), its
// functions marked host+device under nvcc, so a .cu file (C++17) can include it. The host-side
// whole-matrix packers (export/pack.h, pack.cpp) are built on exactly these helpers.
//
// Words are computed as uint32 bit patterns and stored as int32 (bit reinterpretation, never an
// arithmetic conversion; docs §0.1). All files are little-endian.
//
// ---- GPTQ layout (docs §1.2, §1.3) ------------------------------------------------------------------
// A sequence of codes v[0], v[1], ... (b bits each) is packed as ONE little-endian bit stream:
// code i occupies stream bits [b*i, b*i + b), and stream bit p lives in word p / 32 at bit p % 32.
//   * b = 2, 4, 8: pf = 32 / b codes per word, code i in word i / pf at bit offset b * (i % pf).
//     Lower index -> lower bits. 4-bit codes 0..7 -> 0x76543210.
//   * b = 3: every 32 codes fill 3 words A, B, C: v[0..9] in A bits 0..29, v[10] straddles
//     (bits 0-1 -> A bits 30-31, bit 2 -> B bit 0), v[11..20] in B bits 1..30, v[21] straddles
//     (bit 0 -> B bit 31, bits 1-2 -> C bits 0-1), v[22..31] in C bits 2..31. This "10|1|10|1|10"
//     scheme of AutoGPTQ/GPTQModel/auto-round is exactly the bit stream above, so one formula serves
//     all widths. Codes i%8 for i = 0..31 -> A, B, C = 0x88FAC688, 0xC688FAC6, 0xFAC688FA.
// qweight [K*b/32, N] int32: the stream runs along K (input dim) separately for each output column n,
//   i.e. code q[k][n] is stream element k of column n (consecutive stream words are rows of qweight).
// qzeros  [ng, N*b/32] int32: the stream runs along N (output dim) separately for each group row g.
//   What a zero field holds (z - 1 for GPTQ v1, z for v2) is a format decision made by the caller
//   (quant/quantized_tensor.cpp); these functions only move bits.
//
// ---- AWQ GEMM layout (docs §2.2), 4-bit only ----------------------------------------------------------
// Codes are packed along N (output dim): word c of a row holds columns 8c .. 8c+7, with column 8c+j in
// nibble slot POS[j] (bits 4*POS[j] .. 4*POS[j]+3), POS = [0, 4, 1, 5, 2, 6, 3, 7]; equivalently slot i
// holds column 8c + ORDER[i], ORDER = [0, 2, 4, 6, 1, 3, 5, 7] (AutoAWQ's AWQ_ORDER; POS is its
// AWQ_REVERSE_ORDER). Columns 0..7 holding codes 0..7 -> 0x75316420.
// qweight [K, N/8] int32 (row = input channel k), qzeros [ng, N/8] int32 (row = group, true zeros).
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define AR_PACK_HD __host__ __device__ __forceinline__
#else
#define AR_PACK_HD inline
#endif

namespace autoround::pack {

// ---- bit-layout helpers (host and device) -----------------------------------------------------------

AR_PACK_HD constexpr uint32_t code_mask(int bits) { return bits >= 32 ? 0xFFFFFFFFu : ((1u << bits) - 1u); }

// True for the widths the GPTQ layout defines (2, 3, 4, 8).
AR_PACK_HD constexpr bool gptq_bits_ok(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

// Smallest number of codes that fills whole words: 32 / b for 2/4/8 bits, 32 for 3 bits. A packed
// axis must have a length divisible by this.
AR_PACK_HD constexpr int64_t gptq_codes_per_block(int bits) { return bits == 3 ? 32 : 32 / bits; }

// Number of int32 words that `n_codes` codes of `bits` bits occupy (n_codes * bits / 32).
AR_PACK_HD constexpr int64_t gptq_words_for(int64_t n_codes, int bits) { return n_codes * bits / 32; }

// Reads stream element i (b bits) of a GPTQ bit stream whose consecutive words are `stride` uint32
// apart (stride = N for a qweight column, 1 for a qzeros row). Handles the 3-bit straddling codes.
AR_PACK_HD uint32_t gptq_get(const uint32_t* words, int64_t stride, int64_t i, int bits) {
    const int64_t bit = i * bits;
    const int64_t w = bit >> 5;
    const int off = static_cast<int>(bit & 31);
    uint32_t v = words[w * stride] >> off;
    if (off + bits > 32) v |= words[(w + 1) * stride] << (32 - off);
    return v & code_mask(bits);
}

// ORs stream element i (value masked to b bits) into the stream; the words must start zeroed.
AR_PACK_HD void gptq_put(uint32_t* words, int64_t stride, int64_t i, int bits, uint32_t value) {
    value &= code_mask(bits);
    const int64_t bit = i * bits;
    const int64_t w = bit >> 5;
    const int off = static_cast<int>(bit & 31);
    words[w * stride] |= value << off;
    if (off + bits > 32) words[(w + 1) * stride] |= value >> (32 - off);
}

// AWQ: nibble slot of column j (0..7) inside its word: POS = [0, 4, 1, 5, 2, 6, 3, 7].
AR_PACK_HD constexpr int awq_slot_of_column(int j) { return (j >> 1) | ((j & 1) << 2); }
// AWQ: column (0..7) held by nibble slot i: ORDER = [0, 2, 4, 6, 1, 3, 5, 7].
AR_PACK_HD constexpr int awq_column_of_slot(int i) { return ((i & 3) << 1) | (i >> 2); }

// Reads the 4-bit AWQ code of column n from one packed row (row = N/8 words).
AR_PACK_HD uint32_t awq_get(const uint32_t* row, int64_t n) {
    return (row[n >> 3] >> (4 * awq_slot_of_column(static_cast<int>(n & 7)))) & 0xFu;
}

// ORs the 4-bit AWQ code of column n into one packed row (words must start zeroed).
AR_PACK_HD void awq_put(uint32_t* row, int64_t n, uint32_t value) {
    row[n >> 3] |= (value & 0xFu) << (4 * awq_slot_of_column(static_cast<int>(n & 7)));
}

}  // namespace autoround::pack
