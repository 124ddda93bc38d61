// export/export_formats.h — internal interface between the export driver (exporter.cpp) and the
// per-format files (auto_round_format.cpp, gptq_format.cpp, awq_format.cpp, fake_format.cpp).
//
// Why split: each format has its own rules on what it can store and its own quantization_config
// dialect; keeping each in one file makes "what does the GPTQ export write, and why" readable in one place.
// The driver resolves the model once (ResolvedExport), asks each format for a FormatSpec — building the
// spec IS the format's validation, so validate_export can run it before anything is written — and then
// writes every folder the same way.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "export/exporter.h"

namespace autoround::export_detail {

// The model as the exporters see it, resolved once for all formats.
struct ResolvedExport {
    const TensorStore* source = nullptr;
    const QuantizedLayers* layers = nullptr;
    // The user's config plus: block_name_to_quantize inferred from the layer names when empty; an exact
    // override for every quantized layer whose scheme no explicit rule covered (e.g. lm_head, layers
    // with another bit width); an exact bits-16 override for every Linear inside a quantized block that is
    // not in `layers` (so every consumer knows it is a plain .weight).
    QuantizationConfig qc;
    std::vector<std::string> skipped_in_block;   // those bits-16 in-block Linears (sorted)
    // Full-precision Linears outside the quantized blocks, other than lm_head and embeddings: the
    // module name, or the block-list prefix ("model.visual.blocks") for those inside another block list.
    std::vector<std::string> unquantized_outside;
};

// What one format writes.
struct FormatSpec {
    ExportFormat format = ExportFormat::Fake;
    std::string backend;                                          // export_backend_name
    std::function<PackedLinear(const QuantizedTensor&)> pack;     // empty: "fake" (dequantized weights)
    std::optional<nlohmann::ordered_json> quantization_config;    // nullopt: none written
    bool write_quantize_config_json = false;                      // GPTQ: also quantize_config.json
    bool fp16_config_dtype = false;                               // set torch_dtype/dtype "float16" in config.json
};

// One per format; each throws Error (naming the layer and the formats that can store it) when a layer or
// the config cannot be written in that format.
FormatSpec auto_round_spec(ExportFormat f, const ResolvedExport& r, const ExportOptions& o);
FormatSpec gptq_spec(const ResolvedExport& r, const ExportOptions& o);
FormatSpec awq_spec(const ResolvedExport& r, const ExportOptions& o);
FormatSpec fake_spec(const ResolvedExport& r);

// ---- shared layer checks (exporter.cpp) ---------------------------------------------------------------
// `format` names the format in the message; each message also names the formats that could store the layer.

// GPTQ layout (auto_gptq, auto_round:auto_gptq / gptqmodel / plain): bits 2/3/4/8; in and out multiples of
// 32 (every consumer, and auto-round's own shape rule); whole groups; integer zeros; with `v1_zeros`
// every zero in [1, 2^bits] (the stored field z - 1 must not be negative, §1.4).
void check_gptq_storable(const std::string& name, const QuantizedTensor& q, bool v1_zeros, const std::string& format);
// AWQ GEMM layout (auto_awq, auto_round:auto_awq): 4-bit; out % 8 == 0; whole groups; integer zeros <= 15.
void check_awq_storable(const std::string& name, const QuantizedTensor& q, const std::string& format);

}  // namespace autoround::export_detail
