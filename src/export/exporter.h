// export/exporter.h — writes a quantized model as Hugging Face checkpoint folders in the formats of
// Intel's auto-round: "auto_round" (native, quant_method "auto-round"), "auto_gptq", "auto_awq" and "fake"
// (dequantized weights in the source dtype). docs/autoround-algorithm.md §5 (formats, folder names,
// files, tensor layout, quantization_config) and docs/checkpoint-formats.md §1–§4 (what each consumer
// needs). The per-format decisions live in one file each (auto_round_format.cpp, gptq_format.cpp,
// awq_format.cpp, fake_format.cpp); this header is the common driver.
//
// Inputs: the source model folder (config.json, tokenizer / generation / processor files), its
// TensorStore, a QuantizationConfig (global scheme + overrides + metadata) and a map layer name ->
// QuantizedTensor (the tuned codes/scales/zeros of every quantized nn.Linear). Every source tensor that
// is not the `.weight` of a quantized layer is copied bit-identical.
//
// Each output folder holds: model.safetensors (or model-0000k-of-0000n.safetensors + index, shards of
// 5 GB by default as in HF), config.json (source keys + quantization_config), quantization_config.json
// (same dict, as auto-round writes), quantize_config.json (GPTQ only; AutoGPTQ/GPTQModel loaders read it),
// the tokenizer, chat template, generation and processor files that exist in the source, and custom
// *.py files. "fake" writes no quantization_config (auto-round asserts this for weight-only int schemes).
//
// GGUF: "gguf:<type>" (q4_0, q4_1, q8_0, q4_k_s, q4_k_m, q6_k, f16, bf16, f32) writes one llama.cpp file
// "<model>-<TYPE>.gguf" into its folder (export/gguf_export.h: tuned codes where the layer's scheme maps onto
// the GGUF block type exactly, llama.cpp's reference quantizer of the source weights otherwise).
//
// Safety: validate_export checks every layer against every requested format and every target folder
// BEFORE anything is written, and each folder is written through core/atomic_dir.h (temp folder, renamed
// into place on success), so a failed export leaves no output folder.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "export/gguf_export.h"
#include "export/model_card.h"
#include "io/safetensors.h"
#include "quant/quantization_config.h"
#include "quant/quantized_tensor.h"

namespace autoround {

enum class ExportFormat {
    AutoRound,           // "auto_round": packing chosen as auto-round does (sym -> auto_gptq; asym 4-bit -> auto_awq; else plain)
    AutoRoundAutoGptq,   // "auto_round:auto_gptq"
    AutoRoundAutoAwq,    // "auto_round:auto_awq"
    AutoRoundGptqModel,  // "auto_round:gptqmodel"
    AutoGptq,            // "auto_gptq"
    AutoAwq,             // "auto_awq"
    Fake,                // "fake"
    GgufF32,             // "gguf:f32" ... one llama.cpp GGUF file each (export/gguf_export.h)
    GgufF16,
    GgufBF16,
    GgufQ4_0,
    GgufQ4_1,
    GgufQ8_0,
    GgufQ4_K_S,
    GgufQ4_K_M,
    GgufQ6_K,
};

// The GGUF file type of a gguf:* format; nullopt for the safetensors formats.
std::optional<GgufFileType> gguf_file_type_of(ExportFormat f);
// The scheme auto-round tunes for the base block type of a GGUF file type, whose blocks then hold the tuned
// integers exactly (autoround-algorithm.md §2.10–2.11, quant/gguf_double_quant.h): gguf:q4_0 -> W4 sym group 32,
// gguf:q4_1 -> W4 asym group 32, gguf:q8_0 -> W8 sym group 32, gguf:q4_k_s / q4_k_m -> int_asym_dq Q4_K,
// gguf:q6_k -> int_sym_dq Q6_K. nullopt for float GGUF types and non-GGUF formats.
std::optional<LayerScheme> gguf_tuned_scheme(ExportFormat f);
// The same for one Linear (HF module name, e.g. "model.layers.3.mlp.down_proj", input width `in`) of a model with
// n_layers blocks: its block type in a file of format f follows llama-quantize's per-tensor mix (q4_k_m: Q6_K for
// some attn_v / ffn_down). nullopt when f is not GGUF, the layer has no GGUF tensor, or the type is a float type.
std::optional<LayerScheme> gguf_layer_scheme(ExportFormat f, const std::string& layer, int n_layers, bool has_output,
                                             int64_t in);

// "auto_round", "auto_gptq", ... (case-insensitive; aliases auto_round:gptq, auto_round:awq). Error lists the
// supported names.
ExportFormat parse_export_format(std::string_view name);
// A comma-separated list ("auto_round,auto_gptq"); duplicates dropped, order kept.
std::vector<ExportFormat> parse_export_formats(std::string_view list);
std::string_view export_format_name(ExportFormat f);

// The packing auto-round would use for `f` with this config (AutoRound resolved per §5.1; the fixed
// auto_round:* variants map directly). Only meaningful for the auto_round formats.
AutoRoundPacking resolve_auto_round_packing(ExportFormat f, const QuantizationConfig& qc);
// auto-round's backend name: "auto_round:auto_gptq", "auto_round:auto_awq", "auto_round:gptqmodel",
// "auto_round" (plain packing), "auto_gptq", "auto_awq", "fake".
std::string export_backend_name(ExportFormat f, const QuantizationConfig& qc);

// ---- folder names (autoround-algorithm.md §5.2, BaseOrchestrator._get_export_dir) -------------------
// <output_dir>/<basename of model_name_or_path>[-<data_type>]-w<bits>g<group_size>, where
//   * "g<group_size>" becomes "a<act_bits>" ("afp<act_bits>" for fp activations) when group_size <= 0;
//   * the "-<data_type>" infix (lower case, '_' removed) appears only for non-int (or mx) data types;
//   * a model path whose last component is only dots ("." or "./") gives <output_dir>/w<bits>g<group>.
std::filesystem::path quantized_model_dir(const std::filesystem::path& output_dir, const std::string& model_name_or_path,
                                          const QuantizationConfig& qc, int act_bits = 16,
                                          const std::string& act_data_type = "float");
// The per-format subfolder when several formats are written: the backend name with ':' and '_' -> '-'
// (e.g. "auto-round-auto-gptq", "auto-gptq", "auto-awq", "fake").
std::string export_subfolder_name(ExportFormat f, const QuantizationConfig& qc);
// One folder per format: model_dir itself for a single format, model_dir/<subfolder> for several.
std::vector<std::filesystem::path> export_folders(const std::filesystem::path& model_dir,
                                                  const std::vector<ExportFormat>& formats,
                                                  const QuantizationConfig& qc);

// ---- export ---------------------------------------------------------------------------------------------

struct ExportOptions {
    std::filesystem::path output_dir = "tmp_autoround";  // the CLI default of auto-round
    std::string model_name;               // names the folder; "" = the source folder's name
    bool overwrite = false;               // replace existing non-empty output folders
    size_t max_shard_bytes = 5'000'000'000;  // HF's max_shard_size="5GB" (decimal)
    // auto-round forces config.json torch_dtype/dtype "float16" for auto_gptq and AWQ-packed exports
    // (vLLM's non-Marlin GPTQ/AWQ kernels are fp16-only); tensors are not converted. false keeps the source dtype.
    bool fp16_config_dtype = true;
    // Called with each temporary folder just before it is renamed into place (progress / tests).
    std::function<void(const std::filesystem::path& tmp_folder)> before_commit;
    // The README.md model card written into every folder (export/model_card.h): command line, settings,
    // evaluation, repo id, license; card.write = false writes none.
    ModelCardOptions card;
};

struct ExportResult {
    ExportFormat format;
    std::string backend;                  // export_backend_name
    std::filesystem::path folder;         // the committed folder
    std::vector<std::string> files;       // file names written into it
};

using QuantizedLayers = std::map<std::string, QuantizedTensor>;  // layer name (no ".weight") -> tensor

// Checks, without writing anything: the source folder has config.json; every quantized layer exists as
// `<name>.weight` [out, in] in the source and is valid; its scheme agrees with the config; every format can
// store every layer (e.g. auto_awq: 4-bit, one group_size, in % group_size == 0, out % 8 == 0; GPTQ v1:
// no zero point 0; packed formats: in, out % 32 == 0 and whole groups); no target folder exists unless
// overwrite. Throws Error naming the layer, the flag or the folder, and the formats that can store it.
void validate_export(const std::filesystem::path& source_dir, const TensorStore& source, const QuantizationConfig& qc,
                     const QuantizedLayers& layers, const std::vector<ExportFormat>& formats,
                     const ExportOptions& options);

// validate_export, then writes one folder per format (see export_folders) and returns what was written.
std::vector<ExportResult> export_model(const std::filesystem::path& source_dir, const TensorStore& source,
                                       const QuantizationConfig& qc, const QuantizedLayers& layers,
                                       const std::vector<ExportFormat>& formats, const ExportOptions& options);

}  // namespace autoround
