// export/pack.h — whole-tensor GPTQ and AWQ packers/unpackers (host, C++20) for every layout of
// docs/checkpoint-formats.md §1–§3. The bit layouts themselves (and their description) are defined once
// in export/pack_layout.h, which device code includes directly; auto-round's native format has no
// layout of its own (auto_round:auto_gptq, auto_round:gptqmodel and plain auto_round use the GPTQ
// layout, auto_round:auto_awq the AWQ layout), so these functions serve it too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "export/pack_layout.h"

namespace autoround::pack {

// ---- whole-tensor packers (host; pack.cpp) ----------------------------------------------------------
// Inputs are in the format-neutral orientation of quant/quantized_tensor.h: codes [out, in] (N, K, the
// HF nn.Linear layout), zero fields [out, ng]. Every value must fit in `bits` bits (checked; an Error
// names the position). Shapes that cannot be packed throw autoround::Error naming `what` and the shape.

// GPTQ qweight: codes [out, in] uint8 -> [in*bits/32, out] int32 (stream along in). bits 2/3/4/8,
// in % gptq_codes_per_block(bits) == 0.
std::vector<int32_t> gptq_pack_qweight(std::span<const uint8_t> codes, int64_t out, int64_t in, int bits,
                                       const char* what = "qweight");
// Inverse: qweight [in*bits/32, out] int32 -> codes [out, in] uint8.
std::vector<uint8_t> gptq_unpack_qweight(std::span<const int32_t> qweight, int64_t out, int64_t in, int bits,
                                         const char* what = "qweight");

// GPTQ qzeros: fields [out, ng] uint8 (already offset by the caller) -> [ng, out*bits/32] int32
// (stream along out). out % gptq_codes_per_block(bits) == 0.
std::vector<int32_t> gptq_pack_qzeros(std::span<const uint8_t> fields, int64_t out, int64_t ng, int bits,
                                      const char* what = "qzeros");
// Inverse: qzeros [ng, out*bits/32] int32 -> fields [out, ng] uint8.
std::vector<uint8_t> gptq_unpack_qzeros(std::span<const int32_t> qzeros, int64_t out, int64_t ng, int bits,
                                        const char* what = "qzeros");

// AWQ qweight: codes [out, in] uint8 (4-bit) -> [in, out/8] int32 (interleaved along out). out % 8 == 0.
std::vector<int32_t> awq_pack_qweight(std::span<const uint8_t> codes, int64_t out, int64_t in,
                                      const char* what = "qweight");
// Inverse: qweight [in, out/8] int32 -> codes [out, in] uint8.
std::vector<uint8_t> awq_unpack_qweight(std::span<const int32_t> qweight, int64_t out, int64_t in,
                                        const char* what = "qweight");

// AWQ qzeros: fields [out, ng] uint8 (true zeros, 4-bit) -> [ng, out/8] int32, same interleave.
std::vector<int32_t> awq_pack_qzeros(std::span<const uint8_t> fields, int64_t out, int64_t ng,
                                     const char* what = "qzeros");
// Inverse: qzeros [ng, out/8] int32 -> fields [out, ng] uint8.
std::vector<uint8_t> awq_unpack_qzeros(std::span<const int32_t> qzeros, int64_t out, int64_t ng,
                                       const char* what = "qzeros");

}  // namespace autoround::pack
