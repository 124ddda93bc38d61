// model/gguf_checkpoint.h — a llama.cpp GGUF file seen as a model folder: which file a --model path means,
// the ModelConfig / GenerationConfig / TokenizerConfig its metadata encodes (docs/checkpoint-formats.md
// §5.2, the inverse of export/gguf_export.cpp), and its tensors: 2-D weights as in-place views of the mapping
// (F32/F16/BF16 rows, or packed Q4_0/Q4_1/Q8_0/Q4_K/Q5_K/Q6_K blocks that ops/cpu/quant_matmul.h multiplies
// directly), or dequantized to float32 through export/gguf_blocks.h (the same layout code the writer uses,
// so export -> load is exact).
//
// Why: `generate` and `eval` must run every GGUF we export (and the ones llama.cpp's tools write for
// Qwen3) through the same Qwen3Model, so each export can be checked from both sides.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf.h"
#include "io/model_config.h"
#include "ops/weight_view.h"

namespace autoround {

// The GGUF file a model path refers to: the path itself when it is a regular file named *.gguf or whose
// content starts with "GGUF"; for a folder without *.safetensors, its single *.gguf (files whose name
// starts with "mmproj" are ignored). nullopt otherwise. A folder with several model .gguf files is an
// error that lists them (pass the file itself).
std::optional<std::filesystem::path> find_gguf_model(const std::filesystem::path& path);

// config.json equivalent: general.architecture must be "qwen3" (the runtime's Qwen3 graph); shapes from
// qwen3.* keys, vocab_size from token_embd.weight, tie_word_embeddings = no output.weight, BOS/EOS from
// tokenizer.ggml.*. Errors name the file and the key.
ModelConfig gguf_model_config(const GgufFile& f);
// generation_config.json equivalent: greedy by default (GGUF stores no sampling defaults), EOS = the
// tokenizer's eos id plus every CONTROL token llama.cpp treats as end-of-generation (<|endoftext|>,
// <|im_end|>, <|eot_id|>, <end_of_turn>, ...), BOS / pad from tokenizer.ggml.*.
GenerationConfig gguf_generation_config(const GgufFile& f);
// tokenizer_config.json equivalent: tokenizer.chat_template and the texts of the special tokens.
TokenizerConfig gguf_tokenizer_config(const GgufFile& f);

// Row-major float32 [rows, ne[0]] of a tensor of a supported type (F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q4_K, Q5_K,
// Q6_K); other types throw, naming the tensor, its type and the supported ones.
std::vector<float> gguf_dequantize(const GgufFile& f, const GgufTensorInfo& t);

// The 2-D tensor t (ne = [in, out]) as a weight [out, in] read in place from the mapping: F32/F16/BF16 rows,
// or packed blocks for Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K (ops/weight_view.h packed_weight_view). Errors name
// the file and tensor: a shape other than [in, out], an unsupported type, a row that is not whole blocks.
WeightView gguf_weight_view(const GgufFile& f, const GgufTensorInfo& t, int64_t out, int64_t in);

}  // namespace autoround
