// ops/weight_view.h — a non-owning view of a 2-D weight matrix [out, in] as stored in a checkpoint
// (row-major, PyTorch nn.Linear layout). The linear ops read bf16/f16/f32 rows directly, so the
// mmap'd checkpoint is used in place without a float32 copy of the whole model.
//
// GGUF block-quantized weights (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K) are viewed in place too: `block` is set,
// `dtype` is U8 and row r is gguf::row_bytes(*block, in) bytes of the blocks defined in export/gguf_blocks.h
// (the one definition of those layouts); ops/cpu/quant_matmul.h multiplies with them without unpacking.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "export/gguf_blocks.h"
#include "io/safetensors.h"

namespace autoround {

class QmmRepacked;

struct WeightView {
    DType dtype = DType::F32;   // BF16, F16 or F32; U8 for packed GGUF blocks
    const void* data = nullptr; // [out, in] row-major (packed: out rows of row_bytes() bytes)
    int64_t out = 0;            // rows
    int64_t in = 0;             // columns (logical weights per row)
    std::optional<gguf::BlockType> block;  // set for packed GGUF blocks (never F32/F16/BF16)
    // Packed only, optional: the CPU runtime's load-time copy of rows [0, repacked->rows) with 16 rows interleaved
    // (ops/cpu/qmm_repack.h; owned by the model): the int8 dots read those rows from it instead of `data`.
    const QmmRepacked* repacked = nullptr;

    WeightView() = default;
    WeightView(DType dt, const void* d, int64_t rows, int64_t cols) : dtype(dt), data(d), out(rows), in(cols) {}
    bool packed() const { return block.has_value(); }
    const uint16_t* u16_row(int64_t r) const { return static_cast<const uint16_t*>(data) + r * in; }
    const float* f32_row(int64_t r) const { return static_cast<const float*>(data) + r * in; }
    // Packed only: bytes per row and the first block of row r.
    int64_t row_bytes() const { return in / gguf::block_elems(*block) * gguf::block_bytes(*block); }
    const uint8_t* packed_row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

// A view of packed GGUF blocks [out, in] of type t at `data`. Throws, starting with `label` (which names
// the tensor, e.g. "model.gguf: tensor 'blk.0.attn_q.weight'"), unless t is one of
// Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K and `in` is a positive multiple of its block size (32 or 256): the
// kernels read whole blocks only, so a ragged row must never reach them.
WeightView packed_weight_view(const std::string& label, gguf::BlockType t, const void* data, int64_t out, int64_t in);

// Converts row r of w to float32 (len w.in); packed rows are dequantized (gguf::dequantize_row).
void weight_row_to_f32(const WeightView& w, int64_t r, float* dst);

}  // namespace autoround
