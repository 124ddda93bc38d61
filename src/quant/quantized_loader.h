// quant/quantized_loader.h — reading quantized Linear weights back from a checkpoint: the
// quantization_config of a model folder, and the dequantized float32 weight of one layer stored in
// any of the three packed formats (GPTQ, AWQ GEMM, auto-round native with any packing_format).
//
// Why here: the inference model (model/qwen3_model.cpp) must run the checkpoints we export and those
// written by Intel's tool (shared/reference/peer-autoround) through one entry point, without knowing
// which format it has in hand. The bits go through quant/quantized_tensor.h (from_gptq / from_awq /
// from_auto_round), the same code the exporters use, so "exported then loaded" is exact by construction.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "quant/quantization_config.h"
#include "quant/quantized_tensor.h"

namespace autoround {

// Reads <model_dir>/config.json and parses its `quantization_config`; std::nullopt when the key is
// absent (or null), i.e. an unquantized model. Errors name the file and the offending field.
std::optional<QuantizationConfig> load_quantization_config(const std::filesystem::path& model_dir);

// The layer `prefix` (e.g. "model.layers.0.self_attn.q_proj") as a QuantizedTensor when it is stored
// packed (`prefix`.qweight/.qzeros/.scales[/.g_idx]); std::nullopt when `prefix`.weight is a plain tensor.
// The layout (GPTQ v1/v2, AWQ, auto-round packing) comes from `qc`, bits/group_size/sym from
// qc.scheme_for(prefix). Throws Error naming the layer when neither form exists, when the config says the
// layer is not quantized but it is packed, or when the packed shape is not [out, in].
std::optional<QuantizedTensor> load_linear_quantized(const TensorStore& st, const std::string& prefix,
                                                     const QuantizationConfig& qc, int64_t out, int64_t in);

// Same, dequantized: float32 [out, in] row-major, w = (q - z) * s exactly (the kernels' values before
// they round to the compute dtype). std::nullopt when `prefix`.weight is a plain tensor.
std::optional<std::vector<float>> load_linear_dequantized(const TensorStore& st, const std::string& prefix,
                                                          const QuantizationConfig& qc, int64_t out, int64_t in);

}  // namespace autoround
