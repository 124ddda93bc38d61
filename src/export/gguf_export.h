// export/gguf_export.h — writes a Qwen3 checkpoint as one llama.cpp GGUF v3 file
// (docs/checkpoint-formats.md §5: metadata §5.2, tensor names and dims §5.3, blocks §5.4–5.5, the per-tensor
// type mix of llama-quantize §5.6, the checklist §5.8).
//
// Where the values come from, per 2-D tensor (in this order):
//   1. `packed`: blocks already in GGUF form for that HF layer (the hook for a tuner that optimises a GGUF
//      data type directly, e.g. auto-round's int_asym_dq for q4_k: it packs with export/gguf_blocks.h and
//      hands the bytes over; the type it used must be the one gguf_tensor_type() picks);
//   2. `layers`: a tuned QuantizedTensor whose scheme maps onto the tensor's GGUF type without
//      re-quantization (gguf_blocks_from_quantized: q4_0 <- W4 sym gs32, q8_0 <- W8 sym gs32,
//      q4_1 <- W4 asym gs32; docs §5.7 and autoround-algorithm.md §2.10: auto-round tunes q4_0/q8_0 as
//      `int` sym gs32 and q4_1 as int asym gs32 with a float zero point);
//   3. otherwise the source weights through llama.cpp's reference quantizer of that type (plain RTN, bit-exact
//      with llama-quantize without an importance matrix, fed with the f32 expansion of the source dtype).
// How auto-round's GGUF data types (autoround-algorithm.md §2.10) reach the blocks — the tuner's side of the
// hook, per super-block / block of one row:
//   q4_0, q8_0  `int` sym gs32 (scale_dtype fp32): a QuantizedTensor {bits 4|8, group_size 32, sym}; d = fp16(s),
//               code = nibble (q4_0) or code - 128 = qs (q8_0)  -> `layers`, mapped here (exact when s is fp16).
//   q4_1        int_asym_float_zp gs32: {bits 4, group_size 32, asym, float_zeros}; d = fp16(s), m = fp16(-s*z)
//               -> `layers`, mapped here.
//   q4_k, q5_k  int_asym_dq (gs32, super-group 8, super_bits 6): a double-quant QuantizedTensor (s = d*sc[j],
//               m = dmin*mn[j], 6-bit sc / mn, codes 0..15 / 0..31) -> `layers`, packed into BlockQ4_K / BlockQ5_K
//               by quant/gguf_double_quant.h (exact).
//   q6_k        int_sym_dq (gs16, super-group 16, super_bits 8): d, int8 scales[16], codes 0..63 (q - 32)
//               -> `layers`, BlockQ6_K (exact).
//   q2_k, q3_k  not implemented (their layouts are not in the formats doc).
// 1-D tensors (norms) are always F32. Tied models (Qwen3-0.6B/nano) have no output.weight; token_embd then
// takes the output's type (Q6_K in q4_k_m files), as llama-quantize does.
//
// Qwen3-VL (Qwen3VLForConditionalGeneration): the language model is written here as general.architecture qwen3vl
// (the qwen3 keys under the qwen3vl. prefix, plus rope.dimension_sections = mrope_section padded to 4 and
// n_deepstack_layers; tensors from model.language_model.* under the qwen3 names; the vision tower left out), and
// export/gguf_mmproj.h writes the vision tower to the mmproj file llama.cpp's multimodal tools load next to it.
// Not here: q2_K / q3_K / q5_0 / q5_1 types.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/gguf_blocks.h"
#include "io/safetensors.h"
#include "quant/quantized_tensor.h"

namespace autoround {

// The `--format gguf:<x>` file types (llama.cpp's LlamaFileType).
enum class GgufFileType { F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K_S, Q4_K_M, Q6_K };

// "q4_k_m", "Q4_K_M", "f16"/"fp16", "bf16", ... (case-insensitive). Error lists the supported names.
GgufFileType parse_gguf_file_type(std::string_view name);
std::string_view gguf_file_type_name(GgufFileType t);      // lower case: "q4_k_m"
std::string_view gguf_file_type_label(GgufFileType t);     // llama.cpp's spelling for file names: "Q4_K_M"
uint32_t gguf_file_type_id(GgufFileType t);                // general.file_type: 15 for Q4_K_M, ...
const char* gguf_supported_file_types();                   // "f32, f16, bf16, q4_0, ..." for messages

// The GGUF name of an HF tensor (§5.3), e.g. "model.layers.3.mlp.down_proj.weight" -> "blk.3.ffn_down.weight"
// (Qwen3-VL's "model.language_model.layers.3..." too); nullopt for tensors a Qwen3 GGUF does not hold.
std::optional<std::string> gguf_tensor_name(const std::string& hf_name);

// The type llama-quantize gives a 2-D tensor in a file of type `ft` (§5.6): `gguf_name` its GGUF name,
// `layer` its block index (-1 outside blocks), `n_layers` the block count, `has_output` whether the model
// has a separate output.weight, `ne0` its innermost dimension (types whose block does not divide it fall
// back to Q8_0 / F16 as llama-quantize does).
gguf::BlockType gguf_tensor_type(GgufFileType ft, const std::string& gguf_name, int layer, int n_layers,
                                 bool has_output, int64_t ne0);

// The blocks of type `t` that store `q` exactly as tuned (see the header comment), row after row;
// nullopt when q's scheme does not map onto `t`. Scales are rounded to fp16 (GGUF stores fp16 d; exact for
// auto-round's default fp16 scale_dtype); q4_1's m = -s*z is rounded to fp16 too (not exact in general).
std::optional<std::vector<uint8_t>> gguf_blocks_from_quantized(const QuantizedTensor& q, gguf::BlockType t);

struct GgufPackedTensor {
    gguf::BlockType type = gguf::BlockType::Q4_K;
    std::vector<uint8_t> bytes;   // rows of blocks, [out rows] x row_bytes(type, in)
};

struct GgufExportOptions {
    GgufFileType file_type = GgufFileType::Q4_K_M;
    std::string model_name;                           // general.name; "" = the source folder's name
    std::map<std::string, GgufPackedTensor> packed;   // HF layer name (no ".weight") -> ready blocks
};

struct GgufTensorRecord {
    std::string gguf_name, hf_name;
    gguf::BlockType type = gguf::BlockType::F32;
    std::vector<int64_t> ne;
    std::string source;   // "tuned" (from `layers`), "packed", "rtn" (reference quantizer), "convert" (float)
};

struct GgufExportResult {
    std::filesystem::path file;
    std::vector<GgufTensorRecord> tensors;
};

// The file name of a GGUF export: "<model basename>-<LABEL>.gguf", e.g. "qwen3-nano-Q4_K_M.gguf".
std::string gguf_file_name(const std::string& model_name_or_path, GgufFileType t);
// The last path component of a model name or path ("org/name/" -> "name"; "." or "" -> "model"): general.name and the
// file names of the GGUF and mmproj exports.
std::string gguf_model_basename(const std::string& model_name_or_path);

// Checks, without writing, that the source folder can become a GGUF of this type: a Qwen3ForCausalLM
// config.json, a tokenizer.json with BPE vocab + merges, every tensor mapped, shapes as the config says,
// the `packed` entries of the right size. Throws Error naming the file / tensor and what to do.
void validate_gguf_export(const std::filesystem::path& source_dir, const TensorStore& source,
                          const std::map<std::string, QuantizedTensor>& layers, const GgufExportOptions& o);

// Writes `out_file` (through "<out_file>.tmp" renamed into place). `layers`: tuned layers by HF layer name
// (may be empty: plain RTN of every tensor).
GgufExportResult write_gguf_model(const std::filesystem::path& source_dir, const TensorStore& source,
                                  const std::map<std::string, QuantizedTensor>& layers, const GgufExportOptions& o,
                                  const std::filesystem::path& out_file);

}  // namespace autoround
