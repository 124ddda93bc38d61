// quant/gguf_double_quant.h — auto-round's GGUF data types as tunable layer schemes, and the bridge between a
// tuned (or RTN) k-quant layer and the GGUF blocks that store it.
//
// Why: `--format gguf:q4_k_m` must tune the very data type the file stores (autoround-algorithm.md §2.10: q4_0 /
// q8_0 tune `int` sym group 32, q4_1 asym group 32, Q4_K / Q5_K `int_asym_dq`, Q6_K `int_sym_dq`), so that the
// file holds the tuned integers rather than a re-quantization of tuned float weights. This file says which
// scheme each GGUF block type tunes, turns the tuner's double-quant integers into a QuantizedTensor, and converts
// such a tensor to and from Q4_K / Q5_K / Q6_K super-blocks (export/gguf_blocks.h holds the bit layouts).
//
//   block type   scheme (bits, group, sym, data_type, super_group_size, super_bits)
//   Q4_0         4, 32, sym,  int
//   Q4_1         4, 32, asym, int        (the file stores m = -s·z; auto-round tunes a float zero point)
//   Q8_0         8, 32, sym,  int
//   Q4_K         4, 32, asym, int_asym_dq, 8, 6      one 256-weight super-block = 8 groups of 32
//   Q5_K         5, 32, asym, int_asym_dq, 8, 6
//   Q6_K         6, 16, sym,  int_sym_dq, 16, 8      one super-block = 16 groups of 16
//
// RTN of a k-quant scheme (`--iters 0`) is llama.cpp's own reference quantizer of the block type (the search
// llama-quantize runs without an importance matrix), decoded into a QuantizedTensor; auto-round's iters-0 path
// runs a similar llama.cpp-style search (rtn_int_asym_dq).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "export/gguf_blocks.h"
#include "ops/cpu/fake_quant.h"
#include "ops/cpu/fake_quant_dq.h"
#include "quant/quantization_config.h"
#include "quant/quantized_tensor.h"

namespace autoround {

// The scheme a GGUF block type tunes (table above); nullopt for float types (F32 / F16 / BF16).
std::optional<LayerScheme> gguf_block_scheme(gguf::BlockType t);
// The block type a scheme is stored as without re-quantization, if any (inverse of gguf_block_scheme).
std::optional<gguf::BlockType> gguf_block_type_of(const LayerScheme& s);

// data_type int_asym_dq / int_sym_dq.
bool is_double_quant(const LayerScheme& s);

// The fake-quant configuration of a layer scheme: kind, super-group, scale dtype (fp16 for `int`, float32 for the
// GGUF double-quant types, as auto-round's scale_dtype rule for GGUF), τ = 1e-5, W_q in bf16.
FakeQuantConfig fake_quant_config(const LayerScheme& s);

// The QuantizedTensor of a tuned double-quant layer W [out, in] (the integers of fake_quant_dq_codes).
QuantizedTensor dq_quantized_tensor(const DoubleQuantCodes& c, const LayerScheme& s, int64_t out, int64_t in,
                                    const std::string& name);

// RTN of a double-quant scheme: llama.cpp's reference quantizer of the block type, row by row (in % 256 == 0).
QuantizedTensor quantize_dq_rtn(const std::vector<float>& W, int64_t out, int64_t in, const LayerScheme& s,
                                const std::string& name);

// Q4_K / Q5_K / Q6_K super-blocks <-> QuantizedTensor (rows of blocks, [out] x row_bytes(t, in)).
// dq_blocks_from_tensor: nullopt unless q is a double-quant tensor of exactly t's scheme. Exact both ways.
std::optional<std::vector<uint8_t>> dq_blocks_from_tensor(const QuantizedTensor& q, gguf::BlockType t);
QuantizedTensor dq_tensor_from_blocks(gguf::BlockType t, const uint8_t* blocks, int64_t out, int64_t in,
                                      const std::string& name);

}  // namespace autoround
